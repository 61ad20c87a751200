/*
 * wire.h — Parley wire protocol v1 as pure functions.
 *
 * Three layers travel on a TCP stream (docs/PROTOCOL.md has the byte-level
 * description):
 *
 *   1. the preamble and handshake messages: "PRLY" 0x01 then Noise XX
 *      messages, each prefixed by a u16 big-endian length;
 *   2. records: u32 big-endian ciphertext length, then AEAD ciphertext
 *      (plaintext + 16-byte tag);
 *   3. frames, packed back to back inside a record's plaintext: u32
 *      big-endian length of (type + payload), u8 type, payload.
 *
 * Integers are big-endian.  str8 is u8 length + bytes, str16 u16 length +
 * bytes, key is 32 raw bytes.  Decoders never allocate: decoded strings,
 * keys and bodies point into the caller's input buffer (borrowed; valid as
 * long as the input is).  Neither direction touches sockets, clocks or
 * globals, so every decoder is a fuzz target.
 */
#ifndef PARLEY_WIRE_WIRE_H
#define PARLEY_WIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PARLEY_WIRE_VERSION 1
#define PARLEY_WIRE_MAGIC "PRLY"
#define PARLEY_WIRE_PREAMBLE_LEN 5 /* "PRLY" + version byte */
#define PARLEY_WIRE_KEY 32
#define PARLEY_WIRE_TAG 16          /* AEAD tag bytes */
#define PARLEY_WIRE_FRAME_HDR 5     /* u32 length + u8 type */
#define PARLEY_WIRE_RECORD_HDR 4    /* u32 length */
#define PARLEY_WIRE_HS_HDR 2        /* u16 length */
#define PARLEY_WIRE_MAX_HS 1024     /* largest handshake message */

/* Capability bits exchanged in HELLO. */
#define PARLEY_CAP_ACK 0x1u      /* understands ACK_REQ / ACK */
#define PARLEY_CAP_WATCH 0x2u    /* index pushes WATCH_EVENTs */
#define PARLEY_CAP_BATCH 0x4u    /* several frames per record */
#define PARLEY_CAP_BRIEF 0x8u    /* accepts MSG with the BRIEF flag */
#define PARLEY_CAP_NEXT 0x10u    /* accepts MSG_NEXT */

/* Roles in HELLO. */
#define PARLEY_ROLE_PEER 1
#define PARLEY_ROLE_INDEX 2

/* MSG flags. */
#define PARLEY_MSG_ACK_REQ 0x1u /* receiver must answer with ACK once stored */
#define PARLEY_MSG_DIRECT 0x2u  /* channel is "@" + recipient id */
#define PARLEY_MSG_BINARY 0x4u  /* body is not UTF-8 text */
#define PARLEY_MSG_PRIVATE 0x8u /* body is a private-topic message sealed
                                   under the topic key (crypto/groupkey.h) */
/* publisher and chain left out: the publisher is the link's remote peer
 * and there is no chain value (a topic without history); only to a peer
 * whose HELLO has PARLEY_CAP_BRIEF */
#define PARLEY_MSG_BRIEF 0x10u
#define PARLEY_MSG_FLAGS_ALL 0x1fu
/* The flags a MSG_NEXT may carry: all but BRIEF, which it implies. */
#define PARLEY_MSG_NEXT_FLAGS (PARLEY_MSG_FLAGS_ALL & ~PARLEY_MSG_BRIEF)

/* WATCH_EVENT kinds. */
#define PARLEY_WATCH_ADD 1
#define PARLEY_WATCH_REMOVE 2

enum parley_frame_type {
  PARLEY_FRAME_HELLO = 0x01,
  PARLEY_FRAME_ERROR = 0x02,
  PARLEY_FRAME_PING = 0x03,
  PARLEY_FRAME_PONG = 0x04,
  PARLEY_FRAME_REGISTER = 0x10,
  PARLEY_FRAME_OK = 0x11,
  PARLEY_FRAME_HEARTBEAT = 0x12,
  PARLEY_FRAME_SUBSCRIBE = 0x13,
  PARLEY_FRAME_UNSUBSCRIBE = 0x14,
  PARLEY_FRAME_WATCH = 0x15,
  PARLEY_FRAME_UNWATCH = 0x16,
  PARLEY_FRAME_SUBSCRIBERS = 0x17,
  PARLEY_FRAME_WATCH_EVENT = 0x18,
  PARLEY_FRAME_LOOKUP = 0x19,
  PARLEY_FRAME_LIST_PEERS = 0x1a,
  PARLEY_FRAME_PEERS = 0x1b,
  PARLEY_FRAME_LIST_TOPICS = 0x1c,
  PARLEY_FRAME_TOPICS = 0x1d,
  PARLEY_FRAME_MSG = 0x20,
  PARLEY_FRAME_ACK = 0x21,
  PARLEY_FRAME_MSG_NEXT = 0x22, /* a BRIEF MSG that follows the previous */
  /* Opaque frames: the payload is the rest of the frame, decoded by a
   * sub-codec of its own (raft_wire.h, sync_wire.h). */
  PARLEY_FRAME_RAFT_OPEN = 0x30, /* index <-> index: who I am in the cluster */
  PARLEY_FRAME_RAFT_DATA = 0x31, /* index <-> index: libraft stream bytes */
  PARLEY_FRAME_CHAIN_SIG = 0x40, /* publisher's signed hash-chain checkpoint */
  PARLEY_FRAME_SYNC_QUERY = 0x41,   /* anti-entropy: what do you have? */
  PARLEY_FRAME_SYNC_SUMMARY = 0x42, /* anti-entropy: this much */
  PARLEY_FRAME_SYNC_FETCH = 0x43,   /* anti-entropy: send me this range */
  PARLEY_FRAME_SYNC_BATCH = 0x44,   /* anti-entropy: relayed messages */
  /* Private topics (acl_wire.h). */
  PARLEY_FRAME_TOPIC_CTL = 0x50,   /* peer -> index: a signed grant */
  PARLEY_FRAME_KEY_PUT = 0x51,     /* peer -> index: a key blob for a member */
  PARLEY_FRAME_KEY_GET = 0x52,     /* peer -> index: my key blobs of a topic */
  PARLEY_FRAME_KEYS = 0x53,        /* index -> peer: those key blobs */
  PARLEY_FRAME_MEMBERS_GET = 0x54, /* peer -> index: a topic's access list */
  PARLEY_FRAME_MEMBERS = 0x55,     /* index -> peer: owner, epoch, members */
  PARLEY_FRAME_ACL_EVENT = 0x56,   /* index -> watchers: membership change */
  /* Monitoring (report_wire.h). */
  PARLEY_FRAME_REPORT = 0x58, /* peer -> index: figures for the dashboard */
};

/* 1 if frames of this type carry an opaque payload (u.opaque). */
int parley_frame_is_opaque(uint8_t type);

/* A borrowed byte string (not NUL-terminated). */
struct parley_str {
  const char *ptr;
  size_t len;
};

/* One peer in SUBSCRIBERS / PEERS / WATCH_EVENT:
 * key pk, str8 addr, str8 name, u64 last_seen_ms. */
struct parley_wire_peer {
  const uint8_t *key; /* PARLEY_WIRE_KEY bytes */
  struct parley_str addr;
  struct parley_str name;
  uint64_t last_seen_ms;
};

/* One entry of TOPICS: str8 topic, u32 subscribers. */
struct parley_wire_topic {
  struct parley_str topic;
  uint32_t subscribers;
};

/* A list inside a frame.  To encode, set `peers`/`topics` to an array of
 * `count` entries.  After decode, `raw`/`raw_len` hold the validated entries
 * and parley_wire_peer_next / parley_wire_topic_next walk them. */
struct parley_wire_list {
  uint32_t count;
  const struct parley_wire_peer *peers;   /* encode input */
  const struct parley_wire_topic *topics; /* encode input */
  const uint8_t *raw;                     /* decode output */
  size_t raw_len;
};

struct parley_frame {
  uint8_t type; /* enum parley_frame_type */
  union {
    /* HELLO: u16 version, u32 caps, u32 max_frame, u8 role, str8 name,
     * str8 addr (advertised listen address, may be empty) */
    struct {
      uint16_t version;
      uint32_t caps;
      uint32_t max_frame;
      uint8_t role;
      struct parley_str name;
      struct parley_str addr;
    } hello;
    /* ERROR: u32 req, u16 code (minus a parley_err), str16 text */
    struct {
      uint32_t req;
      uint16_t code;
      struct parley_str text;
    } error;
    /* PING / PONG: u64 nonce */
    struct {
      uint64_t nonce;
    } ping;
    /* REGISTER: u32 req, str8 addr, str8 name.  The key is the link's. */
    struct {
      uint32_t req;
      struct parley_str addr;
      struct parley_str name;
    } reg;
    /* OK: u32 req, u64 value (meaning depends on the request) */
    struct {
      uint32_t req;
      uint64_t value;
    } ok;
    /* HEARTBEAT, LIST_PEERS, LIST_TOPICS: u32 req */
    struct {
      uint32_t req;
    } req;
    /* SUBSCRIBE, UNSUBSCRIBE, WATCH, UNWATCH: u32 req, str8 topic */
    struct {
      uint32_t req;
      struct parley_str topic;
    } topic;
    /* SUBSCRIBERS: u32 req, str8 topic, u32 count, count x peer */
    struct {
      uint32_t req;
      struct parley_str topic;
      struct parley_wire_list list;
    } subscribers;
    /* WATCH_EVENT: str8 topic, u8 kind, peer */
    struct {
      struct parley_str topic;
      uint8_t kind;
      struct parley_wire_peer peer;
    } watch_event;
    /* LOOKUP: u32 req, key pk */
    struct {
      uint32_t req;
      const uint8_t *key;
    } lookup;
    /* PEERS: u32 req, u32 count, count x peer */
    /* TOPICS: u32 req, u32 count, count x topic */
    struct {
      uint32_t req;
      struct parley_wire_list list;
    } list;
    /* MSG: u8 flags, key publisher, str8 channel, u64 seq, u64 ts_ms,
     * u32 body_len, body, key chain.  chain is the publisher's hash-chain
     * value after this message (crypto/chain.h); all zeros means "none".
     * Encoding a NULL chain writes 32 zero bytes.  With PARLEY_MSG_BRIEF
     * in flags there is neither publisher nor chain on the wire: decoding
     * leaves both NULL, encoding ignores them. */
    struct {
      uint8_t flags;
      const uint8_t *publisher;
      struct parley_str channel;
      uint64_t seq;
      uint64_t ts_ms;
      const uint8_t *body;
      uint32_t body_len;
      const uint8_t *chain;
    } msg;
    /* MSG_NEXT: u8 flags, u16 ts_delta, body (the rest of the frame).
     * The message after the previous MSG or MSG_NEXT in the same direction
     * of the same link: same channel, seq one more, ts_ms ts_delta more,
     * PARLEY_MSG_BRIEF implied (flags must not carry it).  Only the link
     * layer knows "previous": it expands MSG_NEXT into MSG on input and
     * chooses it for a MSG on output (net/link.h), so code above the link
     * never sees this type. */
    struct {
      uint8_t flags;
      uint16_t ts_delta;
      const uint8_t *body;
      uint32_t body_len;
    } next;
    /* RAFT_*, CHAIN_SIG, SYNC_*, REPORT...: the payload bytes, for a
     * sub-codec. */
    struct {
      const uint8_t *data;
      size_t len;
    } opaque;
    /* ACK: key publisher, str8 channel, u64 seq, u16 status (0 = stored,
     * else minus a parley_err) */
    struct {
      const uint8_t *publisher;
      struct parley_str channel;
      uint64_t seq;
      uint16_t status;
    } ack;
  } u;
};

/* Decodes one frame from buf[0..len).
 * Returns PARLEY_OK and sets *consumed to the bytes used; PARLEY_EAGAIN with
 * *consumed = 0 if buf holds only part of a frame; PARLEY_ETOOBIG as soon as
 * the length prefix exceeds max_frame (before the bytes arrive);
 * PARLEY_EUNKNOWNTYPE for a well-framed frame of unknown type (*consumed is
 * set so the caller may skip it); PARLEY_EPROTO for anything malformed
 * (trailing bytes, short fields, bad flags, invalid list). */
PARLEY_NODISCARD int parley_wire_decode(const uint8_t *buf, size_t len,
                                        uint32_t max_frame,
                                        struct parley_frame *out,
                                        size_t *consumed)
    PARLEY_NONNULL(4, 5);

/* Bytes parley_wire_encode will write for f (header included). */
size_t parley_wire_encoded_size(const struct parley_frame *f)
    PARLEY_NONNULL(1);

/* Encodes f into buf.  PARLEY_ETOOBIG if cap is too small or a field does
 * not fit its length prefix; PARLEY_EINVAL for an unknown type. */
PARLEY_NODISCARD int parley_wire_encode(const struct parley_frame *f,
                                        uint8_t *buf, size_t cap,
                                        size_t *written)
    PARLEY_NONNULL(1, 4);

/* Walks a decoded list.  Returns 1 and fills *out while entries remain,
 * 0 at the end.  *cursor starts at list->raw, *left at list->raw_len. */
int parley_wire_peer_next(const uint8_t **cursor, size_t *left,
                          struct parley_wire_peer *out);
int parley_wire_topic_next(const uint8_t **cursor, size_t *left,
                           struct parley_wire_topic *out);

/* Checks the 5-byte preamble.  PARLEY_EAGAIN if short, PARLEY_EPROTO if not
 * "PRLY", PARLEY_EVERSION if the version byte differs. */
PARLEY_NODISCARD int parley_wire_preamble_check(const uint8_t *buf,
                                                size_t len);
void parley_wire_preamble_write(uint8_t out[PARLEY_WIRE_PREAMBLE_LEN]);

/* Handshake message framing: u16 length + message (1..PARLEY_WIRE_MAX_HS).
 * On PARLEY_OK, *msg and *msg_len point into buf and *consumed is set. */
PARLEY_NODISCARD int parley_wire_hs_decode(const uint8_t *buf, size_t len,
                                           const uint8_t **msg,
                                           size_t *msg_len, size_t *consumed)
    PARLEY_NONNULL(3, 4, 5);
void parley_wire_hs_header(uint8_t out[PARLEY_WIRE_HS_HDR], uint16_t len);

/* Record framing: u32 length + ciphertext (PARLEY_WIRE_TAG..max_ct bytes). */
PARLEY_NODISCARD int parley_wire_record_decode(const uint8_t *buf, size_t len,
                                               uint32_t max_ct,
                                               const uint8_t **ct,
                                               size_t *ct_len,
                                               size_t *consumed)
    PARLEY_NONNULL(4, 5, 6);
void parley_wire_record_header(uint8_t out[PARLEY_WIRE_RECORD_HDR],
                               uint32_t ct_len);

/* Human-readable frame type name ("MSG"), "UNKNOWN" otherwise. */
const char *parley_frame_type_name(uint8_t type);

#endif
