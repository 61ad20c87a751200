/*
 * fuzz_obatch.c — the decoder of the outbox_batch table's rowids column
 * (store/store_int.h, parley__ob_decode).
 *
 * The store reads that column back at open, after a crash, from a file
 * anything may have touched.  When the input decodes, the rowids must be
 * positive and strictly ascending, and encoding them again must give back
 * exactly the input (runs do not touch, so the encoding is canonical).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int64_t v[PARLEY_OB_BATCH_MAX];
  static uint8_t out[PARLEY_OB_BATCH_MAX * PARLEY_OB_RUN];
  size_t n = 1;
  int rc = parley__ob_decode(data, size, v, PARLEY_OB_BATCH_MAX, &n);

  if (rc != PARLEY_OK) {
    CHECK(rc == PARLEY_EPROTO || rc == PARLEY_ETOOBIG);
    CHECK(n == 0);
    return 0;
  }
  CHECK(size % PARLEY_OB_RUN == 0 && n >= size / PARLEY_OB_RUN);
  for (size_t i = 0; i < n; i++)
    CHECK(v[i] > 0 && (i == 0 || v[i] > v[i - 1]));
  CHECK(parley__ob_encode(v, n, out) == size);
  CHECK(size == 0 || memcmp(out, data, size) == 0);
  return 0;
}
