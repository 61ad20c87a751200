/* test_http.c — the HTTP server on 127.0.0.1, driven by raw sockets.
 *
 * The server and its libuv loop run on the main thread (where cmocka's
 * asserts must run too); each test's client runs on a second thread and
 * talks plain HTTP/1.1 over POSIX sockets, which lets it send malformed
 * requests, stall half-way or hang up.  The client records its first
 * failed check as text; the main thread asserts on it after the join.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/limits.h"
#include "http/server.h"

/* ------------------------------------------------------------------ */
/* Fixture: loop + server on the main thread                           */
/* ------------------------------------------------------------------ */

struct fx {
  uv_loop_t loop;
  uv_async_t done;    /* client thread -> loop: stop */
  uv_timer_t guard;   /* watchdog */
  uv_timer_t t_later; /* answers /later */
  uv_timer_t t_sse;   /* feeds /sse */
  struct parley_http *h;
  uint16_t port;

  /* Loop thread only. */
  struct parley_http_req *later, *sse, *idle;
  int sse_n;
  int flood_rc, flood_writes;
  int watchdog_fired;

  /* Shared with the client thread. */
  atomic_int handled; /* handler calls */
  atomic_int closes;  /* close cb calls */
  atomic_int parked;  /* /hold and /idle requests seen */

  /* Written by the client thread, read after the join. */
  char fail[512];
  int fds[4]; /* sockets the client leaves open for the main thread */
};

static void on_done(uv_async_t *a) { uv_stop(a->loop); }

static void on_guard(uv_timer_t *t) {
  struct fx *fx = t->data;
  fx->watchdog_fired = 1;
  uv_stop(t->loop);
}

static void on_close(void *data, struct parley_http_req *r) {
  struct fx *fx = data;
  if (fx->idle == r)
    fx->idle = NULL;
  if (fx->sse == r)
    fx->sse = NULL;
  if (fx->later == r)
    fx->later = NULL;
  atomic_fetch_add(&fx->closes, 1);
}

struct echo_buf {
  char *p;
  size_t cap, len;
};

static void echo_add(struct echo_buf *e, const char *fmt, ...) {
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(e->p + e->len, e->cap - e->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    e->len += (size_t)n < e->cap - e->len ? (size_t)n : e->cap - e->len - 1;
}

static void echo_arg(void *ctx, const char *k, const char *v) {
  echo_add(ctx, "q:%s=%s\n", k, v);
}

static void echo(struct parley_http_req *r) {
  /* MHD refuses the CR LF in X-Bad, so it cannot inject a header. */
  static const char *const extra[] = {"X-Reply", "yes", "X-Bad",
                                      "1\r\nInjected: 1", NULL};
  char out[8192];
  struct echo_buf e = {out, sizeof out, 0};
  const uint8_t *body;
  const char *v;
  size_t blen;

  echo_add(&e, "%s %s\n", parley_http_method(r), parley_http_path(r));
  parley_http_query_each(r, echo_arg, &e);
  v = parley_http_query(r, "a");
  echo_add(&e, "a=%s\n", v ? v : "(null)");
  v = parley_http_query(r, "missing");
  echo_add(&e, "missing=%s\n", v ? v : "(null)");
  v = parley_http_header(r, "x-test");
  echo_add(&e, "x-test=%s\n", v ? v : "(null)");
  body = parley_http_body(r, &blen);
  /* The body is NUL-terminated past its length. */
  echo_add(&e, "body[%zu,%s]=", blen, strlen((const char *)body) == blen
                                          ? "nul"
                                          : "embedded-nul");
  if (blen < e.cap - e.len) {
    memcpy(out + e.len, body, blen);
    e.len += blen;
  }
  parley_http_respond(r, 200, "text/plain", out, e.len, extra);
}

static void on_later(uv_timer_t *t) {
  struct fx *fx = t->data;
  struct parley_http_req *r = fx->later;

  if (r == NULL)
    return;
  fx->later = NULL;
  /* Accessors still work on a suspended request. */
  if (parley_http_query(r, "sse") == NULL) {
    parley_http_respond(r, 200, "text/plain", "late", 4, NULL);
  } else if (parley_http_stream_start(r, 200, "text/event-stream") !=
                 PARLEY_OK ||
             parley_http_stream_write(r, "data: late\n\n", 12) !=
                 PARLEY_OK) {
    fx->flood_rc = 1; /* checked by test_suspend */
  } else {
    parley_http_stream_end(r);
  }
}

static void on_sse(uv_timer_t *t) {
  struct fx *fx = t->data;
  char ev[32];
  int n;

  if (fx->sse == NULL) {
    uv_timer_stop(t);
    return;
  }
  fx->sse_n++;
  n = snprintf(ev, sizeof ev, "data: %d\n\n", fx->sse_n);
  if (parley_http_stream_write(fx->sse, ev, (size_t)n) != PARLEY_OK)
    fx->sse_n = 100; /* shows up as a wrong body */
  if (fx->sse_n >= 3) {
    parley_http_stream_end(fx->sse);
    fx->sse = NULL;
    uv_timer_stop(t);
  }
}

static void handler(void *ctx, struct parley_http_req *r) {
  struct fx *fx = ctx;
  const char *path = parley_http_path(r);

  atomic_fetch_add(&fx->handled, 1);
  if (strcmp(path, "/echo") == 0) {
    echo(r);
  } else if (strcmp(path, "/later") == 0) {
    parley_http_suspend(r);
    parley_http_set_close_cb(r, on_close, fx);
    fx->later = r;
    uv_timer_start(&fx->t_later, on_later, 200, 0);
  } else if (strcmp(path, "/sse") == 0) {
    if (parley_http_stream_start(r, 200, "text/event-stream") != PARLEY_OK) {
      parley_http_respond(r, 500, "text/plain", "", 0, NULL);
      return;
    }
    parley_http_set_close_cb(r, on_close, fx);
    fx->sse = r;
    fx->sse_n = 0;
    uv_timer_start(&fx->t_sse, on_sse, 100, 100);
  } else if (strcmp(path, "/idle") == 0) {
    if (parley_http_stream_start(r, 200, "text/event-stream") != PARLEY_OK) {
      parley_http_respond(r, 500, "text/plain", "", 0, NULL);
      return;
    }
    parley_http_set_close_cb(r, on_close, fx);
    fx->idle = r;
    atomic_fetch_add(&fx->parked, 1);
  } else if (strcmp(path, "/hold") == 0) {
    parley_http_suspend(r);
    parley_http_set_close_cb(r, on_close, fx);
    atomic_fetch_add(&fx->parked, 1);
  } else if (strcmp(path, "/flood") == 0) {
    static char block[16384];
    int i, rc = PARLEY_OK;

    if (parley_http_stream_start(r, 200, "application/octet-stream") !=
        PARLEY_OK) {
      parley_http_respond(r, 500, "text/plain", "", 0, NULL);
      return;
    }
    parley_http_set_close_cb(r, on_close, fx);
    memset(block, 'x', sizeof block);
    for (i = 0; i < 100 && rc == PARLEY_OK; i++)
      rc = parley_http_stream_write(r, block, sizeof block);
    fx->flood_rc = rc;
    fx->flood_writes = i;
    /* A second write after the overflow keeps failing the same way. */
    if (parley_http_stream_write(r, block, 1) != rc)
      fx->flood_rc = 1;
  } else if (strcmp(path, "/quit") == 0) {
    parley_http_respond(r, 200, "text/plain", "bye", 3, NULL);
    parley_http_free(fx->h); /* deferred until MHD_run returns */
    fx->h = NULL;
  } else {
    parley_http_respond(r, 404, "text/plain", "no", 2, NULL);
  }
}

static void fx_start(struct fx *fx, size_t max_body, uint32_t idle_s,
                     size_t max_stream) {
  struct parley_http_config cfg;
  int i;

  memset(fx, 0, sizeof *fx);
  for (i = 0; i < 4; i++)
    fx->fds[i] = -1;
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(uv_async_init(&fx->loop, &fx->done, on_done), 0);
  uv_timer_init(&fx->loop, &fx->guard);
  uv_timer_init(&fx->loop, &fx->t_later);
  uv_timer_init(&fx->loop, &fx->t_sse);
  fx->guard.data = fx->t_later.data = fx->t_sse.data = fx;
  memset(&cfg, 0, sizeof cfg);
  cfg.loop = &fx->loop;
  cfg.host = "127.0.0.1";
  cfg.port = 0;
  cfg.max_body = max_body;
  cfg.idle_timeout_s = idle_s;
  cfg.max_stream_buffer = max_stream;
  cfg.handler = handler;
  cfg.ctx = fx;
  assert_int_equal(parley_http_new(&cfg, &fx->h), PARLEY_OK);
  fx->port = parley_http_port(fx->h);
  assert_true(fx->port != 0);
}

/* Runs client(fx) on a second thread while the loop serves it. */
static void fx_run(struct fx *fx, void *(*client)(void *)) {
  pthread_t th;

  uv_timer_start(&fx->guard, on_guard, 15000, 0);
  assert_int_equal(pthread_create(&th, NULL, client, fx), 0);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(pthread_join(th, NULL), 0);
  uv_timer_stop(&fx->guard);
  assert_false(fx->watchdog_fired);
  if (fx->fail[0] != '\0')
    fail_msg("client: %s", fx->fail);
}

static void on_closed_noop(uv_handle_t *h) { (void)h; }

static void fx_stop(struct fx *fx) {
  int i;

  parley_http_free(fx->h);
  fx->h = NULL;
  uv_close((uv_handle_t *)&fx->done, on_closed_noop);
  uv_close((uv_handle_t *)&fx->guard, on_closed_noop);
  uv_close((uv_handle_t *)&fx->t_later, on_closed_noop);
  uv_close((uv_handle_t *)&fx->t_sse, on_closed_noop);
  assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
  /* Fails with UV_EBUSY if the server left a handle open. */
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  for (i = 0; i < 4; i++)
    if (fx->fds[i] >= 0)
      close(fx->fds[i]);
}

/* ------------------------------------------------------------------ */
/* Client side (second thread): raw HTTP over a socket                 */
/* ------------------------------------------------------------------ */

#define CHECK(fx, cond)                                                       \
  do {                                                                        \
    if (!(cond)) {                                                            \
      if ((fx)->fail[0] == '\0')                                              \
        snprintf((fx)->fail, sizeof (fx)->fail, "line %d: %s", __LINE__,      \
                 #cond);                                                      \
      goto out;                                                               \
    }                                                                         \
  } while (0)

struct cli {
  int fd;
  char buf[1 << 18];
  size_t len;
};

struct resp {
  int status;
  char head[16384];
  char body[1 << 17];
  size_t blen;
  double t_first; /* when the first body byte was decoded */
  double t_end;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int cli_open(struct cli *c, uint16_t port) {
  struct sockaddr_in a;
  struct timeval tv = {5, 0};

  c->len = 0;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0)
    return -1;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

static void cli_close(struct cli *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

static int cli_send(struct cli *c, const void *p, size_t n) {
  const char *s = p;
  while (n > 0) {
    ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    s += k;
    n -= (size_t)k;
  }
  return 0;
}

static int cli_sends(struct cli *c, const char *s) {
  return cli_send(c, s, strlen(s));
}

/* Reads more bytes; 0 on EOF, -1 on error/timeout. */
static int cli_fill(struct cli *c) {
  ssize_t k;
  if (c->len == sizeof c->buf)
    return -1;
  do
    k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
  while (k < 0 && errno == EINTR);
  if (k > 0)
    c->len += (size_t)k;
  return k > 0 ? 1 : (int)k;
}

static void cli_drop(struct cli *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* Index just past the first "\r\n" (or "\r\n\r\n" if blank) in buf, read
 * more as needed; 0 if the connection ended first. */
static size_t cli_until(struct cli *c, const char *pat) {
  size_t pl = strlen(pat);
  for (;;) {
    size_t i;
    for (i = 0; i + pl <= c->len; i++)
      if (memcmp(c->buf + i, pat, pl) == 0)
        return i + pl;
    if (cli_fill(c) <= 0)
      return 0;
  }
}

static int cli_need(struct cli *c, size_t n) {
  while (c->len < n)
    if (cli_fill(c) <= 0)
      return -1;
  return 0;
}

/* Case-insensitive header lookup in a response head. */
static const char *head_value(const struct resp *rp, const char *name,
                              char *out, size_t cap) {
  const char *p = rp->head;
  size_t nl = strlen(name);

  while ((p = strstr(p, "\r\n")) != NULL) {
    p += 2;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1, *e;
      size_t n;
      while (*v == ' ')
        v++;
      e = strstr(v, "\r\n");
      n = e ? (size_t)(e - v) : strlen(v);
      if (n >= cap)
        n = cap - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return out;
    }
  }
  return NULL;
}

static void body_add(struct resp *rp, const char *p, size_t n) {
  if (n > 0 && rp->t_first == 0)
    rp->t_first = now_s();
  if (n > sizeof rp->body - 1 - rp->blen)
    n = sizeof rp->body - 1 - rp->blen;
  memcpy(rp->body + rp->blen, p, n);
  rp->blen += n;
  rp->body[rp->blen] = '\0';
}

/* Reads one response (Content-Length, chunked, or until close).
 * 0 on success, -1 if the connection ended first. */
static int cli_response(struct cli *c, struct resp *rp) {
  char v[64];
  size_t end = cli_until(c, "\r\n\r\n");

  memset(rp, 0, sizeof *rp);
  rp->status = -1;
  if (end == 0 || end >= sizeof rp->head)
    return -1;
  memcpy(rp->head, c->buf, end);
  rp->head[end] = '\0';
  cli_drop(c, end);
  if (sscanf(rp->head, "HTTP/1.%*d %d", &rp->status) != 1)
    return -1;
  if (head_value(rp, "Transfer-Encoding", v, sizeof v) != NULL &&
      strcasecmp(v, "chunked") == 0) {
    for (;;) {
      size_t line = cli_until(c, "\r\n");
      unsigned long sz;
      if (line == 0)
        return -1;
      sz = strtoul(c->buf, NULL, 16);
      cli_drop(c, line);
      if (sz == 0) {
        if (cli_until(c, "\r\n") == 0) /* no trailers expected */
          return -1;
        cli_drop(c, 2);
        break;
      }
      if (cli_need(c, sz + 2) < 0)
        return -1;
      body_add(rp, c->buf, sz);
      cli_drop(c, sz + 2);
    }
  } else if (head_value(rp, "Content-Length", v, sizeof v) != NULL) {
    size_t n = (size_t)strtoul(v, NULL, 10);
    if (cli_need(c, n) < 0)
      return -1;
    body_add(rp, c->buf, n);
    cli_drop(c, n);
  } else {
    while (cli_fill(c) > 0)
      ;
    body_add(rp, c->buf, c->len);
    c->len = 0;
  }
  rp->t_end = now_s();
  return 0;
}

/* 1 once the server has closed the connection (EOF or reset), 0 if it
 * sent something instead, -1 on timeout. */
static int cli_wait_closed(struct cli *c) {
  char b[4096];
  for (;;) {
    ssize_t k = recv(c->fd, b, sizeof b, 0);
    if (k == 0 || (k < 0 && errno == ECONNRESET))
      return 1;
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -1;
    return 0;
  }
}

/* One request on a fresh connection. */
static int simple(uint16_t port, const char *raw, struct resp *rp) {
  static struct cli c; /* one client thread at a time */
  int rc;

  if (cli_open(&c, port) < 0)
    return -1;
  rc = cli_sends(&c, raw) < 0 ? -1 : cli_response(&c, rp);
  cli_close(&c);
  return rc;
}

static int wait_atomic(atomic_int *v, int want, int ms) {
  for (; ms > 0; ms -= 5) {
    if (atomic_load(v) >= want)
      return 1;
    sleep_ms(5);
  }
  return atomic_load(v) >= want;
}

static struct resp R;  /* client thread only */
static struct cli C;   /* client thread only */
static struct cli C2;  /* client thread only */

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void *cl_get_query(void *arg) {
  struct fx *fx = arg;
  char v[64];

  CHECK(fx, cli_open(&C, fx->port) == 0);
  /* Two requests on one keep-alive connection. */
  CHECK(fx, cli_sends(&C, "GET /echo?a=1&b=&c&a=2&sp=%41%20b HTTP/1.1\r\n"
                          "Host: x\r\nX-Test: hello\r\n\r\n") == 0);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, head_value(&R, "X-Reply", v, sizeof v) != NULL);
  CHECK(fx, strcmp(v, "yes") == 0);
  CHECK(fx, head_value(&R, "Content-Type", v, sizeof v) != NULL);
  CHECK(fx, strcmp(v, "text/plain") == 0);
  CHECK(fx, head_value(&R, "X-Bad", v, sizeof v) == NULL);
  CHECK(fx, head_value(&R, "Injected", v, sizeof v) == NULL);
  CHECK(fx, strcmp(R.body, "GET /echo\n"
                           "q:a=1\nq:b=\nq:c=\nq:a=2\nq:sp=A b\n"
                           "a=1\nmissing=(null)\nx-test=hello\n"
                           "body[0,nul]=") == 0);
  CHECK(fx, cli_sends(&C, "GET /nothing HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n") == 0);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, R.status == 404);
  CHECK(fx, strcmp(R.body, "no") == 0);
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_get_query(void **state) {
  struct fx fx;
  const struct parley_http_stats *st;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_get_query);
  st = parley_http_stats(fx.h);
  assert_int_equal(st->requests, 2);
  assert_int_equal(st->responses_2xx, 1);
  assert_int_equal(st->responses_4xx, 1);
  assert_int_equal(st->refused, 0);
  assert_int_equal(atomic_load(&fx.handled), 2);
  fx_stop(&fx);
}

static void *cl_post(void *arg) {
  struct fx *fx = arg;

  CHECK(fx, simple(fx->port,
                   "POST /echo HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 11\r\n\r\nhello world",
                   &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, strcmp(R.body, "POST /echo\na=(null)\nmissing=(null)\n"
                           "x-test=(null)\nbody[11,nul]=hello world") == 0);
  /* Chunked upload, body split over chunks. */
  CHECK(fx, simple(fx->port,
                   "PUT /echo?a=z HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
                   &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, strcmp(R.body, "PUT /echo\nq:a=z\na=z\nmissing=(null)\n"
                           "x-test=(null)\nbody[7,nul]=abcdefg") == 0);
out:
  uv_async_send(&fx->done);
  return NULL;
}

static void test_post_body(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_post);
  assert_int_equal(atomic_load(&fx.handled), 2);
  fx_stop(&fx);
}

static void *cl_toobig(void *arg) {
  struct fx *fx = arg;
  static char req[4096];
  char v[64];
  int n;

  /* Declared too long: refused before the body is read. */
  n = snprintf(req, sizeof req,
               "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n"
               "\r\n");
  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_send(&C, req, (size_t)n) == 0);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, R.status == 413);
  CHECK(fx, head_value(&R, "Content-Type", v, sizeof v) != NULL);
  CHECK(fx, strcmp(v, "application/json") == 0);
  CHECK(fx, strcmp(R.body, "{\"error\":\"request body too large\","
                           "\"code\":\"ETOOBIG\"}") == 0);
  cli_close(&C);

  /* Exactly at the cap is fine. */
  memset(req, 0, sizeof req);
  n = snprintf(req, sizeof req,
               "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n"
               "Connection: close\r\n\r\n");
  memset(req + n, 'b', 1024);
  CHECK(fx, simple(fx->port, req, &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, strstr(R.body, "body[1024,nul]=bbbb") != NULL);

  /* Chunked past the cap: discarded, then 413. */
  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_sends(&C, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n") == 0);
  memset(req, 'c', 800);
  CHECK(fx, cli_sends(&C, "320\r\n") == 0);
  CHECK(fx, cli_send(&C, req, 800) == 0);
  CHECK(fx, cli_sends(&C, "\r\n320\r\n") == 0);
  CHECK(fx, cli_send(&C, req, 800) == 0);
  CHECK(fx, cli_sends(&C, "\r\n0\r\n\r\n") == 0);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, R.status == 413);
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_toobig(void **state) {
  struct fx fx;
  const struct parley_http_stats *st;
  (void)state;

  fx_start(&fx, 1024, 0, 0);
  fx_run(&fx, cl_toobig);
  assert_int_equal(atomic_load(&fx.handled), 1); /* only the 1024 one */
  st = parley_http_stats(fx.h);
  assert_int_equal(st->requests, 3);
  assert_int_equal(st->refused, 2);
  assert_int_equal(st->responses_4xx, 2);
  assert_int_equal(st->responses_2xx, 1);
  fx_stop(&fx);
}

static void *cl_suspend(void *arg) {
  struct fx *fx = arg;
  double t0;

  t0 = now_s();
  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_sends(&C, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  /* While /later is parked, other requests are served at once. */
  CHECK(fx, wait_atomic(&fx->handled, 1, 2000));
  CHECK(fx, simple(fx->port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &R) ==
                0);
  CHECK(fx, R.status == 200);
  CHECK(fx, now_s() - t0 < 0.18);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, strcmp(R.body, "late") == 0);
  CHECK(fx, R.t_end - t0 >= 0.19);
  CHECK(fx, R.t_end - t0 < 1.5);
  /* The connection stays usable after a suspended answer. */
  CHECK(fx, cli_sends(&C, "GET /echo?a=2 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, strstr(R.body, "a=2\n") != NULL);
  /* A stream started after a suspend. */
  t0 = now_s();
  CHECK(fx, cli_sends(&C, "GET /later?sse HTTP/1.1\r\nHost: x\r\n\r\n") ==
                0);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, strcmp(R.body, "data: late\n\n") == 0);
  CHECK(fx, R.t_end - t0 >= 0.19);
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_suspend(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_suspend);
  assert_int_equal(atomic_load(&fx.closes), 0); /* answered: no close cb */
  assert_int_equal(fx.flood_rc, 0);
  assert_int_equal(parley_http_stats(fx.h)->responses_2xx, 4);
  assert_int_equal(parley_http_stats(fx.h)->streams_open, 0);
  fx_stop(&fx);
}

static void *cl_sse(void *arg) {
  struct fx *fx = arg;
  char v[64];

  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_sends(&C, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, head_value(&R, "Content-Type", v, sizeof v) != NULL);
  CHECK(fx, strcmp(v, "text/event-stream") == 0);
  CHECK(fx, head_value(&R, "Cache-Control", v, sizeof v) != NULL);
  CHECK(fx, strcmp(v, "no-cache") == 0);
  CHECK(fx, strcmp(R.body, "data: 1\n\ndata: 2\n\ndata: 3\n\n") == 0);
  /* Written 100 ms apart: the first event came well before the end. */
  CHECK(fx, R.t_end - R.t_first >= 0.15);
  /* Keep-alive survives the stream. */
  CHECK(fx, cli_sends(&C, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  CHECK(fx, cli_response(&C, &R) == 0);
  CHECK(fx, R.status == 200);
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_sse(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_sse);
  assert_int_equal(fx.sse_n, 3);
  assert_int_equal(atomic_load(&fx.closes), 0);
  assert_int_equal(parley_http_stats(fx.h)->streams_open, 0);
  fx_stop(&fx);
}

static void *cl_idle_stream(void *arg) {
  struct fx *fx = arg;
  double c0, c1;
  size_t end;

  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_sends(&C, "GET /idle HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  /* The head arrives although no event was written yet. */
  end = cli_until(&C, "\r\n\r\n");
  CHECK(fx, end > 0);
  CHECK(fx, strncmp(C.buf, "HTTP/1.1 200", 12) == 0);
  sleep_ms(50);
  /* An idle stream must not make the server spin. */
  c0 = cpu_s();
  sleep_ms(1000);
  c1 = cpu_s();
  CHECK(fx, c1 - c0 < 0.1);
  /* Hanging up is noticed although the stream is parked. */
  CHECK(fx, atomic_load(&fx->closes) == 0);
  cli_close(&C);
  CHECK(fx, wait_atomic(&fx->closes, 1, 2000));
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_idle_stream_cpu(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_idle_stream);
  assert_null(fx.idle); /* cleared by the close cb */
  assert_int_equal(atomic_load(&fx.closes), 1);
  assert_int_equal(parley_http_stats(fx.h)->streams_open, 0);
  fx_stop(&fx);
}

static void *cl_disconnect(void *arg) {
  struct fx *fx = arg;

  /* A parked request whose client hangs up. */
  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_sends(&C, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  CHECK(fx, wait_atomic(&fx->parked, 1, 2000));
  sleep_ms(20);
  CHECK(fx, atomic_load(&fx->closes) == 0);
  cli_close(&C);
  CHECK(fx, wait_atomic(&fx->closes, 1, 2000));

  /* A client that hangs up half-way through its body: the handler never
   * runs and the server goes on. */
  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_sends(&C, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                          "Content-Length: 1000\r\n\r\n0123456789") == 0);
  sleep_ms(50);
  cli_close(&C);
  sleep_ms(50);
  CHECK(fx, simple(fx->port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &R) ==
                0);
  CHECK(fx, R.status == 200);
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_disconnect_close_cb(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_disconnect);
  assert_int_equal(atomic_load(&fx.closes), 1);
  assert_int_equal(atomic_load(&fx.handled), 2); /* /hold and the GET */
  fx_stop(&fx);
}

static void *cl_garbage(void *arg) {
  struct fx *fx = arg;
  static char big[100 * 1024];
  int rc, n;

  /* Binary junk instead of a request line. */
  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_send(&C, "\x01\x02\xff garbage \x00\x7f\r\n\r\n", 17) == 0);
  rc = cli_response(&C, &R);
  CHECK(fx, rc < 0 || R.status == 400);
  cli_close(&C);
  CHECK(fx, simple(fx->port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &R) ==
                0);
  CHECK(fx, R.status == 200);

  /* A request line with no version. */
  CHECK(fx, simple(fx->port, "GET\r\n\r\n", &R) < 0 || R.status == 400);

  /* 100 KiB of header: more than the connection may hold. */
  n = snprintf(big, sizeof big, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(big + n, 'h', sizeof big - (size_t)n - 5);
  memcpy(big + sizeof big - 5, "\r\n\r\n", 5);
  CHECK(fx, cli_open(&C, fx->port) == 0);
  (void)cli_send(&C, big, sizeof big - 1); /* may fail once refused */
  rc = cli_response(&C, &R);
  CHECK(fx, rc < 0 || (R.status >= 400 && R.status < 500));
  cli_close(&C);

  CHECK(fx, simple(fx->port, "GET /echo?a=ok HTTP/1.1\r\nHost: x\r\n\r\n",
                   &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, strstr(R.body, "a=ok\n") != NULL);
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_garbage(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_garbage);
  assert_int_equal(atomic_load(&fx.handled), 2); /* the two good GETs */
  fx_stop(&fx);
}

static void *cl_slow(void *arg) {
  struct fx *fx = arg;
  double t0, t1;
  int rc;

  /* Half a request, then nothing. */
  CHECK(fx, cli_open(&C2, fx->port) == 0);
  t0 = now_s();
  CHECK(fx, cli_sends(&C2, "GET /echo HTTP/1.1\r\nHost: x\r\n") == 0);
  sleep_ms(300);
  /* Meanwhile a normal client is served. */
  CHECK(fx, simple(fx->port, "GET /echo?a=fast HTTP/1.1\r\nHost: x\r\n\r\n",
                   &R) == 0);
  CHECK(fx, R.status == 200);
  CHECK(fx, strstr(R.body, "a=fast\n") != NULL);
  /* The staller is cut off after idle_timeout_s = 1. */
  rc = cli_wait_closed(&C2);
  t1 = now_s();
  CHECK(fx, rc == 1);
  CHECK(fx, t1 - t0 >= 0.9);
  CHECK(fx, t1 - t0 < 3.5);
out:
  cli_close(&C2);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_slow_client(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 1, 0);
  fx_run(&fx, cl_slow);
  assert_int_equal(atomic_load(&fx.handled), 1);
  fx_stop(&fx);
}

static void *cl_flood(void *arg) {
  struct fx *fx = arg;
  int rc;

  /* The handler writes far more than max_stream_buffer before MHD can send
   * any of it: the stream ends with an error, the close cb runs. */
  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_sends(&C, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  rc = cli_response(&C, &R);
  CHECK(fx, rc < 0); /* the chunked body never terminates properly */
  CHECK(fx, wait_atomic(&fx->closes, 1, 2000));
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_stream_overflow(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 64 * 1024);
  fx_run(&fx, cl_flood);
  assert_int_equal(fx.flood_rc, PARLEY_ELIMIT);
  assert_int_equal(fx.flood_writes, 5); /* 4 x 16 KiB fit, the 5th not */
  assert_int_equal(atomic_load(&fx.closes), 1);
  assert_int_equal(parley_http_stats(fx.h)->streams_open, 0);
  fx_stop(&fx);
}

static void *cl_open_at_free(void *arg) {
  struct fx *fx = arg;
  struct cli *a = &C, *b = &C2;

  /* Leave a parked request and an idle stream open for fx_stop. */
  CHECK(fx, cli_open(a, fx->port) == 0);
  CHECK(fx, cli_sends(a, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  CHECK(fx, cli_open(b, fx->port) == 0);
  CHECK(fx, cli_sends(b, "GET /idle HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  CHECK(fx, wait_atomic(&fx->parked, 2, 2000));
  sleep_ms(50);
  fx->fds[0] = a->fd;
  fx->fds[1] = b->fd;
  a->fd = b->fd = -1;
out:
  uv_async_send(&fx->done);
  return NULL;
}

static void test_free_with_open_requests(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_open_at_free);
  assert_int_equal(atomic_load(&fx.closes), 0);
  parley_http_free(fx.h); /* close cbs run for both */
  fx.h = NULL;
  assert_int_equal(atomic_load(&fx.closes), 2);
  assert_null(fx.idle);
  fx_stop(&fx);
}

static void *cl_quit(void *arg) {
  struct fx *fx = arg;
  int rc;

  CHECK(fx, cli_open(&C, fx->port) == 0);
  CHECK(fx, cli_sends(&C, "GET /quit HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
  /* The answer may or may not get out before the daemon stops. */
  rc = cli_response(&C, &R);
  CHECK(fx, rc < 0 || R.status == 200);
  CHECK(fx, rc < 0 || cli_wait_closed(&C) == 1);
out:
  cli_close(&C);
  uv_async_send(&fx->done);
  return NULL;
}

static void test_free_from_handler(void **state) {
  struct fx fx;
  (void)state;

  fx_start(&fx, 0, 0, 0);
  fx_run(&fx, cl_quit);
  assert_null(fx.h);
  fx_stop(&fx);
}

static void test_config_errors(void **state) {
  struct parley_http_config cfg;
  struct parley_http *h = (struct parley_http *)&cfg;
  uv_loop_t loop;
  (void)state;

  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&cfg, 0, sizeof cfg);
  cfg.loop = &loop;
  cfg.handler = handler;
  cfg.host = "not an address";
  assert_int_equal(parley_http_new(&cfg, &h), PARLEY_EINVAL);
  assert_null(h);
  cfg.host = "127.0.0.1";
  cfg.max_body = PARLEY_MAX_HTTP_BODY + 1;
  assert_int_equal(parley_http_new(&cfg, &h), PARLEY_ERANGE);
  cfg.max_body = 0;
  cfg.handler = NULL;
  assert_int_equal(parley_http_new(&cfg, &h), PARLEY_EINVAL);
  parley_http_free(NULL);

  /* IPv6 loopback, if the host has it. */
  cfg.handler = handler;
  cfg.host = "::1";
  if (parley_http_new(&cfg, &h) == PARLEY_OK) {
    assert_true(parley_http_port(h) != 0);
    parley_http_free(h);
  }
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_query),
      cmocka_unit_test(test_post_body),
      cmocka_unit_test(test_toobig),
      cmocka_unit_test(test_suspend),
      cmocka_unit_test(test_sse),
      cmocka_unit_test(test_idle_stream_cpu),
      cmocka_unit_test(test_disconnect_close_cb),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_slow_client),
      cmocka_unit_test(test_stream_overflow),
      cmocka_unit_test(test_free_with_open_requests),
      cmocka_unit_test(test_free_from_handler),
      cmocka_unit_test(test_config_errors),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
