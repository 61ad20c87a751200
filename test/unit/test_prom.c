/* test_prom.c — exact Prometheus text output, histogram maths, escaping. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "metrics/prom.h"

/* Appends a NUL (not counted) so the buffer can be compared as a string. */
static const char *text(struct parley_buf *b) {
  assert_int_equal(parley_buf_reserve(b, 1), PARLEY_OK);
  b->data[b->len] = '\0';
  return (const char *)b->data;
}

static void test_counter(void **state) {
  struct parley_buf b;
  (void)state;

  parley_buf_init(&b, 4096);
  assert_int_equal(parley_prom_metric(&b, "parley_messages_total", "counter",
                                      "Messages received.", 42),
                   PARLEY_OK);
  assert_string_equal(text(&b),
                      "# HELP parley_messages_total Messages received.\n"
                      "# TYPE parley_messages_total counter\n"
                      "parley_messages_total 42\n");
  parley_buf_close(&b);
}

static void test_gauge_labels(void **state) {
  struct parley_buf b;
  char esc[64], labels[96];
  (void)state;

  parley_buf_init(&b, 4096);
  assert_int_equal(parley_prom_header(&b, "parley_queue_bytes", "gauge",
                                      "Bytes queued, per \\topic\nand peer."),
                   PARLEY_OK);
  assert_int_equal(
      parley_prom_sample(&b, "parley_queue_bytes", "topic=\"news\"", 3.5),
      PARLEY_OK);
  parley_prom_escape("we\"ird\\\nname", esc, sizeof esc);
  snprintf(labels, sizeof labels, "topic=\"%s\",peer=\"a\"", esc);
  assert_int_equal(parley_prom_sample(&b, "parley_queue_bytes", labels, -2),
                   PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "parley_queue_bytes", "", 0.1),
                   PARLEY_OK);
  assert_string_equal(
      text(&b),
      "# HELP parley_queue_bytes Bytes queued, per \\\\topic\\nand peer.\n"
      "# TYPE parley_queue_bytes gauge\n"
      "parley_queue_bytes{topic=\"news\"} 3.5\n"
      "parley_queue_bytes{topic=\"we\\\"ird\\\\\\nname\",peer=\"a\"} -2\n"
      "parley_queue_bytes 0.1\n");
  parley_buf_close(&b);
}

static void fill(struct parley_histogram *h) {
  static const double bounds[] = {0.25, 0.5, 1};
  assert_int_equal(parley_histogram_init(h, bounds, 3), PARLEY_OK);
  parley_histogram_observe(h, 0.125);
  parley_histogram_observe(h, 0.25); /* le is inclusive */
  parley_histogram_observe(h, 0.375);
  parley_histogram_observe(h, 0.75);
  parley_histogram_observe(h, 4);
  parley_histogram_observe(h, NAN); /* dropped */
}

static void test_histogram_text(void **state) {
  struct parley_histogram h;
  struct parley_buf b;
  (void)state;

  fill(&h);
  assert_int_equal(h.count, 5);
  assert_int_equal(h.counts[0], 2);
  assert_int_equal(h.counts[1], 1);
  assert_int_equal(h.counts[2], 1);
  assert_int_equal(h.counts[3], 1);
  parley_buf_init(&b, 4096);
  assert_int_equal(parley_prom_header(&b, "parley_latency_seconds",
                                      "histogram", "Latency."),
                   PARLEY_OK);
  assert_int_equal(
      parley_prom_histogram(&b, "parley_latency_seconds", "op=\"get\"", &h),
      PARLEY_OK);
  assert_int_equal(
      parley_prom_histogram(&b, "parley_latency_seconds", NULL, &h),
      PARLEY_OK);
  assert_string_equal(
      text(&b),
      "# HELP parley_latency_seconds Latency.\n"
      "# TYPE parley_latency_seconds histogram\n"
      "parley_latency_seconds_bucket{op=\"get\",le=\"0.25\"} 2\n"
      "parley_latency_seconds_bucket{op=\"get\",le=\"0.5\"} 3\n"
      "parley_latency_seconds_bucket{op=\"get\",le=\"1\"} 4\n"
      "parley_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 5\n"
      "parley_latency_seconds_sum{op=\"get\"} 5.5\n"
      "parley_latency_seconds_count{op=\"get\"} 5\n"
      "parley_latency_seconds_bucket{le=\"0.25\"} 2\n"
      "parley_latency_seconds_bucket{le=\"0.5\"} 3\n"
      "parley_latency_seconds_bucket{le=\"1\"} 4\n"
      "parley_latency_seconds_bucket{le=\"+Inf\"} 5\n"
      "parley_latency_seconds_sum 5.5\n"
      "parley_latency_seconds_count 5\n");
  parley_buf_close(&b);
}

static void test_latency_buckets(void **state) {
  struct parley_histogram h;
  struct parley_buf b;
  (void)state;

  parley_histogram_init_latency(&h);
  assert_int_equal(h.nbounds, 17);
  assert_true(h.bounds[0] == 0.00005);
  assert_true(h.bounds[16] == 10);
  parley_histogram_observe(&h, 0.0003);
  parley_histogram_observe(&h, 11);
  parley_buf_init(&b, 8192);
  assert_int_equal(parley_prom_histogram(&b, "rt", NULL, &h), PARLEY_OK);
  assert_string_equal(text(&b), "rt_bucket{le=\"5e-05\"} 0\n"
                                "rt_bucket{le=\"0.0001\"} 0\n"
                                "rt_bucket{le=\"0.00025\"} 0\n"
                                "rt_bucket{le=\"0.0005\"} 1\n"
                                "rt_bucket{le=\"0.001\"} 1\n"
                                "rt_bucket{le=\"0.0025\"} 1\n"
                                "rt_bucket{le=\"0.005\"} 1\n"
                                "rt_bucket{le=\"0.01\"} 1\n"
                                "rt_bucket{le=\"0.025\"} 1\n"
                                "rt_bucket{le=\"0.05\"} 1\n"
                                "rt_bucket{le=\"0.1\"} 1\n"
                                "rt_bucket{le=\"0.25\"} 1\n"
                                "rt_bucket{le=\"0.5\"} 1\n"
                                "rt_bucket{le=\"1\"} 1\n"
                                "rt_bucket{le=\"2.5\"} 1\n"
                                "rt_bucket{le=\"5\"} 1\n"
                                "rt_bucket{le=\"10\"} 1\n"
                                "rt_bucket{le=\"+Inf\"} 2\n"
                                "rt_sum 11.0003\n"
                                "rt_count 2\n");
  parley_buf_close(&b);
}

static void test_quantile(void **state) {
  struct parley_histogram h;
  static const double neg[] = {-1, 0, 1};
  (void)state;

  fill(&h);
  assert_true(parley_histogram_quantile(&h, 0.5) == 0.375);
  assert_true(parley_histogram_quantile(&h, 0.2) == 0.125);
  assert_true(parley_histogram_quantile(&h, 0.0) == 0);
  assert_true(parley_histogram_quantile(&h, 0.7) == 0.75); /* 0.5 + 0.5*0.5 */
  assert_true(parley_histogram_quantile(&h, 0.9) == 1); /* +Inf bucket */
  assert_true(parley_histogram_quantile(&h, 1.0) == 1);
  assert_true(parley_histogram_quantile(&h, 7.0) == 1); /* clamped */
  assert_true(isnan(parley_histogram_quantile(&h, NAN)));

  assert_int_equal(parley_histogram_init(&h, neg, 3), PARLEY_OK);
  assert_true(parley_histogram_quantile(&h, 0.5) == 0); /* empty */
  parley_histogram_observe(&h, -5);
  parley_histogram_observe(&h, 0.5);
  /* First bucket with a bound <= 0 has no lower edge: its bound is used. */
  assert_true(parley_histogram_quantile(&h, 0.25) == -1);
  assert_true(parley_histogram_quantile(&h, 1.0) == 1);

  /* No finite bounds: only the mean is known. */
  assert_int_equal(parley_histogram_init(&h, NULL, 0), PARLEY_OK);
  parley_histogram_observe(&h, 2);
  parley_histogram_observe(&h, 4);
  assert_true(parley_histogram_quantile(&h, 0.5) == 3);
}

static void test_histogram_init_errors(void **state) {
  struct parley_histogram h;
  static const double bad[] = {1, 1};
  static const double inf[] = {1, INFINITY};
  double many[PARLEY_HIST_MAX_BUCKETS + 1];
  size_t i;
  (void)state;

  for (i = 0; i < sizeof many / sizeof many[0]; i++)
    many[i] = (double)i;
  assert_int_equal(parley_histogram_init(&h, bad, 2), PARLEY_EINVAL);
  assert_int_equal(parley_histogram_init(&h, inf, 2), PARLEY_EINVAL);
  assert_int_equal(parley_histogram_init(&h, NULL, 1), PARLEY_EINVAL);
  assert_int_equal(
      parley_histogram_init(&h, many, PARLEY_HIST_MAX_BUCKETS + 1),
      PARLEY_EINVAL);
  assert_int_equal(parley_histogram_init(&h, many, PARLEY_HIST_MAX_BUCKETS),
                   PARLEY_OK);
}

static void test_numbers(void **state) {
  struct parley_buf b;
  (void)state;

  parley_buf_init(&b, 4096);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, 9007199254740991.0),
                   PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, 9007199254740992.0),
                   PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, 1e20), PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, 1.0 / 3), PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, 0.1 + 0.2), PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, -0.0), PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, 1.5e-300), PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, INFINITY), PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, -INFINITY), PARLEY_OK);
  assert_int_equal(parley_prom_sample(&b, "a", NULL, NAN), PARLEY_OK);
  assert_string_equal(text(&b), "a 9007199254740991\n"
                                "a 9007199254740992\n"
                                "a 1e+20\n"
                                "a 0.3333333333333333\n"
                                "a 0.30000000000000004\n"
                                "a 0\n"
                                "a 1.5e-300\n"
                                "a +Inf\n"
                                "a -Inf\n"
                                "a NaN\n");
  parley_buf_close(&b);
}

static void test_escape(void **state) {
  char out[32];
  (void)state;

  parley_prom_escape("a\\b\"c\nd", out, sizeof out);
  assert_string_equal(out, "a\\\\b\\\"c\\nd");
  parley_prom_escape("plain", out, sizeof out);
  assert_string_equal(out, "plain");
  /* Truncation never splits an escape and always terminates. */
  parley_prom_escape("ab\"cd", out, 5);
  assert_string_equal(out, "ab\\\"");
  parley_prom_escape("ab\"cd", out, 4);
  assert_string_equal(out, "ab");
  parley_prom_escape("abc", out, 1);
  assert_string_equal(out, "");
  out[0] = 'x';
  parley_prom_escape("abc", out, 0); /* nothing written */
  assert_int_equal(out[0], 'x');
}

static void test_errors(void **state) {
  struct parley_histogram h;
  struct parley_buf b;
  (void)state;

  parley_buf_init(&b, 4096);
  assert_int_equal(parley_prom_header(&b, "1bad", "gauge", "x"),
                   PARLEY_EINVAL);
  assert_int_equal(parley_prom_header(&b, "bad name", "gauge", "x"),
                   PARLEY_EINVAL);
  assert_int_equal(parley_prom_header(&b, "ok", "weird", "x"), PARLEY_EINVAL);
  assert_int_equal(parley_prom_sample(&b, "", NULL, 1), PARLEY_EINVAL);
  assert_int_equal(parley_prom_sample(&b, "ok", "a=\"1\"\nb 2", 1),
                   PARLEY_EINVAL);
  assert_int_equal(b.len, 0);
  assert_int_equal(parley_prom_sample(&b, "ns:sub_x9", NULL, 1), PARLEY_OK);
  parley_buf_close(&b);

  /* Out of room: an error and nothing half-written. */
  parley_buf_init(&b, 40);
  assert_int_equal(parley_prom_sample(&b, "first", NULL, 1), PARLEY_OK);
  assert_int_equal(b.len, 8);
  assert_int_equal(
      parley_prom_metric(&b, "second_total", "counter", "A counter.", 2),
      PARLEY_ETOOBIG);
  assert_int_equal(b.len, 8);
  fill(&h);
  assert_int_equal(parley_prom_histogram(&b, "lat", NULL, &h),
                   PARLEY_ETOOBIG);
  assert_int_equal(b.len, 8);
  assert_memory_equal(b.data, "first 1\n", 8);
  parley_buf_close(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter),
      cmocka_unit_test(test_gauge_labels),
      cmocka_unit_test(test_histogram_text),
      cmocka_unit_test(test_latency_buckets),
      cmocka_unit_test(test_quantile),
      cmocka_unit_test(test_histogram_init_errors),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_escape),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
