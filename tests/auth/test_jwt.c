/* Tests for src/auth: the JWT verifier. Keys are generated at test time (RSA 2048, EC P-256)
 * and tokens are signed by tests/support/jwt_sign.c, including the forgeries a verifier must
 * refuse. JWKS URLs are served by a minimal HTTP server on 127.0.0.1 in a thread. */
#include <chatkit/auth.h>
#include <chatkit/error.h>

#include "auth/internal.h"
#include "support/jwt_sign.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define ISS "https://issuer.example"
#define AUD "chatkit"

/* The keys shared by every case (generated once: RSA generation is slow under ASan). */
typedef struct fixture {
  EVP_PKEY *rsa, *rsa2, *ec, *ec2;
  char *rsa_pem, *ec_pem;
} fixture;

static int group_setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  f->rsa = ckt_gen_rsa(2048);
  f->rsa2 = ckt_gen_rsa(2048);
  f->ec = ckt_gen_ec("P-256");
  f->ec2 = ckt_gen_ec("P-256");
  f->rsa_pem = f->rsa ? ckt_pubkey_pem(f->rsa) : NULL;
  f->ec_pem = f->ec ? ckt_pubkey_pem(f->ec) : NULL;
  *state = f;
  return f->rsa && f->rsa2 && f->ec && f->ec2 && f->rsa_pem && f->ec_pem ? 0 : -1;
}

static int group_teardown(void **state) {
  fixture *f = *state;
  EVP_PKEY_free(f->rsa);
  EVP_PKEY_free(f->rsa2);
  EVP_PKEY_free(f->ec);
  EVP_PKEY_free(f->ec2);
  free(f->rsa_pem);
  free(f->ec_pem);
  free(f);
  return 0;
}

/* Claims valid now for `sub`, with iss and aud. */
static const char *claims(char *buf, size_t cap, const char *sub) {
  long now = (long)time(NULL);
  snprintf(buf, cap,
           "{\"sub\":\"%s\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":%ld,"
           "\"nbf\":%ld,\"exp\":%ld}",
           sub, now, now - 5, now + 600);
  return buf;
}

static ck_jwt_verifier *make(const ck_jwt_config *cfg) {
  ck_jwt_verifier *v = NULL;
  char why[160];
  int rc = ck_jwt_verifier_new(cfg, &v, why, sizeof(why));
  if (rc != CK_OK)
    fprintf(stderr, "verifier_new: %s\n", why);
  assert_int_equal(rc, CK_OK);
  return v;
}

/* A verifier with issuer and audience and the keys given. */
static ck_jwt_verifier *make_keys(const char *secret, const char *pem, const char *jwks) {
  ck_jwt_config cfg = {0};
  cfg.hs256_secret = secret;
  cfg.public_key_pem = pem;
  cfg.jwks_json = jwks;
  cfg.issuer = ISS;
  cfg.audience = AUD;
  return make(&cfg);
}

/* Verifies `token` (freed here) and checks the outcome: `want_user` on success, or a failure
 * whose reason contains `want_why`. */
static void check(ck_jwt_verifier *v, char *token, const char *want_user, const char *want_why) {
  assert_non_null(token);
  ck_arena *a = ck_arena_new(0);
  const char *user = NULL;
  char why[192];
  int rc = ck_jwt_verify(v, token, strlen(token), a, &user, why, sizeof(why));
  if (want_user != NULL) {
    if (rc != CK_OK)
      fprintf(stderr, "rejected: %s\n", why);
    assert_int_equal(rc, CK_OK);
    assert_string_equal(user, want_user);
  } else {
    assert_int_not_equal(rc, CK_OK);
    assert_null(user);
    if (strstr(why, want_why) == NULL)
      fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", why, want_why);
    assert_non_null(strstr(why, want_why));
    /* Reasons never quote the token. */
    if (token[0] != '\0')
      assert_null(strstr(why, token));
  }
  ck_arena_free(a);
  free(token);
}

static char *hs(const char *header, const char *payload) {
  return ckt_jwt(header, payload, CKT_HS256, SECRET, strlen(SECRET), NULL);
}

#define H_HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define H_RS "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define H_ES "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"

static void test_valid_each_alg(void **state) {
  fixture *f = *state;
  char c[256];
  ck_jwt_verifier *v = make_keys(SECRET, NULL, NULL);
  check(v, hs(H_HS, claims(c, sizeof(c), "alice")), "alice", NULL);
  ck_jwt_verifier_free(v);
  v = make_keys(NULL, f->rsa_pem, NULL);
  check(v, ckt_jwt(H_RS, claims(c, sizeof(c), "bob"), CKT_RS256, NULL, 0, f->rsa), "bob", NULL);
  ck_jwt_verifier_free(v);
  v = make_keys(NULL, f->ec_pem, NULL);
  check(v, ckt_jwt(H_ES, claims(c, sizeof(c), "carol"), CKT_ES256, NULL, 0, f->ec), "carol", NULL);
  ck_jwt_verifier_free(v);
  /* One verifier with every kind of key takes each algorithm with its own key. */
  char *jwk = ckt_jwk(f->ec, "e1", "ES256");
  char jwks[1024];
  snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", jwk);
  v = make_keys(SECRET, f->rsa_pem, jwks);
  check(v, hs(H_HS, claims(c, sizeof(c), "a")), "a", NULL);
  check(v, ckt_jwt(H_RS, claims(c, sizeof(c), "b"), CKT_RS256, NULL, 0, f->rsa), "b", NULL);
  check(v,
        ckt_jwt("{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims(c, sizeof(c), "c"), CKT_ES256, NULL, 0,
                f->ec),
        "c", NULL);
  /* ES256 with no kid still finds the JWKS key; a wrong kid does not. */
  check(v, ckt_jwt(H_ES, claims(c, sizeof(c), "d"), CKT_ES256, NULL, 0, f->ec), "d", NULL);
  check(v,
        ckt_jwt("{\"alg\":\"ES256\",\"kid\":\"nope\"}", claims(c, sizeof(c), "c"), CKT_ES256, NULL,
                0, f->ec),
        NULL, "no key matches");
  ck_jwt_verifier_free(v);
  free(jwk);
}

static void test_time_claims(void **state) {
  ck_jwt_verifier *v = make_keys(SECRET, NULL, NULL);
  long now = (long)time(NULL);
  char c[256];
  const char *base = "\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"";
  snprintf(c, sizeof(c), "{%s,\"exp\":%ld}", base, now - 3600);
  check(v, hs(H_HS, c), NULL, "expired");
  /* Within the default 60 s leeway an expired token is still accepted. */
  snprintf(c, sizeof(c), "{%s,\"exp\":%ld}", base, now - 20);
  check(v, hs(H_HS, c), "u", NULL);
  snprintf(c, sizeof(c), "{%s,\"exp\":%ld,\"nbf\":%ld}", base, now + 3600, now + 1800);
  check(v, hs(H_HS, c), NULL, "not yet valid");
  snprintf(c, sizeof(c), "{%s,\"exp\":%ld,\"iat\":%ld}", base, now + 3600, now + 1800);
  check(v, hs(H_HS, c), NULL, "issued in the future");
  snprintf(c, sizeof(c), "{%s}", base);
  check(v, hs(H_HS, c), NULL, "no exp");
  snprintf(c, sizeof(c), "{%s,\"exp\":\"%ld\"}", base, now + 3600);
  check(v, hs(H_HS, c), NULL, "exp is not a number");
  snprintf(c, sizeof(c), "{%s,\"exp\":%ld,\"nbf\":null}", base, now + 3600);
  check(v, hs(H_HS, c), NULL, "nbf is not a number");
  /* Fractional NumericDates are allowed (RFC 7519 §2). */
  snprintf(c, sizeof(c), "{%s,\"exp\":%ld.5,\"nbf\":%ld.25}", base, now + 3600, now - 10);
  check(v, hs(H_HS, c), "u", NULL);
  ck_jwt_verifier_free(v);
  /* No leeway: 20 s past exp is expired. */
  ck_jwt_config cfg = {.hs256_secret = SECRET, .leeway_s = -1};
  v = make(&cfg);
  snprintf(c, sizeof(c), "{\"sub\":\"u\",\"exp\":%ld}", now - 20);
  check(v, hs(H_HS, c), NULL, "expired");
  ck_jwt_verifier_free(v);
}

static void test_iss_aud_user(void **state) {
  ck_jwt_verifier *v = make_keys(SECRET, NULL, NULL);
  long exp = (long)time(NULL) + 600;
  char c[512];
  snprintf(c, sizeof(c), "{\"sub\":\"u\",\"iss\":\"https://evil\",\"aud\":\"" AUD "\",\"exp\":%ld}",
           exp);
  check(v, hs(H_HS, c), NULL, "wrong issuer");
  snprintf(c, sizeof(c), "{\"sub\":\"u\",\"aud\":\"" AUD "\",\"exp\":%ld}", exp);
  check(v, hs(H_HS, c), NULL, "wrong issuer");
  snprintf(c, sizeof(c), "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"other\",\"exp\":%ld}", exp);
  check(v, hs(H_HS, c), NULL, "wrong audience");
  snprintf(c, sizeof(c), "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%ld}", exp);
  check(v, hs(H_HS, c), NULL, "wrong audience");
  snprintf(c, sizeof(c),
           "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":[\"x\",\"chatkitx\"],\"exp\":%ld}", exp);
  check(v, hs(H_HS, c), NULL, "wrong audience");
  snprintf(c, sizeof(c),
           "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":[\"x\",1,\"" AUD "\"],\"exp\":%ld}", exp);
  check(v, hs(H_HS, c), "u", NULL);
  const char *bad_subs[] = {"",
                            "\"sub\":123,",
                            "\"sub\":\"\",",
                            "\"sub\":null,",
                            "\"sub\":\"a\\u0000b\",",
                            "\"sub\":\"a\\nb\","};
  for (size_t i = 0; i < sizeof(bad_subs) / sizeof(bad_subs[0]); i++) {
    snprintf(c, sizeof(c), "{%s\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%ld}", bad_subs[i],
             exp);
    check(v, hs(H_HS, c), NULL, "\"sub\" claim");
  }
  ck_jwt_verifier_free(v);
  ck_jwt_config cfg = {.hs256_secret = SECRET, .user_claim = "email"};
  v = make(&cfg);
  snprintf(c, sizeof(c), "{\"sub\":\"u\",\"email\":\"u@example.com\",\"exp\":%ld}", exp);
  check(v, hs(H_HS, c), "u@example.com", NULL);
  snprintf(c, sizeof(c), "{\"sub\":\"u\",\"exp\":%ld}", exp);
  check(v, hs(H_HS, c), NULL, "\"email\" claim");
  ck_jwt_verifier_free(v);
}

/* Replaces the `seg`-th segment (0..2) of `tok` with `repl`; frees `tok`. */
static char *replace_segment(char *tok, int seg, const char *repl) {
  char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
  const char *starts[3] = {tok, d1 + 1, d2 + 1};
  size_t lens[3] = {(size_t)(d1 - tok), (size_t)(d2 - d1 - 1), strlen(d2 + 1)};
  size_t cap = strlen(tok) + strlen(repl) + 4;
  char *out = malloc(cap);
  assert_non_null(out);
  out[0] = '\0';
  size_t n = 0;
  for (int i = 0; i < 3; i++) {
    const char *s = i == seg ? repl : starts[i];
    size_t l = i == seg ? strlen(repl) : lens[i];
    memcpy(out + n, s, l);
    n += l;
    if (i < 2)
      out[n++] = '.';
  }
  out[n] = '\0';
  free(tok);
  return out;
}

static void test_malformed_and_tampered(void **state) {
  ck_jwt_verifier *v = make_keys(SECRET, NULL, NULL);
  char c[256], c2[256];
  claims(c, sizeof(c), "alice");
  /* Tampered payload: a different subject under the original signature. */
  claims(c2, sizeof(c2), "admin");
  char *p2 = ckt_b64url(c2, strlen(c2));
  check(v, replace_segment(hs(H_HS, c), 1, p2), NULL, "bad signature");
  free(p2);
  /* Tampered signature: one character flipped (the first, so no trailing-bit issue). */
  char *t = hs(H_HS, c);
  char *sig = strrchr(t, '.') + 1;
  sig[0] = sig[0] == 'A' ? 'B' : 'A';
  check(v, t, NULL, "bad signature");
  /* Truncated: the last 4 characters (a whole base64 quantum) gone. */
  t = hs(H_HS, c);
  t[strlen(t) - 4] = '\0';
  check(v, t, NULL, "signature");
  t = hs(H_HS, c);
  *strrchr(t, '.') = '\0';
  check(v, t, NULL, "malformed token");
  /* Bad base64url: padding, the standard alphabet, whitespace, non-canonical trailing bits. */
  t = hs(H_HS, c);
  size_t n = strlen(t);
  char *padded = malloc(n + 2);
  memcpy(padded, t, n);
  memcpy(padded + n, "=", 2);
  free(t);
  check(v, padded, NULL, "malformed signature");
  check(v, replace_segment(hs(H_HS, c), 0, "eyJhbGciOiJIUzI1NiJ9+"), NULL, "malformed");
  check(v, replace_segment(hs(H_HS, c), 0, "eyJhbGciOiJIUzI1NiJ9 "), NULL, "malformed");
  /* "e30" is "{}"; "e31" decodes to the same bytes with a nonzero unused bit. */
  check(v, replace_segment(hs(H_HS, c), 0, "e31"), NULL, "malformed token header");
  check(v, replace_segment(hs(H_HS, c), 0, "e30"), NULL, "unsupported alg");
  /* Extra and missing segments. */
  t = hs(H_HS, c);
  n = strlen(t);
  char *extra = malloc(n + 3);
  memcpy(extra, t, n);
  memcpy(extra + n, ".x", 3);
  check(v, extra, NULL, "malformed token");
  check(v, replace_segment(t, 1, ""), NULL, "malformed token");
  check(v, strdup("abc"), NULL, "malformed token");
  check(v, strdup("..."), NULL, "malformed token");
  check(v, strdup(""), NULL, "empty token");
  /* A header that is not an object, a payload that is not JSON (with a valid MAC). */
  check(v, hs("[1]", c), NULL, "malformed token header");
  check(v, hs(H_HS, "not json"), NULL, "malformed token payload");
  check(v, hs(H_HS, "[]"), NULL, "malformed token payload");
  /* Over-long tokens are refused before any work. */
  char *big = malloc(CK_JWT_MAX_TOKEN + 2);
  memset(big, 'A', CK_JWT_MAX_TOKEN + 1);
  big[CK_JWT_MAX_TOKEN + 1] = '\0';
  check(v, big, NULL, "too long");
  ck_jwt_verifier_free(v);
}

static void test_alg_attacks(void **state) {
  fixture *f = *state;
  char c[256];
  claims(c, sizeof(c), "admin");
  ck_jwt_verifier *v = make_keys(SECRET, f->rsa_pem, NULL);
  /* alg none, with and without a signature; other spellings and unsupported algorithms. */
  check(v, ckt_jwt("{\"alg\":\"none\"}", c, CKT_UNSIGNED, NULL, 0, NULL), NULL, "malformed token");
  check(v, ckt_jwt("{\"alg\":\"none\"}", c, CKT_HS256, SECRET, strlen(SECRET), NULL), NULL,
        "unsupported alg");
  check(v, ckt_jwt("{\"alg\":\"None\"}", c, CKT_HS256, SECRET, strlen(SECRET), NULL), NULL,
        "unsupported alg");
  check(v, ckt_jwt("{\"alg\":\"hs256\"}", c, CKT_HS256, SECRET, strlen(SECRET), NULL), NULL,
        "unsupported alg");
  check(v, ckt_jwt("{\"alg\":\"HS512\"}", c, CKT_HS256, SECRET, strlen(SECRET), NULL), NULL,
        "unsupported alg");
  check(v, ckt_jwt("{\"typ\":\"JWT\"}", c, CKT_HS256, SECRET, strlen(SECRET), NULL), NULL,
        "unsupported alg");
  check(v, ckt_jwt("{\"alg\":[\"HS256\"]}", c, CKT_HS256, SECRET, strlen(SECRET), NULL), NULL,
        "unsupported alg");
  check(
      v,
      ckt_jwt("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", c, CKT_HS256, SECRET, strlen(SECRET), NULL),
      NULL, "crit");
  check(v, ckt_jwt("{\"alg\":\"HS256\",\"kid\":7}", c, CKT_HS256, SECRET, strlen(SECRET), NULL),
        NULL, "malformed kid");
  /* The algorithm-confusion forgery: HS256 keyed with the RSA public key PEM. With the RSA key
   * alone the verifier has no HMAC key at all; with a secret too, the MAC is simply wrong. */
  char *forged = ckt_jwt(H_HS, c, CKT_HS256, f->rsa_pem, strlen(f->rsa_pem), NULL);
  check(v, strdup(forged), NULL, "bad signature");
  ck_jwt_verifier_free(v);
  v = make_keys(NULL, f->rsa_pem, NULL);
  check(v, forged, NULL, "HS256 is not accepted");
  /* RS256 signature under an ES256 header and the other way round. */
  check(v, ckt_jwt(H_ES, c, CKT_RS256, NULL, 0, f->rsa), NULL, "ES256 is not accepted");
  ck_jwt_verifier_free(v);
  v = make_keys(NULL, f->ec_pem, NULL);
  check(v, ckt_jwt(H_RS, c, CKT_RS256, NULL, 0, f->rsa), NULL, "RS256 is not accepted");
  check(v, ckt_jwt(H_ES, c, CKT_RS256, NULL, 0, f->rsa), NULL, "bad signature");
  /* A valid ES256 token by another P-256 key. */
  check(v, ckt_jwt(H_ES, c, CKT_ES256, NULL, 0, f->ec2), NULL, "bad signature");
  ck_jwt_verifier_free(v);
  /* Both asymmetric keys configured: each header still needs its own key's signature. */
  char *both = malloc(strlen(f->rsa_pem) + 1);
  memcpy(both, f->rsa_pem, strlen(f->rsa_pem) + 1);
  char *jwk = ckt_jwk(f->ec, NULL, NULL);
  char jwks[1024];
  snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", jwk);
  v = make_keys(NULL, both, jwks);
  check(v, ckt_jwt(H_ES, c, CKT_RS256, NULL, 0, f->rsa), NULL, "bad signature");
  check(v, ckt_jwt(H_RS, c, CKT_ES256, NULL, 0, f->ec), NULL, "bad signature");
  check(v, ckt_jwt(H_RS, c, CKT_RS256, NULL, 0, f->rsa), "admin", NULL);
  ck_jwt_verifier_free(v);
  free(both);
  free(jwk);
}

static void test_config_errors(void **state) {
  fixture *f = *state;
  ck_jwt_verifier *v = (ck_jwt_verifier *)1;
  char why[160];
  ck_jwt_config cfg = {0};
  assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EINVAL);
  assert_null(v);
  assert_non_null(strstr(why, "no key source"));
  cfg.hs256_secret = "short";
  assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EINVAL);
  assert_non_null(strstr(why, "32 to 4096 bytes"));
  cfg = (ck_jwt_config){.public_key_pem = "not a pem"};
  assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EINVAL);
  EVP_PKEY *weak = ckt_gen_rsa(1024);
  EVP_PKEY *p384 = ckt_gen_ec("P-384");
  char *weak_pem = ckt_pubkey_pem(weak), *p384_pem = ckt_pubkey_pem(p384);
  cfg.public_key_pem = weak_pem;
  assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EINVAL);
  assert_non_null(strstr(why, "2048"));
  cfg.public_key_pem = p384_pem;
  assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EINVAL);
  assert_non_null(strstr(why, "P-256"));
  cfg = (ck_jwt_config){.public_key_file = "/nonexistent/key.pem"};
  assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EIO);
  assert_non_null(strstr(why, "public key file"));
  /* A PEM file works like the in-memory PEM. */
  char path[] = "/tmp/ck-jwt-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, f->ec_pem, strlen(f->ec_pem)), (ssize_t)strlen(f->ec_pem));
  close(fd);
  cfg.public_key_file = path;
  v = make(&cfg);
  char c[256];
  check(v, ckt_jwt(H_ES, claims(c, sizeof(c), "f"), CKT_ES256, NULL, 0, f->ec), "f", NULL);
  ck_jwt_verifier_free(v);
  unlink(path);
  /* JWKS documents: not a set, no usable key (weak RSA, wrong use, wrong alg, oct). */
  const char *bad_sets[] = {"[]", "{\"keys\":{}}", "{\"keys\":[]}",
                            "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}"};
  for (size_t i = 0; i < sizeof(bad_sets) / sizeof(bad_sets[0]); i++) {
    cfg = (ck_jwt_config){.jwks_json = bad_sets[i]};
    assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EINVAL);
    assert_non_null(strstr(why, "JWKS"));
  }
  char *jw = ckt_jwk(weak, "w", NULL), *jr = ckt_jwk(f->rsa, "r", "RS384");
  char *je = ckt_jwk(f->ec, "e", NULL);
  char set[4096];
  snprintf(set, sizeof(set), "{\"keys\":[%s,%s]}", jw, jr);
  cfg.jwks_json = set;
  assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EINVAL);
  /* An unusable key next to a good one is skipped, not fatal. */
  snprintf(set, sizeof(set),
           "{\"keys\":[%s,%s,{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}", jw,
           je);
  v = make(&cfg);
  check(v,
        ckt_jwt("{\"alg\":\"ES256\",\"kid\":\"e\"}", claims(c, sizeof(c), "g"), CKT_ES256, NULL, 0,
                f->ec),
        "g", NULL);
  check(v,
        ckt_jwt("{\"alg\":\"RS256\",\"kid\":\"w\"}", claims(c, sizeof(c), "g"), CKT_RS256, NULL, 0,
                weak),
        NULL, "RS256 is not accepted");
  ck_jwt_verifier_free(v);
  /* JWKS URLs: https, or http on loopback only. */
  const char *bad_urls[] = {"http://example.com/jwks", "ftp://127.0.0.1/x",
                            "http://127.0.0.1@evil.example/jwks", "http://127.0.0.1.evil.example/"};
  for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
    cfg = (ck_jwt_config){.jwks_url = bad_urls[i]};
    assert_int_equal(ck_jwt_verifier_new(&cfg, &v, why, sizeof(why)), CK_EINVAL);
    assert_non_null(strstr(why, "https://"));
  }
  free(jw);
  free(jr);
  free(je);
  free(weak_pem);
  free(p384_pem);
  EVP_PKEY_free(weak);
  EVP_PKEY_free(p384);
}

static void test_b64url(void **state) {
  ck_arena *a = ck_arena_new(0);
  unsigned char *out = NULL;
  size_t n = 0;
  assert_int_equal(ck__b64url_decode(a, "", 0, &out, &n), CK_OK);
  assert_int_equal(n, 0);
  assert_int_equal(ck__b64url_decode(a, "Zm9vYg", 6, &out, &n), CK_OK);
  assert_int_equal(n, 4);
  assert_memory_equal(out, "foob", 4);
  assert_int_equal(ck__b64url_decode(a, "Zm9vYh", 6, &out, &n), CK_EINVAL);
  assert_int_equal(ck__b64url_decode(a, "Zm9vY", 5, &out, &n), CK_EINVAL);
  assert_int_equal(ck__b64url_decode(a, "Zm9vYg==", 8, &out, &n), CK_EINVAL);
  assert_int_equal(ck__b64url_decode(a, "-_-_", 4, &out, &n), CK_OK);
  assert_memory_equal(out, "\xfb\xff\xbf", 3);
  assert_int_equal(ck__b64url_decode(a, "+/+/", 4, &out, &n), CK_EINVAL);
  /* Round trip of every length up to 64. */
  unsigned char data[64];
  for (size_t i = 0; i < sizeof(data); i++)
    data[i] = (unsigned char)(i * 37 + 11);
  for (size_t len = 0; len <= sizeof(data); len++) {
    char *enc = ckt_b64url(data, len);
    assert_non_null(enc);
    assert_int_equal(ck__b64url_decode(a, enc, strlen(enc), &out, &n), CK_OK);
    assert_int_equal(n, len);
    assert_memory_equal(out, data, len);
    free(enc);
  }
  ck_arena_free(a);
}

static void test_service_auth(void **state) {
  ck_jwt_verifier *v = make_keys(SECRET, NULL, NULL);
  ck_arena *a = ck_arena_new(0);
  char c[256];
  char *tok = hs(H_HS, claims(c, sizeof(c), "zoe"));
  char bearer[1024];
  snprintf(bearer, sizeof(bearer), "Bearer  %s ", tok);
  ck_http_header h[2] = {{"authorization", bearer}, {NULL, NULL}};
  ck_http_request req = {.method = "POST", .path = "/chatkit", .headers = h, .header_count = 1};
  ck_ctx ctx = {0};
  const char *msg = NULL;
  assert_int_equal(ck_jwt_service_auth(v, &req, a, &ctx, &msg), CK_OK);
  assert_string_equal(ctx.user_id, "zoe");
  snprintf(bearer, sizeof(bearer), "Basic %s", tok);
  ctx.user_id = NULL;
  assert_int_equal(ck_jwt_service_auth(v, &req, a, &ctx, &msg), CK_EINVAL);
  assert_null(ctx.user_id);
  assert_non_null(strstr(msg, "Bearer"));
  snprintf(bearer, sizeof(bearer), "Bearer %sx", tok);
  assert_int_equal(ck_jwt_service_auth(v, &req, a, &ctx, &msg), CK_EINVAL);
  assert_null(strstr(msg, tok));
  req.header_count = 0;
  req.headers = NULL;
  assert_int_equal(ck_jwt_service_auth(v, &req, a, &ctx, &msg), CK_EINVAL);
  assert_string_equal(msg, "missing bearer token");
  free(tok);
  ck_arena_free(a);
  ck_jwt_verifier_free(v);
}

/* ---- A minimal JWKS server on 127.0.0.1 ---------------------------------------------------- */

typedef struct jwks_server {
  int fd, port;
  pthread_t thread;
  atomic_int stop;
  atomic_int hits;
  pthread_mutex_t mu;
  char doc[8192];
  int status;
} jwks_server;

static void *serve(void *ud) {
  jwks_server *s = ud;
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {s->fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
      continue;
    char req[4096];
    size_t got = 0;
    while (got < sizeof(req) - 1) {
      struct pollfd q = {c, POLLIN, 0};
      if (poll(&q, 1, 2000) <= 0)
        break;
      ssize_t r = read(c, req + got, sizeof(req) - 1 - got);
      if (r <= 0)
        break;
      got += (size_t)r;
      req[got] = '\0';
      if (strstr(req, "\r\n\r\n") != NULL)
        break;
    }
    char resp[9000];
    pthread_mutex_lock(&s->mu);
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n%s",
                     s->status, strlen(s->doc), s->doc);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->hits, 1);
    if (n > 0 && write(c, resp, (size_t)n) < 0)
      perror("write");
    close(c);
  }
  return NULL;
}

static void server_set(jwks_server *s, int status, const char *doc) {
  pthread_mutex_lock(&s->mu);
  s->status = status;
  snprintf(s->doc, sizeof(s->doc), "%s", doc);
  pthread_mutex_unlock(&s->mu);
}

static void server_start(jwks_server *s) {
  memset(s, 0, sizeof(*s));
  pthread_mutex_init(&s->mu, NULL);
  s->status = 200;
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(s->fd, 16), 0);
  socklen_t sl = sizeof(sa);
  getsockname(s->fd, (struct sockaddr *)&sa, &sl);
  s->port = ntohs(sa.sin_port);
  assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(jwks_server *s) {
  atomic_store(&s->stop, 1);
  pthread_join(s->thread, NULL);
  close(s->fd);
  pthread_mutex_destroy(&s->mu);
}

static char *kid_token(const char *alg, const char *kid, ckt_sig how, EVP_PKEY *k,
                       const char *sub) {
  char h[128], c[256];
  snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid);
  return ckt_jwt(h, claims(c, sizeof(c), sub), how, NULL, 0, k);
}

static void test_jwks_url(void **state) {
  fixture *f = *state;
  jwks_server s;
  server_start(&s);
  char *j1 = ckt_jwk(f->rsa, "k1", "RS256"), *j2 = ckt_jwk(f->ec, "k2", NULL);
  char *j3 = ckt_jwk(f->rsa2, "k3", NULL);
  char doc[8192], url[128];
  snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", j1, j2);
  server_set(&s, 200, doc);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/.well-known/jwks.json", s.port);
  ck_jwt_config cfg = {
      .jwks_url = url, .issuer = ISS, .audience = AUD, .jwks_min_refresh_ms = 1000};
  ck_jwt_verifier *v = make(&cfg);
  assert_int_equal(atomic_load(&s.hits), 0); /* fetched on first use, not at creation */
  check(v, kid_token("RS256", "k1", CKT_RS256, f->rsa, "u1"), "u1", NULL);
  check(v, kid_token("ES256", "k2", CKT_ES256, f->ec, "u2"), "u2", NULL);
  assert_int_equal(atomic_load(&s.hits), 1);
  /* kid k1 is RSA: an ES256 header naming it finds no key; a token signed by another key under
   * a known kid fails the signature without a refetch. */
  check(v, kid_token("ES256", "k1", CKT_ES256, f->ec, "u"), NULL, "no key matches");
  check(v, kid_token("RS256", "k1", CKT_RS256, f->rsa2, "u"), NULL, "bad signature");
  assert_int_equal(atomic_load(&s.hits), 1);
  /* Rotation: the issuer publishes k3; a k3 token makes the verifier refetch. The one-second
   * refresh limit counts from the first fetch, so wait it out first. */
  snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", j2, j3);
  server_set(&s, 200, doc);
  usleep(1100 * 1000);
  check(v, kid_token("RS256", "k3", CKT_RS256, f->rsa2, "u3"), "u3", NULL);
  assert_int_equal(atomic_load(&s.hits), 2);
  /* k1 is gone now. Unknown kids right after a fetch do not refetch (rate limit)... */
  check(v, kid_token("RS256", "k1", CKT_RS256, f->rsa, "u"), NULL, "no key matches");
  check(v, kid_token("RS256", "zz", CKT_RS256, f->rsa, "u"), NULL, "no key matches");
  assert_int_equal(atomic_load(&s.hits), 2);
  /* ...but once the interval has passed, one does. */
  usleep(1100 * 1000);
  check(v, kid_token("RS256", "zz", CKT_RS256, f->rsa, "u"), NULL, "no key matches");
  assert_int_equal(atomic_load(&s.hits), 3);
  /* A failed refetch keeps the keys we had. */
  server_set(&s, 500, "oops");
  usleep(1100 * 1000);
  check(v, kid_token("RS256", "zz", CKT_RS256, f->rsa, "u"), NULL, "no key matches");
  assert_int_equal(atomic_load(&s.hits), 4);
  check(v, kid_token("ES256", "k2", CKT_ES256, f->ec, "u4"), "u4", NULL);
  ck_jwt_verifier_free(v);

  /* The TTL: with a one-second TTL the next token after it causes a refetch. */
  server_set(&s, 200, doc);
  cfg.jwks_ttl_s = 1;
  cfg.jwks_min_refresh_ms = 1;
  v = make(&cfg);
  check(v, kid_token("ES256", "k2", CKT_ES256, f->ec, "u5"), "u5", NULL);
  int before = atomic_load(&s.hits);
  usleep(1100 * 1000);
  check(v, kid_token("ES256", "k2", CKT_ES256, f->ec, "u5"), "u5", NULL);
  assert_int_equal(atomic_load(&s.hits), before + 1);
  ck_jwt_verifier_free(v);

  /* Fetch failures are clear errors: an HTTP error status, a document without usable keys. */
  cfg.jwks_ttl_s = 0;
  server_set(&s, 404, "{}");
  v = make(&cfg);
  check(v, kid_token("ES256", "k2", CKT_ES256, f->ec, "u"), NULL,
        "JWKS fetch failed: HTTP status 404");
  ck_jwt_verifier_free(v);
  server_set(&s, 200, "{\"keys\":[{\"kty\":\"oct\"}]}");
  v = make(&cfg);
  check(v, kid_token("ES256", "k2", CKT_ES256, f->ec, "u"), NULL, "JWKS fetched but unusable");
  ck_jwt_verifier_free(v);
  int port = s.port;
  server_stop(&s);
  /* Nothing listens any more: connection refused. ck_jwt_verify says CK_EIO. */
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/jwks", port);
  v = make(&cfg);
  ck_arena *a = ck_arena_new(0);
  char *t = kid_token("ES256", "k2", CKT_ES256, f->ec, "u");
  const char *user = NULL;
  char why[192];
  assert_int_equal(ck_jwt_verify(v, t, strlen(t), a, &user, why, sizeof(why)), CK_EIO);
  assert_non_null(strstr(why, "JWKS fetch failed"));
  /* A secret next to the broken JWKS still works for HS256. */
  ck_jwt_verifier_free(v);
  cfg.hs256_secret = SECRET;
  v = make(&cfg);
  char c[256];
  check(v, hs(H_HS, claims(c, sizeof(c), "h")), "h", NULL);
  free(t);
  ck_arena_free(a);
  ck_jwt_verifier_free(v);
  free(j1);
  free(j2);
  free(j3);
}

typedef struct race {
  ck_jwt_verifier *v;
  char *tokens[2];
  atomic_int ok;
} race;

static void *race_worker(void *ud) {
  race *r = ud;
  ck_arena *a = ck_arena_new(0);
  for (int i = 0; i < 40; i++) {
    const char *user = NULL;
    char why[192];
    const char *t = r->tokens[i % 2];
    if (ck_jwt_verify(r->v, t, strlen(t), a, &user, why, sizeof(why)) == CK_OK)
      atomic_fetch_add(&r->ok, 1);
    ck_arena_reset(a);
  }
  ck_arena_free(a);
  return NULL;
}

/* Several workers at once on a cold JWKS cache: one fetch, every token accepted. */
static void test_jwks_concurrent(void **state) {
  fixture *f = *state;
  jwks_server s;
  server_start(&s);
  char *j1 = ckt_jwk(f->rsa, "k1", NULL), *j2 = ckt_jwk(f->ec, "k2", NULL);
  char doc[8192], url[128];
  snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", j1, j2);
  server_set(&s, 200, doc);
  snprintf(url, sizeof(url), "http://localhost:%d/jwks", s.port);
  ck_jwt_config cfg = {.jwks_url = url};
  race r = {.v = make(&cfg)};
  r.tokens[0] = kid_token("RS256", "k1", CKT_RS256, f->rsa, "a");
  r.tokens[1] = kid_token("ES256", "k2", CKT_ES256, f->ec, "b");
  pthread_t th[6];
  for (int i = 0; i < 6; i++)
    assert_int_equal(pthread_create(&th[i], NULL, race_worker, &r), 0);
  for (int i = 0; i < 6; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&r.ok), 6 * 40);
  assert_int_equal(atomic_load(&s.hits), 1);
  ck_jwt_verifier_free(r.v);
  server_stop(&s);
  free(r.tokens[0]);
  free(r.tokens[1]);
  free(j1);
  free(j2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_b64url),
      cmocka_unit_test(test_valid_each_alg),
      cmocka_unit_test(test_time_claims),
      cmocka_unit_test(test_iss_aud_user),
      cmocka_unit_test(test_malformed_and_tampered),
      cmocka_unit_test(test_alg_attacks),
      cmocka_unit_test(test_config_errors),
      cmocka_unit_test(test_service_auth),
      cmocka_unit_test(test_jwks_url),
      cmocka_unit_test(test_jwks_concurrent),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
