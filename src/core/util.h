/*
 * util.h — small checked helpers: number parsing, host:port parsing, clocks,
 * text encodings of keys (base32 peer ids, hex), and durations.
 */
#ifndef PARLEY_CORE_UTIL_H
#define PARLEY_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Length of a peer id in text: base32 (RFC 4648 alphabet, lower case, no
 * padding) of the 32-byte Ed25519 public key. */
#define PARLEY_ID_TEXT_LEN 52
#define PARLEY_KEY_LEN 32

/* Parses a whole decimal string into [min, max].  PARLEY_EINVAL if it is not
 * a number, PARLEY_ERANGE if outside. */
PARLEY_NODISCARD int parley_parse_u64(const char *s, uint64_t min,
                                      uint64_t max, uint64_t *out)
    PARLEY_NONNULL(1, 4);

/* Splits "HOST:PORT" (IPv4, name, or [IPv6]:PORT).  host is written
 * NUL-terminated into a buffer of hostcap bytes. */
PARLEY_NODISCARD int parley_parse_hostport(const char *s, char *host,
                                           size_t hostcap, uint16_t *port)
    PARLEY_NONNULL(1, 2, 4);

/* Formats host and port as "HOST:PORT" ("[HOST]:PORT" when host contains
 * ':').  PARLEY_ETOOBIG if it does not fit in cap bytes. */
PARLEY_NODISCARD int parley_format_hostport(char *out, size_t cap,
                                            const char *host, unsigned port)
    PARLEY_NONNULL(1, 3);

/* Parses a duration such as "10m", "2h", "30s", "500ms", "1d" into ms. */
PARLEY_NODISCARD int parley_parse_duration_ms(const char *s, uint64_t *out)
    PARLEY_NONNULL(1, 2);

/* Parses RFC 3339 ("2026-11-24T10:00:00Z", "...+01:00", fractional seconds
 * allowed) into Unix milliseconds. */
PARLEY_NODISCARD int parley_parse_rfc3339_ms(const char *s, int64_t *out)
    PARLEY_NONNULL(1, 2);

/* Formats Unix ms as RFC 3339 UTC with milliseconds into out (>= 32 bytes). */
void parley_format_rfc3339(int64_t ms, char *out, size_t cap);

/* Wall clock (Unix ms) and a monotonic clock (ms). */
int64_t parley_now_ms(void);
uint64_t parley_mono_ms(void);

/* Peer id text <-> key.  out must hold PARLEY_ID_TEXT_LEN + 1 bytes. */
void parley_id_encode(const uint8_t key[PARLEY_KEY_LEN], char *out)
    PARLEY_NONNULL(1, 2);
PARLEY_NODISCARD int parley_id_decode(const char *text,
                                      uint8_t key[PARLEY_KEY_LEN])
    PARLEY_NONNULL(1, 2);

/* Lower-case hex; out must hold 2*n + 1 bytes. */
void parley_hex_encode(const uint8_t *in, size_t n, char *out);
PARLEY_NODISCARD int parley_hex_decode(const char *in, uint8_t *out,
                                       size_t n);

/* 1 if s[0..n) is valid UTF-8 without NUL bytes. */
int parley_utf8_valid(const uint8_t *s, size_t n);

/* 1 if the topic name is acceptable: 1..max_len bytes of printable ASCII
 * (0x21..0x7e), not starting with '@' (reserved for direct channels). */
int parley_topic_valid(const char *topic, size_t len, size_t max_len);

#endif
