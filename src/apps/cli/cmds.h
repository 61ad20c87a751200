/*
 * cmds.h — the commands of parley, one function each.  Every function gets
 * a context whose args were parsed and checked against the command table
 * (args.h), validates its own arguments (exit 2 on a bad one, before the
 * daemon is contacted), talks to the daemon and returns the exit status,
 * having printed at most one error line.
 */
#ifndef PARLEY_APPS_CLI_CMDS_H
#define PARLEY_APPS_CLI_CMDS_H

#include "apps/cli/cli.h"
#include "core/util.h"

/* cmd_info.c */
int parley_cli_cmd_id(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_status(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_peers(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_topics(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_subscribe(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_unsubscribe(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);

/* cmd_send.c */
int parley_cli_cmd_publish(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_send(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);

/* cmd_read.c */
int parley_cli_cmd_listen(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_history(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);

/* cmd_trust.c (key verification; the `trusted` listing is in cmd_info.c
 * with the other listings) */
int parley_cli_cmd_verify(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_trust(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_untrust(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);
int parley_cli_cmd_trusted(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);

/* cmd_topic.c: private topics */
int parley_cli_cmd_topic(struct parley_cli_ctx *ctx) PARLEY_NONNULL(1);

/* Validation shared by the commands: each prints the usage error and
 * returns PARLEY_CLI_EXIT_USAGE, or returns 0.  check_peer writes the
 * canonical (lower-case) form of the id to canon. */
int parley_cli_check_topic(const char *topic) PARLEY_NONNULL(1);
int parley_cli_check_peer(const char *id,
                          char canon[PARLEY_ID_TEXT_LEN + 1])
    PARLEY_NONNULL(1, 2);

#endif
