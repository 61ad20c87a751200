/*
 * test_registry_snap.c — the registry's canonical snapshot and its restore
 * (registry.h), public and private topics, and the single-node store that
 * persists it as snapshot + log (regstore.h).
 *
 * Expected snapshot bytes are written independently of registry_snap.c
 * (struct sbuild); crafted, truncated and bit-flipped inputs must either
 * fail and leave an empty state or restore to a state whose snapshot is
 * the input itself.  Shared helpers are in registry_fixture.h.
 */
#include "registry_fixture.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "index/regstore.h"

/* Snapshot ----------------------------------------------------------------- */

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
      cmocka_unit_test_setup_teardown(test_snapshot_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_canonical, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_crafted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_alloc_bound, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_restore_corrupt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_limits, setup, teardown),
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
      cmocka_unit_test_setup_teardown(test_acl_snapshot, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acl_restore_prg1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_regstore_acl, rs_setup,
                                      rs_teardown),
  };
  parley_allocator_set(&counting);
  if (parley_crypto_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
