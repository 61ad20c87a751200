/*
 * test_wire.c — the wire codec: golden bytes written by hand from
 * docs/PROTOCOL.md, round trips of every frame type, every decoder error
 * path, and the preamble / handshake / record framing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/limits.h"
#include "wire/wire.h"

#define BIG 4096
#define MAXF PARLEY_DEFAULT_MAX_FRAME

static struct parley_str S(const char *s) {
  struct parley_str r;
  r.ptr = s;
  r.len = strlen(s);
  return r;
}

static void assert_str(struct parley_str got, const char *want) {
  assert_int_equal(got.len, strlen(want));
  assert_memory_equal(got.ptr, want, got.len);
}

static uint8_t key_a[32], key_b[32], key_seq[32];

static int setup_keys(void **state) {
  (void)state;
  for (int i = 0; i < 32; i++) {
    key_a[i] = 0xaa;
    key_b[i] = 0xbb;
    key_seq[i] = (uint8_t)i;
  }
  return 0;
}

static const uint8_t all_types[] = {
    PARLEY_FRAME_HELLO,       PARLEY_FRAME_ERROR,       PARLEY_FRAME_PING,
    PARLEY_FRAME_PONG,        PARLEY_FRAME_REGISTER,    PARLEY_FRAME_OK,
    PARLEY_FRAME_HEARTBEAT,   PARLEY_FRAME_SUBSCRIBE,   PARLEY_FRAME_UNSUBSCRIBE,
    PARLEY_FRAME_WATCH,       PARLEY_FRAME_UNWATCH,     PARLEY_FRAME_SUBSCRIBERS,
    PARLEY_FRAME_WATCH_EVENT, PARLEY_FRAME_LOOKUP,      PARLEY_FRAME_LIST_PEERS,
    PARLEY_FRAME_PEERS,       PARLEY_FRAME_LIST_TOPICS, PARLEY_FRAME_TOPICS,
    PARLEY_FRAME_MSG,         PARLEY_FRAME_ACK,         PARLEY_FRAME_MSG_NEXT,
};
#define NTYPES (sizeof all_types / sizeof all_types[0])

static struct parley_wire_peer sample_peers[2];
static struct parley_wire_topic sample_topics[3];

/* Fills f with a representative frame of the given type. */
static void sample(uint8_t type, struct parley_frame *f) {
  memset(f, 0, sizeof *f);
  f->type = type;
  sample_peers[0].key = key_a;
  sample_peers[0].addr = S("127.0.0.1:7001");
  sample_peers[0].name = S("alice");
  sample_peers[0].last_seen_ms = 1795500000000ull;
  sample_peers[1].key = key_b;
  sample_peers[1].addr = S("[::1]:7002");
  sample_peers[1].name = S("");
  sample_peers[1].last_seen_ms = UINT64_MAX;
  sample_topics[0].topic = S("news");
  sample_topics[0].subscribers = 3;
  sample_topics[1].topic = S("x");
  sample_topics[1].subscribers = 0;
  sample_topics[2].topic = S("weather/eu");
  sample_topics[2].subscribers = UINT32_MAX;

  switch (type) {
  case PARLEY_FRAME_HELLO:
    f->u.hello.version = 1;
    f->u.hello.caps = 7;
    f->u.hello.max_frame = MAXF;
    f->u.hello.role = PARLEY_ROLE_INDEX;
    f->u.hello.name = S("index-1");
    f->u.hello.addr = S("10.0.0.1:7400");
    break;
  case PARLEY_FRAME_ERROR:
    f->u.error.req = 99;
    f->u.error.code = 17;
    f->u.error.text = S("unknown peer");
    break;
  case PARLEY_FRAME_PING:
  case PARLEY_FRAME_PONG:
    f->u.ping.nonce = 0x0123456789abcdefull;
    break;
  case PARLEY_FRAME_REGISTER:
    f->u.reg.req = 1;
    f->u.reg.addr = S("192.168.1.5:7000");
    f->u.reg.name = S("bob");
    break;
  case PARLEY_FRAME_OK:
    f->u.ok.req = 0xfffffffeu;
    f->u.ok.value = 30000;
    break;
  case PARLEY_FRAME_HEARTBEAT:
  case PARLEY_FRAME_LIST_PEERS:
  case PARLEY_FRAME_LIST_TOPICS:
    f->u.req.req = 42;
    break;
  case PARLEY_FRAME_SUBSCRIBE:
  case PARLEY_FRAME_UNSUBSCRIBE:
  case PARLEY_FRAME_WATCH:
  case PARLEY_FRAME_UNWATCH:
    f->u.topic.req = 7;
    f->u.topic.topic = S("news");
    break;
  case PARLEY_FRAME_SUBSCRIBERS:
    f->u.subscribers.req = 8;
    f->u.subscribers.topic = S("news");
    f->u.subscribers.list.count = 2;
    f->u.subscribers.list.peers = sample_peers;
    break;
  case PARLEY_FRAME_WATCH_EVENT:
    f->u.watch_event.topic = S("news");
    f->u.watch_event.kind = PARLEY_WATCH_REMOVE;
    f->u.watch_event.peer = sample_peers[0];
    break;
  case PARLEY_FRAME_LOOKUP:
    f->u.lookup.req = 9;
    f->u.lookup.key = key_b;
    break;
  case PARLEY_FRAME_PEERS:
    f->u.list.req = 10;
    f->u.list.list.count = 2;
    f->u.list.list.peers = sample_peers;
    break;
  case PARLEY_FRAME_TOPICS:
    f->u.list.req = 11;
    f->u.list.list.count = 3;
    f->u.list.list.topics = sample_topics;
    break;
  case PARLEY_FRAME_MSG:
    f->u.msg.flags = PARLEY_MSG_ACK_REQ | PARLEY_MSG_BINARY;
    f->u.msg.publisher = key_a;
    f->u.msg.channel = S("news");
    f->u.msg.seq = 12345;
    f->u.msg.ts_ms = 1795500000123ull;
    f->u.msg.body = (const uint8_t *)"bin\0ary";
    f->u.msg.body_len = 7;
    f->u.msg.chain = key_b;
    break;
  case PARLEY_FRAME_ACK:
    f->u.ack.publisher = key_a;
    f->u.ack.channel = S("news");
    f->u.ack.seq = 12345;
    f->u.ack.status = 0;
    break;
  case PARLEY_FRAME_MSG_NEXT:
    f->u.next.flags = PARLEY_MSG_BINARY;
    f->u.next.ts_delta = 65535;
    f->u.next.body = (const uint8_t *)"\x00\x01\x02";
    f->u.next.body_len = 3;
    break;
  default:
    fail();
  }
}

static void assert_peer_eq(const struct parley_wire_peer *a,
                           const struct parley_wire_peer *b) {
  assert_memory_equal(a->key, b->key, 32);
  assert_int_equal(a->addr.len, b->addr.len);
  assert_memory_equal(a->addr.ptr, b->addr.ptr, a->addr.len);
  assert_int_equal(a->name.len, b->name.len);
  assert_memory_equal(a->name.ptr, b->name.ptr, a->name.len);
  assert_true(a->last_seen_ms == b->last_seen_ms);
}

/* Compares a decoded list with the array it was encoded from. */
static void assert_list_eq(const struct parley_wire_list *dec,
                           const struct parley_wire_list *src, int peers) {
  const uint8_t *cur = dec->raw;
  size_t left = dec->raw_len;
  uint32_t i;
  assert_int_equal(dec->count, src->count);
  assert_null(dec->peers);
  assert_null(dec->topics);
  for (i = 0; i < src->count; i++) {
    if (peers) {
      struct parley_wire_peer p;
      assert_int_equal(parley_wire_peer_next(&cur, &left, &p), 1);
      assert_peer_eq(&p, &src->peers[i]);
    } else {
      struct parley_wire_topic t;
      assert_int_equal(parley_wire_topic_next(&cur, &left, &t), 1);
      assert_int_equal(t.topic.len, src->topics[i].topic.len);
      assert_memory_equal(t.topic.ptr, src->topics[i].topic.ptr, t.topic.len);
      assert_int_equal(t.subscribers, src->topics[i].subscribers);
    }
  }
  assert_int_equal(left, 0);
}

static void assert_frame_eq(const struct parley_frame *d,
                            const struct parley_frame *s) {
  assert_int_equal(d->type, s->type);
  switch (s->type) {
  case PARLEY_FRAME_HELLO:
    assert_int_equal(d->u.hello.version, s->u.hello.version);
    assert_int_equal(d->u.hello.caps, s->u.hello.caps);
    assert_int_equal(d->u.hello.max_frame, s->u.hello.max_frame);
    assert_int_equal(d->u.hello.role, s->u.hello.role);
    assert_str(d->u.hello.name, s->u.hello.name.ptr);
    assert_str(d->u.hello.addr, s->u.hello.addr.ptr);
    break;
  case PARLEY_FRAME_ERROR:
    assert_int_equal(d->u.error.req, s->u.error.req);
    assert_int_equal(d->u.error.code, s->u.error.code);
    assert_str(d->u.error.text, s->u.error.text.ptr);
    break;
  case PARLEY_FRAME_PING:
  case PARLEY_FRAME_PONG:
    assert_true(d->u.ping.nonce == s->u.ping.nonce);
    break;
  case PARLEY_FRAME_REGISTER:
    assert_int_equal(d->u.reg.req, s->u.reg.req);
    assert_str(d->u.reg.addr, s->u.reg.addr.ptr);
    assert_str(d->u.reg.name, s->u.reg.name.ptr);
    break;
  case PARLEY_FRAME_OK:
    assert_int_equal(d->u.ok.req, s->u.ok.req);
    assert_true(d->u.ok.value == s->u.ok.value);
    break;
  case PARLEY_FRAME_HEARTBEAT:
  case PARLEY_FRAME_LIST_PEERS:
  case PARLEY_FRAME_LIST_TOPICS:
    assert_int_equal(d->u.req.req, s->u.req.req);
    break;
  case PARLEY_FRAME_SUBSCRIBE:
  case PARLEY_FRAME_UNSUBSCRIBE:
  case PARLEY_FRAME_WATCH:
  case PARLEY_FRAME_UNWATCH:
    assert_int_equal(d->u.topic.req, s->u.topic.req);
    assert_str(d->u.topic.topic, s->u.topic.topic.ptr);
    break;
  case PARLEY_FRAME_SUBSCRIBERS:
    assert_int_equal(d->u.subscribers.req, s->u.subscribers.req);
    assert_str(d->u.subscribers.topic, s->u.subscribers.topic.ptr);
    assert_list_eq(&d->u.subscribers.list, &s->u.subscribers.list, 1);
    break;
  case PARLEY_FRAME_WATCH_EVENT:
    assert_str(d->u.watch_event.topic, s->u.watch_event.topic.ptr);
    assert_int_equal(d->u.watch_event.kind, s->u.watch_event.kind);
    assert_peer_eq(&d->u.watch_event.peer, &s->u.watch_event.peer);
    break;
  case PARLEY_FRAME_LOOKUP:
    assert_int_equal(d->u.lookup.req, s->u.lookup.req);
    assert_memory_equal(d->u.lookup.key, s->u.lookup.key, 32);
    break;
  case PARLEY_FRAME_PEERS:
    assert_int_equal(d->u.list.req, s->u.list.req);
    assert_list_eq(&d->u.list.list, &s->u.list.list, 1);
    break;
  case PARLEY_FRAME_TOPICS:
    assert_int_equal(d->u.list.req, s->u.list.req);
    assert_list_eq(&d->u.list.list, &s->u.list.list, 0);
    break;
  case PARLEY_FRAME_MSG:
    assert_int_equal(d->u.msg.flags, s->u.msg.flags);
    if (s->u.msg.flags & PARLEY_MSG_BRIEF) {
      assert_null(d->u.msg.publisher);
      assert_null(d->u.msg.chain);
    } else {
      assert_memory_equal(d->u.msg.publisher, s->u.msg.publisher, 32);
      assert_memory_equal(d->u.msg.chain, s->u.msg.chain, 32);
    }
    assert_str(d->u.msg.channel, s->u.msg.channel.ptr);
    assert_true(d->u.msg.seq == s->u.msg.seq);
    assert_true(d->u.msg.ts_ms == s->u.msg.ts_ms);
    assert_int_equal(d->u.msg.body_len, s->u.msg.body_len);
    assert_memory_equal(d->u.msg.body, s->u.msg.body, s->u.msg.body_len);
    break;
  case PARLEY_FRAME_ACK:
    assert_memory_equal(d->u.ack.publisher, s->u.ack.publisher, 32);
    assert_str(d->u.ack.channel, s->u.ack.channel.ptr);
    assert_true(d->u.ack.seq == s->u.ack.seq);
    assert_int_equal(d->u.ack.status, s->u.ack.status);
    break;
  case PARLEY_FRAME_MSG_NEXT:
    assert_int_equal(d->u.next.flags, s->u.next.flags);
    assert_int_equal(d->u.next.ts_delta, s->u.next.ts_delta);
    assert_int_equal(d->u.next.body_len, s->u.next.body_len);
    assert_memory_equal(d->u.next.body, s->u.next.body, s->u.next.body_len);
    break;
  default:
    fail();
  }
}

/* Encodes f, checks the size function agrees.  OUT: buf, *n. */
static void enc(const struct parley_frame *f, uint8_t *buf, size_t *n) {
  assert_int_equal(parley_wire_encode(f, buf, BIG, n), PARLEY_OK);
  assert_int_equal(*n, parley_wire_encoded_size(f));
}

static int dec(const uint8_t *buf, size_t len, struct parley_frame *f,
               size_t *used) {
  return parley_wire_decode(buf, len, MAXF, f, used);
}

/* Golden: encode f must give exactly want, and decoding want must give f. */
static void golden(const struct parley_frame *f, const uint8_t *want,
                   size_t want_len) {
  uint8_t buf[BIG];
  size_t n, used;
  struct parley_frame d;
  enc(f, buf, &n);
  assert_int_equal(n, want_len);
  assert_memory_equal(buf, want, want_len);
  assert_int_equal(dec(want, want_len, &d, &used), PARLEY_OK);
  assert_int_equal(used, want_len);
  assert_frame_eq(&d, f);
}

/* ---- golden bytes ----------------------------------------------------- */

static void test_golden_hello(void **state) {
  static const uint8_t want[] = {
      0x00, 0x00, 0x00, 0x1e,             /* length 30 */
      0x01,                               /* HELLO */
      0x00, 0x01,                         /* version 1 */
      0x00, 0x00, 0x00, 0x07,             /* caps ACK|WATCH|BATCH */
      0x00, 0x10, 0x10, 0x00,             /* max_frame 1 MiB + 4 KiB */
      0x01,                               /* role peer */
      0x03, 'a',  'n',  'n',              /* name */
      0x0d, '1',  '0',  '.',  '0',  '.',  /* addr "10.0.0.1:7000" */
      '0',  '.',  '1',  ':',  '7',  '0',  '0', '0',
  };
  struct parley_frame f;
  (void)state;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_HELLO;
  f.u.hello.version = 1;
  f.u.hello.caps = PARLEY_CAP_ACK | PARLEY_CAP_WATCH | PARLEY_CAP_BATCH;
  f.u.hello.max_frame = PARLEY_DEFAULT_MAX_FRAME;
  f.u.hello.role = PARLEY_ROLE_PEER;
  f.u.hello.name = S("ann");
  f.u.hello.addr = S("10.0.0.1:7000");
  assert_int_equal(sizeof want, 34);
  golden(&f, want, sizeof want);
}

/* The same frame as the annotated dump in docs/PROTOCOL.md. */
static void test_golden_msg(void **state) {
  static const uint8_t want[] = {
      0x00, 0x00, 0x00, 0x60, /* length 96 */
      0x20,                   /* MSG */
      0x01,                   /* flags ACK_REQ */
      0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, /* publisher */
      0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
      0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
      0x1e, 0x1f,
      0x04, 'n',  'e',  'w',  's',                    /* channel */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, /* seq 7 */
      0x00, 0x00, 0x01, 0xa2, 0x0c, 0x23, 0xc3, 0x7b, /* ts 1795500000123 */
      0x00, 0x00, 0x00, 0x05,                         /* body_len 5 */
      'h',  'e',  'l',  'l',  'o',
      0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, /* chain */
      0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32,
      0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d,
      0x3e, 0x3f,
  };
  uint8_t chain[32];
  struct parley_frame d;
  size_t used;
  struct parley_frame f;
  (void)state;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_MSG;
  f.u.msg.flags = PARLEY_MSG_ACK_REQ;
  f.u.msg.publisher = key_seq;
  f.u.msg.channel = S("news");
  f.u.msg.seq = 7;
  f.u.msg.ts_ms = 1795500000123ull;
  f.u.msg.body = (const uint8_t *)"hello";
  f.u.msg.body_len = 5;
  for (int i = 0; i < 32; i++)
    chain[i] = (uint8_t)(0x20 + i);
  f.u.msg.chain = chain;
  assert_int_equal(sizeof want, 100);
  golden(&f, want, sizeof want);
  /* The chain field points into the input, after the body. */
  assert_int_equal(dec(want, sizeof want, &d, &used), PARLEY_OK);
  assert_ptr_equal(d.u.msg.chain, want + 68);
  /* A NULL chain is sent as 32 zero bytes ("no chain value"). */
  {
    uint8_t buf[128];
    size_t n;
    f.u.msg.chain = NULL;
    assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_OK);
    assert_int_equal(n, 100);
    assert_memory_equal(buf, want, 68);
    for (int i = 68; i < 100; i++)
      assert_int_equal(buf[i], 0);
  }
  /* A MSG cut anywhere inside its chain is malformed. */
  for (size_t cut = 1; cut <= 32; cut++) {
    uint8_t buf[128];
    memcpy(buf, want, sizeof want - cut);
    buf[3] = (uint8_t)(0x60 - cut);
    assert_int_equal(dec(buf, sizeof want - cut, &d, &used), PARLEY_EPROTO);
  }
}

/* A brief MSG: no publisher, no chain; both decode as NULL and the
 * encoder ignores whatever the frame holds in them. */
static void test_golden_msg_brief(void **state) {
  static const uint8_t want[] = {
      0x00, 0x00, 0x00, 0x1e, /* length 30 */
      0x20,                   /* MSG */
      0x14,                   /* flags BRIEF | BINARY */
      0x04, 'n',  'e',  'w',  's',                    /* channel */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, /* seq 7 */
      0x00, 0x00, 0x01, 0xa2, 0x0c, 0x23, 0xc3, 0x7b, /* ts 1795500000123 */
      0x00, 0x00, 0x00, 0x03,                         /* body_len 3 */
      0x00, 0xff, 0x01,
  };
  struct parley_frame f, d;
  size_t used;
  (void)state;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_MSG;
  f.u.msg.flags = PARLEY_MSG_BRIEF | PARLEY_MSG_BINARY;
  f.u.msg.publisher = key_seq; /* not written */
  f.u.msg.channel = S("news");
  f.u.msg.seq = 7;
  f.u.msg.ts_ms = 1795500000123ull;
  f.u.msg.body = (const uint8_t *)"\x00\xff\x01";
  f.u.msg.body_len = 3;
  f.u.msg.chain = key_seq; /* not written */
  golden(&f, want, sizeof want);
  f.u.msg.publisher = NULL;
  f.u.msg.chain = NULL;
  golden(&f, want, sizeof want);
  assert_int_equal(dec(want, sizeof want, &d, &used), PARLEY_OK);
  assert_int_equal(used, sizeof want);
  assert_int_equal(d.u.msg.flags, PARLEY_MSG_BRIEF | PARLEY_MSG_BINARY);
  assert_null(d.u.msg.publisher);
  assert_null(d.u.msg.chain);
  assert_int_equal(d.u.msg.body_len, 3);
  assert_ptr_equal(d.u.msg.body, want + 31);
  /* Trailing bytes (a full MSG's chain with the BRIEF bit set) or a cut
   * body are malformed. */
  {
    uint8_t buf[sizeof want + 32];
    memcpy(buf, want, sizeof want);
    memset(buf + sizeof want, 0, 32);
    buf[3] = 0x1e + 32;
    assert_int_equal(dec(buf, sizeof want + 32, &d, &used), PARLEY_EPROTO);
    buf[3] = 0x1e - 1;
    assert_int_equal(dec(buf, sizeof want - 1, &d, &used), PARLEY_EPROTO);
  }
}

/* MSG_NEXT: flags, ts delta, and the body to the end of the frame. */
static void test_golden_msg_next(void **state) {
  static const uint8_t want[] = {
      0x00, 0x00, 0x00, 0x09, /* length 9 */
      0x22,                   /* MSG_NEXT */
      0x05,                   /* flags ACK_REQ | BINARY */
      0x01, 0x2c,             /* ts delta 300 ms */
      0x00, 0xff, 0x01, 0x02, 0x03,
  };
  struct parley_frame f, d;
  size_t used;
  (void)state;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_MSG_NEXT;
  f.u.next.flags = PARLEY_MSG_ACK_REQ | PARLEY_MSG_BINARY;
  f.u.next.ts_delta = 300;
  f.u.next.body = want + 8;
  f.u.next.body_len = 5;
  golden(&f, want, sizeof want);
  assert_int_equal(dec(want, sizeof want, &d, &used), PARLEY_OK);
  assert_ptr_equal(d.u.next.body, want + 8);
  assert_string_equal(parley_frame_type_name(PARLEY_FRAME_MSG_NEXT),
                      "MSG_NEXT");
  {
    uint8_t buf[sizeof want];
    /* An empty body is a message too; a frame too short for the delta is
     * malformed. */
    memcpy(buf, want, sizeof want);
    buf[3] = 4;
    assert_int_equal(dec(buf, 8, &d, &used), PARLEY_OK);
    assert_int_equal(d.u.next.body_len, 0);
    buf[3] = 3;
    assert_int_equal(dec(buf, 7, &d, &used), PARLEY_EPROTO);
    /* BRIEF is implied, never written; unknown bits are refused. */
    for (unsigned fl = 0; fl < 256; fl++) {
      memcpy(buf, want, sizeof want);
      buf[5] = (uint8_t)fl;
      assert_int_equal(dec(buf, sizeof buf, &d, &used),
                       (fl & ~PARLEY_MSG_NEXT_FLAGS) ? PARLEY_EPROTO
                                                     : PARLEY_OK);
    }
  }
  f.u.next.flags = PARLEY_MSG_BRIEF;
  assert_int_equal(parley_wire_encoded_size(&f), 0);
  f.u.next.flags = 0;
  f.u.next.body = NULL;
  assert_int_equal(parley_wire_encoded_size(&f), 0);
}

static void test_golden_subscribers(void **state) {
  static const uint8_t want[] = {
      0x00, 0x00, 0x00, 0x63, /* length 99 */
      0x17,                   /* SUBSCRIBERS */
      0x00, 0x00, 0x00, 0x05, /* req 5 */
      0x01, 't',              /* topic */
      0x00, 0x00, 0x00, 0x02, /* count 2 */
      /* peer 1: key aa..aa, addr "h:1", name "a", last_seen 0x0102..08 */
      0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
      0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
      0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
      0x03, 'h',  ':',  '1',
      0x01, 'a',
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
      /* peer 2: key bb..bb, empty addr and name, last_seen 0 */
      0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
      0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
      0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
      0x00,
      0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  };
  struct parley_wire_peer peers[2];
  struct parley_frame f;
  (void)state;
  memset(peers, 0, sizeof peers);
  peers[0].key = key_a;
  peers[0].addr = S("h:1");
  peers[0].name = S("a");
  peers[0].last_seen_ms = 0x0102030405060708ull;
  peers[1].key = key_b;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_SUBSCRIBERS;
  f.u.subscribers.req = 5;
  f.u.subscribers.topic = S("t");
  f.u.subscribers.list.count = 2;
  f.u.subscribers.list.peers = peers;
  assert_int_equal(sizeof want, 103);
  golden(&f, want, sizeof want);
}

/* Small fixed frames, pinned too (PING, OK, ERROR, TOPICS). */
static void test_golden_small(void **state) {
  static const uint8_t ping[] = {0x00, 0x00, 0x00, 0x09, 0x03, 0x01, 0x02,
                                 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  static const uint8_t ok[] = {0x00, 0x00, 0x00, 0x0d, 0x11, 0x00, 0x00,
                               0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00,
                               0x00, 0x75, 0x30};
  static const uint8_t err[] = {0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00,
                                0x00, 0x03, 0x00, 0x11, 0x00, 0x02, 'n',
                                'o'};
  static const uint8_t topics[] = {0x00, 0x00, 0x00, 0x0f, 0x1d, 0x00,
                                   0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
                                   0x01, 0x01, 'x',  0x00, 0x00, 0x01,
                                   0x00};
  struct parley_wire_topic t = {{"x", 1}, 256};
  struct parley_frame f;
  (void)state;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_PING;
  f.u.ping.nonce = 0x0102030405060708ull;
  golden(&f, ping, sizeof ping);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_OK;
  f.u.ok.req = 42;
  f.u.ok.value = 30000;
  golden(&f, ok, sizeof ok);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_ERROR;
  f.u.error.req = 3;
  f.u.error.code = (uint16_t)-PARLEY_EUNKNOWNPEER;
  f.u.error.text = S("no");
  golden(&f, err, sizeof err);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_TOPICS;
  f.u.list.req = 4;
  f.u.list.list.count = 1;
  f.u.list.list.topics = &t;
  golden(&f, topics, sizeof topics);
}

/* ---- round trips ------------------------------------------------------ */

static void test_roundtrip_all(void **state) {
  (void)state;
  for (size_t i = 0; i < NTYPES; i++) {
    struct parley_frame f, d;
    uint8_t buf[BIG], again[BIG];
    size_t n, used, n2;
    sample(all_types[i], &f);
    enc(&f, buf, &n);
    assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
    assert_int_equal(used, n);
    assert_frame_eq(&d, &f);
    /* A decoded frame re-encodes (lists from their raw bytes). */
    assert_int_equal(parley_wire_encoded_size(&d), n);
    assert_int_equal(parley_wire_encode(&d, again, sizeof again, &n2),
                     PARLEY_OK);
    assert_int_equal(n2, n);
    assert_memory_equal(again, buf, n);
    assert_string_not_equal(parley_frame_type_name(all_types[i]), "UNKNOWN");
  }
}

static void test_empty_fields(void **state) {
  struct parley_frame f, d;
  uint8_t buf[BIG];
  size_t n, used;
  (void)state;
  /* Empty strings, empty lists and empty bodies are legal. */
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_PEERS;
  enc(&f, buf, &n);
  assert_int_equal(n, 4 + 1 + 4 + 4);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  assert_int_equal(d.u.list.list.count, 0);
  assert_int_equal(d.u.list.list.raw_len, 0);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_MSG;
  f.u.msg.publisher = key_a;
  enc(&f, buf, &n);
  assert_int_equal(n, 4 + 1 + 1 + 32 + 1 + 8 + 8 + 4 + 32);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  assert_int_equal(d.u.msg.body_len, 0);
  assert_int_equal(d.u.msg.channel.len, 0);
}

static void test_stream_of_frames(void **state) {
  uint8_t buf[BIG];
  size_t off = 0, n, used;
  (void)state;
  for (size_t i = 0; i < NTYPES; i++) {
    struct parley_frame f;
    sample(all_types[i], &f);
    assert_int_equal(parley_wire_encode(&f, buf + off, sizeof buf - off, &n),
                     PARLEY_OK);
    off += n;
  }
  size_t pos = 0;
  for (size_t i = 0; i < NTYPES; i++) {
    struct parley_frame d;
    assert_int_equal(dec(buf + pos, off - pos, &d, &used), PARLEY_OK);
    assert_int_equal(d.type, all_types[i]);
    pos += used;
  }
  assert_int_equal(pos, off);
}

/* ---- decoder errors --------------------------------------------------- */

static void test_partial_every_prefix(void **state) {
  (void)state;
  for (size_t i = 0; i < NTYPES; i++) {
    struct parley_frame f, d;
    uint8_t buf[BIG];
    size_t n, used;
    sample(all_types[i], &f);
    enc(&f, buf, &n);
    for (size_t k = 0; k < n; k++) {
      used = 77;
      assert_int_equal(dec(buf, k, &d, &used), PARLEY_EAGAIN);
      assert_int_equal(used, 0);
    }
  }
}

static void test_length_zero(void **state) {
  static const uint8_t z[] = {0, 0, 0, 0, 0x03};
  struct parley_frame d;
  size_t used = 5;
  (void)state;
  assert_int_equal(dec(z, 4, &d, &used), PARLEY_EPROTO);
  assert_int_equal(used, 0);
  assert_int_equal(dec(z, sizeof z, &d, &used), PARLEY_EPROTO);
}

static void test_oversize(void **state) {
  /* Only the prefix has arrived: refused at once. */
  static const uint8_t big[] = {0x00, 0x20, 0x00, 0x00};
  static const uint8_t huge[] = {0x01, 0x00, 0x00, 0x01};
  static const uint8_t at[] = {0x00, 0x00, 0x00, 0x10};
  struct parley_frame d;
  size_t used = 1;
  (void)state;
  assert_int_equal(parley_wire_decode(big, 4, 1u << 20, &d, &used),
                   PARLEY_ETOOBIG);
  assert_int_equal(used, 0);
  /* Above the 16 MiB hard ceiling even if the caller allows more. */
  assert_int_equal(parley_wire_decode(huge, 4, UINT32_MAX, &d, &used),
                   PARLEY_ETOOBIG);
  /* Exactly max_frame is fine (just incomplete), one more is not. */
  assert_int_equal(parley_wire_decode(at, 4, 16, &d, &used), PARLEY_EAGAIN);
  assert_int_equal(parley_wire_decode(at, 4, 15, &d, &used), PARLEY_ETOOBIG);
}

/* Re-frames payload bytes with the given type and decodes them. */
static int dec_payload(uint8_t type, const uint8_t *p, size_t n,
                       struct parley_frame *d, size_t *used) {
  static uint8_t buf[BIG];
  uint32_t len = (uint32_t)n + 1;
  buf[0] = (uint8_t)(len >> 24);
  buf[1] = (uint8_t)(len >> 16);
  buf[2] = (uint8_t)(len >> 8);
  buf[3] = (uint8_t)len;
  buf[4] = type;
  memcpy(buf + 5, p, n);
  return dec(buf, n + 5, d, used);
}

/* Every sample frame with one extra byte inside the frame, and with its
 * last payload byte cut off (the length prefix adjusted in both cases). */
static void test_trailing_and_truncated(void **state) {
  (void)state;
  for (size_t i = 0; i < NTYPES; i++) {
    struct parley_frame f, d;
    uint8_t buf[BIG];
    size_t n, used;
    if (all_types[i] == PARLEY_FRAME_MSG_NEXT)
      continue; /* its body is the rest of the frame, whatever its length */
    sample(all_types[i], &f);
    enc(&f, buf, &n);
    buf[n] = 0x00;
    used = 9;
    assert_int_equal(dec_payload(buf[4], buf + 5, n - 5 + 1, &d, &used),
                     PARLEY_EPROTO);
    assert_int_equal(used, 0);
    assert_int_equal(dec_payload(buf[4], buf + 5, n - 5 - 1, &d, &used),
                     PARLEY_EPROTO);
    /* And the type byte alone. */
    assert_int_equal(dec_payload(buf[4], buf + 5, 0, &d, &used),
                     PARLEY_EPROTO);
  }
}

static void test_unknown_type(void **state) {
  static const uint8_t u[] = {0x00, 0x00, 0x00, 0x04, 0x7f, 1, 2, 3,
                              0x00, 0x00, 0x00, 0x01, 0x00};
  struct parley_frame d;
  size_t used = 0;
  (void)state;
  assert_int_equal(dec(u, sizeof u, &d, &used), PARLEY_EUNKNOWNTYPE);
  assert_int_equal(d.type, 0x7f);
  assert_int_equal(used, 8);
  /* Type 0 (and the frame after it) is unknown as well. */
  assert_int_equal(dec(u + 8, sizeof u - 8, &d, &used), PARLEY_EUNKNOWNTYPE);
  assert_int_equal(d.type, 0);
  assert_int_equal(used, 5);
  /* A partial unknown frame is just partial. */
  assert_int_equal(dec(u, 7, &d, &used), PARLEY_EAGAIN);
  assert_int_equal(used, 0);
  assert_string_equal(parley_frame_type_name(0x7f), "UNKNOWN");
  assert_string_equal(parley_frame_type_name(0), "UNKNOWN");
  assert_string_equal(parley_frame_type_name(PARLEY_FRAME_MSG), "MSG");
  assert_string_equal(parley_frame_type_name(PARLEY_FRAME_WATCH_EVENT),
                      "WATCH_EVENT");
}

static void test_bad_msg_flags(void **state) {
  struct parley_frame f, d;
  uint8_t buf[BIG];
  size_t n, used;
  (void)state;
  sample(PARLEY_FRAME_MSG, &f);
  enc(&f, buf, &n);
  for (unsigned fl = 0; fl < 256; fl++) {
    buf[5] = (uint8_t)fl;
    /* BRIEF changes the layout: a full MSG read as brief has 64 bytes
     * too many. */
    int want = (fl & ~PARLEY_MSG_FLAGS_ALL) || (fl & PARLEY_MSG_BRIEF)
                   ? PARLEY_EPROTO
                   : PARLEY_OK;
    assert_int_equal(dec(buf, n, &d, &used), want);
  }
  f.u.msg.flags = 0x20;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
  assert_int_equal(n, 0);
  assert_int_equal(parley_wire_encoded_size(&f), 0);
}

static void test_bad_role_and_kind(void **state) {
  struct parley_frame f, d;
  uint8_t buf[BIG];
  size_t n, used;
  (void)state;
  sample(PARLEY_FRAME_HELLO, &f);
  enc(&f, buf, &n);
  /* role is at offset 5 + 2 + 4 + 4 */
  assert_int_equal(buf[15], PARLEY_ROLE_INDEX);
  buf[15] = 0;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[15] = 3;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[15] = PARLEY_ROLE_PEER;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  f.u.hello.role = 3;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);

  sample(PARLEY_FRAME_WATCH_EVENT, &f);
  enc(&f, buf, &n);
  /* kind is after the topic "news": 5 + 1 + 4 */
  assert_int_equal(buf[10], PARLEY_WATCH_REMOVE);
  buf[10] = 0;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[10] = 3;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[10] = PARLEY_WATCH_ADD;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  assert_int_equal(d.u.watch_event.kind, PARLEY_WATCH_ADD);
  f.u.watch_event.kind = 0;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
}

/* SUBSCRIBERS with 2 peers; the count field is at offset 5+4+5 = 14. */
static void test_bad_lists(void **state) {
  struct parley_frame f, d;
  uint8_t buf[BIG];
  size_t n, used;
  (void)state;
  sample(PARLEY_FRAME_SUBSCRIBERS, &f);
  enc(&f, buf, &n);
  assert_int_equal(buf[17], 2);
  buf[17] = 3; /* count says more entries than present */
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[17] = 1; /* count says fewer: the second entry is left over */
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[17] = 0;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[17] = 2;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  /* Over PARLEY_MAX_LIST. */
  buf[14] = 0x00;
  buf[15] = 0x01;
  buf[16] = 0x00;
  buf[17] = 0x00;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[14] = 0xff;
  buf[15] = 0xff;
  buf[16] = 0xff;
  buf[17] = 0xff;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);

  /* A malformed entry: the second peer's addr length runs past the end. */
  sample(PARLEY_FRAME_PEERS, &f);
  enc(&f, buf, &n);
  size_t p2 = 5 + 4 + 4 + (32 + 1 + 14 + 1 + 5 + 8);
  assert_int_equal(buf[p2 + 32], 10);
  buf[p2 + 32] = 40;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);

  /* TOPICS: count 3 but 2 entries. */
  sample(PARLEY_FRAME_TOPICS, &f);
  f.u.list.list.count = 2;
  enc(&f, buf, &n);
  buf[12] = 3;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);

  /* Encoder: too many entries. */
  sample(PARLEY_FRAME_PEERS, &f);
  f.u.list.list.count = PARLEY_MAX_LIST + 1;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n),
                   PARLEY_ETOOBIG);
  /* Encoder: count without entries. */
  f.u.list.list.count = 1;
  f.u.list.list.peers = NULL;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
}

/* The largest list: PARLEY_MAX_LIST empty topics (5 bytes each) decode; one
 * more entry is refused even though the frame is well under max_frame. */
static void test_list_max(void **state) {
  static struct parley_wire_topic many[PARLEY_MAX_LIST];
  static uint8_t buf[16 + 5 * (PARLEY_MAX_LIST + 1)];
  struct parley_frame f, d;
  size_t n, used;
  (void)state;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_TOPICS;
  f.u.list.list.count = PARLEY_MAX_LIST;
  f.u.list.list.topics = many;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 13 + 5 * PARLEY_MAX_LIST);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  assert_int_equal(d.u.list.list.count, PARLEY_MAX_LIST);
  /* Append one more entry and fix up the length and count by hand. */
  memset(buf + n, 0, 5);
  n += 5;
  uint32_t flen = (uint32_t)n - 4;
  buf[0] = (uint8_t)(flen >> 24);
  buf[1] = (uint8_t)(flen >> 16);
  buf[2] = (uint8_t)(flen >> 8);
  buf[3] = (uint8_t)flen;
  buf[9] = 0x00;
  buf[10] = 0x01;
  buf[11] = 0x00;
  buf[12] = 0x00;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
}

static void test_encode_from_raw(void **state) {
  struct parley_frame f, d;
  uint8_t buf[BIG], out[BIG];
  size_t n, used, n2;
  (void)state;
  sample(PARLEY_FRAME_TOPICS, &f);
  enc(&f, buf, &n);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  /* Raw bytes with a count that does not match are refused. */
  d.u.list.list.count = 2;
  assert_int_equal(parley_wire_encode(&d, out, sizeof out, &n2),
                   PARLEY_EINVAL);
  d.u.list.list.count = 3;
  d.u.list.list.raw_len -= 1;
  assert_int_equal(parley_wire_encode(&d, out, sizeof out, &n2),
                   PARLEY_EINVAL);
  d.u.list.list.raw_len += 1;
  assert_int_equal(parley_wire_encode(&d, out, sizeof out, &n2), PARLEY_OK);
  assert_int_equal(n2, n);
  assert_memory_equal(out, buf, n);
  /* The array wins over raw when both are set. */
  d.u.list.list.topics = sample_topics;
  assert_int_equal(parley_wire_encode(&d, out, sizeof out, &n2), PARLEY_OK);
  assert_memory_equal(out, buf, n);
}

static void test_nul_in_string(void **state) {
  struct parley_frame f, d;
  uint8_t buf[BIG];
  size_t n, used;
  (void)state;
  /* HELLO name "index-1": name bytes start at 5+2+4+4+1+1 = 17. */
  sample(PARLEY_FRAME_HELLO, &f);
  enc(&f, buf, &n);
  assert_int_equal(buf[17], 'i');
  buf[18] = 0;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  /* NUL as the last byte of a str16. */
  sample(PARLEY_FRAME_ERROR, &f);
  enc(&f, buf, &n);
  buf[n - 1] = 0;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  /* NUL in a peer name inside a list. */
  sample(PARLEY_FRAME_PEERS, &f);
  enc(&f, buf, &n);
  size_t name0 = 5 + 4 + 4 + 32 + 1 + 14 + 1;
  assert_int_equal(buf[name0], 'a');
  buf[name0 + 2] = 0;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  /* A MSG body may hold NULs (sample body does). */
  sample(PARLEY_FRAME_MSG, &f);
  enc(&f, buf, &n);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  /* The encoder refuses NULs too. */
  sample(PARLEY_FRAME_REGISTER, &f);
  f.u.reg.name.ptr = "a\0b";
  f.u.reg.name.len = 3;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
}

static void test_string_limits(void **state) {
  char long_s[300];
  struct parley_frame f, d;
  uint8_t buf[BIG];
  size_t n, used;
  (void)state;
  memset(long_s, 'x', sizeof long_s);

  /* name: 64 fine, 65 refused both ways. */
  sample(PARLEY_FRAME_HELLO, &f);
  f.u.hello.name.ptr = long_s;
  f.u.hello.name.len = PARLEY_MAX_NAME;
  enc(&f, buf, &n);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  f.u.hello.name.len = PARLEY_MAX_NAME + 1;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n),
                   PARLEY_ETOOBIG);
  /* Hand-made: name length 65 on the wire. */
  {
    uint8_t p[2 + 4 + 4 + 1 + 1 + 65 + 1];
    memset(p, 'x', sizeof p);
    p[0] = 0;
    p[1] = 1;
    memset(p + 2, 0, 8);
    p[10] = PARLEY_ROLE_PEER;
    p[11] = 65;
    p[11 + 66] = 0;
    assert_int_equal(dec_payload(PARLEY_FRAME_HELLO, p, sizeof p, &d, &used),
                     PARLEY_EPROTO);
    p[11] = 64; /* now 64 name bytes, then addr length 'x' = 120 > 96 */
    assert_int_equal(dec_payload(PARLEY_FRAME_HELLO, p, sizeof p - 1, &d,
                                 &used),
                     PARLEY_EPROTO);
    p[11 + 65] = 0; /* empty addr */
    assert_int_equal(dec_payload(PARLEY_FRAME_HELLO, p, sizeof p - 1, &d,
                                 &used),
                     PARLEY_OK);
  }
  /* addr: 96 fine, 97 refused. */
  sample(PARLEY_FRAME_REGISTER, &f);
  f.u.reg.addr.ptr = long_s;
  f.u.reg.addr.len = PARLEY_MAX_ADDR;
  enc(&f, buf, &n);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  f.u.reg.addr.len = PARLEY_MAX_ADDR + 1;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n),
                   PARLEY_ETOOBIG);
  /* str8: 255 fine, 256 refused. */
  sample(PARLEY_FRAME_SUBSCRIBE, &f);
  f.u.topic.topic.ptr = long_s;
  f.u.topic.topic.len = 255;
  enc(&f, buf, &n);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  assert_int_equal(d.u.topic.topic.len, 255);
  f.u.topic.topic.len = 256;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n),
                   PARLEY_ETOOBIG);
  /* ERROR text: 256 fine, 257 refused. */
  sample(PARLEY_FRAME_ERROR, &f);
  f.u.error.text.ptr = long_s;
  f.u.error.text.len = PARLEY_MAX_ERRTEXT;
  enc(&f, buf, &n);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  f.u.error.text.len = PARLEY_MAX_ERRTEXT + 1;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n),
                   PARLEY_ETOOBIG);
  /* NULL pointers with a length. */
  sample(PARLEY_FRAME_ERROR, &f);
  f.u.error.text.ptr = NULL;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
  sample(PARLEY_FRAME_MSG, &f);
  f.u.msg.body = NULL;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
  sample(PARLEY_FRAME_LOOKUP, &f);
  f.u.lookup.key = NULL;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
}

static void test_msg_body_bounds(void **state) {
  struct parley_frame f, d;
  uint8_t buf[BIG];
  size_t n, used;
  (void)state;
  sample(PARLEY_FRAME_MSG, &f);
  enc(&f, buf, &n);
  /* body_len is the 4 bytes before the 7-byte body and the 32-byte chain. */
  size_t bl = n - 32 - 7 - 4;
  assert_int_equal(buf[bl + 3], 7);
  buf[bl + 3] = 8;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[bl + 3] = 6;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
  buf[bl] = 0xff;
  buf[bl + 3] = 7;
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_EPROTO);
}

/* ---- encoder ---------------------------------------------------------- */

static void test_encode_cap_and_type(void **state) {
  struct parley_frame f;
  uint8_t buf[BIG];
  size_t n, need;
  (void)state;
  for (size_t i = 0; i < NTYPES; i++) {
    sample(all_types[i], &f);
    need = parley_wire_encoded_size(&f);
    assert_true(need >= PARLEY_WIRE_FRAME_HDR);
    for (size_t cap = 0; cap < need; cap++) {
      n = 123;
      assert_int_equal(parley_wire_encode(&f, buf, cap, &n), PARLEY_ETOOBIG);
      assert_int_equal(n, 0);
    }
    assert_int_equal(parley_wire_encode(&f, buf, need, &n), PARLEY_OK);
    assert_int_equal(n, need);
  }
  memset(&f, 0, sizeof f);
  f.type = 0x7f;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
  assert_int_equal(parley_wire_encoded_size(&f), 0);
  f.type = 0;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_EINVAL);
}

/* A frame over the 16 MiB ceiling is refused without touching the body. */
static void test_encode_over_ceiling(void **state) {
  static const uint8_t tiny = 0;
  struct parley_frame f;
  uint8_t buf[64];
  size_t n;
  (void)state;
  sample(PARLEY_FRAME_MSG, &f);
  f.u.msg.body = &tiny; /* never read: the size check fails first */
  f.u.msg.body_len = PARLEY_MAX_FRAME;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n),
                   PARLEY_ETOOBIG);
  assert_int_equal(parley_wire_encoded_size(&f), 0);
}

/* ---- iterators -------------------------------------------------------- */

static void test_iterators(void **state) {
  struct parley_frame f, d;
  uint8_t buf[BIG];
  size_t n, used, left;
  const uint8_t *cur;
  struct parley_wire_peer p;
  struct parley_wire_topic t;
  (void)state;
  sample(PARLEY_FRAME_PEERS, &f);
  enc(&f, buf, &n);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  cur = d.u.list.list.raw;
  left = d.u.list.list.raw_len;
  assert_ptr_equal(cur, buf + 13);
  assert_int_equal(left, n - 13);
  assert_int_equal(parley_wire_peer_next(&cur, &left, &p), 1);
  assert_str(p.name, "alice");
  assert_int_equal(parley_wire_peer_next(&cur, &left, &p), 1);
  assert_str(p.addr, "[::1]:7002");
  assert_true(p.last_seen_ms == UINT64_MAX);
  assert_int_equal(parley_wire_peer_next(&cur, &left, &p), 0);
  assert_int_equal(parley_wire_peer_next(&cur, &left, &p), 0);
  /* Garbage input: stops, and stays stopped. */
  cur = buf;
  left = 10;
  assert_int_equal(parley_wire_peer_next(&cur, &left, &p), 0);
  assert_int_equal(left, 0);
  assert_int_equal(parley_wire_peer_next(NULL, &left, &p), 0);
  cur = NULL;
  left = 5;
  assert_int_equal(parley_wire_topic_next(&cur, &left, &t), 0);

  sample(PARLEY_FRAME_TOPICS, &f);
  enc(&f, buf, &n);
  assert_int_equal(dec(buf, n, &d, &used), PARLEY_OK);
  cur = d.u.list.list.raw;
  left = d.u.list.list.raw_len;
  int k = 0;
  while (parley_wire_topic_next(&cur, &left, &t))
    k++;
  assert_int_equal(k, 3);
  assert_str(t.topic, "weather/eu");
  assert_int_equal(t.subscribers, UINT32_MAX);
}

/* ---- preamble, handshake and record framing --------------------------- */

static void test_preamble(void **state) {
  uint8_t p[PARLEY_WIRE_PREAMBLE_LEN];
  static const uint8_t want[] = {'P', 'R', 'L', 'Y', 0x01};
  (void)state;
  parley_wire_preamble_write(p);
  assert_memory_equal(p, want, 5);
  assert_int_equal(parley_wire_preamble_check(p, 5), PARLEY_OK);
  assert_int_equal(parley_wire_preamble_check(p, 6), PARLEY_OK);
  for (size_t k = 0; k < 5; k++)
    assert_int_equal(parley_wire_preamble_check(p, k), PARLEY_EAGAIN);
  assert_int_equal(parley_wire_preamble_check(NULL, 0), PARLEY_EAGAIN);
  p[4] = 2;
  assert_int_equal(parley_wire_preamble_check(p, 5), PARLEY_EVERSION);
  p[4] = 0;
  assert_int_equal(parley_wire_preamble_check(p, 5), PARLEY_EVERSION);
  p[4] = 1;
  p[3] = 'X';
  assert_int_equal(parley_wire_preamble_check(p, 5), PARLEY_EPROTO);
  assert_int_equal(parley_wire_preamble_check(p, 4), PARLEY_EPROTO);
  /* Garbage is refused on its first byte. */
  assert_int_equal(parley_wire_preamble_check((const uint8_t *)"G", 1),
                   PARLEY_EPROTO);
  assert_int_equal(
      parley_wire_preamble_check((const uint8_t *)"GET / HTTP/1.1", 14),
      PARLEY_EPROTO);
}

static void test_hs_framing(void **state) {
  uint8_t buf[2 + PARLEY_WIRE_MAX_HS + 3];
  const uint8_t *msg;
  size_t mlen, used;
  (void)state;
  memset(buf, 0x5a, sizeof buf);
  parley_wire_hs_header(buf, 32);
  assert_int_equal(buf[0], 0x00);
  assert_int_equal(buf[1], 0x20);
  for (size_t k = 0; k < 34; k++) {
    used = 1;
    assert_int_equal(parley_wire_hs_decode(buf, k, &msg, &mlen, &used),
                     PARLEY_EAGAIN);
    assert_int_equal(used, 0);
  }
  assert_int_equal(parley_wire_hs_decode(buf, sizeof buf, &msg, &mlen, &used),
                   PARLEY_OK);
  assert_ptr_equal(msg, buf + 2);
  assert_int_equal(mlen, 32);
  assert_int_equal(used, 34);
  parley_wire_hs_header(buf, 1);
  assert_int_equal(parley_wire_hs_decode(buf, 3, &msg, &mlen, &used),
                   PARLEY_OK);
  assert_int_equal(mlen, 1);
  parley_wire_hs_header(buf, PARLEY_WIRE_MAX_HS);
  assert_int_equal(buf[0], 0x04);
  assert_int_equal(buf[1], 0x00);
  assert_int_equal(parley_wire_hs_decode(buf, sizeof buf, &msg, &mlen, &used),
                   PARLEY_OK);
  assert_int_equal(used, 2 + PARLEY_WIRE_MAX_HS);
  parley_wire_hs_header(buf, 0);
  assert_int_equal(parley_wire_hs_decode(buf, sizeof buf, &msg, &mlen, &used),
                   PARLEY_EPROTO);
  assert_int_equal(used, 0);
  assert_null(msg);
  /* Too long: refused on the header alone. */
  parley_wire_hs_header(buf, PARLEY_WIRE_MAX_HS + 1);
  assert_int_equal(parley_wire_hs_decode(buf, 2, &msg, &mlen, &used),
                   PARLEY_EPROTO);
  parley_wire_hs_header(buf, 0xffff);
  assert_int_equal(parley_wire_hs_decode(buf, 2, &msg, &mlen, &used),
                   PARLEY_EPROTO);
}

static void test_record_framing(void **state) {
  uint8_t buf[4 + 100];
  const uint8_t *ct;
  size_t clen, used;
  (void)state;
  memset(buf, 0, sizeof buf);
  parley_wire_record_header(buf, 0x01020304);
  assert_int_equal(buf[0], 1);
  assert_int_equal(buf[3], 4);
  parley_wire_record_header(buf, 20);
  for (size_t k = 0; k < 24; k++) {
    used = 3;
    assert_int_equal(
        parley_wire_record_decode(buf, k, 100, &ct, &clen, &used),
        PARLEY_EAGAIN);
    assert_int_equal(used, 0);
  }
  assert_int_equal(
      parley_wire_record_decode(buf, sizeof buf, 100, &ct, &clen, &used),
      PARLEY_OK);
  assert_ptr_equal(ct, buf + 4);
  assert_int_equal(clen, 20);
  assert_int_equal(used, 24);
  /* Exactly the tag (empty plaintext) is allowed; less is not. */
  parley_wire_record_header(buf, PARLEY_WIRE_TAG);
  assert_int_equal(
      parley_wire_record_decode(buf, 20, 100, &ct, &clen, &used), PARLEY_OK);
  parley_wire_record_header(buf, PARLEY_WIRE_TAG - 1);
  assert_int_equal(
      parley_wire_record_decode(buf, 4, 100, &ct, &clen, &used),
      PARLEY_EPROTO);
  parley_wire_record_header(buf, 0);
  assert_int_equal(
      parley_wire_record_decode(buf, 4, 100, &ct, &clen, &used),
      PARLEY_EPROTO);
  /* Over max_ct: refused on the header alone. */
  parley_wire_record_header(buf, 101);
  assert_int_equal(
      parley_wire_record_decode(buf, 4, 100, &ct, &clen, &used),
      PARLEY_ETOOBIG);
  assert_int_equal(used, 0);
  assert_null(ct);
  parley_wire_record_header(buf, 100);
  assert_int_equal(
      parley_wire_record_decode(buf, 4, 100, &ct, &clen, &used),
      PARLEY_EAGAIN);
  /* The protocol ceiling holds whatever max_ct says. */
  parley_wire_record_header(buf, PARLEY_MAX_RECORD + PARLEY_WIRE_TAG + 1);
  assert_int_equal(
      parley_wire_record_decode(buf, 4, UINT32_MAX, &ct, &clen, &used),
      PARLEY_ETOOBIG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_hello),
      cmocka_unit_test(test_golden_msg),
      cmocka_unit_test(test_golden_msg_brief),
      cmocka_unit_test(test_golden_msg_next),
      cmocka_unit_test(test_golden_subscribers),
      cmocka_unit_test(test_golden_small),
      cmocka_unit_test(test_roundtrip_all),
      cmocka_unit_test(test_empty_fields),
      cmocka_unit_test(test_stream_of_frames),
      cmocka_unit_test(test_partial_every_prefix),
      cmocka_unit_test(test_length_zero),
      cmocka_unit_test(test_oversize),
      cmocka_unit_test(test_trailing_and_truncated),
      cmocka_unit_test(test_unknown_type),
      cmocka_unit_test(test_bad_msg_flags),
      cmocka_unit_test(test_bad_role_and_kind),
      cmocka_unit_test(test_bad_lists),
      cmocka_unit_test(test_list_max),
      cmocka_unit_test(test_encode_from_raw),
      cmocka_unit_test(test_nul_in_string),
      cmocka_unit_test(test_string_limits),
      cmocka_unit_test(test_msg_body_bounds),
      cmocka_unit_test(test_encode_cap_and_type),
      cmocka_unit_test(test_encode_over_ceiling),
      cmocka_unit_test(test_iterators),
      cmocka_unit_test(test_preamble),
      cmocka_unit_test(test_hs_framing),
      cmocka_unit_test(test_record_framing),
  };
  return cmocka_run_group_tests(tests, setup_keys, NULL);
}
