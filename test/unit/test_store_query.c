/*
 * test_store_query.c — history queries over spans (schema 9): every query
 * shape against a brute-force answer on the same random data, and the
 * spans themselves (one per publisher and channel per 64 rows, rolled back
 * with their rows, every row covered).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "heap_fixture.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store_fixture.h"
#include "store_sql.h"
#include "wire/wire.h"

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static const char *const chans[] = {"news", "chat", "big", "@alice", "@bob"};
#define NCHANS (sizeof chans / sizeof chans[0])
#define NPUBS 4
#define MAXMSG 4096

/* What the test stored, to answer queries without the store. */
struct model_msg {
  int64_t rowid, ts;
  uint8_t pub;
  unsigned ch;
  int quick; /* a text body with the word "quick" */
};

struct model {
  struct model_msg m[MAXMSG];
  size_t n;
  uint64_t seq[NPUBS + 1][NCHANS];
};

/* Stores one random message; keeps it in the model when it will commit
 * (the caller drops a rolled-back transaction's). */
static void put_random(struct parley_store *s, struct model *md) {
  uint8_t k[32];
  char body[48];
  struct parley_msg m;
  struct model_msg *x = &md->m[md->n];
  int64_t rowid = 0;
  uint32_t kind = rnd(3);

  assert_true(md->n < MAXMSG);
  x->pub = (uint8_t)(1 + rnd(NPUBS));
  x->ch = rnd(NCHANS);
  x->ts = (int64_t)rnd(1000) - 100; /* clocks disagree: not monotonic */
  x->quick = kind == 0;
  snprintf(body, sizeof body, "%s %zu", kind == 0 ? "quick fox" : "slow",
           md->n);
  key(k, x->pub);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.channel = chans[x->ch];
  m.channel_len = strlen(chans[x->ch]);
  m.seq = ++md->seq[x->pub][x->ch];
  m.ts_ms = x->ts;
  m.flags = kind == 2 ? PARLEY_MSG_BINARY : 0;
  m.body = (const uint8_t *)body;
  m.body_len = strlen(body);
  m.stored_ms = 1;
  assert_int_equal(parley_store_put_message(s, &m, &rowid), PARLEY_OK);
  x->rowid = rowid;
  md->n++;
  /* Now and then the same message again: EEXIST, through the table. */
  if (rnd(8) == 0)
    assert_int_equal(parley_store_put_message(s, &m, NULL), PARLEY_EEXIST);
}

/* Random transactions (some rolled back) and single puts. */
static void fill(struct parley_store *s, struct model *md, size_t want) {
  while (md->n < want) {
    size_t before = md->n, k = 1 + rnd(200);
    uint32_t how = rnd(6);
    if (md->n + k > want)
      k = want - md->n;
    if (how == 0) {
      put_random(s, md); /* outside a transaction */
      continue;
    }
    assert_int_equal(parley_store_begin(s), PARLEY_OK);
    for (size_t i = 0; i < k; i++)
      put_random(s, md);
    if (how == 1) {
      assert_int_equal(parley_store_rollback(s), PARLEY_OK);
      md->n = before;
    } else {
      assert_int_equal(parley_store_commit(s), PARLEY_OK);
    }
  }
}

struct rows {
  int64_t v[MAXMSG];
  size_t n;
};

static int collect(void *ctx, const struct parley_msg *m) {
  struct rows *r = ctx;
  assert_true(r->n < MAXMSG);
  r->v[r->n++] = m->rowid;
  return 0;
}

static int model_cmp(const void *a, const void *b) {
  const struct model_msg *x = a, *y = b;
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  return x->rowid < y->rowid ? -1 : x->rowid > y->rowid;
}

/* What q should return, oldest first. */
static void expect(const struct model *md, const struct parley_query *q,
                   const uint8_t *from_pub, struct rows *out) {
  static struct model_msg sel[MAXMSG];
  size_t n = 0, first = 0;

  for (size_t i = 0; i < md->n; i++) {
    const struct model_msg *x = &md->m[i];
    if (q->channel != NULL && strcmp(q->channel, chans[x->ch]) != 0)
      continue;
    if (q->direct_only && chans[x->ch][0] != '@')
      continue;
    if (q->from != NULL && (from_pub == NULL || *from_pub != x->pub))
      continue;
    if (x->ts < q->since_ms || x->ts > q->until_ms)
      continue;
    if (q->search != NULL && !x->quick)
      continue;
    if (x->rowid <= q->after_rowid)
      continue;
    sel[n++] = *x;
  }
  qsort(sel, n, sizeof sel[0], model_cmp);
  if (q->limit > 0 && n > q->limit)
    first = n - q->limit;
  out->n = 0;
  for (size_t i = first; i < n; i++)
    out->v[out->n++] = sel[i].rowid;
}

/* Runs n random queries against s and the model.  Returns how many had a
 * non-empty answer. */
static size_t check_queries(struct parley_store *s, const struct model *md,
                            unsigned n) {
  static struct rows got, want;
  static const uint32_t limits[] = {1, 2, 5, 17, 64, 100, 1000};
  uint8_t keys[NPUBS + 2][32];
  size_t nonempty = 0;

  for (uint8_t p = 0; p < NPUBS + 2; p++)
    key(keys[p], p);
  for (unsigned i = 0; i < n; i++) {
    struct parley_query q;
    unsigned mask = rnd(256);
    uint8_t pub = 0;
    memset(&q, 0, sizeof q);
    q.since_ms = INT64_MIN;
    q.until_ms = INT64_MAX;
    if (mask & 1)
      q.channel = rnd(8) == 0 ? "nowhere" : chans[rnd(NCHANS)];
    if (mask & 2)
      q.direct_only = 1;
    if (mask & 4) {
      pub = (uint8_t)(1 + rnd(NPUBS + 1)); /* NPUBS + 1: never stored */
      q.from = keys[pub];
    }
    if (mask & 8)
      q.since_ms = (int64_t)rnd(1100) - 150;
    if (mask & 16)
      q.until_ms = (int64_t)rnd(1100) - 150;
    if (mask & 32)
      q.search = "quick";
    if (mask & 64)
      q.after_rowid = (int64_t)rnd((uint32_t)md->n + 10);
    if (mask & 128)
      q.limit = limits[rnd(sizeof limits / sizeof limits[0])];
    got.n = 0;
    assert_int_equal(parley_store_query(s, &q, collect, &got), PARLEY_OK);
    expect(md, &q, q.from != NULL ? &pub : NULL, &want);
    assert_int_equal(got.n, want.n);
    for (size_t j = 0; j < want.n; j++)
      assert_int_equal(got.v[j], want.v[j]);
    nonempty += want.n > 0;
  }
  return nonempty;
}

static void test_query_matches_brute_force(void **state) {
  struct fx *f = *state;
  static struct model md;
  size_t nonempty = 0;

  memset(&md, 0, sizeof md);
  for (size_t round = 1; round <= 3; round++) {
    fill(f->s, &md, round * 1000);
    assert_int_equal(raw_int(f->path, SPANS_MISSING), 0);
    nonempty += check_queries(f->s, &md, 600);
  }
  assert_true(nonempty > 900); /* the queries were not all empty */
}

/* A schema 8 store (its message indexes, no spans) with the same random
 * data: migration 9 covers every old row with spans, and every query
 * shape answers as before. */
static void test_migration_9_spans(void **state) {
  struct fx *f = *state;
  static struct model md;

  memset(&md, 0, sizeof md);
  fill(f->s, &md, 2000);
  parley_store_close(f->s);
  f->s = NULL;
  raw_exec(f->path, "DROP TABLE spans;"
                    "CREATE INDEX messages_channel_ts ON messages (channel, ts);"
                    "CREATE INDEX messages_publisher_ts"
                    " ON messages (publisher, ts);"
                    "CREATE INDEX messages_ts ON messages (ts);"
                    "PRAGMA user_version = 8;");
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
  assert_int_equal(parley__store_migrations_applied(f->s), 1);
  assert_int_equal(raw_int(f->path, SPANS_MISSING), 0);
  /* One span per (publisher, channel) per 64 rowids, none wider. */
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM spans"),
                   raw_int(f->path, "SELECT count(*) FROM (SELECT 1"
                                    " FROM messages GROUP BY rowid >> 6,"
                                    " publisher, channel)"));
  assert_int_equal(raw_int(f->path, "SELECT max(hi - lo) < 64 FROM spans"), 1);
  assert_true(check_queries(f->s, &md, 600) > 300);
  /* New messages after the migration are found with the old ones. */
  fill(f->s, &md, 2500);
  assert_int_equal(raw_int(f->path, SPANS_MISSING), 0);
  assert_true(check_queries(f->s, &md, 300) > 150);
}

/* Puts n messages from pub on each channel of chs in turn. */
static void put_run(struct parley_store *s, uint8_t pub, const char *const *chs,
                    size_t nch, size_t n, uint64_t *seq) {
  uint8_t k[32];
  struct parley_msg m;

  key(k, pub);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.body = (const uint8_t *)"x";
  m.body_len = 1;
  m.flags = PARLEY_MSG_BINARY;
  for (size_t i = 0; i < n; i++) {
    m.channel = chs[i % nch];
    m.channel_len = strlen(m.channel);
    m.seq = ++*seq;
    m.ts_ms = (int64_t)*seq;
    assert_int_equal(parley_store_put_message(s, &m, NULL), PARLEY_OK);
  }
}

static void test_spans_per_chunk(void **state) {
  struct fx *f = *state;
  static const char *const one[] = {"a"}, *const two[] = {"b", "c"};
  uint64_t seq = 0;

  /* 640 messages in one transaction: one span per 64. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put_run(f->s, 1, one, 1, 640, &seq);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM spans"), 10);
  /* Two channels interleaved: one span per channel per 64 rows, each
   * reaching across the other's rows.  (The first put on "c" reads its
   * mark from the table, which first inserts the one row pending: 1 + 10
   * x 2 spans.) */
  seq = 0;
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put_run(f->s, 2, two, 2, 640, &seq);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM spans"), 31);
  assert_int_equal(raw_int(f->path, "SELECT max(hi - lo) FROM spans"), 63);
  /* A rolled-back transaction leaves no span behind. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put_run(f->s, 3, one, 1, 100, &seq);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM spans"), 31);
  /* Outside a transaction each message is a span of its own. */
  put_run(f->s, 3, one, 1, 3, &seq);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM spans"), 34);
  assert_int_equal(raw_int(f->path, SPANS_MISSING), 0);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM messages"), 1283);
}

/* The newest of a long channel are found without reading it all: with a
 * limit the walk stops at the first span older than what it kept. */
static void test_limit_stops_early(void **state) {
  struct fx *f = *state;
  static const char *const one[] = {"long"};
  static struct rows got;
  struct parley_query q;
  sqlite3_stmt *rows;
  uint64_t seq = 0;
  int runs;

  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put_run(f->s, 1, one, 1, 64 * 200, &seq);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  memset(&q, 0, sizeof q);
  q.since_ms = INT64_MIN;
  q.until_ms = INT64_MAX;
  q.channel = "long";
  q.limit = 10;
  rows = f->s->stmt[ST_SPAN_ROWS];
  runs = sqlite3_stmt_status(rows, SQLITE_STMTSTATUS_RUN, 1);
  (void)sqlite3_stmt_status(rows, SQLITE_STMTSTATUS_VM_STEP, 1);
  assert_int_equal(parley_store_query(f->s, &q, collect, &got), PARLEY_OK);
  runs = sqlite3_stmt_status(rows, SQLITE_STMTSTATUS_RUN, 0);
  assert_int_equal(got.n, 10);
  assert_int_equal(got.v[9], 64 * 200);
  assert_int_equal(got.v[0], 64 * 200 - 9);
  assert_int_equal(runs, 1); /* the next span is older than all ten */
  /* ... and that span is read by its rowid range, not through the unique
   * key's index, which holds the whole channel (no planner statistics
   * in a new store: the plan must not depend on them). */
  assert_true(sqlite3_stmt_status(rows, SQLITE_STMTSTATUS_VM_STEP, 0) < 2000);
  /* The 100 newest: two spans read. */
  got.n = 0;
  q.limit = 100;
  (void)sqlite3_stmt_status(rows, SQLITE_STMTSTATUS_RUN, 1);
  assert_int_equal(parley_store_query(f->s, &q, collect, &got), PARLEY_OK);
  assert_int_equal(got.n, 100);
  assert_int_equal(got.v[0], 64 * 200 - 99);
  assert_int_equal(sqlite3_stmt_status(rows, SQLITE_STMTSTATUS_RUN, 0), 2);
}

/* Hits past the 32 kept on the stack are allocated: a failure is ENOMEM
 * with nothing delivered and nothing leaked; a small result needs no
 * allocation at all. */
static void test_hits_out_of_memory(void **state) {
  struct fx *f = *state;
  static const char *const one[] = {"many"};
  static struct rows got;
  struct parley_query q;
  uint64_t seq = 0;

  put_run(f->s, 1, one, 1, 100, &seq);
  memset(&q, 0, sizeof q);
  q.since_ms = INT64_MIN;
  q.until_ms = INT64_MAX;
  parley_allocator_set(&counting);
  heap.fail_after = 0;
  got.n = 0;
  assert_int_equal(parley_store_query(f->s, &q, collect, &got), PARLEY_ENOMEM);
  assert_int_equal(got.n, 0);
  q.limit = 32;
  assert_int_equal(parley_store_query(f->s, &q, collect, &got), PARLEY_OK);
  assert_int_equal(got.n, 32);
  assert_int_equal(got.v[0], 69);
  heap.fail_after = -1;
  got.n = 0;
  q.limit = 0;
  assert_int_equal(parley_store_query(f->s, &q, collect, &got), PARLEY_OK);
  assert_int_equal(got.n, 100);
  parley_allocator_set(NULL);
  assert_int_equal(heap.live, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_query_matches_brute_force, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_migration_9_spans, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spans_per_chunk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limit_stops_early, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hits_out_of_memory, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
