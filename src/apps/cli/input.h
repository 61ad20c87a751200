/*
 * input.h — turning what the user typed or piped into request values:
 * reading stdin with a cap, choosing "body" (UTF-8 text) or "body_base64"
 * (anything else) for a message, and parsing the time forms of history's
 * --since/--until.
 */
#ifndef PARLEY_APPS_CLI_INPUT_H
#define PARLEY_APPS_CLI_INPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Reads fd to its end into out (initialised by the caller with its cap).
 * PARLEY_ETOOBIG if the input is longer than out's cap, PARLEY_EIO on a read
 * error, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_cli_read_all(int fd, struct parley_buf *out)
    PARLEY_NONNULL(2);

/* Sets obj["body"] to p[0..n) when it is valid UTF-8 without NUL bytes, else
 * obj["body_base64"] to its standard base64 (with padding).  obj borrowed.
 * PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_cli_body_set(json_t *obj, const void *p, size_t n)
    PARLEY_NONNULL(1);

/* Standard base64 with padding of p[0..n), appended to out. */
PARLEY_NODISCARD int parley_cli_base64(const void *p, size_t n,
                                       struct parley_buf *out)
    PARLEY_NONNULL(3);

/* Parses T as RFC 3339, or as a duration ("30s", "10m", "2h", "1d", "500ms")
 * counted back from now_ms.  PARLEY_EINVAL if neither, PARLEY_ERANGE if the
 * duration reaches before 1970. */
PARLEY_NODISCARD int parley_cli_parse_time(const char *t, int64_t now_ms,
                                           int64_t *out) PARLEY_NONNULL(1, 3);

#endif
