/* Every one of the 16 ChatKit request types over HTTP against the real binary, with the demo
 * model (no pacing, so replies are deterministic) and a SQLite store in a temporary
 * directory. The server is started once for the program and stopped with SIGTERM at the end,
 * which must exit 0 (under ASan that also means no leak and no memory error). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/http_client.h"
#include "support/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_TOKENS 6

static char dir[256];
static ck_proc srv;
static int port;
static ck_arena *A;
/* The thread the streaming tests share, created by test_create. */
static char thread_id[64];

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* A formatted string from the test arena (request bodies). */
static const char *fmt(const char *f, ...) {
  ck_buf b;
  ck_buf_init(&b, 0);
  va_list ap;
  va_start(ap, f);
  ck_buf_vprintf(&b, f, ap);
  va_end(ap);
  const char *s = ck_arena_strndup(A, b.data ? b.data : "", b.len);
  ck_buf_free(&b);
  return s;
}

/* POSTs `json`, expects `status` and a JSON body, returns the parsed body. */
static ck_json *call(const char *json, int status) {
  hc_response r;
  assert_int_equal(hc_chatkit(port, json, &r), 0);
  if (r.status != status)
    fprintf(stderr, "%s -> %d %s\n", json, r.status, r.body);
  assert_int_equal(r.status, status);
  assert_non_null(hc_header(&r, "content-type"));
  assert_string_equal(hc_header(&r, "content-type"), "application/json");
  ck_json *v = hc_json(A, r.body, r.body_len);
  if (v == NULL)
    fprintf(stderr, "not JSON: %s\n", r.body);
  assert_non_null(v);
  hc_response_free(&r);
  return v;
}

/* Asserts an error body {"error":{"code":code,"message":non-empty}}. */
static void assert_error(const ck_json *body, const char *code) {
  const ck_json *e = ck_json_object_get(body, "error");
  assert_non_null(e);
  assert_string_equal(ck_json_object_get_str(e, "code"), code);
  const char *msg = ck_json_object_get_str(e, "message");
  assert_non_null(msg);
  assert_true(strlen(msg) > 0);
}

static const char *user_input(const char *text) {
  return fmt("{\"content\":[{\"type\":\"input_text\",\"text\":\"%s\"}],\"attachments\":[],"
             "\"inference_options\":{}}",
             text);
}

/* The expected demo reply to `said` in `tokens` tokens (a word and the spaces after it), going
 * round the text again when it has fewer. */
static const char *demo_reply_n(const char *said, int tokens) {
  const char *full = fmt("You said: \"%s\". This is the built-in demo model of chatkit-server. "
                         "Set OPENAI_API_KEY or OPENAI_BASE_URL to talk to a real model.",
                         said);
  ck_buf out;
  ck_buf_init(&out, 0);
  size_t i = 0;
  for (int tok = 0; tok < tokens; tok++) {
    if (full[i] == '\0')
      i = 0;
    size_t start = i;
    while (full[i] && full[i] != ' ')
      i++;
    while (full[i] == ' ')
      i++;
    ck_buf_append(&out, full + start, i - start);
  }
  const char *r = ck_arena_strndup(A, out.data, out.len);
  ck_buf_free(&out);
  return r;
}

static const char *demo_reply(const char *said) {
  return demo_reply_n(said, DEMO_TOKENS);
}

/* Checks the events of one demo reply starting at `from`: item.added, content_part.added,
 * `tokens` deltas, content_part.done, item.done, all for the same assistant item, and
 * returns that item's final text. thread.updated may come in between (the title). */
static const char *assert_reply_n(const ck_json *events, size_t from, size_t tokens) {
  size_t n = ck_json_array_size(events), i = from, deltas = 0;
  const char *want[] = {"thread.item.added", "assistant_message.content_part.added"};
  const char *item_id = NULL;
  ck_buf text;
  ck_buf_init(&text, 0);
  size_t stage = 0;
  const char *final = NULL;
  for (; i < n; i++) {
    const ck_json *ev = ck_json_array_get(events, i);
    const char *type = ck_json_object_get_str(ev, "type");
    if (strcmp(type, "thread.updated") == 0)
      continue;
    const ck_json *upd = ck_json_object_get(ev, "update");
    const char *ut = upd ? ck_json_object_get_str(upd, "type") : type;
    if (stage < 2) {
      assert_string_equal(ut, want[stage]);
      if (stage == 0) {
        const ck_json *item = ck_json_object_get(ev, "item");
        assert_string_equal(ck_json_object_get_str(item, "type"), "assistant_message");
        item_id = ck_json_object_get_str(item, "id");
      } else {
        assert_string_equal(ck_json_object_get_str(ev, "item_id"), item_id);
      }
      stage++;
    } else if (strcmp(ut, "assistant_message.content_part.text_delta") == 0) {
      assert_int_equal(stage, 2);
      assert_string_equal(ck_json_object_get_str(ev, "item_id"), item_id);
      ck_buf_puts(&text, ck_json_object_get_str(upd, "delta"));
      deltas++;
    } else if (strcmp(ut, "assistant_message.content_part.done") == 0) {
      assert_int_equal(stage, 2);
      const char *t = ck_json_object_get_str(ck_json_object_get(upd, "content"), "text");
      assert_int_equal(strlen(t), text.len);
      assert_memory_equal(t, text.data, text.len);
      stage = 3;
    } else {
      assert_int_equal(stage, 3);
      assert_string_equal(type, "thread.item.done");
      const ck_json *item = ck_json_object_get(ev, "item");
      assert_string_equal(ck_json_object_get_str(item, "id"), item_id);
      final = hc_item_text(A, item);
      stage = 4;
      break;
    }
  }
  assert_int_equal(stage, 4);
  assert_int_equal(deltas, tokens);
  assert_int_equal(strlen(final), text.len);
  ck_buf_free(&text);
  return final;
}

static const char *assert_reply(const ck_json *events, size_t from) {
  return assert_reply_n(events, from, DEMO_TOKENS);
}

static int setup(void **state) {
  (void)state;
  A = ck_arena_new(0);
  if (A == NULL || ck_tmpdir_make(dir, sizeof(dir)) != 0)
    return -1;
  /* A store directory that does not exist yet: the binary creates it. */
  char store[320];
  snprintf(store, sizeof(store), "sqlite:%s/data/chatkit.db", dir);
  const char *args[] = {"--store", store, "--demo-delay-ms", "0", "--demo-tokens", "6", NULL};
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

/* The paced demo (a timer on the loop, one token per tick) sends the same reply as the instant
 * one, going round its text when asked for more tokens than it has, and its events arrive in
 * the protocol's order. */
static void test_paced_demo(void **state) {
  (void)state;
  ck_proc paced;
  const char *args[] = {"--store", "memory:", "--demo-delay-ms", "1", "--demo-tokens", "40", NULL};
  int pport = ck_server_start(&paced, dir, args, NULL);
  assert_true(pport > 0);
  const char *body =
      fmt("{\"type\":\"threads.create\",\"params\":{\"input\":%s}}", user_input("hi"));
  ck_json *events = hc_stream(A, pport, body);
  assert_non_null(events);
  assert_string_equal(assert_reply_n(events, 3, 40), demo_reply_n("hi", 40));
  assert_int_equal(ck_proc_stop(&paced, 15000), 0);
  ck_proc_kill(&paced);
}

/* threads.create: the exact SSE wire format, headers and event order. */
static void test_create(void **state) {
  (void)state;
  const char *body =
      fmt("{\"type\":\"threads.create\",\"params\":{\"input\":%s}}", user_input("hello there"));
  hc_conn c;
  assert_int_equal(hc_open(&c, port, 10000), 0);
  ck_buf req;
  ck_buf_init(&req, 0);
  hc_format(&req, "POST", "/chatkit", "Content-Type: application/json\r\n", body, strlen(body));
  assert_int_equal(hc_send(&c, req.data, req.len), 0);
  ck_buf_free(&req);
  hc_response r;
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  hc_close(&c);
  assert_int_equal(r.status, 200);
  assert_true(r.chunked);
  assert_null(hc_header(&r, "content-length"));
  assert_string_equal(hc_header(&r, "content-type"), "text/event-stream");
  assert_string_equal(hc_header(&r, "cache-control"), "no-cache");
  /* Exact framing: "data: " + one JSON line + "\n\n", nothing else. */
  ck_json *events = NULL;
  assert_int_equal(hc_sse_split(A, r.body, r.body_len, &events), 0);
  assert_memory_equal(r.body, "data: {\"type\":\"thread.created\"", 30);
  assert_memory_equal(r.body + r.body_len - 4, "}}\n\n", 4);
  hc_response_free(&r);

  const ck_json *ev0 = ck_json_array_get(events, 0);
  assert_string_equal(ck_json_object_get_str(ev0, "type"), "thread.created");
  const char *tid = ck_json_object_get_str(ck_json_object_get(ev0, "thread"), "id");
  assert_non_null(tid);
  assert_int_equal(strncmp(tid, "thr_", 4), 0);
  snprintf(thread_id, sizeof(thread_id), "%s", tid);
  const ck_json *ev1 = ck_json_array_get(events, 1);
  assert_string_equal(ck_json_object_get_str(ev1, "type"), "thread.item.done");
  const ck_json *user = ck_json_object_get(ev1, "item");
  assert_string_equal(ck_json_object_get_str(user, "type"), "user_message");
  assert_string_equal(ck_json_object_get_str(user, "thread_id"), tid);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(events, 2), "type"),
                      "stream_options");
  assert_string_equal(assert_reply(events, 3), demo_reply("hello there"));
  /* The demo model names the untitled thread after the first message. */
  assert_int_equal(hc_count_type(events, "thread.updated"), 1);
  const ck_json *upd = hc_find_type(events, "thread.updated", 0);
  assert_string_equal(ck_json_object_get_str(ck_json_object_get(upd, "thread"), "title"),
                      "hello there");
  /* 3 + added + part added + deltas + part done + item done + thread.updated */
  assert_int_equal(ck_json_array_size(events), 3 + 4 + DEMO_TOKENS + 1);
}

/* threads.add_user_message: the user message, then a reply, no second title. */
static void test_add_user_message(void **state) {
  (void)state;
  ck_json *events =
      hc_stream(A, port,
                fmt("{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"%s\","
                    "\"input\":%s}}",
                    thread_id, user_input("second one")));
  assert_non_null(events);
  assert_null(hc_find_type(events, "thread.created", 0));
  assert_null(hc_find_type(events, "thread.updated", 0));
  const ck_json *ev0 = ck_json_array_get(events, 0);
  assert_string_equal(ck_json_object_get_str(ev0, "type"), "thread.item.done");
  const ck_json *item = ck_json_object_get(ev0, "item");
  assert_string_equal(ck_json_object_get_str(item, "type"), "user_message");
  assert_string_equal(hc_item_text(A, item), "second one");
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(events, 1), "type"),
                      "stream_options");
  assert_string_equal(assert_reply(events, 2), demo_reply("second one"));
  assert_int_equal(ck_json_array_size(events), 2 + 4 + DEMO_TOKENS);
}

/* threads.get_by_id: oldest first, both exchanges, the title. */
static void test_get_by_id(void **state) {
  (void)state;
  ck_json *t = call(
      fmt("{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"%s\"}}", thread_id), 200);
  assert_string_equal(ck_json_object_get_str(t, "id"), thread_id);
  assert_string_equal(ck_json_object_get_str(t, "title"), "hello there");
  const ck_json *items = ck_json_object_get(ck_json_object_get(t, "items"), "data");
  assert_int_equal(ck_json_array_size(items), 4);
  const char *types[] = {"user_message", "assistant_message", "user_message", "assistant_message"};
  for (size_t i = 0; i < 4; i++)
    assert_string_equal(ck_json_object_get_str(ck_json_array_get(items, i), "type"), types[i]);
  assert_string_equal(hc_item_text(A, ck_json_array_get(items, 0)), "hello there");
  assert_string_equal(hc_item_text(A, ck_json_array_get(items, 3)), demo_reply("second one"));
  ck_json *missing =
      call("{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"thr_nope\"}}", 404);
  assert_error(missing, "not_found");
}

/* threads.list: newest first, with limit/after paging. */
static void test_threads_list(void **state) {
  (void)state;
  /* A second thread, so paging has something to page over. */
  ck_json *events = hc_stream(
      A, port, fmt("{\"type\":\"threads.create\",\"params\":{\"input\":%s}}", user_input("b")));
  assert_non_null(events);
  const char *second =
      ck_json_object_get_str(ck_json_object_get(ck_json_array_get(events, 0), "thread"), "id");
  ck_json *all = call("{\"type\":\"threads.list\",\"params\":{}}", 200);
  const ck_json *data = ck_json_object_get(all, "data");
  assert_int_equal(ck_json_array_size(data), 2);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(data, 0), "id"), second);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(data, 1), "id"), thread_id);
  assert_false(ck_json_bool_value(ck_json_object_get(all, "has_more")));
  ck_json *p1 = call("{\"type\":\"threads.list\",\"params\":{\"limit\":1,\"order\":\"asc\"}}", 200);
  assert_int_equal(ck_json_array_size(ck_json_object_get(p1, "data")), 1);
  assert_true(ck_json_bool_value(ck_json_object_get(p1, "has_more")));
  assert_string_equal(ck_json_object_get_str(p1, "after"), thread_id);
  ck_json *p2 = call(fmt("{\"type\":\"threads.list\",\"params\":{\"limit\":1,\"order\":\"asc\","
                         "\"after\":\"%s\"}}",
                         thread_id),
                     200);
  assert_string_equal(
      ck_json_object_get_str(ck_json_array_get(ck_json_object_get(p2, "data"), 0), "id"), second);
  assert_false(ck_json_bool_value(ck_json_object_get(p2, "has_more")));
  assert_null(ck_json_object_get(p2, "after"));
}

/* items.list: order, limit and the after cursor walk every item exactly once. */
static void test_items_list(void **state) {
  (void)state;
  ck_json *asc = call(fmt("{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\","
                          "\"order\":\"asc\"}}",
                          thread_id),
                      200);
  const ck_json *all = ck_json_object_get(asc, "data");
  assert_int_equal(ck_json_array_size(all), 4);
  ck_json *desc =
      call(fmt("{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\"}}", thread_id), 200);
  const ck_json *rev = ck_json_object_get(desc, "data");
  for (size_t i = 0; i < 4; i++)
    assert_string_equal(ck_json_object_get_str(ck_json_array_get(rev, i), "id"),
                        ck_json_object_get_str(ck_json_array_get(all, 3 - i), "id"));
  /* Pages of 3 then 1 in ascending order. */
  ck_json *p1 = call(fmt("{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\","
                         "\"order\":\"asc\",\"limit\":3}}",
                         thread_id),
                     200);
  assert_int_equal(ck_json_array_size(ck_json_object_get(p1, "data")), 3);
  assert_true(ck_json_bool_value(ck_json_object_get(p1, "has_more")));
  const char *after = ck_json_object_get_str(p1, "after");
  assert_string_equal(after, ck_json_object_get_str(ck_json_array_get(all, 2), "id"));
  ck_json *p2 = call(fmt("{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\","
                         "\"order\":\"asc\",\"limit\":3,\"after\":\"%s\"}}",
                         thread_id, after),
                     200);
  const ck_json *d2 = ck_json_object_get(p2, "data");
  assert_int_equal(ck_json_array_size(d2), 1);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(d2, 0), "id"),
                      ck_json_object_get_str(ck_json_array_get(all, 3), "id"));
  assert_false(ck_json_bool_value(ck_json_object_get(p2, "has_more")));
}

/* items.feedback answers exactly {} (checked byte for byte). */
static void test_feedback(void **state) {
  (void)state;
  hc_response r;
  assert_int_equal(hc_chatkit(port,
                              fmt("{\"type\":\"items.feedback\",\"params\":{\"thread_id\":\"%s\","
                                  "\"item_ids\":[\"x\"],\"kind\":\"positive\"}}",
                                  thread_id),
                              &r),
                   0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{}");
  hc_response_free(&r);
}

/* threads.update sets the title, which get_by_id then shows. */
static void test_update(void **state) {
  (void)state;
  ck_json *t = call(fmt("{\"type\":\"threads.update\",\"params\":{\"thread_id\":\"%s\","
                        "\"title\":\"Renamed\"}}",
                        thread_id),
                    200);
  assert_string_equal(ck_json_object_get_str(t, "title"), "Renamed");
  ck_json *g = call(
      fmt("{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"%s\"}}", thread_id), 200);
  assert_string_equal(ck_json_object_get_str(g, "title"), "Renamed");
}

/* retry_after_item deletes the reply after the user message and runs the model again. */
static void test_retry(void **state) {
  (void)state;
  ck_json *before = call(fmt("{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\","
                             "\"order\":\"asc\"}}",
                             thread_id),
                         200);
  const ck_json *items = ck_json_object_get(before, "data");
  const char *user_id = ck_json_object_get_str(ck_json_array_get(items, 2), "id");
  const char *old_reply = ck_json_object_get_str(ck_json_array_get(items, 3), "id");
  ck_json *events =
      hc_stream(A, port,
                fmt("{\"type\":\"threads.retry_after_item\",\"params\":{\"thread_id\":\"%s\","
                    "\"item_id\":\"%s\"}}",
                    thread_id, user_id));
  assert_non_null(events);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(events, 0), "type"),
                      "stream_options");
  assert_string_equal(assert_reply(events, 1), demo_reply("second one"));
  const char *new_reply = ck_json_object_get_str(
      ck_json_object_get(hc_find_type(events, "thread.item.done", 0), "item"), "id");
  assert_string_not_equal(new_reply, old_reply);
  ck_json *after = call(fmt("{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\","
                            "\"order\":\"asc\"}}",
                            thread_id),
                        200);
  const ck_json *now = ck_json_object_get(after, "data");
  assert_int_equal(ck_json_array_size(now), 4);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(now, 2), "id"), user_id);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(now, 3), "id"), new_reply);
  for (size_t i = 0; i < 4; i++)
    assert_string_not_equal(ck_json_object_get_str(ck_json_array_get(now, i), "id"), old_reply);
}

/* The demo has no action handler: stream_options, then a retryable stream.error. */
static void test_custom_action(void **state) {
  (void)state;
  ck_json *events =
      hc_stream(A, port,
                fmt("{\"type\":\"threads.custom_action\",\"params\":{\"thread_id\":\"%s\","
                    "\"action\":{\"type\":\"do\",\"payload\":{}}}}",
                    thread_id));
  assert_non_null(events);
  char types[256];
  hc_event_types(events, types, sizeof(types));
  assert_string_equal(types, "stream_options error");
  const ck_json *err = ck_json_array_get(events, 1);
  assert_string_equal(ck_json_object_get_str(err, "code"), "stream.error");
  assert_true(ck_json_bool_value(ck_json_object_get(err, "allow_retry")));
}

static void test_sync_custom_action(void **state) {
  (void)state;
  assert_error(call(fmt("{\"type\":\"threads.sync_custom_action\",\"params\":{\"thread_id\":"
                        "\"%s\",\"action\":{\"type\":\"do\",\"payload\":{}}}}",
                        thread_id),
                    501),
               "not_implemented");
}

/* A streaming request whose prerequisite fails answers an HTTP error, not a stream. */
static void test_client_tool_output(void **state) {
  (void)state;
  hc_response r;
  assert_int_equal(hc_chatkit(port,
                              fmt("{\"type\":\"threads.add_client_tool_output\",\"params\":{"
                                  "\"thread_id\":\"%s\",\"result\":{\"ok\":true}}}",
                                  thread_id),
                              &r),
                   0);
  assert_int_equal(r.status, 409);
  assert_false(r.chunked);
  assert_string_equal(hc_header(&r, "content-type"), "application/json");
  assert_error(hc_json(A, r.body, r.body_len), "conflict");
  hc_response_free(&r);
}

static void test_structured_input_missing(void **state) {
  (void)state;
  assert_error(call(fmt("{\"type\":\"threads.add_structured_input\",\"params\":{\"thread_id\":"
                        "\"%s\",\"item_id\":\"si_missing\",\"input\":{\"status\":\"answered\","
                        "\"answers\":{}}}}",
                        thread_id),
                    404),
               "not_found");
}

static void test_attachments(void **state) {
  (void)state;
  assert_error(call("{\"type\":\"attachments.create\",\"params\":{\"name\":\"a.txt\",\"size\":3,"
                    "\"mime_type\":\"text/plain\"}}",
                    501),
               "not_implemented");
  assert_error(
      call("{\"type\":\"attachments.delete\",\"params\":{\"attachment_id\":\"atc_1\"}}", 501),
      "not_implemented");
}

/* Valid base64 reaches the missing handler (501); base64 that cannot be decoded is rejected
 * first (400), like the reference's b64decode failing before the handler is called. */
static void test_transcribe(void **state) {
  (void)state;
  assert_error(call("{\"type\":\"input.transcribe\",\"params\":{\"audio_base64\":\"aGVsbG8=\","
                    "\"mime_type\":\"audio/webm;codecs=opus\"}}",
                    501),
               "not_implemented");
  assert_error(call("{\"type\":\"input.transcribe\",\"params\":{\"audio_base64\":\"abcde\","
                    "\"mime_type\":\"audio/webm\"}}",
                    400),
               "invalid_request");
}

/* threads.delete answers {}, then the thread is gone. Runs last. */
static void test_delete(void **state) {
  (void)state;
  hc_response r;
  assert_int_equal(
      hc_chatkit(port,
                 fmt("{\"type\":\"threads.delete\",\"params\":{\"thread_id\":\"%s\"}}", thread_id),
                 &r),
      0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{}");
  hc_response_free(&r);
  assert_error(
      call(fmt("{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"%s\"}}", thread_id),
           404),
      "not_found");
  ck_json *list = call("{\"type\":\"threads.list\",\"params\":{}}", 200);
  assert_int_equal(ck_json_array_size(ck_json_object_get(list, "data")), 1);
}

static void test_stop(void **state) {
  (void)state;
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create),
      cmocka_unit_test(test_add_user_message),
      cmocka_unit_test(test_get_by_id),
      cmocka_unit_test(test_threads_list),
      cmocka_unit_test(test_items_list),
      cmocka_unit_test(test_feedback),
      cmocka_unit_test(test_update),
      cmocka_unit_test(test_retry),
      cmocka_unit_test(test_custom_action),
      cmocka_unit_test(test_sync_custom_action),
      cmocka_unit_test(test_client_tool_output),
      cmocka_unit_test(test_structured_input_missing),
      cmocka_unit_test(test_attachments),
      cmocka_unit_test(test_transcribe),
      cmocka_unit_test(test_delete),
      cmocka_unit_test(test_stop),
      cmocka_unit_test(test_paced_demo),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
