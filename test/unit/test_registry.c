/*
 * test_registry.c — the registry state machine (registry.h) and its
 * single-node storage (regstore.h).
 *
 * Every test runs on a counting allocator: the teardown fails if a test
 * leaked, and the OOM tests fail the k-th allocation to check that a
 * refused command leaves no trace.  The determinism test runs 5 000
 * pseudo-random commands against two registries with different histories,
 * a restored copy and an independent model that encodes the expected
 * snapshot bytes itself.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "crypto/groupkey.h"
#include "crypto/identity.h"
#include "index/registry.h"
#include "index/regstore.h"


/* Counting, failure-injecting heap ----------------------------------------- */

struct heap {
  size_t live;     /* requested bytes not yet freed */
  size_t max_req;  /* largest single request since reset */
  long allocs;     /* successful allocations */
  long fail_after; /* fail when it reaches 0; -1 = never */
};
static struct heap heap = {0, 0, 0, -1};

#define HDR 16 /* keeps the user pointer 16-byte aligned */

static int heap_should_fail(void) {
  if (heap.fail_after < 0)
    return 0;
  if (heap.fail_after == 0)
    return 1;
  heap.fail_after--;
  return 0;
}

static void *t_malloc(void *ctx, size_t n) {
  uint8_t *p;
  (void)ctx;
  if (heap_should_fail())
    return NULL;
  p = malloc(HDR + n);
  if (p == NULL)
    return NULL;
  memcpy(p, &n, sizeof n);
  heap.live += n;
  heap.allocs++;
  if (n > heap.max_req)
    heap.max_req = n;
  return p + HDR;
}

static void t_free(void *ctx, void *q) {
  uint8_t *p = q;
  size_t n;
  (void)ctx;
  if (p == NULL)
    return;
  p -= HDR;
  memcpy(&n, p, sizeof n);
  heap.live -= n;
  free(p);
}

static void *t_realloc(void *ctx, void *q, size_t n) {
  uint8_t *p = q, *np;
  size_t old;
  if (p == NULL)
    return t_malloc(ctx, n);
  if (heap_should_fail())
    return NULL;
  p -= HDR;
  memcpy(&old, p, sizeof old);
  np = realloc(p, HDR + n);
  if (np == NULL)
    return NULL;
  memcpy(np, &n, sizeof n);
  heap.live = heap.live - old + n;
  heap.allocs++;
  if (n > heap.max_req)
    heap.max_req = n;
  return np + HDR;
}

static const struct parley_allocator counting = {t_malloc, t_realloc, t_free,
                                                 NULL};

static int setup(void **state) {
  (void)state;
  heap.fail_after = -1;
  heap.max_req = 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  heap.fail_after = -1;
  assert_int_equal(heap.live, 0); /* the test leaked */
  return 0;
}

/* Helpers ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void mkpk(uint8_t pk[32], unsigned i) {
  uint64_t save = rng_state;
  rng_state = 0x5eed0000ull + i;
  for (int j = 0; j < 32; j += 8) {
    uint64_t v = rng();
    memcpy(pk + j, &v, 8);
  }
  rng_state = save;
}

static void setstr(char *dst, size_t cap, const char *s) {
  size_t n = strlen(s);
  assert_true(n < cap);
  memcpy(dst, s, n + 1);
}

static struct parley_reg_cmd cmd(uint8_t type, const uint8_t *pk, int64_t ts,
                                 const char *addr, const char *name,
                                 const char *topic) {
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

static int reg(struct parley_registry *r, const uint8_t *pk, int64_t ts,
               const char *addr, const char *name) {
  struct parley_reg_cmd c = cmd(PARLEY_REG_REGISTER, pk, ts, addr, name, "");
  return parley_registry_apply(r, &c);
}

static int sub(struct parley_registry *r, const uint8_t *pk,
               const char *topic) {
  struct parley_reg_cmd c = cmd(PARLEY_REG_SUBSCRIBE, pk, 0, "", "", topic);
  return parley_registry_apply(r, &c);
}

static int unsub(struct parley_registry *r, const uint8_t *pk,
                 const char *topic) {
  struct parley_reg_cmd c = cmd(PARLEY_REG_UNSUBSCRIBE, pk, 0, "", "", topic);
  return parley_registry_apply(r, &c);
}

static int expire(struct parley_registry *r, const uint8_t *pk) {
  struct parley_reg_cmd c = cmd(PARLEY_REG_EXPIRE, pk, 0, "", "", "");
  return parley_registry_apply(r, &c);
}

static struct parley_registry *mkreg(uint32_t subs, uint32_t peers,
                                     uint32_t topic) {
  struct parley_reg_limits lim = {subs, peers, topic, 0, 0};
  struct parley_registry *r;
  assert_int_equal(parley_registry_new(&lim, &r), PARLEY_OK);
  return r;
}

static void hex8(const uint8_t *pk, char out[17]) {
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

static void rec_add(struct recorder *rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rec_add(struct recorder *rc, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(rc->buf + rc->len, sizeof rc->buf - rc->len, fmt, ap);
  va_end(ap);
  assert_true(n > 0 && (size_t)n < sizeof rc->buf - rc->len);
  rc->len += (size_t)n;
}

static void on_change(void *ctx, const struct parley_reg_change *ch) {
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

static void observe(struct parley_registry *r, struct recorder *rc) {
  struct parley_reg_observer o = {on_change, rc};
  rc->len = 0;
  rc->buf[0] = '\0';
  parley_registry_set_observer(r, &o);
}

static const char *events(struct recorder *rc) {
  static char out[sizeof rc->buf];
  memcpy(out, rc->buf, rc->len);
  out[rc->len] = '\0';
  rc->len = 0;
  return out;
}

static void snap_of(const struct parley_registry *r, struct parley_buf *b) {
  parley_buf_init(b, 64u << 20);
  assert_int_equal(parley_registry_snapshot(r, b), PARLEY_OK);
}

static void assert_same_state(const struct parley_registry *a,
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

static void walk_add(struct walk *w, const char *s) {
  size_t n = strlen(s);
  assert_true(w->len + n + 1 < sizeof w->buf);
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len++] = ' ';
  w->buf[w->len] = '\0';
}

static int walk_stop(struct walk *w) {
  w->calls++;
  return w->stop_after && w->calls == w->stop_after ? 7 : 0;
}

static int walk_peer(void *ctx, const struct parley_reg_peer *p) {
  char k[17];
  hex8(p->pk, k);
  walk_add(ctx, k);
  return walk_stop(ctx);
}

static int walk_name(void *ctx, const char *topic) {
  walk_add(ctx, topic);
  return walk_stop(ctx);
}

static int walk_topic(void *ctx, const char *topic, uint32_t n) {
  char s[300];
  snprintf(s, sizeof s, "%s=%u", topic, n);
  walk_add(ctx, s);
  return walk_stop(ctx);
}

static const char *key_text(unsigned i) {
  static char out[4][17];
  static int next;
  uint8_t pk[32];
  char *s = out[next++ & 3];
  mkpk(pk, i);
  hex8(pk, s);
  return s;
}

/* Commands and events ------------------------------------------------------ */

static void test_new_and_limits(void **state) {
  struct parley_reg_limits lim = {0, 0, PARLEY_MAX_TOPIC + 1, 0, 0};
  struct parley_registry *r = (void *)1;
  (void)state;

  assert_int_equal(parley_registry_new(&lim, &r), PARLEY_EINVAL);
  assert_null(r);
  assert_int_equal(parley_registry_new(NULL, &r), PARLEY_OK);
  assert_int_equal(parley_registry_peer_count(r), 0);
  assert_int_equal(parley_registry_topic_count(r), 0);
  parley_registry_free(r);
  parley_registry_free(NULL);
}

static void test_register_events(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct recorder rc;
  const struct parley_reg_peer *p;
  char line[64];
  uint8_t a[32];
  (void)state;

  mkpk(a, 1);
  observe(r, &rc);
  assert_null(parley_registry_peer(r, a));
  assert_int_equal(reg(r, a, 1000, "10.0.0.1:7000", "alice"), PARLEY_OK);
  snprintf(line, sizeof line, "UP %s 0\n", key_text(1));
  assert_string_equal(events(&rc), line);
  p = parley_registry_peer(r, a);
  assert_non_null(p);
  assert_memory_equal(p->pk, a, 32);
  assert_string_equal(p->addr, "10.0.0.1:7000");
  assert_string_equal(p->name, "alice");
  assert_int_equal(p->registered_ms, 1000);
  assert_int_equal(p->updated_ms, 1000);
  assert_int_equal(p->nsubs, 0);

  /* Same address and name: a lease renewal, no event. */
  assert_int_equal(reg(r, a, 2000, "10.0.0.1:7000", "alice"), PARLEY_OK);
  assert_string_equal(events(&rc), "");
  p = parley_registry_peer(r, a);
  assert_int_equal(p->registered_ms, 1000);
  assert_int_equal(p->updated_ms, 2000);

  /* New address, then new name: PEER_UP each time. */
  assert_int_equal(reg(r, a, 3000, "[::1]:7001", "alice"), PARLEY_OK);
  assert_string_equal(events(&rc), line);
  assert_int_equal(reg(r, a, 4000, "[::1]:7001", "Alice B."), PARLEY_OK);
  assert_string_equal(events(&rc), line);
  p = parley_registry_peer(r, a);
  assert_string_equal(p->addr, "[::1]:7001");
  assert_string_equal(p->name, "Alice B.");
  assert_int_equal(p->registered_ms, 1000);
  assert_int_equal(p->updated_ms, 4000);
  assert_int_equal(parley_registry_peer_count(r), 1);

  /* Timestamps are recorded, never compared: going back is fine. */
  assert_int_equal(reg(r, a, -5, "[::1]:7001", "Alice B."), PARLEY_OK);
  assert_int_equal(parley_registry_peer(r, a)->updated_ms, -5);
  parley_registry_free(r);
}

static void test_register_invalid(void **state) {
  static const char *bad_addr[] = {
      "",           "nohost",   ":7000",      "host:",      "host:0",
      "host:65536", "host:12x", "ho st:7000", "host:7000 ", "\x01host:7000",
      "[::1]7000",  "host:-1",  "\xc3\xa9:1",
  };
  struct parley_registry *r = mkreg(0, 0, 0);
  struct parley_reg_cmd c;
  struct recorder rc;
  uint8_t a[32];
  char name[PARLEY_MAX_NAME + 2];
  (void)state;

  mkpk(a, 1);
  observe(r, &rc);
  for (size_t i = 0; i < sizeof bad_addr / sizeof *bad_addr; i++) {
    c = cmd(PARLEY_REG_REGISTER, a, 1, bad_addr[i], "n", "");
    assert_int_equal(parley_registry_check(r, &c), PARLEY_EINVAL);
    assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);
  }
  /* Longest address: 96 bytes. */
  c = cmd(PARLEY_REG_REGISTER, a, 1, "", "", "");
  memset(c.addr, 'h', PARLEY_MAX_ADDR - 5);
  memcpy(c.addr + PARLEY_MAX_ADDR - 5, ":7000", 6);
  assert_int_equal(strlen(c.addr), PARLEY_MAX_ADDR);
  assert_int_equal(parley_registry_check(r, &c), PARLEY_OK);
  /* No NUL anywhere in the array. */
  memset(c.addr, 'h', sizeof c.addr);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);

  /* Names are UTF-8 without control characters. */
  {
    static const char *bad_name[] = {
        "tab\there", "nl\n",     "del\x7f",      "c1 \xc2\x85",      "\xff",
        "trunc\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
    };
    for (size_t i = 0; i < sizeof bad_name / sizeof *bad_name; i++) {
      c = cmd(PARLEY_REG_REGISTER, a, 1, "h:1", bad_name[i], "");
      assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);
    }
  }
  c = cmd(PARLEY_REG_REGISTER, a, 1, "h:1", "Zo\xc3\xab \xe2\x9c\x93 \xc2\xa0",
          "");
  assert_int_equal(parley_registry_check(r, &c), PARLEY_OK);
  memset(name, 'n', sizeof name);
  name[PARLEY_MAX_NAME] = '\0';
  c = cmd(PARLEY_REG_REGISTER, a, 1, "h:1", name, "");
  assert_int_equal(parley_registry_check(r, &c), PARLEY_OK);
  memset(c.name, 'n', sizeof c.name);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);

  c = cmd(0, a, 1, "h:1", "n", "");
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);
  c.type = 5;
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_EINVAL);

  assert_int_equal(parley_registry_peer_count(r), 0);
  assert_string_equal(events(&rc), "");
  /* An empty name is fine. */
  assert_int_equal(reg(r, a, 1, "h:1", ""), PARLEY_OK);
  parley_registry_free(r);
}

static void test_subscribe(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct recorder rc;
  struct walk w;
  char exp[256], topic[PARLEY_DEFAULT_MAX_TOPIC + 2];
  uint8_t a[32], b[32];
  (void)state;

  mkpk(a, 1);
  mkpk(b, 2);
  observe(r, &rc);
  assert_int_equal(sub(r, a, "news"), PARLEY_EUNKNOWNPEER);
  assert_int_equal(parley_registry_topic_count(r), 0);
  assert_int_equal(reg(r, a, 1, "a:1", "a"), PARLEY_OK);
  assert_int_equal(reg(r, b, 1, "b:1", "b"), PARLEY_OK);
  (void)events(&rc);

  assert_int_equal(sub(r, a, "news"), PARLEY_OK);
  snprintf(exp, sizeof exp, "ADD %s news 1\n", key_text(1));
  assert_string_equal(events(&rc), exp);
  assert_int_equal(sub(r, a, "news"), PARLEY_OK); /* idempotent */
  assert_string_equal(events(&rc), "");
  assert_int_equal(sub(r, b, "news"), PARLEY_OK);
  assert_int_equal(sub(r, a, "alpha"), PARLEY_OK);
  assert_int_equal(sub(r, a, "Zulu"), PARLEY_OK);
  snprintf(exp, sizeof exp, "ADD %s news 1\nADD %s alpha 2\nADD %s Zulu 3\n",
           key_text(2), key_text(1), key_text(1));
  assert_string_equal(events(&rc), exp);
  assert_int_equal(parley_registry_topic_count(r), 3);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 3);
  assert_int_equal(parley_registry_peer(r, b)->nsubs, 1);

  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_sub_of(r, a, walk_name, &w), 0);
  assert_string_equal(w.buf, "Zulu alpha news "); /* byte order */
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_topic(r, walk_topic, &w), 0);
  assert_string_equal(w.buf, "Zulu=1 alpha=1 news=2 ");
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_subscriber(r, "news", walk_peer, &w),
                   0);
  /* Subscribers come in key order whatever the subscription order. */
  if (memcmp(a, b, 32) < 0)
    snprintf(exp, sizeof exp, "%s %s ", key_text(1), key_text(2));
  else
    snprintf(exp, sizeof exp, "%s %s ", key_text(2), key_text(1));
  assert_string_equal(w.buf, exp);

  /* Malformed topics. */
  assert_int_equal(sub(r, a, ""), PARLEY_EINVAL);
  assert_int_equal(sub(r, a, "@direct"), PARLEY_EINVAL);
  assert_int_equal(sub(r, a, "two words"), PARLEY_EINVAL);
  assert_int_equal(sub(r, a, "tab\t"), PARLEY_EINVAL);
  assert_int_equal(sub(r, a, "\x7f"), PARLEY_EINVAL);
  memset(topic, 't', sizeof topic);
  topic[PARLEY_DEFAULT_MAX_TOPIC + 1] = '\0'; /* 129 bytes */
  assert_int_equal(sub(r, a, topic), PARLEY_EINVAL);
  assert_int_equal(unsub(r, a, topic), PARLEY_EINVAL);
  topic[PARLEY_DEFAULT_MAX_TOPIC] = '\0'; /* 128 bytes */
  assert_int_equal(sub(r, a, topic), PARLEY_OK);
  assert_int_equal(sub(r, a, "a@b"), PARLEY_OK);
  (void)events(&rc);
  parley_registry_free(r);
}

static void test_unsubscribe(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct recorder rc;
  char exp[256];
  uint8_t a[32], b[32], c[32];
  (void)state;

  mkpk(a, 1);
  mkpk(b, 2);
  mkpk(c, 3);
  assert_int_equal(reg(r, a, 1, "a:1", "a"), PARLEY_OK);
  assert_int_equal(reg(r, b, 1, "b:1", "b"), PARLEY_OK);
  assert_int_equal(sub(r, a, "t1"), PARLEY_OK);
  assert_int_equal(sub(r, a, "t2"), PARLEY_OK);
  assert_int_equal(sub(r, b, "t1"), PARLEY_OK);
  observe(r, &rc);

  assert_int_equal(unsub(r, a, "t1"), PARLEY_OK);
  snprintf(exp, sizeof exp, "DEL %s t1 1\n", key_text(1));
  assert_string_equal(events(&rc), exp);
  assert_int_equal(parley_registry_topic_count(r), 2);
  assert_int_equal(unsub(r, a, "t1"), PARLEY_OK); /* missing: no-op */
  assert_int_equal(unsub(r, a, "nosuch"), PARLEY_OK);
  assert_int_equal(unsub(r, c, "t1"), PARLEY_OK); /* unknown peer */
  assert_string_equal(events(&rc), "");
  assert_int_equal(unsub(r, a, "t2"), PARLEY_OK);
  snprintf(exp, sizeof exp, "DEL %s t2 0\n", key_text(1));
  assert_string_equal(events(&rc), exp);
  /* The empty topic is gone. */
  assert_int_equal(parley_registry_topic_count(r), 1);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 0);
  assert_int_equal(unsub(r, b, "t1"), PARLEY_OK);
  assert_int_equal(parley_registry_topic_count(r), 0);
  (void)events(&rc);
  parley_registry_free(r);
}

static void test_expire(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct recorder rc;
  struct walk w;
  char exp[512];
  uint8_t a[32], b[32], c[32];
  (void)state;

  mkpk(a, 1);
  mkpk(b, 2);
  mkpk(c, 3);
  assert_int_equal(reg(r, a, 10, "a:1", "a"), PARLEY_OK);
  assert_int_equal(reg(r, b, 10, "b:1", "b"), PARLEY_OK);
  assert_int_equal(sub(r, a, "zeta"), PARLEY_OK);
  assert_int_equal(sub(r, a, "alpha"), PARLEY_OK);
  assert_int_equal(sub(r, a, "mid"), PARLEY_OK);
  assert_int_equal(sub(r, b, "mid"), PARLEY_OK);
  observe(r, &rc);

  assert_int_equal(expire(r, c), PARLEY_OK); /* unknown: no-op */
  assert_string_equal(events(&rc), "");
  assert_int_equal(expire(r, a), PARLEY_OK);
  snprintf(exp, sizeof exp,
           "DEL %s alpha 2\nDEL %s mid 1\nDEL %s zeta 0\nDOWN %s 0\n",
           key_text(1), key_text(1), key_text(1), key_text(1));
  assert_string_equal(events(&rc), exp);
  assert_null(parley_registry_peer(r, a));
  assert_int_equal(parley_registry_peer_count(r), 1);
  assert_int_equal(parley_registry_topic_count(r), 1); /* "mid" stays */
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_subscriber(r, "mid", walk_peer, &w),
                   0);
  snprintf(exp, sizeof exp, "%s ", key_text(2));
  assert_string_equal(w.buf, exp);
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_sub_of(r, a, walk_name, &w), 0);
  assert_int_equal(w.calls, 0);
  assert_int_equal(expire(r, a), PARLEY_OK);
  assert_string_equal(events(&rc), "");

  /* Registering again starts afresh. */
  assert_int_equal(reg(r, a, 99, "a:2", "a"), PARLEY_OK);
  assert_int_equal(parley_registry_peer(r, a)->registered_ms, 99);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 0);
  (void)events(&rc);
  parley_registry_free(r);
}

static void test_register_keeps_subs(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  uint8_t a[32];
  (void)state;

  mkpk(a, 1);
  assert_int_equal(reg(r, a, 1, "a:1", "a"), PARLEY_OK);
  assert_int_equal(sub(r, a, "x"), PARLEY_OK);
  assert_int_equal(sub(r, a, "y"), PARLEY_OK);
  assert_int_equal(reg(r, a, 2, "a:2", "renamed"), PARLEY_OK);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 2);
  assert_int_equal(parley_registry_topic_count(r), 2);
  parley_registry_free(r);
}

static void test_limits(void **state) {
  struct parley_registry *r = mkreg(2, 2, 8);
  struct parley_reg_cmd c;
  struct parley_buf before, after;
  uint8_t a[32], b[32], d[32];
  (void)state;

  mkpk(a, 1);
  mkpk(b, 2);
  mkpk(d, 3);
  assert_int_equal(reg(r, a, 1, "a:1", "a"), PARLEY_OK);
  assert_int_equal(reg(r, b, 1, "b:1", "b"), PARLEY_OK);
  c = cmd(PARLEY_REG_REGISTER, d, 1, "d:1", "d", "");
  assert_int_equal(parley_registry_check(r, &c), PARLEY_ELIMIT);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_ELIMIT);
  assert_int_equal(reg(r, a, 2, "a:9", "a"), PARLEY_OK); /* existing */
  assert_int_equal(expire(r, b), PARLEY_OK);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_OK);

  assert_int_equal(sub(r, a, "t1"), PARLEY_OK);
  assert_int_equal(sub(r, a, "t2"), PARLEY_OK);
  c = cmd(PARLEY_REG_SUBSCRIBE, a, 0, "", "", "t3");
  snap_of(r, &before);
  assert_int_equal(parley_registry_check(r, &c), PARLEY_ELIMIT);
  assert_int_equal(parley_registry_apply(r, &c), PARLEY_ELIMIT);
  snap_of(r, &after);
  assert_int_equal(before.len, after.len);
  assert_memory_equal(before.data, after.data, before.len);
  assert_int_equal(sub(r, a, "t2"), PARLEY_OK); /* already: not a new sub */
  assert_int_equal(unsub(r, a, "t1"), PARLEY_OK);
  assert_int_equal(sub(r, a, "t3"), PARLEY_OK);
  assert_int_equal(parley_registry_peer(r, a)->nsubs, 2);

  /* max_topic_len 8. */
  assert_int_equal(sub(r, d, "12345678"), PARLEY_OK);
  assert_int_equal(sub(r, d, "123456789"), PARLEY_EINVAL);
  /* Checks of well-formedness come before the peer lookup. */
  assert_int_equal(sub(r, b, "123456789"), PARLEY_EINVAL);
  assert_int_equal(sub(r, b, "ok"), PARLEY_EUNKNOWNPEER);
  parley_buf_close(&before);
  parley_buf_close(&after);
  parley_registry_free(r);
}

static void test_foreach_order_and_stop(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct walk w;
  uint8_t pk[32];
  struct walk exp;
  unsigned order[20];
  (void)state;

  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_peer(r, walk_peer, &w), 0);
  assert_int_equal(parley_registry_foreach_topic(r, walk_topic, &w), 0);
  assert_int_equal(parley_registry_foreach_subscriber(r, "none", walk_peer, &w),
                   0);
  mkpk(pk, 1);
  assert_int_equal(parley_registry_foreach_sub_of(r, pk, walk_name, &w), 0);
  assert_int_equal(w.calls, 0);

  for (unsigned i = 0; i < 20; i++) {
    mkpk(pk, 19 - i);
    assert_int_equal(reg(r, pk, i, "h:1", "x"), PARLEY_OK);
    assert_int_equal(sub(r, pk, "all"), PARLEY_OK);
  }
  /* Expected: keys sorted by bytes (selection sort over the 20 keys). */
  for (unsigned i = 0; i < 20; i++)
    order[i] = i;
  for (unsigned i = 0; i < 20; i++)
    for (unsigned j = i + 1; j < 20; j++) {
      uint8_t x[32], y[32];
      mkpk(x, order[i]);
      mkpk(y, order[j]);
      if (memcmp(x, y, 32) > 0) {
        unsigned t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
  memset(&exp, 0, sizeof exp);
  for (unsigned i = 0; i < 20; i++)
    walk_add(&exp, key_text(order[i]));
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_peer(r, walk_peer, &w), 0);
  assert_string_equal(w.buf, exp.buf);
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_subscriber(r, "all", walk_peer, &w),
                   0);
  assert_string_equal(w.buf, exp.buf);

  /* A non-zero return stops the walk and is returned. */
  memset(&w, 0, sizeof w);
  w.stop_after = 3;
  assert_int_equal(parley_registry_foreach_peer(r, walk_peer, &w), 7);
  assert_int_equal(w.calls, 3);
  memset(&w, 0, sizeof w);
  w.stop_after = 5;
  assert_int_equal(parley_registry_foreach_subscriber(r, "all", walk_peer, &w),
                   7);
  assert_int_equal(w.calls, 5);
  mkpk(pk, 4);
  assert_int_equal(sub(r, pk, "b"), PARLEY_OK);
  assert_int_equal(sub(r, pk, "c"), PARLEY_OK);
  memset(&w, 0, sizeof w);
  w.stop_after = 2;
  assert_int_equal(parley_registry_foreach_sub_of(r, pk, walk_name, &w), 7);
  assert_string_equal(w.buf, "all b ");
  memset(&w, 0, sizeof w);
  w.stop_after = 1;
  assert_int_equal(parley_registry_foreach_topic(r, walk_topic, &w), 7);
  assert_string_equal(w.buf, "all=20 ");
  parley_registry_free(r);
}

/* Command codec ------------------------------------------------------------ */

static void test_codec_bytes(void **state) {
  struct parley_reg_cmd c, d;
  uint8_t buf[600], exp[600];
  size_t n, e = 0;
  uint8_t pk[32];
  (void)state;

  for (int i = 0; i < 32; i++)
    pk[i] = (uint8_t)i;
  c = cmd(PARLEY_REG_SUBSCRIBE, pk, 0x0102030405060708ll, "h:1", "nm", "tp");
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  exp[0] = PARLEY_REG_SUBSCRIBE;
  e = 1;
  memcpy(exp + e, pk, 32);
  e += 32;
  for (int i = 1; i <= 8; i++)
    exp[e++] = (uint8_t)i;
  memcpy(exp + e, "\x03h:1\x02nm\x02tp", 10);
  e += 10;
  assert_int_equal(n, e);
  assert_int_equal(n, 44 + 7);
  assert_memory_equal(buf, exp, e);

  assert_int_equal(parley_reg_cmd_decode(buf, n, &d), PARLEY_OK);
  assert_int_equal(d.type, PARLEY_REG_SUBSCRIBE);
  assert_memory_equal(d.pk, pk, 32);
  assert_int_equal(d.ts_ms, 0x0102030405060708ll);
  assert_string_equal(d.addr, "h:1");
  assert_string_equal(d.name, "nm");
  assert_string_equal(d.topic, "tp");

  /* Negative timestamps travel as two's complement. */
  c.ts_ms = -2;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  assert_memory_equal(buf + 33, "\xff\xff\xff\xff\xff\xff\xff\xfe", 8);
  assert_int_equal(parley_reg_cmd_decode(buf, n, &d), PARLEY_OK);
  assert_int_equal(d.ts_ms, -2);
  c.ts_ms = INT64_MIN;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(parley_reg_cmd_decode(buf, n, &d), PARLEY_OK);
  assert_true(d.ts_ms == INT64_MIN);

  /* Too small a buffer: ETOOBIG and the size needed. */
  assert_int_equal(parley_reg_cmd_encode(&c, buf, 50, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, 51);
  assert_int_equal(parley_reg_cmd_encode(&c, NULL, 0, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, 51);
  assert_int_equal(parley_reg_cmd_encode(&c, buf, 51, &n), PARLEY_OK);
  /* Unterminated field or unknown type. */
  d = c;
  memset(d.topic, 'x', sizeof d.topic);
  assert_int_equal(parley_reg_cmd_encode(&d, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  d = c;
  d.type = 9;
  assert_int_equal(parley_reg_cmd_encode(&d, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
}

static void test_codec_errors(void **state) {
  struct parley_reg_cmd c, d;
  uint8_t buf[600], bad[600];
  size_t n;
  uint8_t pk[32];
  (void)state;

  mkpk(pk, 7);
  c = cmd(PARLEY_REG_REGISTER, pk, 5, "host:1", "name", "");
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 44 + 6 + 4);
  for (size_t i = 0; i < n; i++) {
    memset(&d, 0x5a, sizeof d);
    assert_int_equal(parley_reg_cmd_decode(buf, i, &d), PARLEY_EPROTO);
    assert_int_equal(d.type, 0); /* zeroed on failure */
  }
  assert_int_equal(parley_reg_cmd_decode(NULL, 0, &d), PARLEY_EPROTO);
  memcpy(bad, buf, n);
  bad[n] = 0;
  assert_int_equal(parley_reg_cmd_decode(bad, n + 1, &d), PARLEY_EPROTO);
  /* As GRANT or KEY_PUT the same bytes are data chunks of 6 and 4 bytes:
   * not canonical (only a full 255-byte chunk may be followed). */
  for (int t = 0; t < 256; t++) {
    bad[0] = (uint8_t)t;
    assert_int_equal(parley_reg_cmd_decode(bad, n, &d),
                     t >= 1 && t <= 4 ? PARLEY_OK : PARLEY_EPROTO);
  }
  /* A NUL inside a string cannot survive the struct: refused. */
  memcpy(bad, buf, n);
  bad[42 + 2] = '\0';
  assert_int_equal(parley_reg_cmd_decode(bad, n, &d), PARLEY_EPROTO);
  /* Over-long fields (lengths past the caps). */
  memset(bad, 'a', sizeof bad);
  bad[0] = 1;
  memset(bad + 1, 0, 40);
  bad[41] = PARLEY_MAX_ADDR + 1;
  bad[41 + 1 + PARLEY_MAX_ADDR + 1] = 0;
  bad[41 + 1 + PARLEY_MAX_ADDR + 2] = 0;
  assert_int_equal(parley_reg_cmd_decode(bad, 41 + 3 + PARLEY_MAX_ADDR + 1, &d),
                   PARLEY_EPROTO);
  bad[41] = PARLEY_MAX_ADDR;
  bad[41 + 1 + PARLEY_MAX_ADDR] = 0;
  bad[41 + 1 + PARLEY_MAX_ADDR + 1] = 0;
  assert_int_equal(parley_reg_cmd_decode(bad, 41 + 3 + PARLEY_MAX_ADDR, &d),
                   PARLEY_OK);
  bad[41] = 0;
  bad[42] = PARLEY_MAX_NAME + 1;
  bad[43 + PARLEY_MAX_NAME + 1] = 0;
  assert_int_equal(parley_reg_cmd_decode(bad, 44 + PARLEY_MAX_NAME + 1, &d),
                   PARLEY_EPROTO);
  /* Longest topic (255) is fine; the codec checks framing, not meaning. */
  bad[42] = 0;
  bad[43] = 255;
  memset(bad + 44, 't', 255);
  assert_int_equal(parley_reg_cmd_decode(bad, 44 + 255, &d), PARLEY_OK);
  assert_int_equal(strlen(d.topic), 255);
}

/* Snapshot ----------------------------------------------------------------- */

/* A tiny independent snapshot writer for crafted inputs. */
struct sbuild {
  uint8_t b[8192];
  size_t n;
};

static void sb_bytes(struct sbuild *s, const void *p, size_t n) {
  assert_true(s->n + n <= sizeof s->b);
  memcpy(s->b + s->n, p, n);
  s->n += n;
}

static void sb_u32(struct sbuild *s, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  sb_bytes(s, b, 4);
}

static void sb_u64(struct sbuild *s, uint64_t v) {
  sb_u32(s, (uint32_t)(v >> 32));
  sb_u32(s, (uint32_t)v);
}

static void sb_str8(struct sbuild *s, const char *str) {
  uint8_t l = (uint8_t)strlen(str);
  sb_bytes(s, &l, 1);
  sb_bytes(s, str, l);
}

static void sb_peer(struct sbuild *s, uint8_t keybyte, const char *addr,
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

static void test_snapshot_bytes(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct parley_buf b;
  struct sbuild s = {{0}, 0};
  static const char *t2[] = {"a", "b"};
  uint8_t k1[32], k2[32];
  (void)state;

  memset(k1, 0x11, 32);
  memset(k2, 0x22, 32);
  /* Inserted out of order on purpose. */
  assert_int_equal(reg(r, k2, 100, "h2:2", ""), PARLEY_OK);
  assert_int_equal(reg(r, k1, 100, "h1:1", "one"), PARLEY_OK);
  assert_int_equal(reg(r, k1, 200, "h1:1", "one"), PARLEY_OK);
  assert_int_equal(reg(r, k2, 200, "h2:2", ""), PARLEY_OK);
  assert_int_equal(sub(r, k2, "b"), PARLEY_OK);
  assert_int_equal(sub(r, k2, "a"), PARLEY_OK);
  snap_of(r, &b);

  sb_bytes(&s, "PRG2", 4);
  sb_u32(&s, 2);
  sb_peer(&s, 0x11, "h1:1", "one", 0, NULL);
  sb_peer(&s, 0x22, "h2:2", "", 2, t2);
  sb_u32(&s, 0); /* no private topics */
  assert_int_equal(b.len, s.n);
  assert_memory_equal(b.data, s.b, s.n);

  /* Appends to what the buffer already holds. */
  b.len = 3;
  assert_int_equal(parley_registry_snapshot(r, &b), PARLEY_OK);
  assert_int_equal(b.len, 3 + s.n);
  assert_memory_equal(b.data + 3, s.b, s.n);
  /* Too small a cap: error, buffer as before. */
  parley_buf_close(&b);
  parley_buf_init(&b, 20);
  assert_int_equal(parley_registry_snapshot(r, &b), PARLEY_ETOOBIG);
  assert_int_equal(b.len, 0);
  parley_buf_close(&b);

  /* The empty state. */
  parley_registry_free(r);
  r = mkreg(0, 0, 0);
  snap_of(r, &b);
  assert_int_equal(b.len, 12);
  assert_memory_equal(b.data, "PRG2\0\0\0\0\0\0\0\0", 12);
  assert_int_equal(parley_registry_restore(r, b.data, b.len), PARLEY_OK);
  parley_buf_close(&b);
  parley_registry_free(r);
}

/* Builds the same state in two orders; snapshots must be byte-equal. */
static void test_snapshot_canonical(void **state) {
  struct parley_registry *a = mkreg(0, 0, 0), *b = mkreg(0, 0, 0);
  struct parley_buf sa, sb2;
  uint8_t pk[32];
  char topic[16];
  (void)state;

  for (unsigned i = 0; i < 200; i++) {
    mkpk(pk, i);
    assert_int_equal(reg(a, pk, i, "h:1", "n"), PARLEY_OK);
    for (unsigned t = 0; t < i % 7; t++) {
      snprintf(topic, sizeof topic, "t%u", (i * 13 + t) % 31);
      assert_int_equal(sub(a, pk, topic), PARLEY_OK);
    }
  }
  /* b: reverse order, with churn that leaves no trace. */
  for (unsigned i = 300; i < 400; i++) {
    mkpk(pk, i);
    assert_int_equal(reg(b, pk, 0, "x:1", "x"), PARLEY_OK);
    assert_int_equal(sub(b, pk, "churn"), PARLEY_OK);
  }
  for (unsigned i = 200; i-- > 0;) {
    mkpk(pk, i);
    assert_int_equal(reg(b, pk, i, "h:1", "n"), PARLEY_OK);
    for (unsigned t = i % 7; t-- > 0;) {
      snprintf(topic, sizeof topic, "t%u", (i * 13 + t) % 31);
      assert_int_equal(sub(b, pk, "tmp"), PARLEY_OK);
      assert_int_equal(sub(b, pk, topic), PARLEY_OK);
      assert_int_equal(unsub(b, pk, "tmp"), PARLEY_OK);
    }
  }
  for (unsigned i = 300; i < 400; i++) {
    mkpk(pk, i);
    assert_int_equal(expire(b, pk), PARLEY_OK);
  }
  assert_same_state(a, b);

  /* snapshot -> restore -> snapshot. */
  snap_of(a, &sa);
  assert_int_equal(parley_registry_restore(b, sa.data, sa.len), PARLEY_OK);
  snap_of(b, &sb2);
  assert_int_equal(sa.len, sb2.len);
  assert_memory_equal(sa.data, sb2.data, sa.len);
  assert_int_equal(parley_registry_peer_count(b), 200);
  assert_int_equal(parley_registry_topic_count(b),
                   parley_registry_topic_count(a));
  /* The restored registry keeps working like the original. */
  mkpk(pk, 5);
  assert_int_equal(expire(a, pk), PARLEY_OK);
  assert_int_equal(expire(b, pk), PARLEY_OK);
  assert_int_equal(sub(a, pk, "x"), PARLEY_EUNKNOWNPEER);
  mkpk(pk, 6);
  assert_int_equal(sub(a, pk, "t0"), PARLEY_OK);
  assert_int_equal(sub(b, pk, "t0"), PARLEY_OK);
  assert_same_state(a, b);
  parley_buf_close(&sa);
  parley_buf_close(&sb2);
  parley_registry_free(a);
  parley_registry_free(b);
}

static void restore_expect(struct parley_registry *r, const struct sbuild *s,
                           int want) {
  static const uint8_t empty[8] = {'P', 'R', 'G', '1', 0, 0, 0, 0};
  uint8_t k[32];
  /* Start from a non-empty state: a failed restore must empty it. */
  assert_int_equal(parley_registry_restore(r, empty, sizeof empty), PARLEY_OK);
  memset(k, 0xee, 32);
  assert_int_equal(reg(r, k, 1, "prior:1", "p"), PARLEY_OK);
  assert_int_equal(sub(r, k, "prior"), PARLEY_OK);
  assert_int_equal(parley_registry_restore(r, s->b, s->n), want);
  if (want != PARLEY_OK) {
    assert_int_equal(parley_registry_peer_count(r), 0);
    assert_int_equal(parley_registry_topic_count(r), 0);
  }
}

static void test_restore_crafted(void **state) {
  struct parley_registry *r = mkreg(3, 4, 8);
  struct sbuild s;
  static const char *ab[] = {"a", "b"}, *ba[] = {"b", "a"}, *aa[] = {"a", "a"},
                    *at[] = {"@x"}, *longt[] = {"123456789"},
                    *four[] = {"a", "b", "c", "d"}, *sp[] = {"a b"},
                    *prefix[] = {"ab", "abc"}, *prefix2[] = {"abc", "ab"};
  (void)state;

#define CASE(want, ...)                                                        \
  do {                                                                         \
    memset(&s, 0, sizeof s);                                                   \
    sb_bytes(&s, "PRG1", 4);                                                   \
    __VA_ARGS__;                                                               \
    restore_expect(r, &s, want);                                               \
  } while (0)

  CASE(PARLEY_OK, sb_u32(&s, 0));
  CASE(PARLEY_OK, sb_u32(&s, 2); sb_peer(&s, 1, "h:1", "", 2, ab);
       sb_peer(&s, 2, "[::1]:9", "two", 2, prefix));
  assert_int_equal(parley_registry_peer_count(r), 2);
  assert_int_equal(parley_registry_topic_count(r), 4);
  CASE(PARLEY_EPROTO, sb_u32(&s, 1)); /* count but no peer */
  CASE(PARLEY_EPROTO, sb_u32(&s, 0); sb_bytes(&s, "", 1)); /* trailing */
  CASE(PARLEY_EPROTO, sb_u32(&s, 2); sb_peer(&s, 1, "h:1", "", 0, NULL);
       sb_peer(&s, 1, "h:1", "", 0, NULL)); /* duplicate peer */
  CASE(PARLEY_EPROTO, sb_u32(&s, 2); sb_peer(&s, 2, "h:1", "", 0, NULL);
       sb_peer(&s, 1, "h:1", "", 0, NULL)); /* unsorted peers */
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:1", "", 2, ba));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:1", "", 2, aa));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:1", "", 2, prefix2));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:1", "", 1, at));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:1", "", 1, sp));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:1", "", 1, longt));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:1", "", 4, four));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "", "", 0, NULL));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:0", "", 0, NULL));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "nohost", "", 0, NULL));
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); sb_peer(&s, 1, "h:1", "\n", 0, NULL));
  CASE(PARLEY_EPROTO, sb_u32(&s, 5); /* max_peers is 4 */
       for (int i = 1; i <= 5; i++)
           sb_peer(&s, (uint8_t)i, "h:1", "", 0, NULL));
  CASE(PARLEY_OK, sb_u32(&s, 4); for (int i = 1; i <= 4; i++)
           sb_peer(&s, (uint8_t)i, "h:1", "", 0, NULL));
  /* An empty topic string. */
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); uint8_t k[32] = {1}; sb_bytes(&s, k, 32);
       sb_str8(&s, "h:1"); sb_str8(&s, ""); sb_u64(&s, 1); sb_u64(&s, 1);
       sb_u32(&s, 1); sb_str8(&s, ""));
  /* Over-long name and address lengths. */
  CASE(PARLEY_EPROTO, sb_u32(&s, 1); uint8_t k[32] = {1}; sb_bytes(&s, k, 32);
       sb_str8(&s, "h:1"); uint8_t l = PARLEY_MAX_NAME + 1; sb_bytes(&s, &l, 1);
       for (int i = 0; i < l; i++) sb_bytes(&s, "n", 1); sb_u64(&s, 1);
       sb_u64(&s, 1); sb_u32(&s, 0));
  /* Wrong magic; and PRG2 without its private-topic count. */
  memset(&s, 0, sizeof s);
  sb_bytes(&s, "PRG3", 4);
  sb_u32(&s, 0);
  restore_expect(r, &s, PARLEY_EPROTO);
  memset(&s, 0, sizeof s);
  sb_bytes(&s, "PRG2", 4);
  sb_u32(&s, 0);
  restore_expect(r, &s, PARLEY_EPROTO);
  memset(&s, 0, sizeof s);
  restore_expect(r, &s, PARLEY_EPROTO);
  assert_int_equal(parley_registry_restore(r, NULL, 0), PARLEY_EPROTO);
#undef CASE
  parley_registry_free(r);
}

/* Huge counts in a small input must not turn into huge allocations. */
static void test_restore_alloc_bound(void **state) {
  struct parley_registry *r = mkreg(UINT32_MAX, 0, 0);
  struct sbuild s;
  (void)state;

  memset(&s, 0, sizeof s);
  sb_bytes(&s, "PRG1", 4);
  sb_u32(&s, UINT32_MAX);
  sb_peer(&s, 1, "h:1", "", 0, NULL);
  heap.max_req = 0;
  assert_int_equal(parley_registry_restore(r, s.b, s.n), PARLEY_EPROTO);
  assert_true(heap.max_req < 4096);

  memset(&s, 0, sizeof s);
  sb_bytes(&s, "PRG1", 4);
  sb_u32(&s, 1);
  sb_peer(&s, 1, "h:1", "", 0, NULL);
  s.n -= 4;
  sb_u32(&s, UINT32_MAX); /* topic count */
  sb_str8(&s, "a");
  heap.max_req = 0;
  assert_int_equal(parley_registry_restore(r, s.b, s.n), PARLEY_EPROTO);
  assert_true(heap.max_req < 4096);
  parley_registry_free(r);
}

/* Builds a varied registry for corruption tests. */
static void fill_sample(struct parley_registry *r) {
  static const char *topics[] = {"news", "a", "news.eu", "Z", "x-y"};
  uint8_t pk[32];
  for (unsigned i = 0; i < 5; i++) {
    mkpk(pk, i);
    assert_int_equal(reg(r, pk, (int64_t)i * 1000 - 1,
                         i % 2 ? "[::1]:80" : "h:9", i % 3 ? "peer" : ""),
                     PARLEY_OK);
    for (unsigned t = 0; t <= i; t++)
      assert_int_equal(sub(r, pk, topics[(i + t) % 5]), PARLEY_OK);
  }
}

static void test_restore_corrupt(void **state) {
  static const uint8_t masks[] = {0x01, 0x02, 0x10, 0x80, 0xff};
  struct parley_registry *src = mkreg(0, 0, 0), *r = mkreg(0, 0, 0);
  struct parley_buf good;
  uint8_t *m;
  int proto = 0, ok = 0;
  (void)state;

  fill_sample(src);
  snap_of(src, &good);
  m = malloc(good.len);
  assert_non_null(m);

  /* Every truncation fails and leaves an empty state. */
  for (size_t n = 0; n < good.len; n++) {
    assert_int_equal(parley_registry_restore(r, good.data, good.len),
                     PARLEY_OK);
    memcpy(m, good.data, n);
    assert_int_equal(parley_registry_restore(r, m, n), PARLEY_EPROTO);
    assert_int_equal(parley_registry_peer_count(r), 0);
    assert_int_equal(parley_registry_topic_count(r), 0);
  }
  /* Every flipped byte either fails cleanly or restores a state whose
   * snapshot is exactly the mutated input (canonical). */
  for (size_t i = 0; i < good.len; i++)
    for (size_t j = 0; j < sizeof masks; j++) {
      int rc;
      memcpy(m, good.data, good.len);
      m[i] ^= masks[j];
      assert_int_equal(parley_registry_restore(r, good.data, good.len),
                       PARLEY_OK);
      rc = parley_registry_restore(r, m, good.len);
      if (rc == PARLEY_OK) {
        struct parley_buf again;
        snap_of(r, &again);
        assert_int_equal(again.len, good.len);
        assert_memory_equal(again.data, m, good.len);
        parley_buf_close(&again);
        ok++;
      } else {
        assert_int_equal(rc, PARLEY_EPROTO);
        assert_int_equal(parley_registry_peer_count(r), 0);
        assert_int_equal(parley_registry_topic_count(r), 0);
        proto++;
      }
      if (i < 8) /* magic, or a peer count that no longer matches */
        assert_int_equal(rc, PARLEY_EPROTO);
    }
  /* Both outcomes occur (timestamps flip harmlessly, lengths do not). */
  assert_true(ok > 50);
  assert_true(proto > 50);
  free(m);
  parley_buf_close(&good);
  parley_registry_free(src);
  parley_registry_free(r);
}

static void test_restore_limits(void **state) {
  struct parley_registry *big = mkreg(0, 0, 0), *r;
  struct parley_buf b;
  uint8_t pk[32];
  (void)state;

  fill_sample(big); /* 5 peers, up to 5 subs, topics up to 7 bytes */
  snap_of(big, &b);
  r = mkreg(4, 0, 0);
  assert_int_equal(parley_registry_restore(r, b.data, b.len), PARLEY_EPROTO);
  parley_registry_free(r);
  r = mkreg(0, 4, 0);
  assert_int_equal(parley_registry_restore(r, b.data, b.len), PARLEY_EPROTO);
  parley_registry_free(r);
  r = mkreg(0, 0, 6);
  assert_int_equal(parley_registry_restore(r, b.data, b.len), PARLEY_EPROTO);
  parley_registry_free(r);
  r = mkreg(5, 5, 7);
  assert_int_equal(parley_registry_restore(r, b.data, b.len), PARLEY_OK);
  mkpk(pk, 4);
  assert_int_equal(parley_registry_peer(r, pk)->nsubs, 5);
  assert_same_state(big, r);
  parley_registry_free(r);
  parley_buf_close(&b);
  parley_registry_free(big);
}

/* Out of memory
 * ---------------------------------------------------------------- */

static void test_oom_apply(void **state) {
  struct parley_registry *r = mkreg(4, 0, 0), *ref = mkreg(4, 0, 0);
  struct recorder rc, rrc;
  uint8_t pk[32];
  char topic[8];
  int failures = 0;
  (void)state;

  rng_state = 42;
  observe(r, &rc);
  observe(ref, &rrc);
  for (int step = 0; step < 400; step++) {
    struct parley_reg_cmd c;
    struct parley_buf before, after;
    int want, got = PARLEY_ENOMEM;
    unsigned kind = (unsigned)(rng() % 4);

    mkpk(pk, (unsigned)(rng() % 12));
    snprintf(topic, sizeof topic, "t%u", (unsigned)(rng() % 6));
    c = cmd((uint8_t)(kind + 1), pk, (int64_t)step, "h:1",
            rng() % 2 ? "a" : "b", kind >= 2 ? topic : "");
    want = parley_registry_apply(ref, &c);
    snap_of(r, &before);
    for (long k = 0; got == PARLEY_ENOMEM; k++) {
      rc.len = 0;
      heap.fail_after = k;
      got = parley_registry_apply(r, &c);
      heap.fail_after = -1;
      if (got == PARLEY_ENOMEM) {
        failures++;
        assert_int_equal(rc.len, 0); /* no event for a refused command */
        snap_of(r, &after);
        assert_int_equal(before.len, after.len);
        assert_memory_equal(before.data, after.data, before.len);
        parley_buf_close(&after);
      }
    }
    assert_int_equal(got, want);
    assert_string_equal(events(&rc), events(&rrc));
    parley_buf_close(&before);
  }
  assert_true(failures > 100);
  assert_same_state(r, ref);

  /* Snapshot, restore and walks report ENOMEM too. */
  {
    struct parley_buf b, x;
    struct walk w;
    int rcode = PARLEY_ENOMEM;
    memset(&w, 0, sizeof w);
    assert_true(parley_registry_peer_count(ref) > 0);
    snap_of(ref, &b);
    for (long k = 0; rcode == PARLEY_ENOMEM; k++) {
      heap.fail_after = k;
      rcode = parley_registry_restore(r, b.data, b.len);
      heap.fail_after = -1;
      if (rcode == PARLEY_ENOMEM)
        assert_int_equal(parley_registry_peer_count(r), 0);
    }
    assert_int_equal(rcode, PARLEY_OK);
    assert_same_state(r, ref);
    parley_buf_init(&x, 1 << 20);
    heap.fail_after = 0;
    assert_int_equal(parley_registry_snapshot(r, &x), PARLEY_ENOMEM);
    assert_int_equal(parley_registry_foreach_peer(r, walk_peer, &w),
                     PARLEY_ENOMEM);
    heap.fail_after = -1;
    assert_int_equal(x.len, 0);
    parley_buf_close(&x);
    parley_buf_close(&b);
  }
  parley_registry_free(r);
  parley_registry_free(ref);
}

/* Determinism against a model ---------------------------------------------- */

#define MK 64 /* keys */
#define MT 20 /* valid topics */
#define M_MAX_SUBS 6
#define M_MAX_PEERS 40
#define M_MAX_TOPIC 16

static const char *m_topics[MT] = {"news",
                                   "a",
                                   "b/c",
                                   "news.eu",
                                   "x-y_z",
                                   "zz",
                                   "A",
                                   "Z9",
                                   "m",
                                   "news!",
                                   "long-topic-16chr",
                                   "q",
                                   "0",
                                   "~tilde",
                                   "mid",
                                   "mi",
                                   "mid0",
                                   "[x]",
                                   "a.b.c",
                                   "K"};
static const char *m_bad_topics[] = {"", "@peer", "has space",
                                     "seventeen-chars-x", "tab\t"};
static const char *m_addrs[] = {"10.0.0.1:7000", "[fe80::1]:1",
                                "host.example:443", "h:1", "bad-no-port"};
static const char *m_names[] = {"", "alice", "Bob the peer"};

struct mpeer {
  int present;
  int addr, name;
  int64_t reg, upd;
  uint32_t subs; /* bit i = m_topics[i] */
};

struct model {
  struct mpeer p[MK];
  uint8_t keys[MK][32];
  int torder[MT]; /* topic indexes in byte order */
  int npeers;
};

static struct model *g_model; /* for the qsort comparators */

static int cmp_torder(const void *a, const void *b) {
  return strcmp(m_topics[*(const int *)a], m_topics[*(const int *)b]);
}

static int cmp_korder(const void *a, const void *b) {
  return memcmp(g_model->keys[*(const int *)a], g_model->keys[*(const int *)b],
                32);
}

static void model_init(struct model *m) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < MK; i++)
    mkpk(m->keys[i], 1000u + (unsigned)i);
  for (int i = 0; i < MT; i++)
    m->torder[i] = i;
  qsort(m->torder, MT, sizeof m->torder[0], cmp_torder);
}

static int popcount32(uint32_t v) {
  int n = 0;
  for (; v; v &= v - 1)
    n++;
  return n;
}

/* A generated command, kept as indexes so the model can interpret it. */
struct mcmd {
  int type, key, addr, name, topic, bad_topic; /* topic < 0: bad_topic */
  int64_t ts;
};

static struct parley_reg_cmd mcmd_to_cmd(const struct model *m,
                                         const struct mcmd *x) {
  const char *topic = "";
  if (x->type == PARLEY_REG_SUBSCRIBE || x->type == PARLEY_REG_UNSUBSCRIBE)
    topic = x->topic >= 0 ? m_topics[x->topic] : m_bad_topics[x->bad_topic];
  if (x->type == PARLEY_REG_REGISTER)
    return cmd(PARLEY_REG_REGISTER, m->keys[x->key], x->ts, m_addrs[x->addr],
               m_names[x->name], "");
  return cmd((uint8_t)x->type, m->keys[x->key], x->ts, "", "", topic);
}

static struct mcmd mcmd_random(void) {
  struct mcmd x;
  unsigned r = (unsigned)(rng() % 100);
  memset(&x, 0, sizeof x);
  x.key = (int)(rng() % MK);
  x.ts = (int64_t)(rng() % 2000000) - 1000;
  x.type = r < 30   ? PARLEY_REG_REGISTER
           : r < 60 ? PARLEY_REG_SUBSCRIBE
           : r < 85 ? PARLEY_REG_UNSUBSCRIBE
                    : PARLEY_REG_EXPIRE;
  x.addr = (int)(rng() % 5);
  x.name = (int)(rng() % 3);
  if (rng() % 10 == 0) {
    x.topic = -1;
    x.bad_topic = (int)(rng() % 5);
  } else {
    x.topic = (int)(rng() % MT);
  }
  return x;
}

/* Applies x to the model; returns the expected status and writes the
 * expected event text to ev. */
static int model_apply(struct model *m, const struct mcmd *x, char *ev,
                       size_t cap) {
  struct mpeer *p = &m->p[x->key];
  char k[17];
  size_t n = 0;

  ev[0] = '\0';
  hex8(m->keys[x->key], k);
  switch (x->type) {
  case PARLEY_REG_REGISTER:
    if (x->addr == 4)
      return PARLEY_EINVAL;
    if (!p->present) {
      if (m->npeers >= M_MAX_PEERS)
        return PARLEY_ELIMIT;
      p->present = 1;
      m->npeers++;
      p->reg = x->ts;
      p->subs = 0;
      p->addr = x->addr;
      p->name = x->name;
      snprintf(ev, cap, "UP %s 0\n", k);
    } else if (p->addr != x->addr || p->name != x->name) {
      p->addr = x->addr;
      p->name = x->name;
      snprintf(ev, cap, "UP %s %d\n", k, popcount32(p->subs));
    }
    p->upd = x->ts;
    return PARLEY_OK;
  case PARLEY_REG_EXPIRE:
    if (!p->present)
      return PARLEY_OK;
    {
      int left = popcount32(p->subs);
      for (int i = 0; i < MT; i++) {
        int t = m->torder[i];
        if (p->subs & (1u << t))
          n += (size_t)snprintf(ev + n, cap - n, "DEL %s %s %d\n", k,
                                m_topics[t], --left);
      }
    }
    snprintf(ev + n, cap - n, "DOWN %s 0\n", k);
    p->present = 0;
    p->subs = 0;
    m->npeers--;
    return PARLEY_OK;
  case PARLEY_REG_SUBSCRIBE:
    if (x->topic < 0)
      return PARLEY_EINVAL;
    if (!p->present)
      return PARLEY_EUNKNOWNPEER;
    if (p->subs & (1u << x->topic))
      return PARLEY_OK;
    if (popcount32(p->subs) >= M_MAX_SUBS)
      return PARLEY_ELIMIT;
    p->subs |= 1u << x->topic;
    snprintf(ev, cap, "ADD %s %s %d\n", k, m_topics[x->topic],
             popcount32(p->subs));
    return PARLEY_OK;
  default:
    if (x->topic < 0)
      return PARLEY_EINVAL;
    if (!p->present || !(p->subs & (1u << x->topic)))
      return PARLEY_OK;
    p->subs &= ~(1u << x->topic);
    snprintf(ev, cap, "DEL %s %s %d\n", k, m_topics[x->topic],
             popcount32(p->subs));
    return PARLEY_OK;
  }
}

/* The model's snapshot, written independently of registry.c. */
static void model_snapshot(struct model *m, struct sbuild *s) {
  int order[MK], n = 0;

  g_model = m;
  for (int i = 0; i < MK; i++)
    if (m->p[i].present)
      order[n++] = i;
  qsort(order, (size_t)n, sizeof order[0], cmp_korder);
  s->n = 0;
  sb_bytes(s, "PRG2", 4);
  sb_u32(s, (uint32_t)n);
  for (int i = 0; i < n; i++) {
    struct mpeer *p = &m->p[order[i]];
    sb_bytes(s, m->keys[order[i]], 32);
    sb_str8(s, m_addrs[p->addr]);
    sb_str8(s, m_names[p->name]);
    sb_u64(s, (uint64_t)p->reg);
    sb_u64(s, (uint64_t)p->upd);
    sb_u32(s, (uint32_t)popcount32(p->subs));
    for (int j = 0; j < MT; j++)
      if (p->subs & (1u << m->torder[j]))
        sb_str8(s, m_topics[m->torder[j]]);
  }
  sb_u32(s, 0); /* no private topics */
}

/* Compares the registry's indexes (not just its snapshot) with the model. */
static void model_check(struct model *m, const struct parley_registry *r) {
  struct sbuild s;
  struct parley_buf b;
  size_t ntopics = 0;
  int order[MK], n = 0;

  model_snapshot(m, &s);
  snap_of(r, &b);
  assert_int_equal(b.len, s.n);
  assert_memory_equal(b.data, s.b, s.n);
  parley_buf_close(&b);
  assert_int_equal(parley_registry_peer_count(r), (size_t)m->npeers);

  g_model = m;
  for (int i = 0; i < MK; i++)
    if (m->p[i].present)
      order[n++] = i;
  qsort(order, (size_t)n, sizeof order[0], cmp_korder);
  for (int t = 0; t < MT; t++) {
    struct walk w, exp;
    memset(&w, 0, sizeof w);
    memset(&exp, 0, sizeof exp);
    for (int i = 0; i < n; i++)
      if (m->p[order[i]].subs & (1u << t)) {
        char k[17];
        hex8(m->keys[order[i]], k);
        walk_add(&exp, k);
      }
    if (exp.len > 0)
      ntopics++;
    assert_int_equal(
        parley_registry_foreach_subscriber(r, m_topics[t], walk_peer, &w), 0);
    assert_string_equal(w.buf, exp.buf);
  }
  assert_int_equal(parley_registry_topic_count(r), ntopics);
}

static void test_determinism(void **state) {
  struct model *m = malloc(sizeof *m);
  struct parley_registry *a = mkreg(M_MAX_SUBS, M_MAX_PEERS, M_MAX_TOPIC);
  struct parley_registry *b = mkreg(M_MAX_SUBS, M_MAX_PEERS, M_MAX_TOPIC);
  struct parley_registry *c = NULL;
  struct recorder *ra = malloc(sizeof *ra), *rb = malloc(sizeof *rb),
                  *rc = malloc(sizeof *rc);
  char exp[4096];
  int counts[8] = {0};
  (void)state;

  assert_non_null(m);
  model_init(m);
  /* Same starting state, reached in two different orders: a registers
   * keys 0..29 ascending with subscriptions in topic order; b registers
   * descending, subscribes in reverse, and churns peers and topics that it
   * then removes. */
  for (int i = 0; i < 30; i++) {
    struct mcmd x = {PARLEY_REG_REGISTER, i, i % 4, i % 3, 0, 0, i};
    struct parley_reg_cmd cm = mcmd_to_cmd(m, &x);
    assert_int_equal(model_apply(m, &x, exp, sizeof exp), PARLEY_OK);
    assert_int_equal(parley_registry_apply(a, &cm), PARLEY_OK);
    for (int t = 0; t < i % 5; t++) {
      struct mcmd y = {PARLEY_REG_SUBSCRIBE, i, 0, 0, (i + t) % MT, 0, 0};
      cm = mcmd_to_cmd(m, &y);
      assert_int_equal(model_apply(m, &y, exp, sizeof exp), PARLEY_OK);
      assert_int_equal(parley_registry_apply(a, &cm), PARLEY_OK);
    }
  }
  for (int i = 50; i < 60; i++) {
    uint8_t pk[32];
    mkpk(pk, 5000u + (unsigned)i);
    assert_int_equal(reg(b, pk, 0, "x:1", "x"), PARLEY_OK);
    assert_int_equal(sub(b, pk, "churn"), PARLEY_OK);
    assert_int_equal(sub(b, pk, "news"), PARLEY_OK);
  }
  for (int i = 30; i-- > 0;) {
    struct mcmd x = {PARLEY_REG_REGISTER, i, i % 4, i % 3, 0, 0, i};
    struct parley_reg_cmd cm = mcmd_to_cmd(m, &x);
    assert_int_equal(parley_registry_apply(b, &cm), PARLEY_OK);
    for (int t = i % 5; t-- > 0;) {
      struct mcmd y = {PARLEY_REG_SUBSCRIBE, i, 0, 0, (i + t) % MT, 0, 0};
      cm = mcmd_to_cmd(m, &y);
      assert_int_equal(parley_registry_apply(b, &cm), PARLEY_OK);
    }
  }
  for (int i = 50; i < 60; i++) {
    uint8_t pk[32];
    mkpk(pk, 5000u + (unsigned)i);
    assert_int_equal(expire(b, pk), PARLEY_OK);
  }
  model_check(m, a);
  model_check(m, b);

  observe(a, ra);
  observe(b, rb);
  rng_state = 0xdecafbadull;
  for (int step = 0; step < 5000; step++) {
    struct mcmd x = mcmd_random();
    struct parley_reg_cmd cm = mcmd_to_cmd(m, &x);
    int want = model_apply(m, &x, exp, sizeof exp);
    int ca = parley_registry_check(a, &cm);

    assert_int_equal(ca, want);
    assert_int_equal(parley_registry_apply(a, &cm), want);
    assert_int_equal(parley_registry_apply(b, &cm), want);
    assert_string_equal(events(ra), exp);
    assert_string_equal(events(rb), exp);
    if (c != NULL) {
      assert_int_equal(parley_registry_apply(c, &cm), want);
      assert_string_equal(events(rc), exp);
    }
    if (want == PARLEY_ELIMIT)
      counts[2]++;
    else if (want == PARLEY_EINVAL)
      counts[3]++;
    else if (want == PARLEY_EUNKNOWNPEER)
      counts[4]++;
    if (step % 500 == 499) {
      model_check(m, a);
      model_check(m, b);
      if (c != NULL)
        model_check(m, c);
    }
    if (step == 2500) {
      /* A third replica joins from a snapshot halfway through. */
      struct parley_buf sa;
      snap_of(a, &sa);
      c = mkreg(M_MAX_SUBS, M_MAX_PEERS, M_MAX_TOPIC);
      assert_int_equal(parley_registry_restore(c, sa.data, sa.len), PARLEY_OK);
      parley_buf_close(&sa);
      observe(c, rc);
    }
  }
  model_check(m, a);
  assert_same_state(a, b);
  assert_same_state(a, c);
  /* The sequence exercised every outcome. */
  assert_true(counts[2] > 50);
  assert_true(counts[3] > 50);
  assert_true(counts[4] > 50);
  parley_registry_free(a);
  parley_registry_free(b);
  parley_registry_free(c);
  free(ra);
  free(rb);
  free(rc);
  free(m);
}

/* Memory
 * ------------------------------------------------------------------------ */

static void test_memory_10k(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  size_t live0 = heap.live;
  struct mallinfo2 mi0 = mallinfo2(), mi1;
  uint8_t pk[32];
  char topic[16];
  double per_peer;
  (void)state;

  rng_state = 7;
  for (unsigned i = 0; i < 10000; i++) {
    mkpk(pk, i);
    assert_int_equal(reg(r, pk, i, "192.168.100.200:65000", "peer-name-16chr"),
                     PARLEY_OK);
    for (int t = 0; t < 4; t++) {
      snprintf(topic, sizeof topic, "topic.%u", (unsigned)(rng() % 1000));
      assert_int_equal(sub(r, pk, topic), PARLEY_OK);
    }
  }
  mi1 = mallinfo2();
  per_peer = (double)(heap.live - live0) / 10000.0;
  print_message("registry: 10000 peers, up to 4 subs each over %zu topics: "
                "%zu bytes requested (%.0f per peer); malloc in use grew by "
                "%zu bytes\n",
                parley_registry_topic_count(r), heap.live - live0, per_peer,
                mi1.uordblks - mi0.uordblks);
  /* Far below the 2 KiB per peer the index aims for. */
  assert_true(per_peer < 1024.0);
  parley_registry_free(r);
}

/* regstore
 * ---------------------------------------------------------------------- */

struct logcap {
  int warns, errors;
  char last[1024];
};

static void cap_emit(void *ctx, int level, const char *file, int line,
                     const char *func, const char *msg) {
  struct logcap *lc = ctx;
  (void)file;
  (void)line;
  (void)func;
  if (level == PARLEY_LOG_WARN)
    lc->warns++;
  if (level >= PARLEY_LOG_ERROR)
    lc->errors++;
  snprintf(lc->last, sizeof lc->last, "%s", msg);
}

static char tmpdir[64];

static void path_of(char *out, size_t cap, const char *file) {
  snprintf(out, cap, "%s/store/%s", tmpdir, file);
}

static void rm_store(void) {
  char p[128];
  static const char *files[] = {"registry.snap", "registry.log",
                                "registry.snap.tmp"};
  for (size_t i = 0; i < 3; i++) {
    path_of(p, sizeof p, files[i]);
    unlink(p);
  }
  snprintf(p, sizeof p, "%s/store", tmpdir);
  rmdir(p);
}

static int rs_setup(void **state) {
  setup(state);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/parley-regstore-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int rs_teardown(void **state) {
  rm_store();
  rmdir(tmpdir);
  return teardown(state);
}

static const char *store_dir(void) {
  static char d[96];
  snprintf(d, sizeof d, "%s/store", tmpdir);
  return d;
}

static uint8_t *slurp(const char *file, size_t *len) {
  char p[128];
  struct stat st;
  uint8_t *b;
  int fd;
  path_of(p, sizeof p, file);
  fd = open(p, O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(fstat(fd, &st), 0);
  b = malloc((size_t)st.st_size + 1);
  assert_non_null(b);
  assert_int_equal(read(fd, b, (size_t)st.st_size), st.st_size);
  close(fd);
  *len = (size_t)st.st_size;
  return b;
}

static void spit(const char *file, const void *data, size_t len, int append) {
  char p[128];
  int fd;
  path_of(p, sizeof p, file);
  fd = open(p, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static off_t file_size(const char *file) {
  char p[128];
  struct stat st;
  path_of(p, sizeof p, file);
  if (stat(p, &st) < 0)
    return -1;
  return st.st_size;
}

/* Bitwise CRC-32 (IEEE), independent of regstore.c's table version. */
static uint32_t crc32_ref(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* Applies a command whose outcome does not matter here. */
static void apply_any(struct parley_registry *r,
                      const struct parley_reg_cmd *c) {
  int rc = parley_registry_apply(r, c);
  assert_true(rc == PARLEY_OK || rc == PARLEY_EUNKNOWNPEER);
}

/* Applies and logs one command, as the server does. */
static void logged(struct parley_registry *r, struct parley_regstore *rs,
                   const struct parley_reg_cmd *c) {
  if (parley_registry_apply(r, c) == PARLEY_OK)
    assert_int_equal(parley_regstore_append(rs, c), PARLEY_OK);
}

/* Command number i of a fixed workload. */
static struct parley_reg_cmd workload(unsigned i) {
  uint8_t pk[32];
  char topic[16];
  mkpk(pk, i % 17);
  snprintf(topic, sizeof topic, "w%u", i % 5);
  switch (i % 7) {
  case 0:
  case 3:
    return cmd(PARLEY_REG_REGISTER, pk, i, i % 2 ? "h:1" : "h:2", "w", "");
  case 6:
    return cmd(PARLEY_REG_EXPIRE, pk, i, "", "", "");
  case 5:
    return cmd(PARLEY_REG_UNSUBSCRIBE, pk, i, "", "", topic);
  default:
    return cmd(PARLEY_REG_SUBSCRIBE, pk, i, "", "", topic);
  }
}

static struct parley_regstore *reopen(struct parley_registry **r,
                                      struct logcap *lc) {
  struct parley_log lg = {cap_emit, lc, PARLEY_LOG_DEBUG};
  struct parley_regstore *rs;
  parley_registry_free(*r);
  *r = mkreg(0, 0, 0);
  memset(lc, 0, sizeof *lc);
  assert_int_equal(parley_regstore_open(store_dir(), *r, &lg, &rs), PARLEY_OK);
  return rs;
}

static void test_crc32_ref(void **state) {
  (void)state;
  assert_int_equal(crc32_ref((const uint8_t *)"123456789", 9), 0xcbf43926u);
}

static void test_regstore_reopen(void **state) {
  struct parley_registry *r = NULL, *ref = mkreg(0, 0, 0);
  struct parley_regstore *rs;
  struct parley_reg_cmd c;
  struct logcap lc;
  uint8_t *log, enc[600];
  size_t len, n, appended = 0;
  (void)state;

  rs = reopen(&r, &lc);
  assert_int_equal(parley_regstore_log_entries(rs), 0);
  assert_int_equal(parley_registry_peer_count(r), 0);

  /* The first record, byte for byte. */
  c = workload(0);
  assert_int_equal(parley_registry_apply(ref, &c), PARLEY_OK);
  logged(r, rs, &c);
  assert_int_equal(parley_regstore_log_entries(rs), 1);
  assert_int_equal(file_size("registry.log"), 0); /* buffered */
  assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
  log = slurp("registry.log", &len);
  assert_int_equal(parley_reg_cmd_encode(&c, enc, sizeof enc, &n), PARLEY_OK);
  assert_int_equal(len, 8 + n);
  assert_int_equal(be32(log), n);
  assert_int_equal(be32(log + 4), crc32_ref(enc, n));
  assert_memory_equal(log + 8, enc, n);
  free(log);

  for (unsigned i = 1; i < 60; i++) {
    c = workload(i);
    if (parley_registry_apply(ref, &c) == PARLEY_OK) {
      appended++;
      logged(r, rs, &c);
    }
    if (i % 10 == 0)
      assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
  }
  assert_int_equal(parley_regstore_log_entries(rs), 1 + appended);
  /* close syncs what is still buffered. */
  parley_regstore_close(rs);
  rs = reopen(&r, &lc);
  assert_same_state(r, ref);
  assert_int_equal(parley_regstore_log_entries(rs), 1 + appended);
  assert_int_equal(lc.warns, 0);
  assert_int_equal(lc.errors, 0);
  parley_regstore_close(rs);
  parley_regstore_close(NULL);
  parley_registry_free(r);
  parley_registry_free(ref);
}

/* Writes n workload commands through a store, closes it; returns the log
 * size after each of the first n records in sizes[]. */
static void write_workload(unsigned n, struct parley_registry **states,
                           off_t *sizes) {
  struct parley_registry *r = NULL;
  struct parley_regstore *rs;
  struct logcap lc;
  unsigned done = 0;

  rs = reopen(&r, &lc);
  for (unsigned i = 0; done < n; i++) {
    struct parley_reg_cmd c = workload(i);
    if (parley_registry_apply(r, &c) != PARLEY_OK)
      continue;
    assert_int_equal(parley_regstore_append(rs, &c), PARLEY_OK);
    assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
    if (states != NULL) {
      struct parley_buf b;
      snap_of(r, &b);
      states[done] = mkreg(0, 0, 0);
      assert_int_equal(parley_registry_restore(states[done], b.data, b.len),
                       PARLEY_OK);
      parley_buf_close(&b);
    }
    if (sizes != NULL)
      sizes[done] = file_size("registry.log");
    done++;
  }
  parley_regstore_close(rs);
  parley_registry_free(r);
}

static void test_regstore_torn_tail(void **state) {
  struct parley_registry *states[10] = {0}, *r = NULL;
  struct parley_regstore *rs;
  struct logcap lc;
  off_t sizes[10];
  uint8_t *good, junk[300];
  size_t glen;
  (void)state;

  write_workload(10, states, sizes);
  good = slurp("registry.log", &glen);
  assert_int_equal((off_t)glen, sizes[9]);

  for (int variant = 0; variant < 6; variant++) {
    size_t jn = 0;
    memset(junk, 0xab, sizeof junk);
    switch (variant) {
    case 0: /* a few garbage bytes: torn header */
      jn = 3;
      break;
    case 1: /* header promising 200 bytes, 10 present */
      memcpy(junk, "\0\0\0\xc8", 4);
      jn = 18;
      break;
    case 2: /* a whole record with a wrong checksum */
      memcpy(junk, good, (size_t)sizes[0]);
      junk[7] ^= 1;
      jn = (size_t)sizes[0];
      break;
    case 3: /* impossible length */
      memcpy(junk, "\0\0\0\x05", 4);
      jn = 30;
      break;
    case 4: { /* right checksum, payload that does not decode */
      uint8_t p[60];
      memset(p, 0, sizeof p);
      p[0] = 9;
      memcpy(junk, "\0\0\0\x3c", 4);
      junk[4] = (uint8_t)(crc32_ref(p, 60) >> 24);
      junk[5] = (uint8_t)(crc32_ref(p, 60) >> 16);
      junk[6] = (uint8_t)(crc32_ref(p, 60) >> 8);
      junk[7] = (uint8_t)crc32_ref(p, 60);
      memcpy(junk + 8, p, 60);
      jn = 68;
      break;
    }
    case 5: /* a whole record minus its last byte */
      memcpy(junk, good, (size_t)sizes[0] - 1);
      jn = (size_t)sizes[0] - 1;
      break;
    }
    spit("registry.log", good, glen, 0);
    spit("registry.log", junk, jn, 1);
    rs = reopen(&r, &lc);
    assert_int_equal(lc.warns, 1);
    assert_non_null(strstr(lc.last, "truncating"));
    assert_int_equal(file_size("registry.log"), sizes[9]);
    assert_same_state(r, states[9]);
    assert_int_equal(parley_regstore_log_entries(rs), 10);
    parley_regstore_close(rs);
  }

  /* Damage in the middle: everything from the bad record on goes. */
  good[sizes[4] + 20] ^= 0x40; /* inside record 6 */
  spit("registry.log", good, glen, 0);
  rs = reopen(&r, &lc);
  assert_int_equal(lc.warns, 1);
  assert_int_equal(file_size("registry.log"), sizes[4]);
  assert_same_state(r, states[4]);
  /* The store keeps working after the cut. */
  {
    struct parley_reg_cmd c = workload(1000);
    struct parley_registry *after = NULL;
    logged(r, rs, &c);
    assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
    parley_regstore_close(rs);
    rs = reopen(&after, &lc);
    assert_int_equal(lc.warns, 0);
    assert_same_state(r, after);
    assert_int_equal(parley_regstore_log_entries(rs), 6);
    parley_regstore_close(rs);
    parley_registry_free(after);
  }
  free(good);
  for (int i = 0; i < 10; i++)
    parley_registry_free(states[i]);
  parley_registry_free(r);
}

static void check_snap_header(uint64_t folded) {
  uint8_t *s;
  size_t len;
  s = slurp("registry.snap", &len);
  assert_true(len >= 24);
  assert_memory_equal(s, "PRSN\0\0\0\1", 8);
  assert_int_equal(((uint64_t)be32(s + 8) << 32) | be32(s + 12), folded);
  assert_int_equal(be32(s + 20), len - 24);
  assert_int_equal(be32(s + 16), crc32_ref(s + 24, len - 24));
  assert_memory_equal(s + 24, "PRG2", 4);
  free(s);
}

static void test_regstore_compact(void **state) {
  struct parley_registry *r = NULL, *ref = mkreg(0, 0, 0);
  struct parley_regstore *rs;
  struct logcap lc;
  (void)state;

  rs = reopen(&r, &lc);
  for (unsigned i = 0; i < 100; i++) {
    struct parley_reg_cmd c = workload(i);
    apply_any(ref, &c);
    logged(r, rs, &c);
  }
  assert_true(parley_regstore_log_entries(rs) > 20);
  assert_int_equal(parley_regstore_compact(rs), PARLEY_OK);
  assert_int_equal(parley_regstore_log_entries(rs), 0);
  assert_int_equal(file_size("registry.log"), 0);
  assert_int_equal(file_size("registry.snap.tmp"), -1);
  check_snap_header(0);
  parley_regstore_close(rs);
  rs = reopen(&r, &lc);
  assert_same_state(r, ref);
  assert_int_equal(parley_regstore_log_entries(rs), 0);

  /* Snapshot plus log. */
  for (unsigned i = 100; i < 130; i++) {
    struct parley_reg_cmd c = workload(i);
    apply_any(ref, &c);
    logged(r, rs, &c);
  }
  assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
  parley_regstore_close(rs);
  rs = reopen(&r, &lc);
  assert_same_state(r, ref);
  assert_true(parley_regstore_log_entries(rs) > 10);

  /* sync compacts past the threshold only. */
  {
    uint64_t e = parley_regstore_log_entries(rs);
    assert_int_equal(parley_regstore_sync(rs, (uint32_t)e), PARLEY_OK);
    assert_int_equal(parley_regstore_log_entries(rs), e);
    assert_int_equal(parley_regstore_sync(rs, (uint32_t)e - 1), PARLEY_OK);
    assert_int_equal(parley_regstore_log_entries(rs), 0);
    assert_int_equal(file_size("registry.log"), 0);
  }
  parley_regstore_close(rs);
  rs = reopen(&r, &lc);
  assert_same_state(r, ref);
  assert_int_equal(lc.warns + lc.errors, 0);
  parley_regstore_close(rs);
  parley_registry_free(r);
  parley_registry_free(ref);
}

/* Writes registry.snap by hand with the given folded count. */
static void write_snap(const struct parley_registry *r, uint64_t folded) {
  struct parley_buf b;
  uint8_t h[24];
  snap_of(r, &b);
  memcpy(h, "PRSN\0\0\0\1", 8);
  for (int i = 0; i < 8; i++)
    h[8 + i] = (uint8_t)(folded >> (56 - 8 * i));
  for (int i = 0; i < 4; i++) {
    h[16 + i] = (uint8_t)(crc32_ref(b.data, b.len) >> (24 - 8 * i));
    h[20 + i] = (uint8_t)(b.len >> (24 - 8 * i));
  }
  spit("registry.snap", h, 24, 0);
  spit("registry.snap", b.data, b.len, 1);
  parley_buf_close(&b);
}

static void test_regstore_interrupted_compaction(void **state) {
  struct parley_registry *r = NULL, *snap = mkreg(0, 0, 0),
                         *exp = mkreg(0, 0, 0);
  struct parley_regstore *rs;
  struct logcap lc;
  uint8_t k[4][32];
  (void)state;

  for (unsigned i = 0; i < 4; i++)
    mkpk(k[i], 200 + i);
  /* The log holds REGISTER b, c, d; the snapshot holds a and claims to
   * fold the first two records.  A correct open skips b and c. */
  rs = reopen(&r, &lc);
  for (unsigned i = 1; i < 4; i++) {
    struct parley_reg_cmd c = cmd(PARLEY_REG_REGISTER, k[i], i, "h:1", "", "");
    assert_int_equal(parley_regstore_append(rs, &c), PARLEY_OK);
  }
  parley_regstore_close(rs);
  assert_int_equal(reg(snap, k[0], 0, "h:1", ""), PARLEY_OK);
  write_snap(snap, 2);
  assert_int_equal(reg(exp, k[0], 0, "h:1", ""), PARLEY_OK);
  assert_int_equal(reg(exp, k[3], 3, "h:1", ""), PARLEY_OK);
  rs = reopen(&r, &lc);
  assert_same_state(r, exp);
  /* The interrupted compaction was completed. */
  assert_int_equal(parley_regstore_log_entries(rs), 0);
  assert_int_equal(file_size("registry.log"), 0);
  check_snap_header(0);
  parley_regstore_close(rs);
  rs = reopen(&r, &lc);
  assert_same_state(r, exp);
  parley_regstore_close(rs);

  /* Crash after the truncation, before folded was reset: an empty log
   * under folded = 5 is just the snapshot. */
  write_snap(snap, 5);
  spit("registry.log", "", 0, 0);
  rs = reopen(&r, &lc);
  assert_same_state(r, snap);
  check_snap_header(0);
  parley_regstore_close(rs);
  parley_registry_free(r);
  parley_registry_free(snap);
  parley_registry_free(exp);
}

static void test_regstore_bad_files(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0), *tmp = NULL;
  struct parley_regstore *rs = (void *)1;
  struct logcap lc;
  struct parley_log lg = {cap_emit, &lc, PARLEY_LOG_DEBUG};
  uint8_t *s;
  size_t len;
  char p[128];
  (void)state;

  /* A good snapshot to damage, and a stale temp file that open removes. */
  fill_sample(r);
  write_workload(3, NULL, NULL);
  write_snap(r, 0);
  spit("registry.snap.tmp", "junk", 4, 0);
  rs = reopen(&tmp, &lc);
  assert_int_equal(file_size("registry.snap.tmp"), -1);
  parley_regstore_close(rs);
  s = slurp("registry.snap", &len);

  s[30] ^= 1; /* payload: checksum mismatch */
  spit("registry.snap", s, len, 0);
  assert_int_equal(parley_regstore_open(store_dir(), r, &lg, &rs),
                   PARLEY_ESTORE);
  assert_null(rs);
  s[30] ^= 1;
  s[0] = 'X'; /* magic */
  spit("registry.snap", s, len, 0);
  assert_int_equal(parley_regstore_open(store_dir(), r, &lg, &rs),
                   PARLEY_ESTORE);
  s[0] = 'P';
  s[7] = 2; /* version */
  spit("registry.snap", s, len, 0);
  assert_int_equal(parley_regstore_open(store_dir(), r, &lg, &rs),
                   PARLEY_EVERSION);
  s[7] = 1;
  spit("registry.snap", s, len - 1, 0); /* short */
  assert_int_equal(parley_regstore_open(store_dir(), r, &lg, &rs),
                   PARLEY_ESTORE);
  spit("registry.snap", s, 10, 0); /* short header */
  assert_int_equal(parley_regstore_open(store_dir(), r, &lg, &rs),
                   PARLEY_ESTORE);
  /* A well-formed file holding a snapshot the limits refuse. */
  spit("registry.snap", s, len, 0);
  parley_registry_free(tmp);
  tmp = mkreg(1, 0, 0);
  assert_int_equal(parley_regstore_open(store_dir(), tmp, &lg, &rs),
                   PARLEY_ESTORE);
  assert_true(lc.errors >= 5);
  free(s);

  /* The directory path is a file. */
  snprintf(p, sizeof p, "%s/file", tmpdir);
  {
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
  }
  assert_int_equal(parley_regstore_open(p, r, NULL, &rs), PARLEY_EIO);
  unlink(p);
  parley_registry_free(tmp);
  parley_registry_free(r);
}

/* Private topics ------------------------------------------------------------- */

/* A owns the topics; B and C become members; D stays outside. */
static struct parley_identity ida, idb, idc, idd;

static void acl_ids(void) {
  struct parley_identity *ids[4] = {&ida, &idb, &idc, &idd};
  uint8_t seed[32];
  for (int i = 0; i < 4; i++) {
    memset(seed, 0x10 * (i + 1), 32);
    assert_int_equal(parley_identity_from_seed(ids[i], seed), PARLEY_OK);
  }
}

static const char *hx(const struct parley_identity *id) {
  static char out[4][17];
  static int next;
  char *s = out[next++ & 3];
  hex8(id->pk, s);
  return s;
}

/* Applies c after checking it: check() must predict apply(). */
static int run(struct parley_registry *r, const struct parley_reg_cmd *c) {
  int want = parley_registry_check(r, c);
  assert_int_equal(parley_registry_apply(r, c), want);
  return want;
}

/* A GRANT command: the statement signed by signer, proposed on behalf of
 * by (signer when NULL).  member NULL means the signer. */
static void mkgrant(struct parley_reg_cmd *c, const struct parley_identity *signer,
                    const uint8_t *by, int action, const char *topic,
                    const uint8_t *member, uint32_t epoch, uint64_t counter) {
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

static int grant(struct parley_registry *r, const struct parley_identity *signer,
                 int action, const char *topic, const uint8_t *member,
                 uint32_t epoch, uint64_t counter) {
  struct parley_reg_cmd c;
  mkgrant(&c, signer, NULL, action, topic, member, epoch, counter);
  return run(r, &c);
}

/* A KEY_PUT of a fresh key (returned in *k if not NULL) for member at epoch,
 * sealed by owner, the KEY_PUT signed by signer and proposed by `by` (both
 * default to the owner). */
static void mkkeyput(struct parley_reg_cmd *c,
                     const struct parley_identity *owner,
                     const struct parley_identity *signer, const uint8_t *by,
                     const char *topic, const uint8_t *member, uint32_t epoch,
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

static int keyput(struct parley_registry *r, const char *topic,
                  const uint8_t *member, uint32_t epoch,
                  struct parley_topic_key *k) {
  struct parley_reg_cmd c;
  mkkeyput(&c, &ida, NULL, NULL, topic, member, epoch, k);
  return run(r, &c);
}

static int walk_key(void *ctx, const uint8_t pk[32]) {
  char k[17];
  hex8(pk, k);
  walk_add(ctx, k);
  return walk_stop(ctx);
}

static int walk_epoch(void *ctx, uint32_t epoch, const uint8_t *blob,
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

static int walk_acl(void *ctx, const char *topic,
                    const struct parley_reg_acl *a) {
  char s[300];
  snprintf(s, sizeof s, "%s:e%u:c%llu:m%u", topic, a->epoch,
           (unsigned long long)a->counter, a->members);
  walk_add(ctx, s);
  return walk_stop(ctx);
}

static const char *members_of(struct parley_registry *r, const char *topic) {
  static struct walk w;
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_member(r, topic, walk_key, &w), 0);
  return w.buf;
}

static const char *keys_of(struct parley_registry *r, const char *topic,
                           const struct parley_identity *m) {
  static struct walk w;
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_key(r, topic, m->pk, walk_epoch, &w),
                   0);
  return w.buf;
}

/* "k1 k2 ..." of the identities' keys in ascending key order. */
static const char *sorted_ids(int n, const struct parley_identity **ids) {
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

static struct parley_registry *acl_reg(struct parley_reg_limits *lim) {
  struct parley_registry *r;
  acl_ids();
  assert_int_equal(parley_registry_new(lim, &r), PARLEY_OK);
  assert_int_equal(reg(r, ida.pk, 1, "a:1", "A"), PARLEY_OK);
  assert_int_equal(reg(r, idb.pk, 1, "b:1", "B"), PARLEY_OK);
  assert_int_equal(reg(r, idc.pk, 1, "c:1", "C"), PARLEY_OK);
  return r;
}

static void test_acl_members(void **state) {
  struct parley_registry *r = acl_reg(NULL);
  const struct parley_identity *abd[] = {&ida, &idb, &idd};
  struct parley_reg_acl acl;
  struct recorder rc;
  struct walk w;
  char want[512];
  (void)state;

  observe(r, &rc);
  assert_int_equal(parley_registry_topic_acl(r, "club", &acl),
                   PARLEY_ENOTFOUND);
  assert_int_equal(parley_registry_may_access(r, "club", idc.pk), 1);
  assert_int_equal(parley_registry_is_member(r, "club", ida.pk), 0);

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  snprintf(want, sizeof want, "CREATE club %s e1 p\n", hx(&ida));
  assert_string_equal(events(&rc), want);
  assert_int_equal(parley_registry_topic_acl(r, "club", &acl), PARLEY_OK);
  assert_memory_equal(acl.owner, ida.pk, 32);
  assert_int_equal(acl.epoch, 1);
  assert_int_equal(acl.counter, 1);
  assert_int_equal(acl.members, 1);

  /* Counters may skip; D is a member without being a registered peer. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idd.pk, 1, 9),
                   PARLEY_OK);
  snprintf(want, sizeof want, "MADD club %s e1 p\nMADD club %s e1\n", hx(&idb),
           hx(&idd));
  assert_string_equal(events(&rc), want);
  assert_int_equal(parley_registry_topic_acl(r, "club", &acl), PARLEY_OK);
  assert_int_equal(acl.counter, 9);
  assert_int_equal(acl.members, 3);
  assert_string_equal(members_of(r, "club"), sorted_ids(3, abd));
  assert_string_equal(members_of(r, "open"), "");
  memset(&w, 0, sizeof w);
  w.stop_after = 2;
  assert_int_equal(parley_registry_foreach_member(r, "club", walk_key, &w), 7);
  assert_int_equal(w.calls, 2);
  assert_int_equal(parley_registry_is_member(r, "club", idb.pk), 1);
  assert_int_equal(parley_registry_is_member(r, "club", idc.pk), 0);
  assert_int_equal(parley_registry_may_access(r, "club", idc.pk), 0);
  assert_int_equal(parley_registry_may_access(r, "club", idd.pk), 1);
  assert_int_equal(parley_registry_may_access(r, "open", idc.pk), 1);

  /* Only members subscribe; public topics are unchanged. */
  struct parley_reg_cmd c = cmd(PARLEY_REG_SUBSCRIBE, idc.pk, 0, "", "", "club");
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  assert_string_equal(events(&rc), "");
  assert_int_equal(sub(r, idb.pk, "club"), PARLEY_OK);
  assert_int_equal(sub(r, ida.pk, "club"), PARLEY_OK);
  assert_int_equal(sub(r, idc.pk, "open"), PARLEY_OK);
  assert_int_equal(sub(r, idb.pk, "club"), PARLEY_OK); /* still idempotent */
  (void)events(&rc);
  assert_int_equal(parley_registry_acl_count(r), 1);
  assert_int_equal(grant(r, &idb, PARLEY_GRANT_CREATE, "b-room", NULL, 1, 1),
                   PARLEY_OK);
  memset(&w, 0, sizeof w);
  assert_int_equal(parley_registry_foreach_acl(r, walk_acl, &w), 0);
  assert_string_equal(w.buf, "b-room:e1:c1:m1 club:e1:c9:m3 ");

  /* Expiry ends the subscription, not the membership. */
  assert_int_equal(expire(r, idb.pk), PARLEY_OK);
  assert_int_equal(parley_registry_is_member(r, "club", idb.pk), 1);
  assert_int_equal(reg(r, idb.pk, 2, "b:1", "B"), PARLEY_OK);
  assert_int_equal(sub(r, idb.pk, "club"), PARLEY_OK);
  parley_registry_free(r);
}

static void test_acl_grant_refused(void **state) {
  struct parley_reg_limits lim = {0, 0, 16, 0, 0};
  struct parley_registry *r = acl_reg(&lim);
  struct parley_buf before, after;
  struct parley_reg_cmd c;
  struct recorder rc;
  (void)state;

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 10),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 11),
                   PARLEY_OK);
  snap_of(r, &before);
  observe(r, &rc);

  /* Not the owner: C signs about A's topic, or A's statement arrives on
   * behalf of C. */
  assert_int_equal(grant(r, &idc, PARLEY_GRANT_ADD, "club", idd.pk, 1, 12),
                   PARLEY_EDENIED);
  assert_int_equal(grant(r, &idc, PARLEY_GRANT_REVOKE, "club", idb.pk, 2, 12),
                   PARLEY_EDENIED);
  mkgrant(&c, &ida, idc.pk, PARLEY_GRANT_ADD, "club", idd.pk, 1, 12);
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  /* Replayed or reordered: counter not above the last (11). */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 1, 11),
                   PARLEY_ERANGE);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 1, 3),
                   PARLEY_ERANGE);
  /* Epoch rule and membership. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 12),
                   PARLEY_EPROTO);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_REVOKE, "club", idc.pk, 2, 12),
                   PARLEY_EPROTO);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_REVOKE, "club", idb.pk, 3, 12),
                   PARLEY_EPROTO);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 2, 12),
                   PARLEY_EPROTO);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ROTATE, "club", NULL, 3, 12),
                   PARLEY_EPROTO);
  /* Unknown topic; a taken name. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "other", idc.pk, 1, 1),
                   PARLEY_ENOTFOUND);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 12),
                   PARLEY_EEXIST);
  assert_int_equal(grant(r, &idc, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_EEXIST);
  /* Tampered statement: signature, then counter. */
  mkgrant(&c, &ida, NULL, PARLEY_GRANT_ADD, "club", idc.pk, 1, 12);
  c.data[c.data_len - 1] ^= 1;
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  c.data[c.data_len - 1] ^= 1;
  c.data[c.data_len - 65] ^= 1;
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  /* Not a statement; a name over this registry's limit (16). */
  c.data_len = 10;
  assert_int_equal(run(r, &c), PARLEY_EINVAL);
  c.type = PARLEY_REG_GRANT;
  c.data_len = PARLEY_REG_DATA_MAX;
  assert_int_equal(run(r, &c), PARLEY_EINVAL);
  assert_int_equal(
      grant(r, &ida, PARLEY_GRANT_CREATE, "seventeen-chars-x", NULL, 1, 1),
      PARLEY_EINVAL);
  /* Refused commands change nothing and say nothing. */
  assert_string_equal(events(&rc), "");
  snap_of(r, &after);
  assert_int_equal(after.len, before.len);
  assert_memory_equal(after.data, before.data, before.len);
  parley_buf_close(&after);

  /* The last statement again (a retry after a lost answer): OK, no-op. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 11),
                   PARLEY_OK);
  assert_string_equal(events(&rc), "");
  snap_of(r, &after);
  assert_memory_equal(after.data, before.data, before.len);
  parley_buf_close(&after);

  /* A CREATE may not take a topic that others subscribe to; the owner's
   * own subscription is fine. */
  assert_int_equal(sub(r, idb.pk, "busy"), PARLEY_OK);
  assert_int_equal(sub(r, ida.pk, "mine"), PARLEY_OK);
  (void)events(&rc);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "busy", NULL, 1, 1),
                   PARLEY_EEXIST);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "mine", NULL, 1, 1),
                   PARLEY_OK);
  assert_int_equal(sub(r, idb.pk, "mine"), PARLEY_EDENIED);
  assert_int_equal(unsub(r, idb.pk, "busy"), PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "busy", NULL, 1, 1),
                   PARLEY_OK);
  parley_buf_close(&before);
  parley_registry_free(r);
}

static void test_acl_revoke_rotate(void **state) {
  struct parley_registry *r = acl_reg(NULL);
  struct parley_topic_key kb3, got;
  const uint8_t *blob;
  struct parley_groupkey_blob b;
  struct recorder rc;
  size_t len;
  char want[512];
  (void)state;

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 1, 3),
                   PARLEY_OK);
  assert_int_equal(sub(r, idb.pk, "club"), PARLEY_OK);
  assert_int_equal(sub(r, idc.pk, "club"), PARLEY_OK);
  assert_int_equal(sub(r, idc.pk, "open"), PARLEY_OK);
  observe(r, &rc);
  assert_int_equal(keyput(r, "club", ida.pk, 1, NULL), PARLEY_OK);
  assert_int_equal(keyput(r, "club", idb.pk, 1, NULL), PARLEY_OK);
  assert_int_equal(keyput(r, "club", idc.pk, 1, NULL), PARLEY_OK);
  snprintf(want, sizeof want, "KEY club %s e1 p\nKEY club %s e1 p\n"
           "KEY club %s e1 p\n", hx(&ida), hx(&idb), hx(&idc));
  assert_string_equal(events(&rc), want);

  /* REVOKE: the subscription goes (SUB_DEL), then the member, and the
   * epoch moves to 2. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_REVOKE, "club", idc.pk, 2, 4),
                   PARLEY_OK);
  snprintf(want, sizeof want, "DEL %s club 1\nMDEL club %s e2 p\n", hx(&idc),
           hx(&idc));
  assert_string_equal(events(&rc), want);
  assert_int_equal(parley_registry_is_member(r, "club", idc.pk), 0);
  assert_int_equal(parley_registry_peer(r, idc.pk)->nsubs, 1); /* "open" */
  assert_int_equal(sub(r, idc.pk, "club"), PARLEY_EDENIED);
  assert_int_equal(parley_registry_key_blob(r, "club", 1, idc.pk, &blob, &len),
                   PARLEY_ENOTFOUND);
  assert_null(blob);
  assert_int_equal(keyput(r, "club", idc.pk, 2, NULL), PARLEY_EDENIED);
  /* The others keep the previous epoch's key and get the new one. */
  assert_string_equal(keys_of(r, "club", &idb), "e1 ");
  assert_int_equal(keyput(r, "club", idb.pk, 2, NULL), PARLEY_OK);
  assert_int_equal(keyput(r, "club", idb.pk, 1, NULL), PARLEY_OK); /* re-put */
  assert_string_equal(keys_of(r, "club", &idb), "e1 e2 ");
  (void)events(&rc);

  /* ROTATE: epoch 3, same members; blobs older than epoch 2 go. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ROTATE, "club", NULL, 3, 5),
                   PARLEY_OK);
  snprintf(want, sizeof want, "ROTATE club %s e3 p\n", hx(&ida));
  assert_string_equal(events(&rc), want);
  assert_string_equal(keys_of(r, "club", &idb), "e2 ");
  assert_string_equal(keys_of(r, "club", &ida), "");
  assert_int_equal(keyput(r, "club", idb.pk, 1, NULL), PARLEY_ERANGE);
  assert_int_equal(keyput(r, "club", idb.pk, 4, NULL), PARLEY_ERANGE);
  assert_int_equal(keyput(r, "club", idb.pk, 3, &kb3), PARLEY_OK);
  assert_string_equal(keys_of(r, "club", &idb), "e2 e3 ");

  /* B opens what the index kept for it: the owner's epoch-3 key. */
  assert_int_equal(parley_registry_key_blob(r, "club", 3, idb.pk, &blob, &len),
                   PARLEY_OK);
  assert_int_equal(parley_groupkey_blob_decode(blob, len, &b), PARLEY_OK);
  assert_int_equal(parley_groupkey_open(&idb, ida.pk, "club", &b, &got),
                   PARLEY_OK);
  assert_int_equal(got.epoch, 3);
  assert_memory_equal(got.key, kb3.key, 32);
  /* C, added again, starts with no keys. */
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 3, 6),
                   PARLEY_OK);
  assert_string_equal(keys_of(r, "club", &idc), "");
  assert_int_equal(sub(r, idc.pk, "club"), PARLEY_OK);
  assert_int_equal(parley_registry_key_blob(r, "nope", 3, idb.pk, &blob, &len),
                   PARLEY_ENOTFOUND);
  parley_registry_free(r);
}

static void test_acl_key_put_refused(void **state) {
  struct parley_registry *r = acl_reg(NULL);
  struct parley_buf before, after;
  struct parley_reg_cmd c;
  struct recorder rc;
  char want[128];
  (void)state;

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2),
                   PARLEY_OK);
  snap_of(r, &before);
  observe(r, &rc);

  /* A member making its own "owner" blob; the owner's blob proposed by
   * someone else; a KEY_PUT signed by someone else, or altered. */
  mkkeyput(&c, &idb, NULL, NULL, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  mkkeyput(&c, &ida, NULL, idb.pk, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  mkkeyput(&c, &ida, &idb, NULL, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  mkkeyput(&c, &ida, NULL, NULL, "club", idb.pk, 1, NULL);
  c.data[5] ^= 1; /* the signature */
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  c.data[5] ^= 1;
  c.data[c.data_len - 1] ^= 1; /* the sealed key */
  assert_int_equal(run(r, &c), PARLEY_ECRYPTO);
  /* Public topic, non-member, wrong epoch, not a blob. */
  mkkeyput(&c, &ida, NULL, NULL, "open", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_ENOTFOUND);
  mkkeyput(&c, &ida, NULL, NULL, "club", idc.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_EDENIED);
  mkkeyput(&c, &ida, NULL, NULL, "club", idb.pk, 2, NULL);
  assert_int_equal(run(r, &c), PARLEY_ERANGE);
  c.data_len = 100;
  assert_int_equal(run(r, &c), PARLEY_EINVAL);
  c.data_len = 64;
  assert_int_equal(run(r, &c), PARLEY_EINVAL);
  assert_string_equal(events(&rc), "");
  snap_of(r, &after);
  assert_int_equal(after.len, before.len);
  assert_memory_equal(after.data, before.data, before.len);
  parley_buf_close(&after);
  parley_buf_close(&before);

  /* The same blob twice: the second is a no-op. */
  mkkeyput(&c, &ida, NULL, NULL, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &c), PARLEY_OK);
  assert_int_equal(run(r, &c), PARLEY_OK);
  snprintf(want, sizeof want, "KEY club %s e1 p\n", hx(&idb));
  assert_string_equal(events(&rc), want);
  parley_registry_free(r);
}

/* Builds the snapshot bytes of one private topic by hand. */
static void sb_acl_head(struct sbuild *s, const char *topic,
                        const uint8_t *owner, uint32_t epoch, uint64_t counter,
                        const uint8_t *sig, uint32_t nmembers) {
  sb_str8(s, topic);
  sb_bytes(s, owner, 32);
  sb_u32(s, epoch);
  sb_u64(s, counter);
  sb_bytes(s, sig, 64);
  sb_u32(s, nmembers);
}

static void sb_member(struct sbuild *s, const uint8_t *pk, int nkeys,
                      const struct parley_reg_cmd **keys) {
  uint8_t n = (uint8_t)nkeys;
  sb_bytes(s, pk, 32);
  sb_bytes(s, &n, 1);
  for (int i = 0; i < nkeys; i++) {
    uint16_t len = (uint16_t)(keys[i]->data_len - 64);
    uint8_t l[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    sb_bytes(s, l, 2);
    sb_bytes(s, keys[i]->data + 64, len);
  }
}

static void test_acl_snapshot(void **state) {
  struct parley_reg_limits lim = {0, 0, 0, 0, 0};
  struct parley_registry *r = acl_reg(NULL), *q;
  struct parley_reg_cmd add, kb1, kb2, ka2;
  const struct parley_reg_cmd *one[1], *two[2];
  const struct parley_identity *first, *second;
  struct parley_buf b, again;
  struct sbuild s, t;
  static const char *club[] = {"club"};
  (void)state;

  /* A owns "club" at epoch 2 with B; B has keys of epochs 1 and 2, A of
   * epoch 2.  No registered peers, so the peer section is empty. */
  assert_int_equal(expire(r, ida.pk), PARLEY_OK);
  assert_int_equal(expire(r, idb.pk), PARLEY_OK);
  assert_int_equal(expire(r, idc.pk), PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  mkgrant(&add, &ida, NULL, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2);
  assert_int_equal(run(r, &add), PARLEY_OK);
  mkkeyput(&kb1, &ida, NULL, NULL, "club", idb.pk, 1, NULL);
  assert_int_equal(run(r, &kb1), PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ROTATE, "club", NULL, 2, 3),
                   PARLEY_OK);
  mkkeyput(&kb2, &ida, NULL, NULL, "club", idb.pk, 2, NULL);
  mkkeyput(&ka2, &ida, NULL, NULL, "club", ida.pk, 2, NULL);
  assert_int_equal(run(r, &kb2), PARLEY_OK);
  assert_int_equal(run(r, &ka2), PARLEY_OK);
  /* The ROTATE's signature is the last one. */
  struct parley_reg_cmd rot;
  mkgrant(&rot, &ida, NULL, PARLEY_GRANT_ROTATE, "club", NULL, 2, 3);

  memset(&s, 0, sizeof s);
  sb_bytes(&s, "PRG2", 4);
  sb_u32(&s, 0);
  sb_u32(&s, 1);
  sb_acl_head(&s, "club", ida.pk, 2, 3, rot.data + rot.data_len - 64, 2);
  first = memcmp(ida.pk, idb.pk, 32) < 0 ? &ida : &idb;
  second = first == &ida ? &idb : &ida;
  one[0] = &ka2;
  two[0] = &kb1;
  two[1] = &kb2;
  sb_member(&s, first->pk, first == &ida ? 1 : 2, first == &ida ? one : two);
  sb_member(&s, second->pk, second == &ida ? 1 : 2, second == &ida ? one : two);
  snap_of(r, &b);
  assert_int_equal(b.len, s.n);
  assert_memory_equal(b.data, s.b, s.n);

  /* Restore gives the same bytes and the same answers. */
  assert_int_equal(parley_registry_new(&lim, &q), PARLEY_OK);
  assert_int_equal(parley_registry_restore(q, b.data, b.len), PARLEY_OK);
  assert_same_state(r, q);
  assert_string_equal(keys_of(q, "club", &idb), "e1 e2 ");
  assert_int_equal(parley_registry_is_member(q, "club", idb.pk), 1);
  /* ... and keeps judging like the original: the old ADD is a replay. */
  assert_int_equal(run(q, &add), PARLEY_ERANGE);
  assert_int_equal(run(q, &rot), PARLEY_OK); /* the last one: a retry */
  assert_int_equal(grant(q, &ida, PARLEY_GRANT_REVOKE, "club", idb.pk, 3, 4),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_REVOKE, "club", idb.pk, 3, 4),
                   PARLEY_OK);
  assert_same_state(r, q);

  /* Every truncation fails; every flipped byte fails or is canonical. */
  for (size_t n = 0; n < b.len; n++)
    assert_int_equal(parley_registry_restore(q, b.data, n), PARLEY_EPROTO);
  for (size_t i = 0; i < b.len; i++) {
    int rc;
    memcpy(t.b, b.data, b.len);
    t.b[i] ^= 0x01;
    rc = parley_registry_restore(q, t.b, b.len);
    if (rc == PARLEY_OK) {
      snap_of(q, &again);
      assert_int_equal(again.len, b.len);
      assert_memory_equal(again.data, t.b, b.len);
      parley_buf_close(&again);
    } else {
      assert_int_equal(rc, PARLEY_EPROTO);
      assert_int_equal(parley_registry_acl_count(q), 0);
    }
  }

  /* Crafted: each breaks one rule (the first is the valid baseline). */
#define ACASE(want, ...)                                                       \
  do {                                                                         \
    memset(&t, 0, sizeof t);                                                   \
    sb_bytes(&t, "PRG2", 4);                                                   \
    __VA_ARGS__;                                                               \
    assert_int_equal(parley_registry_restore(q, t.b, t.n), want);              \
  } while (0)
  one[0] = &kb1;
  ACASE(PARLEY_OK, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 1, 2, rot.data, 2);
        sb_member(&t, first->pk, 0, NULL); sb_member(&t, second->pk, 0, NULL));
  /* Owner not a member. */
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", idc.pk, 1, 2, rot.data, 2);
        sb_member(&t, first->pk, 0, NULL); sb_member(&t, second->pk, 0, NULL));
  /* Members unsorted; no members; epoch 0; counter 0. */
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 1, 2, rot.data, 2);
        sb_member(&t, second->pk, 0, NULL); sb_member(&t, first->pk, 0, NULL));
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 1, 2, rot.data, 0));
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 0, 2, rot.data, 1);
        sb_member(&t, ida.pk, 0, NULL));
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 1, 0, rot.data, 1);
        sb_member(&t, ida.pk, 0, NULL));
  /* B's epoch-1 blob filed under A, or under a topic at epoch 3. */
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 1, 2, rot.data, 1);
        sb_member(&t, ida.pk, 1, one));
  ACASE(PARLEY_OK, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 2, 2, rot.data, 2);
        sb_member(&t, first->pk, first == &idb, one);
        sb_member(&t, second->pk, second == &idb, one));
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 3, 2, rot.data, 2);
        sb_member(&t, first->pk, first == &idb, one);
        sb_member(&t, second->pk, second == &idb, one));
  /* Two blobs of one epoch, or in descending order. */
  two[0] = &kb2;
  two[1] = &kb1;
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 2, 2, rot.data, 2);
        sb_member(&t, first->pk, first == &idb ? 2 : 0, two);
        sb_member(&t, second->pk, second == &idb ? 2 : 0, two));
  two[0] = &kb1;
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 1);
        sb_acl_head(&t, "club", ida.pk, 2, 2, rot.data, 2);
        sb_member(&t, first->pk, first == &idb ? 2 : 0, two);
        sb_member(&t, second->pk, second == &idb ? 2 : 0, two));
  /* A subscriber who is not a member. */
  ACASE(PARLEY_EPROTO, sb_u32(&t, 1); sb_peer(&t, 0x01, "h:1", "", 1, club);
        sb_u32(&t, 1); sb_acl_head(&t, "club", ida.pk, 1, 2, rot.data, 1);
        sb_member(&t, ida.pk, 0, NULL));
  /* Topics unsorted or duplicated. */
  ACASE(PARLEY_EPROTO, sb_u32(&t, 0); sb_u32(&t, 2);
        sb_acl_head(&t, "club", ida.pk, 1, 2, rot.data, 1);
        sb_member(&t, ida.pk, 0, NULL);
        sb_acl_head(&t, "club", ida.pk, 1, 2, rot.data, 1);
        sb_member(&t, ida.pk, 0, NULL));
#undef ACASE

  /* Limits: members per topic and private topics. */
  parley_registry_free(q);
  lim.max_members = 1;
  assert_int_equal(parley_registry_new(&lim, &q), PARLEY_OK);
  assert_int_equal(parley_registry_restore(q, b.data, b.len), PARLEY_EPROTO);
  parley_registry_free(q);
  lim.max_members = 0;
  lim.max_private = 1;
  assert_int_equal(parley_registry_new(&lim, &q), PARLEY_OK);
  assert_int_equal(parley_registry_restore(q, b.data, b.len), PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "zz", NULL, 1, 1),
                   PARLEY_OK);
  parley_buf_close(&b);
  snap_of(r, &b);
  assert_int_equal(parley_registry_restore(q, b.data, b.len), PARLEY_EPROTO);
  parley_registry_free(q);
  parley_buf_close(&b);
  parley_registry_free(r);
}

/* A PRG1 snapshot (before private topics) restores, and is written back as
 * PRG2: the same bytes behind the new magic, then "no private topics". */
static void test_acl_restore_prg1(void **state) {
  struct parley_registry *r = mkreg(0, 0, 0);
  struct parley_buf b;
  struct sbuild s;
  static const char *ab[] = {"a", "b"};
  (void)state;

  memset(&s, 0, sizeof s);
  sb_bytes(&s, "PRG1", 4);
  sb_u32(&s, 2);
  sb_peer(&s, 0x11, "h1:1", "one", 0, NULL);
  sb_peer(&s, 0x22, "h2:2", "", 2, ab);
  assert_int_equal(parley_registry_restore(r, s.b, s.n), PARLEY_OK);
  assert_int_equal(parley_registry_peer_count(r), 2);
  assert_int_equal(parley_registry_acl_count(r), 0);
  snap_of(r, &b);
  assert_int_equal(b.len, s.n + 4);
  assert_memory_equal(b.data, "PRG2", 4);
  assert_memory_equal(b.data + 4, s.b + 4, s.n - 4);
  assert_memory_equal(b.data + s.n, "\0\0\0\0", 4);
  /* PRG1 with a private-topic section is trailing garbage. */
  sb_u32(&s, 0);
  assert_int_equal(parley_registry_restore(r, s.b, s.n), PARLEY_EPROTO);
  parley_buf_close(&b);
  parley_registry_free(r);
}

static void test_acl_codec(void **state) {
  static const size_t sizes[] = {1, 254, 255, 256, 300, 509, 510, 511, 533};
  struct parley_reg_cmd c, d;
  uint8_t buf[700], sig[64];
  size_t n;
  (void)state;

  memset(&c, 0, sizeof c);
  c.type = PARLEY_REG_GRANT;
  mkpk(c.pk, 3);
  c.ts_ms = -7;
  for (size_t i = 0; i < PARLEY_REG_DATA_MAX; i++)
    c.data[i] = (uint8_t)(i * 3 + 1);
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t len = sizes[k], c0 = len < 255 ? len : 255,
           c1 = len - c0 < 255 ? len - c0 : 255, c2 = len - c0 - c1;
    c.data_len = (uint16_t)len;
    c.type = k % 2 ? PARLEY_REG_KEY_PUT : PARLEY_REG_GRANT;
    assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n),
                     PARLEY_OK);
    assert_int_equal(n, 44 + len);
    assert_int_equal(buf[0], c.type);
    assert_memory_equal(buf + 1, c.pk, 32);
    assert_memory_equal(buf + 33, "\xff\xff\xff\xff\xff\xff\xff\xf9", 8);
    assert_int_equal(buf[41], c0);
    assert_memory_equal(buf + 42, c.data, c0);
    assert_int_equal(buf[42 + c0], c1);
    assert_memory_equal(buf + 43 + c0, c.data + c0, c1);
    assert_int_equal(buf[43 + c0 + c1], c2);
    assert_memory_equal(buf + 44 + c0 + c1, c.data + c0 + c1, c2);
    assert_int_equal(parley_reg_cmd_decode(buf, n, &d), PARLEY_OK);
    assert_int_equal(d.type, c.type);
    assert_int_equal(d.data_len, len);
    assert_memory_equal(d.data, c.data, len);
    assert_string_equal(d.topic, "");
    /* Every prefix and one more byte are refused. */
    for (size_t i = 0; i < n; i++)
      assert_int_equal(parley_reg_cmd_decode(buf, i, &d), PARLEY_EPROTO);
    buf[n] = 0;
    assert_int_equal(parley_reg_cmd_decode(buf, n + 1, &d), PARLEY_EPROTO);
  }
  /* Not canonical: a chunk after one that is not full; nothing at all. */
  memset(buf, 0, sizeof buf);
  buf[0] = PARLEY_REG_GRANT;
  buf[41] = 1;
  buf[43] = 1; /* chunk1 of one byte after a chunk0 of one */
  assert_int_equal(parley_reg_cmd_decode(buf, 46, &d), PARLEY_EPROTO);
  buf[41] = 0;
  buf[42] = 0;
  buf[43] = 0;
  assert_int_equal(parley_reg_cmd_decode(buf, 44, &d), PARLEY_EPROTO);
  /* Encoder limits; and types 1..4 ignore data. */
  c.data_len = 0;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  c.data_len = PARLEY_REG_DATA_MAX + 1;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n),
                   PARLEY_EINVAL);
  c.data_len = 100;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, 143, &n), PARLEY_ETOOBIG);
  assert_int_equal(n, 144);
  c = cmd(PARLEY_REG_SUBSCRIBE, c.pk, 1, "", "", "tp");
  c.data_len = 9;
  assert_int_equal(parley_reg_cmd_encode(&c, buf, sizeof buf, &n), PARLEY_OK);
  assert_int_equal(n, 46);
  /* Builders. */
  memset(sig, 0x5c, sizeof sig);
  assert_int_equal(parley_reg_cmd_grant(&d, c.pk, 5, buf, 0), PARLEY_EINVAL);
  assert_int_equal(parley_reg_cmd_grant(&d, c.pk, 5, buf,
                                        PARLEY_GRANT_MAX_LEN + 1),
                   PARLEY_EINVAL);
  assert_int_equal(d.type, 0);
  assert_int_equal(parley_reg_cmd_key_put(&d, c.pk, 5, buf,
                                          PARLEY_GROUPKEY_BLOB_MAX + 1, sig),
                   PARLEY_EINVAL);
  assert_int_equal(parley_reg_cmd_key_put(&d, c.pk, 5, buf, 3, sig),
                   PARLEY_OK);
  assert_int_equal(d.type, PARLEY_REG_KEY_PUT);
  assert_int_equal(d.data_len, 67);
  assert_memory_equal(d.data, sig, 64);
  assert_memory_equal(d.data + 64, buf, 3);
  assert_int_equal(d.ts_ms, 5);
  assert_memory_equal(d.pk, c.pk, 32);
}

static void test_acl_limits_oom(void **state) {
  struct parley_reg_limits lim = {0, 0, 0, 2, 1};
  struct parley_registry *r = acl_reg(&lim);
  struct parley_reg_cmd seq[6];
  struct parley_buf before, after;
  int failures = 0;
  (void)state;

  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "club", NULL, 1, 1),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_CREATE, "more", NULL, 1, 1),
                   PARLEY_ELIMIT);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2),
                   PARLEY_OK);
  assert_int_equal(grant(r, &ida, PARLEY_GRANT_ADD, "club", idc.pk, 1, 3),
                   PARLEY_ELIMIT);
  parley_registry_free(r);

  /* Each allocation of each command fails in turn: ENOMEM leaves no
   * trace, and the command then succeeds. */
  r = acl_reg(NULL);
  mkgrant(&seq[0], &ida, NULL, PARLEY_GRANT_CREATE, "club", NULL, 1, 1);
  mkgrant(&seq[1], &ida, NULL, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2);
  mkkeyput(&seq[2], &ida, NULL, NULL, "club", idb.pk, 1, NULL);
  mkkeyput(&seq[3], &ida, NULL, NULL, "club", idb.pk, 1, NULL); /* replace */
  mkgrant(&seq[4], &ida, NULL, PARLEY_GRANT_ADD, "club", idc.pk, 1, 3);
  mkgrant(&seq[5], &ida, NULL, PARLEY_GRANT_REVOKE, "club", idc.pk, 2, 4);
  for (int i = 0; i < 6; i++) {
    for (long k = 0;; k++) {
      int rc;
      snap_of(r, &before);
      heap.fail_after = k;
      rc = parley_registry_apply(r, &seq[i]);
      heap.fail_after = -1;
      if (rc == PARLEY_OK) {
        parley_buf_close(&before);
        break;
      }
      assert_int_equal(rc, PARLEY_ENOMEM);
      failures++;
      snap_of(r, &after);
      assert_int_equal(after.len, before.len);
      assert_memory_equal(after.data, before.data, before.len);
      parley_buf_close(&after);
      parley_buf_close(&before);
    }
  }
  assert_true(failures >= 4);
  assert_string_equal(keys_of(r, "club", &idb), "e1 ");
  parley_registry_free(r);
}

/* Random private-topic traffic against three registries: r, one restored
 * from r's snapshot halfway (then fed the same commands), and one that is
 * restored from r's snapshot every 50 commands.  Results, events and
 * snapshot bytes must agree throughout. */
static void test_acl_determinism(void **state) {
  static const char *topics[] = {"t0", "t1", "t2"};
  const struct parley_identity *ids[] = {&ida, &idb, &idc, &idd};
  struct parley_registry *r = acl_reg(NULL), *h = NULL, *p = mkreg(0, 0, 0);
  struct recorder rr, rh;
  struct parley_buf b, bh;
  int ok = 0, refused = 0;
  (void)state;

  rng_state = 7;
  observe(r, &rr);
  for (int step = 0; step < 700; step++) {
    const char *topic = topics[rng() % 3];
    const struct parley_identity *who = ids[rng() % 2]; /* owner: A or B */
    const struct parley_identity *m = ids[rng() % 4];
    struct parley_reg_acl acl;
    struct parley_reg_cmd c;
    int have = parley_registry_topic_acl(r, topic, &acl) == PARLEY_OK;
    uint64_t ctr = have ? acl.counter + (rng() % 8 ? 1 : 0) : 1;
    uint32_t ep = have ? acl.epoch : 1;
    int rc, op = (int)(rng() % 10);

    if (have && rng() % 4)
      who = memcmp(acl.owner, ida.pk, 32) == 0 ? &ida : &idb;
    switch (op) {
    case 0:
      mkgrant(&c, who, NULL, PARLEY_GRANT_CREATE, topic, NULL, 1, 1);
      break;
    case 1:
    case 2:
      mkgrant(&c, who, NULL, PARLEY_GRANT_ADD, topic,
              m == who ? idd.pk : m->pk, ep, ctr);
      break;
    case 3:
      mkgrant(&c, who, NULL, PARLEY_GRANT_REVOKE, topic,
              m == who ? idc.pk : m->pk, ep + 1, ctr);
      break;
    case 4:
      mkgrant(&c, who, NULL, PARLEY_GRANT_ROTATE, topic, NULL, ep + 1, ctr);
      break;
    case 5:
    case 6:
      mkkeyput(&c, who, NULL, NULL, topic, m->pk,
               ep - (ep > 1 && rng() % 3 == 0), NULL);
      break;
    case 7:
      c = cmd(rng() % 4 ? PARLEY_REG_SUBSCRIBE : PARLEY_REG_UNSUBSCRIBE,
              m->pk, step, "", "", topic);
      break;
    case 8:
      c = cmd(PARLEY_REG_EXPIRE, m->pk, step, "", "", "");
      break;
    default:
      c = cmd(PARLEY_REG_REGISTER, m->pk, step, "m:1", "", "");
      break;
    }
    rc = run(r, &c);
    if (rc == PARLEY_OK)
      ok++;
    else
      refused++;
    if (h != NULL) {
      char ev[sizeof rr.buf];
      assert_int_equal(run(h, &c), rc);
      snprintf(ev, sizeof ev, "%s", events(&rr));
      assert_string_equal(events(&rh), ev);
    } else {
      (void)events(&rr);
    }
    if (step == 350) {
      snap_of(r, &b);
      assert_int_equal(parley_registry_new(NULL, &h), PARLEY_OK);
      assert_int_equal(parley_registry_restore(h, b.data, b.len), PARLEY_OK);
      observe(h, &rh);
      parley_buf_close(&b);
    }
    if (step % 50 == 49) {
      snap_of(r, &b);
      assert_int_equal(parley_registry_restore(p, b.data, b.len), PARLEY_OK);
      snap_of(p, &bh);
      assert_int_equal(bh.len, b.len);
      assert_memory_equal(bh.data, b.data, b.len);
      parley_buf_close(&bh);
      parley_buf_close(&b);
      if (h != NULL)
        assert_same_state(r, h);
    }
  }
  assert_true(ok > 250);
  assert_true(refused > 100);
  assert_true(parley_registry_acl_count(r) >= 2);
  parley_registry_free(h);
  parley_registry_free(p);
  parley_registry_free(r);
}

/* GRANT and KEY_PUT go through the single-node log like any command; a
 * store whose snapshot is still PRG1 opens, and compaction writes PRG2. */
static void test_regstore_acl(void **state) {
  struct parley_registry *r = NULL, *ref = mkreg(0, 0, 0);
  struct parley_regstore *rs;
  struct parley_reg_cmd seq[5];
  struct logcap lc;
  struct sbuild s;
  uint8_t h[24];
  static const char *ab[] = {"a", "b"};
  (void)state;

  acl_ids();
  mkgrant(&seq[0], &ida, NULL, PARLEY_GRANT_CREATE, "club", NULL, 1, 1);
  mkgrant(&seq[1], &ida, NULL, PARLEY_GRANT_ADD, "club", idb.pk, 1, 2);
  mkkeyput(&seq[2], &ida, NULL, NULL, "club", idb.pk, 1, NULL);
  mkgrant(&seq[3], &ida, NULL, PARLEY_GRANT_ROTATE, "club", NULL, 2, 3);
  mkkeyput(&seq[4], &ida, NULL, NULL, "club", idb.pk, 2, NULL);
  rs = reopen(&r, &lc);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(parley_registry_apply(ref, &seq[i]), PARLEY_OK);
    logged(r, rs, &seq[i]);
  }
  parley_regstore_close(rs);
  rs = reopen(&r, &lc);
  assert_int_equal(parley_regstore_log_entries(rs), 5);
  assert_same_state(r, ref);
  assert_string_equal(keys_of(r, "club", &idb), "e1 e2 ");
  assert_int_equal(parley_regstore_compact(rs), PARLEY_OK);
  check_snap_header(0);
  parley_regstore_close(rs);
  rs = reopen(&r, &lc);
  assert_same_state(r, ref);
  assert_int_equal(lc.warns + lc.errors, 0);
  parley_regstore_close(rs);

  /* An old store: registry.snap holding a PRG1 snapshot. */
  memset(&s, 0, sizeof s);
  sb_bytes(&s, "PRG1", 4);
  sb_u32(&s, 1);
  sb_peer(&s, 0x22, "h2:2", "", 2, ab);
  memcpy(h, "PRSN\0\0\0\1\0\0\0\0\0\0\0\0", 16);
  for (int i = 0; i < 4; i++) {
    h[16 + i] = (uint8_t)(crc32_ref(s.b, s.n) >> (24 - 8 * i));
    h[20 + i] = (uint8_t)(s.n >> (24 - 8 * i));
  }
  spit("registry.snap", h, 24, 0);
  spit("registry.snap", s.b, s.n, 1);
  spit("registry.log", "", 0, 0);
  rs = reopen(&r, &lc);
  assert_int_equal(parley_registry_peer_count(r), 1);
  assert_int_equal(parley_registry_topic_count(r), 2);
  assert_int_equal(parley_registry_acl_count(r), 0);
  assert_int_equal(parley_regstore_compact(rs), PARLEY_OK);
  check_snap_header(0);
  parley_regstore_close(rs);
  parley_registry_free(r);
  parley_registry_free(ref);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_new_and_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_invalid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscribe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unsubscribe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_keeps_subs, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_foreach_order_and_stop, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_codec_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_codec_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_canonical, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_crafted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_alloc_bound, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_restore_corrupt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_apply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_10k, setup, teardown),
      cmocka_unit_test(test_crc32_ref),
      cmocka_unit_test_setup_teardown(test_regstore_reopen, rs_setup,
                                      rs_teardown),
      cmocka_unit_test_setup_teardown(test_regstore_torn_tail, rs_setup,
                                      rs_teardown),
      cmocka_unit_test_setup_teardown(test_regstore_compact, rs_setup,
                                      rs_teardown),
      cmocka_unit_test_setup_teardown(test_regstore_interrupted_compaction,
                                      rs_setup, rs_teardown),
      cmocka_unit_test_setup_teardown(test_regstore_bad_files, rs_setup,
                                      rs_teardown),
      cmocka_unit_test_setup_teardown(test_acl_members, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_grant_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_revoke_rotate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_key_put_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_acl_snapshot, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_restore_prg1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_codec, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_limits_oom, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_determinism, setup, teardown),
      cmocka_unit_test_setup_teardown(test_regstore_acl, rs_setup,
                                      rs_teardown),
  };
  parley_allocator_set(&counting);
  if (parley_crypto_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
