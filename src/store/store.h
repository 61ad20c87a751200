/*
 * store.h — a peer's local store: SQLite in WAL mode.
 *
 * Holds every message the peer sent or received (with an FTS5 index over
 * text bodies), the outbox of acknowledged-mode deliveries not yet acked,
 * the per-channel sequence counters of what this peer publishes, its
 * subscriptions, and a cache of peers it has seen.
 *
 * Since schema version 2 it also keeps the hash chain that makes relayed
 * messages verifiable (crypto/chain.h): each message's chain value, this
 * peer's own chain head per channel, and the signed checkpoints of every
 * publisher it has seen; plus the range queries anti-entropy needs.
 *
 * Since schema version 3 it keeps the keys the user pinned (`parley
 * trust`) and the replay windows of end-to-end direct messages.
 *
 * A "channel" is a topic name, or "@" + recipient id for direct messages.
 * A message is identified by (publisher, channel, seq); storing the same id
 * twice is refused with PARLEY_EEXIST, which is how receivers de-duplicate.
 *
 * Writes are meant to be grouped: the caller opens a transaction with
 * parley_store_begin at the first write of an event-loop turn and commits
 * once at the end of the turn.  Every write function also works outside an
 * explicit transaction (autocommit).  The schema is versioned
 * (PRAGMA user_version) and migrated forward on open.  Not thread-safe: one
 * store belongs to one loop.
 */
#ifndef PARLEY_STORE_STORE_H
#define PARLEY_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"

struct parley_store;

/* A message as stored.  For parley_store_put_message every pointer is
 * borrowed for the duration of the call; in query callbacks they point
 * into SQLite memory valid only during the callback. */
struct parley_msg {
  int64_t rowid;          /* set by the store */
  const uint8_t *publisher; /* 32 bytes */
  const char *channel;    /* topic, or "@" + recipient id */
  size_t channel_len;
  uint64_t seq;
  int64_t ts_ms;          /* publisher's clock */
  uint32_t flags;         /* PARLEY_MSG_* from wire.h */
  const uint8_t *body;
  size_t body_len;
  int outgoing;           /* 1 if this peer published it */
  int64_t stored_ms;      /* local clock when stored */
  const uint8_t *chain;   /* 32 bytes: the publisher's hash-chain value
                             after this message (crypto/chain.h), or NULL
                             (none known, e.g. stored before schema v2) */
};

struct parley_query {
  const char *channel;      /* exact topic; NULL for any */
  int direct_only;          /* only direct messages (channel "@...") */
  const uint8_t *from;      /* publisher key (32), NULL for any */
  int64_t since_ms;         /* inclusive lower bound on ts, INT64_MIN = none */
  int64_t until_ms;         /* inclusive upper bound on ts, INT64_MAX = none */
  const char *search;       /* FTS5 words, NULL for none; plain words are
                               quoted so user text is never FTS syntax */
  uint32_t limit;           /* 0 = no limit */
  int64_t after_rowid;      /* only rows with rowid > this (0 = all) */
};

/* One pending delivery. */
struct parley_outbox_entry {
  int64_t id;
  int64_t msg_rowid;
  const uint8_t *recipient; /* 32 bytes */
  uint32_t attempts;
  int64_t next_try_ms;
  int64_t created_ms;
};

typedef int (*parley_store_msg_cb)(void *ctx, const struct parley_msg *m);
typedef int (*parley_store_outbox_cb)(void *ctx,
                                      const struct parley_outbox_entry *e,
                                      const struct parley_msg *m);
typedef int (*parley_store_str_cb)(void *ctx, const char *s);

/* Opens (creating if needed) the database at path and migrates it.
 * lg is borrowed and may be NULL.  OUT: *out, caller frees with
 * parley_store_close. */
PARLEY_NODISCARD int parley_store_open(const char *path,
                                       const struct parley_log *lg,
                                       struct parley_store **out)
    PARLEY_NONNULL(1, 3);
/* Commits an open transaction and closes.  NULL is a no-op. */
void parley_store_close(struct parley_store *s);
/* Last SQLite error text for logs. */
const char *parley_store_errmsg(const struct parley_store *s)
    PARLEY_NONNULL(1);
int parley_store_schema_version(struct parley_store *s) PARLEY_NONNULL(1);

PARLEY_NODISCARD int parley_store_begin(struct parley_store *s)
    PARLEY_NONNULL(1);
PARLEY_NODISCARD int parley_store_commit(struct parley_store *s)
    PARLEY_NONNULL(1);
PARLEY_NODISCARD int parley_store_rollback(struct parley_store *s)
    PARLEY_NONNULL(1);
int parley_store_in_tx(const struct parley_store *s) PARLEY_NONNULL(1);

/* Stores a message.  PARLEY_EEXIST if its id is already stored (nothing is
 * written).  OUT: *rowid (may be NULL).  Inside a transaction the write
 * may be deferred to the next statement or the commit; if it fails there,
 * parley_store_commit fails (roll back). */
PARLEY_NODISCARD int parley_store_put_message(struct parley_store *s,
                                              const struct parley_msg *m,
                                              int64_t *rowid)
    PARLEY_NONNULL(1, 2);
/* Looks up a message by id; calls cb once if found, else PARLEY_ENOTFOUND. */
PARLEY_NODISCARD int parley_store_get_message(struct parley_store *s,
                                              const uint8_t publisher[32],
                                              const char *channel,
                                              uint64_t seq,
                                              parley_store_msg_cb cb,
                                              void *ctx)
    PARLEY_NONNULL(1, 2, 3, 5);
/* Runs a history query, oldest first (by ts, then rowid).  cb returning
 * non-zero stops the walk and that value is returned. */
PARLEY_NODISCARD int parley_store_query(struct parley_store *s,
                                        const struct parley_query *q,
                                        parley_store_msg_cb cb, void *ctx)
    PARLEY_NONNULL(1, 2, 3);
/* Number of stored messages. */
PARLEY_NODISCARD int parley_store_count_messages(struct parley_store *s,
                                                 uint64_t *n)
    PARLEY_NONNULL(1, 2);

/* Allocates the next sequence number this peer uses on channel (1, 2, ...).
 * Persisted in the same transaction as the caller's other writes. */
PARLEY_NODISCARD int parley_store_next_seq(struct parley_store *s,
                                           const char *channel,
                                           uint64_t *seq)
    PARLEY_NONNULL(1, 2, 3);

/* Outbox.  A row is (message, recipient); adding the same pair twice is a
 * no-op.  Inside a transaction new deliveries are kept as one batch row per
 * recipient and become rows only if still unacked when due, walked or
 * expired (store.c); every outbox call below counts and finds them as if
 * they were rows. */
PARLEY_NODISCARD int parley_store_outbox_add(struct parley_store *s,
                                             int64_t msg_rowid,
                                             const uint8_t recipient[32],
                                             int64_t now_ms)
    PARLEY_NONNULL(1, 3);
/* Removes the row for (recipient, our message channel/seq).  PARLEY_ENOTFOUND
 * if there was none (a duplicate ack). */
PARLEY_NODISCARD int parley_store_outbox_ack(struct parley_store *s,
                                             const uint8_t recipient[32],
                                             const uint8_t publisher[32],
                                             const char *channel,
                                             uint64_t seq)
    PARLEY_NONNULL(1, 2, 3, 4);
/* The same by the message's row id, when the caller still knows it (one
 * index lookup fewer).  PARLEY_ENOTFOUND if there was no such row. */
PARLEY_NODISCARD int parley_store_outbox_ack_row(struct parley_store *s,
                                                 const uint8_t recipient[32],
                                                 int64_t msg_rowid)
    PARLEY_NONNULL(1, 2);
/* Calls cb for rows with next_try_ms <= now_ms (all rows if now_ms is
 * INT64_MAX), oldest first, at most limit rows (0 = all). */
PARLEY_NODISCARD int parley_store_outbox_due(struct parley_store *s,
                                             int64_t now_ms, uint32_t limit,
                                             parley_store_outbox_cb cb,
                                             void *ctx)
    PARLEY_NONNULL(1, 4);
/* Calls cb for every row addressed to recipient. */
PARLEY_NODISCARD int parley_store_outbox_for(struct parley_store *s,
                                             const uint8_t recipient[32],
                                             parley_store_outbox_cb cb,
                                             void *ctx)
    PARLEY_NONNULL(1, 2, 3);
/* Sets attempts and next_try_ms of one row. */
PARLEY_NODISCARD int parley_store_outbox_reschedule(struct parley_store *s,
                                                    int64_t id,
                                                    uint32_t attempts,
                                                    int64_t next_try_ms)
    PARLEY_NONNULL(1);
/* Deletes rows whose recipient was last seen (parley_store_peer_seen)
 * before cutoff_ms, or never seen and created before cutoff_ms.
 * OUT: *dropped. */
PARLEY_NODISCARD int parley_store_outbox_expire(struct parley_store *s,
                                                int64_t cutoff_ms,
                                                uint64_t *dropped)
    PARLEY_NONNULL(1, 3);
PARLEY_NODISCARD int parley_store_outbox_count(struct parley_store *s,
                                               uint64_t *n)
    PARLEY_NONNULL(1, 2);

/* Subscriptions of this peer (persist across restarts). */
PARLEY_NODISCARD int parley_store_sub_add(struct parley_store *s,
                                          const char *topic)
    PARLEY_NONNULL(1, 2);
/* PARLEY_ENOTFOUND if not subscribed. */
PARLEY_NODISCARD int parley_store_sub_remove(struct parley_store *s,
                                             const char *topic)
    PARLEY_NONNULL(1, 2);
PARLEY_NODISCARD int parley_store_sub_list(struct parley_store *s,
                                           parley_store_str_cb cb, void *ctx)
    PARLEY_NONNULL(1, 2);

/* ---- Hash chains and anti-entropy (schema v2) ---- */

/* A signed checkpoint of a publisher's chain: hash is h(seq) on channel and
 * sig the publisher's signature over it (crypto/chain.h).  For
 * parley_store_checkpoint_put every pointer is borrowed for the call. */
struct parley_store_checkpoint {
  const uint8_t *publisher; /* 32 */
  const char *channel;
  size_t channel_len;
  uint64_t seq;             /* >= 1 */
  const uint8_t *hash;      /* 32 */
  const uint8_t *sig;       /* 64 */
};

/* One publisher of a topic as parley_store_sync_summary reports it. */
typedef int (*parley_store_summary_cb)(void *ctx, const uint8_t publisher[32],
                                       uint64_t max_seq, uint64_t signed_seq);
/* One of this peer's own channels as parley_store_chain_heads reports it. */
typedef int (*parley_store_head_cb)(void *ctx, const char *channel,
                                    uint64_t seq, const uint8_t hash[32]);

/* This peer's chain head on channel: OUT: *seq = the last sequence number
 * allocated on it (0 if none), hash = h(*seq), or 32 zero bytes when the
 * chain has no value there (nothing published yet, or published before
 * schema v2: the chain then restarts from zeros).  The next message is
 * *seq + 1. */
PARLEY_NODISCARD int parley_store_chain_head(struct parley_store *s,
                                             const char *channel,
                                             uint64_t *seq, uint8_t hash[32])
    PARLEY_NONNULL(1, 2, 3, 4);
/* Moves this peer's head on channel to (seq, hash) and allocates seq, only
 * if the head was at seq - 1 (compare-and-set; PARLEY_EINVAL otherwise, and
 * nothing changes).  Meant to run in the transaction that stores message
 * seq, so that the sequence number, the message and the head move
 * together.  parley_store_next_seq does not keep the head: use one or the
 * other on a channel. */
PARLEY_NODISCARD int parley_store_chain_advance(struct parley_store *s,
                                                const char *channel,
                                                uint64_t seq,
                                                const uint8_t hash[32])
    PARLEY_NONNULL(1, 2, 4);
/* Calls cb for each of this peer's channels whose head has a chain value,
 * in channel order.  cb returning non-zero stops the walk (that value is
 * returned). */
PARLEY_NODISCARD int parley_store_chain_heads(struct parley_store *s,
                                              parley_store_head_cb cb,
                                              void *ctx) PARLEY_NONNULL(1, 2);
/* The chain value after message seq of publisher on channel: the stored
 * message's chain value, else a stored checkpoint at exactly seq.  A
 * message stored without one (before schema v2) gives 32 zero bytes.
 * PARLEY_ENOTFOUND if neither is stored.  OUT: hash. */
PARLEY_NODISCARD int parley_store_chain_at(struct parley_store *s,
                                           const uint8_t publisher[32],
                                           const char *channel, uint64_t seq,
                                           uint8_t hash[32])
    PARLEY_NONNULL(1, 2, 3, 5);

/* Stores a checkpoint (not verified here: the caller verifies first).
 * PARLEY_EEXIST if one for (publisher, channel, seq) is already stored
 * (the stored one is kept). */
PARLEY_NODISCARD int parley_store_checkpoint_put(
    struct parley_store *s, const struct parley_store_checkpoint *cp)
    PARLEY_NONNULL(1, 2);
/* Finds a checkpoint of publisher on channel with lo <= seq <= hi: the
 * lowest such seq, or the highest when newest is non-zero.
 * PARLEY_ENOTFOUND if there is none.  OUT: *seq, hash, sig (may be NULL). */
PARLEY_NODISCARD int parley_store_checkpoint_find(struct parley_store *s,
                                                  const uint8_t publisher[32],
                                                  const char *channel,
                                                  uint64_t lo, uint64_t hi,
                                                  int newest, uint64_t *seq,
                                                  uint8_t hash[32],
                                                  uint8_t sig[64])
    PARLEY_NONNULL(1, 2, 3, 7);

/* For each publisher with at least one checkpoint on channel (at most
 * limit publishers, 0 = all, ordered by key): the highest message seq
 * stored (0 if none) and the highest checkpoint seq stored.  Costs one
 * index probe per publisher. */
PARLEY_NODISCARD int parley_store_sync_summary(struct parley_store *s,
                                               const char *channel,
                                               uint32_t limit,
                                               parley_store_summary_cb cb,
                                               void *ctx)
    PARLEY_NONNULL(1, 2, 4);
/* The first run of sequence numbers in [from, to] for which no message of
 * publisher on channel is stored.  OUT: *gap_from, *gap_to (inclusive).
 * PARLEY_ENOTFOUND when every seq in the range is stored; PARLEY_EINVAL if
 * from is 0 or to < from.  The walk is linear in the stored run before the
 * gap. */
PARLEY_NODISCARD int parley_store_seq_gap(struct parley_store *s,
                                          const uint8_t publisher[32],
                                          const char *channel, uint64_t from,
                                          uint64_t to, uint64_t *gap_from,
                                          uint64_t *gap_to)
    PARLEY_NONNULL(1, 2, 3, 6, 7);
/* Calls cb for the stored messages of publisher on channel with from <=
 * seq <= to, in seq order (at most limit, 0 = all).  cb returning non-zero
 * stops the walk (that value is returned). */
PARLEY_NODISCARD int parley_store_seq_range(struct parley_store *s,
                                            const uint8_t publisher[32],
                                            const char *channel,
                                            uint64_t from, uint64_t to,
                                            uint32_t limit,
                                            parley_store_msg_cb cb, void *ctx)
    PARLEY_NONNULL(1, 2, 3, 7);

/* ---- Key verification and end-to-end replay windows (schema v3) ---- */

/* A key the user pinned (`parley trust`).  In callbacks the pointers are
 * SQLite's, valid only during the call. */
struct parley_store_pin {
  const uint8_t *pk;  /* 32 */
  const char *name;   /* contact name, "" for none; unique among pins */
  const char *addr;   /* address last seen for this key, "" if unknown */
  const char *safety; /* safety number shown when it was pinned */
  int64_t since_ms;   /* when it was pinned */
};
typedef int (*parley_store_pin_cb)(void *ctx, const struct parley_store_pin *p);
/* One key with a count (parley_store_outbox_by_recipient). */
typedef int (*parley_store_count_cb)(void *ctx, const uint8_t key[32],
                                     uint64_t n);

/* Pins p->pk (inserting, or replacing name, addr and safety of an existing
 * pin; since_ms is kept from the first pin).  name and addr may be "" but
 * not NULL; name <= PARLEY_MAX_NAME, addr <= PARLEY_MAX_ADDR bytes.
 * PARLEY_EEXIST if another key is pinned under the same non-empty name
 * (nothing changes), PARLEY_EINVAL for bad arguments. */
PARLEY_NODISCARD int parley_store_pin_put(struct parley_store *s,
                                          const struct parley_store_pin *p)
    PARLEY_NONNULL(1, 2);
/* Removes the pin of pk.  PARLEY_ENOTFOUND if there is none. */
PARLEY_NODISCARD int parley_store_pin_del(struct parley_store *s,
                                          const uint8_t pk[32])
    PARLEY_NONNULL(1, 2);
/* Records the address last seen for a pinned key (no-op if not pinned). */
PARLEY_NODISCARD int parley_store_pin_addr(struct parley_store *s,
                                           const uint8_t pk[32],
                                           const char *addr)
    PARLEY_NONNULL(1, 2, 3);
/* Private topics (schema v4): the key blobs this peer received, each
 * sealed to its own key (crypto/groupkey.h).  put replaces the blob of
 * (topic, epoch); topic is 1..PARLEY_MAX_TOPIC bytes, epoch >= 1, blob
 * 1..4096 bytes (PARLEY_EINVAL otherwise).  list calls cb for every blob
 * in (topic, epoch) order; pointers are valid during the call only; cb
 * returning non-zero stops the walk (that value is returned). */
PARLEY_NODISCARD int parley_store_topic_key_put(struct parley_store *s,
                                                const char *topic,
                                                uint32_t epoch,
                                                const uint8_t *blob,
                                                size_t len)
    PARLEY_NONNULL(1, 2, 4);
typedef int (*parley_store_topic_key_cb)(void *ctx, const char *topic,
                                         uint32_t epoch, const uint8_t *blob,
                                         size_t len);
PARLEY_NODISCARD int parley_store_topic_key_list(struct parley_store *s,
                                                 parley_store_topic_key_cb cb,
                                                 void *ctx)
    PARLEY_NONNULL(1, 2);

/* Durability of commits.  PARLEY_STORE_SYNC_FULL (the default after
 * open): a commit returns once the WAL is on stable storage (fsync), so an
 * acknowledged message survives a power cut.  PARLEY_STORE_SYNC_OS: the
 * WAL is written but synced only at checkpoints; a commit survives a
 * crash of the process, the last ones may be lost with the machine.
 * PARLEY_EINVAL for another value. */
#define PARLEY_STORE_SYNC_FULL 0
#define PARLEY_STORE_SYNC_OS 1
PARLEY_NODISCARD int parley_store_set_sync(struct parley_store *s, int mode)
    PARLEY_NONNULL(1);

/* Per-topic options (schema v5): whether a topic keeps history (1, the
 * default for topics never set) or not (0).  set: topic 1..PARLEY_MAX_TOPIC
 * bytes (PARLEY_EINVAL otherwise).  list: every topic set, in name order;
 * cb returning non-zero stops the walk (that value is returned). */
PARLEY_NODISCARD int parley_store_topic_history_set(struct parley_store *s,
                                                    const char *topic,
                                                    int keep)
    PARLEY_NONNULL(1, 2);
typedef int (*parley_store_topic_opt_cb)(void *ctx, const char *topic,
                                         int history);
PARLEY_NODISCARD int parley_store_topic_history_list(
    struct parley_store *s, parley_store_topic_opt_cb cb, void *ctx)
    PARLEY_NONNULL(1, 2);

/* Calls cb for every pin, oldest first; cb returning non-zero stops the
 * walk (that value is returned). */
PARLEY_NODISCARD int parley_store_pin_list(struct parley_store *s,
                                           parley_store_pin_cb cb, void *ctx)
    PARLEY_NONNULL(1, 2);

/* The replay window (crypto/e2e.h struct parley_replay, as two integers)
 * of direct messages from publisher on channel.  OUT: *top, *seen; both 0
 * (an empty window) when none is stored. */
PARLEY_NODISCARD int parley_store_replay_get(struct parley_store *s,
                                             const uint8_t publisher[32],
                                             const char *channel,
                                             uint64_t *top, uint64_t *seen)
    PARLEY_NONNULL(1, 2, 3, 4, 5);
/* Stores the window (insert or replace).  top must be <= INT64_MAX; seen
 * is stored bit for bit. */
PARLEY_NODISCARD int parley_store_replay_put(struct parley_store *s,
                                             const uint8_t publisher[32],
                                             const char *channel,
                                             uint64_t top, uint64_t seen)
    PARLEY_NONNULL(1, 2, 3);

/* The recipients with the most outbox rows (batched deliveries included),
 * most first (ties by key), at most limit of them (0 = all):
 * cb(ctx, recipient, rows). */
PARLEY_NODISCARD int parley_store_outbox_by_recipient(
    struct parley_store *s, uint32_t limit, parley_store_count_cb cb,
    void *ctx) PARLEY_NONNULL(1, 3);

/* Peer cache: the last address and name seen for a key, and when. */
PARLEY_NODISCARD int parley_store_peer_seen(struct parley_store *s,
                                            const uint8_t pk[32],
                                            const char *addr,
                                            const char *name,
                                            int64_t now_ms)
    PARLEY_NONNULL(1, 2);
/* OUT: addr/name copied NUL-terminated into the caller's buffers (each of
 * at least 128 bytes), *last_seen_ms.  PARLEY_ENOTFOUND if unknown. */
PARLEY_NODISCARD int parley_store_peer_get(struct parley_store *s,
                                           const uint8_t pk[32], char *addr,
                                           char *name, int64_t *last_seen_ms)
    PARLEY_NONNULL(1, 2, 3, 4, 5);

#endif
