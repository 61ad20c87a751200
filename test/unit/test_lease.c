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

/* A random mix of renewals, removals and pops against a plain array
 * model: the table finds every key the model has (and no other), reports
 * the model's earliest expiry, and pops in (expiry, key) order.  Keys
 * share their first bytes so that the key index sees long probe runs and
 * its backward-shift deletion is exercised. */
struct model_lease {
  int live;
  uint64_t expires;
  int64_t seen;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void test_random_against_model(void **state) {
  enum { K = 600, OPS = 60000 };
  static struct model_lease m[K];
  struct parley_lease_table t;
  uint8_t pk[32], out[32];
  size_t live = 0;
  uint64_t now = 0;
  (void)state;

  memset(m, 0, sizeof m);
  parley_lease_table_init(&t, 99);
  for (unsigned op = 0; op < OPS; op++) {
    unsigned k = (unsigned)(rng() % K), r = (unsigned)(rng() % 100);
    key(pk, k);
    if (r < 55) { /* renew (or start) */
      uint64_t d = rng() % 1000;
      assert_int_equal(parley_lease_renew(&t, pk, now, d, (int64_t)op),
                       PARLEY_OK);
      if (!m[k].live)
        live++;
      m[k].live = 1;
      m[k].expires = now + d;
      m[k].seen = (int64_t)op;
    } else if (r < 75) { /* remove */
      assert_int_equal(parley_lease_remove(&t, pk),
                       m[k].live ? PARLEY_OK : PARLEY_ENOTFOUND);
      if (m[k].live)
        live--;
      m[k].live = 0;
    } else if (r < 80) { /* time passes; pop what ran out */
      uint64_t last = 0;
      unsigned lastk = 0;
      int first = 1;
      now += rng() % 300;
      while (parley_lease_pop_expired(&t, now, out) == PARLEY_OK) {
        unsigned i = ((unsigned)out[0] << 8) | out[1];
        assert_true(i < K);
        assert_true(m[i].live);
        assert_true(m[i].expires <= now);
        /* (expiry, key) order; keys compare like their numbers here */
        assert_true(first || m[i].expires > last ||
                    (m[i].expires == last && i > lastk));
        first = 0;
        last = m[i].expires;
        lastk = i;
        m[i].live = 0;
        live--;
      }
      for (unsigned i = 0; i < K; i++)
        assert_true(!m[i].live || m[i].expires > now);
    } else { /* look up */
      const struct parley_lease *l = parley_lease_get(&t, pk);
      if (m[k].live) {
        assert_non_null(l);
        assert_memory_equal(l->pk, pk, 32);
        assert_int_equal(l->expires_ms, m[k].expires);
        assert_int_equal(l->last_seen_ms, m[k].seen);
      } else {
        assert_null(l);
      }
    }
    assert_int_equal(parley_lease_count(&t), live);
    if (op % 997 == 0) {
      uint64_t due, best = UINT64_MAX;
      for (unsigned i = 0; i < K; i++)
        if (m[i].live && m[i].expires < best)
          best = m[i].expires;
      if (live == 0) {
        assert_int_equal(parley_lease_next_expiry(&t, &due),
                         PARLEY_ENOTFOUND);
      } else {
        assert_int_equal(parley_lease_next_expiry(&t, &due), PARLEY_OK);
        assert_int_equal(due, best);
      }
    }
  }
  /* Every live key is found; a full drain empties the table. */
  for (unsigned i = 0; i < K; i++) {
    key(pk, i);
    assert_true((parley_lease_get(&t, pk) != NULL) == (m[i].live != 0));
  }
  while (parley_lease_pop_expired(&t, UINT64_MAX, out) == PARLEY_OK)
    live--;
  assert_int_equal(live, 0);
  assert_int_equal(parley_lease_count(&t), 0);
  key(pk, 1);
  assert_null(parley_lease_get(&t, pk));
  /* The table is reusable after it emptied, and after close. */
  assert_int_equal(parley_lease_renew(&t, pk, 1, 1, 1), PARLEY_OK);
  assert_int_equal(parley_lease_count(&t), 1);
  parley_lease_table_close(&t);
  assert_int_equal(parley_lease_count(&t), 0);
  assert_int_equal(parley_lease_renew(&t, pk, 1, 1, 1), PARLEY_OK);
  assert_non_null(parley_lease_get(&t, pk));
  parley_lease_table_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_renew_and_expire_in_order),
      cmocka_unit_test(test_ties_break_by_key_and_shorter_renewal),
      cmocka_unit_test(test_many_sorted),
      cmocka_unit_test(test_random_against_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
