/*
 * store_sql.h — reading and writing a store's file beside its own
 * connection, for the store tests (test_store.c, test_store_query.c): one
 * integer from a query, a script run to completion, and the query that
 * counts message rows no span covers (schema 9).
 *
 * Everything is static, so each test program gets its own copy.  Include
 * after cmocka's headers.
 */
#ifndef PARLEY_TEST_STORE_SQL_H
#define PARLEY_TEST_STORE_SQL_H

#include <sqlite3.h>

/* Messages no span covers: every row must lie in a span of its own
 * publisher and channel, rowid and ts within the span's bounds. */
#define SPANS_MISSING                                                          \
  "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM spans s"    \
  " WHERE s.publisher = m.publisher AND s.channel = m.channel"                 \
  " AND m.rowid BETWEEN s.lo AND s.hi AND m.ts BETWEEN s.ts_lo AND s.ts_hi)"

/* One integer from sql, read through a second connection (WAL: it sees
 * what was committed). */
static inline int raw_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int v;

  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* Runs sql on the file through a second connection. */
static inline void raw_exec(const char *path, const char *sql) {
  sqlite3 *db = NULL;

  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

#endif
