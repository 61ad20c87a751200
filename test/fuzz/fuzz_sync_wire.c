/*
 * fuzz_sync_wire.c — the CHAIN_SIG / SYNC_* payload decoders.
 *
 * The first input byte picks the decoder (its value modulo 5: CHAIN_SIG,
 * SYNC_QUERY, SYNC_SUMMARY, SYNC_FETCH, SYNC_BATCH); the rest is the
 * payload.  Whatever decodes must re-encode to exactly the same bytes (the
 * layouts have no optional fields and no alternative encodings), lists
 * must walk to exactly `count` valid entries, and every documented rule
 * must hold on the result.  A failed decode must leave the output zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/sync_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

/* Large enough for any payload the decoders accept from a 1 MiB input. */
#define OUT_MAX ((1u << 20) + 1024u)
static uint8_t out[OUT_MAX];

static void same(const uint8_t *in, size_t n, int rc, size_t w) {
  CHECK(rc == PARLEY_OK);
  CHECK(w == n);
  CHECK(n == 0 || memcmp(out, in, n) == 0);
}

static int all_zero(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0)
      return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p;
  size_t n, w = 0;

  if (size == 0 || size - 1 > OUT_MAX - 64)
    return 0;
  p = data + 1;
  n = size - 1;
  switch (data[0] % 5) {
  case 0: {
    struct parley_sync_chain_sig m;
    if (parley_sync_chain_sig_decode(p, n, &m) == PARLEY_OK) {
      CHECK(m.seq >= 1 && m.publisher && m.hash && m.sig);
      CHECK(n == 32 + 1 + m.channel.len + 8 + 32 + 64);
      same(p, n, parley_sync_chain_sig_encode(&m, out, OUT_MAX, &w), w);
    } else {
      CHECK(all_zero(&m, sizeof m));
    }
    break;
  }
  case 1: {
    struct parley_sync_query m;
    if (parley_sync_query_decode(p, n, &m) == PARLEY_OK) {
      CHECK(n == 5 + m.topic.len);
      CHECK(memchr(m.topic.ptr ? m.topic.ptr : "", 0, m.topic.len) == NULL);
      same(p, n, parley_sync_query_encode(&m, out, OUT_MAX, &w), w);
    } else {
      CHECK(all_zero(&m, sizeof m));
    }
    break;
  }
  case 2: {
    struct parley_sync_summary m;
    struct parley_sync_summary_entry e;
    if (parley_sync_summary_decode(p, n, &m) == PARLEY_OK) {
      const uint8_t *cur = m.raw;
      size_t left = m.raw_len;
      uint32_t seen = 0;
      CHECK(m.count <= PARLEY_SYNC_MAX_SUMMARY && m.entries == NULL);
      while (parley_sync_summary_next(&cur, &left, &e)) {
        CHECK(e.publisher != NULL);
        seen++;
      }
      CHECK(left == 0 && seen == m.count);
      same(p, n, parley_sync_summary_encode(&m, out, OUT_MAX, &w), w);
    } else {
      CHECK(all_zero(&m, sizeof m));
    }
    break;
  }
  case 3: {
    struct parley_sync_fetch m;
    if (parley_sync_fetch_decode(p, n, &m) == PARLEY_OK) {
      CHECK(m.from >= 1 && m.to >= m.from && m.publisher);
      same(p, n, parley_sync_fetch_encode(&m, out, OUT_MAX, &w), w);
    } else {
      CHECK(all_zero(&m, sizeof m));
    }
    break;
  }
  default: {
    struct parley_sync_batch m;
    struct parley_sync_entry e;
    if (parley_sync_batch_decode(p, n, &m) == PARLEY_OK) {
      const uint8_t *cur = m.raw;
      size_t left = m.raw_len, bytes = 0;
      uint32_t seen = 0;
      CHECK(m.count <= PARLEY_SYNC_MAX_BATCH);
      if (m.count == 0)
        CHECK(m.from == 0 && m.cp_seq == 0 && all_zero(m.prev, 32) &&
              all_zero(m.cp_hash, 32) && all_zero(m.cp_sig, 64));
      else
        CHECK(m.from >= 1 && m.cp_seq == m.from + (m.count - 1) &&
              m.cp_seq >= m.from);
      while (parley_sync_entry_next(&cur, &left, &e)) {
        CHECK(e.kind == PARLEY_SYNC_ENTRY_MSG ||
              e.kind == PARLEY_SYNC_ENTRY_DIGEST);
        CHECK((e.flags & ~0xeu) == 0);
        bytes += parley_sync_entry_size(&e);
        seen++;
      }
      CHECK(left == 0 && seen == m.count && bytes == m.raw_len);
      same(p, n, parley_sync_batch_encode(&m, out, OUT_MAX, &w), w);
      /* One byte less of room is refused, with the size needed. */
      CHECK(parley_sync_batch_encode(&m, out, n - 1, &w) == PARLEY_ETOOBIG &&
            w == n);
    } else {
      CHECK(all_zero(&m, sizeof m));
    }
    break;
  }
  }
  return 0;
}
