/*
 * parleyd — a Parley peer daemon.  Parses flags into a node configuration,
 * runs the node on a libuv loop until SIGINT/SIGTERM.
 *
 * The identity key may be kept encrypted under a passphrase
 * (crypto/keyfile.h): --passphrase-file FILE, or PARLEY_PASSPHRASE in the
 * environment (wiped from it at once).  The passphrase lives in
 * sodium_malloc'd (locked, guarded) memory until the node has unlocked the
 * key, and is never logged.  `parleyd --encrypt-identity --data DIR` with a
 * passphrase converts an existing plain key file and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/log.h"
#include "core/opts.h"
#include "core/util.h"
#include "crypto/identity.h"
#include "peer/node.h"

/* Longest passphrase accepted (bytes). */
#define PASS_MAX 1024

struct flags {
  const char *data, *index, *listen, *advertise, *api, *name, *log_level;
  const char *passphrase_file, *sync;
  uint64_t max_frame, max_message, max_topic, max_links, max_subs;
  uint64_t max_outbox, retention_ms, peer_rate, peer_burst;
  int encrypt_identity;
};

#define F(field) offsetof(struct flags, field)
static const struct parley_opt options[] = {
    {"data", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "DIR",
     "data directory (identity, store, api.json); created if missing", F(data)},
    {"index", PARLEY_OPT_STR, 0, 0, 0, NULL, "HOST:PORT[,...]",
     "index nodes to register with (required unless --encrypt-identity)",
     F(index)},
    {"listen", PARLEY_OPT_STR, 0, 0, 0, "127.0.0.1:0", "HOST:PORT",
     "address for peer links (port 0 = ephemeral)", F(listen)},
    {"advertise", PARLEY_OPT_STR, 0, 0, 0, NULL, "HOST:PORT",
     "address other peers dial (default: the bound listen address)",
     F(advertise)},
    {"api", PARLEY_OPT_STR, 0, 0, 0, "127.0.0.1:0", "HOST:PORT",
     "address of the local HTTP API", F(api)},
    {"name", PARLEY_OPT_STR, 0, 0, 0, "", "NAME", "display name", F(name)},
    {"log-level", PARLEY_OPT_STR, 0, 0, 0, "info", "LEVEL",
     "debug, info, warn or error", F(log_level)},
    {"max-frame", PARLEY_OPT_U64, 0, 4096, PARLEY_MAX_FRAME, "1052672",
     "BYTES", "largest frame accepted on a link", F(max_frame)},
    {"max-message", PARLEY_OPT_U64, 0, 1, PARLEY_MAX_FRAME, "1048576", "BYTES",
     "largest message body", F(max_message)},
    {"max-topic", PARLEY_OPT_U64, 0, 1, PARLEY_MAX_TOPIC, "128", "BYTES",
     "longest topic name", F(max_topic)},
    {"max-links", PARLEY_OPT_U64, 0, 2, 1000000, "1024", "N",
     "most secure links open at once", F(max_links)},
    {"max-subs", PARLEY_OPT_U64, 0, 1, 1000000, "1024", "N",
     "most topics this peer may subscribe to", F(max_subs)},
    {"max-outbox", PARLEY_OPT_U64, 0, 1, 100000000, "100000", "N",
     "most unacknowledged deliveries kept", F(max_outbox)},
    {"sync", PARLEY_OPT_STR, 0, 0, 0, "full", "full|os",
     "store commits: fsynced before acknowledging (full), or left to the "
     "OS and synced at checkpoints (os: survives a daemon crash, not a "
     "power cut; several times faster)",
     F(sync)},
    {"retention", PARLEY_OPT_DURATION, 0, 1000, 365ull * 86400 * 1000, "24h",
     "DURATION", "how long queued deliveries wait for a peer that is gone",
     F(retention_ms)},
    {"peer-rate", PARLEY_OPT_U64, 0, 1, 100000000, "10000", "N",
     "messages one peer may send us per second (over it: ELIMIT or drop)",
     F(peer_rate)},
    {"peer-burst", PARLEY_OPT_U64, 0, 0, 100000000, "0", "N",
     "messages one peer may send in a burst (0 = twice --peer-rate)",
     F(peer_burst)},
    {"passphrase-file", PARLEY_OPT_STR, 0, 0, 0, NULL, "FILE",
     "keep the identity key encrypted under the passphrase in FILE (mode "
     "0600; or set PARLEY_PASSPHRASE)",
     F(passphrase_file)},
    {"encrypt-identity", PARLEY_OPT_FLAG, 0, 0, 0, NULL, NULL,
     "encrypt the existing plain DIR/identity.key under the passphrase, "
     "then exit",
     F(encrypt_identity)},
};
#undef F
#define NOPTS (sizeof options / sizeof options[0])

static uv_signal_t sigint, sigterm;
static struct parley_node *node;

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  parley_node_free(node);
  node = NULL;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  (void)s;
}

/* Reads the passphrase from file (whole file, one final newline
 * stripped) or from $PARLEY_PASSPHRASE (then wiped from the
 * environment).  OUT: *pass in sodium_malloc'd memory (caller frees with
 * sodium_free, which wipes it), *len; *pass = NULL when neither is given.
 * Returns 0, or 1 with a message printed. */
static int get_passphrase(const char *file, char **pass, size_t *len) {
  char *env = getenv("PARLEY_PASSPHRASE");
  char *buf;
  size_t got = 0;

  *pass = NULL;
  *len = 0;
  if (file == NULL && (env == NULL || env[0] == '\0'))
    return 0;
  buf = sodium_malloc(PASS_MAX + 2);
  if (buf == NULL) {
    fprintf(stderr, "parleyd: out of memory\n");
    return 1;
  }
  if (file != NULL) {
    struct stat st;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      fprintf(stderr, "parleyd: --passphrase-file %s: %s\n", file,
              fd < 0 ? strerror(errno) : "not a regular file");
      if (fd >= 0)
        close(fd);
      sodium_free(buf);
      return 1;
    }
    if ((st.st_mode & 077) != 0) {
      fprintf(stderr,
              "parleyd: --passphrase-file %s is readable by others: chmod "
              "600 it\n",
              file);
      close(fd);
      sodium_free(buf);
      return 1;
    }
    while (got < PASS_MAX + 1) {
      ssize_t r = read(fd, buf + got, PASS_MAX + 1 - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      got += (size_t)r;
    }
    close(fd);
  } else {
    got = strlen(env);
    if (got > PASS_MAX + 1)
      got = PASS_MAX + 1;
    memcpy(buf, env, got);
    sodium_memzero(env, strlen(env));
    unsetenv("PARLEY_PASSPHRASE");
  }
  if (got > 0 && buf[got - 1] == '\n')
    got--;
  if (got > 0 && buf[got - 1] == '\r')
    got--;
  if (got == 0 || got > PASS_MAX) {
    fprintf(stderr, "parleyd: the passphrase must be 1 to %d bytes\n",
            PASS_MAX);
    sodium_free(buf);
    return 1;
  }
  buf[got] = '\0';
  *pass = buf;
  *len = got;
  return 0;
}

/* --encrypt-identity: converts DIR/identity.key in place. */
static int encrypt_identity(const char *dir, const char *pass, size_t len) {
  char path[4200];
  int rc;

  if (pass == NULL) {
    fprintf(stderr, "parleyd: --encrypt-identity needs --passphrase-file "
                    "or PARLEY_PASSPHRASE\n");
    return 2;
  }
  snprintf(path, sizeof path, "%s/identity.key", dir);
  rc = parley_identity_protect_file(path, pass, len, 0, 0);
  switch (rc) {
  case PARLEY_OK:
    printf("parleyd: %s is now encrypted under the passphrase\n", path);
    return 0;
  case PARLEY_EEXIST:
    fprintf(stderr, "parleyd: %s is already encrypted\n", path);
    return 1;
  case PARLEY_ENOTFOUND:
    fprintf(stderr, "parleyd: no key file %s\n", path);
    return 1;
  default:
    fprintf(stderr, "parleyd: cannot encrypt %s: %s\n", path,
            parley_strerror(rc));
    return 1;
  }
}

static int parse_level(const char *s) {
  if (strcmp(s, "debug") == 0)
    return PARLEY_LOG_DEBUG;
  if (strcmp(s, "info") == 0)
    return PARLEY_LOG_INFO;
  if (strcmp(s, "warn") == 0)
    return PARLEY_LOG_WARN;
  if (strcmp(s, "error") == 0)
    return PARLEY_LOG_ERROR;
  return -1;
}

int main(int argc, char **argv) {
  struct flags fl;
  struct parley_node_config cfg;
  struct parley_log log;
  char err[256], *indexes, *tok, *next, *pass = NULL;
  size_t pass_len = 0;
  int rc, level;

  memset(&fl, 0, sizeof fl);
  rc = parley_opts_parse(options, NOPTS, argc, argv, &fl, err, sizeof err);
  if (rc == PARLEY_EAGAIN) {
    parley_opts_usage(stdout, "parleyd", "A Parley peer.", options, NOPTS);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "parleyd: %s (see --help)\n", err);
    return 2;
  }
  if (strcmp(fl.sync, "full") != 0 && strcmp(fl.sync, "os") != 0) {
    fprintf(stderr, "parleyd: --sync wants full or os, not '%s'\n", fl.sync);
    return 2;
  }
  level = parse_level(fl.log_level);
  if (level < 0) {
    fprintf(stderr, "parleyd: --log-level must be debug, info, warn or error\n");
    return 2;
  }
  if (fl.index == NULL && !fl.encrypt_identity) {
    fprintf(stderr, "parleyd: --index is required (see --help)\n");
    return 2;
  }
  /* libsodium first: the passphrase goes into sodium_malloc'd memory. */
  if (parley_crypto_init() < 0) {
    fprintf(stderr, "parleyd: cannot initialise libsodium\n");
    return 1;
  }
  if (get_passphrase(fl.passphrase_file, &pass, &pass_len) != 0)
    return 1;
  if (fl.encrypt_identity) {
    rc = encrypt_identity(fl.data, pass, pass_len);
    if (pass)
      sodium_free(pass);
    return rc;
  }
  signal(SIGPIPE, SIG_IGN);

  memset(&log, 0, sizeof log);
  log.emit = parley_log_stderr;
  log.ctx = (void *)(fl.name[0] ? fl.name : "parleyd");
  log.min_level = level;

  memset(&cfg, 0, sizeof cfg);
  cfg.loop = uv_default_loop();
  cfg.log = &log;
  cfg.data_dir = fl.data;
  cfg.name = fl.name;
  cfg.listen = fl.listen;
  cfg.advertise = fl.advertise;
  cfg.api = fl.api;
  cfg.max_frame = (uint32_t)fl.max_frame;
  cfg.max_message = (uint32_t)fl.max_message;
  cfg.max_topic = (uint32_t)fl.max_topic;
  cfg.max_links = (uint32_t)fl.max_links;
  cfg.max_subs = (uint32_t)fl.max_subs;
  cfg.max_outbox = (uint32_t)fl.max_outbox;
  cfg.retention_ms = fl.retention_ms;
  cfg.sync_os = strcmp(fl.sync, "os") == 0;
  cfg.peer_rate = (uint32_t)fl.peer_rate;
  cfg.peer_burst = (uint32_t)fl.peer_burst;
  cfg.passphrase = pass;
  cfg.passphrase_len = pass_len;
  indexes = strdup(fl.index);
  if (indexes == NULL) {
    if (pass)
      sodium_free(pass);
    return 1;
  }
  for (tok = indexes; tok; tok = next) {
    char host[PARLEY_MAX_ADDR + 1];
    uint16_t port;
    next = strchr(tok, ',');
    if (next)
      *next++ = '\0';
    if (cfg.nindex == PARLEY_NODE_MAX_INDEX ||
        parley_parse_hostport(tok, host, sizeof host, &port) < 0 ||
        port == 0) {
      fprintf(stderr, "parleyd: --index: '%s' is not HOST:PORT (at most %d)\n",
              tok, PARLEY_NODE_MAX_INDEX);
      free(indexes);
      if (pass)
        sodium_free(pass);
      return 2;
    }
    cfg.index[cfg.nindex++] = tok;
  }
  if (cfg.nindex == 0) {
    fprintf(stderr, "parleyd: --index needs at least one HOST:PORT\n");
    free(indexes);
    if (pass)
      sodium_free(pass);
    return 2;
  }

  rc = parley_node_new(&cfg, &node);
  /* The key is unlocked (or not): the passphrase is not needed again. */
  if (pass)
    sodium_free(pass);
  pass = NULL;
  cfg.passphrase = NULL;
  if (rc < 0) {
    if (rc == PARLEY_ECRYPTO)
      fprintf(stderr, "parleyd: cannot start: wrong passphrase for the "
                      "identity key (or the key file was altered)\n");
    else if (rc == PARLEY_EDENIED)
      fprintf(stderr, "parleyd: cannot start: the identity key is "
                      "encrypted: give --passphrase-file or "
                      "PARLEY_PASSPHRASE\n");
    else if (rc == PARLEY_EINVAL && pass_len > 0)
      fprintf(stderr, "parleyd: cannot start: the identity key is not "
                      "encrypted: run parleyd --encrypt-identity first\n");
    else
      fprintf(stderr, "parleyd: cannot start: %s\n", parley_strerror(rc));
    free(indexes);
    uv_run(cfg.loop, UV_RUN_DEFAULT); /* let the node's handles close */
    return 1;
  }
  printf("parleyd id=%s listen=%s api=%s\n", parley_node_id(node),
         parley_node_addr(node), parley_node_api_addr(node));
  fflush(stdout);
  uv_signal_init(cfg.loop, &sigint);
  uv_signal_init(cfg.loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_run(cfg.loop, UV_RUN_DEFAULT);
  free(indexes);
  rc = uv_loop_close(cfg.loop);
  return rc == 0 ? 0 : 1;
}
