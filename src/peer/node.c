/*
 * node.c — life cycle of a peer node: data directory, identity, store,
 * listener, API, timers; the turn-end hook that commits the store once per
 * loop turn and only then lets acknowledgements go out.
 */
#include "peer/node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

#define DEFAULT_RETENTION_MS (24ull * 3600 * 1000)
#define OUTBOX_TICK_MS 250
#define MAINT_TICK_MS 5000

static void handle_closed(uv_handle_t *h) {
  struct parley_node *n = h->data;
  if (--n->handles_open == 0) {
    parley_identity_wipe(&n->id);
    if (n->id_locked)
      (void)sodium_munlock(&n->id, sizeof n->id);
    parley__trust_free(n);
    parley__ptopic_free(n);
    parley__nohist_free(n);
    parley_free(n->acks);
    parley_free(n->data_dir);
    parley_free(n->name);
    parley_free(n->listen_cfg);
    parley_free(n->advertise_cfg);
    parley_free(n->api_cfg);
    for (size_t i = 0; i < PARLEY_NODE_MAX_INDEX; i++)
      parley_free(n->index_addr[i]);
    sodium_memzero(n->token, sizeof n->token);
    parley_free(n);
  }
}

int parley__node_tx(struct parley_node *n) {
  if (parley_store_in_tx(n->store))
    return PARLEY_OK;
  return parley_store_begin(n->store);
}

void parley__clock_sync(struct parley_node *n) {
  uv_update_time(n->loop);
  n->wall_off_ms = parley_now_ms() - (int64_t)uv_now(n->loop);
}

int parley__subscribe_local(struct parley_node *n, const char *topic,
                            int subscribe) {
  size_t len = strlen(topic);
  int have = parley_map_get(&n->subs, topic, len) != NULL, rc;

  if (subscribe && !have && n->subs.count >= n->cfg.max_subs)
    return PARLEY_ELIMIT;
  if (!subscribe && !have)
    return PARLEY_ENOTFOUND;
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK)
    rc = subscribe ? parley_store_sub_add(n->store, topic)
                   : parley_store_sub_remove(n->store, topic);
  if (rc == PARLEY_OK || rc == PARLEY_EEXIST) {
    if (subscribe) {
      rc = parley_map_put(&n->subs, topic, len, (void *)1, NULL);
    } else {
      (void)parley_map_del(&n->subs, topic, len);
      rc = PARLEY_OK;
    }
  }
  if (rc < 0)
    return rc;
  parley__sync_subscribed(n, topic, subscribe);
  if (subscribe)
    parley__ptopic_probe(n, topic); /* a private topic's list and keys */
  return PARLEY_OK;
}

void parley__msg_id(const uint8_t pk[32], const char *channel, uint64_t seq,
                    char out[MSG_ID_HEX]) {
  crypto_generichash_state st;
  uint8_t seqb[8], h[16];
  for (int i = 0; i < 8; i++)
    seqb[i] = (uint8_t)(seq >> (56 - 8 * i));
  crypto_generichash_init(&st, NULL, 0, sizeof h);
  crypto_generichash_update(&st, pk, 32);
  crypto_generichash_update(&st, (const uint8_t *)channel, strlen(channel));
  crypto_generichash_update(&st, seqb, sizeof seqb);
  crypto_generichash_final(&st, h, sizeof h);
  parley_hex_encode(h, sizeof h, out);
}

void parley__direct_channel(const uint8_t to[32], char out[CHANNEL_MAX]) {
  out[0] = '@';
  parley_id_encode(to, out + 1);
}

struct rpeer *parley__node_peer(struct parley_node *n, const uint8_t pk[32],
                                int create) {
  struct rpeer *p = parley_map_get(&n->peers, pk, 32);
  if (p != NULL || !create)
    return p;
  p = parley_calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  memcpy(p->pk, pk, 32);
  parley_id_encode(pk, p->id);
  p->pending_tail = &p->pending;
  if (parley_map_put(&n->peers, pk, 32, p, NULL) < 0) {
    parley_free(p);
    return NULL;
  }
  return p;
}

/* Commits what this loop turn wrote, then releases the acknowledgements
 * that depend on it.  Runs from the net's prepare hook, before links
 * flush. */
static void turn_end(void *ctx) {
  struct parley_node *n = ctx;
  int rc;

  if (n->store == NULL)
    return;
  if (parley_store_in_tx(n->store)) {
    rc = parley_store_commit(n->store);
    if (rc < 0) {
      PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "store commit failed: %s (%s)",
                 parley_strerror(rc), parley_store_errmsg(n->store));
      if (parley_store_rollback(n->store) < 0)
        PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "store rollback failed");
      n->nacks = 0; /* nothing they acknowledge is durable */
      return;
    }
  }
  parley__flush_acks(n);
}

static int mkdir_p(const char *dir) {
  char tmp[4096];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof tmp)
    return PARLEY_EINVAL;
  memcpy(tmp, dir, len + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return PARLEY_EIO;
      *p = '/';
    }
  }
  if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
    return PARLEY_EIO;
  return PARLEY_OK;
}

static int write_api_file(struct parley_node *n) {
  char path[4200], tmp[4210], text[512];
  int fd, len;
  ssize_t w;

  snprintf(path, sizeof path, "%s/api.json", n->data_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  len = snprintf(text, sizeof text,
                 "{\"addr\": \"%s\", \"token\": \"%s\", \"pid\": %ld, "
                 "\"id\": \"%s\"}\n",
                 n->api_addr, n->token, (long)getpid(), n->id_text);
  if (len < 0 || (size_t)len >= sizeof text)
    return PARLEY_EINTERNAL;
  (void)unlink(tmp);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return PARLEY_EIO;
  w = write(fd, text, (size_t)len);
  if (w != len || fsync(fd) < 0) {
    close(fd);
    unlink(tmp);
    return PARLEY_EIO;
  }
  close(fd);
  if (rename(tmp, path) < 0)
    return PARLEY_EIO;
  return PARLEY_OK;
}

static int load_sub(void *ctx, const char *topic) {
  struct parley_node *n = ctx;
  return parley_map_put(&n->subs, topic, strlen(topic), (void *)1, NULL);
}

static char *dup_or_null(const char *s) {
  return s ? parley_strdup(s) : NULL;
}

static int copy_config(struct parley_node *n,
                       const struct parley_node_config *cfg) {
  n->cfg = *cfg;
  n->data_dir = parley_strdup(cfg->data_dir);
  n->name = parley_strdup(cfg->name ? cfg->name : "");
  n->listen_cfg = dup_or_null(cfg->listen);
  n->advertise_cfg = dup_or_null(cfg->advertise);
  n->api_cfg = dup_or_null(cfg->api);
  if (!n->data_dir || !n->name || (cfg->listen && !n->listen_cfg) ||
      (cfg->advertise && !n->advertise_cfg) || (cfg->api && !n->api_cfg))
    return PARLEY_ENOMEM;
  for (size_t i = 0; i < cfg->nindex; i++) {
    n->index_addr[i] = parley_strdup(cfg->index[i]);
    if (n->index_addr[i] == NULL)
      return PARLEY_ENOMEM;
    n->cfg.index[i] = n->index_addr[i];
  }
  n->cfg.data_dir = n->data_dir;
  n->cfg.name = n->name;
  n->cfg.listen = n->listen_cfg;
  n->cfg.advertise = n->advertise_cfg;
  n->cfg.api = n->api_cfg;
  if (n->cfg.max_frame == 0)
    n->cfg.max_frame = PARLEY_DEFAULT_MAX_FRAME;
  if (n->cfg.max_message == 0)
    n->cfg.max_message = PARLEY_DEFAULT_MAX_MESSAGE;
  if (n->cfg.max_message > n->cfg.max_frame - 512)
    n->cfg.max_message = n->cfg.max_frame - 512;
  if (n->cfg.max_topic == 0 || n->cfg.max_topic > PARLEY_MAX_TOPIC)
    n->cfg.max_topic = PARLEY_DEFAULT_MAX_TOPIC;
  if (n->cfg.max_links == 0)
    n->cfg.max_links = PARLEY_DEFAULT_MAX_LINKS;
  if (n->cfg.max_subs == 0)
    n->cfg.max_subs = PARLEY_DEFAULT_MAX_SUBS;
  if (n->cfg.max_outbox == 0)
    n->cfg.max_outbox = PARLEY_DEFAULT_MAX_OUTBOX;
  if (n->cfg.retention_ms == 0)
    n->cfg.retention_ms = DEFAULT_RETENTION_MS;
  if (n->cfg.peer_rate == 0)
    n->cfg.peer_rate = PARLEY_NODE_DEFAULT_PEER_RATE;
  if (n->cfg.peer_burst == 0)
    n->cfg.peer_burst = n->cfg.peer_rate > UINT32_MAX / 2 ? UINT32_MAX
                                                          : 2 * n->cfg.peer_rate;
  /* Never keep the caller's passphrase pointer past parley_node_new. */
  n->cfg.passphrase = NULL;
  n->cfg.passphrase_len = 0;
  return PARLEY_OK;
}

static int start_listener(struct parley_node *n) {
  char host[PARLEY_MAX_ADDR + 1];
  uint16_t port = 0;
  int rc;

  if (n->cfg.listen) {
    rc = parley_parse_hostport(n->cfg.listen, host, sizeof host, &port);
    if (rc < 0)
      return rc;
  } else {
    snprintf(host, sizeof host, "127.0.0.1");
  }
  rc = parley_net_listen(n->net, host, port, &n->peer_cbs, n, &n->listener);
  if (rc < 0)
    return rc;
  port = parley_listener_port(n->listener);
  if (n->cfg.advertise) {
    snprintf(n->addr, sizeof n->addr, "%s", n->cfg.advertise);
  } else {
    const char *h = host;
    /* A wildcard bind is reachable on loopback at least. */
    if (strcmp(h, "0.0.0.0") == 0)
      h = "127.0.0.1";
    rc = parley_format_hostport(n->addr, sizeof n->addr, h, port);
    if (rc < 0)
      return rc;
  }
  parley_net_set_addr(n->net, n->addr);
  return PARLEY_OK;
}

static int start_api(struct parley_node *n) {
  char host[PARLEY_MAX_ADDR + 1];
  uint16_t port = 0;
  struct parley_http_config hc;
  uint8_t tok[32];
  int rc;

  if (n->cfg.api) {
    rc = parley_parse_hostport(n->cfg.api, host, sizeof host, &port);
    if (rc < 0)
      return rc;
  } else {
    snprintf(host, sizeof host, "127.0.0.1");
  }
  memset(&hc, 0, sizeof hc);
  hc.loop = n->loop;
  hc.log = &n->log;
  hc.host = host;
  hc.port = port;
  /* Room for a maximal body in base64 plus the JSON around it. */
  hc.max_body = (size_t)n->cfg.max_message / 3u * 4u + 65536u;
  if (hc.max_body > PARLEY_MAX_HTTP_BODY)
    hc.max_body = PARLEY_MAX_HTTP_BODY;
  hc.handler = parley__api_handler;
  hc.ctx = n;
  rc = parley_http_new(&hc, &n->http);
  if (rc < 0)
    return rc;
  rc = parley_format_hostport(n->api_addr, sizeof n->api_addr, host,
                              parley_http_port(n->http));
  if (rc < 0)
    return rc;
  randombytes_buf(tok, sizeof tok);
  parley_hex_encode(tok, sizeof tok, n->token);
  sodium_memzero(tok, sizeof tok);
  return write_api_file(n);
}

static void maint_cb(uv_timer_t *t);

/* Loads or creates the identity (DIR/identity.key), encrypted under the
 * passphrase when one is given, and keeps it in locked memory. */
static int load_identity(struct parley_node *n, const char *pass,
                         size_t pass_len) {
  char path[4200];
  int created = 0, rc;

  /* Locked before the secret lands in it, so it never reaches swap. */
  n->id_locked = sodium_mlock(&n->id, sizeof n->id) == 0;
  if (!n->id_locked)
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG,
               "cannot lock the identity in memory (RLIMIT_MEMLOCK)");
  snprintf(path, sizeof path, "%s/identity.key", n->data_dir);
  rc = parley_identity_load_or_create_pass(path, pass, pass_len,
                                           n->cfg.kdf_opslimit,
                                           n->cfg.kdf_memlimit, &n->id,
                                           &created);
  if (rc < 0) {
    const char *why = parley_strerror(rc);
    if (rc == PARLEY_EDENIED)
      why = "the key is encrypted: give its passphrase (--passphrase-file "
            "or PARLEY_PASSPHRASE)";
    else if (rc == PARLEY_ECRYPTO)
      why = "wrong passphrase (or the key file was altered)";
    else if (rc == PARLEY_EINVAL && pass != NULL)
      why = "the key file is not encrypted: convert it first with "
            "parleyd --encrypt-identity";
    else if (rc == PARLEY_EAUTH)
      why = "refused: not a regular 0600 key file";
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "identity %s: %s", path, why);
    return rc;
  }
  parley_id_encode(n->id.pk, n->id_text);
  if (created)
    PARLEY_LOG(&n->log, PARLEY_LOG_INFO, "new identity %s%s", n->id_text,
               pass ? " (key encrypted under the passphrase)" : "");
  return PARLEY_OK;
}

static int start(struct parley_node *n, const char *pass, size_t pass_len) {
  char path[4200];
  struct parley_net_config nc;
  int rc;

  rc = parley_crypto_init();
  if (rc < 0)
    return rc;
  rc = mkdir_p(n->data_dir);
  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "cannot create %s: %s",
               n->data_dir, strerror(errno));
    return rc;
  }
  rc = load_identity(n, pass, pass_len);
  if (rc < 0)
    return rc;

  snprintf(path, sizeof path, "%s/store.db", n->data_dir);
  rc = parley_store_open(path, &n->log, &n->store);
  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "store %s: %s", path,
               parley_strerror(rc));
    return rc;
  }
  if (n->cfg.sync_os) {
    rc = parley_store_set_sync(n->store, PARLEY_STORE_SYNC_OS);
    if (rc < 0)
      return rc;
  }
  rc = parley_store_sub_list(n->store, load_sub, n);
  if (rc < 0)
    return rc;
  rc = parley_store_outbox_count(n->store, &n->outbox_depth);
  if (rc < 0)
    return rc;
  rc = parley__trust_load(n);
  if (rc < 0)
    return rc;
  rc = parley__ptopic_load(n);
  if (rc < 0)
    return rc;
  rc = parley__nohist_load(n);
  if (rc < 0)
    return rc;

  memset(&nc, 0, sizeof nc);
  nc.loop = n->loop;
  nc.id = &n->id;
  nc.log = &n->log;
  nc.role = PARLEY_ROLE_PEER;
  nc.name = n->name;
  nc.max_frame = n->cfg.max_frame;
  nc.max_links = n->cfg.max_links;
  nc.on_turn_end = turn_end;
  nc.ctx = n;
  rc = parley_net_new(&nc, &n->net);
  if (rc < 0)
    return rc;
  rc = start_listener(n);
  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "cannot listen on %s: %s",
               n->cfg.listen ? n->cfg.listen : "127.0.0.1:0",
               parley_strerror(rc));
    return rc;
  }
  rc = start_api(n);
  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "cannot start API on %s: %s",
               n->cfg.api ? n->cfg.api : "127.0.0.1:0", parley_strerror(rc));
    return rc;
  }
  uv_timer_start(&n->outbox_timer, parley__outbox_timer_cb, OUTBOX_TICK_MS,
                 OUTBOX_TICK_MS);
  parley__clock_sync(n);
  uv_timer_start(&n->maint_timer, maint_cb, MAINT_TICK_MS, MAINT_TICK_MS);
  parley__sync_start(n);
  parley__report_start(n);
  parley__ic_start(n);
  PARLEY_LOG(&n->log, PARLEY_LOG_INFO,
             "peer %s listening on %s, API on %s, %llu queued in outbox",
             n->id_text, n->addr, n->api_addr,
             (unsigned long long)n->outbox_depth);
  return PARLEY_OK;
}

/* Periodic upkeep: drops outbox rows whose recipient has been gone longer
 * than the retention window, and records that connected peers are alive. */
static void maint_cb(uv_timer_t *t) {
  struct parley_node *n = t->data;
  struct parley_map_iter it;
  struct parley_map_entry *e;
  int64_t now = parley_now_ms();
  uint64_t dropped = 0;
  int rc;

  parley__clock_sync(n); /* follows clock adjustments */
  parley__api_keepalive(n);
  if (parley__node_tx(n) < 0)
    return;
  parley_map_iter_init(&it, &n->peers);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct rpeer *p = e->value;
    if (p->links && p->links->open) {
      p->last_seen_ms = now;
      rc = parley_store_peer_seen(n->store, p->pk, p->addr, p->name, now);
      if (rc < 0)
        PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "peer cache: %s",
                   parley_strerror(rc));
    }
  }
  rc = parley_store_outbox_expire(
      n->store, now - (int64_t)n->cfg.retention_ms, &dropped);
  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "outbox expiry: %s",
               parley_strerror(rc));
  } else if (dropped > 0) {
    n->m.expired += dropped;
    n->outbox_depth = n->outbox_depth > dropped ? n->outbox_depth - dropped : 0;
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "dropped %llu outbox entries past the retention window",
               (unsigned long long)dropped);
  }
}

int parley_node_new(const struct parley_node_config *cfg,
                    struct parley_node **out) {
  struct parley_node *n;
  int rc;

  if (cfg->loop == NULL || cfg->data_dir == NULL || cfg->nindex == 0 ||
      cfg->nindex > PARLEY_NODE_MAX_INDEX)
    return PARLEY_EINVAL;
  n = parley_calloc(1, sizeof *n);
  if (n == NULL)
    return PARLEY_ENOMEM;
  n->loop = cfg->loop;
  if (cfg->log)
    n->log = *cfg->log;
  n->started_ms = parley_mono_ms();
  parley_map_init(&n->subs, 0);
  parley_map_init(&n->routes, 0);
  parley_map_init(&n->ptopics, 0);
  parley_map_init(&n->nohist, 0);
  parley_map_init(&n->ackwait_by, randombytes_random());
  parley_map_init(&n->peers, randombytes_random());
  parley__peer_link_cbs(&n->peer_cbs);
  parley_histogram_init_latency(&n->m.delivery_latency);
  parley_histogram_init_latency(&n->m.ack_latency);
  uv_timer_init(n->loop, &n->hb_timer);
  uv_timer_init(n->loop, &n->redial_timer);
  uv_timer_init(n->loop, &n->outbox_timer);
  uv_timer_init(n->loop, &n->maint_timer);
  uv_timer_init(n->loop, &n->report_timer);
  n->report_timer.data = n;
  parley_map_init(&n->topic_stats, 0);
  n->hb_timer.data = n->redial_timer.data = n;
  n->outbox_timer.data = n->maint_timer.data = n;
  n->handles_open = 5;

  rc = copy_config(n, cfg);
  if (rc == PARLEY_OK)
    rc = start(n, cfg->passphrase, cfg->passphrase_len);
  if (rc < 0) {
    parley_node_free(n);
    return rc;
  }
  *out = n;
  return PARLEY_OK;
}

void parley_node_free(struct parley_node *n) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  if (n == NULL || n->closing)
    return;
  n->closing = 1;
  parley__sync_stop(n);
  parley__ic_stop(n);
  parley__ackwait_cancel_all(n);
  parley__api_close_streams(n);
  if (n->store) {
    if (parley_store_in_tx(n->store) && parley_store_commit(n->store) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "final commit failed");
  }
  /* Detach every peer link from the node before the net closes them. */
  parley_map_iter_init(&it, &n->peers);
  while ((e = parley_map_iter_next(&it)) != NULL)
    parley__rpeer_free(e->value);
  parley_map_close(&n->peers);
  parley_map_iter_init(&it, &n->routes);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct route *r = e->value;
    parley_map_close(&r->subs);
    parley_free(r);
  }
  parley_map_close(&n->routes);
  parley_map_close(&n->subs);
  parley_map_close(&n->ackwait_by);
  parley__report_free(n);
  parley_http_free(n->http);
  n->http = NULL;
  parley_net_free(n->net);
  n->net = NULL;
  parley_store_close(n->store);
  n->store = NULL;
  uv_close((uv_handle_t *)&n->hb_timer, handle_closed);
  uv_close((uv_handle_t *)&n->redial_timer, handle_closed);
  uv_close((uv_handle_t *)&n->outbox_timer, handle_closed);
  uv_close((uv_handle_t *)&n->maint_timer, handle_closed);
  uv_close((uv_handle_t *)&n->report_timer, handle_closed);
}

const char *parley_node_id(const struct parley_node *n) { return n->id_text; }
const char *parley_node_addr(const struct parley_node *n) { return n->addr; }
const char *parley_node_api_addr(const struct parley_node *n) {
  return n->api_addr;
}
