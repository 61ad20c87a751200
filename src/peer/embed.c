/*
 * embed.c — libparley (include/parley/parley.h): the node as a library,
 * with callbacks instead of HTTP requests.  Everything here is a thin
 * adapter over the same node code the daemon runs; the HTTP API and the
 * library share subscribe (parley__subscribe_local), publish
 * (parley__publish_cb) and delivery (parley__deliver_app).
 */
#include "parley/parley.h"

#include "peer/node_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

struct parley {
  struct parley_node *n;
  parley_message_cb cb;
  void *ctx;
};

/* An index request made for a library caller. */
struct status_wait {
  parley_status_cb cb;
  void *ctx;
};

/* ---- delivery ------------------------------------------------------------- */

static void app_deliver(void *ctx, const struct parley_msg *m) {
  struct parley *p = ctx;
  struct parley_message out;

  memset(&out, 0, sizeof out);
  out.topic = m->channel[0] == '@' ? NULL : m->channel;
  out.from = m->publisher;
  out.seq = m->seq;
  out.ts_ms = m->ts_ms;
  out.body = m->body;
  out.len = m->body_len;
  out.binary = (m->flags & PARLEY_MSG_BINARY) != 0;
  p->cb(p->ctx, &out);
}

void parley__deliver_app(struct parley_node *n, const struct parley_msg *m) {
  struct parley_msg plain;
  uint8_t *buf = NULL;
  size_t buf_len = 0;
  int rc;

  parley__api_stream_msg(n, m);
  if (n->app_cb == NULL)
    return;
  if (!(m->flags & PARLEY_MSG_PRIVATE)) {
    n->app_cb(n->app_ctx, m);
    return;
  }
  /* Stored sealed; the application gets it opened, or not at all while
   * the key of its epoch is on its way (history has it later). */
  rc = parley__ptopic_read(n, m, &plain, &buf, &buf_len);
  if (rc == 1)
    n->app_cb(n->app_ctx, &plain);
  else
    PARLEY_LOG(&n->log, PARLEY_LOG_INFO,
               "private message %s#%llu not handed to the application: %s",
               m->channel, (unsigned long long)m->seq, parley_strerror(rc));
  parley__dm_free(buf, buf_len);
}

/* ---- topics without history ------------------------------------------------ */

struct nohist *parley__nohist(struct parley_node *n, const char *topic,
                              size_t len) {
  if (n->nohist.count == 0)
    return NULL;
  return parley_map_get_memo(&n->nohist, &n->nohist_memo, topic, len);
}

/* Marks topic as without history in memory.  Its sequence numbers start
 * from the clock (microseconds), so that they keep growing across restarts
 * without being stored. */
static int nohist_add(struct parley_node *n, const char *topic) {
  size_t len = strlen(topic);
  struct nohist *h;

  if (parley_map_get(&n->nohist, topic, len) != NULL)
    return PARLEY_OK;
  h = parley_calloc(1, sizeof *h);
  if (h == NULL)
    return PARLEY_ENOMEM;
  h->seq = (uint64_t)parley_now_ms() * 1000u;
  if (parley_map_put(&n->nohist, topic, len, h, NULL) < 0) {
    parley_free(h);
    return PARLEY_ENOMEM;
  }
  return PARLEY_OK;
}

static int load_opt(void *ctx, const char *topic, int history) {
  return history ? PARLEY_OK : nohist_add(ctx, topic);
}

int parley__nohist_load(struct parley_node *n) {
  return parley_store_topic_history_list(n->store, load_opt, n);
}

void parley__nohist_free(struct parley_node *n) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  parley_map_iter_init(&it, &n->nohist);
  while ((e = parley_map_iter_next(&it)) != NULL)
    parley_free(e->value);
  parley_map_close(&n->nohist);
}

int parley__topic_history(struct parley_node *n, const char *topic,
                          int keep) {
  size_t len = strlen(topic);
  int rc;

  if (topic[0] == '@' || !parley_topic_valid(topic, len, n->cfg.max_topic))
    return PARLEY_EINVAL;
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK)
    rc = parley_store_topic_history_set(n->store, topic, keep);
  if (rc < 0)
    return rc;
  if (keep) {
    parley_free(parley_map_get(&n->nohist, topic, len));
    (void)parley_map_del(&n->nohist, topic, len);
    return PARLEY_OK;
  }
  return nohist_add(n, topic);
}

/* ---- the library ---------------------------------------------------------- */

int parley_open(const struct parley_options *o, struct parley **out) {
  struct parley_node_config cfg;
  char *list = NULL, *next, *tok;
  struct parley *p;
  int rc;

  *out = NULL;
  if (o == NULL || o->loop == NULL || o->data_dir == NULL || o->index == NULL)
    return PARLEY_EINVAL;
  memset(&cfg, 0, sizeof cfg);
  cfg.loop = o->loop;
  cfg.data_dir = o->data_dir;
  cfg.name = o->name;
  cfg.listen = o->listen;
  cfg.api = o->api;
  cfg.max_message = o->max_message;
  cfg.peer_rate = o->peer_rate;
  cfg.sync_os = o->sync_os;
  list = parley_strdup(o->index);
  if (list == NULL)
    return PARLEY_ENOMEM;
  for (tok = list; tok != NULL; tok = next) {
    next = strchr(tok, ',');
    if (next != NULL)
      *next++ = '\0';
    if (tok[0] == '\0')
      continue;
    if (cfg.nindex == PARLEY_NODE_MAX_INDEX) {
      parley_free(list);
      return PARLEY_ELIMIT;
    }
    cfg.index[cfg.nindex++] = tok;
  }
  if (cfg.nindex == 0) {
    parley_free(list);
    return PARLEY_EINVAL;
  }
  p = parley_calloc(1, sizeof *p);
  if (p == NULL) {
    parley_free(list);
    return PARLEY_ENOMEM;
  }
  rc = parley_node_new(&cfg, &p->n); /* copies the strings */
  parley_free(list);
  if (rc < 0) {
    parley_free(p);
    return rc;
  }
  *out = p;
  return PARLEY_OK;
}

void parley_close(struct parley *p) {
  if (p == NULL)
    return;
  p->n->app_cb = NULL;
  parley_node_free(p->n);
  parley_free(p);
}

const char *parley_id(const struct parley *p) { return parley_node_id(p->n); }

int parley_ready(const struct parley *p) { return p->n->registered; }

void parley_on_message(struct parley *p, parley_message_cb cb, void *ctx) {
  p->cb = cb;
  p->ctx = ctx;
  p->n->app_cb = cb != NULL ? app_deliver : NULL;
  p->n->app_ctx = p;
}

static void on_status(struct parley_node *n, struct icreq *q, int rc,
                      const struct parley_frame *f) {
  struct status_wait *w = q->ctx;
  (void)n;
  (void)f;
  if (w->cb != NULL)
    w->cb(w->ctx, rc == PARLEY_EUNAVAIL || rc == PARLEY_ECANCELED ? 0 : rc);
  parley_free(w);
}

static int topic_ok(const struct parley_node *n, const char *topic) {
  return topic != NULL && topic[0] != '@' &&
         parley_topic_valid(topic, strlen(topic), n->cfg.max_topic);
}

static int subscribe(struct parley *p, const char *topic, int on,
                     parley_status_cb cb, void *ctx) {
  struct parley_node *n = p->n;
  struct status_wait *w;
  int rc;

  if (!topic_ok(n, topic))
    return PARLEY_EINVAL;
  rc = parley__subscribe_local(n, topic, on);
  if (rc < 0)
    return rc;
  w = parley_calloc(1, sizeof *w);
  if (w == NULL)
    return PARLEY_ENOMEM;
  w->cb = cb;
  w->ctx = ctx;
  rc = parley__ic_request(n, on ? PARLEY_FRAME_SUBSCRIBE
                                : PARLEY_FRAME_UNSUBSCRIBE,
                          topic, NULL, on_status, w);
  if (rc < 0) {
    /* Kept locally; sent after the next registration. */
    parley_free(w);
    if (cb != NULL)
      cb(ctx, 0);
  }
  return PARLEY_OK;
}

int parley_subscribe(struct parley *p, const char *topic,
                     parley_status_cb cb, void *ctx) {
  return subscribe(p, topic, 1, cb, ctx);
}

int parley_unsubscribe(struct parley *p, const char *topic,
                       parley_status_cb cb, void *ctx) {
  return subscribe(p, topic, 0, cb, ctx);
}

int parley_publish(struct parley *p, const char *topic, const void *body,
                   size_t len, enum parley_mode mode, uint64_t timeout_ms,
                   parley_publish_cb cb, void *ctx) {
  struct parley_node *n = p->n;
  uint32_t flags = 0;
  int rc;

  if (!topic_ok(n, topic) || (body == NULL && len > 0) ||
      (mode != PARLEY_MODE_ASYNC && mode != PARLEY_MODE_ACK &&
       mode != PARLEY_MODE_SYNC))
    return PARLEY_EINVAL;
  if (len > n->cfg.max_message)
    return PARLEY_ETOOBIG;
  if (!parley_utf8_valid(body, len))
    flags |= PARLEY_MSG_BINARY;
  rc = parley__publish_cb(n, topic, body, len, flags, (int)mode,
                          timeout_ms ? timeout_ms : 10000,
                          cb, ctx);
  return rc < 0 ? rc : PARLEY_OK;
}

int parley_set_history(struct parley *p, const char *topic, int keep) {
  if (topic == NULL)
    return PARLEY_EINVAL;
  return parley__topic_history(p->n, topic, keep);
}

size_t parley_backlog(const struct parley *p) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  size_t total = 0;

  parley_map_iter_init(&it, &p->n->peers);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct parley_link *l = parley__peer_link(e->value);
    if (l != NULL)
      total += parley_link_sendq(l);
  }
  return total;
}

const char *parley_errstr(int rc) { return parley_strerror(rc); }
