/*
 * identity.h — a node's long-term Ed25519 identity.
 *
 * The public key is the node's id (text form: parley_id_encode).  The X25519
 * key used as the Noise static key is derived from the Ed25519 key with
 * libsodium's crypto_sign_ed25519_{pk,sk}_to_curve25519.  On disk the secret
 * key is the 32-byte Ed25519 seed in a file of mode 0600, either as hex or
 * encrypted under a passphrase (crypto/keyfile.h).
 */
#ifndef PARLEY_CRYPTO_IDENTITY_H
#define PARLEY_CRYPTO_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct parley_identity {
  uint8_t pk[32];   /* Ed25519 public key = node id */
  uint8_t sk[64];   /* Ed25519 secret key (seed || pk) */
  uint8_t x_pk[32]; /* X25519 public key derived from pk */
  uint8_t x_sk[32]; /* X25519 secret key derived from sk */
};

/* Must be called once before any other crypto function (sodium_init). */
PARLEY_NODISCARD int parley_crypto_init(void);

PARLEY_NODISCARD int parley_identity_generate(struct parley_identity *id)
    PARLEY_NONNULL(1);
PARLEY_NODISCARD int parley_identity_from_seed(struct parley_identity *id,
                                               const uint8_t seed[32])
    PARLEY_NONNULL(1, 2);
/* Loads the seed at path, or creates a new identity and writes it with mode
 * 0600 (atomically: temp file + rename).  OUT: *created = 1 if new.
 * PARLEY_EIO on file errors; PARLEY_EAUTH if the file exists but is
 * malformed or readable by group/others. */
PARLEY_NODISCARD int parley_identity_load_or_create(const char *path,
                                                    struct parley_identity *id,
                                                    int *created)
    PARLEY_NONNULL(1, 2, 3);

/* ---- Passphrase-protected key files (crypto/keyfile.h) ----------------- */

/* Like parley_identity_load_or_create, for a key file that may hold the
 * seed encrypted under a passphrase (the keyfile.h text, written with the
 * same care: 0600, temp file, fsync, rename, directory fsync).
 *   - No file: a new identity is created; with pass != NULL its file is
 *     written encrypted (Argon2id costs opslimit/memlimit, 0/0 = libsodium's
 *     INTERACTIVE), with pass == NULL as the plain hex seed.  *created = 1.
 *   - A protected file: decrypted with pass.
 *   - A plain seed file: loaded as parley_identity_load_or_create does, but
 *     only when pass == NULL.
 * pass[0..pass_len) is borrowed and never copied.  Errors: PARLEY_EDENIED
 * (the file is protected and pass is NULL), PARLEY_ECRYPTO (wrong
 * passphrase, or the file was altered), PARLEY_EINVAL (a passphrase was
 * given but the file holds a plain seed: convert it with
 * parley_identity_protect_file first), PARLEY_ESYNTAX / PARLEY_EVERSION /
 * PARLEY_ERANGE (malformed protected file), PARLEY_EAUTH (not a regular
 * file, a symlink, group/other permission bits, or a malformed plain
 * file), PARLEY_EIO, PARLEY_ENOMEM (Argon2 could not get its memory). */
PARLEY_NODISCARD int parley_identity_load_or_create_pass(
    const char *path, const char *pass, size_t pass_len, uint64_t opslimit,
    uint64_t memlimit, struct parley_identity *id, int *created)
    PARLEY_NONNULL(1, 6, 7);

/* Replaces the plain seed file at path by its passphrase-protected form
 * (atomically: the old file is only replaced once the new one is on
 * disk).  Errors: PARLEY_ENOTFOUND (no file), PARLEY_EEXIST (already
 * protected), PARLEY_EINVAL (empty passphrase or bad costs), and those of
 * parley_identity_load_or_create for a file it cannot read. */
PARLEY_NODISCARD int parley_identity_protect_file(const char *path,
                                                  const char *pass,
                                                  size_t pass_len,
                                                  uint64_t opslimit,
                                                  uint64_t memlimit)
    PARLEY_NONNULL(1, 2);

/* Wipes the secrets (sodium_memzero). */
void parley_identity_wipe(struct parley_identity *id) PARLEY_NONNULL(1);

/* Detached Ed25519 signature.  sig must hold 64 bytes. */
void parley_identity_sign(const struct parley_identity *id,
                          const uint8_t *msg, size_t len, uint8_t sig[64])
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_sig_verify(const uint8_t pk[32],
                                       const uint8_t *msg, size_t len,
                                       const uint8_t sig[64])
    PARLEY_NONNULL(1, 4);

#endif
