/*
 * fuzz_raft_wire.c — the RAFT_OPEN payload decoder.
 *
 * The input is decoded as one RAFT_OPEN payload; when that succeeds,
 * encoding the result must give back exactly the input (the layout has no
 * optional fields and no alternative encodings, so the codec is
 * canonical).  RAFT_DATA has no structure to decode: only its length is
 * checked, and that must agree with the documented bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/raft_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct parley_raft_open o;
  uint8_t out[PARLEY_RAFT_OPEN_MAX];
  size_t n = 0;

  if (parley_raft_open_decode(data, size, &o) == PARLEY_OK) {
    CHECK(size >= PARLEY_RAFT_OPEN_MIN && size <= PARLEY_RAFT_OPEN_MAX);
    CHECK(o.raft_id != 0 && o.proof != NULL && o.raft_addr.len > 0);
    CHECK(parley_raft_open_encode(&o, out, sizeof out, &n) == PARLEY_OK);
    CHECK(n == size && memcmp(out, data, size) == 0);
  } else {
    CHECK(o.raft_id == 0 && o.proof == NULL);
  }
  CHECK((parley_raft_data_check(size) == PARLEY_OK) ==
        (size >= 1 && size <= PARLEY_RAFT_MAX_DATA));
  return 0;
}
