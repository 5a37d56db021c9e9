/* Per-user token buckets and stream counts (see ratelimit.h). */
#include "service/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_USERS 100000
#define MIN_BUCKETS 64
/* Idle users checked for expiry per new user: enough to keep up with arrivals, few enough
 * that no call does unbounded work under the lock. */
#define EXPIRE_PER_CALL 2

typedef struct entry {
  struct entry *hnext;       /* hash chain */
  struct entry *prev, *next; /* LRU list; only users without open streams are on it */
  uint64_t hash;
  double tokens;
  uint64_t refilled_ns; /* when `tokens` was last brought up to date */
  uint32_t streams;
  bool in_lru;
  char user[];
} entry;

struct ck__ratelimit {
  ck__ratelimit_config cfg;
  ck__rl_clock_fn clock;
  void *clock_ud;
  pthread_mutex_t mu;
  entry **buckets;
  size_t nbuckets; /* a power of two */
  size_t nusers;
  size_t nstreams;
  entry *lru_head, *lru_tail; /* head: most recently used */
};

static uint64_t mono_ns(void *ud) {
  (void)ud;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t hash_of(const char *s) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211u;
  }
  return h;
}

ck__ratelimit *ck__ratelimit_new(const ck__ratelimit_config *cfg, ck__rl_clock_fn clock,
                                 void *clock_ud) {
  ck__ratelimit *rl = calloc(1, sizeof(*rl));
  if (rl == NULL)
    return NULL;
  if (cfg != NULL)
    rl->cfg = *cfg;
  if (rl->cfg.rpm < 0)
    rl->cfg.rpm = 0;
  if (rl->cfg.burst <= 0)
    rl->cfg.burst = rl->cfg.rpm;
  if (rl->cfg.max_users == 0)
    rl->cfg.max_users = DEFAULT_MAX_USERS;
  rl->clock = clock ? clock : mono_ns;
  rl->clock_ud = clock_ud;
  rl->nbuckets = MIN_BUCKETS;
  rl->buckets = calloc(rl->nbuckets, sizeof(*rl->buckets));
  if (rl->buckets == NULL) {
    free(rl);
    return NULL;
  }
  pthread_mutex_init(&rl->mu, NULL);
  return rl;
}

void ck__ratelimit_free(ck__ratelimit *rl) {
  if (rl == NULL)
    return;
  for (size_t i = 0; i < rl->nbuckets; i++) {
    entry *e = rl->buckets[i];
    while (e != NULL) {
      entry *next = e->hnext;
      free(e);
      e = next;
    }
  }
  free(rl->buckets);
  pthread_mutex_destroy(&rl->mu);
  free(rl);
}

/* ---- The LRU list ---- */

static void lru_unlink(ck__ratelimit *rl, entry *e) {
  if (!e->in_lru)
    return;
  if (e->prev)
    e->prev->next = e->next;
  else
    rl->lru_head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    rl->lru_tail = e->prev;
  e->prev = e->next = NULL;
  e->in_lru = false;
}

static void lru_push_head(ck__ratelimit *rl, entry *e) {
  e->prev = NULL;
  e->next = rl->lru_head;
  if (rl->lru_head)
    rl->lru_head->prev = e;
  else
    rl->lru_tail = e;
  rl->lru_head = e;
  e->in_lru = true;
}

/* ---- The table ---- */

static entry *find(ck__ratelimit *rl, const char *user, uint64_t h) {
  for (entry *e = rl->buckets[h & (rl->nbuckets - 1)]; e != NULL; e = e->hnext)
    if (e->hash == h && strcmp(e->user, user) == 0)
      return e;
  return NULL;
}

static void remove_entry(ck__ratelimit *rl, entry *e) {
  entry **p = &rl->buckets[e->hash & (rl->nbuckets - 1)];
  while (*p != e)
    p = &(*p)->hnext;
  *p = e->hnext;
  lru_unlink(rl, e);
  rl->nusers--;
  free(e);
}

/* Doubles the bucket array when the table is full; staying at the old size (out of memory)
 * only makes chains longer. */
static void maybe_grow(ck__ratelimit *rl) {
  if (rl->nusers < rl->nbuckets)
    return;
  size_t n = rl->nbuckets * 2;
  entry **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return;
  for (size_t i = 0; i < rl->nbuckets; i++) {
    entry *e = rl->buckets[i];
    while (e != NULL) {
      entry *next = e->hnext;
      e->hnext = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
      e = next;
    }
  }
  free(rl->buckets);
  rl->buckets = b;
  rl->nbuckets = n;
}

static void refill(ck__ratelimit *rl, entry *e, uint64_t now) {
  if (rl->cfg.rpm > 0 && now > e->refilled_ns) {
    double add = (double)(now - e->refilled_ns) * rl->cfg.rpm / 60e9;
    e->tokens = fmin((double)rl->cfg.burst, e->tokens + add);
  }
  if (now > e->refilled_ns)
    e->refilled_ns = now;
}

/* A user without open streams whose bucket is full carries no state worth keeping. */
static bool forgettable(ck__ratelimit *rl, entry *e, uint64_t now) {
  if (e->streams > 0)
    return false;
  refill(rl, e, now);
  return rl->cfg.rpm == 0 || e->tokens >= (double)rl->cfg.burst;
}

static entry *get_or_create(ck__ratelimit *rl, const char *user, uint64_t now) {
  uint64_t h = hash_of(user);
  entry *e = find(rl, user, h);
  if (e != NULL) {
    if (e->in_lru) {
      lru_unlink(rl, e);
      lru_push_head(rl, e);
    }
    return e;
  }
  for (int i = 0; i < EXPIRE_PER_CALL && rl->lru_tail && forgettable(rl, rl->lru_tail, now); i++)
    remove_entry(rl, rl->lru_tail);
  if (rl->nusers >= rl->cfg.max_users && rl->lru_tail != NULL)
    remove_entry(rl, rl->lru_tail);
  size_t len = strlen(user);
  e = calloc(1, sizeof(*e) + len + 1);
  if (e == NULL)
    return NULL;
  memcpy(e->user, user, len + 1);
  e->hash = h;
  e->tokens = (double)rl->cfg.burst;
  e->refilled_ns = now;
  maybe_grow(rl);
  entry **slot = &rl->buckets[h & (rl->nbuckets - 1)];
  e->hnext = *slot;
  *slot = e;
  rl->nusers++;
  lru_push_head(rl, e);
  return e;
}

/* ---- The limits ---- */

ck__rl_verdict ck__ratelimit_request(ck__ratelimit *rl, const char *user, uint32_t *retry_after_s) {
  if (rl == NULL || rl->cfg.rpm == 0)
    return CK__RL_OK;
  pthread_mutex_lock(&rl->mu);
  uint64_t now = rl->clock(rl->clock_ud);
  entry *e = get_or_create(rl, user ? user : "", now);
  ck__rl_verdict v = CK__RL_NOMEM;
  if (e != NULL) {
    refill(rl, e, now);
    if (e->tokens >= 1.0) {
      e->tokens -= 1.0;
      v = CK__RL_OK;
    } else {
      double secs = ceil((1.0 - e->tokens) * 60.0 / rl->cfg.rpm);
      if (retry_after_s != NULL)
        *retry_after_s = secs < 1 ? 1 : secs > 86400 ? 86400 : (uint32_t)secs;
      v = CK__RL_RATE;
    }
  }
  pthread_mutex_unlock(&rl->mu);
  return v;
}

ck__rl_verdict ck__ratelimit_stream_acquire(ck__ratelimit *rl, const char *user,
                                            uint32_t *retry_after_s) {
  if (rl == NULL)
    return CK__RL_OK;
  pthread_mutex_lock(&rl->mu);
  ck__rl_verdict v = CK__RL_OK;
  if (rl->cfg.max_streams > 0 && rl->nstreams >= (size_t)rl->cfg.max_streams) {
    v = CK__RL_GLOBAL_STREAMS;
  } else {
    entry *e = get_or_create(rl, user ? user : "", rl->clock(rl->clock_ud));
    if (e == NULL) {
      v = CK__RL_NOMEM;
    } else if (rl->cfg.streams_per_user > 0 && e->streams >= (uint32_t)rl->cfg.streams_per_user) {
      v = CK__RL_USER_STREAMS;
    } else {
      e->streams++;
      rl->nstreams++;
      lru_unlink(rl, e); /* pinned until its streams end */
    }
  }
  pthread_mutex_unlock(&rl->mu);
  if (v != CK__RL_OK && retry_after_s != NULL)
    *retry_after_s = 1;
  return v;
}

void ck__ratelimit_stream_release(ck__ratelimit *rl, const char *user) {
  if (rl == NULL)
    return;
  pthread_mutex_lock(&rl->mu);
  const char *u = user ? user : "";
  entry *e = find(rl, u, hash_of(u));
  if (e != NULL && e->streams > 0) {
    e->streams--;
    rl->nstreams--;
    if (e->streams == 0) {
      if (rl->cfg.rpm == 0)
        remove_entry(rl, e);
      else
        lru_push_head(rl, e);
    }
  }
  pthread_mutex_unlock(&rl->mu);
}

size_t ck__ratelimit_streams(ck__ratelimit *rl) {
  if (rl == NULL)
    return 0;
  pthread_mutex_lock(&rl->mu);
  size_t n = rl->nstreams;
  pthread_mutex_unlock(&rl->mu);
  return n;
}

size_t ck__ratelimit_users(ck__ratelimit *rl) {
  if (rl == NULL)
    return 0;
  pthread_mutex_lock(&rl->mu);
  size_t n = rl->nusers;
  pthread_mutex_unlock(&rl->mu);
  return n;
}
