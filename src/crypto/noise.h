/*
 * noise.h — the Noise_XX_25519_ChaChaPoly_BLAKE2b handshake pattern
 * (Noise Protocol Framework, revision 34) built only from libsodium
 * primitives: X25519 (crypto_scalarmult), ChaCha20-Poly1305 IETF
 * (crypto_aead_chacha20poly1305_ietf, nonce = 4 zero bytes || u64 LE
 * counter), BLAKE2b-512 (crypto_generichash) and HMAC/HKDF over it.
 *
 *   XX:
 *     -> e
 *     <- e, ee, s, es
 *     -> s, se
 *
 * This module knows raw X25519 keys and opaque payloads only; binding those
 * to Ed25519 identities is handshake.h's job.  It is pure apart from
 * randombytes for the ephemeral key (which tests can replace with
 * parley_noise_set_ephemeral to reproduce published test vectors).
 */
#ifndef PARLEY_CRYPTO_NOISE_H
#define PARLEY_CRYPTO_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PARLEY_NOISE_DHLEN 32
#define PARLEY_NOISE_HASHLEN 64
#define PARLEY_NOISE_KEYLEN 32
#define PARLEY_NOISE_TAGLEN 16
#define PARLEY_NOISE_MAX_MSG 65535

struct parley_noise_cipher {
  uint8_t k[PARLEY_NOISE_KEYLEN];
  uint64_t n;
  int has_key;
};

struct parley_noise {
  int initiator;
  int step; /* messages processed so far: 0..3 */
  struct parley_noise_cipher cs;
  uint8_t ck[PARLEY_NOISE_HASHLEN];
  uint8_t h[PARLEY_NOISE_HASHLEN];
  uint8_t s_sk[32], s_pk[32];
  uint8_t e_sk[32], e_pk[32];
  uint8_t rs[32], re[32];
  int has_e, has_rs, has_re;
};

/* Starts a handshake.  s_sk is the local static X25519 secret (borrowed,
 * copied).  prologue may be NULL when prologue_len is 0. */
PARLEY_NODISCARD int parley_noise_init(struct parley_noise *n, int initiator,
                                       const uint8_t s_sk[32],
                                       const uint8_t *prologue,
                                       size_t prologue_len)
    PARLEY_NONNULL(1, 3);
/* The same with the static public key given: s_pk must be X25519(s_sk),
 * as an identity keeps it (identity.h x_pk), which saves a base-point
 * multiplication per handshake (about a tenth of one). */
PARLEY_NODISCARD int parley_noise_init_keys(struct parley_noise *n,
                                            int initiator,
                                            const uint8_t s_sk[32],
                                            const uint8_t s_pk[32],
                                            const uint8_t *prologue,
                                            size_t prologue_len)
    PARLEY_NONNULL(1, 3, 4);
/* Test hook: use this ephemeral secret instead of a random one.  Call
 * before the first write (initiator) or second message (responder). */
void parley_noise_set_ephemeral(struct parley_noise *n, const uint8_t e_sk[32])
    PARLEY_NONNULL(1, 2);

/* Writes the next handshake message carrying payload into out.
 * PARLEY_EPROTO if it is not our turn; PARLEY_ETOOBIG if out is short. */
PARLEY_NODISCARD int parley_noise_write(struct parley_noise *n,
                                        const uint8_t *payload, size_t plen,
                                        uint8_t *out, size_t cap,
                                        size_t *out_len)
    PARLEY_NONNULL(1, 4, 6);
/* Reads the peer's next message, writing its decrypted payload to payload.
 * PARLEY_EPROTO if malformed or out of turn, PARLEY_ECRYPTO if a tag fails
 * or a DH result is all zeros. */
PARLEY_NODISCARD int parley_noise_read(struct parley_noise *n,
                                       const uint8_t *msg, size_t len,
                                       uint8_t *payload, size_t cap,
                                       size_t *plen)
    PARLEY_NONNULL(1, 4, 6);

/* 1 once all three messages are processed. */
int parley_noise_done(const struct parley_noise *n) PARLEY_NONNULL(1);
/* The remote static key (valid after it was received). */
const uint8_t *parley_noise_remote_static(const struct parley_noise *n)
    PARLEY_NONNULL(1);
/* Current handshake hash (channel binding). */
const uint8_t *parley_noise_hash(const struct parley_noise *n)
    PARLEY_NONNULL(1);
/* Split(): the sending and receiving keys of the transport phase for this
 * side.  Wipes the handshake state afterwards. */
PARLEY_NODISCARD int parley_noise_split(struct parley_noise *n,
                                        uint8_t tx[PARLEY_NOISE_KEYLEN],
                                        uint8_t rx[PARLEY_NOISE_KEYLEN])
    PARLEY_NONNULL(1, 2, 3);
void parley_noise_wipe(struct parley_noise *n) PARLEY_NONNULL(1);

#endif
