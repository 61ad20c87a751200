/*
 * parley/parley.h — libparley: a Parley peer inside your program.
 *
 * One struct parley is one peer, the same as a parleyd process: its own
 * identity and store in a data directory, links to other peers, a link to
 * the index.  It runs on a libuv loop the application owns; every
 * callback below is called on that loop, never from another thread, and
 * every function must be called from it.
 *
 *     uv_loop_t loop;  uv_loop_init(&loop);
 *     struct parley_options o = {.loop = &loop, .data_dir = "/var/lib/app",
 *                                .index = "10.0.0.1:7400"};
 *     struct parley *p;
 *     if (parley_open(&o, &p) < 0) ...
 *     parley_on_message(p, on_message, app);
 *     parley_subscribe(p, "orders", NULL, NULL);
 *     parley_publish(p, "orders", "hi", 2, PARLEY_MODE_ACK, on_done, app);
 *     uv_run(&loop, UV_RUN_DEFAULT);     // until parley_close + handles end
 *
 * Errors are negative numbers (0 is success); parley_errstr names them.
 * Link with the libparley CMake target (it brings libuv, libsodium, SQLite,
 * libmicrohttpd and jansson).  The peer also serves the local HTTP API
 * (docs/API.md) on options.api, so `parley` commands work against an
 * embedded peer too.
 */
#ifndef PARLEY_PARLEY_H
#define PARLEY_PARLEY_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* <uv.h> under -std=c11 */
#endif
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

struct parley;

struct parley_options {
  uv_loop_t *loop;      /* required; borrowed */
  const char *data_dir; /* required; created (0700) if missing */
  const char *index;    /* required: "HOST:PORT[,HOST:PORT...]" */
  const char *name;     /* display name, or NULL */
  const char *listen;   /* peer links, NULL = 127.0.0.1, any port */
  const char *api;      /* local HTTP API, NULL = 127.0.0.1, any port */
  uint32_t max_message; /* bytes, 0 = the default (1 MiB) */
  /* Abuse resistance: messages one peer may send this one per second
   * before they are refused (acked: retried later; fire-and-forget:
   * dropped and counted).  0 = the default (10 000). */
  uint32_t peer_rate;
  /* 0 (default): a stored message is on stable storage (fsync) before it
   * is acknowledged; 1: written to the OS, synced at checkpoints: it
   * survives a crash of the process, not of the machine, and the stored
   * path is several times faster. */
  int sync_os;
};

/* A received message.  Everything is borrowed for the callback's
 * duration only.  Private-topic and direct messages arrive opened. */
struct parley_message {
  const char *topic;        /* NUL-terminated; NULL for a direct message */
  const uint8_t *from;      /* 32-byte public key of the publisher */
  uint64_t seq;             /* publisher's sequence number on the topic */
  int64_t ts_ms;            /* publisher's clock, Unix ms */
  const void *body;
  size_t len;
  int binary;               /* 1 if the body is not UTF-8 text */
};

enum parley_mode {
  PARLEY_MODE_ASYNC = 0, /* fire-and-forget */
  PARLEY_MODE_ACK = 1,   /* at-least-once: retried until each subscriber
                            stored it, across restarts */
  PARLEY_MODE_SYNC = 2   /* as ACK; the callback waits for every answer */
};

typedef void (*parley_message_cb)(void *ctx, const struct parley_message *m);
/* status: 0 = done (ASYNC: handed to the links; ACK/SYNC: every subscriber
 * stored it), else why not (timed out: the rest stay queued; refused).
 * subscribers / acked / refused count the subscribers of the publish. */
typedef void (*parley_publish_cb)(void *ctx, int status, unsigned subscribers,
                                  unsigned acked, unsigned refused);
/* status: 0, or why the index refused (a private topic, too many). */
typedef void (*parley_status_cb)(void *ctx, int status);

/* Opens (or creates) the peer and starts it on o->loop.  OUT: *out. */
int parley_open(const struct parley_options *o, struct parley **out);
/* Starts an orderly shutdown (the store is committed, links closed); keep
 * running the loop until it has no more handles.  NULL is a no-op. */
void parley_close(struct parley *p);

/* The peer's id: 52 characters of base32 of its public key. */
const char *parley_id(const struct parley *p);
/* 1 once registered with an index node (publishing reaches subscribers
 * from then on), else 0. */
int parley_ready(const struct parley *p);

/* Every message this peer receives on its subscriptions, and direct
 * messages to it, after they are stored.  One callback per peer. */
void parley_on_message(struct parley *p, parley_message_cb cb, void *ctx);

/* Subscriptions persist across restarts.  cb (may be NULL) reports the
 * index's answer, or 0 at once when the index is not reachable (sent when
 * it is).  Returns 0 or an error found before asking. */
int parley_subscribe(struct parley *p, const char *topic,
                     parley_status_cb cb, void *ctx);
int parley_unsubscribe(struct parley *p, const char *topic,
                       parley_status_cb cb, void *ctx);

/* Publishes len bytes (binary unless valid UTF-8) on topic.  cb may be
 * NULL.  timeout_ms bounds how long ACK/SYNC wait (0 = 10 s); what is not
 * acknowledged stays queued and is retried.  Returns 0 (cb follows), or an
 * error (cb is not called). */
int parley_publish(struct parley *p, const char *topic, const void *body,
                   size_t len, enum parley_mode mode, uint64_t timeout_ms,
                   parley_publish_cb cb, void *ctx);

/* Topics without history: keep = 0 makes this peer neither store the
 * topic's messages nor wait for them to be stored: publishing is
 * fire-and-forget only (ACK and SYNC are refused) and received messages go
 * to the message callback (and the API's live streams) only.  Set it on
 * every peer that publishes or subscribes to the topic; it persists across
 * restarts.  keep = 1 (the default) stores everything. */
int parley_set_history(struct parley *p, const char *topic, int keep);

/* Bytes queued on this peer's links, not yet written to the network.  A
 * publisher that produces faster than the network drains can wait (run
 * the loop) while it is high: fire-and-forget messages over a link's limit
 * are dropped and counted (parley_backpressure_total). */
size_t parley_backlog(const struct parley *p);

/* A short English description of an error code. */
const char *parley_errstr(int rc);

#ifdef __cplusplus
}
#endif
#endif
