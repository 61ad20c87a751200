/*
 * limits.h — every size cap in one place.  The PARLEY_MAX_* values are hard
 * ceilings of the protocol; the PARLEY_DEFAULT_* values are the defaults of
 * the matching run-time options (which may be lowered, never raised above the
 * ceiling).
 */
#ifndef PARLEY_CORE_LIMITS_H
#define PARLEY_CORE_LIMITS_H

/* Largest frame (type byte + payload) the codec accepts: 16 MiB. */
#define PARLEY_MAX_FRAME (16u * 1024u * 1024u)
#define PARLEY_DEFAULT_MAX_FRAME (1u * 1024u * 1024u + 4096u)
/* Largest AEAD record payload (plaintext) on a secure link. */
#define PARLEY_MAX_RECORD (PARLEY_MAX_FRAME + 64u)
/* Topic names: 1..255 bytes of printable ASCII, no spaces, not starting '@'. */
#define PARLEY_MAX_TOPIC 255u
#define PARLEY_DEFAULT_MAX_TOPIC 128u
/* Peer names (display only). */
#define PARLEY_MAX_NAME 64u
/* host:port text. */
#define PARLEY_MAX_ADDR 96u
/* Error frame text. */
#define PARLEY_MAX_ERRTEXT 256u
/* Message bodies. */
#define PARLEY_DEFAULT_MAX_MESSAGE (1u * 1024u * 1024u)
/* Number of live links a daemon keeps (peer + index + accepted). */
#define PARLEY_DEFAULT_MAX_LINKS 1024u
/* Subscriptions one peer may hold at the index. */
#define PARLEY_DEFAULT_MAX_SUBS 1024u
/* Pending outbox rows one publisher keeps. */
#define PARLEY_DEFAULT_MAX_OUTBOX 100000u
/* Entries in one list frame (subscribers, peers, topics). */
#define PARLEY_MAX_LIST 65535u
/* Unencrypted bytes a link buffers for sending before it pushes back. */
#define PARLEY_DEFAULT_MAX_SENDQ (64u * 1024u * 1024u)
/* Time a TCP link may take to finish its handshake. */
#define PARLEY_HANDSHAKE_TIMEOUT_MS 5000u
/* Largest HTTP request body the APIs accept. */
#define PARLEY_MAX_HTTP_BODY (2u * 1024u * 1024u)

#endif
