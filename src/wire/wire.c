/*
 * wire.c — Parley wire protocol v1: frame codec, list iterators, preamble,
 * handshake-message and record framing.  docs/PROTOCOL.md describes the
 * bytes; this file is the reference implementation of that description.
 *
 * Design notes:
 * - Nothing here allocates, and nothing keeps state between calls.  Decoded
 *   strings, keys and bodies borrow the caller's input buffer.
 * - The decoder is strict: a frame is accepted only if every field is in
 *   range and the fields fill the frame exactly.  The encoder refuses what
 *   the decoder would refuse, so anything encode() writes, decode() reads
 *   back, and anything decode() accepts, encode() writes back byte for byte
 *   (the fuzz target checks the latter).
 * - Field limits beyond the length prefixes (PARLEY_MAX_NAME for names,
 *   PARLEY_MAX_ADDR for addresses, PARLEY_MAX_ERRTEXT for ERROR text) are
 *   enforced in both directions, so upper layers may copy decoded strings
 *   into fixed buffers of those sizes.  Topic syntax (parley_topic_valid)
 *   is left to the receiver, which answers a bad topic with an ERROR frame
 *   instead of dropping the link.
 */
#include "wire/wire.h"

#include <string.h>

#include "core/limits.h"

/* Fixed part of one peer entry: key, two str8 length bytes, last_seen. */
#define PEER_MIN (PARLEY_WIRE_KEY + 1 + 1 + 8)
/* Fixed part of one topic entry: str8 length byte, u32 subscribers. */
#define TOPIC_MIN (1 + 4)
#define STR8_MAX 255u
#define STR16_MAX 65535u
/* The u32 length in front of every frame. */
#define LEN_PREFIX 4u

/* ---- big-endian helpers ------------------------------------------------ */

static uint16_t get_be16(const uint8_t *p) {
  return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static uint64_t get_be64(const uint8_t *p) {
  return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static void put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v) {
  put_be32(p, (uint32_t)(v >> 32));
  put_be32(p + 4, (uint32_t)v);
}

/* ---- reader: a cursor over one frame's payload ------------------------- */

/* Every rd_* function returns PARLEY_OK or PARLEY_EPROTO and advances the
 * cursor only on success. */
struct rd {
  const uint8_t *p;
  size_t left;
};

static int rd_u8(struct rd *r, uint8_t *v) {
  if (r->left < 1)
    return PARLEY_EPROTO;
  *v = r->p[0];
  r->p += 1;
  r->left -= 1;
  return PARLEY_OK;
}

static int rd_u16(struct rd *r, uint16_t *v) {
  if (r->left < 2)
    return PARLEY_EPROTO;
  *v = get_be16(r->p);
  r->p += 2;
  r->left -= 2;
  return PARLEY_OK;
}

static int rd_u32(struct rd *r, uint32_t *v) {
  if (r->left < 4)
    return PARLEY_EPROTO;
  *v = get_be32(r->p);
  r->p += 4;
  r->left -= 4;
  return PARLEY_OK;
}

static int rd_u64(struct rd *r, uint64_t *v) {
  if (r->left < 8)
    return PARLEY_EPROTO;
  *v = get_be64(r->p);
  r->p += 8;
  r->left -= 8;
  return PARLEY_OK;
}

/* OUT: *out points at n bytes of the input. */
static int rd_bytes(struct rd *r, size_t n, const uint8_t **out) {
  if (r->left < n)
    return PARLEY_EPROTO;
  *out = r->p;
  r->p += n;
  r->left -= n;
  return PARLEY_OK;
}

static int rd_key(struct rd *r, const uint8_t **key) {
  return rd_bytes(r, PARLEY_WIRE_KEY, key);
}

/* The string body after its length prefix: at most max bytes, no NUL. */
static int rd_strbody(struct rd *r, size_t n, size_t max,
                      struct parley_str *s) {
  const uint8_t *p;
  if (n > max || rd_bytes(r, n, &p) < 0)
    return PARLEY_EPROTO;
  if (n > 0 && memchr(p, 0, n) != NULL)
    return PARLEY_EPROTO;
  s->ptr = (const char *)p;
  s->len = n;
  return PARLEY_OK;
}

static int rd_str8(struct rd *r, size_t max, struct parley_str *s) {
  uint8_t n;
  struct rd save = *r;
  if (rd_u8(r, &n) < 0 || rd_strbody(r, n, max, s) < 0) {
    *r = save;
    return PARLEY_EPROTO;
  }
  return PARLEY_OK;
}

static int rd_str16(struct rd *r, size_t max, struct parley_str *s) {
  uint16_t n;
  struct rd save = *r;
  if (rd_u16(r, &n) < 0 || rd_strbody(r, n, max, s) < 0) {
    *r = save;
    return PARLEY_EPROTO;
  }
  return PARLEY_OK;
}

/* peer: key pk, str8 addr, str8 name, u64 last_seen_ms */
static int rd_peer(struct rd *r, struct parley_wire_peer *pe) {
  struct rd save = *r;
  if (rd_key(r, &pe->key) < 0 || rd_str8(r, PARLEY_MAX_ADDR, &pe->addr) < 0 ||
      rd_str8(r, PARLEY_MAX_NAME, &pe->name) < 0 ||
      rd_u64(r, &pe->last_seen_ms) < 0) {
    *r = save;
    return PARLEY_EPROTO;
  }
  return PARLEY_OK;
}

/* topic entry: str8 topic, u32 subscribers */
static int rd_topic(struct rd *r, struct parley_wire_topic *t) {
  struct rd save = *r;
  if (rd_str8(r, STR8_MAX, &t->topic) < 0 || rd_u32(r, &t->subscribers) < 0) {
    *r = save;
    return PARLEY_EPROTO;
  }
  return PARLEY_OK;
}

enum list_kind { LIST_PEERS, LIST_TOPICS };

/* Validates exactly `count` entries starting at r and records where they
 * are.  The caller checks that nothing follows them. */
static int rd_entries(struct rd *r, enum list_kind kind, uint32_t count,
                      struct parley_wire_list *l) {
  size_t min = kind == LIST_PEERS ? PEER_MIN : TOPIC_MIN;
  const uint8_t *start = r->p;
  uint32_t i;

  if (count > PARLEY_MAX_LIST)
    return PARLEY_EPROTO;
  /* Cheap early rejection of a count the remaining bytes cannot hold. */
  if ((size_t)count > r->left / min)
    return PARLEY_EPROTO;
  for (i = 0; i < count; i++) {
    int rc;
    if (kind == LIST_PEERS) {
      struct parley_wire_peer pe;
      rc = rd_peer(r, &pe);
    } else {
      struct parley_wire_topic t;
      rc = rd_topic(r, &t);
    }
    if (rc < 0)
      return rc;
  }
  l->count = count;
  l->peers = NULL;
  l->topics = NULL;
  l->raw = start;
  l->raw_len = (size_t)(r->p - start);
  return PARLEY_OK;
}

/* u32 count, then the entries. */
static int rd_list(struct rd *r, enum list_kind kind,
                   struct parley_wire_list *l) {
  uint32_t count;
  if (rd_u32(r, &count) < 0)
    return PARLEY_EPROTO;
  return rd_entries(r, kind, count, l);
}

/* Decodes the payload of a frame whose type is f->type.  Returns
 * PARLEY_EUNKNOWNTYPE for a type v1 does not define. */
static int decode_payload(struct rd *r, struct parley_frame *f) {
  int bad = 0;

  switch (f->type) {
  case PARLEY_FRAME_HELLO:
    bad |= rd_u16(r, &f->u.hello.version);
    bad |= rd_u32(r, &f->u.hello.caps);
    bad |= rd_u32(r, &f->u.hello.max_frame);
    bad |= rd_u8(r, &f->u.hello.role);
    bad |= rd_str8(r, PARLEY_MAX_NAME, &f->u.hello.name);
    bad |= rd_str8(r, PARLEY_MAX_ADDR, &f->u.hello.addr);
    if (f->u.hello.role != PARLEY_ROLE_PEER &&
        f->u.hello.role != PARLEY_ROLE_INDEX)
      bad = 1;
    break;
  case PARLEY_FRAME_ERROR:
    bad |= rd_u32(r, &f->u.error.req);
    bad |= rd_u16(r, &f->u.error.code);
    bad |= rd_str16(r, PARLEY_MAX_ERRTEXT, &f->u.error.text);
    break;
  case PARLEY_FRAME_PING:
  case PARLEY_FRAME_PONG:
    bad |= rd_u64(r, &f->u.ping.nonce);
    break;
  case PARLEY_FRAME_REGISTER:
    bad |= rd_u32(r, &f->u.reg.req);
    bad |= rd_str8(r, PARLEY_MAX_ADDR, &f->u.reg.addr);
    bad |= rd_str8(r, PARLEY_MAX_NAME, &f->u.reg.name);
    break;
  case PARLEY_FRAME_OK:
    bad |= rd_u32(r, &f->u.ok.req);
    bad |= rd_u64(r, &f->u.ok.value);
    break;
  case PARLEY_FRAME_HEARTBEAT:
  case PARLEY_FRAME_LIST_PEERS:
  case PARLEY_FRAME_LIST_TOPICS:
    bad |= rd_u32(r, &f->u.req.req);
    break;
  case PARLEY_FRAME_SUBSCRIBE:
  case PARLEY_FRAME_UNSUBSCRIBE:
  case PARLEY_FRAME_WATCH:
  case PARLEY_FRAME_UNWATCH:
    bad |= rd_u32(r, &f->u.topic.req);
    bad |= rd_str8(r, STR8_MAX, &f->u.topic.topic);
    break;
  case PARLEY_FRAME_SUBSCRIBERS:
    bad |= rd_u32(r, &f->u.subscribers.req);
    bad |= rd_str8(r, STR8_MAX, &f->u.subscribers.topic);
    if (!bad)
      bad |= rd_list(r, LIST_PEERS, &f->u.subscribers.list);
    break;
  case PARLEY_FRAME_WATCH_EVENT:
    bad |= rd_str8(r, STR8_MAX, &f->u.watch_event.topic);
    bad |= rd_u8(r, &f->u.watch_event.kind);
    bad |= rd_peer(r, &f->u.watch_event.peer);
    if (f->u.watch_event.kind != PARLEY_WATCH_ADD &&
        f->u.watch_event.kind != PARLEY_WATCH_REMOVE)
      bad = 1;
    break;
  case PARLEY_FRAME_LOOKUP:
    bad |= rd_u32(r, &f->u.lookup.req);
    bad |= rd_key(r, &f->u.lookup.key);
    break;
  case PARLEY_FRAME_PEERS:
    bad |= rd_u32(r, &f->u.list.req);
    if (!bad)
      bad |= rd_list(r, LIST_PEERS, &f->u.list.list);
    break;
  case PARLEY_FRAME_TOPICS:
    bad |= rd_u32(r, &f->u.list.req);
    if (!bad)
      bad |= rd_list(r, LIST_TOPICS, &f->u.list.list);
    break;
  case PARLEY_FRAME_MSG:
    bad |= rd_u8(r, &f->u.msg.flags);
    if (!(f->u.msg.flags & PARLEY_MSG_BRIEF))
      bad |= rd_key(r, &f->u.msg.publisher);
    bad |= rd_str8(r, STR8_MAX, &f->u.msg.channel);
    bad |= rd_u64(r, &f->u.msg.seq);
    bad |= rd_u64(r, &f->u.msg.ts_ms);
    bad |= rd_u32(r, &f->u.msg.body_len);
    if (!bad)
      bad |= rd_bytes(r, f->u.msg.body_len, &f->u.msg.body);
    if (!(f->u.msg.flags & PARLEY_MSG_BRIEF))
      bad |= rd_key(r, &f->u.msg.chain);
    if (f->u.msg.flags & ~PARLEY_MSG_FLAGS_ALL)
      bad = 1;
    break;
  case PARLEY_FRAME_MSG_NEXT:
    bad |= rd_u8(r, &f->u.next.flags);
    bad |= rd_u16(r, &f->u.next.ts_delta);
    f->u.next.body_len = (uint32_t)r->left;
    bad |= rd_bytes(r, r->left, &f->u.next.body);
    if (f->u.next.flags & ~PARLEY_MSG_NEXT_FLAGS)
      bad = 1;
    break;
  case PARLEY_FRAME_ACK:
    bad |= rd_key(r, &f->u.ack.publisher);
    bad |= rd_str8(r, STR8_MAX, &f->u.ack.channel);
    bad |= rd_u64(r, &f->u.ack.seq);
    bad |= rd_u16(r, &f->u.ack.status);
    break;
  default:
    if (!parley_frame_is_opaque(f->type))
      return PARLEY_EUNKNOWNTYPE;
    f->u.opaque.len = r->left;
    bad |= rd_bytes(r, r->left, &f->u.opaque.data);
    break;
  }
  /* A failed field read leaves the cursor in place, so later reads in the
   * same case may "succeed" on the wrong bytes; `bad` remembers any
   * failure, which is all that matters. */
  if (bad)
    return PARLEY_EPROTO;
  if (r->left != 0)
    return PARLEY_EPROTO; /* trailing bytes inside the frame */
  return PARLEY_OK;
}

int parley_wire_decode(const uint8_t *buf, size_t len, uint32_t max_frame,
                       struct parley_frame *out, size_t *consumed) {
  uint32_t flen;
  struct rd r;
  int rc;

  *consumed = 0;
  memset(out, 0, sizeof *out);
  if (len < LEN_PREFIX)
    return PARLEY_EAGAIN;
  if (buf == NULL)
    return PARLEY_EINVAL;
  flen = get_be32(buf);
  if (flen == 0)
    return PARLEY_EPROTO;
  /* Refuse an oversize frame on its prefix, before buffering it. */
  if (flen > max_frame || flen > PARLEY_MAX_FRAME)
    return PARLEY_ETOOBIG;
  if (len - LEN_PREFIX < (size_t)flen)
    return PARLEY_EAGAIN;

  out->type = buf[4];
  r.p = buf + PARLEY_WIRE_FRAME_HDR;
  r.left = (size_t)flen - 1;
  rc = decode_payload(&r, out);
  if (rc == PARLEY_OK || rc == PARLEY_EUNKNOWNTYPE)
    *consumed = LEN_PREFIX + (size_t)flen;
  return rc;
}

/* ---- list iterators ---------------------------------------------------- */

int parley_wire_peer_next(const uint8_t **cursor, size_t *left,
                          struct parley_wire_peer *out) {
  struct rd r;
  if (cursor == NULL || left == NULL || out == NULL || *cursor == NULL ||
      *left == 0)
    return 0;
  r.p = *cursor;
  r.left = *left;
  if (rd_peer(&r, out) < 0) {
    *left = 0; /* not a validated list: stop for good */
    return 0;
  }
  *cursor = r.p;
  *left = r.left;
  return 1;
}

int parley_wire_topic_next(const uint8_t **cursor, size_t *left,
                           struct parley_wire_topic *out) {
  struct rd r;
  if (cursor == NULL || left == NULL || out == NULL || *cursor == NULL ||
      *left == 0)
    return 0;
  r.p = *cursor;
  r.left = *left;
  if (rd_topic(&r, out) < 0) {
    *left = 0;
    return 0;
  }
  *cursor = r.p;
  *left = r.left;
  return 1;
}

/* ---- writer ------------------------------------------------------------ */

/* The encoder either only validates and measures (p == NULL) or writes
 * into p[0..cap).  n counts the bytes of type + payload; too_big is set
 * once n would pass PARLEY_MAX_FRAME or cap, after which nothing more is
 * counted or written. */
struct wr {
  uint8_t *p;
  size_t n, cap;
  int too_big;
};

static int wr_room(struct wr *w, size_t k) {
  if (w->too_big || k > PARLEY_MAX_FRAME - w->n ||
      (w->p != NULL && k > w->cap - w->n)) {
    w->too_big = 1;
    return 0;
  }
  return 1;
}

static void wr_u8(struct wr *w, uint8_t v) {
  if (!wr_room(w, 1))
    return;
  if (w->p)
    w->p[w->n] = v;
  w->n += 1;
}

static void wr_u16(struct wr *w, uint16_t v) {
  if (!wr_room(w, 2))
    return;
  if (w->p)
    put_be16(w->p + w->n, v);
  w->n += 2;
}

static void wr_u32(struct wr *w, uint32_t v) {
  if (!wr_room(w, 4))
    return;
  if (w->p)
    put_be32(w->p + w->n, v);
  w->n += 4;
}

static void wr_u64(struct wr *w, uint64_t v) {
  if (!wr_room(w, 8))
    return;
  if (w->p)
    put_be64(w->p + w->n, v);
  w->n += 8;
}

static void wr_bytes(struct wr *w, const void *src, size_t k) {
  if (!wr_room(w, k))
    return;
  if (w->p && k > 0)
    memcpy(w->p + w->n, src, k);
  w->n += k;
}

/* Checks a string against its limit: PARLEY_ETOOBIG if longer than max,
 * PARLEY_EINVAL for a NULL pointer with a length or an embedded NUL (which
 * the decoder would refuse). */
static int str_check(const struct parley_str *s, size_t max) {
  if (s->len > max)
    return PARLEY_ETOOBIG;
  if (s->len > 0 && s->ptr == NULL)
    return PARLEY_EINVAL;
  if (s->len > 0 && memchr(s->ptr, 0, s->len) != NULL)
    return PARLEY_EINVAL;
  return PARLEY_OK;
}

static int wr_str8(struct wr *w, const struct parley_str *s, size_t max) {
  int rc = str_check(s, max < STR8_MAX ? max : STR8_MAX);
  if (rc < 0)
    return rc;
  wr_u8(w, (uint8_t)s->len);
  wr_bytes(w, s->ptr, s->len);
  return PARLEY_OK;
}

static int wr_str16(struct wr *w, const struct parley_str *s, size_t max) {
  int rc = str_check(s, max < STR16_MAX ? max : STR16_MAX);
  if (rc < 0)
    return rc;
  wr_u16(w, (uint16_t)s->len);
  wr_bytes(w, s->ptr, s->len);
  return PARLEY_OK;
}

static int wr_key(struct wr *w, const uint8_t *key) {
  if (key == NULL)
    return PARLEY_EINVAL;
  wr_bytes(w, key, PARLEY_WIRE_KEY);
  return PARLEY_OK;
}

static int wr_peer(struct wr *w, const struct parley_wire_peer *pe) {
  int rc;
  if ((rc = wr_key(w, pe->key)) < 0 ||
      (rc = wr_str8(w, &pe->addr, PARLEY_MAX_ADDR)) < 0 ||
      (rc = wr_str8(w, &pe->name, PARLEY_MAX_NAME)) < 0)
    return rc;
  wr_u64(w, pe->last_seen_ms);
  return PARLEY_OK;
}

static int wr_topic(struct wr *w, const struct parley_wire_topic *t) {
  int rc = wr_str8(w, &t->topic, STR8_MAX);
  if (rc < 0)
    return rc;
  wr_u32(w, t->subscribers);
  return PARLEY_OK;
}

/* u32 count, then the entries: from the array when one is given, else the
 * raw bytes of a decoded list, which are re-validated first (they must hold
 * exactly `count` well-formed entries). */
static int wr_list(struct wr *w, enum list_kind kind,
                   const struct parley_wire_list *l) {
  const void *arr = kind == LIST_PEERS ? (const void *)l->peers
                                       : (const void *)l->topics;
  uint32_t i;
  int rc;

  if (l->count > PARLEY_MAX_LIST)
    return PARLEY_ETOOBIG;
  wr_u32(w, l->count);
  if (arr != NULL) {
    for (i = 0; i < l->count; i++) {
      rc = kind == LIST_PEERS ? wr_peer(w, &l->peers[i])
                              : wr_topic(w, &l->topics[i]);
      if (rc < 0)
        return rc;
    }
    return PARLEY_OK;
  }
  if (l->raw == NULL)
    return l->count == 0 ? PARLEY_OK : PARLEY_EINVAL;
  {
    struct parley_wire_list check;
    struct rd r;
    r.p = l->raw;
    r.left = l->raw_len;
    if (rd_entries(&r, kind, l->count, &check) < 0 || r.left != 0)
      return PARLEY_EINVAL;
  }
  wr_bytes(w, l->raw, l->raw_len);
  return PARLEY_OK;
}

/* What a MSG without a chain value carries in its chain field. */
static const uint8_t no_chain[PARLEY_WIRE_KEY];

/* Emits type + payload of f (validating as it goes). */
static int emit(struct wr *w, const struct parley_frame *f) {
  int rc = PARLEY_OK;

  wr_u8(w, f->type);
  switch (f->type) {
  case PARLEY_FRAME_HELLO:
    if (f->u.hello.role != PARLEY_ROLE_PEER &&
        f->u.hello.role != PARLEY_ROLE_INDEX)
      return PARLEY_EINVAL;
    wr_u16(w, f->u.hello.version);
    wr_u32(w, f->u.hello.caps);
    wr_u32(w, f->u.hello.max_frame);
    wr_u8(w, f->u.hello.role);
    if ((rc = wr_str8(w, &f->u.hello.name, PARLEY_MAX_NAME)) < 0)
      return rc;
    rc = wr_str8(w, &f->u.hello.addr, PARLEY_MAX_ADDR);
    break;
  case PARLEY_FRAME_ERROR:
    wr_u32(w, f->u.error.req);
    wr_u16(w, f->u.error.code);
    rc = wr_str16(w, &f->u.error.text, PARLEY_MAX_ERRTEXT);
    break;
  case PARLEY_FRAME_PING:
  case PARLEY_FRAME_PONG:
    wr_u64(w, f->u.ping.nonce);
    break;
  case PARLEY_FRAME_REGISTER:
    wr_u32(w, f->u.reg.req);
    if ((rc = wr_str8(w, &f->u.reg.addr, PARLEY_MAX_ADDR)) < 0)
      return rc;
    rc = wr_str8(w, &f->u.reg.name, PARLEY_MAX_NAME);
    break;
  case PARLEY_FRAME_OK:
    wr_u32(w, f->u.ok.req);
    wr_u64(w, f->u.ok.value);
    break;
  case PARLEY_FRAME_HEARTBEAT:
  case PARLEY_FRAME_LIST_PEERS:
  case PARLEY_FRAME_LIST_TOPICS:
    wr_u32(w, f->u.req.req);
    break;
  case PARLEY_FRAME_SUBSCRIBE:
  case PARLEY_FRAME_UNSUBSCRIBE:
  case PARLEY_FRAME_WATCH:
  case PARLEY_FRAME_UNWATCH:
    wr_u32(w, f->u.topic.req);
    rc = wr_str8(w, &f->u.topic.topic, STR8_MAX);
    break;
  case PARLEY_FRAME_SUBSCRIBERS:
    wr_u32(w, f->u.subscribers.req);
    if ((rc = wr_str8(w, &f->u.subscribers.topic, STR8_MAX)) < 0)
      return rc;
    rc = wr_list(w, LIST_PEERS, &f->u.subscribers.list);
    break;
  case PARLEY_FRAME_WATCH_EVENT:
    if (f->u.watch_event.kind != PARLEY_WATCH_ADD &&
        f->u.watch_event.kind != PARLEY_WATCH_REMOVE)
      return PARLEY_EINVAL;
    if ((rc = wr_str8(w, &f->u.watch_event.topic, STR8_MAX)) < 0)
      return rc;
    wr_u8(w, f->u.watch_event.kind);
    rc = wr_peer(w, &f->u.watch_event.peer);
    break;
  case PARLEY_FRAME_LOOKUP:
    wr_u32(w, f->u.lookup.req);
    rc = wr_key(w, f->u.lookup.key);
    break;
  case PARLEY_FRAME_PEERS:
    wr_u32(w, f->u.list.req);
    rc = wr_list(w, LIST_PEERS, &f->u.list.list);
    break;
  case PARLEY_FRAME_TOPICS:
    wr_u32(w, f->u.list.req);
    rc = wr_list(w, LIST_TOPICS, &f->u.list.list);
    break;
  case PARLEY_FRAME_MSG:
    if (f->u.msg.flags & ~PARLEY_MSG_FLAGS_ALL)
      return PARLEY_EINVAL;
    if (f->u.msg.body_len > 0 && f->u.msg.body == NULL)
      return PARLEY_EINVAL;
    wr_u8(w, f->u.msg.flags);
    if (!(f->u.msg.flags & PARLEY_MSG_BRIEF) &&
        (rc = wr_key(w, f->u.msg.publisher)) < 0)
      return rc;
    if ((rc = wr_str8(w, &f->u.msg.channel, STR8_MAX)) < 0)
      return rc;
    wr_u64(w, f->u.msg.seq);
    wr_u64(w, f->u.msg.ts_ms);
    wr_u32(w, f->u.msg.body_len);
    wr_bytes(w, f->u.msg.body, f->u.msg.body_len);
    if (f->u.msg.flags & PARLEY_MSG_BRIEF)
      break;
    if (f->u.msg.chain != NULL)
      rc = wr_key(w, f->u.msg.chain);
    else
      wr_bytes(w, no_chain, PARLEY_WIRE_KEY);
    break;
  case PARLEY_FRAME_MSG_NEXT:
    if (f->u.next.flags & ~PARLEY_MSG_NEXT_FLAGS)
      return PARLEY_EINVAL;
    if (f->u.next.body_len > 0 && f->u.next.body == NULL)
      return PARLEY_EINVAL;
    wr_u8(w, f->u.next.flags);
    wr_u16(w, f->u.next.ts_delta);
    wr_bytes(w, f->u.next.body, f->u.next.body_len);
    break;
  case PARLEY_FRAME_ACK:
    if ((rc = wr_key(w, f->u.ack.publisher)) < 0 ||
        (rc = wr_str8(w, &f->u.ack.channel, STR8_MAX)) < 0)
      return rc;
    wr_u64(w, f->u.ack.seq);
    wr_u16(w, f->u.ack.status);
    break;
  default:
    if (!parley_frame_is_opaque(f->type))
      return PARLEY_EINVAL;
    if (f->u.opaque.len > 0 && f->u.opaque.data == NULL)
      return PARLEY_EINVAL;
    wr_bytes(w, f->u.opaque.data, f->u.opaque.len);
    break;
  }
  if (rc < 0)
    return rc;
  return w->too_big ? PARLEY_ETOOBIG : PARLEY_OK;
}

/* Validates f and measures its type + payload.  OUT: *n. */
static int measure(const struct parley_frame *f, size_t *n) {
  struct wr w = {NULL, 0, 0, 0};
  int rc = emit(&w, f);
  *n = w.n;
  return rc;
}

/* Returns 0 when f cannot be encoded (parley_wire_encode would fail for a
 * reason other than buffer space); a real frame is at least 5 bytes. */
size_t parley_wire_encoded_size(const struct parley_frame *f) {
  size_t n;
  if (measure(f, &n) < 0)
    return 0;
  return LEN_PREFIX + n;
}

int parley_wire_encode(const struct parley_frame *f, uint8_t *buf, size_t cap,
                       size_t *written) {
  size_t n;
  struct wr w;
  int rc;

  *written = 0;
  if (buf == NULL || cap < LEN_PREFIX) {
    rc = measure(f, &n); /* an invalid frame says so before ETOOBIG */
    return rc < 0 ? rc : PARLEY_ETOOBIG;
  }
  /* One pass: the frame is written straight into buf, bounded by cap,
   * and its length goes in front once known.  A frame that does not fit
   * leaves only a partial write in buf. */
  w.p = buf + LEN_PREFIX;
  w.n = 0;
  w.cap = cap - LEN_PREFIX;
  w.too_big = 0;
  rc = emit(&w, f);
  if (rc < 0)
    return rc;
  n = w.n;
  put_be32(buf, (uint32_t)n);
  *written = LEN_PREFIX + n;
  return PARLEY_OK;
}

/* ---- preamble ---------------------------------------------------------- */

/* Bytes that are already present are checked even when the preamble is
 * short, so a stream of garbage is refused on its first byte. */
int parley_wire_preamble_check(const uint8_t *buf, size_t len) {
  size_t magic = sizeof PARLEY_WIRE_MAGIC - 1;
  size_t have = len < magic ? len : magic;

  if (len > 0 && buf == NULL)
    return PARLEY_EINVAL;
  if (have > 0 && memcmp(buf, PARLEY_WIRE_MAGIC, have) != 0)
    return PARLEY_EPROTO;
  if (len < PARLEY_WIRE_PREAMBLE_LEN)
    return PARLEY_EAGAIN;
  if (buf[magic] != PARLEY_WIRE_VERSION)
    return PARLEY_EVERSION;
  return PARLEY_OK;
}

void parley_wire_preamble_write(uint8_t out[PARLEY_WIRE_PREAMBLE_LEN]) {
  memcpy(out, PARLEY_WIRE_MAGIC, sizeof PARLEY_WIRE_MAGIC - 1);
  out[PARLEY_WIRE_PREAMBLE_LEN - 1] = PARLEY_WIRE_VERSION;
}

/* ---- handshake message framing ----------------------------------------- */

int parley_wire_hs_decode(const uint8_t *buf, size_t len, const uint8_t **msg,
                          size_t *msg_len, size_t *consumed) {
  uint16_t n;

  *msg = NULL;
  *msg_len = 0;
  *consumed = 0;
  if (len < PARLEY_WIRE_HS_HDR)
    return PARLEY_EAGAIN;
  if (buf == NULL)
    return PARLEY_EINVAL;
  n = get_be16(buf);
  if (n == 0 || n > PARLEY_WIRE_MAX_HS)
    return PARLEY_EPROTO;
  if (len - PARLEY_WIRE_HS_HDR < n)
    return PARLEY_EAGAIN;
  *msg = buf + PARLEY_WIRE_HS_HDR;
  *msg_len = n;
  *consumed = PARLEY_WIRE_HS_HDR + (size_t)n;
  return PARLEY_OK;
}

void parley_wire_hs_header(uint8_t out[PARLEY_WIRE_HS_HDR], uint16_t len) {
  put_be16(out, len);
}

/* ---- record framing ---------------------------------------------------- */

int parley_wire_record_decode(const uint8_t *buf, size_t len, uint32_t max_ct,
                              const uint8_t **ct, size_t *ct_len,
                              size_t *consumed) {
  uint32_t n;

  *ct = NULL;
  *ct_len = 0;
  *consumed = 0;
  if (len < PARLEY_WIRE_RECORD_HDR)
    return PARLEY_EAGAIN;
  if (buf == NULL)
    return PARLEY_EINVAL;
  n = get_be32(buf);
  if (n < PARLEY_WIRE_TAG)
    return PARLEY_EPROTO; /* cannot even hold the tag */
  /* max_ct is the caller's limit; the protocol's own ceiling applies too. */
  if (n > max_ct || n > PARLEY_MAX_RECORD + PARLEY_WIRE_TAG)
    return PARLEY_ETOOBIG;
  if (len - PARLEY_WIRE_RECORD_HDR < (size_t)n)
    return PARLEY_EAGAIN;
  *ct = buf + PARLEY_WIRE_RECORD_HDR;
  *ct_len = n;
  *consumed = PARLEY_WIRE_RECORD_HDR + (size_t)n;
  return PARLEY_OK;
}

void parley_wire_record_header(uint8_t out[PARLEY_WIRE_RECORD_HDR],
                               uint32_t ct_len) {
  put_be32(out, ct_len);
}

/* ---- names ------------------------------------------------------------- */

const char *parley_frame_type_name(uint8_t type) {
  switch (type) {
  case PARLEY_FRAME_HELLO: return "HELLO";
  case PARLEY_FRAME_ERROR: return "ERROR";
  case PARLEY_FRAME_PING: return "PING";
  case PARLEY_FRAME_PONG: return "PONG";
  case PARLEY_FRAME_REGISTER: return "REGISTER";
  case PARLEY_FRAME_OK: return "OK";
  case PARLEY_FRAME_HEARTBEAT: return "HEARTBEAT";
  case PARLEY_FRAME_SUBSCRIBE: return "SUBSCRIBE";
  case PARLEY_FRAME_UNSUBSCRIBE: return "UNSUBSCRIBE";
  case PARLEY_FRAME_WATCH: return "WATCH";
  case PARLEY_FRAME_UNWATCH: return "UNWATCH";
  case PARLEY_FRAME_SUBSCRIBERS: return "SUBSCRIBERS";
  case PARLEY_FRAME_WATCH_EVENT: return "WATCH_EVENT";
  case PARLEY_FRAME_LOOKUP: return "LOOKUP";
  case PARLEY_FRAME_LIST_PEERS: return "LIST_PEERS";
  case PARLEY_FRAME_PEERS: return "PEERS";
  case PARLEY_FRAME_LIST_TOPICS: return "LIST_TOPICS";
  case PARLEY_FRAME_TOPICS: return "TOPICS";
  case PARLEY_FRAME_MSG: return "MSG";
  case PARLEY_FRAME_ACK: return "ACK";
  case PARLEY_FRAME_MSG_NEXT: return "MSG_NEXT";
  case PARLEY_FRAME_RAFT_OPEN: return "RAFT_OPEN";
  case PARLEY_FRAME_RAFT_DATA: return "RAFT_DATA";
  case PARLEY_FRAME_CHAIN_SIG: return "CHAIN_SIG";
  case PARLEY_FRAME_SYNC_QUERY: return "SYNC_QUERY";
  case PARLEY_FRAME_SYNC_SUMMARY: return "SYNC_SUMMARY";
  case PARLEY_FRAME_SYNC_FETCH: return "SYNC_FETCH";
  case PARLEY_FRAME_SYNC_BATCH: return "SYNC_BATCH";
  case PARLEY_FRAME_TOPIC_CTL: return "TOPIC_CTL";
  case PARLEY_FRAME_KEY_PUT: return "KEY_PUT";
  case PARLEY_FRAME_KEY_GET: return "KEY_GET";
  case PARLEY_FRAME_KEYS: return "KEYS";
  case PARLEY_FRAME_MEMBERS_GET: return "MEMBERS_GET";
  case PARLEY_FRAME_MEMBERS: return "MEMBERS";
  case PARLEY_FRAME_ACL_EVENT: return "ACL_EVENT";
  case PARLEY_FRAME_REPORT: return "REPORT";
  default: return "UNKNOWN";
  }
}

int parley_frame_is_opaque(uint8_t type) {
  return type == PARLEY_FRAME_RAFT_OPEN || type == PARLEY_FRAME_RAFT_DATA ||
         (type >= PARLEY_FRAME_CHAIN_SIG && type <= PARLEY_FRAME_SYNC_BATCH) ||
         (type >= PARLEY_FRAME_TOPIC_CTL && type <= PARLEY_FRAME_ACL_EVENT) ||
         type == PARLEY_FRAME_REPORT;
}
