/*
 * fuzz_report_wire.c — the REPORT payload decoder (wire/report_wire.h).
 *
 * The input is decoded as one REPORT payload; when that succeeds, encoding
 * the result must give back exactly the input (fixed-width fields, no
 * optional encodings: the codec is canonical), the encoded size must agree,
 * and every decoded topic must be valid.  A failed decode leaves the output
 * zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/report_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct parley_report r;
  static uint8_t out[PARLEY_REPORT_MAX_LEN];
  size_t n = 0;
  int rc = parley_report_decode(data, size, &r);

  if (rc == PARLEY_OK) {
    CHECK(size >= PARLEY_REPORT_HDR_LEN && size <= PARLEY_REPORT_MAX_LEN);
    CHECK(r.version == PARLEY_REPORT_VERSION);
    CHECK(r.ntopics <= PARLEY_REPORT_MAX_TOPICS);
    CHECK(parley_report_encoded_size(&r) == size);
    CHECK(parley_report_encode(&r, out, sizeof out, &n) == PARLEY_OK);
    CHECK(n == size && memcmp(out, data, size) == 0);
    /* Too small a buffer is refused with the size needed. */
    CHECK(parley_report_encode(&r, out, size - 1, &n) == PARLEY_ETOOBIG &&
          n == size);
  } else {
    CHECK(rc == PARLEY_EPROTO || rc == PARLEY_EVERSION);
    CHECK(r.version == 0 && r.ntopics == 0 && r.uptime_ms == 0);
  }
  return 0;
}
