/* Tests of request parsing (protocol.md §1.2, §4, §12 item 15): every request type, the
 * canonical params it yields, and the exact path named by each rejection. */
#include <chatkit/error.h>
#include <chatkit/protocol.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Parses `body` and checks the type and the canonical params text. */
static void accept(const char *body, ck_request_type type, const char *want_params) {
  ck_arena *a = ck_arena_new(0);
  ck_request req;
  ck_validation_error err = {{0}, {0}};
  int rc = ck_request_parse(a, body, strlen(body), &req, &err);
  if (rc != CK_OK)
    fail_msg("rejected %s: %s: %s", body, err.path, err.message);
  assert_int_equal(req.type, type);
  char *text = ck_json_dumps(a, req.params, NULL);
  if (strcmp(text, want_params) != 0)
    fail_msg("%s:\n got  %s\n want %s", body, text, want_params);
  ck_arena_free(a);
}

/* Parses `body` and checks that it is rejected with `want_path` and, when not NULL, a message
 * containing `want_msg`. */
static void reject_n(const char *body, size_t len, const char *want_path, const char *want_msg) {
  ck_arena *a = ck_arena_new(0);
  ck_request req;
  ck_validation_error err = {{0}, {0}};
  int rc = ck_request_parse(a, body, len, &req, &err);
  if (rc != CK_EINVAL)
    fail_msg("not rejected (rc %d): %.*s", rc, (int)len, body);
  if (strcmp(err.path, want_path) != 0)
    fail_msg("%.*s: path %s, want %s (%s)", (int)len, body, err.path, want_path, err.message);
  if (want_msg != NULL && strstr(err.message, want_msg) == NULL)
    fail_msg("%.*s: message \"%s\" lacks \"%s\"", (int)len, body, err.message, want_msg);
  ck_arena_free(a);
}

static void reject(const char *body, const char *want_path, const char *want_msg) {
  reject_n(body, strlen(body), want_path, want_msg);
}

#define INPUT                                                                                      \
  "{\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"}],\"attachments\":[],\"inference_"       \
  "options\":{}}"
#define INPUT_CANON                                                                                \
  "{\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"}],\"attachments\":[],"                   \
  "\"inference_options\":{}}"

static void test_streaming_types(void **state) {
  accept("{\"type\":\"threads.create\",\"params\":{\"input\":" INPUT "}}", CK_REQ_THREADS_CREATE,
         "{\"input\":" INPUT_CANON "}");
  accept("{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"t\",\"input\":" INPUT
         "}}",
         CK_REQ_THREADS_ADD_USER_MESSAGE, "{\"input\":" INPUT_CANON ",\"thread_id\":\"t\"}");
  /* result is required but may be null; a null result is dropped from the canonical form. */
  accept("{\"type\":\"threads.add_client_tool_output\",\"params\":{\"thread_id\":\"t\","
         "\"result\":{\"a\":null}}}",
         CK_REQ_THREADS_ADD_CLIENT_TOOL_OUTPUT, "{\"thread_id\":\"t\",\"result\":{\"a\":null}}");
  accept("{\"type\":\"threads.add_client_tool_output\",\"params\":{\"thread_id\":\"t\","
         "\"result\":null}}",
         CK_REQ_THREADS_ADD_CLIENT_TOOL_OUTPUT, "{\"thread_id\":\"t\"}");
  accept("{\"type\":\"threads.add_structured_input\",\"params\":{\"thread_id\":\"t\","
         "\"item_id\":\"i\",\"input\":{\"answers\":{\"q\":{}}}}}",
         CK_REQ_THREADS_ADD_STRUCTURED_INPUT,
         "{\"thread_id\":\"t\",\"item_id\":\"i\",\"input\":{\"status\":\"answered\","
         "\"answers\":{\"q\":{\"values\":[],\"skipped\":false}}}}");
  accept(
      "{\"type\":\"threads.retry_after_item\",\"params\":{\"item_id\":\"i\",\"thread_id\":\"t\"}}",
      CK_REQ_THREADS_RETRY_AFTER_ITEM, "{\"thread_id\":\"t\",\"item_id\":\"i\"}");
  accept("{\"type\":\"threads.custom_action\",\"params\":{\"thread_id\":\"t\",\"item_id\":null,"
         "\"action\":{\"type\":\"go\",\"payload\":{\"x\":null}}}}",
         CK_REQ_THREADS_CUSTOM_ACTION,
         "{\"thread_id\":\"t\",\"action\":{\"type\":\"go\",\"payload\":{\"x\":null}}}");
}

static void test_json_types(void **state) {
  accept("{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"t\"}}",
         CK_REQ_THREADS_GET_BY_ID, "{\"thread_id\":\"t\"}");
  accept("{\"type\":\"threads.list\",\"params\":{}}", CK_REQ_THREADS_LIST, "{\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"after\":\"x\",\"limit\":3,\"order\":\"asc\"}}",
         CK_REQ_THREADS_LIST, "{\"limit\":3,\"order\":\"asc\",\"after\":\"x\"}");
  accept("{\"type\":\"items.list\",\"params\":{\"thread_id\":\"t\",\"limit\":null}}",
         CK_REQ_ITEMS_LIST, "{\"thread_id\":\"t\",\"order\":\"desc\"}");
  accept("{\"type\":\"items.feedback\",\"params\":{\"thread_id\":\"t\",\"item_ids\":[\"a\",\"b\"],"
         "\"kind\":\"negative\"}}",
         CK_REQ_ITEMS_FEEDBACK,
         "{\"thread_id\":\"t\",\"item_ids\":[\"a\",\"b\"],\"kind\":\"negative\"}");
  accept("{\"type\":\"attachments.create\",\"params\":{\"name\":\"f\",\"size\":\"12\","
         "\"mime_type\":\"text/plain\"}}",
         CK_REQ_ATTACHMENTS_CREATE, "{\"name\":\"f\",\"size\":12,\"mime_type\":\"text/plain\"}");
  accept("{\"type\":\"attachments.delete\",\"params\":{\"attachment_id\":\"a\"}}",
         CK_REQ_ATTACHMENTS_DELETE, "{\"attachment_id\":\"a\"}");
  accept("{\"type\":\"threads.update\",\"params\":{\"title\":\"T\",\"thread_id\":\"t\"}}",
         CK_REQ_THREADS_UPDATE, "{\"thread_id\":\"t\",\"title\":\"T\"}");
  accept("{\"type\":\"threads.delete\",\"params\":{\"thread_id\":\"t\"}}", CK_REQ_THREADS_DELETE,
         "{\"thread_id\":\"t\"}");
  accept("{\"type\":\"input.transcribe\",\"params\":{\"audio_base64\":\"AA==\","
         "\"mime_type\":\"audio/webm;codecs=opus\"}}",
         CK_REQ_INPUT_TRANSCRIBE,
         "{\"audio_base64\":\"AA==\",\"mime_type\":\"audio/webm;codecs=opus\"}");
  accept("{\"type\":\"threads.sync_custom_action\",\"params\":{\"thread_id\":\"t\","
         "\"item_id\":\"w\",\"action\":{\"type\":\"go\"}}}",
         CK_REQ_THREADS_SYNC_CUSTOM_ACTION,
         "{\"thread_id\":\"t\",\"item_id\":\"w\",\"action\":{\"type\":\"go\"}}");
}

static void test_type_names(void **state) {
  for (int t = 0; t < CK_REQ__COUNT; t++) {
    const char *name = ck_request_type_name((ck_request_type)t);
    assert_non_null(name);
    assert_int_equal(ck_request_is_streaming((ck_request_type)t),
                     t <= CK_REQ_THREADS_CUSTOM_ACTION);
  }
  assert_null(ck_request_type_name(CK_REQ__COUNT));
  assert_null(ck_request_type_name((ck_request_type)-1));
  assert_string_equal(ck_request_type_name(CK_REQ_THREADS_SYNC_CUSTOM_ACTION),
                      "threads.sync_custom_action");
}

static void test_rejection_paths(void **state) {
  reject("{\"type\":\"threads.list\",\"params\":{\"limit\":\"x\"}}", "threads.list.params.limit",
         "integer");
  reject("{\"type\":\"threads.list\",\"params\":{\"order\":\"ASC\"}}", "threads.list.params.order",
         NULL);
  reject("{\"type\":\"items.list\",\"params\":{\"thread_id\":\"t\",\"order\":\"newest\"}}",
         "items.list.params.order", NULL);
  reject("{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":5}}",
         "threads.get_by_id.params.thread_id", "string");
  reject("{\"type\":\"threads.get_by_id\",\"params\":{}}", "threads.get_by_id.params.thread_id",
         "field required");
  reject("{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":null}}",
         "threads.get_by_id.params.thread_id", "null");
  reject("{\"type\":\"items.feedback\",\"params\":{\"thread_id\":\"t\",\"item_ids\":\"a\","
         "\"kind\":\"positive\"}}",
         "items.feedback.params.item_ids", "list");
  reject("{\"type\":\"items.feedback\",\"params\":{\"thread_id\":\"t\",\"item_ids\":[\"a\",1],"
         "\"kind\":\"positive\"}}",
         "items.feedback.params.item_ids[1]", "string");
  reject("{\"type\":\"items.feedback\",\"params\":{\"thread_id\":\"t\",\"item_ids\":[],"
         "\"kind\":\"Positive\"}}",
         "items.feedback.params.kind", NULL);
  /* input_tag.data is required by the reference even though the JS types mark it optional. */
  reject(
      "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_text\","
      "\"text\":\"a\"},{\"type\":\"input_tag\",\"id\":\"e\",\"text\":\"B\"}],\"attachments\":[],"
      "\"inference_options\":{}}}}",
      "threads.create.params.input.content[1].data", "field required");
  reject("{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"image\"}],"
         "\"attachments\":[],\"inference_options\":{}}}}",
         "threads.create.params.input.content[0]", "unknown type");
  reject("{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"text\":\"a\"}],"
         "\"attachments\":[],\"inference_options\":{}}}}",
         "threads.create.params.input.content[0]", "discriminator");
  reject("{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[],"
         "\"inference_options\":{}}}}",
         "threads.create.params.input.attachments", "field required");
  reject("{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[],\"attachments\":[]}}}",
         "threads.create.params.input.inference_options", "field required");
  reject("{\"type\":\"threads.add_structured_input\",\"params\":{\"thread_id\":\"t\","
         "\"item_id\":\"i\",\"input\":{\"status\":\"pending\"}}}",
         "threads.add_structured_input.params.input.status", NULL);
  reject("{\"type\":\"threads.custom_action\",\"params\":{\"thread_id\":\"t\",\"action\":{}}}",
         "threads.custom_action.params.action.type", "field required");
  reject("{\"type\":\"attachments.create\",\"params\":{\"name\":\"f\",\"size\":1.5,"
         "\"mime_type\":\"m\"}}",
         "attachments.create.params.size", "fractional");
  reject("{\"type\":\"threads.add_client_tool_output\",\"params\":{\"thread_id\":\"t\"}}",
         "threads.add_client_tool_output.params.result", "field required");
}

static void test_envelope(void **state) {
  reject("{\"type\":\"threads.nope\",\"params\":{}}", "type", "unknown request type");
  reject("{\"params\":{}}", "type", "field required");
  reject("{\"type\":7,\"params\":{}}", "type", "string");
  reject("{\"type\":\"threads.list\"}", "threads.list.params", "field required");
  reject("{\"type\":\"threads.list\",\"params\":null}", "threads.list.params", "object");
  reject("{\"type\":\"threads.list\",\"params\":[]}", "threads.list.params", "object");
  reject("{\"type\":\"threads.list\",\"params\":{},\"metadata\":[1]}", "metadata", NULL);
  reject("[]", "body", "object");
  reject("null", "body", "object");
  reject("42", "body", "object");
  reject("", "body", "invalid JSON");
  reject("{", "body", "invalid JSON");
  reject("{\"type\":\"threads.list\",\"params\":{}} x", "body", "invalid JSON");
  /* A byte-order mark is not JSON whitespace; the reference rejects it too (case 062). */
  reject("\xEF\xBB\xBF{\"type\":\"threads.list\",\"params\":{}}", "body", "invalid JSON");
  reject("{\"type\":\"threads.update\",\"params\":{\"thread_id\":\"t\",\"title\":\"\xC3\x28\"}}",
         "body", "invalid JSON");
  reject("{\"type\":\"threads.update\",\"params\":{\"thread_id\":\"t\",\"title\":\"\xC0\xAF\"}}",
         "body", "invalid JSON");
  /* A NUL byte in the body ends nothing: the length is what counts. */
  static const char nul[] = "{\"type\":\"threads.list\",\"params\":{}}\0";
  reject_n(nul, sizeof(nul) - 1, "body", "invalid JSON");
  /* Metadata null and extra envelope keys are accepted. */
  accept("{\"type\":\"threads.list\",\"params\":{},\"metadata\":null,\"x\":1}", CK_REQ_THREADS_LIST,
         "{\"order\":\"desc\"}");
  accept(" \n\t{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"t\"}}\n ",
         CK_REQ_THREADS_GET_BY_ID, "{\"thread_id\":\"t\"}");
  /* Duplicate keys: the last value wins (case 067). */
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":5},\"params\":{\"limit\":1}}",
         CK_REQ_THREADS_LIST, "{\"limit\":1,\"order\":\"desc\"}");
}

/* Builds a body whose params.action.payload nests `depth` arrays. */
static char *nested_body(int depth) {
  static const char head[] =
      "{\"type\":\"threads.custom_action\",\"params\":{\"thread_id\":\"t\",\"action\":{\"type\":"
      "\"x\",\"payload\":";
  size_t n = sizeof(head) - 1 + (size_t)depth * 2 + 4;
  char *b = malloc(n);
  size_t len = 0;
  memcpy(b, head, sizeof(head) - 1);
  len = sizeof(head) - 1;
  memset(b + len, '[', (size_t)depth);
  len += (size_t)depth;
  memset(b + len, ']', (size_t)depth);
  len += (size_t)depth;
  memcpy(b + len, "}}}", 4);
  return b;
}

static void test_depth(void **state) {
  /* The envelope, params and action objects take three levels. */
  char *ok = nested_body(61);
  char *deep = nested_body(62);
  char *very = nested_body(100000);
  ck_arena *a = ck_arena_new(0);
  ck_request req;
  ck_validation_error err;
  assert_int_equal(ck_request_parse(a, ok, strlen(ok), &req, &err), CK_OK);
  reject(deep, "body", "invalid JSON");
  reject(very, "body", "invalid JSON");
  ck_arena_free(a);
  free(ok);
  free(deep);
  free(very);
}

static void test_lax_coercions(void **state) {
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":\"5\"}}", CK_REQ_THREADS_LIST,
         "{\"limit\":5,\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":\" +007 \"}}", CK_REQ_THREADS_LIST,
         "{\"limit\":7,\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":\"-0\"}}", CK_REQ_THREADS_LIST,
         "{\"limit\":0,\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":5.0}}", CK_REQ_THREADS_LIST,
         "{\"limit\":5,\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":-2}}", CK_REQ_THREADS_LIST,
         "{\"limit\":-2,\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":true}}", CK_REQ_THREADS_LIST,
         "{\"limit\":1,\"order\":\"desc\"}");
  /* Big integers keep their digits. */
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":123456789012345678901234567890}}",
         CK_REQ_THREADS_LIST, "{\"limit\":123456789012345678901234567890,\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":1e3}}", CK_REQ_THREADS_LIST,
         "{\"limit\":1000,\"order\":\"desc\"}");
  reject("{\"type\":\"threads.list\",\"params\":{\"limit\":5.5}}", "threads.list.params.limit",
         "fractional");
  /* pydantic-core's str_as_int: an all-zero fraction, underscores between digits, a sign and
   * leading zeros are all fine; "5." and misplaced underscores are not. */
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":\"5.00\"}}", CK_REQ_THREADS_LIST,
         "{\"limit\":5,\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":\"-0_1_000\"}}", CK_REQ_THREADS_LIST,
         "{\"limit\":-1000,\"order\":\"desc\"}");
  accept("{\"type\":\"threads.list\",\"params\":{\"limit\":\"000\"}}", CK_REQ_THREADS_LIST,
         "{\"limit\":0,\"order\":\"desc\"}");
  static const char *const bad[] = {"5.",  "5.5", ".0",  "1__0", "_1",  "1_",
                                    "+-1", "--1", "1e3", "0x10", "- 1", "5.0.0"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char body[128];
    snprintf(body, sizeof(body), "{\"type\":\"threads.list\",\"params\":{\"limit\":\"%s\"}}",
             bad[i]);
    reject(body, "threads.list.params.limit", "integer");
  }
  /* Floats convert only inside the int64 range, like pydantic-core's float_as_int. */
  reject("{\"type\":\"threads.list\",\"params\":{\"limit\":1e19}}", "threads.list.params.limit",
         "too large");
  reject("{\"type\":\"threads.list\",\"params\":{\"limit\":\"\"}}", "threads.list.params.limit",
         "integer");
  reject("{\"type\":\"threads.list\",\"params\":{\"limit\":[]}}", "threads.list.params.limit",
         "an array");
  /* Strings never coerce from numbers. */
  reject("{\"type\":\"threads.update\",\"params\":{\"thread_id\":\"t\",\"title\":{\"t\":1}}}",
         "threads.update.params.title", "string");
  /* Unknown keys are dropped at every level. */
  accept("{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":"
         "\"input_text\",\"text\":\"x\",\"extra\":1}],\"attachments\":[],\"inference_options\":{"
         "\"model\":\"m\",\"unknown\":1}},\"zz\":0}}",
         CK_REQ_THREADS_CREATE,
         "{\"input\":{\"content\":[{\"type\":\"input_text\",\"text\":\"x\"}],\"attachments\":[],"
         "\"inference_options\":{\"model\":\"m\"}}}");
  /* Tag defaults: interactive false is filled in. */
  accept(
      "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_tag\","
      "\"id\":\"e\",\"text\":\"B\",\"data\":{\"k\":null},\"group\":null}],\"attachments\":[\"a\"],"
      "\"quoted_text\":\"q\",\"inference_options\":{\"tool_choice\":{\"id\":\"s\"}}}}}",
      CK_REQ_THREADS_CREATE,
      "{\"input\":{\"content\":[{\"type\":\"input_tag\",\"id\":\"e\",\"text\":\"B\","
      "\"data\":{\"k\":null},\"interactive\":false}],\"attachments\":[\"a\"],\"quoted_text\":"
      "\"q\",\"inference_options\":{\"tool_choice\":{\"id\":\"s\"}}}}");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_streaming_types), cmocka_unit_test(test_json_types),
      cmocka_unit_test(test_type_names),      cmocka_unit_test(test_rejection_paths),
      cmocka_unit_test(test_envelope),        cmocka_unit_test(test_depth),
      cmocka_unit_test(test_lax_coercions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
