/*
 * raft_wire.h — payloads of the index-to-index frames RAFT_OPEN and
 * RAFT_DATA (wire.h carries them as opaque frames), as pure functions.
 *
 * Index nodes of one cluster talk to each other over ordinary Parley
 * secure links (role PARLEY_ROLE_INDEX) dialled to their Raft address.
 * Right after the link opens, each side sends RAFT_OPEN: who it is in the
 * cluster and a proof that it holds the cluster key; then the link carries
 * the bytes of one libraft stream, chunked into RAFT_DATA frames.
 *
 * RAFT_OPEN payload (big-endian, str8 = u8 length + bytes):
 *
 *   u64  raft_id       1..2^64-1, the sender's Raft server id
 *   str8 raft_addr     1..96 bytes: its Raft address "HOST:PORT"
 *   str8 listen_addr   0..96 bytes: where peers reach it ("" = unknown)
 *   str8 http_addr     0..96 bytes: its HTTP API ("" = not served)
 *   u8   proof[32]     membership proof (below)
 *
 * Strings are printable ASCII without spaces (0x21..0x7e).  Nothing may
 * follow the proof.  The payload is 44..331 bytes.
 *
 * Membership proof: HMAC-SHA-512-256 (libsodium crypto_auth) keyed with
 * the 32-byte cluster key over the 91-byte proof input
 *
 *   "parley-raft-member" (18 bytes) || binding (64) || u8 side || u64 id
 *
 * where binding is the link's channel binding (the final Noise handshake
 * hash, net/link.h parley_link_binding), side is 0 for the dialler and 1
 * for the acceptor, and id is the sender's raft_id.  The binding ties the
 * proof to this one link and the side byte keeps an acceptor from echoing
 * the dialler's proof back.
 *
 * RAFT_DATA payload: 1..PARLEY_RAFT_MAX_DATA bytes of the libraft byte
 * stream, to be appended in order; framing inside the stream is libraft's.
 *
 * Decoders never allocate; decoded strings and the proof point into the
 * caller's buffer.  encode(decode(b)) == b for every b that decodes.
 */
#ifndef PARLEY_WIRE_RAFT_WIRE_H
#define PARLEY_WIRE_RAFT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/wire.h"

#define PARLEY_RAFT_PROOF_LEN 32
#define PARLEY_RAFT_BINDING_LEN 64
#define PARLEY_RAFT_PROOF_LABEL "parley-raft-member"
#define PARLEY_RAFT_PROOF_LABEL_LEN 18
/* label + binding + side + id */
#define PARLEY_RAFT_PROOF_INPUT_LEN                                            \
  (PARLEY_RAFT_PROOF_LABEL_LEN + PARLEY_RAFT_BINDING_LEN + 1 + 8)
#define PARLEY_RAFT_SIDE_DIALLER 0
#define PARLEY_RAFT_SIDE_ACCEPTOR 1
/* Longest address string in RAFT_OPEN (PARLEY_MAX_ADDR). */
#define PARLEY_RAFT_MAX_ADDR 96
/* id + (1 + 1) raft_addr + 1 + 1 (empty listen/http) + proof */
#define PARLEY_RAFT_OPEN_MIN (8 + 2 + 1 + 1 + PARLEY_RAFT_PROOF_LEN)
#define PARLEY_RAFT_OPEN_MAX                                                   \
  (8 + 3 * (1 + PARLEY_RAFT_MAX_ADDR) + PARLEY_RAFT_PROOF_LEN)
/* Largest RAFT_DATA payload. */
#define PARLEY_RAFT_MAX_DATA (64u * 1024u)

struct parley_raft_open {
  uint64_t raft_id;
  struct parley_str raft_addr;
  struct parley_str listen_addr;
  struct parley_str http_addr;
  const uint8_t *proof; /* PARLEY_RAFT_PROOF_LEN bytes */
};

/* Encodes o into buf.  PARLEY_EINVAL if a field breaks the rules above
 * (id 0, empty raft_addr, a string too long or with a byte outside
 * 0x21..0x7e, NULL proof); PARLEY_ETOOBIG if cap is short (*written is then
 * the size needed).  OUT: *written. */
PARLEY_NODISCARD int parley_raft_open_encode(const struct parley_raft_open *o,
                                             uint8_t *buf, size_t cap,
                                             size_t *written)
    PARLEY_NONNULL(1, 4);

/* Decodes a whole RAFT_OPEN payload.  PARLEY_EPROTO for anything that
 * breaks the layout (short, trailing bytes, id 0, bad string); *out is
 * zeroed then.  Pointers in *out borrow from buf. */
PARLEY_NODISCARD int parley_raft_open_decode(const uint8_t *buf, size_t len,
                                             struct parley_raft_open *out)
    PARLEY_NONNULL(3);

/* Writes the proof input for (binding, side, id) into out. */
void parley_raft_proof_input(const uint8_t binding[PARLEY_RAFT_BINDING_LEN],
                             uint8_t side, uint64_t raft_id,
                             uint8_t out[PARLEY_RAFT_PROOF_INPUT_LEN])
    PARLEY_NONNULL(1, 4);

/* PARLEY_OK if len is a valid RAFT_DATA payload length, else
 * PARLEY_EPROTO. */
PARLEY_NODISCARD int parley_raft_data_check(size_t len);

#endif
