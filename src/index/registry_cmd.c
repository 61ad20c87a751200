/*
 * registry_cmd.c — the registry command codec (parley_reg_cmd_encode /
 * parley_reg_cmd_decode, registry.h) and the GRANT / KEY_PUT builders.
 * Pure: no state, no allocation.  What a command means is checked by
 * registry.c.
 */
#include "index/registry.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "index/registry_int.h"

static_assert(PARLEY_REG_DATA_MAX <= 3u * 255u, "three u8-length chunks");

/* Command codec ---------------------------------------------------------------
 *
 *   types 1..4   u8 type  key pk (32)  u64 ts_ms  str8 addr  str8 name
 *                str8 topic                                   (44..459 bytes)
 *   types 5..6   u8 type  key pk (32)  u64 ts_ms  u8 n0  chunk0  u8 n1
 *                chunk1  u8 n2  chunk2                        (45..577 bytes)
 *
 * Big-endian, all fields always present (empty strings for the ones a type
 * does not use).  For GRANT and KEY_PUT, data = chunk0 || chunk1 || chunk2
 * (1..PARLEY_REG_DATA_MAX bytes), cut at 255 and 510: a chunk is non-empty
 * only if the one before holds 255 bytes.  Keeping three u8-length fields
 * for every type means one framing rule finds any command's length (the
 * Raft FSM relies on it, consensus.c entry_cmd_len).  The codec checks only
 * the framing: type in 1..6, string lengths within their PARLEY_MAX_* caps,
 * no NUL inside a string, canonical chunks, no trailing bytes.  What a
 * command means is checked by parley_registry_check/apply.
 */

static int encode_data(const struct parley_reg_cmd *c, uint8_t *buf,
                       size_t cap, size_t *written) {
  size_t n = c->data_len, need = PARLEY__REG_CMD_FIXED + n, pos = 41, off = 0;

  if (n == 0 || n > PARLEY_REG_DATA_MAX)
    return PARLEY_EINVAL;
  if (buf == NULL || cap < need) {
    *written = need;
    return PARLEY_ETOOBIG;
  }
  buf[0] = c->type;
  memcpy(buf + 1, c->pk, 32);
  parley__reg_put_u64(buf + 33, (uint64_t)c->ts_ms);
  for (int i = 0; i < 3; i++) {
    size_t k = n - off < 255 ? n - off : 255;
    buf[pos++] = (uint8_t)k;
    memcpy(buf + pos, c->data + off, k);
    pos += k;
    off += k;
  }
  *written = pos;
  return PARLEY_OK;
}

int parley_reg_cmd_encode(const struct parley_reg_cmd *c, uint8_t *buf,
                          size_t cap, size_t *written) {
  size_t la, ln, lt, need, n;

  if (c->type == PARLEY_REG_GRANT || c->type == PARLEY_REG_KEY_PUT)
    return encode_data(c, buf, cap, written);
  if (c->type < PARLEY_REG_REGISTER || c->type > PARLEY_REG_UNSUBSCRIBE ||
      parley__reg_field_len(c->addr, sizeof c->addr, &la) < 0 ||
      parley__reg_field_len(c->name, sizeof c->name, &ln) < 0 ||
      parley__reg_field_len(c->topic, sizeof c->topic, &lt) < 0)
    return PARLEY_EINVAL;
  need = PARLEY__REG_CMD_FIXED + la + ln + lt;
  if (buf == NULL || cap < need) {
    *written = need;
    return PARLEY_ETOOBIG;
  }
  buf[0] = c->type;
  memcpy(buf + 1, c->pk, 32);
  parley__reg_put_u64(buf + 33, (uint64_t)c->ts_ms);
  n = 41;
  buf[n++] = (uint8_t)la;
  memcpy(buf + n, c->addr, la);
  n += la;
  buf[n++] = (uint8_t)ln;
  memcpy(buf + n, c->name, ln);
  n += ln;
  buf[n++] = (uint8_t)lt;
  memcpy(buf + n, c->topic, lt);
  n += lt;
  *written = n;
  return PARLEY_OK;
}

static int dec_str8(struct reader *rd, size_t max, char *dst) {
  size_t len;
  if (parley__reg_rd_str8(rd, max, dst, &len) < 0 ||
      memchr(dst, '\0', len) != NULL)
    return PARLEY_EPROTO;
  return PARLEY_OK;
}

/* The three canonical chunks of a GRANT or KEY_PUT. */
static int dec_data(struct reader *rd, struct parley_reg_cmd *out) {
  const uint8_t *b;
  size_t n = 0, prev = 255;

  for (int i = 0; i < 3; i++) {
    size_t k;
    if (parley__reg_rd_bytes(rd, 1, &b) < 0)
      return PARLEY_EPROTO;
    k = b[0];
    if ((k > 0 && prev != 255) || n + k > PARLEY_REG_DATA_MAX ||
        parley__reg_rd_bytes(rd, k, &b) < 0)
      return PARLEY_EPROTO;
    memcpy(out->data + n, b, k);
    n += k;
    prev = k;
  }
  if (n == 0)
    return PARLEY_EPROTO;
  out->data_len = (uint16_t)n;
  return PARLEY_OK;
}

int parley_reg_cmd_decode(const uint8_t *buf, size_t len,
                          struct parley_reg_cmd *out) {
  struct reader rd = {buf, len, 0};
  const uint8_t *b;

  memset(out, 0, sizeof *out);
  if (buf == NULL || len < PARLEY__REG_CMD_MIN || len > PARLEY__REG_CMD_MAX)
    return PARLEY_EPROTO;
  if (parley__reg_rd_bytes(&rd, 41, &b) < 0 || b[0] < PARLEY_REG_REGISTER ||
      b[0] > PARLEY_REG_KEY_PUT)
    goto fail;
  out->type = b[0];
  memcpy(out->pk, b + 1, 32);
  out->ts_ms = parley__reg_to_i64(parley__reg_get_u64(b + 33));
  if (out->type >= PARLEY_REG_GRANT) {
    if (dec_data(&rd, out) < 0 || rd.pos != len)
      goto fail;
    return PARLEY_OK;
  }
  if (dec_str8(&rd, PARLEY_MAX_ADDR, out->addr) < 0 ||
      dec_str8(&rd, PARLEY_MAX_NAME, out->name) < 0 ||
      dec_str8(&rd, PARLEY_MAX_TOPIC, out->topic) < 0 || rd.pos != len)
    goto fail;
  return PARLEY_OK;
fail:
  memset(out, 0, sizeof *out);
  return PARLEY_EPROTO;
}

/* Builders ----------------------------------------------------------------- */

static void cmd_start(struct parley_reg_cmd *c, uint8_t type,
                      const uint8_t *pk, int64_t ts_ms) {
  memset(c, 0, sizeof *c);
  c->type = type;
  memcpy(c->pk, pk, 32);
  c->ts_ms = ts_ms;
}

int parley_reg_cmd_grant(struct parley_reg_cmd *c, const uint8_t pk[32],
                         int64_t ts_ms, const uint8_t *grant, size_t len) {
  memset(c, 0, sizeof *c);
  if (len == 0 || len > PARLEY_GRANT_MAX_LEN)
    return PARLEY_EINVAL;
  cmd_start(c, PARLEY_REG_GRANT, pk, ts_ms);
  memcpy(c->data, grant, len);
  c->data_len = (uint16_t)len;
  return PARLEY_OK;
}

int parley_reg_cmd_key_put(struct parley_reg_cmd *c, const uint8_t pk[32],
                           int64_t ts_ms, const uint8_t *blob, size_t len,
                           const uint8_t sig[64]) {
  memset(c, 0, sizeof *c);
  if (len == 0 || len > PARLEY_GROUPKEY_BLOB_MAX)
    return PARLEY_EINVAL;
  cmd_start(c, PARLEY_REG_KEY_PUT, pk, ts_ms);
  memcpy(c->data, sig, PARLEY__REG_SIG_LEN);
  memcpy(c->data + PARLEY__REG_SIG_LEN, blob, len);
  c->data_len = (uint16_t)(PARLEY__REG_SIG_LEN + len);
  return PARLEY_OK;
}
