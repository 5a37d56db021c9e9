/* The binary's settings: --help and --version, bad values (exit 2 with a message on stderr),
 * the port from CHATKIT_PORT and PORT, a .env file that never overrides the environment, a
 * YAML config file (and an unknown key in it), the SQLite directory being created, and data
 * persisting across a restart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/http_client.h"
#include "support/proc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static ck_proc proc;
static ck_arena *A;

static int setup(void **state) {
  (void)state;
  A = ck_arena_new(0);
  return A != NULL && ck_tmpdir_make(dir, sizeof(dir)) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ck_proc_kill_all();
  ck_tmpdir_remove(dir);
  ck_arena_free(A);
  return 0;
}

/* A port that was free a moment ago (the kernel does not hand it out again right away). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

/* Runs the binary with `args` in `cwd` and expects it to exit with `code` quickly; returns its
 * stdout (from the arena). */
static const char *run_exit(const char *const *args, const char *const *env, int code) {
  const char *argv[32] = {CK_SERVER_BIN};
  size_t n = 1;
  for (size_t i = 0; args[i] != NULL; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  assert_int_equal(ck_proc_spawn(&proc, argv, dir, env), 0);
  char out[8192];
  ck_proc_read_stdout(&proc, out, sizeof(out), 10000);
  int rc = ck_proc_wait(&proc, 10000);
  if (rc != code) {
    char *err = ck_proc_stderr(&proc);
    fprintf(stderr, "%s ... -> exit %d, stderr: %s\n", args[0], rc, err);
    free(err);
  }
  assert_int_equal(rc, code);
  return ck_arena_strdup(A, out);
}

/* Expects exit 2 with every one of `needles` in stderr. */
static void assert_bad(const char *const *args, const char *const *env, const char *needle1,
                       const char *needle2) {
  const char *out = run_exit(args, env, 2);
  assert_string_equal(out, ""); /* no listening line */
  char *err = ck_proc_stderr(&proc);
  assert_non_null(err);
  if (strstr(err, needle1) == NULL || (needle2 && strstr(err, needle2) == NULL))
    fprintf(stderr, "stderr lacks \"%s\"/\"%s\": %s\n", needle1, needle2 ? needle2 : "", err);
  assert_non_null(strstr(err, needle1));
  if (needle2 != NULL)
    assert_non_null(strstr(err, needle2));
  free(err);
  ck_proc_kill(&proc);
}

static void test_help_version(void **state) {
  (void)state;
  const char *help[] = {"--help", NULL};
  const char *out = run_exit(help, NULL, 0);
  assert_int_equal(strncmp(out, "Usage: chatkit-server", 21), 0);
  assert_non_null(strstr(out, "--demo-delay-ms"));
  ck_proc_kill(&proc);
  const char *version[] = {"--version", NULL};
  out = run_exit(version, NULL, 0);
  assert_int_equal(strncmp(out, "chatkit-server ", 15), 0);
  assert_int_equal(out[strlen(out) - 1], '\n');
  assert_true(strchr(out, '\n') == out + strlen(out) - 1); /* one line */
  ck_proc_kill(&proc);
}

static void test_bad_values(void **state) {
  (void)state;
  /* Each with a valid store, so only the setting under test is wrong. */
  const char *port[] = {"--store", "memory:", "--port", "abc", NULL};
  assert_bad(port, NULL, "port", "abc");
  const char *range[] = {"--store", "memory:", "--port", "70000", NULL};
  assert_bad(range, NULL, "port", "70000");
  const char *store[] = {"--port", "0", "--store", "foo:", NULL};
  assert_bad(store, NULL, "store", "foo:");
  const char *level[] = {"--store", "memory:", "--port", "0", "--log-level", "loud", NULL};
  assert_bad(level, NULL, "log level", "loud");
  const char *unknown[] = {"--store", "memory:", "--frobnicate", "1", NULL};
  assert_bad(unknown, NULL, "--frobnicate", NULL);
  const char *missing[] = {"--store", "memory:", "--port", NULL};
  assert_bad(missing, NULL, "--port", "value");
  const char *stray[] = {"--store", "memory:", "stray", NULL};
  assert_bad(stray, NULL, "stray", NULL);
  /* A server reachable from the network must choose authentication; loopback need not. */
  const char *exposed[] = {"--store", "memory:", "--port", "0", "--host", "0.0.0.0", NULL};
  assert_bad(exposed, NULL, "refusing to serve 0.0.0.0 without authentication", "--auth none");
  /* Bad values from the environment name the variable. */
  const char *none[] = {"--store", "memory:", NULL};
  const char *env[] = {"CHATKIT_PORT=twelve", NULL};
  assert_bad(none, env, "twelve", "CHATKIT_PORT");
  const char *lenv[] = {"CHATKIT_LOG_LEVEL=chatty", "CHATKIT_PORT=0", NULL};
  assert_bad(none, lenv, "chatty", NULL);
}

/* Starts the binary with `args` (no --port) and returns the port it announced. */
static int start_at(const char *const *args, const char *const *env) {
  const char *argv[32] = {CK_SERVER_BIN, "--log-level", "warn"};
  size_t n = 3;
  for (size_t i = 0; args[i] != NULL; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  assert_int_equal(ck_proc_spawn(&proc, argv, dir, env), 0);
  if (ck_proc_wait_listening(&proc, 15000) != 0) {
    char *err = ck_proc_stderr(&proc);
    fprintf(stderr, "no listening line (%s); stderr: %s\n", proc.out_line, err);
    free(err);
    fail();
  }
  int port = proc.port;
  assert_true(hc_healthy(port));
  return port;
}

static void stop(void) {
  assert_int_equal(ck_proc_stop(&proc, 15000), 0);
  ck_proc_kill(&proc);
}

static void test_port_env(void **state) {
  (void)state;
  const char *args[] = {"--store", "memory:", NULL};
  char e1[32], e2[32];
  int p1 = free_port();
  snprintf(e1, sizeof(e1), "CHATKIT_PORT=%d", p1);
  const char *env1[] = {e1, NULL};
  assert_int_equal(start_at(args, env1), p1);
  stop();
  int p2 = free_port();
  snprintf(e2, sizeof(e2), "PORT=%d", p2);
  const char *env2[] = {e2, NULL};
  assert_int_equal(start_at(args, env2), p2);
  stop();
  /* Both set: the specific CHATKIT_PORT wins over the generic PORT. */
  p1 = free_port();
  snprintf(e1, sizeof(e1), "CHATKIT_PORT=%d", p1);
  const char *both[] = {e2, e1, NULL};
  assert_int_equal(start_at(args, both), p1);
  stop();
  /* A flag wins over the environment. */
  const char *flag[] = {"--store", "memory:", "--port", "0", NULL};
  int got = start_at(flag, env1);
  assert_int_not_equal(got, p1);
  stop();
}

/* The "Max open files" soft limit of process `pid`, from /proc/PID/limits; -1 if unknown. */
static long soft_nofile(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
  FILE *f = fopen(path, "r");
  long soft = -1;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "Max open files", 14) == 0)
      soft = strtol(line + 14, NULL, 10);
  if (f != NULL)
    fclose(f);
  return soft;
}

/* Started with a low soft limit on open files, the server raises it to the hard limit (one
 * descriptor per connection: 1,024 would cap it at about a thousand clients) and says so. */
static void test_raises_fd_limit(void **state) {
  (void)state;
  struct rlimit saved;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max <= 256) {
    skip(); /* nothing to raise to */
    return;
  }
  struct rlimit low = {256, saved.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  const char *args[] = {"--store", "memory:", "--port", "0", "--log-level", "info", NULL};
  start_at(args, NULL); /* the child inherits the low soft limit */
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
  long soft = soft_nofile(proc.pid);
  if (saved.rlim_max == RLIM_INFINITY)
    assert_true(soft > 256);
  else
    assert_int_equal(soft, (long)saved.rlim_max);
  /* The "listening" log line follows the stdout line: give it a moment to land. */
  char want[64];
  snprintf(want, sizeof(want), "\"max_fds\":\"%ld\"", soft);
  char *err = NULL;
  for (int i = 0; i < 100; i++) {
    free(err);
    err = ck_proc_stderr(&proc);
    if (err != NULL && strstr(err, want) != NULL)
      break;
    ck_sleep_ms(20);
  }
  if (err == NULL || strstr(err, want) == NULL)
    fprintf(stderr, "no %s in: %s\n", want, err ? err : "(no stderr)");
  assert_true(err != NULL && strstr(err, want) != NULL);
  stop();
  free(err);
}

static void test_dotenv(void **state) {
  (void)state;
  int p1 = free_port();
  char text[256];
  snprintf(text, sizeof(text),
           "# settings for the test\n"
           "CHATKIT_PORT=%d\n"
           "export CHATKIT_STORE=\"memory:\"\n"
           "\n"
           "CHATKIT_LOG_LEVEL = 'warn'\n",
           p1);
  assert_int_equal(ck_write_file(dir, ".env", text), 0);
  const char *none[] = {NULL};
  assert_int_equal(start_at(none, NULL), p1);
  stop();
  /* The environment wins over .env. */
  int p2 = free_port();
  char e2[32];
  snprintf(e2, sizeof(e2), "CHATKIT_PORT=%d", p2);
  const char *env[] = {e2, NULL};
  assert_int_equal(start_at(none, env), p2);
  stop();
  /* A broken .env is an error, not silently skipped. */
  assert_int_equal(ck_write_file(dir, ".env", "CHATKIT_PORT=0\nthis is not a setting\n"), 0);
  assert_bad(none, NULL, ".env:2", NULL);
  char path[320];
  snprintf(path, sizeof(path), "%s/.env", dir);
  unlink(path);
}

static void test_config_file(void **state) {
  (void)state;
  assert_int_equal(ck_write_file(dir, "good.yaml",
                                 "# a config file\n"
                                 "server:\n"
                                 "  port: 0\n"
                                 "  store: \"memory:\"\n"
                                 "  demo_tokens: 2\n"),
                   0);
  const char *args[] = {"--config", "good.yaml", NULL};
  int port = start_at(args, NULL);
  assert_true(port > 0);
  /* demo_tokens from the file took effect: a reply of exactly two deltas. */
  ck_json *events =
      hc_stream(A, port,
                "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":"
                "\"input_text\",\"text\":\"x\"}],\"attachments\":[],\"inference_options\":{}}}}");
  assert_non_null(events);
  assert_int_equal(hc_count_type(events, "thread.item.updated"), 2 + 2);
  stop();
  /* CHATKIT_CONFIG names the file too. */
  const char *none[] = {NULL};
  const char *env[] = {"CHATKIT_CONFIG=good.yaml", NULL};
  assert_true(start_at(none, env) > 0);
  stop();

  assert_int_equal(ck_write_file(dir, "bad.yaml",
                                 "server:\n"
                                 "  port: 0\n"
                                 "  store: \"memory:\"\n"
                                 "  colour: blue\n"),
                   0);
  const char *bad[] = {"--config", "bad.yaml", NULL};
  assert_bad(bad, NULL, "bad.yaml:4", "colour");
  assert_int_equal(ck_write_file(dir, "bad2.yaml", "server:\n  port: [1, 2]\n"), 0);
  const char *bad2[] = {"--config", "bad2.yaml", NULL};
  assert_bad(bad2, NULL, "bad2.yaml:2", "port");
  assert_int_equal(ck_write_file(dir, "bad3.yaml", "server:\n  port: nope\n"), 0);
  const char *bad3[] = {"--config", "bad3.yaml", NULL};
  assert_bad(bad3, NULL, "nope", "bad3.yaml:2");
  const char *missing[] = {"--config", "missing.yaml", NULL};
  assert_bad(missing, NULL, "missing.yaml", NULL);
}

/* --check validates the whole file, agents and tools included, and starts nothing: an MCP
 * server whose program does not exist passes the check (it would fail the real start), while
 * an agent naming an unknown tool or agent fails it with the line. */
static void test_check(void **state) {
  (void)state;
  assert_int_equal(ck_write_file(dir, "agents.yaml",
                                 "model: {name: m, base_url: \"http://127.0.0.1:9/v1\"}\n"
                                 "tools:\n"
                                 "  - name: units\n"
                                 "    type: mcp\n"
                                 "    command: [/nonexistent/mcp-units]\n"
                                 "  - name: where\n"
                                 "    type: client\n"
                                 "agents:\n"
                                 "  - name: A\n"
                                 "    tools: [units, units__convert, where]\n"
                                 "    handoffs: [B]\n"
                                 "  - name: B\n"
                                 "default_agent: A\n"),
                   0);
  const char *ok[] = {"--config", "agents.yaml", "--check", NULL};
  assert_string_equal(run_exit(ok, NULL, 0), "configuration ok\n");
  ck_proc_kill(&proc);
  /* The same file for real: the MCP server cannot start. */
  const char *real[] = {"--config", "agents.yaml", "--port", "0", NULL};
  assert_bad(real, NULL, "cannot start MCP server", "units");

  assert_int_equal(ck_write_file(dir, "agents-bad.yaml",
                                 "model: {name: m, base_url: \"http://127.0.0.1:9/v1\"}\n"
                                 "agents:\n"
                                 "  - name: A\n"
                                 "    tools: [nope]\n"),
                   0);
  const char *bad[] = {"--check", "--config", "agents-bad.yaml", NULL};
  assert_bad(bad, NULL, "agents-bad.yaml:4", "unknown tool \"nope\"");
  assert_int_equal(ck_write_file(dir, "agents-bad2.yaml",
                                 "model: {name: m, base_url: \"http://127.0.0.1:9/v1\"}\n"
                                 "agents:\n"
                                 "  - name: A\n"
                                 "default_agent: Z\n"),
                   0);
  const char *bad2[] = {"--check", "--config", "agents-bad2.yaml", NULL};
  assert_bad(bad2, NULL, "default_agent", NULL);
  /* Settings are checked too. */
  const char *bad3[] = {"--check", "--port", "99999", NULL};
  assert_bad(bad3, NULL, "99999", NULL);
}

static void test_sqlite_dir_and_persistence(void **state) {
  (void)state;
  char store[400], db_dir[320];
  snprintf(db_dir, sizeof(db_dir), "%s/nested/deeper", dir);
  snprintf(store, sizeof(store), "sqlite:%s/chat.db", db_dir);
  struct stat st;
  assert_int_not_equal(stat(db_dir, &st), 0);
  const char *args[] = {"--port", "0", "--store", store, "--demo-delay-ms", "0", NULL};
  int port = start_at(args, NULL);
  assert_int_equal(stat(db_dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  ck_json *events =
      hc_stream(A, port,
                "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":"
                "\"input_text\",\"text\":\"remember me\"}],\"attachments\":[],"
                "\"inference_options\":{}}}}");
  assert_non_null(events);
  const char *tid =
      ck_json_object_get_str(ck_json_object_get(ck_json_array_get(events, 0), "thread"), "id");
  stop();

  port = start_at(args, NULL);
  char body[256];
  snprintf(body, sizeof(body), "{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"%s\"}}",
           tid);
  hc_response r;
  assert_int_equal(hc_chatkit(port, body, &r), 0);
  assert_int_equal(r.status, 200);
  ck_json *t = hc_json(A, r.body, r.body_len);
  hc_response_free(&r);
  assert_string_equal(ck_json_object_get_str(t, "title"), "remember me");
  const ck_json *items = ck_json_object_get(ck_json_object_get(t, "items"), "data");
  assert_int_equal(ck_json_array_size(items), 2);
  assert_string_equal(hc_item_text(A, ck_json_array_get(items, 0)), "remember me");
  /* Nothing but the listening line is ever printed on stdout: after it, EOF at exit. */
  assert_int_equal(kill(proc.pid, SIGTERM), 0);
  char rest[256];
  assert_int_equal(ck_proc_read_stdout(&proc, rest, sizeof(rest), 10000), 0);
  stop();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_version),    cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_port_env),        cmocka_unit_test(test_dotenv),
      cmocka_unit_test(test_raises_fd_limit), cmocka_unit_test(test_check),
      cmocka_unit_test(test_config_file),     cmocka_unit_test(test_sqlite_dir_and_persistence),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
