/*
 * registry.c — the registry state machine (registry.h): peers, topic
 * subscriptions and private topics' access lists, changed only by
 * parley_registry_apply, and its queries.  The canonical snapshot is in
 * registry_snap.c, the command codec in registry_cmd.c, and the structs
 * below in registry_int.h.  No clock, no I/O, no libuv.
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
static_assert(PARLEY_ACL_GRANT_MAX == PARLEY_GRANT_MAX_LEN, /* NOLINT(misc-redundant-expression) */
              "wire cap");
static_assert(PARLEY_ACL_BLOB_MAX == PARLEY_GROUPKEY_BLOB_MAX, "wire cap");

/* Validation ------------------------------------------------------------- */

/* Length of a NUL-terminated string stored in a char[cap]; PARLEY_EINVAL if
 * the array holds no NUL. */
int parley__reg_field_len(const char *s, size_t cap, size_t *len) {
  const char *nul = memchr(s, '\0', cap);
  if (nul == NULL)
    return PARLEY_EINVAL;
  *len = (size_t)(nul - s);
  return PARLEY_OK;
}

/* An advertised address: 1..PARLEY_MAX_ADDR bytes of printable ASCII
 * without spaces, "HOST:PORT" with a non-zero port.  s is NUL-terminated. */
int parley__reg_addr_valid(const char *s, size_t len) {
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
int parley__reg_name_valid(const char *s, size_t len) {
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
void *parley__reg_reserve(void *arr, uint32_t *cap, uint32_t need,
                          uint32_t min_cap, size_t elem) {
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

struct topic *parley__reg_find_topic(const struct parley_registry *r,
                                     const char *name, size_t len) {
  return parley_map_get(&r->topics, name, len);
}

/* Creates an empty topic and indexes it.  NULL on allocation failure. */
struct topic *parley__reg_topic_create(struct parley_registry *r,
                                       const char *name, size_t len) {
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

int parley__reg_acl_has(const struct acl *a, const uint8_t *pk) {
  int found;
  (void)member_pos(a, pk, &found);
  return found;
}

/* An access list with room for cap members (none yet), indexed under its
 * name.  NULL on allocation failure. */
struct acl *parley__reg_acl_new(struct parley_registry *r, const char *name,
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
void parley__reg_clear_state(struct parley_registry *r) {
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
  parley__reg_clear_state(r);
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
  const struct topic *t = parley__reg_find_topic(r, name, len);
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
        memcmp(g->sig, v->acl->last_sig, PARLEY__REG_SIG_LEN) == 0 &&
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
    v->topic = parley__reg_find_topic(r, g->topic, v->topic_len);
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
  const uint8_t *blob = c->data + PARLEY__REG_SIG_LEN;
  size_t len =
      c->data_len > PARLEY__REG_SIG_LEN ? c->data_len - PARLEY__REG_SIG_LEN : 0;
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
    if (parley__reg_field_len(c->addr, sizeof c->addr, &v->addr_len) < 0 ||
        parley__reg_field_len(c->name, sizeof c->name, &v->name_len) < 0 ||
        !parley__reg_addr_valid(c->addr, v->addr_len) ||
        !parley__reg_name_valid(c->name, v->name_len))
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
    if (parley__reg_field_len(c->topic, sizeof c->topic, &v->topic_len) < 0 ||
        !parley_topic_valid(c->topic, v->topic_len, r->max_topic))
      return PARLEY_EINVAL;
    v->peer = find_peer(r, c->pk);
    if (v->peer == NULL)
      return c->type == PARLEY_REG_SUBSCRIBE ? PARLEY_EUNKNOWNPEER : PARLEY_OK;
    if (c->type == PARLEY_REG_SUBSCRIBE) {
      const struct acl *a = find_acl(r, c->topic, v->topic_len);
      if (a != NULL && !parley__reg_acl_has(a, c->pk))
        return PARLEY_EDENIED;
    }
    v->topic = parley__reg_find_topic(r, c->topic, v->topic_len);
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
  a = parley__reg_reserve(p->subs, &p->subs_cap, p->pub.nsubs + 1, 4,
                          sizeof *p->subs);
  if (a == NULL)
    return PARLEY_ENOMEM;
  p->subs = a;
  if (t == NULL) {
    t = parley__reg_topic_create(r, c->topic, v->topic_len);
    if (t == NULL)
      return PARLEY_ENOMEM;
    created = 1;
    tpos = 0;
  }
  if (t->nsubs == UINT32_MAX)
    return PARLEY_ELIMIT; /* unreachable with 32-bit peer counts */
  a = parley__reg_reserve(t->subs, &t->subs_cap, t->nsubs + 1, 4,
                          sizeof *t->subs);
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
  struct acl *a = parley__reg_acl_new(r, g->topic, len, 4);
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
    arr = parley__reg_reserve(a->members, &a->members_cap, a->nmembers + 1, 4,
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
  memcpy(a->last_sig, g->sig, PARLEY__REG_SIG_LEN);
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
  size_t len = c->data_len - PARLEY__REG_SIG_LEN;
  struct blob *b, **slot;

  if (v->noop)
    return PARLEY_OK;
  b = parley_malloc(sizeof *b + len);
  if (b == NULL)
    return PARLEY_ENOMEM;
  b->epoch = v->epoch;
  b->len = (uint16_t)len;
  memcpy(b->bytes, c->data + PARLEY__REG_SIG_LEN, len);
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

int parley__reg_cmp_peer(const void *a, const void *b) {
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
int parley__reg_sorted_values(const struct parley_map *m,
                              int (*cmp)(const void *, const void *),
                              void ***out) {
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
  int rc = parley__reg_sorted_values(&r->peers, parley__reg_cmp_peer, &v);

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
  const struct topic *t = parley__reg_find_topic(r, topic, strlen(topic));
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
  int rc = parley__reg_sorted_values(&r->topics, cmp_topic, &v);

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

int parley__reg_cmp_acl(const void *a, const void *b) {
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
  return a != NULL && parley__reg_acl_has(a, pk);
}

int parley_registry_may_access(const struct parley_registry *r,
                               const char *topic, const uint8_t pk[32]) {
  const struct acl *a = acl_of(r, topic);
  return a == NULL || parley__reg_acl_has(a, pk);
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
  int rc = parley__reg_sorted_values(&r->acls, parley__reg_cmp_acl, &v);

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

