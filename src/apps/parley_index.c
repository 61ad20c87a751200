/*
 * parley-index — the Parley index service (single node).  Parses flags into
 * an index configuration and runs the index on a libuv loop until
 * SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/limits.h"
#include "core/log.h"
#include "core/opts.h"
#include "core/util.h"
#include "index/server.h"

struct flags {
  const char *listen, *http, *data, *name, *log_level;
  uint64_t lease_ms, max_subs, max_frame, max_links;
};

#define F(field) offsetof(struct flags, field)
static const struct parley_opt options[] = {
    {"listen", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "HOST:PORT",
     "address for peer links (port 0 = ephemeral)", F(listen)},
    {"http", PARLEY_OPT_STR, 0, 0, 0, NULL, "HOST:PORT",
     "serve /metrics and /v1 here (no auth yet: keep it on 127.0.0.1)",
     F(http)},
    {"data", PARLEY_OPT_STR, PARLEY_OPT_REQUIRED, 0, 0, NULL, "DIR",
     "data directory (identity, registry snapshot and log, index.json); "
     "created if missing",
     F(data)},
    {"lease", PARLEY_OPT_DURATION, 0, 100, 86400ull * 1000, "10", "SECONDS",
     "lease a peer gets per REGISTER/HEARTBEAT (a duration: 10, 10s, 500ms)",
     F(lease_ms)},
    {"name", PARLEY_OPT_STR, 0, 0, 0, "parley-index", "NAME",
     "name sent in HELLO", F(name)},
    {"log-level", PARLEY_OPT_STR, 0, 0, 0, "info", "LEVEL",
     "debug, info, warn or error", F(log_level)},
    {"max-subs", PARLEY_OPT_U64, 0, 1, 1000000, "1024", "N",
     "subscriptions per peer, and watched topics per link", F(max_subs)},
    {"max-frame", PARLEY_OPT_U64, 0, 4096, PARLEY_MAX_FRAME, "1052672",
     "BYTES", "largest frame accepted or sent on a link", F(max_frame)},
    {"max-links", PARLEY_OPT_U64, 0, 1, 1000000, "1024", "N",
     "most peer links open at once", F(max_links)},
};
#undef F
#define NOPTS (sizeof options / sizeof options[0])

static uv_signal_t sigint, sigterm;
static struct parley_index *idx;

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  parley_index_free(idx);
  idx = NULL;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
}

static int parse_level(const char *s) {
  static const char *const names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0)
      return i; /* PARLEY_LOG_DEBUG .. PARLEY_LOG_ERROR */
  return -1;
}

/* HOST:PORT into host/port; "localhost" means 127.0.0.1 (the servers take
 * numeric addresses). */
static int split_addr(const char *flag, const char *s, char *host,
                      size_t cap, uint16_t *port) {
  if (parley_parse_hostport(s, host, cap, port) < 0) {
    fprintf(stderr, "parley-index: --%s: '%s' is not HOST:PORT (see --help)\n",
            flag, s);
    return -1;
  }
  if (strcmp(host, "localhost") == 0)
    snprintf(host, cap, "127.0.0.1");
  return 0;
}

int main(int argc, char **argv) {
  char err[256], lhost[PARLEY_MAX_ADDR + 1], hhost[PARLEY_MAX_ADDR + 1];
  struct flags fl;
  struct parley_index_config cfg;
  struct parley_log log;
  int rc, level;

  memset(&fl, 0, sizeof fl);
  memset(&cfg, 0, sizeof cfg);
  rc = parley_opts_parse(options, NOPTS, argc, argv, &fl, err, sizeof err);
  if (rc == PARLEY_EAGAIN) {
    parley_opts_usage(stdout, "parley-index",
                      "The Parley index: registry of live peers and topic "
                      "subscriptions.",
                      options, NOPTS);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "parley-index: %s (see --help)\n", err);
    return 2;
  }
  level = parse_level(fl.log_level);
  if (level < 0) {
    fprintf(stderr,
            "parley-index: --log-level must be debug, info, warn or error\n");
    return 2;
  }
  if (strlen(fl.name) > PARLEY_MAX_NAME || fl.data[0] == '\0') {
    fprintf(stderr, "parley-index: --%s is empty or too long\n",
            fl.data[0] == '\0' ? "data" : "name");
    return 2;
  }
  if (split_addr("listen", fl.listen, lhost, sizeof lhost, &cfg.listen_port) <
      0)
    return 2;
  if (fl.http != NULL) {
    if (split_addr("http", fl.http, hhost, sizeof hhost, &cfg.http_port) < 0)
      return 2;
    cfg.http_host = hhost;
  }
  signal(SIGPIPE, SIG_IGN);

  memset(&log, 0, sizeof log);
  log.emit = parley_log_stderr;
  log.ctx = (void *)"parley-index";
  log.min_level = level;

  cfg.loop = uv_default_loop();
  cfg.log = &log;
  cfg.data_dir = fl.data;
  cfg.listen_host = lhost;
  cfg.name = fl.name;
  cfg.lease_ms = fl.lease_ms;
  cfg.max_subs = (uint32_t)fl.max_subs;
  cfg.max_frame = (uint32_t)fl.max_frame;
  cfg.max_links = (uint32_t)fl.max_links;

  rc = parley_index_new(&cfg, &idx);
  if (rc < 0) {
    fprintf(stderr, "parley-index: cannot start: %s\n", parley_strerror(rc));
    uv_run(cfg.loop, UV_RUN_DEFAULT); /* let closing handles finish */
    (void)uv_loop_close(cfg.loop);
    return 1;
  }
  /* Catch signals before announcing ourselves: whoever reads the line may
   * signal us at once. */
  uv_signal_init(cfg.loop, &sigint);
  uv_signal_init(cfg.loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  printf("parley-index listening on %s id=%s http=%s\n",
         parley_index_listen_addr(idx), parley_index_id(idx),
         parley_index_http_addr(idx));
  fflush(stdout);
  uv_run(cfg.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(cfg.loop);
  return rc == 0 ? 0 : 1;
}
