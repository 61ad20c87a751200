/*
 * registry.c — the registry state machine (registry.h): peers and topic
 * subscriptions, changed only by parley_registry_apply, plus the command
 * codec and the canonical snapshot.  No clock, no I/O, no libuv.
 *
 * Data layout.  Two seeded hash maps give O(1) lookups: peers (key ->
 * struct peer) and topics (name -> struct topic).  Each subscription is
 * recorded twice, as a pointer in two sorted arrays: the peer's topics
 * (sorted by name, at most max_subs_per_peer entries) and the topic's
 * subscribers (sorted by key).  A subscription therefore costs 16 bytes
 * plus array slack, membership tests are binary searches, and walks over
 * one peer's topics or one topic's subscribers come out sorted without
 * allocating.  Inserting into a topic's array is a memmove of up to the
 * topic's size (tens of microseconds for a 100 000-subscriber topic).
 *
 * Determinism.  Hash-map iteration order depends on the map seed (random
 * per registry, so peers cannot aim collisions) and on insertion history.
 * It never reaches anything observable: every walk over a map is sorted
 * first (peers by key bytes, topics by name bytes), and so is the snapshot.
 */
#include "index/registry.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "core/map.h"
#include "core/util.h"
#include "index/registry_int.h"

struct topic;

struct peer {
  struct parley_reg_peer pub; /* pub.nsubs = entries in subs */
  struct topic **subs;        /* sorted by name; array owned, topics not */
  uint32_t subs_cap;
};

struct topic {
  struct peer **subs; /* subscribers sorted by key; array owned */
  uint32_t nsubs;
  uint32_t subs_cap;
  size_t len;
  char name[]; /* len bytes and a NUL */
};

struct parley_registry {
  struct parley_map peers;  /* key -> struct peer * (owned) */
  struct parley_map topics; /* name -> struct topic * (owned) */
  struct parley_reg_observer obs;
  uint32_t max_subs;
  uint32_t max_peers; /* 0 = unlimited */
  uint32_t max_topic;
  uint64_t seed;
};

/* Smallest encoding of one snapshot peer: key, str8 addr (>= 1 byte),
 * str8 name, two u64, u32 topic count. */
#define SNAP_PEER_MIN (32u + 2u + 1u + 8u + 8u + 4u)

/* Byte order helpers --------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v) {
  put_u32(p, (uint32_t)(v >> 32));
  put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static uint64_t get_u64(const uint8_t *p) {
  return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* The int64 whose two's-complement bits are v, without relying on the
 * implementation-defined unsigned-to-signed conversion. */
static int64_t to_i64(uint64_t v) {
  return v <= INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

/* Validation ------------------------------------------------------------- */

/* Length of a NUL-terminated string stored in a char[cap]; PARLEY_EINVAL if
 * the array holds no NUL. */
static int field_len(const char *s, size_t cap, size_t *len) {
  const char *nul = memchr(s, '\0', cap);
  if (nul == NULL)
    return PARLEY_EINVAL;
  *len = (size_t)(nul - s);
  return PARLEY_OK;
}

/* An advertised address: 1..PARLEY_MAX_ADDR bytes of printable ASCII
 * without spaces, "HOST:PORT" with a non-zero port.  s is NUL-terminated. */
static int addr_valid(const char *s, size_t len) {
  char host[PARLEY_MAX_ADDR + 1];
  uint16_t port;

  if (len == 0 || len > PARLEY_MAX_ADDR)
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
      return 0;
  if (parley_parse_hostport(s, host, sizeof host, &port) < 0 || port == 0)
    return 0;
  return 1;
}

/* A display name: 0..PARLEY_MAX_NAME bytes of UTF-8 without control
 * characters (C0, DEL, C1); spaces are fine. */
static int name_valid(const char *s, size_t len) {
  const uint8_t *u = (const uint8_t *)s;

  if (len > PARLEY_MAX_NAME || !parley_utf8_valid(u, len))
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (u[i] < 0x20 || u[i] == 0x7f)
      return 0;
    /* U+0080..U+009F are encoded as C2 80..C2 9F. */
    if (u[i] == 0xc2 && i + 1 < len && u[i + 1] < 0xa0)
      return 0;
  }
  return 1;
}

/* Sorted arrays ---------------------------------------------------------- */

/* Grows an array of pointers to hold need entries (capacity doubles, first
 * min_cap).  Returns the (possibly moved) array, or NULL on failure with
 * arr untouched.  *cap is updated only on success. */
static void *reserve(void *arr, uint32_t *cap, uint32_t need, uint32_t min_cap,
                     size_t elem) {
  uint32_t n;
  void *p;

  if (need <= *cap)
    return arr;
  n = *cap ? *cap : min_cap;
  while (n < need)
    n = n > UINT32_MAX / 2 ? need : n * 2;
  p = parley_realloc(arr, (size_t)n * elem);
  if (p == NULL)
    return NULL;
  *cap = n;
  return p;
}

/* Gives memory back once an array is at most a quarter full.  A failed
 * shrink keeps the old array, which is still correct. */
static void *shrink(void *arr, uint32_t *cap, uint32_t used, uint32_t min_cap,
                    size_t elem) {
  uint32_t n;
  void *p;

  if (used == 0) {
    parley_free(arr);
    *cap = 0;
    return NULL;
  }
  if (*cap <= min_cap || used > *cap / 4)
    return arr;
  n = *cap / 2;
  p = parley_realloc(arr, (size_t)n * elem);
  if (p == NULL)
    return arr;
  *cap = n;
  return p;
}

/* Index of the first subscriber of t whose key is >= pk; *found tells
 * whether it equals pk. */
static uint32_t topic_pos(const struct topic *t, const uint8_t *pk,
                          int *found) {
  uint32_t lo = 0, hi = t->nsubs;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (memcmp(t->subs[mid]->pub.pk, pk, 32) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < t->nsubs && memcmp(t->subs[lo]->pub.pk, pk, 32) == 0;
  return lo;
}

/* Index of the first topic of p whose name is >= name. */
static uint32_t peer_pos(const struct peer *p, const char *name, int *found) {
  uint32_t lo = 0, hi = p->pub.nsubs;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (strcmp(p->subs[mid]->name, name) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < p->pub.nsubs && strcmp(p->subs[lo]->name, name) == 0;
  return lo;
}

/* Object lifetime ---------------------------------------------------------- */

static struct peer *find_peer(const struct parley_registry *r,
                              const uint8_t *pk) {
  return parley_map_get(&r->peers, pk, 32);
}

static struct topic *find_topic(const struct parley_registry *r,
                                const char *name, size_t len) {
  return parley_map_get(&r->topics, name, len);
}

/* Creates an empty topic and indexes it.  NULL on allocation failure. */
static struct topic *topic_create(struct parley_registry *r, const char *name,
                                  size_t len) {
  struct topic *t = parley_malloc(sizeof *t + len + 1);
  if (t == NULL)
    return NULL;
  t->subs = NULL;
  t->nsubs = 0;
  t->subs_cap = 0;
  t->len = len;
  memcpy(t->name, name, len);
  t->name[len] = '\0';
  if (parley_map_put(&r->topics, t->name, len, t, NULL) < 0) {
    parley_free(t);
    return NULL;
  }
  return t;
}

/* Unindexes and frees a topic (its subscriber array must be empty). */
static void topic_destroy(struct parley_registry *r, struct topic *t) {
  parley_map_del(&r->topics, t->name, t->len);
  parley_free(t->subs);
  parley_free(t);
}

/* Frees every peer and topic; the maps stay initialised and empty. */
static void clear_state(struct parley_registry *r) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley_map_iter_init(&it, &r->peers);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct peer *p = e->value;
    parley_free(p->subs);
    parley_free(p);
  }
  parley_map_iter_init(&it, &r->topics);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct topic *t = e->value;
    parley_free(t->subs);
    parley_free(t);
  }
  parley_map_close(&r->peers);
  parley_map_close(&r->topics);
  parley_map_init(&r->peers, r->seed);
  parley_map_init(&r->topics, r->seed ^ 0x9e3779b97f4a7c15ull);
}

/* Lifecycle ---------------------------------------------------------------- */

int parley_registry_new(const struct parley_reg_limits *lim,
                        struct parley_registry **out) {
  struct parley_registry *r;

  *out = NULL;
  if (lim != NULL && lim->max_topic_len > PARLEY_MAX_TOPIC)
    return PARLEY_EINVAL;
  r = parley_calloc(1, sizeof *r);
  if (r == NULL)
    return PARLEY_ENOMEM;
  r->max_subs = lim && lim->max_subs_per_peer ? lim->max_subs_per_peer
                                              : PARLEY_DEFAULT_MAX_SUBS;
  r->max_peers = lim ? lim->max_peers : 0;
  r->max_topic =
      lim && lim->max_topic_len ? lim->max_topic_len : PARLEY_DEFAULT_MAX_TOPIC;
  /* A random seed keeps peers from aiming hash collisions at us; it is
   * never observable because nothing walks a map unsorted. */
  randombytes_buf(&r->seed, sizeof r->seed);
  parley_map_init(&r->peers, r->seed);
  parley_map_init(&r->topics, r->seed ^ 0x9e3779b97f4a7c15ull);
  *out = r;
  return PARLEY_OK;
}

void parley_registry_free(struct parley_registry *r) {
  if (r == NULL)
    return;
  clear_state(r);
  parley_map_close(&r->peers);
  parley_map_close(&r->topics);
  parley_free(r);
}

void parley_registry_set_observer(struct parley_registry *r,
                                  const struct parley_reg_observer *obs) {
  if (obs == NULL)
    memset(&r->obs, 0, sizeof r->obs);
  else
    r->obs = *obs;
}

static void emit(const struct parley_registry *r, int kind,
                 const struct peer *p, const char *topic) {
  struct parley_reg_change ch;
  if (r->obs.on_change == NULL)
    return;
  ch.kind = kind;
  ch.peer = &p->pub;
  ch.topic = topic;
  r->obs.on_change(r->obs.ctx, &ch);
}

/* Check and apply ---------------------------------------------------------- */

/* What check() found, so apply() need not look things up twice. */
struct verdict {
  struct peer *peer;   /* the command's peer, if registered */
  struct topic *topic; /* SUBSCRIBE/UNSUBSCRIBE: the topic, if it exists */
  size_t topic_len;
  size_t addr_len, name_len; /* REGISTER */
  uint32_t pos;              /* position of the peer in topic->subs */
  int member;                /* the peer subscribes to the topic */
};

static int verify(const struct parley_registry *r,
                  const struct parley_reg_cmd *c, struct verdict *v) {
  memset(v, 0, sizeof *v);
  switch (c->type) {
  case PARLEY_REG_REGISTER:
    if (field_len(c->addr, sizeof c->addr, &v->addr_len) < 0 ||
        field_len(c->name, sizeof c->name, &v->name_len) < 0 ||
        !addr_valid(c->addr, v->addr_len) || !name_valid(c->name, v->name_len))
      return PARLEY_EINVAL;
    v->peer = find_peer(r, c->pk);
    if (v->peer == NULL && r->max_peers != 0 && r->peers.count >= r->max_peers)
      return PARLEY_ELIMIT;
    return PARLEY_OK;
  case PARLEY_REG_EXPIRE:
    v->peer = find_peer(r, c->pk);
    return PARLEY_OK;
  case PARLEY_REG_SUBSCRIBE:
  case PARLEY_REG_UNSUBSCRIBE:
    if (field_len(c->topic, sizeof c->topic, &v->topic_len) < 0 ||
        !parley_topic_valid(c->topic, v->topic_len, r->max_topic))
      return PARLEY_EINVAL;
    v->peer = find_peer(r, c->pk);
    if (v->peer == NULL)
      return c->type == PARLEY_REG_SUBSCRIBE ? PARLEY_EUNKNOWNPEER : PARLEY_OK;
    v->topic = find_topic(r, c->topic, v->topic_len);
    if (v->topic != NULL)
      v->pos = topic_pos(v->topic, c->pk, &v->member);
    if (c->type == PARLEY_REG_SUBSCRIBE && !v->member &&
        v->peer->pub.nsubs >= r->max_subs)
      return PARLEY_ELIMIT;
    return PARLEY_OK;
  default:
    return PARLEY_EINVAL;
  }
}

int parley_registry_check(const struct parley_registry *r,
                          const struct parley_reg_cmd *c) {
  struct verdict v;
  return verify(r, c, &v);
}

/* Copies the command's addr and name (lengths checked by verify()). */
static void set_addr_name(struct peer *p, const struct parley_reg_cmd *c,
                          const struct verdict *v) {
  memcpy(p->pub.addr, c->addr, v->addr_len + 1);
  memcpy(p->pub.name, c->name, v->name_len + 1);
}

static int do_register(struct parley_registry *r,
                       const struct parley_reg_cmd *c,
                       const struct verdict *v) {
  struct peer *p = v->peer;
  int changed;

  if (p != NULL) {
    changed =
        strcmp(p->pub.addr, c->addr) != 0 || strcmp(p->pub.name, c->name) != 0;
    set_addr_name(p, c, v);
    p->pub.updated_ms = c->ts_ms;
    if (changed)
      emit(r, PARLEY_REG_PEER_UP, p, NULL);
    return PARLEY_OK;
  }
  p = parley_calloc(1, sizeof *p);
  if (p == NULL)
    return PARLEY_ENOMEM;
  memcpy(p->pub.pk, c->pk, 32);
  set_addr_name(p, c, v);
  p->pub.registered_ms = c->ts_ms;
  p->pub.updated_ms = c->ts_ms;
  if (parley_map_put(&r->peers, p->pub.pk, 32, p, NULL) < 0) {
    parley_free(p);
    return PARLEY_ENOMEM;
  }
  emit(r, PARLEY_REG_PEER_UP, p, NULL);
  return PARLEY_OK;
}

/* Removes p from t->subs at pos (without touching p->subs). */
static void topic_remove_at(struct topic *t, uint32_t pos) {
  memmove(&t->subs[pos], &t->subs[pos + 1],
          (size_t)(t->nsubs - pos - 1) * sizeof *t->subs);
  t->nsubs--;
  t->subs = shrink(t->subs, &t->subs_cap, t->nsubs, 4, sizeof *t->subs);
}

static int do_expire(struct parley_registry *r, struct peer *p) {
  struct topic **base;
  uint32_t n;

  if (p == NULL)
    return PARLEY_OK;
  base = p->subs;
  n = p->pub.nsubs;
  /* SUB_DEL for each topic in name order.  During each event the peer's
   * view (subs, nsubs) already lacks the topics reported so far. */
  for (uint32_t i = 0; i < n; i++) {
    struct topic *t = base[i];
    uint32_t pos;
    int found;

    pos = topic_pos(t, p->pub.pk, &found);
    if (found)
      topic_remove_at(t, pos);
    p->subs = base + i + 1;
    p->pub.nsubs = n - i - 1;
    emit(r, PARLEY_REG_SUB_DEL, p, t->name);
    if (t->nsubs == 0)
      topic_destroy(r, t);
  }
  p->subs = base;
  parley_map_del(&r->peers, p->pub.pk, 32);
  emit(r, PARLEY_REG_PEER_DOWN, p, NULL);
  parley_free(p->subs);
  parley_free(p);
  return PARLEY_OK;
}

static int do_subscribe(struct parley_registry *r,
                        const struct parley_reg_cmd *c,
                        const struct verdict *v) {
  struct peer *p = v->peer;
  struct topic *t = v->topic;
  uint32_t tpos = v->pos, ppos;
  int created = 0, found;
  void *a;

  if (v->member)
    return PARLEY_OK;
  /* Allocate everything first so that a failure leaves no trace. */
  a = reserve(p->subs, &p->subs_cap, p->pub.nsubs + 1, 4, sizeof *p->subs);
  if (a == NULL)
    return PARLEY_ENOMEM;
  p->subs = a;
  if (t == NULL) {
    t = topic_create(r, c->topic, v->topic_len);
    if (t == NULL)
      return PARLEY_ENOMEM;
    created = 1;
    tpos = 0;
  }
  if (t->nsubs == UINT32_MAX)
    return PARLEY_ELIMIT; /* unreachable with 32-bit peer counts */
  a = reserve(t->subs, &t->subs_cap, t->nsubs + 1, 4, sizeof *t->subs);
  if (a == NULL) {
    if (created)
      topic_destroy(r, t);
    return PARLEY_ENOMEM;
  }
  t->subs = a;
  memmove(&t->subs[tpos + 1], &t->subs[tpos],
          (size_t)(t->nsubs - tpos) * sizeof *t->subs);
  t->subs[tpos] = p;
  t->nsubs++;
  ppos = peer_pos(p, t->name, &found);
  memmove(&p->subs[ppos + 1], &p->subs[ppos],
          (size_t)(p->pub.nsubs - ppos) * sizeof *p->subs);
  p->subs[ppos] = t;
  p->pub.nsubs++;
  emit(r, PARLEY_REG_SUB_ADD, p, t->name);
  return PARLEY_OK;
}

static int do_unsubscribe(struct parley_registry *r, const struct verdict *v) {
  struct peer *p = v->peer;
  struct topic *t = v->topic;
  uint32_t ppos;
  int found;

  if (!v->member)
    return PARLEY_OK;
  topic_remove_at(t, v->pos);
  ppos = peer_pos(p, t->name, &found);
  if (found) {
    memmove(&p->subs[ppos], &p->subs[ppos + 1],
            (size_t)(p->pub.nsubs - ppos - 1) * sizeof *p->subs);
    p->pub.nsubs--;
    p->subs = shrink(p->subs, &p->subs_cap, p->pub.nsubs, 4, sizeof *p->subs);
  }
  emit(r, PARLEY_REG_SUB_DEL, p, t->name);
  if (t->nsubs == 0)
    topic_destroy(r, t);
  return PARLEY_OK;
}

int parley_registry_apply(struct parley_registry *r,
                          const struct parley_reg_cmd *c) {
  struct verdict v;
  int rc = verify(r, c, &v);

  if (rc < 0)
    return rc;
  switch (c->type) {
  case PARLEY_REG_REGISTER:
    return do_register(r, c, &v);
  case PARLEY_REG_EXPIRE:
    return do_expire(r, v.peer);
  case PARLEY_REG_SUBSCRIBE:
    return do_subscribe(r, c, &v);
  default:
    return do_unsubscribe(r, &v);
  }
}

/* Sorted walks ------------------------------------------------------------- */

static int cmp_peer(const void *a, const void *b) {
  const struct peer *pa = *(const struct peer *const *)a;
  const struct peer *pb = *(const struct peer *const *)b;
  return memcmp(pa->pub.pk, pb->pub.pk, 32);
}

static int cmp_topic(const void *a, const void *b) {
  const struct topic *ta = *(const struct topic *const *)a;
  const struct topic *tb = *(const struct topic *const *)b;
  return strcmp(ta->name, tb->name);
}

/* OUT: *out gets the map's values sorted with cmp (caller frees; NULL when
 * the map is empty). */
static int sorted_values(const struct parley_map *m,
                         int (*cmp)(const void *, const void *), void ***out) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  void **v;
  size_t n = 0;

  *out = NULL;
  if (m->count == 0)
    return PARLEY_OK;
  v = parley_calloc(m->count, sizeof *v);
  if (v == NULL)
    return PARLEY_ENOMEM;
  /* The iterator API takes a mutable map but walking does not modify it. */
  parley_map_iter_init(&it, (struct parley_map *)m);
  while ((e = parley_map_iter_next(&it)) != NULL && n < m->count)
    v[n++] = e->value;
  qsort(v, n, sizeof *v, cmp);
  *out = v;
  return PARLEY_OK;
}

const struct parley_reg_peer *
parley_registry_peer(const struct parley_registry *r, const uint8_t pk[32]) {
  const struct peer *p = find_peer(r, pk);
  return p ? &p->pub : NULL;
}

size_t parley_registry_peer_count(const struct parley_registry *r) {
  return r->peers.count;
}

size_t parley_registry_topic_count(const struct parley_registry *r) {
  return r->topics.count;
}

int parley_registry_foreach_peer(const struct parley_registry *r,
                                 int (*cb)(void *ctx,
                                           const struct parley_reg_peer *p),
                                 void *ctx) {
  void **v;
  size_t n = r->peers.count;
  int rc = sorted_values(&r->peers, cmp_peer, &v);

  if (rc < 0)
    return rc;
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = cb(ctx, &((struct peer *)v[i])->pub);
  parley_free(v);
  return rc;
}

int parley_registry_foreach_subscriber(
    const struct parley_registry *r, const char *topic,
    int (*cb)(void *ctx, const struct parley_reg_peer *p), void *ctx) {
  const struct topic *t = find_topic(r, topic, strlen(topic));
  int rc = 0;

  if (t == NULL)
    return 0;
  for (uint32_t i = 0; i < t->nsubs && rc == 0; i++)
    rc = cb(ctx, &t->subs[i]->pub);
  return rc;
}

int parley_registry_foreach_topic(const struct parley_registry *r,
                                  int (*cb)(void *ctx, const char *topic,
                                            uint32_t subscribers),
                                  void *ctx) {
  void **v;
  size_t n = r->topics.count;
  int rc = sorted_values(&r->topics, cmp_topic, &v);

  if (rc < 0)
    return rc;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const struct topic *t = v[i];
    rc = cb(ctx, t->name, t->nsubs);
  }
  parley_free(v);
  return rc;
}

int parley_registry_foreach_sub_of(const struct parley_registry *r,
                                   const uint8_t pk[32],
                                   int (*cb)(void *ctx, const char *topic),
                                   void *ctx) {
  const struct peer *p = find_peer(r, pk);
  int rc = 0;

  if (p == NULL)
    return 0;
  for (uint32_t i = 0; i < p->pub.nsubs && rc == 0; i++)
    rc = cb(ctx, p->subs[i]->name);
  return rc;
}

/* Snapshot -------------------------------------------------------------------
 *
 *   "PRG1"  u32 peer count
 *   per peer, in ascending key order:
 *     key (32)  str8 addr  str8 name  u64 registered_ms  u64 updated_ms
 *     u32 topic count  str8 topic x count (ascending name order)
 *
 * Big-endian; timestamps are the two's-complement bits of the int64.
 * Restore accepts exactly the canonical form (strictly ascending keys and
 * names), so snapshot(restore(b)) == b whenever restore(b) succeeds.
 */

static int snap_peer(struct parley_buf *out, const struct peer *p) {
  uint8_t tmp[32 + 1 + PARLEY_MAX_ADDR + 1 + PARLEY_MAX_NAME + 8 + 8 + 4];
  size_t n = 0, la = strlen(p->pub.addr), ln = strlen(p->pub.name);
  int rc;

  memcpy(tmp, p->pub.pk, 32);
  n = 32;
  tmp[n++] = (uint8_t)la;
  memcpy(tmp + n, p->pub.addr, la);
  n += la;
  tmp[n++] = (uint8_t)ln;
  memcpy(tmp + n, p->pub.name, ln);
  n += ln;
  put_u64(tmp + n, (uint64_t)p->pub.registered_ms);
  n += 8;
  put_u64(tmp + n, (uint64_t)p->pub.updated_ms);
  n += 8;
  put_u32(tmp + n, p->pub.nsubs);
  n += 4;
  rc = parley_buf_append(out, tmp, n);
  for (uint32_t i = 0; i < p->pub.nsubs && rc == 0; i++) {
    const struct topic *t = p->subs[i];
    uint8_t l = (uint8_t)t->len;
    rc = parley_buf_append(out, &l, 1);
    if (rc == 0)
      rc = parley_buf_append(out, t->name, t->len);
  }
  return rc;
}

int parley_registry_snapshot(const struct parley_registry *r,
                             struct parley_buf *out) {
  uint8_t hdr[PARLEY__REG_SNAP_HDR];
  size_t start = out->len, n = r->peers.count;
  void **v;
  int rc;

  if (n > UINT32_MAX)
    return PARLEY_ETOOBIG;
  rc = sorted_values(&r->peers, cmp_peer, &v);
  if (rc < 0)
    return rc;
  memcpy(hdr, PARLEY__REG_SNAP_MAGIC, 4);
  put_u32(hdr + 4, (uint32_t)n);
  rc = parley_buf_append(out, hdr, sizeof hdr);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = snap_peer(out, v[i]);
  parley_free(v);
  if (rc < 0)
    out->len = start;
  return rc;
}

/* A bounds-checked reader over the snapshot bytes. */
struct reader {
  const uint8_t *p;
  size_t len, pos;
};

static int rd_bytes(struct reader *rd, size_t n, const uint8_t **out) {
  if (rd->len - rd->pos < n)
    return PARLEY_EPROTO;
  *out = rd->p + rd->pos;
  rd->pos += n;
  return PARLEY_OK;
}

/* Reads a str8 of at most max bytes into dst (NUL-terminated). */
static int rd_str8(struct reader *rd, size_t max, char *dst, size_t *len) {
  const uint8_t *s;
  if (rd_bytes(rd, 1, &s) < 0 || s[0] > max)
    return PARLEY_EPROTO;
  *len = s[0];
  if (rd_bytes(rd, *len, &s) < 0)
    return PARLEY_EPROTO;
  memcpy(dst, s, *len);
  dst[*len] = '\0';
  return PARLEY_OK;
}

/* Byte order of two names, shorter first on a common prefix. */
static int name_cmp(const char *a, size_t la, const char *b, size_t lb) {
  int c = memcmp(a, b, la < lb ? la : lb);
  if (c != 0)
    return c;
  return la < lb ? -1 : la > lb;
}

static int restore_topics(struct parley_registry *r, struct reader *rd,
                          struct peer *p, uint32_t count) {
  char name[PARLEY_MAX_TOPIC + 1], prev[PARLEY_MAX_TOPIC + 1];
  size_t len, plen = 0;

  for (uint32_t i = 0; i < count; i++) {
    struct topic *t;
    void *a;

    if (rd_str8(rd, r->max_topic, name, &len) < 0 ||
        !parley_topic_valid(name, len, r->max_topic))
      return PARLEY_EPROTO;
    if (i > 0 && name_cmp(prev, plen, name, len) >= 0)
      return PARLEY_EPROTO; /* unsorted or duplicate */
    memcpy(prev, name, len);
    plen = len;
    t = find_topic(r, name, len);
    if (t == NULL && (t = topic_create(r, name, len)) == NULL)
      return PARLEY_ENOMEM;
    /* Peers arrive in ascending key order, so p sorts last. */
    a = reserve(t->subs, &t->subs_cap, t->nsubs + 1, 4, sizeof *t->subs);
    if (a == NULL)
      return PARLEY_ENOMEM;
    t->subs = a;
    t->subs[t->nsubs++] = p;
    p->subs[p->pub.nsubs++] = t;
  }
  return PARLEY_OK;
}

static int restore_into(struct parley_registry *r, const uint8_t *buf,
                        size_t len) {
  struct reader rd = {buf, len, 0};
  const uint8_t *b, *prev = NULL;
  uint32_t count;
  int rc;

  if (len < PARLEY__REG_SNAP_HDR || memcmp(buf, PARLEY__REG_SNAP_MAGIC, 4) != 0)
    return PARLEY_EPROTO;
  count = get_u32(buf + 4);
  rd.pos = PARLEY__REG_SNAP_HDR;
  /* Every count is checked against the bytes left before anything is
   * allocated for it, so memory stays proportional to the input. */
  if (count > (len - rd.pos) / SNAP_PEER_MIN ||
      (r->max_peers != 0 && count > r->max_peers))
    return PARLEY_EPROTO;
  for (uint32_t i = 0; i < count; i++) {
    struct peer *p;
    char addr[PARLEY_MAX_ADDR + 1], name[PARLEY_MAX_NAME + 1];
    size_t la, ln;
    uint32_t nt;

    if (rd_bytes(&rd, 32, &b) < 0 || (prev && memcmp(prev, b, 32) >= 0))
      return PARLEY_EPROTO; /* truncated, unsorted or duplicate */
    prev = b;
    if (rd_str8(&rd, PARLEY_MAX_ADDR, addr, &la) < 0 || !addr_valid(addr, la) ||
        rd_str8(&rd, PARLEY_MAX_NAME, name, &ln) < 0 || !name_valid(name, ln))
      return PARLEY_EPROTO;
    p = parley_calloc(1, sizeof *p);
    if (p == NULL)
      return PARLEY_ENOMEM;
    memcpy(p->pub.pk, b, 32);
    memcpy(p->pub.addr, addr, la + 1);
    memcpy(p->pub.name, name, ln + 1);
    if (parley_map_put(&r->peers, p->pub.pk, 32, p, NULL) < 0) {
      parley_free(p);
      return PARLEY_ENOMEM;
    }
    if (rd_bytes(&rd, 20, &b) < 0)
      return PARLEY_EPROTO;
    p->pub.registered_ms = to_i64(get_u64(b));
    p->pub.updated_ms = to_i64(get_u64(b + 8));
    nt = get_u32(b + 16);
    /* Each topic takes at least 2 bytes (str8 of a non-empty name). */
    if (nt > r->max_subs || nt > (len - rd.pos) / 2)
      return PARLEY_EPROTO;
    if (nt > 0) {
      p->subs = parley_calloc(nt, sizeof *p->subs);
      if (p->subs == NULL)
        return PARLEY_ENOMEM;
      p->subs_cap = nt;
    }
    rc = restore_topics(r, &rd, p, nt);
    if (rc < 0)
      return rc;
  }
  return rd.pos == len ? PARLEY_OK : PARLEY_EPROTO;
}

int parley_registry_restore(struct parley_registry *r, const uint8_t *buf,
                            size_t len) {
  int rc;

  clear_state(r);
  if (buf == NULL)
    return PARLEY_EPROTO;
  rc = restore_into(r, buf, len);
  if (rc < 0)
    clear_state(r);
  return rc;
}

/* Command codec ---------------------------------------------------------------
 *
 *   u8 type  key pk (32)  u64 ts_ms  str8 addr  str8 name  str8 topic
 *
 * 44..459 bytes, big-endian, all fields always present (empty strings for
 * the ones a type does not use).  The codec checks only the framing: type
 * in 1..4, string lengths within their PARLEY_MAX_* caps, no NUL inside a
 * string, no trailing bytes.  What a command means is checked by
 * parley_registry_check/apply.
 */

int parley_reg_cmd_encode(const struct parley_reg_cmd *c, uint8_t *buf,
                          size_t cap, size_t *written) {
  size_t la, ln, lt, need, n;

  if (c->type < PARLEY_REG_REGISTER || c->type > PARLEY_REG_UNSUBSCRIBE ||
      field_len(c->addr, sizeof c->addr, &la) < 0 ||
      field_len(c->name, sizeof c->name, &ln) < 0 ||
      field_len(c->topic, sizeof c->topic, &lt) < 0)
    return PARLEY_EINVAL;
  need = PARLEY__REG_CMD_FIXED + la + ln + lt;
  if (buf == NULL || cap < need) {
    *written = need;
    return PARLEY_ETOOBIG;
  }
  buf[0] = c->type;
  memcpy(buf + 1, c->pk, 32);
  put_u64(buf + 33, (uint64_t)c->ts_ms);
  n = 41;
  buf[n++] = (uint8_t)la;
  memcpy(buf + n, c->addr, la);
  n += la;
  buf[n++] = (uint8_t)ln;
  memcpy(buf + n, c->name, ln);
  n += ln;
  buf[n++] = (uint8_t)lt;
  memcpy(buf + n, c->topic, lt);
  n += lt;
  *written = n;
  return PARLEY_OK;
}

static int dec_str8(struct reader *rd, size_t max, char *dst) {
  size_t len;
  if (rd_str8(rd, max, dst, &len) < 0 || memchr(dst, '\0', len) != NULL)
    return PARLEY_EPROTO;
  return PARLEY_OK;
}

int parley_reg_cmd_decode(const uint8_t *buf, size_t len,
                          struct parley_reg_cmd *out) {
  struct reader rd = {buf, len, 0};
  const uint8_t *b;

  memset(out, 0, sizeof *out);
  if (buf == NULL || len < PARLEY__REG_CMD_MIN || len > PARLEY__REG_CMD_MAX)
    return PARLEY_EPROTO;
  if (rd_bytes(&rd, 41, &b) < 0 || b[0] < PARLEY_REG_REGISTER ||
      b[0] > PARLEY_REG_UNSUBSCRIBE)
    goto fail;
  out->type = b[0];
  memcpy(out->pk, b + 1, 32);
  out->ts_ms = to_i64(get_u64(b + 33));
  if (dec_str8(&rd, PARLEY_MAX_ADDR, out->addr) < 0 ||
      dec_str8(&rd, PARLEY_MAX_NAME, out->name) < 0 ||
      dec_str8(&rd, PARLEY_MAX_TOPIC, out->topic) < 0 || rd.pos != len)
    goto fail;
  return PARLEY_OK;
fail:
  memset(out, 0, sizeof *out);
  return PARLEY_EPROTO;
}
