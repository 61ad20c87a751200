/*
 * index_client.c — the peer's side of the index protocol: one link to one
 * index node at a time, failing over round-robin through the configured
 * list; registration and heartbeats; re-sending subscriptions after every
 * (re)connect; WATCHed routes (the subscriber lists of topics we publish
 * to) kept fresh by pushed WATCH_EVENTs; LOOKUPs of peers' addresses.
 */
#include "peer/node_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

#define REQUEST_TIMEOUT_MS 3000
#define REDIAL_MIN_MS 100
#define REDIAL_MAX_MS 1000

static void dial(struct parley_node *n);

static void redial_cb(uv_timer_t *t) { dial(t->data); }

static void schedule_redial(struct parley_node *n) {
  uint64_t delay = REDIAL_MIN_MS;
  uint32_t f = n->ifailures < 4 ? n->ifailures : 4;
  if (n->closing)
    return;
  delay <<= f;
  if (delay > REDIAL_MAX_MS)
    delay = REDIAL_MAX_MS;
  uv_timer_start(&n->redial_timer, redial_cb, delay, 0);
}

static void fail_requests(struct parley_node *n, int rc) {
  struct icreq *q = n->icreqs;
  n->icreqs = NULL;
  while (q) {
    struct icreq *next = q->next;
    if (q->cb)
      q->cb(n, q, rc, NULL);
    parley_free(q);
    q = next;
  }
}

static void dial(struct parley_node *n) {
  char host[PARLEY_MAX_ADDR + 1];
  uint16_t port;
  const char *addr;
  int rc;

  if (n->closing || n->ilink)
    return;
  addr = n->cfg.index[n->icur % n->cfg.nindex];
  rc = parley_parse_hostport(addr, host, sizeof host, &port);
  if (rc == PARLEY_OK)
    rc = parley_net_connect(n->net, host, port, NULL, &n->index_cbs, n,
                            &n->ilink);
  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "index %s: %s", addr,
               parley_strerror(rc));
    n->ilink = NULL;
    n->ifailures++;
    n->icur = (n->icur + 1) % n->cfg.nindex;
    schedule_redial(n);
  }
}

int parley__ic_request(struct parley_node *n, uint8_t type, const char *topic,
                       const uint8_t *key, icreq_cb cb, void *ctx) {
  struct parley_frame f;
  struct icreq *q;
  int rc;

  if (n->ilink == NULL || !n->iopen ||
      (type != PARLEY_FRAME_REGISTER && !n->registered))
    return PARLEY_EUNAVAIL;
  q = parley_calloc(1, sizeof *q);
  if (q == NULL)
    return PARLEY_ENOMEM;
  q->req = ++n->next_req;
  q->type = type;
  q->cb = cb;
  q->ctx = ctx;
  q->sent_ms = parley_mono_ms();
  memset(&f, 0, sizeof f);
  f.type = type;
  switch (type) {
  case PARLEY_FRAME_REGISTER:
    f.u.reg.req = q->req;
    f.u.reg.addr.ptr = n->addr;
    f.u.reg.addr.len = strlen(n->addr);
    f.u.reg.name.ptr = n->name;
    f.u.reg.name.len = strlen(n->name);
    break;
  case PARLEY_FRAME_SUBSCRIBE:
  case PARLEY_FRAME_UNSUBSCRIBE:
  case PARLEY_FRAME_WATCH:
  case PARLEY_FRAME_UNWATCH:
    snprintf(q->topic, sizeof q->topic, "%s", topic);
    f.u.topic.req = q->req;
    f.u.topic.topic.ptr = q->topic;
    f.u.topic.topic.len = strlen(q->topic);
    break;
  case PARLEY_FRAME_LOOKUP:
    memcpy(q->key, key, 32);
    f.u.lookup.req = q->req;
    f.u.lookup.key = q->key;
    break;
  default: /* HEARTBEAT, LIST_PEERS, LIST_TOPICS */
    f.u.req.req = q->req;
    break;
  }
  rc = parley_link_send(n->ilink, &f);
  if (rc < 0) {
    parley_free(q);
    return rc;
  }
  q->next = n->icreqs;
  n->icreqs = q;
  return PARLEY_OK;
}

int parley__ic_request_opaque(struct parley_node *n, uint8_t type,
                              const char *topic, uint8_t *payload,
                              size_t len, icreq_cb cb, void *ctx) {
  struct parley_frame f;
  struct icreq *q;
  int rc;

  if (len < 4 || (type != PARLEY_FRAME_TOPIC_CTL &&
                  type != PARLEY_FRAME_KEY_PUT &&
                  type != PARLEY_FRAME_KEY_GET &&
                  type != PARLEY_FRAME_MEMBERS_GET))
    return PARLEY_EINVAL;
  if (n->ilink == NULL || !n->iopen || !n->registered)
    return PARLEY_EUNAVAIL;
  q = parley_calloc(1, sizeof *q);
  if (q == NULL)
    return PARLEY_ENOMEM;
  q->req = ++n->next_req;
  q->type = type;
  q->cb = cb;
  q->ctx = ctx;
  q->sent_ms = parley_mono_ms();
  snprintf(q->topic, sizeof q->topic, "%s", topic);
  payload[0] = (uint8_t)(q->req >> 24);
  payload[1] = (uint8_t)(q->req >> 16);
  payload[2] = (uint8_t)(q->req >> 8);
  payload[3] = (uint8_t)q->req;
  memset(&f, 0, sizeof f);
  f.type = type;
  f.u.opaque.data = payload;
  f.u.opaque.len = len;
  rc = parley_link_send(n->ilink, &f);
  if (rc < 0) {
    parley_free(q);
    return rc;
  }
  q->next = n->icreqs;
  n->icreqs = q;
  return PARLEY_OK;
}

/* Records what the index says about a peer, and checks it against the
 * pinned keys (trust.c). */
struct rpeer *parley__ic_learn_peer(struct parley_node *n,
                                    const struct parley_wire_peer *wp) {
  struct rpeer *p;
  int changed;

  if (memcmp(wp->key, n->id.pk, 32) == 0)
    return NULL;
  p = parley__node_peer(n, wp->key, 1);
  if (p == NULL)
    return NULL;
  changed = wp->addr.len != strlen(p->addr) ||
            memcmp(wp->addr.ptr, p->addr, wp->addr.len) != 0;
  if (wp->addr.len <= PARLEY_MAX_ADDR) {
    memcpy(p->addr, wp->addr.ptr, wp->addr.len);
    p->addr[wp->addr.len] = '\0';
  }
  if (wp->name.len <= PARLEY_MAX_NAME) {
    memcpy(p->name, wp->name.ptr, wp->name.len);
    p->name[wp->name.len] = '\0';
  }
  p->last_seen_ms = parley_now_ms();
  if (parley__node_tx(n) == PARLEY_OK &&
      parley_store_peer_seen(n->store, p->pk, p->addr, p->name,
                             p->last_seen_ms) < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "peer cache write failed");
  parley__trust_eval(n, p, NULL, NULL);
  if (changed) {
    /* A new address: forget dial back-off and retry what is queued. */
    p->dial_failures = 0;
    p->next_dial_ms = 0;
    parley__outbox_kick_peer(n, p);
  }
  return p;
}

static void on_watch_reply(struct parley_node *n, struct icreq *q, int rc,
                           const struct parley_frame *f) {
  struct route *r = parley_map_get(&n->routes, q->topic, strlen(q->topic));
  const uint8_t *cur;
  size_t left;
  struct parley_wire_peer wp;

  if (r == NULL)
    return;
  if (rc == PARLEY_EDENIED) {
    /* A private topic we are not a member of: no route to publish on. */
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "watch %s refused: private topic, not a member", q->topic);
    r->state = ROUTE_NONE;
    r->denied = 1;
    parley__deliver_route_denied(n, r);
    return;
  }
  if (rc < 0 || f == NULL || f->type != PARLEY_FRAME_SUBSCRIBERS) {
    if (rc != PARLEY_EUNAVAIL)
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "watch %s: %s", q->topic,
                 parley_strerror(rc < 0 ? rc : PARLEY_EPROTO));
    r->state = ROUTE_NONE;
    return;
  }
  parley_map_close(&r->subs);
  parley_map_init(&r->subs, 0);
  cur = f->u.subscribers.list.raw;
  left = f->u.subscribers.list.raw_len;
  while (parley_wire_peer_next(&cur, &left, &wp)) {
    struct rpeer *p = parley__ic_learn_peer(n, &wp);
    if (p && parley_map_put(&r->subs, p->pk, 32, p, NULL) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "out of memory in route");
  }
  r->state = ROUTE_READY;
  r->have_list = 1;
  r->denied = 0;
  parley__deliver_route_ready(n, r);
}

static void send_watch(struct parley_node *n, struct route *r) {
  if (parley__ic_request(n, PARLEY_FRAME_WATCH, r->topic, NULL,
                         on_watch_reply, NULL) == PARLEY_OK) {
    r->state = ROUTE_WATCHING;
    r->watch_sent_ms = parley_mono_ms();
  }
}

struct route *parley__route_get(struct parley_node *n, const char *topic) {
  struct route *r =
      parley_map_get_memo(&n->routes, &n->routes_memo, topic, strlen(topic));
  if (r == NULL) {
    r = parley_calloc(1, sizeof *r);
    if (r == NULL)
      return NULL;
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    r->topic_len = strlen(r->topic);
    parley_map_init(&r->subs, 0);
    if (parley_map_put(&n->routes, r->topic, r->topic_len, r, NULL) < 0) {
      parley_free(r);
      return NULL;
    }
  }
  if (r->state == ROUTE_NONE && n->registered) {
    /* Access list and keys first: their answers come before the list. */
    parley__ptopic_probe(n, topic);
    send_watch(n, r);
  }
  return r;
}

static void on_watch_event(struct parley_node *n,
                           const struct parley_frame *f) {
  struct route *r = parley_map_get(&n->routes, f->u.watch_event.topic.ptr,
                                   f->u.watch_event.topic.len);
  struct rpeer *p;

  if (r == NULL)
    return;
  if (f->u.watch_event.kind == PARLEY_WATCH_ADD) {
    p = parley__ic_learn_peer(n, &f->u.watch_event.peer);
    if (p && parley_map_put(&r->subs, p->pk, 32, p, NULL) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "out of memory in route");
  } else {
    (void)parley_map_del(&r->subs, f->u.watch_event.peer.key, 32);
  }
}

static void on_lookup_reply(struct parley_node *n, struct icreq *q, int rc,
                            const struct parley_frame *f) {
  struct rpeer *p = parley__node_peer(n, q->key, 0);
  const uint8_t *cur;
  size_t left;
  struct parley_wire_peer wp;

  if (p == NULL)
    return;
  p->lookup_pending = 0;
  if (rc < 0 || f == NULL || f->type != PARLEY_FRAME_PEERS)
    return;
  cur = f->u.list.list.raw;
  left = f->u.list.list.raw_len;
  if (parley_wire_peer_next(&cur, &left, &wp)) {
    (void)parley__ic_learn_peer(n, &wp);
    parley__peer_try_dial(n, p);
  }
}

void parley__ic_lookup(struct parley_node *n, struct rpeer *p) {
  if (p->lookup_pending)
    return;
  if (parley__ic_request(n, PARLEY_FRAME_LOOKUP, NULL, p->pk,
                         on_lookup_reply, NULL) == PARLEY_OK)
    p->lookup_pending = 1;
}

static void on_sub_reply(struct parley_node *n, struct icreq *q, int rc,
                         const struct parley_frame *f) {
  if (rc < 0 && rc != PARLEY_EUNAVAIL)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "index refused subscription %s: %s",
               q->topic, parley_strerror(rc));
}

static void hb_cb(uv_timer_t *t);

static void on_registered(struct parley_node *n, struct icreq *q, int rc,
                          const struct parley_frame *f) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  uint64_t hb;

  if (rc < 0 || f == NULL || f->type != PARLEY_FRAME_OK) {
    if (rc == PARLEY_ENOTLEADER)
      return; /* ic_frame moves us to the leader */
    if (rc != PARLEY_EUNAVAIL && n->ilink) {
      PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "index refused registration: %s",
                 parley_strerror(rc < 0 ? rc : PARLEY_EPROTO));
      parley_link_close(n->ilink, rc < 0 ? rc : PARLEY_EPROTO);
    }
    return;
  }
  n->registered = 1;
  n->ifailures = 0;
  n->lease_ms = f->u.ok.value ? f->u.ok.value : 10000;
  hb = n->lease_ms / 3;
  if (hb < 100)
    hb = 100;
  uv_timer_start(&n->hb_timer, hb_cb, hb, hb);
  PARLEY_LOG(&n->log, PARLEY_LOG_INFO, "registered with index %s (lease %llu ms)",
             n->cfg.index[n->icur % n->cfg.nindex],
             (unsigned long long)n->lease_ms);
  /* Subscriptions are idempotent at the index: send them all again. */
  parley_map_iter_init(&it, &n->subs);
  while ((e = parley_map_iter_next(&it)) != NULL)
    if (parley__ic_request(n, PARLEY_FRAME_SUBSCRIBE, (const char *)e->key,
                           NULL, on_sub_reply, NULL) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "resubscribe %s failed", e->key);
  parley__ptopic_registered(n);
  parley_map_iter_init(&it, &n->routes);
  while ((e = parley_map_iter_next(&it)) != NULL)
    send_watch(n, e->value);
  parley__sync_registered(n);
}

static void send_register(struct parley_node *n) {
  int rc = parley__ic_request(n, PARLEY_FRAME_REGISTER, NULL, NULL,
                              on_registered, NULL);
  if (rc < 0 && n->ilink)
    parley_link_close(n->ilink, rc);
}

static void hb_reply(struct parley_node *n, struct icreq *q, int rc,
                     const struct parley_frame *f) {
  if (rc == PARLEY_EUNKNOWNPEER) {
    /* Our lease ran out at the index (e.g. it restarted): register anew. */
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "index forgot us; registering again");
    n->registered = 0;
    send_register(n);
  }
}

/* Heartbeat timer; also notices an index that stopped answering. */
static void hb_cb(uv_timer_t *t) {
  struct parley_node *n = t->data;
  uint64_t now = parley_mono_ms();

  for (struct icreq *q = n->icreqs; q; q = q->next) {
    if (now - q->sent_ms > REQUEST_TIMEOUT_MS && n->ilink) {
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
                 "index %s does not answer; failing over",
                 n->cfg.index[n->icur % n->cfg.nindex]);
      parley_link_close(n->ilink, PARLEY_ETIMEDOUT);
      return;
    }
  }
  if (n->registered &&
      parley__ic_request(n, PARLEY_FRAME_HEARTBEAT, NULL, NULL, hb_reply,
                         NULL) < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "heartbeat not sent");
}

static void ic_open(struct parley_link *l) {
  struct parley_node *n = parley_link_data(l);
  if (n == NULL)
    return;
  if (parley_link_remote_role(l) != PARLEY_ROLE_INDEX) {
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "%s is not an index node",
               parley_link_peername(l));
    parley_link_close(l, PARLEY_EPROTO);
    return;
  }
  n->iopen = 1;
  PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "index link open to %s",
             parley_link_peername(l));
  send_register(n);
}

/* Remembers where an ENOTLEADER answer points: the leader's peer address,
 * added to the list of index nodes if it is not there yet, or nothing (no
 * leader known: try the next node after a short pause). */
static void note_redirect(struct parley_node *n, const struct parley_str *to) {
  char addr[PARLEY_MAX_ADDR + 1], host[PARLEY_MAX_ADDR + 1];
  uint16_t port;

  n->redirect = -1;
  if (to->len == 0 || to->len > PARLEY_MAX_ADDR)
    return;
  memcpy(addr, to->ptr, to->len);
  addr[to->len] = '\0';
  if (parley_parse_hostport(addr, host, sizeof host, &port) < 0 || port == 0)
    return;
  for (size_t i = 0; i < n->cfg.nindex; i++) {
    if (strcmp(n->cfg.index[i], addr) == 0) {
      n->redirect = (int)i;
      return;
    }
  }
  if (n->cfg.nindex < PARLEY_NODE_MAX_INDEX) {
    char *copy = parley_strdup(addr);
    if (copy == NULL)
      return;
    n->index_addr[n->cfg.nindex] = copy;
    n->cfg.index[n->cfg.nindex] = copy;
    n->redirect = (int)n->cfg.nindex++;
    PARLEY_LOG(&n->log, PARLEY_LOG_INFO, "learned index leader %s", addr);
  }
}

static void ic_frame(struct parley_link *l, const struct parley_frame *f) {
  struct parley_node *n = parley_link_data(l);
  struct icreq **pp, *q;
  uint32_t req;
  int rc = PARLEY_OK, found = 0;

  if (n == NULL)
    return;
  switch (f->type) {
  case PARLEY_FRAME_WATCH_EVENT:
    on_watch_event(n, f);
    return;
  case PARLEY_FRAME_PING:
  case PARLEY_FRAME_PONG:
    return;
  case PARLEY_FRAME_OK:
    req = f->u.ok.req;
    break;
  case PARLEY_FRAME_ERROR:
    req = f->u.error.req;
    rc = -(int)f->u.error.code;
    n->m.index_errors++;
    if (rc == PARLEY_ENOTLEADER)
      note_redirect(n, &f->u.error.text);
    break;
  case PARLEY_FRAME_SUBSCRIBERS:
    req = f->u.subscribers.req;
    break;
  case PARLEY_FRAME_PEERS:
  case PARLEY_FRAME_TOPICS:
    req = f->u.list.req;
    break;
  case PARLEY_FRAME_ACL_EVENT:
    parley__ptopic_event(n, f);
    return;
  case PARLEY_FRAME_KEYS:
  case PARLEY_FRAME_MEMBERS:
    /* Both payloads start with the u32 request id. */
    if (f->u.opaque.len < 4) {
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "short %s from index",
                 parley_frame_type_name(f->type));
      return;
    }
    req = (uint32_t)f->u.opaque.data[0] << 24 |
          (uint32_t)f->u.opaque.data[1] << 16 |
          (uint32_t)f->u.opaque.data[2] << 8 | f->u.opaque.data[3];
    break;
  default:
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "unexpected %s from index",
               parley_frame_type_name(f->type));
    return;
  }
  for (pp = &n->icreqs; *pp; pp = &(*pp)->next) {
    if ((*pp)->req == req) {
      q = *pp;
      *pp = q->next;
      if (q->cb)
        q->cb(n, q, rc, rc < 0 ? NULL : f);
      parley_free(q);
      found = 1;
      break;
    }
  }
  /* This node does not take writes: move to the leader it named. */
  if (rc == PARLEY_ENOTLEADER && n->ilink)
    parley_link_close(n->ilink, PARLEY_ENOTLEADER);
  if (found || rc == PARLEY_ENOTLEADER)
    return;
  if (rc < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "index error: %.*s",
               (int)f->u.error.text.len, f->u.error.text.ptr);
}

static void ic_close(struct parley_link *l, int reason) {
  struct parley_node *n = parley_link_data(l);
  struct parley_map_iter it;
  struct parley_map_entry *e;
  int was_registered;

  if (n == NULL)
    return;
  was_registered = n->registered;
  n->ilink = NULL;
  n->iopen = 0;
  n->registered = 0;
  uv_timer_stop(&n->hb_timer);
  fail_requests(n, PARLEY_EUNAVAIL);
  parley_map_iter_init(&it, &n->routes);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct route *r = e->value;
    /* The watch died with the link; the cached list (have_list) keeps
     * serving publishes until the next index answers a new WATCH. */
    r->state = ROUTE_NONE;
  }
  if (n->closing)
    return;
  if (was_registered) {
    n->m.index_failovers++;
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "lost index %s: %s",
               n->cfg.index[n->icur % n->cfg.nindex], parley_strerror(reason));
  } else {
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "index %s unreachable: %s",
               n->cfg.index[n->icur % n->cfg.nindex], parley_strerror(reason));
  }
  if (reason == PARLEY_ENOTLEADER) {
    /* Redirected: straight to the leader if it was named, else onwards
     * after a short pause (an election may be under way). */
    if (n->redirect >= 0) {
      n->icur = (size_t)n->redirect;
      n->redirect = -1;
      uv_timer_start(&n->redial_timer, redial_cb, 0, 0);
    } else {
      n->icur = (n->icur + 1) % n->cfg.nindex;
      uv_timer_start(&n->redial_timer, redial_cb, REDIAL_MIN_MS, 0);
    }
    return;
  }
  n->ifailures++;
  n->icur = (n->icur + 1) % n->cfg.nindex;
  /* The first retry after losing a working index is immediate. */
  if (was_registered) {
    n->ifailures = 0;
    uv_timer_start(&n->redial_timer, redial_cb, 0, 0);
  } else {
    schedule_redial(n);
  }
}

void parley__ic_start(struct parley_node *n) {
  n->redirect = -1;
  n->index_cbs.on_open = ic_open;
  n->index_cbs.on_frame = ic_frame;
  n->index_cbs.on_close = ic_close;
  dial(n);
}

void parley__ic_stop(struct parley_node *n) {
  uv_timer_stop(&n->hb_timer);
  uv_timer_stop(&n->redial_timer);
  fail_requests(n, PARLEY_ECANCELED);
  if (n->ilink) {
    parley_link_set_data(n->ilink, NULL);
    parley_link_close(n->ilink, PARLEY_ECANCELED);
    n->ilink = NULL;
  }
}
