/*
 * registry.c — the registry state machine (registry.h): peers, topic
 * subscriptions and private topics' access lists, changed only by
 * parley_registry_apply, plus the command codec and the canonical
 * snapshot.  No clock, no I/O, no libuv.
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
 *
 * Private topics live in a third map, acls (name -> struct acl), apart
 * from the subscription topics: an access list outlives its last
 * subscriber.  Each acl holds its members sorted by key, and each member
 * at most two key blobs (previous and current epoch), sorted by epoch.
 * Grant statements are judged by crypto/groupkey.h (Ed25519 verification
 * is deterministic, so every replica reaches the same verdict).
 */
#include "index/registry.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "core/map.h"
#include "core/util.h"
#include "crypto/identity.h"
#include "index/registry_int.h"

static_assert(PARLEY_REG_DATA_MAX >= PARLEY_GRANT_MAX_LEN, "grant fits");
static_assert(PARLEY_REG_DATA_MAX <= 3u * 255u, "three u8-length chunks");
static_assert(PARLEY_ACL_GRANT_MAX == PARLEY_GRANT_MAX_LEN, /* NOLINT(misc-redundant-expression) */
              "wire cap");
static_assert(PARLEY_ACL_BLOB_MAX == PARLEY_GROUPKEY_BLOB_MAX, "wire cap");

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

/* A key blob as the owner made it (groupkey.h layout). */
struct blob {
  uint32_t epoch;
  uint16_t len;
  uint8_t bytes[];
};

struct member {
  uint8_t pk[32];
  struct blob *keys[2]; /* ascending epoch, NULLs last; owned */
};

/* A private topic's access list. */
struct acl {
  uint8_t owner[32];
  uint8_t last_sig[64]; /* signature of the last grant applied */
  uint64_t counter;     /* counter of the last grant applied */
  uint32_t epoch;
  uint32_t nmembers, members_cap;
  struct member *members; /* sorted by key, owner included; owned */
  size_t len;
  char name[]; /* len bytes and a NUL */
};

struct parley_registry {
  struct parley_map peers;  /* key -> struct peer * (owned) */
  struct parley_map topics; /* name -> struct topic * (owned) */
  struct parley_map acls;   /* name -> struct acl * (owned) */
  struct parley_reg_observer obs;
  uint32_t max_subs;
  uint32_t max_peers; /* 0 = unlimited */
  uint32_t max_topic;
  uint32_t max_members;
  uint32_t max_private; /* 0 = unlimited */
  uint64_t seed;
};

/* Smallest encoding of one snapshot peer: key, str8 addr (>= 1 byte),
 * str8 name, two u64, u32 topic count. */
#define SNAP_PEER_MIN (32u + 2u + 1u + 8u + 8u + 4u)
/* ... of one access list: str8 topic (>= 1 byte), owner, u32 epoch, u64
 * counter, sig, u32 member count, and one member (key, u8 key count). */
#define SNAP_ACL_FIXED (32u + 4u + 8u + 64u + 4u)
#define SNAP_ACL_MIN (2u + SNAP_ACL_FIXED + 33u)
#define SNAP_MEMBER_MIN 33u
#define SIG_LEN 64u

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

static void init_maps(struct parley_registry *r) {
  parley_map_init(&r->peers, r->seed);
  parley_map_init(&r->topics, r->seed ^ 0x9e3779b97f4a7c15ull);
  parley_map_init(&r->acls, r->seed ^ 0xc2b2ae3d27d4eb4full);
}

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

/* Private topics' access lists ---------------------------------------------- */

static struct acl *find_acl(const struct parley_registry *r, const char *name,
                            size_t len) {
  return parley_map_get(&r->acls, name, len);
}

/* Index of the first member of a whose key is >= pk. */
static uint32_t member_pos(const struct acl *a, const uint8_t *pk,
                           int *found) {
  uint32_t lo = 0, hi = a->nmembers;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (memcmp(a->members[mid].pk, pk, 32) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < a->nmembers && memcmp(a->members[lo].pk, pk, 32) == 0;
  return lo;
}

static int acl_has(const struct acl *a, const uint8_t *pk) {
  int found;
  (void)member_pos(a, pk, &found);
  return found;
}

/* An access list with room for cap members (none yet), indexed under its
 * name.  NULL on allocation failure. */
static struct acl *acl_new(struct parley_registry *r, const char *name,
                           size_t len, uint32_t cap) {
  struct acl *a = parley_calloc(1, sizeof *a + len + 1);
  if (a == NULL)
    return NULL;
  a->members = parley_calloc(cap, sizeof *a->members);
  if (a->members == NULL) {
    parley_free(a);
    return NULL;
  }
  a->members_cap = cap;
  a->len = len;
  memcpy(a->name, name, len);
  a->name[len] = '\0';
  if (parley_map_put(&r->acls, a->name, len, a, NULL) < 0) {
    parley_free(a->members);
    parley_free(a);
    return NULL;
  }
  return a;
}

static void member_free_keys(struct member *m) {
  parley_free(m->keys[0]);
  parley_free(m->keys[1]);
  m->keys[0] = m->keys[1] = NULL;
}

/* Frees an access list that is no longer indexed. */
static void acl_free(struct acl *a) {
  for (uint32_t i = 0; i < a->nmembers; i++)
    member_free_keys(&a->members[i]);
  parley_free(a->members);
  parley_free(a);
}

/* Drops every key blob older than the epoch before a->epoch. */
static void acl_prune_keys(struct acl *a) {
  uint32_t keep = a->epoch - 1; /* epoch >= 2 after a rotation */
  for (uint32_t i = 0; i < a->nmembers; i++) {
    struct member *m = &a->members[i];
    while (m->keys[0] != NULL && m->keys[0]->epoch < keep) {
      parley_free(m->keys[0]);
      m->keys[0] = m->keys[1];
      m->keys[1] = NULL;
    }
  }
}

/* The slot holding m's blob for epoch, or NULL. */
static struct blob **key_slot(struct member *m, uint32_t epoch) {
  for (int i = 0; i < 2; i++)
    if (m->keys[i] != NULL && m->keys[i]->epoch == epoch)
      return &m->keys[i];
  return NULL;
}

/* Frees every peer, topic and access list; the maps stay initialised and
 * empty. */
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
  parley_map_iter_init(&it, &r->acls);
  while ((e = parley_map_iter_next(&it)) != NULL)
    acl_free(e->value);
  parley_map_close(&r->peers);
  parley_map_close(&r->topics);
  parley_map_close(&r->acls);
  init_maps(r);
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
  r->max_members = lim && lim->max_members ? lim->max_members
                                           : PARLEY_REG_DEFAULT_MAX_MEMBERS;
  r->max_private = lim ? lim->max_private : 0;
  /* A random seed keeps peers from aiming hash collisions at us; it is
   * never observable because nothing walks a map unsorted. */
  randombytes_buf(&r->seed, sizeof r->seed);
  init_maps(r);
  *out = r;
  return PARLEY_OK;
}

void parley_registry_free(struct parley_registry *r) {
  if (r == NULL)
    return;
  clear_state(r);
  parley_map_close(&r->peers);
  parley_map_close(&r->topics);
  parley_map_close(&r->acls);
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
  memset(&ch, 0, sizeof ch);
  ch.kind = kind;
  ch.peer = &p->pub;
  ch.topic = topic;
  r->obs.on_change(r->obs.ctx, &ch);
}

/* An event about a private topic's member (member must stay valid during
 * the call: callers pass a copy when the member is going away). */
static void emit_acl(const struct parley_registry *r, int kind,
                     const struct acl *a, const uint8_t *member,
                     uint32_t epoch) {
  struct parley_reg_change ch;
  const struct peer *p;
  if (r->obs.on_change == NULL)
    return;
  p = find_peer(r, member);
  ch.kind = kind;
  ch.peer = p != NULL ? &p->pub : NULL;
  ch.topic = a->name;
  ch.member = member;
  ch.epoch = epoch;
  r->obs.on_change(r->obs.ctx, &ch);
}

/* Check and apply ---------------------------------------------------------- */

/* What check() found, so apply() need not look things up twice. */
struct verdict {
  struct peer *peer;   /* the command's peer, if registered; REVOKE: the
                          revoked member if it subscribes to the topic */
  struct topic *topic; /* SUBSCRIBE/UNSUBSCRIBE/REVOKE: the topic, if any */
  size_t topic_len;
  size_t addr_len, name_len; /* REGISTER */
  uint32_t pos;              /* position of the peer in topic->subs */
  int member;                /* the peer subscribes to the topic */
  /* GRANT and KEY_PUT */
  struct acl *acl;              /* the access list, if the topic has one */
  uint32_t mpos;                /* position of the member in acl->members */
  int mfound;                   /* ... and whether it is there */
  int noop;                     /* the statement was already applied */
  uint32_t epoch;               /* KEY_PUT: the blob's epoch */
  struct parley_grant g;        /* GRANT: the statement */
  struct parley_grant_state st; /* GRANT: the state once it applies */
};

/* A CREATE may not take over a topic that others already use. */
static int others_subscribe(const struct parley_registry *r, const char *name,
                            size_t len, const uint8_t *owner) {
  const struct topic *t = find_topic(r, name, len);
  if (t == NULL || t->nsubs == 0)
    return 0;
  return t->nsubs > 1 || memcmp(t->subs[0]->pub.pk, owner, 32) != 0;
}

static int verify_grant(const struct parley_registry *r,
                        const struct parley_reg_cmd *c, struct verdict *v) {
  struct parley_grant *g = &v->g;
  int rc;

  if (c->data_len > PARLEY_GRANT_MAX_LEN ||
      parley_groupkey_grant_decode(c->data, c->data_len, g) < 0)
    return PARLEY_EINVAL;
  v->topic_len = strlen(g->topic);
  if (!parley_topic_valid(g->topic, v->topic_len, r->max_topic))
    return PARLEY_EINVAL;
  if (memcmp(c->pk, g->owner_pk, 32) != 0)
    return PARLEY_EDENIED;
  v->acl = find_acl(r, g->topic, v->topic_len);
  if (v->acl != NULL) {
    v->mpos = member_pos(v->acl, g->member_pk, &v->mfound);
    /* The last statement again (a retry after a lost answer): one
     * signature verifies for one message, so equal signature, owner and
     * counter mean the same statement. */
    if (g->counter == v->acl->counter &&
        memcmp(g->sig, v->acl->last_sig, SIG_LEN) == 0 &&
        memcmp(g->owner_pk, v->acl->owner, 32) == 0) {
      rc = parley_groupkey_grant_verify(g);
      v->noop = rc == PARLEY_OK;
      return rc;
    }
    v->st.exists = 1;
    memcpy(v->st.owner_pk, v->acl->owner, 32);
    v->st.epoch = v->acl->epoch;
    v->st.counter = v->acl->counter;
  }
  rc = parley_groupkey_grant_apply(&v->st, g, v->mfound);
  if (rc < 0)
    return rc;
  switch (g->action) {
  case PARLEY_GRANT_CREATE:
    if (others_subscribe(r, g->topic, v->topic_len, g->owner_pk))
      return PARLEY_EEXIST;
    if (r->max_private != 0 && r->acls.count >= r->max_private)
      return PARLEY_ELIMIT;
    return PARLEY_OK;
  case PARLEY_GRANT_ADD:
    return v->acl != NULL && v->acl->nmembers >= r->max_members
               ? PARLEY_ELIMIT
               : PARLEY_OK;
  case PARLEY_GRANT_REVOKE:
    v->topic = find_topic(r, g->topic, v->topic_len);
    if (v->topic != NULL)
      v->pos = topic_pos(v->topic, g->member_pk, &v->member);
    if (v->topic != NULL && v->member)
      v->peer = v->topic->subs[v->pos];
    return PARLEY_OK;
  default:
    return PARLEY_OK;
  }
}

/* Checks the owner's KEY_PUT signature: Ed25519 over the label (with its
 * NUL) followed by the blob. */
static int key_put_sig_ok(const uint8_t *owner, const uint8_t *blob,
                          size_t len, const uint8_t *sig) {
  uint8_t msg[sizeof PARLEY_REG_KEY_PUT_LABEL + PARLEY_GROUPKEY_BLOB_MAX];
  memcpy(msg, PARLEY_REG_KEY_PUT_LABEL, sizeof PARLEY_REG_KEY_PUT_LABEL);
  memcpy(msg + sizeof PARLEY_REG_KEY_PUT_LABEL, blob, len);
  return parley_sig_verify(owner, msg, sizeof PARLEY_REG_KEY_PUT_LABEL + len,
                           sig) == PARLEY_OK;
}

static int verify_key_put(const struct parley_registry *r,
                          const struct parley_reg_cmd *c, struct verdict *v) {
  struct parley_groupkey_blob b;
  const uint8_t *blob = c->data + SIG_LEN;
  size_t len = c->data_len > SIG_LEN ? c->data_len - SIG_LEN : 0;
  struct member *m;
  struct blob **slot;
  uint32_t e;

  if (len == 0 || len > PARLEY_GROUPKEY_BLOB_MAX ||
      parley_groupkey_blob_decode(blob, len, &b) < 0)
    return PARLEY_EINVAL;
  v->acl = find_acl(r, b.topic, strlen(b.topic));
  if (v->acl == NULL)
    return PARLEY_ENOTFOUND;
  if (memcmp(c->pk, v->acl->owner, 32) != 0 ||
      memcmp(b.owner_pk, v->acl->owner, 32) != 0)
    return PARLEY_EDENIED;
  if (!key_put_sig_ok(v->acl->owner, blob, len, c->data))
    return PARLEY_ECRYPTO;
  v->mpos = member_pos(v->acl, b.member_pk, &v->mfound);
  if (!v->mfound)
    return PARLEY_EDENIED;
  e = v->acl->epoch;
  if (b.epoch != e && !(e > 1 && b.epoch == e - 1))
    return PARLEY_ERANGE;
  v->epoch = b.epoch;
  m = &v->acl->members[v->mpos];
  slot = key_slot(m, b.epoch);
  v->noop = slot != NULL && (*slot)->len == len &&
            memcmp((*slot)->bytes, blob, len) == 0;
  return PARLEY_OK;
}

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
    if (c->type == PARLEY_REG_SUBSCRIBE) {
      const struct acl *a = find_acl(r, c->topic, v->topic_len);
      if (a != NULL && !acl_has(a, c->pk))
        return PARLEY_EDENIED;
    }
    v->topic = find_topic(r, c->topic, v->topic_len);
    if (v->topic != NULL)
      v->pos = topic_pos(v->topic, c->pk, &v->member);
    if (c->type == PARLEY_REG_SUBSCRIBE && !v->member &&
        v->peer->pub.nsubs >= r->max_subs)
      return PARLEY_ELIMIT;
    return PARLEY_OK;
  case PARLEY_REG_GRANT:
    return verify_grant(r, c, v);
  case PARLEY_REG_KEY_PUT:
    return verify_key_put(r, c, v);
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

/* Removes the subscription of p (at pos in t->subs) to t. */
static void unsub_pair(struct parley_registry *r, struct peer *p,
                       struct topic *t, uint32_t pos) {
  uint32_t ppos;
  int found;

  topic_remove_at(t, pos);
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
}

static int do_unsubscribe(struct parley_registry *r, const struct verdict *v) {
  if (v->member)
    unsub_pair(r, v->peer, v->topic, v->pos);
  return PARLEY_OK;
}

/* CREATE: a new access list whose only member is the owner. */
static struct acl *acl_create(struct parley_registry *r,
                              const struct parley_grant *g, size_t len) {
  struct acl *a = acl_new(r, g->topic, len, 4);
  if (a == NULL)
    return NULL;
  memcpy(a->owner, g->owner_pk, 32);
  memcpy(a->members[0].pk, g->owner_pk, 32);
  a->nmembers = 1;
  return a;
}

static int do_grant(struct parley_registry *r, struct verdict *v) {
  const struct parley_grant *g = &v->g;
  struct acl *a = v->acl;
  void *arr;

  if (v->noop)
    return PARLEY_OK;
  switch (g->action) {
  case PARLEY_GRANT_CREATE:
    a = acl_create(r, g, v->topic_len);
    if (a == NULL)
      return PARLEY_ENOMEM;
    break;
  case PARLEY_GRANT_ADD:
    arr = reserve(a->members, &a->members_cap, a->nmembers + 1, 4,
                  sizeof *a->members);
    if (arr == NULL)
      return PARLEY_ENOMEM;
    a->members = arr;
    memmove(&a->members[v->mpos + 1], &a->members[v->mpos],
            (size_t)(a->nmembers - v->mpos) * sizeof *a->members);
    memset(&a->members[v->mpos], 0, sizeof *a->members);
    memcpy(a->members[v->mpos].pk, g->member_pk, 32);
    a->nmembers++;
    break;
  case PARLEY_GRANT_REVOKE:
    /* Its subscription goes first (SUB_DEL), then the member. */
    if (v->member)
      unsub_pair(r, v->peer, v->topic, v->pos);
    member_free_keys(&a->members[v->mpos]);
    memmove(&a->members[v->mpos], &a->members[v->mpos + 1],
            (size_t)(a->nmembers - v->mpos - 1) * sizeof *a->members);
    a->nmembers--;
    a->members = shrink(a->members, &a->members_cap, a->nmembers, 4,
                        sizeof *a->members);
    break;
  default: /* ROTATE */
    break;
  }
  a->epoch = v->st.epoch;
  a->counter = v->st.counter;
  memcpy(a->last_sig, g->sig, SIG_LEN);
  /* g->member_pk lives in the verdict, so it outlives a revoked member. */
  switch (g->action) {
  case PARLEY_GRANT_CREATE:
    emit_acl(r, PARLEY_REG_ACL_CREATE, a, a->owner, a->epoch);
    break;
  case PARLEY_GRANT_ADD:
    emit_acl(r, PARLEY_REG_MEMBER_ADD, a, g->member_pk, a->epoch);
    break;
  case PARLEY_GRANT_REVOKE:
    acl_prune_keys(a);
    emit_acl(r, PARLEY_REG_MEMBER_DEL, a, g->member_pk, a->epoch);
    break;
  default:
    acl_prune_keys(a);
    emit_acl(r, PARLEY_REG_ACL_ROTATE, a, a->owner, a->epoch);
    break;
  }
  return PARLEY_OK;
}

static int do_key_put(struct parley_registry *r, const struct parley_reg_cmd *c,
                      const struct verdict *v) {
  struct member *m = &v->acl->members[v->mpos];
  size_t len = c->data_len - SIG_LEN;
  struct blob *b, **slot;

  if (v->noop)
    return PARLEY_OK;
  b = parley_malloc(sizeof *b + len);
  if (b == NULL)
    return PARLEY_ENOMEM;
  b->epoch = v->epoch;
  b->len = (uint16_t)len;
  memcpy(b->bytes, c->data + SIG_LEN, len);
  /* Stored epochs are within {epoch - 1, epoch} (pruned at rotation), and
   * so is b's: either its slot exists or a free slot does. */
  slot = key_slot(m, b->epoch);
  if (slot != NULL) {
    parley_free(*slot);
    *slot = b;
  } else if (m->keys[0] == NULL) {
    m->keys[0] = b;
  } else if (m->keys[0]->epoch < b->epoch) {
    m->keys[1] = b;
  } else {
    m->keys[1] = m->keys[0];
    m->keys[0] = b;
  }
  emit_acl(r, PARLEY_REG_MEMBER_KEY, v->acl, m->pk, b->epoch);
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
  case PARLEY_REG_UNSUBSCRIBE:
    return do_unsubscribe(r, &v);
  case PARLEY_REG_GRANT:
    return do_grant(r, &v);
  default:
    return do_key_put(r, c, &v);
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

/* Private topics ------------------------------------------------------------ */

static int cmp_acl(const void *a, const void *b) {
  const struct acl *x = *(const struct acl *const *)a;
  const struct acl *y = *(const struct acl *const *)b;
  return strcmp(x->name, y->name);
}

static const struct acl *acl_of(const struct parley_registry *r,
                                const char *topic) {
  size_t len = strnlen(topic, PARLEY_MAX_TOPIC + 1);
  return len > PARLEY_MAX_TOPIC ? NULL : find_acl(r, topic, len);
}

static void acl_info(const struct acl *a, struct parley_reg_acl *out) {
  memcpy(out->owner, a->owner, 32);
  out->epoch = a->epoch;
  out->counter = a->counter;
  out->members = a->nmembers;
}

int parley_registry_topic_acl(const struct parley_registry *r,
                              const char *topic, struct parley_reg_acl *out) {
  const struct acl *a = acl_of(r, topic);
  memset(out, 0, sizeof *out);
  if (a == NULL)
    return PARLEY_ENOTFOUND;
  acl_info(a, out);
  return PARLEY_OK;
}

size_t parley_registry_acl_count(const struct parley_registry *r) {
  return r->acls.count;
}

int parley_registry_is_member(const struct parley_registry *r,
                              const char *topic, const uint8_t pk[32]) {
  const struct acl *a = acl_of(r, topic);
  return a != NULL && acl_has(a, pk);
}

int parley_registry_may_access(const struct parley_registry *r,
                               const char *topic, const uint8_t pk[32]) {
  const struct acl *a = acl_of(r, topic);
  return a == NULL || acl_has(a, pk);
}

int parley_registry_foreach_member(const struct parley_registry *r,
                                   const char *topic,
                                   int (*cb)(void *ctx, const uint8_t pk[32]),
                                   void *ctx) {
  const struct acl *a = acl_of(r, topic);
  int rc = 0;
  for (uint32_t i = 0; a != NULL && i < a->nmembers && rc == 0; i++)
    rc = cb(ctx, a->members[i].pk);
  return rc;
}

int parley_registry_foreach_acl(const struct parley_registry *r,
                                int (*cb)(void *ctx, const char *topic,
                                          const struct parley_reg_acl *acl),
                                void *ctx) {
  void **v;
  size_t n = r->acls.count;
  int rc = sorted_values(&r->acls, cmp_acl, &v);

  if (rc < 0)
    return rc;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const struct acl *a = v[i];
    struct parley_reg_acl info;
    acl_info(a, &info);
    rc = cb(ctx, a->name, &info);
  }
  parley_free(v);
  return rc;
}

/* The member record of pk on topic, or NULL. */
static const struct member *member_of(const struct parley_registry *r,
                                      const char *topic, const uint8_t *pk) {
  const struct acl *a = acl_of(r, topic);
  uint32_t pos;
  int found;
  if (a == NULL)
    return NULL;
  pos = member_pos(a, pk, &found);
  return found ? &a->members[pos] : NULL;
}

int parley_registry_key_blob(const struct parley_registry *r,
                             const char *topic, uint32_t epoch,
                             const uint8_t member[32], const uint8_t **blob,
                             size_t *len) {
  const struct member *m = member_of(r, topic, member);
  *blob = NULL;
  *len = 0;
  for (int i = 0; m != NULL && i < 2; i++) {
    if (m->keys[i] != NULL && m->keys[i]->epoch == epoch) {
      *blob = m->keys[i]->bytes;
      *len = m->keys[i]->len;
      return PARLEY_OK;
    }
  }
  return PARLEY_ENOTFOUND;
}

int parley_registry_foreach_key(const struct parley_registry *r,
                                const char *topic, const uint8_t member[32],
                                int (*cb)(void *ctx, uint32_t epoch,
                                          const uint8_t *blob, size_t len),
                                void *ctx) {
  const struct member *m = member_of(r, topic, member);
  int rc = 0;
  for (int i = 0; m != NULL && i < 2 && m->keys[i] != NULL && rc == 0; i++)
    rc = cb(ctx, m->keys[i]->epoch, m->keys[i]->bytes, m->keys[i]->len);
  return rc;
}

/* Snapshot -------------------------------------------------------------------
 *
 *   "PRG2"  u32 peer count
 *   per peer, in ascending key order:
 *     key (32)  str8 addr  str8 name  u64 registered_ms  u64 updated_ms
 *     u32 topic count  str8 topic x count (ascending name order)
 *   u32 private topic count
 *   per private topic, in ascending name order:
 *     str8 topic  key owner  u32 epoch  u64 counter  sig last_sig (64)
 *     u32 member count (>= 1, the owner among them)
 *     per member, in ascending key order:
 *       key member  u8 blob count (0..2)
 *       per blob, in ascending epoch order: u16 length, key blob
 *
 * Big-endian; timestamps are the two's-complement bits of the int64.
 * "PRG1" is the same without the private topics (everything from "u32
 * private topic count" on); it is restored, never written.  Restore
 * accepts exactly the canonical form (strictly ascending keys and names),
 * so snapshot(restore(b)) == b whenever restore(b) succeeds on a PRG2 b.
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

static int snap_acl(struct parley_buf *out, const struct acl *a) {
  uint8_t tmp[1 + PARLEY_MAX_TOPIC + SNAP_ACL_FIXED];
  size_t n = 0;
  int rc;

  tmp[n++] = (uint8_t)a->len;
  memcpy(tmp + n, a->name, a->len);
  n += a->len;
  memcpy(tmp + n, a->owner, 32);
  put_u32(tmp + n + 32, a->epoch);
  put_u64(tmp + n + 36, a->counter);
  memcpy(tmp + n + 44, a->last_sig, SIG_LEN);
  put_u32(tmp + n + 108, a->nmembers);
  rc = parley_buf_append(out, tmp, n + SNAP_ACL_FIXED);
  for (uint32_t i = 0; i < a->nmembers && rc == 0; i++) {
    const struct member *m = &a->members[i];
    memcpy(tmp, m->pk, 32);
    tmp[32] = (uint8_t)((m->keys[0] != NULL) + (m->keys[1] != NULL));
    rc = parley_buf_append(out, tmp, 33);
    for (int k = 0; k < 2 && m->keys[k] != NULL && rc == 0; k++) {
      tmp[0] = (uint8_t)(m->keys[k]->len >> 8);
      tmp[1] = (uint8_t)m->keys[k]->len;
      rc = parley_buf_append(out, tmp, 2);
      if (rc == 0)
        rc = parley_buf_append(out, m->keys[k]->bytes, m->keys[k]->len);
    }
  }
  return rc;
}

static int snap_acls(const struct parley_registry *r, struct parley_buf *out) {
  uint8_t cnt[4];
  size_t n = r->acls.count;
  void **v;
  int rc = sorted_values(&r->acls, cmp_acl, &v);

  if (rc < 0)
    return rc;
  put_u32(cnt, (uint32_t)n);
  rc = parley_buf_append(out, cnt, sizeof cnt);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = snap_acl(out, v[i]);
  parley_free(v);
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
  if (rc == 0)
    rc = snap_acls(r, out);
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

/* Reads one member's key blobs; each must be a well-formed blob for this
 * topic, owner and member, of the acl's epoch or the one before, in
 * ascending epoch order. */
static int restore_keys(struct reader *rd, const struct acl *a,
                        struct member *m) {
  const uint8_t *b;
  uint8_t nk;

  if (rd_bytes(rd, 1, &b) < 0 || b[0] > 2)
    return PARLEY_EPROTO;
  nk = b[0];
  for (uint8_t k = 0; k < nk; k++) {
    struct parley_groupkey_blob kb;
    struct blob *x;
    size_t n;

    if (rd_bytes(rd, 2, &b) < 0)
      return PARLEY_EPROTO;
    n = (size_t)b[0] << 8 | b[1];
    if (n > PARLEY_GROUPKEY_BLOB_MAX || rd_bytes(rd, n, &b) < 0 ||
        parley_groupkey_blob_decode(b, n, &kb) < 0 ||
        strcmp(kb.topic, a->name) != 0 ||
        memcmp(kb.owner_pk, a->owner, 32) != 0 ||
        memcmp(kb.member_pk, m->pk, 32) != 0 || kb.epoch > a->epoch ||
        a->epoch - kb.epoch > 1 || (k > 0 && kb.epoch <= m->keys[0]->epoch))
      return PARLEY_EPROTO;
    x = parley_malloc(sizeof *x + n);
    if (x == NULL)
      return PARLEY_ENOMEM;
    x->epoch = kb.epoch;
    x->len = (uint16_t)n;
    memcpy(x->bytes, b, n);
    m->keys[k] = x;
  }
  return PARLEY_OK;
}

/* Reads one access list (after its name) into a new acl named name. */
static int restore_acl(struct parley_registry *r, struct reader *rd,
                       const char *name, size_t len) {
  const uint8_t *b, *prev = NULL;
  const struct topic *t;
  struct acl *a;
  uint32_t nm;
  int rc;

  if (rd_bytes(rd, SNAP_ACL_FIXED, &b) < 0)
    return PARLEY_EPROTO;
  nm = get_u32(b + 108);
  if (get_u32(b + 32) == 0 || get_u64(b + 36) == 0 || nm == 0 ||
      nm > r->max_members || nm > (rd->len - rd->pos) / SNAP_MEMBER_MIN)
    return PARLEY_EPROTO;
  a = acl_new(r, name, len, nm);
  if (a == NULL)
    return PARLEY_ENOMEM;
  memcpy(a->owner, b, 32);
  a->epoch = get_u32(b + 32);
  a->counter = get_u64(b + 36);
  memcpy(a->last_sig, b + 44, SIG_LEN);
  for (uint32_t j = 0; j < nm; j++) {
    if (rd_bytes(rd, 32, &b) < 0 || (prev && memcmp(prev, b, 32) >= 0))
      return PARLEY_EPROTO; /* truncated, unsorted or duplicate */
    prev = b;
    memcpy(a->members[j].pk, b, 32);
    a->nmembers++;
    rc = restore_keys(rd, a, &a->members[j]);
    if (rc < 0)
      return rc;
  }
  if (!acl_has(a, a->owner))
    return PARLEY_EPROTO;
  /* Only members may subscribe to a private topic. */
  t = find_topic(r, name, len);
  for (uint32_t k = 0; t != NULL && k < t->nsubs; k++)
    if (!acl_has(a, t->subs[k]->pub.pk))
      return PARLEY_EPROTO;
  return PARLEY_OK;
}

static int restore_acls(struct parley_registry *r, struct reader *rd) {
  char name[PARLEY_MAX_TOPIC + 1], prev[PARLEY_MAX_TOPIC + 1];
  const uint8_t *b;
  size_t len, plen = 0;
  uint32_t count;
  int rc;

  if (rd_bytes(rd, 4, &b) < 0)
    return PARLEY_EPROTO;
  count = get_u32(b);
  if (count > (rd->len - rd->pos) / SNAP_ACL_MIN ||
      (r->max_private != 0 && count > r->max_private))
    return PARLEY_EPROTO;
  for (uint32_t i = 0; i < count; i++) {
    if (rd_str8(rd, r->max_topic, name, &len) < 0 ||
        !parley_topic_valid(name, len, r->max_topic))
      return PARLEY_EPROTO;
    if (i > 0 && name_cmp(prev, plen, name, len) >= 0)
      return PARLEY_EPROTO; /* unsorted or duplicate */
    memcpy(prev, name, len);
    plen = len;
    rc = restore_acl(r, rd, name, len);
    if (rc < 0)
      return rc;
  }
  return PARLEY_OK;
}

static int restore_into(struct parley_registry *r, const uint8_t *buf,
                        size_t len) {
  struct reader rd = {buf, len, 0};
  const uint8_t *b, *prev = NULL;
  uint32_t count;
  int rc, v1;

  if (len < PARLEY__REG_SNAP_HDR)
    return PARLEY_EPROTO;
  v1 = memcmp(buf, PARLEY__REG_SNAP_MAGIC_V1, 4) == 0;
  if (!v1 && memcmp(buf, PARLEY__REG_SNAP_MAGIC, 4) != 0)
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
  if (!v1 && (rc = restore_acls(r, &rd)) < 0)
    return rc;
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
 *   types 1..4   u8 type  key pk (32)  u64 ts_ms  str8 addr  str8 name
 *                str8 topic                                   (44..459 bytes)
 *   types 5..6   u8 type  key pk (32)  u64 ts_ms  u8 n0  chunk0  u8 n1
 *                chunk1  u8 n2  chunk2                        (45..577 bytes)
 *
 * Big-endian, all fields always present (empty strings for the ones a type
 * does not use).  For GRANT and KEY_PUT, data = chunk0 || chunk1 || chunk2
 * (1..PARLEY_REG_DATA_MAX bytes), cut at 255 and 510: a chunk is non-empty
 * only if the one before holds 255 bytes.  Keeping three u8-length fields
 * for every type means one framing rule finds any command's length (the
 * Raft FSM relies on it, consensus.c entry_cmd_len).  The codec checks only
 * the framing: type in 1..6, string lengths within their PARLEY_MAX_* caps,
 * no NUL inside a string, canonical chunks, no trailing bytes.  What a
 * command means is checked by parley_registry_check/apply.
 */

static int encode_data(const struct parley_reg_cmd *c, uint8_t *buf,
                       size_t cap, size_t *written) {
  size_t n = c->data_len, need = PARLEY__REG_CMD_FIXED + n, pos = 41, off = 0;

  if (n == 0 || n > PARLEY_REG_DATA_MAX)
    return PARLEY_EINVAL;
  if (buf == NULL || cap < need) {
    *written = need;
    return PARLEY_ETOOBIG;
  }
  buf[0] = c->type;
  memcpy(buf + 1, c->pk, 32);
  put_u64(buf + 33, (uint64_t)c->ts_ms);
  for (int i = 0; i < 3; i++) {
    size_t k = n - off < 255 ? n - off : 255;
    buf[pos++] = (uint8_t)k;
    memcpy(buf + pos, c->data + off, k);
    pos += k;
    off += k;
  }
  *written = pos;
  return PARLEY_OK;
}

int parley_reg_cmd_encode(const struct parley_reg_cmd *c, uint8_t *buf,
                          size_t cap, size_t *written) {
  size_t la, ln, lt, need, n;

  if (c->type == PARLEY_REG_GRANT || c->type == PARLEY_REG_KEY_PUT)
    return encode_data(c, buf, cap, written);
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

/* The three canonical chunks of a GRANT or KEY_PUT. */
static int dec_data(struct reader *rd, struct parley_reg_cmd *out) {
  const uint8_t *b;
  size_t n = 0, prev = 255;

  for (int i = 0; i < 3; i++) {
    size_t k;
    if (rd_bytes(rd, 1, &b) < 0)
      return PARLEY_EPROTO;
    k = b[0];
    if ((k > 0 && prev != 255) || n + k > PARLEY_REG_DATA_MAX ||
        rd_bytes(rd, k, &b) < 0)
      return PARLEY_EPROTO;
    memcpy(out->data + n, b, k);
    n += k;
    prev = k;
  }
  if (n == 0)
    return PARLEY_EPROTO;
  out->data_len = (uint16_t)n;
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
      b[0] > PARLEY_REG_KEY_PUT)
    goto fail;
  out->type = b[0];
  memcpy(out->pk, b + 1, 32);
  out->ts_ms = to_i64(get_u64(b + 33));
  if (out->type >= PARLEY_REG_GRANT) {
    if (dec_data(&rd, out) < 0 || rd.pos != len)
      goto fail;
    return PARLEY_OK;
  }
  if (dec_str8(&rd, PARLEY_MAX_ADDR, out->addr) < 0 ||
      dec_str8(&rd, PARLEY_MAX_NAME, out->name) < 0 ||
      dec_str8(&rd, PARLEY_MAX_TOPIC, out->topic) < 0 || rd.pos != len)
    goto fail;
  return PARLEY_OK;
fail:
  memset(out, 0, sizeof *out);
  return PARLEY_EPROTO;
}

/* Builders ----------------------------------------------------------------- */

static void cmd_start(struct parley_reg_cmd *c, uint8_t type,
                      const uint8_t *pk, int64_t ts_ms) {
  memset(c, 0, sizeof *c);
  c->type = type;
  memcpy(c->pk, pk, 32);
  c->ts_ms = ts_ms;
}

int parley_reg_cmd_grant(struct parley_reg_cmd *c, const uint8_t pk[32],
                         int64_t ts_ms, const uint8_t *grant, size_t len) {
  memset(c, 0, sizeof *c);
  if (len == 0 || len > PARLEY_GRANT_MAX_LEN)
    return PARLEY_EINVAL;
  cmd_start(c, PARLEY_REG_GRANT, pk, ts_ms);
  memcpy(c->data, grant, len);
  c->data_len = (uint16_t)len;
  return PARLEY_OK;
}

int parley_reg_cmd_key_put(struct parley_reg_cmd *c, const uint8_t pk[32],
                           int64_t ts_ms, const uint8_t *blob, size_t len,
                           const uint8_t sig[64]) {
  memset(c, 0, sizeof *c);
  if (len == 0 || len > PARLEY_GROUPKEY_BLOB_MAX)
    return PARLEY_EINVAL;
  cmd_start(c, PARLEY_REG_KEY_PUT, pk, ts_ms);
  memcpy(c->data, sig, SIG_LEN);
  memcpy(c->data + SIG_LEN, blob, len);
  c->data_len = (uint16_t)(SIG_LEN + len);
  return PARLEY_OK;
}
