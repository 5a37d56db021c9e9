/* Tests for src/service/ratelimit.c: token buckets on an injected clock, stream caps, and the
 * bound on tracked users. */
#include "service/ratelimit.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SEC 1000000000ull

static uint64_t fake_clock(void *ud) {
  return *(uint64_t *)ud;
}

static void test_bucket_burst_and_refill(void **state) {
  uint64_t now = 1000 * SEC;
  ck__ratelimit_config cfg = {.rpm = 60}; /* one token per second, burst 60 */
  ck__ratelimit *rl = ck__ratelimit_new(&cfg, fake_clock, &now);
  uint32_t retry = 0;
  for (int i = 0; i < 60; i++)
    assert_int_equal(ck__ratelimit_request(rl, "alice", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_request(rl, "alice", &retry), CK__RL_RATE);
  assert_int_equal(retry, 1);
  /* Other users have their own bucket. */
  assert_int_equal(ck__ratelimit_request(rl, "bob", &retry), CK__RL_OK);
  /* Half a token is not enough; the wait is rounded up. */
  now += SEC / 2;
  assert_int_equal(ck__ratelimit_request(rl, "alice", &retry), CK__RL_RATE);
  assert_int_equal(retry, 1);
  now += SEC / 2;
  assert_int_equal(ck__ratelimit_request(rl, "alice", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_request(rl, "alice", &retry), CK__RL_RATE);
  /* A long pause refills up to the burst, not beyond. */
  now += 3600 * SEC;
  for (int i = 0; i < 60; i++)
    assert_int_equal(ck__ratelimit_request(rl, "alice", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_request(rl, "alice", &retry), CK__RL_RATE);
  ck__ratelimit_free(rl);
}

static void test_retry_after_rounds_up(void **state) {
  uint64_t now = 0;
  ck__ratelimit_config cfg = {.rpm = 5}; /* a token every 12 s */
  ck__ratelimit *rl = ck__ratelimit_new(&cfg, fake_clock, &now);
  uint32_t retry = 0;
  for (int i = 0; i < 5; i++)
    assert_int_equal(ck__ratelimit_request(rl, NULL, &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_request(rl, NULL, &retry), CK__RL_RATE);
  assert_int_equal(retry, 12);
  now += 1 * SEC + 1;
  assert_int_equal(ck__ratelimit_request(rl, "", &retry), CK__RL_RATE);
  assert_int_equal(retry, 11); /* 10.999... s rounds up */
  now += 11 * SEC;
  assert_int_equal(ck__ratelimit_request(rl, "", &retry), CK__RL_OK);
  ck__ratelimit_free(rl);
}

static void test_custom_burst_and_disabled(void **state) {
  uint64_t now = 0;
  ck__ratelimit_config cfg = {.rpm = 600, .burst = 2};
  ck__ratelimit *rl = ck__ratelimit_new(&cfg, fake_clock, &now);
  uint32_t retry = 0;
  assert_int_equal(ck__ratelimit_request(rl, "u", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_request(rl, "u", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_request(rl, "u", &retry), CK__RL_RATE);
  now += SEC / 10;
  assert_int_equal(ck__ratelimit_request(rl, "u", &retry), CK__RL_OK);
  ck__ratelimit_free(rl);

  ck__ratelimit_config off = {0};
  rl = ck__ratelimit_new(&off, fake_clock, &now);
  for (int i = 0; i < 10000; i++)
    assert_int_equal(ck__ratelimit_request(rl, "u", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_users(rl), 0); /* nothing to track */
  ck__ratelimit_free(rl);
  assert_int_equal(ck__ratelimit_request(NULL, "u", &retry), CK__RL_OK);
  ck__ratelimit_free(NULL);
}

static void test_stream_caps(void **state) {
  uint64_t now = 0;
  ck__ratelimit_config cfg = {.streams_per_user = 2, .max_streams = 3};
  ck__ratelimit *rl = ck__ratelimit_new(&cfg, fake_clock, &now);
  uint32_t retry = 0;
  assert_int_equal(ck__ratelimit_stream_acquire(rl, "a", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_stream_acquire(rl, "a", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_stream_acquire(rl, "a", &retry), CK__RL_USER_STREAMS);
  assert_int_equal(retry, 1);
  assert_int_equal(ck__ratelimit_stream_acquire(rl, "b", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_stream_acquire(rl, "c", &retry), CK__RL_GLOBAL_STREAMS);
  assert_int_equal(ck__ratelimit_streams(rl), 3);
  ck__ratelimit_stream_release(rl, "a");
  assert_int_equal(ck__ratelimit_stream_acquire(rl, "c", &retry), CK__RL_OK);
  ck__ratelimit_stream_release(rl, "a");
  ck__ratelimit_stream_release(rl, "b");
  ck__ratelimit_stream_release(rl, "c");
  ck__ratelimit_stream_release(rl, "nobody"); /* unknown users are ignored */
  assert_int_equal(ck__ratelimit_streams(rl), 0);
  /* Without a rate limit, users without streams are forgotten at once. */
  assert_int_equal(ck__ratelimit_users(rl), 0);
  ck__ratelimit_free(rl);
}

static void test_tracked_users_are_bounded(void **state) {
  uint64_t now = 0;
  ck__ratelimit_config cfg = {.rpm = 60, .max_users = 100, .streams_per_user = 5};
  ck__ratelimit *rl = ck__ratelimit_new(&cfg, fake_clock, &now);
  uint32_t retry = 0;
  /* A user with an open stream is pinned: eviction never loses its count. */
  assert_int_equal(ck__ratelimit_stream_acquire(rl, "streamer", &retry), CK__RL_OK);
  for (int i = 0; i < 10000; i++) {
    char user[32];
    snprintf(user, sizeof(user), "user-%d", i);
    assert_int_equal(ck__ratelimit_request(rl, user, &retry), CK__RL_OK);
    assert_true(ck__ratelimit_users(rl) <= 101);
  }
  assert_int_equal(ck__ratelimit_streams(rl), 1);
  ck__ratelimit_stream_release(rl, "streamer");
  assert_int_equal(ck__ratelimit_streams(rl), 0);

  /* The most recently seen users are kept: user-9999 still has an emptied bucket. */
  for (int i = 0; i < 59; i++)
    assert_int_equal(ck__ratelimit_request(rl, "user-9999", &retry), CK__RL_OK);
  assert_int_equal(ck__ratelimit_request(rl, "user-9999", &retry), CK__RL_RATE);

  /* Idle users whose buckets are full again are forgotten as new users arrive. */
  now += 3600 * SEC;
  for (int i = 0; i < 60; i++) {
    char user[32];
    snprintf(user, sizeof(user), "later-%d", i);
    ck__ratelimit_request(rl, user, &retry);
  }
  assert_true(ck__ratelimit_users(rl) <= 61);
  ck__ratelimit_free(rl);
}

typedef struct race_arg {
  ck__ratelimit *rl;
  int admitted;
} race_arg;

static void *racer(void *ud) {
  race_arg *a = ud;
  uint32_t retry;
  for (int i = 0; i < 1000; i++)
    if (ck__ratelimit_request(a->rl, "shared", &retry) == CK__RL_OK)
      a->admitted++;
  return NULL;
}

static void test_concurrent_requests(void **state) {
  uint64_t now = 0; /* frozen: no refill, so exactly the burst is admitted */
  ck__ratelimit_config cfg = {.rpm = 500};
  ck__ratelimit *rl = ck__ratelimit_new(&cfg, fake_clock, &now);
  pthread_t t[4];
  race_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (race_arg){rl, 0};
    pthread_create(&t[i], NULL, racer, &args[i]);
  }
  int total = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    total += args[i].admitted;
  }
  assert_int_equal(total, 500);
  ck__ratelimit_free(rl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_burst_and_refill),
      cmocka_unit_test(test_retry_after_rounds_up),
      cmocka_unit_test(test_custom_burst_and_disabled),
      cmocka_unit_test(test_stream_caps),
      cmocka_unit_test(test_tracked_users_are_bounded),
      cmocka_unit_test(test_concurrent_requests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
