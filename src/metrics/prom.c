/* prom.c — Prometheus text exposition helpers and a fixed-bucket histogram. */
#include "metrics/prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest magnitude below which every integer is exactly representable in a
 * double (2^53); integral values under it print as plain integers. */
#define EXACT_INT_LIMIT 9007199254740992.0

/* Longest text format_number produces: "%.17g" of a double needs at most
 * 24 bytes ("-2.2250738585072014e-308"); the rest is slack. */
#define NUMBUF 40

static const double latency_bounds[] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};

void parley_histogram_init_latency(struct parley_histogram *h) {
  int rc = parley_histogram_init(
      h, latency_bounds, sizeof latency_bounds / sizeof latency_bounds[0]);
  (void)rc; /* cannot fail: the table is ascending and short enough */
}

int parley_histogram_init(struct parley_histogram *h, const double *bounds,
                          size_t n) {
  size_t i;

  if (n > PARLEY_HIST_MAX_BUCKETS || (n > 0 && bounds == NULL))
    return PARLEY_EINVAL;
  for (i = 0; i < n; i++) {
    if (!isfinite(bounds[i]))
      return PARLEY_EINVAL;
    if (i > 0 && !(bounds[i] > bounds[i - 1]))
      return PARLEY_EINVAL;
  }
  memset(h, 0, sizeof *h);
  for (i = 0; i < n; i++)
    h->bounds[i] = bounds[i];
  h->nbounds = n;
  return PARLEY_OK;
}

void parley_histogram_observe(struct parley_histogram *h, double v) {
  size_t i;

  /* A NaN would poison _sum for the life of the process; it can only come
   * from a bug in the caller, so it is dropped rather than recorded. */
  if (isnan(v))
    return;
  for (i = 0; i < h->nbounds; i++)
    if (v <= h->bounds[i])
      break;
  h->counts[i]++; /* i == nbounds is the +Inf bucket */
  h->sum += v;
  h->count++;
}

/* Same estimate as Prometheus' histogram_quantile(): find the bucket holding
 * rank q*count and interpolate linearly between its bounds, taking 0 as the
 * lower edge of the first bucket when that bucket's bound is positive.  A
 * rank that lands in the +Inf bucket yields the highest finite bound. */
double parley_histogram_quantile(const struct parley_histogram *h, double q) {
  double rank, below = 0, lo, hi, frac;
  size_t i;

  if (h->count == 0)
    return 0;
  if (isnan(q))
    return NAN;
  if (q < 0)
    q = 0;
  if (q > 1)
    q = 1;
  rank = q * (double)h->count;
  for (i = 0; i <= h->nbounds; i++) {
    double c = (double)h->counts[i];
    /* Empty buckets are skipped so that q = 0 reports the lower edge of
     * the first bucket that holds anything instead of dividing by 0. */
    if (c > 0 && below + c >= rank)
      break;
    below += c;
  }
  if (i >= h->nbounds) {
    /* +Inf bucket (or rounding ran past the end). */
    if (h->nbounds == 0)
      return h->sum / (double)h->count;
    return h->bounds[h->nbounds - 1];
  }
  hi = h->bounds[i];
  if (i == 0) {
    if (hi <= 0)
      return hi;
    lo = 0;
  } else {
    lo = h->bounds[i - 1];
  }
  frac = (rank - below) / (double)h->counts[i];
  if (frac < 0)
    frac = 0;
  if (frac > 1)
    frac = 1;
  return lo + (hi - lo) * frac;
}

/* Prometheus spelling of a sample value or an le bound.  Integral values
 * below 2^53 print as integers; others use the shortest %g precision that
 * reads back to the same double (what Prometheus' own Go client prints),
 * falling back to %.17g, which always round-trips. */
static void format_number(double v, char *out, size_t cap) {
  int prec;

  if (isnan(v)) {
    snprintf(out, cap, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (v == 0) {
    snprintf(out, cap, "0"); /* also for -0 */
    return;
  }
  if (v == floor(v) && fabs(v) < EXACT_INT_LIMIT) {
    snprintf(out, cap, "%.0f", v);
    return;
  }
  for (prec = 15; prec < 17; prec++) {
    snprintf(out, cap, "%.*g", prec, v);
    if (strtod(out, NULL) == v)
      return;
  }
  snprintf(out, cap, "%.17g", v);
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*.  Checking them keeps a caller's
 * mistake from breaking the line structure of the whole exposition. */
static int name_valid(const char *name) {
  const char *p = name;

  if (*p == '\0')
    return 0;
  for (; *p != '\0'; p++) {
    char c = *p;
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c == '_' || c == ':';
    if (!alpha && !(p != name && c >= '0' && c <= '9'))
      return 0;
  }
  return 1;
}

/* Preformatted label lists are trusted, but a raw newline would split the
 * sample line; escaped values never contain one. */
static int labels_valid(const char *labels) {
  return labels == NULL || strpbrk(labels, "\r\n") == NULL;
}

static int type_valid(const char *type) {
  static const char *const types[] = {"counter", "gauge", "histogram",
                                      "summary", "untyped"};
  size_t i;
  for (i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcmp(type, types[i]) == 0)
      return 1;
  return 0;
}

/* HELP text escapes backslash and newline (quotes stay as they are). */
static int append_help(struct parley_buf *out, const char *help) {
  const char *p;
  int rc = PARLEY_OK;

  for (p = help; *p != '\0' && rc == PARLEY_OK; p++) {
    if (*p == '\\')
      rc = parley_buf_append(out, "\\\\", 2);
    else if (*p == '\n')
      rc = parley_buf_append(out, "\\n", 2);
    else
      rc = parley_buf_append(out, p, 1);
  }
  return rc;
}

int parley_prom_header(struct parley_buf *out, const char *name,
                       const char *type, const char *help) {
  size_t mark = out->len;
  int rc;

  if (!name_valid(name) || !type_valid(type))
    return PARLEY_EINVAL;
  rc = parley_buf_appendf(out, "# HELP %s ", name);
  if (rc == PARLEY_OK)
    rc = append_help(out, help);
  if (rc == PARLEY_OK)
    rc = parley_buf_appendf(out, "\n# TYPE %s %s\n", name, type);
  if (rc < 0)
    out->len = mark; /* leave no half-written lines behind */
  return rc;
}

/* name{labels[,extra]} num — labels and extra may each be NULL or "". */
static int append_line(struct parley_buf *out, const char *name,
                       const char *suffix, const char *labels,
                       const char *extra, const char *num) {
  int has_l = labels != NULL && labels[0] != '\0';
  int has_e = extra != NULL && extra[0] != '\0';

  if (!has_l && !has_e)
    return parley_buf_appendf(out, "%s%s %s\n", name, suffix, num);
  return parley_buf_appendf(out, "%s%s{%s%s%s} %s\n", name, suffix,
                            has_l ? labels : "", has_l && has_e ? "," : "",
                            has_e ? extra : "", num);
}

int parley_prom_sample(struct parley_buf *out, const char *name,
                       const char *labels, double value) {
  char num[NUMBUF];
  size_t mark = out->len;
  int rc;

  if (!name_valid(name) || !labels_valid(labels))
    return PARLEY_EINVAL;
  format_number(value, num, sizeof num);
  rc = append_line(out, name, "", labels, NULL, num);
  if (rc < 0)
    out->len = mark;
  return rc;
}

int parley_prom_metric(struct parley_buf *out, const char *name,
                       const char *type, const char *help, double value) {
  size_t mark = out->len;
  int rc;

  rc = parley_prom_header(out, name, type, help);
  if (rc == PARLEY_OK)
    rc = parley_prom_sample(out, name, NULL, value);
  if (rc < 0)
    out->len = mark;
  return rc;
}

int parley_prom_histogram(struct parley_buf *out, const char *name,
                          const char *labels,
                          const struct parley_histogram *h) {
  char num[NUMBUF], le[NUMBUF + 8], cnt[24];
  size_t mark = out->len, i;
  uint64_t cum = 0;
  int rc = PARLEY_OK;

  if (!name_valid(name) || !labels_valid(labels) ||
      h->nbounds > PARLEY_HIST_MAX_BUCKETS)
    return PARLEY_EINVAL;
  /* Stored per bucket; Prometheus wants each le line to count everything
   * at or below its bound. */
  for (i = 0; i <= h->nbounds && rc == PARLEY_OK; i++) {
    cum += h->counts[i];
    if (i < h->nbounds)
      format_number(h->bounds[i], num, sizeof num);
    else
      snprintf(num, sizeof num, "+Inf");
    snprintf(le, sizeof le, "le=\"%s\"", num);
    /* Counts print as exact integers even past 2^53. */
    snprintf(cnt, sizeof cnt, "%" PRIu64, cum);
    rc = append_line(out, name, "_bucket", labels, le, cnt);
  }
  if (rc == PARLEY_OK) {
    format_number(h->sum, num, sizeof num);
    rc = append_line(out, name, "_sum", labels, NULL, num);
  }
  if (rc == PARLEY_OK) {
    snprintf(cnt, sizeof cnt, "%" PRIu64, h->count);
    rc = append_line(out, name, "_count", labels, NULL, cnt);
  }
  if (rc < 0)
    out->len = mark;
  return rc;
}

void parley_prom_escape(const char *in, char *out, size_t cap) {
  size_t o = 0;

  if (cap == 0)
    return;
  for (; *in != '\0'; in++) {
    const char *rep = NULL;
    size_t n = 1;

    if (*in == '\\')
      rep = "\\\\";
    else if (*in == '"')
      rep = "\\\"";
    else if (*in == '\n')
      rep = "\\n";
    if (rep != NULL)
      n = 2;
    if (o + n >= cap) /* keep room for the NUL; never split an escape */
      break;
    if (rep != NULL)
      memcpy(out + o, rep, 2);
    else
      out[o] = *in;
    o += n;
  }
  out[o] = '\0';
}
