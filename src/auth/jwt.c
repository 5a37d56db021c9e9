/* The JWT verifier (see chatkit/auth.h): compact JWS parsing, signature verification with the
 * algorithm pinned by the key, and claim checks. */
#include "internal.h"

#include <chatkit/auth.h>
#include <chatkit/error.h>
#include <chatkit/json.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The largest PEM file read (a certificate chain is a few KiB). */
#define MAX_PEM_BYTES (64 * 1024)
/* RFC 7518 §3.2: an HS256 key must be at least as long as the hash output. */
#define MIN_SECRET_BYTES 32
/* Longer secrets add nothing (HMAC hashes them down) and would overflow HMAC()'s int length. */
#define MAX_SECRET_BYTES 4096

struct ck_jwt_verifier {
  unsigned char *secret; /* HS256 key, or NULL */
  size_t secret_len;
  ck__jwt_keyset keys; /* the PEM key and the inline JWKS: immutable after creation */
  ck__jwks *jwks;      /* the JWKS URL cache, or NULL */
  char *issuer;        /* NULL: not checked */
  char *audience;      /* NULL: not checked */
  char *user_claim;
  double leeway;
};

static void set_why(char *why, size_t why_len, const char *msg) {
  if (why != NULL && why_len > 0)
    snprintf(why, why_len, "%s", msg);
}

/* NULL for NULL or "", so unset settings of the binary can be passed through as they are. */
static const char *nonempty(const char *s) {
  return s != NULL && *s != '\0' ? s : NULL;
}

static int dup_opt(const char *s, char **out) {
  *out = NULL;
  if ((s = nonempty(s)) == NULL)
    return CK_OK;
  return (*out = strdup(s)) != NULL ? CK_OK : CK_ENOMEM;
}

/* Reads a whole small file into a heap string. Returns CK_OK, CK_EIO or CK_ENOMEM. */
static int read_file(const char *path, char **out, size_t *len, char *why, size_t why_len) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    if (why != NULL && why_len > 0)
      snprintf(why, why_len, "cannot open the public key file: %s", strerror(errno));
    return CK_EIO;
  }
  char *buf = malloc(MAX_PEM_BYTES + 1);
  size_t n = buf ? fread(buf, 1, MAX_PEM_BYTES + 1, f) : 0;
  int rc = CK_OK;
  if (buf == NULL) {
    rc = CK_ENOMEM;
  } else if (ferror(f)) {
    set_why(why, why_len, "cannot read the public key file");
    rc = CK_EIO;
  } else if (n > MAX_PEM_BYTES) {
    set_why(why, why_len, "the public key file is larger than 64 KiB");
    rc = CK_EINVAL;
  }
  fclose(f);
  if (rc != CK_OK) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return CK_OK;
}

/* Adds one PEM key to the static key set. */
static int add_pem(ck_jwt_verifier *v, const char *pem, size_t len, char *why, size_t why_len) {
  EVP_PKEY *pkey = NULL;
  ck__jwt_alg alg = CK__JWT_NONE;
  int rc = ck__jwt_key_from_pem(pem, len, &pkey, &alg, why, why_len);
  if (rc != CK_OK)
    return rc;
  ck__jwt_key *keys = realloc(v->keys.keys, (v->keys.n + 1) * sizeof(*keys));
  if (keys == NULL) {
    EVP_PKEY_free(pkey);
    return CK_ENOMEM;
  }
  v->keys.keys = keys;
  keys[v->keys.n++] = (ck__jwt_key){alg, NULL, pkey};
  return CK_OK;
}

int ck_jwt_verifier_new(const ck_jwt_config *cfg, ck_jwt_verifier **out, char *why,
                        size_t why_len) {
  set_why(why, why_len, "");
  if (out == NULL || cfg == NULL) {
    set_why(why, why_len, "no configuration");
    return CK_EINVAL;
  }
  *out = NULL;
  const char *secret = nonempty(cfg->hs256_secret);
  const char *pem_file = nonempty(cfg->public_key_file);
  const char *pem = nonempty(cfg->public_key_pem);
  const char *jwks_json = nonempty(cfg->jwks_json);
  const char *jwks_url = nonempty(cfg->jwks_url);
  if (!secret && !pem_file && !pem && !jwks_json && !jwks_url) {
    set_why(why, why_len, "no key source: set a secret, a public key or a JWKS");
    return CK_EINVAL;
  }
  size_t secret_len = secret ? (cfg->hs256_secret_len ? cfg->hs256_secret_len : strlen(secret)) : 0;
  if (secret && (secret_len < MIN_SECRET_BYTES || secret_len > MAX_SECRET_BYTES)) {
    set_why(why, why_len, "the HS256 secret must be 32 to 4096 bytes");
    return CK_EINVAL;
  }
  ck_jwt_verifier *v = calloc(1, sizeof(*v));
  if (v == NULL)
    return CK_ENOMEM;
  int rc = CK_OK;
  char *file_text = NULL;
  size_t file_len = 0;
  if (secret && (v->secret = malloc(secret_len)) == NULL) {
    rc = CK_ENOMEM;
    goto fail;
  }
  if (secret) {
    memcpy(v->secret, secret, secret_len);
    v->secret_len = secret_len;
  }
  if ((rc = dup_opt(cfg->issuer, &v->issuer)) != CK_OK ||
      (rc = dup_opt(cfg->audience, &v->audience)) != CK_OK ||
      (rc = dup_opt(nonempty(cfg->user_claim) ? cfg->user_claim : "sub", &v->user_claim)) != CK_OK)
    goto fail;
  v->leeway = cfg->leeway_s > 0 ? cfg->leeway_s : cfg->leeway_s < 0 ? 0 : 60;
  if (pem_file) {
    if ((rc = read_file(pem_file, &file_text, &file_len, why, why_len)) != CK_OK ||
        (rc = add_pem(v, file_text, file_len, why, why_len)) != CK_OK)
      goto fail;
  }
  if (pem && (rc = add_pem(v, pem, strlen(pem), why, why_len)) != CK_OK)
    goto fail;
  if (jwks_json &&
      (rc = ck__jwks_parse(jwks_json, strlen(jwks_json), &v->keys, why, why_len)) != CK_OK)
    goto fail;
  if (jwks_url &&
      (rc = ck__jwks_new(jwks_url, cfg->jwks_ttl_s, cfg->jwks_min_refresh_ms, cfg->jwks_timeout_ms,
                         cfg->log, &v->jwks, why, why_len)) != CK_OK)
    goto fail;
  free(file_text);
  *out = v;
  return CK_OK;
fail:
  free(file_text);
  ck_jwt_verifier_free(v);
  if (rc == CK_ENOMEM)
    set_why(why, why_len, "out of memory");
  return rc;
}

void ck_jwt_verifier_free(ck_jwt_verifier *v) {
  if (v == NULL)
    return;
  if (v->secret != NULL) {
    OPENSSL_cleanse(v->secret, v->secret_len);
    free(v->secret);
  }
  ck__jwt_keyset_clear(&v->keys);
  ck__jwks_free(v->jwks);
  free(v->issuer);
  free(v->audience);
  free(v->user_claim);
  free(v);
}

/* HS256 with the configured secret, compared in constant time. */
static bool verify_hmac(const ck_jwt_verifier *v, const char *input, size_t input_len,
                        const unsigned char *sig, size_t sig_len) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), v->secret, (int)v->secret_len, (const unsigned char *)input, input_len,
           mac, &mac_len) == NULL)
    return false;
  return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

/* Checks the signature with the keys that verify `alg`. Returns CK_OK, CK_EINVAL or CK_EIO. */
static int verify_signature(ck_jwt_verifier *v, ck__jwt_alg alg, const char *kid, const char *input,
                            size_t input_len, const unsigned char *sig, size_t sig_len, char *why,
                            size_t why_len) {
  if (alg == CK__JWT_HS256) {
    if (v->secret == NULL) {
      set_why(why, why_len, "alg HS256 is not accepted by this server");
      return CK_EINVAL;
    }
    if (!verify_hmac(v, input, input_len, sig, sig_len)) {
      set_why(why, why_len, "bad signature");
      return CK_EINVAL;
    }
    return CK_OK;
  }
  EVP_PKEY *cand[CK__JWT_MAX_CANDIDATES];
  size_t n = 0;
  bool any_alg = false;
  for (size_t i = 0; i < v->keys.n && n < CK__JWT_MAX_CANDIDATES; i++) {
    ck__jwt_key *k = &v->keys.keys[i];
    any_alg = any_alg || k->alg == alg;
    if (k->alg == alg && ck__jwt_kid_matches(k->kid, kid) && EVP_PKEY_up_ref(k->pkey) == 1)
      cand[n++] = k->pkey;
  }
  int rc = CK_OK;
  if (v->jwks != NULL) {
    size_t got = 0;
    char jwhy[160] = "";
    rc = ck__jwks_find(v->jwks, alg, kid, cand + n, CK__JWT_MAX_CANDIDATES - n, &got, jwhy,
                       sizeof(jwhy));
    n += got;
    /* A JWKS outage only matters when no static key could verify this token. */
    if (rc != CK_OK && n == 0)
      set_why(why, why_len, jwhy);
    any_alg = true;
  }
  if (n == 0) {
    if (rc == CK_OK)
      set_why(why, why_len,
              any_alg ? (kid ? "no key matches the token's kid" : "no key for the token's alg")
                      : (alg == CK__JWT_RS256 ? "alg RS256 is not accepted by this server"
                                              : "alg ES256 is not accepted by this server"));
    return rc == CK_OK ? CK_EINVAL : rc;
  }
  bool ok = false;
  for (size_t i = 0; i < n; i++) {
    ok = ok || ck__jwt_verify_pkey(alg, cand[i], input, input_len, sig, sig_len);
    EVP_PKEY_free(cand[i]);
  }
  if (!ok) {
    set_why(why, why_len, "bad signature");
    return CK_EINVAL;
  }
  return CK_OK;
}

/* A NumericDate claim: absent (false, ok), a number (true), or anything else (ok = false). */
static bool numeric_claim(const ck_json *claims, const char *name, double *out, bool *ok) {
  const ck_json *c = ck_json_object_get(claims, name);
  *ok = c == NULL || ck_json_is_number(c);
  if (c == NULL || !*ok)
    return false;
  *out = ck_json_number_value(c);
  return true;
}

/* Whether `s` (length `n`) is a string the store can use as a user id: not empty, not too long,
 * no NUL or other control characters (they would end up in logs). */
static bool good_user_id(const char *s, size_t n) {
  if (n == 0 || n > CK_JWT_MAX_USER_ID)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return false;
  return true;
}

static bool audience_ok(const ck_jwt_verifier *v, const ck_json *aud) {
  if (v->audience == NULL)
    return true;
  size_t want = strlen(v->audience);
  if (ck_json_is_string(aud))
    return ck_json_str_len(aud) == want && memcmp(ck_json_str_value(aud), v->audience, want) == 0;
  for (size_t i = 0; i < ck_json_array_size(aud); i++) {
    const ck_json *e = ck_json_array_get(aud, i);
    if (ck_json_is_string(e) && ck_json_str_len(e) == want &&
        memcmp(ck_json_str_value(e), v->audience, want) == 0)
      return true;
  }
  return false;
}

/* The registered claims and the user claim. */
static int check_claims(const ck_jwt_verifier *v, const ck_json *claims, ck_arena *a,
                        const char **user_id, char *why, size_t why_len) {
  double now = (double)time(NULL), exp = 0, nbf = 0, iat = 0;
  bool ok = true;
  bool has_exp = numeric_claim(claims, "exp", &exp, &ok);
  if (!ok || !has_exp) {
    set_why(why, why_len, has_exp || !ok ? "exp is not a number" : "token has no exp");
    return CK_EINVAL;
  }
  if (now >= exp + v->leeway) {
    set_why(why, why_len, "token expired");
    return CK_EINVAL;
  }
  bool has_nbf = numeric_claim(claims, "nbf", &nbf, &ok);
  if (!ok || (has_nbf && now + v->leeway < nbf)) {
    set_why(why, why_len, ok ? "token not yet valid (nbf)" : "nbf is not a number");
    return CK_EINVAL;
  }
  bool has_iat = numeric_claim(claims, "iat", &iat, &ok);
  if (!ok || (has_iat && iat > now + v->leeway)) {
    set_why(why, why_len, ok ? "token issued in the future (iat)" : "iat is not a number");
    return CK_EINVAL;
  }
  if (v->issuer != NULL) {
    const ck_json *iss = ck_json_object_get(claims, "iss");
    size_t want = strlen(v->issuer);
    if (!ck_json_is_string(iss) || ck_json_str_len(iss) != want ||
        memcmp(ck_json_str_value(iss), v->issuer, want) != 0) {
      set_why(why, why_len, "wrong issuer");
      return CK_EINVAL;
    }
  }
  if (!audience_ok(v, ck_json_object_get(claims, "aud"))) {
    set_why(why, why_len, "wrong audience");
    return CK_EINVAL;
  }
  /* Only strings: a numeric subject has no single spelling (1e3, 1000, 1000.0) and RFC 7519
   * §4.1.2 defines sub as a StringOrURI, so accepting numbers could split or merge users. */
  const ck_json *user = ck_json_object_get(claims, v->user_claim);
  if (!ck_json_is_string(user) || !good_user_id(ck_json_str_value(user), ck_json_str_len(user))) {
    if (why != NULL && why_len > 0)
      snprintf(why, why_len, "token has no usable \"%s\" claim (a non-empty string)",
               v->user_claim);
    return CK_EINVAL;
  }
  *user_id = ck_arena_strndup(a, ck_json_str_value(user), ck_json_str_len(user));
  return *user_id != NULL ? CK_OK : CK_ENOMEM;
}

int ck_jwt_verify(ck_jwt_verifier *v, const char *token, size_t len, ck_arena *a,
                  const char **user_id, char *why, size_t why_len) {
  set_why(why, why_len, "");
  if (user_id != NULL)
    *user_id = NULL;
  if (v == NULL || a == NULL || user_id == NULL || (token == NULL && len > 0)) {
    set_why(why, why_len, "bad arguments");
    return CK_EINVAL;
  }
  if (len == 0 || len > CK_JWT_MAX_TOKEN) {
    set_why(why, why_len, len == 0 ? "empty token" : "token too long");
    return CK_EINVAL;
  }
  /* Compact serialisation: exactly three non-empty segments. */
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  const char *end = token + len;
  if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL || d1 == token ||
      d2 == d1 + 1 || d2 + 1 == end) {
    set_why(why, why_len, "malformed token (expected header.payload.signature)");
    return CK_EINVAL;
  }
  unsigned char *hdr = NULL, *payload = NULL, *sig = NULL;
  size_t hdr_len = 0, payload_len = 0, sig_len = 0;
  int rc = ck__b64url_decode(a, token, (size_t)(d1 - token), &hdr, &hdr_len);
  ck_json *header = NULL, *claims = NULL;
  if (rc == CK_OK &&
      (rc = ck_json_parse(a, (const char *)hdr, hdr_len, 8, &header, NULL)) == CK_OK &&
      !ck_json_is_object(header))
    rc = CK_EINVAL;
  if (rc != CK_OK) {
    set_why(why, why_len, rc == CK_ENOMEM ? "out of memory" : "malformed token header");
    return rc;
  }
  const ck_json *alg_v = ck_json_object_get(header, "alg");
  ck__jwt_alg alg = ck_json_is_string(alg_v)
                        ? ck__jwt_alg_parse(ck_json_str_value(alg_v), ck_json_str_len(alg_v))
                        : CK__JWT_NONE;
  if (alg == CK__JWT_NONE) {
    set_why(why, why_len, "unsupported alg (only HS256, RS256 and ES256)");
    return CK_EINVAL;
  }
  /* RFC 7515 §4.1.11: extensions we do not implement must make the token invalid. */
  if (ck_json_object_get(header, "crit") != NULL) {
    set_why(why, why_len, "unsupported crit header");
    return CK_EINVAL;
  }
  const ck_json *kid_v = ck_json_object_get(header, "kid");
  if (kid_v != NULL &&
      (!ck_json_is_string(kid_v) || ck_json_str_len(kid_v) == 0 || ck_json_str_len(kid_v) > 256 ||
       ck_json_str_len(kid_v) != strlen(ck_json_str_value(kid_v)))) {
    set_why(why, why_len, "malformed kid");
    return CK_EINVAL;
  }
  const char *kid = kid_v ? ck_json_str_value(kid_v) : NULL;
  rc = ck__b64url_decode(a, d2 + 1, (size_t)(end - d2 - 1), &sig, &sig_len);
  if (rc != CK_OK) {
    set_why(why, why_len, rc == CK_ENOMEM ? "out of memory" : "malformed signature");
    return rc;
  }
  rc = verify_signature(v, alg, kid, token, (size_t)(d2 - token), sig, sig_len, why, why_len);
  if (rc != CK_OK)
    return rc;
  /* Only an authenticated payload is parsed. */
  rc = ck__b64url_decode(a, d1 + 1, (size_t)(d2 - d1 - 1), &payload, &payload_len);
  if (rc == CK_OK &&
      (rc = ck_json_parse(a, (const char *)payload, payload_len, 16, &claims, NULL)) == CK_OK &&
      !ck_json_is_object(claims))
    rc = CK_EINVAL;
  if (rc != CK_OK) {
    set_why(why, why_len, rc == CK_ENOMEM ? "out of memory" : "malformed token payload");
    return rc;
  }
  return check_claims(v, claims, a, user_id, why, why_len);
}

int ck_jwt_service_auth(void *ud, const ck_http_request *req, ck_arena *arena, ck_ctx *ctx,
                        const char **message) {
  ck_jwt_verifier *v = ud;
  const char *h = ck_http_request_header(req, "Authorization");
  if (h == NULL) {
    *message = "missing bearer token";
    return CK_EINVAL;
  }
  while (*h == ' ' || *h == '\t')
    h++;
  if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) {
    *message = "expected Authorization: Bearer <token>";
    return CK_EINVAL;
  }
  h += 6;
  while (*h == ' ' || *h == '\t')
    h++;
  size_t n = strlen(h);
  while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
    n--;
  char why[192];
  const char *user = NULL;
  int rc = ck_jwt_verify(v, h, n, arena, &user, why, sizeof(why));
  if (rc != CK_OK) {
    const char *copy = ck_arena_strdup(arena, why);
    *message = copy ? copy : "invalid token";
    return rc;
  }
  ctx->user_id = user;
  return CK_OK;
}
