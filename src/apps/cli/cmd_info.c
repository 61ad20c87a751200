/* cmd_info.c — id, status, peers, topics, trusted, subscribe and
 * unsubscribe. */
#include <stdio.h>
#include <string.h>

#include "apps/cli/cmds.h"
#include "apps/cli/output.h"
#include "core/limits.h"
#include "core/util.h"

int parley_cli_check_topic(const char *topic) {
  if (!parley_topic_valid(topic, strlen(topic), PARLEY_MAX_TOPIC))
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "bad topic '%.80s': 1 to %u printable ASCII "
                           "characters, no spaces, not starting with '@'",
                           topic, PARLEY_MAX_TOPIC);
  return PARLEY_CLI_EXIT_OK;
}

int parley_cli_check_peer(const char *id,
                          char canon[PARLEY_ID_TEXT_LEN + 1]) {
  uint8_t key[PARLEY_KEY_LEN];
  if (parley_id_decode(id, key) < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "bad peer id '%.80s': expected %d base32 "
                           "characters",
                           id, PARLEY_ID_TEXT_LEN);
  parley_id_encode(key, canon);
  return PARLEY_CLI_EXIT_OK;
}

static int want_json(const struct parley_cli_ctx *ctx) {
  return ctx->args->set[PARLEY_CLI_F_JSON];
}

static int out_rc(int rc) {
  return rc < 0 ? parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                                  "cannot write output")
                : PARLEY_CLI_EXIT_OK;
}

int parley_cli_cmd_id(struct parley_cli_ctx *ctx) {
  json_t *obj = NULL;
  const char *id;
  int rc = parley_cli_connect(ctx);

  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_get_object(ctx, "/v1/id", &obj);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  id = json_string_value(json_object_get(obj, "id"));
  if (want_json(ctx))
    rc = out_rc(parley_cli_print_json(stdout, obj));
  else if (id == NULL)
    rc = parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                         "malformed answer from the daemon");
  else
    rc = out_rc(printf("%s\n", id) < 0 ? PARLEY_EIO : PARLEY_OK);
  json_decref(obj);
  return rc;
}

int parley_cli_cmd_status(struct parley_cli_ctx *ctx) {
  json_t *obj = NULL;
  int rc = parley_cli_connect(ctx);

  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_get_object(ctx, "/v1/status", &obj);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (want_json(ctx))
    rc = out_rc(parley_cli_print_json(stdout, obj));
  else
    rc = out_rc(parley_cli_print_status(stdout, obj));
  json_decref(obj);
  return rc;
}

/* A listing printed either as JSON lines (as they arrive) or as a table
 * (after the last row, to align the columns). */
struct listing {
  int json;
  /* The last column is shown only if some object had this key (the
   * daemon's "trust" of a peer; older daemons do not send it). */
  const char *optional_key;
  int have_optional;
  struct parley_cli_table table;
  /* Fills cells[] (strings borrowed from obj or from the scratch buffers). */
  void (*row)(json_t *obj, const char **cells, char scratch[][48]);
};

static int listing_cb(void *ud, json_t *obj) {
  struct listing *l = ud;
  const char *cells[8];
  char scratch[8][48];

  if (l->json)
    return parley_cli_print_json(stdout, obj);
  if (l->optional_key && json_object_get(obj, l->optional_key) != NULL)
    l->have_optional = 1;
  l->row(obj, cells, scratch);
  return parley_cli_table_add(&l->table, cells);
}

static const char *cell_text(json_t *obj, const char *key, char *scratch) {
  json_t *v = json_object_get(obj, key);
  if (json_is_string(v))
    return json_string_value(v);
  if (json_is_integer(v)) {
    snprintf(scratch, 48, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return scratch;
  }
  return "-";
}

static void time_cell(json_t *obj, const char *key, const char **cell,
                      char *scratch) {
  json_t *t = json_object_get(obj, key);
  if (json_is_integer(t)) {
    parley_format_rfc3339((int64_t)json_integer_value(t), scratch, 48);
    *cell = scratch;
  } else {
    *cell = "-";
  }
}

/* The TRUST column: a pinned key, a key claiming a pinned name or
 * address, this peer, or nothing known. */
static const char *trust_text(json_t *obj) {
  const char *t = json_string_value(json_object_get(obj, "trust"));
  if (t == NULL)
    return "-";
  if (strcmp(t, "trusted") == 0)
    return "trusted";
  if (strcmp(t, "changed") == 0)
    return "KEY CHANGED";
  if (strcmp(t, "self") == 0)
    return "self";
  return "-";
}

static void peer_row(json_t *obj, const char **cells, char scratch[][48]) {
  cells[0] = cell_text(obj, "id", scratch[0]);
  cells[1] = cell_text(obj, "name", scratch[1]);
  cells[2] = cell_text(obj, "addr", scratch[2]);
  time_cell(obj, "last_seen", &cells[3], scratch[3]);
  cells[4] = trust_text(obj);
}

static void pin_row(json_t *obj, const char **cells, char scratch[][48]) {
  const char *name = json_string_value(json_object_get(obj, "name"));
  const char *addr = json_string_value(json_object_get(obj, "addr"));
  cells[0] = cell_text(obj, "id", scratch[0]);
  cells[1] = name && name[0] ? name : "-";
  cells[2] = addr && addr[0] ? addr : "-";
  time_cell(obj, "since", &cells[3], scratch[3]);
}

static void topic_row(json_t *obj, const char **cells, char scratch[][48]) {
  cells[0] = cell_text(obj, "topic", scratch[0]);
  cells[1] = cell_text(obj, "subscribers", scratch[1]);
}

static int run_listing(struct parley_cli_ctx *ctx, const char *path,
                       struct listing *l, int ncols,
                       const char *const *headers, unsigned right) {
  int rc = parley_cli_connect(ctx);

  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  l->json = want_json(ctx);
  if (parley_cli_table_init(&l->table, ncols, headers, right) < 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  rc = parley_cli_get_lines(ctx, path, listing_cb, l);
  if (l->optional_key && !l->have_optional)
    l->table.ncols--; /* rows keep the cell; it is not printed */
  if (rc == PARLEY_CLI_EXIT_OK && !l->json)
    rc = out_rc(parley_cli_table_print(stdout, &l->table));
  parley_cli_table_close(&l->table);
  return rc;
}

int parley_cli_cmd_peers(struct parley_cli_ctx *ctx) {
  static const char *const headers[] = {"ID", "NAME", "ADDRESS",
                                        "LAST SEEN", "TRUST"};
  struct listing l;
  memset(&l, 0, sizeof l);
  l.row = peer_row;
  l.optional_key = "trust";
  return run_listing(ctx, "/v1/peers", &l, 5, headers, 0);
}

int parley_cli_cmd_trusted(struct parley_cli_ctx *ctx) {
  static const char *const headers[] = {"ID", "NAME", "ADDRESS", "SINCE"};
  struct listing l;
  memset(&l, 0, sizeof l);
  l.row = pin_row;
  return run_listing(ctx, "/v1/trusted", &l, 4, headers, 0);
}

int parley_cli_cmd_topics(struct parley_cli_ctx *ctx) {
  static const char *const headers[] = {"TOPIC", "SUBSCRIBERS"};
  struct listing l;
  memset(&l, 0, sizeof l);
  l.row = topic_row;
  return run_listing(ctx, "/v1/topics", &l, 2, headers, 1u << 1);
}

static int subscription(struct parley_cli_ctx *ctx, int on) {
  const char *topic = ctx->args->pos[0];
  json_t *body, *res = NULL;
  int rc = parley_cli_check_topic(topic);

  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  body = json_pack("{s:s}", "topic", topic);
  if (body == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  rc = parley_cli_post_object(
      ctx, on ? "/v1/subscribe" : "/v1/unsubscribe", body, &res);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = out_rc(printf("%s %s\n", on ? "subscribed to" : "unsubscribed from",
                       topic) < 0
                    ? PARLEY_EIO
                    : PARLEY_OK);
  json_decref(res);
  json_decref(body);
  return rc;
}

int parley_cli_cmd_subscribe(struct parley_cli_ctx *ctx) {
  return subscription(ctx, 1);
}

int parley_cli_cmd_unsubscribe(struct parley_cli_ctx *ctx) {
  return subscription(ctx, 0);
}
