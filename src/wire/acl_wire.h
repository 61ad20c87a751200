/*
 * acl_wire.h — payloads of the private-topic frames (wire.h carries them
 * as opaque frames: TOPIC_CTL 0x50, KEY_PUT 0x51, KEY_GET 0x52, KEYS 0x53,
 * MEMBERS_GET 0x54, MEMBERS 0x55, ACL_EVENT 0x56), as pure functions.
 * docs/PROTOCOL.md section 16 has the conversation; crypto/groupkey.h the
 * grant statements and key blobs these frames carry, which this codec
 * treats as opaque bytes (their own decoders are in the crypto layer).
 *
 * Layouts (big-endian; key = 32 bytes, sig = 64 bytes, str8 = u8 length +
 * 0..255 bytes without NUL, bytes16 = u16 length + bytes):
 *
 *   TOPIC_CTL    u32 req, bytes16 grant (1..PARLEY_ACL_GRANT_MAX)
 *   KEY_PUT      u32 req, bytes16 blob (1..PARLEY_ACL_BLOB_MAX), sig owner_sig
 *   KEY_GET      u32 req, str8 topic, u32 min_epoch
 *   KEYS         u32 req, str8 topic, u32 epoch, u8 count,
 *                count x bytes16 blob (1..PARLEY_ACL_BLOB_MAX)
 *   MEMBERS_GET  u32 req, str8 topic
 *   MEMBERS      u32 req, str8 topic, key owner, u32 epoch, u64 counter,
 *                u32 count, count x key member
 *   ACL_EVENT    str8 topic, u8 kind, key member, u32 epoch
 *
 * Rules the decoders enforce (PARLEY_EPROTO otherwise), and the encoders
 * too (PARLEY_EINVAL, or PARLEY_ETOOBIG for a length over its cap):
 *   - KEYS: epoch >= 1, count <= PARLEY_ACL_MAX_KEYS.
 *   - MEMBERS: 1 <= count <= PARLEY_ACL_MAX_MEMBERS (the owner is always
 *     a member), members in strictly ascending byte order, epoch >= 1,
 *     counter >= 1.
 *   - ACL_EVENT: kind 1..5 (PARLEY_ACL_EV_*), epoch >= 1.
 *   - Every field fills the payload exactly: nothing may follow.
 * Topic syntax (parley_topic_valid) is left to the receiver, as in wire.h.
 *
 * Decoders never allocate; strings, keys, blobs and grants point into the
 * caller's buffer (borrowed; valid as long as it is).  The codec is
 * canonical: encode(decode(b)) == b for every b that decodes.
 */
#ifndef PARLEY_WIRE_ACL_WIRE_H
#define PARLEY_WIRE_ACL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/wire.h"

#define PARLEY_ACL_SIG_LEN 64
/* Largest grant statement and key blob (crypto/groupkey.h:
 * PARLEY_GRANT_MAX_LEN and PARLEY_GROUPKEY_BLOB_MAX for 255-byte topics;
 * test_acl_wire checks they agree). */
#define PARLEY_ACL_GRANT_MAX (151u + 255u)
#define PARLEY_ACL_BLOB_MAX (214u + 255u)
/* Most blobs in one KEYS (the index keeps two per member) and most members
 * in one MEMBERS (16384 keys = 512 KiB, inside the default frame size). */
#define PARLEY_ACL_MAX_KEYS 8u
#define PARLEY_ACL_MAX_MEMBERS 16384u

/* ACL_EVENT kinds: the grant actions of groupkey.h, and KEY. */
#define PARLEY_ACL_EV_CREATE 1 /* the topic became private; member = owner */
#define PARLEY_ACL_EV_ADD 2    /* member joined */
#define PARLEY_ACL_EV_REVOKE 3 /* member left; epoch = the new epoch */
#define PARLEY_ACL_EV_ROTATE 4 /* new epoch, same members; member = owner */
#define PARLEY_ACL_EV_KEY 5    /* a key blob for member at epoch is stored */

/* The owner signs KEY_PUT with Ed25519 over this label, with its NUL,
 * followed by the blob.  (Equal to PARLEY_REG_KEY_PUT_LABEL in
 * index/registry.h, which checks it.) */
#define PARLEY_ACL_KEY_PUT_LABEL "parley-key-put-v1"
#define PARLEY_ACL_KEY_PUT_SIGNED_MAX                                         \
  (sizeof PARLEY_ACL_KEY_PUT_LABEL + PARLEY_ACL_BLOB_MAX)

struct parley_acl_topic_ctl {
  uint32_t req;
  const uint8_t *grant; /* parley_groupkey_grant_encode output */
  size_t grant_len;
};

struct parley_acl_key_put {
  uint32_t req;
  const uint8_t *blob; /* parley_groupkey_blob_encode output */
  size_t blob_len;
  const uint8_t *sig; /* 64: owner's signature, see the label above */
};

struct parley_acl_key_get {
  uint32_t req;
  struct parley_str topic;
  uint32_t min_epoch; /* blobs of epochs below this are not wanted */
};

struct parley_acl_blob {
  const uint8_t *ptr;
  size_t len;
};

struct parley_acl_keys {
  uint32_t req;
  struct parley_str topic;
  uint32_t epoch; /* the topic's current epoch (>= 1) */
  uint8_t count;
  struct parley_acl_blob keys[PARLEY_ACL_MAX_KEYS]; /* ascending epoch */
};

struct parley_acl_members_get {
  uint32_t req;
  struct parley_str topic;
};

struct parley_acl_members {
  uint32_t req;
  struct parley_str topic;
  const uint8_t *owner; /* 32 */
  uint32_t epoch;
  uint64_t counter; /* of the last grant applied: lets members spot a
                       rollback */
  uint32_t count;
  const uint8_t *members; /* count x 32 bytes, strictly ascending */
};

struct parley_acl_event {
  struct parley_str topic;
  uint8_t kind;          /* PARLEY_ACL_EV_* */
  const uint8_t *member; /* 32 */
  uint32_t epoch;
};

/* Each encoder writes the payload (no frame header) into buf.  PARLEY_EINVAL
 * for a value the decoder would refuse; PARLEY_ETOOBIG when cap is short
 * (*written is then the size needed; buf may be NULL to measure) or a
 * length is over its cap.  OUT: *written.  Each decoder decodes a whole
 * payload into *out (zeroed first, and zeroed again on error);
 * PARLEY_EPROTO for anything malformed. */
PARLEY_NODISCARD int parley_acl_topic_ctl_encode(
    const struct parley_acl_topic_ctl *m, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_acl_topic_ctl_decode(
    const uint8_t *buf, size_t len, struct parley_acl_topic_ctl *out)
    PARLEY_NONNULL(3);

PARLEY_NODISCARD int parley_acl_key_put_encode(
    const struct parley_acl_key_put *m, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_acl_key_put_decode(const uint8_t *buf, size_t len,
                                               struct parley_acl_key_put *out)
    PARLEY_NONNULL(3);

PARLEY_NODISCARD int parley_acl_key_get_encode(
    const struct parley_acl_key_get *m, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_acl_key_get_decode(const uint8_t *buf, size_t len,
                                               struct parley_acl_key_get *out)
    PARLEY_NONNULL(3);

PARLEY_NODISCARD int parley_acl_keys_encode(const struct parley_acl_keys *m,
                                            uint8_t *buf, size_t cap,
                                            size_t *written)
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_acl_keys_decode(const uint8_t *buf, size_t len,
                                            struct parley_acl_keys *out)
    PARLEY_NONNULL(3);

PARLEY_NODISCARD int parley_acl_members_get_encode(
    const struct parley_acl_members_get *m, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_acl_members_get_decode(
    const uint8_t *buf, size_t len, struct parley_acl_members_get *out)
    PARLEY_NONNULL(3);

PARLEY_NODISCARD int parley_acl_members_encode(
    const struct parley_acl_members *m, uint8_t *buf, size_t cap,
    size_t *written) PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_acl_members_decode(const uint8_t *buf, size_t len,
                                               struct parley_acl_members *out)
    PARLEY_NONNULL(3);

PARLEY_NODISCARD int parley_acl_event_encode(const struct parley_acl_event *m,
                                             uint8_t *buf, size_t cap,
                                             size_t *written)
    PARLEY_NONNULL(1, 4);
PARLEY_NODISCARD int parley_acl_event_decode(const uint8_t *buf, size_t len,
                                             struct parley_acl_event *out)
    PARLEY_NONNULL(3);

/* Writes what the owner signs for a KEY_PUT: PARLEY_ACL_KEY_PUT_LABEL with
 * its NUL, then the blob (1..PARLEY_ACL_BLOB_MAX bytes, else
 * PARLEY_EINVAL).  PARLEY_ETOOBIG if cap is short.  OUT: *written.  Sign
 * it with parley_identity_sign. */
PARLEY_NODISCARD int parley_acl_key_put_signed_data(const uint8_t *blob,
                                                    size_t len, uint8_t *buf,
                                                    size_t cap,
                                                    size_t *written)
    PARLEY_NONNULL(3, 5);

#endif
