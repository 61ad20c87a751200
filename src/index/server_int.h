/*
 * server_int.h — private declarations shared by the index server's files:
 *
 *   server.c         lifecycle, the turn-end hook (sync, then replies),
 *                    leases and expiry, the registry observer (watch fan-out)
 *   server_peer.c    link callbacks and the peer requests
 *   server_http.c    /metrics and the /v1 API
 *   server_auth.c    bearer tokens on every route, POST /oauth/token, the
 *                    abuse limits (peer-port guard, subscription churn,
 *                    header count) and their metrics
 *   server_cluster.c cluster mode: consensus hooks, proposals, leadership
 *                    and leases, /v1/cluster and the raft metrics
 *   server_dash.c    the dashboard: REPORTs into the model (dash.h), the
 *                    1 s tick, alerts (alerts.h) and webhooks (webhook.h),
 *                    GET /v1/dashboard and its event stream, metrics
 *   server_web.c     the dashboard's static files under /dashboard/
 *
 * Nothing here is part of the public API (server.h).
 */
#ifndef PARLEY_INDEX_SERVER_INT_H
#define PARLEY_INDEX_SERVER_INT_H

#include <stdint.h>

#include "core/limits.h"
#include "core/map.h"
#include "core/util.h"
#include "crypto/identity.h"
#include "http/auth.h"
#include "http/ratelimit.h"
#include "http/server.h"
#include "index/alerts.h"
#include "index/consensus.h"
#include "index/dash.h"
#include "index/lease.h"
#include "index/registry.h"
#include "index/regstore.h"
#include "index/server.h"
#include "index/webhook.h"
#include "net/link.h"
#include "wire/wire.h"

#include <jansson.h>

/* "[host]:port" of a numeric address, NUL included. */
#define IX_ADDR_CAP (PARLEY_MAX_ADDR + 8)
/* Longest ERROR text a held reply keeps (a leader address fits). */
#define IX_TEXT_CAP 128

struct ix_conn;

/* A reply to a peer request that cannot be sent at once.  Each link keeps
 * its replies in request order; the turn-end hook sends the ready ones
 * from the head.
 *   durable: it vouches for a regstore append and becomes ERROR(ESTORE)
 *            if the turn's sync fails (single node);
 *   waiting: its command is being replicated (cluster leader); the
 *            proposal's completion fills in the answer.
 * Otherwise it was only queued behind earlier replies to keep the order.
 * A waiting reply whose link closes becomes an orphan (conn NULL) and is
 * freed when its proposal completes.  EXPIRE proposals use a reply that
 * never had a link. */
struct ix_reply {
  struct ix_reply *next;  /* in the link's queue */
  struct parley_index *idx;
  struct ix_conn *conn;   /* NULL: orphan, or an expiry */
  uint32_t req;
  int code;               /* 0: OK(req, value); else ERROR(req, code, text) */
  uint64_t value;
  int durable;
  int waiting;
  uint8_t kind;           /* the proposed command's PARLEY_REG_* type */
  uint8_t pk[32];         /* the proposed command's peer */
  int has_text;           /* 0: ERROR carries the code's own text */
  char text[IX_TEXT_CAP]; /* ERROR text (may be empty) */
};

/* The links watching one topic.  Owned by parley_index.topics. */
struct ix_topic {
  struct parley_map watchers; /* &conn (pointer bytes) -> struct ix_conn * */
  char name[];                /* NUL-terminated topic */
};

/* One open peer link (after on_open).  Owned by the index; freed in
 * on_close or when the index is freed. */
struct ix_conn {
  struct parley_index *idx;
  struct parley_link *link;
  struct ix_conn *prev, *next; /* parley_index.conns */
  uint8_t pk[32];
  char id[PARLEY_ID_TEXT_LEN + 1];
  struct parley_map watched;   /* topic -> struct ix_topic * (borrowed) */
  struct ix_reply *rq_head, *rq_tail; /* held replies, request order */
  /* parley_index.held while rq_head != NULL, so that the turn-end hook
   * visits only the links with something to release. */
  struct ix_conn *held_prev, *held_next;
  uint32_t reg_inflight;       /* REGISTERs of this link being replicated */
  int current;                 /* the link parley_index.by_pk maps pk to */
};

struct parley_index {
  uv_loop_t *loop;
  const struct parley_log *log;
  char *data_dir;
  char name[PARLEY_MAX_NAME + 1];
  uint64_t lease_ms;
  uint32_t max_subs, max_frame, max_links;

  struct parley_identity id;
  char id_text[PARLEY_ID_TEXT_LEN + 1];
  char listen_addr[IX_ADDR_CAP];
  char http_addr[IX_ADDR_CAP];
  uint16_t listen_port, http_port;

  struct parley_registry *reg;
  struct parley_regstore *rs;
  int dirty; /* appends since the last sync */
  struct parley_lease_table leases;
  uv_timer_t lease_timer;
  int timer_armed;
  uint64_t timer_due; /* uv_now() time the timer is set for */

  struct parley_net *net;
  struct parley_listener *listener;
  struct parley_http *http;

  struct ix_conn *conns;     /* every open link */
  struct parley_map by_pk;   /* pk -> current struct ix_conn * */
  struct parley_map topics;  /* topic -> struct ix_topic * (owned) */

  size_t nheld;              /* replies in the links' queues */
  struct ix_conn *held;      /* the links whose queues are not empty */

  /* Cluster mode: the consensus object (NULL for a single node). */
  struct parley_consensus *cons;
  int leader;                /* ready leader: leases tracked here */
  int pending_closes;        /* lease timer, consensus */

  /* Set by the observer when a REGISTER changed a peer (PEER_UP); the
   * caller of apply fans it out once apply has returned. */
  int peer_up;
  uint8_t peer_up_pk[32];

  struct parley_index_stats st;
  uint64_t req_by_type[256];
  uint64_t http_by_route[16];
  uint64_t redirects;        /* ENOTLEADER answers */
  uint64_t proposals;        /* commands proposed (cluster leader) */
  uint64_t start_mono;
  int closing;

  /* Authentication and abuse limits (server_auth.c). */
  struct parley_auth *auth;
  struct parley_rl_guard *guard; /* the peer port's guard */
  struct parley_rl *sub_rl;      /* SUBSCRIBE/UNSUBSCRIBE per peer key */
  struct parley_rl *token_rl;    /* POST /oauth/token per client address */
  uv_timer_t house_timer;        /* auth reload, limiter sweeps */
  uint64_t auth_reload_ms;
  uint32_t http_max_headers;
  char *cluster_key_file;        /* for index.json; owned, may be NULL */

  /* Dashboard (server_dash.c, server_web.c). */
  struct parley_dash *dash;
  struct parley_alerts *alerts;
  struct parley_webhook *webhook;  /* NULL without --webhook */
  uv_timer_t dash_timer;           /* the 1 s tick */
  struct ix_stream *streams;       /* open /v1/dashboard/stream answers */
  size_t nstreams;
  char *web_dir;                   /* owned */
  uint64_t cpu_ms_prev;            /* own CPU time at the last tick */
  int64_t cpu_wall_prev;
  double cpu_percent;              /* own CPU use over the last tick */
  struct ix_dashx *dashx;          /* cluster view from the leader, alert
                                      evaluator (server_dash_fwd.c) */
};

/* server.c -------------------------------------------------------------- */

/* Starts or renews pk's lease (now + lease_ms, last_seen = wall clock) and
 * re-arms the expiry timer.  PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley__index_lease_renew(struct parley_index *idx,
                                               const uint8_t pk[32]);
/* last_seen of a peer: from its lease, else the registry's updated_ms. */
int64_t parley__index_last_seen(const struct parley_index *idx,
                                const struct parley_reg_peer *p);
/* Checks, applies and logs a command, then fans out the watch events it
 * caused (single node).  Returns the registry's verdict, or a storage
 * error. */
PARLEY_NODISCARD int parley__index_submit(struct parley_index *idx,
                                          const struct parley_reg_cmd *c);
/* After a command was applied to the registry: fans out the PEER_UP the
 * observer noted (needs the peer's subscriptions, so not inside apply). */
void parley__index_after_apply(struct parley_index *idx);
/* A new reply for link c (NULL for an expiry); caller fills and queues it.
 * NULL when out of memory. */
struct ix_reply *parley__index_reply_new(struct parley_index *idx,
                                         struct ix_conn *c, uint32_t req);
/* Appends r to its link's queue. */
void parley__index_reply_queue(struct ix_reply *r);
/* Takes c off parley_index.held (its queue became empty, or it closes). */
void parley__index_held_drop(struct ix_conn *c);
/* Copies text into r (NULL = the code's own text; "" stays empty). */
void parley__index_reply_text(struct ix_reply *r, const char *text);
/* Expires pk's registration (its lease ran out). */
void parley__index_expire(struct parley_index *idx, const uint8_t pk[32]);
/* Grants every registered peer one full lease from now (start-up of a
 * single node, a new cluster leader). */
PARLEY_NODISCARD int parley__index_grant_all(struct parley_index *idx);
/* Drops every lease (a leader that stepped down). */
void parley__index_drop_leases(struct parley_index *idx);
/* One of the index's asynchronous closes finished. */
void parley__index_close_done(struct parley_index *idx);
/* Fills w from a registry peer (pointers borrowed from p). */
void parley__index_wire_peer(const struct parley_index *idx,
                             const struct parley_reg_peer *p,
                             struct parley_wire_peer *w);

/* server_peer.c --------------------------------------------------------- */

extern const struct parley_link_cbs parley__index_link_cbs;
extern const struct parley_link_cbs parley__index_detached_cbs;
/* Sends a frame, closing the link if it cannot take it (back-pressure). */
void parley__index_send(struct ix_conn *c, const struct parley_frame *f);
void parley__index_send_ok(struct ix_conn *c, uint32_t req, uint64_t value);
void parley__index_send_error(struct ix_conn *c, uint32_t req, int code,
                              const char *text);
/* Pushes WATCH_EVENT(topic, kind, peer) to every link watching topic. */
void parley__index_fanout(struct parley_index *idx, const char *topic,
                          uint8_t kind, const struct parley_reg_peer *p);
/* Forgets every conn without closing the links (index shutdown). */
void parley__index_detach_all(struct parley_index *idx);
/* Answers req on link c: OK(value) when code is 0, else ERROR(code,
 * text).  Sent at once unless durable or earlier replies are held. */
void parley__index_reply(struct ix_conn *c, uint32_t req, int code,
                         const char *text, uint64_t value, int durable);
/* Makes c the current link of its peer (closing an older one). */
void parley__index_claim_link(struct ix_conn *c);
/* Sends the ready replies at the head of c's queue (sync_rc < 0: the
 * turn's regstore sync failed). */
void parley__index_release(struct ix_conn *c, int sync_rc);
/* Closes every link that watches a topic (their view is stale). */
void parley__index_drop_watchers(struct parley_index *idx, int reason);

/* server_acl.c: private topics.  acl_frame serves TOPIC_CTL, KEY_PUT,
 * KEY_GET and MEMBERS_GET (PARLEY_EPROTO for an undecodable payload: the
 * caller strikes the link); acl_change pushes ACL_EVENTs for a registry
 * change of the ACL kinds. */
int parley__index_acl_frame(struct ix_conn *c, const struct parley_frame *f);
void parley__index_acl_change(struct parley_index *idx,
                              const struct parley_reg_change *ch);

/* server_http.c --------------------------------------------------------- */

void parley__index_http_handler(void *ctx, struct parley_http_req *r);
/* Builds a JSON answer and responds with it (o is stolen; NULL = 500). */
void parley__index_respond_json(struct parley_http_req *r, unsigned status,
                                json_t *o, const char *const *headers);
void parley__index_respond_error(struct parley_http_req *r, unsigned status,
                                 int code, const char *msg,
                                 const char *const *headers);

/* server_auth.c --------------------------------------------------------- */

/* Creates the token keys and clients (file or cluster mode), the limiters
 * and the housekeeping timer; fills *ncfg's guard.  Before the listeners. */
PARLEY_NODISCARD int parley__index_auth_start(
    struct parley_index *idx, const struct parley_index_config *cfg,
    struct parley_net_guard *guard);
/* Frees what auth_start made; closes the timer (close_done follows). */
void parley__index_auth_stop(struct parley_index *idx);
/* The HTTP front door, before any route runs: header count, POST
 * /oauth/token, the dashboard's static files and the bearer check.
 * Returns 1 when it answered r, 0 when the route may go on. */
int parley__index_http_gate(struct parley_index *idx,
                            struct parley_http_req *r);
/* SUBSCRIBE/UNSUBSCRIBE churn of pk.  PARLEY_ELIMIT (with *retry_ms). */
PARLEY_NODISCARD int parley__index_sub_take(struct parley_index *idx,
                                            const uint8_t pk[32],
                                            uint64_t *retry_ms);
/* The auth, net guard and rate limit metrics. */
PARLEY_NODISCARD int parley__index_auth_metrics(struct parley_index *idx,
                                                struct parley_buf *b);


/* server_dash.c --------------------------------------------------------- */

/* Creates the dashboard model, loads the alert rules and webhook secret,
 * starts the tick.  Errors are logged. */
PARLEY_NODISCARD int parley__index_dash_start(
    struct parley_index *idx, const struct parley_index_config *cfg);
/* Ends the streams, closes the tick and the webhooks (close_done
 * follows for each), frees the model. */
void parley__index_dash_stop(struct parley_index *idx);
/* A REPORT frame from link c.  PARLEY_EPROTO if it is malformed (the
 * caller treats it as bad input), else PARLEY_OK. */
PARLEY_NODISCARD int parley__index_dash_report(struct ix_conn *c,
                                               const struct parley_frame *f);
/* A registry change (the observer): joins and expiries. */
void parley__index_dash_change(struct parley_index *idx,
                               const struct parley_reg_change *ch);
/* GET /v1/dashboard and /v1/dashboard/stream. */
void parley__index_http_dashboard(struct parley_index *idx,
                                  struct parley_http_req *r);
/* The dashboard, alert and webhook metrics. */
PARLEY_NODISCARD int parley__index_dash_metrics(struct parley_index *idx,
                                                struct parley_buf *b);

/* server_web.c ---------------------------------------------------------- */

/* Picks the front end's directory (cfg->web_dir or a default). */
PARLEY_NODISCARD int parley__index_web_start(
    struct parley_index *idx, const struct parley_index_config *cfg);
/* GET/HEAD /dashboard and /dashboard/...: the static files. */
void parley__index_web_serve(struct parley_index *idx,
                             struct parley_http_req *r);

/* server_cluster.c ------------------------------------------------------ */

/* Starts the consensus node (cluster mode). */
PARLEY_NODISCARD int parley__index_cluster_start(
    struct parley_index *idx, const struct parley_index_config *cfg);
/* Stops it; parley__index_close_done follows once it is closed. */
void parley__index_cluster_stop(struct parley_index *idx);
/* 1 if this node may serve writes now (a single node always may). */
int parley__index_writable(const struct parley_index *idx);
/* Answers a write request on a node that is not the leader:
 * ERROR(req, ENOTLEADER, leader's peer address or ""). */
void parley__index_redirect(struct ix_conn *c, uint32_t req);
/* Proposes cmd on behalf of request req of link c (NULL: an expiry); the
 * answer is queued on c and filled in when the entry is applied.  On an
 * error nothing was queued and the caller answers. */
PARLEY_NODISCARD int parley__index_propose(struct parley_index *idx,
                                           struct ix_conn *c, uint32_t req,
                                           const struct parley_reg_cmd *cmd);
/* /v1/cluster, /v1/cluster/add, /v1/cluster/remove. */
void parley__index_http_cluster(struct parley_index *idx,
                                struct parley_http_req *r);
/* The parley_index_raft_* metrics (nothing for a single node). */
PARLEY_NODISCARD int parley__index_cluster_metrics(struct parley_index *idx,
                                                   struct parley_buf *b);

#endif
