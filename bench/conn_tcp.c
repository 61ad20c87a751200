/*
 * conn_tcp.c — the physical limit row of workload 7 (registrations with a
 * new link each): plain TCP on loopback, no encryption, no index.  A
 * server process accepts and answers; a client process keeps
 * --concurrency connections in flight, each a new TCP connection with
 * --rounds request/reply exchanges and then a close (a Parley
 * registration over a new link takes two round trips: handshake messages
 * 1 and 2, then message 3 with REGISTER and the OK).  Both are libuv
 * loops, one process each (as parley-index and parley_loadgen are), so
 * the figure is what the kernel's connection set-up and tear-down allow
 * on this machine.
 *
 *   conn_tcp [--conns N] [--concurrency C] [--rounds K] [--req BYTES]
 *            [--rep BYTES]
 *
 * Prints RESULT conns=N done=D failed=F seconds=S rate=R (connections per
 * second).
 */
#define _DEFAULT_SOURCE 1
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

struct opts {
  unsigned conns, concurrency, rounds;
  size_t req, rep;
};

static struct opts o = {50000, 64, 2, 200, 200};
static char buf_out[65536];

/* ---- Server: per round read req bytes, write rep bytes; then close ------- */

struct sconn {
  uv_tcp_t tcp;
  size_t got;
  unsigned replied;
  char in[65536];
  uv_write_t wr[2]; /* a round's callback may still be due at the next */
};

static void s_closed(uv_handle_t *h) { free(h->data); }

static void s_written(uv_write_t *w, int status) {
  struct sconn *c = w->data;
  if ((status < 0 || c->replied == o.rounds) &&
      !uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, s_closed);
}

static void s_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  struct sconn *c = h->data;
  (void)sz;
  *b = uv_buf_init(c->in, sizeof c->in);
}

static void s_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  struct sconn *c = st->data;
  uv_buf_t out = uv_buf_init(buf_out, (unsigned)o.rep);
  (void)b;
  if (n < 0) {
    uv_close((uv_handle_t *)&c->tcp, s_closed);
    return;
  }
  c->got += (size_t)n;
  if (c->got < o.req * (c->replied + 1))
    return;
  if (++c->replied == o.rounds)
    uv_read_stop(st);
  c->wr[c->replied & 1].data = c;
  if (uv_write(&c->wr[c->replied & 1], st, &out, 1, s_written) != 0)
    uv_close((uv_handle_t *)&c->tcp, s_closed);
}

static void s_accept(uv_stream_t *srv, int status) {
  struct sconn *c;
  if (status < 0 || (c = calloc(1, sizeof *c)) == NULL)
    return;
  uv_tcp_init(srv->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, s_alloc, s_read) != 0)
    uv_close((uv_handle_t *)&c->tcp, s_closed);
}

/* ---- Client: C connections in flight, each connect, K rounds, close ----- */

struct cconn {
  uv_tcp_t tcp;
  uv_connect_t cr;
  uv_write_t wr[2]; /* as the server's */
  size_t got;
  unsigned rounds;
  char in[65536];
};

static struct sockaddr_in srv_addr;
static unsigned started, done, failed;

static void c_start(uv_loop_t *loop);

static void c_closed(uv_handle_t *h) {
  uv_loop_t *loop = h->loop;
  free(h->data);
  if (started < o.conns)
    c_start(loop);
}

static void c_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  struct cconn *c = h->data;
  (void)sz;
  *b = uv_buf_init(c->in, sizeof c->in);
}

static void c_written(uv_write_t *w, int status);

/* The next round's request. */
static int c_send(struct cconn *c) {
  uv_buf_t out = uv_buf_init(buf_out, (unsigned)o.req);
  uv_write_t *w = &c->wr[c->rounds & 1];
  w->data = c;
  return uv_write(w, (uv_stream_t *)&c->tcp, &out, 1, c_written);
}

static void c_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  struct cconn *c = st->data;
  (void)b;
  if (n < 0) {
    failed++;
    uv_close((uv_handle_t *)&c->tcp, c_closed);
    return;
  }
  c->got += (size_t)n;
  if (c->got < o.rep * (c->rounds + 1))
    return;
  if (++c->rounds == o.rounds) {
    done++;
    uv_close((uv_handle_t *)&c->tcp, c_closed);
  } else if (c_send(c) != 0) {
    failed++;
    uv_close((uv_handle_t *)&c->tcp, c_closed);
  }
}

static void c_written(uv_write_t *w, int status) {
  struct cconn *c = w->data;
  /* A close after the last reply cancels nothing that matters. */
  if (status < 0 && !uv_is_closing((uv_handle_t *)&c->tcp)) {
    failed++;
    uv_close((uv_handle_t *)&c->tcp, c_closed);
  }
}

static void c_connected(uv_connect_t *cr, int status) {
  struct cconn *c = cr->data;
  if (status < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, c_alloc, c_read) != 0) {
    failed++;
    uv_close((uv_handle_t *)&c->tcp, c_closed);
    return;
  }
  if (c_send(c) != 0) {
    failed++;
    uv_close((uv_handle_t *)&c->tcp, c_closed);
  }
}

static void c_start(uv_loop_t *loop) {
  struct cconn *c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  started++;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->cr.data = c;
  if (uv_tcp_connect(&c->cr, &c->tcp, (const struct sockaddr *)&srv_addr,
                     c_connected) != 0) {
    failed++;
    uv_close((uv_handle_t *)&c->tcp, c_closed);
  }
}

static unsigned long arg_num(const char *s, unsigned long max) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*end != '\0' || v == 0 || v > max) {
    fprintf(stderr, "conn_tcp: bad number '%s'\n", s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  uv_loop_t loop, cloop;
  uv_tcp_t srv;
  int len = sizeof srv_addr, sync[2];
  pid_t child;
  char go;
  double t0, secs;

  for (int i = 1; i < argc; i += 2) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (val != NULL && strcmp(opt, "--conns") == 0) {
      o.conns = (unsigned)arg_num(val, 100000000);
    } else if (val != NULL && strcmp(opt, "--concurrency") == 0) {
      o.concurrency = (unsigned)arg_num(val, 10000);
    } else if (val != NULL && strcmp(opt, "--rounds") == 0) {
      o.rounds = (unsigned)arg_num(val, 100);
    } else if (val != NULL && strcmp(opt, "--req") == 0) {
      o.req = arg_num(val, sizeof buf_out);
    } else if (val != NULL && strcmp(opt, "--rep") == 0) {
      o.rep = arg_num(val, sizeof buf_out);
    } else {
      fprintf(stderr, "usage: conn_tcp [--conns N] [--concurrency C] "
                      "[--rounds K] [--req BYTES] [--rep BYTES]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  memset(buf_out, 'x', sizeof buf_out);
  /* The listener is bound before the fork, so the client knows its port. */
  uv_loop_init(&loop);
  uv_tcp_init(&loop, &srv);
  uv_ip4_addr("127.0.0.1", 0, &srv_addr);
  if (uv_tcp_bind(&srv, (const struct sockaddr *)&srv_addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&srv, 4096, s_accept) != 0 ||
      uv_tcp_getsockname(&srv, (struct sockaddr *)&srv_addr, &len) != 0 ||
      pipe(sync) != 0) {
    fprintf(stderr, "conn_tcp: cannot listen\n");
    return 1;
  }
  child = fork();
  if (child < 0)
    return 1;
  if (child == 0) { /* server: serve until killed */
    if (uv_loop_fork(&loop) != 0)
      _exit(1);
    close(sync[0]);
    if (write(sync[1], "g", 1) != 1)
      _exit(1);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(sync[1]);
  if (read(sync[0], &go, 1) != 1)
    return 1;
  /* The client runs on a loop of its own; the listener's loop is never
   * run here again (the child serves). */
  uv_loop_init(&cloop);
  t0 = (double)uv_hrtime() / 1e9;
  for (unsigned i = 0; i < o.concurrency && i < o.conns; i++)
    c_start(&cloop);
  uv_run(&cloop, UV_RUN_DEFAULT);
  secs = (double)uv_hrtime() / 1e9 - t0;
  kill(child, SIGTERM);
  waitpid(child, NULL, 0);
  printf("RESULT conns=%u done=%u failed=%u seconds=%.3f rate=%.1f\n", o.conns,
         done, failed, secs, (double)done / secs);
  return failed > 0 ? 1 : 0;
}
