/* util.c — parsing, clocks and text encodings. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include "core/util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int parley_parse_u64(const char *s, uint64_t min, uint64_t max,
                     uint64_t *out) {
  uint64_t v = 0;
  const char *p = s;

  if (*p == '\0')
    return PARLEY_EINVAL;
  for (; *p; p++) {
    unsigned d;
    if (*p < '0' || *p > '9')
      return PARLEY_EINVAL;
    d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return PARLEY_ERANGE;
    v = v * 10 + d;
  }
  if (v < min || v > max)
    return PARLEY_ERANGE;
  *out = v;
  return PARLEY_OK;
}

int parley_parse_hostport(const char *s, char *host, size_t hostcap,
                          uint16_t *port) {
  const char *colon, *hs, *he;
  uint64_t p;
  int rc;

  if (s[0] == '[') {
    he = strchr(s, ']');
    if (he == NULL || he[1] != ':')
      return PARLEY_EINVAL;
    hs = s + 1;
    colon = he + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL)
      return PARLEY_EINVAL;
    hs = s;
    he = colon;
  }
  if (he == hs || (size_t)(he - hs) >= hostcap)
    return PARLEY_EINVAL;
  rc = parley_parse_u64(colon + 1, 0, 65535, &p);
  if (rc < 0)
    return PARLEY_EINVAL;
  memcpy(host, hs, (size_t)(he - hs));
  host[he - hs] = '\0';
  *port = (uint16_t)p;
  return PARLEY_OK;
}

int parley_format_hostport(char *out, size_t cap, const char *host,
                           unsigned port) {
  int n = strchr(host, ':') ? snprintf(out, cap, "[%s]:%u", host, port)
                            : snprintf(out, cap, "%s:%u", host, port);
  if (n < 0 || (size_t)n >= cap)
    return PARLEY_ETOOBIG;
  return PARLEY_OK;
}

int parley_parse_duration_ms(const char *s, uint64_t *out) {
  uint64_t v = 0, mul;
  const char *p = s;

  if (!isdigit((unsigned char)*p))
    return PARLEY_EINVAL;
  while (isdigit((unsigned char)*p)) {
    if (v > UINT64_MAX / 10 - 9)
      return PARLEY_ERANGE;
    v = v * 10 + (uint64_t)(*p - '0');
    p++;
  }
  if (strcmp(p, "ms") == 0)
    mul = 1;
  else if (strcmp(p, "s") == 0 || *p == '\0')
    mul = 1000;
  else if (strcmp(p, "m") == 0)
    mul = 60000;
  else if (strcmp(p, "h") == 0)
    mul = 3600000;
  else if (strcmp(p, "d") == 0)
    mul = 86400000;
  else
    return PARLEY_EINVAL;
  if (v > UINT64_MAX / mul)
    return PARLEY_ERANGE;
  *out = v * mul;
  return PARLEY_OK;
}

static int digits(const char **pp, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*pp)[i];
    if (c < '0' || c > '9')
      return -1;
    v = v * 10 + (c - '0');
  }
  *pp += n;
  *out = v;
  return 0;
}

int parley_parse_rfc3339_ms(const char *s, int64_t *out) {
  const char *p = s;
  int y, mo, d, h, mi, sec, ms = 0, tzsign = 0, tzh = 0, tzm = 0;
  struct tm tm;
  int64_t t;

  if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
      *p++ != '-' || digits(&p, 2, &d))
    return PARLEY_EINVAL;
  if (*p != 'T' && *p != 't' && *p != ' ')
    return PARLEY_EINVAL;
  p++;
  if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
      *p++ != ':' || digits(&p, 2, &sec))
    return PARLEY_EINVAL;
  if (*p == '.') {
    int scale = 100;
    p++;
    if (!isdigit((unsigned char)*p))
      return PARLEY_EINVAL;
    while (isdigit((unsigned char)*p)) {
      ms += (*p - '0') * scale;
      scale /= 10;
      p++;
    }
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    tzsign = *p == '+' ? 1 : -1;
    p++;
    if (digits(&p, 2, &tzh) || *p++ != ':' || digits(&p, 2, &tzm))
      return PARLEY_EINVAL;
  } else {
    return PARLEY_EINVAL;
  }
  if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
      mi > 59 || sec > 60 || tzh > 23 || tzm > 59)
    return PARLEY_EINVAL;
  memset(&tm, 0, sizeof tm);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  t = (int64_t)timegm(&tm);
  t -= (int64_t)tzsign * (tzh * 3600 + tzm * 60);
  *out = t * 1000 + ms;
  return PARLEY_OK;
}

void parley_format_rfc3339(int64_t ms, char *out, size_t cap) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  char tmp[32];
  gmtime_r(&secs, &tm);
  strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, cap, "%s.%03dZ", tmp, (int)(ms % 1000));
}

int64_t parley_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t parley_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

void parley_id_encode(const uint8_t key[PARLEY_KEY_LEN], char *out) {
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;

  for (size_t i = 0; i < PARLEY_KEY_LEN; i++) {
    acc = (acc << 8) | key[i];
    bits += 8;
    while (bits >= 5) {
      out[o++] = b32[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0)
    out[o++] = b32[(acc << (5 - bits)) & 31];
  out[o] = '\0';
}

int parley_id_decode(const char *text, uint8_t key[PARLEY_KEY_LEN]) {
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;

  if (strlen(text) != PARLEY_ID_TEXT_LEN)
    return PARLEY_EINVAL;
  for (size_t i = 0; i < PARLEY_ID_TEXT_LEN; i++) {
    char c = (char)tolower((unsigned char)text[i]);
    const char *p = strchr(b32, c);
    if (c == '\0' || p == NULL)
      return PARLEY_EINVAL;
    acc = (acc << 5) | (uint32_t)(p - b32);
    bits += 5;
    if (bits >= 8) {
      if (o < PARLEY_KEY_LEN)
        key[o] = (uint8_t)(acc >> (bits - 8));
      o++;
      bits -= 8;
    }
  }
  /* 52 chars = 260 bits: 32 bytes plus 4 padding bits that must be zero. */
  if (o != PARLEY_KEY_LEN || (acc & ((1u << bits) - 1)) != 0)
    return PARLEY_EINVAL;
  return PARLEY_OK;
}

void parley_hex_encode(const uint8_t *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[in[i] >> 4];
    out[2 * i + 1] = hx[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int parley_hex_decode(const char *in, uint8_t *out, size_t n) {
  if (strlen(in) != 2 * n)
    return PARLEY_EINVAL;
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return PARLEY_EINVAL;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return PARLEY_OK;
}

int parley_utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t need;
    uint32_t cp;
    if (c == 0)
      return 0;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      need = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      need = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      need = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (n - i <= need)
      return 0;
    for (size_t k = 1; k <= need; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
        (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += need + 1;
  }
  return 1;
}

int parley_topic_valid(const char *topic, size_t len, size_t max_len) {
  if (len == 0 || len > max_len || topic[0] == '@')
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)topic[i] < 0x21 || (unsigned char)topic[i] > 0x7e)
      return 0;
  return 1;
}
