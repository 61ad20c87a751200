/*
 * identity.c — long-term Ed25519 identities and their key file.
 *
 * Key file format: the 32-byte Ed25519 seed as 64 lower-case hex digits and
 * one '\n' (a file without the final newline is accepted too).  Nothing
 * else: the public key and the X25519 forms are derived on load.  The file
 * must not be accessible by group or others (mode & 077 == 0).
 */
#include "crypto/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

#define SEED_LEN crypto_sign_SEEDBYTES
#define SEED_HEX_LEN (2 * SEED_LEN)

int parley_crypto_init(void) {
  /* 0: initialised now; 1: already initialised; -1: failure. */
  return sodium_init() < 0 ? PARLEY_EINTERNAL : PARLEY_OK;
}

int parley_identity_from_seed(struct parley_identity *id,
                              const uint8_t seed[32]) {
  sodium_memzero(id, sizeof *id);
  if (crypto_sign_seed_keypair(id->pk, id->sk, seed) != 0)
    goto bad;
  if (crypto_sign_ed25519_pk_to_curve25519(id->x_pk, id->pk) != 0)
    goto bad;
  if (crypto_sign_ed25519_sk_to_curve25519(id->x_sk, id->sk) != 0)
    goto bad;
  return PARLEY_OK;
bad:
  sodium_memzero(id, sizeof *id);
  return PARLEY_EINTERNAL;
}

int parley_identity_generate(struct parley_identity *id) {
  uint8_t seed[SEED_LEN];
  randombytes_buf(seed, sizeof seed);
  int rc = parley_identity_from_seed(id, seed);
  sodium_memzero(seed, sizeof seed);
  return rc;
}

void parley_identity_wipe(struct parley_identity *id) {
  sodium_memzero(id, sizeof *id);
}

void parley_identity_sign(const struct parley_identity *id, const uint8_t *msg,
                          size_t len, uint8_t sig[64]) {
  static const uint8_t empty[1] = {0};
  /* crypto_sign_detached cannot fail for a well-formed secret key. */
  if (crypto_sign_detached(sig, NULL, msg ? msg : empty, len, id->sk) != 0)
    memset(sig, 0, crypto_sign_BYTES);
}

int parley_sig_verify(const uint8_t pk[32], const uint8_t *msg, size_t len,
                      const uint8_t sig[64]) {
  static const uint8_t empty[1] = {0};
  if (len && msg == NULL)
    return PARLEY_EINVAL;
  if (crypto_sign_verify_detached(sig, msg ? msg : empty, len, pk) != 0)
    return PARLEY_ECRYPTO;
  return PARLEY_OK;
}

/* ---- key file ---------------------------------------------------------- */

/* Reads the open key file fd into id.  PARLEY_EAUTH for a file that is not
 * a regular file, is group/other accessible, or holds anything but a seed. */
static int load_fd(int fd, struct parley_identity *id) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return PARLEY_EIO;
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
    return PARLEY_EAUTH;

  /* One byte more than the longest valid file, to detect trailing data. */
  char text[SEED_HEX_LEN + 2] = {0};
  size_t got = 0;
  while (got < sizeof text) {
    ssize_t r = read(fd, text + got, sizeof text - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      sodium_memzero(text, sizeof text);
      return PARLEY_EIO;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }

  int rc = PARLEY_EAUTH;
  uint8_t seed[SEED_LEN];
  size_t bin_len = 0;
  const char *end = NULL;
  int shape_ok = got == SEED_HEX_LEN ||
                 (got == SEED_HEX_LEN + 1 && text[SEED_HEX_LEN] == '\n');
  /* sodium_hex2bin runs in constant time: the text is a secret. */
  if (shape_ok &&
      sodium_hex2bin(seed, sizeof seed, text, SEED_HEX_LEN, NULL, &bin_len,
                     &end) == 0 &&
      bin_len == SEED_LEN && end == text + SEED_HEX_LEN)
    rc = parley_identity_from_seed(id, seed);
  sodium_memzero(seed, sizeof seed);
  sodium_memzero(text, sizeof text);
  return rc;
}

static int write_all(int fd, const char *p, size_t len) {
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return PARLEY_EIO;
    p += w;
    len -= (size_t)w;
  }
  return PARLEY_OK;
}

/* fsync the directory holding path so the rename itself is durable.  Best
 * effort: some file systems refuse fsync on directories. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = NULL;
  if (slash == NULL)
    dir = parley_strdup(".");
  else if (slash == path)
    dir = parley_strdup("/");
  else
    dir = parley_strndup(path, (size_t)(slash - path));
  if (dir == NULL)
    return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  parley_free(dir);
}

/* Creates a new identity at path: written to path.tmp (O_EXCL, 0600),
 * fsync'ed, then renamed over path. */
static int create_file(const char *path, struct parley_identity *id) {
  size_t plen = strlen(path);
  char *tmp = parley_malloc(plen + sizeof(".tmp"));
  if (tmp == NULL)
    return PARLEY_ENOMEM;
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", sizeof(".tmp"));

  uint8_t seed[SEED_LEN];
  char text[SEED_HEX_LEN + 2] = {0};
  int rc, fd = -1;

  randombytes_buf(seed, sizeof seed);
  if ((rc = parley_identity_from_seed(id, seed)) < 0)
    goto out;
  sodium_bin2hex(text, SEED_HEX_LEN + 1, seed, sizeof seed);
  text[SEED_HEX_LEN] = '\n';

  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == EEXIST) {
    /* A temp file left by a crash between create and rename: path itself
     * does not exist, so nothing refers to it. */
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
  if (fd < 0) {
    rc = PARLEY_EIO;
    goto out;
  }
  if (write_all(fd, text, SEED_HEX_LEN + 1) < 0 || fsync(fd) != 0) {
    rc = PARLEY_EIO;
    goto out_unlink;
  }
  if (close(fd) != 0) {
    fd = -1;
    rc = PARLEY_EIO;
    goto out_unlink;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    rc = PARLEY_EIO;
    goto out_unlink;
  }
  sync_parent_dir(path);
  rc = PARLEY_OK;
  goto out;

out_unlink:
  if (fd >= 0)
    close(fd);
  fd = -1;
  (void)unlink(tmp);
out:
  if (fd >= 0)
    close(fd);
  if (rc < 0)
    parley_identity_wipe(id);
  sodium_memzero(seed, sizeof seed);
  sodium_memzero(text, sizeof text);
  parley_free(tmp);
  return rc;
}

int parley_identity_load_or_create(const char *path, struct parley_identity *id,
                                   int *created) {
  *created = 0;
  if (path[0] == '\0')
    return PARLEY_EINVAL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    int rc = create_file(path, id);
    if (rc == PARLEY_OK)
      *created = 1;
    return rc;
  }
  if (fd < 0)
    return errno == ELOOP ? PARLEY_EAUTH : PARLEY_EIO;
  int rc = load_fd(fd, id);
  close(fd);
  if (rc < 0)
    parley_identity_wipe(id);
  return rc;
}
