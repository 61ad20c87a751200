/* cmd_read.c — listen (the SSE stream) and history (stored messages). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "apps/cli/cmds.h"
#include "apps/cli/input.h"
#include "apps/cli/output.h"
#include "apps/cli/stream.h"
#include "core/limits.h"
#include "core/util.h"

#define MAX_SEARCH 1000u
#define MAX_LIMIT 4294967295u

/* Set by SIGINT/SIGTERM while listening; polled by the transfer. */
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

struct printer {
  int json;
  int with_direction;
  int flush; /* flush stdout after every message (listen) */
};

static int print_one(const struct printer *pr, json_t *msg) {
  int rc = pr->json ? parley_cli_print_json(stdout, msg)
                    : parley_cli_print_message(stdout, msg,
                                               pr->with_direction);
  if (rc == PARLEY_OK && pr->flush && fflush(stdout) != 0)
    rc = PARLEY_EIO;
  return rc < 0 ? PARLEY_EIO : PARLEY_OK;
}

struct listener {
  struct printer pr;
  struct parley_cli_sse sse;
};

static int on_event(void *ud, const char *data, size_t len) {
  struct listener *l = ud;
  json_t *msg = json_loadb(data, len, 0, NULL);
  int rc = PARLEY_OK;

  /* Events that are not message objects (keep-alives, future kinds) are
   * skipped rather than ending the stream. */
  if (json_is_object(msg))
    rc = print_one(&l->pr, msg);
  json_decref(msg);
  return rc;
}

static int sse_sink(void *ud, const char *p, size_t n) {
  struct listener *l = ud;
  return parley_cli_sse_feed(&l->sse, p, n);
}

static int topics_query(struct parley_buf *path, const char *base,
                        const char *const *topics, int n) {
  int rc = parley_buf_appendf(path, "%s", base);
  for (int i = 0; rc == PARLEY_OK && i < n; i++)
    rc = parley_cli_query_add(path, "topic", topics[i]);
  return rc;
}

static void catch_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: let blocking calls return */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int parley_cli_cmd_listen(struct parley_cli_ctx *ctx) {
  const struct parley_cli_args *a = ctx->args;
  struct parley_cli_http_req req;
  struct parley_cli_http_resp resp;
  struct parley_buf path;
  struct listener l;
  int rc = PARLEY_CLI_EXIT_OK;

  for (int i = 0; rc == PARLEY_CLI_EXIT_OK && i < a->npos; i++)
    rc = parley_cli_check_topic(a->pos[i]);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  parley_buf_init(&path, 64 * 1024);
  if (topics_query(&path, "/v1/stream", a->pos, a->npos) < 0) {
    parley_buf_close(&path);
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE, "too many topics");
  }
  memset(&l, 0, sizeof l);
  l.pr.json = a->set[PARLEY_CLI_F_JSON];
  l.pr.flush = 1;
  parley_cli_sse_init(&l.sse, 2 * PARLEY_MAX_HTTP_BODY, on_event, &l);
  memset(&req, 0, sizeof req);
  req.method = "GET";
  req.path = (const char *)path.data;
  req.timeout_ms = 0; /* a stream has no end to wait for */
  req.sink = sse_sink;
  req.sink_ctx = &l;
  req.stop = &stop_flag;
  catch_signals();
  rc = parley_cli_call(ctx, &req, &resp);
  if (stop_flag)
    rc = PARLEY_CLI_EXIT_OK; /* interrupted: the normal way to stop */
  else if (rc == PARLEY_CLI_EXIT_OK && !(resp.status >= 200 &&
                                         resp.status < 300))
    rc = parley_cli_daemon_error(&resp);
  else if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_fail(PARLEY_CLI_EXIT_NODAEMON,
                         "daemon at %s closed the stream", ctx->api.addr);
  parley_cli_http_resp_close(&resp);
  parley_cli_sse_close(&l.sse);
  parley_buf_close(&path);
  return rc;
}

static int history_cb(void *ud, json_t *obj) {
  return print_one(ud, obj);
}

/* Parses --since / --until into ms; *given = 0 when the flag is absent. */
static int time_flag(const struct parley_cli_ctx *ctx, int flag,
                     const char *name, int64_t now, int64_t *out,
                     int *given) {
  const char *v = ctx->args->value[flag];
  int rc;

  *given = v != NULL;
  if (v == NULL)
    return PARLEY_CLI_EXIT_OK;
  rc = parley_cli_parse_time(v, now, out);
  if (rc < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "bad --%s '%.60s': expected RFC 3339 "
                           "(2026-11-24T10:00:00Z) or a duration (30s, 10m, "
                           "2h, 1d)",
                           name, v);
  return PARLEY_CLI_EXIT_OK;
}

/* Validates history's arguments and builds its query into path. */
static int history_path(const struct parley_cli_ctx *ctx,
                        struct parley_buf *path) {
  const struct parley_cli_args *a = ctx->args;
  const char *from = a->value[PARLEY_CLI_F_FROM];
  const char *search = a->value[PARLEY_CLI_F_SEARCH];
  const char *limit = a->value[PARLEY_CLI_F_LIMIT];
  char canon[PARLEY_ID_TEXT_LEN + 1], num[32];
  int64_t now = parley_now_ms(), since = 0, until = 0;
  int has_since, has_until, rc = PARLEY_CLI_EXIT_OK;
  uint64_t n = 0;

  if (a->npos == 1 && a->set[PARLEY_CLI_F_DIRECT])
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "history takes a TOPIC or --direct, not both");
  if (a->npos == 1)
    rc = parley_cli_check_topic(a->pos[0]);
  if (rc == PARLEY_CLI_EXIT_OK && from != NULL)
    rc = parley_cli_check_peer(from, canon);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = time_flag(ctx, PARLEY_CLI_F_SINCE, "since", now, &since, &has_since);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = time_flag(ctx, PARLEY_CLI_F_UNTIL, "until", now, &until, &has_until);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (has_since && has_until && since > until)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "--since is later than --until");
  if (search != NULL && (search[0] == '\0' || strlen(search) > MAX_SEARCH))
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "--search needs 1 to %u bytes of words",
                           MAX_SEARCH);
  if (limit != NULL && parley_parse_u64(limit, 1, MAX_LIMIT, &n) < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "bad --limit '%.40s': a whole number from 1 to %u",
                           limit, MAX_LIMIT);

  rc = parley_buf_appendf(path, "/v1/messages");
  if (rc == PARLEY_OK && a->npos == 1)
    rc = parley_cli_query_add(path, "topic", a->pos[0]);
  if (rc == PARLEY_OK && a->set[PARLEY_CLI_F_DIRECT])
    rc = parley_cli_query_add(path, "direct", "1");
  if (rc == PARLEY_OK && from != NULL)
    rc = parley_cli_query_add(path, "from", canon);
  if (rc == PARLEY_OK && has_since) {
    snprintf(num, sizeof num, "%lld", (long long)since);
    rc = parley_cli_query_add(path, "since", num);
  }
  if (rc == PARLEY_OK && has_until) {
    snprintf(num, sizeof num, "%lld", (long long)until);
    rc = parley_cli_query_add(path, "until", num);
  }
  if (rc == PARLEY_OK && search != NULL)
    rc = parley_cli_query_add(path, "search", search);
  if (rc == PARLEY_OK && limit != NULL) {
    snprintf(num, sizeof num, "%llu", (unsigned long long)n);
    rc = parley_cli_query_add(path, "limit", num);
  }
  if (rc < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE, "query too long");
  return PARLEY_CLI_EXIT_OK;
}

int parley_cli_cmd_history(struct parley_cli_ctx *ctx) {
  struct parley_buf path;
  struct printer pr;
  int rc;

  parley_buf_init(&path, 8 * 1024);
  rc = history_path(ctx, &path);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_connect(ctx);
  if (rc == PARLEY_CLI_EXIT_OK) {
    memset(&pr, 0, sizeof pr);
    pr.json = ctx->args->set[PARLEY_CLI_F_JSON];
    pr.with_direction = 1;
    rc = parley_cli_get_lines(ctx, (const char *)path.data, history_cb, &pr);
  }
  parley_buf_close(&path);
  return rc;
}
