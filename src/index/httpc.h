/*
 * httpc.h — an asynchronous HTTP(S) client on the index's libuv loop, for
 * the webhooks (webhook.h) and for a follower fetching the dashboard from
 * its leader (server_dash.c).
 *
 * It is libcurl's multi interface driven by the loop: curl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION: one uv_poll handle each) and
 * when to call it back (CURLMOPT_TIMERFUNCTION: one uv_timer), and every
 * readiness event is handed to curl_multi_socket_action.  Nothing blocks
 * the loop; name resolution is curl's own asynchronous resolver.
 *
 * Every transfer is locked down the same way: only http:// and https://
 * (CURLOPT_PROTOCOLS_STR, redirects not followed), never through a proxy
 * (the environment's *_proxy variables are ignored), TLS peers verified
 * against the system CA store or the configured ca_file, a whole-transfer
 * and a connect timeout, no "Expect: 100-continue", and at most
 * max_response body bytes kept (a longer answer fails the transfer).
 *
 * Callbacks run on the loop thread.  The client must not be freed from
 * inside one of its own callbacks.
 */
#ifndef PARLEY_INDEX_HTTPC_H
#define PARLEY_INDEX_HTTPC_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"

#define PARLEY_HTTPC_MAX_URL 1024
#define PARLEY_HTTPC_MAX_HEADERS 16

struct parley_httpc;
struct parley_httpc_xfer;

struct parley_httpc_config {
  uv_loop_t *loop;              /* borrowed */
  const struct parley_log *log; /* borrowed, may be NULL */
  const char *ca_file;          /* copied; PEM file of trusted CAs for
                                   https; NULL = the system store */
  const char *user_agent;       /* copied; NULL = "parley-index" */
  size_t max_transfers;         /* in flight at once; 0 = 256 */
};

struct parley_httpc_request {
  const char *method;         /* "GET" or "POST" */
  const char *url;            /* http:// or https://, < PARLEY_HTTPC_MAX_URL */
  const char *const *headers; /* "Name: value" lines, NULL-terminated
                                 (at most PARLEY_HTTPC_MAX_HEADERS); may be
                                 NULL; copied */
  const void *body;           /* POST body, copied; may be NULL */
  size_t body_len;
  unsigned timeout_ms;        /* the whole transfer; 0 = 5000 */
  unsigned connect_timeout_ms; /* 0 = the smaller of timeout_ms and 3000 */
  size_t max_response;        /* body bytes kept; 0 = 64 KiB */
};

/* The outcome of a transfer; everything is valid during the callback only.
 *   rc PARLEY_OK:        an answer arrived (any status: check status);
 *   PARLEY_ETIMEDOUT:    no complete answer within timeout_ms;
 *   PARLEY_ECONNECT:     name resolution, connection or TLS failed;
 *   PARLEY_ETOOBIG:      the body was longer than max_response;
 *   PARLEY_ECANCELED:    cancelled, or the client is being freed;
 *   PARLEY_EIO:          anything else curl reports.
 * error is a one-line reason for rc < 0 ("" on success). */
struct parley_httpc_response {
  int rc;
  long status;      /* HTTP status, 0 without one */
  const char *body; /* NUL-terminated */
  size_t body_len;
  const char *error;
};

typedef void (*parley_httpc_cb)(void *ctx,
                                const struct parley_httpc_response *res);

/* OUT: *out.  PARLEY_EINVAL (no loop, ca_file unreadable), PARLEY_ENOMEM,
 * PARLEY_EIO (libcurl could not start). */
PARLEY_NODISCARD int parley_httpc_new(const struct parley_httpc_config *cfg,
                                      struct parley_httpc **out)
    PARLEY_NONNULL(1, 2);

/* Cancels every transfer (each callback runs with PARLEY_ECANCELED before
 * this returns) and closes the handles; done(ctx) runs from the loop once
 * the memory is released (done may be NULL).  NULL c: a no-op, done is not
 * called. */
void parley_httpc_free(struct parley_httpc *c, void (*done)(void *ctx),
                       void *ctx);

/* Starts a transfer.  On PARLEY_OK cb runs exactly once, later (never from
 * inside this call); OUT: *out (may be NULL) names the transfer until then,
 * for parley_httpc_cancel.  On an error cb never runs: PARLEY_EINVAL (bad
 * method, URL or headers), PARLEY_ELIMIT (max_transfers in flight),
 * PARLEY_ENOMEM, PARLEY_EIO. */
PARLEY_NODISCARD int parley_httpc_start(struct parley_httpc *c,
                                        const struct parley_httpc_request *rq,
                                        parley_httpc_cb cb, void *ctx,
                                        struct parley_httpc_xfer **out)
    PARLEY_NONNULL(1, 2, 3);

/* Ends a transfer early: its callback runs with PARLEY_ECANCELED before
 * this returns, and x is gone afterwards.  Not from inside a callback of
 * the same client. */
void parley_httpc_cancel(struct parley_httpc_xfer *x) PARLEY_NONNULL(1);

/* Transfers in flight. */
size_t parley_httpc_pending(const struct parley_httpc *c) PARLEY_NONNULL(1);

#endif
