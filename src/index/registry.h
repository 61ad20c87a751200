/*
 * registry.h — the index's registry as a deterministic state machine.
 *
 * State: registered peers (key, advertised address, name, registration
 * time) and topic subscriptions.  It changes only through
 * parley_registry_apply(command): the same sequence of commands always
 * yields the same state, so a single node can persist it as snapshot + log
 * (regstore.h) and a Raft cluster can drive it from its log unchanged.
 * Commands carry their own timestamps; the registry never reads a clock.
 * Leases (heartbeats) are NOT registry state: the server tracks them in
 * memory and applies an EXPIRE command when one runs out.
 *
 * Commands have a pure binary codec (parley_reg_cmd_encode/decode), and so
 * does the snapshot, both fuzz targets.  No libuv, no I/O.
 */
#ifndef PARLEY_INDEX_REGISTRY_H
#define PARLEY_INDEX_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"

enum parley_reg_cmd_type {
  PARLEY_REG_REGISTER = 1,    /* add or update a peer (addr, name) */
  PARLEY_REG_EXPIRE = 2,      /* remove a peer and all its subscriptions */
  PARLEY_REG_SUBSCRIBE = 3,   /* peer subscribes to topic */
  PARLEY_REG_UNSUBSCRIBE = 4, /* peer unsubscribes from topic */
};

/* A command.  Strings are NUL-terminated copies (the struct is
 * self-contained so it can be queued and logged). */
struct parley_reg_cmd {
  uint8_t type;
  uint8_t pk[32];
  int64_t ts_ms; /* proposer's clock; recorded, never compared to now */
  char addr[PARLEY_MAX_ADDR + 1];
  char name[PARLEY_MAX_NAME + 1];
  char topic[PARLEY_MAX_TOPIC + 1];
};

struct parley_reg_peer {
  uint8_t pk[32];
  char addr[PARLEY_MAX_ADDR + 1];
  char name[PARLEY_MAX_NAME + 1];
  int64_t registered_ms; /* ts of the REGISTER that created it */
  int64_t updated_ms;    /* ts of the latest REGISTER */
  uint32_t nsubs;        /* topics it subscribes to */
};

enum parley_reg_change_kind {
  PARLEY_REG_PEER_UP = 1,   /* new peer, or address/name changed */
  PARLEY_REG_PEER_DOWN = 2, /* expired (its SUB_DEL events come first) */
  PARLEY_REG_SUB_ADD = 3,
  PARLEY_REG_SUB_DEL = 4,
};

struct parley_reg_change {
  int kind;
  const struct parley_reg_peer *peer; /* valid during the callback */
  const char *topic;                  /* SUB_ADD / SUB_DEL only */
};

/* Called synchronously from apply for each effect (watch fan-out). */
struct parley_reg_observer {
  void (*on_change)(void *ctx, const struct parley_reg_change *ch);
  void *ctx;
};

struct parley_reg_limits {
  uint32_t max_subs_per_peer; /* 0 = PARLEY_DEFAULT_MAX_SUBS */
  uint32_t max_peers;         /* 0 = unlimited */
  uint32_t max_topic_len;     /* 0 = PARLEY_DEFAULT_MAX_TOPIC */
};

struct parley_registry;

/* lim may be NULL (defaults).  Caller frees with parley_registry_free. */
PARLEY_NODISCARD int parley_registry_new(const struct parley_reg_limits *lim,
                                         struct parley_registry **out)
    PARLEY_NONNULL(2);
void parley_registry_free(struct parley_registry *r);
/* obs is copied; NULL removes the observer. */
void parley_registry_set_observer(struct parley_registry *r,
                                  const struct parley_reg_observer *obs)
    PARLEY_NONNULL(1);

/* Checks a command against the current state without applying it:
 * PARLEY_EINVAL (malformed topic/addr), PARLEY_EUNKNOWNPEER (subscribe by
 * an unregistered peer), PARLEY_ELIMIT (too many subscriptions or peers).
 * A leader validates before it proposes. */
PARLEY_NODISCARD int parley_registry_check(const struct parley_registry *r,
                                           const struct parley_reg_cmd *c)
    PARLEY_NONNULL(1, 2);
/* Applies a command.  Returns what check() would; on error the state is
 * unchanged (so replaying a log that contains a refused command is still
 * deterministic).  Idempotent: SUBSCRIBE twice, EXPIRE of an unknown peer
 * or UNSUBSCRIBE of a missing subscription return PARLEY_OK and change
 * nothing. */
PARLEY_NODISCARD int parley_registry_apply(struct parley_registry *r,
                                           const struct parley_reg_cmd *c)
    PARLEY_NONNULL(1, 2);

/* Serialises the whole state into out (appended); restore replaces the
 * state with a snapshot (PARLEY_EPROTO if malformed; state then empty).
 * Snapshot bytes are canonical: equal states give equal bytes. */
PARLEY_NODISCARD int parley_registry_snapshot(const struct parley_registry *r,
                                              struct parley_buf *out)
    PARLEY_NONNULL(1, 2);
PARLEY_NODISCARD int parley_registry_restore(struct parley_registry *r,
                                             const uint8_t *buf, size_t len)
    PARLEY_NONNULL(1);

/* Queries.  Returned pointers are valid until the next apply/restore. */
const struct parley_reg_peer *
parley_registry_peer(const struct parley_registry *r, const uint8_t pk[32])
    PARLEY_NONNULL(1, 2);
size_t parley_registry_peer_count(const struct parley_registry *r)
    PARLEY_NONNULL(1);
size_t parley_registry_topic_count(const struct parley_registry *r)
    PARLEY_NONNULL(1);
/* Walks; cb returning non-zero stops and that value is returned. */
int parley_registry_foreach_peer(const struct parley_registry *r,
                                 int (*cb)(void *ctx,
                                           const struct parley_reg_peer *p),
                                 void *ctx) PARLEY_NONNULL(1, 2);
int parley_registry_foreach_subscriber(
    const struct parley_registry *r, const char *topic,
    int (*cb)(void *ctx, const struct parley_reg_peer *p), void *ctx)
    PARLEY_NONNULL(1, 2, 3);
int parley_registry_foreach_topic(const struct parley_registry *r,
                                  int (*cb)(void *ctx, const char *topic,
                                            uint32_t subscribers),
                                  void *ctx) PARLEY_NONNULL(1, 2);
/* Walks the topics one peer subscribes to. */
int parley_registry_foreach_sub_of(const struct parley_registry *r,
                                   const uint8_t pk[32],
                                   int (*cb)(void *ctx, const char *topic),
                                   void *ctx) PARLEY_NONNULL(1, 2, 3);

/* Command codec: u8 type, key pk, u64 ts, str8 addr, str8 name, str8 topic. */
PARLEY_NODISCARD int parley_reg_cmd_encode(const struct parley_reg_cmd *c,
                                           uint8_t *buf, size_t cap,
                                           size_t *written)
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_reg_cmd_decode(const uint8_t *buf, size_t len,
                                           struct parley_reg_cmd *out)
    PARLEY_NONNULL(3);

#endif
