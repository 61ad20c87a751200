/*
 * dash.h — the index's monitoring model: what the dashboard shows, built
 * from the peers' REPORTs (wire/report_wire.h) and the registry's joins and
 * expiries.  Pure: no I/O, no clock — every call that needs the time takes
 * now_ms (Unix milliseconds), so the whole model runs in unit tests.
 *
 * What it keeps (docs/internals/DASHBOARD.md, "Backend"):
 *   - per peer: the last report, rates computed from the previous one
 *     (counter deltas over the sender's own uptime delta, so network jitter
 *     does not bend them), delivery latency quantiles over its last few
 *     reports, and its gauges (outbox, links, RSS, descriptors, CPU %);
 *   - per topic (interned, at most max_topics): publishers and message
 *     rates summed over peers, and — when reports carry per-topic
 *     histograms — latency quantiles;
 *   - cluster-wide: a sliding window (PARLEY_DASH_LAT_WINDOW_S seconds) of
 *     latency histogram deltas, from which p50/p90/p99 are computed by
 *     parley_histogram_quantile over the summed buckets — quantiles are
 *     never averaged;
 *   - history: a fine ring (1 s, fine_points long: 1 h by default) and a
 *     coarse ring (1 min, coarse_points: 24 h) of peer count, latency
 *     quantiles and throughput; the same for up to max_topic_series
 *     topics' latency.  A minute's latency point comes from that minute's
 *     merged histogram; its rates are the mean of its 1 s points;
 *   - an events ring of joins and expiries.
 * Memory is bounded by the config: peers beyond max_peers and topics
 * beyond max_topics are not tracked (counted in the stats).
 *
 * Latency is in milliseconds in every output here.  Values that do not
 * exist (no deliveries in the window, no report yet) are NAN.
 */
#ifndef PARLEY_INDEX_DASH_H
#define PARLEY_INDEX_DASH_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "wire/report_wire.h"

/* Seconds of latency deltas the "current" quantiles cover. */
#define PARLEY_DASH_LAT_WINDOW_S 10
/* Reports per peer its own latency quantiles cover. */
#define PARLEY_DASH_PEER_LAT_REPORTS 5
/* Events kept. */
#define PARLEY_DASH_MAX_EVENTS 200

struct parley_dash;

struct parley_dash_config {
  size_t max_peers;        /* peers tracked; 0 = 4096 */
  size_t max_topics;       /* topics tracked; 0 = 256 */
  size_t max_topic_series; /* topics with a latency history; 0 = 32 */
  uint32_t fine_points;    /* 1 s points kept; 0 = 3600 */
  uint32_t coarse_points;  /* 1 min points kept; 0 = 1440 */
  uint64_t stale_ms;       /* a report older than this no longer counts in
                              the cluster's rates; 0 = 10000 */
  uint64_t min_interval_ms; /* reports closer than this to the previous one
                               of the same peer are ignored; 0 = 500 */
};

/* A peer as the dashboard sees it. */
struct parley_dash_peer {
  uint8_t pk[32];
  char name[PARLEY_MAX_NAME + 1];
  int64_t first_report_ms, last_report_ms; /* index clock; 0 = none yet */
  uint64_t reports;
  /* Rates (per second) between the last two reports; NAN until two. */
  double msgs_in_per_s, msgs_out_per_s, bytes_in_per_s, bytes_out_per_s;
  double errors_per_s, retries_per_s, acks_per_s;
  double cpu_percent; /* of one core */
  /* Delivery latency over its last PARLEY_DASH_PEER_LAT_REPORTS reports;
   * NAN when it received nothing in that time. */
  double latency_p50_ms, latency_p90_ms, latency_p99_ms;
  /* From the last report as they are. */
  struct parley_report last; /* topics not kept (ntopics is 0) */
};

struct parley_dash_topic {
  const char *topic;     /* valid during the callback */
  uint32_t publishers;   /* peers whose report flags it as published */
  uint32_t reporters;    /* fresh peers reporting it */
  double msgs_in_per_s;  /* delivered to subscribers, summed */
  double msgs_out_per_s; /* published, summed */
  double latency_p50_ms, latency_p90_ms, latency_p99_ms; /* NAN: none */
};

/* The cluster now (from fresh reports only). */
struct parley_dash_now {
  uint32_t reporting; /* peers with a fresh report */
  uint32_t rated;     /* ... of which have rates (two reports or more) */
  double msgs_in_per_s, msgs_out_per_s, errors_per_s;
  double latency_p50_ms, latency_p90_ms, latency_p99_ms;
  uint64_t max_outbox;               /* largest outbox of a fresh peer */
  char max_outbox_name[PARLEY_MAX_NAME + 1]; /* "" if none */
  uint32_t churn_per_min;            /* joins + expiries in the last 60 s */
};

enum parley_dash_res {
  PARLEY_DASH_FINE = 0,   /* 1 s */
  PARLEY_DASH_COARSE = 1, /* 1 min */
};

enum parley_dash_series {
  PARLEY_DASH_PEERS = 0,      /* v[0] = peer count */
  PARLEY_DASH_LATENCY = 1,    /* v[0..2] = p50, p90, p99 (ms) */
  PARLEY_DASH_THROUGHPUT = 2, /* v[0..2] = msgs in/s, out/s, errors/s */
  PARLEY_DASH_TOPIC_LATENCY = 3,
};

struct parley_dash_point {
  int64_t t;  /* start of the second / minute, Unix ms */
  double v[3];
};

enum parley_dash_event_kind {
  PARLEY_DASH_JOIN = 1,
  PARLEY_DASH_EXPIRE = 2,
};

struct parley_dash_event {
  int64_t t;
  int kind; /* enum parley_dash_event_kind */
  uint8_t pk[32];
  char name[PARLEY_MAX_NAME + 1];
};

struct parley_dash_stats {
  uint64_t reports;           /* accepted */
  uint64_t reports_ignored;   /* too soon after the previous one */
  uint64_t peers_untracked;   /* reports from peers over max_peers */
  uint64_t topics_untracked;  /* topic entries over max_topics */
  uint64_t restarts;          /* reports that started a new baseline */
  size_t peers, topics;       /* tracked now */
};

/* cfg may be NULL (defaults).  OUT: *out; free with parley_dash_free.
 * PARLEY_ENOMEM, PARLEY_EINVAL (a ring of 0 or over a million points). */
PARLEY_NODISCARD int parley_dash_new(const struct parley_dash_config *cfg,
                                     struct parley_dash **out)
    PARLEY_NONNULL(2);
void parley_dash_free(struct parley_dash *d);

/* Takes one decoded report from peer pk (name: its registered name, may be
 * NULL).  Rates and latency deltas are computed against the previous
 * report of the same peer.  PARLEY_OK, or PARLEY_ELIMIT when the peer or
 * some of its topics could not be tracked (the rest is still taken),
 * PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_dash_report(struct parley_dash *d,
                                        const uint8_t pk[32],
                                        const char *name,
                                        const struct parley_report *r,
                                        int64_t now_ms)
    PARLEY_NONNULL(1, 2, 4);

/* A peer joined (registered for the first time) or expired.  An expired
 * peer's figures are forgotten. */
void parley_dash_event(struct parley_dash *d, int kind, const uint8_t pk[32],
                       const char *name, int64_t now_ms)
    PARLEY_NONNULL(1, 3);

/* Once per second (more often is harmless): closes the seconds (and
 * minutes) before now_ms into the history.  peer_count is the registry's
 * peer count now. */
void parley_dash_tick(struct parley_dash *d, int64_t now_ms,
                      uint32_t peer_count) PARLEY_NONNULL(1);

/* The current figures. */
void parley_dash_now(const struct parley_dash *d, int64_t now_ms,
                     struct parley_dash_now *out) PARLEY_NONNULL(1, 3);

/* The peer's figures, or NULL if it has never reported (or is untracked).
 * Valid until the next non-const call. */
const struct parley_dash_peer *parley_dash_peer(const struct parley_dash *d,
                                                const uint8_t pk[32])
    PARLEY_NONNULL(1, 2);
/* Walks the tracked peers; cb returning non-zero stops the walk. */
void parley_dash_foreach_peer(const struct parley_dash *d,
                              int (*cb)(void *ctx,
                                        const struct parley_dash_peer *p),
                              void *ctx) PARLEY_NONNULL(1, 2);
/* Walks the tracked topics that a fresh report mentions. */
void parley_dash_foreach_topic(const struct parley_dash *d, int64_t now_ms,
                               int (*cb)(void *ctx,
                                         const struct parley_dash_topic *t),
                               void *ctx) PARLEY_NONNULL(1, 3);
/* One topic's figures.  PARLEY_ENOTFOUND if no report names it.
 * out->topic is valid until the next non-const call. */
PARLEY_NODISCARD int parley_dash_topic(const struct parley_dash *d,
                                       const char *topic, int64_t now_ms,
                                       struct parley_dash_topic *out)
    PARLEY_NONNULL(1, 2, 4);

/* Walks one history series, oldest first, points with t >= since_ms.
 * topic names the topic for PARLEY_DASH_TOPIC_LATENCY (else ignored).
 * Missing points are simply absent (no report that second, no deliveries
 * in the window). */
void parley_dash_history(const struct parley_dash *d, int series, int res,
                         const char *topic, int64_t since_ms,
                         void (*cb)(void *ctx,
                                    const struct parley_dash_point *p),
                         void *ctx) PARLEY_NONNULL(1, 6);
/* The newest point of a series: for COARSE the minute in progress so far
 * (so a live view of the 24 h window moves every second).  0 if none. */
int parley_dash_latest(const struct parley_dash *d, int series, int res,
                       const char *topic, int64_t now_ms,
                       struct parley_dash_point *out) PARLEY_NONNULL(1, 6);
/* Walks the topics that have a latency history. */
void parley_dash_foreach_series(const struct parley_dash *d,
                                void (*cb)(void *ctx, const char *topic),
                                void *ctx) PARLEY_NONNULL(1, 2);

/* Walks the events with t >= since_ms, newest first, at most max. */
void parley_dash_foreach_event(const struct parley_dash *d, int64_t since_ms,
                               size_t max,
                               void (*cb)(void *ctx,
                                          const struct parley_dash_event *e),
                               void *ctx) PARLEY_NONNULL(1, 4);

void parley_dash_get_stats(const struct parley_dash *d,
                           struct parley_dash_stats *out) PARLEY_NONNULL(1, 2);

/* Quantile q (0..1) of a latency histogram in the report's bucket layout,
 * in milliseconds; NAN when it is empty. */
double parley_dash_quantile_ms(const uint64_t lat[PARLEY_REPORT_LAT_BUCKETS],
                               double q) PARLEY_NONNULL(1);

#endif
