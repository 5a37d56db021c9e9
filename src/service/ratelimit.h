/* Internal: per-user request rate limits and stream caps for the service.
 *
 * Each user (ctx->user_id after authentication; the anonymous users share the key "") has a
 * token bucket refilled at `rpm` tokens per minute up to `burst`, and a count of open streams.
 * The number of users tracked is capped: users with no open stream are kept in
 * least-recently-used order, the least recently seen is forgotten when the cap is reached,
 * and users idle long enough for their bucket to be full again are forgotten as new requests
 * come (a forgotten user is indistinguishable from one with a full bucket). Users with open
 * streams are never forgotten, since their stream count must come back down; there are at
 * most as many of them as open streams.
 *
 * Threads: every function is thread-safe (one mutex, held for a hash lookup and a few
 * arithmetic operations).
 */
#ifndef CK_SERVICE_RATELIMIT_H
#define CK_SERVICE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck__ratelimit ck__ratelimit;

typedef struct ck__ratelimit_config {
  int rpm;              /* requests per minute per user; 0: no limit */
  int burst;            /* bucket size; 0: rpm */
  int streams_per_user; /* concurrent streams per user; 0: no limit */
  int max_streams;      /* concurrent streams in all; 0: no limit */
  size_t max_users;     /* users tracked at once; 0: 100000 */
} ck__ratelimit_config;

/* Why a request was refused. */
typedef enum ck__rl_verdict {
  CK__RL_OK = 0,
  CK__RL_RATE = 1,           /* the user's bucket is empty */
  CK__RL_USER_STREAMS = 2,   /* the user has streams_per_user streams open */
  CK__RL_GLOBAL_STREAMS = 3, /* max_streams streams are open */
  CK__RL_NOMEM = 4,          /* the user could not be tracked (out of memory) */
} ck__rl_verdict;

/** Monotonic nanoseconds; injectable so tests control time. */
typedef uint64_t (*ck__rl_clock_fn)(void *ud);

/** Creates a limiter. `clock` NULL uses CLOCK_MONOTONIC. Returns NULL when out of memory. */
ck__ratelimit *ck__ratelimit_new(const ck__ratelimit_config *cfg, ck__rl_clock_fn clock,
                                 void *clock_ud);

/** Frees a limiter. NULL is a no-op. */
void ck__ratelimit_free(ck__ratelimit *rl);

/** Takes one request token from `user`'s bucket (NULL is ""). Returns CK__RL_OK, or
 * CK__RL_RATE with `*retry_after_s` set to the whole seconds (rounded up, at least 1) until a
 * token is available. With rpm 0 it always admits. */
ck__rl_verdict ck__ratelimit_request(ck__ratelimit *rl, const char *user, uint32_t *retry_after_s);

/** Admits one more stream for `user`: returns CK__RL_OK (release it later with
 * ck__ratelimit_stream_release), or CK__RL_USER_STREAMS / CK__RL_GLOBAL_STREAMS with
 * `*retry_after_s` set to 1 (a stream's end cannot be predicted; clients should back off), or
 * CK__RL_NOMEM. Streams are counted even when no cap is set. */
ck__rl_verdict ck__ratelimit_stream_acquire(ck__ratelimit *rl, const char *user,
                                            uint32_t *retry_after_s);

/** Releases a stream admitted for `user`. */
void ck__ratelimit_stream_release(ck__ratelimit *rl, const char *user);

/** Streams admitted and not released, over all users. */
size_t ck__ratelimit_streams(ck__ratelimit *rl);

/** Users currently tracked (for tests). */
size_t ck__ratelimit_users(ck__ratelimit *rl);

#endif
