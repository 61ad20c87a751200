/*
 * safety.c — iterated BLAKE2b fingerprints rendered as decimal groups (see
 * safety.h for the exact derivation).
 */
#include "crypto/safety.h"

#include <sodium.h>
#include <string.h>

static const char SAFETY_LABEL[] = "parley-safety-v1"; /* hashed with NUL */

#define DIGEST_LEN crypto_generichash_BYTES_MAX /* 64: BLAKE2b-512 */
#define GROUPS 6u

/* The 30 fingerprint digits of pk (no spaces) into out[0..30). */
static void fingerprint_digits(const uint8_t pk[32], char out[GROUPS * 5]) {
  uint8_t d[DIGEST_LEN];
  crypto_generichash_state st;

  crypto_generichash_init(&st, NULL, 0, sizeof d);
  crypto_generichash_update(&st, (const uint8_t *)SAFETY_LABEL,
                            sizeof SAFETY_LABEL);
  crypto_generichash_update(&st, pk, 32);
  crypto_generichash_final(&st, d, sizeof d);
  for (unsigned i = 0; i < PARLEY_SAFETY_ITERATIONS; i++) {
    crypto_generichash_init(&st, NULL, 0, sizeof d);
    crypto_generichash_update(&st, d, sizeof d);
    crypto_generichash_update(&st, pk, 32);
    crypto_generichash_final(&st, d, sizeof d);
  }
  for (unsigned g = 0; g < GROUPS; g++) {
    uint64_t v = 0;
    for (unsigned j = 0; j < 5; j++)
      v = v << 8 | d[5 * g + j];
    v %= 100000;
    for (int j = 4; j >= 0; j--) {
      out[5 * g + (unsigned)j] = (char)('0' + v % 10);
      v /= 10;
    }
  }
}

/* Writes n digits as groups of 5 separated by spaces, NUL-terminated. */
static void group_digits(const char *digits, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (i && i % 5 == 0)
      out[o++] = ' ';
    out[o++] = digits[i];
  }
  out[o] = '\0';
}

void parley_safety_fingerprint(const uint8_t pk[32],
                               char out[PARLEY_FINGERPRINT_TEXT_LEN + 1]) {
  char digits[GROUPS * 5];
  fingerprint_digits(pk, digits);
  group_digits(digits, sizeof digits, out);
}

void parley_safety_number(const uint8_t a[32], const uint8_t b[32],
                          char out[PARLEY_SAFETY_TEXT_LEN + 1]) {
  char digits[2 * GROUPS * 5];
  const uint8_t *lo = a, *hi = b;
  if (memcmp(a, b, 32) > 0) {
    lo = b;
    hi = a;
  }
  fingerprint_digits(lo, digits);
  fingerprint_digits(hi, digits + GROUPS * 5);
  group_digits(digits, sizeof digits, out);
}

/* Next digit of s at or after *i, skipping separators.  Returns the digit,
 * '\0' at the end, or '?' for any other character. */
static char next_digit(const char *s, size_t *i) {
  while (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '-')
    (*i)++;
  char c = s[*i];
  if (c == '\0')
    return '\0';
  (*i)++;
  return (c >= '0' && c <= '9') ? c : '?';
}

int parley_safety_equal(const char *typed, const char *computed) {
  size_t i = 0, j = 0;
  for (;;) {
    char a = next_digit(typed, &i), b = next_digit(computed, &j);
    if (a == '?' || b == '?' || a != b)
      return 0;
    if (a == '\0')
      return 1;
  }
}

int parley_safety_check_pinned(const uint8_t pinned_pk[32],
                               const uint8_t presented_pk[32]) {
  return sodium_memcmp(pinned_pk, presented_pk, 32) == 0 ? PARLEY_OK
                                                         : PARLEY_EAUTH;
}
