/*
 * session.c — transport-phase AEAD of a secure link.
 *
 * Each direction is a Noise CipherState: ChaCha20-Poly1305 IETF (or
 * AES-256-GCM, when both sides run it in hardware) under the key Split()
 * gave that direction, nonce = 4 zero bytes || counter (u64
 * little-endian).  A session uses one AEAD for its whole life, so a key is
 * never used with two ciphers.  The counter only moves forward and only
 * after a record was sealed or authenticated, so a replayed, reordered or
 * forged record fails its tag.  2^64-1 is never used as a nonce (Noise reserves it); at
 * that point the session refuses to go on and the link must be closed.
 */
#include "crypto/session.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#define NONCE_LEN crypto_aead_chacha20poly1305_ietf_NPUBBYTES

static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == PARLEY_SESSION_TAG,
              "tag length");
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == 32, "key length");
static_assert(crypto_aead_aes256gcm_ABYTES == PARLEY_SESSION_TAG,
              "tag length");
static_assert(crypto_aead_aes256gcm_KEYBYTES == 32, "key length");
static_assert(crypto_aead_aes256gcm_NPUBBYTES == NONCE_LEN, "nonce length");

static void make_nonce(uint8_t nonce[NONCE_LEN], uint64_t ctr) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++)
    nonce[4 + i] = (uint8_t)(ctr >> (8 * i));
}

void parley_session_init(struct parley_session *s, const uint8_t tx[32],
                         const uint8_t rx[32]) {
  memcpy(s->tx_key, tx, sizeof s->tx_key);
  memcpy(s->rx_key, rx, sizeof s->rx_key);
  s->tx_n = 0;
  s->rx_n = 0;
  s->aead = PARLEY_SESSION_CHACHA;
}

int parley_session_aesgcm_available(void) {
  return crypto_aead_aes256gcm_is_available() != 0;
}

int parley_session_init_aead(struct parley_session *s, const uint8_t tx[32],
                             const uint8_t rx[32], int aead) {
  if (aead != PARLEY_SESSION_CHACHA && aead != PARLEY_SESSION_AESGCM)
    return PARLEY_EINVAL;
  if (aead == PARLEY_SESSION_AESGCM && !parley_session_aesgcm_available())
    return PARLEY_EUNAVAIL;
  parley_session_init(s, tx, rx);
  s->aead = (uint8_t)aead;
  return PARLEY_OK;
}

int parley_session_seal(struct parley_session *s, const uint8_t *ad,
                        size_t ad_len, const uint8_t *pt, size_t len,
                        uint8_t *out) {
  if ((ad_len && ad == NULL) || (len && pt == NULL))
    return PARLEY_EINVAL;
  if (s->tx_n == UINT64_MAX)
    return PARLEY_ELIMIT;
  if (len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
    return PARLEY_ETOOBIG;
  uint8_t nonce[NONCE_LEN];
  unsigned long long clen = 0;
  make_nonce(nonce, s->tx_n);
  if (s->aead == PARLEY_SESSION_AESGCM
          ? crypto_aead_aes256gcm_encrypt(out, &clen, pt, len, ad, ad_len,
                                          NULL, nonce, s->tx_key) != 0
          : crypto_aead_chacha20poly1305_ietf_encrypt(
                out, &clen, pt, len, ad, ad_len, NULL, nonce, s->tx_key) != 0)
    return PARLEY_EINTERNAL;
  s->tx_n++;
  return PARLEY_OK;
}

int parley_session_open(struct parley_session *s, const uint8_t *ad,
                        size_t ad_len, const uint8_t *ct, size_t len,
                        uint8_t *out) {
  if ((ad_len && ad == NULL) || ct == NULL)
    return PARLEY_EINVAL;
  /* Too short to carry a tag: it cannot be authentic. */
  if (len < PARLEY_SESSION_TAG)
    return PARLEY_ECRYPTO;
  if (s->rx_n == UINT64_MAX)
    return PARLEY_ELIMIT;
  uint8_t nonce[NONCE_LEN];
  unsigned long long mlen = 0;
  make_nonce(nonce, s->rx_n);
  if (s->aead == PARLEY_SESSION_AESGCM
          ? crypto_aead_aes256gcm_decrypt(out, &mlen, NULL, ct, len, ad,
                                          ad_len, nonce, s->rx_key) != 0
          : crypto_aead_chacha20poly1305_ietf_decrypt(
                out, &mlen, NULL, ct, len, ad, ad_len, nonce, s->rx_key) != 0)
    return PARLEY_ECRYPTO;
  s->rx_n++;
  return PARLEY_OK;
}

void parley_session_wipe(struct parley_session *s) {
  sodium_memzero(s, sizeof *s);
}
