/* test_lease_mem.c — what a registered peer costs the index in memory,
 * counted exactly through the replaceable allocator (core/alloc.h):
 *
 *   - its lease: the table is flat (lease.h, "Memory"), so 10 000 leases
 *     take exactly the arrays' sizes, and removing them all and closing
 *     gives everything back;
 *   - its secure link, once open and idle: nothing but the link itself
 *     and the remote's HELLO strings (link_int.h, "Memory") — no read,
 *     plaintext or send buffer, no handshake state — on the accepting and
 *     on the dialling side, after frames went both ways.
 *
 * The link part runs real links over 127.0.0.1 on one uv loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "crypto/identity.h"
#include "index/lease.h"
#include "net/link_int.h"

/* ---- a counting allocator --------------------------------------------- */

#define HDR 16u
static size_t live_bytes, live_blocks;

static void *c_malloc(void *ctx, size_t n) {
  uint8_t *p = malloc(HDR + n);
  (void)ctx;
  if (p == NULL)
    return NULL;
  memcpy(p, &n, sizeof n);
  live_bytes += n;
  live_blocks++;
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
  live_blocks--;
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

/* ---- leases ------------------------------------------------------------- */

static void test_lease_bytes(void **state) {
  enum { N = 10000 };
  struct parley_lease_table t;
  uint8_t pk[32];
  size_t base;
  (void)state;

  parley_allocator_set(&counting);
  base = live_bytes;
  parley_lease_table_init(&t, 7);
  assert_int_equal(live_bytes, base); /* an empty table holds nothing */
  for (unsigned i = 0; i < N; i++) {
    memset(pk, 0, sizeof pk);
    memcpy(pk, &i, sizeof i);
    pk[31] = 1;
    assert_int_equal(parley_lease_renew(&t, pk, 0, 10000, 0), PARLEY_OK);
  }
  /* 16 doubled to 16 384 leases of 56 bytes plus a 4-byte heap slot each,
   * and 32 768 4-byte index slots (at most half full): 111.4 bytes a
   * lease at 10 000, three blocks in all. */
  assert_int_equal(sizeof(struct parley_lease), 56);
  assert_int_equal(live_bytes - base, 16384u * 56 + 16384u * 4 + 32768u * 4);
  assert_int_equal(live_blocks, 3);
  for (unsigned i = 0; i < N; i += 2) {
    memset(pk, 0, sizeof pk);
    memcpy(pk, &i, sizeof i);
    pk[31] = 1;
    assert_int_equal(parley_lease_remove(&t, pk), PARLEY_OK);
  }
  assert_int_equal(parley_lease_count(&t), N / 2);
  parley_lease_table_close(&t);
  assert_int_equal(live_bytes, base);
  assert_int_equal(live_blocks, 0);
  parley_allocator_set(NULL);
}

/* ---- links ---------------------------------------------------------------- */

#define NLINKS 40
#define WAIT_MS 5000

static uv_loop_t loop;
static uv_timer_t tick;
static struct parley_identity id_srv, id_cli[NLINKS + 1];
static int opens, pongs, pings;

static void tick_cb(uv_timer_t *t) { (void)t; }

#define WAIT_FOR(expr)                                                        \
  do {                                                                        \
    uint64_t dl_;                                                             \
    uv_update_time(&loop);                                                    \
    dl_ = uv_now(&loop) + WAIT_MS;                                            \
    (void)uv_timer_start(&tick, tick_cb, 5, 5);                               \
    while (!(expr) && uv_now(&loop) < dl_)                                    \
      uv_run(&loop, UV_RUN_ONCE);                                             \
    (void)uv_timer_stop(&tick);                                               \
  } while (0)

static void l_open(struct parley_link *l) {
  (void)l;
  opens++;
}

/* The server answers PING with PONG; the clients count PONGs. */
static void l_frame(struct parley_link *l, const struct parley_frame *f) {
  struct parley_frame r;
  if (f->type == PARLEY_FRAME_PING) {
    pings++;
    memset(&r, 0, sizeof r);
    r.type = PARLEY_FRAME_PONG;
    r.u.ping.nonce = f->u.ping.nonce;
    assert_int_equal(parley_link_send(l, &r), PARLEY_OK);
  } else if (f->type == PARLEY_FRAME_PONG) {
    pongs++;
  }
}

static void l_close(struct parley_link *l, int reason) {
  (void)l;
  (void)reason;
}

static const struct parley_link_cbs cbs = {l_open, l_frame, l_close};

static struct parley_net *mknet(const struct parley_identity *id,
                                const char *name, const char *addr) {
  struct parley_net_config cfg;
  struct parley_net *net = NULL;
  memset(&cfg, 0, sizeof cfg);
  cfg.loop = &loop;
  cfg.id = id;
  cfg.role = PARLEY_ROLE_PEER;
  cfg.name = name;
  assert_int_equal(parley_net_new(&cfg, &net), PARLEY_OK);
  parley_net_set_addr(net, addr);
  return net;
}

/* Dials client k, waits until both ends are open and a PING/PONG went
 * through, then lets the writes complete. */
static struct parley_link *dial(struct parley_net *cli, uint16_t port) {
  struct parley_link *l = NULL;
  struct parley_frame f;
  int o = opens, p = pongs;

  assert_int_equal(parley_net_connect(cli, "127.0.0.1", port, NULL, &cbs,
                                      NULL, &l),
                   PARLEY_OK);
  WAIT_FOR(opens == o + 2);
  assert_int_equal(opens, o + 2);
  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_PING;
  f.u.ping.nonce = 42;
  assert_int_equal(parley_link_send(l, &f), PARLEY_OK);
  WAIT_FOR(pongs == p + 1);
  assert_int_equal(pongs, p + 1);
  return l;
}

static void settle(void) {
  /* A few more turns: write callbacks free their requests. */
  for (int i = 0; i < 5; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_link_bytes(void **state) {
  struct parley_net *srv, *cli[NLINKS + 1];
  struct parley_listener *ls = NULL;
  struct parley_link *l[NLINKS + 1];
  size_t base, per_pair, strings;
  char name[16];
  (void)state;

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uv_timer_init(&loop, &tick), 0);
  parley_allocator_set(&counting);
  srv = mknet(&id_srv, "srv", "127.0.0.1:1");
  assert_int_equal(parley_net_listen(srv, "127.0.0.1", 0, &cbs, NULL, &ls),
                   PARLEY_OK);
  for (int i = 0; i <= NLINKS; i++) {
    snprintf(name, sizeof name, "c%02d", i);
    cli[i] = mknet(&id_cli[i], name, "127.0.0.1:2");
  }
  /* The first link warms up what the thread keeps for all its nets (the
   * shared read and plaintext buffers, spare send buffers). */
  l[0] = dial(cli[0], parley_listener_port(ls));
  settle();
  base = live_bytes;
  for (int i = 1; i <= NLINKS; i++)
    l[i] = dial(cli[i], parley_listener_port(ls));
  settle();
  /* Per pair of ends: two links, and each end keeps the other's HELLO
   * strings: "srv\0127.0.0.1:1\0" on the client, "cNN\0127.0.0.1:2\0" on
   * the server. */
  strings = (3 + 1 + 11 + 1) + (3 + 1 + 11 + 1);
  per_pair = 2 * sizeof(struct parley_link) + strings;
  assert_int_equal(live_bytes - base, (size_t)NLINKS * per_pair);
  assert_int_equal(pings, NLINKS + 1);
  for (int i = 0; i <= NLINKS; i++) {
    assert_null(l[i]->hs);        /* handshake state freed */
    assert_null(l[i]->in.data);   /* no read buffer */
    assert_null(l[i]->pt.data);   /* no plaintext buffer */
    assert_null(l[i]->out.data);  /* no send buffer */
    assert_int_equal(l[i]->on_dl, 0); /* no deadline */
  }
  /* An open idle link is well under a kilobyte of our own memory (816:
   * 800 until MSG_NEXT's pointer to its per-link state, which only links
   * that carry MSG frames allocate). */
  assert_true(sizeof(struct parley_link) <= 816);

  for (int i = 0; i <= NLINKS; i++)
    parley_net_free(cli[i]);
  parley_net_free(srv);
  WAIT_FOR(live_bytes == 0);
  assert_int_equal(live_bytes, 0);
  assert_int_equal(live_blocks, 0);
  parley_allocator_set(NULL);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lease_bytes),
      cmocka_unit_test(test_link_bytes),
  };
  if (parley_crypto_init() < 0 || parley_identity_generate(&id_srv) < 0)
    return 1;
  for (int i = 0; i <= NLINKS; i++)
    if (parley_identity_generate(&id_cli[i]) < 0)
      return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
