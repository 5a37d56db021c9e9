/* Internals of the JWT verifier (src/auth): base64url, keys and the JWKS cache. Not installed;
 * the tests and the fuzzer include it to reach the pieces directly. */
#ifndef CK_AUTH_INTERNAL_H
#define CK_AUTH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include <chatkit/log.h>
#include <chatkit/mem.h>

/* The algorithms we verify. The value comes from the key, never from the token. */
typedef enum ck__jwt_alg {
  CK__JWT_NONE = 0, /* no or an unsupported algorithm */
  CK__JWT_HS256 = 1,
  CK__JWT_RS256 = 2,
  CK__JWT_ES256 = 3,
} ck__jwt_alg;

/* Candidate keys tried for one token; bounds the signature checks a token can cause. */
#define CK__JWT_MAX_CANDIDATES 8

/* A public key with the one algorithm it verifies and its JWKS key id (NULL if none). */
typedef struct ck__jwt_key {
  ck__jwt_alg alg;
  char *kid;      /* heap, owned; NULL when the key has no id */
  EVP_PKEY *pkey; /* owned (one reference) */
} ck__jwt_key;

/* An array of keys, owned. Zero-initialise; free with ck__jwt_keyset_clear. */
typedef struct ck__jwt_keyset {
  ck__jwt_key *keys;
  size_t n;
} ck__jwt_keyset;

/** Decodes strict base64url (RFC 4648 §5, no padding, no whitespace, unused trailing bits zero)
 * of `n` bytes into a buffer allocated from `a` (NUL-terminated for convenience). Returns CK_OK,
 * CK_EINVAL for anything non-canonical, or CK_ENOMEM. */
int ck__b64url_decode(ck_arena *a, const char *s, size_t n, unsigned char **out, size_t *out_len);

/** Appends the unpadded base64url encoding of `n` bytes to `b`. Returns CK_OK, CK_ENOMEM or
 * CK_ETOOBIG. */
int ck__b64url_encode(ck_buf *b, const void *data, size_t n);

/** Parses "HS256", "RS256" or "ES256" (exactly, case-sensitive); anything else is
 * CK__JWT_NONE. `n` is the length of `name`. */
ck__jwt_alg ck__jwt_alg_parse(const char *name, size_t n);

/** The algorithm an asymmetric key verifies: RS256 for RSA of at least 2048 bits, ES256 for an
 * EC key on P-256; CK__JWT_NONE (with a reason in `why`) for anything else. */
ck__jwt_alg ck__jwt_key_alg(EVP_PKEY *pkey, char *why, size_t why_len);

/** Reads one public key from PEM text (a PUBLIC KEY or a CERTIFICATE) and classifies it.
 * Returns CK_OK with a new reference in `*out` and its algorithm in `*alg`, or CK_EINVAL with a
 * reason in `why`. */
int ck__jwt_key_from_pem(const char *pem, size_t len, EVP_PKEY **out, ck__jwt_alg *alg, char *why,
                         size_t why_len);

/** Parses a JWKS document ({"keys":[...]}) and adds its usable signature keys (RSA >= 2048 and
 * EC P-256; `use` absent or "sig"; `alg` absent or matching the key type) to `ks`. Keys that
 * are not such keys, or are malformed, are skipped so that one odd key published by an issuer
 * does not disable the others. Returns CK_OK, CK_EINVAL with a reason (not a key set, more than
 * 256 keys, no usable key), or CK_ENOMEM. On failure `ks` is left as it was. */
int ck__jwks_parse(const char *json, size_t len, ck__jwt_keyset *ks, char *why, size_t why_len);

/** Frees every key of `ks` and empties it. NULL is a no-op. */
void ck__jwt_keyset_clear(ck__jwt_keyset *ks);

/** Whether key id `key_kid` (NULL: none) answers a token's `kid` (NULL: none): a token
 * without kid and a key without kid match anything; otherwise the ids must be equal. */
bool ck__jwt_kid_matches(const char *key_kid, const char *token_kid);

/** Verifies `sig` over `input` with `pkey` for `alg` (RS256 or ES256; an ES256 signature is
 * the JOSE R||S form and is converted to DER here). Returns true only for a valid signature. */
bool ck__jwt_verify_pkey(ck__jwt_alg alg, EVP_PKEY *pkey, const void *input, size_t input_len,
                         const unsigned char *sig, size_t sig_len);

/* ---- The JWKS URL cache (jwks.c) ---------------------------------------------------------- */

typedef struct ck__jwks ck__jwks;

/** Creates a cache for `url` (copied). Checks the scheme (https, or http for loopback hosts).
 * Returns CK_OK, CK_EINVAL with a reason, or CK_ENOMEM. */
int ck__jwks_new(const char *url, int ttl_s, int min_refresh_ms, int timeout_ms, ck_log *log,
                 ck__jwks **out, char *why, size_t why_len);

/** Frees the cache. NULL is a no-op. */
void ck__jwks_free(ck__jwks *j);

/** Collects up to `max` keys for `alg` and the token's `kid` (NULL: none) into `out`, each with a
 * new reference the caller drops with EVP_PKEY_free, fetching the document first when it was
 * never fetched, is older than its TTL, or (rate-limited) lacks `kid`. Returns CK_OK with the
 * count in `*n` (possibly 0), or CK_EIO with a reason when no document could ever be fetched. */
int ck__jwks_find(ck__jwks *j, ck__jwt_alg alg, const char *kid, EVP_PKEY **out, size_t max,
                  size_t *n, char *why, size_t why_len);

/** Number of successful fetches so far (for tests). */
unsigned ck__jwks_fetches(ck__jwks *j);

#endif
