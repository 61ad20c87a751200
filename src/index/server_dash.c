/* server_dash.c — the dashboard's backend: peers' REPORTs into the model
 * (dash.h), the 1 s tick that records history, evaluates the alert rules
 * (alerts.h) and feeds the event streams, webhooks (webhook.h), and
 * GET /v1/dashboard[/stream] (docs/DASHBOARD_API.md).
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
#include "index/server_int.h"
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
/* Topics exported with labels on /metrics (cardinality). */
#define DASH_METRIC_TOPICS 64

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

/* ---- alerts ------------------------------------------------------------- */

static void sample_alerts(struct parley_index *idx, int64_t now,
                          struct parley_alert_sample *s) {
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

static json_t *resources_part(struct parley_index *idx, int64_t now,
                              int *err) {
  struct res_walk w = {json_array(), now, 0, err};
  json_t *self;
  int e = 0;

  if (w.arr == NULL) {
    *err = 1;
    return NULL;
  }
  self = json_object();
  if (self != NULL) {
    put(self, "daemon", json_string(idx->name), &e);
    put(self, "id", json_string(idx->id_text), &e);
    put(self, "kind", json_string("index"), &e);
    put(self, "cpu_percent", num_or_null(idx->cpu_percent), &e);
    put(self, "rss_bytes", int_or_null(self_rss()), &e);
    put(self, "open_fds", int_or_null(self_fds()), &e);
    put(self, "uptime_ms",
        json_integer((json_int_t)(uv_now(idx->loop) - idx->start_mono)), &e);
  }
  push(w.arr, self, err);
  if (e)
    *err = 1;
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

static int event_of(struct parley_index *idx, int coarse, int first,
                    struct parley_buf *b) {
  json_t *o = dashboard_json(idx, coarse, 1);
  int rc;

  if (o == NULL)
    return PARLEY_ENOMEM;
  rc = parley_buf_append(b, first ? "retry: 1000\ndata: " : "data: ",
                         first ? 18 : 6);
  if (rc == PARLEY_OK)
    rc = dump(b, o);
  if (rc == PARLEY_OK)
    rc = parley_buf_append(b, "\n\n", 2);
  json_decref(o);
  return rc;
}

/* Sends this second's delta to every stream. */
static void streams_tick(struct parley_index *idx) {
  struct parley_buf ev[2];
  int built[2] = {0, 0}, ok[2] = {0, 0};
  struct ix_stream *s, *next;

  if (idx->streams == NULL)
    return;
  for (int i = 0; i < 2; i++)
    parley_buf_init(&ev[i], DASH_MAX_ANSWER);
  for (s = idx->streams; s != NULL; s = next) {
    next = s->next;
    if (!built[s->coarse]) {
      built[s->coarse] = 1;
      ok[s->coarse] = event_of(idx, s->coarse, 0, &ev[s->coarse]) == 0;
    }
    if (ok[s->coarse])
      (void)stream_send(s, &ev[s->coarse]);
  }
  for (int i = 0; i < 2; i++)
    parley_buf_close(&ev[i]);
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
  parley_buf_init(&b, DASH_MAX_ANSWER);
  if (!stream) {
    json_t *o = dashboard_json(idx, coarse, 0);
    static const char *const nocache[] = {"Cache-Control", "no-store", NULL};
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
    parley_buf_close(&b);
    parley__index_respond_error(r, 503, PARLEY_ELIMIT,
                                "too many dashboard streams open", retry);
    return;
  }
  {
    struct ix_stream *s = parley_calloc(1, sizeof *s);
    if (s == NULL || event_of(idx, coarse, 1, &b) < 0 ||
        parley_http_stream_start(r, 200, "text/event-stream; charset=utf-8") <
            0) {
      parley_free(s);
      parley_buf_close(&b);
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
    /* The first event at once: the page need not wait a second. */
    (void)stream_send(s, &b);
  }
  parley_buf_close(&b);
}

/* ---- the tick ----------------------------------------------------------- */

static void on_tick(uv_timer_t *t) {
  struct parley_index *idx = t->data;
  struct parley_alert_sample s;
  int64_t now = parley_now_ms();
  uint64_t cpu = self_cpu_ms();

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
  sample_alerts(idx, now, &s);
  parley_alerts_eval(idx->alerts, &s, now, on_alert, idx);
  streams_tick(idx);
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
    rc = parley_webhook_new(&wc, &idx->webhook);
    if (secret != NULL) {
      sodium_memzero(secret, slen);
      parley_free(secret);
    }
    if (rc < 0) {
      PARLEY_LOG(idx->log, PARLEY_LOG_ERROR,
                 "--webhook: want http://HOST[:PORT][/PATH] (at most %d; "
                 "https is not supported)",
                 PARLEY_WEBHOOK_MAX_URLS);
      return rc == PARLEY_EINVAL ? PARLEY_ESYNTAX : rc;
    }
    PARLEY_LOG(idx->log, PARLEY_LOG_INFO, "alerts: %zu webhook%s%s",
               cfg->nwebhooks, cfg->nwebhooks == 1 ? "" : "s",
               slen > 0 ? ", signed" : "");
  }
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

/* ---- metrics ------------------------------------------------------------ */

#define M(name, type, help, value)                                            \
  do {                                                                        \
    if (rc == 0)                                                              \
      rc = parley_prom_metric(b, name, type, help, (double)(value));          \
  } while (0)

struct metric_topics {
  struct parley_buf *b;
  const char *name;
  int which; /* 0 publishers, 1 msgs/s */
  size_t n;
  int rc;
};

static int metric_topic(void *ctx, const struct parley_dash_topic *t) {
  struct metric_topics *w = ctx;
  char esc[2 * PARLEY_MAX_TOPIC + 2], labels[2 * PARLEY_MAX_TOPIC + 16];

  if (w->n++ >= DASH_METRIC_TOPICS || w->rc < 0)
    return 1;
  parley_prom_escape(t->topic, esc, sizeof esc);
  snprintf(labels, sizeof labels, "topic=\"%s\"", esc);
  w->rc = parley_prom_sample(w->b, w->name, labels,
                             w->which == 0 ? (double)t->publishers
                                           : t->msgs_out_per_s);
  return w->rc < 0;
}

int parley__index_dash_metrics(struct parley_index *idx,
                               struct parley_buf *b) {
  struct parley_dash_now dn;
  struct parley_dash_stats ds;
  struct parley_webhook_stats ws;
  struct metric_topics mt;
  int64_t now = parley_now_ms();
  char labels[320], esc[2][2 * PARLEY_ALERT_NAME_MAX + 2];
  int rc = 0;

  if (idx->dash == NULL)
    return 0;
  parley_dash_now(idx->dash, now, &dn);
  parley_dash_get_stats(idx->dash, &ds);
  M("parley_index_reports_total", "counter",
    "REPORT frames taken from peers (figures for the dashboard).",
    idx->st.reports);
  M("parley_index_reports_rejected_total", "counter",
    "REPORT frames refused: malformed, another version, or from an "
    "unregistered peer.",
    idx->st.reports_rejected);
  M("parley_dashboard_peers_reporting", "gauge",
    "Peers whose last REPORT is under 10 s old.", dn.reporting);
  M("parley_dashboard_peers_tracked", "gauge",
    "Peers the dashboard keeps figures for.", ds.peers);
  M("parley_dashboard_messages_received_per_second", "gauge",
    "Messages received per second, summed over reporting peers.",
    dn.msgs_in_per_s);
  M("parley_dashboard_messages_published_per_second", "gauge",
    "Messages published per second, summed over reporting peers.",
    dn.msgs_out_per_s);
  M("parley_dashboard_errors_per_second", "gauge",
    "Errors per second (rejected, dropped, protocol), summed over reporting "
    "peers.",
    dn.errors_per_s);
  M("parley_dashboard_outbox_max", "gauge",
    "Largest outbox depth of one reporting peer.", dn.max_outbox);
  M("parley_dashboard_peer_churn_per_minute", "gauge",
    "Peer joins and expiries in the last minute.", dn.churn_per_min);
  M("parley_dashboard_streams", "gauge", "Open dashboard event streams.",
    idx->nstreams);
  if (rc == 0)
    rc = parley_prom_header(b, "parley_dashboard_delivery_latency_seconds",
                            "gauge",
                            "Delivery latency quantiles over the last 10 s, "
                            "all reporting peers (NaN: no deliveries).");
  {
    const double qv[3] = {dn.latency_p50_ms, dn.latency_p90_ms,
                          dn.latency_p99_ms};
    const char *qn[3] = {"0.5", "0.9", "0.99"};
    for (int i = 0; i < 3 && rc == 0; i++) {
      snprintf(labels, sizeof labels, "quantile=\"%s\"", qn[i]);
      rc = parley_prom_sample(b, "parley_dashboard_delivery_latency_seconds",
                              labels, qv[i] / 1000.0);
    }
  }
  memset(&mt, 0, sizeof mt);
  mt.b = b;
  if (rc == 0)
    rc = parley_prom_header(b, "parley_dashboard_topic_publishers", "gauge",
                            "Reporting peers that publish on the topic "
                            "(at most 64 topics).");
  mt.name = "parley_dashboard_topic_publishers";
  if (rc == 0)
    parley_dash_foreach_topic(idx->dash, now, metric_topic, &mt);
  rc = rc == 0 ? mt.rc : rc;
  mt.n = 0;
  mt.which = 1;
  mt.name = "parley_dashboard_topic_messages_per_second";
  if (rc == 0)
    rc = parley_prom_header(b, mt.name, "gauge",
                            "Messages published per second on the topic "
                            "(at most 64 topics).");
  if (rc == 0)
    parley_dash_foreach_topic(idx->dash, now, metric_topic, &mt);
  rc = rc == 0 ? mt.rc : rc;

  if (rc == 0)
    rc = parley_prom_header(b, "parley_alerts_firing", "gauge",
                            "1 while the alert rule is firing, by rule.");
  for (size_t i = 0; i < parley_alerts_count(idx->alerts) && rc == 0; i++) {
    const struct parley_alert *a = parley_alerts_get(idx->alerts, i);
    parley_prom_escape(a->rule.name, esc[0], sizeof esc[0]);
    parley_prom_escape(a->rule.severity, esc[1], sizeof esc[1]);
    snprintf(labels, sizeof labels, "name=\"%s\",severity=\"%s\"", esc[0],
             esc[1]);
    rc = parley_prom_sample(b, "parley_alerts_firing", labels,
                            a->state == PARLEY_ALERT_FIRING ? 1.0 : 0.0);
  }
  if (rc == 0)
    rc = parley_prom_header(b, "parley_alerts_pending", "gauge",
                            "1 while the rule's condition holds but not yet "
                            "for its for_s.");
  for (size_t i = 0; i < parley_alerts_count(idx->alerts) && rc == 0; i++) {
    const struct parley_alert *a = parley_alerts_get(idx->alerts, i);
    parley_prom_escape(a->rule.name, esc[0], sizeof esc[0]);
    parley_prom_escape(a->rule.severity, esc[1], sizeof esc[1]);
    snprintf(labels, sizeof labels, "name=\"%s\",severity=\"%s\"", esc[0],
             esc[1]);
    rc = parley_prom_sample(b, "parley_alerts_pending", labels,
                            a->state == PARLEY_ALERT_PENDING ? 1.0 : 0.0);
  }
  if (rc == 0)
    rc = parley_prom_header(b, "parley_alerts_fired_total", "counter",
                            "Times the alert rule started firing.");
  for (size_t i = 0; i < parley_alerts_count(idx->alerts) && rc == 0; i++) {
    const struct parley_alert *a = parley_alerts_get(idx->alerts, i);
    parley_prom_escape(a->rule.name, esc[0], sizeof esc[0]);
    snprintf(labels, sizeof labels, "name=\"%s\"", esc[0]);
    rc = parley_prom_sample(b, "parley_alerts_fired_total", labels,
                            (double)a->fired);
  }
  if (idx->webhook != NULL) {
    parley_webhook_get_stats(idx->webhook, &ws);
    if (rc == 0)
      rc = parley_prom_header(b, "parley_webhook_deliveries_total", "counter",
                              "Alert notifications by outcome: delivered "
                              "(2xx), failed (gave up), dropped (queue "
                              "full).");
    if (rc == 0)
      rc = parley_prom_sample(b, "parley_webhook_deliveries_total",
                              "result=\"delivered\"", (double)ws.delivered);
    if (rc == 0)
      rc = parley_prom_sample(b, "parley_webhook_deliveries_total",
                              "result=\"failed\"", (double)ws.failed);
    if (rc == 0)
      rc = parley_prom_sample(b, "parley_webhook_deliveries_total",
                              "result=\"dropped\"", (double)ws.dropped);
    M("parley_webhook_retries_total", "counter",
      "Webhook attempts made after a failed one.", ws.retries);
    M("parley_webhook_pending", "gauge",
      "Webhook deliveries not finished yet.", ws.pending);
  }
  return rc;
}
