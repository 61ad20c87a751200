/*
 * chain.h — a publisher's per-channel hash chain and its signed
 * checkpoints, so that messages relayed by third parties stay verifiable
 * as the publisher's own without one Ed25519 signature per message.
 *
 * Every message (publisher, channel, seq, ts_ms, flags, body) has a digest.
 * The publisher folds the digests of one channel, in seq order, into a
 * chain: h(0) = 32 zero bytes, h(seq) = next(h(seq - 1), digest(seq)).
 * Now and then (every N messages or T milliseconds, chosen by the caller)
 * it signs the latest h(c): a checkpoint (c, h(c), sig).  Anyone holding
 * h(k - 1), the messages k..c and a checkpoint for c can check all of them
 * with one signature verification: a relay cannot forge, alter, drop,
 * duplicate or reorder a message inside the run, because the recomputed
 * h(c) would differ from the signed one (BLAKE2b-256 collision
 * resistance).
 *
 * Byte strings hashed or signed (integers big-endian, "||" concatenation,
 * labels are ASCII without a NUL):
 *
 *   digest = BLAKE2b-256("parley-msg-v1" || publisher(32) || u8 len ||
 *                        channel || u64 seq || u64 ts_ms || u8 flags ||
 *                        u64 body_len || body)
 *   next   = BLAKE2b-256("parley-chain-v1" || prev(32) || digest(32))
 *   sig    = Ed25519(publisher's key, "parley-chain-sig-v1" ||
 *                    publisher(32) || u8 len || channel || u64 seq ||
 *                    hash(32))
 *
 * flags are the stored message flags (PARLEY_MSG_DIRECT, PARLEY_MSG_BINARY);
 * the transport-only ACK_REQ bit is never part of a message's identity.
 * The labels differ, so no digest, link or signature input of one kind can
 * be read as another kind.  Everything here is pure (libsodium only): no
 * clock, no I/O, no allocation.
 */
#ifndef PARLEY_CRYPTO_CHAIN_H
#define PARLEY_CRYPTO_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct parley_identity;

#define PARLEY_CHAIN_HASH 32
#define PARLEY_CHAIN_SIG 64
/* Longest channel the chain accepts (a u8 length prefix). */
#define PARLEY_CHAIN_MAX_CHANNEL 255u

/* One message as the chain sees it.  All pointers are borrowed. */
struct parley_chain_msg {
  const uint8_t *publisher; /* 32 bytes */
  const char *channel;
  size_t channel_len;       /* 1..PARLEY_CHAIN_MAX_CHANNEL */
  uint64_t seq;
  uint64_t ts_ms;
  uint32_t flags;           /* PARLEY_MSG_DIRECT | PARLEY_MSG_BINARY only */
  const uint8_t *body;      /* may be NULL when body_len is 0 */
  size_t body_len;
};

/* One link of a run given to parley_chain_verify_run: either a whole
 * message (digest == NULL; publisher and channel come from the run) or only
 * its digest (the relay left the body out; the chain still covers it). */
struct parley_chain_entry {
  uint64_t seq;
  uint64_t ts_ms;
  uint32_t flags;
  const uint8_t *body;
  size_t body_len;
  const uint8_t *digest;    /* 32 bytes, or NULL for a whole message */
};

/* Computes a message's digest.  PARLEY_EINVAL for a channel that is empty
 * or longer than 255 bytes, flags outside DIRECT|BINARY, or a NULL body
 * with a length.  OUT: out (untouched on error). */
PARLEY_NODISCARD int parley_chain_digest(const struct parley_chain_msg *m,
                                         uint8_t out[PARLEY_CHAIN_HASH])
    PARLEY_NONNULL(1, 2);

/* out = next(prev, digest).  out may alias prev. */
void parley_chain_next(const uint8_t prev[PARLEY_CHAIN_HASH],
                       const uint8_t digest[PARLEY_CHAIN_HASH],
                       uint8_t out[PARLEY_CHAIN_HASH]) PARLEY_NONNULL(1, 2, 3);

/* Signs checkpoint (channel, seq, hash) as id (the publisher is id->pk).
 * PARLEY_EINVAL for a bad channel.  OUT: sig. */
PARLEY_NODISCARD int parley_chain_sign(const struct parley_identity *id,
                                       const char *channel,
                                       size_t channel_len, uint64_t seq,
                                       const uint8_t hash[PARLEY_CHAIN_HASH],
                                       uint8_t sig[PARLEY_CHAIN_SIG])
    PARLEY_NONNULL(1, 2, 5, 6);

/* Checks a checkpoint signature under the publisher's key.  PARLEY_OK,
 * PARLEY_ECRYPTO if it does not verify, PARLEY_EINVAL for a bad channel. */
PARLEY_NODISCARD int parley_chain_verify(const uint8_t publisher[32],
                                         const char *channel,
                                         size_t channel_len, uint64_t seq,
                                         const uint8_t hash[PARLEY_CHAIN_HASH],
                                         const uint8_t sig[PARLEY_CHAIN_SIG])
    PARLEY_NONNULL(1, 2, 5, 6);

/* Verifies a run of n >= 1 consecutive links of publisher's chain on
 * channel: e[0].seq >= 1 and e[i].seq == e[0].seq + i (no gap, duplicate
 * or reordering), prev is h(e[0].seq - 1), the final hash equals cp_hash,
 * cp_seq is the last entry's seq, and cp_sig signs (channel, cp_seq,
 * cp_hash) under publisher.  Returns PARLEY_OK, or PARLEY_ECRYPTO when
 * anything disagrees (the whole run must then be refused), PARLEY_EINVAL
 * for malformed arguments (n == 0, bad channel, bad flags, NULL body with
 * a length).  OUT: if hashes is not NULL, hashes[i] receives h(e[i].seq)
 * (meaningful only on PARLEY_OK). */
PARLEY_NODISCARD int parley_chain_verify_run(
    const uint8_t publisher[32], const char *channel, size_t channel_len,
    const uint8_t prev[PARLEY_CHAIN_HASH],
    const struct parley_chain_entry *e, size_t n, uint64_t cp_seq,
    const uint8_t cp_hash[PARLEY_CHAIN_HASH],
    const uint8_t cp_sig[PARLEY_CHAIN_SIG], uint8_t (*hashes)[PARLEY_CHAIN_HASH])
    PARLEY_NONNULL(1, 2, 4, 5, 8, 9);

#endif
