/*
 * test_chain.c — the hash chain and its checkpoints (src/crypto/chain.c):
 * fixed vectors (digest and link also recomputed independently from the
 * byte layout in chain.h; the Ed25519 signature is deterministic), then
 * every way a relay could tamper with a run: altered body, timestamp,
 * flags, digest; reordered, dropped, duplicated or renumbered entries;
 * wrong prev, checkpoint seq, hash or channel; a signature by someone other
 * than the publisher.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "crypto/chain.h"
#include "crypto/identity.h"
#include "wire/wire.h"

static const uint8_t want_digest[32] = {
    0xf0, 0x37, 0x1c, 0xd4, 0x5b, 0xae, 0x80, 0x5b, 0xa0, 0x5a, 0x68,
    0x41, 0xa2, 0x34, 0x16, 0x5a, 0x2a, 0x38, 0xdb, 0x30, 0x36, 0xcf,
    0x05, 0xf6, 0x97, 0x97, 0x8a, 0x25, 0x30, 0x0e, 0xc2, 0xc4,
};
static const uint8_t want_next[32] = {
    0x87, 0xce, 0x39, 0xdd, 0x4c, 0xbd, 0x87, 0x77, 0xf3, 0x7b, 0x6f,
    0x66, 0x9d, 0x07, 0x32, 0xb2, 0x62, 0xf6, 0x8b, 0xe0, 0xde, 0x9d,
    0x4e, 0x1e, 0xbe, 0x2c, 0x8a, 0x2d, 0x73, 0x59, 0x87, 0xf8,
};
static const uint8_t want_pk[32] = {
    0x25, 0x43, 0xb9, 0x2f, 0xf1, 0x09, 0x55, 0x11, 0x47, 0x6a, 0xdc,
    0x83, 0x69, 0xdb, 0x6d, 0xdc, 0x93, 0x36, 0x65, 0xa1, 0x19, 0x78,
    0xdd, 0xa1, 0x40, 0x4e, 0xe1, 0x06, 0x6c, 0xa9, 0x55, 0x9d,
};
static const uint8_t want_sig[64] = {
    0xb4, 0xdb, 0x0c, 0x09, 0x7e, 0x22, 0x1d, 0xd1, 0xc3, 0x12, 0x1b,
    0x1b, 0x0e, 0xee, 0x85, 0x56, 0x2e, 0x47, 0x7f, 0x45, 0x31, 0x45,
    0x28, 0x55, 0x40, 0x6e, 0x9a, 0xde, 0x33, 0xa7, 0x1d, 0xf2, 0xe7,
    0xaa, 0xf4, 0x7a, 0x0f, 0x2e, 0x11, 0x98, 0x24, 0x8f, 0x16, 0xcd,
    0x93, 0x0c, 0x05, 0x69, 0x71, 0x75, 0xc5, 0x1b, 0xee, 0x40, 0x81,
    0xbf, 0x93, 0x65, 0x40, 0x01, 0x61, 0x2a, 0xc1, 0x05,
};

static uint8_t pub_seq[32];
static const uint8_t zero[32];

static int setup(void **state) {
  (void)state;
  for (int i = 0; i < 32; i++)
    pub_seq[i] = (uint8_t)i;
  return parley_crypto_init() == PARLEY_OK ? 0 : -1;
}

static struct parley_chain_msg vector_msg(void) {
  struct parley_chain_msg m;
  memset(&m, 0, sizeof m);
  m.publisher = pub_seq;
  m.channel = "news";
  m.channel_len = 4;
  m.seq = 7;
  m.ts_ms = 1795500000123ull;
  m.flags = 0;
  m.body = (const uint8_t *)"hello";
  m.body_len = 5;
  return m;
}

static void identity(struct parley_identity *id, uint8_t base) {
  uint8_t seed[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)(base + i);
  assert_int_equal(parley_identity_from_seed(id, seed), PARLEY_OK);
}

/* ---- vectors ----------------------------------------------------------------- */

static void test_digest_vector(void **state) {
  struct parley_chain_msg m = vector_msg();
  uint8_t d[32], again[32], input[13 + 32 + 1 + 4 + 8 + 8 + 1 + 8 + 5];
  size_t o = 0;
  (void)state;

  assert_int_equal(parley_chain_digest(&m, d), PARLEY_OK);
  assert_memory_equal(d, want_digest, 32);
  /* The same bytes, laid out by hand from the header comment. */
  memcpy(input + o, "parley-msg-v1", 13);
  o += 13;
  memcpy(input + o, pub_seq, 32);
  o += 32;
  input[o++] = 4;
  memcpy(input + o, "news", 4);
  o += 4;
  memcpy(input + o, "\0\0\0\0\0\0\0\x07", 8);
  o += 8;
  memcpy(input + o, "\x00\x00\x01\xa2\x0c\x23\xc3\x7b", 8);
  o += 8;
  input[o++] = 0;
  memcpy(input + o, "\0\0\0\0\0\0\0\x05", 8);
  o += 8;
  memcpy(input + o, "hello", 5);
  o += 5;
  assert_int_equal(o, sizeof input);
  crypto_generichash(again, 32, input, sizeof input, NULL, 0);
  assert_memory_equal(again, want_digest, 32);
}

static void test_next_vector(void **state) {
  uint8_t h[32], input[15 + 64], again[32];
  (void)state;

  parley_chain_next(zero, want_digest, h);
  assert_memory_equal(h, want_next, 32);
  memcpy(input, "parley-chain-v1", 15);
  memset(input + 15, 0, 32);
  memcpy(input + 47, want_digest, 32);
  crypto_generichash(again, 32, input, sizeof input, NULL, 0);
  assert_memory_equal(again, want_next, 32);
  /* out may alias prev. */
  memset(h, 0, sizeof h);
  parley_chain_next(h, want_digest, h);
  assert_memory_equal(h, want_next, 32);
  /* Order matters: next(d, prev) is another value. */
  parley_chain_next(want_digest, zero, h);
  assert_memory_not_equal(h, want_next, 32);
}

static void test_sign_vector(void **state) {
  struct parley_identity id, other;
  uint8_t sig[64], bad[64], h2[32];
  (void)state;

  identity(&id, 0x40);
  assert_memory_equal(id.pk, want_pk, 32);
  assert_int_equal(parley_chain_sign(&id, "news", 4, 7, want_next, sig),
                   PARLEY_OK);
  assert_memory_equal(sig, want_sig, 64);
  assert_int_equal(parley_chain_verify(id.pk, "news", 4, 7, want_next, sig),
                   PARLEY_OK);
  /* Any other statement fails. */
  assert_int_equal(parley_chain_verify(id.pk, "news", 4, 8, want_next, sig),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_chain_verify(id.pk, "newz", 4, 7, want_next, sig),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_chain_verify(id.pk, "news!", 5, 7, want_next, sig),
                   PARLEY_ECRYPTO);
  memcpy(h2, want_next, 32);
  h2[31] ^= 1;
  assert_int_equal(parley_chain_verify(id.pk, "news", 4, 7, h2, sig),
                   PARLEY_ECRYPTO);
  for (int i = 0; i < 64; i += 9) {
    memcpy(bad, sig, 64);
    bad[i] ^= 0x10;
    assert_int_equal(parley_chain_verify(id.pk, "news", 4, 7, want_next, bad),
                     PARLEY_ECRYPTO);
  }
  identity(&other, 0x80);
  assert_int_equal(parley_chain_verify(other.pk, "news", 4, 7, want_next, sig),
                   PARLEY_ECRYPTO);
  /* The checkpoint is not a plain signature over the hash. */
  parley_identity_sign(&id, want_next, 32, bad);
  assert_int_equal(parley_chain_verify(id.pk, "news", 4, 7, want_next, bad),
                   PARLEY_ECRYPTO);
  /* Bad channels. */
  assert_int_equal(parley_chain_sign(&id, "news", 0, 7, want_next, sig),
                   PARLEY_EINVAL);
  assert_int_equal(parley_chain_verify(id.pk, "news", 256, 7, want_next, sig),
                   PARLEY_EINVAL);
  parley_identity_wipe(&id);
  parley_identity_wipe(&other);
}

static void test_digest_fields(void **state) {
  struct parley_chain_msg m = vector_msg(), x;
  uint8_t base[32], d[32];
  char longch[257];
  (void)state;

  assert_int_equal(parley_chain_digest(&m, base), PARLEY_OK);
  /* Each field changes the digest. */
  x = m;
  x.seq = 8;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  assert_memory_not_equal(d, base, 32);
  x = m;
  x.ts_ms++;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  assert_memory_not_equal(d, base, 32);
  x = m;
  x.flags = PARLEY_MSG_BINARY;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  assert_memory_not_equal(d, base, 32);
  x = m;
  x.body = (const uint8_t *)"hellO";
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  assert_memory_not_equal(d, base, 32);
  x = m;
  x.body_len = 4;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  assert_memory_not_equal(d, base, 32);
  x = m;
  x.channel = "newsx";
  x.channel_len = 5;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  assert_memory_not_equal(d, base, 32);
  x = m;
  x.publisher = zero;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  assert_memory_not_equal(d, base, 32);
  /* Length prefixes keep field boundaries: "news"+"hello" is not
   * "newsh"+"ello". */
  x = m;
  x.channel = "newsh";
  x.channel_len = 5;
  x.body = (const uint8_t *)"ello";
  x.body_len = 4;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  assert_memory_not_equal(d, base, 32);
  /* Refused inputs leave out untouched. */
  memset(d, 0xaa, sizeof d);
  x = m;
  x.flags = PARLEY_MSG_ACK_REQ;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_EINVAL);
  x.flags = 0x10;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_EINVAL);
  x = m;
  x.channel_len = 0;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_EINVAL);
  memset(longch, 'a', 256);
  longch[256] = '\0';
  x.channel = longch;
  x.channel_len = 256;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_EINVAL);
  x.channel_len = 255;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  x = m;
  x.body = NULL;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_EINVAL);
  x.body_len = 0;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_OK);
  x = m;
  x.publisher = NULL;
  assert_int_equal(parley_chain_digest(&x, d), PARLEY_EINVAL);
}

/* ---- runs ---------------------------------------------------------------------- */

#define N 10

/* A publisher's channel "news" with messages 1..N, the chain h[0..N] and a
 * checkpoint at N. */
struct fixture {
  struct parley_identity id;
  char bodies[N + 1][16];
  struct parley_chain_entry e[N + 1]; /* e[s] is seq s (e[0] unused) */
  uint8_t h[N + 1][32];
  uint8_t d[N + 1][32];
  uint8_t sig[64];
};

static struct fixture fx;

static void build(void) {
  memset(&fx, 0, sizeof fx);
  identity(&fx.id, 0x40);
  for (uint64_t s = 1; s <= N; s++) {
    struct parley_chain_msg m;
    snprintf(fx.bodies[s], sizeof fx.bodies[s], "message %u", (unsigned)s);
    fx.e[s].seq = s;
    fx.e[s].ts_ms = 1000 + s;
    fx.e[s].flags = s == 3 ? PARLEY_MSG_BINARY : 0;
    fx.e[s].body = (const uint8_t *)fx.bodies[s];
    fx.e[s].body_len = strlen(fx.bodies[s]);
    memset(&m, 0, sizeof m);
    m.publisher = fx.id.pk;
    m.channel = "news";
    m.channel_len = 4;
    m.seq = s;
    m.ts_ms = fx.e[s].ts_ms;
    m.flags = fx.e[s].flags;
    m.body = fx.e[s].body;
    m.body_len = fx.e[s].body_len;
    assert_int_equal(parley_chain_digest(&m, fx.d[s]), PARLEY_OK);
    parley_chain_next(fx.h[s - 1], fx.d[s], fx.h[s]);
  }
  assert_int_equal(parley_chain_sign(&fx.id, "news", 4, N, fx.h[N], fx.sig),
                   PARLEY_OK);
}

/* Verifies run[0..n) against the fixture's checkpoint at N. */
static int verify(const struct parley_chain_entry *run, size_t n,
                  const uint8_t *prev) {
  return parley_chain_verify_run(fx.id.pk, "news", 4, prev, run, n, N,
                                 fx.h[N], fx.sig, NULL);
}

static void test_run_ok(void **state) {
  uint8_t hashes[N][32];
  struct parley_chain_entry run[N];
  (void)state;

  build();
  memcpy(run, &fx.e[1], sizeof run);
  assert_int_equal(parley_chain_verify_run(fx.id.pk, "news", 4, zero, run, N,
                                           N, fx.h[N], fx.sig, hashes),
                   PARLEY_OK);
  for (int i = 0; i < N; i++)
    assert_memory_equal(hashes[i], fx.h[i + 1], 32);
  /* A suffix, given h(k - 1). */
  for (int k = 2; k <= N; k++)
    assert_int_equal(verify(&fx.e[k], (size_t)(N - k + 1), fx.h[k - 1]),
                     PARLEY_OK);
  /* Digest-only entries keep the chain checkable. */
  run[4].digest = fx.d[5];
  run[4].body = NULL;
  run[4].body_len = 0;
  run[N - 1].digest = fx.d[N];
  assert_int_equal(verify(run, N, zero), PARLEY_OK);
  /* A checkpoint in the middle verifies its own prefix. */
  {
    uint8_t sig5[64];
    assert_int_equal(parley_chain_sign(&fx.id, "news", 4, 5, fx.h[5], sig5),
                     PARLEY_OK);
    assert_int_equal(parley_chain_verify_run(fx.id.pk, "news", 4, zero,
                                             &fx.e[1], 5, 5, fx.h[5], sig5,
                                             NULL),
                     PARLEY_OK);
    /* ... but not the run up to N. */
    assert_int_equal(parley_chain_verify_run(fx.id.pk, "news", 4, zero,
                                             &fx.e[1], N, 5, fx.h[5], sig5,
                                             NULL),
                     PARLEY_ECRYPTO);
  }
}

static void test_run_tampered(void **state) {
  struct parley_chain_entry run[N];
  uint8_t d[32];
  (void)state;

  build();
  /* Altered body (same length), body length, timestamp, flags. */
  memcpy(run, &fx.e[1], sizeof run);
  run[6].body = (const uint8_t *)"message X";
  assert_int_equal(verify(run, N, zero), PARLEY_ECRYPTO);
  memcpy(run, &fx.e[1], sizeof run);
  run[6].body_len--;
  assert_int_equal(verify(run, N, zero), PARLEY_ECRYPTO);
  memcpy(run, &fx.e[1], sizeof run);
  run[0].ts_ms++;
  assert_int_equal(verify(run, N, zero), PARLEY_ECRYPTO);
  memcpy(run, &fx.e[1], sizeof run);
  run[2].flags = 0; /* was BINARY */
  assert_int_equal(verify(run, N, zero), PARLEY_ECRYPTO);
  /* A forged digest entry. */
  memcpy(run, &fx.e[1], sizeof run);
  memcpy(d, fx.d[4], 32);
  d[0] ^= 1;
  run[3].digest = d;
  assert_int_equal(verify(run, N, zero), PARLEY_ECRYPTO);
  /* The last message replaced by a forged digest. */
  memcpy(run, &fx.e[1], sizeof run);
  run[N - 1].digest = fx.d[N - 1];
  assert_int_equal(verify(run, N, zero), PARLEY_ECRYPTO);
}

static void test_run_reorder_drop_duplicate(void **state) {
  struct parley_chain_entry run[N + 1], tmp;
  (void)state;

  build();
  /* Two messages swapped, seqs kept with them: not contiguous. */
  memcpy(run, &fx.e[1], N * sizeof run[0]);
  tmp = run[3];
  run[3] = run[4];
  run[4] = tmp;
  assert_int_equal(verify(run, N, zero), PARLEY_ECRYPTO);
  /* Two messages swapped, renumbered to look contiguous. */
  run[3].seq = 4;
  run[4].seq = 5;
  assert_int_equal(verify(run, N, zero), PARLEY_ECRYPTO);
  /* One dropped (a gap). */
  memcpy(run, &fx.e[1], 5 * sizeof run[0]);
  memcpy(run + 5, &fx.e[7], 4 * sizeof run[0]);
  assert_int_equal(verify(run, N - 1, zero), PARLEY_ECRYPTO);
  /* One dropped and the rest renumbered. */
  for (int i = 5; i < N - 1; i++)
    run[i].seq = (uint64_t)i + 1;
  assert_int_equal(verify(run, N - 1, zero), PARLEY_ECRYPTO);
  /* The last one dropped: the run no longer ends at the checkpoint. */
  memcpy(run, &fx.e[1], N * sizeof run[0]);
  assert_int_equal(verify(run, N - 1, zero), PARLEY_ECRYPTO);
  /* One duplicated. */
  memcpy(run, &fx.e[1], 4 * sizeof run[0]);
  run[4] = fx.e[4];
  memcpy(run + 5, &fx.e[5], (N - 4) * sizeof run[0]);
  assert_int_equal(verify(run, N + 1, zero), PARLEY_ECRYPTO);
  /* An extra message appended after the checkpoint. */
  memcpy(run, &fx.e[1], N * sizeof run[0]);
  run[N] = fx.e[N];
  run[N].seq = N + 1;
  assert_int_equal(verify(run, N + 1, zero), PARLEY_ECRYPTO);
  /* Seq 0 and a wrap-around are refused. */
  memcpy(run, &fx.e[1], N * sizeof run[0]);
  run[0].seq = 0;
  assert_int_equal(verify(run, 1, zero), PARLEY_ECRYPTO);
  run[0].seq = UINT64_MAX;
  run[1].seq = 0;
  assert_int_equal(parley_chain_verify_run(fx.id.pk, "news", 4, zero, run, 2,
                                           0, fx.h[N], fx.sig, NULL),
                   PARLEY_ECRYPTO);
}

static void test_run_wrong_context(void **state) {
  struct parley_identity relay;
  struct parley_chain_entry run[N];
  uint8_t sig[64], h[32];
  (void)state;

  build();
  memcpy(run, &fx.e[1], sizeof run);
  /* Wrong prev. */
  assert_int_equal(verify(run, N, fx.h[1]), PARLEY_ECRYPTO);
  assert_int_equal(verify(&fx.e[2], N - 1, zero), PARLEY_ECRYPTO);
  /* Checkpoint at another seq, or with another hash. */
  assert_int_equal(parley_chain_verify_run(fx.id.pk, "news", 4, zero, run, N,
                                           N - 1, fx.h[N], fx.sig, NULL),
                   PARLEY_ECRYPTO);
  memcpy(h, fx.h[N], 32);
  h[5] ^= 4;
  assert_int_equal(parley_chain_verify_run(fx.id.pk, "news", 4, zero, run, N,
                                           N, h, fx.sig, NULL),
                   PARLEY_ECRYPTO);
  /* The right hash signed by the relay, not the publisher: checked under
   * the publisher's key it fails; under the relay's key the digests (which
   * bind the publisher) no longer add up. */
  identity(&relay, 0x90);
  assert_int_equal(parley_chain_sign(&relay, "news", 4, N, fx.h[N], sig),
                   PARLEY_OK);
  assert_int_equal(parley_chain_verify_run(fx.id.pk, "news", 4, zero, run, N,
                                           N, fx.h[N], sig, NULL),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_chain_verify_run(relay.pk, "news", 4, zero, run, N,
                                           N, fx.h[N], sig, NULL),
                   PARLEY_ECRYPTO);
  /* Another channel. */
  assert_int_equal(parley_chain_verify_run(fx.id.pk, "other", 5, zero, run, N,
                                           N, fx.h[N], fx.sig, NULL),
                   PARLEY_ECRYPTO);
  /* Malformed calls. */
  assert_int_equal(parley_chain_verify_run(fx.id.pk, "news", 4, zero, run, 0,
                                           N, fx.h[N], fx.sig, NULL),
                   PARLEY_EINVAL);
  assert_int_equal(parley_chain_verify_run(fx.id.pk, "", 0, zero, run, N, N,
                                           fx.h[N], fx.sig, NULL),
                   PARLEY_EINVAL);
  run[0].flags = PARLEY_MSG_ACK_REQ;
  assert_int_equal(verify(run, N, zero), PARLEY_EINVAL);
  parley_identity_wipe(&relay);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_digest_vector),
      cmocka_unit_test(test_next_vector),
      cmocka_unit_test(test_sign_vector),
      cmocka_unit_test(test_digest_fields),
      cmocka_unit_test(test_run_ok),
      cmocka_unit_test(test_run_tampered),
      cmocka_unit_test(test_run_reorder_drop_duplicate),
      cmocka_unit_test(test_run_wrong_context),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
