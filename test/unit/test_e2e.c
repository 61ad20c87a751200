/*
 * test_e2e.c — end-to-end direct messages, private-topic keys, messages and
 * grants, safety numbers and the passphrase-protected key file.
 *
 * Every sealed format is attacked by flipping each of its bytes in turn;
 * identities are substituted (wrong recipient, sender, channel, owner,
 * publisher); a recipient tries to forward a signed message to a third
 * party; a revoked member tries to read the key and messages after the
 * revoke.  Safety numbers are pinned to values computed independently
 * (Python hashlib.blake2b over the RFC 8032 test keys).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "crypto/e2e.h"
#include "crypto/groupkey.h"
#include "crypto/identity.h"
#include "crypto/keyfile.h"
#include "crypto/safety.h"

static struct parley_identity alice, bob, carol, mallory;

static void seeded(struct parley_identity *id, uint8_t fill) {
  uint8_t seed[32];
  memset(seed, fill, sizeof seed);
  assert_int_equal(parley_identity_from_seed(id, seed), PARLEY_OK);
}

static int setup(void **state) {
  (void)state;
  if (parley_crypto_init() != PARLEY_OK)
    return -1;
  seeded(&alice, 0xa1);
  seeded(&bob, 0xb2);
  seeded(&carol, 0xc3);
  seeded(&mallory, 0x66);
  return 0;
}

/* 1 if needle[0..nl) occurs in hay[0..hl). */
static int contains(const uint8_t *hay, size_t hl, const void *needle,
                    size_t nl) {
  for (size_t i = 0; i + nl <= hl; i++)
    if (memcmp(hay + i, needle, nl) == 0)
      return 1;
  return 0;
}

/* "@" + the id of pk. */
static void dm_channel(const uint8_t pk[32], char out[PARLEY_ID_TEXT_LEN + 2]) {
  out[0] = '@';
  parley_id_encode(pk, out + 1);
}

static const uint8_t HELLO[] = "hello, bob";
#define HELLO_LEN (sizeof HELLO - 1)

/* Seals HELLO from alice to bob; returns the length. */
static size_t seal_hello(uint8_t *env, size_t cap, unsigned flags,
                         uint64_t seq) {
  char ch[PARLEY_ID_TEXT_LEN + 2];
  size_t n = 0;
  dm_channel(bob.pk, ch);
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, ch, seq, 1700000000123u,
                                   HELLO, HELLO_LEN, flags, env, cap, &n),
                   PARLEY_OK);
  return n;
}

/* ---- direct messages ------------------------------------------------------ */

static void test_dm_round_trip(void **state) {
  (void)state;
  uint8_t env[512], out[512];
  char ch[PARLEY_ID_TEXT_LEN + 2];
  struct parley_e2e_meta meta;
  size_t len, want;

  dm_channel(bob.pk, ch);
  assert_int_equal(parley_e2e_sealed_len(HELLO_LEN, 0, &want), PARLEY_OK);
  assert_int_equal(want, 106 + 80 + HELLO_LEN + 16);
  assert_int_equal(parley_e2e_sealed_len(HELLO_LEN, 1, &want), PARLEY_OK);
  assert_int_equal(want, 186 + 80 + HELLO_LEN + 16);
  assert_int_equal(parley_e2e_sealed_len(1, 2, &want), PARLEY_EINVAL);
  assert_int_equal(
      parley_e2e_sealed_len(PARLEY_E2E_MAX_PLAINTEXT + 1, 0, &want),
      PARLEY_ETOOBIG);

  len = seal_hello(env, sizeof env, 0, 7);
  assert_int_equal(len, 106 + 80 + HELLO_LEN + 16);
  assert_int_equal(env[0], 1);
  assert_int_equal(env[1], 0);
  /* The plaintext does not appear in the envelope. */
  assert_false(contains(env, len, "hello", 5));

  assert_int_equal(parley_e2e_open_cap(len), len - 106 - 16);
  assert_int_equal(parley_e2e_open(&bob, alice.pk, ch, env, len, out,
                                   sizeof out, &meta),
                   PARLEY_OK);
  assert_int_equal(meta.seq, 7);
  assert_int_equal(meta.ts_ms, 1700000000123u);
  assert_int_equal(meta.len, HELLO_LEN);
  assert_memory_equal(out, HELLO, HELLO_LEN);

  /* Exactly open_cap bytes of scratch are enough, one fewer is not. */
  size_t cap = parley_e2e_open_cap(len);
  assert_int_equal(
      parley_e2e_open(&bob, alice.pk, ch, env, len, out, cap, &meta),
      PARLEY_OK);
  assert_int_equal(
      parley_e2e_open(&bob, alice.pk, ch, env, len, out, cap - 1, &meta),
      PARLEY_ETOOBIG);

  /* Without a sender copy the sender cannot read it back. */
  assert_int_equal(parley_e2e_open_sent(&alice, bob.pk, ch, env, len, out,
                                        sizeof out, &meta),
                   PARLEY_ENOTFOUND);

  /* Two seals of the same message differ (fresh key, nonce, ephemeral). */
  uint8_t env2[512];
  assert_int_equal(seal_hello(env2, sizeof env2, 0, 7), len);
  assert_memory_not_equal(env, env2, len);
}

static void test_dm_sender_copy(void **state) {
  (void)state;
  uint8_t env[512], out[512];
  char ch[PARLEY_ID_TEXT_LEN + 2];
  struct parley_e2e_meta meta;
  size_t len = seal_hello(env, sizeof env, PARLEY_E2E_SENDER_COPY, 9);

  dm_channel(bob.pk, ch);
  assert_int_equal(len, 186 + 80 + HELLO_LEN + 16);
  assert_int_equal(parley_e2e_open(&bob, alice.pk, ch, env, len, out,
                                   sizeof out, &meta),
                   PARLEY_OK);
  assert_memory_equal(out, HELLO, HELLO_LEN);
  assert_int_equal(parley_e2e_open_sent(&alice, bob.pk, ch, env, len, out,
                                        sizeof out, &meta),
                   PARLEY_OK);
  assert_int_equal(meta.seq, 9);
  assert_memory_equal(out, HELLO, HELLO_LEN);
  /* The sender copy is the sender's only: bob cannot use it, nor can alice
   * claim it was addressed to carol. */
  assert_int_equal(parley_e2e_open_sent(&bob, alice.pk, ch, env, len, out,
                                        sizeof out, &meta),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_e2e_open_sent(&alice, carol.pk, ch, env, len, out,
                                        sizeof out, &meta),
                   PARLEY_ECRYPTO);
}

static void test_dm_empty_and_large(void **state) {
  (void)state;
  char ch[PARLEY_ID_TEXT_LEN + 2];
  struct parley_e2e_meta meta;
  size_t n = 0, big = 200000, cap;
  dm_channel(bob.pk, ch);

  uint8_t env[512], out[512];
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, ch, 1, 2, NULL, 0, 0, env,
                                   sizeof env, &n),
                   PARLEY_OK);
  assert_int_equal(n, PARLEY_E2E_MIN_LEN);
  assert_int_equal(
      parley_e2e_open(&bob, alice.pk, ch, env, n, out, sizeof out, &meta),
      PARLEY_OK);
  assert_int_equal(meta.len, 0);

  uint8_t *pt = malloc(big), *benv = malloc(big + 400), *bout = malloc(big + 400);
  assert_non_null(pt);
  assert_non_null(benv);
  assert_non_null(bout);
  for (size_t i = 0; i < big; i++)
    pt[i] = (uint8_t)(i * 31 + 7);
  assert_int_equal(parley_e2e_sealed_len(big, 1, &cap), PARLEY_OK);
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, ch, 3, 4, pt, big, 1, benv,
                                   cap - 1, &n),
                   PARLEY_ETOOBIG);
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, ch, 3, 4, pt, big, 1, benv,
                                   cap, &n),
                   PARLEY_OK);
  assert_int_equal(n, cap);
  assert_int_equal(
      parley_e2e_open(&bob, alice.pk, ch, benv, n, bout, big + 400, &meta),
      PARLEY_OK);
  assert_int_equal(meta.len, big);
  assert_memory_equal(bout, pt, big);
  free(pt);
  free(benv);
  free(bout);
}

static void test_dm_tamper_every_byte(void **state) {
  (void)state;
  uint8_t env[512], out[512];
  char ch[PARLEY_ID_TEXT_LEN + 2];
  struct parley_e2e_meta meta;
  dm_channel(bob.pk, ch);

  for (unsigned flags = 0; flags <= 1; flags++) {
    size_t len = seal_hello(env, sizeof env, flags, 1);
    memset(out, 0, sizeof out);
    for (size_t i = 0; i < len; i++) {
      for (unsigned bit = 0; bit < 8; bit += 7) {
        env[i] ^= (uint8_t)(1u << bit);
        int rc = parley_e2e_open(&bob, alice.pk, ch, env, len, out,
                                 sizeof out, &meta);
        if (rc == PARLEY_OK)
          fail_msg("flags %u: flipping bit %u of byte %zu was accepted",
                   flags, bit, i);
        /* Failure leaves nothing behind. */
        for (size_t j = 0; j < sizeof out && j < len; j++)
          assert_int_equal(out[j], 0);
        if (flags) {
          rc = parley_e2e_open_sent(&alice, bob.pk, ch, env, len, out,
                                    sizeof out, &meta);
          assert_true(rc < 0);
        }
        env[i] ^= (uint8_t)(1u << bit);
      }
    }
    /* Truncated or extended envelopes fail too. */
    for (size_t cut = 0; cut < len; cut++)
      assert_true(parley_e2e_open(&bob, alice.pk, ch, env, cut, out,
                                  sizeof out, &meta) < 0);
    env[len] = 0;
    assert_int_equal(parley_e2e_open(&bob, alice.pk, ch, env, len + 1, out,
                                     sizeof out, &meta),
                     PARLEY_ECRYPTO);
    assert_int_equal(parley_e2e_open(&bob, alice.pk, ch, env, len, out,
                                     sizeof out, &meta),
                     PARLEY_OK);
  }
}

static void test_dm_wrong_parties(void **state) {
  (void)state;
  uint8_t env[512], out[512];
  char ch[PARLEY_ID_TEXT_LEN + 2], other[PARLEY_ID_TEXT_LEN + 2];
  struct parley_e2e_meta meta;
  size_t len = seal_hello(env, sizeof env, 0, 1);
  dm_channel(bob.pk, ch);
  dm_channel(carol.pk, other);

  /* Not the recipient. */
  assert_int_equal(parley_e2e_open(&carol, alice.pk, ch, env, len, out,
                                   sizeof out, &meta),
                   PARLEY_ECRYPTO);
  /* Not the sender it claims. */
  assert_int_equal(parley_e2e_open(&bob, mallory.pk, ch, env, len, out,
                                   sizeof out, &meta),
                   PARLEY_ECRYPTO);
  /* Not the channel it was sent on. */
  assert_int_equal(parley_e2e_open(&bob, alice.pk, other, env, len, out,
                                   sizeof out, &meta),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_e2e_open(&bob, alice.pk, "news", env, len, out,
                                   sizeof out, &meta),
                   PARLEY_ECRYPTO);
  /* Mallory can seal to bob, but only as herself. */
  size_t n = 0;
  assert_int_equal(parley_e2e_seal(&mallory, bob.pk, ch, 1, 1, HELLO,
                                   HELLO_LEN, 0, env, sizeof env, &n),
                   PARLEY_OK);
  assert_int_equal(parley_e2e_open(&bob, alice.pk, ch, env, n, out,
                                   sizeof out, &meta),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_e2e_open(&bob, mallory.pk, ch, env, n, out,
                                   sizeof out, &meta),
                   PARLEY_OK);
}

/* Bob decrypts alice's message and re-encrypts the very same signed inner
 * to carol with a new key and wrap.  Carol must refuse it: the signature
 * names bob as the recipient. */
static void test_dm_no_surreptitious_forwarding(void **state) {
  (void)state;
  uint8_t env[512], fwd[512], inner[512], key[32], out[512];
  char ch[PARLEY_ID_TEXT_LEN + 2], ch_carol[PARLEY_ID_TEXT_LEN + 2];
  struct parley_e2e_meta meta;
  unsigned long long ilen = 0, blen = 0;
  size_t len = seal_hello(env, sizeof env, 0, 1);
  dm_channel(bob.pk, ch);
  dm_channel(carol.pk, ch_carol);

  assert_int_equal(crypto_box_seal_open(key, env + 26, 80, bob.x_pk, bob.x_sk),
                   0);
  assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
                       inner, &ilen, NULL, env + 106, len - 106, env, 106,
                       env + 2, key),
                   0);
  assert_int_equal(ilen, 80 + HELLO_LEN);

  memcpy(fwd, env, 2);
  randombytes_buf(fwd + 2, 24);
  crypto_aead_xchacha20poly1305_ietf_keygen(key);
  assert_int_equal(crypto_box_seal(fwd + 26, key, 32, carol.x_pk), 0);
  assert_int_equal(crypto_aead_xchacha20poly1305_ietf_encrypt(
                       fwd + 106, &blen, inner, ilen, fwd, 106, NULL, fwd + 2,
                       key),
                   0);
  size_t flen = 106 + (size_t)blen;
  assert_int_equal(flen, len);
  /* Well-formed for carol at the AEAD level, refused by the signature,
   * whatever channel she tries. */
  assert_int_equal(parley_e2e_open(&carol, alice.pk, ch, fwd, flen, out,
                                   sizeof out, &meta),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_e2e_open(&carol, alice.pk, ch_carol, fwd, flen, out,
                                   sizeof out, &meta),
                   PARLEY_ECRYPTO);
}

static void test_dm_bad_arguments(void **state) {
  (void)state;
  uint8_t env[512], out[512], zero[32] = {0};
  char ch[PARLEY_ID_TEXT_LEN + 2], longch[300];
  struct parley_e2e_meta meta;
  size_t n = 0;
  dm_channel(bob.pk, ch);
  memset(longch, 'x', 256);
  longch[256] = '\0';

  assert_int_equal(parley_e2e_seal(&alice, bob.pk, "", 1, 1, HELLO, HELLO_LEN,
                                   0, env, sizeof env, &n),
                   PARLEY_EINVAL);
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, longch, 1, 1, HELLO,
                                   HELLO_LEN, 0, env, sizeof env, &n),
                   PARLEY_EINVAL);
  longch[255] = '\0'; /* 255 bytes is the limit, and is fine */
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, longch, 1, 1, HELLO,
                                   HELLO_LEN, 0, env, sizeof env, &n),
                   PARLEY_OK);
  assert_int_equal(parley_e2e_open(&bob, alice.pk, longch, env, n, out,
                                   sizeof out, &meta),
                   PARLEY_OK);
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, ch, 1, 1, HELLO, HELLO_LEN,
                                   4, env, sizeof env, &n),
                   PARLEY_EINVAL);
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, ch, 1, 1, NULL, 3, 0, env,
                                   sizeof env, &n),
                   PARLEY_EINVAL);
  /* A recipient key that is not a usable point. */
  assert_int_equal(parley_e2e_seal(&alice, zero, ch, 1, 1, HELLO, HELLO_LEN, 0,
                                   env, sizeof env, &n),
                   PARLEY_EINVAL);
  assert_int_equal(n, 0);
  assert_int_equal(parley_e2e_seal(&alice, bob.pk, ch, 1, 1, HELLO, HELLO_LEN,
                                   0, env, 106 + 80 + HELLO_LEN + 15, &n),
                   PARLEY_ETOOBIG);
}

static void test_dm_codec(void **state) {
  (void)state;
  uint8_t env[512], again[512];
  struct parley_e2e_envelope e;
  size_t n;

  for (unsigned flags = 0; flags <= 1; flags++) {
    size_t len = seal_hello(env, sizeof env, flags, 1);
    assert_int_equal(parley_e2e_decode(env, len, &e), PARLEY_OK);
    assert_int_equal(e.version, 1);
    assert_int_equal(e.flags, flags);
    assert_ptr_equal(e.nonce, env + 2);
    assert_ptr_equal(e.wrap_recipient, env + 26);
    if (flags)
      assert_ptr_equal(e.wrap_sender, env + 106);
    else
      assert_null(e.wrap_sender);
    assert_ptr_equal(e.body, env + (flags ? 186 : 106));
    assert_int_equal(e.body_len, 80 + HELLO_LEN + 16);
    assert_int_equal(parley_e2e_encode(&e, again, sizeof again, &n),
                     PARLEY_OK);
    assert_int_equal(n, len);
    assert_memory_equal(again, env, len);
    assert_int_equal(parley_e2e_encode(&e, again, len - 1, &n),
                     PARLEY_ETOOBIG);
  }
  env[0] = 2;
  assert_int_equal(parley_e2e_decode(env, 300, &e), PARLEY_EVERSION);
  env[0] = 1;
  env[1] = 2;
  assert_int_equal(parley_e2e_decode(env, 300, &e), PARLEY_EPROTO);
  env[1] = 0;
  assert_int_equal(parley_e2e_decode(env, PARLEY_E2E_MIN_LEN, &e), PARLEY_OK);
  assert_int_equal(parley_e2e_decode(env, PARLEY_E2E_MIN_LEN - 1, &e),
                   PARLEY_EPROTO);
  env[1] = 1;
  assert_int_equal(parley_e2e_decode(env, PARLEY_E2E_MIN_LEN, &e),
                   PARLEY_EPROTO);
  assert_int_equal(parley_e2e_decode(env, 1, &e), PARLEY_EPROTO);
  assert_int_equal(parley_e2e_decode(env, PARLEY_E2E_MAX_LEN + 1, &e),
                   PARLEY_ETOOBIG);
  assert_int_equal(parley_e2e_open_cap(PARLEY_E2E_MIN_LEN - 1), 0);
}

/* ---- replay window ------------------------------------------------------- */

static void expect_accept(struct parley_replay *w, uint64_t seq, int order) {
  int got = -1;
  assert_int_equal(parley_replay_accept(w, seq, &got), PARLEY_OK);
  assert_int_equal(got, order);
}

static void test_replay_window(void **state) {
  (void)state;
  struct parley_replay w = {0, 0};
  int order = -1;

  assert_int_equal(parley_replay_accept(&w, 0, &order), PARLEY_EINVAL);
  expect_accept(&w, 1, PARLEY_REPLAY_NEXT);
  assert_int_equal(parley_replay_accept(&w, 1, &order), PARLEY_EEXIST);
  expect_accept(&w, 2, PARLEY_REPLAY_NEXT);
  expect_accept(&w, 5, PARLEY_REPLAY_GAP);
  assert_int_equal(w.top, 5);
  assert_int_equal(w.seen, 0x19); /* 5, 2, 1 -> bits 0, 3, 4 */
  expect_accept(&w, 4, PARLEY_REPLAY_LATE);
  expect_accept(&w, 3, PARLEY_REPLAY_LATE);
  assert_int_equal(parley_replay_accept(&w, 3, &order), PARLEY_EEXIST);
  assert_int_equal(parley_replay_accept(&w, 5, &order), PARLEY_EEXIST);
  assert_int_equal(w.seen, 0x1f);
  expect_accept(&w, 6, PARLEY_REPLAY_NEXT);

  /* check never changes the window. */
  struct parley_replay before = w;
  assert_int_equal(parley_replay_check(&w, 100, &order), PARLEY_OK);
  assert_int_equal(order, PARLEY_REPLAY_GAP);
  assert_memory_equal(&w, &before, sizeof w);

  /* The edge of the window: top - 63 is in it, top - 64 is not. */
  expect_accept(&w, 100, PARLEY_REPLAY_GAP);
  assert_int_equal(w.seen, 1); /* 6 fell out: 100 - 6 >= 64 */
  expect_accept(&w, 37, PARLEY_REPLAY_LATE);
  assert_int_equal(w.seen, 1 | UINT64_C(1) << 63);
  assert_int_equal(parley_replay_accept(&w, 37, &order), PARLEY_EEXIST);
  assert_int_equal(parley_replay_accept(&w, 36, &order), PARLEY_ERANGE);
  assert_int_equal(parley_replay_accept(&w, 6, &order), PARLEY_ERANGE);
  /* Sliding by one pushes 37 out. */
  expect_accept(&w, 101, PARLEY_REPLAY_NEXT);
  assert_int_equal(w.seen, 3);
  assert_int_equal(parley_replay_check(&w, 37, &order), PARLEY_ERANGE);
  /* Sliding by exactly 64 and by more. */
  expect_accept(&w, 165, PARLEY_REPLAY_GAP);
  assert_int_equal(w.seen, 1);
  expect_accept(&w, 102, PARLEY_REPLAY_LATE);
  assert_int_equal(w.seen, 1 | UINT64_C(1) << 63);
  /* The top of the range. */
  expect_accept(&w, UINT64_MAX, PARLEY_REPLAY_GAP);
  assert_int_equal(parley_replay_accept(&w, UINT64_MAX, &order),
                   PARLEY_EEXIST);
  expect_accept(&w, UINT64_MAX - 1, PARLEY_REPLAY_LATE);
}

/* Replayed and reordered envelopes, as a receiver sees them. */
static void test_dm_replay_detected(void **state) {
  (void)state;
  uint8_t env[3][512], out[512];
  size_t len[3];
  char ch[PARLEY_ID_TEXT_LEN + 2];
  struct parley_e2e_meta meta;
  struct parley_replay w = {0, 0};
  int order;
  dm_channel(bob.pk, ch);
  for (int i = 0; i < 3; i++)
    len[i] = seal_hello(env[i], sizeof env[i], 0, (uint64_t)i + 1);

  static const int deliver[] = {0, 2, 1, 2, 0};
  static const int want_rc[] = {PARLEY_OK, PARLEY_OK, PARLEY_OK, PARLEY_EEXIST,
                                PARLEY_EEXIST};
  static const int want_order[] = {PARLEY_REPLAY_NEXT, PARLEY_REPLAY_GAP,
                                   PARLEY_REPLAY_LATE, -1, -1};
  for (int k = 0; k < 5; k++) {
    int i = deliver[k];
    assert_int_equal(parley_e2e_open(&bob, alice.pk, ch, env[i], len[i], out,
                                     sizeof out, &meta),
                     PARLEY_OK);
    assert_int_equal(meta.seq, (uint64_t)i + 1);
    order = -1;
    assert_int_equal(parley_replay_accept(&w, meta.seq, &order), want_rc[k]);
    if (want_rc[k] == PARLEY_OK)
      assert_int_equal(order, want_order[k]);
  }
}

/* ---- private topics: keys --------------------------------------------------- */

static void test_groupkey_seal_open(void **state) {
  (void)state;
  struct parley_topic_key k, got;
  struct parley_groupkey_blob b, d;
  uint8_t buf[PARLEY_GROUPKEY_BLOB_MAX];
  size_t n;

  assert_int_equal(parley_groupkey_generate(&k, 0), PARLEY_EINVAL);
  assert_int_equal(parley_groupkey_generate(&k, 1), PARLEY_OK);
  assert_int_equal(parley_groupkey_seal(&alice, "team", &k, bob.pk, &b),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_blob_encode(&b, buf, sizeof buf, &n),
                   PARLEY_OK);
  assert_int_equal(n, 70 + 4 + 144);
  assert_int_equal(buf[0], 1);
  assert_int_equal(buf[4], 1);
  assert_int_equal(buf[5], 4);
  assert_memory_equal(buf + 6, "team", 4);
  assert_memory_equal(buf + 10, alice.pk, 32);
  assert_memory_equal(buf + 42, bob.pk, 32);
  assert_false(contains(buf, n, k.key, 8));

  assert_int_equal(parley_groupkey_blob_decode(buf, n, &d), PARLEY_OK);
  assert_memory_equal(&d, &b, sizeof d);
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "team", &d, &got),
                   PARLEY_OK);
  assert_int_equal(got.epoch, 1);
  assert_memory_equal(got.key, k.key, 32);
  parley_groupkey_wipe(&got);
  assert_int_equal(got.epoch, 0);

  /* Every byte flipped: decode or open refuses. */
  for (size_t i = 0; i < n; i++) {
    buf[i] ^= 0x01;
    if (parley_groupkey_blob_decode(buf, n, &d) == PARLEY_OK)
      assert_true(parley_groupkey_open(&bob, alice.pk, "team", &d, &got) < 0);
    buf[i] ^= 0x01;
  }
  assert_int_equal(parley_groupkey_blob_decode(buf, n - 1, &d), PARLEY_EPROTO);
  assert_int_equal(parley_groupkey_blob_decode(buf, n + 1, &d), PARLEY_EPROTO);
  buf[0] = 9;
  assert_int_equal(parley_groupkey_blob_decode(buf, n, &d), PARLEY_EVERSION);

  /* Wrong member, topic or owner. */
  assert_int_equal(parley_groupkey_open(&carol, alice.pk, "team", &b, &got),
                   PARLEY_EDENIED);
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "other", &b, &got),
                   PARLEY_EDENIED);
  assert_int_equal(parley_groupkey_open(&bob, mallory.pk, "team", &b, &got),
                   PARLEY_EDENIED);
  /* Carol rewrites the member field to her own key: she still cannot open
   * the sealed part, which is bob's. */
  d = b;
  memcpy(d.member_pk, carol.pk, 32);
  assert_int_equal(parley_groupkey_open(&carol, alice.pk, "team", &d, &got),
                   PARLEY_ECRYPTO);
  /* Bob changes the epoch or topic label of a genuine blob. */
  d = b;
  d.epoch = 2;
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "team", &d, &got),
                   PARLEY_ECRYPTO);
  d = b;
  memcpy(d.topic, "tean", 5);
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "tean", &d, &got),
                   PARLEY_ECRYPTO);
  /* Bad arguments. */
  assert_int_equal(parley_groupkey_seal(&alice, "@bob", &k, bob.pk, &b),
                   PARLEY_EINVAL);
  uint8_t zero[32] = {0};
  assert_int_equal(parley_groupkey_seal(&alice, "team", &k, zero, &b),
                   PARLEY_EINVAL);
  parley_groupkey_wipe(&k);
}

/* A key blob that did not come from the owner: mallory seals a key of her
 * choosing to bob and writes alice in the owner field. */
static void test_groupkey_forged_owner(void **state) {
  (void)state;
  struct parley_topic_key k, got;
  struct parley_groupkey_blob b;
  assert_int_equal(parley_groupkey_generate(&k, 3), PARLEY_OK);
  assert_int_equal(parley_groupkey_seal(&mallory, "team", &k, bob.pk, &b),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "team", &b, &got),
                   PARLEY_EDENIED);
  memcpy(b.owner_pk, alice.pk, 32);
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "team", &b, &got),
                   PARLEY_ECRYPTO);
  for (size_t i = 0; i < 32; i++)
    assert_int_equal(got.key[i], 0);
}

/* ---- private topics: messages ------------------------------------------------ */

static void test_groupkey_messages(void **state) {
  (void)state;
  static const uint8_t pt[] = "minutes of the meeting";
  const size_t ptl = sizeof pt - 1;
  struct parley_topic_key k, k2;
  struct parley_groupkey_msg m;
  uint8_t msg[256], out[256], again[256];
  size_t n, want, got;

  assert_int_equal(parley_groupkey_generate(&k, 4), PARLEY_OK);
  assert_int_equal(parley_groupkey_msg_len(ptl, &want), PARLEY_OK);
  assert_int_equal(want, 29 + 64 + ptl + 16);
  assert_int_equal(parley_groupkey_encrypt(&bob, "team", &k, 12, 3456, pt, ptl,
                                           msg, want - 1, &n),
                   PARLEY_ETOOBIG);
  assert_int_equal(parley_groupkey_encrypt(&bob, "team", &k, 12, 3456, pt, ptl,
                                           msg, sizeof msg, &n),
                   PARLEY_OK);
  assert_int_equal(n, want);
  assert_int_equal(msg[4], 4);
  assert_false(contains(msg, n, "minutes", 7));

  assert_int_equal(parley_groupkey_msg_decode(msg, n, &m), PARLEY_OK);
  assert_int_equal(m.epoch, 4);
  assert_int_equal(m.body_len, n - 29);
  assert_int_equal(parley_groupkey_msg_encode(&m, again, sizeof again, &got),
                   PARLEY_OK);
  assert_int_equal(got, n);
  assert_memory_equal(again, msg, n);

  assert_int_equal(parley_groupkey_decrypt(&k, "team", bob.pk, 12, 3456, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_OK);
  assert_int_equal(got, ptl);
  assert_memory_equal(out, pt, ptl);
  assert_int_equal(parley_groupkey_decrypt(&k, "team", bob.pk, 12, 3456, msg,
                                           n, out, n - 29 - 16 - 1, &got),
                   PARLEY_ETOOBIG);

  /* Anything the AD or the signature binds. */
  assert_int_equal(parley_groupkey_decrypt(&k, "tean", bob.pk, 12, 3456, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_groupkey_decrypt(&k, "team", carol.pk, 12, 3456, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_groupkey_decrypt(&k, "team", bob.pk, 13, 3456, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_groupkey_decrypt(&k, "team", bob.pk, 12, 3457, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_ECRYPTO);
  /* A key of another epoch is refused up front; a wrong key of the same
   * epoch fails authentication. */
  assert_int_equal(parley_groupkey_generate(&k2, 5), PARLEY_OK);
  assert_int_equal(parley_groupkey_decrypt(&k2, "team", bob.pk, 12, 3456, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_EINVAL);
  k2.epoch = 4;
  assert_int_equal(parley_groupkey_decrypt(&k2, "team", bob.pk, 12, 3456, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_ECRYPTO);

  for (size_t i = 0; i < n; i++) {
    msg[i] ^= 0x80;
    assert_true(parley_groupkey_decrypt(&k, "team", bob.pk, 12, 3456, msg, n,
                                        out, sizeof out, &got) < 0);
    msg[i] ^= 0x80;
  }
  assert_true(parley_groupkey_decrypt(&k, "team", bob.pk, 12, 3456, msg, n - 1,
                                      out, sizeof out, &got) < 0);

  /* Carol, a member, publishes as bob: she holds the topic key, but cannot
   * make bob's signature. */
  assert_int_equal(parley_groupkey_encrypt(&carol, "team", &k, 12, 3456, pt,
                                           ptl, msg, sizeof msg, &n),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_decrypt(&k, "team", bob.pk, 12, 3456, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_ECRYPTO);
  assert_int_equal(parley_groupkey_decrypt(&k, "team", carol.pk, 12, 3456, msg,
                                           n, out, sizeof out, &got),
                   PARLEY_OK);

  /* Codec errors. */
  msg[0] = 2;
  assert_int_equal(parley_groupkey_msg_decode(msg, n, &m), PARLEY_EVERSION);
  msg[0] = 1;
  assert_int_equal(parley_groupkey_msg_decode(msg, 29 + 80 - 1, &m),
                   PARLEY_EPROTO);
  assert_int_equal(parley_groupkey_msg_decode(msg, 29 + 80, &m), PARLEY_OK);
  memset(msg + 1, 0, 4);
  assert_int_equal(parley_groupkey_msg_decode(msg, n, &m), PARLEY_EPROTO);
  parley_groupkey_wipe(&k);
}

/* ---- private topics: grants ----------------------------------------------------- */

static struct parley_grant make_grant(const struct parley_identity *owner,
                                      int action,
                                      const struct parley_identity *member,
                                      uint32_t epoch, uint64_t counter) {
  struct parley_grant g;
  memset(&g, 0, sizeof g);
  g.action = (uint8_t)action;
  memcpy(g.topic, "team", 5);
  memcpy(g.member_pk, member->pk, 32);
  g.epoch = epoch;
  g.issued_ms = 1700000000000u + counter;
  g.counter = counter;
  assert_int_equal(parley_groupkey_grant_sign(owner, &g), PARLEY_OK);
  return g;
}

static void test_grant_codec_and_tamper(void **state) {
  (void)state;
  struct parley_grant g = make_grant(&alice, PARLEY_GRANT_ADD, &bob, 1, 2), d;
  uint8_t buf[PARLEY_GRANT_MAX_LEN];
  size_t n;

  assert_int_equal(parley_groupkey_grant_verify(&g), PARLEY_OK);
  assert_int_equal(parley_groupkey_grant_encode(&g, buf, sizeof buf, &n),
                   PARLEY_OK);
  assert_int_equal(n, 151 + 4);
  assert_int_equal(buf[0], 1);
  assert_int_equal(buf[1], PARLEY_GRANT_ADD);
  assert_int_equal(buf[2], 4);
  assert_memory_equal(buf + 7, alice.pk, 32);
  assert_memory_equal(buf + 39, bob.pk, 32);
  assert_memory_equal(buf + 71, "\0\0\0\1", 4);
  assert_memory_equal(buf + 83, "\0\0\0\0\0\0\0\2", 8);
  assert_memory_equal(buf + 91, g.sig, 64);
  assert_int_equal(parley_groupkey_grant_encode(&g, buf, n - 1, &n),
                   PARLEY_ETOOBIG);
  assert_int_equal(parley_groupkey_grant_encode(&g, buf, sizeof buf, &n),
                   PARLEY_OK);

  assert_int_equal(parley_groupkey_grant_decode(buf, n, &d), PARLEY_OK);
  assert_memory_equal(&d, &g, sizeof d);
  for (size_t i = 0; i < n; i++) {
    buf[i] ^= 0x01;
    if (parley_groupkey_grant_decode(buf, n, &d) == PARLEY_OK)
      assert_true(parley_groupkey_grant_verify(&d) < 0);
    buf[i] ^= 0x01;
  }
  assert_int_equal(parley_groupkey_grant_decode(buf, n - 1, &d), PARLEY_EPROTO);
  buf[5] = ' ';
  assert_int_equal(parley_groupkey_grant_decode(buf, n, &d), PARLEY_EPROTO);
}

static void test_grant_shapes(void **state) {
  (void)state;
  struct parley_grant g;
  memset(&g, 0, sizeof g);
  memcpy(g.topic, "team", 5);
  g.counter = 1;

  /* CREATE: epoch 1, member = owner. */
  g.action = PARLEY_GRANT_CREATE;
  g.epoch = 1;
  memcpy(g.member_pk, alice.pk, 32);
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_OK);
  g.epoch = 2;
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  g.epoch = 1;
  memcpy(g.member_pk, bob.pk, 32);
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  /* ADD of the owner itself, REVOKE in epoch 1, ROTATE of someone else. */
  g.action = PARLEY_GRANT_ADD;
  memcpy(g.member_pk, alice.pk, 32);
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  g.action = PARLEY_GRANT_REVOKE;
  memcpy(g.member_pk, bob.pk, 32);
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  g.action = PARLEY_GRANT_ROTATE;
  g.epoch = 2;
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  /* Counter 0, epoch 0, unknown action, bad topic. */
  g.action = PARLEY_GRANT_ADD;
  g.counter = 0;
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  g.counter = 1;
  g.epoch = 0;
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  g.epoch = 1;
  g.action = 9;
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  g.action = PARLEY_GRANT_ADD;
  memcpy(g.topic, "@team", 6);
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_EINVAL);
  memcpy(g.topic, "team", 5);
  assert_int_equal(parley_groupkey_grant_sign(&alice, &g), PARLEY_OK);
  /* Claiming alice's key over mallory's signature. */
  parley_identity_sign(&mallory, (const uint8_t *)"x", 1, g.sig);
  assert_int_equal(parley_groupkey_grant_verify(&g), PARLEY_ECRYPTO);
}

static void test_grant_apply_rules(void **state) {
  (void)state;
  struct parley_grant_state st;
  memset(&st, 0, sizeof st);

  struct parley_grant add_bob = make_grant(&alice, PARLEY_GRANT_ADD, &bob, 1, 2);
  assert_int_equal(parley_groupkey_grant_apply(&st, &add_bob, 0),
                   PARLEY_ENOTFOUND);
  struct parley_grant create =
      make_grant(&alice, PARLEY_GRANT_CREATE, &alice, 1, 1);
  assert_int_equal(parley_groupkey_grant_apply(&st, &create, 0), PARLEY_OK);
  assert_int_equal(st.exists, 1);
  assert_memory_equal(st.owner_pk, alice.pk, 32);
  assert_int_equal(st.epoch, 1);
  assert_int_equal(st.counter, 1);
  assert_int_equal(parley_groupkey_grant_apply(&st, &create, 0), PARLEY_EEXIST);
  /* Mallory's own CREATE of the same name is not alice's topic. */
  struct parley_grant mcreate =
      make_grant(&mallory, PARLEY_GRANT_CREATE, &mallory, 1, 5);
  assert_int_equal(parley_groupkey_grant_apply(&st, &mcreate, 0),
                   PARLEY_EEXIST);

  assert_int_equal(parley_groupkey_grant_apply(&st, &add_bob, 0), PARLEY_OK);
  /* Replayed statement. */
  assert_int_equal(parley_groupkey_grant_apply(&st, &add_bob, 1),
                   PARLEY_ERANGE);
  /* A grant signed by a non-owner is refused, even with a valid signature
   * of its own. */
  struct parley_grant m_add =
      make_grant(&mallory, PARLEY_GRANT_ADD, &carol, 1, 10);
  assert_int_equal(parley_groupkey_grant_verify(&m_add), PARLEY_OK);
  assert_int_equal(parley_groupkey_grant_apply(&st, &m_add, 0), PARLEY_EDENIED);
  /* ... and with alice's key written in, the signature fails. */
  memcpy(m_add.owner_pk, alice.pk, 32);
  assert_int_equal(parley_groupkey_grant_apply(&st, &m_add, 0),
                   PARLEY_ECRYPTO);

  /* ADD in the wrong epoch, ADD of a member. */
  struct parley_grant add_carol_e2 =
      make_grant(&alice, PARLEY_GRANT_ADD, &carol, 2, 3);
  assert_int_equal(parley_groupkey_grant_apply(&st, &add_carol_e2, 0),
                   PARLEY_EPROTO);
  struct parley_grant add_carol =
      make_grant(&alice, PARLEY_GRANT_ADD, &carol, 1, 3);
  assert_int_equal(parley_groupkey_grant_apply(&st, &add_carol, 1),
                   PARLEY_EPROTO);
  assert_int_equal(parley_groupkey_grant_apply(&st, &add_carol, 0), PARLEY_OK);
  assert_int_equal(st.counter, 3);

  /* REVOKE must move to exactly epoch + 1, and only for members. */
  struct parley_grant rv_e3 =
      make_grant(&alice, PARLEY_GRANT_REVOKE, &bob, 3, 4);
  assert_int_equal(parley_groupkey_grant_apply(&st, &rv_e3, 1), PARLEY_EPROTO);
  struct parley_grant rv = make_grant(&alice, PARLEY_GRANT_REVOKE, &bob, 2, 4);
  assert_int_equal(parley_groupkey_grant_apply(&st, &rv, 0), PARLEY_EPROTO);
  assert_int_equal(parley_groupkey_grant_apply(&st, &rv, 1), PARLEY_OK);
  assert_int_equal(st.epoch, 2);
  assert_int_equal(st.counter, 4);
  /* Counters may skip, never go back. */
  struct parley_grant rot = make_grant(&alice, PARLEY_GRANT_ROTATE, &alice, 3, 9);
  assert_int_equal(parley_groupkey_grant_apply(&st, &rot, 1), PARLEY_OK);
  assert_int_equal(st.epoch, 3);
  struct parley_grant late = make_grant(&alice, PARLEY_GRANT_ADD, &bob, 3, 8);
  assert_int_equal(parley_groupkey_grant_apply(&st, &late, 0), PARLEY_ERANGE);

  /* Epoch overflow. */
  st.epoch = UINT32_MAX;
  struct parley_grant over =
      make_grant(&alice, PARLEY_GRANT_ROTATE, &alice, 2, 20);
  assert_int_equal(parley_groupkey_grant_apply(&st, &over, 1), PARLEY_EPROTO);
}

/* The whole rotation story: bob is revoked; the key of the next epoch is
 * sealed to the remaining members only; bob can read neither that key nor
 * what is published under it, with anything he held before. */
static void test_revoked_member_cannot_read(void **state) {
  (void)state;
  static const uint8_t pt[] = "after the revoke";
  struct parley_topic_key k1, k2, got;
  struct parley_groupkey_blob bob1, carol1, carol2, stolen;
  uint8_t msg[256], out[256];
  size_t n, got_len;

  assert_int_equal(parley_groupkey_generate(&k1, 1), PARLEY_OK);
  assert_int_equal(parley_groupkey_seal(&alice, "team", &k1, bob.pk, &bob1),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_seal(&alice, "team", &k1, carol.pk, &carol1),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "team", &bob1, &got),
                   PARLEY_OK);
  assert_int_equal(got.epoch, 1);

  /* Revoke bob: epoch 2, sealed to carol only. */
  assert_int_equal(parley_groupkey_generate(&k2, 2), PARLEY_OK);
  assert_int_equal(parley_groupkey_seal(&alice, "team", &k2, carol.pk, &carol2),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_encrypt(&carol, "team", &k2, 1, 2, pt,
                                           sizeof pt - 1, msg, sizeof msg, &n),
                   PARLEY_OK);

  /* Carol reads it. */
  struct parley_topic_key ck;
  assert_int_equal(parley_groupkey_open(&carol, alice.pk, "team", &carol2, &ck),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_decrypt(&ck, "team", carol.pk, 1, 2, msg, n,
                                           out, sizeof out, &got_len),
                   PARLEY_OK);
  assert_memory_equal(out, pt, sizeof pt - 1);

  /* Bob has carol's blob (e.g. from a relay): not his. */
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "team", &carol2, &got),
                   PARLEY_EDENIED);
  stolen = carol2;
  memcpy(stolen.member_pk, bob.pk, 32);
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "team", &stolen, &got),
                   PARLEY_ECRYPTO);
  /* His epoch-1 key does not open epoch 2, even relabelled. */
  struct parley_topic_key bk;
  assert_int_equal(parley_groupkey_open(&bob, alice.pk, "team", &bob1, &bk),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_decrypt(&bk, "team", carol.pk, 1, 2, msg, n,
                                           out, sizeof out, &got_len),
                   PARLEY_EINVAL);
  bk.epoch = 2;
  assert_int_equal(parley_groupkey_decrypt(&bk, "team", carol.pk, 1, 2, msg, n,
                                           out, sizeof out, &got_len),
                   PARLEY_ECRYPTO);
  /* Rewriting the message's epoch to 1 breaks its AD. */
  msg[4] = 1;
  bk.epoch = 1;
  assert_int_equal(parley_groupkey_decrypt(&bk, "team", carol.pk, 1, 2, msg, n,
                                           out, sizeof out, &got_len),
                   PARLEY_ECRYPTO);
  parley_groupkey_wipe(&k1);
  parley_groupkey_wipe(&k2);
  parley_groupkey_wipe(&ck);
  parley_groupkey_wipe(&bk);
  (void)carol1;
}

/* ---- safety numbers ------------------------------------------------------------ */

/* RFC 8032 section 7.1, tests 1 and 2. */
static const char *const PK1 =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char *const PK2 =
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

static void test_safety_numbers(void **state) {
  (void)state;
  uint8_t a[32], b[32];
  char fa[PARLEY_FINGERPRINT_TEXT_LEN + 1], fb[PARLEY_FINGERPRINT_TEXT_LEN + 1];
  char ab[PARLEY_SAFETY_TEXT_LEN + 1], ba[PARLEY_SAFETY_TEXT_LEN + 1];
  assert_int_equal(parley_hex_decode(PK1, a, 32), PARLEY_OK);
  assert_int_equal(parley_hex_decode(PK2, b, 32), PARLEY_OK);

  /* Pinned values, computed independently with Python's hashlib. */
  parley_safety_fingerprint(a, fa);
  parley_safety_fingerprint(b, fb);
  assert_string_equal(fa, "45766 63497 58922 99990 49463 70818");
  assert_string_equal(fb, "74367 85386 43494 76451 17253 07648");
  parley_safety_number(a, b, ab);
  parley_safety_number(b, a, ba);
  assert_string_equal(ab, "74367 85386 43494 76451 17253 07648 "
                          "45766 63497 58922 99990 49463 70818");
  assert_string_equal(ab, ba);
  assert_int_equal(strlen(ab), PARLEY_SAFETY_TEXT_LEN);
  assert_int_equal(strlen(fa), PARLEY_FINGERPRINT_TEXT_LEN);

  /* One changed bit anywhere changes the number. */
  for (int i = 0; i < 32; i += 7) {
    b[i] ^= 0x04;
    parley_safety_number(a, b, ba);
    assert_string_not_equal(ab, ba);
    b[i] ^= 0x04;
  }
  parley_safety_number(a, a, ba);
  assert_memory_equal(ba, fa, 35);
  assert_memory_equal(ba + 36, fa, 35);

  /* What a person types. */
  assert_int_equal(parley_safety_equal("7436785386434947645117253076484576663497"
                                       "58922999904946370818",
                                       ab),
                   1);
  assert_int_equal(parley_safety_equal("74367-85386-43494-76451-17253-07648 "
                                       "45766\t63497 58922 99990 49463 70818",
                                       ab),
                   1);
  assert_int_equal(parley_safety_equal("74367 85386 43494 76451 17253 07648 "
                                       "45766 63497 58922 99990 49463 70819",
                                       ab),
                   0);
  assert_int_equal(parley_safety_equal("74367 85386 43494 76451 17253 07648",
                                       ab),
                   0);
  assert_int_equal(parley_safety_equal("74367 85386 43494 76451 17253 0764x "
                                       "45766 63497 58922 99990 49463 70818",
                                       ab),
                   0);

  assert_int_equal(parley_safety_check_pinned(a, a), PARLEY_OK);
  assert_int_equal(parley_safety_check_pinned(a, b), PARLEY_EAUTH);
}

/* ---- key file ---------------------------------------------------------------------- */

#define OPS_MIN 1u
#define MEM_MIN 8192u

static void test_keyfile_round_trip(void **state) {
  (void)state;
  uint8_t seed[32], back[32];
  struct parley_keyfile kf, d;
  char text[PARLEY_KEYFILE_TEXT_MAX + 1], again[PARLEY_KEYFILE_TEXT_MAX + 1];
  size_t n, m;
  static const char pass[] = "correct horse battery staple";

  memset(seed, 0xa1, sizeof seed);
  assert_int_equal(parley_keyfile_seal(seed, pass, strlen(pass), OPS_MIN,
                                       MEM_MIN, &kf),
                   PARLEY_OK);
  assert_int_equal(parley_keyfile_encode(&kf, text, sizeof text, &n),
                   PARLEY_OK);
  assert_int_equal(n, strlen(text));
  assert_int_equal(n, 13 + 1 + 10 + 1 + 1 + 1 + 4 + 1 + 32 + 1 + 48 + 1 + 96 + 1);
  assert_memory_equal(text, "parley-key-v1 argon2id13 1 8192 ", 32);
  assert_int_equal(text[n - 1], '\n');
  assert_int_equal(parley_keyfile_is_protected(text, n), 1);
  assert_int_equal(parley_keyfile_encode(&kf, again, n, &m), PARLEY_ETOOBIG);

  assert_int_equal(parley_keyfile_decode(text, n, &d), PARLEY_OK);
  assert_memory_equal(&d, &kf, sizeof d);
  assert_int_equal(parley_keyfile_decode(text, n - 1, &d), PARLEY_OK);
  assert_int_equal(parley_keyfile_encode(&d, again, sizeof again, &m),
                   PARLEY_OK);
  assert_string_equal(again, text);

  assert_int_equal(parley_keyfile_open(&d, pass, strlen(pass), back),
                   PARLEY_OK);
  assert_memory_equal(back, seed, 32);
  assert_int_equal(parley_keyfile_open(&d, "correct horse battery stapler",
                                       strlen(pass) + 1, back),
                   PARLEY_EAUTH);
  for (size_t i = 0; i < 32; i++)
    assert_int_equal(back[i], 0);
  assert_int_equal(parley_keyfile_open(&d, "", 0, back), PARLEY_EAUTH);

  struct parley_identity id;
  assert_int_equal(parley_keyfile_unlock(text, n, pass, strlen(pass), &id),
                   PARLEY_OK);
  assert_memory_equal(id.pk, alice.pk, 32);
  parley_identity_wipe(&id);
  assert_int_equal(parley_keyfile_unlock(text, n, "nope", 4, &id),
                   PARLEY_EAUTH);

  /* Any changed character: refused at decode or at open, never accepted. */
  for (size_t i = 0; i < n; i++) {
    text[i] ^= 0x01;
    int rc = parley_keyfile_decode(text, n, &d);
    if (rc == PARLEY_OK) {
      rc = parley_keyfile_open(&d, pass, strlen(pass), back);
      if (rc != PARLEY_EAUTH)
        fail_msg("byte %zu changed: open gave %d", i, rc);
    }
    text[i] ^= 0x01;
  }
}

static void test_keyfile_default_costs(void **state) {
  (void)state;
  uint8_t seed[32], back[32];
  struct parley_keyfile kf;
  memset(seed, 7, sizeof seed);
  assert_int_equal(parley_keyfile_seal(seed, "pw", 2, 0, 0, &kf), PARLEY_OK);
  assert_int_equal(kf.opslimit, crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE);
  assert_int_equal(kf.memlimit, crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE);
  assert_int_equal(parley_keyfile_open(&kf, "pw", 2, back), PARLEY_OK);
  assert_memory_equal(back, seed, 32);
  assert_int_equal(parley_keyfile_open(&kf, "pW", 2, back), PARLEY_EAUTH);
}

static void test_keyfile_decode_errors(void **state) {
  (void)state;
  struct parley_keyfile kf;
  uint8_t seed[32] = {0};
  char good[PARLEY_KEYFILE_TEXT_MAX + 1], t[PARLEY_KEYFILE_TEXT_MAX + 40];
  size_t n;
  assert_int_equal(parley_keyfile_seal(seed, "x", 1, 3, 16384, &kf),
                   PARLEY_OK);
  assert_int_equal(parley_keyfile_encode(&kf, good, sizeof good, &n),
                   PARLEY_OK);

#define DECODE(s) parley_keyfile_decode((s), strlen(s), &kf)
  /* The plain seed file of identity.h is not a protected file. */
  const char *plain =
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
  assert_int_equal(parley_keyfile_is_protected(plain, strlen(plain)), 0);
  assert_int_equal(DECODE(plain), PARLEY_ESYNTAX);
  assert_int_equal(DECODE(""), PARLEY_ESYNTAX);
  /* Versions and algorithms. */
  memcpy(t, good, n + 1);
  t[12] = '2';
  assert_int_equal(DECODE(t), PARLEY_EVERSION);
  memcpy(t, good, n + 1);
  t[21] = '2';
  assert_int_equal(DECODE(t), PARLEY_EVERSION);
  /* Costs out of bounds and non-canonical numbers. */
  const char *rest = good + strlen("parley-key-v1 argon2id13 3 16384");
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 0 16384%s", rest);
  assert_int_equal(DECODE(t), PARLEY_ERANGE);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 17 16384%s", rest);
  assert_int_equal(DECODE(t), PARLEY_ERANGE);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 3 4096%s", rest);
  assert_int_equal(DECODE(t), PARLEY_ERANGE);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 3 1073741825%s", rest);
  assert_int_equal(DECODE(t), PARLEY_ERANGE);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 3 16385%s", rest);
  assert_int_equal(DECODE(t), PARLEY_ERANGE);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 3 17408%s", rest);
  assert_int_equal(DECODE(t), PARLEY_OK);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 03 16384%s", rest);
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 +3 16384%s", rest);
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 3 99999999999999999999%s",
           rest);
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 3  16384%s", rest);
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  snprintf(t, sizeof t, "parley-key-v1 argon2id13 3 16384%s", rest);
  assert_int_equal(DECODE(t), PARLEY_OK);
  /* Upper-case hex, trailing data, a second newline, a CR. */
  memcpy(t, good, n + 1);
  char *salt = t + strlen("parley-key-v1 argon2id13 3 16384 ");
  for (int i = 0; i < 32; i++)
    if (salt[i] >= 'a' && salt[i] <= 'f') {
      salt[i] = (char)(salt[i] - 'a' + 'A');
      break;
    }
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  snprintf(t, sizeof t, "%s\n", good);
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  memcpy(t, good, n + 1);
  t[n - 1] = ' ';
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  memcpy(t, good, n + 1);
  t[n - 1] = '\r';
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  memcpy(t, good, n - 1);
  memcpy(t + n - 1, " 00\n", 5);
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
  /* A field missing. */
  memcpy(t, good, n + 1);
  *strrchr(t, ' ') = '\0';
  assert_int_equal(DECODE(t), PARLEY_ESYNTAX);
#undef DECODE

  /* Costs on seal. */
  assert_int_equal(parley_keyfile_seal(seed, "x", 1, 17, 16384, &kf),
                   PARLEY_EINVAL);
  assert_int_equal(parley_keyfile_seal(seed, "x", 1, 1, 100, &kf),
                   PARLEY_EINVAL);
  assert_int_equal(parley_keyfile_seal(seed, "x", 1, 1, 9000, &kf),
                   PARLEY_EINVAL);
  assert_int_equal(parley_keyfile_seal(seed, NULL, 3, 1, 8192, &kf),
                   PARLEY_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dm_round_trip),
      cmocka_unit_test(test_dm_sender_copy),
      cmocka_unit_test(test_dm_empty_and_large),
      cmocka_unit_test(test_dm_tamper_every_byte),
      cmocka_unit_test(test_dm_wrong_parties),
      cmocka_unit_test(test_dm_no_surreptitious_forwarding),
      cmocka_unit_test(test_dm_bad_arguments),
      cmocka_unit_test(test_dm_codec),
      cmocka_unit_test(test_replay_window),
      cmocka_unit_test(test_dm_replay_detected),
      cmocka_unit_test(test_groupkey_seal_open),
      cmocka_unit_test(test_groupkey_forged_owner),
      cmocka_unit_test(test_groupkey_messages),
      cmocka_unit_test(test_grant_codec_and_tamper),
      cmocka_unit_test(test_grant_shapes),
      cmocka_unit_test(test_grant_apply_rules),
      cmocka_unit_test(test_revoked_member_cannot_read),
      cmocka_unit_test(test_safety_numbers),
      cmocka_unit_test(test_keyfile_round_trip),
      cmocka_unit_test(test_keyfile_default_costs),
      cmocka_unit_test(test_keyfile_decode_errors),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
