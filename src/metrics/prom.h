/*
 * prom.h — Prometheus text exposition (version 0.0.4) helpers and a
 * fixed-bucket histogram.  Pure: the daemons gather their own figures and
 * write them with these functions when /metrics is asked for.
 *
 * Metric names follow Prometheus conventions: "parley_" prefix, base units
 * in the name (_seconds, _bytes), counters end in _total.  labels is NULL or
 * a preformatted label list without braces, e.g. `topic="news"` (values
 * must already be escaped with parley_prom_escape).
 */
#ifndef PARLEY_METRICS_PROM_H
#define PARLEY_METRICS_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define PARLEY_HIST_MAX_BUCKETS 24

struct parley_histogram {
  double bounds[PARLEY_HIST_MAX_BUCKETS]; /* upper bounds, ascending */
  uint64_t counts[PARLEY_HIST_MAX_BUCKETS + 1]; /* last = +Inf */
  size_t nbounds;
  double sum;
  uint64_t count;
};

/* Default latency buckets in seconds: 50us .. 10s. */
void parley_histogram_init_latency(struct parley_histogram *h)
    PARLEY_NONNULL(1);
/* bounds must be ascending; n <= PARLEY_HIST_MAX_BUCKETS. */
PARLEY_NODISCARD int parley_histogram_init(struct parley_histogram *h,
                                           const double *bounds, size_t n)
    PARLEY_NONNULL(1);
void parley_histogram_observe(struct parley_histogram *h, double v)
    PARLEY_NONNULL(1);
/* Estimates the q-quantile (0..1) by linear interpolation in its bucket;
 * 0 when empty. */
double parley_histogram_quantile(const struct parley_histogram *h, double q)
    PARLEY_NONNULL(1);

/* Writes "# HELP" and "# TYPE" lines. type: "counter", "gauge",
 * "histogram". */
PARLEY_NODISCARD int parley_prom_header(struct parley_buf *out,
                                        const char *name, const char *type,
                                        const char *help)
    PARLEY_NONNULL(1, 2, 3, 4);
/* Writes one sample line: name{labels} value. */
PARLEY_NODISCARD int parley_prom_sample(struct parley_buf *out,
                                        const char *name, const char *labels,
                                        double value) PARLEY_NONNULL(1, 2);
/* Header + one sample, for the common unlabelled case. */
PARLEY_NODISCARD int parley_prom_metric(struct parley_buf *out,
                                        const char *name, const char *type,
                                        const char *help, double value)
    PARLEY_NONNULL(1, 2, 3, 4);
/* Writes the _bucket/_sum/_count lines of a histogram (no header). */
PARLEY_NODISCARD int parley_prom_histogram(struct parley_buf *out,
                                           const char *name,
                                           const char *labels,
                                           const struct parley_histogram *h)
    PARLEY_NONNULL(1, 2, 4);
/* Escapes a label value (backslash, quote, newline) into out (cap bytes,
 * truncated, always NUL-terminated). */
void parley_prom_escape(const char *in, char *out, size_t cap)
    PARLEY_NONNULL(1, 2);

#endif
