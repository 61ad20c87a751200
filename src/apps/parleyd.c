/*
 * parleyd — a Parley peer daemon.  Parses flags into a node configuration,
 * runs the node on a libuv loop until SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "core/log.h"
#include "core/opts.h"
#include "core/util.h"
#include "peer/node.h"

struct flags {
  const char *data, *index, *listen, *advertise, *api, *name, *log_level;
  uint64_t max_frame, max_message, max_topic, max_links, max_subs;
  uint64_t max_outbox, retention_ms;
};

#define F(field) offsetof(struct flags, field)
static const struct parley_opt options[] = {
    {"data", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "DIR",
     "data directory (identity, store, api.json); created if missing", F(data)},
    {"index", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL,
     "HOST:PORT[,...]", "index nodes to register with", F(index)},
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
    {"retention", PARLEY_OPT_DURATION, 0, 1000, 365ull * 86400 * 1000, "24h",
     "DURATION", "how long queued deliveries wait for a peer that is gone",
     F(retention_ms)},
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
  char err[256], *indexes, *tok, *next;
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
  level = parse_level(fl.log_level);
  if (level < 0) {
    fprintf(stderr, "parleyd: --log-level must be debug, info, warn or error\n");
    return 2;
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
  indexes = strdup(fl.index);
  if (indexes == NULL)
    return 1;
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
      return 2;
    }
    cfg.index[cfg.nindex++] = tok;
  }
  if (cfg.nindex == 0) {
    fprintf(stderr, "parleyd: --index needs at least one HOST:PORT\n");
    free(indexes);
    return 2;
  }

  rc = parley_node_new(&cfg, &node);
  if (rc < 0) {
    fprintf(stderr, "parleyd: cannot start: %s\n", parley_strerror(rc));
    free(indexes);
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
