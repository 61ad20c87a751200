/* alerts.c — alert rules, their parser and state machines (alerts.h). */
#include "index/alerts.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"

struct parley_alerts {
  struct parley_alert *v;
  size_t n;
  struct parley_alert_resolved resolved[PARLEY_ALERTS_MAX_RESOLVED];
  size_t res_head, res_n; /* ring; newest at (head + n - 1) */
};

static const char *const metric_names[PARLEY_ALERT_NMETRICS] = {
    "p99_latency_ms", "error_rate", "peer_churn",
    "outbox_depth",   "no_leader",  "node_down"};

/* How a metric reads in a summary. */
static const char *const metric_text[PARLEY_ALERT_NMETRICS] = {
    "p99 delivery latency (ms)", "errors per second",
    "peer joins+expiries per minute", "outbox depth",
    "no leader", "index nodes down"};

static const char *const op_texts[] = {">", ">=", "<", "<="};

const char *parley_alert_metric_name(int metric) {
  return metric >= 0 && metric < PARLEY_ALERT_NMETRICS ? metric_names[metric]
                                                       : "unknown";
}

int parley_alert_metric_from_name(const char *name) {
  for (int i = 0; i < PARLEY_ALERT_NMETRICS; i++)
    if (strcmp(name, metric_names[i]) == 0)
      return i;
  return -1;
}

const char *parley_alert_op_text(int op) {
  return op >= 0 && op <= PARLEY_ALERT_LE ? op_texts[op] : "?";
}

const char *parley_alert_state_name(int state) {
  switch (state) {
  case PARLEY_ALERT_PENDING:
    return "pending";
  case PARLEY_ALERT_FIRING:
    return "firing";
  case PARLEY_ALERT_RESOLVED:
    return "resolved";
  default:
    return "inactive";
  }
}

/* ---- rules -------------------------------------------------------------- */

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > PARLEY_ALERT_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

static int severity_ok(const char *s) {
  return strcmp(s, "critical") == 0 || strcmp(s, "warning") == 0 ||
         strcmp(s, "info") == 0;
}

static int rule_ok(const struct parley_alert_rule *r) {
  return name_ok(r->name) && r->metric >= 0 &&
         r->metric < PARLEY_ALERT_NMETRICS && r->op >= PARLEY_ALERT_GT &&
         r->op <= PARLEY_ALERT_LE && isfinite(r->threshold) &&
         r->for_ms <= 86400ull * 1000 && severity_ok(r->severity);
}

static void set_str(char *dst, size_t cap, const char *src) {
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static void def(struct parley_alert_rule *r, const char *name, int metric,
                double threshold, unsigned for_s, const char *severity) {
  memset(r, 0, sizeof *r);
  set_str(r->name, sizeof r->name, name);
  r->metric = metric;
  r->op = PARLEY_ALERT_GT;
  r->threshold = threshold;
  r->for_ms = (uint64_t)for_s * 1000;
  set_str(r->severity, sizeof r->severity, severity);
}

size_t parley_alerts_defaults(struct parley_alert_rule *rules, size_t max) {
  struct parley_alert_rule d[6];

  def(&d[0], "p99_latency_ms", PARLEY_ALERT_P99_LATENCY_MS, 500, 60,
      "warning");
  def(&d[1], "error_rate", PARLEY_ALERT_ERROR_RATE, 1, 60, "warning");
  def(&d[2], "peer_churn", PARLEY_ALERT_PEER_CHURN, 30, 120, "warning");
  def(&d[3], "outbox_depth", PARLEY_ALERT_OUTBOX_DEPTH, 1000, 60, "warning");
  def(&d[4], "no_leader", PARLEY_ALERT_NO_LEADER, 0, 10, "critical");
  def(&d[5], "node_down", PARLEY_ALERT_NODE_DOWN, 0, 30, "critical");
  if (max > 6)
    max = 6;
  memcpy(rules, d, max * sizeof *rules);
  return max;
}

static int fail(char *err, size_t errcap, size_t i, const char *what) {
  snprintf(err, errcap, "rule %zu: %s", i + 1, what);
  return PARLEY_EINVAL;
}

static int parse_rule(json_t *o, size_t i, struct parley_alert_rule *r,
                      char *err, size_t errcap) {
  const char *key;
  json_t *v;

  if (!json_is_object(o))
    return fail(err, errcap, i, "not an object");
  memset(r, 0, sizeof *r);
  r->metric = -1;
  r->op = PARLEY_ALERT_GT;
  r->threshold = NAN;
  set_str(r->severity, sizeof r->severity, "warning");
  json_object_foreach(o, key, v) {
    if (strcmp(key, "name") == 0) {
      if (!json_is_string(v) || !name_ok(json_string_value(v)))
        return fail(err, errcap, i,
                    "name must be 1..63 of A-Z a-z 0-9 _ - .");
      set_str(r->name, sizeof r->name, json_string_value(v));
    } else if (strcmp(key, "metric") == 0) {
      if (!json_is_string(v) ||
          (r->metric = parley_alert_metric_from_name(json_string_value(v))) <
              0)
        return fail(err, errcap, i,
                    "metric must be p99_latency_ms, error_rate, peer_churn, "
                    "outbox_depth, no_leader or node_down");
    } else if (strcmp(key, "op") == 0) {
      int op = -1;
      for (int k = 0; k < 4 && json_is_string(v); k++)
        if (strcmp(json_string_value(v), op_texts[k]) == 0)
          op = k;
      if (op < 0)
        return fail(err, errcap, i, "op must be >, >=, < or <=");
      r->op = op;
    } else if (strcmp(key, "threshold") == 0) {
      if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return fail(err, errcap, i, "threshold must be a number");
      r->threshold = json_number_value(v);
    } else if (strcmp(key, "for_s") == 0) {
      double s = json_is_number(v) ? json_number_value(v) : -1;
      if (!(s >= 0 && s <= 86400))
        return fail(err, errcap, i, "for_s must be 0..86400 seconds");
      r->for_ms = (uint64_t)(s * 1000.0 + 0.5);
    } else if (strcmp(key, "severity") == 0) {
      if (!json_is_string(v) || !severity_ok(json_string_value(v)))
        return fail(err, errcap, i,
                    "severity must be critical, warning or info");
      set_str(r->severity, sizeof r->severity, json_string_value(v));
    } else {
      char what[96];
      snprintf(what, sizeof what, "unknown key \"%.40s\"", key);
      return fail(err, errcap, i, what);
    }
  }
  if (r->name[0] == '\0')
    return fail(err, errcap, i, "name is missing");
  if (r->metric < 0)
    return fail(err, errcap, i, "metric is missing");
  if (isnan(r->threshold))
    return fail(err, errcap, i, "threshold is missing");
  return rule_ok(r) ? PARLEY_OK : fail(err, errcap, i, "invalid");
}

int parley_alerts_parse(const char *text, size_t len,
                        struct parley_alert_rule *rules, size_t max,
                        size_t *n, char *err, size_t errcap) {
  json_error_t jerr;
  json_t *root, *arr;
  size_t i;
  json_t *o;
  int rc = PARLEY_OK;

  *n = 0;
  err[0] = '\0';
  root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL) {
    snprintf(err, errcap, "not JSON: line %d: %s", jerr.line, jerr.text);
    return PARLEY_EINVAL;
  }
  arr = json_is_object(root) ? json_object_get(root, "rules") : root;
  if (!json_is_array(arr) ||
      (json_is_object(root) && json_object_size(root) != 1)) {
    snprintf(err, errcap, "want an array of rules (or {\"rules\": [...]})");
    json_decref(root);
    return PARLEY_EINVAL;
  }
  if (json_array_size(arr) > max) {
    snprintf(err, errcap, "more than %zu rules", max);
    json_decref(root);
    return PARLEY_EINVAL;
  }
  json_array_foreach(arr, i, o) {
    rc = parse_rule(o, i, &rules[i], err, errcap);
    if (rc < 0)
      break;
    for (size_t j = 0; j < i; j++)
      if (strcmp(rules[j].name, rules[i].name) == 0) {
        rc = fail(err, errcap, i, "the name is used twice");
        break;
      }
    if (rc < 0)
      break;
  }
  if (rc == PARLEY_OK)
    *n = json_array_size(arr);
  json_decref(root);
  return rc;
}

/* ---- state machines ----------------------------------------------------- */

int parley_alerts_new(const struct parley_alert_rule *rules, size_t n,
                      struct parley_alerts **out) {
  struct parley_alerts *a;

  if (n > PARLEY_ALERTS_MAX_RULES || (n > 0 && rules == NULL))
    return PARLEY_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!rule_ok(&rules[i]))
      return PARLEY_EINVAL;
  a = parley_calloc(1, sizeof *a);
  if (a == NULL)
    return PARLEY_ENOMEM;
  if (n > 0) {
    a->v = parley_calloc(n, sizeof *a->v);
    if (a->v == NULL) {
      parley_free(a);
      return PARLEY_ENOMEM;
    }
  }
  for (size_t i = 0; i < n; i++) {
    a->v[i].rule = rules[i];
    a->v[i].value = NAN;
  }
  a->n = n;
  *out = a;
  return PARLEY_OK;
}

void parley_alerts_free(struct parley_alerts *a) {
  if (a == NULL)
    return;
  parley_free(a->v);
  parley_free(a);
}

static int holds(const struct parley_alert_rule *r, double v) {
  if (isnan(v))
    return 0;
  switch (r->op) {
  case PARLEY_ALERT_GE:
    return v >= r->threshold;
  case PARLEY_ALERT_LT:
    return v < r->threshold;
  case PARLEY_ALERT_LE:
    return v <= r->threshold;
  default:
    return v > r->threshold;
  }
}

static void summarize(struct parley_alert *a, const char *detail) {
  const struct parley_alert_rule *r = &a->rule;

  if (r->metric == PARLEY_ALERT_NO_LEADER)
    snprintf(a->summary, sizeof a->summary, "no leader for %llus%s%s",
             (unsigned long long)(r->for_ms / 1000), detail[0] ? " " : "",
             detail);
  else
    snprintf(a->summary, sizeof a->summary, "%s %.6g %s %.6g for %llus%s%s",
             metric_text[r->metric], a->value, op_texts[r->op], r->threshold,
             (unsigned long long)(r->for_ms / 1000), detail[0] ? " " : "",
             detail);
}

void parley_alerts_eval(struct parley_alerts *a,
                        const struct parley_alert_sample *s, int64_t now_ms,
                        parley_alert_cb cb, void *ctx) {
  for (size_t i = 0; i < a->n; i++) {
    struct parley_alert *x = &a->v[i];
    double v = s->v[x->rule.metric], before = x->value;
    int on = holds(&x->rule, v);

    x->value = v;
    if (on)
      summarize(x, s->detail[x->rule.metric]);
    switch (x->state) {
    case PARLEY_ALERT_INACTIVE:
      if (!on)
        break;
      x->state = PARLEY_ALERT_PENDING;
      x->pending_ms = now_ms;
      /* fall through: for_s 0 fires at once */
      /* FALLTHROUGH */
    case PARLEY_ALERT_PENDING:
      if (!on) {
        x->state = PARLEY_ALERT_INACTIVE;
        break;
      }
      if (now_ms - x->pending_ms >= (int64_t)x->rule.for_ms) {
        x->state = PARLEY_ALERT_FIRING;
        x->since_ms = now_ms;
        x->fired++;
        if (cb != NULL)
          cb(ctx, PARLEY_ALERT_FIRING, x, NULL);
      }
      break;
    default: { /* FIRING */
      struct parley_alert_resolved *r;
      if (on)
        break;
      if (isnan(v) && now_ms < x->nodata_hold_ms) {
        x->value = before; /* adopted, no figures here yet: held */
        break;
      }
      if (a->res_n < PARLEY_ALERTS_MAX_RESOLVED) {
        r = &a->resolved[(a->res_head + a->res_n) % PARLEY_ALERTS_MAX_RESOLVED];
        a->res_n++;
      } else {
        r = &a->resolved[a->res_head];
        a->res_head = (a->res_head + 1) % PARLEY_ALERTS_MAX_RESOLVED;
      }
      memset(r, 0, sizeof *r);
      memcpy(r->name, x->rule.name, sizeof r->name);
      memcpy(r->severity, x->rule.severity, sizeof r->severity);
      r->since_ms = x->since_ms;
      r->until_ms = now_ms;
      r->threshold = x->rule.threshold;
      /* The summary and value while it was firing, not the quiet one. */
      memcpy(r->summary, x->summary, sizeof r->summary);
      r->value = before;
      x->state = PARLEY_ALERT_INACTIVE;
      x->nodata_hold_ms = 0;
      if (cb != NULL)
        cb(ctx, PARLEY_ALERT_RESOLVED, x, r);
      break;
    }
    }
  }
}

int parley_alerts_adopt(struct parley_alerts *a, const char *name,
                        int64_t since_ms, double value, const char *summary,
                        int64_t hold_nodata_until_ms) {
  for (size_t i = 0; i < a->n; i++) {
    struct parley_alert *x = &a->v[i];
    if (strcmp(x->rule.name, name) != 0)
      continue;
    if (x->state == PARLEY_ALERT_FIRING)
      return PARLEY_OK;
    x->state = PARLEY_ALERT_FIRING;
    x->since_ms = since_ms;
    x->pending_ms = since_ms - (int64_t)x->rule.for_ms;
    x->value = value;
    x->nodata_hold_ms = hold_nodata_until_ms;
    set_str(x->summary, sizeof x->summary, summary);
    return PARLEY_OK;
  }
  return PARLEY_ENOTFOUND;
}

void parley_alerts_reset(struct parley_alerts *a, uint32_t mask) {
  for (size_t i = 0; i < a->n; i++) {
    struct parley_alert *x = &a->v[i];
    if (x->rule.metric < 0 || x->rule.metric >= 32 ||
        !(mask & (1u << x->rule.metric)))
      continue;
    x->state = PARLEY_ALERT_INACTIVE;
    x->pending_ms = 0;
    x->since_ms = 0;
    x->nodata_hold_ms = 0;
    x->value = NAN;
    x->summary[0] = '\0';
  }
}

size_t parley_alerts_count(const struct parley_alerts *a) { return a->n; }

const struct parley_alert *parley_alerts_get(const struct parley_alerts *a,
                                             size_t i) {
  return i < a->n ? &a->v[i] : NULL;
}

size_t parley_alerts_resolved_count(const struct parley_alerts *a) {
  return a->res_n;
}

const struct parley_alert_resolved *
parley_alerts_resolved(const struct parley_alerts *a, size_t i) {
  if (i >= a->res_n)
    return NULL;
  return &a->resolved[(a->res_head + a->res_n - 1 - i) %
                      PARLEY_ALERTS_MAX_RESOLVED];
}
