/*
 * consensus.h — the replicated registry: a Parley-typed wrapper around
 * libraft, the only module that sees a raft type.
 *
 * Every index node of a cluster runs one consensus object.  It owns a
 * libraft instance with libraft's libuv disk I/O under DIR/raft/ and a
 * transport over Parley secure links (raft_transport.h) on the node's Raft
 * address.  The registry state machine (registry.h) is driven from the
 * Raft log unchanged: each committed entry is one encoded parley_reg_cmd,
 * decoded and handed to parley_registry_apply on every node (a refused
 * command is a deterministic no-op); libraft snapshots are registry
 * snapshots.  Only the leader proposes.
 *
 * Nothing outside consensus.c includes <raft.h>: swapping libraft for its
 * maintained fork touches this file pair only.
 *
 * Callbacks run on the loop thread.  A callback whose object is freed
 * before it ran is still called (with PARLEY_ECANCELED) while
 * parley_consensus_free winds down, before its done callback.
 */
#ifndef PARLEY_INDEX_CONSENSUS_H
#define PARLEY_INDEX_CONSENSUS_H

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
#include "index/raft_transport.h"
#include "index/registry.h"

/* Members a cluster may list (voters, standbys and spares together). */
#define PARLEY_CONSENSUS_MAX_MEMBERS 32
/* Defaults tuned for a LAN or loopback: a killed leader is replaced in a
 * few hundred milliseconds. */
#define PARLEY_CONSENSUS_ELECTION_MS 200u
#define PARLEY_CONSENSUS_HEARTBEAT_MS 40u
/* A snapshot is taken every this many applied entries, keeping this many
 * entries behind it for followers that lag a little. */
#define PARLEY_CONSENSUS_SNAPSHOT_THRESHOLD 1024u
#define PARLEY_CONSENSUS_SNAPSHOT_TRAILING 256u

struct parley_consensus;

enum parley_consensus_role {
  PARLEY_CONSENSUS_VOTER = 1,   /* replicates and votes */
  PARLEY_CONSENSUS_STANDBY = 2, /* replicates, does not vote */
  PARLEY_CONSENSUS_SPARE = 3,   /* neither (being added) */
};

enum parley_consensus_state {
  PARLEY_CONSENSUS_UNAVAILABLE = 0,
  PARLEY_CONSENSUS_FOLLOWER = 1,
  PARLEY_CONSENSUS_CANDIDATE = 2,
  PARLEY_CONSENSUS_LEADER = 3,
};

/* One member as named on the command line (--cluster ID=HOST:PORT). */
struct parley_consensus_node {
  uint64_t id;
  char raft[PARLEY_MAX_ADDR + 1];
};

/* What the index server wants to hear about. */
struct parley_consensus_hooks {
  /* An entry was applied to the registry on this node; rc is the
   * registry's verdict.  Runs inside the apply (the registry observer has
   * already fired). */
  void (*applied)(void *ctx, const struct parley_reg_cmd *c, int rc);
  /* The registry was replaced by a snapshot from the leader (not at
   * start-up): watchers must be resynchronised. */
  void (*restored)(void *ctx);
  /* This node became a ready leader (1: its registry holds every entry of
   * earlier terms) or stopped being one (0). */
  void (*leadership)(void *ctx, int leader);
  void *ctx;
};

struct parley_consensus_config {
  uv_loop_t *loop;                  /* borrowed */
  const struct parley_log *log;     /* borrowed, may be NULL */
  const struct parley_identity *id; /* borrowed: the node's key */
  const char *data_dir;             /* DIR; Raft data goes to DIR/raft/ */
  uint64_t self_id;                 /* --id */
  const struct parley_consensus_node *nodes; /* --cluster (copied) */
  size_t nnodes;
  int join;                    /* --join: wait to be added */
  const char *listen_addr;     /* advertised to other members */
  const char *http_addr;       /* advertised; NULL or "-" if none */
  const uint8_t *cluster_key;  /* PARLEY_CLUSTER_KEY_LEN bytes */
  const char *name;            /* HELLO name on member links */
  struct parley_registry *reg; /* borrowed; the state machine */
  struct parley_consensus_hooks hooks;
  unsigned election_ms;        /* 0 = PARLEY_CONSENSUS_ELECTION_MS */
  unsigned heartbeat_ms;       /* 0 = PARLEY_CONSENSUS_HEARTBEAT_MS */
  unsigned snapshot_threshold; /* 0 = default */
  unsigned snapshot_trailing;  /* 0 = default */
};

struct parley_consensus_member {
  uint64_t id;
  char raft[PARLEY_MAX_ADDR + 1];
  char listen[PARLEY_MAX_ADDR + 1]; /* "" until the member introduced itself */
  char http[PARLEY_MAX_ADDR + 1];
  char key[PARLEY_ID_TEXT_LEN + 1]; /* "" until known */
  int role;                         /* enum parley_consensus_role */
  int reachable;                    /* self, or a verified link is open */
  int is_self;
};

struct parley_consensus_status {
  uint64_t id;
  int state; /* enum parley_consensus_state */
  uint64_t term, commit_index, last_applied, last_index;
  uint64_t leader_id; /* 0 = none known */
  char leader_raft[PARLEY_MAX_ADDR + 1];
  char leader_listen[PARLEY_MAX_ADDR + 1];
  char leader_http[PARLEY_MAX_ADDR + 1];
  uint64_t leader_changes; /* times the known leader changed */
  size_t nmembers;
  struct parley_consensus_member members[PARLEY_CONSENSUS_MAX_MEMBERS];
};

/* Starts the node: creates DIR/raft, binds the Raft address, and either
 * bootstraps the --cluster configuration (first start of a non-joining
 * node; every node bootstraps the same one) or resumes from the data on
 * disk.  cfg is copied.  OUT: *out; free with parley_consensus_free.
 * Errors: PARLEY_EINVAL (self not in nodes, bad address), PARLEY_EIO
 * (data dir), PARLEY_ESTORE (raft data unreadable), PARLEY_ECONNECT
 * (cannot listen), PARLEY_ENOMEM.  Details are logged.  On failure run
 * the loop once more: handles may be closing. */
PARLEY_NODISCARD int
parley_consensus_new(const struct parley_consensus_config *cfg,
                     struct parley_consensus **out) PARLEY_NONNULL(1, 2);

/* Stops the node.  Pending proposals and changes complete with
 * PARLEY_ECANCELED, then done(ctx) runs once everything is closed and the
 * memory released.  NULL c is a no-op (done is not called). */
void parley_consensus_free(struct parley_consensus *c, void (*done)(void *ctx),
                           void *ctx);

/* Completion of a proposal or membership change: rc is PARLEY_OK or the
 * registry's verdict (proposals, once committed and applied here), or
 * PARLEY_ENOTLEADER (leadership lost: the entry may or may not commit),
 * PARLEY_ECANCELED (shutting down), PARLEY_EIO. */
typedef void (*parley_consensus_cb)(void *ctx, int rc);

/* Proposes a registry command.  Only on a ready leader
 * (parley_consensus_is_leader), else PARLEY_ENOTLEADER at once.  On
 * PARLEY_OK cb runs exactly once, later; on an error it never runs. */
PARLEY_NODISCARD int parley_consensus_propose(struct parley_consensus *c,
                                              const struct parley_reg_cmd *cmd,
                                              parley_consensus_cb cb, void *ctx)
    PARLEY_NONNULL(1, 2, 3);

/* 1 if this node is the leader and has applied every entry of earlier
 * terms (writes may be served). */
int parley_consensus_is_leader(const struct parley_consensus *c)
    PARLEY_NONNULL(1);
/* The known leader: id (0 if none) and, when known, its peer (--listen)
 * and HTTP addresses ("" otherwise).  Buffers hold PARLEY_MAX_ADDR + 1. */
void parley_consensus_leader(const struct parley_consensus *c, uint64_t *id,
                             char *listen, char *http)
    PARLEY_NONNULL(1, 2, 3, 4);
void parley_consensus_status(const struct parley_consensus *c,
                             struct parley_consensus_status *out)
    PARLEY_NONNULL(1, 2);
const struct parley_rtransport_stats *
parley_consensus_transport_stats(const struct parley_consensus *c)
    PARLEY_NONNULL(1);

/* Adds member id at raft_addr as a voter (leader only): it is added as a
 * spare, caught up, then promoted.  cb follows.  Errors at once:
 * PARLEY_ENOTLEADER, PARLEY_EUNAVAIL (another change is in progress),
 * PARLEY_EEXIST (id or address taken), PARLEY_EINVAL. */
PARLEY_NODISCARD int parley_consensus_add(struct parley_consensus *c,
                                          uint64_t id, const char *raft_addr,
                                          parley_consensus_cb cb, void *ctx)
    PARLEY_NONNULL(1, 3, 4);
/* Removes member id (leader only).  PARLEY_ENOTFOUND if not a member. */
PARLEY_NODISCARD int parley_consensus_remove(struct parley_consensus *c,
                                             uint64_t id,
                                             parley_consensus_cb cb, void *ctx)
    PARLEY_NONNULL(1, 3);

/* Text of a role / state for status output ("voter", "leader"...). */
const char *parley_consensus_role_name(int role);
const char *parley_consensus_state_name(int state);

#endif
