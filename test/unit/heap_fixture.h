/*
 * heap_fixture.h — a counting, failure-injecting allocator for unit tests
 * (install it with parley_allocator_set(&counting)): heap.live is the
 * bytes requested and not yet freed, heap.fail_after makes the allocation
 * after that many more fail (-1: never).
 *
 * Everything is static, so each test program gets its own copy.  Include
 * after cmocka's headers.
 */
#ifndef PARLEY_TEST_HEAP_FIXTURE_H
#define PARLEY_TEST_HEAP_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct heap {
  size_t live;     /* requested bytes not yet freed */
  size_t max_req;  /* largest single request since reset */
  long allocs;     /* successful allocations */
  long fail_after; /* fail when it reaches 0; -1 = never */
};
static struct heap heap = {0, 0, 0, -1};

#define HDR 16 /* keeps the user pointer 16-byte aligned */

static inline int heap_should_fail(void) {
  if (heap.fail_after < 0)
    return 0;
  if (heap.fail_after == 0)
    return 1;
  heap.fail_after--;
  return 0;
}

static inline void *t_malloc(void *ctx, size_t n) {
  uint8_t *p;
  (void)ctx;
  if (heap_should_fail())
    return NULL;
  p = malloc(HDR + n);
  if (p == NULL)
    return NULL;
  memcpy(p, &n, sizeof n);
  heap.live += n;
  heap.allocs++;
  if (n > heap.max_req)
    heap.max_req = n;
  return p + HDR;
}

static inline void t_free(void *ctx, void *q) {
  uint8_t *p = q;
  size_t n;
  (void)ctx;
  if (p == NULL)
    return;
  p -= HDR;
  memcpy(&n, p, sizeof n);
  heap.live -= n;
  free(p);
}

static inline void *t_realloc(void *ctx, void *q, size_t n) {
  uint8_t *p = q, *np;
  size_t old;
  if (p == NULL)
    return t_malloc(ctx, n);
  if (heap_should_fail())
    return NULL;
  p -= HDR;
  memcpy(&old, p, sizeof old);
  np = realloc(p, HDR + n);
  if (np == NULL)
    return NULL;
  memcpy(np, &n, sizeof n);
  heap.live = heap.live - old + n;
  heap.allocs++;
  if (n > heap.max_req)
    heap.max_req = n;
  return np + HDR;
}

static const struct parley_allocator counting = {t_malloc, t_realloc, t_free,
                                                 NULL};

#endif
