/*
 * store_fixture.h — what the small store tests share (test_store_trust.c,
 * test_store_obatch.c, test_store_pend.c): a fresh store in a temporary
 * directory per test, removed afterwards, a 32-byte key filled with one
 * value, and (after heap_fixture.h) a sweep of allocation failures.
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

#ifdef PARLEY_TEST_HEAP_FIXTURE_H
/* Runs work on a fresh store file once with the k-th allocation failing,
 * for k = 0, 1, ... until a run needs fewer allocations than k; after
 * each run nothing may have leaked, and check gets the file reopened
 * without failures.  f's own store is closed for the sweep and reopened
 * afterwards.  Returns how many allocations failed in turn. */
static inline long alloc_sweep(struct fx *f,
                               void (*work)(struct parley_store *s, void *ctx),
                               void (*check)(struct parley_store *s, void *ctx),
                               void *ctx) {
  long k;
  int injected = 1;

  parley_store_close(f->s);
  f->s = NULL;
  for (k = 0; injected; k++) {
    struct parley_store *s = NULL;
    remove_db(f->path);
    parley_allocator_set(&counting);
    heap.fail_after = k;
    if (parley_store_open(f->path, NULL, &s) == PARLEY_OK) {
      work(s, ctx);
      parley_store_close(s);
    }
    injected = heap.fail_after == 0; /* else the run needed fewer */
    heap.fail_after = -1;
    parley_allocator_set(NULL);
    assert_int_equal(heap.live, 0); /* nothing leaked */
    assert_int_equal(parley_store_open(f->path, NULL, &s), PARLEY_OK);
    check(s, ctx);
    parley_store_close(s);
  }
  print_message("%ld allocations failed in turn\n", k - 1);
  assert_int_equal(parley_store_open(f->path, NULL, &f->s), PARLEY_OK);
  return k - 1;
}
#endif

#endif
