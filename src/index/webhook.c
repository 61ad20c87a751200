/* webhook.c — signed alert POSTs with retries, over httpc (webhook.h). */
#include "index/webhook.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "core/util.h"
#include "index/httpc.h"

#define MAX_BACKOFF_MS 60000u
#define MAX_BODY (1024u * 1024u)
/* What a receiver may answer; the body is not used. */
#define MAX_ANSWER (16u * 1024u)

struct target {
  char url[PARLEY_WEBHOOK_MAX_URL + 1];
};

/* One body on its way to one URL.  Owned by the webhook's list; freed once
 * its timer is closed (finish). */
struct delivery {
  struct parley_webhook *w;
  struct delivery *prev, *next;
  const struct target *to;
  char id[17];
  char event[33];
  char sig[PARLEY_WEBHOOK_SIG_LEN]; /* "" when unsigned */
  char *body;
  size_t len;
  unsigned attempt;
  uv_timer_t timer;              /* the wait before a retry */
  struct parley_httpc_xfer *xfer; /* the attempt in flight, or NULL */
  int finishing;
};

struct parley_webhook {
  uv_loop_t *loop;
  const struct parley_log *log;
  struct parley_httpc *http;
  struct target to[PARLEY_WEBHOOK_MAX_URLS];
  size_t nto;
  uint8_t *secret;
  size_t secret_len;
  unsigned max_attempts, base_delay_ms, timeout_ms;
  size_t max_queue;
  struct delivery *list;
  struct parley_webhook_stats st;
  int closing;
  int http_open; /* the client is not yet released */
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

static int printable(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return 0;
  return 1;
}

int parley_webhook_parse_url(const char *url, struct parley_webhook_url *out) {
  const char *p = url, *h, *end;
  uint64_t v;
  size_t n;

  memset(out, 0, sizeof *out);
  if (strnlen(url, PARLEY_WEBHOOK_MAX_URL + 1) > PARLEY_WEBHOOK_MAX_URL)
    return PARLEY_EINVAL;
  if (strncmp(p, "http://", 7) == 0) {
    p += 7;
    v = 80;
  } else if (strncmp(p, "https://", 8) == 0) {
    p += 8;
    v = 443;
    out->tls = 1;
  } else {
    return PARLEY_EINVAL;
  }
  h = p;
  if (*p == '[') {
    end = strchr(p, ']');
    if (end == NULL)
      return PARLEY_EINVAL;
    h = p + 1;
    n = (size_t)(end - h);
    p = end + 1;
    if (*p != '\0' && *p != ':' && *p != '/' && *p != '?')
      return PARLEY_EINVAL;
  } else {
    n = strcspn(p, ":/?#");
    p += n;
  }
  if (n == 0 || n >= sizeof out->host || !printable(h, n) ||
      memchr(h, '@', n) != NULL)
    return PARLEY_EINVAL;
  memcpy(out->host, h, n);
  out->host[n] = '\0';
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
    if (strlen(p) + 2 > sizeof out->path)
      return PARLEY_EINVAL;
    snprintf(out->path, sizeof out->path, "/%s", p);
  } else {
    if (strlen(p) + 1 > sizeof out->path)
      return PARLEY_EINVAL;
    memcpy(out->path, p, strlen(p) + 1);
  }
  if (!printable(out->path, strlen(out->path)) ||
      strchr(out->path, '#') != NULL)
    return PARLEY_EINVAL;
  out->port = (uint16_t)v;
  return PARLEY_OK;
}

/* ---- lifecycle ---------------------------------------------------------- */

int parley_webhook_new(const struct parley_webhook_config *cfg,
                       struct parley_webhook **out) {
  struct parley_webhook *w;
  struct parley_httpc_config hc;
  int rc;

  if (cfg->loop == NULL || cfg->nurls == 0 ||
      cfg->nurls > PARLEY_WEBHOOK_MAX_URLS || cfg->urls == NULL)
    return PARLEY_EINVAL;
  w = parley_calloc(1, sizeof *w);
  if (w == NULL)
    return PARLEY_ENOMEM;
  for (size_t i = 0; i < cfg->nurls; i++) {
    struct parley_webhook_url u;
    if (cfg->urls[i] == NULL ||
        parley_webhook_parse_url(cfg->urls[i], &u) < 0) {
      parley_free(w);
      return PARLEY_EINVAL;
    }
    snprintf(w->to[i].url, sizeof w->to[i].url, "%s", cfg->urls[i]);
  }
  w->nto = cfg->nurls;
  memset(&hc, 0, sizeof hc);
  hc.loop = cfg->loop;
  hc.log = cfg->log;
  hc.ca_file = cfg->ca_file;
  hc.user_agent = cfg->user_agent != NULL ? cfg->user_agent : "parley-index";
  w->max_queue = cfg->max_queue ? cfg->max_queue : 256;
  hc.max_transfers = w->max_queue;
  rc = parley_httpc_new(&hc, &w->http);
  if (rc < 0) {
    parley_free(w);
    return rc;
  }
  w->http_open = 1;
  if (cfg->secret != NULL && cfg->secret_len > 0) {
    w->secret = parley_malloc(cfg->secret_len);
    if (w->secret == NULL) {
      /* Nothing is in flight: the client is released from the loop. */
      parley_httpc_free(w->http, NULL, NULL);
      parley_free(w);
      return PARLEY_ENOMEM;
    }
    memcpy(w->secret, cfg->secret, cfg->secret_len);
    w->secret_len = cfg->secret_len;
  }
  w->loop = cfg->loop;
  w->log = cfg->log;
  w->max_attempts = cfg->max_attempts ? cfg->max_attempts : 5;
  w->base_delay_ms = cfg->base_delay_ms ? cfg->base_delay_ms : 1000;
  w->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
  *out = w;
  return PARLEY_OK;
}

static void maybe_done(struct parley_webhook *w) {
  if (!w->closing || w->list != NULL || w->http_open)
    return;
  if (w->secret != NULL)
    sodium_memzero(w->secret, w->secret_len);
  parley_free(w->secret);
  if (w->done != NULL)
    w->done(w->done_ctx);
  parley_free(w);
}

static void on_http_closed(void *ctx) {
  struct parley_webhook *w = ctx;
  w->http_open = 0;
  maybe_done(w);
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
  parley_free(d->body);
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

/* The attempt is over: ok, or failed for why. */
static void after_attempt(struct delivery *d, int ok, const char *why) {
  struct parley_webhook *w = d->w;
  uint64_t delay;

  if (w->closing) {
    finish(d);
    return;
  }
  if (ok) {
    w->st.delivered++;
    PARLEY_LOG(w->log, PARLEY_LOG_INFO,
               "webhook %s: delivery %s accepted (attempt %u)", d->to->url,
               d->id, d->attempt);
    finish(d);
    return;
  }
  if (d->attempt >= w->max_attempts) {
    w->st.failed++;
    PARLEY_LOG(w->log, PARLEY_LOG_WARN,
               "webhook %s: delivery %s dropped after %u attempts (last: %s)",
               d->to->url, d->id, d->attempt, why);
    finish(d);
    return;
  }
  delay = parley_webhook_backoff_ms(w->base_delay_ms, d->attempt);
  w->st.retries++;
  PARLEY_LOG(w->log, PARLEY_LOG_INFO,
             "webhook %s: delivery %s attempt %u failed (%s); retry in %llu ms",
             d->to->url, d->id, d->attempt, why, (unsigned long long)delay);
  uv_timer_start(&d->timer, on_retry, delay, 0);
}

static void on_answer(void *ctx, const struct parley_httpc_response *res) {
  struct delivery *d = ctx;
  char why[160];

  d->xfer = NULL;
  if (res->rc == PARLEY_ECANCELED) {
    finish(d);
    return;
  }
  if (res->rc == PARLEY_OK)
    snprintf(why, sizeof why, "HTTP %ld", res->status);
  else
    snprintf(why, sizeof why, "%s", res->error);
  after_attempt(d, res->rc == PARLEY_OK && res->status >= 200 &&
                       res->status <= 299,
                why);
}

static void attempt(struct delivery *d) {
  struct parley_webhook *w = d->w;
  struct parley_httpc_request rq;
  char event[64], delivery[64], sig[96];
  const char *hdrs[5];
  size_t nh = 0;
  int rc;

  d->attempt++;
  snprintf(event, sizeof event, "X-Parley-Event: %s", d->event);
  snprintf(delivery, sizeof delivery, "X-Parley-Delivery: %s", d->id);
  hdrs[nh++] = "Content-Type: application/json";
  hdrs[nh++] = event;
  hdrs[nh++] = delivery;
  if (d->sig[0] != '\0') {
    snprintf(sig, sizeof sig, "X-Parley-Signature: %s", d->sig);
    hdrs[nh++] = sig;
  }
  hdrs[nh] = NULL;
  memset(&rq, 0, sizeof rq);
  rq.method = "POST";
  rq.url = d->to->url;
  rq.headers = hdrs;
  rq.body = d->body;
  rq.body_len = d->len;
  rq.timeout_ms = w->timeout_ms;
  rq.max_response = MAX_ANSWER;
  rc = parley_httpc_start(w->http, &rq, on_answer, d, &d->xfer);
  if (rc < 0) {
    d->xfer = NULL;
    after_attempt(d, 0, parley_strerror(rc));
  }
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

int parley_webhook_post(struct parley_webhook *w, const char *event,
                        const void *body, size_t len) {
  uint8_t rnd[8];
  char id[17], sig[PARLEY_WEBHOOK_SIG_LEN];

  if (w->closing || !event_ok(event) || len > MAX_BODY)
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
  sig[0] = '\0';
  if (w->secret != NULL)
    parley_webhook_sign(w->secret, w->secret_len, body, len, sig);
  for (size_t i = 0; i < w->nto; i++) {
    struct delivery *d = parley_calloc(1, sizeof *d);
    if (d == NULL)
      return PARLEY_ENOMEM;
    d->body = parley_malloc(len > 0 ? len : 1);
    if (d->body == NULL) {
      parley_free(d);
      return PARLEY_ENOMEM;
    }
    memcpy(d->body, body, len);
    d->len = len;
    d->w = w;
    d->to = &w->to[i];
    memcpy(d->id, id, sizeof d->id);
    snprintf(d->event, sizeof d->event, "%s", event);
    memcpy(d->sig, sig, sizeof d->sig);
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
  /* Cancels the attempts in flight: on_answer finishes each. */
  parley_httpc_free(w->http, on_http_closed, w);
  w->http = NULL;
  /* The rest wait for a retry. */
  for (d = w->list; d != NULL; d = next) {
    next = d->next;
    finish(d);
  }
}

void parley_webhook_get_stats(const struct parley_webhook *w,
                              struct parley_webhook_stats *out) {
  *out = w->st;
}
