/*
 * session.h — the transport phase of a secure link: one AEAD key and one
 * 64-bit nonce counter per direction (nonce = 4 zero bytes || counter
 * little-endian, as Noise's CipherState).  The AEAD is ChaCha20-Poly1305
 * IETF, or AES-256-GCM when both sides said in the handshake that their
 * CPU runs it in hardware (handshake.h).  A counter never repeats: at
 * 2^64-1 the session refuses to seal or open (the link must be closed).
 * Additional data is the 4-byte record header.
 */
#ifndef PARLEY_CRYPTO_SESSION_H
#define PARLEY_CRYPTO_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PARLEY_SESSION_TAG 16

/* The session's AEAD (struct parley_session.aead). */
#define PARLEY_SESSION_CHACHA 0 /* ChaCha20-Poly1305 IETF */
#define PARLEY_SESSION_AESGCM 1 /* AES-256-GCM */

struct parley_session {
  uint8_t tx_key[32];
  uint8_t rx_key[32];
  uint64_t tx_n;
  uint64_t rx_n;
  uint8_t aead; /* PARLEY_SESSION_CHACHA or _AESGCM */
};

/* A ChaCha20-Poly1305 session. */
void parley_session_init(struct parley_session *s, const uint8_t tx[32],
                         const uint8_t rx[32]) PARLEY_NONNULL(1, 2, 3);
/* A session with the given AEAD; PARLEY_EUNAVAIL for AES-256-GCM on a CPU
 * without it (nothing is set up). */
PARLEY_NODISCARD int parley_session_init_aead(struct parley_session *s,
                                              const uint8_t tx[32],
                                              const uint8_t rx[32], int aead)
    PARLEY_NONNULL(1, 2, 3);
/* 1 if this CPU runs AES-256-GCM in hardware (libsodium's test: AES-NI and
 * carry-less multiplication). */
int parley_session_aesgcm_available(void);
/* Encrypts pt[0..len) into out (len + 16 bytes), with ad[0..ad_len).
 * out may equal pt (in place).  PARLEY_ELIMIT when the nonce space is used up. */
PARLEY_NODISCARD int parley_session_seal(struct parley_session *s,
                                         const uint8_t *ad, size_t ad_len,
                                         const uint8_t *pt, size_t len,
                                         uint8_t *out)
    PARLEY_NONNULL(1, 6);
/* Decrypts ct[0..len) (len >= 16) into out (len - 16 bytes).
 * PARLEY_ECRYPTO on a bad tag (the counter does not advance). */
PARLEY_NODISCARD int parley_session_open(struct parley_session *s,
                                         const uint8_t *ad, size_t ad_len,
                                         const uint8_t *ct, size_t len,
                                         uint8_t *out)
    PARLEY_NONNULL(1, 6);
void parley_session_wipe(struct parley_session *s) PARLEY_NONNULL(1);

#endif
