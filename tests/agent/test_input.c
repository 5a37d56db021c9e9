/* Tests for src/agent/input.c and pyjson.c: thread items become the model input the reference
 * builds (protocol.md §9.3, §11.5), and tool payloads are dumped like Python's json.dumps. */
#include <chatkit/agent.h>
#include <chatkit/error.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static ck_arena *arena;

static int setup(void **state) {
  arena = ck_arena_new(0);
  return 0;
}

static int teardown(void **state) {
  ck_arena_free(arena);
  return 0;
}

static ck_json *parse(const char *text) {
  ck_json *v = NULL;
  assert_int_equal(ck_json_parse(arena, text, strlen(text), 0, &v, NULL), CK_OK);
  return v;
}

/* Converts a JSON array of items and returns the compact JSON of the inputs. */
static const char *convert(const char *items, size_t max_chars) {
  ck_json *out = NULL;
  assert_int_equal(ck_thread_to_model_input(arena, parse(items), NULL, max_chars, &out), CK_OK);
  return ck_json_dumps(arena, out, NULL);
}

#define ITEM(id, type)                                                                             \
  "\"id\":\"" id "\",\"thread_id\":\"t\",\"created_at\":\"2025-01-01T00:00:00\",\"type\":\"" type  \
  "\""

static void test_quoted_text_only_for_last_message(void **state) {
  const char *out = convert(
      "[{" ITEM(
          "m1",
          "user_message") ",\"content\":[{\"type\":\"input_text\",\"text\":\"first\"}],"
                          "\"attachments\":[],\"quoted_text\":\"old\",\"inference_options\":{}},"
                          "{" ITEM("m2", "user_message") ",\"content\":[{\"type\":\"input_text\","
                                                         "\"text\":\"second\"}],"
                                                         "\"attachments\":[],\"quoted_text\":"
                                                         "\"this part\",\"inference_options\":{}}]",
      0);
  assert_string_equal(
      out,
      "[{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
      "\"first\"}]},{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
      "\"input_text\",\"text\":\"second\"}]},{\"type\":\"message\",\"role\":\"user\","
      "\"content\":[{\"type\":\"input_text\",\"text\":\"The user is referring to this in "
      "particular: \\nthis part\"}]}]");
}

static void test_assistant_widget_and_tool_calls(void **state) {
  const char *out = convert(
      "[{" ITEM(
          "a1",
          "assistant_message") ",\"content\":[{\"annotations\":[],\"text\":\"x\","
                               "\"type\":\"output_text\"},{\"annotations\":[],\"text\":\"y\","
                               "\"type\":\"output_text\"}]},"
                               "{" ITEM("w1",
                                        "widget") ",\"widget\":{\"type\":\"Card\",\"children\":[{"
                                                  "\"type\":\"Text\","
                                                  "\"value\":\"hi\"}]}},"
                                                  "{" ITEM(
                                                      "tc1",
                                                      "client_tool_call") ",\"status\":\"pending\","
                                                                          "\"call_id\":\"c0\","
                                                                          "\"name\":"
                                                                          "\"f\",\"arguments\":{}},"
                                                                          "{" ITEM(
                                                                              "tc2",
                                                                              "client_tool_"
                                                                              "call") ",\"statu"
                                                                                      "s\":"
                                                                                      "\"comple"
                                                                                      "ted\","
                                                                                      "\"call_"
                                                                                      "id\":"
                                                                                      "\"c1\","
                                                                                      "\"name\""
                                                                                      ":"
                                                                                      "\"f\","
                                                                                      "\"argume"
                                                                                      "nts\":{"
                                                                                      "\"foo\":"
                                                                                      "\"bar\","
                                                                                      "\"n\":["
                                                                                      "1,2.5,"
                                                                                      "null]},"
                                                                                      "\"output"
                                                                                      "\":{"
                                                                                      "\"ok\":"
                                                                                      "true}}]",
      0);
  assert_non_null(strstr(out, "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{"
                              "\"annotations\":[],\"text\":\"x\",\"type\":\"output_text\","
                              "\"logprobs\":null},{\"annotations\":[],\"text\":\"y\""));
  assert_non_null(strstr(out, "\"The following graphical UI widget (id: w1) was displayed to the "
                              "user:{\\\"type\\\":\\\"Card\\\",\\\"children\\\":[{\\\"type\\\":\\\""
                              "Text\\\",\\\"value\\\":\\\"hi\\\"}]}\""));
  /* The pending call is skipped; the completed one is a call plus its output, json.dumps style. */
  assert_null(strstr(out, "\"c0\""));
  assert_non_null(strstr(out, "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\","
                              "\"arguments\":\"{\\\"foo\\\": \\\"bar\\\", \\\"n\\\": [1, 2.5, "
                              "null]}\"},{\"type\":\"function_call_output\",\"call_id\":\"c1\","
                              "\"output\":\"{\\\"ok\\\": true}\"}"));
}

static void test_tags_and_mentions(void **state) {
  const char *out = convert(
      "[{" ITEM("m1", "user_message") ",\"content\":[{\"type\":\"input_tag\",\"id\":\"e\",\"text\":"
                                      "\"Hello\",\"data\":{\"k\":1},\"interactive\":false},{"
                                      "\"type\":\"input_text\",\"text\":\"!\"},"
                                      "{\"type\":\"input_tag\",\"id\":\"e2\",\"text\":\"Hello\","
                                      "\"data\":{},\"interactive\":false}],"
                                      "\"attachments\":[],\"inference_options\":{}}]",
      0);
  assert_non_null(strstr(out, "\"text\":\"@Hello!@Hello\""));
  assert_non_null(strstr(out, "# User-provided context for @-mentions\\n- When referencing "
                              "resolved entities, use their canonical names **without** '@'.\\n- "
                              "The '@' form appears only in user text and should not be echoed."));
  /* Tags are deduplicated by text: one context part for "Hello". */
  assert_non_null(strstr(out, "\"@Hello: {\\\"k\\\":1}\""));
  assert_null(strstr(out, "\"@Hello: {}\""));
}

static void test_other_items(void **state) {
  const char *out = convert(
      "[{" ITEM(
          "s1",
          "structured_input") ",\"status\":\"answered\",\"inputs\":[{\"id\":\"a\","
                              "\"question\":\"Subject?\",\"answer\":{\"values\":[\"Math\",\"Art\"],"
                              "\"skipped\":false},"
                              "\"type\":\"freeform\"},{\"id\":\"b\",\"question\":\"Level?\","
                              "\"answer\":{\"values\":[],"
                              "\"skipped\":true},\"type\":\"freeform\"},{\"id\":\"c\",\"question\":"
                              "\"Why?\",\"type\":"
                              "\"freeform\"}]},"
                              "{" ITEM(
                                  "h1",
                                  "hidden_context_item") ",\"content\":\"secret\"},"
                                                         "{" ITEM(
                                                             "h2",
                                                             "sdk_hidden_context") ",\"content\":"
                                                                                   "\"cancelled\"},"
                                                                                   "{" ITEM(
                                                                                       "g1",
                                                                                       "generated_"
                                                                                       "image") "},"
                                                                                                "{" ITEM(
                                                                                                    "g2",
                                                                                                    "generated_image") ",\"image\":{\"id\":\"i\",\"url\":\"https://x/i.png\"}},"
                                                                                                                       "{" ITEM(
                                                                                                                           "t1",
                                                                                                                           "task") ",\"task\":{\"status_indicator\":\"none\",\"type\":\"custom\","
                                                                                                                                   "\"title\":\"T\",\"content\":\"C\"}},"
                                                                                                                                   "{" ITEM(
                                                                                                                                       "t2",
                                                                                                                                       "task") ",\"task\":{\"status_indicator\":\"none\",\"type\":\"thought\","
                                                                                                                                               "\"content\":\"hmm\"}},"
                                                                                                                                               "{" ITEM(
                                                                                                                                                   "e1",
                                                                                                                                                   "end_of_turn") "}]",
      0);
  assert_non_null(strstr(out, "A structured input request was displayed to the user with the "
                              "following status: answered\\n<StructuredInput>\\n- Subject?: Math, "
                              "Art\\n- Level?: skipped\\n- Why?: unanswered\\n</StructuredInput>"));
  assert_non_null(strstr(out, "Hidden context for the agent (not shown to the user):\\n"
                              "<HiddenContext>\\nsecret\\n</HiddenContext>"));
  assert_non_null(strstr(out, "<HiddenContext>\\ncancelled\\n</HiddenContext>"));
  assert_non_null(strstr(out, "[{\"type\":\"input_text\",\"text\":\"The following image was "
                              "generated by the agent.\"},{\"type\":\"input_image\",\"detail\":"
                              "\"auto\",\"image_url\":\"https://x/i.png\"}]"));
  assert_non_null(strstr(out, "<Task>\\nT: C\\n</Task>"));
  assert_null(strstr(out, "hmm"));
}

static void test_budget_keeps_newest(void **state) {
  const char *items = "[{" ITEM(
      "m1",
      "user_message") ",\"content\":[{\"type\":\"input_text\",\"text\":"
                      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}],\"attachments\":[],"
                      "\"inference_options\":{}},"
                      "{" ITEM(
                          "m2",
                          "user_message") ",\"content\":[{\"type\":\"input_text\",\"text\":\"b\"}],"
                                          "\"attachments\":[],\"inference_options\":{}}]";
  const char *all = convert(items, 0);
  assert_non_null(strstr(all, "aaaa"));
  const char *cut = convert(items, 100);
  assert_null(strstr(cut, "aaaa"));
  assert_non_null(strstr(cut, "\"text\":\"b\""));
  /* Even a budget smaller than the newest item keeps it. */
  assert_non_null(strstr(convert(items, 1), "\"text\":\"b\""));
}

static void test_python_dumps(void **state) {
  ck_json *v = parse("{\"s\":\"é😀\\n\\u0001/\",\"f\":[1e-05,0.0001,1e16,1e15,100.0,0.1,-0.0,"
                     "1.5e-07,123456789012345678.0],\"i\":12345678901234567890,\"e\":{},\"a\":[]}");
  assert_string_equal(ck_json_dumps_python(arena, v),
                      "{\"s\": \"\\u00e9\\ud83d\\ude00\\n\\u0001/\", \"f\": [1e-05, 0.0001, 1e+16, "
                      "1000000000000000.0, 100.0, 0.1, -0.0, 1.5e-07, 1.2345678901234568e+17], "
                      "\"i\": 12345678901234567890, \"e\": {}, \"a\": []}");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quoted_text_only_for_last_message),
      cmocka_unit_test(test_assistant_widget_and_tool_calls),
      cmocka_unit_test(test_tags_and_mentions),
      cmocka_unit_test(test_other_items),
      cmocka_unit_test(test_budget_keeps_newest),
      cmocka_unit_test(test_python_dumps),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
