/* Graceful shutdown of the real binary on SIGTERM: a stream in progress finishes within the
 * grace period while new connections are refused, and a stream that outlives a short grace
 * period is cancelled through the normal path, so its partial message is in the SQLite file
 * when the binary starts again. Both runs must exit 0. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/http_client.h"
#include "support/proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[256];
static char store[320];
static ck_proc srv;
static ck_arena *A;

static const char create_body[] =
    "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_text\","
    "\"text\":\"slow\"}],\"attachments\":[],\"inference_options\":{}}}}";

static int setup(void **state) {
  (void)state;
  A = ck_arena_new(0);
  if (A == NULL || ck_tmpdir_make(dir, sizeof(dir)) != 0)
    return -1;
  snprintf(store, sizeof(store), "sqlite:%s/chatkit.db", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ck_proc_kill_all();
  ck_tmpdir_remove(dir);
  ck_arena_free(A);
  return 0;
}

/* True once a connection to `port` is refused, polling for up to `ms`. */
static bool refused_within(int port, int ms) {
  long long deadline = ck_now_ms() + ms;
  while (ck_now_ms() < deadline) {
    hc_conn c;
    if (hc_open(&c, port, 1000) != 0)
      return true;
    hc_close(&c);
    ck_sleep_ms(10);
  }
  return false;
}

static void test_stream_finishes_within_grace(void **state) {
  (void)state;
  const char *args[] = {
      "--store", store, "--demo-delay-ms", "100", "--demo-tokens", "20", "--shutdown-grace-ms",
      "5000",    NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  hc_live s;
  assert_int_equal(hc_live_open(&s, port, create_body, A, 2), 0);
  long long signalled = ck_now_ms();
  assert_int_equal(kill(srv.pid, SIGTERM), 0);
  /* The listener closes at once, long before the stream (about 1.8 s more) is over. */
  assert_true(refused_within(port, 1000));
  assert_true(ck_now_ms() - signalled < 1500);
  assert_int_equal(ck_proc_wait(&srv, 0), -1); /* still running: the stream goes on */
  assert_int_equal(hc_live_finish(&s, A), 0);
  assert_true(s.done);
  assert_int_equal(s.deltas, 20);
  /* Once the stream is over, the process exits cleanly. */
  assert_int_equal(ck_proc_wait(&srv, 10000), 0);
  ck_proc_kill(&srv);
}

static void test_short_grace_cancels(void **state) {
  (void)state;
  const char *args[] = {
      "--store", store, "--demo-delay-ms", "100", "--demo-tokens", "20", "--shutdown-grace-ms",
      "200",     NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  hc_live s;
  assert_int_equal(hc_live_open(&s, port, create_body, A, 2), 0);
  char tid[64], mid[64];
  memcpy(tid, s.tid, sizeof(tid));
  memcpy(mid, s.mid, sizeof(mid));
  long long signalled = ck_now_ms();
  assert_int_equal(kill(srv.pid, SIGTERM), 0);
  /* The stream ends early (the grace is 0.2 s, the reply needs 1.8 s more), without the
   * final item, but as a proper end of the chunked body rather than a broken connection. */
  assert_int_equal(hc_live_finish(&s, A), 0);
  long long ended = ck_now_ms() - signalled;
  assert_false(s.done);
  assert_true(s.deltas < 20);
  assert_true(ended < 1500);
  assert_int_equal(ck_proc_wait(&srv, 10000), 0);
  ck_proc_kill(&srv);

  /* The partial message was saved: start the binary again on the same file. */
  const char *again[] = {"--store", store, NULL};
  port = ck_server_start(&srv, dir, again, NULL);
  assert_true(port > 0);
  char body[256];
  snprintf(body, sizeof(body),
           "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\",\"order\":\"asc\"}}", tid);
  hc_response r;
  assert_int_equal(hc_chatkit(port, body, &r), 0);
  assert_int_equal(r.status, 200);
  ck_json *page = hc_json(A, r.body, r.body_len);
  hc_response_free(&r);
  const ck_json *items = ck_json_object_get(page, "data");
  assert_int_equal(ck_json_array_size(items), 2);
  const ck_json *partial = ck_json_array_get(items, 1);
  assert_string_equal(ck_json_object_get_str(partial, "id"), mid);
  assert_string_equal(ck_json_object_get_str(partial, "type"), "assistant_message");
  const char *text = hc_item_text(A, partial);
  assert_true(strlen(text) > 0);
  assert_int_equal(strncmp(text, "You said: ", 10), 0);
  /* Two threads exist: the completed one of the first test and this one. */
  assert_int_equal(hc_chatkit(port, "{\"type\":\"threads.list\",\"params\":{}}", &r), 0);
  page = hc_json(A, r.body, r.body_len);
  hc_response_free(&r);
  assert_int_equal(ck_json_array_size(ck_json_object_get(page, "data")), 2);
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

/* Clients half-way through sending a request do not hold the process past the grace
 * period (the HTTP layer alone would wait for its 10 s header and 30 s body timeouts). */
static void test_partial_requests_do_not_block_exit(void **state) {
  (void)state;
  const char *args[] = {"--store", "memory:", "--shutdown-grace-ms", "200", NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  hc_conn body, head;
  assert_int_equal(hc_open(&body, port, 10000), 0);
  assert_int_equal(hc_open(&head, port, 10000), 0);
  static const char partial_body[] =
      "POST /chatkit HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"type\"";
  static const char partial_head[] = "POST /chatkit HTTP/1.1\r\nHost: x\r\n";
  assert_int_equal(hc_send(&body, partial_body, sizeof(partial_body) - 1), 0);
  assert_int_equal(hc_send(&head, partial_head, sizeof(partial_head) - 1), 0);
  assert_true(hc_healthy(port)); /* both were read by now */
  long long signalled = ck_now_ms();
  assert_int_equal(kill(srv.pid, SIGTERM), 0);
  assert_int_equal(ck_proc_wait(&srv, 8000), 0);
  /* 0.2 s of grace, 1 s for the last bytes, then the forced close. */
  assert_true(ck_now_ms() - signalled < 5000);
  hc_close(&body);
  hc_close(&head);
  ck_proc_kill(&srv);
}

/* SIGINT is a graceful shutdown too. */
static void test_sigint(void **state) {
  (void)state;
  const char *args[] = {"--store", store, NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  assert_true(hc_healthy(port));
  assert_int_equal(kill(srv.pid, SIGINT), 0);
  assert_int_equal(ck_proc_wait(&srv, 10000), 0);
  ck_proc_kill(&srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stream_finishes_within_grace),
      cmocka_unit_test(test_short_grace_cancels),
      cmocka_unit_test(test_partial_requests_do_not_block_exit),
      cmocka_unit_test(test_sigint),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
