/* libFuzzer harness for the JWT verifier. The verifier holds every kind of key: an HS256
 * secret, an RSA public key from PEM and a JWKS with an EC P-256 key (kid "e1") and a second
 * RSA key (kid "r2"), all generated once at start-up. The first input byte picks the mode:
 *
 *   0: the rest is a raw token (base64url, segmenting, header parsing and alg selection);
 *   1: the rest is HEADER_JSON NUL PAYLOAD_JSON, encoded and HMAC-signed with the secret here,
 *      so the signature passes and the claim checks see arbitrary JSON;
 *   2: as 1 but ES256-signed with the JWKS EC key, which exercises kid lookup and ECDSA.
 *
 * It must never crash, leak or hang; an accepted token must yield a user id of at most
 * CK_JWT_MAX_USER_ID bytes. The harness keeps its keys in file-level statics because libFuzzer
 * gives it no other place to keep state between inputs. Build with -DCK_FUZZ=ON (clang). */
#include <chatkit/auth.h>
#include <chatkit/error.h>

#include "auth/internal.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret-0123456789abcdef0123456789"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);                    \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static ck_jwt_verifier *verifier;
static EVP_PKEY *ec_key;

static char *pubkey_pem(EVP_PKEY *k) {
  BIO *bio = BIO_new(BIO_s_mem());
  CHECK(bio != NULL && PEM_write_bio_PUBKEY(bio, k) == 1);
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  char *out = strndup(data, (size_t)n);
  BIO_free(bio);
  return out;
}

static void append_bn(ck_buf *b, const char *name, EVP_PKEY *k, const char *param, int pad) {
  BIGNUM *bn = NULL;
  unsigned char raw[512];
  CHECK(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
  int n = pad ? BN_bn2binpad(bn, raw, pad) : BN_bn2bin(bn, raw);
  CHECK(n > 0);
  ck_buf_printf(b, ",\"%s\":\"", name);
  ck__b64url_encode(b, raw, (size_t)n);
  ck_buf_putc(b, '"');
  BN_free(bn);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  EVP_PKEY *rsa = EVP_RSA_gen(2048), *rsa2 = EVP_RSA_gen(2048);
  ec_key = EVP_EC_gen("P-256");
  CHECK(rsa && rsa2 && ec_key);
  char *pem = pubkey_pem(rsa);
  ck_buf jwks;
  ck_buf_init(&jwks, 0);
  ck_buf_puts(&jwks, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e1\"");
  append_bn(&jwks, "x", ec_key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
  append_bn(&jwks, "y", ec_key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
  ck_buf_puts(&jwks, "},{\"kty\":\"RSA\",\"kid\":\"r2\",\"alg\":\"RS256\"");
  append_bn(&jwks, "n", rsa2, OSSL_PKEY_PARAM_RSA_N, 0);
  append_bn(&jwks, "e", rsa2, OSSL_PKEY_PARAM_RSA_E, 0);
  ck_buf_puts(&jwks, "}]}");
  ck_jwt_config cfg = {.hs256_secret = SECRET,
                       .public_key_pem = pem,
                       .jwks_json = jwks.data,
                       .issuer = "iss",
                       .audience = "aud"};
  char why[160];
  CHECK(ck_jwt_verifier_new(&cfg, &verifier, why, sizeof(why)) == CK_OK);
  free(pem);
  ck_buf_free(&jwks);
  EVP_PKEY_free(rsa);
  EVP_PKEY_free(rsa2);
  return 0;
}

/* Signs b's content ("h.p") as `mode` says and appends ".sig". */
static void sign_into(ck_buf *b, int mode) {
  unsigned char sig[EVP_MAX_MD_SIZE + 64];
  size_t n = 0;
  if (mode == 1) {
    unsigned int len = 0;
    CHECK(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)b->data, b->len,
               sig, &len) != NULL);
    n = len;
  } else {
    unsigned char der[128];
    size_t der_len = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CHECK(md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, ec_key, NULL) == 1 &&
          EVP_DigestSign(md, der, &der_len, (const unsigned char *)b->data, b->len) == 1);
    EVP_MD_CTX_free(md);
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    CHECK(es != NULL);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
    ECDSA_SIG_free(es);
    n = 64;
  }
  ck_buf_putc(b, '.');
  ck__b64url_encode(b, sig, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0 || size > 2 * CK_JWT_MAX_TOKEN)
    return 0;
  int mode = data[0] % 3;
  const char *rest = (const char *)data + 1;
  size_t rest_len = size - 1;
  ck_buf tok;
  ck_buf_init(&tok, 0);
  if (mode == 0) {
    ck_buf_append(&tok, rest, rest_len);
  } else {
    const char *nul = memchr(rest, '\0', rest_len);
    size_t hlen = nul ? (size_t)(nul - rest) : rest_len;
    ck__b64url_encode(&tok, rest, hlen);
    ck_buf_putc(&tok, '.');
    if (nul != NULL)
      ck__b64url_encode(&tok, nul + 1, rest_len - hlen - 1);
    sign_into(&tok, mode);
  }
  ck_arena *a = ck_arena_new(0);
  CHECK(a != NULL);
  const char *user = NULL;
  char why[192];
  int rc = ck_jwt_verify(verifier, tok.data ? tok.data : "", tok.len, a, &user, why, sizeof(why));
  if (rc == CK_OK) {
    CHECK(user != NULL && strlen(user) > 0 && strlen(user) <= CK_JWT_MAX_USER_ID);
  } else {
    CHECK(user == NULL && why[0] != '\0');
  }
  ck_arena_free(a);
  ck_buf_free(&tok);
  return 0;
}
