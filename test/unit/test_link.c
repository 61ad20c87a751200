/* test_link.c — secure links over real TCP on 127.0.0.1, one uv loop.
 *
 * Two (sometimes three) nets with their own identities talk through the
 * public API of net/link.h.  A "raw" client — a bare uv_tcp_t driven by the
 * test — plays a broken or hostile peer: garbage bytes, a stalled
 * handshake, or a complete handshake (with the crypto/wire functions) after
 * which it sends frames a conforming net never would. */
#include "net/link.h"
#include "net/link_int.h" /* the memory tests look at a link's buffers */

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/limits.h"
#include "crypto/handshake.h"
#include "crypto/identity.h"
#include "crypto/session.h"

#define WAIT_MS 5000

static uv_loop_t loop;
static uv_timer_t tick; /* wakes the loop while a test waits */
static struct parley_identity id_a, id_b, id_c;

/* ---- logging: count warnings, remember the last one ----------------------- */

static int warns;
static char last_warn[1024];

static void test_emit(void *ctx, int level, const char *file, int line,
                      const char *func, const char *msg) {
  (void)ctx;
  (void)file;
  (void)line;
  (void)func;
  if (level >= PARLEY_LOG_WARN) {
    warns++;
    snprintf(last_warn, sizeof last_warn, "%s", msg);
  }
  if (getenv("PARLEY_TRACE") != NULL)
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static const struct parley_log test_log = {test_emit, NULL, PARLEY_LOG_DEBUG};

/* ---- waiting ---------------------------------------------------------------- */

static void tick_cb(uv_timer_t *t) { (void)t; }

#define WAIT_FOR(expr)                                                        \
  do {                                                                        \
    uint64_t dl_;                                                             \
    uv_update_time(&loop);                                                    \
    dl_ = uv_now(&loop) + WAIT_MS;                                            \
    (void)uv_timer_start(&tick, tick_cb, 5, 5);                               \
    while (!(expr) && uv_now(&loop) < dl_)                                    \
      uv_run(&loop, UV_RUN_ONCE);                                             \
    (void)uv_timer_stop(&tick);                                               \
  } while (0)

static void wait_ms(uint64_t ms) {
  uint64_t end;
  uv_update_time(&loop);
  end = uv_now(&loop) + ms;
  WAIT_FOR(uv_now(&loop) >= end);
}

/* ---- one side: a net and what its callbacks saw --------------------------- */

struct side {
  struct parley_net *net;
  struct parley_listener *ls;
  struct parley_link *link; /* the last link opened or dialled */
  int opens, closes, close_reason;
  int msgs, order_ok, body_ok;
  uint64_t next_seq;
  uint32_t last_body_len;
  int pings, errors;
  uint32_t err_req;
  uint16_t err_code;
  char err_text[300];
  int turn_ends;
  /* the first MSG frames as on_frame saw them */
  struct {
    uint8_t flags;
    char ch[16];
    uint64_t seq, ts;
    int has_pub;
  } got[16];
  int ngot;
  /* actions taken inside on_frame */
  int close_in_frame, free_in_frame, fail_in_frame;
};

static struct side sa, sb, sc;

static uint8_t body_byte(uint64_t seq, size_t i) {
  return (uint8_t)(i * 7u + seq);
}

static void on_open(struct parley_link *l) {
  struct side *s = parley_link_data(l);
  s->opens++;
  s->link = l;
}

static void on_frame(struct parley_link *l, const struct parley_frame *f) {
  struct side *s = parley_link_data(l);
  size_t i;

  switch (f->type) {
  case PARLEY_FRAME_MSG:
    if (f->u.msg.seq != s->next_seq)
      s->order_ok = 0;
    s->next_seq = f->u.msg.seq + 1;
    s->last_body_len = f->u.msg.body_len;
    if (s->ngot < (int)(sizeof s->got / sizeof s->got[0])) {
      s->got[s->ngot].flags = f->u.msg.flags;
      snprintf(s->got[s->ngot].ch, sizeof s->got[0].ch, "%.*s",
               (int)f->u.msg.channel.len, f->u.msg.channel.ptr);
      s->got[s->ngot].seq = f->u.msg.seq;
      s->got[s->ngot].ts = f->u.msg.ts_ms;
      s->got[s->ngot].has_pub = f->u.msg.publisher != NULL;
      s->ngot++;
    }
    for (i = 0; i < f->u.msg.body_len; i++)
      if (f->u.msg.body[i] != body_byte(f->u.msg.seq, i)) {
        s->body_ok = 0;
        break;
      }
    s->msgs++;
    break;
  case PARLEY_FRAME_PING:
    s->pings++;
    break;
  case PARLEY_FRAME_ERROR:
    s->errors++;
    s->err_req = f->u.error.req;
    s->err_code = f->u.error.code;
    snprintf(s->err_text, sizeof s->err_text, "%.*s",
             (int)f->u.error.text.len, f->u.error.text.ptr);
    break;
  default:
    break;
  }
  if (s->close_in_frame)
    parley_link_close(l, PARLEY_ECANCELED);
  if (s->fail_in_frame)
    parley_link_fail(l, 7, PARLEY_EDENIED, "go away");
  if (s->free_in_frame) {
    parley_net_free(s->net);
    s->net = NULL;
  }
}

static void on_close(struct parley_link *l, int reason) {
  struct side *s = parley_link_data(l);
  s->closes++;
  s->close_reason = reason;
  if (s->link == l)
    s->link = NULL;
}

static const struct parley_link_cbs cbs = {on_open, on_frame, on_close};

static void on_turn_end(void *ctx) {
  struct side *s = ctx;
  s->turn_ends++;
}

/* ---- a scripted guard (struct parley_net_guard) -------------------------- */

struct fake_guard {
  int connects, handshakes, peers, strikes; /* calls seen */
  int refuse_connects;   /* refuse this many connects (ELIMIT) */
  int refuse_handshakes; /* refuse this many handshakes (ELIMIT) */
  int ban_pk;            /* on_peer refuses banned_pk */
  uint8_t banned_pk[32];
  int strike_answer;     /* what on_strike returns */
  char last_ip[64];
  int last_strike_had_pk;
  uint8_t last_strike_pk[32];
};

static struct fake_guard fg;

static int fg_connect(void *ctx, const char *ip, uint64_t now_ms) {
  struct fake_guard *g = ctx;
  (void)now_ms;
  g->connects++;
  snprintf(g->last_ip, sizeof g->last_ip, "%s", ip);
  if (g->refuse_connects > 0) {
    g->refuse_connects--;
    return PARLEY_ELIMIT;
  }
  return PARLEY_OK;
}

static int fg_handshake(void *ctx, const char *ip, uint64_t now_ms) {
  struct fake_guard *g = ctx;
  (void)ip;
  (void)now_ms;
  g->handshakes++;
  if (g->refuse_handshakes > 0) {
    g->refuse_handshakes--;
    return PARLEY_ELIMIT;
  }
  return PARLEY_OK;
}

static int fg_peer(void *ctx, const char *ip, const uint8_t *pk,
                   uint64_t now_ms) {
  struct fake_guard *g = ctx;
  (void)ip;
  (void)now_ms;
  g->peers++;
  return g->ban_pk && memcmp(pk, g->banned_pk, 32) == 0 ? PARLEY_EDENIED
                                                         : PARLEY_OK;
}

static int fg_strike(void *ctx, const char *ip, const uint8_t *pk,
                     uint64_t now_ms) {
  struct fake_guard *g = ctx;
  (void)now_ms;
  g->strikes++;
  snprintf(g->last_ip, sizeof g->last_ip, "%s", ip);
  g->last_strike_had_pk = pk != NULL;
  if (pk != NULL)
    memcpy(g->last_strike_pk, pk, 32);
  return g->strike_answer;
}

static const struct parley_net_guard fake_guard_hooks = {
    &fg, fg_connect, fg_handshake, fg_peer, fg_strike};
static const struct parley_net_guard *next_guard;

struct opts {
  uint32_t max_frame;
  size_t max_sendq;
  uint32_t max_links;
  uint32_t hs_ms;
};

static void side_net(struct side *s, const struct parley_identity *id,
                     const char *name, uint8_t role, const struct opts *o) {
  struct parley_net_config cfg;

  memset(&cfg, 0, sizeof cfg);
  cfg.loop = &loop;
  cfg.id = id;
  cfg.log = &test_log;
  cfg.role = role;
  cfg.name = name;
  if (o != NULL) {
    cfg.max_frame = o->max_frame;
    cfg.max_sendq = o->max_sendq;
    cfg.max_links = o->max_links;
    cfg.handshake_timeout_ms = o->hs_ms;
  }
  cfg.on_turn_end = on_turn_end;
  cfg.ctx = s;
  cfg.guard = next_guard; /* set by the guard tests, NULL otherwise */
  assert_int_equal(parley_net_new(&cfg, &s->net), PARLEY_OK);
}

static uint16_t side_listen(struct side *s) {
  char addr[64];
  uint16_t port;

  assert_int_equal(
      parley_net_listen(s->net, "127.0.0.1", 0, &cbs, s, &s->ls), PARLEY_OK);
  port = parley_listener_port(s->ls);
  assert_true(port != 0);
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  parley_net_set_addr(s->net, addr);
  return port;
}

static void side_dial(struct side *c, uint16_t port, const uint8_t *expect) {
  assert_int_equal(parley_net_connect(c->net, "127.0.0.1", port, expect,
                                      &cbs, c, &c->link),
                   PARLEY_OK);
}

static struct parley_frame mk_msg(uint64_t seq, const uint8_t *body,
                                  uint32_t len) {
  struct parley_frame f;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_MSG;
  f.u.msg.publisher = id_a.pk;
  f.u.msg.channel.ptr = "t";
  f.u.msg.channel.len = 1;
  f.u.msg.seq = seq;
  f.u.msg.ts_ms = 1000 + seq;
  f.u.msg.body = body;
  f.u.msg.body_len = len;
  return f;
}

/* Sends MSG seq with its body pattern. */
static int send_msg(struct parley_link *l, uint64_t seq, uint32_t len) {
  static uint8_t body[1024 * 1024];
  struct parley_frame f;
  size_t i;

  assert_true(len <= sizeof body);
  for (i = 0; i < len; i++)
    body[i] = body_byte(seq, i);
  f = mk_msg(seq, body, len);
  return parley_link_send(l, &f);
}

/* Dials b from a and waits until both ends are open. */
static void open_pair(struct side *srv, struct side *cli, uint16_t port) {
  side_dial(cli, port, NULL);
  WAIT_FOR(srv->opens == 1 && cli->opens == 1);
  assert_int_equal(srv->opens, 1);
  assert_int_equal(cli->opens, 1);
  WAIT_FOR(parley_link_sendq(cli->link) == 0 &&
           parley_link_sendq(srv->link) == 0);
}

/* ---- the raw client --------------------------------------------------------- */

struct raw {
  uv_tcp_t tcp;
  uv_connect_t creq;
  int inited, connected, eof, closed;
  int secure; /* run the handshake and decode records */
  uint8_t rx[256 * 1024];
  size_t rxlen, total_rx;
  /* secure mode */
  struct parley_handshake hs;
  struct parley_session sess;
  int pre_ok, has_sess, hs_err;
  uint8_t pt[256 * 1024];
  size_t ptlen;
  int hellos, errors, msgs, nexts;
  uint16_t hello_version;
  uint16_t err_code;
  char err_text[300];
};

static struct raw r1;

struct raw_write {
  uv_write_t req;
  uint8_t data[];
};

static void raw_write_cb(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void raw_write(struct raw *r, const void *p, size_t n) {
  struct raw_write *w = malloc(sizeof *w + n);
  uv_buf_t b;
  assert_non_null(w);
  memcpy(w->data, p, n);
  b = uv_buf_init((char *)w->data, (unsigned)n);
  assert_int_equal(uv_write(&w->req, (uv_stream_t *)&r->tcp, &b, 1,
                            raw_write_cb),
                   0);
}

static void raw_closed(uv_handle_t *h) {
  struct raw *r = h->data;
  r->closed = 1;
}

static void raw_close(struct raw *r) {
  if (r->inited && !uv_is_closing((uv_handle_t *)&r->tcp))
    uv_close((uv_handle_t *)&r->tcp, raw_closed);
}

static void raw_hs_write(struct raw *r, int with_preamble) {
  uint8_t out[PARLEY_WIRE_PREAMBLE_LEN + PARLEY_WIRE_HS_HDR +
              PARLEY_WIRE_MAX_HS];
  size_t n = 0, mlen = 0;

  if (with_preamble) {
    parley_wire_preamble_write(out);
    n = PARLEY_WIRE_PREAMBLE_LEN;
  }
  assert_int_equal(parley_handshake_write(&r->hs, out + n + 2,
                                          PARLEY_WIRE_MAX_HS, &mlen),
                   PARLEY_OK);
  parley_wire_hs_header(out + n, (uint16_t)mlen);
  raw_write(r, out, n + 2 + mlen);
}

static void raw_frames(struct raw *r) {
  struct parley_frame f;
  size_t off = 0, used;
  int rc;

  while (off < r->ptlen) {
    rc = parley_wire_decode(r->pt + off, r->ptlen - off, PARLEY_MAX_FRAME, &f,
                            &used);
    if (rc == PARLEY_EAGAIN)
      break;
    assert_int_equal(rc, PARLEY_OK);
    off += used;
    if (f.type == PARLEY_FRAME_HELLO) {
      r->hellos++;
      r->hello_version = f.u.hello.version;
    } else if (f.type == PARLEY_FRAME_MSG) {
      r->msgs++;
    } else if (f.type == PARLEY_FRAME_MSG_NEXT) {
      r->nexts++;
    } else if (f.type == PARLEY_FRAME_ERROR) {
      r->errors++;
      r->err_code = f.u.error.code;
      snprintf(r->err_text, sizeof r->err_text, "%.*s",
               (int)f.u.error.text.len, f.u.error.text.ptr);
    }
  }
  memmove(r->pt, r->pt + off, r->ptlen - off);
  r->ptlen -= off;
}

static void raw_process(struct raw *r) {
  size_t off = 0, used, mlen;
  const uint8_t *msg, *ct;
  int rc;

  while (r->secure && off < r->rxlen && !r->hs_err) {
    uint8_t *p = r->rx + off;
    size_t left = r->rxlen - off;
    if (!r->pre_ok) {
      if (left < PARLEY_WIRE_PREAMBLE_LEN)
        break;
      assert_int_equal(parley_wire_preamble_check(p, left), PARLEY_OK);
      r->pre_ok = 1;
      off += PARLEY_WIRE_PREAMBLE_LEN;
    } else if (!r->has_sess) {
      rc = parley_wire_hs_decode(p, left, &msg, &mlen, &used);
      if (rc == PARLEY_EAGAIN)
        break;
      assert_int_equal(rc, PARLEY_OK);
      off += used;
      rc = parley_handshake_read(&r->hs, msg, mlen);
      if (rc < 0) {
        r->hs_err = rc;
        break;
      }
      if (parley_handshake_wants_write(&r->hs))
        raw_hs_write(r, 0);
      if (parley_handshake_done(&r->hs)) {
        uint8_t pk[32];
        assert_int_equal(parley_handshake_finish(&r->hs, &r->sess, pk),
                         PARLEY_OK);
        assert_memory_equal(pk, id_a.pk, 32); /* the server is always sa */
        r->has_sess = 1;
      }
    } else {
      rc = parley_wire_record_decode(p, left,
                                     PARLEY_MAX_RECORD + PARLEY_WIRE_TAG, &ct,
                                     &mlen, &used);
      if (rc == PARLEY_EAGAIN)
        break;
      assert_int_equal(rc, PARLEY_OK);
      assert_true(r->ptlen + mlen - PARLEY_WIRE_TAG <= sizeof r->pt);
      assert_int_equal(parley_session_open(&r->sess, p, PARLEY_WIRE_RECORD_HDR,
                                           ct, mlen, r->pt + r->ptlen),
                       PARLEY_OK);
      r->ptlen += mlen - PARLEY_WIRE_TAG;
      off += used;
      raw_frames(r);
    }
  }
  if (r->secure) {
    memmove(r->rx, r->rx + off, r->rxlen - off);
    r->rxlen -= off;
  }
}

static void raw_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  struct raw *r = h->data;
  (void)sz;
  b->base = (char *)r->rx + r->rxlen;
  b->len = sizeof r->rx - r->rxlen;
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  struct raw *r = s->data;
  (void)b;
  if (nread > 0) {
    r->rxlen += (size_t)nread;
    r->total_rx += (size_t)nread;
    raw_process(r);
  } else if (nread < 0) {
    r->eof = 1; /* EOF or reset: either way the server hung up */
    raw_close(r);
  }
}

static void raw_connected(uv_connect_t *req, int status) {
  struct raw *r = req->data;
  assert_int_equal(status, 0);
  r->connected = 1;
  assert_int_equal(uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read),
                   0);
  if (r->secure)
    raw_hs_write(r, 1); /* preamble + Noise message 1 */
}

static void raw_connect(struct raw *r, uint16_t port, int secure) {
  struct sockaddr_in sin;

  memset(r, 0, sizeof *r);
  r->secure = secure;
  if (secure)
    assert_int_equal(parley_handshake_init(&r->hs, 1, &id_c, NULL),
                     PARLEY_OK);
  assert_int_equal(uv_tcp_init(&loop, &r->tcp), 0);
  r->inited = 1;
  r->tcp.data = r;
  r->creq.data = r;
  assert_int_equal(uv_ip4_addr("127.0.0.1", port, &sin), 0);
  assert_int_equal(uv_tcp_connect(&r->creq, &r->tcp,
                                  (const struct sockaddr *)&sin,
                                  raw_connected),
                   0);
  WAIT_FOR(r->connected);
  assert_true(r->connected);
}

/* Seals pt into one record (flipping a ciphertext bit if corrupt). */
static void raw_send_record(struct raw *r, const uint8_t *pt, size_t n,
                            int corrupt) {
  uint8_t *rec = malloc(PARLEY_WIRE_RECORD_HDR + n + PARLEY_WIRE_TAG);
  assert_non_null(rec);
  parley_wire_record_header(rec, (uint32_t)(n + PARLEY_WIRE_TAG));
  assert_int_equal(parley_session_seal(&r->sess, rec, PARLEY_WIRE_RECORD_HDR,
                                       pt, n, rec + PARLEY_WIRE_RECORD_HDR),
                   PARLEY_OK);
  if (corrupt)
    rec[PARLEY_WIRE_RECORD_HDR] ^= 0x01;
  raw_write(r, rec, PARLEY_WIRE_RECORD_HDR + n + PARLEY_WIRE_TAG);
  free(rec);
}

static size_t put_frame(uint8_t *buf, size_t cap,
                        const struct parley_frame *f) {
  size_t w = 0;
  assert_int_equal(parley_wire_encode(f, buf, cap, &w), PARLEY_OK);
  return w;
}

static size_t put_hello(uint8_t *buf, size_t cap, uint16_t version) {
  struct parley_frame f;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_HELLO;
  f.u.hello.version = version;
  f.u.hello.caps = PARLEY_CAP_ACK;
  f.u.hello.max_frame = PARLEY_DEFAULT_MAX_FRAME;
  f.u.hello.role = PARLEY_ROLE_PEER;
  f.u.hello.name.ptr = "raw";
  f.u.hello.name.len = 3;
  return put_frame(buf, cap, &f);
}

static size_t put_ping(uint8_t *buf, size_t cap, uint64_t nonce) {
  struct parley_frame f;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_PING;
  f.u.ping.nonce = nonce;
  return put_frame(buf, cap, &f);
}

/* A raw client that completed the handshake and got the server's HELLO. */
static void raw_secure(struct raw *r, uint16_t port) {
  raw_connect(r, port, 1);
  WAIT_FOR(r->hellos == 1 || r->eof);
  assert_int_equal(r->hs_err, 0);
  assert_int_equal(r->hellos, 1);
  assert_int_equal(r->hello_version, PARLEY_WIRE_VERSION);
}

/* ---- fixture ---------------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  if (parley_crypto_init() < 0 || parley_identity_generate(&id_a) < 0 ||
      parley_identity_generate(&id_b) < 0 ||
      parley_identity_generate(&id_c) < 0)
    return -1;
  return 0;
}

static int setup(void **state) {
  (void)state;
  memset(&sa, 0, sizeof sa);
  memset(&sb, 0, sizeof sb);
  memset(&sc, 0, sizeof sc);
  sa.order_ok = sb.order_ok = sc.order_ok = 1;
  sa.body_ok = sb.body_ok = sc.body_ok = 1;
  r1.inited = 0;
  memset(&fg, 0, sizeof fg);
  next_guard = NULL;
  warns = 0;
  last_warn[0] = '\0';
  if (uv_loop_init(&loop) != 0)
    return -1;
  return uv_timer_init(&loop, &tick);
}

static int teardown(void **state) {
  (void)state;
  parley_net_free(sa.net);
  parley_net_free(sb.net);
  parley_net_free(sc.net);
  sa.net = sb.net = sc.net = NULL;
  raw_close(&r1);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* Every handle of the nets went through its close callback. */
  assert_int_equal(uv_loop_close(&loop), 0);
  return 0;
}

/* ---- tests: conforming peers ---------------------------------------------- */

static void test_open_and_exchange(void **state) {
  const struct parley_net_stats *as, *bs;
  uint64_t rec0, fr0;
  uint16_t port;
  char want[64];
  int i;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_INDEX, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  port = side_listen(&sa);
  parley_net_set_addr(sb.net, "127.0.0.1:9");
  side_dial(&sb, port, id_a.pk);
  /* Not open yet: nothing may be sent, and no callback ran synchronously. */
  assert_int_equal(send_msg(sb.link, 0, 1), PARLEY_ECLOSED);
  assert_int_equal(parley_link_is_open(sb.link), 0);
  assert_int_equal(sb.closes, 0);
  WAIT_FOR(sa.opens == 1 && sb.opens == 1);
  assert_int_equal(sa.opens, 1);
  assert_int_equal(sb.opens, 1);

  /* The dialler sees the server's identity and HELLO. */
  assert_memory_equal(parley_link_remote_pk(sb.link), id_a.pk, 32);
  assert_int_equal(parley_link_remote_role(sb.link), PARLEY_ROLE_INDEX);
  assert_string_equal(parley_link_remote_name(sb.link), "srv");
  snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
  assert_string_equal(parley_link_remote_addr(sb.link), want);
  assert_string_equal(parley_link_peername(sb.link), want);
  assert_int_equal(parley_link_remote_caps(sb.link),
                   PARLEY_CAP_ACK | PARLEY_CAP_WATCH | PARLEY_CAP_BATCH |
                       PARLEY_CAP_BRIEF | PARLEY_CAP_NEXT);
  assert_int_equal(parley_link_accepted(sb.link), 0);
  assert_int_equal(parley_link_is_open(sb.link), 1);
  /* And the server the dialler's. */
  assert_memory_equal(parley_link_remote_pk(sa.link), id_b.pk, 32);
  assert_int_equal(parley_link_remote_role(sa.link), PARLEY_ROLE_PEER);
  assert_string_equal(parley_link_remote_name(sa.link), "cli");
  assert_string_equal(parley_link_remote_addr(sa.link), "127.0.0.1:9");
  assert_int_equal(strncmp(parley_link_peername(sa.link), "127.0.0.1:", 10),
                   0);
  assert_int_equal(parley_link_accepted(sa.link), 1);
  assert_ptr_equal(parley_link_data(sa.link), &sa);

  as = parley_net_stats(sa.net);
  bs = parley_net_stats(sb.net);
  assert_int_equal(as->links_accepted, 1);
  assert_int_equal(as->handshakes_ok, 1);
  assert_int_equal(as->links_open, 1);
  assert_int_equal(bs->links_dialled, 1);
  assert_int_equal(bs->handshakes_ok, 1);
  assert_int_equal(bs->links_open, 1);
  assert_int_equal(as->handshakes_failed + bs->handshakes_failed, 0);

  /* 100 frames queued in one turn: in order, in one record. */
  WAIT_FOR(parley_link_sendq(sb.link) == 0);
  rec0 = bs->records_out;
  fr0 = bs->frames_out;
  for (i = 0; i < 100; i++)
    assert_int_equal(send_msg(sb.link, (uint64_t)i, 50), PARLEY_OK);
  assert_true(parley_link_sendq(sb.link) > 0);
  WAIT_FOR(sa.msgs == 100);
  assert_int_equal(sa.msgs, 100);
  assert_int_equal(sa.order_ok, 1);
  assert_int_equal(sa.body_ok, 1);
  assert_int_equal(bs->frames_out - fr0, 100);
  assert_int_equal(bs->records_out - rec0, 1);
  assert_true(bs->records_out < bs->frames_out);
  assert_int_equal(as->frames_in, bs->frames_out);
  assert_int_equal(as->records_in, bs->records_out);
  assert_true(as->bytes_in > 100 * 50);

  /* And back. */
  for (i = 0; i < 3; i++)
    assert_int_equal(send_msg(sa.link, (uint64_t)i, 10), PARLEY_OK);
  WAIT_FOR(sb.msgs == 3);
  assert_int_equal(sb.msgs, 3);
  assert_int_equal(sb.order_ok, 1);
  assert_int_equal(sb.body_ok, 1);
  assert_true(sa.turn_ends > 0);
  assert_true(sb.turn_ends > 0);
  WAIT_FOR(as->bytes_out == bs->bytes_in && bs->bytes_out == as->bytes_in);
  assert_int_equal(as->bytes_out, bs->bytes_in);
  assert_int_equal(bs->bytes_out, as->bytes_in);
  assert_int_equal(as->protocol_errors + bs->protocol_errors, 0);
}

/* A BRIEF MSG on channel ch with body pattern seq; flags beyond BRIEF. */
static int send_brief(struct parley_link *l, const char *ch, uint64_t seq,
                      uint64_t ts, uint8_t flags, uint32_t len) {
  static uint8_t body[256];
  struct parley_frame f;

  assert_true(len <= sizeof body);
  for (uint32_t i = 0; i < len; i++)
    body[i] = body_byte(seq, i);
  f = mk_msg(seq, body, len);
  f.u.msg.flags = (uint8_t)(PARLEY_MSG_BRIEF | flags);
  f.u.msg.channel.ptr = ch;
  f.u.msg.channel.len = strlen(ch);
  f.u.msg.ts_ms = ts;
  return parley_link_send(l, &f);
}

/* Bytes b's net sends for 50 BRIEF MSGs of 40 bytes, seq first.. on "news",
 * ts stepping by ts_step. */
static uint64_t bytes_for_run(uint64_t first, uint64_t ts_step) {
  const struct parley_net_stats *bs = parley_net_stats(sb.net);
  uint64_t before;
  int want = sa.msgs + 50;

  WAIT_FOR(parley_link_sendq(sb.link) == 0);
  before = bs->bytes_out;
  for (uint64_t i = 0; i < 50; i++)
    assert_int_equal(send_brief(sb.link, "news", first + i,
                                5000 + i * ts_step, 0, 40),
                     PARLEY_OK);
  WAIT_FOR(sa.msgs == want);
  assert_int_equal(sa.msgs, want);
  return bs->bytes_out - before;
}

/* MSG_NEXT: a BRIEF MSG that follows the last one sent on the link (same
 * channel, next seq, at most 65535 ms later) goes without channel, seq,
 * ts and body length, and comes out of the other end as the same MSG. */
static void test_msg_next(void **state) {
  const struct parley_net_stats *as;
  uint64_t close_run, far_run;
  int i;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  as = parley_net_stats(sa.net);

  /* Each kind of break in the run, then followers. */
  assert_int_equal(send_brief(sb.link, "news", 0, 1000, 0, 8), PARLEY_OK);
  assert_int_equal(send_brief(sb.link, "news", 1, 1000, PARLEY_MSG_BINARY, 8),
                   PARLEY_OK); /* next, same ms */
  assert_int_equal(send_brief(sb.link, "news", 2, 66535, PARLEY_MSG_ACK_REQ,
                              8),
                   PARLEY_OK); /* next, 65535 ms later: the largest delta */
  assert_int_equal(send_brief(sb.link, "news", 3, 132071, 0, 8),
                   PARLEY_OK); /* 65536 ms later: whole */
  assert_int_equal(send_brief(sb.link, "news", 4, 132070, 0, 8),
                   PARLEY_OK); /* earlier: whole */
  assert_int_equal(send_brief(sb.link, "other", 5, 132070, 0, 8),
                   PARLEY_OK); /* another channel: whole */
  assert_int_equal(send_brief(sb.link, "other", 6, 132071, 0, 8),
                   PARLEY_OK); /* next */
  {
    /* A MSG with publisher and chain in the run: whole, and the BRIEF
     * one after it follows it. */
    static const uint8_t body[8] = {0};
    struct parley_frame f = mk_msg(7, body, 0);
    f.u.msg.channel.ptr = "other";
    f.u.msg.channel.len = 5;
    f.u.msg.ts_ms = 132072;
    assert_int_equal(parley_link_send(sb.link, &f), PARLEY_OK);
  }
  assert_int_equal(send_brief(sb.link, "other", 8, 132073, 0, 8), PARLEY_OK);
  WAIT_FOR(sa.msgs == 9);
  assert_int_equal(sa.msgs, 9);
  assert_int_equal(sa.order_ok, 1);
  assert_int_equal(sa.body_ok, 1);
  assert_int_equal(sa.ngot, 9);
  {
    static const struct {
      const char *ch;
      uint64_t ts;
      uint8_t flags;
      int has_pub;
    } want[9] = {
        {"news", 1000, PARLEY_MSG_BRIEF, 0},
        {"news", 1000, PARLEY_MSG_BRIEF | PARLEY_MSG_BINARY, 0},
        {"news", 66535, PARLEY_MSG_BRIEF | PARLEY_MSG_ACK_REQ, 0},
        {"news", 132071, PARLEY_MSG_BRIEF, 0},
        {"news", 132070, PARLEY_MSG_BRIEF, 0},
        {"other", 132070, PARLEY_MSG_BRIEF, 0},
        {"other", 132071, PARLEY_MSG_BRIEF, 0},
        {"other", 132072, 0, 1},
        {"other", 132073, PARLEY_MSG_BRIEF, 0},
    };
    for (i = 0; i < 9; i++) {
      assert_string_equal(sa.got[i].ch, want[i].ch);
      assert_int_equal(sa.got[i].seq, (uint64_t)i);
      assert_int_equal(sa.got[i].ts, want[i].ts);
      assert_int_equal(sa.got[i].flags, want[i].flags);
      assert_int_equal(sa.got[i].has_pub, want[i].has_pub);
    }
  }

  /* The saving: a run 1 ms apart against one whose steps are too far
   * apart to follow (both of 50 messages of 40 bytes in one record).  A
   * whole BRIEF MSG on "news" (channel 1 + 4, seq 8, ts 8, body length 4)
   * is 23 bytes more than a MSG_NEXT (ts delta 2). */
  sa.next_seq = 100;
  close_run = bytes_for_run(100, 1);
  sa.next_seq = 200;
  far_run = bytes_for_run(200, 70000);
  assert_int_equal(far_run - close_run, 49 * 23);
  assert_int_equal(sa.order_ok, 1);
  assert_int_equal(sa.body_ok, 1);
  assert_int_equal(as->protocol_errors, 0);
}

/* A remote whose HELLO lacks PARLEY_CAP_NEXT gets whole MSGs only. */
static void test_msg_next_needs_cap(void **state) {
  uint8_t buf[512];
  size_t n;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  raw_secure(&r1, side_listen(&sa));
  n = put_hello(buf, sizeof buf, PARLEY_WIRE_VERSION);
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(sa.opens == 1);
  assert_non_null(sa.link);
  for (uint64_t i = 0; i < 10; i++)
    assert_int_equal(send_brief(sa.link, "news", i, 1000 + i, 0, 8),
                     PARLEY_OK);
  WAIT_FOR(r1.msgs == 10);
  assert_int_equal(r1.msgs, 10);
  assert_int_equal(r1.nexts, 0);
}

/* Sends HELLO and then the given frames in one record; waits for the
 * link to fail and checks the ERROR the raw client got. */
static void next_refused(const struct parley_frame *fr, int nfr,
                         const char *text) {
  uint8_t buf[1024];
  size_t n;

  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  raw_secure(&r1, side_listen(&sa));
  n = put_hello(buf, sizeof buf, PARLEY_WIRE_VERSION);
  for (int i = 0; i < nfr; i++)
    n += put_frame(buf + n, sizeof buf - n, &fr[i]);
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(r1.errors == 1 && r1.eof);
  assert_int_equal(r1.errors, 1);
  assert_int_equal(r1.err_code, (uint16_t)-PARLEY_EPROTO);
  assert_string_equal(r1.err_text, text);
  assert_int_equal(parley_net_stats(sa.net)->protocol_errors, 1);
  assert_true(r1.eof);
}

static void test_msg_next_without_msg(void **state) {
  static const uint8_t body[4] = {1, 2, 3, 4};
  struct parley_frame nx;

  (void)state;
  memset(&nx, 0, sizeof nx);
  nx.type = PARLEY_FRAME_MSG_NEXT;
  nx.u.next.ts_delta = 1;
  nx.u.next.body = body;
  nx.u.next.body_len = sizeof body;
  next_refused(&nx, 1, "MSG_NEXT without a MSG before it");
  assert_int_equal(sa.msgs, 0);
}

static void test_msg_next_past_the_end(void **state) {
  static const uint8_t body[4] = {1, 2, 3, 4};
  struct parley_frame fr[2];

  (void)state;
  fr[0] = mk_msg(UINT64_MAX, body, sizeof body);
  fr[0].u.msg.flags = PARLEY_MSG_BRIEF;
  memset(&fr[1], 0, sizeof fr[1]);
  fr[1].type = PARLEY_FRAME_MSG_NEXT;
  fr[1].u.next.body = body;
  fr[1].u.next.body_len = sizeof body;
  next_refused(fr, 2, "MSG_NEXT past the largest seq or ts");
  assert_int_equal(sa.msgs, 1); /* the MSG itself was delivered */
}

static void test_big_body(void **state) {
  const struct parley_net_stats *bs;
  const uint32_t len = 900u * 1024u;
  struct parley_frame f;
  uint64_t rec0;
  size_t size;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  bs = parley_net_stats(sb.net);
  rec0 = bs->records_out;
  assert_int_equal(send_msg(sb.link, 0, len), PARLEY_OK);
  WAIT_FOR(sa.msgs == 1);
  assert_int_equal(sa.msgs, 1);
  assert_int_equal(sa.last_body_len, len);
  assert_int_equal(sa.body_ok, 1);
  /* Cut into 64 KiB records, reassembled across them. */
  f = mk_msg(0, (const uint8_t *)"", len);
  size = parley_wire_encoded_size(&f);
  assert_int_equal(bs->records_out - rec0, (size + 65535) / 65536);
  assert_true(bs->records_out - rec0 > 1);
  /* The link keeps working afterwards. */
  assert_int_equal(send_msg(sb.link, 1, 10), PARLEY_OK);
  WAIT_FOR(sa.msgs == 2);
  assert_int_equal(sa.msgs, 2);
  assert_int_equal(sa.order_ok, 1);
}

/* A burst far over one turn's input budget: the receiver stops reading
 * for the rest of a turn (more than once) and resumes on the next, and
 * every frame arrives, in order. */
static void test_read_budget(void **state) {
  const uint32_t len = 900u * 1024u;
  const struct parley_net_stats *as;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  as = parley_net_stats(sa.net);
  for (uint32_t i = 0; i < 8; i++)
    assert_int_equal(send_msg(sb.link, i, len), PARLEY_OK);
  WAIT_FOR(sa.msgs == 8);
  assert_int_equal(sa.msgs, 8);
  assert_int_equal(sa.order_ok, 1);
  assert_int_equal(sa.body_ok, 1);
  assert_true(as->read_pauses >= 2);
  /* And the link reads normally afterwards. */
  assert_int_equal(send_msg(sb.link, 8, 10), PARLEY_OK);
  WAIT_FOR(sa.msgs == 9);
  assert_int_equal(sa.msgs, 9);
  assert_int_equal(sa.order_ok, 1);
}

/* The channel binding: the same 64 bytes at both ends of one link, not all
 * zeros, and different on a second link between the same two keys. */
static void test_channel_binding(void **state) {
  static const uint8_t zero[PARLEY_LINK_BINDING_LEN];
  uint8_t first[PARLEY_LINK_BINDING_LEN];
  uint16_t port;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_INDEX, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_INDEX, NULL);
  port = side_listen(&sa);
  side_dial(&sb, port, id_a.pk);
  /* Before the handshake the binding is all zeros. */
  assert_memory_equal(parley_link_binding(sb.link), zero, sizeof zero);
  WAIT_FOR(sa.opens == 1 && sb.opens == 1);
  assert_int_equal(sa.opens, 1);
  assert_int_equal(sb.opens, 1);
  assert_memory_equal(parley_link_binding(sa.link),
                      parley_link_binding(sb.link), PARLEY_LINK_BINDING_LEN);
  assert_memory_not_equal(parley_link_binding(sa.link), zero, sizeof zero);
  memcpy(first, parley_link_binding(sa.link), sizeof first);

  /* A second link between the same identities gets a fresh binding. */
  sa.opens = sb.opens = 0;
  open_pair(&sa, &sb, port);
  assert_memory_equal(parley_link_binding(sa.link),
                      parley_link_binding(sb.link), PARLEY_LINK_BINDING_LEN);
  assert_memory_not_equal(parley_link_binding(sa.link), first, sizeof first);
}

static void test_expected_pk_mismatch(void **state) {
  uint16_t port;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  port = side_listen(&sa);
  side_dial(&sb, port, id_c.pk); /* we expect c, a answers */
  WAIT_FOR(sb.closes == 1 && parley_net_stats(sa.net)->handshakes_failed == 1);
  assert_int_equal(sb.closes, 1);
  assert_int_equal(sb.close_reason, PARLEY_EAUTH);
  assert_int_equal(sb.opens, 0);
  assert_int_equal(sa.opens, 0);
  assert_int_equal(sa.closes, 0); /* accepted, never opened: silent */
  assert_int_equal(parley_net_stats(sb.net)->handshakes_failed, 1);
  assert_int_equal(parley_net_stats(sa.net)->handshakes_failed, 1);
  assert_int_equal(parley_net_stats(sa.net)->handshakes_ok, 0);
  assert_true(warns > 0);
}

static void test_connect_refused(void **state) {
  uv_tcp_t probe;
  struct sockaddr_in sin;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uint16_t port;

  (void)state;
  /* A port that was bound and released: nobody listens there. */
  assert_int_equal(uv_tcp_init(&loop, &probe), 0);
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
  assert_int_equal(uv_tcp_bind(&probe, (const struct sockaddr *)&sin, 0), 0);
  assert_int_equal(uv_tcp_getsockname(&probe, (struct sockaddr *)&ss, &len),
                   0);
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_close((uv_handle_t *)&probe, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);

  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  assert_int_equal(parley_net_connect(sb.net, "localhost", port, NULL, &cbs,
                                      &sb, &sb.link),
                   PARLEY_OK);
  assert_int_equal(sb.closes, 0); /* asynchronous */
  WAIT_FOR(sb.closes == 1);
  assert_int_equal(sb.closes, 1);
  assert_int_equal(sb.close_reason, PARLEY_ECONNECT);
  assert_int_equal(sb.opens, 0);
  assert_int_equal(parley_net_stats(sb.net)->links_dialled, 1);
  assert_int_equal(parley_net_stats(sb.net)->handshakes_failed, 0);

  /* Synchronous failures: an error, no callback. */
  assert_int_equal(parley_net_connect(sb.net, "not-an-ip", port, NULL, &cbs,
                                      &sb, &sb.link),
                   PARLEY_EINVAL);
  wait_ms(20);
  assert_int_equal(sb.closes, 1);
}

/* ---- tests: broken or hostile peers --------------------------------------- */

static void test_garbage_then_normal(void **state) {
  const struct parley_net_stats *as;
  uint8_t junk[64];
  uint16_t port;
  size_t i;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  port = side_listen(&sa);
  as = parley_net_stats(sa.net);

  raw_connect(&r1, port, 0);
  junk[0] = 'X'; /* never "PRLY" */
  for (i = 1; i < sizeof junk; i++)
    junk[i] = (uint8_t)rand();
  raw_write(&r1, junk, sizeof junk);
  WAIT_FOR(r1.eof);
  assert_int_equal(r1.eof, 1);
  assert_int_equal(as->protocol_errors, 1);
  assert_int_equal(as->handshakes_failed, 1);
  assert_int_equal(as->links_accepted, 1);
  assert_int_equal(sa.closes, 0);
  /* Logged at WARN with the peer's address. */
  assert_true(warns >= 1);
  assert_non_null(strstr(last_warn, "127.0.0.1:"));
  assert_non_null(strstr(last_warn, "preamble"));

  /* Nothing else was disturbed. */
  open_pair(&sa, &sb, port);
  assert_int_equal(send_msg(sb.link, 0, 5), PARLEY_OK);
  WAIT_FOR(sa.msgs == 1);
  assert_int_equal(sa.msgs, 1);
  assert_int_equal(as->links_open, 1);
}

static void test_handshake_timeout(void **state) {
  const struct opts o = {0, 0, 0, 300};
  const struct parley_net_stats *as;
  uint64_t t0, dt;
  uint16_t port;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, &o);
  port = side_listen(&sa);
  as = parley_net_stats(sa.net);
  raw_connect(&r1, port, 0);
  raw_write(&r1, "PRLY\x01", 5); /* and then nothing */
  uv_update_time(&loop);
  t0 = uv_now(&loop);
  WAIT_FOR(r1.eof);
  assert_int_equal(r1.eof, 1);
  dt = uv_now(&loop) - t0;
  assert_true(dt >= 250);
  assert_true(dt < 2000);
  /* The server sent exactly its preamble, as a responder must. */
  assert_int_equal(r1.total_rx, 5);
  assert_memory_equal(r1.rx, "PRLY\x01", 5);
  assert_int_equal(as->handshakes_failed, 1);
  assert_int_equal(as->protocol_errors, 0);
  assert_int_equal(sa.closes, 0);
}

static void test_max_frame(void **state) {
  const struct opts small = {4096, 0, 0, 0};
  const struct parley_net_stats *as;
  uint8_t buf[8192];
  size_t n;
  struct parley_frame f;
  static uint8_t body[5000];

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, &small);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  as = parley_net_stats(sa.net);

  /* The sender knows the receiver's max_frame from HELLO and refuses. */
  assert_int_equal(send_msg(sb.link, 0, 5000), PARLEY_ETOOBIG);
  assert_int_equal(parley_link_sendq(sb.link), 0);
  assert_int_equal(send_msg(sb.link, 0, 3000), PARLEY_OK);
  WAIT_FOR(sa.msgs == 1);
  assert_int_equal(sa.msgs, 1);
  assert_int_equal(sa.last_body_len, 3000);

  /* A sender that ignores it: ERROR(ETOOBIG), then the link is closed. */
  raw_secure(&r1, parley_listener_port(sa.ls));
  n = put_hello(buf, sizeof buf, PARLEY_WIRE_VERSION);
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(sa.opens == 2);
  assert_int_equal(sa.opens, 2);
  f = mk_msg(0, body, sizeof body);
  n = put_frame(buf, sizeof buf, &f);
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(r1.eof && sa.closes == 1);
  assert_int_equal(r1.errors, 1);
  assert_int_equal(r1.err_code, (uint16_t)-PARLEY_ETOOBIG);
  assert_int_equal(sa.closes, 1);
  assert_int_equal(sa.close_reason, PARLEY_ETOOBIG);
  assert_int_equal(as->protocol_errors, 1);
  /* The other link is untouched. */
  assert_non_null(sb.link);
  assert_int_equal(parley_link_is_open(sb.link), 1);
}

static void test_frame_before_hello(void **state) {
  const struct parley_net_stats *as;
  uint8_t buf[256];
  size_t n;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  raw_secure(&r1, side_listen(&sa));
  as = parley_net_stats(sa.net);
  n = put_ping(buf, sizeof buf, 1);
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(r1.eof);
  assert_int_equal(r1.eof, 1);
  assert_int_equal(r1.errors, 1);
  assert_int_equal(r1.err_code, (uint16_t)-PARLEY_EPROTO);
  assert_int_equal(as->protocol_errors, 1);
  assert_int_equal(as->handshakes_failed, 1);
  assert_int_equal(sa.opens, 0);
  assert_int_equal(sa.closes, 0);
}

static void test_unknown_type(void **state) {
  const struct parley_net_stats *as;
  const uint8_t unknown[] = {0, 0, 0, 3, 0x7f, 0xaa, 0xbb};
  uint8_t buf[512];
  size_t n;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  raw_secure(&r1, side_listen(&sa));
  as = parley_net_stats(sa.net);
  /* HELLO, an unknown frame and a PING in one record. */
  n = put_hello(buf, sizeof buf, PARLEY_WIRE_VERSION);
  memcpy(buf + n, unknown, sizeof unknown);
  n += sizeof unknown;
  n += put_ping(buf + n, sizeof buf - n, 42);
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(sa.pings == 1 && r1.errors == 1);
  assert_int_equal(sa.opens, 1);
  assert_int_equal(sa.pings, 1);
  assert_int_equal(r1.errors, 1);
  assert_int_equal(r1.err_code, (uint16_t)-PARLEY_EUNKNOWNTYPE);
  assert_string_equal(r1.err_text, "unknown frame type 0x7f");
  assert_int_equal(as->frames_in, 3);
  assert_int_equal(as->protocol_errors, 0);
  /* Skipped, not fatal. */
  assert_non_null(sa.link);
  assert_int_equal(parley_link_is_open(sa.link), 1);
  assert_string_equal(parley_link_remote_name(sa.link), "raw");
  assert_memory_equal(parley_link_remote_pk(sa.link), id_c.pk, 32);
  assert_int_equal(r1.eof, 0);
}

static void test_version_mismatch(void **state) {
  const struct parley_net_stats *as;
  uint8_t buf[256];
  size_t n;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  raw_secure(&r1, side_listen(&sa));
  as = parley_net_stats(sa.net);
  n = put_hello(buf, sizeof buf, PARLEY_WIRE_VERSION + 1);
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(r1.eof);
  assert_int_equal(r1.eof, 1);
  assert_int_equal(r1.errors, 1);
  assert_int_equal(r1.err_code, (uint16_t)-PARLEY_EVERSION);
  assert_string_equal(r1.err_text, "unsupported protocol version 2");
  assert_int_equal(sa.opens, 0);
  assert_int_equal(as->handshakes_failed, 1);
}

static void test_bad_record(void **state) {
  const struct parley_net_stats *as;
  uint8_t buf[256];
  size_t n;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  raw_secure(&r1, side_listen(&sa));
  as = parley_net_stats(sa.net);
  n = put_hello(buf, sizeof buf, PARLEY_WIRE_VERSION);
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(sa.opens == 1);
  n = put_ping(buf, sizeof buf, 9);
  raw_send_record(&r1, buf, n, 1);
  WAIT_FOR(r1.eof && sa.closes == 1);
  assert_int_equal(sa.pings, 0);
  assert_int_equal(sa.closes, 1);
  assert_int_equal(sa.close_reason, PARLEY_ECRYPTO);
  assert_int_equal(r1.err_code, (uint16_t)-PARLEY_ECRYPTO);
  assert_int_equal(as->protocol_errors, 1);
  assert_int_equal(as->links_open, 0);
}

/* ---- tests: limits ---------------------------------------------------------- */

static void test_max_links(void **state) {
  const struct opts one = {0, 0, 1, 0};
  const struct parley_net_stats *as;
  uint16_t port;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, &one);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  side_net(&sc, &id_c, "extra", PARLEY_ROLE_PEER, NULL);
  port = side_listen(&sa);
  as = parley_net_stats(sa.net);
  open_pair(&sa, &sb, port);
  side_dial(&sc, port, NULL);
  WAIT_FOR(sc.closes == 1);
  assert_int_equal(sc.closes, 1);
  assert_int_equal(sc.opens, 0);
  assert_int_equal(sc.close_reason, PARLEY_ECLOSED);
  assert_int_equal(as->links_refused, 1);
  assert_int_equal(as->links_accepted, 1);
  assert_int_equal(as->links_open, 1);
  assert_non_null(strstr(last_warn, "max_links"));
  assert_int_equal(parley_link_is_open(sb.link), 1);
}

static void test_backpressure(void **state) {
  const struct opts tiny = {0, 1000, 0, 0};
  struct parley_frame f;
  size_t size, fit, i;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, &tiny);
  open_pair(&sa, &sb, side_listen(&sa));
  f = mk_msg(0, (const uint8_t *)"", 100);
  size = parley_wire_encoded_size(&f);
  fit = 1000 / size;
  assert_true(fit >= 2);
  for (i = 0; i < fit; i++)
    assert_int_equal(send_msg(sb.link, i, 100), PARLEY_OK);
  assert_int_equal(parley_link_sendq(sb.link), fit * size);
  assert_int_equal(send_msg(sb.link, fit, 100), PARLEY_ELIMIT);
  assert_int_equal(parley_link_sendq(sb.link), fit * size); /* not queued */
  /* Once it drains, sending works again. */
  WAIT_FOR(parley_link_sendq(sb.link) == 0 && sa.msgs == (int)fit);
  assert_int_equal(sa.msgs, (int)fit);
  assert_int_equal(send_msg(sb.link, fit, 100), PARLEY_OK);
  WAIT_FOR(sa.msgs == (int)fit + 1);
  assert_int_equal(sa.order_ok, 1);
  assert_int_equal(sa.msgs, (int)fit + 1);
}

/* ---- tests: closing ----------------------------------------------------------- */

static void test_close_in_on_frame(void **state) {
  int i;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  sa.close_in_frame = 1;
  for (i = 0; i < 10; i++)
    assert_int_equal(send_msg(sb.link, (uint64_t)i, 20), PARLEY_OK);
  WAIT_FOR(sa.closes == 1 && sb.closes == 1);
  assert_int_equal(sa.msgs, 1); /* nothing dispatched after the close */
  assert_int_equal(sa.closes, 1);
  assert_int_equal(sa.close_reason, PARLEY_ECANCELED);
  assert_int_equal(sb.closes, 1);
  assert_int_equal(sb.close_reason, PARLEY_ECLOSED);
  assert_int_equal(parley_net_stats(sa.net)->links_open, 0);
  assert_int_equal(parley_net_stats(sb.net)->links_open, 0);
}

static void test_free_in_on_frame(void **state) {
  int i;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  sa.free_in_frame = 1;
  for (i = 0; i < 10; i++)
    assert_int_equal(send_msg(sb.link, (uint64_t)i, 20), PARLEY_OK);
  WAIT_FOR(sa.closes == 1 && sb.closes == 1);
  assert_null(sa.net);
  assert_int_equal(sa.msgs, 1);
  assert_int_equal(sa.closes, 1);
  assert_int_equal(sa.close_reason, PARLEY_ECANCELED);
  assert_int_equal(sb.closes, 1);
  assert_int_equal(sb.close_reason, PARLEY_ECLOSED);
}

static void test_fail(void **state) {
  int i;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  sa.fail_in_frame = 1;
  for (i = 0; i < 5; i++)
    assert_int_equal(send_msg(sb.link, (uint64_t)i, 20), PARLEY_OK);
  WAIT_FOR(sa.closes == 1 && sb.closes == 1);
  assert_int_equal(sa.msgs, 1);
  assert_int_equal(sa.close_reason, PARLEY_EDENIED);
  /* The ERROR reached the dialler before the close. */
  assert_int_equal(sb.errors, 1);
  assert_int_equal(sb.err_req, 7);
  assert_int_equal(sb.err_code, (uint16_t)-PARLEY_EDENIED);
  assert_string_equal(sb.err_text, "go away");
  assert_int_equal(sb.closes, 1);
  assert_int_equal(sb.close_reason, PARLEY_ECLOSED);
}

static void test_net_free_with_open_links(void **state) {
  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  assert_int_equal(send_msg(sb.link, 0, 20), PARLEY_OK); /* queued, dropped */
  parley_net_free(sb.net);
  parley_net_free(sa.net);
  sa.net = sb.net = NULL;
  assert_int_equal(sa.closes + sb.closes, 0); /* from the loop, not here */
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(sa.closes, 1);
  assert_int_equal(sa.close_reason, PARLEY_ECANCELED);
  assert_int_equal(sb.closes, 1);
  assert_int_equal(sb.close_reason, PARLEY_ECANCELED);
  assert_int_equal(uv_loop_close(&loop), 0);
  /* teardown expects a live loop with a tick timer */
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uv_timer_init(&loop, &tick), 0);
}

/* ---- tests: the guard --------------------------------------------------- */

static void test_guard_refuses_connect(void **state) {
  const struct parley_net_stats *as;
  uint16_t port;

  (void)state;
  next_guard = &fake_guard_hooks;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  next_guard = NULL;
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  port = side_listen(&sa);
  as = parley_net_stats(sa.net);
  fg.refuse_connects = 1;
  raw_connect(&r1, port, 0);
  WAIT_FOR(r1.eof);
  assert_int_equal(r1.eof, 1);
  assert_int_equal(r1.total_rx, 0); /* not even the preamble */
  assert_int_equal(fg.connects, 1);
  assert_string_equal(fg.last_ip, "127.0.0.1");
  assert_int_equal(as->conns_limited, 1);
  assert_int_equal(as->conns_banned, 0);
  assert_int_equal(as->handshakes_failed, 0); /* declined, not failed */
  assert_int_equal(fg.handshakes, 0);
  /* The next one is admitted and every hook sees it. */
  open_pair(&sa, &sb, port);
  assert_int_equal(fg.connects, 2);
  assert_int_equal(fg.handshakes, 1);
  assert_int_equal(fg.peers, 1);
  assert_int_equal(fg.strikes, 0);
  assert_string_equal(parley_link_remote_ip(sa.link), "127.0.0.1");
  /* Dialled links are never asked about. */
  assert_int_equal(parley_link_strike(sb.link), PARLEY_OK);
  assert_int_equal(fg.strikes, 0);
  assert_int_equal(as->conns_limited, 1);
}

static void test_guard_refuses_handshake(void **state) {
  const struct parley_net_stats *as;

  (void)state;
  next_guard = &fake_guard_hooks;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  as = parley_net_stats(sa.net);
  fg.refuse_handshakes = 1;
  raw_connect(&r1, side_listen(&sa), 1);
  WAIT_FOR(r1.eof);
  assert_int_equal(r1.eof, 1);
  assert_int_equal(r1.has_sess, 0);
  assert_int_equal(fg.handshakes, 1);
  assert_int_equal(fg.peers, 0);
  assert_int_equal(as->handshakes_limited, 1);
  assert_int_equal(as->handshakes_failed, 0);
  assert_int_equal(as->handshakes_ok, 0);
}

static void test_guard_bans_key(void **state) {
  const struct parley_net_stats *as;

  (void)state;
  next_guard = &fake_guard_hooks;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  as = parley_net_stats(sa.net);
  fg.ban_pk = 1;
  memcpy(fg.banned_pk, id_c.pk, 32); /* the raw client's key */
  raw_connect(&r1, side_listen(&sa), 1);
  WAIT_FOR(r1.eof);
  assert_int_equal(r1.eof, 1);
  assert_int_equal(r1.hellos, 0); /* closed before HELLO */
  assert_int_equal(fg.peers, 1);
  assert_int_equal(as->peers_banned, 1);
  assert_int_equal(as->handshakes_ok, 0);
  assert_int_equal(sa.opens, 0);
  assert_int_equal(sa.closes, 0);
}

static void test_guard_strikes(void **state) {
  const struct parley_net_stats *as;
  uint8_t buf[256], junk[32];
  uint16_t port;
  size_t n;

  (void)state;
  next_guard = &fake_guard_hooks;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  port = side_listen(&sa);
  as = parley_net_stats(sa.net);

  /* Garbage before the handshake: a strike against the address only. */
  raw_connect(&r1, port, 0);
  memset(junk, 'X', sizeof junk);
  raw_write(&r1, junk, sizeof junk);
  WAIT_FOR(r1.eof);
  assert_int_equal(fg.strikes, 1);
  assert_int_equal(fg.last_strike_had_pk, 0);
  assert_string_equal(fg.last_ip, "127.0.0.1");
  assert_int_equal(as->strikes, 1);
  assert_int_equal(as->strike_bans, 0);
  raw_close(&r1);
  WAIT_FOR(r1.closed);

  /* A bad frame after the handshake: the key is known and reported; the
   * guard says "banned now". */
  fg.strike_answer = PARLEY_EDENIED;
  raw_secure(&r1, port);
  n = put_ping(buf, sizeof buf, 1); /* a frame before HELLO */
  raw_send_record(&r1, buf, n, 0);
  WAIT_FOR(r1.eof);
  assert_int_equal(r1.eof, 1);
  assert_int_equal(fg.strikes, 2);
  assert_int_equal(fg.last_strike_had_pk, 1);
  assert_memory_equal(fg.last_strike_pk, id_c.pk, 32);
  assert_int_equal(as->strikes, 2);
  assert_int_equal(as->strike_bans, 1);
  assert_int_equal(as->protocol_errors, 2);
}

static void test_guard_strike_from_above(void **state) {
  const struct parley_net_stats *as;

  (void)state;
  next_guard = &fake_guard_hooks;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  next_guard = NULL;
  side_net(&sb, &id_b, "cli", PARLEY_ROLE_PEER, NULL);
  open_pair(&sa, &sb, side_listen(&sa));
  as = parley_net_stats(sa.net);
  assert_int_equal(parley_link_strike(sa.link), PARLEY_OK);
  assert_int_equal(fg.strikes, 1);
  assert_int_equal(fg.last_strike_had_pk, 1);
  assert_memory_equal(fg.last_strike_pk, id_b.pk, 32);
  fg.strike_answer = PARLEY_EDENIED;
  assert_int_equal(parley_link_strike(sa.link), PARLEY_EDENIED);
  assert_int_equal(as->strikes, 2);
  assert_int_equal(as->strike_bans, 1);
  /* Reporting does not close: that is the caller's call. */
  assert_int_equal(parley_link_is_open(sa.link), 1);
}

static void test_config_errors(void **state) {
  struct parley_net_config cfg;
  struct parley_net *net = NULL;

  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.loop = &loop;
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_EINVAL); /* no id */
  cfg.id = &id_a;
  cfg.max_frame = PARLEY_MAX_FRAME + 1;
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_EINVAL);
  cfg.max_frame = 100;
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_EINVAL);
  cfg.max_frame = 0;
  cfg.name = "a name that is far too long to fit in the sixty-four bytes "
             "that HELLO allows";
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_EINVAL);
  cfg.name = "ok";
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_OK);
  assert_int_equal(parley_net_listen(net, "bogus", 0, &cbs, NULL, &sa.ls),
                   PARLEY_EINVAL);
  parley_net_free(net);
  parley_net_free(NULL);
}

/* ---- tests: buffers, deadlines, the flush hook, source addresses ------- */

/* Records and frames cut anywhere arrive whole; between bursts a link holds
 * no read, plaintext or send buffer. */
static void test_trickle_and_idle_buffers(void **state) {
  uint8_t pt[256], rec[512];
  size_t n, n1, rlen;
  uint64_t in0;
  struct parley_link *l;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  raw_secure(&r1, side_listen(&sa));
  n = put_hello(pt, sizeof pt, PARLEY_WIRE_VERSION);
  raw_send_record(&r1, pt, n, 0);
  WAIT_FOR(sa.opens == 1);
  assert_int_equal(sa.opens, 1);
  l = sa.link;
  /* Record 1: PING 1 and the first 5 bytes of PING 2; record 2: the rest
   * of PING 2 and PING 3.  Both records are written in three pieces with
   * pauses, so the server reads each record in parts. */
  n1 = put_ping(pt, sizeof pt, 1);
  n = n1 + put_ping(pt + n1, sizeof pt - n1, 2);
  n += put_ping(pt + n, sizeof pt - n, 3);
  for (int part = 0; part < 2; part++) {
    size_t from = part == 0 ? 0 : n1 + 5, to = part == 0 ? n1 + 5 : n;
    parley_wire_record_header(rec, (uint32_t)(to - from + PARLEY_WIRE_TAG));
    assert_int_equal(parley_session_seal(&r1.sess, rec,
                                         PARLEY_WIRE_RECORD_HDR, pt + from,
                                         to - from,
                                         rec + PARLEY_WIRE_RECORD_HDR),
                     PARLEY_OK);
    rlen = PARLEY_WIRE_RECORD_HDR + (to - from) + PARLEY_WIRE_TAG;
    /* (The raw client does not set TCP_NODELAY: wait for each piece.) */
    in0 = parley_net_stats(sa.net)->bytes_in;
    raw_write(&r1, rec, 3);
    WAIT_FOR(parley_net_stats(sa.net)->bytes_in == in0 + 3);
    assert_int_equal(parley_net_stats(sa.net)->bytes_in, in0 + 3);
    assert_non_null(l->in.data); /* an incomplete record is kept */
    assert_int_equal(l->in.len, 3);
    raw_write(&r1, rec + 3, 10);
    WAIT_FOR(parley_net_stats(sa.net)->bytes_in == in0 + 13);
    assert_int_equal(l->in.len, 13);
    raw_write(&r1, rec + 13, rlen - 13);
    WAIT_FOR(sa.pings == (part == 0 ? 1 : 3));
    if (part == 0) {
      assert_int_equal(sa.pings, 1);
      assert_null(l->in.data);     /* the record was complete */
      assert_non_null(l->pt.data); /* PING 2 is not */
      assert_int_equal(l->pt.len, 5);
    }
  }
  assert_int_equal(sa.pings, 3);
  assert_int_equal(sa.closes, 0);
  /* Idle again: nothing held. */
  assert_null(l->in.data);
  assert_null(l->pt.data);
  assert_null(l->out.data);
  assert_null(l->hs);
  assert_int_equal(l->in.len + l->pt.len + l->out.len, 0);
}

/* Every link gets its own handshake deadline from the one net timer. */
static void test_deadlines_per_link(void **state) {
  static struct raw r2;
  const struct opts o = {0, 0, 0, 300};
  uint64_t t0, t1 = 0, t2 = 0;
  uint16_t port;

  (void)state;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, &o);
  port = side_listen(&sa);
  uv_update_time(&loop);
  t0 = uv_now(&loop);
  raw_connect(&r1, port, 0);
  raw_write(&r1, "PRLY\x01", 5);
  wait_ms(150);
  memset(&r2, 0, sizeof r2);
  raw_connect(&r2, port, 0);
  raw_write(&r2, "PRLY\x01", 5);
  (void)uv_timer_start(&tick, tick_cb, 2, 2);
  while ((!r1.eof || !r2.eof) && uv_now(&loop) - t0 < 3000) {
    uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
    if (r1.eof && t1 == 0)
      t1 = uv_now(&loop) - t0;
    if (r2.eof && t2 == 0)
      t2 = uv_now(&loop) - t0;
  }
  (void)uv_timer_stop(&tick);
  assert_int_equal(r1.eof, 1);
  assert_int_equal(r2.eof, 1);
  /* r1 at ~300 ms, r2 ~150 ms later (its own deadline, not r1's). */
  assert_true(t1 >= 250 && t1 < 1500);
  assert_true(t2 >= t1 + 100);
  assert_true(t2 >= 400 && t2 < 1800);
  assert_int_equal(parley_net_stats(sa.net)->handshakes_failed, 2);
  /* Nothing has a deadline any more: the timer is off. */
  assert_null(sa.net->dl_head);
  assert_int_equal(uv_is_active((uv_handle_t *)&sa.net->timer), 0);
  raw_close(&r2);
  WAIT_FOR(r2.closed);
}

static int cb_opens;
static void cb_open(struct parley_link *l) {
  (void)l;
  cb_opens++;
}
static void cb_frame(struct parley_link *l, const struct parley_frame *f) {
  (void)l;
  (void)f;
}
static void cb_close(struct parley_link *l, int reason) {
  (void)l;
  (void)reason;
}

/* A net without a turn hook has no prepare callback running while it has
 * nothing to send (bench/loadgen.c runs thousands of such nets). */
static void test_idle_net_costs_no_turn(void **state) {
  static const struct parley_link_cbs plain = {cb_open, cb_frame, cb_close};
  struct parley_net_config cfg;
  struct parley_net *net = NULL;
  struct parley_link *l = NULL;
  uint16_t port;

  (void)state;
  cb_opens = 0;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  port = side_listen(&sa);
  memset(&cfg, 0, sizeof cfg);
  cfg.loop = &loop;
  cfg.id = &id_b;
  cfg.role = PARLEY_ROLE_PEER;
  cfg.name = "plain";
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_OK);
  assert_int_equal(uv_is_active((uv_handle_t *)&net->prepare), 0);
  assert_int_equal(
      parley_net_connect(net, "127.0.0.1", port, NULL, &plain, NULL, &l),
      PARLEY_OK);
  WAIT_FOR(cb_opens == 1 && sa.opens == 1);
  assert_int_equal(cb_opens, 1);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_is_active((uv_handle_t *)&net->prepare), 0);
  assert_int_equal(send_msg(l, 0, 10), PARLEY_OK);
  assert_int_equal(uv_is_active((uv_handle_t *)&net->prepare), 1);
  WAIT_FOR(sa.msgs == 1);
  assert_int_equal(sa.msgs, 1);
  assert_int_equal(uv_is_active((uv_handle_t *)&net->prepare), 0);
  /* A net with a turn hook runs it every turn. */
  {
    int before = sa.turn_ends;
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(sa.turn_ends >= before + 2);
  }
  parley_net_free(net);
  WAIT_FOR(sa.closes == 1);
  assert_int_equal(sa.closes, 1);
}

/* bind_host: dialled links leave from the given source address. */
static void test_bind_host(void **state) {
  static const struct parley_link_cbs plain = {cb_open, cb_frame, cb_close};
  struct parley_net_config cfg;
  struct parley_net *net = NULL;
  struct parley_link *l = NULL;
  uint16_t port;
  char big[80];

  (void)state;
  cb_opens = 0;
  side_net(&sa, &id_a, "srv", PARLEY_ROLE_PEER, NULL);
  port = side_listen(&sa);
  memset(&cfg, 0, sizeof cfg);
  cfg.loop = &loop;
  cfg.id = &id_b;
  cfg.role = PARLEY_ROLE_PEER;
  memset(big, '1', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  cfg.bind_host = big;
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_EINVAL);
  cfg.bind_host = "127.0.0.2";
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_OK);
  /* Another family than the target's, or not an address: refused. */
  assert_int_equal(
      parley_net_connect(net, "::1", port, NULL, &plain, NULL, &l),
      PARLEY_EINVAL);
  assert_int_equal(
      parley_net_connect(net, "127.0.0.1", port, NULL, &plain, NULL, &l),
      PARLEY_OK);
  WAIT_FOR(cb_opens == 1 && sa.opens == 1);
  assert_int_equal(sa.opens, 1);
  assert_string_equal(parley_link_remote_ip(sa.link), "127.0.0.2");
  assert_int_equal(strncmp(parley_link_peername(sa.link), "127.0.0.2:", 10),
                   0);
  parley_net_free(net);
  net = NULL;
  cfg.bind_host = "not-an-address";
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_OK);
  assert_int_equal(
      parley_net_connect(net, "127.0.0.1", port, NULL, &plain, NULL, &l),
      PARLEY_EINVAL);
  parley_net_free(net);
  WAIT_FOR(sa.closes == 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_open_and_exchange),
      T(test_msg_next),
      T(test_msg_next_needs_cap),
      T(test_msg_next_without_msg),
      T(test_msg_next_past_the_end),
      T(test_big_body),
      T(test_read_budget),
      T(test_channel_binding),
      T(test_expected_pk_mismatch),
      T(test_connect_refused),
      T(test_garbage_then_normal),
      T(test_handshake_timeout),
      T(test_max_frame),
      T(test_frame_before_hello),
      T(test_unknown_type),
      T(test_version_mismatch),
      T(test_bad_record),
      T(test_max_links),
      T(test_backpressure),
      T(test_close_in_on_frame),
      T(test_free_in_on_frame),
      T(test_fail),
      T(test_net_free_with_open_links),
      T(test_config_errors),
      T(test_guard_refuses_connect),
      T(test_guard_refuses_handshake),
      T(test_guard_bans_key),
      T(test_guard_strikes),
      T(test_guard_strike_from_above),
      T(test_trickle_and_idle_buffers),
      T(test_deadlines_per_link),
      T(test_idle_net_costs_no_turn),
      T(test_bind_host),
#undef T
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
