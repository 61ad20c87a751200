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
/* Bytes handed to libuv per read, at least.  Also the size of the net's
 * shared read buffer. */
#define PARLEY_NET_READ_CHUNK (256u * 1024u)
/* Input one link may hand up per loop turn: past it the link stops
 * reading until the next turn, so that one busy link cannot hold the loop
 * (libuv reads a readable socket up to 32 times per turn) while timers,
 * heartbeats and other links wait. */
#define PARLEY_NET_TURN_INPUT (512u * 1024u)
/* Room in the send queue above max_sendq for frames the net itself writes
 * (HELLO, ERROR replies), so that back-pressure never blocks them. */
#define PARLEY_NET_CONTROL_SLACK (64u * 1024u)
/* An empty buffer holding more storage than this gives it back. */
#define PARLEY_NET_TRIM (256u * 1024u)
/* Send-queue storage kept for reuse after a flush (link_io.c, struct
 * net_scratch): at most this many buffers per thread, each at most
 * PARLEY_NET_TRIM bytes. */
#define PARLEY_NET_SPARES 8u
/* Write buffers kept after their write completed, for the next flushes:
 * at most this many and this many bytes per thread (a publisher writing
 * to many busy links has about one in flight per link). */
#define PARLEY_NET_WSPARES 64u
#define PARLEY_NET_WSPARE_BYTES (4u * 1024u * 1024u)
/* Smallest max_frame we accept in the configuration: a HELLO with full
 * name and address must fit. */
#define PARLEY_NET_MIN_FRAME 1024u
/* Largest max_sendq accepted: one flush is a single uv_buf_t, whose
 * length is an unsigned int. */
#define PARLEY_NET_MAX_SENDQ (1024u * 1024u * 1024u)
/* "[ipv6]:port" (46 + 2 + 6 bytes, NUL included) */
#define PARLEY_NET_PEERNAME 56
/* A numeric IPv4 or IPv6 address (INET6_ADDRSTRLEN) */
#define PARLEY_NET_IPLEN 46

enum parley_link_state {
  PARLEY_LINK_PREAMBLE = 0, /* waiting for the remote's 5 preamble bytes */
  PARLEY_LINK_HANDSHAKE,    /* Noise XX in progress */
  PARLEY_LINK_HELLO_WAIT,   /* session keys ready, remote HELLO not seen */
  PARLEY_LINK_OPEN,         /* on_open called */
};

/* What a link needs only until its handshake is done: freed once the
 * session keys exist (most of a link's life is spent without it), or when
 * the link is freed. */
struct parley_link_hs {
  struct parley_handshake hs;
  uv_connect_t connect_req; /* dialled links; done before the handshake is */
};

/*
 * Memory.  An open, idle link holds only this struct (about 800 bytes) and
 * the remote's HELLO strings:
 * the handshake state is a separate allocation freed when the handshake
 * ends; there is no per-link timer (the net keeps one, see
 * parley_net.dl_head); and the three byte buffers hold storage only while
 * they hold bytes.  Reads land in the net's shared buffer and only the
 * tail of an incomplete record is copied into `in`; records are decrypted
 * into the net's shared plaintext buffer and only an incomplete frame is
 * copied into `pt`; `out` takes its storage from the net's spares when a
 * frame is queued and gives it back after the flush.  "The net's" shared
 * buffers are in fact the thread's (link_io.c, struct net_scratch): one
 * set serves every net on the thread's loop, so that a process with
 * thousands of nets (bench/loadgen.c) does not hold thousands of sets.
 */
struct parley_link {
  struct parley_net *net;
  struct parley_link *prev, *next;   /* net->links */
  struct parley_link *fl_prev, *fl_next; /* net->fl_head: output queued */

  struct parley_link *dl_prev, *dl_next; /* net->dl_head: has a deadline */
  uint64_t deadline; /* uv_now() time at which the link timer fires */
  uv_tcp_t tcp;
  struct parley_link_hs *hs; /* until the handshake ends; NULL after */
  struct parley_link_cbs cbs;
  void *data;

  uint8_t state;       /* enum parley_link_state */
  uint8_t accepted;    /* 1 if from a listener */
  uint8_t connected;   /* TCP established (accepted, or connect succeeded) */
  uint8_t opened;      /* on_open was called */
  uint8_t closing;     /* close started: no more input, output or callbacks */
  uint8_t failing;     /* ERROR queued: close once the queue has drained */
  uint8_t silent;      /* never call on_close (synchronous failure) */
  uint8_t has_session; /* sess is keyed (state >= HELLO_WAIT) */
  uint8_t on_fl;       /* on the flush list */
  uint8_t on_dl;       /* on the deadline list */
  uint8_t read_paused; /* on net->paused: reading resumes next turn */
  uint8_t turn_no;     /* low byte of net->turn when turn_in was reset (a
                          wrap costs at most one early pause) */
  uint8_t hs_charged;  /* the guard's on_handshake was asked */
  uint8_t remote_role;
  uint32_t turn_in;    /* bytes read in turn turn_no */
  int close_reason;    /* for on_close */
  int fail_reason;     /* reason used when a failing link finally closes */

  struct parley_session sess;

  struct parley_buf in;  /* stream bytes of an incomplete record */
  struct parley_buf pt;  /* decrypted bytes of an incomplete frame */
  struct parley_buf out; /* encoded frames waiting for the next flush */
  size_t inflight;       /* plaintext bytes handed to uv_write, not done */

  uint8_t remote_pk[32];
  /* The final Noise handshake hash, kept as this link's channel binding
   * (parley_link_binding); zero until the handshake is done. */
  uint8_t binding[PARLEY_LINK_BINDING_LEN];
  uint16_t remote_version;
  uint32_t remote_caps;
  uint32_t remote_max_frame;
  /* The remote HELLO's name and address: "name\0addr\0" (owned; NULL
   * until open). */
  char *remote_strs;
  uint8_t remote_addr_off; /* the address starts at remote_strs + this */
  char peername[PARLEY_NET_PEERNAME];
  char remote_ip[PARLEY_NET_IPLEN]; /* peername without the port */
  /* The last MSG each way, for MSG_NEXT (link_io.c); allocated by the
   * first MSG, so links that carry none (an index's) do not pay for it. */
  struct parley_link_last *last;
};

/* A MSG's position: what a MSG_NEXT after it leaves out. */
struct parley_link_pos {
  uint64_t seq, ts_ms;
  uint8_t ch_len; /* 0: no MSG yet */
  char ch[PARLEY_MAX_TOPIC];
};

struct parley_link_last {
  struct parley_link_pos tx, rx;
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
  char bind_host[PARLEY_NET_IPLEN]; /* source of dialled links; "" = any */
  uint32_t max_frame;
  size_t max_sendq;
  uint32_t max_links;
  uint32_t hs_timeout_ms;
  void (*on_turn_end)(void *ctx);
  void *ctx;
  struct parley_net_guard guard; /* all NULL without a guard */

  /* The flush hook.  Unreferenced.  With on_turn_end it runs every turn;
   * without, it is started only while fl_head is non-empty, so that an
   * idle net costs nothing per loop turn (a process with thousands of
   * nets, like bench/loadgen.c, would otherwise pay for all of them). */
  uv_prepare_t prepare;
  struct parley_link *fl_head; /* links with queued output */
  struct parley_link **paused; /* links that spent their turn's input */
  size_t npaused, cap_paused;
  uint64_t turn;               /* runs of the prepare hook */
  /* The link timer: one for the net.  Every deadline is now +
   * hs_timeout_ms when set, so appending keeps the list sorted and the
   * timer only ever waits for the head.  Active only while the list is
   * non-empty. */
  uv_timer_t timer;
  struct parley_link *dl_head, *dl_tail;
  struct parley_listener *listeners;
  struct parley_link *links;
  uint32_t n_links;  /* links not yet freed (any state) */
  size_t n_handles;  /* uv handles not yet through their close callback */
  int freeing;       /* parley_net_free was called */
  struct parley_net_stats stats;
};

/* link.c */
/* Starts closing l (idempotent): stops reading, drops its deadline and
 * closes the handle; on_close and the free follow from the close
 * callback. */
void parley__link_close(struct parley_link *l, int reason);
/* Gives l a deadline hs_timeout_ms from now (replacing any earlier one):
 * a link still not open then closes with PARLEY_ETIMEDOUT, a failing
 * link with its fail reason. */
void parley__link_deadline_set(struct parley_link *l);
void parley__link_deadline_clear(struct parley_link *l);
/* Puts l on the net's flush list (its out buffer holds frames). */
void parley__link_flush_mark(struct parley_link *l);
/* Stops reading l until the next turn's prepare hook (its input budget
 * for this turn is spent); takes l off that list (close). */
void parley__link_read_pause(struct parley_link *l);
void parley__link_read_unpause(struct parley_link *l);

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
/* Seals the queued plaintext into records and issues one uv_write; gives
 * the out buffer's storage back to the net. */
PARLEY_NODISCARD int parley__link_flush(struct parley_link *l);
/* Starts reading l again (after parley__link_read_pause). */
void parley__link_read_resume(struct parley_link *l);
/* Counts a net that uses the calling thread's shared buffers (from
 * parley_net_new until the net's memory is freed); the last one out frees
 * them. */
void parley__net_scratch_ref(void);
void parley__net_scratch_unref(void);

#endif
