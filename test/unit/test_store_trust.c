/* test_store_trust.c — the store's schema-v3 tables: pinned keys, replay
 * windows of end-to-end direct messages, outbox counts per recipient. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store_fixture.h"

struct pins {
  int n;
  uint8_t first[32];
  char names[4][70];
  char addrs[4][100];
  char safety[4][80];
  int64_t since[4];
};

static int collect_pin(void *ctx, const struct parley_store_pin *p) {
  struct pins *c = ctx;
  if (c->n == 0)
    memcpy(c->first, p->pk, 32);
  if (c->n < 4) {
    snprintf(c->names[c->n], sizeof c->names[0], "%s", p->name);
    snprintf(c->addrs[c->n], sizeof c->addrs[0], "%s", p->addr);
    snprintf(c->safety[c->n], sizeof c->safety[0], "%s", p->safety);
    c->since[c->n] = p->since_ms;
  }
  c->n++;
  return 0;
}

static struct parley_store_pin pin(const uint8_t *pk, const char *name,
                                   const char *addr, int64_t since) {
  struct parley_store_pin p;
  memset(&p, 0, sizeof p);
  p.pk = pk;
  p.name = name;
  p.addr = addr;
  p.safety = "00001 00002";
  p.since_ms = since;
  return p;
}

static void test_pins(void **state) {
  struct fx *f = *state;
  uint8_t a[32], b[32], c[32];
  struct parley_store_pin p;
  struct pins got;

  key(a, 1);
  key(b, 2);
  key(c, 3);
  p = pin(a, "bob", "127.0.0.1:1", 100);
  assert_int_equal(parley_store_pin_put(f->s, &p), PARLEY_OK);
  p = pin(b, "", "", 200);
  assert_int_equal(parley_store_pin_put(f->s, &p), PARLEY_OK);
  /* A second key under a name already pinned is refused. */
  p = pin(c, "bob", "", 300);
  assert_int_equal(parley_store_pin_put(f->s, &p), PARLEY_EEXIST);
  /* Empty names do not collide. */
  p = pin(c, "", "", 300);
  assert_int_equal(parley_store_pin_put(f->s, &p), PARLEY_OK);
  /* Re-pinning replaces name and addr, keeps since. */
  p = pin(a, "robert", "127.0.0.1:2", 999);
  assert_int_equal(parley_store_pin_put(f->s, &p), PARLEY_OK);
  assert_int_equal(parley_store_pin_addr(f->s, b, "10.0.0.1:7"), PARLEY_OK);
  memset(&got, 0, sizeof got);
  assert_int_equal(parley_store_pin_list(f->s, collect_pin, &got), PARLEY_OK);
  assert_int_equal(got.n, 3);
  assert_memory_equal(got.first, a, 32);
  assert_string_equal(got.names[0], "robert");
  assert_string_equal(got.addrs[0], "127.0.0.1:2");
  assert_int_equal(got.since[0], 100);
  assert_string_equal(got.safety[0], "00001 00002");
  assert_string_equal(got.names[1], "");
  assert_string_equal(got.addrs[1], "10.0.0.1:7");
  /* The freed name can be taken now. */
  p = pin(c, "bob", "", 300);
  assert_int_equal(parley_store_pin_put(f->s, &p), PARLEY_OK);
  assert_int_equal(parley_store_pin_del(f->s, b), PARLEY_OK);
  assert_int_equal(parley_store_pin_del(f->s, b), PARLEY_ENOTFOUND);
  memset(&got, 0, sizeof got);
  assert_int_equal(parley_store_pin_list(f->s, collect_pin, &got), PARLEY_OK);
  assert_int_equal(got.n, 2);
  /* Bad arguments. */
  {
    char long_name[80];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    p = pin(b, long_name, "", 1);
    assert_int_equal(parley_store_pin_put(f->s, &p), PARLEY_EINVAL);
    p = pin(b, "x", "", 1);
    p.safety = "";
    assert_int_equal(parley_store_pin_put(f->s, &p), PARLEY_EINVAL);
  }
}

static void test_replay_windows(void **state) {
  struct fx *f = *state;
  uint8_t a[32], b[32];
  uint64_t top = 7, seen = 7;

  key(a, 1);
  key(b, 2);
  assert_int_equal(parley_store_replay_get(f->s, a, "@x", &top, &seen),
                   PARLEY_OK);
  assert_int_equal(top, 0);
  assert_int_equal(seen, 0);
  /* All 64 bits survive, the top bit included. */
  assert_int_equal(parley_store_replay_put(f->s, a, "@x", 70,
                                           0x8000000000000001ull),
                   PARLEY_OK);
  assert_int_equal(parley_store_replay_put(f->s, b, "@x", 3, 5), PARLEY_OK);
  assert_int_equal(parley_store_replay_get(f->s, a, "@x", &top, &seen),
                   PARLEY_OK);
  assert_int_equal(top, 70);
  assert_int_equal(seen, 0x8000000000000001ull);
  assert_int_equal(parley_store_replay_put(f->s, a, "@x", 71, 3), PARLEY_OK);
  assert_int_equal(parley_store_replay_get(f->s, a, "@x", &top, &seen),
                   PARLEY_OK);
  assert_int_equal(top, 71);
  assert_int_equal(seen, 3);
  assert_int_equal(parley_store_replay_get(f->s, b, "@x", &top, &seen),
                   PARLEY_OK);
  assert_int_equal(top, 3);
  assert_int_equal(seen, 5);
  assert_int_equal(parley_store_replay_get(f->s, a, "@y", &top, &seen),
                   PARLEY_OK);
  assert_int_equal(top, 0);
  assert_int_equal(parley_store_replay_put(f->s, a, "", 1, 1), PARLEY_EINVAL);
  assert_int_equal(parley_store_replay_put(f->s, a, "@x", UINT64_MAX, 1),
                   PARLEY_EINVAL);
  /* Kept across a reopen. */
  parley_store_close(f->s);
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
  assert_int_equal(parley_store_schema_version(f->s), 9);
  assert_int_equal(parley_store_replay_get(f->s, a, "@x", &top, &seen),
                   PARLEY_OK);
  assert_int_equal(top, 71);
}

struct counts {
  int n;
  uint8_t k[4];
  uint64_t c[4];
};

static int collect_count(void *ctx, const uint8_t k[32], uint64_t n) {
  struct counts *c = ctx;
  if (c->n < 4) {
    c->k[c->n] = k[0];
    c->c[c->n] = n;
  }
  c->n++;
  return 0;
}

static void put_msg(struct parley_store *s, uint64_t seq, int64_t *rowid) {
  struct parley_msg m;
  uint8_t pub[32];
  key(pub, 9);
  memset(&m, 0, sizeof m);
  m.publisher = pub;
  m.channel = "news";
  m.channel_len = 4;
  m.seq = seq;
  m.ts_ms = 1;
  m.body = (const uint8_t *)"x";
  m.body_len = 1;
  m.outgoing = 1;
  assert_int_equal(parley_store_put_message(s, &m, rowid), PARLEY_OK);
}

static void test_outbox_by_recipient(void **state) {
  struct fx *f = *state;
  uint8_t a[32], b[32], c[32];
  int64_t r1, r2, r3;
  struct counts got;

  key(a, 1);
  key(b, 2);
  key(c, 3);
  put_msg(f->s, 1, &r1);
  put_msg(f->s, 2, &r2);
  put_msg(f->s, 3, &r3);
  assert_int_equal(parley_store_outbox_add(f->s, r1, b, 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r2, b, 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r3, b, 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r1, a, 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r1, c, 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r2, c, 1), PARLEY_OK);
  memset(&got, 0, sizeof got);
  assert_int_equal(parley_store_outbox_by_recipient(f->s, 0, collect_count,
                                                    &got),
                   PARLEY_OK);
  assert_int_equal(got.n, 3);
  assert_int_equal(got.k[0], 2);
  assert_int_equal(got.c[0], 3);
  assert_int_equal(got.k[1], 3);
  assert_int_equal(got.c[1], 2);
  assert_int_equal(got.k[2], 1);
  assert_int_equal(got.c[2], 1);
  memset(&got, 0, sizeof got);
  assert_int_equal(parley_store_outbox_by_recipient(f->s, 2, collect_count,
                                                    &got),
                   PARLEY_OK);
  assert_int_equal(got.n, 2);
}

struct tkeys {
  int n;
  char topic[4][16];
  uint32_t epoch[4];
  uint8_t first[4];
  size_t len[4];
};

static int tkey_seen(void *ctx, const char *topic, uint32_t epoch,
                     const uint8_t *blob, size_t len) {
  struct tkeys *t = ctx;
  if (t->n >= 4)
    return 1;
  snprintf(t->topic[t->n], sizeof t->topic[0], "%s", topic);
  t->epoch[t->n] = epoch;
  t->first[t->n] = blob[0];
  t->len[t->n] = len;
  t->n++;
  return 0;
}

static void test_topic_keys(void **state) {
  struct fx *f = *state;
  uint8_t blob[300];
  struct tkeys t;

  memset(blob, 0xa1, sizeof blob);
  assert_int_equal(parley_store_topic_key_put(f->s, "ops", 2, blob, 200),
                   PARLEY_OK);
  blob[0] = 0xb2;
  assert_int_equal(parley_store_topic_key_put(f->s, "ops", 1, blob, 100),
                   PARLEY_OK);
  assert_int_equal(parley_store_topic_key_put(f->s, "hr", 1, blob, 50),
                   PARLEY_OK);
  /* The same (topic, epoch) again replaces the blob. */
  blob[0] = 0xc3;
  assert_int_equal(parley_store_topic_key_put(f->s, "hr", 1, blob, 60),
                   PARLEY_OK);
  /* Refused: empty topic, epoch 0, empty or oversize blob. */
  assert_int_equal(parley_store_topic_key_put(f->s, "", 1, blob, 10),
                   PARLEY_EINVAL);
  assert_int_equal(parley_store_topic_key_put(f->s, "x", 0, blob, 10),
                   PARLEY_EINVAL);
  assert_int_equal(parley_store_topic_key_put(f->s, "x", 1, blob, 0),
                   PARLEY_EINVAL);
  assert_int_equal(parley_store_topic_key_put(f->s, "x", 1, blob, 4097),
                   PARLEY_EINVAL);
  /* Kept across a reopen, listed in (topic, epoch) order. */
  parley_store_close(f->s);
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
  memset(&t, 0, sizeof t);
  assert_int_equal(parley_store_topic_key_list(f->s, tkey_seen, &t),
                   PARLEY_OK);
  assert_int_equal(t.n, 3);
  assert_string_equal(t.topic[0], "hr");
  assert_int_equal(t.epoch[0], 1);
  assert_int_equal(t.first[0], 0xc3);
  assert_int_equal(t.len[0], 60);
  assert_string_equal(t.topic[1], "ops");
  assert_int_equal(t.epoch[1], 1);
  assert_int_equal(t.first[1], 0xb2);
  assert_int_equal(t.len[1], 100);
  assert_string_equal(t.topic[2], "ops");
  assert_int_equal(t.epoch[2], 2);
  assert_int_equal(t.first[2], 0xa1);
  assert_int_equal(t.len[2], 200);
}

struct topts {
  int n;
  char topic[4][16];
  int history[4];
};

static int topt_seen(void *ctx, const char *topic, int history) {
  struct topts *t = ctx;
  if (t->n >= 4)
    return 1;
  snprintf(t->topic[t->n], sizeof t->topic[0], "%s", topic);
  t->history[t->n] = history;
  t->n++;
  return 0;
}

static void test_topic_history(void **state) {
  struct fx *f = *state;
  struct topts t;

  /* Durability modes: both valid ones apply, anything else is refused. */
  assert_int_equal(parley_store_set_sync(f->s, PARLEY_STORE_SYNC_OS),
                   PARLEY_OK);
  assert_int_equal(parley_store_set_sync(f->s, PARLEY_STORE_SYNC_FULL),
                   PARLEY_OK);
  assert_int_equal(parley_store_set_sync(f->s, 7), PARLEY_EINVAL);

  assert_int_equal(parley_store_topic_history_set(f->s, "ticks", 0),
                   PARLEY_OK);
  assert_int_equal(parley_store_topic_history_set(f->s, "audit", 1),
                   PARLEY_OK);
  assert_int_equal(parley_store_topic_history_set(f->s, "ticks", 0),
                   PARLEY_OK);
  assert_int_equal(parley_store_topic_history_set(f->s, "audit", 0),
                   PARLEY_OK);
  assert_int_equal(parley_store_topic_history_set(f->s, "", 0),
                   PARLEY_EINVAL);
  parley_store_close(f->s);
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
  memset(&t, 0, sizeof t);
  assert_int_equal(parley_store_topic_history_list(f->s, topt_seen, &t),
                   PARLEY_OK);
  assert_int_equal(t.n, 2);
  assert_string_equal(t.topic[0], "audit");
  assert_int_equal(t.history[0], 0);
  assert_string_equal(t.topic[1], "ticks");
  assert_int_equal(t.history[1], 0);
  assert_int_equal(parley_store_topic_history_set(f->s, "ticks", 1),
                   PARLEY_OK);
  memset(&t, 0, sizeof t);
  assert_int_equal(parley_store_topic_history_list(f->s, topt_seen, &t),
                   PARLEY_OK);
  assert_int_equal(t.history[1], 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pins, setup, teardown),
      cmocka_unit_test_setup_teardown(test_replay_windows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outbox_by_recipient, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topic_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_topic_history, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
