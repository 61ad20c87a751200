/*
 * store_pub.c — publisher ids (schema 8).
 *
 * A message row names its publisher by an integer id into publishers
 * instead of the 32-byte key: the key was a third of the bytes of a row
 * and its two indexes (docs/internals/STORE.md, "Publisher ids").  Readers
 * never see the id: the statements turn keys into ids and back in SQL
 * (PUB_ID, PUB_KEY in store_int.h).  Writers need the id before the
 * insert, so this file resolves it, adding the publisher when new, and
 * keeps the answers in memory.
 *
 * Contract:
 *   - An id, once committed, never changes and publishers rows are never
 *     deleted, so a cached id stays right for the life of the connection.
 *   - An id added inside a transaction is only as durable as the
 *     transaction: a rollback (or a transaction that ended without
 *     parley_store_commit, seen at the next begin) forgets every cached id
 *     when the transaction added one.
 */
#include <sqlite3.h>

#include "core/alloc.h"
#include "store/store_int.h"

/* Cached ids at most; past this, lookups go to the table every time. */
#define PUB_CACHE_MAX 65536u

static void forget_all(struct parley_store *s) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley_map_iter_init(&it, &s->pubs);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    parley_free(e->value);
    parley_map_iter_remove(&it); /* also drops s->pub_memo */
  }
  s->pub_unsure = 0;
}

/* Runs PUB_GET or PUB_ADD for pk.  OUT: *id. */
static int pub_stmt(struct parley_store *s, enum store_stmt which,
                    const uint8_t pk[32], int64_t *id) {
  struct store_run r = {0};
  int src, rc;

  rc = parley__store_run_start(s, s->stmt[which], &r);
  if (rc < 0)
    return rc;
  src = bind_blob(SQLITE_OK, r.st, 1, pk, 32);
  rc = src == SQLITE_OK ? parley__store_step_i64(s, &r, "publisher id", id)
                        : parley__store_fail_sql(s, src, "publisher id");
  parley__store_run_end(&r);
  return rc;
}

static void remember(struct parley_store *s, const uint8_t pk[32],
                     int64_t id) {
  int64_t *v;

  if (s->pubs.count >= PUB_CACHE_MAX)
    return;
  v = parley_malloc(sizeof *v);
  if (v == NULL)
    return; /* only a cache */
  *v = id;
  if (parley_map_put(&s->pubs, pk, 32, v, NULL) < 0)
    parley_free(v);
}

int parley__store_pub_id(struct parley_store *s, const uint8_t pk[32],
                         int64_t *id) {
  const int64_t *v;
  int rc;

  /* Nearly every put names the publisher of the put before it: the memo
   * answers those without hashing the key. */
  v = parley_map_get_memo(&s->pubs, &s->pub_memo, pk, 32);
  if (v != NULL) {
    *id = *v;
    return PARLEY_OK;
  }
  rc = pub_stmt(s, ST_PUB_GET, pk, id);
  if (rc == PARLEY_ENOTFOUND) {
    rc = pub_stmt(s, ST_PUB_ADD, pk, id);
    if (rc == PARLEY_OK && parley_store_in_tx(s))
      s->pub_unsure = 1;
  }
  if (rc == PARLEY_OK)
    remember(s, pk, *id);
  return rc;
}

void parley__store_pub_commit(struct parley_store *s) { s->pub_unsure = 0; }

void parley__store_pub_rollback(struct parley_store *s) {
  if (s->pub_unsure)
    forget_all(s);
}

void parley__store_pub_free(struct parley_store *s) {
  forget_all(s);
  parley_map_close(&s->pubs);
}
