/*
 * peer_metrics.c — parleyd's /metrics page (Prometheus text format).
 *
 * Per-peer figures (messages received, refused by the rate limit, dropped
 * or deferred by back-pressure, bytes queued on its link, deliveries
 * waiting in the outbox) are shown as labelled series for the top
 * PEER_TOP peers of each, besides the unlabelled totals, so that the page
 * stays bounded however many peers there are.
 */
#include "peer/node_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"

#define PEER_TOP 10

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

/* Messages refused by the per-peer rate limit, by delivery mode. */
static int rate_limited(struct parley_node *n, struct parley_buf *out) {
  int rc = parley_prom_header(
      out, "parley_rate_limited_total", "counter",
      "Messages refused by the per-peer rate limit: mode=\"ack\" answered "
      "ELIMIT (the publisher retries), mode=\"async\" dropped.");
  if (rc == PARLEY_OK)
    rc = parley_prom_sample(out, "parley_rate_limited_total", "mode=\"ack\"",
                            (double)n->m.limited_ack);
  if (rc == PARLEY_OK)
    rc = parley_prom_sample(out, "parley_rate_limited_total",
                            "mode=\"async\"", (double)n->m.limited_async);
  return rc;
}

/* One peer's figure for a top-N series. */
struct peer_val {
  const struct rpeer *p; /* NULL when no live record (outbox only) */
  uint8_t pk[32];
  double v;
};

static int by_value_desc(const void *a, const void *b) {
  const struct peer_val *x = a, *y = b;
  if (x->v != y->v)
    return x->v < y->v ? 1 : -1;
  return memcmp(x->pk, y->pk, 32);
}

/* Writes the PEER_TOP largest non-zero values of vals (sorted in place)
 * as name{peer="ID",name="NAME"}. */
static int top_series(struct parley_buf *out, const char *name,
                      const char *type, const char *help,
                      struct peer_val *vals, size_t nv) {
  char id[PARLEY_ID_TEXT_LEN + 1], pname[2 * PARLEY_MAX_NAME + 1];
  char labels[PARLEY_ID_TEXT_LEN + 2 * PARLEY_MAX_NAME + 32];
  int rc = parley_prom_header(out, name, type, help);

  qsort(vals, nv, sizeof *vals, by_value_desc);
  for (size_t i = 0; i < nv && i < PEER_TOP && rc == PARLEY_OK; i++) {
    if (vals[i].v <= 0)
      break;
    parley_id_encode(vals[i].pk, id);
    parley_prom_escape(vals[i].p ? vals[i].p->name : "", pname, sizeof pname);
    snprintf(labels, sizeof labels, "peer=\"%s\",name=\"%s\"", id, pname);
    rc = parley_prom_sample(out, name, labels, vals[i].v);
  }
  return rc;
}

struct outbox_top {
  struct parley_node *n;
  struct peer_val *vals;
  size_t nv;
};

static int outbox_row(void *ctx, const uint8_t key[32], uint64_t rows) {
  struct outbox_top *t = ctx;
  struct peer_val *v;

  if (t->nv >= PEER_TOP)
    return 0;
  v = &t->vals[t->nv++];
  v->p = parley__node_peer(t->n, key, 0);
  memcpy(v->pk, key, 32);
  v->v = (double)rows;
  return 0;
}

/* The per-peer top-N series and the total bytes queued on peer links. */
static int per_peer(struct parley_node *n, struct parley_buf *out) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  struct peer_val *vals;
  struct outbox_top ot;
  size_t np = n->peers.count, k = 0;
  double sendq_total = 0;
  int rc;

  vals = parley_calloc(np > PEER_TOP ? np : PEER_TOP, sizeof *vals);
  if (vals == NULL)
    return PARLEY_ENOMEM;
  parley_map_iter_init(&it, &n->peers);
  while ((e = parley_map_iter_next(&it)) != NULL && k < np) {
    const struct rpeer *p = e->value;
    struct parley_link *l = parley__peer_link(p);
    vals[k].p = p;
    memcpy(vals[k].pk, p->pk, 32);
    vals[k].v = l ? (double)parley_link_sendq(l) : 0;
    sendq_total += vals[k].v;
    k++;
  }
  rc = parley_prom_metric(out, "parley_sendq_bytes", "gauge",
                          "Bytes queued on links to other peers (sent "
                          "soon, or waiting for a slow peer).",
                          sendq_total);
  if (rc == PARLEY_OK)
    rc = top_series(out, "parley_peer_sendq_bytes", "gauge",
                    "Bytes queued on the link to one peer (top peers).",
                    vals, k);
#define PEER_FIELD_SERIES(field, name, type, help)                            \
  if (rc == PARLEY_OK) {                                                      \
    for (size_t i = 0; i < k; i++)                                            \
      vals[i].v = (double)vals[i].p->field;                                   \
    rc = top_series(out, name, type, help, vals, k);                          \
  }
  PEER_FIELD_SERIES(m_received, "parley_peer_received_total", "counter",
                    "Messages received from one peer and stored (top "
                    "peers).")
  PEER_FIELD_SERIES(m_limited, "parley_peer_rate_limited_total", "counter",
                    "Messages from one peer refused by the rate limit (top "
                    "peers).")
  PEER_FIELD_SERIES(m_dropped, "parley_peer_dropped_total", "counter",
                    "Fire-and-forget deliveries to one peer dropped (no "
                    "link, full queue; top peers).")
  PEER_FIELD_SERIES(m_backpressure, "parley_peer_backpressure_total",
                    "counter",
                    "Sends to one peer deferred or dropped because its "
                    "link's queue was full (top peers).")
#undef PEER_FIELD_SERIES
  if (rc == PARLEY_OK) {
    ot.n = n;
    ot.vals = vals;
    ot.nv = 0;
    rc = parley_store_outbox_by_recipient(n->store, PEER_TOP, outbox_row,
                                          &ot);
    if (rc == PARLEY_OK)
      rc = top_series(out, "parley_peer_outbox", "gauge",
                      "Acked deliveries to one peer waiting in the outbox "
                      "(top peers).",
                      vals, ot.nv);
  }
  parley_free(vals);
  return rc;
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
        {"parley_e2e_sealed_total", "counter",
         "Direct messages sealed end to end (to the recipient and a sender "
         "copy).",
         (double)n->m.e2e_sealed},
        {"parley_e2e_opened_total", "counter",
         "Direct messages received that opened and verified.",
         (double)n->m.e2e_opened},
        {"parley_e2e_rejected_total", "counter",
         "Direct messages refused: did not open or verify (tampered, wrong "
         "key, channel, seq or ts).",
         (double)n->m.e2e_rejected},
        {"parley_e2e_replays_total", "counter",
         "Direct messages refused because they were seen before (replays "
         "and retransmissions).",
         (double)n->m.e2e_replays},
        {"parley_e2e_out_of_order_total", "counter",
         "Direct messages accepted after a later one from the same sender.",
         (double)n->m.e2e_late},
        {"parley_e2e_gaps_total", "counter",
         "Direct messages accepted with earlier sequence numbers missing.",
         (double)n->m.e2e_gaps},
        {"parley_private_sealed_total", "counter",
         "Private-topic messages this peer sealed under a topic key.",
         (double)n->m.ptopic_sealed},
        {"parley_private_opened_total", "counter",
         "Private-topic messages opened for reading (history, streams).",
         (double)n->m.ptopic_opened},
        {"parley_private_keys_total", "counter",
         "Topic key blobs received that opened (sealed to us by the owner).",
         (double)n->m.ptopic_keys},
        {"parley_private_keys_refused_total", "counter",
         "Topic key blobs refused (not for us, or not from the owner).",
         (double)n->m.ptopic_keys_refused},
        {"parley_private_rejected_total", "counter",
         "Private-topic messages refused: publisher not a member, "
         "plaintext on a private topic, or did not open.",
         (double)n->m.ptopic_rejected},
        {"parley_trusted_peers", "gauge",
         "Keys pinned with parley trust.", (double)n->npins},
        {"parley_key_changed_total", "counter",
         "Keys seen claiming the name or address of a trusted peer.",
         (double)n->m.key_changed},
        {"parley_key_changed_refused_total", "counter",
         "Messages and sends refused because the key claims a trusted "
         "peer's name or address.",
         (double)n->m.key_changed_refused},
        {"parley_backpressure_total", "counter",
         "Sends deferred (acked) or dropped (fire-and-forget) because a "
         "link's send queue was full.",
         (double)n->m.backpressure},
        {"parley_slowed_total", "counter",
         "Acked deliveries another peer answered ELIMIT (kept queued, "
         "retried with back-off).",
         (double)n->m.slowed},
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
    rc = rate_limited(n, out);
  if (rc == PARLEY_OK)
    rc = per_peer(n, out);
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
