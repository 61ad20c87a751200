/* test_webhook.c — the alert webhooks (index/webhook.h) and the libcurl
 * client under them (index/httpc.h): the signature (RFC 4231 vector),
 * back-off, URL parsing (http and https), configuration checks, and real
 * deliveries to a small HTTP server on 127.0.0.1 run by the test itself on
 * the same libuv loop: a valid signature and the same delivery id on every
 * attempt, a retry after a 500, giving up after a refused connection and
 * after a receiver that never answers, an answer over the size cap, and
 * cancellation when the webhook is freed mid-flight. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "index/httpc.h"
#include "index/webhook.h"

static const char SECRET[] = "unit-test-webhook-secret-0123456789";

/* ---- pure helpers --------------------------------------------------------- */

static void test_sign(void **state) {
  char sig[PARLEY_WEBHOOK_SIG_LEN];
  const char *data = "what do ya want for nothing?";
  (void)state;

  /* RFC 4231, test case 2 */
  parley_webhook_sign((const uint8_t *)"Jefe", 4, data, strlen(data), sig);
  assert_string_equal(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f0"
                           "89d2739839dec58b964ec3843");
}

static void test_backoff(void **state) {
  (void)state;
  assert_int_equal(parley_webhook_backoff_ms(1000, 1), 1000);
  assert_int_equal(parley_webhook_backoff_ms(1000, 2), 2000);
  assert_int_equal(parley_webhook_backoff_ms(1000, 4), 8000);
  assert_int_equal(parley_webhook_backoff_ms(1000, 30), 60000);
  assert_int_equal(parley_webhook_backoff_ms(250, 3), 1000);
}

static void test_parse_url(void **state) {
  struct parley_webhook_url u;
  static const char *const bad[] = {
      "http://",        "https://",      "http://:80/",   "http://h:0/",
      "http://h:99999/", "http://h:x/",   "http://u@h/",   "ftp://h/",
      "http://h/a b",   "http://h/#frag", "http://[::1/",  "http://[::1]x/",
      "HTTP://h/",      "http://h\x7f/", "file:///etc/passwd", ""};
  (void)state;

  assert_int_equal(parley_webhook_parse_url("http://127.0.0.1:8080/hook?x=1",
                                            &u),
                   PARLEY_OK);
  assert_int_equal(u.tls, 0);
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 8080);
  assert_string_equal(u.path, "/hook?x=1");
  assert_int_equal(parley_webhook_parse_url("http://example.org", &u),
                   PARLEY_OK);
  assert_int_equal(u.port, 80);
  assert_string_equal(u.path, "/");
  assert_int_equal(parley_webhook_parse_url("https://hooks.example.org", &u),
                   PARLEY_OK);
  assert_int_equal(u.tls, 1);
  assert_int_equal(u.port, 443);
  assert_string_equal(u.host, "hooks.example.org");
  assert_int_equal(parley_webhook_parse_url("https://[::1]:9/a?b", &u),
                   PARLEY_OK);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 9);
  assert_string_equal(u.path, "/a?b");
  assert_int_equal(parley_webhook_parse_url("http://h?q=1", &u), PARLEY_OK);
  assert_string_equal(u.path, "/?q=1");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (parley_webhook_parse_url(bad[i], &u) != PARLEY_EINVAL) {
      print_error("accepted: %s\n", bad[i]);
      fail();
    }
  }
}

/* ---- a tiny HTTP server on the test's loop ---------------------------------- */

enum { ANSWER_200, ANSWER_500, ANSWER_NEVER, ANSWER_HUGE };

#define MAX_SEEN 8

struct seen {
  char event[64], delivery[64], sig[128], ctype[64];
  char body[4096];
  size_t body_len;
};

struct server {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  int port;
  int script[MAX_SEEN]; /* answer to request i (past the end: 200) */
  struct seen seen[MAX_SEEN];
  int nseen;
  struct sconn *conns; /* open connections */
};

struct sconn {
  struct server *srv;
  struct sconn *prev, *next;
  int closing;
  uv_tcp_t tcp;
  char buf[16384];
  size_t len;
  int done;
  uv_write_t wr;
  char *out;
};

static void sconn_closed(uv_handle_t *h) {
  struct sconn *c = h->data;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    c->srv->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  free(c->out);
  free(c);
}

static void sconn_close(struct sconn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, sconn_closed);
}

static void on_written(uv_write_t *w, int status) {
  struct sconn *c = w->data;
  (void)status;
  sconn_close(c);
}

static void header_value(const char *head, const char *name, char *out,
                         size_t cap) {
  size_t n = strlen(name);
  const char *p = head;

  out[0] = '\0';
  while ((p = strstr(p, "\r\n")) != NULL) {
    p += 2;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1, *e = strstr(v, "\r\n");
      while (*v == ' ')
        v++;
      snprintf(out, cap, "%.*s", (int)(e - v), v);
      return;
    }
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  struct sconn *c = h->data;
  (void)hint;
  b->base = c->buf + c->len;
  b->len = sizeof c->buf - 1 - c->len;
}

static void answer(struct sconn *c, int how) {
  static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                           "Connection: close\r\n\r\nok";
  static const char err[] = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n"
                            "Connection: close\r\n\r\n";
  uv_buf_t b;

  if (how == ANSWER_NEVER)
    return; /* keeps the connection open, silent */
  if (how == ANSWER_HUGE) {
    size_t n = 100 * 1024;
    c->out = malloc(n + 128);
    assert_non_null(c->out);
    int k = snprintf(c->out, 128,
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     n);
    memset(c->out + k, 'x', n);
    b = uv_buf_init(c->out, (unsigned)(k + n));
  } else {
    const char *s = how == ANSWER_500 ? err : ok;
    b = uv_buf_init((char *)s, (unsigned)strlen(s));
  }
  c->wr.data = c;
  assert_int_equal(uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written),
                   0);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct sconn *c = s->data;
  struct server *srv = c->srv;
  char *end, cl[32];
  size_t head, want;
  (void)b;

  if (n < 0) {
    sconn_close(c);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  if (c->done || (end = strstr(c->buf, "\r\n\r\n")) == NULL)
    return;
  head = (size_t)(end - c->buf) + 4;
  header_value(c->buf, "Content-Length", cl, sizeof cl);
  want = (size_t)strtoul(cl, NULL, 10);
  if (c->len < head + want)
    return;
  c->done = 1;
  if (srv->nseen < MAX_SEEN) {
    struct seen *x = &srv->seen[srv->nseen];
    int how = srv->script[srv->nseen];
    header_value(c->buf, "X-Parley-Event", x->event, sizeof x->event);
    header_value(c->buf, "X-Parley-Delivery", x->delivery,
                 sizeof x->delivery);
    header_value(c->buf, "X-Parley-Signature", x->sig, sizeof x->sig);
    header_value(c->buf, "Content-Type", x->ctype, sizeof x->ctype);
    x->body_len = want < sizeof x->body ? want : sizeof x->body - 1;
    memcpy(x->body, c->buf + head, x->body_len);
    x->body[x->body_len] = '\0';
    srv->nseen++;
    answer(c, how);
  } else {
    answer(c, ANSWER_200);
  }
}

static void on_conn(uv_stream_t *l, int status) {
  struct server *srv = l->data;
  struct sconn *c = calloc(1, sizeof *c);

  assert_int_equal(status, 0);
  assert_non_null(c);
  c->srv = srv;
  c->next = srv->conns;
  if (srv->conns != NULL)
    srv->conns->prev = c;
  srv->conns = c;
  uv_tcp_init(srv->loop, &c->tcp);
  c->tcp.data = c;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void server_start(struct server *srv, uv_loop_t *loop) {
  struct sockaddr_in a;
  struct sockaddr_storage got;
  int len = sizeof got;

  memset(srv, 0, sizeof *srv);
  srv->loop = loop;
  uv_tcp_init(loop, &srv->tcp);
  srv->tcp.data = srv;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&srv->tcp, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&srv->tcp, 16, on_conn), 0);
  uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&got, &len);
  srv->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* Closes the listener and the connections left open, runs the loop dry. */
static void loop_finish(uv_loop_t *loop, struct server *srv) {
  uv_close((uv_handle_t *)&srv->tcp, NULL);
  for (struct sconn *c = srv->conns; c != NULL; c = c->next)
    sconn_close(c);
  while (uv_run(loop, UV_RUN_NOWAIT) != 0)
    ;
  assert_int_equal(uv_loop_close(loop), 0);
}

static void noop_timer(uv_timer_t *t) { (void)t; }

static int64_t mono_ms(uv_loop_t *loop) {
  uv_update_time(loop);
  return (int64_t)uv_now(loop);
}

/* Runs the loop until *flag or the deadline.  Returns *flag. */
static int run_until(uv_loop_t *loop, const int *flag, int64_t ms) {
  int64_t end = mono_ms(loop) + ms;
  uv_timer_t tick;

  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, noop_timer, 10, 10);
  while (!*flag && mono_ms(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *flag;
}

/* ---- webhooks against the server ------------------------------------------ */

struct wh_env {
  uv_loop_t loop;
  struct server srv;
  struct parley_webhook *w;
  int freed;
  int cond;
};

static void wh_done(void *ctx) { ((struct wh_env *)ctx)->freed = 1; }

static void wh_start(struct wh_env *e, const char *url, unsigned attempts,
                     unsigned timeout_ms, int sign) {
  struct parley_webhook_config c;
  const char *urls[1];

  memset(&c, 0, sizeof c);
  urls[0] = url;
  c.loop = &e->loop;
  c.urls = urls;
  c.nurls = 1;
  if (sign) {
    c.secret = (const uint8_t *)SECRET;
    c.secret_len = strlen(SECRET);
  }
  c.max_attempts = attempts;
  c.base_delay_ms = 20;
  c.timeout_ms = timeout_ms;
  assert_int_equal(parley_webhook_new(&c, &e->w), PARLEY_OK);
}

static void wh_stop(struct wh_env *e) {
  parley_webhook_free(e->w, wh_done, e);
  assert_int_equal(run_until(&e->loop, &e->freed, 5000), 1);
  loop_finish(&e->loop, &e->srv);
}

/* Runs the loop until the webhook's stat picked by `which` reaches want
 * (10 s at most); returns the stats. */
static struct parley_webhook_stats wait_stat(struct wh_env *e, int which,
                                            uint64_t want) {
  struct parley_webhook_stats st;
  int64_t end = mono_ms(&e->loop) + 10000;
  uv_timer_t tick;

  uv_timer_init(&e->loop, &tick);
  uv_timer_start(&tick, noop_timer, 10, 10);
  for (;;) {
    uint64_t v;
    parley_webhook_get_stats(e->w, &st);
    v = which == 0 ? st.delivered : which == 1 ? st.failed : st.pending;
    if ((which == 2 ? v <= want : v >= want) || mono_ms(&e->loop) >= end)
      break;
    uv_run(&e->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&e->loop, UV_RUN_NOWAIT);
  return st;
}

static void test_deliver_signed_retry_after_500(void **state) {
  struct wh_env e;
  struct parley_webhook_stats st;
  char url[64], want_sig[PARLEY_WEBHOOK_SIG_LEN];
  const char *body = "{\"status\":\"firing\",\"alert\":{\"name\":\"x\"}}";
  (void)state;

  memset(&e, 0, sizeof e);
  assert_int_equal(uv_loop_init(&e.loop), 0);
  server_start(&e.srv, &e.loop);
  e.srv.script[0] = ANSWER_500;
  e.srv.script[1] = ANSWER_200;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", e.srv.port);
  wh_start(&e, url, 3, 2000, 1);
  assert_int_equal(parley_webhook_post(e.w, "firing", body, strlen(body)),
                   PARLEY_OK);
  parley_webhook_get_stats(e.w, &st);
  assert_int_equal(st.pending, 1);
  st = wait_stat(&e, 0, 1);
  assert_int_equal(st.delivered, 1);
  assert_int_equal(st.retries, 1);
  assert_int_equal(st.failed, 0);
  assert_int_equal(e.srv.nseen, 2);
  parley_webhook_sign((const uint8_t *)SECRET, strlen(SECRET), body,
                      strlen(body), want_sig);
  for (int i = 0; i < 2; i++) {
    assert_string_equal(e.srv.seen[i].event, "firing");
    assert_string_equal(e.srv.seen[i].ctype, "application/json");
    assert_string_equal(e.srv.seen[i].sig, want_sig);
    assert_string_equal(e.srv.seen[i].body, body);
    assert_int_equal(strlen(e.srv.seen[i].delivery), 16);
  }
  assert_string_equal(e.srv.seen[0].delivery, e.srv.seen[1].delivery);
  /* The delivery is gone once its timer is closed. */
  st = wait_stat(&e, 2, 0);
  assert_int_equal(st.pending, 0);
  /* An event name outside [a-z_] is refused. */
  assert_int_equal(parley_webhook_post(e.w, "Firing!", body, strlen(body)),
                   PARLEY_EINVAL);
  wh_stop(&e);
}

static void test_refused_gives_up(void **state) {
  struct wh_env e;
  struct parley_webhook_stats st;
  char url[64];
  int port;
  (void)state;

  memset(&e, 0, sizeof e);
  assert_int_equal(uv_loop_init(&e.loop), 0);
  server_start(&e.srv, &e.loop);
  {
    /* A port nobody listens on: bound once, then closed. */
    uv_tcp_t probe;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_init(&e.loop, &probe);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&probe, (const struct sockaddr *)&a, 0), 0);
    uv_tcp_getsockname(&probe, (struct sockaddr *)&got, &len);
    port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&e.loop, UV_RUN_NOWAIT);
  }
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  wh_start(&e, url, 2, 2000, 0);
  assert_int_equal(parley_webhook_post(e.w, "resolved", "{}", 2), PARLEY_OK);
  st = wait_stat(&e, 1, 1);
  assert_int_equal(st.failed, 1);
  assert_int_equal(st.retries, 1);
  assert_int_equal(st.delivered, 0);
  wh_stop(&e);
}

static void test_silent_receiver_times_out(void **state) {
  struct wh_env e;
  struct parley_webhook_stats st;
  char url[64];
  int64_t t0;
  (void)state;

  memset(&e, 0, sizeof e);
  assert_int_equal(uv_loop_init(&e.loop), 0);
  server_start(&e.srv, &e.loop);
  e.srv.script[0] = ANSWER_NEVER;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", e.srv.port);
  wh_start(&e, url, 1, 300, 0);
  t0 = mono_ms(&e.loop);
  assert_int_equal(parley_webhook_post(e.w, "firing", "{}", 2), PARLEY_OK);
  st = wait_stat(&e, 1, 1);
  assert_int_equal(st.failed, 1);
  assert_int_equal(e.srv.nseen, 1);
  assert_true(mono_ms(&e.loop) - t0 >= 290);
  assert_true(mono_ms(&e.loop) - t0 < 5000);
  wh_stop(&e);
}

static void test_huge_answer_fails(void **state) {
  struct wh_env e;
  struct parley_webhook_stats st;
  char url[64];
  (void)state;

  memset(&e, 0, sizeof e);
  assert_int_equal(uv_loop_init(&e.loop), 0);
  server_start(&e.srv, &e.loop);
  e.srv.script[0] = ANSWER_HUGE;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", e.srv.port);
  wh_start(&e, url, 1, 2000, 0);
  assert_int_equal(parley_webhook_post(e.w, "firing", "{}", 2), PARLEY_OK);
  st = wait_stat(&e, 1, 1);
  assert_int_equal(st.failed, 1);
  assert_int_equal(st.delivered, 0);
  wh_stop(&e);
}

static void test_free_cancels_in_flight(void **state) {
  struct wh_env e;
  char url[64];
  (void)state;

  memset(&e, 0, sizeof e);
  assert_int_equal(uv_loop_init(&e.loop), 0);
  server_start(&e.srv, &e.loop);
  e.srv.script[0] = ANSWER_NEVER;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", e.srv.port);
  wh_start(&e, url, 5, 5000, 1);
  assert_int_equal(parley_webhook_post(e.w, "firing", "{}", 2), PARLEY_OK);
  while (e.srv.nseen == 0)
    uv_run(&e.loop, UV_RUN_ONCE); /* the POST arrived, no answer */
  assert_int_equal(e.srv.nseen, 1);
  wh_stop(&e); /* done runs: nothing leaks (ASan) */
  assert_int_equal(e.freed, 1);
}

static void test_config_checks(void **state) {
  struct parley_webhook_config c;
  struct parley_webhook *w = NULL;
  uv_loop_t loop;
  const char *urls[2] = {"https://example.org/hook", "ftp://example.org/"};
  (void)state;

  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&c, 0, sizeof c);
  c.loop = &loop;
  c.urls = urls;
  c.nurls = 2;
  assert_int_equal(parley_webhook_new(&c, &w), PARLEY_EINVAL);
  c.nurls = 0;
  assert_int_equal(parley_webhook_new(&c, &w), PARLEY_EINVAL);
  c.nurls = 1;
  c.ca_file = "/nonexistent/ca.pem";
  assert_int_equal(parley_webhook_new(&c, &w), PARLEY_EINVAL);
  c.ca_file = NULL;
  assert_int_equal(parley_webhook_new(&c, &w), PARLEY_OK);
  parley_webhook_free(w, NULL, NULL);
  while (uv_run(&loop, UV_RUN_NOWAIT) != 0)
    ;
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- httpc directly --------------------------------------------------------- */

struct got {
  int n, rc;
  long status;
  char body[64];
  size_t len;
};

static void on_got(void *ctx, const struct parley_httpc_response *res) {
  struct got *g = ctx;
  g->n++;
  g->rc = res->rc;
  g->status = res->status;
  g->len = res->body_len;
  snprintf(g->body, sizeof g->body, "%s", res->body);
}

static void httpc_closed(void *ctx) { *(int *)ctx = 1; }

static void test_httpc(void **state) {
  struct parley_httpc_config hc;
  struct parley_httpc_request rq;
  struct parley_httpc *c = NULL;
  struct parley_httpc_xfer *x = NULL;
  struct server srv;
  struct got g;
  uv_loop_t loop;
  char url[64];
  const char *bad_hdr[] = {"X-Evil: a\r\nInjected: b", NULL};
  int closed = 0;
  (void)state;

  assert_int_equal(uv_loop_init(&loop), 0);
  server_start(&srv, &loop);
  srv.script[0] = ANSWER_200;
  srv.script[1] = ANSWER_HUGE;
  srv.script[2] = ANSWER_NEVER;
  memset(&hc, 0, sizeof hc);
  hc.loop = &loop;
  hc.max_transfers = 1;
  assert_int_equal(parley_httpc_new(&hc, &c), PARLEY_OK);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", srv.port);
  memset(&rq, 0, sizeof rq);
  rq.method = "GET";
  rq.url = url;
  rq.max_response = 1024;
  memset(&g, 0, sizeof g);
  /* Refused at once, callback never runs. */
  rq.method = "PUT";
  assert_int_equal(parley_httpc_start(c, &rq, on_got, &g, NULL),
                   PARLEY_EINVAL);
  rq.method = "GET";
  rq.url = "gopher://127.0.0.1/";
  assert_int_equal(parley_httpc_start(c, &rq, on_got, &g, NULL),
                   PARLEY_EINVAL);
  rq.url = url;
  rq.headers = bad_hdr;
  assert_int_equal(parley_httpc_start(c, &rq, on_got, &g, NULL),
                   PARLEY_EINVAL);
  rq.headers = NULL;
  /* 200 "ok", NUL-terminated; never from inside start. */
  assert_int_equal(parley_httpc_start(c, &rq, on_got, &g, &x), PARLEY_OK);
  assert_int_equal(g.n, 0);
  assert_int_equal(parley_httpc_pending(c), 1);
  assert_int_equal(parley_httpc_start(c, &rq, on_got, &g, NULL),
                   PARLEY_ELIMIT);
  while (g.n == 0)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(g.rc, PARLEY_OK);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body, "ok");
  assert_int_equal(g.len, 2);
  /* Over max_response: ETOOBIG, no body. */
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_httpc_start(c, &rq, on_got, &g, &x), PARLEY_OK);
  while (g.n == 0)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(g.rc, PARLEY_ETOOBIG);
  assert_int_equal(g.len, 0);
  /* Cancelled: the callback runs inside cancel, with ECANCELED. */
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_httpc_start(c, &rq, on_got, &g, &x), PARLEY_OK);
  while (srv.nseen < 3)
    uv_run(&loop, UV_RUN_ONCE);
  parley_httpc_cancel(x);
  assert_int_equal(g.n, 1);
  assert_int_equal(g.rc, PARLEY_ECANCELED);
  assert_int_equal(parley_httpc_pending(c), 0);
  /* Freed with a transfer in flight: ECANCELED, then done. */
  memset(&g, 0, sizeof g);
  assert_int_equal(parley_httpc_start(c, &rq, on_got, &g, NULL), PARLEY_OK);
  parley_httpc_free(c, httpc_closed, &closed);
  assert_int_equal(g.n, 1);
  assert_int_equal(g.rc, PARLEY_ECANCELED);
  assert_int_equal(run_until(&loop, &closed, 5000), 1);
  loop_finish(&loop, &srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign),
      cmocka_unit_test(test_backoff),
      cmocka_unit_test(test_parse_url),
      cmocka_unit_test(test_config_checks),
      cmocka_unit_test(test_deliver_signed_retry_after_500),
      cmocka_unit_test(test_refused_gives_up),
      cmocka_unit_test(test_silent_receiver_times_out),
      cmocka_unit_test(test_huge_answer_fails),
      cmocka_unit_test(test_free_cancels_in_flight),
      cmocka_unit_test(test_httpc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
