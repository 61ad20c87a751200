/*
 * output.h — how the CLI prints what the daemon answered: a human form
 * (message lines, aligned tables, "key: value" status) and a JSON form (the
 * daemon's object, compact, one per line).
 *
 * Everything here writes to a FILE the caller chooses; all text that came
 * from the daemon or from peers is escaped (control characters become \n,
 * \xNN, \uNNNN) so that a message can neither break the one-line-per-message
 * layout nor send escape sequences to the terminal.
 */
#ifndef PARLEY_APPS_CLI_OUTPUT_H
#define PARLEY_APPS_CLI_OUTPUT_H

#include <jansson.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/err.h"

/* Cap of one printed line (a 2 MiB body escaped byte by byte fits). */
#define PARLEY_CLI_OUT_LINE_MAX (32u * 1024u * 1024u)

/* How many characters of a peer id a human line shows (then "…"). */
#define PARLEY_CLI_SHORT_ID 12

/* Appends s[0..n) to b with control characters (C0 but tab, DEL, C1)
 * escaped.  Invalid UTF-8 bytes are escaped as \xNN too. */
PARLEY_NODISCARD int parley_cli_escape(struct parley_buf *b, const char *s,
                                       size_t n) PARLEY_NONNULL(1);

/* Prints obj as one compact JSON line. */
PARLEY_NODISCARD int parley_cli_print_json(FILE *f, const json_t *obj)
    PARLEY_NONNULL(1, 2);

/* Prints one message object as a human line:
 *   TS TOPIC FROM…: TEXT            (topic message)
 *   TS @direct FROM…→me: TEXT       (direct message received)
 *   TS @direct me→TO…: TEXT         (direct message sent)
 * With with_direction, "in " or "out" follows the time (history). */
PARLEY_NODISCARD int parley_cli_print_message(FILE *f, const json_t *msg,
                                              int with_direction)
    PARLEY_NONNULL(1, 2);

/* Prints a status object as "key: value" lines. */
PARLEY_NODISCARD int parley_cli_print_status(FILE *f, const json_t *st)
    PARLEY_NONNULL(1, 2);

/* A table printed with aligned columns under a header row.  Cells are
 * copied.  A zeroed struct is not valid: call parley_cli_table_init. */
struct parley_cli_table {
  int ncols;
  const char *const *headers; /* borrowed, ncols entries */
  unsigned right;             /* bit i: column i is right-aligned */
  json_t *rows;               /* array of arrays of strings */
};

PARLEY_NODISCARD int parley_cli_table_init(struct parley_cli_table *t,
                                           int ncols,
                                           const char *const *headers,
                                           unsigned right)
    PARLEY_NONNULL(1, 3);
/* Adds a row of ncols cells (escaped on print). */
PARLEY_NODISCARD int parley_cli_table_add(struct parley_cli_table *t,
                                          const char *const *cells)
    PARLEY_NONNULL(1, 2);
PARLEY_NODISCARD int parley_cli_table_print(FILE *f,
                                            const struct parley_cli_table *t)
    PARLEY_NONNULL(1, 2);
void parley_cli_table_close(struct parley_cli_table *t) PARLEY_NONNULL(1);

/* Text of a JSON value for a table cell or status value: strings as they
 * are, integers in decimal, true/false, null as "-", arrays of scalars
 * joined by ", " ("(none)" when empty), other values as compact JSON.
 * Appended to b (not escaped, not NUL-terminated). */
PARLEY_NODISCARD int parley_cli_value_text(struct parley_buf *b,
                                           const json_t *v)
    PARLEY_NONNULL(1);

#endif
