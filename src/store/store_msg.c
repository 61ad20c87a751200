/* store_msg.c — storing, fetching and querying messages (store.h). */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/limits.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_int.h"
#include "wire/wire.h"

/* ---- Messages ------------------------------------------------------------ */

/* Inserts the row, pub being m's publisher id.  OUT: *id.  PARLEY_EEXIST
 * when (publisher, channel, seq) is stored already. */
static int put_row(struct parley_store *s, const struct parley_msg *m,
                   int64_t pub, int64_t *id) {
  struct store_run r = {0};
  int64_t changes = 0;
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_i64(src, r.st, 1, pub);
  src = bind_text(src, r.st, 2, m->channel, m->channel_len);
  src = bind_i64(src, r.st, 3, (int64_t)m->seq);
  src = bind_i64(src, r.st, 4, m->ts_ms);
  src = bind_i64(src, r.st, 5, (int64_t)m->flags);
  src = bind_blob(src, r.st, 6, m->body, m->body_len);
  src = bind_i64(src, r.st, 7, m->outgoing != 0);
  src = bind_i64(src, r.st, 8,
                 m->stored_ms != 0 ? m->stored_ms : parley_now_ms());
  if (src == SQLITE_OK && m->chain == NULL)
    src = sqlite3_bind_null(r.st, 9);
  else
    src = bind_blob(src, r.st, 9, m->chain, 32);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "put_message");
  else
    rc = parley__store_exec(s, &r, "put_message", &changes);
  /* No RETURNING: it costs a temporary table per row (a third of the
   * insert).  The insert's own row id is read back instead. */
  if (rc == PARLEY_OK && changes == 0)
    rc = PARLEY_EEXIST; /* DO NOTHING: already stored */
  else if (rc == PARLEY_OK)
    *id = sqlite3_last_insert_rowid(s->db);
  parley__store_run_end(&r);
  return rc;
}

/* Adds a text body to the full-text index under the message's row id. */
int parley__store_put_text(struct parley_store *s, int64_t id,
                           const struct parley_msg *m) {
  struct store_run r = {0};
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_FTS_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_i64(src, r.st, 1, id);
  src = bind_blob(src, r.st, 2, m->body, m->body_len);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "put_message index");
  else
    rc = parley__store_exec(s, &r, "put_message index", NULL);
  parley__store_run_end(&r);
  return rc;
}

int parley_store_put_message(struct parley_store *s, const struct parley_msg *m,
                             int64_t *rowid) {
  int64_t id = 0, pub = 0;
  int rc;

  if (m->publisher == NULL)
    return parley__store_fail(s, PARLEY_EINVAL, "put_message", "no publisher");
  if (!parley__store_channel_ok(m->channel, m->channel_len))
    return parley__store_fail(s, PARLEY_EINVAL, "put_message", "bad channel");
  if (m->seq > (uint64_t)INT64_MAX)
    return parley__store_fail(s, PARLEY_EINVAL, "put_message",
                              "seq out of range");
  if (m->body_len > PARLEY_MAX_FRAME || (m->body == NULL && m->body_len > 0))
    return parley__store_fail(s, PARLEY_EINVAL, "put_message", "bad body");
  if (parley_store_in_tx(s)) {
    /* Inside a transaction: a pending row, inserted with others
     * (store_pend.c), unless it may be a duplicate. */
    rc = parley__pend_put(s, m, &id);
    if (rc != PARLEY_EAGAIN) {
      if (rc == PARLEY_OK && rowid != NULL)
        *rowid = id;
      return rc;
    }
  }
  /* Before the savepoint: undoing it must not undo a publishers row
   * that store_pub.c has cached. */
  rc = parley__store_pub_id(s, m->publisher, &pub);
  if (rc < 0)
    return rc;
  if (m->flags & PARLEY_MSG_BINARY) {
    /* Binary bodies are not indexed: one statement. */
    rc = put_row(s, m, pub, &id);
  } else {
    /* The row and its index entry commit together or not at all. */
    rc = parley__store_run_simple(s, ST_TEXT_BEGIN, "put_message");
    if (rc < 0)
      return rc;
    rc = put_row(s, m, pub, &id);
    if (rc == PARLEY_OK)
      rc = parley__store_put_text(s, id, m);
    if (rc < 0 && rc != PARLEY_EEXIST)
      (void)parley__store_run_simple(s, ST_TEXT_UNDO, "put_message undo");
    {
      int end = parley__store_run_simple(s, ST_TEXT_END, "put_message");
      if (rc == PARLEY_OK && end < 0)
        rc = end;
    }
  }
  if (rc == PARLEY_OK)
    parley__pend_stored(s, m, id);
  if (rc == PARLEY_OK && rowid != NULL)
    *rowid = id;
  return rc;
}

int parley_store_get_message(struct parley_store *s,
                             const uint8_t publisher[32], const char *channel,
                             uint64_t seq, parley_store_msg_cb cb, void *ctx) {
  size_t chlen = strlen(channel);
  struct parley_msg m;
  struct store_run r = {0};
  int src = SQLITE_OK, rc;

  if (!parley__store_channel_ok(channel, chlen))
    return parley__store_fail(s, PARLEY_EINVAL, "get_message", "bad channel");
  if (seq > (uint64_t)INT64_MAX)
    return PARLEY_ENOTFOUND;
  rc = parley__store_run_start(s, s->stmt[ST_GET], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, publisher, 32);
  src = bind_text(src, r.st, 2, channel, chlen);
  src = bind_i64(src, r.st, 3, (int64_t)seq);
  if (src != SQLITE_OK) {
    rc = parley__store_fail_sql(s, src, "get_message");
  } else {
    src = sqlite3_step(r.st);
    if (src == SQLITE_ROW) {
      rc = parley__store_read_msg(s, r.st, 0, &m);
      if (rc == PARLEY_OK)
        rc = cb(ctx, &m);
    } else if (src == SQLITE_DONE) {
      rc = PARLEY_ENOTFOUND;
    } else {
      rc = parley__store_fail_sql(s, src, "get_message");
    }
  }
  parley__store_run_end(&r);
  return rc;
}

int parley_store_count_messages(struct parley_store *s, uint64_t *n) {
  return parley__store_count(s, ST_COUNT_MSG, "count_messages", n);
}

/* ---- History queries ----------------------------------------------------- */

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

/* WHERE fragments in bit order (QF_LIMIT has none: it changes the frame). */
static const char *const query_where[] = {
    " AND channel = :channel",
    " AND substr(channel, 1, 1) = '@'",
    (" AND publisher = " PUB_ID(":from")),
    " AND ts >= :since",
    " AND ts <= :until",
    (" AND rowid IN (SELECT rowid FROM messages_fts"
     " WHERE messages_fts MATCH :search)"),
    " AND rowid > :after",
};

#define QUERY_SQL_MAX 1024

_Static_assert(QF_LIMIT * 2 == STORE_QUERY_SHAPES, "one cached shape per mask");

/* Steps through a message-returning statement, calling cb for each row. */
static int walk_msgs(struct parley_store *s, struct store_run *r,
                     const char *what, parley_store_msg_cb cb, void *ctx) {
  struct parley_msg m;
  int src, rc;

  while ((src = sqlite3_step(r->st)) == SQLITE_ROW) {
    rc = parley__store_read_msg(s, r->st, 0, &m);
    if (rc < 0)
      return rc;
    rc = cb(ctx, &m);
    if (rc != 0)
      return rc;
  }
  if (src != SQLITE_DONE)
    return parley__store_fail_sql(s, src, what);
  return PARLEY_OK;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

int parley__store_fts_quote(const char *in, char **out) {
  size_t len = strlen(in), words = 0, quotes = 0, o = 0;
  char *q;

  *out = NULL;
  if (len > PARLEY_STORE_MAX_SEARCH)
    return PARLEY_ETOOBIG;
  for (size_t i = 0; i < len; i++) {
    if (!is_space(in[i]) && (i == 0 || is_space(in[i - 1])))
      words++;
    if (in[i] == '"')
      quotes++;
  }
  if (words == 0)
    return PARLEY_OK;
  /* Every word gains two quotes and a separator; every quote doubles. */
  q = parley_malloc(len + quotes + 3 * words + 1);
  if (q == NULL)
    return PARLEY_ENOMEM;
  for (size_t i = 0; i < len;) {
    if (is_space(in[i])) {
      i++;
      continue;
    }
    if (o > 0)
      q[o++] = ' ';
    q[o++] = '"';
    for (; i < len && !is_space(in[i]); i++) {
      if (in[i] == '"')
        q[o++] = '"';
      q[o++] = in[i];
    }
    q[o++] = '"';
  }
  q[o] = '\0';
  *out = q;
  return PARLEY_OK;
}

/* Appends s at *pos; returns -1 if buf would overflow. */
static int append(char *buf, size_t cap, size_t *pos, const char *s) {
  size_t n = strlen(s);

  if (*pos + n >= cap)
    return -1;
  memcpy(buf + *pos, s, n + 1);
  *pos += n;
  return 0;
}

/* Assembles the SQL of one query shape from constant fragments only. */
static int shape_sql(unsigned mask, char *buf, size_t cap) {
  size_t pos = 0;
  int bad = 0;

  buf[0] = '\0';
  if (mask & QF_LIMIT)
    bad |= append(buf, cap, &pos, "SELECT * FROM (");
  bad |=
      append(buf, cap, &pos, "SELECT " STORE_MSG_COLS " FROM messages WHERE 1");
  for (unsigned i = 0; i < sizeof query_where / sizeof query_where[0]; i++)
    if (mask & (1u << i))
      bad |= append(buf, cap, &pos, query_where[i]);
  if (mask & QF_LIMIT)
    bad |= append(buf, cap, &pos,
                  " ORDER BY ts DESC, rowid DESC LIMIT :limit)"
                  " ORDER BY ts, rowid");
  else
    bad |= append(buf, cap, &pos, " ORDER BY ts, rowid");
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

/* Binds a named parameter the shape contains (absent names are skipped). */
static int bind_named_i64(int src, sqlite3_stmt *st, const char *name,
                          int64_t v) {
  int i = sqlite3_bind_parameter_index(st, name);
  return i > 0 ? bind_i64(src, st, i, v) : src;
}

int parley_store_query(struct parley_store *s, const struct parley_query *q,
                       parley_store_msg_cb cb, void *ctx) {
  sqlite3_stmt *cached = NULL;
  char *match = NULL;
  unsigned mask = 0;
  struct store_run r = {0};
  int src = SQLITE_OK, rc;
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

  rc = get_shape(s, mask, &cached);
  if (rc == PARLEY_OK && cached == NULL)
    rc = PARLEY_EINTERNAL;
  if (rc == PARLEY_OK)
    rc = parley__store_run_start(s, cached, &r);
  if (rc < 0) {
    parley_free(match);
    return rc;
  }
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
  src = bind_named_i64(src, r.st, ":limit", (int64_t)q->limit);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "query");
  else
    rc = walk_msgs(s, &r, "query", cb, ctx);
  parley__store_run_end(&r);
  parley_free(match);
  return rc;
}
