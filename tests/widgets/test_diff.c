/* Tests of ck_widget_diff: every row of the "Verified cases" table of protocol.md §8.5, plus
 * the two errors (a new id, a non-prefix change the replace test did not catch). */
#include <chatkit/error.h>
#include <chatkit/widgets.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const char *diff_text(ck_arena *a, const char *before, const char *after, int *rc,
                             ck_validation_error *err) {
  ck_json *b = NULL, *x = NULL, *updates = NULL;
  assert_int_equal(ck_json_parse(a, before, strlen(before), 0, &b, NULL), CK_OK);
  assert_int_equal(ck_json_parse(a, after, strlen(after), 0, &x, NULL), CK_OK);
  *rc = ck_widget_diff(a, b, x, &updates, err);
  return *rc == CK_OK ? ck_json_dumps(a, updates, NULL) : NULL;
}

/* Diffs two widget texts and compares the updates with `want` ("root" is shorthand for one
 * widget.root.updated carrying `after`). */
static void check(const char *before, const char *after, const char *want) {
  ck_arena *a = ck_arena_new(0);
  ck_validation_error err;
  int rc;
  const char *got = diff_text(a, before, after, &rc, &err);
  if (rc != CK_OK)
    fail_msg("%s -> %s: rc %d: %s", before, after, rc, err.message);
  const char *w = want;
  if (strcmp(want, "root") == 0)
    w = ck_arena_printf(a, "[{\"type\":\"widget.root.updated\",\"widget\":%s}]", after);
  if (strcmp(got, w) != 0)
    fail_msg("%s -> %s:\n got  %s\n want %s", before, after, got, w);
  ck_arena_free(a);
}

static void check_error(const char *before, const char *after, const char *want_msg) {
  ck_arena *a = ck_arena_new(0);
  ck_validation_error err = {{0}, {0}};
  int rc;
  diff_text(a, before, after, &rc, &err);
  assert_int_equal(rc, CK_EINVAL);
  if (strstr(err.message, want_msg) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", err.message, want_msg);
  ck_arena_free(a);
}

#define CARD(kids) "{\"type\":\"Card\",\"children\":[" kids "]}"
#define DELTA(id, d, done)                                                                         \
  "{\"type\":\"widget.streaming_text.value_delta\",\"component_id\":\"" id "\",\"delta\":\"" d     \
  "\",\"done\":" done "}"

static void test_verified_cases(void **state) {
  /* Card([]) -> Card([]) */
  check(CARD(""), CARD(""), "[]");
  /* Text id=text "Hello" streaming -> "Hello, world!" streaming */
  check(CARD("{\"type\":\"Text\",\"id\":\"text\",\"value\":\"Hello\",\"streaming\":true}"),
        CARD("{\"type\":\"Text\",\"id\":\"text\",\"value\":\"Hello, world!\",\"streaming\":true}"),
        "[" DELTA("text", ", world!", "false") "]");
  /* streaming true -> false is a prop change: full replace */
  check(CARD("{\"type\":\"Text\",\"id\":\"text\",\"value\":\"Hello\",\"streaming\":true}"),
        CARD("{\"type\":\"Text\",\"id\":\"text\",\"value\":\"Hello, world!\",\"streaming\":false}"),
        "root");
  /* Text (no id) "Hello" -> "world!" */
  check(CARD("{\"type\":\"Text\",\"value\":\"Hello\"}"),
        CARD("{\"type\":\"Text\",\"value\":\"world!\"}"), "root");
  /* Text id=t "Hel" -> "Hello" (no streaming): done is true */
  check(CARD("{\"type\":\"Text\",\"id\":\"t\",\"value\":\"Hel\"}"),
        CARD("{\"type\":\"Text\",\"id\":\"t\",\"value\":\"Hello\"}"),
        "[" DELTA("t", "lo", "true") "]");
  /* streaming null counts as absent: done true */
  check(CARD("{\"type\":\"Text\",\"id\":\"t\",\"value\":\"Hel\",\"streaming\":null}"),
        CARD("{\"type\":\"Text\",\"id\":\"t\",\"value\":\"Hello\"}"),
        "[" DELTA("t", "lo", "true") "]");
  /* Text (no id) "Hel" -> "Hello": silently not streamed */
  check(CARD("{\"type\":\"Text\",\"value\":\"Hel\"}"),
        CARD("{\"type\":\"Text\",\"value\":\"Hello\"}"), "[]");
  /* Text id "Hel" -> "He" (shrink) */
  check(CARD("{\"type\":\"Text\",\"id\":\"t\",\"value\":\"Hel\"}"),
        CARD("{\"type\":\"Text\",\"id\":\"t\",\"value\":\"He\"}"), "root");
  /* Title id "Hel" -> "Hello": only Text and Markdown stream */
  check(CARD("{\"type\":\"Title\",\"id\":\"t\",\"value\":\"Hel\"}"),
        CARD("{\"type\":\"Title\",\"id\":\"t\",\"value\":\"Hello\"}"), "root");
  /* Markdown streams like Text */
  check(CARD("{\"type\":\"Markdown\",\"id\":\"m\",\"value\":\"# \",\"streaming\":true}"),
        CARD("{\"type\":\"Markdown\",\"id\":\"m\",\"value\":\"# T\",\"streaming\":true}"),
        "[" DELTA("m", "T", "false") "]");
  /* A prop added on the root, or a child added */
  check(CARD(""), "{\"type\":\"Card\",\"children\":[],\"size\":\"lg\"}", "root");
  check(CARD("{\"type\":\"Text\",\"value\":\"a\"}"),
        CARD("{\"type\":\"Text\",\"value\":\"a\"},{\"type\":\"Divider\"}"), "root");
  /* Text inside Box inside Card, and inside ListViewItem */
  check(CARD("{\"type\":\"Box\",\"children\":[{\"type\":\"Text\",\"id\":\"n\",\"value\":\"a\"}]}"),
        CARD("{\"type\":\"Box\",\"children\":[{\"type\":\"Text\",\"id\":\"n\",\"value\":\"ab\"}]}"),
        "[" DELTA("n", "b", "true") "]");
  check("{\"type\":\"ListView\",\"children\":[{\"type\":\"ListViewItem\",\"children\":[{\"type\":"
        "\"Text\",\"id\":\"l\",\"value\":\"x\",\"streaming\":true}]}]}",
        "{\"type\":\"ListView\",\"children\":[{\"type\":\"ListViewItem\",\"children\":[{\"type\":"
        "\"Text\",\"id\":\"l\",\"value\":\"xy\",\"streaming\":true}]}]}",
        "[" DELTA("l", "y", "false") "]");
  /* Text inside Transition (single-object children), "a" -> "ab": not traversed */
  check(CARD("{\"type\":\"Transition\",\"children\":{\"type\":\"Text\",\"id\":\"s\",\"value\":"
             "\"a\"}}"),
        CARD("{\"type\":\"Transition\",\"children\":{\"type\":\"Text\",\"id\":\"s\",\"value\":"
             "\"ab\"}}"),
        "[]");
  /* dynamic Text with numeric value 1 -> 12 */
  check(CARD("{\"type\":\"Text\",\"id\":\"t\",\"value\":1}"),
        CARD("{\"type\":\"Text\",\"id\":\"t\",\"value\":12}"), "root");
  /* Card -> ListView */
  check(CARD(""), "{\"type\":\"ListView\",\"children\":[]}", "root");
  /* Numeric equality: 4 and 4.0 are the same prop value */
  check("{\"type\":\"Card\",\"children\":[],\"gap\":4}",
        "{\"type\":\"Card\",\"children\":[],\"gap\":4.0}", "[]");
  /* An absent key and a null are the same */
  check("{\"type\":\"Card\",\"children\":[],\"key\":null}", CARD(""), "[]");
  /* A changed key is a replace even when nothing else changed */
  check("{\"type\":\"Card\",\"children\":[],\"key\":\"a\"}",
        "{\"type\":\"Card\",\"children\":[],\"key\":\"b\"}", "root");
  /* Several texts: one delta per grown text, in document order; empty ids do not stream */
  check(CARD("{\"type\":\"Text\",\"id\":\"a\",\"value\":\"1\"},{\"type\":\"Text\",\"id\":\"\","
             "\"value\":\"x\"},{\"type\":\"Text\",\"id\":\"b\",\"value\":\"2\"}"),
        CARD("{\"type\":\"Text\",\"id\":\"a\",\"value\":\"1a\"},{\"type\":\"Text\",\"id\":\"\","
             "\"value\":\"xy\"},{\"type\":\"Text\",\"id\":\"b\",\"value\":\"2b\"}"),
        "[" DELTA("a", "a", "true") "," DELTA("b", "b", "true") "]");
}

static void test_errors(void **state) {
  /* Two texts with the same id: the second one's value is checked against the first one's (the
   * lookup is by id), which is not a prefix of it; the replace test cannot see this because it
   * compares components by position. */
  check_error(CARD("{\"type\":\"Text\",\"id\":\"d\",\"value\":\"ab\"},{\"type\":\"Text\",\"id\":"
                   "\"d\",\"value\":\"zz\"}"),
              CARD("{\"type\":\"Text\",\"id\":\"d\",\"value\":\"abc\"},{\"type\":\"Text\",\"id\":"
                   "\"d\",\"value\":\"zzz\"}"),
              "Node d text is not a prefix");
  /* A new id never reaches the "was not present" check: the replace test compares the ids of
   * components position by position first, so a new id is a full replacement. */
  check(CARD("{\"type\":\"Text\",\"value\":\"a\"}"),
        CARD("{\"type\":\"Text\",\"id\":\"new\",\"value\":\"ab\"}"), "root");
}

/* Many streaming texts with ids (more than any fixed table would hold) still diff. */
static void test_many_texts(void **state) {
  ck_arena *a = ck_arena_new(0);
  ck_json *before = ck_json_object(a), *after = ck_json_object(a);
  ck_json *bk = ck_json_array(a), *ak = ck_json_array(a);
  ck_json_object_set(before, "type", ck_json_str(a, "Card"));
  ck_json_object_set(before, "children", bk);
  ck_json_object_set(after, "type", ck_json_str(a, "Card"));
  ck_json_object_set(after, "children", ak);
  for (int i = 0; i < 1000; i++) {
    ck_json *b = ck_json_object(a), *x = ck_json_object(a);
    char *id = ck_arena_printf(a, "t%d", i);
    ck_json_object_set(b, "type", ck_json_str(a, "Text"));
    ck_json_object_set(b, "id", ck_json_str(a, id));
    ck_json_object_set(b, "value", ck_json_str(a, "v"));
    ck_json_object_set(x, "type", ck_json_str(a, "Text"));
    ck_json_object_set(x, "id", ck_json_str(a, id));
    ck_json_object_set(x, "value", ck_json_str(a, i % 2 ? "vw" : "v"));
    ck_json_array_append(bk, b);
    ck_json_array_append(ak, x);
  }
  ck_json *updates = NULL;
  ck_validation_error err;
  assert_int_equal(ck_widget_diff(a, before, after, &updates, &err), CK_OK);
  assert_int_equal(ck_json_array_size(updates), 500);
  assert_string_equal(ck_json_object_get_str(ck_json_array_get(updates, 499), "component_id"),
                      "t999");
  ck_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_verified_cases),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_many_texts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
