/* Tests of the MCP client (src/agent/mcp*.c) against the fake server tests/fakes/mcp_server.c,
 * over stdio (the client spawns it) and over Streamable HTTP (the test spawns it with --http). */
#include "support/proc.h"

#include <chatkit/error.h>
#include <chatkit/mcp.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define SERVER CK_BINARY_DIR "/tests/mcp-server"

static ck_arena *arena;
static ck_proc http_proc;

static int setup(void **state) {
  arena = ck_arena_new(0);
  return arena ? 0 : -1;
}

static int teardown(void **state) {
  ck_arena_free(arena);
  ck_proc_kill_all();
  return 0;
}

static ck_mcp *connect_stdio(int timeout_ms, const char *extra) {
  const char *argv[] = {SERVER, extra, NULL};
  ck_mcp *m = NULL;
  char err[256] = "";
  int rc = ck_mcp_connect_stdio(argv, NULL, NULL, timeout_ms, &m, err, sizeof(err));
  if (rc != CK_OK)
    fprintf(stderr, "connect: %s\n", err);
  assert_int_equal(rc, CK_OK);
  return m;
}

/* The text of a call's result (its first text content), with the call's status. */
static const char *call(ck_mcp *m, const char *name, const char *args, int *rc, bool *is_error) {
  ck_json *a = NULL;
  if (args != NULL)
    assert_int_equal(ck_json_parse(arena, args, strlen(args), 0, &a, NULL), CK_OK);
  ck_json *result = NULL;
  *rc = ck_mcp_call_tool(m, arena, name, a, &result, is_error);
  assert_non_null(result);
  const ck_json *c = ck_json_array_get(ck_json_object_get(result, "content"), 0);
  const char *text = ck_json_object_get_str(c, "text");
  return text ? text : ck_json_dumps(arena, result, NULL);
}

/* A call that must succeed: its text. */
static const char *call_ok(ck_mcp *m, const char *name, const char *args) {
  int rc = 0;
  bool is_error = true;
  const char *text = call(m, name, args, &rc, &is_error);
  assert_int_equal(rc, CK_OK);
  assert_false(is_error);
  return text;
}

static size_t tool_count(ck_mcp *m, const char *must_have) {
  ck_json *tools = NULL;
  assert_int_equal(ck_mcp_list_tools(m, arena, &tools), CK_OK);
  bool found = must_have == NULL;
  for (size_t i = 0; i < ck_json_array_size(tools); i++)
    if (must_have &&
        strcmp(ck_json_object_get_str(ck_json_array_get(tools, i), "name"), must_have) == 0)
      found = true;
  assert_true(found);
  return ck_json_array_size(tools);
}

/* Both transports: the same conversation. */
static void basics(ck_mcp *m) {
  assert_string_equal(ck_mcp_server_name(m), "fake-mcp");
  /* Two pages of tools, fetched once and then cached. */
  assert_int_equal(tool_count(m, "expire"), 11);
  assert_int_equal(tool_count(m, "add"), 11);
  assert_string_equal(call_ok(m, "stats", NULL), "list_calls=2");
  assert_string_equal(call_ok(m, "add", "{\"a\":2,\"b\":3}"), "5");
  /* structuredContent without text. */
  ck_json *args = NULL, *result = NULL;
  ck_json_parse(arena, "{\"k\":[1,2]}", 11, 0, &args, NULL);
  bool is_error = true;
  assert_int_equal(ck_mcp_call_tool(m, arena, "echo", args, &result, &is_error), CK_OK);
  assert_false(is_error);
  assert_true(ck_json_equal(ck_json_object_get(result, "structuredContent"), args));
  /* isError, and a JSON-RPC error turned into an isError result. */
  int rc = 0;
  assert_string_equal(call(m, "fail", NULL, &rc, &is_error), "it failed on purpose");
  assert_int_equal(rc, CK_OK);
  assert_true(is_error);
  const char *text = call(m, "nope", NULL, &rc, &is_error);
  assert_int_equal(rc, CK_OK);
  assert_true(is_error);
  assert_non_null(strstr(text, "Unknown tool: nope"));
  /* list_changed makes the next list fetch again. */
  assert_string_equal(call_ok(m, "change", NULL), "changed");
  assert_int_equal(tool_count(m, "extra"), 12);
  assert_string_equal(call_ok(m, "stats", NULL), "list_calls=4");
  assert_string_equal(call_ok(m, "extra", NULL), "extra");
}

/* ---- stdio ---- */

static void test_stdio_basics(void **state) {
  ck_mcp *m = connect_stdio(5000, NULL);
  basics(m);
  ck_mcp_close(m);
}

static void test_stdio_server_requests(void **state) {
  ck_mcp *m = connect_stdio(10000, NULL);
  /* The server asks us for ping (answered {}) and sampling (not supported: -32601). */
  assert_string_equal(call_ok(m, "ping_client", NULL), "ping={} sampling=-32601");
  ck_mcp_close(m);
}

static void test_stdio_timeout(void **state) {
  ck_mcp *m = connect_stdio(400, NULL);
  long long t0 = ck_now_ms();
  int rc = 0;
  bool is_error = false;
  const char *text = call(m, "slow", "{\"ms\":1200}", &rc, &is_error);
  long long took = ck_now_ms() - t0;
  assert_int_equal(rc, CK_EIO);
  assert_true(is_error);
  assert_non_null(strstr(text, "within 400 ms"));
  assert_true(took >= 350 && took < 1100);
  /* The server is still fine, and its late answer to the slow call is dropped. */
  assert_string_equal(call_ok(m, "add", "{\"a\":1,\"b\":1}"), "2");
  ck_sleep_ms(1000);
  assert_string_equal(call_ok(m, "add", "{\"a\":1,\"b\":2}"), "3");
  ck_mcp_close(m);
}

typedef struct worker {
  ck_mcp *m;
  int base, ok;
} worker;

static void *add_many(void *arg) {
  worker *w = arg;
  ck_arena *a = ck_arena_new(0);
  for (int i = 0; i < 20; i++) {
    char args[64], want[32];
    snprintf(args, sizeof(args), "{\"a\":%d,\"b\":%d}", w->base, i);
    snprintf(want, sizeof(want), "%d", w->base + i);
    ck_json *j = NULL, *result = NULL;
    ck_json_parse(a, args, strlen(args), 0, &j, NULL);
    bool is_error = true;
    if (ck_mcp_call_tool(w->m, a, "add", j, &result, &is_error) == CK_OK && !is_error) {
      const ck_json *c = ck_json_array_get(ck_json_object_get(result, "content"), 0);
      if (strcmp(ck_json_object_get_str(c, "text"), want) == 0)
        w->ok++;
    }
    ck_arena_reset(a);
  }
  ck_arena_free(a);
  return NULL;
}

static void test_stdio_concurrent(void **state) {
  ck_mcp *m = connect_stdio(5000, NULL);
  worker w[6];
  pthread_t t[6];
  for (int i = 0; i < 6; i++) {
    w[i] = (worker){m, i * 100, 0};
    pthread_create(&t[i], NULL, add_many, &w[i]);
  }
  /* A slow call does not hold up the others. */
  long long t0 = ck_now_ms();
  assert_string_equal(call_ok(m, "slow", "{\"ms\":300}"), "slept");
  for (int i = 0; i < 6; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].ok, 20);
  }
  assert_true(ck_now_ms() - t0 < 3000);
  ck_mcp_close(m);
}

static bool reaped(pid_t pid) {
  errno = 0;
  return waitpid(pid, NULL, WNOHANG) == -1 && errno == ECHILD && kill(pid, 0) == -1;
}

static void test_stdio_crash_respawn(void **state) {
  ck_mcp *m = connect_stdio(5000, NULL);
  long p1 = strtol(call_ok(m, "pid", NULL), NULL, 10);
  assert_true(p1 > 0);
  int rc = 0;
  bool is_error = false;
  const char *text = call(m, "crash", NULL, &rc, &is_error);
  assert_int_equal(rc, CK_EIO);
  assert_true(is_error);
  assert_non_null(strstr(text, "exited with status 3"));
  /* The next call starts the server again. */
  long p2 = strtol(call_ok(m, "pid", NULL), NULL, 10);
  assert_true(p2 > 0 && p2 != p1);
  assert_true(reaped((pid_t)p1));
  assert_string_equal(call_ok(m, "add", "{\"a\":20,\"b\":22}"), "42");
  assert_int_equal(tool_count(m, "add"), 11);
  ck_mcp_close(m);
  assert_true(reaped((pid_t)p2));
}

static void test_stdio_close_no_zombie(void **state) {
  ck_mcp *m = connect_stdio(5000, NULL);
  pid_t pid = (pid_t)strtol(call_ok(m, "pid", NULL), NULL, 10);
  long long t0 = ck_now_ms();
  ck_mcp_close(m);
  assert_true(ck_now_ms() - t0 < 900); /* it exits on stdin EOF: no signal needed */
  assert_true(reaped(pid));
  ck_mcp_close(NULL);
}

static void test_stdio_stubborn_server_is_killed(void **state) {
  const char *argv[] = {SERVER, "--ignore-eof", "--ignore-term", NULL};
  ck_mcp *m = NULL;
  assert_int_equal(ck_mcp_connect_stdio(argv, NULL, NULL, 5000, &m, NULL, 0), CK_OK);
  pid_t pid = (pid_t)strtol(call_ok(m, "pid", NULL), NULL, 10);
  long long t0 = ck_now_ms();
  ck_mcp_close(m);
  long long took = ck_now_ms() - t0;
  assert_true(took >= 1900 && took < 5000); /* EOF, then SIGTERM (ignored), then SIGKILL */
  assert_true(reaped(pid));
}

static void test_stdio_bad_command(void **state) {
  const char *argv[] = {"/nonexistent/mcp-server", NULL};
  ck_mcp *m = NULL;
  char err[256] = "";
  assert_int_equal(ck_mcp_connect_stdio(argv, NULL, NULL, 1000, &m, err, sizeof(err)), CK_EIO);
  assert_null(m);
  assert_non_null(strstr(err, "cannot start the MCP server"));
  /* A program that is not an MCP server: it exits at once. */
  const char *argv2[] = {"true", NULL};
  assert_int_equal(ck_mcp_connect_stdio(argv2, NULL, NULL, 1000, &m, err, sizeof(err)), CK_EIO);
  assert_non_null(strstr(err, "exited with status 0"));
  const char *none[] = {NULL};
  assert_int_equal(ck_mcp_connect_stdio(none, NULL, NULL, 1000, &m, err, sizeof(err)), CK_EINVAL);
}

static void test_tool_defs(void **state) {
  ck_mcp *m = connect_stdio(5000, NULL);
  ck_tool_def *defs = NULL;
  size_t n = 0;
  assert_int_equal(ck_mcp_tools(m, arena, "my.server", &defs, &n), CK_OK);
  assert_int_equal(n, 11);
  assert_string_equal(defs[0].name, "my_server__add");
  assert_string_equal(defs[0].description, "Adds two numbers");
  assert_non_null(strstr(defs[0].parameters_json, "\"required\":[\"a\",\"b\"]"));
  assert_non_null(defs[0].fn);
  assert_false(defs[0].client);
  /* Long names are cut at 64 characters. */
  char prefix[80];
  memset(prefix, 'p', 70);
  prefix[70] = '\0';
  assert_int_equal(ck_mcp_tools(m, arena, prefix, &defs, &n), CK_OK);
  assert_int_equal(strlen(defs[0].name), 64);
  assert_int_equal(n, 1); /* every name is the same after the cut: only the first is kept */
  ck_mcp_close(m);
}

/* ---- Streamable HTTP ---- */

static ck_mcp *connect_http_args(int timeout_ms, const char *flag) {
  const char *argv[] = {SERVER, "--http", "0", flag, NULL};
  assert_int_equal(ck_proc_spawn(&http_proc, argv, NULL, NULL), 0);
  assert_int_equal(ck_proc_wait_listening(&http_proc, 5000), 0);
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/mcp", http_proc.port);
  const char *headers[] = {"Authorization: Bearer test", NULL};
  ck_mcp *m = NULL;
  char err[256] = "";
  int rc = ck_mcp_connect_http(url, headers, timeout_ms, &m, err, sizeof(err));
  if (rc != CK_OK)
    fprintf(stderr, "connect: %s\n", err);
  assert_int_equal(rc, CK_OK);
  return m;
}

static ck_mcp *connect_http(int timeout_ms) {
  return connect_http_args(timeout_ms, NULL);
}

/* Whether the server's tool list (as the client sees it now) has `name`. */
static bool has_tool(ck_mcp *m, const char *name) {
  ck_json *tools = NULL;
  assert_int_equal(ck_mcp_list_tools(m, arena, &tools), CK_OK);
  for (size_t i = 0; i < ck_json_array_size(tools); i++)
    if (strcmp(ck_json_object_get_str(ck_json_array_get(tools, i), "name"), name) == 0)
      return true;
  return false;
}

/* Asks the fake about its GET stream until `prefix` matches (at most ~5 s). */
static const char *wait_gets(ck_mcp *m, const char *prefix) {
  const char *g = call_ok(m, "gets", NULL);
  for (int i = 0; i < 250 && strncmp(g, prefix, strlen(prefix)) != 0; i++) {
    ck_sleep_ms(20);
    g = call_ok(m, "gets", NULL);
  }
  return g;
}

static void test_http_basics(void **state) {
  ck_mcp *m = connect_http(5000);
  basics(m);
  /* The session id of initialize and the protocol version go on every request. */
  assert_string_equal(call_ok(m, "whoami", NULL), "session=sess-1 version=2025-06-18");
  ck_mcp_close(m);
  ck_proc_kill(&http_proc);
}

static void test_http_session_expiry(void **state) {
  ck_mcp *m = connect_http(5000);
  assert_string_equal(call_ok(m, "expire", NULL), "expired");
  /* The server answers 404 to the old session: the client starts a new one and retries. */
  assert_string_equal(call_ok(m, "add", "{\"a\":2,\"b\":2}"), "4");
  assert_string_equal(call_ok(m, "whoami", NULL), "session=sess-2 version=2025-06-18");
  ck_mcp_close(m);
  ck_proc_kill(&http_proc);
}

static void test_http_timeout_and_server_gone(void **state) {
  ck_mcp *m = connect_http(400);
  int rc = 0;
  bool is_error = false;
  const char *text = call(m, "slow", "{\"ms\":1500}", &rc, &is_error);
  assert_int_equal(rc, CK_EIO);
  assert_true(is_error);
  assert_non_null(strstr(text, "within 400 ms"));
  assert_string_equal(call_ok(m, "add", "{\"a\":2,\"b\":5}"), "7");
  ck_proc_kill(&http_proc);
  text = call(m, "add", "{\"a\":2,\"b\":5}", &rc, &is_error);
  assert_int_equal(rc, CK_EIO);
  assert_non_null(strstr(text, "cannot reach the MCP server"));
  ck_mcp_close(m);
}

/* A notification the server sends between requests (on the GET stream the client keeps open
 * while it has a session) makes the next tool list fetch again. */
static void test_http_get_stream(void **state) {
  ck_mcp *m = connect_http(5000);
  assert_false(has_tool(m, "later"));
  const char *g = wait_gets(m, "open=1");
  assert_memory_equal(g, "open=1", 6);
  assert_string_equal(call_ok(m, "change_later", NULL), "changed later");
  /* The notification reaches the client on its listener thread, a moment after the answer. */
  bool seen = has_tool(m, "later");
  for (int i = 0; i < 250 && !seen; i++) {
    ck_sleep_ms(20);
    seen = has_tool(m, "later");
  }
  assert_true(seen);
  /* A new session (the old one expired) gets a new GET stream. */
  assert_string_equal(call_ok(m, "expire", NULL), "expired");
  assert_string_equal(call_ok(m, "add", "{\"a\":1,\"b\":1}"), "2");
  g = wait_gets(m, "open=1 tries=2 opened=2");
  assert_string_equal(g, "open=1 tries=2 opened=2");
  /* Closing ends the open GET stream at once (the close would hang otherwise). */
  ck_mcp_close(m);
  ck_proc_kill(&http_proc);
}

/* A server without the GET stream answers 405 once; the client does not ask again and works
 * as before. */
static void test_http_no_get_stream(void **state) {
  ck_mcp *m = connect_http_args(5000, "--no-get");
  assert_string_equal(call_ok(m, "add", "{\"a\":2,\"b\":2}"), "4");
  const char *g = wait_gets(m, "open=0 tries=1");
  assert_string_equal(g, "open=0 tries=1 opened=0");
  ck_sleep_ms(1200); /* past the first retry pause (500 ms) a retrying client would take */
  assert_string_equal(call_ok(m, "gets", NULL), "open=0 tries=1 opened=0");
  assert_string_equal(call_ok(m, "change", NULL), "changed"); /* on the POST stream still */
  assert_true(has_tool(m, "extra"));
  ck_mcp_close(m);
  ck_proc_kill(&http_proc);
}

static void test_http_bad_url(void **state) {
  ck_mcp *m = NULL;
  char err[256] = "";
  assert_int_equal(ck_mcp_connect_http("ftp://x", NULL, 0, &m, err, sizeof(err)), CK_EINVAL);
  /* Nothing listens there (a port of this host that was just freed). */
  assert_int_equal(ck_mcp_connect_http("http://127.0.0.1:1/mcp", NULL, 1000, &m, err, sizeof(err)),
                   CK_EIO);
  assert_null(m);
  assert_non_null(strstr(err, "cannot reach"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_stdio_basics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stdio_server_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stdio_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stdio_concurrent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stdio_crash_respawn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stdio_close_no_zombie, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stdio_stubborn_server_is_killed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stdio_bad_command, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tool_defs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_basics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_session_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_timeout_and_server_gone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_get_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_no_get_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_bad_url, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
