/* server_auth.c — the index's front door: bearer JWTs on every HTTP route,
 * the OAuth2 token endpoint, and the abuse limits (peer-port guard,
 * subscription churn, request header count) with their metrics.  The
 * policy lives in http/auth.h and http/ratelimit.h; this file wires them to
 * the index's HTTP server, net and timers. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "index/server_int.h"
#include "metrics/prom.h"

/* The token endpoint's limit when the config gives none: a burst of 10,
 * one more every 6 s, and 5 failed client authentications within 10 min
 * ban the address for 15 min (doubling up to a day). */
static const struct parley_rl_config default_token_limit = {
    .burst = 10,
    .rate = 1,
    .per_ms = 6000,
    .strikes = 5,
    .strike_window_ms = 10u * 60u * 1000u,
    .ban_ms = 15u * 60u * 1000u,
    .ban_max_ms = 24u * 3600u * 1000u,
};

/* Who may call what.  The first matching row wins; anything not listed
 * needs viewer for GET/HEAD/OPTIONS and admin otherwise (auth.h), so a
 * new route fails closed until it is added here. */
static const struct parley_auth_route routes[] = {
    {"POST", "/oauth/token", PARLEY_AUTH_ROLE_NONE},
    /* The dashboard's static files are public: the single-page app asks
     * for a token and sends it with its data requests (/v1, /metrics). */
    {"GET", "/dashboard", PARLEY_AUTH_ROLE_NONE},
    {"HEAD", "/dashboard", PARLEY_AUTH_ROLE_NONE},
    {"GET", "/dashboard/*", PARLEY_AUTH_ROLE_NONE},
    {"HEAD", "/dashboard/*", PARLEY_AUTH_ROLE_NONE},
    {"POST", "/v1/cluster/*", PARLEY_AUTH_ROLE_ADMIN},
    {"GET", "/metrics", PARLEY_AUTH_ROLE_VIEWER},
    /* The dashboard's data (snapshot and event stream) needs a viewer
     * token like the rest of /v1; listed for the record. */
    {"GET", "/v1/dashboard", PARLEY_AUTH_ROLE_VIEWER},
    {"GET", "/v1/dashboard/stream", PARLEY_AUTH_ROLE_VIEWER},
    {"GET", "/v1/*", PARLEY_AUTH_ROLE_VIEWER},
    {"HEAD", "/v1/*", PARLEY_AUTH_ROLE_VIEWER},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* ---- housekeeping ------------------------------------------------------ */

static void on_house_timer(uv_timer_t *t) {
  struct parley_index *idx = t->data;
  uint64_t mono = uv_now(idx->loop);
  int changed = 0, rc;

  if (idx->closing)
    return;
  /* The CLI (token rotate, client add/remove) edits the files while we
   * run; a failed read keeps what we had. */
  rc = parley_auth_reload(idx->auth, parley_now_ms(), &changed);
  if (rc < 0) {
    idx->st.auth_reload_errors++;
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN, "auth: reload: %s (%s)",
               parley_strerror(rc), parley_auth_errmsg(idx->auth));
  } else if (changed) {
    idx->st.auth_reloads++;
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
               "auth: reloaded keys/clients (%zu keys, %zu clients)",
               parley_auth_key_count(idx->auth, parley_now_ms()),
               parley_auth_client_count(idx->auth));
  }
  parley_rl_guard_sweep(idx->guard, mono);
  parley_rl_sweep(idx->sub_rl, mono);
  parley_rl_sweep(idx->token_rl, mono);
}

static void on_house_closed(uv_handle_t *h) {
  parley__index_close_done(h->data);
}

static uint64_t seed64(void) {
  uint64_t s;
  randombytes_buf(&s, sizeof s);
  return s;
}

int parley__index_auth_start(struct parley_index *idx,
                             const struct parley_index_config *cfg,
                             struct parley_net_guard *guard) {
  struct parley_auth_config acfg;
  struct parley_rl_guard_config gcfg;
  struct parley_rl_config scfg;
  char err[256];
  int rc;

  memset(&acfg, 0, sizeof acfg);
  acfg.dir = idx->data_dir;
  acfg.cluster_key = cfg->nmembers > 0 ? cfg->cluster_key : NULL;
  acfg.leeway_s = cfg->auth_leeway_s;
  acfg.log = idx->log;
  rc = parley_auth_new(&acfg, parley_now_ms(), &idx->auth, err, sizeof err);
  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "auth in %s: %s", idx->data_dir,
               err);
    return rc;
  }
  PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
             "auth: %s keys (%zu verifying), %zu OAuth clients",
             acfg.cluster_key != NULL ? "cluster-derived" : "file",
             parley_auth_key_count(idx->auth, parley_now_ms()),
             parley_auth_client_count(idx->auth));

  if (cfg->guard != NULL)
    gcfg = *cfg->guard;
  else
    parley_rl_guard_defaults(&gcfg);
  rc = parley_rl_guard_new(&gcfg, seed64(), &idx->guard);
  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "peer-port limits: %s",
               parley_strerror(rc));
    return rc;
  }
  memset(&scfg, 0, sizeof scfg);
  scfg.burst = cfg->sub_burst ? cfg->sub_burst : idx->max_subs;
  scfg.rate = cfg->sub_rate ? cfg->sub_rate : PARLEY_INDEX_DEFAULT_SUB_RATE;
  scfg.per_ms = 1000;
  scfg.ban_ms = 1;
  rc = parley_rl_new(&scfg, seed64(), &idx->sub_rl);
  if (rc == PARLEY_OK)
    rc = parley_rl_new(cfg->token_limit != NULL ? cfg->token_limit
                                                : &default_token_limit,
                       seed64(), &idx->token_rl);
  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "rate limits: %s",
               parley_strerror(rc));
    return rc;
  }
  idx->auth_reload_ms = cfg->auth_reload_ms
                            ? cfg->auth_reload_ms
                            : PARLEY_INDEX_DEFAULT_AUTH_RELOAD_MS;
  idx->http_max_headers = cfg->http_max_headers
                              ? cfg->http_max_headers
                              : PARLEY_INDEX_DEFAULT_MAX_HEADERS;
  uv_timer_start(&idx->house_timer, on_house_timer, idx->auth_reload_ms,
                 idx->auth_reload_ms);
  /* The timer must not keep the loop alive on its own. */
  uv_unref((uv_handle_t *)&idx->house_timer);

  memset(guard, 0, sizeof *guard);
  guard->ctx = idx->guard;
  guard->on_connect = parley_rl_guard_connect;
  guard->on_handshake = parley_rl_guard_handshake;
  guard->on_peer = parley_rl_guard_peer;
  guard->on_strike = parley_rl_guard_strike;
  return PARLEY_OK;
}

void parley__index_auth_stop(struct parley_index *idx) {
  parley_auth_free(idx->auth);
  idx->auth = NULL;
  parley_rl_free(idx->sub_rl);
  idx->sub_rl = NULL;
  parley_rl_free(idx->token_rl);
  idx->token_rl = NULL;
  /* The net (and its guard hooks) is already freed, but links may still
   * be closing: they never call the guard once closing. */
  parley_rl_guard_free(idx->guard);
  idx->guard = NULL;
  idx->pending_closes++;
  uv_close((uv_handle_t *)&idx->house_timer, on_house_closed);
}

int parley__index_sub_take(struct parley_index *idx, const uint8_t pk[32],
                           uint64_t *retry_ms) {
  int rc;

  *retry_ms = 0;
  if (idx->sub_rl == NULL)
    return PARLEY_OK;
  rc = parley_rl_take(idx->sub_rl, pk, 32, 1, uv_now(idx->loop), retry_ms);
  if (rc == PARLEY_OK)
    return PARLEY_OK;
  idx->st.sub_limited++;
  return PARLEY_ELIMIT;
}

/* ---- HTTP -------------------------------------------------------------- */

/* The client's rate-limit key (parley_rl_ip_key).  Without the HTTP
 * module's address accessor every client shares one key. */
static void client_key(struct parley_http_req *r, char *key, size_t cap,
                       size_t *len) {
  char ip[64];

  if (parley_http_remote_ip(r, ip, sizeof ip) == PARLEY_OK &&
      parley_rl_ip_key(ip, key, cap, len) == PARLEY_OK)
    return;
  snprintf(key, cap, "http:unknown");
  *len = strlen(key);
}

static void token_endpoint(struct parley_index *idx,
                           struct parley_http_req *r) {
  static const char *const allow_post[] = {"Allow", "POST", NULL};
  struct parley_auth_token_response resp;
  char key[PARLEY_RL_IP_KEY_LEN];
  const uint8_t *body;
  size_t klen, len;
  int rc;

  if (strcmp(parley_http_method(r), "POST") != 0) {
    parley__index_respond_error(r, 405, PARLEY_EINVAL, "method not allowed",
                                allow_post);
    return;
  }
  client_key(r, key, sizeof key, &klen);
  body = parley_http_body(r, &len);
  memset(&resp, 0, sizeof resp);
  rc = parley_auth_token_request_limited(
      idx->auth, idx->token_rl, key, uv_now(idx->loop),
      parley_http_header(r, "Content-Type"), (const char *)body, len,
      parley_http_header(r, "Authorization"), parley_now_ms(), &resp);
  if (rc < 0) {
    parley__index_respond_error(r, 500, rc, "cannot answer", NULL);
    return;
  }
  switch (resp.status) {
  case 200:
    idx->st.tokens_issued++;
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "auth: token issued to client %s",
               resp.client_id);
    break;
  case 401:
    idx->st.token_refused[1]++;
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
               "auth: token request from %s refused: bad client "
               "credentials (%s)",
               key, resp.client_id[0] ? resp.client_id : "no id");
    break;
  case 429:
    idx->st.token_refused[2]++;
    break;
  default:
    idx->st.token_refused[0]++;
    break;
  }
  parley_http_respond(r, resp.status, resp.content_type, resp.body,
                      resp.body_len, resp.headers);
  parley_auth_token_response_close(&resp);
}

/* GET /dashboard/...: the dashboard's static files, served without a
 * token (its data requests carry one): server_web.c. */
static void dashboard(struct parley_index *idx, struct parley_http_req *r) {
  parley__index_web_serve(idx, r);
}

int parley__index_http_gate(struct parley_index *idx,
                            struct parley_http_req *r) {
  const char *method = parley_http_method(r);
  const char *path = parley_http_path(r);
  struct parley_auth_decision d;
  const char *hdrs[3];
  int rc;

  if (parley_http_header_count(r) > idx->http_max_headers) {
    idx->st.http_431++;
    parley__index_respond_error(r, 431, PARLEY_ELIMIT,
                                "too many request headers", NULL);
    return 1;
  }
  rc = parley_auth_check_request(idx->auth, routes, NROUTES, method, path,
                                 parley_http_header(r, "Authorization"),
                                 parley_now_ms(), &d);
  if (rc < 0) {
    if (d.status == 403)
      idx->st.http_403++;
    else
      idx->st.http_401++;
    hdrs[0] = "WWW-Authenticate";
    hdrs[1] = d.www_authenticate;
    hdrs[2] = NULL;
    PARLEY_LOG(idx->log, PARLEY_LOG_DEBUG, "http: %s %s refused: %s", method,
               path, parley_auth_reason_text(d.reason));
    parley__index_respond_error(
        r, d.status == 403 ? 403 : 401,
        d.status == 403 ? PARLEY_EDENIED : PARLEY_EAUTH,
        d.status == 403 ? "this needs an admin token"
        : d.reason == PARLEY_AUTH_NO_TOKEN
            ? "a bearer token is required"
            : parley_auth_reason_text(d.reason),
        hdrs);
    return 1;
  }
  if (strcmp(path, "/oauth/token") == 0) {
    token_endpoint(idx, r);
    return 1;
  }
  if (d.required_role == PARLEY_AUTH_ROLE_NONE &&
      (strcmp(path, "/dashboard") == 0 ||
       strncmp(path, "/dashboard/", 11) == 0)) {
    dashboard(idx, r);
    return 1;
  }
  return 0;
}

/* ---- metrics ----------------------------------------------------------- */

struct auth_metric {
  const char *name, *type, *help;
  double v;
};

int parley__index_auth_metrics(struct parley_index *idx,
                               struct parley_buf *b) {
  static const char *const rl_help[][3] = {
      {"parley_ratelimit_allowed_total", "counter",
       "Rate-limited actions allowed, by limit."},
      {"parley_ratelimit_limited_total", "counter",
       "Actions refused for an empty bucket, by limit."},
      {"parley_ratelimit_refused_banned_total", "counter",
       "Actions refused during a ban, by limit."},
      {"parley_ratelimit_strikes_total", "counter",
       "Strikes recorded (bad input, bad secrets), by limit."},
      {"parley_ratelimit_bans_total", "counter", "Bans imposed, by limit."},
      {"parley_ratelimit_evictions_total", "counter",
       "Tracked keys dropped for room while not dormant, by limit."},
      {"parley_ratelimit_entries", "gauge", "Keys tracked now, by limit."},
      {"parley_ratelimit_active_bans", "gauge", "Keys banned now, by limit."},
  };
  const struct parley_net_stats *ns = parley_net_stats(idx->net);
  const struct parley_index_stats *st = &idx->st;
  struct parley_rl_stats conn, hs, bad, sub, tok;
  uint64_t mono = uv_now(idx->loop);
  int64_t now = parley_now_ms();
  char labels[32];
  int rc = 0;

  const struct auth_metric rows[] = {
      {"parley_net_conns_limited_total", "counter",
       "Peer-port connections refused: too many from one address.",
       (double)ns->conns_limited},
      {"parley_net_conns_banned_total", "counter",
       "Peer-port connections refused: address banned.",
       (double)ns->conns_banned},
      {"parley_net_handshakes_limited_total", "counter",
       "Handshakes refused: too many from one address, or banned.",
       (double)ns->handshakes_limited},
      {"parley_net_peers_banned_total", "counter",
       "Links refused after the handshake: key or address banned.",
       (double)ns->peers_banned},
      {"parley_net_strikes_total", "counter",
       "Bad input reported against a remote (each one a strike).",
       (double)ns->strikes},
      {"parley_net_strike_bans_total", "counter",
       "Strikes after which the remote was banned.",
       (double)ns->strike_bans},
      {"parley_index_sub_limited_total", "counter",
       "SUBSCRIBE/UNSUBSCRIBE refused with ELIMIT (churn limit).",
       (double)st->sub_limited},
      {"parley_index_peer_bans_total", "counter",
       "Peer links closed: banned after frames the index does not serve.",
       (double)st->peer_bans},
      {"parley_http_unauthorized_total", "counter",
       "HTTP requests refused with 401 (no or bad bearer token).",
       (double)st->http_401},
      {"parley_http_forbidden_total", "counter",
       "HTTP requests refused with 403 (token role too low).",
       (double)st->http_403},
      {"parley_http_headers_refused_total", "counter",
       "HTTP requests refused with 431 (too many headers).",
       (double)st->http_431},
      {"parley_auth_tokens_issued_total", "counter",
       "Tokens issued by POST /oauth/token.", (double)st->tokens_issued},
      {"parley_auth_keys", "gauge", "Token signing keys that verify now.",
       (double)parley_auth_key_count(idx->auth, now)},
      {"parley_auth_clients", "gauge", "Registered OAuth clients.",
       (double)parley_auth_client_count(idx->auth)},
      {"parley_auth_reloads_total", "counter",
       "Key or client files re-read after a change.",
       (double)st->auth_reloads},
      {"parley_auth_reload_errors_total", "counter",
       "Key or client files that could not be re-read.",
       (double)st->auth_reload_errors},
      {"parley_http_header_limit", "gauge",
       "Most request headers accepted (more are answered with 431).",
       (double)idx->http_max_headers},
  };
  static const char *const refused_codes[] = {"400", "401", "429"};

  for (size_t i = 0; i < sizeof rows / sizeof rows[0] && rc == 0; i++)
    rc = parley_prom_metric(b, rows[i].name, rows[i].type, rows[i].help,
                            rows[i].v);
  if (rc == 0)
    rc = parley_prom_header(b, "parley_auth_token_requests_refused_total",
                            "counter",
                            "POST /oauth/token answers other than 200, by "
                            "status.");
  for (size_t i = 0; i < 3 && rc == 0; i++) {
    snprintf(labels, sizeof labels, "code=\"%s\"", refused_codes[i]);
    rc = parley_prom_sample(b, "parley_auth_token_requests_refused_total",
                            labels, (double)st->token_refused[i]);
  }

  parley_rl_guard_stats(idx->guard, mono, &conn, &hs, &bad);
  parley_rl_stats(idx->sub_rl, mono, &sub);
  parley_rl_stats(idx->token_rl, mono, &tok);
  for (size_t m = 0; m < sizeof rl_help / sizeof rl_help[0] && rc == 0;
       m++) {
    /* One family at a time: all its samples follow its header. */
    const struct {
      const char *limit;
      const struct parley_rl_stats *s;
    } lims[] = {{"conn", &conn},     {"handshake", &hs}, {"bad_input", &bad},
                {"subscribe", &sub}, {"token", &tok}};
    rc = parley_prom_header(b, rl_help[m][0], rl_help[m][1], rl_help[m][2]);
    for (size_t i = 0; i < sizeof lims / sizeof lims[0] && rc == 0; i++) {
      struct parley_rl_stats one = *lims[i].s;
      const double v[] = {(double)one.allowed,        (double)one.limited,
                          (double)one.refused_banned, (double)one.strikes,
                          (double)one.bans,           (double)one.evictions,
                          (double)one.entries,        (double)one.active_bans};
      snprintf(labels, sizeof labels, "limit=\"%s\"", lims[i].limit);
      rc = parley_prom_sample(b, rl_help[m][0], labels, v[m]);
    }
  }
  return rc;
}
