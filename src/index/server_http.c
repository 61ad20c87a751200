/* server_http.c — the index's HTTP side: /metrics and the read-only /v1 API.
 * Every answer is built in memory from the current state and sent whole.
 * Every request passes parley__index_http_gate (server_auth.c) first. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "metrics/prom.h"
#include "index/server_int.h"

/* Largest answer we build (the peer list of a very large index). */
#define HTTP_MAX_ANSWER (256u * 1024u * 1024u)

enum {
  ROUTE_METRICS,
  ROUTE_STATUS,
  ROUTE_PEERS,
  ROUTE_TOPICS,
  ROUTE_CLUSTER,
  ROUTE_TOKEN,
  ROUTE_DASHBOARD,
  ROUTE_DASHBOARD_API,
  ROUTE_OTHER
};

static const char *const route_names[] = {
    "/metrics",    "/v1/status",   "/v1/peers",     "/v1/topics",
    "/v1/cluster", "/oauth/token", "/dashboard",    "/v1/dashboard",
    "other"};
_Static_assert(sizeof route_names / sizeof route_names[0] == ROUTE_OTHER + 1,
               "one name per route");

static int dump_cb(const char *p, size_t n, void *ctx) {
  return parley_buf_append(ctx, p, n) < 0 ? -1 : 0;
}

/* Appends o as compact JSON (and a newline when nl), then drops o. */
static int append_json(struct parley_buf *b, json_t *o, int nl) {
  int rc = PARLEY_OK;
  if (o == NULL)
    return PARLEY_ENOMEM;
  if (json_dump_callback(o, dump_cb, b, JSON_COMPACT) < 0 ||
      (nl && parley_buf_append(b, "\n", 1) < 0))
    rc = PARLEY_ENOMEM;
  json_decref(o);
  return rc;
}

void parley__index_respond_json(struct parley_http_req *r, unsigned status,
                                json_t *o, const char *const *headers) {
  struct parley_buf b;
  parley_buf_init(&b, HTTP_MAX_ANSWER);
  if (append_json(&b, o, 1) < 0) {
    static const char oom[] =
        "{\"error\":\"out of memory\",\"code\":\"ENOMEM\"}\n";
    parley_http_respond(r, 500, "application/json", oom, sizeof oom - 1,
                        NULL);
  } else {
    parley_http_respond(r, status, "application/json", b.data, b.len,
                        headers);
  }
  parley_buf_close(&b);
}

void parley__index_respond_error(struct parley_http_req *r, unsigned status,
                                 int code, const char *msg,
                                 const char *const *headers) {
  parley__index_respond_json(r, status,
               json_pack("{s:s, s:s}", "error", msg, "code",
                         parley_err_name(code)),
               headers);
}

/* ---- /metrics --------------------------------------------------------- */

static double proc_rss_bytes(void) {
  FILE *fp = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  long page = sysconf(_SC_PAGESIZE);
  if (fp == NULL)
    return 0;
  if (fscanf(fp, "%lu %lu", &size, &resident) != 2)
    resident = 0;
  fclose(fp);
  return (double)resident * (double)(page > 0 ? page : 4096);
}

static double proc_open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  double n = 0;
  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory stream's own descriptor */
}

#define M(name, type, help, value)                                            \
  do {                                                                        \
    if (rc == 0)                                                              \
      rc = parley_prom_metric(b, name, type, help, (double)(value));          \
  } while (0)


static int sum_subs(void *ctx, const struct parley_reg_peer *p) {
  *(uint64_t *)ctx += p->nsubs;
  return 0;
}

static int write_metrics(struct parley_index *idx, struct parley_buf *b) {
  const struct parley_net_stats *ns = parley_net_stats(idx->net);
  const struct parley_index_stats *st = &idx->st;
  char labels[64];
  uint64_t subs = 0;
  int rc = 0;

  (void)parley_registry_foreach_peer(idx->reg, sum_subs, &subs);
  M("parley_index_peers", "gauge", "Registered peers.",
    parley_registry_peer_count(idx->reg));
  M("parley_index_topics", "gauge", "Topics with at least one subscriber.",
    parley_registry_topic_count(idx->reg));
  M("parley_index_subscriptions", "gauge", "Peer-topic subscriptions.", subs);
  M("parley_index_links_open", "gauge", "Open peer links.", st->links_open);
  M("parley_index_watches", "gauge", "Topics watched, summed over links.",
    st->watches);
  M("parley_index_leases", "gauge", "Leases being tracked.",
    parley_lease_count(&idx->leases));
  M("parley_index_lease_seconds", "gauge", "Lease granted to peers.",
    (double)idx->lease_ms / 1000.0);
  M("parley_index_registrations_total", "counter", "Accepted REGISTERs.",
    st->registrations);
  M("parley_index_expiries_total", "counter", "Peers expired by lease.",
    st->expiries);
  M("parley_index_heartbeats_total", "counter", "Accepted HEARTBEATs.",
    st->heartbeats);
  M("parley_index_errors_total", "counter", "ERROR frames sent to peers.",
    st->errors);
  M("parley_index_watch_events_total", "counter", "WATCH_EVENT frames sent.",
    st->watch_events);
  M("parley_index_acl_requests_total", "counter",
    "Private-topic requests (TOPIC_CTL, KEY_PUT, KEY_GET, MEMBERS_GET).",
    st->acl_requests);
  M("parley_index_acl_refused_total", "counter",
    "Private-topic requests and watches refused (bad grant, non-member).",
    st->acl_refused);
  M("parley_index_acl_events_total", "counter", "ACL_EVENT frames sent.",
    st->acl_events);
  M("parley_index_private_topics", "gauge", "Private topics.",
    parley_registry_acl_count(idx->reg));
  M("parley_index_store_failures_total", "counter",
    "Registry log appends or syncs that failed.", st->sync_failures);
  if (idx->rs != NULL)
    M("parley_index_regstore_log_entries", "gauge",
      "Registry log entries since the last snapshot.",
      parley_regstore_log_entries(idx->rs));
  if (rc == 0)
    rc = parley__index_cluster_metrics(idx, b);
  if (rc == 0)
    rc = parley__index_auth_metrics(idx, b);
  if (rc == 0)
    rc = parley__index_dash_metrics(idx, b);
  if (rc == 0)
    rc = parley_prom_header(b, "parley_index_requests_total", "counter",
                            "Frames received on peer links, by type.");
  for (unsigned t = 0; t < 256 && rc == 0; t++) {
    if (idx->req_by_type[t] == 0)
      continue;
    snprintf(labels, sizeof labels, "type=\"%s\"",
             parley_frame_type_name((uint8_t)t));
    rc = parley_prom_sample(b, "parley_index_requests_total", labels,
                            (double)idx->req_by_type[t]);
  }
  M("parley_net_bytes_received_total", "counter", "TCP bytes received.",
    ns->bytes_in);
  M("parley_net_bytes_sent_total", "counter", "TCP bytes sent.", ns->bytes_out);
  M("parley_net_records_received_total", "counter", "AEAD records received.",
    ns->records_in);
  M("parley_net_records_sent_total", "counter", "AEAD records sent.",
    ns->records_out);
  M("parley_net_frames_received_total", "counter", "Frames received.",
    ns->frames_in);
  M("parley_net_frames_sent_total", "counter", "Frames sent.", ns->frames_out);
  M("parley_net_handshakes_total", "counter", "Completed handshakes.",
    ns->handshakes_ok);
  M("parley_net_handshakes_failed_total", "counter", "Failed handshakes.",
    ns->handshakes_failed);
  M("parley_net_links_accepted_total", "counter", "TCP connections accepted.",
    ns->links_accepted);
  M("parley_net_links_refused_total", "counter",
    "Connections refused (link limit).", ns->links_refused);
  M("parley_net_protocol_errors_total", "counter",
    "Links closed for bad input.", ns->protocol_errors);
  M("parley_net_links_open", "gauge", "Open links, any state.",
    ns->links_open);
  if (idx->http != NULL) {
    const struct parley_http_stats *hs = parley_http_stats(idx->http);
    if (rc == 0)
      rc = parley_prom_header(b, "parley_http_requests_total", "counter",
                              "HTTP requests handled, by route.");
    for (unsigned i = 0; i <= ROUTE_OTHER && rc == 0; i++) {
      snprintf(labels, sizeof labels, "route=\"%s\"", route_names[i]);
      rc = parley_prom_sample(b, "parley_http_requests_total", labels,
                              (double)idx->http_by_route[i]);
    }
    if (rc == 0)
      rc = parley_prom_header(b, "parley_http_responses_total", "counter",
                              "HTTP responses, by status class.");
    if (rc == 0)
      rc = parley_prom_sample(b, "parley_http_responses_total",
                              "code=\"2xx\"", (double)hs->responses_2xx);
    if (rc == 0)
      rc = parley_prom_sample(b, "parley_http_responses_total",
                              "code=\"4xx\"", (double)hs->responses_4xx);
    if (rc == 0)
      rc = parley_prom_sample(b, "parley_http_responses_total",
                              "code=\"5xx\"", (double)hs->responses_5xx);
    M("parley_http_refused_total", "counter",
      "HTTP requests refused before the handler.", hs->refused);
  }
  M("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
    proc_rss_bytes());
  M("process_open_fds", "gauge", "Number of open file descriptors.",
    proc_open_fds());
  M("process_uptime_seconds", "gauge", "Seconds since the index started.",
    (double)(uv_now(idx->loop) - idx->start_mono) / 1000.0);
  return rc;
}

static void get_metrics(struct parley_index *idx, struct parley_http_req *r) {
  struct parley_buf b;
  parley_buf_init(&b, HTTP_MAX_ANSWER);
  if (write_metrics(idx, &b) < 0) {
    parley_buf_close(&b);
    parley__index_respond_error(r, 500, PARLEY_ENOMEM, "out of memory",
                                NULL);
    return;
  }
  parley_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8",
                      b.data, b.len, NULL);
  parley_buf_close(&b);
}

/* ---- /v1 -------------------------------------------------------------- */

static void get_status(struct parley_index *idx, struct parley_http_req *r) {
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "id",
      idx->id_text, "name", idx->name, "listen", idx->listen_addr, "http",
      idx->http_port ? idx->http_addr : NULL, "peers",
      (json_int_t)parley_registry_peer_count(idx->reg), "topics",
      (json_int_t)parley_registry_topic_count(idx->reg), "links",
      (json_int_t)idx->st.links_open, "uptime_ms",
      (json_int_t)(uv_now(idx->loop) - idx->start_mono), "lease_ms",
      (json_int_t)idx->lease_ms, "pid", (json_int_t)getpid(), "version",
      PARLEY_INDEX_VERSION);
  parley__index_respond_json(r, 200, o, NULL);
}

struct ndjson {
  struct parley_index *idx;
  struct parley_buf *b;
  json_t *arr; /* scratch: the subscriptions of the current peer */
  int err;
};

static int add_sub(void *ctx, const char *topic) {
  struct ndjson *w = ctx;
  if (json_array_append_new(w->arr, json_string(topic)) < 0) {
    w->err = PARLEY_ENOMEM;
    return 1;
  }
  return 0;
}

static int peer_line(void *ctx, const struct parley_reg_peer *p) {
  struct ndjson *w = ctx;
  char id[PARLEY_ID_TEXT_LEN + 1];
  json_t *o;

  parley_id_encode(p->pk, id);
  w->arr = json_array();
  if (w->arr == NULL) {
    w->err = PARLEY_ENOMEM;
    return 1;
  }
  (void)parley_registry_foreach_sub_of(w->idx->reg, p->pk, add_sub, w);
  if (w->err < 0) {
    json_decref(w->arr);
    return 1;
  }
  /* "o" steals the array reference. */
  o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o}", "id", id, "name", p->name,
                "addr", p->addr, "last_seen",
                (json_int_t)parley__index_last_seen(w->idx, p), "registered",
                (json_int_t)p->registered_ms, "subscriptions", w->arr);
  w->arr = NULL;
  w->err = append_json(w->b, o, 1);
  return w->err < 0;
}

static int topic_line(void *ctx, const char *topic, uint32_t subscribers) {
  struct ndjson *w = ctx;
  w->err = append_json(w->b,
                       json_pack("{s:s, s:I}", "topic", topic, "subscribers",
                                 (json_int_t)subscribers),
                       1);
  return w->err < 0;
}

static void get_list(struct parley_index *idx, struct parley_http_req *r,
                     int peers) {
  struct parley_buf b;
  struct ndjson w;

  parley_buf_init(&b, HTTP_MAX_ANSWER);
  memset(&w, 0, sizeof w);
  w.idx = idx;
  w.b = &b;
  if (peers)
    (void)parley_registry_foreach_peer(idx->reg, peer_line, &w);
  else
    (void)parley_registry_foreach_topic(idx->reg, topic_line, &w);
  if (w.err < 0)
    parley__index_respond_error(r, 500, w.err, "cannot build the list",
                                NULL);
  else
    parley_http_respond(r, 200, "application/x-ndjson", b.data, b.len, NULL);
  parley_buf_close(&b);
}

/* ---- routing ---------------------------------------------------------- */

void parley__index_http_handler(void *ctx, struct parley_http_req *r) {
  static const char *const allow_get[] = {"Allow", "GET, HEAD", NULL};
  struct parley_index *idx = ctx;
  const char *method = parley_http_method(r);
  const char *path = parley_http_path(r);
  int route = ROUTE_OTHER;

  for (int i = 0; i < ROUTE_OTHER; i++)
    if (strcmp(path, route_names[i]) == 0)
      route = i;
  if (route == ROUTE_OTHER && strncmp(path, "/v1/cluster/", 12) == 0)
    route = ROUTE_CLUSTER;
  if (route == ROUTE_OTHER && strncmp(path, "/dashboard/", 11) == 0)
    route = ROUTE_DASHBOARD;
  if (route == ROUTE_OTHER && strncmp(path, "/v1/dashboard/", 14) == 0)
    route = ROUTE_DASHBOARD_API;
  idx->http_by_route[route]++;
  if (idx->closing) {
    parley__index_respond_error(r, 503, PARLEY_EUNAVAIL,
                                "index is shutting down", NULL);
    return;
  }
  /* Header limit, bearer token, the token endpoint and the dashboard's
   * static files: nothing below runs for a request it refused. */
  if (parley__index_http_gate(idx, r))
    return;
  if (route == ROUTE_CLUSTER) {
    parley__index_http_cluster(idx, r);
    return;
  }
  if (route == ROUTE_DASHBOARD_API) {
    parley__index_http_dashboard(idx, r);
    return;
  }
  if (route == ROUTE_OTHER || route == ROUTE_TOKEN ||
      route == ROUTE_DASHBOARD) { /* the gate answers the last two */
    parley__index_respond_error(r, 404, PARLEY_ENOTFOUND, "no such endpoint",
                                NULL);
    return;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    parley__index_respond_error(r, 405, PARLEY_EINVAL, "method not allowed",
                                allow_get);
    return;
  }
  switch (route) {
  case ROUTE_METRICS:
    get_metrics(idx, r);
    break;
  case ROUTE_STATUS:
    get_status(idx, r);
    break;
  case ROUTE_PEERS:
    get_list(idx, r, 1);
    break;
  default:
    get_list(idx, r, 0);
    break;
  }
}
