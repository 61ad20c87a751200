/* args.c — table-driven parsing of the parley command line. */
#include "apps/cli/args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define F(x) (1u << (PARLEY_CLI_F_##x))
#define GLOBAL_FLAGS (F(DATA) | F(HELP) | F(VERSION))

static const struct parley_cli_flag_def flags[PARLEY_CLI_F_COUNT] = {
    [PARLEY_CLI_F_DATA] = {"data", "DIR",
                           "data directory (default $PARLEY_DATA,\n"
                           "                     else $HOME/.parley)"},
    [PARLEY_CLI_F_HELP] = {"help", NULL, "show help and exit"},
    [PARLEY_CLI_F_VERSION] = {"version", NULL, "print the version and exit"},
    [PARLEY_CLI_F_JSON] = {"json", NULL,
                           "print the daemon's JSON objects, one per line"},
    [PARLEY_CLI_F_ACK] = {"ack", NULL,
                          "wait until every current subscriber has "
                          "acknowledged"},
    [PARLEY_CLI_F_TIMEOUT] = {"timeout", "SECONDS",
                              "how long to wait for acknowledgements "
                              "(default 10)"},
    [PARLEY_CLI_F_LINES] = {"lines", NULL,
                            "with TEXT -: one message per stdin line\n"
                            "                     (empty lines are skipped)"},
    [PARLEY_CLI_F_SYNC] = {"sync", NULL,
                           "wait until every subscriber stored it; one result line each"},
    [PARLEY_CLI_F_DIRECT] = {"direct", NULL, "only direct messages"},
    [PARLEY_CLI_F_FROM] = {"from", "PEER_ID", "only messages from this peer"},
    [PARLEY_CLI_F_SINCE] = {"since", "T",
                            "not before T: RFC 3339, or a duration back\n"
                            "                     from now (30s, 10m, 2h, 1d)"},
    [PARLEY_CLI_F_UNTIL] = {"until", "T", "not after T (same forms as --since)"},
    [PARLEY_CLI_F_SEARCH] = {"search", "WORDS", "full-text search"},
    [PARLEY_CLI_F_LIMIT] = {"limit", "N", "at most N messages"},
    [PARLEY_CLI_F_NAME] = {"name", "NAME",
                           "contact name to pin with the key (default:\n"
                           "                     the name the peer "
                           "announces)"},
    [PARLEY_CLI_F_PRIVATE] = {"private", NULL,
                              "with create: make the topic private "
                              "(required)"},
};

static const struct parley_cli_cmd_def cmds[PARLEY_CLI_CMD_COUNT] = {
    {PARLEY_CLI_CMD_HELP, "help", "[COMMAND]", "show help for a command", NULL,
     0, 0, 1},
    {PARLEY_CLI_CMD_ID, "id", "", "print this peer's id", NULL, F(JSON), 0, 0},
    {PARLEY_CLI_CMD_STATUS, "status", "", "show the local node's state", NULL,
     F(JSON), 0, 0},
    {PARLEY_CLI_CMD_PEERS, "peers", "",
     "list live peers (id, name, address, last seen)", NULL, F(JSON), 0,
     0},
    {PARLEY_CLI_CMD_TOPICS, "topics", "",
     "list topics with their subscriber counts", NULL, F(JSON), 0, 0},
    {PARLEY_CLI_CMD_SUBSCRIBE, "subscribe", "TOPIC", "subscribe to a topic",
     NULL, 0, 1, 1},
    {PARLEY_CLI_CMD_UNSUBSCRIBE, "unsubscribe", "TOPIC",
     "unsubscribe from a topic", NULL, 0, 1, 1},
    {PARLEY_CLI_CMD_PUBLISH, "publish", "TOPIC TEXT",
     "publish TEXT on TOPIC and print the message id",
     "TEXT - reads the message from stdin; binary input is sent as base64.\n"
     "Without --ack the message is handed to the daemon and queued.  With\n"
     "--ack, parley waits for every current subscriber; those that did not\n"
     "acknowledge in time are printed on stderr, one id a line (exit 4), and\n"
     "the message stays queued.",
     F(ACK) | F(TIMEOUT) | F(LINES) | F(SYNC), 2, 2},
    {PARLEY_CLI_CMD_SEND, "send", "PEER_ID TEXT",
     "send a direct, acknowledged message and print its id",
     "TEXT - reads the message from stdin.  Exit 4 if the peer did not\n"
     "acknowledge in time (the message stays queued), 5 if it is unknown.",
     F(TIMEOUT), 2, 2},
    {PARLEY_CLI_CMD_LISTEN, "listen", "[TOPIC ...]",
     "print incoming messages until interrupted",
     "With topics, only those topics and direct messages are shown.",
     F(JSON), 0, PARLEY_CLI_MAX_POS},
    {PARLEY_CLI_CMD_HISTORY, "history", "[TOPIC]",
     "print stored messages, oldest first", NULL,
     F(JSON) | F(DIRECT) | F(FROM) | F(SINCE) | F(UNTIL) | F(SEARCH) |
         F(LIMIT),
     0, 1},
    {PARLEY_CLI_CMD_VERIFY, "verify", "PEER_ID",
     "print the safety number to compare with the peer out of band",
     "Both sides see the same 60 digits.  Compare them over a channel you\n"
     "trust (in person, a call), then run 'parley trust PEER_ID'.",
     F(JSON), 1, 1},
    {PARLEY_CLI_CMD_TRUST, "trust", "PEER_ID",
     "pin the peer's key (after comparing safety numbers)",
     "Another key that later shows up under the pinned name (or at the\n"
     "pinned address) is refused, loudly, both ways.",
     F(JSON) | F(NAME), 1, 1},
    {PARLEY_CLI_CMD_UNTRUST, "untrust", "PEER_ID", "forget a pinned key",
     NULL, 0, 1, 1},
    {PARLEY_CLI_CMD_TRUSTED, "trusted", "",
     "list pinned keys (id, name, address, since)", NULL, F(JSON), 0, 0},
    {PARLEY_CLI_CMD_TOPIC, "topic", "ACTION NAME [PEER_ID | on|off]",
     "private topics (create, grant, revoke, rotate, members) and history",
     "  create NAME --private   make NAME private, with you as its owner\n"
     "  grant NAME PEER_ID      add a member (owner only)\n"
     "  revoke NAME PEER_ID     remove a member; the topic key is rotated,\n"
     "                          so it cannot read anything published later\n"
     "  rotate NAME             new topic key for the same members\n"
     "  members NAME            owner, key epoch and members (members only)\n"
     "  history NAME on|off     off: this peer neither stores the topic's\n"
     "                          messages nor acknowledges them as stored\n"
     "                          (fire-and-forget fan-out; set it on every\n"
     "                          peer of the topic)\n"
     "Messages on a private topic are encrypted end to end under the topic\n"
     "key; the index enforces who may subscribe and publish.",
     F(JSON) | F(PRIVATE), 2, 3},
};

const struct parley_cli_cmd_def *parley_cli_cmd_find(const char *name) {
  for (size_t i = 0; i < PARLEY_CLI_CMD_COUNT; i++)
    if (strcmp(cmds[i].name, name) == 0)
      return &cmds[i];
  return NULL;
}

/* Finds a flag by its name (the text after "--", up to len bytes). */
static int flag_find(const char *name, size_t len) {
  for (int i = 0; i < PARLEY_CLI_F_COUNT; i++)
    if (strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0)
      return i;
  return -1;
}

static int fail(struct parley_cli_args *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct parley_cli_args *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out->err, sizeof out->err, fmt, ap);
  va_end(ap);
  return PARLEY_EINVAL;
}

/* Handles argv[*i], which starts with '-' and is not "-" or "--". */
static int parse_flag(int argc, char *const *argv, int *i,
                      struct parley_cli_args *out) {
  const char *arg = argv[*i], *name, *eq;
  size_t len;
  int f;

  if (arg[1] != '-') {
    if (strcmp(arg, "-h") == 0) {
      out->set[PARLEY_CLI_F_HELP] = 1;
      return PARLEY_OK;
    }
    return fail(out, "unknown flag %.100s", arg);
  }
  name = arg + 2;
  eq = strchr(name, '=');
  len = eq ? (size_t)(eq - name) : strlen(name);
  f = flag_find(name, len);
  if (f < 0)
    return fail(out, "unknown flag --%.*s", (int)(len > 100 ? 100 : len),
                name);
  if (flags[f].metavar == NULL) {
    if (eq != NULL)
      return fail(out, "flag --%s takes no value", flags[f].name);
    out->set[f] = 1;
    return PARLEY_OK;
  }
  if (eq != NULL) {
    out->value[f] = eq + 1;
  } else {
    if (*i + 1 >= argc)
      return fail(out, "flag --%s needs a value (%s)", flags[f].name,
                  flags[f].metavar);
    *i += 1;
    out->value[f] = argv[*i];
  }
  out->set[f] = 1;
  return PARLEY_OK;
}

static int add_positional(const char *arg, struct parley_cli_args *out) {
  if (out->cmd == NULL) {
    out->cmd = parley_cli_cmd_find(arg);
    if (out->cmd == NULL)
      return fail(out, "unknown command '%.100s'", arg);
    return PARLEY_OK;
  }
  if (out->npos >= PARLEY_CLI_MAX_POS)
    return fail(out, "%s: too many arguments", out->cmd->name);
  out->pos[out->npos++] = arg;
  return PARLEY_OK;
}

/* Returns the word of the synopsis naming positional n (0-based), e.g.
 * "TEXT" for n = 1 of "TOPIC TEXT", into buf. */
static const char *synopsis_word(const char *syn, int n, char *buf,
                                 size_t cap) {
  const char *p = syn;
  for (int k = 0; *p != '\0'; k++) {
    size_t len = strcspn(p, " ");
    if (k == n) {
      snprintf(buf, cap, "%.*s", (int)len, p);
      return buf;
    }
    p += len;
    p += strspn(p, " ");
  }
  snprintf(buf, cap, "argument");
  return buf;
}

static int check(struct parley_cli_args *out) {
  unsigned allowed;
  char word[64];

  if (out->cmd == NULL)
    return PARLEY_OK;
  allowed = out->cmd->flags | GLOBAL_FLAGS;
  for (int f = 0; f < PARLEY_CLI_F_COUNT; f++)
    if (out->set[f] && !(allowed & (1u << f)))
      return fail(out, "unknown flag --%s for %s", flags[f].name,
                  out->cmd->name);
  if (out->set[PARLEY_CLI_F_HELP] || out->set[PARLEY_CLI_F_VERSION])
    return PARLEY_OK;
  if (out->npos < out->cmd->min_pos)
    return fail(out, "%s: missing argument %s", out->cmd->name,
                synopsis_word(out->cmd->synopsis, out->npos, word,
                              sizeof word));
  if (out->npos > out->cmd->max_pos)
    return fail(out, "%s: unexpected argument '%.60s'", out->cmd->name,
                out->pos[out->cmd->max_pos]);
  return PARLEY_OK;
}

int parley_cli_args_parse(int argc, char *const *argv,
                          struct parley_cli_args *out) {
  int only_pos = 0;

  memset(out, 0, sizeof *out);
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    int rc;
    if (!only_pos && strcmp(arg, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (!only_pos && arg[0] == '-' && arg[1] != '\0')
      rc = parse_flag(argc, argv, &i, out);
    else
      rc = add_positional(arg, out);
    if (rc < 0)
      return rc;
  }
  return check(out);
}

static void print_flags(FILE *f, unsigned mask) {
  for (int i = 0; i < PARLEY_CLI_F_COUNT; i++) {
    char left[40];
    if (!(mask & (1u << i)))
      continue;
    snprintf(left, sizeof left, "--%s%s%s", flags[i].name,
             flags[i].metavar ? " " : "",
             flags[i].metavar ? flags[i].metavar : "");
    fprintf(f, "  %-18s %s\n", left, flags[i].help);
  }
}

void parley_cli_args_usage(FILE *f, const struct parley_cli_cmd_def *cmd) {
  if (cmd == NULL) {
    fprintf(f, "usage: parley [--data DIR] COMMAND [ARGS...]\n\n"
               "Command-line client of the local parleyd daemon.\n\n"
               "commands:\n");
    for (size_t i = 0; i < PARLEY_CLI_CMD_COUNT; i++) {
      char left[40];
      snprintf(left, sizeof left, "%s%s%s", cmds[i].name,
               cmds[i].synopsis[0] ? " " : "", cmds[i].synopsis);
      fprintf(f, "  %-24s %s\n", left, cmds[i].summary);
    }
    fprintf(f, "\nglobal flags:\n");
    print_flags(f, GLOBAL_FLAGS);
    fprintf(f, "\nRun 'parley COMMAND --help' for the flags of a command.\n"
               "Flags may come before or after arguments; -- ends flags.\n"
               "Exit status: 0 ok, 1 the daemon reported an error, 2 usage,\n"
               "3 daemon not running, 4 timed out or not acknowledged,\n"
               "5 unknown peer.\n");
    return;
  }
  fprintf(f, "usage: parley [--data DIR] %s%s%s%s\n\n%s.\n", cmd->name,
          cmd->flags ? " [flags]" : "", cmd->synopsis[0] ? " " : "",
          cmd->synopsis, cmd->summary);
  if (cmd->details != NULL)
    fprintf(f, "\n%s\n", cmd->details);
  if (cmd->flags) {
    fprintf(f, "\nflags:\n");
    print_flags(f, cmd->flags);
  }
  fprintf(f, "\nglobal flags:\n");
  print_flags(f, GLOBAL_FLAGS);
}
