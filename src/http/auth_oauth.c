/* auth_oauth.c — the OAuth2 client registry, form and Basic parsing, and
 * the client-credentials token endpoint (RFC 6749 4.4, 5.1, 5.2). */
#include "http/auth_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "http/ratelimit.h"

_Static_assert(crypto_pwhash_STRBYTES == AUTH_HASH_CAP, "pwhash str size");

#define SECRET_RANDOM_BYTES 32u
#define JSON_TYPE "application/json;charset=UTF-8"
#define FORM_TYPE "application/x-www-form-urlencoded"
#define ARGON2ID_PREFIX "$argon2id$"

/* ---- the client file ---------------------------------------------------- */
/*
 * DIR/oauth-clients.json:
 *   {"version":1,"clients":[{"client_id":"...","role":"viewer",
 *     "secret_hash":"$argon2id$...","created_ms":N}, ...]}
 */

void parley__auth_clients_clear(struct parley_auth *a) {
  if (a->clients)
    sodium_memzero(a->clients, a->clients_alloc * sizeof *a->clients);
  a->nclients = 0;
}

static int clients_reserve(struct parley_auth *a, size_t n) {
  struct auth_client *c;
  size_t want;
  if (n <= a->clients_alloc)
    return PARLEY_OK;
  want = a->clients_alloc ? a->clients_alloc * 2 : 8;
  while (want < n)
    want *= 2;
  c = parley_calloc(want, sizeof *c);
  if (c == NULL)
    return PARLEY_ENOMEM;
  if (a->nclients)
    memcpy(c, a->clients, a->nclients * sizeof *c);
  if (a->clients) {
    sodium_memzero(a->clients, a->clients_alloc * sizeof *a->clients);
    parley_free(a->clients);
  }
  a->clients = c;
  a->clients_alloc = want;
  return PARLEY_OK;
}

static int client_find(const struct parley_auth *a, const char *id) {
  for (size_t i = 0; i < a->nclients; i++)
    if (strcmp(a->clients[i].id, id) == 0)
      return (int)i;
  return -1;
}

int parley__auth_clients_parse(struct parley_auth *a, const char *text,
                               size_t len) {
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *arr, *it;
  size_t i;
  int rc = PARLEY_ESYNTAX;

  parley__auth_clients_clear(a);
  if (root == NULL) {
    parley__auth_err(a, "%s: line %d: %s", AUTH_CLIENTS_FILE, jerr.line,
                     jerr.text);
    return PARLEY_ESYNTAX;
  }
  arr = json_object_get(root, "clients");
  if (!json_is_integer(json_object_get(root, "version")) ||
      json_integer_value(json_object_get(root, "version")) != 1 ||
      !json_is_array(arr) || json_array_size(arr) > PARLEY_AUTH_MAX_CLIENTS) {
    parley__auth_err(a, "%s: not a version 1 client file", AUTH_CLIENTS_FILE);
    goto out;
  }
  if ((rc = clients_reserve(a, json_array_size(arr))) < 0)
    goto out;
  rc = PARLEY_ESYNTAX;
  json_array_foreach(arr, i, it) {
    struct auth_client *c = &a->clients[i];
    const char *id = json_string_value(json_object_get(it, "client_id"));
    const char *role = json_string_value(json_object_get(it, "role"));
    const char *hash = json_string_value(json_object_get(it, "secret_hash"));
    json_t *created = json_object_get(it, "created_ms");
    if (id == NULL || role == NULL || hash == NULL ||
        !json_is_integer(created) || json_integer_value(created) < 0 ||
        !parley__auth_idchars(id, strlen(id), PARLEY_AUTH_MAX_CLIENT_ID, 1) ||
        parley_auth_role_parse(role, &c->role) < 0 ||
        strncmp(hash, ARGON2ID_PREFIX, strlen(ARGON2ID_PREFIX)) != 0 ||
        strlen(hash) >= AUTH_HASH_CAP || client_find(a, id) >= 0) {
      parley__auth_err(a, "%s: client %zu is invalid or repeated",
                       AUTH_CLIENTS_FILE, i);
      parley__auth_clients_clear(a);
      goto out;
    }
    memcpy(c->id, id, strlen(id) + 1);
    memcpy(c->hash, hash, strlen(hash) + 1);
    c->created_ms = (int64_t)json_integer_value(created);
    a->nclients = i + 1;
  }
  rc = PARLEY_OK;
out:
  json_decref(root);
  return rc;
}

int parley__auth_clients_load(struct parley_auth *a) {
  char *text;
  size_t len;
  struct auth_stamp stamp;
  int rc;
  if (a->dir == NULL)
    return PARLEY_OK;
  rc = parley__auth_read_file(a, AUTH_CLIENTS_FILE, &text, &len, &stamp);
  if (rc == PARLEY_ENOTFOUND) {
    parley__auth_clients_clear(a);
    memset(&a->clients_stamp, 0, sizeof a->clients_stamp);
    return PARLEY_OK;
  }
  if (rc < 0)
    return rc;
  rc = parley__auth_clients_parse(a, text, len);
  parley_free(text);
  if (rc == PARLEY_OK)
    a->clients_stamp = stamp;
  return rc;
}

static int clients_save(struct parley_auth *a) {
  json_t *root, *arr;
  char *text = NULL;
  int rc = PARLEY_ENOMEM;
  if (a->dir == NULL)
    return PARLEY_OK;
  root = json_object();
  arr = json_array();
  if (root == NULL || arr == NULL)
    goto out;
  for (size_t i = 0; i < a->nclients; i++) {
    const struct auth_client *c = &a->clients[i];
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "client_id", c->id, "role",
                          parley_auth_role_name(c->role), "secret_hash",
                          c->hash, "created_ms", (json_int_t)c->created_ms);
    if (o == NULL || json_array_append_new(arr, o) != 0)
      goto out;
  }
  if (json_object_set_new(root, "version", json_integer(1)) != 0 ||
      json_object_set(root, "clients", arr) != 0)
    goto out;
  text = json_dumps(root, JSON_INDENT(2));
  if (text == NULL)
    goto out;
  rc = parley__auth_write_file(a, AUTH_CLIENTS_FILE, text, strlen(text),
                               &a->clients_stamp);
out:
  free(text); /* from json_dumps */
  json_decref(arr);
  json_decref(root);
  return rc;
}

/* Re-reads the file under the lock before a change, so that two processes
 * editing the registry do not lose each other's clients. */
static int clients_begin(struct parley_auth *a, int *lockfd) {
  int rc = parley__auth_lock(a, lockfd);
  if (rc < 0)
    return rc;
  if ((rc = parley__auth_clients_load(a)) < 0) {
    parley__auth_unlock(*lockfd);
    *lockfd = -1;
  }
  return rc;
}

int parley_auth_client_add(struct parley_auth *a, const char *client_id,
                           int role, int64_t now_ms, char *secret_out) {
  uint8_t rnd[SECRET_RANDOM_BYTES];
  char secret[PARLEY_AUTH_SECRET_LEN + 1];
  struct auth_client *c;
  int lockfd, rc;

  secret_out[0] = '\0';
  if (!parley__auth_idchars(client_id,
                            strnlen(client_id, PARLEY_AUTH_MAX_CLIENT_ID + 1),
                            PARLEY_AUTH_MAX_CLIENT_ID, 1) ||
      (role != PARLEY_AUTH_ROLE_VIEWER && role != PARLEY_AUTH_ROLE_ADMIN) ||
      now_ms < 0)
    return PARLEY_EINVAL;
  if ((rc = clients_begin(a, &lockfd)) < 0)
    return rc;
  if (client_find(a, client_id) >= 0) {
    rc = PARLEY_EEXIST;
    goto out;
  }
  if (a->nclients >= PARLEY_AUTH_MAX_CLIENTS) {
    rc = PARLEY_ELIMIT;
    goto out;
  }
  if ((rc = clients_reserve(a, a->nclients + 1)) < 0)
    goto out;
  parley__auth_random(a, rnd, sizeof rnd);
  sodium_bin2base64(secret, sizeof secret, rnd, sizeof rnd,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(rnd, sizeof rnd);
  c = &a->clients[a->nclients];
  memset(c, 0, sizeof *c);
  if (crypto_pwhash_str_alg(c->hash, secret, strlen(secret), a->opslimit,
                            a->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    rc = PARLEY_ENOMEM; /* Argon2 fails only when it cannot allocate */
    goto out;
  }
  memcpy(c->id, client_id, strlen(client_id) + 1);
  c->role = role;
  c->created_ms = now_ms;
  a->nclients++;
  if ((rc = clients_save(a)) < 0) {
    a->nclients--;
    memset(c, 0, sizeof *c);
    goto out;
  }
  memcpy(secret_out, secret, sizeof secret);
  PARLEY_LOG(a->log, PARLEY_LOG_INFO, "auth: registered OAuth client %s (%s)",
             client_id, parley_auth_role_name(role));
out:
  sodium_memzero(secret, sizeof secret);
  parley__auth_unlock(lockfd);
  return rc;
}

int parley_auth_client_remove(struct parley_auth *a, const char *client_id) {
  struct auth_client saved;
  int lockfd, rc, i;
  if ((rc = clients_begin(a, &lockfd)) < 0)
    return rc;
  i = client_find(a, client_id);
  if (i < 0) {
    rc = PARLEY_ENOTFOUND;
    goto out;
  }
  saved = a->clients[i];
  memmove(&a->clients[i], &a->clients[i + 1],
          (a->nclients - (size_t)i - 1) * sizeof *a->clients);
  a->nclients--;
  if ((rc = clients_save(a)) < 0) {
    memmove(&a->clients[i + 1], &a->clients[i],
            (a->nclients - (size_t)i) * sizeof *a->clients);
    a->clients[i] = saved;
    a->nclients++;
  } else {
    PARLEY_LOG(a->log, PARLEY_LOG_INFO, "auth: removed OAuth client %s",
               client_id);
  }
  sodium_memzero(&saved, sizeof saved);
out:
  parley__auth_unlock(lockfd);
  return rc;
}

size_t parley_auth_client_count(const struct parley_auth *a) {
  return a->nclients;
}

int parley_auth_client_get(const struct parley_auth *a, size_t i,
                           struct parley_auth_client_info *out) {
  memset(out, 0, sizeof *out);
  if (i >= a->nclients)
    return PARLEY_ENOTFOUND;
  memcpy(out->client_id, a->clients[i].id, sizeof out->client_id);
  out->role = a->clients[i].role;
  out->created_ms = a->clients[i].created_ms;
  return PARLEY_OK;
}

int parley_auth_client_check(struct parley_auth *a, const char *client_id,
                             const char *secret, int *role) {
  size_t slen = strnlen(secret, PARLEY_AUTH_MAX_SECRET + 1);
  int i = client_find(a, client_id);
  *role = PARLEY_AUTH_ROLE_NONE;
  if (slen > PARLEY_AUTH_MAX_SECRET)
    return PARLEY_EAUTH;
  if (i < 0) {
    /* Spend the same work as for a known client, so response times do not
     * tell which ids exist. */
    if (a->dummy_hash[0] == '\0' &&
        crypto_pwhash_str_alg(a->dummy_hash, "parley", 6, a->opslimit,
                              a->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
      return PARLEY_ENOMEM;
    if (crypto_pwhash_str_verify(a->dummy_hash, secret, slen) == 0) {
      /* The dummy secret is not a valid client secret either. */
    }
    return PARLEY_EAUTH;
  }
  if (crypto_pwhash_str_verify(a->clients[i].hash, secret, slen) != 0)
    return PARLEY_EAUTH;
  *role = a->clients[i].role;
  return PARLEY_OK;
}

/* ---- forms -------------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes src[0..n) ('+' and %XX) to dst (room for n + 1).  0 or -1. */
static int url_decode(const char *src, size_t n, char *dst) {
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    char c = src[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      int hi, lo;
      if (n - i < 3)
        return -1;
      hi = hexval(src[i + 1]);
      lo = hexval(src[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = (char)(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0')
      return -1;
    dst[w++] = c;
  }
  dst[w] = '\0';
  return 0;
}

void parley_auth_form_close(struct parley_auth_form *f) {
  parley_free(f->buf);
  memset(f, 0, sizeof *f);
}

int parley_auth_form_parse(struct parley_auth_form *f, const char *body,
                           size_t len) {
  size_t pos = 0, w = 0;
  memset(f, 0, sizeof *f);
  if (len > PARLEY_AUTH_MAX_FORM)
    return PARLEY_ETOOBIG;
  if (len && body == NULL)
    return PARLEY_EINVAL;
  /* Decoded text is never longer; each field adds at most two NULs. */
  f->buf = parley_malloc(len + 2 * PARLEY_AUTH_MAX_FIELDS + 2);
  if (f->buf == NULL)
    return PARLEY_ENOMEM;
  while (pos < len) {
    const char *pair = body + pos, *amp = memchr(pair, '&', len - pos), *eq;
    size_t plen = amp ? (size_t)(amp - pair) : len - pos;
    size_t nlen, vlen;
    pos += plen + 1;
    if (plen == 0)
      continue;
    if (f->n == PARLEY_AUTH_MAX_FIELDS) {
      parley_auth_form_close(f);
      return PARLEY_ETOOBIG;
    }
    eq = memchr(pair, '=', plen);
    nlen = eq ? (size_t)(eq - pair) : plen;
    vlen = eq ? plen - nlen - 1 : 0;
    f->name[f->n] = f->buf + w;
    if (url_decode(pair, nlen, f->buf + w) < 0)
      goto bad;
    w += strlen(f->buf + w) + 1;
    f->value[f->n] = f->buf + w;
    if (url_decode(eq ? eq + 1 : pair + plen, vlen, f->buf + w) < 0)
      goto bad;
    w += strlen(f->buf + w) + 1;
    f->n++;
  }
  return PARLEY_OK;
bad:
  parley_auth_form_close(f);
  return PARLEY_ESYNTAX;
}

int parley_auth_form_get(const struct parley_auth_form *f, const char *name,
                         const char **value) {
  int found = 0;
  *value = NULL;
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->name[i], name) == 0) {
      if (found++)
        return PARLEY_EEXIST;
      *value = f->value[i];
    }
  return found ? PARLEY_OK : PARLEY_ENOTFOUND;
}

int parley_auth_form_encode(const char *s, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t w = 0;
  if (cap == 0)
    return PARLEY_ETOOBIG;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                c == '~';
    size_t need = plain || c == ' ' ? 1 : 3;
    if (w + need >= cap) {
      out[0] = '\0';
      return PARLEY_ETOOBIG;
    }
    if (plain) {
      out[w++] = (char)c;
    } else if (c == ' ') {
      out[w++] = '+';
    } else {
      out[w++] = '%';
      out[w++] = hex[c >> 4];
      out[w++] = hex[c & 15];
    }
  }
  out[w] = '\0';
  return PARLEY_OK;
}

int parley_auth_basic_parse(const char *value, char *id, size_t idcap,
                            char *secret, size_t secretcap) {
  char raw[3 * (PARLEY_AUTH_MAX_CLIENT_ID + PARLEY_AUTH_MAX_SECRET) + 8];
  char dec[sizeof raw];
  const char *p, *start, *end = NULL, *colon;
  size_t n, rawlen = 0, idlen;
  int rc = PARLEY_ESYNTAX;

  if (idcap)
    id[0] = '\0';
  if (secretcap)
    secret[0] = '\0';
  if (strncasecmp(value, "Basic", 5) != 0 ||
      (value[5] != ' ' && value[5] != '\0'))
    return PARLEY_ENOTFOUND;
  p = value + 5;
  while (*p == ' ')
    p++;
  start = p;
  while (*p && *p != ' ' && *p != '\t')
    p++;
  n = (size_t)(p - start);
  while (*p == ' ' || *p == '\t')
    p++;
  if (n == 0 || *p != '\0')
    return PARLEY_ESYNTAX;
  if (n / 4 * 3 > sizeof raw - 1)
    return PARLEY_ETOOBIG;
  if (sodium_base642bin((unsigned char *)raw, sizeof raw - 1, start, n, NULL,
                        &rawlen, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != start + n)
    goto out;
  if (memchr(raw, '\0', rawlen) != NULL)
    goto out;
  raw[rawlen] = '\0';
  colon = memchr(raw, ':', rawlen);
  if (colon == NULL)
    goto out;
  idlen = (size_t)(colon - raw);
  if (url_decode(raw, idlen, dec) < 0)
    goto out;
  if (strlen(dec) >= idcap) {
    rc = PARLEY_ETOOBIG;
    goto out;
  }
  memcpy(id, dec, strlen(dec) + 1);
  if (url_decode(colon + 1, rawlen - idlen - 1, dec) < 0) {
    id[0] = '\0';
    goto out;
  }
  if (strlen(dec) >= secretcap) {
    id[0] = '\0';
    rc = PARLEY_ETOOBIG;
    goto out;
  }
  memcpy(secret, dec, strlen(dec) + 1);
  rc = PARLEY_OK;
out:
  sodium_memzero(raw, sizeof raw);
  sodium_memzero(dec, sizeof dec);
  return rc;
}

/* ---- the token endpoint ------------------------------------------------- */

void parley_auth_token_response_close(struct parley_auth_token_response *r) {
  if (r->body) {
    sodium_memzero(r->body, r->body_len);
    parley_free(r->body);
  }
  memset(r, 0, sizeof *r);
}

static void resp_headers(struct parley_auth_token_response *r,
                         const char *extra_name, const char *extra_value) {
  size_t h = 0;
  r->headers[h++] = "Cache-Control";
  r->headers[h++] = "no-store";
  r->headers[h++] = "Pragma";
  r->headers[h++] = "no-cache";
  if (extra_name) {
    r->headers[h++] = extra_name;
    r->headers[h++] = extra_value;
  }
  r->headers[h] = NULL;
}

static int resp_body(struct parley_auth_token_response *r, const char *text,
                     size_t len) {
  r->body = parley_strndup(text, len);
  if (r->body == NULL)
    return PARLEY_ENOMEM;
  r->body_len = len;
  return PARLEY_OK;
}

/* An RFC 6749 5.2 error.  descr is a fixed ASCII sentence. */
static int resp_error(struct parley_auth_token_response *r, unsigned status,
                      const char *error, const char *descr) {
  char text[256];
  int n = snprintf(text, sizeof text,
                   "{\"error\":\"%s\",\"error_description\":\"%s\"}", error,
                   descr);
  r->status = status;
  if (status == 401) {
    /* RFC 6749 5.2: a 401 names the authentication scheme. */
    resp_headers(r, "WWW-Authenticate", "Basic realm=\"parley\"");
  } else {
    resp_headers(r, NULL, NULL);
  }
  return resp_body(r, text, (size_t)n);
}

static int content_type_ok(const char *ct) {
  size_t n = strlen(FORM_TYPE);
  if (ct == NULL || strncasecmp(ct, FORM_TYPE, n) != 0)
    return 0;
  ct += n;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  return *ct == '\0' || *ct == ';';
}

/* Parses a scope value: space-separated, each "viewer" or "admin".
 * OUT: *role = the highest named.  -1 for anything else. */
static int scope_parse(const char *s, int *role) {
  *role = PARLEY_AUTH_ROLE_NONE;
  while (*s) {
    const char *e = s;
    size_t n;
    while (*e && *e != ' ')
      e++;
    n = (size_t)(e - s);
    if (n == 6 && memcmp(s, "viewer", 6) == 0) {
      if (*role < PARLEY_AUTH_ROLE_VIEWER)
        *role = PARLEY_AUTH_ROLE_VIEWER;
    } else if (n == 5 && memcmp(s, "admin", 5) == 0) {
      *role = PARLEY_AUTH_ROLE_ADMIN;
    } else if (n != 0) {
      return -1;
    }
    s = *e ? e + 1 : e;
  }
  return *role == PARLEY_AUTH_ROLE_NONE ? -1 : 0;
}

/* A form field that must not repeat; "" counts as absent (RFC 6749 3.1).
 * OUT: *v or NULL.  -1 if repeated. */
static int field(const struct parley_auth_form *f, const char *name,
                 const char **v) {
  int rc = parley_auth_form_get(f, name, v);
  if (rc == PARLEY_EEXIST)
    return -1;
  if (rc < 0 || (*v)[0] == '\0')
    *v = NULL;
  return 0;
}

int parley_auth_token_request(struct parley_auth *a, const char *content_type,
                              const char *body, size_t len,
                              const char *authorization, int64_t now_ms,
                              struct parley_auth_token_response *out) {
  struct parley_auth_form form;
  char basic_id[PARLEY_AUTH_MAX_CLIENT_ID + 1];
  char basic_secret[PARLEY_AUTH_MAX_SECRET + 1];
  char token[PARLEY_AUTH_TOKEN_CAP], text[PARLEY_AUTH_TOKEN_CAP + 128];
  const char *grant, *cid, *csecret, *scope, *id, *secret;
  int have_basic = 0, client_role, role = PARLEY_AUTH_ROLE_NONE, rc, n;

  memset(out, 0, sizeof *out);
  memset(&form, 0, sizeof form);
  basic_id[0] = basic_secret[0] = '\0';
  out->content_type = JSON_TYPE;

  if (!content_type_ok(content_type)) {
    rc = resp_error(out, 400, "invalid_request",
                    "the body must be application/x-www-form-urlencoded");
    goto out;
  }
  if (len > PARLEY_AUTH_MAX_FORM) {
    rc = resp_error(out, 400, "invalid_request", "request body too large");
    goto out;
  }
  rc = parley_auth_form_parse(&form, body, len);
  if (rc == PARLEY_ENOMEM)
    goto out;
  if (rc < 0) {
    rc = resp_error(out, 400, "invalid_request", "malformed form body");
    goto out;
  }
  /* RFC 6749 3.2: parameters must not be repeated. */
  for (size_t i = 0; i < form.n; i++)
    for (size_t j = i + 1; j < form.n; j++)
      if (strcmp(form.name[i], form.name[j]) == 0) {
        rc = resp_error(out, 400, "invalid_request",
                        "a parameter is repeated");
        goto out;
      }
  (void)field(&form, "grant_type", &grant);
  (void)field(&form, "client_id", &cid);
  (void)field(&form, "client_secret", &csecret);
  (void)field(&form, "scope", &scope);
  if (grant == NULL) {
    rc = resp_error(out, 400, "invalid_request", "grant_type is missing");
    goto out;
  }
  if (strcmp(grant, "client_credentials") != 0) {
    rc = resp_error(out, 400, "unsupported_grant_type",
                    "only client_credentials is supported");
    goto out;
  }

  if (authorization) {
    rc = parley_auth_basic_parse(authorization, basic_id, sizeof basic_id,
                                 basic_secret, sizeof basic_secret);
    if (rc < 0) {
      out->client_failed = 1;
      rc = resp_error(out, 401, "invalid_client",
                      "unsupported or malformed client authentication");
      goto out;
    }
    have_basic = 1;
  }
  if (have_basic && csecret) {
    rc = resp_error(out, 400, "invalid_request",
                    "use one client authentication method");
    goto out;
  }
  if (have_basic && cid && strcmp(cid, basic_id) != 0) {
    rc = resp_error(out, 400, "invalid_request",
                    "client_id does not match the credentials");
    goto out;
  }
  id = have_basic ? basic_id : cid;
  secret = have_basic ? basic_secret : csecret;
  if (id == NULL || secret == NULL) {
    out->client_failed = 1;
    rc = resp_error(out, 401, "invalid_client",
                    "client authentication is missing");
    goto out;
  }
  if (scope && scope_parse(scope, &role) < 0) {
    rc = resp_error(out, 400, "invalid_scope",
                    "scope must be viewer or admin");
    goto out;
  }
  snprintf(out->client_id, sizeof out->client_id, "%s",
           parley__auth_idchars(id, strlen(id), PARLEY_AUTH_MAX_CLIENT_ID, 1)
               ? id
               : "");
  rc = parley_auth_client_check(a, id, secret, &client_role);
  if (rc == PARLEY_ENOMEM)
    goto out;
  if (rc < 0) {
    out->client_failed = 1;
    PARLEY_LOG(a->log, PARLEY_LOG_INFO,
               "auth: token request with bad credentials for client '%s'",
               out->client_id);
    rc = resp_error(out, 401, "invalid_client",
                    "client authentication failed");
    goto out;
  }
  if (!scope)
    role = client_role;
  if (role > client_role) {
    rc = resp_error(out, 400, "invalid_scope",
                    "scope exceeds the client's role");
    goto out;
  }
  rc = parley_auth_mint(a, role, a->oauth_ttl_ms, id, NULL, now_ms, token,
                        sizeof token);
  if (rc < 0) {
    /* Only a clock before 1970 or a broken key can get here. */
    rc = resp_error(out, 500, "server_error", "could not mint a token");
    goto out;
  }
  n = snprintf(text, sizeof text,
               "{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
               "\"expires_in\":%llu,\"scope\":\"%s\"}",
               token, (unsigned long long)(a->oauth_ttl_ms / 1000),
               parley_auth_role_name(role));
  out->status = 200;
  resp_headers(out, NULL, NULL);
  rc = resp_body(out, text, (size_t)n);
  sodium_memzero(token, sizeof token);
  sodium_memzero(text, sizeof text);
out:
  sodium_memzero(basic_secret, sizeof basic_secret);
  if (form.buf)
    sodium_memzero(form.buf, len + 2 * PARLEY_AUTH_MAX_FIELDS + 2);
  parley_auth_form_close(&form);
  if (rc < 0)
    parley_auth_token_response_close(out);
  return rc;
}

int parley_auth_token_request_limited(
    struct parley_auth *a, struct parley_rl *rl, const char *peer_key,
    uint64_t mono_ms, const char *content_type, const char *body, size_t len,
    const char *authorization, int64_t now_ms,
    struct parley_auth_token_response *out) {
  uint64_t retry_ms = 0;
  size_t klen = strnlen(peer_key, PARLEY_RL_MAX_KEY + 1);
  int rc;

  memset(out, 0, sizeof *out);
  rc = parley_rl_take(rl, peer_key, klen, 1, mono_ms, &retry_ms);
  if (rc == PARLEY_ELIMIT || rc == PARLEY_EDENIED || rc == PARLEY_ENOMEM) {
    /* Refused before any parsing or hashing.  RFC 6749 has no error code
     * for this; 429 with Retry-After is what HTTP clients understand. */
    static const char text[] =
        "{\"error\":\"invalid_request\","
        "\"error_description\":\"too many requests; retry later\"}";
    uint64_t s = retry_ms / 1000u + (retry_ms % 1000u != 0);
    out->content_type = JSON_TYPE;
    out->status = 429;
    snprintf(out->retry_after, sizeof out->retry_after, "%llu",
             (unsigned long long)(s ? s : 1));
    resp_headers(out, "Retry-After", out->retry_after);
    return resp_body(out, text, sizeof text - 1);
  }
  if (rc < 0)
    return rc; /* EINVAL: a bad key is the caller's bug */
  rc = parley_auth_token_request(a, content_type, body, len, authorization,
                                 now_ms, out);
  if (rc == PARLEY_OK && out->client_failed &&
      parley_rl_strike(rl, peer_key, klen, mono_ms, NULL) == PARLEY_EDENIED)
    PARLEY_LOG(a->log, PARLEY_LOG_WARN,
               "auth: %s banned after repeated bad client credentials",
               peer_key);
  return rc;
}
