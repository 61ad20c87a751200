/*
 * handshake.h — Parley's authenticated key exchange: Noise XX (noise.h)
 * whose static keys are the X25519 forms of the two Ed25519 identities.
 *
 * Prologue: "parley/1" (both sides).  Payloads:
 *   message 1 (-> e):          empty
 *   message 2 (<- e,ee,s,es):  responder Ed25519 pk (32) || Ed25519 sig (64)
 *                              || u8 aeads
 *   message 3 (-> s,se):       initiator Ed25519 pk (32) || Ed25519 sig (64)
 *                              || u8 aeads
 * aeads says which transport AEADs beyond ChaCha20-Poly1305 the sender
 * runs (PARLEY_HS_AEAD_*; other bits are refused); a 96-byte payload
 * without it means none.  The session uses AES-256-GCM when both sides
 * set PARLEY_HS_AEAD_AESGCM, else ChaCha20-Poly1305.
 * Each signature covers "parley-hs-sig" || the handshake hash h before the
 * payload was written, proving possession of the Ed25519 key itself (the
 * X25519 conversion alone maps two Ed25519 keys to one X25519 key).  The
 * reader checks the signature and that the Ed25519 key converts to the
 * Noise static key received.  If an expected remote key was set, any other
 * key is refused with PARLEY_EAUTH.
 */
#ifndef PARLEY_CRYPTO_HANDSHAKE_H
#define PARLEY_CRYPTO_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "crypto/identity.h"
#include "crypto/noise.h"
#include "crypto/session.h"

/* aeads bits: AES-256-GCM in hardware. */
#define PARLEY_HS_AEAD_AESGCM 0x1u

struct parley_handshake {
  struct parley_noise noise;
  const struct parley_identity *id; /* borrowed */
  uint8_t expect[32];
  int has_expect;
  uint8_t remote_pk[32]; /* remote Ed25519 key once authenticated */
  int has_remote;
  uint8_t aeads, remote_aeads; /* PARLEY_HS_AEAD_* offered by each side */
};

/* id is borrowed and must outlive the handshake.  expected_remote may be
 * NULL (accept any authenticated key). */
PARLEY_NODISCARD int parley_handshake_init(struct parley_handshake *hs,
                                           int initiator,
                                           const struct parley_identity *id,
                                           const uint8_t *expected_remote)
    PARLEY_NONNULL(1, 3);
/* Offers only these AEADs (masked by what the CPU runs); call before the
 * first message we write.  For tests and for pinning ChaCha20-Poly1305
 * (aeads 0). */
void parley_handshake_set_aeads(struct parley_handshake *hs, uint8_t aeads)
    PARLEY_NONNULL(1);
/* 1 if the next step is ours to write. */
int parley_handshake_wants_write(const struct parley_handshake *hs)
    PARLEY_NONNULL(1);
/* Writes our next message (out needs PARLEY_WIRE_MAX_HS bytes). */
PARLEY_NODISCARD int parley_handshake_write(struct parley_handshake *hs,
                                            uint8_t *out, size_t cap,
                                            size_t *out_len)
    PARLEY_NONNULL(1, 2, 4);
/* Reads the peer's next message.  PARLEY_EAUTH if the peer's identity
 * proof fails or it is not the expected key; PARLEY_ECRYPTO / PARLEY_EPROTO
 * for broken messages. */
PARLEY_NODISCARD int parley_handshake_read(struct parley_handshake *hs,
                                           const uint8_t *msg, size_t len)
    PARLEY_NONNULL(1, 2);
int parley_handshake_done(const struct parley_handshake *hs) PARLEY_NONNULL(1);
/* After done: the session keys and the remote's Ed25519 key.  Wipes the
 * handshake. */
PARLEY_NODISCARD int parley_handshake_finish(struct parley_handshake *hs,
                                             struct parley_session *out,
                                             uint8_t remote_pk[32])
    PARLEY_NONNULL(1, 2, 3);
void parley_handshake_wipe(struct parley_handshake *hs) PARLEY_NONNULL(1);

#endif
