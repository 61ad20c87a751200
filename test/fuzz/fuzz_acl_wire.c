/*
 * fuzz_acl_wire.c — the private-topic payload codecs (wire/acl_wire.h).
 *
 * Every input goes through all seven decoders.  Whatever decodes must
 * re-encode to exactly the input bytes (the codec is canonical), encoding
 * with no buffer must report that size, and a buffer one byte short must
 * be refused without a write past it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/acl_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

/* Largest payload: MEMBERS with PARLEY_ACL_MAX_MEMBERS keys. */
#define OUT_CAP (4u + 256u + 32u + 16u + 32u * PARLEY_ACL_MAX_MEMBERS)

static uint8_t out[OUT_CAP];

typedef int (*enc_fn)(const void *m, uint8_t *buf, size_t cap, size_t *w);

#define CODEC(name, type)                                                      \
  static int enc_##name(const void *m, uint8_t *b, size_t c, size_t *w) {      \
    return parley_acl_##name##_encode((const struct type *)m, b, c, w);        \
  }
CODEC(topic_ctl, parley_acl_topic_ctl)
CODEC(key_put, parley_acl_key_put)
CODEC(key_get, parley_acl_key_get)
CODEC(keys, parley_acl_keys)
CODEC(members_get, parley_acl_members_get)
CODEC(members, parley_acl_members)
CODEC(event, parley_acl_event)

static void same(enc_fn enc, const void *m, const uint8_t *data, size_t size) {
  size_t n = 0;
  CHECK(enc(m, out, sizeof out, &n) == PARLEY_OK);
  CHECK(n == size && memcmp(out, data, size) == 0);
  n = 0;
  CHECK(enc(m, NULL, 0, &n) == PARLEY_ETOOBIG && n == size);
  if (size > 0) {
    n = 0;
    CHECK(enc(m, out, size - 1, &n) == PARLEY_ETOOBIG && n == size);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct parley_acl_topic_ctl tc;
  struct parley_acl_key_put kp;
  struct parley_acl_key_get kg;
  struct parley_acl_keys ks;
  struct parley_acl_members_get mg;
  struct parley_acl_members ms;
  struct parley_acl_event ev;
  size_t n;

  if (parley_acl_topic_ctl_decode(data, size, &tc) == PARLEY_OK)
    same(enc_topic_ctl, &tc, data, size);
  if (parley_acl_key_put_decode(data, size, &kp) == PARLEY_OK)
    same(enc_key_put, &kp, data, size);
  if (parley_acl_key_get_decode(data, size, &kg) == PARLEY_OK)
    same(enc_key_get, &kg, data, size);
  if (parley_acl_keys_decode(data, size, &ks) == PARLEY_OK) {
    CHECK(ks.count <= PARLEY_ACL_MAX_KEYS && ks.epoch >= 1);
    same(enc_keys, &ks, data, size);
  }
  if (parley_acl_members_get_decode(data, size, &mg) == PARLEY_OK)
    same(enc_members_get, &mg, data, size);
  if (parley_acl_members_decode(data, size, &ms) == PARLEY_OK) {
    CHECK(ms.count >= 1 && ms.count <= PARLEY_ACL_MAX_MEMBERS);
    same(enc_members, &ms, data, size);
  }
  if (parley_acl_event_decode(data, size, &ev) == PARLEY_OK)
    same(enc_event, &ev, data, size);
  if (parley_acl_key_put_signed_data(data, size, out, sizeof out, &n) ==
      PARLEY_OK)
    CHECK(n == size + 18 && memcmp(out + 18, data, size) == 0);
  return 0;
}
