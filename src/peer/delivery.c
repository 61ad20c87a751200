/*
 * delivery.c — moving messages between peers: links to other peers (opened
 * on demand, kept), publishing to a topic's subscribers and direct sends,
 * receiving (check, de-duplicate, store, acknowledge after commit), acks,
 * and the outbox of acknowledged-mode deliveries retried with back-off.
 * Every message published extends the channel's hash chain
 * (crypto/chain.h); sync.c signs it and relays it.  Direct messages are
 * sealed end to end (dm.c) before anything is stored; keys that claim a
 * trusted peer's name are refused both ways (trust.c); each peer may send
 * us at most cfg.peer_rate messages a second (burst cfg.peer_burst).
 */
#include "peer/node_int.h"
#include "crypto/groupkey.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "crypto/chain.h"
#include "crypto/e2e.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000
#define MAX_PENDING_ASYNC 10000
#define OUTBOX_BATCH 512
#define ROUTE_WAIT_MAX_MS 3000

static uint64_t backoff_ms(uint32_t attempts) {
  uint64_t d = RETRY_FIRST_MS;
  while (attempts-- > 0 && d < RETRY_MAX_MS)
    d *= 2;
  return d < RETRY_MAX_MS ? d : RETRY_MAX_MS;
}

struct parley_link *parley__peer_link(const struct rpeer *p) {
  for (struct plink *pl = p->links; pl; pl = pl->next)
    if (pl->open)
      return pl->link;
  return NULL;
}

static void plink_unlink(struct plink *pl) {
  struct rpeer *p = pl->peer;
  if (p == NULL)
    return;
  if (pl->prev)
    pl->prev->next = pl->next;
  else
    p->links = pl->next;
  if (pl->next)
    pl->next->prev = pl->prev;
  pl->prev = pl->next = NULL;
  pl->peer = NULL;
}

static void plink_push_front(struct rpeer *p, struct plink *pl) {
  pl->peer = p;
  pl->prev = NULL;
  pl->next = p->links;
  if (p->links)
    p->links->prev = pl;
  p->links = pl;
}

/* Frees a peer record; its links are detached from the node first so that
 * their close callbacks (which come later, from the net) touch nothing. */
void parley__rpeer_free(struct rpeer *p) {
  struct plink *pl = p->links;
  while (pl) {
    struct plink *next = pl->next;
    pl->node = NULL;
    pl->peer = NULL;
    pl->prev = pl->next = NULL;
    parley_link_close(pl->link, PARLEY_ECANCELED);
    pl = next;
  }
  p->links = NULL;
  while (p->pending) {
    struct pending_msg *pm = p->pending;
    p->pending = pm->next;
    parley_free(pm);
  }
  parley_free(p);
}

static int send_msg(struct parley_node *n, struct rpeer *p,
                    const struct parley_msg *m, int ack_req) {
  struct parley_link *l = parley__peer_link(p);
  struct parley_frame f;
  int rc;

  if (l == NULL)
    return PARLEY_ECLOSED;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_MSG;
  f.u.msg.flags = (uint8_t)((m->flags & ~PARLEY_MSG_ACK_REQ) |
                            (ack_req ? PARLEY_MSG_ACK_REQ : 0));
  /* Our own message without a chain value (a topic without history) goes
   * without the 64 bytes the receiver learns from the link anyway. */
  if (m->chain == NULL && memcmp(m->publisher, n->id.pk, 32) == 0 &&
      (parley_link_remote_caps(l) & PARLEY_CAP_BRIEF))
    f.u.msg.flags |= PARLEY_MSG_BRIEF;
  f.u.msg.publisher = m->publisher;
  f.u.msg.channel.ptr = m->channel;
  f.u.msg.channel.len = m->channel_len;
  f.u.msg.seq = m->seq;
  f.u.msg.ts_ms = (uint64_t)m->ts_ms;
  f.u.msg.body = m->body;
  f.u.msg.body_len = (uint32_t)m->body_len;
  f.u.msg.chain = m->chain; /* NULL (stored before chains) sends zeros */
  rc = parley_link_send(l, &f);
  if (rc == PARLEY_ELIMIT) {
    /* Its queue is full: acked deliveries stay in the outbox and are
     * retried, fire-and-forget ones are dropped and counted. */
    n->m.backpressure++;
    p->m_backpressure++;
  }
  return rc;
}

void parley__peer_try_dial(struct parley_node *n, struct rpeer *p) {
  char host[PARLEY_MAX_ADDR + 1];
  uint16_t port;
  struct plink *pl;
  int rc;

  if (n->closing || p->dialling || parley__peer_link(p) != NULL)
    return;
  if (parley_mono_ms() < p->next_dial_ms)
    return;
  if (p->addr[0] == '\0' ||
      parley_parse_hostport(p->addr, host, sizeof host, &port) < 0) {
    parley__ic_lookup(n, p);
    return;
  }
  pl = parley_calloc(1, sizeof *pl);
  if (pl == NULL)
    return;
  pl->node = n;
  rc = parley_net_connect(n->net, host, port, p->pk, &n->peer_cbs, pl,
                          &pl->link);
  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "dial %s at %s: %s", p->id, p->addr,
               parley_strerror(rc));
    parley_free(pl);
    p->dial_failures++;
    p->next_dial_ms = parley_mono_ms() + backoff_ms(p->dial_failures);
    return;
  }
  p->dialling = 1;
  /* Not open yet: appended behind any open link. */
  plink_push_front(p, pl);
}

/* ---- outbox ------------------------------------------------------------ */

struct resend_ctx {
  struct parley_node *n;
  int64_t now;
  uint32_t sent;
};

static int resend_one(void *ctx, const struct parley_outbox_entry *e,
                      const struct parley_msg *m) {
  struct resend_ctx *c = ctx;
  struct parley_node *n = c->n;
  struct rpeer *p = parley__node_peer(n, e->recipient, 1);
  int rc;

  if (p == NULL)
    return PARLEY_ENOMEM;
  if (p->impostor) {
    /* A key claiming a trusted peer's name gets nothing; the row waits
     * (the claim may stop) or expires with the retention window. */
  } else if (parley__peer_link(p) != NULL) {
    rc = send_msg(n, p, m, 1);
    if (rc == PARLEY_ELIMIT)
      return 0; /* back-pressure: stays due, tried again next tick */
    if (rc == PARLEY_OK) {
      c->sent++;
      if (e->attempts > 0)
        n->m.retries++;
    }
  } else {
    parley__peer_try_dial(n, p);
  }
  rc = parley_store_outbox_reschedule(n->store, e->id, e->attempts + 1,
                                      c->now + (int64_t)backoff_ms(e->attempts));
  return rc < 0 ? rc : 0;
}

void parley__outbox_kick_peer(struct parley_node *n, struct rpeer *p) {
  struct resend_ctx c = {n, parley_now_ms(), 0};
  int rc;

  if (parley__peer_link(p) == NULL) {
    parley__peer_try_dial(n, p);
    return;
  }
  if (parley__node_tx(n) < 0)
    return;
  rc = parley_store_outbox_for(n->store, p->pk, resend_one, &c);
  if (rc < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "outbox for %s: %s", p->id,
               parley_strerror(rc));
  else if (c.sent)
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "resent %u queued to %s", c.sent,
               p->id);
}

/* ---- publish ----------------------------------------------------------- */

static void ackwait_free(struct ackwait *w) { parley_free(w); }

/* One allocation: the struct, then its per-subscriber arrays, widest
 * element first so that each stays aligned. */
static struct ackwait *ackwait_new(uint32_t nrcpt) {
  size_t k = nrcpt ? nrcpt : 1;
  struct ackwait *w;
  uint8_t *p;

  if (k > (SIZE_MAX - sizeof *w) / (32 + 4 + 2 + 1 + 1))
    return NULL;
  w = parley_calloc(1, sizeof *w + k * (32 + 4 + 2 + 1 + 1));
  if (w == NULL)
    return NULL;
  p = (uint8_t *)(w + 1);
  w->lat_ms = (uint32_t *)p;
  p += k * sizeof *w->lat_ms;
  w->status = (uint16_t *)p;
  p += k * sizeof *w->status;
  w->subs = (uint8_t(*)[32])p;
  p += k * 32;
  w->acked = p;
  w->refused = p + k;
  return w;
}

/* The key of an ackwait in n->ackwait_by: seq (8 bytes) then the channel.
 * Returns its length. */
static size_t ackwait_key(const char *channel, uint64_t seq,
                          uint8_t key[8 + CHANNEL_MAX]) {
  size_t len = strlen(channel);
  memcpy(key, &seq, 8);
  memcpy(key + 8, channel, len);
  return 8 + len;
}

static void ackwait_unlink(struct parley_node *n, struct ackwait *w) {
  uint8_t key[8 + CHANNEL_MAX];
  size_t klen = ackwait_key(w->channel, w->seq, key);

  if (parley_map_get(&n->ackwait_by, key, klen) == w)
    (void)parley_map_del(&n->ackwait_by, key, klen);
  if (w->prev)
    w->prev->next = w->next;
  else if (n->ackwaits == w)
    n->ackwaits = w->next;
  if (w->next)
    w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

static void ackwait_gone(void *data, struct parley_http_req *r) {
  struct ackwait *w = data;
  w->req = NULL; /* keep waiting for the acks; nobody to tell */
}

static void finish(struct parley_node *n, struct ackwait *w, int timed_out) {
  if (w->req) {
    parley_http_set_close_cb(w->req, NULL, NULL);
    parley__api_publish_result(n, w, timed_out);
  } else if (w->cb != NULL) {
    uint32_t refused = 0;
    int rc = PARLEY_OK;
    for (uint32_t i = 0; i < w->nsubs; i++)
      refused += w->refused[i];
    if (w->ack_mode && refused > 0)
      rc = PARLEY_EDENIED;
    else if (w->ack_mode && w->nacked < w->nsubs)
      rc = PARLEY_ETIMEDOUT;
    w->cb(w->cb_ctx, rc, w->nsubs, w->nacked - refused, refused);
  }
  ackwait_free(w);
}

/* Ends a publish that never got as far as an ackwait. */
static void wp_fail(struct waiting_pub *wp, unsigned status, int rc,
                    const char *text) {
  if (wp->req) {
    parley_http_set_close_cb(wp->req, NULL, NULL);
    parley__api_error(wp->req, status, rc, text);
  } else if (wp->cb != NULL) {
    wp->cb(wp->cb_ctx, rc, 0, 0, 0);
  }
}

/* Stores and sends one message to the given recipients, then answers the
 * API request (now for fire-and-forget, once acked otherwise).  Returns 1
 * if the answer comes later, 0 if it was given, or an error (nothing sent,
 * caller answers). */
static int do_publish(struct parley_node *n, struct parley_http_req *req,
                      parley_node_pub_cb cb, void *cb_ctx,
                      const char *channel, const uint8_t *body, size_t len,
                      uint32_t flags, int ack_mode, uint64_t timeout_ms,
                      struct rpeer **rcpt, uint32_t nrcpt) {
  struct parley_msg m;
  struct parley_chain_msg cm;
  struct ackwait *w;
  int64_t rowid = 0, now = parley__turn_wall_ms(n);
  uint64_t seq = 0;
  const uint8_t *wire_body = body;
  size_t wire_len = len, env_len = 0;
  uint32_t wire_flags = flags & (PARLEY_MSG_DIRECT | PARLEY_MSG_BINARY);
  uint8_t *env = NULL;
  uint8_t chain[PARLEY_CHAIN_HASH], digest[PARLEY_CHAIN_HASH];
  int rc;

  if (ack_mode && n->outbox_depth + nrcpt > n->cfg.max_outbox)
    return PARLEY_ELIMIT;
  w = ackwait_new(nrcpt);
  if (w == NULL)
    return PARLEY_ENOMEM;
  /* Sequence number and chain value move together, in this turn's
   * transaction: head (seq - 1, h) -> (seq, next(h, digest)). */
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK)
    rc = parley_store_chain_head(n->store, channel, &seq, chain);
  if (rc == PARLEY_OK)
    seq++;
  /* A direct message is sealed for its recipient (and, as the sender
   * copy, for us) with the seq and ts it will carry; from here on the
   * envelope is the message body everywhere: in the chain, the store, the
   * outbox and on the wire. */
  if (rc == PARLEY_OK && (flags & PARLEY_MSG_DIRECT)) {
    rc = parley__dm_seal(n, channel, seq, (uint64_t)now, body, len, flags,
                         &env, &env_len);
    if (rc == PARLEY_OK) {
      wire_body = env;
      wire_len = env_len;
      wire_flags = PARLEY_MSG_DIRECT | PARLEY_MSG_BINARY;
    }
  } else if (rc == PARLEY_OK) {
    /* A private topic's message is sealed under the topic key the same
     * way: ciphertext in the chain, the store, the outbox and on the
     * wire (ptopic.c). */
    rc = parley__ptopic_seal(n, channel, seq, (uint64_t)now, body, len,
                             flags, &env, &env_len, &wire_flags);
    if (rc == 1) {
      wire_body = env;
      wire_len = env_len;
      rc = PARLEY_OK;
    }
  }
  if (rc == PARLEY_OK) {
    memset(&cm, 0, sizeof cm);
    cm.publisher = n->id.pk;
    cm.channel = channel;
    cm.channel_len = strlen(channel);
    cm.seq = seq;
    cm.ts_ms = (uint64_t)now;
    cm.flags = wire_flags;
    cm.body = wire_body;
    cm.body_len = wire_len;
    rc = parley_chain_digest(&cm, digest);
  }
  if (rc == PARLEY_OK) {
    parley_chain_next(chain, digest, chain);
    rc = parley_store_chain_advance(n->store, channel, seq, chain);
  }
  if (rc < 0) {
    parley_free(env);
    ackwait_free(w);
    return rc;
  }
  memset(&m, 0, sizeof m);
  m.publisher = n->id.pk;
  m.channel = channel;
  m.channel_len = strlen(channel);
  m.seq = seq;
  m.ts_ms = now;
  m.flags = wire_flags;
  m.body = wire_body;
  m.body_len = wire_len;
  m.outgoing = 1;
  m.stored_ms = now;
  m.chain = chain;
  rc = parley_store_put_message(n->store, &m, &rowid);
  if (rc < 0) {
    parley_free(env);
    ackwait_free(w);
    return rc;
  }
  w->node = n;
  w->req = req;
  w->cb = cb;
  w->cb_ctx = cb_ctx;
  snprintf(w->channel, sizeof w->channel, "%s", channel);
  w->seq = seq;
  w->rowid = rowid;
  w->direct = (flags & PARLEY_MSG_DIRECT) != 0;
  w->ack_mode = ack_mode;
  w->nsubs = nrcpt;
  w->started_ms = parley_mono_ms();
  w->deadline_ms = w->started_ms + timeout_ms;

  for (uint32_t i = 0; i < nrcpt; i++) {
    struct rpeer *p = rcpt[i];
    memcpy(w->subs[i], p->pk, 32);
    if (ack_mode) {
      /* The first retry is due a second from now; the send below is the
       * first attempt. */
      rc = parley_store_outbox_add(n->store, rowid, p->pk,
                                   now + RETRY_FIRST_MS);
      if (rc < 0) {
        PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "outbox add: %s",
                   parley_strerror(rc));
        continue;
      }
      n->outbox_depth++;
    }
    rc = send_msg(n, p, &m, ack_mode);
    if (rc == PARLEY_OK)
      continue;
    if (!ack_mode) {
      if (rc == PARLEY_ECLOSED && p->npending < MAX_PENDING_ASYNC) {
        struct pending_msg *pm = parley_calloc(1, sizeof *pm);
        if (pm) {
          snprintf(pm->channel, sizeof pm->channel, "%s", channel);
          pm->seq = seq;
          *p->pending_tail = pm;
          p->pending_tail = &pm->next;
          p->npending++;
        } else {
          n->m.async_dropped++;
          p->m_dropped++;
        }
      } else {
        n->m.async_dropped++;
        p->m_dropped++;
      }
    }
    parley__peer_try_dial(n, p);
  }
  parley_free(env);
  n->m.published++;
  n->m.bytes_published += len;
  parley__report_count(n, channel, 0, len, -1.0);
  if (w->direct)
    n->m.direct_sent++;
  /* After the MSG frames, so a checkpoint never overtakes its message. */
  parley__sync_published(n, channel, seq, chain);

  if (!ack_mode || nrcpt == 0) {
    finish(n, w, 0);
    return 0;
  }
  {
    uint8_t key[8 + CHANNEL_MAX];
    size_t klen = ackwait_key(w->channel, w->seq, key);
    /* Out of memory here only costs the answer: on_ack then finds
     * nothing and the publish ends at its deadline; the deliveries stay
     * in the outbox and are retried as usual. */
    if (parley_map_put(&n->ackwait_by, key, klen, w, NULL) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
                 "out of memory: %s#%llu will be answered at its deadline",
                 w->channel, (unsigned long long)w->seq);
  }
  w->next = n->ackwaits;
  if (n->ackwaits)
    n->ackwaits->prev = w;
  n->ackwaits = w;
  if (req)
    parley_http_set_close_cb(req, ackwait_gone, w);
  return 1;
}

/* Queues a copy of m (one allocation: the entry, the message, its body)
 * for when p's link opens. */
static int pending_copy(struct rpeer *p, const struct parley_msg *m) {
  struct pending_msg *pm =
      parley_calloc(1, sizeof *pm + sizeof *pm->copy + m->body_len + 1);
  uint8_t *body;

  if (pm == NULL)
    return PARLEY_ENOMEM;
  pm->copy = (struct parley_msg *)(pm + 1);
  body = (uint8_t *)(pm->copy + 1);
  memcpy(body, m->body, m->body_len);
  *pm->copy = *m;
  snprintf(pm->channel, sizeof pm->channel, "%s", m->channel);
  pm->copy->channel = pm->channel;
  pm->copy->body = body;
  pm->seq = m->seq;
  *p->pending_tail = pm;
  p->pending_tail = &pm->next;
  p->npending++;
  return PARLEY_OK;
}

/* A topic without history: nothing is stored, no sequence is kept in the
 * store, nobody is waited for.  The fan-out loop sends one frame per
 * subscriber link (the link layer batches them into records per loop
 * turn); the library path allocates nothing per message. */
static int publish_ephemeral(struct parley_node *n,
                             struct parley_http_req *req,
                             parley_node_pub_cb cb, void *cb_ctx,
                             struct route *r, struct nohist *h,
                             const uint8_t *body, size_t len,
                             uint32_t flags) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  struct parley_msg m;
  struct ackwait *w = NULL;
  uint8_t *env = NULL;
  size_t env_len = 0;
  uint32_t wire_flags = flags & PARLEY_MSG_BINARY, k = 0;
  int64_t now = parley__turn_wall_ms(n);
  uint64_t seq = h->seq + 1;
  int rc = parley__ptopic_seal(n, r->topic, seq, (uint64_t)now, body, len,
                               flags, &env, &env_len, &wire_flags);

  if (rc < 0)
    return rc;
  if (req != NULL) {
    w = ackwait_new(r->subs.count);
    if (w == NULL) {
      parley_free(env);
      return PARLEY_ENOMEM;
    }
  }
  h->seq = seq;
  memset(&m, 0, sizeof m);
  m.publisher = n->id.pk;
  m.channel = r->topic;
  m.channel_len = r->topic_len;
  m.seq = seq;
  m.ts_ms = now;
  m.flags = wire_flags;
  m.body = env != NULL ? env : body;
  m.body_len = env != NULL ? env_len : len;
  m.outgoing = 1;
  parley_map_iter_init(&it, &r->subs);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct rpeer *p = e->value;
    if (p->impostor) {
      n->m.key_changed_refused++;
      continue;
    }
    if (w != NULL)
      memcpy(w->subs[k], p->pk, 32);
    k++;
    rc = send_msg(n, p, &m, 0);
    if (rc == PARLEY_ECLOSED && p->npending < MAX_PENDING_ASYNC &&
        pending_copy(p, &m) == PARLEY_OK) {
      parley__peer_try_dial(n, p); /* sent when the link opens */
    } else if (rc < 0) {
      n->m.async_dropped++;
      p->m_dropped++;
      if (rc == PARLEY_ECLOSED)
        parley__peer_try_dial(n, p);
    }
  }
  parley_free(env);
  n->m.published++;
  n->m.bytes_published += len;
  parley__report_count(n, r->topic, 0, len, -1.0);
  if (w != NULL) {
    w->node = n;
    w->req = req;
    snprintf(w->channel, sizeof w->channel, "%s", r->topic);
    w->seq = seq;
    w->nsubs = k;
    finish(n, w, 0);
  } else if (cb != NULL) {
    cb(cb_ctx, PARLEY_OK, k, 0, 0);
  }
  return 0;
}

static int publish_to_route(struct parley_node *n, struct parley_http_req *req,
                            parley_node_pub_cb cb, void *cb_ctx,
                            struct route *r, const uint8_t *body, size_t len,
                            uint32_t flags, int ack_mode,
                            uint64_t timeout_ms) {
  struct nohist *h = parley__nohist(n, r->topic, r->topic_len);
  struct rpeer **rcpt;
  struct parley_map_iter it;
  struct parley_map_entry *e;
  uint32_t k = 0;
  int rc;

  if (h != NULL)
    return ack_mode ? PARLEY_EINVAL
                    : publish_ephemeral(n, req, cb, cb_ctx, r, h, body, len,
                                        flags);

  rcpt = parley_calloc(r->subs.count ? r->subs.count : 1, sizeof *rcpt);
  if (rcpt == NULL)
    return PARLEY_ENOMEM;
  parley_map_iter_init(&it, &r->subs);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct rpeer *p = e->value;
    if (p->impostor) {
      n->m.key_changed_refused++; /* not a recipient: nothing is sent */
      continue;
    }
    rcpt[k++] = p;
  }
  rc = do_publish(n, req, cb, cb_ctx, r->topic, body, len, flags, ack_mode,
                  timeout_ms, rcpt, k);
  parley_free(rcpt);
  return rc;
}

static void waiting_release(struct parley_node *n, struct route *r,
                            struct waiting_pub *wp) {
  int rc = publish_to_route(n, wp->req, wp->cb, wp->cb_ctx, r, wp->body,
                            wp->body_len, wp->flags, wp->ack_mode,
                            wp->timeout_ms);
  if (rc < 0)
    wp_fail(wp, parley__api_status_for(rc), rc,
            rc == PARLEY_EUNAVAIL ? "no key for the private "
                                    "topic's current epoch yet"
                                  : "publish failed");
  parley_free(wp->body);
  parley_free(wp);
}

void parley__deliver_route_denied(struct parley_node *n, struct route *r) {
  struct waiting_pub *wp = r->waiting;
  (void)n;
  r->waiting = NULL;
  r->waiting_tail = NULL;
  while (wp) {
    struct waiting_pub *next = wp->next;
    wp_fail(wp, 403, PARLEY_EDENIED, "private topic: not a member");
    parley_free(wp->body);
    parley_free(wp);
    wp = next;
  }
}

void parley__deliver_route_ready(struct parley_node *n, struct route *r) {
  struct waiting_pub *wp = r->waiting;
  r->waiting = NULL;
  r->waiting_tail = NULL;
  while (wp) {
    struct waiting_pub *next = wp->next;
    if (wp->req)
      parley_http_set_close_cb(wp->req, NULL, NULL);
    waiting_release(n, r, wp);
    wp = next;
  }
}

static void waiting_gone(void *data, struct parley_http_req *r) {
  struct waiting_pub *wp = data;
  wp->req = NULL;
}

static int publish_any(struct parley_node *n, struct parley_http_req *req,
                       parley_node_pub_cb cb, void *cb_ctx,
                       const char *channel, const uint8_t *body, size_t len,
                       uint32_t flags, int ack_mode, uint64_t timeout_ms) {
  struct waiting_pub *wp;
  struct route *r;

  if (flags & PARLEY_MSG_DIRECT) {
    uint8_t pk[32];
    struct rpeer *p;
    if (parley_id_decode(channel + 1, pk) < 0)
      return PARLEY_EINVAL;
    p = parley__node_peer(n, pk, 1);
    if (p == NULL)
      return PARLEY_ENOMEM;
    if (p->impostor) {
      n->m.key_changed_refused++;
      return PARLEY_EAUTH;
    }
    return do_publish(n, req, cb, cb_ctx, channel, body, len, flags, 1,
                      timeout_ms, &p, 1);
  }
  r = parley__route_get(n, channel);
  if (r == NULL)
    return PARLEY_ENOMEM;
  if (r->denied)
    return PARLEY_EDENIED; /* a private topic we are not a member of */
  if (ack_mode && parley__nohist(n, channel, strlen(channel)) != NULL)
    return PARLEY_EINVAL; /* no history: fire-and-forget only */
  if (r->have_list)
    return publish_to_route(n, req, cb, cb_ctx, r, body, len, flags,
                            ack_mode, timeout_ms);
  /* First publish to this topic: wait (briefly) for its subscriber list. */
  wp = parley_calloc(1, sizeof *wp);
  if (wp == NULL)
    return PARLEY_ENOMEM;
  wp->body = parley_malloc(len ? len : 1);
  if (wp->body == NULL) {
    parley_free(wp);
    return PARLEY_ENOMEM;
  }
  memcpy(wp->body, body, len);
  wp->body_len = len;
  wp->req = req;
  wp->cb = cb;
  wp->cb_ctx = cb_ctx;
  wp->flags = flags;
  wp->ack_mode = ack_mode;
  wp->timeout_ms = timeout_ms;
  wp->deadline_ms = parley_mono_ms() +
                    (timeout_ms < ROUTE_WAIT_MAX_MS ? timeout_ms
                                                    : ROUTE_WAIT_MAX_MS);
  snprintf(wp->channel, sizeof wp->channel, "%s", channel);
  /* Appended: released in publish order. */
  wp->next = NULL;
  if (r->waiting == NULL || r->waiting_tail == NULL)
    r->waiting_tail = &r->waiting;
  *r->waiting_tail = wp;
  r->waiting_tail = &wp->next;
  if (req)
    parley_http_set_close_cb(req, waiting_gone, wp);
  return 1;
}

int parley__publish(struct parley_node *n, struct parley_http_req *req,
                    const char *channel, const uint8_t *body, size_t len,
                    uint32_t flags, int ack_mode, uint64_t timeout_ms) {
  return publish_any(n, req, NULL, NULL, channel, body, len, flags, ack_mode,
                     timeout_ms);
}

int parley__publish_cb(struct parley_node *n, const char *channel,
                       const uint8_t *body, size_t len, uint32_t flags,
                       int ack_mode, uint64_t timeout_ms,
                       parley_node_pub_cb cb, void *ctx) {
  return publish_any(n, NULL, cb, ctx, channel, body, len, flags, ack_mode,
                     timeout_ms);
}

void parley__ackwait_cancel_all(struct parley_node *n) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  while (n->ackwaits) {
    struct ackwait *w = n->ackwaits;
    ackwait_unlink(n, w);
    finish(n, w, 1);
  }
  parley_map_iter_init(&it, &n->routes);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct route *r = e->value;
    r->waiting_tail = NULL;
    while (r->waiting) {
      struct waiting_pub *wp = r->waiting;
      r->waiting = wp->next;
      wp_fail(wp, 503, PARLEY_ECANCELED, "daemon shutting down");
      parley_free(wp->body);
      parley_free(wp);
    }
  }
}

/* ---- receiving ----------------------------------------------------------- */

static void queue_ack(struct parley_node *n, const uint8_t to[32],
                      const struct parley_frame *f, int status) {
  struct ack_out *a;
  if (f->u.msg.channel.len >= CHANNEL_MAX)
    return;
  if (n->nacks == n->cap_acks) {
    size_t nc = n->cap_acks ? n->cap_acks * 2 : 64;
    struct ack_out *na = parley_realloc(n->acks, nc * sizeof *na);
    if (na == NULL)
      return; /* the publisher will retry and we ack the duplicate */
    n->acks = na;
    n->cap_acks = nc;
  }
  a = &n->acks[n->nacks++];
  memcpy(a->to, to, 32);
  memcpy(a->publisher, f->u.msg.publisher, 32);
  memcpy(a->channel, f->u.msg.channel.ptr, f->u.msg.channel.len);
  a->channel[f->u.msg.channel.len] = '\0';
  a->seq = f->u.msg.seq;
  a->status = (uint16_t)(status < 0 ? -status : 0);
}

void parley__flush_acks(struct parley_node *n) {
  for (size_t i = 0; i < n->nacks; i++) {
    struct ack_out *a = &n->acks[i];
    struct rpeer *p = parley__node_peer(n, a->to, 0);
    struct parley_link *l = p ? parley__peer_link(p) : NULL;
    struct parley_frame f;

    if (l == NULL)
      continue; /* the publisher retries; we ack the duplicate then */
    memset(&f, 0, sizeof f);
    f.type = PARLEY_FRAME_ACK;
    f.u.ack.publisher = a->publisher;
    f.u.ack.channel.ptr = a->channel;
    f.u.ack.channel.len = strlen(a->channel);
    f.u.ack.seq = a->seq;
    f.u.ack.status = a->status;
    if (parley_link_send(l, &f) == PARLEY_OK)
      n->m.acks_sent++;
  }
  n->nacks = 0;
}

static int chain_is_zero(const uint8_t *c) {
  uint8_t acc = 0;
  for (size_t i = 0; i < PARLEY_CHAIN_HASH; i++)
    acc |= c[i];
  return acc == 0;
}

/* Takes one message's token from p's bucket (cfg.peer_rate a second, at
 * most cfg.peer_burst saved up); 0 when it is empty. */
static int rate_take(struct parley_node *n, struct rpeer *p) {
  uint64_t now = parley__turn_mono_ms(n);
  uint64_t cap = (uint64_t)n->cfg.peer_burst * 1000u;

  if (p->rl_refill_ms == 0) {
    p->rl_tokens = cap;
  } else if (now > p->rl_refill_ms) {
    uint64_t dt = now - p->rl_refill_ms;
    if (dt > 3600u * 1000u)
      dt = 3600u * 1000u;
    /* peer_rate tokens a second = peer_rate milli-tokens a millisecond */
    p->rl_tokens += dt * n->cfg.peer_rate;
    if (p->rl_tokens > cap)
      p->rl_tokens = cap;
  }
  p->rl_refill_ms = now;
  if (p->rl_tokens < 1000u)
    return 0;
  p->rl_tokens -= 1000u;
  return 1;
}

/* A message refused by the rate limit: an acked one is answered ELIMIT
 * (its publisher keeps it queued and retries with back-off), a
 * fire-and-forget one is dropped; both are counted. */
static void rate_refuse(struct parley_node *n, struct rpeer *p,
                        const struct parley_frame *f, int ack) {
  uint64_t now = parley_mono_ms();

  p->m_limited++;
  if (ack) {
    n->m.limited_ack++;
    queue_ack(n, p->pk, f, PARLEY_ELIMIT);
  } else {
    n->m.limited_async++;
  }
  if (p->rl_logged_ms == 0 || now - p->rl_logged_ms >= 10000) {
    p->rl_logged_ms = now;
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "%s sends more than %u messages a second: refusing (%llu so "
               "far)",
               p->id, n->cfg.peer_rate, (unsigned long long)p->m_limited);
  }
}

/* The end-to-end part of receiving a direct message: opens it into
 * *plain (body in *buf).  Returns PARLEY_OK, or the status to answer
 * (having counted and logged it), or PARLEY_ESTORE-like errors for which
 * nothing is answered (the publisher retries). */
static int open_direct(struct parley_node *n, struct rpeer *p,
                       const struct parley_frame *f, const char *channel,
                       struct parley_msg *m, uint8_t **buf, size_t *buf_len,
                       int *order) {
  uint32_t flags = 0;
  int rc = parley__dm_open(n, p, f, channel, buf, buf_len, &m->body,
                           &m->body_len, &flags, order);

  if (rc == PARLEY_OK) {
    m->flags = flags;
    return PARLEY_OK;
  }
  switch (rc) {
  case PARLEY_EEXIST:
    n->m.e2e_replays++;
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "direct message #%llu from %s seen before: refused as a "
               "replay",
               (unsigned long long)f->u.msg.seq, p->id);
    return rc;
  case PARLEY_ECRYPTO:
  case PARLEY_EPROTO:
  case PARLEY_EINVAL:
  case PARLEY_ETOOBIG:
    n->m.e2e_rejected++;
    n->m.rejected++;
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "direct message #%llu from %s refused: %s (tampered, "
               "replayed under another seq, or not sealed for us)",
               (unsigned long long)f->u.msg.seq, p->id, parley_strerror(rc));
    return rc;
  default:
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "open direct message: %s",
               parley_strerror(rc));
    return PARLEY_ESTORE;
  }
}

static void on_msg(struct parley_node *n, struct plink *pl,
                   const struct parley_frame *f) {
  static const uint8_t no_chain[32];
  struct parley_frame brief;
  struct rpeer *p = pl->peer;
  const struct parley_str *ch = &f->u.msg.channel;
  char channel[CHANNEL_MAX];
  struct parley_msg m;
  uint8_t *buf = NULL;
  size_t buf_len = 0, max_body = n->cfg.max_message;
  int64_t now;
  int rc = PARLEY_OK, ack = (f->u.msg.flags & PARLEY_MSG_ACK_REQ) != 0;
  int direct = (f->u.msg.flags & PARLEY_MSG_DIRECT) != 0, order = 0;

  /* A brief MSG is the link's remote peer's, without a chain value. */
  if (f->u.msg.flags & PARLEY_MSG_BRIEF) {
    brief = *f;
    brief.u.msg.flags &= (uint8_t)~PARLEY_MSG_BRIEF;
    brief.u.msg.publisher = p->pk;
    brief.u.msg.chain = no_chain;
    f = &brief;
  }
  /* A MSG comes from its publisher only; relayed messages travel in
   * SYNC_BATCH frames with the publisher's signed checkpoint (sync.c). */
  if (memcmp(f->u.msg.publisher, p->pk, 32) != 0) {
    parley_link_fail(pl->link, 0, PARLEY_EAUTH,
                     "publisher key differs from the link's");
    n->m.rejected++;
    return;
  }
  if (ch->len == 0 || ch->len >= CHANNEL_MAX) {
    parley_link_fail(pl->link, 0, PARLEY_EPROTO, "bad channel");
    n->m.rejected++;
    return;
  }
  if (!rate_take(n, p)) {
    rate_refuse(n, p, f, ack);
    return;
  }
  memcpy(channel, ch->ptr, ch->len);
  channel[ch->len] = '\0';
  if (direct) {
    max_body = parley__dm_envelope_len(n->cfg.max_message);
    if (max_body == 0) /* --max-message past what one envelope holds */
      max_body = PARLEY_E2E_MAX_LEN;
  } else if (f->u.msg.flags & PARLEY_MSG_PRIVATE) {
    max_body += PARLEY_GROUPKEY_MSG_OVERHEAD + 1; /* content byte */
  }
  if (p->impostor) {
    rc = PARLEY_EAUTH; /* claims a trusted peer's name: trust.c */
    n->m.key_changed_refused++;
  } else if (direct) {
    char mine[CHANNEL_MAX];
    parley__direct_channel(n->id.pk, mine);
    if (strcmp(mine, channel) != 0)
      rc = PARLEY_EDENIED;
  } else if (!parley_topic_valid(channel, ch->len, PARLEY_MAX_TOPIC)) {
    rc = PARLEY_EINVAL;
  } else if (parley_map_get_memo(&n->subs, &n->subs_memo, channel,
                                 ch->len) == NULL) {
    rc = PARLEY_EDENIED; /* not (or no longer) subscribed */
  } else {
    /* Private topics: a member's sealed message only (ptopic.c). */
    rc = parley__ptopic_check(n, p->pk, channel, f->u.msg.seq,
                              f->u.msg.ts_ms, f->u.msg.flags, f->u.msg.body,
                              f->u.msg.body_len);
  }
  if (rc == PARLEY_OK && f->u.msg.body_len > max_body)
    rc = PARLEY_ETOOBIG;
  /* A direct message's body is an envelope: its text is checked once
   * opened. */
  if (rc == PARLEY_OK && direct && (f->u.msg.flags & PARLEY_MSG_PRIVATE))
    rc = PARLEY_EPROTO;
  if (rc == PARLEY_OK && !direct && !(f->u.msg.flags & PARLEY_MSG_BINARY) &&
      !parley_utf8_valid(f->u.msg.body, f->u.msg.body_len))
    rc = PARLEY_EINVAL;
  if (rc < 0) {
    n->m.rejected++;
    PARLEY_LOG(&n->log, PARLEY_LOG_INFO, "refused message %s#%llu from %s: %s",
               channel, (unsigned long long)f->u.msg.seq, p->id,
               parley_strerror(rc));
    if (ack)
      queue_ack(n, p->pk, f, rc);
    return;
  }

  now = parley__turn_wall_ms(n);
  memset(&m, 0, sizeof m);
  m.publisher = f->u.msg.publisher;
  m.channel = channel;
  m.channel_len = ch->len;
  m.seq = f->u.msg.seq;
  m.ts_ms = (int64_t)f->u.msg.ts_ms;
  m.flags = f->u.msg.flags &
            (PARLEY_MSG_DIRECT | PARLEY_MSG_BINARY | PARLEY_MSG_PRIVATE);
  m.body = f->u.msg.body;
  m.body_len = f->u.msg.body_len;
  m.outgoing = 0;
  m.stored_ms = now;
  /* Kept so that this node can relay the message later; all zeros is
   * "no chain value". */
  m.chain = chain_is_zero(f->u.msg.chain) ? NULL : f->u.msg.chain;
  if (!direct && parley__nohist(n, channel, ch->len) != NULL) {
    /* No history: to the application and the live streams only.  An ACK
     * asked for means "delivered" here; nothing is stored to deduplicate
     * a retransmission against. */
    n->m.received++;
    p->m_received++;
    n->m.bytes_received += m.body_len;
    if (now >= m.ts_ms)
      parley_histogram_observe(&n->m.delivery_latency,
                               (double)(now - m.ts_ms) / 1000.0);
    parley__report_count(n, m.channel, 1, m.body_len,
                         now >= m.ts_ms ? (double)(now - m.ts_ms) / 1000.0
                                        : -1.0);
    parley__deliver_app(n, &m);
    if (ack)
      queue_ack(n, p->pk, f, PARLEY_OK);
    return;
  }
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK && direct) {
    /* The recipient keeps the opened plaintext, like any messaging
     * client's history (docs/internals/E2E.md, "Integration"); the
     * chain value covered the envelope and direct messages are never
     * relayed, so none is kept. */
    rc = open_direct(n, p, f, channel, &m, &buf, &buf_len, &order);
    m.chain = NULL;
    if (rc == PARLEY_ESTORE)
      return; /* no ack: the publisher retries */
    if (rc < 0) {
      if (ack)
        queue_ack(n, p->pk, f, rc);
      return;
    }
  }
  if (rc == PARLEY_OK)
    rc = parley_store_put_message(n->store, &m, &m.rowid);
  if (rc == PARLEY_EEXIST && direct) {
    /* Older than the replay window, and stored: a replay. */
    n->m.e2e_replays++;
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "direct message #%llu from %s already stored: refused as a "
               "replay",
               (unsigned long long)m.seq, p->id);
  } else if (rc == PARLEY_EEXIST) {
    n->m.duplicates++;
  } else if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "store message: %s (%s)",
               parley_strerror(rc), parley_store_errmsg(n->store));
    parley__dm_free(buf, buf_len);
    return; /* no ack: the publisher retries */
  } else {
    if (direct) {
      rc = parley__dm_accept(n, p->pk, channel, m.seq);
      if (rc < 0) {
        /* The message is stored: the store's uniqueness still refuses a
         * replay of it. */
        PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "replay window: %s",
                   parley_strerror(rc));
        rc = PARLEY_OK;
      }
      if (order == PARLEY_REPLAY_LATE)
        n->m.e2e_late++;
      else if (order == PARLEY_REPLAY_GAP)
        n->m.e2e_gaps++;
    }
    n->m.received++;
    p->m_received++;
    n->m.bytes_received += m.body_len;
    if (m.flags & PARLEY_MSG_DIRECT)
      n->m.direct_received++;
    if (now >= m.ts_ms)
      parley_histogram_observe(&n->m.delivery_latency,
                               (double)(now - m.ts_ms) / 1000.0);
    parley__report_count(n, m.channel, 1, m.body_len,
                         now >= m.ts_ms ? (double)(now - m.ts_ms) / 1000.0
                                        : -1.0);
    parley__deliver_app(n, &m);
  }
  parley__dm_free(buf, buf_len);
  if (ack)
    queue_ack(n, p->pk, f, rc == PARLEY_EEXIST && direct ? rc : PARLEY_OK);
}

static void on_ack(struct parley_node *n, struct plink *pl,
                   const struct parley_frame *f) {
  struct rpeer *p = pl->peer;
  char channel[CHANNEL_MAX];
  uint8_t key[8 + CHANNEL_MAX];
  struct ackwait *w;
  int status = -(int)f->u.ack.status, rc;
  /* EEXIST: the recipient has it already (it refused a copy as a replay):
   * delivered, not refused. */
  int refused = status != PARLEY_OK && status != PARLEY_EEXIST;

  if (memcmp(f->u.ack.publisher, n->id.pk, 32) != 0 ||
      f->u.ack.channel.len == 0 || f->u.ack.channel.len >= CHANNEL_MAX)
    return;
  memcpy(channel, f->u.ack.channel.ptr, f->u.ack.channel.len);
  channel[f->u.ack.channel.len] = '\0';
  if (status == PARLEY_ELIMIT || status == PARLEY_EUNAVAIL) {
    /* The recipient rate-limits us, or does not know a private topic's
     * access list yet: not stored.  The delivery stays in the outbox and
     * is retried with back-off. */
    n->m.slowed++;
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "%s asks us to slow down (%s#%llu)",
               p->id, channel, (unsigned long long)f->u.ack.seq);
    return;
  }
  w = parley_map_get(&n->ackwait_by, key,
                     ackwait_key(channel, f->u.ack.seq, key));
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK && w != NULL)
    rc = parley_store_outbox_ack_row(n->store, p->pk, w->rowid);
  else if (rc == PARLEY_OK) /* its publish has ended: find it by name */
    rc = parley_store_outbox_ack(n->store, p->pk, n->id.pk, channel,
                                 f->u.ack.seq);
  if (rc == PARLEY_OK) {
    n->m.acks_received++;
    if (n->outbox_depth > 0)
      n->outbox_depth--;
  } else if (rc != PARLEY_ENOTFOUND) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "outbox ack: %s",
               parley_strerror(rc));
  }
  if (f->u.ack.status != 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_INFO, "%s refused %s#%llu: %s", p->id,
               channel, (unsigned long long)f->u.ack.seq,
               parley_strerror(status));
  if (w == NULL)
    return;
  for (uint32_t i = 0; i < w->nsubs; i++) {
    if (w->acked[i] || memcmp(w->subs[i], p->pk, 32) != 0)
      continue;
    w->acked[i] = 1;
    w->refused[i] = (uint8_t)refused;
    w->status[i] = refused ? f->u.ack.status : 0;
    w->lat_ms[i] = (uint32_t)(parley_mono_ms() - w->started_ms);
    w->nacked++;
    parley_histogram_observe(&n->m.ack_latency, (double)w->lat_ms[i] / 1000.0);
  }
  if (w->nacked == w->nsubs) {
    ackwait_unlink(n, w);
    finish(n, w, 0);
  }
}

/* ---- peer link callbacks ---------------------------------------------------- */

static void send_pending(struct parley_node *n, struct rpeer *p);

static void pl_open(struct parley_link *l) {
  struct plink *pl;
  struct parley_node *n;
  struct rpeer *p;
  const char *raddr;

  if (parley_link_accepted(l)) {
    n = parley_link_data(l);
    if (n == NULL || n->closing) {
      parley_link_close(l, PARLEY_ECANCELED);
      return;
    }
    pl = parley_calloc(1, sizeof *pl);
    if (pl == NULL) {
      parley_link_close(l, PARLEY_ENOMEM);
      return;
    }
    pl->node = n;
    pl->link = l;
    parley_link_set_data(l, pl);
  } else {
    pl = parley_link_data(l);
    n = pl->node;
    if (n == NULL)
      return;
  }
  if (parley_link_remote_role(l) != PARLEY_ROLE_PEER) {
    parley_link_fail(l, 0, PARLEY_EPROTO, "expected a peer");
    return;
  }
  p = parley__node_peer(n, parley_link_remote_pk(l), 1);
  if (p == NULL) {
    parley_link_close(l, PARLEY_ENOMEM);
    return;
  }
  if (!parley_link_accepted(l)) {
    plink_unlink(pl);
    p->dialling = 0;
  }
  pl->open = 1;
  plink_push_front(p, pl);
  p->dial_failures = 0;
  p->next_dial_ms = 0;
  raddr = parley_link_remote_addr(l);
  if (p->addr[0] == '\0' && raddr[0] != '\0')
    snprintf(p->addr, sizeof p->addr, "%s", raddr);
  if (p->name[0] == '\0')
    snprintf(p->name, sizeof p->name, "%s", parley_link_remote_name(l));
  p->last_seen_ms = parley_now_ms();
  /* What it says about itself in HELLO, checked against the pinned keys
   * before anything is sent to it. */
  parley__trust_eval(n, p, parley_link_remote_name(l),
                     parley_link_remote_addr(l));
  PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "link %s %s (%s)",
             parley_link_accepted(l) ? "from" : "to", p->id,
             parley_link_peername(l));
  send_pending(n, p);
  parley__outbox_kick_peer(n, p);
  parley__sync_link_open(n, p);
}

static void pl_frame(struct parley_link *l, const struct parley_frame *f) {
  struct plink *pl = parley_link_data(l);
  struct parley_node *n = pl ? pl->node : NULL;

  if (n == NULL || pl->peer == NULL)
    return;
  switch (f->type) {
  case PARLEY_FRAME_MSG:
    on_msg(n, pl, f);
    break;
  case PARLEY_FRAME_ACK:
    on_ack(n, pl, f);
    break;
  case PARLEY_FRAME_PING: {
    struct parley_frame pong;
    memset(&pong, 0, sizeof pong);
    pong.type = PARLEY_FRAME_PONG;
    pong.u.ping.nonce = f->u.ping.nonce;
    if (parley_link_send(l, &pong) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "pong not sent");
    break;
  }
  case PARLEY_FRAME_PONG:
    break;
  case PARLEY_FRAME_CHAIN_SIG:
  case PARLEY_FRAME_SYNC_QUERY:
  case PARLEY_FRAME_SYNC_SUMMARY:
  case PARLEY_FRAME_SYNC_FETCH:
  case PARLEY_FRAME_SYNC_BATCH:
    parley__sync_frame(n, pl, f);
    break;
  case PARLEY_FRAME_ERROR:
    if (parley__sync_error(n, pl, f))
      break;
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "peer %s says: %s (%.*s)",
               pl->peer->id, parley_strerror(-(int)f->u.error.code),
               (int)f->u.error.text.len, f->u.error.text.ptr);
    break;
  default:
    parley_link_fail(l, 0, PARLEY_EPROTO, "frame not valid between peers");
    break;
  }
}

static void pl_close(struct parley_link *l, int reason) {
  struct plink *pl = parley_link_data(l);
  struct parley_node *n;
  struct rpeer *p;

  if (pl == NULL)
    return;
  n = pl->node;
  p = pl->peer;
  if (n != NULL && p != NULL) {
    plink_unlink(pl);
    if (!pl->open) {
      p->dialling = 0;
      p->dial_failures++;
      p->next_dial_ms = parley_mono_ms() + backoff_ms(p->dial_failures);
      PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "dial %s at %s failed: %s",
                 p->id, p->addr, parley_strerror(reason));
      /* Its address may have changed: ask the index again. */
      if (p->dial_failures >= 2)
        parley__ic_lookup(n, p);
    } else {
      PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "link with %s closed: %s", p->id,
                 parley_strerror(reason));
    }
  }
  parley_free(pl);
}

void parley__peer_link_cbs(struct parley_link_cbs *cbs) {
  cbs->on_open = pl_open;
  cbs->on_frame = pl_frame;
  cbs->on_close = pl_close;
}

struct pending_ctx {
  struct parley_node *n;
  struct rpeer *p;
};

static int send_pending_one(void *ctx, const struct parley_msg *m) {
  struct pending_ctx *c = ctx;
  if (c->p->impostor || send_msg(c->n, c->p, m, 0) < 0) {
    c->n->m.async_dropped++;
    c->p->m_dropped++;
  }
  return 0;
}

static void send_pending(struct parley_node *n, struct rpeer *p) {
  struct pending_ctx c = {n, p};
  while (p->pending) {
    struct pending_msg *pm = p->pending;
    p->pending = pm->next;
    if (pm->copy != NULL)
      (void)send_pending_one(&c, pm->copy);
    else if (parley_store_get_message(n->store, n->id.pk, pm->channel,
                                      pm->seq, send_pending_one, &c) < 0)
      n->m.async_dropped++;
    parley_free(pm);
  }
  p->pending_tail = &p->pending;
  p->npending = 0;
}

/* ---- timer -------------------------------------------------------------- */

void parley__outbox_timer_cb(uv_timer_t *t) {
  struct parley_node *n = t->data;
  struct resend_ctx c = {n, parley_now_ms(), 0};
  uint64_t mono = parley_mono_ms();
  struct parley_map_iter it;
  struct parley_map_entry *e;
  struct ackwait *w, *next;
  int rc;

  for (w = n->ackwaits; w; w = next) {
    next = w->next;
    if (mono >= w->deadline_ms) {
      ackwait_unlink(n, w);
      finish(n, w, 1);
    }
  }
  parley_map_iter_init(&it, &n->routes);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct route *r = e->value;
    struct waiting_pub **pp = &r->waiting;
    if (r->state == ROUTE_NONE && n->registered)
      (void)parley__route_get(n, r->topic); /* re-watch */
    while (*pp) {
      struct waiting_pub *wp = *pp;
      if (mono < wp->deadline_ms) {
        pp = &wp->next;
        continue;
      }
      *pp = wp->next;
      if (wp->req)
        parley_http_set_close_cb(wp->req, NULL, NULL);
      /* The index did not answer in time: go with what we know. */
      waiting_release(n, r, wp);
    }
    r->waiting_tail = pp; /* &last->next of what is left */
  }
  if (n->outbox_depth == 0)
    return;
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK)
    rc = parley_store_outbox_due(n->store, c.now, OUTBOX_BATCH, resend_one,
                                 &c);
  if (rc < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "outbox scan: %s",
               parley_strerror(rc));
}
