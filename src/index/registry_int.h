/*
 * registry_int.h — private declarations shared by registry.c and
 * regstore.c: the sizes of an encoded command and of the snapshot header.
 * Not part of the public contract (registry.h is).
 */
#ifndef PARLEY_INDEX_REGISTRY_INT_H
#define PARLEY_INDEX_REGISTRY_INT_H

#include "core/limits.h"
#include "index/registry.h"

/* An encoded command is u8 type, 32-byte key, u64 ts and three u8-length
 * fields: 44 fixed bytes plus the field bytes.  Types 1..4 carry three
 * strings (at most 459 bytes in all), GRANT and KEY_PUT their data (at
 * most 577). */
#define PARLEY__REG_CMD_FIXED (1u + 32u + 8u + 3u)
#define PARLEY__REG_CMD_MIN PARLEY__REG_CMD_FIXED
#define PARLEY__REG_CMD_MAX (PARLEY__REG_CMD_FIXED + PARLEY_REG_DATA_MAX)

/* Registry snapshot: magic then a u32 peer count.  "PRG2" is written;
 * "PRG1" (no private topics) is still restored. */
#define PARLEY__REG_SNAP_MAGIC "PRG2"
#define PARLEY__REG_SNAP_MAGIC_V1 "PRG1"
#define PARLEY__REG_SNAP_HDR 8u
/* The snapshot of the empty state: "PRG2", 0 peers, 0 private topics. */
#define PARLEY__REG_SNAP_EMPTY "PRG2\0\0\0\0\0\0\0\0"
#define PARLEY__REG_SNAP_EMPTY_LEN 12u

#endif
