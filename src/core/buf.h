/*
 * buf.h — a growable byte buffer with a hard cap fixed at init, so that a
 * buffer fed by a peer can never grow without bound (curl's dynbuf idea).
 * A zeroed struct is a valid empty buffer with cap 0 (every append fails):
 * call parley_buf_init first.
 */
#ifndef PARLEY_CORE_BUF_H
#define PARLEY_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct parley_buf {
  uint8_t *data;
  size_t len;   /* bytes in use */
  size_t alloc; /* bytes allocated */
  size_t cap;   /* never grow past this */
};

void parley_buf_init(struct parley_buf *b, size_t cap) PARLEY_NONNULL(1);
/* Frees the storage; safe on a zeroed or already closed buffer. */
void parley_buf_close(struct parley_buf *b) PARLEY_NONNULL(1);
/* Makes room for n more bytes.  PARLEY_ETOOBIG past cap, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_buf_reserve(struct parley_buf *b, size_t n)
    PARLEY_NONNULL(1);
PARLEY_NODISCARD int parley_buf_append(struct parley_buf *b, const void *p,
                                       size_t n) PARLEY_NONNULL(1);
PARLEY_NODISCARD int parley_buf_appendf(struct parley_buf *b,
                                        const char *fmt, ...)
    __attribute__((format(printf, 2, 3))) PARLEY_NONNULL(1, 2);
/* Drops the first n bytes (memmove). */
void parley_buf_consume(struct parley_buf *b, size_t n) PARLEY_NONNULL(1);
void parley_buf_reset(struct parley_buf *b) PARLEY_NONNULL(1);

#endif
