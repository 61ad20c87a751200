/* map.c — chained hash map with seeded FNV-1a. */
#include "core/map.h"

#include <string.h>

#include "core/alloc.h"

static uint64_t hash_bytes(uint64_t seed, const void *key, size_t klen) {
  const uint8_t *p = key;
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (size_t i = 0; i < klen; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

void parley_map_init(struct parley_map *m, uint64_t seed) {
  memset(m, 0, sizeof *m);
  m->seed = seed;
}

void parley_map_close(struct parley_map *m) {
  for (size_t i = 0; i < m->nslots; i++) {
    struct parley_map_entry *e = m->slots[i];
    while (e) {
      struct parley_map_entry *n = e->next;
      parley_free(e);
      e = n;
    }
  }
  parley_free(m->slots);
  m->slots = NULL;
  m->nslots = 0;
  m->count = 0;
  m->frees++;
}

static struct parley_map_entry **find(const struct parley_map *m,
                                      uint64_t h, const void *key,
                                      size_t klen) {
  struct parley_map_entry **pp;
  if (m->nslots == 0)
    return NULL;
  pp = &m->slots[h & (m->nslots - 1)];
  for (; *pp; pp = &(*pp)->next)
    if ((*pp)->hash == h && (*pp)->klen == klen &&
        memcmp((*pp)->key, key, klen) == 0)
      return pp;
  return NULL;
}

void *parley_map_get(const struct parley_map *m, const void *key,
                     size_t klen) {
  struct parley_map_entry **pp =
      find(m, hash_bytes(m->seed, key, klen), key, klen);
  return pp ? (*pp)->value : NULL;
}

void *parley_map_get_memo(const struct parley_map *m,
                          struct parley_map_memo *memo, const void *key,
                          size_t klen) {
  const struct parley_map_entry *e = memo->e;
  struct parley_map_entry **pp;

  if (e != NULL && memo->frees == m->frees && e->klen == klen &&
      memcmp(e->key, key, klen) == 0)
    return e->value;
  pp = find(m, hash_bytes(m->seed, key, klen), key, klen);
  if (pp == NULL)
    return NULL;
  memo->e = *pp;
  memo->frees = m->frees;
  return (*pp)->value;
}

static int grow(struct parley_map *m) {
  size_t n = m->nslots ? m->nslots * 2 : 16;
  struct parley_map_entry **slots =
      parley_calloc(n, sizeof(struct parley_map_entry *));
  if (slots == NULL)
    return PARLEY_ENOMEM;
  for (size_t i = 0; i < m->nslots; i++) {
    struct parley_map_entry *e = m->slots[i];
    while (e) {
      struct parley_map_entry *next = e->next;
      size_t s = e->hash & (n - 1);
      e->next = slots[s];
      slots[s] = e;
      e = next;
    }
  }
  parley_free(m->slots);
  m->slots = slots;
  m->nslots = n;
  return PARLEY_OK;
}

int parley_map_put(struct parley_map *m, const void *key, size_t klen,
                   void *value, void **old) {
  uint64_t h = hash_bytes(m->seed, key, klen);
  struct parley_map_entry **pp = find(m, h, key, klen), *e;

  if (pp) {
    if (old)
      *old = (*pp)->value;
    (*pp)->value = value;
    return PARLEY_OK;
  }
  if (m->count + 1 > m->nslots * 3 / 4 && grow(m) < 0)
    return PARLEY_ENOMEM;
  e = parley_malloc(sizeof *e + klen + 1);
  if (e == NULL)
    return PARLEY_ENOMEM;
  e->hash = h;
  e->value = value;
  e->klen = klen;
  memcpy(e->key, key, klen);
  e->key[klen] = '\0';
  e->next = m->slots[h & (m->nslots - 1)];
  m->slots[h & (m->nslots - 1)] = e;
  m->count++;
  if (old)
    *old = NULL;
  return PARLEY_OK;
}

void *parley_map_del(struct parley_map *m, const void *key, size_t klen) {
  struct parley_map_entry **pp =
      find(m, hash_bytes(m->seed, key, klen), key, klen);
  struct parley_map_entry *e;
  void *v;
  if (pp == NULL)
    return NULL;
  e = *pp;
  *pp = e->next;
  v = e->value;
  parley_free(e);
  m->count--;
  m->frees++;
  return v;
}

void parley_map_iter_init(struct parley_map_iter *it, struct parley_map *m) {
  it->map = m;
  it->slot = 0;
  it->cur = NULL;
  it->next = NULL;
}

struct parley_map_entry *parley_map_iter_next(struct parley_map_iter *it) {
  struct parley_map *m = it->map;
  if (it->next) {
    it->cur = it->next;
    it->next = it->cur->next;
    return it->cur;
  }
  while (it->slot < m->nslots) {
    struct parley_map_entry *e = m->slots[it->slot++];
    if (e) {
      it->cur = e;
      it->next = e->next;
      return e;
    }
  }
  it->cur = NULL;
  return NULL;
}

void parley_map_iter_remove(struct parley_map_iter *it) {
  struct parley_map_entry *e = it->cur;
  if (e == NULL)
    return;
  parley_map_del(it->map, e->key, e->klen);
  it->cur = NULL;
}
