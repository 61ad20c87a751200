/* test_report_wire.c — the REPORT payload codec (wire/report_wire.h):
 * exact bytes, round trips, and every rule the decoder enforces. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "wire/report_wire.h"

static struct parley_report *fresh(void) {
  static struct parley_report r;
  memset(&r, 0, sizeof r);
  return &r;
}

static void set_topic(struct parley_report_topic *t, const char *name,
                      uint8_t flags) {
  t->topic.ptr = name;
  t->topic.len = strlen(name);
  t->flags = flags;
}

/* The fixed part of a report whose every field is distinct. */
static struct parley_report *sample(void) {
  struct parley_report *r = fresh();
  r->uptime_ms = 0x0102030405060708ull;
  r->msgs_in = 1;
  r->msgs_out = 2;
  r->bytes_in = 3;
  r->bytes_out = 4;
  r->acks_sent = 5;
  r->acks_received = 6;
  r->retries = 7;
  r->errors = 8;
  r->outbox_depth = 9;
  r->links_open = 0x0a0b0c0d;
  r->rss_bytes = 11;
  r->open_fds = 12;
  r->cpu_ms = 13;
  r->lat_sum_us = 14;
  for (int i = 0; i < PARLEY_REPORT_LAT_BUCKETS; i++)
    r->lat[i] = (uint64_t)(100 + i);
  return r;
}

static void test_layout_exact(void **state) {
  struct parley_report *r = sample();
  uint8_t buf[PARLEY_REPORT_MAX_LEN];
  size_t n = 0;
  (void)state;

  set_topic(&r->topics[0], "news", PARLEY_REPORT_T_PUBLISHER);
  r->topics[0].msgs_in = 21;
  r->topics[0].msgs_out = 22;
  r->topics[0].bytes_in = 23;
  r->topics[0].bytes_out = 24;
  r->ntopics = 1;
  assert_int_equal(parley_report_encoded_size(r), 259 + 1 + 4 + 1 + 32);
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 297);
  /* version, flags, uptime big-endian */
  assert_int_equal(buf[0], 1);
  assert_int_equal(buf[1], 0);
  static const uint8_t up[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  assert_memory_equal(buf + 2, up, 8);
  /* msgs_in .. outbox: 9 u64 of 1..9 */
  for (int i = 0; i < 9; i++) {
    assert_int_equal(buf[10 + 8 * i + 7], i + 1);
    assert_int_equal(buf[10 + 8 * i], 0);
  }
  /* links_open u32 at 82 */
  static const uint8_t links[4] = {0x0a, 0x0b, 0x0c, 0x0d};
  assert_memory_equal(buf + 82, links, 4);
  assert_int_equal(buf[86 + 7], 11); /* rss */
  assert_int_equal(buf[94 + 3], 12); /* fds u32 */
  assert_int_equal(buf[98 + 7], 13); /* cpu */
  assert_int_equal(buf[106 + 7], 14); /* lat_sum_us */
  assert_int_equal(buf[114 + 7], 100); /* lat[0] */
  assert_int_equal(buf[114 + 8 * 17 + 7], 117);
  assert_int_equal(buf[258], 1); /* ntopics */
  assert_int_equal(buf[259], 4);
  assert_memory_equal(buf + 260, "news", 4);
  assert_int_equal(buf[264], PARLEY_REPORT_T_PUBLISHER);
  assert_int_equal(buf[265 + 7], 21);
  assert_int_equal(buf[289 + 7], 24);
}

static void test_round_trip(void **state) {
  struct parley_report *r = sample(), out;
  uint8_t buf[PARLEY_REPORT_MAX_LEN], again[PARLEY_REPORT_MAX_LEN];
  size_t n = 0, m = 0;
  (void)state;

  set_topic(&r->topics[0], "a", PARLEY_REPORT_T_SUBSCRIBER);
  set_topic(&r->topics[1], "b.c", PARLEY_REPORT_T_ALL);
  for (int i = 0; i < PARLEY_REPORT_LAT_BUCKETS; i++)
    r->topics[1].lat[i] = (uint64_t)i * 3;
  r->ntopics = 2;
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 259 + (34 + 1) + (34 + 3 + 144));
  assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_OK);
  assert_int_equal(out.version, 1);
  assert_int_equal(out.uptime_ms, r->uptime_ms);
  assert_int_equal(out.links_open, r->links_open);
  assert_int_equal(out.lat[17], 117);
  assert_int_equal(out.ntopics, 2);
  assert_int_equal(out.topics[1].topic.len, 3);
  assert_memory_equal(out.topics[1].topic.ptr, "b.c", 3);
  assert_int_equal(out.topics[1].flags, PARLEY_REPORT_T_ALL);
  assert_int_equal(out.topics[1].lat[5], 15);
  assert_int_equal(out.topics[0].lat[5], 0);
  assert_int_equal(parley_report_encode(&out, again, sizeof again, &m),
                   PARLEY_OK);
  assert_int_equal(m, n);
  assert_memory_equal(again, buf, n);
}

static void test_largest(void **state) {
  static char names[PARLEY_REPORT_MAX_TOPICS][256];
  struct parley_report *r = sample();
  static uint8_t buf[PARLEY_REPORT_MAX_LEN + 10];
  static struct parley_report out;
  size_t n = 0;
  (void)state;

  for (int i = 0; i < PARLEY_REPORT_MAX_TOPICS; i++) {
    memset(names[i], 'x', 255);
    names[i][0] = (char)('0' + i / 10);
    names[i][1] = (char)('0' + i % 10);
    names[i][255] = '\0';
    set_topic(&r->topics[i], names[i],
              PARLEY_REPORT_T_LATENCY | PARLEY_REPORT_T_PUBLISHER);
  }
  r->ntopics = PARLEY_REPORT_MAX_TOPICS;
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, PARLEY_REPORT_MAX_LEN);
  assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_OK);
  assert_int_equal(out.ntopics, 64);
  /* One topic too many. */
  r->ntopics = PARLEY_REPORT_MAX_TOPICS + 1;
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
}

static void test_encode_errors(void **state) {
  struct parley_report *r = sample();
  uint8_t buf[400];
  size_t n = 0;
  (void)state;

  /* cap too small: the size needed comes back */
  assert_int_equal(parley_report_encode(r, buf, 100, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, 259);
  assert_int_equal(parley_report_encode(r, NULL, 0, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, 259);
  /* invalid topics */
  set_topic(&r->topics[0], "@direct", 0);
  r->ntopics = 1;
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  set_topic(&r->topics[0], "has space", 0);
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  set_topic(&r->topics[0], "", 0);
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  set_topic(&r->topics[0], "ok", 0x8);
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  set_topic(&r->topics[0], "ok", 0);
  set_topic(&r->topics[1], "ok", 1);
  r->ntopics = 2;
  assert_int_equal(parley_report_encode(r, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  assert_int_equal(parley_report_encoded_size(r), 0);
}

static size_t encode_two(uint8_t *buf, size_t cap) {
  struct parley_report *r = sample();
  size_t n = 0;
  set_topic(&r->topics[0], "t1", PARLEY_REPORT_T_LATENCY);
  set_topic(&r->topics[1], "t2", 0);
  r->ntopics = 2;
  assert_int_equal(parley_report_encode(r, buf, cap, &n), PARLEY_OK);
  return n;
}

static void test_decode_rules(void **state) {
  uint8_t buf[1024];
  struct parley_report out;
  size_t n = encode_two(buf, sizeof buf);
  (void)state;

  assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_OK);
  /* Every truncation is malformed, and leaves *out zeroed. */
  for (size_t k = 1; k < n; k++) {
    assert_int_equal(parley_report_decode(buf, k, &out), PARLEY_EPROTO);
    assert_int_equal(out.ntopics, 0);
    assert_int_equal(out.version, 0);
  }
  assert_int_equal(parley_report_decode(buf, 0, &out), PARLEY_EPROTO);
  assert_int_equal(parley_report_decode(NULL, 10, &out), PARLEY_EPROTO);
  /* trailing byte */
  buf[n] = 0;
  assert_int_equal(parley_report_decode(buf, n + 1, &out), PARLEY_EPROTO);
  /* another version */
  buf[0] = 2;
  assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_EVERSION);
  buf[0] = 1;
  /* reserved flags */
  buf[1] = 1;
  assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_EPROTO);
  buf[1] = 0;
  /* ntopics over the limit */
  buf[258] = 65;
  assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_EPROTO);
  buf[258] = 2;
  /* the second topic renamed to the first: repeated */
  {
    size_t second = 259 + 1 + 2 + 1 + 32 + 144;
    assert_int_equal(buf[second], 2);
    buf[second + 2] = '1';
    assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_EPROTO);
    buf[second + 2] = '2';
    /* unknown tflags bit */
    buf[second + 3] = 0x10;
    assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_EPROTO);
    buf[second + 3] = 0;
    /* a space in a topic */
    buf[second + 1] = ' ';
    assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_EPROTO);
    buf[second + 1] = 't';
  }
  assert_int_equal(parley_report_decode(buf, n, &out), PARLEY_OK);
  assert_int_equal(out.topics[0].flags, PARLEY_REPORT_T_LATENCY);
}

static void test_frame_is_opaque(void **state) {
  struct parley_frame f, g;
  uint8_t payload[600], buf[700];
  size_t n = 0, used = 0, plen = encode_two(payload, sizeof payload);
  (void)state;

  assert_true(parley_frame_is_opaque(PARLEY_FRAME_REPORT));
  assert_string_equal(parley_frame_type_name(PARLEY_FRAME_REPORT), "REPORT");
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_REPORT;
  f.u.opaque.data = payload;
  f.u.opaque.len = plen;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 5 + plen);
  assert_int_equal(buf[4], 0x58);
  assert_int_equal(parley_wire_decode(buf, n, 1 << 20, &g, &used), PARLEY_OK);
  assert_int_equal(used, n);
  assert_int_equal(g.u.opaque.len, plen);
  assert_memory_equal(g.u.opaque.data, payload, plen);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layout_exact),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_largest),
      cmocka_unit_test(test_encode_errors),
      cmocka_unit_test(test_decode_rules),
      cmocka_unit_test(test_frame_is_opaque),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
