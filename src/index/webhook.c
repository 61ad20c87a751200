/* webhook.c — signed alert POSTs with retries on libuv (webhook.h). */
#include "index/webhook.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "core/util.h"

#define RESP_CAP 512
#define MAX_BACKOFF_MS 60000u

struct target {
  char host[256];
  char port[8];
  char path[PARLEY_WEBHOOK_MAX_URL];
  char url[PARLEY_WEBHOOK_MAX_URL + 1];
};

/* One body on its way to one URL.  Owned by the webhook's list; freed once
 * its timer is closed (finish). */
struct delivery {
  struct parley_webhook *w;
  struct delivery *prev, *next;
  const struct target *to;
  char id[17];
  char *req; /* the whole HTTP request */
  size_t req_len;
  unsigned attempt;
  uv_timer_t timer; /* retry wait, or the attempt's timeout */
  uv_getaddrinfo_t gai;
  uv_connect_t conn;
  uv_write_t wr;
  uv_tcp_t tcp;
  int gai_busy, tcp_open, ending, finishing;
  int ok;
  char why[96];
  char resp[RESP_CAP];
  size_t resp_len;
};

struct parley_webhook {
  uv_loop_t *loop;
  const struct parley_log *log;
  struct target to[PARLEY_WEBHOOK_MAX_URLS];
  size_t nto;
  uint8_t *secret;
  size_t secret_len;
  char agent[64];
  unsigned max_attempts, base_delay_ms, timeout_ms;
  size_t max_queue;
  struct delivery *list;
  struct parley_webhook_stats st;
  int closing;
  void (*done)(void *ctx);
  void *done_ctx;
};

static void attempt(struct delivery *d);

/* ---- pure helpers ------------------------------------------------------- */

void parley_webhook_sign(const uint8_t *secret, size_t secret_len,
                         const void *body, size_t len,
                         char out[PARLEY_WEBHOOK_SIG_LEN]) {
  crypto_auth_hmacsha256_state st;
  uint8_t mac[crypto_auth_hmacsha256_BYTES];

  crypto_auth_hmacsha256_init(&st, secret, secret != NULL ? secret_len : 0);
  crypto_auth_hmacsha256_update(&st, body, len);
  crypto_auth_hmacsha256_final(&st, mac);
  memcpy(out, "sha256=", 7);
  parley_hex_encode(mac, sizeof mac, out + 7);
  sodium_memzero(&st, sizeof st);
}

uint64_t parley_webhook_backoff_ms(unsigned base_ms, unsigned n) {
  uint64_t d = base_ms;
  for (unsigned i = 1; i < n && d < MAX_BACKOFF_MS; i++)
    d *= 2;
  return d < MAX_BACKOFF_MS ? d : MAX_BACKOFF_MS;
}

int parley_webhook_parse_url(const char *url, char *host, size_t hostcap,
                             uint16_t *port, char *path, size_t pathcap) {
  const char *p = url, *h, *end;
  uint64_t v = 80;
  size_t n;

  if (strncmp(p, "http://", 7) != 0)
    return PARLEY_EINVAL;
  p += 7;
  h = p;
  if (*p == '[') {
    end = strchr(p, ']');
    if (end == NULL)
      return PARLEY_EINVAL;
    h = p + 1;
    n = (size_t)(end - h);
    p = end + 1;
  } else {
    n = strcspn(p, ":/?#");
    p += n;
  }
  if (n == 0 || n >= hostcap)
    return PARLEY_EINVAL;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f ||
        h[i] == '@')
      return PARLEY_EINVAL;
  memcpy(host, h, n);
  host[n] = '\0';
  if (*p == ':') {
    char num[8];
    size_t k = strcspn(p + 1, "/?#");
    if (k == 0 || k >= sizeof num)
      return PARLEY_EINVAL;
    memcpy(num, p + 1, k);
    num[k] = '\0';
    if (parley_parse_u64(num, 1, 65535, &v) < 0)
      return PARLEY_EINVAL;
    p += 1 + k;
  }
  if (*p == '#')
    return PARLEY_EINVAL;
  if (*p == '\0')
    p = "/";
  if (*p == '?') {
    if (strlen(p) + 2 > pathcap)
      return PARLEY_EINVAL;
    snprintf(path, pathcap, "/%s", p);
  } else {
    if (strlen(p) + 1 > pathcap)
      return PARLEY_EINVAL;
    memcpy(path, p, strlen(p) + 1);
  }
  for (const char *c = path; *c != '\0'; c++)
    if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '#')
      return PARLEY_EINVAL;
  *port = (uint16_t)v;
  return PARLEY_OK;
}

/* ---- lifecycle ---------------------------------------------------------- */

int parley_webhook_new(const struct parley_webhook_config *cfg,
                       struct parley_webhook **out) {
  struct parley_webhook *w;

  if (cfg->loop == NULL || cfg->nurls == 0 ||
      cfg->nurls > PARLEY_WEBHOOK_MAX_URLS || cfg->urls == NULL)
    return PARLEY_EINVAL;
  w = parley_calloc(1, sizeof *w);
  if (w == NULL)
    return PARLEY_ENOMEM;
  for (size_t i = 0; i < cfg->nurls; i++) {
    struct target *t = &w->to[i];
    uint16_t port;
    if (cfg->urls[i] == NULL ||
        strlen(cfg->urls[i]) > PARLEY_WEBHOOK_MAX_URL ||
        parley_webhook_parse_url(cfg->urls[i], t->host, sizeof t->host,
                                 &port, t->path, sizeof t->path) < 0) {
      parley_free(w);
      return PARLEY_EINVAL;
    }
    snprintf(t->port, sizeof t->port, "%u", (unsigned)port);
    snprintf(t->url, sizeof t->url, "%s", cfg->urls[i]);
  }
  w->nto = cfg->nurls;
  if (cfg->secret != NULL && cfg->secret_len > 0) {
    w->secret = parley_malloc(cfg->secret_len);
    if (w->secret == NULL) {
      parley_free(w);
      return PARLEY_ENOMEM;
    }
    memcpy(w->secret, cfg->secret, cfg->secret_len);
    w->secret_len = cfg->secret_len;
  }
  w->loop = cfg->loop;
  w->log = cfg->log;
  snprintf(w->agent, sizeof w->agent, "%s",
           cfg->user_agent != NULL ? cfg->user_agent : "parley-index");
  w->max_attempts = cfg->max_attempts ? cfg->max_attempts : 5;
  w->base_delay_ms = cfg->base_delay_ms ? cfg->base_delay_ms : 1000;
  w->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
  w->max_queue = cfg->max_queue ? cfg->max_queue : 256;
  *out = w;
  return PARLEY_OK;
}

static void maybe_done(struct parley_webhook *w) {
  if (!w->closing || w->list != NULL)
    return;
  if (w->secret != NULL)
    sodium_memzero(w->secret, w->secret_len);
  parley_free(w->secret);
  if (w->done != NULL)
    w->done(w->done_ctx);
  parley_free(w);
}

static void on_timer_closed(uv_handle_t *h) {
  struct delivery *d = h->data;
  struct parley_webhook *w = d->w;

  if (d->prev != NULL)
    d->prev->next = d->next;
  else
    w->list = d->next;
  if (d->next != NULL)
    d->next->prev = d->prev;
  w->st.pending--;
  parley_free(d->req);
  parley_free(d);
  maybe_done(w);
}

/* The delivery is over (delivered, given up or cancelled). */
static void finish(struct delivery *d) {
  if (d->finishing)
    return;
  d->finishing = 1;
  uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

static void on_retry(uv_timer_t *t) { attempt(t->data); }

/* The attempt is over and nothing of it is in flight any more. */
static void after_attempt(struct delivery *d) {
  struct parley_webhook *w = d->w;
  uint64_t delay;

  d->ending = 0;
  if (w->closing) {
    finish(d);
    return;
  }
  if (d->ok) {
    w->st.delivered++;
    PARLEY_LOG(w->log, PARLEY_LOG_INFO, "webhook %s: delivery %s accepted "
               "(attempt %u)", d->to->url, d->id, d->attempt);
    finish(d);
    return;
  }
  if (d->attempt >= w->max_attempts) {
    w->st.failed++;
    PARLEY_LOG(w->log, PARLEY_LOG_WARN,
               "webhook %s: delivery %s dropped after %u attempts (last: %s)",
               d->to->url, d->id, d->attempt, d->why);
    finish(d);
    return;
  }
  delay = parley_webhook_backoff_ms(w->base_delay_ms, d->attempt);
  w->st.retries++;
  PARLEY_LOG(w->log, PARLEY_LOG_INFO,
             "webhook %s: delivery %s attempt %u failed (%s); retry in %llu ms",
             d->to->url, d->id, d->attempt, d->why,
             (unsigned long long)delay);
  uv_timer_start(&d->timer, on_retry, delay, 0);
}

static void on_tcp_closed(uv_handle_t *h) {
  struct delivery *d = h->data;
  d->tcp_open = 0;
  if (!d->gai_busy)
    after_attempt(d);
}

/* Ends the current attempt: ok, or failed for why. */
static void attempt_end(struct delivery *d, int ok, const char *why) {
  if (d->ending)
    return;
  d->ending = 1;
  d->ok = ok;
  snprintf(d->why, sizeof d->why, "%s", why);
  uv_timer_stop(&d->timer);
  if (d->gai_busy)
    (void)uv_cancel((uv_req_t *)&d->gai); /* on_resolved follows */
  if (d->tcp_open) {
    uv_close((uv_handle_t *)&d->tcp, on_tcp_closed);
    return;
  }
  if (!d->gai_busy)
    after_attempt(d);
}

static void on_timeout(uv_timer_t *t) {
  attempt_end(t->data, 0, "no answer in time");
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct delivery *d = h->data;
  (void)hint;
  buf->base = d->resp + d->resp_len;
  buf->len = RESP_CAP - 1 - d->resp_len;
}

/* Reads until the status line is complete. */
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct delivery *d = s->data;
  char *eol;
  unsigned code;
  char why[64];
  (void)buf;

  if (d->ending)
    return;
  if (n < 0) {
    attempt_end(d, 0, n == UV_EOF ? "closed before a status line"
                                  : uv_strerror((int)n));
    return;
  }
  d->resp_len += (size_t)n;
  d->resp[d->resp_len] = '\0';
  eol = strstr(d->resp, "\r\n");
  if (eol == NULL) {
    if (d->resp_len >= RESP_CAP - 1)
      attempt_end(d, 0, "status line too long");
    return;
  }
  *eol = '\0';
  if (sscanf(d->resp, "HTTP/1.%*1[01] %3u", &code) != 1) {
    attempt_end(d, 0, "not an HTTP answer");
    return;
  }
  snprintf(why, sizeof why, "HTTP %u", code);
  attempt_end(d, code >= 200 && code <= 299, why);
}

static void on_written(uv_write_t *req, int status) {
  struct delivery *d = req->data;
  int rc;

  if (d->ending)
    return;
  if (status < 0) {
    attempt_end(d, 0, uv_strerror(status));
    return;
  }
  rc = uv_read_start((uv_stream_t *)&d->tcp, on_alloc, on_read);
  if (rc < 0)
    attempt_end(d, 0, uv_strerror(rc));
}

static void on_connected(uv_connect_t *req, int status) {
  struct delivery *d = req->data;
  uv_buf_t b;
  int rc;

  if (d->ending)
    return;
  if (status < 0) {
    attempt_end(d, 0, uv_strerror(status));
    return;
  }
  b = uv_buf_init(d->req, (unsigned)d->req_len);
  d->wr.data = d;
  rc = uv_write(&d->wr, (uv_stream_t *)&d->tcp, &b, 1, on_written);
  if (rc < 0)
    attempt_end(d, 0, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *ai) {
  struct delivery *d = req->data;
  int rc;

  d->gai_busy = 0;
  if (d->ending) {
    uv_freeaddrinfo(ai);
    if (!d->tcp_open)
      after_attempt(d);
    return;
  }
  if (status < 0 || ai == NULL) {
    uv_freeaddrinfo(ai);
    attempt_end(d, 0, status < 0 ? uv_strerror(status) : "no address");
    return;
  }
  rc = uv_tcp_init(d->w->loop, &d->tcp);
  if (rc < 0) {
    uv_freeaddrinfo(ai);
    attempt_end(d, 0, uv_strerror(rc));
    return;
  }
  d->tcp.data = d;
  d->tcp_open = 1;
  d->conn.data = d;
  rc = uv_tcp_connect(&d->conn, &d->tcp, ai->ai_addr, on_connected);
  uv_freeaddrinfo(ai);
  if (rc < 0)
    attempt_end(d, 0, uv_strerror(rc));
}

static void attempt(struct delivery *d) {
  struct addrinfo hints;
  int rc;

  d->attempt++;
  d->ok = 0;
  d->resp_len = 0;
  d->resp[0] = '\0';
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  d->gai.data = d;
  uv_timer_start(&d->timer, on_timeout, d->w->timeout_ms, 0);
  rc = uv_getaddrinfo(d->w->loop, &d->gai, on_resolved, d->to->host,
                      d->to->port, &hints);
  if (rc < 0) {
    attempt_end(d, 0, uv_strerror(rc));
    return;
  }
  d->gai_busy = 1;
}

/* ---- API ---------------------------------------------------------------- */

static int event_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 32)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
      return 0;
  return 1;
}

static int build_request(struct parley_webhook *w, struct delivery *d,
                         const char *event, const void *body, size_t len) {
  char sig[PARLEY_WEBHOOK_SIG_LEN], head[2048];
  int n;

  if (w->secret != NULL)
    parley_webhook_sign(w->secret, w->secret_len, body, len, sig);
  n = snprintf(head, sizeof head,
               "POST %s HTTP/1.1\r\n"
               "Host: %s%s%s:%s\r\n"
               "User-Agent: %s\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: %zu\r\n"
               "X-Parley-Event: %s\r\n"
               "X-Parley-Delivery: %s\r\n"
               "%s%s%s"
               "Connection: close\r\n\r\n",
               d->to->path, strchr(d->to->host, ':') ? "[" : "",
               d->to->host, strchr(d->to->host, ':') ? "]" : "", d->to->port,
               w->agent, len, event, d->id,
               w->secret != NULL ? "X-Parley-Signature: " : "",
               w->secret != NULL ? sig : "", w->secret != NULL ? "\r\n" : "");
  if (n < 0 || (size_t)n >= sizeof head)
    return PARLEY_EINVAL;
  d->req = parley_malloc((size_t)n + len);
  if (d->req == NULL)
    return PARLEY_ENOMEM;
  memcpy(d->req, head, (size_t)n);
  memcpy(d->req + n, body, len);
  d->req_len = (size_t)n + len;
  return PARLEY_OK;
}

int parley_webhook_post(struct parley_webhook *w, const char *event,
                        const void *body, size_t len) {
  uint8_t rnd[8];
  char id[17];

  if (w->closing || !event_ok(event) || len > 1024 * 1024)
    return PARLEY_EINVAL;
  if (w->st.pending + w->nto > w->max_queue) {
    w->st.dropped += w->nto;
    PARLEY_LOG(w->log, PARLEY_LOG_WARN,
               "webhook: queue full (%zu deliveries): %s notification dropped",
               w->max_queue, event);
    return PARLEY_ELIMIT;
  }
  randombytes_buf(rnd, sizeof rnd);
  parley_hex_encode(rnd, sizeof rnd, id);
  for (size_t i = 0; i < w->nto; i++) {
    struct delivery *d = parley_calloc(1, sizeof *d);
    int rc;
    if (d == NULL)
      return PARLEY_ENOMEM;
    d->w = w;
    d->to = &w->to[i];
    memcpy(d->id, id, sizeof d->id);
    rc = build_request(w, d, event, body, len);
    if (rc < 0) {
      parley_free(d);
      return rc;
    }
    uv_timer_init(w->loop, &d->timer);
    d->timer.data = d;
    d->next = w->list;
    if (w->list != NULL)
      w->list->prev = d;
    w->list = d;
    w->st.pending++;
    attempt(d);
  }
  return PARLEY_OK;
}

void parley_webhook_free(struct parley_webhook *w, void (*done)(void *ctx),
                         void *ctx) {
  struct delivery *d, *next;

  if (w == NULL)
    return;
  w->closing = 1;
  w->done = done;
  w->done_ctx = ctx;
  for (d = w->list; d != NULL; d = next) {
    next = d->next;
    if (d->gai_busy || d->tcp_open)
      attempt_end(d, 0, "shutting down"); /* after_attempt finishes it */
    else if (!d->ending)
      finish(d);
  }
  if (w->list == NULL) {
    /* Nothing was in flight: still answer from the loop, as promised. */
    maybe_done(w);
  }
}

void parley_webhook_get_stats(const struct parley_webhook *w,
                              struct parley_webhook_stats *out) {
  *out = w->st;
}
