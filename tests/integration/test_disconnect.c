/* A client that disconnects mid-stream: with a paced demo model the server must store the
 * partial assistant message (and the hidden "user cancelled" context, which items.list does
 * not show), and keep serving. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/http_client.h"
#include "support/proc.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENS 40

static char dir[256];
static ck_proc srv;
static int port;
static ck_arena *A;

static int setup(void **state) {
  (void)state;
  A = ck_arena_new(0);
  if (A == NULL || ck_tmpdir_make(dir, sizeof(dir)) != 0)
    return -1;
  char store[320];
  snprintf(store, sizeof(store), "sqlite:%s/chatkit.db", dir);
  const char *args[] = {"--store", store, "--demo-delay-ms", "50", "--demo-tokens", "40", NULL};
  port = ck_server_start(&srv, dir, args, NULL);
  return port > 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ck_proc_kill_all();
  ck_tmpdir_remove(dir);
  ck_arena_free(A);
  return 0;
}

/* The full paced reply to `said`: TOKENS tokens cycling through the demo text. */
static const char *full_reply(const char *said) {
  ck_buf text, out;
  ck_buf_init(&text, 0);
  ck_buf_init(&out, 0);
  ck_buf_printf(&text,
                "You said: \"%s\". This is the built-in demo model of chatkit-server. Set "
                "OPENAI_API_KEY or OPENAI_BASE_URL to talk to a real model.",
                said);
  size_t starts[64], n = 0, i = 0;
  while (i < text.len && n < 63) {
    starts[n++] = i;
    while (i < text.len && text.data[i] != ' ')
      i++;
    while (i < text.len && text.data[i] == ' ')
      i++;
  }
  starts[n] = text.len;
  for (size_t k = 0; k < TOKENS; k++)
    ck_buf_append(&out, text.data + starts[k % n], starts[k % n + 1] - starts[k % n]);
  const char *s = ck_arena_strndup(A, out.data, out.len);
  ck_buf_free(&text);
  ck_buf_free(&out);
  return s;
}

/* The stored hidden items of a thread, read from the SQLite file itself (the protocol never
 * shows them), as one string. */
static const char *stored_hidden(const char *thread_id) {
  char path[320];
  snprintf(path, sizeof(path), "%s/chatkit.db", dir);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT json FROM items WHERE thread_id = ?1 AND type = "
                                      "'sdk_hidden_context'",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, thread_id, -1, SQLITE_STATIC);
  ck_buf all;
  ck_buf_init(&all, 0);
  while (sqlite3_step(st) == SQLITE_ROW)
    ck_buf_puts(&all, (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  const char *s = ck_arena_strndup(A, all.data ? all.data : "", all.len);
  ck_buf_free(&all);
  return s;
}

static ck_json *items_list(const char *thread_id) {
  char body[256];
  snprintf(body, sizeof(body),
           "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\",\"order\":\"asc\"}}",
           thread_id);
  hc_response r;
  assert_int_equal(hc_chatkit(port, body, &r), 0);
  assert_int_equal(r.status, 200);
  ck_json *page = hc_json(A, r.body, r.body_len);
  hc_response_free(&r);
  assert_non_null(page);
  return ck_json_object_get(page, "data");
}

/* Opens a threads.create stream and reads until `deltas` text deltas arrived. Returns the
 * connection; the thread and assistant ids and the text so far are written out. */
static void start_stream(hc_conn *c, ck_buf *pending, int deltas, char *tid, char *mid,
                         ck_buf *text) {
  static const char body[] =
      "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_text\","
      "\"text\":\"go slowly\"}],\"attachments\":[],\"inference_options\":{}}}}";
  assert_int_equal(hc_open(c, port, 5000), 0);
  ck_buf req;
  ck_buf_init(&req, 0);
  hc_format(&req, "POST", "/chatkit", NULL, body, sizeof(body) - 1);
  assert_int_equal(hc_send(c, req.data, req.len), 0);
  ck_buf_free(&req);
  hc_response head;
  assert_int_equal(hc_read_head(c, &head), 0);
  assert_int_equal(head.status, 200);
  assert_true(head.chunked);
  hc_response_free(&head);
  int seen = 0;
  while (seen < deltas) {
    ck_json *ev = NULL;
    assert_int_equal(hc_sse_next(c, pending, A, &ev), 1);
    const char *type = ck_json_object_get_str(ev, "type");
    if (strcmp(type, "thread.created") == 0)
      snprintf(tid, 64, "%s", ck_json_object_get_str(ck_json_object_get(ev, "thread"), "id"));
    if (strcmp(type, "thread.item.added") == 0)
      snprintf(mid, 64, "%s", ck_json_object_get_str(ck_json_object_get(ev, "item"), "id"));
    const ck_json *upd = ck_json_object_get(ev, "update");
    const char *ut = ck_json_object_get_str(upd, "type");
    if (ut != NULL && strcmp(ut, "assistant_message.content_part.text_delta") == 0) {
      ck_buf_puts(text, ck_json_object_get_str(upd, "delta"));
      seen++;
    }
    /* A finished reply would mean the pacing did not work and nothing is being tested. */
    if (strcmp(type, "thread.item.done") == 0)
      assert_string_equal(ck_json_object_get_str(ck_json_object_get(ev, "item"), "type"),
                          "user_message");
  }
}

static void test_disconnect_saves_partial(void **state) {
  (void)state;
  hc_conn c;
  ck_buf pending, text;
  ck_buf_init(&pending, 0);
  ck_buf_init(&text, 0);
  char tid[64] = "", mid[64] = "";
  start_stream(&c, &pending, 3, tid, mid, &text);
  assert_true(tid[0] && mid[0]);
  hc_close(&c);
  ck_buf_free(&pending);

  /* The cancellation path runs on the server's next tick; poll for its result. */
  const char *full = full_reply("go slowly");
  long long start = ck_now_ms();
  const ck_json *items = NULL;
  const ck_json *partial = NULL;
  while (ck_now_ms() - start < 3000) {
    items = items_list(tid);
    for (size_t i = 0; i < ck_json_array_size(items); i++) {
      const ck_json *it = ck_json_array_get(items, i);
      if (strcmp(ck_json_object_get_str(it, "id"), mid) == 0)
        partial = it;
    }
    if (partial != NULL)
      break;
    ck_sleep_ms(20);
  }
  long long took = ck_now_ms() - start;
  assert_non_null(partial);
  /* "Within about a second": generous for loaded sanitizer runs, still far below the 2 s the
   * full reply would take. */
  assert_true(took < 1500);
  assert_string_equal(ck_json_object_get_str(partial, "type"), "assistant_message");
  const char *saved = hc_item_text(A, partial);
  size_t n = strlen(saved);
  assert_true(n >= text.len); /* at least what we received */
  assert_true(n > 0);
  assert_true(n < strlen(full)); /* but not the whole reply */
  assert_memory_equal(saved, full, n);
  assert_memory_equal(saved, text.data, text.len);
  ck_buf_free(&text);
  /* The hidden context item is stored but never listed: only the two messages are. */
  assert_int_equal(ck_json_array_size(items), 2);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(items, 0), "type"), "user_message");
  for (size_t i = 0; i < ck_json_array_size(items); i++) {
    const char *type = ck_json_object_get_str(ck_json_array_get(items, i), "type");
    assert_string_not_equal(type, "sdk_hidden_context");
    assert_string_not_equal(type, "hidden_context_item");
  }

  assert_non_null(strstr(stored_hidden(tid),
                         "The user cancelled the stream. Stop responding to the prior request."));

  /* The server keeps serving, and the thread keeps working: a full reply on it now. */
  assert_true(hc_healthy(port));
  char body[512];
  snprintf(body, sizeof(body),
           "{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"%s\",\"input\":{"
           "\"content\":[{\"type\":\"input_text\",\"text\":\"again\"}],\"attachments\":[],"
           "\"inference_options\":{}}}}",
           tid);
  ck_json *events = hc_stream(A, port, body);
  assert_non_null(events);
  const ck_json *done = NULL;
  for (size_t i = 0; i < ck_json_array_size(events); i++) {
    const ck_json *ev = ck_json_array_get(events, i);
    if (strcmp(ck_json_object_get_str(ev, "type"), "thread.item.done") == 0)
      done = ck_json_object_get(ev, "item");
  }
  assert_non_null(done);
  assert_string_equal(hc_item_text(A, done), full_reply("again"));
  /* Listed now: user, partial, user, full. */
  assert_int_equal(ck_json_array_size(items_list(tid)), 4);
}

/* Clients that leave before or right after the headers do not disturb the server. */
static void test_early_disconnects(void **state) {
  (void)state;
  static const char body[] =
      "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_text\","
      "\"text\":\"bye\"}],\"attachments\":[],\"inference_options\":{}}}}";
  for (int i = 0; i < 5; i++) {
    hc_conn c;
    assert_int_equal(hc_open(&c, port, 5000), 0);
    ck_buf req;
    ck_buf_init(&req, 0);
    /* Half the time only part of the body is sent. */
    hc_format(&req, "POST", "/chatkit", NULL, body, sizeof(body) - 1);
    assert_int_equal(hc_send(&c, req.data, i % 2 ? req.len - 10 : req.len), 0);
    ck_buf_free(&req);
    hc_close(&c);
  }
  ck_sleep_ms(200);
  assert_true(hc_healthy(port));
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_disconnect_saves_partial),
      cmocka_unit_test(test_early_disconnects),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
