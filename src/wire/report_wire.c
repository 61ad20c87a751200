/* report_wire.c — the REPORT payload (layout in report_wire.h). */
#include "wire/report_wire.h"

#include <string.h>

#include "core/util.h"

_Static_assert(PARLEY_REPORT_HDR_LEN == 259, "REPORT fixed part");
_Static_assert(PARLEY_REPORT_MAX_LEN == 27971, "REPORT maximum size");

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static int topic_ok(const struct parley_str *t) {
  return t->ptr != NULL && t->len >= 1 &&
         t->len <= PARLEY_REPORT_MAX_TOPIC_LEN &&
         parley_topic_valid(t->ptr, t->len, PARLEY_REPORT_MAX_TOPIC_LEN);
}

/* 1 if topic i repeats one of topics[0..i). */
static int repeated(const struct parley_report_topic *topics, size_t i) {
  for (size_t j = 0; j < i; j++)
    if (topics[j].topic.len == topics[i].topic.len &&
        memcmp(topics[j].topic.ptr, topics[i].topic.ptr,
               topics[i].topic.len) == 0)
      return 1;
  return 0;
}

static size_t topic_size(const struct parley_report_topic *t) {
  return PARLEY_REPORT_TOPIC_FIXED + t->topic.len +
         ((t->flags & PARLEY_REPORT_T_LATENCY)
              ? 8 * PARLEY_REPORT_LAT_BUCKETS
              : 0);
}

size_t parley_report_encoded_size(const struct parley_report *r) {
  size_t n = PARLEY_REPORT_HDR_LEN;

  if (r->ntopics > PARLEY_REPORT_MAX_TOPICS)
    return 0;
  for (size_t i = 0; i < r->ntopics; i++) {
    const struct parley_report_topic *t = &r->topics[i];
    if (!topic_ok(&t->topic) || (t->flags & ~PARLEY_REPORT_T_ALL) != 0 ||
        repeated(r->topics, i))
      return 0;
    n += topic_size(t);
  }
  return n;
}

int parley_report_encode(const struct parley_report *r, uint8_t *buf,
                         size_t cap, size_t *written) {
  const uint64_t head[] = {r->uptime_ms,  r->msgs_in,      r->msgs_out,
                           r->bytes_in,   r->bytes_out,    r->acks_sent,
                           r->acks_received, r->retries,   r->errors,
                           r->outbox_depth};
  size_t need = parley_report_encoded_size(r), off;

  *written = 0;
  if (need == 0)
    return PARLEY_EINVAL;
  if (buf == NULL || cap < need) {
    *written = need;
    return PARLEY_ETOOBIG;
  }
  buf[0] = PARLEY_REPORT_VERSION;
  buf[1] = 0;
  off = 2;
  for (size_t i = 0; i < sizeof head / sizeof head[0]; i++, off += 8)
    put_u64(buf + off, head[i]);
  put_u32(buf + off, r->links_open);
  off += 4;
  put_u64(buf + off, r->rss_bytes);
  off += 8;
  put_u32(buf + off, r->open_fds);
  off += 4;
  put_u64(buf + off, r->cpu_ms);
  off += 8;
  put_u64(buf + off, r->lat_sum_us);
  off += 8;
  for (size_t i = 0; i < PARLEY_REPORT_LAT_BUCKETS; i++, off += 8)
    put_u64(buf + off, r->lat[i]);
  buf[off++] = (uint8_t)r->ntopics;
  for (size_t i = 0; i < r->ntopics; i++) {
    const struct parley_report_topic *t = &r->topics[i];
    const uint64_t c[] = {t->msgs_in, t->msgs_out, t->bytes_in, t->bytes_out};
    buf[off++] = (uint8_t)t->topic.len;
    memcpy(buf + off, t->topic.ptr, t->topic.len);
    off += t->topic.len;
    buf[off++] = t->flags;
    for (size_t k = 0; k < 4; k++, off += 8)
      put_u64(buf + off, c[k]);
    if (t->flags & PARLEY_REPORT_T_LATENCY)
      for (size_t k = 0; k < PARLEY_REPORT_LAT_BUCKETS; k++, off += 8)
        put_u64(buf + off, t->lat[k]);
  }
  *written = off;
  return PARLEY_OK;
}

int parley_report_decode(const uint8_t *buf, size_t len,
                         struct parley_report *out) {
  uint64_t *head[] = {&out->uptime_ms,  &out->msgs_in,       &out->msgs_out,
                      &out->bytes_in,   &out->bytes_out,     &out->acks_sent,
                      &out->acks_received, &out->retries,    &out->errors,
                      &out->outbox_depth};
  size_t off;
  int rc = PARLEY_EPROTO;

  memset(out, 0, sizeof *out);
  if (buf == NULL || len < 1)
    return PARLEY_EPROTO;
  if (buf[0] != PARLEY_REPORT_VERSION)
    return PARLEY_EVERSION;
  if (len < PARLEY_REPORT_HDR_LEN || len > PARLEY_REPORT_MAX_LEN ||
      buf[1] != 0)
    return PARLEY_EPROTO;
  out->version = buf[0];
  off = 2;
  for (size_t i = 0; i < sizeof head / sizeof head[0]; i++, off += 8)
    *head[i] = get_u64(buf + off);
  out->links_open = get_u32(buf + off);
  off += 4;
  out->rss_bytes = get_u64(buf + off);
  off += 8;
  out->open_fds = get_u32(buf + off);
  off += 4;
  out->cpu_ms = get_u64(buf + off);
  off += 8;
  out->lat_sum_us = get_u64(buf + off);
  off += 8;
  for (size_t i = 0; i < PARLEY_REPORT_LAT_BUCKETS; i++, off += 8)
    out->lat[i] = get_u64(buf + off);
  out->ntopics = buf[off++];
  if (out->ntopics > PARLEY_REPORT_MAX_TOPICS)
    goto bad;
  for (size_t i = 0; i < out->ntopics; i++) {
    struct parley_report_topic *t = &out->topics[i];
    uint64_t *c[] = {&t->msgs_in, &t->msgs_out, &t->bytes_in, &t->bytes_out};
    size_t n;
    if (off >= len)
      goto bad;
    n = buf[off++];
    if (n == 0 || len - off < n + 1 + 32)
      goto bad;
    t->topic.ptr = (const char *)buf + off;
    t->topic.len = n;
    off += n;
    t->flags = buf[off++];
    if (!topic_ok(&t->topic) || (t->flags & ~PARLEY_REPORT_T_ALL) != 0 ||
        repeated(out->topics, i))
      goto bad;
    for (size_t k = 0; k < 4; k++, off += 8)
      *c[k] = get_u64(buf + off);
    if (t->flags & PARLEY_REPORT_T_LATENCY) {
      if (len - off < 8 * PARLEY_REPORT_LAT_BUCKETS)
        goto bad;
      for (size_t k = 0; k < PARLEY_REPORT_LAT_BUCKETS; k++, off += 8)
        t->lat[k] = get_u64(buf + off);
    }
  }
  if (off != len)
    goto bad;
  return PARLEY_OK;
bad:
  memset(out, 0, sizeof *out);
  return rc;
}
