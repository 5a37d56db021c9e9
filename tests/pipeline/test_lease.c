/* Tests of the stream lease in the pipeline: one response at a time per thread. A second
 * streaming request on a thread that is busy fails before any event and any write with
 * CK_ECONFLICT; the lease is given back however a stream ends (complete, failed, cancelled,
 * refused half-way through its prefix work, or finished asynchronously through
 * ck_stream_drain); a long stream renews it; a stream whose lease was taken over stops. The
 * store is the harness's memory store, whose lease calls are counted. */
#include "support/pipeline_harness.h"

#include <chatkit/error.h>
#include <chatkit/protocol.h>
#include <chatkit/server.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef enum mode {
  M_PROGRESS, /* one progress event */
  M_BLOCK,    /* one progress event, then waits until the test lets it go */
  M_FAIL,     /* fails with a custom error */
  M_ASYNC,    /* pushes one event and returns CK_PENDING; the test ends it */
  M_SLOW,     /* `steps` progress events, `pause_ms` apart */
  M_STOLEN,   /* sleeps past the TTL, lets an intruder take the lease, then emits */
} mode;

typedef struct scenario {
  mode m;
  int steps;
  int pause_ms;
  hx *h;
  int emit_rc; /* the first failing emit's code */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int phase; /* M_BLOCK: 1 the handler waits, 2 the test let it go */
} scenario;

static int note(scenario *sc, int rc) {
  if (rc != CK_OK && sc->emit_rc == CK_OK)
    sc->emit_rc = rc;
  return rc;
}

static int progress(scenario *sc, ck_stream *s, const char *text) {
  return note(sc, ck_emit_canonical(s, ck_event_progress(ck_stream_scratch(s), NULL, text)));
}

static int respond(void *ud, ck_stream *s, const ck_json *user_message) {
  scenario *sc = ud;
  int rc = CK_OK;
  switch (sc->m) {
  case M_PROGRESS:
    return progress(sc, s, "one");
  case M_BLOCK:
    rc = progress(sc, s, "one");
    pthread_mutex_lock(&sc->mu);
    sc->phase = 1;
    pthread_cond_broadcast(&sc->cv);
    while (sc->phase != 2)
      pthread_cond_wait(&sc->cv, &sc->mu);
    pthread_mutex_unlock(&sc->mu);
    return rc == CK_OK ? progress(sc, s, "two") : rc;
  case M_FAIL:
    return ck_stream_fail_custom(s, "nope", false);
  case M_ASYNC:
    rc = ck_stream_push_canonical(s, ck_event_progress(ck_stream_scratch(s), NULL, "later"));
    return rc == CK_OK ? CK_PENDING : rc;
  case M_SLOW:
    for (int i = 0; rc == CK_OK && i < sc->steps; i++) {
      rc = ck_stream_sleep(s, sc->pause_ms);
      if (rc == CK_OK)
        rc = progress(sc, s, "step");
    }
    return rc;
  case M_STOLEN: {
    rc = progress(sc, s, "before");
    if (rc == CK_OK)
      rc = ck_stream_sleep(s, sc->pause_ms);
    /* The lease has expired: another process takes the thread over. */
    ck_store *inner = sc->h->inner;
    const char *tid = ck_json_object_get_str(ck_stream_thread(s), "id");
    if (rc == CK_OK)
      rc = inner->vt->acquire_stream(inner, tid, "intruder", 60000, &hx_user1);
    return rc == CK_OK ? progress(sc, s, "after") : rc;
  }
  }
  return CK_EINVAL;
}

static scenario *new_scenario(mode m) {
  scenario *sc = calloc(1, sizeof(*sc));
  assert_non_null(sc);
  sc->m = m;
  pthread_mutex_init(&sc->mu, NULL);
  pthread_cond_init(&sc->cv, NULL);
  return sc;
}

static void free_scenario(scenario *sc) {
  pthread_cond_destroy(&sc->cv);
  pthread_mutex_destroy(&sc->mu);
  free(sc);
}

static hx *setup(scenario *sc, int lease_ms) {
  hx *h = malloc(sizeof(*h));
  assert_non_null(h);
  ck_handlers handlers = {0};
  handlers.ud = sc;
  handlers.respond = respond;
  hx_init_lease(h, &handlers, lease_ms);
  sc->h = h;
  return h;
}

static void teardown(hx *h) {
  hx_free(h);
  free(h);
}

#define CREATE                                                                                     \
  "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_text\","     \
  "\"text\":\"hi\"}],\"attachments\":[],\"inference_options\":{}}}}"
#define ADD_MSG                                                                                    \
  "{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"thr_0001\",\"input\":{"      \
  "\"content\":[{\"type\":\"input_text\",\"text\":\"more\"}],\"attachments\":[],"                  \
  "\"inference_options\":{}}}}"
#define RETRY(item)                                                                                \
  "{\"type\":\"threads.retry_after_item\",\"params\":{\"thread_id\":\"thr_0001\","                 \
  "\"item_id\":\"" item "\"}}"
#define BUSY "thread thr_0001 is busy with another response"

/* The number of stored items of thr_0001. */
static size_t stored_count(hx *h) {
  char *got[64];
  size_t n = hx_stored_items(h, NULL, "thr_0001", got, 64);
  hx_free_strings(got, n);
  return n;
}

/* While one response runs on a thread, a second request on it is refused before it sends or
 * writes anything; once the first ends, the thread takes requests again. */
static void test_busy_thread_refused(void **state) {
  scenario *sc = new_scenario(M_PROGRESS);
  hx *h = setup(sc, 0);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  assert_int_equal(h->acquire_calls, 1); /* a new thread is leased too */
  assert_int_equal(h->release_calls, 1);
  size_t items = stored_count(h);

  sc->m = M_BLOCK;
  hx_clear_frames(h);
  hx_runner r = {NULL, h, 0};
  assert_int_equal(hx_open_stream(h, NULL, ADD_MSG, &r.s), CK_OK);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, hx_run_stream, &r), 0);
  pthread_mutex_lock(&sc->mu);
  while (sc->phase != 1)
    pthread_cond_wait(&sc->cv, &sc->mu);
  pthread_mutex_unlock(&sc->mu);
  size_t frames = h->nframes;
  size_t items_during = stored_count(h);
  assert_int_equal(items_during, items + 1); /* the first request's user message */

  /* The second request: no event, no write, CK_ECONFLICT with the busy message. */
  ck_stream *b = NULL;
  assert_int_equal(hx_open_stream(h, NULL, ADD_MSG, &b), CK_OK);
  assert_int_equal(ck_stream_run(b, hx_sink(h)), CK_ECONFLICT);
  assert_int_equal(ck_stream_events_sent(b), 0);
  assert_int_equal(ck_stream_error(b)->code, CK_ECONFLICT);
  assert_string_equal(ck_stream_error(b)->message, BUSY);
  ck_stream_free(b);
  assert_int_equal(h->nframes, frames);
  assert_int_equal(stored_count(h), items_during);
  /* Every other streaming type on the busy thread is refused the same way. */
  assert_int_equal(hx_open_stream(h, NULL, RETRY("msg_0001"), &b), CK_OK);
  assert_int_equal(ck_stream_run(b, hx_sink(h)), CK_ECONFLICT);
  assert_string_equal(ck_stream_error(b)->message, BUSY);
  ck_stream_free(b);
  assert_int_equal(stored_count(h), items_during);

  pthread_mutex_lock(&sc->mu);
  sc->phase = 2;
  pthread_cond_broadcast(&sc->cv);
  pthread_mutex_unlock(&sc->mu);
  pthread_join(th, NULL);
  assert_int_equal(r.rc, CK_OK);
  ck_stream_free(r.s);

  /* The first response ended and gave the lease back: the next request streams. */
  sc->m = M_PROGRESS;
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);
  assert_true(hx_find(h, "\"progress_update\"") >= 0);
  /* Five acquires (create, the first, two refused, the last); only the three held released. */
  assert_int_equal(h->acquire_calls, 5);
  assert_int_equal(h->release_calls, 3);
  teardown(h);
  free_scenario(sc);
}

/* The lease is given back however the stream ends. */
static void test_released_on_every_end(void **state) {
  scenario *sc = new_scenario(M_PROGRESS);
  hx *h = setup(sc, 0);
  ck_error_info err;
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);

  /* A handler failure: an error event, then the end. */
  sc->m = M_FAIL;
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);
  assert_true(hx_find(h, "\"type\":\"error\"") >= 0);
  assert_int_equal(h->release_calls, h->acquire_calls);

  /* The client went away on the first frame after the prefix work. */
  sc->m = M_PROGRESS;
  h->cancel_at = 2;
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_ECANCELLED);
  h->cancel_at = 0;
  assert_int_equal(h->release_calls, h->acquire_calls);

  /* The prefix work ended the stream, or refused the request, after the lease was taken. */
  assert_int_equal(hx_request(h, NULL, RETRY("msg_9999"), NULL, &err), CK_OK); /* unknown item */
  assert_int_equal(h->release_calls, h->acquire_calls);
  assert_int_equal(hx_request(h, NULL,
                              "{\"type\":\"threads.add_client_tool_output\",\"params\":{"
                              "\"thread_id\":\"thr_0001\",\"result\":null}}",
                              NULL, &err),
                   CK_ESTATE);
  assert_int_equal(h->release_calls, h->acquire_calls);
  int acquired = h->acquire_calls;
  assert_int_equal(hx_request(h, NULL,
                              "{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":"
                              "\"thr_none\",\"input\":{\"content\":[],\"attachments\":[],"
                              "\"inference_options\":{}}}}",
                              NULL, &err),
                   CK_ENOTFOUND);
  assert_int_equal(h->acquire_calls, acquired); /* no lease on a thread that does not exist */

  /* A store failure while acquiring is a store error, before any event. */
  h->fail_acquire = CK_ESTORE;
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, &err), CK_ESTORE);
  assert_int_equal(h->nframes, 0);
  h->fail_acquire = CK_OK;

  /* After all that, the thread is free. */
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);
  assert_int_equal(h->release_calls, h->acquire_calls - 1); /* the failed acquire held nothing */
  teardown(h);
  free_scenario(sc);
}

/* An asynchronous handler's stream ends in ck_stream_drain: the lease is held until then. */
static void test_async_release_on_drain(void **state) {
  scenario *sc = new_scenario(M_PROGRESS);
  hx *h = setup(sc, 0);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  sc->m = M_ASYNC;
  ck_stream *s = NULL;
  assert_int_equal(hx_open_stream(h, NULL, ADD_MSG, &s), CK_OK);
  assert_int_equal(ck_stream_run(s, hx_sink(h)), CK_PENDING);
  int released = h->release_calls;
  /* Still streaming: another request is refused. */
  sc->m = M_PROGRESS;
  ck_stream *b = NULL;
  assert_int_equal(hx_open_stream(h, NULL, ADD_MSG, &b), CK_OK);
  assert_int_equal(ck_stream_run(b, hx_sink(h)), CK_ECONFLICT);
  ck_stream_free(b);
  /* The producer ends; the drain finishes the stream and gives the lease back. */
  assert_int_equal(ck_stream_push_end(s), CK_OK);
  assert_int_equal(ck_stream_drain(s), CK_OK);
  assert_int_equal(h->release_calls, released + 1);
  assert_true(hx_find(h, "later") >= 0);
  ck_stream_free(s);
  assert_int_equal(h->release_calls, released + 1); /* freeing does not release twice */
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);

  /* A stream freed before its end (the owner gave up on it) lets go of the lease too. */
  sc->m = M_ASYNC;
  assert_int_equal(hx_open_stream(h, NULL, ADD_MSG, &s), CK_OK);
  assert_int_equal(ck_stream_run(s, hx_sink(h)), CK_PENDING);
  ck_stream_free(s);
  sc->m = M_PROGRESS;
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);
  teardown(h);
  free_scenario(sc);
}

/* A stream longer than the TTL renews its lease and is never refused or interrupted. */
static void test_long_stream_renews(void **state) {
  scenario *sc = new_scenario(M_PROGRESS);
  hx *h = setup(sc, 60);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  sc->m = M_SLOW;
  sc->steps = 10;
  sc->pause_ms = 20; /* 200 ms in all, with an event every 20 ms: renewed about every 40 ms */
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);
  assert_int_equal(sc->emit_rc, CK_OK);
  assert_true(h->renew_calls >= 2);
  assert_true(h->renew_calls <= 10);
  assert_int_equal(h->release_calls, h->acquire_calls);
  teardown(h);
  free_scenario(sc);
}

/* A stream that paused past its TTL and lost the lease to another holder stops with an error
 * instead of interleaving with the new response, and leaves the new holder's lease alone. */
static void test_stolen_lease_stops(void **state) {
  scenario *sc = new_scenario(M_PROGRESS);
  hx *h = setup(sc, 40);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  sc->m = M_STOLEN;
  sc->pause_ms = 120;
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);
  assert_int_equal(sc->emit_rc, CK_ECONFLICT);
  assert_true(hx_find(h, "before") >= 0);
  assert_true(hx_find(h, "after") < 0);
  assert_true(hx_find(h, "\"type\":\"error\"") >= 0);
  /* The intruder still holds the thread. */
  assert_int_equal(h->inner->vt->acquire_stream(h->inner, "thr_0001", "x", 1000, &hx_user1),
                   CK_ECONFLICT);
  assert_int_equal(h->inner->vt->release_stream(h->inner, "thr_0001", "intruder", &hx_user1),
                   CK_OK);
  sc->m = M_PROGRESS;
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);
  teardown(h);
  free_scenario(sc);
}

/* A negative TTL turns leases off: the store is never asked. */
static void test_leases_off(void **state) {
  scenario *sc = new_scenario(M_PROGRESS);
  hx *h = setup(sc, -1);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  assert_int_equal(hx_request(h, NULL, ADD_MSG, NULL, NULL), CK_OK);
  assert_int_equal(h->acquire_calls, 0);
  assert_int_equal(h->release_calls, 0);
  teardown(h);
  free_scenario(sc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_busy_thread_refused),    cmocka_unit_test(test_released_on_every_end),
      cmocka_unit_test(test_async_release_on_drain), cmocka_unit_test(test_long_stream_renews),
      cmocka_unit_test(test_stolen_lease_stops),     cmocka_unit_test(test_leases_off),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
