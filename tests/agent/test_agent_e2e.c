/* End-to-end tests of the agent runtime (src/agent/runtime.c): a real service on a loop thread,
 * the scripted mock model on another, and HTTP requests from the test thread. They check what
 * the client sees (events), what was stored, and what was sent to the model. */
#include "support/http_client.h"
#include "support/mock_model.h"

#include <chatkit/chatkit.h>
#include <chatkit/model.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- The server under test ---- */

typedef struct fixture {
  ck_mock_model *mock;
  pthread_t thread;
  uv_loop_t loop;
  uv_async_t stop;
  ck_store *store;
  ck_server *server;
  ck_service *svc;
  ck_model_client *client;
  ck_agents *agents;
  int port;
  ck_model_api api;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool ready;
  ck_arena *a;
  ck_metrics *metrics;
  FILE *logf; /* the service's request log */
  ck_log *log;
} fixture;

static fixture fx;

/* A C tool: the weather for a city. */
static int get_weather(void *ud, ck_tool_ctx *t, const ck_json *args) {
  const char *city = ck_json_object_get_str(args, "city");
  if (city == NULL)
    return ck_tool_error(t, "city is required");
  ck_json *out = NULL;
  const char *text = "{\"temp_c\":4,\"sky\":\"cloudy\"}";
  ck_json_parse(ck_tool_arena(t), text, strlen(text), 0, &out, NULL);
  return ck_tool_result(t, out);
}

/* A C tool that asks the browser for the location (ck_tool_client_call). */
static int locate(void *ud, ck_tool_ctx *t, const ck_json *args) {
  ck_json *a = NULL;
  const char *text = "{\"precision\":\"city\"}";
  ck_json_parse(ck_tool_arena(t), text, strlen(text), 0, &a, NULL);
  assert_int_equal(ck_tool_client_call(t, "", a), CK_EINVAL);
  assert_int_equal(ck_tool_client_call(t, "get_location", a), CK_OK);
  return ck_tool_result_text(t, "asked the browser");
}

/* A C tool that shows its steps as a workflow (ck_tool_workflow_task/update). */
static int research(void *ud, ck_tool_ctx *t, const ck_json *args) {
  ck_arena *a = ck_tool_arena(t);
  static const char done[] = "{\"type\":\"custom\",\"title\":\"Searched\","
                             "\"status_indicator\":\"complete\"}";
  const char *texts[] = {"{\"type\":\"custom\",\"title\":\"Searching\"}",
                         "{\"type\":\"custom\",\"title\":\"Reading\"}", done};
  ck_json *task[3];
  for (int i = 0; i < 3; i++)
    ck_json_parse(a, texts[i], strlen(texts[i]), 0, &task[i], NULL);
  if (ck_tool_workflow_task(t, task[0]) != CK_OK || ck_tool_workflow_task(t, task[1]) != CK_OK ||
      ck_tool_workflow_update(t, task[2], 0) != CK_OK)
    return ck_tool_error(t, "workflow");
  return ck_tool_result_text(t, "found 3 pages");
}

static const ck_tool_def triage_tools[] = {
    {"get_weather", "The weather in a city",
     "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]"
     "}",
     get_weather, NULL, false},
    {"get_location", "The user's location (asked in the browser)", NULL, NULL, NULL, true},
    {"locate", "Finds the user (through the browser)", NULL, locate, NULL, false},
    {"research", "Looks things up", NULL, research, NULL, false},
};
static const char *const triage_handoffs[] = {"Billing Expert"};

static const ck_agent_def agents[] = {
    {"Triage", "You route questions.", "test-model", triage_tools, 4, triage_handoffs, 1, 0, NULL,
     NULL, NULL, 0},
    {"Billing Expert", "You answer billing questions.", "test-model", NULL, 0, NULL, 0, 0, NULL,
     NULL, NULL, 0},
};

/* The routing hook: messages that mention an invoice go straight to billing. */
static const char *route_billing(void *ud, const ck_json *thread, const ck_json *msg,
                                 const ck_ctx *ctx) {
  const ck_json *content = ck_json_object_get(msg, "content");
  const char *text = ck_json_object_get_str(ck_json_array_get(content, 0), "text");
  return text != NULL && strstr(text, "#billing") != NULL ? "Billing Expert" : NULL;
}

static void stop_loop(uv_async_t *h) {
  ck_service_shutdown(fx.svc, NULL, NULL);
  ck_model_client_free(fx.client);
  uv_close((uv_handle_t *)&fx.stop, NULL);
}

static void *server_main(void *arg) {
  uv_loop_init(&fx.loop);
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", ck_mock_model_port(fx.mock));
  ck_model_config mc = {0};
  mc.base_url = base;
  mc.api = fx.api;
  mc.model = "test-model";
  mc.max_retries = 1; /* one quick retry, so 429/5xx handling is visible and tests stay fast */
  mc.retry_base_ms = 10;
  mc.retry_max_ms = 20;
  int err = 0;
  fx.client = ck_model_client_new(&fx.loop, &mc, &err);
  fx.store = ck_store_memory_new();
  ck_server_config scfg = {.store = fx.store};
  /* The agents need the service and the service needs the server: fill the handlers once
   * both exist, before anything is served. */
  fx.server = NULL;
  static ck_agents_config acfg;
  memset(&acfg, 0, sizeof(acfg));
  acfg.client = fx.client;
  acfg.agents = agents;
  acfg.nagents = 2;
  acfg.auto_title = true;
  acfg.route = route_billing;
  acfg.metrics = fx.metrics;
  ck_service_config svcfg = {0};
  /* A placeholder server lets the service start; it is replaced below. */
  scfg.handlers.nonblocking = true;
  fx.server = ck_server_new(&scfg);
  svcfg.server = fx.server;
  svcfg.store = fx.store;
  svcfg.workers = 2;
  svcfg.log = fx.log;
  fx.svc = ck_service_new(&fx.loop, &svcfg);
  acfg.service = fx.svc;
  fx.agents = ck_agents_new(&acfg);
  ck_server_set_handlers(fx.server, ck_agents_handlers(fx.agents));
  ck_service_listen(fx.svc, "127.0.0.1", 0);
  uv_async_init(&fx.loop, &fx.stop, stop_loop);
  pthread_mutex_lock(&fx.mu);
  fx.port = ck_service_port(fx.svc);
  fx.ready = true;
  pthread_cond_signal(&fx.cv);
  pthread_mutex_unlock(&fx.mu);
  uv_run(&fx.loop, UV_RUN_DEFAULT);
  uv_loop_close(&fx.loop);
  return NULL;
}

static int start(ck_model_api api) {
  memset(&fx, 0, sizeof(fx));
  fx.api = api;
  fx.a = ck_arena_new(0);
  fx.metrics = ck_metrics_new();
  fx.logf = tmpfile();
  fx.log = ck_log_new(fx.logf, CK_LOG_INFO, CK_LOG_JSON);
  fx.mock = ck_mock_model_start(0);
  pthread_mutex_init(&fx.mu, NULL);
  pthread_cond_init(&fx.cv, NULL);
  pthread_create(&fx.thread, NULL, server_main, NULL);
  pthread_mutex_lock(&fx.mu);
  while (!fx.ready)
    pthread_cond_wait(&fx.cv, &fx.mu);
  pthread_mutex_unlock(&fx.mu);
  return fx.mock != NULL && fx.port > 0 ? 0 : -1;
}

static int setup_responses(void **state) {
  return start(CK_MODEL_API_RESPONSES);
}

static int setup_chat(void **state) {
  return start(CK_MODEL_API_CHAT);
}

static int teardown(void **state) {
  uv_async_send(&fx.stop);
  pthread_join(fx.thread, NULL);
  ck_agents_free(fx.agents);
  ck_server_free(fx.server);
  ck_store_free(fx.store);
  ck_mock_model_free(fx.mock);
  ck_arena_free(fx.a);
  ck_metrics_free(fx.metrics);
  ck_log_free(fx.log);
  if (fx.logf != NULL)
    fclose(fx.logf);
  return 0;
}

/* Waits up to two seconds for `needle` in the request log: the service writes a request's line
 * right after its last byte, so the client can see the end first. */
static bool log_has(const char *needle) {
  for (int tries = 0; tries < 200; tries++) {
    char buf[16384];
    fflush(fx.logf);
    rewind(fx.logf);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fx.logf);
    buf[n] = '\0';
    if (strstr(buf, needle) != NULL)
      return true;
    usleep(10000);
  }
  return false;
}

/* ---- Helpers ---- */

static const char *create_body(const char *text) {
  return ck_arena_printf(fx.a,
                         "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{"
                         "\"type\":\"input_text\",\"text\":\"%s\"}],\"attachments\":[],"
                         "\"inference_options\":{}}}}",
                         text);
}

static const char *thread_of(const ck_json *events) {
  ck_json *created = hc_find_type(events, "thread.created", 0);
  return ck_json_object_get_str(ck_json_object_get(created, "thread"), "id");
}

/* The text of the last assistant message stored in the thread. */
static const char *stored_reply(const char *tid) {
  hc_response r;
  const char *body = ck_arena_printf(
      fx.a, "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\",\"order\":\"desc\"}}", tid);
  assert_int_equal(hc_chatkit(fx.port, body, &r), 0);
  ck_json *page = hc_json(fx.a, r.body, r.body_len);
  hc_response_free(&r);
  ck_json *data = ck_json_object_get(page, "data");
  for (size_t i = 0; i < ck_json_array_size(data); i++) {
    ck_json *it = ck_json_array_get(data, i);
    if (strcmp(ck_json_object_get_str(it, "type"), "assistant_message") == 0)
      return hc_item_text(fx.a, it);
  }
  return NULL;
}

static const char *thread_title(const char *tid) {
  hc_response r;
  const char *body = ck_arena_printf(
      fx.a, "{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"%s\"}}", tid);
  assert_int_equal(hc_chatkit(fx.port, body, &r), 0);
  ck_json *t = hc_json(fx.a, r.body, r.body_len);
  hc_response_free(&r);
  return ck_json_object_get_str(t, "title");
}

/* ---- Tests ---- */

static void test_text_and_title(void **state) {
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Hello there, friend.\",\"chunk\":5,"
                               "\"id\":\"msg_model_1\"},{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock,
                      "{\"steps\":[{\"text\":\"\\\"Greetings\\\"\\n\"},{\"finish\":\"stop\"}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Say hello"));
  assert_non_null(events);
  char types[2048];
  hc_event_types(events, types, sizeof(types));
  assert_non_null(strstr(types, "thread.created thread.item.done stream_options "
                                "thread.item.added assistant_message.content_part.added "
                                "assistant_message.content_part.text_delta"));
  /* The assistant message keeps the Responses message id. */
  ck_json *added = hc_find_type(events, "thread.item.added", 0);
  assert_string_equal(ck_json_object_get_str(ck_json_object_get(added, "item"), "id"),
                      "msg_model_1");
  ck_json *done = hc_find_type(events, "thread.item.done", 2);
  assert_string_equal(hc_item_text(fx.a, ck_json_object_get(done, "item")), "Hello there, friend.");
  /* The title call ran after the answer and named the thread (quotes and newline trimmed). */
  ck_json *upd = hc_find_type(events, "thread.updated", 0);
  assert_non_null(upd);
  assert_string_equal(ck_json_object_get_str(ck_json_object_get(upd, "thread"), "title"),
                      "Greetings");
  const char *tid = thread_of(events);
  assert_string_equal(stored_reply(tid), "Hello there, friend.");
  assert_string_equal(thread_title(tid), "Greetings");
  /* What the model was sent: the triage instructions, the user's message, the tools. */
  char *body = ck_mock_model_request_body(fx.mock, 0);
  assert_non_null(strstr(body, "\"instructions\":\"You route questions.\""));
  assert_non_null(strstr(body, "\"text\":\"Say hello\""));
  assert_non_null(strstr(body, "\"name\":\"get_weather\""));
  assert_non_null(strstr(body, "\"name\":\"transfer_to_billing_expert\""));
  free(body);
}

/* A model annotation becomes a ChatKit source: annotation_added while the message streams,
 * content_part.done with the bare text, and the done item (sent and stored) with the
 * annotation, all from the pipeline's record of the message. */
static void test_annotation_in_done_item(void **state) {
  ck_mock_model_queue(
      fx.mock, "{\"steps\":[{\"text\":\"See docs.\",\"chunk\":4,\"id\":\"msg_ann\","
               "\"annotations\":[{\"type\":\"url_citation\",\"url\":\"https://x.example\","
               "\"start_index\":4,\"end_index\":8,\"title\":\"Docs\"}]},{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Docs\"},{\"finish\":\"stop\"}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Cite something"));
  assert_non_null(events);
  char types[2048];
  hc_event_types(events, types, sizeof(types));
  assert_non_null(strstr(types, "assistant_message.content_part.annotation_added"));
  const char *want_ann = "[{\"type\":\"annotation\",\"source\":{\"title\":\"Docs\",\"type\":"
                         "\"url\",\"url\":\"https://x.example\"},\"index\":8}]";
  /* content_part.done: the text, no annotations. */
  bool part_done = false;
  for (size_t i = 0; i < ck_json_array_size(events); i++) {
    const ck_json *upd = ck_json_object_get(ck_json_array_get(events, i), "update");
    const char *t = ck_json_object_get_str(upd, "type");
    if (t == NULL || strcmp(t, "assistant_message.content_part.done") != 0)
      continue;
    const ck_json *c = ck_json_object_get(upd, "content");
    assert_string_equal(ck_json_object_get_str(c, "text"), "See docs.");
    assert_int_equal(ck_json_array_size(ck_json_object_get(c, "annotations")), 0);
    part_done = true;
  }
  assert_true(part_done);
  ck_json *done = hc_find_type(events, "thread.item.done", 2);
  const ck_json *item = ck_json_object_get(done, "item");
  assert_string_equal(ck_json_object_get_str(item, "id"), "msg_ann");
  const ck_json *c0 = ck_json_array_get(ck_json_object_get(item, "content"), 0);
  assert_string_equal(ck_json_object_get_str(c0, "text"), "See docs.");
  assert_string_equal(ck_json_dumps(fx.a, ck_json_object_get(c0, "annotations"), NULL), want_ann);
  /* The stored item is the same. */
  const char *tid = thread_of(events);
  hc_response r;
  const char *body =
      ck_arena_printf(fx.a, "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\"}}", tid);
  assert_int_equal(hc_chatkit(fx.port, body, &r), 0);
  ck_json *page = hc_json(fx.a, r.body, r.body_len);
  hc_response_free(&r);
  const ck_json *data = ck_json_object_get(page, "data");
  const ck_json *stored = NULL;
  for (size_t i = 0; i < ck_json_array_size(data); i++)
    if (strcmp(ck_json_object_get_str(ck_json_array_get(data, i), "id"), "msg_ann") == 0)
      stored = ck_json_array_get(data, i);
  assert_non_null(stored);
  assert_true(ck_json_equal(stored, item));
}

static void test_tool_round_trip(void **state) {
  ck_mock_model_queue(fx.mock,
                      "{\"steps\":[{\"tool_call\":{\"id\":\"call_w\",\"item_id\":\"fc_w\",\"name\":"
                      "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
                      "{\"finish\":\"tool_calls\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"It is 4 degrees in Oslo.\"},"
                               "{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Oslo weather\"},{\"finish\":\"stop\"}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Weather in Oslo?"));
  assert_non_null(events);
  const char *tid = thread_of(events);
  assert_string_equal(stored_reply(tid), "It is 4 degrees in Oslo.");
  /* The second model call carried the call and the tool's output, in that order. */
  char *body = ck_mock_model_request_body(fx.mock, 1);
  const char *call = strstr(body, "call_w");
  /* Responses sends a function_call_output item, Chat Completions a "tool" message. */
  const char *out = strstr(body, "{\\\"temp_c\\\":4,\\\"sky\\\":\\\"cloudy\\\"}");
  assert_non_null(call);
  assert_non_null(out);
  assert_true(call < out);
  free(body);
}

/* Sends the browser's `result` for the pending client tool call of thread `tid`, the model
 * answering `reply` (which must then be stored); returns the model's request for that answer
 * (the caller frees it). */
static char *send_client_output(const char *tid, const char *result, const char *reply) {
  ck_mock_model_queue(fx.mock, ck_arena_printf(fx.a,
                                               "{\"steps\":[{\"text\":\"%s\"},"
                                               "{\"finish\":\"stop\"}]}",
                                               reply));
  size_t before = ck_mock_model_requests(fx.mock);
  const char *out = ck_arena_printf(fx.a,
                                    "{\"type\":\"threads.add_client_tool_output\",\"params\":{"
                                    "\"thread_id\":\"%s\",\"result\":%s}}",
                                    tid, result);
  assert_non_null(hc_stream(fx.a, fx.port, out));
  assert_string_equal(stored_reply(tid), reply);
  char *body = ck_mock_model_request_body(fx.mock, before);
  assert_non_null(body);
  return body;
}

static void test_client_tool_round_trip(void **state) {
  ck_mock_model_queue(
      fx.mock, "{\"steps\":[{\"tool_call\":{\"id\":\"call_loc\",\"item_id\":\"fc_loc\","
               "\"name\":\"get_location\",\"arguments\":\"{}\"}},{\"finish\":\"tool_calls\"}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Where am I?"));
  assert_non_null(events);
  const char *tid = thread_of(events);
  /* The turn ended with a pending client tool call. The title call still ran (the mock's
   * default script answered it): the run that the tool output resumes has no user message to
   * name the thread after. */
  ck_json *done = hc_find_type(events, "thread.item.done", 2);
  ck_json *item = ck_json_object_get(done, "item");
  assert_string_equal(ck_json_object_get_str(item, "type"), "client_tool_call");
  assert_string_equal(ck_json_object_get_str(item, "status"), "pending");
  assert_string_equal(ck_json_object_get_str(item, "call_id"), "call_loc");
  assert_string_equal(ck_json_object_get_str(item, "id"), "fc_loc");

  char *body = send_client_output(tid, "{\"city\":\"Paris\"}", "You are in Paris.");
  /* The output reached the model as json.dumps text. */
  assert_non_null(strstr(body, "\"output\":\"{\\\"city\\\": \\\"Paris\\\"}\""));
  free(body);
}

/* A C tool asks for a client tool: the turn ends with a pending client_tool_call item on the
 * tool's call id, and the browser's output answers that call when the conversation resumes. */
static void test_tool_requests_client_tool(void **state) {
  ck_mock_model_queue(fx.mock,
                      "{\"steps\":[{\"tool_call\":{\"id\":\"call_c\",\"item_id\":\"fc_c\","
                      "\"name\":\"locate\",\"arguments\":\"{}\"}},{\"finish\":\"tool_calls\"}]}");
  size_t before = ck_mock_model_requests(fx.mock);
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Find me"));
  assert_non_null(events);
  const char *tid = thread_of(events);
  ck_json *done = hc_find_type(events, "thread.item.done", 2);
  ck_json *item = ck_json_object_get(done, "item");
  assert_string_equal(ck_json_object_get_str(item, "type"), "client_tool_call");
  assert_string_equal(ck_json_object_get_str(item, "status"), "pending");
  assert_string_equal(ck_json_object_get_str(item, "id"), "fc_c");
  assert_string_equal(ck_json_object_get_str(item, "call_id"), "call_c");
  assert_string_equal(ck_json_object_get_str(item, "name"), "get_location");
  assert_string_equal(ck_json_dumps(fx.a, ck_json_object_get(item, "arguments"), NULL),
                      "{\"precision\":\"city\"}");
  /* No second model call in that turn (the title call may follow). */
  char *second = ck_mock_model_requests(fx.mock) > before + 1
                     ? ck_mock_model_request_body(fx.mock, before + 1)
                     : NULL;
  assert_true(second == NULL || strstr(second, "asked the browser") == NULL);
  free(second);

  char *body = send_client_output(tid, "{\"city\":\"Lyon\"}", "Lyon it is.");
  assert_non_null(
      strstr(body, "{\"type\":\"function_call\",\"call_id\":\"call_c\",\"name\":\"get_location\""));
  assert_non_null(strstr(body, "\"output\":\"{\\\"city\\\": \\\"Lyon\\\"}\""));
  assert_null(strstr(body, "asked the browser"));
  free(body);
}

/* A tool's workflow: announced with its first task, updated while the tool runs, and ended
 * (with its duration) when the model's answer starts; it is stored with the thread. */
static void test_tool_workflow(void **state) {
  ck_mock_model_queue(fx.mock,
                      "{\"steps\":[{\"tool_call\":{\"id\":\"call_r\",\"item_id\":\"fc_r\","
                      "\"name\":\"research\",\"arguments\":\"{}\"}},{\"finish\":\"tool_calls\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Three pages.\"},{\"finish\":\"stop\"}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Look it up"));
  assert_non_null(events);
  char types[4096];
  hc_event_types(events, types, sizeof(types));
  const char *want = "thread.item.added workflow.task.added workflow.task.updated thread.item.done "
                     "thread.item.added assistant_message.content_part.added";
  if (strstr(types, want) == NULL)
    fprintf(stderr, "events: %s\n", types);
  assert_non_null(strstr(types, want));
  ck_json *added = hc_find_type(events, "thread.item.added", 0);
  const ck_json *wf = ck_json_object_get(ck_json_object_get(added, "item"), "workflow");
  assert_string_equal(ck_json_object_get_str(wf, "type"), "custom");
  assert_int_equal(ck_json_array_size(ck_json_object_get(wf, "tasks")), 1);
  ck_json *done = hc_find_type(events, "thread.item.done", 2);
  const ck_json *item = ck_json_object_get(done, "item");
  assert_string_equal(ck_json_object_get_str(item, "type"), "workflow");
  wf = ck_json_object_get(item, "workflow");
  const ck_json *tasks = ck_json_object_get(wf, "tasks");
  assert_int_equal(ck_json_array_size(tasks), 2);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(tasks, 0), "title"), "Searched");
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(tasks, 1), "title"), "Reading");
  assert_non_null(ck_json_object_get(ck_json_object_get(wf, "summary"), "duration"));
  assert_false(ck_json_bool_value(ck_json_object_get(wf, "expanded")));
  const char *tid = thread_of(events);
  assert_string_equal(stored_reply(tid), "Three pages.");
  hc_response r;
  const char *body =
      ck_arena_printf(fx.a, "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\"}}", tid);
  assert_int_equal(hc_chatkit(fx.port, body, &r), 0);
  assert_non_null(memmem(r.body, r.body_len, "\"type\":\"workflow\"", 17));
  hc_response_free(&r);
}

static void test_handoff(void **state) {
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"tool_call\":{\"id\":\"call_h\",\"name\":"
                               "\"transfer_to_billing_expert\",\"arguments\":\"{}\"}},"
                               "{\"finish\":\"tool_calls\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Billing here.\"},{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Billing\"},{\"finish\":\"stop\"}]}");
  size_t before = ck_mock_model_requests(fx.mock);
  ck_json *events = hc_stream(fx.a, fx.port, create_body("My invoice is wrong"));
  assert_string_equal(stored_reply(thread_of(events)), "Billing here.");
  char *body = ck_mock_model_request_body(fx.mock, before + 1);
  assert_non_null(strstr(body, "You answer billing questions."));
  assert_non_null(strstr(body, "{\\\"assistant\\\": \\\"Billing Expert\\\"}"));
  free(body);
}

static void test_routing_hook(void **state) {
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Routed.\"},{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"T\"},{\"finish\":\"stop\"}]}");
  size_t before = ck_mock_model_requests(fx.mock);
  ck_json *events = hc_stream(fx.a, fx.port, create_body("#billing refund please"));
  assert_string_equal(stored_reply(thread_of(events)), "Routed.");
  char *body = ck_mock_model_request_body(fx.mock, before);
  assert_non_null(strstr(body, "You answer billing questions."));
  free(body);
}

static void test_upstream_error_keeps_streamed_text(void **state) {
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Partial answer\"},{\"failed\":{\"code\":"
                               "\"server_error\",\"message\":\"boom\"}}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Fail please"));
  assert_non_null(events);
  ck_json *err = hc_find_type(events, "error", 0);
  assert_non_null(err);
  assert_string_equal(ck_json_object_get_str(err, "code"), "stream.error");
  assert_true(ck_json_bool_value(ck_json_object_get(err, "allow_retry")));
  assert_string_equal(stored_reply(thread_of(events)), "Partial answer");
}

static void test_auth_error_message(void **state) {
  ck_mock_model_queue(fx.mock,
                      "{\"status\":401,\"body\":{\"error\":{\"message\":\"bad key\","
                      "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("hi"));
  ck_json *err = hc_find_type(events, "error", 0);
  assert_non_null(err);
  assert_string_equal(ck_json_object_get_str(err, "code"), "custom");
  assert_non_null(strstr(ck_json_object_get_str(err, "message"), "API key"));
  assert_false(ck_json_bool_value(ck_json_object_get(err, "allow_retry")));
}

/* The runtime counts model calls, tokens, errors and tool calls in the registry. */
static void test_agent_metrics(void **state) {
  ck_mock_model_queue(fx.mock,
                      "{\"steps\":[{\"tool_call\":{\"id\":\"call_w\",\"item_id\":\"fc_w\",\"name\":"
                      "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
                      "{\"usage\":{\"input_tokens\":30,\"output_tokens\":7,\"total_tokens\":37}},"
                      "{\"finish\":\"tool_calls\"}]}");
  ck_mock_model_queue(fx.mock,
                      "{\"steps\":[{\"text\":\"Cold.\"},{\"usage\":{\"input_tokens\":"
                      "50,\"output_tokens\":2,\"total_tokens\":52}},{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Oslo\"},{\"finish\":\"stop\"}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Weather in Oslo?"));
  assert_non_null(events);
  assert_string_equal(stored_reply(thread_of(events)), "Cold.");
  /* The request's log line carries the usage of both turns (the title call reported none). */
  assert_true(log_has("\"input_tokens\":80,\"output_tokens\":9"));
  ck_mock_model_queue(fx.mock,
                      "{\"status\":401,\"body\":{\"error\":{\"message\":\"bad key\","
                      "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}}");
  events = hc_stream(fx.a, fx.port, create_body("hi"));
  assert_non_null(events);
  ck_metric *calls = ck_metrics_find(fx.metrics, "chatkit_model_calls_total");
  ck_metric *tokens = ck_metrics_find(fx.metrics, "chatkit_model_tokens_total");
  ck_metric *errors = ck_metrics_find(fx.metrics, "chatkit_model_errors_total");
  ck_metric *tools = ck_metrics_find(fx.metrics, "chatkit_tool_calls_total");
  assert_true(ck_metric_value(calls, (const char *const[]){"ok"}) == 3); /* two turns, a title */
  assert_true(ck_metric_value(calls, (const char *const[]){"error"}) == 1);
  assert_true(ck_metric_value(errors, (const char *const[]){"auth"}) == 1);
  assert_true(ck_metric_value(tokens, (const char *const[]){"input"}) == 80);
  assert_true(ck_metric_value(tokens, (const char *const[]){"output"}) == 9);
  assert_true(ck_metric_value(tools, (const char *const[]){"ok"}) == 1);
}

static void test_disconnect_aborts_model_call(void **state) {
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"one two three four five six seven\","
                               "\"chunk\":4,\"gap_ms\":150},{\"finish\":\"stop\"}]}");
  hc_conn c;
  assert_int_equal(hc_open(&c, fx.port, 5000), 0);
  ck_buf req;
  ck_buf_init(&req, 0);
  const char *body = create_body("count");
  hc_format(&req, "POST", "/chatkit", "Content-Type: application/json\r\n", body, strlen(body));
  assert_int_equal(hc_send(&c, req.data, req.len), 0);
  ck_buf_free(&req);
  hc_response head;
  assert_int_equal(hc_read_head(&c, &head), 0);
  ck_buf pending;
  ck_buf_init(&pending, 0);
  const char *tid = NULL;
  int deltas = 0;
  while (deltas < 2) {
    ck_json *ev = NULL;
    assert_int_equal(hc_sse_next(&c, &pending, fx.a, &ev), 1);
    const char *type = ck_json_object_get_str(ev, "type");
    if (strcmp(type, "thread.created") == 0)
      tid = ck_json_object_get_str(ck_json_object_get(ev, "thread"), "id");
    if (strcmp(type, "thread.item.updated") == 0 &&
        strstr(ck_json_dumps(fx.a, ev, NULL), "text_delta") != NULL)
      deltas++;
  }
  hc_close(&c);
  ck_buf_free(&pending);
  hc_response_free(&head);
  /* The model call is aborted at once, and the partial reply is saved. */
  assert_int_equal(ck_mock_model_wait_aborts(fx.mock, 1, 2000, NULL), 1);
  const char *saved = NULL;
  for (int i = 0; i < 100 && saved == NULL; i++) {
    saved = stored_reply(tid);
    if (saved == NULL)
      usleep(20000);
  }
  assert_non_null(saved);
  assert_true(strncmp(saved, "one two", 7) == 0);
  assert_true(strlen(saved) < strlen("one two three four five six seven"));
}

static void test_rate_limit_then_success(void **state) {
  ck_mock_model_queue(fx.mock, "{\"status\":429,\"headers\":{\"retry-after\":\"0\"},\"body\":{"
                               "\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit\"}}}");
  ck_mock_model_queue(fx.mock,
                      "{\"steps\":[{\"text\":\"After the wait.\"},{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Wait\"},{\"finish\":\"stop\"}]}");
  size_t before = ck_mock_model_requests(fx.mock);
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Busy?"));
  assert_null(hc_find_type(events, "error", 0));
  assert_string_equal(stored_reply(thread_of(events)), "After the wait.");
  /* The 429, its retry and the title call. */
  assert_int_equal(ck_mock_model_requests(fx.mock) - before, 3);
}

static void test_server_error_becomes_retryable_error_event(void **state) {
  for (int i = 0; i < 2; i++)
    ck_mock_model_queue(fx.mock, "{\"status\":500,\"body\":{\"error\":{\"message\":\"down\"}}}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Anyone?"));
  ck_json *err = hc_find_type(events, "error", 0);
  assert_non_null(err);
  assert_string_equal(ck_json_object_get_str(err, "code"), "stream.error");
  assert_true(ck_json_bool_value(ck_json_object_get(err, "allow_retry")));
  assert_null(stored_reply(thread_of(events)));
}

static void test_retry_after_item_reruns(void **state) {
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"First try.\"},{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Title\"},{\"finish\":\"stop\"}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Try me"));
  const char *tid = thread_of(events);
  ck_json *user = hc_find_type(events, "thread.item.done", 0);
  const char *uid = ck_json_object_get_str(ck_json_object_get(user, "item"), "id");
  assert_string_equal(stored_reply(tid), "First try.");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Second try.\"},{\"finish\":\"stop\"}]}");
  const char *retry = ck_arena_printf(fx.a,
                                      "{\"type\":\"threads.retry_after_item\",\"params\":{"
                                      "\"thread_id\":\"%s\",\"item_id\":\"%s\"}}",
                                      tid, uid);
  events = hc_stream(fx.a, fx.port, retry);
  assert_non_null(hc_find_type(events, "stream_options", 0));
  assert_string_equal(stored_reply(tid), "Second try.");
  /* The old answer is gone: exactly one assistant message remains. */
  hc_response r;
  const char *body =
      ck_arena_printf(fx.a, "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\"}}", tid);
  assert_int_equal(hc_chatkit(fx.port, body, &r), 0);
  assert_null(strstr(r.body, "First try."));
  hc_response_free(&r);
}

static void test_reasoning_workflow(void **state) {
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"reasoning\":\"Thinking about it\",\"chunk\":8},"
                               "{\"text\":\"Answer.\"},{\"finish\":\"stop\"}]}");
  ck_mock_model_queue(fx.mock, "{\"steps\":[{\"text\":\"Think\"},{\"finish\":\"stop\"}]}");
  ck_json *events = hc_stream(fx.a, fx.port, create_body("Think first"));
  ck_json *wf = hc_find_type(events, "thread.item.added", 0);
  ck_json *item = ck_json_object_get(wf, "item");
  assert_string_equal(ck_json_object_get_str(item, "type"), "workflow");
  const char *dump = ck_json_dumps(fx.a, events, NULL);
  assert_non_null(strstr(dump, "\"workflow.task.added\""));
  assert_non_null(strstr(dump, "\"workflow.task.updated\""));
  /* The workflow is done (with a duration summary) before the message starts. */
  const char *wf_done = strstr(dump, "\"summary\":{\"duration\":");
  const char *msg_added = strstr(dump, "\"type\":\"assistant_message\"");
  assert_non_null(wf_done);
  assert_non_null(msg_added);
  assert_true(wf_done < msg_added);
  assert_non_null(strstr(dump, "\"content\":\"Thinking about it\""));
}

int main(void) {
  const struct CMUnitTest responses[] = {
      cmocka_unit_test_setup_teardown(test_text_and_title, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_annotation_in_done_item, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_tool_round_trip, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_client_tool_round_trip, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_tool_requests_client_tool, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_tool_workflow, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_handoff, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_routing_hook, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_upstream_error_keeps_streamed_text, setup_responses,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_auth_error_message, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_agent_metrics, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_disconnect_aborts_model_call, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_rate_limit_then_success, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_server_error_becomes_retryable_error_event,
                                      setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_retry_after_item_reruns, setup_responses, teardown),
      cmocka_unit_test_setup_teardown(test_tool_round_trip, setup_chat, teardown),
      cmocka_unit_test_setup_teardown(test_reasoning_workflow, setup_chat, teardown),
  };
  return cmocka_run_group_tests(responses, NULL, NULL);
}
