/*
 * args.h — the command line of `parley`, described by two tables.
 *
 * One table lists every flag (name, value placeholder, help), the other every
 * command (name, positional arguments, summary, which flags it accepts and
 * how many positionals it takes).  The same tables drive parsing, validation
 * of flag applicability and the --help text, so adding a flag is one line in
 * each table.
 *
 * Parsing is pure: no I/O, no allocation, no environment.  Flags may come
 * before or after the command and its positionals; "--" ends flags; "-" is a
 * positional (stdin); "--flag=value" and "--flag value" are both accepted.
 */
#ifndef PARLEY_APPS_CLI_ARGS_H
#define PARLEY_APPS_CLI_ARGS_H

#include <stdio.h>

#include "core/err.h"

enum parley_cli_flag {
  PARLEY_CLI_F_DATA,
  PARLEY_CLI_F_HELP,
  PARLEY_CLI_F_VERSION,
  PARLEY_CLI_F_JSON,
  PARLEY_CLI_F_ACK,
  PARLEY_CLI_F_TIMEOUT,
  PARLEY_CLI_F_LINES,
  PARLEY_CLI_F_SYNC,
  PARLEY_CLI_F_DIRECT,
  PARLEY_CLI_F_FROM,
  PARLEY_CLI_F_SINCE,
  PARLEY_CLI_F_UNTIL,
  PARLEY_CLI_F_SEARCH,
  PARLEY_CLI_F_LIMIT,
  PARLEY_CLI_F_NAME,
  PARLEY_CLI_F_PRIVATE,
  PARLEY_CLI_F_COUNT
};

enum parley_cli_cmd {
  PARLEY_CLI_CMD_HELP,
  PARLEY_CLI_CMD_ID,
  PARLEY_CLI_CMD_STATUS,
  PARLEY_CLI_CMD_PEERS,
  PARLEY_CLI_CMD_TOPICS,
  PARLEY_CLI_CMD_SUBSCRIBE,
  PARLEY_CLI_CMD_UNSUBSCRIBE,
  PARLEY_CLI_CMD_PUBLISH,
  PARLEY_CLI_CMD_SEND,
  PARLEY_CLI_CMD_LISTEN,
  PARLEY_CLI_CMD_HISTORY,
  PARLEY_CLI_CMD_VERIFY,
  PARLEY_CLI_CMD_TRUST,
  PARLEY_CLI_CMD_UNTRUST,
  PARLEY_CLI_CMD_TRUSTED,
  PARLEY_CLI_CMD_TOPIC,
  PARLEY_CLI_CMD_COUNT
};

/* Most positionals any command takes (listen's topic list). */
#define PARLEY_CLI_MAX_POS 64

struct parley_cli_flag_def {
  const char *name;    /* without the leading "--" */
  const char *metavar; /* NULL for a boolean flag */
  const char *help;
};

struct parley_cli_cmd_def {
  enum parley_cli_cmd id;
  const char *name;
  const char *synopsis; /* positionals, e.g. "TOPIC TEXT" */
  const char *summary;  /* one line */
  const char *details;  /* extra help paragraph, may be NULL */
  unsigned flags;       /* bit (1u << enum parley_cli_flag) per flag */
  int min_pos;
  int max_pos;
};

struct parley_cli_args {
  const struct parley_cli_cmd_def *cmd; /* NULL: no command given */
  /* For a flag f that was given: set[f] = 1 and, for a flag taking a value,
   * value[f] points into argv (the last occurrence wins). */
  int set[PARLEY_CLI_F_COUNT];
  const char *value[PARLEY_CLI_F_COUNT];
  const char *pos[PARLEY_CLI_MAX_POS]; /* borrowed from argv */
  int npos;
  char err[256]; /* on failure: one line, without the "parley: " prefix */
};

/* Parses argv[1..argc).  Strings in out borrow argv.  When --help or
 * --version is given, positional counts are not checked (so that
 * "parley publish --help" works).  PARLEY_EINVAL with out->err set on an
 * unknown flag or command, a flag that does not apply to the command, a
 * missing flag value, or a wrong number of positionals. */
PARLEY_NODISCARD int parley_cli_args_parse(int argc, char *const *argv,
                                           struct parley_cli_args *out)
    PARLEY_NONNULL(2, 3);

/* Looks a command up by name; NULL if unknown. */
const struct parley_cli_cmd_def *parley_cli_cmd_find(const char *name)
    PARLEY_NONNULL(1);

/* Writes the general usage (cmd == NULL) or one command's help to f. */
void parley_cli_args_usage(FILE *f, const struct parley_cli_cmd_def *cmd)
    PARLEY_NONNULL(1);

#endif
