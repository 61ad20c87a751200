/*
 * fuzz_handshake.c — the Parley handshake against hostile messages.
 *
 * Both honest sides use fixed identities and fixed ephemeral keys, so the
 * genuine transcript (messages 1, 2, 3) is the same on every run and the
 * seed corpus can hold it.  Input layout:
 *
 *   byte 0 even:  responder.  bytes 1..2 = u16 big-endian length L, then
 *                 L bytes of message 1, the rest is message 3.
 *   byte 0 odd:   initiator.  the rest is message 2.
 *
 * Invariants (abort() on violation, so libFuzzer reports a crash):
 *   - nothing crashes or reads out of bounds (ASan/UBSan);
 *   - a message 2 or 3 is accepted only if it is byte for byte the genuine
 *     one (nobody without the honest peer's secrets can make another that
 *     passes), and then the authenticated key is the honest peer's;
 *   - any message 1 of the right shape may be accepted (it carries no
 *     authentication), but then writing message 2 works or fails only with
 *     PARLEY_ECRYPTO (low-order ephemeral).
 *
 * Built with -DPARLEY_FUZZ_GEN_MAIN instead, this file is the generator of
 * the seed corpus: `fuzz_handshake_gen DIR` writes the genuine transcript
 * in the layout above into DIR.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXMSG 1024

static struct parley_identity id_init, id_resp;
static uint8_t eph_init[32], eph_resp[32];
static uint8_t genuine[3][MAXMSG];
static size_t genuine_len[3];
static int ready;

static void check(int cond) {
  if (!cond)
    abort();
}

static void start(struct parley_handshake *hs, int initiator) {
  check(parley_handshake_init(hs, initiator, initiator ? &id_init : &id_resp,
                              NULL) == PARLEY_OK);
  parley_noise_set_ephemeral(&hs->noise, initiator ? eph_init : eph_resp);
}

static void setup_once(void) {
  if (ready)
    return;
  uint8_t seed[32];
  check(parley_crypto_init() == PARLEY_OK);
  memset(seed, 0x11, sizeof seed);
  check(parley_identity_from_seed(&id_init, seed) == PARLEY_OK);
  memset(seed, 0x22, sizeof seed);
  check(parley_identity_from_seed(&id_resp, seed) == PARLEY_OK);
  memset(eph_init, 0x33, sizeof eph_init);
  memset(eph_resp, 0x44, sizeof eph_resp);

  /* The genuine transcript. */
  struct parley_handshake i, r;
  start(&i, 1);
  start(&r, 0);
  check(parley_handshake_write(&i, genuine[0], MAXMSG, &genuine_len[0]) == 0);
  check(parley_handshake_read(&r, genuine[0], genuine_len[0]) == 0);
  check(parley_handshake_write(&r, genuine[1], MAXMSG, &genuine_len[1]) == 0);
  check(parley_handshake_read(&i, genuine[1], genuine_len[1]) == 0);
  check(parley_handshake_write(&i, genuine[2], MAXMSG, &genuine_len[2]) == 0);
  check(parley_handshake_read(&r, genuine[2], genuine_len[2]) == 0);
  check(parley_handshake_done(&i) && parley_handshake_done(&r));
  parley_handshake_wipe(&i);
  parley_handshake_wipe(&r);
  ready = 1;
}

static int is_genuine(int k, const uint8_t *m, size_t len) {
  return len == genuine_len[k] && memcmp(m, genuine[k], len) == 0;
}

static void run_responder(const uint8_t *data, size_t size) {
  if (size < 2)
    return;
  size_t l1 = (size_t)data[0] << 8 | data[1];
  data += 2;
  size -= 2;
  if (l1 > size)
    l1 = size;
  const uint8_t *m1 = data, *m3 = data + l1;
  size_t l3 = size - l1;

  struct parley_handshake r;
  uint8_t out[MAXMSG];
  size_t out_len = 0;
  start(&r, 0);
  int rc = parley_handshake_read(&r, m1, l1);
  if (rc < 0) {
    check(rc == PARLEY_EPROTO && !parley_handshake_wants_write(&r));
    return;
  }
  check(l1 == 32 && parley_handshake_wants_write(&r));
  rc = parley_handshake_write(&r, out, sizeof out, &out_len);
  if (rc < 0) {
    check(rc == PARLEY_ECRYPTO);
    return;
  }
  check(out_len == genuine_len[1]);
  rc = parley_handshake_read(&r, m3, l3);
  if (rc < 0) {
    check(rc == PARLEY_EPROTO || rc == PARLEY_ECRYPTO || rc == PARLEY_EAUTH);
    check(!parley_handshake_done(&r));
    return;
  }
  /* Accepted: it must be the genuine initiator. */
  check(is_genuine(0, m1, l1) && is_genuine(2, m3, l3));
  struct parley_session s;
  uint8_t pk[32];
  check(parley_handshake_finish(&r, &s, pk) == PARLEY_OK);
  check(memcmp(pk, id_init.pk, 32) == 0);
  parley_session_wipe(&s);
}

static void run_initiator(const uint8_t *data, size_t size) {
  struct parley_handshake i;
  uint8_t out[MAXMSG];
  size_t out_len = 0;
  start(&i, 1);
  check(parley_handshake_write(&i, out, sizeof out, &out_len) == PARLEY_OK);
  check(is_genuine(0, out, out_len));
  int rc = parley_handshake_read(&i, data, size);
  if (rc < 0) {
    check(rc == PARLEY_EPROTO || rc == PARLEY_ECRYPTO || rc == PARLEY_EAUTH);
    check(!parley_handshake_wants_write(&i));
    return;
  }
  check(is_genuine(1, data, size));
  check(parley_handshake_write(&i, out, sizeof out, &out_len) == PARLEY_OK);
  check(is_genuine(2, out, out_len));
  struct parley_session s;
  uint8_t pk[32];
  check(parley_handshake_finish(&i, &s, pk) == PARLEY_OK);
  check(memcmp(pk, id_resp.pk, 32) == 0);
  parley_session_wipe(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup_once();
  if (size < 1 || size > 4 * MAXMSG)
    return 0;
  if (data[0] & 1)
    run_initiator(data + 1, size - 1);
  else
    run_responder(data + 1, size - 1);
  return 0;
}

#ifdef PARLEY_FUZZ_GEN_MAIN
static void put(const char *dir, const char *name, const uint8_t *a,
                size_t alen, const uint8_t *b, size_t blen) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  check(f != NULL);
  check(fwrite(a, 1, alen, f) == alen);
  if (blen)
    check(fwrite(b, 1, blen, f) == blen);
  check(fclose(f) == 0);
  /* Each seed must pass the harness. */
  uint8_t buf[4 * MAXMSG];
  memcpy(buf, a, alen);
  if (blen)
    memcpy(buf + alen, b, blen);
  check(LLVMFuzzerTestOneInput(buf, alen + blen) == 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  setup_once();
  uint8_t head[3 + MAXMSG];
  size_t l1 = genuine_len[0];

  /* Responder fed the genuine message 1, then the genuine message 3. */
  head[0] = 0;
  head[1] = (uint8_t)(l1 >> 8);
  head[2] = (uint8_t)l1;
  memcpy(head + 3, genuine[0], l1);
  put(argv[1], "resp-msg1-msg3", head, 3 + l1, genuine[2], genuine_len[2]);
  /* Responder fed message 1 only (message 3 empty). */
  put(argv[1], "resp-msg1", head, 3 + l1, NULL, 0);
  /* Initiator fed the genuine message 2. */
  head[0] = 1;
  put(argv[1], "init-msg2", head, 1, genuine[1], genuine_len[1]);
  return 0;
}
#endif
