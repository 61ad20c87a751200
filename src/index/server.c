/* server.c — parley-index: lifecycle, durable replies, leases, watch events. */
#include "index/server.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "index/server_int.h"

/* Formats host:port, bracketing IPv6 literals. */
static void format_addr(char *out, size_t cap, const char *host,
                        uint16_t port) {
  if (strchr(host, ':') != NULL)
    snprintf(out, cap, "[%s]:%u", host, (unsigned)port);
  else
    snprintf(out, cap, "%s:%u", host, (unsigned)port);
}

/* ---- leases ----------------------------------------------------------- */

static void on_lease_timer(uv_timer_t *t);

/* Points the timer at the earliest expiry (or stops it when none). */
static void rearm_timer(struct parley_index *idx) {
  uint64_t due, now;

  if (idx->closing)
    return;
  if (parley_lease_next_expiry(&idx->leases, &due) < 0) {
    if (idx->timer_armed)
      uv_timer_stop(&idx->lease_timer);
    idx->timer_armed = 0;
    return;
  }
  if (idx->timer_armed && idx->timer_due == due)
    return;
  now = uv_now(idx->loop);
  /* The +1 keeps the timer from firing a hair before `due` when the loop
   * clock is cached. */
  uv_timer_start(&idx->lease_timer, on_lease_timer,
                 due > now ? due - now + 1 : 0, 0);
  idx->timer_armed = 1;
  idx->timer_due = due;
}

int parley__index_lease_renew(struct parley_index *idx, const uint8_t pk[32]) {
  int rc = parley_lease_renew(&idx->leases, pk, uv_now(idx->loop),
                              idx->lease_ms, parley_now_ms());
  if (rc < 0)
    return rc;
  rearm_timer(idx);
  return PARLEY_OK;
}

int64_t parley__index_last_seen(const struct parley_index *idx,
                                const struct parley_reg_peer *p) {
  const struct parley_lease *l = parley_lease_get(&idx->leases, p->pk);
  return l != NULL ? l->last_seen_ms : p->updated_ms;
}

void parley__index_expire(struct parley_index *idx, const uint8_t pk[32]) {
  struct parley_reg_cmd cmd;
  char id[PARLEY_ID_TEXT_LEN + 1];
  int rc;

  memset(&cmd, 0, sizeof cmd);
  cmd.type = PARLEY_REG_EXPIRE;
  memcpy(cmd.pk, pk, 32);
  cmd.ts_ms = parley_now_ms();
  parley_id_encode(pk, id);
  if (idx->cons != NULL) {
    /* Replicated: counted and logged once the entry is applied. */
    rc = parley__index_propose(idx, NULL, 0, &cmd);
    if (rc < 0)
      PARLEY_LOG(idx->log, PARLEY_LOG_WARN, "expire %s: %s", id,
                 parley_strerror(rc));
    return;
  }
  rc = parley__index_submit(idx, &cmd);
  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "expire %s: %s", id,
               parley_strerror(rc));
    return;
  }
  idx->st.expiries++;
  PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "peer %s expired (lease ran out)",
             id);
}

static void on_lease_timer(uv_timer_t *t) {
  struct parley_index *idx = t->data;
  uint8_t pk[32];
  uint64_t now = uv_now(idx->loop);

  idx->timer_armed = 0;
  if (idx->closing)
    return;
  while (parley_lease_pop_expired(&idx->leases, now, pk) == PARLEY_OK)
    parley__index_expire(idx, pk);
  rearm_timer(idx);
}

/* Gives every registered peer one full lease (nobody heard from them
 * while the index was down or while another node led, so nobody may be
 * expired at once).  A peer that already has a lease keeps the later of
 * the two expiries' worth: it is simply renewed. */
static int grant_one(void *ctx, const struct parley_reg_peer *p) {
  struct parley_index *idx = ctx;
  const struct parley_lease *l = parley_lease_get(&idx->leases, p->pk);
  int rc = parley_lease_renew(&idx->leases, p->pk, uv_now(idx->loop),
                              idx->lease_ms,
                              l != NULL ? l->last_seen_ms : p->updated_ms);
  return rc < 0 ? rc : 0;
}

int parley__index_grant_all(struct parley_index *idx) {
  int rc = parley_registry_foreach_peer(idx->reg, grant_one, idx);
  rearm_timer(idx);
  return rc < 0 ? rc : PARLEY_OK;
}

void parley__index_drop_leases(struct parley_index *idx) {
  parley_lease_table_close(&idx->leases);
  parley_lease_table_init(&idx->leases,
                          idx->topics.seed ^ 0x2545f4914f6cdd1dull);
  rearm_timer(idx);
}

/* ---- registry changes ------------------------------------------------- */

void parley__index_wire_peer(const struct parley_index *idx,
                             const struct parley_reg_peer *p,
                             struct parley_wire_peer *w) {
  int64_t seen = parley__index_last_seen(idx, p);
  w->key = p->pk;
  w->addr.ptr = p->addr;
  w->addr.len = strlen(p->addr);
  w->name.ptr = p->name;
  w->name.len = strlen(p->name);
  w->last_seen_ms = seen > 0 ? (uint64_t)seen : 0;
}

/* Observer: subscription changes go to the topic's watchers at once (the
 * frames are only queued; they leave after the turn's sync).  PEER_UP is
 * noted and fanned out by parley__index_submit once apply has returned,
 * because that needs to walk the peer's subscriptions. */
static void on_change(void *ctx, const struct parley_reg_change *ch) {
  struct parley_index *idx = ctx;

  switch (ch->kind) {
  case PARLEY_REG_SUB_ADD:
    parley__index_fanout(idx, ch->topic, PARLEY_WATCH_ADD, ch->peer);
    break;
  case PARLEY_REG_SUB_DEL:
    parley__index_fanout(idx, ch->topic, PARLEY_WATCH_REMOVE, ch->peer);
    break;
  case PARLEY_REG_PEER_UP:
    idx->peer_up = 1;
    memcpy(idx->peer_up_pk, ch->peer->pk, 32);
    parley__index_dash_change(idx, ch);
    break;
  case PARLEY_REG_PEER_DOWN: /* its SUB_DEL events already went out */
    parley__index_dash_change(idx, ch);
    break;
  case PARLEY_REG_ACL_CREATE:
  case PARLEY_REG_MEMBER_ADD:
  case PARLEY_REG_MEMBER_DEL:
  case PARLEY_REG_ACL_ROTATE:
  case PARLEY_REG_MEMBER_KEY:
    parley__index_acl_change(idx, ch);
    break;
  default:
    break;
  }
}

struct peer_up_walk {
  struct parley_index *idx;
  const struct parley_reg_peer *peer;
};

static int peer_up_topic(void *ctx, const char *topic) {
  struct peer_up_walk *w = ctx;
  parley__index_fanout(w->idx, topic, PARLEY_WATCH_ADD, w->peer);
  return 0;
}

void parley__index_after_apply(struct parley_index *idx) {
  const struct parley_reg_peer *p;

  if (!idx->peer_up)
    return;
  idx->peer_up = 0;
  p = parley_registry_peer(idx->reg, idx->peer_up_pk);
  if (p != NULL) {
    struct peer_up_walk w = {idx, p};
    (void)parley_registry_foreach_sub_of(idx->reg, p->pk, peer_up_topic, &w);
  }
}

int parley__index_submit(struct parley_index *idx,
                         const struct parley_reg_cmd *c) {
  int rc = parley_registry_check(idx->reg, c);
  if (rc < 0)
    return rc;
  idx->peer_up = 0;
  rc = parley_registry_apply(idx->reg, c);
  if (rc < 0)
    return rc;
  rc = parley_regstore_append(idx->rs, c);
  if (rc < 0) {
    /* Applied in memory but not logged: it is lost on restart.  Tell the
     * requester it failed; the in-memory state stays as it is. */
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "regstore append: %s",
               parley_strerror(rc));
    idx->st.sync_failures++;
    idx->peer_up = 0;
    return PARLEY_ESTORE;
  }
  idx->dirty = 1;
  parley__index_after_apply(idx);
  return PARLEY_OK;
}

/* ---- held replies ----------------------------------------------------- */

struct ix_reply *parley__index_reply_new(struct parley_index *idx,
                                         struct ix_conn *c, uint32_t req) {
  struct ix_reply *r = parley_calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  r->idx = idx;
  r->conn = c;
  r->req = req;
  return r;
}

void parley__index_reply_text(struct ix_reply *r, const char *text) {
  size_t n = text != NULL ? strlen(text) : 0;
  r->has_text = text != NULL;
  if (n >= sizeof r->text)
    n = sizeof r->text - 1;
  if (n > 0)
    memcpy(r->text, text, n);
  r->text[n] = '\0';
}

void parley__index_reply_queue(struct ix_reply *r) {
  struct ix_conn *c = r->conn;
  struct parley_index *idx = r->idx;

  r->next = NULL;
  if (c->rq_tail != NULL) {
    c->rq_tail->next = r;
  } else {
    c->rq_head = r;
    /* First held reply: the turn-end hook must visit c. */
    c->held_prev = NULL;
    c->held_next = idx->held;
    if (idx->held != NULL)
      idx->held->held_prev = c;
    idx->held = c;
  }
  c->rq_tail = r;
  idx->nheld++;
}

void parley__index_held_drop(struct ix_conn *c) {
  struct parley_index *idx = c->idx;

  if (c->held_prev == NULL && idx->held != c)
    return; /* not on the list */
  if (c->held_prev != NULL)
    c->held_prev->held_next = c->held_next;
  else
    idx->held = c->held_next;
  if (c->held_next != NULL)
    c->held_next->held_prev = c->held_prev;
  c->held_prev = c->held_next = NULL;
}

/* Runs once per loop turn just before the links flush: makes this turn's
 * registry changes durable (single node), then releases the replies that
 * are ready, in request order per link.  This is the group commit: every
 * REGISTER, SUBSCRIBE and UNSUBSCRIBE of the turn was appended to the
 * regstore's buffer, one write and one fdatasync make them all durable,
 * and only then do their OKs leave.  The walk visits only the links with
 * held replies (parley_index.held), never all links. */
static void on_turn_end(void *ctx) {
  struct parley_index *idx = ctx;
  struct ix_conn *c, *next;
  int rc = PARLEY_OK;

  if (idx->closing)
    return;
  if (idx->dirty) {
    rc = parley_regstore_sync(idx->rs, PARLEY_INDEX_COMPACT_AFTER);
    idx->dirty = 0;
    if (rc < 0) {
      idx->st.sync_failures++;
      PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "regstore sync: %s",
                 parley_strerror(rc));
    }
  }
  if (idx->nheld == 0)
    return;
  /* release takes c off the list once its queue is empty; nothing else
   * changes the list meanwhile (sending never closes a link at once). */
  for (c = idx->held; c != NULL; c = next) {
    next = c->held_next;
    parley__index_release(c, rc);
  }
}

/* ---- data directory --------------------------------------------------- */

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dir(const struct parley_index *idx, const char *dir) {
  char path[4096];
  size_t n = strlen(dir);

  if (n == 0 || n >= sizeof path)
    return PARLEY_EINVAL;
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0')
      continue;
    path[i] = '\0';
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
      PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "mkdir %s: %s", path,
                 strerror(errno));
      return PARLEY_EIO;
    }
    path[i] = i == n ? '\0' : '/';
  }
  return PARLEY_OK;
}

static int dump_to_buf(const char *p, size_t n, void *ctx) {
  return parley_buf_append(ctx, p, n) < 0 ? -1 : 0;
}

/* Writes DIR/index.json atomically (temp + rename), mode 0600. */
static int write_index_json(const struct parley_index *idx) {
  char path[4096], tmp[4096];
  struct parley_buf b;
  json_t *o;
  int fd, rc = PARLEY_OK;

  if ((size_t)snprintf(path, sizeof path, "%s/index.json", idx->data_dir) >=
          sizeof path ||
      (size_t)snprintf(tmp, sizeof tmp, "%s/index.json.tmp", idx->data_dir) >=
          sizeof tmp)
    return PARLEY_EINVAL;
  o = json_pack("{s:s, s:s?, s:s, s:s, s:I}", "listen", idx->listen_addr,
                "http", idx->http_port ? idx->http_addr : NULL, "id",
                idx->id_text, "name", idx->name, "pid", (json_int_t)getpid());
  if (o == NULL)
    return PARLEY_ENOMEM;
  if (idx->cons != NULL) {
    struct parley_consensus_status cs;
    parley_consensus_status(idx->cons, &cs);
    for (size_t i = 0; i < cs.nmembers; i++)
      if (cs.members[i].is_self)
        (void)json_object_set_new(o, "raft", json_string(cs.members[i].raft));
    (void)json_object_set_new(o, "node", json_integer((json_int_t)cs.id));
  }
  /* Where `parley-index token create --data DIR` finds the key that signs
   * this cluster's tokens. */
  if (idx->cluster_key_file != NULL)
    (void)json_object_set_new(o, "cluster_key_file",
                              json_string(idx->cluster_key_file));
  parley_buf_init(&b, 64 * 1024);
  if (json_dump_callback(o, dump_to_buf, &b, JSON_COMPACT) < 0 ||
      parley_buf_append(&b, "\n", 1) < 0)
    rc = PARLEY_ENOMEM;
  json_decref(o);
  if (rc < 0) {
    parley_buf_close(&b);
    return rc;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = PARLEY_EIO;
  } else {
    size_t off = 0;
    while (off < b.len) {
      ssize_t w = write(fd, b.data + off, b.len - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        rc = PARLEY_EIO;
        break;
      }
      off += (size_t)w;
    }
    if (close(fd) < 0)
      rc = PARLEY_EIO;
    if (rc == PARLEY_OK && rename(tmp, path) < 0)
      rc = PARLEY_EIO;
    if (rc < 0)
      (void)unlink(tmp);
  }
  parley_buf_close(&b);
  if (rc < 0)
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "write %s: %s", path,
               strerror(errno));
  return rc;
}

/* ---- lifecycle -------------------------------------------------------- */

void parley__index_close_done(struct parley_index *idx) {
  if (--idx->pending_closes > 0)
    return;
  parley_registry_free(idx->reg);
  idx->reg = NULL;
  parley_identity_wipe(&idx->id);
  parley_free(idx->data_dir);
  parley_free(idx->cluster_key_file);
  parley_free(idx);
}

static void on_timer_closed(uv_handle_t *h) {
  parley__index_close_done(h->data);
}

static uint64_t random_seed(void) {
  uint64_t s;
  randombytes_buf(&s, sizeof s);
  return s;
}

static int start(struct parley_index *idx,
                 const struct parley_index_config *cfg) {
  char path[4096];
  struct parley_reg_limits lim;
  struct parley_reg_observer obs;
  struct parley_net_config ncfg;
  struct parley_net_guard guard;
  int created = 0, rc;

  rc = parley_crypto_init();
  if (rc < 0)
    return rc;
  rc = make_dir(idx, idx->data_dir);
  if (rc < 0)
    return rc;
  if ((size_t)snprintf(path, sizeof path, "%s/identity.key", idx->data_dir) >=
      sizeof path)
    return PARLEY_EINVAL;
  rc = parley_identity_load_or_create(path, &idx->id, &created);
  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "identity %s: %s", path,
               parley_strerror(rc));
    return rc;
  }
  parley_id_encode(idx->id.pk, idx->id_text);
  PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "%s identity %s",
             created ? "created" : "loaded", idx->id_text);

  memset(&lim, 0, sizeof lim);
  lim.max_subs_per_peer = idx->max_subs;
  rc = parley_registry_new(&lim, &idx->reg);
  if (rc < 0)
    return rc;
  if (cfg->nmembers == 0) {
    rc = parley_regstore_open(idx->data_dir, idx->reg, idx->log, &idx->rs);
    if (rc < 0) {
      PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "regstore in %s: %s",
                 idx->data_dir, parley_strerror(rc));
      return rc == PARLEY_ENOMEM ? rc : PARLEY_ESTORE;
    }
    rc = parley__index_grant_all(idx);
    if (rc < 0)
      return rc;
    if (parley_lease_count(&idx->leases) > 0)
      PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
                 "restored %zu peers, %zu topics; each has a fresh lease",
                 parley_registry_peer_count(idx->reg),
                 parley_registry_topic_count(idx->reg));
  }
  obs.on_change = on_change;
  obs.ctx = idx;
  parley_registry_set_observer(idx->reg, &obs);
  /* Token keys (created on first start), clients and abuse limits. */
  rc = parley__index_auth_start(idx, cfg, &guard);
  if (rc < 0)
    return rc;
  /* The dashboard's model, alert rules and webhooks. */
  rc = parley__index_dash_start(idx, cfg);
  if (rc < 0)
    return rc;

  memset(&ncfg, 0, sizeof ncfg);
  ncfg.loop = idx->loop;
  ncfg.id = &idx->id;
  ncfg.log = idx->log;
  ncfg.role = PARLEY_ROLE_INDEX;
  ncfg.name = idx->name;
  ncfg.max_frame = idx->max_frame;
  ncfg.max_links = idx->max_links;
  ncfg.on_turn_end = on_turn_end;
  ncfg.ctx = idx;
  ncfg.guard = &guard;
  rc = parley_net_new(&ncfg, &idx->net);
  if (rc < 0)
    return rc;
  rc = parley_net_listen(idx->net, cfg->listen_host, cfg->listen_port,
                         &parley__index_link_cbs, idx, &idx->listener);
  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "listen on %s:%u: %s",
               cfg->listen_host, (unsigned)cfg->listen_port,
               parley_strerror(rc));
    return rc == PARLEY_ENOMEM ? rc : PARLEY_ECONNECT;
  }
  idx->listen_port = parley_listener_port(idx->listener);
  format_addr(idx->listen_addr, sizeof idx->listen_addr, cfg->listen_host,
              idx->listen_port);
  parley_net_set_addr(idx->net, idx->listen_addr);

  if (cfg->http_host != NULL) {
    struct parley_http_config hcfg;
    memset(&hcfg, 0, sizeof hcfg);
    hcfg.loop = idx->loop;
    hcfg.log = idx->log;
    hcfg.host = cfg->http_host;
    hcfg.port = cfg->http_port;
    hcfg.handler = parley__index_http_handler;
    hcfg.ctx = idx;
    rc = parley_http_new(&hcfg, &idx->http);
    if (rc < 0) {
      PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "http on %s:%u: %s",
                 cfg->http_host, (unsigned)cfg->http_port,
                 parley_strerror(rc));
      return rc == PARLEY_ENOMEM ? rc : PARLEY_ECONNECT;
    }
    idx->http_port = parley_http_port(idx->http);
    format_addr(idx->http_addr, sizeof idx->http_addr, cfg->http_host,
                idx->http_port);
  }
  if (cfg->nmembers > 0) {
    /* After the listeners: the other members learn our addresses. */
    rc = parley__index_cluster_start(idx, cfg);
    if (rc < 0)
      return rc;
  }
  rc = write_index_json(idx);
  if (rc < 0)
    return rc;
  PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "index %s listening on %s, http %s",
             idx->id_text, idx->listen_addr, idx->http_addr);
  return PARLEY_OK;
}

int parley_index_new(const struct parley_index_config *cfg,
                     struct parley_index **out) {
  struct parley_index *idx;
  const char *name = cfg->name != NULL ? cfg->name : "parley-index";
  int rc;

  if (cfg->loop == NULL || cfg->data_dir == NULL || cfg->data_dir[0] == '\0' ||
      cfg->listen_host == NULL || strlen(name) > PARLEY_MAX_NAME ||
      (cfg->max_frame != 0 &&
       (cfg->max_frame < 1024 || cfg->max_frame > PARLEY_MAX_FRAME)))
    return PARLEY_EINVAL;
  idx = parley_calloc(1, sizeof *idx);
  if (idx == NULL)
    return PARLEY_ENOMEM;
  idx->data_dir = parley_strdup(cfg->data_dir);
  if (idx->data_dir == NULL) {
    parley_free(idx);
    return PARLEY_ENOMEM;
  }
  idx->loop = cfg->loop;
  idx->log = cfg->log;
  memcpy(idx->name, name, strlen(name) + 1);
  idx->lease_ms = cfg->lease_ms ? cfg->lease_ms : PARLEY_INDEX_DEFAULT_LEASE_MS;
  idx->max_subs = cfg->max_subs ? cfg->max_subs : PARLEY_DEFAULT_MAX_SUBS;
  idx->max_frame = cfg->max_frame ? cfg->max_frame : PARLEY_DEFAULT_MAX_FRAME;
  idx->max_links = cfg->max_links ? cfg->max_links : PARLEY_DEFAULT_MAX_LINKS;
  memcpy(idx->http_addr, "-", 2);
  idx->start_mono = uv_now(cfg->loop);
  parley_lease_table_init(&idx->leases, random_seed());
  parley_map_init(&idx->by_pk, random_seed());
  parley_map_init(&idx->topics, random_seed());
  uv_timer_init(idx->loop, &idx->lease_timer);
  idx->lease_timer.data = idx;
  uv_timer_init(idx->loop, &idx->house_timer);
  idx->house_timer.data = idx;
  uv_timer_init(idx->loop, &idx->dash_timer);
  idx->dash_timer.data = idx;
  if (cfg->cluster_key_file != NULL && cfg->nmembers > 0) {
    char *abs = realpath(cfg->cluster_key_file, NULL);
    idx->cluster_key_file =
        parley_strdup(abs != NULL ? abs : cfg->cluster_key_file);
    free(abs); /* from realpath */
  }

  rc = start(idx, cfg);
  if (rc < 0) {
    parley_index_free(idx);
    return rc;
  }
  *out = idx;
  return PARLEY_OK;
}

void parley_index_free(struct parley_index *idx) {
  if (idx == NULL || idx->closing)
    return;
  idx->closing = 1;
  /* Forget our per-link state first: whenever the net reports the links
   * closed, it calls the detached callbacks, which touch nothing. */
  parley__index_detach_all(idx);
  parley_net_free(idx->net);
  idx->net = NULL;
  parley_http_free(idx->http);
  idx->http = NULL;
  if (idx->reg != NULL)
    parley_registry_set_observer(idx->reg, NULL);
  parley_regstore_close(idx->rs); /* syncs what is still buffered */
  idx->rs = NULL;
  parley_lease_table_close(&idx->leases);
  parley_map_close(&idx->by_pk);
  parley_map_close(&idx->topics); /* emptied by detach_all */
  idx->pending_closes = 1;
  uv_close((uv_handle_t *)&idx->lease_timer, on_timer_closed);
  parley__index_auth_stop(idx); /* after the net and HTTP that use it */
  parley__index_dash_stop(idx); /* after HTTP: its streams are ended */
  /* The consensus node may still apply entries while it winds down (its
   * observer is gone), so the registry goes once it is closed. */
  parley__index_cluster_stop(idx);
}

uint16_t parley_index_listen_port(const struct parley_index *idx) {
  return idx->listen_port;
}

uint16_t parley_index_http_port(const struct parley_index *idx) {
  return idx->http_port;
}

const char *parley_index_listen_addr(const struct parley_index *idx) {
  return idx->listen_addr;
}

const char *parley_index_http_addr(const struct parley_index *idx) {
  return idx->http_addr;
}

int parley_index_is_cluster(const struct parley_index *idx) {
  return idx->cons != NULL;
}

const char *parley_index_id(const struct parley_index *idx) {
  return idx->id_text;
}

void parley_index_get_stats(const struct parley_index *idx,
                            struct parley_index_stats *out) {
  *out = idx->st;
}
