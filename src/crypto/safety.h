/*
 * safety.h — safety numbers and key fingerprints that people compare out
 * of band (`parley verify PEER_ID`), and the check behind `parley trust`.
 *
 * Fingerprint of one Ed25519 public key (30 digits):
 *   d = BLAKE2b-512("parley-safety-v1\0" || pk)
 *   repeat 5200 times: d = BLAKE2b-512(d || pk)
 *   for i in 0..5: v = big-endian 40-bit integer of d[5i, 5i+5);
 *                  digits = v mod 100000, zero-padded to 5
 * shown as 6 groups of 5 digits separated by single spaces.
 *
 * Safety number of two keys A and B (60 digits): the fingerprint of the
 * lexicographically smaller key (memcmp of the 32 bytes) followed by that
 * of the other, shown as 12 groups of 5.  Both sides compute the same
 * number; it changes if either key changes.  The iteration makes a search
 * for a key whose number collides with a given one about 2^12 times
 * costlier per try (Signal's choice of 5200).  Each half keeps ~99.7 bits
 * (6 x log2(100000)).
 *
 * Pure; no allocation.  parley_crypto_init() must have been called.
 */
#ifndef PARLEY_CRYPTO_SAFETY_H
#define PARLEY_CRYPTO_SAFETY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PARLEY_SAFETY_ITERATIONS 5200u
/* "ddddd ddddd ddddd ddddd ddddd ddddd": 6 groups. */
#define PARLEY_FINGERPRINT_TEXT_LEN 35u
/* 12 groups of 5 digits and 11 spaces. */
#define PARLEY_SAFETY_TEXT_LEN 71u

/* Writes the fingerprint of pk, NUL-terminated, into out. */
void parley_safety_fingerprint(const uint8_t pk[32],
                               char out[PARLEY_FINGERPRINT_TEXT_LEN + 1])
    PARLEY_NONNULL(1, 2);

/* Writes the safety number of the pair (a, b), NUL-terminated, into out.
 * Symmetric: (a, b) and (b, a) give the same text. */
void parley_safety_number(const uint8_t a[32], const uint8_t b[32],
                          char out[PARLEY_SAFETY_TEXT_LEN + 1])
    PARLEY_NONNULL(1, 2, 3);

/* Compares a safety number or fingerprint typed by a person with the
 * computed one, ignoring spaces, tabs and dashes.  1 if the digits are the
 * same, 0 otherwise (also for any character that is not a digit). */
int parley_safety_equal(const char *typed, const char *computed)
    PARLEY_NONNULL(1, 2);

/* The `parley trust` check: presented_pk is the key now claimed for a
 * contact whose key was pinned as pinned_pk.  PARLEY_OK if they are the
 * same, PARLEY_EAUTH (a changed key: refuse and tell the user loudly)
 * otherwise.  Since a peer id is its key, a change shows up as a different
 * id behind the same contact name or address. */
PARLEY_NODISCARD int parley_safety_check_pinned(const uint8_t pinned_pk[32],
                                                const uint8_t presented_pk[32])
    PARLEY_NONNULL(1, 2);

#endif
