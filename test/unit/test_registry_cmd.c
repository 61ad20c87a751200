/*
 * test_registry_cmd.c — the registry command codec (parley_reg_cmd_encode
 * / parley_reg_cmd_decode, registry.h) and the GRANT / KEY_PUT builders:
 * exact bytes, the canonical data chunks, and refusal of every malformed
 * input.  Shared helpers are in registry_fixture.h.
 */
#include "registry_fixture.h"

/* Command codec ------------------------------------------------------------ */

static void test_codec_bytes(void **state) {
  struct parley_reg_cmd c, d;
  uint8_t buf[600], exp[600];
  size_t n, e = 0;
  uint8_t pk[32];
  (void)state;

  for (int i = 0; i < 32; i++)
    pk[i] = (uint8_t)i;
  c = cmd(PARLEY_REG_SUBSCRIBE, pk, 0x0102030405060708ll, "h:1", "nm", "tp");
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  exp[0] = PARLEY_REG_SUBSCRIBE;
  e = 1;
  memcpy(exp + e, pk, 32);
  e += 32;
  for (int i = 1; i <= 8; i++)
    exp[e++] = (uint8_t)i;
  memcpy(exp + e, "\x03h:1\x02nm\x02tp", 10);
  e += 10;
  assert_int_equal(n, e);
  assert_int_equal(n, 44 + 7);
  assert_memory_equal(buf, exp, e);

  assert_int_equal(parley_reg_cmd_decode(buf, n, &d), PARLEY_OK);
  assert_int_equal(d.type, PARLEY_REG_SUBSCRIBE);
  assert_memory_equal(d.pk, pk, 32);
  assert_int_equal(d.ts_ms, 0x0102030405060708ll);
  assert_string_equal(d.addr, "h:1");
  assert_string_equal(d.name, "nm");
  assert_string_equal(d.topic, "tp");

  /* Negative timestamps travel as two's complement. */
  c.ts_ms = -2;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  assert_memory_equal(buf + 33, "\xff\xff\xff\xff\xff\xff\xff\xfe", 8);
  assert_int_equal(parley_reg_cmd_decode(buf, n, &d), PARLEY_OK);
  assert_int_equal(d.ts_ms, -2);
  c.ts_ms = INT64_MIN;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(parley_reg_cmd_decode(buf, n, &d), PARLEY_OK);
  assert_true(d.ts_ms == INT64_MIN);

  /* Too small a buffer: ETOOBIG and the size needed. */
  assert_int_equal(parley_reg_cmd_encode(&c, buf, 50, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, 51);
  assert_int_equal(parley_reg_cmd_encode(&c, NULL, 0, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, 51);
  assert_int_equal(parley_reg_cmd_encode(&c, buf, 51, &n), PARLEY_OK);
  /* Unterminated field or unknown type. */
  d = c;
  memset(d.topic, 'x', sizeof d.topic);
  assert_int_equal(parley_reg_cmd_encode(&d, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  d = c;
  d.type = 9;
  assert_int_equal(parley_reg_cmd_encode(&d, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
}

static void test_codec_errors(void **state) {
  struct parley_reg_cmd c, d;
  uint8_t buf[600], bad[600];
  size_t n;
  uint8_t pk[32];
  (void)state;

  mkpk(pk, 7);
  c = cmd(PARLEY_REG_REGISTER, pk, 5, "host:1", "name", "");
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 44 + 6 + 4);
  for (size_t i = 0; i < n; i++) {
    memset(&d, 0x5a, sizeof d);
    assert_int_equal(parley_reg_cmd_decode(buf, i, &d), PARLEY_EPROTO);
    assert_int_equal(d.type, 0); /* zeroed on failure */
  }
  assert_int_equal(parley_reg_cmd_decode(NULL, 0, &d), PARLEY_EPROTO);
  memcpy(bad, buf, n);
  bad[n] = 0;
  assert_int_equal(parley_reg_cmd_decode(bad, n + 1, &d), PARLEY_EPROTO);
  /* As GRANT or KEY_PUT the same bytes are data chunks of 6 and 4 bytes:
   * not canonical (only a full 255-byte chunk may be followed). */
  for (int t = 0; t < 256; t++) {
    bad[0] = (uint8_t)t;
    assert_int_equal(parley_reg_cmd_decode(bad, n, &d),
                     t >= 1 && t <= 4 ? PARLEY_OK : PARLEY_EPROTO);
  }
  /* A NUL inside a string cannot survive the struct: refused. */
  memcpy(bad, buf, n);
  bad[42 + 2] = '\0';
  assert_int_equal(parley_reg_cmd_decode(bad, n, &d), PARLEY_EPROTO);
  /* Over-long fields (lengths past the caps). */
  memset(bad, 'a', sizeof bad);
  bad[0] = 1;
  memset(bad + 1, 0, 40);
  bad[41] = PARLEY_MAX_ADDR + 1;
  bad[41 + 1 + PARLEY_MAX_ADDR + 1] = 0;
  bad[41 + 1 + PARLEY_MAX_ADDR + 2] = 0;
  assert_int_equal(parley_reg_cmd_decode(bad, 41 + 3 + PARLEY_MAX_ADDR + 1, &d),
                   PARLEY_EPROTO);
  bad[41] = PARLEY_MAX_ADDR;
  bad[41 + 1 + PARLEY_MAX_ADDR] = 0;
  bad[41 + 1 + PARLEY_MAX_ADDR + 1] = 0;
  assert_int_equal(parley_reg_cmd_decode(bad, 41 + 3 + PARLEY_MAX_ADDR, &d),
                   PARLEY_OK);
  bad[41] = 0;
  bad[42] = PARLEY_MAX_NAME + 1;
  bad[43 + PARLEY_MAX_NAME + 1] = 0;
  assert_int_equal(parley_reg_cmd_decode(bad, 44 + PARLEY_MAX_NAME + 1, &d),
                   PARLEY_EPROTO);
  /* Longest topic (255) is fine; the codec checks framing, not meaning. */
  bad[42] = 0;
  bad[43] = 255;
  memset(bad + 44, 't', 255);
  assert_int_equal(parley_reg_cmd_decode(bad, 44 + 255, &d), PARLEY_OK);
  assert_int_equal(strlen(d.topic), 255);
}

static void test_acl_codec(void **state) {
  static const size_t sizes[] = {1, 254, 255, 256, 300, 509, 510, 511, 533};
  struct parley_reg_cmd c, d;
  uint8_t buf[700], sig[64];
  size_t n;
  (void)state;

  memset(&c, 0, sizeof c);
  c.type = PARLEY_REG_GRANT;
  mkpk(c.pk, 3);
  c.ts_ms = -7;
  for (size_t i = 0; i < PARLEY_REG_DATA_MAX; i++)
    c.data[i] = (uint8_t)(i * 3 + 1);
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t len = sizes[k], c0 = len < 255 ? len : 255,
           c1 = len - c0 < 255 ? len - c0 : 255, c2 = len - c0 - c1;
    c.data_len = (uint16_t)len;
    c.type = k % 2 ? PARLEY_REG_KEY_PUT : PARLEY_REG_GRANT;
    assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n),
                     PARLEY_OK);
    assert_int_equal(n, 44 + len);
    assert_int_equal(buf[0], c.type);
    assert_memory_equal(buf + 1, c.pk, 32);
    assert_memory_equal(buf + 33, "\xff\xff\xff\xff\xff\xff\xff\xf9", 8);
    assert_int_equal(buf[41], c0);
    assert_memory_equal(buf + 42, c.data, c0);
    assert_int_equal(buf[42 + c0], c1);
    assert_memory_equal(buf + 43 + c0, c.data + c0, c1);
    assert_int_equal(buf[43 + c0 + c1], c2);
    assert_memory_equal(buf + 44 + c0 + c1, c.data + c0 + c1, c2);
    assert_int_equal(parley_reg_cmd_decode(buf, n, &d), PARLEY_OK);
    assert_int_equal(d.type, c.type);
    assert_int_equal(d.data_len, len);
    assert_memory_equal(d.data, c.data, len);
    assert_string_equal(d.topic, "");
    /* Every prefix and one more byte are refused. */
    for (size_t i = 0; i < n; i++)
      assert_int_equal(parley_reg_cmd_decode(buf, i, &d), PARLEY_EPROTO);
    buf[n] = 0;
    assert_int_equal(parley_reg_cmd_decode(buf, n + 1, &d), PARLEY_EPROTO);
  }
  /* Not canonical: a chunk after one that is not full; nothing at all. */
  memset(buf, 0, sizeof buf);
  buf[0] = PARLEY_REG_GRANT;
  buf[41] = 1;
  buf[43] = 1; /* chunk1 of one byte after a chunk0 of one */
  assert_int_equal(parley_reg_cmd_decode(buf, 46, &d), PARLEY_EPROTO);
  buf[41] = 0;
  buf[42] = 0;
  buf[43] = 0;
  assert_int_equal(parley_reg_cmd_decode(buf, 44, &d), PARLEY_EPROTO);
  /* Encoder limits; and types 1..4 ignore data. */
  c.data_len = 0;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  c.data_len = PARLEY_REG_DATA_MAX + 1;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  c.data_len = 100;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, 143, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, 144);
  c = cmd(PARLEY_REG_SUBSCRIBE, c.pk, 1, "", "", "tp");
  c.data_len = 9;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 46);
  /* Builders. */
  memset(sig, 0x5c, sizeof sig);
  assert_int_equal(parley_reg_cmd_grant(&d, c.pk, 5, buf, 0), PARLEY_EINVAL);
  assert_int_equal(parley_reg_cmd_grant(&d, c.pk, 5, buf,
                                        PARLEY_GRANT_MAX_LEN + 1),
                   PARLEY_EINVAL);
  assert_int_equal(d.type, 0);
  assert_int_equal(parley_reg_cmd_key_put(&d, c.pk, 5, buf,
                                          PARLEY_GROUPKEY_BLOB_MAX + 1, sig),
                   PARLEY_EINVAL);
  assert_int_equal(parley_reg_cmd_key_put(&d, c.pk, 5, buf, 3, sig),
                   PARLEY_OK);
  assert_int_equal(d.type, PARLEY_REG_KEY_PUT);
  assert_int_equal(d.data_len, 67);
  assert_memory_equal(d.data, sig, 64);
  assert_memory_equal(d.data + 64, buf, 3);
  assert_int_equal(d.ts_ms, 5);
  assert_memory_equal(d.pk, c.pk, 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_codec_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_codec_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_codec, setup, teardown),
  };
  parley_allocator_set(&counting);
  if (parley_crypto_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
