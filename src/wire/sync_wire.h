/*
 * sync_wire.h — payloads of the peer-to-peer frames that carry hash-chain
 * checkpoints and anti-entropy (wire.h carries them as opaque frames:
 * CHAIN_SIG 0x40, SYNC_QUERY 0x41, SYNC_SUMMARY 0x42, SYNC_FETCH 0x43,
 * SYNC_BATCH 0x44), as pure functions.  docs/PROTOCOL.md section 14 has
 * the conversation; crypto/chain.h the hashes and signatures.
 *
 * Layouts (big-endian; key = 32 bytes, sig = 64 bytes, str8 = u8 length +
 * 0..255 bytes without NUL):
 *
 *   CHAIN_SIG     key publisher, str8 channel, u64 seq, key hash, sig sig
 *   SYNC_QUERY    u32 req, str8 topic
 *   SYNC_SUMMARY  u32 req, str8 topic, u32 count, count x summary-entry
 *   SYNC_FETCH    u32 req, str8 topic, key publisher, u64 from, u64 to
 *   SYNC_BATCH    u32 req, str8 topic, key publisher, u64 from, key prev,
 *                 u64 cp_seq, key cp_hash, sig cp_sig, u32 count,
 *                 count x batch-entry
 *
 *   summary-entry key publisher, u64 max_seq, u64 signed_seq
 *   batch-entry   u8 kind, then
 *                   kind 1 (MSG):    u64 ts_ms, u8 flags, u32 body_len, body
 *                   kind 2 (DIGEST): key digest
 *
 * Rules the decoders enforce (PARLEY_EPROTO otherwise), and the encoders
 * too (PARLEY_EINVAL / PARLEY_ETOOBIG):
 *   - CHAIN_SIG: seq >= 1.
 *   - SYNC_SUMMARY: count <= PARLEY_SYNC_MAX_SUMMARY; signed_seq <= max_seq
 *     is NOT required (a peer may hold a checkpoint beyond its messages).
 *   - SYNC_FETCH: 1 <= from <= to.
 *   - SYNC_BATCH: count <= PARLEY_SYNC_MAX_BATCH.  count == 0 means "I can
 *     serve nothing of that range" and then from, prev, cp_seq, cp_hash
 *     and cp_sig must be all zero.  Otherwise from >= 1 and cp_seq ==
 *     from + count - 1 (entry i is seq from + i; the run ends at the
 *     checkpoint), without overflow.  Entry kinds are 1 or 2; MSG flags
 *     hold only DIRECT, BINARY and PRIVATE (the stored flags).
 *   - The entries fill the payload exactly: nothing may follow.
 *
 * Decoders never allocate; strings, keys, bodies and the raw entry bytes
 * point into the caller's buffer.  Lists are kept raw and walked with the
 * _next functions (each entry already validated).  The codec is canonical:
 * encode(decode(b)) == b for every b that decodes.
 */
#ifndef PARLEY_WIRE_SYNC_WIRE_H
#define PARLEY_WIRE_SYNC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/wire.h"

#define PARLEY_SYNC_SIG_LEN 64
/* Most entries in one SYNC_SUMMARY / SYNC_BATCH. */
#define PARLEY_SYNC_MAX_SUMMARY 4096u
#define PARLEY_SYNC_MAX_BATCH 512u
#define PARLEY_SYNC_ENTRY_MSG 1
#define PARLEY_SYNC_ENTRY_DIGEST 2
/* Sizes of the fixed parts. */
#define PARLEY_SYNC_SUMMARY_ENTRY (32 + 8 + 8)
#define PARLEY_SYNC_MSG_ENTRY_MIN (1 + 8 + 1 + 4)
#define PARLEY_SYNC_DIGEST_ENTRY (1 + 32)
/* SYNC_BATCH before its entries, for a topic of topic_len bytes. */
#define PARLEY_SYNC_BATCH_HDR(topic_len)                                      \
  (4 + 1 + (topic_len) + 32 + 8 + 32 + 8 + 32 + PARLEY_SYNC_SIG_LEN + 4)

struct parley_sync_chain_sig {
  const uint8_t *publisher; /* 32 */
  struct parley_str channel;
  uint64_t seq;
  const uint8_t *hash;      /* 32 */
  const uint8_t *sig;       /* 64 */
};

struct parley_sync_query {
  uint32_t req;
  struct parley_str topic;
};

struct parley_sync_summary_entry {
  const uint8_t *publisher; /* 32 */
  uint64_t max_seq;
  uint64_t signed_seq;
};

/* To encode, set `entries` to `count` entries.  After decode, `entries` is
 * NULL and raw/raw_len hold the validated entries for
 * parley_sync_summary_next.  Encoding with entries NULL copies raw (after
 * checking it). */
struct parley_sync_summary {
  uint32_t req;
  struct parley_str topic;
  uint32_t count;
  const struct parley_sync_summary_entry *entries;
  const uint8_t *raw;
  size_t raw_len;
};

struct parley_sync_fetch {
  uint32_t req;
  struct parley_str topic;
  const uint8_t *publisher; /* 32 */
  uint64_t from, to;
};

struct parley_sync_entry {
  uint8_t kind;             /* PARLEY_SYNC_ENTRY_MSG or _DIGEST */
  uint64_t ts_ms;           /* MSG */
  uint8_t flags;            /* MSG */
  const uint8_t *body;      /* MSG */
  uint32_t body_len;        /* MSG */
  const uint8_t *digest;    /* DIGEST: 32 bytes */
};

/* Entries are always given raw: build them with parley_sync_entry_encode
 * (appending into one buffer) and set raw/raw_len/count.  For count 0 the
 * pointers prev/cp_hash/cp_sig may be NULL (encoded as zeros). */
struct parley_sync_batch {
  uint32_t req;
  struct parley_str topic;
  const uint8_t *publisher; /* 32 */
  uint64_t from;
  const uint8_t *prev;      /* 32: h(from - 1) */
  uint64_t cp_seq;
  const uint8_t *cp_hash;   /* 32 */
  const uint8_t *cp_sig;    /* 64 */
  uint32_t count;
  const uint8_t *raw;
  size_t raw_len;
};

/* Each encoder writes the payload (no frame header) into buf.  PARLEY_EINVAL
 * for a value the decoder would refuse; PARLEY_ETOOBIG when cap is short
 * (*written is then the size needed) or a string is over 255 bytes.
 * OUT: *written.  Each decoder decodes a whole payload into *out (zeroed
 * first, and zeroed again on error); PARLEY_EPROTO for anything malformed. */
PARLEY_NODISCARD int parley_sync_chain_sig_encode(
    const struct parley_sync_chain_sig *m, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_sync_chain_sig_decode(
    const uint8_t *buf, size_t len, struct parley_sync_chain_sig *out)
    PARLEY_NONNULL(3);

PARLEY_NODISCARD int parley_sync_query_encode(const struct parley_sync_query *m,
                                              uint8_t *buf, size_t cap,
                                              size_t *written)
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_sync_query_decode(const uint8_t *buf, size_t len,
                                              struct parley_sync_query *out)
    PARLEY_NONNULL(3);

PARLEY_NODISCARD int parley_sync_summary_encode(
    const struct parley_sync_summary *m, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_sync_summary_decode(
    const uint8_t *buf, size_t len, struct parley_sync_summary *out)
    PARLEY_NONNULL(3);
/* Walks decoded summary entries: returns 1 and fills *out while entries
 * remain, 0 at the end.  *cursor starts at raw, *left at raw_len. */
int parley_sync_summary_next(const uint8_t **cursor, size_t *left,
                             struct parley_sync_summary_entry *out)
    PARLEY_NONNULL(1, 2, 3);

PARLEY_NODISCARD int parley_sync_fetch_encode(const struct parley_sync_fetch *m,
                                              uint8_t *buf, size_t cap,
                                              size_t *written)
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_sync_fetch_decode(const uint8_t *buf, size_t len,
                                              struct parley_sync_fetch *out)
    PARLEY_NONNULL(3);

/* Bytes one batch entry takes on the wire. */
size_t parley_sync_entry_size(const struct parley_sync_entry *e)
    PARLEY_NONNULL(1);
/* Appends one entry at buf (cap bytes).  PARLEY_EINVAL for a bad kind,
 * flags, or NULL pointer; PARLEY_ETOOBIG if cap is short. */
PARLEY_NODISCARD int parley_sync_entry_encode(const struct parley_sync_entry *e,
                                              uint8_t *buf, size_t cap,
                                              size_t *written)
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_sync_batch_encode(const struct parley_sync_batch *m,
                                              uint8_t *buf, size_t cap,
                                              size_t *written)
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_sync_batch_decode(const uint8_t *buf, size_t len,
                                              struct parley_sync_batch *out)
    PARLEY_NONNULL(3);
/* Walks decoded batch entries like parley_sync_summary_next. */
int parley_sync_entry_next(const uint8_t **cursor, size_t *left,
                           struct parley_sync_entry *out)
    PARLEY_NONNULL(1, 2, 3);

#endif
