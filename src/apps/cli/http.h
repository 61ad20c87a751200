/*
 * http.h — the CLI's only way to reach parleyd: one blocking HTTP request on
 * libcurl's easy interface, with the bearer token, fixed connect timeout,
 * no proxy, no redirects, and plain http only.
 *
 * A request either buffers the whole answer (capped) or streams a 2xx body
 * into a sink as it arrives (NDJSON listings, the SSE stream).  Error bodies
 * (non-2xx) are always buffered (capped at PARLEY_CLI_HTTP_ERRBODY) so that
 * the caller can print the daemon's "error" text.
 */
#ifndef PARLEY_APPS_CLI_HTTP_H
#define PARLEY_APPS_CLI_HTTP_H

#include <signal.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"

/* Cap of a buffered 2xx answer, and of a kept error body. */
#define PARLEY_CLI_HTTP_MAXBODY (16u * 1024u * 1024u)
#define PARLEY_CLI_HTTP_ERRBODY (64u * 1024u)
#define PARLEY_CLI_CONNECT_TIMEOUT_MS 2000L

/* Where the daemon listens, from DIR/api.json. */
struct parley_cli_api {
  char addr[PARLEY_MAX_ADDR + 1]; /* "127.0.0.1:40123" or "[::1]:40123" */
  char token[160];
};

/* Receives n bytes of a 2xx body; a negative return aborts the transfer and
 * becomes parley_cli_http_do's result. */
typedef int (*parley_cli_sink_cb)(void *ctx, const char *p, size_t n);

struct parley_cli_http_req {
  const char *method;    /* "GET" or "POST" */
  const char *path;      /* "/v1/messages?topic=news", already escaped */
  const char *body;      /* JSON text sent with POST, or NULL */
  long timeout_ms;       /* whole request; 0: none */
  parley_cli_sink_cb sink; /* NULL: buffer a 2xx body in resp->body */
  void *sink_ctx;
  /* When non-NULL and it becomes non-zero (a signal handler sets it), the
   * transfer stops within about a second: PARLEY_ECANCELED. */
  volatile sig_atomic_t *stop;
};

struct parley_cli_http_resp {
  long status;          /* HTTP status; 0 when no answer came */
  int connected;        /* 1 once the TCP connection was established */
  int curl_rc;          /* CURLcode of the transfer */
  char error[256];      /* curl's message when curl_rc != 0 */
  struct parley_buf body; /* the buffered body (NUL-terminated) */
};

/* Must be called once before any request (curl_global_init), and
 * parley_cli_http_global_close at the end. */
PARLEY_NODISCARD int parley_cli_http_global_init(void);
void parley_cli_http_global_close(void);

/* Performs req against api.  resp is written (caller closes it with
 * parley_cli_http_resp_close, even on failure).  Returns PARLEY_OK when an
 * HTTP answer arrived completely, whatever its status; PARLEY_ECONNECT when
 * the transfer failed (details in resp->curl_rc, error, connected, status);
 * PARLEY_ECANCELED when stopped through req->stop; PARLEY_ETOOBIG when a
 * buffered body passed PARLEY_CLI_HTTP_MAXBODY; a sink's negative value;
 * PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_cli_http_do(const struct parley_cli_api *api,
                                        const struct parley_cli_http_req *req,
                                        struct parley_cli_http_resp *resp)
    PARLEY_NONNULL(1, 2, 3);

void parley_cli_http_resp_close(struct parley_cli_http_resp *resp)
    PARLEY_NONNULL(1);

/* Appends "?key=value" (first parameter: q is empty or holds no '?') or
 * "&key=value" to q, percent-encoding value (everything but A-Z a-z 0-9
 * - . _ ~).  q holds a NUL-terminated path.  PARLEY_ETOOBIG, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_cli_query_add(struct parley_buf *q,
                                          const char *key, const char *value)
    PARLEY_NONNULL(1, 2, 3);

#endif
