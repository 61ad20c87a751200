/*
 * groupkey.c — private topics: key blobs (owner-signed, sealed to one
 * member), messages under a topic key (publisher-signed, then AEAD), and
 * owner-signed grant statements with the rules that order them.  Layouts
 * are in groupkey.h.
 */
#include "crypto/groupkey.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "core/util.h"

static_assert(PARLEY_GROUPKEY_SEALED_LEN ==
                  crypto_box_SEALBYTES + crypto_sign_BYTES +
                      PARLEY_GROUPKEY_KEY_LEN,
              "sealed key blob payload");
static_assert(PARLEY_GROUPKEY_KEY_LEN ==
                  crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
              "topic key is an XChaCha20-Poly1305 key");
static_assert(PARLEY_GROUPKEY_MSG_HEADER ==
                  5 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
              "message header");
static_assert(PARLEY_GROUPKEY_MSG_MAX < PARLEY_MAX_FRAME, "fits a frame");

/* Signed-data and AD labels; each ends with its NUL (prefix-free). */
static const char KEY_LABEL[] = "parley-topic-key-v1";
static const char MSG_AD_LABEL[] = "parley-topic-msg-v1";
static const char MSG_SIG_LABEL[] = "parley-topic-sig-v1";
static const char GRANT_LABEL[] = "parley-grant-v1";

#define BLOB_FIXED 70u   /* blob header without the topic */
#define GRANT_FIXED 87u  /* grant signed part without the topic */
#define SIG_LEN 64u

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* A topic argument: NUL-terminated, parley_topic_valid.  OUT: *len. */
static int topic_arg(const char *topic, size_t *len) {
  size_t n = strnlen(topic, PARLEY_MAX_TOPIC + 1);
  if (!parley_topic_valid(topic, n, PARLEY_MAX_TOPIC))
    return PARLEY_EINVAL;
  *len = n;
  return PARLEY_OK;
}

/* ---- topic keys ---------------------------------------------------------- */

int parley_groupkey_generate(struct parley_topic_key *k, uint32_t epoch) {
  if (epoch == 0)
    return PARLEY_EINVAL;
  k->epoch = epoch;
  crypto_aead_xchacha20poly1305_ietf_keygen(k->key);
  return PARLEY_OK;
}

void parley_groupkey_wipe(struct parley_topic_key *k) {
  sodium_memzero(k, sizeof *k);
}

/* ---- key blobs ------------------------------------------------------------ */

/* Writes the blob header (everything but `sealed`) into out, which holds
 * PARLEY_GROUPKEY_BLOB_MAX bytes.  OUT: *len.  The topic must be valid. */
static int blob_header(const struct parley_groupkey_blob *b, uint8_t *out,
                       size_t *len) {
  size_t tlen;
  if (b->version != PARLEY_GROUPKEY_VERSION || b->epoch == 0 ||
      topic_arg(b->topic, &tlen) < 0)
    return PARLEY_EINVAL;
  out[0] = b->version;
  put_be32(out + 1, b->epoch);
  out[5] = (uint8_t)tlen;
  memcpy(out + 6, b->topic, tlen);
  memcpy(out + 6 + tlen, b->owner_pk, 32);
  memcpy(out + 38 + tlen, b->member_pk, 32);
  *len = BLOB_FIXED + tlen;
  return PARLEY_OK;
}

/* sig = Ed25519(owner, KEY_LABEL || header || key). */
static void blob_signed_data(uint8_t *buf, size_t *len, const uint8_t *hdr,
                             size_t hlen, const uint8_t key[32]) {
  memcpy(buf, KEY_LABEL, sizeof KEY_LABEL);
  memcpy(buf + sizeof KEY_LABEL, hdr, hlen);
  memcpy(buf + sizeof KEY_LABEL + hlen, key, 32);
  *len = sizeof KEY_LABEL + hlen + 32;
}

#define BLOB_SIGNED_MAX (sizeof KEY_LABEL + PARLEY_GROUPKEY_BLOB_MAX + 32)

int parley_groupkey_seal(const struct parley_identity *owner,
                         const char *topic, const struct parley_topic_key *k,
                         const uint8_t member_pk[32],
                         struct parley_groupkey_blob *out) {
  size_t tlen, hlen, slen;
  uint8_t m_xpk[32], hdr[PARLEY_GROUPKEY_BLOB_MAX], signed_data[BLOB_SIGNED_MAX];
  uint8_t inner[SIG_LEN + PARLEY_GROUPKEY_KEY_LEN];
  int rc;

  memset(out, 0, sizeof *out);
  if (topic_arg(topic, &tlen) < 0 || k->epoch == 0)
    return PARLEY_EINVAL;
  if (crypto_sign_ed25519_pk_to_curve25519(m_xpk, member_pk) != 0)
    return PARLEY_EINVAL;
  out->version = PARLEY_GROUPKEY_VERSION;
  out->epoch = k->epoch;
  memcpy(out->topic, topic, tlen);
  memcpy(out->owner_pk, owner->pk, 32);
  memcpy(out->member_pk, member_pk, 32);
  if ((rc = blob_header(out, hdr, &hlen)) < 0)
    goto out;

  blob_signed_data(signed_data, &slen, hdr, hlen, k->key);
  parley_identity_sign(owner, signed_data, slen, inner);
  memcpy(inner + SIG_LEN, k->key, PARLEY_GROUPKEY_KEY_LEN);
  rc = PARLEY_EINVAL; /* low-order member key */
  if (crypto_box_seal(out->sealed, inner, sizeof inner, m_xpk) != 0)
    goto out;
  rc = PARLEY_OK;
out:
  sodium_memzero(signed_data, sizeof signed_data);
  sodium_memzero(inner, sizeof inner);
  if (rc < 0)
    memset(out, 0, sizeof *out);
  return rc;
}

int parley_groupkey_open(const struct parley_identity *me,
                         const uint8_t owner_pk[32], const char *topic,
                         const struct parley_groupkey_blob *b,
                         struct parley_topic_key *k) {
  size_t tlen, hlen, slen;
  uint8_t hdr[PARLEY_GROUPKEY_BLOB_MAX], signed_data[BLOB_SIGNED_MAX];
  uint8_t inner[SIG_LEN + PARLEY_GROUPKEY_KEY_LEN];
  int rc;

  memset(k, 0, sizeof *k);
  if (topic_arg(topic, &tlen) < 0)
    return PARLEY_EINVAL;
  if (blob_header(b, hdr, &hlen) < 0)
    return PARLEY_EPROTO;
  if (memcmp(b->member_pk, me->pk, 32) != 0 ||
      memcmp(b->owner_pk, owner_pk, 32) != 0 || strcmp(b->topic, topic) != 0)
    return PARLEY_EDENIED;

  rc = PARLEY_ECRYPTO;
  if (crypto_box_seal_open(inner, b->sealed, sizeof b->sealed, me->x_pk,
                           me->x_sk) != 0)
    goto out;
  blob_signed_data(signed_data, &slen, hdr, hlen, inner + SIG_LEN);
  if (parley_sig_verify(owner_pk, signed_data, slen, inner) < 0)
    goto out;
  k->epoch = b->epoch;
  memcpy(k->key, inner + SIG_LEN, PARLEY_GROUPKEY_KEY_LEN);
  rc = PARLEY_OK;
out:
  sodium_memzero(signed_data, sizeof signed_data);
  sodium_memzero(inner, sizeof inner);
  return rc;
}

int parley_groupkey_blob_encode(const struct parley_groupkey_blob *b,
                                uint8_t *buf, size_t cap, size_t *written) {
  uint8_t hdr[PARLEY_GROUPKEY_BLOB_MAX];
  size_t hlen;
  *written = 0;
  if (blob_header(b, hdr, &hlen) < 0)
    return PARLEY_EINVAL;
  if (cap < hlen + PARLEY_GROUPKEY_SEALED_LEN)
    return PARLEY_ETOOBIG;
  memcpy(buf, hdr, hlen);
  memcpy(buf + hlen, b->sealed, PARLEY_GROUPKEY_SEALED_LEN);
  *written = hlen + PARLEY_GROUPKEY_SEALED_LEN;
  return PARLEY_OK;
}

int parley_groupkey_blob_decode(const uint8_t *buf, size_t len,
                                struct parley_groupkey_blob *b) {
  memset(b, 0, sizeof *b);
  if (len < 1)
    return PARLEY_EPROTO;
  if (buf[0] != PARLEY_GROUPKEY_VERSION)
    return PARLEY_EVERSION;
  if (len < 6)
    return PARLEY_EPROTO;
  size_t tlen = buf[5];
  if (len != BLOB_FIXED + tlen + PARLEY_GROUPKEY_SEALED_LEN)
    return PARLEY_EPROTO;
  if (!parley_topic_valid((const char *)buf + 6, tlen, PARLEY_MAX_TOPIC))
    return PARLEY_EPROTO;
  uint32_t epoch = get_be32(buf + 1);
  if (epoch == 0)
    return PARLEY_EPROTO;
  b->version = buf[0];
  b->epoch = epoch;
  memcpy(b->topic, buf + 6, tlen);
  b->topic[tlen] = '\0';
  memcpy(b->owner_pk, buf + 6 + tlen, 32);
  memcpy(b->member_pk, buf + 38 + tlen, 32);
  memcpy(b->sealed, buf + BLOB_FIXED + tlen, PARLEY_GROUPKEY_SEALED_LEN);
  return PARLEY_OK;
}

/* ---- topic messages --------------------------------------------------------- */

#define MSG_AD_MAX                                                            \
  (sizeof MSG_AD_LABEL + PARLEY_GROUPKEY_MSG_HEADER + 1 + PARLEY_MAX_TOPIC +  \
   32 + 16)

/* AD = MSG_AD_LABEL || header || u8 T || topic || publisher || seq || ts. */
static size_t msg_ad(uint8_t *ad, const uint8_t *hdr, const char *topic,
                     size_t tlen, const uint8_t publisher[32], uint64_t seq,
                     uint64_t ts) {
  size_t n = 0;
  memcpy(ad, MSG_AD_LABEL, sizeof MSG_AD_LABEL);
  n += sizeof MSG_AD_LABEL;
  memcpy(ad + n, hdr, PARLEY_GROUPKEY_MSG_HEADER);
  n += PARLEY_GROUPKEY_MSG_HEADER;
  ad[n++] = (uint8_t)tlen;
  memcpy(ad + n, topic, tlen);
  n += tlen;
  memcpy(ad + n, publisher, 32);
  n += 32;
  put_be64(ad + n, seq);
  put_be64(ad + n + 8, ts);
  return n + 16;
}

/* Ed25519ph over MSG_SIG_LABEL || version || epoch || u8 T || topic ||
 * publisher || seq || ts || u64 pt_len || pt. */
static void msg_signed_data(crypto_sign_state *st, uint8_t version,
                            uint32_t epoch, const char *topic, size_t tlen,
                            const uint8_t publisher[32], uint64_t seq,
                            uint64_t ts, const uint8_t *pt, size_t pt_len) {
  uint8_t head[6], nums[24];
  head[0] = version;
  put_be32(head + 1, epoch);
  head[5] = (uint8_t)tlen;
  put_be64(nums, seq);
  put_be64(nums + 8, ts);
  put_be64(nums + 16, (uint64_t)pt_len);
  crypto_sign_init(st);
  crypto_sign_update(st, (const uint8_t *)MSG_SIG_LABEL, sizeof MSG_SIG_LABEL);
  crypto_sign_update(st, head, sizeof head);
  crypto_sign_update(st, (const uint8_t *)topic, tlen);
  crypto_sign_update(st, publisher, 32);
  crypto_sign_update(st, nums, sizeof nums);
  if (pt_len)
    crypto_sign_update(st, pt, pt_len);
}

int parley_groupkey_msg_len(size_t pt_len, size_t *len) {
  if (pt_len > PARLEY_GROUPKEY_MAX_PLAINTEXT)
    return PARLEY_ETOOBIG;
  *len = PARLEY_GROUPKEY_MSG_OVERHEAD + pt_len;
  return PARLEY_OK;
}

int parley_groupkey_encrypt(const struct parley_identity *publisher,
                            const char *topic,
                            const struct parley_topic_key *k, uint64_t seq,
                            uint64_t ts_ms, const uint8_t *pt, size_t pt_len,
                            uint8_t *out, size_t cap, size_t *written) {
  size_t tlen, need, adlen;
  uint8_t ad[MSG_AD_MAX];
  crypto_sign_state st;
  unsigned long long blen = 0;
  int rc;

  *written = 0;
  if (topic_arg(topic, &tlen) < 0 || k->epoch == 0 || (pt_len && !pt))
    return PARLEY_EINVAL;
  if ((rc = parley_groupkey_msg_len(pt_len, &need)) < 0)
    return rc;
  if (cap < need)
    return PARLEY_ETOOBIG;

  out[0] = (uint8_t)PARLEY_GROUPKEY_VERSION;
  put_be32(out + 1, k->epoch);
  randombytes_buf(out + 5, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  uint8_t *inner = out + PARLEY_GROUPKEY_MSG_HEADER;
  msg_signed_data(&st, out[0], k->epoch, topic, tlen, publisher->pk, seq,
                  ts_ms, pt, pt_len);
  rc = PARLEY_EINTERNAL;
  if (crypto_sign_final_create(&st, inner, NULL, publisher->sk) != 0)
    goto out;
  if (pt_len)
    memcpy(inner + SIG_LEN, pt, pt_len);
  adlen = msg_ad(ad, out, topic, tlen, publisher->pk, seq, ts_ms);
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(inner, &blen, inner,
                                                 SIG_LEN + pt_len, ad, adlen,
                                                 NULL, out + 5, k->key) != 0 ||
      PARLEY_GROUPKEY_MSG_HEADER + (size_t)blen != need)
    goto out;
  *written = need;
  rc = PARLEY_OK;
out:
  sodium_memzero(&st, sizeof st);
  if (rc < 0)
    sodium_memzero(out, need);
  return rc;
}

int parley_groupkey_msg_decode(const uint8_t *buf, size_t len,
                               struct parley_groupkey_msg *m) {
  memset(m, 0, sizeof *m);
  if (len < 1)
    return PARLEY_EPROTO;
  if (buf[0] != PARLEY_GROUPKEY_VERSION)
    return PARLEY_EVERSION;
  if (len > PARLEY_GROUPKEY_MSG_MAX)
    return PARLEY_ETOOBIG;
  if (len < PARLEY_GROUPKEY_MSG_OVERHEAD)
    return PARLEY_EPROTO;
  uint32_t epoch = get_be32(buf + 1);
  if (epoch == 0)
    return PARLEY_EPROTO;
  m->version = buf[0];
  m->epoch = epoch;
  m->nonce = buf + 5;
  m->body = buf + PARLEY_GROUPKEY_MSG_HEADER;
  m->body_len = len - PARLEY_GROUPKEY_MSG_HEADER;
  return PARLEY_OK;
}

int parley_groupkey_msg_encode(const struct parley_groupkey_msg *m,
                               uint8_t *buf, size_t cap, size_t *written) {
  *written = 0;
  if (m->version != PARLEY_GROUPKEY_VERSION || m->epoch == 0 ||
      m->nonce == NULL || m->body == NULL ||
      m->body_len < PARLEY_GROUPKEY_MSG_OVERHEAD - PARLEY_GROUPKEY_MSG_HEADER)
    return PARLEY_EINVAL;
  if (m->body_len > PARLEY_GROUPKEY_MSG_MAX - PARLEY_GROUPKEY_MSG_HEADER)
    return PARLEY_ETOOBIG;
  size_t need = PARLEY_GROUPKEY_MSG_HEADER + m->body_len;
  if (cap < need)
    return PARLEY_ETOOBIG;
  buf[0] = m->version;
  put_be32(buf + 1, m->epoch);
  memmove(buf + 5, m->nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  memmove(buf + PARLEY_GROUPKEY_MSG_HEADER, m->body, m->body_len);
  *written = need;
  return PARLEY_OK;
}

int parley_groupkey_decrypt(const struct parley_topic_key *k,
                            const char *topic, const uint8_t publisher_pk[32],
                            uint64_t seq, uint64_t ts_ms, const uint8_t *msg,
                            size_t len, uint8_t *out, size_t cap,
                            size_t *pt_len) {
  struct parley_groupkey_msg m;
  size_t tlen, adlen, inner_len;
  uint8_t ad[MSG_AD_MAX], sig[SIG_LEN];
  crypto_sign_state st;
  unsigned long long ilen = 0;
  int rc;

  *pt_len = 0;
  if (topic_arg(topic, &tlen) < 0)
    return PARLEY_EINVAL;
  if ((rc = parley_groupkey_msg_decode(msg, len, &m)) < 0)
    return rc;
  if (m.epoch != k->epoch)
    return PARLEY_EINVAL;
  inner_len = m.body_len - crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (cap < inner_len)
    return PARLEY_ETOOBIG;

  adlen = msg_ad(ad, msg, topic, tlen, publisher_pk, seq, ts_ms);
  memset(&st, 0, sizeof st);
  rc = PARLEY_ECRYPTO;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &ilen, NULL, m.body,
                                                 m.body_len, ad, adlen,
                                                 m.nonce, k->key) != 0 ||
      (size_t)ilen != inner_len)
    goto out;
  memcpy(sig, out, SIG_LEN);
  memmove(out, out + SIG_LEN, inner_len - SIG_LEN);
  msg_signed_data(&st, m.version, m.epoch, topic, tlen, publisher_pk, seq,
                  ts_ms, out, inner_len - SIG_LEN);
  if (crypto_sign_final_verify(&st, sig, publisher_pk) != 0)
    goto out;
  *pt_len = inner_len - SIG_LEN;
  rc = PARLEY_OK;
out:
  sodium_memzero(&st, sizeof st);
  if (rc < 0)
    sodium_memzero(out, inner_len);
  return rc;
}

/* ---- grants ------------------------------------------------------------------ */

/* Writes the signed part of g (without sig) into out (PARLEY_GRANT_MAX_LEN
 * bytes).  OUT: *len.  PARLEY_EINVAL for a bad version or topic. */
static int grant_body(const struct parley_grant *g, uint8_t *out,
                      size_t *len) {
  size_t tlen;
  if (g->version != PARLEY_GROUPKEY_VERSION || topic_arg(g->topic, &tlen) < 0)
    return PARLEY_EINVAL;
  out[0] = g->version;
  out[1] = g->action;
  out[2] = (uint8_t)tlen;
  memcpy(out + 3, g->topic, tlen);
  memcpy(out + 3 + tlen, g->owner_pk, 32);
  memcpy(out + 35 + tlen, g->member_pk, 32);
  put_be32(out + 67 + tlen, g->epoch);
  put_be64(out + 71 + tlen, g->issued_ms);
  put_be64(out + 79 + tlen, g->counter);
  *len = GRANT_FIXED + tlen;
  return PARLEY_OK;
}

/* The shape rules of groupkey.h (no signature). */
static int grant_shape(const struct parley_grant *g) {
  size_t tlen;
  if (g->version != PARLEY_GROUPKEY_VERSION || topic_arg(g->topic, &tlen) < 0)
    return PARLEY_EINVAL;
  if (g->counter == 0 || g->epoch == 0)
    return PARLEY_EINVAL;
  int self = memcmp(g->owner_pk, g->member_pk, 32) == 0;
  switch (g->action) {
  case PARLEY_GRANT_CREATE:
    return self && g->epoch == 1 ? PARLEY_OK : PARLEY_EINVAL;
  case PARLEY_GRANT_ADD:
    return !self ? PARLEY_OK : PARLEY_EINVAL;
  case PARLEY_GRANT_REVOKE:
    return !self && g->epoch >= 2 ? PARLEY_OK : PARLEY_EINVAL;
  case PARLEY_GRANT_ROTATE:
    return self && g->epoch >= 2 ? PARLEY_OK : PARLEY_EINVAL;
  default:
    return PARLEY_EINVAL;
  }
}

#define GRANT_SIGNED_MAX (sizeof GRANT_LABEL + PARLEY_GRANT_MAX_LEN)

/* OUT: signed data (GRANT_LABEL || body) and its length. */
static int grant_signed_data(const struct parley_grant *g, uint8_t *buf,
                             size_t *len) {
  size_t blen;
  int rc = grant_body(g, buf + sizeof GRANT_LABEL, &blen);
  if (rc < 0)
    return rc;
  memcpy(buf, GRANT_LABEL, sizeof GRANT_LABEL);
  *len = sizeof GRANT_LABEL + blen;
  return PARLEY_OK;
}

int parley_groupkey_grant_sign(const struct parley_identity *owner,
                               struct parley_grant *g) {
  uint8_t buf[GRANT_SIGNED_MAX];
  size_t len;
  int rc;
  g->version = PARLEY_GROUPKEY_VERSION;
  memcpy(g->owner_pk, owner->pk, 32);
  if ((rc = grant_shape(g)) < 0)
    return rc;
  if ((rc = grant_signed_data(g, buf, &len)) < 0)
    return rc;
  parley_identity_sign(owner, buf, len, g->sig);
  return PARLEY_OK;
}

int parley_groupkey_grant_verify(const struct parley_grant *g) {
  uint8_t buf[GRANT_SIGNED_MAX];
  size_t len;
  int rc;
  if ((rc = grant_shape(g)) < 0)
    return rc;
  if ((rc = grant_signed_data(g, buf, &len)) < 0)
    return rc;
  return parley_sig_verify(g->owner_pk, buf, len, g->sig) < 0
             ? PARLEY_ECRYPTO
             : PARLEY_OK;
}

int parley_groupkey_grant_apply(struct parley_grant_state *st,
                                const struct parley_grant *g, int is_member) {
  int rc = parley_groupkey_grant_verify(g);
  if (rc < 0)
    return rc;
  if (!st->exists) {
    if (g->action != PARLEY_GRANT_CREATE)
      return PARLEY_ENOTFOUND;
    /* First come: whoever signs the CREATE owns the topic.  Whether the
     * name is free is the caller's question (the index's). */
    st->exists = 1;
    memcpy(st->owner_pk, g->owner_pk, 32);
    st->epoch = g->epoch;
    st->counter = g->counter;
    return PARLEY_OK;
  }
  if (g->action == PARLEY_GRANT_CREATE)
    return PARLEY_EEXIST;
  if (sodium_memcmp(st->owner_pk, g->owner_pk, 32) != 0)
    return PARLEY_EDENIED;
  if (g->counter <= st->counter)
    return PARLEY_ERANGE;
  switch (g->action) {
  case PARLEY_GRANT_ADD:
    if (is_member || g->epoch != st->epoch)
      return PARLEY_EPROTO;
    break;
  case PARLEY_GRANT_REVOKE:
  case PARLEY_GRANT_ROTATE:
    if (g->action == PARLEY_GRANT_REVOKE && !is_member)
      return PARLEY_EPROTO;
    if (st->epoch == UINT32_MAX || g->epoch != st->epoch + 1)
      return PARLEY_EPROTO;
    break;
  default:
    return PARLEY_EINVAL; /* unreachable: verify checked the action */
  }
  st->epoch = g->epoch;
  st->counter = g->counter;
  return PARLEY_OK;
}

int parley_groupkey_grant_encode(const struct parley_grant *g, uint8_t *buf,
                                 size_t cap, size_t *written) {
  uint8_t body[PARLEY_GRANT_MAX_LEN];
  size_t blen;
  *written = 0;
  if (grant_body(g, body, &blen) < 0)
    return PARLEY_EINVAL;
  if (cap < blen + SIG_LEN)
    return PARLEY_ETOOBIG;
  memcpy(buf, body, blen);
  memcpy(buf + blen, g->sig, SIG_LEN);
  *written = blen + SIG_LEN;
  return PARLEY_OK;
}

int parley_groupkey_grant_decode(const uint8_t *buf, size_t len,
                                 struct parley_grant *g) {
  memset(g, 0, sizeof *g);
  if (len < 1)
    return PARLEY_EPROTO;
  if (buf[0] != PARLEY_GROUPKEY_VERSION)
    return PARLEY_EVERSION;
  if (len < 3)
    return PARLEY_EPROTO;
  size_t tlen = buf[2];
  if (len != GRANT_FIXED + tlen + SIG_LEN)
    return PARLEY_EPROTO;
  if (!parley_topic_valid((const char *)buf + 3, tlen, PARLEY_MAX_TOPIC))
    return PARLEY_EPROTO;
  g->version = buf[0];
  g->action = buf[1];
  memcpy(g->topic, buf + 3, tlen);
  g->topic[tlen] = '\0';
  memcpy(g->owner_pk, buf + 3 + tlen, 32);
  memcpy(g->member_pk, buf + 35 + tlen, 32);
  g->epoch = get_be32(buf + 67 + tlen);
  g->issued_ms = get_be64(buf + 71 + tlen);
  g->counter = get_be64(buf + 79 + tlen);
  memcpy(g->sig, buf + GRANT_FIXED + tlen, SIG_LEN);
  return PARLEY_OK;
}
