/* ratelimit.c — GCRA token buckets, strikes and bans per key (pure). */
#include "http/ratelimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/map.h"

/* How many entries from the LRU end a full table inspects for a dormant
 * one before it evicts the oldest outright. */
#define EVICT_SCAN 8u
/* Ban doublings stop growing after this many (2^20 * ban_ms is past any
 * sane ban_max_ms anyway). */
#define MAX_BAN_LEVEL 20u

struct entry {
  struct entry *prev, *next; /* LRU list, most recent at rl->head */
  uint64_t tat_us;           /* GCRA theoretical arrival time */
  uint64_t strike_start_ms;  /* start of the current strike window */
  uint64_t banned_until_ms;  /* 0 = never banned */
  uint32_t strikes;          /* strikes in the current window */
  uint32_t ban_level;        /* bans so far (drives the doubling) */
  size_t klen;
  uint8_t key[PARLEY_RL_MAX_KEY];
};

struct parley_rl {
  struct parley_rl_config cfg;
  uint64_t interval_us; /* time to regain one token */
  uint64_t tau_us;      /* burst * interval_us */
  struct parley_map map; /* key -> struct entry * (owned) */
  struct entry *head, *tail;
  struct parley_rl_stats st;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t ms_to_us(uint64_t ms) {
  return ms > UINT64_MAX / 1000u ? UINT64_MAX : ms * 1000u;
}

static uint64_t us_to_ms_ceil(uint64_t us) {
  return us / 1000u + (us % 1000u != 0);
}

static void lru_unlink(struct parley_rl *rl, struct entry *e) {
  if (e->prev)
    e->prev->next = e->next;
  else
    rl->head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    rl->tail = e->prev;
  e->prev = e->next = NULL;
}

static void lru_push_front(struct parley_rl *rl, struct entry *e) {
  e->prev = NULL;
  e->next = rl->head;
  if (rl->head)
    rl->head->prev = e;
  rl->head = e;
  if (rl->tail == NULL)
    rl->tail = e;
}

static void touch(struct parley_rl *rl, struct entry *e) {
  if (rl->head != e) {
    lru_unlink(rl, e);
    lru_push_front(rl, e);
  }
}

static int banned(const struct entry *e, uint64_t now_ms) {
  return e->banned_until_ms > now_ms;
}

/* The longest ban this limiter imposes: past ban history is remembered for
 * that long after a ban ends, so the doubling works. */
static uint64_t ban_memory_ms(const struct parley_rl *rl) {
  return rl->cfg.ban_max_ms ? rl->cfg.ban_max_ms : rl->cfg.ban_ms;
}

/* 1 if dropping e changes no future answer. */
static int dormant(const struct parley_rl *rl, const struct entry *e,
                   uint64_t now_ms) {
  if (e->tat_us > ms_to_us(now_ms))
    return 0; /* bucket not full */
  if (e->strikes && now_ms - e->strike_start_ms < rl->cfg.strike_window_ms)
    return 0;
  if (banned(e, now_ms))
    return 0;
  if (e->ban_level &&
      now_ms < sat_add(e->banned_until_ms, ban_memory_ms(rl)))
    return 0;
  return 1;
}

static void drop(struct parley_rl *rl, struct entry *e) {
  lru_unlink(rl, e);
  (void)parley_map_del(&rl->map, e->key, e->klen);
  parley_free(e);
}

static struct entry *lookup(const struct parley_rl *rl, const void *key,
                            size_t klen) {
  return parley_map_get(&rl->map, key, klen);
}

/* Makes room for one more entry when the table is full. */
static void make_room(struct parley_rl *rl, uint64_t now_ms) {
  struct entry *e = rl->tail;
  if (rl->map.count < rl->cfg.max_entries)
    return;
  for (unsigned i = 0; e != NULL && i < EVICT_SCAN; i++) {
    struct entry *prev = e->prev;
    if (dormant(rl, e, now_ms)) {
      drop(rl, e);
      return;
    }
    e = prev;
  }
  if (rl->tail) {
    rl->st.evictions++;
    drop(rl, rl->tail);
  }
}

/* Finds or creates key's entry.  OUT: *out.  PARLEY_EINVAL, PARLEY_ENOMEM. */
static int get_entry(struct parley_rl *rl, const void *key, size_t klen,
                     uint64_t now_ms, struct entry **out) {
  struct entry *e;
  int rc;
  if (klen == 0 || klen > PARLEY_RL_MAX_KEY)
    return PARLEY_EINVAL;
  e = lookup(rl, key, klen);
  if (e == NULL) {
    make_room(rl, now_ms);
    e = parley_calloc(1, sizeof *e);
    if (e == NULL)
      return PARLEY_ENOMEM;
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->tat_us = ms_to_us(now_ms); /* a full bucket */
    if ((rc = parley_map_put(&rl->map, e->key, klen, e, NULL)) < 0) {
      parley_free(e);
      return rc;
    }
    lru_push_front(rl, e);
  } else {
    touch(rl, e);
  }
  *out = e;
  return PARLEY_OK;
}

static void set_retry(uint64_t *retry_ms, uint64_t v) {
  if (retry_ms)
    *retry_ms = v;
}

/* Bans e from now_ms for duration_ms unless a longer ban runs already. */
static void impose_ban(struct parley_rl *rl, struct entry *e, uint64_t now_ms,
                       uint64_t duration_ms) {
  uint64_t until = sat_add(now_ms, duration_ms);
  if (until > e->banned_until_ms)
    e->banned_until_ms = until;
  if (e->ban_level < MAX_BAN_LEVEL)
    e->ban_level++;
  e->strikes = 0;
  rl->st.bans++;
}

/* ---- API ---------------------------------------------------------------- */

int parley_rl_new(const struct parley_rl_config *cfg, uint64_t seed,
                  struct parley_rl **out) {
  struct parley_rl *rl;
  *out = NULL;
  if (cfg->burst == 0 || cfg->burst > PARLEY_RL_MAX_BURST || cfg->rate == 0 ||
      cfg->per_ms == 0 || cfg->per_ms > PARLEY_RL_MAX_PERIOD_MS ||
      (uint64_t)cfg->per_ms * 1000u < cfg->rate)
    return PARLEY_EINVAL;
  if (cfg->strikes && cfg->strike_window_ms == 0)
    return PARLEY_EINVAL;
  if (cfg->ban_ms == 0 || cfg->ban_ms > PARLEY_RL_MAX_BAN_MS ||
      cfg->ban_max_ms > PARLEY_RL_MAX_BAN_MS ||
      (cfg->ban_max_ms && cfg->ban_max_ms < cfg->ban_ms))
    return PARLEY_EINVAL;
  rl = parley_calloc(1, sizeof *rl);
  if (rl == NULL)
    return PARLEY_ENOMEM;
  rl->cfg = *cfg;
  if (rl->cfg.max_entries == 0)
    rl->cfg.max_entries = PARLEY_RL_DEFAULT_ENTRIES;
  rl->interval_us = (uint64_t)cfg->per_ms * 1000u / cfg->rate;
  rl->tau_us = rl->interval_us * cfg->burst;
  parley_map_init(&rl->map, seed);
  *out = rl;
  return PARLEY_OK;
}

void parley_rl_free(struct parley_rl *rl) {
  struct entry *e, *next;
  if (rl == NULL)
    return;
  for (e = rl->head; e; e = next) {
    next = e->next;
    parley_free(e);
  }
  parley_map_close(&rl->map);
  parley_free(rl);
}

int parley_rl_take(struct parley_rl *rl, const void *key, size_t klen,
                   uint32_t cost, uint64_t now_ms, uint64_t *retry_ms) {
  struct entry *e;
  uint64_t now_us = ms_to_us(now_ms), base, next_tat;
  int rc;

  set_retry(retry_ms, 0);
  if (cost == 0 || cost > rl->cfg.burst)
    return PARLEY_EINVAL;
  if ((rc = get_entry(rl, key, klen, now_ms, &e)) < 0)
    return rc;
  if (banned(e, now_ms)) {
    rl->st.refused_banned++;
    set_retry(retry_ms, e->banned_until_ms - now_ms);
    return PARLEY_EDENIED;
  }
  /* GCRA: the bucket is "full" when tat <= now; spending cost tokens moves
   * tat cost intervals later, and the request fits while tat stays within
   * tau of now. */
  base = e->tat_us > now_us ? e->tat_us : now_us;
  next_tat = sat_add(base, rl->interval_us * cost);
  if (next_tat - now_us > rl->tau_us) {
    rl->st.limited++;
    set_retry(retry_ms, us_to_ms_ceil(next_tat - now_us - rl->tau_us));
    return PARLEY_ELIMIT;
  }
  e->tat_us = next_tat;
  rl->st.allowed++;
  return PARLEY_OK;
}

int parley_rl_check(struct parley_rl *rl, const void *key, size_t klen,
                    uint64_t now_ms, uint64_t *retry_ms) {
  struct entry *e;
  set_retry(retry_ms, 0);
  if (klen == 0 || klen > PARLEY_RL_MAX_KEY)
    return PARLEY_EINVAL;
  e = lookup(rl, key, klen);
  if (e && banned(e, now_ms)) {
    rl->st.refused_banned++;
    set_retry(retry_ms, e->banned_until_ms - now_ms);
    return PARLEY_EDENIED;
  }
  return PARLEY_OK;
}

int parley_rl_strike(struct parley_rl *rl, const void *key, size_t klen,
                     uint64_t now_ms, uint64_t *retry_ms) {
  struct entry *e;
  int rc;
  set_retry(retry_ms, 0);
  if ((rc = get_entry(rl, key, klen, now_ms, &e)) < 0)
    return rc;
  rl->st.strikes++;
  if (!banned(e, now_ms) && rl->cfg.strikes) {
    if (e->strikes == 0 ||
        now_ms - e->strike_start_ms >= rl->cfg.strike_window_ms) {
      e->strikes = 0;
      e->strike_start_ms = now_ms;
    }
    if (++e->strikes >= rl->cfg.strikes) {
      uint64_t d = rl->cfg.ban_ms;
      uint64_t cap = ban_memory_ms(rl);
      for (uint32_t i = 0; i < e->ban_level && d < cap; i++)
        d *= 2;
      if (d > cap)
        d = cap;
      impose_ban(rl, e, now_ms, d);
    }
  }
  if (banned(e, now_ms)) {
    set_retry(retry_ms, e->banned_until_ms - now_ms);
    return PARLEY_EDENIED;
  }
  return PARLEY_OK;
}

int parley_rl_ban(struct parley_rl *rl, const void *key, size_t klen,
                  uint64_t now_ms, uint64_t duration_ms) {
  struct entry *e;
  int rc;
  if (duration_ms == 0 || duration_ms > PARLEY_RL_MAX_BAN_MS)
    return PARLEY_EINVAL;
  if ((rc = get_entry(rl, key, klen, now_ms, &e)) < 0)
    return rc;
  impose_ban(rl, e, now_ms, duration_ms);
  return PARLEY_OK;
}

int parley_rl_forget(struct parley_rl *rl, const void *key, size_t klen) {
  struct entry *e;
  if (klen == 0 || klen > PARLEY_RL_MAX_KEY)
    return PARLEY_ENOTFOUND;
  e = lookup(rl, key, klen);
  if (e == NULL)
    return PARLEY_ENOTFOUND;
  drop(rl, e);
  return PARLEY_OK;
}

void parley_rl_sweep(struct parley_rl *rl, uint64_t now_ms) {
  struct entry *e = rl->tail;
  while (e) {
    struct entry *prev = e->prev;
    if (dormant(rl, e, now_ms))
      drop(rl, e);
    e = prev;
  }
}

void parley_rl_stats(const struct parley_rl *rl, uint64_t now_ms,
                     struct parley_rl_stats *out) {
  *out = rl->st;
  out->entries = rl->map.count;
  out->active_bans = 0;
  for (const struct entry *e = rl->head; e; e = e->next)
    out->active_bans += banned(e, now_ms) ? 1u : 0u;
}

int parley_rl_ip_key(const char *ip, char *out, size_t cap, size_t *len) {
  char tmp[INET6_ADDRSTRLEN + 2];
  char text[INET6_ADDRSTRLEN];
  size_t n = strnlen(ip, sizeof tmp);
  unsigned char a6[16];
  int w;

  *len = 0;
  if (cap)
    out[0] = '\0';
  if (n >= sizeof tmp || n == 0)
    return PARLEY_EINVAL;
  if (ip[0] == '[') {
    if (n < 3 || ip[n - 1] != ']')
      return PARLEY_EINVAL;
    memcpy(tmp, ip + 1, n - 2);
    tmp[n - 2] = '\0';
  } else {
    memcpy(tmp, ip, n + 1);
  }
  if (ip[0] != '[' && inet_pton(AF_INET, tmp, a6) == 1) {
    if (inet_ntop(AF_INET, a6, text, sizeof text) == NULL)
      return PARLEY_EINVAL;
    w = snprintf(out, cap, "v4:%s", text);
  } else if (inet_pton(AF_INET6, tmp, a6) == 1) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                             0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a6, mapped, sizeof mapped) == 0) {
      if (inet_ntop(AF_INET, a6 + 12, text, sizeof text) == NULL)
        return PARLEY_EINVAL;
      w = snprintf(out, cap, "v4:%s", text);
    } else {
      memset(a6 + 8, 0, 8);
      if (inet_ntop(AF_INET6, a6, text, sizeof text) == NULL)
        return PARLEY_EINVAL;
      w = snprintf(out, cap, "v6:%s/64", text);
    }
  } else {
    return PARLEY_EINVAL;
  }
  if (w < 0 || (size_t)w >= cap) {
    if (cap)
      out[0] = '\0';
    return PARLEY_ETOOBIG;
  }
  *len = (size_t)w;
  return PARLEY_OK;
}

/* ---- the link guard ------------------------------------------------------ */

struct parley_rl_guard {
  struct parley_rl *conn, *hs, *bad;
};

void parley_rl_guard_defaults(struct parley_rl_guard_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->conn.burst = 64;
  cfg->conn.rate = 32;
  cfg->conn.per_ms = 1000;
  cfg->conn.ban_ms = 1;
  cfg->handshake.burst = 32;
  cfg->handshake.rate = 16;
  cfg->handshake.per_ms = 1000;
  cfg->handshake.ban_ms = 1;
  cfg->bad.burst = 1;
  cfg->bad.rate = 1;
  cfg->bad.per_ms = 1000;
  cfg->bad.strikes = 10;
  cfg->bad.strike_window_ms = 60000;
  cfg->bad.ban_ms = 60000;
  cfg->bad.ban_max_ms = 3600000;
}

int parley_rl_guard_new(const struct parley_rl_guard_config *cfg,
                        uint64_t seed, struct parley_rl_guard **out) {
  struct parley_rl_guard *g;
  int rc;

  *out = NULL;
  g = parley_calloc(1, sizeof *g);
  if (g == NULL)
    return PARLEY_ENOMEM;
  rc = parley_rl_new(&cfg->conn, seed, &g->conn);
  if (rc == PARLEY_OK)
    rc = parley_rl_new(&cfg->handshake, seed ^ 0x9e3779b97f4a7c15ull, &g->hs);
  if (rc == PARLEY_OK)
    rc = parley_rl_new(&cfg->bad, seed ^ 0xc2b2ae3d27d4eb4full, &g->bad);
  if (rc < 0) {
    parley_rl_guard_free(g);
    return rc;
  }
  *out = g;
  return PARLEY_OK;
}

void parley_rl_guard_free(struct parley_rl_guard *g) {
  if (g == NULL)
    return;
  parley_rl_free(g->conn);
  parley_rl_free(g->hs);
  parley_rl_free(g->bad);
  parley_free(g);
}

/* "pk:" + the 32 key bytes. */
#define PK_KEY_LEN 35u

static void pk_key(const uint8_t *pk, uint8_t *out) {
  memcpy(out, "pk:", 3);
  memcpy(out + 3, pk, 32);
}

/* Banned address check, then one token of rl for it. */
static int guard_take(struct parley_rl_guard *g, struct parley_rl *rl,
                      const char *ip, uint64_t now_ms) {
  char key[PARLEY_RL_IP_KEY_LEN];
  size_t klen;
  int rc;

  if (parley_rl_ip_key(ip, key, sizeof key, &klen) < 0)
    return PARLEY_EDENIED;
  if (parley_rl_check(g->bad, key, klen, now_ms, NULL) == PARLEY_EDENIED)
    return PARLEY_EDENIED;
  rc = parley_rl_take(rl, key, klen, 1, now_ms, NULL);
  if (rc == PARLEY_OK || rc == PARLEY_ELIMIT)
    return rc;
  return PARLEY_EDENIED; /* EDENIED, or ENOMEM: refuse rather than admit */
}

int parley_rl_guard_connect(void *ctx, const char *ip, uint64_t now_ms) {
  struct parley_rl_guard *g = ctx;
  return guard_take(g, g->conn, ip, now_ms);
}

int parley_rl_guard_handshake(void *ctx, const char *ip, uint64_t now_ms) {
  struct parley_rl_guard *g = ctx;
  return guard_take(g, g->hs, ip, now_ms);
}

int parley_rl_guard_peer(void *ctx, const char *ip, const uint8_t *pk,
                         uint64_t now_ms) {
  struct parley_rl_guard *g = ctx;
  char key[PARLEY_RL_IP_KEY_LEN];
  uint8_t pkk[PK_KEY_LEN];
  size_t klen;

  if (parley_rl_ip_key(ip, key, sizeof key, &klen) < 0 ||
      parley_rl_check(g->bad, key, klen, now_ms, NULL) == PARLEY_EDENIED)
    return PARLEY_EDENIED;
  pk_key(pk, pkk);
  if (parley_rl_check(g->bad, pkk, sizeof pkk, now_ms, NULL) ==
      PARLEY_EDENIED)
    return PARLEY_EDENIED;
  return PARLEY_OK;
}

int parley_rl_guard_strike_key(struct parley_rl_guard *g, const uint8_t *pk,
                               uint64_t now_ms) {
  uint8_t pkk[PK_KEY_LEN];
  int rc;

  pk_key(pk, pkk);
  rc = parley_rl_strike(g->bad, pkk, sizeof pkk, now_ms, NULL);
  return rc == PARLEY_OK ? PARLEY_OK : PARLEY_EDENIED;
}

int parley_rl_guard_strike(void *ctx, const char *ip, const uint8_t *pk,
                           uint64_t now_ms) {
  struct parley_rl_guard *g = ctx;
  char key[PARLEY_RL_IP_KEY_LEN];
  size_t klen;
  int rc = PARLEY_OK;

  if (parley_rl_ip_key(ip, key, sizeof key, &klen) == PARLEY_OK &&
      parley_rl_strike(g->bad, key, klen, now_ms, NULL) != PARLEY_OK)
    rc = PARLEY_EDENIED;
  if (pk != NULL && parley_rl_guard_strike_key(g, pk, now_ms) != PARLEY_OK)
    rc = PARLEY_EDENIED;
  return rc;
}

void parley_rl_guard_sweep(struct parley_rl_guard *g, uint64_t now_ms) {
  parley_rl_sweep(g->conn, now_ms);
  parley_rl_sweep(g->hs, now_ms);
  parley_rl_sweep(g->bad, now_ms);
}

void parley_rl_guard_stats(const struct parley_rl_guard *g, uint64_t now_ms,
                           struct parley_rl_stats *conn,
                           struct parley_rl_stats *handshake,
                           struct parley_rl_stats *bad) {
  if (conn != NULL)
    parley_rl_stats(g->conn, now_ms, conn);
  if (handshake != NULL)
    parley_rl_stats(g->hs, now_ms, handshake);
  if (bad != NULL)
    parley_rl_stats(g->bad, now_ms, bad);
}
