/* The examples, run for real: examples/weather.yaml in chatkit-server with its weather service
 * (examples/weather_api.c) and its MCP server (examples/mcp_units.c), and examples/tool_agent.c,
 * all talking to the scripted mock model instead of a real provider.
 *
 * The mock runs inside this test (tests/support/mock_model.h) rather than as the mock-model
 * program, so each test can queue the model's next answers and read back what the model was
 * sent: that is how we check that a tool's output really reached the model. Everything listens
 * on 127.0.0.1; nothing leaves the machine. */
#include "support/http_client.h"
#include "support/mock_model.h"
#include "support/proc.h"

#include <chatkit/chatkit.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define EXAMPLES_BIN CK_BINARY_DIR "/examples"

static char dir[256];
static ck_mock_model *mock;
static ck_proc weather_api, server;
static int server_port;
static ck_arena *arena;

/* ---- Helpers ---- */

/* `text` with the single occurrence of `from` replaced by `to` (from the arena). Fails the test
 * when `from` is missing or repeated, so a change to the example that this test relies on is
 * noticed here rather than as a mysterious failure later. */
static char *replace_once(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  assert_non_null(at);
  assert_null(strstr(at + 1, from));
  return ck_arena_printf(arena, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

static char *read_text_file(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  ck_buf b;
  ck_buf_init(&b, 0);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    assert_int_equal(ck_buf_append(&b, chunk, n), CK_OK);
  fclose(f);
  char *text = ck_arena_strndup(arena, b.data ? b.data : "", b.len);
  ck_buf_free(&b);
  return text;
}

static const char *create_body(const char *text) {
  return ck_arena_printf(arena,
                         "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{"
                         "\"type\":\"input_text\",\"text\":\"%s\"}],\"attachments\":[],"
                         "\"inference_options\":{}}}}",
                         text);
}

static const char *thread_of(const ck_json *events) {
  ck_json *created = hc_find_type(events, "thread.created", 0);
  return ck_json_object_get_str(ck_json_object_get(created, "thread"), "id");
}

/* The item of the first thread.item.done whose item has type `type`, or NULL. */
static ck_json *done_item(const ck_json *events, const char *type) {
  for (size_t i = 0; i < ck_json_array_size(events); i++) {
    ck_json *ev = ck_json_array_get(events, i);
    ck_json *item = ck_json_object_get(ev, "item");
    const char *ev_type = ck_json_object_get_str(ev, "type");
    const char *item_type = ck_json_object_get_str(item, "type");
    if (ev_type && strcmp(ev_type, "thread.item.done") == 0 && item_type &&
        strcmp(item_type, type) == 0)
      return item;
  }
  return NULL;
}

/* The text of the last assistant message streamed. */
static const char *last_reply(const ck_json *events) {
  const char *text = NULL;
  for (size_t i = 0; i < ck_json_array_size(events); i++) {
    ck_json *ev = ck_json_array_get(events, i);
    ck_json *item = ck_json_object_get(ev, "item");
    const char *item_type = ck_json_object_get_str(item, "type");
    if (strcmp(ck_json_object_get_str(ev, "type"), "thread.item.done") == 0 && item_type &&
        strcmp(item_type, "assistant_message") == 0)
      text = hc_item_text(arena, item);
  }
  return text;
}

/* Queues a model turn that calls one tool. */
static void queue_tool_call(const char *call_id, const char *name, const char *arguments_json) {
  ck_buf b;
  ck_buf_init(&b, 0);
  ck_buf_printf(&b,
                "{\"steps\":[{\"tool_call\":{\"id\":\"%s\",\"name\":\"%s\",\"arguments\":", call_id,
                name);
  ck_json_write_string(&b, arguments_json, strlen(arguments_json));
  ck_buf_puts(&b, "}},{\"finish\":\"tool_calls\"}]}");
  char *script = ck_buf_take(&b, NULL);
  assert_non_null(script);
  assert_int_equal(ck_mock_model_queue(mock, script), 0);
  free(script);
}

/* Queues a model turn that answers `text` (and so ends the agent's turn). */
static void queue_text(const char *text) {
  const char *script =
      ck_arena_printf(arena, "{\"steps\":[{\"text\":\"%s\"},{\"finish\":\"stop\"}]}", text);
  assert_int_equal(ck_mock_model_queue(mock, script), 0);
}

/* Whether the body of model request `i` contains `needle`. */
static bool request_has(size_t i, const char *needle) {
  char *body = ck_mock_model_request_body(mock, i);
  bool found = body != NULL && strstr(body, needle) != NULL;
  if (!found)
    fprintf(stderr, "model request %zu lacks %s:\n%s\n", i, needle, body ? body : "(none)");
  free(body);
  return found;
}

/* ---- Set-up: the mock model, the weather service and chatkit-server with weather.yaml ---- */

static int setup(void **state) {
  (void)state;
  arena = ck_arena_new(0);
  assert_non_null(arena);
  assert_int_equal(ck_tmpdir_make(dir, sizeof(dir)), 0);
  mock = ck_mock_model_start(0);
  assert_non_null(mock);

  const char *api_argv[] = {EXAMPLES_BIN "/weather_api", "0", NULL};
  assert_int_equal(ck_proc_spawn(&weather_api, api_argv, dir, NULL), 0);
  assert_int_equal(ck_proc_wait_listening(&weather_api, 5000), 0);

  /* The example file as shipped, with two local differences: the weather service's port (it
   * listens on a free one) and the MCP server's path (the example says build/examples/...,
   * relative to the repository root; this build tree may be elsewhere). */
  char *yaml = read_text_file(CK_SOURCE_DIR "/examples/weather.yaml");
  yaml = replace_once(yaml, "http://127.0.0.1:8090/weather",
                      ck_arena_printf(arena, "http://127.0.0.1:%d/weather", weather_api.port));
  yaml = replace_once(yaml, "[build/examples/mcp_units]", "[" EXAMPLES_BIN "/mcp_units]");
  assert_int_equal(ck_write_file(dir, "weather.yaml", yaml), 0);

  /* The environment overrides the file's model settings, as a user pointing the example at a
   * local server would. Chat Completions here; tool_agent below uses the Responses API. */
  const char *env[] = {
      ck_arena_printf(arena, "OPENAI_BASE_URL=http://127.0.0.1:%d/v1", ck_mock_model_port(mock)),
      "OPENAI_API_KEY=sk-test", "CHATKIT_API=chat_completions", NULL};
  const char *args[] = {"--config", "weather.yaml", "--store", "memory:", NULL};
  server_port = ck_server_start(&server, dir, args, env);
  assert_true(server_port > 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ck_proc_kill_all();
  ck_mock_model_free(mock);
  ck_tmpdir_remove(dir);
  ck_arena_free(arena);
  return 0;
}

/* ---- The weather agent ---- */

/* The HTTP tool: the service's widget is shown to the user, the rest of its answer goes to the
 * model. */
static void test_weather_http_tool(void **state) {
  ck_mock_model_reset(mock);
  queue_tool_call("call_w", "get_weather", "{\"city\":\"Oslo\"}");
  queue_text("A chilly day in Oslo.");
  queue_text("Oslo weather"); /* the title */
  ck_json *events = hc_stream(arena, server_port, create_body("What is the weather in Oslo?"));
  assert_non_null(events);

  ck_json *widget_item = done_item(events, "widget");
  assert_non_null(widget_item);
  const ck_json *card = ck_json_object_get(widget_item, "widget");
  assert_string_equal(ck_json_object_get_str(card, "type"), "Card");
  /* Card > Row > Title: the city. */
  const ck_json *row = ck_json_array_get(ck_json_object_get(card, "children"), 0);
  const ck_json *title = ck_json_array_get(ck_json_object_get(row, "children"), 0);
  assert_string_equal(ck_json_object_get_str(title, "type"), "Title");
  assert_string_equal(ck_json_object_get_str(title, "value"), "Oslo");
  const char *copy = ck_json_object_get_str(widget_item, "copy_text");
  assert_non_null(copy);
  assert_true(strncmp(copy, "Oslo: ", 6) == 0);
  assert_string_equal(last_reply(events), "A chilly day in Oslo.");

  /* The first request offered the three kinds of tools; the second carried the service's
   * answer without the widget (the user has it; the model needs the facts). */
  assert_true(request_has(0, "\"name\":\"get_weather\""));
  assert_true(request_has(0, "\"name\":\"units__convert_temperature\""));
  assert_true(request_has(0, "\"name\":\"get_location\""));
  assert_true(request_has(0, "You are a friendly weather assistant."));
  assert_true(request_has(1, "\"tool_call_id\":\"call_w\""));
  assert_true(request_has(1, "{\\\"city\\\":\\\"Oslo\\\",\\\"temperature_c\\\":"));
  assert_true(request_has(1, "\\\"copy_text\\\":\\\"Oslo: "));
  char *body = ck_mock_model_request_body(mock, 1);
  assert_non_null(body);
  assert_null(strstr(body, "\\\"widget\\\""));
  free(body);
  /* The title call came last and named the thread. */
  ck_json *upd = hc_find_type(events, "thread.updated", 0);
  assert_string_equal(ck_json_object_get_str(ck_json_object_get(upd, "thread"), "title"),
                      "Oslo weather");
}

/* The MCP tool: chatkit-server started examples/mcp_units and relays the call to it. */
static void test_weather_mcp_tool(void **state) {
  ck_mock_model_reset(mock);
  queue_tool_call("call_u", "units__convert_temperature",
                  "{\"value\":20,\"from\":\"C\",\"to\":\"F\"}");
  queue_text("20 degrees Celsius is 68 Fahrenheit.");
  queue_text("Units");
  ck_json *events = hc_stream(arena, server_port, create_body("What is 20 C in F?"));
  assert_non_null(events);
  assert_string_equal(last_reply(events), "20 degrees Celsius is 68 Fahrenheit.");
  /* The MCP server's text result is what the model got for the call. */
  assert_true(request_has(1, "\"tool_call_id\":\"call_u\""));
  assert_true(request_has(1, "= 68.0 "));
}

/* The client tool: the turn pauses with a pending call; the browser's answer resumes it, and
 * the agent goes on to the HTTP tool with the city it got. */
static void test_weather_client_tool(void **state) {
  ck_mock_model_reset(mock);
  queue_tool_call("call_loc", "get_location", "{}");
  queue_text("Local weather");
  ck_json *events = hc_stream(arena, server_port, create_body("Weather here?"));
  assert_non_null(events);
  ck_json *call = done_item(events, "client_tool_call");
  assert_non_null(call);
  assert_string_equal(ck_json_object_get_str(call, "name"), "get_location");
  assert_string_equal(ck_json_object_get_str(call, "status"), "pending");
  assert_string_equal(ck_json_object_get_str(call, "call_id"), "call_loc");
  assert_null(done_item(events, "assistant_message"));
  /* The new thread was named from the user's message all the same: a thread resumed by a
   * tool output has no user message to name it after. */
  ck_json *upd = hc_find_type(events, "thread.updated", 0);
  assert_string_equal(ck_json_object_get_str(ck_json_object_get(upd, "thread"), "title"),
                      "Local weather");
  assert_int_equal(ck_mock_model_requests(mock), 2);

  queue_tool_call("call_w2", "get_weather", "{\"city\":\"Paris\"}");
  queue_text("Here is the weather in Paris.");
  const char *output = ck_arena_printf(arena,
                                       "{\"type\":\"threads.add_client_tool_output\",\"params\":{"
                                       "\"thread_id\":\"%s\",\"result\":{\"city\":\"Paris\"}}}",
                                       thread_of(events));
  events = hc_stream(arena, server_port, output);
  assert_non_null(events);
  /* The browser's answer reached the model (as the reference's json.dumps text)... */
  assert_true(request_has(2, "{\\\"city\\\": \\\"Paris\\\"}"));
  /* ...which then asked for the weather there: the card is shown. */
  ck_json *widget_item = done_item(events, "widget");
  assert_non_null(widget_item);
  assert_true(strncmp(ck_json_object_get_str(widget_item, "copy_text"), "Paris: ", 7) == 0);
  assert_true(request_has(3, "{\\\"city\\\":\\\"Paris\\\",\\\"temperature_c\\\":"));
  assert_string_equal(last_reply(events), "Here is the weather in Paris.");
}

/* ---- tool_agent: C tools ---- */

static void test_tool_agent(void **state) {
  ck_mock_model_reset(mock);
  const char *db = ck_arena_printf(arena, "sqlite:%s/data/dice.db", dir);
  const char *argv[] = {EXAMPLES_BIN "/tool_agent", "0", db, NULL};
  const char *env[] = {
      ck_arena_printf(arena, "OPENAI_BASE_URL=http://127.0.0.1:%d/v1", ck_mock_model_port(mock)),
      "OPENAI_API_KEY=sk-test", "CHATKIT_API=responses", "CHATKIT_MODEL=mock-dice", NULL};
  ck_proc agent;
  assert_int_equal(ck_proc_spawn(&agent, argv, dir, env), 0);
  assert_int_equal(ck_proc_wait_listening(&agent, 10000), 0);

  /* roll_dice: its JSON result is the model's next input. */
  queue_tool_call("call_d", "roll_dice", "{\"sides\":6,\"count\":3}");
  queue_text("You rolled the dice.");
  queue_text("Dice");
  ck_json *events = hc_stream(arena, agent.port, create_body("Roll 3d6"));
  assert_non_null(events);
  assert_string_equal(last_reply(events), "You rolled the dice.");
  assert_true(request_has(0, "\"model\":\"mock-dice\""));
  assert_true(request_has(0, "\"name\":\"roll_statistics\""));
  assert_true(request_has(1, "\"type\":\"function_call_output\",\"call_id\":\"call_d\""));
  assert_true(request_has(1, "{\\\"dice\\\":\\\"3d6\\\",\\\"rolls\\\":["));
  assert_true(request_has(1, "\\\"total\\\":"));
  size_t before = ck_mock_model_requests(mock);

  /* roll_statistics: a progress line and a widget are streamed while it runs, and the model
   * gets the summary. A follow-up message in the same thread: no title call this time. */
  queue_tool_call("call_s", "roll_statistics", "{\"sides\":6,\"count\":2,\"trials\":2000}");
  queue_text("Seven is the most likely total.");
  const char *more = ck_arena_printf(
      arena,
      "{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"%s\",\"input\":{"
      "\"content\":[{\"type\":\"input_text\",\"text\":\"What are the odds with 2d6?\"}],"
      "\"attachments\":[],\"inference_options\":{}}}}",
      thread_of(events));
  events = hc_stream(arena, agent.port, more);
  assert_non_null(events);
  ck_json *progress = hc_find_type(events, "progress_update", 0);
  assert_non_null(progress);
  assert_string_equal(ck_json_object_get_str(progress, "text"), "Rolling 2d6 2000 times");
  /* The step as a workflow: added with its task loading, updated to complete, and ended by the
   * widget that follows (protocol.md §9.2: a visible item closes the open workflow). */
  char types[4096];
  hc_event_types(events, types, sizeof(types));
  assert_non_null(strstr(types, "progress_update thread.item.added workflow.task.updated "
                                "thread.item.done thread.item.done"));
  ck_json *wf_done = done_item(events, "workflow");
  assert_non_null(wf_done);
  const ck_json *wf = ck_json_object_get(wf_done, "workflow");
  const ck_json *task = ck_json_array_get(ck_json_object_get(wf, "tasks"), 0);
  assert_string_equal(ck_json_object_get_str(task, "title"), "Rolling 2d6 2000 times");
  assert_string_equal(ck_json_object_get_str(task, "status_indicator"), "complete");
  ck_json *widget_item = done_item(events, "widget");
  assert_non_null(widget_item);
  const ck_json *card = ck_json_object_get(widget_item, "widget");
  const ck_json *title = ck_json_array_get(ck_json_object_get(card, "children"), 0);
  assert_string_equal(ck_json_object_get_str(title, "value"), "2d6 rolled 2000 times");
  assert_non_null(strstr(ck_json_object_get_str(widget_item, "copy_text"), "most common total"));
  assert_string_equal(last_reply(events), "Seven is the most likely total.");
  assert_true(request_has(before + 1, "\\\"most_common_total\\\":"));
  assert_true(request_has(before + 1, "\\\"trials\\\":2000"));

  /* SIGTERM: a clean exit (under ASan, LeakSanitizer checks the exit too). */
  assert_int_equal(ck_proc_stop(&agent, 10000), 0);
}

/* Last: every example process stops cleanly on SIGTERM (the MCP server with chatkit-server). */
static void test_processes_stop_cleanly(void **state) {
  assert_int_equal(ck_proc_stop(&server, 10000), 0);
  assert_int_equal(ck_proc_stop(&weather_api, 5000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weather_http_tool),      cmocka_unit_test(test_weather_mcp_tool),
      cmocka_unit_test(test_weather_client_tool),    cmocka_unit_test(test_tool_agent),
      cmocka_unit_test(test_processes_stop_cleanly),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
