/*
 * peer_metrics.c — parleyd's /metrics page (Prometheus text format).
 */
#include "peer/node_int.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Resident set size in bytes and open descriptors, from /proc/self. */
static void process_figures(double *rss, double *fds) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  DIR *d;
  struct dirent *de;

  *rss = 0;
  *fds = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) == 2)
      *rss = (double)resident * (double)sysconf(_SC_PAGESIZE);
    fclose(f);
  }
  d = opendir("/proc/self/fd");
  if (d) {
    while ((de = readdir(d)) != NULL)
      if (de->d_name[0] != '.')
        *fds += 1;
    closedir(d);
    *fds -= 1; /* the directory stream itself */
  }
}

struct metric_row {
  const char *name;
  const char *type;
  const char *help;
  double value;
};

int parley__api_metrics(struct parley_node *n, struct parley_buf *out) {
  const struct parley_net_stats *ns = parley_net_stats(n->net);
  const struct parley_http_stats *hs = parley_http_stats(n->http);
  double rss, fds;
  int rc = PARLEY_OK;

  process_figures(&rss, &fds);
  {
    const struct metric_row rows[] = {
        {"parley_messages_published_total", "counter",
         "Messages this peer published (topic and direct).",
         (double)n->m.published},
        {"parley_messages_received_total", "counter",
         "Messages received and stored.", (double)n->m.received},
        {"parley_messages_duplicate_total", "counter",
         "Messages received again and discarded by id.",
         (double)n->m.duplicates},
        {"parley_messages_rejected_total", "counter",
         "Messages refused (not subscribed, too big, bad text, wrong key).",
         (double)n->m.rejected},
        {"parley_direct_sent_total", "counter", "Direct messages sent.",
         (double)n->m.direct_sent},
        {"parley_direct_received_total", "counter",
         "Direct messages received.", (double)n->m.direct_received},
        {"parley_message_bytes_published_total", "counter",
         "Payload bytes published.", (double)n->m.bytes_published},
        {"parley_message_bytes_received_total", "counter",
         "Payload bytes received and stored.", (double)n->m.bytes_received},
        {"parley_acks_sent_total", "counter", "Acknowledgements sent.",
         (double)n->m.acks_sent},
        {"parley_acks_received_total", "counter",
         "Acknowledgements received for queued deliveries.",
         (double)n->m.acks_received},
        {"parley_retries_total", "counter",
         "Outbox deliveries sent again after no acknowledgement.",
         (double)n->m.retries},
        {"parley_outbox_expired_total", "counter",
         "Outbox entries dropped past the retention window.",
         (double)n->m.expired},
        {"parley_async_dropped_total", "counter",
         "Fire-and-forget deliveries dropped (no link, back-pressure).",
         (double)n->m.async_dropped},
        {"parley_sync_messages_total", "counter",
         "Messages repaired from other subscribers (verified relayed "
         "batches).",
         (double)n->m.sync_messages},
        {"parley_sync_rejected_total", "counter",
         "Relayed batches and checkpoints refused (bad chain or signature).",
         (double)n->m.sync_rejected},
        {"parley_sync_served_total", "counter",
         "Messages this peer relayed to others for repair.",
         (double)n->m.sync_served},
        {"parley_checkpoints_signed_total", "counter",
         "Hash-chain checkpoints this peer signed as a publisher.",
         (double)n->m.checkpoints_signed},
        {"parley_outbox_depth", "gauge",
         "Deliveries waiting for an acknowledgement.",
         (double)n->outbox_depth},
        {"parley_subscriptions", "gauge", "Topics this peer subscribes to.",
         (double)n->subs.count},
        {"parley_index_connected", "gauge",
         "1 if registered with an index node.", (double)n->registered},
        {"parley_index_failovers_total", "counter",
         "Times the link to an index node was lost.",
         (double)n->m.index_failovers},
        {"parley_links_open", "gauge", "Open secure links.",
         (double)ns->links_open},
        {"parley_net_bytes_received_total", "counter",
         "TCP bytes received on secure links.", (double)ns->bytes_in},
        {"parley_net_bytes_sent_total", "counter",
         "TCP bytes sent on secure links.", (double)ns->bytes_out},
        {"parley_net_frames_received_total", "counter", "Frames received.",
         (double)ns->frames_in},
        {"parley_net_frames_sent_total", "counter", "Frames sent.",
         (double)ns->frames_out},
        {"parley_net_records_sent_total", "counter",
         "AEAD records sent (several frames each when busy).",
         (double)ns->records_out},
        {"parley_net_handshakes_failed_total", "counter",
         "Link handshakes that failed.", (double)ns->handshakes_failed},
        {"parley_net_protocol_errors_total", "counter",
         "Links closed for malformed or unauthenticated input.",
         (double)ns->protocol_errors},
        {"parley_net_links_refused_total", "counter",
         "Connections refused at the link limit.", (double)ns->links_refused},
        {"parley_http_requests_total", "counter", "API requests.",
         (double)hs->requests},
        {"parley_http_refused_total", "counter",
         "API requests refused before reaching a handler.",
         (double)hs->refused},
        {"process_resident_memory_bytes", "gauge", "Resident memory size.",
         rss},
        {"process_open_fds", "gauge", "Open file descriptors.", fds},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && rc == PARLEY_OK;
         i++)
      rc = parley_prom_metric(out, rows[i].name, rows[i].type, rows[i].help,
                              rows[i].value);
  }
  if (rc == PARLEY_OK)
    rc = parley_prom_header(out, "parley_delivery_latency_seconds",
                            "histogram",
                            "Publisher timestamp to stored here, per message "
                            "received (clocks of both peers).");
  if (rc == PARLEY_OK)
    rc = parley_prom_histogram(out, "parley_delivery_latency_seconds", NULL,
                               &n->m.delivery_latency);
  if (rc == PARLEY_OK)
    rc = parley_prom_header(out, "parley_ack_latency_seconds", "histogram",
                            "Publish to acknowledgement, per subscriber.");
  if (rc == PARLEY_OK)
    rc = parley_prom_histogram(out, "parley_ack_latency_seconds", NULL,
                               &n->m.ack_latency);
  return rc;
}
