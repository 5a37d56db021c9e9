/* Concurrency smoke test against the real binary: 50 streams at once, each on its own
 * thread and connection, all complete with the full reply text; then 20 threads.list calls
 * in parallel all see the 50 threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/http_client.h"
#include "support/proc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAMS 50
#define LISTS 20
#define TOKENS 8

static char dir[256];
static ck_proc srv;
static int port;

/* Start all clients together so the streams really overlap. */
static pthread_barrier_t barrier;

typedef struct job {
  int index;
  bool ok;
  char why[256];
  char thread_id[64];
} job;

static int setup(void **state) {
  (void)state;
  if (ck_tmpdir_make(dir, sizeof(dir)) != 0)
    return -1;
  char store[320];
  snprintf(store, sizeof(store), "sqlite:%s/chatkit.db", dir);
  /* Paced tokens keep all 50 streams open at the same time. */
  /* Every request is the anonymous user: the per-user limits would refuse most of this load. */
  const char *args[] = {"--store",
                        store,
                        "--demo-delay-ms",
                        "20",
                        "--demo-tokens",
                        "8",
                        "--rate-limit-rpm",
                        "0",
                        "--max-streams-per-user",
                        "0",
                        NULL};
  port = ck_server_start(&srv, dir, args, NULL);
  return port > 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ck_proc_kill_all();
  ck_tmpdir_remove(dir);
  return 0;
}

/* The first TOKENS tokens of the demo's reply to `said`. */
static void expected_reply(const char *said, char *out, size_t cap) {
  char full[512];
  snprintf(full, sizeof(full),
           "You said: \"%s\". This is the built-in demo model of chatkit-server. Set "
           "OPENAI_API_KEY or OPENAI_BASE_URL to talk to a real model.",
           said);
  size_t i = 0;
  for (int tok = 0; tok < TOKENS && full[i]; tok++) {
    while (full[i] && full[i] != ' ')
      i++;
    while (full[i] == ' ')
      i++;
  }
  snprintf(out, cap, "%.*s", (int)i, full);
}

/* cmocka's assertions are not thread-safe: workers report through `ok` and `why`. */
static void *stream_worker(void *arg) {
  job *j = arg;
  ck_arena *a = ck_arena_new(0);
  char said[32], body[512], want[512];
  snprintf(said, sizeof(said), "client %d", j->index);
  snprintf(body, sizeof(body),
           "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":"
           "\"input_text\",\"text\":\"%s\"}],\"attachments\":[],\"inference_options\":{}}}}",
           said);
  expected_reply(said, want, sizeof(want));
  pthread_barrier_wait(&barrier);
  ck_json *events = hc_stream(a, port, body);
  if (events == NULL) {
    snprintf(j->why, sizeof(j->why), "no stream");
  } else {
    const ck_json *done = NULL;
    size_t deltas = 0;
    for (size_t i = 0; i < ck_json_array_size(events); i++) {
      const ck_json *ev = ck_json_array_get(events, i);
      const char *type = ck_json_object_get_str(ev, "type");
      const char *ut = ck_json_object_get_str(ck_json_object_get(ev, "update"), "type");
      if (ut != NULL && strcmp(ut, "assistant_message.content_part.text_delta") == 0)
        deltas++;
      const ck_json *item = ck_json_object_get(ev, "item");
      const char *it = ck_json_object_get_str(item, "type");
      if (strcmp(type, "thread.item.done") == 0 && it && strcmp(it, "assistant_message") == 0)
        done = item;
      if (strcmp(type, "thread.created") == 0)
        snprintf(j->thread_id, sizeof(j->thread_id), "%s",
                 ck_json_object_get_str(ck_json_object_get(ev, "thread"), "id"));
    }
    const char *text = done ? hc_item_text(a, done) : NULL;
    if (text == NULL)
      snprintf(j->why, sizeof(j->why), "no final assistant item");
    else if (strcmp(text, want) != 0)
      snprintf(j->why, sizeof(j->why), "text \"%.100s\", want \"%.100s\"", text, want);
    else if (deltas != TOKENS)
      snprintf(j->why, sizeof(j->why), "%zu deltas", deltas);
    else
      j->ok = true;
  }
  ck_arena_free(a);
  return NULL;
}

static void *list_worker(void *arg) {
  job *j = arg;
  pthread_barrier_wait(&barrier);
  hc_response r;
  ck_arena *a = ck_arena_new(0);
  if (hc_chatkit(port, "{\"type\":\"threads.list\",\"params\":{\"limit\":100}}", &r) != 0) {
    snprintf(j->why, sizeof(j->why), "no response");
  } else if (r.status != 200) {
    snprintf(j->why, sizeof(j->why), "status %d", r.status);
  } else {
    ck_json *page = hc_json(a, r.body, r.body_len);
    size_t n = ck_json_array_size(ck_json_object_get(page, "data"));
    if (n != STREAMS)
      snprintf(j->why, sizeof(j->why), "%zu threads listed", n);
    else
      j->ok = true;
  }
  hc_response_free(&r);
  ck_arena_free(a);
  return NULL;
}

static void run_parallel(void *(*fn)(void *), job *jobs, size_t n) {
  pthread_t tids[STREAMS];
  assert_true(n <= STREAMS);
  assert_int_equal(pthread_barrier_init(&barrier, NULL, (unsigned)n), 0);
  for (size_t i = 0; i < n; i++) {
    jobs[i].index = (int)i;
    assert_int_equal(pthread_create(&tids[i], NULL, fn, &jobs[i]), 0);
  }
  for (size_t i = 0; i < n; i++)
    pthread_join(tids[i], NULL);
  pthread_barrier_destroy(&barrier);
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (!jobs[i].ok) {
      fprintf(stderr, "client %zu: %s\n", i, jobs[i].why);
      failed++;
    }
  }
  assert_int_equal(failed, 0);
}

static void test_concurrent_streams(void **state) {
  (void)state;
  static job jobs[STREAMS];
  long long start = ck_now_ms();
  run_parallel(stream_worker, jobs, STREAMS);
  /* Paced replies overlap: 50 replies of 8 tokens at 20 ms take far less than 50 x 160 ms. */
  assert_true(ck_now_ms() - start < 8000);
  for (size_t i = 0; i < STREAMS; i++)
    for (size_t k = i + 1; k < STREAMS; k++)
      assert_string_not_equal(jobs[i].thread_id, jobs[k].thread_id);
}

static void test_parallel_lists(void **state) {
  (void)state;
  static job jobs[LISTS];
  run_parallel(list_worker, jobs, LISTS);
  assert_true(hc_healthy(port));
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concurrent_streams),
      cmocka_unit_test(test_parallel_lists),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
