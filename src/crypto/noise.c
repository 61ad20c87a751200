/*
 * noise.c — Noise_XX_25519_ChaChaPoly_BLAKE2b (Noise spec revision 34).
 *
 * Every primitive comes from libsodium; this file only arranges them the way
 * the spec's CipherState / SymmetricState / HandshakeState objects do:
 *
 *   HASH(x)          BLAKE2b-512 (crypto_generichash_blake2b, 64-byte output)
 *   HMAC-HASH(k, x)  RFC 2104 over BLAKE2b, block length 128 bytes
 *   HKDF(ck, ikm)    temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01);
 *                    o2 = HMAC(temp, o1 || 0x02)          (spec section 4.3)
 *   DH(sk, pk)       crypto_scalarmult; an all-zero result is refused
 *   ENCRYPT(k, n, ad, pt)
 *                    crypto_aead_chacha20poly1305_ietf with the 96-bit nonce
 *                    4 zero bytes || n as u64 little-endian
 *
 * Message layouts (payload sizes are the caller's):
 *   1  -> e               e.pub(32) || payload
 *   2  <- e, ee, s, es    e.pub(32) || enc(s.pub)(48) || enc(payload)(+16)
 *   3  -> s, se           enc(s.pub)(48) || enc(payload)(+16)
 */
#include "crypto/noise.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "crypto/noise_int.h"

#define PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define HMAC_BLOCKLEN 128
#define NONCE_LEN crypto_aead_chacha20poly1305_ietf_NPUBBYTES

static_assert(sizeof(PROTOCOL_NAME) - 1 <= PARLEY_NOISE_HASHLEN,
              "protocol name is padded, not hashed");
static_assert(crypto_generichash_blake2b_BYTES_MAX == PARLEY_NOISE_HASHLEN,
              "BLAKE2b-512");
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == PARLEY_NOISE_KEYLEN,
              "key length");
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == PARLEY_NOISE_TAGLEN,
              "tag length");
static_assert(crypto_scalarmult_BYTES == PARLEY_NOISE_DHLEN, "DH length");
static_assert(NONCE_LEN == 12, "IETF nonce");

/* ---- hash, HMAC, HKDF -------------------------------------------------- */

/* out = HASH(a || b). */
static void hash2(uint8_t out[PARLEY_NOISE_HASHLEN], const uint8_t *a,
                  size_t alen, const uint8_t *b, size_t blen) {
  crypto_generichash_blake2b_state st;
  if (crypto_generichash_blake2b_init(&st, NULL, 0, PARLEY_NOISE_HASHLEN) ==
      0) {
    if (alen)
      crypto_generichash_blake2b_update(&st, a, alen);
    if (blen)
      crypto_generichash_blake2b_update(&st, b, blen);
    crypto_generichash_blake2b_final(&st, out, PARLEY_NOISE_HASHLEN);
  }
  sodium_memzero(&st, sizeof st);
}

/* out = HMAC-HASH(key, d1 || d2).  Keys are always HASHLEN bytes here (the
 * chaining key or an HKDF temp key), shorter than the block, so they are
 * zero-padded as RFC 2104 says.  out may alias key. */
static void hmac(uint8_t out[PARLEY_NOISE_HASHLEN],
                 const uint8_t key[PARLEY_NOISE_HASHLEN], const uint8_t *d1,
                 size_t l1, const uint8_t *d2, size_t l2) {
  uint8_t ipad[HMAC_BLOCKLEN], opad[HMAC_BLOCKLEN];
  uint8_t inner[PARLEY_NOISE_HASHLEN];
  crypto_generichash_blake2b_state st;

  memset(ipad, 0x36, sizeof ipad);
  memset(opad, 0x5c, sizeof opad);
  for (size_t i = 0; i < PARLEY_NOISE_HASHLEN; i++) {
    ipad[i] ^= key[i];
    opad[i] ^= key[i];
  }
  crypto_generichash_blake2b_init(&st, NULL, 0, PARLEY_NOISE_HASHLEN);
  crypto_generichash_blake2b_update(&st, ipad, sizeof ipad);
  if (l1)
    crypto_generichash_blake2b_update(&st, d1, l1);
  if (l2)
    crypto_generichash_blake2b_update(&st, d2, l2);
  crypto_generichash_blake2b_final(&st, inner, sizeof inner);
  hash2(out, opad, sizeof opad, inner, sizeof inner);

  sodium_memzero(ipad, sizeof ipad);
  sodium_memzero(opad, sizeof opad);
  sodium_memzero(inner, sizeof inner);
  sodium_memzero(&st, sizeof st);
}

/* The two-output HKDF of the spec.  o1/o2 may alias ck. */
static void hkdf2(const uint8_t ck[PARLEY_NOISE_HASHLEN], const uint8_t *ikm,
                  size_t ikm_len, uint8_t o1[PARLEY_NOISE_HASHLEN],
                  uint8_t o2[PARLEY_NOISE_HASHLEN]) {
  static const uint8_t one = 0x01, two = 0x02;
  uint8_t temp[PARLEY_NOISE_HASHLEN], t1[PARLEY_NOISE_HASHLEN];

  hmac(temp, ck, ikm, ikm_len, NULL, 0);
  hmac(t1, temp, &one, 1, NULL, 0);
  hmac(o2, temp, t1, sizeof t1, &two, 1);
  memcpy(o1, t1, sizeof t1);
  sodium_memzero(temp, sizeof temp);
  sodium_memzero(t1, sizeof t1);
}

/* ---- SymmetricState ---------------------------------------------------- */

static void mix_hash(struct parley_noise *n, const uint8_t *data, size_t len) {
  hash2(n->h, n->h, sizeof n->h, data, len);
}

static void mix_key(struct parley_noise *n, const uint8_t *ikm, size_t len) {
  uint8_t o2[PARLEY_NOISE_HASHLEN];
  hkdf2(n->ck, ikm, len, n->ck, o2);
  /* HASHLEN is 64: the cipher key is the first 32 bytes of o2. */
  memcpy(n->cs.k, o2, PARLEY_NOISE_KEYLEN);
  n->cs.n = 0;
  n->cs.has_key = 1;
  sodium_memzero(o2, sizeof o2);
}

static void make_nonce(uint8_t nonce[NONCE_LEN], uint64_t ctr) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++)
    nonce[4 + i] = (uint8_t)(ctr >> (8 * i));
}

/* EncryptAndHash: out receives len bytes (+16 once a key is set); pt may
 * equal out. */
static int encrypt_and_hash(struct parley_noise *n, const uint8_t *pt,
                            size_t len, uint8_t *out, size_t *out_len) {
  if (!n->cs.has_key) {
    if (len && out != pt)
      memmove(out, pt, len);
    mix_hash(n, out, len);
    *out_len = len;
    return PARLEY_OK;
  }
  if (n->cs.n == UINT64_MAX)
    return PARLEY_ELIMIT;
  uint8_t nonce[NONCE_LEN];
  unsigned long long clen = 0;
  make_nonce(nonce, n->cs.n);
  if (crypto_aead_chacha20poly1305_ietf_encrypt(
          out, &clen, pt, len, n->h, sizeof n->h, NULL, nonce, n->cs.k) != 0)
    return PARLEY_EINTERNAL;
  n->cs.n++;
  mix_hash(n, out, (size_t)clen);
  *out_len = (size_t)clen;
  return PARLEY_OK;
}

/* DecryptAndHash: out receives len (- 16 once a key is set) bytes and must
 * not overlap ct. */
static int decrypt_and_hash(struct parley_noise *n, const uint8_t *ct,
                            size_t len, uint8_t *out, size_t *out_len) {
  if (!n->cs.has_key) {
    if (len)
      memcpy(out, ct, len);
    mix_hash(n, ct, len);
    *out_len = len;
    return PARLEY_OK;
  }
  if (len < PARLEY_NOISE_TAGLEN)
    return PARLEY_EPROTO;
  if (n->cs.n == UINT64_MAX)
    return PARLEY_ELIMIT;
  uint8_t nonce[NONCE_LEN];
  unsigned long long mlen = 0;
  make_nonce(nonce, n->cs.n);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          out, &mlen, NULL, ct, len, n->h, sizeof n->h, nonce, n->cs.k) != 0)
    return PARLEY_ECRYPTO;
  n->cs.n++;
  mix_hash(n, ct, len);
  *out_len = (size_t)mlen;
  return PARLEY_OK;
}

/* MixKey(DH(sk, pk)), refusing a low-order remote key (all-zero output). */
static int mix_dh(struct parley_noise *n, const uint8_t sk[32],
                  const uint8_t pk[32]) {
  uint8_t shared[PARLEY_NOISE_DHLEN];
  int rc = PARLEY_OK;
  if (crypto_scalarmult(shared, sk, pk) != 0 ||
      sodium_is_zero(shared, sizeof shared))
    rc = PARLEY_ECRYPTO;
  else
    mix_key(n, shared, sizeof shared);
  sodium_memzero(shared, sizeof shared);
  return rc;
}

/* ---- HandshakeState ---------------------------------------------------- */

static int our_turn(const struct parley_noise *n) {
  return (n->step % 2 == 0) == (n->initiator != 0);
}

static int valid_step(const struct parley_noise *n) {
  return n->step >= 0 && n->step <= 2;
}

/* Bytes of a message before its payload, and whether the payload is
 * encrypted (a key exists by then). */
static size_t tokens_len(int step) {
  switch (step) {
  case 0:
    return PARLEY_NOISE_DHLEN;
  case 1:
    return PARLEY_NOISE_DHLEN + PARLEY_NOISE_DHLEN + PARLEY_NOISE_TAGLEN;
  default:
    return PARLEY_NOISE_DHLEN + PARLEY_NOISE_TAGLEN;
  }
}

static size_t payload_tag(int step) {
  return step == 0 ? 0 : PARLEY_NOISE_TAGLEN;
}

static int ensure_ephemeral(struct parley_noise *n) {
  if (n->has_e)
    return PARLEY_OK;
  randombytes_buf(n->e_sk, sizeof n->e_sk);
  if (crypto_scalarmult_base(n->e_pk, n->e_sk) != 0)
    return PARLEY_EINTERNAL;
  n->has_e = 1;
  return PARLEY_OK;
}

void parley__noise_abort(struct parley_noise *n) {
  sodium_memzero(n, sizeof *n);
  n->step = PARLEY__NOISE_FAILED;
}

static int fail(struct parley_noise *n, int rc) {
  parley__noise_abort(n);
  return rc;
}

int parley_noise_init(struct parley_noise *n, int initiator,
                      const uint8_t s_sk[32], const uint8_t *prologue,
                      size_t prologue_len) {
  uint8_t s_pk[32];
  int rc;

  if (crypto_scalarmult_base(s_pk, s_sk) != 0) {
    sodium_memzero(n, sizeof *n);
    return fail(n, PARLEY_EINVAL);
  }
  rc = parley_noise_init_keys(n, initiator, s_sk, s_pk, prologue,
                              prologue_len);
  sodium_memzero(s_pk, sizeof s_pk);
  return rc;
}

int parley_noise_init_keys(struct parley_noise *n, int initiator,
                           const uint8_t s_sk[32], const uint8_t s_pk[32],
                           const uint8_t *prologue, size_t prologue_len) {
  sodium_memzero(n, sizeof *n);
  if (prologue_len && prologue == NULL)
    return fail(n, PARLEY_EINVAL);
  n->initiator = initiator ? 1 : 0;
  memcpy(n->s_sk, s_sk, sizeof n->s_sk);
  memcpy(n->s_pk, s_pk, sizeof n->s_pk);
  /* InitializeSymmetric: the name fits in HASHLEN, so h = name || zeros. */
  memcpy(n->h, PROTOCOL_NAME, sizeof(PROTOCOL_NAME) - 1);
  memcpy(n->ck, n->h, sizeof n->ck);
  mix_hash(n, prologue, prologue_len);
  return PARLEY_OK;
}

void parley_noise_set_ephemeral(struct parley_noise *n,
                                const uint8_t e_sk[32]) {
  memcpy(n->e_sk, e_sk, sizeof n->e_sk);
  if (crypto_scalarmult_base(n->e_pk, n->e_sk) != 0) {
    /* Only a degenerate scalar could get here; leave e unset so a random
     * one is drawn instead. */
    sodium_memzero(n->e_sk, sizeof n->e_sk);
    n->has_e = 0;
    return;
  }
  n->has_e = 1;
}

int parley__noise_write_cb(struct parley_noise *n, parley__noise_payload_cb cb,
                           void *ctx, uint8_t *out, size_t cap,
                           size_t *out_len) {
  *out_len = 0;
  if (!valid_step(n) || !our_turn(n))
    return PARLEY_EPROTO;
  size_t tok = tokens_len(n->step), tag = payload_tag(n->step);
  size_t lim = cap < PARLEY_NOISE_MAX_MSG ? cap : PARLEY_NOISE_MAX_MSG;
  if (lim < tok + tag)
    return PARLEY_ETOOBIG;

  size_t off = 0, w = 0;
  int rc = PARLEY_OK;
  switch (n->step) {
  case 0: /* -> e */
    if ((rc = ensure_ephemeral(n)) < 0)
      return fail(n, rc);
    memcpy(out, n->e_pk, PARLEY_NOISE_DHLEN);
    mix_hash(n, n->e_pk, PARLEY_NOISE_DHLEN);
    off = PARLEY_NOISE_DHLEN;
    break;
  case 1: /* <- e, ee, s, es */
    if ((rc = ensure_ephemeral(n)) < 0)
      return fail(n, rc);
    memcpy(out, n->e_pk, PARLEY_NOISE_DHLEN);
    mix_hash(n, n->e_pk, PARLEY_NOISE_DHLEN);
    off = PARLEY_NOISE_DHLEN;
    if ((rc = mix_dh(n, n->e_sk, n->re)) < 0)
      return fail(n, rc);
    if ((rc = encrypt_and_hash(n, n->s_pk, PARLEY_NOISE_DHLEN, out + off, &w)) <
        0)
      return fail(n, rc);
    off += w;
    if ((rc = mix_dh(n, n->s_sk, n->re)) < 0)
      return fail(n, rc);
    break;
  default: /* -> s, se */
    if ((rc = encrypt_and_hash(n, n->s_pk, PARLEY_NOISE_DHLEN, out, &w)) < 0)
      return fail(n, rc);
    off = w;
    if ((rc = mix_dh(n, n->s_sk, n->re)) < 0)
      return fail(n, rc);
    break;
  }
  assert(off == tok);

  uint8_t h[PARLEY_NOISE_HASHLEN];
  size_t room = lim - tok - tag, plen = 0;
  memcpy(h, n->h, sizeof h);
  rc = cb(ctx, h, out + off, room, &plen);
  sodium_memzero(h, sizeof h);
  if (rc < 0)
    return fail(n, rc);
  if (plen > room)
    return fail(n, PARLEY_EINTERNAL);
  if ((rc = encrypt_and_hash(n, out + off, plen, out + off, &w)) < 0)
    return fail(n, rc);
  off += w;
  n->step++;
  *out_len = off;
  return PARLEY_OK;
}

struct copy_payload {
  const uint8_t *p;
  size_t len;
};

static int copy_payload_cb(void *ctx, const uint8_t h[PARLEY_NOISE_HASHLEN],
                           uint8_t *payload, size_t cap, size_t *plen) {
  const struct copy_payload *c = ctx;
  (void)h;
  if (c->len > cap)
    return PARLEY_ETOOBIG;
  if (c->len)
    memmove(payload, c->p, c->len);
  *plen = c->len;
  return PARLEY_OK;
}

int parley_noise_write(struct parley_noise *n, const uint8_t *payload,
                       size_t plen, uint8_t *out, size_t cap, size_t *out_len) {
  *out_len = 0;
  if (plen && payload == NULL)
    return PARLEY_EINVAL;
  if (!valid_step(n) || !our_turn(n))
    return PARLEY_EPROTO;
  /* Check the whole size first so a short buffer leaves the state as is. */
  size_t need = tokens_len(n->step) + payload_tag(n->step);
  if (plen > PARLEY_NOISE_MAX_MSG - need || cap < need + plen)
    return PARLEY_ETOOBIG;
  struct copy_payload c = {payload, plen};
  return parley__noise_write_cb(n, copy_payload_cb, &c, out, cap, out_len);
}

int parley__noise_read_h(struct parley_noise *n, const uint8_t *msg, size_t len,
                         uint8_t *payload, size_t cap, size_t *plen,
                         uint8_t h_before[PARLEY_NOISE_HASHLEN]) {
  *plen = 0;
  if (!valid_step(n) || our_turn(n))
    return PARLEY_EPROTO;
  if (msg == NULL || len > PARLEY_NOISE_MAX_MSG)
    return fail(n, PARLEY_EPROTO);
  size_t tok = tokens_len(n->step), tag = payload_tag(n->step);
  if (len < tok + tag)
    return fail(n, PARLEY_EPROTO);
  if (len - tok - tag > cap)
    return fail(n, PARLEY_ETOOBIG);

  size_t r = 0;
  int rc = PARLEY_OK;
  switch (n->step) {
  case 0: /* -> e */
    memcpy(n->re, msg, PARLEY_NOISE_DHLEN);
    n->has_re = 1;
    mix_hash(n, n->re, PARLEY_NOISE_DHLEN);
    break;
  case 1: /* <- e, ee, s, es */
    memcpy(n->re, msg, PARLEY_NOISE_DHLEN);
    n->has_re = 1;
    mix_hash(n, n->re, PARLEY_NOISE_DHLEN);
    if ((rc = mix_dh(n, n->e_sk, n->re)) < 0)
      return fail(n, rc);
    if ((rc = decrypt_and_hash(n, msg + PARLEY_NOISE_DHLEN,
                               PARLEY_NOISE_DHLEN + PARLEY_NOISE_TAGLEN, n->rs,
                               &r)) < 0)
      return fail(n, rc);
    n->has_rs = 1;
    if ((rc = mix_dh(n, n->e_sk, n->rs)) < 0)
      return fail(n, rc);
    break;
  default: /* -> s, se */
    if ((rc = decrypt_and_hash(n, msg, PARLEY_NOISE_DHLEN + PARLEY_NOISE_TAGLEN,
                               n->rs, &r)) < 0)
      return fail(n, rc);
    n->has_rs = 1;
    if ((rc = mix_dh(n, n->e_sk, n->rs)) < 0)
      return fail(n, rc);
    break;
  }

  memcpy(h_before, n->h, PARLEY_NOISE_HASHLEN);
  if ((rc = decrypt_and_hash(n, msg + tok, len - tok, payload, plen)) < 0) {
    sodium_memzero(h_before, PARLEY_NOISE_HASHLEN);
    *plen = 0;
    return fail(n, rc);
  }
  n->step++;
  return PARLEY_OK;
}

int parley_noise_read(struct parley_noise *n, const uint8_t *msg, size_t len,
                      uint8_t *payload, size_t cap, size_t *plen) {
  uint8_t h[PARLEY_NOISE_HASHLEN];
  int rc = parley__noise_read_h(n, msg, len, payload, cap, plen, h);
  sodium_memzero(h, sizeof h);
  return rc;
}

int parley_noise_done(const struct parley_noise *n) { return n->step == 3; }

const uint8_t *parley_noise_remote_static(const struct parley_noise *n) {
  return n->rs;
}

const uint8_t *parley_noise_hash(const struct parley_noise *n) { return n->h; }

int parley_noise_split(struct parley_noise *n, uint8_t tx[PARLEY_NOISE_KEYLEN],
                       uint8_t rx[PARLEY_NOISE_KEYLEN]) {
  if (n->step != 3)
    return PARLEY_EPROTO;
  uint8_t k1[PARLEY_NOISE_HASHLEN], k2[PARLEY_NOISE_HASHLEN];
  hkdf2(n->ck, NULL, 0, k1, k2);
  /* k1 carries initiator -> responder traffic, k2 the other way. */
  memcpy(tx, n->initiator ? k1 : k2, PARLEY_NOISE_KEYLEN);
  memcpy(rx, n->initiator ? k2 : k1, PARLEY_NOISE_KEYLEN);
  sodium_memzero(k1, sizeof k1);
  sodium_memzero(k2, sizeof k2);
  parley_noise_wipe(n);
  return PARLEY_OK;
}

void parley_noise_wipe(struct parley_noise *n) {
  /* A wiped state must not look like a fresh responder: mark it failed. */
  parley__noise_abort(n);
}
