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

/* ---- a guard for secure links ------------------------------------------- */

/* Connection and handshake limits per IP address, and bans for bad input
 * per address and per peer key, ready to plug into net/link.h's struct
 * parley_net_guard (the four functions below have the shapes of its hooks;
 * pass the guard as its ctx).  Three limiters:
 *   conn       one token per accepted TCP connection, per address;
 *   handshake  one token per handshake begun (the DH work), per address;
 *   bad        strikes for bad input, per address and per key; its
 *              strikes/strike_window_ms/ban_ms/ban_max_ms ban both (its
 *              burst/rate are unused, but must be valid).
 * A banned address is refused at connect and at handshake, a banned key
 * once the handshake reveals it.  Addresses are keyed by parley_rl_ip_key
 * (IPv6 by /64); keys as "pk:" + 32 raw bytes.  Pure: time is passed in. */
struct parley_rl_guard;

struct parley_rl_guard_config {
  struct parley_rl_config conn, handshake, bad;
};

/* Suggested defaults: connections burst 64, 32/s; handshakes burst 32,
 * 16/s; 10 strikes within 60 s ban for 60 s, doubling up to 1 h. */
void parley_rl_guard_defaults(struct parley_rl_guard_config *cfg)
    PARLEY_NONNULL(1);
/* PARLEY_EINVAL (a limiter's config), PARLEY_ENOMEM.  OUT: *out, caller
 * frees with parley_rl_guard_free. */
PARLEY_NODISCARD int parley_rl_guard_new(
    const struct parley_rl_guard_config *cfg, uint64_t seed,
    struct parley_rl_guard **out) PARLEY_NONNULL(1, 3);
/* NULL is a no-op. */
void parley_rl_guard_free(struct parley_rl_guard *g);

/* The hooks.  ctx is the struct parley_rl_guard.  ip is a numeric address
 * (an unparsable one is refused: PARLEY_EDENIED).
 *   connect, handshake: PARLEY_EDENIED if the address is banned, else
 *     PARLEY_ELIMIT if its bucket is empty, else PARLEY_OK;
 *   peer: PARLEY_EDENIED if the key or the address is banned;
 *   strike: records a strike against the address and (if non-NULL) the
 *     key; PARLEY_EDENIED if either is banned afterwards.
 * Out of memory refuses (PARLEY_EDENIED) rather than admits. */
int parley_rl_guard_connect(void *ctx, const char *ip, uint64_t now_ms)
    PARLEY_NONNULL(1, 2);
int parley_rl_guard_handshake(void *ctx, const char *ip, uint64_t now_ms)
    PARLEY_NONNULL(1, 2);
int parley_rl_guard_peer(void *ctx, const char *ip, const uint8_t *pk,
                         uint64_t now_ms) PARLEY_NONNULL(1, 2, 3);
int parley_rl_guard_strike(void *ctx, const char *ip, const uint8_t *pk,
                           uint64_t now_ms) PARLEY_NONNULL(1, 2);

/* The same strike and ban state, for a caller that knows only a key:
 * records a strike against pk (32 bytes).  PARLEY_EDENIED if banned. */
int parley_rl_guard_strike_key(struct parley_rl_guard *g, const uint8_t *pk,
                               uint64_t now_ms) PARLEY_NONNULL(1, 2);

/* Drops dormant entries of the three limiters (call from a timer). */
void parley_rl_guard_sweep(struct parley_rl_guard *g, uint64_t now_ms)
    PARLEY_NONNULL(1);
/* Stats of the three limiters (any OUT pointer may be NULL). */
void parley_rl_guard_stats(const struct parley_rl_guard *g, uint64_t now_ms,
                           struct parley_rl_stats *conn,
                           struct parley_rl_stats *handshake,
                           struct parley_rl_stats *bad) PARLEY_NONNULL(1);

#endif
