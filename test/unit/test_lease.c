/* test_lease.c — the index's lease table (src/index/lease.c), pure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "index/lease.h"

static void key(uint8_t pk[32], unsigned n) {
  memset(pk, 0, 32);
  pk[0] = (uint8_t)(n >> 8);
  pk[1] = (uint8_t)n;
}

static void test_empty(void **state) {
  struct parley_lease_table t;
  uint8_t pk[32];
  uint64_t due = 77;
  (void)state;

  parley_lease_table_init(&t, 1);
  assert_int_equal(parley_lease_count(&t), 0);
  assert_int_equal(parley_lease_next_expiry(&t, &due), PARLEY_ENOTFOUND);
  assert_int_equal(due, 77);
  assert_int_equal(parley_lease_pop_expired(&t, UINT64_MAX, pk),
                   PARLEY_ENOTFOUND);
  key(pk, 1);
  assert_null(parley_lease_get(&t, pk));
  assert_int_equal(parley_lease_remove(&t, pk), PARLEY_ENOTFOUND);
  parley_lease_table_close(&t);
  parley_lease_table_close(&t); /* idempotent */
}

static void test_renew_and_expire_in_order(void **state) {
  struct parley_lease_table t;
  uint8_t a[32], b[32], c[32], out[32];
  uint64_t due;
  const struct parley_lease *l;
  (void)state;

  parley_lease_table_init(&t, 2);
  key(a, 1);
  key(b, 2);
  key(c, 3);
  assert_int_equal(parley_lease_renew(&t, a, 1000, 500, 111), PARLEY_OK);
  assert_int_equal(parley_lease_renew(&t, b, 1100, 500, 222), PARLEY_OK);
  assert_int_equal(parley_lease_renew(&t, c, 1200, 500, 333), PARLEY_OK);
  assert_int_equal(parley_lease_count(&t), 3);
  assert_int_equal(parley_lease_next_expiry(&t, &due), PARLEY_OK);
  assert_int_equal(due, 1500);

  /* a heartbeats: now b is first. */
  assert_int_equal(parley_lease_renew(&t, a, 1400, 500, 444), PARLEY_OK);
  assert_int_equal(parley_lease_count(&t), 3);
  l = parley_lease_get(&t, a);
  assert_non_null(l);
  assert_int_equal(l->expires_ms, 1900);
  assert_int_equal(l->last_seen_ms, 444);
  assert_int_equal(parley_lease_next_expiry(&t, &due), PARLEY_OK);
  assert_int_equal(due, 1600);

  /* Nothing has run out at 1599; at 1700 b and c have, b first. */
  assert_int_equal(parley_lease_pop_expired(&t, 1599, out), PARLEY_ENOTFOUND);
  assert_int_equal(parley_lease_pop_expired(&t, 1700, out), PARLEY_OK);
  assert_memory_equal(out, b, 32);
  assert_int_equal(parley_lease_pop_expired(&t, 1700, out), PARLEY_OK);
  assert_memory_equal(out, c, 32);
  assert_int_equal(parley_lease_pop_expired(&t, 1700, out), PARLEY_ENOTFOUND);
  assert_null(parley_lease_get(&t, b));
  assert_int_equal(parley_lease_count(&t), 1);
  /* Expiry is inclusive: a lease due at 1900 has run out at 1900. */
  assert_int_equal(parley_lease_pop_expired(&t, 1900, out), PARLEY_OK);
  assert_memory_equal(out, a, 32);
  assert_int_equal(parley_lease_count(&t), 0);
  parley_lease_table_close(&t);
}

static void test_ties_break_by_key_and_shorter_renewal(void **state) {
  struct parley_lease_table t;
  uint8_t a[32], b[32], out[32];
  uint64_t due;
  (void)state;

  parley_lease_table_init(&t, 3);
  key(a, 9);
  key(b, 4);
  assert_int_equal(parley_lease_renew(&t, a, 0, 100, 0), PARLEY_OK);
  assert_int_equal(parley_lease_renew(&t, b, 0, 100, 0), PARLEY_OK);
  assert_int_equal(parley_lease_pop_expired(&t, 100, out), PARLEY_OK);
  assert_memory_equal(out, b, 32); /* smaller key first */
  /* A renewal may shorten the lease. */
  assert_int_equal(parley_lease_renew(&t, a, 10, 5, 0), PARLEY_OK);
  assert_int_equal(parley_lease_next_expiry(&t, &due), PARLEY_OK);
  assert_int_equal(due, 15);
  /* Saturation instead of overflow. */
  assert_int_equal(parley_lease_renew(&t, a, UINT64_MAX - 1, 10, 0),
                   PARLEY_OK);
  assert_int_equal(parley_lease_next_expiry(&t, &due), PARLEY_OK);
  assert_int_equal(due, UINT64_MAX);
  parley_lease_table_close(&t);
}

/* Many leases renewed and removed in a scrambled order still come out
 * sorted by expiry, and every removal leaves a valid heap. */
static void test_many_sorted(void **state) {
  enum { N = 2000 };
  struct parley_lease_table t;
  uint8_t pk[32], out[32];
  uint64_t last = 0, expires;
  size_t popped = 0;
  (void)state;

  parley_lease_table_init(&t, 4);
  for (unsigned i = 0; i < N; i++) {
    key(pk, i);
    /* 7919 is prime, so (i * 7919) % N visits every value once. */
    assert_int_equal(
        parley_lease_renew(&t, pk, 0, (uint64_t)((i * 7919u) % N) + 1, 0),
        PARLEY_OK);
  }
  for (unsigned i = 0; i < N; i += 3) { /* renew a third, remove a third */
    key(pk, i);
    assert_int_equal(parley_lease_renew(&t, pk, 5000, i, 0), PARLEY_OK);
    key(pk, i + 1);
    if (i + 1 < N)
      assert_int_equal(parley_lease_remove(&t, pk), PARLEY_OK);
  }
  assert_int_equal(parley_lease_count(&t), N - (N + 1) / 3);
  while (parley_lease_pop_expired(&t, UINT64_MAX - 1, out) == PARLEY_OK) {
    unsigned i = ((unsigned)out[0] << 8) | out[1];
    expires = (i % 3 == 0) ? 5000u + i : (uint64_t)((i * 7919u) % N) + 1;
    assert_true(expires >= last);
    assert_true(i % 3 != 1);
    last = expires;
    popped++;
  }
  assert_int_equal(popped, N - (N + 1) / 3);
  assert_int_equal(parley_lease_count(&t), 0);
  parley_lease_table_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_renew_and_expire_in_order),
      cmocka_unit_test(test_ties_break_by_key_and_shorter_renewal),
      cmocka_unit_test(test_many_sorted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
