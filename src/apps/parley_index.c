/*
 * parley-index — the Parley index service.  Parses flags into an index
 * configuration and runs the index on a libuv loop until SIGINT/SIGTERM:
 * a single node by default, or one member of a replicated cluster with
 * --cluster (docs/internals/CLUSTER.md).
 *
 * `parley-index cluster status|add|remove|keygen ...` is the operator's
 * client for a running cluster: it talks to any node's HTTP API (libcurl)
 * with a bearer token and follows one redirect to the leader.
 *
 * `parley-index token create|rotate|revoke` and `parley-index client
 * add|remove|list` manage the HTTP API's credentials offline, in the data
 * directory (docs/internals/AUTH.md); a running daemon picks the changes up
 * within a few seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/opts.h"
#include "core/util.h"
#include "http/auth.h"
#include "http/ratelimit.h"
#include "index/raft_transport.h"
#include "index/server.h"

#define MAX_MEMBERS 32
#define ADDR_CAP (PARLEY_MAX_ADDR + 8)

struct flags {
  const char *listen, *http, *data, *name, *log_level;
  uint64_t lease_ms, max_subs, max_frame, max_links;
  uint64_t id;
  const char *cluster, *cluster_key;
  int join;
  uint64_t election_ms, heartbeat_ms;
  uint64_t snap_threshold, snap_trailing;
  uint64_t conn_burst, conn_rate, hs_burst, hs_rate;
  uint64_t strikes, strike_window_ms, ban_ms, ban_max_ms;
  uint64_t sub_burst, sub_rate;
  uint64_t token_burst, token_every_ms, token_strikes, token_ban_ms;
  uint64_t max_headers, auth_reload_ms, auth_leeway_s;
  const char *web, *alerts, *webhook, *webhook_secret, *webhook_ca;
  uint64_t webhook_attempts, webhook_retry_ms;
};

#define F(field) offsetof(struct flags, field)
static const struct parley_opt options[] = {
    {"listen", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "HOST:PORT",
     "address for peer links (port 0 = ephemeral)", F(listen)},
    {"http", PARLEY_OPT_STR, 0, 0, 0, NULL, "HOST:PORT",
     "serve /metrics, /v1 and /oauth/token here (bearer JWTs: see "
     "`parley-index token --help`)",
     F(http)},
    {"data", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "DIR",
     "data directory (identity, registry snapshot and log or raft/, "
     "index.json); created if missing",
     F(data)},
    {"lease", PARLEY_OPT_DURATION, 0, 100, 86400ull * 1000, "10", "SECONDS",
     "lease a peer gets per REGISTER/HEARTBEAT (a duration: 10, 10s, 500ms)",
     F(lease_ms)},
    {"name", PARLEY_OPT_STR, 0, 0, 0, "parley-index", "NAME",
     "name sent in HELLO", F(name)},
    {"log-level", PARLEY_OPT_STR, 0, 0, 0, "info", "LEVEL",
     "debug, info, warn or error", F(log_level)},
    {"max-subs", PARLEY_OPT_U64, 0, 1, 1000000, "1024", "N",
     "subscriptions per peer, and watched topics per link", F(max_subs)},
    {"max-frame", PARLEY_OPT_U64, 0, 4096, PARLEY_MAX_FRAME, "1052672", "BYTES",
     "largest frame accepted or sent on a link", F(max_frame)},
    {"max-links", PARLEY_OPT_U64, 0, 1, 1000000, "1024", "N",
     "most peer links open at once", F(max_links)},
    {"id", PARLEY_OPT_U64, 0, 1, 1000000000000ull, NULL, "N",
     "this node's id in the cluster (with --cluster)", F(id)},
    {"cluster", PARLEY_OPT_STR, 0, 0, 0, NULL, "ID=HOST:PORT,...",
     "every voter by id and Raft address (members talk there); the same "
     "list on every node",
     F(cluster)},
    {"cluster-key", PARLEY_OPT_STR, 0, 0, 0, NULL, "FILE",
     "shared cluster key: 64 hex digits, mode 0600 (required with "
     "--cluster; `parley-index cluster keygen`)",
     F(cluster_key)},
    {"join", PARLEY_OPT_FLAG, 0, 0, 0, NULL, NULL,
     "a new member: do not bootstrap, wait for `cluster add`", F(join)},
    {"raft-election", PARLEY_OPT_DURATION, 0, 50, 60000, "200ms", "MS",
     "Raft election timeout (randomised up to twice this)", F(election_ms)},
    {"raft-heartbeat", PARLEY_OPT_DURATION, 0, 10, 10000, "40ms", "MS",
     "Raft heartbeat interval (well below the election timeout)",
     F(heartbeat_ms)},
    {"raft-snapshot-threshold", PARLEY_OPT_U64, 0, 2, 10000000, "1024", "N",
     "take a Raft snapshot every N applied entries (bounds disk and "
     "start-up time)",
     F(snap_threshold)},
    {"raft-snapshot-trailing", PARLEY_OPT_U64, 0, 1, 10000000, "256", "N",
     "log entries kept behind a snapshot for slow followers", F(snap_trailing)},
    {"conn-burst", PARLEY_OPT_U64, 0, 1, 1000000, "64", "N",
     "peer-port connections one address may open at once", F(conn_burst)},
    {"conn-rate", PARLEY_OPT_U64, 0, 1, 1000000, "32", "N",
     "... and then per second", F(conn_rate)},
    {"handshake-burst", PARLEY_OPT_U64, 0, 1, 1000000, "32", "N",
     "handshakes one address may begin at once", F(hs_burst)},
    {"handshake-rate", PARLEY_OPT_U64, 0, 1, 1000000, "16", "N",
     "... and then per second", F(hs_rate)},
    {"strikes", PARLEY_OPT_U64, 0, 1, 1000000, "10", "N",
     "bad inputs (garbage, bad handshakes or frames) that ban an address "
     "and a peer key",
     F(strikes)},
    {"strike-window", PARLEY_OPT_DURATION, 0, 1000, 86400ull * 1000, "60s",
     "DURATION", "... when they come within this time", F(strike_window_ms)},
    {"ban", PARLEY_OPT_DURATION, 0, 1000, 86400ull * 1000, "60s", "DURATION",
     "first ban; each further ban of the same address or key doubles",
     F(ban_ms)},
    {"ban-max", PARLEY_OPT_DURATION, 0, 1000, 30ull * 86400 * 1000, "1h",
     "DURATION", "longest ban", F(ban_max_ms)},
    {"sub-burst", PARLEY_OPT_U64, 0, 0, 1000000, "0", "N",
     "SUBSCRIBE/UNSUBSCRIBE one peer may send at once (0 = --max-subs)",
     F(sub_burst)},
    {"sub-rate", PARLEY_OPT_U64, 0, 1, 1000000, "100", "N",
     "... and then per second (more: ERROR ELIMIT)", F(sub_rate)},
    {"token-burst", PARLEY_OPT_U64, 0, 1, 1000, "10", "N",
     "POST /oauth/token requests one address may make at once",
     F(token_burst)},
    {"token-every", PARLEY_OPT_DURATION, 0, 1, 3600ull * 1000, "6s",
     "DURATION", "... and then one more per this time", F(token_every_ms)},
    {"token-strikes", PARLEY_OPT_U64, 0, 1, 1000, "5", "N",
     "wrong client secrets within 10 minutes that ban an address",
     F(token_strikes)},
    {"token-ban", PARLEY_OPT_DURATION, 0, 1000, 86400ull * 1000, "15m",
     "DURATION", "... for this long (doubling up to a day)",
     F(token_ban_ms)},
    {"max-headers", PARLEY_OPT_U64, 0, 4, 10000, "64", "N",
     "HTTP requests with more headers are refused (431)", F(max_headers)},
    {"auth-reload", PARLEY_OPT_DURATION, 0, 100, 3600ull * 1000, "2s",
     "DURATION", "how often changed key and client files are re-read",
     F(auth_reload_ms)},
    {"auth-leeway", PARLEY_OPT_U64, 0, 0, 30, "0", "SECONDS",
     "clock skew allowed on token expiry (clusters with drifting clocks)",
     F(auth_leeway_s)},
    {"web", PARLEY_OPT_STR, 0, 0, 0, NULL, "DIR",
     "the dashboard's built front end, served under /dashboard/ (default: "
     "web/dashboard/dist of the source tree)",
     F(web)},
    {"alerts", PARLEY_OPT_STR, 0, 0, 0, NULL, "FILE",
     "alert rules, JSON (default rules without it; "
     "docs/internals/DASHBOARD.md)",
     F(alerts)},
    {"webhook", PARLEY_OPT_STR, 0, 0, 0, NULL, "URL",
     "POST firing and resolved alerts to this http:// or https:// URL "
     "(repeatable, up to 8)",
     F(webhook)},
    {"webhook-secret", PARLEY_OPT_STR, 0, 0, 0, NULL, "FILE",
     "sign webhook bodies with this secret (X-Parley-Signature: "
     "sha256=HMAC)",
     F(webhook_secret)},
    {"webhook-attempts", PARLEY_OPT_U64, 0, 1, 100, "5", "N",
     "attempts per webhook delivery before it is dropped",
     F(webhook_attempts)},
    {"webhook-retry", PARLEY_OPT_DURATION, 0, 10, 600000, "1s", "DURATION",
     "wait before the first retry (doubling each time, up to 60 s)",
     F(webhook_retry_ms)},
    {"webhook-ca", PARLEY_OPT_STR, 0, 0, 0, NULL, "FILE",
     "PEM file of the CAs trusted for https webhooks (default: the system "
     "store)",
     F(webhook_ca)},
};
#undef F
#define NOPTS (sizeof options / sizeof options[0])

static uv_signal_t sigint, sigterm;
static struct parley_index *idx;

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  parley_index_free(idx);
  idx = NULL;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
}

static int parse_level(const char *s) {
  static const char *const names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0)
      return i; /* PARLEY_LOG_DEBUG .. PARLEY_LOG_ERROR */
  return -1;
}

/* HOST:PORT into host/port; "localhost" means 127.0.0.1 (the servers take
 * numeric addresses). */
static int split_addr(const char *flag, const char *s, char *host, size_t cap,
                      uint16_t *port) {
  if (parley_parse_hostport(s, host, cap, port) < 0) {
    fprintf(stderr, "parley-index: --%s: '%s' is not HOST:PORT (see --help)\n",
            flag, s);
    return -1;
  }
  if (strcmp(host, "localhost") == 0)
    snprintf(host, cap, "127.0.0.1");
  return 0;
}

/* --cluster "1=HOST:PORT,2=HOST:PORT": ids and normalised addresses (every
 * node must bootstrap byte-identical configurations, so "localhost"
 * becomes 127.0.0.1 here too).  Duplicates are refused. */
static int parse_cluster(const char *spec, struct parley_index_member *m,
                         char (*addrs)[ADDR_CAP], size_t *n) {
  char item[ADDR_CAP + 24], host[PARLEY_MAX_ADDR + 1];
  const char *p = spec;
  uint16_t port;

  *n = 0;
  while (*p != '\0') {
    const char *end = strchr(p, ',');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    char *eq;
    uint64_t id;

    if (len == 0 || len >= sizeof item || *n == MAX_MEMBERS)
      goto bad;
    memcpy(item, p, len);
    item[len] = '\0';
    eq = strchr(item, '=');
    if (eq == NULL)
      goto bad;
    *eq = '\0';
    if (parley_parse_u64(item, 1, 1000000000000ull, &id) < 0 ||
        parley_parse_hostport(eq + 1, host, sizeof host, &port) < 0 ||
        port == 0)
      goto bad;
    if (strcmp(host, "localhost") == 0)
      snprintf(host, sizeof host, "127.0.0.1");
    if (parley_format_hostport(addrs[*n], ADDR_CAP, host, port) < 0 ||
        strlen(addrs[*n]) > PARLEY_MAX_ADDR)
      goto bad;
    for (size_t i = 0; i < *n; i++) {
      if (m[i].id == id || strcmp(m[i].raft_addr, addrs[*n]) == 0) {
        fprintf(stderr,
                "parley-index: --cluster: id %llu or address %s "
                "appears twice\n",
                (unsigned long long)id, addrs[*n]);
        return -1;
      }
    }
    m[*n].id = id;
    m[*n].raft_addr = addrs[*n];
    (*n)++;
    p += len;
    if (*p == ',')
      p++;
  }
  if (*n > 0)
    return 0;
bad:
  fprintf(stderr,
          "parley-index: --cluster: want ID=HOST:PORT,ID=HOST:PORT,... (ids "
          "1..10^12, at most %d members)\n",
          MAX_MEMBERS);
  return -1;
}

/* ---- `parley-index cluster ...` ---------------------------------------- */

struct http_answer {
  long status;
  struct parley_buf body;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct http_answer *a = ud;
  return parley_buf_append(&a->body, p, size * n) < 0 ? 0 : size * n;
}

/* One request to http://HOSTPORT/PATH.  Returns 0 with a->status set, or
 * -1 (message printed) when no HTTP answer came. */
static int http_call(const char *hostport, const char *method, const char *path,
                     const char *body, const char *token, long timeout_s,
                     struct http_answer *a) {
  char url[PARLEY_MAX_ADDR + 64], auth[PARLEY_AUTH_MAX_TOKEN + 32];
  struct curl_slist *hdrs = NULL;
  CURLcode cc;
  CURL *h;

  parley_buf_close(&a->body);
  parley_buf_init(&a->body, 16 * 1024 * 1024);
  a->status = 0;
  snprintf(url, sizeof url, "http://%s%s", hostport, path);
  h = curl_easy_init();
  if (h == NULL) {
    fprintf(stderr, "parley-index cluster: cannot start libcurl\n");
    return -1;
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never through a proxy */
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "parley-index-cluster");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
  if (token != NULL) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    hdrs = curl_slist_append(hdrs, auth);
    sodium_memzero(auth, sizeof auth);
  }
  if (strcmp(method, "POST") == 0) {
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  }
  if (hdrs != NULL)
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  cc = curl_easy_perform(h);
  if (cc == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  if (cc != CURLE_OK) {
    fprintf(stderr, "parley-index cluster: %s: %s\n", url,
            curl_easy_strerror(cc));
    return -1;
  }
  return 0;
}

static json_t *answer_json(const struct http_answer *a) {
  json_error_t err;
  return json_loadb((const char *)a->body.data, a->body.len, 0, &err);
}

/* Sends the request; on 421 follows the leader_http it names, once. */
static int call_leader(const char *hostport, const char *method,
                       const char *path, const char *body, const char *token,
                       long timeout_s, struct http_answer *a) {
  char leader[ADDR_CAP];
  json_t *o;
  const char *to = NULL;

  if (http_call(hostport, method, path, body, token, timeout_s, a) < 0)
    return -1;
  if (a->status != 421)
    return 0;
  o = answer_json(a);
  if (o != NULL && json_unpack(o, "{s:s}", "leader_http", &to) == 0 &&
      strlen(to) < sizeof leader) {
    snprintf(leader, sizeof leader, "%s", to);
    json_decref(o);
    return http_call(leader, method, path, body, token, timeout_s, a);
  }
  json_decref(o);
  fprintf(stderr,
          "parley-index cluster: %s is not the leader and knows no "
          "leader (an election may be under way; retry)\n",
          hostport);
  return -1;
}

static const char *jstr(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s != NULL ? s : "-";
}

static long long jint(json_t *o, const char *key) {
  return (long long)json_integer_value(json_object_get(o, key));
}

static void print_status(json_t *o) {
  json_t *leader = json_object_get(o, "leader"), *members, *m;
  size_t i;

  if (json_is_object(leader))
    printf("leader:  %lld (raft %s, peers %s, http %s)\n", jint(leader, "id"),
           jstr(leader, "raft"), jstr(leader, "listen"), jstr(leader, "http"));
  else
    printf("leader:  none known\n");
  printf("asked:   node %lld (%s), term %lld, commit index %lld, last "
         "applied %lld\n",
         jint(o, "id"), jstr(o, "role"), jint(o, "term"),
         jint(o, "commit_index"), jint(o, "last_applied"));
  printf("%-6s %-7s %-9s %-5s %-22s %-22s %-22s %s\n", "ID", "ROLE", "STATE",
         "UP", "RAFT", "LISTEN", "HTTP", "KEY");
  members = json_object_get(o, "members");
  json_array_foreach(members, i, m) {
    long long id = jint(m, "id");
    printf("%-6lld %-7s %-9s %-5s %-22s %-22s %-22s %s\n", id, jstr(m, "role"),
           json_is_object(leader) && jint(leader, "id") == id ? "leader"
                                                              : "follower",
           json_is_true(json_object_get(m, "reachable")) ? "yes" : "no",
           jstr(m, "raft"), jstr(m, "listen"), jstr(m, "http"), jstr(m, "key"));
  }
}

static int keygen(const char *out) {
  uint8_t key[PARLEY_CLUSTER_KEY_LEN];
  char hex[2 * PARLEY_CLUSTER_KEY_LEN + 2];
  int fd;

  if (sodium_init() < 0) {
    fprintf(stderr, "parley-index cluster keygen: libsodium failed\n");
    return 1;
  }
  randombytes_buf(key, sizeof key);
  parley_hex_encode(key, sizeof key, hex);
  sodium_memzero(key, sizeof key);
  hex[2 * PARLEY_CLUSTER_KEY_LEN] = '\n';
  hex[2 * PARLEY_CLUSTER_KEY_LEN + 1] = '\0';
  if (out == NULL) {
    fputs(hex, stdout);
    sodium_memzero(hex, sizeof hex);
    return fflush(stdout) == 0 ? 0 : 1;
  }
  fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) ||
      close(fd) < 0) {
    fprintf(stderr, "parley-index cluster keygen: %s: %s\n", out,
            strerror(errno));
    sodium_memzero(hex, sizeof hex);
    return 1;
  }
  sodium_memzero(hex, sizeof hex);
  return 0;
}

static void cluster_usage(FILE *f) {
  fprintf(f,
          "usage: parley-index cluster status --http HOST:PORT [--json] "
          "[--token JWT]\n"
          "       parley-index cluster add ID RAFT_HOST:PORT --http HOST:PORT "
          "[--token JWT]\n"
          "       parley-index cluster remove ID --http HOST:PORT "
          "[--token JWT]\n"
          "       parley-index cluster keygen [--out FILE]\n"
          "Talks to any node's HTTP API; changes are sent on to the leader.\n"
          "The bearer token (--token, else $PARLEY_TOKEN) needs role viewer "
          "for status\nand admin for add/remove: `parley-index token create "
          "--role admin ...`.\n"
          "A node to add is started first with --join (see "
          "docs/internals/CLUSTER.md).\n");
}

static int cluster_main(int argc, char **argv) {
  const char *http = NULL, *out = NULL, *pos[3] = {NULL, NULL, NULL};
  const char *token = getenv("PARLEY_TOKEN");
  char body[256], path[64];
  struct http_answer a;
  int json = 0, npos = 0, rc = 1;
  uint64_t id;
  json_t *o;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      cluster_usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if ((strcmp(argv[i], "--http") == 0 ||
                strcmp(argv[i], "--out") == 0 ||
                strcmp(argv[i], "--token") == 0) &&
               i + 1 < argc) {
      if (argv[i][2] == 'h')
        http = argv[++i];
      else if (argv[i][2] == 't')
        token = argv[++i];
      else
        out = argv[++i];
    } else if (strncmp(argv[i], "--", 2) == 0 || npos == 3) {
      fprintf(stderr, "parley-index cluster: unexpected '%s'\n", argv[i]);
      cluster_usage(stderr);
      return 2;
    } else {
      pos[npos++] = argv[i];
    }
  }
  if (npos == 1 && strcmp(pos[0], "keygen") == 0)
    return keygen(out);
  if (npos == 0 || http == NULL ||
      !((npos == 1 && strcmp(pos[0], "status") == 0) ||
        (npos == 3 && strcmp(pos[0], "add") == 0) ||
        (npos == 2 && strcmp(pos[0], "remove") == 0))) {
    cluster_usage(stderr);
    return 2;
  }
  if (token != NULL && (token[0] == '\0' ||
                        strlen(token) > PARLEY_AUTH_MAX_TOKEN ||
                        strpbrk(token, " \r\n") != NULL)) {
    fprintf(stderr, "parley-index cluster: the token is empty, too long or "
                    "has spaces\n");
    return 2;
  }
  if (npos >= 2 && parley_parse_u64(pos[1], 1, 1000000000000ull, &id) < 0) {
    fprintf(stderr, "parley-index cluster: '%s' is not a node id\n", pos[1]);
    return 2;
  }
  if (npos == 3) {
    char host[PARLEY_MAX_ADDR + 1];
    uint16_t port;
    if (strlen(pos[2]) > PARLEY_MAX_ADDR ||
        parley_parse_hostport(pos[2], host, sizeof host, &port) < 0 ||
        port == 0 || strchr(pos[2], '"') != NULL ||
        strchr(pos[2], '\\') != NULL) {
      fprintf(stderr, "parley-index cluster: '%s' is not HOST:PORT\n", pos[2]);
      return 2;
    }
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "parley-index cluster: cannot start libcurl\n");
    return 1;
  }
  memset(&a, 0, sizeof a);
  parley_buf_init(&a.body, 16 * 1024 * 1024);
  if (npos == 1) {
    if (http_call(http, "GET", "/v1/cluster", NULL, token, 10, &a) < 0)
      goto out;
  } else {
    if (npos == 3)
      snprintf(body, sizeof body, "{\"id\":%llu,\"raft\":\"%s\"}",
               (unsigned long long)id, pos[2]);
    else
      snprintf(body, sizeof body, "{\"id\":%llu}", (unsigned long long)id);
    snprintf(path, sizeof path, "/v1/cluster/%s", pos[0]);
    /* Adding waits for the new node to catch up: allow a minute. */
    if (call_leader(http, "POST", path, body, token, 90, &a) < 0)
      goto out;
  }
  o = answer_json(&a);
  if (a.status != 200) {
    fprintf(stderr, "parley-index cluster %s: HTTP %ld: %s%s\n", pos[0],
            a.status, o != NULL ? jstr(o, "error") : "(no JSON in the answer)",
            a.status == 401 && token == NULL
                ? " (pass --token or set PARLEY_TOKEN)"
                : "");
    json_decref(o);
    goto out;
  }
  if (o == NULL) {
    fprintf(stderr, "parley-index cluster: the answer is not JSON\n");
    goto out;
  }
  if (json) {
    fwrite(a.body.data, 1, a.body.len, stdout);
    if (a.body.len == 0 || a.body.data[a.body.len - 1] != '\n')
      putchar('\n');
  } else {
    if (npos > 1)
      printf("%s %llu: done\n",
             strcmp(pos[0], "add") == 0 ? "added" : "removed",
             (unsigned long long)id);
    print_status(o);
  }
  json_decref(o);
  rc = fflush(stdout) == 0 ? 0 : 1;
out:
  parley_buf_close(&a.body);
  curl_global_cleanup();
  return rc;
}

/* ---- `parley-index token ...` and `parley-index client ...` ------------- */

/* The flags of every credential command (each table uses some of them). */
struct cred_flags {
  const char *data, *role, *subject, *cluster_key;
  uint64_t ttl_ms;
};

#define C(field) offsetof(struct cred_flags, field)
#define OPT_DATA                                                              \
  {"data", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "DIR",            \
   "the index's data directory (jwt-keys.json, oauth-clients.json)",         \
   C(data)}
#define OPT_CLUSTER_KEY                                                       \
  {"cluster-key", PARLEY_OPT_STR, 0, 0, 0, NULL, "FILE",                      \
   "a cluster node's key file (default: the one recorded in "                \
   "DIR/index.json)",                                                         \
   C(cluster_key)}
#define OPT_ROLE                                                              \
  {"role", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "admin|viewer",   \
   "viewer reads (GET, /metrics); admin also changes (POST)", C(role)}
static const struct parley_opt token_create_opts[] = {
    OPT_DATA,
    OPT_ROLE,
    {"ttl", PARLEY_OPT_DURATION, PARLEY_OPT_REQUIRED, 1000,
     PARLEY_AUTH_DEFAULT_MAX_TTL_MS, NULL, "DURATION",
     "lifetime: 30s, 15m, 1h, 7d (at most 30 days)", C(ttl_ms)},
    {"subject", PARLEY_OPT_STR, 0, 0, 0, "cli", "NAME",
     "who holds the token (its sub claim)", C(subject)},
    OPT_CLUSTER_KEY,
};
static const struct parley_opt data_only_opts[] = {OPT_DATA, OPT_CLUSTER_KEY};
static const struct parley_opt client_add_opts[] = {OPT_DATA, OPT_ROLE,
                                                    OPT_CLUSTER_KEY};
#undef OPT_DATA
#undef OPT_CLUSTER_KEY
#undef OPT_ROLE
#undef C

struct cred_cmd {
  const char *group, *verb;
  const char *pos; /* name of the one positional argument, or NULL */
  const struct parley_opt *opts;
  size_t nopts;
  int (*run)(struct parley_auth *a, const struct cred_flags *f,
             const char *pos);
  const char *summary;
};

/* The cluster key recorded by the daemon in DIR/index.json, if any.
 * OUT: path (cap bytes).  Returns 1 if the node runs in a cluster, 0 if
 * not (or unknown), -1 on an unreadable index.json. */
static int recorded_cluster_key(const char *dir, char *path, size_t cap) {
  char file[4096];
  json_error_t jerr;
  json_t *o;
  const char *k;
  int cluster;

  path[0] = '\0';
  if ((size_t)snprintf(file, sizeof file, "%s/index.json", dir) >=
      sizeof file)
    return -1;
  if (access(file, F_OK) != 0)
    return 0; /* never started: file mode until it says otherwise */
  o = json_load_file(file, 0, &jerr);
  if (o == NULL)
    return -1;
  cluster = json_object_get(o, "node") != NULL;
  k = json_string_value(json_object_get(o, "cluster_key_file"));
  if (k != NULL && strlen(k) < cap)
    snprintf(path, cap, "%s", k);
  json_decref(o);
  return cluster;
}

/* Opens the credentials of DIR as the daemon does: cluster-derived keys
 * for a cluster node, the key file otherwise. */
static int open_auth(const struct cred_flags *f, struct parley_auth **a) {
  struct parley_auth_config cfg;
  uint8_t key[PARLEY_CLUSTER_KEY_LEN];
  char recorded[4096], err[256];
  const char *keyfile = f->cluster_key;
  int cluster, rc;

  cluster = recorded_cluster_key(f->data, recorded, sizeof recorded);
  if (cluster < 0) {
    fprintf(stderr, "parley-index: %s/index.json is unreadable\n", f->data);
    return 1;
  }
  if (keyfile == NULL && recorded[0] != '\0')
    keyfile = recorded;
  if (cluster && keyfile == NULL) {
    fprintf(stderr,
            "parley-index: %s belongs to a cluster node: pass --cluster-key "
            "FILE (its tokens are signed with keys derived from it)\n",
            f->data);
    return 2;
  }
  if (mkdir(f->data, 0700) < 0 && errno != EEXIST) {
    fprintf(stderr, "parley-index: %s: %s\n", f->data, strerror(errno));
    return 1;
  }
  memset(&cfg, 0, sizeof cfg);
  cfg.dir = f->data;
  if (keyfile != NULL) {
    if (sodium_init() < 0 ||
        parley_cluster_key_load(keyfile, key, err, sizeof err) < 0) {
      fprintf(stderr, "parley-index: --cluster-key %s: %s\n", keyfile, err);
      return 2;
    }
    cfg.cluster_key = key;
  }
  rc = parley_auth_new(&cfg, parley_now_ms(), a, err, sizeof err);
  sodium_memzero(key, sizeof key);
  if (rc < 0) {
    fprintf(stderr, "parley-index: %s: %s\n", f->data, err);
    return 1;
  }
  return 0;
}

static int role_of(const char *s, int *role) {
  if (parley_auth_role_parse(s, role) < 0) {
    fprintf(stderr, "parley-index: --role must be admin or viewer\n");
    return -1;
  }
  return 0;
}

static int run_token_create(struct parley_auth *a, const struct cred_flags *f,
                            const char *pos) {
  char tok[PARLEY_AUTH_TOKEN_CAP];
  int role, rc;

  (void)pos;
  if (role_of(f->role, &role) < 0)
    return 2;
  rc = parley_auth_mint(a, role, f->ttl_ms, f->subject, NULL,
                        parley_now_ms(), tok, sizeof tok);
  if (rc < 0) {
    fprintf(stderr, "parley-index token create: %s (--subject: 1..%u "
                    "printable characters)\n",
            parley_strerror(rc), PARLEY_AUTH_MAX_SUBJECT);
    return rc == PARLEY_EINVAL ? 2 : 1;
  }
  printf("%s\n", tok);
  sodium_memzero(tok, sizeof tok);
  return fflush(stdout) == 0 ? 0 : 1;
}

static int run_token_rotate(struct parley_auth *a, const struct cred_flags *f,
                            const char *pos) {
  char kid[PARLEY_AUTH_MAX_KID + 1];
  int rc;

  (void)pos;
  rc = parley_auth_rotate(a, parley_now_ms(), kid);
  if (rc == PARLEY_EINVAL) {
    fprintf(stderr,
            "parley-index token rotate: %s is a cluster node: its keys are "
            "derived from the cluster key and change every 7 days by "
            "themselves; to cut off every token at once, replace the "
            "cluster key on all nodes (docs/internals/AUTH.md)\n",
            f->data);
    return 2;
  }
  if (rc < 0) {
    fprintf(stderr, "parley-index token rotate: %s\n", parley_auth_errmsg(a));
    return 1;
  }
  printf("new signing key %s; tokens signed with the previous key keep "
         "working until they expire\n",
         kid);
  return fflush(stdout) == 0 ? 0 : 1;
}

static int run_token_revoke(struct parley_auth *a, const struct cred_flags *f,
                            const char *pos) {
  int rc;

  (void)pos;
  rc = parley_auth_revoke_retired(a);
  if (rc == PARLEY_EINVAL) {
    fprintf(stderr,
            "parley-index token revoke: %s is a cluster node: replace the "
            "cluster key on every node to revoke its tokens\n",
            f->data);
    return 2;
  }
  if (rc < 0) {
    fprintf(stderr, "parley-index token revoke: %s\n", parley_auth_errmsg(a));
    return 1;
  }
  printf("retired keys dropped: only tokens signed with the current key "
         "verify now\n");
  return fflush(stdout) == 0 ? 0 : 1;
}

static int run_client_add(struct parley_auth *a, const struct cred_flags *f,
                          const char *pos) {
  char secret[PARLEY_AUTH_SECRET_LEN + 1];
  int role, rc;

  if (role_of(f->role, &role) < 0)
    return 2;
  rc = parley_auth_client_add(a, pos, role, parley_now_ms(), secret);
  if (rc < 0) {
    fprintf(stderr, "parley-index client add %s: %s\n", pos,
            rc == PARLEY_EEXIST   ? "already registered"
            : rc == PARLEY_EINVAL ? "the id must be 1..64 of [A-Za-z0-9._-]"
                                  : parley_auth_errmsg(a));
    return rc == PARLEY_EEXIST || rc == PARLEY_EINVAL ? 2 : 1;
  }
  /* The secret is shown this once: only its hash is kept. */
  printf("%s\n", secret);
  sodium_memzero(secret, sizeof secret);
  fprintf(stderr, "client %s (%s) registered; its secret is above and "
                  "cannot be shown again\n",
          pos, f->role);
  return fflush(stdout) == 0 ? 0 : 1;
}

static int run_client_remove(struct parley_auth *a, const struct cred_flags *f,
                             const char *pos) {
  int rc = parley_auth_client_remove(a, pos);
  (void)f;
  if (rc == PARLEY_ENOTFOUND) {
    fprintf(stderr, "parley-index client remove: no client %s\n", pos);
    return 1;
  }
  if (rc < 0) {
    fprintf(stderr, "parley-index client remove: %s\n",
            parley_auth_errmsg(a));
    return 1;
  }
  return 0;
}

static int run_client_list(struct parley_auth *a, const struct cred_flags *f,
                           const char *pos) {
  struct parley_auth_client_info ci;
  char when[40];

  (void)f;
  (void)pos;
  printf("%-32s %-7s %s\n", "CLIENT", "ROLE", "CREATED");
  for (size_t i = 0; parley_auth_client_get(a, i, &ci) == PARLEY_OK; i++) {
    parley_format_rfc3339(ci.created_ms, when, sizeof when);
    printf("%-32s %-7s %s\n", ci.client_id, parley_auth_role_name(ci.role),
           when);
  }
  return fflush(stdout) == 0 ? 0 : 1;
}

static const struct cred_cmd cred_cmds[] = {
    {"token", "create", NULL, token_create_opts,
     sizeof token_create_opts / sizeof token_create_opts[0], run_token_create,
     "mint a bearer JWT (printed on stdout)"},
    {"token", "rotate", NULL, data_only_opts,
     sizeof data_only_opts / sizeof data_only_opts[0], run_token_rotate,
     "new signing key (single node); older tokens verify until they expire"},
    {"token", "revoke", NULL, data_only_opts,
     sizeof data_only_opts / sizeof data_only_opts[0], run_token_revoke,
     "drop every retired key (after a leak: rotate, then revoke)"},
    {"client", "add", "ID", client_add_opts,
     sizeof client_add_opts / sizeof client_add_opts[0], run_client_add,
     "register an OAuth client; prints its secret once"},
    {"client", "remove", "ID", data_only_opts,
     sizeof data_only_opts / sizeof data_only_opts[0], run_client_remove,
     "unregister an OAuth client"},
    {"client", "list", NULL, data_only_opts,
     sizeof data_only_opts / sizeof data_only_opts[0], run_client_list,
     "list the OAuth clients"},
};
#define NCRED (sizeof cred_cmds / sizeof cred_cmds[0])

static void cred_usage(FILE *out, const char *group) {
  fprintf(out, "usage:\n");
  for (size_t i = 0; i < NCRED; i++) {
    if (strcmp(cred_cmds[i].group, group) != 0)
      continue;
    fprintf(out, "  parley-index %s %s%s%s [flags]: %s\n", group,
            cred_cmds[i].verb, cred_cmds[i].pos ? " " : "",
            cred_cmds[i].pos ? cred_cmds[i].pos : "", cred_cmds[i].summary);
  }
  fprintf(out, "`parley-index %s VERB --help` lists a verb's flags.\n",
          group);
}

/* argv[0] is the group ("token", "client"). */
static int cred_main(int argc, char **argv) {
  const struct cred_cmd *cmd = NULL;
  struct cred_flags fl;
  struct parley_auth *a = NULL;
  char err[256], usage[64];
  const char *pos = NULL;
  int shift = 2, rc;

  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
                    strcmp(argv[1], "-h") == 0)) {
    cred_usage(stdout, argv[0]);
    return 0;
  }
  for (size_t i = 0; argc >= 2 && i < NCRED; i++)
    if (strcmp(cred_cmds[i].group, argv[0]) == 0 &&
        strcmp(cred_cmds[i].verb, argv[1]) == 0)
      cmd = &cred_cmds[i];
  if (cmd == NULL) {
    cred_usage(stderr, argv[0]);
    return 2;
  }
  if (cmd->pos != NULL) {
    if (argc < 3 || strncmp(argv[2], "--", 2) == 0) {
      if (argc >= 3 && (strcmp(argv[2], "--help") == 0))
        goto help;
      fprintf(stderr, "parley-index %s %s: needs %s first (see --help)\n",
              cmd->group, cmd->verb, cmd->pos);
      return 2;
    }
    pos = argv[2];
    shift = 3;
  }
  memset(&fl, 0, sizeof fl);
  /* parley_opts_parse skips its argv[0]: hand it the verb (or ID). */
  rc = parley_opts_parse(cmd->opts, cmd->nopts, argc - shift + 1,
                         argv + shift - 1, &fl, err, sizeof err);
  if (rc == PARLEY_EAGAIN)
    goto help;
  if (rc < 0) {
    fprintf(stderr, "parley-index %s %s: %s (see --help)\n", cmd->group,
            cmd->verb, err);
    return 2;
  }
  rc = open_auth(&fl, &a);
  if (rc != 0)
    return rc;
  rc = cmd->run(a, &fl, pos);
  parley_auth_free(a);
  return rc;

help:
  snprintf(usage, sizeof usage, "parley-index %s %s%s%s", cmd->group,
           cmd->verb, cmd->pos ? " " : "", cmd->pos ? cmd->pos : "");
  parley_opts_usage(stdout, usage, cmd->summary, cmd->opts, cmd->nopts);
  return 0;
}

/* ---- the daemon --------------------------------------------------------- */

int main(int argc, char **argv) {
  char err[256], lhost[PARLEY_MAX_ADDR + 1], hhost[PARLEY_MAX_ADDR + 1];
  static char addrs[MAX_MEMBERS][ADDR_CAP];
  struct parley_index_member members[MAX_MEMBERS];
  uint8_t key[PARLEY_CLUSTER_KEY_LEN];
  const char *raft_addr = NULL;
  struct flags fl;
  struct parley_index_config cfg;
  struct parley_rl_guard_config guard;
  struct parley_rl_config token_limit;
  struct parley_log log;
  const char *webhooks[8];
  size_t nmembers = 0, nwebhooks = 0;
  int rc, level;

  if (argc >= 2 && strcmp(argv[1], "cluster") == 0)
    return cluster_main(argc - 1, argv + 1);
  if (argc >= 2 &&
      (strcmp(argv[1], "token") == 0 || strcmp(argv[1], "client") == 0))
    return cred_main(argc - 1, argv + 1);
  memset(&fl, 0, sizeof fl);
  memset(&cfg, 0, sizeof cfg);
  rc = parley_opts_parse(options, NOPTS, argc, argv, &fl, err, sizeof err);
  if (rc == PARLEY_EAGAIN) {
    parley_opts_usage(stdout, "parley-index",
                      "The Parley index: registry of live peers and topic "
                      "subscriptions.\n"
                      "Also: parley-index cluster status|add|remove|keygen, "
                      "token create|rotate|revoke,\n"
                      "client add|remove|list (each with --help).",
                      options, NOPTS);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "parley-index: %s (see --help)\n", err);
    return 2;
  }
  level = parse_level(fl.log_level);
  if (level < 0) {
    fprintf(stderr,
            "parley-index: --log-level must be debug, info, warn or error\n");
    return 2;
  }
  if (strlen(fl.name) > PARLEY_MAX_NAME || fl.data[0] == '\0') {
    fprintf(stderr, "parley-index: --%s is empty or too long\n",
            fl.data[0] == '\0' ? "data" : "name");
    return 2;
  }
  if (split_addr("listen", fl.listen, lhost, sizeof lhost, &cfg.listen_port) <
      0)
    return 2;
  if (fl.http != NULL) {
    if (split_addr("http", fl.http, hhost, sizeof hhost, &cfg.http_port) < 0)
      return 2;
    cfg.http_host = hhost;
  }
  if (fl.cluster == NULL && (fl.id != 0 || fl.cluster_key != NULL || fl.join)) {
    fprintf(stderr, "parley-index: --id, --cluster-key and --join need "
                    "--cluster\n");
    return 2;
  }
  if (fl.cluster != NULL) {
    if (fl.id == 0 || fl.cluster_key == NULL) {
      fprintf(stderr, "parley-index: --cluster needs --id and "
                      "--cluster-key\n");
      return 2;
    }
    if (parse_cluster(fl.cluster, members, addrs, &nmembers) < 0)
      return 2;
    for (size_t i = 0; i < nmembers; i++)
      if (members[i].id == fl.id)
        raft_addr = members[i].raft_addr;
    if (raft_addr == NULL) {
      fprintf(stderr, "parley-index: --id %llu is not in --cluster\n",
              (unsigned long long)fl.id);
      return 2;
    }
    if (fl.heartbeat_ms * 2 > fl.election_ms) {
      fprintf(stderr, "parley-index: --raft-heartbeat must be at most half "
                      "of --raft-election\n");
      return 2;
    }
    if (sodium_init() < 0 ||
        parley_cluster_key_load(fl.cluster_key, key, err, sizeof err) < 0) {
      fprintf(stderr, "parley-index: --cluster-key: %s\n", err);
      return 2;
    }
    cfg.node_id = fl.id;
    cfg.members = members;
    cfg.nmembers = nmembers;
    cfg.join = fl.join;
    cfg.cluster_key = key;
    cfg.raft_election_ms = (unsigned)fl.election_ms;
    cfg.raft_heartbeat_ms = (unsigned)fl.heartbeat_ms;
    cfg.raft_snapshot_threshold = (unsigned)fl.snap_threshold;
    cfg.raft_snapshot_trailing = (unsigned)fl.snap_trailing;
  }
  /* libraft's TCP transport is not used, but a peer or member vanishing
   * mid-write must never kill the survivors. */
  signal(SIGPIPE, SIG_IGN);

  memset(&log, 0, sizeof log);
  log.emit = parley_log_stderr;
  log.ctx = (void *)"parley-index";
  log.min_level = level;

  cfg.loop = uv_default_loop();
  cfg.log = &log;
  cfg.data_dir = fl.data;
  cfg.listen_host = lhost;
  cfg.name = fl.name;
  cfg.lease_ms = fl.lease_ms;
  cfg.max_subs = (uint32_t)fl.max_subs;
  cfg.max_frame = (uint32_t)fl.max_frame;
  cfg.max_links = (uint32_t)fl.max_links;
  cfg.cluster_key_file = fl.cluster_key;

  /* Abuse limits (docs/SECURITY.md). */
  parley_rl_guard_defaults(&guard);
  guard.conn.burst = (uint32_t)fl.conn_burst;
  guard.conn.rate = (uint32_t)fl.conn_rate;
  guard.handshake.burst = (uint32_t)fl.hs_burst;
  guard.handshake.rate = (uint32_t)fl.hs_rate;
  guard.bad.strikes = (uint32_t)fl.strikes;
  guard.bad.strike_window_ms = fl.strike_window_ms;
  guard.bad.ban_ms = fl.ban_ms;
  guard.bad.ban_max_ms = fl.ban_max_ms > fl.ban_ms ? fl.ban_max_ms : fl.ban_ms;
  cfg.guard = &guard;
  memset(&token_limit, 0, sizeof token_limit);
  token_limit.burst = (uint32_t)fl.token_burst;
  token_limit.rate = 1;
  token_limit.per_ms = (uint32_t)fl.token_every_ms;
  token_limit.strikes = (uint32_t)fl.token_strikes;
  token_limit.strike_window_ms = 10u * 60u * 1000u;
  token_limit.ban_ms = fl.token_ban_ms;
  token_limit.ban_max_ms = 24u * 3600u * 1000u > fl.token_ban_ms
                               ? 24u * 3600u * 1000u
                               : fl.token_ban_ms;
  cfg.token_limit = &token_limit;
  cfg.sub_burst = (uint32_t)fl.sub_burst;
  cfg.sub_rate = (uint32_t)fl.sub_rate;
  cfg.http_max_headers = (uint32_t)fl.max_headers;
  cfg.auth_reload_ms = fl.auth_reload_ms;
  cfg.auth_leeway_s = (uint32_t)fl.auth_leeway_s;

  /* Dashboard and alerts.  --webhook may be repeated: the option table
   * keeps the last one, so every occurrence is collected here. */
  cfg.web_dir = fl.web;
  cfg.alerts_file = fl.alerts;
  cfg.webhook_secret_file = fl.webhook_secret;
  cfg.webhook_attempts = (unsigned)fl.webhook_attempts;
  cfg.webhook_retry_ms = (unsigned)fl.webhook_retry_ms;
  cfg.webhook_ca_file = fl.webhook_ca;
  for (int i = 1; i < argc; i++) {
    const char *url = NULL;
    if (strcmp(argv[i], "--webhook") == 0 && i + 1 < argc)
      url = argv[++i];
    else if (strncmp(argv[i], "--webhook=", 10) == 0)
      url = argv[i] + 10;
    if (url == NULL)
      continue;
    if (nwebhooks == sizeof webhooks / sizeof webhooks[0]) {
      fprintf(stderr, "parley-index: at most %zu --webhook\n", nwebhooks);
      return 2;
    }
    webhooks[nwebhooks++] = url;
  }
  cfg.webhooks = webhooks;
  cfg.nwebhooks = nwebhooks;

  rc = parley_index_new(&cfg, &idx);
  sodium_memzero(key, sizeof key);
  if (rc < 0) {
    fprintf(stderr, "parley-index: cannot start: %s\n", parley_strerror(rc));
    uv_run(cfg.loop, UV_RUN_DEFAULT); /* let closing handles finish */
    (void)uv_loop_close(cfg.loop);
    return 1;
  }
  /* Catch signals before announcing ourselves: whoever reads the line may
   * signal us at once. */
  uv_signal_init(cfg.loop, &sigint);
  uv_signal_init(cfg.loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  if (raft_addr != NULL)
    printf("parley-index listening on %s id=%s http=%s raft=%s node=%llu\n",
           parley_index_listen_addr(idx), parley_index_id(idx),
           parley_index_http_addr(idx), raft_addr, (unsigned long long)fl.id);
  else
    printf("parley-index listening on %s id=%s http=%s\n",
           parley_index_listen_addr(idx), parley_index_id(idx),
           parley_index_http_addr(idx));
  fflush(stdout);
  uv_run(cfg.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(cfg.loop);
  return rc == 0 ? 0 : 1;
}
