/* test_ratelimit.c — token buckets, strikes and bans (src/http/ratelimit.c)
 * on a fake clock: every time below is a literal. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/ratelimit.h"

#define K(s) (s), strlen(s)

static struct parley_rl *make(uint32_t burst, uint32_t rate, uint32_t per_ms,
                              uint32_t strikes, uint64_t window,
                              uint64_t ban, uint64_t ban_max, size_t max) {
  struct parley_rl_config c = {.burst = burst,
                               .rate = rate,
                               .per_ms = per_ms,
                               .strikes = strikes,
                               .strike_window_ms = window,
                               .ban_ms = ban,
                               .ban_max_ms = ban_max,
                               .max_entries = max};
  struct parley_rl *rl = NULL;
  assert_int_equal(parley_rl_new(&c, 42, &rl), PARLEY_OK);
  assert_non_null(rl);
  return rl;
}

static void test_config_checked(void **state) {
  struct parley_rl_config c = {.burst = 5, .rate = 1, .per_ms = 1000,
                               .ban_ms = 1000};
  struct parley_rl *rl = (struct parley_rl *)1;
  (void)state;
  c.burst = 0;
  assert_int_equal(parley_rl_new(&c, 1, &rl), PARLEY_EINVAL);
  assert_null(rl);
  c.burst = 5;
  c.rate = 0;
  assert_int_equal(parley_rl_new(&c, 1, &rl), PARLEY_EINVAL);
  c.rate = 2001; /* faster than one token per microsecond */
  c.per_ms = 2;
  assert_int_equal(parley_rl_new(&c, 1, &rl), PARLEY_EINVAL);
  c.rate = 1;
  c.per_ms = 1000;
  c.ban_ms = 0;
  assert_int_equal(parley_rl_new(&c, 1, &rl), PARLEY_EINVAL);
  c.ban_ms = 1000;
  c.ban_max_ms = 500; /* below ban_ms */
  assert_int_equal(parley_rl_new(&c, 1, &rl), PARLEY_EINVAL);
  c.ban_max_ms = 0;
  c.strikes = 3; /* needs a window */
  assert_int_equal(parley_rl_new(&c, 1, &rl), PARLEY_EINVAL);
  c.strike_window_ms = 1;
  assert_int_equal(parley_rl_new(&c, 1, &rl), PARLEY_OK);
  parley_rl_free(rl);
  parley_rl_free(NULL);
}

static void test_bucket_burst_and_refill(void **state) {
  /* 3 tokens, one back every 1000 ms. */
  struct parley_rl *rl = make(3, 1, 1000, 0, 0, 1000, 0, 0);
  struct parley_rl_stats st;
  uint64_t retry = 99;
  (void)state;

  for (int i = 0; i < 3; i++)
    assert_int_equal(parley_rl_take(rl, K("a"), 1, 10000, &retry), PARLEY_OK);
  assert_int_equal(retry, 0);
  assert_int_equal(parley_rl_take(rl, K("a"), 1, 10000, &retry), PARLEY_ELIMIT);
  assert_int_equal(retry, 1000);
  /* Another key has its own bucket. */
  assert_int_equal(parley_rl_take(rl, K("b"), 1, 10000, &retry), PARLEY_OK);
  /* 999 ms later: still nothing; 1 ms more: exactly one token. */
  assert_int_equal(parley_rl_take(rl, K("a"), 1, 10999, &retry), PARLEY_ELIMIT);
  assert_int_equal(retry, 1);
  assert_int_equal(parley_rl_take(rl, K("a"), 1, 11000, &retry), PARLEY_OK);
  assert_int_equal(parley_rl_take(rl, K("a"), 1, 11000, &retry), PARLEY_ELIMIT);
  /* A long pause refills to the burst, not beyond. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(parley_rl_take(rl, K("a"), 1, 1000000, NULL), PARLEY_OK);
  assert_int_equal(parley_rl_take(rl, K("a"), 1, 1000000, NULL), PARLEY_ELIMIT);
  /* Cost: 2 tokens need 2 s after empty; over burst is invalid. */
  assert_int_equal(parley_rl_take(rl, K("a"), 2, 1001000, &retry),
                   PARLEY_ELIMIT);
  assert_int_equal(retry, 1000);
  assert_int_equal(parley_rl_take(rl, K("a"), 2, 1002000, &retry), PARLEY_OK);
  assert_int_equal(parley_rl_take(rl, K("a"), 4, 9000000, NULL), PARLEY_EINVAL);
  assert_int_equal(parley_rl_take(rl, K("a"), 0, 9000000, NULL), PARLEY_EINVAL);

  parley_rl_stats(rl, 1002000, &st);
  assert_int_equal(st.allowed, 9);
  assert_int_equal(st.limited, 5);
  assert_int_equal(st.entries, 2);
  assert_int_equal(st.bans, 0);
  parley_rl_free(rl);
}

static void test_fractional_rate_no_drift(void **state) {
  /* 3 tokens per 1000 ms = one per 333.333 ms: a client polling every ms
   * must get exactly the rate over a long run, although no token arrives
   * on a millisecond boundary. */
  struct parley_rl *rl = make(2, 3, 1000, 0, 0, 1000, 0, 0);
  unsigned ok = 0;
  (void)state;
  for (uint64_t t = 0; t < 60000; t++)
    ok += parley_rl_take(rl, K("k"), 1, t, NULL) == PARLEY_OK;
  /* The burst of 2 at t=0, then the (n+1)-th take at (n-1) * 333333 us:
   * n - 1 = 1..179 fit before 60 s. */
  assert_int_equal(ok, 181);
  parley_rl_free(rl);
}

static void test_strikes_ban_and_escalate(void **state) {
  /* 3 strikes within 10 s ban for 1 s, doubling up to 4 s. */
  struct parley_rl *rl = make(100, 100, 1000, 3, 10000, 1000, 4000, 0);
  struct parley_rl_stats st;
  uint64_t retry = 0;
  (void)state;

  assert_int_equal(parley_rl_strike(rl, K("ip"), 0, &retry), PARLEY_OK);
  assert_int_equal(parley_rl_strike(rl, K("ip"), 5000, &retry), PARLEY_OK);
  /* The window started at 0: a strike at 10000 opens a new window. */
  assert_int_equal(parley_rl_strike(rl, K("ip"), 10000, &retry), PARLEY_OK);
  assert_int_equal(parley_rl_strike(rl, K("ip"), 10001, &retry), PARLEY_OK);
  assert_int_equal(parley_rl_strike(rl, K("ip"), 10002, &retry),
                   PARLEY_EDENIED);
  assert_int_equal(retry, 1000);
  assert_int_equal(parley_rl_check(rl, K("ip"), 10500, &retry),
                   PARLEY_EDENIED);
  assert_int_equal(retry, 502);
  assert_int_equal(parley_rl_take(rl, K("ip"), 1, 10500, &retry),
                   PARLEY_EDENIED);
  assert_int_equal(retry, 502);
  /* Strikes during a ban do not lengthen it. */
  assert_int_equal(parley_rl_strike(rl, K("ip"), 10600, &retry),
                   PARLEY_EDENIED);
  assert_int_equal(retry, 402);
  /* Ban over at 11002 exactly. */
  assert_int_equal(parley_rl_check(rl, K("ip"), 11001, NULL), PARLEY_EDENIED);
  assert_int_equal(parley_rl_check(rl, K("ip"), 11002, &retry), PARLEY_OK);
  assert_int_equal(retry, 0);
  assert_int_equal(parley_rl_take(rl, K("ip"), 1, 11002, NULL), PARLEY_OK);
  /* Second ban: 2 s; third: 4 s; fourth: capped at 4 s. */
  for (int i = 0; i < 2; i++)
    assert_int_equal(parley_rl_strike(rl, K("ip"), 12000, NULL), PARLEY_OK);
  assert_int_equal(parley_rl_strike(rl, K("ip"), 12000, &retry),
                   PARLEY_EDENIED);
  assert_int_equal(retry, 2000);
  for (int i = 0; i < 2; i++)
    assert_int_equal(parley_rl_strike(rl, K("ip"), 14000, NULL), PARLEY_OK);
  assert_int_equal(parley_rl_strike(rl, K("ip"), 14000, &retry),
                   PARLEY_EDENIED);
  assert_int_equal(retry, 4000);
  for (int i = 0; i < 2; i++)
    assert_int_equal(parley_rl_strike(rl, K("ip"), 18000, NULL), PARLEY_OK);
  assert_int_equal(parley_rl_strike(rl, K("ip"), 18000, &retry),
                   PARLEY_EDENIED);
  assert_int_equal(retry, 4000);

  parley_rl_stats(rl, 18000, &st);
  assert_int_equal(st.bans, 4);
  assert_int_equal(st.active_bans, 1);
  assert_int_equal(st.strikes, 15);
  assert_int_equal(st.refused_banned, 3);
  /* A key never struck is never banned. */
  assert_int_equal(parley_rl_check(rl, K("other"), 18000, NULL), PARLEY_OK);
  /* Forget clears the ban. */
  assert_int_equal(parley_rl_forget(rl, K("ip")), PARLEY_OK);
  assert_int_equal(parley_rl_forget(rl, K("ip")), PARLEY_ENOTFOUND);
  assert_int_equal(parley_rl_check(rl, K("ip"), 18001, NULL), PARLEY_OK);
  parley_rl_free(rl);
}

static void test_explicit_ban(void **state) {
  struct parley_rl *rl = make(1, 1, 1000, 0, 0, 1000, 0, 0);
  uint64_t retry;
  (void)state;
  assert_int_equal(parley_rl_ban(rl, K("p"), 100, 0), PARLEY_EINVAL);
  assert_int_equal(parley_rl_ban(rl, K("p"), 100, 5000), PARLEY_OK);
  /* A shorter ban does not cut a longer one short. */
  assert_int_equal(parley_rl_ban(rl, K("p"), 200, 10), PARLEY_OK);
  assert_int_equal(parley_rl_take(rl, K("p"), 1, 5099, &retry),
                   PARLEY_EDENIED);
  assert_int_equal(retry, 1);
  assert_int_equal(parley_rl_take(rl, K("p"), 1, 5100, &retry), PARLEY_OK);
  /* strikes = 0: strikes are counted but never ban. */
  for (int i = 0; i < 50; i++)
    assert_int_equal(parley_rl_strike(rl, K("q"), 6000, NULL), PARLEY_OK);
  parley_rl_free(rl);
}

static void test_keys_checked(void **state) {
  struct parley_rl *rl = make(1, 1, 1000, 0, 0, 1000, 0, 0);
  char big[PARLEY_RL_MAX_KEY + 1];
  (void)state;
  memset(big, 'x', sizeof big);
  assert_int_equal(parley_rl_take(rl, "", 0, 1, 0, NULL), PARLEY_EINVAL);
  assert_int_equal(parley_rl_take(rl, big, sizeof big, 1, 0, NULL),
                   PARLEY_EINVAL);
  assert_int_equal(parley_rl_take(rl, big, sizeof big - 1, 1, 0, NULL),
                   PARLEY_OK);
  /* Binary keys with NUL bytes are distinct keys. */
  assert_int_equal(parley_rl_take(rl, "a\0b", 3, 1, 0, NULL), PARLEY_OK);
  assert_int_equal(parley_rl_take(rl, "a\0c", 3, 1, 0, NULL), PARLEY_OK);
  assert_int_equal(parley_rl_take(rl, "a\0b", 3, 1, 0, NULL), PARLEY_ELIMIT);
  parley_rl_free(rl);
}

static void test_bounded_memory_lru(void **state) {
  /* At most 4 keys. */
  struct parley_rl *rl = make(2, 1, 1000, 1, 1000, 60000, 0, 4);
  struct parley_rl_stats st;
  char key[16];
  (void)state;

  /* Four keys with empty buckets (not dormant). */
  for (int i = 0; i < 4; i++) {
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(parley_rl_take(rl, K(key), 2, 0, NULL), PARLEY_OK);
  }
  /* Touch k0 so k1 is the least recently used. */
  assert_int_equal(parley_rl_take(rl, K("k0"), 1, 0, NULL), PARLEY_ELIMIT);
  assert_int_equal(parley_rl_take(rl, K("k4"), 2, 0, NULL), PARLEY_OK);
  parley_rl_stats(rl, 0, &st);
  assert_int_equal(st.entries, 4);
  assert_int_equal(st.evictions, 1);
  /* k1 was evicted: it comes back with a full bucket. */
  assert_int_equal(parley_rl_take(rl, K("k1"), 2, 0, NULL), PARLEY_OK);
  /* k0 survived with its empty bucket... until k1's insert evicted k2,
   * the oldest then; k0 is still there. */
  assert_int_equal(parley_rl_take(rl, K("k0"), 1, 0, NULL), PARLEY_ELIMIT);

  /* Dormant keys go first: after 2 s every bucket is full again; a ban on
   * k3 keeps it alive. */
  assert_int_equal(parley_rl_strike(rl, K("k3"), 1000, NULL), PARLEY_EDENIED);
  parley_rl_sweep(rl, 5000);
  parley_rl_stats(rl, 5000, &st);
  assert_int_equal(st.entries, 1);
  assert_int_equal(st.active_bans, 1);
  assert_int_equal(parley_rl_check(rl, K("k3"), 5000, NULL), PARLEY_EDENIED);
  /* After the ban (and its memory, = ban_ms) it is dormant too. */
  parley_rl_sweep(rl, 1000 + 60000 + 60000);
  parley_rl_stats(rl, 121000, &st);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.active_bans, 0);

  /* A table full of bans evicts the oldest ban for a newcomer. */
  for (int i = 0; i < 4; i++) {
    snprintf(key, sizeof key, "b%d", i);
    assert_int_equal(parley_rl_strike(rl, K(key), 200000, NULL),
                     PARLEY_EDENIED);
  }
  assert_int_equal(parley_rl_take(rl, K("new"), 1, 200000, NULL), PARLEY_OK);
  assert_int_equal(parley_rl_check(rl, K("b0"), 200000, NULL), PARLEY_OK);
  assert_int_equal(parley_rl_check(rl, K("b1"), 200000, NULL), PARLEY_EDENIED);
  parley_rl_free(rl);
}

static void test_many_keys_stay_bounded(void **state) {
  struct parley_rl *rl = make(1, 1, 1000, 0, 0, 1000, 0, 100);
  struct parley_rl_stats st;
  char key[32];
  (void)state;
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof key, "%d", i);
    assert_int_equal(parley_rl_take(rl, K(key), 1, (uint64_t)i, NULL),
                     PARLEY_OK);
  }
  parley_rl_stats(rl, 10000, &st);
  assert_int_equal(st.entries, 100);
  assert_int_equal(st.allowed, 10000);
  parley_rl_free(rl);
}

static void test_ip_keys(void **state) {
  char out[PARLEY_RL_IP_KEY_LEN];
  size_t len = 9;
  (void)state;
  assert_int_equal(parley_rl_ip_key("192.0.2.7", out, sizeof out, &len),
                   PARLEY_OK);
  assert_string_equal(out, "v4:192.0.2.7");
  assert_int_equal(len, 12);
  assert_int_equal(parley_rl_ip_key("::ffff:192.0.2.7", out, sizeof out, &len),
                   PARLEY_OK);
  assert_string_equal(out, "v4:192.0.2.7");
  assert_int_equal(
      parley_rl_ip_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", out, sizeof out,
                       &len),
      PARLEY_OK);
  assert_string_equal(out, "v6:2001:db8:1:2::/64");
  assert_int_equal(parley_rl_ip_key("[2001:DB8:1:2::1]", out, sizeof out, &len),
                   PARLEY_OK);
  assert_string_equal(out, "v6:2001:db8:1:2::/64");
  assert_int_equal(parley_rl_ip_key("::1", out, sizeof out, &len), PARLEY_OK);
  assert_string_equal(out, "v6:::/64");
  assert_int_equal(parley_rl_ip_key("fe80::1%eth0", out, sizeof out, &len),
                   PARLEY_EINVAL);
  assert_int_equal(parley_rl_ip_key("[192.0.2.7]", out, sizeof out, &len),
                   PARLEY_EINVAL);
  assert_int_equal(parley_rl_ip_key("1.2.3", out, sizeof out, &len),
                   PARLEY_EINVAL);
  assert_int_equal(parley_rl_ip_key("", out, sizeof out, &len), PARLEY_EINVAL);
  assert_int_equal(parley_rl_ip_key("[]", out, sizeof out, &len),
                   PARLEY_EINVAL);
  assert_int_equal(parley_rl_ip_key("example.org", out, sizeof out, &len),
                   PARLEY_EINVAL);
  assert_int_equal(parley_rl_ip_key("192.0.2.7", out, 12, &len),
                   PARLEY_ETOOBIG);
  assert_int_equal(len, 0);
  assert_string_equal(out, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_checked),
      cmocka_unit_test(test_bucket_burst_and_refill),
      cmocka_unit_test(test_fractional_rate_no_drift),
      cmocka_unit_test(test_strikes_ban_and_escalate),
      cmocka_unit_test(test_explicit_ban),
      cmocka_unit_test(test_keys_checked),
      cmocka_unit_test(test_bounded_memory_lru),
      cmocka_unit_test(test_many_keys_stay_bounded),
      cmocka_unit_test(test_ip_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
