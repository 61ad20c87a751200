/*
 * groupkey.h — private topics: topic keys, their delivery to members,
 * messages encrypted under them, and the owner-signed grant statements
 * that say who is a member.
 *
 * A private topic has one owner (the Ed25519 key that signed its CREATE
 * grant) and a sequence of topic keys numbered by epoch 1, 2, 3...  Only
 * the owner makes keys.  Each key reaches each member as a key blob:
 * the owner signs (topic, epoch, owner, member, key) and seals signature and
 * key with crypto_box_seal to the member's X25519 key.  Messages are
 * signed by their publisher (Ed25519ph) and encrypted with
 * XChaCha20-Poly1305-IETF under the key of the current epoch.
 *
 * Rotation rule: a REVOKE grant carries epoch + 1.  The owner then makes a
 * fresh key for that epoch and seals it to every remaining member (and to
 * itself), never to the revoked one, who therefore cannot read anything
 * published under epoch + 1 or later.  Publishers use the newest epoch
 * they hold; a member who was offline during a rotation fetches the blobs
 * of the epochs it missed (the index keeps them per member) when it
 * returns.  An ADD grant does not rotate (a new member can read the
 * current epoch); an owner who wants that too issues ROTATE first.
 *
 * Byte layouts are below next to each codec; docs/internals/E2E.md has the
 * reasoning.  All integers are big-endian.  Everything here is pure apart
 * from randombytes_buf: no I/O, clock or allocation.
 */
#ifndef PARLEY_CRYPTO_GROUPKEY_H
#define PARLEY_CRYPTO_GROUPKEY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "crypto/identity.h"

#define PARLEY_GROUPKEY_VERSION 1u
#define PARLEY_GROUPKEY_KEY_LEN 32u

/* ---- topic keys -------------------------------------------------------- */

struct parley_topic_key {
  uint32_t epoch; /* >= 1 */
  uint8_t key[PARLEY_GROUPKEY_KEY_LEN];
};

/* A fresh random key for epoch (>= 1, else PARLEY_EINVAL). */
PARLEY_NODISCARD int parley_groupkey_generate(struct parley_topic_key *k,
                                              uint32_t epoch)
    PARLEY_NONNULL(1);
void parley_groupkey_wipe(struct parley_topic_key *k) PARLEY_NONNULL(1);

/* ---- key blobs (a key sealed to one member) -----------------------------
 *
 *   off  len  field
 *   0    1    version = 1
 *   1    4    epoch (>= 1)
 *   5    1    topic length T (1..255)
 *   6    T    topic (parley_topic_valid)
 *   6+T  32   owner Ed25519 pk
 *   38+T 32   member Ed25519 pk
 *   70+T 144  crypto_box_seal to the member's X25519 key of
 *             sig (64) || key (32), where sig is the owner's Ed25519
 *             signature of "parley-topic-key-v1\0" || bytes [0, 70+T) || key
 */
#define PARLEY_GROUPKEY_SEALED_LEN 144u /* crypto_box_SEALBYTES + 96 */
#define PARLEY_GROUPKEY_BLOB_MAX (70u + PARLEY_MAX_TOPIC + 144u)

struct parley_groupkey_blob {
  uint8_t version;
  uint32_t epoch;
  char topic[PARLEY_MAX_TOPIC + 1]; /* NUL-terminated */
  uint8_t owner_pk[32];
  uint8_t member_pk[32];
  uint8_t sealed[PARLEY_GROUPKEY_SEALED_LEN];
};

/* Seals k for member_pk on topic (NUL-terminated, parley_topic_valid).
 * Errors: PARLEY_EINVAL (bad topic, epoch 0, member key not a usable
 * point). */
PARLEY_NODISCARD int parley_groupkey_seal(const struct parley_identity *owner,
                                          const char *topic,
                                          const struct parley_topic_key *k,
                                          const uint8_t member_pk[32],
                                          struct parley_groupkey_blob *out)
    PARLEY_NONNULL(1, 2, 3, 4, 5);

/* Opens a blob as `me`, accepting it only if it is for me, on topic, from
 * owner_pk (the owner the caller knows from the topic's CREATE grant, not
 * the one the blob claims).  OUT: *k on success (wipe it when done).
 * Errors: PARLEY_EDENIED (blob for another member, topic or owner),
 * PARLEY_ECRYPTO (tampered, or not sealed by the owner). */
PARLEY_NODISCARD int parley_groupkey_open(const struct parley_identity *me,
                                          const uint8_t owner_pk[32],
                                          const char *topic,
                                          const struct parley_groupkey_blob *b,
                                          struct parley_topic_key *k)
    PARLEY_NONNULL(1, 2, 3, 4, 5);

/* Pure codec.  decode: PARLEY_EVERSION, PARLEY_EPROTO (bad length, epoch 0,
 * bad topic).  encode: PARLEY_EINVAL (bad fields), PARLEY_ETOOBIG (cap);
 * decode then encode gives back the same bytes. */
PARLEY_NODISCARD int parley_groupkey_blob_encode(
    const struct parley_groupkey_blob *b, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 2, 4);
PARLEY_NODISCARD int parley_groupkey_blob_decode(
    const uint8_t *buf, size_t len, struct parley_groupkey_blob *b)
    PARLEY_NONNULL(1, 3);

/* ---- topic messages ------------------------------------------------------
 *
 *   off  len  field
 *   0    1    version = 1
 *   1    4    epoch of the key used
 *   5    24   nonce (random)
 *   29   n    XChaCha20-Poly1305-IETF ciphertext of sig (64) || pt, tag 16
 *
 * AD = "parley-topic-msg-v1\0" || bytes [0, 29) || u8 T || topic ||
 *      publisher pk || u64 seq || u64 ts.
 * sig = Ed25519ph by the publisher over "parley-topic-sig-v1\0" ||
 *      version || epoch || u8 T || topic || publisher pk || seq || ts ||
 *      u64 pt_len || pt.
 * The signature is what proves the publisher: the topic key alone only
 * proves "some member".
 */
#define PARLEY_GROUPKEY_MSG_HEADER 29u
#define PARLEY_GROUPKEY_MSG_OVERHEAD (PARLEY_GROUPKEY_MSG_HEADER + 64u + 16u)
#define PARLEY_GROUPKEY_MAX_PLAINTEXT (PARLEY_MAX_FRAME - 4096u)
#define PARLEY_GROUPKEY_MSG_MAX                                               \
  (PARLEY_GROUPKEY_MSG_OVERHEAD + PARLEY_GROUPKEY_MAX_PLAINTEXT)

/* A decoded topic message: borrows the buffer it was decoded from. */
struct parley_groupkey_msg {
  uint8_t version;
  uint32_t epoch;
  const uint8_t *nonce; /* 24 bytes */
  const uint8_t *body;  /* ciphertext || tag */
  size_t body_len;      /* >= 80 */
};

/* OUT: *len = encrypted size of a pt_len-byte plaintext (PARLEY_ETOOBIG
 * past PARLEY_GROUPKEY_MAX_PLAINTEXT). */
PARLEY_NODISCARD int parley_groupkey_msg_len(size_t pt_len, size_t *len)
    PARLEY_NONNULL(2);

/* Signs and encrypts pt under k for topic with the publisher's seq and ts.
 * out (cap bytes) must not overlap pt.  Errors: PARLEY_EINVAL (bad topic,
 * epoch 0), PARLEY_ETOOBIG. */
PARLEY_NODISCARD int parley_groupkey_encrypt(
    const struct parley_identity *publisher, const char *topic,
    const struct parley_topic_key *k, uint64_t seq, uint64_t ts_ms,
    const uint8_t *pt, size_t pt_len, uint8_t *out, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 2, 3, 8, 10);

/* Decrypts a message claimed by publisher_pk with seq and ts (from the MSG
 * frame) using k, whose epoch must be the message's (decode the message to
 * pick the key).  out needs msg length - PARLEY_GROUPKEY_MSG_HEADER - 16
 * bytes (scratch; wiped on failure).  OUT: *pt_len.
 * Errors: PARLEY_EPROTO / PARLEY_EVERSION (malformed), PARLEY_EINVAL (key
 * of another epoch, bad topic), PARLEY_ETOOBIG (cap), PARLEY_ECRYPTO
 * (tampered, other topic/publisher/seq/ts, not signed by publisher). */
PARLEY_NODISCARD int parley_groupkey_decrypt(
    const struct parley_topic_key *k, const char *topic,
    const uint8_t publisher_pk[32], uint64_t seq, uint64_t ts_ms,
    const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *pt_len)
    PARLEY_NONNULL(1, 2, 3, 6, 8, 10);

/* Pure codec of the message layout (no cryptography).  decode borrows buf. */
PARLEY_NODISCARD int parley_groupkey_msg_decode(const uint8_t *buf,
                                                size_t len,
                                                struct parley_groupkey_msg *m)
    PARLEY_NONNULL(1, 3);
PARLEY_NODISCARD int parley_groupkey_msg_encode(
    const struct parley_groupkey_msg *m, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 2, 4);

/* ---- grants ---------------------------------------------------------------
 *
 *   off  len  field
 *   0    1    version = 1
 *   1    1    action (enum parley_grant_action)
 *   2    1    topic length T (1..255)
 *   3    T    topic
 *   3+T  32   owner Ed25519 pk
 *   35+T 32   member Ed25519 pk (the owner's own for CREATE and ROTATE)
 *   67+T 4    epoch in force once the statement applies
 *   71+T 8    issued, owner's clock, Unix ms (informative)
 *   79+T 8    counter: strictly increasing per topic
 *   87+T 64   owner's Ed25519 signature of
 *             "parley-grant-v1\0" || bytes [0, 87+T)
 */
enum parley_grant_action {
  PARLEY_GRANT_CREATE = 1, /* new topic; epoch 1; member = owner */
  PARLEY_GRANT_ADD = 2,    /* member joins; epoch unchanged */
  PARLEY_GRANT_REVOKE = 3, /* member leaves; epoch + 1 */
  PARLEY_GRANT_ROTATE = 4, /* new key, same members; epoch + 1 */
};

#define PARLEY_GRANT_MAX_LEN (151u + PARLEY_MAX_TOPIC)

struct parley_grant {
  uint8_t version;
  uint8_t action;
  char topic[PARLEY_MAX_TOPIC + 1]; /* NUL-terminated */
  uint8_t owner_pk[32];
  uint8_t member_pk[32];
  uint32_t epoch;
  uint64_t issued_ms;
  uint64_t counter;
  uint8_t sig[64];
};

/* The part of a topic's history a verifier needs to judge the next grant.
 * A zeroed struct is "topic unknown". */
struct parley_grant_state {
  int exists;
  uint8_t owner_pk[32];
  uint32_t epoch;
  uint64_t counter;
};

/* Fills g->version and g->owner_pk from owner, checks the statement's shape
 * and signs it (g->sig).  The caller sets action, topic, member_pk, epoch,
 * issued_ms and counter.  Errors: PARLEY_EINVAL (shape, see verify). */
PARLEY_NODISCARD int parley_groupkey_grant_sign(
    const struct parley_identity *owner, struct parley_grant *g)
    PARLEY_NONNULL(1, 2);

/* Checks the statement's shape and its signature under g->owner_pk.
 * Shape: known action and version, valid topic, counter >= 1, epoch >= 1;
 * CREATE has epoch 1; CREATE and ROTATE name the owner as member; ADD and
 * REVOKE name someone else; REVOKE and ROTATE have epoch >= 2.
 * Errors: PARLEY_EINVAL (shape), PARLEY_ECRYPTO (signature). */
PARLEY_NODISCARD int parley_groupkey_grant_verify(const struct parley_grant *g)
    PARLEY_NONNULL(1);

/* Judges g as the next statement of the topic whose state is st, and
 * applies it to st on success.  is_member: whether g->member_pk is a member
 * now (the caller keeps the member set and updates it on success).
 * Errors, first failing check wins:
 *   PARLEY_EINVAL / PARLEY_ECRYPTO   as parley_groupkey_grant_verify
 *   PARLEY_ENOTFOUND  not CREATE for an unknown topic
 *   PARLEY_EEXIST     CREATE for a known topic
 *   PARLEY_EDENIED    signed by someone other than the topic's owner
 *   PARLEY_ERANGE     counter not above the last one (replay, reorder)
 *   PARLEY_EPROTO     epoch is not the one the rule requires, ADD of a
 *                     member or REVOKE of a non-member, epoch overflow */
PARLEY_NODISCARD int parley_groupkey_grant_apply(struct parley_grant_state *st,
                                                 const struct parley_grant *g,
                                                 int is_member)
    PARLEY_NONNULL(1, 2);

/* Pure codec.  decode checks lengths, version and topic but not the shape
 * or signature (call verify).  encode then decode round-trips exactly. */
PARLEY_NODISCARD int parley_groupkey_grant_encode(const struct parley_grant *g,
                                                  uint8_t *buf, size_t cap,
                                                  size_t *written)
    PARLEY_NONNULL(1, 2, 4);
PARLEY_NODISCARD int parley_groupkey_grant_decode(const uint8_t *buf,
                                                  size_t len,
                                                  struct parley_grant *g)
    PARLEY_NONNULL(1, 3);

#endif
