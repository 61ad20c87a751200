/*
 * node.h — a Parley peer: the whole of parleyd as a library object.
 *
 * A node owns, on one libuv loop: its identity (DIR/identity.key), its
 * store (DIR/store.db), a listener for peer links, a link to one index node
 * at a time (failing over through the configured list), the local HTTP API
 * (token in DIR/api.json) and the timers that heartbeat, retry the outbox
 * and expire what is past retention.  Applications embed a peer by filling
 * a struct parley_node_config, calling parley_node_new and running the
 * loop; parleyd's main() does exactly that.
 */
#ifndef PARLEY_PEER_NODE_H
#define PARLEY_PEER_NODE_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"

#define PARLEY_NODE_MAX_INDEX 8

struct parley_node;

struct parley_node_config {
  uv_loop_t *loop;              /* borrowed */
  const struct parley_log *log; /* borrowed, may be NULL */
  const char *data_dir;         /* created if missing (mode 0700) */
  const char *name;             /* display name; NULL = "" */
  const char *index[PARLEY_NODE_MAX_INDEX]; /* "HOST:PORT" of index nodes */
  size_t nindex;
  const char *listen;           /* "HOST:PORT" for peer links; NULL = 127.0.0.1:0 */
  const char *advertise;        /* address told to others; NULL = the bound one */
  const char *api;              /* "HOST:PORT" of the HTTP API; NULL = 127.0.0.1:0 */
  uint32_t max_frame;           /* 0 = PARLEY_DEFAULT_MAX_FRAME */
  uint32_t max_message;         /* 0 = PARLEY_DEFAULT_MAX_MESSAGE */
  uint32_t max_topic;           /* 0 = PARLEY_DEFAULT_MAX_TOPIC */
  uint32_t max_links;           /* 0 = PARLEY_DEFAULT_MAX_LINKS */
  uint32_t max_subs;            /* 0 = PARLEY_DEFAULT_MAX_SUBS */
  uint32_t max_outbox;          /* 0 = PARLEY_DEFAULT_MAX_OUTBOX */
  uint64_t retention_ms;        /* 0 = 24 h */
  /* Abuse resistance: MSG frames one peer may send us per second, and how
   * many it may save up (token bucket).  Over it, acked messages are
   * answered ELIMIT (the publisher retries later), fire-and-forget ones
   * dropped; both are counted in /metrics. */
  uint32_t peer_rate;           /* 0 = PARLEY_NODE_DEFAULT_PEER_RATE */
  /* 0: every store commit is fsynced before what it covers is
   * acknowledged (survives power loss); 1: written to the OS only,
   * synced at checkpoints (survives a crash of the process).  See
   * parley_store_set_sync. */
  int sync_os;
  uint32_t peer_burst;          /* 0 = twice peer_rate */
  /* The identity key's passphrase (crypto/keyfile.h): borrowed during
   * parley_node_new only, never copied.  NULL: a plain key file (one that
   * is protected is then refused with PARLEY_EDENIED).  With it, a new
   * identity is written encrypted, a protected one decrypted (wrong
   * passphrase: PARLEY_ECRYPTO), a plain one refused (PARLEY_EINVAL). */
  const char *passphrase;
  size_t passphrase_len;
  /* Argon2id costs for a new protected key file; 0, 0 = libsodium's
   * INTERACTIVE. */
  uint64_t kdf_opslimit, kdf_memlimit;
};

#define PARLEY_NODE_DEFAULT_PEER_RATE 10000u

/* Embedding (src/peer/embed.c; the public face is include/parley/parley.h).
 * A publish made through the library ends with cb(ctx, rc, subscribers,
 * acked, refused): rc is PARLEY_OK (fire-and-forget: handed to the links;
 * acknowledged modes: every subscriber stored it), PARLEY_ETIMEDOUT (not
 * every subscriber acknowledged in time; the rest stay queued), PARLEY_EDENIED
 * (some refused it), or the error that stopped it. */
typedef void (*parley_node_pub_cb)(void *ctx, int rc, unsigned subscribers,
                                   unsigned acked, unsigned refused);

/* Creates the node and starts it (listening, dialling the index).
 * Everything in cfg is copied.  OUT: *out; the caller frees it with
 * parley_node_free and then runs the loop until it has no handles left. */
PARLEY_NODISCARD int parley_node_new(const struct parley_node_config *cfg,
                                     struct parley_node **out)
    PARLEY_NONNULL(1, 2);
/* Starts an orderly shutdown: commits the store, closes links and the API.
 * NULL is a no-op. */
void parley_node_free(struct parley_node *n);

/* The node's id (52-char base32 of its public key), peer-link address and
 * API address ("HOST:PORT"), valid for the node's lifetime. */
const char *parley_node_id(const struct parley_node *n) PARLEY_NONNULL(1);
const char *parley_node_addr(const struct parley_node *n) PARLEY_NONNULL(1);
const char *parley_node_api_addr(const struct parley_node *n)
    PARLEY_NONNULL(1);

#endif
