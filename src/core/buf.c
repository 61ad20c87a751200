/* buf.c — capped growable buffer. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

void parley_buf_init(struct parley_buf *b, size_t cap) {
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
  b->cap = cap;
}

void parley_buf_close(struct parley_buf *b) {
  parley_free(b->data);
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
}

int parley_buf_reserve(struct parley_buf *b, size_t n) {
  size_t want, na;
  uint8_t *p;

  if (n > b->cap || b->len > b->cap - n)
    return PARLEY_ETOOBIG;
  want = b->len + n;
  if (want <= b->alloc)
    return PARLEY_OK;
  na = b->alloc ? b->alloc : 256;
  while (na < want)
    na = na > b->cap / 2 ? b->cap : na * 2;
  if (na < want)
    na = want;
  p = parley_realloc(b->data, na);
  if (p == NULL)
    return PARLEY_ENOMEM;
  b->data = p;
  b->alloc = na;
  return PARLEY_OK;
}

int parley_buf_append(struct parley_buf *b, const void *p, size_t n) {
  int rc;
  if (n == 0)
    return PARLEY_OK;
  rc = parley_buf_reserve(b, n);
  if (rc < 0)
    return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return PARLEY_OK;
}

int parley_buf_appendf(struct parley_buf *b, const char *fmt, ...) {
  va_list ap;
  int n, rc;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return PARLEY_EINVAL;
  rc = parley_buf_reserve(b, (size_t)n + 1);
  if (rc < 0)
    return rc;
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return PARLEY_OK;
}

void parley_buf_consume(struct parley_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void parley_buf_reset(struct parley_buf *b) { b->len = 0; }
