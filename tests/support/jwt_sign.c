/* The test JWT signer (see jwt_sign.h). Failures return NULL; tests assert on that. */
#include "support/jwt_sign.h"

#include "auth/internal.h"

#include <chatkit/error.h>
#include <chatkit/mem.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdlib.h>
#include <string.h>

EVP_PKEY *ckt_gen_rsa(int bits) {
  return EVP_RSA_gen((unsigned)bits);
}

EVP_PKEY *ckt_gen_ec(const char *curve) {
  return EVP_EC_gen(curve);
}

char *ckt_pubkey_pem(EVP_PKEY *k) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (bio != NULL && PEM_write_bio_PUBKEY(bio, k) == 1) {
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    out = n > 0 ? strndup(data, (size_t)n) : NULL;
  }
  BIO_free(bio);
  return out;
}

char *ckt_b64url(const void *data, size_t n) {
  ck_buf b;
  ck_buf_init(&b, 0);
  if (ck__b64url_encode(&b, data, n) != CK_OK) {
    ck_buf_free(&b);
    return NULL;
  }
  return ck_buf_take(&b, NULL);
}

/* A big number as base64url of its minimal (or `pad`-byte) big-endian form. */
static char *bn_b64(const BIGNUM *bn, int pad) {
  unsigned char buf[1024];
  int n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
  return n > 0 ? ckt_b64url(buf, (size_t)n) : NULL;
}

char *ckt_jwk(EVP_PKEY *k, const char *kid, const char *alg) {
  ck_buf b;
  ck_buf_init(&b, 0);
  BIGNUM *p1 = NULL, *p2 = NULL;
  char *s1 = NULL, *s2 = NULL, *out = NULL;
  if (EVP_PKEY_is_a(k, "RSA")) {
    if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &p1) == 1 &&
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &p2) == 1 && (s1 = bn_b64(p1, 0)) != NULL &&
        (s2 = bn_b64(p2, 0)) != NULL)
      ck_buf_printf(&b, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"", s1, s2);
  } else {
    if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &p1) == 1 &&
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &p2) == 1 &&
        (s1 = bn_b64(p1, 32)) != NULL && (s2 = bn_b64(p2, 32)) != NULL)
      ck_buf_printf(&b, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"", s1, s2);
  }
  if (b.len > 0) {
    if (kid != NULL)
      ck_buf_printf(&b, ",\"kid\":\"%s\"", kid);
    if (alg != NULL)
      ck_buf_printf(&b, ",\"alg\":\"%s\"", alg);
    ck_buf_puts(&b, "}");
    out = ck_buf_take(&b, NULL);
  }
  ck_buf_free(&b);
  BN_free(p1);
  BN_free(p2);
  free(s1);
  free(s2);
  return out;
}

/* Signs `input` into `sig` (at least 512 bytes); returns the length or 0. */
static size_t sign(const char *input, size_t n, ckt_sig how, const void *secret, size_t secret_len,
                   EVP_PKEY *pkey, unsigned char *sig) {
  if (how == CKT_HS256) {
    unsigned int len = 0;
    return HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input, n, sig,
                &len) != NULL
               ? len
               : 0;
  }
  if (how == CKT_UNSIGNED)
    return 0;
  unsigned char der[600];
  size_t der_len = sizeof(der);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md != NULL && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
           EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, n) == 1;
  EVP_MD_CTX_free(md);
  if (!ok)
    return 0;
  if (how == CKT_RS256) {
    memcpy(sig, der, der_len);
    return der_len;
  }
  /* DER ECDSA-Sig-Value to JOSE R||S. */
  const unsigned char *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
  if (es == NULL)
    return 0;
  size_t out = BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32 &&
                       BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32
                   ? 64
                   : 0;
  ECDSA_SIG_free(es);
  return out;
}

char *ckt_jwt(const char *header, const char *payload, ckt_sig how, const void *secret,
              size_t secret_len, EVP_PKEY *pkey) {
  ck_buf b;
  ck_buf_init(&b, 0);
  unsigned char sig[600];
  if (ck__b64url_encode(&b, header, strlen(header)) != CK_OK || ck_buf_putc(&b, '.') != CK_OK ||
      ck__b64url_encode(&b, payload, strlen(payload)) != CK_OK) {
    ck_buf_free(&b);
    return NULL;
  }
  size_t n = sign(b.data, b.len, how, secret, secret_len, pkey, sig);
  if ((n == 0 && how != CKT_UNSIGNED) || ck_buf_putc(&b, '.') != CK_OK ||
      ck__b64url_encode(&b, sig, n) != CK_OK) {
    ck_buf_free(&b);
    return NULL;
  }
  return ck_buf_take(&b, NULL);
}
