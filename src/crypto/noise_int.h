/*
 * noise_int.h — private hooks of noise.c for handshake.c.
 *
 * handshake.c signs the handshake hash h as it stands after a message's
 * tokens (e, ee, s, es / s, se) were processed and before the payload is
 * encrypted.  The public noise.h API processes a whole message at once, so
 * these two variants expose exactly that intermediate h:
 *
 *   - writing: the payload is produced by a callback that is given h;
 *   - reading: h before the payload is returned next to the payload.
 *
 * Any failure inside a message (other than a call out of turn or an output
 * buffer too small for the tokens) aborts the handshake: the state is wiped
 * and every later call returns PARLEY_EPROTO.
 */
#ifndef PARLEY_CRYPTO_NOISE_INT_H
#define PARLEY_CRYPTO_NOISE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "crypto/noise.h"

/* Value of parley_noise.step once the handshake was aborted. */
#define PARLEY__NOISE_FAILED (-1)

/* Fills payload[0..cap) with the payload to send and sets *plen.  h is the
 * handshake hash before the payload (borrowed for the call).  A negative
 * return aborts the handshake and is passed through. */
typedef int (*parley__noise_payload_cb)(void *ctx,
                                        const uint8_t h[PARLEY_NOISE_HASHLEN],
                                        uint8_t *payload, size_t cap,
                                        size_t *plen);

/* parley_noise_write with a payload computed by cb.  PARLEY_ETOOBIG if out
 * cannot hold the tokens and an empty payload (state unchanged). */
PARLEY_NODISCARD int
parley__noise_write_cb(struct parley_noise *n, parley__noise_payload_cb cb,
                       void *ctx, uint8_t *out, size_t cap, size_t *out_len)
    PARLEY_NONNULL(1, 2, 4, 6);

/* parley_noise_read that also reports, through h_before, the handshake hash
 * after the tokens and before the payload was decrypted. */
PARLEY_NODISCARD int
parley__noise_read_h(struct parley_noise *n, const uint8_t *msg, size_t len,
                     uint8_t *payload, size_t cap, size_t *plen,
                     uint8_t h_before[PARLEY_NOISE_HASHLEN])
    PARLEY_NONNULL(1, 4, 6, 7);

/* Aborts the handshake (wipes it, marks it failed). */
void parley__noise_abort(struct parley_noise *n) PARLEY_NONNULL(1);

#endif
