/*
 * report_wire.h — the payload of REPORT (0x58, an opaque frame in wire.h),
 * as pure functions.
 *
 * Every parleyd sends one REPORT to the index it is linked to every few
 * seconds (fire-and-forget: no request id, no answer).  It carries the
 * daemon's own figures since it started; the index turns successive
 * reports into rates for the dashboard (docs/internals/DASHBOARD.md).
 * Counters are totals since the daemon started, so a lost report costs
 * nothing but resolution; a report whose uptime went backwards (the
 * daemon restarted) starts a new baseline.
 *
 * Layout, version 1 (big-endian; str8 = u8 length + bytes):
 *
 *   u8   version          1
 *   u8   flags            0 (reserved)
 *   u64  uptime_ms        since the daemon started
 *   u64  msgs_in          messages received and stored (all topics)
 *   u64  msgs_out         messages published
 *   u64  bytes_in         body bytes received
 *   u64  bytes_out        body bytes published
 *   u64  acks_sent
 *   u64  acks_received
 *   u64  retries          delivery attempts repeated
 *   u64  errors           rejected + async dropped + protocol errors
 *   u64  outbox_depth     gauge: deliveries waiting
 *   u32  links_open       gauge
 *   u64  rss_bytes        gauge
 *   u32  open_fds         gauge
 *   u64  cpu_ms           user + system CPU time since start
 *   u64  lat_sum_us       sum of all delivery latencies, microseconds
 *   u64  lat[18]          delivery latency histogram (below), per bucket
 *   u8   ntopics          0..PARLEY_REPORT_MAX_TOPICS
 *   ntopics x topic:
 *     str8 topic          1..255 bytes, parley_topic_valid
 *     u8   tflags         PARLEY_REPORT_T_* bits, others 0
 *     u64  msgs_in, msgs_out, bytes_in, bytes_out
 *     u64  lat[18]        only when tflags has PARLEY_REPORT_T_LATENCY
 *
 * The histogram buckets are those of parley_histogram_init_latency
 * (metrics/prom.h): upper bounds 50us, 100us, 250us, 500us, 1ms, 2.5ms,
 * 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s and +Inf;
 * lat[i] counts the observations of bucket i alone (not cumulative), so a
 * daemon copies struct parley_histogram.counts[0..17] as they are.
 *
 * Topics are distinct (a repeated topic is malformed) and in any order;
 * nothing may follow the last one.  The payload is 259..27971 bytes.
 * Decoders never allocate; topic names point into the caller's buffer.
 * encode(decode(b)) == b for every b that decodes.
 */
#ifndef PARLEY_WIRE_REPORT_WIRE_H
#define PARLEY_WIRE_REPORT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/wire.h"

#define PARLEY_REPORT_VERSION 1
/* 17 finite bounds of the default latency histogram + the +Inf bucket. */
#define PARLEY_REPORT_LAT_BUCKETS 18
/* Topics one report may carry (a daemon with more sends its busiest). */
#define PARLEY_REPORT_MAX_TOPICS 64
/* The longest topic name (PARLEY_MAX_TOPIC). */
#define PARLEY_REPORT_MAX_TOPIC_LEN 255
/* Seconds between reports a daemon should keep to. */
#define PARLEY_REPORT_INTERVAL_MS 2000u

/* tflags */
#define PARLEY_REPORT_T_PUBLISHER 0x1u  /* it has published on the topic */
#define PARLEY_REPORT_T_SUBSCRIBER 0x2u /* it subscribes to the topic */
#define PARLEY_REPORT_T_LATENCY 0x4u    /* lat[] follows */
#define PARLEY_REPORT_T_ALL 0x7u

/* Fixed part before the topics, and the sizes of one topic entry. */
#define PARLEY_REPORT_HDR_LEN (2 + 8 * 13 + 4 + 4 + 8 * PARLEY_REPORT_LAT_BUCKETS + 1)
#define PARLEY_REPORT_TOPIC_FIXED (1 + 1 + 8 * 4)
#define PARLEY_REPORT_MAX_LEN                                                  \
  (PARLEY_REPORT_HDR_LEN +                                                     \
   PARLEY_REPORT_MAX_TOPICS *                                                  \
       (PARLEY_REPORT_TOPIC_FIXED + PARLEY_REPORT_MAX_TOPIC_LEN +             \
        8 * PARLEY_REPORT_LAT_BUCKETS))

struct parley_report_topic {
  struct parley_str topic; /* borrowed */
  uint8_t flags;           /* PARLEY_REPORT_T_* */
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  uint64_t lat[PARLEY_REPORT_LAT_BUCKETS]; /* with PARLEY_REPORT_T_LATENCY */
};

/* One report.  To send one, zero it, fill in the plain values and call
 * parley_report_encode; version is set by the encoder. */
struct parley_report {
  uint8_t version; /* decode output: PARLEY_REPORT_VERSION */
  uint64_t uptime_ms;
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  uint64_t acks_sent, acks_received, retries, errors;
  uint64_t outbox_depth;
  uint32_t links_open;
  uint64_t rss_bytes;
  uint32_t open_fds;
  uint64_t cpu_ms;
  uint64_t lat_sum_us;
  uint64_t lat[PARLEY_REPORT_LAT_BUCKETS];
  size_t ntopics; /* 0..PARLEY_REPORT_MAX_TOPICS */
  struct parley_report_topic topics[PARLEY_REPORT_MAX_TOPICS];
};

/* Bytes parley_report_encode writes for r (0 if r breaks a rule). */
size_t parley_report_encoded_size(const struct parley_report *r)
    PARLEY_NONNULL(1);

/* Encodes r into buf.  PARLEY_EINVAL if r breaks a rule above (too many
 * topics, an invalid or repeated topic, unknown tflags); PARLEY_ETOOBIG if
 * cap is short (*written is then the size needed).  OUT: *written. */
PARLEY_NODISCARD int parley_report_encode(const struct parley_report *r,
                                          uint8_t *buf, size_t cap,
                                          size_t *written)
    PARLEY_NONNULL(1, 4);

/* Decodes a whole REPORT payload.  PARLEY_EVERSION for a version other
 * than 1 (a newer daemon: the index may ignore it quietly), PARLEY_EPROTO
 * for anything else that breaks the layout; *out is zeroed then.  Topic
 * names in *out borrow from buf. */
PARLEY_NODISCARD int parley_report_decode(const uint8_t *buf, size_t len,
                                          struct parley_report *out)
    PARLEY_NONNULL(3);

#endif
