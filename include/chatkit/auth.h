/* chatkit/auth.h - bearer-token authentication: a JWT (JWS compact) verifier.
 *
 * Why our own verifier rather than libjwt: libjwt takes the algorithm from the token header,
 * so it accepts an HS256 token HMAC'd with the RSA public key, `alg:none` and expired tokens
 * unless every caller re-checks (see docs/auth.md). Here the algorithm is pinned by the KEY:
 * an HMAC secret only verifies HS256, an RSA key only RS256, a P-256 key only ES256, and the
 * token's `alg` must name the algorithm of the key that verifies it. Nothing else is accepted.
 *
 * Key sources (any combination): an HS256 secret, one RSA (>= 2048 bits) or P-256 public key
 * in PEM, a JWKS document given inline, and a JWKS URL fetched with libcurl on first use,
 * cached, refetched when a token names an unknown `kid` (at most once per min-refresh
 * interval) and when the cache is older than its TTL.
 *
 * Claims: `exp` is required; `exp`, `nbf` and `iat` are checked against the wall clock with a
 * leeway; `iss` and `aud` are checked when configured; the user claim (default `sub`) must be a
 * non-empty string. Error messages are short, static English and never contain the token.
 *
 * Threads: a verifier is immutable after creation except for its JWKS cache, which is behind a
 * mutex, so ck_jwt_verify may be called from any number of threads at once.
 */
#ifndef CHATKIT_AUTH_H
#define CHATKIT_AUTH_H

#include <stddef.h>

#include <chatkit/http.h>
#include <chatkit/log.h>
#include <chatkit/mem.h>
#include <chatkit/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest token accepted; real tokens are a few KiB at most. */
#define CK_JWT_MAX_TOKEN 16384
/* The longest user claim accepted (it becomes the store's user id). */
#define CK_JWT_MAX_USER_ID 256
/* The largest JWKS document read from the network. */
#define CK_JWT_MAX_JWKS_BYTES (1024 * 1024)

typedef struct ck_jwt_verifier ck_jwt_verifier;

/* Settings of a verifier. Every string is copied by ck_jwt_verifier_new. A zero field takes
 * the default in brackets. At least one key source must be set. */
typedef struct ck_jwt_config {
  const char *hs256_secret;    /* HS256 key bytes (at least 32, RFC 7518 §3.2); NULL: none */
  size_t hs256_secret_len;     /* 0: strlen(hs256_secret) */
  const char *public_key_file; /* a PEM file: PUBLIC KEY (RSA or EC P-256) or a CERTIFICATE */
  const char *public_key_pem;  /* the same, as text in memory */
  const char *jwks_json;       /* a JWKS document given inline (no fetching) */
  const char *jwks_url;        /* https:// (http:// only for localhost, 127.0.0.1 and [::1]) */
  const char *issuer;          /* the required `iss`; NULL: not checked */
  const char *audience;        /* must appear in `aud` (string or array); NULL: not checked */
  const char *user_claim;      /* the claim that names the user [sub] */
  int leeway_s;                /* clock skew allowed on exp/nbf/iat [60]; negative means none */
  int jwks_ttl_s;              /* refetch the JWKS URL after this many seconds [3600] */
  int jwks_min_refresh_ms;     /* unknown-kid refetches at most this often [30000] */
  int jwks_timeout_ms;         /* whole-transfer timeout of a fetch [5000] */
  ck_log *log;                 /* borrowed, may be NULL: JWKS fetch outcomes are logged here */
} ck_jwt_config;

/** Creates a verifier from `cfg`. Reads the PEM file and parses the inline JWKS now (the URL is
 * fetched on first use). Returns CK_OK and the verifier in `*out` (the caller owns it: free it
 * with ck_jwt_verifier_free), CK_EINVAL with a short reason in `why` (a bad or missing key
 * source, a weak key, a bad URL), CK_EIO when the PEM file cannot be read, or CK_ENOMEM. `why`
 * may be NULL; it is always NUL-terminated when `why_len` > 0. With a JWKS URL this calls
 * curl_global_init (reference-counted; call it from the main thread before starting workers,
 * as with any libcurl user on a libcurl without CURL_VERSION_THREADSAFE). */
int ck_jwt_verifier_new(const ck_jwt_config *cfg, ck_jwt_verifier **out, char *why, size_t why_len);

/** Frees a verifier and its keys. NULL is a no-op. No ck_jwt_verify may be running. */
void ck_jwt_verifier_free(ck_jwt_verifier *v);

/** Verifies a compact JWS of `len` bytes (no NUL needed) and returns its user claim.
 *
 * On CK_OK `*user_id` points at a NUL-terminated copy of the user claim allocated from `a`
 * (scratch data for parsing is allocated from `a` too). Otherwise returns CK_EINVAL (the token
 * is not acceptable: malformed, unknown or mismatched algorithm, bad signature, expired, wrong
 * issuer or audience, missing user claim), CK_EIO (a JWKS URL was needed and could not be
 * fetched) or CK_ENOMEM, with a short reason in `why` that never quotes the token. Thread-safe;
 * may block on a JWKS fetch. */
int ck_jwt_verify(ck_jwt_verifier *v, const char *token, size_t len, ck_arena *a,
                  const char **user_id, char *why, size_t why_len);

/** A ck_service_auth_fn: `ud` is a ck_jwt_verifier. Reads `Authorization: Bearer <token>`,
 * verifies it and sets ctx->user_id to the user claim (allocated from `arena`). On failure
 * returns CK_EINVAL (or CK_EIO / CK_ENOMEM) with `*message` set to a reason allocated from
 * `arena` (or a static string), which the service answers as 401. */
int ck_jwt_service_auth(void *ud, const ck_http_request *req, ck_arena *arena, ck_ctx *ctx,
                        const char **message);

#ifdef __cplusplus
}
#endif
#endif
