/*
 * registry.h — the index's registry as a deterministic state machine.
 *
 * State: registered peers (key, advertised address, name, registration
 * time), topic subscriptions, and the access lists of private topics
 * (owner, members, key epoch, grant counter, and the topic keys sealed to
 * each member).  It changes only through parley_registry_apply(command):
 * the same sequence of commands always yields the same state, so a single
 * node can persist it as snapshot + log (regstore.h) and a Raft cluster can
 * drive it from its log unchanged.  Commands carry their own timestamps;
 * the registry never reads a clock.  Leases (heartbeats) are NOT registry
 * state: the server tracks them in memory and applies an EXPIRE command
 * when one runs out.
 *
 * Private topics (docs/internals/REGISTRY.md, "Private topics").  An owner
 * makes a topic private with a signed CREATE grant (crypto/groupkey.h) and
 * manages it with ADD / REVOKE / ROTATE grants, which the registry checks
 * (owner signature, counter, epoch rule) and applies.  A non-member cannot
 * SUBSCRIBE; a REVOKE drops the member's subscription.  The owner deposits
 * key blobs (a topic key sealed to one member) with KEY_PUT; the registry
 * keeps, per member, the blobs of the current and the previous epoch, and
 * serves them (parley_registry_key_blob) to members who come back later.
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
#include "crypto/groupkey.h"
#include "wire/acl_wire.h"

enum parley_reg_cmd_type {
  PARLEY_REG_REGISTER = 1,    /* add or update a peer (addr, name) */
  PARLEY_REG_EXPIRE = 2,      /* remove a peer and all its subscriptions */
  PARLEY_REG_SUBSCRIBE = 3,   /* peer subscribes to topic */
  PARLEY_REG_UNSUBSCRIBE = 4, /* peer unsubscribes from topic */
  PARLEY_REG_GRANT = 5,       /* data = a signed grant statement */
  PARLEY_REG_KEY_PUT = 6,     /* data = owner sig (64) || key blob */
};

/* Bytes the data field of a command can hold: the largest KEY_PUT (a
 * 64-byte owner signature and a key blob for a 255-byte topic, 533). */
#define PARLEY_REG_DATA_MAX (64u + PARLEY_GROUPKEY_BLOB_MAX)
/* Members a private topic may have unless the limits say otherwise. */
#define PARLEY_REG_DEFAULT_MAX_MEMBERS 1024u
/* The label of a KEY_PUT signature: the owner signs
 * "parley-key-put-v1\0" || blob with Ed25519 (wire/acl_wire.h defines it
 * and parley_acl_key_put_signed_data, which peers use to sign). */
#define PARLEY_REG_KEY_PUT_LABEL PARLEY_ACL_KEY_PUT_LABEL

/* A command.  Strings are NUL-terminated copies (the struct is
 * self-contained so it can be queued and logged).
 *
 * REGISTER..UNSUBSCRIBE use addr, name and topic (data is ignored and
 * not encoded).  GRANT and KEY_PUT use data only (addr,
 * name and topic are ignored, not encoded, and empty after decode); build
 * them with parley_reg_cmd_grant / parley_reg_cmd_key_put.  For every type
 * pk is the peer on whose behalf the command is proposed (the link's key):
 * for GRANT and KEY_PUT it must be the topic's owner. */
struct parley_reg_cmd {
  uint8_t type;
  uint8_t pk[32];
  int64_t ts_ms; /* proposer's clock; recorded, never compared to now */
  char addr[PARLEY_MAX_ADDR + 1];
  char name[PARLEY_MAX_NAME + 1];
  char topic[PARLEY_MAX_TOPIC + 1];
  uint16_t data_len; /* GRANT: 152..406, KEY_PUT: 279..533 */
  uint8_t data[PARLEY_REG_DATA_MAX];
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
  /* Private topics.  member and epoch are set; peer is the member's
   * registration, or NULL when the member is not a registered peer. */
  PARLEY_REG_ACL_CREATE = 5, /* topic became private: member = owner, epoch 1 */
  PARLEY_REG_MEMBER_ADD = 6, /* member joined; epoch unchanged */
  PARLEY_REG_MEMBER_DEL = 7, /* member revoked; epoch = the new epoch (its
                                SUB_DEL, if subscribed, comes first) */
  PARLEY_REG_ACL_ROTATE = 8, /* new epoch, same members: member = owner */
  PARLEY_REG_MEMBER_KEY = 9, /* a key blob for member at epoch was stored */
};

struct parley_reg_change {
  int kind;
  const struct parley_reg_peer *peer; /* valid during the callback; may be
                                         NULL for the ACL kinds (5..9) */
  const char *topic;                  /* all kinds but PEER_UP/PEER_DOWN */
  const uint8_t *member;              /* ACL kinds: 32 bytes, else NULL */
  uint32_t epoch;                     /* ACL kinds, else 0 */
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
  uint32_t max_members;       /* per private topic, owner included;
                                 0 = PARLEY_REG_DEFAULT_MAX_MEMBERS */
  uint32_t max_private;       /* private topics; 0 = unlimited */
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
 * PARLEY_EINVAL (malformed topic/addr/statement), PARLEY_EUNKNOWNPEER
 * (subscribe by an unregistered peer), PARLEY_EDENIED (subscribe by a
 * non-member to a private topic), PARLEY_ELIMIT (too many subscriptions,
 * peers, members or private topics).  GRANT and KEY_PUT have more, in
 * this order (REGISTRY.md has the tables):
 *   GRANT    EINVAL (undecodable, topic invalid here), EDENIED (pk is not
 *            the statement's owner), then parley_groupkey_grant_apply's
 *            EINVAL / ECRYPTO / ENOTFOUND / EEXIST / EDENIED / ERANGE /
 *            EPROTO, then EEXIST (CREATE of a topic that has subscribers
 *            other than the owner), ELIMIT.  Re-applying the last applied
 *            statement of a topic (a client retry) is PARLEY_OK, a no-op.
 *   KEY_PUT  EINVAL (undecodable blob), ENOTFOUND (topic not private),
 *            EDENIED (pk or the blob's owner is not the topic's owner),
 *            ECRYPTO (the KEY_PUT signature does not verify), EDENIED (the
 *            blob's member is not a member), ERANGE (epoch is neither the
 *            current one nor the one before).  The same blob again: OK.
 * A leader validates before it proposes. */
PARLEY_NODISCARD int parley_registry_check(const struct parley_registry *r,
                                           const struct parley_reg_cmd *c)
    PARLEY_NONNULL(1, 2);
/* Applies a command.  Returns what check() would; on error the state is
 * unchanged (so replaying a log that contains a refused command is still
 * deterministic).  Idempotent: SUBSCRIBE twice, EXPIRE of an unknown peer,
 * UNSUBSCRIBE of a missing subscription, the last applied grant of a topic
 * again, or a KEY_PUT of a blob already stored return PARLEY_OK and change
 * nothing.  PARLEY_ENOMEM leaves the state unchanged too. */
PARLEY_NODISCARD int parley_registry_apply(struct parley_registry *r,
                                           const struct parley_reg_cmd *c)
    PARLEY_NONNULL(1, 2);

/* Serialises the whole state into out (appended, "PRG2"); restore replaces
 * the state with a snapshot, "PRG2" or the older "PRG1" without private
 * topics (PARLEY_EPROTO if malformed; state then empty).  Snapshot bytes
 * are canonical: equal states give equal bytes.  Restore emits no events. */
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

/* Private topics ------------------------------------------------------------
 * Queries (const; pointers valid until the next apply/restore/free). */

struct parley_reg_acl {
  uint8_t owner[32];
  uint32_t epoch;   /* current key epoch, >= 1 */
  uint64_t counter; /* counter of the last grant applied */
  uint32_t members; /* member count, the owner included */
};

/* PARLEY_OK and *out if topic is private; PARLEY_ENOTFOUND if it is not
 * (public, unknown, or not a valid name). */
PARLEY_NODISCARD int parley_registry_topic_acl(const struct parley_registry *r,
                                               const char *topic,
                                               struct parley_reg_acl *out)
    PARLEY_NONNULL(1, 2, 3);
size_t parley_registry_acl_count(const struct parley_registry *r)
    PARLEY_NONNULL(1);
/* 1 if topic is private and pk is a member (the owner is one), else 0. */
int parley_registry_is_member(const struct parley_registry *r,
                              const char *topic, const uint8_t pk[32])
    PARLEY_NONNULL(1, 2, 3);
/* 1 if pk may subscribe to / publish on topic: the topic is not private,
 * or pk is a member.  This is the rule check() applies to SUBSCRIBE; the
 * server applies it to publishing and to MEMBERS/KEY_GET requests. */
int parley_registry_may_access(const struct parley_registry *r,
                               const char *topic, const uint8_t pk[32])
    PARLEY_NONNULL(1, 2, 3);
/* Walks the members of a private topic in ascending key order (nothing for
 * a public topic); cb returning non-zero stops and that value is
 * returned. */
int parley_registry_foreach_member(const struct parley_registry *r,
                                   const char *topic,
                                   int (*cb)(void *ctx, const uint8_t pk[32]),
                                   void *ctx) PARLEY_NONNULL(1, 2, 3);
/* Walks the private topics in name order. */
int parley_registry_foreach_acl(const struct parley_registry *r,
                                int (*cb)(void *ctx, const char *topic,
                                          const struct parley_reg_acl *acl),
                                void *ctx) PARLEY_NONNULL(1, 2);
/* OUT: *blob / *len, the key blob (groupkey.h layout, as the owner made it)
 * stored for member at epoch; borrowed until the next apply/restore/free.
 * PARLEY_ENOTFOUND if there is none (the registry keeps the current and
 * the previous epoch only). */
PARLEY_NODISCARD int parley_registry_key_blob(const struct parley_registry *r,
                                              const char *topic, uint32_t epoch,
                                              const uint8_t member[32],
                                              const uint8_t **blob,
                                              size_t *len)
    PARLEY_NONNULL(1, 2, 4, 5, 6);
/* Walks member's stored key blobs on topic in ascending epoch order (at
 * most two: previous and current epoch).  Same stop rule as above. */
int parley_registry_foreach_key(const struct parley_registry *r,
                                const char *topic, const uint8_t member[32],
                                int (*cb)(void *ctx, uint32_t epoch,
                                          const uint8_t *blob, size_t len),
                                void *ctx) PARLEY_NONNULL(1, 2, 3, 4);

/* Command builders for the server: zero *c and fill it.  pk is the
 * proposing peer (the link's key), ts_ms the leader's clock.  grant is a
 * parley_groupkey_grant_encode output, blob a parley_groupkey_blob_encode
 * output, sig the owner's Ed25519 signature of PARLEY_REG_KEY_PUT_LABEL
 * (with its NUL) || blob.  Only lengths are checked here (PARLEY_EINVAL);
 * meaning is check()'s job. */
PARLEY_NODISCARD int parley_reg_cmd_grant(struct parley_reg_cmd *c,
                                          const uint8_t pk[32], int64_t ts_ms,
                                          const uint8_t *grant, size_t len)
    PARLEY_NONNULL(1, 2, 4);
PARLEY_NODISCARD int parley_reg_cmd_key_put(struct parley_reg_cmd *c,
                                            const uint8_t pk[32],
                                            int64_t ts_ms, const uint8_t *blob,
                                            size_t len, const uint8_t sig[64])
    PARLEY_NONNULL(1, 2, 4, 6);

/* Command codec.  Types 1..4: u8 type, key pk, u64 ts, str8 addr, str8
 * name, str8 topic (44..459 bytes, unchanged since PRG1).  Types 5..6:
 * u8 type, key pk, u64 ts, then data split into three u8-length chunks of
 * 255, 255 and the rest (a chunk is non-empty only if the one before is
 * full), 45..577 bytes.  Every command therefore has the same framing:
 * three u8-length fields after 41 bytes (consensus.c relies on it). */
PARLEY_NODISCARD int parley_reg_cmd_encode(const struct parley_reg_cmd *c,
                                           uint8_t *buf, size_t cap,
                                           size_t *written)
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_reg_cmd_decode(const uint8_t *buf, size_t len,
                                           struct parley_reg_cmd *out)
    PARLEY_NONNULL(3);

#endif
