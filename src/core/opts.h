/*
 * opts.h — command-line options from one table.
 *
 * Each daemon describes its options once ({name, kind, min, max, default,
 * help, offset into its config struct}); the same table drives parsing,
 * validation, defaults and --help.  Values land in the caller's struct at
 * the given offsets: PARLEY_OPT_STR as const char * (borrowed from argv or
 * the default), PARLEY_OPT_U64 and PARLEY_OPT_DURATION (milliseconds; a
 * bare number means seconds) as uint64_t, PARLEY_OPT_FLAG as int.
 */
#ifndef PARLEY_CORE_OPTS_H
#define PARLEY_CORE_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

enum parley_opt_kind {
  PARLEY_OPT_STR = 1,
  PARLEY_OPT_U64 = 2,
  PARLEY_OPT_DURATION = 3,
  PARLEY_OPT_FLAG = 4,
};

#define PARLEY_OPT_REQUIRED 0x1u

struct parley_opt {
  const char *name;   /* without the leading "--" */
  int kind;
  unsigned flags;     /* PARLEY_OPT_REQUIRED */
  uint64_t min, max;  /* for U64 and DURATION (ms) */
  const char *def;    /* default in text form, NULL for none */
  const char *arg;    /* placeholder in --help, e.g. "HOST:PORT" */
  const char *help;
  size_t offset;      /* where the value goes in the config struct */
};

/* Applies defaults, then parses argv[1..argc).  On error writes a one-line
 * message into err (errcap bytes) and returns PARLEY_EINVAL.  Returns
 * PARLEY_EAGAIN when --help was given (the caller prints usage and exits
 * 0). */
PARLEY_NODISCARD int parley_opts_parse(const struct parley_opt *table,
                                       size_t n, int argc, char **argv,
                                       void *cfg, char *err, size_t errcap)
    PARLEY_NONNULL(1, 4, 5, 6);
void parley_opts_usage(FILE *out, const char *prog, const char *summary,
                       const struct parley_opt *table, size_t n)
    PARLEY_NONNULL(1, 2, 3, 4);

#endif
