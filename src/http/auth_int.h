/*
 * auth_int.h — what auth.c (keys, files, lifecycle), auth_jwt.c (tokens,
 * bearer checks) and auth_oauth.c (clients, forms, the token endpoint)
 * share.  Not part of the contract: see auth.h.
 */
#ifndef PARLEY_HTTP_AUTH_INT_H
#define PARLEY_HTTP_AUTH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "http/auth.h"

#define AUTH_KEY_BYTES 32u
/* crypto_pwhash_STRBYTES, checked by a static_assert in auth_oauth.c. */
#define AUTH_HASH_CAP 128u
/* Largest key or client file we read. */
#define AUTH_MAX_FILE (1024u * 1024u)
/* Latest NumericDate we accept (9999-12-31T23:59:59Z), so that seconds
 * times 1000 fits an int64_t with room to spare. */
#define AUTH_MAX_NUMERIC_DATE 253402300799ll
#define AUTH_KEYS_FILE "jwt-keys.json"
#define AUTH_CLIENTS_FILE "oauth-clients.json"
#define AUTH_LOCK_FILE ".auth.lock"

struct auth_key {
  char kid[PARLEY_AUTH_MAX_KID + 1];
  uint8_t secret[AUTH_KEY_BYTES];
  int64_t created_ms;
  int64_t verify_until_ms; /* 0 = the current key */
};

struct auth_client {
  char id[PARLEY_AUTH_MAX_CLIENT_ID + 1];
  int role;
  int64_t created_ms;
  char hash[AUTH_HASH_CAP]; /* crypto_pwhash_str output */
};

/* Identity of a file as last read, to notice changes by other processes. */
struct auth_stamp {
  int valid;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
};

struct parley_auth {
  char *dir;                         /* owned, NULL in memory-only mode */
  char issuer[PARLEY_AUTH_MAX_ISSUER + 1];
  int cluster;                       /* 1: keys derived from cluster_key */
  uint8_t cluster_key[AUTH_KEY_BYTES];
  uint64_t epoch_ms;
  uint32_t leeway_s;
  uint64_t max_ttl_ms, grace_ms, oauth_ttl_ms;
  unsigned long long opslimit;
  size_t memlimit;
  void (*random)(void *ctx, void *buf, size_t n);
  void *random_ctx;
  const struct parley_log *log;

  /* File mode: keys[0] is the current key, then retired ones, newest
   * first. */
  struct auth_key keys[PARLEY_AUTH_MAX_KEYS];
  size_t nkeys;
  struct auth_stamp keys_stamp;

  struct auth_client *clients; /* owned array */
  size_t nclients, clients_alloc;
  struct auth_stamp clients_stamp;
  char dummy_hash[AUTH_HASH_CAP]; /* for unknown client ids; "" until made */

  char errmsg[256];
};

/* ---- auth.c ------------------------------------------------------------- */

/* Formats errmsg (printf-style). */
void parley__auth_err(struct parley_auth *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void parley__auth_random(const struct parley_auth *a, void *buf, size_t n);

/* Reads DIR/name (at most AUTH_MAX_FILE bytes).  Refuses (PARLEY_EAUTH)
 * anything but a regular file of ours with no group/other permission bits.
 * OUT: *data (caller frees, NUL-terminated), *len, *stamp.
 * PARLEY_ENOTFOUND if the file does not exist; PARLEY_EIO, PARLEY_ETOOBIG,
 * PARLEY_ENOMEM.  Messages go to a->errmsg. */
PARLEY_NODISCARD int parley__auth_read_file(struct parley_auth *a,
                                            const char *name, char **data,
                                            size_t *len,
                                            struct auth_stamp *stamp);
/* Writes DIR/name atomically (temp file mode 0600, fsync, rename, fsync of
 * the directory).  OUT: *stamp of the new file. */
PARLEY_NODISCARD int parley__auth_write_file(struct parley_auth *a,
                                             const char *name,
                                             const char *data, size_t len,
                                             struct auth_stamp *stamp);
/* 1 if DIR/name differs from stamp (or vanished/appeared). */
int parley__auth_file_changed(const struct parley_auth *a, const char *name,
                              const struct auth_stamp *stamp);
/* Takes an exclusive advisory lock on DIR/.auth.lock.  OUT: *fd, released
 * with parley__auth_unlock.  In memory-only mode *fd = -1 and it succeeds. */
PARLEY_NODISCARD int parley__auth_lock(struct parley_auth *a, int *fd);
void parley__auth_unlock(int fd);

/* The key for kid that verifies at now_ms.  OUT: key (AUTH_KEY_BYTES).
 * PARLEY_ENOTFOUND. */
PARLEY_NODISCARD int parley__auth_key_lookup(const struct parley_auth *a,
                                             const char *kid, int64_t now_ms,
                                             uint8_t *key);
/* The signing key at now_ms.  OUT: kid (PARLEY_AUTH_MAX_KID + 1), key. */
PARLEY_NODISCARD int parley__auth_key_current(const struct parley_auth *a,
                                              int64_t now_ms, char *kid,
                                              uint8_t *key);

/* 1 if s[0..n) is 1..max chars of [A-Za-z0-9_-] (plus '.' if dot). */
int parley__auth_idchars(const char *s, size_t n, size_t max, int dot);

/* ---- auth_oauth.c ------------------------------------------------------- */

/* Parses the client file text into a (replacing its clients).
 * PARLEY_ESYNTAX, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley__auth_clients_parse(struct parley_auth *a,
                                                const char *text, size_t len);
/* Loads DIR/oauth-clients.json (absent = no clients). */
PARLEY_NODISCARD int parley__auth_clients_load(struct parley_auth *a);
void parley__auth_clients_clear(struct parley_auth *a);

#endif
