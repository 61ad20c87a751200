/*
 * e2e.c — direct-message envelopes (sign, then encrypt under a one-time key
 * wrapped with crypto_box_seal) and the replay window.  The layout and the
 * argument for the construction are in e2e.h and docs/internals/E2E.md.
 */
#include "crypto/e2e.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

static_assert(PARLEY_E2E_WRAP_LEN == crypto_box_SEALBYTES + 32,
              "a wrap is a sealed 32-byte key");
static_assert(PARLEY_E2E_NONCE_LEN ==
                  crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
              "XChaCha20-Poly1305 nonce");
static_assert(PARLEY_E2E_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES,
              "XChaCha20-Poly1305 tag");
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "key size");
static_assert(PARLEY_E2E_INNER_LEN == crypto_sign_BYTES + 16, "inner header");
static_assert(PARLEY_E2E_MAX_LEN < PARLEY_MAX_FRAME, "fits in a frame");

/* Signed-data label; the NUL makes the set of Parley labels prefix-free. */
static const char DM_LABEL[] = "parley-e2e-dm-v1";

#define OFF_NONCE 2u
#define OFF_WRAP_R (OFF_NONCE + PARLEY_E2E_NONCE_LEN)
#define OFF_WRAP_S (OFF_WRAP_R + PARLEY_E2E_WRAP_LEN)

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

static size_t header_len(unsigned flags) {
  return (flags & PARLEY_E2E_SENDER_COPY) ? PARLEY_E2E_HEADER_MAX
                                          : PARLEY_E2E_HEADER_MIN;
}

/* 1..255 bytes, NUL-terminated: OUT *len. */
static int channel_len(const char *channel, size_t *len) {
  size_t n = strnlen(channel, PARLEY_E2E_MAX_CHANNEL + 1);
  if (n == 0 || n > PARLEY_E2E_MAX_CHANNEL)
    return PARLEY_EINVAL;
  *len = n;
  return PARLEY_OK;
}

/* Feeds the signed data of a direct message into an Ed25519ph state. */
static void dm_signed_data(crypto_sign_state *st, uint8_t version,
                           uint8_t flags, const uint8_t sender_pk[32],
                           const uint8_t recipient_pk[32], const char *channel,
                           size_t chan_len, uint64_t seq, uint64_t ts,
                           const uint8_t *pt, size_t pt_len) {
  uint8_t hdr[2], clen, nums[24];
  hdr[0] = version;
  hdr[1] = flags;
  clen = (uint8_t)chan_len;
  put_be64(nums, seq);
  put_be64(nums + 8, ts);
  put_be64(nums + 16, (uint64_t)pt_len);
  crypto_sign_init(st);
  crypto_sign_update(st, (const uint8_t *)DM_LABEL, sizeof DM_LABEL);
  crypto_sign_update(st, hdr, sizeof hdr);
  crypto_sign_update(st, sender_pk, 32);
  crypto_sign_update(st, recipient_pk, 32);
  crypto_sign_update(st, &clen, 1);
  crypto_sign_update(st, (const uint8_t *)channel, chan_len);
  crypto_sign_update(st, nums, sizeof nums);
  if (pt_len)
    crypto_sign_update(st, pt, pt_len);
}

int parley_e2e_sealed_len(size_t pt_len, unsigned flags, size_t *len) {
  if (flags & ~PARLEY_E2E_FLAGS_ALL)
    return PARLEY_EINVAL;
  if (pt_len > PARLEY_E2E_MAX_PLAINTEXT)
    return PARLEY_ETOOBIG;
  *len = header_len(flags) + PARLEY_E2E_INNER_LEN + pt_len +
         PARLEY_E2E_TAG_LEN;
  return PARLEY_OK;
}

size_t parley_e2e_open_cap(size_t len) {
  if (len < PARLEY_E2E_MIN_LEN)
    return 0;
  /* The inner plaintext is the body minus its tag; the body is at least
   * len - HEADER_MAX, at most len - HEADER_MIN. */
  return len - PARLEY_E2E_HEADER_MIN - PARLEY_E2E_TAG_LEN;
}

int parley_e2e_seal(const struct parley_identity *sender,
                    const uint8_t recipient_pk[32], const char *channel,
                    uint64_t seq, uint64_t ts_ms, const uint8_t *pt,
                    size_t pt_len, unsigned flags, uint8_t *out, size_t cap,
                    size_t *written) {
  size_t clen, need;
  uint8_t r_xpk[32], key[32], *inner;
  crypto_sign_state st;
  unsigned long long blen = 0;
  int rc;

  *written = 0;
  if ((rc = channel_len(channel, &clen)) < 0)
    return rc;
  if (pt_len && pt == NULL)
    return PARLEY_EINVAL;
  if ((rc = parley_e2e_sealed_len(pt_len, flags, &need)) < 0)
    return rc;
  if (cap < need)
    return PARLEY_ETOOBIG;

  if (crypto_sign_ed25519_pk_to_curve25519(r_xpk, recipient_pk) != 0)
    return PARLEY_EINVAL;

  const size_t hlen = header_len(flags);
  memset(&st, 0, sizeof st);
  out[0] = (uint8_t)PARLEY_E2E_VERSION;
  out[1] = (uint8_t)flags;
  randombytes_buf(out + OFF_NONCE, PARLEY_E2E_NONCE_LEN);
  crypto_aead_xchacha20poly1305_ietf_keygen(key);
  rc = PARLEY_EINVAL; /* a low-order recipient key makes the seal fail */
  if (crypto_box_seal(out + OFF_WRAP_R, key, sizeof key, r_xpk) != 0)
    goto out;
  rc = PARLEY_EINTERNAL;
  if ((flags & PARLEY_E2E_SENDER_COPY) &&
      crypto_box_seal(out + OFF_WRAP_S, key, sizeof key, sender->x_pk) != 0)
    goto out;

  /* inner = sig || seq || ts || pt, assembled in place, then encrypted in
   * place (libsodium allows c == m). */
  inner = out + hlen;
  dm_signed_data(&st, out[0], out[1], sender->pk, recipient_pk, channel, clen,
                 seq, ts_ms, pt, pt_len);
  if (crypto_sign_final_create(&st, inner, NULL, sender->sk) != 0)
    goto out;
  put_be64(inner + crypto_sign_BYTES, seq);
  put_be64(inner + crypto_sign_BYTES + 8, ts_ms);
  if (pt_len)
    memcpy(inner + PARLEY_E2E_INNER_LEN, pt, pt_len);

  if (crypto_aead_xchacha20poly1305_ietf_encrypt(
          inner, &blen, inner, PARLEY_E2E_INNER_LEN + pt_len, out, hlen, NULL,
          out + OFF_NONCE, key) != 0 ||
      hlen + (size_t)blen != need)
    goto out;
  *written = need;
  rc = PARLEY_OK;
out:
  sodium_memzero(key, sizeof key);
  sodium_memzero(&st, sizeof st);
  if (rc < 0)
    sodium_memzero(out, need);
  return rc;
}

int parley_e2e_decode(const uint8_t *buf, size_t len,
                      struct parley_e2e_envelope *env) {
  memset(env, 0, sizeof *env);
  if (len < 2)
    return PARLEY_EPROTO;
  if (buf[0] != PARLEY_E2E_VERSION)
    return PARLEY_EVERSION;
  if (buf[1] & ~PARLEY_E2E_FLAGS_ALL)
    return PARLEY_EPROTO;
  if (len > PARLEY_E2E_MAX_LEN)
    return PARLEY_ETOOBIG;
  size_t hlen = header_len(buf[1]);
  if (len < hlen + PARLEY_E2E_INNER_LEN + PARLEY_E2E_TAG_LEN)
    return PARLEY_EPROTO;
  env->version = buf[0];
  env->flags = buf[1];
  env->nonce = buf + OFF_NONCE;
  env->wrap_recipient = buf + OFF_WRAP_R;
  env->wrap_sender =
      (buf[1] & PARLEY_E2E_SENDER_COPY) ? buf + OFF_WRAP_S : NULL;
  env->body = buf + hlen;
  env->body_len = len - hlen;
  return PARLEY_OK;
}

int parley_e2e_encode(const struct parley_e2e_envelope *env, uint8_t *buf,
                      size_t cap, size_t *written) {
  *written = 0;
  if (env->version != PARLEY_E2E_VERSION ||
      (env->flags & ~PARLEY_E2E_FLAGS_ALL) || env->nonce == NULL ||
      env->wrap_recipient == NULL || env->body == NULL ||
      ((env->flags & PARLEY_E2E_SENDER_COPY) != 0) !=
          (env->wrap_sender != NULL) ||
      env->body_len < PARLEY_E2E_INNER_LEN + PARLEY_E2E_TAG_LEN)
    return PARLEY_EINVAL;
  size_t hlen = header_len(env->flags);
  if (env->body_len > PARLEY_E2E_MAX_LEN - hlen)
    return PARLEY_ETOOBIG;
  size_t need = hlen + env->body_len;
  if (cap < need)
    return PARLEY_ETOOBIG;
  buf[0] = env->version;
  buf[1] = env->flags;
  memmove(buf + OFF_NONCE, env->nonce, PARLEY_E2E_NONCE_LEN);
  memmove(buf + OFF_WRAP_R, env->wrap_recipient, PARLEY_E2E_WRAP_LEN);
  if (env->wrap_sender)
    memmove(buf + OFF_WRAP_S, env->wrap_sender, PARLEY_E2E_WRAP_LEN);
  memmove(buf + hlen, env->body, env->body_len);
  *written = need;
  return PARLEY_OK;
}

/* Shared by open and open_sent.  me holds the X25519 key of the wrap to
 * use; signer/addressee are the two identities the signature must bind. */
static int open_common(const struct parley_identity *me, int as_sender,
                       const uint8_t other_pk[32], const char *channel,
                       const uint8_t *buf, size_t len, uint8_t *out,
                       size_t cap, struct parley_e2e_meta *meta) {
  struct parley_e2e_envelope env;
  size_t clen;
  int rc;

  memset(meta, 0, sizeof *meta);
  if ((rc = channel_len(channel, &clen)) < 0)
    return rc;
  if ((rc = parley_e2e_decode(buf, len, &env)) < 0)
    return rc;
  const uint8_t *wrap = as_sender ? env.wrap_sender : env.wrap_recipient;
  if (wrap == NULL)
    return PARLEY_ENOTFOUND;
  size_t inner_len = env.body_len - PARLEY_E2E_TAG_LEN;
  if (cap < inner_len)
    return PARLEY_ETOOBIG;

  uint8_t key[32], sig[crypto_sign_BYTES];
  crypto_sign_state st;
  unsigned long long ilen = 0;
  const size_t hlen = (size_t)(env.body - buf);

  memset(&st, 0, sizeof st);
  rc = PARLEY_ECRYPTO;
  if (crypto_box_seal_open(key, wrap, PARLEY_E2E_WRAP_LEN, me->x_pk,
                           me->x_sk) != 0)
    goto out;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &ilen, NULL, env.body,
                                                 env.body_len, buf, hlen,
                                                 env.nonce, key) != 0 ||
      (size_t)ilen != inner_len)
    goto out;

  memcpy(sig, out, sizeof sig);
  uint64_t seq = get_be64(out + crypto_sign_BYTES);
  uint64_t ts = get_be64(out + crypto_sign_BYTES + 8);
  size_t pt_len = inner_len - PARLEY_E2E_INNER_LEN;
  memmove(out, out + PARLEY_E2E_INNER_LEN, pt_len);

  const uint8_t *signer = as_sender ? me->pk : other_pk;
  const uint8_t *addressee = as_sender ? other_pk : me->pk;
  dm_signed_data(&st, env.version, env.flags, signer, addressee, channel,
                 clen, seq, ts, out, pt_len);
  if (crypto_sign_final_verify(&st, sig, signer) != 0)
    goto out;
  meta->seq = seq;
  meta->ts_ms = ts;
  meta->len = pt_len;
  rc = PARLEY_OK;
out:
  sodium_memzero(key, sizeof key);
  sodium_memzero(&st, sizeof st);
  if (rc < 0)
    sodium_memzero(out, inner_len);
  return rc;
}

int parley_e2e_open(const struct parley_identity *me,
                    const uint8_t sender_pk[32], const char *channel,
                    const uint8_t *env, size_t len, uint8_t *out, size_t cap,
                    struct parley_e2e_meta *meta) {
  return open_common(me, 0, sender_pk, channel, env, len, out, cap, meta);
}

int parley_e2e_open_sent(const struct parley_identity *me,
                         const uint8_t recipient_pk[32], const char *channel,
                         const uint8_t *env, size_t len, uint8_t *out,
                         size_t cap, struct parley_e2e_meta *meta) {
  return open_common(me, 1, recipient_pk, channel, env, len, out, cap, meta);
}

/* ---- replay window ----------------------------------------------------- */

int parley_replay_check(const struct parley_replay *w, uint64_t seq,
                        int *order) {
  if (seq == 0)
    return PARLEY_EINVAL;
  if (seq > w->top) {
    *order = seq == w->top + 1 ? PARLEY_REPLAY_NEXT : PARLEY_REPLAY_GAP;
    return PARLEY_OK;
  }
  uint64_t back = w->top - seq;
  if (back >= PARLEY_REPLAY_WINDOW)
    return PARLEY_ERANGE;
  if (w->seen & (UINT64_C(1) << back))
    return PARLEY_EEXIST;
  *order = PARLEY_REPLAY_LATE;
  return PARLEY_OK;
}

int parley_replay_accept(struct parley_replay *w, uint64_t seq, int *order) {
  int rc = parley_replay_check(w, seq, order);
  if (rc < 0)
    return rc;
  if (seq > w->top) {
    uint64_t shift = seq - w->top;
    w->seen = shift >= PARLEY_REPLAY_WINDOW ? 0 : w->seen << shift;
    w->seen |= 1;
    w->top = seq;
  } else {
    w->seen |= UINT64_C(1) << (w->top - seq);
  }
  return PARLEY_OK;
}
