/*
 * fuzz_jwt.c — token verification, the form and Basic parsers, the bearer
 * and header parsers, and the token endpoint (src/http/auth*.c).
 *
 * The first byte picks what the rest of the input is:
 *   0: a token, verified at a fixed time against a fixed cluster key.  It
 *      must never crash; when it is accepted it must be byte for byte the
 *      token we would mint for its claims (re-minted here and compared), so
 *      a mutated token is accepted only if it is not mutated at all.  The
 *      header parser must agree with verify on the header.
 *   1: a form body.  When it parses, encoding the fields again and
 *      parsing that must give the same fields (the bytes may differ: '+'
 *      versus %20, %41 versus A, empty pairs are dropped, so the check is
 *      parse(encode(parse(x))) == parse(x)).
 *   2: an Authorization header value for the Bearer and Basic parsers.
 *   3: a token request body (with the rest of the input up to a NUL as the
 *      Authorization value, if there is a NUL).  The secret of the one
 *      registered client is random, so it must never succeed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

#define T0 1700000000000ll

static struct parley_auth *auth;

static void setup(void) {
  static const uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,
                                  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24,
                                  25, 26, 27, 28, 29, 30, 31, 32};
  struct parley_auth_config c;
  char secret[PARLEY_AUTH_SECRET_LEN + 1];
  if (auth)
    return;
  memset(&c, 0, sizeof c);
  c.cluster_key = key; /* and no directory: nothing touches the disk */
  c.pwhash_opslimit = 1;
  c.pwhash_memlimit = 8192;
  CHECK(parley_auth_new(&c, T0, &auth, NULL, 0) == PARLEY_OK);
  CHECK(parley_auth_client_add(auth, "fz", PARLEY_AUTH_ROLE_ADMIN, T0,
                               secret) == PARLEY_OK);
}

static void fuzz_token(const char *t, size_t n) {
  struct parley_auth_claims c;
  struct parley_auth_jwt_header h;
  char again[PARLEY_AUTH_TOKEN_CAP];
  int reason = -1, hreason = -1;
  int rc = parley_auth_verify(auth, t, n, PARLEY_AUTH_ROLE_NONE, T0 + 1000, &c,
                              &reason);
  int hrc = parley_auth_jwt_header_parse(t, n, &h, &hreason);

  CHECK(rc == PARLEY_OK || rc == PARLEY_EAUTH);
  CHECK((rc == PARLEY_OK) == (reason == PARLEY_AUTH_OK));
  CHECK(parley_auth_reason_text(reason) != NULL);
  /* A header verify got past is one the header parser accepts. */
  if (reason != PARLEY_AUTH_MALFORMED && reason != PARLEY_AUTH_BAD_ALG &&
      reason != PARLEY_AUTH_BAD_HEADER)
    CHECK(hrc == PARLEY_OK);
  if (hrc != PARLEY_OK)
    CHECK(rc != PARLEY_OK && hreason == reason);
  if (rc != PARLEY_OK)
    return;
  CHECK(strcmp(h.kid, c.kid) == 0);
  CHECK(parley_auth_mint(auth, c.role, (uint64_t)(c.exp - c.iat) * 1000u,
                         c.sub, c.jti, c.iat * 1000, again,
                         sizeof again) == PARLEY_OK);
  CHECK(strlen(again) == n && memcmp(again, t, n) == 0);
}

static void fuzz_form(const char *b, size_t n) {
  struct parley_auth_form f, g;
  char enc[PARLEY_AUTH_MAX_FORM + 1], part[PARLEY_AUTH_MAX_FORM + 1];
  size_t w = 0;

  if (parley_auth_form_parse(&f, b, n) != PARLEY_OK) {
    CHECK(f.n == 0 && f.buf == NULL);
    return;
  }
  CHECK(f.n <= PARLEY_AUTH_MAX_FIELDS);
  enc[0] = '\0';
  for (size_t i = 0; i < f.n; i++) {
    size_t l;
    for (int k = 0; k < 2; k++) {
      if (parley_auth_form_encode(k ? f.value[i] : f.name[i], part,
                                  sizeof part) != PARLEY_OK)
        goto out; /* grew past the cap: nothing to compare */
      l = strlen(part);
      if (w + l + 2 > sizeof enc)
        goto out;
      memcpy(enc + w, part, l);
      w += l;
      enc[w++] = k ? '&' : '=';
    }
  }
  if (w)
    w--; /* the last '&' */
  if (w > PARLEY_AUTH_MAX_FORM)
    goto out;
  CHECK(parley_auth_form_parse(&g, enc, w) == PARLEY_OK);
  CHECK(g.n == f.n);
  for (size_t i = 0; i < f.n; i++) {
    CHECK(strcmp(g.name[i], f.name[i]) == 0);
    CHECK(strcmp(g.value[i], f.value[i]) == 0);
  }
  parley_auth_form_close(&g);
out:
  parley_auth_form_close(&f);
}

static void fuzz_header(const char *v) {
  char id[PARLEY_AUTH_MAX_CLIENT_ID + 1], secret[PARLEY_AUTH_MAX_SECRET + 1];
  const char *tok;
  size_t len;
  int rc = parley_auth_bearer(v, &tok, &len);
  if (rc == PARLEY_OK) {
    CHECK(len > 0 && tok >= v && tok + len <= v + strlen(v));
  } else {
    CHECK(tok == NULL && len == 0);
  }
  rc = parley_auth_basic_parse(v, id, sizeof id, secret, sizeof secret);
  CHECK(strlen(id) < sizeof id && strlen(secret) < sizeof secret);
  if (rc != PARLEY_OK)
    CHECK(id[0] == '\0' && secret[0] == '\0');
}

static void fuzz_endpoint(const char *b, size_t n) {
  struct parley_auth_token_response r;
  const char *nul = memchr(b, '\0', n);
  const char *authz = NULL;
  if (nul) {
    authz = b;
    n -= (size_t)(nul + 1 - b);
    b = nul + 1;
  }
  CHECK(parley_auth_token_request(auth, "application/x-www-form-urlencoded",
                                  b, n, authz, T0, &r) == PARLEY_OK);
  CHECK(r.status == 400 || r.status == 401);
  CHECK(r.body != NULL && r.body_len == strlen(r.body));
  parley_auth_token_response_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s;
  if (size < 1 || size > 8192)
    return 0;
  setup();
  /* A NUL-terminated copy, so that overreads show up under ASan. */
  s = malloc(size);
  if (s == NULL)
    return 0;
  memcpy(s, data + 1, size - 1);
  s[size - 1] = '\0';
  switch (data[0] & 3) {
  case 0:
    fuzz_token(s, size - 1);
    break;
  case 1:
    fuzz_form(s, size - 1);
    break;
  case 2:
    fuzz_header(s);
    break;
  default:
    fuzz_endpoint(s, size - 1);
    break;
  }
  free(s);
  return 0;
}
