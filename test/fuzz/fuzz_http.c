/* fuzz_http.c — the HTTP request handling of both daemons' servers
 * (src/http/server.c on libmicrohttpd, inside a libuv loop) fed arbitrary
 * bytes as one client connection.
 *
 * Each input is written into one end of a socketpair whose other end is
 * handed to the server as an accepted connection; the loop runs until the
 * server closes it.  The handler exercises every way of answering:
 * immediately, after a suspend (answered on a later loop turn), and as a
 * stream.  Sanitizers catch memory errors; the harness also checks that
 * the server is left with no request (no leak of per-request state). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <errno.h>
#include <stdlib.h>

#include "http/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct parley_http *srv;
static uv_timer_t later;
static struct parley_http_req *parked;

static void answer_parked(uv_timer_t *t) {
  (void)t;
  if (parked) {
    parley_http_respond(parked, 200, "text/plain", "late", 4, NULL);
    parked = NULL;
  }
}

static void gone(void *data, struct parley_http_req *r) {
  (void)data;
  if (parked == r)
    parked = NULL;
}

static void handler(void *ctx, struct parley_http_req *r) {
  const char *path = parley_http_path(r);
  size_t blen = 0;
  const uint8_t *body = parley_http_body(r, &blen);
  static const char *const hdrs[] = {"X-Fuzz", "1", NULL};
  (void)ctx;

  /* Touch every accessor the daemons use. */
  (void)parley_http_method(r);
  (void)parley_http_query(r, "topic");
  (void)parley_http_header(r, "Authorization");
  if (strcmp(path, "/suspend") == 0 && parked == NULL) {
    parked = r;
    parley_http_set_close_cb(r, gone, NULL);
    parley_http_suspend(r);
    uv_timer_start(&later, answer_parked, 0, 0);
    return;
  }
  if (strcmp(path, "/stream") == 0 &&
      parley_http_stream_start(r, 200, "text/event-stream") == PARLEY_OK) {
    if (parley_http_stream_write(r, "data: x\n\n", 9) == PARLEY_OK)
      (void)parley_http_stream_write(r, body, blen ? blen : 1);
    parley_http_stream_end(r);
    return;
  }
  parley_http_respond(r, blen > 3 ? 201 : 404, "application/json", body,
                      blen, hdrs);
}

static void setup(void) {
  struct parley_http_config c;
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop);
  uv_timer_init(&loop, &later);
  memset(&c, 0, sizeof c);
  c.loop = &loop;
  c.host = "127.0.0.1";
  c.port = 0;
  c.max_body = 4096;
  c.max_conns = 16;
  c.idle_timeout_s = 1;
  c.max_stream_buffer = 1024;
  c.handler = handler;
  if (parley_http_new(&c, &srv) != PARLEY_OK)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int sv[2];
  size_t off = 0;
  char sink[4096];
  int done = 0;

  if (srv == NULL)
    setup();
  if (size > 65536)
    return 0;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return 0;
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  if (parley_http_add_connection(srv, sv[1]) != PARLEY_OK) {
    close(sv[0]);
    return 0;
  }
  /* Feed the input, then half-close; drain answers until the server hangs
   * up.  Bounded: the idle timeout (1 s) ends any stuck connection. */
  for (int turns = 0; turns < 20000 && !done; turns++) {
    struct pollfd p = {sv[0], POLLIN, 0};
    if (off < size) {
      ssize_t w = write(sv[0], data + off, size - off);
      if (w > 0)
        off += (size_t)w;
      if (off == size)
        shutdown(sv[0], SHUT_WR);
    } else if (off == size && size == 0) {
      shutdown(sv[0], SHUT_WR);
      off = 1;
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    if (poll(&p, 1, 0) > 0) {
      ssize_t r = read(sv[0], sink, sizeof sink);
      if (r == 0 || (r < 0 && errno != EAGAIN))
        done = 1;
    }
  }
  close(sv[0]);
  /* Let the server notice and free the connection. */
  for (int i = 0; i < 50; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  if (parked != NULL)
    abort(); /* a suspended request outlived its connection */
  return 0;
}
