/* alloc.c — the replaceable allocator. */
#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct parley_allocator current;
static int have_custom;

void parley_allocator_set(const struct parley_allocator *a) {
  if (a == NULL) {
    have_custom = 0;
    return;
  }
  current = *a;
  have_custom = 1;
}

void *parley_malloc(size_t n) {
  return have_custom ? current.malloc(current.ctx, n) : malloc(n);
}

void *parley_calloc(size_t count, size_t size) {
  void *p;
  if (size != 0 && count > SIZE_MAX / size)
    return NULL;
  p = parley_malloc(count * size);
  if (p != NULL)
    memset(p, 0, count * size);
  return p;
}

void *parley_realloc(void *p, size_t n) {
  return have_custom ? current.realloc(current.ctx, p, n) : realloc(p, n);
}

void parley_free(void *p) {
  if (p == NULL)
    return;
  if (have_custom)
    current.free(current.ctx, p);
  else
    free(p);
}

char *parley_strndup(const char *s, size_t n) {
  char *d = parley_malloc(n + 1);
  if (d == NULL)
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *parley_strdup(const char *s) { return parley_strndup(s, strlen(s)); }
