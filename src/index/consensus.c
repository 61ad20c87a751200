/* consensus.c — libraft behind a Parley-typed API (see consensus.h).
 *
 * The only file that includes <raft.h> and <raft/uv.h>.  Pieces:
 *   - the FSM: entries are encoded parley_reg_cmds, applied to the
 *     registry; snapshots are registry snapshots;
 *   - the transport adapter: libraft's struct raft_uv_transport on top of
 *     raft_transport.h, which hands over socketpair fds that become the
 *     uv_pipe_t streams libraft owns (allocated with raft_malloc, because
 *     libraft releases them with raft_free);
 *   - leadership tracking: a uv_check handle compares raft_state() after
 *     every loop iteration; a new leader first commits a barrier so that
 *     its registry holds every earlier entry before it serves writes;
 *   - proposals, membership changes, status.
 */
#include "index/consensus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "core/alloc.h"
#include "core/buf.h"

/* libraft's open segments are preallocated; 1 MiB holds thousands of our
 * small entries, more than one snapshot interval. */
#define SEGMENT_SIZE (1024u * 1024u)
#define CONNECT_RETRY_MS 50u
/* Largest registry snapshot we are willing to build. */
#define MAX_SNAPSHOT (512u * 1024u * 1024u)

struct prop {
  struct raft_apply req;
  struct parley_consensus *c;
  struct prop *prev, *next;
  parley_consensus_cb cb;
  void *ctx;
};

enum { CHG_ADD = 1, CHG_ASSIGN = 2, CHG_REMOVE = 3 };

struct chg {
  struct raft_change req;
  struct parley_consensus *c;
  uint64_t id;
  int stage;
  parley_consensus_cb cb;
  void *ctx;
};

struct tv_connect {
  struct parley_rt_connect rq; /* first: recovered by a cast */
  struct parley_consensus *c;
  struct raft_uv_connect *req;
  raft_uv_connect_cb cb;
};

struct parley_consensus {
  uv_loop_t *loop;
  const struct parley_log *log;
  uint64_t self_id;
  char raft_addr[PARLEY_MAX_ADDR + 1];
  char listen_addr[PARLEY_MAX_ADDR + 1];
  char http_addr[PARLEY_MAX_ADDR + 1];
  char raft_dir[4096];
  struct parley_registry *reg;
  struct parley_consensus_hooks hooks;

  struct raft raft;
  struct raft_io io;
  struct raft_fsm fsm;
  struct raft_uv_transport tv;
  raft_uv_accept_cb accept_cb;
  raft_uv_transport_close_cb tv_close_cb;
  struct parley_rtransport *rt;
  int io_inited, raft_inited, started;

  uv_check_t check;
  int check_open;
  int last_state;
  uint64_t last_leader, leader_changes;
  int ready; /* leader with the barrier committed */
  int barrier_pending;
  uint64_t barrier_term;
  struct raft_barrier barrier;

  int last_rc;        /* the verdict of the entry just applied */
  struct prop *props; /* proposals in flight */
  struct chg *chg;    /* the membership change in flight */

  int closing;
  int raft_done, rt_done; /* their close callbacks ran (or nothing to do) */
  void (*done)(void *ctx);
  void *done_ctx;
};

/* ---- errors ---------------------------------------------------------- */

static int err_from_raft(int rv) {
  switch (rv) {
  case 0:
    return PARLEY_OK;
  case RAFT_NOMEM:
    return PARLEY_ENOMEM;
  case RAFT_NOTLEADER:
  case RAFT_LEADERSHIPLOST:
    return PARLEY_ENOTLEADER;
  case RAFT_SHUTDOWN:
  case RAFT_CANCELED:
    return PARLEY_ECANCELED;
  case RAFT_CANTCHANGE:
  case RAFT_BUSY:
    return PARLEY_EUNAVAIL;
  case RAFT_DUPLICATEID:
  case RAFT_DUPLICATEADDRESS:
    return PARLEY_EEXIST;
  case RAFT_NOTFOUND:
  case RAFT_BADID:
    return PARLEY_ENOTFOUND;
  case RAFT_BADROLE:
  case RAFT_INVALID:
  case RAFT_MALFORMED:
    return PARLEY_EINVAL;
  case RAFT_NOCONNECTION:
    return PARLEY_ECONNECT;
  case RAFT_TOOBIG:
    return PARLEY_ETOOBIG;
  case RAFT_IOERR:
  case RAFT_NOSPACE:
  case RAFT_CORRUPT:
    return PARLEY_EIO;
  default:
    return PARLEY_EINTERNAL;
  }
}

/* ---- closing --------------------------------------------------------- */

/* Runs once raft and the transport are closed: fails whatever libraft did
 * not complete, then releases everything. */
static void maybe_done(struct parley_consensus *c) {
  void (*done)(void *) = c->done;
  void *ctx = c->done_ctx;

  if (!c->closing || !c->raft_done || !c->rt_done || c->check_open)
    return;
  while (c->props != NULL) {
    struct prop *p = c->props;
    c->props = p->next;
    p->cb(p->ctx, PARLEY_ECANCELED);
    parley_free(p);
  }
  if (c->chg != NULL) {
    struct chg *g = c->chg;
    c->chg = NULL;
    g->cb(g->ctx, PARLEY_ECANCELED);
    parley_free(g);
  }
  parley_free(c);
  if (done != NULL)
    done(ctx);
}

/* ---- the FSM --------------------------------------------------------- */

/* An entry is one encoded parley_reg_cmd followed by 0..7 zero bytes up to
 * a multiple of 8: libraft's batch decoder assumes 8-byte padded entry
 * payloads, but its AppendEntries encoder sends them as they are, so an
 * entry of any other length shifts every later entry of the same batch.
 * Returns the command's length, or 0 if the entry is not of that form. */
static size_t entry_cmd_len(const uint8_t *p, size_t len) {
  size_t off = 1 + 32 + 8; /* type, pk, ts */

  if (len % 8 != 0)
    return 0;
  for (int i = 0; i < 3; i++) { /* str8 addr, name, topic */
    if (off >= len)
      return 0;
    off += 1 + (size_t)p[off];
  }
  if (off > len || len - off >= 8)
    return 0;
  for (size_t i = off; i < len; i++)
    if (p[i] != 0)
      return 0;
  return off;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result) {
  struct parley_consensus *c = fsm->data;
  struct parley_reg_cmd cmd;
  size_t n = entry_cmd_len(buf->base, buf->len);
  int rc;

  rc = n > 0 ? parley_reg_cmd_decode(buf->base, n, &cmd) : PARLEY_EPROTO;
  if (rc < 0) {
    /* Only leaders write entries, and they encode them: a bad one is a
     * deterministic no-op on every node. */
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR,
               "raft: undecodable entry of %zu bytes ignored", buf->len);
  } else {
    rc = parley_registry_apply(c->reg, &cmd);
    if (rc == PARLEY_ENOMEM) {
      /* The one non-deterministic outcome: this replica can no longer
       * follow the log.  Stop; a restart recovers from snapshot + log. */
      PARLEY_LOG(c->log, PARLEY_LOG_ERROR,
                 "raft: out of memory applying a committed entry: aborting");
      abort();
    }
    if (c->hooks.applied != NULL)
      c->hooks.applied(c->hooks.ctx, &cmd, rc);
  }
  c->last_rc = rc;
  *result = &c->last_rc;
  return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n_bufs) {
  struct parley_consensus *c = fsm->data;
  struct parley_buf b;
  struct raft_buffer *v;
  int rc;

  parley_buf_init(&b, MAX_SNAPSHOT);
  rc = parley_registry_snapshot(c->reg, &b);
  if (rc < 0) {
    parley_buf_close(&b);
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR, "raft: snapshot: %s",
               parley_strerror(rc));
    return RAFT_NOMEM;
  }
  v = raft_malloc(sizeof *v);
  if (v == NULL) {
    parley_buf_close(&b);
    return RAFT_NOMEM;
  }
  v->len = b.len;
  v->base = raft_malloc(b.len > 0 ? b.len : 1);
  if (v->base == NULL) {
    raft_free(v);
    parley_buf_close(&b);
    return RAFT_NOMEM;
  }
  memcpy(v->base, b.data, b.len);
  parley_buf_close(&b);
  *bufs = v;
  *n_bufs = 1;
  PARLEY_LOG(c->log, PARLEY_LOG_DEBUG, "raft: snapshot of %zu bytes", v->len);
  return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  struct parley_consensus *c = fsm->data;
  int rc = parley_registry_restore(c->reg, buf->base, buf->len);

  if (rc < 0) {
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR, "raft: cannot restore snapshot: %s",
               parley_strerror(rc));
    return rc == PARLEY_ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
  }
  raft_free(buf->base); /* ours on success */
  PARLEY_LOG(c->log, PARLEY_LOG_INFO,
             "raft: registry restored from a snapshot (%zu peers, %zu topics)",
             parley_registry_peer_count(c->reg),
             parley_registry_topic_count(c->reg));
  if (c->started && c->hooks.restored != NULL)
    c->hooks.restored(c->hooks.ctx);
  return 0;
}

/* ---- the transport adapter ------------------------------------------- */

static void free_stream(uv_handle_t *h) { raft_free(h); }

/* A socketpair end as the uv stream libraft owns (raft_malloc'd: libraft
 * releases it with raft_free after uv_close).  NULL on failure (fd closed). */
static struct uv_stream_s *wrap_fd(struct parley_consensus *c, int fd) {
  uv_pipe_t *p = raft_malloc(sizeof *p);
  int rc;

  if (p == NULL) {
    close(fd);
    return NULL;
  }
  rc = uv_pipe_init(c->loop, p, 0);
  if (rc < 0) {
    raft_free(p);
    close(fd);
    return NULL;
  }
  rc = uv_pipe_open(p, fd);
  if (rc < 0) {
    close(fd);
    uv_close((uv_handle_t *)p, free_stream);
    return NULL;
  }
  return (struct uv_stream_s *)p;
}

static int tv_init(struct raft_uv_transport *t, raft_id id,
                   const char *address) {
  (void)t;
  (void)id;
  (void)address;
  return 0;
}

/* The address libraft should associate with member id: the one in the
 * current configuration when there is one (libraft insists that one id
 * keeps one address), else what the member announced. */
static const char *member_addr(struct parley_consensus *c, uint64_t id,
                               const char *announced) {
  for (unsigned i = 0; i < c->raft.configuration.n; i++)
    if (c->raft.configuration.servers[i].id == id)
      return c->raft.configuration.servers[i].address;
  return announced;
}

static void on_accepted(void *ctx, uint64_t id, const char *raft_addr, int fd) {
  struct parley_consensus *c = ctx;
  struct uv_stream_s *s;

  if (c->closing || c->accept_cb == NULL) {
    close(fd);
    return;
  }
  s = wrap_fd(c, fd);
  if (s == NULL) {
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR,
               "raft: cannot wrap the stream from member %llu",
               (unsigned long long)id);
    return;
  }
  c->accept_cb(&c->tv, id, member_addr(c, id, raft_addr), s);
}

static int tv_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb) {
  struct parley_consensus *c = t->impl;
  c->accept_cb = cb;
  parley_rtransport_listen(c->rt, on_accepted, c);
  return 0;
}

static void on_connected(struct parley_rt_connect *rq, int fd, int status) {
  struct tv_connect *tc = (struct tv_connect *)rq;
  struct parley_consensus *c = tc->c;
  struct raft_uv_connect *req = tc->req;
  raft_uv_connect_cb cb = tc->cb;
  struct uv_stream_s *s = NULL;

  parley_free(tc);
  if (status == 0) {
    s = wrap_fd(c, fd);
    if (s == NULL) {
      cb(req, NULL, RAFT_NOCONNECTION);
      return;
    }
    cb(req, s, 0);
    return;
  }
  /* libraft accepts RAFT_CANCELED only while it is closing. */
  cb(req, NULL, c->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
}

static int tv_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb) {
  struct parley_consensus *c = t->impl;
  struct tv_connect *tc;
  int rc;

  tc = parley_calloc(1, sizeof *tc);
  if (tc == NULL)
    return RAFT_NOMEM;
  tc->c = c;
  tc->req = req;
  tc->cb = cb;
  rc = parley_rtransport_connect(c->rt, &tc->rq, id, address, on_connected);
  if (rc < 0) {
    parley_free(tc);
    return RAFT_NOCONNECTION;
  }
  return 0;
}

static void on_rt_closed(void *ctx) {
  struct parley_consensus *c = ctx;
  raft_uv_transport_close_cb cb = c->tv_close_cb;
  c->rt = NULL;
  c->rt_done = 1;
  if (cb != NULL)
    cb(&c->tv);
  else
    maybe_done(c);
}

static void tv_close(struct raft_uv_transport *t,
                     raft_uv_transport_close_cb cb) {
  struct parley_consensus *c = t->impl;
  c->tv_close_cb = cb;
  parley_rtransport_close(c->rt, on_rt_closed, c);
}

/* ---- leadership ------------------------------------------------------ */

static void barrier_cb(struct raft_barrier *req, int status) {
  struct parley_consensus *c = req->data;

  c->barrier_pending = 0;
  if (c->closing)
    return;
  if (status != 0 || raft_state(&c->raft) != RAFT_LEADER ||
      c->raft.current_term != c->barrier_term)
    return; /* lost it meanwhile; the check handle notices */
  c->ready = 1;
  PARLEY_LOG(c->log, PARLEY_LOG_INFO,
             "raft: node %llu is the leader (term %llu), serving writes",
             (unsigned long long)c->self_id,
             (unsigned long long)c->raft.current_term);
  if (c->hooks.leadership != NULL)
    c->hooks.leadership(c->hooks.ctx, 1);
}

/* After every loop iteration: notice leadership and leader changes. */
static void on_check(uv_check_t *h) {
  struct parley_consensus *c = h->data;
  int state;
  raft_id lid = 0;
  const char *laddr = NULL;

  if (c->closing || !c->started)
    return;
  state = raft_state(&c->raft);
  raft_leader(&c->raft, &lid, &laddr);
  if (lid != c->last_leader) {
    if (lid != 0) {
      c->leader_changes++;
      PARLEY_LOG(c->log, PARLEY_LOG_INFO,
                 "raft: leader is %llu (%s), term %llu",
                 (unsigned long long)lid, laddr != NULL ? laddr : "?",
                 (unsigned long long)c->raft.current_term);
    } else {
      PARLEY_LOG(c->log, PARLEY_LOG_INFO, "raft: no leader (term %llu)",
                 (unsigned long long)c->raft.current_term);
    }
    c->last_leader = lid;
  }
  if (state != RAFT_LEADER && c->ready) {
    c->ready = 0;
    PARLEY_LOG(c->log, PARLEY_LOG_INFO, "raft: node %llu is no longer leader",
               (unsigned long long)c->self_id);
    if (c->hooks.leadership != NULL)
      c->hooks.leadership(c->hooks.ctx, 0);
  }
  if (state == RAFT_LEADER && !c->ready && !c->barrier_pending) {
    c->barrier.data = c;
    c->barrier_term = c->raft.current_term;
    if (raft_barrier(&c->raft, &c->barrier, barrier_cb) == 0)
      c->barrier_pending = 1;
  }
  c->last_state = state;
}

static void check_closed(uv_handle_t *h) {
  struct parley_consensus *c = h->data;
  c->check_open = 0;
  maybe_done(c);
}

/* ---- lifecycle ------------------------------------------------------- */

static void on_raft_closed(struct raft *r) {
  struct parley_consensus *c = r->data;
  raft_uv_close(&c->io);
  c->raft_done = 1;
  maybe_done(c);
}

static void copy_addr(char *dst, const char *src) {
  size_t n = src != NULL ? strlen(src) : 0;
  if (n > PARLEY_MAX_ADDR)
    n = PARLEY_MAX_ADDR;
  if (n > 0)
    memcpy(dst, src, n);
  dst[n] = '\0';
}

/* 1 if DIR/raft holds libraft state already. */
static int has_raft_state(const char *dir) {
  char path[4200];
  struct stat st;
  snprintf(path, sizeof path, "%s/metadata1", dir);
  if (stat(path, &st) == 0)
    return 1;
  snprintf(path, sizeof path, "%s/metadata2", dir);
  return stat(path, &st) == 0;
}

static int bootstrap(struct parley_consensus *c,
                     const struct parley_consensus_config *cfg) {
  struct raft_configuration conf;
  int rv = 0;

  raft_configuration_init(&conf);
  for (size_t i = 0; i < cfg->nnodes && rv == 0; i++)
    rv = raft_configuration_add(&conf, cfg->nodes[i].id, cfg->nodes[i].raft,
                                RAFT_VOTER);
  if (rv == 0)
    rv = raft_bootstrap(&c->raft, &conf);
  raft_configuration_close(&conf);
  if (rv == RAFT_CANTBOOTSTRAP)
    return PARLEY_OK; /* state on disk already */
  if (rv != 0) {
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR, "raft: bootstrap: %s (%s)",
               raft_strerror(rv), raft_errmsg(&c->raft));
    return rv == RAFT_NOMEM ? PARLEY_ENOMEM : PARLEY_ESTORE;
  }
  PARLEY_LOG(c->log, PARLEY_LOG_INFO,
             "raft: bootstrapped a cluster of %zu voters", cfg->nnodes);
  return PARLEY_OK;
}

static int start(struct parley_consensus *c,
                 const struct parley_consensus_config *cfg) {
  struct parley_rtransport_config tcfg;
  const char *self_addr = NULL;
  int rv, rc, existing;

  for (size_t i = 0; i < cfg->nnodes; i++)
    if (cfg->nodes[i].id == cfg->self_id)
      self_addr = cfg->nodes[i].raft;
  if (self_addr == NULL || cfg->self_id == 0) {
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR,
               "raft: node id %llu is not listed in the cluster",
               (unsigned long long)cfg->self_id);
    return PARLEY_EINVAL;
  }
  copy_addr(c->raft_addr, self_addr);
  if ((size_t)snprintf(c->raft_dir, sizeof c->raft_dir, "%s/raft",
                       cfg->data_dir) >= sizeof c->raft_dir)
    return PARLEY_EINVAL;
  if (mkdir(c->raft_dir, 0700) < 0 && errno != EEXIST) {
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR, "mkdir %s: %s", c->raft_dir,
               strerror(errno));
    return PARLEY_EIO;
  }
  existing = has_raft_state(c->raft_dir);

  memset(&tcfg, 0, sizeof tcfg);
  tcfg.loop = c->loop;
  tcfg.log = c->log;
  tcfg.id = cfg->id;
  tcfg.data_dir = cfg->data_dir;
  tcfg.self_id = c->self_id;
  tcfg.raft_addr = c->raft_addr;
  tcfg.listen_addr = c->listen_addr;
  tcfg.http_addr = c->http_addr;
  tcfg.cluster_key = cfg->cluster_key;
  tcfg.name = cfg->name;
  rc = parley_rtransport_new(&tcfg, &c->rt);
  if (rc < 0)
    return rc;

  c->tv.impl = c;
  c->tv.init = tv_init;
  c->tv.listen = tv_listen;
  c->tv.connect = tv_connect;
  c->tv.close = tv_close;
  rv = raft_uv_init(&c->io, c->loop, c->raft_dir, &c->tv);
  if (rv != 0) {
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR, "raft: I/O in %s: %s (%s)",
               c->raft_dir, raft_strerror(rv), c->io.errmsg);
    return PARLEY_ESTORE;
  }
  c->io_inited = 1;
  raft_uv_set_connect_retry_delay(&c->io, CONNECT_RETRY_MS);
  raft_uv_set_segment_size(&c->io, SEGMENT_SIZE);
  (void)raft_uv_set_snapshot_compression(&c->io, false);

  c->fsm.version = 1;
  c->fsm.data = c;
  c->fsm.apply = fsm_apply;
  c->fsm.snapshot = fsm_snapshot;
  c->fsm.restore = fsm_restore;
  rv = raft_init(&c->raft, &c->io, &c->fsm, c->self_id, c->raft_addr);
  if (rv != 0) {
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR, "raft: init: %s (%s)",
               raft_strerror(rv), raft_errmsg(&c->raft));
    return rv == RAFT_NOMEM ? PARLEY_ENOMEM : PARLEY_ESTORE;
  }
  c->raft_inited = 1;
  c->raft.data = c;
  raft_set_election_timeout(&c->raft, cfg->election_ms
                                          ? cfg->election_ms
                                          : PARLEY_CONSENSUS_ELECTION_MS);
  raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_ms
                                           ? cfg->heartbeat_ms
                                           : PARLEY_CONSENSUS_HEARTBEAT_MS);
  raft_set_pre_vote(&c->raft, true);
  raft_set_snapshot_threshold(
      &c->raft, cfg->snapshot_threshold ? cfg->snapshot_threshold
                                        : PARLEY_CONSENSUS_SNAPSHOT_THRESHOLD);
  raft_set_snapshot_trailing(
      &c->raft, cfg->snapshot_trailing ? cfg->snapshot_trailing
                                       : PARLEY_CONSENSUS_SNAPSHOT_TRAILING);
  if (!existing && !cfg->join) {
    rc = bootstrap(c, cfg);
    if (rc < 0)
      return rc;
  } else if (!existing) {
    PARLEY_LOG(c->log, PARLEY_LOG_INFO,
               "raft: joining: waiting for the leader to add node %llu (%s)",
               (unsigned long long)c->self_id, c->raft_addr);
  }
  rv = raft_start(&c->raft);
  if (rv != 0) {
    PARLEY_LOG(c->log, PARLEY_LOG_ERROR, "raft: start: %s (%s)",
               raft_strerror(rv), raft_errmsg(&c->raft));
    return rv == RAFT_NOMEM ? PARLEY_ENOMEM : PARLEY_ESTORE;
  }
  c->started = 1;
  PARLEY_LOG(c->log, PARLEY_LOG_INFO,
             "raft: node %llu at %s started (term %llu, %u members, "
             "last index %llu)",
             (unsigned long long)c->self_id, c->raft_addr,
             (unsigned long long)c->raft.current_term, c->raft.configuration.n,
             (unsigned long long)raft_last_index(&c->raft));
  (void)uv_check_init(c->loop, &c->check);
  c->check.data = c;
  c->check_open = 1;
  (void)uv_check_start(&c->check, on_check);
  uv_unref((uv_handle_t *)&c->check);
  return PARLEY_OK;
}

int parley_consensus_new(const struct parley_consensus_config *cfg,
                         struct parley_consensus **out) {
  struct parley_consensus *c;
  int rc;

  if (cfg->loop == NULL || cfg->id == NULL || cfg->data_dir == NULL ||
      cfg->reg == NULL || cfg->cluster_key == NULL || cfg->nodes == NULL ||
      cfg->nnodes == 0 || cfg->nnodes > PARLEY_CONSENSUS_MAX_MEMBERS ||
      cfg->listen_addr == NULL)
    return PARLEY_EINVAL;
  c = parley_calloc(1, sizeof *c);
  if (c == NULL)
    return PARLEY_ENOMEM;
  c->loop = cfg->loop;
  c->log = cfg->log;
  c->self_id = cfg->self_id;
  c->reg = cfg->reg;
  c->hooks = cfg->hooks;
  copy_addr(c->listen_addr, cfg->listen_addr);
  if (cfg->http_addr != NULL && strcmp(cfg->http_addr, "-") != 0)
    copy_addr(c->http_addr, cfg->http_addr);
  rc = start(c, cfg);
  if (rc < 0) {
    parley_consensus_free(c, NULL, NULL);
    return rc;
  }
  *out = c;
  return PARLEY_OK;
}

void parley_consensus_free(struct parley_consensus *c, void (*done)(void *ctx),
                           void *ctx) {
  if (c == NULL || c->closing)
    return;
  c->closing = 1;
  c->done = done;
  c->done_ctx = ctx;
  c->ready = 0;
  if (c->check_open)
    uv_close((uv_handle_t *)&c->check, check_closed);
  if (c->raft_inited) {
    /* raft_close closes the I/O, which closes the transport. */
    raft_close(&c->raft, on_raft_closed);
    return;
  }
  if (c->io_inited)
    raft_uv_close(&c->io);
  c->raft_done = 1;
  if (c->rt != NULL)
    parley_rtransport_close(c->rt, on_rt_closed, c);
  else
    c->rt_done = 1;
  maybe_done(c);
}

/* ---- proposals ------------------------------------------------------- */

static void apply_cb(struct raft_apply *req, int status, void *result) {
  struct prop *p = req->data;
  struct parley_consensus *c = p->c;
  int rc;

  if (status == 0)
    rc = result != NULL ? *(const int *)result : PARLEY_OK;
  else
    rc = err_from_raft(status);
  if (p->prev != NULL)
    p->prev->next = p->next;
  else
    c->props = p->next;
  if (p->next != NULL)
    p->next->prev = p->prev;
  p->cb(p->ctx, rc);
  parley_free(p);
}

int parley_consensus_propose(struct parley_consensus *c,
                             const struct parley_reg_cmd *cmd,
                             parley_consensus_cb cb, void *ctx) {
  uint8_t tmp[600];
  struct raft_buffer buf;
  struct prop *p;
  size_t n = 0;
  int rc, rv;

  if (c->closing)
    return PARLEY_ECANCELED;
  if (!parley_consensus_is_leader(c))
    return PARLEY_ENOTLEADER;
  rc = parley_reg_cmd_encode(cmd, tmp, sizeof tmp, &n);
  if (rc < 0)
    return rc;
  p = parley_calloc(1, sizeof *p);
  if (p == NULL)
    return PARLEY_ENOMEM;
  buf.len = (n + 7) & ~(size_t)7; /* see entry_cmd_len */
  buf.base = raft_malloc(buf.len);
  if (buf.base == NULL) {
    parley_free(p);
    return PARLEY_ENOMEM;
  }
  memcpy(buf.base, tmp, n);
  memset((uint8_t *)buf.base + n, 0, buf.len - n);
  p->c = c;
  p->cb = cb;
  p->ctx = ctx;
  p->req.data = p;
  rv = raft_apply(&c->raft, &p->req, &buf, 1, apply_cb);
  if (rv != 0) {
    raft_free(buf.base);
    parley_free(p);
    return err_from_raft(rv);
  }
  p->next = c->props;
  if (c->props != NULL)
    c->props->prev = p;
  c->props = p;
  return PARLEY_OK;
}

/* ---- queries --------------------------------------------------------- */

int parley_consensus_is_leader(const struct parley_consensus *c) {
  return c->ready && !c->closing &&
         raft_state((struct raft *)&c->raft) == RAFT_LEADER;
}

/* Fills listen/http (and key) of member id from what we know. */
static void member_info(const struct parley_consensus *c, uint64_t id,
                        char *listen, char *http, char *key) {
  struct parley_rt_peer p;

  if (id == c->self_id) {
    copy_addr(listen, c->listen_addr);
    copy_addr(http, c->http_addr);
    if (key != NULL)
      key[0] = '\0';
    return;
  }
  if (c->rt != NULL && parley_rtransport_peer(c->rt, id, &p) == PARLEY_OK) {
    copy_addr(listen, p.listen);
    copy_addr(http, p.http);
    if (key != NULL)
      parley_id_encode(p.pk, key);
    return;
  }
  listen[0] = http[0] = '\0';
  if (key != NULL)
    key[0] = '\0';
}

void parley_consensus_leader(const struct parley_consensus *c, uint64_t *id,
                             char *listen, char *http) {
  raft_id lid = 0;
  const char *addr = NULL;

  listen[0] = http[0] = '\0';
  *id = 0;
  if (!c->started || c->closing)
    return;
  raft_leader((struct raft *)&c->raft, &lid, &addr);
  *id = lid;
  if (lid != 0)
    member_info(c, lid, listen, http, NULL);
}

static int role_from_raft(int role) {
  switch (role) {
  case RAFT_VOTER:
    return PARLEY_CONSENSUS_VOTER;
  case RAFT_STANDBY:
    return PARLEY_CONSENSUS_STANDBY;
  default:
    return PARLEY_CONSENSUS_SPARE;
  }
}

void parley_consensus_status(const struct parley_consensus *c,
                             struct parley_consensus_status *out) {
  struct raft *r = (struct raft *)&c->raft;
  raft_id lid = 0;
  const char *laddr = NULL;

  memset(out, 0, sizeof *out);
  out->id = c->self_id;
  out->leader_changes = c->leader_changes;
  if (!c->started || c->closing)
    return;
  switch (raft_state(r)) {
  case RAFT_FOLLOWER:
    out->state = PARLEY_CONSENSUS_FOLLOWER;
    break;
  case RAFT_CANDIDATE:
    out->state = PARLEY_CONSENSUS_CANDIDATE;
    break;
  case RAFT_LEADER:
    out->state = PARLEY_CONSENSUS_LEADER;
    break;
  default:
    out->state = PARLEY_CONSENSUS_UNAVAILABLE;
    break;
  }
  out->term = r->current_term;
  out->commit_index = r->commit_index;
  out->last_applied = raft_last_applied(r);
  out->last_index = raft_last_index(r);
  raft_leader(r, &lid, &laddr);
  out->leader_id = lid;
  if (lid != 0) {
    copy_addr(out->leader_raft, laddr);
    member_info(c, lid, out->leader_listen, out->leader_http, NULL);
  }
  for (unsigned i = 0;
       i < r->configuration.n && out->nmembers < PARLEY_CONSENSUS_MAX_MEMBERS;
       i++) {
    const struct raft_server *s = &r->configuration.servers[i];
    struct parley_consensus_member *m = &out->members[out->nmembers++];
    m->id = s->id;
    copy_addr(m->raft, s->address);
    m->role = role_from_raft(s->role);
    m->is_self = s->id == c->self_id;
    member_info(c, s->id, m->listen, m->http, m->key);
    m->reachable = m->is_self ||
                   (c->rt != NULL && parley_rtransport_reachable(c->rt, s->id));
  }
}

const struct parley_rtransport_stats *
parley_consensus_transport_stats(const struct parley_consensus *c) {
  static const struct parley_rtransport_stats none;
  return c->rt != NULL ? parley_rtransport_stats(c->rt) : &none;
}

/* ---- membership changes ---------------------------------------------- */

static void chg_finish(struct chg *g, int rc) {
  struct parley_consensus *c = g->c;
  if (c->chg == g)
    c->chg = NULL;
  g->cb(g->ctx, rc);
  parley_free(g);
}

static void chg_cb(struct raft_change *req, int status) {
  struct chg *g = req->data;
  struct parley_consensus *c = g->c;
  int rv;

  if (status == 0 && g->stage == CHG_ADD && !c->closing) {
    /* Added as a spare: now catch it up and make it a voter. */
    g->stage = CHG_ASSIGN;
    rv = raft_assign(&c->raft, &g->req, g->id, RAFT_VOTER, chg_cb);
    if (rv != 0) {
      PARLEY_LOG(c->log, PARLEY_LOG_WARN, "raft: promote %llu: %s",
                 (unsigned long long)g->id, raft_strerror(rv));
      chg_finish(g, err_from_raft(rv));
    }
    return;
  }
  if (status != 0)
    PARLEY_LOG(c->log, PARLEY_LOG_WARN, "raft: membership change for %llu: %s",
               (unsigned long long)g->id, raft_strerror(status));
  else
    PARLEY_LOG(c->log, PARLEY_LOG_INFO, "raft: node %llu %s",
               (unsigned long long)g->id,
               g->stage == CHG_REMOVE ? "removed" : "is now a voter");
  chg_finish(g, err_from_raft(status));
}

static const struct raft_server *find_server(const struct parley_consensus *c,
                                             uint64_t id) {
  for (unsigned i = 0; i < c->raft.configuration.n; i++)
    if (c->raft.configuration.servers[i].id == id)
      return &c->raft.configuration.servers[i];
  return NULL;
}

static int chg_start(struct parley_consensus *c, uint64_t id, const char *addr,
                     int stage, parley_consensus_cb cb, void *ctx) {
  struct chg *g;
  int rv;

  if (c->closing)
    return PARLEY_ECANCELED;
  if (!parley_consensus_is_leader(c))
    return PARLEY_ENOTLEADER;
  if (c->chg != NULL)
    return PARLEY_EUNAVAIL;
  g = parley_calloc(1, sizeof *g);
  if (g == NULL)
    return PARLEY_ENOMEM;
  g->c = c;
  g->id = id;
  g->stage = stage;
  g->cb = cb;
  g->ctx = ctx;
  g->req.data = g;
  switch (stage) {
  case CHG_ADD:
    rv = raft_add(&c->raft, &g->req, id, addr, chg_cb);
    break;
  case CHG_ASSIGN:
    rv = raft_assign(&c->raft, &g->req, id, RAFT_VOTER, chg_cb);
    break;
  default:
    rv = raft_remove(&c->raft, &g->req, id, chg_cb);
    break;
  }
  if (rv != 0) {
    PARLEY_LOG(c->log, PARLEY_LOG_WARN, "raft: membership change for %llu: %s",
               (unsigned long long)id, raft_strerror(rv));
    parley_free(g);
    return err_from_raft(rv);
  }
  c->chg = g;
  return PARLEY_OK;
}

int parley_consensus_add(struct parley_consensus *c, uint64_t id,
                         const char *raft_addr, parley_consensus_cb cb,
                         void *ctx) {
  const struct raft_server *s;
  char host[PARLEY_MAX_ADDR + 1];
  uint16_t port;

  if (id == 0 || strlen(raft_addr) > PARLEY_MAX_ADDR ||
      parley_parse_hostport(raft_addr, host, sizeof host, &port) < 0 ||
      port == 0)
    return PARLEY_EINVAL;
  s = find_server(c, id);
  if (s != NULL) {
    if (strcmp(s->address, raft_addr) != 0 || s->role == RAFT_VOTER)
      return PARLEY_EEXIST;
    /* Added earlier but never promoted: finish the job. */
    return chg_start(c, id, raft_addr, CHG_ASSIGN, cb, ctx);
  }
  PARLEY_LOG(c->log, PARLEY_LOG_INFO, "raft: adding node %llu at %s",
             (unsigned long long)id, raft_addr);
  return chg_start(c, id, raft_addr, CHG_ADD, cb, ctx);
}

int parley_consensus_remove(struct parley_consensus *c, uint64_t id,
                            parley_consensus_cb cb, void *ctx) {
  if (find_server(c, id) == NULL)
    return PARLEY_ENOTFOUND;
  PARLEY_LOG(c->log, PARLEY_LOG_INFO, "raft: removing node %llu",
             (unsigned long long)id);
  return chg_start(c, id, NULL, CHG_REMOVE, cb, ctx);
}

const char *parley_consensus_role_name(int role) {
  switch (role) {
  case PARLEY_CONSENSUS_VOTER:
    return "voter";
  case PARLEY_CONSENSUS_STANDBY:
    return "standby";
  default:
    return "spare";
  }
}

const char *parley_consensus_state_name(int state) {
  switch (state) {
  case PARLEY_CONSENSUS_FOLLOWER:
    return "follower";
  case PARLEY_CONSENSUS_CANDIDATE:
    return "candidate";
  case PARLEY_CONSENSUS_LEADER:
    return "leader";
  default:
    return "unavailable";
  }
}
