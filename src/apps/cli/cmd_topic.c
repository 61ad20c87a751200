/* cmd_topic.c — `parley topic ACTION NAME [PEER_ID]`: private topics through
 * the daemon's /v1/private endpoints (docs/API.md, "Private topics"). */
#include <stdio.h>
#include <string.h>

#include "apps/cli/cmds.h"
#include "apps/cli/http.h"
#include "apps/cli/output.h"
#include "core/buf.h"

static int out_rc(int rc) {
  return rc < 0 ? parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                                  "cannot write output")
                : PARLEY_CLI_EXIT_OK;
}

/* owner, epoch, members one a line (the owner marked), and the key epochs
 * this peer holds. */
static int print_topic(const json_t *o, const char *action,
                       const char *member) {
  const char *topic = json_string_value(json_object_get(o, "topic"));
  const char *owner = json_string_value(json_object_get(o, "owner"));
  json_int_t epoch = json_integer_value(json_object_get(o, "epoch"));
  const json_t *members = json_object_get(o, "members");
  const json_t *keys = json_object_get(o, "keys_held");
  size_t i;
  json_t *v;

  if (topic == NULL || owner == NULL || !json_is_array(members))
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                           "daemon answered without topic, owner or "
                           "members");
  if (strcmp(action, "create") == 0)
    printf("created private topic %s (key epoch %lld)\n", topic,
           (long long)epoch);
  else if (strcmp(action, "grant") == 0)
    printf("granted %s on %s (key epoch %lld)\n", member, topic,
           (long long)epoch);
  else if (strcmp(action, "revoke") == 0)
    printf("revoked %s on %s; key rotated to epoch %lld\n", member, topic,
           (long long)epoch);
  else if (strcmp(action, "rotate") == 0)
    printf("rotated the key of %s to epoch %lld\n", topic, (long long)epoch);
  if (strcmp(action, "members") != 0)
    return PARLEY_CLI_EXIT_OK;
  printf("topic  %s\nowner  %s\nepoch  %lld\nkeys   ", topic, owner,
         (long long)epoch);
  json_array_foreach(keys, i, v) {
    printf("%s%lld", i ? "," : "", (long long)json_integer_value(v));
  }
  printf("%s\nmembers (%zu)\n", json_array_size(keys) ? "" : "none",
         json_array_size(members));
  json_array_foreach(members, i, v) {
    const char *id = json_string_value(v);
    if (id != NULL)
      printf("  %s%s\n", id, strcmp(id, owner) == 0 ? "  (owner)" : "");
  }
  return fflush(stdout) == 0 ? PARLEY_CLI_EXIT_OK
                             : out_rc(PARLEY_EIO);
}

/* topic history NAME on|off */
static int history(struct parley_cli_ctx *ctx, const char *topic) {
  const struct parley_cli_args *a = ctx->args;
  json_t *body, *res = NULL;
  int rc = parley_cli_check_topic(topic), keep;

  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (a->npos != 3 || a->set[PARLEY_CLI_F_PRIVATE] ||
      (strcmp(a->pos[2], "on") != 0 && strcmp(a->pos[2], "off") != 0))
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "topic history NAME on|off");
  keep = strcmp(a->pos[2], "on") == 0;
  rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  body = json_pack("{s:s, s:b}", "topic", topic, "keep", keep);
  if (body == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  rc = parley_cli_post_object(ctx, "/v1/history", body, &res);
  json_decref(body);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (a->set[PARLEY_CLI_F_JSON])
    rc = out_rc(parley_cli_print_json(stdout, res));
  else
    rc = out_rc(printf("%s: history %s\n", topic, keep ? "kept" : "off") < 0
                    ? PARLEY_EIO
                    : PARLEY_OK);
  json_decref(res);
  return rc;
}

int parley_cli_cmd_topic(struct parley_cli_ctx *ctx) {
  const struct parley_cli_args *a = ctx->args;
  const char *action = a->pos[0], *topic = a->pos[1];
  char canon[PARLEY_ID_TEXT_LEN + 1], path[32];
  int needs_peer, rc;
  json_t *body = NULL, *res = NULL;

  if (strcmp(action, "history") == 0)
    return history(ctx, topic);
  needs_peer = strcmp(action, "grant") == 0 || strcmp(action, "revoke") == 0;
  if (!needs_peer && strcmp(action, "create") != 0 &&
      strcmp(action, "rotate") != 0 && strcmp(action, "members") != 0)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "unknown topic action '%.40s' (create, grant, "
                           "revoke, rotate, members, history)",
                           action);
  rc = parley_cli_check_topic(topic);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (needs_peer != (a->npos == 3))
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           needs_peer ? "topic %s needs NAME and PEER_ID"
                                      : "topic %s takes NAME only",
                           action);
  if (needs_peer) {
    rc = parley_cli_check_peer(a->pos[2], canon);
    if (rc != PARLEY_CLI_EXIT_OK)
      return rc;
  }
  if (strcmp(action, "create") == 0 && !a->set[PARLEY_CLI_F_PRIVATE])
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "topic create needs --private (public topics "
                           "exist as soon as someone subscribes)");
  if (strcmp(action, "create") != 0 && a->set[PARLEY_CLI_F_PRIVATE])
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "--private goes with create only");
  rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (strcmp(action, "members") == 0) {
    struct parley_buf q;
    parley_buf_init(&q, 1024);
    rc = parley_buf_appendf(&q, "/v1/private");
    if (rc == PARLEY_OK)
      rc = parley_cli_query_add(&q, "topic", topic);
    if (rc < 0) {
      parley_buf_close(&q);
      return parley_cli_fail(PARLEY_CLI_EXIT_USAGE, "topic name too long");
    }
    rc = parley_cli_get_object(ctx, (const char *)q.data, &res);
    parley_buf_close(&q);
  } else {
    snprintf(path, sizeof path, "/v1/private/%s", action);
    body = needs_peer ? json_pack("{s:s, s:s}", "topic", topic, "peer", canon)
                      : json_pack("{s:s}", "topic", topic);
    if (body == NULL)
      return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
    rc = parley_cli_post_object(ctx, path, body, &res);
    json_decref(body);
  }
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (a->set[PARLEY_CLI_F_JSON])
    rc = out_rc(parley_cli_print_json(stdout, res));
  else
    rc = print_topic(res, action, needs_peer ? canon : "");
  json_decref(res);
  return rc;
}
