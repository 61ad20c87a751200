/*
 * test_registry.c — the registry state machine (registry.h): commands and
 * their events, limits, sorted walks, private topics' grants and key
 * blobs.  The snapshot, its restore and the single-node store
 * (regstore.h) are in test_registry_snap.c, the command codec in
 * test_registry_cmd.c; registry_fixture.h holds what they share.
 *
 * Every test runs on a counting allocator: the teardown fails if a test
 * leaked, and the OOM tests fail the k-th allocation to check that a
 * refused command leaves no trace.  The determinism test runs 5 000
 * pseudo-random commands against two registries with different histories,
 * a restored copy and an independent model that encodes the expected
 * snapshot bytes itself.
 */
#include "registry_fixture.h"

#include <malloc.h>

/* Commands and events ------------------------------------------------------ */

static void test_new_and_limits(void **state) {
  struct parley_reg_limits lim = {0, 0, PARLEY_MAX_TOPIC + 1, 0, 0};
  struct parley_registry *r = (void *)1;
  (void)state;

  assert_int_equal(parley_registry_new(&lim, &r), PARLEY_EINVAL);
  assert_null(r);
  assert_int_equal(parley_registry_new(NULL, &r), PARLEY_OK);
  assert_int_equal(parley_registry_peer_count(r), 0);
  assert_int_equal(parley_registry_topic_count(r), 0);
  parley_registry_free(r);
  parley_registry_free(NULL);
}

static void test_register_events(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct recorder rc;
  const struct parley_reg_peer *p;
  char line[64];
  uint8_t a[32];
  (void)state;

  mkpk(a, 1);
  observe(r, &rc);
  assert_null(parley_registry_peer(r, a));
  assert_int_equal(reg(r, a, 1000, "10.0.0.1:7000", "alice"), PARLEY_OK);
  snprintf(line, sizeof line, "UP %s 0\n", key_text(1));
  assert_string_equal(events(&rc), line);
  p = parley_registry_peer(r, a);
  assert_non_null(p);
  assert_memory_equal(p->pk, a, 32);
  assert_string_equal(p->addr, "10.0.0.1:7000");
  assert_string_equal(p->name, "alice");
  assert_int_equal(p->registered_ms, 1000);
  assert_int_equal(p->updated_ms, 1000);
  assert_int_equal(p->nsubs, 0);

  /* Same address and name: a lease renewal, no event. */
  assert_int_equal(reg(r, a, 2000, "10.0.0.1:7000", "alice"), PARLEY_OK);
  assert_string_equal(events(&rc), "");
  p = parley_registry_peer(r, a);
  assert_int_equal(p->registered_ms, 1000);
  assert_int_equal(p->updated_ms, 2000);

  /* New address, then new name: PEER_UP each time. */
  assert_int_equal(reg(r, a, 3000, "[::1]:7001", "alice"), PARLEY_OK);
  assert_string_equal(events(&rc), line);
  assert_int_equal(reg(r, a, 4000, "[::1]:7001", "Alice B."), PARLEY_OK);
  assert_string_equal(events(&rc), line);
  p = parley_registry_peer(r, a);
  assert_string_equal(p->addr, "[::1]:7001");
  assert_string_equal(p->name, "Alice B.");
  assert_int_equal(p->registered_ms, 1000);
  assert_int_equal(p->updated_ms, 4000);
  assert_int_equal(parley_registry_peer_count(r), 1);

  /* Timestamps are recorded, never compared: going back is fine. */
  assert_int_equal(reg(r, a, -5, "[::1]:7001", "Alice B."), PARLEY_OK);
  assert_int_equal(parley_registry_peer(r, a)->updated_ms, -5);
  parley_registry_free(r);
}

static void test_register_invalid(void **state) {
  static const char *bad_addr[] = {
      "",           "nohost",   ":7000",      "host:",      "host:0",
      "host:65536", "host:12x", "ho st:7000", "host:7000 ", "\x01host:7000",
      "[::1]7000",  "host:-1",  "\xc3\xa9:1",
  };
  struct parley_registry *r = mkreg(0, 0, 0);
  struct parley_reg_cmd c;
  struct recorder rc;
  uint8_t a[32];
  char name[PARLEY_MAX_NAME + 2];
  (void)state;

  mkpk(a, 1);
  observe(r, &rc);
  for (size_t i = 0; i < sizeof bad_addr / sizeof *bad_addr; i++) {
    c = cmd(PARLEY_REG_REGISTER, a, 1, bad_addr[i], "n", "");
    assert_int_equal(parley_registry_check(r, &c), PARLEY_EINVAL);
    assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);
  }
  /* Longest address: 96 bytes. */
  c = cmd(PARLEY_REG_REGISTER, a, 1, "", "", "");
  memset(c.addr, 'h', PARLEY_MAX_ADDR - 5);
  memcpy(c.addr + PARLEY_MAX_ADDR - 5, ":7000", 6);
  assert_int_equal(strlen(c.addr), PARLEY_MAX_ADDR);
  assert_int_equal(parley_registry_check(r, &c), PARLEY_OK);
  /* No NUL anywhere in the array. */
  memset(c.addr, 'h', sizeof c.addr);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);

  /* Names are UTF-8 without control characters. */
  {
    static const char *bad_name[] = {
        "tab\there", "nl\n",     "del\x7f",      "c1 \xc2\x85",      "\xff",
        "trunc\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
    };
    for (size_t i = 0; i < sizeof bad_name / sizeof *bad_name; i++) {
      c = cmd(PARLEY_REG_REGISTER, a, 1, "h:1", bad_name[i], "");
      assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);
    }
  }
  c = cmd(PARLEY_REG_REGISTER, a, 1, "h:1", "Zo\xc3\xab \xe2\x9c\x93 \xc2\xa0",
          "");
  assert_int_equal(parley_registry_check(r, &c), PARLEY_OK);
  memset(name, 'n', sizeof name);
  name[PARLEY_MAX_NAME] = '\0';
  c = cmd(PARLEY_REG_REGISTER, a, 1, "h:1", name, "");
  assert_int_equal(parley_registry_check(r, &c), PARLEY_OK);
  memset(c.name, 'n', sizeof c.name);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);

  c = cmd(0, a, 1, "h:1", "n", "");
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);
  c.type = 5;
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);

  assert_int_equal(parley_registry_peer_count(r), 0);
  assert_string_equal(events(&rc), "");
  /* An empty name is fine. */
  assert_int_equal(reg(r, a, 1, "h:1", ""), PARLEY_OK);
  parley_registry_free(r);
}

static void test_subscribe(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct recorder rc;
  struct walk w;
  char exp[256], topic[PARLEY_DEFAULT_MAX_TOPIC + 2];
  uint8_t a[32], b[32];
  (void)state;

  mkpk(a, 1);
  mkpk(b, 2);
  observe(r, &rc);
  assert_int_equal(sub(r, a, "news"), PARLEY_EUNKNOWNPEER);
  assert_int_equal(parley_registry_topic_count(r), 0);
  assert_int_equal(reg(r, a, 1, "a:1", "a"), PARLEY_OK);
  assert_int_equal(reg(r, b, 1, "b:1", "b"), PARLEY_OK);
  (void)events(&rc);

  assert_int_equal(sub(r, a, "news"), PARLEY_OK);
  snprintf(exp, sizeof exp, "ADD %s news 1\n", key_text(1));
  assert_string_equal(events(&rc), exp);
  assert_int_equal(sub(r, a, "news"), PARLEY_OK); /* idempotent */
  assert_string_equal(events(&rc), "");
  assert_int_equal(sub(r, b, "news"), PARLEY_OK);
  assert_int_equal(sub(r, a, "alpha"), PARLEY_OK);
  assert_int_equal(sub(r, a, "Zulu"), PARLEY_OK);
  snprintf(exp, sizeof exp, "ADD %s news 1\nADD %s alpha 2\nADD %s Zulu 3\n",
           key_text(2), key_text(1), key_text(1));
  assert_string_equal(events(&rc), exp);
  assert_int_equal(parley_registry_topic_count(r), 3);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 3);
  assert_int_equal(parley_registry_peer(r, b)->nsubs, 1);

  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_sub_of(r, a, walk_name, &w), 0);
  assert_string_equal(w.buf, "Zulu alpha news "); /* byte order */
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_topic(r, walk_topic, &w), 0);
  assert_string_equal(w.buf, "Zulu=1 alpha=1 news=2 ");
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_subscriber(r, "news", walk_peer, &w),
                   0);
  /* Subscribers come in key order whatever the subscription order. */
  if (memcmp(a, b, 32) < 0)
    snprintf(exp, sizeof exp, "%s %s ", key_text(1), key_text(2));
  else
    snprintf(exp, sizeof exp, "%s %s ", key_text(2), key_text(1));
  assert_string_equal(w.buf, exp);

  /* Malformed topics. */
  assert_int_equal(sub(r, a, ""), PARLEY_EINVAL);
  assert_int_equal(sub(r, a, "@direct"), PARLEY_EINVAL);
  assert_int_equal(sub(r, a, "two words"), PARLEY_EINVAL);
  assert_int_equal(sub(r, a, "tab\t"), PARLEY_EINVAL);
  assert_int_equal(sub(r, a, "\x7f"), PARLEY_EINVAL);
  memset(topic, 't', sizeof topic);
  topic[PARLEY_DEFAULT_MAX_TOPIC + 1] = '\0'; /* 129 bytes */
  assert_int_equal(sub(r, a, topic), PARLEY_EINVAL);
  assert_int_equal(unsub(r, a, topic), PARLEY_EINVAL);
  topic[PARLEY_DEFAULT_MAX_TOPIC] = '\0'; /* 128 bytes */
  assert_int_equal(sub(r, a, topic), PARLEY_OK);
  assert_int_equal(sub(r, a, "a@b"), PARLEY_OK);
  (void)events(&rc);
  parley_registry_free(r);
}

static void test_unsubscribe(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct recorder rc;
  char exp[256];
  uint8_t a[32], b[32], c[32];
  (void)state;

  mkpk(a, 1);
  mkpk(b, 2);
  mkpk(c, 3);
  assert_int_equal(reg(r, a, 1, "a:1", "a"), PARLEY_OK);
  assert_int_equal(reg(r, b, 1, "b:1", "b"), PARLEY_OK);
  assert_int_equal(sub(r, a, "t1"), PARLEY_OK);
  assert_int_equal(sub(r, a, "t2"), PARLEY_OK);
  assert_int_equal(sub(r, b, "t1"), PARLEY_OK);
  observe(r, &rc);

  assert_int_equal(unsub(r, a, "t1"), PARLEY_OK);
  snprintf(exp, sizeof exp, "DEL %s t1 1\n", key_text(1));
  assert_string_equal(events(&rc), exp);
  assert_int_equal(parley_registry_topic_count(r), 2);
  assert_int_equal(unsub(r, a, "t1"), PARLEY_OK); /* missing: no-op */
  assert_int_equal(unsub(r, a, "nosuch"), PARLEY_OK);
  assert_int_equal(unsub(r, c, "t1"), PARLEY_OK); /* unknown peer */
  assert_string_equal(events(&rc), "");
  assert_int_equal(unsub(r, a, "t2"), PARLEY_OK);
  snprintf(exp, sizeof exp, "DEL %s t2 0\n", key_text(1));
  assert_string_equal(events(&rc), exp);
  /* The empty topic is gone. */
  assert_int_equal(parley_registry_topic_count(r), 1);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 0);
  assert_int_equal(unsub(r, b, "t1"), PARLEY_OK);
  assert_int_equal(parley_registry_topic_count(r), 0);
  (void)events(&rc);
  parley_registry_free(r);
}

static void test_expire(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct recorder rc;
  struct walk w;
  char exp[512];
  uint8_t a[32], b[32], c[32];
  (void)state;

  mkpk(a, 1);
  mkpk(b, 2);
  mkpk(c, 3);
  assert_int_equal(reg(r, a, 10, "a:1", "a"), PARLEY_OK);
  assert_int_equal(reg(r, b, 10, "b:1", "b"), PARLEY_OK);
  assert_int_equal(sub(r, a, "zeta"), PARLEY_OK);
  assert_int_equal(sub(r, a, "alpha"), PARLEY_OK);
  assert_int_equal(sub(r, a, "mid"), PARLEY_OK);
  assert_int_equal(sub(r, b, "mid"), PARLEY_OK);
  observe(r, &rc);

  assert_int_equal(expire(r, c), PARLEY_OK); /* unknown: no-op */
  assert_string_equal(events(&rc), "");
  assert_int_equal(expire(r, a), PARLEY_OK);
  snprintf(exp, sizeof exp,
           "DEL %s alpha 2\nDEL %s mid 1\nDEL %s zeta 0\nDOWN %s 0\n",
           key_text(1), key_text(1), key_text(1), key_text(1));
  assert_string_equal(events(&rc), exp);
  assert_null(parley_registry_peer(r, a));
  assert_int_equal(parley_registry_peer_count(r), 1);
  assert_int_equal(parley_registry_topic_count(r), 1); /* "mid" stays */
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_subscriber(r, "mid", walk_peer, &w),
                   0);
  snprintf(exp, sizeof exp, "%s ", key_text(2));
  assert_string_equal(w.buf, exp);
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_sub_of(r, a, walk_name, &w), 0);
  assert_int_equal(w.calls, 0);
  assert_int_equal(expire(r, a), PARLEY_OK);
  assert_string_equal(events(&rc), "");

  /* Registering again starts afresh. */
  assert_int_equal(reg(r, a, 99, "a:2", "a"), PARLEY_OK);
  assert_int_equal(parley_registry_peer(r, a)->registered_ms, 99);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 0);
  (void)events(&rc);
  parley_registry_free(r);
}

static void test_register_keeps_subs(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  uint8_t a[32];
  (void)state;

  mkpk(a, 1);
  assert_int_equal(reg(r, a, 1, "a:1", "a"), PARLEY_OK);
  assert_int_equal(sub(r, a, "x"), PARLEY_OK);
  assert_int_equal(sub(r, a, "y"), PARLEY_OK);
  assert_int_equal(reg(r, a, 2, "a:2", "renamed"), PARLEY_OK);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 2);
  assert_int_equal(parley_registry_topic_count(r), 2);
  parley_registry_free(r);
}

static void test_limits(void **state) {
  struct parley_registry *r = mkreg(2, 2, 8);
  struct parley_reg_cmd c;
  struct parley_buf before, after;
  uint8_t a[32], b[32], d[32];
  (void)state;

  mkpk(a, 1);
  mkpk(b, 2);
  mkpk(d, 3);
  assert_int_equal(reg(r, a, 1, "a:1", "a"), PARLEY_OK);
  assert_int_equal(reg(r, b, 1, "b:1", "b"), PARLEY_OK);
  c = cmd(PARLEY_REG_REGISTER, d, 1, "d:1", "d", "");
  assert_int_equal(parley_registry_check(r, &c), PARLEY_ELIMIT);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_ELIMIT);
  assert_int_equal(reg(r, a, 2, "a:9", "a"), PARLEY_OK); /* existing */
  assert_int_equal(expire(r, b), PARLEY_OK);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_OK);

  assert_int_equal(sub(r, a, "t1"), PARLEY_OK);
  assert_int_equal(sub(r, a, "t2"), PARLEY_OK);
  c = cmd(PARLEY_REG_SUBSCRIBE, a, 0, "", "", "t3");
  snap_of(r, &before);
  assert_int_equal(parley_registry_check(r, &c), PARLEY_ELIMIT);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_ELIMIT);
  snap_of(r, &after);
  assert_int_equal(before.len, after.len);
  assert_memory_equal(before.data, after.data, before.len);
  assert_int_equal(sub(r, a, "t2"), PARLEY_OK); /* already: not a new sub */
  assert_int_equal(unsub(r, a, "t1"), PARLEY_OK);
  assert_int_equal(sub(r, a, "t3"), PARLEY_OK);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 2);

  /* max_topic_len 8. */
  assert_int_equal(sub(r, d, "12345678"), PARLEY_OK);
  assert_int_equal(sub(r, d, "123456789"), PARLEY_EINVAL);
  /* Checks of well-formedness come before the peer lookup. */
  assert_int_equal(sub(r, b, "123456789"), PARLEY_EINVAL);
  assert_int_equal(sub(r, b, "ok"), PARLEY_EUNKNOWNPEER);
  parley_buf_close(&before);
  parley_buf_close(&after);
  parley_registry_free(r);
}

static void test_foreach_order_and_stop(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct walk w;
  uint8_t pk[32];
  struct walk exp;
  unsigned order[20];
  (void)state;

  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_peer(r, walk_peer, &w), 0);
  assert_int_equal(parley_registry_foreach_topic(r, walk_topic, &w), 0);
  assert_int_equal(parley_registry_foreach_subscriber(r, "none", walk_peer, &w),
                   0);
  mkpk(pk, 1);
  assert_int_equal(parley_registry_foreach_sub_of(r, pk, walk_name, &w), 0);
  assert_int_equal(w.calls, 0);

  for (unsigned i = 0; i < 20; i++) {
    mkpk(pk, 19 - i);
    assert_int_equal(reg(r, pk, i, "h:1", "x"), PARLEY_OK);
    assert_int_equal(sub(r, pk, "all"), PARLEY_OK);
  }
  /* Expected: keys sorted by bytes (selection sort over the 20 keys). */
  for (unsigned i = 0; i < 20; i++)
    order[i] = i;
  for (unsigned i = 0; i < 20; i++)
    for (unsigned j = i + 1; j < 20; j++) {
      uint8_t x[32], y[32];
      mkpk(x, order[i]);
      mkpk(y, order[j]);
      if (memcmp(x, y, 32) > 0) {
        unsigned t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
  memset(&exp, 0, sizeof exp);
  for (unsigned i = 0; i < 20; i++)
    walk_add(&exp, key_text(order[i]));
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_peer(r, walk_peer, &w), 0);
  assert_string_equal(w.buf, exp.buf);
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_subscriber(r, "all", walk_peer, &w),
                   0);
  assert_string_equal(w.buf, exp.buf);

  /* A non-zero return stops the walk and is returned. */
  memset(&w, 0, sizeof w);
  w.stop_after = 3;
  assert_int_equal(parley_registry_foreach_peer(r, walk_peer, &w), 7);
  assert_int_equal(w.calls, 3);
  memset(&w, 0, sizeof w);
  w.stop_after = 5;
  assert_int_equal(parley_registry_foreach_subscriber(r, "all", walk_peer, &w),
                   7);
  assert_int_equal(w.calls, 5);
  mkpk(pk, 4);
  assert_int_equal(sub(r, pk, "b"), PARLEY_OK);
  assert_int_equal(sub(r, pk, "c"), PARLEY_OK);
  memset(&w, 0, sizeof w);
  w.stop_after = 2;
  assert_int_equal(parley_registry_foreach_sub_of(r, pk, walk_name, &w), 7);
  assert_string_equal(w.buf, "all b ");
  memset(&w, 0, sizeof w);
  w.stop_after = 1;
  assert_int_equal(parley_registry_foreach_topic(r, walk_topic, &w), 7);
  assert_string_equal(w.buf, "all=20 ");
  parley_registry_free(r);
}

/* Out of memory
 * ---------------------------------------------------------------- */

static void test_oom_apply(void **state) {
  struct parley_registry *r = mkreg(4, 0, 0), *ref = mkreg(4, 0, 0);
  struct recorder rc, rrc;
  uint8_t pk[32];
  char topic[8];
  int failures = 0;
  (void)state;

  rng_state = 42;
  observe(r, &rc);
  observe(ref, &rrc);
  for (int step = 0; step < 400; step++) {
    struct parley_reg_cmd c;
    struct parley_buf before, after;
    int want, got = PARLEY_ENOMEM;
    unsigned kind = (unsigned)(rng() % 4);

    mkpk(pk, (unsigned)(rng() % 12));
    snprintf(topic, sizeof topic, "t%u", (unsigned)(rng() % 6));
    c = cmd((uint8_t)(kind + 1), pk, (int64_t)step, "h:1",
            rng() % 2 ? "a" : "b", kind >= 2 ? topic : "");
    want = parley_registry_apply(ref, &c);
    snap_of(r, &before);
    for (long k = 0; got == PARLEY_ENOMEM; k++) {
      rc.len = 0;
      heap.fail_after = k;
      got = parley_registry_apply(r, &c);
      heap.fail_after = -1;
      if (got == PARLEY_ENOMEM) {
        failures++;
        assert_int_equal(rc.len, 0); /* no event for a refused command */
        snap_of(r, &after);
        assert_int_equal(before.len, after.len);
        assert_memory_equal(before.data, after.data, before.len);
        parley_buf_close(&after);
      }
    }
    assert_int_equal(got, want);
    assert_string_equal(events(&rc), events(&rrc));
    parley_buf_close(&before);
  }
  assert_true(failures > 100);
  assert_same_state(r, ref);

  /* Snapshot, restore and walks report ENOMEM too. */
  {
    struct parley_buf b, x;
    struct walk w;
    int rcode = PARLEY_ENOMEM;
    memset(&w, 0, sizeof w);
    assert_true(parley_registry_peer_count(ref) > 0);
    snap_of(ref, &b);
    for (long k = 0; rcode == PARLEY_ENOMEM; k++) {
      heap.fail_after = k;
      rcode = parley_registry_restore(r, b.data, b.len);
      heap.fail_after = -1;
      if (rcode == PARLEY_ENOMEM)
        assert_int_equal(parley_registry_peer_count(r), 0);
    }
    assert_int_equal(rcode, PARLEY_OK);
    assert_same_state(r, ref);
    parley_buf_init(&x, 1 << 20);
    heap.fail_after = 0;
    assert_int_equal(parley_registry_snapshot(r, &x), PARLEY_ENOMEM);
    assert_int_equal(parley_registry_foreach_peer(r, walk_peer, &w),
                     PARLEY_ENOMEM);
    heap.fail_after = -1;
    assert_int_equal(x.len, 0);
    parley_buf_close(&x);
    parley_buf_close(&b);
  }
  parley_registry_free(r);
  parley_registry_free(ref);
}

/* Determinism against a model ---------------------------------------------- */

#define MK 64 /* keys */
#define MT 20 /* valid topics */
#define M_MAX_SUBS 6
#define M_MAX_PEERS 40
#define M_MAX_TOPIC 16

static const char *m_topics[MT] = {"news",
                                   "a",
                                   "b/c",
                                   "news.eu",
                                   "x-y_z",
                                   "zz",
                                   "A",
                                   "Z9",
                                   "m",
                                   "news!",
                                   "long-topic-16chr",
                                   "q",
                                   "0",
                                   "~tilde",
                                   "mid",
                                   "mi",
                                   "mid0",
                                   "[x]",
                                   "a.b.c",
                                   "K"};
static const char *m_bad_topics[] = {"", "@peer", "has space",
                                     "seventeen-chars-x", "tab\t"};
static const char *m_addrs[] = {"10.0.0.1:7000", "[fe80::1]:1",
                                "host.example:443", "h:1", "bad-no-port"};
static const char *m_names[] = {"", "alice", "Bob the peer"};

struct mpeer {
  int present;
  int addr, name;
  int64_t reg, upd;
  uint32_t subs; /* bit i = m_topics[i] */
};

struct model {
  struct mpeer p[MK];
  uint8_t keys[MK][32];
  int torder[MT]; /* topic indexes in byte order */
  int npeers;
};

static struct model *g_model; /* for the qsort comparators */

static int cmp_torder(const void *a, const void *b) {
  return strcmp(m_topics[*(const int *)a], m_topics[*(const int *)b]);
}

static int cmp_korder(const void *a, const void *b) {
  return memcmp(g_model->keys[*(const int *)a], g_model->keys[*(const int *)b],
                32);
}

static void model_init(struct model *m) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < MK; i++)
    mkpk(m->keys[i], 1000u + (unsigned)i);
  for (int i = 0; i < MT; i++)
    m->torder[i] = i;
  qsort(m->torder, MT, sizeof m->torder[0], cmp_torder);
}

static int popcount32(uint32_t v) {
  int n = 0;
  for (; v; v &= v - 1)
    n++;
  return n;
}

/* A generated command, kept as indexes so the model can interpret it. */
struct mcmd {
  int type, key, addr, name, topic, bad_topic; /* topic < 0: bad_topic */
  int64_t ts;
};

static struct parley_reg_cmd mcmd_to_cmd(const struct model *m,
                                         const struct mcmd *x) {
  const char *topic = "";
  if (x->type == PARLEY_REG_SUBSCRIBE || x->type == PARLEY_REG_UNSUBSCRIBE)
    topic = x->topic >= 0 ? m_topics[x->topic] : m_bad_topics[x->bad_topic];
  if (x->type == PARLEY_REG_REGISTER)
    return cmd(PARLEY_REG_REGISTER, m->keys[x->key], x->ts, m_addrs[x->addr],
               m_names[x->name], "");
  return cmd((uint8_t)x->type, m->keys[x->key], x->ts, "", "", topic);
}

static struct mcmd mcmd_random(void) {
  struct mcmd x;
  unsigned r = (unsigned)(rng() % 100);
  memset(&x, 0, sizeof x);
  x.key = (int)(rng() % MK);
  x.ts = (int64_t)(rng() % 2000000) - 1000;
  x.type = r < 30   ? PARLEY_REG_REGISTER
           : r < 60 ? PARLEY_REG_SUBSCRIBE
           : r < 85 ? PARLEY_REG_UNSUBSCRIBE
                    : PARLEY_REG_EXPIRE;
  x.addr = (int)(rng() % 5);
  x.name = (int)(rng() % 3);
  if (rng() % 10 == 0) {
    x.topic = -1;
    x.bad_topic = (int)(rng() % 5);
  } else {
    x.topic = (int)(rng() % MT);
  }
  return x;
}

/* Applies x to the model; returns the expected status and writes the
 * expected event text to ev. */
static int model_apply(struct model *m, const struct mcmd *x, char *ev,
                       size_t cap) {
  struct mpeer *p = &m->p[x->key];
  char k[17];
  size_t n = 0;

  ev[0] = '\0';
  hex8(m->keys[x->key], k);
  switch (x->type) {
  case PARLEY_REG_REGISTER:
    if (x->addr == 4)
      return PARLEY_EINVAL;
    if (!p->present) {
      if (m->npeers >= M_MAX_PEERS)
        return PARLEY_ELIMIT;
      p->present = 1;
      m->npeers++;
      p->reg = x->ts;
      p->subs = 0;
      p->addr = x->addr;
      p->name = x->name;
      snprintf(ev, cap, "UP %s 0\n", k);
    } else if (p->addr != x->addr || p->name != x->name) {
      p->addr = x->addr;
      p->name = x->name;
      snprintf(ev, cap, "UP %s %d\n", k, popcount32(p->subs));
    }
    p->upd = x->ts;
    return PARLEY_OK;
  case PARLEY_REG_EXPIRE:
    if (!p->present)
      return PARLEY_OK;
    {
      int left = popcount32(p->subs);
      for (int i = 0; i < MT; i++) {
        int t = m->torder[i];
        if (p->subs & (1u << t))
          n += (size_t)snprintf(ev + n, cap - n, "DEL %s %s %d\n", k,
                                m_topics[t], --left);
      }
    }
    snprintf(ev + n, cap - n, "DOWN %s 0\n", k);
    p->present = 0;
    p->subs = 0;
    m->npeers--;
    return PARLEY_OK;
  case PARLEY_REG_SUBSCRIBE:
    if (x->topic < 0)
      return PARLEY_EINVAL;
    if (!p->present)
      return PARLEY_EUNKNOWNPEER;
    if (p->subs & (1u << x->topic))
      return PARLEY_OK;
    if (popcount32(p->subs) >= M_MAX_SUBS)
      return PARLEY_ELIMIT;
    p->subs |= 1u << x->topic;
    snprintf(ev, cap, "ADD %s %s %d\n", k, m_topics[x->topic],
             popcount32(p->subs));
    return PARLEY_OK;
  default:
    if (x->topic < 0)
      return PARLEY_EINVAL;
    if (!p->present || !(p->subs & (1u << x->topic)))
      return PARLEY_OK;
    p->subs &= ~(1u << x->topic);
    snprintf(ev, cap, "DEL %s %s %d\n", k, m_topics[x->topic],
             popcount32(p->subs));
    return PARLEY_OK;
  }
}

/* The model's snapshot, written independently of registry.c. */
static void model_snapshot(struct model *m, struct sbuild *s) {
  int order[MK], n = 0;

  g_model = m;
  for (int i = 0; i < MK; i++)
    if (m->p[i].present)
      order[n++] = i;
  qsort(order, (size_t)n, sizeof order[0], cmp_korder);
  s->n = 0;
  sb_bytes(s, "PRG2", 4);
  sb_u32(s, (uint32_t)n);
  for (int i = 0; i < n; i++) {
    struct mpeer *p = &m->p[order[i]];
    sb_bytes(s, m->keys[order[i]], 32);
    sb_str8(s, m_addrs[p->addr]);
    sb_str8(s, m_names[p->name]);
    sb_u64(s, (uint64_t)p->reg);
    sb_u64(s, (uint64_t)p->upd);
    sb_u32(s, (uint32_t)popcount32(p->subs));
    for (int j = 0; j < MT; j++)
      if (p->subs & (1u << m->torder[j]))
        sb_str8(s, m_topics[m->torder[j]]);
  }
  sb_u32(s, 0); /* no private topics */
}

/* Compares the registry's indexes (not just its snapshot) with the model. */
static void model_check(struct model *m, const struct parley_registry *r) {
  struct sbuild s;
  struct parley_buf b;
  size_t ntopics = 0;
  int order[MK], n = 0;

  model_snapshot(m, &s);
  snap_of(r, &b);
  assert_int_equal(b.len, s.n);
  assert_memory_equal(b.data, s.b, s.n);
  parley_buf_close(&b);
  assert_int_equal(parley_registry_peer_count(r), (size_t)m->npeers);

  g_model = m;
  for (int i = 0; i < MK; i++)
    if (m->p[i].present)
      order[n++] = i;
  qsort(order, (size_t)n, sizeof order[0], cmp_korder);
  for (int t = 0; t < MT; t++) {
    struct walk w, exp;
    memset(&w, 0, sizeof w);
    memset(&exp, 0, sizeof exp);
    for (int i = 0; i < n; i++)
      if (m->p[order[i]].subs & (1u << t)) {
        char k[17];
        hex8(m->keys[order[i]], k);
        walk_add(&exp, k);
      }
    if (exp.len > 0)
      ntopics++;
    assert_int_equal(
        parley_registry_foreach_subscriber(r, m_topics[t], walk_peer, &w), 0);
    assert_string_equal(w.buf, exp.buf);
  }
  assert_int_equal(parley_registry_topic_count(r), ntopics);
}

static void test_determinism(void **state) {
  struct model *m = malloc(sizeof *m);
  struct parley_registry *a = mkreg(M_MAX_SUBS, M_MAX_PEERS, M_MAX_TOPIC);
  struct parley_registry *b = mkreg(M_MAX_SUBS, M_MAX_PEERS, M_MAX_TOPIC);
  struct parley_registry *c = NULL;
  struct recorder *ra = malloc(sizeof *ra), *rb = malloc(sizeof *rb),
                  *rc = malloc(sizeof *rc);
  char exp[4096];
  int counts[8] = {0};
  (void)state;

  assert_non_null(m);
  model_init(m);
  /* Same starting state, reached in two different orders: a registers
   * keys 0..29 ascending with subscriptions in topic order; b registers
   * descending, subscribes in reverse, and churns peers and topics that it
   * then removes. */
  for (int i = 0; i < 30; i++) {
    struct mcmd x = {PARLEY_REG_REGISTER, i, i % 4, i % 3, 0, 0, i};
    struct parley_reg_cmd cm = mcmd_to_cmd(m, &x);
    assert_int_equal(model_apply(m, &x, exp, sizeof exp), PARLEY_OK);
    assert_int_equal(parley_registry_apply(a, &cm), PARLEY_OK);
    for (int t = 0; t < i % 5; t++) {
      struct mcmd y = {PARLEY_REG_SUBSCRIBE, i, 0, 0, (i + t) % MT, 0, 0};
      cm = mcmd_to_cmd(m, &y);
      assert_int_equal(model_apply(m, &y, exp, sizeof exp), PARLEY_OK);
      assert_int_equal(parley_registry_apply(a, &cm), PARLEY_OK);
    }
  }
  for (int i = 50; i < 60; i++) {
    uint8_t pk[32];
    mkpk(pk, 5000u + (unsigned)i);
    assert_int_equal(reg(b, pk, 0, "x:1", "x"), PARLEY_OK);
    assert_int_equal(sub(b, pk, "churn"), PARLEY_OK);
    assert_int_equal(sub(b, pk, "news"), PARLEY_OK);
  }
  for (int i = 30; i-- > 0;) {
    struct mcmd x = {PARLEY_REG_REGISTER, i, i % 4, i % 3, 0, 0, i};
    struct parley_reg_cmd cm = mcmd_to_cmd(m, &x);
    assert_int_equal(parley_registry_apply(b, &cm), PARLEY_OK);
    for (int t = i % 5; t-- > 0;) {
      struct mcmd y = {PARLEY_REG_SUBSCRIBE, i, 0, 0, (i + t) % MT, 0, 0};
      cm = mcmd_to_cmd(m, &y);
      assert_int_equal(parley_registry_apply(b, &cm), PARLEY_OK);
    }
  }
  for (int i = 50; i < 60; i++) {
    uint8_t pk[32];
    mkpk(pk, 5000u + (unsigned)i);
    assert_int_equal(expire(b, pk), PARLEY_OK);
  }
  model_check(m, a);
  model_check(m, b);

  observe(a, ra);
  observe(b, rb);
  rng_state = 0xdecafbadull;
  for (int step = 0; step < 5000; step++) {
    struct mcmd x = mcmd_random();
    struct parley_reg_cmd cm = mcmd_to_cmd(m, &x);
    int want = model_apply(m, &x, exp, sizeof exp);
    int ca = parley_registry_check(a, &cm);

    assert_int_equal(ca, want);
    assert_int_equal(parley_registry_apply(a, &cm), want);
    assert_int_equal(parley_registry_apply(b, &cm), want);
    assert_string_equal(events(ra), exp);
    assert_string_equal(events(rb), exp);
    if (c != NULL) {
      assert_int_equal(parley_registry_apply(c, &cm), want);
      assert_string_equal(events(rc), exp);
    }
    if (want == PARLEY_ELIMIT)
      counts[2]++;
    else if (want == PARLEY_EINVAL)
      counts[3]++;
    else if (want == PARLEY_EUNKNOWNPEER)
      counts[4]++;
    if (step % 500 == 499) {
      model_check(m, a);
      model_check(m, b);
      if (c != NULL)
        model_check(m, c);
    }
    if (step == 2500) {
      /* A third replica joins from a snapshot halfway through. */
      struct parley_buf sa;
      snap_of(a, &sa);
      c = mkreg(M_MAX_SUBS, M_MAX_PEERS, M_MAX_TOPIC);
      assert_int_equal(parley_registry_restore(c, sa.data, sa.len), PARLEY_OK);
      parley_buf_close(&sa);
      observe(c, rc);
    }
  }
  model_check(m, a);
  assert_same_state(a, b);
  assert_same_state(a, c);
  /* The sequence exercised every outcome. */
  assert_true(counts[2] > 50);
  assert_true(counts[3] > 50);
  assert_true(counts[4] > 50);
  parley_registry_free(a);
  parley_registry_free(b);
  parley_registry_free(c);
  free(ra);
  free(rb);
  free(rc);
  free(m);
}

/* Memory
 * ------------------------------------------------------------------------ */

static void test_memory_10k(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  size_t live0 = heap.live;
  struct mallinfo2 mi0 = mallinfo2(), mi1;
  uint8_t pk[32];
  char topic[16];
  double per_peer;
  (void)state;

  rng_state = 7;
  for (unsigned i = 0; i < 10000; i++) {
    mkpk(pk, i);
    assert_int_equal(reg(r, pk, i, "192.168.100.200:65000", "peer-name-16chr"),
                     PARLEY_OK);
    for (int t = 0; t < 4; t++) {
      snprintf(topic, sizeof topic, "topic.%u", (unsigned)(rng() % 1000));
      assert_int_equal(sub(r, pk, topic), PARLEY_OK);
    }
  }
  mi1 = mallinfo2();
  per_peer = (double)(heap.live - live0) / 10000.0;
  print_message("registry: 10000 peers, up to 4 subs each over %zu topics: "
                "%zu bytes requested (%.0f per peer); malloc in use grew by "
                "%zu bytes\n",
                parley_registry_topic_count(r), heap.live - live0, per_peer,
                mi1.uordblks - mi0.uordblks);
  /* Far below the 2 KiB per peer the index aims for. */
  assert_true(per_peer < 1024.0);
  parley_registry_free(r);
}

/* Private topics ------------------------------------------------------------- */

static void test_acl_members(void **state) {
  struct parley_registry *r = acl_reg(NULL);
  const struct parley_identity *abd[] = {&ida, &idb, &idd};
  struct parley_reg_acl acl;
  struct recorder rc;
  struct walk w;
  char want[512];
  (void)state;

  observe(r, &rc);
  assert_int_equal(parley_registry_topic_acl(r, "club", &acl),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_registry_may_access(r, "club", idc.pk), 1);
  assert_int_equal(parley_registry_is_member(r, "club", ida.pk), 0);

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  snprintf(want, sizeof want, "CREATE club %s e1 p\n", hx(&ida));
  assert_string_equal(events(&rc), want);
  assert_int_equal(parley_registry_topic_acl(r, "club", &acl), PARLEY_OK);
  assert_memory_equal(acl.owner, ida.pk, 32);
  assert_int_equal(acl.epoch, 1);
  assert_int_equal(acl.counter, 1);
  assert_int_equal(acl.members, 1);

  /* Counters may skip; D is a member without being a registered peer. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idd.pk, 1, 9),
                   PARLEY_OK);
  snprintf(want, sizeof want, "MADD club %s e1 p\nMADD club %s e1\n", hx(&idb),
           hx(&idd));
  assert_string_equal(events(&rc), want);
  assert_int_equal(parley_registry_topic_acl(r, "club", &acl), PARLEY_OK);
  assert_int_equal(acl.counter, 9);
  assert_int_equal(acl.members, 3);
  assert_string_equal(members_of(r, "club"), sorted_ids(3, abd));
  assert_string_equal(members_of(r, "open"), "");
  memset(&w, 0, sizeof w);
  w.stop_after = 2;
  assert_int_equal(parley_registry_foreach_member(r, "club", walk_key, &w), 7);
  assert_int_equal(w.calls, 2);
  assert_int_equal(parley_registry_is_member(r, "club", idb.pk), 1);
  assert_int_equal(parley_registry_is_member(r, "club", idc.pk), 0);
  assert_int_equal(parley_registry_may_access(r, "club", idc.pk), 0);
  assert_int_equal(parley_registry_may_access(r, "club", idd.pk), 1);
  assert_int_equal(parley_registry_may_access(r, "open", idc.pk), 1);

  /* Only members subscribe; public topics are unchanged. */
  struct parley_reg_cmd c = cmd(PARLEY_REG_SUBSCRIBE, idc.pk, 0, "", "", "club");
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  assert_string_equal(events(&rc), "");
  assert_int_equal(sub(r, idb.pk, "club"), PARLEY_OK);
  assert_int_equal(sub(r, ida.pk, "club"), PARLEY_OK);
  assert_int_equal(sub(r, idc.pk, "open"), PARLEY_OK);
  assert_int_equal(sub(r, idb.pk, "club"), PARLEY_OK); /* still idempotent */
  (void)events(&rc);
  assert_int_equal(parley_registry_acl_count(r), 1);
  assert_int_equal(grant(r, &idb, PARLEY_GRANT_CREATE, "b-room", NULL, 1, 1),
                   PARLEY_OK);
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_acl(r, walk_acl, &w), 0);
  assert_string_equal(w.buf, "b-room:e1:c1:m1 club:e1:c9:m3 ");

  /* Expiry ends the subscription, not the membership. */
  assert_int_equal(expire(r, idb.pk), PARLEY_OK);
  assert_int_equal(parley_registry_is_member(r, "club", idb.pk), 1);
  assert_int_equal(reg(r, idb.pk, 2, "b:1", "B"), PARLEY_OK);
  assert_int_equal(sub(r, idb.pk, "club"), PARLEY_OK);
  parley_registry_free(r);
}

static void test_acl_grant_refused(void **state) {
  struct parley_reg_limits lim = {0, 0, 16, 0, 0};
  struct parley_registry *r = acl_reg(&lim);
  struct parley_buf before, after;
  struct parley_reg_cmd c;
  struct recorder rc;
  (void)state;

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 10),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 11),
                   PARLEY_OK);
  snap_of(r, &before);
  observe(r, &rc);

  /* Not the owner: C signs about A's topic, or A's statement arrives on
   * behalf of C. */
  assert_int_equal(grant(r, &idc, PARLEY_GRANT_ADD, "club", idd.pk, 1, 12),
                   PARLEY_EDENIED);
  assert_int_equal(grant(r, &idc, PARLEY_GRANT_REVOKE, "club", idb.pk, 2, 12),
                   PARLEY_EDENIED);
  mkgrant(&c, &ida, idc.pk, PARLEY_GRANT_ADD, "club", idd.pk, 1, 12);
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  /* Replayed or reordered: counter not above the last (11). */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 1, 11),
                   PARLEY_ERANGE);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 1, 3),
                   PARLEY_ERANGE);
  /* Epoch rule and membership. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 12),
                   PARLEY_EPROTO);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_REVOKE, "club", idc.pk, 2, 12),
                   PARLEY_EPROTO);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_REVOKE, "club", idb.pk, 3, 12),
                   PARLEY_EPROTO);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 2, 12),
                   PARLEY_EPROTO);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ROTATE, "club", NULL, 3, 12),
                   PARLEY_EPROTO);
  /* Unknown topic; a taken name. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "other", idc.pk, 1, 1),
                   PARLEY_ENOTFOUND);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 12),
                   PARLEY_EEXIST);
  assert_int_equal(grant(r, &idc, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_EEXIST);
  /* Tampered statement: signature, then counter. */
  mkgrant(&c, &ida, NULL, PARLEY_GRANT_ADD, "club", idc.pk, 1, 12);
  c.data[c.data_len - 1] ^= 1;
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  c.data[c.data_len - 1] ^= 1;
  c.data[c.data_len - 65] ^= 1;
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  /* Not a statement; a name over this registry's limit (16). */
  c.data_len = 10;
  assert_int_equal(run(r, &c), PARLEY_EINVAL);
  c.type = PARLEY_REG_GRANT;
  c.data_len = PARLEY_REG_DATA_MAX;
  assert_int_equal(run(r, &c), PARLEY_EINVAL);
  assert_int_equal(
      grant(r, &ida, PARLEY_GRANT_CREATE, "seventeen-chars-x", NULL, 1, 1),
      PARLEY_EINVAL);
  /* Refused commands change nothing and say nothing. */
  assert_string_equal(events(&rc), "");
  snap_of(r, &after);
  assert_int_equal(after.len, before.len);
  assert_memory_equal(after.data, before.data, before.len);
  parley_buf_close(&after);

  /* The last statement again (a retry after a lost answer): OK, no-op. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 11),
                   PARLEY_OK);
  assert_string_equal(events(&rc), "");
  snap_of(r, &after);
  assert_memory_equal(after.data, before.data, before.len);
  parley_buf_close(&after);

  /* A CREATE may not take a topic that others subscribe to; the owner's
   * own subscription is fine. */
  assert_int_equal(sub(r, idb.pk, "busy"), PARLEY_OK);
  assert_int_equal(sub(r, ida.pk, "mine"), PARLEY_OK);
  (void)events(&rc);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "busy", NULL, 1, 1),
                   PARLEY_EEXIST);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "mine", NULL, 1, 1),
                   PARLEY_OK);
  assert_int_equal(sub(r, idb.pk, "mine"), PARLEY_EDENIED);
  assert_int_equal(unsub(r, idb.pk, "busy"), PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "busy", NULL, 1, 1),
                   PARLEY_OK);
  parley_buf_close(&before);
  parley_registry_free(r);
}

static void test_acl_revoke_rotate(void **state) {
  struct parley_registry *r = acl_reg(NULL);
  struct parley_topic_key kb3, got;
  const uint8_t *blob;
  struct parley_groupkey_blob b;
  struct recorder rc;
  size_t len;
  char want[512];
  (void)state;

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 1, 3),
                   PARLEY_OK);
  assert_int_equal(sub(r, idb.pk, "club"), PARLEY_OK);
  assert_int_equal(sub(r, idc.pk, "club"), PARLEY_OK);
  assert_int_equal(sub(r, idc.pk, "open"), PARLEY_OK);
  observe(r, &rc);
  assert_int_equal(keyput(r, "club", ida.pk, 1, NULL), PARLEY_OK);
  assert_int_equal(keyput(r, "club", idb.pk, 1, NULL), PARLEY_OK);
  assert_int_equal(keyput(r, "club", idc.pk, 1, NULL), PARLEY_OK);
  snprintf(want, sizeof want, "KEY club %s e1 p\nKEY club %s e1 p\n"
           "KEY club %s e1 p\n", hx(&ida), hx(&idb), hx(&idc));
  assert_string_equal(events(&rc), want);

  /* REVOKE: the subscription goes (SUB_DEL), then the member, and the
   * epoch moves to 2. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_REVOKE, "club", idc.pk, 2, 4),
                   PARLEY_OK);
  snprintf(want, sizeof want, "DEL %s club 1\nMDEL club %s e2 p\n", hx(&idc),
           hx(&idc));
  assert_string_equal(events(&rc), want);
  assert_int_equal(parley_registry_is_member(r, "club", idc.pk), 0);
  assert_int_equal(parley_registry_peer(r, idc.pk)->nsubs, 1); /* "open" */
  assert_int_equal(sub(r, idc.pk, "club"), PARLEY_EDENIED);
  assert_int_equal(parley_registry_key_blob(r, "club", 1, idc.pk, &blob, &len),
                   PARLEY_ENOTFOUND);
  assert_null(blob);
  assert_int_equal(keyput(r, "club", idc.pk, 2, NULL), PARLEY_EDENIED);
  /* The others keep the previous epoch's key and get the new one. */
  assert_string_equal(keys_of(r, "club", &idb), "e1 ");
  assert_int_equal(keyput(r, "club", idb.pk, 2, NULL), PARLEY_OK);
  assert_int_equal(keyput(r, "club", idb.pk, 1, NULL), PARLEY_OK); /* re-put */
  assert_string_equal(keys_of(r, "club", &idb), "e1 e2 ");
  (void)events(&rc);

  /* ROTATE: epoch 3, same members; blobs older than epoch 2 go. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ROTATE, "club", NULL, 3, 5),
                   PARLEY_OK);
  snprintf(want, sizeof want, "ROTATE club %s e3 p\n", hx(&ida));
  assert_string_equal(events(&rc), want);
  assert_string_equal(keys_of(r, "club", &idb), "e2 ");
  assert_string_equal(keys_of(r, "club", &ida), "");
  assert_int_equal(keyput(r, "club", idb.pk, 1, NULL), PARLEY_ERANGE);
  assert_int_equal(keyput(r, "club", idb.pk, 4, NULL), PARLEY_ERANGE);
  assert_int_equal(keyput(r, "club", idb.pk, 3, &kb3), PARLEY_OK);
  assert_string_equal(keys_of(r, "club", &idb), "e2 e3 ");

  /* B opens what the index kept for it: the owner's epoch-3 key. */
  assert_int_equal(parley_registry_key_blob(r, "club", 3, idb.pk, &blob, &len),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_blob_decode(blob, len, &b), PARLEY_OK);
  assert_int_equal(parley_groupkey_open(&idb, ida.pk, "club", &b, &got),
                   PARLEY_OK);
  assert_int_equal(got.epoch, 3);
  assert_memory_equal(got.key, kb3.key, 32);
  /* C, added again, starts with no keys. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 3, 6),
                   PARLEY_OK);
  assert_string_equal(keys_of(r, "club", &idc), "");
  assert_int_equal(sub(r, idc.pk, "club"), PARLEY_OK);
  assert_int_equal(parley_registry_key_blob(r, "nope", 3, idb.pk, &blob, &len),
                   PARLEY_ENOTFOUND);
  parley_registry_free(r);
}

static void test_acl_key_put_refused(void **state) {
  struct parley_registry *r = acl_reg(NULL);
  struct parley_buf before, after;
  struct parley_reg_cmd c;
  struct recorder rc;
  char want[128];
  (void)state;

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2),
                   PARLEY_OK);
  snap_of(r, &before);
  observe(r, &rc);

  /* A member making its own "owner" blob; the owner's blob proposed by
   * someone else; a KEY_PUT signed by someone else, or altered. */
  mkkeyput(&c, &idb, NULL, NULL, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  mkkeyput(&c, &ida, NULL, idb.pk, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  mkkeyput(&c, &ida, &idb, NULL, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  mkkeyput(&c, &ida, NULL, NULL, "club", idb.pk, 1, NULL);
  c.data[5] ^= 1; /* the signature */
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  c.data[5] ^= 1;
  c.data[c.data_len - 1] ^= 1; /* the sealed key */
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  /* Public topic, non-member, wrong epoch, not a blob. */
  mkkeyput(&c, &ida, NULL, NULL, "open", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_ENOTFOUND);
  mkkeyput(&c, &ida, NULL, NULL, "club", idc.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  mkkeyput(&c, &ida, NULL, NULL, "club", idb.pk, 2, NULL);
  assert_int_equal(run(r, &c), PARLEY_ERANGE);
  c.data_len = 100;
  assert_int_equal(run(r, &c), PARLEY_EINVAL);
  c.data_len = 64;
  assert_int_equal(run(r, &c), PARLEY_EINVAL);
  assert_string_equal(events(&rc), "");
  snap_of(r, &after);
  assert_int_equal(after.len, before.len);
  assert_memory_equal(after.data, before.data, before.len);
  parley_buf_close(&after);
  parley_buf_close(&before);

  /* The same blob twice: the second is a no-op. */
  mkkeyput(&c, &ida, NULL, NULL, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_OK);
  assert_int_equal(run(r, &c), PARLEY_OK);
  snprintf(want, sizeof want, "KEY club %s e1 p\n", hx(&idb));
  assert_string_equal(events(&rc), want);
  parley_registry_free(r);
}

static void test_acl_limits_oom(void **state) {
  struct parley_reg_limits lim = {0, 0, 0, 2, 1};
  struct parley_registry *r = acl_reg(&lim);
  struct parley_reg_cmd seq[6];
  struct parley_buf before, after;
  int failures = 0;
  (void)state;

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "more", NULL, 1, 1),
                   PARLEY_ELIMIT);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 1, 3),
                   PARLEY_ELIMIT);
  parley_registry_free(r);

  /* Each allocation of each command fails in turn: ENOMEM leaves no
   * trace, and the command then succeeds. */
  r = acl_reg(NULL);
  mkgrant(&seq[0], &ida, NULL, PARLEY_GRANT_CREATE, "club", NULL, 1, 1);
  mkgrant(&seq[1], &ida, NULL, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2);
  mkkeyput(&seq[2], &ida, NULL, NULL, "club", idb.pk, 1, NULL);
  mkkeyput(&seq[3], &ida, NULL, NULL, "club", idb.pk, 1, NULL); /* replace */
  mkgrant(&seq[4], &ida, NULL, PARLEY_GRANT_ADD, "club", idc.pk, 1, 3);
  mkgrant(&seq[5], &ida, NULL, PARLEY_GRANT_REVOKE, "club", idc.pk, 2, 4);
  for (int i = 0; i < 6; i++) {
    for (long k = 0;; k++) {
      int rc;
      snap_of(r, &before);
      heap.fail_after = k;
      rc = parley_registry_apply(r, &seq[i]);
      heap.fail_after = -1;
      if (rc == PARLEY_OK) {
        parley_buf_close(&before);
        break;
      }
      assert_int_equal(rc, PARLEY_ENOMEM);
      failures++;
      snap_of(r, &after);
      assert_int_equal(after.len, before.len);
      assert_memory_equal(after.data, before.data, before.len);
      parley_buf_close(&after);
      parley_buf_close(&before);
    }
  }
  assert_true(failures >= 4);
  assert_string_equal(keys_of(r, "club", &idb), "e1 ");
  parley_registry_free(r);
}

/* Random private-topic traffic against three registries: r, one restored
 * from r's snapshot halfway (then fed the same commands), and one that is
 * restored from r's snapshot every 50 commands.  Results, events and
 * snapshot bytes must agree throughout. */
static void test_acl_determinism(void **state) {
  static const char *topics[] = {"t0", "t1", "t2"};
  const struct parley_identity *ids[] = {&ida, &idb, &idc, &idd};
  struct parley_registry *r = acl_reg(NULL), *h = NULL, *p = mkreg(0, 0, 0);
  struct recorder rr, rh;
  struct parley_buf b, bh;
  int ok = 0, refused = 0;
  (void)state;

  rng_state = 7;
  observe(r, &rr);
  for (int step = 0; step < 700; step++) {
    const char *topic = topics[rng() % 3];
    const struct parley_identity *who = ids[rng() % 2]; /* owner: A or B */
    const struct parley_identity *m = ids[rng() % 4];
    struct parley_reg_acl acl;
    struct parley_reg_cmd c;
    int have = parley_registry_topic_acl(r, topic, &acl) == PARLEY_OK;
    uint64_t ctr = have ? acl.counter + (rng() % 8 ? 1 : 0) : 1;
    uint32_t ep = have ? acl.epoch : 1;
    int rc, op = (int)(rng() % 10);

    if (have && rng() % 4)
      who = memcmp(acl.owner, ida.pk, 32) == 0 ? &ida : &idb;
    switch (op) {
    case 0:
      mkgrant(&c, who, NULL, PARLEY_GRANT_CREATE, topic, NULL, 1, 1);
      break;
    case 1:
    case 2:
      mkgrant(&c, who, NULL, PARLEY_GRANT_ADD, topic,
              m == who ? idd.pk : m->pk, ep, ctr);
      break;
    case 3:
      mkgrant(&c, who, NULL, PARLEY_GRANT_REVOKE, topic,
              m == who ? idc.pk : m->pk, ep + 1, ctr);
      break;
    case 4:
      mkgrant(&c, who, NULL, PARLEY_GRANT_ROTATE, topic, NULL, ep + 1, ctr);
      break;
    case 5:
    case 6:
      mkkeyput(&c, who, NULL, NULL, topic, m->pk,
               ep - (ep > 1 && rng() % 3 == 0), NULL);
      break;
    case 7:
      c = cmd(rng() % 4 ? PARLEY_REG_SUBSCRIBE : PARLEY_REG_UNSUBSCRIBE,
              m->pk, step, "", "", topic);
      break;
    case 8:
      c = cmd(PARLEY_REG_EXPIRE, m->pk, step, "", "", "");
      break;
    default:
      c = cmd(PARLEY_REG_REGISTER, m->pk, step, "m:1", "", "");
      break;
    }
    rc = run(r, &c);
    if (rc == PARLEY_OK)
      ok++;
    else
      refused++;
    if (h != NULL) {
      char ev[sizeof rr.buf];
      assert_int_equal(run(h, &c), rc);
      snprintf(ev, sizeof ev, "%s", events(&rr));
      assert_string_equal(events(&rh), ev);
    } else {
      (void)events(&rr);
    }
    if (step == 350) {
      snap_of(r, &b);
      assert_int_equal(parley_registry_new(NULL, &h), PARLEY_OK);
      assert_int_equal(parley_registry_restore(h, b.data, b.len), PARLEY_OK);
      observe(h, &rh);
      parley_buf_close(&b);
    }
    if (step % 50 == 49) {
      snap_of(r, &b);
      assert_int_equal(parley_registry_restore(p, b.data, b.len), PARLEY_OK);
      snap_of(p, &bh);
      assert_int_equal(bh.len, b.len);
      assert_memory_equal(bh.data, b.data, b.len);
      parley_buf_close(&bh);
      parley_buf_close(&b);
      if (h != NULL)
        assert_same_state(r, h);
    }
  }
  assert_true(ok > 250);
  assert_true(refused > 100);
  assert_true(parley_registry_acl_count(r) >= 2);
  parley_registry_free(h);
  parley_registry_free(p);
  parley_registry_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_new_and_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_invalid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscribe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unsubscribe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_keeps_subs, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_foreach_order_and_stop, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_oom_apply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_10k, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_members, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_grant_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_revoke_rotate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_key_put_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_acl_limits_oom, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_determinism, setup, teardown),
  };
  parley_allocator_set(&counting);
  if (parley_crypto_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
