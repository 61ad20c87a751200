/* test_dash.c — the dashboard's pure logic: aggregation of REPORTs into
 * rates and quantiles (index/dash.h), the history rings and events.  The
 * alert rules are tested in test_alerts.c, the webhooks in
 * test_webhook.c.
 *
 * Run with --report-client ... it is instead a fake peer for the
 * integration tests (test/integration/test_dashboard.py, test/e2e): it
 * registers with an index over a real secure link and sends REPORT frames
 * with figures the test chooses (report_client below). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/dash.h"

#define T0 1800000000000ll /* a whole minute, Unix ms */

static const uint8_t PK_A[32] = {1};
static const uint8_t PK_B[32] = {2};

static struct parley_dash *new_dash(const struct parley_dash_config *cfg) {
  struct parley_dash *d = NULL;
  assert_int_equal(parley_dash_new(cfg, &d), PARLEY_OK);
  return d;
}

static struct parley_report *rep(uint64_t uptime, uint64_t in, uint64_t out) {
  static struct parley_report r;
  memset(&r, 0, sizeof r);
  r.uptime_ms = uptime;
  r.msgs_in = in;
  r.msgs_out = out;
  return &r;
}

static void assert_near(double a, double b) {
  if (fabs(a - b) > 1e-9 * (fabs(b) + 1)) {
    print_error("%.12g != %.12g\n", a, b);
    fail();
  }
}

/* ---- aggregation -------------------------------------------------------- */

static void test_rates_from_two_reports(void **state) {
  struct parley_dash *d = new_dash(NULL);
  struct parley_report *r;
  const struct parley_dash_peer *p;
  (void)state;

  r = rep(10000, 1000, 50);
  r->cpu_ms = 300;
  r->errors = 4;
  r->outbox_depth = 7;
  assert_int_equal(parley_dash_report(d, PK_A, "alice", r, T0), PARLEY_OK);
  p = parley_dash_peer(d, PK_A);
  assert_non_null(p);
  assert_string_equal(p->name, "alice");
  assert_true(isnan(p->msgs_in_per_s)); /* one report: no rate yet */
  /* 2 s later by the sender's clock (the index saw 2.5 s: jitter). */
  r = rep(12000, 1200, 70);
  r->cpu_ms = 800;
  r->errors = 10;
  r->outbox_depth = 3;
  assert_int_equal(parley_dash_report(d, PK_A, "alice", r, T0 + 2500),
                   PARLEY_OK);
  p = parley_dash_peer(d, PK_A);
  assert_near(p->msgs_in_per_s, 100.0);
  assert_near(p->msgs_out_per_s, 10.0);
  assert_near(p->errors_per_s, 3.0);
  assert_near(p->cpu_percent, 25.0);
  assert_int_equal(p->last.outbox_depth, 3);
  assert_int_equal(p->reports, 2);
  assert_int_equal(p->last_report_ms, T0 + 2500);
  parley_dash_free(d);
}

static void test_restart_and_min_interval(void **state) {
  struct parley_dash *d = new_dash(NULL);
  struct parley_dash_stats st;
  const struct parley_dash_peer *p;
  (void)state;

  assert_int_equal(parley_dash_report(d, PK_A, NULL, rep(5000, 10, 0), T0),
                   PARLEY_OK);
  /* 100 ms later: too soon, ignored */
  assert_int_equal(
      parley_dash_report(d, PK_A, NULL, rep(5100, 999, 0), T0 + 100),
      PARLEY_OK);
  assert_int_equal(parley_dash_peer(d, PK_A)->last.msgs_in, 10);
  assert_int_equal(
      parley_dash_report(d, PK_A, NULL, rep(6000, 20, 0), T0 + 1000),
      PARLEY_OK);
  assert_near(parley_dash_peer(d, PK_A)->msgs_in_per_s, 10.0);
  /* uptime went back: the daemon restarted, a new baseline */
  assert_int_equal(
      parley_dash_report(d, PK_A, NULL, rep(1000, 2, 0), T0 + 2000),
      PARLEY_OK);
  p = parley_dash_peer(d, PK_A);
  assert_true(isnan(p->msgs_in_per_s));
  assert_int_equal(
      parley_dash_report(d, PK_A, NULL, rep(2000, 7, 0), T0 + 3000),
      PARLEY_OK);
  assert_near(parley_dash_peer(d, PK_A)->msgs_in_per_s, 5.0);
  parley_dash_get_stats(d, &st);
  assert_int_equal(st.reports, 4);
  assert_int_equal(st.reports_ignored, 1);
  assert_int_equal(st.restarts, 1);
  assert_int_equal(st.peers, 1);
  parley_dash_free(d);
}

static void test_quantiles(void **state) {
  uint64_t lat[PARLEY_REPORT_LAT_BUCKETS] = {0};
  (void)state;

  assert_true(isnan(parley_dash_quantile_ms(lat, 0.5)));
  /* 100 observations in (0.5 ms, 1 ms]: linear inside the bucket */
  lat[4] = 100;
  assert_near(parley_dash_quantile_ms(lat, 0.5), 0.75);
  assert_near(parley_dash_quantile_ms(lat, 0.99), 0.995);
  /* 90 fast (<= 50 us) and 10 at (1 s, 2.5 s] */
  memset(lat, 0, sizeof lat);
  lat[0] = 90;
  lat[14] = 10;
  assert_near(parley_dash_quantile_ms(lat, 0.5), 0.05 * 50.0 / 90.0);
  assert_near(parley_dash_quantile_ms(lat, 0.99), 1000.0 + 1500.0 * 0.9);
}

static void test_latency_window_and_cluster(void **state) {
  struct parley_dash *d = new_dash(NULL);
  struct parley_dash_now now;
  struct parley_report *r;
  (void)state;

  /* Baselines first: what a daemon delivered before is not counted. */
  r = rep(1000, 0, 0);
  r->lat[4] = 5000;
  assert_int_equal(parley_dash_report(d, PK_A, "a", r, T0), PARLEY_OK);
  r = rep(1000, 0, 0);
  assert_int_equal(parley_dash_report(d, PK_B, "b", r, T0), PARLEY_OK);
  parley_dash_now(d, T0, &now);
  assert_int_equal(now.reporting, 2);
  assert_true(isnan(now.latency_p50_ms));
  /* A delivered 100 in (0.5, 1] ms, B 100 in (1, 2.5] ms. */
  r = rep(3000, 100, 0);
  r->lat[4] = 5100;
  assert_int_equal(parley_dash_report(d, PK_A, "a", r, T0 + 2000), PARLEY_OK);
  r = rep(3000, 100, 0);
  r->lat[5] = 100;
  r->outbox_depth = 42;
  assert_int_equal(parley_dash_report(d, PK_B, "b", r, T0 + 2000), PARLEY_OK);
  parley_dash_now(d, T0 + 2000, &now);
  assert_near(now.msgs_in_per_s, 100.0);
  /* Summed buckets: rank 100 of 200 is the top of bucket 4 (1 ms). */
  assert_near(now.latency_p50_ms, 1.0);
  assert_near(now.latency_p99_ms, 1.0 + 1.5 * 98.0 / 100.0);
  assert_int_equal(now.max_outbox, 42);
  assert_string_equal(now.max_outbox_name, "b");
  /* Per peer: only its own deliveries. */
  assert_near(parley_dash_peer(d, PK_A)->latency_p50_ms, 0.75);
  /* The cluster window forgets after PARLEY_DASH_LAT_WINDOW_S seconds;
   * the rates go once the reports are stale (10 s). */
  parley_dash_now(d, T0 + 2000 + PARLEY_DASH_LAT_WINDOW_S * 1000, &now);
  assert_true(isnan(now.latency_p99_ms));
  assert_int_equal(now.reporting, 2);
  parley_dash_now(d, T0 + 12001, &now);
  assert_int_equal(now.reporting, 0);
  assert_near(now.msgs_in_per_s, 0.0);
  parley_dash_free(d);
}

struct pts {
  struct parley_dash_point p[64];
  size_t n;
};

static void collect(void *ctx, const struct parley_dash_point *p) {
  struct pts *c = ctx;
  if (c->n < 64)
    c->p[c->n++] = *p;
}

static void test_fine_ring(void **state) {
  struct parley_dash_config cfg = {.fine_points = 5};
  struct parley_dash *d = new_dash(&cfg);
  struct pts c;
  (void)state;

  for (int i = 0; i < 8; i++)
    parley_dash_tick(d, T0 + i * 1000 + 300, (uint32_t)(10 + i));
  /* Twice in the same second: the point is replaced, not added. */
  parley_dash_tick(d, T0 + 7 * 1000 + 900, 99);
  memset(&c, 0, sizeof c);
  parley_dash_history(d, PARLEY_DASH_PEERS, PARLEY_DASH_FINE, NULL, 0,
                      collect, &c);
  assert_int_equal(c.n, 5);
  assert_int_equal(c.p[0].t, T0 + 3000);
  assert_near(c.p[0].v[0], 13);
  assert_int_equal(c.p[4].t, T0 + 7000);
  assert_near(c.p[4].v[0], 99);
  /* since_ms filters */
  memset(&c, 0, sizeof c);
  parley_dash_history(d, PARLEY_DASH_PEERS, PARLEY_DASH_FINE, NULL,
                      T0 + 6000, collect, &c);
  assert_int_equal(c.n, 2);
  /* No report ever: no throughput or latency points. */
  memset(&c, 0, sizeof c);
  parley_dash_history(d, PARLEY_DASH_THROUGHPUT, PARLEY_DASH_FINE, NULL, 0,
                      collect, &c);
  parley_dash_history(d, PARLEY_DASH_LATENCY, PARLEY_DASH_FINE, NULL, 0,
                      collect, &c);
  assert_int_equal(c.n, 0);
  parley_dash_free(d);
}

static void test_coarse_minutes(void **state) {
  struct parley_dash *d = new_dash(NULL);
  struct parley_dash_point p;
  struct parley_report *r;
  struct pts c;
  uint64_t lat4 = 0;
  (void)state;

  /* A peer reporting every second: 10 msgs/s in the first minute,
   * 30 msgs/s in the second; all deliveries in bucket 4. */
  for (int s = 0; s <= 120; s++) {
    uint64_t in = s <= 60 ? (uint64_t)s * 10 : 600 + (uint64_t)(s - 60) * 30;
    lat4 = in;
    r = rep(1000 + (uint64_t)s * 1000, in, 0);
    r->lat[4] = lat4;
    assert_int_equal(parley_dash_report(d, PK_A, "a", r, T0 + s * 1000),
                     PARLEY_OK);
    parley_dash_tick(d, T0 + s * 1000 + 10, 1);
  }
  memset(&c, 0, sizeof c);
  parley_dash_history(d, PARLEY_DASH_THROUGHPUT, PARLEY_DASH_COARSE, NULL, 0,
                      collect, &c);
  assert_int_equal(c.n, 2);
  assert_int_equal(c.p[0].t, T0);
  /* second 0 has no rate yet: the mean of seconds 1..59 */
  assert_near(c.p[0].v[0], 10.0);
  assert_int_equal(c.p[1].t, T0 + 60000);
  /* second 60 still carries the 10/s rate of 59 -> 60 */
  assert_near(c.p[1].v[0], (10.0 + 59 * 30.0) / 60.0);
  memset(&c, 0, sizeof c);
  parley_dash_history(d, PARLEY_DASH_LATENCY, PARLEY_DASH_COARSE, NULL, 0,
                      collect, &c);
  assert_int_equal(c.n, 2);
  assert_near(c.p[0].v[0], 0.75); /* from the minute's merged buckets */
  memset(&c, 0, sizeof c);
  parley_dash_history(d, PARLEY_DASH_PEERS, PARLEY_DASH_COARSE, NULL, 0,
                      collect, &c);
  assert_int_equal(c.n, 2);
  assert_near(c.p[1].v[0], 1);
  /* The minute in progress (second 120 only). */
  assert_int_equal(parley_dash_latest(d, PARLEY_DASH_THROUGHPUT,
                                      PARLEY_DASH_COARSE, NULL,
                                      T0 + 120 * 1000 + 500, &p),
                   1);
  assert_int_equal(p.t, T0 + 120000);
  assert_near(p.v[0], 30.0);
  assert_int_equal(parley_dash_latest(d, PARLEY_DASH_THROUGHPUT,
                                      PARLEY_DASH_FINE, NULL,
                                      T0 + 120 * 1000 + 500, &p),
                   1);
  assert_int_equal(p.t, T0 + 120000);
  parley_dash_free(d);
}

struct evs {
  struct parley_dash_event e[300];
  size_t n;
};

static void collect_ev(void *ctx, const struct parley_dash_event *e) {
  struct evs *c = ctx;
  c->e[c->n++] = *e;
}

static void test_events_and_churn(void **state) {
  struct parley_dash *d = new_dash(NULL);
  struct parley_dash_now now;
  static struct evs c;
  (void)state;

  assert_int_equal(parley_dash_report(d, PK_A, "a", rep(1, 0, 0), T0),
                   PARLEY_OK);
  parley_dash_event(d, PARLEY_DASH_JOIN, PK_A, "a", T0);
  parley_dash_event(d, PARLEY_DASH_JOIN, PK_B, "b", T0 + 1000);
  parley_dash_event(d, PARLEY_DASH_EXPIRE, PK_A, "a", T0 + 30000);
  /* An expired peer's figures are forgotten. */
  assert_null(parley_dash_peer(d, PK_A));
  parley_dash_now(d, T0 + 30000, &now);
  assert_int_equal(now.churn_per_min, 3);
  parley_dash_now(d, T0 + 61000, &now); /* the first two are older */
  assert_int_equal(now.churn_per_min, 1);
  memset(&c, 0, sizeof c);
  parley_dash_foreach_event(d, 0, 10, collect_ev, &c);
  assert_int_equal(c.n, 3);
  assert_int_equal(c.e[0].kind, PARLEY_DASH_EXPIRE); /* newest first */
  assert_string_equal(c.e[2].name, "a");
  memset(&c, 0, sizeof c);
  parley_dash_foreach_event(d, T0 + 500, 10, collect_ev, &c);
  assert_int_equal(c.n, 2);
  /* The ring keeps the newest PARLEY_DASH_MAX_EVENTS. */
  for (int i = 0; i < 250; i++)
    parley_dash_event(d, PARLEY_DASH_JOIN, PK_B, "b", T0 + 40000 + i);
  memset(&c, 0, sizeof c);
  parley_dash_foreach_event(d, 0, 1000, collect_ev, &c);
  assert_int_equal(c.n, PARLEY_DASH_MAX_EVENTS);
  assert_int_equal(c.e[0].t, T0 + 40249);
  parley_dash_free(d);
}

struct tops {
  struct parley_dash_topic t[8];
  char names[8][32];
  size_t n;
};

static int collect_topic(void *ctx, const struct parley_dash_topic *t) {
  struct tops *c = ctx;
  c->t[c->n] = *t;
  snprintf(c->names[c->n], sizeof c->names[0], "%s", t->topic);
  c->n++;
  return 0;
}

static void report_topics(struct parley_dash *d, const uint8_t *pk,
                          uint64_t up, uint64_t n, int publisher,
                          int64_t at, int expect) {
  struct parley_report *r = rep(up, n, n);
  const char *names[3] = {"news", "sport", "extra"};
  for (int i = 0; i < 3; i++) {
    r->topics[i].topic.ptr = names[i];
    r->topics[i].topic.len = strlen(names[i]);
    r->topics[i].flags =
        (uint8_t)((publisher ? PARLEY_REPORT_T_PUBLISHER : 0) |
                  PARLEY_REPORT_T_LATENCY);
    r->topics[i].msgs_out = publisher ? n : 0;
    r->topics[i].msgs_in = publisher ? 0 : n;
    r->topics[i].lat[3] = publisher ? 0 : n;
  }
  r->ntopics = 3;
  assert_int_equal(parley_dash_report(d, pk, NULL, r, at), expect);
}

static void test_topics(void **state) {
  struct parley_dash_config cfg = {.max_topics = 2, .max_peers = 2};
  struct parley_dash *d = new_dash(&cfg);
  struct parley_dash_topic t;
  struct parley_dash_stats st;
  struct tops c;
  static const uint8_t pk_c[32] = {3};
  (void)state;

  /* Two topics fit; the third is not tracked (the rest still is). */
  report_topics(d, PK_A, 1000, 0, 1, T0, PARLEY_ELIMIT);
  report_topics(d, PK_B, 1000, 0, 0, T0, PARLEY_ELIMIT);
  report_topics(d, PK_A, 3000, 40, 1, T0 + 2000, PARLEY_ELIMIT);
  report_topics(d, PK_B, 3000, 60, 0, T0 + 2000, PARLEY_ELIMIT);
  assert_int_equal(parley_dash_topic(d, "news", T0 + 2000, &t), PARLEY_OK);
  assert_int_equal(t.publishers, 1);
  assert_int_equal(t.reporters, 2);
  assert_near(t.msgs_out_per_s, 20.0);
  assert_near(t.msgs_in_per_s, 30.0);
  /* B's 60 deliveries in (0.25, 0.5] ms */
  assert_near(t.latency_p50_ms, 0.375);
  assert_int_equal(parley_dash_topic(d, "extra", T0, &t), PARLEY_ENOTFOUND);
  memset(&c, 0, sizeof c);
  parley_dash_foreach_topic(d, T0 + 2000, collect_topic, &c);
  assert_int_equal(c.n, 2);
  /* A third peer is over max_peers. */
  assert_int_equal(
      parley_dash_report(d, pk_c, NULL, rep(1, 0, 0), T0), PARLEY_ELIMIT);
  parley_dash_get_stats(d, &st);
  assert_int_equal(st.peers_untracked, 1);
  assert_int_equal(st.topics_untracked, 4);
  assert_int_equal(st.topics, 2);
  /* Stale peers: the topic has no fresh reporter. */
  memset(&c, 0, sizeof c);
  parley_dash_foreach_topic(d, T0 + 60000, collect_topic, &c);
  assert_int_equal(c.n, 0);
  /* Per-topic latency history, at the tick. */
  parley_dash_tick(d, T0 + 2000, 2);
  {
    struct pts p;
    memset(&p, 0, sizeof p);
    parley_dash_history(d, PARLEY_DASH_TOPIC_LATENCY, PARLEY_DASH_FINE,
                        "sport", 0, collect, &p);
    assert_int_equal(p.n, 1);
    assert_near(p.p[0].v[0], 0.375);
  }
  /* When both expire the topics are released. */
  parley_dash_event(d, PARLEY_DASH_EXPIRE, PK_A, "a", T0 + 3000);
  parley_dash_event(d, PARLEY_DASH_EXPIRE, PK_B, "b", T0 + 3000);
  parley_dash_get_stats(d, &st);
  assert_int_equal(st.topics, 0);
  assert_int_equal(st.peers, 0);
  parley_dash_free(d);
}

/* ---- the fake reporting peer (--report-client) --------------------------- */

int parley_test_report_client(int argc, char **argv);

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rates_from_two_reports),
      cmocka_unit_test(test_restart_and_min_interval),
      cmocka_unit_test(test_quantiles),
      cmocka_unit_test(test_latency_window_and_cluster),
      cmocka_unit_test(test_fine_ring),
      cmocka_unit_test(test_coarse_minutes),
      cmocka_unit_test(test_events_and_churn),
      cmocka_unit_test(test_topics),
  };
  if (argc > 1 && strcmp(argv[1], "--report-client") == 0)
    return parley_test_report_client(argc - 1, argv + 1);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* ---- the fake reporting peer --------------------------------------------
 *
 *   test_dash --report-client --index HOST:PORT[,HOST:PORT...] --name NAME
 *             [--topic T]... [--publish] [--rate N] [--in-rate N]
 *             [--latency-ms X] [--errors N] [--outbox N] [--interval MS]
 *             [--control FILE]
 *
 * Registers NAME with the index (following ENOTLEADER redirects),
 * subscribes to the topics, heartbeats, and every --interval sends a
 * REPORT as a daemon that publishes N msgs/s per topic (--publish), has
 * N msgs/s delivered per topic (--in-rate) each after X ms, N errors/s and
 * an outbox of N.  --control names a file of key=value lines (rate,
 * in_rate, latency_ms, errors, outbox) re-read before each report, so a
 * test can change the figures while it runs.  Prints one line
 * "report-client ready id=ID name=NAME" once registered. */
#include <signal.h>
#include <sodium.h>
#include <unistd.h>
#include <uv.h>

#include "core/util.h"
#include "crypto/identity.h"
#include "net/link.h"
#include "wire/report_wire.h"

#define RC_MAX_INDEX 8
#define RC_MAX_TOPICS 8

static const double rc_bounds_ms[17] = {0.05, 0.1, 0.25, 0.5,  1,    2.5,
                                        5,    10,  25,   50,   100,  250,
                                        500,  1000, 2500, 5000, 10000};

static struct rc_state {
  uv_loop_t *loop;
  struct parley_identity id;
  struct parley_net *net;
  struct parley_link *link;
  char index[RC_MAX_INDEX][128];
  size_t nindex, cur;
  char redirect[128];
  char name[PARLEY_MAX_NAME + 1], addr[64];
  char topics[RC_MAX_TOPICS][64];
  size_t ntopics;
  int publish, printed, registered;
  double rate, in_rate, latency_ms, err_rate, outbox;
  const char *control;
  unsigned interval_ms;
  uint32_t req;
  uint64_t lease_ms, start_ms, last_ms;
  double out_n, in_n, err_n; /* per topic (or total without topics) */
  uint64_t lat[PARLEY_REPORT_LAT_BUCKETS];
  uv_timer_t report_timer, hb_timer, redial_timer;
  uv_signal_t sigterm, sigint;
} rc;

static void rc_dial(void);

static void rc_read_control(void) {
  char line[128];
  FILE *f;

  if (rc.control == NULL || (f = fopen(rc.control, "r")) == NULL)
    return;
  while (fgets(line, sizeof line, f) != NULL) {
    char *eq = strchr(line, '=');
    double v;
    if (eq == NULL)
      continue;
    *eq = '\0';
    v = strtod(eq + 1, NULL);
    if (strcmp(line, "rate") == 0)
      rc.rate = v;
    else if (strcmp(line, "in_rate") == 0)
      rc.in_rate = v;
    else if (strcmp(line, "latency_ms") == 0)
      rc.latency_ms = v;
    else if (strcmp(line, "errors") == 0)
      rc.err_rate = v;
    else if (strcmp(line, "outbox") == 0)
      rc.outbox = v;
  }
  fclose(f);
}

static void rc_send(struct parley_frame *f) {
  if (rc.link != NULL && parley_link_send(rc.link, f) < 0)
    parley_link_close(rc.link, PARLEY_ECLOSED);
}

static void on_report_timer(uv_timer_t *t) {
  static struct parley_report r;
  static uint8_t buf[PARLEY_REPORT_MAX_LEN];
  struct parley_frame f;
  uint64_t now = uv_now(rc.loop);
  double dt = (double)(now - rc.last_ms) / 1000.0;
  size_t n = 0, bucket = 17, k = rc.ntopics ? rc.ntopics : 1;
  (void)t;

  rc_read_control();
  rc.last_ms = now;
  for (size_t i = 0; i < 17; i++)
    if (rc.latency_ms <= rc_bounds_ms[i]) {
      bucket = i;
      break;
    }
  if (rc.publish)
    rc.out_n += rc.rate * dt;
  {
    double before = floor(rc.in_n);
    rc.in_n += rc.in_rate * dt;
    rc.lat[bucket] += (uint64_t)(floor(rc.in_n) - before);
  }
  rc.err_n += rc.err_rate * dt;
  memset(&r, 0, sizeof r);
  r.uptime_ms = now - rc.start_ms;
  r.msgs_out = (uint64_t)floor(rc.out_n) * k;
  r.msgs_in = (uint64_t)floor(rc.in_n) * k;
  r.bytes_out = r.msgs_out * 100;
  r.bytes_in = r.msgs_in * 100;
  r.errors = (uint64_t)floor(rc.err_n);
  r.outbox_depth = (uint64_t)rc.outbox;
  r.links_open = 1;
  r.rss_bytes = 4u << 20;
  r.open_fds = 9;
  r.cpu_ms = (now - rc.start_ms) / 50; /* 2% of a core */
  for (size_t i = 0; i < PARLEY_REPORT_LAT_BUCKETS; i++)
    r.lat[i] = rc.lat[i] * k;
  r.lat_sum_us = (uint64_t)((double)r.msgs_in * rc.latency_ms * 1000.0);
  for (size_t i = 0; i < rc.ntopics; i++) {
    struct parley_report_topic *x = &r.topics[i];
    x->topic.ptr = rc.topics[i];
    x->topic.len = strlen(rc.topics[i]);
    x->flags = PARLEY_REPORT_T_SUBSCRIBER | PARLEY_REPORT_T_LATENCY |
               (rc.publish ? PARLEY_REPORT_T_PUBLISHER : 0);
    x->msgs_out = (uint64_t)floor(rc.out_n);
    x->msgs_in = (uint64_t)floor(rc.in_n);
    x->bytes_out = x->msgs_out * 100;
    x->bytes_in = x->msgs_in * 100;
    memcpy(x->lat, rc.lat, sizeof x->lat);
  }
  r.ntopics = rc.ntopics;
  if (parley_report_encode(&r, buf, sizeof buf, &n) < 0)
    return;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_REPORT;
  f.u.opaque.data = buf;
  f.u.opaque.len = n;
  rc_send(&f);
}

static void on_hb_timer(uv_timer_t *t) {
  struct parley_frame f;
  (void)t;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_HEARTBEAT;
  f.u.req.req = ++rc.req;
  rc_send(&f);
}

static void rc_open(struct parley_link *l) {
  struct parley_frame f;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_REGISTER;
  f.u.reg.req = 1;
  f.u.reg.addr.ptr = rc.addr;
  f.u.reg.addr.len = strlen(rc.addr);
  f.u.reg.name.ptr = rc.name;
  f.u.reg.name.len = strlen(rc.name);
  rc.req = 100;
  (void)l;
  rc_send(&f);
}

static void rc_frame(struct parley_link *l, const struct parley_frame *f) {
  (void)l;
  if (f->type == PARLEY_FRAME_ERROR && f->u.error.req == 1) {
    if (f->u.error.code == (uint16_t)-PARLEY_ENOTLEADER &&
        f->u.error.text.len > 0 &&
        f->u.error.text.len < sizeof rc.redirect) {
      memcpy(rc.redirect, f->u.error.text.ptr, f->u.error.text.len);
      rc.redirect[f->u.error.text.len] = '\0';
    }
    parley_link_close(rc.link, PARLEY_ECLOSED);
    return;
  }
  if (f->type == PARLEY_FRAME_OK && f->u.ok.req == 1 && !rc.registered) {
    char id[PARLEY_ID_TEXT_LEN + 1];
    rc.registered = 1;
    rc.lease_ms = f->u.ok.value ? f->u.ok.value : 10000;
    for (size_t i = 0; i < rc.ntopics; i++) {
      struct parley_frame s;
      memset(&s, 0, sizeof s);
      s.type = PARLEY_FRAME_SUBSCRIBE;
      s.u.topic.req = 2 + (uint32_t)i;
      s.u.topic.topic.ptr = rc.topics[i];
      s.u.topic.topic.len = strlen(rc.topics[i]);
      rc_send(&s);
    }
    uv_timer_start(&rc.hb_timer, on_hb_timer, rc.lease_ms / 3,
                   rc.lease_ms / 3);
    rc.last_ms = uv_now(rc.loop);
    on_report_timer(&rc.report_timer);
    uv_timer_start(&rc.report_timer, on_report_timer, rc.interval_ms,
                   rc.interval_ms);
    if (!rc.printed) {
      rc.printed = 1;
      parley_id_encode(rc.id.pk, id);
      printf("report-client ready id=%s name=%s\n", id, rc.name);
      fflush(stdout);
    }
  }
}

static void on_redial(uv_timer_t *t) {
  (void)t;
  rc_dial();
}

static void rc_close(struct parley_link *l, int reason) {
  (void)l;
  (void)reason;
  rc.link = NULL;
  rc.registered = 0;
  uv_timer_stop(&rc.report_timer);
  uv_timer_stop(&rc.hb_timer);
  if (rc.redirect[0] == '\0')
    rc.cur = (rc.cur + 1) % rc.nindex;
  uv_timer_start(&rc.redial_timer, on_redial, 300, 0);
}

static const struct parley_link_cbs rc_cbs = {rc_open, rc_frame, rc_close};

static void rc_dial(void) {
  char host[128];
  uint16_t port = 0;
  const char *to = rc.redirect[0] ? rc.redirect : rc.index[rc.cur];

  if (parley_parse_hostport(to, host, sizeof host, &port) < 0 ||
      parley_net_connect(rc.net, host, port, NULL, &rc_cbs, NULL,
                         &rc.link) < 0) {
    rc.link = NULL;
    rc.redirect[0] = '\0';
    rc.cur = (rc.cur + 1) % rc.nindex;
    uv_timer_start(&rc.redial_timer, on_redial, 300, 0);
    return;
  }
  rc.redirect[0] = '\0';
}

static void on_term(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  _exit(0); /* a test helper: nothing to flush */
}

static int rc_usage(void) {
  fprintf(stderr, "usage: test_dash --report-client --index HOST:PORT[,...] "
                  "--name NAME [--topic T]... [--publish] [--rate N] "
                  "[--in-rate N] [--latency-ms X] [--errors N] [--outbox N] "
                  "[--interval MS] [--control FILE]\n");
  return 2;
}

int parley_test_report_client(int argc, char **argv) {
  struct parley_net_config cfg;
  uint8_t rnd[2];

  memset(&rc, 0, sizeof rc);
  rc.interval_ms = 1000;
  rc.latency_ms = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--publish") == 0) {
      rc.publish = 1;
      continue;
    }
    if (v == NULL)
      return rc_usage();
    i++;
    if (strcmp(a, "--index") == 0) {
      const char *p = v;
      while (*p != '\0' && rc.nindex < RC_MAX_INDEX) {
        size_t len = strcspn(p, ",");
        if (len > 0 && len < sizeof rc.index[0]) {
          memcpy(rc.index[rc.nindex], p, len);
          rc.index[rc.nindex++][len] = '\0';
        }
        p += len;
        if (*p == ',')
          p++;
      }
    } else if (strcmp(a, "--name") == 0) {
      snprintf(rc.name, sizeof rc.name, "%s", v);
    } else if (strcmp(a, "--topic") == 0 && rc.ntopics < RC_MAX_TOPICS) {
      snprintf(rc.topics[rc.ntopics++], sizeof rc.topics[0], "%s", v);
    } else if (strcmp(a, "--rate") == 0) {
      rc.rate = strtod(v, NULL);
    } else if (strcmp(a, "--in-rate") == 0) {
      rc.in_rate = strtod(v, NULL);
    } else if (strcmp(a, "--latency-ms") == 0) {
      rc.latency_ms = strtod(v, NULL);
    } else if (strcmp(a, "--errors") == 0) {
      rc.err_rate = strtod(v, NULL);
    } else if (strcmp(a, "--outbox") == 0) {
      rc.outbox = strtod(v, NULL);
    } else if (strcmp(a, "--interval") == 0) {
      rc.interval_ms = (unsigned)strtoul(v, NULL, 10);
    } else if (strcmp(a, "--control") == 0) {
      rc.control = v;
    } else {
      return rc_usage();
    }
  }
  if (rc.nindex == 0 || rc.name[0] == '\0' || rc.interval_ms < 100)
    return rc_usage();
  signal(SIGPIPE, SIG_IGN);
  rc.loop = uv_default_loop();
  if (parley_crypto_init() < 0 || parley_identity_generate(&rc.id) < 0)
    return 1;
  /* A made-up listen address: nothing connects to a fake peer. */
  randombytes_buf(rnd, sizeof rnd);
  snprintf(rc.addr, sizeof rc.addr, "127.0.0.1:%u",
           20000u + ((unsigned)rnd[0] << 8 | rnd[1]) % 30000u);
  memset(&cfg, 0, sizeof cfg);
  cfg.loop = rc.loop;
  cfg.id = &rc.id;
  cfg.role = PARLEY_ROLE_PEER;
  cfg.name = rc.name;
  cfg.max_links = 4;
  if (parley_net_new(&cfg, &rc.net) < 0)
    return 1;
  parley_net_set_addr(rc.net, rc.addr);
  uv_timer_init(rc.loop, &rc.report_timer);
  uv_timer_init(rc.loop, &rc.hb_timer);
  uv_timer_init(rc.loop, &rc.redial_timer);
  uv_signal_init(rc.loop, &rc.sigterm);
  uv_signal_init(rc.loop, &rc.sigint);
  uv_signal_start(&rc.sigterm, on_term, SIGTERM);
  uv_signal_start(&rc.sigint, on_term, SIGINT);
  rc.start_ms = uv_now(rc.loop);
  rc_dial();
  return uv_run(rc.loop, UV_RUN_DEFAULT) == 0 ? 0 : 1;
}
