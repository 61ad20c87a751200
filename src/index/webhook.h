/*
 * webhook.h — alert notifications POSTed to operator-configured URLs,
 * signed, retried, without ever blocking the loop.
 *
 * Each parley_webhook_post queues one delivery per configured URL.  A
 * delivery is an HTTP/1.1 POST of a JSON body to an http:// or https://
 * URL, made by the loop's libcurl client (httpc.h: no proxy, redirects not
 * followed, TLS verified against the system CA store or ca_file), with
 *
 *   Content-Type: application/json
 *   X-Parley-Event: firing | resolved
 *   X-Parley-Delivery: 16 hex digits, the same on every retry
 *   X-Parley-Signature: sha256=<hex HMAC-SHA-256 of the body, keyed with
 *                       the secret>        (only when a secret is set)
 *
 * A 2xx status is success.  Anything else — another status, a refused or
 * reset connection, a failed TLS handshake or certificate check, no
 * complete answer within timeout_ms, an answer body over 16 KiB — is a
 * failure, retried after base_delay_ms, 2x, 4x ... (capped at 60 s) until
 * max_attempts attempts were made; then it is dropped and logged at WARN.
 * The receiver verifies the signature by computing the same HMAC over the
 * raw body it received and comparing in constant time.
 * docs/internals/DASHBOARD.md, "Webhooks".
 */
#ifndef PARLEY_INDEX_WEBHOOK_H
#define PARLEY_INDEX_WEBHOOK_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"

#define PARLEY_WEBHOOK_MAX_URLS 8
#define PARLEY_WEBHOOK_MAX_URL 512
/* "sha256=" + 64 hex digits + NUL */
#define PARLEY_WEBHOOK_SIG_LEN (7 + 64 + 1)

struct parley_webhook;

struct parley_webhook_config {
  uv_loop_t *loop;              /* borrowed */
  const struct parley_log *log; /* borrowed, may be NULL */
  const char *const *urls;      /* copied; http[s]://HOST[:PORT][/PATH] */
  size_t nurls;                 /* 1..PARLEY_WEBHOOK_MAX_URLS */
  const uint8_t *secret;        /* copied; NULL = unsigned deliveries */
  size_t secret_len;
  const char *user_agent;       /* NULL = "parley-index" */
  unsigned max_attempts;        /* 0 = 5 */
  unsigned base_delay_ms;       /* 0 = 1000 */
  unsigned timeout_ms;          /* per attempt; 0 = 5000 */
  const char *ca_file;          /* PEM CAs trusted for https (copied);
                                   NULL = the system store */
  size_t max_queue;             /* deliveries in flight; 0 = 256 */
};

struct parley_webhook_stats {
  uint64_t delivered; /* answered 2xx */
  uint64_t retries;   /* attempts after a failed one */
  uint64_t failed;    /* given up after max_attempts */
  uint64_t dropped;   /* not queued: the queue was full */
  uint64_t pending;   /* gauge: deliveries not finished */
};

/* Checks and copies the configuration.  OUT: *out.  PARLEY_EINVAL (a URL
 * that is not http[s]://HOST[:PORT][/PATH], too many URLs, an unreadable
 * ca_file), PARLEY_ENOMEM, PARLEY_EIO (libcurl could not start). */
PARLEY_NODISCARD int parley_webhook_new(
    const struct parley_webhook_config *cfg, struct parley_webhook **out)
    PARLEY_NONNULL(1, 2);

/* Cancels every delivery and closes the handles; done(ctx) runs once the
 * memory is released (later, from the loop; done may be NULL).  NULL w: a
 * no-op and done is not called. */
void parley_webhook_free(struct parley_webhook *w, void (*done)(void *ctx),
                         void *ctx);

/* Queues body (len bytes, copied) for every URL.  event is the
 * X-Parley-Event value ([a-z_]+).  PARLEY_ELIMIT if the queue is full
 * (counted as dropped), PARLEY_EINVAL, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_webhook_post(struct parley_webhook *w,
                                         const char *event, const void *body,
                                         size_t len) PARLEY_NONNULL(1, 2, 3);

void parley_webhook_get_stats(const struct parley_webhook *w,
                              struct parley_webhook_stats *out)
    PARLEY_NONNULL(1, 2);

/* "sha256=<hex>" of HMAC-SHA-256(secret, body) into out. */
void parley_webhook_sign(const uint8_t *secret, size_t secret_len,
                         const void *body, size_t len,
                         char out[PARLEY_WEBHOOK_SIG_LEN])
    PARLEY_NONNULL(5);

/* Delay before attempt n+1 after n failed attempts (n >= 1). */
uint64_t parley_webhook_backoff_ms(unsigned base_ms, unsigned n);

/* A webhook URL taken apart. */
struct parley_webhook_url {
  int tls;       /* https */
  char host[256]; /* without brackets for IPv6 */
  uint16_t port; /* 80 / 443 by default */
  char path[PARLEY_WEBHOOK_MAX_URL]; /* "/" by default; may hold a query */
};

/* Checks and splits http[s]://HOST[:PORT][/PATH][?QUERY] (an IPv6 host in
 * brackets; no user info, no fragment, printable ASCII only).
 * PARLEY_EINVAL otherwise. */
PARLEY_NODISCARD int parley_webhook_parse_url(const char *url,
                                              struct parley_webhook_url *out)
    PARLEY_NONNULL(1, 2);

#endif
