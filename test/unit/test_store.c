/* test_store.c — unit tests of the SQLite store (src/store/). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/limits.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store_sql.h"

/* ---- Fixture ------------------------------------------------------------- */

struct fx {
  char dir[64];
  char path[96];
  struct parley_store *s;
  struct parley_log log;
  int warnings; /* records at WARN or above */
};

static void count_log(void *ctx, int level, const char *file, int line,
                      const char *func, const char *msg) {
  struct fx *f = ctx;
  (void)file;
  (void)line;
  (void)func;
  (void)msg;
  if (level >= PARLEY_LOG_WARN)
    f->warnings++;
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/parley-store-XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
  f->log.emit = count_log;
  f->log.ctx = f;
  f->log.min_level = PARLEY_LOG_DEBUG;
  if (parley_store_open(f->path, &f->log, &f->s) != PARLEY_OK) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  DIR *d;
  struct dirent *e;
  char p[512];

  parley_store_close(f->s);
  d = opendir(f->dir);
  if (d != NULL) {
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

static void reopen(struct fx *f) {
  parley_store_close(f->s);
  f->s = NULL;
  assert_int_equal(parley_store_open(f->path, &f->log, &f->s), PARLEY_OK);
}

static void key(uint8_t k[32], uint8_t n) { memset(k, n, 32); }

/* Stores a message; returns what put_message returned.  OUT: *rowid. */
static int put_rc(struct parley_store *s, uint8_t pub, const char *channel,
                  uint64_t seq, int64_t ts, uint32_t flags, const char *body,
                  int64_t *rowid) {
  uint8_t k[32];
  struct parley_msg m;

  key(k, pub);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.channel = channel;
  m.channel_len = strlen(channel);
  m.seq = seq;
  m.ts_ms = ts;
  m.flags = flags;
  m.body = (const uint8_t *)body;
  m.body_len = strlen(body);
  m.stored_ms = 1000;
  return parley_store_put_message(s, &m, rowid);
}

/* Stores a message that must be new; returns its rowid. */
static int64_t put(struct parley_store *s, uint8_t pub, const char *channel,
                   uint64_t seq, int64_t ts, uint32_t flags, const char *body) {
  int64_t rowid = -1;

  assert_int_equal(put_rc(s, pub, channel, seq, ts, flags, body, &rowid),
                   PARLEY_OK);
  assert_true(rowid > 0);
  return rowid;
}

/* Collects what a walk delivered. */
#define MAXC 64
struct got {
  size_t n;
  int64_t rowid[MAXC];
  uint64_t seq[MAXC];
  int64_t ts[MAXC];
  char body[MAXC][64];
  int stop_after; /* 0 = never */
};

static int collect(void *ctx, const struct parley_msg *m) {
  struct got *g = ctx;
  size_t n = m->body_len < 63 ? m->body_len : 63;
  assert_true(g->n < MAXC);
  g->rowid[g->n] = m->rowid;
  g->seq[g->n] = m->seq;
  g->ts[g->n] = m->ts_ms;
  memcpy(g->body[g->n], m->body, n);
  g->body[g->n][n] = '\0';
  g->n++;
  if (g->stop_after > 0 && g->n == (size_t)g->stop_after)
    return 77;
  return 0;
}

static struct parley_query all(void) {
  struct parley_query q;
  memset(&q, 0, sizeof q);
  q.since_ms = INT64_MIN;
  q.until_ms = INT64_MAX;
  return q;
}

static struct got run_query(struct parley_store *s,
                            const struct parley_query *q) {
  struct got g;
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_query(s, q, collect, &g), PARLEY_OK);
  return g;
}

/* ---- Open and migrations ------------------------------------------------- */

static void test_open_migrates_once(void **state) {
  struct fx *f = *state;

  assert_int_equal(parley_store_schema_version(f->s), 9);
  assert_int_equal(parley__store_schema_latest(), 9);
  assert_int_equal(parley__store_migrations_applied(f->s), 9);
  put(f->s, 1, "news", 1, 10, 0, "kept across reopen");
  reopen(f);
  assert_int_equal(parley__store_migrations_applied(f->s), 0);
  assert_int_equal(parley_store_schema_version(f->s), 9);
  {
    uint64_t n = 0;
    assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
    assert_int_equal(n, 1);
  }
  parley_store_close(f->s);
  f->s = NULL;
  assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 9);
  assert_int_equal(raw_int(f->path, "PRAGMA application_id"), 0x50524c59);
  {
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  assert_int_equal(parley_store_open(f->path, &f->log, &f->s), PARLEY_OK);
}

static void test_open_refuses_newer_schema(void **state) {
  struct fx *f = *state;
  struct parley_store *s2 = (struct parley_store *)&s2; /* poison */
  int before;

  parley_store_close(f->s);
  f->s = NULL;
  raw_exec(f->path, "PRAGMA user_version = 10");
  before = f->warnings;
  assert_int_equal(parley_store_open(f->path, &f->log, &s2), PARLEY_ESTORE);
  assert_null(s2);
  assert_true(f->warnings > before); /* the refusal was logged */
  /* Nothing was touched: the version is still the newer one. */
  assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 10);
  raw_exec(f->path, "PRAGMA user_version = 9");
  assert_int_equal(parley_store_open(f->path, &f->log, &f->s), PARLEY_OK);
}

static void test_open_refuses_foreign_db(void **state) {
  struct fx *f = *state;
  struct parley_store *s2 = NULL;
  char other[128];

  snprintf(other, sizeof other, "%s/other.db", f->dir);
  raw_exec(other, "PRAGMA application_id = 42; CREATE TABLE t (x)");
  assert_int_equal(parley_store_open(other, NULL, &s2), PARLEY_ESTORE);
  assert_null(s2);
  assert_int_equal(raw_int(other, "PRAGMA user_version"), 0);
}

static void test_open_bad_path(void **state) {
  struct fx *f = *state;
  struct parley_store *s2 = NULL;
  char bad[128];

  snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", f->dir);
  assert_int_equal(parley_store_open(bad, NULL, &s2), PARLEY_ESTORE);
  assert_null(s2);
  parley_store_close(NULL); /* a no-op */
}

/* The connection's settings (store.c configure()): WAL, an fsync per
 * commit, foreign keys, and statement journals in memory (a multi-row
 * INSERT inside a transaction keeps one; as a file it cost an open, an
 * unlink and a pwrite per page on every commit). */
static int conn_int(struct parley_store *s, const char *sql) {
  sqlite3_stmt *st = NULL;
  int v;
  assert_int_equal(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void test_open_settings(void **state) {
  struct fx *f = *state;

  assert_int_equal(conn_int(f->s, "PRAGMA synchronous"), 2);   /* FULL */
  assert_int_equal(conn_int(f->s, "PRAGMA temp_store"), 2);    /* MEMORY */
  assert_int_equal(conn_int(f->s, "PRAGMA foreign_keys"), 1);
  assert_int_equal(parley_store_set_sync(f->s, PARLEY_STORE_SYNC_OS),
                   PARLEY_OK);
  assert_int_equal(conn_int(f->s, "PRAGMA synchronous"), 1);   /* NORMAL */
  assert_int_equal(conn_int(f->s, "PRAGMA temp_store"), 2);
}

/* ---- Messages ------------------------------------------------------------ */

struct one {
  int calls;
  struct parley_msg m;
  uint8_t pub[32];
  char channel[64];
  char body[64];
};

static int grab(void *ctx, const struct parley_msg *m) {
  struct one *o = ctx;
  o->calls++;
  o->m = *m;
  memcpy(o->pub, m->publisher, 32);
  assert_true(m->channel_len < sizeof o->channel);
  memcpy(o->channel, m->channel, m->channel_len);
  o->channel[m->channel_len] = '\0';
  assert_true(m->body_len < sizeof o->body);
  memcpy(o->body, m->body, m->body_len);
  o->body[m->body_len] = '\0';
  return 0;
}

static void test_put_get_duplicate(void **state) {
  struct fx *f = *state;
  uint8_t k[32], k2[32];
  struct parley_msg m;
  struct one o;
  int64_t rowid = 0, rowid2 = 0;
  uint64_t n = 0;

  key(k, 7);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.channel = "news";
  m.channel_len = 4;
  m.seq = 42;
  m.ts_ms = -5; /* any int64 is a valid timestamp */
  m.flags = 0x1;
  m.body = (const uint8_t *)"hello";
  m.body_len = 5;
  m.outgoing = 7; /* normalised to 1 */
  m.stored_ms = 123;
  assert_int_equal(parley_store_put_message(f->s, &m, &rowid), PARLEY_OK);
  assert_true(rowid > 0);

  /* Same id, different content: refused, nothing written. */
  m.body = (const uint8_t *)"other";
  rowid2 = -99;
  assert_int_equal(parley_store_put_message(f->s, &m, &rowid2), PARLEY_EEXIST);
  assert_int_equal(rowid2, -99);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 1);

  memset(&o, 0, sizeof o);
  assert_int_equal(parley_store_get_message(f->s, k, "news", 42, grab, &o),
                   PARLEY_OK);
  assert_int_equal(o.calls, 1);
  assert_int_equal(o.m.rowid, rowid);
  assert_memory_equal(o.pub, k, 32);
  assert_string_equal(o.channel, "news");
  assert_int_equal(o.m.channel_len, 4);
  assert_int_equal(o.m.seq, 42);
  assert_int_equal(o.m.ts_ms, -5);
  assert_int_equal(o.m.flags, 0x1);
  assert_string_equal(o.body, "hello");
  assert_int_equal(o.m.body_len, 5);
  assert_int_equal(o.m.outgoing, 1);
  assert_int_equal(o.m.stored_ms, 123);

  /* Other seq, channel or publisher are distinct ids. */
  m.seq = 43;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_OK);
  m.channel = "newz";
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_OK);
  key(k2, 8);
  m.publisher = k2;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_OK);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 4);

  memset(&o, 0, sizeof o);
  assert_int_equal(parley_store_get_message(f->s, k, "news", 44, grab, &o),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_get_message(f->s, k2, "news", 42, grab, &o),
                   PARLEY_ENOTFOUND);
  assert_int_equal(o.calls, 0);
}

static void test_put_empty_body_and_stored_now(void **state) {
  struct fx *f = *state;
  uint8_t k[32];
  struct parley_msg m;
  struct one o;

  key(k, 1);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.channel = "@abc";
  m.channel_len = 4;
  m.seq = 1;
  m.body = NULL;
  m.body_len = 0;
  m.stored_ms = 0; /* store picks the time */
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_OK);
  memset(&o, 0, sizeof o);
  assert_int_equal(parley_store_get_message(f->s, k, "@abc", 1, grab, &o),
                   PARLEY_OK);
  assert_int_equal(o.m.body_len, 0);
  assert_non_null(o.m.body);
  assert_true(o.m.stored_ms > 1600000000000LL);
}

static void test_put_validation(void **state) {
  struct fx *f = *state;
  uint8_t k[32];
  struct parley_msg m;
  uint64_t n = 99;

  key(k, 1);
  memset(&m, 0, sizeof m);
  m.publisher = NULL;
  m.channel = "news";
  m.channel_len = 4;
  m.body = (const uint8_t *)"x";
  m.body_len = 1;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_EINVAL);
  assert_string_not_equal(parley_store_errmsg(f->s), "");
  m.publisher = k;
  m.channel_len = 0;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_EINVAL);
  m.channel = NULL;
  m.channel_len = 4;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_EINVAL);
  m.channel = "ne\0s";
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_EINVAL);
  m.channel = "news";
  m.channel_len = PARLEY_MAX_TOPIC + 1;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_EINVAL);
  m.channel_len = 4;
  m.body = NULL;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_EINVAL);
  m.body = (const uint8_t *)"x";
  m.body_len = (size_t)PARLEY_MAX_FRAME + 1;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_EINVAL);
  m.body_len = 1;
  m.seq = (uint64_t)INT64_MAX + 1;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_EINVAL);
  m.seq = (uint64_t)INT64_MAX;
  assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_OK);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 1);

  /* Lookups validate the channel the same way. */
  {
    struct one o;
    struct parley_query q;
    char longch[PARLEY_MAX_TOPIC + 2];
    memset(longch, 'c', sizeof longch - 1);
    longch[sizeof longch - 1] = '\0';
    memset(&o, 0, sizeof o);
    assert_int_equal(parley_store_get_message(f->s, k, "", 1, grab, &o),
                     PARLEY_EINVAL);
    assert_int_equal(parley_store_get_message(f->s, k, "news", UINT64_MAX,
                                              grab, &o),
                     PARLEY_ENOTFOUND);
    assert_int_equal(parley_store_outbox_ack(f->s, k, k, "", 1),
                     PARLEY_EINVAL);
    memset(&q, 0, sizeof q);
    q.since_ms = INT64_MIN;
    q.until_ms = INT64_MAX;
    q.channel = longch;
    assert_int_equal(parley_store_query(f->s, &q, grab, &o), PARLEY_EINVAL);
    assert_int_equal(parley_store_next_seq(f->s, longch, &n), PARLEY_EINVAL);
    assert_int_equal(o.calls, 0);
  }
}

/* ---- Queries ------------------------------------------------------------- */

/* A fixed data set:
 *   r1 A news  ts 100 "the quick brown fox"
 *   r2 B news  ts 200 "lazy dog sleeps"
 *   r3 A chat  ts 150 "quick question about dogs"
 *   r4 B @A    ts 300 "private: the fox is quick"
 *   r5 A @B    ts 300 "reply with a \"quote\" and OR"
 *   r6 B news  ts 250 binary "quick binary"
 *   r7 A news  ts 100 "café au lait"                                   */
struct ds {
  int64_t r[8];
};

static struct ds load(struct parley_store *s) {
  struct ds d;
  d.r[0] = 0;
  d.r[1] = put(s, 0xA, "news", 1, 100, 0, "the quick brown fox");
  d.r[2] = put(s, 0xB, "news", 1, 200, 0, "lazy dog sleeps");
  d.r[3] = put(s, 0xA, "chat", 1, 150, 0, "quick question about dogs");
  d.r[4] = put(s, 0xB, "@A", 1, 300, 0x2, "private: the fox is quick");
  d.r[5] = put(s, 0xA, "@B", 1, 300, 0x2, "reply with a \"quote\" and OR");
  d.r[6] = put(s, 0xB, "news", 2, 250, 0x4, "quick binary");
  d.r[7] = put(s, 0xA, "news", 2, 100, 0, "caf\xc3\xa9 au lait");
  return d;
}

static void expect(const struct got *g, size_t n, const int64_t *rows) {
  assert_int_equal(g->n, n);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(g->rowid[i], rows[i]);
}

static void test_query_filters(void **state) {
  struct fx *f = *state;
  struct ds d = load(f->s);
  struct parley_query q;
  struct got g;
  uint8_t a[32];

  key(a, 0xA);

  q = all(); /* oldest first: ts, then rowid */
  g = run_query(f->s, &q);
  expect(&g, 7,
         (int64_t[]){d.r[1], d.r[7], d.r[3], d.r[2], d.r[6], d.r[4], d.r[5]});

  q = all();
  q.channel = "news";
  g = run_query(f->s, &q);
  expect(&g, 4, (int64_t[]){d.r[1], d.r[7], d.r[2], d.r[6]});

  q = all();
  q.channel = ""; /* empty means any */
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 7);

  q = all();
  q.direct_only = 1;
  g = run_query(f->s, &q);
  expect(&g, 2, (int64_t[]){d.r[4], d.r[5]});

  q = all();
  q.direct_only = 1;
  q.channel = "@A";
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){d.r[4]});

  q = all();
  q.from = a;
  g = run_query(f->s, &q);
  expect(&g, 4, (int64_t[]){d.r[1], d.r[7], d.r[3], d.r[5]});

  q = all();
  q.since_ms = 200; /* inclusive */
  g = run_query(f->s, &q);
  expect(&g, 4, (int64_t[]){d.r[2], d.r[6], d.r[4], d.r[5]});

  q = all();
  q.until_ms = 150; /* inclusive */
  g = run_query(f->s, &q);
  expect(&g, 3, (int64_t[]){d.r[1], d.r[7], d.r[3]});

  q = all();
  q.since_ms = 150;
  q.until_ms = 250;
  q.from = a;
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){d.r[3]});

  q = all();
  q.after_rowid = d.r[4];
  g = run_query(f->s, &q);
  expect(&g, 3, (int64_t[]){d.r[7], d.r[6], d.r[5]});

  /* A zeroed query asks for ts in [0, 0], as the header's sentinels say. */
  memset(&q, 0, sizeof q);
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 0);
}

/* Schema 6: put_message indexes a text body itself, in a savepoint with
 * the row.  A duplicate adds no second index entry, the open transaction
 * stays usable, a rollback takes row and entry away together, and outside
 * a transaction the savepoint is the transaction. */
static void test_put_text_index(void **state) {
  struct fx *f = *state;
  struct parley_query q = all();
  struct parley_msg m;
  uint8_t k[32];
  struct got g;
  int64_t id = 0;

  key(k, 1);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.channel = "news";
  m.channel_len = 4;
  m.seq = 1;
  m.ts_ms = 5;
  m.body = (const uint8_t *)"lonely walrus";
  m.body_len = strlen("lonely walrus");
  q.search = "walrus";

  assert_int_equal(parley_store_put_message(f->s, &m, &id), PARLEY_OK);
  assert_int_equal(parley_store_in_tx(f->s), 0); /* committed */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_put_message(f->s, &m, &id), PARLEY_EEXIST);
  assert_int_equal(parley_store_in_tx(f->s), 1);
  m.seq = 2;
  m.body = (const uint8_t *)"walrus again";
  m.body_len = strlen("walrus again");
  assert_int_equal(parley_store_put_message(f->s, &m, &id), PARLEY_OK);
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 2);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 1);
  assert_string_equal(g.body[0], "lonely walrus");
  /* The rolled-back seq can be stored again, and is found once. */
  assert_int_equal(parley_store_put_message(f->s, &m, &id), PARLEY_OK);
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 2);
  /* A binary body under the same word is stored, not indexed. */
  m.seq = 3;
  m.flags = 0x4;
  assert_int_equal(parley_store_put_message(f->s, &m, &id), PARLEY_OK);
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 2);
  assert_int_equal(parley_store_in_tx(f->s), 0);
}

static void test_query_search(void **state) {
  struct fx *f = *state;
  struct ds d = load(f->s);
  struct parley_query q;
  struct got g;

  q = all();
  q.search = "quick";
  g = run_query(f->s, &q); /* r6 has "quick" but is binary: not indexed */
  expect(&g, 3, (int64_t[]){d.r[1], d.r[3], d.r[4]});

  q.search = "quick fox"; /* words are ANDed, in any order */
  g = run_query(f->s, &q);
  expect(&g, 2, (int64_t[]){d.r[1], d.r[4]});

  q.search = "  FOX \t quick\n"; /* case-folded, any whitespace */
  g = run_query(f->s, &q);
  expect(&g, 2, (int64_t[]){d.r[1], d.r[4]});

  q.search = "quick fox";
  q.channel = "news";
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){d.r[1]});

  q = all();
  q.search = "cafe"; /* diacritics folded */
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){d.r[7]});

  q.search = "dog"; /* whole tokens, no stemming */
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){d.r[2]});

  q.search = "binary";
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 0);

  q.search = "   "; /* no word: no search filter */
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 7);
}

static void test_query_search_syntax_is_literal(void **state) {
  struct fx *f = *state;
  struct ds d = load(f->s);
  struct parley_query q = all();
  struct got g;
  /* Each is FTS5 syntax (or broken syntax) if passed through raw. */
  static const char *const inert[] = {
      "\"",        "\"unbalanced",
      "a\"b\"c",   "NEAR(fox quick)",
      "body:fox",  "*",
      "fox*",      "^fox",
      "(",         ")",
      "-",         "+",
      "AND",       "NOT",
      "{body}: x", "'",
      "''",        ";",
      "\\",        "\"\"\"\"",
  };

  for (size_t i = 0; i < sizeof inert / sizeof inert[0]; i++) {
    struct got g2;
    memset(&g2, 0, sizeof g2);
    q.search = inert[i];
    assert_int_equal(parley_store_query(f->s, &q, collect, &g2), PARLEY_OK);
  }

  q.search = "fox OR lazy"; /* OR is a word: nothing has all three */
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 0);

  q.search = "and OR"; /* r5 says "... and OR" */
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){d.r[5]});

  q.search = "\"quote\""; /* the user's quotes are part of the word */
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){d.r[5]});

  q.search = "fox*"; /* '*' is not a prefix operator: tokenises to fox */
  g = run_query(f->s, &q);
  expect(&g, 2, (int64_t[]){d.r[1], d.r[4]});

  q.search = "private:"; /* not a column filter */
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){d.r[4]});

  q.search = "qui"; /* no implicit prefix match */
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 0);
}

static void test_fts_quote_exact(void **state) {
  char *out = NULL;
  char big[PARLEY_STORE_MAX_SEARCH + 2];
  (void)state;

  assert_int_equal(parley__store_fts_quote("a OR b*", &out), PARLEY_OK);
  assert_string_equal(out, "\"a\" \"OR\" \"b*\"");
  parley_free(out);
  assert_int_equal(parley__store_fts_quote("say \"hi\" x\"y", &out), PARLEY_OK);
  assert_string_equal(out, "\"say\" \"\"\"hi\"\"\" \"x\"\"y\"");
  parley_free(out);
  assert_int_equal(parley__store_fts_quote("\t one\n\ntwo  ", &out), PARLEY_OK);
  assert_string_equal(out, "\"one\" \"two\"");
  parley_free(out);
  assert_int_equal(parley__store_fts_quote("\"", &out), PARLEY_OK);
  assert_string_equal(out, "\"\"\"\"");
  parley_free(out);
  out = (char *)&out;
  assert_int_equal(parley__store_fts_quote(" \t\r\n", &out), PARLEY_OK);
  assert_null(out);
  assert_int_equal(parley__store_fts_quote("", &out), PARLEY_OK);
  assert_null(out);

  memset(big, 'a', sizeof big);
  big[PARLEY_STORE_MAX_SEARCH] = '\0';
  assert_int_equal(parley__store_fts_quote(big, &out), PARLEY_OK);
  assert_int_equal(strlen(out), PARLEY_STORE_MAX_SEARCH + 2);
  parley_free(out);
  big[PARLEY_STORE_MAX_SEARCH] = 'a';
  big[PARLEY_STORE_MAX_SEARCH + 1] = '\0';
  assert_int_equal(parley__store_fts_quote(big, &out), PARLEY_ETOOBIG);
  assert_null(out);
}

static void test_query_search_many_words(void **state) {
  struct fx *f = *state;
  char text[PARLEY_STORE_MAX_SEARCH + 8];
  struct parley_query q = all();
  struct got g;
  size_t i;

  put(f->s, 1, "news", 1, 1, 0, "a b c");
  /* 512 one-letter words (the longest search allowed). */
  for (i = 0; i + 1 < PARLEY_STORE_MAX_SEARCH; i += 2) {
    text[i] = "abc"[(i / 2) % 3];
    text[i + 1] = ' ';
  }
  text[i] = '\0';
  q.search = text;
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 1);
  /* Quote-only words are all doubled: the quoted form stays in bounds. */
  memset(text, '"', PARLEY_STORE_MAX_SEARCH);
  text[PARLEY_STORE_MAX_SEARCH] = '\0';
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 0);
  text[PARLEY_STORE_MAX_SEARCH] = 'x';
  text[PARLEY_STORE_MAX_SEARCH + 1] = '\0';
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_query(f->s, &q, collect, &g), PARLEY_ETOOBIG);
}

static void test_query_limit_newest_oldest_first(void **state) {
  struct fx *f = *state;
  struct parley_query q = all();
  struct got g;
  int64_t r[11];

  /* ts out of insertion order, with a tie at ts 50. */
  static const int64_t ts[11] = {0, 10, 90, 50, 20, 50, 80, 30, 70, 60, 40};
  for (int i = 1; i <= 10; i++)
    r[i] = put(f->s, 1, "news", (uint64_t)i, ts[i], 0, "m");

  q.limit = 3; /* newest three: ts 90, 80, 70 -> oldest first */
  g = run_query(f->s, &q);
  expect(&g, 3, (int64_t[]){r[8], r[6], r[2]});
  assert_int_equal(g.ts[0], 70);
  assert_int_equal(g.ts[2], 90);

  q.limit = 6; /* ts 50 tie: both in, by rowid */
  g = run_query(f->s, &q);
  expect(&g, 6, (int64_t[]){r[3], r[5], r[9], r[8], r[6], r[2]});

  q.limit = 5; /* tie split at the edge: the newer rowid wins */
  g = run_query(f->s, &q);
  expect(&g, 5, (int64_t[]){r[5], r[9], r[8], r[6], r[2]});

  q.limit = 100; /* more than there is */
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 10);
  assert_int_equal(g.ts[0], 10);
  assert_int_equal(g.ts[9], 90);

  q.limit = 2; /* with filters */
  q.until_ms = 45;
  g = run_query(f->s, &q);
  expect(&g, 2, (int64_t[]){r[7], r[10]});

  q = all(); /* after_rowid + limit */
  q.after_rowid = r[7];
  q.limit = 2;
  g = run_query(f->s, &q);
  expect(&g, 2, (int64_t[]){r[9], r[8]}); /* ts 60, 70 */
}

static int stop_at_two(void *ctx, const struct parley_msg *m) {
  return collect(ctx, m);
}

static void test_query_cb_stops(void **state) {
  struct fx *f = *state;
  struct parley_query q = all();
  struct got g;

  load(f->s);
  memset(&g, 0, sizeof g);
  g.stop_after = 2;
  assert_int_equal(parley_store_query(f->s, &q, stop_at_two, &g), 77);
  assert_int_equal(g.n, 2);
  /* The statement was reset: the next query sees everything. */
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 7);
}

static void test_query_every_shape(void **state) {
  struct fx *f = *state;
  uint8_t a[32];

  key(a, 0xA);
  load(f->s);
  /* Every combination of filters prepares and runs. */
  for (unsigned mask = 0; mask < 256; mask++) {
    struct parley_query q = all();
    struct got g;
    if (mask & 1)
      q.channel = "news";
    if (mask & 2)
      q.direct_only = 1;
    if (mask & 4)
      q.from = a;
    if (mask & 8)
      q.since_ms = 0;
    if (mask & 16)
      q.until_ms = 1000;
    if (mask & 32)
      q.search = "quick";
    if (mask & 64)
      q.after_rowid = 1;
    if (mask & 128)
      q.limit = 5;
    memset(&g, 0, sizeof g);
    assert_int_equal(parley_store_query(f->s, &q, collect, &g), PARLEY_OK);
    if (mask == (1 | 32))
      assert_int_equal(g.n, 1);
    if ((mask & 3) == 3)
      assert_int_equal(g.n, 0); /* "news" is not direct */
  }
}

struct nest {
  struct parley_store *s;
  int outer, inner;
};

static int count_inner(void *ctx, const struct parley_msg *m) {
  struct nest *n = ctx;
  (void)m;
  n->inner++;
  return 0;
}

static int nested(void *ctx, const struct parley_msg *m) {
  struct nest *n = ctx;
  struct parley_query q = all();
  (void)m;
  n->outer++;
  /* The same shape again while the outer walk is running. */
  return parley_store_query(n->s, &q, count_inner, n);
}

static void test_query_reentrant(void **state) {
  struct fx *f = *state;
  struct parley_query q = all();
  struct nest n = {f->s, 0, 0};

  load(f->s);
  assert_int_equal(parley_store_query(f->s, &q, nested, &n), PARLEY_OK);
  assert_int_equal(n.outer, 7);
  assert_int_equal(n.inner, 49);
}

static void test_binary_not_indexed(void **state) {
  struct fx *f = *state;
  struct parley_query q = all();
  struct got g;
  int64_t text, bin;

  text = put(f->s, 1, "news", 1, 1, 0, "zebra text");
  bin = put(f->s, 1, "news", 2, 2, 0x4, "zebra blob");
  q.search = "zebra";
  g = run_query(f->s, &q);
  expect(&g, 1, (int64_t[]){text});
  q.search = NULL;
  g = run_query(f->s, &q);
  expect(&g, 2, (int64_t[]){text, bin});
  /* Nothing but the text row reached the index. */
  parley_store_close(f->s);
  f->s = NULL;
  assert_int_equal(
      raw_int(
          f->path,
          "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'blob'"),
      0);
  assert_int_equal(
      raw_int(
          f->path,
          "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'text'"),
      1);
  assert_int_equal(parley_store_open(f->path, &f->log, &f->s), PARLEY_OK);
}

/* ---- Sequence numbers ---------------------------------------------------- */

static void test_seq_monotonic_persistent(void **state) {
  struct fx *f = *state;
  uint64_t v = 0;

  for (uint64_t i = 1; i <= 5; i++) {
    assert_int_equal(parley_store_next_seq(f->s, "news", &v), PARLEY_OK);
    assert_int_equal(v, i);
  }
  assert_int_equal(parley_store_next_seq(f->s, "@peer", &v), PARLEY_OK);
  assert_int_equal(v, 1);
  reopen(f);
  assert_int_equal(parley_store_next_seq(f->s, "news", &v), PARLEY_OK);
  assert_int_equal(v, 6);
  assert_int_equal(parley_store_next_seq(f->s, "@peer", &v), PARLEY_OK);
  assert_int_equal(v, 2);

  /* Allocated inside a rolled-back transaction: handed out again. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_next_seq(f->s, "news", &v), PARLEY_OK);
  assert_int_equal(v, 7);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  assert_int_equal(parley_store_next_seq(f->s, "news", &v), PARLEY_OK);
  assert_int_equal(v, 7);

  assert_int_equal(parley_store_next_seq(f->s, "", &v), PARLEY_EINVAL);

  /* The end of the sequence space is an error, not a wrap. */
  parley_store_close(f->s);
  f->s = NULL;
  raw_exec(f->path, "INSERT INTO seqs (channel, next)"
                    " VALUES ('end', 9223372036854775807)");
  assert_int_equal(parley_store_open(f->path, &f->log, &f->s), PARLEY_OK);
  assert_int_equal(parley_store_next_seq(f->s, "end", &v), PARLEY_ERANGE);
}

/* ---- Outbox -------------------------------------------------------------- */

struct obgot {
  size_t n;
  int64_t id[MAXC];
  int64_t msg_rowid[MAXC];
  uint8_t recipient[MAXC];
  uint32_t attempts[MAXC];
  int64_t next_try[MAXC];
  int64_t created[MAXC];
  uint64_t seq[MAXC];
  struct parley_store *s; /* for the callbacks that write */
};

static int ob_collect(void *ctx, const struct parley_outbox_entry *e,
                      const struct parley_msg *m) {
  struct obgot *g = ctx;
  assert_true(g->n < MAXC);
  assert_int_equal(e->msg_rowid, m->rowid);
  g->id[g->n] = e->id;
  g->msg_rowid[g->n] = e->msg_rowid;
  g->recipient[g->n] = e->recipient[0];
  g->attempts[g->n] = e->attempts;
  g->next_try[g->n] = e->next_try_ms;
  g->created[g->n] = e->created_ms;
  g->seq[g->n] = m->seq;
  g->n++;
  return 0;
}

static struct obgot due(struct parley_store *s, int64_t now, uint32_t limit) {
  struct obgot g;
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_outbox_due(s, now, limit, ob_collect, &g),
                   PARLEY_OK);
  return g;
}

static void test_outbox_lifecycle(void **state) {
  struct fx *f = *state;
  uint8_t me[32], r1[32], r2[32];
  int64_t m1, m2;
  uint64_t n = 0;
  struct obgot g;

  key(me, 0xA);
  key(r1, 1);
  key(r2, 2);
  m1 = put(f->s, 0xA, "news", 1, 10, 0x1, "one");
  m2 = put(f->s, 0xA, "news", 2, 20, 0x1, "two");

  assert_int_equal(parley_store_outbox_add(f->s, m1, r1, 1000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, m1, r2, 1001), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, m2, r1, 1002), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, m1, r1, 5000), PARLEY_OK);
  assert_int_equal(parley_store_outbox_count(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 3); /* the repeated pair was a no-op */
  assert_int_equal(parley_store_outbox_add(f->s, 9999, r1, 1000),
                   PARLEY_ENOTFOUND);
  assert_non_null(strstr(parley_store_errmsg(f->s), "FOREIGN KEY"));

  g = due(f->s, 999, 0);
  assert_int_equal(g.n, 0);
  g = due(f->s, 1001, 0);
  assert_int_equal(g.n, 2);
  assert_int_equal(g.msg_rowid[0], m1);
  assert_int_equal(g.recipient[0], 1);
  assert_int_equal(g.attempts[0], 0);
  assert_int_equal(g.next_try[0], 1000);
  assert_int_equal(g.created[0], 1000);
  assert_int_equal(g.recipient[1], 2);
  g = due(f->s, INT64_MAX, 0);
  assert_int_equal(g.n, 3);
  g = due(f->s, INT64_MAX, 2);
  assert_int_equal(g.n, 2);

  /* Reschedule the first row behind the others. */
  g = due(f->s, INT64_MAX, 1);
  assert_int_equal(parley_store_outbox_reschedule(f->s, g.id[0], 3, 7000),
                   PARLEY_OK);
  assert_int_equal(parley_store_outbox_reschedule(f->s, 12345, 1, 1),
                   PARLEY_ENOTFOUND);
  g = due(f->s, INT64_MAX, 0);
  assert_int_equal(g.n, 3);
  assert_int_equal(g.recipient[0], 2);
  assert_int_equal(g.seq[1], 2);
  assert_int_equal(g.msg_rowid[2], m1);
  assert_int_equal(g.recipient[2], 1);
  assert_int_equal(g.attempts[2], 3);
  assert_int_equal(g.next_try[2], 7000);
  assert_int_equal(g.created[2], 1000);
  g = due(f->s, 6999, 0);
  assert_int_equal(g.n, 2);

  /* Rows for one recipient. */
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_outbox_for(f->s, r1, ob_collect, &g),
                   PARLEY_OK);
  assert_int_equal(g.n, 2);
  assert_int_equal(g.seq[0], 1);
  assert_int_equal(g.seq[1], 2);

  /* Acks: once, then a duplicate. */
  assert_int_equal(parley_store_outbox_ack(f->s, r1, me, "news", 1), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack(f->s, r1, me, "news", 1),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_outbox_ack(f->s, r1, me, "news", 77),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_outbox_ack(f->s, r1, r2, "news", 2),
                   PARLEY_ENOTFOUND); /* wrong publisher */
  /* By row id: the pair must match. */
  assert_int_equal(parley_store_outbox_ack_row(f->s, r2, m2),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_outbox_ack_row(f->s, r1, m2), PARLEY_OK);
  assert_int_equal(parley_store_outbox_ack_row(f->s, r1, m2),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_outbox_add(f->s, m2, r1, 1002), PARLEY_OK);
  assert_int_equal(parley_store_outbox_count(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 2);
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_outbox_for(f->s, r1, ob_collect, &g),
                   PARLEY_OK);
  assert_int_equal(g.n, 1);
  assert_int_equal(g.seq[0], 2);

  /* The outbox persists. */
  reopen(f);
  assert_int_equal(parley_store_outbox_count(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 2);
}

static void test_outbox_expire(void **state) {
  struct fx *f = *state;
  uint8_t r1[32], r2[32], r3[32];
  int64_t m1;
  uint64_t n = 0, dropped = 99;
  struct obgot g;

  key(r1, 1);
  key(r2, 2);
  key(r3, 3);
  m1 = put(f->s, 0xA, "news", 1, 10, 0x1, "one");
  assert_int_equal(parley_store_outbox_add(f->s, m1, r1, 100), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, m1, r2, 100), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, m1, r3, 500), PARLEY_OK);
  /* r1 seen recently, r2 seen long ago, r3 never seen (created at 500). */
  assert_int_equal(parley_store_peer_seen(f->s, r1, "h:1", "one", 900),
                   PARLEY_OK);
  assert_int_equal(parley_store_peer_seen(f->s, r2, "h:2", "two", 200),
                   PARLEY_OK);

  assert_int_equal(parley_store_outbox_expire(f->s, 200, &dropped), PARLEY_OK);
  assert_int_equal(dropped, 0); /* strictly before the cutoff */
  assert_int_equal(parley_store_outbox_expire(f->s, 201, &dropped), PARLEY_OK);
  assert_int_equal(dropped, 1); /* r2 */
  assert_int_equal(parley_store_outbox_expire(f->s, 600, &dropped), PARLEY_OK);
  assert_int_equal(dropped, 1); /* r3, never seen, created 500 */
  g = due(f->s, INT64_MAX, 0);
  assert_int_equal(g.n, 1);
  assert_int_equal(g.recipient[0], 1);
  assert_int_equal(parley_store_outbox_expire(f->s, 901, &dropped), PARLEY_OK);
  assert_int_equal(dropped, 1);
  assert_int_equal(parley_store_outbox_count(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 0);
  /* The messages themselves stay in history. */
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 1);
}

/* A delivery loop that acks or reschedules from inside the walk. */
static int deliver(void *ctx, const struct parley_outbox_entry *e,
                   const struct parley_msg *m) {
  struct obgot *g = ctx;
  uint8_t me[32];
  int rc;

  key(me, 0xA);
  rc = ob_collect(ctx, e, m);
  if (rc != 0)
    return rc;
  if (m->seq % 2 == 0)
    return parley_store_outbox_ack(g->s, e->recipient, me, "news", m->seq);
  /* Due again at once: must not be visited twice in this walk. */
  return parley_store_outbox_reschedule(g->s, e->id, e->attempts + 1,
                                        e->next_try_ms);
}

static void test_outbox_walk_writes(void **state) {
  struct fx *f = *state;
  uint8_t r1[32];
  struct obgot g;
  uint64_t n = 0;

  key(r1, 1);
  for (uint64_t i = 1; i <= 6; i++) {
    int64_t m = put(f->s, 0xA, "news", i, (int64_t)i, 0x1, "x");
    assert_int_equal(parley_store_outbox_add(f->s, m, r1, 10), PARLEY_OK);
  }
  memset(&g, 0, sizeof g);
  g.s = f->s;
  assert_int_equal(parley_store_outbox_due(f->s, 10, 0, deliver, &g),
                   PARLEY_OK);
  assert_int_equal(g.n, 6);
  assert_int_equal(parley_store_outbox_count(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 3);
  g = due(f->s, INT64_MAX, 0);
  assert_int_equal(g.n, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(g.seq[i] % 2, 1);
    assert_int_equal(g.attempts[i], 1);
  }
}

static int ob_stop(void *ctx, const struct parley_outbox_entry *e,
                   const struct parley_msg *m) {
  int rc = ob_collect(ctx, e, m);
  return rc != 0 ? rc : -42;
}

static void test_outbox_cb_stops(void **state) {
  struct fx *f = *state;
  uint8_t r1[32], r2[32];
  struct obgot g;
  int64_t m;

  key(r1, 1);
  key(r2, 2);
  m = put(f->s, 0xA, "news", 1, 1, 0x1, "x");
  assert_int_equal(parley_store_outbox_add(f->s, m, r1, 10), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, m, r2, 10), PARLEY_OK);
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_outbox_due(f->s, 10, 0, ob_stop, &g), -42);
  assert_int_equal(g.n, 1);
}

/* ---- Subscriptions ------------------------------------------------------- */

struct strs {
  size_t n;
  char s[8][32];
};

static int str_collect(void *ctx, const char *s) {
  struct strs *g = ctx;
  assert_true(g->n < 8);
  snprintf(g->s[g->n++], sizeof g->s[0], "%s", s);
  return 0;
}

static void test_subs(void **state) {
  struct fx *f = *state;
  struct strs g;

  assert_int_equal(parley_store_sub_add(f->s, "news"), PARLEY_OK);
  assert_int_equal(parley_store_sub_add(f->s, "alpha"), PARLEY_OK);
  assert_int_equal(parley_store_sub_add(f->s, "zeta"), PARLEY_OK);
  assert_int_equal(parley_store_sub_add(f->s, "news"), PARLEY_OK);
  assert_int_equal(parley_store_sub_add(f->s, ""), PARLEY_EINVAL);
  assert_int_equal(parley_store_sub_add(f->s, "@peer"), PARLEY_EINVAL);
  assert_int_equal(parley_store_sub_add(f->s, "has space"), PARLEY_EINVAL);
  assert_int_equal(parley_store_sub_remove(f->s, "zeta"), PARLEY_OK);
  assert_int_equal(parley_store_sub_remove(f->s, "zeta"), PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_sub_remove(f->s, "never"), PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_sub_remove(f->s, "@x"), PARLEY_EINVAL);

  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_sub_list(f->s, str_collect, &g), PARLEY_OK);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.s[0], "alpha");
  assert_string_equal(g.s[1], "news");

  reopen(f);
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_sub_list(f->s, str_collect, &g), PARLEY_OK);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.s[0], "alpha");
  assert_string_equal(g.s[1], "news");
}

/* ---- Peers --------------------------------------------------------------- */

static void test_peers(void **state) {
  struct fx *f = *state;
  uint8_t p[32], q[32];
  char addr[128], name[128], longaddr[PARLEY_MAX_ADDR + 2];
  int64_t seen = 0;

  key(p, 5);
  key(q, 6);
  assert_int_equal(parley_store_peer_get(f->s, p, addr, name, &seen),
                   PARLEY_ENOTFOUND);
  assert_int_equal(
      parley_store_peer_seen(f->s, p, "10.0.0.1:7000", "alice", 100),
      PARLEY_OK);
  assert_int_equal(parley_store_peer_get(f->s, p, addr, name, &seen),
                   PARLEY_OK);
  assert_string_equal(addr, "10.0.0.1:7000");
  assert_string_equal(name, "alice");
  assert_int_equal(seen, 100);

  /* NULL keeps the old value; an older sighting does not move time back. */
  assert_int_equal(parley_store_peer_seen(f->s, p, NULL, "alice2", 50),
                   PARLEY_OK);
  assert_int_equal(parley_store_peer_get(f->s, p, addr, name, &seen),
                   PARLEY_OK);
  assert_string_equal(addr, "10.0.0.1:7000");
  assert_string_equal(name, "alice2");
  assert_int_equal(seen, 100);
  assert_int_equal(parley_store_peer_seen(f->s, p, "[::1]:9", NULL, 300),
                   PARLEY_OK);
  assert_int_equal(parley_store_peer_get(f->s, p, addr, name, &seen),
                   PARLEY_OK);
  assert_string_equal(addr, "[::1]:9");
  assert_string_equal(name, "alice2");
  assert_int_equal(seen, 300);

  /* Never given an address or name: empty strings. */
  assert_int_equal(parley_store_peer_seen(f->s, q, NULL, NULL, 7), PARLEY_OK);
  assert_int_equal(parley_store_peer_get(f->s, q, addr, name, &seen),
                   PARLEY_OK);
  assert_string_equal(addr, "");
  assert_string_equal(name, "");
  assert_int_equal(seen, 7);

  memset(longaddr, 'h', sizeof longaddr - 1);
  longaddr[sizeof longaddr - 1] = '\0';
  assert_int_equal(parley_store_peer_seen(f->s, q, longaddr, NULL, 8),
                   PARLEY_EINVAL);

  reopen(f);
  assert_int_equal(parley_store_peer_get(f->s, p, addr, name, &seen),
                   PARLEY_OK);
  assert_int_equal(seen, 300);
}

/* ---- Transactions -------------------------------------------------------- */

static void test_transactions(void **state) {
  struct fx *f = *state;
  uint8_t k[32];
  uint64_t n = 0;
  struct one o;

  key(k, 1);
  assert_int_equal(parley_store_in_tx(f->s), 0);
  assert_int_equal(parley_store_commit(f->s), PARLEY_EINVAL);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK); /* no-op */

  /* Rollback discards. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_in_tx(f->s), 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_EINVAL);
  put(f->s, 1, "news", 1, 1, 0, "gone");
  assert_int_equal(parley_store_sub_add(f->s, "gone"), PARLEY_OK);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 1);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  assert_int_equal(parley_store_in_tx(f->s), 0);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 0);
  assert_int_equal(parley_store_sub_remove(f->s, "gone"), PARLEY_ENOTFOUND);

  /* The same id again after the rollback is new. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put(f->s, 1, "news", 1, 1, 0, "kept");
  memset(&o, 0, sizeof o);
  assert_int_equal(parley_store_get_message(f->s, k, "news", 1, grab, &o),
                   PARLEY_OK);
  assert_string_equal(o.body, "kept"); /* visible inside the transaction */
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(parley_store_in_tx(f->s), 0);
  reopen(f);
  memset(&o, 0, sizeof o);
  assert_int_equal(parley_store_get_message(f->s, k, "news", 1, grab, &o),
                   PARLEY_OK);
  assert_string_equal(o.body, "kept");

  /* A duplicate inside a transaction fails alone; the rest commits. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put(f->s, 1, "news", 2, 2, 0, "two");
  assert_int_equal(put_rc(f->s, 1, "news", 1, 0, 0, "dup", NULL),
                   PARLEY_EEXIST);
  put(f->s, 1, "news", 3, 3, 0, "three");
  assert_int_equal(parley_store_in_tx(f->s), 1);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 3);

  /* close commits an open transaction. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put(f->s, 1, "news", 4, 4, 0, "four");
  reopen(f);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 4);
}

/* A committed write survives the process dying without closing. */
static void test_crash_after_commit(void **state) {
  struct fx *f = *state;
  pid_t pid;
  int status = 0;
  uint64_t n = 0;

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct parley_store *c = NULL;
    if (parley_store_open(f->path, NULL, &c) != PARLEY_OK)
      _exit(1);
    if (parley_store_begin(c) != PARLEY_OK)
      _exit(2);
    put(c, 1, "news", 1, 1, 0, "committed");
    if (parley_store_commit(c) != PARLEY_OK)
      _exit(3);
    if (parley_store_begin(c) != PARLEY_OK)
      _exit(4);
    put(c, 1, "news", 2, 2, 0, "not committed");
    _exit(0); /* no close, no commit */
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 1);
  reopen(f);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 1);
}

/* ---- Volume -------------------------------------------------------------- */

static void test_bulk_insert(void **state) {
  struct fx *f = *state;
  struct timespec t0, t1;
  struct parley_msg m;
  uint8_t k[32];
  uint64_t n = 0;
  double secs;
  char body[64];
  struct parley_query q = all();
  struct got g;

  key(k, 9);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.channel = "bulk";
  m.channel_len = 4;
  m.stored_ms = 1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  for (int i = 1; i <= 10000; i++) {
    int len = snprintf(body, sizeof body, "message number %d of the bulk", i);
    m.seq = (uint64_t)i;
    m.ts_ms = i;
    m.body = (const uint8_t *)body;
    m.body_len = (size_t)len;
    assert_int_equal(parley_store_put_message(f->s, &m, NULL), PARLEY_OK);
  }
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  print_message("10000 inserts in one transaction: %.3f s (%.0f msg/s)\n", secs,
                10000 / secs);
  assert_int_equal(parley_store_count_messages(f->s, &n), PARLEY_OK);
  assert_int_equal(n, 10000);

  q.search = "9999";
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 1);
  assert_int_equal(g.seq[0], 9999);
  q.search = NULL;
  q.limit = 3;
  g = run_query(f->s, &q);
  assert_int_equal(g.n, 3);
  assert_int_equal(g.seq[0], 9998);
  assert_int_equal(g.seq[2], 10000);
}

/* ---- Allocation failures ------------------------------------------------ */

static void *no_malloc(void *ctx, size_t n) {
  (void)ctx;
  (void)n;
  return NULL;
}

static void *no_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  (void)p;
  (void)n;
  return NULL;
}

static void plain_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void test_out_of_memory(void **state) {
  struct fx *f = *state;
  const struct parley_allocator none = {no_malloc, no_realloc, plain_free,
                                        NULL};
  struct parley_store *s2 = (struct parley_store *)&s2;
  struct parley_query q = all();
  struct obgot g;
  struct got gm;
  uint8_t r1[32];
  int64_t m;

  key(r1, 1);
  m = put(f->s, 1, "news", 1, 1, 0, "hello world");
  assert_int_equal(parley_store_outbox_add(f->s, m, r1, 1), PARLEY_OK);

  parley_allocator_set(&none);
  assert_int_equal(parley_store_open(f->path, NULL, &s2), PARLEY_ENOMEM);
  assert_null(s2);
  q.search = "hello";
  memset(&gm, 0, sizeof gm);
  assert_int_equal(parley_store_query(f->s, &q, collect, &gm), PARLEY_ENOMEM);
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_store_outbox_due(f->s, 10, 0, ob_collect, &g),
                   PARLEY_ENOMEM);
  q.search = NULL; /* paths that do not allocate still work */
  memset(&gm, 0, sizeof gm);
  assert_int_equal(parley_store_query(f->s, &q, collect, &gm), PARLEY_OK);
  assert_int_equal(gm.n, 1);
  parley_allocator_set(NULL);
  assert_int_equal(g.n, 0);
  g = due(f->s, 10, 0);
  assert_int_equal(g.n, 1);
}


/* ---- Hash chains and anti-entropy (schema v2) ---------------------------- */

static void hash_of(uint8_t h[32], uint8_t n) { memset(h, n, 32); }

/* Stores a message with a chain value (NULL chain: none). */
static void put_chained(struct parley_store *s, uint8_t pub, const char *ch,
                        uint64_t seq, const uint8_t *chain, const char *body) {
  uint8_t k[32];
  struct parley_msg m;

  key(k, pub);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.channel = ch;
  m.channel_len = strlen(ch);
  m.seq = seq;
  m.ts_ms = (int64_t)seq * 10;
  m.body = (const uint8_t *)body;
  m.body_len = strlen(body);
  m.stored_ms = 1;
  m.chain = chain;
  assert_int_equal(parley_store_put_message(s, &m, NULL), PARLEY_OK);
}

struct heads {
  size_t n;
  char channel[8][16];
  uint64_t seq[8];
  uint8_t first[8]; /* first byte of the hash */
};

static int head_collect(void *ctx, const char *channel, uint64_t seq,
                        const uint8_t hash[32]) {
  struct heads *h = ctx;
  assert_true(h->n < 8);
  snprintf(h->channel[h->n], sizeof h->channel[0], "%s", channel);
  h->seq[h->n] = seq;
  h->first[h->n] = hash[0];
  h->n++;
  return 0;
}

static void test_chain_head_advance(void **state) {
  struct fx *f = *state;
  uint8_t h1[32], h2[32], got[32], zero[32];
  uint64_t seq = 99, v = 0;
  struct heads hs;

  hash_of(h1, 0x11);
  hash_of(h2, 0x22);
  memset(zero, 0, sizeof zero);
  /* Nothing published yet: (0, zeros). */
  memset(got, 0xee, sizeof got);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 0);
  assert_memory_equal(got, zero, 32);
  /* Compare-and-set: only seq 1 fits an empty head. */
  assert_int_equal(parley_store_chain_advance(f->s, "news", 2, h2),
                   PARLEY_EINVAL);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 1, h1), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 1, h1),
                   PARLEY_EINVAL);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 3, h2),
                   PARLEY_EINVAL);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 1);
  assert_memory_equal(got, h1, 32);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 2, h2), PARLEY_OK);
  reopen(f);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 2);
  assert_memory_equal(got, h2, 32);
  /* next_seq shares the counter but not the chain: the head then has no
   * value and the next chained message starts from zeros. */
  assert_int_equal(parley_store_next_seq(f->s, "news", &v), PARLEY_OK);
  assert_int_equal(v, 3);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 3);
  assert_memory_equal(got, zero, 32);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 4, h1), PARLEY_OK);
  assert_int_equal(parley_store_next_seq(f->s, "news", &v), PARLEY_OK);
  assert_int_equal(v, 5); /* the advance allocated 4 */
  /* Heads with a value, in channel order. */
  assert_int_equal(parley_store_chain_advance(f->s, "alpha", 1, h2),
                   PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "zulu", 1, h1), PARLEY_OK);
  memset(&hs, 0, sizeof hs);
  assert_int_equal(parley_store_chain_heads(f->s, head_collect, &hs),
                   PARLEY_OK);
  assert_int_equal(hs.n, 2); /* "news" is at 5 without a value */
  assert_string_equal(hs.channel[0], "alpha");
  assert_int_equal(hs.seq[0], 1);
  assert_int_equal(hs.first[0], 0x22);
  assert_string_equal(hs.channel[1], "zulu");
  assert_int_equal(hs.first[1], 0x11);
  /* A rolled-back advance leaves the head where it was. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "zulu", 2, h2), PARLEY_OK);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  assert_int_equal(parley_store_chain_head(f->s, "zulu", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 1);
  assert_memory_equal(got, h1, 32);
  /* Bad arguments. */
  assert_int_equal(parley_store_chain_head(f->s, "", &seq, got),
                   PARLEY_EINVAL);
  assert_int_equal(parley_store_chain_advance(f->s, "zulu", 0, h1),
                   PARLEY_EINVAL);
  assert_int_equal(
      parley_store_chain_advance(f->s, "zulu", (uint64_t)INT64_MAX, h1),
      PARLEY_EINVAL);
}

/* Inside a transaction an advance is kept in memory and written to the
 * table once, at commit (or before anything reads the table): every read
 * through the store sees it, a rollback forgets it, a close commits it. */
static void test_chain_head_in_tx(void **state) {
  struct fx *f = *state;
  uint8_t h1[32], h2[32], got[32], zero[32];
  uint64_t seq = 0, v = 0;
  struct heads hs;

  hash_of(h1, 0x11);
  hash_of(h2, 0x22);
  memset(zero, 0, sizeof zero);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 1, h1), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 2, h2), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 2, h2),
                   PARLEY_EINVAL);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 2);
  assert_memory_equal(got, h2, 32);
  memset(&hs, 0, sizeof hs);
  assert_int_equal(parley_store_chain_heads(f->s, head_collect, &hs),
                   PARLEY_OK);
  assert_int_equal(hs.n, 1);
  assert_int_equal(hs.seq[0], 2);
  assert_int_equal(hs.first[0], 0x22);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 3, h1), PARLEY_OK);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  reopen(f);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 3);
  assert_memory_equal(got, h1, 32);
  /* next_seq moves the same counter: it sees the advance before it. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 4, h2), PARLEY_OK);
  assert_int_equal(parley_store_next_seq(f->s, "news", &v), PARLEY_OK);
  assert_int_equal(v, 5);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 5);
  assert_memory_equal(got, zero, 32);
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  /* Rolled back: the head is the table's again. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 6, h1), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "other", 1, h1),
                   PARLEY_OK);
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 5);
  assert_int_equal(parley_store_chain_head(f->s, "other", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 0);
  /* Closed with the transaction open: committed, advance included. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  assert_int_equal(parley_store_chain_advance(f->s, "news", 6, h2), PARLEY_OK);
  reopen(f);
  assert_int_equal(parley_store_chain_head(f->s, "news", &seq, got),
                   PARLEY_OK);
  assert_int_equal(seq, 6);
  assert_memory_equal(got, h2, 32);
}

struct chain_seen {
  int calls;
  int have_chain;
  uint8_t first;
};

static int see_chain(void *ctx, const struct parley_msg *m) {
  struct chain_seen *c = ctx;
  c->calls++;
  c->have_chain = m->chain != NULL;
  c->first = m->chain ? m->chain[0] : 0;
  return 0;
}

static int ob_see_chain(void *ctx, const struct parley_outbox_entry *e,
                        const struct parley_msg *m) {
  (void)e;
  return see_chain(ctx, m);
}

static void test_message_chain_readback(void **state) {
  struct fx *f = *state;
  uint8_t h[32], k[32], r1[32];
  struct chain_seen c;
  int64_t rowid = 0;
  struct parley_msg m;

  hash_of(h, 0x5a);
  key(k, 3);
  key(r1, 1);
  put_chained(f->s, 3, "news", 1, h, "with");
  put_chained(f->s, 3, "news", 2, NULL, "without");
  memset(&c, 0, sizeof c);
  assert_int_equal(parley_store_get_message(f->s, k, "news", 1, see_chain, &c),
                   PARLEY_OK);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.have_chain, 1);
  assert_int_equal(c.first, 0x5a);
  memset(&c, 0, sizeof c);
  assert_int_equal(parley_store_get_message(f->s, k, "news", 2, see_chain, &c),
                   PARLEY_OK);
  assert_int_equal(c.have_chain, 0);
  memset(&m, 0, sizeof m);
  m.publisher = k;
  m.channel = "news";
  m.channel_len = 4;
  m.seq = 3;
  m.body = (const uint8_t *)"x";
  m.body_len = 1;
  m.chain = h;
  assert_int_equal(parley_store_put_message(f->s, &m, &rowid), PARLEY_OK);
  assert_int_equal(parley_store_outbox_add(f->s, rowid, r1, 1), PARLEY_OK);
  memset(&c, 0, sizeof c);
  assert_int_equal(parley_store_outbox_for(f->s, r1, ob_see_chain, &c),
                   PARLEY_OK);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.have_chain, 1);
  assert_int_equal(c.first, 0x5a);
}

static void cp_put(struct parley_store *s, uint8_t pub, const char *ch,
                   uint64_t seq, uint8_t hv, int want) {
  uint8_t k[32], h[32], sig[64];
  struct parley_store_checkpoint cp;

  key(k, pub);
  hash_of(h, hv);
  memset(sig, hv ^ 0xff, sizeof sig);
  memset(&cp, 0, sizeof cp);
  cp.publisher = k;
  cp.channel = ch;
  cp.channel_len = strlen(ch);
  cp.seq = seq;
  cp.hash = h;
  cp.sig = sig;
  assert_int_equal(parley_store_checkpoint_put(s, &cp), want);
}

static void test_checkpoints(void **state) {
  struct fx *f = *state;
  uint8_t k[32], h[32], sig[64];
  uint64_t seq = 0;
  struct parley_store_checkpoint cp;

  key(k, 7);
  cp_put(f->s, 7, "news", 64, 0x40, PARLEY_OK);
  cp_put(f->s, 7, "news", 128, 0x80, PARLEY_OK);
  cp_put(f->s, 7, "news", 150, 0x96, PARLEY_OK);
  cp_put(f->s, 7, "news", 64, 0x41, PARLEY_EEXIST); /* first one kept */
  cp_put(f->s, 8, "news", 10, 0x0a, PARLEY_OK);
  cp_put(f->s, 7, "other", 5, 0x05, PARLEY_OK);

  assert_int_equal(parley_store_checkpoint_find(f->s, k, "news", 1, 1000, 0,
                                                &seq, h, sig),
                   PARLEY_OK);
  assert_int_equal(seq, 64);
  assert_int_equal(h[0], 0x40);
  assert_int_equal(sig[0], 0x40 ^ 0xff);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "news", 1, 1000, 1,
                                                &seq, h, NULL),
                   PARLEY_OK);
  assert_int_equal(seq, 150);
  assert_int_equal(h[0], 0x96);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "news", 65, 149, 0,
                                                &seq, NULL, NULL),
                   PARLEY_OK);
  assert_int_equal(seq, 128);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "news", 65, 149, 1,
                                                &seq, NULL, NULL),
                   PARLEY_OK);
  assert_int_equal(seq, 128);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "news", 64, 64, 1,
                                                &seq, NULL, NULL),
                   PARLEY_OK);
  assert_int_equal(seq, 64);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "news", 151,
                                                UINT64_MAX, 0, &seq, NULL,
                                                NULL),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "news", 70, 60, 0,
                                                &seq, NULL, NULL),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "nope", 1, 1000, 0,
                                                &seq, NULL, NULL),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "", 1, 1000, 0, &seq,
                                                NULL, NULL),
                   PARLEY_EINVAL);
  /* Validation. */
  hash_of(h, 1);
  memset(&cp, 0, sizeof cp);
  cp.publisher = k;
  cp.channel = "news";
  cp.channel_len = 4;
  cp.seq = 0;
  cp.hash = h;
  cp.sig = sig;
  assert_int_equal(parley_store_checkpoint_put(f->s, &cp), PARLEY_EINVAL);
  cp.seq = (uint64_t)INT64_MAX + 1;
  assert_int_equal(parley_store_checkpoint_put(f->s, &cp), PARLEY_EINVAL);
  cp.seq = 1;
  cp.sig = NULL;
  assert_int_equal(parley_store_checkpoint_put(f->s, &cp), PARLEY_EINVAL);
  cp.sig = sig;
  cp.channel_len = 0;
  assert_int_equal(parley_store_checkpoint_put(f->s, &cp), PARLEY_EINVAL);
  /* Persisted. */
  reopen(f);
  assert_int_equal(parley_store_checkpoint_find(f->s, k, "news", 1, 1000, 1,
                                                &seq, NULL, NULL),
                   PARLEY_OK);
  assert_int_equal(seq, 150);
}

static void test_chain_at(void **state) {
  struct fx *f = *state;
  uint8_t k[32], h[32], got[32], zero[32];

  key(k, 7);
  memset(zero, 0, sizeof zero);
  hash_of(h, 0x33);
  put_chained(f->s, 7, "news", 3, h, "three");
  put_chained(f->s, 7, "news", 4, NULL, "legacy");
  cp_put(f->s, 7, "news", 9, 0x99, PARLEY_OK);
  /* From the message row. */
  assert_int_equal(parley_store_chain_at(f->s, k, "news", 3, got), PARLEY_OK);
  assert_memory_equal(got, h, 32);
  /* A message stored without a chain value gives zeros. */
  memset(got, 0xee, sizeof got);
  assert_int_equal(parley_store_chain_at(f->s, k, "news", 4, got), PARLEY_OK);
  assert_memory_equal(got, zero, 32);
  /* From a checkpoint when the message is not held. */
  assert_int_equal(parley_store_chain_at(f->s, k, "news", 9, got), PARLEY_OK);
  assert_int_equal(got[0], 0x99);
  assert_int_equal(parley_store_chain_at(f->s, k, "news", 5, got),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_chain_at(f->s, k, "news", 0, got),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_chain_at(f->s, k, "other", 3, got),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_store_chain_at(f->s, k, "", 3, got), PARLEY_EINVAL);
}

static void gap(struct parley_store *s, const uint8_t *k, uint64_t from,
                uint64_t to, int want, uint64_t g0, uint64_t g1) {
  uint64_t a = 0, b = 0;
  assert_int_equal(parley_store_seq_gap(s, k, "news", from, to, &a, &b), want);
  if (want == PARLEY_OK) {
    assert_int_equal(a, g0);
    assert_int_equal(b, g1);
  }
}

static void test_seq_gap(void **state) {
  struct fx *f = *state;
  const uint64_t held[] = {1, 2, 3, 5, 6, 9};
  uint8_t k[32], other[32];

  key(k, 7);
  key(other, 8);
  for (size_t i = 0; i < sizeof held / sizeof held[0]; i++)
    put_chained(f->s, 7, "news", held[i], NULL, "m");
  put_chained(f->s, 8, "news", 4, NULL, "other publisher");
  put_chained(f->s, 7, "else", 4, NULL, "other channel");
  gap(f->s, k, 1, 10, PARLEY_OK, 4, 4);
  gap(f->s, k, 4, 10, PARLEY_OK, 4, 4);
  gap(f->s, k, 5, 10, PARLEY_OK, 7, 8);
  gap(f->s, k, 5, 7, PARLEY_OK, 7, 7);
  gap(f->s, k, 7, 8, PARLEY_OK, 7, 8);
  gap(f->s, k, 9, 9, PARLEY_ENOTFOUND, 0, 0);
  gap(f->s, k, 9, 12, PARLEY_OK, 10, 12);
  gap(f->s, k, 1, 3, PARLEY_ENOTFOUND, 0, 0);
  gap(f->s, k, 5, 6, PARLEY_ENOTFOUND, 0, 0);
  gap(f->s, k, 10, UINT64_MAX, PARLEY_OK, 10, UINT64_MAX);
  gap(f->s, other, 1, 10, PARLEY_OK, 1, 3);
  gap(f->s, other, 4, 4, PARLEY_ENOTFOUND, 0, 0);
  gap(f->s, other, 4, 10, PARLEY_OK, 5, 10);
  gap(f->s, k, 0, 10, PARLEY_EINVAL, 0, 0);
  gap(f->s, k, 6, 5, PARLEY_EINVAL, 0, 0);
  /* Beyond what SQLite can store: all missing. */
  gap(f->s, k, (uint64_t)INT64_MAX + 1, UINT64_MAX, PARLEY_OK,
      (uint64_t)INT64_MAX + 1, UINT64_MAX);
}

static void test_seq_range(void **state) {
  struct fx *f = *state;
  const uint64_t held[] = {1, 2, 3, 5, 6, 9};
  uint8_t k[32];
  struct got g;

  key(k, 7);
  /* Stored out of order: the walk is by seq anyway. */
  for (size_t i = sizeof held / sizeof held[0]; i-- > 0;)
    put_chained(f->s, 7, "news", held[i], NULL, "m");
  put_chained(f->s, 8, "news", 4, NULL, "other publisher");
  memset(&g, 0, sizeof g);
  assert_int_equal(
      parley_store_seq_range(f->s, k, "news", 2, 6, 0, collect, &g),
      PARLEY_OK);
  assert_int_equal(g.n, 4);
  assert_int_equal(g.seq[0], 2);
  assert_int_equal(g.seq[1], 3);
  assert_int_equal(g.seq[2], 5);
  assert_int_equal(g.seq[3], 6);
  memset(&g, 0, sizeof g);
  assert_int_equal(
      parley_store_seq_range(f->s, k, "news", 2, 100, 2, collect, &g),
      PARLEY_OK);
  assert_int_equal(g.n, 2);
  assert_int_equal(g.seq[1], 3);
  memset(&g, 0, sizeof g);
  g.stop_after = 1;
  assert_int_equal(
      parley_store_seq_range(f->s, k, "news", 1, UINT64_MAX, 0, collect, &g),
      77);
  assert_int_equal(g.n, 1);
  memset(&g, 0, sizeof g);
  assert_int_equal(
      parley_store_seq_range(f->s, k, "news", 7, 3, 0, collect, &g),
      PARLEY_OK);
  assert_int_equal(g.n, 0);
  assert_int_equal(parley_store_seq_range(f->s, k, "", 1, 3, 0, collect, &g),
                   PARLEY_EINVAL);
}

struct sums {
  size_t n;
  uint8_t pub[8];
  uint64_t max_seq[8], signed_seq[8];
};

static int sum_collect(void *ctx, const uint8_t publisher[32],
                       uint64_t max_seq, uint64_t signed_seq) {
  struct sums *s = ctx;
  assert_true(s->n < 8);
  s->pub[s->n] = publisher[0];
  s->max_seq[s->n] = max_seq;
  s->signed_seq[s->n] = signed_seq;
  s->n++;
  return 0;
}

static void test_sync_summary(void **state) {
  struct fx *f = *state;
  struct sums s;

  /* Publisher 5: messages 1..6, checkpoints 4 and 6. */
  for (uint64_t i = 1; i <= 6; i++)
    put_chained(f->s, 5, "news", i, NULL, "m");
  cp_put(f->s, 5, "news", 4, 4, PARLEY_OK);
  cp_put(f->s, 5, "news", 6, 6, PARLEY_OK);
  /* Publisher 3: a checkpoint beyond its messages. */
  put_chained(f->s, 3, "news", 1, NULL, "m");
  cp_put(f->s, 3, "news", 20, 20, PARLEY_OK);
  /* Publisher 9: a checkpoint, no messages. */
  cp_put(f->s, 9, "news", 2, 2, PARLEY_OK);
  /* Publisher 4: messages without any checkpoint: nothing provable. */
  put_chained(f->s, 4, "news", 1, NULL, "m");
  /* Another channel. */
  cp_put(f->s, 6, "else", 1, 1, PARLEY_OK);

  memset(&s, 0, sizeof s);
  assert_int_equal(parley_store_sync_summary(f->s, "news", 0, sum_collect, &s),
                   PARLEY_OK);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.pub[0], 3);
  assert_int_equal(s.max_seq[0], 1);
  assert_int_equal(s.signed_seq[0], 20);
  assert_int_equal(s.pub[1], 5);
  assert_int_equal(s.max_seq[1], 6);
  assert_int_equal(s.signed_seq[1], 6);
  assert_int_equal(s.pub[2], 9);
  assert_int_equal(s.max_seq[2], 0);
  assert_int_equal(s.signed_seq[2], 2);
  memset(&s, 0, sizeof s);
  assert_int_equal(parley_store_sync_summary(f->s, "news", 2, sum_collect, &s),
                   PARLEY_OK);
  assert_int_equal(s.n, 2);
  memset(&s, 0, sizeof s);
  assert_int_equal(parley_store_sync_summary(f->s, "none", 0, sum_collect, &s),
                   PARLEY_OK);
  assert_int_equal(s.n, 0);
  assert_int_equal(parley_store_sync_summary(f->s, "", 0, sum_collect, &s),
                   PARLEY_EINVAL);
}

/* The message (pub, "news", seq) reads back with pub's key. */
static void reads_back(struct parley_store *s, uint8_t pub, uint64_t seq) {
  uint8_t k[32];
  struct one o;

  key(k, pub);
  memset(&o, 0, sizeof o);
  assert_int_equal(parley_store_get_message(s, k, "news", seq, grab, &o),
                   PARLEY_OK);
  assert_int_equal(o.calls, 1);
  assert_memory_equal(o.pub, k, 32);
}

/* Publisher ids (store_pub.c): a publisher first seen in a transaction
 * that rolls back must not leave its id cached, or the next message from
 * it would name a publishers row that does not exist. */
static void test_publisher_ids_rollback(void **state) {
  struct fx *f = *state;
  uint8_t k[32];
  struct one o;

  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put(f->s, 0x51, "news", 1, 10, 0x4, "first");
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  assert_int_equal(raw_int(f->path, "SELECT count(*) FROM publishers"), 0);
  /* Inside a transaction (a pending row) and outside one (a plain insert):
   * both add the publisher again. */
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put(f->s, 0x51, "news", 1, 10, 0x4, "first");
  assert_int_equal(parley_store_commit(f->s), PARLEY_OK);
  reads_back(f->s, 0x51, 1);
  assert_int_equal(parley_store_begin(f->s), PARLEY_OK);
  put(f->s, 0x52, "news", 1, 10, 0x4, "first");
  assert_int_equal(parley_store_rollback(f->s), PARLEY_OK);
  put(f->s, 0x52, "news", 1, 10, 0x4, "first");
  reads_back(f->s, 0x52, 1);
  /* A text message whose insert fails (here SQLITE_TOOBIG, from a
   * trigger the test adds) undoes its savepoint; the publisher it named
   * first must not be undone with it. */
  raw_exec(f->path, "CREATE TRIGGER boom BEFORE INSERT ON messages"
                    " WHEN new.body = CAST('boom' AS BLOB)"
                    " BEGIN SELECT zeroblob(2000000000); END");
  assert_int_equal(put_rc(f->s, 0x54, "news", 1, 10, 0, "boom", NULL),
                   PARLEY_ESTORE);
  put(f->s, 0x54, "news", 1, 10, 0, "fine");
  reads_back(f->s, 0x54, 1);
  raw_exec(f->path, "DROP TRIGGER boom");
  /* Three publishers, three ids; a key never stored matches nothing. */
  assert_int_equal(raw_int(f->path, "SELECT count(DISTINCT publisher)"
                                    " FROM messages"),
                   3);
  key(k, 0x53);
  assert_int_equal(parley_store_get_message(f->s, k, "news", 1, grab, &o),
                   PARLEY_ENOTFOUND);
}

/* Schema version 1 exactly as released, to test the migration to 2. */
static const char v1_schema[] =
    "PRAGMA application_id = 1347570777;"
    "CREATE TABLE messages (rowid INTEGER PRIMARY KEY AUTOINCREMENT,"
    " publisher BLOB NOT NULL CHECK (length(publisher) = 32),"
    " channel TEXT NOT NULL CHECK (length(channel) > 0),"
    " seq INTEGER NOT NULL CHECK (seq >= 0), ts INTEGER NOT NULL,"
    " flags INTEGER NOT NULL, body BLOB NOT NULL,"
    " outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),"
    " stored INTEGER NOT NULL, UNIQUE (publisher, channel, seq));"
    "CREATE VIRTUAL TABLE messages_fts USING fts5 (body, content = '',"
    " tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, msg_rowid INTEGER NOT NULL"
    " REFERENCES messages (rowid) ON DELETE CASCADE,"
    " recipient BLOB NOT NULL CHECK (length(recipient) = 32),"
    " attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL,"
    " created INTEGER NOT NULL, UNIQUE (msg_rowid, recipient));"
    "CREATE TABLE seqs (channel TEXT PRIMARY KEY, next INTEGER NOT NULL);"
    "CREATE TABLE subs (topic TEXT PRIMARY KEY, created INTEGER NOT NULL);"
    "CREATE TABLE peers (pk BLOB PRIMARY KEY CHECK (length(pk) = 32),"
    " addr TEXT, name TEXT, last_seen INTEGER NOT NULL);"
    "INSERT INTO messages (publisher, channel, seq, ts, flags, body, outgoing,"
    " stored) VALUES (zeroblob(32), 'news', 1, 10, 0, CAST('old' AS BLOB), 1,"
    " 10);"
    "INSERT INTO messages_fts (rowid, body) VALUES (1, 'old');"
    "INSERT INTO outbox (msg_rowid, recipient, attempts, next_try, created)"
    " VALUES (1, zeroblob(32), 2, 500, 10);"
    "INSERT INTO seqs VALUES ('news', 2);"
    "PRAGMA user_version = 1;";

static void test_migrate_v1_to_v2(void **state) {
  struct fx *f = *state;
  char path[128];
  struct parley_store *s = NULL;
  uint8_t zero[32], h[32], got[32];
  uint64_t seq = 9;
  struct chain_seen c;

  memset(zero, 0, sizeof zero);
  snprintf(path, sizeof path, "%s/v1.db", f->dir);
  raw_exec(path, v1_schema);
  assert_int_equal(parley_store_open(path, &f->log, &s), PARLEY_OK);
  assert_int_equal(parley_store_schema_version(s), 9);
  assert_int_equal(parley__store_migrations_applied(s), 8);
  /* The old message is there, without a chain value. */
  memset(&c, 0, sizeof c);
  assert_int_equal(parley_store_get_message(s, zero, "news", 1, see_chain, &c),
                   PARLEY_OK);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.have_chain, 0);
  /* The publisher's head: seq 1, no value; its chain restarts at 2. */
  assert_int_equal(parley_store_chain_head(s, "news", &seq, got), PARLEY_OK);
  assert_int_equal(seq, 1);
  assert_memory_equal(got, zero, 32);
  hash_of(h, 0x77);
  assert_int_equal(parley_store_chain_advance(s, "news", 2, h), PARLEY_OK);
  assert_int_equal(parley_store_chain_at(s, zero, "news", 1, got), PARLEY_OK);
  assert_memory_equal(got, zero, 32);
  /* Migration 6 rebuilt messages and outbox: the row kept its id, its
   * full-text entry and its delivery; new rows continue after it, text
   * ones searchable, and foreign keys are on again. */
  {
    struct parley_query q = all();
    struct got g;
    uint64_t n = 0;
    q.search = "old";
    g = run_query(s, &q);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.rowid[0], 1);
    assert_int_equal(put(s, 3, "news", 1, 20, 0, "fresh words"), 2);
    assert_int_equal(put(s, 3, "news", 2, 30, 0x4, "binary words"), 3);
    q.search = "words";
    g = run_query(s, &q);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.body[0], "fresh words");
    assert_int_equal(parley_store_outbox_count(s, &n), PARLEY_OK);
    assert_int_equal(n, 1);
    assert_int_equal(parley_store_outbox_add(s, 9999, zero, 1000),
                     PARLEY_ENOTFOUND);
    assert_int_equal(parley_store_outbox_ack_row(s, zero, 1), PARLEY_OK);
    assert_int_equal(parley_store_outbox_count(s, &n), PARLEY_OK);
    assert_int_equal(n, 0);
    /* Migration 8: publishers by id, the old one first; queries by
     * publisher still find each one's own messages. */
    q = all();
    q.from = zero;
    g = run_query(s, &q);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.rowid[0], 1);
    key(h, 3);
    q.from = h;
    g = run_query(s, &q);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.rowid[0], 2);
  }
  parley_store_close(s);
  assert_int_equal(raw_int(path, "PRAGMA user_version"), 9);
  assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master"
                                 " WHERE name LIKE '%_v6'"
                                 " OR name LIKE '%_v8'"
                                 " OR name = 'messages_fts_insert'"
                                 " OR name = 'outbox_recipient'"),
                   0);
  assert_int_equal(raw_int(path, "SELECT count(*) FROM publishers"), 2);
  assert_int_equal(raw_int(path, "SELECT id FROM publishers"
                                 " WHERE pk = zeroblob(32)"),
                   1);
  assert_int_equal(raw_int(path, "SELECT count(*) FROM messages"
                                 " WHERE typeof(publisher) <> 'integer'"),
                   0);
  /* Migration 9: the message indexes gave way to spans, which cover the
   * old rows as well as the new ones. */
  assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master"
                                 " WHERE name IN ('messages_ts',"
                                 " 'messages_channel_ts',"
                                 " 'messages_publisher_ts')"),
                   0);
  assert_int_equal(raw_int(path, SPANS_MISSING), 0);
  assert_int_equal(raw_int(path, "SELECT count(*) FROM spans"), 3);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_migrates_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_refuses_newer_schema, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_open_refuses_foreign_db, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_open_bad_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_settings, setup, teardown),
      cmocka_unit_test_setup_teardown(test_publisher_ids_rollback, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_put_get_duplicate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_empty_body_and_stored_now, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_put_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_filters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_search, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_search_syntax_is_literal,
                                      setup, teardown),
      cmocka_unit_test(test_fts_quote_exact),
      cmocka_unit_test_setup_teardown(test_query_search_many_words, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_query_limit_newest_oldest_first,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_cb_stops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_every_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_reentrant, setup, teardown),
      cmocka_unit_test_setup_teardown(test_binary_not_indexed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seq_monotonic_persistent, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_outbox_lifecycle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outbox_expire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outbox_walk_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outbox_cb_stops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_peers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_after_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bulk_insert, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chain_head_in_tx, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chain_head_advance, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_message_chain_readback, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chain_at, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seq_gap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seq_range, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_summary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migrate_v1_to_v2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_text_index, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
