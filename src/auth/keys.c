/* Public keys for the JWT verifier: classification (which one algorithm a key verifies), PEM
 * and JWK import, and signature verification with OpenSSL 3's EVP interface. */
#include "internal.h"

#include <chatkit/error.h>
#include <chatkit/json.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RSA moduli below this are refused (NIST SP 800-131A; RFC 7518 §3.3 asks for 2048). */
#define MIN_RSA_BITS 2048

static void set_why(char *why, size_t why_len, const char *msg) {
  if (why != NULL && why_len > 0)
    snprintf(why, why_len, "%s", msg);
}

ck__jwt_alg ck__jwt_alg_parse(const char *name, size_t n) {
  if (n != 5)
    return CK__JWT_NONE;
  if (memcmp(name, "HS256", 5) == 0)
    return CK__JWT_HS256;
  if (memcmp(name, "RS256", 5) == 0)
    return CK__JWT_RS256;
  if (memcmp(name, "ES256", 5) == 0)
    return CK__JWT_ES256;
  return CK__JWT_NONE;
}

ck__jwt_alg ck__jwt_key_alg(EVP_PKEY *pkey, char *why, size_t why_len) {
  /* "RSA" deliberately excludes RSA-PSS keys: RS256 is PKCS#1 v1.5. */
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS) {
      set_why(why, why_len, "RSA key shorter than 2048 bits");
      return CK__JWT_NONE;
    }
    return CK__JWT_RS256;
  }
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = "";
    size_t glen = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1 &&
        (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
      return CK__JWT_ES256;
    set_why(why, why_len, "EC key not on P-256 (only ES256 is supported)");
    return CK__JWT_NONE;
  }
  set_why(why, why_len, "unsupported key type (need RSA or EC P-256)");
  return CK__JWT_NONE;
}

int ck__jwt_key_from_pem(const char *pem, size_t len, EVP_PKEY **out, ck__jwt_alg *alg, char *why,
                         size_t why_len) {
  *out = NULL;
  *alg = CK__JWT_NONE;
  if (len > INT32_MAX) {
    set_why(why, why_len, "PEM too large");
    return CK_EINVAL;
  }
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if (bio == NULL)
    return CK_ENOMEM;
  EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  if (pkey == NULL) {
    /* Not a bare public key: perhaps the issuer's certificate. */
    (void)BIO_reset(bio);
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (cert != NULL) {
      pkey = X509_get_pubkey(cert);
      X509_free(cert);
    }
  }
  BIO_free(bio);
  /* Whatever failed, OpenSSL's error queue must not leak into unrelated later calls. */
  ERR_clear_error();
  if (pkey == NULL) {
    set_why(why, why_len, "no PUBLIC KEY or CERTIFICATE found in the PEM");
    return CK_EINVAL;
  }
  ck__jwt_alg a = ck__jwt_key_alg(pkey, why, why_len);
  if (a == CK__JWT_NONE) {
    EVP_PKEY_free(pkey);
    return CK_EINVAL;
  }
  *out = pkey;
  *alg = a;
  return CK_OK;
}

bool ck__jwt_kid_matches(const char *key_kid, const char *token_kid) {
  if (key_kid == NULL || token_kid == NULL)
    return true;
  return strcmp(key_kid, token_kid) == 0;
}

void ck__jwt_keyset_clear(ck__jwt_keyset *ks) {
  if (ks == NULL)
    return;
  for (size_t i = 0; i < ks->n; i++) {
    EVP_PKEY_free(ks->keys[i].pkey);
    free(ks->keys[i].kid);
  }
  free(ks->keys);
  ks->keys = NULL;
  ks->n = 0;
}

/* Decodes a base64url member of a JWK; NULL when absent, not a string or not canonical. */
static unsigned char *jwk_bytes(ck_arena *a, const ck_json *jwk, const char *name, size_t *len) {
  const ck_json *v = ck_json_object_get(jwk, name);
  unsigned char *out = NULL;
  if (!ck_json_is_string(v) ||
      ck__b64url_decode(a, ck_json_str_value(v), ck_json_str_len(v), &out, len) != CK_OK ||
      *len == 0)
    return NULL;
  return out;
}

/* Builds a key from OSSL parameters with EVP_PKEY_fromdata. */
static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld) {
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

static EVP_PKEY *jwk_rsa(ck_arena *a, const ck_json *jwk) {
  size_t nlen = 0, elen = 0;
  unsigned char *n = jwk_bytes(a, jwk, "n", &nlen);
  unsigned char *e = jwk_bytes(a, jwk, "e", &elen);
  if (n == NULL || e == NULL || nlen > 2048 || elen > 16)
    return NULL;
  EVP_PKEY *pkey = NULL;
  BIGNUM *bn_n = BN_bin2bn(n, (int)nlen, NULL);
  BIGNUM *bn_e = BN_bin2bn(e, (int)elen, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  if (bn_n != NULL && bn_e != NULL && bld != NULL &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
    pkey = from_params("RSA", bld);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return pkey;
}

static EVP_PKEY *jwk_ec(ck_arena *a, const ck_json *jwk) {
  const char *crv = ck_json_object_get_str(jwk, "crv");
  if (crv == NULL || strcmp(crv, "P-256") != 0)
    return NULL;
  size_t xlen = 0, ylen = 0;
  unsigned char *x = jwk_bytes(a, jwk, "x", &xlen);
  unsigned char *y = jwk_bytes(a, jwk, "y", &ylen);
  if (x == NULL || y == NULL || xlen != 32 || ylen != 32)
    return NULL;
  /* The uncompressed SEC 1 point: 0x04 || X || Y. */
  unsigned char point[65];
  point[0] = 0x04;
  memcpy(point + 1, x, 32);
  memcpy(point + 33, y, 32);
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  if (bld != NULL &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) == 1)
    pkey = from_params("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  if (pkey != NULL) {
    /* A point off the curve would make every verification meaningless: check it once here. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
      EVP_PKEY_free(pkey);
      pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
  }
  return pkey;
}

/* One JWK into `key`; false when it is not a usable signature key (skipped, not an error). */
static bool jwk_import(ck_arena *a, const ck_json *jwk, ck__jwt_key *key) {
  if (!ck_json_is_object(jwk))
    return false;
  const char *kty = ck_json_object_get_str(jwk, "kty");
  const ck_json *use = ck_json_object_get(jwk, "use");
  const ck_json *alg = ck_json_object_get(jwk, "alg");
  const ck_json *kid = ck_json_object_get(jwk, "kid");
  if (kty == NULL ||
      (use != NULL && (!ck_json_is_string(use) || strcmp(ck_json_str_value(use), "sig") != 0)))
    return false;
  if (kid != NULL && (!ck_json_is_string(kid) || ck_json_str_len(kid) == 0 ||
                      ck_json_str_len(kid) != strlen(ck_json_str_value(kid))))
    return false;
  EVP_PKEY *pkey = NULL;
  if (strcmp(kty, "RSA") == 0)
    pkey = jwk_rsa(a, jwk);
  else if (strcmp(kty, "EC") == 0)
    pkey = jwk_ec(a, jwk);
  ERR_clear_error();
  if (pkey == NULL)
    return false;
  ck__jwt_alg kalg = ck__jwt_key_alg(pkey, NULL, 0);
  /* A key published for another algorithm (RS384, ECDH-ES...) is not ours to use. */
  if (kalg == CK__JWT_NONE ||
      (alg != NULL && (!ck_json_is_string(alg) ||
                       ck__jwt_alg_parse(ck_json_str_value(alg), ck_json_str_len(alg)) != kalg))) {
    EVP_PKEY_free(pkey);
    return false;
  }
  char *kid_copy = NULL;
  if (kid != NULL && (kid_copy = strdup(ck_json_str_value(kid))) == NULL) {
    EVP_PKEY_free(pkey);
    return false;
  }
  key->alg = kalg;
  key->kid = kid_copy;
  key->pkey = pkey;
  return true;
}

int ck__jwks_parse(const char *json, size_t len, ck__jwt_keyset *ks, char *why, size_t why_len) {
  ck_arena *a = ck_arena_new(0);
  if (a == NULL)
    return CK_ENOMEM;
  int rc = CK_OK;
  ck__jwt_key *keys = NULL;
  size_t n = 0;
  ck_json *doc = NULL;
  const ck_json *arr = NULL;
  if (ck_json_parse(a, json, len, 8, &doc, NULL) != CK_OK ||
      !ck_json_is_array(arr = ck_json_object_get(doc, "keys"))) {
    set_why(why, why_len, "JWKS is not a JSON object with a \"keys\" array");
    rc = CK_EINVAL;
    goto done;
  }
  size_t count = ck_json_array_size(arr);
  if (count > 256) {
    set_why(why, why_len, "JWKS has more than 256 keys");
    rc = CK_EINVAL;
    goto done;
  }
  keys = calloc(count + ks->n + 1, sizeof(*keys));
  if (keys == NULL) {
    rc = CK_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < count; i++)
    if (jwk_import(a, ck_json_array_get(arr, i), &keys[n]))
      n++;
  if (n == 0) {
    set_why(why, why_len, "JWKS has no usable RS256 or ES256 signature key");
    rc = CK_EINVAL;
    goto done;
  }
  /* Success: the new keys go after the ones already in the set. */
  if (ks->n > 0)
    memcpy(keys + n, ks->keys, ks->n * sizeof(*keys));
  free(ks->keys);
  ks->keys = keys;
  ks->n += n;
  keys = NULL;
  n = 0;
done:
  for (size_t i = 0; i < n; i++) {
    EVP_PKEY_free(keys[i].pkey);
    free(keys[i].kid);
  }
  free(keys);
  ck_arena_free(a);
  return rc;
}

bool ck__jwt_verify_pkey(ck__jwt_alg alg, EVP_PKEY *pkey, const void *input, size_t input_len,
                         const unsigned char *sig, size_t sig_len) {
  unsigned char *der = NULL;
  const unsigned char *s = sig;
  size_t slen = sig_len;
  bool ok = false;
  if (alg == CK__JWT_RS256) {
    if (sig_len != (size_t)EVP_PKEY_get_size(pkey))
      return false;
  } else if (alg == CK__JWT_ES256) {
    /* JOSE carries R || S as two 32-byte big-endian integers; OpenSSL wants DER. */
    if (sig_len != 64)
      return false;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *ss = BN_bin2bn(sig + 32, 32, NULL);
    if (es == NULL || r == NULL || ss == NULL || ECDSA_SIG_set0(es, r, ss) != 1) {
      BN_free(r);
      BN_free(ss);
      ECDSA_SIG_free(es);
      return false;
    }
    int dlen = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (dlen <= 0)
      return false;
    s = der;
    slen = (size_t)dlen;
  } else {
    return false;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md != NULL && EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
      EVP_DigestVerify(md, s, slen, input, input_len) == 1)
    ok = true;
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}
