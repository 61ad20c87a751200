/*
 * fuzz_snapshot.c — parley_registry_restore on arbitrary bytes.
 *
 * Restore must never crash or over-allocate; on failure the registry is
 * empty, and on success the snapshot of the restored state is exactly the
 * input (restore accepts only the canonical form).  The one exception is
 * an old "PRG1" snapshot: it is written back as "PRG2", i.e. the same
 * bytes behind the new magic followed by a zero private-topic count.
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
  static const struct parley_reg_limits lim = {16, 64, 32, 8, 4};
  struct parley_buf out;
  int rc, v1;

  /* One registry for the whole run: restore must fully replace the state
   * left by the previous input, successful or not. */
  if (reg == NULL && (parley_crypto_init() != PARLEY_OK ||
                      parley_registry_new(&lim, &reg) != PARLEY_OK))
    abort();
  rc = parley_registry_restore(reg, data, size);
  if (rc != PARLEY_OK) {
    CHECK(rc == PARLEY_EPROTO || rc == PARLEY_ENOMEM);
    CHECK(parley_registry_peer_count(reg) == 0);
    CHECK(parley_registry_topic_count(reg) == 0);
    CHECK(parley_registry_acl_count(reg) == 0);
    return 0;
  }
  v1 = memcmp(data, "PRG1", 4) == 0;
  CHECK(v1 || memcmp(data, "PRG2", 4) == 0);
  parley_buf_init(&out, size + 5);
  CHECK(parley_registry_snapshot(reg, &out) == PARLEY_OK);
  if (v1) {
    CHECK(parley_registry_acl_count(reg) == 0);
    CHECK(out.len == size + 4 && memcmp(out.data, "PRG2", 4) == 0 &&
          memcmp(out.data + 4, data + 4, size - 4) == 0 &&
          memcmp(out.data + size, "\0\0\0\0", 4) == 0);
  } else {
    CHECK(out.len == size && memcmp(out.data, data, size) == 0);
  }
  parley_buf_close(&out);
  return 0;
}
