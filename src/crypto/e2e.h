/*
 * e2e.h — end-to-end direct-message envelopes and the receiver's replay
 * window.
 *
 * A direct message is signed by the sender and encrypted to the recipient,
 * so relays, the index and both sides' disks hold only ciphertext:
 *
 *   1. inner  = sig || seq || ts || plaintext, where sig is Ed25519ph
 *      (RFC 8032 prehash, libsodium crypto_sign_init/update/final_create) by
 *      the sender over
 *        "parley-e2e-dm-v1\0" || version || flags || sender pk ||
 *        recipient pk || u8 len || channel || seq || ts || u64 len || pt
 *   2. K = 32 random bytes, used for this message only;
 *      body = XChaCha20-Poly1305-IETF(K, random 24-byte nonce,
 *                                     AD = the envelope header, inner)
 *   3. K is wrapped with crypto_box_seal (ephemeral X25519 +
 *      XSalsa20-Poly1305) to the recipient's X25519 key and, with
 *      PARLEY_E2E_SENDER_COPY, a second time to the sender's own key so the
 *      sender can read its sent messages back from its store.
 *
 * Envelope bytes (version 1; integers big-endian):
 *
 *   off  len  field
 *   0    1    version = 1
 *   1    1    flags: PARLEY_E2E_SENDER_COPY (0x01); other bits are EPROTO
 *   2    24   nonce
 *   26   80   wrap for the recipient (crypto_box_seal of K)
 *   106  80   wrap for the sender     (only if SENDER_COPY)
 *   H    n    body: AEAD ciphertext of inner (80 + pt_len) || 16-byte tag
 *
 * H (header length) is 106 or 186.  docs/internals/E2E.md explains why the
 * composition is sound and what it does not protect.
 *
 * Replay and reordering: seq is authenticated (it is signed), so a receiver
 * feeds it to a struct parley_replay kept per (sender, channel) after
 * parley_e2e_open succeeded.  The daemon must also check that the MSG
 * frame's publisher, channel, seq and ts are the ones the envelope proved.
 *
 * Every function here is pure apart from randombytes_buf: no I/O, no clock,
 * no allocation.  parley_crypto_init() must have been called.
 */
#ifndef PARLEY_CRYPTO_E2E_H
#define PARLEY_CRYPTO_E2E_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "crypto/identity.h"

#define PARLEY_E2E_VERSION 1u
#define PARLEY_E2E_SENDER_COPY 0x01u
#define PARLEY_E2E_FLAGS_ALL 0x01u

#define PARLEY_E2E_NONCE_LEN 24u
#define PARLEY_E2E_WRAP_LEN 80u  /* crypto_box_SEALBYTES + 32 */
#define PARLEY_E2E_TAG_LEN 16u
#define PARLEY_E2E_INNER_LEN 80u /* sig 64 + seq 8 + ts 8 */
#define PARLEY_E2E_HEADER_MIN (2u + PARLEY_E2E_NONCE_LEN + PARLEY_E2E_WRAP_LEN)
#define PARLEY_E2E_HEADER_MAX (PARLEY_E2E_HEADER_MIN + PARLEY_E2E_WRAP_LEN)
/* Smallest envelope (empty plaintext, no sender copy). */
#define PARLEY_E2E_MIN_LEN                                                    \
  (PARLEY_E2E_HEADER_MIN + PARLEY_E2E_INNER_LEN + PARLEY_E2E_TAG_LEN)
/* Largest plaintext: the envelope must still fit in a MSG frame. */
#define PARLEY_E2E_MAX_PLAINTEXT (PARLEY_MAX_FRAME - 4096u)
/* Largest envelope any decoder accepts. */
#define PARLEY_E2E_MAX_LEN                                                    \
  (PARLEY_E2E_HEADER_MAX + PARLEY_E2E_INNER_LEN + PARLEY_E2E_TAG_LEN +        \
   PARLEY_E2E_MAX_PLAINTEXT)
/* Channel (e.g. "@" + recipient id): 1..255 bytes, no NUL. */
#define PARLEY_E2E_MAX_CHANNEL 255u

/* A decoded envelope: a view into the caller's buffer (borrowed; valid as
 * long as that buffer is). */
struct parley_e2e_envelope {
  uint8_t version;
  uint8_t flags;
  const uint8_t *nonce;          /* 24 bytes */
  const uint8_t *wrap_recipient; /* 80 bytes */
  const uint8_t *wrap_sender;    /* 80 bytes, or NULL without SENDER_COPY */
  const uint8_t *body;           /* body_len bytes, ciphertext || tag */
  size_t body_len;               /* >= PARLEY_E2E_INNER_LEN + TAG_LEN */
};

/* What parley_e2e_open proved besides the plaintext. */
struct parley_e2e_meta {
  uint64_t seq;   /* sender's sequence number for this channel */
  uint64_t ts_ms; /* sender's clock at sealing, Unix ms */
  size_t len;     /* plaintext length written to out */
};

/* OUT: *len = size of the envelope for a plaintext of pt_len bytes with
 * these flags.  PARLEY_EINVAL for unknown flags, PARLEY_ETOOBIG past
 * PARLEY_E2E_MAX_PLAINTEXT. */
PARLEY_NODISCARD int parley_e2e_sealed_len(size_t pt_len, unsigned flags,
                                           size_t *len) PARLEY_NONNULL(3);

/* Seals pt[0..pt_len) from sender to recipient_pk (Ed25519) for channel
 * (NUL-terminated, 1..255 bytes) with the sender's seq and ts.  Writes the
 * envelope into out (cap bytes; parley_e2e_sealed_len tells how many).
 * out must not overlap pt.  Borrows everything.
 * Errors: PARLEY_EINVAL (bad channel, flags, or a recipient key that is not
 * a usable Ed25519 point), PARLEY_ETOOBIG (plaintext too large or cap too
 * small), PARLEY_EINTERNAL. */
PARLEY_NODISCARD int parley_e2e_seal(const struct parley_identity *sender,
                                     const uint8_t recipient_pk[32],
                                     const char *channel, uint64_t seq,
                                     uint64_t ts_ms, const uint8_t *pt,
                                     size_t pt_len, unsigned flags,
                                     uint8_t *out, size_t cap,
                                     size_t *written)
    PARLEY_NONNULL(1, 2, 3, 9, 11);

/* Opens an envelope addressed to `me`, claimed to come from sender_pk on
 * channel.  The plaintext goes to out, which needs
 * parley_e2e_open_cap(len) bytes (always <= len); the rest of out is
 * scratch.  On any failure out is wiped and nothing is returned.
 * Errors: PARLEY_EPROTO / PARLEY_EVERSION (malformed envelope),
 * PARLEY_ECRYPTO (not for us, tampered, wrong sender, wrong channel: the
 * causes are deliberately not told apart), PARLEY_ETOOBIG (cap too small),
 * PARLEY_EINVAL (bad channel argument). */
PARLEY_NODISCARD int parley_e2e_open(const struct parley_identity *me,
                                     const uint8_t sender_pk[32],
                                     const char *channel, const uint8_t *env,
                                     size_t len, uint8_t *out, size_t cap,
                                     struct parley_e2e_meta *meta)
    PARLEY_NONNULL(1, 2, 3, 4, 6, 8);

/* The sender reads back its own envelope (sealed with SENDER_COPY) sent to
 * recipient_pk, e.g. from its store or outbox.  Same contract as
 * parley_e2e_open; PARLEY_ENOTFOUND if the envelope has no sender copy. */
PARLEY_NODISCARD int parley_e2e_open_sent(const struct parley_identity *me,
                                          const uint8_t recipient_pk[32],
                                          const char *channel,
                                          const uint8_t *env, size_t len,
                                          uint8_t *out, size_t cap,
                                          struct parley_e2e_meta *meta)
    PARLEY_NONNULL(1, 2, 3, 4, 6, 8);

/* Bytes of scratch parley_e2e_open needs for an envelope of len bytes
 * (0 if len is too short to be an envelope). */
size_t parley_e2e_open_cap(size_t len);

/* Pure decoder: parses the envelope layout (no cryptography).  The result
 * borrows buf.  The envelope is one whole MSG body, so there is no partial
 * input (never PARLEY_EAGAIN).  Errors: PARLEY_EVERSION, PARLEY_EPROTO (unknown flags, too short),
 * PARLEY_ETOOBIG (over PARLEY_E2E_MAX_LEN). */
PARLEY_NODISCARD int parley_e2e_decode(const uint8_t *buf, size_t len,
                                       struct parley_e2e_envelope *env)
    PARLEY_NONNULL(1, 3);

/* Pure encoder: the inverse of parley_e2e_decode (byte-identical).
 * Errors: PARLEY_EINVAL (inconsistent view), PARLEY_ETOOBIG (cap). */
PARLEY_NODISCARD int parley_e2e_encode(const struct parley_e2e_envelope *env,
                                       uint8_t *buf, size_t cap,
                                       size_t *written)
    PARLEY_NONNULL(1, 2, 4);

/* ---- replay window ----------------------------------------------------- */

/* Per (sender, channel): the highest seq accepted and which of the 64
 * seqs up to it were seen (bit i = top - i).  A zeroed struct is an empty
 * window.  The caller persists both fields with its store so that a
 * restart does not reopen the window. */
struct parley_replay {
  uint64_t top;  /* highest accepted seq; 0 = nothing yet */
  uint64_t seen; /* bit i set: seq top - i was accepted */
};

#define PARLEY_REPLAY_WINDOW 64u

enum parley_replay_order {
  PARLEY_REPLAY_NEXT = 0, /* seq == top + 1: in order */
  PARLEY_REPLAY_GAP = 1,  /* seq > top + 1: earlier seqs are missing */
  PARLEY_REPLAY_LATE = 2, /* seq < top, not seen: arrived out of order */
};

/* Tells how seq relates to the window without changing it.
 * OUT: *order (enum parley_replay_order) when PARLEY_OK.
 * Errors: PARLEY_EINVAL (seq 0), PARLEY_EEXIST (seen before: a replay or a
 * retransmission), PARLEY_ERANGE (older than the window: it cannot be
 * told from a replay here; the caller may fall back to its store's
 * (publisher, channel, seq) uniqueness). */
PARLEY_NODISCARD int parley_replay_check(const struct parley_replay *w,
                                         uint64_t seq, int *order)
    PARLEY_NONNULL(1, 3);

/* parley_replay_check, then records seq on success.  Call it only after
 * the envelope carrying seq was opened successfully. */
PARLEY_NODISCARD int parley_replay_accept(struct parley_replay *w,
                                          uint64_t seq, int *order)
    PARLEY_NONNULL(1, 3);

#endif
