/* link.c — the net, its listeners and links: creation, dialling, accepting,
 * closing and freeing (the byte path is in link_io.c). */
#include "net/link_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/alloc.h"

/* An accepted connection over max_links: accepted only to be closed. */
struct refused_conn {
  uv_tcp_t tcp;
  struct parley_net *net;
};

static void listener_closed(uv_handle_t *h);

/* ---- helpers ------------------------------------------------------------ */

static void copy_bounded(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* "localhost" is 127.0.0.1; otherwise a numeric IPv4 then IPv6 address. */
static int resolve(const char *host, uint16_t port,
                   struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return PARLEY_OK;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return PARLEY_OK;
  return PARLEY_EINVAL;
}

/* "ip:port" (or "[ip6]:port") into out; the bare address into ip (if
 * non-NULL, ipcap bytes). */
static void format_sockaddr(const struct sockaddr *sa, char *out, size_t cap,
                            char *ipout, size_t ipcap) {
  char ip[64];

  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    if (uv_ip4_name(in, ip, sizeof ip) != 0)
      copy_bounded(ip, sizeof ip, "?");
    snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (uv_ip6_name(in6, ip, sizeof ip) != 0)
      copy_bounded(ip, sizeof ip, "?");
    snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
  } else {
    copy_bounded(ip, sizeof ip, "?");
    copy_bounded(out, cap, "?");
  }
  if (ipout != NULL)
    copy_bounded(ipout, ipcap, ip);
}

static void set_peername(struct parley_link *l) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;

  if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) == 0)
    format_sockaddr((const struct sockaddr *)&ss, l->peername,
                    sizeof l->peername, l->remote_ip, sizeof l->remote_ip);
}

/* ---- the guard ----------------------------------------------------------- */

int parley__link_guard_handshake(struct parley_link *l) {
  struct parley_net *net = l->net;
  int rc;

  if (!l->accepted || l->hs_charged || net->guard.on_handshake == NULL)
    return PARLEY_OK;
  l->hs_charged = 1;
  rc = net->guard.on_handshake(net->guard.ctx, l->remote_ip,
                               uv_now(net->loop));
  if (rc >= 0)
    return PARLEY_OK;
  net->stats.handshakes_limited++;
  PARLEY_LOG(net->log, PARLEY_LOG_DEBUG, "link %s: handshake refused: %s",
             l->peername, parley_err_name(rc));
  l->silent = 1; /* not a failed handshake: one we declined */
  parley__link_close(l, rc == PARLEY_ELIMIT ? rc : PARLEY_EDENIED);
  return PARLEY_EDENIED;
}

int parley__link_guard_peer(struct parley_link *l) {
  struct parley_net *net = l->net;
  int rc;

  if (!l->accepted || net->guard.on_peer == NULL)
    return PARLEY_OK;
  rc = net->guard.on_peer(net->guard.ctx, l->remote_ip, l->remote_pk,
                          uv_now(net->loop));
  if (rc >= 0)
    return PARLEY_OK;
  net->stats.peers_banned++;
  PARLEY_LOG(net->log, PARLEY_LOG_INFO, "link %s: refused: %s", l->peername,
             parley_err_name(rc));
  l->silent = 1;
  parley__link_close(l, PARLEY_EDENIED);
  return PARLEY_EDENIED;
}

int parley__link_guard_strike(struct parley_link *l) {
  struct parley_net *net = l->net;
  int rc;

  if (!l->accepted || net->guard.on_strike == NULL)
    return PARLEY_OK;
  net->stats.strikes++;
  rc = net->guard.on_strike(net->guard.ctx, l->remote_ip,
                            l->has_session ? l->remote_pk : NULL,
                            uv_now(net->loop));
  if (rc != PARLEY_EDENIED)
    return PARLEY_OK;
  net->stats.strike_bans++;
  PARLEY_LOG(net->log, PARLEY_LOG_INFO,
             "link %s: banned for repeated bad input", l->peername);
  return PARLEY_EDENIED;
}

/* Frees the net once every handle it owns went through its close callback
 * (only after parley_net_free). */
static void net_maybe_free(struct parley_net *net) {
  if (!net->freeing || net->n_handles > 0)
    return;
  parley_free(net->paused);
  parley_free(net);
  /* Not earlier: a callback that frees the net may run while a read is
   * being parsed out of the shared buffers. */
  parley__net_scratch_unref();
}

/* ---- links: creation and teardown --------------------------------------- */

static void link_unlink(struct parley_link *l) {
  struct parley_net *net = l->net;
  if (l->prev != NULL)
    l->prev->next = l->next;
  else
    net->links = l->next;
  if (l->next != NULL)
    l->next->prev = l->prev;
  l->prev = l->next = NULL;
  net->n_links--;
}

/* ---- the flush list and the deadline list ------------------------------- */

static void net_prepare(uv_prepare_t *p);

void parley__link_flush_mark(struct parley_link *l) {
  struct parley_net *net = l->net;

  if (l->on_fl)
    return;
  l->on_fl = 1;
  l->fl_prev = NULL;
  l->fl_next = net->fl_head;
  if (net->fl_head != NULL)
    net->fl_head->fl_prev = l;
  net->fl_head = l;
  if (net->on_turn_end == NULL && !net->freeing)
    (void)uv_prepare_start(&net->prepare, net_prepare); /* see net_new */
}

void parley__link_read_pause(struct parley_link *l) {
  struct parley_net *net = l->net;

  if (l->read_paused)
    return;
  if (net->npaused == net->cap_paused) {
    size_t cap = net->cap_paused ? net->cap_paused * 2 : 8;
    struct parley_link **p =
        parley_realloc(net->paused, cap * sizeof *net->paused);
    if (p == NULL)
      return; /* it reads on: the budget is a courtesy, not a limit */
    net->paused = p;
    net->cap_paused = cap;
  }
  (void)uv_read_stop((uv_stream_t *)&l->tcp);
  net->paused[net->npaused++] = l;
  l->read_paused = 1;
  net->stats.read_pauses++;
  if (!net->freeing)
    (void)uv_prepare_start(&net->prepare, net_prepare);
}

void parley__link_read_unpause(struct parley_link *l) {
  struct parley_net *net = l->net;

  if (!l->read_paused)
    return;
  for (size_t i = 0; i < net->npaused; i++) {
    if (net->paused[i] == l) {
      net->paused[i] = net->paused[--net->npaused];
      break;
    }
  }
  l->read_paused = 0;
}

static void flush_unmark(struct parley_link *l) {
  struct parley_net *net = l->net;

  if (!l->on_fl)
    return;
  if (l->fl_prev != NULL)
    l->fl_prev->fl_next = l->fl_next;
  else
    net->fl_head = l->fl_next;
  if (l->fl_next != NULL)
    l->fl_next->fl_prev = l->fl_prev;
  l->fl_prev = l->fl_next = NULL;
  l->on_fl = 0;
}

static void net_timer_cb(uv_timer_t *t);

/* Points the net timer at the head of the deadline list (or stops it). */
static void net_timer_rearm(struct parley_net *net) {
  uint64_t now;

  if (net->freeing || net->dl_head == NULL) {
    (void)uv_timer_stop(&net->timer);
    return;
  }
  now = uv_now(net->loop);
  (void)uv_timer_start(&net->timer, net_timer_cb,
                       net->dl_head->deadline > now
                           ? net->dl_head->deadline - now
                           : 0,
                       0);
}

void parley__link_deadline_clear(struct parley_link *l) {
  struct parley_net *net = l->net;

  if (!l->on_dl)
    return;
  if (l->dl_prev != NULL)
    l->dl_prev->dl_next = l->dl_next;
  else
    net->dl_head = l->dl_next;
  if (l->dl_next != NULL)
    l->dl_next->dl_prev = l->dl_prev;
  else
    net->dl_tail = l->dl_prev;
  l->dl_prev = l->dl_next = NULL;
  l->on_dl = 0;
  /* A removed head leaves the timer early; it re-arms when it fires.
   * Only an empty list stops it, so that it keeps no loop alive. */
  if (net->dl_head == NULL)
    (void)uv_timer_stop(&net->timer);
}

void parley__link_deadline_set(struct parley_link *l) {
  struct parley_net *net = l->net;
  int was_empty;

  parley__link_deadline_clear(l);
  was_empty = net->dl_head == NULL;
  l->deadline = uv_now(net->loop) + net->hs_timeout_ms;
  l->dl_next = NULL;
  l->dl_prev = net->dl_tail;
  if (net->dl_tail != NULL)
    net->dl_tail->dl_next = l;
  else
    net->dl_head = l;
  net->dl_tail = l;
  l->on_dl = 1;
  if (was_empty)
    net_timer_rearm(net);
}

/* A link's deadline passed: closes a link still not open (PARLEY_ETIMEDOUT)
 * or a failing link whose ERROR did not drain (its fail reason). */
static void link_timeout(struct parley_link *l) {
  struct parley_net *net = l->net;

  if (l->closing)
    return;
  if (l->failing) {
    PARLEY_LOG(net->log, PARLEY_LOG_WARN,
               "link %s: ERROR not drained in time, closing", l->peername);
    parley__link_close(l, l->fail_reason);
    return;
  }
  if (l->state != PARLEY_LINK_OPEN) {
    PARLEY_LOG(net->log, PARLEY_LOG_WARN,
               "link %s: handshake timed out after %u ms", l->peername,
               (unsigned)net->hs_timeout_ms);
    parley__link_close(l, PARLEY_ETIMEDOUT);
  }
}

static void net_timer_cb(uv_timer_t *t) {
  struct parley_net *net = t->data;
  uint64_t now = uv_now(net->loop);
  struct parley_link *l;

  while ((l = net->dl_head) != NULL && l->deadline <= now) {
    parley__link_deadline_clear(l);
    link_timeout(l);
  }
  net_timer_rearm(net);
}

/* ---- links: creation and teardown --------------------------------------- */

static void link_hs_free(struct parley_link *l) {
  if (l->hs == NULL)
    return;
  parley_handshake_wipe(&l->hs->hs);
  parley_free(l->hs);
  l->hs = NULL;
}

static void link_handle_closed(uv_handle_t *h) {
  struct parley_link *l = h->data;
  struct parley_net *net = l->net;

  /* The handle is closed and every pending request has completed (libuv
   * cancels writes and the connect before the close callback), so nothing
   * refers to l any more.  The net stays alive at least until the
   * n_handles decrement below. */
  if (!l->silent && l->cbs.on_close != NULL && (l->opened || !l->accepted))
    l->cbs.on_close(l, l->close_reason);
  link_unlink(l);
  flush_unmark(l);
  parley__link_read_unpause(l);
  parley__link_deadline_clear(l);
  parley_buf_close(&l->in);
  parley_buf_close(&l->pt);
  parley_buf_close(&l->out);
  link_hs_free(l);
  parley_session_wipe(&l->sess);
  parley_free(l->remote_strs);
  parley_free(l->last);
  parley_free(l);
  net->n_handles--;
  net_maybe_free(net);
}

/* Allocates a link with its tcp handle initialised (with a socket of
 * family af unless AF_UNSPEC) and its handshake state, and puts it on the
 * net's list.  OUT: *out. */
static int link_new(struct parley_net *net, int accepted, unsigned af,
                    const struct parley_link_cbs *cbs, void *data,
                    struct parley_link **out) {
  struct parley_link *l = NULL;
  int rc;

  l = parley_calloc(1, sizeof *l);
  if (l == NULL)
    return PARLEY_ENOMEM;
  l->hs = parley_calloc(1, sizeof *l->hs);
  if (l->hs == NULL) {
    parley_free(l);
    return PARLEY_ENOMEM;
  }
  rc = uv_tcp_init_ex(net->loop, &l->tcp, af);
  if (rc < 0) {
    parley_free(l->hs);
    parley_free(l);
    return parley_err_from_uv(rc);
  }
  l->tcp.data = l;
  net->n_handles++;

  l->net = net;
  l->accepted = (uint8_t)(accepted != 0);
  if (cbs != NULL)
    l->cbs = *cbs;
  l->data = data;
  l->state = PARLEY_LINK_PREAMBLE;
  l->close_reason = PARLEY_ECLOSED;
  copy_bounded(l->peername, sizeof l->peername, "?");
  copy_bounded(l->remote_ip, sizeof l->remote_ip, "?");
  parley_buf_init(&l->in, PARLEY_WIRE_RECORD_HDR + PARLEY_MAX_RECORD +
                              PARLEY_WIRE_TAG);
  parley_buf_init(&l->pt, (size_t)net->max_frame + PARLEY_WIRE_FRAME_HDR +
                              PARLEY_MAX_RECORD);
  parley_buf_init(&l->out, net->max_sendq + PARLEY_NET_CONTROL_SLACK);

  l->next = net->links;
  if (net->links != NULL)
    net->links->prev = l;
  net->links = l;
  net->n_links++;
  *out = l;
  return PARLEY_OK;
}

void parley__link_close(struct parley_link *l, int reason) {
  struct parley_net *net = l->net;

  if (l->closing)
    return;
  l->closing = 1;
  l->failing = 0;
  l->close_reason = reason;
  if (l->opened)
    net->stats.links_open--;
  else if (l->connected && !l->silent && reason != PARLEY_ECANCELED)
    net->stats.handshakes_failed++;
  PARLEY_LOG(net->log, PARLEY_LOG_DEBUG, "link %s: closing (%s)",
             l->peername, parley_err_name(reason));
  (void)uv_read_stop((uv_stream_t *)&l->tcp);
  parley__link_deadline_clear(l);
  flush_unmark(l);
  parley__link_read_unpause(l);
  uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
}

/* ---- the flush hook ------------------------------------------------------ */

static void net_prepare(uv_prepare_t *p) {
  struct parley_net *net = p->data;
  struct parley_link *l;
  int rc;

  if (net->freeing)
    return;
  net->turn++;
  if (net->on_turn_end != NULL)
    net->on_turn_end(net->ctx);
  if (net->freeing)
    return;
  /* Links that spent their input budget last turn read again (the timers
   * and the other links had their turn in between). */
  while (net->npaused > 0) {
    l = net->paused[net->npaused - 1];
    parley__link_read_unpause(l);
    if (!l->closing && !l->failing)
      parley__link_read_resume(l);
  }
  /* Links are freed only from close callbacks, never from here, and a
   * flush never queues frames, so taking the head each time visits every
   * marked link once even when a flush error closes one. */
  while ((l = net->fl_head) != NULL) {
    flush_unmark(l);
    if (l->closing || !l->has_session || l->out.len == 0)
      continue;
    rc = parley__link_flush(l);
    if (rc < 0) {
      PARLEY_LOG(net->log, PARLEY_LOG_WARN, "link %s: flush failed: %s",
                 l->peername, parley_strerror(rc));
      parley__link_close(l, rc);
    }
  }
  if (net->on_turn_end == NULL && net->npaused == 0)
    (void)uv_prepare_stop(&net->prepare);
}

static void net_handle_closed(uv_handle_t *h) {
  struct parley_net *net = h->data;
  net->n_handles--;
  net_maybe_free(net);
}

/* ---- net ----------------------------------------------------------------- */

int parley_net_new(const struct parley_net_config *cfg,
                   struct parley_net **out) {
  struct parley_net *net;
  const char *name = cfg->name != NULL ? cfg->name : "";

  if (cfg->loop == NULL || cfg->id == NULL)
    return PARLEY_EINVAL;
  if (strlen(name) > PARLEY_MAX_NAME)
    return PARLEY_EINVAL;
  if (cfg->max_frame != 0 && (cfg->max_frame > PARLEY_MAX_FRAME ||
                              cfg->max_frame < PARLEY_NET_MIN_FRAME))
    return PARLEY_EINVAL;
  if (cfg->max_sendq > PARLEY_NET_MAX_SENDQ)
    return PARLEY_EINVAL;
  if (cfg->bind_host != NULL && strlen(cfg->bind_host) >= PARLEY_NET_IPLEN)
    return PARLEY_EINVAL;

  net = parley_calloc(1, sizeof *net);
  if (net == NULL)
    return PARLEY_ENOMEM;
  net->loop = cfg->loop;
  net->id = cfg->id;
  net->log = cfg->log;
  net->role = cfg->role;
  copy_bounded(net->name, sizeof net->name, name);
  net->max_frame = cfg->max_frame ? cfg->max_frame : PARLEY_DEFAULT_MAX_FRAME;
  net->max_sendq = cfg->max_sendq ? cfg->max_sendq : PARLEY_DEFAULT_MAX_SENDQ;
  net->max_links = cfg->max_links ? cfg->max_links : PARLEY_DEFAULT_MAX_LINKS;
  net->hs_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms
                                                 : PARLEY_HANDSHAKE_TIMEOUT_MS;
  net->on_turn_end = cfg->on_turn_end;
  net->ctx = cfg->ctx;
  if (cfg->guard != NULL)
    net->guard = *cfg->guard;
  if (cfg->bind_host != NULL)
    copy_bounded(net->bind_host, sizeof net->bind_host, cfg->bind_host);

  /* The prepare handle is unreferenced, so it never keeps the loop alive
   * on its own.  With a turn hook it runs every turn; without one it is
   * started only while links have queued output (flush_mark). */
  (void)uv_prepare_init(net->loop, &net->prepare); /* cannot fail */
  net->prepare.data = net;
  (void)uv_prepare_start(&net->prepare, net_prepare);
  uv_unref((uv_handle_t *)&net->prepare);
  if (net->on_turn_end == NULL)
    (void)uv_prepare_stop(&net->prepare);
  /* Referenced, but active only while some link has a deadline. */
  (void)uv_timer_init(net->loop, &net->timer); /* cannot fail */
  net->timer.data = net;
  net->n_handles = 2;
  parley__net_scratch_ref();
  *out = net;
  return PARLEY_OK;
}

void parley_net_free(struct parley_net *net) {
  struct parley_listener *ls, *lnext;
  struct parley_link *l, *next;

  if (net == NULL || net->freeing)
    return;
  net->freeing = 1;
  for (ls = net->listeners; ls != NULL; ls = lnext) {
    lnext = ls->next;
    uv_close((uv_handle_t *)&ls->tcp, listener_closed);
  }
  net->listeners = NULL;
  for (l = net->links; l != NULL; l = next) {
    next = l->next;
    parley__link_close(l, PARLEY_ECANCELED);
  }
  uv_close((uv_handle_t *)&net->prepare, net_handle_closed);
  uv_close((uv_handle_t *)&net->timer, net_handle_closed);
}

const struct parley_net_stats *parley_net_stats(const struct parley_net *net) {
  return &net->stats;
}

void parley_net_set_addr(struct parley_net *net, const char *addr) {
  copy_bounded(net->addr, sizeof net->addr, addr);
}

/* ---- listening ----------------------------------------------------------- */

static void listener_closed(uv_handle_t *h) {
  struct parley_listener *ls = h->data;
  struct parley_net *net = ls->net;
  parley_free(ls);
  net->n_handles--;
  net_maybe_free(net);
}

static void refused_closed(uv_handle_t *h) {
  struct refused_conn *rc = h->data;
  struct parley_net *net = rc->net;
  parley_free(rc);
  net->n_handles--;
  net_maybe_free(net);
}

/* Accepts the pending connection only to close it at once. */
static void refuse(struct parley_listener *ls, const char *why) {
  struct parley_net *net = ls->net;
  struct refused_conn *rc;
  char who[PARLEY_NET_PEERNAME] = "?";
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;

  rc = parley_malloc(sizeof *rc);
  if (rc == NULL) {
    /* Without a handle the connection stays in the backlog; the next
     * connection event retries. */
    PARLEY_LOG(net->log, PARLEY_LOG_ERROR, "listener :%u: out of memory",
               (unsigned)ls->port);
    return;
  }
  if (uv_tcp_init(net->loop, &rc->tcp) < 0) {
    parley_free(rc);
    return;
  }
  rc->tcp.data = rc;
  rc->net = net;
  net->n_handles++;
  if (uv_accept((uv_stream_t *)&ls->tcp, (uv_stream_t *)&rc->tcp) == 0 &&
      uv_tcp_getpeername(&rc->tcp, (struct sockaddr *)&ss, &len) == 0)
    format_sockaddr((const struct sockaddr *)&ss, who, sizeof who, NULL, 0);
  net->stats.links_refused++;
  PARLEY_LOG(net->log, PARLEY_LOG_WARN,
             "listener :%u: refusing %s: %s (%u links live, max_links %u)",
             (unsigned)ls->port, who, why, (unsigned)net->n_links,
             (unsigned)net->max_links);
  uv_close((uv_handle_t *)&rc->tcp, refused_closed);
}

static void on_connection(uv_stream_t *server, int status) {
  struct parley_listener *ls = server->data;
  struct parley_net *net = ls->net;
  struct parley_link *l = NULL;
  int rc;

  if (status < 0) {
    PARLEY_LOG(net->log, PARLEY_LOG_WARN, "listener :%u: accept: %s",
               (unsigned)ls->port, uv_strerror(status));
    return;
  }
  if (net->freeing)
    return;
  /* Every live link counts, handshaking ones included, so that a flood of
   * half-open connections cannot get past the limit. */
  if (net->n_links >= net->max_links) {
    refuse(ls, "too many links");
    return;
  }
  rc = link_new(net, 1, AF_UNSPEC, &ls->cbs, ls->data, &l);
  if (rc < 0 || l == NULL) {
    PARLEY_LOG(net->log, PARLEY_LOG_ERROR, "listener :%u: new link: %s",
               (unsigned)ls->port, parley_strerror(rc));
    /* The connection must still be taken off the backlog, or libuv stops
     * accepting on this listener. */
    refuse(ls, parley_strerror(rc));
    return;
  }
  rc = uv_accept(server, (uv_stream_t *)&l->tcp);
  if (rc < 0) {
    l->silent = 1;
    parley__link_close(l, parley_err_from_uv(rc));
    return;
  }
  l->connected = 1;
  net->stats.links_accepted++;
  set_peername(l);
  if (net->guard.on_connect != NULL) {
    rc = net->guard.on_connect(net->guard.ctx, l->remote_ip,
                               uv_now(net->loop));
    if (rc < 0) {
      /* Closed before a byte is read or written: the cheapest refusal. */
      if (rc == PARLEY_ELIMIT)
        net->stats.conns_limited++;
      else
        net->stats.conns_banned++;
      PARLEY_LOG(net->log, PARLEY_LOG_DEBUG, "link %s: refused: %s",
                 l->peername, parley_err_name(rc));
      l->silent = 1;
      parley__link_close(l, rc == PARLEY_ELIMIT ? rc : PARLEY_EDENIED);
      return;
    }
  }
  rc = parley_handshake_init(&l->hs->hs, 0, net->id, NULL);
  if (rc >= 0)
    rc = parley__link_start(l);
  if (rc < 0) {
    PARLEY_LOG(net->log, PARLEY_LOG_WARN, "link %s: cannot start: %s",
               l->peername, parley_strerror(rc));
    parley__link_close(l, rc);
    return;
  }
  parley__link_deadline_set(l);
  PARLEY_LOG(net->log, PARLEY_LOG_DEBUG, "link %s: accepted on :%u",
             l->peername, (unsigned)ls->port);
}

int parley_net_listen(struct parley_net *net, const char *host,
                      uint16_t port, const struct parley_link_cbs *cbs,
                      void *data, struct parley_listener **out) {
  struct parley_listener *ls;
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  int rc;

  if (net->freeing)
    return PARLEY_ECANCELED;
  rc = resolve(host, port, &ss);
  if (rc < 0)
    return rc;
  ls = parley_calloc(1, sizeof *ls);
  if (ls == NULL)
    return PARLEY_ENOMEM;
  rc = uv_tcp_init(net->loop, &ls->tcp);
  if (rc < 0) {
    parley_free(ls);
    return parley_err_from_uv(rc);
  }
  ls->tcp.data = ls;
  ls->net = net;
  ls->cbs = *cbs;
  ls->data = data;
  net->n_handles++;
  /* libuv sets SO_REUSEADDR on bind. */
  rc = uv_tcp_bind(&ls->tcp, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&ls->tcp, 128, on_connection);
  if (rc == 0)
    rc = uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&ss, &len);
  if (rc < 0) {
    PARLEY_LOG(net->log, PARLEY_LOG_WARN, "listen %s:%u: %s", host,
               (unsigned)port, uv_strerror(rc));
    /* Not on the list; freed from its close callback. */
    uv_close((uv_handle_t *)&ls->tcp, listener_closed);
    return parley_err_from_uv(rc);
  }
  ls->port = ntohs(ss.ss_family == AF_INET6
                       ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
  ls->next = net->listeners;
  net->listeners = ls;
  PARLEY_LOG(net->log, PARLEY_LOG_DEBUG, "listening on %s:%u", host,
             (unsigned)ls->port);
  if (out != NULL)
    *out = ls;
  return PARLEY_OK;
}

uint16_t parley_listener_port(const struct parley_listener *ls) {
  return ls->port;
}

/* ---- dialling ------------------------------------------------------------ */

static void on_connect(uv_connect_t *req, int status) {
  struct parley_link *l = req->data;
  struct parley_net *net = l->net;
  int rc;

  if (l->closing)
    return; /* canceled by a close */
  if (status < 0) {
    PARLEY_LOG(net->log, PARLEY_LOG_DEBUG, "link %s: connect: %s",
               l->peername, uv_strerror(status));
    parley__link_close(l, PARLEY_ECONNECT);
    return;
  }
  l->connected = 1;
  set_peername(l);
  rc = parley__link_start(l);
  if (rc < 0) {
    PARLEY_LOG(net->log, PARLEY_LOG_WARN, "link %s: cannot start: %s",
               l->peername, parley_strerror(rc));
    parley__link_close(l, rc);
    return;
  }
  PARLEY_LOG(net->log, PARLEY_LOG_DEBUG, "link %s: connected", l->peername);
}

/* Binds l's socket (created with the bind address's family) to the net's
 * source address, port chosen at connect time where the system can. */
static int bind_source(struct parley_link *l, const struct sockaddr *src) {
  int rc;
#ifdef IP_BIND_ADDRESS_NO_PORT
  uv_os_fd_t fd;
  int one = 1;

  /* Without it, bind reserves an ephemeral port for the source address
   * alone, which runs out long before the 4-tuples do. */
  if (src->sa_family == AF_INET && uv_fileno((uv_handle_t *)&l->tcp, &fd) == 0)
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                     sizeof one);
#endif
  rc = uv_tcp_bind(&l->tcp, src, 0);
  return rc < 0 ? parley_err_from_uv(rc) : PARLEY_OK;
}

int parley_net_connect(struct parley_net *net, const char *host,
                       uint16_t port, const uint8_t *expected_pk,
                       const struct parley_link_cbs *cbs, void *data,
                       struct parley_link **out) {
  struct sockaddr_storage ss, src;
  struct parley_link *l = NULL;
  unsigned af = AF_UNSPEC;
  int rc;

  if (net->freeing)
    return PARLEY_ECANCELED;
  rc = resolve(host, port, &ss);
  if (rc < 0)
    return rc;
  if (net->bind_host[0] != '\0') {
    rc = resolve(net->bind_host, 0, &src);
    if (rc < 0)
      return rc;
    if (src.ss_family != ss.ss_family)
      return PARLEY_EINVAL;
    af = src.ss_family;
  }
  rc = link_new(net, 0, af, cbs, data, &l);
  if (rc < 0 || l == NULL)
    return rc < 0 ? rc : PARLEY_EINTERNAL;
  format_sockaddr((const struct sockaddr *)&ss, l->peername,
                  sizeof l->peername, l->remote_ip, sizeof l->remote_ip);
  rc = parley_handshake_init(&l->hs->hs, 1, net->id, expected_pk);
  if (rc == 0 && af != AF_UNSPEC)
    rc = bind_source(l, (const struct sockaddr *)&src);
  if (rc == 0) {
    l->hs->connect_req.data = l;
    rc = uv_tcp_connect(&l->hs->connect_req, &l->tcp,
                        (const struct sockaddr *)&ss, on_connect);
    if (rc < 0)
      rc = parley_err_from_uv(rc);
  }
  if (rc < 0) {
    /* Synchronous failure: no callback for the caller. */
    l->silent = 1;
    parley__link_close(l, rc);
    return rc;
  }
  parley__link_deadline_set(l);
  net->stats.links_dialled++;
  *out = l;
  return PARLEY_OK;
}

/* ---- links: public API --------------------------------------------------- */

int parley_link_send(struct parley_link *l, const struct parley_frame *f) {
  if (l->closing || l->failing || l->state != PARLEY_LINK_OPEN)
    return PARLEY_ECLOSED;
  return parley__link_queue(l, f, 0);
}

void parley_link_fail(struct parley_link *l, uint32_t req, int code,
                      const char *text) {
  parley__link_fail(l, req, code, text, code < 0 ? code : PARLEY_ECLOSED);
}

void parley_link_close(struct parley_link *l, int reason) {
  parley__link_close(l, reason);
}

int parley_link_is_open(const struct parley_link *l) {
  return l->state == PARLEY_LINK_OPEN && !l->closing && !l->failing;
}

const uint8_t *parley_link_remote_pk(const struct parley_link *l) {
  return l->remote_pk;
}

const uint8_t *parley_link_binding(const struct parley_link *l) {
  return l->binding;
}

uint8_t parley_link_remote_role(const struct parley_link *l) {
  return l->remote_role;
}

const char *parley_link_remote_name(const struct parley_link *l) {
  return l->remote_strs != NULL ? l->remote_strs : "";
}

const char *parley_link_remote_addr(const struct parley_link *l) {
  return l->remote_strs != NULL ? l->remote_strs + l->remote_addr_off : "";
}

uint32_t parley_link_remote_caps(const struct parley_link *l) {
  return l->remote_caps;
}

const char *parley_link_peername(const struct parley_link *l) {
  return l->peername;
}

const char *parley_link_remote_ip(const struct parley_link *l) {
  return l->remote_ip;
}

int parley_link_strike(struct parley_link *l) {
  return parley__link_guard_strike(l);
}

int parley_link_accepted(const struct parley_link *l) { return l->accepted; }

size_t parley_link_sendq(const struct parley_link *l) {
  return l->out.len + l->inflight;
}

void *parley_link_data(const struct parley_link *l) { return l->data; }

void parley_link_set_data(struct parley_link *l, void *data) {
  l->data = data;
}

void parley_link_set_cbs(struct parley_link *l,
                         const struct parley_link_cbs *cbs) {
  l->cbs = *cbs;
}
