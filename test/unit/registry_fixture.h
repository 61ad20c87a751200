/*
 * registry_fixture.h — what the registry tests share (test_registry.c,
 * test_registry_snap.c, test_registry_cmd.c): setup/teardown around the
 * counting, failure-injecting heap (heap_fixture.h), command and observer
 * helpers, an independent snapshot writer (struct sbuild), and the signed
 * private-topic commands of four fixed identities.
 *
 * Everything is static inline (or a static object), so each test program
 * gets its own copy and unused helpers cost nothing.  Include it first: it
 * brings cmocka in the order cmocka needs.
 */
#ifndef PARLEY_TEST_REGISTRY_FIXTURE_H
#define PARLEY_TEST_REGISTRY_FIXTURE_H

/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "crypto/groupkey.h"
#include "crypto/identity.h"
#include "index/registry.h"

#include "heap_fixture.h"

static inline int setup(void **state) {
  (void)state;
  heap.fail_after = -1;
  heap.max_req = 0;
  return 0;
}

static inline int teardown(void **state) {
  (void)state;
  heap.fail_after = -1;
  assert_int_equal(heap.live, 0); /* the test leaked */
  return 0;
}

/* Helpers ------------------------------------------------------------------ */

static uint64_t rng_state;

static inline uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline void mkpk(uint8_t pk[32], unsigned i) {
  uint64_t save = rng_state;
  rng_state = 0x5eed0000ull + i;
  for (int j = 0; j < 32; j += 8) {
    uint64_t v = rng();
    memcpy(pk + j, &v, 8);
  }
  rng_state = save;
}

static inline void setstr(char *dst, size_t cap, const char *s) {
  size_t n = strlen(s);
  assert_true(n < cap);
  memcpy(dst, s, n + 1);
}

static inline struct parley_reg_cmd cmd(uint8_t type, const uint8_t *pk,
                                        int64_t ts, const char *addr,
                                        const char *name, const char *topic) {
  struct parley_reg_cmd c;
  memset(&c, 0, sizeof c);
  c.type = type;
  memcpy(c.pk, pk, 32);
  c.ts_ms = ts;
  setstr(c.addr, sizeof c.addr, addr);
  setstr(c.name, sizeof c.name, name);
  setstr(c.topic, sizeof c.topic, topic);
  return c;
}

static inline int reg(struct parley_registry *r, const uint8_t *pk, int64_t ts,
                      const char *addr, const char *name) {
  struct parley_reg_cmd c = cmd(PARLEY_REG_REGISTER, pk, ts, addr, name, "");
  return parley_registry_apply(r, &c);
}

static inline int sub(struct parley_registry *r, const uint8_t *pk,
                      const char *topic) {
  struct parley_reg_cmd c = cmd(PARLEY_REG_SUBSCRIBE, pk, 0, "", "", topic);
  return parley_registry_apply(r, &c);
}

static inline int unsub(struct parley_registry *r, const uint8_t *pk,
                        const char *topic) {
  struct parley_reg_cmd c = cmd(PARLEY_REG_UNSUBSCRIBE, pk, 0, "", "", topic);
  return parley_registry_apply(r, &c);
}

static inline int expire(struct parley_registry *r, const uint8_t *pk) {
  struct parley_reg_cmd c = cmd(PARLEY_REG_EXPIRE, pk, 0, "", "", "");
  return parley_registry_apply(r, &c);
}

static inline struct parley_registry *mkreg(uint32_t subs, uint32_t peers,
                                            uint32_t topic) {
  struct parley_reg_limits lim = {subs, peers, topic, 0, 0};
  struct parley_registry *r;
  assert_int_equal(parley_registry_new(&lim, &r), PARLEY_OK);
  return r;
}

static inline void hex8(const uint8_t *pk, char out[17]) {
  static const char d[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) {
    out[2 * i] = d[pk[i] >> 4];
    out[2 * i + 1] = d[pk[i] & 15];
  }
  out[16] = '\0';
}

/* Records observer events as text lines: "UP <key> <nsubs>",
 * "DOWN <key> <nsubs>", "ADD <key> <topic> <nsubs>", "DEL ...". */
struct recorder {
  char buf[16384];
  size_t len;
};

static inline void rec_add(struct recorder *rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void rec_add(struct recorder *rc, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(rc->buf + rc->len, sizeof rc->buf - rc->len, fmt, ap);
  va_end(ap);
  assert_true(n > 0 && (size_t)n < sizeof rc->buf - rc->len);
  rc->len += (size_t)n;
}

static inline void on_change(void *ctx, const struct parley_reg_change *ch) {
  static const char *acl_kinds[] = {"CREATE", "MADD", "MDEL", "ROTATE", "KEY"};
  struct recorder *rc = ctx;
  char k[17];

  /* Private topics: "<KIND> <topic> <member> e<epoch>", and " p" when the
   * member is a registered peer (then ch->peer is that peer). */
  if (ch->kind >= PARLEY_REG_ACL_CREATE && ch->kind <= PARLEY_REG_MEMBER_KEY) {
    assert_non_null(ch->member);
    assert_non_null(ch->topic);
    assert_true(ch->epoch >= 1);
    if (ch->peer != NULL)
      assert_memory_equal(ch->peer->pk, ch->member, 32);
    hex8(ch->member, k);
    rec_add(rc, "%s %s %s e%u%s\n", acl_kinds[ch->kind - PARLEY_REG_ACL_CREATE],
            ch->topic, k, ch->epoch, ch->peer != NULL ? " p" : "");
    return;
  }
  assert_null(ch->member);
  assert_int_equal(ch->epoch, 0);
  hex8(ch->peer->pk, k);
  switch (ch->kind) {
  case PARLEY_REG_PEER_UP:
    assert_null(ch->topic);
    rec_add(rc, "UP %s %u\n", k, ch->peer->nsubs);
    break;
  case PARLEY_REG_PEER_DOWN:
    assert_null(ch->topic);
    rec_add(rc, "DOWN %s %u\n", k, ch->peer->nsubs);
    break;
  case PARLEY_REG_SUB_ADD:
    rec_add(rc, "ADD %s %s %u\n", k, ch->topic, ch->peer->nsubs);
    break;
  case PARLEY_REG_SUB_DEL:
    rec_add(rc, "DEL %s %s %u\n", k, ch->topic, ch->peer->nsubs);
    break;
  default:
    fail_msg("unknown change kind %d", ch->kind);
  }
}

static inline void observe(struct parley_registry *r, struct recorder *rc) {
  struct parley_reg_observer o = {on_change, rc};
  rc->len = 0;
  rc->buf[0] = '\0';
  parley_registry_set_observer(r, &o);
}

static inline const char *events(struct recorder *rc) {
  static char out[sizeof rc->buf];
  memcpy(out, rc->buf, rc->len);
  out[rc->len] = '\0';
  rc->len = 0;
  return out;
}

static inline void snap_of(const struct parley_registry *r,
                           struct parley_buf *b) {
  parley_buf_init(b, 64u << 20);
  assert_int_equal(parley_registry_snapshot(r, b), PARLEY_OK);
}

static inline void assert_same_state(const struct parley_registry *a,
                                     const struct parley_registry *b) {
  struct parley_buf sa, sb;
  snap_of(a, &sa);
  snap_of(b, &sb);
  assert_int_equal(sa.len, sb.len);
  assert_memory_equal(sa.data, sb.data, sa.len);
  parley_buf_close(&sa);
  parley_buf_close(&sb);
}

/* Collects walks into text. */
struct walk {
  char buf[8192];
  size_t len;
  int stop_after; /* return 7 from the n-th call; 0 = never */
  int calls;
};

static inline void walk_add(struct walk *w, const char *s) {
  size_t n = strlen(s);
  assert_true(w->len + n + 1 < sizeof w->buf);
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len++] = ' ';
  w->buf[w->len] = '\0';
}

static inline int walk_stop(struct walk *w) {
  w->calls++;
  return w->stop_after && w->calls == w->stop_after ? 7 : 0;
}

static inline int walk_peer(void *ctx, const struct parley_reg_peer *p) {
  char k[17];
  hex8(p->pk, k);
  walk_add(ctx, k);
  return walk_stop(ctx);
}

static inline int walk_name(void *ctx, const char *topic) {
  walk_add(ctx, topic);
  return walk_stop(ctx);
}

static inline int walk_topic(void *ctx, const char *topic, uint32_t n) {
  char s[300];
  snprintf(s, sizeof s, "%s=%u", topic, n);
  walk_add(ctx, s);
  return walk_stop(ctx);
}

static inline const char *key_text(unsigned i) {
  static char out[4][17];
  static int next;
  uint8_t pk[32];
  char *s = out[next++ & 3];
  mkpk(pk, i);
  hex8(pk, s);
  return s;
}

/* Snapshot writer ---------------------------------------------------------- */

/* A tiny independent snapshot writer for crafted inputs. */
struct sbuild {
  uint8_t b[8192];
  size_t n;
};

static inline void sb_bytes(struct sbuild *s, const void *p, size_t n) {
  assert_true(s->n + n <= sizeof s->b);
  memcpy(s->b + s->n, p, n);
  s->n += n;
}

static inline void sb_u32(struct sbuild *s, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  sb_bytes(s, b, 4);
}

static inline void sb_u64(struct sbuild *s, uint64_t v) {
  sb_u32(s, (uint32_t)(v >> 32));
  sb_u32(s, (uint32_t)v);
}

static inline void sb_str8(struct sbuild *s, const char *str) {
  uint8_t l = (uint8_t)strlen(str);
  sb_bytes(s, &l, 1);
  sb_bytes(s, str, l);
}

static inline void sb_peer(struct sbuild *s, uint8_t keybyte, const char *addr,
                           const char *name, int ntopics, const char **topics) {
  uint8_t k[32];
  memset(k, keybyte, 32);
  sb_bytes(s, k, 32);
  sb_str8(s, addr);
  sb_str8(s, name);
  sb_u64(s, 100);
  sb_u64(s, 200);
  sb_u32(s, (uint32_t)ntopics);
  for (int i = 0; i < ntopics; i++)
    sb_str8(s, topics[i]);
}

/* Private topics: identities, signed commands, walks ----------------------- */

/* A owns the topics; B and C become members; D stays outside. */
static struct parley_identity ida, idb, idc, idd;

static inline void acl_ids(void) {
  struct parley_identity *ids[4] = {&ida, &idb, &idc, &idd};
  uint8_t seed[32];
  for (int i = 0; i < 4; i++) {
    memset(seed, 0x10 * (i + 1), 32);
    assert_int_equal(parley_identity_from_seed(ids[i], seed), PARLEY_OK);
  }
}

static inline const char *hx(const struct parley_identity *id) {
  static char out[4][17];
  static int next;
  char *s = out[next++ & 3];
  hex8(id->pk, s);
  return s;
}

/* Applies c after checking it: check() must predict apply(). */
static inline int run(struct parley_registry *r,
                      const struct parley_reg_cmd *c) {
  int want = parley_registry_check(r, c);
  assert_int_equal(parley_registry_apply(r, c), want);
  return want;
}

/* A GRANT command: the statement signed by signer, proposed on behalf of
 * by (signer when NULL).  member NULL means the signer. */
static inline void mkgrant(struct parley_reg_cmd *c,
                           const struct parley_identity *signer,
                           const uint8_t *by, int action, const char *topic,
                           const uint8_t *member, uint32_t epoch,
                           uint64_t counter) {
  struct parley_grant g;
  uint8_t buf[PARLEY_GRANT_MAX_LEN];
  size_t n;

  memset(&g, 0, sizeof g);
  g.action = (uint8_t)action;
  setstr(g.topic, sizeof g.topic, topic);
  memcpy(g.member_pk, member ? member : signer->pk, 32);
  g.epoch = epoch;
  g.issued_ms = 1700000000000ull;
  g.counter = counter;
  assert_int_equal(parley_groupkey_grant_sign(signer, &g), PARLEY_OK);
  assert_int_equal(parley_groupkey_grant_encode(&g, buf, sizeof buf, &n),
                   PARLEY_OK);
  assert_int_equal(
      parley_reg_cmd_grant(c, by ? by : signer->pk, 77, buf, n), PARLEY_OK);
}

static inline int grant(struct parley_registry *r,
                        const struct parley_identity *signer, int action,
                        const char *topic, const uint8_t *member,
                        uint32_t epoch, uint64_t counter) {
  struct parley_reg_cmd c;
  mkgrant(&c, signer, NULL, action, topic, member, epoch, counter);
  return run(r, &c);
}

/* A KEY_PUT of a fresh key (returned in *k if not NULL) for member at epoch,
 * sealed by owner, the KEY_PUT signed by signer and proposed by `by` (both
 * default to the owner). */
static inline void mkkeyput(struct parley_reg_cmd *c,
                            const struct parley_identity *owner,
                            const struct parley_identity *signer,
                            const uint8_t *by, const char *topic,
                            const uint8_t *member, uint32_t epoch,
                            struct parley_topic_key *k) {
  struct parley_topic_key key;
  struct parley_groupkey_blob b;
  uint8_t blob[PARLEY_GROUPKEY_BLOB_MAX], msg[PARLEY_ACL_KEY_PUT_SIGNED_MAX];
  uint8_t sig[64];
  size_t n;

  assert_int_equal(parley_groupkey_generate(&key, epoch), PARLEY_OK);
  assert_int_equal(parley_groupkey_seal(owner, topic, &key, member, &b),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_blob_encode(&b, blob, sizeof blob, &n),
                   PARLEY_OK);
  /* What parley_acl_key_put_signed_data writes (this test does not link
   * parley_wire). */
  memcpy(msg, "parley-key-put-v1", 18);
  memcpy(msg + 18, blob, n);
  parley_identity_sign(signer ? signer : owner, msg, 18 + n, sig);
  assert_int_equal(
      parley_reg_cmd_key_put(c, by ? by : owner->pk, 78, blob, n, sig),
      PARLEY_OK);
  if (k != NULL)
    *k = key;
}

static inline int keyput(struct parley_registry *r, const char *topic,
                         const uint8_t *member, uint32_t epoch,
                         struct parley_topic_key *k) {
  struct parley_reg_cmd c;
  mkkeyput(&c, &ida, NULL, NULL, topic, member, epoch, k);
  return run(r, &c);
}

static inline int walk_key(void *ctx, const uint8_t pk[32]) {
  char k[17];
  hex8(pk, k);
  walk_add(ctx, k);
  return walk_stop(ctx);
}

static inline int walk_epoch(void *ctx, uint32_t epoch, const uint8_t *blob,
                             size_t len) {
  char s[32];
  assert_int_equal(len, 214 + blob[5]);
  assert_int_equal(((uint32_t)blob[1] << 24 | (uint32_t)blob[2] << 16 |
                    (uint32_t)blob[3] << 8 | blob[4]),
                   epoch);
  snprintf(s, sizeof s, "e%u", epoch);
  walk_add(ctx, s);
  return walk_stop(ctx);
}

static inline int walk_acl(void *ctx, const char *topic,
                           const struct parley_reg_acl *a) {
  char s[300];
  snprintf(s, sizeof s, "%s:e%u:c%llu:m%u", topic, a->epoch,
           (unsigned long long)a->counter, a->members);
  walk_add(ctx, s);
  return walk_stop(ctx);
}

static inline const char *members_of(struct parley_registry *r,
                                     const char *topic) {
  static struct walk w;
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_member(r, topic, walk_key, &w), 0);
  return w.buf;
}

static inline const char *keys_of(struct parley_registry *r, const char *topic,
                                  const struct parley_identity *m) {
  static struct walk w;
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_key(r, topic, m->pk, walk_epoch, &w),
                   0);
  return w.buf;
}

/* "k1 k2 ..." of the identities' keys in ascending key order. */
static inline const char *sorted_ids(int n,
                                     const struct parley_identity **ids) {
  static char out[128];
  const struct parley_identity *v[4];
  size_t len = 0;
  memcpy(v, ids, (size_t)n * sizeof *v);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && memcmp(v[j - 1]->pk, v[j]->pk, 32) > 0; j--) {
      const struct parley_identity *t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  for (int i = 0; i < n; i++) {
    hex8(v[i]->pk, out + len);
    len += 16;
    out[len++] = ' ';
  }
  out[len] = '\0';
  return out;
}

static inline struct parley_registry *acl_reg(struct parley_reg_limits *lim) {
  struct parley_registry *r;
  acl_ids();
  assert_int_equal(parley_registry_new(lim, &r), PARLEY_OK);
  assert_int_equal(reg(r, ida.pk, 1, "a:1", "A"), PARLEY_OK);
  assert_int_equal(reg(r, idb.pk, 1, "b:1", "B"), PARLEY_OK);
  assert_int_equal(reg(r, idc.pk, 1, "c:1", "C"), PARLEY_OK);
  return r;
}

#endif
