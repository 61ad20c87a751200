/* cmd_trust.c — verify, trust and untrust: key verification through the
 * daemon's /v1/verify, /v1/trust and /v1/untrust (docs/API.md). */
#include <stdio.h>
#include <string.h>

#include "apps/cli/cmds.h"
#include "apps/cli/output.h"
#include "core/util.h"

static int out_rc(int rc) {
  return rc < 0 ? parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                                  "cannot write output")
                : PARLEY_CLI_EXIT_OK;
}

static const char *str_of(json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

/* "safety number: ...", then "trusted: yes (NAME)" / "trusted: no", and a
 * warning line for a key that claims a trusted peer's name or address. */
static int print_verify(json_t *obj) {
  const char *num = str_of(obj, "safety_number");
  const char *name = str_of(obj, "name");
  const char *pinned = str_of(obj, "pinned");
  json_t *trusted = json_object_get(obj, "trusted");
  struct parley_buf b;
  int rc;

  if (num == NULL || !json_is_boolean(trusted))
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON,
                           "malformed answer from the daemon");
  parley_buf_init(&b, 4096);
  rc = parley_buf_appendf(&b, "safety number: ");
  if (rc == PARLEY_OK)
    rc = parley_cli_escape(&b, num, strlen(num));
  if (rc == PARLEY_OK)
    rc = parley_buf_appendf(&b, "\ntrusted: %s",
                            json_is_true(trusted) ? "yes" : "no");
  if (rc == PARLEY_OK && json_is_true(trusted) && name && name[0]) {
    rc = parley_buf_append(&b, " (", 2);
    if (rc == PARLEY_OK)
      rc = parley_cli_escape(&b, name, strlen(name));
    if (rc == PARLEY_OK)
      rc = parley_buf_append(&b, ")", 1);
  }
  if (rc == PARLEY_OK && json_is_true(json_object_get(obj, "key_changed"))) {
    rc = parley_buf_appendf(&b, "\nKEY CHANGED: this key claims the name "
                                "or address of trusted peer ");
    if (rc == PARLEY_OK)
      rc = parley_cli_escape(&b, pinned ? pinned : "?",
                             strlen(pinned ? pinned : "?"));
  }
  if (rc == PARLEY_OK)
    rc = parley_buf_append(&b, "\n", 1);
  if (rc == PARLEY_OK && fwrite(b.data, 1, b.len, stdout) != b.len)
    rc = PARLEY_EIO;
  parley_buf_close(&b);
  return out_rc(rc);
}

int parley_cli_cmd_verify(struct parley_cli_ctx *ctx) {
  char canon[PARLEY_ID_TEXT_LEN + 1], path[128];
  json_t *obj = NULL;
  int rc = parley_cli_check_peer(ctx->args->pos[0], canon);

  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  snprintf(path, sizeof path, "/v1/verify?peer=%s", canon);
  rc = parley_cli_get_object(ctx, path, &obj);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  if (ctx->args->set[PARLEY_CLI_F_JSON])
    rc = out_rc(parley_cli_print_json(stdout, obj));
  else
    rc = print_verify(obj);
  json_decref(obj);
  return rc;
}

/* A contact name as the daemon accepts it: 1..64 bytes, no control
 * characters (UTF-8 is checked by the daemon). */
static int check_name(const char *name) {
  size_t len = strlen(name);
  int ok = len > 0 && len <= 64;
  for (size_t i = 0; ok && i < len; i++)
    if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] == 0x7f)
      ok = 0;
  if (!ok)
    return parley_cli_fail(PARLEY_CLI_EXIT_USAGE,
                           "bad --name: 1 to 64 bytes without control "
                           "characters");
  return PARLEY_CLI_EXIT_OK;
}

int parley_cli_cmd_trust(struct parley_cli_ctx *ctx) {
  const char *name = ctx->args->value[PARLEY_CLI_F_NAME];
  char canon[PARLEY_ID_TEXT_LEN + 1];
  json_t *body, *res = NULL;
  const char *got;
  int rc = parley_cli_check_peer(ctx->args->pos[0], canon);

  if (rc == PARLEY_CLI_EXIT_OK && name != NULL)
    rc = check_name(name);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  body = name != NULL ? json_pack("{s:s, s:s}", "peer", canon, "name", name)
                      : json_pack("{s:s}", "peer", canon);
  if (body == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  rc = parley_cli_post_object(ctx, "/v1/trust", body, &res);
  json_decref(body);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  got = str_of(res, "name");
  if (ctx->args->set[PARLEY_CLI_F_JSON]) {
    rc = out_rc(parley_cli_print_json(stdout, res));
  } else {
    struct parley_buf b;
    parley_buf_init(&b, 4096);
    rc = parley_buf_appendf(&b, "trusted %s", canon);
    if (rc == PARLEY_OK && got != NULL && got[0]) {
      rc = parley_buf_append(&b, " as ", 4);
      if (rc == PARLEY_OK)
        rc = parley_cli_escape(&b, got, strlen(got));
    }
    if (rc == PARLEY_OK)
      rc = parley_buf_append(&b, "\n", 1);
    if (rc == PARLEY_OK && fwrite(b.data, 1, b.len, stdout) != b.len)
      rc = PARLEY_EIO;
    parley_buf_close(&b);
    rc = out_rc(rc);
  }
  json_decref(res);
  return rc;
}

int parley_cli_cmd_untrust(struct parley_cli_ctx *ctx) {
  char canon[PARLEY_ID_TEXT_LEN + 1];
  json_t *body, *res = NULL;
  int rc = parley_cli_check_peer(ctx->args->pos[0], canon);

  if (rc == PARLEY_CLI_EXIT_OK)
    rc = parley_cli_connect(ctx);
  if (rc != PARLEY_CLI_EXIT_OK)
    return rc;
  body = json_pack("{s:s}", "peer", canon);
  if (body == NULL)
    return parley_cli_fail(PARLEY_CLI_EXIT_DAEMON, "out of memory");
  rc = parley_cli_post_object(ctx, "/v1/untrust", body, &res);
  json_decref(body);
  if (rc == PARLEY_CLI_EXIT_OK)
    rc = out_rc(printf("untrusted %s\n", canon) < 0 ? PARLEY_EIO
                                                     : PARLEY_OK);
  json_decref(res);
  return rc;
}
