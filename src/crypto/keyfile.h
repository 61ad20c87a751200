/*
 * keyfile.h — the identity seed encrypted at rest under a passphrase.
 *
 *   key  = crypto_pwhash(32 bytes, passphrase, salt, opslimit, memlimit,
 *                        crypto_pwhash_ALG_ARGON2ID13)
 *   ct   = crypto_secretbox_easy(seed, nonce, key)   (XSalsa20-Poly1305)
 *
 * Text format (one line, single spaces, lower-case hex, decimal numbers
 * without leading zeros, then one '\n'):
 *
 *   parley-key-v1 argon2id13 <opslimit> <memlimit> <salt:32 hex>
 *   <nonce:48 hex> <ct:96 hex>
 *
 * (shown on two lines here; it is one).  The parameters are stored so that
 * they can be raised later without breaking old files; changing any of them
 * (or the salt) changes the key, so a tampered file fails like a wrong
 * passphrase.  Bounds accepted on decode: opslimit 1..PARLEY_KEYFILE_MAX_OPS,
 * memlimit crypto_pwhash_MEMLIMIT_MIN..PARLEY_KEYFILE_MAX_MEM and a
 * multiple of 1024 (Argon2 counts KiB; without this rule two texts would
 * give the same key).  The bounds cap the work a planted file can make us
 * do.
 *
 * The encode/decode pair is pure (no I/O, no allocation); the file itself
 * is written and read by the caller with the same care as the plain seed
 * file (identity.h).  parley_crypto_init() must have been called.
 */
#ifndef PARLEY_CRYPTO_KEYFILE_H
#define PARLEY_CRYPTO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "crypto/identity.h"

#define PARLEY_KEYFILE_SALT_LEN 16u  /* crypto_pwhash_SALTBYTES */
#define PARLEY_KEYFILE_NONCE_LEN 24u /* crypto_secretbox_NONCEBYTES */
#define PARLEY_KEYFILE_CT_LEN 48u    /* 32-byte seed + 16-byte MAC */
#define PARLEY_KEYFILE_MAX_OPS 16u
#define PARLEY_KEYFILE_MAX_MEM (1024u * 1024u * 1024u) /* 1 GiB */
/* Longest text encode produces, newline included (without NUL). */
#define PARLEY_KEYFILE_TEXT_MAX 256u

struct parley_keyfile {
  uint64_t opslimit;
  uint64_t memlimit; /* bytes */
  uint8_t salt[PARLEY_KEYFILE_SALT_LEN];
  uint8_t nonce[PARLEY_KEYFILE_NONCE_LEN];
  uint8_t ct[PARLEY_KEYFILE_CT_LEN];
};

/* Encrypts seed under pass[0..pass_len) with fresh salt and nonce and the
 * given Argon2id costs (0, 0 = OPSLIMIT_INTERACTIVE, MEMLIMIT_INTERACTIVE).
 * Errors: PARLEY_EINVAL (costs out of bounds), PARLEY_ENOMEM (Argon2 could
 * not get its memory). */
PARLEY_NODISCARD int parley_keyfile_seal(const uint8_t seed[32],
                                         const char *pass, size_t pass_len,
                                         uint64_t opslimit, uint64_t memlimit,
                                         struct parley_keyfile *out)
    PARLEY_NONNULL(1, 6);

/* Decrypts kf into seed (wiped on failure).  PARLEY_EAUTH for a wrong
 * passphrase or a tampered file, PARLEY_EINVAL for costs out of bounds,
 * PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_keyfile_open(const struct parley_keyfile *kf,
                                         const char *pass, size_t pass_len,
                                         uint8_t seed[32])
    PARLEY_NONNULL(1, 4);

/* decode + open + parley_identity_from_seed, wiping the seed.  Errors as
 * parley_keyfile_decode and parley_keyfile_open. */
PARLEY_NODISCARD int parley_keyfile_unlock(const char *text, size_t len,
                                           const char *pass, size_t pass_len,
                                           struct parley_identity *id)
    PARLEY_NONNULL(1, 5);

/* Writes the text form (NUL-terminated; *written excludes the NUL) into
 * out.  PARLEY_ETOOBIG if cap is too small (PARLEY_KEYFILE_TEXT_MAX + 1 is
 * always enough), PARLEY_EINVAL for costs out of bounds. */
PARLEY_NODISCARD int parley_keyfile_encode(const struct parley_keyfile *kf,
                                           char *out, size_t cap,
                                           size_t *written)
    PARLEY_NONNULL(1, 2, 4);

/* Parses text[0..len) (the final '\n' may be missing; nothing may follow
 * it).  PARLEY_EVERSION for "parley-key-vN" with another N or another
 * algorithm name, PARLEY_ESYNTAX for anything else malformed (including a
 * plain hex seed file), PARLEY_ERANGE for costs out of bounds. */
PARLEY_NODISCARD int parley_keyfile_decode(const char *text, size_t len,
                                           struct parley_keyfile *kf)
    PARLEY_NONNULL(1, 3);

/* 1 if text looks like a passphrase-protected key file ("parley-key-"
 * prefix), 0 otherwise (e.g. the plain hex seed of identity.h). */
int parley_keyfile_is_protected(const char *text, size_t len)
    PARLEY_NONNULL(1);

#endif
