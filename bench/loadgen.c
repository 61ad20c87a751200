/*
 * loadgen.c — parley_loadgen: registers N simulated peers with an index
 * over real secure links, keeps them alive with heartbeats, and reports
 * how fast they registered.
 *
 * Every simulated peer has its own Ed25519 identity and therefore its own
 * parley_net (the net layer takes one identity per net; see bench/README.md),
 * all on one libuv loop.  Each one dials the index (preamble, Noise XX,
 * HELLO with role PEER), sends REGISTER(addr = 127.0.0.1:<port>, name =
 * <prefix>-<i>) and, once the index answers OK(lease_ms), sends HEARTBEAT
 * every lease/3 until the end of --hold.  At most --concurrency links are
 * between "dialled" and "registered" at any time.
 *
 * A node that is not the Raft leader answers ENOTLEADER naming the leader's
 * peer address: the simulated peer then dials that address instead (and so
 * do all later dials), as parleyd does.
 *
 * With --drop every link is closed right after its OK: the peers stay
 * registered until their leases run out (give the index a long --lease),
 * and only --concurrency links are open at any time.  That is how a
 * registry of more peers than the file-descriptor limit allows links is
 * filled (bench/README.md).
 *
 * With --rereg R, once all are registered every peer sends R more
 * REGISTERs over its open link, one at a time, each with a new address
 * (a real registry change: applied, logged and made durable before the
 * OK): the index's registration throughput without the handshakes.
 *
 * Many links to one address:port from one source address make connect()
 * slow (PEERS_PER_SOURCE) and then run out of ephemeral ports: --sources
 * K binds the links to 127.0.0.1 .. 127.0.0.K (all of 127/8 is loopback
 * on Linux), by default one per 10 000 peers.
 *
 * Output (stdout): progress once a second, then a summary and one
 * machine-readable line starting with "RESULT ".  Exit 0 when every peer
 * registered, none was refused and no registered link was lost; 1
 * otherwise; 2 for bad flags.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/util.h"
#include "crypto/identity.h"
#include "net/link.h"
#include "wire/wire.h"

#define FD_RESERVE 64       /* fds kept for the loop, stdio, the index... */
/* Links per source address (--sources).  Linux's connect() takes the
 * even ports of the ephemeral range first (about 14 000 of 28 000 by
 * default) and past them scans the whole range for every connect: with
 * 15 000 links from one address the scan took two thirds of the load
 * generator's CPU. */
#define PEERS_PER_SOURCE 10000u
#define RETRY_DELAY_MS 200  /* re-dial after a link failed or closed */
#define MAX_PEERS 1000000u

enum sim_state {
  SIM_IDLE = 0,   /* not dialled yet, or waiting to re-dial */
  SIM_DIALLING,   /* connect, handshake, HELLO, REGISTER in flight */
  SIM_REGISTERED, /* OK received; heartbeating */
  SIM_DROPPED,    /* --drop: OK received, link closed on purpose */
};

struct sim {
  uint32_t index; /* 0..N-1 */
  int state;      /* enum sim_state */
  int ever_registered;
  int in_window;  /* counted in app.inflight */
  struct parley_identity id;
  struct parley_net *net;   /* owned; one per identity */
  struct parley_link *link; /* NULL when none */
  uv_timer_t timer;         /* heartbeats, or the re-dial delay */
  uint32_t next_req;
  uint32_t reg_req;     /* req of the REGISTER in flight */
  uint64_t dial_ms;     /* when the current attempt was dialled */
  uint32_t rereg_req;   /* req of the re-REGISTER in flight (0: none) */
  uint32_t rereg_done;  /* re-REGISTERs answered OK */
  int rereg_over;       /* its re-REGISTER sequence ended (either way) */
};

struct app {
  uv_loop_t *loop;
  char host[PARLEY_MAX_ADDR + 1]; /* current target (may follow a redirect) */
  uint16_t port;
  uint32_t npeers, concurrency, base_port;
  uint32_t nsources; /* 0: not set (one per PEERS_PER_SOURCE) */
  uint32_t rereg;    /* re-REGISTERs per peer after all registered */
  int drop;          /* close each link after its OK (--drop) */
  uint64_t rereg_after_ms; /* pause between the last OK and the first */
  uint64_t hold_ms;
  uint64_t timeout_ms; /* give up registering after this */
  const char *prefix;
  struct sim *sims;
  uint32_t next_fresh; /* first sim never dialled */
  uint32_t inflight;   /* sims in the dialling window */
  uint32_t *retry;     /* ring of sims waiting to re-dial (FIFO) */
  uint32_t retry_head, retry_len;

  uint64_t start_ms, all_ms;
  uint64_t rereg_start_ms, rereg_end_ms, hold_start_ms;
  uint64_t rereg_ok, rereg_err;
  uint32_t rereg_peers_done; /* peers whose re-REGISTERs are over: all R
                                answered OK, or one refused or lost */
  int rereg_running, rereg_over;
  uint32_t registered_once, registered_now;
  uint64_t *latency_ms; /* dial -> OK of each first registration */
  uint64_t dials, dial_failures, closes_after_reg, redirects;
  uint64_t hb_sent, hb_ok, hb_err, reg_err, other_err;
  uint64_t last_report_ms;
  uint32_t last_report_count;
  int all_done, holding, stopping;
  uv_timer_t tick;
  uv_signal_t sigint;
};

static struct app g_app;

static void dial_next(void);
static void sim_dial(struct sim *s);
static void schedule_retry(struct sim *s);

/* ---- helpers ------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: parley_loadgen --index HOST:PORT [--peers N] [--hold SECONDS]\n"
          "                      [--concurrency C] [--base-port P] [--prefix NAME]\n"
          "                      [--timeout SECONDS] [--rereg R] [--rereg-after S]\n"
          "                      [--sources K] [--drop]\n"
          "Registers N simulated peers (each with its own identity and secure\n"
          "link) with a parley-index, heartbeats them every lease/3 and keeps them\n"
          "for --hold seconds after the last one registered.\n"
          "  --peers N         simulated peers [default: 1000]\n"
          "  --hold S          seconds to keep them alive afterwards [default: 0]\n"
          "  --concurrency C   links between dial and OK at once [default: 64]\n"
          "  --base-port P     advertised addresses are 127.0.0.1:P+i [default: 20000]\n"
          "  --prefix NAME     names are NAME-i [default: load]\n"
          "  --timeout S       give up if not all registered by then [default: 600]\n"
          "  --rereg R         then R more REGISTERs per peer over its link, each\n"
          "                    with a new address [default: 0]\n"
          "  --rereg-after S   ... starting S seconds after the last first OK\n"
          "                    [default: 1]\n"
          "  --drop            close each link after its OK (peers stay registered\n"
          "                    until their leases run out; no heartbeats)\n"
          "  --sources K       bind links to 127.0.0.1 .. 127.0.0.K (a 127.x index\n"
          "                    only) [default: one per 10000 peers]\n");
}

/* The advertised port of simulated peer i: base-port + i, wrapped into
 * 1..65535 (nothing listens there; the index only stores it). */
static unsigned fake_port(uint32_t i) {
  return (unsigned)(((uint64_t)g_app.base_port - 1u + i) % 65535u) + 1u;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *sorted, uint32_t n, double p) {
  size_t i;
  if (n == 0)
    return 0;
  i = (size_t)(p * (double)(n - 1) + 0.5);
  return sorted[i];
}

/* Raises RLIMIT_NOFILE to its hard limit; caps the peer count when even the
 * hard limit cannot hold one fd per link (plus a reserve). */
static void raise_fd_limit(struct app *a) {
  struct rlimit rl;
  /* With --drop only the dialling window is open at once. */
  rlim_t need = (rlim_t)(a->drop ? a->concurrency : a->npeers) + FD_RESERVE;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    fprintf(stderr, "parley_loadgen: getrlimit: %s\n", strerror(errno));
    return;
  }
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
    /* Allowed with CAP_SYS_RESOURCE (up to fs.nr_open); else keep trying
     * with the hard limit below. */
    struct rlimit want = {need, need};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
      (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      fprintf(stderr, "parley_loadgen: setrlimit: %s\n", strerror(errno));
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need && !a->drop) {
    uint32_t cap = rl.rlim_cur > FD_RESERVE
                       ? (uint32_t)(rl.rlim_cur - FD_RESERVE) : 1;
    printf("fd limit %llu (hard) is below %llu links + %u reserve: "
           "capping --peers at %u\n",
           (unsigned long long)rl.rlim_cur, (unsigned long long)a->npeers,
           FD_RESERVE, cap);
    a->npeers = cap;
  }
}

/* ---- the dialling window --------------------------------------------------- */

static void leave_window(struct sim *s) {
  if (s->in_window) {
    s->in_window = 0;
    g_app.inflight--;
  }
}

static void hb_timer_cb(uv_timer_t *t);

static void send_heartbeat(struct sim *s) {
  struct parley_frame f;
  int rc;

  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_HEARTBEAT;
  f.u.req.req = ++s->next_req;
  rc = parley_link_send(s->link, &f);
  if (rc < 0) {
    g_app.hb_err++;
    return;
  }
  g_app.hb_sent++;
}

static void hb_timer_cb(uv_timer_t *t) {
  struct sim *s = t->data;

  if (s->state == SIM_REGISTERED && s->link != NULL && !g_app.stopping)
    send_heartbeat(s);
}

static void retry_timer_cb(uv_timer_t *t) {
  struct sim *s = t->data;
  if (g_app.stopping || s->state != SIM_IDLE)
    return;
  /* Back into the queue: re-dials share the window with fresh ones. */
  g_app.retry[(g_app.retry_head + g_app.retry_len) % g_app.npeers] = s->index;
  g_app.retry_len++;
  dial_next();
}

static void schedule_retry(struct sim *s) {
  s->state = SIM_IDLE;
  if (g_app.stopping)
    return;
  uv_timer_stop(&s->timer);
  uv_timer_start(&s->timer, retry_timer_cb, RETRY_DELAY_MS, 0);
}

/* The advertised address of peer i's registration number k (0 = the
 * first): a new port each time, so every re-REGISTER changes the entry. */
static void sim_addr(uint32_t i, uint32_t k, char *out, size_t cap) {
  snprintf(out, cap, "127.0.0.1:%u",
           fake_port((uint32_t)(((uint64_t)i + (uint64_t)k * 7919u) %
                                65535u)));
}

/* Peer s's re-REGISTERs are over (all answered, or one refused or lost):
 * the phase ends when every peer's are. */
static void rereg_peer_over(struct sim *s) {
  struct app *a = &g_app;

  if (s->rereg_over)
    return;
  s->rereg_over = 1;
  if (++a->rereg_peers_done == a->npeers) {
    a->rereg_end_ms = parley_mono_ms();
    a->rereg_over = 1;
  }
}

static void send_rereg(struct sim *s) {
  struct parley_frame f;
  char addr[PARLEY_MAX_ADDR + 1], name[PARLEY_MAX_NAME + 1];
  int rc;

  sim_addr(s->index, s->rereg_done + 1, addr, sizeof addr);
  snprintf(name, sizeof name, "%s-%" PRIu32, g_app.prefix, s->index);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_REGISTER;
  s->rereg_req = ++s->next_req;
  f.u.reg.req = s->rereg_req;
  f.u.reg.addr.ptr = addr;
  f.u.reg.addr.len = strlen(addr);
  f.u.reg.name.ptr = name;
  f.u.reg.name.len = strlen(name);
  rc = parley_link_send(s->link, &f);
  if (rc < 0) {
    s->rereg_req = 0;
    g_app.rereg_err++;
    rereg_peer_over(s);
  }
}

/* Starts the re-REGISTER phase: every peer sends its first one. */
static void rereg_start(void) {
  struct app *a = &g_app;

  a->rereg_start_ms = parley_mono_ms();
  printf("re-registering: %" PRIu32 " per peer over the open links\n",
         a->rereg);
  fflush(stdout);
  for (uint32_t i = 0; i < a->npeers; i++) {
    struct sim *s = &a->sims[i];
    if (s->state == SIM_REGISTERED && s->link != NULL) {
      send_rereg(s);
    } else {
      a->rereg_err++; /* not connected now: it cannot take part */
      rereg_peer_over(s);
    }
  }
}

static void rereg_answered(struct sim *s, int ok) {
  struct app *a = &g_app;

  s->rereg_req = 0;
  if (ok) {
    a->rereg_ok++;
    s->rereg_done++;
  } else {
    a->rereg_err++;
  }
  if (ok && s->rereg_done < a->rereg && s->link != NULL) {
    send_rereg(s);
    return;
  }
  rereg_peer_over(s);
}

static void on_registered(struct sim *s, uint64_t lease_ms) {
  struct app *a = &g_app;
  uint64_t now = parley_mono_ms(), hb;

  s->state = SIM_REGISTERED;
  leave_window(s);
  a->registered_now++;
  if (!s->ever_registered) {
    s->ever_registered = 1;
    a->latency_ms[a->registered_once++] = now - s->dial_ms;
    if (a->registered_once == a->npeers && !a->all_done) {
      a->all_done = 1;
      a->all_ms = now;
    }
  }
  if (a->drop) {
    /* Registered until its lease runs out; the link is not needed. */
    s->state = SIM_DROPPED;
    a->registered_now--;
    parley_link_close(s->link, PARLEY_ECLOSED);
    dial_next();
    return;
  }
  hb = (lease_ms ? lease_ms : 10000) / 3;
  if (hb < 100)
    hb = 100;
  uv_timer_stop(&s->timer);
  uv_timer_start(&s->timer, hb_timer_cb, hb, hb);
  dial_next();
}

/* ---- link callbacks -------------------------------------------------------- */

static void sim_open(struct parley_link *l) {
  struct sim *s = parley_link_data(l);
  struct parley_frame f;
  char addr[PARLEY_MAX_ADDR + 1], name[PARLEY_MAX_NAME + 1];
  int rc;

  if (s == NULL)
    return;
  sim_addr(s->index, s->rereg_done, addr, sizeof addr);
  snprintf(name, sizeof name, "%s-%" PRIu32, g_app.prefix, s->index);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_REGISTER;
  s->reg_req = ++s->next_req;
  f.u.reg.req = s->reg_req;
  f.u.reg.addr.ptr = addr;
  f.u.reg.addr.len = strlen(addr);
  f.u.reg.name.ptr = name;
  f.u.reg.name.len = strlen(name);
  rc = parley_link_send(l, &f); /* copies the frame into the queue */
  if (rc < 0) {
    fprintf(stderr, "peer %" PRIu32 ": REGISTER not sent: %s\n", s->index,
            parley_err_name(rc));
    parley_link_close(l, rc);
  }
}

/* ENOTLEADER with the leader's peer address: later dials go there. */
static void follow_redirect(const struct parley_str *to) {
  char addr[PARLEY_MAX_ADDR + 1], host[PARLEY_MAX_ADDR + 1];
  uint16_t port;

  if (to->len == 0 || to->len > PARLEY_MAX_ADDR)
    return;
  memcpy(addr, to->ptr, to->len);
  addr[to->len] = '\0';
  if (parley_parse_hostport(addr, host, sizeof host, &port) < 0 || port == 0)
    return;
  if (strcmp(host, g_app.host) != 0 || port != g_app.port) {
    snprintf(g_app.host, sizeof g_app.host, "%s", host);
    g_app.port = port;
    g_app.redirects++;
    printf("redirected to the leader at %s\n", addr);
  }
}

static void sim_frame(struct parley_link *l, const struct parley_frame *f) {
  struct sim *s = parley_link_data(l);
  int code;

  if (s == NULL)
    return;
  switch (f->type) {
  case PARLEY_FRAME_OK:
    if (s->state == SIM_DIALLING && f->u.ok.req == s->reg_req)
      on_registered(s, f->u.ok.value);
    else if (s->state == SIM_REGISTERED && s->rereg_req != 0 &&
             f->u.ok.req == s->rereg_req)
      rereg_answered(s, 1);
    else if (s->state == SIM_REGISTERED)
      g_app.hb_ok++;
    return;
  case PARLEY_FRAME_ERROR:
    code = -(int)f->u.error.code;
    if (code == PARLEY_ENOTLEADER) {
      follow_redirect(&f->u.error.text);
      parley_link_close(l, PARLEY_ENOTLEADER);
      return;
    }
    if (s->state == SIM_DIALLING && f->u.error.req == s->reg_req) {
      g_app.reg_err++;
      if (g_app.reg_err <= 5)
        fprintf(stderr, "peer %" PRIu32 ": REGISTER refused: %s %.*s\n",
                s->index, parley_err_name(code), (int)f->u.error.text.len,
                f->u.error.text.ptr);
      parley_link_close(l, code);
      return;
    }
    if (s->state == SIM_REGISTERED && s->rereg_req != 0 &&
        f->u.error.req == s->rereg_req) {
      if (g_app.rereg_err < 5)
        fprintf(stderr, "peer %" PRIu32 ": re-REGISTER refused: %s\n",
                s->index, parley_err_name(code));
      rereg_answered(s, 0);
      return;
    }
    if (s->state == SIM_REGISTERED) {
      g_app.hb_err++;
      if (g_app.hb_err <= 5)
        fprintf(stderr, "peer %" PRIu32 ": heartbeat refused: %s\n",
                s->index, parley_err_name(code));
      if (code == PARLEY_EUNKNOWNPEER)
        parley_link_close(l, code); /* re-registers on the re-dial */
      return;
    }
    g_app.other_err++;
    return;
  default:
    g_app.other_err++; /* the index sends nothing else unasked */
    return;
  }
}

static void sim_close(struct parley_link *l, int reason) {
  struct sim *s = parley_link_data(l);

  if (s == NULL)
    return;
  s->link = NULL;
  if (g_app.stopping || s->state == SIM_DROPPED)
    return;
  if (s->rereg_req != 0) {
    s->rereg_req = 0;
    g_app.rereg_err++; /* its re-REGISTERs end here */
    rereg_peer_over(s);
  }
  if (s->state == SIM_REGISTERED) {
    g_app.registered_now--;
    g_app.closes_after_reg++;
    uv_timer_stop(&s->timer);
    if (g_app.closes_after_reg <= 5)
      fprintf(stderr, "peer %" PRIu32 ": link closed after registering: %s\n",
              s->index, parley_err_name(reason));
    /* Re-dial at once, outside the window (it was registered). */
    s->state = SIM_IDLE;
    sim_dial(s);
    return;
  }
  if (reason != PARLEY_ENOTLEADER) {
    g_app.dial_failures++;
    if (g_app.dial_failures <= 5)
      fprintf(stderr, "peer %" PRIu32 ": link failed before OK: %s\n",
              s->index, parley_err_name(reason));
  }
  leave_window(s);
  if (reason == PARLEY_ENOTLEADER) {
    s->state = SIM_IDLE;
    sim_dial(s);
    return;
  }
  schedule_retry(s);
  dial_next();
}

static const struct parley_link_cbs SIM_CBS = {sim_open, sim_frame,
                                               sim_close};

/* ---- dialling ---------------------------------------------------------------- */

static void sim_dial(struct sim *s) {
  struct app *a = &g_app;
  int rc;

  if (!s->in_window) {
    s->in_window = 1;
    a->inflight++;
  }
  s->state = SIM_DIALLING;
  s->dial_ms = parley_mono_ms();
  a->dials++;
  rc = parley_net_connect(s->net, a->host, a->port, NULL, &SIM_CBS, s,
                          &s->link);
  if (rc < 0) {
    s->link = NULL;
    a->dial_failures++;
    if (a->dial_failures <= 5)
      fprintf(stderr, "peer %" PRIu32 ": dial failed: %s\n", s->index,
              parley_err_name(rc));
    leave_window(s);
    schedule_retry(s);
  }
}

/* Fills the window: re-dials first, then peers never dialled. */
static void dial_next(void) {
  struct app *a = &g_app;

  while (!a->stopping && a->inflight < a->concurrency) {
    struct sim *s;
    if (a->retry_len > 0) {
      s = &a->sims[a->retry[a->retry_head]];
      a->retry_head = (a->retry_head + 1) % a->npeers;
      a->retry_len--;
      if (s->state != SIM_IDLE)
        continue;
    } else if (a->next_fresh < a->npeers) {
      s = &a->sims[a->next_fresh++];
    } else {
      return;
    }
    sim_dial(s);
  }
}

/* ---- progress, end ---------------------------------------------------------- */

static void timer_closed(uv_handle_t *h) { (void)h; }

static void stop_all(void) {
  struct app *a = &g_app;
  uint32_t i;

  if (a->stopping)
    return;
  a->stopping = 1;
  uv_timer_stop(&a->tick);
  uv_close((uv_handle_t *)&a->tick, timer_closed);
  uv_close((uv_handle_t *)&a->sigint, timer_closed);
  for (i = 0; i < a->npeers; i++) {
    struct sim *s = &a->sims[i];
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, timer_closed);
    parley_net_free(s->net); /* closes its link; frees once closed */
    s->net = NULL;
    s->link = NULL;
  }
}

static void tick_cb(uv_timer_t *t) {
  struct app *a = t->data;
  uint64_t now = parley_mono_ms();
  double dt = (double)(now - a->last_report_ms) / 1000.0;

  if (!a->holding && !a->all_done && now - a->start_ms >= a->timeout_ms) {
    printf("timed out after %.0f s with %" PRIu32 " of %" PRIu32
           " registered\n", (double)a->timeout_ms / 1000.0,
           a->registered_once, a->npeers);
    stop_all();
    return;
  }
  if (!a->holding) {
    printf("t=%6.1fs registered=%" PRIu32 "/%" PRIu32 " (%.0f/s in the last "
           "interval) dialling=%" PRIu32 " failures=%" PRIu64 "\n",
           (double)(now - a->start_ms) / 1000.0, a->registered_once,
           a->npeers,
           dt > 0 ? (double)(a->registered_once - a->last_report_count) / dt
                  : 0.0,
           a->inflight, a->dial_failures);
    fflush(stdout);
    a->last_report_ms = now;
    a->last_report_count = a->registered_once;
    if (a->all_done) {
      double secs = (double)(a->all_ms - a->start_ms) / 1000.0;
      printf("all %" PRIu32 " peers registered in %.3f s: %.0f registrations/s\n",
             a->npeers, secs, secs > 0 ? (double)a->npeers / secs : 0.0);
      fflush(stdout);
      a->holding = 1;
      a->last_report_ms = now;
      if (a->rereg > 0) {
        a->rereg_running = 1;
        printf("re-registering in %.1f s\n",
               (double)a->rereg_after_ms / 1000.0);
        fflush(stdout);
      } else {
        a->rereg_over = 1;
      }
    }
    return;
  }
  if (a->rereg_running && a->rereg_start_ms == 0) {
    if (now - a->all_ms < a->rereg_after_ms)
      return;
    rereg_start();
    return;
  }
  if (a->rereg_running) {
    if (!a->rereg_over && now - a->rereg_start_ms >= a->timeout_ms) {
      printf("re-registration timed out: %" PRIu64 " of %" PRIu64 " answered\n",
             a->rereg_ok, (uint64_t)a->rereg * a->npeers);
      a->rereg_end_ms = now;
      a->rereg_over = 1;
    }
    if (!a->rereg_over) {
      if (now - a->last_report_ms >= 1000) {
        printf("t=%6.1fs re-registered %" PRIu64 "/%" PRIu64 "\n",
               (double)(now - a->start_ms) / 1000.0, a->rereg_ok,
               (uint64_t)a->rereg * a->npeers);
        fflush(stdout);
        a->last_report_ms = now;
      }
      return;
    }
    a->rereg_running = 0;
    {
      double secs = (double)(a->rereg_end_ms - a->rereg_start_ms) / 1000.0;
      printf("re-registered %" PRIu64 " times in %.3f s: %.0f "
             "registrations/s over open links (%" PRIu64 " refused)\n",
             a->rereg_ok, secs, secs > 0 ? (double)a->rereg_ok / secs : 0.0,
             a->rereg_err);
    }
  }
  if (a->hold_start_ms == 0) {
    a->hold_start_ms = now;
    a->last_report_ms = now;
    printf("holding for %.0f s (heartbeats every lease/3)\n",
           (double)a->hold_ms / 1000.0);
    fflush(stdout);
  }
  if (now - a->hold_start_ms >= a->hold_ms) {
    stop_all();
    return;
  }
  if (now - a->last_report_ms >= 5000) {
    printf("t=%6.1fs holding: %" PRIu32 " registered now, heartbeats "
           "sent=%" PRIu64 " ok=%" PRIu64 " refused=%" PRIu64 "\n",
           (double)(now - a->start_ms) / 1000.0, a->registered_now,
           a->hb_sent, a->hb_ok, a->hb_err);
    fflush(stdout);
    a->last_report_ms = now;
  }
}

static void on_sigint(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  printf("interrupted\n");
  stop_all();
}

static void summary(struct app *a) {
  double secs = a->all_done ? (double)(a->all_ms - a->start_ms) / 1000.0 : 0.0;
  double rsecs = 0.0;
  uint32_t n = a->registered_once;

  qsort(a->latency_ms, n, sizeof a->latency_ms[0], cmp_u64);
  printf("peers=%" PRIu32 " registered=%" PRIu32 " dials=%" PRIu64
         " dial_failures=%" PRIu64 " redirects=%" PRIu64 "\n",
         a->npeers, n, a->dials, a->dial_failures, a->redirects);
  printf("dial->OK latency ms: min %" PRIu64 " median %" PRIu64 " p99 %" PRIu64
         " max %" PRIu64 " (concurrency %" PRIu32 ")\n",
         pct(a->latency_ms, n, 0.0), pct(a->latency_ms, n, 0.5),
         pct(a->latency_ms, n, 0.99), pct(a->latency_ms, n, 1.0),
         a->concurrency);
  printf("heartbeats sent=%" PRIu64 " ok=%" PRIu64 " refused=%" PRIu64
         "; REGISTER refused=%" PRIu64 "; links lost after OK=%" PRIu64
         "; unexpected frames=%" PRIu64 "\n",
         a->hb_sent, a->hb_ok, a->hb_err, a->reg_err, a->closes_after_reg,
         a->other_err);
  if (a->rereg > 0) {
    rsecs = (double)(a->rereg_end_ms - a->rereg_start_ms) / 1000.0;
    printf("re-REGISTERs ok=%" PRIu64 " refused/lost=%" PRIu64 " in %.3f s\n",
           a->rereg_ok, a->rereg_err, rsecs);
  }
  printf("RESULT peers=%" PRIu32 " registered=%" PRIu32 " seconds=%.3f "
         "rate=%.1f lat_median_ms=%" PRIu64 " lat_p99_ms=%" PRIu64
         " hb_sent=%" PRIu64 " hb_ok=%" PRIu64 " hb_refused=%" PRIu64
         " lost=%" PRIu64 " rereg_ok=%" PRIu64 " rereg_seconds=%.3f"
         " rereg_rate=%.1f\n",
         a->npeers, n, secs, secs > 0 ? (double)n / secs : 0.0,
         pct(a->latency_ms, n, 0.5), pct(a->latency_ms, n, 0.99), a->hb_sent,
         a->hb_ok, a->hb_err, a->closes_after_reg, a->rereg_ok, rsecs,
         rsecs > 0 ? (double)a->rereg_ok / rsecs : 0.0);
  fflush(stdout);
}

/* ---- main -------------------------------------------------------------------- */

static int parse_flags(struct app *a, int argc, char **argv) {
  const char *index = NULL;
  uint64_t v;
  int i;

  a->npeers = 1000;
  a->concurrency = 64;
  a->base_port = 20000;
  a->prefix = "load";
  a->timeout_ms = 600000;
  a->rereg_after_ms = 1000;
  for (i = 1; i < argc; i++) {
    const char *f = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
      usage(stdout);
      exit(0);
    }
    if (strcmp(f, "--drop") == 0) {
      a->drop = 1;
      continue;
    }
    if (val == NULL) {
      fprintf(stderr, "parley_loadgen: %s needs a value\n", f);
      return -1;
    }
    i++;
    if (strcmp(f, "--index") == 0) {
      index = val;
    } else if (strcmp(f, "--peers") == 0) {
      if (parley_parse_u64(val, 1, MAX_PEERS, &v) < 0)
        goto bad;
      a->npeers = (uint32_t)v;
    } else if (strcmp(f, "--hold") == 0) {
      if (parley_parse_u64(val, 0, 86400, &v) < 0)
        goto bad;
      a->hold_ms = v * 1000;
    } else if (strcmp(f, "--timeout") == 0) {
      if (parley_parse_u64(val, 1, 86400, &v) < 0)
        goto bad;
      a->timeout_ms = v * 1000;
    } else if (strcmp(f, "--concurrency") == 0) {
      if (parley_parse_u64(val, 1, 100000, &v) < 0)
        goto bad;
      a->concurrency = (uint32_t)v;
    } else if (strcmp(f, "--base-port") == 0) {
      if (parley_parse_u64(val, 1, 65535, &v) < 0)
        goto bad;
      a->base_port = (uint32_t)v;
    } else if (strcmp(f, "--rereg") == 0) {
      if (parley_parse_u64(val, 0, 1000000, &v) < 0)
        goto bad;
      a->rereg = (uint32_t)v;
    } else if (strcmp(f, "--rereg-after") == 0) {
      if (parley_parse_u64(val, 0, 3600, &v) < 0)
        goto bad;
      a->rereg_after_ms = v * 1000;
    } else if (strcmp(f, "--sources") == 0) {
      if (parley_parse_u64(val, 1, 254, &v) < 0)
        goto bad;
      a->nsources = (uint32_t)v;
    } else if (strcmp(f, "--prefix") == 0) {
      if (strlen(val) == 0 || strlen(val) > 40)
        goto bad;
      a->prefix = val;
    } else {
      fprintf(stderr, "parley_loadgen: unknown flag %s\n", f);
      return -1;
    }
    continue;
  bad:
    fprintf(stderr, "parley_loadgen: bad value for %s: %s\n", f, val);
    return -1;
  }
  if (index == NULL) {
    fprintf(stderr, "parley_loadgen: --index HOST:PORT is required\n");
    return -1;
  }
  if (a->drop && a->rereg > 0) {
    fprintf(stderr, "parley_loadgen: --rereg needs the links: not with "
                    "--drop\n");
    return -1;
  }
  if (parley_parse_hostport(index, a->host, sizeof a->host, &a->port) < 0 ||
      a->port == 0) {
    fprintf(stderr, "parley_loadgen: bad --index %s\n", index);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct app *a = &g_app;
  uint64_t t0;
  uint32_t i;
  int rc, ok;

  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (parse_flags(a, argc, argv) < 0) {
    usage(stderr);
    return 2;
  }
  raise_fd_limit(a);
  if (a->nsources == 0)
    a->nsources = (a->npeers + PEERS_PER_SOURCE - 1) / PEERS_PER_SOURCE;
  if (a->nsources > 1 && strncmp(a->host, "127.", 4) != 0) {
    fprintf(stderr, "parley_loadgen: --sources needs a 127.x index address; "
                    "using one source\n");
    a->nsources = 1;
  }
  if (parley_crypto_init() < 0) {
    fprintf(stderr, "parley_loadgen: libsodium init failed\n");
    return 1;
  }
  a->loop = uv_default_loop();
  a->sims = parley_calloc(a->npeers, sizeof *a->sims);
  a->latency_ms = parley_calloc(a->npeers, sizeof *a->latency_ms);
  a->retry = parley_calloc(a->npeers, sizeof *a->retry);
  if (a->sims == NULL || a->latency_ms == NULL || a->retry == NULL) {
    fprintf(stderr, "parley_loadgen: out of memory\n");
    return 1;
  }

  /* Identities and nets first, outside the timed part. */
  t0 = parley_mono_ms();
  for (i = 0; i < a->npeers; i++) {
    struct sim *s = &a->sims[i];
    struct parley_net_config cfg;
    char name[PARLEY_MAX_NAME + 1], addr[PARLEY_MAX_ADDR + 1], src[24];

    s->index = i;
    rc = parley_identity_generate(&s->id);
    if (rc < 0) {
      fprintf(stderr, "parley_loadgen: identity: %s\n", parley_err_name(rc));
      return 1;
    }
    snprintf(name, sizeof name, "%s-%" PRIu32, a->prefix, i);
    memset(&cfg, 0, sizeof cfg);
    cfg.loop = a->loop;
    cfg.id = &s->id;
    cfg.role = PARLEY_ROLE_PEER;
    cfg.name = name;
    cfg.max_links = 2;
    if (a->nsources > 1) {
      snprintf(src, sizeof src, "127.0.0.%u", (unsigned)(1 + i % a->nsources));
      cfg.bind_host = src;
    }
    rc = parley_net_new(&cfg, &s->net);
    if (rc < 0) {
      fprintf(stderr, "parley_loadgen: net: %s\n", parley_err_name(rc));
      return 1;
    }
    sim_addr(i, 0, addr, sizeof addr);
    parley_net_set_addr(s->net, addr);
    (void)uv_timer_init(a->loop, &s->timer);
    s->timer.data = s;
  }
  printf("prepared %" PRIu32 " identities in %.2f s; dialling %s:%u with "
         "concurrency %" PRIu32 " from %" PRIu32 " source address(es)\n",
         a->npeers, (double)(parley_mono_ms() - t0) / 1000.0, a->host,
         (unsigned)a->port, a->concurrency, a->nsources);
  fflush(stdout);

  (void)uv_timer_init(a->loop, &a->tick);
  a->tick.data = a;
  (void)uv_signal_init(a->loop, &a->sigint);
  (void)uv_signal_start(&a->sigint, on_sigint, SIGINT);
  a->start_ms = a->last_report_ms = parley_mono_ms();
  uv_timer_start(&a->tick, tick_cb, 1000, 1000);
  dial_next();

  uv_run(a->loop, UV_RUN_DEFAULT);

  summary(a);
  ok = a->all_done && a->hb_err == 0 && a->reg_err == 0 &&
       a->closes_after_reg == 0 && a->rereg_err == 0 &&
       a->rereg_ok == (uint64_t)a->rereg * a->npeers;
  for (i = 0; i < a->npeers; i++)
    parley_identity_wipe(&a->sims[i].id);
  rc = uv_loop_close(a->loop);
  if (rc != 0)
    fprintf(stderr, "parley_loadgen: loop not empty at exit: %s\n",
            uv_strerror(rc));
  parley_free(a->sims);
  parley_free(a->latency_ms);
  parley_free(a->retry);
  return ok ? 0 : 1;
}
