/*
 * fuzz_regcmd.c — the registry command codec and state machine.
 *
 * Each input is used twice:
 *   1. as one encoded command: when it decodes, encoding the result must
 *      give back exactly the input bytes (the codec is canonical: every
 *      field is always present and strings cannot hold NUL);
 *   2. as a script: u16 big-endian length + that many bytes, repeated.
 *      Every record that decodes must also re-encode byte for byte; it is
 *      then checked and applied to a registry with small limits (check and
 *      apply must agree).  Afterwards the registry's indexes must agree
 *      with each other, and snapshot -> restore -> snapshot must be stable.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "index/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

static void roundtrip(const uint8_t *data, size_t size,
                      struct parley_reg_cmd *c, int *ok) {
  uint8_t out[600];
  size_t n = 0;

  *ok = parley_reg_cmd_decode(data, size, c) == PARLEY_OK;
  if (!*ok)
    return;
  CHECK(parley_reg_cmd_encode(c, out, sizeof out, &n) == PARLEY_OK);
  CHECK(n == size && memcmp(out, data, size) == 0);
}

struct tally {
  uint64_t subs; /* sum of per-peer or per-topic counts */
  uint64_t items;
};

static int count_peer(void *ctx, const struct parley_reg_peer *p) {
  struct tally *t = ctx;
  t->subs += p->nsubs;
  t->items++;
  return 0;
}

static int count_topic(void *ctx, const char *topic, uint32_t n) {
  struct tally *t = ctx;
  (void)topic;
  CHECK(n > 0); /* empty topics disappear */
  t->subs += n;
  t->items++;
  return 0;
}

static void check_state(const struct parley_registry *r) {
  struct tally peers = {0, 0}, topics = {0, 0};
  struct parley_buf a, b;
  struct parley_registry *copy;

  CHECK(parley_registry_foreach_peer(r, count_peer, &peers) == 0);
  CHECK(parley_registry_foreach_topic(r, count_topic, &topics) == 0);
  CHECK(peers.items == parley_registry_peer_count(r));
  CHECK(topics.items == parley_registry_topic_count(r));
  CHECK(peers.subs == topics.subs);

  parley_buf_init(&a, 1u << 24);
  parley_buf_init(&b, 1u << 24);
  CHECK(parley_registry_snapshot(r, &a) == PARLEY_OK);
  CHECK(parley_registry_new(&(struct parley_reg_limits){3, 8, 16}, &copy) ==
        PARLEY_OK);
  CHECK(parley_registry_restore(copy, a.data, a.len) == PARLEY_OK);
  CHECK(parley_registry_snapshot(copy, &b) == PARLEY_OK);
  CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
  parley_registry_free(copy);
  parley_buf_close(&a);
  parley_buf_close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct parley_registry *r;
  struct parley_reg_cmd c;
  size_t pos = 0;
  int ok;

  roundtrip(data, size, &c, &ok);

  if (parley_registry_new(&(struct parley_reg_limits){3, 8, 16}, &r) !=
      PARLEY_OK)
    return 0;
  if (ok) {
    int want = parley_registry_check(r, &c);
    CHECK(parley_registry_apply(r, &c) == want);
  }
  while (size - pos >= 2) {
    size_t len = (size_t)data[pos] << 8 | data[pos + 1];
    int want;
    pos += 2;
    if (len > size - pos)
      break;
    roundtrip(data + pos, len, &c, &ok);
    pos += len;
    if (!ok)
      continue;
    want = parley_registry_check(r, &c);
    CHECK(parley_registry_apply(r, &c) == want);
  }
  check_state(r);
  parley_registry_free(r);
  return 0;
}
