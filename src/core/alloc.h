/*
 * alloc.h — every allocation in Parley goes through these functions so that
 * tests can replace the allocator (to count leaks or fail the k-th call).
 * parley_malloc(0) may return NULL; parley_free(NULL) does nothing.
 */
#ifndef PARLEY_CORE_ALLOC_H
#define PARLEY_CORE_ALLOC_H

#include <stddef.h>

struct parley_allocator {
  void *(*malloc)(void *ctx, size_t n);
  void *(*realloc)(void *ctx, void *p, size_t n);
  void (*free)(void *ctx, void *p);
  void *ctx;
};

void *parley_malloc(size_t n);
void *parley_calloc(size_t count, size_t size);
void *parley_realloc(void *p, size_t n);
void parley_free(void *p);
/* Duplicate a NUL-terminated string / n bytes (plus a NUL).  Caller frees. */
char *parley_strdup(const char *s);
char *parley_strndup(const char *s, size_t n);

/* Replace the allocator (NULL restores libc).  Not thread-safe: call before
 * any other Parley function. */
void parley_allocator_set(const struct parley_allocator *a);

#endif
