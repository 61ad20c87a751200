/*
 * auth.h — bearer JWTs for the index's HTTP API, their signing keys, and
 * an OAuth2 client-credentials token endpoint (RFC 6749 section 4.4).
 *
 * Tokens are compact JWS (RFC 7515) with alg HS256 and these claims:
 *   header  {"alg":"HS256","typ":"JWT","kid":KID}
 *   payload {"iss":ISSUER,"sub":SUBJECT,"role":"admin"|"viewer",
 *            "iat":T,"nbf":T,"exp":T+TTL,"jti":RANDOM}
 * (NumericDates in seconds, keys in this order, no whitespace).
 *
 * Verification is ours, not libjwt's: the token must be exactly three
 * base64url (unpadded, canonical) parts; the header must be a JSON object
 * with alg exactly "HS256", typ absent or "JWT", a kid, and nothing else;
 * the HMAC-SHA256 is checked with libsodium in constant time with the key
 * named by kid; then every claim is checked on every call: iss equals the
 * configured issuer, sub/role/jti/iat/nbf/exp are present and well typed,
 * exp is in the future, nbf and iat are not (both within the configured
 * leeway), and the role is at least the one required (admin > viewer).
 *
 * Signing keys come from one of two places:
 *   - file mode (cfg.cluster_key == NULL): 32-byte random keys kept in
 *     DIR/jwt-keys.json (mode 0600; a file readable by group or others, or
 *     owned by another user, is refused), created on first use.
 *     parley_auth_rotate adds a new current key; retired keys still verify
 *     until their grace period runs out.
 *   - cluster mode (cfg.cluster_key set): every node of an index cluster
 *     derives the same keys from one shared 32-byte secret with
 *     crypto_kdf_derive_from_key, one key per epoch of cfg.epoch_ms
 *     (kid "c<epoch>"), so tokens minted by any node verify on all of them
 *     and keys rotate by themselves; nothing is written to disk.
 *
 * OAuth2 clients (id, role, Argon2id hash of a random secret) live in
 * DIR/oauth-clients.json (mode 0600), or in memory when cfg.dir is NULL.
 *
 * All functions take the time as Unix milliseconds (parley_now_ms): token
 * times are wall-clock by nature.  Nothing here touches the network; the
 * only I/O is the two files.  Not thread-safe: one loop thread.
 */
#ifndef PARLEY_HTTP_AUTH_H
#define PARLEY_HTTP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"

struct parley_auth;
struct parley_rl;

enum parley_auth_role {
  PARLEY_AUTH_ROLE_NONE = 0, /* public: no token needed */
  PARLEY_AUTH_ROLE_VIEWER = 1,
  PARLEY_AUTH_ROLE_ADMIN = 2,
};

/* Why a token was refused (out-parameter of parley_auth_verify). */
#define PARLEY_AUTH_REASON_MAP(X)                                             \
  X(OK, "ok")                                                                 \
  X(MALFORMED, "malformed token")                                             \
  X(BAD_HEADER, "unsupported token header")                                   \
  X(BAD_ALG, "algorithm not allowed")                                         \
  X(UNKNOWN_KID, "unknown signing key")                                       \
  X(BAD_SIGNATURE, "bad signature")                                           \
  X(MISSING_CLAIM, "missing claim")                                           \
  X(BAD_CLAIM, "invalid claim")                                               \
  X(WRONG_ISSUER, "wrong issuer")                                             \
  X(EXPIRED, "token expired")                                                 \
  X(NOT_YET_VALID, "token not yet valid")                                     \
  X(WRONG_ROLE, "insufficient role")                                          \
  X(NO_TOKEN, "no bearer token")

enum parley_auth_reason {
#define PARLEY_AUTH_REASON_ENUM(name, text) PARLEY_AUTH_##name,
  PARLEY_AUTH_REASON_MAP(PARLEY_AUTH_REASON_ENUM)
#undef PARLEY_AUTH_REASON_ENUM
};

/* Sizes. */
#define PARLEY_AUTH_MAX_TOKEN 2048u   /* longest token accepted */
#define PARLEY_AUTH_TOKEN_CAP 1024u   /* room for any token we mint */
#define PARLEY_AUTH_MAX_SUBJECT 128u  /* sub: printable ASCII */
#define PARLEY_AUTH_MAX_ISSUER 128u
#define PARLEY_AUTH_MAX_KID 32u       /* [A-Za-z0-9_-] */
#define PARLEY_AUTH_MAX_JTI 64u       /* [A-Za-z0-9_-] */
#define PARLEY_AUTH_MAX_CLIENT_ID 64u /* [A-Za-z0-9._-] */
#define PARLEY_AUTH_MAX_KEYS 16u      /* current + retired keys in file mode */
#define PARLEY_AUTH_MAX_CLIENTS 1024u
/* Client secrets: 32 random bytes in unpadded base64url (43 chars). */
#define PARLEY_AUTH_SECRET_LEN 43u
#define PARLEY_AUTH_MAX_SECRET 256u   /* longest secret we try to check */
#define PARLEY_AUTH_MAX_FORM 4096u    /* longest token request body */
#define PARLEY_AUTH_MAX_FIELDS 16u    /* fields in one form body */

/* Defaults of struct parley_auth_config. */
#define PARLEY_AUTH_DEFAULT_ISSUER "parley-index"
#define PARLEY_AUTH_DEFAULT_MAX_TTL_MS (30ull * 24u * 3600u * 1000u)
#define PARLEY_AUTH_DEFAULT_OAUTH_TTL_MS (15u * 60u * 1000u)
#define PARLEY_AUTH_DEFAULT_EPOCH_MS (7ull * 24u * 3600u * 1000u)
#define PARLEY_AUTH_MAX_LEEWAY_S 30u

struct parley_auth_config {
  /* Directory of jwt-keys.json and oauth-clients.json (borrowed; must
   * exist).  NULL: no files; only valid with cluster_key, and then the
   * client registry lives in memory only. */
  const char *dir;
  /* 32-byte shared secret of the cluster (copied), or NULL for file mode. */
  const uint8_t *cluster_key;
  uint64_t epoch_ms;      /* cluster mode key lifetime; 0 = 7 days */
  const char *issuer;     /* iss of minted tokens and required on verify;
                             NULL = "parley-index" (copied) */
  uint32_t leeway_s;      /* clock skew allowed on exp/nbf/iat, 0..30 */
  uint64_t max_ttl_ms;    /* longest token parley_auth_mint makes;
                             0 = 30 days */
  uint64_t grace_ms;      /* how long a retired key still verifies;
                             0 = max_ttl_ms (rotation never cuts a
                             token's life short) */
  uint64_t oauth_ttl_ms;  /* life of tokens from the token endpoint;
                             0 = 15 min, at most max_ttl_ms */
  /* Argon2id cost of client secret hashes; 0 = libsodium's "interactive"
   * limits.  Tests lower them; a stored hash records its own cost, so
   * verification always uses the cost it was made with. */
  uint64_t pwhash_opslimit;
  size_t pwhash_memlimit;
  /* Randomness for keys, secrets and jti; NULL = randombytes_buf.
   * Tests inject a deterministic source. */
  void (*random)(void *ctx, void *buf, size_t n);
  void *random_ctx;
  const struct parley_log *log; /* borrowed, may be NULL */
};

/* Verified claims. */
struct parley_auth_claims {
  char sub[PARLEY_AUTH_MAX_SUBJECT + 1];
  char jti[PARLEY_AUTH_MAX_JTI + 1];
  char kid[PARLEY_AUTH_MAX_KID + 1];
  int role;                /* enum parley_auth_role */
  int64_t iat, nbf, exp;   /* seconds since the epoch */
};

/* ---- lifecycle ---------------------------------------------------------- */

/* Validates cfg and loads (or, in file mode, creates on first use) the
 * signing keys and the client registry; prunes retired keys whose grace
 * has passed as of now_ms.
 *   PARLEY_EINVAL   bad configuration;
 *   PARLEY_EAUTH    a key or client file is group/world accessible, not a
 *                   regular file, or owned by another user;
 *   PARLEY_ESYNTAX  a file does not parse or holds invalid entries;
 *   PARLEY_EIO, PARLEY_ENOMEM.
 * On failure a sentence is written to err (errcap bytes; may be NULL).
 * OUT: *out, caller frees with parley_auth_free. */
PARLEY_NODISCARD int parley_auth_new(const struct parley_auth_config *cfg,
                                     int64_t now_ms, struct parley_auth **out,
                                     char *err, size_t errcap)
    PARLEY_NONNULL(1, 3);
/* Wipes the keys and frees.  NULL is a no-op. */
void parley_auth_free(struct parley_auth *a);
/* Last error sentence of an operation on a (never NULL). */
const char *parley_auth_errmsg(const struct parley_auth *a) PARLEY_NONNULL(1);

/* Re-reads the files if another process (the CLI) changed them since they
 * were last read (compared by inode, size and mtime).  OUT: *changed = 1 if
 * anything was reloaded.  On failure the loaded state is kept.  Errors as
 * for parley_auth_new. */
PARLEY_NODISCARD int parley_auth_reload(struct parley_auth *a, int64_t now_ms,
                                        int *changed) PARLEY_NONNULL(1);

/* ---- keys --------------------------------------------------------------- */

/* File mode: makes a new random current key; the previous current key is
 * retired and verifies until now_ms + cfg.grace_ms.  Retired keys past
 * their grace are dropped; if more than PARLEY_AUTH_MAX_KEYS remain, the
 * oldest retired ones go.  Re-reads the file under an advisory lock first,
 * so concurrent rotations by two processes do not lose keys.
 * OUT: kid_out (if non-NULL, PARLEY_AUTH_MAX_KID + 1 bytes) = the new kid.
 * PARLEY_EINVAL in cluster mode (change the cluster key or wait for the
 * next epoch instead), PARLEY_EIO, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_auth_rotate(struct parley_auth *a, int64_t now_ms,
                                        char *kid_out) PARLEY_NONNULL(1);

/* File mode: drops every retired key now, so tokens signed with them stop
 * verifying at once (after a key leak: rotate, then revoke).
 * PARLEY_EINVAL in cluster mode, PARLEY_EIO, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_auth_revoke_retired(struct parley_auth *a)
    PARLEY_NONNULL(1);

/* Keys that verify at now_ms, current first.  kid (if non-NULL) gets key
 * i's kid (PARLEY_AUTH_MAX_KID + 1 bytes), *verify_until_ms 0 for the
 * current key, else when it stops verifying.  PARLEY_ENOTFOUND past the
 * end.  Key material is never exposed. */
size_t parley_auth_key_count(const struct parley_auth *a, int64_t now_ms)
    PARLEY_NONNULL(1);
PARLEY_NODISCARD int parley_auth_key_info(const struct parley_auth *a,
                                          int64_t now_ms, size_t i, char *kid,
                                          int64_t *verify_until_ms)
    PARLEY_NONNULL(1);

/* ---- tokens ------------------------------------------------------------- */

/* Mints a token for subject (1..PARLEY_AUTH_MAX_SUBJECT printable ASCII
 * bytes) with role (VIEWER or ADMIN), valid from now_ms for ttl_ms
 * (1000..cfg.max_ttl_ms; iat is rounded down and exp up to whole seconds,
 * so it lives at least ttl_ms), signed with the current key.  jti: 1..PARLEY_AUTH_MAX_JTI chars of [A-Za-z0-9_-], or
 * NULL for 16 random bytes in base64url.  The token is written NUL-
 * terminated to out (cap bytes; PARLEY_AUTH_TOKEN_CAP is always enough).
 * PARLEY_EINVAL, PARLEY_ETOOBIG, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_auth_mint(struct parley_auth *a, int role,
                                      uint64_t ttl_ms, const char *subject,
                                      const char *jti, int64_t now_ms,
                                      char *out, size_t cap)
    PARLEY_NONNULL(1, 4, 7);

/* Verifies token (len bytes, need not be NUL-terminated) as described
 * above, requiring at least required_role (NONE: any valid token).
 *   PARLEY_OK       valid; *claims (if non-NULL) filled;
 *   PARLEY_EAUTH    invalid (answer 401);
 *   PARLEY_EDENIED  valid but its role is too low (answer 403);
 *   PARLEY_EINTERNAL the HMAC could not be computed (never expected).
 * A JSON parser out of memory reads as MALFORMED: it fails closed.
 * OUT: *reason (if non-NULL) = the precise cause.  On failure *claims is
 * zeroed except after WRONG_ROLE, where it holds the token's claims. */
PARLEY_NODISCARD int parley_auth_verify(const struct parley_auth *a,
                                        const char *token, size_t len,
                                        int required_role, int64_t now_ms,
                                        struct parley_auth_claims *claims,
                                        int *reason) PARLEY_NONNULL(1, 2);

/* "ok", "malformed token", ...; never NULL. */
const char *parley_auth_reason_text(int reason);
/* "admin", "viewer", "none"; NULL for anything else. */
const char *parley_auth_role_name(int role);
/* "admin" -> ADMIN, "viewer" -> VIEWER (exact).  PARLEY_EINVAL otherwise. */
PARLEY_NODISCARD int parley_auth_role_parse(const char *s, int *role)
    PARLEY_NONNULL(1, 2);

/* What the header of a token says, without any check of its signature:
 * for diagnostics and the fuzzer.  PARLEY_EAUTH (with *reason) when the
 * header would be refused by parley_auth_verify. */
struct parley_auth_jwt_header {
  char kid[PARLEY_AUTH_MAX_KID + 1];
  int has_typ;
};
PARLEY_NODISCARD int parley_auth_jwt_header_parse(
    const char *token, size_t len, struct parley_auth_jwt_header *h,
    int *reason) PARLEY_NONNULL(1, 3);

/* ---- HTTP glue ---------------------------------------------------------- */

/* Finds the token in an Authorization header value: the scheme "Bearer"
 * (any case), one or more spaces, then a b64token (RFC 6750 2.1) and
 * optional trailing spaces.  OUT: *tok points into value (borrowed),
 * *len its length.  PARLEY_ENOTFOUND if value is NULL or another scheme,
 * PARLEY_ESYNTAX if the token part is empty or has bad characters. */
PARLEY_NODISCARD int parley_auth_bearer(const char *value, const char **tok,
                                        size_t *len) PARLEY_NONNULL(2, 3);

/* One row of a route table: method ("GET", ... or "*"), path (exact, or a
 * prefix when it ends in '*'), and the role it needs. */
struct parley_auth_route {
  const char *method;
  const char *path;
  int role;
};

/* The role needed for (method, path): the first matching row of table (n
 * rows); with no match, VIEWER for GET, HEAD and OPTIONS and ADMIN for
 * anything else, so a route left out of the table fails closed. */
int parley_auth_route_role(const struct parley_auth_route *table, size_t n,
                           const char *method, const char *path)
    PARLEY_NONNULL(3, 4);

/* The whole check of one request. */
struct parley_auth_decision {
  unsigned status;                 /* 200 (go on), 401 or 403 */
  int required_role;
  int reason;                      /* enum parley_auth_reason */
  struct parley_auth_claims claims; /* valid when status is 200 and
                                       required_role is not NONE */
  /* Value for a WWW-Authenticate header when status is 401 or 403
   * (RFC 6750 3: Bearer realm, error and error_description), else "". */
  char www_authenticate[320];
};

/* Looks up the role for (method, path) in table, then checks the
 * Authorization header value (may be NULL).  Public routes pass without a
 * token.  Returns PARLEY_OK when the request may go on, PARLEY_EAUTH (401)
 * or PARLEY_EDENIED (403), PARLEY_EINTERNAL (401 too); *d always filled. */
PARLEY_NODISCARD int parley_auth_check_request(
    const struct parley_auth *a, const struct parley_auth_route *table,
    size_t n, const char *method, const char *path, const char *authorization,
    int64_t now_ms, struct parley_auth_decision *d) PARLEY_NONNULL(1, 4, 5, 8);

/* ---- OAuth2 clients ----------------------------------------------------- */

struct parley_auth_client_info {
  char client_id[PARLEY_AUTH_MAX_CLIENT_ID + 1];
  int role;
  int64_t created_ms;
};

/* Registers client_id (1..PARLEY_AUTH_MAX_CLIENT_ID of [A-Za-z0-9._-]) with
 * role (VIEWER or ADMIN) and a new random secret, written NUL-terminated to
 * secret_out (PARLEY_AUTH_SECRET_LEN + 1 bytes): show it once, it is not
 * kept (only its Argon2id hash is).  Saved to the file before returning.
 * PARLEY_EINVAL, PARLEY_EEXIST, PARLEY_ELIMIT (PARLEY_AUTH_MAX_CLIENTS),
 * PARLEY_EIO, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_auth_client_add(struct parley_auth *a,
                                            const char *client_id, int role,
                                            int64_t now_ms, char *secret_out)
    PARLEY_NONNULL(1, 2, 5);
/* PARLEY_ENOTFOUND, PARLEY_EIO, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_auth_client_remove(struct parley_auth *a,
                                               const char *client_id)
    PARLEY_NONNULL(1, 2);
/* Clients in registration order.  PARLEY_ENOTFOUND past the end. */
size_t parley_auth_client_count(const struct parley_auth *a) PARLEY_NONNULL(1);
PARLEY_NODISCARD int parley_auth_client_get(
    const struct parley_auth *a, size_t i, struct parley_auth_client_info *out)
    PARLEY_NONNULL(1, 3);
/* Checks a client's secret (constant-time in the secret; an unknown id
 * costs an Argon2id run too, against a dummy hash made on first need).  OUT: *role.
 * PARLEY_EAUTH for an unknown id or a wrong secret, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_auth_client_check(struct parley_auth *a,
                                              const char *client_id,
                                              const char *secret, int *role)
    PARLEY_NONNULL(1, 2, 3, 4);

/* ---- the token endpoint ------------------------------------------------- */

/* An application/x-www-form-urlencoded body, decoded ('+' is a space, %XX
 * a byte; a %00 or a bad escape is a syntax error).  Empty pairs ("a&&b")
 * are skipped; a name without '=' has the value "".  Caller-allocated;
 * parley_auth_form_close frees (safe on a zeroed struct). */
struct parley_auth_form {
  size_t n;
  const char *name[PARLEY_AUTH_MAX_FIELDS];  /* point into buf */
  const char *value[PARLEY_AUTH_MAX_FIELDS];
  char *buf;
};
/* PARLEY_ESYNTAX (bad escape, NUL byte), PARLEY_ETOOBIG (len over
 * PARLEY_AUTH_MAX_FORM or more than PARLEY_AUTH_MAX_FIELDS fields),
 * PARLEY_ENOMEM.  On failure the form is empty. */
PARLEY_NODISCARD int parley_auth_form_parse(struct parley_auth_form *f,
                                            const char *body, size_t len)
    PARLEY_NONNULL(1);
void parley_auth_form_close(struct parley_auth_form *f) PARLEY_NONNULL(1);
/* The value of name.  OUT: *value (borrowed).  PARLEY_ENOTFOUND if absent,
 * PARLEY_EEXIST if it appears more than once. */
PARLEY_NODISCARD int parley_auth_form_get(const struct parley_auth_form *f,
                                          const char *name,
                                          const char **value)
    PARLEY_NONNULL(1, 2, 3);
/* Encodes s as a form value (unreserved bytes kept, ' ' as '+', the rest
 * %XX) into out (cap bytes, NUL-terminated).  PARLEY_ETOOBIG. */
PARLEY_NODISCARD int parley_auth_form_encode(const char *s, char *out,
                                             size_t cap) PARLEY_NONNULL(1, 2);

/* Decodes an HTTP Basic credentials header value ("Basic " base64 of
 * "id:secret", each form-urlencoded per RFC 6749 2.3.1).  id and secret
 * are written NUL-terminated (idcap, secretcap bytes).
 * PARLEY_ENOTFOUND (not Basic), PARLEY_ESYNTAX, PARLEY_ETOOBIG. */
PARLEY_NODISCARD int parley_auth_basic_parse(const char *value, char *id,
                                             size_t idcap, char *secret,
                                             size_t secretcap)
    PARLEY_NONNULL(1, 2, 4);

/* The answer of the token endpoint: pass status, content_type, body and
 * headers to parley_http_respond. */
struct parley_auth_token_response {
  unsigned status;        /* 200, 400, 401 or 429 */
  const char *content_type; /* "application/json;charset=UTF-8" */
  char *body;             /* JSON (RFC 6749 5.1 or 5.2); owned: close frees */
  size_t body_len;
  const char *headers[9]; /* NULL-terminated name/value pairs:
                             Cache-Control, Pragma, and WWW-Authenticate
                             (401) or Retry-After (429) */
  char retry_after[24];   /* storage for the Retry-After value */
  char client_id[PARLEY_AUTH_MAX_CLIENT_ID + 1]; /* who asked ("" if none) */
  int client_failed;      /* 1 if the client failed to authenticate */
};
void parley_auth_token_response_close(struct parley_auth_token_response *r)
    PARLEY_NONNULL(1);

/* Handles POST /oauth/token.  content_type and authorization are the
 * request's header values (NULL if absent; a content type other than
 * application/x-www-form-urlencoded is an invalid_request).  The body needs
 * grant_type=client_credentials, and the client authenticates either with
 * HTTP Basic or with client_id and client_secret in the body (both at once
 * is an invalid_request).  An optional scope ("viewer" or "admin", at most
 * the client's role) narrows the token's role; it defaults to the
 * client's role.  Success mints a token for sub = client_id, valid for
 * cfg.oauth_ttl_ms.  Errors are RFC 6749 5.2 bodies: invalid_request and
 * unsupported_grant_type (400), invalid_scope (400), invalid_client (401).
 * Returns PARLEY_OK whenever *out holds a response; PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley_auth_token_request(
    struct parley_auth *a, const char *content_type, const char *body,
    size_t len, const char *authorization, int64_t now_ms,
    struct parley_auth_token_response *out) PARLEY_NONNULL(1, 7);

/* The same behind a brute-force guard: rl (configured by the caller, e.g.
 * burst 10, 1 per 6 s, 5 strikes in 10 min ban for 15 min) is asked for
 * one token for peer_key (parley_rl_ip_key of the client address) before
 * any Argon2id work, so a flood costs the server nothing; a refused or
 * banned address gets 429 with Retry-After; every failed client
 * authentication is a strike.  rl uses mono_ms, the token now_ms. */
PARLEY_NODISCARD int parley_auth_token_request_limited(
    struct parley_auth *a, struct parley_rl *rl, const char *peer_key,
    uint64_t mono_ms, const char *content_type, const char *body, size_t len,
    const char *authorization, int64_t now_ms,
    struct parley_auth_token_response *out) PARLEY_NONNULL(1, 2, 3, 10);

#endif
