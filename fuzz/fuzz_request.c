/* libFuzzer harness for request handling. Every input goes through two checks:
 *
 * 1. ck_request_parse. An input that parses has its canonical params serialised, wrapped in a
 *    new envelope and parsed again; the second canonical form must be byte-identical to the
 *    first (canonicalisation is idempotent), or the harness traps.
 * 2. The whole processor: ck_server_process on a fresh memory store seeded with one thread of
 *    every interesting item kind, with a respond handler that streams a short assistant
 *    message, and ck_stream_run into a sink that discards frames. The sink reports the client
 *    gone after a number of frames taken from the input, so the cancellation routine runs too.
 *
 * It must never crash, leak (ASan's leak check runs at exit and per input under libFuzzer) or
 * hang. Build with -DCK_FUZZ=ON (clang).
 */
#include <chatkit/error.h>
#include <chatkit/protocol.h>
#include <chatkit/server.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);                    \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* ---- 1. Parse and re-parse ---- */

static void check_parse(const char *body, size_t len) {
  ck_arena *a = ck_arena_new(0);
  CHECK(a != NULL);
  ck_request req;
  ck_validation_error err;
  int rc = ck_request_parse(a, body, len, &req, &err);
  if (rc == CK_OK) {
    size_t n1 = 0;
    char *p1 = ck_json_dumps(a, req.params, &n1);
    CHECK(p1 != NULL);
    char *env =
        ck_arena_printf(a, "{\"type\":\"%s\",\"params\":%s}", ck_request_type_name(req.type), p1);
    CHECK(env != NULL);
    ck_request again;
    rc = ck_request_parse(a, env, strlen(env), &again, &err);
    /* A tool output whose result is null loses the key in its canonical params (nulls are
     * omitted), and result is a required key; that one case cannot parse again. */
    if (rc != CK_OK && req.type == CK_REQ_THREADS_ADD_CLIENT_TOOL_OUTPUT &&
        ck_json_object_get(req.params, "result") == NULL) {
      ck_arena_free(a);
      return;
    }
    if (rc != CK_OK) {
      fprintf(stderr, "canonical params rejected: %s: %s\n%s\n", err.path, err.message, env);
      abort();
    }
    CHECK(again.type == req.type);
    size_t n2 = 0;
    char *p2 = ck_json_dumps(a, again.params, &n2);
    CHECK(p2 != NULL);
    if (n1 != n2 || memcmp(p1, p2, n1) != 0) {
      fprintf(stderr, "unstable canonical params:\n%s\n%s\n", p1, p2);
      abort();
    }
  } else {
    CHECK(rc == CK_EINVAL || rc == CK_ENOMEM);
    if (rc == CK_EINVAL)
      CHECK(memchr(err.path, '\0', sizeof(err.path)) != NULL &&
            memchr(err.message, '\0', sizeof(err.message)) != NULL);
  }
  ck_arena_free(a);
}

/* ---- 2. The whole processor ---- */

typedef struct fz {
  int ids;
  int64_t clock;
  size_t frames;
  size_t cancel_at; /* 0: never */
} fz;

static int idgen(void *ud, const char *kind, const ck_json *thread, char *out, size_t cap) {
  fz *f = ud;
  const char *p = ck_id_prefix(kind);
  snprintf(out, cap, "%s_f%04d", p ? p : kind, ++f->ids);
  return CK_OK;
}

static int64_t clock_fn(void *ud) {
  fz *f = ud;
  return 1735689600LL * 1000000 + 1000LL * f->clock++;
}

static int sink_frame(void *ud, const char *frame, size_t len) {
  fz *f = ud;
  f->frames++;
  if (len < 8 || memcmp(frame, "data: ", 6) != 0 || memcmp(frame + len - 2, "\n\n", 2) != 0)
    abort();
  return (f->cancel_at != 0 && f->frames >= f->cancel_at) ? CK_ECANCELLED : CK_OK;
}

static int respond(void *ud, ck_stream *s, const ck_json *user_message) {
  ck_arena *a = ck_stream_scratch(s);
  const char *id = ck_stream_new_id(s, "message");
  const char *now = ck_stream_now(s);
  const char *tid = ck_json_object_get_str(ck_stream_thread(s), "id");
  int rc = ck_emit_canonical(
      s, ck_event_item(a, "thread.item.added", ck_item_assistant_message(a, id, tid, now, NULL)));
  if (rc != CK_OK)
    return rc;
  a = ck_stream_scratch(s);
  rc = ck_emit_canonical(s, ck_event_item_updated(a, id, ck_update_text_delta(a, 0, "Hi", 2)));
  if (rc != CK_OK)
    return rc;
  a = ck_stream_scratch(s);
  ck_json *content = ck_json_array(a);
  ck_json_array_append(content, ck_assistant_content(a, "Hi", 2));
  rc = ck_emit_canonical(
      s, ck_event_item(a, "thread.item.done", ck_item_assistant_message(a, id, tid, now, content)));
  if (rc != CK_OK)
    return rc;
  /* A title change exercises the thread-change check. */
  ck_json *t = ck_stream_thread(s);
  ck_json_object_set(t, "title", ck_json_str(ck_json_arena(t), "fuzzed"));
  return CK_OK;
}

/* One thread with an item of each kind the streaming operations look for, the pending tool
 * call last so threads.add_client_tool_output finds it. */
static const char *const seed_items[] = {
    "{\"id\":\"msg_0001\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:01\","
    "\"type\":\"user_message\",\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"}],"
    "\"attachments\":[],\"inference_options\":{}}",
    "{\"id\":\"msg_0002\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:02\","
    "\"type\":\"assistant_message\",\"content\":[{\"annotations\":[],\"text\":\"yo\",\"type\":"
    "\"output_text\"}]}",
    "{\"id\":\"w_1\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:03\",\"type\":"
    "\"widget\",\"widget\":{\"type\":\"Card\",\"children\":[]}}",
    "{\"id\":\"si_1\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:04\",\"type\":"
    "\"structured_input\",\"status\":\"pending\",\"inputs\":[{\"id\":\"a\",\"question\":\"Q\","
    "\"type\":\"multiple_choice\",\"options\":[{\"value\":\"x\"}],\"multiple\":false}]}",
    "{\"id\":\"hc_1\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:05\",\"type\":"
    "\"hidden_context_item\",\"content\":null}",
    "{\"id\":\"tc_1\",\"thread_id\":\"thr_0001\",\"created_at\":\"2025-01-01T00:00:06\",\"type\":"
    "\"client_tool_call\",\"status\":\"pending\",\"call_id\":\"c\",\"name\":\"n\",\"arguments\":{}"
    "}",
};

static void seed(ck_store *st, const ck_ctx *ctx) {
  ck_arena *a = ck_arena_new(0);
  ck_json *t = ck_thread_new(a, "thr_0001", "2025-01-01T00:00:00");
  CHECK(st->vt->save_thread(st, t, ctx) == CK_OK);
  for (size_t i = 0; i < sizeof(seed_items) / sizeof(seed_items[0]); i++) {
    ck_json *item = NULL;
    CHECK(ck_json_parse(a, seed_items[i], strlen(seed_items[i]), 0, &item, NULL) == CK_OK);
    CHECK(st->vt->add_thread_item(st, "thr_0001", item, ctx) == CK_OK);
  }
  ck_arena_free(a);
}

static void check_process(const char *body, size_t len, size_t cancel_at) {
  fz f = {0, 0, 0, cancel_at};
  ck_ctx ctx = {"fuzz-user", NULL, NULL};
  ck_store *st = ck_store_memory_new();
  CHECK(st != NULL);
  seed(st, &ctx);
  ck_server_config cfg = {0};
  cfg.store = st;
  cfg.handlers.respond = respond;
  cfg.idgen = idgen;
  cfg.idgen_ud = &f;
  cfg.clock = clock_fn;
  cfg.clock_ud = &f;
  ck_server *srv = ck_server_new(&cfg);
  CHECK(srv != NULL);
  ck_response resp;
  ck_error_info err;
  int rc = ck_server_process(srv, body, len, &ctx, &resp, &err);
  if (rc == CK_OK && resp.stream != NULL) {
    ck_sink sink = {sink_frame, &f};
    rc = ck_stream_run(resp.stream, &sink);
    CHECK(ck_stream_events_sent(resp.stream) <= f.frames);
    ck_stream_free(resp.stream);
  } else if (rc == CK_OK) {
    CHECK(resp.body != NULL);
    /* Every JSON answer is itself valid JSON. */
    ck_arena *a = ck_arena_new(0);
    ck_json *v = NULL;
    CHECK(ck_json_parse(a, resp.body, resp.body_len, 0, &v, NULL) == CK_OK);
    ck_arena_free(a);
    free(resp.body);
  } else {
    CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
  }
  ck_server_free(srv);
  ck_store_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The bodies are not NUL-terminated on purpose: the parser must honour the length. */
  char *body = malloc(size ? size : 1);
  if (body == NULL)
    return 0;
  memcpy(body, data, size);
  check_parse(body, size);
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 16777619u;
  /* Most runs go to the end; one in four is cut after a few frames. */
  size_t cancel_at = (h & 3) == 0 ? 1 + (h >> 2) % 8 : 0;
  check_process(body, size, cancel_at);
  free(body);
  return 0;
}
