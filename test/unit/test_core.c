/* test_core.c — unit tests for src/core: parsing, ids, buffers, maps,
 * option tables, error table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/map.h"
#include "core/opts.h"
#include "core/util.h"

static void test_parse_u64(void **state) {
  uint64_t v = 0;
  (void)state;
  assert_int_equal(parley_parse_u64("0", 0, 10, &v), PARLEY_OK);
  assert_int_equal(v, 0);
  assert_int_equal(parley_parse_u64("18446744073709551615", 0, UINT64_MAX, &v),
                   PARLEY_OK);
  assert_true(v == UINT64_MAX);
  assert_int_equal(parley_parse_u64("18446744073709551616", 0, UINT64_MAX, &v),
                   PARLEY_ERANGE);
  assert_int_equal(parley_parse_u64("11", 0, 10, &v), PARLEY_ERANGE);
  assert_int_equal(parley_parse_u64("", 0, 10, &v), PARLEY_EINVAL);
  assert_int_equal(parley_parse_u64("-1", 0, 10, &v), PARLEY_EINVAL);
  assert_int_equal(parley_parse_u64("1x", 0, 10, &v), PARLEY_EINVAL);
  assert_int_equal(parley_parse_u64(" 1", 0, 10, &v), PARLEY_EINVAL);
}

static void test_hostport(void **state) {
  char host[64];
  uint16_t port;
  (void)state;
  assert_int_equal(parley_parse_hostport("127.0.0.1:80", host, sizeof host, &port),
                   PARLEY_OK);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 80);
  assert_int_equal(parley_parse_hostport("[::1]:9000", host, sizeof host, &port),
                   PARLEY_OK);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 9000);
  assert_int_equal(parley_parse_hostport("localhost:0", host, sizeof host, &port),
                   PARLEY_OK);
  assert_int_equal(port, 0);
  assert_int_equal(parley_parse_hostport("nohost", host, sizeof host, &port),
                   PARLEY_EINVAL);
  assert_int_equal(parley_parse_hostport(":80", host, sizeof host, &port),
                   PARLEY_EINVAL);
  assert_int_equal(parley_parse_hostport("h:65536", host, sizeof host, &port),
                   PARLEY_EINVAL);
  assert_int_equal(parley_parse_hostport("[::1]80", host, sizeof host, &port),
                   PARLEY_EINVAL);
  assert_int_equal(parley_parse_hostport("averyveryverylonghostname:1", host, 8,
                                         &port),
                   PARLEY_EINVAL);
}

static void test_durations(void **state) {
  uint64_t ms;
  (void)state;
  assert_int_equal(parley_parse_duration_ms("10m", &ms), PARLEY_OK);
  assert_true(ms == 600000);
  assert_int_equal(parley_parse_duration_ms("2h", &ms), PARLEY_OK);
  assert_true(ms == 7200000);
  assert_int_equal(parley_parse_duration_ms("500ms", &ms), PARLEY_OK);
  assert_true(ms == 500);
  assert_int_equal(parley_parse_duration_ms("30", &ms), PARLEY_OK);
  assert_true(ms == 30000);
  assert_int_equal(parley_parse_duration_ms("1d", &ms), PARLEY_OK);
  assert_true(ms == 86400000);
  assert_int_equal(parley_parse_duration_ms("m", &ms), PARLEY_EINVAL);
  assert_int_equal(parley_parse_duration_ms("5y", &ms), PARLEY_EINVAL);
  assert_int_equal(parley_parse_duration_ms("99999999999999999999s", &ms),
                   PARLEY_ERANGE);
}

static void test_rfc3339(void **state) {
  int64_t ms;
  char out[40];
  (void)state;
  assert_int_equal(parley_parse_rfc3339_ms("1970-01-01T00:00:00Z", &ms),
                   PARLEY_OK);
  assert_true(ms == 0);
  assert_int_equal(parley_parse_rfc3339_ms("2026-11-24T10:00:00.250Z", &ms),
                   PARLEY_OK);
  assert_true(ms == 1795514400250LL);
  assert_int_equal(parley_parse_rfc3339_ms("2026-11-24T11:00:00+01:00", &ms),
                   PARLEY_OK);
  assert_true(ms == 1795514400000LL);
  assert_int_equal(parley_parse_rfc3339_ms("2026-11-24 10:00:00Z", &ms),
                   PARLEY_OK);
  assert_int_equal(parley_parse_rfc3339_ms("2026-13-24T10:00:00Z", &ms),
                   PARLEY_EINVAL);
  assert_int_equal(parley_parse_rfc3339_ms("2026-11-24T10:00:00", &ms),
                   PARLEY_EINVAL);
  assert_int_equal(parley_parse_rfc3339_ms("yesterday", &ms), PARLEY_EINVAL);
  parley_format_rfc3339(1795514400250LL, out, sizeof out);
  assert_string_equal(out, "2026-11-24T10:00:00.250Z");
}

static void test_ids(void **state) {
  uint8_t key[32], back[32];
  char text[PARLEY_ID_TEXT_LEN + 1];
  (void)state;
  for (int i = 0; i < 32; i++)
    key[i] = (uint8_t)(i * 37 + 11);
  parley_id_encode(key, text);
  assert_int_equal(strlen(text), PARLEY_ID_TEXT_LEN);
  assert_int_equal(parley_id_decode(text, back), PARLEY_OK);
  assert_memory_equal(key, back, 32);
  memset(key, 0, 32);
  parley_id_encode(key, text);
  assert_string_equal(text,
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  memset(key, 0xff, 32);
  parley_id_encode(key, text);
  /* 256 one bits then 4 zero padding bits: last char is 'q' (10000). */
  assert_string_equal(text,
                      "777777777777777777777777777777777777777777777777777q");
  assert_int_equal(parley_id_decode(text, back), PARLEY_OK);
  /* Non-zero padding bits, wrong length, bad alphabet. */
  text[51] = 'r';
  assert_int_equal(parley_id_decode(text, back), PARLEY_EINVAL);
  assert_int_equal(parley_id_decode("abc", back), PARLEY_EINVAL);
  assert_int_equal(
      parley_id_decode("0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", back),
      PARLEY_EINVAL);
}

static void test_hex_utf8_topic(void **state) {
  uint8_t b[4] = {0, 0xab, 0x10, 0xff}, back[4];
  char hx[9];
  (void)state;
  parley_hex_encode(b, 4, hx);
  assert_string_equal(hx, "00ab10ff");
  assert_int_equal(parley_hex_decode(hx, back, 4), PARLEY_OK);
  assert_memory_equal(b, back, 4);
  assert_int_equal(parley_hex_decode("00ab10f", back, 4), PARLEY_EINVAL);
  assert_int_equal(parley_hex_decode("00ab10fg", back, 4), PARLEY_EINVAL);

  assert_true(parley_utf8_valid((const uint8_t *)"h\xc3\xa9llo", 6));
  assert_true(parley_utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4));
  assert_false(parley_utf8_valid((const uint8_t *)"\xc3", 1));
  assert_false(parley_utf8_valid((const uint8_t *)"\xc0\x80", 2));
  assert_false(parley_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));
  assert_false(parley_utf8_valid((const uint8_t *)"a\0b", 3));
  assert_false(parley_utf8_valid((const uint8_t *)"\xff", 1));

  assert_true(parley_topic_valid("news", 4, 128));
  assert_true(parley_topic_valid("a/b.c-d_e", 9, 128));
  assert_false(parley_topic_valid("", 0, 128));
  assert_false(parley_topic_valid("@me", 3, 128));
  assert_false(parley_topic_valid("a b", 3, 128));
  assert_false(parley_topic_valid("abcdef", 6, 5));
  assert_false(parley_topic_valid("caf\xc3\xa9", 5, 128));
}

static void test_buf(void **state) {
  struct parley_buf b;
  (void)state;
  parley_buf_init(&b, 10);
  assert_int_equal(parley_buf_append(&b, "hello", 5), PARLEY_OK);
  assert_int_equal(parley_buf_appendf(&b, "%d", 1234), PARLEY_OK);
  assert_int_equal(b.len, 9);
  assert_memory_equal(b.data, "hello1234", 9);
  assert_int_equal(parley_buf_append(&b, "ab", 2), PARLEY_ETOOBIG);
  assert_int_equal(b.len, 9);
  parley_buf_consume(&b, 5);
  assert_memory_equal(b.data, "1234", 4);
  assert_int_equal(parley_buf_append(&b, "abcdef", 6), PARLEY_OK);
  assert_int_equal(b.len, 10);
  parley_buf_consume(&b, 100);
  assert_int_equal(b.len, 0);
  parley_buf_close(&b);
  parley_buf_close(&b); /* twice is fine */
}

/* A memo answers like parley_map_get, whatever happened to the map
 * since it was taken. */
static void test_map_memo(void **state) {
  (void)state;
  struct parley_map m;
  struct parley_map_memo memo = {0};
  int a = 1, b = 2, c = 3;
  char key[16];

  parley_map_init(&m, 7);
  assert_null(parley_map_get_memo(&m, &memo, "news", 4));
  assert_null(memo.e); /* misses are not remembered */
  assert_int_equal(parley_map_put(&m, "news", 4, &a, NULL), PARLEY_OK);
  assert_ptr_equal(parley_map_get_memo(&m, &memo, "news", 4), &a);
  assert_non_null(memo.e);
  assert_ptr_equal(parley_map_get_memo(&m, &memo, "news", 4), &a);
  /* Another key, a prefix, a longer key: looked up, not confused. */
  assert_null(parley_map_get_memo(&m, &memo, "new", 3));
  assert_null(parley_map_get_memo(&m, &memo, "newsy", 5));
  assert_int_equal(parley_map_put(&m, "sport", 5, &b, NULL), PARLEY_OK);
  assert_ptr_equal(parley_map_get_memo(&m, &memo, "sport", 5), &b);
  assert_ptr_equal(parley_map_get_memo(&m, &memo, "news", 4), &a);
  /* Growth moves no entry; a replaced value shows through. */
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(parley_map_put(&m, key, strlen(key), &c, NULL),
                     PARLEY_OK);
  }
  assert_ptr_equal(parley_map_get_memo(&m, &memo, "news", 4), &a);
  assert_int_equal(parley_map_put(&m, "news", 4, &b, NULL), PARLEY_OK);
  assert_ptr_equal(parley_map_get_memo(&m, &memo, "news", 4), &b);
  /* Removing the remembered entry: the memo is not used again. */
  assert_ptr_equal(parley_map_del(&m, "news", 4), &b);
  assert_null(parley_map_get_memo(&m, &memo, "news", 4));
  assert_int_equal(parley_map_put(&m, "news", 4, &c, NULL), PARLEY_OK);
  assert_ptr_equal(parley_map_get_memo(&m, &memo, "news", 4), &c);
  /* Removing another entry drops the memo too (found again). */
  assert_ptr_equal(parley_map_del(&m, "sport", 5), &b);
  assert_ptr_equal(parley_map_get_memo(&m, &memo, "news", 4), &c);
  parley_map_close(&m);
  assert_null(parley_map_get_memo(&m, &memo, "news", 4));
}

static void test_map(void **state) {
  struct parley_map m;
  struct parley_map_iter it;
  struct parley_map_entry *e;
  char key[16];
  void *old;
  size_t seen = 0;
  (void)state;
  parley_map_init(&m, 42);
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(parley_map_put(&m, key, strlen(key), (void *)(intptr_t)(i + 1),
                                    &old),
                     PARLEY_OK);
    assert_null(old);
  }
  assert_int_equal(m.count, 1000);
  assert_int_equal(parley_map_put(&m, "k5", 2, (void *)7, &old), PARLEY_OK);
  assert_ptr_equal(old, (void *)6);
  assert_ptr_equal(parley_map_get(&m, "k5", 2), (void *)7);
  assert_null(parley_map_get(&m, "k1000", 5));
  assert_ptr_equal(parley_map_del(&m, "k5", 2), (void *)7);
  assert_null(parley_map_del(&m, "k5", 2));
  assert_int_equal(m.count, 999);
  /* Remove every even value while iterating. */
  parley_map_iter_init(&it, &m);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    seen++;
    if (((intptr_t)e->value) % 2 == 0)
      parley_map_iter_remove(&it);
  }
  assert_int_equal(seen, 999);
  assert_int_equal(m.count, 500);
  assert_null(parley_map_get(&m, "k1", 2)); /* value 2 */
  assert_non_null(parley_map_get(&m, "k0", 2));
  parley_map_close(&m);
  parley_map_close(&m);
}

struct optcfg {
  const char *data;
  uint64_t n, d;
  int flag;
};

static const struct parley_opt opts[] = {
    {"data", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "DIR", "dir",
     offsetof(struct optcfg, data)},
    {"n", PARLEY_OPT_U64, 0, 1, 100, "5", "N", "number",
     offsetof(struct optcfg, n)},
    {"d", PARLEY_OPT_DURATION, 0, 1000, 60000, "10s", "D", "duration",
     offsetof(struct optcfg, d)},
    {"flag", PARLEY_OPT_FLAG, 0, 0, 0, NULL, NULL, "flag",
     offsetof(struct optcfg, flag)},
};

static void test_opts(void **state) {
  struct optcfg c;
  char err[128];
  char *ok[] = {"prog", "--data", "/x", "--n=7", "--flag", "--d", "30s"};
  char *bad1[] = {"prog", "--n", "7"};
  char *bad2[] = {"prog", "--data", "x", "--n", "101"};
  char *bad3[] = {"prog", "--data", "x", "--what"};
  char *bad4[] = {"prog", "--data"};
  char *bad5[] = {"prog", "--data", "x", "--d", "1h"};
  char *help[] = {"prog", "--help"};
  (void)state;
  memset(&c, 0, sizeof c);
  assert_int_equal(parley_opts_parse(opts, 4, 7, ok, &c, err, sizeof err),
                   PARLEY_OK);
  assert_string_equal(c.data, "/x");
  assert_true(c.n == 7 && c.d == 30000 && c.flag == 1);
  memset(&c, 0, sizeof c);
  assert_int_equal(parley_opts_parse(opts, 4, 3, bad1, &c, err, sizeof err),
                   PARLEY_EINVAL);
  assert_string_equal(err, "--data is required");
  assert_int_equal(parley_opts_parse(opts, 4, 5, bad2, &c, err, sizeof err),
                   PARLEY_EINVAL);
  assert_int_equal(parley_opts_parse(opts, 4, 4, bad3, &c, err, sizeof err),
                   PARLEY_EINVAL);
  assert_string_equal(err, "unknown flag --what");
  assert_int_equal(parley_opts_parse(opts, 4, 2, bad4, &c, err, sizeof err),
                   PARLEY_EINVAL);
  assert_int_equal(parley_opts_parse(opts, 4, 5, bad5, &c, err, sizeof err),
                   PARLEY_EINVAL);
  assert_int_equal(parley_opts_parse(opts, 4, 2, help, &c, err, sizeof err),
                   PARLEY_EAGAIN);
}

static void test_errors(void **state) {
  (void)state;
  assert_string_equal(parley_err_name(PARLEY_EPROTO), "EPROTO");
  assert_string_equal(parley_strerror(PARLEY_OK), "success");
  assert_string_equal(parley_strerror(-999), "unknown error");
  assert_int_equal(parley_err_from_uv(-104 /* ECONNRESET */), PARLEY_ECLOSED);
  assert_int_equal(parley_err_from_sqlite(19), PARLEY_EEXIST);
  assert_int_equal(parley_err_from_sqlite(101), PARLEY_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_u64), cmocka_unit_test(test_hostport),
      cmocka_unit_test(test_durations), cmocka_unit_test(test_rfc3339),
      cmocka_unit_test(test_ids),       cmocka_unit_test(test_hex_utf8_topic),
      cmocka_unit_test(test_buf),       cmocka_unit_test(test_map),
      cmocka_unit_test(test_map_memo),
      cmocka_unit_test(test_opts),      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
