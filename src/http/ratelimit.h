/*
 * ratelimit.h — token buckets and temporary bans keyed by a byte string.
 *
 * One struct parley_rl is one limit ("token requests per IP", "handshakes
 * per peer", ...).  Each key (an IP address in text, a peer key, a client
 * id: any 1..PARLEY_RL_MAX_KEY bytes) gets a bucket of `burst` tokens that
 * refills at `rate` tokens every `per_ms` milliseconds; parley_rl_take
 * spends tokens and refuses once the bucket is empty.  Independently, a key
 * collects strikes (invalid frames, wrong passwords, bad tokens): `strikes`
 * of them within `strike_window_ms` ban the key for `ban_ms`, doubling for
 * every further ban of the same key up to `ban_max_ms`.
 *
 * The bucket is kept as a GCRA "theoretical arrival time" (one integer per
 * key, in microseconds), so refills are exact however often it is polled.
 *
 * The module is pure: it never reads a clock.  Callers pass now_ms from one
 * monotonic millisecond clock (parley_mono_ms) throughout.  No I/O, no
 * libuv, not thread-safe (one limiter per loop thread).
 *
 * Memory is bounded: at most max_entries keys.  A key whose state is
 * "nothing to remember" (full bucket, no recent strike, no ban) is dormant
 * and may be dropped at any time without changing any answer.  When the
 * table is full, a new key first evicts dormant keys from the least
 * recently used end, and otherwise the least recently used key, banned or
 * not (counted in stats.evictions): an attacker who controls more than
 * max_entries addresses can thus shorten bans, which is preferred to
 * refusing every new address once the table is full of bans.
 * parley_rl_sweep drops every dormant key (call it from a periodic timer).
 */
#ifndef PARLEY_HTTP_RATELIMIT_H
#define PARLEY_HTTP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Longest key, in bytes. */
#define PARLEY_RL_MAX_KEY 64u
/* Ceilings of the configuration (checked by parley_rl_new). */
#define PARLEY_RL_MAX_BURST 1000000u
#define PARLEY_RL_MAX_PERIOD_MS (24u * 3600u * 1000u)
#define PARLEY_RL_MAX_BAN_MS (30ull * 24u * 3600u * 1000u)
#define PARLEY_RL_DEFAULT_ENTRIES 65536u
/* Room for the text parley_rl_ip_key writes ("v6:" + address + "/64"). */
#define PARLEY_RL_IP_KEY_LEN 56u

struct parley_rl;

struct parley_rl_config {
  uint32_t burst;            /* bucket capacity, 1..PARLEY_RL_MAX_BURST */
  uint32_t rate;             /* tokens regained every per_ms, >= 1, at most
                                one per microsecond */
  uint32_t per_ms;           /* 1..PARLEY_RL_MAX_PERIOD_MS */
  uint32_t strikes;          /* strikes that ban; 0 = strikes never ban */
  uint64_t strike_window_ms; /* strikes older than this are forgotten */
  uint64_t ban_ms;           /* first ban, 1..PARLEY_RL_MAX_BAN_MS */
  uint64_t ban_max_ms;       /* cap of the doubling; 0 = ban_ms (no growth) */
  size_t max_entries;        /* 0 = PARLEY_RL_DEFAULT_ENTRIES */
};

/* Counters for /metrics.  All are totals since parley_rl_new except
 * entries and active_bans, which are the current values. */
struct parley_rl_stats {
  uint64_t allowed;          /* takes that succeeded */
  uint64_t limited;          /* takes refused for an empty bucket */
  uint64_t refused_banned;   /* takes and checks refused during a ban */
  uint64_t strikes;          /* strikes recorded */
  uint64_t bans;             /* bans imposed (by strikes or parley_rl_ban) */
  uint64_t evictions;        /* non-dormant keys dropped for room */
  size_t entries;            /* keys tracked now */
  size_t active_bans;        /* keys banned at now_ms */
};

/* Validates cfg (PARLEY_EINVAL) and creates a limiter.  seed perturbs the
 * key hash (see core/map.h): pass a random value.  OUT: *out, caller frees
 * with parley_rl_free.  PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_rl_new(const struct parley_rl_config *cfg,
                                   uint64_t seed, struct parley_rl **out)
    PARLEY_NONNULL(1, 3);
/* NULL is a no-op. */
void parley_rl_free(struct parley_rl *rl);

/* Spends cost tokens (1..burst) of key's bucket.
 *   PARLEY_OK       allowed;
 *   PARLEY_ELIMIT   the bucket holds fewer than cost tokens (nothing spent);
 *   PARLEY_EDENIED  the key is banned (nothing spent);
 *   PARLEY_EINVAL   empty or over-long key, cost 0 or over burst;
 *   PARLEY_ENOMEM   no memory for a new key (callers should refuse).
 * OUT: *retry_ms (if non-NULL) = for ELIMIT the wait until cost tokens are
 * there, for EDENIED the rest of the ban, otherwise 0. */
PARLEY_NODISCARD int parley_rl_take(struct parley_rl *rl, const void *key,
                                    size_t klen, uint32_t cost,
                                    uint64_t now_ms, uint64_t *retry_ms)
    PARLEY_NONNULL(1, 2);

/* PARLEY_EDENIED (with *retry_ms as above) if key is banned, otherwise
 * PARLEY_OK.  Never creates an entry or spends tokens. */
PARLEY_NODISCARD int parley_rl_check(struct parley_rl *rl, const void *key,
                                     size_t klen, uint64_t now_ms,
                                     uint64_t *retry_ms) PARLEY_NONNULL(1, 2);

/* Records one strike against key.  PARLEY_EDENIED if key is banned after
 * it (this strike banned it, or it was banned already: strikes during a ban
 * are counted in stats but do not lengthen it), PARLEY_OK otherwise;
 * *retry_ms as for parley_rl_check.  PARLEY_EINVAL, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_rl_strike(struct parley_rl *rl, const void *key,
                                      size_t klen, uint64_t now_ms,
                                      uint64_t *retry_ms) PARLEY_NONNULL(1, 2);

/* Bans key from now_ms for duration_ms (1..PARLEY_RL_MAX_BAN_MS), replacing
 * a shorter ban; a longer running ban is kept.  PARLEY_EINVAL,
 * PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_rl_ban(struct parley_rl *rl, const void *key,
                                   size_t klen, uint64_t now_ms,
                                   uint64_t duration_ms) PARLEY_NONNULL(1, 2);

/* Forgets key entirely (bucket, strikes, ban, ban history).
 * PARLEY_ENOTFOUND if it was not tracked. */
int parley_rl_forget(struct parley_rl *rl, const void *key, size_t klen)
    PARLEY_NONNULL(1, 2);

/* Drops every dormant key.  OUT: returns nothing; see stats.entries. */
void parley_rl_sweep(struct parley_rl *rl, uint64_t now_ms) PARLEY_NONNULL(1);

/* Fills *out (active_bans is counted by a walk over the table). */
void parley_rl_stats(const struct parley_rl *rl, uint64_t now_ms,
                     struct parley_rl_stats *out) PARLEY_NONNULL(1, 3);

/* Turns a numeric IP address into a rate-limit key: "v4:1.2.3.4" for IPv4
 * and IPv4-mapped IPv6, "v6:2001:db8:1:2::/64" for other IPv6 addresses
 * (one /64, the usual allocation to one host or site, is one key, so a
 * host cannot dodge a limit by cycling through its 2^64 addresses).
 * Brackets around IPv6 are accepted, zone ids are not.  out holds cap
 * bytes (PARLEY_RL_IP_KEY_LEN is enough); OUT: *len = strlen(out).
 * PARLEY_EINVAL if ip is not an address, PARLEY_ETOOBIG if cap is short. */
PARLEY_NODISCARD int parley_rl_ip_key(const char *ip, char *out, size_t cap,
                                      size_t *len) PARLEY_NONNULL(1, 2, 4);

#endif
