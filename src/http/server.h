/*
 * server.h — an HTTP/1.1 server for libuv daemons, on libmicrohttpd.
 *
 * libmicrohttpd runs in "external select" mode with its epoll backend
 * (MHD_USE_EPOLL): its epoll fd is watched by a uv_poll handle and a uv
 * timer follows MHD_get_timeout, so MHD_run happens on the daemon's own
 * loop thread and handlers may touch daemon state without locks.
 *
 * The handler is called once per request, after the whole body arrived
 * (bodies over max_body are refused with 413 before the handler runs).  It
 * must answer with exactly one of:
 *   - parley_http_respond (now, or later after parley_http_suspend: a
 *     suspended request is answered from any later loop callback);
 *   - parley_http_stream_start, then any number of parley_http_stream_write
 *     and finally parley_http_stream_end (server-sent events and other
 *     long responses; writes while the client is slow are buffered up to
 *     max_stream_buffer, past which the stream is ended).
 * If the client goes away first, the request's close callback (if set)
 * runs and the request must not be used afterwards.
 */
#ifndef PARLEY_HTTP_SERVER_H
#define PARLEY_HTTP_SERVER_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"

struct parley_http;
struct parley_http_req;

typedef void (*parley_http_handler)(void *ctx, struct parley_http_req *r);
typedef void (*parley_http_close_cb)(void *data, struct parley_http_req *r);

struct parley_http_config {
  uv_loop_t *loop;              /* borrowed */
  const struct parley_log *log; /* borrowed, may be NULL */
  const char *host;             /* numeric IPv4/IPv6 address */
  uint16_t port;                /* 0 = ephemeral */
  size_t max_body;              /* 0 = PARLEY_MAX_HTTP_BODY */
  uint32_t max_conns;           /* 0 = 256 */
  uint32_t idle_timeout_s;      /* 0 = 30; slow clients are cut off */
  size_t max_stream_buffer;     /* 0 = 4 MiB */
  parley_http_handler handler;
  void *ctx;
};

struct parley_http_stats {
  uint64_t requests;
  uint64_t responses_2xx, responses_4xx, responses_5xx;
  uint64_t refused; /* over-size, bad requests refused before the handler */
  uint64_t streams_open;
};

PARLEY_NODISCARD int parley_http_new(const struct parley_http_config *cfg,
                                     struct parley_http **out)
    PARLEY_NONNULL(1, 2);
/* Stops listening, ends open streams and frees (handles close through the
 * loop: run it afterwards).  NULL is a no-op. */
void parley_http_free(struct parley_http *h);
uint16_t parley_http_port(const struct parley_http *h) PARLEY_NONNULL(1);
const struct parley_http_stats *parley_http_stats(const struct parley_http *h)
    PARLEY_NONNULL(1);

/* Hands an already connected socket to the server, as if it had been
 * accepted (the server owns fd afterwards, also on failure).  Used to feed
 * the request handling from a socketpair in the HTTP fuzz target.
 * PARLEY_EIO if libmicrohttpd refuses it (e.g. the connection limit). */
PARLEY_NODISCARD int parley_http_add_connection(struct parley_http *h, int fd)
    PARLEY_NONNULL(1);

/* Request accessors (valid until the response is queued). */
const char *parley_http_method(const struct parley_http_req *r)
    PARLEY_NONNULL(1);
const char *parley_http_path(const struct parley_http_req *r) PARLEY_NONNULL(1);
/* Query argument or NULL; "" if present without value. */
const char *parley_http_query(const struct parley_http_req *r,
                              const char *name) PARLEY_NONNULL(1, 2);
/* Calls cb for every query argument in order (repeated keys included). */
void parley_http_query_each(const struct parley_http_req *r,
                            void (*cb)(void *ctx, const char *k,
                                       const char *v),
                            void *ctx) PARLEY_NONNULL(1, 2);
const char *parley_http_header(const struct parley_http_req *r,
                               const char *name) PARLEY_NONNULL(1, 2);
const uint8_t *parley_http_body(const struct parley_http_req *r, size_t *len)
    PARLEY_NONNULL(1, 2);
/* The client's numeric address ("127.0.0.1", "::1"), NUL-terminated in
 * out[cap].  PARLEY_ENOTFOUND if MHD does not know it (a socketpair). */
PARLEY_NODISCARD int parley_http_remote_ip(const struct parley_http_req *r,
                                           char *out, size_t cap)
    PARLEY_NONNULL(1, 2);
/* Number of request headers (for a limit on header count). */
size_t parley_http_header_count(const struct parley_http_req *r)
    PARLEY_NONNULL(1);

/* Answers.  body is copied.  Extra headers: NULL or a NULL-terminated list
 * of name, value pairs. */
void parley_http_respond(struct parley_http_req *r, unsigned status,
                         const char *content_type, const void *body,
                         size_t len, const char *const *headers)
    PARLEY_NONNULL(1, 3);
/* Keeps the request open to answer later with parley_http_respond. */
void parley_http_suspend(struct parley_http_req *r) PARLEY_NONNULL(1);
/* Per-request context and close notification (client went away, or the
 * server is shutting down, before the response completed). */
void parley_http_set_close_cb(struct parley_http_req *r,
                              parley_http_close_cb cb, void *data)
    PARLEY_NONNULL(1);

PARLEY_NODISCARD int parley_http_stream_start(struct parley_http_req *r,
                                              unsigned status,
                                              const char *content_type)
    PARLEY_NONNULL(1, 3);
/* PARLEY_ELIMIT if the client is too slow (the stream is ended). */
PARLEY_NODISCARD int parley_http_stream_write(struct parley_http_req *r,
                                              const void *data, size_t len)
    PARLEY_NONNULL(1, 2);
void parley_http_stream_end(struct parley_http_req *r) PARLEY_NONNULL(1);

#endif
