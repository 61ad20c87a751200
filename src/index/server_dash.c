/* server_dash.c — the dashboard's backend: peers' REPORTs into the model
 * (dash.h), the 1 s tick that records history, evaluates the alert rules
 * (alerts.h) and feeds the event streams, webhooks (webhook.h), and
 * GET /v1/dashboard[/stream] (docs/DASHBOARD_API.md).  In a cluster the
 * leader evaluates the rules and a follower shows the leader's figures
 * (server_dash_fwd.c; server_dash_int.h has the design).
 * docs/internals/DASHBOARD.md, "Backend", describes the figures. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "index/server_dash_int.h"
#include "metrics/prom.h"
#include "wire/report_wire.h"

#define DASH_TICK_MS 1000u
#define DASH_MAX_STREAMS 64
#define DASH_MAX_TABLE 2000   /* peers in one answer's table */
#define DASH_MAX_TOPICS 1000  /* topics in one answer */
#define DASH_MAX_RESOURCES 500
#define DASH_MAX_ANSWER (64u * 1024u * 1024u)
#define DASH_SECRET_MAX 4096
#define DASH_ALERTS_FILE_MAX (1024u * 1024u)

/* One open GET /v1/dashboard/stream. */
struct ix_stream {
  struct ix_stream *next;
  struct parley_index *idx;
  struct parley_http_req *r;
  int coarse; /* ?window=24h */
};

/* ---- small helpers ------------------------------------------------------ */

static json_t *num_or_null(double v) {
  if (isnan(v) || isinf(v))
    return json_null();
  return json_real(v);
}

/* Whole quantities (bytes, descriptors): printed exactly. */
static json_t *int_or_null(double v) {
  if (isnan(v) || isinf(v))
    return json_null();
  return json_integer((json_int_t)v);
}

static json_t *str_or_null(const char *s) {
  return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static int dump_cb(const char *p, size_t n, void *ctx) {
  return parley_buf_append(ctx, p, n) < 0 ? -1 : 0;
}

static int dump(struct parley_buf *b, json_t *o) {
  if (o == NULL)
    return PARLEY_ENOMEM;
  return json_dump_callback(o, dump_cb, b,
                            JSON_COMPACT | JSON_REAL_PRECISION(6)) < 0
             ? PARLEY_ENOMEM
             : PARLEY_OK;
}

int parley__dash_dump(struct parley_buf *b, json_t *o) { return dump(b, o); }

/* Adds v to o under key (v is stolen; NULL marks the build as failed). */
static void put(json_t *o, const char *key, json_t *v, int *err) {
  if (v == NULL || json_object_set_new(o, key, v) < 0)
    *err = 1;
}

static void push(json_t *a, json_t *v, int *err) {
  if (v == NULL || json_array_append_new(a, v) < 0)
    *err = 1;
}

/* Own resident memory and descriptors (as /metrics reports them). */
static double self_rss(void) {
  FILE *fp = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  long page = sysconf(_SC_PAGESIZE);
  if (fp == NULL)
    return NAN;
  if (fscanf(fp, "%lu %lu", &size, &resident) != 2)
    resident = 0;
  fclose(fp);
  return (double)resident * (double)(page > 0 ? page : 4096);
}

static double self_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  double n = 0;
  if (d == NULL)
    return NAN;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1;
}

static uint64_t self_cpu_ms(void) {
  uv_rusage_t ru;
  if (uv_getrusage(&ru) < 0)
    return 0;
  return (uint64_t)ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 +
         (uint64_t)ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000;
}

/* Reads a small file whole (NUL-terminated).  PARLEY_EIO, PARLEY_ETOOBIG,
 * PARLEY_ENOMEM.  Caller frees *out. */
static int read_small(const char *path, size_t max, char **out, size_t *len) {
  struct stat st;
  char *b;
  size_t got = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return PARLEY_EIO;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return PARLEY_EIO;
  }
  if ((uint64_t)st.st_size > max) {
    close(fd);
    return PARLEY_ETOOBIG;
  }
  b = parley_malloc((size_t)st.st_size + 1);
  if (b == NULL) {
    close(fd);
    return PARLEY_ENOMEM;
  }
  while (got < (size_t)st.st_size) {
    ssize_t k = read(fd, b + got, (size_t)st.st_size - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    got += (size_t)k;
  }
  close(fd);
  b[got] = '\0';
  *out = b;
  *len = got;
  return PARLEY_OK;
}

/* ---- cluster view ------------------------------------------------------- */

struct cluster_view {
  int cluster;          /* running with --cluster */
  uint64_t leader;      /* 0 = none */
  uint64_t term;
  uint32_t nodes, down; /* members, members seen down */
};

/* Health of member m as this node can tell: itself is up; the leader sees
 * every voter through its replication links, so there "unreachable" means
 * down; a follower only talks to the leader, so another follower it has no
 * link to is "unknown". */
static const char *health_of(const struct parley_consensus_status *cs,
                             const struct parley_consensus_member *m) {
  if (m->is_self || m->reachable)
    return "up";
  if (cs->state == PARLEY_CONSENSUS_LEADER || m->id == cs->leader_id)
    return "down";
  return "unknown";
}

static const char *role_of(const struct parley_consensus_status *cs,
                           const struct parley_consensus_member *m) {
  if (m->is_self)
    return parley_consensus_state_name(cs->state);
  if (cs->leader_id != 0 && m->id == cs->leader_id)
    return "leader";
  if (m->role == PARLEY_CONSENSUS_VOTER)
    return cs->leader_id != 0 && m->reachable ? "follower" : "voter";
  return parley_consensus_role_name(m->role);
}

/* Fills v and, when o is given, adds "cluster" to it. */
static void cluster_part(struct parley_index *idx, json_t *o,
                         struct cluster_view *v, int *err) {
  json_t *c = NULL, *nodes = NULL;

  memset(v, 0, sizeof *v);
  if (o != NULL) {
    c = json_object();
    nodes = json_array();
    if (c == NULL || nodes == NULL) {
      json_decref(c);
      json_decref(nodes);
      *err = 1;
      return;
    }
  }
  if (idx->cons == NULL) {
    /* A single node leads itself; it has no Raft term. */
    v->leader = 1;
    v->nodes = 1;
    if (o != NULL) {
      json_t *n = json_object();
      if (n != NULL) {
        put(n, "id", json_integer(1), err);
        put(n, "role", json_string("standalone"), err);
        put(n, "term", json_null(), err);
        put(n, "commit_index", json_null(), err);
        put(n, "listen", json_string(idx->listen_addr), err);
        put(n, "http", str_or_null(idx->http_port ? idx->http_addr : NULL),
            err);
        put(n, "health", json_string("up"), err);
        put(n, "self", json_true(), err);
        put(n, "name", json_string(idx->name), err);
      }
      push(nodes, n, err);
      put(c, "leader", json_integer(1), err);
      put(c, "term", json_null(), err);
    }
  } else {
    struct parley_consensus_status *cs = parley_malloc(sizeof *cs);
    if (cs == NULL) {
      *err = 1;
      json_decref(c);
      json_decref(nodes);
      return;
    }
    parley_consensus_status(idx->cons, cs);
    v->cluster = 1;
    v->leader = cs->leader_id;
    v->term = cs->term;
    v->nodes = (uint32_t)cs->nmembers;
    for (size_t i = 0; i < cs->nmembers; i++) {
      const struct parley_consensus_member *m = &cs->members[i];
      const char *health = health_of(cs, m);
      json_t *n;
      if (strcmp(health, "down") == 0)
        v->down++;
      if (o == NULL)
        continue;
      n = json_object();
      if (n == NULL) {
        *err = 1;
        continue;
      }
      put(n, "id", json_integer((json_int_t)m->id), err);
      put(n, "role", json_string(role_of(cs, m)), err);
      /* Only this node's own Raft figures are known here; a reachable
       * member under a known leader is in the leader's term. */
      put(n, "term",
          m->is_self ? json_integer((json_int_t)cs->term)
          : (cs->leader_id != 0 && strcmp(health, "up") == 0)
              ? json_integer((json_int_t)cs->term)
              : json_null(),
          err);
      put(n, "commit_index",
          m->is_self ? json_integer((json_int_t)cs->commit_index)
                     : json_null(),
          err);
      put(n, "raft", json_string(m->raft), err);
      put(n, "listen", str_or_null(m->is_self ? idx->listen_addr : m->listen),
          err);
      put(n, "http", str_or_null(m->is_self
                                     ? (idx->http_port ? idx->http_addr : NULL)
                                     : m->http),
          err);
      put(n, "health", json_string(health), err);
      put(n, "self", json_boolean(m->is_self), err);
      push(nodes, n, err);
    }
    if (o != NULL) {
      put(c, "leader",
          cs->leader_id ? json_integer((json_int_t)cs->leader_id)
                        : json_null(),
          err);
      put(c, "term", json_integer((json_int_t)cs->term), err);
      put(c, "self", json_integer((json_int_t)cs->id), err);
    }
    parley_free(cs);
  }
  if (o != NULL) {
    put(c, "nodes", nodes, err);
    put(o, "cluster", c, err);
  }
}

/* Which node answered, and from what (docs/DASHBOARD_API.md, "Which node
 * answers"). */
void parley__dash_set_served_by(struct parley_index *idx, json_t *o,
                                const char *source, const char *notice) {
  json_t *sb = json_object();
  int err = 0;

  if (sb == NULL)
    return;
  put(sb, "name", json_string(idx->name), &err);
  put(sb, "http", str_or_null(idx->http_port ? idx->http_addr : NULL), &err);
  put(sb, "source", json_string(source), &err);
  put(sb, "evaluator", json_boolean(parley__dash_evaluator(idx)), &err);
  put(sb, "notice", str_or_null(notice), &err);
  if (idx->cons == NULL) {
    put(sb, "node", json_integer(1), &err);
    put(sb, "role", json_string("standalone"), &err);
    put(sb, "leader", json_integer(1), &err);
    put(sb, "leader_http",
        str_or_null(idx->http_port ? idx->http_addr : NULL), &err);
  } else {
    struct parley_consensus_status *cs = parley_malloc(sizeof *cs);
    if (cs != NULL) {
      parley_consensus_status(idx->cons, cs);
      put(sb, "node", json_integer((json_int_t)cs->id), &err);
      put(sb, "role", json_string(parley_consensus_state_name(cs->state)),
          &err);
      put(sb, "leader",
          cs->leader_id ? json_integer((json_int_t)cs->leader_id)
                        : json_null(),
          &err);
      put(sb, "leader_http",
          str_or_null(cs->leader_id && strcmp(cs->leader_http, "-") != 0
                          ? cs->leader_http
                          : NULL),
          &err);
      parley_free(cs);
    }
  }
  if (json_object_set_new(o, "served_by", sb) < 0)
    json_decref(sb);
}

/* ---- alerts ------------------------------------------------------------- */

/* The figures the rules look at.  Only the evaluator (single node, or the
 * cluster's leader, which has the peers' reports and sees every member)
 * samples the cluster-wide ones; every node samples no_leader, which it
 * judges alone (server_dash_int.h). */
static void sample_alerts(struct parley_index *idx, int64_t now,
                          int evaluator, struct parley_alert_sample *s) {
  struct parley_dash_now dn;
  struct cluster_view cv;
  int err = 0;

  memset(s, 0, sizeof *s);
  parley_dash_now(idx->dash, now, &dn);
  cluster_part(idx, NULL, &cv, &err);
  s->v[PARLEY_ALERT_P99_LATENCY_MS] = dn.latency_p99_ms;
  s->v[PARLEY_ALERT_ERROR_RATE] = dn.rated > 0 ? dn.errors_per_s : NAN;
  s->v[PARLEY_ALERT_PEER_CHURN] = (double)dn.churn_per_min;
  s->v[PARLEY_ALERT_OUTBOX_DEPTH] =
      dn.reporting > 0 ? (double)dn.max_outbox : NAN;
  if (dn.reporting > 0 && dn.max_outbox_name[0] != '\0')
    snprintf(s->detail[PARLEY_ALERT_OUTBOX_DEPTH],
             sizeof s->detail[0], "on %s", dn.max_outbox_name);
  s->v[PARLEY_ALERT_NO_LEADER] = cv.cluster && cv.leader == 0 ? 1.0 : 0.0;
  if (cv.cluster && cv.leader == 0)
    snprintf(s->detail[PARLEY_ALERT_NO_LEADER], sizeof s->detail[0],
             "(term %llu)", (unsigned long long)cv.term);
  s->v[PARLEY_ALERT_NODE_DOWN] = (double)cv.down;
  if (cv.down > 0)
    snprintf(s->detail[PARLEY_ALERT_NODE_DOWN], sizeof s->detail[0],
             "(%u of %u members)", cv.down, cv.nodes);
  if (!evaluator)
    for (int m = 0; m < PARLEY_ALERT_NMETRICS; m++)
      if (m != PARLEY_ALERT_NO_LEADER) {
        s->v[m] = NAN;
        s->detail[m][0] = '\0';
      }
}

static json_t *alert_json(const char *status, const struct parley_alert *a,
                          const struct parley_alert_resolved *r) {
  json_t *o = json_object();
  int err = 0;

  if (o == NULL)
    return NULL;
  put(o, "name", json_string(a->rule.name), &err);
  put(o, "status", json_string(status), &err);
  put(o, "severity", json_string(a->rule.severity), &err);
  put(o, "metric", json_string(parley_alert_metric_name(a->rule.metric)),
      &err);
  put(o, "op", json_string(parley_alert_op_text(a->rule.op)), &err);
  put(o, "threshold", json_real(a->rule.threshold), &err);
  put(o, "for_s", json_real((double)a->rule.for_ms / 1000.0), &err);
  if (r != NULL) {
    put(o, "since", json_integer(r->since_ms), &err);
    put(o, "until", json_integer(r->until_ms), &err);
    put(o, "value", num_or_null(r->value), &err);
    put(o, "summary", json_string(r->summary), &err);
  } else {
    put(o, "since", json_integer(a->since_ms), &err);
    put(o, "value", num_or_null(a->value), &err);
    put(o, "summary", json_string(a->summary), &err);
  }
  if (err) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* Logs a transition and POSTs it to the webhooks. */
static void on_alert(void *ctx, int to, const struct parley_alert *a,
                     const struct parley_alert_resolved *r) {
  struct parley_index *idx = ctx;
  const char *status = to == PARLEY_ALERT_FIRING ? "firing" : "resolved";
  struct parley_buf b;
  json_t *o, *alert, *self;
  int err = 0;

  if (to == PARLEY_ALERT_FIRING)
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN, "alert %s firing (%s): %s",
               a->rule.name, a->rule.severity, a->summary);
  else
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO,
               "alert %s resolved after %lld ms: %s", a->rule.name,
               (long long)(r->until_ms - r->since_ms), r->summary);
  if (idx->webhook == NULL)
    return;
  o = json_object();
  alert = alert_json(status, a, r);
  self = json_object();
  if (o == NULL || alert == NULL || self == NULL) {
    json_decref(o);
    json_decref(alert);
    json_decref(self);
    return;
  }
  put(self, "id", json_string(idx->id_text), &err);
  put(self, "name", json_string(idx->name), &err);
  put(self, "http", str_or_null(idx->http_port ? idx->http_addr : NULL),
      &err);
  if (idx->cons != NULL) {
    struct parley_consensus_status *cs = parley_malloc(sizeof *cs);
    if (cs != NULL) {
      parley_consensus_status(idx->cons, cs);
      put(self, "node", json_integer((json_int_t)cs->id), &err);
      parley_free(cs);
    }
  }
  put(o, "status", json_string(status), &err);
  put(o, "ts", json_integer(parley_now_ms()), &err);
  put(o, "alert", alert, &err);
  put(o, "index", self, &err);
  parley_buf_init(&b, 1024 * 1024);
  if (!err && dump(&b, o) == PARLEY_OK) {
    int rc = parley_webhook_post(idx->webhook, status, b.data, b.len);
    if (rc < 0 && rc != PARLEY_ELIMIT)
      PARLEY_LOG(idx->log, PARLEY_LOG_WARN, "webhook: cannot queue: %s",
                 parley_strerror(rc));
  }
  parley_buf_close(&b);
  json_decref(o);
}

static json_t *alerts_part(struct parley_index *idx, int64_t since, int *err) {
  json_t *o = json_object(), *firing = json_array(), *resolved = json_array();

  if (o == NULL || firing == NULL || resolved == NULL) {
    json_decref(o);
    json_decref(firing);
    json_decref(resolved);
    *err = 1;
    return NULL;
  }
  for (size_t i = 0; i < parley_alerts_count(idx->alerts); i++) {
    const struct parley_alert *a = parley_alerts_get(idx->alerts, i);
    if (a->state == PARLEY_ALERT_FIRING)
      push(firing, alert_json("firing", a, NULL), err);
  }
  for (size_t i = 0; i < parley_alerts_resolved_count(idx->alerts); i++) {
    const struct parley_alert_resolved *r =
        parley_alerts_resolved(idx->alerts, i);
    json_t *e;
    if (r->until_ms < since)
      continue;
    e = json_object();
    if (e == NULL) {
      *err = 1;
      break;
    }
    put(e, "name", json_string(r->name), err);
    put(e, "status", json_string("resolved"), err);
    put(e, "severity", json_string(r->severity), err);
    put(e, "since", json_integer(r->since_ms), err);
    put(e, "until", json_integer(r->until_ms), err);
    put(e, "value", num_or_null(r->value), err);
    put(e, "threshold", json_real(r->threshold), err);
    put(e, "summary", json_string(r->summary), err);
    push(resolved, e, err);
  }
  put(o, "firing", firing, err);
  put(o, "resolved", resolved, err);
  return o;
}

/* ---- the dashboard object ----------------------------------------------- */

struct hist_walk {
  json_t *arr;
  int width; /* values per point: 1 or 3 */
  int *err;
};

static json_t *point_json(const struct parley_dash_point *p, int width) {
  json_t *a = json_array();
  int err = 0;
  if (a == NULL)
    return NULL;
  push(a, json_integer(p->t), &err);
  for (int i = 0; i < width; i++)
    push(a, width == 1 ? json_integer((json_int_t)p->v[i])
                       : num_or_null(p->v[i]),
         &err);
  if (err) {
    json_decref(a);
    return NULL;
  }
  return a;
}

static void hist_point(void *ctx, const struct parley_dash_point *p) {
  struct hist_walk *w = ctx;
  push(w->arr, point_json(p, w->width), w->err);
}

/* A history series: the whole window, or (delta) the newest point. */
static json_t *series_json(struct parley_index *idx, int series,
                           const char *topic, int coarse, int delta,
                           int64_t now, int *err) {
  struct hist_walk w;
  int res = coarse ? PARLEY_DASH_COARSE : PARLEY_DASH_FINE;
  int64_t since = now - (coarse ? 24ll * 3600 * 1000 : 3600ll * 1000);
  struct parley_dash_point p;

  w.arr = json_array();
  w.width = series == PARLEY_DASH_PEERS ? 1 : 3;
  w.err = err;
  if (w.arr == NULL) {
    *err = 1;
    return NULL;
  }
  if (!delta)
    parley_dash_history(idx->dash, series, res, topic, since, hist_point, &w);
  /* The 24 h window also gets the minute in progress (the stream keeps
   * replacing it until the minute is closed). */
  if ((delta || coarse) &&
      parley_dash_latest(idx->dash, series, res, topic, now, &p) &&
      p.t >= since)
    hist_point(&w, &p);
  return w.arr;
}

struct topic_walk {
  struct parley_index *idx;
  json_t *obj; /* topic -> entry */
  int64_t now;
  int *err;
};

static json_t *topic_entry(struct topic_walk *w, const char *topic) {
  json_t *e = json_object_get(w->obj, topic);
  int err = 0;

  if (e != NULL)
    return e;
  if (json_object_size(w->obj) >= DASH_MAX_TOPICS)
    return NULL;
  e = json_object();
  if (e == NULL) {
    *w->err = 1;
    return NULL;
  }
  put(e, "topic", json_string(topic), &err);
  put(e, "subscribers", json_integer(0), &err);
  put(e, "publishers", json_integer(0), &err);
  put(e, "msgs_per_s", json_null(), &err);
  put(e, "delivered_per_s", json_null(), &err);
  put(e, "latency_p99_ms", json_null(), &err);
  if (err || json_object_set_new(w->obj, topic, e) < 0) {
    *w->err = 1;
    return NULL;
  }
  return e;
}

static int topic_from_registry(void *ctx, const char *topic,
                               uint32_t subscribers) {
  struct topic_walk *w = ctx;
  json_t *e = topic_entry(w, topic);
  if (e != NULL)
    put(e, "subscribers", json_integer(subscribers), w->err);
  return 0;
}

static int topic_from_dash(void *ctx, const struct parley_dash_topic *t) {
  struct topic_walk *w = ctx;
  json_t *e = topic_entry(w, t->topic);
  if (e == NULL)
    return 0;
  put(e, "publishers", json_integer(t->publishers), w->err);
  /* A topic's rate is what its publishers publish; what reaches the
   * subscribers (each copy counted) is delivered_per_s. */
  put(e, "msgs_per_s", json_real(t->msgs_out_per_s), w->err);
  put(e, "delivered_per_s", json_real(t->msgs_in_per_s), w->err);
  put(e, "latency_p99_ms", num_or_null(t->latency_p99_ms), w->err);
  return 0;
}

static json_t *topics_part(struct parley_index *idx, int64_t now, int *err) {
  struct topic_walk w = {idx, json_object(), now, err};
  json_t *arr = json_array(), *v;
  const char *k;

  if (w.obj == NULL || arr == NULL) {
    json_decref(w.obj);
    json_decref(arr);
    *err = 1;
    return NULL;
  }
  (void)parley_registry_foreach_topic(idx->reg, topic_from_registry, &w);
  parley_dash_foreach_topic(idx->dash, now, topic_from_dash, &w);
  json_object_foreach(w.obj, k, v) push(arr, json_incref(v), err);
  json_decref(w.obj);
  return arr;
}

struct table_walk {
  struct parley_index *idx;
  json_t *arr;
  size_t n;
  int *err;
};

static int peer_row(void *ctx, const struct parley_reg_peer *p) {
  struct table_walk *w = ctx;
  const struct parley_dash_peer *dp = parley_dash_peer(w->idx->dash, p->pk);
  char id[PARLEY_ID_TEXT_LEN + 1];
  int64_t seen = parley__index_last_seen(w->idx, p);
  json_t *o;
  int err = 0;

  if (w->n >= DASH_MAX_TABLE)
    return 1;
  if (dp != NULL && dp->last_report_ms > seen)
    seen = dp->last_report_ms;
  parley_id_encode(p->pk, id);
  o = json_object();
  if (o == NULL) {
    *w->err = 1;
    return 1;
  }
  put(o, "id", json_string(id), &err);
  put(o, "name", json_string(p->name), &err);
  put(o, "addr", json_string(p->addr), &err);
  put(o, "last_seen", json_integer(seen), &err);
  put(o, "msgs_in_per_s", num_or_null(dp ? dp->msgs_in_per_s : NAN), &err);
  put(o, "msgs_out_per_s", num_or_null(dp ? dp->msgs_out_per_s : NAN), &err);
  put(o, "errors_per_s", num_or_null(dp ? dp->errors_per_s : NAN), &err);
  put(o, "latency_p50_ms", num_or_null(dp ? dp->latency_p50_ms : NAN), &err);
  put(o, "latency_p99_ms", num_or_null(dp ? dp->latency_p99_ms : NAN), &err);
  put(o, "outbox",
      dp ? json_integer((json_int_t)dp->last.outbox_depth) : json_null(),
      &err);
  put(o, "links", dp ? json_integer(dp->last.links_open) : json_null(), &err);
  put(o, "subscriptions", json_integer(p->nsubs), &err);
  put(o, "reporting", json_boolean(dp != NULL), &err);
  push(w->arr, o, &err);
  if (err)
    *w->err = 1;
  w->n++;
  return 0;
}

struct res_walk {
  json_t *arr;
  int64_t now;
  size_t n;
  int *err;
};

static int resource_row(void *ctx, const struct parley_dash_peer *p) {
  struct res_walk *w = ctx;
  char id[PARLEY_ID_TEXT_LEN + 1];
  json_t *o;
  int err = 0;

  if (w->n >= DASH_MAX_RESOURCES)
    return 1;
  if (w->now - p->last_report_ms > 30000)
    return 0; /* gone quiet: no current figures */
  parley_id_encode(p->pk, id);
  o = json_object();
  if (o == NULL) {
    *w->err = 1;
    return 1;
  }
  put(o, "daemon", json_string(p->name[0] ? p->name : id), &err);
  put(o, "id", json_string(id), &err);
  put(o, "kind", json_string("peer"), &err);
  put(o, "cpu_percent", num_or_null(p->cpu_percent), &err);
  put(o, "rss_bytes", json_integer((json_int_t)p->last.rss_bytes), &err);
  put(o, "open_fds", json_integer(p->last.open_fds), &err);
  put(o, "uptime_ms", json_integer((json_int_t)p->last.uptime_ms), &err);
  push(w->arr, o, &err);
  if (err)
    *w->err = 1;
  w->n++;
  return 0;
}

json_t *parley__dash_self_resource(struct parley_index *idx) {
  json_t *self = json_object();
  char daemon[PARLEY_MAX_NAME + 32];
  int e = 0;

  if (self == NULL)
    return NULL;
  if (idx->cons != NULL) {
    /* Every member may have the same name: say which node it is. */
    struct parley_consensus_status *cs = parley_malloc(sizeof *cs);
    if (cs == NULL) {
      json_decref(self);
      return NULL;
    }
    parley_consensus_status(idx->cons, cs);
    snprintf(daemon, sizeof daemon, "%s #%llu", idx->name,
             (unsigned long long)cs->id);
    put(self, "node", json_integer((json_int_t)cs->id), &e);
    parley_free(cs);
  } else {
    snprintf(daemon, sizeof daemon, "%s", idx->name);
  }
  put(self, "daemon", json_string(daemon), &e);
  put(self, "id", json_string(idx->id_text), &e);
  put(self, "kind", json_string("index"), &e);
  put(self, "cpu_percent", num_or_null(idx->cpu_percent), &e);
  put(self, "rss_bytes", int_or_null(self_rss()), &e);
  put(self, "open_fds", int_or_null(self_fds()), &e);
  put(self, "uptime_ms",
      json_integer((json_int_t)(uv_now(idx->loop) - idx->start_mono)), &e);
  if (e) {
    json_decref(self);
    return NULL;
  }
  return self;
}

/* This node, the other index nodes (the leader polls them), the peers. */
static json_t *resources_part(struct parley_index *idx, int64_t now,
                              int *err) {
  struct res_walk w = {json_array(), now, 0, err};

  if (w.arr == NULL) {
    *err = 1;
    return NULL;
  }
  push(w.arr, parley__dash_self_resource(idx), err);
  parley__dash_fwd_resources(idx, w.arr, err);
  parley_dash_foreach_peer(idx->dash, resource_row, &w);
  return w.arr;
}

struct ev_walk {
  json_t *arr;
  int *err;
};

static void event_row(void *ctx, const struct parley_dash_event *e) {
  struct ev_walk *w = ctx;
  char id[PARLEY_ID_TEXT_LEN + 1];
  json_t *o = json_object();
  int err = 0;

  if (o == NULL) {
    *w->err = 1;
    return;
  }
  parley_id_encode(e->pk, id);
  put(o, "t", json_integer(e->t), &err);
  put(o, "kind", json_string(e->kind == PARLEY_DASH_JOIN ? "join" : "expire"),
      &err);
  put(o, "id", json_string(id), &err);
  put(o, "name", json_string(e->name), &err);
  push(w->arr, o, &err);
  if (err)
    *w->err = 1;
}

struct per_topic_walk {
  struct parley_index *idx;
  json_t *obj;
  int coarse, delta;
  int64_t now;
  int *err;
};

static void per_topic(void *ctx, const char *topic) {
  struct per_topic_walk *w = ctx;
  json_t *s = series_json(w->idx, PARLEY_DASH_TOPIC_LATENCY, topic, w->coarse,
                          w->delta, w->now, w->err);
  if (s == NULL)
    return;
  if (json_array_size(s) == 0) {
    json_decref(s);
    return;
  }
  if (json_object_set_new(w->obj, topic, s) < 0)
    *w->err = 1;
}

/* The whole answer of GET /v1/dashboard (delta 0) or one stream event
 * (delta 1: history arrays hold only their newest point, events only the
 * last few seconds'). */
static json_t *dashboard_json(struct parley_index *idx, int coarse,
                              int delta) {
  int64_t now = parley_now_ms();
  int64_t since = now - (coarse ? 24ll * 3600 * 1000 : 3600ll * 1000);
  struct cluster_view cv;
  struct table_walk tw;
  struct ev_walk ew;
  struct per_topic_walk pw;
  json_t *o = json_object(), *peers, *lat, *thr, *per, *table;
  size_t npeers = parley_registry_peer_count(idx->reg);
  const char *waiting = NULL;
  char text[160];
  int err = 0;

  if (o == NULL)
    return NULL;
  put(o, "now", json_integer(now), &err);
  cluster_part(idx, o, &cv, &err);
  if (cv.cluster && cv.leader == 0) {
    snprintf(text, sizeof text,
             "no leader yet: the %u index nodes are electing one (term %llu)",
             cv.nodes, (unsigned long long)cv.term);
    waiting = text;
  } else if (npeers == 0) {
    snprintf(text, sizeof text,
             "no peer has registered yet: start parleyd with --index %s",
             idx->listen_addr);
    waiting = text;
  }
  put(o, "state", json_string(waiting ? "waiting" : "ok"), &err);
  put(o, "waiting_for", str_or_null(waiting), &err);
  put(o, "window", json_string(coarse ? "24h" : "1h"), &err);
  put(o, "resolution_ms", json_integer(coarse ? 60000 : 1000), &err);

  peers = json_object();
  table = json_array();
  if (peers == NULL || table == NULL) {
    json_decref(peers);
    json_decref(table);
    json_decref(o);
    return NULL;
  }
  put(peers, "count", json_integer((json_int_t)npeers), &err);
  put(peers, "history",
      series_json(idx, PARLEY_DASH_PEERS, NULL, coarse, delta, now, &err),
      &err);
  tw.idx = idx;
  tw.arr = table;
  tw.n = 0;
  tw.err = &err;
  (void)parley_registry_foreach_peer(idx->reg, peer_row, &tw);
  put(peers, "table", table, &err);
  put(peers, "truncated", json_boolean(npeers > DASH_MAX_TABLE), &err);
  put(o, "peers", peers, &err);

  ew.arr = json_array();
  ew.err = &err;
  if (ew.arr != NULL)
    parley_dash_foreach_event(idx->dash, delta ? now - 10000 : since,
                              delta ? 50 : PARLEY_DASH_MAX_EVENTS, event_row,
                              &ew);
  put(o, "events", ew.arr, &err);
  put(o, "topics", topics_part(idx, now, &err), &err);

  lat = json_object();
  per = json_object();
  if (lat != NULL && per != NULL) {
    put(lat, "history",
        series_json(idx, PARLEY_DASH_LATENCY, NULL, coarse, delta, now, &err),
        &err);
    pw.idx = idx;
    pw.obj = per;
    pw.coarse = coarse;
    pw.delta = delta;
    pw.now = now;
    pw.err = &err;
    parley_dash_foreach_series(idx->dash, per_topic, &pw);
    put(lat, "per_topic", per, &err);
  } else {
    json_decref(per);
    err = 1;
  }
  put(o, "latency", lat, &err);
  thr = json_object();
  if (thr != NULL)
    put(thr, "history",
        series_json(idx, PARLEY_DASH_THROUGHPUT, NULL, coarse, delta, now,
                    &err),
        &err);
  put(o, "throughput", thr, &err);
  put(o, "resources", resources_part(idx, now, &err), &err);
  put(o, "alerts", alerts_part(idx, since, &err), &err);
  if (err) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* "self" when this node's figures are the cluster's (a single node, the
 * leader), else "local". */
static const char *own_source(const struct parley_index *idx) {
  return parley__dash_evaluator(idx) ? "self" : "local";
}

json_t *parley__dash_local(struct parley_index *idx, int coarse, int delta,
                           const char *source, const char *notice) {
  json_t *o = dashboard_json(idx, coarse, delta);
  if (o != NULL)
    parley__dash_set_served_by(idx, o, source, notice);
  return o;
}

/* ?part=alerts: what a follower polls to take over the leader's alerts. */
static json_t *alerts_only(struct parley_index *idx) {
  int64_t now = parley_now_ms();
  json_t *o = json_object();
  int err = 0;

  if (o == NULL)
    return NULL;
  put(o, "now", json_integer(now), &err);
  put(o, "alerts", alerts_part(idx, now - 3600ll * 1000, &err), &err);
  parley__dash_set_served_by(idx, o, "self", NULL);
  if (err) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ?part=self: what the leader polls from the other index nodes to list
 * their resource use. */
static json_t *self_only(struct parley_index *idx) {
  json_t *o = json_object();
  int err = 0;

  if (o == NULL)
    return NULL;
  put(o, "now", json_integer(parley_now_ms()), &err);
  put(o, "resource", parley__dash_self_resource(idx), &err);
  if (err) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ---- HTTP --------------------------------------------------------------- */

static void stream_unlink(struct parley_index *idx, struct ix_stream *s) {
  for (struct ix_stream **pp = &idx->streams; *pp != NULL;
       pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      idx->nstreams--;
      return;
    }
  }
}

/* The client went away (or the HTTP server is closing). */
static void stream_gone(void *data, struct parley_http_req *r) {
  struct ix_stream *s = data;
  (void)r;
  stream_unlink(s->idx, s);
  parley_free(s);
}

/* Writes one "data:" event; ends the stream (and frees s) on failure. */
static int stream_send(struct ix_stream *s, const struct parley_buf *ev) {
  int rc = parley_http_stream_write(s->r, ev->data, ev->len);
  if (rc == PARLEY_OK)
    return PARLEY_OK;
  stream_unlink(s->idx, s);
  parley_http_stream_end(s->r); /* no close callback after this */
  parley_free(s);
  return rc;
}

/* One "data:" event of o (borrowed). */
static int event_of(json_t *o, struct parley_buf *b) {
  int rc;

  if (o == NULL)
    return PARLEY_ENOMEM;
  rc = parley_buf_append(b, "data: ", 6);
  if (rc == PARLEY_OK)
    rc = dump(b, o);
  if (rc == PARLEY_OK)
    rc = parley_buf_append(b, "\n\n", 2);
  return rc;
}

int parley__dash_has_streams(const struct parley_index *idx, int coarse) {
  for (const struct ix_stream *s = idx->streams; s != NULL; s = s->next)
    if (s->coarse == coarse)
      return 1;
  return 0;
}

void parley__dash_emit(struct parley_index *idx, int coarse, json_t *o) {
  struct ix_stream *s, *next;
  struct parley_buf ev;

  if (!parley__dash_has_streams(idx, coarse))
    return;
  parley_buf_init(&ev, DASH_MAX_ANSWER);
  if (event_of(o, &ev) == PARLEY_OK)
    for (s = idx->streams; s != NULL; s = next) {
      next = s->next;
      if (s->coarse == coarse)
        (void)stream_send(s, &ev);
    }
  parley_buf_close(&ev);
}

/* Sends this second's delta, from this node's own state, to the streams of
 * the windows not in `skip` (a mask of 1 << coarse). */
static void streams_tick(struct parley_index *idx, unsigned skip) {
  for (int k = 0; k < 2; k++) {
    json_t *o;
    if ((skip & (1u << k)) || !parley__dash_has_streams(idx, k))
      continue;
    o = parley__dash_local(idx, k, 1, own_source(idx),
                           parley__dash_fwd_notice(idx));
    if (o != NULL)
      parley__dash_emit(idx, k, o);
    json_decref(o);
  }
}

void parley__index_http_dashboard(struct parley_index *idx,
                                  struct parley_http_req *r) {
  static const char *const allow_get[] = {"Allow", "GET, HEAD", NULL};
  const char *method = parley_http_method(r);
  const char *path = parley_http_path(r);
  const char *win = parley_http_query(r, "window");
  int coarse, stream = strcmp(path, "/v1/dashboard/stream") == 0;
  struct parley_buf b;

  if (!stream && strcmp(path, "/v1/dashboard") != 0) {
    parley__index_respond_error(r, 404, PARLEY_ENOTFOUND, "no such endpoint",
                                NULL);
    return;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    parley__index_respond_error(r, 405, PARLEY_EINVAL, "method not allowed",
                                allow_get);
    return;
  }
  if (win != NULL && strcmp(win, "1h") != 0 && strcmp(win, "24h") != 0) {
    parley__index_respond_error(r, 400, PARLEY_EINVAL,
                                "window must be 1h or 24h", NULL);
    return;
  }
  coarse = win != NULL && strcmp(win, "24h") == 0;
  if (!stream) {
    static const char *const nocache[] = {"Cache-Control", "no-store", NULL};
    const char *part = parley_http_query(r, "part");
    const char *delta = parley_http_query(r, "delta");
    const char *notice = NULL;
    char notice_buf[400];
    json_t *o;

    if ((part != NULL && strcmp(part, "alerts") != 0 &&
         strcmp(part, "self") != 0) ||
        (delta != NULL && strcmp(delta, "1") != 0)) {
      parley__index_respond_error(r, 400, PARLEY_EINVAL,
                                  "part must be alerts or self, delta must "
                                  "be 1",
                                  NULL);
      return;
    }
    if (part != NULL && strcmp(part, "self") == 0)
      o = self_only(idx);
    else if (part != NULL)
      o = alerts_only(idx);
    else if (delta != NULL)
      o = parley__dash_local(idx, coarse, 1, own_source(idx),
                             parley__dash_fwd_notice(idx));
    else if (parley__dash_forward(idx, r, coarse, &notice, notice_buf,
                                  sizeof notice_buf))
      return; /* answered when the leader's answer is in */
    else
      o = parley__dash_local(idx, coarse, 0, own_source(idx), notice);
    parley_buf_init(&b, DASH_MAX_ANSWER);
    if (o == NULL || dump(&b, o) < 0 || parley_buf_append(&b, "\n", 1) < 0)
      parley__index_respond_error(r, 500, PARLEY_ENOMEM, "out of memory",
                                  NULL);
    else
      parley_http_respond(r, 200, "application/json", b.data, b.len, nocache);
    json_decref(o);
    parley_buf_close(&b);
    return;
  }
  if (idx->nstreams >= DASH_MAX_STREAMS) {
    static const char *const retry[] = {"Retry-After", "5", NULL};
    parley__index_respond_error(r, 503, PARLEY_ELIMIT,
                                "too many dashboard streams open", retry);
    return;
  }
  {
    struct ix_stream *s = parley_calloc(1, sizeof *s);
    json_t *o;

    if (s == NULL ||
        parley_http_stream_start(r, 200, "text/event-stream; charset=utf-8") <
            0) {
      parley_free(s);
      parley__index_respond_error(r, 500, PARLEY_ENOMEM, "out of memory",
                                  NULL);
      return;
    }
    s->idx = idx;
    s->r = r;
    s->coarse = coarse;
    s->next = idx->streams;
    idx->streams = s;
    idx->nstreams++;
    parley_http_set_close_cb(r, stream_gone, s);
    parley_buf_init(&b, 64);
    if (parley_buf_append(&b, "retry: 1000\n\n", 13) < 0 ||
        stream_send(s, &b) < 0) {
      parley_buf_close(&b);
      return; /* s is gone */
    }
    parley_buf_close(&b);
    /* The first event at once: the page need not wait a second.  A
     * follower's comes from its leader. */
    if (parley__dash_fwd_stream_opened(idx, coarse))
      return;
    o = parley__dash_local(idx, coarse, 1, own_source(idx),
                           parley__dash_fwd_notice(idx));
    parley_buf_init(&b, DASH_MAX_ANSWER);
    if (event_of(o, &b) == PARLEY_OK)
      (void)stream_send(s, &b);
    parley_buf_close(&b);
    json_decref(o);
  }
}

/* ---- the tick ----------------------------------------------------------- */

static void on_tick(uv_timer_t *t) {
  struct parley_index *idx = t->data;
  struct parley_alert_sample s;
  int64_t now = parley_now_ms();
  uint64_t cpu = self_cpu_ms();
  int evaluator;

  if (idx->closing)
    return;
  if (idx->cpu_wall_prev != 0 && now > idx->cpu_wall_prev &&
      cpu >= idx->cpu_ms_prev)
    idx->cpu_percent = (double)(cpu - idx->cpu_ms_prev) * 100.0 /
                       (double)(now - idx->cpu_wall_prev);
  idx->cpu_ms_prev = cpu;
  idx->cpu_wall_prev = now;
  parley_dash_tick(idx->dash, now,
                   (uint32_t)parley_registry_peer_count(idx->reg));
  evaluator = parley__dash_evaluator(idx);
  if (idx->dashx != NULL && evaluator != idx->dashx->evaluator) {
    idx->dashx->evaluator = evaluator;
    parley__dash_fwd_role(idx, evaluator);
  }
  sample_alerts(idx, now, evaluator, &s);
  parley_alerts_eval(idx->alerts, &s, now, on_alert, idx);
  streams_tick(idx, parley__dash_fwd_tick(idx));
}

static void on_tick_closed(uv_handle_t *h) {
  parley__index_close_done(h->data);
}

static void webhook_closed(void *ctx) { parley__index_close_done(ctx); }

/* The secret's bytes, trailing white space dropped. */
static int load_secret(struct parley_index *idx, const char *path,
                       char **out, size_t *len) {
  int rc = read_small(path, DASH_SECRET_MAX, out, len);
  struct stat st;

  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "--webhook-secret %s: %s", path,
               rc == PARLEY_ETOOBIG ? "larger than 4 KiB" : strerror(errno));
    return PARLEY_ESYNTAX;
  }
  while (*len > 0 && ((*out)[*len - 1] == '\n' || (*out)[*len - 1] == '\r' ||
                      (*out)[*len - 1] == ' ' || (*out)[*len - 1] == '\t'))
    (*out)[--*len] = '\0';
  if (*len < 16) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR,
               "--webhook-secret %s: want at least 16 bytes of secret", path);
    sodium_memzero(*out, *len);
    parley_free(*out);
    *out = NULL;
    return PARLEY_ESYNTAX;
  }
  if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN,
               "--webhook-secret %s is readable by others (chmod 600)", path);
  return PARLEY_OK;
}

static int load_rules(struct parley_index *idx, const char *path,
                      struct parley_alert_rule *rules, size_t *n) {
  char err[256], *text = NULL;
  size_t len = 0;
  int rc;

  if (path == NULL) {
    *n = parley_alerts_defaults(rules, PARLEY_ALERTS_MAX_RULES);
    return PARLEY_OK;
  }
  rc = read_small(path, DASH_ALERTS_FILE_MAX, &text, &len);
  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "--alerts %s: %s", path,
               rc == PARLEY_ETOOBIG ? "larger than 1 MiB" : strerror(errno));
    return PARLEY_ESYNTAX;
  }
  rc = parley_alerts_parse(text, len, rules, PARLEY_ALERTS_MAX_RULES, n, err,
                           sizeof err);
  parley_free(text);
  if (rc < 0) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "--alerts %s: %s", path, err);
    return PARLEY_ESYNTAX;
  }
  return PARLEY_OK;
}

/* The webhook URLs and CA file, with a precise complaint. */
static int webhook_check(struct parley_index *idx,
                         const struct parley_index_config *cfg) {
  struct parley_webhook_url u;
  struct stat st;

  for (size_t i = 0; i < cfg->nwebhooks; i++)
    if (cfg->webhooks[i] == NULL ||
        parley_webhook_parse_url(cfg->webhooks[i], &u) < 0) {
      PARLEY_LOG(idx->log, PARLEY_LOG_ERROR,
                 "--webhook %s: want http[s]://HOST[:PORT][/PATH] (at most "
                 "%d URLs)",
                 cfg->webhooks[i] ? cfg->webhooks[i] : "",
                 PARLEY_WEBHOOK_MAX_URLS);
      return PARLEY_ESYNTAX;
    }
  if (cfg->webhook_ca_file != NULL &&
      (stat(cfg->webhook_ca_file, &st) < 0 || !S_ISREG(st.st_mode) ||
       access(cfg->webhook_ca_file, R_OK) < 0)) {
    PARLEY_LOG(idx->log, PARLEY_LOG_ERROR,
               "--webhook-ca %s: not a readable file", cfg->webhook_ca_file);
    return PARLEY_ESYNTAX;
  }
  return PARLEY_OK;
}

int parley__index_dash_start(struct parley_index *idx,
                             const struct parley_index_config *cfg) {
  struct parley_alert_rule *rules;
  size_t nrules = 0;
  int rc;

  /* dash_timer was initialised by parley_index_new (so that it can be
   * closed whatever happens here). */
  rc = parley_dash_new(NULL, &idx->dash);
  if (rc < 0)
    return rc;
  rc = parley__index_web_start(idx, cfg);
  if (rc < 0)
    return rc;
  rules = parley_calloc(PARLEY_ALERTS_MAX_RULES, sizeof *rules);
  if (rules == NULL)
    return PARLEY_ENOMEM;
  rc = load_rules(idx, cfg->alerts_file, rules, &nrules);
  if (rc == PARLEY_OK)
    rc = parley_alerts_new(rules, nrules, &idx->alerts);
  parley_free(rules);
  if (rc < 0)
    return rc;
  PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "alerts: %zu rules%s%s", nrules,
             cfg->alerts_file ? " from " : " (defaults)",
             cfg->alerts_file ? cfg->alerts_file : "");
  if (cfg->nwebhooks > 0) {
    struct parley_webhook_config wc;
    char *secret = NULL;
    size_t slen = 0;

    if (cfg->webhook_secret_file != NULL) {
      rc = load_secret(idx, cfg->webhook_secret_file, &secret, &slen);
      if (rc < 0)
        return rc;
    } else {
      PARLEY_LOG(idx->log, PARLEY_LOG_WARN,
                 "webhooks without --webhook-secret: receivers cannot verify "
                 "the notifications");
    }
    memset(&wc, 0, sizeof wc);
    wc.loop = idx->loop;
    wc.log = idx->log;
    wc.urls = cfg->webhooks;
    wc.nurls = cfg->nwebhooks;
    wc.secret = (const uint8_t *)secret;
    wc.secret_len = slen;
    wc.user_agent = "parley-index/" PARLEY_INDEX_VERSION;
    wc.max_attempts = cfg->webhook_attempts;
    wc.base_delay_ms = cfg->webhook_retry_ms;
    wc.ca_file = cfg->webhook_ca_file;
    rc = webhook_check(idx, cfg);
    if (rc == PARLEY_OK)
      rc = parley_webhook_new(&wc, &idx->webhook);
    if (secret != NULL) {
      sodium_memzero(secret, slen);
      parley_free(secret);
    }
    if (rc < 0) {
      if (rc != PARLEY_ESYNTAX)
        PARLEY_LOG(idx->log, PARLEY_LOG_ERROR, "--webhook: %s",
                   parley_strerror(rc));
      return rc == PARLEY_EINVAL ? PARLEY_ESYNTAX : rc;
    }
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "alerts: %zu webhook%s%s%s%s",
               cfg->nwebhooks, cfg->nwebhooks == 1 ? "" : "s",
               slen > 0 ? ", signed" : "",
               cfg->webhook_ca_file ? ", https trusting " : "",
               cfg->webhook_ca_file ? cfg->webhook_ca_file : "");
  } else if (cfg->webhook_ca_file != NULL || cfg->webhook_secret_file != NULL) {
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN,
               "--webhook-ca / --webhook-secret without --webhook: no "
               "notifications are sent");
  }
  rc = parley__dash_fwd_start(idx, cfg->nmembers > 0);
  if (rc < 0)
    return rc;
  idx->cpu_ms_prev = self_cpu_ms();
  idx->cpu_wall_prev = parley_now_ms();
  /* Ticks near the start of each wall-clock second. */
  uv_timer_start(&idx->dash_timer, on_tick,
                 DASH_TICK_MS - (uint64_t)(parley_now_ms() % DASH_TICK_MS) + 5,
                 DASH_TICK_MS);
  uv_unref((uv_handle_t *)&idx->dash_timer);
  return PARLEY_OK;
}

void parley__index_dash_stop(struct parley_index *idx) {
  /* The HTTP server's shutdown normally ended the streams already (their
   * close callbacks freed them); any left are detached and ended. */
  while (idx->streams != NULL) {
    struct ix_stream *s = idx->streams;
    idx->streams = s->next;
    parley_http_set_close_cb(s->r, NULL, NULL);
    parley_http_stream_end(s->r);
    parley_free(s);
  }
  idx->nstreams = 0;
  idx->pending_closes++;
  uv_close((uv_handle_t *)&idx->dash_timer, on_tick_closed);
  if (idx->webhook != NULL) {
    idx->pending_closes++;
    parley_webhook_free(idx->webhook, webhook_closed, idx);
    idx->webhook = NULL;
  }
  parley__dash_fwd_stop(idx);
  parley_alerts_free(idx->alerts);
  idx->alerts = NULL;
  parley_dash_free(idx->dash);
  idx->dash = NULL;
  parley_free(idx->web_dir);
  idx->web_dir = NULL;
}

/* ---- inputs ------------------------------------------------------------- */

int parley__index_dash_report(struct ix_conn *c,
                              const struct parley_frame *f) {
  struct parley_index *idx = c->idx;
  const struct parley_reg_peer *p;
  struct parley_report *r;
  int rc;

  if (idx->dash == NULL)
    return PARLEY_OK;
  r = parley_malloc(sizeof *r);
  if (r == NULL)
    return PARLEY_OK; /* a lost report costs resolution only */
  rc = parley_report_decode(f->u.opaque.data, f->u.opaque.len, r);
  if (rc < 0) {
    idx->st.reports_rejected++;
    parley_free(r);
    if (rc == PARLEY_EVERSION) {
      PARLEY_LOG(idx->log, PARLEY_LOG_DEBUG,
                 "peer %s: REPORT of another version ignored", c->id);
      return PARLEY_OK;
    }
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "peer %s: malformed REPORT",
               c->id);
    return PARLEY_EPROTO;
  }
  p = parley_registry_peer(idx->reg, c->pk);
  if (p == NULL) {
    idx->st.reports_rejected++;
    parley_free(r);
    return PARLEY_OK; /* not (or no longer) registered: nothing to show */
  }
  rc = parley_dash_report(idx->dash, c->pk, p->name, r, parley_now_ms());
  parley_free(r);
  if (rc == PARLEY_ENOMEM)
    PARLEY_LOG(idx->log, PARLEY_LOG_WARN, "peer %s: REPORT: out of memory",
               c->id);
  idx->st.reports++;
  return PARLEY_OK;
}

void parley__index_dash_change(struct parley_index *idx,
                               const struct parley_reg_change *ch) {
  if (idx->dash == NULL || idx->closing || ch->peer == NULL)
    return;
  if (ch->kind == PARLEY_REG_PEER_DOWN)
    parley_dash_event(idx->dash, PARLEY_DASH_EXPIRE, ch->peer->pk,
                      ch->peer->name, parley_now_ms());
  else if (ch->kind == PARLEY_REG_PEER_UP &&
           ch->peer->registered_ms == ch->peer->updated_ms)
    /* PEER_UP also reports a changed address or name; only the first
     * REGISTER of a registration is a join. */
    parley_dash_event(idx->dash, PARLEY_DASH_JOIN, ch->peer->pk,
                      ch->peer->name, parley_now_ms());
}
