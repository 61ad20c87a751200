/* raft_wire.c — RAFT_OPEN / RAFT_DATA payloads (layout in raft_wire.h). */
#include "wire/raft_wire.h"

#include <string.h>

_Static_assert(PARLEY_RAFT_OPEN_MIN == 44, "RAFT_OPEN minimum size");
_Static_assert(PARLEY_RAFT_OPEN_MAX == 331, "RAFT_OPEN maximum size");
_Static_assert(PARLEY_RAFT_PROOF_INPUT_LEN == 91, "proof input size");
_Static_assert(sizeof(PARLEY_RAFT_PROOF_LABEL) - 1 ==
                   PARLEY_RAFT_PROOF_LABEL_LEN,
               "proof label length");

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

/* 1 if s is min..PARLEY_RAFT_MAX_ADDR bytes of 0x21..0x7e. */
static int addr_ok(const char *s, size_t len, size_t min) {
  if (len < min || len > PARLEY_RAFT_MAX_ADDR || (len > 0 && s == NULL))
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
      return 0;
  return 1;
}

int parley_raft_open_encode(const struct parley_raft_open *o, uint8_t *buf,
                            size_t cap, size_t *written) {
  const struct parley_str *s[3] = {&o->raft_addr, &o->listen_addr,
                                   &o->http_addr};
  size_t need = 8 + PARLEY_RAFT_PROOF_LEN, off;

  *written = 0;
  if (o->raft_id == 0 || o->proof == NULL ||
      !addr_ok(o->raft_addr.ptr, o->raft_addr.len, 1) ||
      !addr_ok(o->listen_addr.ptr, o->listen_addr.len, 0) ||
      !addr_ok(o->http_addr.ptr, o->http_addr.len, 0))
    return PARLEY_EINVAL;
  for (int i = 0; i < 3; i++)
    need += 1 + s[i]->len;
  if (buf == NULL || cap < need) {
    *written = need;
    return PARLEY_ETOOBIG;
  }
  put_u64(buf, o->raft_id);
  off = 8;
  for (int i = 0; i < 3; i++) {
    buf[off++] = (uint8_t)s[i]->len;
    if (s[i]->len > 0)
      memcpy(buf + off, s[i]->ptr, s[i]->len);
    off += s[i]->len;
  }
  memcpy(buf + off, o->proof, PARLEY_RAFT_PROOF_LEN);
  *written = off + PARLEY_RAFT_PROOF_LEN;
  return PARLEY_OK;
}

int parley_raft_open_decode(const uint8_t *buf, size_t len,
                            struct parley_raft_open *out) {
  struct parley_str *s[3] = {&out->raft_addr, &out->listen_addr,
                             &out->http_addr};
  size_t off = 8;

  memset(out, 0, sizeof *out);
  if (buf == NULL || len < PARLEY_RAFT_OPEN_MIN || len > PARLEY_RAFT_OPEN_MAX)
    return PARLEY_EPROTO;
  out->raft_id = get_u64(buf);
  for (int i = 0; i < 3; i++) {
    size_t n;
    if (off >= len)
      goto bad;
    n = buf[off++];
    if (n > len - off || !addr_ok((const char *)buf + off, n, i == 0 ? 1 : 0))
      goto bad;
    s[i]->ptr = n > 0 ? (const char *)buf + off : "";
    s[i]->len = n;
    off += n;
  }
  if (len - off != PARLEY_RAFT_PROOF_LEN || out->raft_id == 0)
    goto bad;
  out->proof = buf + off;
  return PARLEY_OK;
bad:
  memset(out, 0, sizeof *out);
  return PARLEY_EPROTO;
}

void parley_raft_proof_input(const uint8_t binding[PARLEY_RAFT_BINDING_LEN],
                             uint8_t side, uint64_t raft_id,
                             uint8_t out[PARLEY_RAFT_PROOF_INPUT_LEN]) {
  memcpy(out, PARLEY_RAFT_PROOF_LABEL, PARLEY_RAFT_PROOF_LABEL_LEN);
  memcpy(out + PARLEY_RAFT_PROOF_LABEL_LEN, binding, PARLEY_RAFT_BINDING_LEN);
  out[PARLEY_RAFT_PROOF_LABEL_LEN + PARLEY_RAFT_BINDING_LEN] = side;
  put_u64(out + PARLEY_RAFT_PROOF_LABEL_LEN + PARLEY_RAFT_BINDING_LEN + 1,
          raft_id);
}

int parley_raft_data_check(size_t len) {
  return len >= 1 && len <= PARLEY_RAFT_MAX_DATA ? PARLEY_OK : PARLEY_EPROTO;
}
