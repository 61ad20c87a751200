/* auth_jwt.c — minting and verifying HS256 JWTs; bearer and route checks.
 *
 * libjwt is deliberately not used here: 1.10 decides the algorithm from
 * the token's own header and never looks at exp, so every rule is ours.
 * Parsing is strict so that a token we accept is byte for byte one we
 * could have minted (the fuzzer checks this): unpadded canonical base64url
 * (libsodium rejects non-zero padding bits), JSON without duplicate keys. */
#include "http/auth_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"

#define SIG_B64_LEN 43u /* 32 bytes in unpadded base64url */
#define JTI_RANDOM_BYTES 16u

/* ---- names -------------------------------------------------------------- */

const char *parley_auth_reason_text(int reason) {
  switch (reason) {
#define PARLEY_AUTH_REASON_CASE(name, text)                                   \
  case PARLEY_AUTH_##name:                                                    \
    return text;
    PARLEY_AUTH_REASON_MAP(PARLEY_AUTH_REASON_CASE)
#undef PARLEY_AUTH_REASON_CASE
  default:
    return "unknown reason";
  }
}

const char *parley_auth_role_name(int role) {
  switch (role) {
  case PARLEY_AUTH_ROLE_NONE:
    return "none";
  case PARLEY_AUTH_ROLE_VIEWER:
    return "viewer";
  case PARLEY_AUTH_ROLE_ADMIN:
    return "admin";
  default:
    return NULL;
  }
}

int parley_auth_role_parse(const char *s, int *role) {
  if (strcmp(s, "admin") == 0)
    *role = PARLEY_AUTH_ROLE_ADMIN;
  else if (strcmp(s, "viewer") == 0)
    *role = PARLEY_AUTH_ROLE_VIEWER;
  else
    return PARLEY_EINVAL;
  return PARLEY_OK;
}

/* ---- token parts -------------------------------------------------------- */

struct parts {
  const char *h, *p, *s;
  size_t hl, pl, sl;
};

static int b64url_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Splits "H.P.S" (S may be empty: that is a signature problem, reported
 * later, after the algorithm).  Returns a reason. */
static int split(const char *t, size_t len, struct parts *pt) {
  const char *dot1 = NULL, *dot2 = NULL;
  if (len == 0 || len > PARLEY_AUTH_MAX_TOKEN)
    return PARLEY_AUTH_MALFORMED;
  for (size_t i = 0; i < len; i++) {
    if (t[i] == '.') {
      if (dot1 == NULL)
        dot1 = t + i;
      else if (dot2 == NULL)
        dot2 = t + i;
      else
        return PARLEY_AUTH_MALFORMED;
    } else if (!b64url_char(t[i])) {
      return PARLEY_AUTH_MALFORMED;
    }
  }
  if (dot2 == NULL)
    return PARLEY_AUTH_MALFORMED;
  pt->h = t;
  pt->hl = (size_t)(dot1 - t);
  pt->p = dot1 + 1;
  pt->pl = (size_t)(dot2 - dot1 - 1);
  pt->s = dot2 + 1;
  pt->sl = len - (size_t)(dot2 + 1 - t);
  if (pt->hl == 0 || pt->pl == 0)
    return PARLEY_AUTH_MALFORMED;
  return PARLEY_AUTH_OK;
}

/* Strict unpadded base64url.  OUT: out (cap bytes), *olen.  0 or -1. */
static int b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap,
                         size_t *olen) {
  const char *end = NULL;
  if (sodium_base642bin(out, cap, s, n, NULL, olen, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != s + n)
    return -1;
  return 0;
}

/* Decodes one part into a JSON object.  NULL if it is not one. */
static json_t *part_json(const char *s, size_t n) {
  uint8_t buf[PARLEY_AUTH_MAX_TOKEN];
  size_t blen = 0;
  json_t *j;
  if (n > PARLEY_AUTH_MAX_TOKEN || b64url_decode(s, n, buf, sizeof buf, &blen))
    return NULL;
  j = json_loadb((const char *)buf, blen, JSON_REJECT_DUPLICATES, NULL);
  if (j && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

/* Checks the header.  OUT: kid, *has_typ.  Returns a reason. */
static int header_check(const struct parts *pt, char *kid, int *has_typ) {
  json_t *h = part_json(pt->h, pt->hl), *v;
  const char *k, *s;
  int reason = PARLEY_AUTH_OK;

  *has_typ = 0;
  kid[0] = '\0';
  if (h == NULL)
    return PARLEY_AUTH_MALFORMED;
  /* The algorithm first: whatever else is odd, "none" or "RS256" is
   * reported as what it is. */
  s = json_string_value(json_object_get(h, "alg"));
  if (s == NULL || strcmp(s, "HS256") != 0) {
    reason = PARLEY_AUTH_BAD_ALG;
    goto out;
  }
  json_object_foreach(h, k, v) {
    if (strcmp(k, "alg") == 0)
      continue;
    if (strcmp(k, "typ") == 0) {
      s = json_string_value(v);
      if (s == NULL || strcasecmp(s, "JWT") != 0) {
        reason = PARLEY_AUTH_BAD_HEADER;
        goto out;
      }
      *has_typ = 1;
    } else if (strcmp(k, "kid") == 0) {
      s = json_string_value(v);
      if (s == NULL ||
          !parley__auth_idchars(s, strlen(s), PARLEY_AUTH_MAX_KID, 0)) {
        reason = PARLEY_AUTH_BAD_HEADER;
        goto out;
      }
      memcpy(kid, s, strlen(s) + 1);
    } else {
      /* crit, jku, jwk, x5u, ...: nothing we mint, nothing we follow. */
      reason = PARLEY_AUTH_BAD_HEADER;
      goto out;
    }
  }
  if (kid[0] == '\0')
    reason = PARLEY_AUTH_BAD_HEADER;
out:
  json_decref(h);
  return reason;
}

int parley_auth_jwt_header_parse(const char *token, size_t len,
                                 struct parley_auth_jwt_header *h,
                                 int *reason) {
  struct parts pt;
  int r = split(token, len, &pt);
  memset(h, 0, sizeof *h);
  if (r == PARLEY_AUTH_OK)
    r = header_check(&pt, h->kid, &h->has_typ);
  if (reason)
    *reason = r;
  if (r != PARLEY_AUTH_OK) {
    memset(h, 0, sizeof *h);
    return PARLEY_EAUTH;
  }
  return PARLEY_OK;
}

/* ---- claims ------------------------------------------------------------- */

static int subject_ok(const char *s, size_t n) {
  if (n == 0 || n > PARLEY_AUTH_MAX_SUBJECT)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x20 || s[i] > 0x7e)
      return 0;
  return 1;
}

/* A string claim: MISSING_CLAIM, BAD_CLAIM or OK. */
static int claim_str(json_t *o, const char *name, const char **out) {
  json_t *v = json_object_get(o, name);
  *out = NULL;
  if (v == NULL)
    return PARLEY_AUTH_MISSING_CLAIM;
  if (!json_is_string(v))
    return PARLEY_AUTH_BAD_CLAIM;
  *out = json_string_value(v);
  return PARLEY_AUTH_OK;
}

/* A NumericDate claim: a whole number of seconds in [0, year 9999]. */
static int claim_time(json_t *o, const char *name, int64_t *out) {
  json_t *v = json_object_get(o, name);
  *out = 0;
  if (v == NULL)
    return PARLEY_AUTH_MISSING_CLAIM;
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      json_integer_value(v) > AUTH_MAX_NUMERIC_DATE)
    return PARLEY_AUTH_BAD_CLAIM;
  *out = (int64_t)json_integer_value(v);
  return PARLEY_AUTH_OK;
}

/* Checks the payload's claims.  Returns a reason; fills c. */
static int claims_check(const struct parley_auth *a, json_t *p,
                        int required_role, int64_t now_ms,
                        struct parley_auth_claims *c) {
  const char *iss, *sub, *role, *jti;
  int r, role_v;
  int64_t leeway_ms = (int64_t)a->leeway_s * 1000;

  /* Presence and shape of every claim first, then their meaning. */
  if ((r = claim_str(p, "iss", &iss)) || (r = claim_str(p, "sub", &sub)) ||
      (r = claim_str(p, "role", &role)) || (r = claim_str(p, "jti", &jti)) ||
      (r = claim_time(p, "iat", &c->iat)) ||
      (r = claim_time(p, "nbf", &c->nbf)) ||
      (r = claim_time(p, "exp", &c->exp)))
    return r;
  if (!subject_ok(sub, strlen(sub)) ||
      !parley__auth_idchars(jti, strlen(jti), PARLEY_AUTH_MAX_JTI, 0) ||
      parley_auth_role_parse(role, &role_v) < 0 || c->exp <= c->iat ||
      c->exp <= c->nbf)
    return PARLEY_AUTH_BAD_CLAIM;
  memcpy(c->sub, sub, strlen(sub) + 1);
  memcpy(c->jti, jti, strlen(jti) + 1);
  c->role = role_v;
  if (strcmp(iss, a->issuer) != 0)
    return PARLEY_AUTH_WRONG_ISSUER;
  /* exp: the token is dead from exp on (RFC 7519 4.1.4 "on or after"). */
  if (now_ms >= c->exp * 1000 + leeway_ms)
    return PARLEY_AUTH_EXPIRED;
  if (c->nbf * 1000 > now_ms + leeway_ms || c->iat * 1000 > now_ms + leeway_ms)
    return PARLEY_AUTH_NOT_YET_VALID;
  if (role_v < required_role)
    return PARLEY_AUTH_WRONG_ROLE;
  return PARLEY_AUTH_OK;
}

/* ---- verify ------------------------------------------------------------- */

static int hmac_sign(const uint8_t *key, const char *msg, size_t len,
                     uint8_t mac[crypto_auth_hmacsha256_BYTES]) {
  crypto_auth_hmacsha256_state st;
  if (crypto_auth_hmacsha256_init(&st, key, AUTH_KEY_BYTES) != 0 ||
      crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len) !=
          0 ||
      crypto_auth_hmacsha256_final(&st, mac) != 0) {
    sodium_memzero(&st, sizeof st);
    return PARLEY_EINTERNAL;
  }
  sodium_memzero(&st, sizeof st);
  return PARLEY_OK;
}

int parley_auth_verify(const struct parley_auth *a, const char *token,
                       size_t len, int required_role, int64_t now_ms,
                       struct parley_auth_claims *claims, int *reason) {
  struct parley_auth_claims c;
  struct parts pt;
  uint8_t key[AUTH_KEY_BYTES], sig[crypto_auth_hmacsha256_BYTES + 3],
      mac[crypto_auth_hmacsha256_BYTES];
  size_t slen = 0;
  json_t *payload = NULL;
  int has_typ, r;

  memset(&c, 0, sizeof c);
  if ((r = split(token, len, &pt)) != PARLEY_AUTH_OK ||
      (r = header_check(&pt, c.kid, &has_typ)) != PARLEY_AUTH_OK)
    goto done;
  /* An empty ("alg HS256, signature stripped") or short signature is a bad
   * signature, whatever key it claims. */
  if (pt.sl != SIG_B64_LEN ||
      b64url_decode(pt.s, pt.sl, sig, sizeof sig, &slen) || slen != 32) {
    r = PARLEY_AUTH_BAD_SIGNATURE;
    goto done;
  }
  if (parley__auth_key_lookup(a, c.kid, now_ms, key) < 0) {
    r = PARLEY_AUTH_UNKNOWN_KID;
    goto done;
  }
  if (hmac_sign(key, token, pt.hl + 1 + pt.pl, mac) < 0) {
    sodium_memzero(key, sizeof key);
    memset(&c, 0, sizeof c);
    if (claims)
      memset(claims, 0, sizeof *claims);
    if (reason)
      *reason = PARLEY_AUTH_MALFORMED;
    return PARLEY_EINTERNAL;
  }
  sodium_memzero(key, sizeof key);
  if (crypto_verify_32(mac, sig) != 0) {
    r = PARLEY_AUTH_BAD_SIGNATURE;
    goto done;
  }
  payload = part_json(pt.p, pt.pl);
  if (payload == NULL) {
    r = PARLEY_AUTH_MALFORMED;
    goto done;
  }
  r = claims_check(a, payload, required_role, now_ms, &c);
  json_decref(payload);

done:
  if (reason)
    *reason = r;
  if (r != PARLEY_AUTH_OK && r != PARLEY_AUTH_WRONG_ROLE)
    memset(&c, 0, sizeof c);
  if (claims)
    *claims = c;
  if (r == PARLEY_AUTH_OK)
    return PARLEY_OK;
  return r == PARLEY_AUTH_WRONG_ROLE ? PARLEY_EDENIED : PARLEY_EAUTH;
}

/* ---- mint --------------------------------------------------------------- */

/* Appends s to out as JSON string content (s is printable ASCII). */
static size_t json_escape(const char *s, char *out) {
  size_t w = 0;
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      out[w++] = '\\';
    out[w++] = *s;
  }
  out[w] = '\0';
  return w;
}

/* Encodes n bytes as unpadded base64url at out[*w..]; PARLEY_ETOOBIG. */
static int put_b64(char *out, size_t cap, size_t *w, const void *in,
                   size_t n) {
  size_t need = sodium_base64_ENCODED_LEN(
      n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  if (*w + need > cap)
    return PARLEY_ETOOBIG;
  sodium_bin2base64(out + *w, cap - *w, in, n,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  *w += need - 1;
  return PARLEY_OK;
}

static int put_char(char *out, size_t cap, size_t *w, char c) {
  if (*w + 2 > cap)
    return PARLEY_ETOOBIG;
  out[(*w)++] = c;
  out[*w] = '\0';
  return PARLEY_OK;
}

int parley_auth_mint(struct parley_auth *a, int role, uint64_t ttl_ms,
                     const char *subject, const char *jti, int64_t now_ms,
                     char *out, size_t cap) {
  char header[96], payload[640], sub_esc[2 * PARLEY_AUTH_MAX_SUBJECT + 1];
  char kid[PARLEY_AUTH_MAX_KID + 1], jti_buf[PARLEY_AUTH_MAX_JTI + 1];
  uint8_t key[AUTH_KEY_BYTES], mac[crypto_auth_hmacsha256_BYTES];
  long long iat, exp;
  int hn, pn, rc;
  size_t w = 0;

  if (cap)
    out[0] = '\0';
  if ((role != PARLEY_AUTH_ROLE_VIEWER && role != PARLEY_AUTH_ROLE_ADMIN) ||
      ttl_ms < 1000u || ttl_ms > a->max_ttl_ms || now_ms < 0 ||
      now_ms / 1000 > AUTH_MAX_NUMERIC_DATE - (int64_t)(ttl_ms / 1000) - 1 ||
      !subject_ok(subject, strnlen(subject, PARLEY_AUTH_MAX_SUBJECT + 1)))
    return PARLEY_EINVAL;
  if (jti) {
    if (!parley__auth_idchars(jti, strnlen(jti, PARLEY_AUTH_MAX_JTI + 1),
                              PARLEY_AUTH_MAX_JTI, 0))
      return PARLEY_EINVAL;
    memcpy(jti_buf, jti, strlen(jti) + 1);
  } else {
    uint8_t rnd[JTI_RANDOM_BYTES];
    parley__auth_random(a, rnd, sizeof rnd);
    sodium_bin2base64(jti_buf, sizeof jti_buf, rnd, sizeof rnd,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  }
  if ((rc = parley__auth_key_current(a, now_ms, kid, key)) < 0)
    return rc;

  iat = (long long)(now_ms / 1000);
  /* Rounded up, so that the token lives at least ttl_ms. */
  exp = (long long)((now_ms + (int64_t)ttl_ms + 999) / 1000);
  json_escape(subject, sub_esc);
  hn = snprintf(header, sizeof header,
                "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
  pn = snprintf(payload, sizeof payload,
                "{\"iss\":\"%s\",\"sub\":\"%s\",\"role\":\"%s\",\"iat\":%lld,"
                "\"nbf\":%lld,\"exp\":%lld,\"jti\":\"%s\"}",
                a->issuer, sub_esc, parley_auth_role_name(role), iat, iat, exp,
                jti_buf);
  if (hn < 0 || (size_t)hn >= sizeof header || pn < 0 ||
      (size_t)pn >= sizeof payload) {
    rc = PARLEY_EINTERNAL;
    goto out;
  }
  if ((rc = put_b64(out, cap, &w, header, (size_t)hn)) < 0 ||
      (rc = put_char(out, cap, &w, '.')) < 0 ||
      (rc = put_b64(out, cap, &w, payload, (size_t)pn)) < 0)
    goto out;
  if ((rc = hmac_sign(key, out, w, mac)) < 0 ||
      (rc = put_char(out, cap, &w, '.')) < 0 ||
      (rc = put_b64(out, cap, &w, mac, sizeof mac)) < 0)
    goto out;
out:
  sodium_memzero(key, sizeof key);
  if (rc < 0 && cap)
    out[0] = '\0';
  return rc;
}

/* ---- bearer and routes -------------------------------------------------- */

static int b64token_char(char c) {
  return b64url_char(c) || c == '.' || c == '~' || c == '+' || c == '/';
}

int parley_auth_bearer(const char *value, const char **tok, size_t *len) {
  const char *p, *start;
  *tok = NULL;
  *len = 0;
  if (value == NULL || strncasecmp(value, "Bearer", 6) != 0)
    return PARLEY_ENOTFOUND;
  p = value + 6;
  if (*p != ' ' && *p != '\0')
    return PARLEY_ENOTFOUND; /* "Bearerx ..." is another scheme */
  while (*p == ' ')
    p++;
  start = p;
  while (b64token_char(*p))
    p++;
  while (*p == '=')
    p++;
  if (p == start)
    return PARLEY_ESYNTAX;
  *len = (size_t)(p - start);
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p != '\0') {
    *len = 0;
    return PARLEY_ESYNTAX;
  }
  *tok = start;
  return PARLEY_OK;
}

/* 1 if path is absolute and has no empty, "." or ".." segment, so that a
 * prefix or exact match in the table means what it says. */
static int path_normal(const char *path) {
  const char *p = path;
  if (*p != '/')
    return 0;
  while (*p) {
    const char *seg = ++p, *end = strchr(seg, '/');
    size_t n = end ? (size_t)(end - seg) : strlen(seg);
    if ((n == 0 && end) || (n == 1 && seg[0] == '.') ||
        (n == 2 && seg[0] == '.' && seg[1] == '.'))
      return 0;
    p = seg + n;
  }
  return 1;
}

int parley_auth_route_role(const struct parley_auth_route *table, size_t n,
                           const char *method, const char *path) {
  if (!path_normal(path))
    return PARLEY_AUTH_ROLE_ADMIN; /* odd paths: fail closed */
  for (size_t i = 0; table && i < n; i++) {
    const struct parley_auth_route *r = &table[i];
    size_t pl;
    if (r->method && strcmp(r->method, "*") != 0 &&
        strcmp(r->method, method) != 0)
      continue;
    if (r->path == NULL)
      continue;
    pl = strlen(r->path);
    if (pl && r->path[pl - 1] == '*' ? strncmp(r->path, path, pl - 1) == 0
                                     : strcmp(r->path, path) == 0)
      return r->role;
  }
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
      strcmp(method, "OPTIONS") == 0)
    return PARLEY_AUTH_ROLE_VIEWER;
  return PARLEY_AUTH_ROLE_ADMIN;
}

int parley_auth_check_request(const struct parley_auth *a,
                              const struct parley_auth_route *table, size_t n,
                              const char *method, const char *path,
                              const char *authorization, int64_t now_ms,
                              struct parley_auth_decision *d) {
  const char *tok;
  size_t len;
  int rc;

  memset(d, 0, sizeof *d);
  d->required_role = parley_auth_route_role(table, n, method, path);
  if (d->required_role == PARLEY_AUTH_ROLE_NONE) {
    d->status = 200;
    return PARLEY_OK;
  }
  rc = parley_auth_bearer(authorization, &tok, &len);
  if (rc == PARLEY_ENOTFOUND) {
    /* RFC 6750 3.1: no error code when the request had no credentials. */
    d->status = 401;
    d->reason = PARLEY_AUTH_NO_TOKEN;
    snprintf(d->www_authenticate, sizeof d->www_authenticate,
             "Bearer realm=\"%s\"", a->issuer);
    return PARLEY_EAUTH;
  }
  if (rc < 0) {
    d->reason = PARLEY_AUTH_MALFORMED;
    rc = PARLEY_EAUTH;
  } else {
    rc = parley_auth_verify(a, tok, len, d->required_role, now_ms, &d->claims,
                            &d->reason);
  }
  if (rc == PARLEY_OK) {
    d->status = 200;
    return PARLEY_OK;
  }
  if (rc == PARLEY_EDENIED) {
    d->status = 403;
    memset(&d->claims, 0, sizeof d->claims);
    snprintf(d->www_authenticate, sizeof d->www_authenticate,
             "Bearer realm=\"%s\", error=\"insufficient_scope\", "
             "error_description=\"%s\"",
             a->issuer, parley_auth_reason_text(d->reason));
    return PARLEY_EDENIED;
  }
  d->status = 401;
  snprintf(d->www_authenticate, sizeof d->www_authenticate,
           "Bearer realm=\"%s\", error=\"invalid_token\", "
           "error_description=\"%s\"",
           a->issuer, parley_auth_reason_text(d->reason));
  return rc == PARLEY_EAUTH ? PARLEY_EAUTH : rc;
}
