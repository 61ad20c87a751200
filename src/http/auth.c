/* auth.c — struct parley_auth: configuration, the key and client files,
 * signing keys (file mode and cluster-derived), rotation. */
#include "http/auth_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/util.h"

/* crypto_kdf context of cluster-derived token keys (8 bytes). */
static const char kdf_context[crypto_kdf_CONTEXTBYTES] = {
    'p', 'a', 'r', 'l', 'e', 'y', 'J', 'W'};

_Static_assert(crypto_kdf_KEYBYTES == AUTH_KEY_BYTES, "kdf key size");
_Static_assert(crypto_auth_hmacsha256_KEYBYTES == AUTH_KEY_BYTES,
               "hmac key size");

/* ---- small helpers ------------------------------------------------------ */

void parley__auth_err(struct parley_auth *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->errmsg, sizeof a->errmsg, fmt, ap);
  va_end(ap);
}

void parley__auth_random(const struct parley_auth *a, void *buf, size_t n) {
  if (a->random)
    a->random(a->random_ctx, buf, n);
  else
    randombytes_buf(buf, n);
}

int parley__auth_idchars(const char *s, size_t n, size_t max, int dot) {
  if (n == 0 || n > max)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' ||
          (dot && c == '.')))
      return 0;
  }
  return 1;
}

/* DIR/name; caller frees. */
static char *path_of(const struct parley_auth *a, const char *name) {
  size_t dl = strlen(a->dir), nl = strlen(name);
  char *p = parley_malloc(dl + nl + 2);
  if (p == NULL)
    return NULL;
  memcpy(p, a->dir, dl);
  p[dl] = '/';
  memcpy(p + dl + 1, name, nl + 1);
  return p;
}

static void stamp_of(const struct stat *st, struct auth_stamp *s) {
  s->valid = 1;
  s->dev = st->st_dev;
  s->ino = st->st_ino;
  s->size = st->st_size;
  s->mtime = st->st_mtim;
}

/* ---- files -------------------------------------------------------------- */

int parley__auth_read_file(struct parley_auth *a, const char *name,
                           char **data, size_t *len, struct auth_stamp *stamp) {
  struct stat st;
  char *path = path_of(a, name), *buf = NULL;
  size_t got = 0;
  int fd, rc = PARLEY_OK;

  *data = NULL;
  *len = 0;
  memset(stamp, 0, sizeof *stamp);
  if (path == NULL)
    return PARLEY_ENOMEM;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    rc = errno == ENOENT ? PARLEY_ENOTFOUND : PARLEY_EIO;
    if (rc == PARLEY_EIO)
      parley__auth_err(a, "%s: %s", path, strerror(errno));
    goto out;
  }
  if (fstat(fd, &st) != 0) {
    parley__auth_err(a, "%s: %s", path, strerror(errno));
    rc = PARLEY_EIO;
    goto out;
  }
  if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 077) != 0) {
    parley__auth_err(a,
                     "%s: refusing a file that is not a regular file of "
                     "this user with mode 0600 (mode %04o)",
                     path, (unsigned)(st.st_mode & 07777));
    rc = PARLEY_EAUTH;
    goto out;
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > AUTH_MAX_FILE) {
    parley__auth_err(a, "%s: larger than %u bytes", path, AUTH_MAX_FILE);
    rc = PARLEY_ETOOBIG;
    goto out;
  }
  buf = parley_malloc((size_t)st.st_size + 1);
  if (buf == NULL) {
    rc = PARLEY_ENOMEM;
    goto out;
  }
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      parley__auth_err(a, "%s: %s", path, strerror(errno));
      rc = PARLEY_EIO;
      goto out;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  buf[got] = '\0';
  stamp_of(&st, stamp);
  *data = buf;
  *len = got;
  buf = NULL;
out:
  if (fd >= 0)
    close(fd);
  if (buf) {
    sodium_memzero(buf, (size_t)st.st_size + 1);
    parley_free(buf);
  }
  parley_free(path);
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

int parley__auth_write_file(struct parley_auth *a, const char *name,
                            const char *data, size_t len,
                            struct auth_stamp *stamp) {
  char *path = path_of(a, name), *tmp = NULL;
  struct stat st;
  int fd = -1, rc = PARLEY_EIO, dfd;
  size_t pl;

  if (path == NULL)
    return PARLEY_ENOMEM;
  pl = strlen(path);
  tmp = parley_malloc(pl + 32);
  if (tmp == NULL) {
    parley_free(path);
    return PARLEY_ENOMEM;
  }
  /* A per-process temp name: the lock serialises our writers, the pid
   * keeps a stale file of a crashed process from being reused. */
  snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
  (void)unlink(tmp);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    parley__auth_err(a, "%s: %s", tmp, strerror(errno));
    goto out;
  }
  if (write_all(fd, data, len) < 0 || fsync(fd) != 0 || fstat(fd, &st) != 0) {
    parley__auth_err(a, "%s: %s", tmp, strerror(errno));
    goto out_unlink;
  }
  if (close(fd) != 0) {
    fd = -1;
    parley__auth_err(a, "%s: %s", tmp, strerror(errno));
    goto out_unlink;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    parley__auth_err(a, "%s: %s", path, strerror(errno));
    goto out_unlink;
  }
  dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd); /* best effort: some file systems refuse */
    close(dfd);
  }
  if (stamp)
    stamp_of(&st, stamp);
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
  parley_free(tmp);
  parley_free(path);
  return rc;
}

int parley__auth_file_changed(const struct parley_auth *a, const char *name,
                              const struct auth_stamp *stamp) {
  struct stat st;
  char *path;
  int r;
  if (a->dir == NULL)
    return 0;
  path = path_of(a, name);
  if (path == NULL)
    return 1; /* cannot tell: let the caller reload and find out */
  r = lstat(path, &st);
  parley_free(path);
  if (r != 0)
    return stamp->valid;
  return !stamp->valid || st.st_dev != stamp->dev ||
         st.st_ino != stamp->ino || st.st_size != stamp->size ||
         st.st_mtim.tv_sec != stamp->mtime.tv_sec ||
         st.st_mtim.tv_nsec != stamp->mtime.tv_nsec;
}

int parley__auth_lock(struct parley_auth *a, int *fd) {
  char *path;
  int r;
  *fd = -1;
  if (a->dir == NULL)
    return PARLEY_OK;
  path = path_of(a, AUTH_LOCK_FILE);
  if (path == NULL)
    return PARLEY_ENOMEM;
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (*fd < 0) {
    parley__auth_err(a, "%s: %s", path, strerror(errno));
    parley_free(path);
    return PARLEY_EIO;
  }
  do
    r = flock(*fd, LOCK_EX);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    parley__auth_err(a, "%s: lock: %s", path, strerror(errno));
    close(*fd);
    *fd = -1;
    parley_free(path);
    return PARLEY_EIO;
  }
  parley_free(path);
  return PARLEY_OK;
}

void parley__auth_unlock(int fd) {
  if (fd >= 0)
    close(fd); /* releases the flock */
}

/* ---- the key file ------------------------------------------------------- */
/*
 * DIR/jwt-keys.json:
 *   {"version":1,"keys":[{"kid":"...","secret":"<64 hex>",
 *     "created_ms":N,"verify_until_ms":N}, ...]}
 * verify_until_ms 0 marks the one current key.
 */

static int get_i64(json_t *o, const char *k, int64_t *out) {
  json_t *v = json_object_get(o, k);
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return PARLEY_ESYNTAX;
  *out = (int64_t)json_integer_value(v);
  return PARLEY_OK;
}

/* Puts the current key first and retired ones newest first. */
static void sort_keys(struct auth_key *k, size_t n) {
  for (size_t i = 1; i < n; i++) {
    struct auth_key t = k[i];
    size_t j = i;
    /* current (0) sorts before all; otherwise later verify_until first */
    while (j > 0 &&
           (t.verify_until_ms == 0 ||
            (k[j - 1].verify_until_ms != 0 &&
             t.verify_until_ms > k[j - 1].verify_until_ms))) {
      k[j] = k[j - 1];
      j--;
    }
    k[j] = t;
    sodium_memzero(&t, sizeof t);
  }
}

static int keys_parse(struct parley_auth *a, const char *text, size_t len,
                      struct auth_key *keys, size_t *nkeys) {
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *arr, *it;
  size_t i, ncurrent = 0;
  int rc = PARLEY_ESYNTAX;

  *nkeys = 0;
  if (root == NULL) {
    parley__auth_err(a, "%s: line %d: %s", AUTH_KEYS_FILE, jerr.line,
                     jerr.text);
    return PARLEY_ESYNTAX;
  }
  arr = json_object_get(root, "keys");
  if (!json_is_integer(json_object_get(root, "version")) ||
      json_integer_value(json_object_get(root, "version")) != 1 ||
      !json_is_array(arr) || json_array_size(arr) == 0 ||
      json_array_size(arr) > PARLEY_AUTH_MAX_KEYS) {
    parley__auth_err(a, "%s: not a version 1 key file with 1..%u keys",
                     AUTH_KEYS_FILE, PARLEY_AUTH_MAX_KEYS);
    goto out;
  }
  json_array_foreach(arr, i, it) {
    struct auth_key *k = &keys[i];
    const char *kid = json_string_value(json_object_get(it, "kid"));
    const char *hex = json_string_value(json_object_get(it, "secret"));
    size_t bin_len = 0;
    const char *end = NULL;
    if (kid == NULL || hex == NULL ||
        !parley__auth_idchars(kid, strlen(kid), PARLEY_AUTH_MAX_KID, 0) ||
        strlen(hex) != 2 * AUTH_KEY_BYTES ||
        sodium_hex2bin(k->secret, AUTH_KEY_BYTES, hex, strlen(hex), NULL,
                       &bin_len, &end) != 0 ||
        bin_len != AUTH_KEY_BYTES ||
        get_i64(it, "created_ms", &k->created_ms) < 0 ||
        get_i64(it, "verify_until_ms", &k->verify_until_ms) < 0) {
      parley__auth_err(a, "%s: key %zu is invalid", AUTH_KEYS_FILE, i);
      goto out;
    }
    memcpy(k->kid, kid, strlen(kid) + 1);
    for (size_t j = 0; j < i; j++)
      if (strcmp(keys[j].kid, k->kid) == 0) {
        parley__auth_err(a, "%s: kid %s appears twice", AUTH_KEYS_FILE, kid);
        goto out;
      }
    ncurrent += k->verify_until_ms == 0;
    *nkeys = i + 1;
  }
  if (ncurrent != 1) {
    parley__auth_err(a, "%s: %zu current keys (need exactly one)",
                     AUTH_KEYS_FILE, ncurrent);
    goto out;
  }
  sort_keys(keys, *nkeys);
  rc = PARLEY_OK;
out:
  if (rc < 0) {
    sodium_memzero(keys, sizeof(struct auth_key) * PARLEY_AUTH_MAX_KEYS);
    *nkeys = 0;
  }
  json_decref(root);
  return rc;
}

/* Serialises keys; OUT: *text (caller wipes and frees). */
static int keys_dump(const struct auth_key *keys, size_t n, char **text) {
  json_t *root = json_object(), *arr = json_array();
  char hex[2 * AUTH_KEY_BYTES + 1];
  int rc = PARLEY_ENOMEM;
  *text = NULL;
  if (root == NULL || arr == NULL)
    goto out;
  for (size_t i = 0; i < n; i++) {
    json_t *o;
    sodium_bin2hex(hex, sizeof hex, keys[i].secret, AUTH_KEY_BYTES);
    o = json_pack("{s:s, s:s, s:I, s:I}", "kid", keys[i].kid, "secret", hex,
                  "created_ms", (json_int_t)keys[i].created_ms,
                  "verify_until_ms", (json_int_t)keys[i].verify_until_ms);
    sodium_memzero(hex, sizeof hex);
    if (o == NULL || json_array_append_new(arr, o) != 0)
      goto out;
  }
  if (json_object_set_new(root, "version", json_integer(1)) != 0 ||
      json_object_set(root, "keys", arr) != 0)
    goto out;
  *text = json_dumps(root, JSON_INDENT(2));
  rc = *text ? PARLEY_OK : PARLEY_ENOMEM;
out:
  /* jansson frees its copies of the hex secrets without wiping them. */
  json_decref(arr);
  json_decref(root);
  return rc;
}

static int keys_write(struct parley_auth *a, const struct auth_key *keys,
                      size_t n) {
  char *text;
  int rc = keys_dump(keys, n, &text);
  if (rc < 0)
    return rc;
  rc = parley__auth_write_file(a, AUTH_KEYS_FILE, text, strlen(text),
                               &a->keys_stamp);
  sodium_memzero(text, strlen(text));
  free(text); /* from json_dumps */
  return rc;
}

static void new_key(const struct parley_auth *a, int64_t now_ms,
                    struct auth_key *k) {
  uint8_t id[12];
  memset(k, 0, sizeof *k);
  parley__auth_random(a, k->secret, AUTH_KEY_BYTES);
  parley__auth_random(a, id, sizeof id);
  sodium_bin2base64(k->kid, sizeof k->kid, id, sizeof id,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  k->created_ms = now_ms;
  k->verify_until_ms = 0;
}

/* Drops retired keys whose grace has passed, and the oldest retired ones
 * beyond room (keeping room for `spare` more). */
static void prune(struct auth_key *keys, size_t *n, int64_t now_ms,
                  size_t spare) {
  size_t w = 0;
  for (size_t i = 0; i < *n; i++) {
    if (keys[i].verify_until_ms != 0 && keys[i].verify_until_ms <= now_ms)
      continue;
    if (w != i)
      keys[w] = keys[i];
    w++;
  }
  while (w + spare > PARLEY_AUTH_MAX_KEYS && w > 1)
    w--; /* sorted: the last one is the oldest retired key */
  for (size_t i = w; i < *n; i++)
    sodium_memzero(&keys[i], sizeof keys[i]);
  *n = w;
}

/* Reads the key file into keys (not into a).  PARLEY_ENOTFOUND if absent. */
static int keys_read(struct parley_auth *a, struct auth_key *keys, size_t *n,
                     struct auth_stamp *stamp) {
  char *text;
  size_t len;
  int rc = parley__auth_read_file(a, AUTH_KEYS_FILE, &text, &len, stamp);
  if (rc < 0)
    return rc;
  rc = keys_parse(a, text, len, keys, n);
  sodium_memzero(text, len);
  parley_free(text);
  return rc;
}

static void keys_install(struct parley_auth *a, struct auth_key *keys,
                         size_t n, const struct auth_stamp *stamp) {
  sodium_memzero(a->keys, sizeof a->keys);
  memcpy(a->keys, keys, n * sizeof *keys);
  a->nkeys = n;
  a->keys_stamp = *stamp;
  sodium_memzero(keys, n * sizeof *keys);
}

/* Loads the key file, creating it with one key when absent. */
static int keys_load_or_create(struct parley_auth *a, int64_t now_ms) {
  struct auth_key keys[PARLEY_AUTH_MAX_KEYS];
  struct auth_stamp stamp;
  size_t n = 0;
  int lockfd, rc;

  rc = keys_read(a, keys, &n, &stamp);
  if (rc == PARLEY_ENOTFOUND) {
    /* First start: create under the lock, re-checking that no other
     * process (the daemon and the CLI) got there first. */
    if ((rc = parley__auth_lock(a, &lockfd)) < 0)
      return rc;
    rc = keys_read(a, keys, &n, &stamp);
    if (rc == PARLEY_ENOTFOUND) {
      new_key(a, now_ms, &keys[0]);
      n = 1;
      rc = keys_write(a, keys, n);
      stamp = a->keys_stamp;
      if (rc == PARLEY_OK)
        PARLEY_LOG(a->log, PARLEY_LOG_INFO, "auth: created %s/%s (kid %s)",
                   a->dir, AUTH_KEYS_FILE, keys[0].kid);
    }
    parley__auth_unlock(lockfd);
  }
  if (rc < 0) {
    sodium_memzero(keys, sizeof keys);
    return rc;
  }
  prune(keys, &n, now_ms, 0);
  keys_install(a, keys, n, &stamp);
  return PARLEY_OK;
}

/* ---- cluster-derived keys ----------------------------------------------- */

static void cluster_key_for(const struct parley_auth *a, uint64_t epoch,
                            uint8_t *key) {
  (void)crypto_kdf_derive_from_key(key, AUTH_KEY_BYTES, epoch, kdf_context,
                                   a->cluster_key);
}

/* Epoch e's key signs during [e*epoch_ms, (e+1)*epoch_ms) and verifies
 * from its start (less the leeway, for a node whose clock runs ahead)
 * until grace_ms after its end. */
static int cluster_epoch_valid(const struct parley_auth *a, uint64_t e,
                               int64_t now_ms) {
  uint64_t now = now_ms < 0 ? 0 : (uint64_t)now_ms;
  uint64_t leeway = (uint64_t)a->leeway_s * 1000u;
  uint64_t start, end;
  if (e > UINT64_MAX / a->epoch_ms - 2)
    return 0;
  start = e * a->epoch_ms;
  end = start + a->epoch_ms;
  if (start > now + leeway)
    return 0;
  return now < end || now - end < a->grace_ms;
}

/* ---- key lookup --------------------------------------------------------- */

int parley__auth_key_lookup(const struct parley_auth *a, const char *kid,
                            int64_t now_ms, uint8_t *key) {
  if (a->cluster) {
    uint64_t e;
    /* "c" + canonical decimal (no sign, no leading zeros). */
    if (kid[0] != 'c' || kid[1] < '0' || kid[1] > '9' ||
        (kid[1] == '0' && kid[2] != '\0') ||
        parley_parse_u64(kid + 1, 0, UINT64_MAX, &e) < 0 ||
        !cluster_epoch_valid(a, e, now_ms))
      return PARLEY_ENOTFOUND;
    cluster_key_for(a, e, key);
    return PARLEY_OK;
  }
  for (size_t i = 0; i < a->nkeys; i++) {
    const struct auth_key *k = &a->keys[i];
    if (strcmp(k->kid, kid) != 0)
      continue;
    if (k->verify_until_ms != 0 && k->verify_until_ms <= now_ms)
      return PARLEY_ENOTFOUND;
    memcpy(key, k->secret, AUTH_KEY_BYTES);
    return PARLEY_OK;
  }
  return PARLEY_ENOTFOUND;
}

int parley__auth_key_current(const struct parley_auth *a, int64_t now_ms,
                             char *kid, uint8_t *key) {
  if (a->cluster) {
    uint64_t e;
    if (now_ms < 0)
      return PARLEY_EINVAL;
    e = (uint64_t)now_ms / a->epoch_ms;
    snprintf(kid, PARLEY_AUTH_MAX_KID + 1, "c%llu", (unsigned long long)e);
    cluster_key_for(a, e, key);
    return PARLEY_OK;
  }
  if (a->nkeys == 0)
    return PARLEY_EINTERNAL;
  memcpy(kid, a->keys[0].kid, PARLEY_AUTH_MAX_KID + 1);
  memcpy(key, a->keys[0].secret, AUTH_KEY_BYTES);
  return PARLEY_OK;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int issuer_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > PARLEY_AUTH_MAX_ISSUER)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
      return 0;
  return 1;
}

int parley_auth_new(const struct parley_auth_config *cfg, int64_t now_ms,
                    struct parley_auth **out, char *err, size_t errcap) {
  struct parley_auth *a;
  const char *iss = cfg->issuer ? cfg->issuer : PARLEY_AUTH_DEFAULT_ISSUER;
  int rc;

  *out = NULL;
  if (err && errcap)
    err[0] = '\0';
  if (sodium_init() < 0) {
    if (err)
      snprintf(err, errcap, "libsodium failed to initialise");
    return PARLEY_EINTERNAL;
  }
  a = parley_calloc(1, sizeof *a);
  if (a == NULL)
    return PARLEY_ENOMEM;
  a->cluster = cfg->cluster_key != NULL;
  a->epoch_ms = cfg->epoch_ms ? cfg->epoch_ms : PARLEY_AUTH_DEFAULT_EPOCH_MS;
  a->leeway_s = cfg->leeway_s;
  a->max_ttl_ms =
      cfg->max_ttl_ms ? cfg->max_ttl_ms : PARLEY_AUTH_DEFAULT_MAX_TTL_MS;
  a->grace_ms = cfg->grace_ms ? cfg->grace_ms : a->max_ttl_ms;
  a->oauth_ttl_ms =
      cfg->oauth_ttl_ms ? cfg->oauth_ttl_ms : PARLEY_AUTH_DEFAULT_OAUTH_TTL_MS;
  a->opslimit = cfg->pwhash_opslimit ? cfg->pwhash_opslimit
                                     : crypto_pwhash_OPSLIMIT_INTERACTIVE;
  a->memlimit = cfg->pwhash_memlimit ? cfg->pwhash_memlimit
                                     : crypto_pwhash_MEMLIMIT_INTERACTIVE;
  a->random = cfg->random;
  a->random_ctx = cfg->random_ctx;
  a->log = cfg->log;

  rc = PARLEY_EINVAL;
  if (!issuer_ok(iss)) {
    parley__auth_err(a, "issuer must be 1..%u printable characters",
                     PARLEY_AUTH_MAX_ISSUER);
    goto fail;
  }
  memcpy(a->issuer, iss, strlen(iss) + 1);
  if (cfg->dir == NULL && !a->cluster) {
    parley__auth_err(a, "a key directory is needed without a cluster key");
    goto fail;
  }
  if (a->leeway_s > PARLEY_AUTH_MAX_LEEWAY_S ||
      a->max_ttl_ms < 1000u ||
      a->max_ttl_ms > 10ull * 366u * 24u * 3600u * 1000u ||
      a->oauth_ttl_ms < 1000u || a->oauth_ttl_ms > a->max_ttl_ms ||
      a->epoch_ms < 60000u ||
      a->grace_ms > 10ull * 366u * 24u * 3600u * 1000u ||
      a->opslimit < crypto_pwhash_OPSLIMIT_MIN ||
      a->opslimit > crypto_pwhash_OPSLIMIT_MAX ||
      a->memlimit < crypto_pwhash_MEMLIMIT_MIN ||
      (uint64_t)a->memlimit > (uint64_t)1 << 32 || now_ms < 0) {
    parley__auth_err(a, "auth configuration out of range");
    goto fail;
  }
  if (a->cluster)
    memcpy(a->cluster_key, cfg->cluster_key, AUTH_KEY_BYTES);
  if (cfg->dir) {
    a->dir = parley_strdup(cfg->dir);
    if (a->dir == NULL) {
      rc = PARLEY_ENOMEM;
      goto fail;
    }
  }
  if (!a->cluster && (rc = keys_load_or_create(a, now_ms)) < 0)
    goto fail;
  if ((rc = parley__auth_clients_load(a)) < 0)
    goto fail;
  *out = a;
  return PARLEY_OK;

fail:
  if (err)
    snprintf(err, errcap, "%s", a->errmsg[0] ? a->errmsg : parley_strerror(rc));
  parley_auth_free(a);
  return rc;
}

void parley_auth_free(struct parley_auth *a) {
  if (a == NULL)
    return;
  parley__auth_clients_clear(a);
  parley_free(a->clients);
  parley_free(a->dir);
  sodium_memzero(a, sizeof *a);
  parley_free(a);
}

const char *parley_auth_errmsg(const struct parley_auth *a) {
  return a->errmsg;
}

int parley_auth_reload(struct parley_auth *a, int64_t now_ms, int *changed) {
  int rc;
  if (changed)
    *changed = 0;
  if (a->dir == NULL)
    return PARLEY_OK;
  if (!a->cluster &&
      parley__auth_file_changed(a, AUTH_KEYS_FILE, &a->keys_stamp)) {
    struct auth_key keys[PARLEY_AUTH_MAX_KEYS];
    struct auth_stamp stamp;
    size_t n;
    if ((rc = keys_read(a, keys, &n, &stamp)) < 0) {
      if (rc == PARLEY_ENOTFOUND)
        parley__auth_err(a, "%s/%s vanished", a->dir, AUTH_KEYS_FILE);
      return rc == PARLEY_ENOTFOUND ? PARLEY_EIO : rc;
    }
    prune(keys, &n, now_ms, 0);
    keys_install(a, keys, n, &stamp);
    if (changed)
      *changed = 1;
  }
  if (parley__auth_file_changed(a, AUTH_CLIENTS_FILE, &a->clients_stamp)) {
    if ((rc = parley__auth_clients_load(a)) < 0)
      return rc;
    if (changed)
      *changed = 1;
  }
  return PARLEY_OK;
}

/* ---- rotation ----------------------------------------------------------- */

/* Locks, re-reads the key file (another process may have rotated), lets
 * edit() change the set, writes it back and installs it. */
static int keys_update(struct parley_auth *a, int64_t now_ms,
                       void (*edit)(struct parley_auth *a,
                                    struct auth_key *keys, size_t *n,
                                    int64_t now_ms)) {
  struct auth_key keys[PARLEY_AUTH_MAX_KEYS];
  struct auth_stamp stamp;
  size_t n;
  int lockfd, rc;

  if (a->cluster) {
    parley__auth_err(a, "cluster keys rotate by epoch; change the cluster "
                        "key to replace them");
    return PARLEY_EINVAL;
  }
  if ((rc = parley__auth_lock(a, &lockfd)) < 0)
    return rc;
  rc = keys_read(a, keys, &n, &stamp);
  if (rc == PARLEY_ENOTFOUND) {
    /* Deleted under us: start from what we hold. */
    memcpy(keys, a->keys, a->nkeys * sizeof *keys);
    n = a->nkeys;
    rc = PARLEY_OK;
  }
  if (rc == PARLEY_OK) {
    edit(a, keys, &n, now_ms);
    rc = keys_write(a, keys, n);
  }
  parley__auth_unlock(lockfd);
  if (rc == PARLEY_OK)
    keys_install(a, keys, n, &a->keys_stamp);
  sodium_memzero(keys, sizeof keys);
  return rc;
}

static void edit_rotate(struct parley_auth *a, struct auth_key *keys,
                        size_t *n, int64_t now_ms) {
  uint64_t until = (uint64_t)now_ms + a->grace_ms;
  prune(keys, n, now_ms, 1);
  /* Retire the current key (grace 0 would make it retire at once). */
  if (*n > 0)
    keys[0].verify_until_ms = until > (uint64_t)INT64_MAX ? INT64_MAX
                              : until == 0                ? 1
                                                          : (int64_t)until;
  memmove(&keys[1], &keys[0], *n * sizeof *keys);
  new_key(a, now_ms, &keys[0]);
  (*n)++;
  sort_keys(keys, *n);
}

static void edit_revoke(struct parley_auth *a, struct auth_key *keys,
                        size_t *n, int64_t now_ms) {
  (void)a;
  (void)now_ms;
  sort_keys(keys, *n);
  for (size_t i = 1; i < *n; i++)
    sodium_memzero(&keys[i], sizeof keys[i]);
  *n = *n ? 1 : 0;
}

int parley_auth_rotate(struct parley_auth *a, int64_t now_ms, char *kid_out) {
  int rc;
  if (now_ms < 0)
    return PARLEY_EINVAL;
  rc = keys_update(a, now_ms, edit_rotate);
  if (rc == PARLEY_OK) {
    PARLEY_LOG(a->log, PARLEY_LOG_INFO,
               "auth: rotated token keys, current kid %s", a->keys[0].kid);
    if (kid_out)
      memcpy(kid_out, a->keys[0].kid, PARLEY_AUTH_MAX_KID + 1);
  }
  return rc;
}

int parley_auth_revoke_retired(struct parley_auth *a) {
  int rc = keys_update(a, 0, edit_revoke);
  if (rc == PARLEY_OK)
    PARLEY_LOG(a->log, PARLEY_LOG_WARN,
               "auth: revoked every retired token key");
  return rc;
}

size_t parley_auth_key_count(const struct parley_auth *a, int64_t now_ms) {
  size_t n = 0;
  if (a->cluster) {
    uint64_t e;
    if (now_ms < 0)
      return 0;
    e = (uint64_t)now_ms / a->epoch_ms;
    for (;;) {
      if (!cluster_epoch_valid(a, e, now_ms))
        break;
      n++;
      if (e == 0 || n >= PARLEY_AUTH_MAX_KEYS)
        break;
      e--;
    }
    return n;
  }
  for (size_t i = 0; i < a->nkeys; i++)
    if (a->keys[i].verify_until_ms == 0 || a->keys[i].verify_until_ms > now_ms)
      n++;
  return n;
}

int parley_auth_key_info(const struct parley_auth *a, int64_t now_ms, size_t i,
                         char *kid, int64_t *verify_until_ms) {
  if (i >= parley_auth_key_count(a, now_ms))
    return PARLEY_ENOTFOUND;
  if (a->cluster) {
    uint64_t e = (uint64_t)now_ms / a->epoch_ms - i;
    if (kid)
      snprintf(kid, PARLEY_AUTH_MAX_KID + 1, "c%llu", (unsigned long long)e);
    if (verify_until_ms)
      *verify_until_ms =
          i == 0 ? 0 : (int64_t)((e + 1) * a->epoch_ms + a->grace_ms);
    return PARLEY_OK;
  }
  for (size_t j = 0, seen = 0; j < a->nkeys; j++) {
    const struct auth_key *k = &a->keys[j];
    if (k->verify_until_ms != 0 && k->verify_until_ms <= now_ms)
      continue;
    if (seen++ == i) {
      if (kid)
        memcpy(kid, k->kid, PARLEY_AUTH_MAX_KID + 1);
      if (verify_until_ms)
        *verify_until_ms = k->verify_until_ms;
      return PARLEY_OK;
    }
  }
  return PARLEY_ENOTFOUND;
}
