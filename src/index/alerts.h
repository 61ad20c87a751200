/*
 * alerts.h — the index's alert rules and their state machines.  Pure: the
 * caller samples the figures (dash.h, consensus status) and passes them
 * with the time; transitions come back through a callback, and the caller
 * logs them, exports them on /metrics and POSTs them to webhooks.
 *
 * A rule is {name, metric, op, threshold, for_s, severity}.  Each
 * evaluation compares the metric's current value with the threshold:
 *
 *   inactive --true--> pending --true for for_s--> firing --false--> resolved
 *       ^                 |                          |  (true: held)     |
 *       +------false------+                          |                   |
 *       +--------------------------------------------+-------------------+
 *
 * A rule with for_s 0 fires on the first true evaluation.  A value that is
 * NAN (no data: no deliveries, no report) counts as false.  Resolved
 * alerts are kept (the newest PARLEY_ALERTS_MAX_RESOLVED) for the
 * dashboard.
 *
 * Rule files (parley-index --alerts FILE) are JSON: an array of rules, or
 * {"rules": [...]}:
 *   [{"name": "outbox_depth", "metric": "outbox_depth", "op": ">",
 *     "threshold": 1000, "for_s": 60, "severity": "warning"}]
 * name: 1..63 of [A-Za-z0-9_.-], unique; metric: one of the names below;
 * op: ">" (default), ">=", "<", "<="; threshold: a number; for_s: 0..86400
 * (default 0); severity: "critical", "warning" (default) or "info".
 * Unknown keys are errors (a typo must not silently disable a rule).
 */
#ifndef PARLEY_INDEX_ALERTS_H
#define PARLEY_INDEX_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PARLEY_ALERTS_MAX_RULES 64
#define PARLEY_ALERTS_MAX_RESOLVED 50
#define PARLEY_ALERT_NAME_MAX 63
#define PARLEY_ALERT_SUMMARY_MAX 200

/* What a rule watches.  The values are sampled by the caller. */
enum parley_alert_metric {
  PARLEY_ALERT_P99_LATENCY_MS = 0, /* cluster-wide delivery p99, ms */
  PARLEY_ALERT_ERROR_RATE = 1,     /* errors per second, all peers */
  PARLEY_ALERT_PEER_CHURN = 2,     /* joins + expiries in the last minute */
  PARLEY_ALERT_OUTBOX_DEPTH = 3,   /* the largest outbox of one peer */
  PARLEY_ALERT_NO_LEADER = 4,      /* 1 while the cluster has no leader */
  PARLEY_ALERT_NODE_DOWN = 5,      /* index nodes seen down */
  PARLEY_ALERT_NMETRICS = 6,
};

enum parley_alert_op {
  PARLEY_ALERT_GT = 0,
  PARLEY_ALERT_GE = 1,
  PARLEY_ALERT_LT = 2,
  PARLEY_ALERT_LE = 3,
};

enum parley_alert_state {
  PARLEY_ALERT_INACTIVE = 0,
  PARLEY_ALERT_PENDING = 1,
  PARLEY_ALERT_FIRING = 2,
  PARLEY_ALERT_RESOLVED = 3, /* only in transitions */
};

struct parley_alert_rule {
  char name[PARLEY_ALERT_NAME_MAX + 1];
  int metric;       /* enum parley_alert_metric */
  int op;           /* enum parley_alert_op */
  double threshold;
  uint64_t for_ms;
  char severity[16]; /* "critical", "warning", "info" */
};

/* One rule's state. */
struct parley_alert {
  struct parley_alert_rule rule;
  int state;          /* INACTIVE, PENDING or FIRING */
  int64_t pending_ms; /* when the condition became true */
  int64_t since_ms;   /* when it fired (FIRING) */
  double value;       /* last sampled value (NAN: no data) */
  uint64_t fired;     /* times it fired */
  int64_t nodata_hold_ms; /* until then "no data" holds a firing alert
                             instead of resolving it (set by adopt) */
  char summary[PARLEY_ALERT_SUMMARY_MAX + 1];
};

struct parley_alert_resolved {
  char name[PARLEY_ALERT_NAME_MAX + 1];
  char severity[16];
  int64_t since_ms, until_ms;
  double value, threshold; /* value: the last one while firing */
  char summary[PARLEY_ALERT_SUMMARY_MAX + 1];
};

/* One evaluation's input: a value per metric (NAN = no data) and an
 * optional detail per metric for the summary (e.g. "on bob"). */
struct parley_alert_sample {
  double v[PARLEY_ALERT_NMETRICS];
  char detail[PARLEY_ALERT_NMETRICS][80];
};

/* A transition to FIRING or RESOLVED.  a is the rule's state after it
 * (for RESOLVED: state INACTIVE); r is set for RESOLVED only.  Both are
 * valid during the callback. */
typedef void (*parley_alert_cb)(void *ctx, int to, const struct parley_alert *a,
                                const struct parley_alert_resolved *r);

struct parley_alerts;

/* Creates the state machines for n rules (copied; n <=
 * PARLEY_ALERTS_MAX_RULES).  OUT: *out.  PARLEY_EINVAL, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_alerts_new(const struct parley_alert_rule *rules,
                                       size_t n, struct parley_alerts **out)
    PARLEY_NONNULL(3);
void parley_alerts_free(struct parley_alerts *a);

/* Evaluates every rule against s at now_ms; cb (may be NULL) hears of
 * each transition to FIRING or RESOLVED, in rule order. */
void parley_alerts_eval(struct parley_alerts *a,
                        const struct parley_alert_sample *s, int64_t now_ms,
                        parley_alert_cb cb, void *ctx) PARLEY_NONNULL(1, 2);

/* Takes over an alert another index node announced (a new cluster leader
 * adopting what the old one had firing): rule `name` becomes FIRING since
 * since_ms with value and summary, without a callback, so that it is not
 * announced twice and its resolution is announced by this node.  Until
 * hold_nodata_until_ms a sample without data (NAN) holds it instead of
 * resolving it: the new leader has no figures until the peers report to
 * it.  A rule that is already firing is left as it is.  PARLEY_ENOTFOUND
 * if no rule has that name. */
PARLEY_NODISCARD int parley_alerts_adopt(struct parley_alerts *a,
                                         const char *name, int64_t since_ms,
                                         double value, const char *summary,
                                         int64_t hold_nodata_until_ms)
    PARLEY_NONNULL(1, 2, 5);

/* Returns every rule whose metric's bit (1u << metric) is set in mask to
 * INACTIVE, without callbacks (a leader that stepped down stops speaking
 * for the cluster).  Resolved alerts are kept. */
void parley_alerts_reset(struct parley_alerts *a, uint32_t mask)
    PARLEY_NONNULL(1);

size_t parley_alerts_count(const struct parley_alerts *a) PARLEY_NONNULL(1);
/* Rule i's state (i < count). */
const struct parley_alert *parley_alerts_get(const struct parley_alerts *a,
                                             size_t i) PARLEY_NONNULL(1);
/* Resolved alerts, newest first. */
size_t parley_alerts_resolved_count(const struct parley_alerts *a)
    PARLEY_NONNULL(1);
const struct parley_alert_resolved *
parley_alerts_resolved(const struct parley_alerts *a, size_t i)
    PARLEY_NONNULL(1);

/* Parses a rule file's text (len bytes).  OUT: rules[0..*n).  On error
 * PARLEY_EINVAL with a one-line reason in err (errcap bytes). */
PARLEY_NODISCARD int parley_alerts_parse(const char *text, size_t len,
                                         struct parley_alert_rule *rules,
                                         size_t max, size_t *n, char *err,
                                         size_t errcap)
    PARLEY_NONNULL(1, 3, 5, 6);
/* The rules used without --alerts (docs/internals/DASHBOARD.md). */
size_t parley_alerts_defaults(struct parley_alert_rule *rules, size_t max)
    PARLEY_NONNULL(1);

/* "p99_latency_ms", ... and back (-1 if unknown). */
const char *parley_alert_metric_name(int metric);
int parley_alert_metric_from_name(const char *name) PARLEY_NONNULL(1);
const char *parley_alert_op_text(int op);
/* "firing", "resolved", ... */
const char *parley_alert_state_name(int state);

#endif
