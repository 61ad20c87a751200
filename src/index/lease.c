/* lease.c — peer leases: a key map plus a binary min-heap by expiry. */
#include "index/lease.h"

#include <string.h>

#include "core/alloc.h"

#define KEYLEN 32

/* Heap order: earlier expiry first, then the smaller key. */
static int before(const struct parley_lease *a, const struct parley_lease *b) {
  if (a->expires_ms != b->expires_ms)
    return a->expires_ms < b->expires_ms;
  return memcmp(a->pk, b->pk, KEYLEN) < 0;
}

static void heap_set(struct parley_lease_table *t, size_t i,
                     struct parley_lease *l) {
  t->heap[i] = l;
  l->heap_idx = i;
}

static void sift_up(struct parley_lease_table *t, size_t i) {
  struct parley_lease *l = t->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(l, t->heap[parent]))
      break;
    heap_set(t, i, t->heap[parent]);
    i = parent;
  }
  heap_set(t, i, l);
}

static void sift_down(struct parley_lease_table *t, size_t i) {
  struct parley_lease *l = t->heap[i];
  for (;;) {
    size_t left = 2 * i + 1, right = left + 1, best = i;
    const struct parley_lease *cur = l;
    if (left < t->len && before(t->heap[left], cur)) {
      best = left;
      cur = t->heap[left];
    }
    if (right < t->len && before(t->heap[right], cur))
      best = right;
    if (best == i)
      break;
    heap_set(t, i, t->heap[best]);
    i = best;
  }
  heap_set(t, i, l);
}

/* Restores the heap property after t->heap[i]'s key changed either way. */
static void fix(struct parley_lease_table *t, size_t i) {
  if (i > 0 && before(t->heap[i], t->heap[(i - 1) / 2]))
    sift_up(t, i);
  else
    sift_down(t, i);
}

/* Takes the entry at heap position i out of the heap (not out of the map). */
static void heap_delete(struct parley_lease_table *t, size_t i) {
  struct parley_lease *last = t->heap[--t->len];
  if (i == t->len)
    return;
  heap_set(t, i, last);
  fix(t, i);
}

void parley_lease_table_init(struct parley_lease_table *t, uint64_t seed) {
  memset(t, 0, sizeof *t);
  parley_map_init(&t->by_pk, seed);
}

void parley_lease_table_close(struct parley_lease_table *t) {
  for (size_t i = 0; i < t->len; i++)
    parley_free(t->heap[i]);
  parley_free(t->heap);
  parley_map_close(&t->by_pk);
  t->heap = NULL;
  t->len = t->alloc = 0;
}

int parley_lease_renew(struct parley_lease_table *t, const uint8_t pk[32],
                       uint64_t now_ms, uint64_t duration_ms,
                       int64_t seen_ms) {
  uint64_t expires =
      duration_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + duration_ms;
  struct parley_lease *l = parley_map_get(&t->by_pk, pk, KEYLEN);
  int rc;

  if (l != NULL) {
    l->expires_ms = expires;
    l->last_seen_ms = seen_ms;
    fix(t, l->heap_idx);
    return PARLEY_OK;
  }
  if (t->len == t->alloc) {
    size_t n = t->alloc ? t->alloc * 2 : 16;
    struct parley_lease **h;
    if (n > SIZE_MAX / sizeof *h)
      return PARLEY_ENOMEM;
    h = parley_realloc(t->heap, n * sizeof *h);
    if (h == NULL)
      return PARLEY_ENOMEM;
    t->heap = h;
    t->alloc = n;
  }
  l = parley_calloc(1, sizeof *l);
  if (l == NULL)
    return PARLEY_ENOMEM;
  memcpy(l->pk, pk, KEYLEN);
  l->expires_ms = expires;
  l->last_seen_ms = seen_ms;
  rc = parley_map_put(&t->by_pk, pk, KEYLEN, l, NULL);
  if (rc < 0) {
    parley_free(l);
    return rc;
  }
  heap_set(t, t->len++, l);
  sift_up(t, l->heap_idx);
  return PARLEY_OK;
}

int parley_lease_remove(struct parley_lease_table *t, const uint8_t pk[32]) {
  struct parley_lease *l = parley_map_del(&t->by_pk, pk, KEYLEN);
  if (l == NULL)
    return PARLEY_ENOTFOUND;
  heap_delete(t, l->heap_idx);
  parley_free(l);
  return PARLEY_OK;
}

const struct parley_lease *parley_lease_get(const struct parley_lease_table *t,
                                            const uint8_t pk[32]) {
  return parley_map_get(&t->by_pk, pk, KEYLEN);
}

int parley_lease_next_expiry(const struct parley_lease_table *t,
                             uint64_t *expires_ms) {
  if (t->len == 0)
    return PARLEY_ENOTFOUND;
  *expires_ms = t->heap[0]->expires_ms;
  return PARLEY_OK;
}

int parley_lease_pop_expired(struct parley_lease_table *t, uint64_t now_ms,
                             uint8_t pk_out[32]) {
  struct parley_lease *l;
  if (t->len == 0 || t->heap[0]->expires_ms > now_ms)
    return PARLEY_ENOTFOUND;
  l = t->heap[0];
  memcpy(pk_out, l->pk, KEYLEN);
  (void)parley_map_del(&t->by_pk, l->pk, KEYLEN);
  heap_delete(t, 0);
  parley_free(l);
  return PARLEY_OK;
}

size_t parley_lease_count(const struct parley_lease_table *t) {
  return t->len;
}
