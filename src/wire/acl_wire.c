/*
 * acl_wire.c — payload codecs of the private-topic frames (layouts and
 * rules in acl_wire.h).  No allocation, no state; the decoders are strict
 * and the encoders refuse whatever the decoders would refuse, so the codec
 * is canonical.
 */
#include "wire/acl_wire.h"
#include "wire/codec_int.h"

#include <string.h>

#define KEY 32u
#define SIG PARLEY_ACL_SIG_LEN

/* bytes16 of 1..max bytes. */
static const uint8_t *get_bytes16(struct parley__rd *r, size_t max, size_t *len) {
  size_t n = (size_t)parley__rd_be(r, 2);
  const uint8_t *p;
  if (!r->bad && (n == 0 || n > max))
    r->bad = 1;
  p = parley__rd_take(r, n);
  *len = p != NULL ? n : 0;
  return p;
}

static int bytes16_check(const uint8_t *p, size_t len, size_t max) {
  if (len > max)
    return PARLEY_ETOOBIG;
  return p == NULL || len == 0 ? PARLEY_EINVAL : PARLEY_OK;
}

static void put_bytes16(struct parley__wr *w, const uint8_t *p, size_t len) {
  parley__wr_be(w, len, 2);
  parley__wr_bytes(w, p, len);
}

typedef int (*emit_fn)(struct parley__wr *w, const void *m);

/* Runs emit once to measure, then once to write. */
static int encode(emit_fn emit, const void *m, uint8_t *buf, size_t cap,
                  size_t *written) {
  struct parley__wr w = {NULL, 0, 0, 0};
  int rc;

  *written = 0;
  if ((rc = emit(&w, m)) < 0)
    return rc;
  if (buf == NULL || w.n > cap) {
    *written = w.n;
    return PARLEY_ETOOBIG;
  }
  w.p = buf;
  w.cap = cap;
  w.n = 0;
  if ((rc = emit(&w, m)) < 0)
    return rc;
  if (w.too_big)
    return PARLEY_EINTERNAL; /* the message changed between the passes */
  *written = w.n;
  return PARLEY_OK;
}

/* Common decoder tail: the whole payload used and nothing bad. */
static int finish(const struct parley__rd *r, int ok, void *out, size_t size) {
  if (r->bad || r->left != 0 || !ok) {
    memset(out, 0, size);
    return PARLEY_EPROTO;
  }
  return PARLEY_OK;
}

#define RD_INIT(buf, len) {(buf), (len), (buf) == NULL && (len) > 0}

/* ---- TOPIC_CTL ---------------------------------------------------------- */

static int emit_topic_ctl(struct parley__wr *w, const void *v) {
  const struct parley_acl_topic_ctl *m = v;
  int rc = bytes16_check(m->grant, m->grant_len, PARLEY_ACL_GRANT_MAX);
  if (rc < 0)
    return rc;
  parley__wr_be(w, m->req, 4);
  put_bytes16(w, m->grant, m->grant_len);
  return PARLEY_OK;
}

int parley_acl_topic_ctl_encode(const struct parley_acl_topic_ctl *m,
                                uint8_t *buf, size_t cap, size_t *written) {
  return encode(emit_topic_ctl, m, buf, cap, written);
}

int parley_acl_topic_ctl_decode(const uint8_t *buf, size_t len,
                                struct parley_acl_topic_ctl *out) {
  struct parley__rd r = RD_INIT(buf, len);
  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  out->grant = get_bytes16(&r, PARLEY_ACL_GRANT_MAX, &out->grant_len);
  return finish(&r, 1, out, sizeof *out);
}

/* ---- KEY_PUT ------------------------------------------------------------- */

static int emit_key_put(struct parley__wr *w, const void *v) {
  const struct parley_acl_key_put *m = v;
  int rc = bytes16_check(m->blob, m->blob_len, PARLEY_ACL_BLOB_MAX);
  if (rc < 0)
    return rc;
  if (m->sig == NULL)
    return PARLEY_EINVAL;
  parley__wr_be(w, m->req, 4);
  put_bytes16(w, m->blob, m->blob_len);
  parley__wr_bytes(w, m->sig, SIG);
  return PARLEY_OK;
}

int parley_acl_key_put_encode(const struct parley_acl_key_put *m, uint8_t *buf,
                              size_t cap, size_t *written) {
  return encode(emit_key_put, m, buf, cap, written);
}

int parley_acl_key_put_decode(const uint8_t *buf, size_t len,
                              struct parley_acl_key_put *out) {
  struct parley__rd r = RD_INIT(buf, len);
  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  out->blob = get_bytes16(&r, PARLEY_ACL_BLOB_MAX, &out->blob_len);
  out->sig = parley__rd_take(&r, SIG);
  return finish(&r, 1, out, sizeof *out);
}

/* ---- KEY_GET ------------------------------------------------------------- */

static int emit_key_get(struct parley__wr *w, const void *v) {
  const struct parley_acl_key_get *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  parley__wr_be(w, m->req, 4);
  parley__wr_str8(w, &m->topic);
  parley__wr_be(w, m->min_epoch, 4);
  return PARLEY_OK;
}

int parley_acl_key_get_encode(const struct parley_acl_key_get *m, uint8_t *buf,
                              size_t cap, size_t *written) {
  return encode(emit_key_get, m, buf, cap, written);
}

int parley_acl_key_get_decode(const uint8_t *buf, size_t len,
                              struct parley_acl_key_get *out) {
  struct parley__rd r = RD_INIT(buf, len);
  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  parley__rd_str8(&r, &out->topic);
  out->min_epoch = (uint32_t)parley__rd_be(&r, 4);
  return finish(&r, 1, out, sizeof *out);
}

/* ---- KEYS ---------------------------------------------------------------- */

static int emit_keys(struct parley__wr *w, const void *v) {
  const struct parley_acl_keys *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  if (m->count > PARLEY_ACL_MAX_KEYS)
    return PARLEY_ETOOBIG;
  if (m->epoch == 0)
    return PARLEY_EINVAL;
  for (unsigned i = 0; i < m->count; i++)
    if ((rc = bytes16_check(m->keys[i].ptr, m->keys[i].len,
                            PARLEY_ACL_BLOB_MAX)) < 0)
      return rc;
  parley__wr_be(w, m->req, 4);
  parley__wr_str8(w, &m->topic);
  parley__wr_be(w, m->epoch, 4);
  parley__wr_be(w, m->count, 1);
  for (unsigned i = 0; i < m->count; i++)
    put_bytes16(w, m->keys[i].ptr, m->keys[i].len);
  return PARLEY_OK;
}

int parley_acl_keys_encode(const struct parley_acl_keys *m, uint8_t *buf,
                           size_t cap, size_t *written) {
  return encode(emit_keys, m, buf, cap, written);
}

int parley_acl_keys_decode(const uint8_t *buf, size_t len,
                           struct parley_acl_keys *out) {
  struct parley__rd r = RD_INIT(buf, len);
  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  parley__rd_str8(&r, &out->topic);
  out->epoch = (uint32_t)parley__rd_be(&r, 4);
  out->count = (uint8_t)parley__rd_be(&r, 1);
  if (out->count > PARLEY_ACL_MAX_KEYS)
    r.bad = 1;
  for (unsigned i = 0; !r.bad && i < out->count; i++)
    out->keys[i].ptr =
        get_bytes16(&r, PARLEY_ACL_BLOB_MAX, &out->keys[i].len);
  return finish(&r, out->epoch >= 1, out, sizeof *out);
}

/* ---- MEMBERS_GET --------------------------------------------------------- */

static int emit_members_get(struct parley__wr *w, const void *v) {
  const struct parley_acl_members_get *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  parley__wr_be(w, m->req, 4);
  parley__wr_str8(w, &m->topic);
  return PARLEY_OK;
}

int parley_acl_members_get_encode(const struct parley_acl_members_get *m,
                                  uint8_t *buf, size_t cap, size_t *written) {
  return encode(emit_members_get, m, buf, cap, written);
}

int parley_acl_members_get_decode(const uint8_t *buf, size_t len,
                                  struct parley_acl_members_get *out) {
  struct parley__rd r = RD_INIT(buf, len);
  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  parley__rd_str8(&r, &out->topic);
  return finish(&r, 1, out, sizeof *out);
}

/* ---- MEMBERS ------------------------------------------------------------- */

/* 1 if count keys of 32 bytes at p are strictly ascending. */
static int keys_ascending(const uint8_t *p, uint32_t count) {
  for (uint32_t i = 1; i < count; i++)
    if (memcmp(p + (size_t)(i - 1) * KEY, p + (size_t)i * KEY, KEY) >= 0)
      return 0;
  return 1;
}

static int emit_members(struct parley__wr *w, const void *v) {
  const struct parley_acl_members *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  if (m->count > PARLEY_ACL_MAX_MEMBERS)
    return PARLEY_ETOOBIG;
  if (m->owner == NULL || m->members == NULL || m->count == 0 ||
      m->epoch == 0 || m->counter == 0 || !keys_ascending(m->members, m->count))
    return PARLEY_EINVAL;
  parley__wr_be(w, m->req, 4);
  parley__wr_str8(w, &m->topic);
  parley__wr_bytes(w, m->owner, KEY);
  parley__wr_be(w, m->epoch, 4);
  parley__wr_be(w, m->counter, 8);
  parley__wr_be(w, m->count, 4);
  parley__wr_bytes(w, m->members, (size_t)m->count * KEY);
  return PARLEY_OK;
}

int parley_acl_members_encode(const struct parley_acl_members *m,
                              uint8_t *buf, size_t cap, size_t *written) {
  return encode(emit_members, m, buf, cap, written);
}

int parley_acl_members_decode(const uint8_t *buf, size_t len,
                              struct parley_acl_members *out) {
  struct parley__rd r = RD_INIT(buf, len);
  int ok;

  memset(out, 0, sizeof *out);
  out->req = (uint32_t)parley__rd_be(&r, 4);
  parley__rd_str8(&r, &out->topic);
  out->owner = parley__rd_take(&r, KEY);
  out->epoch = (uint32_t)parley__rd_be(&r, 4);
  out->counter = parley__rd_be(&r, 8);
  out->count = (uint32_t)parley__rd_be(&r, 4);
  /* The count is checked before it sizes a read. */
  if (out->count == 0 || out->count > PARLEY_ACL_MAX_MEMBERS)
    r.bad = 1;
  out->members = parley__rd_take(&r, (size_t)out->count * KEY);
  ok = !r.bad && out->epoch >= 1 && out->counter >= 1 &&
       keys_ascending(out->members, out->count);
  return finish(&r, ok, out, sizeof *out);
}

/* ---- ACL_EVENT ----------------------------------------------------------- */

static int kind_ok(uint8_t kind) {
  return kind >= PARLEY_ACL_EV_CREATE && kind <= PARLEY_ACL_EV_KEY;
}

static int emit_event(struct parley__wr *w, const void *v) {
  const struct parley_acl_event *m = v;
  int rc = parley__str8_check(&m->topic);
  if (rc < 0)
    return rc;
  if (!kind_ok(m->kind) || m->member == NULL || m->epoch == 0)
    return PARLEY_EINVAL;
  parley__wr_str8(w, &m->topic);
  parley__wr_be(w, m->kind, 1);
  parley__wr_bytes(w, m->member, KEY);
  parley__wr_be(w, m->epoch, 4);
  return PARLEY_OK;
}

int parley_acl_event_encode(const struct parley_acl_event *m, uint8_t *buf,
                            size_t cap, size_t *written) {
  return encode(emit_event, m, buf, cap, written);
}

int parley_acl_event_decode(const uint8_t *buf, size_t len,
                            struct parley_acl_event *out) {
  struct parley__rd r = RD_INIT(buf, len);
  memset(out, 0, sizeof *out);
  parley__rd_str8(&r, &out->topic);
  out->kind = (uint8_t)parley__rd_be(&r, 1);
  out->member = parley__rd_take(&r, KEY);
  out->epoch = (uint32_t)parley__rd_be(&r, 4);
  return finish(&r, kind_ok(out->kind) && out->epoch >= 1, out, sizeof *out);
}

/* ---- KEY_PUT signature input --------------------------------------------- */

int parley_acl_key_put_signed_data(const uint8_t *blob, size_t len,
                                   uint8_t *buf, size_t cap, size_t *written) {
  static const char label[] = PARLEY_ACL_KEY_PUT_LABEL;

  *written = 0;
  if (blob == NULL || len == 0 || len > PARLEY_ACL_BLOB_MAX)
    return PARLEY_EINVAL;
  if (cap < sizeof label + len)
    return PARLEY_ETOOBIG;
  memcpy(buf, label, sizeof label);
  memcpy(buf + sizeof label, blob, len);
  *written = sizeof label + len;
  return PARLEY_OK;
}
