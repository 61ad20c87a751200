/*
 * node_int.h — the peer node's internal state, shared by node.c (life
 * cycle, turn-end commit), index_client.c (registration, subscriptions,
 * routes), delivery.c (publish, receive, acks, outbox) and api.c (the HTTP
 * API).  Nothing outside src/peer/ includes this file.
 */
#ifndef PARLEY_PEER_NODE_INT_H
#define PARLEY_PEER_NODE_INT_H

#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/map.h"
#include "core/util.h"
#include "crypto/identity.h"
#include "http/server.h"
#include "metrics/prom.h"
#include "net/link.h"
#include "peer/node.h"
#include "store/store.h"
#include "wire/wire.h"

#define CHANNEL_MAX (PARLEY_MAX_TOPIC + 1)
#define MSG_ID_HEX 33 /* 16 bytes in hex + NUL */

struct parley_node;
struct rpeer;

/* Context of one open (or opening) link to another peer. */
struct plink {
  struct parley_node *node;
  struct parley_link *link;
  struct rpeer *peer; /* NULL until the remote key is known */
  struct plink *prev, *next; /* in rpeer->links */
  int open;
};

/* Queued fire-and-forget message for a peer whose link is not open yet. */
struct pending_msg {
  struct pending_msg *next;
  char channel[CHANNEL_MAX];
  uint64_t seq;
};

/* Another peer as this node knows it. */
struct rpeer {
  uint8_t pk[32];
  char id[PARLEY_ID_TEXT_LEN + 1];
  char addr[PARLEY_MAX_ADDR + 1];
  char name[PARLEY_MAX_NAME + 1];
  struct plink *links;     /* open/opening links, preferred first */
  int dialling;            /* a dial is in progress */
  uint32_t dial_failures;
  uint64_t next_dial_ms;   /* monotonic: no dial before this */
  int lookup_pending;      /* a LOOKUP for its address is in flight */
  struct pending_msg *pending, **pending_tail;
  uint32_t npending;
  int64_t last_seen_ms;
};

/* Subscribers of a topic we publish to, kept fresh by WATCH. */
struct route {
  char topic[CHANNEL_MAX];
  int state;               /* ROUTE_NONE, ROUTE_WATCHING, ROUTE_READY */
  int have_list;           /* a subscriber list arrived at least once; kept
                              while the index is unreachable */
  struct parley_map subs;  /* pk -> struct rpeer* */
  struct waiting_pub *waiting; /* publishes waiting for the first list */
  uint64_t watch_sent_ms;
};

enum { ROUTE_NONE = 0, ROUTE_WATCHING = 1, ROUTE_READY = 2 };

/* An index request awaiting its answer. */
struct icreq;
typedef void (*icreq_cb)(struct parley_node *n, struct icreq *q, int rc,
                         const struct parley_frame *reply);
struct icreq {
  struct icreq *next;
  uint32_t req;
  uint8_t type;
  icreq_cb cb;
  void *ctx;               /* owned by the callback's logic */
  char topic[CHANNEL_MAX];
  uint8_t key[32];
  uint64_t sent_ms;
};

/* An API request (publish --ack / send) waiting for acknowledgements. */
struct ackwait {
  struct ackwait *prev, *next;
  struct parley_node *node;
  struct parley_http_req *req; /* NULL once the client went away */
  char channel[CHANNEL_MAX];
  uint64_t seq;
  char id[MSG_ID_HEX];
  int direct;
  int ack_mode;
  uint8_t (*subs)[32];     /* every subscriber at publish time */
  uint8_t *acked;          /* per subscriber: 1 once acked */
  uint32_t nsubs, nacked;
  uint64_t deadline_ms;    /* monotonic */
  uint64_t started_ms;     /* monotonic, for the ack latency */
  uint8_t *refused;        /* per subscriber: 1 if it answered with an error */
  uint16_t *status;        /* per subscriber: the ACK's status (-code) */
  uint32_t *lat_ms;        /* per subscriber: publish -> ack */
};

/* Delivery modes (API "mode"). */
enum { MODE_ASYNC = 0, MODE_ACK = 1, MODE_SYNC = 2 };

/* A publish that waits for the topic's first subscriber list. */
struct waiting_pub {
  struct waiting_pub *next;
  struct parley_http_req *req;
  char channel[CHANNEL_MAX];
  uint8_t *body;
  size_t body_len;
  uint32_t flags;
  int ack_mode;
  uint64_t timeout_ms;
  uint64_t deadline_ms;
};

/* A live SSE client of /v1/stream. */
struct streamer {
  struct streamer *prev, *next;
  struct parley_node *node;
  struct parley_http_req *req;
  char **topics;
  size_t ntopics;
};

/* An acknowledgement to send once the current transaction commits. */
struct ack_out {
  uint8_t to[32];
  uint8_t publisher[32];
  char channel[CHANNEL_MAX];
  uint64_t seq;
  uint16_t status;
};

struct node_metrics {
  uint64_t published, received, duplicates, direct_sent, direct_received;
  uint64_t acks_sent, acks_received, retries, expired, rejected;
  uint64_t bytes_published, bytes_received;
  uint64_t index_failovers, index_errors, async_dropped;
  struct parley_histogram delivery_latency; /* receiver: now - ts */
  struct parley_histogram ack_latency;      /* publisher: publish -> ack */
};

struct parley_node {
  uv_loop_t *loop;
  struct parley_log log;
  struct parley_node_config cfg;     /* strings below are our copies */
  char *data_dir, *name;
  char *index_addr[PARLEY_NODE_MAX_INDEX];
  char *listen_cfg, *advertise_cfg, *api_cfg;
  uint64_t started_ms;
  int closing;

  struct parley_identity id;
  char id_text[PARLEY_ID_TEXT_LEN + 1];
  struct parley_store *store;
  struct parley_net *net;
  struct parley_listener *listener;
  char addr[PARLEY_MAX_ADDR + 1];     /* advertised peer-link address */
  struct parley_http *http;
  char api_addr[PARLEY_MAX_ADDR + 1];
  char token[65];                     /* API token, hex */
  struct parley_link_cbs peer_cbs;

  /* index client */
  struct parley_link *ilink;
  size_t icur;                        /* index of the node we use */
  int iopen, registered;
  int redirect;                       /* index slot to dial next, or -1 */
  uint32_t next_req;
  uint64_t lease_ms;
  struct icreq *icreqs;
  uv_timer_t hb_timer, redial_timer;
  uint32_t ifailures;
  struct parley_link_cbs index_cbs;

  struct parley_map subs;   /* topic -> (void*)1: our subscriptions */
  struct parley_map routes; /* topic -> struct route* */
  struct parley_map peers;  /* pk -> struct rpeer* */

  struct ackwait *ackwaits;
  struct streamer *streamers;
  struct ack_out *acks;
  size_t nacks, cap_acks;
  uint64_t outbox_depth;

  uv_timer_t outbox_timer, maint_timer;
  struct node_metrics m;
  int handles_open;
};

/* node.c */
int parley__node_tx(struct parley_node *n);
struct rpeer *parley__node_peer(struct parley_node *n, const uint8_t pk[32],
                                int create);
void parley__msg_id(const uint8_t pk[32], const char *channel, uint64_t seq,
                    char out[MSG_ID_HEX]);
void parley__direct_channel(const uint8_t to[32], char out[CHANNEL_MAX]);

/* index_client.c */
void parley__ic_start(struct parley_node *n);
void parley__ic_stop(struct parley_node *n);
int parley__ic_request(struct parley_node *n, uint8_t type, const char *topic,
                       const uint8_t *key, icreq_cb cb, void *ctx);
struct route *parley__route_get(struct parley_node *n, const char *topic);
void parley__ic_lookup(struct parley_node *n, struct rpeer *p);

/* delivery.c */
void parley__peer_link_cbs(struct parley_link_cbs *cbs);
void parley__deliver_route_ready(struct parley_node *n, struct route *r);
int parley__publish(struct parley_node *n, struct parley_http_req *req,
                    const char *channel, const uint8_t *body, size_t len,
                    uint32_t flags, int ack_mode, uint64_t timeout_ms);
void parley__peer_try_dial(struct parley_node *n, struct rpeer *p);
void parley__outbox_timer_cb(uv_timer_t *t);
void parley__outbox_kick_peer(struct parley_node *n, struct rpeer *p);
void parley__flush_acks(struct parley_node *n);
void parley__ackwait_cancel_all(struct parley_node *n);
void parley__rpeer_free(struct rpeer *p);

/* api.c */
void parley__api_handler(void *ctx, struct parley_http_req *r);
void parley__api_stream_msg(struct parley_node *n, const struct parley_msg *m);
void parley__api_close_streams(struct parley_node *n);
void parley__api_keepalive(struct parley_node *n);
void parley__api_error(struct parley_http_req *r, unsigned status, int code,
                       const char *text);
void parley__api_publish_result(struct parley_node *n, struct ackwait *w,
                                int timed_out);
int parley__api_metrics(struct parley_node *n, struct parley_buf *out);

#endif
