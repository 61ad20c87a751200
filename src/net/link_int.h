/*
 * link_int.h — private declarations shared by the files of src/net/.
 *
 * link.c owns the lifecycle (net, listeners, dialling, closing, freeing) and
 * the public getters; link_io.c owns the byte path (preamble, handshake,
 * records, frames, the send queue and the flush).  Nothing here is part of
 * the contract in link.h.
 */
#ifndef PARLEY_NET_LINK_INT_H
#define PARLEY_NET_LINK_INT_H

#include "net/link.h"

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"
#include "crypto/handshake.h"
#include "crypto/session.h"

/* Plaintext bytes per outgoing record.  Small enough that a receiver never
 * buffers much of a record before it can decrypt it, large enough that a
 * batch of small frames costs one AEAD call. */
#define PARLEY_NET_RECORD_PT (64u * 1024u)
/* Bytes handed to libuv per read, at least. */
#define PARLEY_NET_READ_CHUNK (64u * 1024u)
/* Room in the send queue above max_sendq for frames the net itself writes
 * (HELLO, ERROR replies), so that back-pressure never blocks them. */
#define PARLEY_NET_CONTROL_SLACK (64u * 1024u)
/* An empty buffer holding more storage than this gives it back. */
#define PARLEY_NET_TRIM (256u * 1024u)
/* Smallest max_frame we accept in the configuration: a HELLO with full
 * name and address must fit. */
#define PARLEY_NET_MIN_FRAME 1024u
/* Largest max_sendq accepted: one flush is a single uv_buf_t, whose
 * length is an unsigned int. */
#define PARLEY_NET_MAX_SENDQ (1024u * 1024u * 1024u)
/* "[ipv6]:port" */
#define PARLEY_NET_PEERNAME 64

enum parley_link_state {
  PARLEY_LINK_PREAMBLE = 0, /* waiting for the remote's 5 preamble bytes */
  PARLEY_LINK_HANDSHAKE,    /* Noise XX in progress */
  PARLEY_LINK_HELLO_WAIT,   /* session keys ready, remote HELLO not seen */
  PARLEY_LINK_OPEN,         /* on_open called */
};

struct parley_link {
  struct parley_net *net;
  struct parley_link *prev, *next; /* net->links */
  uv_tcp_t tcp;
  uv_timer_t timer; /* handshake timeout, then the close-after-flush bound */
  uv_connect_t connect_req;
  struct parley_link_cbs cbs;
  void *data;

  int state;        /* enum parley_link_state */
  int accepted;     /* 1 if from a listener */
  int connected;    /* TCP established (accepted, or connect succeeded) */
  int opened;       /* on_open was called */
  int closing;      /* close started: no more input, output or callbacks */
  int failing;      /* ERROR queued: close once the queue has drained */
  int silent;       /* never call on_close (synchronous failure) */
  int has_session;  /* sess is keyed (state >= HELLO_WAIT) */
  int close_reason; /* for on_close */
  int fail_reason;  /* reason used when a failing link finally closes */
  int handles_open; /* tcp + timer not yet through their close callback */

  struct parley_handshake hs;
  struct parley_session sess;

  struct parley_buf in;  /* raw stream bytes not yet parsed */
  struct parley_buf pt;  /* decrypted bytes not yet decoded into frames */
  struct parley_buf out; /* encoded frames waiting for the next flush */
  size_t inflight;       /* plaintext bytes handed to uv_write, not done */

  uint8_t remote_pk[32];
  /* The final Noise handshake hash, kept as this link's channel binding
   * (parley_link_binding); zero until the handshake is done. */
  uint8_t binding[PARLEY_LINK_BINDING_LEN];
  uint16_t remote_version;
  uint32_t remote_caps;
  uint32_t remote_max_frame;
  uint8_t remote_role;
  char remote_name[PARLEY_MAX_NAME + 1];
  char remote_addr[PARLEY_MAX_ADDR + 1];
  char peername[PARLEY_NET_PEERNAME];
  char remote_ip[PARLEY_NET_PEERNAME]; /* peername without the port */
  int hs_charged; /* the guard's on_handshake was asked */
};

struct parley_listener {
  struct parley_net *net;
  struct parley_listener *next; /* net->listeners */
  uv_tcp_t tcp;
  struct parley_link_cbs cbs;
  void *data;
  uint16_t port;
};

struct parley_net {
  uv_loop_t *loop;                  /* borrowed */
  const struct parley_identity *id; /* borrowed */
  const struct parley_log *log;     /* borrowed, may be NULL */
  uint8_t role;
  char name[PARLEY_MAX_NAME + 1];
  char addr[PARLEY_MAX_ADDR + 1];
  uint32_t max_frame;
  size_t max_sendq;
  uint32_t max_links;
  uint32_t hs_timeout_ms;
  void (*on_turn_end)(void *ctx);
  void *ctx;
  struct parley_net_guard guard; /* all NULL without a guard */

  uv_prepare_t prepare; /* the flush hook; always active, unreferenced */
  struct parley_listener *listeners;
  struct parley_link *links;
  uint32_t n_links;  /* links not yet freed (any state) */
  size_t n_handles;  /* uv handles not yet through their close callback */
  int freeing;       /* parley_net_free was called */
  struct parley_net_stats stats;
};

/* link.c */
/* Starts closing l (idempotent): stops reading and the timer, closes both
 * handles; on_close and the free follow from the close callbacks. */
void parley__link_close(struct parley_link *l, int reason);
/* The link timer: closes a link still not open (PARLEY_ETIMEDOUT) or a
 * failing link whose ERROR did not drain (its fail reason). */
void parley__link_timeout(uv_timer_t *t);

/* Asks the guard's on_handshake (accepted links, once) and on_peer hooks.
 * Returns < 0 when the link must be refused: it was closed and counted. */
PARLEY_NODISCARD int parley__link_guard_handshake(struct parley_link *l);
PARLEY_NODISCARD int parley__link_guard_peer(struct parley_link *l);
/* Reports bad input from an accepted link to the guard (counted).
 * PARLEY_EDENIED if the remote is banned now. */
int parley__link_guard_strike(struct parley_link *l);

/* link_io.c */
/* Called once TCP is established: sends the preamble (and Noise message 1
 * when dialling) and starts reading. */
PARLEY_NODISCARD int parley__link_start(struct parley_link *l);
/* Queues a frame into l->out.  internal = 1 skips the max_sendq and remote
 * max_frame checks (HELLO, ERROR). */
PARLEY_NODISCARD int parley__link_queue(struct parley_link *l,
                                        const struct parley_frame *f,
                                        int internal);
/* Queues ERROR(req, code, text) and marks the link to close with reason once
 * it is flushed; closes at once if no session exists yet. */
void parley__link_fail(struct parley_link *l, uint32_t req, int code,
                       const char *text, int reason);
/* Seals the queued plaintext into records and issues one uv_write. */
PARLEY_NODISCARD int parley__link_flush(struct parley_link *l);
/* Gives back the storage of an empty buffer that grew large. */
void parley__buf_trim(struct parley_buf *b);

#endif
