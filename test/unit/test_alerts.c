/* test_alerts.c — the alert rules (index/alerts.h): the rule file parser
 * and its errors, the defaults, every state transition (pending, reset,
 * fire after for_s, hold, resolve, for_s 0, resolved order), and the
 * cluster hand-over (adopt, reset by metric). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "index/alerts.h"

#define T0 1800000000000ll /* a whole minute, Unix ms */

static void assert_near(double a, double b) {
  if (fabs(a - b) > 1e-9 * (fabs(b) + 1)) {
    print_error("%.12g != %.12g\n", a, b);
    fail();
  }
}

/* ---- alerts ------------------------------------------------------------- */

struct trans {
  int to[16];
  char summary[16][PARLEY_ALERT_SUMMARY_MAX + 1];
  int64_t since[16], until[16];
  size_t n;
};

static void on_trans(void *ctx, int to, const struct parley_alert *a,
                     const struct parley_alert_resolved *r) {
  struct trans *t = ctx;
  t->to[t->n] = to;
  snprintf(t->summary[t->n], sizeof t->summary[0], "%s",
           r != NULL ? r->summary : a->summary);
  t->since[t->n] = r != NULL ? r->since_ms : a->since_ms;
  t->until[t->n] = r != NULL ? r->until_ms : 0;
  t->n++;
}

static void sample(struct parley_alert_sample *s, int metric, double v,
                   const char *detail) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < PARLEY_ALERT_NMETRICS; i++)
    s->v[i] = NAN;
  s->v[metric] = v;
  if (detail != NULL)
    snprintf(s->detail[metric], sizeof s->detail[0], "%s", detail);
}

static void test_alert_transitions(void **state) {
  struct parley_alert_rule rule;
  struct parley_alerts *a = NULL;
  struct parley_alert_sample s;
  struct trans t;
  const char *txt = "[{\"name\":\"outbox\",\"metric\":\"outbox_depth\","
                    "\"op\":\">\",\"threshold\":1000,\"for_s\":10,"
                    "\"severity\":\"warning\"}]";
  size_t n = 0;
  char err[128];
  (void)state;

  assert_int_equal(parley_alerts_parse(txt, strlen(txt), &rule, 1, &n, err,
                                       sizeof err),
                   PARLEY_OK);
  assert_int_equal(n, 1);
  assert_int_equal(rule.for_ms, 10000);
  assert_int_equal(parley_alerts_new(&rule, 1, &a), PARLEY_OK);
  memset(&t, 0, sizeof t);
  /* Below: nothing.  Above: pending, not firing for 10 s. */
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, 5, NULL);
  parley_alerts_eval(a, &s, T0, on_trans, &t);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_INACTIVE);
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, 1200, "on bob");
  parley_alerts_eval(a, &s, T0 + 1000, on_trans, &t);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_PENDING);
  /* Dropping below while pending resets it. */
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, 10, NULL);
  parley_alerts_eval(a, &s, T0 + 5000, on_trans, &t);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_INACTIVE);
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, 1200, "on bob");
  parley_alerts_eval(a, &s, T0 + 6000, on_trans, &t);
  parley_alerts_eval(a, &s, T0 + 15999, on_trans, &t);
  assert_int_equal(t.n, 0);
  parley_alerts_eval(a, &s, T0 + 16000, on_trans, &t);
  assert_int_equal(t.n, 1);
  assert_int_equal(t.to[0], PARLEY_ALERT_FIRING);
  assert_int_equal(t.since[0], T0 + 16000);
  assert_string_equal(t.summary[0],
                      "outbox depth 1200 > 1000 for 10s on bob");
  /* Held: no new transition while it stays above. */
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, 1500, "on bob");
  parley_alerts_eval(a, &s, T0 + 20000, on_trans, &t);
  assert_int_equal(t.n, 1);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_FIRING);
  assert_near(parley_alerts_get(a, 0)->value, 1500);
  /* No data counts as false: resolved. */
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, NAN, NULL);
  parley_alerts_eval(a, &s, T0 + 25000, on_trans, &t);
  assert_int_equal(t.n, 2);
  assert_int_equal(t.to[1], PARLEY_ALERT_RESOLVED);
  assert_int_equal(t.since[1], T0 + 16000);
  assert_int_equal(t.until[1], T0 + 25000);
  assert_string_equal(t.summary[1],
                      "outbox depth 1500 > 1000 for 10s on bob");
  assert_int_equal(parley_alerts_resolved_count(a), 1);
  assert_near(parley_alerts_resolved(a, 0)->value, 1500);
  assert_int_equal(parley_alerts_get(a, 0)->fired, 1);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_INACTIVE);
  parley_alerts_free(a);
}

static void test_alert_for_zero_and_ops(void **state) {
  struct parley_alert_rule rules[2];
  struct parley_alerts *a = NULL;
  struct parley_alert_sample s;
  struct trans t;
  const char *txt =
      "{\"rules\":[{\"name\":\"nl\",\"metric\":\"no_leader\","
      "\"threshold\":0,\"severity\":\"critical\"},"
      "{\"name\":\"quiet\",\"metric\":\"error_rate\",\"op\":\"<=\","
      "\"threshold\":0.5,\"for_s\":0}]}";
  size_t n = 0;
  char err[128];
  (void)state;

  assert_int_equal(parley_alerts_parse(txt, strlen(txt), rules, 2, &n, err,
                                       sizeof err),
                   PARLEY_OK);
  assert_int_equal(n, 2);
  assert_string_equal(rules[1].severity, "warning"); /* the default */
  assert_int_equal(rules[1].op, PARLEY_ALERT_LE);
  assert_int_equal(parley_alerts_new(rules, 2, &a), PARLEY_OK);
  memset(&t, 0, sizeof t);
  sample(&s, PARLEY_ALERT_NO_LEADER, 1, "(term 3)");
  s.v[PARLEY_ALERT_ERROR_RATE] = 0.5;
  parley_alerts_eval(a, &s, T0, on_trans, &t);
  assert_int_equal(t.n, 2); /* both at once: for_s 0 */
  assert_string_equal(t.summary[0], "no leader for 0s (term 3)");
  /* Resolved entries come back newest first. */
  sample(&s, PARLEY_ALERT_NO_LEADER, 0, NULL);
  s.v[PARLEY_ALERT_ERROR_RATE] = 0.5;
  parley_alerts_eval(a, &s, T0 + 1000, on_trans, &t);
  s.v[PARLEY_ALERT_ERROR_RATE] = 2;
  parley_alerts_eval(a, &s, T0 + 2000, on_trans, &t);
  assert_int_equal(t.n, 4);
  assert_string_equal(parley_alerts_resolved(a, 0)->name, "quiet");
  assert_string_equal(parley_alerts_resolved(a, 1)->name, "nl");
  assert_null(parley_alerts_resolved(a, 2));
  parley_alerts_free(a);
}

static void test_alert_parse_errors(void **state) {
  struct parley_alert_rule rules[4];
  size_t n = 99;
  char err[160];
  static const char *const bad[] = {
      "not json",
      "{\"name\":\"x\"}",
      "[{\"metric\":\"error_rate\",\"threshold\":1}]",
      "[{\"name\":\"x\",\"metric\":\"cpu\",\"threshold\":1}]",
      "[{\"name\":\"x\",\"metric\":\"error_rate\"}]",
      "[{\"name\":\"x\",\"metric\":\"error_rate\",\"threshold\":1,"
      "\"for\":5}]",
      "[{\"name\":\"x\",\"metric\":\"error_rate\",\"threshold\":1,"
      "\"op\":\"==\"}]",
      "[{\"name\":\"x\",\"metric\":\"error_rate\",\"threshold\":1,"
      "\"severity\":\"page\"}]",
      "[{\"name\":\"x y\",\"metric\":\"error_rate\",\"threshold\":1}]",
      "[{\"name\":\"x\",\"metric\":\"error_rate\",\"threshold\":1,"
      "\"for_s\":-1}]",
      "[{\"name\":\"x\",\"metric\":\"error_rate\",\"threshold\":1},"
      "{\"name\":\"x\",\"metric\":\"node_down\",\"threshold\":0}]",
      "[1,2,3,4,5]",
  };
  (void)state;

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_int_equal(parley_alerts_parse(bad[i], strlen(bad[i]), rules, 4,
                                         &n, err, sizeof err),
                     PARLEY_EINVAL);
    assert_int_equal(n, 0);
    assert_true(err[0] != '\0');
  }
  assert_int_equal(parley_alerts_parse(bad[5], strlen(bad[5]), rules, 4, &n,
                                       err, sizeof err),
                   PARLEY_EINVAL);
  assert_string_equal(err, "rule 1: unknown key \"for\"");
  assert_int_equal(parley_alerts_parse("[]", 2, rules, 4, &n, err,
                                       sizeof err),
                   PARLEY_OK);
  assert_int_equal(n, 0);
  /* The defaults: one rule per metric, all valid. */
  {
    struct parley_alert_rule d[PARLEY_ALERTS_MAX_RULES];
    struct parley_alerts *a = NULL;
    size_t k = parley_alerts_defaults(d, PARLEY_ALERTS_MAX_RULES);
    assert_int_equal(k, PARLEY_ALERT_NMETRICS);
    for (size_t i = 0; i < k; i++)
      assert_int_equal(d[i].metric, (int)i);
    assert_int_equal(parley_alerts_new(d, k, &a), PARLEY_OK);
    parley_alerts_free(a);
  }
}

/* ---- cluster hand-over ---------------------------------------------------- */

static struct parley_alerts *two_rules(void) {
  const char *txt =
      "[{\"name\":\"outbox\",\"metric\":\"outbox_depth\",\"threshold\":100,"
      "\"for_s\":5},"
      "{\"name\":\"nl\",\"metric\":\"no_leader\",\"threshold\":0,"
      "\"for_s\":10,\"severity\":\"critical\"}]";
  struct parley_alert_rule rules[2];
  struct parley_alerts *a = NULL;
  size_t n = 0;
  char err[128];

  assert_int_equal(parley_alerts_parse(txt, strlen(txt), rules, 2, &n, err,
                                       sizeof err),
                   PARLEY_OK);
  assert_int_equal(n, 2);
  assert_int_equal(parley_alerts_new(rules, n, &a), PARLEY_OK);
  return a;
}

/* A new leader adopts what the old one had firing: no second "firing",
 * and the "resolved" comes from the new leader with the old since. */
static void test_alert_adopt(void **state) {
  struct parley_alerts *a = two_rules();
  struct parley_alert_sample s;
  struct trans t;
  (void)state;

  memset(&t, 0, sizeof t);
  assert_int_equal(parley_alerts_adopt(a, "nope", T0, 1, "x", 0),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_alerts_adopt(a, "outbox", T0 - 7000, 150,
                                       "outbox depth 150 > 100 for 5s on bob",
                                       T0 + 1500),
                   PARLEY_OK);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_FIRING);
  assert_int_equal(parley_alerts_get(a, 0)->since_ms, T0 - 7000);
  assert_int_equal(parley_alerts_get(a, 0)->fired, 0);
  /* Adopting again keeps the first since. */
  assert_int_equal(parley_alerts_adopt(a, "outbox", T0, 999, "later", 0),
                   PARLEY_OK);
  assert_int_equal(parley_alerts_get(a, 0)->since_ms, T0 - 7000);
  /* No figures yet (the peers have not reported to this node): held
   * until the hold time, not resolved. */
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, NAN, NULL);
  parley_alerts_eval(a, &s, T0 + 500, on_trans, &t);
  assert_int_equal(t.n, 0);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_FIRING);
  assert_near(parley_alerts_get(a, 0)->value, 150);
  /* Still true: held, nothing announced. */
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, 180, "on bob");
  parley_alerts_eval(a, &s, T0 + 1000, on_trans, &t);
  assert_int_equal(t.n, 0);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_FIRING);
  /* False: resolved, with the adopted since. */
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, 3, NULL);
  parley_alerts_eval(a, &s, T0 + 2000, on_trans, &t);
  assert_int_equal(t.n, 1);
  assert_int_equal(t.to[0], PARLEY_ALERT_RESOLVED);
  assert_int_equal(t.since[0], T0 - 7000);
  assert_int_equal(t.until[0], T0 + 2000);
  assert_string_equal(t.summary[0], "outbox depth 180 > 100 for 5s on bob");
  assert_near(parley_alerts_resolved(a, 0)->value, 180);
  /* Past the hold, no data resolves an adopted alert as usual. */
  assert_int_equal(parley_alerts_adopt(a, "outbox", T0 + 3000, 150, "again",
                                       T0 + 4000),
                   PARLEY_OK);
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, NAN, NULL);
  parley_alerts_eval(a, &s, T0 + 3999, on_trans, &t);
  assert_int_equal(t.n, 1);
  parley_alerts_eval(a, &s, T0 + 4000, on_trans, &t);
  assert_int_equal(t.n, 2);
  assert_int_equal(t.to[1], PARLEY_ALERT_RESOLVED);
  assert_int_equal(t.since[1], T0 + 3000);
  parley_alerts_free(a);
}

/* A leader that steps down forgets the cluster-wide rules (no callback)
 * but keeps judging no_leader itself. */
static void test_alert_reset_by_metric(void **state) {
  struct parley_alerts *a = two_rules();
  struct parley_alert_sample s;
  struct trans t;
  (void)state;

  memset(&t, 0, sizeof t);
  sample(&s, PARLEY_ALERT_OUTBOX_DEPTH, 500, NULL);
  s.v[PARLEY_ALERT_NO_LEADER] = 1;
  parley_alerts_eval(a, &s, T0, on_trans, &t);
  parley_alerts_eval(a, &s, T0 + 10000, on_trans, &t);
  assert_int_equal(t.n, 2);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_FIRING);
  assert_int_equal(parley_alerts_get(a, 1)->state, PARLEY_ALERT_FIRING);
  parley_alerts_reset(a, ~(1u << PARLEY_ALERT_NO_LEADER));
  assert_int_equal(t.n, 2); /* no callback */
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_INACTIVE);
  assert_true(isnan(parley_alerts_get(a, 0)->value));
  assert_int_equal(parley_alerts_get(a, 1)->state, PARLEY_ALERT_FIRING);
  assert_int_equal(parley_alerts_resolved_count(a), 0);
  /* Sampled again as true (this node leads again): a new pending round. */
  parley_alerts_eval(a, &s, T0 + 11000, on_trans, &t);
  assert_int_equal(parley_alerts_get(a, 0)->state, PARLEY_ALERT_PENDING);
  assert_int_equal(t.n, 2);
  parley_alerts_eval(a, &s, T0 + 16000, on_trans, &t);
  assert_int_equal(t.n, 3);
  assert_int_equal(t.to[2], PARLEY_ALERT_FIRING);
  assert_int_equal(parley_alerts_get(a, 0)->fired, 2);
  parley_alerts_reset(a, 0xffffffffu);
  assert_int_equal(parley_alerts_get(a, 1)->state, PARLEY_ALERT_INACTIVE);
  parley_alerts_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alert_transitions),
      cmocka_unit_test(test_alert_for_zero_and_ops),
      cmocka_unit_test(test_alert_parse_errors),
      cmocka_unit_test(test_alert_adopt),
      cmocka_unit_test(test_alert_reset_by_metric),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
