/*
 * node_int.h — the peer node's internal state, shared by node.c (life
 * cycle, turn-end commit), index_client.c (registration, subscriptions,
 * routes), delivery.c (publish, receive, acks, outbox), sync.c and
 * sync_relay.c (hash-chain checkpoints and anti-entropy) and api.c (the
 * HTTP API).  Nothing outside src/peer/ includes this file.
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
  /* Token bucket for the sync requests this link may make of us
   * (sync_relay.c): milli-tokens, and when it was last refilled. */
  uint32_t sync_tokens;
  uint64_t sync_refill_ms;
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
  /* anti-entropy (sync.c): messages stored from verified relayed batches,
   * relayed batches and checkpoints refused (bad chain or signature),
   * messages served to others, checkpoints this node signed */
  uint64_t sync_messages, sync_rejected, sync_served, checkpoints_signed;
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
  struct parley_sync *sync;           /* sync.c; NULL when not running */
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
/* The preferred open link to a peer, or NULL. */
struct parley_link *parley__peer_link(const struct rpeer *p);

/* sync.c: the publisher's checkpoints and the requester's side of
 * anti-entropy (docs/PROTOCOL.md section 14). */
struct parley_sync;
/* Starts checkpointing and periodic anti-entropy; signs what a previous
 * run left unsigned.  Failure only disables sync (logged). */
void parley__sync_start(struct parley_node *n);
/* Signs what is unsigned, ends sessions, closes the timers (the state is
 * freed from their close callbacks).  Safe when sync never started. */
void parley__sync_stop(struct parley_node *n);
/* The node (re)registered with the index: every subscribed topic is due
 * for anti-entropy now. */
void parley__sync_registered(struct parley_node *n);
/* An API subscribe (subscribe != 0) makes the topic due for anti-entropy
 * now; an unsubscribe does nothing. */
void parley__sync_subscribed(struct parley_node *n, const char *topic,
                             int subscribe);
/* A link to p opened: sessions waiting for it ask their question, and a
 * publisher hands p its latest checkpoints of the topics p subscribes to. */
void parley__sync_link_open(struct parley_node *n, struct rpeer *p);
/* This node stored its own message seq on channel with chain value
 * chain (in the current transaction); signs a checkpoint when due. */
void parley__sync_published(struct parley_node *n, const char *channel,
                            uint64_t seq, const uint8_t chain[32]);
/* CHAIN_SIG and SYNC_* frames from a peer link. */
void parley__sync_frame(struct parley_node *n, struct plink *pl,
                        const struct parley_frame *f);
/* An ERROR frame from a peer link; returns 1 if it answered one of our
 * sync requests (then handled), else 0. */
int parley__sync_error(struct parley_node *n, struct plink *pl,
                       const struct parley_frame *f);
/* The requester's half of SYNC_SUMMARY / SYNC_BATCH (sync.c). */
void parley__sync_on_summary(struct parley_node *n, struct plink *pl,
                             const struct parley_frame *f);
void parley__sync_on_batch(struct parley_node *n, struct plink *pl,
                           const struct parley_frame *f);

/* sync_relay.c: answering SYNC_QUERY and SYNC_FETCH from our store. */
void parley__sync_serve_query(struct parley_node *n, struct plink *pl,
                              const struct parley_frame *f);
void parley__sync_serve_fetch(struct parley_node *n, struct plink *pl,
                              const struct parley_frame *f);
/* Sends one opaque frame (CHAIN_SIG, SYNC_*) of payload len bytes. */
int parley__sync_send(struct parley_link *l, uint8_t type,
                      const uint8_t *payload, size_t len);

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
