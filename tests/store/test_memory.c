/* The memory store: the shared suite, the conformance dump and ck_store_open_url. */
#include <chatkit/error.h>
#include <chatkit/json.h>
#include <chatkit/store.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store/memory.h"
#include "support/store_suite.h"

static ck_store *open_memory(void *ud) {
  (void)ud;
  return ck_store_memory_new();
}

static ck_json *parse(ck_arena *a, const char *text) {
  ck_json *v = NULL;
  assert_int_equal(ck_json_parse(a, text, strlen(text), 0, &v, NULL), CK_OK);
  return v;
}

/* The dump lists every user's records in the conformance "store_after" shape. */
static void test_dump(void **state) {
  (void)state;
  ck_store *s = ck_store_memory_new();
  ck_arena *a = ck_arena_new(0);
  const ck_ctx alice = {.user_id = "alice"}, bob = {.user_id = "bob"};
  assert_non_null(s);
  assert_int_equal(
      s->vt->save_thread(s, parse(a, "{\"id\":\"t2\",\"created_at\":\"2025-01-02\"}"), &alice),
      CK_OK);
  assert_int_equal(
      s->vt->save_thread(s, parse(a, "{\"id\":\"t1\",\"created_at\":\"2025-01-01\"}"), &bob),
      CK_OK);
  assert_int_equal(
      s->vt->add_thread_item(
          s, "t2", parse(a, "{\"id\":\"i\",\"created_at\":\"2025-01-03\",\"type\":\"x\"}"), &alice),
      CK_OK);
  assert_int_equal(s->vt->save_attachment(s, parse(a, "{\"id\":\"b\"}"), &bob), CK_OK);
  assert_int_equal(s->vt->save_attachment(s, parse(a, "{\"id\":\"a\"}"), &alice), CK_OK);
  assert_int_equal(s->vt->save_attachment(s, parse(a, "{\"id\":\"b\",\"v\":2}"), &bob), CK_OK);
  ck_json *d;
  assert_int_equal(ck__store_memory_dump(s, a, &d), CK_OK);
  assert_string_equal(ck_json_dumps(a, d, NULL),
                      "{\"threads\":[{\"id\":\"t1\",\"created_at\":\"2025-01-01\"},"
                      "{\"id\":\"t2\",\"created_at\":\"2025-01-02\"}],"
                      "\"items\":{\"t1\":[],\"t2\":[{\"id\":\"i\",\"created_at\":\"2025-01-03\","
                      "\"type\":\"x\"}]},"
                      "\"attachments\":[{\"id\":\"b\",\"v\":2},{\"id\":\"a\"}]}");
  ck_store_free(s);
  ck_arena_free(a);
}

static void test_open_url(void **state) {
  (void)state;
  ck_store *s = NULL;
  char err[256] = "";
  assert_int_equal(ck_store_open_url("memory:", &s, err, sizeof(err)), CK_OK);
  assert_non_null(s);
  assert_string_equal(s->name, "memory");
  ck_store_free(s);
  assert_int_equal(ck_store_open_url("foo:", &s, err, sizeof(err)), CK_EINVAL);
  assert_null(s);
  assert_string_equal(
      err, "unknown store URL \"foo:\": expected memory:, sqlite:PATH or postgres://...");
  assert_int_equal(ck_store_open_url("memory", &s, err, sizeof(err)), CK_EINVAL);
  assert_int_equal(ck_store_open_url("sqlite:", &s, err, sizeof(err)), CK_EINVAL);
  assert_non_null(strstr(err, "no path"));
  /* PostgreSQL needs the full scheme ("postgres://" or "postgresql://"); anything else is
   * unknown rather than guessed at. */
  assert_int_equal(ck_store_open_url("postgres:x", &s, NULL, 0), CK_EINVAL);
  assert_int_equal(ck_store_open_url("mysql://x", &s, NULL, 0), CK_EINVAL);
  ck_store_free(NULL);
}

int main(void) {
  int failed = ck_test_store_suite("memory", open_memory, NULL, NULL);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dump),
      cmocka_unit_test(test_open_url),
  };
  failed += cmocka_run_group_tests_name("store/memory-extras", tests, NULL, NULL);
  return failed;
}
