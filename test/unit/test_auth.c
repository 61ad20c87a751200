/* test_auth.c — JWT minting and verification, signing keys and rotation,
 * the OAuth2 client registry and token endpoint (src/http/auth*.c).
 *
 * Tokens with bad claims but good signatures are made two ways: by hand
 * (sign_raw, libsodium's HMAC over any header and payload text) and with
 * libjwt, which also serves as the witness that Debian's libjwt 1.10 would
 * have accepted tokens we must refuse.  Times are fixed literals; keys come
 * from a fixed cluster key or a counting "random" source, so tokens are
 * pinned byte for byte (the expected strings were computed independently
 * with Python's hmac and hashlib.blake2b). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "http/auth.h"
#include "http/ratelimit.h"

#define T0 1700000000000ll /* 2023-11-14T22:13:20Z, a whole second */
#define HOUR 3600000ll

/* ---- fixtures ----------------------------------------------------------- */

struct fake_rng {
  uint8_t next;
};

static void fake_random(void *ctx, void *buf, size_t n) {
  struct fake_rng *r = ctx;
  uint8_t *p = buf;
  for (size_t i = 0; i < n; i++)
    p[i] = r->next++;
}

static void make_dir(char *path, size_t cap) {
  snprintf(path, cap, "/tmp/parley-test-auth-XXXXXX");
  assert_non_null(mkdtemp(path));
}

static void remove_dir(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  char f[512];
  assert_non_null(d);
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(f, sizeof f, "%s/%s", path, e->d_name);
    assert_int_equal(unlink(f), 0);
  }
  closedir(d);
  assert_int_equal(rmdir(path), 0);
}

static struct parley_auth_config cfg_for(const char *dir) {
  struct parley_auth_config c;
  memset(&c, 0, sizeof c);
  c.dir = dir;
  c.pwhash_opslimit = crypto_pwhash_OPSLIMIT_MIN;
  c.pwhash_memlimit = crypto_pwhash_MEMLIMIT_MIN;
  return c;
}

static const uint8_t cluster_key[32] = {1,  2,  3,  4,  5,  6,  7,  8,
                                        9,  10, 11, 12, 13, 14, 15, 16,
                                        17, 18, 19, 20, 21, 22, 23, 24,
                                        25, 26, 27, 28, 29, 30, 31, 32};

static struct parley_auth *new_cluster(uint64_t epoch_ms, uint64_t grace_ms,
                                       uint32_t leeway_s) {
  struct parley_auth_config c = cfg_for(NULL);
  struct parley_auth *a = NULL;
  c.cluster_key = cluster_key;
  c.epoch_ms = epoch_ms;
  c.grace_ms = grace_ms;
  c.leeway_s = leeway_s;
  assert_int_equal(parley_auth_new(&c, T0, &a, NULL, 0), PARLEY_OK);
  return a;
}

/* The key of cluster epoch e, derived here independently of auth.c. */
static void epoch_key(uint64_t e, uint8_t key[32]) {
  static const char ctx[8] = {'p', 'a', 'r', 'l', 'e', 'y', 'J', 'W'};
  assert_int_equal(crypto_kdf_derive_from_key(key, 32, e, ctx, cluster_key),
                   0);
}

static void b64url(const void *in, size_t n, char *out, size_t cap) {
  sodium_bin2base64(out, cap, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* HS256-signs arbitrary header and payload text with key. */
static void sign_raw(const uint8_t key[32], const char *hdr, const char *pl,
                     char *out, size_t cap) {
  char h[1024], p[2048], s[64];
  uint8_t mac[32];
  b64url(hdr, strlen(hdr), h, sizeof h);
  b64url(pl, strlen(pl), p, sizeof p);
  int w = snprintf(out, cap, "%s.%s", h, p);
  assert_true(w >= 0 && (size_t)w < cap); /* a cut token tests nothing */
  crypto_auth_hmacsha256(mac, (const uint8_t *)out, strlen(out), key);
  b64url(mac, sizeof mac, s, sizeof s);
  strncat(out, ".", cap - strlen(out) - 1);
  strncat(out, s, cap - strlen(out) - 1);
}

/* parley_auth_verify's reason for token (NUL-terminated). */
static int why(const struct parley_auth *a, const char *token, int role,
               int64_t now) {
  struct parley_auth_claims c;
  int reason = -1;
  int rc = parley_auth_verify(a, token, strlen(token), role, now, &c, &reason);
  if (reason == PARLEY_AUTH_OK)
    assert_int_equal(rc, PARLEY_OK);
  else if (reason == PARLEY_AUTH_WRONG_ROLE)
    assert_int_equal(rc, PARLEY_EDENIED);
  else
    assert_int_equal(rc, PARLEY_EAUTH);
  return reason;
}

/* libjwt 1.10's verdict: 0 = it would accept the token. */
static int libjwt_decode(const char *token, const uint8_t *key) {
  jwt_t *j = NULL;
  int rc = jwt_decode(&j, token, key, key ? 32 : 0);
  jwt_free(j);
  return rc;
}

#define GOOD_HDR_C2810 "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"c2810\"}"
#define GOOD_PAYLOAD                                                          \
  "{\"iss\":\"parley-index\",\"sub\":\"alice\",\"role\":\"admin\","           \
  "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700003600,"                 \
  "\"jti\":\"jti-1\"}"

/* ---- pinned tokens ------------------------------------------------------ */

static void test_pinned_cluster_token(void **state) {
  struct parley_auth *a = new_cluster(0, 0, 0);
  struct parley_auth_claims c;
  char tok[PARLEY_AUTH_TOKEN_CAP], raw[PARLEY_AUTH_TOKEN_CAP];
  uint8_t key[32];
  int reason;
  (void)state;

  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_ADMIN, HOUR, "alice",
                                    "jti-1", T0, tok, sizeof tok),
                   PARLEY_OK);
  assert_string_equal(
      tok,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImMyODEwIn0."
      "eyJpc3MiOiJwYXJsZXktaW5kZXgiLCJzdWIiOiJhbGljZSIsInJvbGUiOiJhZG1pbiIsIm"
      "lhdCI6MTcwMDAwMDAwMCwibmJmIjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDAsImp0"
      "aSI6Imp0aS0xIn0.-7MNov60H5DExz2cc_6J2heJZL6A9C9xLMhBTqUzgF4");
  /* The same bytes from the hand signer with the independently derived
   * key: header, payload and HMAC layouts agree. */
  epoch_key(2810, key);
  sign_raw(key, GOOD_HDR_C2810, GOOD_PAYLOAD, raw, sizeof raw);
  assert_string_equal(raw, tok);

  assert_int_equal(parley_auth_verify(a, tok, strlen(tok),
                                      PARLEY_AUTH_ROLE_ADMIN, T0 + 1000, &c,
                                      &reason),
                   PARLEY_OK);
  assert_int_equal(reason, PARLEY_AUTH_OK);
  assert_string_equal(c.sub, "alice");
  assert_string_equal(c.jti, "jti-1");
  assert_string_equal(c.kid, "c2810");
  assert_int_equal(c.role, PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(c.iat, 1700000000);
  assert_int_equal(c.nbf, 1700000000);
  assert_int_equal(c.exp, 1700003600);
  /* libjwt agrees the signature is good. */
  assert_int_equal(libjwt_decode(tok, key), 0);

  /* Random jti: 16 bytes in base64url, different each time. */
  {
    char t2[PARLEY_AUTH_TOKEN_CAP];
    assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "bob",
                                      NULL, T0, tok, sizeof tok),
                     PARLEY_OK);
    assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "bob",
                                      NULL, T0, t2, sizeof t2),
                     PARLEY_OK);
    assert_string_not_equal(tok, t2);
    assert_int_equal(parley_auth_verify(a, tok, strlen(tok),
                                        PARLEY_AUTH_ROLE_VIEWER, T0, &c, NULL),
                     PARLEY_OK);
    assert_int_equal(strlen(c.jti), 22);
  }
  parley_auth_free(a);
}

static void test_pinned_file_token_and_key_file(void **state) {
  char dir[64], path[128], tok[PARLEY_AUTH_TOKEN_CAP];
  struct fake_rng rng = {0};
  struct parley_auth_config cfg;
  struct parley_auth *a = NULL, *b = NULL;
  struct stat st;
  char kid[PARLEY_AUTH_MAX_KID + 1];
  int64_t until = -1;
  (void)state;

  make_dir(dir, sizeof dir);
  cfg = cfg_for(dir);
  cfg.random = fake_random;
  cfg.random_ctx = &rng;
  assert_int_equal(parley_auth_new(&cfg, T0, &a, NULL, 0), PARLEY_OK);
  /* Created on first use, mode 0600. */
  snprintf(path, sizeof path, "%s/jwt-keys.json", dir);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(parley_auth_key_count(a, T0), 1);
  assert_int_equal(parley_auth_key_info(a, T0, 0, kid, &until), PARLEY_OK);
  assert_string_equal(kid, "ICEiIyQlJicoKSor"); /* bytes 32..43 */
  assert_int_equal(until, 0);
  assert_int_equal(parley_auth_key_info(a, T0, 1, kid, &until),
                   PARLEY_ENOTFOUND);

  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, 900000,
                                    "ops@example", "abc_DEF-1", T0, tok,
                                    sizeof tok),
                   PARLEY_OK);
  assert_string_equal(
      tok,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IklDRWlJeVFsSmljb0tTb3IifQ."
      "eyJpc3MiOiJwYXJsZXktaW5kZXgiLCJzdWIiOiJvcHNAZXhhbXBsZSIsInJvbGUiOiJ2aW"
      "V3ZXIiLCJpYXQiOjE3MDAwMDAwMDAsIm5iZiI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAw"
      "OTAwLCJqdGkiOiJhYmNfREVGLTEifQ."
      "Hcs2xnJfBukaLSjETa649talCLoNkll6p79AfFh9WPQ");

  /* A second instance (the CLI) loads the same key: no new key is made. */
  cfg.random = NULL;
  assert_int_equal(parley_auth_new(&cfg, T0, &b, NULL, 0), PARLEY_OK);
  assert_int_equal(parley_auth_key_count(b, T0), 1);
  assert_int_equal(why(b, tok, PARLEY_AUTH_ROLE_VIEWER, T0), PARLEY_AUTH_OK);
  parley_auth_free(b);
  parley_auth_free(a);
  remove_dir(dir);
}

/* ---- algorithm pinning -------------------------------------------------- */

static void test_wrong_algorithms(void **state) {
  struct parley_auth *a = new_cluster(0, 0, 0);
  uint8_t key[32];
  char tok[2048], h[256], p[1024];
  static const char *const bad_headers[] = {
      "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":\"None\",\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":\"NONE\",\"kid\":\"c2810\"}",
      "{\"alg\":\"HS512\",\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":\"HS384\",\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":\"hs256\",\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":\"HS256 \",\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":256,\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"alg\":null,\"typ\":\"JWT\",\"kid\":\"c2810\"}",
      "{\"typ\":\"JWT\",\"kid\":\"c2810\"}",
  };
  (void)state;
  epoch_key(2810, key);
  /* Even correctly HMAC-SHA256-signed: the header's alg decides nothing. */
  for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
    sign_raw(key, bad_headers[i], GOOD_PAYLOAD, tok, sizeof tok);
    assert_int_equal(why(a, tok, PARLEY_AUTH_ROLE_NONE, T0), PARLEY_AUTH_BAD_ALG);
  }
  /* alg none, empty signature: libjwt 1.10 accepts it when the caller
   * passes no key (as one does for an unknown kid); we refuse. */
  b64url("{\"alg\":\"none\"}", 14, h, sizeof h);
  b64url(GOOD_PAYLOAD, strlen(GOOD_PAYLOAD), p, sizeof p);
  snprintf(tok, sizeof tok, "%s.%s.", h, p);
  assert_int_equal(libjwt_decode(tok, NULL), 0);
  assert_int_equal(why(a, tok, PARLEY_AUTH_ROLE_NONE, T0), PARLEY_AUTH_BAD_ALG);
  /* ... and the alg check comes before anything about the kid. */
  b64url("{\"alg\":\"none\",\"kid\":\"nope\"}", 27, h, sizeof h);
  snprintf(tok, sizeof tok, "%s.%s.", h, p);
  assert_int_equal(why(a, tok, PARLEY_AUTH_ROLE_NONE, T0), PARLEY_AUTH_BAD_ALG);
  parley_auth_free(a);
}

static void test_signatures(void **state) {
  struct parley_auth *a = new_cluster(0, 0, 0);
  char tok[PARLEY_AUTH_TOKEN_CAP], t[2048], h[256], p[1024];
  static const char forged[] =
      "{\"iss\":\"parley-index\",\"sub\":\"root\",\"role\":\"admin\","
      "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700003600,"
      "\"jti\":\"jti-1\"}";
  const char *dot;
  uint8_t key[32], other[32];
  size_t n;
  (void)state;

  epoch_key(2810, key);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_ADMIN, HOUR, "alice",
                                    "jti-1", T0, tok, sizeof tok),
                   PARLEY_OK);
  n = strlen(tok);
  dot = strrchr(tok, '.');

  /* HS256 with the signature stripped: libjwt without a key accepts it. */
  snprintf(t, sizeof t, "%.*s.", (int)(dot - tok), tok);
  assert_int_equal(libjwt_decode(t, NULL), 0);
  assert_int_equal(why(a, t, PARLEY_AUTH_ROLE_NONE, T0),
                   PARLEY_AUTH_BAD_SIGNATURE);
  /* Two parts only. */
  snprintf(t, sizeof t, "%.*s", (int)(dot - tok), tok);
  assert_int_equal(why(a, t, PARLEY_AUTH_ROLE_NONE, T0), PARLEY_AUTH_MALFORMED);
  /* Any flipped signature character. */
  for (size_t i = (size_t)(dot - tok) + 1; i < n; i++) {
    memcpy(t, tok, n + 1);
    t[i] = t[i] == 'A' ? 'B' : 'A';
    assert_int_equal(why(a, t, PARLEY_AUTH_ROLE_NONE, T0),
                     PARLEY_AUTH_BAD_SIGNATURE);
  }
  /* Non-canonical base64url: the last character of a 43-char signature
   * carries 2 padding bits; setting them must not give the same bytes.
   * '4' (56) -> '5' (57) only changes a padding bit. */
  memcpy(t, tok, n + 1);
  assert_int_equal(t[n - 1], '4');
  t[n - 1] = '5';
  assert_int_equal(why(a, t, PARLEY_AUTH_ROLE_NONE, T0),
                   PARLEY_AUTH_BAD_SIGNATURE);
  /* A forged payload (another subject) under the original signature. */
  b64url(GOOD_HDR_C2810, strlen(GOOD_HDR_C2810), h, sizeof h);
  b64url(forged, strlen(forged), p, sizeof p);
  snprintf(t, sizeof t, "%s.%s%s", h, p, dot);
  assert_int_equal(libjwt_decode(t, NULL), 0); /* no key: no check */
  assert_int_equal(libjwt_decode(t, key), EINVAL);
  assert_int_equal(why(a, t, PARLEY_AUTH_ROLE_NONE, T0),
                   PARLEY_AUTH_BAD_SIGNATURE);
  /* Signed with another key (another cluster). */
  memset(other, 0x55, sizeof other);
  sign_raw(other, GOOD_HDR_C2810, GOOD_PAYLOAD, t, sizeof t);
  assert_int_equal(why(a, t, PARLEY_AUTH_ROLE_NONE, T0),
                   PARLEY_AUTH_BAD_SIGNATURE);
  parley_auth_free(a);
}

/* ---- claims ------------------------------------------------------------- */

static void test_claims(void **state) {
  struct parley_auth *a = new_cluster(0, 0, 0);
  char tok[2048], pl[512];
  uint8_t key[32];
  struct {
    const char *payload;
    int reason;
  } cases[] = {
      /* expired an hour ago */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1699990000,\"nbf\":1699990000,\"exp\":1699996400,\"jti\":\"j\"}",
       PARLEY_AUTH_EXPIRED},
      /* exp missing */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"jti\":\"j\"}",
       PARLEY_AUTH_MISSING_CLAIM},
      /* role missing */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"iat\":1700000000,\"nbf\":"
       "1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_MISSING_CLAIM},
      /* role superuser */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"superuser\","
       "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":"
       "\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      /* role in another case */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"Admin\","
       "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":"
       "\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      /* another issuer */
      {"{\"iss\":\"evil-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_WRONG_ISSUER},
      /* issuer missing */
      {"{\"sub\":\"a\",\"role\":\"admin\",\"iat\":1700000000,\"nbf\":"
       "1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_MISSING_CLAIM},
      /* sub, jti, iat, nbf missing */
      {"{\"iss\":\"parley-index\",\"role\":\"admin\",\"iat\":1700000000,"
       "\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_MISSING_CLAIM},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":1700003600}",
       PARLEY_AUTH_MISSING_CLAIM},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"nbf\":"
       "1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_MISSING_CLAIM},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_MISSING_CLAIM},
      /* exp as a string, as a real, negative, past year 9999 */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":\"1700003600\",\"jti\":\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":1700003600.5,\"jti\":\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":-1,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":253402300800,\"jti\":\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      /* exp not after iat */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700003600,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      /* empty sub, control character in sub, bad jti */
      {"{\"iss\":\"parley-index\",\"sub\":\"\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\\n\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"j j\"}",
       PARLEY_AUTH_BAD_CLAIM},
      /* not yet valid: nbf, iat in the future */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000100,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_NOT_YET_VALID},
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000100,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"j\"}",
       PARLEY_AUTH_NOT_YET_VALID},
      /* duplicate claim (which one would a parser pick?) */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"viewer\",\"role\":"
       "\"admin\",\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700003600,"
       "\"jti\":\"j\"}",
       PARLEY_AUTH_MALFORMED},
      /* not an object, not JSON */
      {"[1,2,3]", PARLEY_AUTH_MALFORMED},
      {"{\"iss\":", PARLEY_AUTH_MALFORMED},
      /* all fine, with an extra claim (ignored) */
      {"{\"iss\":\"parley-index\",\"sub\":\"a\",\"role\":\"admin\",\"iat\":"
       "1700000000,\"nbf\":1700000000,\"exp\":1700003600,\"jti\":\"j\","
       "\"aud\":\"x\"}",
       PARLEY_AUTH_OK},
  };
  (void)state;
  epoch_key(2810, key);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sign_raw(key, GOOD_HDR_C2810, cases[i].payload, tok, sizeof tok);
    if (why(a, tok, PARLEY_AUTH_ROLE_VIEWER, T0) != cases[i].reason)
      fail_msg("case %zu: got %s, want %s", i,
               parley_auth_reason_text(why(a, tok, PARLEY_AUTH_ROLE_VIEWER,
                                           T0)),
               parley_auth_reason_text(cases[i].reason));
  }

  /* libjwt, given the right key, accepts the expired, exp-less, role-less,
   * superuser and foreign-issuer tokens: it checks none of that. */
  for (size_t i = 0; i < 6; i++) {
    jwt_t *j = NULL;
    char *t;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_header(j, "kid", "c2810"), 0);
    snprintf(pl, sizeof pl, "%s", cases[i].payload);
    assert_int_equal(jwt_add_grants_json(j, pl), 0);
    assert_int_equal(jwt_set_alg(j, JWT_ALG_HS256, key, 32), 0);
    t = jwt_encode_str(j);
    assert_non_null(t);
    assert_int_equal(libjwt_decode(t, key), 0);
    assert_int_equal(why(a, t, PARLEY_AUTH_ROLE_VIEWER, T0), cases[i].reason);
    free(t);
    jwt_free(j);
  }
  parley_auth_free(a);
}

static void test_expiry_and_leeway(void **state) {
  struct parley_auth *a = new_cluster(0, 0, 0);
  struct parley_auth *l = new_cluster(0, 0, 5);
  char tok[PARLEY_AUTH_TOKEN_CAP];
  (void)state;
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, 60000, "x",
                                    NULL, T0, tok, sizeof tok),
                   PARLEY_OK);
  /* exp = T0/1000 + 60: dead from that second on. */
  assert_int_equal(why(a, tok, 0, T0 + 59999), PARLEY_AUTH_OK);
  assert_int_equal(why(a, tok, 0, T0 + 60000), PARLEY_AUTH_EXPIRED);
  assert_int_equal(why(a, tok, 0, T0 - 1), PARLEY_AUTH_NOT_YET_VALID);
  assert_int_equal(why(a, tok, 0, T0), PARLEY_AUTH_OK);
  /* 5 s of leeway each way. */
  assert_int_equal(why(l, tok, 0, T0 + 64999), PARLEY_AUTH_OK);
  assert_int_equal(why(l, tok, 0, T0 + 65000), PARLEY_AUTH_EXPIRED);
  assert_int_equal(why(l, tok, 0, T0 - 5000), PARLEY_AUTH_OK);
  assert_int_equal(why(l, tok, 0, T0 - 5001), PARLEY_AUTH_NOT_YET_VALID);
  /* Sub-second now: iat rounds down, exp up, so the token lives at least
   * its ttl: minted at T0 + 0.999 s for 1 s, it ends at T0 + 2 s. */
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, 1000, "x",
                                    NULL, T0 + 999, tok, sizeof tok),
                   PARLEY_OK);
  assert_int_equal(why(a, tok, 0, T0 + 1999), PARLEY_AUTH_OK);
  assert_int_equal(why(a, tok, 0, T0 + 2000), PARLEY_AUTH_EXPIRED);
  parley_auth_free(l);
  parley_auth_free(a);
}

static void test_roles(void **state) {
  struct parley_auth *a = new_cluster(0, 0, 0);
  char v[PARLEY_AUTH_TOKEN_CAP], ad[PARLEY_AUTH_TOKEN_CAP];
  struct parley_auth_claims c;
  int reason;
  (void)state;
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "v",
                                    NULL, T0, v, sizeof v),
                   PARLEY_OK);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_ADMIN, HOUR, "a",
                                    NULL, T0, ad, sizeof ad),
                   PARLEY_OK);
  assert_int_equal(why(a, v, PARLEY_AUTH_ROLE_NONE, T0), PARLEY_AUTH_OK);
  assert_int_equal(why(a, v, PARLEY_AUTH_ROLE_VIEWER, T0), PARLEY_AUTH_OK);
  assert_int_equal(why(a, ad, PARLEY_AUTH_ROLE_VIEWER, T0), PARLEY_AUTH_OK);
  assert_int_equal(why(a, ad, PARLEY_AUTH_ROLE_ADMIN, T0), PARLEY_AUTH_OK);
  assert_int_equal(parley_auth_verify(a, v, strlen(v), PARLEY_AUTH_ROLE_ADMIN,
                                      T0, &c, &reason),
                   PARLEY_EDENIED);
  assert_int_equal(reason, PARLEY_AUTH_WRONG_ROLE);
  assert_string_equal(c.sub, "v"); /* who was refused, for the log */
  assert_int_equal(c.role, PARLEY_AUTH_ROLE_VIEWER);
  /* Expiry outranks the role. */
  assert_int_equal(why(a, v, PARLEY_AUTH_ROLE_ADMIN, T0 + HOUR),
                   PARLEY_AUTH_EXPIRED);
  assert_string_equal(parley_auth_role_name(PARLEY_AUTH_ROLE_ADMIN), "admin");
  assert_null(parley_auth_role_name(7));
  parley_auth_free(a);
}

static void test_header_rules(void **state) {
  struct parley_auth *a = new_cluster(0, 0, 0);
  struct parley_auth_jwt_header h;
  char tok[4096], good[PARLEY_AUTH_TOKEN_CAP];
  uint8_t key[32];
  int reason;
  struct {
    const char *hdr;
    int reason;
  } cases[] = {
      {"{\"alg\":\"HS256\",\"typ\":\"JWS\",\"kid\":\"c2810\"}",
       PARLEY_AUTH_BAD_HEADER},
      {"{\"alg\":\"HS256\",\"typ\":1,\"kid\":\"c2810\"}",
       PARLEY_AUTH_BAD_HEADER},
      {"{\"alg\":\"HS256\",\"typ\":\"jwt\",\"kid\":\"c2810\"}",
       PARLEY_AUTH_OK},
      {"{\"kid\":\"c2810\",\"alg\":\"HS256\"}", PARLEY_AUTH_OK},
      {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", PARLEY_AUTH_BAD_HEADER},
      {"{\"alg\":\"HS256\",\"kid\":\"c2810\",\"jku\":\"http://x/\"}",
       PARLEY_AUTH_BAD_HEADER},
      {"{\"alg\":\"HS256\",\"kid\":\"c2810\",\"crit\":[\"exp\"]}",
       PARLEY_AUTH_BAD_HEADER},
      {"{\"alg\":\"HS256\",\"kid\":\"c2810\",\"kid\":\"c2811\"}",
       PARLEY_AUTH_MALFORMED},
      {"{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}",
       PARLEY_AUTH_BAD_HEADER},
      {"{\"alg\":\"HS256\",\"kid\":\"c2811\"}", PARLEY_AUTH_UNKNOWN_KID},
      {"{\"alg\":\"HS256\",\"kid\":\"c02810\"}", PARLEY_AUTH_UNKNOWN_KID},
      {"{\"alg\":\"HS256\",\"kid\":\"k2810\"}", PARLEY_AUTH_UNKNOWN_KID},
      {"\"HS256\"", PARLEY_AUTH_MALFORMED},
  };
  static const char *const malformed[] = {
      "", ".", "..", "a.b", "a.b.c.d", "%%%.e30.e30",
      "eyJhbGciOiJIUzI1NiJ9=.e30.e30", "e30 .e30.e30", ".e30.e30",
      "e30..e30",
  };
  (void)state;
  epoch_key(2810, key);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sign_raw(key, cases[i].hdr, GOOD_PAYLOAD, tok, sizeof tok);
    if (why(a, tok, 0, T0) != cases[i].reason)
      fail_msg("header case %zu: %s", i,
               parley_auth_reason_text(why(a, tok, 0, T0)));
  }
  for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
    if (why(a, malformed[i], 0, T0) != PARLEY_AUTH_MALFORMED)
      fail_msg("malformed case %zu", i);
  /* Over-long tokens are refused before any decoding. */
  memset(tok, 'A', sizeof tok - 1);
  tok[sizeof tok - 1] = '\0';
  tok[10] = tok[20] = '.';
  assert_int_equal(why(a, tok, 0, T0), PARLEY_AUTH_MALFORMED);
  /* Length is honoured: a valid token followed by junk beyond len. */
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "x",
                                    NULL, T0, good, sizeof good),
                   PARLEY_OK);
  snprintf(tok, sizeof tok, "%sJUNK", good);
  assert_int_equal(parley_auth_verify(a, tok, strlen(good), 0, T0, NULL,
                                      &reason),
                   PARLEY_OK);
  assert_int_equal(why(a, tok, 0, T0), PARLEY_AUTH_BAD_SIGNATURE);
  /* The header parser alone. */
  assert_int_equal(parley_auth_jwt_header_parse(good, strlen(good), &h,
                                                &reason),
                   PARLEY_OK);
  assert_string_equal(h.kid, "c2810");
  assert_int_equal(h.has_typ, 1);
  assert_int_equal(parley_auth_jwt_header_parse("e30.e30.", 8, &h, &reason),
                   PARLEY_EAUTH);
  assert_int_equal(reason, PARLEY_AUTH_BAD_ALG);
  parley_auth_free(a);
}

static void test_mint_arguments(void **state) {
  struct parley_auth *a = new_cluster(0, 0, 0);
  char tok[PARLEY_AUTH_TOKEN_CAP], sub[PARLEY_AUTH_MAX_SUBJECT + 2];
  char jti[PARLEY_AUTH_MAX_JTI + 1];
  struct parley_auth_claims c;
  (void)state;
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_NONE, HOUR, "x", NULL,
                                    T0, tok, sizeof tok),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_mint(a, 3, HOUR, "x", NULL, T0, tok, sizeof tok),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, 999, "x", NULL,
                                    T0, tok, sizeof tok),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER,
                                    PARLEY_AUTH_DEFAULT_MAX_TTL_MS + 1, "x",
                                    NULL, T0, tok, sizeof tok),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER,
                                    PARLEY_AUTH_DEFAULT_MAX_TTL_MS, "x", NULL,
                                    T0, tok, sizeof tok),
                   PARLEY_OK);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "", NULL,
                                    T0, tok, sizeof tok),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "a\tb",
                                    NULL, T0, tok, sizeof tok),
                   PARLEY_EINVAL);
  memset(sub, 's', sizeof sub - 1);
  sub[sizeof sub - 1] = '\0';
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, sub, NULL,
                                    T0, tok, sizeof tok),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "x",
                                    "a.b", T0, tok, sizeof tok),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "x", NULL,
                                    -1, tok, sizeof tok),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "x", NULL,
                                    T0, tok, 100),
                   PARLEY_ETOOBIG);
  assert_string_equal(tok, "");
  /* The longest subject, all quotes and backslashes, fits and round-trips. */
  for (size_t i = 0; i < PARLEY_AUTH_MAX_SUBJECT; i++)
    sub[i] = i % 2 ? '"' : '\\';
  sub[PARLEY_AUTH_MAX_SUBJECT] = '\0';
  memset(jti, 'j', PARLEY_AUTH_MAX_JTI);
  jti[PARLEY_AUTH_MAX_JTI] = '\0';
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_ADMIN, HOUR, sub, jti,
                                    T0, tok, sizeof tok),
                   PARLEY_OK);
  assert_int_equal(parley_auth_verify(a, tok, strlen(tok), 0, T0, &c, NULL),
                   PARLEY_OK);
  assert_string_equal(c.sub, sub);
  parley_auth_free(a);
}

static void test_config_checked(void **state) {
  struct parley_auth_config c = cfg_for(NULL);
  struct parley_auth *a = NULL;
  char err[256];
  (void)state;
  assert_int_equal(parley_auth_new(&c, T0, &a, err, sizeof err), PARLEY_EINVAL);
  assert_null(a);
  assert_non_null(strstr(err, "key directory"));
  c.cluster_key = cluster_key;
  c.leeway_s = 31;
  assert_int_equal(parley_auth_new(&c, T0, &a, err, sizeof err), PARLEY_EINVAL);
  c.leeway_s = 30;
  c.issuer = "bad\"issuer";
  assert_int_equal(parley_auth_new(&c, T0, &a, err, sizeof err), PARLEY_EINVAL);
  c.issuer = "parley-index/eu-1";
  c.oauth_ttl_ms = 2 * HOUR;
  c.max_ttl_ms = HOUR;
  assert_int_equal(parley_auth_new(&c, T0, &a, err, sizeof err), PARLEY_EINVAL);
  c.oauth_ttl_ms = 0;
  assert_int_equal(parley_auth_new(&c, T0, &a, err, sizeof err), PARLEY_OK);
  parley_auth_free(a);
  parley_auth_free(NULL);
}

static void test_issuer_configurable(void **state) {
  struct parley_auth_config c = cfg_for(NULL);
  struct parley_auth *eu = NULL, *us = NULL;
  char tok[PARLEY_AUTH_TOKEN_CAP];
  (void)state;
  c.cluster_key = cluster_key;
  c.issuer = "parley-index/eu";
  assert_int_equal(parley_auth_new(&c, T0, &eu, NULL, 0), PARLEY_OK);
  c.issuer = "parley-index/us";
  assert_int_equal(parley_auth_new(&c, T0, &us, NULL, 0), PARLEY_OK);
  assert_int_equal(parley_auth_mint(eu, PARLEY_AUTH_ROLE_ADMIN, HOUR, "x",
                                    NULL, T0, tok, sizeof tok),
                   PARLEY_OK);
  /* Same key, other issuer: refused. */
  assert_int_equal(why(eu, tok, 0, T0), PARLEY_AUTH_OK);
  assert_int_equal(why(us, tok, 0, T0), PARLEY_AUTH_WRONG_ISSUER);
  parley_auth_free(eu);
  parley_auth_free(us);
}

/* ---- keys: rotation, cluster epochs, files ------------------------------ */

static void test_rotation_file_mode(void **state) {
  char dir[64], old_tok[PARLEY_AUTH_TOKEN_CAP], new_tok[PARLEY_AUTH_TOKEN_CAP];
  char kid1[PARLEY_AUTH_MAX_KID + 1], kid2[PARLEY_AUTH_MAX_KID + 1];
  char kid[PARLEY_AUTH_MAX_KID + 1];
  struct parley_auth_config cfg;
  struct parley_auth *a = NULL, *cli = NULL;
  int64_t until;
  int changed = -1;
  (void)state;

  make_dir(dir, sizeof dir);
  cfg = cfg_for(dir);
  cfg.grace_ms = 2 * HOUR;
  assert_int_equal(parley_auth_new(&cfg, T0, &a, NULL, 0), PARLEY_OK);
  assert_int_equal(parley_auth_key_info(a, T0, 0, kid1, NULL), PARLEY_OK);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_ADMIN, 24 * HOUR, "x",
                                    NULL, T0, old_tok, sizeof old_tok),
                   PARLEY_OK);

  assert_int_equal(parley_auth_rotate(a, T0 + HOUR, kid2), PARLEY_OK);
  assert_string_not_equal(kid1, kid2);
  assert_int_equal(parley_auth_key_count(a, T0 + HOUR), 2);
  assert_int_equal(parley_auth_key_info(a, T0 + HOUR, 0, kid, &until),
                   PARLEY_OK);
  assert_string_equal(kid, kid2);
  assert_int_equal(until, 0);
  assert_int_equal(parley_auth_key_info(a, T0 + HOUR, 1, kid, &until),
                   PARLEY_OK);
  assert_string_equal(kid, kid1);
  assert_int_equal(until, T0 + 3 * HOUR);

  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_ADMIN, 24 * HOUR, "x",
                                    NULL, T0 + HOUR, new_tok, sizeof new_tok),
                   PARLEY_OK);
  assert_non_null(strstr(new_tok, "eyJ")); /* sanity */
  /* During the grace both verify; after it the old kid is unknown. */
  assert_int_equal(why(a, old_tok, 0, T0 + 3 * HOUR - 1), PARLEY_AUTH_OK);
  assert_int_equal(why(a, new_tok, 0, T0 + 3 * HOUR - 1), PARLEY_AUTH_OK);
  assert_int_equal(why(a, old_tok, 0, T0 + 3 * HOUR), PARLEY_AUTH_UNKNOWN_KID);
  assert_int_equal(why(a, new_tok, 0, T0 + 3 * HOUR), PARLEY_AUTH_OK);
  assert_int_equal(parley_auth_key_count(a, T0 + 3 * HOUR), 1);

  /* Another process (the CLI) rotates; the daemon's reload picks it up. */
  assert_int_equal(parley_auth_new(&cfg, T0 + 2 * HOUR, &cli, NULL, 0),
                   PARLEY_OK);
  assert_int_equal(parley_auth_key_count(cli, T0 + 2 * HOUR), 2);
  assert_int_equal(parley_auth_reload(a, T0 + 2 * HOUR, &changed), PARLEY_OK);
  assert_int_equal(changed, 0);
  assert_int_equal(parley_auth_rotate(cli, T0 + 2 * HOUR, kid), PARLEY_OK);
  assert_int_equal(parley_auth_key_count(cli, T0 + 2 * HOUR), 3);
  assert_int_equal(parley_auth_reload(a, T0 + 2 * HOUR, &changed), PARLEY_OK);
  assert_int_equal(changed, 1);
  assert_int_equal(parley_auth_key_count(a, T0 + 2 * HOUR), 3);
  assert_int_equal(parley_auth_key_info(a, T0 + 2 * HOUR, 0, kid1, NULL),
                   PARLEY_OK);
  assert_string_equal(kid1, kid);
  /* A rotation by the daemon now keeps the CLI's key (it re-reads first). */
  assert_int_equal(parley_auth_rotate(a, T0 + 2 * HOUR, NULL), PARLEY_OK);
  assert_int_equal(parley_auth_key_count(a, T0 + 2 * HOUR), 4);

  /* After a leak: revoke every retired key at once. */
  assert_int_equal(why(a, new_tok, 0, T0 + 2 * HOUR), PARLEY_AUTH_OK);
  assert_int_equal(parley_auth_revoke_retired(a), PARLEY_OK);
  assert_int_equal(parley_auth_key_count(a, T0 + 2 * HOUR), 1);
  assert_int_equal(why(a, new_tok, 0, T0 + 2 * HOUR), PARLEY_AUTH_UNKNOWN_KID);
  assert_int_equal(parley_auth_reload(cli, T0 + 2 * HOUR, &changed),
                   PARLEY_OK);
  assert_int_equal(changed, 1);
  assert_int_equal(why(cli, new_tok, 0, T0 + 2 * HOUR),
                   PARLEY_AUTH_UNKNOWN_KID);

  /* Many rotations never keep more than PARLEY_AUTH_MAX_KEYS keys. */
  for (int i = 0; i < 40; i++)
    assert_int_equal(parley_auth_rotate(a, T0 + 2 * HOUR + i, NULL),
                     PARLEY_OK);
  assert_int_equal(parley_auth_key_count(a, T0 + 2 * HOUR + 40),
                   PARLEY_AUTH_MAX_KEYS);
  parley_auth_free(cli);
  parley_auth_free(a);
  remove_dir(dir);
}

static void test_cluster_epochs(void **state) {
  /* Epochs of 1 h, retired keys verify 2 h more. */
  struct parley_auth *n1 = new_cluster(HOUR, 2 * HOUR, 0);
  struct parley_auth *n2 = new_cluster(HOUR, 2 * HOUR, 0);
  struct parley_auth_config oc = cfg_for(NULL);
  struct parley_auth *other = NULL;
  uint8_t other_key[32];
  char tok[PARLEY_AUTH_TOKEN_CAP], kid[PARLEY_AUTH_MAX_KID + 1];
  int64_t e0 = (T0 / HOUR) * HOUR, until = -1; /* start of T0's epoch */
  (void)state;

  memset(other_key, 9, sizeof other_key);
  oc.cluster_key = other_key;
  oc.epoch_ms = HOUR;
  assert_int_equal(parley_auth_new(&oc, T0, &other, NULL, 0), PARLEY_OK);

  assert_int_equal(parley_auth_mint(n1, PARLEY_AUTH_ROLE_ADMIN, 10 * HOUR,
                                    "x", NULL, e0, tok, sizeof tok),
                   PARLEY_OK);
  /* Any node of the cluster verifies it; another cluster does not. */
  assert_int_equal(why(n2, tok, 0, e0), PARLEY_AUTH_OK);
  assert_int_equal(why(other, tok, 0, e0), PARLEY_AUTH_BAD_SIGNATURE);
  /* Its key signs for one hour, then verifies for two more. */
  assert_int_equal(why(n2, tok, 0, e0 + 3 * HOUR - 1), PARLEY_AUTH_OK);
  assert_int_equal(why(n2, tok, 0, e0 + 3 * HOUR), PARLEY_AUTH_UNKNOWN_KID);
  /* Current key count and info: current + the two previous epochs whose
   * grace has not run out. */
  assert_int_equal(parley_auth_key_count(n1, e0 + 2 * HOUR + 1), 3);
  assert_int_equal(parley_auth_key_info(n1, e0 + 2 * HOUR + 1, 0, kid,
                                        &until),
                   PARLEY_OK);
  assert_int_equal(until, 0);
  assert_int_equal(parley_auth_key_info(n1, e0 + 2 * HOUR + 1, 2, kid,
                                        &until),
                   PARLEY_OK);
  assert_int_equal(until, e0 + 3 * HOUR);
  /* A token from a future epoch (a node whose clock runs an hour ahead). */
  assert_int_equal(parley_auth_mint(n1, PARLEY_AUTH_ROLE_ADMIN, HOUR, "x",
                                    NULL, e0 + HOUR, tok, sizeof tok),
                   PARLEY_OK);
  assert_int_equal(why(n2, tok, 0, e0 + HOUR - 1), PARLEY_AUTH_UNKNOWN_KID);
  /* No rotation or revocation in cluster mode. */
  assert_int_equal(parley_auth_rotate(n1, T0, NULL), PARLEY_EINVAL);
  assert_int_equal(parley_auth_revoke_retired(n1), PARLEY_EINVAL);
  parley_auth_free(other);
  parley_auth_free(n1);
  parley_auth_free(n2);
}

static void write_text(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(chmod(path, mode), 0);
}

static void test_file_modes_and_contents(void **state) {
  char dir[64], path[128], lnk[128], err[256];
  struct parley_auth_config cfg;
  struct parley_auth *a = NULL;
  char zeros[65], two_current[512];
  static const char short_secret[] =
      "{\"version\":1,\"keys\":[{\"kid\":\"a\",\"secret\":\"0000\","
      "\"created_ms\":1,\"verify_until_ms\":0}]}";
  (void)state;

  memset(zeros, '0', 64);
  zeros[64] = '\0';
  snprintf(two_current, sizeof two_current,
           "{\"version\":1,\"keys\":["
           "{\"kid\":\"a\",\"secret\":\"%s\",\"created_ms\":1,"
           "\"verify_until_ms\":0},"
           "{\"kid\":\"b\",\"secret\":\"%s\",\"created_ms\":1,"
           "\"verify_until_ms\":0}]}",
           zeros, zeros);
  make_dir(dir, sizeof dir);
  cfg = cfg_for(dir);
  snprintf(path, sizeof path, "%s/jwt-keys.json", dir);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, NULL, 0), PARLEY_OK);
  parley_auth_free(a);

  /* Group- or world-readable key files are refused. */
  assert_int_equal(chmod(path, 0640), 0);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err),
                   PARLEY_EAUTH);
  assert_null(a);
  assert_non_null(strstr(err, "mode 0640"));
  assert_int_equal(chmod(path, 0604), 0);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err),
                   PARLEY_EAUTH);
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err), PARLEY_OK);
  parley_auth_free(a);

  /* A symlink is not followed. */
  snprintf(lnk, sizeof lnk, "%s/real.json", dir);
  assert_int_equal(rename(path, lnk), 0);
  assert_int_equal(symlink(lnk, path), 0);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err), PARLEY_EIO);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(unlink(lnk), 0);

  /* Broken contents. */
  write_text(path, "{not json", 0600);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err),
                   PARLEY_ESYNTAX);
  write_text(path, two_current, 0600);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err),
                   PARLEY_ESYNTAX);
  assert_non_null(strstr(err, "2 current keys"));
  write_text(path, short_secret, 0600);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err),
                   PARLEY_ESYNTAX);
  assert_int_equal(unlink(path), 0);

  /* The client file is held to the same rules. */
  snprintf(path, sizeof path, "%s/oauth-clients.json", dir);
  write_text(path, "{\"version\":1,\"clients\":[]}", 0644);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err),
                   PARLEY_EAUTH);
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err), PARLEY_OK);
  parley_auth_free(a);
  write_text(path,
             "{\"version\":1,\"clients\":[{\"client_id\":\"x\",\"role\":"
             "\"root\",\"secret_hash\":\"$argon2id$v=19$\",\"created_ms\":1}]}",
             0600);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err),
                   PARLEY_ESYNTAX);
  /* A missing directory. */
  cfg.dir = "/nonexistent/parley-auth";
  assert_int_equal(parley_auth_new(&cfg, T0, &a, err, sizeof err), PARLEY_EIO);
  remove_dir(dir);
}

/* ---- OAuth clients ------------------------------------------------------ */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  static char buf[65536];
  size_t n;
  assert_non_null(f);
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_clients(void **state) {
  char dir[64], path[128], secret[PARLEY_AUTH_SECRET_LEN + 1];
  char secret2[PARLEY_AUTH_SECRET_LEN + 1];
  struct parley_auth_config cfg;
  struct parley_auth *a = NULL, *b = NULL;
  struct parley_auth_client_info info;
  struct stat st;
  int role = -1;
  (void)state;

  make_dir(dir, sizeof dir);
  cfg = cfg_for(dir);
  assert_int_equal(parley_auth_new(&cfg, T0, &a, NULL, 0), PARLEY_OK);
  assert_int_equal(parley_auth_client_count(a), 0);
  assert_int_equal(parley_auth_client_add(a, "grafana", PARLEY_AUTH_ROLE_VIEWER,
                                          T0, secret),
                   PARLEY_OK);
  assert_int_equal(strlen(secret), PARLEY_AUTH_SECRET_LEN);
  assert_int_equal(parley_auth_client_add(a, "deploy.bot-1",
                                          PARLEY_AUTH_ROLE_ADMIN, T0 + 1,
                                          secret2),
                   PARLEY_OK);
  assert_string_not_equal(secret, secret2);

  /* Only a hash is stored, in a 0600 file. */
  snprintf(path, sizeof path, "%s/oauth-clients.json", dir);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_null(strstr(slurp(path), secret));
  assert_null(strstr(slurp(path), secret2));
  assert_non_null(strstr(slurp(path), "$argon2id$"));

  assert_int_equal(parley_auth_client_check(a, "grafana", secret, &role),
                   PARLEY_OK);
  assert_int_equal(role, PARLEY_AUTH_ROLE_VIEWER);
  assert_int_equal(parley_auth_client_check(a, "grafana", secret2, &role),
                   PARLEY_EAUTH);
  assert_int_equal(role, PARLEY_AUTH_ROLE_NONE);
  assert_int_equal(parley_auth_client_check(a, "nobody", secret, &role),
                   PARLEY_EAUTH);
  assert_int_equal(parley_auth_client_check(a, "grafana", "", &role),
                   PARLEY_EAUTH);

  /* Duplicates, bad ids and roles. */
  assert_int_equal(parley_auth_client_add(a, "grafana", PARLEY_AUTH_ROLE_ADMIN,
                                          T0, secret2),
                   PARLEY_EEXIST);
  assert_string_equal(secret2, "");
  assert_int_equal(parley_auth_client_add(a, "bad id", PARLEY_AUTH_ROLE_ADMIN,
                                          T0, secret2),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_client_add(a, "", PARLEY_AUTH_ROLE_ADMIN, T0,
                                          secret2),
                   PARLEY_EINVAL);
  assert_int_equal(parley_auth_client_add(a, "x", PARLEY_AUTH_ROLE_NONE, T0,
                                          secret2),
                   PARLEY_EINVAL);

  /* Listing, and another process sees the same registry. */
  assert_int_equal(parley_auth_client_count(a), 2);
  assert_int_equal(parley_auth_client_get(a, 1, &info), PARLEY_OK);
  assert_string_equal(info.client_id, "deploy.bot-1");
  assert_int_equal(info.role, PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(info.created_ms, T0 + 1);
  assert_int_equal(parley_auth_client_get(a, 2, &info), PARLEY_ENOTFOUND);
  assert_int_equal(parley_auth_new(&cfg, T0, &b, NULL, 0), PARLEY_OK);
  assert_int_equal(parley_auth_client_count(b), 2);
  assert_int_equal(parley_auth_client_check(b, "deploy.bot-1", secret2, &role),
                   PARLEY_EAUTH); /* secret2 was overwritten above */

  /* Removal by the other process, seen after reload. */
  assert_int_equal(parley_auth_client_remove(b, "grafana"), PARLEY_OK);
  assert_int_equal(parley_auth_client_remove(b, "grafana"), PARLEY_ENOTFOUND);
  assert_int_equal(parley_auth_client_check(a, "grafana", secret, &role),
                   PARLEY_OK);
  {
    int changed = 0;
    assert_int_equal(parley_auth_reload(a, T0, &changed), PARLEY_OK);
    assert_int_equal(changed, 1);
  }
  assert_int_equal(parley_auth_client_check(a, "grafana", secret, &role),
                   PARLEY_EAUTH);
  assert_int_equal(parley_auth_client_count(a), 1);
  parley_auth_free(b);
  parley_auth_free(a);
  remove_dir(dir);
}

static void test_client_hash_default_cost(void **state) {
  char dir[64], path[128], secret[PARLEY_AUTH_SECRET_LEN + 1];
  struct parley_auth_config cfg;
  struct parley_auth *a = NULL;
  int role;
  (void)state;
  make_dir(dir, sizeof dir);
  cfg = cfg_for(dir);
  cfg.pwhash_opslimit = 0; /* libsodium's interactive limits */
  cfg.pwhash_memlimit = 0;
  assert_int_equal(parley_auth_new(&cfg, T0, &a, NULL, 0), PARLEY_OK);
  assert_int_equal(parley_auth_client_add(a, "c", PARLEY_AUTH_ROLE_VIEWER, T0,
                                          secret),
                   PARLEY_OK);
  snprintf(path, sizeof path, "%s/oauth-clients.json", dir);
  assert_non_null(strstr(slurp(path), "$argon2id$v=19$m=65536,t=2,p=1$"));
  assert_int_equal(parley_auth_client_check(a, "c", secret, &role), PARLEY_OK);
  parley_auth_free(a);
  remove_dir(dir);
}

/* ---- forms and Basic ---------------------------------------------------- */

static void test_form_parse(void **state) {
  struct parley_auth_form f;
  const char *v;
  char big[PARLEY_AUTH_MAX_FORM + 2], enc[64];
  (void)state;

#define PARSE(s) parley_auth_form_parse(&f, (s), strlen(s))
  assert_int_equal(PARSE("grant_type=client_credentials&scope=a+b%20c"),
                   PARLEY_OK);
  assert_int_equal(f.n, 2);
  assert_string_equal(f.name[0], "grant_type");
  assert_string_equal(f.value[0], "client_credentials");
  assert_int_equal(parley_auth_form_get(&f, "scope", &v), PARLEY_OK);
  assert_string_equal(v, "a b c");
  assert_int_equal(parley_auth_form_get(&f, "nope", &v), PARLEY_ENOTFOUND);
  assert_null(v);
  parley_auth_form_close(&f);

  /* Escapes: %2B is a plus, %3D and %26 are data, upper and lower hex. */
  assert_int_equal(PARSE("k%3dx=a%2Bb%26c%3D%c3%A9"), PARLEY_OK);
  assert_int_equal(f.n, 1);
  assert_string_equal(f.name[0], "k=x");
  assert_string_equal(f.value[0], "a+b&c=\xc3\xa9");
  parley_auth_form_close(&f);

  /* Empty pairs skipped; bare names; '=' inside values; empty names. */
  assert_int_equal(PARSE("&&a&&b=&=x&c=d=e&"), PARLEY_OK);
  assert_int_equal(f.n, 4);
  assert_string_equal(f.name[0], "a");
  assert_string_equal(f.value[0], "");
  assert_string_equal(f.name[1], "b");
  assert_string_equal(f.value[1], "");
  assert_string_equal(f.name[2], "");
  assert_string_equal(f.value[2], "x");
  assert_string_equal(f.value[3], "d=e");
  parley_auth_form_close(&f);

  assert_int_equal(PARSE("a=1&a=2"), PARLEY_OK);
  assert_int_equal(parley_auth_form_get(&f, "a", &v), PARLEY_EEXIST);
  parley_auth_form_close(&f);
  assert_int_equal(PARSE(""), PARLEY_OK);
  assert_int_equal(f.n, 0);
  parley_auth_form_close(&f);

  /* Bad escapes, NUL bytes, raw or escaped. */
  assert_int_equal(PARSE("a=%zz"), PARLEY_ESYNTAX);
  assert_int_equal(f.n, 0);
  assert_null(f.buf);
  assert_int_equal(PARSE("a=%4"), PARLEY_ESYNTAX);
  assert_int_equal(PARSE("a=%"), PARLEY_ESYNTAX);
  assert_int_equal(PARSE("a%=1"), PARLEY_ESYNTAX);
  assert_int_equal(PARSE("a=%00"), PARLEY_ESYNTAX);
  assert_int_equal(parley_auth_form_parse(&f, "a=b\0c", 5), PARLEY_ESYNTAX);
  /* The length is honoured (no NUL needed). */
  assert_int_equal(parley_auth_form_parse(&f, "a=bcdef", 3), PARLEY_OK);
  assert_string_equal(f.value[0], "b");
  parley_auth_form_close(&f);

  /* Caps. */
  assert_int_equal(PARSE("a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p"), PARLEY_OK);
  assert_int_equal(f.n, 16);
  parley_auth_form_close(&f);
  assert_int_equal(PARSE("a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&q"), PARLEY_ETOOBIG);
  memset(big, 'a', sizeof big);
  assert_int_equal(parley_auth_form_parse(&f, big, PARLEY_AUTH_MAX_FORM + 1),
                   PARLEY_ETOOBIG);
  assert_int_equal(parley_auth_form_parse(&f, big, PARLEY_AUTH_MAX_FORM),
                   PARLEY_OK);
  parley_auth_form_close(&f);
  parley_auth_form_close(&f); /* idempotent */
#undef PARSE

  /* Encoding. */
  assert_int_equal(parley_auth_form_encode("a b+c/é~._-", enc, sizeof enc),
                   PARLEY_OK);
  assert_string_equal(enc, "a+b%2Bc%2F%C3%A9~._-");
  assert_int_equal(parley_auth_form_encode("abc", enc, 3), PARLEY_ETOOBIG);
  assert_int_equal(parley_auth_form_encode("abc", enc, 4), PARLEY_OK);
}

static void basic_of(const char *userpass, char *out, size_t cap) {
  char b[512];
  sodium_bin2base64(b, sizeof b, (const unsigned char *)userpass,
                    strlen(userpass),
                    sodium_base64_VARIANT_ORIGINAL);
  int w = snprintf(out, cap, "Basic %s", b);
  assert_true(w >= 0 && (size_t)w < cap);
}

static void test_basic_parse(void **state) {
  char hdr[600], id[PARLEY_AUTH_MAX_CLIENT_ID + 1],
      secret[PARLEY_AUTH_MAX_SECRET + 1];
  (void)state;
  basic_of("grafana:s3cr:et", hdr, sizeof hdr);
  assert_int_equal(parley_auth_basic_parse(hdr, id, sizeof id, secret,
                                           sizeof secret),
                   PARLEY_OK);
  assert_string_equal(id, "grafana");
  assert_string_equal(secret, "s3cr:et");
  /* RFC 6749 2.3.1: both parts are form-urlencoded inside. */
  basic_of("my%2Eid:a+b%3A", hdr, sizeof hdr);
  hdr[0] = 'b'; /* scheme in any case */
  assert_int_equal(parley_auth_basic_parse(hdr, id, sizeof id, secret,
                                           sizeof secret),
                   PARLEY_OK);
  assert_string_equal(id, "my.id");
  assert_string_equal(secret, "a b:");
  basic_of("nocolon", hdr, sizeof hdr);
  assert_int_equal(parley_auth_basic_parse(hdr, id, sizeof id, secret,
                                           sizeof secret),
                   PARLEY_ESYNTAX);
  assert_int_equal(parley_auth_basic_parse("Basic !!!!", id, sizeof id,
                                           secret, sizeof secret),
                   PARLEY_ESYNTAX);
  assert_int_equal(parley_auth_basic_parse("Basic ", id, sizeof id, secret,
                                           sizeof secret),
                   PARLEY_ESYNTAX);
  assert_int_equal(parley_auth_basic_parse("Basic YTpi YTpi", id, sizeof id,
                                           secret, sizeof secret),
                   PARLEY_ESYNTAX);
  assert_int_equal(parley_auth_basic_parse("Bearer abc", id, sizeof id,
                                           secret, sizeof secret),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_auth_basic_parse("Basically", id, sizeof id, secret,
                                           sizeof secret),
                   PARLEY_ENOTFOUND);
  basic_of("a:b", hdr, sizeof hdr);
  assert_int_equal(parley_auth_basic_parse(hdr, id, 1, secret, sizeof secret),
                   PARLEY_ETOOBIG);
}

/* ---- the token endpoint ------------------------------------------------- */

struct ep {
  char dir[64];
  struct parley_auth *a;
  char viewer_secret[PARLEY_AUTH_SECRET_LEN + 1];
  char admin_secret[PARLEY_AUTH_SECRET_LEN + 1];
};

static void ep_open(struct ep *e) {
  struct parley_auth_config cfg;
  make_dir(e->dir, sizeof e->dir);
  cfg = cfg_for(e->dir);
  assert_int_equal(parley_auth_new(&cfg, T0, &e->a, NULL, 0), PARLEY_OK);
  assert_int_equal(parley_auth_client_add(e->a, "grafana",
                                          PARLEY_AUTH_ROLE_VIEWER, T0,
                                          e->viewer_secret),
                   PARLEY_OK);
  assert_int_equal(parley_auth_client_add(e->a, "deployer",
                                          PARLEY_AUTH_ROLE_ADMIN, T0,
                                          e->admin_secret),
                   PARLEY_OK);
}

static void ep_close(struct ep *e) {
  parley_auth_free(e->a);
  remove_dir(e->dir);
}

static const char *hdr_get(const struct parley_auth_token_response *r,
                           const char *name) {
  for (size_t i = 0; r->headers[i]; i += 2)
    if (strcmp(r->headers[i], name) == 0)
      return r->headers[i + 1];
  return NULL;
}

/* POSTs body; checks status and the "error" member (NULL = success). */
static void post(struct ep *e, const char *ct, const char *body,
                 const char *authz, unsigned status, const char *error,
                 struct parley_auth_token_response *r) {
  json_t *j;
  assert_int_equal(parley_auth_token_request(e->a, ct, body, strlen(body),
                                             authz, T0, r),
                   PARLEY_OK);
  if (r->status != status)
    fail_msg("status %u, want %u: %s", r->status, status, r->body);
  assert_string_equal(r->content_type, "application/json;charset=UTF-8");
  assert_string_equal(hdr_get(r, "Cache-Control"), "no-store");
  assert_string_equal(hdr_get(r, "Pragma"), "no-cache");
  j = json_loadb(r->body, r->body_len, 0, NULL);
  assert_non_null(j);
  if (error)
    assert_string_equal(json_string_value(json_object_get(j, "error")), error);
  else
    assert_null(json_object_get(j, "error"));
  json_decref(j);
}

#define FORM "application/x-www-form-urlencoded"

static void test_token_endpoint_success(void **state) {
  struct ep e;
  struct parley_auth_token_response r;
  struct parley_auth_claims c;
  char body[512], authz[512], up[256];
  json_t *j;
  const char *tok;
  (void)state;
  ep_open(&e);

  snprintf(body, sizeof body,
           "grant_type=client_credentials&client_id=grafana&client_secret=%s",
           e.viewer_secret);
  post(&e, FORM, body, NULL, 200, NULL, &r);
  assert_null(hdr_get(&r, "WWW-Authenticate"));
  j = json_loadb(r.body, r.body_len, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "token_type")),
                      "Bearer");
  assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 900);
  assert_string_equal(json_string_value(json_object_get(j, "scope")),
                      "viewer");
  tok = json_string_value(json_object_get(j, "access_token"));
  assert_int_equal(parley_auth_verify(e.a, tok, strlen(tok),
                                      PARLEY_AUTH_ROLE_VIEWER, T0 + 899999, &c,
                                      NULL),
                   PARLEY_OK);
  assert_string_equal(c.sub, "grafana");
  assert_int_equal(c.exp - c.iat, 900);
  assert_int_equal(parley_auth_verify(e.a, tok, strlen(tok),
                                      PARLEY_AUTH_ROLE_VIEWER, T0 + 900000, &c,
                                      NULL),
                   PARLEY_EAUTH);
  assert_int_equal(parley_auth_verify(e.a, tok, strlen(tok),
                                      PARLEY_AUTH_ROLE_ADMIN, T0, &c, NULL),
                   PARLEY_EDENIED);
  assert_string_equal(r.client_id, "grafana");
  assert_int_equal(r.client_failed, 0);
  json_decref(j);
  parley_auth_token_response_close(&r);

  /* HTTP Basic, content type with a charset, admin narrowed to viewer. */
  snprintf(up, sizeof up, "deployer:%s", e.admin_secret);
  basic_of(up, authz, sizeof authz);
  post(&e, FORM "; charset=UTF-8", "grant_type=client_credentials", authz,
       200, NULL, &r);
  assert_non_null(strstr(r.body, "\"scope\":\"admin\""));
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client_credentials&scope=viewer", authz, 200,
       NULL, &r);
  j = json_loadb(r.body, r.body_len, 0, NULL);
  tok = json_string_value(json_object_get(j, "access_token"));
  assert_int_equal(parley_auth_verify(e.a, tok, strlen(tok),
                                      PARLEY_AUTH_ROLE_ADMIN, T0, &c, NULL),
                   PARLEY_EDENIED);
  json_decref(j);
  parley_auth_token_response_close(&r);
  /* client_id in the body too is fine when it matches. */
  post(&e, FORM, "grant_type=client_credentials&client_id=deployer", authz,
       200, NULL, &r);
  parley_auth_token_response_close(&r);
  /* Unknown extra parameters are ignored (RFC 6749 3.2). */
  snprintf(body, sizeof body,
           "client_secret=%s&grant_type=client_credentials&client_id=grafana"
           "&foo=bar",
           e.viewer_secret);
  post(&e, FORM, body, NULL, 200, NULL, &r);
  parley_auth_token_response_close(&r);
  ep_close(&e);
}

static void test_token_endpoint_errors(void **state) {
  struct ep e;
  struct parley_auth_token_response r;
  char body[512], authz[512], up[256];
  (void)state;
  ep_open(&e);

  /* Wrong secret, unknown client, missing credentials: 401 invalid_client
   * with WWW-Authenticate. */
  post(&e, FORM,
       "grant_type=client_credentials&client_id=grafana&client_secret=nope",
       NULL, 401, "invalid_client", &r);
  assert_string_equal(hdr_get(&r, "WWW-Authenticate"), "Basic realm=\"parley\"");
  assert_int_equal(r.client_failed, 1);
  assert_string_equal(r.client_id, "grafana");
  parley_auth_token_response_close(&r);
  snprintf(body, sizeof body,
           "grant_type=client_credentials&client_id=grafana2&client_secret=%s",
           e.viewer_secret);
  post(&e, FORM, body, NULL, 401, "invalid_client", &r);
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client_credentials&client_id=grafana", NULL, 401,
       "invalid_client", &r);
  parley_auth_token_response_close(&r);
  /* An empty value counts as absent. */
  post(&e, FORM,
       "grant_type=client_credentials&client_id=grafana&client_secret=", NULL,
       401, "invalid_client", &r);
  parley_auth_token_response_close(&r);
  /* The viewer's secret does not open the admin client. */
  snprintf(up, sizeof up, "deployer:%s", e.viewer_secret);
  basic_of(up, authz, sizeof authz);
  post(&e, FORM, "grant_type=client_credentials", authz, 401,
       "invalid_client", &r);
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client_credentials", "Bearer abc", 401,
       "invalid_client", &r);
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client_credentials", "Basic ***", 401,
       "invalid_client", &r);
  parley_auth_token_response_close(&r);

  /* invalid_request: grant_type missing, repeated parameters, two methods,
   * mismatched ids, content type, malformed body, size. */
  post(&e, FORM, "client_id=grafana&client_secret=x", NULL, 400,
       "invalid_request", &r);
  assert_int_equal(r.client_failed, 0);
  assert_null(hdr_get(&r, "WWW-Authenticate"));
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=&client_id=grafana", NULL, 400,
       "invalid_request", &r);
  parley_auth_token_response_close(&r);
  post(&e, FORM,
       "grant_type=client_credentials&grant_type=client_credentials", NULL,
       400, "invalid_request", &r);
  parley_auth_token_response_close(&r);
  snprintf(up, sizeof up, "grafana:%s", e.viewer_secret);
  basic_of(up, authz, sizeof authz);
  snprintf(body, sizeof body,
           "grant_type=client_credentials&client_secret=%s", e.viewer_secret);
  post(&e, FORM, body, authz, 400, "invalid_request", &r);
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client_credentials&client_id=deployer", authz,
       400, "invalid_request", &r);
  parley_auth_token_response_close(&r);
  post(&e, "application/json", "grant_type=client_credentials", authz, 400,
       "invalid_request", &r);
  parley_auth_token_response_close(&r);
  post(&e, "application/x-www-form-urlencodedX",
       "grant_type=client_credentials", authz, 400, "invalid_request", &r);
  parley_auth_token_response_close(&r);
  assert_int_equal(parley_auth_token_request(e.a, NULL, "", 0, authz, T0, &r),
                   PARLEY_OK);
  assert_int_equal(r.status, 400);
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client%ZZcredentials", authz, 400,
       "invalid_request", &r);
  parley_auth_token_response_close(&r);
  {
    static char huge[PARLEY_AUTH_MAX_FORM + 10];
    memset(huge, 'a', sizeof huge - 1);
    post(&e, FORM, huge, authz, 400, "invalid_request", &r);
    parley_auth_token_response_close(&r);
  }

  /* Grant and scope. */
  post(&e, FORM, "grant_type=password&username=a&password=b", authz, 400,
       "unsupported_grant_type", &r);
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client_credentials&scope=admin", authz, 400,
       "invalid_scope", &r);
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client_credentials&scope=root", authz, 400,
       "invalid_scope", &r);
  parley_auth_token_response_close(&r);
  post(&e, FORM, "grant_type=client_credentials&scope=viewer+viewer", authz,
       200, NULL, &r);
  parley_auth_token_response_close(&r);
  ep_close(&e);
}

static void test_token_bruteforce_limited(void **state) {
  struct ep e;
  struct parley_auth_token_response r;
  struct parley_rl_config rc = {.burst = 10,
                                .rate = 1,
                                .per_ms = 6000,
                                .strikes = 5,
                                .strike_window_ms = 600000,
                                .ban_ms = 900000};
  struct parley_rl *rl = NULL;
  struct parley_rl_stats st;
  char good[512], bad[256], key1[PARLEY_RL_IP_KEY_LEN],
      key2[PARLEY_RL_IP_KEY_LEN];
  size_t kl;
  uint64_t mono = 5000;
  (void)state;
  ep_open(&e);
  assert_int_equal(parley_rl_new(&rc, 7, &rl), PARLEY_OK);
  assert_int_equal(parley_rl_ip_key("203.0.113.9", key1, sizeof key1, &kl),
                   PARLEY_OK);
  assert_int_equal(parley_rl_ip_key("2001:db8::7", key2, sizeof key2, &kl),
                   PARLEY_OK);
  snprintf(good, sizeof good,
           "grant_type=client_credentials&client_id=grafana&client_secret=%s",
           e.viewer_secret);
  snprintf(bad, sizeof bad,
           "grant_type=client_credentials&client_id=grafana&client_secret="
           "guess");

  /* An attacker guesses secrets from key1: four 401s, the fifth wrong
   * guess bans the address... */
  for (int i = 0; i < 5; i++) {
    assert_int_equal(parley_auth_token_request_limited(
                         e.a, rl, key1, mono, FORM, bad, strlen(bad), NULL,
                         T0, &r),
                     PARLEY_OK);
    assert_int_equal(r.status, 401);
    parley_auth_token_response_close(&r);
  }
  /* ... so even the right secret is refused there for 15 minutes, without
   * being checked. */
  assert_int_equal(parley_auth_token_request_limited(e.a, rl, key1, mono + 1,
                                                     FORM, good, strlen(good),
                                                     NULL, T0, &r),
                   PARLEY_OK);
  assert_int_equal(r.status, 429);
  assert_string_equal(hdr_get(&r, "Retry-After"), "900");
  assert_string_equal(hdr_get(&r, "Cache-Control"), "no-store");
  assert_non_null(strstr(r.body, "too many requests"));
  parley_auth_token_response_close(&r);
  /* The legitimate client elsewhere is unaffected. */
  assert_int_equal(parley_auth_token_request_limited(e.a, rl, key2, mono, FORM,
                                                     good, strlen(good), NULL,
                                                     T0, &r),
                   PARLEY_OK);
  assert_int_equal(r.status, 200);
  parley_auth_token_response_close(&r);
  /* After the ban the address may try again. */
  assert_int_equal(parley_auth_token_request_limited(
                       e.a, rl, key1, mono + 900000, FORM, good, strlen(good),
                       NULL, T0, &r),
                   PARLEY_OK);
  assert_int_equal(r.status, 200);
  parley_auth_token_response_close(&r);

  /* A flood of requests is throttled by the bucket before any Argon2id:
   * 10 at once, then one per 6 s. */
  for (int i = 0; i < 9; i++) {
    assert_int_equal(parley_auth_token_request_limited(
                         e.a, rl, key2, mono + 1, FORM, "grant_type=x", 12,
                         NULL, T0, &r),
                     PARLEY_OK);
    assert_int_equal(r.status, 400);
    parley_auth_token_response_close(&r);
  }
  assert_int_equal(parley_auth_token_request_limited(e.a, rl, key2, mono + 1,
                                                     FORM, good, strlen(good),
                                                     NULL, T0, &r),
                   PARLEY_OK);
  assert_int_equal(r.status, 429);
  assert_string_equal(hdr_get(&r, "Retry-After"), "6");
  parley_auth_token_response_close(&r);

  parley_rl_stats(rl, mono + 1, &st);
  assert_int_equal(st.strikes, 5);
  assert_int_equal(st.bans, 1);
  assert_int_equal(st.refused_banned, 1);
  assert_int_equal(st.limited, 1);
  parley_rl_free(rl);
  ep_close(&e);
}

/* ---- bearer headers and routes ------------------------------------------ */

static void test_bearer(void **state) {
  const char *t;
  size_t n;
  (void)state;
  assert_int_equal(parley_auth_bearer("Bearer abc.def.ghi", &t, &n), PARLEY_OK);
  assert_int_equal(n, 11);
  assert_memory_equal(t, "abc.def.ghi", 11);
  assert_int_equal(parley_auth_bearer("bEaReR   a-b_c~+/==  \t", &t, &n),
                   PARLEY_OK);
  assert_int_equal(n, 10);
  assert_memory_equal(t, "a-b_c~+/==", 10);
  assert_int_equal(parley_auth_bearer(NULL, &t, &n), PARLEY_ENOTFOUND);
  assert_int_equal(parley_auth_bearer("Basic abc", &t, &n), PARLEY_ENOTFOUND);
  assert_int_equal(parley_auth_bearer("Bearerabc", &t, &n), PARLEY_ENOTFOUND);
  assert_int_equal(parley_auth_bearer("Bearer", &t, &n), PARLEY_ESYNTAX);
  assert_int_equal(parley_auth_bearer("Bearer   ", &t, &n), PARLEY_ESYNTAX);
  assert_int_equal(parley_auth_bearer("Bearer a b", &t, &n), PARLEY_ESYNTAX);
  assert_null(t);
  assert_int_equal(parley_auth_bearer("Bearer a=b", &t, &n), PARLEY_ESYNTAX);
  assert_int_equal(parley_auth_bearer("Bearer a\"", &t, &n), PARLEY_ESYNTAX);
}

static void test_routes_and_check_request(void **state) {
  static const struct parley_auth_route table[] = {
      {"GET", "/healthz", PARLEY_AUTH_ROLE_NONE},
      {"POST", "/oauth/token", PARLEY_AUTH_ROLE_NONE},
      {"GET", "/api/clients*", PARLEY_AUTH_ROLE_ADMIN},
      {"*", "/metrics", PARLEY_AUTH_ROLE_VIEWER},
  };
  const size_t n = sizeof table / sizeof *table;
  struct parley_auth *a = new_cluster(0, 0, 0);
  struct parley_auth_decision d;
  char v[PARLEY_AUTH_TOKEN_CAP], ad[PARLEY_AUTH_TOKEN_CAP], hv[1200],
      ha[1200];
  (void)state;

  assert_int_equal(parley_auth_route_role(table, n, "GET", "/healthz"),
                   PARLEY_AUTH_ROLE_NONE);
  assert_int_equal(parley_auth_route_role(table, n, "POST", "/healthz"),
                   PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(parley_auth_route_role(table, n, "GET", "/api/clients/x"),
                   PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(parley_auth_route_role(table, n, "GET", "/api/peers"),
                   PARLEY_AUTH_ROLE_VIEWER);
  assert_int_equal(parley_auth_route_role(table, n, "HEAD", "/api/peers"),
                   PARLEY_AUTH_ROLE_VIEWER);
  assert_int_equal(parley_auth_route_role(table, n, "DELETE", "/api/peers/x"),
                   PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(parley_auth_route_role(table, n, "POST", "/metrics"),
                   PARLEY_AUTH_ROLE_VIEWER);
  /* Paths that could dodge a table row are admin-only. */
  assert_int_equal(parley_auth_route_role(table, n, "GET", "/api//clients"),
                   PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(parley_auth_route_role(table, n, "GET", "/api/./clients"),
                   PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(parley_auth_route_role(table, n, "GET", "/x/../healthz"),
                   PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(parley_auth_route_role(table, n, "GET", "healthz"),
                   PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(parley_auth_route_role(NULL, 0, "GET", "/"),
                   PARLEY_AUTH_ROLE_VIEWER);

  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_VIEWER, HOUR, "v",
                                    NULL, T0, v, sizeof v),
                   PARLEY_OK);
  assert_int_equal(parley_auth_mint(a, PARLEY_AUTH_ROLE_ADMIN, HOUR, "a",
                                    NULL, T0, ad, sizeof ad),
                   PARLEY_OK);
  snprintf(hv, sizeof hv, "Bearer %s", v);
  snprintf(ha, sizeof ha, "bearer %s", ad);

  assert_int_equal(parley_auth_check_request(a, table, n, "GET", "/healthz",
                                             NULL, T0, &d),
                   PARLEY_OK);
  assert_int_equal(d.status, 200);
  assert_int_equal(parley_auth_check_request(a, table, n, "GET", "/api/peers",
                                             NULL, T0, &d),
                   PARLEY_EAUTH);
  assert_int_equal(d.status, 401);
  assert_int_equal(d.reason, PARLEY_AUTH_NO_TOKEN);
  assert_string_equal(d.www_authenticate, "Bearer realm=\"parley-index\"");
  assert_int_equal(parley_auth_check_request(a, table, n, "GET", "/api/peers",
                                             hv, T0, &d),
                   PARLEY_OK);
  assert_int_equal(d.status, 200);
  assert_string_equal(d.claims.sub, "v");
  assert_int_equal(parley_auth_check_request(a, table, n, "POST",
                                             "/api/peers", hv, T0, &d),
                   PARLEY_EDENIED);
  assert_int_equal(d.status, 403);
  assert_string_equal(d.www_authenticate,
                      "Bearer realm=\"parley-index\", "
                      "error=\"insufficient_scope\", "
                      "error_description=\"insufficient role\"");
  assert_int_equal(parley_auth_check_request(a, table, n, "POST",
                                             "/api/peers", ha, T0, &d),
                   PARLEY_OK);
  assert_int_equal(d.claims.role, PARLEY_AUTH_ROLE_ADMIN);
  assert_int_equal(parley_auth_check_request(a, table, n, "GET", "/api/peers",
                                             hv, T0 + HOUR, &d),
                   PARLEY_EAUTH);
  assert_int_equal(d.status, 401);
  assert_string_equal(d.www_authenticate,
                      "Bearer realm=\"parley-index\", error=\"invalid_token\", "
                      "error_description=\"token expired\"");
  assert_int_equal(parley_auth_check_request(a, table, n, "GET", "/api/peers",
                                             "Bearer a b", T0, &d),
                   PARLEY_EAUTH);
  assert_int_equal(d.reason, PARLEY_AUTH_MALFORMED);
  assert_int_equal(parley_auth_check_request(a, table, n, "GET",
                                             "/api//clients", hv, T0, &d),
                   PARLEY_EDENIED);
  parley_auth_free(a);
}

/* ---- allocation failures ------------------------------------------------ */

static long fail_at = -1, n_allocs;

static void *fail_malloc(void *ctx, size_t n) {
  (void)ctx;
  if (fail_at >= 0 && n_allocs++ == fail_at)
    return NULL;
  return malloc(n);
}
static void *fail_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  if (fail_at >= 0 && n_allocs++ == fail_at)
    return NULL;
  return realloc(p, n);
}
static void fail_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void test_oom(void **state) {
  static const struct parley_allocator fa = {fail_malloc, fail_realloc,
                                             fail_free, NULL};
  char dir[64], secret[PARLEY_AUTH_SECRET_LEN + 1], body[256], path[128];
  struct parley_auth_config cfg;
  (void)state;
  make_dir(dir, sizeof dir);
  cfg = cfg_for(dir);
  parley_allocator_set(&fa);
  /* Every k-th allocation failing is survived without leaks (ASan). */
  for (fail_at = 0; fail_at < 60; fail_at++) {
    struct parley_auth *a = NULL;
    struct parley_auth_token_response r;
    struct parley_auth_form f;
    int rc;
    n_allocs = 0;
    rc = parley_auth_new(&cfg, T0, &a, NULL, 0);
    if (rc < 0) {
      assert_int_equal(rc, PARLEY_ENOMEM);
      continue;
    }
    rc = parley_auth_client_add(a, "c", PARLEY_AUTH_ROLE_VIEWER, T0, secret);
    if (rc == PARLEY_OK) {
      snprintf(body, sizeof body,
               "grant_type=client_credentials&client_id=c&client_secret=%s",
               secret);
      rc = parley_auth_token_request(a, FORM, body, strlen(body), NULL, T0,
                                     &r);
      if (rc == PARLEY_OK)
        parley_auth_token_response_close(&r);
      else
        assert_int_equal(rc, PARLEY_ENOMEM);
    } else {
      assert_int_equal(rc, PARLEY_ENOMEM);
    }
    if (parley_auth_form_parse(&f, "a=b", 3) == PARLEY_OK)
      parley_auth_form_close(&f);
    parley_auth_free(a);
    snprintf(path, sizeof path, "%s/oauth-clients.json", dir);
    (void)unlink(path); /* the next round starts without clients */
  }
  parley_allocator_set(NULL);
  fail_at = -1;
  remove_dir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pinned_cluster_token),
      cmocka_unit_test(test_pinned_file_token_and_key_file),
      cmocka_unit_test(test_wrong_algorithms),
      cmocka_unit_test(test_signatures),
      cmocka_unit_test(test_claims),
      cmocka_unit_test(test_expiry_and_leeway),
      cmocka_unit_test(test_roles),
      cmocka_unit_test(test_header_rules),
      cmocka_unit_test(test_mint_arguments),
      cmocka_unit_test(test_config_checked),
      cmocka_unit_test(test_issuer_configurable),
      cmocka_unit_test(test_rotation_file_mode),
      cmocka_unit_test(test_cluster_epochs),
      cmocka_unit_test(test_file_modes_and_contents),
      cmocka_unit_test(test_clients),
      cmocka_unit_test(test_client_hash_default_cost),
      cmocka_unit_test(test_form_parse),
      cmocka_unit_test(test_basic_parse),
      cmocka_unit_test(test_token_endpoint_success),
      cmocka_unit_test(test_token_endpoint_errors),
      cmocka_unit_test(test_token_bruteforce_limited),
      cmocka_unit_test(test_bearer),
      cmocka_unit_test(test_routes_and_check_request),
      cmocka_unit_test(test_oom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
