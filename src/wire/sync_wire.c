/*
 * sync_wire.c — CHAIN_SIG and SYNC_* payload codecs (layouts and rules in
 * sync_wire.h).  Like wire.c: no allocation, no state, strict decoders,
 * encoders that refuse whatever the decoders would refuse.
 */
#include "wire/sync_wire.h"
#include "wire/codec_int.h"

#include <string.h>

#define KEY 32u
#define SIG PARLEY_SYNC_SIG_LEN
#define ENTRY_FLAGS (PARLEY_MSG_DIRECT | PARLEY_MSG_BINARY | PARLEY_MSG_PRIVATE)

static const uint8_t zeros[SIG];

/* Runs emit twice: once to measure, once to write. */
typedef int (*emit_fn)(struct parley__wr *w, const void *m);

static int encode(emit_fn emit, const void *m, uint8_t *buf, size_t cap,
                  size_t *written) {
  struct parley__wr w = {NULL, 0, 0, 0};
  int rc;

  *written = 0;
  rc = emit(&w, m);
  if (rc < 0)
    return rc;
  if (buf == NULL || w.n > cap) {
    *written = w.n;
    return PARLEY_ETOOBIG;
  }
  w.p = buf;
  w.cap = cap;
  w.n = 0;
  rc = emit(&w, m);
  if (rc < 0)
    return rc;
  if (w.too_big)
    return PARLEY_EINTERNAL; /* the message changed between the passes */
  *written = w.n;
  return PARLEY_OK;
}

/* ---- CHAIN_SIG ----------------------------------------------------------- */

static int emit_chain_sig(struct parley__wr *w, const void *v) {
  const struct parley_sync_chain_sig *m = v;
  int rc = parley__str8_check(&m->channel);
  if (rc < 0)
    return rc;
  if (m->publisher == NULL || m->hash == NULL || m->sig == NULL ||
      m->seq == 0)
    return PARLEY_EINVAL;
  parley__wr_bytes(w, m->publisher, KEY);
  parley__wr_str8(w, &m->channel);
  parley__wr_be(w, m->seq, 8);
  parley__wr_bytes(w, m->hash, KEY);
  parley__wr_bytes(w, m->sig, SIG);
  return PARLEY_OK;
}

int parley_sync_chain_sig_encode(const struct parley_sync_chain_sig *m,
                                 uint8_t *buf, size_t cap, size_t *written) {
  return encode(emit_chain_sig, m, buf, cap, written);
}

int parley_sync_chain_sig_decode(const uint8_t *buf, size_t len,
                                 struct parley_sync_chain_sig *out) {
  struct parley__rd r = {buf, len, buf == NULL && len > 0};

  memset(out, 0, sizeof *out);
  out->publisher = parley__rd_take(&r, KEY);
  parley__rd_str8(&r, &out->channel);
  out->seq = parley__rd_be(&r, 8);
  out->hash = parley__rd_take(&r, KEY);
  out->sig = parley__rd_take(&r, SIG);
  if (r.bad || r.left != 0 || out->seq == 0) {
    memset(out, 0, sizeof *out);
    return PARLEY_EPROTO;
  }
  return PARLEY_OK;
}

/* ---- SYNC_QUERY ---------------------------------------------------------- */

static int emit_query(struct parley__wr *w, const void *v) {
  const struct parley_sync_query *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  parley__wr_be(w, m->req, 4);
  parley__wr_str8(w, &m->topic);
  return PARLEY_OK;
}

int parley_sync_query_encode(const struct parley_sync_query *m, uint8_t *buf,
                             size_t cap, size_t *written) {
  return encode(emit_query, m, buf, cap, written);
}

int parley_sync_query_decode(const uint8_t *buf, size_t len,
                             struct parley_sync_query *out) {
  struct parley__rd r = {buf, len, buf == NULL && len > 0};

  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  parley__rd_str8(&r, &out->topic);
  if (r.bad || r.left != 0) {
    memset(out, 0, sizeof *out);
    return PARLEY_EPROTO;
  }
  return PARLEY_OK;
}

/* ---- SYNC_SUMMARY -------------------------------------------------------- */

static void rd_summary_entry(struct parley__rd *r,
                             struct parley_sync_summary_entry *e) {
  e->publisher = parley__rd_take(r, KEY);
  e->max_seq = parley__rd_be(r, 8);
  e->signed_seq = parley__rd_be(r, 8);
}

static int emit_summary(struct parley__wr *w, const void *v) {
  const struct parley_sync_summary *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  if (m->count > PARLEY_SYNC_MAX_SUMMARY)
    return PARLEY_ETOOBIG;
  parley__wr_be(w, m->req, 4);
  parley__wr_str8(w, &m->topic);
  parley__wr_be(w, m->count, 4);
  if (m->entries != NULL) {
    for (uint32_t i = 0; i < m->count; i++) {
      if (m->entries[i].publisher == NULL)
        return PARLEY_EINVAL;
      parley__wr_bytes(w, m->entries[i].publisher, KEY);
      parley__wr_be(w, m->entries[i].max_seq, 8);
      parley__wr_be(w, m->entries[i].signed_seq, 8);
    }
    return PARLEY_OK;
  }
  if (m->raw_len != (size_t)m->count * PARLEY_SYNC_SUMMARY_ENTRY ||
      (m->raw == NULL && m->raw_len > 0))
    return PARLEY_EINVAL;
  parley__wr_bytes(w, m->raw, m->raw_len);
  return PARLEY_OK;
}

int parley_sync_summary_encode(const struct parley_sync_summary *m,
                               uint8_t *buf, size_t cap, size_t *written) {
  return encode(emit_summary, m, buf, cap, written);
}

int parley_sync_summary_decode(const uint8_t *buf, size_t len,
                               struct parley_sync_summary *out) {
  struct parley__rd r = {buf, len, buf == NULL && len > 0};
  size_t n;

  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  parley__rd_str8(&r, &out->topic);
  out->count = (uint32_t)parley__rd_be(&r, 4);
  n = (size_t)out->count * PARLEY_SYNC_SUMMARY_ENTRY;
  if (r.bad || out->count > PARLEY_SYNC_MAX_SUMMARY || r.left != n) {
    memset(out, 0, sizeof *out);
    return PARLEY_EPROTO;
  }
  out->raw = r.p;
  out->raw_len = n;
  return PARLEY_OK;
}

int parley_sync_summary_next(const uint8_t **cursor, size_t *left,
                             struct parley_sync_summary_entry *out) {
  struct parley__rd r = {*cursor, *left, 0};

  memset(out, 0, sizeof *out);
  if (*left == 0 || *cursor == NULL)
    return 0;
  rd_summary_entry(&r, out);
  if (r.bad) {
    memset(out, 0, sizeof *out);
    return 0;
  }
  *cursor = r.p;
  *left = r.left;
  return 1;
}

/* ---- SYNC_FETCH ---------------------------------------------------------- */

static int emit_fetch(struct parley__wr *w, const void *v) {
  const struct parley_sync_fetch *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  if (m->publisher == NULL || m->from == 0 || m->to < m->from)
    return PARLEY_EINVAL;
  parley__wr_be(w, m->req, 4);
  parley__wr_str8(w, &m->topic);
  parley__wr_bytes(w, m->publisher, KEY);
  parley__wr_be(w, m->from, 8);
  parley__wr_be(w, m->to, 8);
  return PARLEY_OK;
}

int parley_sync_fetch_encode(const struct parley_sync_fetch *m, uint8_t *buf,
                             size_t cap, size_t *written) {
  return encode(emit_fetch, m, buf, cap, written);
}

int parley_sync_fetch_decode(const uint8_t *buf, size_t len,
                             struct parley_sync_fetch *out) {
  struct parley__rd r = {buf, len, buf == NULL && len > 0};

  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  parley__rd_str8(&r, &out->topic);
  out->publisher = parley__rd_take(&r, KEY);
  out->from = parley__rd_be(&r, 8);
  out->to = parley__rd_be(&r, 8);
  if (r.bad || r.left != 0 || out->from == 0 || out->to < out->from) {
    memset(out, 0, sizeof *out);
    return PARLEY_EPROTO;
  }
  return PARLEY_OK;
}

/* ---- SYNC_BATCH ---------------------------------------------------------- */

/* Reads one entry; marks r bad if it is malformed. */
static void rd_entry(struct parley__rd *r, struct parley_sync_entry *e) {
  memset(e, 0, sizeof *e);
  e->kind = (uint8_t)parley__rd_be(r, 1);
  if (r->bad)
    return;
  if (e->kind == PARLEY_SYNC_ENTRY_MSG) {
    e->ts_ms = parley__rd_be(r, 8);
    e->flags = (uint8_t)parley__rd_be(r, 1);
    e->body_len = (uint32_t)parley__rd_be(r, 4);
    e->body = parley__rd_take(r, e->body_len);
    if (e->flags & ~ENTRY_FLAGS)
      r->bad = 1;
  } else if (e->kind == PARLEY_SYNC_ENTRY_DIGEST) {
    e->digest = parley__rd_take(r, KEY);
  } else {
    r->bad = 1;
  }
}

size_t parley_sync_entry_size(const struct parley_sync_entry *e) {
  if (e->kind == PARLEY_SYNC_ENTRY_DIGEST)
    return PARLEY_SYNC_DIGEST_ENTRY;
  return PARLEY_SYNC_MSG_ENTRY_MIN + (size_t)e->body_len;
}

static int emit_entry(struct parley__wr *w, const void *v) {
  const struct parley_sync_entry *e = v;
  if (e->kind == PARLEY_SYNC_ENTRY_MSG) {
    if ((e->flags & ~ENTRY_FLAGS) || (e->body == NULL && e->body_len > 0))
      return PARLEY_EINVAL;
    parley__wr_be(w, PARLEY_SYNC_ENTRY_MSG, 1);
    parley__wr_be(w, e->ts_ms, 8);
    parley__wr_be(w, e->flags, 1);
    parley__wr_be(w, e->body_len, 4);
    parley__wr_bytes(w, e->body, e->body_len);
    return PARLEY_OK;
  }
  if (e->kind == PARLEY_SYNC_ENTRY_DIGEST) {
    if (e->digest == NULL)
      return PARLEY_EINVAL;
    parley__wr_be(w, PARLEY_SYNC_ENTRY_DIGEST, 1);
    parley__wr_bytes(w, e->digest, KEY);
    return PARLEY_OK;
  }
  return PARLEY_EINVAL;
}

int parley_sync_entry_encode(const struct parley_sync_entry *e, uint8_t *buf,
                             size_t cap, size_t *written) {
  return encode(emit_entry, e, buf, cap, written);
}

/* Checks that raw holds exactly count valid entries. */
static int entries_ok(const uint8_t *raw, size_t len, uint32_t count) {
  struct parley__rd r = {raw, len, raw == NULL && len > 0};
  struct parley_sync_entry e;

  for (uint32_t i = 0; i < count && !r.bad; i++)
    rd_entry(&r, &e);
  return !r.bad && r.left == 0;
}

/* The header rules shared by both directions (see sync_wire.h). */
static int batch_header_ok(uint64_t from, uint64_t cp_seq, uint32_t count,
                           const uint8_t *prev, const uint8_t *cp_hash,
                           const uint8_t *cp_sig) {
  if (count > PARLEY_SYNC_MAX_BATCH)
    return 0;
  if (count == 0)
    return from == 0 && cp_seq == 0 &&
           (prev == NULL || memcmp(prev, zeros, KEY) == 0) &&
           (cp_hash == NULL || memcmp(cp_hash, zeros, KEY) == 0) &&
           (cp_sig == NULL || memcmp(cp_sig, zeros, SIG) == 0);
  if (prev == NULL || cp_hash == NULL || cp_sig == NULL)
    return 0;
  return from >= 1 && from <= UINT64_MAX - (count - 1) &&
         cp_seq == from + (count - 1);
}

static int emit_batch(struct parley__wr *w, const void *v) {
  const struct parley_sync_batch *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  if (m->count > PARLEY_SYNC_MAX_BATCH)
    return PARLEY_ETOOBIG;
  if (m->publisher == NULL ||
      !batch_header_ok(m->from, m->cp_seq, m->count, m->prev, m->cp_hash,
                       m->cp_sig) ||
      !entries_ok(m->raw, m->raw_len, m->count))
    return PARLEY_EINVAL;
  parley__wr_be(w, m->req, 4);
  parley__wr_str8(w, &m->topic);
  parley__wr_bytes(w, m->publisher, KEY);
  parley__wr_be(w, m->from, 8);
  parley__wr_bytes(w, m->prev, KEY); /* NULL writes zeros (count 0 only) */
  parley__wr_be(w, m->cp_seq, 8);
  parley__wr_bytes(w, m->cp_hash, KEY);
  parley__wr_bytes(w, m->cp_sig, SIG);
  parley__wr_be(w, m->count, 4);
  parley__wr_bytes(w, m->raw, m->raw_len);
  return PARLEY_OK;
}

int parley_sync_batch_encode(const struct parley_sync_batch *m, uint8_t *buf,
                             size_t cap, size_t *written) {
  return encode(emit_batch, m, buf, cap, written);
}

int parley_sync_batch_decode(const uint8_t *buf, size_t len,
                             struct parley_sync_batch *out) {
  struct parley__rd r = {buf, len, buf == NULL && len > 0};

  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  parley__rd_str8(&r, &out->topic);
  out->publisher = parley__rd_take(&r, KEY);
  out->from = parley__rd_be(&r, 8);
  out->prev = parley__rd_take(&r, KEY);
  out->cp_seq = parley__rd_be(&r, 8);
  out->cp_hash = parley__rd_take(&r, KEY);
  out->cp_sig = parley__rd_take(&r, SIG);
  out->count = (uint32_t)parley__rd_be(&r, 4);
  if (r.bad ||
      !batch_header_ok(out->from, out->cp_seq, out->count, out->prev,
                       out->cp_hash, out->cp_sig) ||
      !entries_ok(r.p, r.left, out->count)) {
    memset(out, 0, sizeof *out);
    return PARLEY_EPROTO;
  }
  out->raw = r.left > 0 ? r.p : NULL;
  out->raw_len = r.left;
  return PARLEY_OK;
}

int parley_sync_entry_next(const uint8_t **cursor, size_t *left,
                           struct parley_sync_entry *out) {
  struct parley__rd r = {*cursor, *left, 0};

  memset(out, 0, sizeof *out);
  if (*left == 0 || *cursor == NULL)
    return 0;
  rd_entry(&r, out);
  if (r.bad) {
    memset(out, 0, sizeof *out);
    return 0;
  }
  *cursor = r.p;
  *left = r.left;
  return 1;
}
