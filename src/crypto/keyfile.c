/*
 * keyfile.c — Argon2id + secretbox protection of the identity seed, and the
 * one-line text format that stores it (keyfile.h).
 */
#include "crypto/keyfile.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"

static_assert(PARLEY_KEYFILE_SALT_LEN == crypto_pwhash_argon2id_SALTBYTES,
              "salt");
static_assert(PARLEY_KEYFILE_NONCE_LEN == crypto_secretbox_NONCEBYTES,
              "nonce");
static_assert(PARLEY_KEYFILE_CT_LEN == crypto_secretbox_MACBYTES + 32,
              "sealed seed");
static_assert(crypto_secretbox_KEYBYTES == 32, "secretbox key");

static const char MAGIC[] = "parley-key-v1";
static const char MAGIC_FAMILY[] = "parley-key-v";
static const char ALG[] = "argon2id13";

/* memlimit must be a whole number of KiB: libsodium hands Argon2 the cost
 * memlimit / 1024, so 8192 and 9000 would give the same key, and a file
 * could be changed without the change being detected. */
static int costs_ok(uint64_t ops, uint64_t mem) {
  return mem % 1024 == 0 && ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
         ops <= PARLEY_KEYFILE_MAX_OPS &&
         mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
         mem <= PARLEY_KEYFILE_MAX_MEM;
}

/* key = Argon2id(pass, salt, ops, mem).  PARLEY_ENOMEM if it fails (the
 * only failure left once the costs are in bounds). */
static int derive(uint8_t key[32], const char *pass, size_t pass_len,
                  const uint8_t salt[PARLEY_KEYFILE_SALT_LEN], uint64_t ops,
                  uint64_t mem) {
  static const char empty[1] = {0};
  if (crypto_pwhash(key, 32, pass ? pass : empty, pass ? pass_len : 0, salt,
                    (unsigned long long)ops, (size_t)mem,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    sodium_memzero(key, 32);
    return PARLEY_ENOMEM;
  }
  return PARLEY_OK;
}

int parley_keyfile_seal(const uint8_t seed[32], const char *pass,
                        size_t pass_len, uint64_t opslimit, uint64_t memlimit,
                        struct parley_keyfile *out) {
  uint8_t key[32];
  int rc;

  memset(out, 0, sizeof *out);
  if (opslimit == 0 && memlimit == 0) {
    opslimit = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
    memlimit = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
  }
  if (!costs_ok(opslimit, memlimit) || (pass_len && pass == NULL))
    return PARLEY_EINVAL;
  out->opslimit = opslimit;
  out->memlimit = memlimit;
  randombytes_buf(out->salt, sizeof out->salt);
  randombytes_buf(out->nonce, sizeof out->nonce);
  if ((rc = derive(key, pass, pass_len, out->salt, opslimit, memlimit)) < 0) {
    memset(out, 0, sizeof *out);
    return rc;
  }
  rc = crypto_secretbox_easy(out->ct, seed, 32, out->nonce, key) == 0
           ? PARLEY_OK
           : PARLEY_EINTERNAL;
  sodium_memzero(key, sizeof key);
  if (rc < 0)
    memset(out, 0, sizeof *out);
  return rc;
}

int parley_keyfile_open(const struct parley_keyfile *kf, const char *pass,
                        size_t pass_len, uint8_t seed[32]) {
  uint8_t key[32];
  int rc;

  if (!costs_ok(kf->opslimit, kf->memlimit) || (pass_len && pass == NULL))
    return PARLEY_EINVAL;
  if ((rc = derive(key, pass, pass_len, kf->salt, kf->opslimit,
                   kf->memlimit)) < 0)
    return rc;
  rc = crypto_secretbox_open_easy(seed, kf->ct, sizeof kf->ct, kf->nonce,
                                  key) == 0
           ? PARLEY_OK
           : PARLEY_EAUTH;
  sodium_memzero(key, sizeof key);
  if (rc < 0)
    sodium_memzero(seed, 32);
  return rc;
}

int parley_keyfile_unlock(const char *text, size_t len, const char *pass,
                          size_t pass_len, struct parley_identity *id) {
  struct parley_keyfile kf;
  uint8_t seed[32];
  int rc;

  if ((rc = parley_keyfile_decode(text, len, &kf)) < 0)
    return rc;
  if ((rc = parley_keyfile_open(&kf, pass, pass_len, seed)) < 0)
    return rc;
  rc = parley_identity_from_seed(id, seed);
  sodium_memzero(seed, sizeof seed);
  return rc;
}

/* ---- text form ------------------------------------------------------------ */

int parley_keyfile_encode(const struct parley_keyfile *kf, char *out,
                          size_t cap, size_t *written) {
  char salt[2 * PARLEY_KEYFILE_SALT_LEN + 1];
  char nonce[2 * PARLEY_KEYFILE_NONCE_LEN + 1];
  char ct[2 * PARLEY_KEYFILE_CT_LEN + 1];

  *written = 0;
  if (!costs_ok(kf->opslimit, kf->memlimit))
    return PARLEY_EINVAL;
  parley_hex_encode(kf->salt, sizeof kf->salt, salt);
  parley_hex_encode(kf->nonce, sizeof kf->nonce, nonce);
  parley_hex_encode(kf->ct, sizeof kf->ct, ct);
  int n = snprintf(out, cap, "%s %s %llu %llu %s %s %s\n", MAGIC, ALG,
                   (unsigned long long)kf->opslimit,
                   (unsigned long long)kf->memlimit, salt, nonce, ct);
  if (n < 0 || (size_t)n >= cap) {
    if (cap)
      out[0] = '\0';
    return PARLEY_ETOOBIG;
  }
  *written = (size_t)n;
  return PARLEY_OK;
}

int parley_keyfile_is_protected(const char *text, size_t len) {
  size_t n = sizeof MAGIC_FAMILY - 1;
  return len >= n && memcmp(text, MAGIC_FAMILY, n) == 0;
}

/* A cursor over the text: the next token runs up to a single space (or the
 * end of the line for the last one). */
struct cursor {
  const char *p;
  size_t left;
};

/* OUT: the next token (up to a ' ' or the end), consuming the separator if
 * `last` is 0 (then it must be a ' ').  PARLEY_ESYNTAX when empty or not
 * followed by what it must be. */
static int token(struct cursor *c, int last, const char **tok, size_t *len) {
  size_t n = 0;
  while (n < c->left && c->p[n] != ' ')
    n++;
  if (n == 0)
    return PARLEY_ESYNTAX;
  *tok = c->p;
  *len = n;
  if (last) {
    if (n != c->left)
      return PARLEY_ESYNTAX;
    c->p += n;
    c->left = 0;
  } else {
    if (n == c->left) /* no separator */
      return PARLEY_ESYNTAX;
    c->p += n + 1;
    c->left -= n + 1;
  }
  return PARLEY_OK;
}

/* Canonical decimal: digits only, no leading zero, at most 20 digits. */
static int number(const char *tok, size_t len, uint64_t *out) {
  char buf[21];
  if (len > 20 || (len > 1 && tok[0] == '0'))
    return PARLEY_ESYNTAX;
  for (size_t i = 0; i < len; i++)
    if (tok[i] < '0' || tok[i] > '9')
      return PARLEY_ESYNTAX;
  memcpy(buf, tok, len);
  buf[len] = '\0';
  int rc = parley_parse_u64(buf, 0, UINT64_MAX, out);
  return rc == PARLEY_OK ? PARLEY_OK : PARLEY_ESYNTAX;
}

/* Lower-case hex of exactly n bytes. */
static int hex_field(const char *tok, size_t len, uint8_t *out, size_t n) {
  if (len != 2 * n)
    return PARLEY_ESYNTAX;
  for (size_t i = 0; i < n; i++) {
    unsigned v = 0;
    for (size_t j = 0; j < 2; j++) {
      char ch = tok[2 * i + j];
      unsigned d;
      if (ch >= '0' && ch <= '9')
        d = (unsigned)(ch - '0');
      else if (ch >= 'a' && ch <= 'f')
        d = (unsigned)(ch - 'a' + 10);
      else
        return PARLEY_ESYNTAX;
      v = v << 4 | d;
    }
    out[i] = (uint8_t)v;
  }
  return PARLEY_OK;
}

int parley_keyfile_decode(const char *text, size_t len,
                          struct parley_keyfile *kf) {
  struct cursor c = {text, len};
  const char *tok;
  size_t tlen;
  int rc;

  memset(kf, 0, sizeof *kf);
  if (len > PARLEY_KEYFILE_TEXT_MAX)
    return PARLEY_ESYNTAX;
  if (len && text[len - 1] == '\n')
    c.left--;
  if (!parley_keyfile_is_protected(text, len))
    return PARLEY_ESYNTAX;
  if ((rc = token(&c, 0, &tok, &tlen)) < 0)
    return rc;
  if (tlen != sizeof MAGIC - 1 || memcmp(tok, MAGIC, tlen) != 0)
    return PARLEY_EVERSION;
  if ((rc = token(&c, 0, &tok, &tlen)) < 0)
    return rc;
  if (tlen != sizeof ALG - 1 || memcmp(tok, ALG, tlen) != 0)
    return PARLEY_EVERSION;

  uint64_t ops, mem;
  if ((rc = token(&c, 0, &tok, &tlen)) < 0 ||
      (rc = number(tok, tlen, &ops)) < 0 ||
      (rc = token(&c, 0, &tok, &tlen)) < 0 ||
      (rc = number(tok, tlen, &mem)) < 0 ||
      (rc = token(&c, 0, &tok, &tlen)) < 0 ||
      (rc = hex_field(tok, tlen, kf->salt, sizeof kf->salt)) < 0 ||
      (rc = token(&c, 0, &tok, &tlen)) < 0 ||
      (rc = hex_field(tok, tlen, kf->nonce, sizeof kf->nonce)) < 0 ||
      (rc = token(&c, 1, &tok, &tlen)) < 0 ||
      (rc = hex_field(tok, tlen, kf->ct, sizeof kf->ct)) < 0) {
    memset(kf, 0, sizeof *kf);
    return rc;
  }
  if (!costs_ok(ops, mem)) {
    memset(kf, 0, sizeof *kf);
    return PARLEY_ERANGE;
  }
  kf->opslimit = ops;
  kf->memlimit = mem;
  return PARLEY_OK;
}
