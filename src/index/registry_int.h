/*
 * registry_int.h — private declarations shared by registry.c and
 * regstore.c: the sizes of an encoded command and of the snapshot header.
 * Not part of the public contract (registry.h is).
 */
#ifndef PARLEY_INDEX_REGISTRY_INT_H
#define PARLEY_INDEX_REGISTRY_INT_H

#include "core/limits.h"

/* An encoded command is u8 type, 32-byte key, u64 ts and three str8
 * fields: 44 fixed bytes plus the string bytes. */
#define PARLEY__REG_CMD_FIXED (1u + 32u + 8u + 3u)
#define PARLEY__REG_CMD_MIN PARLEY__REG_CMD_FIXED
#define PARLEY__REG_CMD_MAX                                                    \
  (PARLEY__REG_CMD_FIXED + PARLEY_MAX_ADDR + PARLEY_MAX_NAME + PARLEY_MAX_TOPIC)

/* Registry snapshot: "PRG1" then a u32 peer count. */
#define PARLEY__REG_SNAP_MAGIC "PRG1"
#define PARLEY__REG_SNAP_HDR 8u

#endif
