/*
 * chain.c — message digests, the per-channel hash chain and its signed
 * checkpoints (contract and byte layouts in chain.h).
 */
#include "crypto/chain.h"

#include <sodium.h>
#include <string.h>

#include "crypto/identity.h"
#include "wire/wire.h"

#define LABEL_MSG "parley-msg-v1"
#define LABEL_CHAIN "parley-chain-v1"
#define LABEL_SIG "parley-chain-sig-v1"
#define LABEL_SIG_LEN (sizeof LABEL_SIG - 1)
/* Signature input: label, publisher, u8 len, channel, u64 seq, hash. */
#define SIG_INPUT_MAX                                                          \
  (LABEL_SIG_LEN + 32 + 1 + PARLEY_CHAIN_MAX_CHANNEL + 8 + PARLEY_CHAIN_HASH)

#define STORED_FLAGS (PARLEY_MSG_DIRECT | PARLEY_MSG_BINARY | PARLEY_MSG_PRIVATE)

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static int channel_ok(const char *channel, size_t len) {
  return len >= 1 && len <= PARLEY_CHAIN_MAX_CHANNEL && channel != NULL;
}

/* Digest of one message given its parts (publisher and channel checked by
 * the caller). */
static int digest_parts(const uint8_t publisher[32], const char *channel,
                        size_t channel_len, uint64_t seq, uint64_t ts_ms,
                        uint32_t flags, const uint8_t *body, size_t body_len,
                        uint8_t out[PARLEY_CHAIN_HASH]) {
  crypto_generichash_state st;
  uint8_t b8[8], b1;

  if (flags & ~(uint32_t)STORED_FLAGS)
    return PARLEY_EINVAL;
  if (body == NULL && body_len > 0)
    return PARLEY_EINVAL;
  crypto_generichash_init(&st, NULL, 0, PARLEY_CHAIN_HASH);
  crypto_generichash_update(&st, (const uint8_t *)LABEL_MSG,
                            sizeof LABEL_MSG - 1);
  crypto_generichash_update(&st, publisher, 32);
  b1 = (uint8_t)channel_len;
  crypto_generichash_update(&st, &b1, 1);
  crypto_generichash_update(&st, (const uint8_t *)channel, channel_len);
  put_be64(b8, seq);
  crypto_generichash_update(&st, b8, 8);
  put_be64(b8, ts_ms);
  crypto_generichash_update(&st, b8, 8);
  b1 = (uint8_t)flags;
  crypto_generichash_update(&st, &b1, 1);
  put_be64(b8, (uint64_t)body_len);
  crypto_generichash_update(&st, b8, 8);
  if (body_len > 0)
    crypto_generichash_update(&st, body, body_len);
  crypto_generichash_final(&st, out, PARLEY_CHAIN_HASH);
  return PARLEY_OK;
}

int parley_chain_digest(const struct parley_chain_msg *m,
                        uint8_t out[PARLEY_CHAIN_HASH]) {
  if (m->publisher == NULL || !channel_ok(m->channel, m->channel_len))
    return PARLEY_EINVAL;
  return digest_parts(m->publisher, m->channel, m->channel_len, m->seq,
                      m->ts_ms, m->flags, m->body, m->body_len, out);
}

void parley_chain_next(const uint8_t prev[PARLEY_CHAIN_HASH],
                       const uint8_t digest[PARLEY_CHAIN_HASH],
                       uint8_t out[PARLEY_CHAIN_HASH]) {
  crypto_generichash_state st;

  crypto_generichash_init(&st, NULL, 0, PARLEY_CHAIN_HASH);
  crypto_generichash_update(&st, (const uint8_t *)LABEL_CHAIN,
                            sizeof LABEL_CHAIN - 1);
  crypto_generichash_update(&st, prev, PARLEY_CHAIN_HASH);
  crypto_generichash_update(&st, digest, PARLEY_CHAIN_HASH);
  crypto_generichash_final(&st, out, PARLEY_CHAIN_HASH);
}

/* Writes the signature input; returns its length. */
static size_t sig_input(const uint8_t publisher[32], const char *channel,
                        size_t channel_len, uint64_t seq,
                        const uint8_t hash[PARLEY_CHAIN_HASH],
                        uint8_t buf[SIG_INPUT_MAX]) {
  size_t o = 0;

  memcpy(buf, LABEL_SIG, LABEL_SIG_LEN);
  o += LABEL_SIG_LEN;
  memcpy(buf + o, publisher, 32);
  o += 32;
  buf[o++] = (uint8_t)channel_len;
  memcpy(buf + o, channel, channel_len);
  o += channel_len;
  put_be64(buf + o, seq);
  o += 8;
  memcpy(buf + o, hash, PARLEY_CHAIN_HASH);
  return o + PARLEY_CHAIN_HASH;
}

int parley_chain_sign(const struct parley_identity *id, const char *channel,
                      size_t channel_len, uint64_t seq,
                      const uint8_t hash[PARLEY_CHAIN_HASH],
                      uint8_t sig[PARLEY_CHAIN_SIG]) {
  uint8_t buf[SIG_INPUT_MAX];
  size_t n;

  if (!channel_ok(channel, channel_len))
    return PARLEY_EINVAL;
  n = sig_input(id->pk, channel, channel_len, seq, hash, buf);
  parley_identity_sign(id, buf, n, sig);
  return PARLEY_OK;
}

int parley_chain_verify(const uint8_t publisher[32], const char *channel,
                        size_t channel_len, uint64_t seq,
                        const uint8_t hash[PARLEY_CHAIN_HASH],
                        const uint8_t sig[PARLEY_CHAIN_SIG]) {
  uint8_t buf[SIG_INPUT_MAX];
  size_t n;

  if (!channel_ok(channel, channel_len))
    return PARLEY_EINVAL;
  n = sig_input(publisher, channel, channel_len, seq, hash, buf);
  return parley_sig_verify(publisher, buf, n, sig) == PARLEY_OK
             ? PARLEY_OK
             : PARLEY_ECRYPTO;
}

int parley_chain_verify_run(const uint8_t publisher[32], const char *channel,
                            size_t channel_len,
                            const uint8_t prev[PARLEY_CHAIN_HASH],
                            const struct parley_chain_entry *e, size_t n,
                            uint64_t cp_seq,
                            const uint8_t cp_hash[PARLEY_CHAIN_HASH],
                            const uint8_t cp_sig[PARLEY_CHAIN_SIG],
                            uint8_t (*hashes)[PARLEY_CHAIN_HASH]) {
  uint8_t h[PARLEY_CHAIN_HASH], d[PARLEY_CHAIN_HASH];
  int rc;

  if (n == 0 || !channel_ok(channel, channel_len))
    return PARLEY_EINVAL;
  /* Contiguity first: it is cheap and names the relay's fault exactly. */
  if (e[0].seq == 0)
    return PARLEY_ECRYPTO;
  for (size_t i = 1; i < n; i++)
    if (e[i].seq != e[0].seq + i || e[i].seq < e[0].seq)
      return PARLEY_ECRYPTO;
  if (e[n - 1].seq != cp_seq)
    return PARLEY_ECRYPTO;
  memcpy(h, prev, sizeof h);
  for (size_t i = 0; i < n; i++) {
    if (e[i].digest != NULL) {
      memcpy(d, e[i].digest, sizeof d);
    } else {
      rc = digest_parts(publisher, channel, channel_len, e[i].seq,
                        e[i].ts_ms, e[i].flags, e[i].body, e[i].body_len, d);
      if (rc < 0)
        return rc;
    }
    parley_chain_next(h, d, h);
    if (hashes != NULL)
      memcpy(hashes[i], h, PARLEY_CHAIN_HASH);
  }
  if (sodium_memcmp(h, cp_hash, PARLEY_CHAIN_HASH) != 0)
    return PARLEY_ECRYPTO;
  return parley_chain_verify(publisher, channel, channel_len, cp_seq, cp_hash,
                             cp_sig);
}
