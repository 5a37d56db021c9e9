/* A tiny JWT signer and key toolkit for tests: keys are generated at test time with OpenSSL and
 * tokens are signed here, so no fixture can go stale and any header (including forgeries such
 * as alg "none" or an HS256 token keyed with an RSA public key) can be built. */
#ifndef CK_TEST_JWT_SIGN_H
#define CK_TEST_JWT_SIGN_H

#include <stddef.h>

#include <openssl/evp.h>

/* How ckt_jwt signs the signing input. */
typedef enum ckt_sig {
  CKT_HS256,    /* HMAC-SHA256 with `secret` */
  CKT_RS256,    /* RSASSA-PKCS1-v1_5 SHA-256 with the private key `pkey` */
  CKT_ES256,    /* ECDSA P-256 SHA-256 with `pkey`, as JOSE R||S */
  CKT_UNSIGNED, /* an empty signature segment */
} ckt_sig;

/** A fresh RSA key pair of `bits` bits (caller frees with EVP_PKEY_free); NULL on failure. */
EVP_PKEY *ckt_gen_rsa(int bits);

/** A fresh EC key pair on `curve` ("P-256", "P-384"); NULL on failure. */
EVP_PKEY *ckt_gen_ec(const char *curve);

/** The public half of `k` as "-----BEGIN PUBLIC KEY-----" PEM (heap; caller frees). */
char *ckt_pubkey_pem(EVP_PKEY *k);

/** The public half of `k` as a JWK JSON object with `kid` (NULL: none) and, when `alg` is not
 * NULL, an "alg" member (heap; caller frees). */
char *ckt_jwk(EVP_PKEY *k, const char *kid, const char *alg);

/** "header_b64.payload_b64.signature_b64" for the given raw JSON texts, signed as `how` says
 * (heap; caller frees). `secret` is used for CKT_HS256, `pkey` for RS256/ES256. NULL on
 * failure. */
char *ckt_jwt(const char *header, const char *payload, ckt_sig how, const void *secret,
              size_t secret_len, EVP_PKEY *pkey);

/** The unpadded base64url encoding of `n` bytes (heap; caller frees). */
char *ckt_b64url(const void *data, size_t n);

#endif
