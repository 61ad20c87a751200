/*
 * handshake.c — Noise XX bound to Ed25519 identities.
 *
 * The Noise static key of each side is the X25519 form of its Ed25519
 * identity.  Noise alone proves that the peer holds the X25519 secret; the
 * payload of messages 2 and 3 adds the Ed25519 key and a signature
 *
 *   sig = Ed25519-Sign(sk, "parley-hs-sig" || h)
 *
 * where h is the handshake hash after the message's tokens (so it already
 * covers the prologue, both ephemerals, the sender's encrypted static key
 * and, in message 3, everything of message 2) and before the payload.  The
 * reader checks the signature against the same h, that the Ed25519 key maps
 * to the static key Noise authenticated, and, when one was set, that it is
 * the expected key.
 */
#include "crypto/handshake.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "crypto/noise_int.h"

#define PROLOGUE "parley/1"
#define SIG_CONTEXT "parley-hs-sig"
#define SIG_CONTEXT_LEN (sizeof(SIG_CONTEXT) - 1)
#define AUTH_PAYLOAD_LEN (32 + 64 + 1) /* Ed25519 pk || signature || aeads */
/* A payload without the AEAD byte (an implementation from before it):
 * ChaCha20-Poly1305 only. */
#define AUTH_PAYLOAD_OLD_LEN (32 + 64)
/* Largest handshake message accepted; the same value as wire.h's
 * PARLEY_WIRE_MAX_HS (not included here: crypto needs only the number). */
#define HS_MAX_MSG 1024

/* Largest message we send (message 2) must fit the wire's handshake cap. */
static_assert(PARLEY_NOISE_DHLEN * 2 + PARLEY_NOISE_TAGLEN + AUTH_PAYLOAD_LEN +
                      PARLEY_NOISE_TAGLEN <=
                  HS_MAX_MSG,
              "handshake message exceeds the wire's handshake cap");
static_assert(crypto_sign_PUBLICKEYBYTES == 32 && crypto_sign_BYTES == 64,
              "Ed25519 sizes");

static void sig_message(uint8_t m[SIG_CONTEXT_LEN + PARLEY_NOISE_HASHLEN],
                        const uint8_t h[PARLEY_NOISE_HASHLEN]) {
  memcpy(m, SIG_CONTEXT, SIG_CONTEXT_LEN);
  memcpy(m + SIG_CONTEXT_LEN, h, PARLEY_NOISE_HASHLEN);
}

static int empty_payload_cb(void *ctx, const uint8_t h[PARLEY_NOISE_HASHLEN],
                            uint8_t *payload, size_t cap, size_t *plen) {
  (void)ctx;
  (void)h;
  (void)payload;
  (void)cap;
  *plen = 0;
  return PARLEY_OK;
}

struct signer {
  const struct parley_identity *id;
  uint8_t aeads; /* PARLEY_HS_AEAD_* we can run */
};

static int auth_payload_cb(void *ctx, const uint8_t h[PARLEY_NOISE_HASHLEN],
                           uint8_t *payload, size_t cap, size_t *plen) {
  const struct signer *s = ctx;
  uint8_t m[SIG_CONTEXT_LEN + PARLEY_NOISE_HASHLEN];
  if (cap < AUTH_PAYLOAD_LEN)
    return PARLEY_ETOOBIG;
  sig_message(m, h);
  memcpy(payload, s->id->pk, 32);
  parley_identity_sign(s->id, m, sizeof m, payload + 32);
  payload[96] = s->aeads;
  *plen = AUTH_PAYLOAD_LEN;
  return PARLEY_OK;
}

/* Checks the peer's identity proof (pk || sig) against h. */
static int check_identity(const struct parley_handshake *hs,
                          const uint8_t payload[AUTH_PAYLOAD_LEN],
                          const uint8_t h[PARLEY_NOISE_HASHLEN]) {
  const uint8_t *ed_pk = payload, *sig = payload + 32;
  uint8_t m[SIG_CONTEXT_LEN + PARLEY_NOISE_HASHLEN];
  uint8_t x_pk[32];

  sig_message(m, h);
  if (parley_sig_verify(ed_pk, m, sizeof m, sig) < 0)
    return PARLEY_EAUTH;
  if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0)
    return PARLEY_EAUTH;
  if (sodium_memcmp(x_pk, parley_noise_remote_static(&hs->noise),
                    sizeof x_pk) != 0)
    return PARLEY_EAUTH;
  if (hs->has_expect && sodium_memcmp(ed_pk, hs->expect, 32) != 0)
    return PARLEY_EAUTH;
  return PARLEY_OK;
}

static int fail(struct parley_handshake *hs, int rc) {
  parley__noise_abort(&hs->noise);
  hs->has_remote = 0;
  sodium_memzero(hs->remote_pk, sizeof hs->remote_pk);
  return rc;
}

int parley_handshake_init(struct parley_handshake *hs, int initiator,
                          const struct parley_identity *id,
                          const uint8_t *expected_remote) {
  sodium_memzero(hs, sizeof *hs);
  hs->id = id;
  if (expected_remote) {
    memcpy(hs->expect, expected_remote, sizeof hs->expect);
    hs->has_expect = 1;
  }
  /* The identity keeps its X25519 public key: no base-point
   * multiplication per handshake. */
  int rc = parley_noise_init_keys(&hs->noise, initiator, id->x_sk, id->x_pk,
                                  (const uint8_t *)PROLOGUE,
                                  sizeof(PROLOGUE) - 1);
  if (rc < 0)
    return fail(hs, rc);
  hs->aeads = parley_session_aesgcm_available() ? PARLEY_HS_AEAD_AESGCM : 0;
  return PARLEY_OK;
}

void parley_handshake_set_aeads(struct parley_handshake *hs, uint8_t aeads) {
  hs->aeads = aeads & PARLEY_HS_AEAD_AESGCM;
  if (!parley_session_aesgcm_available())
    hs->aeads = 0;
}

int parley_handshake_wants_write(const struct parley_handshake *hs) {
  const struct parley_noise *n = &hs->noise;
  if (n->step < 0 || n->step > 2)
    return 0;
  return (n->step % 2 == 0) == (n->initiator != 0);
}

int parley_handshake_write(struct parley_handshake *hs, uint8_t *out,
                           size_t cap, size_t *out_len) {
  *out_len = 0;
  if (hs->id == NULL || !parley_handshake_wants_write(hs))
    return PARLEY_EPROTO;
  /* Message 1 is empty; messages 2 and 3 carry our identity proof. */
  struct signer s = {hs->id, hs->aeads};
  int rc = parley__noise_write_cb(
      &hs->noise, hs->noise.step == 0 ? empty_payload_cb : auth_payload_cb, &s,
      out, cap, out_len);
  if (rc < 0 && hs->noise.step == PARLEY__NOISE_FAILED)
    return fail(hs, rc);
  return rc;
}

int parley_handshake_read(struct parley_handshake *hs, const uint8_t *msg,
                          size_t len) {
  if (hs->id == NULL || hs->noise.step < 0 || hs->noise.step > 2 ||
      parley_handshake_wants_write(hs))
    return PARLEY_EPROTO;
  if (len > HS_MAX_MSG)
    return fail(hs, PARLEY_EPROTO);

  int step = hs->noise.step;
  uint8_t payload[AUTH_PAYLOAD_LEN];
  uint8_t h[PARLEY_NOISE_HASHLEN];
  size_t plen = 0;
  int rc = parley__noise_read_h(&hs->noise, msg, len, payload, sizeof payload,
                                &plen, h);
  if (rc == PARLEY_ETOOBIG)
    rc = PARLEY_EPROTO; /* payload longer than any valid one */
  if (rc < 0)
    return fail(hs, rc);

  if (step == 0) {
    /* Message 1 carries no payload: nothing is authenticated yet. */
    rc = plen == 0 ? PARLEY_OK : PARLEY_EPROTO;
  } else if ((plen != AUTH_PAYLOAD_LEN && plen != AUTH_PAYLOAD_OLD_LEN) ||
             (plen == AUTH_PAYLOAD_LEN &&
              (payload[96] & ~PARLEY_HS_AEAD_AESGCM) != 0)) {
    rc = PARLEY_EPROTO; /* a wrong length, or an AEAD bit we do not know */
  } else if ((rc = check_identity(hs, payload, h)) == PARLEY_OK) {
    memcpy(hs->remote_pk, payload, sizeof hs->remote_pk);
    hs->remote_aeads = plen == AUTH_PAYLOAD_LEN ? payload[96] : 0;
    hs->has_remote = 1;
  }
  sodium_memzero(h, sizeof h);
  if (rc < 0)
    return fail(hs, rc);
  return PARLEY_OK;
}

int parley_handshake_done(const struct parley_handshake *hs) {
  return parley_noise_done(&hs->noise) && hs->has_remote;
}

int parley_handshake_finish(struct parley_handshake *hs,
                            struct parley_session *out, uint8_t remote_pk[32]) {
  if (!parley_handshake_done(hs))
    return PARLEY_EPROTO;
  uint8_t tx[PARLEY_NOISE_KEYLEN], rx[PARLEY_NOISE_KEYLEN];
  int rc = parley_noise_split(&hs->noise, tx, rx);
  if (rc < 0)
    return fail(hs, rc);
  /* Both sides saw both AEAD bytes (each inside a payload the handshake
   * authenticated), so both choose the same. */
  rc = parley_session_init_aead(out, tx, rx,
                                (hs->aeads & hs->remote_aeads &
                                 PARLEY_HS_AEAD_AESGCM)
                                    ? PARLEY_SESSION_AESGCM
                                    : PARLEY_SESSION_CHACHA);
  if (rc < 0) {
    sodium_memzero(tx, sizeof tx);
    sodium_memzero(rx, sizeof rx);
    return fail(hs, rc);
  }
  memcpy(remote_pk, hs->remote_pk, 32);
  sodium_memzero(tx, sizeof tx);
  sodium_memzero(rx, sizeof rx);
  parley_handshake_wipe(hs);
  return PARLEY_OK;
}

void parley_handshake_wipe(struct parley_handshake *hs) {
  sodium_memzero(hs, sizeof *hs);
  hs->noise.step = PARLEY__NOISE_FAILED;
}
