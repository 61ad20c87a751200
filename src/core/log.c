/* log.c — formatting front end for the log sink, and a stderr sink. */
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void parley__log(const struct parley_log *lg, int level, const char *file,
                 int line, const char *func, const char *fmt, ...) {
  char msg[1024];
  va_list ap;

  if (lg == NULL || lg->emit == NULL || level < lg->min_level)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lg->emit(lg->ctx, level, file, line, func, msg);
}

const char *parley_log_level_name(int level) {
  switch (level) {
  case PARLEY_LOG_DEBUG:
    return "debug";
  case PARLEY_LOG_INFO:
    return "info";
  case PARLEY_LOG_WARN:
    return "warn";
  default:
    return "error";
  }
}

void parley_log_stderr(void *ctx, int level, const char *file, int line,
                       const char *func, const char *msg) {
  struct timespec ts;
  struct tm tm;
  char when[32];

  (void)file;
  (void)line;
  (void)func;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  fprintf(stderr, "%s.%03ldZ %-5s [%s] %s\n", when, ts.tv_nsec / 1000000L,
          parley_log_level_name(level), ctx ? (const char *)ctx : "parley",
          msg);
}
