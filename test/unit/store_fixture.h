/*
 * store_fixture.h — what the small store tests share (test_store_trust.c,
 * test_store_obatch.c): a fresh store in a temporary directory per test,
 * removed afterwards, and a 32-byte key filled with one value.
 *
 * Everything is static, so each test program gets its own copy.  Include
 * after cmocka's headers.
 */
#ifndef PARLEY_TEST_STORE_FIXTURE_H
#define PARLEY_TEST_STORE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

struct fx {
  char dir[64];
  char path[128];
  struct parley_store *s;
};

/* Deletes the database at path with its WAL and shared-memory files. */
static inline void remove_db(const char *path) {
  char p[160];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

static inline int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  snprintf(f->dir, sizeof f->dir, "/tmp/parley-st-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
  *state = f;
  return 0;
}

static inline int teardown(void **state) {
  struct fx *f = *state;
  parley_store_close(f->s);
  remove_db(f->path);
  rmdir(f->dir);
  free(f);
  return 0;
}

static inline void key(uint8_t k[32], uint8_t v) { memset(k, v, 32); }

#endif
