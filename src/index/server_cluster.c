/* server_cluster.c — parley-index as a member of a replicated cluster:
 * consensus hooks, proposals on behalf of peers, leases on the leader,
 * /v1/cluster and the raft metrics.  docs/internals/CLUSTER.md. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "index/server_int.h"
#include "metrics/prom.h"

/* ---- consensus hooks ------------------------------------------------- */

static void on_applied(void *ctx, const struct parley_reg_cmd *c, int rc) {
  struct parley_index *idx = ctx;
  (void)c;
  (void)rc;
  if (idx->closing) {
    idx->peer_up = 0;
    return;
  }
  parley__index_after_apply(idx);
}

static void on_restored(void *ctx) {
  struct parley_index *idx = ctx;
  if (idx->closing)
    return;
  /* The registry jumped ahead without events: every watcher's view is
   * stale.  They reconnect and WATCH again. */
  PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
             "registry replaced by the leader's snapshot: closing watching "
             "links so they WATCH again");
  parley__index_drop_watchers(idx, PARLEY_EUNAVAIL);
}

static void on_leadership(void *ctx, int leader) {
  struct parley_index *idx = ctx;
  int rc;

  if (idx->closing)
    return;
  idx->leader = leader;
  if (!leader) {
    /* Leases live on the leader only; the next one grants fresh ones. */
    parley__index_drop_leases(idx);
    return;
  }
  rc = parley__index_grant_all(idx);
  if (rc < 0)
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "granting leases: %s",
               parley_strerror(rc));
  PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
             "leading: %zu registered peers each get a fresh lease of %llu ms",
             parley_registry_peer_count(idx->reg),
             (unsigned long long)idx->lease_ms);
}

/* ---- lifecycle ------------------------------------------------------- */

int parley__index_cluster_start(struct parley_index *idx,
                                const struct parley_index_config *cfg) {
  struct parley_consensus_config cc;
  struct parley_consensus_node *nodes;
  int rc;

  if (cfg->cluster_key == NULL || cfg->node_id == 0 ||
      cfg->nmembers > PARLEY_CONSENSUS_MAX_MEMBERS)
    return PARLEY_EINVAL;
  nodes = parley_calloc(cfg->nmembers, sizeof *nodes);
  if (nodes == NULL)
    return PARLEY_ENOMEM;
  for (size_t i = 0; i < cfg->nmembers; i++) {
    size_t n = strlen(cfg->members[i].raft_addr);
    if (n > PARLEY_MAX_ADDR || cfg->members[i].id == 0) {
      parley_free(nodes);
      return PARLEY_EINVAL;
    }
    nodes[i].id = cfg->members[i].id;
    memcpy(nodes[i].raft, cfg->members[i].raft_addr, n + 1);
  }
  memset(&cc, 0, sizeof cc);
  cc.loop = idx->loop;
  cc.log = idx->log;
  cc.id = &idx->id;
  cc.data_dir = idx->data_dir;
  cc.self_id = cfg->node_id;
  cc.nodes = nodes;
  cc.nnodes = cfg->nmembers;
  cc.join = cfg->join;
  cc.listen_addr = idx->listen_addr;
  cc.http_addr = idx->http_port ? idx->http_addr : NULL;
  cc.cluster_key = cfg->cluster_key;
  cc.name = idx->name;
  cc.reg = idx->reg;
  cc.hooks.applied = on_applied;
  cc.hooks.restored = on_restored;
  cc.hooks.leadership = on_leadership;
  cc.hooks.ctx = idx;
  cc.election_ms = cfg->raft_election_ms;
  cc.heartbeat_ms = cfg->raft_heartbeat_ms;
  cc.snapshot_threshold = cfg->raft_snapshot_threshold;
  cc.snapshot_trailing = cfg->raft_snapshot_trailing;
  rc = parley_consensus_new(&cc, &idx->cons);
  parley_free(nodes);
  return rc;
}

static void consensus_closed(void *ctx) { parley__index_close_done(ctx); }

void parley__index_cluster_stop(struct parley_index *idx) {
  struct parley_consensus *c = idx->cons;
  if (c == NULL)
    return;
  idx->cons = NULL;
  idx->leader = 0;
  idx->pending_closes++;
  parley_consensus_free(c, consensus_closed, idx);
}

/* ---- writes ---------------------------------------------------------- */

int parley__index_writable(const struct parley_index *idx) {
  if (idx->cons == NULL)
    return 1;
  return idx->leader && parley_consensus_is_leader(idx->cons);
}

/* The leader's peer address for an ENOTLEADER answer ("" if unknown, or
 * if it is us and we are not ready yet). */
static void leader_text(const struct parley_index *idx, char *out) {
  char http[PARLEY_MAX_ADDR + 1];
  uint64_t id = 0;

  out[0] = '\0';
  if (idx->cons == NULL)
    return;
  parley_consensus_leader(idx->cons, &id, out, http);
  if (strcmp(out, idx->listen_addr) == 0)
    out[0] = '\0';
}

void parley__index_redirect(struct ix_conn *c, uint32_t req) {
  char to[PARLEY_MAX_ADDR + 1];
  leader_text(c->idx, to);
  c->idx->redirects++;
  parley__index_reply(c, req, PARLEY_ENOTLEADER, to, 0, 0);
}

static void on_proposed(void *ctx, int rc) {
  struct ix_reply *r = ctx;
  struct parley_index *idx = r->idx;
  struct ix_conn *c = r->conn;
  char id[PARLEY_ID_TEXT_LEN + 1], to[PARLEY_MAX_ADDR + 1];

  r->waiting = 0;
  r->code = rc;
  if (idx->closing) {
    if (c == NULL)
      parley_free(r);
    return;
  }
  parley_id_encode(r->pk, id);
  switch (r->kind) {
  case PARLEY_REG_REGISTER:
    if (c != NULL && c->reg_inflight > 0)
      c->reg_inflight--;
    if (rc == PARLEY_OK) {
      idx->st.registrations++;
      r->value = idx->lease_ms;
      if (c != NULL)
        parley__index_claim_link(c);
      PARLEY_LOG(idx->log, PARLEY_LOG_DEBUG, "peer %s registered", id);
    } else if (parley_registry_peer(idx->reg, r->pk) == NULL) {
      /* No lease for a peer the registry does not hold. */
      (void)parley_lease_remove(&idx->leases, r->pk);
    }
    break;
  case PARLEY_REG_EXPIRE:
    if (rc == PARLEY_OK) {
      idx->st.expiries++;
      PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "peer %s expired (lease ran out)",
                 id);
    } else {
      PARLEY_LOG(idx->log, PARLEY_LOG_WARN, "expire %s: %s", id,
                 parley_strerror(rc));
    }
    break;
  default:
    break;
  }
  switch (rc) {
  case PARLEY_OK:
    break;
  case PARLEY_ENOTLEADER:
    leader_text(idx, to);
    parley__index_reply_text(r, to);
    idx->redirects++;
    break;
  case PARLEY_EUNKNOWNPEER:
    parley__index_reply_text(r, "not registered");
    break;
  case PARLEY_ELIMIT:
    parley__index_reply_text(r, "too many subscriptions");
    break;
  default:
    parley__index_reply_text(r, parley_strerror(rc));
    break;
  }
  /* A reply on a link is sent by the turn-end hook, in request order. */
  if (c == NULL)
    parley_free(r);
}

int parley__index_propose(struct parley_index *idx, struct ix_conn *c,
                          uint32_t req, const struct parley_reg_cmd *cmd) {
  struct ix_reply *r;
  int rc;

  if (idx->cons == NULL)
    return PARLEY_ENOTLEADER;
  r = parley__index_reply_new(idx, c, req);
  if (r == NULL)
    return PARLEY_ENOMEM;
  r->waiting = 1;
  r->kind = cmd->type;
  memcpy(r->pk, cmd->pk, 32);
  rc = parley_consensus_propose(idx->cons, cmd, on_proposed, r);
  if (rc < 0) {
    parley_free(r);
    return rc;
  }
  idx->proposals++;
  if (c != NULL) {
    if (cmd->type == PARLEY_REG_REGISTER)
      c->reg_inflight++;
    parley__index_reply_queue(r);
  }
  return PARLEY_OK;
}

/* ---- HTTP ------------------------------------------------------------ */

static json_t *str_or_null(const char *s) {
  return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *cluster_json(const struct parley_index *idx) {
  struct parley_consensus_status cs;
  json_t *o, *members, *leader;

  parley_consensus_status(idx->cons, &cs);
  members = json_array();
  if (members == NULL)
    return NULL;
  for (size_t i = 0; i < cs.nmembers; i++) {
    const struct parley_consensus_member *m = &cs.members[i];
    json_t *e = json_pack("{s:I, s:s, s:o, s:o, s:s, s:o, s:b, s:b}", "id",
                          (json_int_t)m->id, "raft", m->raft, "listen",
                          str_or_null(m->listen), "http", str_or_null(m->http),
                          "role", parley_consensus_role_name(m->role), "key",
                          str_or_null(m->is_self ? idx->id_text : m->key),
                          "reachable", m->reachable, "self", m->is_self);
    if (e == NULL || json_array_append_new(members, e) < 0) {
      json_decref(members);
      return NULL;
    }
  }
  if (cs.leader_id != 0)
    leader = json_pack("{s:I, s:s, s:o, s:o}", "id", (json_int_t)cs.leader_id,
                       "raft", cs.leader_raft, "listen",
                       str_or_null(cs.leader_listen), "http",
                       str_or_null(cs.leader_http));
  else
    leader = json_null();
  o = json_pack(
      "{s:I, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:o}", "id", (json_int_t)cs.id,
      "role", parley_consensus_state_name(cs.state), "leader", leader, "term",
      (json_int_t)cs.term, "commit_index", (json_int_t)cs.commit_index,
      "last_applied", (json_int_t)cs.last_applied, "last_index",
      (json_int_t)cs.last_index, "leader_changes",
      (json_int_t)cs.leader_changes, "members", members);
  return o;
}

/* A membership change waiting for its commit; the HTTP request stays
 * suspended until then (or until its client goes away). */
struct http_change {
  struct parley_index *idx;
  struct parley_http_req *r; /* NULL once the client went away */
};

static void change_gone(void *data, struct parley_http_req *r) {
  struct http_change *hc = data;
  (void)r;
  hc->r = NULL;
}

static unsigned status_of(int rc) {
  switch (rc) {
  case PARLEY_EINVAL:
    return 400;
  case PARLEY_ENOTFOUND:
    return 404;
  case PARLEY_EEXIST:
  case PARLEY_EUNAVAIL:
    return 409;
  case PARLEY_ENOTLEADER:
    return 421;
  case PARLEY_ECANCELED:
  case PARLEY_ECONNECT:
    return 503;
  default:
    return 500;
  }
}

static void respond_not_leader(struct parley_index *idx,
                               struct parley_http_req *r) {
  char listen[PARLEY_MAX_ADDR + 1], http[PARLEY_MAX_ADDR + 1];
  uint64_t id = 0;

  parley_consensus_leader(idx->cons, &id, listen, http);
  if (id != 0 && strcmp(listen, idx->listen_addr) == 0)
    http[0] = '\0'; /* us, but not ready yet */
  parley__index_respond_json(
      r, 421,
      json_pack("{s:s, s:s, s:I, s:o}", "error",
                "not the leader: send membership changes to the leader", "code",
                "ENOTLEADER", "leader_id", (json_int_t)id, "leader_http",
                str_or_null(http)),
      NULL);
}

static void change_done(void *ctx, int rc) {
  struct http_change *hc = ctx;
  struct parley_index *idx = hc->idx;
  struct parley_http_req *r = hc->r;

  parley_free(hc);
  if (r == NULL)
    return;
  if (idx->closing || idx->cons == NULL) {
    parley__index_respond_error(r, 503, PARLEY_ECANCELED,
                                "index is shutting down", NULL);
    return;
  }
  if (rc == PARLEY_ENOTLEADER) {
    respond_not_leader(idx, r);
    return;
  }
  if (rc < 0) {
    parley__index_respond_error(r, status_of(rc), rc, parley_strerror(rc),
                                NULL);
    return;
  }
  parley__index_respond_json(r, 200, cluster_json(idx), NULL);
}

static void post_change(struct parley_index *idx, struct parley_http_req *r,
                        int add) {
  const uint8_t *body;
  struct http_change *hc;
  json_error_t jerr;
  json_t *o;
  json_int_t id = 0;
  const char *raft = NULL;
  size_t len = 0;
  int rc;

  if (!parley_consensus_is_leader(idx->cons)) {
    respond_not_leader(idx, r);
    return;
  }
  body = parley_http_body(r, &len);
  o = body != NULL ? json_loadb((const char *)body, len, 0, &jerr) : NULL;
  if (o == NULL ||
      (add ? json_unpack(o, "{s:I, s:s}", "id", &id, "raft", &raft)
           : json_unpack(o, "{s:I}", "id", &id)) != 0 ||
      id <= 0) {
    json_decref(o);
    parley__index_respond_error(
        r, 400, PARLEY_EINVAL,
        add ? "want {\"id\": N, \"raft\": \"HOST:PORT\"}" : "want {\"id\": N}",
        NULL);
    return;
  }
  hc = parley_calloc(1, sizeof *hc);
  if (hc == NULL) {
    json_decref(o);
    parley__index_respond_error(r, 500, PARLEY_ENOMEM, "out of memory", NULL);
    return;
  }
  hc->idx = idx;
  hc->r = r;
  rc =
      add ? parley_consensus_add(idx->cons, (uint64_t)id, raft, change_done, hc)
          : parley_consensus_remove(idx->cons, (uint64_t)id, change_done, hc);
  json_decref(o);
  if (rc < 0) {
    parley_free(hc);
    if (rc == PARLEY_ENOTLEADER)
      respond_not_leader(idx, r);
    else
      parley__index_respond_error(
          r, status_of(rc), rc,
          rc == PARLEY_EUNAVAIL    ? "another membership change is in progress"
          : rc == PARLEY_EEXIST    ? "that id or address is already a member"
          : rc == PARLEY_ENOTFOUND ? "no such member"
                                   : parley_strerror(rc),
          NULL);
    return;
  }
  parley_http_set_close_cb(r, change_gone, hc);
  parley_http_suspend(r);
}

void parley__index_http_cluster(struct parley_index *idx,
                                struct parley_http_req *r) {
  static const char *const allow_get[] = {"Allow", "GET, HEAD", NULL};
  static const char *const allow_post[] = {"Allow", "POST", NULL};
  const char *method = parley_http_method(r);
  const char *path = parley_http_path(r);
  int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

  if (idx->cons == NULL) {
    parley__index_respond_error(r, 404, PARLEY_ENOTFOUND,
                                "this index runs without --cluster", NULL);
    return;
  }
  if (strcmp(path, "/v1/cluster") == 0) {
    if (!get)
      parley__index_respond_error(r, 405, PARLEY_EINVAL, "method not allowed",
                                  allow_get);
    else
      parley__index_respond_json(r, 200, cluster_json(idx), NULL);
    return;
  }
  if (strcmp(path, "/v1/cluster/add") != 0 &&
      strcmp(path, "/v1/cluster/remove") != 0) {
    parley__index_respond_error(r, 404, PARLEY_ENOTFOUND, "no such endpoint",
                                NULL);
    return;
  }
  if (strcmp(method, "POST") != 0) {
    parley__index_respond_error(r, 405, PARLEY_EINVAL, "method not allowed",
                                allow_post);
    return;
  }
  post_change(idx, r, strcmp(path, "/v1/cluster/add") == 0);
}

/* ---- metrics --------------------------------------------------------- */

struct metric_row {
  const char *name, *type, *help;
  double v;
};

int parley__index_cluster_metrics(struct parley_index *idx,
                                  struct parley_buf *b) {
  struct parley_consensus_status cs;
  const struct parley_rtransport_stats *ts;
  int rc = 0;

  if (idx->cons == NULL)
    return 0;
  parley_consensus_status(idx->cons, &cs);
  ts = parley_consensus_transport_stats(idx->cons);
  const struct metric_row rows[] = {
      {"parley_index_raft_term", "gauge", "Current Raft term.",
       (double)cs.term},
      {"parley_index_raft_commit_index", "gauge",
       "Highest Raft log index known to be committed.",
       (double)cs.commit_index},
      {"parley_index_raft_last_applied", "gauge",
       "Highest Raft log index applied to the registry here.",
       (double)cs.last_applied},
      {"parley_index_raft_is_leader", "gauge",
       "1 if this node is the leader serving writes.",
       parley__index_writable(idx) ? 1.0 : 0.0},
      {"parley_index_raft_leader_id", "gauge",
       "Id of the leader this node knows of (0: none).",
       (double)cs.leader_id},
      {"parley_index_raft_leader_changes_total", "counter",
       "Times this node saw a new leader.", (double)cs.leader_changes},
      {"parley_index_raft_members", "gauge",
       "Members in the current configuration.", (double)cs.nmembers},
      {"parley_index_raft_proposals_total", "counter",
       "Registry commands proposed by this node as leader.",
       (double)idx->proposals},
      {"parley_index_raft_redirects_total", "counter",
       "Write requests answered with ENOTLEADER.", (double)idx->redirects},
      {"parley_index_raft_links_open", "gauge",
       "Verified links to other members.", (double)ts->links_open},
      {"parley_index_raft_auth_failures_total", "counter",
       "Member links refused for a bad proof or a changed key.",
       (double)ts->auth_failures},
      {"parley_index_raft_bytes_received_total", "counter",
       "Raft stream bytes received from other members.", (double)ts->bytes_in},
      {"parley_index_raft_bytes_sent_total", "counter",
       "Raft stream bytes sent to other members.", (double)ts->bytes_out},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0] && rc == 0; i++)
    rc = parley_prom_metric(b, rows[i].name, rows[i].type, rows[i].help,
                            rows[i].v);
  return rc;
}
