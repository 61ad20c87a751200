/*
 * server_int.h — private declarations shared by the index server's files:
 *
 *   server.c        lifecycle, the turn-end hook (sync, then replies),
 *                   leases and expiry, the registry observer (watch fan-out)
 *   server_peer.c   link callbacks and the peer requests
 *   server_http.c   /metrics and the read-only /v1 API
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
#include "http/server.h"
#include "index/lease.h"
#include "index/registry.h"
#include "index/regstore.h"
#include "index/server.h"
#include "net/link.h"
#include "wire/wire.h"

/* "[host]:port" of a numeric address, NUL included. */
#define IX_ADDR_CAP (PARLEY_MAX_ADDR + 8)

struct ix_conn;

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
  uint32_t npending;           /* replies queued in parley_index.replies */
  int current;                 /* the link parley_index.by_pk maps pk to */
};

/* A reply held until the turn-end hook.  durable: the reply vouches for a
 * registry change and becomes ERROR(ESTORE) if the sync fails; otherwise it
 * was only queued to keep replies in request order. */
struct ix_reply {
  struct ix_conn *conn; /* NULL once the link closed */
  uint32_t req;
  int code;             /* 0: OK(req, value); else ERROR(req, code, text) */
  const char *text;     /* static string (ERROR only) */
  uint64_t value;
  int durable;
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

  struct ix_reply *replies;  /* held until the turn-end hook */
  size_t nreplies, areplies;

  /* Set by the observer when a REGISTER changed a peer (PEER_UP); the
   * caller of apply fans it out once apply has returned. */
  int peer_up;
  uint8_t peer_up_pk[32];

  struct parley_index_stats st;
  uint64_t req_by_type[256];
  uint64_t http_by_route[8];
  uint64_t start_mono;
  int closing;
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
 * caused.  Returns the registry's verdict, or a storage error. */
PARLEY_NODISCARD int parley__index_submit(struct parley_index *idx,
                                          const struct parley_reg_cmd *c);
/* Holds a reply for the turn-end hook; text must be a static string.
 * PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley__index_hold_reply(struct parley_index *idx,
                                              struct ix_conn *c, uint32_t req,
                                              int code, const char *text,
                                              uint64_t value, int durable);
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

/* server_http.c --------------------------------------------------------- */

void parley__index_http_handler(void *ctx, struct parley_http_req *r);

#endif
