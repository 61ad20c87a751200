/*
 * stream.h — incremental parsers for the two streamed answers of the daemon:
 * NDJSON (one JSON text per line) and Server-Sent Events (text/event-stream).
 *
 * Both are pure: they take bytes in chunks of any size (a line or an event
 * may be split anywhere, even inside a CRLF pair) and call back once per
 * complete line / event.  Each keeps a capped buffer so that a daemon that
 * never sends a line end cannot make the client grow without bound.
 */
#ifndef PARLEY_APPS_CLI_STREAM_H
#define PARLEY_APPS_CLI_STREAM_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/* Receives one complete line or event payload, NUL-terminated, of len bytes
 * (which may contain NUL bytes for a binary line).  The text is borrowed for
 * the duration of the call.  A negative return stops parsing: the feed
 * function returns that value. */
typedef int (*parley_cli_text_cb)(void *ctx, const char *text, size_t len);

/* Splits a byte stream into lines ending in "\n"; a "\r" before the "\n" is
 * removed. */
struct parley_cli_lines {
  struct parley_buf buf;
  parley_cli_text_cb cb;
  void *ctx;
};

/* max_line caps one line (without its end).  cb and ctx are borrowed. */
void parley_cli_lines_init(struct parley_cli_lines *l, size_t max_line,
                           parley_cli_text_cb cb, void *ctx)
    PARLEY_NONNULL(1, 3);
/* Feeds n bytes.  PARLEY_ETOOBIG when a line exceeds max_line, PARLEY_ENOMEM,
 * or the callback's negative value. */
PARLEY_NODISCARD int parley_cli_lines_feed(struct parley_cli_lines *l,
                                           const char *p, size_t n)
    PARLEY_NONNULL(1);
/* At end of input: delivers a last line that had no "\n" (if non-empty). */
PARLEY_NODISCARD int parley_cli_lines_finish(struct parley_cli_lines *l)
    PARLEY_NONNULL(1);
void parley_cli_lines_close(struct parley_cli_lines *l) PARLEY_NONNULL(1);

/* Server-Sent Events, as the HTML living standard describes them: lines end
 * in CR, LF or CRLF; "data:" lines accumulate (joined by "\n"); a blank line
 * dispatches the event; lines starting with ":" are comments; "id:",
 * "retry:" and unknown fields are ignored; an event whose "event:" type is
 * neither empty nor "message" is dropped; a leading UTF-8 BOM is skipped.
 * The callback receives the event's data. */
struct parley_cli_sse {
  struct parley_buf line;
  struct parley_buf data;
  parley_cli_text_cb cb;
  void *ctx;
  size_t max_event;
  int have_data;   /* a data: line was seen in this event */
  int other_type;  /* this event's type is not "message" */
  int last_cr;     /* the previous byte was a CR (swallow a following LF) */
  int started;     /* past the first line (BOM check done) */
};

/* max_event caps one event's data and one line.  cb, ctx borrowed. */
void parley_cli_sse_init(struct parley_cli_sse *s, size_t max_event,
                         parley_cli_text_cb cb, void *ctx)
    PARLEY_NONNULL(1, 3);
/* Feeds n bytes.  PARLEY_ETOOBIG past max_event, PARLEY_ENOMEM, or the
 * callback's negative value. */
PARLEY_NODISCARD int parley_cli_sse_feed(struct parley_cli_sse *s,
                                         const char *p, size_t n)
    PARLEY_NONNULL(1);
void parley_cli_sse_close(struct parley_cli_sse *s) PARLEY_NONNULL(1);

#endif
