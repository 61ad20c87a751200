/* server_dash_metrics.c — the dashboard's, alerts' and webhooks' lines on
 * the index's /metrics (docs/internals/DASHBOARD.md, "Prometheus"). */
#include <stdio.h>
#include <string.h>

#include "index/server_dash_int.h"
#include "metrics/prom.h"

/* Topics exported with labels on /metrics (cardinality). */
#define DASH_METRIC_TOPICS 64

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
  M("parley_alerts_evaluator", "gauge",
    "1 on the node that evaluates the cluster-wide alert rules and sends "
    "their webhooks (a single node, or the Raft leader); elsewhere only "
    "no_leader is evaluated.",
    parley__dash_evaluator(idx));
  if (idx->dashx != NULL && idx->dashx->http != NULL) {
    if (rc == 0)
      rc = parley_prom_header(b, "parley_dashboard_leader_fetches_total",
                              "counter",
                              "Dashboard answers and stream events a "
                              "follower took from the leader (ok), or "
                              "answered from its own state because the "
                              "leader did not answer (failed).");
    if (rc == 0)
      rc = parley_prom_sample(b, "parley_dashboard_leader_fetches_total",
                              "result=\"ok\"",
                              (double)idx->dashx->from_leader);
    if (rc == 0)
      rc = parley_prom_sample(b, "parley_dashboard_leader_fetches_total",
                              "result=\"failed\"",
                              (double)idx->dashx->leader_failed);
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
