/*
 * codec_int.h — the bounded reader and measuring writer shared by the
 * sub-codecs of src/wire/ (acl_wire.c, sync_wire.c).  Private to src/wire/.
 *
 * Reads never run past the end: the first short read marks the reader bad
 * and every later read returns zero / NULL, which callers never use because
 * they check `bad` before trusting anything.  With p NULL the writer only
 * measures; past cap it marks too_big instead of writing.
 */
#ifndef PARLEY_WIRE_CODEC_INT_H
#define PARLEY_WIRE_CODEC_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "wire/wire.h"

#define PARLEY__STR8_MAX 255u

struct parley__rd {
  const uint8_t *p;
  size_t left;
  int bad;
};

static inline const uint8_t *parley__rd_take(struct parley__rd *r, size_t n) {
  const uint8_t *p;
  if (r->bad || r->left < n) {
    r->bad = 1;
    return NULL;
  }
  p = r->p;
  r->p += n;
  r->left -= n;
  return p;
}

/* An n-byte big-endian unsigned integer (n <= 8). */
static inline uint64_t parley__rd_be(struct parley__rd *r, size_t n) {
  const uint8_t *p = parley__rd_take(r, n);
  uint64_t v = 0;
  for (size_t i = 0; p != NULL && i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* str8 (u8 length + bytes) without NUL bytes; borrowed from the input. */
static inline void parley__rd_str8(struct parley__rd *r, struct parley_str *s) {
  size_t n = (size_t)parley__rd_be(r, 1);
  const uint8_t *p = parley__rd_take(r, n);
  if (p == NULL)
    return;
  if (memchr(p, 0, n) != NULL) {
    r->bad = 1;
    return;
  }
  s->ptr = (const char *)p;
  s->len = n;
}

struct parley__wr {
  uint8_t *p;
  size_t n, cap;
  int too_big;
};

/* Appends k bytes of src (zeros when src is NULL). */
static inline void parley__wr_bytes(struct parley__wr *w, const void *src,
                                    size_t k) {
  if (w->p != NULL && !w->too_big) {
    if (w->cap - w->n < k) {
      w->too_big = 1;
    } else if (k > 0) {
      if (src != NULL)
        memcpy(w->p + w->n, src, k);
      else
        memset(w->p + w->n, 0, k);
    }
  }
  w->n += k;
}

static inline void parley__wr_be(struct parley__wr *w, uint64_t v, size_t n) {
  uint8_t b[8];
  for (size_t i = 0; i < n; i++)
    b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  parley__wr_bytes(w, b, n);
}

/* A string fit for str8: at most 255 bytes, no NUL. */
static inline int parley__str8_check(const struct parley_str *s) {
  if (s->len > PARLEY__STR8_MAX)
    return PARLEY_ETOOBIG;
  if (s->len > 0 && (s->ptr == NULL || memchr(s->ptr, 0, s->len) != NULL))
    return PARLEY_EINVAL;
  return PARLEY_OK;
}

static inline void parley__wr_str8(struct parley__wr *w,
                                   const struct parley_str *s) {
  parley__wr_be(w, s->len, 1);
  parley__wr_bytes(w, s->ptr, s->len);
}

#endif
