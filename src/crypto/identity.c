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
#include "crypto/keyfile.h"

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

/* ---- passphrase-protected key files ------------------------------------ */

/* Longest key file text read: a protected file is at most
 * PARLEY_KEYFILE_TEXT_MAX bytes, a plain one 65. */
#define KEY_TEXT_CAP (PARLEY_KEYFILE_TEXT_MAX + 2)

/* Reads the whole open key file fd (same checks as load_fd) into text.
 * OUT: *len.  PARLEY_EAUTH for a file that is not a regular file, is
 * group/other accessible or is too long to be a key file. */
static int read_key_text(int fd, char text[KEY_TEXT_CAP], size_t *len) {
  struct stat st;
  size_t got = 0;

  *len = 0;
  if (fstat(fd, &st) != 0)
    return PARLEY_EIO;
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
    return PARLEY_EAUTH;
  while (got < KEY_TEXT_CAP) {
    ssize_t r = read(fd, text + got, KEY_TEXT_CAP - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      sodium_memzero(text, KEY_TEXT_CAP);
      return PARLEY_EIO;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  if (got == KEY_TEXT_CAP) {
    sodium_memzero(text, KEY_TEXT_CAP);
    return PARLEY_EAUTH;
  }
  *len = got;
  return PARLEY_OK;
}

/* Writes text to path atomically (path.tmp with O_EXCL and mode 0600,
 * fsync, rename over path, directory fsync). */
static int write_text_atomic(const char *path, const char *text, size_t len) {
  size_t plen = strlen(path);
  char *tmp = parley_malloc(plen + sizeof(".tmp"));
  int fd, rc = PARLEY_OK;

  if (tmp == NULL)
    return PARLEY_ENOMEM;
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", sizeof(".tmp"));
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == EEXIST) {
    /* Left by a crash before the rename: nothing refers to it. */
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0600);
  }
  if (fd < 0) {
    parley_free(tmp);
    return PARLEY_EIO;
  }
  if (write_all(fd, text, len) < 0 || fsync(fd) != 0)
    rc = PARLEY_EIO;
  if (close(fd) != 0)
    rc = PARLEY_EIO;
  if (rc == PARLEY_OK && rename(tmp, path) != 0)
    rc = PARLEY_EIO;
  if (rc < 0)
    (void)unlink(tmp);
  else
    sync_parent_dir(path);
  parley_free(tmp);
  return rc;
}

/* Seals the seed of id under pass and writes the protected file. */
static int write_protected(const char *path, const struct parley_identity *id,
                           const char *pass, size_t pass_len,
                           uint64_t opslimit, uint64_t memlimit) {
  struct parley_keyfile kf;
  char text[PARLEY_KEYFILE_TEXT_MAX + 1];
  size_t len = 0;
  int rc;

  /* The Ed25519 secret key is seed || pk. */
  rc = parley_keyfile_seal(id->sk, pass, pass_len, opslimit, memlimit, &kf);
  if (rc == PARLEY_OK)
    rc = parley_keyfile_encode(&kf, text, sizeof text, &len);
  if (rc == PARLEY_OK)
    rc = write_text_atomic(path, text, len);
  sodium_memzero(&kf, sizeof kf);
  sodium_memzero(text, sizeof text);
  return rc;
}

/* Loads a plain seed file the way parley_identity_load_or_create does. */
static int load_plain(const char *path, struct parley_identity *id) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int rc;

  if (fd < 0)
    return errno == ELOOP ? PARLEY_EAUTH
           : errno == ENOENT ? PARLEY_ENOTFOUND
                             : PARLEY_EIO;
  rc = load_fd(fd, id);
  close(fd);
  if (rc < 0)
    parley_identity_wipe(id);
  return rc;
}

int parley_identity_load_or_create_pass(const char *path, const char *pass,
                                        size_t pass_len, uint64_t opslimit,
                                        uint64_t memlimit,
                                        struct parley_identity *id,
                                        int *created) {
  char text[KEY_TEXT_CAP];
  size_t len = 0;
  int fd, rc;

  *created = 0;
  if (path[0] == '\0' || (pass != NULL && pass_len == 0))
    return PARLEY_EINVAL;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (pass == NULL) {
    /* A plain key file as before; a protected one needs its passphrase. */
    if (fd >= 0) {
      rc = read_key_text(fd, text, &len);
      close(fd);
      if (rc == PARLEY_OK && parley_keyfile_is_protected(text, len))
        rc = PARLEY_EDENIED;
      sodium_memzero(text, sizeof text);
      if (rc < 0)
        return rc;
    }
    return parley_identity_load_or_create(path, id, created);
  }
  if (fd < 0 && errno == ENOENT) {
    rc = parley_identity_generate(id);
    if (rc == PARLEY_OK)
      rc = write_protected(path, id, pass, pass_len, opslimit, memlimit);
    if (rc < 0)
      parley_identity_wipe(id);
    else
      *created = 1;
    return rc;
  }
  if (fd < 0)
    return errno == ELOOP ? PARLEY_EAUTH : PARLEY_EIO;
  rc = read_key_text(fd, text, &len);
  close(fd);
  if (rc == PARLEY_OK) {
    if (!parley_keyfile_is_protected(text, len)) {
      rc = PARLEY_EINVAL;
    } else {
      rc = parley_keyfile_unlock(text, len, pass, pass_len, id);
      if (rc == PARLEY_EAUTH)
        rc = PARLEY_ECRYPTO; /* wrong passphrase or altered file */
    }
  }
  sodium_memzero(text, sizeof text);
  if (rc < 0)
    parley_identity_wipe(id);
  return rc;
}

int parley_identity_protect_file(const char *path, const char *pass,
                                 size_t pass_len, uint64_t opslimit,
                                 uint64_t memlimit) {
  struct parley_identity id;
  char text[KEY_TEXT_CAP];
  size_t len = 0;
  int fd, rc;

  if (path[0] == '\0' || pass_len == 0)
    return PARLEY_EINVAL;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return errno == ENOENT  ? PARLEY_ENOTFOUND
           : errno == ELOOP ? PARLEY_EAUTH
                            : PARLEY_EIO;
  rc = read_key_text(fd, text, &len);
  close(fd);
  if (rc == PARLEY_OK && parley_keyfile_is_protected(text, len))
    rc = PARLEY_EEXIST;
  sodium_memzero(text, sizeof text);
  if (rc < 0)
    return rc;
  memset(&id, 0, sizeof id);
  rc = load_plain(path, &id);
  if (rc == PARLEY_OK)
    rc = write_protected(path, &id, pass, pass_len, opslimit, memlimit);
  parley_identity_wipe(&id);
  return rc;
}
