/* cmd_send.c — publish and send: building the message from an argument or
 * stdin, and reading the acknowledgement outcome. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apps/cli/cmds.h"
#include "apps/cli/input.h"
#include "apps/cli/output.h"
#include "apps/cli/stream.h"
#include "core/alloc.h"
#include "core/limits.h"
#include "core/util.h"

#define MAX_TIMEOUT_S 86400u

struct sender {
  struct parley_cli_ctx *ctx;
  const char *topic; /* publish: the topic; send: NULL */
  const char *peer;  /* send: the recipient (canonical text) */
  int ack;           /* publish: mode "ack" (or "sync") */
  int sync;          /* publish: mode "sync" */
  uint64_t timeout_s;
  int rc; /* exit status of a failed line (--lines) */
};

static int parse_timeout(const struct parley_cli_ctx *ctx, uint64_t *out) {
  const char *v = ctx->args->value[PARLEY_CLI_F_TIMEOUT];
  *out = PARLEY_CLI_DEFAULT_TIMEOUT_S;
  if (v != NULL && parley_parse_u64(v, 1, MAX_TIMEOUT_S, out) < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "bad --timeout '%.40s': whole seconds from 1 to %u",
                           v, MAX_TIMEOUT_S);
  return PARLEY_CLI_EXIT_OK;
}

static json_t *request_body(const struct sender *s, const void *p, size_t n) {
  json_t *o = json_object();
  int bad = o == NULL;

  if (!bad && s->topic != NULL)
    bad = json_object_set_new(o, "topic", json_string(s->topic)) < 0;
  if (!bad && s->peer != NULL)
    bad = json_object_set_new(o, "to", json_string(s->peer)) < 0;
  if (!bad)
    bad = parley_cli_body_set(o, p, n) < 0;
  if (!bad && s->topic != NULL)
    bad = json_object_set_new(o, "mode",
                              json_string(s->sync  ? "sync"
                                          : s->ack ? "ack"
                                                   : "async")) < 0;
  if (!bad && (s->ack || s->peer != NULL))
    bad = json_object_set_new(o, "timeout_ms",
                              json_integer((json_int_t)s->timeout_s * 1000)) <
          0;
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* Prints a message id from the answer on stdout (nothing if absent). */
static int print_id(const json_t *res) {
  const char *id = json_string_value(json_object_get(res, "id"));
  if (id == NULL)
    return PARLEY_EPROTO;
  if (printf("%s\n", id) < 0 || fflush(stdout) != 0)
    return PARLEY_EIO;
  return PARLEY_OK;
}

/* 504 on publish --ack: the pending subscribers, one id a line. */
static int report_pending(const struct sender *s, const json_t *res) {
  const json_t *pending = json_object_get(res, "pending"), *e;
  size_t i;

  if (json_array_size(pending) == 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_TIMEOUT,
                           "not acknowledged within %llu s (queued)",
                           (unsigned long long)s->timeout_s);
  json_array_foreach(pending, i, e) {
    struct parley_buf b;
    const char *id = json_string_value(e);
    parley_buf_init(&b, 1024);
    if (id != NULL && parley_cli_escape(&b, id, strlen(id)) == PARLEY_OK)
      fprintf(stderr, "%.*s\n", (int)b.len, (const char *)b.data);
    parley_buf_close(&b);
  }
  return PARLEY_CLI_EXIT_TIMEOUT;
}

/* publish --sync: one line per subscriber on stdout, "ID status detail".
 * Exit 0 if every subscriber stored it, 4 if some did not answer in time
 * (they stay queued), 1 if some refused it. */
static int report_sync(const struct sender *s, const json_t *res,
                       unsigned status) {
  const json_t *results = json_object_get(res, "results"), *e;
  size_t i;

  if (print_id(res) < 0 || !json_is_array(results))
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                           "malformed answer from the daemon");
  json_array_foreach(results, i, e) {
    const char *id = json_string_value(json_object_get(e, "id"));
    const char *st = json_string_value(json_object_get(e, "status"));
    const char *err = json_string_value(json_object_get(e, "error"));
    json_int_t lat = json_integer_value(json_object_get(e, "latency_ms"));
    if (id == NULL || st == NULL)
      continue;
    if (strcmp(st, "stored") == 0)
      printf("%s stored %lld ms\n", id, (long long)lat);
    else if (strcmp(st, "refused") == 0)
      printf("%s refused: %s\n", id, err ? err : "?");
    else
      printf("%s not stored within %llu s (queued)\n", id,
             (unsigned long long)s->timeout_s);
  }
  fflush(stdout);
  if (status == 200)
    return PARLEY_CLI_EXIT_OK;
  if (status == 504)
    return parley_cli_fail(PARLEY_CLI_EXIT_TIMEOUT,
                           "not every subscriber stored it within %llu s",
                           (unsigned long long)s->timeout_s);
  return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                         "some subscribers refused the message");
}

static int outcome(const struct sender *s,
                   const struct parley_cli_http_resp *resp) {
  json_t *res = parley_cli_resp_json(resp);
  int rc;

  if (s->sync && res != NULL &&
      json_is_array(json_object_get(res, "results"))) {
    rc = report_sync(s, res, resp->status);
    json_decref(res);
    return rc;
  }
  if (resp->status >= 200 && resp->status < 300) {
    int prc = print_id(res);
    rc = prc == PARLEY_OK ? PARLEY_CLI_EXIT_OK
         : prc == PARLEY_EIO
             ? parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "cannot write output")
             : parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                               "malformed answer from the daemon");
  } else if (resp->status == 504 && (s->ack || s->peer != NULL)) {
    /* Queued all the same: its id is still worth knowing. */
    (void)print_id(res);
    if (s->peer != NULL)
      rc = parley_cli_fail(PARLEY_CLI_EXIT_TIMEOUT,
                           "not acknowledged within %llu s (queued)",
                           (unsigned long long)s->timeout_s);
    else
      rc = report_pending(s, res);
  } else if (resp->status == 404 && s->peer != NULL) {
    rc = parley_cli_fail(PARLEY_CLI_EXIT_UNKNOWNPEER, "unknown peer %s",
                         s->peer);
  } else {
    rc = parley_cli_daemon_error(resp);
  }
  json_decref(res);
  return rc;
}

static int send_one(struct sender *s, const void *p, size_t n) {
  struct parley_cli_http_req req;
  struct parley_cli_http_resp resp;
  json_t *body = request_body(s, p, n);
  char *text;
  int rc;

  if (body == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (text == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  memset(&req, 0, sizeof req);
  req.method = "POST";
  req.path = s->topic != NULL ? "/v1/publish" : "/v1/send";
  req.body = text;
  req.timeout_ms = (long)s->timeout_s * 1000 + PARLEY_CLI_TIMEOUT_MARGIN_MS;
  rc = parley_cli_call(s->ctx, &req, &resp);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = outcome(s, &resp);
  parley_cli_http_resp_close(&resp);
  parley_free(text);
  return rc;
}

static int send_stdin(struct sender *s) {
  struct parley_buf in;
  int rc;

  parley_buf_init(&in, PARLEY_MAX_HTTP_BODY);
  rc = parley_cli_read_all(STDIN_FILENO, &in);
  if (rc == PARLEY_ETOOBIG)
    rc = parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                         "message on stdin larger than %u bytes",
                         PARLEY_MAX_HTTP_BODY);
  else if (rc < 0)
    rc = parley_cli_fail(PARLEY_CLI_EXIT_USAGE, "cannot read stdin: %s",
                         parley_strerror(rc));
  else
    rc = send_one(s, in.data ? (const char *)in.data : "", in.len);
  parley_buf_close(&in);
  return rc;
}

static int line_cb(void *ud, const char *text, size_t len) {
  struct sender *s = ud;
  if (len == 0)
    return PARLEY_OK; /* empty lines are not messages */
  s->rc = send_one(s, text, len);
  return s->rc == PARLEY_CLI_EXIT_OK ? PARLEY_OK : PARLEY_ECANCELED;
}

/* --lines: one message per stdin line, sent as each line arrives. */
static int send_lines(struct sender *s) {
  struct parley_cli_lines lines;
  int rc = PARLEY_OK;

  parley_cli_lines_init(&lines, PARLEY_MAX_HTTP_BODY, line_cb, s);
  while (rc == PARLEY_OK) {
    char chunk[65536];
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      rc = PARLEY_EIO;
    else if (n == 0)
      break;
    else
      rc = parley_cli_lines_feed(&lines, chunk, (size_t)n);
  }
  if (rc == PARLEY_OK)
    rc = parley_cli_lines_finish(&lines);
  parley_cli_lines_close(&lines);
  if (rc == PARLEY_ECANCELED)
    return s->rc;
  if (rc == PARLEY_ETOOBIG)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "line on stdin longer than %u bytes",
                           PARLEY_MAX_HTTP_BODY);
  if (rc < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE, "cannot read stdin: %s",
                           parley_strerror(rc));
  return PARLEY_CLI_EXIT_OK;
}

int parley_cli_cmd_publish(struct parley_cli_ctx *ctx) {
  const struct parley_cli_args *a = ctx->args;
  const char *text = a->pos[1];
  struct sender s;
  int rc;

  memset(&s, 0, sizeof s);
  s.ctx = ctx;
  s.topic = a->pos[0];
  s.sync = a->set[PARLEY_CLI_F_SYNC];
  s.ack = a->set[PARLEY_CLI_F_ACK] || s.sync;
  if (a->set[PARLEY_CLI_F_SYNC] && a->set[PARLEY_CLI_F_ACK])
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "--sync and --ack are different modes; pick one");
  rc = parley_cli_check_topic(s.topic);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (a->set[PARLEY_CLI_F_LINES] && strcmp(text, "-") != 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "--lines needs TEXT - (stdin)");
  rc = parse_timeout(ctx, &s.timeout_s);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (a->set[PARLEY_CLI_F_LINES])
    return send_lines(&s);
  if (strcmp(text, "-") == 0)
    return send_stdin(&s);
  return send_one(&s, text, strlen(text));
}

int parley_cli_cmd_send(struct parley_cli_ctx *ctx) {
  const char *text = ctx->args->pos[1];
  char peer[PARLEY_ID_TEXT_LEN + 1];
  struct sender s;
  int rc;

  memset(&s, 0, sizeof s);
  s.ctx = ctx;
  s.peer = peer;
  rc = parley_cli_check_peer(ctx->args->pos[0], peer);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parse_timeout(ctx, &s.timeout_s);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (strcmp(text, "-") == 0)
    return send_stdin(&s);
  return send_one(&s, text, strlen(text));
}
