/* stream.c — NDJSON line splitting and Server-Sent Events parsing. */
#include "apps/cli/stream.h"

#include <string.h>

void parley_cli_lines_init(struct parley_cli_lines *l, size_t max_line,
                           parley_cli_text_cb cb, void *ctx) {
  /* +2: room for a "\r" before the "\n", and for the NUL of finish(). */
  parley_buf_init(&l->buf, max_line + 2);
  l->cb = cb;
  l->ctx = ctx;
}

void parley_cli_lines_close(struct parley_cli_lines *l) {
  parley_buf_close(&l->buf);
}

/* Delivers buf[0..len) as a line; buf[len] is overwritten with a NUL. */
static int deliver_line(struct parley_cli_lines *l, size_t len) {
  char *s = (char *)l->buf.data;
  size_t n = len;
  if (n > 0 && s[n - 1] == '\r')
    n--;
  s[n] = '\0';
  return l->cb(l->ctx, s, n);
}

int parley_cli_lines_feed(struct parley_cli_lines *l, const char *p,
                          size_t n) {
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    int rc;

    /* The buffer holds at most one partial line plus its "\n". */
    rc = parley_buf_append(&l->buf, p, take);
    if (rc < 0)
      return rc;
    p += take;
    n -= take;
    if (nl == NULL)
      break;
    rc = deliver_line(l, l->buf.len - 1);
    parley_buf_reset(&l->buf);
    if (rc < 0)
      return rc;
  }
  return PARLEY_OK;
}

int parley_cli_lines_finish(struct parley_cli_lines *l) {
  size_t len = l->buf.len;
  int rc;

  if (len == 0)
    return PARLEY_OK;
  rc = parley_buf_reserve(&l->buf, 1);
  if (rc < 0)
    return rc;
  rc = deliver_line(l, len);
  parley_buf_reset(&l->buf);
  return rc;
}

void parley_cli_sse_init(struct parley_cli_sse *s, size_t max_event,
                         parley_cli_text_cb cb, void *ctx) {
  memset(s, 0, sizeof *s);
  parley_buf_init(&s->line, max_event + 1);
  parley_buf_init(&s->data, max_event + 2);
  s->cb = cb;
  s->ctx = ctx;
  s->max_event = max_event;
}

void parley_cli_sse_close(struct parley_cli_sse *s) {
  parley_buf_close(&s->line);
  parley_buf_close(&s->data);
}

static int dispatch(struct parley_cli_sse *s) {
  int rc = PARLEY_OK;

  if (s->have_data && !s->other_type) {
    /* Every data: line added a "\n"; the last one is not part of the data. */
    size_t n = s->data.len - 1;
    s->data.data[n] = '\0';
    rc = s->cb(s->ctx, (const char *)s->data.data, n);
  }
  parley_buf_reset(&s->data);
  s->have_data = 0;
  s->other_type = 0;
  return rc;
}

static int process_line(struct parley_cli_sse *s, const char *line,
                        size_t len) {
  const char *colon, *value;
  size_t flen, vlen;
  int rc;

  if (!s->started) {
    s->started = 1;
    if (len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
      line += 3;
      len -= 3;
    }
  }
  if (len == 0)
    return dispatch(s);
  if (line[0] == ':')
    return PARLEY_OK;
  colon = memchr(line, ':', len);
  flen = colon ? (size_t)(colon - line) : len;
  value = colon ? colon + 1 : line + len;
  vlen = (size_t)(line + len - value);
  if (vlen > 0 && value[0] == ' ') {
    value++;
    vlen--;
  }
  if (flen == 4 && memcmp(line, "data", 4) == 0) {
    if (s->data.len + vlen + 1 > s->max_event + 1)
      return PARLEY_ETOOBIG;
    rc = parley_buf_append(&s->data, value, vlen);
    if (rc == PARLEY_OK)
      rc = parley_buf_append(&s->data, "\n", 1);
    if (rc < 0)
      return rc;
    s->have_data = 1;
  } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
    s->other_type = !(vlen == 0 || (vlen == 7 && memcmp(value, "message",
                                                        7) == 0));
  }
  return PARLEY_OK;
}

int parley_cli_sse_feed(struct parley_cli_sse *s, const char *p, size_t n) {
  while (n > 0) {
    size_t i = 0;
    int rc;

    if (s->last_cr && p[0] == '\n') {
      s->last_cr = 0;
      p++;
      n--;
      continue;
    }
    s->last_cr = 0;
    while (i < n && p[i] != '\r' && p[i] != '\n')
      i++;
    rc = parley_buf_append(&s->line, p, i);
    if (rc < 0)
      return rc;
    if (i == n)
      break;
    s->last_cr = p[i] == '\r';
    rc = process_line(s, (const char *)s->line.data, s->line.len);
    parley_buf_reset(&s->line);
    if (rc < 0)
      return rc;
    p += i + 1;
    n -= i + 1;
  }
  return PARLEY_OK;
}
