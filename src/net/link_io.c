/* link_io.c — the byte path of a link: preamble, Noise handshake, AEAD
 * records, frame decoding and dispatch, the send queue and its flush. */
#include "net/link_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

_Static_assert(PARLEY_LINK_BINDING_LEN == PARLEY_NOISE_HASHLEN,
               "the channel binding is the Noise handshake hash");

/* One uv_write: the request and the bytes it writes, released together in
 * the write callback.  pt_bytes is the plaintext it carries (0 for
 * handshake bytes), subtracted from the link's in-flight count on
 * completion; cap is the room in data. */
struct link_write {
  uv_write_t req;
  struct parley_link *link;
  size_t pt_bytes;
  size_t cap;
  uint8_t data[];
};

/* ---- buffers --------------------------------------------------------------- */

/* Send-queue storage kept for reuse. */
struct net_spare {
  uint8_t *data;
  size_t alloc;
};

/* Buffers shared by every net of the calling thread (link_int.h,
 * "Memory"): reads land in rbuf, records are decrypted into ptbuf, and
 * flushed send queues leave their storage in spare.  Sharing is safe
 * because a thread runs one loop, which reads one stream at a time and
 * parses each read before it allocates the next; allocated on first use,
 * freed when the thread's last net is freed (users). */
struct net_scratch {
  uint8_t *rbuf;  /* PARLEY_NET_READ_CHUNK bytes */
  uint8_t *ptbuf; /* PARLEY_NET_RECORD_PT bytes */
  struct net_spare spare[PARLEY_NET_SPARES];
  uint32_t nspare;
  /* Completed writes kept for the next flush.  A busy link writes one
   * buffer of a few hundred KiB per loop turn; allocating it afresh each
   * time made the allocator hand the pages back to the kernel and fault
   * them in again (a tenth of a fan-out publisher's time). */
  struct link_write *wspare[PARLEY_NET_WSPARES];
  uint32_t nwspare;
  size_t wspare_bytes; /* at most PARLEY_NET_WSPARE_BYTES */
  size_t users;
};

static _Thread_local struct net_scratch scratch;

void parley__net_scratch_ref(void) { scratch.users++; }

void parley__net_scratch_unref(void) {
  if (scratch.users == 0 || --scratch.users > 0)
    return;
  while (scratch.nspare > 0)
    parley_free(scratch.spare[--scratch.nspare].data);
  while (scratch.nwspare > 0)
    parley_free(scratch.wspare[--scratch.nwspare]);
  scratch.wspare_bytes = 0;
  parley_free(scratch.rbuf);
  parley_free(scratch.ptbuf);
  scratch.rbuf = scratch.ptbuf = NULL;
}

/* Storage for l->out from the spares, if it has none. */
static void out_take_spare(struct parley_link *l) {
  if (l->out.data != NULL || scratch.nspare == 0)
    return;
  scratch.nspare--;
  l->out.data = scratch.spare[scratch.nspare].data;
  l->out.alloc = scratch.spare[scratch.nspare].alloc;
  l->out.len = 0;
}

/* l->out is empty: its storage goes back to the spares (or is freed), so
 * that a link holds no send buffer between bursts. */
static void out_give_back(struct parley_link *l) {
  if (l->out.data == NULL || l->out.len != 0)
    return;
  if (l->out.alloc <= PARLEY_NET_TRIM && scratch.nspare < PARLEY_NET_SPARES) {
    scratch.spare[scratch.nspare].data = l->out.data;
    scratch.spare[scratch.nspare].alloc = l->out.alloc;
    scratch.nspare++;
    l->out.data = NULL;
    l->out.alloc = 0;
    return;
  }
  parley_buf_close(&l->out); /* keeps the cap */
}

/* ---- writing ------------------------------------------------------------- */

/* A finished write's buffer goes back to the spares (or is freed). */
static void write_release(struct link_write *w) {
  if (w->cap <= PARLEY_NET_TRIM && scratch.users > 0 &&
      scratch.nwspare < PARLEY_NET_WSPARES &&
      scratch.wspare_bytes + w->cap <= PARLEY_NET_WSPARE_BYTES) {
    scratch.wspare[scratch.nwspare++] = w;
    scratch.wspare_bytes += w->cap;
    return;
  }
  parley_free(w);
}

static void on_write(uv_write_t *req, int status) {
  struct link_write *w = (struct link_write *)req; /* req is first */
  struct parley_link *l = w->link;

  l->inflight -= w->pt_bytes;
  write_release(w);
  if (l->closing)
    return; /* UV_ECANCELED from our own close, or a late completion */
  if (status < 0) {
    PARLEY_LOG(l->net->log, PARLEY_LOG_DEBUG, "link %s: write: %s",
               l->peername, uv_strerror(status));
    parley__link_close(l, l->failing ? l->fail_reason
                                     : parley_err_from_uv(status));
    return;
  }
  if (l->failing && l->out.len == 0 && l->inflight == 0)
    parley__link_close(l, l->fail_reason);
}

/* A write buffer of at least len bytes: a spare large enough, else a new
 * one (rounded up to 16 KiB above 16 KiB, so that it fits the next flush
 * of a similar size). */
static struct link_write *write_new(struct parley_link *l, size_t len) {
  struct link_write *w = NULL;
  size_t cap = len;

  for (uint32_t i = scratch.nwspare; i-- > 0;) {
    if (scratch.wspare[i]->cap >= len) {
      w = scratch.wspare[i];
      scratch.wspare[i] = scratch.wspare[--scratch.nwspare];
      scratch.wspare_bytes -= w->cap;
      break;
    }
  }
  if (w == NULL) {
    if (cap > 16384)
      cap = (cap + 16383) & ~(size_t)16383;
    w = parley_malloc(sizeof *w + cap);
    if (w == NULL)
      return NULL;
    w->cap = cap;
  }
  w->link = l;
  w->pt_bytes = 0;
  return w;
}

static int write_submit(struct parley_link *l, struct link_write *w,
                        size_t len) {
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned int)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, on_write);
  if (rc < 0) {
    write_release(w);
    return parley_err_from_uv(rc);
  }
  l->inflight += w->pt_bytes;
  l->net->stats.bytes_out += len;
  return PARLEY_OK;
}

/* Unencrypted bytes (preamble, handshake messages). */
static int write_raw(struct parley_link *l, const uint8_t *p, size_t n) {
  struct link_write *w = write_new(l, n);
  if (w == NULL)
    return PARLEY_ENOMEM;
  memcpy(w->data, p, n);
  return write_submit(l, w, n);
}

/* Seals l->out into records behind npre unencrypted bytes (the last
 * handshake message, or nothing) and issues one uv_write for all of it. */
static int flush_with(struct parley_link *l, const uint8_t *pre,
                      size_t npre) {
  const size_t per = PARLEY_WIRE_RECORD_HDR + PARLEY_WIRE_TAG;
  size_t n = l->out.len, nrec, total, pos, wp, chunk;
  struct link_write *w;
  int rc;

  if (n == 0 && npre == 0)
    return PARLEY_OK;
  nrec = (n + PARLEY_NET_RECORD_PT - 1) / PARLEY_NET_RECORD_PT;
  total = npre + n + nrec * per;
  w = write_new(l, total);
  if (w == NULL)
    return PARLEY_ENOMEM;
  if (npre > 0)
    memcpy(w->data, pre, npre);
  for (pos = 0, wp = npre; pos < n; pos += chunk) {
    chunk = n - pos < PARLEY_NET_RECORD_PT ? n - pos : PARLEY_NET_RECORD_PT;
    parley_wire_record_header(w->data + wp,
                              (uint32_t)(chunk + PARLEY_WIRE_TAG));
    rc = parley_session_seal(&l->sess, w->data + wp, PARLEY_WIRE_RECORD_HDR,
                             l->out.data + pos, chunk,
                             w->data + wp + PARLEY_WIRE_RECORD_HDR);
    if (rc < 0) {
      write_release(w);
      return rc; /* the nonce stream is now out of step: caller closes */
    }
    wp += chunk + per;
  }
  w->pt_bytes = n;
  rc = write_submit(l, w, total);
  if (rc < 0)
    return rc;
  l->net->stats.records_out += nrec;
  l->out.len = 0;
  out_give_back(l);
  return PARLEY_OK;
}

int parley__link_flush(struct parley_link *l) { return flush_with(l, NULL, 0); }

/* Encodes f onto l's output queue.  Not internal: held to the remote's
 * max_frame and to max_sendq. */
static int queue_frame(struct parley_link *l, const struct parley_frame *f,
                       int internal) {
  size_t size = parley_wire_encoded_size(f), written;
  uint32_t limit;
  int rc;

  if (size < PARLEY_WIRE_FRAME_HDR)
    return PARLEY_EINVAL;
  if (!internal) {
    limit = l->remote_max_frame < PARLEY_MAX_FRAME ? l->remote_max_frame
                                                   : PARLEY_MAX_FRAME;
    /* The frame length on the wire counts type + payload. */
    if (size - 4 > limit)
      return PARLEY_ETOOBIG;
    if (l->out.len + l->inflight + size > l->net->max_sendq)
      return PARLEY_ELIMIT;
  }
  out_take_spare(l);
  rc = parley_buf_reserve(&l->out, size);
  if (rc == PARLEY_ETOOBIG)
    return PARLEY_ELIMIT;
  if (rc < 0)
    return rc;
  rc = parley_wire_encode(f, l->out.data + l->out.len, size, &written);
  if (rc < 0) {
    out_give_back(l);
    return rc;
  }
  l->out.len += written;
  l->net->stats.frames_out++;
  parley__link_flush_mark(l);
  return PARLEY_OK;
}

/* ---- MSG_NEXT ------------------------------------------------------------ */

_Static_assert(PARLEY_MAX_TOPIC >= 255, "a str8 channel fits parley_link_pos");

/* Remembers m as the last MSG one way.  m's channel has been through the
 * codec, so it is at most 255 bytes. */
static void pos_set(struct parley_link_pos *pos, const struct parley_frame *m) {
  size_t len = m->u.msg.channel.len;

  pos->seq = m->u.msg.seq;
  pos->ts_ms = m->u.msg.ts_ms;
  if (len != pos->ch_len || memcmp(pos->ch, m->u.msg.channel.ptr, len) != 0) {
    memcpy(pos->ch, m->u.msg.channel.ptr, len);
    pos->ch_len = (uint8_t)len;
  }
}

/* l's memory of the last MSG each way, allocated by the first MSG; NULL
 * when out of memory. */
static struct parley_link_last *last_of(struct parley_link *l) {
  if (l->last == NULL)
    l->last = parley_calloc(1, sizeof *l->last);
  return l->last;
}

/* Whether the MSG m can go as MSG_NEXT: the remote takes it, m is BRIEF,
 * on the channel of the last MSG sent, with the very next seq, and at most
 * 65535 ms later. */
static int msg_follows(const struct parley_link *l,
                       const struct parley_frame *m) {
  const struct parley_link_pos *tx = &l->last->tx;

  return (l->remote_caps & PARLEY_CAP_NEXT) &&
         (m->u.msg.flags & PARLEY_MSG_BRIEF) && tx->ch_len != 0 &&
         tx->seq != UINT64_MAX && m->u.msg.seq == tx->seq + 1 &&
         m->u.msg.ts_ms >= tx->ts_ms &&
         m->u.msg.ts_ms - tx->ts_ms <= UINT16_MAX &&
         m->u.msg.channel.len == tx->ch_len &&
         memcmp(m->u.msg.channel.ptr, tx->ch, tx->ch_len) == 0;
}

/* A MSG goes as MSG_NEXT when it follows the last one sent; either way,
 * once queued it is the last one.  Without memory for that state the MSG
 * goes whole (the receiver remembers it all the same), and the state
 * starts with the next MSG that finds memory. */
static int queue_msg(struct parley_link *l, const struct parley_frame *m,
                     int internal) {
  struct parley_frame nx;
  int rc;

  if (last_of(l) == NULL)
    return queue_frame(l, m, internal);
  if (msg_follows(l, m)) {
    nx.type = PARLEY_FRAME_MSG_NEXT;
    nx.u.next.flags = (uint8_t)(m->u.msg.flags & ~PARLEY_MSG_BRIEF);
    nx.u.next.ts_delta = (uint16_t)(m->u.msg.ts_ms - l->last->tx.ts_ms);
    nx.u.next.body = m->u.msg.body;
    nx.u.next.body_len = m->u.msg.body_len;
    rc = queue_frame(l, &nx, internal);
  } else {
    rc = queue_frame(l, m, internal);
  }
  if (rc == PARLEY_OK)
    pos_set(&l->last->tx, m);
  return rc;
}

/* On input: remembers a MSG, or turns a MSG_NEXT into the MSG it stands
 * for (its channel then points into l->last, valid until the next frame).
 * OUT: *why on PARLEY_EPROTO. */
static int msg_expand(struct parley_link *l, struct parley_frame *f,
                      const char **why) {
  struct parley_link_pos *rx;
  uint8_t flags;
  uint16_t delta;
  const uint8_t *body;
  uint32_t body_len;

  if (last_of(l) == NULL)
    return PARLEY_ENOMEM;
  rx = &l->last->rx;
  if (f->type == PARLEY_FRAME_MSG) {
    pos_set(rx, f);
    return PARLEY_OK;
  }
  if (rx->ch_len == 0) {
    *why = "MSG_NEXT without a MSG before it";
    return PARLEY_EPROTO;
  }
  flags = f->u.next.flags;
  delta = f->u.next.ts_delta;
  body = f->u.next.body;
  body_len = f->u.next.body_len;
  if (rx->seq == UINT64_MAX || rx->ts_ms > UINT64_MAX - delta) {
    *why = "MSG_NEXT past the largest seq or ts";
    return PARLEY_EPROTO;
  }
  rx->seq++;
  rx->ts_ms += delta;
  memset(f, 0, sizeof *f);
  f->type = PARLEY_FRAME_MSG;
  f->u.msg.flags = (uint8_t)(flags | PARLEY_MSG_BRIEF);
  f->u.msg.channel.ptr = rx->ch;
  f->u.msg.channel.len = rx->ch_len;
  f->u.msg.seq = rx->seq;
  f->u.msg.ts_ms = rx->ts_ms;
  f->u.msg.body = body;
  f->u.msg.body_len = body_len;
  return PARLEY_OK;
}

int parley__link_queue(struct parley_link *l, const struct parley_frame *f,
                       int internal) {
  if (f->type == PARLEY_FRAME_MSG)
    return queue_msg(l, f, internal);
  return queue_frame(l, f, internal);
}

void parley__link_fail(struct parley_link *l, uint32_t req, int code,
                       const char *text, int reason) {
  struct parley_frame f;
  size_t tlen = strlen(text);
  int rc;

  if (l->closing || l->failing)
    return;
  if (!l->has_session) {
    parley__link_close(l, reason); /* nothing can be sealed yet */
    return;
  }
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_ERROR;
  f.u.error.req = req;
  f.u.error.code = (uint16_t)(code < 0 ? -code : code);
  f.u.error.text.ptr = text;
  f.u.error.text.len = tlen > PARLEY_MAX_ERRTEXT ? PARLEY_MAX_ERRTEXT : tlen;
  rc = parley__link_queue(l, &f, 1);
  if (rc < 0) {
    parley__link_close(l, reason);
    return;
  }
  /* No more input; the flush writes the ERROR and its write callback
   * closes the link.  The timer bounds the wait for a peer that does not
   * read. */
  l->failing = 1;
  l->fail_reason = reason;
  (void)uv_read_stop((uv_stream_t *)&l->tcp);
  parley__link_deadline_set(l);
}

/* Bad input: count it, log it, answer ERROR if a session exists, close. */
static void proto_error(struct parley_link *l, int rc, const char *what) {
  l->net->stats.protocol_errors++;
  (void)parley__link_guard_strike(l); /* closed below whatever it says */
  PARLEY_LOG(l->net->log, PARLEY_LOG_WARN, "link %s: %s: %s", l->peername,
             what, parley_strerror(rc));
  parley__link_fail(l, 0, rc, what, rc);
}

/* ---- starting ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Writes our next handshake message, if it is our turn. */
static int hs_write_next(struct parley_link *l, uint8_t *out, size_t *n) {
  size_t mlen = 0;
  int rc;

  if (!parley_handshake_wants_write(&l->hs->hs))
    return PARLEY_OK;
  rc = parley_handshake_write(&l->hs->hs, out + *n + PARLEY_WIRE_HS_HDR,
                              PARLEY_WIRE_MAX_HS, &mlen);
  if (rc < 0)
    return rc;
  parley_wire_hs_header(out + *n, (uint16_t)mlen);
  *n += PARLEY_WIRE_HS_HDR + mlen;
  return PARLEY_OK;
}

int parley__link_start(struct parley_link *l) {
  uint8_t out[PARLEY_WIRE_PREAMBLE_LEN + PARLEY_WIRE_HS_HDR +
              PARLEY_WIRE_MAX_HS];
  size_t n = PARLEY_WIRE_PREAMBLE_LEN;
  int rc;

  (void)uv_tcp_nodelay(&l->tcp, 1);
  /* Both sides send the preamble at once (docs/PROTOCOL.md section 1). */
  parley_wire_preamble_write(out);
  rc = hs_write_next(l, out, &n); /* Noise message 1 when dialling */
  if (rc < 0)
    return rc;
  rc = write_raw(l, out, n);
  if (rc < 0)
    return rc;
  rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
  return rc < 0 ? parley_err_from_uv(rc) : PARLEY_OK;
}

/* ---- frames -------------------------------------------------------------- */

/* Keeps the remote's HELLO name and address in one allocation sized to
 * them ("name\0addr\0"), each cut to its protocol limit. */
static int keep_hello_strings(struct parley_link *l,
                              const struct parley_frame *f) {
  size_t nn = f->u.hello.name.len, na = f->u.hello.addr.len;
  char *p;

  if (nn > PARLEY_MAX_NAME)
    nn = PARLEY_MAX_NAME;
  if (na > PARLEY_MAX_ADDR)
    na = PARLEY_MAX_ADDR;
  p = parley_malloc(nn + 1 + na + 1);
  if (p == NULL)
    return PARLEY_ENOMEM;
  if (nn > 0)
    memcpy(p, f->u.hello.name.ptr, nn);
  p[nn] = '\0';
  if (na > 0)
    memcpy(p + nn + 1, f->u.hello.addr.ptr, na);
  p[nn + 1 + na] = '\0';
  l->remote_strs = p;
  l->remote_addr_off = (uint8_t)(nn + 1);
  return PARLEY_OK;
}

static void on_hello(struct parley_link *l, const struct parley_frame *f) {
  struct parley_net *net = l->net;
  char text[64];

  if (f->u.hello.version != PARLEY_WIRE_VERSION) {
    PARLEY_LOG(net->log, PARLEY_LOG_WARN,
               "link %s: remote speaks version %u, we speak %u", l->peername,
               (unsigned)f->u.hello.version, (unsigned)PARLEY_WIRE_VERSION);
    snprintf(text, sizeof text, "unsupported protocol version %u",
             (unsigned)f->u.hello.version);
    parley__link_fail(l, 0, PARLEY_EVERSION, text, PARLEY_EVERSION);
    return;
  }
  l->remote_version = f->u.hello.version;
  l->remote_caps = f->u.hello.caps;
  l->remote_max_frame = f->u.hello.max_frame;
  l->remote_role = f->u.hello.role;
  if (keep_hello_strings(l, f) < 0) {
    parley__link_close(l, PARLEY_ENOMEM);
    return;
  }
  l->state = PARLEY_LINK_OPEN;
  l->opened = 1;
  net->stats.links_open++;
  net->stats.handshakes_ok++;
  parley__link_deadline_clear(l);
  PARLEY_LOG(net->log, PARLEY_LOG_DEBUG,
             "link %s: open (%s, name \"%s\", role %u)", l->peername,
             l->accepted ? "accepted" : "dialled", l->remote_strs,
             (unsigned)l->remote_role);
  if (l->cbs.on_open != NULL)
    l->cbs.on_open(l);
}

static void dispatch(struct parley_link *l, const struct parley_frame *f) {
  if (l->state == PARLEY_LINK_HELLO_WAIT) {
    if (f->type == PARLEY_FRAME_HELLO) {
      on_hello(l, f);
    } else if (f->type == PARLEY_FRAME_ERROR) {
      /* The remote refuses us before opening (e.g. EVERSION). */
      PARLEY_LOG(l->net->log, PARLEY_LOG_WARN,
                 "link %s: remote sent ERROR %u before HELLO: %.*s",
                 l->peername, (unsigned)f->u.error.code,
                 (int)f->u.error.text.len, f->u.error.text.ptr);
      parley__link_close(l, f->u.error.code ? -(int)f->u.error.code
                                            : PARLEY_ECLOSED);
    } else {
      proto_error(l, PARLEY_EPROTO, "frame before HELLO");
    }
    return;
  }
  if (f->type == PARLEY_FRAME_HELLO) {
    proto_error(l, PARLEY_EPROTO, "second HELLO");
    return;
  }
  if (l->cbs.on_frame != NULL)
    l->cbs.on_frame(l, f);
}

/* Decodes and dispatches every complete frame in p[0..n).  OUT: *used,
 * the bytes of the whole frames.  Returns < 0 when the link is closing or
 * failing (the caller must stop at once and touch no buffer of it). */
static int parse_frames(struct parley_link *l, const uint8_t *p, size_t n,
                        size_t *used_out) {
  struct parley_net *net = l->net;
  struct parley_frame f;
  size_t off = 0, used;
  char text[48];
  int rc;

  *used_out = 0;
  while (off < n) {
    used = 0;
    rc = parley_wire_decode(p + off, n - off, net->max_frame, &f, &used);
    if (rc == PARLEY_EAGAIN)
      break;
    if (rc == PARLEY_EUNKNOWNTYPE && l->state == PARLEY_LINK_OPEN &&
        used >= PARLEY_WIRE_FRAME_HDR) {
      uint8_t type = p[off + 4];
      net->stats.frames_in++;
      PARLEY_LOG(net->log, PARLEY_LOG_DEBUG,
                 "link %s: skipping unknown frame type 0x%02x", l->peername,
                 (unsigned)type);
      snprintf(text, sizeof text, "unknown frame type 0x%02x",
               (unsigned)type);
      memset(&f, 0, sizeof f);
      f.type = PARLEY_FRAME_ERROR;
      f.u.error.code = (uint16_t)-PARLEY_EUNKNOWNTYPE;
      f.u.error.text.ptr = text;
      f.u.error.text.len = strlen(text);
      if (parley__link_queue(l, &f, 1) < 0) {
        /* A peer that floods us with unknown frames without reading. */
        proto_error(l, PARLEY_ELIMIT, "too many unanswered unknown frames");
        return PARLEY_ELIMIT;
      }
      off += used;
      continue;
    }
    if (rc < 0) {
      proto_error(l, rc == PARLEY_EUNKNOWNTYPE ? PARLEY_EPROTO : rc,
                  rc == PARLEY_ETOOBIG   ? "frame over max_frame"
                  : rc == PARLEY_EUNKNOWNTYPE ? "unknown frame before HELLO"
                                              : "malformed frame");
      return rc;
    }
    off += used;
    net->stats.frames_in++;
    if (l->state == PARLEY_LINK_OPEN &&
        (f.type == PARLEY_FRAME_MSG || f.type == PARLEY_FRAME_MSG_NEXT)) {
      const char *why = "";
      rc = msg_expand(l, &f, &why);
      if (rc == PARLEY_ENOMEM) {
        parley__link_close(l, rc);
        return rc;
      }
      if (rc < 0) {
        proto_error(l, rc, why);
        return rc;
      }
    }
    dispatch(l, &f);
    if (l->closing || l->failing)
      return PARLEY_ECLOSED; /* the user (or we) closed it: touch nothing */
  }
  *used_out = off;
  return PARLEY_OK;
}

/* ---- records and the handshake ------------------------------------------ */

/* Keeps the tail of an incomplete frame (or record) in b, which is empty
 * or holds what p continues.  Returns < 0 when the link stopped. */
static int keep_tail(struct parley_link *l, struct parley_buf *b,
                     const uint8_t *p, size_t n, const char *what) {
  int rc = parley_buf_append(b, p, n);
  if (rc == PARLEY_ETOOBIG)
    proto_error(l, rc, what);
  else if (rc < 0)
    parley__link_close(l, rc);
  return rc;
}

/* Decrypts a record into l->pt behind an incomplete frame (or one too
 * large for the shared buffer), then decodes frames from there. */
static int record_into_pt(struct parley_link *l, const uint8_t *hdr,
                          const uint8_t *ct, size_t ct_len) {
  size_t pt_len = ct_len - PARLEY_WIRE_TAG, used;
  int rc;

  /* Reserve at least one byte so the output pointer is never NULL. */
  rc = parley_buf_reserve(&l->pt, pt_len ? pt_len : 1);
  if (rc < 0) {
    if (rc == PARLEY_ETOOBIG)
      proto_error(l, rc, "plaintext buffer full");
    else
      parley__link_close(l, rc);
    return rc;
  }
  rc = parley_session_open(&l->sess, hdr, PARLEY_WIRE_RECORD_HDR, ct, ct_len,
                           l->pt.data + l->pt.len);
  if (rc < 0) {
    if (rc == PARLEY_ECRYPTO)
      proto_error(l, rc, "record failed authentication");
    else
      parley__link_close(l, rc);
    return rc;
  }
  l->pt.len += pt_len;
  l->net->stats.records_in++;
  rc = parse_frames(l, l->pt.data, l->pt.len, &used);
  if (rc < 0)
    return rc;
  parley_buf_consume(&l->pt, used);
  if (l->pt.len == 0)
    parley_buf_close(&l->pt); /* an idle link keeps no plaintext buffer */
  return PARLEY_OK;
}

/* One complete record at p: decrypt, then decode frames.  PARLEY_EAGAIN if
 * incomplete; < 0 otherwise means the link stopped. */
static int record_step(struct parley_link *l, const uint8_t *p, size_t left,
                       size_t *used) {
  struct parley_net *net = l->net;
  const uint8_t *ct;
  size_t ct_len, pt_len, fused;
  int rc;

  rc = parley_wire_record_decode(p, left, PARLEY_MAX_RECORD + PARLEY_WIRE_TAG,
                                 &ct, &ct_len, used);
  if (rc == PARLEY_EAGAIN)
    return rc;
  if (rc < 0) {
    proto_error(l, rc, "bad record");
    return rc;
  }
  pt_len = ct_len - PARLEY_WIRE_TAG;
  if (l->pt.len > 0 || pt_len > PARLEY_NET_RECORD_PT)
    return record_into_pt(l, p, ct, ct_len);
  /* The usual case: the record starts at a frame boundary and fits the
   * shared buffer; only an incomplete last frame is copied to l->pt. */
  if (scratch.ptbuf == NULL) {
    scratch.ptbuf = parley_malloc(PARLEY_NET_RECORD_PT);
    if (scratch.ptbuf == NULL) {
      parley__link_close(l, PARLEY_ENOMEM);
      return PARLEY_ENOMEM;
    }
  }
  rc = parley_session_open(&l->sess, p, PARLEY_WIRE_RECORD_HDR, ct, ct_len,
                           scratch.ptbuf);
  if (rc < 0) {
    if (rc == PARLEY_ECRYPTO)
      proto_error(l, rc, "record failed authentication");
    else
      parley__link_close(l, rc);
    return rc;
  }
  net->stats.records_in++;
  rc = parse_frames(l, scratch.ptbuf, pt_len, &fused);
  if (rc < 0)
    return rc;
  if (fused < pt_len)
    return keep_tail(l, &l->pt, scratch.ptbuf + fused, pt_len - fused,
                     "plaintext buffer full");
  return PARLEY_OK;
}

static int hello_queue(struct parley_link *l) {
  struct parley_net *net = l->net;
  struct parley_frame f;

  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_HELLO;
  f.u.hello.version = PARLEY_WIRE_VERSION;
  f.u.hello.caps = PARLEY_CAP_ACK | PARLEY_CAP_WATCH | PARLEY_CAP_BATCH |
                   PARLEY_CAP_BRIEF | PARLEY_CAP_NEXT;
  f.u.hello.max_frame = net->max_frame;
  f.u.hello.role = net->role;
  f.u.hello.name.ptr = net->name;
  f.u.hello.name.len = strlen(net->name);
  f.u.hello.addr.ptr = net->addr;
  f.u.hello.addr.len = strlen(net->addr);
  return parley__link_queue(l, &f, 1);
}

/* The handshake is done: keep the binding, key the session, drop the
 * handshake state, queue HELLO. */
static int hs_finish(struct parley_link *l) {
  int rc;

  /* Keep h before finish wipes the handshake: the channel binding. */
  memcpy(l->binding, parley_noise_hash(&l->hs->hs.noise), sizeof l->binding);
  rc = parley_handshake_finish(&l->hs->hs, &l->sess, l->remote_pk);
  parley_free(l->hs); /* wiped by finish (or by its failure) */
  l->hs = NULL;
  if (rc < 0)
    return rc;
  if (parley__link_guard_peer(l) < 0)
    return PARLEY_EDENIED; /* a banned key: closed */
  l->has_session = 1;
  l->state = PARLEY_LINK_HELLO_WAIT;
  PARLEY_LOG(l->net->log, PARLEY_LOG_DEBUG, "link %s: secure (%s)",
             l->peername,
             l->sess.aead == PARLEY_SESSION_AESGCM ? "AES-256-GCM"
                                                   : "ChaCha20-Poly1305");
  return hello_queue(l);
}

/* One complete handshake message at p.  PARLEY_EAGAIN if incomplete; < 0
 * otherwise means the link was closed. */
static int hs_step(struct parley_link *l, const uint8_t *p, size_t left,
                   size_t *used) {
  struct parley_net *net = l->net;
  uint8_t out[PARLEY_WIRE_HS_HDR + PARLEY_WIRE_MAX_HS];
  const uint8_t *msg;
  size_t mlen, n = 0;
  int rc;

  rc = parley_wire_hs_decode(p, left, &msg, &mlen, used);
  if (rc == PARLEY_EAGAIN)
    return rc;
  if (rc < 0) {
    proto_error(l, rc, "bad handshake message");
    return rc;
  }
  /* Ask before the Diffie-Hellman work that answering costs. */
  if (parley__link_guard_handshake(l) < 0)
    return PARLEY_EDENIED;
  rc = parley_handshake_read(&l->hs->hs, msg, mlen);
  if (rc < 0) {
    if (rc != PARLEY_EAUTH)
      net->stats.protocol_errors++;
    (void)parley__link_guard_strike(l);
    PARLEY_LOG(net->log, PARLEY_LOG_WARN, "link %s: handshake failed: %s",
               l->peername, parley_strerror(rc));
    parley__link_close(l, rc);
    return rc;
  }
  rc = hs_write_next(l, out, &n);
  if (rc >= 0 && parley_handshake_done(&l->hs->hs)) {
    rc = hs_finish(l);
    if (rc == PARLEY_EDENIED && l->closing)
      return rc;
    /* The dialler's message 3 and its HELLO record leave in one write. */
    if (rc >= 0)
      rc = flush_with(l, out, n);
  } else if (rc >= 0 && n > 0) {
    rc = write_raw(l, out, n);
  }
  if (rc < 0) {
    PARLEY_LOG(net->log, PARLEY_LOG_WARN, "link %s: handshake: %s",
               l->peername, parley_strerror(rc));
    parley__link_close(l, rc);
    return rc;
  }
  return PARLEY_OK;
}

/* ---- reading ------------------------------------------------------------- */

/* Parses p[0..n): the preamble, handshake messages, records.  OUT: *used,
 * the bytes consumed.  Returns < 0 when the link stopped (closing or
 * failing): the caller touches none of its buffers then. */
static int parse_input(struct parley_link *l, const uint8_t *p, size_t n,
                       size_t *used_out) {
  size_t off = 0, used;
  int rc;

  *used_out = 0;
  while (off < n) {
    const uint8_t *q = p + off;
    size_t left = n - off;

    used = 0;
    if (l->state == PARLEY_LINK_PREAMBLE) {
      rc = parley_wire_preamble_check(q, left);
      if (rc == PARLEY_EAGAIN)
        break;
      if (rc < 0) {
        proto_error(l, rc, "bad preamble");
        return rc;
      }
      used = PARLEY_WIRE_PREAMBLE_LEN;
      l->state = PARLEY_LINK_HANDSHAKE;
    } else if (l->state == PARLEY_LINK_HANDSHAKE) {
      rc = hs_step(l, q, left, &used);
      if (rc == PARLEY_EAGAIN)
        break;
      if (rc < 0)
        return rc;
    } else {
      rc = record_step(l, q, left, &used);
      if (rc == PARLEY_EAGAIN)
        break;
      if (rc < 0)
        return rc;
    }
    off += used;
    if (l->closing || l->failing)
      return PARLEY_ECLOSED;
  }
  *used_out = off;
  return PARLEY_OK;
}

/* n bytes were read into the net's shared buffer (l->in was empty). */
static void input_shared(struct parley_link *l, size_t n) {
  const uint8_t *p = scratch.rbuf;
  size_t used;

  if (parse_input(l, p, n, &used) < 0)
    return;
  if (used < n)
    (void)keep_tail(l, &l->in, p + used, n - used, "input buffer full");
}

/* Bytes were appended to l->in (behind an incomplete record). */
static void input_own(struct parley_link *l) {
  size_t used;

  if (parse_input(l, l->in.data, l->in.len, &used) < 0)
    return;
  parley_buf_consume(&l->in, used);
  if (l->in.len == 0) {
    parley_buf_close(&l->in); /* an idle link keeps no read buffer */
    return;
  }
  /* The buffer holds the largest legal record, so a full buffer that does
   * not parse cannot happen with a conforming peer. */
  if (l->in.len == l->in.cap)
    proto_error(l, PARLEY_ETOOBIG, "input buffer full");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct parley_link *l = h->data;
  size_t room = l->in.cap - l->in.len, avail;

  (void)suggested;
  buf->base = NULL;
  buf->len = 0;
  if (l->in.len == 0) {
    /* Nothing pending: read into the shared buffer. */
    if (scratch.rbuf == NULL)
      scratch.rbuf = parley_malloc(PARLEY_NET_READ_CHUNK);
    if (scratch.rbuf == NULL)
      return; /* libuv reports UV_ENOBUFS to on_read */
    buf->base = (char *)scratch.rbuf;
    buf->len = PARLEY_NET_READ_CHUNK;
    return;
  }
  if (room == 0 ||
      parley_buf_reserve(&l->in, room < PARLEY_NET_READ_CHUNK
                                     ? room
                                     : PARLEY_NET_READ_CHUNK) < 0)
    return; /* libuv reports UV_ENOBUFS to on_read */
  avail = l->in.alloc - l->in.len;
  if (avail > room)
    avail = room;
  buf->base = (char *)l->in.data + l->in.len;
  buf->len = avail;
}

void parley__link_read_resume(struct parley_link *l) {
  int rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
  if (rc < 0)
    parley__link_close(l, parley_err_from_uv(rc));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct parley_link *l = s->data;

  if (l->closing || l->failing)
    return;
  if (nread > 0) {
    l->net->stats.bytes_in += (uint64_t)nread;
    if (l->turn_no != (uint8_t)l->net->turn) {
      l->turn_no = (uint8_t)l->net->turn;
      l->turn_in = 0;
    }
    l->turn_in += (uint32_t)nread; /* one read is at most READ_CHUNK */
    if (buf->base == (const char *)scratch.rbuf) { /* l->in was empty */
      input_shared(l, (size_t)nread);
    } else {
      l->in.len += (size_t)nread;
      input_own(l);
    }
    if (!l->closing && !l->failing && l->turn_in >= PARLEY_NET_TURN_INPUT)
      parley__link_read_pause(l);
    return;
  }
  if (nread == 0)
    return;
  if (nread == UV_EOF) {
    PARLEY_LOG(l->net->log, PARLEY_LOG_DEBUG, "link %s: remote closed",
               l->peername);
    parley__link_close(l, PARLEY_ECLOSED);
  } else if (nread == UV_ENOBUFS) {
    if (l->in.len == l->in.cap)
      proto_error(l, PARLEY_ETOOBIG, "input buffer full");
    else
      parley__link_close(l, PARLEY_ENOMEM);
  } else {
    PARLEY_LOG(l->net->log, PARLEY_LOG_DEBUG, "link %s: read: %s",
               l->peername, uv_strerror((int)nread));
    parley__link_close(l, parley_err_from_uv((int)nread));
  }
}
