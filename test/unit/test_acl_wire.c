/*
 * test_acl_wire.c — the private-topic payload codecs (src/wire/acl_wire.c):
 * golden bytes written out by hand from the layouts in acl_wire.h, round
 * trips, every truncation and trailing byte of every frame, each rule, the
 * encoders' refusals, the KEY_PUT signing input, and the frame types in
 * wire.h (names, opaque, carried whole by parley_wire_encode/decode).
 */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <assert.h>
#include <string.h>

#include "crypto/groupkey.h" /* constants only: this test links parley_wire */
#include "wire/acl_wire.h"

static_assert(PARLEY_ACL_GRANT_MAX == PARLEY_GRANT_MAX_LEN, "grant cap");
static_assert(PARLEY_ACL_BLOB_MAX == PARLEY_GROUPKEY_BLOB_MAX, "blob cap");

static uint8_t k_aa[32], k_bb[32], k_cc[32], k_sig[64], k_blob[600];

static int setup(void **state) {
  (void)state;
  memset(k_aa, 0xaa, 32);
  memset(k_bb, 0xbb, 32);
  memset(k_cc, 0xcc, 32);
  for (int i = 0; i < 64; i++)
    k_sig[i] = (uint8_t)(0x40 + i);
  for (int i = 0; i < 600; i++)
    k_blob[i] = (uint8_t)(i * 7);
  return 0;
}

static struct parley_str S(const char *s) {
  struct parley_str r;
  r.ptr = s;
  r.len = strlen(s);
  return r;
}

/* One codec behind a common signature, so one loop tests them all. */
typedef int (*enc_fn)(const void *m, uint8_t *buf, size_t cap, size_t *w);
typedef int (*dec_fn)(const uint8_t *buf, size_t len, void *out);

#define WRAP(name, type)                                                       \
  static int enc_##name(const void *m, uint8_t *b, size_t c, size_t *w) {      \
    return parley_acl_##name##_encode((const struct type *)m, b, c, w);        \
  }                                                                            \
  static int dec_##name(const uint8_t *b, size_t l, void *o) {                 \
    return parley_acl_##name##_decode(b, l, (struct type *)o);                 \
  }
WRAP(topic_ctl, parley_acl_topic_ctl)
WRAP(key_put, parley_acl_key_put)
WRAP(key_get, parley_acl_key_get)
WRAP(keys, parley_acl_keys)
WRAP(members_get, parley_acl_members_get)
WRAP(members, parley_acl_members)
WRAP(event, parley_acl_event)

/* Encodes m, expects exactly want, then checks: decode of want succeeds
 * and re-encodes to want; every shorter prefix and every extension by one
 * byte is refused; measuring with buf NULL gives the size; a buffer one
 * byte short is ETOOBIG with the size. */
static void check_codec(enc_fn enc, dec_fn dec, const void *m,
                        const uint8_t *want, size_t want_len, size_t out_size) {
  uint8_t buf[2048], again[2048];
  union {
    struct parley_acl_keys k;
    struct parley_acl_members ms;
    uint8_t raw[1024];
  } out;
  size_t w = 0, w2 = 0;

  assert_true(out_size <= sizeof out);
  assert_int_equal(enc(m, buf, sizeof buf, &w), PARLEY_OK);
  assert_int_equal(w, want_len);
  assert_memory_equal(buf, want, want_len);

  assert_int_equal(dec(want, want_len, &out), PARLEY_OK);
  assert_int_equal(enc(&out, again, sizeof again, &w2), PARLEY_OK);
  assert_int_equal(w2, want_len);
  assert_memory_equal(again, want, want_len);

  for (size_t n = 0; n < want_len; n++) {
    memset(&out, 0x5a, sizeof out);
    assert_int_equal(dec(want, n, &out), PARLEY_EPROTO);
    for (size_t i = 0; i < out_size; i++) /* zeroed on error */
      assert_int_equal(out.raw[i], 0);
  }
  memcpy(buf, want, want_len);
  buf[want_len] = 0;
  assert_int_equal(dec(buf, want_len + 1, &out), PARLEY_EPROTO);

  w = 0;
  assert_int_equal(enc(m, NULL, 0, &w), PARLEY_ETOOBIG);
  assert_int_equal(w, want_len);
  w = 0;
  assert_int_equal(enc(m, buf, want_len - 1, &w), PARLEY_ETOOBIG);
  assert_int_equal(w, want_len);
}

static size_t be(uint8_t *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  return n;
}

static size_t put(uint8_t *p, const void *src, size_t n) {
  memcpy(p, src, n);
  return n;
}

/* ---- golden bytes, one test per frame ------------------------------------ */

static void test_topic_ctl(void **state) {
  static const uint8_t grant[5] = {1, 2, 3, 4, 5};
  static const uint8_t want[] = {0x00, 0x00, 0x01, 0x02, /* req 258 */
                                 0x00, 0x05,             /* u16 length */
                                 1,    2,    3,    4,    5};
  struct parley_acl_topic_ctl m = {258, grant, 5}, d;
  uint8_t big[PARLEY_ACL_GRANT_MAX + 1], buf[1024];
  size_t w;
  (void)state;

  check_codec(enc_topic_ctl, dec_topic_ctl, &m, want, sizeof want, sizeof d);
  assert_int_equal(parley_acl_topic_ctl_decode(want, sizeof want, &d),
                   PARLEY_OK);
  assert_int_equal(d.req, 258);
  assert_ptr_equal(d.grant, want + 6);
  assert_int_equal(d.grant_len, 5);

  /* Length 0 and lengths over the cap are refused both ways. */
  static const uint8_t empty[] = {0, 0, 0, 1, 0, 0};
  assert_int_equal(parley_acl_topic_ctl_decode(empty, sizeof empty, &d),
                   PARLEY_EPROTO);
  m.grant_len = 0;
  assert_int_equal(parley_acl_topic_ctl_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  memset(big, 7, sizeof big);
  m.grant = big;
  m.grant_len = PARLEY_ACL_GRANT_MAX;
  assert_int_equal(parley_acl_topic_ctl_encode(&m, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, 6 + PARLEY_ACL_GRANT_MAX);
  assert_int_equal(parley_acl_topic_ctl_decode(buf, w, &d), PARLEY_OK);
  m.grant_len = PARLEY_ACL_GRANT_MAX + 1;
  assert_int_equal(parley_acl_topic_ctl_encode(&m, buf, sizeof buf, &w),
                   PARLEY_ETOOBIG);
  /* A hand-made frame over the cap. */
  buf[4] = (uint8_t)((PARLEY_ACL_GRANT_MAX + 1) >> 8);
  buf[5] = (uint8_t)(PARLEY_ACL_GRANT_MAX + 1);
  assert_int_equal(
      parley_acl_topic_ctl_decode(buf, 6 + PARLEY_ACL_GRANT_MAX + 1, &d),
      PARLEY_EPROTO);
  m.grant = NULL;
  m.grant_len = 3;
  assert_int_equal(parley_acl_topic_ctl_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
}

static void test_key_put(void **state) {
  struct parley_acl_key_put m = {7, k_blob, 3, k_sig}, d;
  uint8_t want[4 + 2 + 3 + 64], buf[1024];
  size_t o = 0, w;
  (void)state;

  o += be(want + o, 7, 4);
  o += be(want + o, 3, 2);
  o += put(want + o, k_blob, 3);
  o += put(want + o, k_sig, 64);
  assert_int_equal(o, sizeof want);
  check_codec(enc_key_put, dec_key_put, &m, want, sizeof want, sizeof d);
  assert_int_equal(parley_acl_key_put_decode(want, sizeof want, &d), PARLEY_OK);
  assert_ptr_equal(d.blob, want + 6);
  assert_int_equal(d.blob_len, 3);
  assert_ptr_equal(d.sig, want + 9);

  m.sig = NULL;
  assert_int_equal(parley_acl_key_put_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  m.sig = k_sig;
  m.blob_len = PARLEY_ACL_BLOB_MAX + 1;
  assert_int_equal(parley_acl_key_put_encode(&m, buf, sizeof buf, &w),
                   PARLEY_ETOOBIG);
  m.blob_len = 0;
  assert_int_equal(parley_acl_key_put_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
}

static void test_key_get(void **state) {
  static const uint8_t want[] = {0xff, 0xff, 0xff, 0xff, /* req */
                                 0x04, 'c',  'l',  'u',  'b', /* topic */
                                 0x00, 0x00, 0x00, 0x03};     /* min_epoch */
  struct parley_acl_key_get m = {0xffffffffu, S("club"), 3}, d;
  uint8_t bad[sizeof want], buf[300];
  char longs[257];
  size_t w;
  (void)state;

  check_codec(enc_key_get, dec_key_get, &m, want, sizeof want, sizeof d);
  assert_int_equal(parley_acl_key_get_decode(want, sizeof want, &d), PARLEY_OK);
  assert_int_equal(d.topic.len, 4);
  assert_memory_equal(d.topic.ptr, "club", 4);
  assert_int_equal(d.min_epoch, 3);
  /* NUL inside the topic. */
  memcpy(bad, want, sizeof want);
  bad[6] = 0;
  assert_int_equal(parley_acl_key_get_decode(bad, sizeof bad, &d),
                   PARLEY_EPROTO);
  m.topic.ptr = "cl\0b";
  assert_int_equal(parley_acl_key_get_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  memset(longs, 'x', 256);
  longs[256] = '\0';
  m.topic = S(longs);
  assert_int_equal(parley_acl_key_get_encode(&m, buf, sizeof buf, &w),
                   PARLEY_ETOOBIG);
}

static void test_keys(void **state) {
  struct parley_acl_keys m, d;
  uint8_t want[64], buf[4096];
  size_t o = 0, w;
  (void)state;

  memset(&m, 0, sizeof m);
  m.req = 9;
  m.topic = S("t");
  m.epoch = 4;
  m.count = 2;
  m.keys[0].ptr = k_blob;
  m.keys[0].len = 2;
  m.keys[1].ptr = k_blob + 10;
  m.keys[1].len = 1;
  o += be(want + o, 9, 4);
  o += be(want + o, 1, 1);
  want[o++] = 't';
  o += be(want + o, 4, 4);
  want[o++] = 2;
  o += be(want + o, 2, 2);
  o += put(want + o, k_blob, 2);
  o += be(want + o, 1, 2);
  o += put(want + o, k_blob + 10, 1);
  assert_int_equal(o, 4 + 2 + 4 + 1 + 4 + 3);
  check_codec(enc_keys, dec_keys, &m, want, o, sizeof d);
  assert_int_equal(parley_acl_keys_decode(want, o, &d), PARLEY_OK);
  assert_int_equal(d.count, 2);
  assert_int_equal(d.epoch, 4);
  assert_ptr_equal(d.keys[1].ptr, want + o - 1);

  /* No keys is fine (a member whose blobs the owner has not put yet). */
  m.count = 0;
  assert_int_equal(parley_acl_keys_encode(&m, buf, sizeof buf, &w), PARLEY_OK);
  assert_int_equal(w, 4 + 2 + 4 + 1);
  assert_int_equal(parley_acl_keys_decode(buf, w, &d), PARLEY_OK);
  /* epoch 0 is refused both ways. */
  m.epoch = 0;
  assert_int_equal(parley_acl_keys_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  buf[9] = 0;
  assert_int_equal(parley_acl_keys_decode(buf, 11, &d), PARLEY_EPROTO);
  /* More than PARLEY_ACL_MAX_KEYS. */
  m.epoch = 1;
  m.count = PARLEY_ACL_MAX_KEYS + 1;
  assert_int_equal(parley_acl_keys_encode(&m, buf, sizeof buf, &w),
                   PARLEY_ETOOBIG);
  m.count = PARLEY_ACL_MAX_KEYS;
  for (unsigned i = 0; i < PARLEY_ACL_MAX_KEYS; i++) {
    m.keys[i].ptr = k_blob;
    m.keys[i].len = 1;
  }
  assert_int_equal(parley_acl_keys_encode(&m, buf, sizeof buf, &w), PARLEY_OK);
  assert_int_equal(parley_acl_keys_decode(buf, w, &d), PARLEY_OK);
  buf[10] = PARLEY_ACL_MAX_KEYS + 1; /* claim one more and supply it */
  buf[w] = 0;
  buf[w + 1] = 1;
  buf[w + 2] = 0x55;
  assert_int_equal(parley_acl_keys_decode(buf, w + 3, &d), PARLEY_EPROTO);
  /* An empty blob inside the list. */
  m.keys[3].len = 0;
  assert_int_equal(parley_acl_keys_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
}

static void test_members_get(void **state) {
  static const uint8_t want[] = {0, 0, 0, 0, 0}; /* req 0, empty topic */
  struct parley_acl_members_get m = {0, {NULL, 0}}, d;
  (void)state;
  check_codec(enc_members_get, dec_members_get, &m, want, sizeof want,
              sizeof d);
}

static void test_members(void **state) {
  uint8_t keys[3 * 32], want[4 + 4 + 32 + 4 + 8 + 4 + 3 * 32], buf[1024];
  struct parley_acl_members m, d;
  size_t o = 0, w;
  (void)state;

  memcpy(keys, k_aa, 32);
  memcpy(keys + 32, k_bb, 32);
  memcpy(keys + 64, k_cc, 32);
  memset(&m, 0, sizeof m);
  m.req = 1;
  m.topic = S("abc");
  m.owner = k_bb;
  m.epoch = 2;
  m.counter = 0x0102030405060708ull;
  m.count = 3;
  m.members = keys;
  o += be(want + o, 1, 4);
  want[o++] = 3;
  o += put(want + o, "abc", 3);
  o += put(want + o, k_bb, 32);
  o += be(want + o, 2, 4);
  o += be(want + o, 0x0102030405060708ull, 8);
  o += be(want + o, 3, 4);
  o += put(want + o, keys, sizeof keys);
  assert_int_equal(o, sizeof want);
  check_codec(enc_members, dec_members, &m, want, sizeof want, sizeof d);
  assert_int_equal(parley_acl_members_decode(want, sizeof want, &d),
                   PARLEY_OK);
  assert_int_equal(d.count, 3);
  assert_int_equal(d.counter, 0x0102030405060708ull);
  assert_ptr_equal(d.members, want + sizeof want - sizeof keys);
  assert_ptr_equal(d.owner, want + 8);

  /* Unsorted and duplicate members are refused both ways. */
  memcpy(keys + 64, k_bb, 32);
  assert_int_equal(parley_acl_members_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  memcpy(buf, want, sizeof want);
  memcpy(buf + sizeof want - 32, k_bb, 32);
  assert_int_equal(parley_acl_members_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  memcpy(buf + sizeof want - 32, k_aa, 32);
  assert_int_equal(parley_acl_members_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  memcpy(keys + 64, k_cc, 32);
  /* count 0, epoch 0, counter 0. */
  m.count = 0;
  assert_int_equal(parley_acl_members_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  m.count = 3;
  m.epoch = 0;
  assert_int_equal(parley_acl_members_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  m.epoch = 2;
  m.counter = 0;
  assert_int_equal(parley_acl_members_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  memcpy(buf, want, sizeof want);
  memset(buf + 8 + 32 + 4, 0, 8); /* counter 0 */
  assert_int_equal(parley_acl_members_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  memcpy(buf, want, sizeof want);
  memset(buf + 8 + 32, 0, 4); /* epoch 0 */
  assert_int_equal(parley_acl_members_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  /* A count over the cap is refused before it sizes anything. */
  memcpy(buf, want, sizeof want);
  be(buf + 8 + 32 + 4 + 8, PARLEY_ACL_MAX_MEMBERS + 1, 4);
  assert_int_equal(parley_acl_members_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  be(buf + 8 + 32 + 4 + 8, 0xffffffffu, 4);
  assert_int_equal(parley_acl_members_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  m.count = PARLEY_ACL_MAX_MEMBERS + 1;
  assert_int_equal(parley_acl_members_encode(&m, buf, sizeof buf, &w),
                   PARLEY_ETOOBIG);
}

static void test_event(void **state) {
  struct parley_acl_event m = {S("club"), PARLEY_ACL_EV_REVOKE, k_cc, 5}, d;
  uint8_t want[1 + 4 + 1 + 32 + 4], buf[128];
  size_t o = 0, w;
  (void)state;

  want[o++] = 4;
  o += put(want + o, "club", 4);
  want[o++] = 3;
  o += put(want + o, k_cc, 32);
  o += be(want + o, 5, 4);
  check_codec(enc_event, dec_event, &m, want, sizeof want, sizeof d);
  for (int kind = 0; kind < 256; kind++) {
    memcpy(buf, want, sizeof want);
    buf[5] = (uint8_t)kind;
    assert_int_equal(parley_acl_event_decode(buf, sizeof want, &d),
                     kind >= 1 && kind <= 5 ? PARLEY_OK : PARLEY_EPROTO);
    m.kind = (uint8_t)kind;
    assert_int_equal(parley_acl_event_encode(&m, buf, sizeof buf, &w),
                     kind >= 1 && kind <= 5 ? PARLEY_OK : PARLEY_EINVAL);
  }
  m.kind = PARLEY_ACL_EV_KEY;
  m.epoch = 0;
  assert_int_equal(parley_acl_event_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  memcpy(buf, want, sizeof want);
  memset(buf + sizeof want - 4, 0, 4);
  assert_int_equal(parley_acl_event_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  m.epoch = 1;
  m.member = NULL;
  assert_int_equal(parley_acl_event_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
}

static void test_signed_data(void **state) {
  static const uint8_t want[] = {'p', 'a', 'r', 'l', 'e', 'y', '-', 'k', 'e',
                                 'y', '-', 'p', 'u', 't', '-', 'v', '1', 0,
                                 0xde, 0xad};
  static const uint8_t blob[] = {0xde, 0xad};
  uint8_t buf[PARLEY_ACL_KEY_PUT_SIGNED_MAX];
  size_t w = 99;
  (void)state;

  assert_int_equal(parley_acl_key_put_signed_data(blob, 2, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, sizeof want);
  assert_memory_equal(buf, want, sizeof want);
  assert_int_equal(parley_acl_key_put_signed_data(blob, 2, buf, 19, &w),
                   PARLEY_ETOOBIG);
  assert_int_equal(w, 0);
  assert_int_equal(parley_acl_key_put_signed_data(blob, 0, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  assert_int_equal(parley_acl_key_put_signed_data(k_blob,
                                                  PARLEY_ACL_BLOB_MAX + 1, buf,
                                                  sizeof buf, &w),
                   PARLEY_EINVAL);
  assert_int_equal(parley_acl_key_put_signed_data(k_blob, PARLEY_ACL_BLOB_MAX,
                                                  buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, sizeof buf);
}

/* ---- wire.h: the frame types --------------------------------------------- */

static void test_frame_types(void **state) {
  static const char *names[] = {"TOPIC_CTL", "KEY_PUT", "KEY_GET",
                                "KEYS",      "MEMBERS_GET", "MEMBERS",
                                "ACL_EVENT"};
  (void)state;

  assert_int_equal(PARLEY_FRAME_TOPIC_CTL, 0x50);
  assert_int_equal(PARLEY_FRAME_ACL_EVENT, 0x56);
  for (unsigned t = 0x50; t <= 0x56; t++) {
    assert_true(parley_frame_is_opaque((uint8_t)t));
    assert_string_equal(parley_frame_type_name((uint8_t)t), names[t - 0x50]);
  }
  assert_false(parley_frame_is_opaque(0x4f));
  assert_false(parley_frame_is_opaque(0x57));
  assert_string_equal(parley_frame_type_name(0x57), "UNKNOWN");
  /* The neighbours did not move. */
  assert_true(parley_frame_is_opaque(PARLEY_FRAME_SYNC_BATCH));
  assert_false(parley_frame_is_opaque(0x45));
}

/* A whole ACL_EVENT frame through wire.c: header + opaque payload. */
static void test_frame_roundtrip(void **state) {
  struct parley_acl_event ev = {S("x"), PARLEY_ACL_EV_ADD, k_aa, 1}, d;
  struct parley_frame f, g;
  uint8_t payload[64], frame[128];
  size_t n, fw, used;
  (void)state;

  assert_int_equal(parley_acl_event_encode(&ev, payload, sizeof payload, &n),
                   PARLEY_OK);
  assert_int_equal(n, 1 + 1 + 1 + 32 + 4);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_ACL_EVENT;
  f.u.opaque.data = payload;
  f.u.opaque.len = n;
  assert_int_equal(parley_wire_encode(&f, frame, sizeof frame, &fw), PARLEY_OK);
  assert_int_equal(fw, 5 + n);
  assert_int_equal(frame[3], n + 1); /* u32 length of type + payload */
  assert_int_equal(frame[4], 0x56);
  assert_int_equal(parley_wire_decode(frame, fw, 1024, &g, &used), PARLEY_OK);
  assert_int_equal(used, fw);
  assert_int_equal(g.type, PARLEY_FRAME_ACL_EVENT);
  assert_int_equal(g.u.opaque.len, n);
  assert_int_equal(
      parley_acl_event_decode(g.u.opaque.data, g.u.opaque.len, &d), PARLEY_OK);
  assert_int_equal(d.kind, PARLEY_ACL_EV_ADD);
  assert_memory_equal(d.member, k_aa, 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_topic_ctl, setup),
      cmocka_unit_test_setup(test_key_put, setup),
      cmocka_unit_test_setup(test_key_get, setup),
      cmocka_unit_test_setup(test_keys, setup),
      cmocka_unit_test_setup(test_members_get, setup),
      cmocka_unit_test_setup(test_members, setup),
      cmocka_unit_test_setup(test_event, setup),
      cmocka_unit_test_setup(test_signed_data, setup),
      cmocka_unit_test_setup(test_frame_types, setup),
      cmocka_unit_test_setup(test_frame_roundtrip, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
