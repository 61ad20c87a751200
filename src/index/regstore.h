/*
 * regstore.h — durable storage of a single-node registry: a snapshot file
 * plus an append-only command log in the index's data directory.
 *
 *   DIR/registry.snap   u32 magic "PRSN", u32 version, u64 count of log
 *                       entries folded in, u32 crc32, u32 len, snapshot
 *   DIR/registry.log    records: u32 len, u32 crc32(payload), payload =
 *                       encoded struct parley_reg_cmd
 *
 * On open the snapshot is restored and the log replayed; a torn or corrupt
 * tail record (crash mid-write) is truncated away with a warning.  Appends
 * are buffered; parley_regstore_sync writes and fdatasyncs them (the server
 * calls it once per loop turn, before answering the requests whose
 * commands it carries).  When the log passes a threshold,
 * parley_regstore_compact writes a new snapshot (temp + rename) and empties
 * the log.  With Raft (a later issue) this module is replaced by the Raft
 * log and snapshots.
 */
#ifndef PARLEY_INDEX_REGSTORE_H
#define PARLEY_INDEX_REGSTORE_H

#include <stdint.h>

#include "core/err.h"
#include "core/log.h"
#include "index/registry.h"

struct parley_regstore;

/* Opens DIR's files (creating them), restores into reg (borrowed; must
 * outlive the regstore) and replays the log.  lg may be NULL. */
PARLEY_NODISCARD int parley_regstore_open(const char *dir,
                                          struct parley_registry *reg,
                                          const struct parley_log *lg,
                                          struct parley_regstore **out)
    PARLEY_NONNULL(1, 2, 4);
/* Syncs pending appends and closes.  NULL is a no-op. */
void parley_regstore_close(struct parley_regstore *rs);
/* Buffers one applied command for the log. */
PARLEY_NODISCARD int parley_regstore_append(struct parley_regstore *rs,
                                            const struct parley_reg_cmd *c)
    PARLEY_NONNULL(1, 2);
/* Writes and fdatasyncs buffered appends; compacts when the log holds more
 * than compact_after entries (0 = never). */
PARLEY_NODISCARD int parley_regstore_sync(struct parley_regstore *rs,
                                          uint32_t compact_after)
    PARLEY_NONNULL(1);
PARLEY_NODISCARD int parley_regstore_compact(struct parley_regstore *rs)
    PARLEY_NONNULL(1);
/* Entries in the log since the last snapshot. */
uint64_t parley_regstore_log_entries(const struct parley_regstore *rs)
    PARLEY_NONNULL(1);

#endif
