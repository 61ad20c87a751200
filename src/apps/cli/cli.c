/* cli.c — main dispatch, the data directory and api.json, and the request
 * helpers every command uses. */
#include "apps/cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "apps/cli/cmds.h"
#include "apps/cli/output.h"
#include "apps/cli/stream.h"
#include "core/alloc.h"
#include "core/util.h"

typedef int (*cmd_fn)(struct parley_cli_ctx *ctx);

/* Indexed by enum parley_cli_cmd; help is handled before dispatch. */
static const cmd_fn dispatch[PARLEY_CLI_CMD_COUNT] = {
    [PARLEY_CLI_CMD_ID] = parley_cli_cmd_id,
    [PARLEY_CLI_CMD_STATUS] = parley_cli_cmd_status,
    [PARLEY_CLI_CMD_PEERS] = parley_cli_cmd_peers,
    [PARLEY_CLI_CMD_TOPICS] = parley_cli_cmd_topics,
    [PARLEY_CLI_CMD_SUBSCRIBE] = parley_cli_cmd_subscribe,
    [PARLEY_CLI_CMD_UNSUBSCRIBE] = parley_cli_cmd_unsubscribe,
    [PARLEY_CLI_CMD_PUBLISH] = parley_cli_cmd_publish,
    [PARLEY_CLI_CMD_SEND] = parley_cli_cmd_send,
    [PARLEY_CLI_CMD_LISTEN] = parley_cli_cmd_listen,
    [PARLEY_CLI_CMD_HISTORY] = parley_cli_cmd_history,
    [PARLEY_CLI_CMD_VERIFY] = parley_cli_cmd_verify,
    [PARLEY_CLI_CMD_TRUST] = parley_cli_cmd_trust,
    [PARLEY_CLI_CMD_UNTRUST] = parley_cli_cmd_untrust,
    [PARLEY_CLI_CMD_TRUSTED] = parley_cli_cmd_trusted,
    [PARLEY_CLI_CMD_TOPIC] = parley_cli_cmd_topic,
};

int parley_cli_fail(int code, const char *fmt, ...) {
  char msg[1024];
  struct parley_buf b;
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  parley_buf_init(&b, 4 * sizeof msg + 16);
  if (parley_cli_escape(&b, msg, strlen(msg)) == PARLEY_OK && b.len > 0)
    fprintf(stderr, "parley: %.*s\n", (int)b.len, (const char *)b.data);
  else
    fprintf(stderr, "parley: %s\n", msg);
  parley_buf_close(&b);
  return code;
}

/* --data, else $PARLEY_DATA, else $HOME/.parley. */
static int resolve_dir(struct parley_cli_ctx *ctx) {
  const char *d = ctx->args->value[PARLEY_CLI_F_DATA];
  const char *env = getenv("PARLEY_DATA"), *home = getenv("HOME");
  size_t n;

  if (d != NULL && d[0] == '\0')
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE, "--data needs a directory");
  if (d != NULL)
    n = (size_t)snprintf(ctx->dir, sizeof ctx->dir, "%s", d);
  else if (env != NULL && env[0] != '\0')
    n = (size_t)snprintf(ctx->dir, sizeof ctx->dir, "%s", env);
  else if (home != NULL && home[0] != '\0')
    n = (size_t)snprintf(ctx->dir, sizeof ctx->dir, "%s/.parley", home);
  else
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "no data directory: use --data DIR, or set "
                           "PARLEY_DATA or HOME");
  if (n >= sizeof ctx->dir)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE, "data directory too long");
  while (n > 1 && ctx->dir[n - 1] == '/')
    ctx->dir[--n] = '\0';
  snprintf(ctx->apifile, sizeof ctx->apifile, "%s%sapi.json", ctx->dir,
           strcmp(ctx->dir, "/") == 0 ? "" : "/");
  return PARLEY_CLI_EXIT_OK;
}

/* 1 if s is 1..cap-1 bytes of printable ASCII without spaces. */
static int plain_text(const char *s, size_t cap) {
  size_t n = strlen(s);
  if (n == 0 || n >= cap)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return 0;
  return 1;
}

int parley_cli_connect(struct parley_cli_ctx *ctx) {
  json_error_t jerr;
  const char *addr, *token;
  char host[PARLEY_MAX_ADDR + 1];
  uint16_t port;
  struct stat st;
  json_t *j;

  if (stat(ctx->apifile, &st) != 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_NODAEMON,
                           "daemon not running (no %s)", ctx->apifile);
  j = json_load_file(ctx->apifile, 0, &jerr);
  if (j == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_NODAEMON, "cannot read %s: %s",
                           ctx->apifile, jerr.text);
  addr = json_string_value(json_object_get(j, "addr"));
  token = json_string_value(json_object_get(j, "token"));
  if (addr == NULL || !plain_text(addr, sizeof ctx->api.addr) ||
      parley_parse_hostport(addr, host, sizeof host, &port) < 0 ||
      token == NULL || !plain_text(token, sizeof ctx->api.token)) {
    json_decref(j);
    return parley_cli_fail(PARLEY_CLI_EXIT_NODAEMON,
                           "bad %s: needs \"addr\" (HOST:PORT) and \"token\"",
                           ctx->apifile);
  }
  snprintf(ctx->api.addr, sizeof ctx->api.addr, "%s", addr);
  snprintf(ctx->api.token, sizeof ctx->api.token, "%s", token);
  json_decref(j);
  return PARLEY_CLI_EXIT_OK;
}

int parley_cli_call(struct parley_cli_ctx *ctx,
                    const struct parley_cli_http_req *req,
                    struct parley_cli_http_resp *resp) {
  int rc = parley_cli_http_do(&ctx->api, req, resp);

  switch (rc) {
  case PARLEY_OK:
  case PARLEY_ECANCELED:
    return PARLEY_CLI_EXIT_OK;
  case PARLEY_ECONNECT:
    if (resp->curl_rc == CURLE_OPERATION_TIMEDOUT && resp->connected)
      return parley_cli_fail(PARLEY_CLI_EXIT_TIMEOUT,
                             "no answer from the daemon at %s within %ld s",
                             ctx->api.addr, req->timeout_ms / 1000);
    return parley_cli_fail(PARLEY_CLI_EXIT_NODAEMON,
                           "daemon not running at %s: %s", ctx->api.addr,
                           resp->error);
  case PARLEY_ETOOBIG:
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                           "answer from the daemon too large");
  case PARLEY_EPROTO:
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                           "malformed answer from the daemon");
  case PARLEY_EIO:
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "cannot write output");
  default:
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "%s", parley_strerror(rc));
  }
}

json_t *parley_cli_resp_json(const struct parley_cli_http_resp *resp) {
  json_t *j;
  if (resp->body.len == 0)
    return NULL;
  j = json_loadb((const char *)resp->body.data, resp->body.len, 0, NULL);
  if (j != NULL && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

int parley_cli_daemon_error(const struct parley_cli_http_resp *resp) {
  json_t *j = parley_cli_resp_json(resp);
  const char *e = json_string_value(json_object_get(j, "error"));
  int rc;

  if (e != NULL && e[0] != '\0')
    rc = parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "%s", e);
  else
    rc = parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "daemon answered HTTP %ld",
                         resp->status);
  json_decref(j);
  return rc;
}

static int is_2xx(long status) { return status >= 200 && status < 300; }

static int request_object(struct parley_cli_ctx *ctx,
                          const struct parley_cli_http_req *req,
                          json_t **out) {
  struct parley_cli_http_resp resp;
  int rc = parley_cli_call(ctx, req, &resp);

  *out = NULL;
  if (rc == PARLEY_CLI_EXIT_OK && !is_2xx(resp.status))
    rc = parley_cli_daemon_error(&resp);
  if (rc == PARLEY_CLI_EXIT_OK) {
    *out = parley_cli_resp_json(&resp);
    if (*out == NULL)
      rc = parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                           "malformed answer from the daemon");
  }
  parley_cli_http_resp_close(&resp);
  return rc;
}

int parley_cli_get_object(struct parley_cli_ctx *ctx, const char *path,
                          json_t **out) {
  struct parley_cli_http_req req = {"GET", path, NULL,
                                    PARLEY_CLI_REQUEST_TIMEOUT_MS,
                                    NULL, NULL, NULL};
  return request_object(ctx, &req, out);
}

int parley_cli_post_object(struct parley_cli_ctx *ctx, const char *path,
                           const json_t *body, json_t **out) {
  struct parley_cli_http_req req = {"POST", path, NULL,
                                    PARLEY_CLI_REQUEST_TIMEOUT_MS,
                                    NULL, NULL, NULL};
  char *text = json_dumps(body, JSON_COMPACT);
  int rc;

  *out = NULL;
  if (text == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  req.body = text;
  rc = request_object(ctx, &req, out);
  parley_free(text);
  return rc;
}

struct ndjson {
  parley_cli_object_cb cb;
  void *ud;
  struct parley_cli_lines lines;
};

static int ndjson_line(void *ud, const char *text, size_t len) {
  struct ndjson *nd = ud;
  json_t *obj;
  int rc;

  if (strspn(text, " \t") == len)
    return PARLEY_OK;
  obj = json_loadb(text, len, 0, NULL);
  if (!json_is_object(obj)) {
    json_decref(obj);
    return PARLEY_EPROTO;
  }
  rc = nd->cb(nd->ud, obj);
  json_decref(obj);
  return rc;
}

static int ndjson_sink(void *ud, const char *p, size_t n) {
  struct ndjson *nd = ud;
  return parley_cli_lines_feed(&nd->lines, p, n);
}

int parley_cli_get_lines(struct parley_cli_ctx *ctx, const char *path,
                         parley_cli_object_cb cb, void *ud) {
  struct ndjson nd = {cb, ud, {{0}, 0, 0}};
  struct parley_cli_http_req req = {"GET", path, NULL,
                                    PARLEY_CLI_REQUEST_TIMEOUT_MS,
                                    ndjson_sink, &nd, NULL};
  struct parley_cli_http_resp resp;
  int rc;

  parley_cli_lines_init(&nd.lines, PARLEY_CLI_HTTP_MAXBODY, ndjson_line, &nd);
  rc = parley_cli_call(ctx, &req, &resp);
  if (rc == PARLEY_CLI_EXIT_OK && !is_2xx(resp.status))
    rc = parley_cli_daemon_error(&resp);
  if (rc == PARLEY_CLI_EXIT_OK) {
    int prc = parley_cli_lines_finish(&nd.lines);
    if (prc == PARLEY_EPROTO)
      rc = parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                           "malformed answer from the daemon");
    else if (prc < 0)
      rc = parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "%s",
                           parley_strerror(prc));
  }
  parley_cli_lines_close(&nd.lines);
  parley_cli_http_resp_close(&resp);
  return rc;
}

static int run(const struct parley_cli_args *args) {
  struct parley_cli_ctx *ctx;
  const struct parley_cli_cmd_def *cmd = args->cmd;
  int rc;

  if (args->set[PARLEY_CLI_F_VERSION]) {
    printf("parley %s\n", PARLEY_CLI_VERSION);
    return PARLEY_CLI_EXIT_OK;
  }
  if (cmd != NULL && cmd->id == PARLEY_CLI_CMD_HELP &&
      !args->set[PARLEY_CLI_F_HELP]) {
    if (args->npos == 1) {
      cmd = parley_cli_cmd_find(args->pos[0]);
      if (cmd == NULL)
        return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                               "unknown command '%.100s'", args->pos[0]);
    } else {
      cmd = NULL;
    }
    parley_cli_args_usage(stdout, cmd);
    return PARLEY_CLI_EXIT_OK;
  }
  if (args->set[PARLEY_CLI_F_HELP]) {
    parley_cli_args_usage(stdout, cmd && cmd->id != PARLEY_CLI_CMD_HELP
                                      ? cmd : NULL);
    return PARLEY_CLI_EXIT_OK;
  }
  if (cmd == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "missing command (run 'parley --help')");
  ctx = parley_calloc(1, sizeof *ctx);
  if (ctx == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  ctx->args = args;
  rc = resolve_dir(ctx);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = dispatch[cmd->id](ctx);
  parley_free(ctx);
  return rc;
}

int parley_cli_main(int argc, char **argv) {
  struct parley_cli_args args;
  int rc;

  json_set_alloc_funcs(parley_malloc, parley_free);
  if (parley_cli_args_parse(argc, argv, &args) < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE, "%s", args.err);
  if (parley_cli_http_global_init() < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "cannot initialise curl");
  rc = run(&args);
  parley_cli_http_global_close();
  if (fflush(stdout) != 0 && rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "cannot write output");
  return rc;
}
