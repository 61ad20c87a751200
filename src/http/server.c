/* server.c — HTTP/1.1 server: libmicrohttpd in external-select epoll mode,
 * driven from a libuv loop on the loop's own thread.  See
 * docs/internals/HTTP.md for the design. */
#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/util.h"

#define DEFAULT_MAX_CONNS 256u
#define DEFAULT_IDLE_S 30u
#define DEFAULT_STREAM_BUFFER (4u * 1024u * 1024u)
/* MHD's per-connection memory pool.  The request line and all headers must
 * fit in it (larger ones are refused by MHD), and it also serves as the
 * read and write buffer, so it bounds what one connection can pin. */
#define CONN_MEMORY (64u * 1024u)
/* Block size MHD asks a stream's reader for. */
#define STREAM_BLOCK (16u * 1024u)
/* A drained stream buffer larger than this is released rather than kept. */
#define STREAM_KEEP (64u * 1024u)

static const char toobig_body[] =
    "{\"error\":\"request body too large\",\"code\":\"ETOOBIG\"}";

enum req_state {
  REQ_READING, /* body arriving */
  REQ_TOOBIG,  /* over max_body: the rest is discarded, then 413 */
  REQ_HANDLER, /* handler called, its answer not yet handed to MHD */
  REQ_ANSWERED /* a response (or a stream) is queued in MHD */
};

struct parley_http_req {
  struct parley_http *h;
  struct MHD_Connection *conn;
  struct parley_http_req *prev, *next; /* h->reqs */
  const char *method, *path;           /* borrowed from MHD */
  struct parley_buf body;              /* cap max_body + 1 (for a NUL) */
  size_t discarded;                    /* body bytes dropped after 413 */
  enum req_state state;

  /* An answer made outside the access handler, queued by the next access
   * handler call once the connection is resumed.  Owned. */
  struct MHD_Response *pending;
  unsigned pending_status;

  /* Stream output not yet taken by MHD: bytes [soff, sbuf.len). */
  struct parley_buf sbuf;
  size_t soff;

  parley_http_close_cb close_cb;
  void *close_data;

  /* Watches the socket for a hang-up while MHD has the connection
   * suspended (MHD does not look at suspended sockets at all). */
  uv_poll_t watch;

  unsigned in_handler : 1;   /* inside the user's handler */
  unsigned want_suspend : 1; /* parley_http_suspend was called */
  unsigned suspended : 1;    /* MHD_suspend_connection is in effect */
  unsigned done : 1;         /* user answered or ended: no close cb */
  unsigned dead : 1;         /* close cb running or ran: ignore calls */
  unsigned gone : 1;         /* client hung up, or answering failed */
  unsigned watch_init : 1;   /* watch was uv_poll_init'ed */
  unsigned streaming : 1;
  unsigned stream_ended : 1;
  unsigned stream_failed : 1; /* buffer overflow: ended with an error */
};

struct parley_http {
  uv_loop_t *loop;
  const struct parley_log *log;
  struct MHD_Daemon *daemon;
  uv_poll_t poll;   /* MHD's epoll fd */
  uv_timer_t timer; /* MHD_get_timeout when it is > 0 */
  uv_idle_t soon;   /* "run again now", without starving the loop */
  int open_handles; /* closed ones left to report; free at 0 */
  size_t max_body, max_stream_buffer;
  parley_http_handler handler;
  void *ctx;
  uint16_t port;
  struct parley_http_stats stats;
  struct parley_http_req *reqs; /* live requests */
  unsigned in_run : 1;          /* inside MHD_run */
  unsigned rerun : 1;           /* run again as soon as possible */
  unsigned started : 1;         /* daemon is up */
  unsigned closing : 1;         /* shutting down: refuse everything */
  unsigned free_asked : 1;      /* parley_http_free during MHD_run */
};

/* ------------------------------------------------------------------ */
/* Driving MHD from the loop                                           */
/* ------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);
static void on_soon(uv_idle_t *i);
static void do_free(struct parley_http *h);

/* Schedules the next MHD_run from MHD_get_timeout.  Must follow every
 * MHD_run.  "Now" goes through the idle handle, not a 0 ms timer: libuv
 * 1.44 runs a timer restarted at 0 ms again within the same timer pass,
 * so a daemon that keeps answering 0 would spin there without ever
 * polling I/O or letting other timers fire.  An idle handle runs once per
 * loop iteration, after a non-blocking poll. */
static void arm_timer(struct parley_http *h) {
  MHD_UNSIGNED_LONG_LONG ms;
  int have = 0;

  if (h->closing)
    return;
  if (h->rerun) {
    h->rerun = 0;
    have = 1;
    ms = 0;
  } else {
    have = MHD_get_timeout(h->daemon, &ms) == MHD_YES;
  }
  if (have && ms == 0) {
    uv_timer_stop(&h->timer);
    uv_idle_start(&h->soon, on_soon);
  } else if (have) {
    uv_idle_stop(&h->soon);
    uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
  } else {
    uv_idle_stop(&h->soon);
    uv_timer_stop(&h->timer);
  }
}

static void run(struct parley_http *h) {
  if (h->in_run || h->closing)
    return;
  h->in_run = 1;
  if (MHD_run(h->daemon) != MHD_YES)
    PARLEY_LOG(h->log, PARLEY_LOG_ERROR, "http: MHD_run failed");
  h->in_run = 0;
  if (h->free_asked) {
    do_free(h);
    return;
  }
  arm_timer(h);
}

/* Makes MHD run on the next loop iteration.  Never runs it from here: the
 * caller may be inside an MHD callback. */
static void kick(struct parley_http *h) {
  if (h->closing)
    return;
  if (h->in_run)
    h->rerun = 1; /* arm_timer after MHD_run picks it up */
  else
    uv_idle_start(&h->soon, on_soon);
}

static void on_timer(uv_timer_t *t) {
  run((struct parley_http *)t->data);
}

int parley_http_remote_ip(const struct parley_http_req *r, char *out,
                          size_t cap) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
      r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  const void *a;

  if (sa == NULL)
    return PARLEY_ENOTFOUND;
  if (sa->sa_family == AF_INET)
    a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
  else if (sa->sa_family == AF_INET6)
    a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
  else
    return PARLEY_ENOTFOUND;
  if (inet_ntop(sa->sa_family, a, out, (socklen_t)cap) == NULL)
    return PARLEY_ETOOBIG;
  return PARLEY_OK;
}

size_t parley_http_header_count(const struct parley_http_req *r) {
  int n = MHD_get_connection_values(r->conn, MHD_HEADER_KIND, NULL, NULL);
  return n > 0 ? (size_t)n : 0;
}

int parley_http_add_connection(struct parley_http *h, int fd) {
  struct sockaddr_in sin;

  /* MHD wants a peer address; a socketpair has none worth reporting. */
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (h->closing ||
      MHD_add_connection(h->daemon, fd, (const struct sockaddr *)&sin,
                         sizeof sin) != MHD_YES)
    return PARLEY_EIO; /* MHD closed fd */
  kick(h);
  return PARLEY_OK;
}

static void on_soon(uv_idle_t *i) {
  uv_idle_stop(i);
  run((struct parley_http *)i->data);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  struct parley_http *h = p->data;
  (void)events;
  if (status < 0)
    PARLEY_LOG(h->log, PARLEY_LOG_ERROR, "http: poll: %s",
               uv_strerror(status));
  run(h);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  struct parley_http *h = cls;
  char msg[512];
  size_t n;

  vsnprintf(msg, sizeof msg, fmt, ap);
  n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  /* Once running, most of MHD's messages are about misbehaving clients;
   * keep them from flooding the log at WARN. */
  PARLEY_LOG(h->log, h->started ? PARLEY_LOG_INFO : PARLEY_LOG_WARN,
             "http: mhd: %s", msg);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static void on_watch_closed(uv_handle_t *handle) {
  parley_free(handle->data); /* the request the watch is embedded in */
}

static void watch_stop(struct parley_http_req *r) {
  if (r->watch_init)
    uv_poll_stop(&r->watch);
}

static void on_watch(uv_poll_t *p, int status, int events) {
  struct parley_http_req *r = p->data;

  if (status < 0 || (events & UV_DISCONNECT)) {
    /* Resuming lets MHD see the request again, and both the access
     * handler and the stream reader close the connection once gone is
     * set; NOTIFY_COMPLETED then runs the close cb. */
    r->gone = 1;
    if (r->suspended) {
      watch_stop(r);
      r->suspended = 0;
      MHD_resume_connection(r->conn);
      kick(r->h);
    }
  }
}

/* Starts watching a suspended connection for a hang-up.  Best effort: if
 * it fails, the hang-up is noticed at the next answer or stream write. */
static void watch_start(struct parley_http_req *r) {
  const union MHD_ConnectionInfo *ci;
  int rc;

  if (!r->watch_init) {
    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
      return;
    rc = uv_poll_init_socket(r->h->loop, &r->watch, ci->connect_fd);
    if (rc < 0) {
      PARLEY_LOG(r->h->log, PARLEY_LOG_DEBUG, "http: watch: %s",
                 uv_strerror(rc));
      return;
    }
    r->watch.data = r;
    r->watch_init = 1;
  }
  /* UV_DISCONNECT is EPOLLRDHUP: the client closed or reset.  Pipelined
   * bytes from the client do not wake us. */
  rc = uv_poll_start(&r->watch, UV_DISCONNECT, on_watch);
  if (rc < 0)
    PARLEY_LOG(r->h->log, PARLEY_LOG_DEBUG, "http: watch: %s",
               uv_strerror(rc));
}

/* Parks the connection.  Only from the access handler or the reader. */
static void suspend_req(struct parley_http_req *r) {
  if (r->suspended || r->h->closing)
    return;
  MHD_suspend_connection(r->conn);
  r->suspended = 1;
  watch_start(r);
}

/* Wakes a parked connection and makes MHD look at it soon. */
static void resume_req(struct parley_http_req *r) {
  if (!r->suspended)
    return;
  watch_stop(r);
  r->suspended = 0;
  MHD_resume_connection(r->conn);
  kick(r->h);
}

static struct parley_http_req *req_new(struct parley_http *h,
                                       struct MHD_Connection *conn,
                                       const char *url, const char *method) {
  struct parley_http_req *r = parley_calloc(1, sizeof *r);

  if (r == NULL)
    return NULL;
  r->h = h;
  r->conn = conn;
  r->method = method;
  r->path = url; /* MHD has already cut the query off and decoded it */
  r->state = REQ_READING;
  parley_buf_init(&r->body, h->max_body + 1);
  parley_buf_init(&r->sbuf, h->max_stream_buffer);
  r->next = h->reqs;
  if (h->reqs != NULL)
    h->reqs->prev = r;
  h->reqs = r;
  return r;
}

/* Runs the close cb if the user still holds the request, then frees it.
 * The memory goes in the watch's close callback when it has one. */
static void req_finish(struct parley_http_req *r) {
  struct parley_http *h = r->h;

  if (!r->done && !r->dead && r->close_cb != NULL) {
    r->dead = 1;
    r->close_cb(r->close_data, r);
  }
  r->dead = 1;
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    h->reqs = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  if (r->streaming && h->stats.streams_open > 0)
    h->stats.streams_open--;
  if (r->pending != NULL)
    MHD_destroy_response(r->pending);
  parley_buf_close(&r->body);
  parley_buf_close(&r->sbuf);
  if (r->watch_init)
    uv_close((uv_handle_t *)&r->watch, on_watch_closed);
  else
    parley_free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe) {
  struct parley_http *h = cls;
  struct parley_http_req *r = *con_cls;
  (void)conn;

  if (r == NULL)
    return;
  *con_cls = NULL;
  if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
    PARLEY_LOG(h->log, PARLEY_LOG_DEBUG, "http: %s %s ended early (%d)",
               r->method, r->path, (int)toe);
  req_finish(r);
}

static void count_status(struct parley_http *h, unsigned status) {
  if (status >= 200 && status < 300)
    h->stats.responses_2xx++;
  else if (status >= 400 && status < 500)
    h->stats.responses_4xx++;
  else if (status >= 500)
    h->stats.responses_5xx++;
}

/* Hands a response to MHD: now if inside the access handler, else through
 * r->pending and a resume.  Takes ownership of resp. */
static void answer(struct parley_http_req *r, unsigned status,
                   struct MHD_Response *resp) {
  r->state = REQ_ANSWERED;
  if (r->in_handler) {
    if (MHD_queue_response(r->conn, status, resp) != MHD_YES)
      r->gone = 1; /* the access handler then closes the connection */
    MHD_destroy_response(resp);
    return;
  }
  r->pending = resp;
  r->pending_status = status;
  resume_req(r);
}

/* Adds Content-Type and the caller's extra headers. */
static void add_headers(struct parley_http *h, struct MHD_Response *resp,
                        const char *content_type,
                        const char *const *headers) {
  size_t i;

  if (content_type[0] != '\0' &&
      MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                              content_type) != MHD_YES)
    PARLEY_LOG(h->log, PARLEY_LOG_WARN, "http: bad content type dropped");
  for (i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL;
       i += 2) {
    /* MHD refuses names and values with CR/LF, so a caller cannot split
     * the response. */
    if (MHD_add_response_header(resp, headers[i], headers[i + 1]) != MHD_YES)
      PARLEY_LOG(h->log, PARLEY_LOG_WARN, "http: bad header %s dropped",
                 headers[i]);
  }
}

static unsigned checked_status(struct parley_http *h, unsigned status) {
  if (status < 200 || status > 599) {
    PARLEY_LOG(h->log, PARLEY_LOG_ERROR, "http: status %u replaced by 500",
               status);
    return 500;
  }
  return status;
}

/* 413 for an over-size body.  From the access handler only. */
static enum MHD_Result refuse_toobig(struct parley_http_req *r) {
  struct parley_http *h = r->h;
  struct MHD_Response *resp;
  enum MHD_Result ret;

  h->stats.refused++;
  count_status(h, 413);
  r->state = REQ_ANSWERED;
  resp = MHD_create_response_from_buffer(sizeof toobig_body - 1,
                                         (void *)toobig_body,
                                         MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                              "application/json") != MHD_YES) {
    MHD_destroy_response(resp);
    return MHD_NO;
  }
  ret = MHD_queue_response(r->conn, MHD_HTTP_CONTENT_TOO_LARGE, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* Body complete: call the handler once. */
static enum MHD_Result dispatch(struct parley_http_req *r) {
  struct parley_http *h = r->h;

  /* A NUL after the body (not counted in its length) lets text parsers
   * that want C strings work on it directly; the cap has room for it. */
  if (parley_buf_reserve(&r->body, 1) < 0)
    return MHD_NO;
  r->body.data[r->body.len] = '\0';
  r->state = REQ_HANDLER;
  r->in_handler = 1;
  h->handler(h->ctx, r);
  r->in_handler = 0;
  if (r->gone)
    return MHD_NO;
  if (r->state == REQ_HANDLER) {
    if (!r->want_suspend)
      PARLEY_LOG(h->log, PARLEY_LOG_WARN,
                 "http: handler for %s %s did not answer; suspending",
                 r->method, r->path);
    suspend_req(r);
  }
  return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
  struct parley_http *h = cls;
  struct parley_http_req *r = *con_cls;
  const char *cl;
  uint64_t clen;
  size_t n = *upload_size;
  (void)version;
  (void)upload;

  if (r == NULL) {
    if (h->closing)
      return MHD_NO;
    r = req_new(h, conn, url, method);
    if (r == NULL)
      return MHD_NO;
    *con_cls = r;
    h->stats.requests++;
    /* A declared length over the cap is refused before reading any of
     * it; MHD then closes the connection after the 413. */
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && parley_parse_u64(cl, 0, UINT64_MAX, &clen) == 0 &&
        clen > h->max_body) {
      r->state = REQ_TOOBIG;
      return refuse_toobig(r);
    }
    return MHD_YES;
  }
  if (h->closing || r->gone)
    return MHD_NO;

  switch (r->state) {
  case REQ_READING:
    if (n == 0)
      return dispatch(r);
    *upload_size = 0;
    if (r->body.len + n > h->max_body) {
      /* Chunked upload past the cap (no Content-Length to check): MHD
       * cannot answer in the middle of an upload, so drop the rest and
       * answer 413 at the end. */
      r->state = REQ_TOOBIG;
      r->discarded = n;
      parley_buf_close(&r->body);
      return MHD_YES;
    }
    return parley_buf_append(&r->body, upload, n) < 0 ? MHD_NO : MHD_YES;
  case REQ_TOOBIG:
    if (n == 0)
      return refuse_toobig(r);
    *upload_size = 0;
    r->discarded += n;
    if (r->discarded > h->max_body) {
      /* Do not read an endless body just to say 413. */
      h->stats.refused++;
      return MHD_NO;
    }
    return MHD_YES;
  case REQ_HANDLER:
  case REQ_ANSWERED:
    if (r->pending != NULL) {
      struct MHD_Response *resp = r->pending;
      enum MHD_Result ret;

      r->pending = NULL;
      ret = MHD_queue_response(conn, r->pending_status, resp);
      MHD_destroy_response(resp);
      return ret;
    }
    if (r->state == REQ_HANDLER)
      suspend_req(r); /* woken without an answer: keep waiting */
    return MHD_YES;
  }
  return MHD_NO;
}

/* ------------------------------------------------------------------ */
/* Streams                                                             */
/* ------------------------------------------------------------------ */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  struct parley_http_req *r = cls;
  size_t avail, n;
  (void)pos;

  if (r->h->closing || r->gone || r->stream_failed)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  avail = r->sbuf.len - r->soff;
  if (avail > 0) {
    n = avail < max ? avail : max;
    memcpy(buf, r->sbuf.data + r->soff, n);
    r->soff += n;
    if (r->soff == r->sbuf.len) {
      r->soff = 0;
      if (r->sbuf.alloc > STREAM_KEEP)
        parley_buf_close(&r->sbuf); /* keeps the cap */
      else
        parley_buf_reset(&r->sbuf);
    }
    return (ssize_t)n;
  }
  if (r->stream_ended)
    return MHD_CONTENT_READER_END_OF_STREAM;
  /* Nothing to send.  Returning 0 alone would leave the connection in
   * MHD's ready list, and MHD_get_timeout would answer 0 forever: a busy
   * loop.  Suspending takes it out until stream_write or stream_end
   * resumes it (microhttpd.h prescribes exactly this pairing). */
  suspend_req(r);
  return 0;
}

int parley_http_stream_start(struct parley_http_req *r, unsigned status,
                             const char *content_type) {
  struct parley_http *h = r->h;
  struct MHD_Response *resp;

  if (r->dead || r->state != REQ_HANDLER)
    return PARLEY_EINVAL;
  status = checked_status(h, status);
  resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                           stream_read, r, NULL);
  if (resp == NULL)
    return PARLEY_ENOMEM;
  add_headers(h, resp, content_type, NULL);
  /* Event streams must not be cached or held back by proxies. */
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                              "no-cache") != MHD_YES) {
    MHD_destroy_response(resp);
    return PARLEY_ENOMEM;
  }
  r->streaming = 1;
  h->stats.streams_open++;
  count_status(h, status);
  answer(r, status, resp);
  return PARLEY_OK;
}

int parley_http_stream_write(struct parley_http_req *r, const void *data,
                             size_t len) {
  int rc;

  if (r->dead || !r->streaming || r->stream_ended)
    return PARLEY_EINVAL;
  if (r->stream_failed)
    return PARLEY_ELIMIT;
  if (r->gone)
    return PARLEY_ECLOSED;
  if (len == 0)
    return PARLEY_OK;
  /* Drop what MHD already took before testing the cap. */
  if (r->soff > 0 && r->sbuf.len + len > r->sbuf.alloc) {
    parley_buf_consume(&r->sbuf, r->soff);
    r->soff = 0;
  }
  rc = parley_buf_append(&r->sbuf, data, len);
  if (rc < 0) {
    /* The client does not keep up (or memory ran out): end the stream
     * with an error rather than buffer without bound. */
    PARLEY_LOG(r->h->log, PARLEY_LOG_INFO,
               "http: stream %s ended: client too slow (%zu bytes queued)",
               r->path, r->sbuf.len - r->soff);
    r->stream_failed = 1;
    resume_req(r);
    return rc == PARLEY_ETOOBIG ? PARLEY_ELIMIT : rc;
  }
  resume_req(r);
  return PARLEY_OK;
}

void parley_http_stream_end(struct parley_http_req *r) {
  if (r->dead || !r->streaming || r->stream_ended)
    return;
  r->stream_ended = 1;
  r->done = 1;
  resume_req(r);
}

/* ------------------------------------------------------------------ */
/* Answers and accessors                                               */
/* ------------------------------------------------------------------ */

void parley_http_respond(struct parley_http_req *r, unsigned status,
                         const char *content_type, const void *body,
                         size_t len, const char *const *headers) {
  struct parley_http *h = r->h;
  struct MHD_Response *resp;

  if (r->dead || r->state != REQ_HANDLER) {
    PARLEY_LOG(h->log, PARLEY_LOG_ERROR,
               "http: answer to finished %s %s ignored", r->method, r->path);
    return;
  }
  status = checked_status(h, status);
  r->done = 1;
  resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
                                         MHD_RESPMEM_MUST_COPY);
  if (resp == NULL) {
    PARLEY_LOG(h->log, PARLEY_LOG_ERROR, "http: out of memory answering");
    r->gone = 1; /* close the connection rather than hang it */
    resume_req(r);
    return;
  }
  add_headers(h, resp, content_type, headers);
  count_status(h, status);
  answer(r, status, resp);
}

void parley_http_suspend(struct parley_http_req *r) {
  if (r->in_handler)
    r->want_suspend = 1;
}

void parley_http_set_close_cb(struct parley_http_req *r,
                              parley_http_close_cb cb, void *data) {
  r->close_cb = cb;
  r->close_data = data;
}

const char *parley_http_method(const struct parley_http_req *r) {
  return r->method;
}

const char *parley_http_path(const struct parley_http_req *r) {
  return r->path;
}

const char *parley_http_query(const struct parley_http_req *r,
                              const char *name) {
  const char *v = NULL;

  if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name,
                                    strlen(name), &v, NULL) != MHD_YES)
    return NULL;
  return v != NULL ? v : ""; /* "?flag" has no value */
}

struct query_iter {
  void (*cb)(void *ctx, const char *k, const char *v);
  void *ctx;
};

static enum MHD_Result query_step(void *cls, enum MHD_ValueKind kind,
                                  const char *key, const char *value) {
  struct query_iter *it = cls;
  (void)kind;
  it->cb(it->ctx, key, value != NULL ? value : "");
  return MHD_YES;
}

void parley_http_query_each(const struct parley_http_req *r,
                            void (*cb)(void *ctx, const char *k,
                                       const char *v),
                            void *ctx) {
  struct query_iter it;

  it.cb = cb;
  it.ctx = ctx;
  /* MHD keeps arguments in arrival order. */
  (void)MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_step,
                                  &it);
}

const char *parley_http_header(const struct parley_http_req *r,
                               const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const uint8_t *parley_http_body(const struct parley_http_req *r,
                                size_t *len) {
  *len = r->body.len;
  return r->body.data != NULL ? r->body.data : (const uint8_t *)"";
}

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *handle) {
  struct parley_http *h = handle->data;
  if (--h->open_handles == 0)
    parley_free(h);
}

/* Parses host into a sockaddr.  OUT: *ss, *len, *ipv6. */
static int make_addr(const char *host, uint16_t port,
                     struct sockaddr_storage *ss, int *ipv6) {
  memset(ss, 0, sizeof *ss);
  if (strchr(host, ':') != NULL) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
      return PARLEY_EINVAL;
    *ipv6 = 1;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
      return PARLEY_EINVAL;
    *ipv6 = 0;
  }
  return PARLEY_OK;
}

static uint16_t bound_port(struct parley_http *h) {
  const union MHD_DaemonInfo *di;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;

  di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
  if (di != NULL && di->port != 0)
    return di->port;
  di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_LISTEN_FD);
  if (di == NULL || getsockname(di->listen_fd, (struct sockaddr *)&ss, &sl))
    return 0;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int parley_http_new(const struct parley_http_config *cfg,
                    struct parley_http **out) {
  struct parley_http *h;
  struct sockaddr_storage ss;
  const union MHD_DaemonInfo *di;
  unsigned int flags, conns, idle;
  int ipv6 = 0, rc;

  *out = NULL;
  if (cfg->loop == NULL || cfg->host == NULL || cfg->handler == NULL)
    return PARLEY_EINVAL;
  if (cfg->max_body > PARLEY_MAX_HTTP_BODY)
    return PARLEY_ERANGE;
  rc = make_addr(cfg->host, cfg->port, &ss, &ipv6);
  if (rc < 0)
    return rc;
  h = parley_calloc(1, sizeof *h);
  if (h == NULL)
    return PARLEY_ENOMEM;
  h->loop = cfg->loop;
  h->log = cfg->log;
  h->handler = cfg->handler;
  h->ctx = cfg->ctx;
  h->max_body = cfg->max_body ? cfg->max_body : PARLEY_MAX_HTTP_BODY;
  h->max_stream_buffer =
      cfg->max_stream_buffer ? cfg->max_stream_buffer : DEFAULT_STREAM_BUFFER;
  conns = cfg->max_conns ? cfg->max_conns : DEFAULT_MAX_CONNS;
  idle = cfg->idle_timeout_s ? cfg->idle_timeout_s : DEFAULT_IDLE_S;

  /* No internal thread: MHD only runs inside MHD_run, called from this
   * loop.  The idle timeout closes connections that stop making progress
   * (slowloris); the memory limit bounds the request head. */
  flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (ipv6)
    flags |= MHD_USE_IPv6;
  /* The logger goes first: MHD logs through the default one until it
   * has seen this option. */
  h->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
      h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_CONNECTION_LIMIT, conns, MHD_OPTION_CONNECTION_TIMEOUT, idle,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
  if (h->daemon == NULL) {
    PARLEY_LOG(h->log, PARLEY_LOG_ERROR, "http: cannot listen on %s:%u",
               cfg->host, (unsigned)cfg->port);
    parley_free(h);
    return PARLEY_EIO;
  }
  h->started = 1;
  h->port = bound_port(h);
  di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  rc = di != NULL ? uv_poll_init(h->loop, &h->poll, di->epoll_fd) : UV_EINVAL;
  if (rc < 0) {
    PARLEY_LOG(h->log, PARLEY_LOG_ERROR, "http: poll init: %s",
               uv_strerror(rc));
    MHD_stop_daemon(h->daemon);
    parley_free(h);
    return parley_err_from_uv(rc);
  }
  h->poll.data = h;
  uv_timer_init(h->loop, &h->timer);
  h->timer.data = h;
  uv_idle_init(h->loop, &h->soon);
  h->soon.data = h;
  h->open_handles = 3;
  rc = uv_poll_start(&h->poll, UV_READABLE, on_poll);
  if (rc < 0) {
    PARLEY_LOG(h->log, PARLEY_LOG_ERROR, "http: poll start: %s",
               uv_strerror(rc));
    do_free(h); /* frees h once the loop has closed the handles */
    return parley_err_from_uv(rc);
  }
  arm_timer(h);
  *out = h;
  return PARLEY_OK;
}

/* Ends everything.  Never called inside MHD_run (see parley_http_free). */
static void do_free(struct parley_http *h) {
  struct parley_http_req *r;

  h->closing = 1;
  uv_timer_stop(&h->timer);
  uv_idle_stop(&h->soon);
  uv_poll_stop(&h->poll);
  /* MHD_stop_daemon aborts the process if it meets a connection that is
   * still suspended, so wake them all.  A resume only raises a flag until
   * MHD runs; 0.9.75 also handles pending resumes inside MHD_stop_daemon,
   * but one MHD_run first does not depend on that.  With closing set, the
   * access handler and the readers close every connection they see. */
  for (r = h->reqs; r != NULL; r = r->next) {
    if (r->suspended) {
      watch_stop(r);
      r->suspended = 0;
      MHD_resume_connection(r->conn);
    }
  }
  h->in_run = 1; /* keeps user callbacks from re-entering */
  (void)MHD_run(h->daemon);
  MHD_stop_daemon(h->daemon); /* completes the rest: close cbs run */
  h->daemon = NULL;
  while (h->reqs != NULL) /* MHD should have completed them all */
    req_finish(h->reqs);
  uv_close((uv_handle_t *)&h->poll, on_handle_closed);
  uv_close((uv_handle_t *)&h->timer, on_handle_closed);
  uv_close((uv_handle_t *)&h->soon, on_handle_closed);
}

void parley_http_free(struct parley_http *h) {
  if (h == NULL || h->closing)
    return;
  if (h->in_run) {
    /* Called from a handler or close cb: finish after MHD_run returns. */
    h->free_asked = 1;
    return;
  }
  do_free(h);
}

uint16_t parley_http_port(const struct parley_http *h) { return h->port; }

const struct parley_http_stats *parley_http_stats(const struct parley_http *h) {
  return &h->stats;
}
