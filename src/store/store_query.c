/*
 * store_query.c — history queries (parley_store_query, store.h) over the
 * spans of schema 9 (docs/internals/STORE.md, "Schema version 9").
 *
 * messages has no index by channel, publisher or time; spans stand in for
 * them.  A query runs in two steps:
 *
 *   1. Collect the (ts, rowid) of every match.  A search asks the full-text
 *      index for its rowids and filters those rows.  Anything else walks
 *      the spans that may hold matches (by channel, publisher and time
 *      through the spans' own indexes) and reads each span's rows by rowid
 *      range.  With a limit, only the newest `limit` are kept (a min-heap)
 *      and spans come newest ts_hi first, so the walk stops at the first
 *      span whose ts_hi is below the oldest hit kept: nothing in it or
 *      after it can be newer.
 *   2. Sort the hits oldest first and read the messages back by rowid for
 *      the callback, EMIT_CHUNK per statement (a JSON array of rowids
 *      through json_each).  Memory is 16 bytes per hit kept, not a row.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/limits.h"
#include "store/store.h"
#include "store/store_int.h"

enum {
  QF_CHANNEL = 1 << 0,
  QF_DIRECT = 1 << 1,
  QF_FROM = 1 << 2,
  QF_SINCE = 1 << 3,
  QF_UNTIL = 1 << 4,
  QF_SEARCH = 1 << 5,
  QF_AFTER = 1 << 6,
  QF_LIMIT = 1 << 7
};

_Static_assert(QF_LIMIT * 2 == STORE_QUERY_SHAPES, "one cached shape per mask");

/* Filters on spans, in bit order (QF_SEARCH never walks spans; QF_LIMIT
 * orders the walk). */
static const char *const span_where[] = {
    " AND channel = :channel",
    " AND substr(channel, 1, 1) = '@'",
    (" AND publisher = " PUB_ID(":from")),
    " AND ts_hi >= :since",
    (" AND ts_lo <= :until AND ts_hi <= :until + (SELECT"
     " coalesce(max(ts_hi - ts_lo), 0) FROM spans)"),
    "",
    " AND hi > :after",
};

/* Filters on the rows a search found, in bit order. */
static const char *const row_where[] = {
    " AND channel = :channel",
    " AND substr(channel, 1, 1) = '@'",
    (" AND publisher = " PUB_ID(":from")),
    " AND ts >= :since",
    " AND ts <= :until",
    "",
    " AND rowid > :after",
};

_Static_assert(sizeof span_where == sizeof row_where, "one fragment per bit");

#define QUERY_SQL_MAX 1024

/* Appends t at *pos; returns -1 if buf would overflow. */
static int append(char *buf, size_t cap, size_t *pos, const char *t) {
  size_t n = strlen(t);

  if (*pos + n >= cap)
    return -1;
  memcpy(buf + *pos, t, n + 1);
  *pos += n;
  return 0;
}

/* Assembles the SQL of one query shape from constant fragments only: a
 * search yields (rowid, ts) of matching rows, anything else
 * (lo, hi, ts_hi, publisher, channel) of the spans to read. */
static int shape_sql(unsigned mask, char *buf, size_t cap) {
  const char *const *where = mask & QF_SEARCH ? row_where : span_where;
  size_t pos = 0;
  int bad = 0;

  buf[0] = '\0';
  if (mask & QF_SEARCH)
    bad |= append(buf, cap, &pos,
                  "SELECT rowid, ts FROM messages WHERE rowid IN"
                  " (SELECT rowid FROM messages_fts"
                  " WHERE messages_fts MATCH :search)");
  else
    bad |= append(buf, cap, &pos,
                  "SELECT lo, hi, ts_hi, publisher, channel FROM spans"
                  " WHERE 1");
  for (unsigned i = 0; i < sizeof span_where / sizeof span_where[0]; i++)
    if (mask & (1u << i))
      bad |= append(buf, cap, &pos, where[i]);
  if ((mask & QF_LIMIT) && !(mask & QF_SEARCH))
    bad |= append(buf, cap, &pos, " ORDER BY ts_hi DESC");
  return bad ? PARLEY_EINTERNAL : PARLEY_OK;
}

static int get_shape(struct parley_store *s, unsigned mask,
                     sqlite3_stmt **out) {
  char sql[QUERY_SQL_MAX];
  int rc;

  if (s->shape[mask] == NULL) {
    rc = shape_sql(mask, sql, sizeof sql);
    if (rc < 0)
      return parley__store_fail(s, rc, "query", "query text too long");
    rc = parley__store_prepare(s, sql, &s->shape[mask]);
    if (rc < 0)
      return rc;
  }
  *out = s->shape[mask];
  return PARLEY_OK;
}

/* ---- Hits ---------------------------------------------------------------- */

struct hit {
  int64_t ts, rowid;
};

/* With a limit, v is a min-heap of the newest `limit` hits so far (v[0]
 * the oldest of them); without one, every hit in arrival order. */
struct hits {
  struct hit *v; /* first `local`, allocated when that is full */
  size_t n, cap;
  uint32_t limit; /* 0: keep all */
  struct hit local[32];
};

/* 1 if a comes after b in (ts, rowid) order. */
static int after(const struct hit *a, const struct hit *b) {
  return a->ts > b->ts || (a->ts == b->ts && a->rowid > b->rowid);
}

static void swap(struct hit *a, struct hit *b) {
  struct hit t = *a;
  *a = *b;
  *b = t;
}

static void sift_down(struct hit *v, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && after(&v[m], &v[l]))
      m = l;
    if (r < n && after(&v[m], &v[r]))
      m = r;
    if (m == i)
      return;
    swap(&v[i], &v[m]);
    i = m;
  }
}

static void sift_up(struct hit *v, size_t i) {
  while (i > 0 && after(&v[(i - 1) / 2], &v[i])) {
    swap(&v[(i - 1) / 2], &v[i]);
    i = (i - 1) / 2;
  }
}

static int hits_add(struct hits *h, int64_t ts, int64_t rowid) {
  struct hit x = {ts, rowid};

  if (h->limit != 0 && h->n == h->limit) {
    if (after(&x, &h->v[0])) {
      h->v[0] = x;
      sift_down(h->v, h->n, 0);
    }
    return PARLEY_OK;
  }
  if (h->n == h->cap) {
    size_t cap = h->cap * 2;
    struct hit *v;
    if (h->limit != 0 && cap > h->limit)
      cap = h->limit;
    if (cap > SIZE_MAX / sizeof *v)
      return PARLEY_ENOMEM;
    v = parley_realloc(h->v == h->local ? NULL : h->v, cap * sizeof *v);
    if (v == NULL)
      return PARLEY_ENOMEM;
    if (h->v == h->local)
      memcpy(v, h->local, sizeof h->local);
    h->v = v;
    h->cap = cap;
  }
  h->v[h->n++] = x;
  if (h->limit != 0)
    sift_up(h->v, h->n - 1);
  return PARLEY_OK;
}

/* 1 when the limit is reached and no row with ts at most top would be
 * kept. */
static int hits_full_above(const struct hits *h, int64_t top) {
  return h->limit != 0 && h->n == h->limit && top < h->v[0].ts;
}

static int hit_cmp(const void *a, const void *b) {
  const struct hit *x = a, *y = b;

  if (after(x, y))
    return 1;
  return after(y, x) ? -1 : 0;
}

/* ---- Collecting ---------------------------------------------------------- */

/* Adds the (rowid, ts) rows of st to h. */
static int collect_rows(struct parley_store *s, sqlite3_stmt *st,
                        struct hits *h) {
  int src, rc;

  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    rc = hits_add(h, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 0));
    if (rc < 0)
      return parley__store_fail(s, rc, "query", "no memory for the hits");
  }
  return src == SQLITE_DONE ? PARLEY_OK
                            : parley__store_fail_sql(s, src, "query");
}

/* Reads the rows of the span at spans' current row that pass q's time and
 * rowid bounds. */
static int span_rows(struct parley_store *s, sqlite3_stmt *spans,
                     const struct parley_query *q, struct hits *h) {
  struct store_run r = {0};
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_SPAN_ROWS], &r);
  if (rc < 0)
    return rc;
  src = bind_i64(src, r.st, 1, sqlite3_column_int64(spans, 0));
  src = bind_i64(src, r.st, 2, sqlite3_column_int64(spans, 1));
  src = bind_i64(src, r.st, 3, sqlite3_column_int64(spans, 3));
  src = bind_text(src, r.st, 4, (const char *)sqlite3_column_text(spans, 4),
                  (size_t)sqlite3_column_bytes(spans, 4));
  src = bind_i64(src, r.st, 5, q->since_ms);
  src = bind_i64(src, r.st, 6, q->until_ms);
  src = bind_i64(src, r.st, 7, q->after_rowid);
  rc = src == SQLITE_OK ? collect_rows(s, r.st, h)
                        : parley__store_fail_sql(s, src, "query");
  parley__store_run_end(&r);
  return rc;
}

/* Walks the spans st yields (newest ts_hi first when h has a limit). */
static int collect_spans(struct parley_store *s, sqlite3_stmt *st,
                         const struct parley_query *q, struct hits *h) {
  int src, rc;

  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (hits_full_above(h, sqlite3_column_int64(st, 2)))
      return PARLEY_OK;
    rc = span_rows(s, st, q, h);
    if (rc < 0)
      return rc;
  }
  return src == SQLITE_DONE ? PARLEY_OK
                            : parley__store_fail_sql(s, src, "query");
}

/* Binds a named parameter the shape contains (absent names are skipped). */
static int bind_named_i64(int src, sqlite3_stmt *st, const char *name,
                          int64_t v) {
  int i = sqlite3_bind_parameter_index(st, name);
  return i > 0 ? bind_i64(src, st, i, v) : src;
}

static int collect(struct parley_store *s, const struct parley_query *q,
                   unsigned mask, const char *match, size_t chlen,
                   struct hits *h) {
  sqlite3_stmt *cached = NULL;
  struct store_run r = {0};
  int src = SQLITE_OK, rc;

  rc = get_shape(s, mask, &cached);
  if (rc == PARLEY_OK && cached == NULL)
    rc = PARLEY_EINTERNAL;
  if (rc == PARLEY_OK)
    rc = parley__store_run_start(s, cached, &r);
  if (rc < 0)
    return rc;
  if (mask & QF_CHANNEL)
    src = bind_text(src, r.st, sqlite3_bind_parameter_index(r.st, ":channel"),
                    q->channel, chlen);
  if (mask & QF_FROM)
    src = bind_blob(src, r.st, sqlite3_bind_parameter_index(r.st, ":from"),
                    q->from, 32);
  if (mask & QF_SEARCH)
    src = bind_text(src, r.st, sqlite3_bind_parameter_index(r.st, ":search"),
                    match, strlen(match));
  src = bind_named_i64(src, r.st, ":since", q->since_ms);
  src = bind_named_i64(src, r.st, ":until", q->until_ms);
  src = bind_named_i64(src, r.st, ":after", q->after_rowid);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "query");
  else if (mask & QF_SEARCH)
    rc = collect_rows(s, r.st, h);
  else
    rc = collect_spans(s, r.st, q, h);
  parley__store_run_end(&r);
  return rc;
}

/* Hits read back per statement: one statement (and one read transaction)
 * per chunk rather than per message. */
#define EMIT_CHUNK 256

/* Writes the rowids of v[0..n) as a JSON array into buf (which has room
 * for EMIT_CHUNK of them). */
static void rowid_array(const struct hit *v, size_t n, char *buf,
                        size_t cap) {
  size_t pos = 0;

  buf[pos++] = '[';
  for (size_t i = 0; i < n; i++)
    pos += (size_t)snprintf(buf + pos, cap - pos, i ? ",%lld" : "%lld",
                            (long long)v[i].rowid);
  buf[pos++] = ']';
  buf[pos] = '\0';
}

/* Calls cb for each hit, oldest first, until it returns non-zero. */
static int emit(struct parley_store *s, struct hits *h,
                parley_store_msg_cb cb, void *ctx) {
  char json[EMIT_CHUNK * 21 + 3];
  struct parley_msg m;
  int rc = PARLEY_OK, src;

  if (h->n > 1)
    qsort(h->v, h->n, sizeof *h->v, hit_cmp);
  for (size_t i = 0; i < h->n && rc == 0; i += EMIT_CHUNK) {
    size_t n = h->n - i < EMIT_CHUNK ? h->n - i : EMIT_CHUNK;
    struct store_run r = {0};
    rowid_array(h->v + i, n, json, sizeof json);
    rc = parley__store_run_start(s, s->stmt[ST_EMIT_ROWS], &r);
    if (rc < 0)
      return rc;
    src = bind_text(SQLITE_OK, r.st, 1, json, strlen(json));
    while (src == SQLITE_OK && rc == 0 &&
           (src = sqlite3_step(r.st)) == SQLITE_ROW) {
      rc = parley__store_read_msg(s, r.st, 0, &m);
      if (rc == PARLEY_OK)
        rc = cb(ctx, &m);
      src = SQLITE_OK;
    }
    if (rc == 0 && src != SQLITE_DONE)
      rc = parley__store_fail_sql(s, src, "query");
    parley__store_run_end(&r);
  }
  return rc;
}

int parley_store_query(struct parley_store *s, const struct parley_query *q,
                       parley_store_msg_cb cb, void *ctx) {
  struct hits h;
  char *match = NULL;
  unsigned mask = 0;
  int rc;
  size_t chlen = q->channel != NULL ? strlen(q->channel) : 0;

  if (chlen > PARLEY_MAX_TOPIC)
    return parley__store_fail(s, PARLEY_EINVAL, "query", "bad channel");
  if (q->search != NULL) {
    rc = parley__store_fts_quote(q->search, &match);
    if (rc < 0)
      return parley__store_fail(s, rc, "query", "search text");
  }
  if (chlen > 0)
    mask |= QF_CHANNEL;
  if (q->direct_only)
    mask |= QF_DIRECT;
  if (q->from != NULL)
    mask |= QF_FROM;
  if (q->since_ms != INT64_MIN)
    mask |= QF_SINCE;
  if (q->until_ms != INT64_MAX)
    mask |= QF_UNTIL;
  if (match != NULL)
    mask |= QF_SEARCH;
  if (q->after_rowid > 0)
    mask |= QF_AFTER;
  if (q->limit > 0)
    mask |= QF_LIMIT;
  h.v = h.local;
  h.n = 0;
  h.cap = sizeof h.local / sizeof h.local[0];
  h.limit = q->limit;

  rc = collect(s, q, mask, match, chlen, &h);
  parley_free(match);
  if (rc == PARLEY_OK)
    rc = emit(s, &h, cb, ctx);
  if (h.v != h.local)
    parley_free(h.v);
  return rc;
}
