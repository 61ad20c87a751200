/* lease.c — peer leases: a flat array of leases, a binary min-heap of
 * positions in it, and an open-addressing key index (lease.h, "Memory"). */
#include "index/lease.h"

#include <sodium.h>
#include <string.h>

#include "core/alloc.h"

#define KEYLEN 32
#define MIN_ALLOC 16u
#define MIN_SLOTS 32u
/* Positions are 32-bit and slots store position + 1. */
#define MAX_LEASES ((size_t)UINT32_MAX - 1u)

_Static_assert(crypto_shorthash_siphash24_KEYBYTES == 16, "SipHash key");
_Static_assert(crypto_shorthash_siphash24_BYTES == 8, "SipHash output");

/* ---- the key index ----------------------------------------------------- */

static size_t home_slot(const struct parley_lease_table *t,
                        const uint8_t pk[KEYLEN]) {
  uint8_t h[8];
  uint64_t v = 0;

  (void)crypto_shorthash_siphash24(h, pk, KEYLEN, t->key);
  for (int i = 7; i >= 0; i--)
    v = v << 8 | h[i];
  return (size_t)v & (t->nslots - 1);
}

/* The slot holding pk (*found = 1), or the empty slot where it would go
 * (*found = 0).  Needs nslots > 0; the table is never full. */
static size_t find_slot(const struct parley_lease_table *t,
                        const uint8_t pk[KEYLEN], int *found) {
  size_t mask = t->nslots - 1, i = home_slot(t, pk);

  for (;;) {
    uint32_t s = t->slots[i];
    if (s == 0) {
      *found = 0;
      return i;
    }
    if (memcmp(t->v[s - 1].pk, pk, KEYLEN) == 0) {
      *found = 1;
      return i;
    }
    i = (i + 1) & mask;
  }
}

/* Empties slot i and shifts the probe run after it back (linear probing
 * without tombstones): an entry moves into the hole unless its home slot
 * lies cyclically in (hole, its slot]. */
static void slot_delete(struct parley_lease_table *t, size_t i) {
  size_t mask = t->nslots - 1, j = i;

  for (;;) {
    size_t k;
    j = (j + 1) & mask;
    if (t->slots[j] == 0)
      break;
    k = home_slot(t, t->v[t->slots[j] - 1].pk);
    if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
      continue; /* still reachable from its home slot */
    t->slots[i] = t->slots[j];
    i = j;
  }
  t->slots[i] = 0;
}

/* Makes the index at most half full with one more lease. */
static int slots_reserve(struct parley_lease_table *t) {
  size_t n, mask;
  uint32_t *ns;

  if ((t->len + 1) * 2 <= t->nslots)
    return PARLEY_OK;
  n = t->nslots ? t->nslots * 2 : MIN_SLOTS;
  if (n > SIZE_MAX / sizeof *ns)
    return PARLEY_ENOMEM;
  ns = parley_calloc(n, sizeof *ns);
  if (ns == NULL)
    return PARLEY_ENOMEM;
  parley_free(t->slots);
  t->slots = ns;
  t->nslots = n;
  mask = n - 1;
  for (size_t p = 0; p < t->len; p++) {
    size_t i = home_slot(t, t->v[p].pk);
    while (ns[i] != 0)
      i = (i + 1) & mask;
    ns[i] = (uint32_t)(p + 1);
  }
  return PARLEY_OK;
}

/* ---- the heap ------------------------------------------------------------ */

/* Heap order: earlier expiry first, then the smaller key. */
static int before(const struct parley_lease_table *t, uint32_t a,
                  uint32_t b) {
  const struct parley_lease *x = &t->v[a], *y = &t->v[b];
  if (x->expires_ms != y->expires_ms)
    return x->expires_ms < y->expires_ms;
  return memcmp(x->pk, y->pk, KEYLEN) < 0;
}

static void heap_set(struct parley_lease_table *t, size_t i, uint32_t pos) {
  t->heap[i] = pos;
  t->v[pos].heap_idx = (uint32_t)i;
}

static void sift_up(struct parley_lease_table *t, size_t i) {
  uint32_t pos = t->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(t, pos, t->heap[parent]))
      break;
    heap_set(t, i, t->heap[parent]);
    i = parent;
  }
  heap_set(t, i, pos);
}

static void sift_down(struct parley_lease_table *t, size_t i) {
  uint32_t pos = t->heap[i];
  for (;;) {
    size_t left = 2 * i + 1, right = left + 1, best = i;
    uint32_t cur = pos;
    if (left < t->len && before(t, t->heap[left], cur)) {
      best = left;
      cur = t->heap[left];
    }
    if (right < t->len && before(t, t->heap[right], cur))
      best = right;
    if (best == i)
      break;
    heap_set(t, i, t->heap[best]);
    i = best;
  }
  heap_set(t, i, pos);
}

/* Restores the heap property after the lease at heap[i] changed. */
static void fix(struct parley_lease_table *t, size_t i) {
  if (i > 0 && before(t, t->heap[i], t->heap[(i - 1) / 2]))
    sift_up(t, i);
  else
    sift_down(t, i);
}

/* ---- removal ------------------------------------------------------------- */

/* Removes the lease at position pos of v (heap, index and array). */
static void remove_at(struct parley_lease_table *t, uint32_t pos) {
  size_t hi = t->v[pos].heap_idx, last = t->len - 1, i;
  int found;

  /* The heap: the last heap entry takes the hole.  t->len still counts
   * pos, so shrink the heap by hand first. */
  if (hi != last) {
    heap_set(t, hi, t->heap[last]);
    t->len--;
    fix(t, hi);
    t->len++;
  }
  /* The index. */
  i = find_slot(t, t->v[pos].pk, &found);
  if (found)
    slot_delete(t, i);
  /* The array: the last lease moves into the hole. */
  if (pos != last) {
    t->v[pos] = t->v[last];
    t->heap[t->v[pos].heap_idx] = pos;
    i = find_slot(t, t->v[pos].pk, &found);
    if (found)
      t->slots[i] = pos + 1;
  }
  t->len--;
}

/* ---- API ----------------------------------------------------------------- */

void parley_lease_table_init(struct parley_lease_table *t, uint64_t seed) {
  uint64_t s2 = seed * 0x9e3779b97f4a7c15ull ^ 0xd1b54a32d192ed03ull;

  memset(t, 0, sizeof *t);
  for (int i = 0; i < 8; i++) {
    t->key[i] = (uint8_t)(seed >> (8 * i));
    t->key[8 + i] = (uint8_t)(s2 >> (8 * i));
  }
}

void parley_lease_table_close(struct parley_lease_table *t) {
  parley_free(t->v);
  parley_free(t->heap);
  parley_free(t->slots);
  t->v = NULL;
  t->heap = NULL;
  t->slots = NULL;
  t->len = t->alloc = t->nslots = 0;
}

/* Room for one more lease in v and heap. */
static int array_reserve(struct parley_lease_table *t) {
  size_t n;
  struct parley_lease *nv;
  uint32_t *nh;

  if (t->len < t->alloc)
    return PARLEY_OK;
  if (t->len >= MAX_LEASES)
    return PARLEY_ENOMEM;
  n = t->alloc ? t->alloc * 2 : MIN_ALLOC;
  if (n > MAX_LEASES)
    n = MAX_LEASES;
  if (n > SIZE_MAX / sizeof *nv)
    return PARLEY_ENOMEM;
  nv = parley_realloc(t->v, n * sizeof *nv);
  if (nv == NULL)
    return PARLEY_ENOMEM;
  t->v = nv; /* bigger is harmless even if the heap cannot follow */
  nh = parley_realloc(t->heap, n * sizeof *nh);
  if (nh == NULL)
    return PARLEY_ENOMEM;
  t->heap = nh;
  t->alloc = n;
  return PARLEY_OK;
}

int parley_lease_renew(struct parley_lease_table *t, const uint8_t pk[32],
                       uint64_t now_ms, uint64_t duration_ms,
                       int64_t seen_ms) {
  uint64_t expires =
      duration_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + duration_ms;
  struct parley_lease *l;
  size_t i;
  int found = 0, rc;

  if (t->nslots > 0) {
    i = find_slot(t, pk, &found);
    if (found) {
      l = &t->v[t->slots[i] - 1];
      l->expires_ms = expires;
      l->last_seen_ms = seen_ms;
      fix(t, l->heap_idx);
      return PARLEY_OK;
    }
  }
  rc = array_reserve(t);
  if (rc == PARLEY_OK)
    rc = slots_reserve(t);
  if (rc < 0)
    return rc;
  i = find_slot(t, pk, &found);
  l = &t->v[t->len];
  memcpy(l->pk, pk, KEYLEN);
  l->expires_ms = expires;
  l->last_seen_ms = seen_ms;
  t->slots[i] = (uint32_t)(t->len + 1);
  heap_set(t, t->len, (uint32_t)t->len);
  t->len++;
  sift_up(t, t->len - 1);
  return PARLEY_OK;
}

int parley_lease_remove(struct parley_lease_table *t, const uint8_t pk[32]) {
  size_t i;
  int found;

  if (t->nslots == 0)
    return PARLEY_ENOTFOUND;
  i = find_slot(t, pk, &found);
  if (!found)
    return PARLEY_ENOTFOUND;
  remove_at(t, t->slots[i] - 1);
  return PARLEY_OK;
}

const struct parley_lease *parley_lease_get(const struct parley_lease_table *t,
                                            const uint8_t pk[32]) {
  size_t i;
  int found;

  if (t->nslots == 0)
    return NULL;
  i = find_slot(t, pk, &found);
  return found ? &t->v[t->slots[i] - 1] : NULL;
}

int parley_lease_next_expiry(const struct parley_lease_table *t,
                             uint64_t *expires_ms) {
  if (t->len == 0)
    return PARLEY_ENOTFOUND;
  *expires_ms = t->v[t->heap[0]].expires_ms;
  return PARLEY_OK;
}

int parley_lease_pop_expired(struct parley_lease_table *t, uint64_t now_ms,
                             uint8_t pk_out[32]) {
  uint32_t pos;

  if (t->len == 0 || t->v[t->heap[0]].expires_ms > now_ms)
    return PARLEY_ENOTFOUND;
  pos = t->heap[0];
  memcpy(pk_out, t->v[pos].pk, KEYLEN);
  remove_at(t, pos);
  return PARLEY_OK;
}

size_t parley_lease_count(const struct parley_lease_table *t) {
  return t->len;
}
