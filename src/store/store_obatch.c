/* store_obatch.c — outbox batches: the acknowledged deliveries to one
 * recipient from one transaction, kept as one outbox_batch row instead of
 * an outbox row each (store.h, "Outbox"; docs/STORE.md).
 *
 * A row per delivery, written at publish and deleted at its ack, was a
 * quarter of an acknowledged publisher's time, and nearly every delivery is
 * acked within milliseconds.  So inside a transaction parley_store_outbox_add
 * appends to the recipient's open batch; the commit writes each open batch
 * as one row (the rowids as runs); acks are marked in memory, and a batch's
 * row is deleted when its last delivery is acked.  A delivery that is still
 * unacked when its batch falls due (the next_try of its first add), when
 * the recipient's deliveries are walked (outbox_for), or when the outbox
 * expires old rows, becomes an ordinary outbox row, and from there on
 * retries, back-off and expiry are as they were.  A row holds only the
 * deliveries unacked at the commit that wrote it: a batch acked in part
 * has its row rewritten at the next commit (at once outside a
 * transaction).  After a crash the rows are read back at open, every
 * delivery in them unacked, so what is sent again is what was unacked at
 * the last commit: at-least-once, as before.
 *
 * Only a rowid above every rowid already added for that recipient is
 * batched (always the case for a new publish), so a delivery is never both
 * in a batch and in the outbox table.  A rollback may undo rows that memory
 * still holds (or restore ones it dropped), so it marks the batches stale
 * and the next outbox call reads them back from the table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "store/store.h"
#include "store/store_int.h"

struct ob_rcpt;

struct ob_batch {
  struct ob_batch *prev, *next;   /* every batch, oldest first */
  struct ob_batch *rprev, *rnext; /* the recipient's batches, oldest first */
  struct ob_rcpt *r;
  int64_t id;                     /* outbox_batch row; 0 until the commit */
  int64_t next_try, created;
  uint32_t n, left, cap;
  int64_t *rowids;                /* ascending */
  uint8_t *acked;                 /* per rowid */
  int dirty;                      /* written, acked in part since */
};

struct ob_rcpt {
  uint8_t pk[32];
  int64_t top;                  /* highest rowid added for it (or the floor) */
  struct ob_batch *first, *last;
  struct ob_batch *open;        /* taking adds in the open transaction */
  uint64_t left;
  int counted;                  /* outbox_by_recipient's mark */
};

/* ---- The rowids column ---------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, unsigned bytes) {
  for (unsigned i = 0; i < bytes; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes) {
  uint64_t v = 0;
  for (unsigned i = 0; i < bytes; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

size_t parley__ob_encode(const int64_t *v, size_t n, uint8_t *out) {
  size_t len = 0, i = 0;

  while (i < n) {
    size_t j = i + 1;
    while (j < n && v[j] == v[j - 1] + 1 && j - i < UINT32_MAX)
      j++;
    put_le(out + len, (uint64_t)v[i], 8);
    put_le(out + len + 8, (uint64_t)(j - i), 4);
    len += PARLEY_OB_RUN;
    i = j;
  }
  return len;
}

int parley__ob_decode(const uint8_t *b, size_t len, int64_t *out, size_t cap,
                      size_t *n) {
  uint64_t next = 1; /* the lowest rowid the next run may start at */
  size_t k = 0;

  *n = 0;
  if (len % PARLEY_OB_RUN != 0)
    return PARLEY_EPROTO;
  for (size_t off = 0; off < len; off += PARLEY_OB_RUN) {
    uint64_t first = get_le(b + off, 8), count = get_le(b + off + 8, 4);
    /* first >= next >= 1; the run's last rowid must be an int64. */
    if (count == 0 || first < next || first - 1 > (uint64_t)INT64_MAX - count)
      return PARLEY_EPROTO;
    if (count > cap - k)
      return PARLEY_ETOOBIG;
    for (uint64_t i = 0; i < count; i++)
      out[k++] = (int64_t)(first + i);
    /* Runs do not touch: the encoder would have merged them. */
    next = first + count + 1;
  }
  *n = k;
  return PARLEY_OK;
}

/* ---- Memory ------------------------------------------------------------------ */

static void batch_unlink(struct parley_store *s, struct ob_batch *b) {
  struct ob_rcpt *r = b->r;

  *(b->prev ? &b->prev->next : &s->ob_first) = b->next;
  *(b->next ? &b->next->prev : &s->ob_last) = b->prev;
  *(b->rprev ? &b->rprev->rnext : &r->first) = b->rnext;
  *(b->rnext ? &b->rnext->rprev : &r->last) = b->rprev;
  if (r->open == b)
    r->open = NULL;
  r->left -= b->left;
  s->ob_left -= b->left;
  if (b->dirty)
    s->ob_dirty--;
  parley_free(b->rowids);
  parley_free(b->acked);
  parley_free(b);
}

static struct ob_batch *batch_new(struct parley_store *s, struct ob_rcpt *r,
                                  int64_t next_try, int64_t created) {
  struct ob_batch *b = parley_calloc(1, sizeof *b);

  if (b == NULL)
    return NULL;
  b->r = r;
  b->next_try = next_try;
  b->created = created;
  b->prev = s->ob_last;
  *(s->ob_last ? &s->ob_last->next : &s->ob_first) = b;
  s->ob_last = b;
  b->rprev = r->last;
  *(r->last ? &r->last->rnext : &r->first) = b;
  r->last = b;
  return b;
}

/* Room for n rowids in b. */
static int batch_reserve(struct ob_batch *b, uint32_t n) {
  uint32_t cap = b->cap ? b->cap : 64;
  int64_t *v;
  uint8_t *a;

  if (n <= b->cap)
    return PARLEY_OK;
  while (cap < n)
    cap *= 2;
  v = parley_realloc(b->rowids, (size_t)cap * sizeof *v);
  if (v == NULL)
    return PARLEY_ENOMEM;
  b->rowids = v;
  a = parley_realloc(b->acked, cap);
  if (a == NULL)
    return PARLEY_ENOMEM;
  b->acked = a;
  b->cap = cap;
  return PARLEY_OK;
}

static struct ob_rcpt *rcpt_get(struct parley_store *s, const uint8_t pk[32],
                                int create) {
  struct ob_rcpt *r = parley_map_get(&s->ob, pk, 32);

  if (r != NULL || !create)
    return r;
  r = parley_calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  memcpy(r->pk, pk, 32);
  r->top = s->ob_floor;
  if (parley_map_put(&s->ob, r->pk, 32, r, NULL) < 0) {
    parley_free(r);
    return NULL;
  }
  return r;
}

void parley__ob_drop(struct parley_store *s) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  while (s->ob_first != NULL)
    batch_unlink(s, s->ob_first);
  parley_map_iter_init(&it, &s->ob);
  while ((e = parley_map_iter_next(&it)) != NULL)
    parley_free(e->value);
  parley_map_close(&s->ob);
  s->ob_left = 0;
}

/* One row of outbox_batch into memory, every delivery unacked. */
static int load_row(struct parley_store *s, sqlite3_stmt *st,
                    int64_t *scratch) {
  const uint8_t *pk = sqlite3_column_blob(st, 1);
  const uint8_t *runs = sqlite3_column_blob(st, 2);
  int nruns = sqlite3_column_bytes(st, 2);
  int64_t id = sqlite3_column_int64(st, 0);
  struct ob_rcpt *r;
  struct ob_batch *b;
  size_t n = 0;
  int rc;

  if (pk == NULL || sqlite3_column_bytes(st, 1) != 32 ||
      parley__ob_decode(runs, runs ? (size_t)nruns : 0, scratch,
                        PARLEY_OB_BATCH_MAX, &n) < 0 ||
      n == 0) {
    /* Left in the table for an operator to look at; never expanded. */
    PARLEY_LOG(s->lg, PARLEY_LOG_WARN,
               "store: outbox batch %lld is damaged, skipped", (long long)id);
    return PARLEY_OK;
  }
  r = rcpt_get(s, pk, 1);
  b = r ? batch_new(s, r, sqlite3_column_int64(st, 3),
                    sqlite3_column_int64(st, 4))
        : NULL;
  if (b == NULL)
    return PARLEY_ENOMEM;
  b->id = id;
  rc = batch_reserve(b, (uint32_t)n);
  if (rc < 0) {
    batch_unlink(s, b);
    return rc;
  }
  memcpy(b->rowids, scratch, n * sizeof *scratch);
  memset(b->acked, 0, n);
  b->n = b->left = (uint32_t)n;
  r->left += n;
  s->ob_left += n;
  if (b->rowids[n - 1] > r->top)
    r->top = b->rowids[n - 1];
  return PARLEY_OK;
}

int parley__ob_load(struct parley_store *s) {
  struct store_run r;
  int64_t *scratch = NULL, floor = 0;
  int src = SQLITE_DONE, rc;

  parley__ob_drop(s);
  /* Until this succeeds, the next outbox call tries again. */
  s->ob_stale = 1;
  rc = parley__store_run_start(s, s->stmt[ST_OB_FLOOR], &r);
  if (rc == PARLEY_OK) {
    rc = parley__store_step_i64(s, &r, "outbox load", &floor);
    parley__store_run_end(&r);
  }
  if (rc == PARLEY_OK) {
    s->ob_floor = floor;
    scratch = parley_malloc(PARLEY_OB_BATCH_MAX * sizeof *scratch);
    rc = scratch != NULL ? parley__store_run_start(s, s->stmt[ST_OBB_ALL], &r)
                         : PARLEY_ENOMEM;
  }
  if (rc == PARLEY_OK) {
    while (rc == PARLEY_OK && (src = sqlite3_step(r.st)) == SQLITE_ROW)
      rc = load_row(s, r.st, scratch);
    if (rc == PARLEY_OK && src != SQLITE_DONE)
      rc = parley__store_fail_sql(s, src, "outbox load");
    parley__store_run_end(&r);
  }
  parley_free(scratch);
  if (rc < 0)
    parley__ob_drop(s);
  else
    s->ob_stale = 0;
  return rc;
}

static int ready(struct parley_store *s) {
  return s->ob_stale ? parley__ob_load(s) : PARLEY_OK;
}

/* ---- Rows -------------------------------------------------------------------- */

static int row_delete(struct parley_store *s, int64_t id) {
  struct store_run r;
  int rc = parley__store_run_start(s, s->stmt[ST_OBB_DEL], &r);

  if (rc < 0)
    return rc;
  if (sqlite3_bind_int64(r.st, 1, id) != SQLITE_OK)
    rc = parley__store_fail_sql(s, sqlite3_errcode(s->db), "outbox batch");
  else
    rc = parley__store_exec(s, &r, "outbox batch", NULL);
  parley__store_run_end(&r);
  return rc;
}

/* The batch's unacked rowids as runs.  OUT: *runs (caller frees), *len. */
static int encode_left(const struct ob_batch *b, uint8_t **runs,
                       size_t *len) {
  int64_t *left = b->rowids;
  uint32_t k = 0;

  *runs = parley_malloc((size_t)b->left * PARLEY_OB_RUN);
  if (*runs == NULL)
    return PARLEY_ENOMEM;
  if (b->left < b->n) {
    left = parley_malloc((size_t)b->left * sizeof *left);
    if (left == NULL) {
      parley_free(*runs);
      *runs = NULL;
      return PARLEY_ENOMEM;
    }
    for (uint32_t i = 0; i < b->n; i++)
      if (!b->acked[i])
        left[k++] = b->rowids[i];
  }
  *len = parley__ob_encode(left, b->left, *runs);
  if (left != b->rowids)
    parley_free(left);
  return PARLEY_OK;
}

/* Writes the batch's row with its unacked deliveries: a new row (and
 * b->id) for a batch not written yet, the rowids of its row otherwise. */
static int row_save(struct parley_store *s, struct ob_batch *b) {
  struct store_run r;
  uint8_t *runs = NULL;
  size_t len = 0;
  int fresh = b->id == 0, src = SQLITE_OK, rc;

  rc = encode_left(b, &runs, &len);
  if (rc < 0)
    return rc;
  rc = parley__store_run_start(s, s->stmt[fresh ? ST_OBB_PUT : ST_OBB_SET],
                               &r);
  if (rc == PARLEY_OK) {
    if (fresh) {
      src = bind_blob(src, r.st, 1, b->r->pk, 32);
      src = bind_i64(src, r.st, 3, b->next_try);
      src = bind_i64(src, r.st, 4, b->created);
    } else {
      src = bind_i64(src, r.st, 1, b->id);
    }
    src = bind_blob(src, r.st, 2, runs, len);
    rc = src != SQLITE_OK ? parley__store_fail_sql(s, src, "outbox batch")
                          : parley__store_exec(s, &r, "outbox batch", NULL);
    parley__store_run_end(&r);
  }
  parley_free(runs);
  if (rc == PARLEY_OK && fresh)
    b->id = sqlite3_last_insert_rowid(s->db);
  return rc;
}

/* The batch's unacked deliveries become outbox rows; the batch goes. */
static int expand(struct parley_store *s, struct ob_batch *b) {
  struct store_run r;
  int rc = PARLEY_OK;

  for (uint32_t i = 0; rc == PARLEY_OK && i < b->n; i++) {
    int src = SQLITE_OK;
    if (b->acked[i])
      continue;
    rc = parley__store_run_start(s, s->stmt[ST_OB_PUT], &r);
    if (rc < 0)
      return rc;
    src = bind_i64(src, r.st, 1, b->rowids[i]);
    src = bind_blob(src, r.st, 2, b->r->pk, 32);
    src = bind_i64(src, r.st, 3, b->next_try);
    src = bind_i64(src, r.st, 4, b->created);
    if (src != SQLITE_OK)
      rc = parley__store_fail_sql(s, src, "outbox batch");
    else
      rc = parley__store_exec(s, &r, "outbox batch", NULL);
    parley__store_run_end(&r);
  }
  if (rc == PARLEY_OK && b->id != 0)
    rc = row_delete(s, b->id);
  if (rc == PARLEY_OK)
    batch_unlink(s, b);
  return rc;
}

/* ---- Entry points --------------------------------------------------------------- */

int parley__ob_add(struct parley_store *s, int64_t rowid,
                   const uint8_t recipient[32], int64_t now_ms) {
  struct ob_rcpt *r;
  struct ob_batch *b;
  int rc = ready(s);

  if (rc < 0)
    return rc;
  r = rcpt_get(s, recipient, 1);
  if (r == NULL)
    return PARLEY_ENOMEM;
  if (rowid <= r->top || !parley_store_in_tx(s)) {
    /* An outbox row; later adds must stay above it. */
    if (rowid > r->top)
      r->top = rowid;
    return 0;
  }
  b = r->open;
  if (b == NULL || b->n == PARLEY_OB_BATCH_MAX) {
    b = batch_new(s, r, now_ms, now_ms);
    if (b == NULL)
      return PARLEY_ENOMEM;
    r->open = b;
  }
  rc = batch_reserve(b, b->n + 1);
  if (rc < 0) {
    if (b->n == 0)
      batch_unlink(s, b);
    return rc;
  }
  b->rowids[b->n] = rowid;
  b->acked[b->n] = 0;
  b->n++;
  b->left++;
  r->left++;
  s->ob_left++;
  r->top = rowid;
  return 1;
}

/* Index of rowid in b, or -1. */
static long find(const struct ob_batch *b, int64_t rowid) {
  uint32_t lo = 0, hi = b->n;

  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (b->rowids[mid] < rowid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < b->n && b->rowids[lo] == rowid ? (long)lo : -1;
}

int parley__ob_ack(struct parley_store *s, const uint8_t recipient[32],
                   int64_t rowid) {
  struct ob_rcpt *r;
  struct ob_batch *b;
  long i = -1;
  int rc = ready(s);

  if (rc < 0)
    return rc;
  r = rcpt_get(s, recipient, 0);
  /* The recipient's batches hold ascending rowids, oldest first. */
  for (b = r ? r->first : NULL; b != NULL; b = b->rnext) {
    if (rowid < b->rowids[0])
      return 0;
    if (rowid <= b->rowids[b->n - 1]) {
      i = find(b, rowid);
      break;
    }
  }
  if (i < 0)
    return 0;
  if (b->acked[i])
    return PARLEY_ENOTFOUND;
  b->acked[i] = 1;
  b->left--;
  r->left--;
  s->ob_left--;
  if (b->left > 0 && b->id != 0) {
    /* Its row still names this delivery: rewritten at the commit, or
     * now when there is none to wait for. */
    if (!parley_store_in_tx(s)) {
      rc = row_save(s, b);
      return rc < 0 ? rc : 1;
    }
    if (!b->dirty) {
      b->dirty = 1;
      s->ob_dirty++;
    }
  }
  if (b->left > 0)
    return 1;
  /* The last one: a written batch's row goes, an unwritten one never is. */
  rc = b->id != 0 ? row_delete(s, b->id) : PARLEY_OK;
  if (rc == PARLEY_OK)
    batch_unlink(s, b);
  return rc < 0 ? rc : 1;
}

int parley__ob_has(struct parley_store *s, const uint8_t recipient[32]) {
  struct ob_rcpt *r;

  if (s->ob_stale)
    return 1; /* unknown until reloaded: the caller asks parley__ob_ack */
  r = rcpt_get(s, recipient, 0);
  return r != NULL && r->first != NULL;
}

int parley__ob_expand(struct parley_store *s, int64_t now_ms,
                      const uint8_t *recipient, int64_t created_before) {
  struct ob_batch *b, *next;
  int rc = ready(s);

  for (b = s->ob_first; rc == PARLEY_OK && b != NULL; b = next) {
    next = b->next;
    if (b->next_try <= now_ms || b->created < created_before ||
        (recipient != NULL && memcmp(b->r->pk, recipient, 32) == 0))
      rc = expand(s, b);
  }
  return rc;
}

int parley__ob_left(struct parley_store *s, uint64_t *n) {
  int rc = ready(s);

  *n = rc == PARLEY_OK ? s->ob_left : 0;
  return rc;
}

int parley__ob_flush(struct parley_store *s) {
  struct ob_batch *b, *next;
  int rc = PARLEY_OK;

  if (s->ob_stale)
    return PARLEY_OK; /* nothing unwritten survives a rollback */
  /* Unwritten batches were made in this transaction, after every written
   * one: they are the tail of the list. */
  for (b = s->ob_last; b != NULL && b->prev != NULL && b->prev->id == 0;)
    b = b->prev;
  for (; rc == PARLEY_OK && b != NULL; b = next) {
    next = b->next;
    if (b->id != 0)
      continue;
    b->r->open = NULL;
    rc = row_save(s, b);
  }
  /* Written batches acked in part: their rows keep only the rest. */
  for (b = s->ob_first; rc == PARLEY_OK && s->ob_dirty > 0 && b != NULL;
       b = b->next) {
    if (!b->dirty)
      continue;
    rc = row_save(s, b);
    if (rc == PARLEY_OK) {
      b->dirty = 0;
      s->ob_dirty--;
    }
  }
  return rc;
}

/* ---- Counts by recipient ------------------------------------------------------ */

struct rcount {
  uint8_t pk[32];
  uint64_t n;
};

static int rcount_cmp(const void *a, const void *b) {
  const struct rcount *x = a, *y = b;

  if (x->n != y->n)
    return x->n > y->n ? -1 : 1;
  return memcmp(x->pk, y->pk, 32);
}

/* Appends (pk, n) to *v. */
static int rcount_add(struct rcount **v, size_t *len, size_t *cap,
                      const uint8_t pk[32], uint64_t n) {
  if (*len == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    struct rcount *nv = parley_realloc(*v, c * sizeof *nv);
    if (nv == NULL)
      return PARLEY_ENOMEM;
    *v = nv;
    *cap = c;
  }
  memcpy((*v)[*len].pk, pk, 32);
  (*v)[*len].n = n;
  (*len)++;
  return PARLEY_OK;
}

int parley_store_outbox_by_recipient(struct parley_store *s, uint32_t limit,
                                     parley_store_count_cb cb, void *ctx) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  struct rcount *v = NULL;
  size_t len = 0, cap = 0;
  struct store_run r;
  int src, rc = ready(s);

  if (rc < 0)
    return rc;
  /* Every recipient's rows (a batch may lift one past the limit), then
   * the batches, then the order and the limit. */
  rc = parley__store_run_start(s, s->stmt[ST_OB_BY_RCPT], &r);
  if (rc < 0)
    return rc;
  while ((src = sqlite3_step(r.st)) == SQLITE_ROW) {
    const uint8_t *k = sqlite3_column_blob(r.st, 0);
    int64_t c = sqlite3_column_int64(r.st, 1);
    struct ob_rcpt *o;
    if (k == NULL || sqlite3_column_bytes(r.st, 0) != 32) {
      rc = parley__store_fail(s, PARLEY_ESTORE, "outbox_by_recipient",
                              "bad recipient column");
      break;
    }
    o = rcpt_get(s, k, 0);
    if (o != NULL)
      o->counted = 1;
    rc = rcount_add(&v, &len, &cap, k,
                    (c < 0 ? 0 : (uint64_t)c) + (o ? o->left : 0));
    if (rc < 0)
      break;
  }
  if (rc == PARLEY_OK && src != SQLITE_DONE)
    rc = parley__store_fail_sql(s, src, "outbox_by_recipient");
  parley__store_run_end(&r);
  /* Recipients with batches and no outbox row. */
  parley_map_iter_init(&it, &s->ob);
  while (rc == PARLEY_OK && (e = parley_map_iter_next(&it)) != NULL) {
    struct ob_rcpt *o = e->value;
    if (o->left > 0 && !o->counted)
      rc = rcount_add(&v, &len, &cap, o->pk, o->left);
  }
  parley_map_iter_init(&it, &s->ob);
  while ((e = parley_map_iter_next(&it)) != NULL)
    ((struct ob_rcpt *)e->value)->counted = 0;
  if (rc == PARLEY_OK && len > 1)
    qsort(v, len, sizeof *v, rcount_cmp);
  for (size_t i = 0; rc == PARLEY_OK && i < len && (limit == 0 || i < limit);
       i++)
    rc = cb(ctx, v[i].pk, v[i].n);
  parley_free(v);
  return rc;
}
