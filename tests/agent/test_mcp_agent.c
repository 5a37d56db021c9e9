/* End to end: an agent whose tools come from an MCP server over stdio (the fake server
 * tests/fakes/mcp_server.c), as a snapshot (ck_mcp_tools) or following the server
 * (ck_agent_def.mcp). The mock model calls them and the test checks what the model got back
 * in its next request. */
#include "support/agent_harness.h"
#include "support/http_client.h"

#include <chatkit/mcp.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdbool.h>

#include <cmocka.h>

static ck_agent_harness h;
static ck_arena *arena;
static ck_mcp *mcp;
static ck_agent_def agent;
static const char *const prefixes[] = {"calc"};

static int connect_server(void) {
  arena = ck_arena_new(0);
  const char *argv[] = {CK_BINARY_DIR "/tests/mcp-server", NULL};
  char err[256] = "";
  if (ck_mcp_connect_stdio(argv, NULL, NULL, 5000, &mcp, err, sizeof(err)) != CK_OK) {
    fprintf(stderr, "connect: %s\n", err);
    return -1;
  }
  memset(&agent, 0, sizeof(agent));
  agent.name = "Calculator";
  agent.instructions = "You compute.";
  agent.model = "test-model";
  return 0;
}

/* The agent's tools: the server's list as it is now. */
static int setup(void **state) {
  if (connect_server() != 0)
    return -1;
  ck_tool_def *defs = NULL;
  size_t n = 0;
  if (ck_mcp_tools(mcp, arena, "calc", &defs, &n) != CK_OK)
    return -1;
  agent.tools = defs;
  agent.ntools = n;
  return ck_agent_harness_start(&h, &agent, 1);
}

/* The agent's tools: the server itself, followed as it changes. */
static int setup_following(void **state) {
  if (connect_server() != 0)
    return -1;
  agent.mcp = &mcp;
  agent.mcp_prefixes = prefixes;
  agent.nmcp = 1;
  return ck_agent_harness_start(&h, &agent, 1);
}

static int teardown(void **state) {
  ck_agent_harness_stop(&h);
  ck_mcp_close(mcp);
  ck_arena_free(arena);
  return 0;
}

/* One user message in which the model calls `name` with `args`, then answers. Returns the
 * model's second request (the caller frees it). */
static char *run_tool(const char *name, const char *args) {
  const char *script = ck_arena_printf(
      arena,
      "{\"steps\":[{\"tool_call\":{\"id\":\"call_1\",\"item_id\":\"fc_1\",\"name\":\"%s\","
      "\"arguments\":%s}},{\"finish\":\"tool_calls\"}]}",
      name, ck_json_dumps(arena, ck_json_str(arena, args), NULL));
  ck_mock_model_queue(h.mock, script);
  ck_mock_model_queue(h.mock, "{\"steps\":[{\"text\":\"Done.\"},{\"finish\":\"stop\"}]}");
  size_t before = ck_mock_model_requests(h.mock);
  ck_json *events = hc_stream(arena, h.port, ck_agent_harness_create_body(arena, "compute"));
  assert_non_null(events);
  assert_int_equal(ck_mock_model_requests(h.mock), before + 2);
  return ck_mock_model_request_body(h.mock, before + 1);
}

static void test_mcp_tools_reach_the_model(void **state) {
  /* The first request offered the server's tools under the prefix, with their schemas. */
  char *body = run_tool("calc__add", "{\"a\":2,\"b\":3}");
  assert_non_null(body);
  assert_non_null(strstr(body, "\"type\":\"function_call_output\""));
  assert_non_null(strstr(body, "\"output\":\"5\""));
  free(body);
  char *first = ck_mock_model_request_body(h.mock, 0);
  assert_non_null(strstr(first, "\"name\":\"calc__add\""));
  assert_non_null(strstr(first, "\"description\":\"Adds two numbers\""));
  assert_non_null(strstr(first, "\"required\":[\"a\",\"b\"]"));
  free(first);
}

static void test_mcp_error_and_structured(void **state) {
  char *body = run_tool("calc__fail", "{}");
  assert_non_null(strstr(body, "An error occurred while running the tool. Please try again. "
                               "Error: it failed on purpose"));
  free(body);
  body = run_tool("calc__echo", "{\"x\":1}");
  assert_non_null(strstr(body, "\"output\":\"{\\\"x\\\":1}\""));
  free(body);
}

/* Whether the model's first request for a plain message offers `tool`. */
static bool offered(const char *tool) {
  ck_mock_model_queue(h.mock, "{\"steps\":[{\"text\":\"Ok.\"},{\"finish\":\"stop\"}]}");
  size_t before = ck_mock_model_requests(h.mock);
  ck_json *events = hc_stream(arena, h.port, ck_agent_harness_create_body(arena, "hello"));
  assert_non_null(events);
  char *body = ck_mock_model_request_body(h.mock, before);
  assert_non_null(body);
  bool found = strstr(body, ck_arena_printf(arena, "\"name\":\"%s\"", tool)) != NULL;
  free(body);
  return found;
}

/* A server that announces new tools: the agent offers them once the list was fetched again
 * (in the background, so a later message sees them), and they work. */
static void test_mcp_tools_follow_the_server(void **state) {
  assert_true(offered("calc__add"));
  assert_false(offered("calc__extra"));
  /* "change" adds the tool "extra" and sends notifications/tools/list_changed. */
  char *body = run_tool("calc__change", "{}");
  assert_non_null(strstr(body, "\"output\":\"changed\""));
  free(body);
  bool seen = false;
  for (int i = 0; i < 100 && !seen; i++) {
    seen = offered("calc__extra");
    if (!seen)
      usleep(20 * 1000);
  }
  assert_true(seen);
  assert_true(offered("calc__add"));
  body = run_tool("calc__extra", "{}");
  assert_non_null(strstr(body, "\"output\":\"extra\""));
  free(body);
}

/* The snapshot does not change: the tool the server added later is not offered. */
static void test_mcp_snapshot_stays(void **state) {
  char *body = run_tool("calc__change", "{}");
  free(body);
  for (int i = 0; i < 3; i++)
    assert_false(offered("calc__extra"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_mcp_tools_reach_the_model, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mcp_error_and_structured, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mcp_snapshot_stays, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mcp_tools_follow_the_server, setup_following, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
