/*
 * link.h — secure, framed links over libuv TCP.
 *
 * A parley_net owns the listeners and links of one daemon on one uv loop.
 * Every link, accepted or dialled, runs:
 *
 *   1. both sides send the preamble "PRLY" 0x01;
 *   2. the Noise XX handshake of crypto/handshake.h (initiator = dialler),
 *      each message framed by wire.h's u16 length; a half-finished
 *      handshake is dropped after handshake_timeout_ms;
 *   3. AEAD records (wire.h record framing, crypto/session.h) whose
 *      plaintexts concatenate into a stream of frames;
 *   4. both sides send HELLO first; a peer speaking another version gets an
 *      ERROR frame (EVERSION) and is closed.  on_open fires once the remote
 *      HELLO arrived.
 *
 * Sending is batched: parley_link_send encodes the frame into the link's
 * plaintext queue; once per loop turn (uv_prepare, i.e. right before the
 * loop blocks) every link with queued frames seals them into as few records
 * as possible and issues one uv_write.  on_turn_end, if set, runs just
 * before that flush (the peer commits its store there, so acks go out only
 * after what they acknowledge is durable).  The work per turn is
 * proportional to the links that queued something, not to all links.
 *
 * Memory: an idle open link holds about 0.9 KiB of its own plus libuv's
 * and the kernel's socket state; read, decrypt and send buffers are held
 * only while they hold bytes (link_int.h).
 *
 * Garbage bytes, a bad preamble, a failed handshake, a record that fails
 * authentication, an oversize or malformed frame: the link is logged and
 * closed, and nothing else is disturbed.  Unknown frame types are answered
 * with ERROR (EUNKNOWNTYPE) and skipped.
 *
 * Lifetime: links are allocated by the net and freed after on_close
 * returns.  on_close is called exactly once for every link for which
 * on_open was called, and also for dialled links that fail before opening
 * (so a dialler always learns the outcome).  Accepted links that never
 * open are closed silently (counted in stats).
 */
#ifndef PARLEY_NET_LINK_H
#define PARLEY_NET_LINK_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "crypto/identity.h"
#include "wire/wire.h"

struct parley_net;
struct parley_link;
struct parley_listener;

struct parley_link_cbs {
  /* The link is authenticated and the remote HELLO has arrived. */
  void (*on_open)(struct parley_link *l);
  /* One decoded frame (not HELLO).  Pointers inside f are valid only during
   * the call. */
  void (*on_frame)(struct parley_link *l, const struct parley_frame *f);
  /* The link is closing; reason is a parley_err (PARLEY_ECLOSED for an
   * orderly close by the remote).  The link is freed after return. */
  void (*on_close)(struct parley_link *l, int reason);
};

/* Abuse resistance for accepted links (struct parley_net_config.guard).
 * The net asks the guard before it spends work on a remote and tells it
 * about bad input; the policy (token buckets, strikes, bans) is the
 * guard's.  Every hook may be NULL.  ip is the remote's numeric address
 * without the port ("127.0.0.1", "::1"), pk its authenticated Ed25519 key
 * (32 bytes) or NULL before the handshake finished, now_ms the loop's
 * clock (uv_now).  A hook that returns PARLEY_ELIMIT (too many, too fast)
 * or PARLEY_EDENIED (banned; any other negative value counts as this)
 * refuses: the link is closed at once, without on_open or on_close, and
 * the refusal is counted in struct parley_net_stats.  Dialled links are
 * never asked about.  The hooks have the shapes of parley_rl_guard_* in
 * http/ratelimit.h, which implement them; the net itself does not depend
 * on that module. */
struct parley_net_guard {
  void *ctx;
  /* A TCP connection was accepted; nothing was read from it yet. */
  int (*on_connect)(void *ctx, const char *ip, uint64_t now_ms);
  /* The link's first handshake message arrived: answering it costs the
   * Diffie-Hellman work of the handshake. */
  int (*on_handshake)(void *ctx, const char *ip, uint64_t now_ms);
  /* The handshake finished and pk is known (refuse a banned key). */
  int (*on_peer)(void *ctx, const char *ip, const uint8_t *pk,
                 uint64_t now_ms);
  /* The link sent bad input (a bad preamble, handshake, record or frame,
   * or what an upper layer reports through parley_link_strike).  Return
   * PARLEY_EDENIED when the remote is banned now.  Links the net itself
   * reports are closed whatever the answer. */
  int (*on_strike)(void *ctx, const char *ip, const uint8_t *pk,
                   uint64_t now_ms);
};

struct parley_net_config {
  uv_loop_t *loop;                   /* borrowed */
  const struct parley_identity *id;  /* borrowed */
  const struct parley_log *log;      /* borrowed, may be NULL */
  uint8_t role;                      /* PARLEY_ROLE_PEER / _INDEX */
  const char *name;                  /* HELLO name (copied) */
  uint32_t max_frame;                /* 0 = PARLEY_DEFAULT_MAX_FRAME */
  size_t max_sendq;                  /* 0 = PARLEY_DEFAULT_MAX_SENDQ */
  uint32_t max_links;                /* 0 = PARLEY_DEFAULT_MAX_LINKS */
  uint32_t handshake_timeout_ms;     /* 0 = PARLEY_HANDSHAKE_TIMEOUT_MS */
  void (*on_turn_end)(void *ctx);    /* may be NULL */
  void *ctx;                         /* for on_turn_end */
  const struct parley_net_guard *guard; /* copied; NULL = no guard */
  /* Numeric IP address dialled links are bound to before they connect
   * (copied; NULL or "" = the kernel picks).  A process that opens tens
   * of thousands of links to one address spreads them over several
   * source addresses (127.0.0.2, 127.0.0.3, ...) because each source
   * address has only one ephemeral port range. */
  const char *bind_host;
};

struct parley_net_stats {
  uint64_t bytes_in, bytes_out;       /* TCP bytes */
  uint64_t records_in, records_out;
  uint64_t frames_in, frames_out;
  uint64_t handshakes_ok, handshakes_failed;
  uint64_t links_accepted, links_dialled, links_refused;
  uint64_t protocol_errors;           /* links closed for bad input */
  uint64_t links_open;                /* gauge */
  uint64_t read_pauses;  /* a link stopped reading for the rest of a loop
                            turn: its PARLEY_NET_TURN_INPUT was spent */
  /* What the guard (struct parley_net_guard) refused or was told; all
   * about accepted links, all 0 without a guard. */
  uint64_t conns_limited;      /* connections refused by on_connect:
                                  PARLEY_ELIMIT (rate) */
  uint64_t conns_banned;       /* connections refused by on_connect:
                                  banned (any other refusal) */
  uint64_t handshakes_limited; /* handshakes refused by on_handshake */
  uint64_t peers_banned;       /* links refused by on_peer */
  uint64_t strikes;            /* bad-input reports (on_strike calls) */
  uint64_t strike_bans;        /* reports after which the remote was
                                  banned (on_strike said PARLEY_EDENIED) */
};

PARLEY_NODISCARD int parley_net_new(const struct parley_net_config *cfg,
                                    struct parley_net **out)
    PARLEY_NONNULL(1, 2);
/* Closes every listener and link (on_close fires with PARLEY_ECANCELED) and
 * frees the net once libuv has closed the handles; run the loop afterwards
 * so the close callbacks complete.  NULL is a no-op. */
void parley_net_free(struct parley_net *net);
const struct parley_net_stats *parley_net_stats(const struct parley_net *net)
    PARLEY_NONNULL(1);
/* Advertised address sent in HELLO (copied); set after listening. */
void parley_net_set_addr(struct parley_net *net, const char *addr)
    PARLEY_NONNULL(1, 2);

/* Listens on host:port (port 0 = ephemeral).  cbs and data are given to
 * every accepted link.  OUT: *out (owned by the net). */
PARLEY_NODISCARD int parley_net_listen(struct parley_net *net,
                                       const char *host, uint16_t port,
                                       const struct parley_link_cbs *cbs,
                                       void *data,
                                       struct parley_listener **out)
    PARLEY_NONNULL(1, 2, 4);
/* The port actually bound. */
uint16_t parley_listener_port(const struct parley_listener *ls)
    PARLEY_NONNULL(1);

/* Dials host:port (numeric IPv4/IPv6 or "localhost").  expected_pk (may be
 * NULL) makes the handshake refuse any other remote key.  OUT: *out, valid
 * until on_close.  On synchronous failure no callback is called. */
PARLEY_NODISCARD int parley_net_connect(struct parley_net *net,
                                        const char *host, uint16_t port,
                                        const uint8_t *expected_pk,
                                        const struct parley_link_cbs *cbs,
                                        void *data, struct parley_link **out)
    PARLEY_NONNULL(1, 2, 5, 7);

/* Queues a frame.  PARLEY_ECLOSED if the link is closing or not open yet,
 * PARLEY_ELIMIT if its send queue is over max_sendq (back-pressure: the
 * frame is not queued), PARLEY_ETOOBIG if larger than the remote's
 * max_frame. */
PARLEY_NODISCARD int parley_link_send(struct parley_link *l,
                                      const struct parley_frame *f)
    PARLEY_NONNULL(1, 2);
/* Sends ERROR(req, code, text) and closes after it is flushed. */
void parley_link_fail(struct parley_link *l, uint32_t req, int code,
                      const char *text) PARLEY_NONNULL(1, 4);
/* Starts closing (idempotent); on_close follows from the loop. */
void parley_link_close(struct parley_link *l, int reason) PARLEY_NONNULL(1);

int parley_link_is_open(const struct parley_link *l) PARLEY_NONNULL(1);
/* Remote Ed25519 key (valid once open). */
const uint8_t *parley_link_remote_pk(const struct parley_link *l)
    PARLEY_NONNULL(1);
/* Channel binding: the final Noise handshake hash h of this link (64
 * bytes).  Both ends of one link see the same value and no other link has
 * it, so a proof computed over it (e.g. an HMAC with a shared key) cannot
 * be replayed on another link.  Valid once open; all zeros before the
 * handshake completed. */
#define PARLEY_LINK_BINDING_LEN 64
const uint8_t *parley_link_binding(const struct parley_link *l)
    PARLEY_NONNULL(1);
/* The remote's HELLO fields (valid once open; strings NUL-terminated). */
uint8_t parley_link_remote_role(const struct parley_link *l) PARLEY_NONNULL(1);
const char *parley_link_remote_name(const struct parley_link *l)
    PARLEY_NONNULL(1);
const char *parley_link_remote_addr(const struct parley_link *l)
    PARLEY_NONNULL(1);
uint32_t parley_link_remote_caps(const struct parley_link *l) PARLEY_NONNULL(1);
/* The TCP peer address "ip:port" of the socket. */
const char *parley_link_peername(const struct parley_link *l) PARLEY_NONNULL(1);
/* The remote's numeric IP address alone ("127.0.0.1", "::1"; "?" when
 * unknown), as given to the guard. */
const char *parley_link_remote_ip(const struct parley_link *l)
    PARLEY_NONNULL(1);
/* Reports bad input from l's remote to the guard's on_strike, as the net
 * does for what it refuses itself; for an upper layer that finds a frame
 * it cannot accept (e.g. a request type it does not serve).  Returns
 * PARLEY_EDENIED when the remote is banned now (the caller should close
 * the link, e.g. with parley_link_fail), else PARLEY_OK (also without a
 * guard, and for dialled links, which are never reported). */
PARLEY_NODISCARD int parley_link_strike(struct parley_link *l)
    PARLEY_NONNULL(1);
int parley_link_accepted(const struct parley_link *l) PARLEY_NONNULL(1);
/* Bytes queued or in flight. */
size_t parley_link_sendq(const struct parley_link *l) PARLEY_NONNULL(1);
void *parley_link_data(const struct parley_link *l) PARLEY_NONNULL(1);
void parley_link_set_data(struct parley_link *l, void *data) PARLEY_NONNULL(1);
/* Replaces the callbacks (e.g. once an accepted link says who it is). */
void parley_link_set_cbs(struct parley_link *l,
                         const struct parley_link_cbs *cbs) PARLEY_NONNULL(1, 2);

#endif
