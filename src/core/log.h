/*
 * log.h — logging through a sink the embedding program chooses.
 *
 * Library code never prints.  It calls PARLEY_LOG(lg, level, fmt, ...) with a
 * struct parley_log whose emit() the daemon supplies (stderr, JSON lines,
 * a ring buffer for the dashboard...).  A NULL logger or a NULL emit drops
 * the record.  Levels below PARLEY_LOG_MIN_LEVEL compile to nothing.
 * Setting PARLEY_TRACE=1 in the environment lets DEBUG records through
 * parley_log_stderr.
 */
#ifndef PARLEY_CORE_LOG_H
#define PARLEY_CORE_LOG_H

#include <stdarg.h>

enum parley_log_level {
  PARLEY_LOG_DEBUG = 0,
  PARLEY_LOG_INFO = 1,
  PARLEY_LOG_WARN = 2,
  PARLEY_LOG_ERROR = 3,
};

#ifndef PARLEY_LOG_MIN_LEVEL
#define PARLEY_LOG_MIN_LEVEL PARLEY_LOG_DEBUG
#endif

struct parley_log {
  /* Called with a formatted, NUL-terminated message (no trailing newline). */
  void (*emit)(void *ctx, int level, const char *file, int line,
               const char *func, const char *msg);
  void *ctx;
  int min_level; /* records below this level are dropped at run time */
};

void parley__log(const struct parley_log *lg, int level, const char *file,
                 int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define PARLEY_LOG(lg, level, ...)                                            \
  do {                                                                        \
    if ((level) >= PARLEY_LOG_MIN_LEVEL)                                      \
      parley__log((lg), (level), __FILE__, __LINE__, __func__, __VA_ARGS__);  \
  } while (0)

/* A ready-made sink that writes "TIME LEVEL [name] msg" lines to stderr.
 * ctx must be a const char * naming the process (borrowed, may be NULL). */
void parley_log_stderr(void *ctx, int level, const char *file, int line,
                       const char *func, const char *msg);

const char *parley_log_level_name(int level);

#endif
