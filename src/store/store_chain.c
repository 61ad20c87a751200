/* store_chain.c — hash chains, signed checkpoints and the range queries of
 * anti-entropy (store.h, schema v2).  The store never hashes or verifies:
 * it keeps what the peer layer computed and checked. */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/limits.h"
#include "store/store.h"
#include "store/store_int.h"

/* SQLite integers are signed: sequence bounds above INT64_MAX are clamped
 * (no stored seq can exceed it). */
static int64_t seq_clamp(uint64_t v) {
  return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int chan_ok(const char *channel) {
  return parley__store_channel_ok(channel, strlen(channel));
}

/* Copies a 32-byte blob column, or zeros for NULL.  PARLEY_ESTORE for any
 * other size. */
static int read_hash(struct parley_store *s, sqlite3_stmt *st, int col,
                     uint8_t out[32], const char *what) {
  const void *p = sqlite3_column_blob(st, col);
  if (p == NULL) {
    memset(out, 0, 32);
    return PARLEY_OK;
  }
  if (sqlite3_column_bytes(st, col) != 32)
    return parley__store_fail(s, PARLEY_ESTORE, what, "bad hash column");
  memcpy(out, p, 32);
  return PARLEY_OK;
}

/* ---- This peer's own chain heads ------------------------------------------ */

/* A publish reads its channel's head and advances it, once per message.
 * The heads live here once read; an advance inside a transaction only
 * marks the head dirty, and the dirty heads are written to seqs once, just
 * before COMMIT (and before anything else reads seqs).  A rollback forgets
 * every head, so the next read comes from the table again. */
struct store_head {
  uint64_t seq;      /* next - 1 */
  uint8_t hash[32];  /* the chain value at seq, zeros when none */
  int dirty;         /* advanced in the open transaction */
};

/* More channels than this are not all kept: the cache is emptied when it
 * holds no dirty head and grows past it. */
#define HEADS_MAX 4096u

static int head_load(struct parley_store *s, const char *channel,
                     uint64_t *seq, uint8_t hash[32]) {
  struct store_run r;
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_CHAIN_HEAD], &r);
  if (rc < 0)
    return rc;
  src = bind_text(src, r.st, 1, channel, strlen(channel));
  if (src != SQLITE_OK) {
    rc = parley__store_fail_sql(s, src, "chain_head");
  } else {
    src = sqlite3_step(r.st);
    if (src == SQLITE_ROW) {
      int64_t v = sqlite3_column_int64(r.st, 0);
      *seq = v > 0 ? (uint64_t)v : 0;
      rc = read_hash(s, r.st, 1, hash, "chain_head");
    } else if (src == SQLITE_DONE) {
      *seq = 0;
      memset(hash, 0, 32);
      rc = PARLEY_OK;
    } else {
      rc = parley__store_fail_sql(s, src, "chain_head");
    }
  }
  parley__store_run_end(&r);
  return rc;
}

/* The cached head of channel, read from seqs first if needed.  NULL (and
 * rc) on a store error; on out of memory *h is NULL and rc PARLEY_OK, with
 * seq and hash filled from the table. */
static int head_get(struct parley_store *s, const char *channel,
                    struct store_head **out, uint64_t *seq, uint8_t hash[32]) {
  size_t len = strlen(channel);
  struct store_head *h = parley_map_get(&s->heads, channel, len);
  int rc;

  *out = h;
  if (h != NULL) {
    *seq = h->seq;
    memcpy(hash, h->hash, 32);
    return PARLEY_OK;
  }
  rc = head_load(s, channel, seq, hash);
  if (rc < 0)
    return rc;
  if (s->heads.count >= HEADS_MAX && s->ndirty == 0)
    parley__store_heads_drop(s);
  h = parley_calloc(1, sizeof *h);
  if (h == NULL)
    return PARLEY_OK;
  h->seq = *seq;
  memcpy(h->hash, hash, 32);
  if (parley_map_put(&s->heads, channel, len, h, NULL) < 0) {
    parley_free(h);
    return PARLEY_OK;
  }
  *out = h;
  return PARLEY_OK;
}

static int head_write(struct parley_store *s, const char *channel,
                      uint64_t seq, const uint8_t hash[32]) {
  struct store_run r;
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_CHAIN_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_text(src, r.st, 1, channel, strlen(channel));
  src = bind_i64(src, r.st, 2, (int64_t)seq);
  src = bind_blob(src, r.st, 3, hash, 32);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "chain_advance");
  else
    rc = parley__store_exec(s, &r, "chain_advance", NULL);
  parley__store_run_end(&r);
  return rc;
}

int parley__store_heads_flush(struct parley_store *s) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  int rc = PARLEY_OK;

  if (s->ndirty == 0)
    return PARLEY_OK;
  parley_map_iter_init(&it, &s->heads);
  while ((e = parley_map_iter_next(&it)) != NULL && s->ndirty > 0) {
    struct store_head *h = e->value;
    if (!h->dirty)
      continue;
    rc = head_write(s, (const char *)e->key, h->seq, h->hash);
    if (rc < 0)
      return rc; /* the caller rolls back, which forgets the heads */
    h->dirty = 0;
    s->ndirty--;
  }
  return rc;
}

void parley__store_heads_forget(struct parley_store *s, const char *channel) {
  struct store_head *h =
      parley_map_del(&s->heads, channel, strlen(channel));
  if (h != NULL && h->dirty)
    s->ndirty--;
  parley_free(h);
}

void parley__store_heads_drop(struct parley_store *s) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley_map_iter_init(&it, &s->heads);
  while ((e = parley_map_iter_next(&it)) != NULL)
    parley_free(e->value);
  parley_map_close(&s->heads);
  s->ndirty = 0;
}

int parley_store_chain_head(struct parley_store *s, const char *channel,
                            uint64_t *seq, uint8_t hash[32]) {
  struct store_head *h;

  if (!chan_ok(channel))
    return parley__store_fail(s, PARLEY_EINVAL, "chain_head", "bad channel");
  return head_get(s, channel, &h, seq, hash);
}

int parley_store_chain_advance(struct parley_store *s, const char *channel,
                               uint64_t seq, const uint8_t hash[32]) {
  struct store_head *h;
  uint64_t cur = 0;
  uint8_t cur_hash[32];
  int rc;

  if (!chan_ok(channel))
    return parley__store_fail(s, PARLEY_EINVAL, "chain_advance",
                              "bad channel");
  if (seq == 0 || seq >= (uint64_t)INT64_MAX)
    return parley__store_fail(s, PARLEY_EINVAL, "chain_advance",
                              "seq out of range");
  rc = head_get(s, channel, &h, &cur, cur_hash);
  if (rc < 0)
    return rc;
  if (cur != seq - 1)
    return parley__store_fail(s, PARLEY_EINVAL, "chain_advance",
                              "the head is not at seq - 1");
  /* Outside a transaction (or without memory for the cache) the row is
   * written now. */
  if (h == NULL || !parley_store_in_tx(s)) {
    rc = head_write(s, channel, seq, hash);
    if (rc < 0)
      return rc;
    if (h != NULL) {
      h->seq = seq;
      memcpy(h->hash, hash, 32);
    }
    return PARLEY_OK;
  }
  h->seq = seq;
  memcpy(h->hash, hash, 32);
  if (!h->dirty) {
    h->dirty = 1;
    s->ndirty++;
  }
  return PARLEY_OK;
}

int parley_store_chain_heads(struct parley_store *s, parley_store_head_cb cb,
                             void *ctx) {
  struct store_run r;
  uint8_t hash[32];
  int src, rc;

  rc = parley__store_heads_flush(s); /* the table is read below */
  if (rc < 0)
    return rc;
  rc = parley__store_run_start(s, s->stmt[ST_CHAIN_HEADS], &r);
  if (rc < 0)
    return rc;
  while ((src = sqlite3_step(r.st)) == SQLITE_ROW) {
    const char *channel = (const char *)sqlite3_column_text(r.st, 0);
    int64_t seq = sqlite3_column_int64(r.st, 1);
    if (channel == NULL || seq <= 0) {
      rc = parley__store_fail(s, PARLEY_ESTORE, "chain_heads", "bad row");
      break;
    }
    rc = read_hash(s, r.st, 2, hash, "chain_heads");
    if (rc == PARLEY_OK)
      rc = cb(ctx, channel, (uint64_t)seq, hash);
    if (rc != 0)
      break;
  }
  if (rc == PARLEY_OK && src != SQLITE_DONE)
    rc = parley__store_fail_sql(s, src, "chain_heads");
  parley__store_run_end(&r);
  return rc;
}

/* Binds (publisher, channel, seq) as ?1..?3 and steps once.  OUT: *row = 1
 * and the hash of column 0 when a row came back. */
static int hash_lookup(struct parley_store *s, enum store_stmt id,
                       const uint8_t publisher[32], const char *channel,
                       uint64_t seq, uint8_t hash[32], int *row,
                       const char *what) {
  struct store_run r;
  int src = SQLITE_OK, rc;

  *row = 0;
  rc = parley__store_run_start(s, s->stmt[id], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, publisher, 32);
  src = bind_text(src, r.st, 2, channel, strlen(channel));
  src = bind_i64(src, r.st, 3, seq_clamp(seq));
  if (src != SQLITE_OK) {
    rc = parley__store_fail_sql(s, src, what);
  } else {
    src = sqlite3_step(r.st);
    if (src == SQLITE_ROW) {
      *row = 1;
      rc = read_hash(s, r.st, 0, hash, what);
    } else if (src != SQLITE_DONE) {
      rc = parley__store_fail_sql(s, src, what);
    }
  }
  parley__store_run_end(&r);
  return rc;
}

int parley_store_chain_at(struct parley_store *s, const uint8_t publisher[32],
                          const char *channel, uint64_t seq,
                          uint8_t hash[32]) {
  int row = 0, rc;

  if (!chan_ok(channel))
    return parley__store_fail(s, PARLEY_EINVAL, "chain_at", "bad channel");
  if (seq == 0 || seq > (uint64_t)INT64_MAX)
    return PARLEY_ENOTFOUND;
  rc = hash_lookup(s, ST_CHAIN_AT_MSG, publisher, channel, seq, hash, &row,
                   "chain_at");
  if (rc < 0 || row)
    return rc;
  rc = hash_lookup(s, ST_CP_AT, publisher, channel, seq, hash, &row,
                   "chain_at");
  if (rc < 0)
    return rc;
  return row ? PARLEY_OK : PARLEY_ENOTFOUND;
}

/* ---- Checkpoints ------------------------------------------------------------ */

int parley_store_checkpoint_put(struct parley_store *s,
                                const struct parley_store_checkpoint *cp) {
  struct store_run r;
  int64_t changes = 0;
  int src = SQLITE_OK, rc;

  if (cp->publisher == NULL || cp->hash == NULL || cp->sig == NULL)
    return parley__store_fail(s, PARLEY_EINVAL, "checkpoint_put",
                              "missing field");
  if (!parley__store_channel_ok(cp->channel, cp->channel_len))
    return parley__store_fail(s, PARLEY_EINVAL, "checkpoint_put",
                              "bad channel");
  if (cp->seq == 0 || cp->seq > (uint64_t)INT64_MAX)
    return parley__store_fail(s, PARLEY_EINVAL, "checkpoint_put",
                              "seq out of range");
  rc = parley__store_run_start(s, s->stmt[ST_CP_PUT], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, cp->publisher, 32);
  src = bind_text(src, r.st, 2, cp->channel, cp->channel_len);
  src = bind_i64(src, r.st, 3, (int64_t)cp->seq);
  src = bind_blob(src, r.st, 4, cp->hash, 32);
  src = bind_blob(src, r.st, 5, cp->sig, 64);
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, "checkpoint_put");
  else
    rc = parley__store_exec(s, &r, "checkpoint_put", &changes);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK && changes == 0)
    rc = PARLEY_EEXIST;
  return rc;
}

int parley_store_checkpoint_find(struct parley_store *s,
                                 const uint8_t publisher[32],
                                 const char *channel, uint64_t lo, uint64_t hi,
                                 int newest, uint64_t *seq, uint8_t hash[32],
                                 uint8_t sig[64]) {
  struct store_run r;
  int src = SQLITE_OK, rc;

  if (!chan_ok(channel))
    return parley__store_fail(s, PARLEY_EINVAL, "checkpoint_find",
                              "bad channel");
  if (lo > hi || lo > (uint64_t)INT64_MAX)
    return PARLEY_ENOTFOUND;
  rc = parley__store_run_start(s, s->stmt[newest ? ST_CP_LAST : ST_CP_FIRST],
                               &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, publisher, 32);
  src = bind_text(src, r.st, 2, channel, strlen(channel));
  src = bind_i64(src, r.st, 3, seq_clamp(lo));
  src = bind_i64(src, r.st, 4, seq_clamp(hi));
  if (src != SQLITE_OK) {
    rc = parley__store_fail_sql(s, src, "checkpoint_find");
  } else {
    src = sqlite3_step(r.st);
    if (src == SQLITE_ROW) {
      const void *sg = sqlite3_column_blob(r.st, 2);
      *seq = (uint64_t)sqlite3_column_int64(r.st, 0);
      rc = PARLEY_OK;
      if (hash != NULL)
        rc = read_hash(s, r.st, 1, hash, "checkpoint_find");
      if (rc == PARLEY_OK && sig != NULL) {
        if (sg == NULL || sqlite3_column_bytes(r.st, 2) != 64)
          rc = parley__store_fail(s, PARLEY_ESTORE, "checkpoint_find",
                                  "bad sig column");
        else
          memcpy(sig, sg, 64);
      }
    } else if (src == SQLITE_DONE) {
      rc = PARLEY_ENOTFOUND;
    } else {
      rc = parley__store_fail_sql(s, src, "checkpoint_find");
    }
  }
  parley__store_run_end(&r);
  return rc;
}

/* ---- Anti-entropy queries -------------------------------------------------- */

int parley_store_sync_summary(struct parley_store *s, const char *channel,
                              uint32_t limit, parley_store_summary_cb cb,
                              void *ctx) {
  struct store_run r;
  int src = SQLITE_OK, rc;

  if (!chan_ok(channel))
    return parley__store_fail(s, PARLEY_EINVAL, "sync_summary",
                              "bad channel");
  rc = parley__store_run_start(s, s->stmt[ST_SUMMARY], &r);
  if (rc < 0)
    return rc;
  src = bind_text(src, r.st, 1, channel, strlen(channel));
  src = bind_i64(src, r.st, 2, limit ? (int64_t)limit : -1);
  if (src != SQLITE_OK) {
    rc = parley__store_fail_sql(s, src, "sync_summary");
    parley__store_run_end(&r);
    return rc;
  }
  while ((src = sqlite3_step(r.st)) == SQLITE_ROW) {
    const uint8_t *pub = sqlite3_column_blob(r.st, 0);
    int64_t sig_max = sqlite3_column_int64(r.st, 1);
    int64_t msg_max = sqlite3_column_int64(r.st, 2);
    if (pub == NULL || sqlite3_column_bytes(r.st, 0) != 32) {
      rc = parley__store_fail(s, PARLEY_ESTORE, "sync_summary", "bad row");
      break;
    }
    rc = cb(ctx, pub, msg_max > 0 ? (uint64_t)msg_max : 0,
            sig_max > 0 ? (uint64_t)sig_max : 0);
    if (rc != 0)
      break;
  }
  if (rc == PARLEY_OK && src != SQLITE_DONE)
    rc = parley__store_fail_sql(s, src, "sync_summary");
  parley__store_run_end(&r);
  return rc;
}

/* Runs a (publisher, channel, a, b) statement whose single column is an
 * integer or NULL.  OUT: *v, *have (0 for no row or NULL). */
static int range_i64(struct parley_store *s, enum store_stmt id,
                     const uint8_t publisher[32], const char *channel,
                     int64_t a, int64_t b, int64_t *v, int *have,
                     const char *what) {
  struct store_run r;
  int src = SQLITE_OK, rc = PARLEY_OK;

  *have = 0;
  rc = parley__store_run_start(s, s->stmt[id], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, publisher, 32);
  src = bind_text(src, r.st, 2, channel, strlen(channel));
  src = bind_i64(src, r.st, 3, a);
  if (id != ST_SEQ_HELD)
    src = bind_i64(src, r.st, 4, b);
  if (src != SQLITE_OK) {
    rc = parley__store_fail_sql(s, src, what);
  } else {
    src = sqlite3_step(r.st);
    if (src == SQLITE_ROW) {
      if (sqlite3_column_type(r.st, 0) != SQLITE_NULL) {
        *v = sqlite3_column_int64(r.st, 0);
        *have = 1;
      }
    } else if (src != SQLITE_DONE) {
      rc = parley__store_fail_sql(s, src, what);
    }
  }
  parley__store_run_end(&r);
  return rc;
}

int parley_store_seq_gap(struct parley_store *s, const uint8_t publisher[32],
                         const char *channel, uint64_t from, uint64_t to,
                         uint64_t *gap_from, uint64_t *gap_to) {
  int64_t lo, hi, v = 0;
  int have = 0, rc;

  if (!chan_ok(channel))
    return parley__store_fail(s, PARLEY_EINVAL, "seq_gap", "bad channel");
  if (from == 0 || to < from)
    return parley__store_fail(s, PARLEY_EINVAL, "seq_gap", "bad range");
  if (from > (uint64_t)INT64_MAX) {
    /* Nothing can be stored up there: the whole range is missing. */
    *gap_from = from;
    *gap_to = to;
    return PARLEY_OK;
  }
  lo = (int64_t)from;
  hi = seq_clamp(to);
  rc = range_i64(s, ST_SEQ_HELD, publisher, channel, lo, 0, &v, &have,
                 "seq_gap");
  if (rc < 0)
    return rc;
  if (have) {
    /* from is held: the gap starts right after the first held seq whose
     * successor is missing. */
    rc = range_i64(s, ST_SEQ_GAP, publisher, channel, lo, hi, &v, &have,
                   "seq_gap");
    if (rc < 0)
      return rc;
    if (!have) {
      if ((uint64_t)hi == to)
        return PARLEY_ENOTFOUND;
      *gap_from = (uint64_t)hi + 1; /* only the unstorable top is missing */
      *gap_to = to;
      return PARLEY_OK;
    }
    lo = v;
  }
  *gap_from = (uint64_t)lo;
  rc = range_i64(s, ST_SEQ_NEXT, publisher, channel, lo, hi, &v, &have,
                 "seq_gap");
  if (rc < 0)
    return rc;
  *gap_to = have ? (uint64_t)v - 1 : to;
  return PARLEY_OK;
}

int parley_store_seq_range(struct parley_store *s, const uint8_t publisher[32],
                           const char *channel, uint64_t from, uint64_t to,
                           uint32_t limit, parley_store_msg_cb cb, void *ctx) {
  struct parley_msg m;
  struct store_run r;
  int src = SQLITE_OK, rc;

  if (!chan_ok(channel))
    return parley__store_fail(s, PARLEY_EINVAL, "seq_range", "bad channel");
  if (to < from || from > (uint64_t)INT64_MAX)
    return PARLEY_OK;
  rc = parley__store_run_start(s, s->stmt[ST_SEQ_RANGE], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, publisher, 32);
  src = bind_text(src, r.st, 2, channel, strlen(channel));
  src = bind_i64(src, r.st, 3, (int64_t)from);
  src = bind_i64(src, r.st, 4, seq_clamp(to));
  src = bind_i64(src, r.st, 5, limit ? (int64_t)limit : -1);
  if (src != SQLITE_OK) {
    rc = parley__store_fail_sql(s, src, "seq_range");
    parley__store_run_end(&r);
    return rc;
  }
  while ((src = sqlite3_step(r.st)) == SQLITE_ROW) {
    rc = parley__store_read_msg(s, r.st, 0, &m);
    if (rc == PARLEY_OK)
      rc = cb(ctx, &m);
    if (rc != 0)
      break;
  }
  if (rc == PARLEY_OK && src != SQLITE_DONE)
    rc = parley__store_fail_sql(s, src, "seq_range");
  parley__store_run_end(&r);
  return rc;
}
