/*
 * cli.h — the `parley` command-line client of a local parleyd.
 *
 * parley_cli_main() is the whole program: it parses the command line
 * (args.h), finds the daemon through DIR/api.json, runs one command against
 * the daemon's HTTP API (docs/API.md) and maps the outcome onto the exit
 * status below.  On failure exactly one line goes to stderr, "parley: ...",
 * except for publish --ack, which lists the pending subscribers one a line.
 *
 * The helpers declared here are shared by the command modules (cmd_*.c):
 * each prints its own error line and returns the exit status to use, so a
 * command is a straight sequence of "validate, request, print".
 */
#ifndef PARLEY_APPS_CLI_CLI_H
#define PARLEY_APPS_CLI_CLI_H

#include <jansson.h>

#include "apps/cli/args.h"
#include "apps/cli/http.h"

#define PARLEY_CLI_VERSION PARLEY_VERSION_STRING /* from CMake */

/* Exit statuses of parley (part of its documented interface). */
enum parley_cli_exit {
  PARLEY_CLI_EXIT_OK = 0,
  PARLEY_CLI_EXIT_DAEMON = 1,      /* the daemon answered with an error */
  PARLEY_CLI_EXIT_USAGE = 2,       /* bad command line */
  PARLEY_CLI_EXIT_NODAEMON = 3,    /* no api.json, or no answer */
  PARLEY_CLI_EXIT_TIMEOUT = 4,     /* timed out / not acknowledged */
  PARLEY_CLI_EXIT_UNKNOWNPEER = 5, /* send to a peer the daemon does not know */
};

/* Default of --timeout, and the margin added to it for the HTTP request. */
#define PARLEY_CLI_DEFAULT_TIMEOUT_S 10u
#define PARLEY_CLI_TIMEOUT_MARGIN_MS 5000L
/* Request timeout of every other command but listen (which has none). */
#define PARLEY_CLI_REQUEST_TIMEOUT_MS 30000L

struct parley_cli_ctx {
  const struct parley_cli_args *args; /* borrowed */
  char dir[4096];                     /* the data directory */
  char apifile[4200];                 /* dir + "/api.json" */
  struct parley_cli_api api;          /* valid after parley_cli_connect */
};

/* Called with each object of an NDJSON listing (borrowed for the call).
 * Returns a negative PARLEY_E* code to stop (PARLEY_EIO: output failed). */
typedef int (*parley_cli_object_cb)(void *ud, json_t *obj);

/* The program.  Returns the exit status. */
int parley_cli_main(int argc, char **argv) PARLEY_NONNULL(2);

/* Prints "parley: <message>" as one line on stderr (newlines and control
 * characters escaped) and returns code. */
int parley_cli_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads ctx->apifile into ctx->api.  Returns an exit status (0 on success;
 * PARLEY_CLI_EXIT_NODAEMON, error printed, if missing or malformed). */
int parley_cli_connect(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);

/* Performs req.  Returns 0 when an HTTP answer arrived (any status) or the
 * request was stopped through req->stop, else prints the error (daemon not
 * running, no answer in time, malformed or oversized answer) and returns
 * the exit status.  resp must be closed by the caller in every case. */
int parley_cli_call(struct parley_cli_ctx *ctx,
                    const struct parley_cli_http_req *req,
                    struct parley_cli_http_resp *resp) PARLEY_NONNULL(1, 2, 3);

/* For a non-2xx answer: prints the daemon's "error" text (or the HTTP
 * status when the body has none) and returns PARLEY_CLI_EXIT_DAEMON. */
int parley_cli_daemon_error(const struct parley_cli_http_resp *resp)
    PARLEY_NONNULL(1);

/* Parses a buffered answer body as a JSON object; NULL if it is not one.
 * Caller owns the result (json_decref). */
json_t *parley_cli_resp_json(const struct parley_cli_http_resp *resp)
    PARLEY_NONNULL(1);

/* GET path, expecting a JSON object.  On success *out holds it (caller
 * decrefs).  Returns an exit status, with the error printed. */
int parley_cli_get_object(struct parley_cli_ctx *ctx, const char *path,
                          json_t **out) PARLEY_NONNULL(1, 2, 3);

/* POST body (serialised here) to path, expecting a JSON object.  Returns an
 * exit status, error printed, on a 2xx answer whose body is not a JSON
 * object.  *out holds it (caller decrefs). */
int parley_cli_post_object(struct parley_cli_ctx *ctx, const char *path,
                           const json_t *body, json_t **out)
    PARLEY_NONNULL(1, 2, 3, 4);

/* GET path, an NDJSON listing, calling cb for each object as it arrives.
 * Returns an exit status, error printed. */
int parley_cli_get_lines(struct parley_cli_ctx *ctx, const char *path,
                         parley_cli_object_cb cb, void *ud)
    PARLEY_NONNULL(1, 2, 3);

#endif
