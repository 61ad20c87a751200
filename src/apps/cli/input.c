/* input.c — stdin, message bodies and time arguments. */
#include "apps/cli/input.h"

#include <errno.h>
#include <unistd.h>

#include "core/util.h"

int parley_cli_read_all(int fd, struct parley_buf *out) {
  for (;;) {
    char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof chunk);
    int rc;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return PARLEY_EIO;
    if (n == 0)
      return PARLEY_OK;
    rc = parley_buf_append(out, chunk, (size_t)n);
    if (rc < 0)
      return rc;
  }
}

int parley_cli_base64(const void *p, size_t n, struct parley_buf *out) {
  static const char al[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const uint8_t *s = p;
  size_t olen = (n + 2) / 3 * 4;
  char *o;
  int rc;

  rc = parley_buf_reserve(out, olen);
  if (rc < 0)
    return rc;
  o = (char *)out->data + out->len;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16;
    size_t left = n - i;
    if (left > 1)
      v |= (uint32_t)s[i + 1] << 8;
    if (left > 2)
      v |= s[i + 2];
    *o++ = al[(v >> 18) & 63];
    *o++ = al[(v >> 12) & 63];
    *o++ = left > 1 ? al[(v >> 6) & 63] : '=';
    *o++ = left > 2 ? al[v & 63] : '=';
  }
  out->len += olen;
  return PARLEY_OK;
}

int parley_cli_body_set(json_t *obj, const void *p, size_t n) {
  json_t *v;

  if (n == 0 || parley_utf8_valid(p, n)) {
    v = json_stringn(n ? p : "", n);
    if (v == NULL || json_object_set_new(obj, "body", v) < 0)
      return PARLEY_ENOMEM;
    return PARLEY_OK;
  }
  {
    struct parley_buf b;
    int rc;
    parley_buf_init(&b, n / 3 * 4 + 8);
    rc = parley_cli_base64(p, n, &b);
    if (rc == PARLEY_OK) {
      v = json_stringn((const char *)b.data, b.len);
      if (v == NULL || json_object_set_new(obj, "body_base64", v) < 0)
        rc = PARLEY_ENOMEM;
    }
    parley_buf_close(&b);
    return rc;
  }
}

int parley_cli_parse_time(const char *t, int64_t now_ms, int64_t *out) {
  uint64_t d;
  int rc;

  if (parley_parse_rfc3339_ms(t, out) == PARLEY_OK)
    return PARLEY_OK;
  rc = parley_parse_duration_ms(t, &d);
  if (rc < 0)
    return rc;
  if (now_ms < 0 || d > (uint64_t)now_ms)
    return PARLEY_ERANGE;
  *out = now_ms - (int64_t)d;
  return PARLEY_OK;
}
