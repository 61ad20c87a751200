/* test_regstore.c — the regstore's group commit (regstore.h): appends are
 * buffered and reach the log only with the next sync, all in one write;
 * what one sync made durable survives a reopen in order; a burst of
 * appends does not leave its buffer allocated.  (Snapshots, torn tails and
 * compaction are covered in test_registry.c.) */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "index/registry.h"
#include "index/regstore.h"

/* ---- a counting allocator --------------------------------------------- */

/* Every block carries its size in a header so that live bytes can be
 * counted exactly. */
#define HDR 16u
static size_t live_bytes;

static void *c_malloc(void *ctx, size_t n) {
  uint8_t *p = malloc(HDR + n);
  (void)ctx;
  if (p == NULL)
    return NULL;
  memcpy(p, &n, sizeof n);
  live_bytes += n;
  return p + HDR;
}

static void c_free(void *ctx, void *q) {
  uint8_t *p;
  size_t n;
  (void)ctx;
  if (q == NULL)
    return;
  p = (uint8_t *)q - HDR;
  memcpy(&n, p, sizeof n);
  live_bytes -= n;
  free(p);
}

static void *c_realloc(void *ctx, void *q, size_t n) {
  uint8_t *p, *np;
  size_t old;
  if (q == NULL)
    return c_malloc(ctx, n);
  p = (uint8_t *)q - HDR;
  memcpy(&old, p, sizeof old);
  np = realloc(p, HDR + n);
  if (np == NULL)
    return NULL;
  memcpy(np, &n, sizeof n);
  live_bytes = live_bytes - old + n;
  return np + HDR;
}

static const struct parley_allocator counting = {c_malloc, c_realloc, c_free,
                                                 NULL};

/* ---- fixtures ------------------------------------------------------------ */

static char dir[64];

static int setup(void **state) {
  (void)state;
  parley_allocator_set(&counting);
  live_bytes = 0;
  snprintf(dir, sizeof dir, "/tmp/parley-test-regstore-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static void rm(const char *file) {
  char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  unlink(p);
}

static int teardown(void **state) {
  (void)state;
  rm("registry.log");
  rm("registry.snap");
  rm("registry.snap.tmp");
  rmdir(dir);
  assert_int_equal(live_bytes, 0); /* nothing leaked */
  parley_allocator_set(NULL);
  return 0;
}

static off_t log_size(void) {
  char p[128];
  struct stat st;
  snprintf(p, sizeof p, "%s/registry.log", dir);
  if (stat(p, &st) < 0)
    return -1;
  return st.st_size;
}

static struct parley_registry *mkreg(void) {
  struct parley_reg_limits lim;
  struct parley_registry *r = NULL;
  memset(&lim, 0, sizeof lim);
  assert_int_equal(parley_registry_new(&lim, &r), PARLEY_OK);
  return r;
}

/* REGISTER of peer i at port p. */
static struct parley_reg_cmd reg_cmd(unsigned i, unsigned port) {
  struct parley_reg_cmd c;
  memset(&c, 0, sizeof c);
  c.type = PARLEY_REG_REGISTER;
  c.pk[0] = (uint8_t)(i >> 24);
  c.pk[1] = (uint8_t)(i >> 16);
  c.pk[2] = (uint8_t)(i >> 8);
  c.pk[3] = (uint8_t)i;
  c.pk[31] = 0x5a;
  c.ts_ms = 1000 + (int64_t)i;
  snprintf(c.addr, sizeof c.addr, "127.0.0.1:%u", port);
  snprintf(c.name, sizeof c.name, "peer-%u", i);
  return c;
}

/* Applies and appends, as parley__index_submit does. */
static void submit(struct parley_registry *r, struct parley_regstore *rs,
                   const struct parley_reg_cmd *c) {
  assert_int_equal(parley_registry_apply(r, c), PARLEY_OK);
  assert_int_equal(parley_regstore_append(rs, c), PARLEY_OK);
}

/* ---- tests --------------------------------------------------------------- */

/* One turn's appends stay in memory until the sync, which writes them all
 * (and only then may their OKs go out). */
static void test_group_commit(void **state) {
  struct parley_registry *r = mkreg();
  struct parley_regstore *rs = NULL;
  struct parley_reg_cmd c;
  off_t one;
  (void)state;

  assert_int_equal(parley_regstore_open(dir, r, NULL, &rs), PARLEY_OK);
  assert_int_equal(log_size(), 0);
  c = reg_cmd(100, 10100);
  submit(r, rs, &c);
  assert_int_equal(log_size(), 0); /* buffered */
  assert_int_equal(parley_regstore_log_entries(rs), 1);
  assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
  one = log_size(); /* one record: every one below has the same size */
  assert_true(one > 8);
  /* 100 REGISTERs of one turn: nothing on disk before the sync, all of
   * them after it. */
  for (unsigned i = 101; i < 201; i++) {
    c = reg_cmd(i, 10000 + i);
    submit(r, rs, &c);
  }
  assert_int_equal(log_size(), one);
  assert_int_equal(parley_regstore_log_entries(rs), 101);
  assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
  assert_int_equal(log_size(), 101 * one);
  /* A sync with nothing pending writes nothing. */
  assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
  assert_int_equal(log_size(), 101 * one);
  parley_regstore_close(rs);
  parley_registry_free(r);

  /* Everything the syncs covered is there after a reopen, the latest
   * REGISTER of each peer winning. */
  r = mkreg();
  assert_int_equal(parley_regstore_open(dir, r, NULL, &rs), PARLEY_OK);
  assert_int_equal(parley_regstore_log_entries(rs), 101);
  assert_int_equal(parley_registry_peer_count(r), 101);
  c = reg_cmd(150, 0);
  assert_string_equal(parley_registry_peer(r, c.pk)->addr, "127.0.0.1:10150");
  parley_regstore_close(rs);
  parley_registry_free(r);
}

/* Appends not yet synced are written by close (an orderly shutdown loses
 * nothing). */
static void test_close_syncs(void **state) {
  struct parley_registry *r = mkreg();
  struct parley_regstore *rs = NULL;
  struct parley_reg_cmd c;
  (void)state;

  assert_int_equal(parley_regstore_open(dir, r, NULL, &rs), PARLEY_OK);
  for (unsigned i = 0; i < 7; i++) {
    c = reg_cmd(i, 2000 + i);
    submit(r, rs, &c);
  }
  parley_regstore_close(rs);
  parley_registry_free(r);
  r = mkreg();
  assert_int_equal(parley_regstore_open(dir, r, NULL, &rs), PARLEY_OK);
  assert_int_equal(parley_registry_peer_count(r), 7);
  parley_regstore_close(rs);
  parley_registry_free(r);
}

/* A burst of appends (thousands of REGISTERs in one turn) grows the
 * buffer; after the sync the store gives that memory back. */
static void test_burst_released(void **state) {
  struct parley_registry *r = mkreg();
  struct parley_regstore *rs = NULL;
  struct parley_reg_cmd c;
  size_t base, peak, after;
  (void)state;

  assert_int_equal(parley_regstore_open(dir, r, NULL, &rs), PARLEY_OK);
  /* The same peer over and over: the registry does not grow. */
  c = reg_cmd(1, 1);
  submit(r, rs, &c);
  assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
  base = live_bytes;
  for (unsigned i = 0; i < 5000; i++) {
    c = reg_cmd(1, 1000 + i % 50000);
    submit(r, rs, &c);
  }
  peak = live_bytes;
  assert_true(peak > base + 5000 * 40); /* ~60 bytes a record */
  assert_int_equal(parley_regstore_sync(rs, 0), PARLEY_OK);
  after = live_bytes;
  assert_true(after <= base + 64 * 1024);
  assert_int_equal(parley_regstore_log_entries(rs), 5001);
  parley_regstore_close(rs);
  parley_registry_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_syncs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_burst_released, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
