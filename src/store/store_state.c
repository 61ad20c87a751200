/* store_state.c — the small tables: per-channel sequence counters, the
 * outbox of unacknowledged deliveries, subscriptions, the peer cache
 * (store.h). */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/limits.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_int.h"

/* Outbox columns in front of the message columns in ST_OB_ROW. */
#define OB_NCOLS 6

/* ---- Sequence numbers ---------------------------------------------------- */

int parley_store_next_seq(struct parley_store *s, const char *channel,
                          uint64_t *seq) {
  size_t n = strlen(channel);
  struct store_run r;
  int64_t v = 0;
  int src = SQLITE_OK, rc;

  if (!parley__store_channel_ok(channel, n))
    return parley__store_fail(s, PARLEY_EINVAL, "next_seq", "bad channel");
  /* The statement moves seqs.next: the cached head goes. */
  rc = parley__store_heads_flush(s);
  if (rc < 0)
    return rc;
  parley__store_heads_forget(s, channel);
  rc = parley__store_run_start(s, s->stmt[ST_NEXT_SEQ], &r);
  if (rc < 0)
    return rc;
  src = bind_text(src, r.st, 1, channel, n);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "next_seq");
  else
    rc = parley__store_step_i64(s, &r, "next_seq", &v);
  if (rc == PARLEY_ENOTFOUND) {
    rc = parley__store_fail(s, PARLEY_ERANGE, "next_seq",
                            "sequence space exhausted");
  }
  parley__store_run_end(&r);
  if (rc == PARLEY_OK)
    *seq = (uint64_t)v;
  return rc;
}

/* ---- Outbox -------------------------------------------------------------- */

int parley_store_outbox_add(struct parley_store *s, int64_t msg_rowid,
                            const uint8_t recipient[32], int64_t now_ms) {
  struct store_run r;
  int src = SQLITE_OK, rc;

  rc = parley__ob_add(s, msg_rowid, recipient, now_ms);
  if (rc != 0)
    return rc < 0 ? rc : PARLEY_OK;
  rc = parley__store_run_start(s, s->stmt[ST_OB_ADD], &r);
  if (rc < 0)
    return rc;
  src = bind_i64(src, r.st, 1, msg_rowid);
  src = bind_blob(src, r.st, 2, recipient, 32);
  src = bind_i64(src, r.st, 3, now_ms);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "outbox_add");
  else
    rc = parley__store_exec(s, &r, "outbox_add", NULL);
  parley__store_run_end(&r);
  return rc;
}

int parley_store_outbox_ack(struct parley_store *s, const uint8_t recipient[32],
                            const uint8_t publisher[32], const char *channel,
                            uint64_t seq) {
  size_t chlen = strlen(channel);
  struct store_run r;
  int64_t changes = 0;
  int src = SQLITE_OK, rc;

  if (!parley__store_channel_ok(channel, chlen))
    return parley__store_fail(s, PARLEY_EINVAL, "outbox_ack", "bad channel");
  if (seq > (uint64_t)INT64_MAX)
    return PARLEY_ENOTFOUND;
  if (parley__ob_has(s, recipient)) {
    /* It may be in a batch: by its rowid. */
    int64_t rowid = 0;
    rc = parley__store_run_start(s, s->stmt[ST_MSG_ROWID], &r);
    if (rc < 0)
      return rc;
    src = bind_blob(src, r.st, 1, publisher, 32);
    src = bind_text(src, r.st, 2, channel, chlen);
    src = bind_i64(src, r.st, 3, (int64_t)seq);
    rc = src != SQLITE_OK ? parley__store_fail_sql(s, src, "outbox_ack")
                          : parley__store_step_i64(s, &r, "outbox_ack", &rowid);
    parley__store_run_end(&r);
    return rc < 0 ? rc : parley_store_outbox_ack_row(s, recipient, rowid);
  }
  rc = parley__store_run_start(s, s->stmt[ST_OB_ACK], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, recipient, 32);
  src = bind_blob(src, r.st, 2, publisher, 32);
  src = bind_text(src, r.st, 3, channel, chlen);
  src = bind_i64(src, r.st, 4, (int64_t)seq);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "outbox_ack");
  else
    rc = parley__store_exec(s, &r, "outbox_ack", &changes);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK && changes == 0)
    rc = PARLEY_ENOTFOUND;
  return rc;
}

int parley_store_outbox_ack_row(struct parley_store *s,
                                const uint8_t recipient[32],
                                int64_t msg_rowid) {
  struct store_run r;
  int64_t changes = 0;
  int src = SQLITE_OK, rc;

  rc = parley__ob_ack(s, recipient, msg_rowid);
  if (rc != 0)
    return rc < 0 ? rc : PARLEY_OK;
  rc = parley__store_run_start(s, s->stmt[ST_OB_ACK_ROW], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, recipient, 32);
  src = bind_i64(src, r.st, 2, msg_rowid);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "outbox_ack");
  else
    rc = parley__store_exec(s, &r, "outbox_ack", &changes);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK && changes == 0)
    rc = PARLEY_ENOTFOUND;
  return rc;
}

/* The ids a walk will visit, taken before the first callback runs. */
struct idlist {
  int64_t *v;
  size_t n, cap;
};

static int collect_ids(struct parley_store *s, struct store_run *r,
                       struct idlist *ids) {
  int src;

  while ((src = sqlite3_step(r->st)) == SQLITE_ROW) {
    if (ids->n == ids->cap) {
      size_t cap = ids->cap ? ids->cap * 2 : 64;
      int64_t *v = parley_realloc(ids->v, cap * sizeof *v);
      if (v == NULL)
        return PARLEY_ENOMEM;
      ids->v = v;
      ids->cap = cap;
    }
    ids->v[ids->n++] = sqlite3_column_int64(r->st, 0);
  }
  if (src != SQLITE_DONE)
    return parley__store_fail_sql(s, src, "outbox walk");
  return PARLEY_OK;
}

/* Delivers each listed row that still exists to cb. */
static int deliver_ids(struct parley_store *s, const struct idlist *ids,
                       parley_store_outbox_cb cb, void *ctx) {
  struct parley_outbox_entry e;
  struct parley_msg m;
  struct store_run r;
  int src, rc = PARLEY_OK;

  for (size_t i = 0; rc == PARLEY_OK && i < ids->n; i++) {
    rc = parley__store_run_start(s, s->stmt[ST_OB_ROW], &r);
    if (rc < 0)
      return rc;
    src = sqlite3_bind_int64(r.st, 1, ids->v[i]);
    if (src == SQLITE_OK)
      src = sqlite3_step(r.st);
    if (src == SQLITE_ROW) {
      memset(&e, 0, sizeof e);
      e.id = sqlite3_column_int64(r.st, 0);
      e.msg_rowid = sqlite3_column_int64(r.st, 1);
      e.recipient = sqlite3_column_blob(r.st, 2);
      if (e.recipient == NULL || sqlite3_column_bytes(r.st, 2) != 32) {
        rc = parley__store_fail(s, PARLEY_ESTORE, "outbox walk",
                                "bad recipient column");
      } else {
        int64_t a = sqlite3_column_int64(r.st, 3);
        e.attempts = a < 0 ? 0 : a > UINT32_MAX ? UINT32_MAX : (uint32_t)a;
        e.next_try_ms = sqlite3_column_int64(r.st, 4);
        e.created_ms = sqlite3_column_int64(r.st, 5);
        rc = parley__store_read_msg(s, r.st, OB_NCOLS, &m);
        if (rc == PARLEY_OK)
          rc = cb(ctx, &e, &m);
      }
    } else if (src != SQLITE_DONE) { /* DONE: acked meanwhile, skip it */
      rc = parley__store_fail_sql(s, src, "outbox walk");
    }
    parley__store_run_end(&r);
  }
  return rc;
}

int parley_store_outbox_due(struct parley_store *s, int64_t now_ms,
                            uint32_t limit, parley_store_outbox_cb cb,
                            void *ctx) {
  struct idlist ids = {NULL, 0, 0};
  struct store_run r;
  int src = SQLITE_OK, rc;

  rc = parley__ob_expand(s, now_ms, NULL, INT64_MIN);
  if (rc < 0)
    return rc;
  rc = parley__store_run_start(s, s->stmt[ST_OB_DUE_IDS], &r);
  if (rc < 0)
    return rc;
  src = bind_i64(src, r.st, 1, now_ms);
  src = bind_i64(src, r.st, 2, limit > 0 ? (int64_t)limit : -1);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "outbox_due");
  else
    rc = collect_ids(s, &r, &ids);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK)
    rc = deliver_ids(s, &ids, cb, ctx);
  parley_free(ids.v);
  return rc;
}

int parley_store_outbox_for(struct parley_store *s, const uint8_t recipient[32],
                            parley_store_outbox_cb cb, void *ctx) {
  struct idlist ids = {NULL, 0, 0};
  struct store_run r;
  int src = SQLITE_OK, rc;

  rc = parley__ob_expand(s, INT64_MIN, recipient, INT64_MIN);
  if (rc < 0)
    return rc;
  rc = parley__store_run_start(s, s->stmt[ST_OB_FOR_IDS], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, recipient, 32);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "outbox_for");
  else
    rc = collect_ids(s, &r, &ids);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK)
    rc = deliver_ids(s, &ids, cb, ctx);
  parley_free(ids.v);
  return rc;
}

int parley_store_outbox_reschedule(struct parley_store *s, int64_t id,
                                   uint32_t attempts, int64_t next_try_ms) {
  struct store_run r;
  int64_t changes = 0;
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_OB_RESCHED], &r);
  if (rc < 0)
    return rc;
  src = bind_i64(src, r.st, 1, id);
  src = bind_i64(src, r.st, 2, (int64_t)attempts);
  src = bind_i64(src, r.st, 3, next_try_ms);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "outbox_reschedule");
  else
    rc = parley__store_exec(s, &r, "outbox_reschedule", &changes);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK && changes == 0)
    rc = PARLEY_ENOTFOUND;
  return rc;
}

int parley_store_outbox_expire(struct parley_store *s, int64_t cutoff_ms,
                               uint64_t *dropped) {
  struct store_run r;
  int64_t changes = 0;
  int src, rc;

  rc = parley__ob_expand(s, INT64_MIN, NULL, cutoff_ms);
  if (rc < 0)
    return rc;
  rc = parley__store_run_start(s, s->stmt[ST_OB_EXPIRE], &r);
  if (rc < 0)
    return rc;
  src = sqlite3_bind_int64(r.st, 1, cutoff_ms);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "outbox_expire");
  else
    rc = parley__store_exec(s, &r, "outbox_expire", &changes);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK)
    *dropped = (uint64_t)changes;
  return rc;
}

int parley_store_outbox_count(struct parley_store *s, uint64_t *n) {
  uint64_t batched = 0;
  int rc = parley__ob_left(s, &batched);

  if (rc == PARLEY_OK)
    rc = parley__store_count(s, ST_OB_COUNT, "outbox_count", n);
  if (rc == PARLEY_OK)
    *n += batched;
  return rc;
}

/* ---- Subscriptions ------------------------------------------------------- */

int parley_store_sub_add(struct parley_store *s, const char *topic) {
  size_t n = strlen(topic);
  struct store_run r;
  int src = SQLITE_OK, rc;

  if (!parley_topic_valid(topic, n, PARLEY_MAX_TOPIC))
    return parley__store_fail(s, PARLEY_EINVAL, "sub_add", "bad topic");
  rc = parley__store_run_start(s, s->stmt[ST_SUB_ADD], &r);
  if (rc < 0)
    return rc;
  src = bind_text(src, r.st, 1, topic, n);
  src = bind_i64(src, r.st, 2, parley_now_ms());
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "sub_add");
  else
    rc = parley__store_exec(s, &r, "sub_add", NULL);
  parley__store_run_end(&r);
  return rc;
}

int parley_store_sub_remove(struct parley_store *s, const char *topic) {
  size_t n = strlen(topic);
  struct store_run r;
  int64_t changes = 0;
  int src = SQLITE_OK, rc;

  if (!parley_topic_valid(topic, n, PARLEY_MAX_TOPIC))
    return parley__store_fail(s, PARLEY_EINVAL, "sub_remove", "bad topic");
  rc = parley__store_run_start(s, s->stmt[ST_SUB_DEL], &r);
  if (rc < 0)
    return rc;
  src = bind_text(src, r.st, 1, topic, n);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "sub_remove");
  else
    rc = parley__store_exec(s, &r, "sub_remove", &changes);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK && changes == 0)
    rc = PARLEY_ENOTFOUND;
  return rc;
}

int parley_store_sub_list(struct parley_store *s, parley_store_str_cb cb,
                          void *ctx) {
  const unsigned char *t;
  struct store_run r;
  int src, rc;

  rc = parley__store_run_start(s, s->stmt[ST_SUB_LIST], &r);
  if (rc < 0)
    return rc;
  while ((src = sqlite3_step(r.st)) == SQLITE_ROW) {
    t = sqlite3_column_text(r.st, 0);
    if (t == NULL)
      continue;
    rc = cb(ctx, (const char *)t);
    if (rc != 0)
      break;
  }
  if (rc == PARLEY_OK && src != SQLITE_DONE)
    rc = parley__store_fail_sql(s, src, "sub_list");
  parley__store_run_end(&r);
  return rc;
}

/* ---- Peer cache ---------------------------------------------------------- */

int parley_store_peer_seen(struct parley_store *s, const uint8_t pk[32],
                           const char *addr, const char *name, int64_t now_ms) {
  size_t alen = addr != NULL ? strlen(addr) : 0;
  size_t nlen = name != NULL ? strlen(name) : 0;
  struct store_run r;
  int src = SQLITE_OK, rc;

  if (alen > PARLEY_MAX_ADDR || nlen > PARLEY_MAX_NAME)
    return parley__store_fail(s, PARLEY_EINVAL, "peer_seen",
                              "address or name too long");
  rc = parley__store_run_start(s, s->stmt[ST_PEER_SEEN], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, pk, 32);
  src = bind_text(src, r.st, 2, addr, alen);
  src = bind_text(src, r.st, 3, name, nlen);
  src = bind_i64(src, r.st, 4, now_ms);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "peer_seen");
  else
    rc = parley__store_exec(s, &r, "peer_seen", NULL);
  parley__store_run_end(&r);
  return rc;
}

/* Copies column c as text into out (128 bytes), truncating. */
static void copy_col(sqlite3_stmt *st, int c, char *out) {
  const unsigned char *t = sqlite3_column_text(st, c);
  size_t n = t != NULL ? (size_t)sqlite3_column_bytes(st, c) : 0;

  if (n > 127)
    n = 127;
  if (n > 0)
    memcpy(out, t, n);
  out[n] = '\0';
}

int parley_store_peer_get(struct parley_store *s, const uint8_t pk[32],
                          char *addr, char *name, int64_t *last_seen_ms) {
  struct store_run r;
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_PEER_GET], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, pk, 32);
  if (src == SQLITE_OK)
    src = sqlite3_step(r.st);
  if (src == SQLITE_ROW) {
    copy_col(r.st, 0, addr);
    copy_col(r.st, 1, name);
    *last_seen_ms = sqlite3_column_int64(r.st, 2);
    rc = PARLEY_OK;
  } else if (src == SQLITE_DONE) {
    rc = PARLEY_ENOTFOUND;
  } else {
    rc = parley__store_fail_sql(s, src, "peer_get");
  }
  parley__store_run_end(&r);
  return rc;
}
