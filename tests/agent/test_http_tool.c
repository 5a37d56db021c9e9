/* End-to-end tests of HTTP tools (src/agent/http_tool.c): the mock model calls a tool, the
 * tool calls an endpoint of this test (a ck_http_server on its own loop thread), and the test
 * checks the events the user got and the tool output the model got in its next request. */
#include "support/agent_harness.h"
#include "support/http_client.h"
#include "support/proc.h"

#include <chatkit/http.h>
#include <chatkit/http_tool.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- The endpoint ---- */

typedef struct endpoint {
  pthread_t thread;
  uv_loop_t loop;
  uv_async_t stop;
  ck_http_server *srv;
  int port;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool ready;
  char last_body[512], last_type[64], last_key[64], last_method[16];
} endpoint;

static endpoint ep;

static void slow_closed(uv_handle_t *h) {
  free(h);
}

static void slow_fire(uv_timer_t *t) {
  ck_http_request *req = t->data;
  ck_http_respond(req, 200, "application/json", "{\"late\":true}", 13, NULL);
  ck_http_request_release(req);
  uv_close((uv_handle_t *)t, slow_closed);
}

static void on_request(ck_http_request *req, void *ud) {
  const char *type = ck_http_request_header(req, "Content-Type");
  const char *key = ck_http_request_header(req, "X-Api-Key");
  pthread_mutex_lock(&ep.mu);
  snprintf(ep.last_body, sizeof(ep.last_body), "%s", req->body);
  snprintf(ep.last_type, sizeof(ep.last_type), "%s", type ? type : "");
  snprintf(ep.last_key, sizeof(ep.last_key), "%s", key ? key : "");
  snprintf(ep.last_method, sizeof(ep.last_method), "%s", req->method);
  pthread_mutex_unlock(&ep.mu);
  const char *body = NULL;
  int status = 200;
  if (strcmp(req->path, "/json") == 0) {
    body = "{\"temp_c\":4,\"sky\":\"cloudy\"}";
  } else if (strcmp(req->path, "/widget") == 0) {
    body = "{\"widget\":{\"type\":\"Card\",\"children\":[{\"type\":\"Text\",\"value\":\"Hi\"}]},"
           "\"copy_text\":\"Hi\",\"note\":\"card shown\"}";
  } else if (strcmp(req->path, "/widget-only") == 0) {
    body = "{\"widget\":{\"type\":\"ListView\",\"children\":[]}}";
  } else if (strcmp(req->path, "/500") == 0) {
    status = 500;
    body = "{\"error\":\"boom\"}";
  } else if (strcmp(req->path, "/text") == 0) {
    body = "plain words";
  } else if (strcmp(req->path, "/slow") == 0) {
    uv_timer_t *t = malloc(sizeof(*t));
    uv_timer_init(&ep.loop, t);
    t->data = req;
    uv_timer_start(t, slow_fire, 1500, 0);
    return;
  } else {
    status = 404;
    body = "not here";
  }
  ck_http_respond(req, status, "application/json", body, strlen(body), NULL);
  ck_http_request_release(req);
}

static void stop_endpoint(uv_async_t *a) {
  ck_http_server_close_all(ep.srv);
  ck_http_server_close(ep.srv, NULL, NULL);
  uv_close((uv_handle_t *)&ep.stop, NULL);
}

static void *endpoint_main(void *arg) {
  uv_loop_init(&ep.loop);
  ep.srv = ck_http_server_new(&ep.loop, NULL, on_request, NULL);
  ck_http_listen(ep.srv, "127.0.0.1", 0);
  uv_async_init(&ep.loop, &ep.stop, stop_endpoint);
  pthread_mutex_lock(&ep.mu);
  ep.port = ck_http_server_port(ep.srv);
  ep.ready = true;
  pthread_cond_signal(&ep.cv);
  pthread_mutex_unlock(&ep.mu);
  uv_run(&ep.loop, UV_RUN_DEFAULT);
  uv_loop_close(&ep.loop);
  return NULL;
}

/* ---- The agent ---- */

static ck_agent_harness h;
static ck_arena *arena, *tools_arena;
static ck_tool_def tools[6];
static ck_agent_def agent = {"Helper", "You help.", "test-model", tools, 6,    NULL,
                             0,        0,           NULL,         NULL,  NULL, 0};

static void tool(size_t i, const char *name, const char *path, const char *method, int timeout_ms) {
  static const char *const headers[] = {"X-Api-Key: k1"};
  ck_http_tool_config cfg = {0};
  cfg.name = name;
  cfg.description = "A tool over HTTP";
  cfg.parameters_json = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}";
  cfg.url = ck_arena_printf(tools_arena, "http://127.0.0.1:%d%s", ep.port, path);
  cfg.method = method;
  cfg.headers = headers;
  cfg.nheaders = 1;
  cfg.timeout_ms = timeout_ms;
  char err[160] = "";
  assert_int_equal(ck_http_tool_def(tools_arena, &cfg, &tools[i], err, sizeof(err)), CK_OK);
}

static int setup(void **state) {
  memset(&ep, 0, sizeof(ep));
  pthread_mutex_init(&ep.mu, NULL);
  pthread_cond_init(&ep.cv, NULL);
  pthread_create(&ep.thread, NULL, endpoint_main, NULL);
  pthread_mutex_lock(&ep.mu);
  while (!ep.ready)
    pthread_cond_wait(&ep.cv, &ep.mu);
  pthread_mutex_unlock(&ep.mu);
  arena = ck_arena_new(0);
  tools_arena = ck_arena_new(0);
  tool(0, "weather", "/json", NULL, 0);
  tool(1, "card", "/widget", NULL, 0);
  tool(2, "card_only", "/widget-only", "put", 0);
  tool(3, "broken", "/500", NULL, 0);
  tool(4, "slow", "/slow", NULL, 300);
  tool(5, "words", "/text", NULL, 0);
  return ck_agent_harness_start(&h, &agent, 1);
}

static int teardown(void **state) {
  ck_agent_harness_stop(&h);
  uv_async_send(&ep.stop);
  pthread_join(ep.thread, NULL);
  ck_arena_free(arena);
  ck_arena_free(tools_arena);
  return 0;
}

/* Runs one user message in which the model calls `name` with `args` (JSON text) and then
 * answers; returns the events and sets `*output_request` to the model's second request. */
static ck_json *run_tool(const char *name, const char *args, char **second_request) {
  ck_json *a = ck_json_str(arena, args);
  const char *script =
      ck_arena_printf(arena,
                      "{\"steps\":[{\"tool_call\":{\"id\":\"call_1\",\"item_id\":\"fc_1\","
                      "\"name\":\"%s\",\"arguments\":%s}},{\"finish\":\"tool_calls\"}]}",
                      name, ck_json_dumps(arena, a, NULL));
  ck_mock_model_queue(h.mock, script);
  ck_mock_model_queue(h.mock, "{\"steps\":[{\"text\":\"Done.\"},{\"finish\":\"stop\"}]}");
  size_t before = ck_mock_model_requests(h.mock);
  ck_json *events = hc_stream(arena, h.port, ck_agent_harness_create_body(arena, "go"));
  assert_non_null(events);
  assert_int_equal(ck_mock_model_requests(h.mock), before + 2);
  *second_request = ck_mock_model_request_body(h.mock, before + 1);
  assert_non_null(*second_request);
  return events;
}

/* The widget item streamed in `events`, or NULL. */
static ck_json *widget_item(ck_json *events) {
  for (size_t i = 0; i < ck_json_array_size(events); i++) {
    ck_json *ev = ck_json_array_get(events, i);
    ck_json *item = ck_json_object_get(ev, "item");
    const char *type = ck_json_object_get_str(ev, "type");
    if (strcmp(type, "thread.item.done") == 0 &&
        strcmp(ck_json_object_get_str(item, "type"), "widget") == 0)
      return item;
  }
  return NULL;
}

static void test_json_answer(void **state) {
  char *body = NULL;
  ck_json *events = run_tool("weather", "{\"city\":\"Oslo\"}", &body);
  assert_null(widget_item(events));
  assert_non_null(strstr(body, "\"output\":\"{\\\"temp_c\\\":4,\\\"sky\\\":\\\"cloudy\\\"}\""));
  free(body);
  /* The endpoint got the arguments as JSON, with the configured header. */
  assert_string_equal(ep.last_body, "{\"city\":\"Oslo\"}");
  assert_string_equal(ep.last_type, "application/json");
  assert_string_equal(ep.last_key, "k1");
  assert_string_equal(ep.last_method, "POST");
}

static void test_widget_answer(void **state) {
  char *body = NULL;
  ck_json *events = run_tool("card", "{}", &body);
  ck_json *item = widget_item(events);
  assert_non_null(item);
  assert_string_equal(ck_json_object_get_str(ck_json_object_get(item, "widget"), "type"), "Card");
  assert_string_equal(ck_json_object_get_str(item, "copy_text"), "Hi");
  /* The model gets the rest of the answer. */
  assert_non_null(strstr(
      body, "\"output\":\"{\\\"copy_text\\\":\\\"Hi\\\",\\\"note\\\":\\\"card shown\\\"}\""));
  assert_null(strstr(body, "\\\"widget\\\""));
  free(body);
  body = NULL;
  events = run_tool("card_only", "{}", &body);
  item = widget_item(events);
  assert_non_null(item);
  assert_string_equal(ck_json_object_get_str(ck_json_object_get(item, "widget"), "type"),
                      "ListView");
  assert_null(ck_json_object_get(item, "copy_text"));
  assert_non_null(strstr(body, "\"output\":\"{\\\"widget_shown\\\":true}\""));
  assert_string_equal(ep.last_method, "PUT");
  free(body);
}

static void test_error_answers(void **state) {
  char *body = NULL;
  run_tool("broken", "{}", &body);
  assert_non_null(strstr(body, "An error occurred while running the tool. Please try again. "
                               "Error: HTTP 500: {\\\"error\\\":\\\"boom\\\"}"));
  free(body);
  long long t0 = ck_now_ms();
  run_tool("slow", "{}", &body);
  assert_true(ck_now_ms() - t0 < 1400);
  assert_non_null(strstr(body, "Error: the request timed out after 300 ms"));
  free(body);
  run_tool("words", "{}", &body);
  assert_non_null(strstr(body, "\"output\":\"plain words\""));
  free(body);
}

static void test_config_errors(void **state) {
  ck_tool_def d;
  char err[160] = "";
  ck_http_tool_config cfg = {0};
  cfg.name = "bad name";
  cfg.url = "http://127.0.0.1:1/";
  assert_int_equal(ck_http_tool_def(arena, &cfg, &d, err, sizeof(err)), CK_EINVAL);
  cfg.name = "ok";
  cfg.url = "file:///etc/passwd";
  assert_int_equal(ck_http_tool_def(arena, &cfg, &d, err, sizeof(err)), CK_EINVAL);
  cfg.url = "http://127.0.0.1:1/";
  cfg.method = "GET";
  assert_int_equal(ck_http_tool_def(arena, &cfg, &d, err, sizeof(err)), CK_EINVAL);
  cfg.method = NULL;
  cfg.parameters_json = "[1]";
  assert_int_equal(ck_http_tool_def(arena, &cfg, &d, err, sizeof(err)), CK_EINVAL);
  cfg.parameters_json = NULL;
  const char *const bad[] = {"X-Evil: a\r\nHost: b"};
  cfg.headers = bad;
  cfg.nheaders = 1;
  assert_int_equal(ck_http_tool_def(arena, &cfg, &d, err, sizeof(err)), CK_EINVAL);
  cfg.nheaders = 0;
  assert_int_equal(ck_http_tool_def(arena, &cfg, &d, err, sizeof(err)), CK_OK);
  assert_string_equal(d.name, "ok");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_json_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_widget_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
