/* Tests for src/util/log.c: one well-formed line per event, in JSON and logfmt. */
#include <chatkit/json.h>
#include <chatkit/log.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *capture(ck_log_format format, ck_log_level level) {
  static char buf[4096];
  memset(buf, 0, sizeof(buf));
  FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
  ck_log *log = ck_log_new(f, level, format);
  ck_log_event(log, CK_LOG_DEBUG, "hidden", (const char *)NULL);
  ck_log_event(log, CK_LOG_INFO, "request", "request_id", "r-1", "status", "200", "duration_ms",
               "1.5", "note", "two words \"quoted\"\nnewline", "skipped", (const char *)NULL,
               (const char *)NULL);
  ck_log_free(log);
  fclose(f);
  return buf;
}

static void test_json_lines(void **state) {
  char *out = capture(CK_LOG_JSON, CK_LOG_INFO);
  /* Exactly one line: the debug event is below the level, and the newline in a value is
   * escaped. */
  char *nl = strchr(out, '\n');
  assert_non_null(nl);
  assert_int_equal(nl[1], '\0');
  ck_arena *a = ck_arena_new(0);
  ck_json *v = NULL;
  assert_int_equal(ck_json_parse(a, out, (size_t)(nl - out), 0, &v, NULL), 0);
  assert_string_equal(ck_json_object_get_str(v, "level"), "info");
  assert_string_equal(ck_json_object_get_str(v, "msg"), "request");
  assert_string_equal(ck_json_object_get_str(v, "request_id"), "r-1");
  assert_true(ck_json_is_int(ck_json_object_get(v, "status")));
  assert_true(ck_json_is_number(ck_json_object_get(v, "duration_ms")));
  assert_string_equal(ck_json_object_get_str(v, "note"), "two words \"quoted\"\nnewline");
  assert_null(ck_json_object_get(v, "skipped"));
  ck_arena_free(a);
}

static void test_logfmt_lines(void **state) {
  char *out = capture(CK_LOG_LOGFMT, CK_LOG_INFO);
  assert_non_null(strstr(out, " level=info msg=request request_id=r-1 status=200"));
  assert_non_null(strstr(out, "note=\"two words \\\"quoted\\\"\\nnewline\""));
  assert_null(strstr(out, "hidden"));
}

static void test_levels(void **state) {
  ck_log_level l;
  assert_int_equal(ck_log_level_parse("warn", &l), 0);
  assert_int_equal(l, CK_LOG_WARN);
  assert_int_equal(ck_log_level_parse("verbose", &l), -1);
  char *out = capture(CK_LOG_JSON, CK_LOG_OFF);
  assert_string_equal(out, "");
  assert_false(ck_log_enabled(NULL, CK_LOG_ERROR));
  ck_log_event(NULL, CK_LOG_ERROR, "no logger is fine", (const char *)NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_lines),
      cmocka_unit_test(test_logfmt_lines),
      cmocka_unit_test(test_levels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
