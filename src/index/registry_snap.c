/*
 * registry_snap.c — the registry's canonical snapshot (registry.h):
 * parley_registry_snapshot writes it, parley_registry_restore reads it
 * back, accepting exactly the canonical form.  The state's structs and the
 * helpers shared with registry.c are in registry_int.h.
 */
#include "index/registry.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/map.h"
#include "core/util.h"
#include "crypto/groupkey.h"
#include "index/registry_int.h"

/* Smallest encoding of one snapshot peer: key, str8 addr (>= 1 byte),
 * str8 name, two u64, u32 topic count. */
#define SNAP_PEER_MIN (32u + 2u + 1u + 8u + 8u + 4u)
/* ... of one access list: str8 topic (>= 1 byte), owner, u32 epoch, u64
 * counter, sig, u32 member count, and one member (key, u8 key count). */
#define SNAP_ACL_FIXED (32u + 4u + 8u + 64u + 4u)
#define SNAP_ACL_MIN (2u + SNAP_ACL_FIXED + 33u)
#define SNAP_MEMBER_MIN 33u

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
  parley__reg_put_u64(tmp + n, (uint64_t)p->pub.registered_ms);
  n += 8;
  parley__reg_put_u64(tmp + n, (uint64_t)p->pub.updated_ms);
  n += 8;
  parley__reg_put_u32(tmp + n, p->pub.nsubs);
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
  parley__reg_put_u32(tmp + n + 32, a->epoch);
  parley__reg_put_u64(tmp + n + 36, a->counter);
  memcpy(tmp + n + 44, a->last_sig, PARLEY__REG_SIG_LEN);
  parley__reg_put_u32(tmp + n + 108, a->nmembers);
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
  int rc = parley__reg_sorted_values(&r->acls, parley__reg_cmp_acl, &v);

  if (rc < 0)
    return rc;
  parley__reg_put_u32(cnt, (uint32_t)n);
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
  rc = parley__reg_sorted_values(&r->peers, parley__reg_cmp_peer, &v);
  if (rc < 0)
    return rc;
  memcpy(hdr, PARLEY__REG_SNAP_MAGIC, 4);
  parley__reg_put_u32(hdr + 4, (uint32_t)n);
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

/* Byte order of two names, shorter first on a common prefix. */
static int name_cmp(const char *a, size_t la, const char *b, size_t lb) {
  int c = memcmp(a, b, la < lb ? la : lb);
  if (c != 0)
    return c;
  return la < lb ? -1 : la > lb;
}

/* Reads the i-th name of a sorted list: a valid topic after prev (the
 * previous one, plen bytes), which it then becomes.  PARLEY_EPROTO
 * otherwise. */
static int rd_next_name(const struct parley_registry *r, struct reader *rd,
                        uint32_t i, char *name, size_t *len, char *prev,
                        size_t *plen) {
  if (parley__reg_rd_str8(rd, r->max_topic, name, len) < 0 ||
      !parley_topic_valid(name, *len, r->max_topic))
    return PARLEY_EPROTO;
  if (i > 0 && name_cmp(prev, *plen, name, *len) >= 0)
    return PARLEY_EPROTO; /* unsorted or duplicate */
  memcpy(prev, name, *len);
  *plen = *len;
  return PARLEY_OK;
}

static int restore_topics(struct parley_registry *r, struct reader *rd,
                          struct peer *p, uint32_t count) {
  char name[PARLEY_MAX_TOPIC + 1], prev[PARLEY_MAX_TOPIC + 1];
  size_t len, plen = 0;

  for (uint32_t i = 0; i < count; i++) {
    struct topic *t;
    void *a;

    if (rd_next_name(r, rd, i, name, &len, prev, &plen) < 0)
      return PARLEY_EPROTO;
    t = parley__reg_find_topic(r, name, len);
    if (t == NULL && (t = parley__reg_topic_create(r, name, len)) == NULL)
      return PARLEY_ENOMEM;
    /* Peers arrive in ascending key order, so p sorts last. */
    a = parley__reg_reserve(t->subs, &t->subs_cap, t->nsubs + 1, 4,
                            sizeof *t->subs);
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

  if (parley__reg_rd_bytes(rd, 1, &b) < 0 || b[0] > 2)
    return PARLEY_EPROTO;
  nk = b[0];
  for (uint8_t k = 0; k < nk; k++) {
    struct parley_groupkey_blob kb;
    struct blob *x;
    size_t n;

    if (parley__reg_rd_bytes(rd, 2, &b) < 0)
      return PARLEY_EPROTO;
    n = (size_t)b[0] << 8 | b[1];
    if (n > PARLEY_GROUPKEY_BLOB_MAX || parley__reg_rd_bytes(rd, n, &b) < 0 ||
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

  if (parley__reg_rd_bytes(rd, SNAP_ACL_FIXED, &b) < 0)
    return PARLEY_EPROTO;
  nm = parley__reg_get_u32(b + 108);
  if (parley__reg_get_u32(b + 32) == 0 || parley__reg_get_u64(b + 36) == 0 ||
      nm == 0 || nm > r->max_members ||
      nm > (rd->len - rd->pos) / SNAP_MEMBER_MIN)
    return PARLEY_EPROTO;
  a = parley__reg_acl_new(r, name, len, nm);
  if (a == NULL)
    return PARLEY_ENOMEM;
  memcpy(a->owner, b, 32);
  a->epoch = parley__reg_get_u32(b + 32);
  a->counter = parley__reg_get_u64(b + 36);
  memcpy(a->last_sig, b + 44, PARLEY__REG_SIG_LEN);
  for (uint32_t j = 0; j < nm; j++) {
    if (parley__reg_rd_bytes(rd, 32, &b) < 0 ||
        (prev && memcmp(prev, b, 32) >= 0))
      return PARLEY_EPROTO; /* truncated, unsorted or duplicate */
    prev = b;
    memcpy(a->members[j].pk, b, 32);
    a->nmembers++;
    rc = restore_keys(rd, a, &a->members[j]);
    if (rc < 0)
      return rc;
  }
  if (!parley__reg_acl_has(a, a->owner))
    return PARLEY_EPROTO;
  /* Only members may subscribe to a private topic. */
  t = parley__reg_find_topic(r, name, len);
  for (uint32_t k = 0; t != NULL && k < t->nsubs; k++)
    if (!parley__reg_acl_has(a, t->subs[k]->pub.pk))
      return PARLEY_EPROTO;
  return PARLEY_OK;
}

static int restore_acls(struct parley_registry *r, struct reader *rd) {
  char name[PARLEY_MAX_TOPIC + 1], prev[PARLEY_MAX_TOPIC + 1];
  const uint8_t *b;
  size_t len, plen = 0;
  uint32_t count;
  int rc;

  if (parley__reg_rd_bytes(rd, 4, &b) < 0)
    return PARLEY_EPROTO;
  count = parley__reg_get_u32(b);
  if (count > (rd->len - rd->pos) / SNAP_ACL_MIN ||
      (r->max_private != 0 && count > r->max_private))
    return PARLEY_EPROTO;
  for (uint32_t i = 0; i < count; i++) {
    if (rd_next_name(r, rd, i, name, &len, prev, &plen) < 0)
      return PARLEY_EPROTO;
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
  count = parley__reg_get_u32(buf + 4);
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

    if (parley__reg_rd_bytes(&rd, 32, &b) < 0 ||
        (prev && memcmp(prev, b, 32) >= 0))
      return PARLEY_EPROTO; /* truncated, unsorted or duplicate */
    prev = b;
    if (parley__reg_rd_str8(&rd, PARLEY_MAX_ADDR, addr, &la) < 0 ||
        !parley__reg_addr_valid(addr, la) ||
        parley__reg_rd_str8(&rd, PARLEY_MAX_NAME, name, &ln) < 0 ||
        !parley__reg_name_valid(name, ln))
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
    if (parley__reg_rd_bytes(&rd, 20, &b) < 0)
      return PARLEY_EPROTO;
    p->pub.registered_ms = parley__reg_to_i64(parley__reg_get_u64(b));
    p->pub.updated_ms = parley__reg_to_i64(parley__reg_get_u64(b + 8));
    nt = parley__reg_get_u32(b + 16);
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

  parley__reg_clear_state(r);
  if (buf == NULL)
    return PARLEY_EPROTO;
  rc = restore_into(r, buf, len);
  if (rc < 0)
    parley__reg_clear_state(r);
  return rc;
}
