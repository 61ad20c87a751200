/* dash.c — the dashboard's model: peers' reports into rates, quantiles,
 * history rings and events (dash.h).  Pure: the caller passes the time. */
#include "index/dash.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/map.h"
#include "metrics/prom.h"

#define NB PARLEY_REPORT_LAT_BUCKETS
#define WIN PARLEY_DASH_LAT_WINDOW_S

/* A ring of history points; the newest is at (head + n - 1) % cap. */
struct ring {
  struct parley_dash_point *pts;
  uint32_t cap, head, n;
};

/* A sliding window of per-second latency deltas. */
struct latwin {
  int64_t sec[WIN]; /* which second each slot holds */
  uint64_t c[WIN][NB];
};

/* A topic seen in reports.  Owned by parley_dash.topics; freed when no
 * peer's report mentions it any more. */
struct dtopic {
  uint32_t refs;  /* peers whose last report carries it */
  uint32_t slot;  /* index in parley_dash.tslot */
  char name[];
};

/* A topic with a latency history (at most max_topic_series). */
struct tseries {
  struct ring fine, coarse;
  struct latwin win;
  uint64_t minute[NB]; /* deltas of the minute in progress */
  int64_t last_data_ms;
  char name[];
};

/* One topic of a peer's last report. */
struct ptopic {
  struct dtopic *t;
  uint8_t flags;
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  uint64_t lat[NB];
  double in_rate, out_rate; /* NAN until two reports */
};

struct dpeer {
  struct parley_dash_peer pub;
  struct ptopic *topics;
  size_t ntopics;
  uint64_t lat_ring[PARLEY_DASH_PEER_LAT_REPORTS][NB];
  size_t lat_pos;
};

struct parley_dash {
  struct parley_dash_config cfg;
  struct parley_map peers;  /* pk -> struct dpeer * */
  struct parley_map topics; /* name -> struct dtopic * */
  struct dtopic **tslot;    /* max_topics slots */
  struct parley_map series; /* name -> struct tseries * */

  struct ring fine[3], coarse[3]; /* PEERS, LATENCY, THROUGHPUT */
  struct latwin win;              /* cluster-wide */
  uint64_t minute[NB];            /* cluster-wide deltas of this minute */
  int64_t cur_min;                /* minute the accumulators are for */

  struct parley_dash_event events[PARLEY_DASH_MAX_EVENTS];
  size_t ev_head, ev_n;

  struct parley_dash_stats st;
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

double parley_dash_quantile_ms(const uint64_t lat[PARLEY_REPORT_LAT_BUCKETS],
                               double q) {
  struct parley_histogram h;

  parley_histogram_init_latency(&h);
  for (size_t i = 0; i < NB && i <= h.nbounds; i++) {
    h.counts[i] = lat[i];
    h.count += lat[i];
  }
  if (h.count == 0)
    return NAN;
  return parley_histogram_quantile(&h, q) * 1000.0;
}

static int ring_init(struct ring *r, uint32_t cap) {
  r->pts = parley_calloc(cap, sizeof *r->pts);
  r->cap = cap;
  r->head = r->n = 0;
  return r->pts != NULL ? PARLEY_OK : PARLEY_ENOMEM;
}

static void ring_close(struct ring *r) {
  parley_free(r->pts);
  memset(r, 0, sizeof *r);
}

static struct parley_dash_point *ring_newest(const struct ring *r) {
  if (r->n == 0)
    return NULL;
  return &r->pts[(r->head + r->n - 1) % r->cap];
}

/* Appends p, or replaces the newest point when it has the same time. */
static void ring_put(struct ring *r, const struct parley_dash_point *p) {
  struct parley_dash_point *last;

  if (r->pts == NULL || r->cap == 0)
    return; /* never after a successful ring_init */
  last = ring_newest(r);
  if (last != NULL && last->t == p->t) {
    *last = *p;
    return;
  }
  if (last != NULL && last->t > p->t)
    return; /* the clock went back: keep the series ordered */
  if (r->n < r->cap) {
    r->pts[(r->head + r->n) % r->cap] = *p;
    r->n++;
  } else {
    r->pts[r->head] = *p;
    r->head = (r->head + 1) % r->cap;
  }
}

static void win_add(struct latwin *w, int64_t now_ms, const uint64_t *delta) {
  int64_t sec = floor_div(now_ms, 1000);
  size_t slot = (size_t)(((sec % WIN) + WIN) % WIN);

  if (w->sec[slot] != sec) {
    w->sec[slot] = sec;
    memset(w->c[slot], 0, sizeof w->c[slot]);
  }
  for (size_t i = 0; i < NB; i++)
    w->c[slot][i] += delta[i];
}

/* Sums the slots of the last WIN seconds up to now. */
static void win_sum(const struct latwin *w, int64_t now_ms, uint64_t *out) {
  int64_t sec = floor_div(now_ms, 1000);

  memset(out, 0, NB * sizeof *out);
  for (size_t s = 0; s < WIN; s++) {
    if (w->sec[s] > sec - WIN && w->sec[s] <= sec)
      for (size_t i = 0; i < NB; i++)
        out[i] += w->c[s][i];
  }
}

static void quantiles(const uint64_t *lat, double *p50, double *p90,
                      double *p99) {
  *p50 = parley_dash_quantile_ms(lat, 0.5);
  *p90 = parley_dash_quantile_ms(lat, 0.9);
  *p99 = parley_dash_quantile_ms(lat, 0.99);
}

static int lat_empty(const uint64_t *lat) {
  for (size_t i = 0; i < NB; i++)
    if (lat[i] != 0)
      return 0;
  return 1;
}

/* ---- lifecycle ---------------------------------------------------------- */

int parley_dash_new(const struct parley_dash_config *cfg,
                    struct parley_dash **out) {
  struct parley_dash *d;
  int rc = PARLEY_OK;

  d = parley_calloc(1, sizeof *d);
  if (d == NULL)
    return PARLEY_ENOMEM;
  if (cfg != NULL)
    d->cfg = *cfg;
  if (d->cfg.max_peers == 0)
    d->cfg.max_peers = 4096;
  if (d->cfg.max_topics == 0)
    d->cfg.max_topics = 256;
  if (d->cfg.max_topic_series == 0)
    d->cfg.max_topic_series = 32;
  if (d->cfg.fine_points == 0)
    d->cfg.fine_points = 3600;
  if (d->cfg.coarse_points == 0)
    d->cfg.coarse_points = 1440;
  if (d->cfg.stale_ms == 0)
    d->cfg.stale_ms = 10000;
  if (d->cfg.min_interval_ms == 0)
    d->cfg.min_interval_ms = 500;
  if (d->cfg.fine_points > 1000000 || d->cfg.coarse_points > 1000000 ||
      d->cfg.max_topics > 65536) {
    parley_free(d);
    return PARLEY_EINVAL;
  }
  parley_map_init(&d->peers, 0x6a09e667f3bcc908ull);
  parley_map_init(&d->topics, 0xbb67ae8584caa73bull);
  parley_map_init(&d->series, 0x3c6ef372fe94f82bull);
  d->cur_min = INT64_MIN;
  d->tslot = parley_calloc(d->cfg.max_topics, sizeof *d->tslot);
  if (d->tslot == NULL)
    rc = PARLEY_ENOMEM;
  for (int i = 0; i < 3 && rc == PARLEY_OK; i++) {
    rc = ring_init(&d->fine[i], d->cfg.fine_points);
    if (rc == PARLEY_OK)
      rc = ring_init(&d->coarse[i], d->cfg.coarse_points);
  }
  if (rc < 0) {
    parley_dash_free(d);
    return rc;
  }
  *out = d;
  return PARLEY_OK;
}

static void topic_unref(struct parley_dash *d, struct dtopic *t) {
  if (t == NULL || --t->refs > 0)
    return;
  (void)parley_map_del(&d->topics, t->name, strlen(t->name));
  d->tslot[t->slot] = NULL;
  parley_free(t);
}

static void peer_free(struct parley_dash *d, struct dpeer *p) {
  for (size_t i = 0; i < p->ntopics; i++)
    topic_unref(d, p->topics[i].t);
  parley_free(p->topics);
  parley_free(p);
}

static void series_free(struct tseries *s) {
  ring_close(&s->fine);
  ring_close(&s->coarse);
  parley_free(s);
}

void parley_dash_free(struct parley_dash *d) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  if (d == NULL)
    return;
  parley_map_iter_init(&it, &d->peers);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct dpeer *p = e->value;
    parley_map_iter_remove(&it);
    peer_free(d, p);
  }
  parley_map_close(&d->peers);
  parley_map_close(&d->topics); /* emptied with the peers */
  parley_map_iter_init(&it, &d->series);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct tseries *s = e->value;
    parley_map_iter_remove(&it);
    series_free(s);
  }
  parley_map_close(&d->series);
  for (int i = 0; i < 3; i++) {
    ring_close(&d->fine[i]);
    ring_close(&d->coarse[i]);
  }
  parley_free(d->tslot);
  parley_free(d);
}

/* ---- minutes ------------------------------------------------------------ */

/* Mean of the fine points of series s within [t0, t0 + 60 s); 0 if none. */
static int minute_mean(const struct ring *r, int64_t t0,
                       struct parley_dash_point *out, int last_only) {
  double sum[3] = {0, 0, 0};
  uint32_t n[3] = {0, 0, 0}, any = 0;

  for (uint32_t k = 0; k < r->n; k++) {
    const struct parley_dash_point *p = &r->pts[(r->head + r->n - 1 - k) %
                                                r->cap];
    if (p->t < t0)
      break;
    if (p->t >= t0 + 60000)
      continue;
    if (last_only && any) /* newest first: the first one seen is last */
      continue;
    any++;
    for (int i = 0; i < 3; i++)
      if (!isnan(p->v[i])) {
        sum[i] += p->v[i];
        n[i]++;
      }
  }
  if (!any)
    return 0;
  out->t = t0;
  for (int i = 0; i < 3; i++)
    out->v[i] = n[i] > 0 ? sum[i] / n[i] : NAN;
  return 1;
}

static int minute_latency(const uint64_t *lat, int64_t t0,
                          struct parley_dash_point *out) {
  if (lat_empty(lat))
    return 0;
  out->t = t0;
  quantiles(lat, &out->v[0], &out->v[1], &out->v[2]);
  return 1;
}

/* Closes the minute in progress when now_ms is in a later one. */
static void roll_minute(struct parley_dash *d, int64_t now_ms) {
  int64_t m = floor_div(now_ms, 60000);
  struct parley_dash_point p;
  struct parley_map_iter it;
  struct parley_map_entry *e;

  if (m == d->cur_min)
    return;
  if (d->cur_min != INT64_MIN && m > d->cur_min) {
    int64_t t0 = d->cur_min * 60000;
    if (minute_mean(&d->fine[PARLEY_DASH_PEERS], t0, &p, 1))
      ring_put(&d->coarse[PARLEY_DASH_PEERS], &p);
    if (minute_mean(&d->fine[PARLEY_DASH_THROUGHPUT], t0, &p, 0))
      ring_put(&d->coarse[PARLEY_DASH_THROUGHPUT], &p);
    if (minute_latency(d->minute, t0, &p))
      ring_put(&d->coarse[PARLEY_DASH_LATENCY], &p);
    parley_map_iter_init(&it, &d->series);
    while ((e = parley_map_iter_next(&it)) != NULL) {
      struct tseries *s = e->value;
      if (minute_latency(s->minute, t0, &p))
        ring_put(&s->coarse, &p);
    }
  }
  memset(d->minute, 0, sizeof d->minute);
  parley_map_iter_init(&it, &d->series);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct tseries *s = e->value;
    memset(s->minute, 0, sizeof s->minute);
  }
  d->cur_min = m;
}

/* ---- reports ------------------------------------------------------------ */

static struct dtopic *topic_get(struct parley_dash *d, const char *name,
                                size_t len) {
  struct dtopic *t = parley_map_get(&d->topics, name, len);
  size_t slot;

  if (t != NULL)
    return t;
  for (slot = 0; slot < d->cfg.max_topics; slot++)
    if (d->tslot[slot] == NULL)
      break;
  if (slot == d->cfg.max_topics)
    return NULL;
  t = parley_malloc(sizeof *t + len + 1);
  if (t == NULL)
    return NULL;
  t->refs = 0;
  t->slot = (uint32_t)slot;
  memcpy(t->name, name, len);
  t->name[len] = '\0';
  if (parley_map_put(&d->topics, t->name, len, t, NULL) < 0) {
    parley_free(t);
    return NULL;
  }
  d->tslot[slot] = t;
  return t;
}

static struct tseries *series_get(struct parley_dash *d, const char *name) {
  size_t len = strlen(name);
  struct tseries *s = parley_map_get(&d->series, name, len);

  if (s != NULL || d->series.count >= d->cfg.max_topic_series)
    return s;
  s = parley_calloc(1, sizeof *s + len + 1);
  if (s == NULL)
    return NULL;
  memcpy(s->name, name, len + 1);
  if (ring_init(&s->fine, d->cfg.fine_points) < 0 ||
      ring_init(&s->coarse, d->cfg.coarse_points) < 0 ||
      parley_map_put(&d->series, s->name, len, s, NULL) < 0) {
    series_free(s);
    return NULL;
  }
  return s;
}

static double rate(uint64_t now, uint64_t before, double dt) {
  return (double)(now - before) / dt;
}

/* 1 if any counter of r is below the previous report's (a restart). */
static int went_back(const struct parley_report *r,
                     const struct parley_report *o) {
  if (r->uptime_ms < o->uptime_ms || r->msgs_in < o->msgs_in ||
      r->msgs_out < o->msgs_out || r->bytes_in < o->bytes_in ||
      r->bytes_out < o->bytes_out || r->acks_sent < o->acks_sent ||
      r->acks_received < o->acks_received || r->retries < o->retries ||
      r->errors < o->errors || r->cpu_ms < o->cpu_ms)
    return 1;
  for (size_t i = 0; i < NB; i++)
    if (r->lat[i] < o->lat[i])
      return 1;
  return 0;
}

/* The peer's topics after report r: matched with the previous ones for
 * rates and latency deltas. */
static int take_topics(struct parley_dash *d, struct dpeer *p,
                       const struct parley_report *r, int baseline,
                       double dt, int64_t now_ms) {
  struct ptopic *nt = NULL;
  size_t n = 0;
  int rc = PARLEY_OK;

  if (r->ntopics > 0) {
    nt = parley_calloc(r->ntopics, sizeof *nt);
    if (nt == NULL)
      return PARLEY_ENOMEM;
  }
  for (size_t i = 0; i < r->ntopics; i++) {
    const struct parley_report_topic *rt = &r->topics[i];
    struct dtopic *t = topic_get(d, rt->topic.ptr, rt->topic.len);
    struct ptopic *o = NULL, *x;

    if (t == NULL) {
      d->st.topics_untracked++;
      rc = PARLEY_ELIMIT;
      continue;
    }
    for (size_t j = 0; j < p->ntopics; j++)
      if (p->topics[j].t == t)
        o = &p->topics[j];
    x = &nt[n++];
    x->t = t;
    t->refs++;
    x->flags = rt->flags;
    x->msgs_in = rt->msgs_in;
    x->msgs_out = rt->msgs_out;
    x->bytes_in = rt->bytes_in;
    x->bytes_out = rt->bytes_out;
    memcpy(x->lat, rt->lat, sizeof x->lat);
    x->in_rate = x->out_rate = NAN;
    if (o == NULL || baseline || rt->msgs_in < o->msgs_in ||
        rt->msgs_out < o->msgs_out)
      continue;
    x->in_rate = rate(rt->msgs_in, o->msgs_in, dt);
    x->out_rate = rate(rt->msgs_out, o->msgs_out, dt);
    if ((rt->flags & PARLEY_REPORT_T_LATENCY) &&
        (o->flags & PARLEY_REPORT_T_LATENCY)) {
      uint64_t delta[NB];
      int back = 0;
      for (size_t k = 0; k < NB; k++) {
        back |= rt->lat[k] < o->lat[k];
        delta[k] = rt->lat[k] - o->lat[k];
      }
      if (!back && !lat_empty(delta)) {
        struct tseries *s = series_get(d, t->name);
        if (s != NULL) {
          win_add(&s->win, now_ms, delta);
          for (size_t k = 0; k < NB; k++)
            s->minute[k] += delta[k];
          s->last_data_ms = now_ms;
        }
      }
    }
  }
  for (size_t j = 0; j < p->ntopics; j++)
    topic_unref(d, p->topics[j].t);
  parley_free(p->topics);
  p->topics = nt;
  p->ntopics = n;
  return rc;
}

static void set_nan_rates(struct parley_dash_peer *q) {
  q->msgs_in_per_s = q->msgs_out_per_s = q->bytes_in_per_s = NAN;
  q->bytes_out_per_s = q->errors_per_s = q->retries_per_s = NAN;
  q->acks_per_s = q->cpu_percent = NAN;
}

int parley_dash_report(struct parley_dash *d, const uint8_t pk[32],
                       const char *name, const struct parley_report *r,
                       int64_t now_ms) {
  struct dpeer *p = parley_map_get(&d->peers, pk, 32);
  struct parley_dash_peer *q;
  int baseline, rc;
  double dt = 0;

  roll_minute(d, now_ms);
  if (p == NULL) {
    if (d->peers.count >= d->cfg.max_peers) {
      d->st.peers_untracked++;
      return PARLEY_ELIMIT;
    }
    p = parley_calloc(1, sizeof *p);
    if (p == NULL)
      return PARLEY_ENOMEM;
    memcpy(p->pub.pk, pk, 32);
    set_nan_rates(&p->pub);
    p->pub.latency_p50_ms = p->pub.latency_p90_ms = NAN;
    p->pub.latency_p99_ms = NAN;
    if (parley_map_put(&d->peers, pk, 32, p, NULL) < 0) {
      parley_free(p);
      return PARLEY_ENOMEM;
    }
  }
  q = &p->pub;
  if (q->reports > 0 && now_ms >= q->last_report_ms &&
      (uint64_t)(now_ms - q->last_report_ms) < d->cfg.min_interval_ms) {
    d->st.reports_ignored++;
    return PARLEY_OK;
  }
  if (name != NULL) {
    size_t n = strnlen(name, PARLEY_MAX_NAME);
    memcpy(q->name, name, n);
    q->name[n] = '\0';
  }
  baseline = q->reports == 0 || went_back(r, &q->last);
  if (!baseline) {
    uint64_t dup = r->uptime_ms - q->last.uptime_ms;
    if (dup == 0) {
      /* Same uptime twice: fall back to our own clock. */
      dup = now_ms > q->last_report_ms
                ? (uint64_t)(now_ms - q->last_report_ms)
                : 0;
    }
    if (dup == 0)
      baseline = 1;
    else
      dt = (double)dup / 1000.0;
  }
  if (baseline) {
    if (q->reports > 0)
      d->st.restarts++;
    set_nan_rates(q);
    memset(p->lat_ring, 0, sizeof p->lat_ring);
  } else {
    uint64_t delta[NB], sum[NB];
    const struct parley_report *o = &q->last;

    q->msgs_in_per_s = rate(r->msgs_in, o->msgs_in, dt);
    q->msgs_out_per_s = rate(r->msgs_out, o->msgs_out, dt);
    q->bytes_in_per_s = rate(r->bytes_in, o->bytes_in, dt);
    q->bytes_out_per_s = rate(r->bytes_out, o->bytes_out, dt);
    q->errors_per_s = rate(r->errors, o->errors, dt);
    q->retries_per_s = rate(r->retries, o->retries, dt);
    q->acks_per_s = rate(r->acks_sent + r->acks_received,
                         o->acks_sent + o->acks_received, dt);
    q->cpu_percent = rate(r->cpu_ms, o->cpu_ms, dt) / 10.0;
    for (size_t i = 0; i < NB; i++) {
      delta[i] = r->lat[i] - o->lat[i];
      d->minute[i] += delta[i];
    }
    win_add(&d->win, now_ms, delta);
    memcpy(p->lat_ring[p->lat_pos], delta, sizeof delta);
    p->lat_pos = (p->lat_pos + 1) % PARLEY_DASH_PEER_LAT_REPORTS;
    memset(sum, 0, sizeof sum);
    for (size_t k = 0; k < PARLEY_DASH_PEER_LAT_REPORTS; k++)
      for (size_t i = 0; i < NB; i++)
        sum[i] += p->lat_ring[k][i];
    quantiles(sum, &q->latency_p50_ms, &q->latency_p90_ms,
              &q->latency_p99_ms);
  }
  rc = take_topics(d, p, r, baseline, dt, now_ms);
  q->last = *r;
  q->last.ntopics = 0;
  memset(q->last.topics, 0, sizeof q->last.topics);
  if (q->reports == 0)
    q->first_report_ms = now_ms;
  q->last_report_ms = now_ms;
  q->reports++;
  d->st.reports++;
  return rc;
}

/* ---- events ------------------------------------------------------------- */

void parley_dash_event(struct parley_dash *d, int kind, const uint8_t pk[32],
                       const char *name, int64_t now_ms) {
  struct parley_dash_event *e;
  size_t n = name != NULL ? strnlen(name, PARLEY_MAX_NAME) : 0;

  if (d->ev_n < PARLEY_DASH_MAX_EVENTS) {
    e = &d->events[(d->ev_head + d->ev_n) % PARLEY_DASH_MAX_EVENTS];
    d->ev_n++;
  } else {
    e = &d->events[d->ev_head];
    d->ev_head = (d->ev_head + 1) % PARLEY_DASH_MAX_EVENTS;
  }
  memset(e, 0, sizeof *e);
  e->t = now_ms;
  e->kind = kind;
  memcpy(e->pk, pk, 32);
  if (n > 0)
    memcpy(e->name, name, n);
  if (kind == PARLEY_DASH_EXPIRE) {
    struct dpeer *p = parley_map_del(&d->peers, pk, 32);
    if (p != NULL)
      peer_free(d, p);
  }
}

void parley_dash_foreach_event(const struct parley_dash *d, int64_t since_ms,
                               size_t max,
                               void (*cb)(void *ctx,
                                          const struct parley_dash_event *e),
                               void *ctx) {
  size_t sent = 0;

  for (size_t k = 0; k < d->ev_n && sent < max; k++) {
    const struct parley_dash_event *e =
        &d->events[(d->ev_head + d->ev_n - 1 - k) % PARLEY_DASH_MAX_EVENTS];
    if (e->t < since_ms)
      continue;
    cb(ctx, e);
    sent++;
  }
}

/* ---- the present -------------------------------------------------------- */

static int fresh(const struct parley_dash *d, const struct dpeer *p,
                 int64_t now_ms) {
  return p->pub.reports > 0 &&
         now_ms - p->pub.last_report_ms <= (int64_t)d->cfg.stale_ms;
}

static double add_rate(double acc, double v) { return isnan(v) ? acc : acc + v; }

void parley_dash_now(const struct parley_dash *d, int64_t now_ms,
                     struct parley_dash_now *out) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  uint64_t lat[NB];

  memset(out, 0, sizeof *out);
  parley_map_iter_init(&it, (struct parley_map *)&d->peers);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    const struct dpeer *p = e->value;
    if (!fresh(d, p, now_ms))
      continue;
    out->reporting++;
    if (!isnan(p->pub.msgs_in_per_s))
      out->rated++;
    out->msgs_in_per_s = add_rate(out->msgs_in_per_s, p->pub.msgs_in_per_s);
    out->msgs_out_per_s = add_rate(out->msgs_out_per_s, p->pub.msgs_out_per_s);
    out->errors_per_s = add_rate(out->errors_per_s, p->pub.errors_per_s);
    if (out->reporting == 1 || p->pub.last.outbox_depth > out->max_outbox) {
      out->max_outbox = p->pub.last.outbox_depth;
      memcpy(out->max_outbox_name, p->pub.name, sizeof out->max_outbox_name);
    }
  }
  win_sum(&d->win, now_ms, lat);
  quantiles(lat, &out->latency_p50_ms, &out->latency_p90_ms,
            &out->latency_p99_ms);
  for (size_t k = 0; k < d->ev_n; k++) {
    const struct parley_dash_event *ev = &d->events[(d->ev_head + k) %
                                                    PARLEY_DASH_MAX_EVENTS];
    if (ev->t > now_ms - 60000 && ev->t <= now_ms)
      out->churn_per_min++;
  }
}

const struct parley_dash_peer *parley_dash_peer(const struct parley_dash *d,
                                                const uint8_t pk[32]) {
  const struct dpeer *p = parley_map_get(&d->peers, pk, 32);
  return p != NULL ? &p->pub : NULL;
}

void parley_dash_foreach_peer(const struct parley_dash *d,
                              int (*cb)(void *ctx,
                                        const struct parley_dash_peer *p),
                              void *ctx) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley_map_iter_init(&it, (struct parley_map *)&d->peers);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    const struct dpeer *p = e->value;
    if (cb(ctx, &p->pub) != 0)
      return;
  }
}

/* Sums one topic over the fresh peers. */
static void topic_sum(const struct parley_dash *d, const struct dtopic *t,
                      int64_t now_ms, struct parley_dash_topic *out) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  const struct tseries *s;

  memset(out, 0, sizeof *out);
  out->topic = t->name;
  parley_map_iter_init(&it, (struct parley_map *)&d->peers);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    const struct dpeer *p = e->value;
    if (!fresh(d, p, now_ms))
      continue;
    for (size_t i = 0; i < p->ntopics; i++) {
      const struct ptopic *x = &p->topics[i];
      if (x->t != t)
        continue;
      out->reporters++;
      if (x->flags & PARLEY_REPORT_T_PUBLISHER)
        out->publishers++;
      out->msgs_in_per_s = add_rate(out->msgs_in_per_s, x->in_rate);
      out->msgs_out_per_s = add_rate(out->msgs_out_per_s, x->out_rate);
    }
  }
  out->latency_p50_ms = out->latency_p90_ms = out->latency_p99_ms = NAN;
  s = parley_map_get(&d->series, t->name, strlen(t->name));
  if (s != NULL) {
    uint64_t lat[NB];
    win_sum(&s->win, now_ms, lat);
    quantiles(lat, &out->latency_p50_ms, &out->latency_p90_ms,
              &out->latency_p99_ms);
  }
}

void parley_dash_foreach_topic(const struct parley_dash *d, int64_t now_ms,
                               int (*cb)(void *ctx,
                                         const struct parley_dash_topic *t),
                               void *ctx) {
  struct parley_dash_topic agg;

  for (size_t i = 0; i < d->cfg.max_topics; i++) {
    const struct dtopic *t = d->tslot[i];
    if (t == NULL)
      continue;
    topic_sum(d, t, now_ms, &agg);
    if (agg.reporters == 0)
      continue;
    if (cb(ctx, &agg) != 0)
      return;
  }
}

int parley_dash_topic(const struct parley_dash *d, const char *topic,
                      int64_t now_ms, struct parley_dash_topic *out) {
  const struct dtopic *t = parley_map_get(&d->topics, topic, strlen(topic));

  memset(out, 0, sizeof *out);
  if (t == NULL)
    return PARLEY_ENOTFOUND;
  topic_sum(d, t, now_ms, out);
  return PARLEY_OK;
}

/* ---- history ------------------------------------------------------------ */

void parley_dash_tick(struct parley_dash *d, int64_t now_ms,
                      uint32_t peer_count) {
  struct parley_dash_now now;
  struct parley_dash_point p;
  struct parley_map_iter it;
  struct parley_map_entry *e;
  int64_t t = floor_div(now_ms, 1000) * 1000;

  roll_minute(d, now_ms);
  parley_dash_now(d, now_ms, &now);
  p.t = t;
  p.v[0] = (double)peer_count;
  p.v[1] = p.v[2] = NAN;
  ring_put(&d->fine[PARLEY_DASH_PEERS], &p);
  if (now.rated > 0) {
    p.v[0] = now.msgs_in_per_s;
    p.v[1] = now.msgs_out_per_s;
    p.v[2] = now.errors_per_s;
    ring_put(&d->fine[PARLEY_DASH_THROUGHPUT], &p);
  }
  if (!isnan(now.latency_p50_ms)) {
    p.v[0] = now.latency_p50_ms;
    p.v[1] = now.latency_p90_ms;
    p.v[2] = now.latency_p99_ms;
    ring_put(&d->fine[PARLEY_DASH_LATENCY], &p);
  }
  parley_map_iter_init(&it, &d->series);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct tseries *s = e->value;
    uint64_t lat[NB];
    const struct parley_dash_point *last;

    win_sum(&s->win, now_ms, lat);
    if (!lat_empty(lat)) {
      p.t = t;
      quantiles(lat, &p.v[0], &p.v[1], &p.v[2]);
      ring_put(&s->fine, &p);
    }
    /* A topic quiet for a whole fine window (and not in the coarse one
     * any more either) is forgotten. */
    last = ring_newest(&s->coarse);
    if (now_ms - s->last_data_ms >
            (int64_t)d->cfg.fine_points * 1000 &&
        (last == NULL || now_ms - last->t >
                             (int64_t)d->cfg.coarse_points * 60000)) {
      parley_map_iter_remove(&it);
      series_free(s);
    }
  }
  d->st.peers = d->peers.count;
  d->st.topics = d->topics.count;
}

static const struct ring *pick(const struct parley_dash *d, int series,
                               int res, const char *topic) {
  if (series >= PARLEY_DASH_PEERS && series <= PARLEY_DASH_THROUGHPUT)
    return res == PARLEY_DASH_COARSE ? &d->coarse[series] : &d->fine[series];
  if (series == PARLEY_DASH_TOPIC_LATENCY && topic != NULL) {
    const struct tseries *s =
        parley_map_get(&d->series, topic, strlen(topic));
    if (s != NULL)
      return res == PARLEY_DASH_COARSE ? &s->coarse : &s->fine;
  }
  return NULL;
}

void parley_dash_history(const struct parley_dash *d, int series, int res,
                         const char *topic, int64_t since_ms,
                         void (*cb)(void *ctx,
                                    const struct parley_dash_point *p),
                         void *ctx) {
  const struct ring *r = pick(d, series, res, topic);

  if (r == NULL)
    return;
  for (uint32_t k = 0; k < r->n; k++) {
    const struct parley_dash_point *p = &r->pts[(r->head + k) % r->cap];
    if (p->t >= since_ms)
      cb(ctx, p);
  }
}

int parley_dash_latest(const struct parley_dash *d, int series, int res,
                       const char *topic, int64_t now_ms,
                       struct parley_dash_point *out) {
  const struct ring *fine = pick(d, series, PARLEY_DASH_FINE, topic);
  const struct parley_dash_point *last;
  int64_t m0 = floor_div(now_ms, 60000) * 60000;

  if (fine == NULL)
    return 0;
  if (res != PARLEY_DASH_COARSE) {
    last = ring_newest(fine);
    if (last == NULL)
      return 0;
    *out = *last;
    return 1;
  }
  /* The minute in progress. */
  if (d->cur_min != floor_div(now_ms, 60000))
    return 0; /* not rolled yet: nothing of this minute */
  switch (series) {
  case PARLEY_DASH_PEERS:
    return minute_mean(fine, m0, out, 1);
  case PARLEY_DASH_THROUGHPUT:
    return minute_mean(fine, m0, out, 0);
  case PARLEY_DASH_LATENCY:
    return minute_latency(d->minute, m0, out);
  default: {
    const struct tseries *s =
        parley_map_get(&d->series, topic, strlen(topic));
    return s != NULL && minute_latency(s->minute, m0, out);
  }
  }
}

void parley_dash_foreach_series(const struct parley_dash *d,
                                void (*cb)(void *ctx, const char *topic),
                                void *ctx) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley_map_iter_init(&it, (struct parley_map *)&d->series);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    const struct tseries *s = e->value;
    cb(ctx, s->name);
  }
}

void parley_dash_get_stats(const struct parley_dash *d,
                           struct parley_dash_stats *out) {
  *out = d->st;
  out->peers = d->peers.count;
  out->topics = d->topics.count;
}
