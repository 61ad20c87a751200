/*
 * ptopic_int.h — what ptopic.c (members' side) and ptopic_owner.c (the
 * owner's actions and the HTTP API) share about private topics.
 */
#ifndef PARLEY_PEER_PTOPIC_INT_H
#define PARLEY_PEER_PTOPIC_INT_H

#include "crypto/groupkey.h"
#include "peer/node_int.h"

enum { PT_UNKNOWN = 0, PT_PUBLIC = 1, PT_PRIVATE = 2 };

#define PT_MAX_KEYS 64u /* epochs kept in memory per topic (newest) */
#define PROBE_GAP_MS 1000u

struct ptopic {
  char topic[CHANNEL_MAX];
  int state;             /* PT_* */
  int owner_known;       /* owner came from MEMBERS, not only from a blob */
  uint8_t owner[32];
  uint32_t epoch;        /* current epoch (MEMBERS / ACL_EVENT) */
  uint64_t counter;      /* of the last grant applied */
  uint8_t (*members)[32];
  uint32_t nmembers;
  int member;            /* this peer is a member */
  uint64_t probed_ms;    /* monotonic, last MEMBERS_GET sent */
  struct parley_topic_key *keys; /* sodium_malloc, ascending epoch */
  size_t nkeys;
};

/* The topic's record; created (state PT_UNKNOWN) when create is set.
 * NULL if absent or out of memory. */
struct ptopic *parley__pt_get(struct parley_node *n, const char *topic,
                              int create);
/* The key of epoch, or NULL. */
const struct parley_topic_key *parley__pt_key(const struct ptopic *pt,
                                              uint32_t epoch);
/* Adds a key (copied into locked memory); 0 if added or already held. */
int parley__pt_add_key(struct ptopic *pt, const struct parley_topic_key *k);
int parley__pt_is_member(const struct ptopic *pt, const uint8_t pk[32]);
/* Applies a MEMBERS answer (f may be NULL: PARLEY_EPROTO). */
int parley__take_members(struct parley_node *n, struct ptopic *pt,
                         const struct parley_frame *f);
int parley__send_members_get(struct parley_node *n, const char *topic,
                             icreq_cb cb, void *ctx);
/* Opens a key blob sealed to us and keeps the key; save: also store the
 * blob (this turn's transaction). */
int parley__pt_take_blob(struct parley_node *n, struct ptopic *pt,
                         const uint8_t *blob, size_t len, int save);
/* ptopic_owner.c: frees the owner actions under way (node shutdown). */
void parley__ptopic_ops_free(struct parley_node *n);

#endif
