/*
 * dm.c — end-to-end direct messages on top of crypto/e2e.h: the sender
 * seals the body to the recipient's key (and to its own, so that it can
 * read its history back), the receiver opens it, checks that the seq and
 * ts it proves are the frame's, and keeps a replay window per (sender,
 * channel) in its store.  docs/internals/E2E.md, "Integration", explains
 * the choices.
 *
 * What an envelope holds: one content byte (0 for text, PARLEY_MSG_BINARY
 * for a binary body; any other value is refused), then the user's body.
 * The content byte keeps "text or binary" inside the ciphertext, so the
 * MSG frame and the sender's store always say DIRECT | BINARY for a
 * direct message: its body, the envelope, is binary.
 */
#include "peer/node_int.h"

#include <sodium.h>
#include <string.h>

#include "core/alloc.h"
#include "crypto/e2e.h"

#define CONTENT_LEN 1u

size_t parley__dm_envelope_len(size_t len) {
  size_t out = 0;
  if (parley_e2e_sealed_len(len + CONTENT_LEN, PARLEY_E2E_SENDER_COPY, &out) <
      0)
    return 0;
  return out;
}

/* The recipient of a direct channel "@" + id. */
static int channel_peer(const char *channel, uint8_t pk[32]) {
  if (channel[0] != '@')
    return PARLEY_EINVAL;
  return parley_id_decode(channel + 1, pk) < 0 ? PARLEY_EINVAL : PARLEY_OK;
}

int parley__dm_seal(struct parley_node *n, const char *channel, uint64_t seq,
                    uint64_t ts_ms, const uint8_t *body, size_t len,
                    uint32_t flags, uint8_t **env, size_t *env_len) {
  uint8_t to[32], *pt, *out;
  size_t cap = 0;
  int rc;

  *env = NULL;
  *env_len = 0;
  if (channel_peer(channel, to) < 0)
    return PARLEY_EINVAL;
  rc = parley_e2e_sealed_len(len + CONTENT_LEN, PARLEY_E2E_SENDER_COPY, &cap);
  if (rc < 0)
    return rc;
  pt = parley_malloc(len + CONTENT_LEN);
  out = parley_malloc(cap);
  if (pt == NULL || out == NULL) {
    parley_free(pt);
    parley_free(out);
    return PARLEY_ENOMEM;
  }
  pt[0] = (uint8_t)(flags & PARLEY_MSG_BINARY);
  if (len > 0)
    memcpy(pt + CONTENT_LEN, body, len);
  rc = parley_e2e_seal(&n->id, to, channel, seq, ts_ms, pt, len + CONTENT_LEN,
                       PARLEY_E2E_SENDER_COPY, out, cap, env_len);
  sodium_memzero(pt, len + CONTENT_LEN);
  parley_free(pt);
  if (rc < 0) {
    parley_free(out);
    *env_len = 0;
    return rc;
  }
  *env = out;
  n->m.e2e_sealed++;
  return PARLEY_OK;
}

void parley__dm_free(uint8_t *buf, size_t len) {
  if (buf == NULL)
    return;
  sodium_memzero(buf, len);
  parley_free(buf);
}

/* Checks the content byte and the text of an opened plaintext. */
static int content_ok(const uint8_t *pt, size_t len, uint32_t *flags) {
  if (len < CONTENT_LEN || (pt[0] & ~PARLEY_MSG_BINARY) != 0)
    return PARLEY_EPROTO;
  *flags = PARLEY_MSG_DIRECT | (pt[0] & PARLEY_MSG_BINARY);
  if (!(pt[0] & PARLEY_MSG_BINARY) &&
      !parley_utf8_valid(pt + CONTENT_LEN, len - CONTENT_LEN))
    return PARLEY_EINVAL;
  return PARLEY_OK;
}

int parley__dm_open(struct parley_node *n, struct rpeer *p,
                    const struct parley_frame *f, const char *channel,
                    uint8_t **buf, size_t *buf_len, const uint8_t **body,
                    size_t *body_len, uint32_t *flags, int *order) {
  struct parley_e2e_meta meta;
  struct parley_replay w;
  size_t cap = parley_e2e_open_cap(f->u.msg.body_len);
  uint8_t *out;
  int rc;

  *buf = NULL;
  *buf_len = 0;
  if (cap == 0)
    return PARLEY_ECRYPTO; /* too short to be an envelope */
  out = parley_malloc(cap);
  if (out == NULL)
    return PARLEY_ENOMEM;
  memset(&meta, 0, sizeof meta);
  /* The sender is the link's authenticated key (on_msg checked that the
   * frame's publisher is it), the channel ours. */
  rc = parley_e2e_open(&n->id, p->pk, channel, f->u.msg.body,
                       f->u.msg.body_len, out, cap, &meta);
  if (rc == PARLEY_EPROTO || rc == PARLEY_EVERSION)
    rc = PARLEY_ECRYPTO; /* not an envelope at all: same answer */
  /* What the frame says must be what the sender signed. */
  if (rc == PARLEY_OK &&
      (meta.seq != f->u.msg.seq || meta.ts_ms != f->u.msg.ts_ms))
    rc = PARLEY_ECRYPTO;
  if (rc == PARLEY_OK)
    rc = content_ok(out, meta.len, flags);
  if (rc == PARLEY_OK && meta.len - CONTENT_LEN > n->cfg.max_message)
    rc = PARLEY_ETOOBIG;
  if (rc == PARLEY_OK) {
    memset(&w, 0, sizeof w);
    rc = parley_store_replay_get(n->store, p->pk, channel, &w.top, &w.seen);
    if (rc == PARLEY_OK) {
      rc = parley_replay_check(&w, meta.seq, order);
      if (rc == PARLEY_ERANGE) {
        /* Older than the window: the store's (publisher, channel, seq)
         * uniqueness decides whether it is new. */
        *order = PARLEY_REPLAY_LATE;
        rc = PARLEY_OK;
      } else if (rc == PARLEY_EINVAL) {
        rc = PARLEY_ECRYPTO; /* seq 0 is never sealed by a peer */
      }
    }
  }
  if (rc < 0) {
    parley__dm_free(out, cap);
    return rc;
  }
  n->m.e2e_opened++;
  *buf = out;
  *buf_len = cap;
  *body = out + CONTENT_LEN;
  *body_len = meta.len - CONTENT_LEN;
  return PARLEY_OK;
}

int parley__dm_accept(struct parley_node *n, const uint8_t publisher[32],
                      const char *channel, uint64_t seq) {
  struct parley_replay w;
  int order = 0, rc;

  memset(&w, 0, sizeof w);
  rc = parley_store_replay_get(n->store, publisher, channel, &w.top, &w.seen);
  if (rc < 0)
    return rc;
  rc = parley_replay_accept(&w, seq, &order);
  if (rc == PARLEY_ERANGE || rc == PARLEY_EEXIST)
    return PARLEY_OK; /* older than the window: nothing to record */
  if (rc < 0)
    return rc;
  return parley_store_replay_put(n->store, publisher, channel, w.top, w.seen);
}

int parley__dm_read_sent(struct parley_node *n, const struct parley_msg *m,
                         struct parley_msg *out, uint8_t **buf,
                         size_t *buf_len) {
  struct parley_e2e_envelope env;
  struct parley_e2e_meta meta;
  char channel[CHANNEL_MAX];
  uint8_t to[32], *pt;
  uint32_t flags = 0;
  size_t cap;
  int rc;

  *buf = NULL;
  *buf_len = 0;
  if (!m->outgoing || !(m->flags & PARLEY_MSG_DIRECT) ||
      !(m->flags & PARLEY_MSG_BINARY) || m->channel_len >= CHANNEL_MAX ||
      memcmp(m->publisher, n->id.pk, 32) != 0)
    return 0;
  memcpy(channel, m->channel, m->channel_len);
  channel[m->channel_len] = '\0';
  if (channel_peer(channel, to) < 0 ||
      parley_e2e_decode(m->body, m->body_len, &env) < 0 ||
      !(env.flags & PARLEY_E2E_SENDER_COPY))
    return 0; /* a binary direct message from before end-to-end sealing */
  cap = parley_e2e_open_cap(m->body_len);
  pt = cap ? parley_malloc(cap) : NULL;
  if (pt == NULL)
    return PARLEY_ENOMEM;
  rc = parley_e2e_open_sent(&n->id, to, channel, m->body, m->body_len, pt,
                            cap, &meta);
  if (rc == PARLEY_OK && (meta.seq != m->seq || (int64_t)meta.ts_ms != m->ts_ms))
    rc = PARLEY_ECRYPTO;
  if (rc == PARLEY_OK)
    rc = content_ok(pt, meta.len, &flags);
  if (rc < 0) {
    parley__dm_free(pt, cap);
    return rc;
  }
  *out = *m;
  out->body = pt + CONTENT_LEN;
  out->body_len = meta.len - CONTENT_LEN;
  out->flags = flags;
  *buf = pt;
  *buf_len = cap;
  return 1;
}
