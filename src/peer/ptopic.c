/*
 * ptopic.c — private topics on the peer side (crypto/groupkey.h has the
 * constructions, docs/PROTOCOL.md section 16 the conversation with the
 * index, docs/SECURITY.md what it promises).
 *
 * What this peer knows of a topic comes from the index: MEMBERS (owner,
 * epoch, grant counter, members) and KEYS (the key blobs sealed to us).
 * Both are asked for when we subscribe, before the first WATCH of a route,
 * after every registration and whenever an ACL_EVENT says the list or our
 * keys changed.  Keys live in locked memory (sodium_malloc) and their
 * blobs, still sealed to our own key, in the store, so that messages of
 * old epochs stay readable after the index has dropped those blobs.
 *
 * Messages on a private topic travel and are stored sealed (flags PRIVATE
 * and BINARY; the plaintext is one content byte, 0 or PARLEY_MSG_BINARY,
 * then the body, as for direct messages): the store holds ciphertext and
 * the API opens it when it is read.
 *
 * The owner's actions (create, grant, revoke, rotate) are small state
 * machines over index requests (struct ptopic_op), each answering one
 * suspended HTTP request when it ends.
 */
#include "peer/node_int.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "crypto/groupkey.h"
#include "peer/ptopic_int.h"
#include "wire/acl_wire.h"

/* ---- state ------------------------------------------------------------------ */

struct ptopic *parley__pt_get(struct parley_node *n, const char *topic,
                             int create) {
  size_t len = strlen(topic);
  struct ptopic *pt =
      parley_map_get_memo(&n->ptopics, &n->ptopics_memo, topic, len);

  if (pt != NULL || !create || len == 0 || len >= CHANNEL_MAX)
    return pt;
  pt = parley_calloc(1, sizeof *pt);
  if (pt == NULL)
    return NULL;
  memcpy(pt->topic, topic, len + 1);
  if (parley_map_put(&n->ptopics, pt->topic, len, pt, NULL) < 0) {
    parley_free(pt);
    return NULL;
  }
  return pt;
}

static void pt_wipe_keys(struct ptopic *pt) {
  if (pt->keys != NULL)
    sodium_free(pt->keys); /* sodium_free wipes */
  pt->keys = NULL;
  pt->nkeys = 0;
}

static void pt_free(struct ptopic *pt) {
  pt_wipe_keys(pt);
  parley_free(pt->members);
  parley_free(pt);
}

const struct parley_topic_key *parley__pt_key(const struct ptopic *pt,
                                             uint32_t epoch) {
  for (size_t i = 0; i < pt->nkeys; i++)
    if (pt->keys[i].epoch == epoch)
      return &pt->keys[i];
  return NULL;
}

/* Adds a key in epoch order; the oldest goes past PT_MAX_KEYS (its blob
 * stays in the store).  0 if added or already held. */
int parley__pt_add_key(struct ptopic *pt, const struct parley_topic_key *k) {
  struct parley_topic_key *nk;
  size_t n = pt->nkeys, at = 0, skip = 0;

  if (parley__pt_key(pt, k->epoch) != NULL)
    return 0;
  if (n >= PT_MAX_KEYS)
    skip = 1;
  nk = sodium_malloc(sizeof *nk * (n + 1 - skip));
  if (nk == NULL)
    return PARLEY_ENOMEM;
  for (size_t i = skip; i < n; i++) {
    if (pt->keys[i].epoch < k->epoch)
      at = i + 1 - skip;
  }
  if (n > 0) {
    memcpy(nk, pt->keys + skip, sizeof *nk * at);
    memcpy(nk + at + 1, pt->keys + skip + at, sizeof *nk * (n - skip - at));
  }
  nk[at] = *k;
  pt_wipe_keys(pt);
  pt->keys = nk;
  pt->nkeys = n + 1 - skip;
  return 0;
}

int parley__pt_is_member(const struct ptopic *pt, const uint8_t pk[32]) {
  for (uint32_t i = 0; i < pt->nmembers; i++)
    if (memcmp(pt->members[i], pk, 32) == 0)
      return 1;
  return 0;
}

/* Opens one key blob for us on pt's topic.  With no owner known yet (keys
 * loaded from the store before MEMBERS answers) the blob's own claim is
 * taken; MEMBERS later wipes keys of another owner. */
int parley__pt_take_blob(struct parley_node *n, struct ptopic *pt,
                        const uint8_t *blob, size_t len, int save) {
  struct parley_groupkey_blob b;
  struct parley_topic_key k;
  int rc = parley_groupkey_blob_decode(blob, len, &b);

  if (rc < 0)
    return rc;
  if (!pt->owner_known && pt->nkeys == 0)
    memcpy(pt->owner, b.owner_pk, 32);
  rc = parley_groupkey_open(&n->id, pt->owner, pt->topic, &b, &k);
  if (rc < 0)
    return rc;
  rc = parley__pt_add_key(pt, &k);
  parley_groupkey_wipe(&k);
  if (rc == 0 && save) {
    rc = parley__node_tx(n);
    if (rc == PARLEY_OK)
      rc = parley_store_topic_key_put(n->store, pt->topic, b.epoch, blob,
                                      len);
  }
  return rc;
}

static int load_blob(void *ctx, const char *topic, uint32_t epoch,
                     const uint8_t *blob, size_t len) {
  struct parley_node *n = ctx;
  struct ptopic *pt = parley__pt_get(n, topic, 1);
  int rc;

  (void)epoch;
  if (pt == NULL)
    return PARLEY_ENOMEM;
  pt->state = PT_PRIVATE;
  rc = parley__pt_take_blob(n, pt, blob, len, 0);
  if (rc < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "stored key of %s epoch %u does not open: %s", topic,
               (unsigned)epoch, parley_strerror(rc));
  return rc == PARLEY_ENOMEM ? rc : 0;
}

int parley__ptopic_load(struct parley_node *n) {
  return parley_store_topic_key_list(n->store, load_blob, n);
}

void parley__ptopic_free(struct parley_node *n) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley__ptopic_ops_free(n);
  parley_map_iter_init(&it, &n->ptopics);
  while ((e = parley_map_iter_next(&it)) != NULL)
    pt_free(e->value);
  parley_map_close(&n->ptopics);
}

/* ---- index requests ------------------------------------------------------------ */

int parley__send_members_get(struct parley_node *n, const char *topic,
                            icreq_cb cb, void *ctx) {
  struct parley_acl_members_get m;
  uint8_t buf[4 + 1 + PARLEY_MAX_TOPIC];
  size_t len;
  int rc;

  memset(&m, 0, sizeof m);
  m.topic.ptr = topic;
  m.topic.len = strlen(topic);
  rc = parley_acl_members_get_encode(&m, buf, sizeof buf, &len);
  if (rc < 0)
    return rc;
  return parley__ic_request_opaque(n, PARLEY_FRAME_MEMBERS_GET, topic, buf,
                                   len, cb, ctx);
}

static int send_key_get(struct parley_node *n, const char *topic,
                        uint32_t min_epoch, icreq_cb cb, void *ctx) {
  struct parley_acl_key_get m;
  uint8_t buf[4 + 1 + PARLEY_MAX_TOPIC + 4];
  size_t len;
  int rc;

  memset(&m, 0, sizeof m);
  m.topic.ptr = topic;
  m.topic.len = strlen(topic);
  m.min_epoch = min_epoch;
  rc = parley_acl_key_get_encode(&m, buf, sizeof buf, &len);
  if (rc < 0)
    return rc;
  return parley__ic_request_opaque(n, PARLEY_FRAME_KEY_GET, topic, buf, len,
                                   cb, ctx);
}

/* Applies a MEMBERS answer to pt.  PARLEY_EPROTO if it is not one. */
int parley__take_members(struct parley_node *n, struct ptopic *pt,
                        const struct parley_frame *f) {
  struct parley_acl_members m;
  uint8_t(*list)[32];
  int rc;

  if (f == NULL || f->type != PARLEY_FRAME_MEMBERS)
    return PARLEY_EPROTO;
  rc = parley_acl_members_decode(f->u.opaque.data, f->u.opaque.len, &m);
  if (rc < 0 || m.topic.len != strlen(pt->topic) ||
      memcmp(m.topic.ptr, pt->topic, m.topic.len) != 0)
    return PARLEY_EPROTO;
  if (m.counter < pt->counter && pt->owner_known &&
      memcmp(pt->owner, m.owner, 32) == 0) {
    /* An index node behind the one we asked before: keep what we have. */
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "index answered an older access list of %s (grant %llu < "
               "%llu): kept ours",
               pt->topic, (unsigned long long)m.counter,
               (unsigned long long)pt->counter);
    return PARLEY_OK;
  }
  list = parley_malloc((size_t)m.count * 32);
  if (list == NULL)
    return PARLEY_ENOMEM;
  memcpy(list, m.members, (size_t)m.count * 32);
  if (pt->nkeys > 0 && memcmp(pt->owner, m.owner, 32) != 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "keys held for %s came from another owner: dropped",
               pt->topic);
    pt_wipe_keys(pt);
  }
  parley_free(pt->members);
  pt->members = list;
  pt->nmembers = m.count;
  memcpy(pt->owner, m.owner, 32);
  pt->owner_known = 1;
  pt->epoch = m.epoch;
  pt->counter = m.counter;
  pt->state = PT_PRIVATE;
  pt->member = parley__pt_is_member(pt, n->id.pk);
  return PARLEY_OK;
}

static void on_members(struct parley_node *n, struct icreq *q, int rc,
                       const struct parley_frame *f) {
  struct ptopic *pt = parley__pt_get(n, q->topic, 1);

  (void)q;
  if (pt == NULL)
    return;
  if (rc == PARLEY_ENOTFOUND) {
    if (pt->state != PT_PRIVATE)
      pt->state = PT_PUBLIC;
    return;
  }
  if (rc == PARLEY_EDENIED) {
    pt->state = PT_PRIVATE;
    pt->member = 0;
    return;
  }
  if (rc < 0)
    return; /* index gone: asked again after the next registration */
  rc = parley__take_members(n, pt, f);
  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "MEMBERS of %s: %s", pt->topic,
               parley_strerror(rc));
    return;
  }
  if (pt->member) {
    /* Granted since the index refused our WATCH: watch again on the next
     * publish. */
    struct route *r = parley_map_get(&n->routes, pt->topic, strlen(pt->topic));
    if (r != NULL && r->denied) {
      r->denied = 0;
      r->state = ROUTE_NONE;
    }
  }
}

static void on_keys(struct parley_node *n, struct icreq *q, int rc,
                    const struct parley_frame *f) {
  struct parley_acl_keys k;
  struct ptopic *pt = parley__pt_get(n, q->topic, 0);

  if (pt == NULL || rc < 0 || f == NULL || f->type != PARLEY_FRAME_KEYS)
    return;
  if (parley_acl_keys_decode(f->u.opaque.data, f->u.opaque.len, &k) < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "malformed KEYS for %s", pt->topic);
    return;
  }
  for (uint8_t i = 0; i < k.count; i++) {
    rc = parley__pt_take_blob(n, pt, k.keys[i].ptr, k.keys[i].len, 1);
    if (rc < 0) {
      n->m.ptopic_keys_refused++;
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
                 "key blob for %s refused: %s (not sealed for us by the "
                 "topic's owner)",
                 pt->topic, parley_strerror(rc));
    } else {
      n->m.ptopic_keys++;
    }
  }
}

void parley__ptopic_probe(struct parley_node *n, const char *topic) {
  struct ptopic *pt = parley__pt_get(n, topic, 1);
  uint32_t min = 1;

  if (pt == NULL || !n->registered)
    return;
  pt->probed_ms = parley_mono_ms();
  if (parley__send_members_get(n, topic, on_members, NULL) < 0)
    return;
  if (pt->nkeys > 0)
    min = pt->keys[pt->nkeys - 1].epoch; /* and later ones */
  (void)send_key_get(n, topic, min, on_keys, NULL);
}

void parley__ptopic_registered(struct parley_node *n) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  /* What we knew may have changed while we were away (grants, rotations,
   * keys sealed to us while we were offline). */
  parley_map_iter_init(&it, &n->ptopics);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct ptopic *pt = e->value;
    if (pt->state != PT_PUBLIC)
      parley__ptopic_probe(n, pt->topic);
  }
  parley_map_iter_init(&it, &n->subs);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct ptopic *pt = parley__pt_get(n, (const char *)e->key, 0);
    if (pt == NULL)
      parley__ptopic_probe(n, (const char *)e->key);
  }
}

/* ---- events from the index ------------------------------------------------------ */

static int event_matters(struct parley_node *n, const char *topic,
                         size_t len) {
  return parley_map_get(&n->ptopics, topic, len) != NULL ||
         parley_map_get(&n->subs, topic, len) != NULL ||
         parley_map_get(&n->routes, topic, len) != NULL;
}

void parley__ptopic_event(struct parley_node *n,
                          const struct parley_frame *f) {
  struct parley_acl_event ev;
  char topic[CHANNEL_MAX];
  struct ptopic *pt;

  if (parley_acl_event_decode(f->u.opaque.data, f->u.opaque.len, &ev) < 0 ||
      ev.topic.len == 0 || ev.topic.len >= CHANNEL_MAX) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "malformed ACL_EVENT from index");
    return;
  }
  memcpy(topic, ev.topic.ptr, ev.topic.len);
  topic[ev.topic.len] = '\0';
  if (!event_matters(n, topic, ev.topic.len) &&
      memcmp(ev.member, n->id.pk, 32) != 0)
    return;
  if (ev.kind == PARLEY_ACL_EV_KEY) {
    pt = parley__pt_get(n, topic, 1);
    if (pt != NULL && memcmp(ev.member, n->id.pk, 32) == 0)
      (void)send_key_get(n, topic, ev.epoch, on_keys, NULL);
    return;
  }
  pt = parley__pt_get(n, topic, 1);
  if (pt == NULL)
    return;
  if (ev.kind == PARLEY_ACL_EV_CREATE && pt->state == PT_PUBLIC)
    pt->state = PT_UNKNOWN;
  if (ev.kind == PARLEY_ACL_EV_REVOKE && memcmp(ev.member, n->id.pk, 32) == 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "removed from private topic %s (epoch %u): keys of later "
               "epochs will not reach us",
               topic, (unsigned)ev.epoch);
  if (ev.epoch > pt->epoch && pt->state == PT_PRIVATE)
    pt->epoch = ev.epoch; /* no publishing under the old key meanwhile */
  parley__ptopic_probe(n, topic);
}

/* ---- messages ------------------------------------------------------------------ */

int parley__ptopic_seal(struct parley_node *n, const char *topic,
                        uint64_t seq, uint64_t ts_ms, const uint8_t *body,
                        size_t len, uint32_t flags, uint8_t **out,
                        size_t *out_len, uint32_t *wire_flags) {
  struct ptopic *pt = parley__pt_get(n, topic, 0);
  const struct parley_topic_key *k;
  uint8_t *pt_buf, *sealed;
  size_t need, written;
  int rc;

  *out = NULL;
  *out_len = 0;
  if (pt == NULL || pt->state != PT_PRIVATE)
    return 0;
  if (!pt->member)
    return PARLEY_EDENIED;
  k = parley__pt_key(pt, pt->epoch);
  if (k == NULL) {
    parley__ptopic_probe(n, topic);
    return PARLEY_EUNAVAIL;
  }
  rc = parley_groupkey_msg_len(len + 1, &need);
  if (rc < 0)
    return rc;
  pt_buf = sodium_malloc(len + 1);
  sealed = parley_malloc(need);
  if (pt_buf == NULL || sealed == NULL) {
    if (pt_buf != NULL)
      sodium_free(pt_buf);
    parley_free(sealed);
    return PARLEY_ENOMEM;
  }
  pt_buf[0] = (uint8_t)(flags & PARLEY_MSG_BINARY);
  if (len > 0)
    memcpy(pt_buf + 1, body, len);
  rc = parley_groupkey_encrypt(&n->id, topic, k, seq, ts_ms, pt_buf, len + 1,
                               sealed, need, &written);
  sodium_free(pt_buf);
  if (rc < 0) {
    parley_free(sealed);
    return rc;
  }
  n->m.ptopic_sealed++;
  *out = sealed;
  *out_len = written;
  *wire_flags = PARLEY_MSG_PRIVATE | PARLEY_MSG_BINARY;
  return 1;
}

/* Decrypts into a fresh sodium_malloc buffer.  OUT: *buf (len *cap), *pt_len. */
static int open_msg(const struct ptopic *pt, const uint8_t publisher[32],
                    uint64_t seq, uint64_t ts_ms, const uint8_t *body,
                    size_t len, uint8_t **buf, size_t *cap, size_t *pt_len) {
  struct parley_groupkey_msg gm;
  const struct parley_topic_key *k;
  int rc = parley_groupkey_msg_decode(body, len, &gm);

  *buf = NULL;
  if (rc < 0)
    return rc;
  k = parley__pt_key(pt, gm.epoch);
  if (k == NULL)
    return PARLEY_ENOTFOUND;
  *cap = len - PARLEY_GROUPKEY_MSG_HEADER - 16;
  *buf = sodium_malloc(*cap);
  if (*buf == NULL)
    return PARLEY_ENOMEM;
  rc = parley_groupkey_decrypt(k, pt->topic, publisher, seq, ts_ms, body, len,
                               *buf, *cap, pt_len);
  if (rc == PARLEY_OK &&
      (*pt_len < 1 || ((*buf)[0] & ~(uint8_t)PARLEY_MSG_BINARY) != 0))
    rc = PARLEY_EPROTO; /* the content byte, then the body */
  if (rc < 0) {
    sodium_free(*buf);
    *buf = NULL;
  }
  return rc;
}

int parley__ptopic_check(struct parley_node *n, const uint8_t publisher[32],
                         const char *topic, uint64_t seq, uint64_t ts_ms,
                         uint32_t flags, const uint8_t *body, size_t len) {
  struct ptopic *pt = parley__pt_get(n, topic, 0);
  uint8_t *buf;
  size_t cap, pt_len;
  int rc;

  if (!(flags & PARLEY_MSG_PRIVATE)) {
    if (pt != NULL && pt->state == PT_PRIVATE) {
      n->m.ptopic_rejected++;
      return PARLEY_EDENIED; /* plaintext on a private topic */
    }
    return PARLEY_OK;
  }
  if (flags & PARLEY_MSG_DIRECT)
    return PARLEY_EPROTO;
  if (pt == NULL || pt->state != PT_PRIVATE || pt->nmembers == 0) {
    /* Not known yet: ask, and let the publisher retry. */
    parley__ptopic_probe(n, topic);
    return PARLEY_EUNAVAIL;
  }
  if (!parley__pt_is_member(pt, publisher)) {
    if (parley_mono_ms() - pt->probed_ms > PROBE_GAP_MS)
      parley__ptopic_probe(n, topic); /* maybe a member newer than our list */
    n->m.ptopic_rejected++;
    return PARLEY_EDENIED;
  }
  rc = open_msg(pt, publisher, seq, ts_ms, body, len, &buf, &cap, &pt_len);
  if (rc == PARLEY_ENOTFOUND) {
    /* A key we do not hold yet: stored sealed, readable once it arrives. */
    parley__ptopic_probe(n, topic);
    return PARLEY_OK;
  }
  if (buf != NULL)
    sodium_free(buf);
  if (rc < 0 && rc != PARLEY_ENOMEM)
    n->m.ptopic_rejected++;
  return rc;
}

int parley__ptopic_read(struct parley_node *n, const struct parley_msg *m,
                        struct parley_msg *out, uint8_t **buf,
                        size_t *buf_len) {
  char topic[CHANNEL_MAX];
  struct ptopic *pt;
  uint8_t *dec;
  size_t cap, pt_len;
  int rc;

  *buf = NULL;
  *buf_len = 0;
  if (!(m->flags & PARLEY_MSG_PRIVATE) || m->channel_len >= CHANNEL_MAX)
    return 0;
  memcpy(topic, m->channel, m->channel_len);
  topic[m->channel_len] = '\0';
  pt = parley__pt_get(n, topic, 0);
  if (pt == NULL)
    return PARLEY_ENOTFOUND;
  rc = open_msg(pt, m->publisher, m->seq, (uint64_t)m->ts_ms, m->body,
                m->body_len, &dec, &cap, &pt_len);
  if (rc < 0)
    return rc;
  /* Handed out as a plain heap buffer (parley__dm_free wipes it). */
  *buf = parley_malloc(pt_len);
  if (*buf == NULL) {
    sodium_free(dec);
    return PARLEY_ENOMEM;
  }
  memcpy(*buf, dec + 1, pt_len - 1);
  *buf_len = pt_len;
  *out = *m;
  out->flags = dec[0] & PARLEY_MSG_BINARY;
  out->body = *buf;
  out->body_len = pt_len - 1;
  sodium_free(dec);
  n->m.ptopic_opened++;
  return 1;
}

int parley__ptopic_may_serve(struct parley_node *n, const char *topic,
                             const uint8_t pk[32]) {
  struct ptopic *pt = parley__pt_get(n, topic, 0);
  return pt == NULL || pt->state != PT_PRIVATE ||
         parley__pt_is_member(pt, pk);
}
