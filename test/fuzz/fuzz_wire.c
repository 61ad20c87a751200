/*
 * fuzz_wire.c — libFuzzer target for the wire codec.
 *
 * The input is treated as a frame stream (max_frame 1 MiB): every frame
 * that decodes must re-encode to exactly the bytes it came from, its size
 * must agree with parley_wire_encoded_size, every shorter prefix of it must
 * be PARLEY_EAGAIN, and its lists must iterate to exactly `count` entries.
 * Unknown types are skipped by *consumed, as net/ does; any other error ends
 * the stream.  The same bytes are then read as handshake messages and as
 * records, and checked against the framing rules.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/wire.h"

#define FUZZ_MAX_FRAME (1u << 20)
#define FUZZ_MAX_CT ((1u << 20) + PARLEY_WIRE_TAG)

/* Not assert(): it must fire in every build type. */
#define CHECK(c)                                                              \
  do {                                                                        \
    if (!(c))                                                                 \
      abort();                                                                \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[4 + FUZZ_MAX_FRAME];

/* Walks a decoded list and checks it holds exactly list->count entries. */
static void check_list(const struct parley_wire_list *l, int peers) {
  const uint8_t *cur = l->raw;
  size_t left = l->raw_len;
  uint32_t seen = 0;

  CHECK(l->peers == NULL && l->topics == NULL);
  CHECK(l->count <= 65535u);
  if (peers) {
    struct parley_wire_peer p;
    while (parley_wire_peer_next(&cur, &left, &p)) {
      CHECK(p.addr.len <= 96 && p.name.len <= 64);
      CHECK(memchr(p.addr.ptr, 0, p.addr.len) == NULL);
      seen++;
    }
  } else {
    struct parley_wire_topic t;
    while (parley_wire_topic_next(&cur, &left, &t)) {
      CHECK(memchr(t.topic.ptr, 0, t.topic.len) == NULL);
      seen++;
    }
  }
  CHECK(left == 0);
  CHECK(seen == l->count);
}

static void check_frame(const uint8_t *in, size_t used,
                        const struct parley_frame *f) {
  struct parley_frame g;
  size_t n = 0, g_used = 1;

  CHECK(used >= PARLEY_WIRE_FRAME_HDR && used <= 4 + FUZZ_MAX_FRAME);
  CHECK(parley_wire_encoded_size(f) == used);
  CHECK(parley_wire_encode(f, out, sizeof out, &n) == PARLEY_OK);
  CHECK(n == used);
  CHECK(memcmp(out, in, used) == 0);
  /* One byte short of the frame is just incomplete. */
  CHECK(parley_wire_decode(in, used - 1, FUZZ_MAX_FRAME, &g, &g_used) ==
        PARLEY_EAGAIN);
  CHECK(g_used == 0);
  (void)parley_frame_type_name(f->type);

  switch (f->type) {
  case PARLEY_FRAME_SUBSCRIBERS:
    check_list(&f->u.subscribers.list, 1);
    break;
  case PARLEY_FRAME_PEERS:
    check_list(&f->u.list.list, 1);
    break;
  case PARLEY_FRAME_TOPICS:
    check_list(&f->u.list.list, 0);
    break;
  case PARLEY_FRAME_MSG:
    CHECK((f->u.msg.flags & ~PARLEY_MSG_FLAGS_ALL) == 0);
    /* A brief MSG has neither publisher nor chain, a full one both. */
    CHECK((f->u.msg.flags & PARLEY_MSG_BRIEF)
              ? f->u.msg.publisher == NULL && f->u.msg.chain == NULL
              : f->u.msg.publisher != NULL && f->u.msg.chain != NULL);
    break;
  case PARLEY_FRAME_HELLO:
    CHECK(f->u.hello.role == PARLEY_ROLE_PEER ||
          f->u.hello.role == PARLEY_ROLE_INDEX);
    break;
  default:
    break;
  }
}

static void fuzz_frames(const uint8_t *data, size_t size) {
  size_t off = 0;

  while (off < size) {
    struct parley_frame f;
    size_t used = 12345;
    int rc = parley_wire_decode(data + off, size - off, FUZZ_MAX_FRAME, &f,
                                &used);
    if (rc == PARLEY_EUNKNOWNTYPE) {
      CHECK(used >= PARLEY_WIRE_FRAME_HDR && used <= size - off);
      CHECK(f.type == data[off + 4]);
      CHECK(strcmp(parley_frame_type_name(f.type), "UNKNOWN") == 0);
      off += used;
      continue;
    }
    if (rc != PARLEY_OK) {
      CHECK(rc == PARLEY_EAGAIN || rc == PARLEY_EPROTO ||
            rc == PARLEY_ETOOBIG);
      CHECK(used == 0);
      break;
    }
    CHECK(used <= size - off);
    check_frame(data + off, used, &f);
    off += used;
  }
}

static void fuzz_handshake(const uint8_t *data, size_t size) {
  size_t off = 0;

  while (off < size) {
    const uint8_t *msg;
    size_t mlen, used;
    int rc = parley_wire_hs_decode(data + off, size - off, &msg, &mlen, &used);
    if (rc != PARLEY_OK) {
      CHECK(rc == PARLEY_EAGAIN || rc == PARLEY_EPROTO);
      CHECK(used == 0 && msg == NULL && mlen == 0);
      break;
    }
    CHECK(mlen >= 1 && mlen <= PARLEY_WIRE_MAX_HS);
    CHECK(used == PARLEY_WIRE_HS_HDR + mlen && used <= size - off);
    CHECK(msg == data + off + PARLEY_WIRE_HS_HDR);
    {
      uint8_t hdr[PARLEY_WIRE_HS_HDR];
      parley_wire_hs_header(hdr, (uint16_t)mlen);
      CHECK(memcmp(hdr, data + off, sizeof hdr) == 0);
    }
    off += used;
  }
}

static void fuzz_records(const uint8_t *data, size_t size) {
  size_t off = 0;

  while (off < size) {
    const uint8_t *ct;
    size_t clen, used;
    int rc = parley_wire_record_decode(data + off, size - off, FUZZ_MAX_CT,
                                       &ct, &clen, &used);
    if (rc != PARLEY_OK) {
      CHECK(rc == PARLEY_EAGAIN || rc == PARLEY_EPROTO ||
            rc == PARLEY_ETOOBIG);
      CHECK(used == 0 && ct == NULL && clen == 0);
      break;
    }
    CHECK(clen >= PARLEY_WIRE_TAG && clen <= FUZZ_MAX_CT);
    CHECK(used == PARLEY_WIRE_RECORD_HDR + clen && used <= size - off);
    {
      uint8_t hdr[PARLEY_WIRE_RECORD_HDR];
      parley_wire_record_header(hdr, (uint32_t)clen);
      CHECK(memcmp(hdr, data + off, sizeof hdr) == 0);
    }
    /* A record's plaintext is a frame stream too (minus the tag). */
    fuzz_frames(ct, clen - PARLEY_WIRE_TAG);
    off += used;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int rc;

  fuzz_frames(data, size);
  fuzz_handshake(data, size);
  fuzz_records(data, size);
  rc = parley_wire_preamble_check(data, size);
  CHECK(rc == PARLEY_OK || rc == PARLEY_EAGAIN || rc == PARLEY_EPROTO ||
        rc == PARLEY_EVERSION);
  return 0;
}
