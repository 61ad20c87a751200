/*
 * server_dash_int.h — declarations shared by the dashboard backend's two
 * files:
 *
 *   server_dash.c      the model (dash.h) fed by REPORTs, the 1 s tick, the
 *                      alert rules (alerts.h) and their webhooks,
 *                      GET /v1/dashboard[/stream] and the metrics;
 *   server_dash_fwd.c  the cluster side: which node evaluates the alert
 *                      rules (the ready Raft leader), and a follower's
 *                      dashboard, which shows the leader's figures fetched
 *                      over HTTP (httpc.h) instead of its own.
 *
 * Peers link to, register with and REPORT to the leader only, so the
 * leader holds the cluster's figures; a follower forwards GET
 * /v1/dashboard to the leader's HTTP address (with the caller's bearer
 * token: every node of a cluster verifies every other node's tokens) and
 * feeds its event streams from one GET of the leader's delta per second
 * (with a short-lived viewer token of its own).  When the leader cannot be
 * reached it answers from its own state and says so (served_by).
 * docs/DASHBOARD_API.md, "Which node answers".
 */
#ifndef PARLEY_INDEX_SERVER_DASH_INT_H
#define PARLEY_INDEX_SERVER_DASH_INT_H

#include <stdint.h>

#include <jansson.h>

#include "http/auth.h"
#include "index/httpc.h"
#include "index/server_int.h"

/* The header a node adds when it forwards a dashboard request: the
 * receiver never forwards such a request again (no loops while leadership
 * moves). */
#define IX_DASH_FORWARDED_HEADER "X-Parley-Forwarded"

struct ix_fwd;

/* Where a stream feed or alerts poll answer goes. */
struct ix_feed {
  struct parley_index *idx;
  int kind;                       /* 0: 1 h stream, 1: 24 h, 2: alerts poll */
  struct parley_httpc_xfer *xfer; /* in flight, or NULL */
  int64_t started_ms;
};

/* The leader's poll of another index node's resource use. */
struct ix_member {
  struct parley_index *idx;
  uint64_t id;                    /* 0: a free slot */
  struct parley_httpc_xfer *xfer; /* in flight, or NULL */
  json_t *row;                    /* its last answer's resource row */
  int64_t at_ms;                  /* when it came */
};

/* Owned by the index (parley_index.dashx); server_dash_fwd.c creates and
 * frees it. */
struct ix_dashx {
  struct parley_httpc *http; /* cluster mode only, else NULL */
  int evaluator;             /* evaluated the cluster's rules at the last
                                tick */
  json_t *leader_firing;     /* the leader's alerts.firing, last seen */
  int64_t leader_seen_ms;    /* when (0: never) */
  struct ix_fwd *fwds;       /* forwarded GETs in flight */
  struct ix_feed feed[3];
  char token[PARLEY_AUTH_TOKEN_CAP]; /* for feeds and polls */
  int64_t token_until;
  uint64_t from_leader;      /* answers and events taken from the leader */
  uint64_t leader_failed;    /* ... that fell back to this node's view */
  int64_t last_warn_ms;      /* rate limit of the "leader did not answer"
                                log line */
  struct ix_member members[PARLEY_CONSENSUS_MAX_MEMBERS];
  int64_t members_polled_ms;
};

/* server_dash.c ------------------------------------------------------------ */

/* This node's dashboard object (delta: a stream event) with served_by set
 * to source ("self" or "local") and notice (may be NULL).  NULL when out of
 * memory. */
json_t *parley__dash_local(struct parley_index *idx, int coarse, int delta,
                           const char *source, const char *notice);
/* Sets o's served_by (o borrowed). */
void parley__dash_set_served_by(struct parley_index *idx, json_t *o,
                                const char *source, const char *notice);
/* This node's resource row (kind "index").  NULL when out of memory. */
json_t *parley__dash_self_resource(struct parley_index *idx);
/* Sends o (borrowed) as one event to every stream of that window. */
void parley__dash_emit(struct parley_index *idx, int coarse, json_t *o);
/* 1 if a stream of that window is open. */
int parley__dash_has_streams(const struct parley_index *idx, int coarse);
/* Serialises o (borrowed) into b.  PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley__dash_dump(struct parley_buf *b, json_t *o);

/* server_dash_fwd.c -------------------------------------------------------- */

/* Creates idx->dashx (and its HTTP client when cluster).  PARLEY_ENOMEM,
 * PARLEY_EIO. */
PARLEY_NODISCARD int parley__dash_fwd_start(struct parley_index *idx,
                                            int cluster);
/* Answers the forwarded requests still open (503), frees the client
 * (parley__index_close_done follows when it had one) and idx->dashx. */
void parley__dash_fwd_stop(struct parley_index *idx);
/* 1 if this node evaluates the alert rules (a single node, or the ready
 * Raft leader). */
int parley__dash_evaluator(const struct parley_index *idx);
/* The evaluator role changed: adopts the leader's firing alerts (became
 * the evaluator) or forgets the cluster-wide ones (stopped being it). */
void parley__dash_fwd_role(struct parley_index *idx, int evaluator);
/* GET /v1/dashboard on a follower: forwards r to the leader and answers it
 * later (returns 1), or returns 0 and sets *notice (a static or
 * notice_buf text, NULL when there is nothing to say) when r is to be
 * answered from this node's own state. */
int parley__dash_forward(struct parley_index *idx, struct parley_http_req *r,
                         int coarse, const char **notice, char *notice_buf,
                         size_t cap);
/* Appends the other index nodes' fresh resource rows to arr (the leader
 * polls them); sets *err when out of memory. */
void parley__dash_fwd_resources(struct parley_index *idx, json_t *arr,
                                int *err);
/* Why a follower answers from its own state (no leader known, the leader
 * serves no HTTP), or NULL. */
const char *parley__dash_fwd_notice(struct parley_index *idx);
/* A stream of that window was opened on this node (it is in the stream
 * list): returns 1 if its first event comes from the leader (a fetch was
 * started or is running), 0 if the caller sends this node's own. */
int parley__dash_fwd_stream_opened(struct parley_index *idx, int coarse);
/* Once per tick: starts the leader fetches a follower needs (stream
 * feeds, the alerts poll).  Returns a mask of the windows (1 << coarse)
 * whose streams are fed from the leader this second; the caller feeds the
 * others from this node's state. */
unsigned parley__dash_fwd_tick(struct parley_index *idx);

#endif
