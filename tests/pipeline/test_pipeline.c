/* Tests of the event pipeline through the public API (protocol.md §6): ck_server_process and
 * ck_stream_run on a memory store with C handlers. What is checked is what a client or the
 * store would see: the exact SSE payloads in order and the stored items afterwards. */
#include "support/pipeline_harness.h"

#include <chatkit/error.h>
#include <chatkit/protocol.h>
#include <chatkit/server.h>
#include <chatkit/store.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- Handler scenarios ---- */

typedef enum mode {
  M_TEXT,        /* streams an assistant message from `deltas` and finishes it */
  M_TEXT_OPEN,   /* streams it but never finishes: added, part added, deltas, then part done */
  M_TITLE,       /* sets the title, emits two progress events */
  M_HIDDEN,      /* emits a hidden item's done and a progress event */
  M_WAIT_CANCEL, /* streams "Hello, " then waits for the test to cancel from another thread */
  M_FAIL_CUSTOM, /* fails with ck_stream_fail_custom */
  M_FAIL_CODE,   /* fails with ck_stream_fail(code, retry) */
  M_FAIL_PLAIN,  /* returns CK_EHANDLER without saying how to report it */
  M_TITLE_FAIL,  /* sets the title, then fails */
  M_ASYNC,       /* returns CK_PENDING; the test pushes the events */
  M_HELPERS,     /* the deltas of `sc` through ck_assistant_begin/delta/end */
} mode;

typedef struct scenario {
  mode m;
  const char *const *deltas;
  size_t ndeltas;
  const char *code;
  int retry;
  int emit_rc; /* the first failing emit's code, as the handler saw it */
  /* M_WAIT_CANCEL: the handshake with the cancelling thread. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int phase; /* 1: the handler is waiting; 2: the test has cancelled */
} scenario;

static int note(scenario *sc, int rc) {
  if (rc != CK_OK && sc->emit_rc == CK_OK)
    sc->emit_rc = rc;
  return rc;
}

static int emit_added(ck_stream *s, const char **id, const char **created_at) {
  *id = ck_stream_new_id(s, "message");
  *created_at = ck_stream_now(s);
  ck_arena *a = ck_stream_scratch(s);
  const char *tid = ck_json_object_get_str(ck_stream_thread(s), "id");
  ck_json *item = ck_item_assistant_message(a, *id, tid, *created_at, NULL);
  return ck_emit_canonical(s, ck_event_item(a, "thread.item.added", item));
}

static int emit_update(ck_stream *s, const char *id, ck_json *update) {
  return ck_emit_canonical(s, ck_event_item_updated(ck_stream_scratch(s), id, update));
}

static int emit_delta(ck_stream *s, const char *id, const char *d) {
  return emit_update(s, id, ck_update_text_delta(ck_stream_scratch(s), 0, d, strlen(d)));
}

static int emit_part(ck_stream *s, const char *id, bool done, const char *text) {
  ck_arena *a = ck_stream_scratch(s);
  return emit_update(
      s, id, ck_update_content_part(a, done, 0, ck_assistant_content(a, text, strlen(text))));
}

static int emit_done(ck_stream *s, const char *id, const char *created_at, const char *text) {
  ck_arena *a = ck_stream_scratch(s);
  ck_json *content = ck_json_array(a);
  ck_json_array_append(content, ck_assistant_content(a, text, strlen(text)));
  const char *tid = ck_json_object_get_str(ck_stream_thread(s), "id");
  ck_json *item = ck_item_assistant_message(a, id, tid, created_at, content);
  return ck_emit_canonical(s, ck_event_item(a, "thread.item.done", item));
}

static int emit_progress(ck_stream *s, const char *text) {
  return ck_emit_canonical(s, ck_event_progress(ck_stream_scratch(s), NULL, text));
}

static void set_title(ck_stream *s, const char *title) {
  ck_json *t = ck_stream_thread(s);
  ck_json_object_set(t, "title", ck_json_str(ck_json_arena(t), title));
}

/* Streams the deltas of `sc` as one assistant message; `finish` sends part done and done. */
static int stream_text(scenario *sc, ck_stream *s, bool finish) {
  const char *id, *at;
  ck_buf all;
  ck_buf_init(&all, 0);
  int rc = note(sc, emit_added(s, &id, &at));
  if (rc == CK_OK)
    rc = note(sc, emit_part(s, id, false, ""));
  for (size_t i = 0; rc == CK_OK && i < sc->ndeltas; i++) {
    rc = note(sc, emit_delta(s, id, sc->deltas[i]));
    ck_buf_puts(&all, sc->deltas[i]);
  }
  const char *text = all.data ? all.data : "";
  if (rc == CK_OK)
    rc = note(sc, emit_part(s, id, true, text));
  if (rc == CK_OK && finish)
    rc = note(sc, emit_done(s, id, at, text));
  ck_buf_free(&all);
  return rc;
}

static int respond(void *ud, ck_stream *s, const ck_json *user_message) {
  scenario *sc = ud;
  int rc;
  switch (sc->m) {
  case M_TEXT:
    return stream_text(sc, s, true);
  case M_TEXT_OPEN:
    return stream_text(sc, s, false);
  case M_TITLE:
    set_title(s, "T");
    rc = emit_progress(s, "one");
    return rc == CK_OK ? emit_progress(s, "two") : rc;
  case M_HIDDEN: {
    ck_arena *a = ck_stream_scratch(s);
    ck_json *item = ck_json_object(a);
    ck_json_object_set(item, "id", ck_json_str(a, "hc_1"));
    ck_json_object_set(item, "thread_id",
                       ck_json_str(a, ck_json_object_get_str(ck_stream_thread(s), "id")));
    ck_json_object_set(item, "created_at", ck_json_str(a, "2025-01-01T00:00:09"));
    ck_json_object_set(item, "type", ck_json_str(a, "hidden_context_item"));
    ck_json_object_set(item, "content", ck_json_str(a, "secret"));
    rc = ck_emit_canonical(s, ck_event_item(a, "thread.item.done", item));
    return rc == CK_OK ? emit_progress(s, "after") : rc;
  }
  case M_WAIT_CANCEL: {
    const char *id, *at;
    rc = emit_added(s, &id, &at);
    if (rc == CK_OK)
      rc = emit_part(s, id, false, "");
    if (rc == CK_OK)
      rc = emit_delta(s, id, "Hello, ");
    if (rc != CK_OK)
      return rc;
    pthread_mutex_lock(&sc->mu);
    sc->phase = 1;
    pthread_cond_broadcast(&sc->cv);
    while (sc->phase != 2)
      pthread_cond_wait(&sc->cv, &sc->mu);
    pthread_mutex_unlock(&sc->mu);
    /* The model's next token arrives after the client left: the emit reports it. */
    return note(sc, emit_delta(s, id, "World!"));
  }
  case M_FAIL_CUSTOM:
    return ck_stream_fail_custom(s, "Nope", true);
  case M_FAIL_CODE:
    return ck_stream_fail(s, sc->code, sc->retry);
  case M_FAIL_PLAIN:
    return CK_EHANDLER;
  case M_TITLE_FAIL:
    set_title(s, "T");
    return ck_stream_fail_custom(s, "bad", false);
  case M_ASYNC:
    return CK_PENDING;
  case M_HELPERS: {
    ck_assistant *m = NULL;
    rc = note(sc, ck_assistant_begin(s, NULL, &m));
    for (size_t i = 0; rc == CK_OK && i < sc->ndeltas; i++)
      rc = note(sc, ck_assistant_delta(m, sc->deltas[i], strlen(sc->deltas[i])));
    return rc == CK_OK ? note(sc, ck_assistant_end(m)) : rc;
  }
  }
  return CK_OK;
}

static scenario *new_scenario(mode m) {
  scenario *sc = calloc(1, sizeof(*sc));
  sc->m = m;
  pthread_mutex_init(&sc->mu, NULL);
  pthread_cond_init(&sc->cv, NULL);
  return sc;
}

static void free_scenario(scenario *sc) {
  pthread_mutex_destroy(&sc->mu);
  pthread_cond_destroy(&sc->cv);
  free(sc);
}

/* A harness whose respond handler runs `sc`. */
static hx *setup(scenario *sc) {
  hx *h = malloc(sizeof(*h));
  ck_handlers handlers = {0};
  handlers.ud = sc;
  handlers.respond = respond;
  hx_init(h, &handlers);
  return h;
}

static void teardown(hx *h) {
  hx_free(h);
  free(h);
}

#define CREATE                                                                                     \
  "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_text\","     \
  "\"text\":\"hi\"}],\"attachments\":[],\"inference_options\":{}}}}"
#define ADD_MSG(tid)                                                                               \
  "{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"" tid "\",\"input\":{"       \
  "\"content\":[{\"type\":\"input_text\",\"text\":\"more\"}],\"attachments\":[],"                  \
  "\"inference_options\":{}}}}"

#define THREAD1                                                                                    \
  "{\"id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:00\",\"status\":{\"type\":"              \
  "\"active\"},\"metadata\":{},\"items\":{\"data\":[],\"has_more\":false}}"
#define USER1_ITEM                                                                                 \
  "{\"id\":\"msg_0001\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:01\","        \
  "\"type\":\"user_message\",\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"}],"             \
  "\"attachments\":[],\"inference_options\":{}}"
#define USER1 "{\"type\":\"thread.item.done\",\"item\":" USER1_ITEM "}"
#define OPTS "{\"type\":\"stream_options\",\"stream_options\":{\"allow_cancel\":true}}"
#define ASSISTANT(text)                                                                            \
  "{\"id\":\"msg_0002\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:02\","        \
  "\"type\":\"assistant_message\",\"content\":[{\"annotations\":[],\"text\":\"" text "\","         \
  "\"type\":\"output_text\"}]}"
#define UPD(body) "{\"type\":\"thread.item.updated\",\"item_id\":\"msg_0002\",\"update\":" body "}"
#define DELTA(d)                                                                                   \
  UPD("{\"type\":\"assistant_message.content_part.text_delta\",\"content_index\":0,\"delta\":\"" d \
      "\"}")
#define PART(kind, text)                                                                           \
  UPD("{\"type\":\"assistant_message.content_part." kind "\",\"content_index\":0,\"content\":{"    \
      "\"annotations\":[],\"text\":\"" text "\",\"type\":\"output_text\"}}")
#define CANCEL_TEXT "The user cancelled the stream. Stop responding to the prior request."

static void expect_frames(const hx *h, const char *const *want, size_t n) {
  assert_false(h->bad_framing);
  for (size_t i = 0; i < n && i < h->nframes; i++)
    if (strcmp(h->frames[i], want[i]) != 0)
      fail_msg("frame %zu:\n got  %s\n want %s", i, h->frames[i], want[i]);
  if (h->nframes != n)
    fail_msg("%zu frames, want %zu (last: %s)", h->nframes, n,
             h->nframes ? h->frames[h->nframes - 1] : "-");
}

static void expect_stored(hx *h, const char *tid, const char *const *want, size_t n) {
  char *got[64];
  size_t k = hx_stored_items(h, NULL, tid, got, 64);
  for (size_t i = 0; i < n && i < k; i++)
    if (strcmp(got[i], want[i]) != 0)
      fail_msg("stored item %zu:\n got  %s\n want %s", i, got[i], want[i]);
  if (k != n)
    fail_msg("%zu stored items, want %zu", k, n);
  hx_free_strings(got, k);
}

/* ---- Tests ---- */

/* The same answer through events the handler builds (M_TEXT) or through the assistant
 * helpers (M_HELPERS, whose deltas are written without a JSON tree): the same bytes. */
static void check_stream_text(mode m) {
  scenario *sc = new_scenario(m);
  static const char *const deltas[] = {"H\xC3\xA9llo", " \"x\"", " \n"};
  sc->deltas = deltas;
  sc->ndeltas = 3;
  hx *h = setup(sc);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  const char *const want[] = {
      "{\"type\":\"thread.created\",\"thread\":" THREAD1 "}",
      USER1,
      OPTS,
      "{\"type\":\"thread.item.added\",\"item\":{\"id\":\"msg_0002\",\"thread_id\":\"thr_0001\","
      "\"created_at\":\"2025-01-01T00:00:02\",\"type\":\"assistant_message\",\"content\":[]}}",
      PART("added", ""),
      DELTA("H\xC3\xA9llo"),
      DELTA(" \\\"x\\\""),
      DELTA(" \\n"),
      PART("done", "H\xC3\xA9llo \\\"x\\\" \\n"),
      "{\"type\":\"thread.item.done\",\"item\":" ASSISTANT("H\xC3\xA9llo \\\"x\\\" \\n") "}",
  };
  expect_frames(h, want, sizeof(want) / sizeof(want[0]));
  const char *const stored[] = {USER1_ITEM, ASSISTANT("H\xC3\xA9llo \\\"x\\\" \\n")};
  expect_stored(h, "thr_0001", stored, 2);
  teardown(h);
  free_scenario(sc);
}

static void test_stream_text(void **state) {
  check_stream_text(M_TEXT);
}

static void test_stream_text_helpers(void **state) {
  check_stream_text(M_HELPERS);
}

/* protocol.md §6.2: a done item is persisted before it is sent; when that fails, nothing is
 * sent for it, the handler sees the store error, and its failure becomes stream.error. */
static void test_persist_before_emit(void **state) {
  scenario *sc = new_scenario(M_TEXT);
  static const char *const deltas[] = {"a"};
  sc->deltas = deltas;
  sc->ndeltas = 1;
  hx *h = setup(sc);
  h->fail_add_type = "assistant_message";
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  assert_int_equal(sc->emit_rc, CK_ESTORE);
  assert_int_equal(hx_find(h, "\"type\":\"thread.item.done\",\"item\":{\"id\":\"msg_0002\""), -1);
  assert_string_equal(hx_frame(h, h->nframes - 1),
                      "{\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":true}");
  assert_string_equal(hx_frame(h, h->nframes - 2), PART("done", "a"));
  char *items[8];
  size_t n = hx_stored_items(h, NULL, "thr_0001", items, 8);
  assert_int_equal(n, 1); /* only the user message */
  hx_free_strings(items, n);
  teardown(h);
  free_scenario(sc);
}

static void test_thread_updated_after_next_event(void **state) {
  scenario *sc = new_scenario(M_TITLE);
  hx *h = setup(sc);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  const char *const want[] = {
      "{\"type\":\"thread.created\",\"thread\":" THREAD1 "}",
      USER1,
      OPTS,
      "{\"type\":\"progress_update\",\"text\":\"one\"}",
      "{\"type\":\"thread.updated\",\"thread\":{\"title\":\"T\",\"id\":\"thr_0001\",\"created_at\":"
      "\"2025-01-01T00:00:00\",\"status\":{\"type\":\"active\"},\"metadata\":{},\"items\":{"
      "\"data\":[],\"has_more\":false}}}",
      "{\"type\":\"progress_update\",\"text\":\"two\"}",
  };
  expect_frames(h, want, sizeof(want) / sizeof(want[0]));
  char *json = NULL;
  assert_int_equal(hx_request(h, NULL, "{\"type\":\"threads.list\",\"params\":{}}", &json, NULL),
                   CK_OK);
  assert_non_null(strstr(json, "\"title\":\"T\""));
  free(json);
  teardown(h);
  free_scenario(sc);
}

static void test_hidden_done_swallowed(void **state) {
  scenario *sc = new_scenario(M_HIDDEN);
  hx *h = setup(sc);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  assert_int_equal(hx_find(h, "hidden_context_item"), -1);
  assert_string_equal(hx_frame(h, h->nframes - 1),
                      "{\"type\":\"progress_update\",\"text\":\"after\"}");
  assert_string_equal(hx_frame(h, h->nframes - 2), OPTS);
  char *items[8];
  size_t n = hx_stored_items(h, NULL, "thr_0001", items, 8);
  assert_int_equal(n, 2);
  assert_non_null(strstr(items[1], "\"type\":\"hidden_context_item\",\"content\":\"secret\""));
  hx_free_strings(items, n);
  /* items.list filters it out too. */
  char *json = NULL;
  assert_int_equal(hx_request(h, NULL,
                              "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"thr_0001\"}}",
                              &json, NULL),
                   CK_OK);
  assert_null(strstr(json, "hidden"));
  free(json);
  teardown(h);
  free_scenario(sc);
}

/* The stop button from another thread while the handler waits on its model. */
static void test_cancel_from_another_thread(void **state) {
  scenario *sc = new_scenario(M_WAIT_CANCEL);
  hx *h = setup(sc);
  hx_runner r = {NULL, h, 0};
  assert_int_equal(hx_open_stream(h, NULL, CREATE, &r.s), CK_OK);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, hx_run_stream, &r), 0);
  pthread_mutex_lock(&sc->mu);
  while (sc->phase != 1)
    pthread_cond_wait(&sc->cv, &sc->mu);
  ck_stream_cancel(r.s);
  assert_true(ck_stream_is_cancelled(r.s));
  sc->phase = 2;
  pthread_cond_broadcast(&sc->cv);
  pthread_mutex_unlock(&sc->mu);
  pthread_join(th, NULL);
  assert_int_equal(r.rc, CK_ECANCELLED);
  assert_int_equal(sc->emit_rc, CK_ECANCELLED);
  assert_int_equal(ck_stream_events_sent(r.s), h->nframes);
  ck_stream_free(r.s);
  assert_string_equal(hx_frame(h, h->nframes - 1), DELTA("Hello, "));
  const char *const stored[] = {
      USER1_ITEM,
      "{\"id\":\"msg_0002\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:02\","
      "\"type\":\"assistant_message\",\"content\":[{\"annotations\":[],\"text\":\"Hello, \","
      "\"type\":\"output_text\"}]}",
      "{\"id\":\"shcx_0001\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:03\","
      "\"type\":\"sdk_hidden_context\",\"content\":\"" CANCEL_TEXT "\"}",
  };
  expect_stored(h, "thr_0001", stored, 3);
  teardown(h);
  free_scenario(sc);
}

/* A sink that reports the client gone triggers the same routine. */
static void test_sink_cancel(void **state) {
  scenario *sc = new_scenario(M_TEXT);
  static const char *const deltas[] = {"Hello, ", "World!"};
  sc->deltas = deltas;
  sc->ndeltas = 2;
  hx *h = setup(sc);
  h->cancel_at = 8; /* created, user, options, added, part, 2 deltas; the part done is refused */
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_ECANCELLED);
  assert_int_equal(h->nframes, 7);
  assert_int_equal(sc->emit_rc, CK_ECANCELLED);
  char *items[8];
  size_t n = hx_stored_items(h, NULL, "thr_0001", items, 8);
  assert_int_equal(n, 3);
  assert_non_null(strstr(items[1], "\"text\":\"Hello, World!\""));
  assert_non_null(strstr(items[2], CANCEL_TEXT));
  hx_free_strings(items, n);
  teardown(h);
  free_scenario(sc);
}

/* The growable text buffer: 1000 deltas, then the client leaves; the whole text is saved. */
static void test_cancel_after_1000_deltas(void **state) {
  scenario *sc = new_scenario(M_TEXT);
  static char storage[1000][8];
  static const char *deltas[1000];
  for (int i = 0; i < 1000; i++) {
    snprintf(storage[i], sizeof(storage[i]), "%03d,", i);
    deltas[i] = storage[i];
  }
  sc->deltas = deltas;
  sc->ndeltas = 1000;
  hx *h = setup(sc);
  h->cancel_at = 5 + 1000 + 1;
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_ECANCELLED);
  assert_int_equal(h->nframes, 1005);
  char *items[8];
  size_t n = hx_stored_items(h, NULL, "thr_0001", items, 8);
  assert_int_equal(n, 3);
  char *want = malloc(4 * 1000 + 1);
  for (int i = 0; i < 1000; i++)
    memcpy(want + 4 * i, storage[i], 4);
  want[4000] = '\0';
  const char *text = strstr(items[1], "\"text\":\"");
  assert_non_null(text);
  assert_memory_equal(text + 8, want, 4000);
  assert_string_equal(text + 8 + 4000, "\",\"type\":\"output_text\"}]}");
  free(want);
  hx_free_strings(items, n);
  teardown(h);
  free_scenario(sc);
}

static void count_notify(void *ud, ck_stream *s) {
  (*(int *)ud)++;
}

/* Pushes inside a hold notify the owner once, at the flush; the end marker ends a hold (the
 * producer may not touch the stream after it), so it notifies too. */
static void test_push_hold(void **state) {
  scenario *sc = new_scenario(M_TEXT);
  hx *h = setup(sc);
  ck_arena *a = ck_arena_new(1024);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  sc->m = M_ASYNC;
  ck_stream *s = NULL;
  assert_int_equal(hx_open_stream(h, NULL, ADD_MSG("thr_0001"), &s), CK_OK);
  int notified = 0;
  ck_stream_set_notify(s, count_notify, &notified);
  assert_int_equal(ck_stream_run(s, hx_sink(h)), CK_PENDING);
  ck_stream_push_hold(s);
  assert_int_equal(ck_stream_push_canonical(s, ck_event_progress(a, NULL, "held-1")), CK_OK);
  assert_int_equal(ck_stream_push_canonical(s, ck_event_progress(a, NULL, "held-2")), CK_OK);
  assert_int_equal(notified, 0);
  ck_stream_push_flush(s);
  assert_int_equal(notified, 1);
  ck_stream_push_flush(s); /* nothing waits (a drain is still due): no second call */
  assert_int_equal(notified, 1);
  assert_int_equal(ck_stream_drain(s), CK_PENDING);
  assert_true(hx_find(h, "held-1") >= 0 && hx_find(h, "held-2") > hx_find(h, "held-1"));
  /* Without a hold every push after a drain notifies at once. */
  assert_int_equal(ck_stream_push_canonical(s, ck_event_progress(a, NULL, "free")), CK_OK);
  assert_int_equal(notified, 2);
  assert_int_equal(ck_stream_drain(s), CK_PENDING);
  ck_stream_push_hold(s);
  assert_int_equal(ck_stream_push_canonical(s, ck_event_progress(a, NULL, "last")), CK_OK);
  assert_int_equal(notified, 2);
  assert_int_equal(ck_stream_push_end(s), CK_OK);
  assert_int_equal(notified, 3);
  assert_int_equal(ck_stream_drain(s), CK_OK);
  assert_true(hx_find(h, "last") >= 0);
  ck_stream_free(s);
  ck_arena_free(a);
  teardown(h);
  free_scenario(sc);
}

/* A threads.create stream whose handler (M_ASYNC) returned CK_PENDING: the test pushes. */
static ck_stream *start_async(hx *h) {
  ck_stream *s = NULL;
  assert_int_equal(hx_open_stream(h, NULL, CREATE, &s), CK_OK);
  assert_int_equal(ck_stream_run(s, hx_sink(h)), CK_PENDING);
  return s;
}

/* ck_stream_push_message_done: the pipeline ends a streamed message from its own record of it,
 * the text with content_part.done and text and annotations with the done item (sent and
 * stored); a second call, for a message no longer open, does nothing. */
static void test_push_message_done(void **state) {
  scenario *sc = new_scenario(M_ASYNC);
  hx *h = setup(sc);
  ck_arena *a = ck_arena_new(2048);
  ck_stream *s = start_async(h);
  ck_json *item = ck_item_assistant_message(a, "msg_0002", "thr_0001", "2025-01-01T00:00:02", NULL);
  assert_int_equal(ck_stream_push_canonical(s, ck_event_item(a, "thread.item.added", item)), CK_OK);
  ck_json *part = ck_assistant_content(a, "", 0);
  assert_int_equal(
      ck_stream_push_canonical(
          s, ck_event_item_updated(a, "msg_0002", ck_update_content_part(a, false, 0, part))),
      CK_OK);
  assert_int_equal(ck_stream_push_text_delta(s, "msg_0002", 0, "H\"\n", 3), CK_OK);
  assert_int_equal(ck_stream_push_text_delta(s, "msg_0002", 0, "\xC3\xA9", 2), CK_OK);
  ck_json *upd = NULL;
  const char *ann = "{\"type\":\"assistant_message.content_part.annotation_added\","
                    "\"content_index\":0,\"annotation_index\":0,\"annotation\":{\"type\":"
                    "\"annotation\",\"source\":{\"title\":\"T\",\"type\":\"url\",\"url\":"
                    "\"https://x\"},\"index\":5}}";
  assert_int_equal(ck_json_parse(a, ann, strlen(ann), 0, &upd, NULL), CK_OK);
  assert_int_equal(ck_stream_push(s, ck_event_item_updated(a, "msg_0002", upd)), CK_OK);
  assert_int_equal(ck_stream_push_message_done(s, "msg_0002"), CK_OK);
  assert_int_equal(ck_stream_push_message_done(s, "msg_0002"), CK_OK); /* not open any more */
  assert_int_equal(ck_stream_push_end(s), CK_OK);
  assert_int_equal(ck_stream_drain(s), CK_OK);
  ck_stream_free(s);
#define ANN_ASSISTANT                                                                              \
  "{\"id\":\"msg_0002\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:02\","        \
  "\"type\":\"assistant_message\",\"content\":[{\"annotations\":[{\"type\":\"annotation\","        \
  "\"source\":{\"title\":\"T\",\"type\":\"url\",\"url\":\"https://x\"},\"index\":5}],\"text\":"    \
  "\"H\\\"\\n\xC3\xA9\",\"type\":\"output_text\"}]}"
  assert_true(h->nframes >= 2);
  /* The deltas, written without a JSON tree, are the bytes the tree would give. */
  assert_true(hx_find(h, DELTA("H\\\"\\n")) >= 0);
  assert_true(hx_find(h, DELTA("\xC3\xA9")) >= 0);
  assert_string_equal(h->frames[h->nframes - 2], PART("done", "H\\\"\\n\xC3\xA9"));
  assert_string_equal(h->frames[h->nframes - 1],
                      "{\"type\":\"thread.item.done\",\"item\":" ANN_ASSISTANT "}");
  size_t dones = 0;
  for (size_t i = 0; i < h->nframes; i++)
    dones += strstr(h->frames[i], "\"thread.item.done\",\"item\":{\"id\":\"msg_0002\"") != NULL;
  assert_int_equal(dones, 1);
  const char *const stored[] = {USER1_ITEM, ANN_ASSISTANT};
  expect_stored(h, "thr_0001", stored, 2);
#undef ANN_ASSISTANT
  ck_arena_free(a);
  teardown(h);
  free_scenario(sc);
}

/* ck_stream_push_workflow: steps run in queue order on the pipeline's thread; bad arguments
 * are refused at once, and ending with no workflow open sends nothing. */
static void test_push_workflow(void **state) {
  scenario *sc = new_scenario(M_ASYNC);
  hx *h = setup(sc);
  ck_arena *a = ck_arena_new(1024);
  ck_stream *s = start_async(h);
  size_t before = h->nframes;
  assert_int_equal(ck_stream_push_workflow(s, (ck_workflow_op)0, NULL, 0, false), CK_EINVAL);
  assert_int_equal(ck_stream_push_workflow(s, CK_WORKFLOW_ADD_TASK, NULL, 0, false), CK_EINVAL);
  assert_int_equal(ck_stream_push_workflow(s, CK_WORKFLOW_END, NULL, 0, false), CK_OK);
  assert_int_equal(ck_stream_drain(s), CK_PENDING);
  assert_int_equal(h->nframes, before);
  ck_json *task = NULL;
  const char *t = "{\"type\":\"custom\",\"title\":\"Step\"}";
  assert_int_equal(ck_json_parse(a, t, strlen(t), 0, &task, NULL), CK_OK);
  assert_int_equal(ck_stream_push_workflow(s, CK_WORKFLOW_ADD_TASK, task, 0, false), CK_OK);
  ck_json *sum = NULL;
  const char *st = "{\"title\":\"Done\"}";
  assert_int_equal(ck_json_parse(a, st, strlen(st), 0, &sum, NULL), CK_OK);
  assert_int_equal(ck_stream_push_workflow(s, CK_WORKFLOW_END, sum, 0, true), CK_OK);
  assert_int_equal(ck_stream_push_end(s), CK_OK);
  assert_int_equal(ck_stream_drain(s), CK_OK);
  assert_int_equal(h->nframes, before + 2);
  assert_non_null(strstr(h->frames[before], "\"type\":\"thread.item.added\""));
  assert_non_null(strstr(h->frames[before], "\"title\":\"Step\""));
  assert_non_null(strstr(h->frames[before + 1], "\"type\":\"thread.item.done\""));
  assert_non_null(
      strstr(h->frames[before + 1], "\"summary\":{\"title\":\"Done\"},\"expanded\":true"));
  ck_stream_free(s);
  ck_arena_free(a);
  teardown(h);
  free_scenario(sc);
}

/* The default ids: prefix, '_' and 8 lowercase hex digits, drawn from a buffer of random bytes
 * that is refilled every 64 ids. Across 1,000 ids (many refills) no id repeats its neighbour
 * or the id one buffer earlier, which a position that does not advance or a buffer that is not
 * refilled would produce. (Comparing every pair would fail by chance once in ~8,600 runs.) */
static void test_default_ids(void **state) {
  ck_store *store = NULL;
  assert_int_equal(ck_store_open_url("memory:", &store, NULL, 0), CK_OK);
  ck_server_config cfg = {.store = store};
  ck_server *srv = ck_server_new(&cfg);
  ck_arena *a = ck_arena_new(4096);
  enum { N = 1000 };
  static char ids[N][16];
  for (int i = 0; i < N; i++) {
    const char *id = ck_server_generate_id(srv, a, i % 2 ? "message" : "thread", NULL);
    assert_non_null(id);
    const char *hex = id + 4;
    assert_memory_equal(id, i % 2 ? "msg_" : "thr_", 4);
    assert_int_equal(strlen(hex), 8);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 8);
    memcpy(ids[i], hex, 9);
    if (i >= 1)
      assert_string_not_equal(ids[i - 1], ids[i]);
    if (i >= 64)
      assert_string_not_equal(ids[i - 64], ids[i]);
  }
  ck_arena_free(a);
  ck_server_free(srv);
  ck_store_free(store);
}

/* A pending message with only whitespace (Python's str.isspace(), Unicode included) is not
 * saved on cancel; the hidden item always is. */
static void test_cancel_skips_blank_message(void **state) {
  scenario *sc = new_scenario(M_TEXT_OPEN);
  static const char *const deltas[] = {
      " \n\t\x1f\xC2\xA0\xC2\x85\xE2\x80\x83\xE2\x80\xA8\xE3\x80\x80"};
  sc->deltas = deltas;
  sc->ndeltas = 1;
  hx *h = setup(sc);
  h->cancel_at = 7; /* the part done after the blank delta */
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_ECANCELLED);
  char *items[8];
  size_t n = hx_stored_items(h, NULL, "thr_0001", items, 8);
  assert_int_equal(n, 2);
  assert_non_null(strstr(items[1], "sdk_hidden_context"));
  hx_free_strings(items, n);
  teardown(h);
  free_scenario(sc);
}

static void run_failure(mode m, const char *code, int retry, const char *want_last) {
  scenario *sc = new_scenario(m);
  sc->code = code;
  sc->retry = retry;
  hx *h = setup(sc);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  assert_int_equal(h->nframes, 4);
  assert_string_equal(hx_frame(h, 2), OPTS);
  assert_string_equal(hx_frame(h, 3), want_last);
  teardown(h);
  free_scenario(sc);
}

static void test_failures(void **state) {
  run_failure(M_FAIL_CUSTOM, NULL, 0,
              "{\"type\":\"error\",\"code\":\"custom\",\"message\":\"Nope\",\"allow_retry\":true}");
  run_failure(M_FAIL_CODE, "stream.error", -1,
              "{\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":true}");
  run_failure(M_FAIL_CODE, "stream.error", 0,
              "{\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":false}");
  run_failure(M_FAIL_CODE, "quota", -1,
              "{\"type\":\"error\",\"code\":\"quota\",\"allow_retry\":false}");
  run_failure(M_FAIL_CODE, "quota", 1,
              "{\"type\":\"error\",\"code\":\"quota\",\"allow_retry\":true}");
  run_failure(M_FAIL_PLAIN, NULL, 0,
              "{\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":true}");
  /* A title set before the failure is still saved and announced after the error. */
  scenario *sc = new_scenario(M_TITLE_FAIL);
  hx *h = setup(sc);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  assert_int_equal(h->nframes, 5);
  assert_string_equal(
      hx_frame(h, 3),
      "{\"type\":\"error\",\"code\":\"custom\",\"message\":\"bad\",\"allow_retry\":false}");
  assert_non_null(
      strstr(hx_frame(h, 4), "{\"type\":\"thread.updated\",\"thread\":{\"title\":\"T\""));
  teardown(h);
  free_scenario(sc);
}

static void test_default_action_handler(void **state) {
  scenario *sc = new_scenario(M_TEXT);
  hx *h = setup(sc);
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  assert_int_equal(hx_request(h, NULL,
                              "{\"type\":\"threads.custom_action\",\"params\":{\"thread_id\":"
                              "\"thr_0001\",\"action\":{\"type\":\"go\"}}}",
                              NULL, NULL),
                   CK_OK);
  const char *const want[] = {
      OPTS, "{\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":true}"};
  expect_frames(h, want, 2);
  teardown(h);
  free_scenario(sc);
}

static void test_user_isolation(void **state) {
  scenario *sc = new_scenario(M_TEXT);
  hx *h = setup(sc);
  const ck_ctx b = {"u2", NULL, NULL};
  ck_error_info err;
  char *json = NULL;
  assert_int_equal(hx_request(h, NULL, CREATE, NULL, NULL), CK_OK);
  assert_int_equal(hx_request(h, &b,
                              "{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":"
                              "\"thr_0001\"}}",
                              &json, &err),
                   CK_ENOTFOUND);
  assert_string_equal(err.message, "Thread thr_0001 not found");
  assert_int_equal(hx_request(h, &b,
                              "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"thr_0001\"}}",
                              &json, &err),
                   CK_ENOTFOUND);
  assert_int_equal(hx_request(h, &b, ADD_MSG("thr_0001"), NULL, &err), CK_ENOTFOUND);
  assert_int_equal(h->nframes, 0);
  assert_int_equal(hx_request(h, &b, "{\"type\":\"threads.list\",\"params\":{}}", &json, &err),
                   CK_OK);
  assert_string_equal(json, "{\"data\":[],\"has_more\":false}");
  free(json);
  /* Nothing of B's attempt reached A's thread. */
  char *items[8];
  size_t n = hx_stored_items(h, NULL, "thr_0001", items, 8);
  assert_int_equal(n, 2);
  hx_free_strings(items, n);
  /* A still sees it. */
  assert_int_equal(hx_request(h, NULL, "{\"type\":\"threads.list\",\"params\":{}}", &json, &err),
                   CK_OK);
  assert_non_null(strstr(json, "thr_0001"));
  free(json);
  teardown(h);
  free_scenario(sc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stream_text),
      cmocka_unit_test(test_stream_text_helpers),
      cmocka_unit_test(test_persist_before_emit),
      cmocka_unit_test(test_thread_updated_after_next_event),
      cmocka_unit_test(test_hidden_done_swallowed),
      cmocka_unit_test(test_cancel_from_another_thread),
      cmocka_unit_test(test_sink_cancel),
      cmocka_unit_test(test_cancel_after_1000_deltas),
      cmocka_unit_test(test_cancel_skips_blank_message),
      cmocka_unit_test(test_push_hold),
      cmocka_unit_test(test_default_ids),
      cmocka_unit_test(test_push_message_done),
      cmocka_unit_test(test_push_workflow),
      cmocka_unit_test(test_failures),
      cmocka_unit_test(test_default_action_handler),
      cmocka_unit_test(test_user_isolation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
