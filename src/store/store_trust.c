/* store_trust.c — keys pinned with `parley trust` and the replay windows
 * of end-to-end direct messages (store.h, schema v3). */
#include <stdint.h>
#include <string.h>

#include "core/limits.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_int.h"

/* ---- Pins ---------------------------------------------------------------- */

int parley_store_pin_put(struct parley_store *s,
                         const struct parley_store_pin *p) {
  struct store_run r;
  size_t nl, al, sl;
  int src = SQLITE_OK, rc;

  if (p->pk == NULL || p->name == NULL || p->addr == NULL ||
      p->safety == NULL)
    return parley__store_fail(s, PARLEY_EINVAL, "pin_put", "missing field");
  nl = strlen(p->name);
  al = strlen(p->addr);
  sl = strlen(p->safety);
  if (nl > PARLEY_MAX_NAME || al > PARLEY_MAX_ADDR || sl == 0 || sl > 255)
    return parley__store_fail(s, PARLEY_EINVAL, "pin_put", "field too long");
  rc = parley__store_run_start(s, s->stmt[ST_PIN_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, p->pk, 32);
  src = bind_text(src, r.st, 2, p->name, nl);
  src = bind_text(src, r.st, 3, p->addr, al);
  src = bind_text(src, r.st, 4, p->safety, sl);
  src = bind_i64(src, r.st, 5,
                 p->since_ms != 0 ? p->since_ms : parley_now_ms());
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "pin_put");
  else
    rc = parley__store_exec(s, &r, "pin_put", NULL);
  parley__store_run_end(&r);
  return rc;
}

int parley_store_pin_del(struct parley_store *s, const uint8_t pk[32]) {
  struct store_run r;
  int64_t changes = 0;
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_PIN_DEL], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, pk, 32);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "pin_del");
  else
    rc = parley__store_exec(s, &r, "pin_del", &changes);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK && changes == 0)
    rc = PARLEY_ENOTFOUND;
  return rc;
}

int parley_store_pin_addr(struct parley_store *s, const uint8_t pk[32],
                          const char *addr) {
  size_t al = strlen(addr);
  struct store_run r;
  int src = SQLITE_OK, rc;

  if (al > PARLEY_MAX_ADDR)
    return parley__store_fail(s, PARLEY_EINVAL, "pin_addr", "addr too long");
  rc = parley__store_run_start(s, s->stmt[ST_PIN_ADDR], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, pk, 32);
  src = bind_text(src, r.st, 2, addr, al);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "pin_addr");
  else
    rc = parley__store_exec(s, &r, "pin_addr", NULL);
  parley__store_run_end(&r);
  return rc;
}

static const char *text_col(sqlite3_stmt *st, int c) {
  const unsigned char *t = sqlite3_column_text(st, c);
  return t != NULL ? (const char *)t : "";
}

int parley_store_pin_list(struct parley_store *s, parley_store_pin_cb cb,
                          void *ctx) {
  struct parley_store_pin p;
  struct store_run r;
  int src, rc;

  rc = parley__store_run_start(s, s->stmt[ST_PIN_LIST], &r);
  if (rc < 0)
    return rc;
  while ((src = sqlite3_step(r.st)) == SQLITE_ROW) {
    memset(&p, 0, sizeof p);
    p.pk = sqlite3_column_blob(r.st, 0);
    if (p.pk == NULL || sqlite3_column_bytes(r.st, 0) != 32) {
      rc = parley__store_fail(s, PARLEY_ESTORE, "pin_list", "bad key column");
      break;
    }
    p.name = text_col(r.st, 1);
    p.addr = text_col(r.st, 2);
    p.safety = text_col(r.st, 3);
    p.since_ms = sqlite3_column_int64(r.st, 4);
    rc = cb(ctx, &p);
    if (rc != 0)
      break;
  }
  if (rc == PARLEY_OK && src != SQLITE_DONE && src != SQLITE_ROW)
    rc = parley__store_fail_sql(s, src, "pin_list");
  parley__store_run_end(&r);
  return rc;
}

/* ---- Replay windows ------------------------------------------------------ */

int parley_store_replay_get(struct parley_store *s,
                            const uint8_t publisher[32], const char *channel,
                            uint64_t *top, uint64_t *seen) {
  size_t chlen = strlen(channel);
  struct store_run r;
  int src = SQLITE_OK, rc;

  *top = 0;
  *seen = 0;
  if (!parley__store_channel_ok(channel, chlen))
    return parley__store_fail(s, PARLEY_EINVAL, "replay_get", "bad channel");
  rc = parley__store_run_start(s, s->stmt[ST_REPLAY_GET], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, publisher, 32);
  src = bind_text(src, r.st, 2, channel, chlen);
  if (src != SQLITE_OK) {
    rc = parley__store_fail_sql(s, src, "replay_get");
  } else {
    src = sqlite3_step(r.st);
    if (src == SQLITE_ROW) {
      int64_t t = sqlite3_column_int64(r.st, 0);
      *top = t < 0 ? 0 : (uint64_t)t;
      /* seen is a bit set; SQLite keeps it as a signed 64-bit integer. */
      *seen = (uint64_t)sqlite3_column_int64(r.st, 1);
    } else if (src != SQLITE_DONE) {
      rc = parley__store_fail_sql(s, src, "replay_get");
    }
  }
  parley__store_run_end(&r);
  return rc;
}

int parley_store_replay_put(struct parley_store *s,
                            const uint8_t publisher[32], const char *channel,
                            uint64_t top, uint64_t seen) {
  size_t chlen = strlen(channel);
  struct store_run r;
  int64_t sv;
  int src = SQLITE_OK, rc;

  if (!parley__store_channel_ok(channel, chlen))
    return parley__store_fail(s, PARLEY_EINVAL, "replay_put", "bad channel");
  if (top > (uint64_t)INT64_MAX)
    return parley__store_fail(s, PARLEY_EINVAL, "replay_put",
                              "top out of range");
  memcpy(&sv, &seen, sizeof sv); /* same bits, signed */
  rc = parley__store_run_start(s, s->stmt[ST_REPLAY_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, publisher, 32);
  src = bind_text(src, r.st, 2, channel, chlen);
  src = bind_i64(src, r.st, 3, (int64_t)top);
  src = bind_i64(src, r.st, 4, sv);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "replay_put");
  else
    rc = parley__store_exec(s, &r, "replay_put", NULL);
  parley__store_run_end(&r);
  return rc;
}

/* ---- Private-topic key blobs (schema v4) ---------------------------------- */

int parley_store_topic_key_put(struct parley_store *s, const char *topic,
                               uint32_t epoch, const uint8_t *blob,
                               size_t len) {
  size_t tl = strlen(topic);
  struct store_run r;
  int src = SQLITE_OK, rc;

  if (tl == 0 || tl > PARLEY_MAX_TOPIC || epoch == 0 || len == 0 ||
      len > 4096)
    return parley__store_fail(s, PARLEY_EINVAL, "topic_key_put",
                              "bad topic, epoch or blob");
  rc = parley__store_run_start(s, s->stmt[ST_TKEY_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_text(src, r.st, 1, topic, tl);
  src = bind_i64(src, r.st, 2, (int64_t)epoch);
  src = bind_blob(src, r.st, 3, blob, len);
  src = bind_i64(src, r.st, 4, parley_now_ms());
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "topic_key_put");
  else
    rc = parley__store_exec(s, &r, "topic_key_put", NULL);
  parley__store_run_end(&r);
  return rc;
}

int parley_store_topic_key_list(struct parley_store *s,
                                parley_store_topic_key_cb cb, void *ctx) {
  struct store_run r;
  int src, rc;

  rc = parley__store_run_start(s, s->stmt[ST_TKEY_LIST], &r);
  if (rc < 0)
    return rc;
  while ((src = sqlite3_step(r.st)) == SQLITE_ROW) {
    const char *topic = text_col(r.st, 0);
    int64_t epoch = sqlite3_column_int64(r.st, 1);
    const uint8_t *blob = sqlite3_column_blob(r.st, 2);
    int blen = sqlite3_column_bytes(r.st, 2);
    if (topic[0] == '\0' || epoch < 1 || epoch > UINT32_MAX ||
        blob == NULL || blen <= 0) {
      rc = parley__store_fail(s, PARLEY_ESTORE, "topic_key_list",
                              "bad row");
      break;
    }
    rc = cb(ctx, topic, (uint32_t)epoch, blob, (size_t)blen);
    if (rc != 0)
      break;
  }
  if (rc == PARLEY_OK && src != SQLITE_DONE && src != SQLITE_ROW)
    rc = parley__store_fail_sql(s, src, "topic_key_list");
  parley__store_run_end(&r);
  return rc;
}

/* ---- Per-topic options (schema v5) ------------------------------------------ */

int parley_store_topic_history_set(struct parley_store *s, const char *topic,
                                   int keep) {
  size_t tl = strlen(topic);
  struct store_run r;
  int src = SQLITE_OK, rc;

  if (tl == 0 || tl > PARLEY_MAX_TOPIC)
    return parley__store_fail(s, PARLEY_EINVAL, "topic_history_set",
                              "bad topic");
  rc = parley__store_run_start(s, s->stmt[ST_TOPT_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_text(src, r.st, 1, topic, tl);
  src = bind_i64(src, r.st, 2, keep ? 1 : 0);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "topic_history_set");
  else
    rc = parley__store_exec(s, &r, "topic_history_set", NULL);
  parley__store_run_end(&r);
  return rc;
}

int parley_store_topic_history_list(struct parley_store *s,
                                    parley_store_topic_opt_cb cb, void *ctx) {
  struct store_run r;
  int src, rc;

  rc = parley__store_run_start(s, s->stmt[ST_TOPT_LIST], &r);
  if (rc < 0)
    return rc;
  while ((src = sqlite3_step(r.st)) == SQLITE_ROW) {
    const char *topic = text_col(r.st, 0);
    if (topic[0] == '\0') {
      rc = parley__store_fail(s, PARLEY_ESTORE, "topic_history_list",
                              "bad row");
      break;
    }
    rc = cb(ctx, topic, sqlite3_column_int(r.st, 1) != 0);
    if (rc != 0)
      break;
  }
  if (rc == PARLEY_OK && src != SQLITE_DONE && src != SQLITE_ROW)
    rc = parley__store_fail_sql(s, src, "topic_history_list");
  parley__store_run_end(&r);
  return rc;
}
