/* server_peer.c — the index's side of peer links: one request at a time. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "index/server_int.h"

/* ---- sending ---------------------------------------------------------- */

void parley__index_send(struct ix_conn *c, const struct parley_frame *f) {
  int rc = parley_link_send(c->link, f);
  if (rc == PARLEY_OK || rc == PARLEY_ECLOSED)
    return;
  /* ELIMIT: the peer does not read what we send (a watcher that falls this
   * far behind has lost events anyway and must WATCH again).  ETOOBIG or
   * anything else: we cannot keep our side of the protocol. */
  PARLEY_LOG(c->idx->log, PARLEY_LOG_WARN, "link %s: cannot send %s: %s",
             c->id, parley_frame_type_name(f->type), parley_strerror(rc));
  parley_link_close(c->link, rc);
}

void parley__index_send_ok(struct ix_conn *c, uint32_t req, uint64_t value) {
  struct parley_frame f;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_OK;
  f.u.ok.req = req;
  f.u.ok.value = value;
  parley__index_send(c, &f);
}

void parley__index_send_error(struct ix_conn *c, uint32_t req, int code,
                              const char *text) {
  struct parley_frame f;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_ERROR;
  f.u.error.req = req;
  f.u.error.code = (uint16_t)(-code);
  f.u.error.text.ptr = text;
  f.u.error.text.len = strnlen(text, PARLEY_MAX_ERRTEXT);
  c->idx->st.errors++;
  parley__index_send(c, &f);
}

void parley__index_reply(struct ix_conn *c, uint32_t req, int code,
                         const char *text, uint64_t value, int durable) {
  struct ix_reply *r;

  if (durable || c->rq_head != NULL) {
    r = parley__index_reply_new(c->idx, c, req);
    if (r != NULL) {
      r->code = code;
      r->value = value;
      r->durable = durable;
      parley__index_reply_text(r, text);
      parley__index_reply_queue(r);
      return;
    }
    /* Out of memory: better an error now than silence. */
    code = PARLEY_ENOMEM;
    text = NULL;
  }
  if (code == 0)
    parley__index_send_ok(c, req, value);
  else
    parley__index_send_error(c, req, code,
                             text != NULL ? text : parley_strerror(code));
}

void parley__index_release(struct ix_conn *c, int sync_rc) {
  struct ix_reply *r;

  while ((r = c->rq_head) != NULL && !r->waiting) {
    c->rq_head = r->next;
    if (c->rq_head == NULL)
      c->rq_tail = NULL;
    c->idx->nheld--;
    if (r->durable && sync_rc < 0)
      parley__index_send_error(c, r->req, PARLEY_ESTORE,
                               "index storage failed");
    else if (r->code == 0)
      parley__index_send_ok(c, r->req, r->value);
    else
      parley__index_send_error(c, r->req, r->code,
                               r->has_text ? r->text
                                           : parley_strerror(r->code));
    parley_free(r);
  }
  if (c->rq_head == NULL)
    parley__index_held_drop(c);
}

static void reply_error(struct ix_conn *c, uint32_t req, int code,
                        const char *text) {
  parley__index_reply(c, req, code, text, 0, 0);
}

static void reply_ok(struct ix_conn *c, uint32_t req, uint64_t value,
                     int durable) {
  parley__index_reply(c, req, 0, NULL, value, durable);
}

/* ---- watches ---------------------------------------------------------- */

void parley__index_fanout(struct parley_index *idx, const char *topic,
                          uint8_t kind, const struct parley_reg_peer *p) {
  struct ix_topic *t = parley_map_get(&idx->topics, topic, strlen(topic));
  struct parley_map_iter it;
  struct parley_map_entry *e;
  struct parley_frame f;

  if (t == NULL)
    return;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_WATCH_EVENT;
  f.u.watch_event.topic.ptr = t->name;
  f.u.watch_event.topic.len = strlen(t->name);
  f.u.watch_event.kind = kind;
  parley__index_wire_peer(idx, p, &f.u.watch_event.peer);
  /* Sending never closes a link synchronously, so the set cannot change
   * under the iteration. */
  parley_map_iter_init(&it, &t->watchers);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    idx->st.watch_events++;
    parley__index_send(e->value, &f);
  }
}

static int watch_add(struct ix_conn *c, const char *topic, size_t len) {
  struct parley_index *idx = c->idx;
  struct ix_topic *t;
  int rc, created = 0;

  if (parley_map_get(&c->watched, topic, len) != NULL)
    return PARLEY_OK;
  if (c->watched.count >= idx->max_subs)
    return PARLEY_ELIMIT;
  t = parley_map_get(&idx->topics, topic, len);
  if (t == NULL) {
    t = parley_malloc(sizeof *t + len + 1);
    if (t == NULL)
      return PARLEY_ENOMEM;
    parley_map_init(&t->watchers, idx->topics.seed ^ 0x5bd1e995u);
    memcpy(t->name, topic, len);
    t->name[len] = '\0';
    rc = parley_map_put(&idx->topics, topic, len, t, NULL);
    if (rc < 0) {
      parley_free(t);
      return rc;
    }
    created = 1;
  }
  rc = parley_map_put(&t->watchers, &c, sizeof c, c, NULL);
  if (rc == PARLEY_OK) {
    rc = parley_map_put(&c->watched, topic, len, t, NULL);
    if (rc < 0)
      (void)parley_map_del(&t->watchers, &c, sizeof c);
  }
  if (rc < 0) {
    if (created) {
      (void)parley_map_del(&idx->topics, topic, len);
      parley_map_close(&t->watchers);
      parley_free(t);
    }
    return rc;
  }
  idx->st.watches++;
  return PARLEY_OK;
}

/* Removes c from t's watchers, dropping t when nobody watches it. */
static void topic_unwatch(struct parley_index *idx, struct ix_topic *t,
                          struct ix_conn *c) {
  (void)parley_map_del(&t->watchers, &c, sizeof c);
  idx->st.watches--;
  if (t->watchers.count == 0) {
    (void)parley_map_del(&idx->topics, t->name, strlen(t->name));
    parley_map_close(&t->watchers);
    parley_free(t);
  }
}

static void watch_del(struct ix_conn *c, const char *topic, size_t len) {
  struct ix_topic *t = parley_map_del(&c->watched, topic, len);
  if (t != NULL)
    topic_unwatch(c->idx, t, c);
}

static void watch_drop_all(struct ix_conn *c) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley_map_iter_init(&it, &c->watched);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct ix_topic *t = e->value;
    parley_map_iter_remove(&it);
    topic_unwatch(c->idx, t, c);
  }
  parley_map_close(&c->watched);
}

/* ---- lists ------------------------------------------------------------ */

/* Gathers wire peers for SUBSCRIBERS/PEERS until the frame budget or
 * PARLEY_MAX_LIST is reached: a list that does not fit in one frame is
 * truncated (docs/internals/INDEX.md). */
struct peer_list {
  struct parley_index *idx;
  struct parley_wire_peer *v;
  size_t n, alloc;
  size_t size, budget; /* encoded bytes so far / allowed */
  int truncated;
  int err;
};

static int list_peer(void *ctx, const struct parley_reg_peer *p) {
  struct peer_list *l = ctx;
  struct parley_wire_peer w;
  size_t sz;

  parley__index_wire_peer(l->idx, p, &w);
  sz = PARLEY_WIRE_KEY + 1 + w.addr.len + 1 + w.name.len + 8;
  if (l->n >= PARLEY_MAX_LIST || l->size + sz > l->budget) {
    l->truncated = 1;
    return 1;
  }
  if (l->n == l->alloc) {
    size_t na = l->alloc ? l->alloc * 2 : 32;
    struct parley_wire_peer *v = parley_realloc(l->v, na * sizeof *v);
    if (v == NULL) {
      l->err = PARLEY_ENOMEM;
      return 1;
    }
    l->v = v;
    l->alloc = na;
  }
  l->v[l->n++] = w;
  l->size += sz;
  return 0;
}

/* Sends a list frame, halving the list if the remote's max_frame is
 * smaller than ours. */
static void send_list(struct ix_conn *c, struct parley_frame *f,
                      struct parley_wire_list *list) {
  for (;;) {
    int rc = parley_link_send(c->link, f);
    if (rc == PARLEY_ETOOBIG && list->count > 0) {
      list->count /= 2;
      continue;
    }
    if (rc != PARLEY_OK && rc != PARLEY_ECLOSED) {
      PARLEY_LOG(c->idx->log, PARLEY_LOG_WARN, "link %s: cannot send %s: %s",
                 c->id, parley_frame_type_name(f->type), parley_strerror(rc));
      parley_link_close(c->link, rc);
    }
    return;
  }
}

static size_t list_budget(const struct parley_index *idx, size_t header) {
  size_t max = idx->max_frame;
  return max > header + 64 ? max - header - 64 : 0;
}

static void send_subscribers(struct ix_conn *c, uint32_t req,
                             const char *topic, size_t len) {
  struct parley_index *idx = c->idx;
  struct peer_list l;
  struct parley_frame f;

  memset(&l, 0, sizeof l);
  l.idx = idx;
  l.budget = list_budget(idx, 1 + 4 + 1 + len + 4);
  (void)parley_registry_foreach_subscriber(idx->reg, topic, list_peer, &l);
  if (l.err < 0) {
    parley_free(l.v);
    reply_error(c, req, l.err, "out of memory");
    return;
  }
  if (l.truncated)
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN,
               "SUBSCRIBERS %s truncated to %zu entries", topic, l.n);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_SUBSCRIBERS;
  f.u.subscribers.req = req;
  f.u.subscribers.topic.ptr = topic;
  f.u.subscribers.topic.len = len;
  f.u.subscribers.list.count = (uint32_t)l.n;
  f.u.subscribers.list.peers = l.v;
  send_list(c, &f, &f.u.subscribers.list);
  parley_free(l.v);
}

static void send_peers(struct ix_conn *c, uint32_t req, const uint8_t *key) {
  struct parley_index *idx = c->idx;
  struct peer_list l;
  struct parley_frame f;

  memset(&l, 0, sizeof l);
  l.idx = idx;
  l.budget = list_budget(idx, 1 + 4 + 4);
  if (key != NULL) {
    const struct parley_reg_peer *p = parley_registry_peer(idx->reg, key);
    if (p != NULL)
      (void)list_peer(&l, p);
  } else {
    (void)parley_registry_foreach_peer(idx->reg, list_peer, &l);
  }
  if (l.err < 0) {
    parley_free(l.v);
    reply_error(c, req, l.err, "out of memory");
    return;
  }
  if (l.truncated)
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN, "PEERS truncated to %zu entries",
               l.n);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_PEERS;
  f.u.list.req = req;
  f.u.list.list.count = (uint32_t)l.n;
  f.u.list.list.peers = l.v;
  send_list(c, &f, &f.u.list.list);
  parley_free(l.v);
}

struct topic_list {
  struct parley_wire_topic *v;
  size_t n, alloc;
  size_t size, budget;
  int truncated;
  int err;
};

static int list_topic(void *ctx, const char *topic, uint32_t subscribers) {
  struct topic_list *l = ctx;
  size_t len = strlen(topic), sz = 1 + len + 4;

  if (l->n >= PARLEY_MAX_LIST || l->size + sz > l->budget) {
    l->truncated = 1;
    return 1;
  }
  if (l->n == l->alloc) {
    size_t na = l->alloc ? l->alloc * 2 : 32;
    struct parley_wire_topic *v = parley_realloc(l->v, na * sizeof *v);
    if (v == NULL) {
      l->err = PARLEY_ENOMEM;
      return 1;
    }
    l->v = v;
    l->alloc = na;
  }
  l->v[l->n].topic.ptr = topic;
  l->v[l->n].topic.len = len;
  l->v[l->n].subscribers = subscribers;
  l->n++;
  l->size += sz;
  return 0;
}

static void send_topics(struct ix_conn *c, uint32_t req) {
  struct parley_index *idx = c->idx;
  struct topic_list l;
  struct parley_frame f;

  memset(&l, 0, sizeof l);
  l.budget = list_budget(idx, 1 + 4 + 4);
  (void)parley_registry_foreach_topic(idx->reg, list_topic, &l);
  if (l.err < 0) {
    parley_free(l.v);
    reply_error(c, req, l.err, "out of memory");
    return;
  }
  if (l.truncated)
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN, "TOPICS truncated to %zu entries",
               l.n);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_TOPICS;
  f.u.list.req = req;
  f.u.list.list.count = (uint32_t)l.n;
  f.u.list.list.topics = l.v;
  send_list(c, &f, &f.u.list.list);
  parley_free(l.v);
}

/* ---- requests --------------------------------------------------------- */

/* Makes c the current link of its peer; an older link of the same peer is
 * closed (it is stale: a peer keeps one index link). */
void parley__index_claim_link(struct ix_conn *c) {
  struct parley_index *idx = c->idx;
  struct ix_conn *old;

  if (c->current)
    return;
  old = parley_map_get(&idx->by_pk, c->pk, sizeof c->pk);
  if (parley_map_put(&idx->by_pk, c->pk, sizeof c->pk, c, NULL) < 0)
    return; /* out of memory: the mapping is only bookkeeping */
  c->current = 1;
  if (old != NULL && old != c) {
    old->current = 0;
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
               "peer %s: new link from %s replaces the one from %s", c->id,
               parley_link_peername(c->link), parley_link_peername(old->link));
    parley_link_close(old->link, PARLEY_EEXIST);
  }
}

/* A peer's advertised address: HOST:PORT with a non-zero port. */
static int addr_valid(struct parley_str a) {
  char s[PARLEY_MAX_ADDR + 1], host[PARLEY_MAX_ADDR + 1];
  uint16_t port;

  if (a.len == 0 || a.len > PARLEY_MAX_ADDR || memchr(a.ptr, '\0', a.len))
    return 0;
  memcpy(s, a.ptr, a.len);
  s[a.len] = '\0';
  for (size_t i = 0; i < a.len; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return 0;
  return parley_parse_hostport(s, host, sizeof host, &port) == PARLEY_OK &&
         port != 0;
}

static void on_register(struct ix_conn *c, const struct parley_frame *f) {
  struct parley_index *idx = c->idx;
  struct parley_reg_cmd cmd;
  uint32_t req = f->u.reg.req;
  int rc;

  if (!addr_valid(f->u.reg.addr)) {
    reply_error(c, req, PARLEY_EINVAL, "invalid address (want HOST:PORT)");
    return;
  }
  if (f->u.reg.name.len > PARLEY_MAX_NAME ||
      !parley_utf8_valid((const uint8_t *)f->u.reg.name.ptr,
                         f->u.reg.name.len)) {
    reply_error(c, req, PARLEY_EINVAL, "invalid name");
    return;
  }
  if (!parley__index_writable(idx)) {
    parley__index_redirect(c, req);
    return;
  }
  memset(&cmd, 0, sizeof cmd);
  cmd.type = PARLEY_REG_REGISTER;
  memcpy(cmd.pk, c->pk, 32); /* the link's key, never the frame's */
  cmd.ts_ms = parley_now_ms();
  memcpy(cmd.addr, f->u.reg.addr.ptr, f->u.reg.addr.len);
  if (f->u.reg.name.len > 0)
    memcpy(cmd.name, f->u.reg.name.ptr, f->u.reg.name.len);
  /* Renew first so the watch events of this REGISTER carry last_seen. */
  rc = parley__index_lease_renew(idx, c->pk);
  if (rc == PARLEY_OK && idx->cons != NULL) {
    /* The answer follows once the entry is committed and applied. */
    rc = parley_registry_check(idx->reg, &cmd);
    if (rc == PARLEY_OK)
      rc = parley__index_propose(idx, c, req, &cmd);
    if (rc == PARLEY_OK)
      return;
  } else if (rc == PARLEY_OK) {
    rc = parley__index_submit(idx, &cmd);
  }
  if (rc < 0) {
    /* A refused REGISTER must not leave a lease behind for a peer the
     * registry does not hold. */
    if (parley_registry_peer(idx->reg, c->pk) == NULL)
      (void)parley_lease_remove(&idx->leases, c->pk);
    if (rc == PARLEY_ENOTLEADER)
      parley__index_redirect(c, req);
    else
      reply_error(c, req, rc, parley_strerror(rc));
    return;
  }
  idx->st.registrations++;
  parley__index_claim_link(c);
  PARLEY_LOG(idx->log, PARLEY_LOG_DEBUG, "peer %s registered at %s", c->id,
             cmd.addr);
  reply_ok(c, req, idx->lease_ms, 1);
}

static void on_heartbeat(struct ix_conn *c, uint32_t req) {
  struct parley_index *idx = c->idx;
  int rc;

  if (!parley__index_writable(idx)) {
    /* Leases live on the leader only. */
    parley__index_redirect(c, req);
    return;
  }
  if (parley_registry_peer(idx->reg, c->pk) == NULL) {
    reply_error(c, req, PARLEY_EUNKNOWNPEER, "not registered");
    return;
  }
  rc = parley__index_lease_renew(idx, c->pk);
  if (rc < 0) {
    reply_error(c, req, rc, parley_strerror(rc));
    return;
  }
  idx->st.heartbeats++;
  parley__index_claim_link(c);
  reply_ok(c, req, idx->lease_ms, 0);
}

/* Topics are checked here (the registry checks them again) because they
 * are copied into NUL-terminated buffers: an embedded NUL must not slip
 * through as a shorter, valid name. */
static int topic_ok(struct parley_str t) {
  return parley_topic_valid(t.ptr, t.len, PARLEY_DEFAULT_MAX_TOPIC);
}

static void on_subscribe(struct ix_conn *c, const struct parley_frame *f,
                         int sub) {
  struct parley_reg_cmd cmd;
  uint32_t req = f->u.topic.req;
  uint64_t retry_ms;
  int rc;

  if (!topic_ok(f->u.topic.topic)) {
    reply_error(c, req, PARLEY_EINVAL, "invalid topic");
    return;
  }
  if (!parley__index_writable(c->idx)) {
    parley__index_redirect(c, req);
    return;
  }
  /* Churn limit per peer key: every change costs a registry command, a
   * log append (or a Raft entry) and watch events. */
  if (parley__index_sub_take(c->idx, c->pk, &retry_ms) < 0) {
    char text[80];
    snprintf(text, sizeof text,
             "too many subscription changes; retry in %llu ms",
             (unsigned long long)retry_ms);
    reply_error(c, req, PARLEY_ELIMIT, text);
    return;
  }
  memset(&cmd, 0, sizeof cmd);
  cmd.type = sub ? PARLEY_REG_SUBSCRIBE : PARLEY_REG_UNSUBSCRIBE;
  memcpy(cmd.pk, c->pk, 32);
  cmd.ts_ms = parley_now_ms();
  memcpy(cmd.topic, f->u.topic.topic.ptr, f->u.topic.topic.len);
  if (c->idx->cons != NULL) {
    /* While this link's REGISTER is being replicated the registry cannot
     * judge yet; the apply will. */
    rc = c->reg_inflight > 0 ? PARLEY_OK
                             : parley_registry_check(c->idx->reg, &cmd);
    if (rc == PARLEY_OK)
      rc = parley__index_propose(c->idx, c, req, &cmd);
    if (rc == PARLEY_ENOTLEADER) {
      parley__index_redirect(c, req);
      return;
    }
    if (rc == PARLEY_OK)
      return;
  } else {
    rc = parley__index_submit(c->idx, &cmd);
  }
  if (rc < 0) {
    reply_error(c, req, rc,
                rc == PARLEY_EUNKNOWNPEER ? "not registered"
                : rc == PARLEY_ELIMIT     ? "too many subscriptions"
                                          : parley_strerror(rc));
    return;
  }
  reply_ok(c, req, 0, 1);
}

static void on_watch(struct ix_conn *c, const struct parley_frame *f,
                     int watch) {
  char topic[PARLEY_MAX_TOPIC + 1];
  uint32_t req = f->u.topic.req;
  size_t len = f->u.topic.topic.len;
  int rc;

  if (!topic_ok(f->u.topic.topic)) {
    reply_error(c, req, PARLEY_EINVAL, "invalid topic");
    return;
  }
  memcpy(topic, f->u.topic.topic.ptr, len);
  topic[len] = '\0';
  /* Who subscribes to a private topic is the members' business only: a
   * non-member learns no route to publish on. */
  if (watch && !parley_registry_may_access(c->idx->reg, topic, c->pk)) {
    c->idx->st.acl_refused++;
    reply_error(c, req, PARLEY_EDENIED, "private topic: not a member");
    return;
  }
  if (!watch) {
    watch_del(c, topic, len);
    reply_ok(c, req, 0, 0);
    return;
  }
  rc = watch_add(c, topic, len);
  if (rc < 0) {
    reply_error(c, req, rc,
                rc == PARLEY_ELIMIT ? "too many watched topics"
                                    : parley_strerror(rc));
    return;
  }
  send_subscribers(c, req, topic, len);
}

/* The request id of a frame that carries one (0 otherwise). */
static uint32_t frame_req(const struct parley_frame *f) {
  switch (f->type) {
  case PARLEY_FRAME_OK:
    return f->u.ok.req;
  case PARLEY_FRAME_SUBSCRIBERS:
    return f->u.subscribers.req;
  case PARLEY_FRAME_PEERS:
  case PARLEY_FRAME_TOPICS:
    return f->u.list.req;
  default:
    return 0;
  }
}

/* A frame the index will not take.  Each one is a strike against the
 * peer's address and key; a peer that keeps sending them is banned and
 * cut off. */
static void refuse_frame(struct ix_conn *c, struct parley_link *l,
                         const struct parley_frame *f, const char *why) {
  struct parley_index *idx = c->idx;

  if (parley_link_strike(l) == PARLEY_EDENIED) {
    idx->st.peer_bans++;
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN,
               "peer %s from %s: banned for repeated invalid frames", c->id,
               parley_link_peername(l));
    idx->st.errors++;
    parley_link_fail(l, frame_req(f), PARLEY_EDENIED,
                     "banned for repeated invalid frames");
    return;
  }
  reply_error(c, frame_req(f), PARLEY_EPROTO, why);
}

static void on_frame(struct parley_link *l, const struct parley_frame *f) {
  struct ix_conn *c = parley_link_data(l);
  struct parley_index *idx;

  if (c == NULL || c->idx->closing)
    return;
  idx = c->idx;
  idx->st.requests++;
  idx->req_by_type[f->type]++;
  switch (f->type) {
  case PARLEY_FRAME_REGISTER:
    on_register(c, f);
    break;
  case PARLEY_FRAME_HEARTBEAT:
    on_heartbeat(c, f->u.req.req);
    break;
  case PARLEY_FRAME_SUBSCRIBE:
    on_subscribe(c, f, 1);
    break;
  case PARLEY_FRAME_UNSUBSCRIBE:
    on_subscribe(c, f, 0);
    break;
  case PARLEY_FRAME_WATCH:
    on_watch(c, f, 1);
    break;
  case PARLEY_FRAME_UNWATCH:
    on_watch(c, f, 0);
    break;
  case PARLEY_FRAME_LOOKUP:
    send_peers(c, f->u.lookup.req, f->u.lookup.key);
    break;
  case PARLEY_FRAME_LIST_PEERS:
    send_peers(c, f->u.req.req, NULL);
    break;
  case PARLEY_FRAME_LIST_TOPICS:
    send_topics(c, f->u.req.req);
    break;
  case PARLEY_FRAME_PING: {
    struct parley_frame pong;
    memset(&pong, 0, sizeof pong);
    pong.type = PARLEY_FRAME_PONG;
    pong.u.ping.nonce = f->u.ping.nonce;
    parley__index_send(c, &pong);
    break;
  }
  case PARLEY_FRAME_PONG:
    break;
  case PARLEY_FRAME_ERROR:
    PARLEY_LOG(idx->log, PARLEY_LOG_DEBUG, "link %s: ERROR %u from peer: %.*s",
               c->id, (unsigned)f->u.error.code, (int)f->u.error.text.len,
               f->u.error.text.ptr);
    break;
  case PARLEY_FRAME_TOPIC_CTL:
  case PARLEY_FRAME_KEY_PUT:
  case PARLEY_FRAME_KEY_GET:
  case PARLEY_FRAME_MEMBERS_GET:
    if (parley__index_acl_frame(c, f) == PARLEY_EPROTO)
      refuse_frame(c, l, f, "malformed private-topic frame");
    break;
  case PARLEY_FRAME_REPORT:
    /* Fire-and-forget figures for the dashboard: no answer, unless the
     * payload is garbage. */
    if (parley__index_dash_report(c, f) == PARLEY_EPROTO)
      refuse_frame(c, l, f, "malformed REPORT");
    break;
  default:
    /* MSG, ACK, and the index's own answer frames make no sense here. */
    refuse_frame(c, l, f, "frame type not served by the index");
    break;
  }
}

static void on_open(struct parley_link *l) {
  struct parley_index *idx = parley_link_data(l);
  struct ix_conn *c;

  if (idx == NULL || idx->closing) {
    parley_link_set_cbs(l, &parley__index_detached_cbs);
    parley_link_close(l, PARLEY_ECANCELED);
    return;
  }
  if (parley_link_remote_role(l) != PARLEY_ROLE_PEER) {
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
               "refusing link from %s: remote role %u is not a peer",
               parley_link_peername(l), (unsigned)parley_link_remote_role(l));
    parley_link_set_cbs(l, &parley__index_detached_cbs);
    parley_link_fail(l, 0, PARLEY_EDENIED, "this index serves peers only");
    return;
  }
  c = parley_calloc(1, sizeof *c);
  if (c == NULL) {
    parley_link_set_cbs(l, &parley__index_detached_cbs);
    parley_link_close(l, PARLEY_ENOMEM);
    return;
  }
  c->idx = idx;
  c->link = l;
  memcpy(c->pk, parley_link_remote_pk(l), 32);
  parley_id_encode(c->pk, c->id);
  parley_map_init(&c->watched, idx->topics.seed ^ 0x9e3779b97f4a7c15ull);
  c->next = idx->conns;
  if (idx->conns != NULL)
    idx->conns->prev = c;
  idx->conns = c;
  idx->st.links_open++;
  parley_link_set_data(l, c);
  PARLEY_LOG(idx->log, PARLEY_LOG_DEBUG, "link open: peer %s from %s", c->id,
             parley_link_peername(l));
}

/* Forgets c: watches, held replies, the peer mapping, the list entry. */
static void conn_free(struct ix_conn *c) {
  struct parley_index *idx = c->idx;

  watch_drop_all(c);
  while (c->rq_head != NULL) {
    struct ix_reply *r = c->rq_head;
    c->rq_head = r->next;
    idx->nheld--;
    if (r->waiting) {
      r->conn = NULL; /* an orphan: freed when its proposal completes */
      r->next = NULL;
    } else {
      parley_free(r);
    }
  }
  c->rq_tail = NULL;
  parley__index_held_drop(c);
  if (c->current)
    (void)parley_map_del(&idx->by_pk, c->pk, sizeof c->pk);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    idx->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  idx->st.links_open--;
  parley_link_set_data(c->link, NULL);
  parley_free(c);
}

static void on_close(struct parley_link *l, int reason) {
  struct ix_conn *c = parley_link_data(l);
  if (c == NULL)
    return;
  /* The peer stays registered: its lease runs out unless it comes back. */
  PARLEY_LOG(c->idx->log, PARLEY_LOG_DEBUG, "link closed: peer %s: %s", c->id,
             parley_strerror(reason));
  conn_free(c);
}

void parley__index_drop_watchers(struct parley_index *idx, int reason) {
  for (struct ix_conn *c = idx->conns; c != NULL; c = c->next)
    if (c->watched.count > 0)
      parley_link_close(c->link, reason);
}

void parley__index_detach_all(struct parley_index *idx) {
  while (idx->conns != NULL) {
    struct parley_link *l = idx->conns->link;
    conn_free(idx->conns);
    parley_link_set_cbs(l, &parley__index_detached_cbs);
  }
}

const struct parley_link_cbs parley__index_link_cbs = {
    .on_open = on_open,
    .on_frame = on_frame,
    .on_close = on_close,
};

static void detached_open(struct parley_link *l) {
  parley_link_close(l, PARLEY_ECANCELED);
}

static void detached_frame(struct parley_link *l,
                           const struct parley_frame *f) {
  (void)l;
  (void)f;
}

static void detached_close(struct parley_link *l, int reason) {
  (void)l;
  (void)reason;
}

const struct parley_link_cbs parley__index_detached_cbs = {
    .on_open = detached_open,
    .on_frame = detached_frame,
    .on_close = detached_close,
};
