/*
 * report.c — the figures a peer reports to its index node every couple of
 * seconds (REPORT frames, src/wire/report_wire.h) for the dashboard:
 * totals, gauges, the delivery-latency histogram, and counters for up to
 * PARLEY_REPORT_MAX_TOPICS topics.  Fire-and-forget: a report lost with an
 * index link is simply superseded by the next one.
 */
#include "peer/node_int.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/alloc.h"
#include "wire/report_wire.h"

/* Per-topic counters since start. */
struct tstat {
  uint8_t flags; /* PARLEY_REPORT_T_PUBLISHER / _SUBSCRIBER */
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  struct parley_histogram lat;
};

/* Messages come in runs on one topic: the lookup remembers the last
 * counters found (a hash per message was a few per cent of a publisher's
 * time). */
static struct tstat *tstat_get(struct parley_node *n, const char *topic) {
  size_t len = strlen(topic);
  struct tstat *t =
      parley_map_get_memo(&n->topic_stats, &n->topic_stats_memo, topic, len);
  if (t != NULL)
    return t;
  if (n->topic_stats.count >= PARLEY_REPORT_MAX_TOPICS)
    return NULL; /* the first topics seen are reported; the rest are not */
  t = parley_calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  parley_histogram_init_latency(&t->lat);
  if (parley_map_put(&n->topic_stats, topic, len, t, NULL) < 0) {
    parley_free(t);
    return NULL;
  }
  return t;
}

void parley__report_count(struct parley_node *n, const char *channel, int in,
                          size_t bytes, double latency_s) {
  struct tstat *t;
  if (channel[0] == '@')
    return; /* direct messages are not topics */
  t = tstat_get(n, channel);
  if (t == NULL)
    return;
  if (in) {
    t->msgs_in++;
    t->bytes_in += bytes;
    if (latency_s >= 0)
      parley_histogram_observe(&t->lat, latency_s);
  } else {
    t->msgs_out++;
    t->bytes_out += bytes;
    t->flags |= PARLEY_REPORT_T_PUBLISHER;
  }
}

static void process_figures(uint64_t *rss, uint32_t *fds, uint64_t *cpu_ms) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  struct rusage ru;
  DIR *d;
  struct dirent *de;

  *rss = 0;
  *fds = 0;
  *cpu_ms = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) == 2 && resident > 0)
      *rss = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    fclose(f);
  }
  d = opendir("/proc/self/fd");
  if (d) {
    while ((de = readdir(d)) != NULL)
      if (de->d_name[0] != '.')
        (*fds)++;
    closedir(d);
    if (*fds > 0)
      (*fds)--; /* the directory stream itself */
  }
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    *cpu_ms = (uint64_t)ru.ru_utime.tv_sec * 1000 +
              (uint64_t)ru.ru_utime.tv_usec / 1000 +
              (uint64_t)ru.ru_stime.tv_sec * 1000 +
              (uint64_t)ru.ru_stime.tv_usec / 1000;
}

static void copy_hist(uint64_t out[PARLEY_REPORT_LAT_BUCKETS],
                      const struct parley_histogram *h) {
  for (size_t i = 0; i < PARLEY_REPORT_LAT_BUCKETS; i++)
    out[i] = i <= h->nbounds ? h->counts[i] : 0;
}

static void report_cb(uv_timer_t *timer) {
  struct parley_node *n = timer->data;
  const struct parley_net_stats *ns = parley_net_stats(n->net);
  struct parley_report *r;
  struct parley_map_iter it;
  struct parley_map_entry *e;
  struct parley_frame f;
  uint8_t *buf;
  size_t len;

  if (!n->registered || n->ilink == NULL)
    return;
  r = parley_calloc(1, sizeof *r);
  if (r == NULL)
    return;
  r->version = PARLEY_REPORT_VERSION;
  r->uptime_ms = parley_mono_ms() - n->started_ms;
  r->msgs_in = n->m.received + n->m.sync_messages;
  r->msgs_out = n->m.published;
  r->bytes_in = n->m.bytes_received;
  r->bytes_out = n->m.bytes_published;
  r->acks_sent = n->m.acks_sent;
  r->acks_received = n->m.acks_received;
  r->retries = n->m.retries;
  r->errors = n->m.rejected + n->m.async_dropped + ns->protocol_errors;
  r->outbox_depth = n->outbox_depth;
  r->links_open = (uint32_t)ns->links_open;
  process_figures(&r->rss_bytes, &r->open_fds, &r->cpu_ms);
  r->lat_sum_us = (uint64_t)(n->m.delivery_latency.sum * 1e6);
  copy_hist(r->lat, &n->m.delivery_latency);
  parley_map_iter_init(&it, &n->topic_stats);
  while ((e = parley_map_iter_next(&it)) != NULL &&
         r->ntopics < PARLEY_REPORT_MAX_TOPICS) {
    struct tstat *t = e->value;
    struct parley_report_topic *rt = &r->topics[r->ntopics++];
    rt->topic.ptr = (const char *)e->key;
    rt->topic.len = e->klen;
    rt->flags = t->flags;
    if (parley_map_get(&n->subs, e->key, e->klen) != NULL)
      rt->flags |= PARLEY_REPORT_T_SUBSCRIBER;
    rt->msgs_in = t->msgs_in;
    rt->msgs_out = t->msgs_out;
    rt->bytes_in = t->bytes_in;
    rt->bytes_out = t->bytes_out;
    if (t->lat.count > 0) {
      rt->flags |= PARLEY_REPORT_T_LATENCY;
      copy_hist(rt->lat, &t->lat);
    }
  }
  len = parley_report_encoded_size(r);
  buf = len ? parley_malloc(len) : NULL;
  if (buf != NULL && parley_report_encode(r, buf, len, &len) == PARLEY_OK) {
    memset(&f, 0, sizeof f);
    f.type = PARLEY_FRAME_REPORT;
    f.u.opaque.data = buf;
    f.u.opaque.len = len;
    if (parley_link_send(n->ilink, &f) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "report not sent");
  }
  parley_free(buf);
  parley_free(r);
}

void parley__report_start(struct parley_node *n) {
  uv_timer_start(&n->report_timer, report_cb, PARLEY_REPORT_INTERVAL_MS,
                 PARLEY_REPORT_INTERVAL_MS);
}

void parley__report_free(struct parley_node *n) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  parley_map_iter_init(&it, &n->topic_stats);
  while ((e = parley_map_iter_next(&it)) != NULL)
    parley_free(e->value);
  parley_map_close(&n->topic_stats);
}
