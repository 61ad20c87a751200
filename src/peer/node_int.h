/*
 * node_int.h — the peer node's internal state, shared by node.c (life
 * cycle, turn-end commit), index_client.c (registration, subscriptions,
 * routes), delivery.c (publish, receive, acks, outbox), sync.c and
 * sync_relay.c (hash-chain checkpoints and anti-entropy), dm.c (end-to-end
 * direct messages), trust.c (pinned keys, changed-key detection),
 * api.c and api_trust.c (the HTTP API) and peer_metrics.c.  Nothing
 * outside src/peer/ includes this file.
 */
#ifndef PARLEY_PEER_NODE_INT_H
#define PARLEY_PEER_NODE_INT_H

#include <jansson.h>
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
  /* A message of a topic without history is not in the store: it waits
   * here as a copy (body follows the struct), else NULL. */
  struct parley_msg *copy;
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
  /* trust.c: set while this key claims the name or address pinned to
   * another key (a "changed key"); everything to and from it is refused. */
  int impostor;
  uint8_t impostor_of[32]; /* the pinned key it conflicts with */
  /* Token bucket of the MSG frames this peer may send us (milli-tokens),
   * and when it was last refilled (monotonic ms; 0 = full). */
  uint64_t rl_tokens, rl_refill_ms, rl_logged_ms;
  /* Per-peer figures for /metrics (top N). */
  uint64_t m_received;     /* messages from it, stored */
  uint64_t m_limited;      /* messages from it refused by the rate limit */
  uint64_t m_dropped;      /* fire-and-forget deliveries to it dropped */
  uint64_t m_backpressure; /* sends to it deferred: its link queue was full */
};

/* Subscribers of a topic we publish to, kept fresh by WATCH. */
struct route {
  char topic[CHANNEL_MAX];
  size_t topic_len;
  int state;               /* ROUTE_NONE, ROUTE_WATCHING, ROUTE_READY */
  int have_list;           /* a subscriber list arrived at least once; kept
                              while the index is unreachable */
  int denied;              /* the index refused the WATCH: a private topic
                              we are not a member of */
  struct parley_map subs;  /* pk -> struct rpeer* */
  struct waiting_pub *waiting; /* publishes waiting for the first list,
                                  oldest first (released in that order) */
  struct waiting_pub **waiting_tail; /* &last->next; NULL: empty list */
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
  parley_node_pub_cb cb;       /* or a library caller's callback */
  void *cb_ctx;
  char channel[CHANNEL_MAX];
  uint64_t seq;
  int64_t rowid;           /* the stored message, for the outbox acks */
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
  parley_node_pub_cb cb;       /* or a library caller's callback */
  void *cb_ctx;
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
  /* end-to-end direct messages (dm.c): sealed and opened here, refused
   * because they did not open (tampered, wrong key, wrong channel, seq or
   * ts), refused as replays, accepted out of order or after a gap */
  uint64_t e2e_sealed, e2e_opened, e2e_rejected, e2e_replays, e2e_late;
  uint64_t e2e_gaps;
  /* trust.c: keys seen claiming a pinned name or address, and messages
   * or sends refused because of it */
  uint64_t key_changed, key_changed_refused;
  /* ptopic.c: private-topic messages sealed and opened (read back), key
   * blobs accepted and refused, messages refused (non-member publisher,
   * plaintext on a private topic, tampered) */
  uint64_t ptopic_sealed, ptopic_opened, ptopic_keys, ptopic_keys_refused;
  uint64_t ptopic_rejected;
  /* abuse resistance: messages refused by the per-peer rate limit (acked
   * ones answered ELIMIT, fire-and-forget ones dropped); our acked
   * deliveries another peer answered ELIMIT (retried later); sends
   * deferred or dropped because a link's queue was full */
  uint64_t limited_ack, limited_async, slowed, backpressure;
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

  struct parley_identity id;  /* in locked memory when id_locked */
  int id_locked;
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
  /* Last entries found in subs, routes, ptopics and nohist: messages come
   * in runs on one topic (parley_map_get_memo). */
  struct parley_map_memo subs_memo, routes_memo, ptopics_memo, nohist_memo;
  struct parley_map peers;  /* pk -> struct rpeer* */

  struct ackwait *ackwaits;
  struct parley_map ackwait_by; /* seq || channel -> struct ackwait* */
  struct streamer *streamers;
  struct ack_out *acks;
  size_t nacks, cap_acks;
  uint64_t outbox_depth;

  uv_timer_t outbox_timer, maint_timer, report_timer;
  struct parley_map topic_stats; /* topic -> per-topic counters (report.c) */
  struct parley_map_memo topic_stats_memo;
  struct parley_map ptopics;     /* topic -> struct ptopic* (ptopic.c) */
  int64_t wall_off_ms;           /* parley_now_ms() - uv_now(): the hot
                                    path reads the clock once per turn */
  struct parley_map nohist;      /* topic -> struct nohist*: topics
                                    without history (embed.c) */
  void (*app_cb)(void *ctx, const struct parley_msg *m); /* embed.c */
  void *app_ctx;
  struct ptopic_op *ptopic_ops;  /* owner actions under way (ptopic.c) */
  struct parley_sync *sync;           /* sync.c; NULL when not running */
  struct trust_pin *pins;             /* trust.c: pinned keys */
  size_t npins, cap_pins;
  struct node_metrics m;
  int handles_open;
};

/* A key pinned with `parley trust` (trust.c). */
struct trust_pin {
  uint8_t pk[32];
  char name[PARLEY_MAX_NAME + 1]; /* "" for none */
  char addr[PARLEY_MAX_ADDR + 1]; /* last seen for this key, "" unknown */
  char safety[72];                /* PARLEY_SAFETY_TEXT_LEN + 1 */
  int64_t since_ms;
};

/* node.c */
/* The wall clock (Unix ms) and the monotonic clock (ms) as of the start of
 * this loop turn: one clock read per turn instead of one per message.  The
 * offset between the two is refreshed every few seconds. */
static inline int64_t parley__turn_wall_ms(const struct parley_node *n) {
  return (int64_t)uv_now(n->loop) + n->wall_off_ms;
}
static inline uint64_t parley__turn_mono_ms(const struct parley_node *n) {
  return uv_now(n->loop);
}
void parley__clock_sync(struct parley_node *n);
int parley__node_tx(struct parley_node *n);
/* The local half of (un)subscribing: stored (persists across restarts),
 * remembered, anti-entropy and private-topic state told; the caller then
 * asks the index.  Errors: PARLEY_ELIMIT (max_subs), PARLEY_ENOTFOUND
 * (unsubscribe of a topic not subscribed), store errors. */
int parley__subscribe_local(struct parley_node *n, const char *topic,
                            int subscribe);
/* A topic without history: its messages are not stored on either side,
 * only handed to links and to the application; seq is counted here. */
struct nohist {
  uint64_t seq;
};
/* Sets whether topic keeps history (stored in the store, kept across
 * restarts).  PARLEY_EINVAL for a bad topic. */
int parley__topic_history(struct parley_node *n, const char *topic,
                          int keep);
/* The record of a topic without history, or NULL (it keeps history). */
struct nohist *parley__nohist(struct parley_node *n,
                              const char *topic, size_t len);
int parley__nohist_load(struct parley_node *n);
void parley__nohist_free(struct parley_node *n);

/* A message this node just stored or received: to the API's live streams
 * and the embedding application's callback (embed.c). */
void parley__deliver_app(struct parley_node *n, const struct parley_msg *m);
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
/* Sends one of the private-topic requests (TOPIC_CTL, KEY_PUT, KEY_GET,
 * MEMBERS_GET): payload is its acl_wire encoding, whose first four bytes
 * (the u32 request id every one of them starts with) are set here.  topic
 * is kept in the icreq for the callback. */
int parley__ic_request_opaque(struct parley_node *n, uint8_t type,
                              const char *topic, uint8_t *payload,
                              size_t len, icreq_cb cb, void *ctx);
void parley__ic_lookup(struct parley_node *n, struct rpeer *p);

/* delivery.c */
void parley__peer_link_cbs(struct parley_link_cbs *cbs);
void parley__deliver_route_ready(struct parley_node *n, struct route *r);
/* As parley__publish for a library caller: cb ends it (node.h), called
 * before parley__publish_cb returns only when it returns 0. */
int parley__publish_cb(struct parley_node *n, const char *channel,
                       const uint8_t *body, size_t len, uint32_t flags,
                       int ack_mode, uint64_t timeout_ms,
                       parley_node_pub_cb cb, void *ctx);
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

/* dm.c: end-to-end direct messages (docs/internals/E2E.md, "Integration").
 * The MSG body of a direct message is a crypto/e2e.h envelope (with the
 * sender copy) of: one content byte (PARLEY_MSG_BINARY or 0), then the
 * user's body.  The MSG and the sender's stored row carry
 * DIRECT | BINARY; the receiver stores the opened plaintext. */
/* Largest envelope for a body of len bytes. */
size_t parley__dm_envelope_len(size_t len);
/* Seals body (flags: PARLEY_MSG_BINARY or not) to the recipient of the
 * direct channel for seq and ts.  OUT: *env (caller frees with
 * parley_free), *env_len.  PARLEY_EINVAL (bad channel), PARLEY_ETOOBIG,
 * PARLEY_ENOMEM. */
int parley__dm_seal(struct parley_node *n, const char *channel, uint64_t seq,
                    uint64_t ts_ms, const uint8_t *body, size_t len,
                    uint32_t flags, uint8_t **env, size_t *env_len);
/* Opens the direct MSG f from p on channel (ours) and checks it against
 * the replay window, without recording anything.  OUT on success: *buf
 * (caller frees with parley__dm_free), *body / *body_len pointing into it,
 * *flags (PARLEY_MSG_DIRECT, plus BINARY for a binary body), *order
 * (enum parley_replay_order).  Errors: PARLEY_ECRYPTO (did not open, or
 * its signed seq/ts differ from the frame's), PARLEY_EPROTO (bad content
 * byte), PARLEY_EINVAL (text that is not UTF-8), PARLEY_ETOOBIG,
 * PARLEY_EEXIST (seen before: a replay or a retransmission),
 * PARLEY_ENOMEM, or a store error. */
int parley__dm_open(struct parley_node *n, struct rpeer *p,
                    const struct parley_frame *f, const char *channel,
                    uint8_t **buf, size_t *buf_len, const uint8_t **body,
                    size_t *body_len, uint32_t *flags, int *order);
/* Records seq in the replay window of (publisher, channel), in the
 * current transaction.  Call once the message is stored. */
int parley__dm_accept(struct parley_node *n, const uint8_t publisher[32],
                      const char *channel, uint64_t seq);
/* Wipes and frees a buffer from parley__dm_open / parley__dm_read_sent. */
void parley__dm_free(uint8_t *buf, size_t len);
/* If m is a direct message this node sealed, opens its sender copy into
 * *out (a copy of m with body, body_len and flags of the plaintext; body
 * points into *buf, caller frees with parley__dm_free) and returns 1;
 * returns 0 when m is not a sealed message of ours (shown as it is), or a
 * negative error when it is one that does not open. */
int parley__dm_read_sent(struct parley_node *n, const struct parley_msg *m,
                         struct parley_msg *out, uint8_t **buf,
                         size_t *buf_len);

/* ptopic.c: private topics (crypto/groupkey.h; docs/PROTOCOL.md section
 * 16).  A struct ptopic is what this peer knows of one topic's access
 * list and the topic keys it holds (in locked memory). */
struct ptopic;
struct ptopic_op;
int parley__ptopic_load(struct parley_node *n);
void parley__ptopic_free(struct parley_node *n);
/* Asks the index about topic (MEMBERS_GET, then KEY_GET): on subscribe,
 * before the first WATCH of a route and after every (re)registration. */
void parley__ptopic_probe(struct parley_node *n, const char *topic);
void parley__ptopic_registered(struct parley_node *n);
/* The index's KEYS, MEMBERS (answers, by req) and ACL_EVENT frames. */
void parley__ptopic_event(struct parley_node *n, const struct parley_frame *f);
/* Publishing: 0 (topic not private: publish as is), 1 with *out / *out_len
 * (the sealed body, free with parley_free) and *wire_flags, or an error:
 * PARLEY_EDENIED (not a member), PARLEY_EUNAVAIL (no key for the current
 * epoch yet). */
int parley__ptopic_seal(struct parley_node *n, const char *topic,
                        uint64_t seq, uint64_t ts_ms, const uint8_t *body,
                        size_t len, uint32_t flags, uint8_t **out,
                        size_t *out_len, uint32_t *wire_flags);
/* Receiving: PARLEY_OK to store the MSG as it is, else why it is refused
 * (EDENIED: publisher not a member or plaintext on a private topic;
 * ECRYPTO / EPROTO: does not open under the epoch's key; EUNAVAIL: the
 * topic's access list is not known yet, so it is asked for). */
int parley__ptopic_check(struct parley_node *n, const uint8_t publisher[32],
                         const char *topic, uint64_t seq, uint64_t ts_ms,
                         uint32_t flags, const uint8_t *body, size_t len);
/* Reading: like parley__dm_read_sent for PRIVATE messages: 1 with *out
 * (plaintext; free *buf with parley__dm_free), 0 if m is not private,
 * PARLEY_ENOTFOUND if the key of its epoch is not held, another error if
 * it does not open. */
int parley__ptopic_read(struct parley_node *n, const struct parley_msg *m,
                        struct parley_msg *out, uint8_t **buf,
                        size_t *buf_len);
/* 0 if topic is private and pk is not one of its members (anti-entropy
 * serves its history to members only), else 1. */
int parley__ptopic_may_serve(struct parley_node *n, const char *topic,
                             const uint8_t pk[32]);
/* HTTP API: POST /v1/private/create, /grant, /revoke, GET /v1/private. */
void parley__api_private(struct parley_node *n, struct parley_http_req *r);
/* Fails the publishes waiting on a route the index refused (delivery.c). */
void parley__deliver_route_denied(struct parley_node *n, struct route *r);

/* trust.c: keys pinned with `parley trust`, and changed-key detection. */
int parley__trust_load(struct parley_node *n);
void parley__trust_free(struct parley_node *n);
/* The pin of pk, or NULL. */
const struct trust_pin *parley__trust_find(const struct parley_node *n,
                                           const uint8_t pk[32]);
/* The pin that a key claiming name and addr (either may be NULL or "")
 * conflicts with: another key pinned under the same name or last seen at
 * the same address.  NULL if none (or if pk itself is pinned). */
const struct trust_pin *parley__trust_conflict(const struct parley_node *n,
                                               const uint8_t pk[32],
                                               const char *name,
                                               const char *addr);
/* Pins pk under name ("" for none) with its current address.  Errors:
 * PARLEY_EEXIST (name pinned to another key), PARLEY_ELIMIT (too many
 * pins), PARLEY_EINVAL, store errors. */
int parley__trust_pin(struct parley_node *n, const uint8_t pk[32],
                      const char *name, const char *addr);
/* PARLEY_ENOTFOUND if pk is not pinned. */
int parley__trust_unpin(struct parley_node *n, const uint8_t pk[32]);
/* Re-checks p, which now claims name and addr (NULL: the ones p has),
 * against the pins: sets or clears p->impostor and, when p turns into
 * one, logs the changed key at ERROR and counts it.  For p's own pin,
 * records a new address. */
void parley__trust_eval(struct parley_node *n, struct rpeer *p,
                        const char *name, const char *addr);
/* Re-checks every known peer (after a pin changed). */
void parley__trust_eval_all(struct parley_node *n);
/* Writes the refusal text for an impostor into out ("key changed for
 * trusted peer NAME: pinned X, offered Y - refusing"). */
void parley__trust_refusal(const struct parley_node *n, const struct rpeer *p,
                           char *out, size_t cap);

/* report.c */
void parley__report_start(struct parley_node *n);
void parley__report_free(struct parley_node *n);
/* Counts one message on a topic: in = received (latency_s >= 0 observed),
 * else published.  Direct channels are ignored. */
void parley__report_count(struct parley_node *n, const char *channel, int in,
                          size_t bytes, double latency_s);

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
/* Shared by api.c and api_trust.c. */
void parley__api_respond_json(struct parley_http_req *r, unsigned status,
                              json_t *obj);
json_t *parley__api_parse_body(struct parley_http_req *r);
int parley__api_append_line(struct parley_buf *b, json_t *o);
void parley__api_respond_ndjson(struct parley_http_req *r,
                                struct parley_buf *b);
unsigned parley__api_status_for(int rc);

/* api_trust.c: GET /v1/verify, POST /v1/trust and /v1/untrust, GET
 * /v1/trusted (docs/API.md). */
void parley__api_verify(struct parley_node *n, struct parley_http_req *r);
void parley__api_trust(struct parley_node *n, struct parley_http_req *r);
void parley__api_untrust(struct parley_node *n, struct parley_http_req *r);
void parley__api_trusted(struct parley_node *n, struct parley_http_req *r);

/* index_client.c: records what the index says about a peer (name,
 * address); NULL for our own key or out of memory. */
struct rpeer *parley__ic_learn_peer(struct parley_node *n,
                                    const struct parley_wire_peer *wp);

#endif
