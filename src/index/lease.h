/*
 * lease.h — the index's table of peer leases.
 *
 * A registered peer stays in the registry only while its lease runs: every
 * REGISTER or HEARTBEAT renews it for a fixed duration, and when it runs out
 * the server applies an EXPIRE command.  Leases are not registry state (a
 * heartbeat is never written to disk); they live here, in memory, on the
 * server that answers the heartbeats.
 *
 * The table maps a peer key to its lease and keeps the leases in a binary
 * min-heap ordered by expiry, so renewing, removing and taking the earliest
 * are O(log n) and peeking at the next expiry is O(1).  Ties are broken by
 * key, so the order in which expired peers come out is deterministic.
 *
 * Memory: an index holds one lease per registered peer, so the table is
 * laid out flat: the leases themselves in one array (no allocation per
 * lease), the heap as 32-bit positions in that array, and the key index
 * as an open-addressing table of 32-bit positions (linear probing, at
 * most half full, keyed SipHash so that peers cannot aim collisions).
 * About 70 bytes per lease at the table's fullest, 100 on average over
 * its doublings, against ~170 for a lease, a map entry and a heap slot
 * allocated one by one.
 *
 * The module is pure: it never reads a clock.  Callers pass `now` (any
 * monotonic millisecond clock, the same one throughout) and the wall-clock
 * time to record as the peer's last_seen.  No libuv, no I/O, so it can be
 * unit-tested on its own.
 */
#ifndef PARLEY_INDEX_LEASE_H
#define PARLEY_INDEX_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct parley_lease {
  uint8_t pk[32];
  uint64_t expires_ms;  /* monotonic time at which the lease runs out */
  int64_t last_seen_ms; /* wall clock of the last REGISTER/HEARTBEAT */
  uint32_t heap_idx;    /* position in the heap (internal) */
};

/* Caller-allocated; the fields are private to lease.c. */
struct parley_lease_table {
  struct parley_lease *v; /* the leases, v[0..len) */
  uint32_t *heap;         /* positions in v, a min-heap by (expires_ms, pk) */
  uint32_t *slots;        /* key index: position in v + 1, 0 = empty */
  size_t len, alloc;      /* leases in v / room in v and heap */
  size_t nslots;          /* a power of two, or 0 */
  uint8_t key[16];        /* SipHash key, from the seed */
};

/* seed keys the hash of the key index. */
void parley_lease_table_init(struct parley_lease_table *t, uint64_t seed)
    PARLEY_NONNULL(1);
/* Frees every lease.  Safe on a zeroed or already closed table. */
void parley_lease_table_close(struct parley_lease_table *t) PARLEY_NONNULL(1);

/* Starts or renews pk's lease: it now runs out at now_ms + duration_ms
 * (saturating) and its last_seen becomes seen_ms.  A renewal may move the
 * expiry earlier (a shorter duration), which is allowed.  PARLEY_ENOMEM on
 * allocation failure, or past UINT32_MAX - 1 leases (the table is
 * unchanged). */
PARLEY_NODISCARD int parley_lease_renew(struct parley_lease_table *t,
                                        const uint8_t pk[32], uint64_t now_ms,
                                        uint64_t duration_ms, int64_t seen_ms)
    PARLEY_NONNULL(1, 2);

/* Drops pk's lease.  PARLEY_ENOTFOUND if it has none. */
int parley_lease_remove(struct parley_lease_table *t, const uint8_t pk[32])
    PARLEY_NONNULL(1, 2);

/* pk's lease, or NULL.  The pointer is valid until the next renew, remove,
 * pop or close; do not modify it. */
const struct parley_lease *parley_lease_get(const struct parley_lease_table *t,
                                            const uint8_t pk[32])
    PARLEY_NONNULL(1, 2);

/* OUT: *expires_ms = the earliest expiry.  PARLEY_ENOTFOUND when empty. */
PARLEY_NODISCARD int parley_lease_next_expiry(
    const struct parley_lease_table *t, uint64_t *expires_ms)
    PARLEY_NONNULL(1, 2);

/* Removes the earliest lease if it has run out (expires_ms <= now_ms) and
 * copies its key to pk_out.  PARLEY_ENOTFOUND if no lease has run out.
 * Call it in a loop to collect every expired peer, earliest first. */
PARLEY_NODISCARD int parley_lease_pop_expired(struct parley_lease_table *t,
                                              uint64_t now_ms,
                                              uint8_t pk_out[32])
    PARLEY_NONNULL(1, 3);

size_t parley_lease_count(const struct parley_lease_table *t)
    PARLEY_NONNULL(1);

#endif
