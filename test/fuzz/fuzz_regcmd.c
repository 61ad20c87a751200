/*
 * fuzz_regcmd.c — the registry command codec and state machine.
 *
 * Each input is used twice:
 *   1. as one encoded command: when it decodes, encoding the result must
 *      give back exactly the input bytes (the codec is canonical: every
 *      field is always present, strings cannot hold NUL, data chunks are
 *      cut at fixed places);
 *   2. as a script: u16 big-endian length + that many bytes, repeated.
 *      A record is either an encoded command, or (first byte 0xA0) a
 *      private-topic operation that the harness turns into a validly
 *      signed GRANT / KEY_PUT (or REGISTER / SUBSCRIBE of a signing
 *      identity), since random bytes never carry an Ed25519 signature:
 *
 *        0xA0  op  signer  member  topic  epoch_delta  counter_delta
 *
 *      op % 8: 0 CREATE, 1 ADD, 2 REVOKE, 3 ROTATE, 4 KEY_PUT (signer's
 *      blob for member), 5 REGISTER member, 6 SUBSCRIBE, 7 UNSUBSCRIBE.
 *      Epoch and counter are taken from the registry's current state,
 *      nudged by the deltas (% 3: one below, right, one above).
 *
 *      Every command is round-tripped through the codec, then checked and
 *      applied to a registry with small limits (check and apply must
 *      agree).  Afterwards the registry's indexes must agree with each
 *      other, only members may subscribe to private topics, and snapshot ->
 *      restore -> snapshot must be stable.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "crypto/groupkey.h"
#include "crypto/identity.h"
#include "index/registry.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

#define NIDS 4
#define NTOPICS 3
#define NEPOCHS 4
static const char *topics[NTOPICS] = {"p0", "p1", "pub"};
static struct parley_identity ids[NIDS];
/* Key blobs and their KEY_PUT signatures, made once: sealing draws random
 * ephemeral keys, and a fuzz target should be deterministic. */
static struct parley_reg_cmd keyputs[NIDS][NIDS][NTOPICS][NEPOCHS];
static int ready;

static const struct parley_reg_limits limits = {3, 8, 16, 4, 3};

static void init(void) {
  uint8_t seed[32];
  CHECK(parley_crypto_init() == PARLEY_OK);
  for (int i = 0; i < NIDS; i++) {
    memset(seed, 0x31 + i, sizeof seed);
    CHECK(parley_identity_from_seed(&ids[i], seed) == PARLEY_OK);
  }
  for (int o = 0; o < NIDS; o++)
    for (int m = 0; m < NIDS; m++)
      for (int t = 0; t < NTOPICS; t++)
        for (int e = 0; e < NEPOCHS; e++) {
          struct parley_topic_key k;
          struct parley_groupkey_blob b;
          uint8_t blob[PARLEY_GROUPKEY_BLOB_MAX], msg[600], sig[64];
          size_t n;

          memset(&k, 0, sizeof k);
          k.epoch = (uint32_t)e + 1;
          memset(k.key, 0x40 + e, sizeof k.key);
          CHECK(parley_groupkey_seal(&ids[o], topics[t], &k, ids[m].pk, &b) ==
                PARLEY_OK);
          CHECK(parley_groupkey_blob_encode(&b, blob, sizeof blob, &n) ==
                PARLEY_OK);
          memcpy(msg, PARLEY_REG_KEY_PUT_LABEL,
                 sizeof PARLEY_REG_KEY_PUT_LABEL);
          memcpy(msg + sizeof PARLEY_REG_KEY_PUT_LABEL, blob, n);
          parley_identity_sign(&ids[o], msg,
                               sizeof PARLEY_REG_KEY_PUT_LABEL + n, sig);
          CHECK(parley_reg_cmd_key_put(&keyputs[o][m][t][e], ids[o].pk, 1,
                                       blob, n, sig) == PARLEY_OK);
        }
  ready = 1;
}

/* Builds the command a 0xA0 record describes (p: 6 bytes after 0xA0). */
static void synth(const struct parley_registry *r, const uint8_t *p,
                  struct parley_reg_cmd *c) {
  const struct parley_identity *s = &ids[p[1] % NIDS];
  const uint8_t *member = ids[p[2] % NIDS].pk;
  const char *topic = topics[p[3] % NTOPICS];
  struct parley_reg_acl acl;
  struct parley_grant g;
  uint8_t buf[PARLEY_GRANT_MAX_LEN];
  uint32_t epoch = 1;
  uint64_t counter = 1;
  size_t n;

  if (parley_registry_topic_acl(r, topic, &acl) == PARLEY_OK) {
    epoch = acl.epoch;
    counter = acl.counter;
  }
  memset(c, 0, sizeof *c);
  memset(&g, 0, sizeof g);
  switch (p[0] % 8) {
  case 5: /* REGISTER the member */
    c->type = PARLEY_REG_REGISTER;
    memcpy(c->pk, member, 32);
    memcpy(c->addr, "m:1", 4);
    return;
  case 6:
  case 7: /* SUBSCRIBE / UNSUBSCRIBE the member */
    c->type = p[0] % 8 == 6 ? PARLEY_REG_SUBSCRIBE : PARLEY_REG_UNSUBSCRIBE;
    memcpy(c->pk, member, 32);
    memcpy(c->topic, topic, strlen(topic) + 1);
    return;
  case 4: /* KEY_PUT: epoch relative to the current one */
    *c = keyputs[p[1] % NIDS][p[2] % NIDS][p[3] % NTOPICS]
                [(epoch - 1 + (uint32_t)(p[4] % 3) + NEPOCHS - 1) % NEPOCHS];
    return;
  default:
    break;
  }
  /* ops 0..3: CREATE, ADD, REVOKE, ROTATE */
  g.action = (uint8_t)(p[0] % 8 + PARLEY_GRANT_CREATE);
  memcpy(g.topic, topic, strlen(topic) + 1);
  /* The shape rules: CREATE and ROTATE name the owner, ADD and REVOKE
   * someone else; CREATE is epoch 1, REVOKE and ROTATE >= 2. */
  memcpy(g.member_pk,
         g.action == PARLEY_GRANT_CREATE || g.action == PARLEY_GRANT_ROTATE
             ? s->pk
             : member,
         32);
  if (g.action != PARLEY_GRANT_CREATE &&
      g.action != PARLEY_GRANT_ROTATE && memcmp(member, s->pk, 32) == 0)
    memcpy(g.member_pk, ids[(p[2] + 1) % NIDS].pk, 32);
  /* The epoch the rule wants, or one off either way. */
  g.epoch = epoch + (g.action != PARLEY_GRANT_ADD) + p[4] % 3 - 1;
  if (g.action == PARLEY_GRANT_CREATE || g.epoch == 0)
    g.epoch = 1;
  if (g.epoch < 2 && g.action != PARLEY_GRANT_ADD &&
      g.action != PARLEY_GRANT_CREATE)
    g.epoch = 2;
  g.counter = counter + p[5] % 3;
  if (g.counter == 0)
    g.counter = 1;
  CHECK(parley_groupkey_grant_sign(s, &g) == PARLEY_OK);
  CHECK(parley_groupkey_grant_encode(&g, buf, sizeof buf, &n) == PARLEY_OK);
  CHECK(parley_reg_cmd_grant(c, s->pk, 2, buf, n) == PARLEY_OK);
}

static void roundtrip(const uint8_t *data, size_t size,
                      struct parley_reg_cmd *c, int *ok) {
  uint8_t out[600];
  size_t n = 0;

  *ok = parley_reg_cmd_decode(data, size, c) == PARLEY_OK;
  if (!*ok)
    return;
  CHECK(parley_reg_cmd_encode(c, out, sizeof out, &n) == PARLEY_OK);
  CHECK(n == size && memcmp(out, data, size) == 0);
}

/* Encodes c, then decodes it back into *c (as a Raft entry would). */
static void through_codec(struct parley_reg_cmd *c) {
  uint8_t out[600];
  size_t n = 0;
  CHECK(parley_reg_cmd_encode(c, out, sizeof out, &n) == PARLEY_OK);
  CHECK(parley_reg_cmd_decode(out, n, c) == PARLEY_OK);
}

struct tally {
  uint64_t subs; /* sum of per-peer or per-topic counts */
  uint64_t items;
};

static int count_peer(void *ctx, const struct parley_reg_peer *p) {
  struct tally *t = ctx;
  t->subs += p->nsubs;
  t->items++;
  return 0;
}

static int count_topic(void *ctx, const char *topic, uint32_t n) {
  struct tally *t = ctx;
  (void)topic;
  CHECK(n > 0); /* empty topics disappear */
  t->subs += n;
  t->items++;
  return 0;
}

struct acl_walk {
  const struct parley_registry *r;
  const char *topic;
  uint64_t items;
};

static int member_sub(void *ctx, const struct parley_reg_peer *p) {
  struct acl_walk *w = ctx;
  CHECK(parley_registry_is_member(w->r, w->topic, p->pk));
  return 0;
}

static int check_acl(void *ctx, const char *topic,
                     const struct parley_reg_acl *acl) {
  struct acl_walk *w = ctx;
  w->items++;
  w->topic = topic;
  CHECK(acl->members >= 1 && acl->members <= limits.max_members);
  CHECK(acl->epoch >= 1 && acl->counter >= 1);
  CHECK(parley_registry_is_member(w->r, topic, acl->owner));
  CHECK(parley_registry_foreach_subscriber(w->r, topic, member_sub, w) == 0);
  return 0;
}

static void check_state(const struct parley_registry *r) {
  struct tally peers = {0, 0}, topics_t = {0, 0};
  struct acl_walk aw = {r, NULL, 0};
  struct parley_buf a, b;
  struct parley_registry *copy;

  CHECK(parley_registry_foreach_peer(r, count_peer, &peers) == 0);
  CHECK(parley_registry_foreach_topic(r, count_topic, &topics_t) == 0);
  CHECK(peers.items == parley_registry_peer_count(r));
  CHECK(topics_t.items == parley_registry_topic_count(r));
  CHECK(peers.subs == topics_t.subs);
  CHECK(parley_registry_foreach_acl(r, check_acl, &aw) == 0);
  CHECK(aw.items == parley_registry_acl_count(r));

  parley_buf_init(&a, 1u << 24);
  parley_buf_init(&b, 1u << 24);
  CHECK(parley_registry_snapshot(r, &a) == PARLEY_OK);
  CHECK(parley_registry_new(&limits, &copy) == PARLEY_OK);
  CHECK(parley_registry_restore(copy, a.data, a.len) == PARLEY_OK);
  CHECK(parley_registry_snapshot(copy, &b) == PARLEY_OK);
  CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
  parley_registry_free(copy);
  parley_buf_close(&a);
  parley_buf_close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct parley_registry *r;
  struct parley_reg_cmd c;
  size_t pos = 0;
  int ok;

  if (!ready)
    init();
  roundtrip(data, size, &c, &ok);

  if (parley_registry_new(&limits, &r) != PARLEY_OK)
    return 0;
  if (ok) {
    int want = parley_registry_check(r, &c);
    CHECK(parley_registry_apply(r, &c) == want);
  }
  while (size - pos >= 2) {
    size_t len = (size_t)data[pos] << 8 | data[pos + 1];
    int want;
    pos += 2;
    if (len > size - pos)
      break;
    if (len == 7 && data[pos] == 0xA0) {
      synth(r, data + pos + 1, &c);
      through_codec(&c);
      ok = 1;
    } else {
      roundtrip(data + pos, len, &c, &ok);
    }
    pos += len;
    if (!ok)
      continue;
    want = parley_registry_check(r, &c);
    CHECK(parley_registry_apply(r, &c) == want);
  }
  check_state(r);
  parley_registry_free(r);
  return 0;
}
