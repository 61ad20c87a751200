/* output.c — human and JSON output of daemon answers. */
#include "apps/cli/output.h"

#include <string.h>

#include "core/util.h"

/* Length of the UTF-8 sequence starting at s[0..n), 0 if invalid; the code
 * point goes to *cp. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp) {
  size_t need;
  unsigned v;

  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if ((s[0] & 0xe0) == 0xc0)
    need = 1, v = s[0] & 0x1fu;
  else if ((s[0] & 0xf0) == 0xe0)
    need = 2, v = s[0] & 0x0fu;
  else if ((s[0] & 0xf8) == 0xf0)
    need = 3, v = s[0] & 0x07u;
  else
    return 0;
  if (n <= need)
    return 0;
  for (size_t k = 1; k <= need; k++) {
    if ((s[k] & 0xc0) != 0x80)
      return 0;
    v = (v << 6) | (s[k] & 0x3fu);
  }
  if ((need == 1 && v < 0x80) || (need == 2 && v < 0x800) ||
      (need == 3 && (v < 0x10000 || v > 0x10ffff)) ||
      (v >= 0xd800 && v <= 0xdfff))
    return 0;
  *cp = v;
  return need + 1;
}

int parley_cli_escape(struct parley_buf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  int rc = PARLEY_OK;

  while (rc == PARLEY_OK && i < n) {
    unsigned cp = 0;
    size_t len = utf8_seq(p + i, n - i, &cp);
    if (len == 0) {
      rc = parley_buf_appendf(b, "\\x%02x", p[i]);
      len = 1;
    } else if (cp == '\n') {
      rc = parley_buf_append(b, "\\n", 2);
    } else if (cp == '\r') {
      rc = parley_buf_append(b, "\\r", 2);
    } else if ((cp < 0x20 && cp != '\t') || cp == 0x7f) {
      rc = parley_buf_appendf(b, "\\x%02x", cp);
    } else if (cp >= 0x80 && cp < 0xa0) {
      rc = parley_buf_appendf(b, "\\u%04x", cp);
    } else {
      rc = parley_buf_append(b, p + i, len);
    }
    i += len;
  }
  return rc;
}

static int escape_str(struct parley_buf *b, const char *s) {
  return parley_cli_escape(b, s, strlen(s));
}

static int finish_line(FILE *f, struct parley_buf *b) {
  int rc = parley_buf_append(b, "\n", 1);
  if (rc == PARLEY_OK && fwrite(b->data, 1, b->len, f) != b->len)
    rc = PARLEY_EIO;
  return rc;
}

int parley_cli_print_json(FILE *f, const json_t *obj) {
  if (json_dumpf(obj, f, JSON_COMPACT | JSON_ENCODE_ANY) < 0 ||
      fputc('\n', f) == EOF)
    return PARLEY_EIO;
  return PARLEY_OK;
}

static const char *str_field(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int short_id(struct parley_buf *b, const char *id) {
  size_t n;
  if (id == NULL)
    return parley_buf_append(b, "?", 1);
  n = strlen(id);
  if (n <= PARLEY_CLI_SHORT_ID)
    return parley_cli_escape(b, id, n);
  if (parley_cli_escape(b, id, PARLEY_CLI_SHORT_ID) < 0)
    return PARLEY_ENOMEM;
  return parley_buf_append(b, "\xe2\x80\xa6", 3); /* … */
}

static int body_text(struct parley_buf *b, const json_t *msg) {
  const json_t *body = json_object_get(msg, "body");
  const json_t *b64 = json_object_get(msg, "body_base64");

  if (json_is_string(body))
    return parley_cli_escape(b, json_string_value(body),
                             json_string_length(body));
  if (json_is_string(b64)) {
    const char *s = json_string_value(b64);
    size_t n = json_string_length(b64), bytes = n / 4 * 3;
    if (n >= 1 && s[n - 1] == '=')
      bytes--;
    if (n >= 2 && s[n - 2] == '=')
      bytes--;
    return parley_buf_appendf(b, "[binary, %zu bytes]", bytes);
  }
  return parley_buf_append(b, "[no body]", 9);
}

int parley_cli_print_message(FILE *f, const json_t *msg,
                             int with_direction) {
  const json_t *ts = json_object_get(msg, "ts");
  const char *topic = str_field(msg, "topic");
  const char *dir = str_field(msg, "direction");
  int out = dir != NULL && strcmp(dir, "out") == 0;
  struct parley_buf b;
  char when[40];
  int rc;

  parley_buf_init(&b, PARLEY_CLI_OUT_LINE_MAX);
  if (json_is_integer(ts))
    parley_format_rfc3339((int64_t)json_integer_value(ts), when, sizeof when);
  else
    snprintf(when, sizeof when, "-");
  rc = parley_buf_appendf(&b, "%s ", when);
  if (rc == PARLEY_OK && with_direction)
    rc = parley_buf_appendf(&b, "%s ", out ? "out" : "in ");
  if (rc == PARLEY_OK && topic != NULL) {
    rc = escape_str(&b, topic);
    if (rc == PARLEY_OK)
      rc = parley_buf_append(&b, " ", 1);
    if (rc == PARLEY_OK)
      rc = short_id(&b, str_field(msg, "from"));
  } else if (rc == PARLEY_OK && out) {
    rc = parley_buf_append(&b, "@direct me\xe2\x86\x92", 13); /* → */
    if (rc == PARLEY_OK)
      rc = short_id(&b, str_field(msg, "to"));
  } else if (rc == PARLEY_OK) {
    rc = parley_buf_append(&b, "@direct ", 8);
    if (rc == PARLEY_OK)
      rc = short_id(&b, str_field(msg, "from"));
    if (rc == PARLEY_OK)
      rc = parley_buf_append(&b, "\xe2\x86\x92me", 5);
  }
  if (rc == PARLEY_OK)
    rc = parley_buf_append(&b, ": ", 2);
  if (rc == PARLEY_OK)
    rc = body_text(&b, msg);
  if (rc == PARLEY_OK)
    rc = finish_line(f, &b);
  parley_buf_close(&b);
  return rc;
}

int parley_cli_value_text(struct parley_buf *b, const json_t *v) {
  int rc = PARLEY_OK;

  if (json_is_string(v))
    return parley_buf_append(b, json_string_value(v), json_string_length(v));
  if (json_is_integer(v))
    return parley_buf_appendf(b, "%" JSON_INTEGER_FORMAT,
                              json_integer_value(v));
  if (json_is_real(v))
    return parley_buf_appendf(b, "%g", json_real_value(v));
  if (json_is_boolean(v))
    return parley_buf_appendf(b, "%s", json_is_true(v) ? "true" : "false");
  if (v == NULL || json_is_null(v))
    return parley_buf_appendf(b, "-");
  if (json_is_array(v)) {
    size_t i;
    const json_t *e;
    int scalars = 1;
    json_array_foreach(v, i, e) {
      if (json_is_array(e) || json_is_object(e))
        scalars = 0;
    }
    if (scalars) {
      if (json_array_size(v) == 0)
        return parley_buf_appendf(b, "(none)");
      json_array_foreach(v, i, e) {
        if (rc == PARLEY_OK && i > 0)
          rc = parley_buf_appendf(b, ", ");
        if (rc == PARLEY_OK)
          rc = parley_cli_value_text(b, e);
      }
      return rc;
    }
  }
  {
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0)
      return PARLEY_EINVAL;
    rc = parley_buf_reserve(b, n);
    if (rc < 0)
      return rc;
    b->len += json_dumpb(v, (char *)b->data + b->len, n,
                         JSON_COMPACT | JSON_ENCODE_ANY);
    return PARLEY_OK;
  }
}

static int uptime_text(struct parley_buf *b, json_int_t ms) {
  long long s = ms / 1000, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  if (d > 0)
    return parley_buf_appendf(b, "%lldd%02lldh%02lldm%02llds", d, h, m,
                              s % 60);
  if (h > 0)
    return parley_buf_appendf(b, "%lldh%02lldm%02llds", h, m, s % 60);
  if (m > 0)
    return parley_buf_appendf(b, "%lldm%02llds", m, s % 60);
  return parley_buf_appendf(b, "%llds", s);
}

int parley_cli_print_status(FILE *f, const json_t *st) {
  const char *key;
  const json_t *v;
  int rc = PARLEY_OK;

  /* The foreach macro walks on from key: the printed name is separate. */
  json_object_foreach((json_t *)st, key, v) {
    struct parley_buf val, line;
    const char *name = key;
    parley_buf_init(&val, PARLEY_CLI_OUT_LINE_MAX);
    parley_buf_init(&line, PARLEY_CLI_OUT_LINE_MAX);
    if (strcmp(key, "uptime_ms") == 0 && json_is_integer(v)) {
      name = "uptime";
      rc = uptime_text(&val, json_integer_value(v));
    } else if (strcmp(key, "index") == 0 && json_is_object(v) &&
               json_object_get(v, "addr") != NULL) {
      const json_t *c = json_object_get(v, "connected");
      rc = parley_cli_value_text(&val, json_object_get(v, "addr"));
      if (rc == PARLEY_OK && json_is_boolean(c))
        rc = parley_buf_appendf(&val, " (%s)", json_is_true(c)
                                                   ? "connected"
                                                   : "not connected");
    } else {
      rc = parley_cli_value_text(&val, v);
    }
    if (rc == PARLEY_OK)
      rc = escape_str(&line, name);
    if (rc == PARLEY_OK)
      rc = parley_buf_append(&line, ": ", 2);
    if (rc == PARLEY_OK)
      rc = parley_cli_escape(&line, (const char *)val.data, val.len);
    if (rc == PARLEY_OK)
      rc = finish_line(f, &line);
    parley_buf_close(&val);
    parley_buf_close(&line);
    if (rc < 0)
      return rc;
  }
  return PARLEY_OK;
}

int parley_cli_table_init(struct parley_cli_table *t, int ncols,
                          const char *const *headers, unsigned right) {
  t->ncols = ncols;
  t->headers = headers;
  t->right = right;
  t->rows = json_array();
  return t->rows ? PARLEY_OK : PARLEY_ENOMEM;
}

void parley_cli_table_close(struct parley_cli_table *t) {
  json_decref(t->rows);
  t->rows = NULL;
}

int parley_cli_table_add(struct parley_cli_table *t,
                         const char *const *cells) {
  json_t *row = json_array();
  if (row == NULL || json_array_append_new(t->rows, row) < 0)
    return PARLEY_ENOMEM;
  for (int i = 0; i < t->ncols; i++) {
    struct parley_buf b;
    int rc;
    parley_buf_init(&b, PARLEY_CLI_OUT_LINE_MAX);
    rc = escape_str(&b, cells[i] ? cells[i] : "-");
    if (rc == PARLEY_OK &&
        json_array_append_new(row, json_stringn(b.data ? (char *)b.data : "",
                                                b.len)) < 0)
      rc = PARLEY_ENOMEM;
    parley_buf_close(&b);
    if (rc < 0)
      return rc;
  }
  return PARLEY_OK;
}

/* Display width: code points (every byte that is not a continuation). */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

static int print_row(FILE *f, const struct parley_cli_table *t,
                     const char *const *cells, const size_t *w) {
  for (int i = 0; i < t->ncols; i++) {
    size_t pad = w[i] - width(cells[i]);
    int last = i == t->ncols - 1;
    int right = (t->right >> i) & 1u;
    if (i > 0)
      fputs("  ", f);
    if (right)
      fprintf(f, "%*s", (int)pad, "");
    fputs(cells[i], f);
    if (!right && !last)
      fprintf(f, "%*s", (int)pad, "");
  }
  return fputc('\n', f) == EOF ? PARLEY_EIO : PARLEY_OK;
}

int parley_cli_table_print(FILE *f, const struct parley_cli_table *t) {
  size_t w[16] = {0}, r;
  const char *cells[16];
  const json_t *row;
  int rc;

  if (t->ncols > 16)
    return PARLEY_EINVAL;
  for (int i = 0; i < t->ncols; i++)
    w[i] = width(t->headers[i]);
  json_array_foreach(t->rows, r, row) {
    for (int i = 0; i < t->ncols; i++) {
      size_t cw = width(json_string_value(json_array_get(row, (size_t)i)));
      w[i] = cw > w[i] ? cw : w[i];
    }
  }
  rc = print_row(f, t, t->headers, w);
  json_array_foreach(t->rows, r, row) {
    if (rc < 0)
      break;
    for (int i = 0; i < t->ncols; i++)
      cells[i] = json_string_value(json_array_get(row, (size_t)i));
    rc = print_row(f, t, cells, w);
  }
  return rc;
}
