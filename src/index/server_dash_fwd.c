/* server_dash_fwd.c — the dashboard in a cluster: the leader evaluates the
 * alert rules, and a follower shows the leader's figures
 * (server_dash_int.h has the design). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "index/server_dash_int.h"

/* A forwarded GET answers within this, else this node answers itself. */
#define FWD_TIMEOUT_MS 4000u
/* A stream feed not answered after this is abandoned for the tick's own
 * figures. */
#define FEED_TIMEOUT_MS 2500u
/* Largest answer taken from the leader (a whole 24 h history). */
#define FWD_MAX_ANSWER (48u * 1024u * 1024u)
/* The token used for feeds and polls lives this long. */
#define TOKEN_TTL_MS (10u * 60u * 1000u)
/* A leader's alerts older than this are not adopted. */
#define ADOPT_MAX_AGE_MS (10ll * 60 * 1000)
/* An adopted alert is not resolved for lack of figures this long: the peers
 * re-register with the new leader and report to it within seconds. */
#define ADOPT_NODATA_HOLD_MS 15000
/* The leader asks the other index nodes for their resource use this often,
 * and shows an answer for this long. */
#define MEMBER_POLL_MS 2000
#define MEMBER_FRESH_MS 10000

enum { FEED_FINE = 0, FEED_COARSE = 1, FEED_ALERTS = 2 };

/* A GET /v1/dashboard forwarded to the leader. */
struct ix_fwd {
  struct ix_fwd *prev, *next; /* ix_dashx.fwds */
  struct parley_index *idx;
  struct parley_http_req *r;  /* NULL once the client has gone */
  struct parley_httpc_xfer *xfer;
  int coarse;
};

/* ---- lifecycle ------------------------------------------------------------ */

int parley__dash_fwd_start(struct parley_index *idx, int cluster) {
  struct ix_dashx *dx = parley_calloc(1, sizeof *dx);
  int rc;

  if (dx == NULL)
    return PARLEY_ENOMEM;
  for (int i = 0; i < 3; i++) {
    dx->feed[i].idx = idx;
    dx->feed[i].kind = i;
  }
  for (size_t i = 0; i < PARLEY_CONSENSUS_MAX_MEMBERS; i++)
    dx->members[i].idx = idx;
  dx->evaluator = !cluster; /* a single node always is: nothing to log */
  if (cluster) {
    struct parley_httpc_config hc;
    memset(&hc, 0, sizeof hc);
    hc.loop = idx->loop;
    hc.log = idx->log;
    hc.user_agent = "parley-index/" PARLEY_INDEX_VERSION;
    hc.max_transfers = 64;
    rc = parley_httpc_new(&hc, &dx->http);
    if (rc < 0) {
      parley_free(dx);
      return rc;
    }
  }
  idx->dashx = dx;
  return PARLEY_OK;
}

static void http_closed(void *ctx) { parley__index_close_done(ctx); }

void parley__dash_fwd_stop(struct parley_index *idx) {
  struct ix_dashx *dx = idx->dashx;

  if (dx == NULL)
    return;
  if (dx->http != NULL) {
    /* Every transfer completes with ECANCELED now: forwarded requests
     * still open are answered 503 and freed, feeds are dropped. */
    idx->pending_closes++;
    parley_httpc_free(dx->http, http_closed, idx);
    dx->http = NULL;
  }
  json_decref(dx->leader_firing);
  for (size_t i = 0; i < PARLEY_CONSENSUS_MAX_MEMBERS; i++)
    json_decref(dx->members[i].row);
  sodium_memzero(dx->token, sizeof dx->token);
  parley_free(dx);
  idx->dashx = NULL;
}

/* ---- who speaks for the cluster ---------------------------------------------- */

int parley__dash_evaluator(const struct parley_index *idx) {
  if (idx->cons == NULL)
    return 1;
  return idx->leader && parley_consensus_is_leader(idx->cons);
}

/* Bits of the metrics only the evaluator samples: everything but
 * no_leader, which every node judges for itself (a cluster without a
 * leader has nobody else to say so). */
#define CLUSTER_METRICS                                                       \
  (((1u << PARLEY_ALERT_NMETRICS) - 1u) & ~(1u << PARLEY_ALERT_NO_LEADER))

void parley__dash_fwd_role(struct parley_index *idx, int evaluator) {
  struct ix_dashx *dx = idx->dashx;
  int64_t now = parley_now_ms();
  size_t i, adopted = 0;
  json_t *a;

  if (dx == NULL || idx->alerts == NULL)
    return;
  if (!evaluator) {
    /* The rules' states are kept as they are: if this node leads again
     * before another leader has spoken, it carries on (no second
     * "firing"); the first answer from another leader clears them
     * (note_alerts), since that leader has taken them over. */
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
               "alerts: no longer the leader; the next leader evaluates the "
               "cluster's rules and sends their webhooks");
    return;
  }
  /* The new leader takes over what the old one had firing, so that it is
   * neither announced twice nor left without its "resolved". */
  if (dx->leader_firing != NULL && now - dx->leader_seen_ms <= ADOPT_MAX_AGE_MS)
    json_array_foreach(dx->leader_firing, i, a) {
      const char *name = json_string_value(json_object_get(a, "name"));
      const char *summary = json_string_value(json_object_get(a, "summary"));
      json_t *since = json_object_get(a, "since"), *v = json_object_get(a, "value");
      int metric = -1;
      for (size_t k = 0; name != NULL && k < parley_alerts_count(idx->alerts);
           k++) {
        const struct parley_alert *x = parley_alerts_get(idx->alerts, k);
        if (strcmp(x->rule.name, name) == 0)
          metric = x->rule.metric;
      }
      if (metric < 0 || metric == PARLEY_ALERT_NO_LEADER ||
          !json_is_integer(since))
        continue;
      if (parley_alerts_adopt(idx->alerts, name,
                              (int64_t)json_integer_value(since),
                              json_is_number(v) ? json_number_value(v) : NAN,
                              summary != NULL ? summary : "",
                              now + ADOPT_NODATA_HOLD_MS) == PARLEY_OK)
        adopted++;
    }
  json_decref(dx->leader_firing);
  dx->leader_firing = NULL;
  if (adopted > 0)
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
               "alerts: leading, so evaluating the cluster's rules; took over "
               "%zu firing alert%s from the previous leader",
               adopted, adopted == 1 ? "" : "s");
  else
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
               "alerts: leading, so evaluating the cluster's rules");
}

/* ---- the leader's address ------------------------------------------------------ */

/* 1: forward to the leader at http (node *id).  0: answer here, with
 * notice set when there is something to say. */
static int target(struct parley_index *idx, char http[PARLEY_MAX_ADDR + 1],
                  uint64_t *id, const char **notice) {
  char listen[PARLEY_MAX_ADDR + 1];

  *notice = NULL;
  *id = 0;
  http[0] = '\0';
  if (idx->cons == NULL || idx->dashx == NULL || idx->dashx->http == NULL ||
      parley__dash_evaluator(idx))
    return 0;
  parley_consensus_leader(idx->cons, id, listen, http);
  if (*id == 0) {
    *notice = "no leader is known: this is this node's own view (the "
              "replicated registry and its events; peers' figures are "
              "reported to the leader only)";
    return 0;
  }
  if (http[0] == '\0' || strcmp(http, "-") == 0) {
    *notice = "the leader serves no HTTP: this is this node's own view "
              "(peers' figures are reported to the leader only)";
    return 0;
  }
  if (strcmp(http, idx->http_addr) == 0)
    return 0; /* ourselves, not ready yet */
  return 1;
}

const char *parley__dash_fwd_notice(struct parley_index *idx) {
  char http[PARLEY_MAX_ADDR + 1];
  const char *notice;
  uint64_t id;

  (void)target(idx, http, &id, &notice);
  return notice;
}

static void leader_failed(struct parley_index *idx, uint64_t id,
                          const char *http, const char *why, char *buf,
                          size_t cap) {
  struct ix_dashx *dx = idx->dashx;
  int64_t now = parley_now_ms();

  dx->leader_failed++;
  snprintf(buf, cap,
           "the leader (node %llu, http %s) did not answer (%s): this is this "
           "node's own view (peers' figures are reported to the leader only)",
           (unsigned long long)id, http, why);
  if (now - dx->last_warn_ms >= 30000) {
    dx->last_warn_ms = now;
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN,
               "dashboard: leader node %llu at %s did not answer (%s); "
               "answering from this node's state",
               (unsigned long long)id, http, why);
  }
}

/* Parses a leader's answer; NULL unless it is a JSON object. */
static json_t *parse_answer(const struct parley_httpc_response *res,
                            char *why, size_t cap) {
  json_t *o;

  if (res->rc < 0) {
    snprintf(why, cap, "%s", res->error);
    return NULL;
  }
  if (res->status != 200) {
    snprintf(why, cap, "HTTP %ld", res->status);
    return NULL;
  }
  o = json_loadb(res->body, res->body_len, 0, NULL);
  if (!json_is_object(o)) {
    json_decref(o);
    snprintf(why, cap, "not a JSON object");
    return NULL;
  }
  return o;
}

/* Keeps the leader's firing alerts (for a takeover), and forgets what this
 * node had firing when it led: the leader speaks for the cluster now. */
static void note_alerts(struct parley_index *idx, json_t *o) {
  struct ix_dashx *dx = idx->dashx;
  json_t *f = json_object_get(json_object_get(o, "alerts"), "firing");

  /* Only from a node that evaluates the rules (not a leader still catching
   * up, which answers from its own state). */
  if (!json_is_array(f) || parley__dash_evaluator(idx) ||
      !json_is_true(
          json_object_get(json_object_get(o, "served_by"), "evaluator")))
    return;
  if (idx->alerts != NULL)
    parley_alerts_reset(idx->alerts, CLUSTER_METRICS);
  json_decref(dx->leader_firing);
  dx->leader_firing = json_incref(f);
  dx->leader_seen_ms = parley_now_ms();
}

/* ---- forwarded GETs ------------------------------------------------------------ */

static void fwd_unlink(struct ix_dashx *dx, struct ix_fwd *f) {
  if (f->prev != NULL)
    f->prev->next = f->next;
  else
    dx->fwds = f->next;
  if (f->next != NULL)
    f->next->prev = f->prev;
}

static void respond_obj(struct parley_http_req *r, json_t *o) {
  static const char *const nocache[] = {"Cache-Control", "no-store", NULL};
  struct parley_buf b;

  parley_buf_init(&b, 64u * 1024u * 1024u);
  if (o == NULL || parley__dash_dump(&b, o) < 0 ||
      parley_buf_append(&b, "\n", 1) < 0)
    parley__index_respond_error(r, 500, PARLEY_ENOMEM, "out of memory",
                                NULL);
  else
    parley_http_respond(r, 200, "application/json", b.data, b.len, nocache);
  parley_buf_close(&b);
}

static void on_forwarded(void *ctx, const struct parley_httpc_response *res) {
  struct ix_fwd *f = ctx;
  struct parley_index *idx = f->idx;
  struct parley_http_req *r = f->r;
  char why[160], notice[400], http[PARLEY_MAX_ADDR + 1];
  const char *nt;
  uint64_t id;
  json_t *o;

  fwd_unlink(idx->dashx, f);
  f->xfer = NULL;
  if (r == NULL) { /* the client has gone */
    parley_free(f);
    return;
  }
  parley_http_set_close_cb(r, NULL, NULL);
  if (res->rc == PARLEY_ECANCELED) {
    static const char *const retry[] = {"Retry-After", "1", NULL};
    parley__index_respond_error(r, 503, PARLEY_EUNAVAIL, "shutting down",
                                retry);
    parley_free(f);
    return;
  }
  o = parse_answer(res, why, sizeof why);
  if (o != NULL) {
    idx->dashx->from_leader++;
    note_alerts(idx, o);
    parley__dash_set_served_by(idx, o, "leader", NULL);
    respond_obj(r, o);
    json_decref(o);
    parley_free(f);
    return;
  }
  (void)target(idx, http, &id, &nt);
  leader_failed(idx, id, http, why, notice, sizeof notice);
  o = parley__dash_local(idx, f->coarse, 0, "local", notice);
  respond_obj(r, o);
  json_decref(o);
  parley_free(f);
}

/* The buffers of one GET to another index node's dashboard API. */
struct node_get {
  struct parley_httpc_request rq;
  char url[PARLEY_MAX_ADDR + 64];
  char auth[PARLEY_AUTH_TOKEN_CAP + 32];
  char fwd[96];
  const char *hdrs[4];
};

/* Fills g for GET http://HTTP/v1/dashboard?QUERY with the given
 * Authorization value, marked as forwarded by this node. */
static void node_get_init(struct node_get *g, const struct parley_index *idx,
                          const char *http, const char *query,
                          const char *authorization, uint32_t timeout_ms,
                          size_t max_response) {
  memset(g, 0, sizeof *g);
  snprintf(g->url, sizeof g->url, "http://%s/v1/dashboard?%s", http, query);
  snprintf(g->auth, sizeof g->auth, "Authorization: %s", authorization);
  snprintf(g->fwd, sizeof g->fwd, "%s: %s", IX_DASH_FORWARDED_HEADER,
           idx->id_text);
  g->hdrs[0] = g->auth;
  g->hdrs[1] = g->fwd;
  g->hdrs[2] = "Accept: application/json";
  g->hdrs[3] = NULL;
  g->rq.method = "GET";
  g->rq.url = g->url;
  g->rq.headers = g->hdrs;
  g->rq.timeout_ms = timeout_ms;
  g->rq.connect_timeout_ms = 1000;
  g->rq.max_response = max_response;
}

/* The client hung up (or the HTTP server is closing) while we waited. */
static void fwd_gone(void *data, struct parley_http_req *r) {
  struct ix_fwd *f = data;
  (void)r;
  f->r = NULL;
  if (f->xfer != NULL)
    parley_httpc_cancel(f->xfer); /* on_forwarded frees f */
}

int parley__dash_forward(struct parley_index *idx, struct parley_http_req *r,
                         int coarse, const char **notice, char *notice_buf,
                         size_t cap) {
  struct ix_dashx *dx = idx->dashx;
  struct node_get g;
  char http[PARLEY_MAX_ADDR + 1];
  const char *bearer = parley_http_header(r, "Authorization");
  struct ix_fwd *f;
  uint64_t id;
  int rc;

  if (!target(idx, http, &id, notice))
    return 0;
  if (parley_http_header(r, IX_DASH_FORWARDED_HEADER) != NULL ||
      bearer == NULL || strlen(bearer) > PARLEY_AUTH_TOKEN_CAP) {
    *notice = NULL;
    return 0;
  }
  node_get_init(&g, idx, http, coarse ? "window=24h" : "window=1h", bearer,
                FWD_TIMEOUT_MS, FWD_MAX_ANSWER);
  f = parley_calloc(1, sizeof *f);
  if (f == NULL)
    return 0;
  f->idx = idx;
  f->r = r;
  f->coarse = coarse;
  rc = parley_httpc_start(dx->http, &g.rq, on_forwarded, f, &f->xfer);
  sodium_memzero(g.auth, sizeof g.auth);
  if (rc < 0) {
    parley_free(f);
    leader_failed(idx, id, http, parley_strerror(rc), notice_buf, cap);
    *notice = notice_buf;
    return 0;
  }
  f->next = dx->fwds;
  if (dx->fwds != NULL)
    dx->fwds->prev = f;
  dx->fwds = f;
  parley_http_suspend(r);
  parley_http_set_close_cb(r, fwd_gone, f);
  return 1;
}

/* ---- stream feeds and the alerts poll ------------------------------------------- */

/* A viewer token of this node's own (every node verifies it). */
static const char *own_token(struct parley_index *idx) {
  struct ix_dashx *dx = idx->dashx;
  int64_t now = parley_now_ms();
  char subject[48];

  if (dx->token[0] != '\0' && now + 60000 < dx->token_until)
    return dx->token;
  if (idx->auth == NULL)
    return NULL;
  snprintf(subject, sizeof subject, "index-%.16s", idx->id_text);
  if (parley_auth_mint(idx->auth, PARLEY_AUTH_ROLE_VIEWER, TOKEN_TTL_MS,
                       subject, NULL, now, dx->token, sizeof dx->token) < 0) {
    dx->token[0] = '\0';
    return NULL;
  }
  dx->token_until = now + TOKEN_TTL_MS;
  return dx->token;
}

static void on_feed(void *ctx, const struct parley_httpc_response *res) {
  struct ix_feed *fd = ctx;
  struct parley_index *idx = fd->idx;
  char why[160], notice[400], http[PARLEY_MAX_ADDR + 1];
  const char *nt;
  uint64_t id;
  json_t *o;

  fd->xfer = NULL;
  if (res->rc == PARLEY_ECANCELED || idx->closing)
    return;
  o = parse_answer(res, why, sizeof why);
  if (o != NULL) {
    note_alerts(idx, o);
    if (fd->kind != FEED_ALERTS) {
      idx->dashx->from_leader++;
      parley__dash_set_served_by(idx, o, "leader", NULL);
      parley__dash_emit(idx, fd->kind, o);
    }
    json_decref(o);
    return;
  }
  if (fd->kind == FEED_ALERTS)
    return;
  (void)target(idx, http, &id, &nt);
  leader_failed(idx, id, http, why, notice, sizeof notice);
  o = parley__dash_local(idx, fd->kind, 1, "local", notice);
  if (o != NULL)
    parley__dash_emit(idx, fd->kind, o);
  json_decref(o);
}

/* Starts one fetch from the leader at http.  PARLEY_OK or an error (then
 * nothing is in flight). */
static int feed_start(struct parley_index *idx, int kind, const char *http) {
  struct ix_dashx *dx = idx->dashx;
  struct ix_feed *fd = &dx->feed[kind];
  struct node_get g;
  char bearer[PARLEY_AUTH_TOKEN_CAP + 16];
  const char *tok = own_token(idx);
  int rc;

  if (tok == NULL)
    return PARLEY_EAUTH;
  snprintf(bearer, sizeof bearer, "Bearer %s", tok);
  node_get_init(&g, idx, http,
                kind == FEED_ALERTS   ? "part=alerts"
                : kind == FEED_COARSE ? "delta=1&window=24h"
                                      : "delta=1&window=1h",
                bearer, FEED_TIMEOUT_MS, FWD_MAX_ANSWER);
  sodium_memzero(bearer, sizeof bearer);
  rc = parley_httpc_start(dx->http, &g.rq, on_feed, fd, &fd->xfer);
  sodium_memzero(g.auth, sizeof g.auth);
  if (rc < 0) {
    fd->xfer = NULL;
    return rc;
  }
  fd->started_ms = parley_now_ms();
  return PARLEY_OK;
}

/* One window's streams this second: 1 if they are fed from the leader
 * (a fetch is started or still running), 0 if the caller feeds them. */
static int feed_kind(struct parley_index *idx, int kind, const char *http,
                     uint64_t id) {
  struct ix_feed *fd = &idx->dashx->feed[kind];
  char notice[400];
  json_t *o;
  int rc;

  if (fd->xfer != NULL) {
    if (parley_now_ms() - fd->started_ms < (int64_t)FEED_TIMEOUT_MS)
      return 1; /* a slow leader: this second's event comes late */
    parley_httpc_cancel(fd->xfer);
  }
  rc = feed_start(idx, kind, http);
  if (rc == PARLEY_OK)
    return 1;
  leader_failed(idx, id, http, parley_strerror(rc), notice, sizeof notice);
  o = parley__dash_local(idx, kind, 1, "local", notice);
  if (o != NULL)
    parley__dash_emit(idx, kind, o);
  json_decref(o);
  return 1;
}

/* ---- the other index nodes' resource use (leader) -------------------------- */

static void on_member(void *ctx, const struct parley_httpc_response *res) {
  struct ix_member *m = ctx;
  char why[160];
  json_t *o, *row;

  m->xfer = NULL;
  if (res->rc == PARLEY_ECANCELED || m->idx->closing)
    return;
  o = parse_answer(res, why, sizeof why);
  row = json_object_get(o, "resource");
  if (json_is_object(row) &&
      json_object_set_new(row, "node", json_integer((json_int_t)m->id)) ==
          0) {
    json_decref(m->row);
    m->row = json_incref(row);
    m->at_ms = parley_now_ms();
  }
  json_decref(o);
}

static void poll_members(struct parley_index *idx) {
  struct ix_dashx *dx = idx->dashx;
  struct parley_consensus_status *cs;
  int64_t now = parley_now_ms();
  const char *tok;

  if (idx->cons == NULL || dx->http == NULL ||
      now - dx->members_polled_ms < MEMBER_POLL_MS)
    return;
  dx->members_polled_ms = now;
  tok = own_token(idx);
  cs = parley_malloc(sizeof *cs);
  if (cs == NULL || tok == NULL) {
    parley_free(cs);
    return;
  }
  parley_consensus_status(idx->cons, cs);
  for (size_t i = 0; i < PARLEY_CONSENSUS_MAX_MEMBERS; i++) {
    /* Forget the slots of nodes no longer in the configuration. */
    struct ix_member *m = &dx->members[i];
    int still = 0;
    for (size_t k = 0; k < cs->nmembers && m->id != 0; k++)
      still |= cs->members[k].id == m->id && !cs->members[k].is_self;
    if (m->id != 0 && !still && m->xfer == NULL) {
      json_decref(m->row);
      m->row = NULL;
      m->id = 0;
    }
  }
  for (size_t k = 0; k < cs->nmembers; k++) {
    const struct parley_consensus_member *cm = &cs->members[k];
    struct node_get g;
    struct ix_member *m = NULL;
    char bearer[PARLEY_AUTH_TOKEN_CAP + 16];

    if (cm->is_self || cm->http[0] == '\0' || strcmp(cm->http, "-") == 0)
      continue;
    for (size_t i = 0; i < PARLEY_CONSENSUS_MAX_MEMBERS && m == NULL; i++)
      if (dx->members[i].id == cm->id)
        m = &dx->members[i];
    for (size_t i = 0; i < PARLEY_CONSENSUS_MAX_MEMBERS && m == NULL; i++)
      if (dx->members[i].id == 0 && dx->members[i].xfer == NULL) {
        m = &dx->members[i];
        m->id = cm->id;
      }
    if (m == NULL || m->xfer != NULL)
      continue;
    snprintf(bearer, sizeof bearer, "Bearer %s", tok);
    node_get_init(&g, idx, cm->http, "part=self", bearer, MEMBER_POLL_MS,
                  64u * 1024u);
    sodium_memzero(bearer, sizeof bearer);
    if (parley_httpc_start(dx->http, &g.rq, on_member, m, &m->xfer) < 0)
      m->xfer = NULL;
    sodium_memzero(g.auth, sizeof g.auth);
  }
  parley_free(cs);
}

void parley__dash_fwd_resources(struct parley_index *idx, json_t *arr,
                                int *err) {
  struct ix_dashx *dx = idx->dashx;
  int64_t now = parley_now_ms();

  if (dx == NULL || !parley__dash_evaluator(idx))
    return;
  for (size_t i = 0; i < PARLEY_CONSENSUS_MAX_MEMBERS; i++) {
    const struct ix_member *m = &dx->members[i];
    if (m->id == 0 || m->row == NULL || now - m->at_ms > MEMBER_FRESH_MS)
      continue;
    if (json_array_append(arr, m->row) < 0)
      *err = 1;
  }
}

unsigned parley__dash_fwd_tick(struct parley_index *idx) {
  char http[PARLEY_MAX_ADDR + 1];
  const char *notice;
  unsigned fed = 0;
  uint64_t id;

  if (idx->dashx == NULL)
    return 0;
  if (parley__dash_evaluator(idx)) {
    poll_members(idx);
    return 0;
  }
  if (!target(idx, http, &id, &notice))
    return 0;
  for (int k = FEED_FINE; k <= FEED_COARSE; k++)
    if (parley__dash_has_streams(idx, k) && feed_kind(idx, k, http, id))
      fed |= 1u << k;
  /* Without a stream to feed, the leader's firing alerts still matter: a
   * follower that becomes the leader takes them over. */
  if (!(fed & 1u) && idx->dashx->feed[FEED_ALERTS].xfer == NULL)
    (void)feed_start(idx, FEED_ALERTS, http);
  return fed;
}

int parley__dash_fwd_stream_opened(struct parley_index *idx, int coarse) {
  char http[PARLEY_MAX_ADDR + 1];
  const char *notice;
  uint64_t id;

  if (idx->dashx == NULL || !target(idx, http, &id, &notice))
    return 0;
  if (idx->dashx->feed[coarse].xfer == NULL)
    (void)feed_kind(idx, coarse, http, id);
  return 1;
}
