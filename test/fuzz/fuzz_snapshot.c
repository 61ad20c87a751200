/*
 * fuzz_snapshot.c — parley_registry_restore on arbitrary bytes.
 *
 * Restore must never crash or over-allocate; on failure the registry is
 * empty, and on success the snapshot of the restored state is exactly the
 * input (restore accepts only the canonical form).
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

static struct parley_registry *reg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct parley_buf out;
  int rc;

  /* One registry for the whole run: restore must fully replace the state
   * left by the previous input, successful or not. */
  if (reg == NULL &&
      parley_registry_new(&(struct parley_reg_limits){16, 64, 32}, &reg) !=
          PARLEY_OK)
    abort();
  rc = parley_registry_restore(reg, data, size);
  if (rc != PARLEY_OK) {
    CHECK(rc == PARLEY_EPROTO || rc == PARLEY_ENOMEM);
    CHECK(parley_registry_peer_count(reg) == 0);
    CHECK(parley_registry_topic_count(reg) == 0);
    return 0;
  }
  parley_buf_init(&out, size + 1);
  CHECK(parley_registry_snapshot(reg, &out) == PARLEY_OK);
  CHECK(out.len == size && memcmp(out.data, data, size) == 0);
  parley_buf_close(&out);
  return 0;
}
