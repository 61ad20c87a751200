/* httpc.c — libcurl's multi interface driven by libuv (httpc.h). */
#include "index/httpc.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "core/alloc.h"
#include "core/buf.h"

#define DEFAULT_TIMEOUT_MS 5000u
#define DEFAULT_CONNECT_MS 3000u
#define DEFAULT_MAX_RESPONSE (64u * 1024u)
#define DEFAULT_MAX_TRANSFERS 256u

/* One socket curl asked us to watch.  Freed in its close callback. */
struct sock {
  uv_poll_t poll;
  struct parley_httpc *c;
  struct sock *prev, *next; /* parley_httpc.socks */
  curl_socket_t fd;
  int closing;
};

struct parley_httpc_xfer {
  struct parley_httpc *c;
  struct parley_httpc_xfer *prev, *next; /* parley_httpc.xfers */
  CURL *easy;
  struct curl_slist *hdrs;
  char *body; /* the POST body (owned) */
  struct parley_buf resp;
  size_t cap; /* body bytes allowed */
  int too_big;
  parley_httpc_cb cb;
  void *ctx;
  char err[CURL_ERROR_SIZE];
};

struct parley_httpc {
  uv_loop_t *loop;
  const struct parley_log *log;
  CURLM *multi;
  uv_timer_t timer;
  char *ca_file;
  char agent[64];
  size_t max, n;
  struct parley_httpc_xfer *xfers;
  struct sock *socks;
  int closing;
  int handles; /* open libuv handles (timer, polls) */
  void (*done)(void *ctx);
  void *done_ctx;
};

/* ---- the end ---------------------------------------------------------- */

static void maybe_release(struct parley_httpc *c) {
  void (*done)(void *ctx);
  void *ctx;

  if (!c->closing || c->handles > 0)
    return;
  done = c->done;
  ctx = c->done_ctx;
  parley_free(c->ca_file);
  parley_free(c);
  curl_global_cleanup();
  if (done != NULL)
    done(ctx);
}

static void on_sock_closed(uv_handle_t *h) {
  struct sock *s = h->data;
  struct parley_httpc *c = s->c;

  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    c->socks = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  parley_free(s);
  c->handles--;
  maybe_release(c);
}

static void sock_close(struct sock *s) {
  if (s->closing)
    return;
  s->closing = 1;
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_timer_closed(uv_handle_t *h) {
  struct parley_httpc *c = h->data;
  c->handles--;
  maybe_release(c);
}

/* ---- transfers ---------------------------------------------------------- */

static void xfer_free(struct parley_httpc_xfer *x) {
  curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->hdrs);
  parley_free(x->body);
  parley_buf_close(&x->resp);
  parley_free(x);
}

static int map_result(const struct parley_httpc_xfer *x, CURLcode res) {
  switch (res) {
  case CURLE_OK:
    return PARLEY_OK;
  case CURLE_OPERATION_TIMEDOUT:
    return PARLEY_ETIMEDOUT;
  case CURLE_FILESIZE_EXCEEDED:
    return PARLEY_ETOOBIG;
  case CURLE_WRITE_ERROR:
    return x->too_big ? PARLEY_ETOOBIG : PARLEY_EIO;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
    return PARLEY_ECONNECT;
  default:
    return PARLEY_EIO;
  }
}

/* Takes x out of the multi handle and the list, tells its owner, frees it. */
static void complete(struct parley_httpc_xfer *x, int rc, const char *why) {
  struct parley_httpc *c = x->c;
  struct parley_httpc_response res;
  long status = 0;

  curl_multi_remove_handle(c->multi, x->easy);
  if (x->prev != NULL)
    x->prev->next = x->next;
  else
    c->xfers = x->next;
  if (x->next != NULL)
    x->next->prev = x->prev;
  c->n--;
  if (rc == PARLEY_OK || rc == PARLEY_ETOOBIG)
    (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  memset(&res, 0, sizeof res);
  res.rc = rc;
  res.status = status;
  res.body = "";
  /* The buffer's cap leaves room for the NUL. */
  if (rc == PARLEY_OK && x->resp.len > 0 &&
      parley_buf_append(&x->resp, "", 1) == PARLEY_OK) {
    res.body = (const char *)x->resp.data;
    res.body_len = x->resp.len - 1;
  }
  if (rc == PARLEY_OK)
    res.error = "";
  else if (why != NULL)
    res.error = why;
  else if (rc == PARLEY_ETOOBIG)
    res.error = "answer too large";
  else
    res.error = x->err[0] != '\0' ? x->err : parley_strerror(rc);
  x->cb(x->ctx, &res);
  xfer_free(x);
}

/* Hands every finished transfer to its owner. */
static void drain(struct parley_httpc *c) {
  CURLMsg *m;
  int left;

  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    struct parley_httpc_xfer *x = NULL;
    if (m->msg != CURLMSG_DONE)
      continue;
    (void)curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (x != NULL)
      complete(x, map_result(x, m->data.result), NULL);
  }
}

/* ---- curl's callbacks ---------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *userp) {
  struct parley_httpc_xfer *x = userp;
  size_t n = size * nmemb;

  if (n > x->cap - x->resp.len || parley_buf_append(&x->resp, p, n) < 0) {
    x->too_big = 1;
    return 0; /* CURLE_WRITE_ERROR */
  }
  return n;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  struct sock *s = p->data;
  struct parley_httpc *c = s->c;
  int flags = 0, running = 0;

  if (status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  (void)curl_multi_socket_action(c->multi, s->fd, flags, &running);
  drain(c);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp) {
  struct parley_httpc *c = userp;
  struct sock *s = socketp;
  int ev = 0;
  (void)easy;

  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      (void)curl_multi_assign(c->multi, fd, NULL);
      sock_close(s);
    }
    return 0;
  }
  if (s == NULL) {
    s = parley_calloc(1, sizeof *s);
    if (s == NULL)
      return -1;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
      parley_free(s);
      return -1;
    }
    s->c = c;
    s->fd = fd;
    s->poll.data = s;
    s->next = c->socks;
    if (c->socks != NULL)
      c->socks->prev = s;
    c->socks = s;
    c->handles++;
    (void)curl_multi_assign(c->multi, fd, s);
  }
  if (what & CURL_POLL_IN)
    ev |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    ev |= UV_WRITABLE;
  if (uv_poll_start(&s->poll, ev, on_poll) < 0)
    return -1;
  return 0;
}

static void on_timeout(uv_timer_t *t) {
  struct parley_httpc *c = t->data;
  int running = 0;

  (void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain(c);
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp) {
  struct parley_httpc *c = userp;
  (void)multi;

  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    /* 0 means "at once", but curl must not be re-entered from inside its
     * own callback: the loop calls it on its next turn. */
    uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---- lifecycle ------------------------------------------------------------ */

int parley_httpc_new(const struct parley_httpc_config *cfg,
                     struct parley_httpc **out) {
  struct parley_httpc *c;
  struct stat st;

  if (cfg->loop == NULL)
    return PARLEY_EINVAL;
  if (cfg->ca_file != NULL &&
      (stat(cfg->ca_file, &st) < 0 || !S_ISREG(st.st_mode)))
    return PARLEY_EINVAL;
  c = parley_calloc(1, sizeof *c);
  if (c == NULL)
    return PARLEY_ENOMEM;
  if (cfg->ca_file != NULL) {
    c->ca_file = parley_strdup(cfg->ca_file);
    if (c->ca_file == NULL) {
      parley_free(c);
      return PARLEY_ENOMEM;
    }
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    parley_free(c->ca_file);
    parley_free(c);
    return PARLEY_EIO;
  }
  c->multi = curl_multi_init();
  if (c->multi == NULL) {
    curl_global_cleanup();
    parley_free(c->ca_file);
    parley_free(c);
    return PARLEY_EIO;
  }
  c->loop = cfg->loop;
  c->log = cfg->log;
  snprintf(c->agent, sizeof c->agent, "%s",
           cfg->user_agent != NULL ? cfg->user_agent : "parley-index");
  c->max = cfg->max_transfers ? cfg->max_transfers : DEFAULT_MAX_TRANSFERS;
  (void)uv_timer_init(c->loop, &c->timer);
  c->timer.data = c;
  c->handles = 1;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  *out = c;
  return PARLEY_OK;
}

void parley_httpc_free(struct parley_httpc *c, void (*done)(void *ctx),
                       void *ctx) {
  if (c == NULL)
    return;
  c->closing = 1;
  c->done = done;
  c->done_ctx = ctx;
  while (c->xfers != NULL)
    complete(c->xfers, PARLEY_ECANCELED, "shutting down");
  /* Closes the cached connections (their sockets are REMOVEd first). */
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  for (struct sock *s = c->socks; s != NULL; s = s->next)
    sock_close(s);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

size_t parley_httpc_pending(const struct parley_httpc *c) { return c->n; }

static int url_ok(const char *url) {
  size_t n = strnlen(url, PARLEY_HTTPC_MAX_URL);
  if (n == 0 || n >= PARLEY_HTTPC_MAX_URL)
    return 0;
  if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
      return 0;
  return 1;
}

static int header_ok(const char *h) {
  size_t n = strlen(h);
  const char *colon = strchr(h, ':');
  if (n == 0 || n > 8192 || colon == NULL || colon == h)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (h[i] == '\r' || h[i] == '\n' || h[i] == '\0')
      return 0;
  return 1;
}

static int setup(struct parley_httpc *c, struct parley_httpc_xfer *x,
                 const struct parley_httpc_request *rq, int post) {
  CURL *e = x->easy;
  unsigned timeout = rq->timeout_ms ? rq->timeout_ms : DEFAULT_TIMEOUT_MS;
  unsigned connect = rq->connect_timeout_ms ? rq->connect_timeout_ms
                     : timeout < DEFAULT_CONNECT_MS ? timeout
                                                    : DEFAULT_CONNECT_MS;
  size_t cap = x->cap;
  CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                         \
  do {                                                                        \
    if (rc == CURLE_OK)                                                       \
      rc = curl_easy_setopt(e, opt, val);                                     \
  } while (0)
  SET(CURLOPT_URL, rq->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_PROXY, "");   /* never through a proxy ... */
  SET(CURLOPT_NOPROXY, "*"); /* ... whatever the environment says */
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_TIMEOUT_MS, (long)timeout);
  SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  if (c->ca_file != NULL)
    SET(CURLOPT_CAINFO, c->ca_file);
  SET(CURLOPT_USERAGENT, c->agent);
  SET(CURLOPT_ERRORBUFFER, x->err);
  SET(CURLOPT_PRIVATE, (char *)x);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, x);
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  SET(CURLOPT_HTTPHEADER, x->hdrs);
  if (post) {
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    SET(CURLOPT_POSTFIELDS, x->body != NULL ? x->body : "");
  } else {
    SET(CURLOPT_HTTPGET, 1L);
  }
#undef SET
  return rc == CURLE_OK ? PARLEY_OK : PARLEY_EINVAL;
}

int parley_httpc_start(struct parley_httpc *c,
                       const struct parley_httpc_request *rq,
                       parley_httpc_cb cb, void *ctx,
                       struct parley_httpc_xfer **out) {
  struct parley_httpc_xfer *x;
  int post, rc;
  size_t nh = 0;

  if (c->closing || rq->method == NULL || rq->url == NULL || !url_ok(rq->url))
    return PARLEY_EINVAL;
  if (strcmp(rq->method, "POST") == 0)
    post = 1;
  else if (strcmp(rq->method, "GET") == 0)
    post = 0;
  else
    return PARLEY_EINVAL;
  if (!post && rq->body_len > 0)
    return PARLEY_EINVAL;
  for (; rq->headers != NULL && rq->headers[nh] != NULL; nh++)
    if (nh >= PARLEY_HTTPC_MAX_HEADERS || !header_ok(rq->headers[nh]))
      return PARLEY_EINVAL;
  if (c->n >= c->max)
    return PARLEY_ELIMIT;
  x = parley_calloc(1, sizeof *x);
  if (x == NULL)
    return PARLEY_ENOMEM;
  x->c = c;
  x->cb = cb;
  x->ctx = ctx;
  x->cap = rq->max_response ? rq->max_response : DEFAULT_MAX_RESPONSE;
  parley_buf_init(&x->resp, x->cap + 1);
  x->easy = curl_easy_init();
  if (x->easy == NULL) {
    parley_free(x);
    return PARLEY_EIO;
  }
  rc = PARLEY_OK;
  if (post && rq->body_len > 0) {
    x->body = parley_malloc(rq->body_len);
    if (x->body == NULL)
      rc = PARLEY_ENOMEM;
    else
      memcpy(x->body, rq->body, rq->body_len);
  }
  /* "Expect:" with no value: no 100-continue round trip before a body. */
  for (size_t i = 0; rc == PARLEY_OK && i <= nh; i++) {
    struct curl_slist *l =
        curl_slist_append(x->hdrs, i < nh ? rq->headers[i] : "Expect:");
    if (l == NULL)
      rc = PARLEY_ENOMEM;
    else
      x->hdrs = l;
  }
  if (rc == PARLEY_OK)
    rc = setup(c, x, rq, post);
  if (rc == PARLEY_OK && curl_multi_add_handle(c->multi, x->easy) != CURLM_OK)
    rc = PARLEY_EIO;
  if (rc < 0) {
    xfer_free(x);
    return rc;
  }
  x->next = c->xfers;
  if (c->xfers != NULL)
    c->xfers->prev = x;
  c->xfers = x;
  c->n++;
  if (out != NULL)
    *out = x;
  return PARLEY_OK;
}

void parley_httpc_cancel(struct parley_httpc_xfer *x) {
  complete(x, PARLEY_ECANCELED, "cancelled");
}
