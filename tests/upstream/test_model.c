/* The model client against the scripted mock on 127.0.0.1: streaming text, tool calls,
 * reasoning and usage for both APIs and several dialects, and the request bodies we send.
 * Errors, retries, timeouts, cancellation and load are in test_model_errors.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <chatkit/error.h>

#include "support/model_harness.h"

#include <stdlib.h>
#include <string.h>

#define USER_HI "[{\"role\":\"user\",\"content\":\"hi\"}]"

static void with_key(ck_model_config *cfg) {
  cfg->api_key = "sk-test-secret";
}

static void reset(void) {
  ck_mock_model_reset(mh_mock);
}

/* The body of request `i` parsed into `a`. */
static ck_json *sent_body(ck_arena *a, size_t i) {
  char *b = ck_mock_model_request_body(mh_mock, i);
  assert_non_null(b);
  ck_json *v = mh_json(a, b);
  free(b);
  return v;
}

static void test_chat_text(void **state) {
  reset();
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"role\":true},{\"text\":\"Hel\"},{\"text\":\"lo ☔ "
                               "world\",\"chunk\":2},{\"finish\":\"stop\"},{\"usage\":{\"prompt_"
                               "tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}},{\"done\":"
                               "true}]}");
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.dones, 1);
  assert_int_equal(o.res.status, CK_OK);
  assert_int_equal(o.res.finish, CK_MODEL_FINISH_STOP);
  assert_string_equal(o.text.data, "Hello ☔ world");
  assert_string_equal(o.text_done.data, "Hello ☔ world");
  assert_int_equal(o.message_starts, 1);
  assert_int_equal(o.text_dones, 1);
  assert_true(o.have_usage);
  assert_int_equal(o.usage.input_tokens, 9);
  assert_int_equal(o.usage.output_tokens, 2);
  assert_int_equal(o.usage.total_tokens, 11);
  assert_int_equal(o.res.attempts, 1);
  /* What was sent: the right endpoint, no Authorization without a key, the body. */
  char *path = ck_mock_model_request_path(mh_mock, 0);
  assert_string_equal(path, "/v1/chat/completions");
  free(path);
  assert_null(ck_mock_model_request_header(mh_mock, 0, "Authorization"));
  char *ct = ck_mock_model_request_header(mh_mock, 0, "Content-Type");
  assert_string_equal(ct, "application/json");
  free(ct);
  ck_arena *a = ck_arena_new(0);
  ck_json *want = mh_json(a, "{\"model\":\"test-model\",\"messages\":[{\"role\":\"system\","
                             "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"hi\"}],"
                             "\"stream\":true}");
  assert_true(ck_json_equal(sent_body(a, 0), want));
  ck_arena_free(a);
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void test_responses_text(void **state) {
  reset();
  ck_mock_model_queue(
      mh_mock, "{\"steps\":[{\"text\":\"Hi there!\",\"chunk\":3,\"id\":\"msg_abc\","
               "\"annotations\":[{\"type\":\"url_citation\",\"url\":\"https://x\",\"start_index\":"
               "0,\"end_index\":2,\"title\":\"t\"}]},{\"usage\":{\"input_tokens\":37,"
               "\"output_tokens\":11,\"total_tokens\":48,\"output_tokens_details\":{\"reasoning_"
               "tokens\":5}}},{\"finish\":\"stop\"}]}");
  ck_model_client *c = mh_client(CK_MODEL_API_RESPONSES, with_key);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, "gpt-test", USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.status, CK_OK);
  assert_int_equal(o.res.finish, CK_MODEL_FINISH_STOP);
  assert_string_equal(o.text.data, "Hi there!");
  assert_string_equal(o.text_done.data, "Hi there!");
  assert_string_equal(o.message_id, "msg_abc");
  assert_string_equal(o.response_id, "resp_mock");
  assert_int_equal(o.annotations, 1);
  assert_int_equal(o.usage.input_tokens, 37);
  assert_int_equal(o.usage.reasoning_tokens, 5);
  char *path = ck_mock_model_request_path(mh_mock, 0);
  assert_string_equal(path, "/v1/responses");
  free(path);
  char *auth = ck_mock_model_request_header(mh_mock, 0, "Authorization");
  assert_string_equal(auth, "Bearer sk-test-secret");
  free(auth);
  ck_arena *a = ck_arena_new(0);
  ck_json *want = mh_json(a, "{\"model\":\"gpt-test\",\"instructions\":\"Be brief.\",\"input\":"
                             "[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}");
  assert_true(ck_json_equal(sent_body(a, 0), want));
  ck_arena_free(a);
  mh_outcome_free(&o);
  mh_client_free(c);
}

/* no_done_text: the deltas are all there, but Chat Completions' TEXT_DONE (a copy the client
 * would assemble) is empty, while the Responses API's own whole text still comes through. */
static void test_no_done_text(void **state) {
  reset();
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"role\":true},{\"text\":\"Hello world\",\"chunk\":"
                               "3},{\"finish\":\"stop\"},{\"done\":true}]}");
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  mh_outcome o;
  mh_outcome_init(&o);
  o.no_done_text = true;
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.status, CK_OK);
  assert_string_equal(o.text.data, "Hello world");
  assert_int_equal(o.text_dones, 1);
  assert_int_equal(o.text_done.len, 0);
  mh_outcome_free(&o);
  mh_client_free(c);

  reset();
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"text\":\"Hi there!\",\"chunk\":3},{\"finish\":"
                               "\"stop\"}]}");
  c = mh_client(CK_MODEL_API_RESPONSES, with_key);
  mh_outcome_init(&o);
  o.no_done_text = true;
  assert_int_equal(mh_call(c, "gpt-test", USER_HI, NULL, NULL, &o), CK_OK);
  assert_string_equal(o.text.data, "Hi there!");
  assert_string_equal(o.text_done.data, "Hi there!");
  mh_outcome_free(&o);
  mh_client_free(c);
}

/* Parallel calls in fragments (OpenAI style), then Gemini-style calls sharing index 0. */
static void test_chat_tool_fragments(void **state) {
  reset();
  ck_mock_model_queue(mh_mock,
                      "{\"steps\":[{\"role\":true},"
                      "{\"tool_call\":{\"index\":0,\"id\":\"call_A1\",\"name\":\"get_weather\","
                      "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\",\"fragment\":3}},"
                      "{\"tool_call\":{\"index\":1,\"id\":\"call_B2\",\"name\":\"get_weather\","
                      "\"arguments\":\"{\\\"city\\\":\\\"Bergen\\\"}\",\"fragment\":1}},"
                      "{\"finish\":\"tool_calls\"},{\"done\":true}]}");
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  mh_outcome o;
  mh_outcome_init(&o);
  const char *tools = "[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"d\","
                      "\"parameters\":{\"type\":\"object\"},\"strict\":true}]";
  assert_int_equal(mh_call(c, NULL, USER_HI, tools, "\"auto\"", &o), CK_OK);
  assert_int_equal(o.res.status, CK_OK);
  assert_int_equal(o.res.finish, CK_MODEL_FINISH_TOOL_CALLS);
  assert_int_equal(o.ncalls, 2);
  assert_string_equal(o.call_id[0], "call_A1");
  assert_string_equal(o.call_name[0], "get_weather");
  assert_string_equal(o.call_args[0], "{\"city\":\"Oslo\"}");
  assert_string_equal(o.call_id[1], "call_B2");
  assert_string_equal(o.call_args[1], "{\"city\":\"Bergen\"}");
  assert_int_equal(o.message_starts, 0); /* content:null opens no message */
  mh_outcome_free(&o);

  /* Gemini: both calls at index 0 with distinct ids are two calls. */
  ck_mock_model_queue(
      mh_mock, "{\"steps\":[{\"tool_call\":{\"index\":0,\"id\":\"g1\",\"name\":\"a\","
               "\"arguments\":\"{}\",\"fragment\":1}},{\"tool_call\":{\"index\":0,\"id\":\"g2\","
               "\"name\":\"b\",\"arguments\":\"{\\\"x\\\":1}\",\"fragment\":2}},"
               "{\"finish\":\"stop\"},{\"done\":true}]}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, tools, NULL, &o), CK_OK);
  assert_int_equal(o.ncalls, 2);
  assert_string_equal(o.call_name[0], "a");
  assert_string_equal(o.call_name[1], "b");
  assert_string_equal(o.call_args[1], "{\"x\":1}");
  /* "stop" with calls still counts as tool calls. */
  assert_int_equal(o.res.finish, CK_MODEL_FINISH_TOOL_CALLS);
  mh_outcome_free(&o);
  mh_client_free(c);
}

/* Ollama/Groq style: the whole call in one delta, no [DONE], reasoning in "reasoning". */
static void test_chat_tool_whole_and_reasoning(void **state) {
  reset();
  ck_mock_model_queue(
      mh_mock, "{\"steps\":[{\"reasoning\":\"Let me think.\",\"field\":\"reasoning\",\"chunk\":4},"
               "{\"tool_call\":{\"index\":0,\"id\":\"call_1\",\"name\":\"lookup\",\"arguments\":"
               "\"{\\\"q\\\":\\\"x\\\"}\",\"whole\":true}},{\"finish\":\"tool_calls\"}]}");
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.status, CK_OK);
  assert_string_equal(o.reasoning.data, "Let me think.");
  assert_int_equal(o.ncalls, 1);
  assert_string_equal(o.call_args[0], "{\"q\":\"x\"}");
  mh_outcome_free(&o);

  /* DeepSeek / llama.cpp: reasoning_content, then text; a call with no id gets one made up. */
  ck_mock_model_queue(
      mh_mock, "{\"steps\":[{\"reasoning\":\"Hmm\",\"field\":\"reasoning_content\"},"
               "{\"text\":\"ok\"},{\"tool_call\":{\"index\":0,\"name\":\"f\",\"arguments\":\"\"}},"
               "{\"finish\":\"tool_calls\"},{\"done\":true}]}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_string_equal(o.reasoning.data, "Hmm");
  assert_string_equal(o.text.data, "ok");
  assert_int_equal(o.ncalls, 1);
  assert_string_equal(o.call_args[0], "{}");
  assert_true(strncmp(o.call_id[0], "call_", 5) == 0 || o.call_id[0][0] != '\0');
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void test_responses_tool_and_reasoning(void **state) {
  reset();
  ck_mock_model_queue(
      mh_mock, "{\"steps\":[{\"reasoning\":\"**Checking weather**\",\"chunk\":5},"
               "{\"tool_call\":{\"id\":\"call_A1\",\"item_id\":\"fc_1\",\"name\":\"get_weather\","
               "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\",\"fragment\":4}},"
               "{\"usage\":{\"input_tokens\":5,\"output_tokens\":6}},{\"finish\":\"stop\"}]}");
  ck_model_client *c = mh_client(CK_MODEL_API_RESPONSES, NULL);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.status, CK_OK);
  assert_int_equal(o.res.finish, CK_MODEL_FINISH_TOOL_CALLS);
  assert_string_equal(o.reasoning.data, "**Checking weather**");
  assert_int_equal(o.ncalls, 1);
  assert_string_equal(o.call_item[0], "fc_1");
  assert_string_equal(o.call_id[0], "call_A1");
  assert_string_equal(o.call_args[0], "{\"city\":\"Oslo\"}");
  assert_int_equal(o.usage.total_tokens, 11);
  mh_outcome_free(&o);

  /* response.incomplete: the token cap. */
  ck_mock_model_queue(mh_mock,
                      "{\"steps\":[{\"text\":\"cut\"},{\"incomplete\":\"max_output_tokens\"}]}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.status, CK_OK);
  assert_int_equal(o.res.finish, CK_MODEL_FINISH_LENGTH);
  mh_outcome_free(&o);
  mh_client_free(c);
}

/* CRLF and CR line endings, comments, frames written one byte per chunk, a 200 JSON body. */
static void test_framing_dialects(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  const char *scripts[] = {
      "{\"line_ending\":\"crlf\",\"split\":1,\"steps\":[{\"comment\":\" OPENROUTER "
      "PROCESSING\"},{\"text\":\"é😀\",\"chunk\":1},{\"finish\":\"stop\"},{\"done\":true}]}",
      "{\"line_ending\":\"cr\",\"steps\":[{\"comment\":\"\"},{\"text\":\"é😀\"},"
      "{\"finish\":\"stop\"},{\"raw\":\"data: [DONE]\"}]}",
      "{\"body\":{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
      "\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":\"é😀\"}}],"
      "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}}",
  };
  for (size_t i = 0; i < 3; i++) {
    ck_mock_model_queue(mh_mock, scripts[i]);
    mh_outcome o;
    mh_outcome_init(&o);
    assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
    assert_int_equal(o.res.status, CK_OK);
    assert_string_equal(o.text.data, "é😀");
    assert_int_equal(o.res.finish, CK_MODEL_FINISH_STOP);
    mh_outcome_free(&o);
  }
  mh_client_free(c);
}

static void tweak_extra_headers(ck_model_config *cfg) {
  static const char *const hdrs[] = {"api-key: azure-secret", "X-Title: chatkit", NULL};
  cfg->headers = hdrs;
}

/* Responses-API items converted to Chat messages, tools nested, tool_choice converted. */
static void test_chat_request_conversion(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, tweak_extra_headers);
  mh_outcome o;
  mh_outcome_init(&o);
  const char *input =
      "[{\"type\":\"message\",\"role\":\"developer\",\"content\":\"Dev note\"},"
      "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
      "\"Weather?\"},{\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,AA\","
      "\"detail\":\"low\"}]},"
      "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
      "{\"type\":\"message\",\"role\":\"assistant\",\"id\":\"msg_1\",\"content\":[{\"type\":"
      "\"output_text\",\"text\":\"Checking.\",\"annotations\":[]}]},"
      "{\"type\":\"function_call\",\"call_id\":\"call_A1\",\"name\":\"get_weather\","
      "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\",\"id\":\"fc_1\"},"
      "{\"type\":\"function_call\",\"call_id\":\"call_B2\",\"name\":\"get_weather\","
      "\"arguments\":\"{\\\"city\\\":\\\"Bergen\\\"}\"},"
      "{\"type\":\"function_call_output\",\"call_id\":\"call_A1\",\"output\":\"4C\"},"
      "{\"type\":\"function_call_output\",\"call_id\":\"call_B2\",\"output\":[{\"type\":"
      "\"input_text\",\"text\":\"7C\"}]},"
      "{\"role\":\"user\",\"content\":\"thanks\"}]";
  const char *tools = "[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"d\","
                      "\"parameters\":{\"type\":\"object\"},\"strict\":true}]";
  ck_arena *a = ck_arena_new(0);
  ck_model_request req = {.instructions = "Sys",
                          .input = mh_json(a, input),
                          .tools = mh_json(a, tools),
                          .tool_choice =
                              mh_json(a, "{\"type\":\"function\",\"name\":\"get_weather\"}"),
                          .parallel_tool_calls = CK_MODEL_ON,
                          .extra = mh_json(a, "{\"temperature\":0.5,\"max_tokens\":64}")};
  ck_model_call *call = NULL;
  assert_int_equal(ck_model_call_start(c, &req, mh_on_event, mh_on_done, &o, &call), CK_OK);
  assert_true(mh_run_until(&o.dones, 1, 10000));
  assert_int_equal(o.res.status, CK_OK);
  ck_json *want = mh_json(
      a, "{\"model\":\"test-model\",\"messages\":["
         "{\"role\":\"system\",\"content\":\"Sys\"},"
         "{\"role\":\"system\",\"content\":\"Dev note\"},"
         "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},{\"type\":"
         "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AA\",\"detail\":\"low\"}}]},"
         "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
         "{\"id\":\"call_A1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
         "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
         "{\"id\":\"call_B2\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
         "\"arguments\":\"{\\\"city\\\":\\\"Bergen\\\"}\"}}]},"
         "{\"role\":\"tool\",\"tool_call_id\":\"call_A1\",\"content\":\"4C\"},"
         "{\"role\":\"tool\",\"tool_call_id\":\"call_B2\",\"content\":\"7C\"},"
         "{\"role\":\"user\",\"content\":\"thanks\"}],"
         "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
         "\"description\":\"d\",\"parameters\":{\"type\":\"object\"},\"strict\":true}}],"
         "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
         "\"parallel_tool_calls\":true,\"stream\":true,\"temperature\":0.5,\"max_tokens\":64}");
  ck_json *got = sent_body(a, 0);
  if (!ck_json_equal(got, want))
    fprintf(stderr, "sent: %s\n", ck_json_dumps(a, got, NULL));
  assert_true(ck_json_equal(got, want));
  char *k = ck_mock_model_request_header(mh_mock, 0, "api-key");
  assert_string_equal(k, "azure-secret");
  free(k);
  ck_arena_free(a);
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void tweak_openai_dialect(ck_model_config *cfg) {
  cfg->stream_usage = CK_MODEL_ON;
  cfg->developer_role = CK_MODEL_ON;
}

/* Dialect switches: stream_options and the developer role; no parallel_tool_calls without
 * tools; Responses tools in Chat form are flattened. */
static void test_dialect_options(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, tweak_openai_dialect);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, "[{\"role\":\"developer\",\"content\":\"d\"}]", NULL, NULL, &o),
                   CK_OK);
  ck_arena *a = ck_arena_new(0);
  ck_json *got = sent_body(a, 0);
  assert_true(ck_json_equal(ck_json_object_get(got, "stream_options"),
                            mh_json(a, "{\"include_usage\":true}")));
  assert_string_equal(
      ck_json_object_get_str(ck_json_array_get(ck_json_object_get(got, "messages"), 1), "role"),
      "developer");
  assert_null(ck_json_object_get(got, "parallel_tool_calls"));
  mh_outcome_free(&o);
  mh_client_free(c);

  c = mh_client(CK_MODEL_API_RESPONSES, NULL);
  mh_outcome_init(&o);
  assert_int_equal(
      mh_call(c, NULL, "\"just a string\"",
              "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]",
              "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", &o),
      CK_OK);
  got = sent_body(a, 1);
  assert_true(
      ck_json_equal(ck_json_object_get(got, "tools"),
                    mh_json(a, "[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{}}]")));
  assert_true(ck_json_equal(ck_json_object_get(got, "tool_choice"),
                            mh_json(a, "{\"type\":\"function\",\"name\":\"f\"}")));
  assert_string_equal(ck_json_object_get_str(got, "input"), "just a string");
  ck_arena_free(a);
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void test_bad_requests(void **state) {
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  ck_arena *a = ck_arena_new(0);
  ck_model_call *call = NULL;
  ck_model_request req = {.input = mh_json(a, "{\"role\":\"user\"}")};
  assert_int_equal(ck_model_call_start(c, &req, NULL, mh_on_done, NULL, &call), CK_EINVAL);
  req.input = NULL;
  assert_int_equal(ck_model_call_start(c, &req, NULL, mh_on_done, NULL, &call), CK_EINVAL);
  assert_int_equal(ck_model_client_active(c), 0);
  ck_arena_free(a);
  mh_client_free(c);
  /* Headers with CR/LF and odd base URLs are refused. */
  static const char *const bad[] = {"X-A: b\r\nX-Evil: 1", NULL};
  ck_model_config cfg = {.base_url = "http://127.0.0.1:1/v1", .headers = bad};
  int err = 0;
  assert_null(ck_model_client_new(mh_loop, &cfg, &err));
  assert_int_equal(err, CK_EINVAL);
  ck_model_config cfg2 = {.base_url = "ftp://x"};
  assert_null(ck_model_client_new(mh_loop, &cfg2, &err));
  assert_int_equal(err, CK_EINVAL);
  /* AUTO picks Responses only for api.openai.com. */
  ck_model_config cfg3 = {.base_url = "https://api.openai.com/v1/"};
  c = ck_model_client_new(mh_loop, &cfg3, &err);
  assert_int_equal(ck_model_client_api(c), CK_MODEL_API_RESPONSES);
  mh_client_free(c);
  ck_model_config cfg4 = {.base_url = "http://localhost:11434/v1"};
  c = ck_model_client_new(mh_loop, &cfg4, &err);
  assert_int_equal(ck_model_client_api(c), CK_MODEL_API_CHAT);
  mh_client_free(c);
  ck_model_client_free(NULL);
  ck_model_call_cancel(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chat_text),
      cmocka_unit_test(test_responses_text),
      cmocka_unit_test(test_no_done_text),
      cmocka_unit_test(test_chat_tool_fragments),
      cmocka_unit_test(test_chat_tool_whole_and_reasoning),
      cmocka_unit_test(test_responses_tool_and_reasoning),
      cmocka_unit_test(test_framing_dialects),
      cmocka_unit_test(test_chat_request_conversion),
      cmocka_unit_test(test_dialect_options),
      cmocka_unit_test(test_bad_requests),
  };
  return cmocka_run_group_tests_name("upstream/model", tests, mh_setup, mh_teardown);
}
