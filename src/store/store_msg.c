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

int parley__store_span_put(struct parley_store *s, int64_t pub,
                           const char *ch, size_t chlen, int64_t lo,
                           int64_t hi, int64_t ts_lo, int64_t ts_hi) {
  struct store_run r = {0};
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_SPAN_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_i64(src, r.st, 1, pub);
  src = bind_text(src, r.st, 2, ch, chlen);
  src = bind_i64(src, r.st, 3, lo);
  src = bind_i64(src, r.st, 4, hi);
  src = bind_i64(src, r.st, 5, ts_lo);
  src = bind_i64(src, r.st, 6, ts_hi);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "put_message span");
  else
    rc = parley__store_exec(s, &r, "put_message span", NULL);
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
  /* The row, its span and its full-text entry commit together or not at
   * all. */
  rc = parley__store_run_simple(s, ST_PUT_BEGIN, "put_message");
  if (rc < 0)
    return rc;
  rc = put_row(s, m, pub, &id);
  if (rc == PARLEY_OK)
    rc = parley__store_span_put(s, pub, m->channel, m->channel_len, id, id,
                                m->ts_ms, m->ts_ms);
  if (rc == PARLEY_OK && !(m->flags & PARLEY_MSG_BINARY))
    rc = parley__store_put_text(s, id, m); /* binary bodies: not indexed */
  if (rc < 0 && rc != PARLEY_EEXIST)
    (void)parley__store_run_simple(s, ST_PUT_UNDO, "put_message undo");
  {
    int end = parley__store_run_simple(s, ST_PUT_END, "put_message");
    if (rc == PARLEY_OK && end < 0)
      rc = end;
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

/* ---- Full-text search text ----------------------------------------------- */

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
