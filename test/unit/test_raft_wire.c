/*
 * test_raft_wire.c — the RAFT_OPEN / RAFT_DATA sub-codec: bytes pinned by
 * hand from raft_wire.h, round trips, every decode error, the encoder's
 * refusals and the membership-proof input.
 */
/* clang-format off: cmocka needs these first, in this order */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "wire/raft_wire.h"

static struct parley_str S(const char *s) {
  struct parley_str r;
  r.ptr = s;
  r.len = strlen(s);
  return r;
}

static uint8_t proof[32];

static struct parley_raft_open sample(void) {
  struct parley_raft_open o;
  for (int i = 0; i < 32; i++)
    proof[i] = (uint8_t)(0xa0 + i);
  memset(&o, 0, sizeof o);
  o.raft_id = 0x0102030405060708ull;
  o.raft_addr = S("1.2.3.4:5");
  o.listen_addr = S("h:1");
  o.http_addr = S("");
  o.proof = proof;
  return o;
}

/* The exact bytes of sample(), written from the layout in raft_wire.h. */
static const uint8_t golden[] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,            /* u64 id */
    9,    '1',  '.',  '2',  '.',  '3',  '.',  '4',  ':',  '5', /* raft */
    3,    'h',  ':',  '1',                                     /* listen */
    0,                                                         /* http "" */
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
    0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
    0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, /* proof */
};

static void test_open_golden(void **state) {
  struct parley_raft_open o = sample(), d;
  uint8_t buf[PARLEY_RAFT_OPEN_MAX];
  size_t n = 0;

  (void)state;
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, sizeof golden);
  assert_memory_equal(buf, golden, sizeof golden);

  assert_int_equal(parley_raft_open_decode(golden, sizeof golden, &d),
                   PARLEY_OK);
  assert_true(d.raft_id == 0x0102030405060708ull);
  assert_int_equal(d.raft_addr.len, 9);
  assert_memory_equal(d.raft_addr.ptr, "1.2.3.4:5", 9);
  assert_int_equal(d.listen_addr.len, 3);
  assert_memory_equal(d.listen_addr.ptr, "h:1", 3);
  assert_int_equal(d.http_addr.len, 0);
  assert_ptr_equal(d.proof, golden + sizeof golden - 32);
  /* Pointers borrow from the input. */
  assert_ptr_equal(d.raft_addr.ptr, (const char *)golden + 9);
}

static void test_open_sizes(void **state) {
  struct parley_raft_open o = sample(), d;
  char a[97];
  uint8_t buf[PARLEY_RAFT_OPEN_MAX + 8];
  size_t n = 0;

  (void)state;
  /* The smallest payload: a 1-byte raft address, empty others. */
  o.raft_addr = S("x");
  o.listen_addr = S("");
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, PARLEY_RAFT_OPEN_MIN);
  assert_int_equal(parley_raft_open_decode(buf, n, &d), PARLEY_OK);
  /* The largest: three 96-byte strings. */
  memset(a, 'z', 96);
  a[96] = '\0';
  o.raft_addr = o.listen_addr = o.http_addr = S(a);
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, PARLEY_RAFT_OPEN_MAX);
  assert_int_equal(parley_raft_open_decode(buf, n, &d), PARLEY_OK);
  assert_int_equal(d.http_addr.len, 96);
  /* Short buffer: ETOOBIG and the size needed. */
  assert_int_equal(parley_raft_open_encode(&o, buf, 100, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, PARLEY_RAFT_OPEN_MAX);
  assert_int_equal(parley_raft_open_encode(&o, NULL, 0, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, PARLEY_RAFT_OPEN_MAX);
}

static void test_open_encode_refuses(void **state) {
  struct parley_raft_open o;
  char a[98];
  uint8_t buf[PARLEY_RAFT_OPEN_MAX];
  size_t n = 99;

  (void)state;
  o = sample();
  o.raft_id = 0;
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  assert_int_equal(n, 0);
  o = sample();
  o.raft_addr = S("");
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  o = sample();
  o.listen_addr = S("has space:1");
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  o = sample();
  o.http_addr = S("caf\xc3\xa9:1");
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  o = sample();
  memset(a, 'a', 97);
  a[97] = '\0';
  o.raft_addr = S(a);
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  o = sample();
  o.proof = NULL;
  assert_int_equal(parley_raft_open_encode(&o, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
}

static void expect_bad(const uint8_t *b, size_t n) {
  struct parley_raft_open d;
  memset(&d, 0x55, sizeof d);
  assert_int_equal(parley_raft_open_decode(b, n, &d), PARLEY_EPROTO);
  /* Zeroed on failure. */
  assert_true(d.raft_id == 0);
  assert_null(d.proof);
  assert_null(d.raft_addr.ptr);
}

static void test_open_decode_errors(void **state) {
  uint8_t b[sizeof golden + 1];

  (void)state;
  /* Every truncation fails, and so does one trailing byte. */
  for (size_t n = 0; n < sizeof golden; n++)
    expect_bad(golden, n);
  memcpy(b, golden, sizeof golden);
  b[sizeof golden] = 0;
  expect_bad(b, sizeof golden + 1);
  expect_bad(NULL, 0);
  /* id 0 */
  memcpy(b, golden, sizeof golden);
  memset(b, 0, 8);
  expect_bad(b, sizeof golden);
  /* empty raft address (and the lengths shifted accordingly) */
  memcpy(b, golden, sizeof golden);
  b[8] = 0;
  expect_bad(b, sizeof golden);
  /* a control character, a space, a DEL, a high byte in an address */
  static const uint8_t badc[] = {0x00, 0x20, 0x7f, 0x80, 0xff};
  for (size_t i = 0; i < sizeof badc; i++) {
    memcpy(b, golden, sizeof golden);
    b[10] = badc[i];
    expect_bad(b, sizeof golden);
    memcpy(b, golden, sizeof golden);
    b[20] = badc[i]; /* in listen_addr */
    expect_bad(b, sizeof golden);
  }
  /* a string length pointing past the end */
  memcpy(b, golden, sizeof golden);
  b[19] = 200;
  expect_bad(b, sizeof golden);
  /* a length of 97 within a long-enough buffer */
  {
    uint8_t big[8 + 1 + 97 + 1 + 1 + 32];
    memset(big, 'a', sizeof big);
    memset(big, 0, 7);
    big[7] = 1;
    big[8] = 97;
    big[8 + 1 + 97] = 0;
    big[8 + 1 + 97 + 1] = 0;
    expect_bad(big, sizeof big);
  }
}

static void test_proof_input(void **state) {
  uint8_t binding[64], out[PARLEY_RAFT_PROOF_INPUT_LEN];

  (void)state;
  for (int i = 0; i < 64; i++)
    binding[i] = (uint8_t)i;
  parley_raft_proof_input(binding, PARLEY_RAFT_SIDE_ACCEPTOR, 0x1122ull, out);
  assert_memory_equal(out, "parley-raft-member", 18);
  assert_memory_equal(out + 18, binding, 64);
  assert_int_equal(out[82], 1);
  static const uint8_t id[8] = {0, 0, 0, 0, 0, 0, 0x11, 0x22};
  assert_memory_equal(out + 83, id, 8);
  parley_raft_proof_input(binding, PARLEY_RAFT_SIDE_DIALLER, 1, out);
  assert_int_equal(out[82], 0);
  assert_int_equal(out[90], 1);
}

static void test_data_check(void **state) {
  (void)state;
  assert_int_equal(parley_raft_data_check(0), PARLEY_EPROTO);
  assert_int_equal(parley_raft_data_check(1), PARLEY_OK);
  assert_int_equal(parley_raft_data_check(65536), PARLEY_OK);
  assert_int_equal(parley_raft_data_check(65537), PARLEY_EPROTO);
}

/* A RAFT_OPEN payload travels inside an opaque frame of wire.h. */
static void test_inside_frame(void **state) {
  struct parley_frame f, g;
  uint8_t buf[512];
  size_t n = 0, used = 0;
  struct parley_raft_open d;

  (void)state;
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_RAFT_OPEN;
  f.u.opaque.data = golden;
  f.u.opaque.len = sizeof golden;
  assert_int_equal(parley_wire_encode(&f, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 5 + sizeof golden);
  assert_int_equal(buf[4], 0x30);
  assert_int_equal(parley_wire_decode(buf, n, 4096, &g, &used), PARLEY_OK);
  assert_int_equal(used, n);
  assert_int_equal(g.type, PARLEY_FRAME_RAFT_OPEN);
  assert_int_equal(parley_raft_open_decode(g.u.opaque.data, g.u.opaque.len, &d),
                   PARLEY_OK);
  assert_true(d.raft_id == 0x0102030405060708ull);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_golden),
      cmocka_unit_test(test_open_sizes),
      cmocka_unit_test(test_open_encode_refuses),
      cmocka_unit_test(test_open_decode_errors),
      cmocka_unit_test(test_proof_input),
      cmocka_unit_test(test_data_check),
      cmocka_unit_test(test_inside_frame),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
