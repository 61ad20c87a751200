/*
 * fuzz_e2e.c — every decoder of the end-to-end layer on hostile input.
 *
 * Byte 0 selects the target (mod 7); the rest is its input:
 *   0  direct-message envelope   decode, re-encode, open as bob from alice
 *                                (and open_sent as alice)
 *   1  key blob                  decode, re-encode, open as bob (owner alice)
 *   2  grant                     decode, re-encode, verify, apply
 *   3  key file text             decode, re-encode, open (cheap costs only)
 *   4  topic message             decode, re-encode, decrypt with the fixed key
 *   5  replay window             a script of u64 seqs checked against a model
 *   6  safety-number comparison  two NUL-separated strings
 *
 * Invariants (abort() on violation, so libFuzzer reports a crash):
 *   - nothing crashes, leaks or reads out of bounds (ASan/UBSan);
 *   - whenever a decoder accepts, encoding the result gives back the input
 *     bytes exactly (the key file: the input plus the '\n' it may omit);
 *   - whatever is accepted cryptographically carries exactly the content
 *     the corpus generator signed with the fixed keys below: without the
 *     secrets nobody can make anything else pass (no forgery);
 *   - the replay window agrees with a plain set-of-seen-seqs model.
 *
 * Built with -DPARLEY_FUZZ_GEN_MAIN, this file is the seed-corpus generator:
 * `fuzz_e2e_gen DIR` writes one genuine input per target into DIR.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "crypto/e2e.h"
#include "crypto/groupkey.h"
#include "crypto/identity.h"
#include "crypto/keyfile.h"
#include "crypto/safety.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXIN 8192

static const uint8_t DM_TEXT[] = "genuine direct message";
#define DM_SEQ 42u
#define DM_TS 4242u
static const char TOPIC[] = "fuzz";
#define KEY_EPOCH 7u
#define KEY_FILL 0x5a
static const uint8_t TOPIC_TEXT[] = "genuine topic message";
#define TOPIC_SEQ 5u
#define TOPIC_TS 6u
static const char PASS[] = "fuzz";
#define SEED_FILL 0xa1

static struct parley_identity alice, bob;
static char dm_channel[PARLEY_ID_TEXT_LEN + 2];
static struct parley_topic_key topic_key;
static int ready;

static void check(int cond) {
  if (!cond)
    abort();
}

static void setup_once(void) {
  if (ready)
    return;
  uint8_t seed[32];
  check(parley_crypto_init() == PARLEY_OK);
  memset(seed, 0xa1, sizeof seed);
  check(parley_identity_from_seed(&alice, seed) == PARLEY_OK);
  memset(seed, 0xb2, sizeof seed);
  check(parley_identity_from_seed(&bob, seed) == PARLEY_OK);
  dm_channel[0] = '@';
  parley_id_encode(bob.pk, dm_channel + 1);
  topic_key.epoch = KEY_EPOCH;
  memset(topic_key.key, KEY_FILL, sizeof topic_key.key);
  ready = 1;
}

static uint8_t scratch[MAXIN + 512];

static void fuzz_envelope(const uint8_t *in, size_t len) {
  struct parley_e2e_envelope env;
  struct parley_e2e_meta meta;
  size_t n;
  if (parley_e2e_decode(in, len, &env) != PARLEY_OK)
    return;
  check(parley_e2e_encode(&env, scratch, sizeof scratch, &n) == PARLEY_OK);
  check(n == len && memcmp(scratch, in, len) == 0);

  if (parley_e2e_open(&bob, alice.pk, dm_channel, in, len, scratch,
                      sizeof scratch, &meta) == PARLEY_OK)
    check(meta.seq == DM_SEQ && meta.ts_ms == DM_TS &&
          meta.len == sizeof DM_TEXT - 1 &&
          memcmp(scratch, DM_TEXT, meta.len) == 0);
  if (parley_e2e_open_sent(&alice, bob.pk, dm_channel, in, len, scratch,
                           sizeof scratch, &meta) == PARLEY_OK)
    check(meta.seq == DM_SEQ && meta.len == sizeof DM_TEXT - 1 &&
          memcmp(scratch, DM_TEXT, meta.len) == 0);
}

static void fuzz_keyblob(const uint8_t *in, size_t len) {
  struct parley_groupkey_blob b;
  struct parley_topic_key k;
  size_t n;
  if (parley_groupkey_blob_decode(in, len, &b) != PARLEY_OK)
    return;
  check(parley_groupkey_blob_encode(&b, scratch, sizeof scratch, &n) ==
        PARLEY_OK);
  check(n == len && memcmp(scratch, in, len) == 0);
  if (parley_groupkey_open(&bob, alice.pk, TOPIC, &b, &k) == PARLEY_OK)
    check(k.epoch == KEY_EPOCH &&
          memcmp(k.key, topic_key.key, sizeof k.key) == 0);
}

static void fuzz_grant(const uint8_t *in, size_t len) {
  struct parley_grant g;
  size_t n;
  if (parley_groupkey_grant_decode(in, len, &g) != PARLEY_OK)
    return;
  check(parley_groupkey_grant_encode(&g, scratch, sizeof scratch, &n) ==
        PARLEY_OK);
  check(n == len && memcmp(scratch, in, len) == 0);
  if (parley_groupkey_grant_verify(&g) == PARLEY_OK)
    check(memcmp(g.owner_pk, alice.pk, 32) == 0);
  /* apply on an unknown and on a known topic: only its result varies. */
  struct parley_grant_state st;
  memset(&st, 0, sizeof st);
  int rc = parley_groupkey_grant_apply(&st, &g, 0);
  check(rc == PARLEY_OK ? st.exists == 1 : st.exists == 0);
  memset(&st, 0, sizeof st);
  st.exists = 1;
  memcpy(st.owner_pk, alice.pk, 32);
  st.epoch = 1;
  st.counter = 1;
  struct parley_grant_state before = st;
  rc = parley_groupkey_grant_apply(&st, &g, 1);
  if (rc != PARLEY_OK)
    check(memcmp(&st, &before, sizeof st) == 0);
  else
    check(st.counter == g.counter && st.epoch == g.epoch);
}

static void fuzz_keyfile(const uint8_t *in, size_t len) {
  struct parley_keyfile kf;
  char text[PARLEY_KEYFILE_TEXT_MAX + 1];
  size_t n;
  if (parley_keyfile_decode((const char *)in, len, &kf) != PARLEY_OK)
    return;
  check(parley_keyfile_encode(&kf, text, sizeof text, &n) == PARLEY_OK);
  /* The only non-identity: the final newline may be missing on input. */
  check(n == len || n == len + 1);
  check(memcmp(text, in, len) == 0);
  if (n == len + 1)
    check(text[len] == '\n');
  /* Opening is only cheap for the smallest costs. */
  if (kf.opslimit == 1 && kf.memlimit == 8192) {
    uint8_t seed[32];
    if (parley_keyfile_open(&kf, PASS, sizeof PASS - 1, seed) == PARLEY_OK)
      for (size_t i = 0; i < sizeof seed; i++)
        check(seed[i] == SEED_FILL);
  }
}

static void fuzz_topic_msg(const uint8_t *in, size_t len) {
  struct parley_groupkey_msg m;
  size_t n;
  if (parley_groupkey_msg_decode(in, len, &m) != PARLEY_OK)
    return;
  check(parley_groupkey_msg_encode(&m, scratch, sizeof scratch, &n) ==
        PARLEY_OK);
  check(n == len && memcmp(scratch, in, len) == 0);
  if (m.epoch != KEY_EPOCH)
    return;
  if (parley_groupkey_decrypt(&topic_key, TOPIC, bob.pk, TOPIC_SEQ, TOPIC_TS,
                              in, len, scratch, sizeof scratch,
                              &n) == PARLEY_OK)
    check(n == sizeof TOPIC_TEXT - 1 && memcmp(scratch, TOPIC_TEXT, n) == 0);
}

/* The window against a model: the list of every seq ever accepted. */
static void fuzz_replay(const uint8_t *in, size_t len) {
  static uint64_t seen[MAXIN / 8];
  size_t nseen = 0;
  struct parley_replay w = {0, 0};
  uint64_t top = 0;
  for (size_t off = 0; off + 8 <= len; off += 8) {
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
      seq = seq << 8 | in[off + (size_t)i];
    /* Keep seqs near each other so the window is exercised, not skipped. */
    if (in[off] & 0x80)
      seq = top + (seq & 0xff) - 0x80;
    int was_seen = 0;
    for (size_t i = 0; i < nseen; i++)
      if (seen[i] == seq)
        was_seen = 1;
    int order = -1;
    int rc = parley_replay_accept(&w, seq, &order);
    if (seq == 0) {
      check(rc == PARLEY_EINVAL);
    } else if (seq > top) {
      check(rc == PARLEY_OK &&
            order == (seq == top + 1 ? PARLEY_REPLAY_NEXT : PARLEY_REPLAY_GAP));
    } else if (top - seq >= PARLEY_REPLAY_WINDOW) {
      check(rc == PARLEY_ERANGE);
    } else if (was_seen) {
      check(rc == PARLEY_EEXIST);
    } else {
      check(rc == PARLEY_OK && order == PARLEY_REPLAY_LATE);
    }
    if (rc == PARLEY_OK) {
      seen[nseen++] = seq;
      if (seq > top)
        top = seq;
    }
    check(w.top == top);
  }
}

static void fuzz_safety(const uint8_t *in, size_t len) {
  char a[512], b[512];
  size_t i = 0, na = 0, nb = 0;
  while (i < len && in[i] != 0 && na < sizeof a - 1)
    a[na++] = (char)in[i++];
  a[na] = '\0';
  if (i < len)
    i++;
  while (i < len && in[i] != 0 && nb < sizeof b - 1)
    b[nb++] = (char)in[i++];
  b[nb] = '\0';
  int eq = parley_safety_equal(a, b);
  check(eq == parley_safety_equal(b, a));
  check(parley_safety_equal(a, a) == 1 || eq == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup_once();
  if (size < 1 || size > MAXIN)
    return 0;
  const uint8_t *in = data + 1;
  size_t len = size - 1;
  switch (data[0] % 7) {
  case 0: fuzz_envelope(in, len); break;
  case 1: fuzz_keyblob(in, len); break;
  case 2: fuzz_grant(in, len); break;
  case 3: fuzz_keyfile(in, len); break;
  case 4: fuzz_topic_msg(in, len); break;
  case 5: fuzz_replay(in, len); break;
  default: fuzz_safety(in, len); break;
  }
  return 0;
}

#ifdef PARLEY_FUZZ_GEN_MAIN
/* ---- seed-corpus generator ------------------------------------------------ */

static void put(const char *dir, const char *name, uint8_t sel,
                const void *p, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  check(f != NULL);
  check(fwrite(&sel, 1, 1, f) == 1);
  check(n == 0 || fwrite(p, 1, n, f) == n);
  check(fclose(f) == 0);
}

int main(int argc, char **argv) {
  static uint8_t buf[4096];
  size_t n;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  setup_once();
  const char *dir = argv[1];

  check(parley_e2e_seal(&alice, bob.pk, dm_channel, DM_SEQ, DM_TS, DM_TEXT,
                        sizeof DM_TEXT - 1, 0, buf, sizeof buf,
                        &n) == PARLEY_OK);
  put(dir, "envelope", 0, buf, n);
  check(parley_e2e_seal(&alice, bob.pk, dm_channel, DM_SEQ, DM_TS, DM_TEXT,
                        sizeof DM_TEXT - 1, PARLEY_E2E_SENDER_COPY, buf,
                        sizeof buf, &n) == PARLEY_OK);
  put(dir, "envelope_copy", 0, buf, n);

  struct parley_groupkey_blob b;
  check(parley_groupkey_seal(&alice, TOPIC, &topic_key, bob.pk, &b) ==
        PARLEY_OK);
  check(parley_groupkey_blob_encode(&b, buf, sizeof buf, &n) == PARLEY_OK);
  put(dir, "keyblob", 1, buf, n);

  static const struct {
    const char *name;
    int action, member_is_bob;
    uint32_t epoch;
    uint64_t counter;
  } grants[] = {
      {"grant_create", PARLEY_GRANT_CREATE, 0, 1, 1},
      {"grant_add", PARLEY_GRANT_ADD, 1, 1, 2},
      {"grant_revoke", PARLEY_GRANT_REVOKE, 1, 2, 3},
      {"grant_rotate", PARLEY_GRANT_ROTATE, 0, 2, 4},
  };
  for (size_t i = 0; i < sizeof grants / sizeof grants[0]; i++) {
    struct parley_grant g;
    memset(&g, 0, sizeof g);
    g.action = (uint8_t)grants[i].action;
    memcpy(g.topic, TOPIC, sizeof TOPIC);
    memcpy(g.member_pk, grants[i].member_is_bob ? bob.pk : alice.pk, 32);
    g.epoch = grants[i].epoch;
    g.issued_ms = 1700000000000u;
    g.counter = grants[i].counter;
    check(parley_groupkey_grant_sign(&alice, &g) == PARLEY_OK);
    check(parley_groupkey_grant_encode(&g, buf, sizeof buf, &n) == PARLEY_OK);
    put(dir, grants[i].name, 2, buf, n);
  }

  uint8_t seed[32];
  struct parley_keyfile kf;
  char text[PARLEY_KEYFILE_TEXT_MAX + 1];
  memset(seed, SEED_FILL, sizeof seed);
  check(parley_keyfile_seal(seed, PASS, sizeof PASS - 1, 1, 8192, &kf) ==
        PARLEY_OK);
  check(parley_keyfile_encode(&kf, text, sizeof text, &n) == PARLEY_OK);
  put(dir, "keyfile", 3, text, n);

  check(parley_groupkey_encrypt(&bob, TOPIC, &topic_key, TOPIC_SEQ, TOPIC_TS,
                                TOPIC_TEXT, sizeof TOPIC_TEXT - 1, buf,
                                sizeof buf, &n) == PARLEY_OK);
  put(dir, "topic_msg", 4, buf, n);

  static const uint64_t script[] = {1, 2, 5, 4, 4, 100, 37, 36, 101, 3};
  for (size_t i = 0; i < sizeof script / sizeof script[0]; i++)
    for (int j = 0; j < 8; j++)
      buf[8 * i + (size_t)j] = (uint8_t)(script[i] >> (56 - 8 * j));
  put(dir, "replay", 5, buf, 8 * (sizeof script / sizeof script[0]));

  char a[PARLEY_SAFETY_TEXT_LEN + 1];
  parley_safety_number(alice.pk, bob.pk, a);
  memcpy(buf, a, sizeof a);
  memcpy(buf + sizeof a, a, sizeof a - 1);
  put(dir, "safety", 6, buf, 2 * sizeof a - 1);
  return 0;
}
#endif
