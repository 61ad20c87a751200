/*
 * sync.c — eventual consistency with repair, the publisher's and the
 * requester's halves (the relay's half is sync_relay.c).
 *
 * Publisher: every message extends the channel's hash chain (delivery.c);
 * this file signs the chain head as a checkpoint every SIGN_EVERY messages
 * or SIGN_AFTER_MS after the first unsigned one, stores it, and sends it as
 * CHAIN_SIG to the topic's subscribers that have an open link (fire and
 * forget; a subscriber that missed it gets the latest checkpoint when its
 * link opens, or from a relay).  Direct channels are never relayed, so they
 * are never signed.  On start it signs what a crash left unsigned; on a
 * clean stop, what is pending.
 *
 * Receiver: a CHAIN_SIG must come from its publisher's own link and verify
 * under the publisher's key; it is stored for later relaying.
 *
 * Requester (anti-entropy): each subscribed topic is synced after the node
 * registers with the index, after an API subscribe, and every
 * SYNC_INTERVAL_MS +- 25 %.  A session takes the topic's subscriber list
 * from the route machinery (parley__route_get WATCHes the topic), picks up
 * to MAX_CANDIDATES of them at random and works through them until
 * RELAYS_PER_ROUND relays answered in full.  With each relay: SYNC_QUERY ->
 * SYNC_SUMMARY (per publisher: highest seq held, highest checkpoint held);
 * for each publisher, the gaps of our store up to min(both) are fetched
 * with SYNC_FETCH (at most PARLEY_SYNC_MAX_BATCH seqs each, one request in
 * flight) and every SYNC_BATCH is verified as a whole with
 * parley_chain_verify_run under the PUBLISHER's key.  A batch that fails is
 * refused entirely, logged with the relay's id, counted (sync_rejected),
 * and the session moves on to another relay.  Verified messages are stored
 * as received messages (duplicates dropped by id), streamed to API
 * clients, and the checkpoint is stored so that this node can relay them
 * in turn.  Progress is strictly monotonic (a cursor per publisher), so a
 * relay that answers nothing useful cannot keep a session busy; a session
 * also ends after MAX_FETCHES requests or SESSION_MAX_MS, and a relay's
 * ELIMIT ("slow down") is honoured MAX_LIMITED times before the session
 * moves on.  Sessions for topics no longer subscribed store nothing.  A
 * per (publisher, topic) watermark remembers up to where the store is
 * known to be contiguous, so periodic rounds do not rescan old ranges.
 */
#include "peer/node_int.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "crypto/chain.h"
#include "wire/sync_wire.h"

/* Messages per checkpoint at most.  A relay ends each batch (at most
 * PARLEY_SYNC_MAX_BATCH seqs) at a checkpoint inside it, so this must stay
 * well below that; at high rates SIGN_AFTER_MS bounds nothing and every
 * checkpoint costs the publisher a signature and each subscriber a
 * verification (64 cost the acknowledged benchmark about 5 %). */
#define SIGN_EVERY 256
static_assert(SIGN_EVERY * 2 <= PARLEY_SYNC_MAX_BATCH,
              "a relay's batch must hold a checkpoint");
#define SIGN_AFTER_MS 200      /* ... or this long after the first unsigned */
#define TICK_MS 250
#define SYNC_INTERVAL_MS 30000 /* periodic round per topic, +- 25 % */
#define STEP_TIMEOUT_MS 5000   /* route list, link, or a relay's answer */
#define RETRY_LIMITED_MS 1000  /* after a relay answered ELIMIT */
#define MAX_CANDIDATES 8
#define RELAYS_PER_ROUND 2
#define MAX_ACTIVE 4           /* sessions at once */
#define MAX_FETCHES 4096       /* requests per session */
#define MAX_LIMITED 8          /* ELIMIT answers taken from one relay */
#define SESSION_MAX_MS 300000  /* a session ends after this long anyway */
#define MAX_MARKS 65536        /* watermarks kept */

/* This node's own chain on one topic it publishes to. */
struct pubchan {
  uint64_t head_seq, signed_seq;
  uint8_t head[PARLEY_CHAIN_HASH];
  uint64_t dirty_since; /* mono ms of the first unsigned message; 0 = none */
};

enum sess_state { S_ROUTE, S_LINK, S_SUMMARY, S_FETCH, S_WAIT };

struct sum_entry {
  uint8_t pub[32];
  uint64_t target; /* fetch gaps up to here */
};

/* One anti-entropy round for one topic. */
struct session {
  struct session *prev, *next;
  char topic[CHANNEL_MAX];
  size_t topic_len;
  uint8_t cand[MAX_CANDIDATES][32];
  uint32_t ncand, icand, successes;
  enum sess_state state, waiting; /* waiting: what S_WAIT retries */
  uint8_t relay[32];
  uint32_t req;
  uint64_t deadline;             /* mono */
  struct sum_entry *ents;
  uint32_t nents, ient;
  uint64_t cursor;               /* next seq to look for gaps from */
  uint64_t mark;                 /* known contiguous 1..mark */
  int contig;                    /* mark+1 .. cursor-1 all held */
  uint64_t fetch_from, fetch_to;
  uint32_t fetches, stored, rejected;
  uint32_t limited;              /* ELIMIT answers from this relay */
  uint64_t started;              /* mono */
};

/* Per subscribed topic: when its next round is due. */
struct topic_sync {
  uint64_t next_run; /* mono */
  struct session *session;
};

struct parley_sync {
  struct parley_node *n;
  uv_timer_t tick, sign;
  int handles;
  struct parley_map pubs;   /* channel -> struct pubchan* */
  struct parley_map topics; /* topic -> struct topic_sync* */
  struct parley_map marks;  /* publisher || topic -> uint64_t* */
  struct session *sessions;
  uint32_t active, next_req;
};

/* ---- helpers --------------------------------------------------------------- */

static uint64_t jitter(uint64_t base) {
  /* base +- 25 % */
  return base - base / 4 + randombytes_uniform((uint32_t)(base / 2) + 1);
}

int parley__sync_send(struct parley_link *l, uint8_t type,
                      const uint8_t *payload, size_t len) {
  struct parley_frame f;
  memset(&f, 0, sizeof f);
  f.type = type;
  f.u.opaque.data = payload;
  f.u.opaque.len = len;
  return parley_link_send(l, &f);
}

static void free_map_values(struct parley_map *m) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  parley_map_iter_init(&it, m);
  while ((e = parley_map_iter_next(&it)) != NULL)
    parley_free(e->value);
  parley_map_close(m);
}

/* ---- publisher: checkpoints ------------------------------------------------- */

static struct pubchan *pubchan_get(struct parley_node *n, const char *channel) {
  struct parley_sync *y = n->sync;
  size_t len = strlen(channel);
  struct pubchan *pc = parley_map_get(&y->pubs, channel, len);
  uint64_t seq = 0;
  int rc;

  if (pc != NULL)
    return pc;
  pc = parley_calloc(1, sizeof *pc);
  if (pc == NULL)
    return NULL;
  rc = parley_store_checkpoint_find(n->store, n->id.pk, channel, 1, UINT64_MAX,
                                    1, &seq, NULL, NULL);
  if (rc == PARLEY_OK)
    pc->signed_seq = seq;
  else if (rc != PARLEY_ENOTFOUND)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "checkpoint lookup %s: %s", channel,
               parley_strerror(rc));
  if (parley_map_put(&y->pubs, channel, len, pc, NULL) < 0) {
    parley_free(pc);
    return NULL;
  }
  return pc;
}

static void send_chain_sig(struct parley_node *n, struct parley_link *l,
                           const char *channel, uint64_t seq,
                           const uint8_t hash[32], const uint8_t sig[64]) {
  struct parley_sync_chain_sig cs;
  uint8_t buf[32 + 1 + 255 + 8 + 32 + 64];
  size_t w;

  memset(&cs, 0, sizeof cs);
  cs.publisher = n->id.pk;
  cs.channel.ptr = channel;
  cs.channel.len = strlen(channel);
  cs.seq = seq;
  cs.hash = hash;
  cs.sig = sig;
  if (parley_sync_chain_sig_encode(&cs, buf, sizeof buf, &w) == PARLEY_OK &&
      parley__sync_send(l, PARLEY_FRAME_CHAIN_SIG, buf, w) < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "checkpoint %s#%llu not sent",
               channel, (unsigned long long)seq);
}

/* Signs the head of channel, stores the checkpoint and hands it to the
 * topic's subscribers that are connected. */
static void sign_now(struct parley_node *n, const char *channel,
                     struct pubchan *pc) {
  struct parley_store_checkpoint cp;
  uint8_t sig[PARLEY_CHAIN_SIG];
  struct route *r;
  int rc;

  pc->dirty_since = 0;
  if (pc->head_seq <= pc->signed_seq)
    return;
  rc = parley_chain_sign(&n->id, channel, strlen(channel), pc->head_seq,
                         pc->head, sig);
  if (rc == PARLEY_OK)
    rc = parley__node_tx(n);
  if (rc == PARLEY_OK) {
    memset(&cp, 0, sizeof cp);
    cp.publisher = n->id.pk;
    cp.channel = channel;
    cp.channel_len = strlen(channel);
    cp.seq = pc->head_seq;
    cp.hash = pc->head;
    cp.sig = sig;
    rc = parley_store_checkpoint_put(n->store, &cp);
  }
  if (rc < 0 && rc != PARLEY_EEXIST) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "checkpoint %s#%llu: %s", channel,
               (unsigned long long)pc->head_seq, parley_strerror(rc));
    return;
  }
  pc->signed_seq = pc->head_seq;
  n->m.checkpoints_signed++;
  r = parley_map_get(&n->routes, channel, strlen(channel));
  if (r != NULL) {
    struct parley_map_iter it;
    struct parley_map_entry *e;
    parley_map_iter_init(&it, &r->subs);
    while ((e = parley_map_iter_next(&it)) != NULL) {
      struct parley_link *l = parley__peer_link(e->value);
      if (l != NULL)
        send_chain_sig(n, l, channel, pc->head_seq, pc->head, sig);
    }
  }
}

static void sign_cb(uv_timer_t *t);

static void arm_sign(struct parley_sync *y, uint64_t delay) {
  if (!uv_is_active((uv_handle_t *)&y->sign) ||
      uv_timer_get_due_in(&y->sign) > delay)
    uv_timer_start(&y->sign, sign_cb, delay, 0);
}

/* Signs every channel whose first unsigned message is old enough (all of
 * them when force is set); re-arms for the rest. */
static void sign_due(struct parley_node *n, int force) {
  struct parley_sync *y = n->sync;
  struct parley_map_iter it;
  struct parley_map_entry *e;
  uint64_t now = parley_mono_ms(), next = 0;

  parley_map_iter_init(&it, &y->pubs);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct pubchan *pc = e->value;
    if (pc->dirty_since == 0)
      continue;
    if (force || now - pc->dirty_since >= SIGN_AFTER_MS) {
      sign_now(n, (const char *)e->key, pc);
    } else {
      uint64_t left = SIGN_AFTER_MS - (now - pc->dirty_since);
      if (next == 0 || left < next)
        next = left;
    }
  }
  if (next > 0 && !force)
    arm_sign(y, next);
}

static void sign_cb(uv_timer_t *t) {
  struct parley_sync *y = t->data;
  if (y->n != NULL)
    sign_due(y->n, 0);
}

void parley__sync_published(struct parley_node *n, const char *channel,
                            uint64_t seq, const uint8_t chain[32]) {
  struct pubchan *pc;

  if (n->sync == NULL || channel[0] == '@')
    return;
  pc = pubchan_get(n, channel);
  if (pc == NULL)
    return;
  pc->head_seq = seq;
  memcpy(pc->head, chain, PARLEY_CHAIN_HASH);
  if (seq - pc->signed_seq >= SIGN_EVERY) {
    sign_now(n, channel, pc);
  } else if (pc->dirty_since == 0) {
    pc->dirty_since = parley_mono_ms();
    arm_sign(n->sync, SIGN_AFTER_MS);
  }
}

/* Start-up: picks up the heads a previous run left unsigned. */
static int load_head(void *ctx, const char *channel, uint64_t seq,
                     const uint8_t hash[32]) {
  struct parley_node *n = ctx;
  struct pubchan *pc;

  if (channel[0] == '@')
    return 0;
  pc = pubchan_get(n, channel);
  if (pc == NULL)
    return PARLEY_ENOMEM;
  pc->head_seq = seq;
  memcpy(pc->head, hash, PARLEY_CHAIN_HASH);
  if (pc->head_seq > pc->signed_seq) {
    PARLEY_LOG(&n->log, PARLEY_LOG_INFO,
               "signing %s#%llu left unsigned by the last run", channel,
               (unsigned long long)seq);
    sign_now(n, channel, pc);
  }
  return 0;
}

/* ---- receiver: CHAIN_SIG --------------------------------------------------- */

static int subscribed(struct parley_node *n, const char *topic, size_t len) {
  return parley_map_get(&n->subs, topic, len) != NULL;
}

static void on_chain_sig(struct parley_node *n, struct plink *pl,
                         const struct parley_frame *f) {
  struct parley_sync_chain_sig cs;
  struct parley_store_checkpoint cp;
  char channel[CHANNEL_MAX];
  uint8_t have[32];
  int rc;

  if (parley_sync_chain_sig_decode(f->u.opaque.data, f->u.opaque.len, &cs) <
      0) {
    parley_link_fail(pl->link, 0, PARLEY_EPROTO, "malformed CHAIN_SIG");
    return;
  }
  /* Only a publisher hands out its own checkpoints directly; relays pass
   * them on inside SYNC_BATCH. */
  if (memcmp(cs.publisher, pl->peer->pk, 32) != 0) {
    parley_link_fail(pl->link, 0, PARLEY_EAUTH,
                     "checkpoint publisher differs from the link's");
    n->m.sync_rejected++;
    return;
  }
  if (cs.channel.len == 0 || cs.channel.len >= CHANNEL_MAX)
    return;
  memcpy(channel, cs.channel.ptr, cs.channel.len);
  channel[cs.channel.len] = '\0';
  if (!parley_topic_valid(channel, cs.channel.len, PARLEY_MAX_TOPIC) ||
      !subscribed(n, channel, cs.channel.len))
    return; /* not ours to keep */
  rc = parley_chain_verify(cs.publisher, channel, cs.channel.len, cs.seq,
                           cs.hash, cs.sig);
  if (rc < 0) {
    n->m.sync_rejected++;
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "refused checkpoint %s#%llu from %s: %s", channel,
               (unsigned long long)cs.seq, pl->peer->id, parley_strerror(rc));
    return;
  }
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK &&
      parley_store_chain_at(n->store, cs.publisher, channel, cs.seq, have) ==
          PARLEY_OK &&
      sodium_memcmp(have, cs.hash, 32) != 0 &&
      !sodium_is_zero(have, 32))
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "checkpoint %s#%llu from %s disagrees with the chain value "
               "of the message it sent",
               channel, (unsigned long long)cs.seq, pl->peer->id);
  if (rc == PARLEY_OK) {
    memset(&cp, 0, sizeof cp);
    cp.publisher = cs.publisher;
    cp.channel = channel;
    cp.channel_len = cs.channel.len;
    cp.seq = cs.seq;
    cp.hash = cs.hash;
    cp.sig = cs.sig;
    rc = parley_store_checkpoint_put(n->store, &cp);
  }
  if (rc < 0 && rc != PARLEY_EEXIST)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "store checkpoint: %s",
               parley_strerror(rc));
}

/* ---- requester: sessions ----------------------------------------------------- */

static struct topic_sync *topic_get(struct parley_sync *y, const char *topic,
                                    size_t len) {
  struct topic_sync *ts = parley_map_get(&y->topics, topic, len);
  if (ts != NULL)
    return ts;
  ts = parley_calloc(1, sizeof *ts);
  if (ts == NULL)
    return NULL;
  ts->next_run = parley_mono_ms() + jitter(SYNC_INTERVAL_MS);
  if (parley_map_put(&y->topics, topic, len, ts, NULL) < 0) {
    parley_free(ts);
    return NULL;
  }
  return ts;
}

static uint64_t *mark_slot(struct parley_sync *y, const uint8_t pub[32],
                           const char *topic, size_t tlen, int create) {
  uint8_t key[32 + CHANNEL_MAX];
  uint64_t *v;

  memcpy(key, pub, 32);
  memcpy(key + 32, topic, tlen);
  v = parley_map_get(&y->marks, key, 32 + tlen);
  if (v != NULL || !create)
    return v;
  if (y->marks.count >= MAX_MARKS) {
    free_map_values(&y->marks); /* forget, and rescan: only slower */
    parley_map_init(&y->marks, randombytes_random());
  }
  v = parley_calloc(1, sizeof *v);
  if (v == NULL)
    return NULL;
  if (parley_map_put(&y->marks, key, 32 + tlen, v, NULL) < 0) {
    parley_free(v);
    return NULL;
  }
  return v;
}

static void set_mark(struct parley_sync *y, struct session *s,
                     uint64_t upto) {
  uint64_t *v;
  if (!s->contig || upto <= s->mark)
    return;
  s->mark = upto;
  v = mark_slot(y, s->ents[s->ient].pub, s->topic, s->topic_len, 1);
  if (v != NULL && *v < upto)
    *v = upto;
}

static void entry_begin(struct parley_sync *y, struct session *s) {
  uint64_t *v;
  if (s->ient >= s->nents)
    return;
  v = mark_slot(y, s->ents[s->ient].pub, s->topic, s->topic_len, 0);
  s->mark = v != NULL ? *v : 0;
  s->cursor = s->mark + 1;
  s->contig = 1;
}

static void session_end(struct parley_node *n, struct session *s) {
  struct parley_sync *y = n->sync;
  struct topic_sync *ts = parley_map_get(&y->topics, s->topic, s->topic_len);

  if (ts != NULL) {
    ts->session = NULL;
    ts->next_run = parley_mono_ms() + jitter(SYNC_INTERVAL_MS);
  }
  if (s->stored > 0 || s->rejected > 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_INFO,
               "sync %s: %u messages repaired, %u batches refused", s->topic,
               s->stored, s->rejected);
  if (s->prev)
    s->prev->next = s->next;
  else
    y->sessions = s->next;
  if (s->next)
    s->next->prev = s->prev;
  y->active--;
  parley_free(s->ents);
  parley_free(s);
}

static uint32_t new_req(struct parley_sync *y) {
  if (++y->next_req == 0)
    y->next_req = 1;
  return y->next_req;
}

static int send_query(struct parley_node *n, struct session *s,
                      struct parley_link *l) {
  struct parley_sync_query q;
  uint8_t buf[4 + 1 + 255];
  size_t w;
  int rc;

  memset(&q, 0, sizeof q);
  q.req = new_req(n->sync);
  q.topic.ptr = s->topic;
  q.topic.len = s->topic_len;
  rc = parley_sync_query_encode(&q, buf, sizeof buf, &w);
  if (rc == PARLEY_OK)
    rc = parley__sync_send(l, PARLEY_FRAME_SYNC_QUERY, buf, w);
  if (rc < 0)
    return rc;
  s->req = q.req;
  s->state = S_SUMMARY;
  s->deadline = parley_mono_ms() + STEP_TIMEOUT_MS;
  return PARLEY_OK;
}

static int send_fetch(struct parley_node *n, struct session *s,
                      struct parley_link *l) {
  struct parley_sync_fetch q;
  uint8_t buf[4 + 1 + 255 + 32 + 16];
  size_t w;
  int rc;

  memset(&q, 0, sizeof q);
  q.req = new_req(n->sync);
  q.topic.ptr = s->topic;
  q.topic.len = s->topic_len;
  q.publisher = s->ents[s->ient].pub;
  q.from = s->fetch_from;
  q.to = s->fetch_to;
  rc = parley_sync_fetch_encode(&q, buf, sizeof buf, &w);
  if (rc == PARLEY_OK)
    rc = parley__sync_send(l, PARLEY_FRAME_SYNC_FETCH, buf, w);
  if (rc < 0)
    return rc;
  s->req = q.req;
  s->state = S_FETCH;
  s->fetches++;
  s->deadline = parley_mono_ms() + STEP_TIMEOUT_MS;
  return PARLEY_OK;
}

static struct parley_link *relay_link(struct parley_node *n,
                                      const struct session *s) {
  struct rpeer *p = parley__node_peer(n, s->relay, 0);
  return p != NULL ? parley__peer_link(p) : NULL;
}

/* Moves on to the next candidate relay, or ends the session. */
static void next_relay(struct parley_node *n, struct session *s) {
  parley_free(s->ents);
  s->ents = NULL;
  s->nents = s->ient = 0;
  s->limited = 0;
  while (s->icand < s->ncand && s->successes < RELAYS_PER_ROUND) {
    struct rpeer *p = parley__node_peer(n, s->cand[s->icand++], 0);
    struct parley_link *l;
    if (p == NULL)
      continue;
    memcpy(s->relay, p->pk, 32);
    l = parley__peer_link(p);
    if (l != NULL) {
      if (send_query(n, s, l) == PARLEY_OK)
        return;
      continue;
    }
    parley__peer_try_dial(n, p);
    s->state = S_LINK;
    s->deadline = parley_mono_ms() + STEP_TIMEOUT_MS;
    return;
  }
  session_end(n, s);
}

static void relay_failed(struct parley_node *n, struct session *s,
                         const char *why) {
  char id[PARLEY_ID_TEXT_LEN + 1];
  parley_id_encode(s->relay, id);
  PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG, "sync %s with %s: %s", s->topic, id,
             why);
  next_relay(n, s);
}

/* Asks for the next gap of the current relay's publishers, or finishes with
 * this relay. */
static void fetch_next(struct parley_node *n, struct session *s) {
  struct parley_sync *y = n->sync;
  struct parley_link *l;
  uint64_t g0, g1;
  int rc;

  while (s->ient < s->nents) {
    struct sum_entry *e = &s->ents[s->ient];
    if (s->cursor > e->target) {
      set_mark(y, s, e->target);
      s->ient++;
      entry_begin(y, s);
      continue;
    }
    rc = parley_store_seq_gap(n->store, e->pub, s->topic, s->cursor,
                              e->target, &g0, &g1);
    if (rc == PARLEY_ENOTFOUND) {
      set_mark(y, s, e->target);
      s->ient++;
      entry_begin(y, s);
      continue;
    }
    if (rc < 0) {
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "sync %s: %s", s->topic,
                 parley_strerror(rc));
      session_end(n, s);
      return;
    }
    set_mark(y, s, g0 - 1);
    if (s->fetches >= MAX_FETCHES) {
      session_end(n, s);
      return;
    }
    s->fetch_from = g0;
    s->fetch_to = g1 - g0 >= PARLEY_SYNC_MAX_BATCH
                      ? g0 + (PARLEY_SYNC_MAX_BATCH - 1)
                      : g1;
    l = relay_link(n, s);
    if (l == NULL || send_fetch(n, s, l) < 0) {
      relay_failed(n, s, "link lost");
      return;
    }
    return;
  }
  s->successes++;
  next_relay(n, s);
}

static void shuffle_candidates(struct session *s, struct route *r) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  uint8_t (*all)[32];
  uint32_t k = 0;

  all = parley_calloc(r->subs.count ? r->subs.count : 1, 32);
  if (all == NULL)
    return;
  parley_map_iter_init(&it, &r->subs);
  while ((e = parley_map_iter_next(&it)) != NULL)
    memcpy(all[k++], ((struct rpeer *)e->value)->pk, 32);
  for (uint32_t i = 0; i < k && i < MAX_CANDIDATES; i++) {
    uint32_t j = i + randombytes_uniform(k - i);
    uint8_t tmp[32];
    memcpy(tmp, all[i], 32);
    memcpy(all[i], all[j], 32);
    memcpy(all[j], tmp, 32);
    memcpy(s->cand[i], all[i], 32);
    s->ncand = i + 1;
  }
  parley_free(all);
}

static void session_start(struct parley_node *n, struct topic_sync *ts,
                          const char *topic, size_t len) {
  struct parley_sync *y = n->sync;
  struct session *s;
  struct route *r;

  s = parley_calloc(1, sizeof *s);
  if (s == NULL)
    return;
  memcpy(s->topic, topic, len);
  s->topic[len] = '\0';
  s->topic_len = len;
  s->state = S_ROUTE;
  s->started = parley_mono_ms();
  s->deadline = s->started + STEP_TIMEOUT_MS;
  s->next = y->sessions;
  if (y->sessions)
    y->sessions->prev = s;
  y->sessions = s;
  y->active++;
  ts->session = s;
  r = parley__route_get(n, s->topic);
  if (r == NULL) {
    session_end(n, s);
    return;
  }
  if (r->have_list) {
    shuffle_candidates(s, r);
    next_relay(n, s);
  }
}

static struct session *find_session(struct parley_sync *y,
                                    const uint8_t relay[32], uint32_t req,
                                    enum sess_state state) {
  for (struct session *s = y->sessions; s; s = s->next)
    if (s->state == state && s->req == req && memcmp(s->relay, relay, 32) == 0)
      return s;
  return NULL;
}

static int same_topic(const struct session *s, const struct parley_str *t) {
  return t->len == s->topic_len && memcmp(t->ptr, s->topic, t->len) == 0;
}

void parley__sync_on_summary(struct parley_node *n, struct plink *pl,
                             const struct parley_frame *f) {
  struct parley_sync *y = n->sync;
  struct parley_sync_summary sm;
  struct parley_sync_summary_entry se;
  struct session *s;
  const uint8_t *cur;
  size_t left;

  if (parley_sync_summary_decode(f->u.opaque.data, f->u.opaque.len, &sm) <
      0) {
    parley_link_fail(pl->link, 0, PARLEY_EPROTO, "malformed SYNC_SUMMARY");
    return;
  }
  s = find_session(y, pl->peer->pk, sm.req, S_SUMMARY);
  if (s == NULL)
    return; /* late or unasked: ignored */
  if (!same_topic(s, &sm.topic)) {
    relay_failed(n, s, "summary for another topic");
    return;
  }
  s->ents = parley_calloc(sm.count ? sm.count : 1, sizeof *s->ents);
  if (s->ents == NULL) {
    session_end(n, s);
    return;
  }
  s->nents = 0;
  cur = sm.raw;
  left = sm.raw_len;
  while (parley_sync_summary_next(&cur, &left, &se)) {
    uint64_t target = se.max_seq < se.signed_seq ? se.max_seq : se.signed_seq;
    if (target == 0 || memcmp(se.publisher, n->id.pk, 32) == 0)
      continue; /* nothing provable, or our own messages */
    memcpy(s->ents[s->nents].pub, se.publisher, 32);
    s->ents[s->nents].target = target;
    s->nents++;
  }
  s->ient = 0;
  entry_begin(y, s);
  fetch_next(n, s);
}

/* Local rules a relayed message must pass besides the chain (the same as
 * on_msg applies to a direct MSG): a topic message (no DIRECT), within our
 * size limit, UTF-8 unless BINARY. */
static int relayed_ok(struct parley_node *n, const struct parley_sync_entry *e) {
  if (e->flags & PARLEY_MSG_DIRECT)
    return 0;
  if (e->body_len > n->cfg.max_message)
    return 0;
  if (!(e->flags & PARLEY_MSG_BINARY) &&
      !parley_utf8_valid(e->body, e->body_len))
    return 0;
  return 1;
}

/* Stores a verified batch.  OUT: *first_digest = seq of the first entry
 * that came as a digest only (0 if none), *skipped = entries not stored by
 * local rules. */
static int store_batch(struct parley_node *n, struct session *s,
                       const struct parley_sync_batch *b,
                       const struct parley_sync_entry *ents,
                       uint8_t (*hashes)[PARLEY_CHAIN_HASH],
                       uint64_t *first_digest, uint32_t *skipped) {
  struct parley_store_checkpoint cp;
  int64_t now = parley_now_ms();
  int rc;

  *first_digest = 0;
  *skipped = 0;
  rc = parley__node_tx(n);
  if (rc < 0)
    return rc;
  for (uint32_t i = 0; i < b->count; i++) {
    struct parley_msg m;
    if (ents[i].kind != PARLEY_SYNC_ENTRY_MSG) {
      if (*first_digest == 0)
        *first_digest = b->from + i;
      continue;
    }
    if (!relayed_ok(n, &ents[i])) {
      (*skipped)++;
      continue;
    }
    memset(&m, 0, sizeof m);
    m.publisher = b->publisher;
    m.channel = s->topic;
    m.channel_len = s->topic_len;
    m.seq = b->from + i;
    m.ts_ms = (int64_t)ents[i].ts_ms;
    m.flags = ents[i].flags;
    m.body = ents[i].body;
    m.body_len = ents[i].body_len;
    m.outgoing = 0;
    m.stored_ms = now;
    m.chain = hashes[i];
    rc = parley_store_put_message(n->store, &m, &m.rowid);
    if (rc == PARLEY_EEXIST)
      continue;
    if (rc < 0)
      return rc;
    n->m.sync_messages++;
    s->stored++;
    parley__deliver_app(n, &m);
  }
  memset(&cp, 0, sizeof cp);
  cp.publisher = b->publisher;
  cp.channel = s->topic;
  cp.channel_len = s->topic_len;
  cp.seq = b->cp_seq;
  cp.hash = b->cp_hash;
  cp.sig = b->cp_sig;
  rc = parley_store_checkpoint_put(n->store, &cp);
  return rc == PARLEY_EEXIST ? PARLEY_OK : rc;
}

static void reject_batch(struct parley_node *n, struct session *s,
                         const struct parley_sync_batch *b, int rc) {
  char relay[PARLEY_ID_TEXT_LEN + 1], pub[PARLEY_ID_TEXT_LEN + 1];

  parley_id_encode(s->relay, relay);
  parley_id_encode(s->ents[s->ient].pub, pub);
  n->m.sync_rejected++;
  s->rejected++;
  PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
             "sync: refused relayed batch %s#%llu..%llu of %s from relay %s: "
             "%s",
             s->topic, (unsigned long long)b->from,
             (unsigned long long)b->cp_seq, pub, relay,
             rc == PARLEY_ECRYPTO ? "the publisher's hash chain or signature "
                                    "does not verify"
                                  : parley_strerror(rc));
  next_relay(n, s);
}

void parley__sync_on_batch(struct parley_node *n, struct plink *pl,
                           const struct parley_frame *f) {
  struct parley_sync_batch b;
  struct parley_sync_entry *ents = NULL;
  struct parley_chain_entry *ce = NULL;
  uint8_t (*hashes)[PARLEY_CHAIN_HASH] = NULL;
  struct session *s;
  const uint8_t *cur;
  size_t left;
  uint64_t first_digest = 0, next;
  uint32_t skipped = 0, i = 0;
  int rc;

  if (parley_sync_batch_decode(f->u.opaque.data, f->u.opaque.len, &b) < 0) {
    parley_link_fail(pl->link, 0, PARLEY_EPROTO, "malformed SYNC_BATCH");
    return;
  }
  s = find_session(n->sync, pl->peer->pk, b.req, S_FETCH);
  if (s == NULL)
    return;
  if (!subscribed(n, s->topic, s->topic_len)) {
    session_end(n, s); /* unsubscribed meanwhile: keep nothing */
    return;
  }
  if (!same_topic(s, &b.topic) ||
      memcmp(b.publisher, s->ents[s->ient].pub, 32) != 0) {
    reject_batch(n, s, &b, PARLEY_EPROTO);
    return;
  }
  if (b.count == 0) {
    /* The relay cannot prove anything there: skip that gap with it. */
    s->contig = 0;
    s->cursor = s->fetch_to + 1;
    fetch_next(n, s);
    return;
  }
  if (b.from < s->fetch_from) {
    reject_batch(n, s, &b, PARLEY_EPROTO);
    return;
  }
  ents = parley_calloc(b.count, sizeof *ents);
  ce = parley_calloc(b.count, sizeof *ce);
  hashes = parley_calloc(b.count, sizeof *hashes);
  if (ents == NULL || ce == NULL || hashes == NULL) {
    rc = PARLEY_ENOMEM;
    goto out_end;
  }
  cur = b.raw;
  left = b.raw_len;
  while (i < b.count && parley_sync_entry_next(&cur, &left, &ents[i])) {
    ce[i].seq = b.from + i;
    ce[i].ts_ms = ents[i].ts_ms;
    ce[i].flags = ents[i].flags;
    ce[i].body = ents[i].body;
    ce[i].body_len = ents[i].body_len;
    ce[i].digest = ents[i].kind == PARLEY_SYNC_ENTRY_DIGEST ? ents[i].digest
                                                           : NULL;
    i++;
  }
  rc = i == b.count ? PARLEY_OK : PARLEY_EPROTO;
  /* The signature is checked under the publisher's key, never the relay's. */
  if (rc == PARLEY_OK)
    rc = parley_chain_verify_run(b.publisher, s->topic, s->topic_len, b.prev,
                                 ce, b.count, b.cp_seq, b.cp_hash, b.cp_sig,
                                 hashes);
  if (rc < 0) {
    parley_free(ents);
    parley_free(ce);
    parley_free(hashes);
    reject_batch(n, s, &b, rc);
    return;
  }
  rc = store_batch(n, s, &b, ents, hashes, &first_digest, &skipped);
  if (rc < 0)
    goto out_end;
  PARLEY_LOG(&n->log, PARLEY_LOG_DEBUG,
             "sync %s: verified %llu..%llu from %s, digests from %llu",
             s->topic, (unsigned long long)b.from,
             (unsigned long long)b.cp_seq, pl->peer->id,
             (unsigned long long)first_digest);
  next = first_digest != 0 ? first_digest : b.cp_seq + 1;
  if (b.from > s->fetch_from || skipped > 0)
    s->contig = 0;
  if (next <= s->fetch_from) {
    s->contig = 0;
    next = s->fetch_to + 1;
  }
  s->cursor = next;
  parley_free(ents);
  parley_free(ce);
  parley_free(hashes);
  fetch_next(n, s);
  return;

out_end:
  PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "sync %s: %s", s->topic,
             parley_strerror(rc));
  parley_free(ents);
  parley_free(ce);
  parley_free(hashes);
  session_end(n, s);
}

int parley__sync_error(struct parley_node *n, struct plink *pl,
                       const struct parley_frame *f) {
  struct parley_sync *y = n->sync;
  struct session *s;

  if (y == NULL || f->u.error.req == 0)
    return 0;
  s = find_session(y, pl->peer->pk, f->u.error.req, S_SUMMARY);
  if (s == NULL)
    s = find_session(y, pl->peer->pk, f->u.error.req, S_FETCH);
  if (s == NULL)
    return 0;
  if (-(int)f->u.error.code == PARLEY_ELIMIT && ++s->limited <= MAX_LIMITED) {
    /* The relay's rate limit: ask again in a moment. */
    s->waiting = s->state;
    s->state = S_WAIT;
    s->deadline = parley_mono_ms() + RETRY_LIMITED_MS;
    return 1;
  }
  relay_failed(n, s, parley_strerror(-(int)f->u.error.code));
  return 1;
}

/* ---- timers, hooks ------------------------------------------------------------- */

static void tick_cb(uv_timer_t *t) {
  struct parley_sync *y = t->data;
  struct parley_node *n = y->n;
  struct session *s, *next;
  struct parley_map_iter it;
  struct parley_map_entry *e;
  uint64_t now = parley_mono_ms();

  if (n == NULL)
    return;
  for (s = y->sessions; s; s = next) {
    next = s->next;
    if (now - s->started >= SESSION_MAX_MS) {
      session_end(n, s);
      continue;
    }
    if (s->state == S_ROUTE) {
      struct route *r = parley_map_get(&n->routes, s->topic, s->topic_len);
      if (r != NULL && r->have_list) {
        shuffle_candidates(s, r);
        next_relay(n, s);
      } else if (now >= s->deadline) {
        session_end(n, s);
      }
    } else if (s->state == S_WAIT) {
      if (now >= s->deadline) {
        struct parley_link *l = relay_link(n, s);
        int rc = PARLEY_ECLOSED;
        if (l != NULL)
          rc = s->waiting == S_SUMMARY ? send_query(n, s, l)
                                       : send_fetch(n, s, l);
        if (rc < 0)
          relay_failed(n, s, "link lost");
      }
    } else if (s->state == S_LINK) {
      /* A dial that already failed (or is held back by its back-off)
       * need not wait for the deadline. */
      struct rpeer *p = parley__node_peer(n, s->relay, 0);
      if (p == NULL || now >= s->deadline ||
          (!p->dialling && !p->lookup_pending &&
           parley__peer_link(p) == NULL))
        relay_failed(n, s, "unreachable");
    } else if (now >= s->deadline) {
      relay_failed(n, s, "no answer");
    }
  }
  if (!n->registered)
    return;
  parley_map_iter_init(&it, &n->subs);
  while ((e = parley_map_iter_next(&it)) != NULL &&
         y->active < MAX_ACTIVE) {
    struct topic_sync *ts = topic_get(y, (const char *)e->key, e->klen);
    if (ts != NULL && ts->session == NULL && now >= ts->next_run)
      session_start(n, ts, (const char *)e->key, e->klen);
  }
  /* Forget topics we no longer subscribe to. */
  parley_map_iter_init(&it, &y->topics);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    struct topic_sync *ts = e->value;
    if (ts->session == NULL && !subscribed(n, (const char *)e->key, e->klen)) {
      parley_map_iter_remove(&it);
      parley_free(ts);
    }
  }
}

static void due_now(struct parley_node *n, const char *topic, size_t len) {
  struct topic_sync *ts = topic_get(n->sync, topic, len);
  if (ts != NULL)
    ts->next_run = parley_mono_ms();
}

void parley__sync_registered(struct parley_node *n) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  if (n->sync == NULL)
    return;
  parley_map_iter_init(&it, &n->subs);
  while ((e = parley_map_iter_next(&it)) != NULL)
    due_now(n, (const char *)e->key, e->klen);
}

void parley__sync_subscribed(struct parley_node *n, const char *topic,
                             int subscribe) {
  if (n->sync == NULL || !subscribe)
    return;
  due_now(n, topic, strlen(topic));
}

void parley__sync_link_open(struct parley_node *n, struct rpeer *p) {
  struct parley_sync *y = n->sync;
  struct parley_link *l = parley__peer_link(p);
  struct parley_map_iter it;
  struct parley_map_entry *e;
  struct session *s, *next;

  if (y == NULL || l == NULL)
    return;
  for (s = y->sessions; s; s = next) {
    next = s->next;
    if (s->state == S_LINK && memcmp(s->relay, p->pk, 32) == 0 &&
        send_query(n, s, l) < 0)
      relay_failed(n, s, "query not sent");
  }
  /* As a publisher: p may have missed checkpoints while it was away. */
  parley_map_iter_init(&it, &y->pubs);
  while ((e = parley_map_iter_next(&it)) != NULL) {
    const char *channel = (const char *)e->key;
    struct route *r = parley_map_get(&n->routes, channel, e->klen);
    uint8_t hash[32], sig[64];
    uint64_t seq = 0;
    if (r == NULL || parley_map_get(&r->subs, p->pk, 32) == NULL)
      continue;
    if (parley_store_checkpoint_find(n->store, n->id.pk, channel, 1,
                                     UINT64_MAX, 1, &seq, hash,
                                     sig) == PARLEY_OK)
      send_chain_sig(n, l, channel, seq, hash, sig);
  }
}

void parley__sync_frame(struct parley_node *n, struct plink *pl,
                        const struct parley_frame *f) {
  if (n->sync == NULL)
    return;
  switch (f->type) {
  case PARLEY_FRAME_CHAIN_SIG:
    on_chain_sig(n, pl, f);
    break;
  case PARLEY_FRAME_SYNC_QUERY:
    parley__sync_serve_query(n, pl, f);
    break;
  case PARLEY_FRAME_SYNC_SUMMARY:
    parley__sync_on_summary(n, pl, f);
    break;
  case PARLEY_FRAME_SYNC_FETCH:
    parley__sync_serve_fetch(n, pl, f);
    break;
  case PARLEY_FRAME_SYNC_BATCH:
    parley__sync_on_batch(n, pl, f);
    break;
  default:
    break;
  }
}

/* ---- life cycle ------------------------------------------------------------------ */

static void timer_closed(uv_handle_t *h) {
  struct parley_sync *y = h->data;
  if (--y->handles == 0)
    parley_free(y);
}

void parley__sync_start(struct parley_node *n) {
  struct parley_sync *y;
  int rc;

  y = parley_calloc(1, sizeof *y);
  if (y == NULL) {
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "sync disabled: out of memory");
    return;
  }
  y->n = n;
  parley_map_init(&y->pubs, 0);
  parley_map_init(&y->topics, 0);
  parley_map_init(&y->marks, randombytes_random());
  uv_timer_init(n->loop, &y->tick);
  uv_timer_init(n->loop, &y->sign);
  y->tick.data = y->sign.data = y;
  y->handles = 2;
  n->sync = y;
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK)
    rc = parley_store_chain_heads(n->store, load_head, n);
  if (rc < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "chain heads: %s",
               parley_strerror(rc));
  uv_timer_start(&y->tick, tick_cb, TICK_MS, TICK_MS);
}

void parley__sync_stop(struct parley_node *n) {
  struct parley_sync *y = n->sync;

  if (y == NULL)
    return;
  if (n->store != NULL)
    sign_due(n, 1); /* a clean stop leaves nothing unsigned */
  while (y->sessions)
    session_end(n, y->sessions);
  free_map_values(&y->pubs);
  free_map_values(&y->topics);
  free_map_values(&y->marks);
  n->sync = NULL;
  y->n = NULL;
  uv_timer_stop(&y->tick);
  uv_timer_stop(&y->sign);
  uv_close((uv_handle_t *)&y->tick, timer_closed);
  uv_close((uv_handle_t *)&y->sign, timer_closed);
}
