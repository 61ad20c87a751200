/* test_store_pend.c — messages put inside a transaction
 * (src/store/store_pend.c): kept as pending rows with the rowid they will
 * have, inserted a chunk at a time, before any other statement and before
 * COMMIT.  Checked through the store's API: every read sees them, the
 * rowids hold after the commit and a reopen, duplicates are found, a
 * rollback forgets them and a failed insert fails the commit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap_fixture.h"
#include "store/store.h"
#include "store_fixture.h"
#include "wire/wire.h"

/* Message seq from publisher pv on channel ch; its body says both. */
static int put_from(struct parley_store *s, uint8_t pv, const char *ch,
                    uint64_t seq, int outgoing, int text, int64_t *rowid) {
  uint8_t pub[32], chain[32];
  char body[64];
  struct parley_msg m;

  key(pub, pv);
  key(chain, (uint8_t)seq);
  snprintf(body, sizeof body, "body %u %s %llu", (unsigned)pv, ch,
           (unsigned long long)seq);
  memset(&m, 0, sizeof m);
  m.publisher = pub;
  m.channel = ch;
  m.channel_len = strlen(ch);
  m.seq = seq;
  m.ts_ms = 1000 + (int64_t)seq;
  m.flags = text ? 0 : PARLEY_MSG_BINARY;
  m.body = (const uint8_t *)body;
  m.body_len = strlen(body);
  m.outgoing = outgoing;
  m.stored_ms = 5000;
  m.chain = seq % 2 ? chain : NULL;
  return parley_store_put_message(s, &m, rowid);
}

static int64_t put_ok(struct parley_store *s, uint8_t pv, const char *ch,
                      uint64_t seq, int outgoing) {
  int64_t rowid = 0;
  assert_int_equal(put_from(s, pv, ch, seq, outgoing, 0, &rowid), PARLEY_OK);
  assert_true(rowid > 0);
  return rowid;
}

static uint64_t nmsgs(struct parley_store *s) {
  uint64_t n = 0;
  assert_int_equal(parley_store_count_messages(s, &n), PARLEY_OK);
  return n;
}

/* What get_message found. */
struct got {
  int n;
  struct parley_msg m;
  char ch[64], body[64];
  int has_chain;
  uint8_t chain0;
};

static int on_msg(void *ctx, const struct parley_msg *m) {
  struct got *g = ctx;
  g->n++;
  g->m = *m;
  snprintf(g->ch, sizeof g->ch, "%s", m->channel);
  snprintf(g->body, sizeof g->body, "%.*s", (int)m->body_len,
           (const char *)m->body);
  g->has_chain = m->chain != NULL;
  g->chain0 = m->chain != NULL ? m->chain[0] : 0;
  return 0;
}

/* The stored message seq of publisher pv on ch is what put_from wrote, at
 * rowid. */
static void check_msg(struct parley_store *s, uint8_t pv, const char *ch,
                      uint64_t seq, int64_t rowid) {
  uint8_t pub[32];
  char want[64];
  struct got g;

  key(pub, pv);
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_get_message(s, pub, ch, seq, on_msg, &g),
                   PARLEY_OK);
  assert_int_equal(g.n, 1);
  assert_int_equal(g.m.rowid, rowid);
  assert_string_equal(g.ch, ch);
  assert_int_equal(g.m.seq, seq);
  assert_int_equal(g.m.ts_ms, 1000 + (int64_t)seq);
  assert_int_equal(g.m.stored_ms, 5000);
  snprintf(want, sizeof want, "body %u %s %llu", (unsigned)pv, ch,
           (unsigned long long)seq);
  assert_string_equal(g.body, want);
  assert_int_equal(g.has_chain, (int)(seq % 2));
  if (seq % 2)
    assert_int_equal(g.chain0, (uint8_t)seq);
}

static void reopen(struct fx *f) {
  parley_store_close(f->s);
  f->s = NULL;
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
}

/* 150 messages in one transaction (two chunks and single rows): reads in
 * the transaction see them, and each keeps the rowid put_message gave,
 * through the commit and a reopen. */
static void test_rowids_and_reads(void **state) {
  struct fx *f = *state;
  int64_t rowid[151];
  uint64_t i;

  put_ok(f->s, 1, "news", 1000, 0); /* outside a transaction: a row now */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  for (i = 1; i <= 150; i++) {
    rowid[i] = put_ok(f->s, (uint8_t)(1 + i % 3), i % 2 ? "news" : "talk", i,
                      0);
    if (i > 1)
      assert_int_equal(rowid[i], rowid[i - 1] + 1);
  }
  assert_int_equal(rowid[1], 2);
  assert_int_equal(nmsgs(f->s), 151); /* the count sees the pending rows */
  check_msg(f->s, (uint8_t)(1 + 150 % 3), "talk", 150, rowid[150]);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  reopen(f);
  assert_int_equal(nmsgs(f->s), 151);
  for (i = 1; i <= 150; i++)
    check_msg(f->s, (uint8_t)(1 + i % 3), i % 2 ? "news" : "talk", i,
              rowid[i]);
  /* The next transaction goes on from the largest rowid. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(put_ok(f->s, 9, "news", 1, 0), rowid[150] + 1);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
}

/* A message stored before, or pending in the same transaction, is a
 * duplicate; one older than the newest but never stored is not. */
static void test_duplicates(void **state) {
  struct fx *f = *state;
  int64_t r = 0;

  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put_ok(f->s, 1, "news", 5, 0);
  put_ok(f->s, 1, "news", 7, 0);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  reopen(f); /* the marks start again from the table */

  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(put_from(f->s, 1, "news", 7, 0, 0, &r), PARLEY_EEXIST);
  assert_int_equal(put_from(f->s, 1, "news", 5, 0, 0, &r), PARLEY_EEXIST);
  put_ok(f->s, 1, "news", 6, 0); /* a gap filled: new */
  put_ok(f->s, 1, "news", 8, 0);
  assert_int_equal(put_from(f->s, 1, "news", 8, 0, 0, &r), PARLEY_EEXIST);
  put_ok(f->s, 2, "news", 8, 0); /* another publisher */
  put_ok(f->s, 1, "talk", 8, 0); /* another channel */
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(nmsgs(f->s), 6);

  /* Our own message comes back (relayed, so not outgoing) while the
   * original is still pending: a duplicate, not a failed commit. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put_ok(f->s, 3, "mine", 1, 0); /* loads the mark for (3, mine) */
  put_ok(f->s, 3, "mine", 2, 1); /* own, pending: raises it */
  assert_int_equal(put_from(f->s, 3, "mine", 2, 0, 0, &r), PARLEY_EEXIST);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(nmsgs(f->s), 8);
}

/* A rollback forgets the pending rows; the next transaction reuses their
 * rowids and finds no duplicates among them. */
static void test_rollback(void **state) {
  struct fx *f = *state;
  int64_t a, b;

  a = put_ok(f->s, 1, "news", 1, 0);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  b = put_ok(f->s, 1, "news", 2, 0);
  put_ok(f->s, 1, "news", 3, 0);
  assert_int_equal(b, a + 1);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  assert_int_equal(nmsgs(f->s), 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  /* The mark still says 3: seq 2 goes the ordinary way and is new. */
  assert_int_equal(put_ok(f->s, 1, "news", 2, 0), a + 1);
  assert_int_equal(put_ok(f->s, 1, "news", 3, 0), a + 2);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  check_msg(f->s, 1, "news", 3, a + 2);
  assert_int_equal(nmsgs(f->s), 3);
}

static int count_cb(void *ctx, const struct parley_msg *m) {
  (void)m;
  (*(int *)ctx)++;
  return 0;
}

/* Text bodies reach the full-text index with the pending rows. */
static void test_text_searchable(void **state) {
  struct fx *f = *state;
  struct parley_query q;
  int64_t r = 0;
  int n = 0;

  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  for (uint64_t i = 1; i <= 70; i++)
    assert_int_equal(put_from(f->s, 1, i <= 35 ? "news" : "talk", i, 0, 1, &r),
                     PARLEY_OK);
  memset(&q, 0, sizeof q);
  q.since_ms = INT64_MIN;
  q.until_ms = INT64_MAX;
  q.search = "talk";
  assert_int_equal(parley_store_query(f->s, &q, count_cb, &n), PARLEY_OK);
  assert_int_equal(n, 35); /* seen inside the transaction */
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  n = 0;
  q.search = "news";
  q.channel = "news";
  assert_int_equal(parley_store_query(f->s, &q, count_cb, &n), PARLEY_OK);
  assert_int_equal(n, 35);
}

/* An own message repeating a stored seq (which the code above never
 * does: the check for it is skipped) makes the insert fail: put_message
 * had answered success, so the commit must fail, and after the rollback
 * the store holds what it held. */
static void test_failed_insert_fails_commit(void **state) {
  struct fx *f = *state;

  put_ok(f->s, 1, "news", 1, 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put_ok(f->s, 1, "news", 2, 1);
  put_ok(f->s, 1, "news", 1, 1); /* a pending duplicate */
  assert_true(parley_store_commit(f->s) < 0);
  assert_non_null(strstr(parley_store_errmsg(f->s), "UNIQUE"));
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  assert_int_equal(nmsgs(f->s), 1);
  /* And the next transaction is clean. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put_ok(f->s, 1, "news", 2, 1);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(nmsgs(f->s), 2);
}

struct sweep {
  uint64_t accepted;
  int committed;
};

/* 80 messages in one transaction, counting those put_message accepted. */
static void sweep_work(struct parley_store *s, void *ctx) {
  struct sweep *w = ctx;
  int64_t r;

  if (parley_store_begin(s) != PARLEY_OK)
    return;
  for (uint64_t i = 1; i <= 80; i++)
    if (put_from(s, (uint8_t)(1 + i % 2), "news", i, 0, 0, &r) == PARLEY_OK)
      w->accepted++;
  w->committed = parley_store_commit(s) == PARLEY_OK;
  if (!w->committed)
    (void)!parley_store_rollback(s);
}

/* Then the next run starts from nothing (its store may not even open). */
static void sweep_check(struct parley_store *s, void *ctx) {
  struct sweep *w = ctx;
  uint64_t n = 0;

  assert_int_equal(parley_store_count_messages(s, &n), PARLEY_OK);
  assert_int_equal(n, w->committed ? w->accepted : 0);
  w->accepted = 0;
  w->committed = 0;
}

/* Every allocation may fail: each run ends without a crash or a leak, and
 * every message put_message accepted is stored after the commit. */
static void test_allocation_failures(void **state) {
  struct sweep w = {0, 0};
  assert_true(alloc_sweep(*state, sweep_work, sweep_check, &w) >= 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_rowids_and_reads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_searchable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_insert_fails_commit, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_allocation_failures, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
