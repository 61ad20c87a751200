/*
 * err.h — the one error table of Parley.
 *
 * Every function that can fail returns an int: 0 (PARLEY_OK) on success, a
 * negative PARLEY_E* code otherwise, so callers test `if (rc < 0)` as with
 * libuv.  Results travel through out-parameters; a return value is never
 * overloaded.  Codes from libuv, SQLite and libraft are translated at the
 * module boundary by the parley_err_from_* helpers.
 */
#ifndef PARLEY_CORE_ERR_H
#define PARLEY_CORE_ERR_H

#define PARLEY_NODISCARD __attribute__((warn_unused_result))
#define PARLEY_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))

/* X(name, value, text).  Values are stable: they travel in ERROR frames. */
#define PARLEY_ERR_MAP(X)                                                     \
  X(OK, 0, "success")                                                         \
  X(EAGAIN, -1, "incomplete input, need more bytes")                          \
  X(EINVAL, -2, "invalid argument")                                           \
  X(ENOMEM, -3, "out of memory")                                              \
  X(EPROTO, -4, "protocol violation")                                         \
  X(ETOOBIG, -5, "too large")                                                 \
  X(EVERSION, -6, "unsupported protocol version")                             \
  X(EAUTH, -7, "authentication failed")                                       \
  X(ECRYPTO, -8, "decryption or signature check failed")                      \
  X(EIO, -9, "input/output error")                                            \
  X(ESTORE, -10, "storage error")                                             \
  X(ENOTFOUND, -11, "not found")                                              \
  X(EEXIST, -12, "already exists")                                            \
  X(ELIMIT, -13, "limit reached")                                             \
  X(ETIMEDOUT, -14, "timed out")                                              \
  X(ECANCELED, -15, "canceled")                                               \
  X(ECLOSED, -16, "connection closed")                                        \
  X(EUNKNOWNPEER, -17, "unknown peer")                                        \
  X(EUNKNOWNTYPE, -18, "unknown frame type")                                  \
  X(ENOTLEADER, -19, "not the leader")                                        \
  X(EUNAVAIL, -20, "service unavailable")                                     \
  X(EDENIED, -21, "permission denied")                                        \
  X(ECONNECT, -22, "connection failed")                                       \
  X(ERANGE, -23, "value out of range")                                        \
  X(ESYNTAX, -24, "syntax error")                                             \
  X(EINTERNAL, -25, "internal error")

enum parley_err {
#define PARLEY_ERR_ENUM(name, value, text) PARLEY_##name = (value),
  PARLEY_ERR_MAP(PARLEY_ERR_ENUM)
#undef PARLEY_ERR_ENUM
};

/* Human-readable text for a code; never NULL ("unknown error" otherwise). */
const char *parley_strerror(int rc);
/* Symbolic name ("EPROTO"); never NULL. */
const char *parley_err_name(int rc);

/* Translate a libuv status (negative errno) into a Parley code. */
int parley_err_from_uv(int uv_rc);
/* Translate an SQLite result code (positive) into a Parley code. */
int parley_err_from_sqlite(int sqlite_rc);

#endif
