/* raft_transport.c — member links bridged to socketpairs (see the header). */
#include "index/raft_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "net/link.h"
#include "wire/raft_wire.h"

/* Stop reading libraft's bytes while the link holds this much unsent... */
#define RT_SENDQ_HIGH (8u * 1024u * 1024u)
/* ...and start again below this. */
#define RT_SENDQ_LOW (2u * 1024u * 1024u)
/* Bytes from the link waiting to be written into the socketpair: past
 * this, libraft is not keeping up and the bridge is closed. */
#define RT_PIPE_CAP (64u * 1024u * 1024u)
/* Time from TCP connect to a verified RAFT_OPEN exchange. */
#define RT_OPEN_TIMEOUT_MS 3000u
#define RT_TICK_MS 250u

enum rt_state {
  RT_DIALLING = 0, /* link not open yet */
  RT_OPENING,      /* link open, RAFT_OPEN not verified yet */
  RT_ACTIVE,       /* bridged */
};

struct rt_bridge {
  struct parley_rtransport *t;
  struct rt_bridge *prev, *next;
  struct parley_link *link;      /* NULL once its on_close ran */
  struct parley_rt_connect *req; /* dialled and not completed yet */
  uv_pipe_t pipe;                /* our end of the socketpair */
  int pipe_open;                 /* pipe initialised, not through close yet */
  int dialled;
  int state;
  int closing;
  int paused;                     /* not reading the pipe (back-pressure) */
  int counted;                    /* counted in stats.links_open */
  uint64_t deadline;              /* uv_now() by which RAFT_OPEN must be done */
  uint64_t id;                    /* the member's raft id (dialled: expected) */
  char addr[PARLEY_MAX_ADDR + 1]; /* dialled address */
  size_t pipe_wq;                 /* bytes queued for the pipe */
  uint8_t *rbuf;                  /* PARLEY_RAFT_MAX_DATA bytes read buffer */
};

struct pipe_write {
  uv_write_t req;
  struct rt_bridge *b;
  size_t len;
  uint8_t data[];
};

struct parley_rtransport {
  uv_loop_t *loop;
  const struct parley_log *log;
  const struct parley_identity *id;
  char *pins_path;
  uint64_t self_id;
  char raft_addr[PARLEY_MAX_ADDR + 1];
  char listen_addr[PARLEY_MAX_ADDR + 1];
  char http_addr[PARLEY_MAX_ADDR + 1];
  uint8_t key[PARLEY_CLUSTER_KEY_LEN];

  struct parley_net *net;
  uv_timer_t timer;
  int handles; /* timer + open pipes */

  parley_rt_accept_cb accept_cb;
  void *accept_ctx;

  struct rt_bridge *bridges;
  struct parley_rt_peer peers[PARLEY_RT_MAX_PEERS];
  size_t npeers;

  struct parley_rtransport_stats st;
  int closing;
  void (*close_cb)(void *ctx);
  void *close_ctx;
};

static const struct parley_link_cbs bridge_cbs;
static const struct parley_link_cbs detached_cbs;

/* ---- helpers --------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const char *p, size_t n) {
  if (n >= cap)
    n = cap - 1;
  if (n > 0)
    memcpy(dst, p, n);
  dst[n] = '\0';
}

static void maybe_done(struct parley_rtransport *t) {
  if (!t->closing || t->handles > 0 || t->bridges != NULL)
    return;
  sodium_memzero(t->key, sizeof t->key);
  if (t->close_cb != NULL)
    t->close_cb(t->close_ctx);
  parley_free(t->pins_path);
  parley_free(t);
}

/* ---- pins: cluster-peers.json ---------------------------------------- */

static struct parley_rt_peer *peer_find(struct parley_rtransport *t,
                                        uint64_t id) {
  for (size_t i = 0; i < t->npeers; i++)
    if (t->peers[i].id == id)
      return &t->peers[i];
  return NULL;
}

static int dump_cb(const char *p, size_t n, void *ctx) {
  return parley_buf_append(ctx, p, n) < 0 ? -1 : 0;
}

/* Rewrites the pin file (temp + rename, mode 0600). */
static void pins_save(struct parley_rtransport *t) {
  char tmp[4200], idtext[PARLEY_ID_TEXT_LEN + 1], num[24];
  struct parley_buf b;
  json_t *o = json_object();
  int fd, ok = o != NULL;

  for (size_t i = 0; ok && i < t->npeers; i++) {
    const struct parley_rt_peer *p = &t->peers[i];
    parley_id_encode(p->pk, idtext);
    snprintf(num, sizeof num, "%llu", (unsigned long long)p->id);
    ok = json_object_set_new(o, num,
                             json_pack("{s:s, s:s, s:s, s:s}", "key", idtext,
                                       "raft", p->raft, "listen", p->listen,
                                       "http", p->http)) == 0;
  }
  parley_buf_init(&b, 1024 * 1024);
  if (ok)
    ok = json_dump_callback(o, dump_cb, &b, JSON_INDENT(1) | JSON_SORT_KEYS) ==
             0 &&
         parley_buf_append(&b, "\n", 1) == 0;
  json_decref(o);
  snprintf(tmp, sizeof tmp, "%s.tmp", t->pins_path);
  fd = ok ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
  if (fd >= 0) {
    size_t off = 0;
    while (ok && off < b.len) {
      ssize_t w = write(fd, b.data + off, b.len - off);
      if (w < 0 && errno == EINTR)
        continue;
      ok = w > 0;
      if (ok)
        off += (size_t)w;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, t->pins_path) == 0;
    if (!ok)
      (void)unlink(tmp);
  } else {
    ok = 0;
  }
  parley_buf_close(&b);
  if (!ok)
    PARLEY_LOG(t->log, PARLEY_LOG_ERROR, "cannot write %s: %s", t->pins_path,
               strerror(errno));
}

static int pins_load(struct parley_rtransport *t) {
  json_error_t err;
  json_t *o, *v;
  const char *k;
  struct stat st;

  if (stat(t->pins_path, &st) < 0 && errno == ENOENT)
    return PARLEY_OK;
  o = json_load_file(t->pins_path, 0, &err);
  if (o == NULL || !json_is_object(o)) {
    PARLEY_LOG(t->log, PARLEY_LOG_ERROR, "%s: %s", t->pins_path,
               o == NULL ? err.text : "not a JSON object");
    json_decref(o);
    return PARLEY_ESTORE;
  }
  json_object_foreach(o, k, v) {
    struct parley_rt_peer p;
    const char *key = NULL, *raft = "", *listen = "", *http = "";
    uint64_t id;

    memset(&p, 0, sizeof p);
    if (parley_parse_u64(k, 1, UINT64_MAX, &id) < 0 ||
        json_unpack(v, "{s:s, s?s, s?s, s?s}", "key", &key, "raft", &raft,
                    "listen", &listen, "http", &http) != 0 ||
        parley_id_decode(key, p.pk) < 0 || t->npeers == PARLEY_RT_MAX_PEERS) {
      PARLEY_LOG(t->log, PARLEY_LOG_ERROR, "%s: bad entry \"%s\"", t->pins_path,
                 k);
      json_decref(o);
      return PARLEY_ESTORE;
    }
    p.id = id;
    copy_str(p.raft, sizeof p.raft, raft, strlen(raft));
    copy_str(p.listen, sizeof p.listen, listen, strlen(listen));
    copy_str(p.http, sizeof p.http, http, strlen(http));
    t->peers[t->npeers++] = p;
  }
  json_decref(o);
  return PARLEY_OK;
}

/* Checks the key a member used against its pin, pinning it (and noting its
 * addresses) when new.  PARLEY_EAUTH when the id is pinned to another key. */
static int pin_check(struct parley_rtransport *t, const struct rt_bridge *b,
                     const struct parley_raft_open *o) {
  const uint8_t *pk = parley_link_remote_pk(b->link);
  struct parley_rt_peer *p = peer_find(t, o->raft_id), n;
  char have[PARLEY_ID_TEXT_LEN + 1], got[PARLEY_ID_TEXT_LEN + 1];

  if (p != NULL && sodium_memcmp(p->pk, pk, 32) != 0) {
    parley_id_encode(p->pk, have);
    parley_id_encode(pk, got);
    PARLEY_LOG(t->log, PARLEY_LOG_ERROR,
               "raft member %llu at %s presents key %s but is pinned to %s "
               "(DIR/cluster-peers.json): refused",
               (unsigned long long)o->raft_id, parley_link_peername(b->link),
               got, have);
    return PARLEY_EAUTH;
  }
  memset(&n, 0, sizeof n);
  n.id = o->raft_id;
  memcpy(n.pk, pk, 32);
  copy_str(n.raft, sizeof n.raft, o->raft_addr.ptr, o->raft_addr.len);
  copy_str(n.listen, sizeof n.listen, o->listen_addr.ptr, o->listen_addr.len);
  copy_str(n.http, sizeof n.http, o->http_addr.ptr, o->http_addr.len);
  /* Both sides were zeroed before being filled, padding included. */
  if (p != NULL && memcmp(p, &n, sizeof n) == 0) /* NOLINT(bugprone-suspicious-memory-comparison) */
    return PARLEY_OK;
  if (p == NULL) {
    if (t->npeers == PARLEY_RT_MAX_PEERS) {
      PARLEY_LOG(t->log, PARLEY_LOG_WARN,
                 "raft member %llu: more than %d members, not pinned",
                 (unsigned long long)o->raft_id, PARLEY_RT_MAX_PEERS);
      return PARLEY_OK;
    }
    p = &t->peers[t->npeers++];
    parley_id_encode(pk, got);
    PARLEY_LOG(t->log, PARLEY_LOG_INFO, "raft member %llu pinned to key %s",
               (unsigned long long)o->raft_id, got);
  }
  *p = n;
  pins_save(t);
  return PARLEY_OK;
}

/* ---- membership proof ------------------------------------------------ */

static void proof_make(const struct parley_rtransport *t,
                       const struct parley_link *l, uint8_t side, uint64_t id,
                       uint8_t out[PARLEY_RAFT_PROOF_LEN]) {
  uint8_t in[PARLEY_RAFT_PROOF_INPUT_LEN];
  parley_raft_proof_input(parley_link_binding(l), side, id, in);
  crypto_auth_hmacsha512256(out, in, sizeof in, t->key);
}

static int proof_ok(const struct parley_rtransport *t,
                    const struct parley_link *l, uint8_t side,
                    const struct parley_raft_open *o) {
  uint8_t want[PARLEY_RAFT_PROOF_LEN];
  int ok;
  proof_make(t, l, side, o->raft_id, want);
  ok = sodium_memcmp(want, o->proof, sizeof want) == 0;
  sodium_memzero(want, sizeof want);
  return ok;
}

static int send_open(struct rt_bridge *b) {
  struct parley_rtransport *t = b->t;
  struct parley_raft_open o;
  uint8_t proof[PARLEY_RAFT_PROOF_LEN], buf[PARLEY_RAFT_OPEN_MAX];
  struct parley_frame f;
  size_t n = 0;
  int rc;

  proof_make(t, b->link,
             b->dialled ? PARLEY_RAFT_SIDE_DIALLER : PARLEY_RAFT_SIDE_ACCEPTOR,
             t->self_id, proof);
  memset(&o, 0, sizeof o);
  o.raft_id = t->self_id;
  o.raft_addr.ptr = t->raft_addr;
  o.raft_addr.len = strlen(t->raft_addr);
  o.listen_addr.ptr = t->listen_addr;
  o.listen_addr.len = strlen(t->listen_addr);
  o.http_addr.ptr = t->http_addr;
  o.http_addr.len = strlen(t->http_addr);
  o.proof = proof;
  rc = parley_raft_open_encode(&o, buf, sizeof buf, &n);
  if (rc == PARLEY_OK) {
    memset(&f, 0, sizeof f);
    f.type = PARLEY_FRAME_RAFT_OPEN;
    f.u.opaque.data = buf;
    f.u.opaque.len = n;
    rc = parley_link_send(b->link, &f);
  }
  sodium_memzero(proof, sizeof proof);
  return rc;
}

/* ---- bridges: lifecycle ---------------------------------------------- */

static void bridge_maybe_free(struct rt_bridge *b) {
  struct parley_rtransport *t = b->t;

  if (b->link != NULL || b->pipe_open)
    return;
  if (b->prev != NULL)
    b->prev->next = b->next;
  else
    t->bridges = b->next;
  if (b->next != NULL)
    b->next->prev = b->prev;
  parley_free(b->rbuf);
  parley_free(b);
  maybe_done(t);
}

static void pipe_closed(uv_handle_t *h) {
  struct rt_bridge *b = h->data;
  b->pipe_open = 0;
  b->t->handles--;
  bridge_maybe_free(b);
}

/* Completes a pending connect request with a failure. */
static void fail_req(struct rt_bridge *b, int status) {
  struct parley_rt_connect *req = b->req;
  if (req == NULL)
    return;
  b->req = NULL;
  req->bridge = NULL;
  req->cb(req, -1, status);
}

/* Starts closing the bridge: the pipe, and the link unless close_link is
 * 0 (a link that is already failing closes itself once its ERROR is
 * flushed).  The bridge is freed once the link's on_close and the pipe's
 * close callback have run. */
static void bridge_shut(struct rt_bridge *b, int reason, int close_link) {
  if (b->closing)
    return;
  b->closing = 1;
  if (b->counted) {
    b->t->st.links_open--;
    b->counted = 0;
  }
  fail_req(b, reason == PARLEY_OK ? PARLEY_ECLOSED : reason);
  if (b->link != NULL && close_link)
    parley_link_close(b->link, reason);
  if (b->pipe_open && !uv_is_closing((uv_handle_t *)&b->pipe))
    uv_close((uv_handle_t *)&b->pipe, pipe_closed);
}

static void bridge_close(struct rt_bridge *b, int reason) {
  bridge_shut(b, reason, 1);
}

static struct rt_bridge *bridge_new(struct parley_rtransport *t, int dialled) {
  struct rt_bridge *b = parley_calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  b->t = t;
  b->dialled = dialled;
  b->state = dialled ? RT_DIALLING : RT_OPENING;
  b->deadline = uv_now(t->loop) + RT_OPEN_TIMEOUT_MS +
                (dialled ? PARLEY_HANDSHAKE_TIMEOUT_MS : 0);
  b->next = t->bridges;
  if (t->bridges != NULL)
    t->bridges->prev = b;
  t->bridges = b;
  return b;
}

/* ---- bridges: the byte path ------------------------------------------ */

static void pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct rt_bridge *b = h->data;
  (void)suggested;
  buf->base = (char *)b->rbuf;
  buf->len = PARLEY_RAFT_MAX_DATA;
}

/* libraft wrote bytes: forward them as RAFT_DATA. */
static void pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct rt_bridge *b = s->data;
  struct parley_frame f;
  int rc;

  (void)buf;
  if (b->closing || nread == 0)
    return;
  if (nread < 0) {
    PARLEY_LOG(b->t->log, PARLEY_LOG_DEBUG, "raft member %llu: stream %s",
               (unsigned long long)b->id,
               nread == UV_EOF ? "closed" : uv_strerror((int)nread));
    bridge_close(b, PARLEY_ECLOSED);
    return;
  }
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_RAFT_DATA;
  f.u.opaque.data = b->rbuf;
  f.u.opaque.len = (size_t)nread;
  rc = parley_link_send(b->link, &f);
  if (rc < 0) {
    PARLEY_LOG(b->t->log, PARLEY_LOG_WARN,
               "raft member %llu: cannot forward %zd bytes: %s",
               (unsigned long long)b->id, nread, parley_strerror(rc));
    bridge_close(b, rc);
    return;
  }
  b->t->st.bytes_out += (uint64_t)nread;
  if (parley_link_sendq(b->link) > RT_SENDQ_HIGH) {
    (void)uv_read_stop((uv_stream_t *)&b->pipe);
    b->paused = 1;
  }
}

static void pipe_write_done(uv_write_t *req, int status) {
  struct pipe_write *w = (struct pipe_write *)req; /* req is first */
  struct rt_bridge *b = w->b;

  b->pipe_wq -= w->len;
  parley_free(w);
  if (status < 0 && !b->closing) {
    PARLEY_LOG(b->t->log, PARLEY_LOG_DEBUG, "raft member %llu: write: %s",
               (unsigned long long)b->id, uv_strerror(status));
    bridge_close(b, PARLEY_ECLOSED);
  }
}

/* RAFT_DATA from the member: into the socketpair, in order. */
static void deliver(struct rt_bridge *b, const uint8_t *p, size_t n) {
  struct pipe_write *w;
  uv_buf_t ub;
  int rc;

  b->t->st.bytes_in += n;
  if (b->pipe_wq == 0) {
    /* Nothing queued: try to hand the bytes over without a copy. */
    ub = uv_buf_init((char *)p, (unsigned int)n);
    rc = uv_try_write((uv_stream_t *)&b->pipe, &ub, 1);
    if (rc >= 0) {
      p += rc;
      n -= (size_t)rc;
      if (n == 0)
        return;
    } else if (rc != UV_EAGAIN) {
      bridge_close(b, PARLEY_ECLOSED);
      return;
    }
  }
  if (b->pipe_wq + n > RT_PIPE_CAP) {
    PARLEY_LOG(b->t->log, PARLEY_LOG_WARN,
               "raft member %llu: local raft is %zu bytes behind; dropping "
               "the link",
               (unsigned long long)b->id, b->pipe_wq);
    bridge_close(b, PARLEY_ELIMIT);
    return;
  }
  w = parley_malloc(sizeof *w + n);
  if (w == NULL) {
    bridge_close(b, PARLEY_ENOMEM);
    return;
  }
  w->b = b;
  w->len = n;
  memcpy(w->data, p, n);
  ub = uv_buf_init((char *)w->data, (unsigned int)n);
  rc = uv_write(&w->req, (uv_stream_t *)&b->pipe, &ub, 1, pipe_write_done);
  if (rc < 0) {
    parley_free(w);
    bridge_close(b, PARLEY_ECLOSED);
    return;
  }
  b->pipe_wq += n;
}

/* Verified: make the socketpair, start pumping, hand libraft its end.
 * Returns the fd for libraft or a negative error. */
static int activate(struct rt_bridge *b, int *fd_out) {
  struct parley_rtransport *t = b->t;
  int fds[2], rc;

  b->rbuf = parley_malloc(PARLEY_RAFT_MAX_DATA);
  if (b->rbuf == NULL)
    return PARLEY_ENOMEM;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
    PARLEY_LOG(t->log, PARLEY_LOG_ERROR, "socketpair: %s", strerror(errno));
    return PARLEY_EIO;
  }
  rc = uv_pipe_init(t->loop, &b->pipe, 0);
  if (rc < 0) {
    close(fds[0]);
    close(fds[1]);
    return parley_err_from_uv(rc);
  }
  b->pipe.data = b;
  b->pipe_open = 1;
  t->handles++;
  rc = uv_pipe_open(&b->pipe, fds[0]);
  if (rc < 0) {
    close(fds[0]);
    close(fds[1]);
    return parley_err_from_uv(rc);
  }
  rc = uv_read_start((uv_stream_t *)&b->pipe, pipe_alloc, pipe_read);
  if (rc < 0) {
    close(fds[1]);
    return parley_err_from_uv(rc);
  }
  b->state = RT_ACTIVE;
  b->counted = 1;
  t->st.links_open++;
  *fd_out = fds[1];
  return PARLEY_OK;
}

/* ---- bridges: link callbacks ----------------------------------------- */

static void refuse(struct rt_bridge *b, int code, const char *why) {
  if (code == PARLEY_EAUTH)
    b->t->st.auth_failures++;
  /* The ERROR goes out first; the link closes once it is flushed. */
  parley_link_fail(b->link, 0, code, why);
  bridge_shut(b, code, 0);
}

static void on_raft_open(struct rt_bridge *b, const struct parley_frame *f) {
  struct parley_rtransport *t = b->t;
  struct parley_raft_open o;
  char raddr[PARLEY_MAX_ADDR + 1];
  int rc, fd = -1;

  if (b->state != RT_OPENING) {
    refuse(b, PARLEY_EPROTO, "unexpected RAFT_OPEN");
    return;
  }
  if (parley_raft_open_decode(f->u.opaque.data, f->u.opaque.len, &o) < 0) {
    PARLEY_LOG(t->log, PARLEY_LOG_WARN, "raft link %s: malformed RAFT_OPEN",
               parley_link_peername(b->link));
    refuse(b, PARLEY_EPROTO, "malformed RAFT_OPEN");
    return;
  }
  if (!proof_ok(t, b->link,
                b->dialled ? PARLEY_RAFT_SIDE_ACCEPTOR
                           : PARLEY_RAFT_SIDE_DIALLER,
                &o)) {
    PARLEY_LOG(t->log, PARLEY_LOG_WARN,
               "raft link %s claiming member %llu: bad membership proof "
               "(wrong cluster key?): refused with EAUTH",
               parley_link_peername(b->link), (unsigned long long)o.raft_id);
    refuse(b, PARLEY_EAUTH, "bad cluster membership proof");
    return;
  }
  if (o.raft_id == t->self_id || (b->dialled && o.raft_id != b->id)) {
    PARLEY_LOG(t->log, PARLEY_LOG_WARN,
               "raft link %s: member says it is %llu, expected %llu",
               parley_link_peername(b->link), (unsigned long long)o.raft_id,
               (unsigned long long)(b->dialled ? b->id : 0));
    refuse(b, PARLEY_EINVAL, "unexpected raft id");
    return;
  }
  if (pin_check(t, b, &o) < 0) {
    refuse(b, PARLEY_EAUTH, "key does not match the pinned key of this id");
    return;
  }
  b->id = o.raft_id;
  copy_str(raddr, sizeof raddr, o.raft_addr.ptr, o.raft_addr.len);
  if (!b->dialled) {
    if (t->accept_cb == NULL) {
      PARLEY_LOG(t->log, PARLEY_LOG_DEBUG,
                 "raft member %llu: not accepting yet",
                 (unsigned long long)b->id);
      bridge_close(b, PARLEY_EUNAVAIL);
      return;
    }
    rc = send_open(b);
    if (rc < 0) {
      bridge_close(b, rc);
      return;
    }
  }
  rc = activate(b, &fd);
  if (rc < 0) {
    PARLEY_LOG(t->log, PARLEY_LOG_ERROR, "raft member %llu: bridge: %s",
               (unsigned long long)b->id, parley_strerror(rc));
    bridge_close(b, rc);
    return;
  }
  PARLEY_LOG(t->log, PARLEY_LOG_DEBUG, "raft member %llu (%s) %s %s",
             (unsigned long long)b->id, raddr,
             b->dialled ? "dialled at" : "accepted from",
             parley_link_peername(b->link));
  if (b->dialled) {
    struct parley_rt_connect *req = b->req;
    b->req = NULL;
    if (req == NULL) { /* cannot happen: a dialled bridge has its request */
      close(fd);
      bridge_close(b, PARLEY_ECANCELED);
      return;
    }
    req->bridge = NULL;
    req->cb(req, fd, 0);
  } else {
    t->accept_cb(t->accept_ctx, b->id, raddr, fd);
  }
}

static void on_open(struct parley_link *l) {
  struct rt_bridge *b = parley_link_data(l);
  struct parley_rtransport *t;
  int rc;

  if (b == NULL) { /* accepted: the listener's data is the transport */
    parley_link_close(l, PARLEY_ECANCELED);
    return;
  }
  t = b->t;
  if (parley_link_remote_role(l) != PARLEY_ROLE_INDEX) {
    PARLEY_LOG(t->log, PARLEY_LOG_INFO,
               "raft port: refusing %s (role %u is not an index)",
               parley_link_peername(l), (unsigned)parley_link_remote_role(l));
    refuse(b, PARLEY_EDENIED, "this port serves index nodes only");
    return;
  }
  b->state = RT_OPENING;
  b->deadline = uv_now(t->loop) + RT_OPEN_TIMEOUT_MS;
  if (b->dialled) {
    rc = send_open(b);
    if (rc < 0)
      bridge_close(b, rc);
  }
}

static void on_frame(struct parley_link *l, const struct parley_frame *f) {
  struct rt_bridge *b = parley_link_data(l);

  if (b == NULL || b->closing)
    return;
  switch (f->type) {
  case PARLEY_FRAME_RAFT_OPEN:
    on_raft_open(b, f);
    break;
  case PARLEY_FRAME_RAFT_DATA:
    if (b->state != RT_ACTIVE || parley_raft_data_check(f->u.opaque.len) < 0) {
      refuse(b, PARLEY_EPROTO, "RAFT_DATA out of place");
      return;
    }
    deliver(b, f->u.opaque.data, f->u.opaque.len);
    break;
  case PARLEY_FRAME_ERROR:
    PARLEY_LOG(b->t->log,
               f->u.error.code == (uint16_t)-PARLEY_EAUTH ? PARLEY_LOG_WARN
                                                          : PARLEY_LOG_DEBUG,
               "raft link %s (member %llu) refused by remote: %s: %.*s",
               parley_link_peername(l), (unsigned long long)b->id,
               parley_err_name(-(int)f->u.error.code), (int)f->u.error.text.len,
               f->u.error.text.ptr);
    if (f->u.error.code == (uint16_t)-PARLEY_EAUTH)
      b->t->st.auth_failures++;
    bridge_close(b, -(int)f->u.error.code);
    break;
  case PARLEY_FRAME_PING: {
    struct parley_frame pong;
    memset(&pong, 0, sizeof pong);
    pong.type = PARLEY_FRAME_PONG;
    pong.u.ping.nonce = f->u.ping.nonce;
    if (parley_link_send(l, &pong) < 0)
      bridge_close(b, PARLEY_ELIMIT);
    break;
  }
  case PARLEY_FRAME_PONG:
    break;
  default:
    refuse(b, PARLEY_EPROTO, "frame type not served on the raft port");
    break;
  }
}

static void on_close(struct parley_link *l, int reason) {
  struct rt_bridge *b = parley_link_data(l);
  if (b == NULL)
    return;
  if (b->dialled && reason == PARLEY_EAUTH && peer_find(b->t, b->id) != NULL)
    PARLEY_LOG(b->t->log, PARLEY_LOG_ERROR,
               "raft member %llu at %s: handshake refused (its key is not "
               "the one pinned in cluster-peers.json?)",
               (unsigned long long)b->id, b->addr);
  b->link = NULL;
  parley_link_set_data(l, NULL);
  bridge_close(b, reason);
  bridge_maybe_free(b);
}

static const struct parley_link_cbs bridge_cbs = {on_open, on_frame, on_close};

/* The listener's links: a fresh bridge per accepted link, once open. */
static void accept_open(struct parley_link *l) {
  struct parley_rtransport *t = parley_link_data(l);
  struct rt_bridge *b;

  if (t == NULL || t->closing) {
    parley_link_set_cbs(l, &detached_cbs);
    parley_link_close(l, PARLEY_ECANCELED);
    return;
  }
  b = bridge_new(t, 0);
  if (b == NULL) {
    parley_link_set_cbs(l, &detached_cbs);
    parley_link_close(l, PARLEY_ENOMEM);
    return;
  }
  b->link = l;
  parley_link_set_cbs(l, &bridge_cbs);
  parley_link_set_data(l, b);
  on_open(l);
}

static void accept_frame(struct parley_link *l, const struct parley_frame *f) {
  (void)l;
  (void)f;
}

static void accept_close(struct parley_link *l, int reason) {
  (void)l;
  (void)reason;
}

static const struct parley_link_cbs accept_cbs = {accept_open, accept_frame,
                                                  accept_close};

static void detached_open(struct parley_link *l) {
  parley_link_close(l, PARLEY_ECANCELED);
}

static const struct parley_link_cbs detached_cbs = {detached_open, accept_frame,
                                                    accept_close};

/* ---- the transport --------------------------------------------------- */

/* Once per loop turn, before the links flush: resume bridges whose link
 * drained. */
static void on_turn_end(void *ctx) {
  struct parley_rtransport *t = ctx;
  for (struct rt_bridge *b = t->bridges; b != NULL; b = b->next) {
    if (!b->paused || b->closing || b->link == NULL)
      continue;
    if (parley_link_sendq(b->link) < RT_SENDQ_LOW) {
      b->paused = 0;
      if (uv_read_start((uv_stream_t *)&b->pipe, pipe_alloc, pipe_read) < 0)
        bridge_close(b, PARLEY_EIO);
    }
  }
}

static void on_tick(uv_timer_t *timer) {
  struct parley_rtransport *t = timer->data;
  uint64_t now = uv_now(t->loop);
  struct rt_bridge *b, *next;

  for (b = t->bridges; b != NULL; b = next) {
    next = b->next;
    if (b->state != RT_ACTIVE && !b->closing && now >= b->deadline) {
      PARLEY_LOG(t->log, PARLEY_LOG_WARN,
                 "raft link %s (member %llu): no membership proof in time",
                 b->link ? parley_link_peername(b->link) : b->addr,
                 (unsigned long long)b->id);
      bridge_close(b, PARLEY_ETIMEDOUT);
    }
  }
}

static void timer_closed(uv_handle_t *h) {
  struct parley_rtransport *t = h->data;
  t->handles--;
  maybe_done(t);
}

int parley_rtransport_new(const struct parley_rtransport_config *cfg,
                          struct parley_rtransport **out) {
  struct parley_rtransport *t;
  struct parley_net_config ncfg;
  char host[PARLEY_MAX_ADDR + 1], path[4096];
  uint16_t port;
  int rc;

  if (cfg->loop == NULL || cfg->id == NULL || cfg->data_dir == NULL ||
      cfg->self_id == 0 || cfg->raft_addr == NULL || cfg->listen_addr == NULL ||
      cfg->cluster_key == NULL || strlen(cfg->raft_addr) > PARLEY_MAX_ADDR ||
      strlen(cfg->listen_addr) > PARLEY_MAX_ADDR ||
      (cfg->http_addr != NULL && strlen(cfg->http_addr) > PARLEY_MAX_ADDR) ||
      parley_parse_hostport(cfg->raft_addr, host, sizeof host, &port) < 0)
    return PARLEY_EINVAL;
  if ((size_t)snprintf(path, sizeof path, "%s/cluster-peers.json",
                       cfg->data_dir) >= sizeof path)
    return PARLEY_EINVAL;
  t = parley_calloc(1, sizeof *t);
  if (t == NULL)
    return PARLEY_ENOMEM;
  t->pins_path = parley_strdup(path);
  if (t->pins_path == NULL) {
    parley_free(t);
    return PARLEY_ENOMEM;
  }
  t->loop = cfg->loop;
  t->log = cfg->log;
  t->id = cfg->id;
  t->self_id = cfg->self_id;
  copy_str(t->raft_addr, sizeof t->raft_addr, cfg->raft_addr,
           strlen(cfg->raft_addr));
  copy_str(t->listen_addr, sizeof t->listen_addr, cfg->listen_addr,
           strlen(cfg->listen_addr));
  if (cfg->http_addr != NULL && strcmp(cfg->http_addr, "-") != 0)
    copy_str(t->http_addr, sizeof t->http_addr, cfg->http_addr,
             strlen(cfg->http_addr));
  memcpy(t->key, cfg->cluster_key, sizeof t->key);
  (void)uv_timer_init(t->loop, &t->timer);
  t->timer.data = t;
  t->handles = 1;

  rc = pins_load(t);
  if (rc == PARLEY_OK) {
    memset(&ncfg, 0, sizeof ncfg);
    ncfg.loop = t->loop;
    ncfg.id = t->id;
    ncfg.log = t->log;
    ncfg.role = PARLEY_ROLE_INDEX;
    ncfg.name = cfg->name != NULL ? cfg->name : "parley-index";
    ncfg.handshake_timeout_ms = PARLEY_HANDSHAKE_TIMEOUT_MS;
    ncfg.on_turn_end = on_turn_end;
    ncfg.ctx = t;
    rc = parley_net_new(&ncfg, &t->net);
  }
  if (rc == PARLEY_OK) {
    parley_net_set_addr(t->net, t->raft_addr);
    rc = parley_net_listen(t->net,
                           strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                           port, &accept_cbs, t, NULL);
    if (rc < 0) {
      PARLEY_LOG(t->log, PARLEY_LOG_ERROR, "raft listen on %s: %s",
                 t->raft_addr, parley_strerror(rc));
      rc = rc == PARLEY_ENOMEM ? rc : PARLEY_ECONNECT;
    }
  }
  if (rc < 0) {
    parley_rtransport_close(t, NULL, NULL);
    return rc;
  }
  (void)uv_timer_start(&t->timer, on_tick, RT_TICK_MS, RT_TICK_MS);
  uv_unref((uv_handle_t *)&t->timer);
  *out = t;
  return PARLEY_OK;
}

void parley_rtransport_listen(struct parley_rtransport *t,
                              parley_rt_accept_cb cb, void *ctx) {
  t->accept_cb = cb;
  t->accept_ctx = ctx;
}

int parley_rtransport_connect(struct parley_rtransport *t,
                              struct parley_rt_connect *req, uint64_t id,
                              const char *addr, parley_rt_connect_cb cb) {
  char host[PARLEY_MAX_ADDR + 1];
  const struct parley_rt_peer *pin;
  struct rt_bridge *b;
  uint16_t port;
  int rc;

  if (t->closing)
    return PARLEY_ECANCELED;
  if (id == 0 || strlen(addr) > PARLEY_MAX_ADDR ||
      parley_parse_hostport(addr, host, sizeof host, &port) < 0 || port == 0)
    return PARLEY_EINVAL;
  b = bridge_new(t, 1);
  if (b == NULL)
    return PARLEY_ENOMEM;
  b->id = id;
  copy_str(b->addr, sizeof b->addr, addr, strlen(addr));
  pin = peer_find(t, id);
  rc = parley_net_connect(t->net, host, port, pin != NULL ? pin->pk : NULL,
                          &bridge_cbs, b, &b->link);
  if (rc < 0) {
    b->link = NULL;
    b->closing = 1;
    bridge_maybe_free(b);
    return rc;
  }
  req->cb = cb;
  req->bridge = b;
  b->req = req;
  return PARLEY_OK;
}

void parley_rtransport_close(struct parley_rtransport *t, void (*cb)(void *ctx),
                             void *ctx) {
  struct rt_bridge *b, *next;

  if (t == NULL || t->closing)
    return;
  t->closing = 1;
  t->close_cb = cb;
  t->close_ctx = ctx;
  t->accept_cb = NULL;
  for (b = t->bridges; b != NULL; b = next) {
    next = b->next;
    fail_req(b, PARLEY_ECANCELED);
    if (b->link != NULL) {
      /* Forget the link: the net reports its close to no-op callbacks. */
      parley_link_set_cbs(b->link, &detached_cbs);
      parley_link_set_data(b->link, NULL);
      parley_link_close(b->link, PARLEY_ECANCELED);
      b->link = NULL;
    }
    bridge_close(b, PARLEY_ECANCELED);
  }
  parley_net_free(t->net);
  t->net = NULL;
  uv_close((uv_handle_t *)&t->timer, timer_closed);
  /* Bridges without a pipe are freed now; the rest from pipe_closed. */
  for (b = t->bridges; b != NULL; b = next) {
    next = b->next;
    bridge_maybe_free(b);
  }
}

int parley_rtransport_peer(const struct parley_rtransport *t, uint64_t id,
                           struct parley_rt_peer *out) {
  for (size_t i = 0; i < t->npeers; i++) {
    if (t->peers[i].id == id) {
      *out = t->peers[i];
      return PARLEY_OK;
    }
  }
  return PARLEY_ENOTFOUND;
}

int parley_rtransport_reachable(const struct parley_rtransport *t,
                                uint64_t id) {
  for (const struct rt_bridge *b = t->bridges; b != NULL; b = b->next)
    if (b->id == id && b->state == RT_ACTIVE && !b->closing)
      return 1;
  return 0;
}

const struct parley_rtransport_stats *
parley_rtransport_stats(const struct parley_rtransport *t) {
  return &t->st;
}

/* ---- the cluster key file -------------------------------------------- */

int parley_cluster_key_load(const char *path,
                            uint8_t key[PARLEY_CLUSTER_KEY_LEN], char *errbuf,
                            size_t errcap) {
  char text[80];
  struct stat st;
  ssize_t n;
  size_t len;
  int fd, rc;

  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    snprintf(errbuf, errcap, "cannot open %s: %s", path, strerror(errno));
    return PARLEY_EIO;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    snprintf(errbuf, errcap, "%s is not a regular file", path);
    close(fd);
    return PARLEY_EIO;
  }
  if ((st.st_mode & 077) != 0) {
    snprintf(errbuf, errcap,
             "%s is readable by others (mode %03o): chmod 600 it", path,
             (unsigned)(st.st_mode & 0777));
    close(fd);
    return PARLEY_EAUTH;
  }
  n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n < 0) {
    snprintf(errbuf, errcap, "cannot read %s: %s", path, strerror(errno));
    return PARLEY_EIO;
  }
  len = (size_t)n;
  if (len > 0 && text[len - 1] == '\n')
    len--;
  text[len] = '\0';
  rc = len == 2 * PARLEY_CLUSTER_KEY_LEN
           ? parley_hex_decode(text, key, PARLEY_CLUSTER_KEY_LEN)
           : PARLEY_EINVAL;
  sodium_memzero(text, sizeof text);
  if (rc < 0) {
    snprintf(errbuf, errcap,
             "%s must hold 64 hex digits (see `parley-index cluster keygen`)",
             path);
    return PARLEY_EINVAL;
  }
  return PARLEY_OK;
}
