/*
 * test_sync_wire.c — the CHAIN_SIG / SYNC_* payload codecs
 * (src/wire/sync_wire.c): golden bytes written from the layouts in
 * sync_wire.h, round trips, every decoder error path (each truncation,
 * trailing bytes, each rule) and the encoders' refusals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "wire/sync_wire.h"

static uint8_t k_seq[32], k_hash[32], k_sig[64], k_aa[32], k_bb[32];
static uint8_t k_11[32], k_22[32], k_33[64], k_44[32];

static int setup(void **state) {
  (void)state;
  for (int i = 0; i < 32; i++) {
    k_seq[i] = (uint8_t)i;
    k_hash[i] = (uint8_t)(0x20 + i);
  }
  for (int i = 0; i < 64; i++)
    k_sig[i] = (uint8_t)(0x40 + i);
  memset(k_aa, 0xaa, 32);
  memset(k_bb, 0xbb, 32);
  memset(k_11, 0x11, 32);
  memset(k_22, 0x22, 32);
  memset(k_33, 0x33, 64);
  memset(k_44, 0x44, 32);
  return 0;
}

static struct parley_str S(const char *s) {
  struct parley_str r;
  r.ptr = s;
  r.len = strlen(s);
  return r;
}

/* Appends n bytes of value v. */
static size_t fill(uint8_t *p, uint8_t v, size_t n) {
  memset(p, v, n);
  return n;
}

static size_t be(uint8_t *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  return n;
}

/* ---- golden ---------------------------------------------------------------- */

static struct parley_sync_chain_sig sample_sig(void) {
  struct parley_sync_chain_sig m;
  memset(&m, 0, sizeof m);
  m.publisher = k_seq;
  m.channel = S("news");
  m.seq = 64;
  m.hash = k_hash;
  m.sig = k_sig;
  return m;
}

static void test_golden_chain_sig(void **state) {
  struct parley_sync_chain_sig m = sample_sig(), d;
  uint8_t want[141], buf[256];
  size_t o = 0, w;
  (void)state;

  memcpy(want, k_seq, 32);
  o = 32;
  want[o++] = 4;
  memcpy(want + o, "news", 4);
  o += 4;
  o += be(want + o, 64, 8);
  memcpy(want + o, k_hash, 32);
  o += 32;
  memcpy(want + o, k_sig, 64);
  o += 64;
  assert_int_equal(o, sizeof want);
  assert_int_equal(want[37], 0x00);
  assert_int_equal(want[44], 0x40); /* seq 64, last byte */
  assert_int_equal(parley_sync_chain_sig_encode(&m, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, sizeof want);
  assert_memory_equal(buf, want, sizeof want);
  assert_int_equal(parley_sync_chain_sig_decode(want, sizeof want, &d),
                   PARLEY_OK);
  assert_ptr_equal(d.publisher, want);
  assert_int_equal(d.channel.len, 4);
  assert_memory_equal(d.channel.ptr, "news", 4);
  assert_true(d.seq == 64);
  assert_ptr_equal(d.hash, want + 45);
  assert_ptr_equal(d.sig, want + 77);
  /* Every truncation and a trailing byte are malformed. */
  for (size_t n = 0; n < sizeof want; n++) {
    assert_int_equal(parley_sync_chain_sig_decode(want, n, &d), PARLEY_EPROTO);
    assert_null(d.publisher);
  }
  memcpy(buf, want, sizeof want);
  buf[sizeof want] = 0;
  assert_int_equal(parley_sync_chain_sig_decode(buf, sizeof want + 1, &d),
                   PARLEY_EPROTO);
  /* seq 0 and a NUL in the channel. */
  memcpy(buf, want, sizeof want);
  memset(buf + 37, 0, 8);
  assert_int_equal(parley_sync_chain_sig_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  memcpy(buf, want, sizeof want);
  buf[34] = 0;
  assert_int_equal(parley_sync_chain_sig_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  assert_int_equal(parley_sync_chain_sig_decode(NULL, 5, &d), PARLEY_EPROTO);
}

static void test_golden_query_fetch(void **state) {
  static const uint8_t want_q[] = {0x00, 0x00, 0x00, 0x05, 0x04,
                                   'n',  'e',  'w',  's'};
  struct parley_sync_query q, dq;
  struct parley_sync_fetch f, df;
  uint8_t want_f[4 + 2 + 32 + 16], buf[128];
  size_t o = 0, w;
  (void)state;

  memset(&q, 0, sizeof q);
  q.req = 5;
  q.topic = S("news");
  assert_int_equal(parley_sync_query_encode(&q, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, sizeof want_q);
  assert_memory_equal(buf, want_q, sizeof want_q);
  assert_int_equal(parley_sync_query_decode(want_q, sizeof want_q, &dq),
                   PARLEY_OK);
  assert_int_equal(dq.req, 5);
  assert_int_equal(dq.topic.len, 4);
  for (size_t n = 0; n < sizeof want_q; n++)
    assert_int_equal(parley_sync_query_decode(want_q, n, &dq), PARLEY_EPROTO);
  memcpy(buf, want_q, sizeof want_q);
  buf[sizeof want_q] = 'x';
  assert_int_equal(parley_sync_query_decode(buf, sizeof want_q + 1, &dq),
                   PARLEY_EPROTO);

  o += be(want_f + o, 7, 4);
  want_f[o++] = 1;
  want_f[o++] = 't';
  o += fill(want_f + o, 0xaa, 32);
  o += be(want_f + o, 3, 8);
  o += be(want_f + o, 9, 8);
  assert_int_equal(o, sizeof want_f);
  memset(&f, 0, sizeof f);
  f.req = 7;
  f.topic = S("t");
  f.publisher = k_aa;
  f.from = 3;
  f.to = 9;
  assert_int_equal(parley_sync_fetch_encode(&f, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, sizeof want_f);
  assert_memory_equal(buf, want_f, sizeof want_f);
  assert_int_equal(parley_sync_fetch_decode(want_f, sizeof want_f, &df),
                   PARLEY_OK);
  assert_int_equal(df.req, 7);
  assert_true(df.from == 3 && df.to == 9);
  assert_memory_equal(df.publisher, k_aa, 32);
  for (size_t n = 0; n < sizeof want_f; n++)
    assert_int_equal(parley_sync_fetch_decode(want_f, n, &df), PARLEY_EPROTO);
  /* from == to is fine; from 0 or to < from is not. */
  memcpy(buf, want_f, sizeof want_f);
  be(buf + 38 + 8, 3, 8);
  assert_int_equal(parley_sync_fetch_decode(buf, sizeof want_f, &df),
                   PARLEY_OK);
  be(buf + 38 + 8, 2, 8);
  assert_int_equal(parley_sync_fetch_decode(buf, sizeof want_f, &df),
                   PARLEY_EPROTO);
  memcpy(buf, want_f, sizeof want_f);
  be(buf + 38, 0, 8);
  assert_int_equal(parley_sync_fetch_decode(buf, sizeof want_f, &df),
                   PARLEY_EPROTO);
  /* The encoder refuses the same. */
  f.from = 0;
  assert_int_equal(parley_sync_fetch_encode(&f, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  f.from = 10;
  assert_int_equal(parley_sync_fetch_encode(&f, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  f.from = 3;
  f.publisher = NULL;
  assert_int_equal(parley_sync_fetch_encode(&f, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
}

static void test_golden_summary(void **state) {
  struct parley_sync_summary_entry ents[2], e;
  struct parley_sync_summary m, d;
  uint8_t want[4 + 2 + 4 + 2 * 48], buf[256];
  const uint8_t *cur;
  size_t o = 0, w, left;
  (void)state;

  o += be(want + o, 6, 4);
  want[o++] = 1;
  want[o++] = 't';
  o += be(want + o, 2, 4);
  o += fill(want + o, 0xaa, 32);
  o += be(want + o, 10, 8);
  o += be(want + o, 8, 8);
  o += fill(want + o, 0xbb, 32);
  o += be(want + o, 0, 8);
  o += be(want + o, 3, 8);
  assert_int_equal(o, sizeof want);
  ents[0].publisher = k_aa;
  ents[0].max_seq = 10;
  ents[0].signed_seq = 8;
  ents[1].publisher = k_bb;
  ents[1].max_seq = 0;
  ents[1].signed_seq = 3;
  memset(&m, 0, sizeof m);
  m.req = 6;
  m.topic = S("t");
  m.count = 2;
  m.entries = ents;
  assert_int_equal(parley_sync_summary_encode(&m, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, sizeof want);
  assert_memory_equal(buf, want, sizeof want);
  assert_int_equal(parley_sync_summary_decode(want, sizeof want, &d),
                   PARLEY_OK);
  assert_int_equal(d.req, 6);
  assert_int_equal(d.count, 2);
  assert_null(d.entries);
  assert_int_equal(d.raw_len, 96);
  cur = d.raw;
  left = d.raw_len;
  assert_int_equal(parley_sync_summary_next(&cur, &left, &e), 1);
  assert_memory_equal(e.publisher, k_aa, 32);
  assert_true(e.max_seq == 10 && e.signed_seq == 8);
  assert_int_equal(parley_sync_summary_next(&cur, &left, &e), 1);
  assert_memory_equal(e.publisher, k_bb, 32);
  assert_true(e.max_seq == 0 && e.signed_seq == 3);
  assert_int_equal(parley_sync_summary_next(&cur, &left, &e), 0);
  assert_int_equal(left, 0);
  /* Re-encoding the decoded (raw) form gives the same bytes. */
  assert_int_equal(parley_sync_summary_encode(&d, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, sizeof want);
  assert_memory_equal(buf, want, sizeof want);
  /* Truncations, trailing bytes, count disagreeing with the bytes. */
  for (size_t n = 0; n < sizeof want; n++)
    assert_int_equal(parley_sync_summary_decode(want, n, &d), PARLEY_EPROTO);
  memcpy(buf, want, sizeof want);
  buf[sizeof want] = 0;
  assert_int_equal(parley_sync_summary_decode(buf, sizeof want + 1, &d),
                   PARLEY_EPROTO);
  memcpy(buf, want, sizeof want);
  be(buf + 6, 3, 4);
  assert_int_equal(parley_sync_summary_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  be(buf + 6, 1, 4);
  assert_int_equal(parley_sync_summary_decode(buf, sizeof want, &d),
                   PARLEY_EPROTO);
  /* An empty summary. */
  be(buf + 6, 0, 4);
  assert_int_equal(parley_sync_summary_decode(buf, 10, &d), PARLEY_OK);
  assert_int_equal(d.count, 0);
  /* Over the entry limit, in both directions. */
  be(buf + 6, PARLEY_SYNC_MAX_SUMMARY + 1, 4);
  assert_int_equal(parley_sync_summary_decode(buf, 10, &d), PARLEY_EPROTO);
  m.count = PARLEY_SYNC_MAX_SUMMARY + 1;
  assert_int_equal(parley_sync_summary_encode(&m, buf, sizeof buf, &w),
                   PARLEY_ETOOBIG);
  /* Raw bytes that disagree with count; an entry without a key. */
  m.count = 2;
  m.entries = NULL;
  m.raw = want + 10;
  m.raw_len = 95;
  assert_int_equal(parley_sync_summary_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  ents[1].publisher = NULL;
  m.entries = ents;
  assert_int_equal(parley_sync_summary_encode(&m, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
}

/* The sample batch: 2 entries, a MSG and a DIGEST. */
static size_t sample_entries(uint8_t *raw, size_t cap) {
  struct parley_sync_entry e;
  size_t n = 0, w;

  memset(&e, 0, sizeof e);
  e.kind = PARLEY_SYNC_ENTRY_MSG;
  e.ts_ms = 1000;
  e.flags = PARLEY_MSG_BINARY;
  e.body = (const uint8_t *)"hi";
  e.body_len = 2;
  assert_int_equal(parley_sync_entry_size(&e), 14 + 2);
  assert_int_equal(parley_sync_entry_encode(&e, raw, cap, &w), PARLEY_OK);
  n += w;
  memset(&e, 0, sizeof e);
  e.kind = PARLEY_SYNC_ENTRY_DIGEST;
  e.digest = k_44;
  assert_int_equal(parley_sync_entry_size(&e), 33);
  assert_int_equal(parley_sync_entry_encode(&e, raw + n, cap - n, &w),
                   PARLEY_OK);
  return n + w;
}

static struct parley_sync_batch sample_batch(const uint8_t *raw, size_t len) {
  struct parley_sync_batch b;
  memset(&b, 0, sizeof b);
  b.req = 8;
  b.topic = S("t");
  b.publisher = k_aa;
  b.from = 4;
  b.prev = k_11;
  b.cp_seq = 5;
  b.cp_hash = k_22;
  b.cp_sig = k_33;
  b.count = 2;
  b.raw = raw;
  b.raw_len = len;
  return b;
}

#define BATCH_LEN (PARLEY_SYNC_BATCH_HDR(1) + 16 + 33)

static void golden_batch(uint8_t want[BATCH_LEN]) {
  size_t o = 0;
  o += be(want + o, 8, 4);
  want[o++] = 1;
  want[o++] = 't';
  o += fill(want + o, 0xaa, 32);
  o += be(want + o, 4, 8);
  o += fill(want + o, 0x11, 32);
  o += be(want + o, 5, 8);
  o += fill(want + o, 0x22, 32);
  o += fill(want + o, 0x33, 64);
  o += be(want + o, 2, 4);
  want[o++] = 1; /* MSG */
  o += be(want + o, 1000, 8);
  want[o++] = PARLEY_MSG_BINARY;
  o += be(want + o, 2, 4);
  want[o++] = 'h';
  want[o++] = 'i';
  want[o++] = 2; /* DIGEST */
  o += fill(want + o, 0x44, 32);
  assert_int_equal(o, BATCH_LEN);
}

/* Offsets in the golden batch. */
#define OFF_FROM 38
#define OFF_CPSEQ (OFF_FROM + 8 + 32)
#define OFF_COUNT (OFF_CPSEQ + 8 + 32 + 64)
#define OFF_E0 (OFF_COUNT + 4)
#define OFF_E1 (OFF_E0 + 16)

static void test_golden_batch(void **state) {
  uint8_t raw[64], want[BATCH_LEN], buf[512];
  struct parley_sync_batch b, d;
  struct parley_sync_entry e;
  const uint8_t *cur;
  size_t rl, w, left;
  (void)state;

  rl = sample_entries(raw, sizeof raw);
  assert_int_equal(rl, 49);
  golden_batch(want);
  b = sample_batch(raw, rl);
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, BATCH_LEN);
  assert_memory_equal(buf, want, BATCH_LEN);
  assert_int_equal(parley_sync_batch_decode(want, BATCH_LEN, &d), PARLEY_OK);
  assert_int_equal(d.req, 8);
  assert_true(d.from == 4 && d.cp_seq == 5 && d.count == 2);
  assert_ptr_equal(d.prev, want + OFF_FROM + 8);
  assert_ptr_equal(d.raw, want + OFF_E0);
  assert_int_equal(d.raw_len, 49);
  cur = d.raw;
  left = d.raw_len;
  assert_int_equal(parley_sync_entry_next(&cur, &left, &e), 1);
  assert_int_equal(e.kind, PARLEY_SYNC_ENTRY_MSG);
  assert_true(e.ts_ms == 1000);
  assert_int_equal(e.flags, PARLEY_MSG_BINARY);
  assert_int_equal(e.body_len, 2);
  assert_memory_equal(e.body, "hi", 2);
  assert_null(e.digest);
  assert_int_equal(parley_sync_entry_next(&cur, &left, &e), 1);
  assert_int_equal(e.kind, PARLEY_SYNC_ENTRY_DIGEST);
  assert_memory_equal(e.digest, k_44, 32);
  assert_int_equal(parley_sync_entry_next(&cur, &left, &e), 0);
  /* decode -> encode is the identity. */
  assert_int_equal(parley_sync_batch_encode(&d, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, BATCH_LEN);
  assert_memory_equal(buf, want, BATCH_LEN);
  /* Every truncation, and a trailing byte. */
  for (size_t n = 0; n < BATCH_LEN; n++) {
    assert_int_equal(parley_sync_batch_decode(want, n, &d), PARLEY_EPROTO);
    assert_int_equal(d.count, 0);
  }
  memcpy(buf, want, BATCH_LEN);
  buf[BATCH_LEN] = 2;
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN + 1, &d),
                   PARLEY_EPROTO);
}

static void test_empty_batch(void **state) {
  uint8_t want[PARLEY_SYNC_BATCH_HDR(1)], buf[256];
  struct parley_sync_batch b, d;
  size_t o = 0, w;
  (void)state;

  o += be(want + o, 9, 4);
  want[o++] = 1;
  want[o++] = 't';
  o += fill(want + o, 0xaa, 32);
  o += fill(want + o, 0, sizeof want - o);
  memset(&b, 0, sizeof b);
  b.req = 9;
  b.topic = S("t");
  b.publisher = k_aa;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, sizeof want);
  assert_memory_equal(buf, want, sizeof want);
  assert_int_equal(parley_sync_batch_decode(want, sizeof want, &d), PARLEY_OK);
  assert_int_equal(d.count, 0);
  assert_null(d.raw);
  assert_int_equal(parley_sync_batch_encode(&d, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_memory_equal(buf, want, sizeof want);
  /* With count 0 every other header field must be zero. */
  const size_t fields[] = {OFF_FROM + 7, OFF_FROM + 8 + 31, OFF_CPSEQ + 7,
                           OFF_CPSEQ + 8, OFF_CPSEQ + 8 + 32 + 63};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    memcpy(buf, want, sizeof want);
    buf[fields[i]] = 1;
    assert_int_equal(parley_sync_batch_decode(buf, sizeof want, &d),
                     PARLEY_EPROTO);
  }
  /* ... and so the encoder insists. */
  b.from = 1;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  b.from = 0;
  b.prev = k_11;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
}

static void test_batch_rules(void **state) {
  uint8_t raw[64], want[BATCH_LEN], buf[BATCH_LEN + 64];
  struct parley_sync_batch b, d;
  size_t rl, w;
  (void)state;

  rl = sample_entries(raw, sizeof raw);
  golden_batch(want);
  /* cp_seq must be from + count - 1. */
  memcpy(buf, want, BATCH_LEN);
  be(buf + OFF_CPSEQ, 6, 8);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  be(buf + OFF_CPSEQ, 4, 8);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  /* from 0 with entries. */
  memcpy(buf, want, BATCH_LEN);
  be(buf + OFF_FROM, 0, 8);
  be(buf + OFF_CPSEQ, 1, 8);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  /* The last seq would overflow. */
  memcpy(buf, want, BATCH_LEN);
  be(buf + OFF_FROM, UINT64_MAX, 8);
  be(buf + OFF_CPSEQ, 0, 8);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  /* A batch ending exactly at UINT64_MAX is fine. */
  memcpy(buf, want, BATCH_LEN);
  be(buf + OFF_FROM, UINT64_MAX - 1, 8);
  be(buf + OFF_CPSEQ, UINT64_MAX, 8);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d), PARLEY_OK);
  /* count disagreeing with the entries. */
  memcpy(buf, want, BATCH_LEN);
  be(buf + OFF_COUNT, 3, 4);
  be(buf + OFF_CPSEQ, 6, 8);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  memcpy(buf, want, BATCH_LEN);
  be(buf + OFF_COUNT, 1, 4);
  be(buf + OFF_CPSEQ, 4, 8);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  /* Over the entry limit. */
  memcpy(buf, want, BATCH_LEN);
  be(buf + OFF_COUNT, PARLEY_SYNC_MAX_BATCH + 1, 4);
  be(buf + OFF_CPSEQ, 4 + PARLEY_SYNC_MAX_BATCH, 8);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  /* Entry kinds, flags, body length. */
  for (unsigned k = 0; k < 256; k++) {
    memcpy(buf, want, BATCH_LEN);
    buf[OFF_E0] = (uint8_t)k;
    assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                     k == 1 ? PARLEY_OK : PARLEY_EPROTO);
  }
  for (unsigned fl = 0; fl < 256; fl++) {
    memcpy(buf, want, BATCH_LEN);
    buf[OFF_E0 + 9] = (uint8_t)fl;
    assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                     (fl & ~0xeu) == 0 ? PARLEY_OK : PARLEY_EPROTO);
  }
  memcpy(buf, want, BATCH_LEN);
  be(buf + OFF_E0 + 10, 3, 4);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  be(buf + OFF_E0 + 10, 0xffffffffu, 4);
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);
  /* A NUL in the topic. */
  memcpy(buf, want, BATCH_LEN);
  buf[5] = 0;
  assert_int_equal(parley_sync_batch_decode(buf, BATCH_LEN, &d),
                   PARLEY_EPROTO);

  /* The encoder refuses what the decoder would. */
  b = sample_batch(raw, rl);
  b.cp_seq = 6;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  b = sample_batch(raw, rl);
  b.raw_len = rl - 1;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  b = sample_batch(raw, rl);
  b.count = 3;
  b.cp_seq = 6;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  b = sample_batch(raw, rl);
  b.cp_sig = NULL;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  b = sample_batch(raw, rl);
  b.publisher = NULL;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  b = sample_batch(raw, rl);
  b.count = PARLEY_SYNC_MAX_BATCH + 1;
  assert_int_equal(parley_sync_batch_encode(&b, buf, sizeof buf, &w),
                   PARLEY_ETOOBIG);
  /* cap too small: ETOOBIG and the size needed. */
  b = sample_batch(raw, rl);
  for (size_t cap = 0; cap < BATCH_LEN; cap += 7) {
    w = 0;
    assert_int_equal(parley_sync_batch_encode(&b, buf, cap, &w),
                     PARLEY_ETOOBIG);
    assert_int_equal(w, BATCH_LEN);
  }
  assert_int_equal(parley_sync_batch_encode(&b, NULL, 0, &w), PARLEY_ETOOBIG);
  assert_int_equal(w, BATCH_LEN);
}

static void test_entry_encoder(void **state) {
  struct parley_sync_entry e;
  uint8_t buf[64];
  size_t w;
  (void)state;

  memset(&e, 0, sizeof e);
  assert_int_equal(parley_sync_entry_encode(&e, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  e.kind = PARLEY_SYNC_ENTRY_DIGEST;
  assert_int_equal(parley_sync_entry_encode(&e, buf, sizeof buf, &w),
                   PARLEY_EINVAL); /* no digest */
  e.digest = k_44;
  assert_int_equal(parley_sync_entry_encode(&e, buf, 32, &w), PARLEY_ETOOBIG);
  assert_int_equal(w, 33);
  e.kind = PARLEY_SYNC_ENTRY_MSG;
  e.flags = PARLEY_MSG_ACK_REQ;
  assert_int_equal(parley_sync_entry_encode(&e, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  e.flags = PARLEY_MSG_DIRECT | PARLEY_MSG_BINARY;
  e.body_len = 1;
  e.body = NULL;
  assert_int_equal(parley_sync_entry_encode(&e, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  e.body_len = 0;
  assert_int_equal(parley_sync_entry_encode(&e, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, PARLEY_SYNC_MSG_ENTRY_MIN);
}

static void test_strings(void **state) {
  char long_topic[257];
  struct parley_sync_query q;
  struct parley_sync_chain_sig cs = sample_sig();
  uint8_t buf[600];
  size_t w;
  (void)state;

  memset(long_topic, 'x', 256);
  long_topic[256] = '\0';
  memset(&q, 0, sizeof q);
  q.topic.ptr = long_topic;
  q.topic.len = 255;
  assert_int_equal(parley_sync_query_encode(&q, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, 4 + 1 + 255);
  q.topic.len = 256;
  assert_int_equal(parley_sync_query_encode(&q, buf, sizeof buf, &w),
                   PARLEY_ETOOBIG);
  q.topic.ptr = "a\0b";
  q.topic.len = 3;
  assert_int_equal(parley_sync_query_encode(&q, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  q.topic.ptr = NULL;
  q.topic.len = 2;
  assert_int_equal(parley_sync_query_encode(&q, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  /* An empty topic encodes (the receiver refuses it as a topic). */
  q.topic.len = 0;
  assert_int_equal(parley_sync_query_encode(&q, buf, sizeof buf, &w),
                   PARLEY_OK);
  assert_int_equal(w, 5);
  cs.seq = 0;
  assert_int_equal(parley_sync_chain_sig_encode(&cs, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
  cs = sample_sig();
  cs.hash = NULL;
  assert_int_equal(parley_sync_chain_sig_encode(&cs, buf, sizeof buf, &w),
                   PARLEY_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_chain_sig),
      cmocka_unit_test(test_golden_query_fetch),
      cmocka_unit_test(test_golden_summary),
      cmocka_unit_test(test_golden_batch),
      cmocka_unit_test(test_empty_batch),
      cmocka_unit_test(test_batch_rules),
      cmocka_unit_test(test_entry_encoder),
      cmocka_unit_test(test_strings),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
