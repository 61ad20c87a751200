/* test_store_obatch.c — the outbox's batches (src/store/store_obatch.c):
 * deliveries added inside a transaction become one outbox_batch row per
 * recipient at commit, acks are kept in memory, and what is still unacked
 * when due, walked or reopened after a crash becomes ordinary outbox rows.
 * Checked through the store's API and by reading the tables directly. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap_fixture.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store_fixture.h"
#include "store_sql.h"

/* Stores our message seq on "news".  OUT: *rowid. */
static int put_msg(struct parley_store *s, uint64_t seq, int64_t *rowid) {
  uint8_t pub[32];
  struct parley_msg m;

  key(pub, 0xA);
  memset(&m, 0, sizeof m);
  m.publisher = pub;
  m.channel = "news";
  m.channel_len = 4;
  m.seq = seq;
  m.ts_ms = (int64_t)seq;
  m.body = (const uint8_t *)"x";
  m.body_len = 1;
  m.outgoing = 1;
  return parley_store_put_message(s, &m, rowid);
}

static int64_t put(struct parley_store *s, uint64_t seq) {
  int64_t rowid = 0;
  assert_int_equal(put_msg(s, seq, &rowid), PARLEY_OK);
  return rowid;
}

static uint64_t count(struct parley_store *s) {
  uint64_t n = 0;
  assert_int_equal(parley_store_outbox_count(s, &n), PARLEY_OK);
  return n;
}

/* What a walk delivered. */
struct walk {
  int n;
  int64_t rowid[16];
  uint8_t rcpt[16];
  int64_t next_try[16];
};

static int on_entry(void *ctx, const struct parley_outbox_entry *e,
                    const struct parley_msg *m) {
  struct walk *w = ctx;
  assert_int_equal(e->msg_rowid, m->rowid);
  if (w->n < 16) {
    w->rowid[w->n] = e->msg_rowid;
    w->rcpt[w->n] = e->recipient[0];
    w->next_try[w->n] = e->next_try_ms;
  }
  w->n++;
  return 0;
}

/* ---- The rowids column ------------------------------------------------------ */

static void test_codec_round_trip(void **state) {
  const int64_t v[] = {5, 6, 7, 9, 20, 21, INT64_MAX - 1, INT64_MAX};
  int64_t out[16];
  uint8_t b[16 * PARLEY_OB_RUN];
  size_t len, n = 0;
  (void)state;

  len = parley__ob_encode(v, 8, b);
  assert_int_equal(len, 4 * PARLEY_OB_RUN); /* 5-7, 9, 20-21, the top two */
  assert_int_equal(parley__ob_decode(b, len, out, 16, &n), PARLEY_OK);
  assert_int_equal(n, 8);
  assert_memory_equal(out, v, sizeof v);
  /* One rowid, and none at all. */
  len = parley__ob_encode(v + 3, 1, b);
  assert_int_equal(parley__ob_decode(b, len, out, 16, &n), PARLEY_OK);
  assert_int_equal(n, 1);
  assert_int_equal(out[0], 9);
  assert_int_equal(parley__ob_encode(v, 0, b), 0);
  assert_int_equal(parley__ob_decode(b, 0, out, 16, &n), PARLEY_OK);
  assert_int_equal(n, 0);
  /* More than the caller has room for. */
  len = parley__ob_encode(v, 8, b);
  assert_int_equal(parley__ob_decode(b, len, out, 7, &n), PARLEY_ETOOBIG);
}

static void run(uint8_t *b, uint64_t first, uint32_t count) {
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)(first >> (8 * i));
  for (int i = 0; i < 4; i++)
    b[8 + i] = (uint8_t)(count >> (8 * i));
}

static void test_codec_rejects(void **state) {
  uint8_t b[3 * PARLEY_OB_RUN];
  int64_t out[64];
  size_t n = 99;
  (void)state;

  run(b, 10, 2);
  assert_int_equal(parley__ob_decode(b, PARLEY_OB_RUN - 1, out, 64, &n),
                   PARLEY_EPROTO); /* a partial run */
  assert_int_equal(n, 0);
  run(b, 10, 0); /* an empty run */
  assert_int_equal(parley__ob_decode(b, PARLEY_OB_RUN, out, 64, &n),
                   PARLEY_EPROTO);
  run(b, 0, 1); /* rowid 0 */
  assert_int_equal(parley__ob_decode(b, PARLEY_OB_RUN, out, 64, &n),
                   PARLEY_EPROTO);
  run(b, (uint64_t)INT64_MAX, 2); /* past the largest rowid */
  assert_int_equal(parley__ob_decode(b, PARLEY_OB_RUN, out, 64, &n),
                   PARLEY_EPROTO);
  run(b, UINT64_MAX, 1); /* negative as a rowid */
  assert_int_equal(parley__ob_decode(b, PARLEY_OB_RUN, out, 64, &n),
                   PARLEY_EPROTO);
  run(b, 10, 2);
  run(b + PARLEY_OB_RUN, 12, 1); /* touches 10-11: would have been merged */
  assert_int_equal(parley__ob_decode(b, 2 * PARLEY_OB_RUN, out, 64, &n),
                   PARLEY_EPROTO);
  run(b + PARLEY_OB_RUN, 5, 1); /* descending */
  assert_int_equal(parley__ob_decode(b, 2 * PARLEY_OB_RUN, out, 64, &n),
                   PARLEY_EPROTO);
  run(b + PARLEY_OB_RUN, 13, 1);
  assert_int_equal(parley__ob_decode(b, 2 * PARLEY_OB_RUN, out, 64, &n),
                   PARLEY_OK);
  assert_int_equal(n, 3);
}

/* ---- Batches ------------------------------------------------------------------- */

static void test_one_row_per_recipient(void **state) {
  struct fx *f = *state;
  uint8_t a[32], b[32];
  int64_t r[4];

  key(a, 1);
  key(b, 2);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  for (int i = 0; i < 4; i++) {
    r[i] = put(f->s, (uint64_t)i + 1);
    assert_int_equal(parley_store_outbox_add(f->s, r[i], a, 1000), PARLEY_OK);
    if (i % 2 == 0)
      assert_int_equal(parley_store_outbox_add(f->s, r[i], b, 1000),
                       PARLEY_OK);
  }
  assert_int_equal(count(f->s), 6);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 2);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 0);
  /* a's four rowids are one run. */
  assert_int_equal(raw_int(f->path, "SELECT length(rowids) FROM outbox_batch"
                          " WHERE recipient = x'0101010101010101010101010101"
                          "010101010101010101010101010101010101'"),
                   PARLEY_OB_RUN);
  assert_int_equal(count(f->s), 6);

  /* Acks are kept in memory; the row goes with the last one. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  for (int i = 0; i < 4; i++)
    assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[i]), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[0]),
                   PARLEY_ENOTFOUND); /* twice */
  assert_int_equal(parley_store_outbox_ack_row(f->s, b, r[1]),
                   PARLEY_ENOTFOUND); /* never sent to b */
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 1);
  assert_int_equal(count(f->s), 2);
  /* By name as well (a publish that ended before its ack came). */
  {
    uint8_t pub[32];
    key(pub, 0xA);
    assert_int_equal(parley_store_outbox_ack(f->s, b, pub, "news", 1),
                     PARLEY_OK);
    assert_int_equal(parley_store_outbox_ack(f->s, b, pub, "news", 1),
                     PARLEY_ENOTFOUND);
    assert_int_equal(parley_store_outbox_ack(f->s, b, pub, "news", 99),
                     PARLEY_ENOTFOUND);
    assert_int_equal(parley_store_outbox_ack(f->s, b, pub, "news", 3),
                     PARLEY_OK);
  }
  assert_int_equal(count(f->s), 0);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 0);
}

static void test_acked_before_commit_never_written(void **state) {
  struct fx *f = *state;
  uint8_t a[32];
  int64_t r;

  key(a, 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  r = put(f->s, 1);
  assert_int_equal(parley_store_outbox_add(f->s, r, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 0);
  assert_int_equal(count(f->s), 0);
}

static void test_due_becomes_rows(void **state) {
  struct fx *f = *state;
  uint8_t a[32];
  int64_t r[3];
  struct walk w;

  key(a, 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  for (int i = 0; i < 3; i++) {
    r[i] = put(f->s, (uint64_t)i + 1);
    assert_int_equal(parley_store_outbox_add(f->s, r[i], a, 1000), PARLEY_OK);
  }
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[1]), PARLEY_OK);
  /* Not due yet: nothing walked, still a batch. */
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_store_outbox_due(f->s, 999, 0, on_entry, &w),
                   PARLEY_OK);
  assert_int_equal(w.n, 0);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 1);
  /* Due: the two unacked ones are outbox rows now, the batch is gone. */
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_store_outbox_due(f->s, 1000, 0, on_entry, &w),
                   PARLEY_OK);
  assert_int_equal(w.n, 2);
  assert_int_equal(w.rowid[0], r[0]);
  assert_int_equal(w.rowid[1], r[2]);
  assert_int_equal(w.next_try[0], 1000);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 0);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 2);
  assert_int_equal(count(f->s), 2);
  /* From here they are ordinary rows. */
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[0]), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[0]),
                   PARLEY_ENOTFOUND);
  assert_int_equal(count(f->s), 1);
}

static void test_walk_for_recipient(void **state) {
  struct fx *f = *state;
  uint8_t a[32], b[32];
  int64_t r;
  struct walk w;

  key(a, 1);
  key(b, 2);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  r = put(f->s, 1);
  assert_int_equal(parley_store_outbox_add(f->s, r, a, 5000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r, b, 5000), PARLEY_OK);
  /* Inside the same transaction, before the batch was ever written. */
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_store_outbox_for(f->s, a, on_entry, &w), PARLEY_OK);
  assert_int_equal(w.n, 1);
  assert_int_equal(w.rcpt[0], 1);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 1);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 1); /* b's */
  assert_int_equal(count(f->s), 2);
}

/* Reopens the store as a restart after a crash would. */
static void restart(struct fx *f) {
  parley_store_close(f->s);
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
}

static void test_crash_resends_what_was_unacked(void **state) {
  struct fx *f = *state;
  uint8_t a[32];
  int64_t r[6], more;
  struct walk w;

  key(a, 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  for (int i = 0; i < 4; i++) {
    r[i] = put(f->s, (uint64_t)i + 1);
    assert_int_equal(parley_store_outbox_add(f->s, r[i], a, 1000), PARLEY_OK);
  }
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  /* An ack whose transaction rolled back is forgotten. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[0]), PARLEY_OK);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  restart(f);
  assert_int_equal(count(f->s), 4);
  /* A committed ack rewrites the batch's row: a restart sends only what
   * was unacked at the last commit. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[0]), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[2]), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT length(rowids) FROM outbox_batch"),
                   2 * PARLEY_OB_RUN); /* r[1] and r[3]: two runs */
  restart(f);
  assert_int_equal(count(f->s), 2);
  /* Outside a transaction the row is rewritten at once. */
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[1]), PARLEY_OK);
  restart(f);
  assert_int_equal(count(f->s), 1);
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_store_outbox_for(f->s, a, on_entry, &w), PARLEY_OK);
  assert_int_equal(w.n, 1);
  assert_int_equal(w.rowid[0], r[3]);
  /* A batch acked in part before its first commit is written without
   * the acked ones. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  r[4] = put(f->s, 5);
  r[5] = put(f->s, 6);
  assert_int_equal(parley_store_outbox_add(f->s, r[4], a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r[5], a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r[4]), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  restart(f);
  assert_int_equal(count(f->s), 2); /* r[3], a row since the walk, and r[5] */
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_store_outbox_for(f->s, a, on_entry, &w), PARLEY_OK);
  assert_int_equal(w.n, 2);
  assert_int_equal(w.rowid[0], r[3]);
  assert_int_equal(w.rowid[1], r[5]);
  /* New deliveries are batched again after the reopened ones. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  more = put(f->s, 7);
  assert_int_equal(parley_store_outbox_add(f->s, more, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 1);
  assert_int_equal(count(f->s), 3);
}

static void test_rollback_forgets(void **state) {
  struct fx *f = *state;
  uint8_t a[32];
  int64_t r1, r2, again;

  key(a, 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  r1 = put(f->s, 1);
  assert_int_equal(parley_store_outbox_add(f->s, r1, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  /* A transaction that acks r1, adds r2, and is rolled back. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  r2 = put(f->s, 2);
  assert_int_equal(parley_store_outbox_add(f->s, r2, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r1), PARLEY_OK);
  assert_int_equal(count(f->s), 1);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  /* As committed: r1 waiting, r2 never existed. */
  assert_int_equal(count(f->s), 1);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 1);
  /* The rolled-back rowid is used again, and batched. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  again = put(f->s, 2);
  assert_int_equal(again, r2);
  assert_int_equal(parley_store_outbox_add(f->s, again, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, a, r1), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(count(f->s), 1);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 1);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 0);
}

static void test_outside_transaction_and_repeats(void **state) {
  struct fx *f = *state;
  uint8_t a[32];
  int64_t r1, r2;

  key(a, 1);
  r1 = put(f->s, 1);
  r2 = put(f->s, 2);
  /* No transaction: an outbox row straight away. */
  assert_int_equal(parley_store_outbox_add(f->s, r2, a, 1000), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 1);
  /* In one, a rowid not above the recipient's latest is a row too, and a
   * pair added twice is still one delivery. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r1, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r2, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 2);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 0);
  assert_int_equal(count(f->s), 2);
}

static void test_damaged_row_skipped(void **state) {
  struct fx *f = *state;
  uint8_t a[32];
  int64_t r;

  key(a, 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  r = put(f->s, 1);
  assert_int_equal(parley_store_outbox_add(f->s, r, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  parley_store_close(f->s);
  f->s = NULL;
  {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE outbox_batch SET rowids = x'0102';"
                                  "INSERT INTO outbox_batch (recipient, rowids,"
                                  " next_try, created) VALUES (zeroblob(32),"
                                  " x'', 0, 0);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
  }
  /* Opens; the damaged rows are left alone, nothing else is lost. */
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
  assert_int_equal(count(f->s), 0);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 2);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM messages"), 1);
}

static void test_expire_sees_batches(void **state) {
  struct fx *f = *state;
  uint8_t a[32];
  uint64_t dropped = 0;
  int64_t r;

  key(a, 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  r = put(f->s, 1);
  assert_int_equal(parley_store_outbox_add(f->s, r, a, 1000), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  /* a was never seen: its deliveries older than the cutoff go. */
  assert_int_equal(parley_store_outbox_expire(f->s, 1000, &dropped),
                   PARLEY_OK);
  assert_int_equal(dropped, 0);
  assert_int_equal(parley_store_outbox_expire(f->s, 1001, &dropped),
                   PARLEY_OK);
  assert_int_equal(dropped, 1);
  assert_int_equal(count(f->s), 0);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox_batch"), 0);
}

struct counts {
  int n;
  uint8_t k[4];
  uint64_t c[4];
};

static int on_count(void *ctx, const uint8_t key[32], uint64_t n) {
  struct counts *c = ctx;
  if (c->n < 4) {
    c->k[c->n] = key[0];
    c->c[c->n] = n;
  }
  c->n++;
  return 0;
}

static void test_by_recipient_adds_batches(void **state) {
  struct fx *f = *state;
  uint8_t a[32], b[32], c[32];
  int64_t r[4];
  struct counts got;

  key(a, 1);
  key(b, 2);
  key(c, 3);
  for (int i = 0; i < 4; i++)
    r[i] = put(f->s, (uint64_t)i + 1);
  /* Rows: a 2, b 1.  Batches: b 3 more, c 1. */
  assert_int_equal(parley_store_outbox_add(f->s, r[0], a, 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r[1], a, 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r[0], b, 1), PARLEY_OK);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  for (int i = 1; i < 4; i++)
    assert_int_equal(parley_store_outbox_add(f->s, r[i], b, 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, r[3], c, 1), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  memset(&got, 0, sizeof got);
  assert_int_equal(parley_store_outbox_by_recipient(f->s, 0, on_count, &got),
                   PARLEY_OK);
  assert_int_equal(got.n, 3);
  assert_int_equal(got.k[0], 2);
  assert_int_equal(got.c[0], 4);
  assert_int_equal(got.k[1], 1);
  assert_int_equal(got.c[1], 2);
  assert_int_equal(got.k[2], 3);
  assert_int_equal(got.c[2], 1);
  memset(&got, 0, sizeof got);
  assert_int_equal(parley_store_outbox_by_recipient(f->s, 1, on_count, &got),
                   PARLEY_OK);
  assert_int_equal(got.n, 1);
  assert_int_equal(got.k[0], 2);
}

/* One round of outbox work through the batches: two recipients, three
 * messages, commit, some acks, a due walk, a walk for one recipient.  Any
 * step may fail (the allocator does); the round goes on with the next. */
static int on_skip(void *ctx, const struct parley_outbox_entry *e,
                   const struct parley_msg *m) {
  (void)ctx;
  (void)e;
  (void)m;
  return 0;
}

static void round_of_work(struct parley_store *s, uint64_t seq0) {
  uint8_t a[32], b[32];
  int64_t r[3] = {0, 0, 0};
  uint64_t n = 0;

  key(a, 1);
  key(b, 2);
  if (parley_store_begin(s) != PARLEY_OK)
    return;
  for (int i = 0; i < 3; i++) {
    if (put_msg(s, seq0 + (uint64_t)i, &r[i]) != PARLEY_OK)
      continue;
    (void)!parley_store_outbox_add(s, r[i], a, 1000);
    (void)!parley_store_outbox_add(s, r[i], b, 1000);
  }
  if (parley_store_commit(s) != PARLEY_OK) {
    (void)!parley_store_rollback(s);
    return;
  }
  if (r[0] > 0)
    (void)!parley_store_outbox_ack_row(s, a, r[0]);
  if (r[1] > 0)
    (void)!parley_store_outbox_ack_row(s, a, r[1]);
  (void)!parley_store_outbox_count(s, &n);
  (void)!parley_store_outbox_due(s, 1000, 0, on_skip, NULL);
  (void)!parley_store_outbox_for(s, b, on_skip, NULL);
}

static void sweep_work(struct parley_store *s, void *ctx) {
  (void)ctx;
  round_of_work(s, 1);
  round_of_work(s, 4);
}

/* The file is whole: it opens, and what it counts is what it walks. */
static void sweep_check(struct parley_store *s, void *ctx) {
  struct walk w;
  uint64_t n = 0;

  (void)ctx;
  assert_int_equal(parley_store_outbox_count(s, &n), PARLEY_OK);
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_store_outbox_due(s, INT64_MAX, 0, on_entry, &w),
                   PARLEY_OK);
  assert_int_equal((uint64_t)w.n, n);
  assert_true(n <= 12);
}

/* Every allocation the batches make may fail: each such run must end
 * without a crash or a leak, and the file must open afterwards with an
 * outbox that agrees with itself (the count equals what the walks see). */
static void test_allocation_failures(void **state) {
  /* The rounds allocate: failures were injected. */
  assert_true(alloc_sweep(*state, sweep_work, sweep_check, NULL) >= 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codec_round_trip),
      cmocka_unit_test(test_codec_rejects),
      cmocka_unit_test_setup_teardown(test_one_row_per_recipient, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_acked_before_commit_never_written,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_due_becomes_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_walk_for_recipient, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_crash_resends_what_was_unacked,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_rollback_forgets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outside_transaction_and_repeats,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_damaged_row_skipped, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_expire_sees_batches, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_by_recipient_adds_batches, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_allocation_failures, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
