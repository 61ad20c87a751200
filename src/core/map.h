/*
 * map.h — a hash map from byte-string keys to pointers (separate chaining,
 * grows by doubling).  The map copies keys; values are borrowed pointers the
 * caller owns.  Iteration order is unspecified; do not insert while
 * iterating (removing the current entry through parley_map_iter_remove is
 * fine).
 */
#ifndef PARLEY_CORE_MAP_H
#define PARLEY_CORE_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct parley_map_entry {
  struct parley_map_entry *next;
  uint64_t hash;
  void *value;
  size_t klen;
  uint8_t key[]; /* klen bytes, then a NUL so string keys print */
};

struct parley_map {
  struct parley_map_entry **slots;
  size_t nslots;
  size_t count;
  uint64_t seed;
  uint64_t frees; /* entries freed so far: a memo taken before is stale */
};

/* The entry a parley_map_get_memo call found last, for a hot path that
 * looks up the same key again and again.  Zero it to start; it stays
 * valid across puts and is dropped by the next removal (del, iter_remove,
 * close).  One memo belongs to one map for the map's whole life. */
struct parley_map_memo {
  const struct parley_map_entry *e;
  uint64_t frees;
};

struct parley_map_iter {
  struct parley_map *map;
  size_t slot;
  struct parley_map_entry *cur, *next;
};

/* seed perturbs the hash so peers cannot aim collisions. */
void parley_map_init(struct parley_map *m, uint64_t seed) PARLEY_NONNULL(1);
/* Frees the entries (not the values).  Safe on a zeroed map. */
void parley_map_close(struct parley_map *m) PARLEY_NONNULL(1);
void *parley_map_get(const struct parley_map *m, const void *key, size_t klen);
/* parley_map_get that first compares key with the memo's entry (no hash
 * when it matches) and remembers the entry it finds. */
void *parley_map_get_memo(const struct parley_map *m,
                          struct parley_map_memo *memo, const void *key,
                          size_t klen) PARLEY_NONNULL(1, 2);
/* Inserts or replaces.  OUT: *old (if non-NULL) gets the replaced value or
 * NULL.  PARLEY_ENOMEM on allocation failure (map unchanged). */
PARLEY_NODISCARD int parley_map_put(struct parley_map *m, const void *key,
                                    size_t klen, void *value, void **old);
/* Removes the key; returns its value or NULL if absent. */
void *parley_map_del(struct parley_map *m, const void *key, size_t klen);

void parley_map_iter_init(struct parley_map_iter *it, struct parley_map *m);
/* Returns the next entry or NULL at the end. */
struct parley_map_entry *parley_map_iter_next(struct parley_map_iter *it);
/* Removes the entry last returned by parley_map_iter_next. */
void parley_map_iter_remove(struct parley_map_iter *it);

#endif
