/* opts.c — table-driven option parsing. */
#include "core/opts.h"

#include <string.h>

#include "core/util.h"

static int set_value(const struct parley_opt *o, const char *v, void *cfg,
                     char *err, size_t errcap) {
  char *base = cfg;
  uint64_t u;
  int rc;

  switch (o->kind) {
  case PARLEY_OPT_STR:
    *(const char **)(base + o->offset) = v;
    return PARLEY_OK;
  case PARLEY_OPT_FLAG:
    *(int *)(base + o->offset) = 1;
    return PARLEY_OK;
  case PARLEY_OPT_U64:
    rc = parley_parse_u64(v, o->min, o->max, &u);
    break;
  default: /* duration */
    rc = parley_parse_duration_ms(v, &u);
    if (rc == PARLEY_OK && (u < o->min || u > o->max))
      rc = PARLEY_ERANGE;
    break;
  }
  if (rc < 0) {
    if (o->kind == PARLEY_OPT_U64)
      snprintf(err, errcap, "--%s: '%s' is not a number in %llu..%llu",
               o->name, v, (unsigned long long)o->min,
               (unsigned long long)o->max);
    else
      snprintf(err, errcap,
               "--%s: '%s' is not a duration (e.g. 10s, 500ms, 2m) in range",
               o->name, v);
    return PARLEY_EINVAL;
  }
  *(uint64_t *)(base + o->offset) = u;
  return PARLEY_OK;
}

int parley_opts_parse(const struct parley_opt *table, size_t n, int argc,
                      char **argv, void *cfg, char *err, size_t errcap) {
  unsigned char seen[128] = {0};

  if (n > sizeof seen)
    return PARLEY_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (table[i].def && set_value(&table[i], table[i].def, cfg, err, errcap) < 0)
      return PARLEY_EINVAL;
  for (int a = 1; a < argc; a++) {
    const char *arg = argv[a], *val = NULL, *eq;
    size_t nlen;
    const struct parley_opt *o = NULL;

    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
      return PARLEY_EAGAIN;
    if (strncmp(arg, "--", 2) != 0) {
      snprintf(err, errcap, "unexpected argument '%s'", arg);
      return PARLEY_EINVAL;
    }
    arg += 2;
    eq = strchr(arg, '=');
    nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    for (size_t i = 0; i < n; i++) {
      if (strlen(table[i].name) == nlen &&
          strncmp(table[i].name, arg, nlen) == 0) {
        o = &table[i];
        seen[i] = 1;
        break;
      }
    }
    if (o == NULL) {
      snprintf(err, errcap, "unknown flag --%.*s", (int)nlen, arg);
      return PARLEY_EINVAL;
    }
    if (o->kind == PARLEY_OPT_FLAG) {
      if (eq) {
        snprintf(err, errcap, "--%s takes no value", o->name);
        return PARLEY_EINVAL;
      }
    } else if (eq) {
      val = eq + 1;
    } else if (a + 1 < argc) {
      val = argv[++a];
    } else {
      snprintf(err, errcap, "--%s needs a value (%s)", o->name,
               o->arg ? o->arg : "VALUE");
      return PARLEY_EINVAL;
    }
    if (set_value(o, val, cfg, err, errcap) < 0)
      return PARLEY_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    if ((table[i].flags & PARLEY_OPT_REQUIRED) && !seen[i]) {
      snprintf(err, errcap, "--%s is required", table[i].name);
      return PARLEY_EINVAL;
    }
  }
  return PARLEY_OK;
}

void parley_opts_usage(FILE *out, const char *prog, const char *summary,
                       const struct parley_opt *table, size_t n) {
  fprintf(out, "usage: %s [OPTIONS]\n%s\n\noptions:\n", prog, summary);
  for (size_t i = 0; i < n; i++) {
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", table[i].name,
             table[i].kind == PARLEY_OPT_FLAG ? "" : " ",
             table[i].kind == PARLEY_OPT_FLAG ? ""
             : table[i].arg                   ? table[i].arg
                                              : "VALUE");
    fprintf(out, "  %-28s %s%s", left, table[i].help,
            (table[i].flags & PARLEY_OPT_REQUIRED) ? " (required)" : "");
    if (table[i].def)
      fprintf(out, " [default: %s]", table[i].def);
    fputc('\n', out);
  }
}
