/*
 * raft_transport.h — byte streams between the index nodes of one cluster,
 * carried over Parley secure links (net/link.h) and authenticated by the
 * cluster key.
 *
 * libraft's own TCP transport neither encrypts nor authenticates.  This
 * module gives consensus.c what it needs to implement libraft's transport
 * interface instead, without knowing any raft type: it dials and accepts
 * links on the node's Raft address, proves cluster membership in both
 * directions (RAFT_OPEN, wire/raft_wire.h), and then bridges each link to
 * one end of an AF_UNIX socketpair.  The other end is handed to the caller
 * as a plain file descriptor (consensus.c wraps it into the uv stream that
 * libraft owns and closes).  Bytes flow both ways as RAFT_DATA frames.
 *
 *   libraft <-> [fd | socketpair | our uv_pipe] <-> RAFT_DATA <-> link
 *
 * Membership: each side sends HMAC(cluster key, "parley-raft-member" ||
 * channel binding || side || raft id); a wrong proof is answered with
 * ERROR(EAUTH), logged as a warning and the link closed.  The first Ed25519
 * key seen for a raft id is pinned in DIR/cluster-peers.json together with
 * the addresses it announced; a later link that claims the same raft id
 * with another key is refused (EAUTH) and logged as an error, and dialling
 * a pinned id expects its key in the handshake.
 *
 * Back-pressure: the socketpair is not read while the link's send queue is
 * over a high-water mark (reading resumes below a low-water mark, checked
 * once per loop turn); bytes waiting to be written into the socketpair are
 * capped, past which the bridge is closed.  Either side closing closes the
 * other.
 *
 * docs/internals/CLUSTER.md describes the design.
 */
#ifndef PARLEY_INDEX_RAFT_TRANSPORT_H
#define PARLEY_INDEX_RAFT_TRANSPORT_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/identity.h"

#define PARLEY_CLUSTER_KEY_LEN 32
/* Most cluster members whose keys and addresses are remembered. */
#define PARLEY_RT_MAX_PEERS 64

struct parley_rtransport;

/* What a member told us about itself (RAFT_OPEN) and the key it used. */
struct parley_rt_peer {
  uint64_t id;
  uint8_t pk[32];
  char raft[PARLEY_MAX_ADDR + 1];
  char listen[PARLEY_MAX_ADDR + 1]; /* "" if unknown */
  char http[PARLEY_MAX_ADDR + 1];   /* "" if not served */
};

struct parley_rtransport_config {
  uv_loop_t *loop;                  /* borrowed */
  const struct parley_log *log;     /* borrowed, may be NULL */
  const struct parley_identity *id; /* borrowed; must outlive the transport */
  const char *data_dir;             /* cluster-peers.json lives here */
  uint64_t self_id;                 /* our raft id (> 0) */
  const char *raft_addr;            /* HOST:PORT to listen on for members */
  const char *listen_addr;          /* advertised: peers' address of ours */
  const char *http_addr;            /* advertised: "" or NULL if none */
  const uint8_t *cluster_key;       /* PARLEY_CLUSTER_KEY_LEN bytes, copied */
  const char *name;                 /* HELLO name, may be NULL */
};

/* Accepted and verified member link: fd is one end of a socketpair, owned
 * by the callee from now on (it must close it).  raft_addr is valid during
 * the call only. */
typedef void (*parley_rt_accept_cb)(void *ctx, uint64_t id,
                                    const char *raft_addr, int fd);

struct parley_rt_connect;
/* Outcome of a connect: status 0 and fd >= 0 (owned by the callee), or a
 * negative parley_err and fd = -1 (PARLEY_ECANCELED when the transport is
 * closing). */
typedef void (*parley_rt_connect_cb)(struct parley_rt_connect *req, int fd,
                                     int status);

/* A connect request; the caller allocates it and keeps it alive until its
 * callback has run. */
struct parley_rt_connect {
  void *data; /* user data */
  /* private */
  parley_rt_connect_cb cb;
  void *bridge;
};

struct parley_rtransport_stats {
  uint64_t links_open;    /* gauge: bridged, verified member links */
  uint64_t auth_failures; /* proofs that failed, pinned keys that changed */
  uint64_t bytes_in, bytes_out; /* RAFT_DATA payload bytes */
};

/* Loads DIR/cluster-peers.json (a missing file is an empty set), binds the
 * Raft address and starts accepting links (accepted streams are refused
 * until parley_rtransport_listen).  OUT: *out.  Errors: PARLEY_EINVAL (bad
 * config), PARLEY_ESTORE (unreadable pin file), PARLEY_ECONNECT (cannot
 * listen), PARLEY_ENOMEM. */
PARLEY_NODISCARD int
parley_rtransport_new(const struct parley_rtransport_config *cfg,
                      struct parley_rtransport **out) PARLEY_NONNULL(1, 2);

/* From now on verified accepted links are handed to cb. */
void parley_rtransport_listen(struct parley_rtransport *t,
                              parley_rt_accept_cb cb, void *ctx)
    PARLEY_NONNULL(1, 2);

/* Dials member id at addr ("HOST:PORT").  The callback runs later, never
 * from inside this call; on a synchronous failure (bad address, closing)
 * an error is returned and the callback never runs. */
PARLEY_NODISCARD int parley_rtransport_connect(struct parley_rtransport *t,
                                               struct parley_rt_connect *req,
                                               uint64_t id, const char *addr,
                                               parley_rt_connect_cb cb)
    PARLEY_NONNULL(1, 2, 4, 5);

/* Stops accepting, completes pending connects with PARLEY_ECANCELED (from
 * inside this call), closes every bridge and link, and calls cb(ctx) once
 * the memory can go (after which it is freed).  NULL t is a no-op. */
void parley_rtransport_close(struct parley_rtransport *t, void (*cb)(void *ctx),
                             void *ctx);

/* What member id announced, if it ever opened a link with us (or was
 * pinned on an earlier run).  PARLEY_ENOTFOUND otherwise. */
PARLEY_NODISCARD int parley_rtransport_peer(const struct parley_rtransport *t,
                                            uint64_t id,
                                            struct parley_rt_peer *out)
    PARLEY_NONNULL(1, 3);
/* 1 if a verified link with member id is open in either direction. */
int parley_rtransport_reachable(const struct parley_rtransport *t, uint64_t id)
    PARLEY_NONNULL(1);
const struct parley_rtransport_stats *
parley_rtransport_stats(const struct parley_rtransport *t) PARLEY_NONNULL(1);

/* Reads a cluster key file: 64 hex digits and an optional newline, mode
 * 0600 or stricter (group/other bits refused with PARLEY_EAUTH).  errbuf
 * gets a one-line reason on failure.  PARLEY_EIO unreadable,
 * PARLEY_EINVAL malformed. */
PARLEY_NODISCARD int
parley_cluster_key_load(const char *path, uint8_t key[PARLEY_CLUSTER_KEY_LEN],
                        char *errbuf, size_t errcap) PARLEY_NONNULL(1, 2, 3);

#endif
