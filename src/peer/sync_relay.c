/*
 * sync_relay.c — the relay's half of anti-entropy: answering SYNC_QUERY
 * with a summary of the store and SYNC_FETCH with a batch the requester can
 * verify on its own (docs/PROTOCOL.md section 14).
 *
 * A relay serves only topics (never direct "@" channels) that it subscribes
 * to or publishes on, and each link may make at most BUCKET_CAP requests in
 * a burst and BUCKET_RATE per second after that (a token bucket in struct
 * plink); a request over the limit is answered with ERROR(req, ELIMIT).
 *
 * Serving SYNC_FETCH{from, to}: the batch must start where the relay can
 * prove the chain value before it: h(from - 1) from its copy of message
 * from - 1 (or a checkpoint at from - 1, or zeros for from == 1).  If it has
 * neither, it starts right after the first message it holds in the range.
 * From there it takes its contiguous run (at most PARLEY_SYNC_MAX_BATCH
 * seqs) and ends the batch at a checkpoint it holds inside the run: the
 * first one at or after min(to, end of run), else the last one before.
 * Messages up to `to` go whole while they fit the frame; the rest of the run
 * up to the checkpoint goes as digests only, which keeps the chain
 * checkable and the frame small.  When it can prove nothing, it answers an
 * empty batch.  The relay does not check its own data: the requester does.
 */
#include "peer/node_int.h"

#include <string.h>

#include "core/alloc.h"
#include "crypto/chain.h"
#include "wire/sync_wire.h"

#define BUCKET_CAP 32u    /* requests in a burst */
#define BUCKET_RATE 16u   /* requests per second, sustained */
#define MAX_BATCH_BYTES (4u * 1024u * 1024u)
#define SEND_TRIES 4      /* halving the frame budget on ETOOBIG */

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Takes one request token from the link's bucket; 0 when empty. */
static int take_token(struct plink *pl) {
  uint64_t now = parley_mono_ms();
  uint64_t cap = (uint64_t)BUCKET_CAP * 1000u, t;

  if (pl->sync_refill_ms == 0) {
    t = cap;
  } else {
    /* BUCKET_RATE tokens per second = BUCKET_RATE milli-tokens per ms. */
    t = pl->sync_tokens + (now - pl->sync_refill_ms) * BUCKET_RATE;
    if (t > cap)
      t = cap;
  }
  pl->sync_refill_ms = now ? now : 1;
  if (t < 1000) {
    pl->sync_tokens = (uint32_t)t;
    return 0;
  }
  pl->sync_tokens = (uint32_t)(t - 1000);
  return 1;
}

static void send_limited(struct parley_node *n, struct plink *pl,
                         uint32_t req) {
  struct parley_frame f;
  static const char text[] = "sync rate limit";

  memset(&f, 0, sizeof f);
  f.type = PARLEY_FRAME_ERROR;
  f.u.error.req = req;
  f.u.error.code = (uint16_t)-PARLEY_ELIMIT;
  f.u.error.text.ptr = text;
  f.u.error.text.len = sizeof text - 1;
  if (parley_link_send(pl->link, &f) < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "rate-limit answer not sent");
}

/* Copies a decoded topic; 1 if it is one this node may relay: a valid
 * topic (not a direct channel) that it subscribes to or publishes on. */
static int servable(struct parley_node *n, const struct parley_str *t,
                    char out[CHANNEL_MAX], const uint8_t asker[32]) {
  uint8_t hash[32];
  uint64_t seq = 0;

  if (t->len == 0 || t->len >= CHANNEL_MAX)
    return 0;
  memcpy(out, t->ptr, t->len);
  out[t->len] = '\0';
  if (!parley_topic_valid(out, t->len, PARLEY_MAX_TOPIC))
    return 0;
  /* A private topic's history (sealed, but still who said what when) goes
   * to members only. */
  if (!parley__ptopic_may_serve(n, out, asker))
    return 0;
  if (parley_map_get(&n->subs, out, t->len) != NULL)
    return 1;
  return parley_store_chain_head(n->store, out, &seq, hash) == PARLEY_OK &&
         seq > 0;
}

/* ---- SYNC_QUERY -> SYNC_SUMMARY --------------------------------------------- */

struct sum_ctx {
  uint8_t *raw;
  uint32_t count;
};

static int sum_row(void *ctx, const uint8_t publisher[32], uint64_t max_seq,
                   uint64_t signed_seq) {
  struct sum_ctx *c = ctx;
  uint8_t *p = c->raw + (size_t)c->count * PARLEY_SYNC_SUMMARY_ENTRY;
  memcpy(p, publisher, 32);
  put_be64(p + 32, max_seq);
  put_be64(p + 40, signed_seq);
  c->count++;
  return 0;
}

void parley__sync_serve_query(struct parley_node *n, struct plink *pl,
                              const struct parley_frame *f) {
  struct parley_sync_query q;
  struct parley_sync_summary sm;
  struct sum_ctx c = {NULL, 0};
  char topic[CHANNEL_MAX];
  uint8_t *buf = NULL;
  size_t cap, w;
  int rc = PARLEY_OK;

  if (parley_sync_query_decode(f->u.opaque.data, f->u.opaque.len, &q) < 0) {
    parley_link_fail(pl->link, 0, PARLEY_EPROTO, "malformed SYNC_QUERY");
    return;
  }
  if (!take_token(pl)) {
    send_limited(n, pl, q.req);
    return;
  }
  memset(&sm, 0, sizeof sm);
  sm.req = q.req;
  sm.topic = q.topic;
  if (servable(n, &q.topic, topic, pl->peer->pk)) {
    c.raw = parley_malloc((size_t)PARLEY_SYNC_MAX_SUMMARY *
                          PARLEY_SYNC_SUMMARY_ENTRY);
    if (c.raw == NULL)
      return;
    rc = parley_store_sync_summary(n->store, topic, PARLEY_SYNC_MAX_SUMMARY,
                                   sum_row, &c);
    if (rc < 0) {
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "sync summary %s: %s", topic,
                 parley_strerror(rc));
      c.count = 0;
    }
  }
  cap = 4 + 1 + 255 + 4 + (size_t)c.count * PARLEY_SYNC_SUMMARY_ENTRY;
  buf = parley_malloc(cap);
  if (buf == NULL) {
    parley_free(c.raw);
    return;
  }
  /* A remote with a small max_frame gets fewer publishers. */
  for (int tries = 0; tries < SEND_TRIES; tries++) {
    sm.count = c.count;
    sm.raw = c.raw;
    sm.raw_len = (size_t)c.count * PARLEY_SYNC_SUMMARY_ENTRY;
    rc = parley_sync_summary_encode(&sm, buf, cap, &w);
    if (rc == PARLEY_OK)
      rc = parley__sync_send(pl->link, PARLEY_FRAME_SYNC_SUMMARY, buf, w);
    if (rc != PARLEY_ETOOBIG)
      break;
    c.count /= 2;
  }
  if (rc < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "sync summary not sent: %s",
               parley_strerror(rc));
  parley_free(buf);
  parley_free(c.raw);
}

/* ---- SYNC_FETCH -> SYNC_BATCH ----------------------------------------------- */

struct batch_ctx {
  const uint8_t *pub;
  const char *topic;
  size_t topic_len;
  uint64_t expect;   /* next seq the walk must see */
  uint64_t to, cp_seq;
  uint8_t *raw;      /* entries */
  size_t cap, len;
  uint32_t count, full;
  int digests;       /* from here on, digests only */
};

static int add_entry(void *ctx, const struct parley_msg *m) {
  struct batch_ctx *b = ctx;
  struct parley_sync_entry e;
  struct parley_chain_msg cm;
  uint8_t d[PARLEY_CHAIN_HASH];
  size_t after, w, need;
  int rc;

  if (m->seq != b->expect)
    return PARLEY_ENOTFOUND; /* the run changed under us */
  memset(&e, 0, sizeof e);
  e.kind = PARLEY_SYNC_ENTRY_MSG;
  e.ts_ms = (uint64_t)m->ts_ms;
  e.flags = (uint8_t)m->flags;
  e.body = m->body;
  e.body_len = (uint32_t)m->body_len;
  /* Room left for the entries after this one, as digests. */
  after = (size_t)(b->cp_seq - m->seq) * PARLEY_SYNC_DIGEST_ENTRY;
  need = parley_sync_entry_size(&e);
  if (b->digests || m->seq > b->to || m->body_len > UINT32_MAX ||
      b->len + need + after > b->cap) {
    b->digests = 1;
    memset(&cm, 0, sizeof cm);
    cm.publisher = b->pub;
    cm.channel = b->topic;
    cm.channel_len = b->topic_len;
    cm.seq = m->seq;
    cm.ts_ms = (uint64_t)m->ts_ms;
    cm.flags = m->flags;
    cm.body = m->body;
    cm.body_len = m->body_len;
    rc = parley_chain_digest(&cm, d);
    if (rc < 0)
      return rc;
    memset(&e, 0, sizeof e);
    e.kind = PARLEY_SYNC_ENTRY_DIGEST;
    e.digest = d;
  }
  rc = parley_sync_entry_encode(&e, b->raw + b->len, b->cap - b->len, &w);
  if (rc < 0)
    return rc;
  b->len += w;
  b->count++;
  if (e.kind == PARLEY_SYNC_ENTRY_MSG)
    b->full++;
  b->expect++;
  return 0;
}

/* What one FETCH can be answered with. */
struct plan {
  uint64_t start, cp_seq;
  uint8_t prev[32], cp_hash[32], cp_sig[64];
};

static int grab_seq(void *ctx, const struct parley_msg *m) {
  *(uint64_t *)ctx = m->seq;
  return 1;
}

/* Decides start, prev and the closing checkpoint.  PARLEY_ENOTFOUND when
 * nothing in [from, to] can be proven by this node. */
static int plan_batch(struct parley_node *n, const uint8_t pub[32],
                      const char *topic, uint64_t from, uint64_t to,
                      struct plan *pl) {
  struct parley_store *st = n->store;
  uint64_t h = 0, g0, g1, e_run, want;
  int rc;

  if (from > (uint64_t)INT64_MAX - PARLEY_SYNC_MAX_BATCH)
    return PARLEY_ENOTFOUND;
  pl->start = from;
  if (from == 1) {
    memset(pl->prev, 0, sizeof pl->prev);
  } else {
    rc = parley_store_chain_at(st, pub, topic, from - 1, pl->prev);
    if (rc == PARLEY_ENOTFOUND) {
      /* Start after the first message held in the range instead. */
      rc = parley_store_seq_range(st, pub, topic, from, to, 1, grab_seq, &h);
      if (rc < 0)
        return rc;
      if (h == 0 || h >= to)
        return PARLEY_ENOTFOUND;
      rc = parley_store_chain_at(st, pub, topic, h, pl->prev);
      pl->start = h + 1;
    }
    if (rc < 0)
      return rc;
  }
  rc = parley_store_seq_gap(st, pub, topic, pl->start,
                            pl->start + PARLEY_SYNC_MAX_BATCH - 1, &g0, &g1);
  if (rc == PARLEY_ENOTFOUND)
    e_run = pl->start + PARLEY_SYNC_MAX_BATCH - 1;
  else if (rc < 0)
    return rc;
  else if (g0 == pl->start)
    return PARLEY_ENOTFOUND;
  else
    e_run = g0 - 1;
  want = to < e_run ? to : e_run;
  rc = parley_store_checkpoint_find(st, pub, topic, want, e_run, 0,
                                    &pl->cp_seq, pl->cp_hash, pl->cp_sig);
  if (rc == PARLEY_ENOTFOUND)
    rc = parley_store_checkpoint_find(st, pub, topic, pl->start, want, 1,
                                      &pl->cp_seq, pl->cp_hash, pl->cp_sig);
  return rc;
}

void parley__sync_serve_fetch(struct parley_node *n, struct plink *pl,
                              const struct parley_frame *f) {
  struct parley_sync_fetch q;
  struct parley_sync_batch b;
  struct batch_ctx c;
  struct plan plan;
  char topic[CHANNEL_MAX] = "";
  uint8_t *raw = NULL, *buf = NULL;
  size_t budget, hdr, w;
  int rc;

  if (parley_sync_fetch_decode(f->u.opaque.data, f->u.opaque.len, &q) < 0) {
    parley_link_fail(pl->link, 0, PARLEY_EPROTO, "malformed SYNC_FETCH");
    return;
  }
  if (!take_token(pl)) {
    send_limited(n, pl, q.req);
    return;
  }
  memset(&b, 0, sizeof b);
  b.req = q.req;
  b.topic = q.topic;
  b.publisher = q.publisher;
  memset(&plan, 0, sizeof plan);
  rc = servable(n, &q.topic, topic, pl->peer->pk)
           ? plan_batch(n, q.publisher, topic, q.from, q.to, &plan)
           : PARLEY_ENOTFOUND;
  hdr = PARLEY_SYNC_BATCH_HDR(q.topic.len);
  budget = n->cfg.max_frame > hdr + 1 ? n->cfg.max_frame - 1 - hdr : 0;
  if (budget > MAX_BATCH_BYTES)
    budget = MAX_BATCH_BYTES;
  if (rc == PARLEY_OK) {
    raw = parley_malloc(budget ? budget : 1);
    buf = parley_malloc(hdr + budget);
    if (raw == NULL || buf == NULL)
      rc = PARLEY_ENOMEM;
  }
  for (int tries = 0; rc == PARLEY_OK && tries < SEND_TRIES; tries++) {
    memset(&c, 0, sizeof c);
    c.pub = q.publisher;
    c.topic = topic;
    c.topic_len = q.topic.len;
    c.expect = plan.start;
    c.to = q.to;
    c.cp_seq = plan.cp_seq;
    c.raw = raw;
    c.cap = budget >> tries;
    rc = parley_store_seq_range(n->store, q.publisher, topic, plan.start,
                                plan.cp_seq, 0, add_entry, &c);
    if (rc == PARLEY_OK && c.count != plan.cp_seq - plan.start + 1)
      rc = PARLEY_ENOTFOUND;
    if (rc < 0)
      break;
    b.from = plan.start;
    b.prev = plan.prev;
    b.cp_seq = plan.cp_seq;
    b.cp_hash = plan.cp_hash;
    b.cp_sig = plan.cp_sig;
    b.count = c.count;
    b.raw = raw;
    b.raw_len = c.len;
    rc = parley_sync_batch_encode(&b, buf, hdr + budget, &w);
    if (rc == PARLEY_OK)
      rc = parley__sync_send(pl->link, PARLEY_FRAME_SYNC_BATCH, buf, w);
    if (rc == PARLEY_OK) {
      n->m.sync_served += c.full;
      goto done;
    }
    if (rc != PARLEY_ETOOBIG)
      break;
    rc = PARLEY_OK; /* smaller next time */
  }
  if (rc < 0 && rc != PARLEY_ENOTFOUND)
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "sync fetch %s from %s: %s",
               topic, pl->peer->id,
               parley_strerror(rc));
  /* Nothing provable: an empty batch says so. */
  memset(&b, 0, sizeof b);
  b.req = q.req;
  b.topic = q.topic;
  b.publisher = q.publisher;
  {
    uint8_t small[PARLEY_SYNC_BATCH_HDR(255)];
    if (parley_sync_batch_encode(&b, small, sizeof small, &w) == PARLEY_OK &&
        parley__sync_send(pl->link, PARLEY_FRAME_SYNC_BATCH, small, w) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "empty batch not sent");
  }
done:
  parley_free(raw);
  parley_free(buf);
}
