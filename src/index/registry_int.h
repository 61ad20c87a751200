/*
 * registry_int.h — private declarations shared by the registry's files:
 *
 *   registry.c       the state machine: lifecycle, check and apply, sorted
 *                    walks, private topics' queries
 *   registry_snap.c  the canonical snapshot and its restore
 *   registry_cmd.c   the command codec and the GRANT / KEY_PUT builders
 *   regstore.c       single-node storage (uses only the sizes below)
 *
 * The sizes of an encoded command and of the snapshot header, the state's
 * structs (their layout is described at the top of registry.c), the
 * byte-order and bounded-reader helpers of the two codecs, and the
 * registry.c helpers that the snapshot and the codec call.  Not part of
 * the public contract (registry.h is).
 */
#ifndef PARLEY_INDEX_REGISTRY_INT_H
#define PARLEY_INDEX_REGISTRY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/limits.h"
#include "core/map.h"
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

/* An Ed25519 signature: a grant's, a KEY_PUT's, an acl's last_sig. */
#define PARLEY__REG_SIG_LEN 64u

/* State ----------------------------------------------------------------- */

struct topic;

struct peer {
  struct parley_reg_peer pub; /* pub.nsubs = entries in subs */
  struct topic **subs;        /* sorted by name; array owned, topics not */
  uint32_t subs_cap;
};

struct topic {
  struct peer **subs; /* subscribers sorted by key; array owned */
  uint32_t nsubs;
  uint32_t subs_cap;
  size_t len;
  char name[]; /* len bytes and a NUL */
};

/* A key blob as the owner made it (groupkey.h layout). */
struct blob {
  uint32_t epoch;
  uint16_t len;
  uint8_t bytes[];
};

struct member {
  uint8_t pk[32];
  struct blob *keys[2]; /* ascending epoch, NULLs last; owned */
};

/* A private topic's access list. */
struct acl {
  uint8_t owner[32];
  uint8_t last_sig[64]; /* signature of the last grant applied */
  uint64_t counter;     /* counter of the last grant applied */
  uint32_t epoch;
  uint32_t nmembers, members_cap;
  struct member *members; /* sorted by key, owner included; owned */
  size_t len;
  char name[]; /* len bytes and a NUL */
};

struct parley_registry {
  struct parley_map peers;  /* key -> struct peer * (owned) */
  struct parley_map topics; /* name -> struct topic * (owned) */
  struct parley_map acls;   /* name -> struct acl * (owned) */
  struct parley_reg_observer obs;
  uint32_t max_subs;
  uint32_t max_peers; /* 0 = unlimited */
  uint32_t max_topic;
  uint32_t max_members;
  uint32_t max_private; /* 0 = unlimited */
  uint64_t seed;
};

/* Byte order helpers --------------------------------------------------- */

static inline void parley__reg_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline void parley__reg_put_u64(uint8_t *p, uint64_t v) {
  parley__reg_put_u32(p, (uint32_t)(v >> 32));
  parley__reg_put_u32(p + 4, (uint32_t)v);
}

static inline uint32_t parley__reg_get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static inline uint64_t parley__reg_get_u64(const uint8_t *p) {
  return (uint64_t)parley__reg_get_u32(p) << 32 | parley__reg_get_u32(p + 4);
}

/* The int64 whose two's-complement bits are v, without relying on the
 * implementation-defined unsigned-to-signed conversion. */
static inline int64_t parley__reg_to_i64(uint64_t v) {
  return v <= INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

/* Bounded reader (snapshot and command decoding) ------------------------ */

/* A bounds-checked reader over the snapshot or command bytes. */
struct reader {
  const uint8_t *p;
  size_t len, pos;
};

static inline int parley__reg_rd_bytes(struct reader *rd, size_t n,
                                       const uint8_t **out) {
  if (rd->len - rd->pos < n)
    return PARLEY_EPROTO;
  *out = rd->p + rd->pos;
  rd->pos += n;
  return PARLEY_OK;
}

/* Reads a str8 of at most max bytes into dst (NUL-terminated). */
static inline int parley__reg_rd_str8(struct reader *rd, size_t max, char *dst,
                                      size_t *len) {
  const uint8_t *s;
  if (parley__reg_rd_bytes(rd, 1, &s) < 0 || s[0] > max)
    return PARLEY_EPROTO;
  *len = s[0];
  if (parley__reg_rd_bytes(rd, *len, &s) < 0)
    return PARLEY_EPROTO;
  memcpy(dst, s, *len);
  dst[*len] = '\0';
  return PARLEY_OK;
}

/* registry.c helpers used by the snapshot and the codec ----------------- */

/* Length of a NUL-terminated string stored in a char[cap]; PARLEY_EINVAL if
 * the array holds no NUL. */
PARLEY_NODISCARD int parley__reg_field_len(const char *s, size_t cap,
                                           size_t *len);
/* 1 if s (len bytes, NUL-terminated) is a valid advertised address /
 * display name, else 0. */
int parley__reg_addr_valid(const char *s, size_t len);
int parley__reg_name_valid(const char *s, size_t len);

/* Grows an array to hold need entries of elem bytes; the (possibly moved)
 * array, or NULL with arr untouched.  *cap is updated only on success. */
void *parley__reg_reserve(void *arr, uint32_t *cap, uint32_t need,
                          uint32_t min_cap, size_t elem);

/* The topic / access list of that name, or NULL.  Borrowed from r. */
struct topic *parley__reg_find_topic(const struct parley_registry *r,
                                     const char *name, size_t len);
/* An empty topic, indexed in r (owned by r); NULL on allocation failure. */
struct topic *parley__reg_topic_create(struct parley_registry *r,
                                       const char *name, size_t len);
/* An access list with room for cap members (none yet), indexed in r
 * (owned by r); NULL on allocation failure. */
struct acl *parley__reg_acl_new(struct parley_registry *r, const char *name,
                                size_t len, uint32_t cap);
/* 1 if pk is a member of a, else 0. */
int parley__reg_acl_has(const struct acl *a, const uint8_t *pk);
/* Frees every peer, topic and access list; the maps stay initialised and
 * empty. */
void parley__reg_clear_state(struct parley_registry *r);

/* qsort comparators over struct peer * (by key) and struct acl * (by
 * name). */
int parley__reg_cmp_peer(const void *a, const void *b);
int parley__reg_cmp_acl(const void *a, const void *b);
/* OUT: *out gets the map's values sorted with cmp (caller frees with
 * parley_free; NULL when the map is empty).  PARLEY_ENOMEM on failure. */
PARLEY_NODISCARD int
parley__reg_sorted_values(const struct parley_map *m,
                          int (*cmp)(const void *, const void *), void ***out);

#endif
