/*
 * server.h — parley-index as a library object: the single-node index
 * server on one libuv loop.
 *
 * An index owns its identity (DIR/identity.key), the registry of live peers
 * and topic subscriptions (registry.h) persisted in DIR (regstore.h) or,
 * in cluster mode, replicated through Raft (consensus.h), the lease table
 * (lease.h), a parley_net listener for peer links, and an optional HTTP
 * server for /metrics and the /v1 API.  Peers
 * REGISTER, HEARTBEAT, SUBSCRIBE/UNSUBSCRIBE, WATCH topics and look peers
 * up over their secure link; every change to the registry goes through
 * check/apply and the regstore log, and the replies that vouch for it are
 * sent only after the loop turn's fdatasync.  A peer whose lease runs out
 * is expired (an EXPIRE command) and the watchers of its topics are told.
 *
 * docs/internals/INDEX.md describes the behaviour in full.  The daemon
 * (src/apps/parley_index.c) fills a struct parley_index_config, calls
 * parley_index_new, runs the loop, and calls parley_index_free on SIGTERM.
 */
#ifndef PARLEY_INDEX_SERVER_H
#define PARLEY_INDEX_SERVER_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "http/ratelimit.h"

/* Version reported by /v1/status. */
#define PARLEY_INDEX_VERSION "0.1.0"
/* Default lease: a peer that neither heartbeats nor re-registers for this
 * long is expired. */
#define PARLEY_INDEX_DEFAULT_LEASE_MS 10000u
/* The log is folded into a new snapshot once it holds this many entries. */
#define PARLEY_INDEX_COMPACT_AFTER 10000u
/* Defaults of the abuse limits (docs/SECURITY.md, "Abuse resistance"). */
#define PARLEY_INDEX_DEFAULT_SUB_RATE 100u     /* SUBSCRIBE+UNSUBSCRIBE/s */
#define PARLEY_INDEX_DEFAULT_MAX_HEADERS 64u   /* HTTP request headers */
#define PARLEY_INDEX_DEFAULT_AUTH_RELOAD_MS 2000u

struct parley_index;

/* One voter of the initial cluster configuration (--cluster ID=HOST:PORT). */
struct parley_index_member {
  uint64_t id;
  const char *raft_addr; /* numeric HOST:PORT */
};

struct parley_index_config {
  uv_loop_t *loop;              /* borrowed; must outlive the index */
  const struct parley_log *log; /* borrowed, may be NULL */
  const char *data_dir;         /* created if missing (mode 0700) */
  const char *listen_host;      /* numeric address for peer links */
  uint16_t listen_port;         /* 0 = ephemeral */
  const char *http_host;        /* NULL = no HTTP server */
  uint16_t http_port;           /* 0 = ephemeral */
  const char *name;             /* HELLO name; NULL = "parley-index" */
  uint64_t lease_ms;            /* 0 = PARLEY_INDEX_DEFAULT_LEASE_MS */
  uint32_t max_subs;            /* subscriptions per peer and watched topics
                                   per link; 0 = PARLEY_DEFAULT_MAX_SUBS */
  uint32_t max_frame;           /* 0 = PARLEY_DEFAULT_MAX_FRAME */
  uint32_t max_links;           /* 0 = PARLEY_DEFAULT_MAX_LINKS */

  /* Cluster mode (docs/internals/CLUSTER.md) when nmembers > 0: the
   * registry lives in a Raft log under DIR/raft instead of the regstore. */
  uint64_t node_id;                          /* this node's raft id */
  const struct parley_index_member *members; /* copied */
  size_t nmembers;
  int join;                    /* do not bootstrap: wait to be added */
  const uint8_t *cluster_key;  /* 32 bytes (required in cluster mode) */
  unsigned raft_election_ms;   /* 0 = default (200) */
  unsigned raft_heartbeat_ms;  /* 0 = default (40) */
  unsigned raft_snapshot_threshold; /* 0 = default (1024 entries) */
  unsigned raft_snapshot_trailing;  /* 0 = default (256 entries) */
  /* Recorded in DIR/index.json ("cluster_key_file") so that
   * `parley-index token create --data DIR` finds the key; may be NULL. */
  const char *cluster_key_file;

  /* Authentication (docs/internals/AUTH.md): every HTTP endpoint but
   * POST /oauth/token and the dashboard's static files needs a bearer
   * JWT.  Its signing keys live in DIR/jwt-keys.json (single node;
   * created on first start) or are derived from cluster_key (cluster
   * mode); OAuth clients in DIR/oauth-clients.json.  Both files are read
   * again every auth_reload_ms when they changed (the CLI edits them). */
  uint64_t auth_reload_ms;      /* 0 = PARLEY_INDEX_DEFAULT_AUTH_RELOAD_MS */
  uint32_t auth_leeway_s;       /* clock skew allowed on exp/nbf, 0..30 */
  /* Abuse resistance.  guard: per-IP connection and handshake limits and
   * bans for bad input on the peer port (copied; NULL =
   * parley_rl_guard_defaults).  token_limit: POST /oauth/token per IP
   * (copied; NULL = burst 10, 1 per 6 s, 5 bad secrets in 10 min ban for
   * 15 min).  sub_burst/sub_rate: SUBSCRIBE+UNSUBSCRIBE per peer key
   * (0 = max_subs / PARLEY_INDEX_DEFAULT_SUB_RATE per second); over it a
   * request is answered ERROR(ELIMIT).  http_max_headers: requests with
   * more headers get 431 (0 = PARLEY_INDEX_DEFAULT_MAX_HEADERS). */
  const struct parley_rl_guard_config *guard;
  const struct parley_rl_config *token_limit;
  uint32_t sub_burst, sub_rate;
  uint32_t http_max_headers;

  /* Dashboard and alerts (docs/internals/DASHBOARD.md).  web_dir: the
   * built front end served under /dashboard/ (NULL: web/dashboard/dist of
   * the source tree, found next to the binary or where it was built).
   * alerts_file: JSON alert rules (NULL: the defaults).  webhooks: URLs
   * every firing and resolved alert is POSTed to (copied; nwebhooks <=
   * 8), signed with the bytes of webhook_secret_file (trailing white space
   * dropped; NULL: unsigned, with a warning).  webhook_attempts and
   * webhook_retry_ms: 0 = 5 attempts, first retry after 1000 ms. */
  const char *web_dir;
  const char *alerts_file;
  const char *const *webhooks;
  size_t nwebhooks;
  const char *webhook_secret_file;
  unsigned webhook_attempts;
  unsigned webhook_retry_ms;
  /* PEM file of the CAs trusted for https:// webhooks (NULL: the system
   * store). */
  const char *webhook_ca_file;
};

/* Creates the index and starts it: creates data_dir, loads or creates the
 * identity, opens the regstore (restoring the registry, then granting every
 * restored peer one full lease), listens for peer links and, if http_host is
 * set, for HTTP, and writes DIR/index.json.  Everything in cfg is copied.
 * OUT: *out on success; the caller frees it with parley_index_free and then
 * runs the loop until it has no handles left.  On failure nothing is left
 * open (but handles already closing may need one more loop run) and *out
 * is untouched.  Errors: PARLEY_EINVAL (bad config), PARLEY_EIO (data dir,
 * identity file), PARLEY_EAUTH (identity file unsafe or malformed),
 * PARLEY_ESTORE (regstore), PARLEY_ESYNTAX (alert rules or webhook
 * secret unreadable or invalid), PARLEY_ECONNECT (cannot listen),
 * PARLEY_ENOMEM.
 * Details are logged. */
PARLEY_NODISCARD int parley_index_new(const struct parley_index_config *cfg,
                                      struct parley_index **out)
    PARLEY_NONNULL(1, 2);

/* Orderly shutdown: stops listening, closes every link and the HTTP
 * server, syncs and closes the regstore.  The memory is released from
 * libuv close callbacks: run the loop afterwards until it returns.  NULL is
 * a no-op. */
void parley_index_free(struct parley_index *idx);

/* 1 when running as a cluster member. */
int parley_index_is_cluster(const struct parley_index *idx) PARLEY_NONNULL(1);

/* Ports actually bound (0 for HTTP when it is not served). */
uint16_t parley_index_listen_port(const struct parley_index *idx)
    PARLEY_NONNULL(1);
uint16_t parley_index_http_port(const struct parley_index *idx)
    PARLEY_NONNULL(1);
/* "HOST:PORT" of the peer listener / HTTP server ("-" when not served), and
 * the 52-character id.  Valid for the index's lifetime. */
const char *parley_index_listen_addr(const struct parley_index *idx)
    PARLEY_NONNULL(1);
const char *parley_index_http_addr(const struct parley_index *idx)
    PARLEY_NONNULL(1);
const char *parley_index_id(const struct parley_index *idx) PARLEY_NONNULL(1);

/* Counters, also exported on /metrics. */
struct parley_index_stats {
  uint64_t registrations, expiries, heartbeats;
  uint64_t requests; /* every frame received on a peer link */
  uint64_t errors;   /* ERROR frames sent */
  uint64_t sync_failures;
  uint64_t watch_events; /* WATCH_EVENT frames sent */
  uint64_t links_open;   /* gauge: links past on_open */
  uint64_t watches;      /* gauge: (link, topic) watch pairs */
  uint64_t sub_limited;  /* SUBSCRIBE/UNSUBSCRIBE refused (churn limit) */
  uint64_t peer_bans;    /* links closed: banned after frames the index
                            does not serve */
  /* HTTP authentication and limits. */
  uint64_t http_401, http_403, http_431;
  uint64_t tokens_issued;          /* 200 from POST /oauth/token */
  uint64_t token_refused[3];       /* 400, 401, 429 from it */
  uint64_t auth_reloads, auth_reload_errors;
  /* Dashboard. */
  uint64_t reports;          /* REPORT frames taken */
  uint64_t reports_rejected; /* malformed, or from unregistered peers */
  /* Private topics. */
  uint64_t acl_requests; /* TOPIC_CTL, KEY_PUT, KEY_GET, MEMBERS_GET */
  uint64_t acl_refused;  /* of those: refused grants, non-member reads,
                            and WATCHes of a private topic by non-members */
  uint64_t acl_events;   /* ACL_EVENT frames sent */
};
void parley_index_get_stats(const struct parley_index *idx,
                            struct parley_index_stats *out)
    PARLEY_NONNULL(1, 2);

#endif
