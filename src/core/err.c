/* err.c — strings for the error table and foreign-code translation. */
#include "core/err.h"

#include <errno.h>

const char *parley_strerror(int rc) {
  switch (rc) {
#define PARLEY_ERR_TEXT(name, value, text) \
  case (value):                            \
    return (text);
    PARLEY_ERR_MAP(PARLEY_ERR_TEXT)
#undef PARLEY_ERR_TEXT
  default:
    return "unknown error";
  }
}

const char *parley_err_name(int rc) {
  switch (rc) {
#define PARLEY_ERR_NAME(name, value, text) \
  case (value):                            \
    return #name;
    PARLEY_ERR_MAP(PARLEY_ERR_NAME)
#undef PARLEY_ERR_NAME
  default:
    return "EUNKNOWN";
  }
}

int parley_err_from_uv(int uv_rc) {
  if (uv_rc >= 0)
    return PARLEY_OK;
  switch (-uv_rc) {
  case ENOMEM:
    return PARLEY_ENOMEM;
  case EINVAL:
    return PARLEY_EINVAL;
  case ETIMEDOUT:
    return PARLEY_ETIMEDOUT;
  case ECANCELED:
    return PARLEY_ECANCELED;
  case ECONNREFUSED:
  case EHOSTUNREACH:
  case ENETUNREACH:
  case EADDRNOTAVAIL:
    return PARLEY_ECONNECT;
  case EPIPE:
  case ECONNRESET:
  case ENOTCONN:
    return PARLEY_ECLOSED;
  case EADDRINUSE:
    return PARLEY_EEXIST;
  default:
    return PARLEY_EIO;
  }
}

int parley_err_from_sqlite(int sqlite_rc) {
  /* SQLite: 0 OK, 100 ROW, 101 DONE; 7 NOMEM; 13 FULL; 5/6 BUSY/LOCKED. */
  switch (sqlite_rc & 0xff) {
  case 0:
  case 100:
  case 101:
    return PARLEY_OK;
  case 7:
    return PARLEY_ENOMEM;
  case 19: /* SQLITE_CONSTRAINT */
    return PARLEY_EEXIST;
  default:
    return PARLEY_ESTORE;
  }
}
