/* The JWKS URL cache: the key set of an OpenID provider, fetched with libcurl on the worker
 * thread that first needs it, kept in memory and refetched when it is older than its TTL or
 * when a token names a key id it lacks (issuers rotate keys by publishing a new kid first).
 * Refetches are rate-limited so that tokens with made-up kids cannot make us hammer the
 * provider, and a failed refetch keeps the keys we had.
 *
 * Locking: `mu` guards the key set and the timestamps and is held only briefly; `fetch_mu`
 * serialises fetches so that a burst of requests after a rotation causes one download, while
 * requests whose key is already cached are never blocked behind the network. */
#include "internal.h"

#include <chatkit/auth.h>
#include <chatkit/error.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct ck__jwks {
  char *url;
  int64_t ttl_ms, min_refresh_ms;
  long timeout_ms;
  ck_log *log;
  pthread_mutex_t fetch_mu; /* held for a whole fetch */
  pthread_mutex_t mu;       /* guards everything below */
  ck__jwt_keyset keys;
  bool have;            /* at least one fetch succeeded */
  int64_t fetched_at;   /* monotonic ms of the last successful fetch */
  int64_t attempted_at; /* monotonic ms of the last attempt (successful or not) */
  unsigned generation;  /* bumped by every attempt, so waiters see that one just happened */
  unsigned fetches;     /* successful fetches */
  char last_error[160];
};

static void set_why(char *why, size_t why_len, const char *msg) {
  if (why != NULL && why_len > 0)
    snprintf(why, why_len, "%s", msg);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Plain http is only acceptable when the bytes never leave the machine. */
static bool loopback_http(const char *url) {
  if (strncasecmp(url, "http://", 7) != 0)
    return false;
  const char *auth = url + 7;
  size_t alen = strcspn(auth, "/?#");
  /* Userinfo would let "http://127.0.0.1@evil.example/" pass a naive host check. */
  if (memchr(auth, '@', alen) != NULL)
    return false;
  size_t hlen = auth[0] == '[' ? strcspn(auth, "]") + 1 : strcspn(auth, ":/?#");
  if (hlen > alen)
    return false;
  return (hlen == 9 && strncasecmp(auth, "localhost", 9) == 0) ||
         (hlen == 9 && strncmp(auth, "127.0.0.1", 9) == 0) ||
         (hlen == 5 && strncmp(auth, "[::1]", 5) == 0);
}

int ck__jwks_new(const char *url, int ttl_s, int min_refresh_ms, int timeout_ms, ck_log *log,
                 ck__jwks **out, char *why, size_t why_len) {
  *out = NULL;
  if (strncasecmp(url, "https://", 8) != 0 && !loopback_http(url)) {
    set_why(why, why_len, "JWKS URL must be https:// (http:// only for localhost)");
    return CK_EINVAL;
  }
  if (strlen(url) > 2048 || strpbrk(url, " \t\r\n") != NULL) {
    set_why(why, why_len, "JWKS URL is too long or contains whitespace");
    return CK_EINVAL;
  }
  ck__jwks *j = calloc(1, sizeof(*j));
  if (j == NULL || (j->url = strdup(url)) == NULL) {
    free(j);
    return CK_ENOMEM;
  }
  /* libcurl's global state is reference-counted; this runs on the thread that creates the
   * verifier, before any worker can fetch. */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    free(j->url);
    free(j);
    set_why(why, why_len, "libcurl initialisation failed");
    return CK_ENOMEM;
  }
  j->ttl_ms = (int64_t)(ttl_s > 0 ? ttl_s : 3600) * 1000;
  j->min_refresh_ms = min_refresh_ms > 0 ? min_refresh_ms : 30000;
  j->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
  j->log = log;
  pthread_mutex_init(&j->fetch_mu, NULL);
  pthread_mutex_init(&j->mu, NULL);
  *out = j;
  return CK_OK;
}

void ck__jwks_free(ck__jwks *j) {
  if (j == NULL)
    return;
  ck__jwt_keyset_clear(&j->keys);
  pthread_mutex_destroy(&j->mu);
  pthread_mutex_destroy(&j->fetch_mu);
  free(j->url);
  free(j);
  curl_global_cleanup();
}

unsigned ck__jwks_fetches(ck__jwks *j) {
  pthread_mutex_lock(&j->mu);
  unsigned n = j->fetches;
  pthread_mutex_unlock(&j->mu);
  return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  /* Returning less than given makes curl abort with CURLE_WRITE_ERROR: the cap was hit. */
  return ck_buf_append(ud, data, size * nmemb) == CK_OK ? size * nmemb : 0;
}

/* Downloads the document into `body`. Returns CK_OK or CK_EIO with a reason. */
static int download(ck__jwks *j, ck_buf *body, char *why, size_t why_len) {
  CURL *c = curl_easy_init();
  if (c == NULL) {
    set_why(why, why_len, "JWKS fetch failed: libcurl unavailable");
    return CK_EIO;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, j->url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, j->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, j->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
  /* A redirect may upgrade to https but never go to anything else. */
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CK_JWT_MAX_JWKS_BYTES);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "chatkit-server");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
  CURLcode cc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (cc != CURLE_OK) {
    if (why != NULL && why_len > 0)
      snprintf(why, why_len, "JWKS fetch failed: %s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
    return CK_EIO;
  }
  if (status != 200) {
    if (why != NULL && why_len > 0)
      snprintf(why, why_len, "JWKS fetch failed: HTTP status %ld", status);
    return CK_EIO;
  }
  return CK_OK;
}

/* One fetch attempt; called with fetch_mu held and mu not held. */
static void refresh(ck__jwks *j) {
  char why[160] = "";
  ck_buf body;
  ck_buf_init(&body, CK_JWT_MAX_JWKS_BYTES);
  ck__jwt_keyset fresh = {NULL, 0};
  int rc = download(j, &body, why, sizeof(why));
  if (rc == CK_OK) {
    rc = ck__jwks_parse(body.data ? body.data : "", body.len, &fresh, why, sizeof(why));
    if (rc == CK_ENOMEM)
      set_why(why, sizeof(why), "JWKS fetch failed: out of memory");
    else if (rc != CK_OK) {
      char tmp[160];
      snprintf(tmp, sizeof(tmp), "%s", why);
      snprintf(why, sizeof(why), "JWKS fetched but unusable: %.120s", tmp);
    }
  }
  ck_buf_free(&body);
  char count[24];
  snprintf(count, sizeof(count), "%zu", fresh.n);
  pthread_mutex_lock(&j->mu);
  j->generation++;
  j->attempted_at = now_ms();
  if (rc == CK_OK) {
    /* Swap under the lock; the old keys stay alive for verifications that hold a reference. */
    ck__jwt_keyset old = j->keys;
    j->keys = fresh;
    fresh = old;
    j->have = true;
    j->fetched_at = j->attempted_at;
    j->fetches++;
    j->last_error[0] = '\0';
  } else {
    snprintf(j->last_error, sizeof(j->last_error), "%s", why);
  }
  bool stale = j->have;
  pthread_mutex_unlock(&j->mu);
  ck__jwt_keyset_clear(&fresh);
  if (rc == CK_OK)
    ck_log_event(j->log, CK_LOG_INFO, "jwks fetched", "url", j->url, "keys", count,
                 (const char *)NULL);
  else
    ck_log_event(j->log, CK_LOG_WARN, "jwks fetch failed", "url", j->url, "error", why, "keeping",
                 stale ? "previous keys" : "no keys", (const char *)NULL);
}

/* Whether the cache should be refreshed now for a token with `kid`; called with mu held. */
static bool wants_refresh(const ck__jwks *j, const char *kid, int64_t now) {
  bool may = j->attempted_at == 0 || now - j->attempted_at >= j->min_refresh_ms;
  if (!j->have || now - j->fetched_at >= j->ttl_ms)
    return may;
  if (kid == NULL)
    return false;
  for (size_t i = 0; i < j->keys.n; i++)
    if (j->keys.keys[i].kid != NULL && strcmp(j->keys.keys[i].kid, kid) == 0)
      return false;
  return may;
}

int ck__jwks_find(ck__jwks *j, ck__jwt_alg alg, const char *kid, EVP_PKEY **out, size_t max,
                  size_t *n, char *why, size_t why_len) {
  *n = 0;
  pthread_mutex_lock(&j->mu);
  bool refetch = wants_refresh(j, kid, now_ms());
  unsigned gen = j->generation;
  pthread_mutex_unlock(&j->mu);
  if (refetch) {
    pthread_mutex_lock(&j->fetch_mu);
    pthread_mutex_lock(&j->mu);
    /* Another worker may have fetched while we waited for fetch_mu: use its result. */
    bool still = j->generation == gen;
    pthread_mutex_unlock(&j->mu);
    if (still)
      refresh(j);
    pthread_mutex_unlock(&j->fetch_mu);
  }
  int rc = CK_OK;
  pthread_mutex_lock(&j->mu);
  if (!j->have) {
    set_why(why, why_len, j->last_error[0] ? j->last_error : "JWKS not fetched yet");
    rc = CK_EIO;
  }
  for (size_t i = 0; rc == CK_OK && i < j->keys.n && *n < max; i++) {
    ck__jwt_key *k = &j->keys.keys[i];
    if (k->alg == alg && ck__jwt_kid_matches(k->kid, kid) && EVP_PKEY_up_ref(k->pkey) == 1)
      out[(*n)++] = k->pkey;
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}
