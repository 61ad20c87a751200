/*
 * store_pend.c — messages put inside a transaction, inserted a chunk at a
 * time (docs/internals/STORE.md, "Pending rows").
 *
 * One INSERT statement per row adds the statement's own set-up (cursors
 * on the table and its index, opened and closed each time) to the B-tree
 * inserts.  Inside a transaction, parley_store_put_message therefore keeps
 * the row here, with the rowid it will have, and PEND_CHUNK rows go in
 * with one multi-row INSERT; each run of PEND_CHUNK rows then gets one
 * span per (publisher, channel) among them (schema 9).  Whatever is
 * pending goes in before any other statement of the store runs (so every
 * read sees it) and before COMMIT.
 *
 * What put_message must answer at once, it answers from memory:
 *   - the rowid: taken from s->pend_next, max(rowid) + 1 read once per
 *     transaction, the value SQLite would have chosen;
 *   - "already stored" (EEXIST): s->hwm holds, per (publisher, channel)
 *     seen, a seq at least as high as any stored.  A message above it is
 *     new; one at or below it takes the ordinary path, which asks the
 *     table.  The mark may be too high (after a rollback), never too low:
 *     every insert raises it, and nothing deletes messages.  A process's
 *     own messages (outgoing) skip the check: their seqs come from the
 *     chain head and never repeat.
 * A pending row's insert can still fail (disk full, or a conflict that
 * would mean a bug above).  The put already answered success, so the
 * transaction must not commit: s->pend_failed makes the commit fail.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/limits.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_int.h"
#include "wire/wire.h"

#define PEND_CHUNK 64
#define PEND_COLS 10
/* Marks kept at most; past that a message goes the ordinary way. */
#define HWM_MAX 65536

struct pend_row {
  int64_t rowid, seq, ts, stored;
  uint32_t flags;
  uint8_t outgoing, has_chain;
  int64_t pub; /* publisher id (store_pub.c) */
  uint8_t chain[32];
  size_t ch_off, body_off; /* into s->pend_bytes */
  size_t ch_len, body_len;
};

/* The highest seq stored (or pending) from one publisher on one channel. */
struct pend_hwm {
  int64_t seq;
};

#define PEND_SQL_HEAD                                                          \
  "INSERT INTO messages (rowid, publisher, channel, seq, ts, flags, body,"     \
  " outgoing, stored, chain) VALUES "
#define PEND_SQL_ROW "(?,?,?,?,?,?,?,?,?,?)"

/* The statement that inserts n rows (1 or PEND_CHUNK), prepared on first
 * use. */
static int chunk_stmt(struct parley_store *s, size_t n, sqlite3_stmt **out) {
  sqlite3_stmt **slot = n == 1 ? &s->pend_st[0] : &s->pend_st[1];
  char sql[sizeof PEND_SQL_HEAD + PEND_CHUNK * sizeof PEND_SQL_ROW];
  size_t off;

  if (*slot == NULL) {
    memcpy(sql, PEND_SQL_HEAD, sizeof PEND_SQL_HEAD - 1);
    off = sizeof PEND_SQL_HEAD - 1;
    for (size_t i = 0; i < n; i++) {
      if (i > 0)
        sql[off++] = ',';
      memcpy(sql + off, PEND_SQL_ROW, sizeof PEND_SQL_ROW - 1);
      off += sizeof PEND_SQL_ROW - 1;
    }
    sql[off] = '\0';
    if (parley__store_prepare(s, sql, slot) < 0)
      return PARLEY_ESTORE;
  }
  *out = *slot;
  return PARLEY_OK;
}

static int bind_row(struct parley_store *s, sqlite3_stmt *st, int base,
                    const struct pend_row *p) {
  const uint8_t *bytes = s->pend_bytes;
  int src = SQLITE_OK;

  src = bind_i64(src, st, base + 1, p->rowid);
  src = bind_i64(src, st, base + 2, p->pub);
  src = bind_text(src, st, base + 3, (const char *)bytes + p->ch_off,
                  p->ch_len);
  src = bind_i64(src, st, base + 4, p->seq);
  src = bind_i64(src, st, base + 5, p->ts);
  src = bind_i64(src, st, base + 6, (int64_t)p->flags);
  src = bind_blob(src, st, base + 7, bytes + p->body_off, p->body_len);
  src = bind_i64(src, st, base + 8, p->outgoing);
  src = bind_i64(src, st, base + 9, p->stored);
  if (src == SQLITE_OK && !p->has_chain)
    src = sqlite3_bind_null(st, base + 10);
  else
    src = bind_blob(src, st, base + 10, p->chain, 32);
  return src;
}

/* Inserts rows [from, from + n) with one statement, then their text bodies
 * into the full-text index. */
static int insert_rows(struct parley_store *s, size_t from, size_t n) {
  sqlite3_stmt *st = NULL;
  int src = SQLITE_OK, rc;

  rc = chunk_stmt(s, n, &st);
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < n && src == SQLITE_OK; i++)
    src = bind_row(s, st, (int)(i * PEND_COLS), &s->pend[from + i]);
  if (src == SQLITE_OK)
    src = sqlite3_step(st);
  rc = src == SQLITE_DONE ? PARLEY_OK
                          : parley__store_fail_sql(s, src, "put_message");
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  for (size_t i = 0; i < n && rc == PARLEY_OK; i++) {
    const struct pend_row *p = &s->pend[from + i];
    struct parley_msg m;
    if (p->flags & PARLEY_MSG_BINARY)
      continue;
    memset(&m, 0, sizeof m);
    m.body = s->pend_bytes + p->body_off;
    m.body_len = p->body_len;
    rc = parley__store_put_text(s, p->rowid, &m);
  }
  return rc;
}

/* Writes the spans of rows [from, from + n), n at most PEND_CHUNK: one per
 * (publisher, channel) among them, so a span covers at most PEND_CHUNK
 * rowids and a query reads at most that many rows to find its part. */
static int put_spans(struct parley_store *s, size_t from, size_t n) {
  struct {
    const struct pend_row *first;
    int64_t hi, ts_lo, ts_hi;
  } g[PEND_CHUNK];
  const char *bytes = (const char *)s->pend_bytes;
  size_t ng = 0, j;
  int rc = PARLEY_OK;

  for (size_t i = from; i < from + n; i++) {
    const struct pend_row *p = &s->pend[i];
    for (j = 0; j < ng; j++)
      if (g[j].first->pub == p->pub && g[j].first->ch_len == p->ch_len &&
          memcmp(bytes + g[j].first->ch_off, bytes + p->ch_off, p->ch_len) ==
              0)
        break;
    if (j == ng) {
      g[ng].first = p;
      g[ng].ts_lo = g[ng].ts_hi = p->ts;
      ng++;
    }
    g[j].hi = p->rowid;
    g[j].ts_lo = p->ts < g[j].ts_lo ? p->ts : g[j].ts_lo;
    g[j].ts_hi = p->ts > g[j].ts_hi ? p->ts : g[j].ts_hi;
  }
  for (j = 0; j < ng && rc == PARLEY_OK; j++)
    rc = parley__store_span_put(s, g[j].first->pub, bytes + g[j].first->ch_off,
                                g[j].first->ch_len, g[j].first->rowid,
                                g[j].hi, g[j].ts_lo, g[j].ts_hi);
  return rc;
}

int parley__pend_flush(struct parley_store *s) {
  size_t done = 0, n;
  int rc = PARLEY_OK;

  if (s->npend == 0 || s->pend_flushing)
    return PARLEY_OK;
  s->pend_flushing = 1;
  while (rc == PARLEY_OK && done < s->npend) {
    n = s->npend - done >= PEND_CHUNK ? PEND_CHUNK : 1;
    rc = insert_rows(s, done, n);
    done += n;
  }
  for (done = 0; rc == PARLEY_OK && done < s->npend; done += n) {
    n = s->npend - done >= PEND_CHUNK ? PEND_CHUNK : s->npend - done;
    rc = put_spans(s, done, n);
  }
  s->pend_flushing = 0;
  s->npend = 0;
  s->pend_len = 0;
  if (rc < 0)
    s->pend_failed = 1;
  return rc;
}

/* Forgets the pending rows (a rollback undid them, or the commit is
 * done); the marks stay, since too high is safe. */
void parley__pend_drop(struct parley_store *s) {
  s->npend = 0;
  s->pend_len = 0;
  s->pend_next = 0;
  s->pend_failed = 0;
}

void parley__pend_free(struct parley_store *s) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley_map_iter_init(&it, &s->hwm);
  while ((e = parley_map_iter_next(&it)) != NULL)
    parley_free(e->value);
  parley_map_close(&s->hwm);
  sqlite3_finalize(s->pend_st[0]);
  sqlite3_finalize(s->pend_st[1]);
  s->pend_st[0] = s->pend_st[1] = NULL;
  parley_free(s->pend);
  parley_free(s->pend_bytes);
  s->pend = NULL;
  s->pend_bytes = NULL;
  s->pend_cap = s->pend_bytes_cap = 0;
  parley__pend_drop(s);
}

/* The highest seq stored from m's publisher on m's channel, -1 if none. */
static int seq_top(struct parley_store *s, const struct parley_msg *m,
                   int64_t *top) {
  struct store_run r = {0};
  int src = SQLITE_OK, rc;

  rc = parley__store_run_start(s, s->stmt[ST_SEQ_TOP], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(src, r.st, 1, m->publisher, 32);
  src = bind_text(src, r.st, 2, m->channel, m->channel_len);
  rc = src == SQLITE_OK ? parley__store_step_i64(s, &r, "put_message", top)
                        : parley__store_fail_sql(s, src, "put_message");
  parley__store_run_end(&r);
  return rc;
}

/* The map key of m's (publisher, channel).  Returns its length. */
static size_t hwm_key(const struct parley_msg *m,
                      uint8_t key[32 + PARLEY_MAX_TOPIC]) {
  memcpy(key, m->publisher, 32);
  memcpy(key + 32, m->channel, m->channel_len);
  return 32 + m->channel_len;
}

/* The mark for m's (publisher, channel) if one is loaded.  Most puts of a
 * process's own messages find no marks at all: no key, no hash. */
static struct pend_hwm *hwm_find(struct parley_store *s,
                                 const struct parley_msg *m) {
  uint8_t key[32 + PARLEY_MAX_TOPIC];

  if (s->hwm.count == 0)
    return NULL;
  return parley_map_get(&s->hwm, key, hwm_key(m, key));
}

/* The mark for m's (publisher, channel), read from the table the first
 * time.  OUT: *h. */
static int hwm_get(struct parley_store *s, const struct parley_msg *m,
                   struct pend_hwm **h) {
  uint8_t key[32 + PARLEY_MAX_TOPIC];
  size_t klen = hwm_key(m, key);
  int64_t top = -1;
  int rc;

  *h = parley_map_get(&s->hwm, key, klen);
  if (*h != NULL)
    return PARLEY_OK;
  if (s->hwm.count >= HWM_MAX)
    return PARLEY_ENOMEM;
  rc = seq_top(s, m, &top);
  if (rc < 0)
    return rc;
  *h = parley_malloc(sizeof **h);
  if (*h == NULL)
    return PARLEY_ENOMEM;
  (*h)->seq = top;
  if (parley_map_put(&s->hwm, key, klen, *h, NULL) < 0) {
    parley_free(*h);
    *h = NULL;
    return PARLEY_ENOMEM;
  }
  return PARLEY_OK;
}

void parley__pend_stored(struct parley_store *s, const struct parley_msg *m,
                         int64_t rowid) {
  struct pend_hwm *h = hwm_find(s, m);

  if (s->pend_next != 0 && rowid >= s->pend_next)
    s->pend_next = rowid + 1;
  if (h != NULL && (int64_t)m->seq > h->seq)
    h->seq = (int64_t)m->seq;
}

static int grow(struct parley_store *s, size_t bytes) {
  if (s->npend == s->pend_cap) {
    size_t cap = s->pend_cap ? s->pend_cap * 2 : PEND_CHUNK;
    struct pend_row *p = parley_realloc(s->pend, cap * sizeof *p);
    if (p == NULL)
      return PARLEY_ENOMEM;
    s->pend = p;
    s->pend_cap = cap;
  }
  if (s->pend_len + bytes > s->pend_bytes_cap) {
    size_t cap = s->pend_bytes_cap ? s->pend_bytes_cap : 16384;
    uint8_t *b;
    while (cap < s->pend_len + bytes)
      cap *= 2;
    b = parley_realloc(s->pend_bytes, cap);
    if (b == NULL)
      return PARLEY_ENOMEM;
    s->pend_bytes = b;
    s->pend_bytes_cap = cap;
  }
  return PARLEY_OK;
}

int parley__pend_put(struct parley_store *s, const struct parley_msg *m,
                     int64_t *rowid) {
  struct pend_hwm *h = NULL;
  struct pend_row *p;
  int64_t pub = 0;
  int rc;

  if (s->pend_failed)
    return PARLEY_EAGAIN; /* the ordinary path reports the state */
  if (!m->outgoing) {
    rc = hwm_get(s, m, &h);
    if (rc < 0)
      return rc == PARLEY_ENOMEM ? PARLEY_EAGAIN : rc;
    if ((int64_t)m->seq <= h->seq)
      return PARLEY_EAGAIN; /* may be stored: ask the table */
  }
  if (s->pend_next == 0) {
    uint64_t top = 0;
    rc = parley__store_count(s, ST_ROWID_TOP, "put_message", &top);
    if (rc < 0)
      return rc;
    s->pend_next = (int64_t)top + 1;
  }
  rc = parley__store_pub_id(s, m->publisher, &pub);
  if (rc < 0)
    return rc;
  if (grow(s, m->channel_len + m->body_len) < 0)
    return PARLEY_EAGAIN;
  p = &s->pend[s->npend];
  p->rowid = s->pend_next;
  p->seq = (int64_t)m->seq;
  p->ts = m->ts_ms;
  p->stored = m->stored_ms != 0 ? m->stored_ms : parley_now_ms();
  p->flags = m->flags;
  p->outgoing = m->outgoing != 0;
  p->pub = pub;
  p->has_chain = m->chain != NULL;
  if (m->chain != NULL)
    memcpy(p->chain, m->chain, 32);
  p->ch_off = s->pend_len;
  p->ch_len = m->channel_len;
  memcpy(s->pend_bytes + s->pend_len, m->channel, m->channel_len);
  s->pend_len += m->channel_len;
  p->body_off = s->pend_len;
  p->body_len = m->body_len;
  if (m->body_len > 0)
    memcpy(s->pend_bytes + s->pend_len, m->body, m->body_len);
  s->pend_len += m->body_len;
  s->npend++;
  s->pend_next++;
  if (h == NULL)
    h = hwm_find(s, m); /* an own message: keep a loaded mark exact */
  if (h != NULL && p->seq > h->seq)
    h->seq = p->seq;
  *rowid = p->rowid;
  if (s->npend >= PEND_CHUNK)
    (void)parley__pend_flush(s); /* a failure fails the commit */
  return PARLEY_OK;
}
