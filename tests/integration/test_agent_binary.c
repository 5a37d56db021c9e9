/* The binary with a model configured: agents and tools from the config file, the model reached
 * through OPENAI_BASE_URL (the scripted mock model program), and config errors that name the
 * line and the key. */
#include "support/http_client.h"
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

static char dir[256];
static ck_proc mock;

static int setup(void **state) {
  assert_int_equal(ck_tmpdir_make(dir, sizeof(dir)), 0);
  const char *argv[] = {
      CK_BINARY_DIR "/tests/mock-model", "--host", "127.0.0.1", "--port", "0", NULL};
  assert_int_equal(ck_proc_spawn(&mock, argv, dir, NULL), 0);
  assert_int_equal(ck_proc_wait_listening(&mock, 5000), 0);
  return 0;
}

static int teardown(void **state) {
  ck_proc_stop(&mock, 2000);
  ck_tmpdir_remove(dir);
  return 0;
}

static void test_agent_answers_through_the_model(void **state) {
  char yaml[1024];
  snprintf(yaml, sizeof(yaml),
           "model:\n"
           "  base_url: http://127.0.0.1:%d/v1\n"
           "  api: chat_completions\n"
           "  name: mock-model\n"
           "tools:\n"
           "  - name: get_location\n"
           "    type: client\n"
           "    description: The user's location\n"
           "agents:\n"
           "  - name: Helper\n"
           "    instructions: Be brief.\n"
           "    tools: [get_location]\n",
           mock.port);
  assert_int_equal(ck_write_file(dir, "chatkit.yaml", yaml), 0);
  ck_proc srv;
  const char *args[] = {"--config", "chatkit.yaml", "--store", "memory:", NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  ck_arena *a = ck_arena_new(0);
  ck_json *events = hc_stream(a, port,
                              "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{"
                              "\"type\":\"input_text\",\"text\":\"Hello model\"}],"
                              "\"attachments\":[],\"inference_options\":{}}}}");
  assert_non_null(events);
  /* The mock's default script streams "Hello from the mock."; the title call names the
   * thread. */
  ck_json *done = hc_find_type(events, "thread.item.done", 2);
  assert_string_equal(hc_item_text(a, ck_json_object_get(done, "item")), "Hello from the mock.");
  assert_non_null(hc_find_type(events, "thread.updated", 0));
  ck_arena_free(a);
  assert_int_equal(ck_proc_stop(&srv, 5000), 0);
}

static void test_config_errors_name_the_line(void **state) {
  assert_int_equal(ck_write_file(dir, "bad.yaml",
                                 "tools:\n  - name: t\n    type: client\nagents:\n  - name: A\n"
                                 "    tools: [t, nope]\n"),
                   0);
  ck_proc p;
  const char *argv[] = {
      CK_BINARY_DIR "/chatkit-server", "--config", "bad.yaml", "--port", "0", NULL};
  assert_int_equal(ck_proc_spawn(&p, argv, dir, NULL), 0);
  ck_proc_wait(&p, 5000);
  assert_int_equal(p.exit_code, 2);
  FILE *f = fopen(p.err_path, "r");
  char buf[4096] = "";
  size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
  buf[n] = '\0';
  if (f)
    fclose(f);
  ck_proc_kill(&p); /* releases the stderr file */
  assert_non_null(strstr(buf, "bad.yaml:6: agents[0]: unknown tool \"nope\""));

  assert_int_equal(ck_write_file(dir, "bad2.yaml", "model:\n  name: x\n  colour: blue\n"), 0);
  const char *argv2[] = {
      CK_BINARY_DIR "/chatkit-server", "--config", "bad2.yaml", "--port", "0", NULL};
  assert_int_equal(ck_proc_spawn(&p, argv2, dir, NULL), 0);
  ck_proc_wait(&p, 5000);
  assert_int_equal(p.exit_code, 2);
  f = fopen(p.err_path, "r");
  n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
  buf[n] = '\0';
  if (f)
    fclose(f);
  ck_proc_kill(&p);
  assert_non_null(strstr(buf, "bad2.yaml:3: model: unknown key \"colour\""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_agent_answers_through_the_model),
      cmocka_unit_test(test_config_errors_name_the_line),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
