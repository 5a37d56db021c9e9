/* Tests of ck_protocol_normalize and the wire helpers and builders (protocol.md §2, §3, §5):
 * every item and event type comes out in the reference's key order with nulls omitted and
 * defaults present, and the builders produce the exact bytes of the protocol examples. */
#include <chatkit/error.h>
#include <chatkit/protocol.h>

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Normalises the JSON text `in` as `model` and compares the canonical text with `want`; with
 * `fixed_point`, also checks that the output normalises to itself. */
static void norm_x(ck_model model, const char *in, const char *want, bool fixed_point) {
  ck_arena *a = ck_arena_new(0);
  ck_json *v = NULL, *out = NULL;
  ck_validation_error err = {{0}, {0}};
  assert_int_equal(ck_json_parse(a, in, strlen(in), 0, &v, NULL), CK_OK);
  int rc = ck_protocol_normalize(a, model, v, &out, &err);
  if (rc != CK_OK)
    fail_msg("rejected %s: %s: %s", in, err.path, err.message);
  const char *got = ck_json_dumps(a, out, NULL);
  if (strcmp(got, want) != 0)
    fail_msg("%s:\n got  %s\n want %s", in, got, want);
  if (fixed_point) {
    ck_json *again = NULL;
    assert_int_equal(ck_protocol_normalize(a, model, out, &again, &err), CK_OK);
    assert_string_equal(ck_json_dumps(a, again, NULL), want);
  }
  ck_arena_free(a);
}

static void norm(ck_model model, const char *in, const char *want) {
  norm_x(model, in, want, true);
}

/* The canonical form of `text` is `text` itself. */
static void same(ck_model model, const char *text) {
  norm(model, text, text);
}

static void bad(ck_model model, const char *in, const char *want_path, const char *want_msg) {
  ck_arena *a = ck_arena_new(0);
  ck_json *v = NULL, *out = NULL;
  ck_validation_error err = {{0}, {0}};
  assert_int_equal(ck_json_parse(a, in, strlen(in), 0, &v, NULL), CK_OK);
  if (ck_protocol_normalize(a, model, v, &out, &err) != CK_EINVAL)
    fail_msg("accepted %s", in);
  if (strcmp(err.path, want_path) != 0)
    fail_msg("%s: path %s, want %s (%s)", in, err.path, want_path, err.message);
  if (want_msg != NULL && strstr(err.message, want_msg) == NULL)
    fail_msg("%s: message \"%s\" lacks \"%s\"", in, err.message, want_msg);
  ck_arena_free(a);
}

#define B "\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02T03:04:05.678901\","
#define TM CK_MODEL_THREAD_ITEM

/* The item examples of protocol.md §3.2-§3.7 are canonical as written. */
static void test_protocol_examples(void **state) {
  same(TM,
       "{\"id\":\"msg_1\",\"thread_id\":\"thr_1\",\"created_at\":\"2025-01-02T03:04:05.678901\","
       "\"type\":\"user_message\",\"content\":[{\"type\":\"input_text\",\"text\":\"Hi \"},"
       "{\"type\":\"input_tag\",\"id\":\"e1\",\"text\":\"Bob\",\"data\":{\"k\":\"v\"},"
       "\"group\":\"People\",\"interactive\":false}],\"attachments\":[{\"id\":\"atc_1\","
       "\"name\":\"a.png\",\"mime_type\":\"image/png\",\"thread_id\":\"thr_1\",\"type\":"
       "\"image\",\"preview_url\":\"https://x.com/p.png\"}],\"quoted_text\":\"q\","
       "\"inference_options\":{\"tool_choice\":{\"id\":\"search\"},\"model\":\"gpt\"}}");
  same(TM, "{\"id\":\"tc_1\",\"thread_id\":\"thr_1\",\"created_at\":\"2025-01-02T03:04:05.678901\","
           "\"type\":\"client_tool_call\",\"status\":\"pending\",\"call_id\":\"call_1\",\"name\":"
           "\"n\",\"arguments\":{}}");
  same(TM,
       "{\"id\":\"img_0\",\"thread_id\":\"thr_1\",\"created_at\":\"2025-01-02T03:04:05.678901\","
       "\"type\":\"generated_image\"}");
  same(TM, "{\"id\":\"eot\",\"thread_id\":\"thr_1\",\"created_at\":\"2025-01-02T03:04:05.678901\","
           "\"type\":\"end_of_turn\"}");
  same(TM, "{\"id\":\"wf_2\",\"thread_id\":\"thr_1\",\"created_at\":\"2025-01-02T03:04:05.678901\","
           "\"type\":\"workflow\",\"workflow\":{\"type\":\"reasoning\",\"tasks\":[],\"summary\":{"
           "\"duration\":3},\"expanded\":false}}");
  same(TM,
       "{\"id\":\"tsk_1\",\"thread_id\":\"thr_1\",\"created_at\":\"2025-01-02T03:04:05.678901\","
       "\"type\":\"task\",\"task\":{\"status_indicator\":\"none\",\"type\":\"custom\","
       "\"title\":\"T\"}}");
  same(TM, "{\"id\":\"si\",\"thread_id\":\"thr_1\",\"created_at\":\"2025-01-02T03:04:05.678901\","
           "\"type\":\"structured_input\",\"status\":\"pending\",\"inputs\":[{\"id\":\"a\","
           "\"question\":\"Q\",\"type\":\"multiple_choice\",\"options\":[{\"value\":\"x\"}],"
           "\"multiple\":false},{\"id\":\"b\",\"question\":\"Q2\",\"answer\":{\"values\":[],"
           "\"skipped\":true},\"type\":\"freeform\"}]}");
  same(CK_MODEL_ASSISTANT_CONTENT,
       "{\"annotations\":[{\"type\":\"annotation\",\"source\":{\"title\":\"F\",\"type\":\"file\","
       "\"filename\":\"f.pdf\"},\"index\":2},{\"type\":\"annotation\",\"source\":{\"title\":\"E\","
       "\"type\":\"entity\",\"id\":\"ent\",\"icon\":\"user\",\"interactive\":false,\"data\":{"
       "\"a\":1}}}],\"text\":\"See\",\"type\":\"output_text\"}");
  same(CK_MODEL_ATTACHMENT,
       "{\"id\":\"atc_b6376967\",\"name\":\"f.png\",\"mime_type\":\"image/png\","
       "\"upload_descriptor\":{\"url\":\"https://example.com/atc_b6376967/upload\",\"method\":"
       "\"PUT\",\"headers\":{\"X-H\":\"v\"}},\"type\":\"image\",\"preview_url\":"
       "\"https://example.com/atc_b6376967/preview\"}");
}

/* Every item type from scrambled key order, nulls and missing defaults. */
static void test_item_types(void **state) {
  norm(TM,
       "{\"inference_options\":{\"model\":null},\"quoted_text\":null,\"content\":[{\"text\":\"x\","
       "\"type\":\"input_text\"}],\"type\":\"user_message\",\"created_at\":\"2025-01-02 "
       "03:04:05.5\",\"thread_id\":\"t\",\"id\":\"i\"}",
       "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02T03:04:05.500000\",\"type\":"
       "\"user_message\",\"content\":[{\"type\":\"input_text\",\"text\":\"x\"}],\"attachments\":[],"
       "\"inference_options\":{}}");
  norm(TM, "{" B "\"type\":\"assistant_message\"}",
       "{" B "\"type\":\"assistant_message\",\"content\":[]}");
  norm(TM,
       "{" B
       "\"type\":\"assistant_message\",\"content\":[{\"type\":\"output_text\",\"text\":\"a\"}]}",
       "{" B "\"type\":\"assistant_message\",\"content\":[{\"annotations\":[],\"text\":\"a\","
       "\"type\":\"output_text\"}]}");
  /* Free-form nulls inside output and arguments are kept; a null output is omitted. */
  norm(TM,
       "{" B "\"type\":\"client_tool_call\",\"name\":\"n\",\"call_id\":\"c\",\"arguments\":{"
       "\"a\":null},\"output\":{\"r\":null},\"status\":\"completed\"}",
       "{" B "\"type\":\"client_tool_call\",\"status\":\"completed\",\"call_id\":\"c\",\"name\":"
       "\"n\",\"arguments\":{\"a\":null},\"output\":{\"r\":null}}");
  norm(TM,
       "{" B "\"type\":\"client_tool_call\",\"name\":\"n\",\"call_id\":\"c\",\"arguments\":{},"
       "\"output\":null}",
       "{" B
       "\"type\":\"client_tool_call\",\"status\":\"pending\",\"call_id\":\"c\",\"name\":\"n\","
       "\"arguments\":{}}");
  norm(TM, "{" B "\"type\":\"generated_image\",\"image\":{\"url\":\"u\",\"id\":\"g\"}}",
       "{" B "\"type\":\"generated_image\",\"image\":{\"id\":\"g\",\"url\":\"u\"}}");
  norm(TM, "{" B "\"type\":\"hidden_context_item\",\"content\":{\"k\":null}}",
       "{" B "\"type\":\"hidden_context_item\",\"content\":{\"k\":null}}");
  /* HiddenContextItem.content must be present but may be null (then omitted). Like the
   * reference's, that output does not validate again: content is then missing. */
  norm_x(TM, "{" B "\"type\":\"hidden_context_item\",\"content\":null}",
         "{" B "\"type\":\"hidden_context_item\"}", false);
  bad(TM, "{" B "\"type\":\"hidden_context_item\"}", "item.content", "field required");
  norm(TM, "{" B "\"type\":\"sdk_hidden_context\",\"content\":\"c\"}",
       "{" B "\"type\":\"sdk_hidden_context\",\"content\":\"c\"}");
  norm(TM,
       "{" B "\"type\":\"workflow\",\"workflow\":{\"type\":\"custom\",\"summary\":{\"title\":"
       "\"S\",\"icon\":null},\"tasks\":[{\"type\":\"web_search\"},{\"type\":\"file\",\"sources\":"
       "[{\"type\":\"file\",\"filename\":\"f\",\"title\":\"t\"}]},{\"type\":\"image\","
       "\"status_indicator\":\"loading\"},{\"type\":\"thought\",\"content\":\"c\"}]}}",
       "{" B "\"type\":\"workflow\",\"workflow\":{\"type\":\"custom\",\"tasks\":[{"
       "\"status_indicator\":\"none\",\"type\":\"web_search\",\"queries\":[],\"sources\":[]},{"
       "\"status_indicator\":\"none\",\"type\":\"file\",\"sources\":[{\"title\":\"t\",\"type\":"
       "\"file\",\"filename\":\"f\"}]},{\"status_indicator\":\"loading\",\"type\":\"image\"},{"
       "\"status_indicator\":\"none\",\"type\":\"thought\",\"content\":\"c\"}],\"summary\":{"
       "\"title\":\"S\"},\"expanded\":false}}");
  norm(TM, "{" B "\"type\":\"end_of_turn\",\"extra\":1}", "{" B "\"type\":\"end_of_turn\"}");
  /* Widget items: nulls stripped at every depth, null array elements removed. */
  norm(TM,
       "{" B "\"type\":\"widget\",\"copy_text\":null,\"widget\":{\"type\":\"Card\",\"key\":"
       "null,\"children\":[null,{\"type\":\"Text\",\"value\":\"v\",\"color\":null}],\"action\":"
       "{\"payload\":{\"a\":null,\"b\":[null,1,{\"c\":null}]}}}}",
       "{" B "\"type\":\"widget\",\"widget\":{\"type\":\"Card\",\"children\":[{\"type\":\"Text\","
       "\"value\":\"v\"}],\"action\":{\"payload\":{\"b\":[1,{}]}}}}");
}

static void test_datetimes_and_urls(void **state) {
  norm(TM,
       "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02T03:04:05.000000\",\"type\":"
       "\"end_of_turn\"}",
       "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02T03:04:05\",\"type\":\"end_of_"
       "turn\"}");
  norm(TM,
       "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02T03:04:05.12+00:00\",\"type\":"
       "\"end_of_turn\"}",
       "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02T03:04:05.120000Z\",\"type\":"
       "\"end_of_turn\"}");
  norm(TM,
       "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02\",\"type\":\"end_of_turn\"}",
       "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02T00:00:00\",\"type\":\"end_of_"
       "turn\"}");
  norm(TM, "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":0,\"type\":\"end_of_turn\"}",
       "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"1970-01-01T00:00:00Z\",\"type\":\"end_"
       "of_turn\"}");
  bad(TM,
      "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"yesterday\",\"type\":\"end_of_turn\"}",
      "item.created_at", "datetime");
  bad(TM, "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":true,\"type\":\"end_of_turn\"}",
      "item.created_at", "datetime");
  norm(CK_MODEL_ATTACHMENT,
       "{\"type\":\"file\",\"id\":\"a\",\"name\":\"n\",\"mime_type\":\"m\",\"metadata\":{\"k\":"
       "null},"
       "\"upload_descriptor\":{\"method\":\"POST\",\"url\":\"HTTPS://Up.Example.COM:443\"}}",
       "{\"id\":\"a\",\"name\":\"n\",\"mime_type\":\"m\",\"upload_descriptor\":{\"url\":"
       "\"https://up.example.com/\",\"method\":\"POST\",\"headers\":{}},\"metadata\":{\"k\":null},"
       "\"type\":\"file\"}");
  bad(CK_MODEL_ATTACHMENT,
      "{\"type\":\"image\",\"id\":\"a\",\"name\":\"n\",\"mime_type\":\"m\",\"preview_url\":\"/"
      "p.png\"}",
      "attachment.preview_url", "absolute URL");
  bad(CK_MODEL_ATTACHMENT,
      "{\"type\":\"file\",\"id\":\"a\",\"name\":\"n\",\"mime_type\":\"m\",\"upload_descriptor\":{"
      "\"url\":\"https://x/\",\"method\":\"GET\"}}",
      "attachment.upload_descriptor.method", NULL);
  /* Plain-string URLs (sources, generated images) pass through verbatim. */
  same(CK_MODEL_ANNOTATION, "{\"type\":\"annotation\",\"source\":{\"title\":\"E\",\"type\":\"url\","
                            "\"url\":\"HTTPS://E.com\"},\"index\":3}");
}

static void test_thread_metadata(void **state) {
  norm(CK_MODEL_THREAD_METADATA,
       "{\"metadata\":{\"k\":null},\"allowed_image_domains\":null,\"status\":{\"reason\":null,"
       "\"type\":\"locked\"},\"created_at\":\"2025-01-02T03:04:05\",\"id\":\"t\",\"title\":null}",
       "{\"id\":\"t\",\"created_at\":\"2025-01-02T03:04:05\",\"status\":{\"type\":\"locked\"},"
       "\"metadata\":{\"k\":null}}");
  norm(CK_MODEL_THREAD_METADATA,
       "{\"id\":\"t\",\"created_at\":\"2025-01-02T03:04:05\",\"title\":\"T\","
       "\"allowed_image_domains\":[\"a.com\"]}",
       "{\"title\":\"T\",\"id\":\"t\",\"created_at\":\"2025-01-02T03:04:05\",\"status\":{\"type\":"
       "\"active\"},\"allowed_image_domains\":[\"a.com\"],\"metadata\":{}}");
  bad(CK_MODEL_THREAD_METADATA,
      "{\"id\":\"t\",\"created_at\":\"2025-01-02\",\"status\":{\"type\":\"open\"}}",
      "thread.status", "unknown type \"open\"");
  bad(CK_MODEL_THREAD_METADATA, "{\"id\":\"t\",\"created_at\":\"2025-01-02\",\"metadata\":null}",
      "thread.metadata", "null");
}

#define EV CK_MODEL_STREAM_EVENT
#define ITEM                                                                                       \
  "{\"id\":\"i\",\"thread_id\":\"t\",\"created_at\":\"2025-01-02T03:04:05\",\"type\":\"end_of_"    \
  "turn\"}"
#define THREAD_IN "{\"id\":\"t\",\"created_at\":\"2025-01-02T03:04:05\",\"metadata\":{\"x\":1}}"
#define THREAD_OUT                                                                                 \
  "{\"id\":\"t\",\"created_at\":\"2025-01-02T03:04:05\",\"status\":{\"type\":\"active\"},"         \
  "\"metadata\":{\"x\":1},\"items\":{\"data\":[],\"has_more\":false}}"

static void test_event_types(void **state) {
  norm(EV, "{\"thread\":" THREAD_IN ",\"type\":\"thread.created\"}",
       "{\"type\":\"thread.created\",\"thread\":" THREAD_OUT "}");
  norm(EV, "{\"thread\":" THREAD_IN ",\"type\":\"thread.updated\"}",
       "{\"type\":\"thread.updated\",\"thread\":" THREAD_OUT "}");
  norm(EV, "{\"item\":" ITEM ",\"type\":\"thread.item.added\"}",
       "{\"type\":\"thread.item.added\",\"item\":" ITEM "}");
  norm(EV, "{\"item\":" ITEM ",\"type\":\"thread.item.done\"}",
       "{\"type\":\"thread.item.done\",\"item\":" ITEM "}");
  norm(EV, "{\"item\":" ITEM ",\"type\":\"thread.item.replaced\"}",
       "{\"type\":\"thread.item.replaced\",\"item\":" ITEM "}");
  same(EV, "{\"type\":\"thread.item.removed\",\"item_id\":\"x\"}");
  norm(EV, "{\"type\":\"stream_options\",\"stream_options\":{\"allow_cancel\":\"yes\"}}",
       "{\"type\":\"stream_options\",\"stream_options\":{\"allow_cancel\":true}}");
  same(EV, "{\"type\":\"progress_update\",\"icon\":\"search\",\"text\":\"Working\"}");
  norm(EV, "{\"type\":\"progress_update\",\"icon\":null,\"text\":\"W\"}",
       "{\"type\":\"progress_update\",\"text\":\"W\"}");
  norm(EV, "{\"type\":\"client_effect\",\"name\":\"fx\"}",
       "{\"type\":\"client_effect\",\"name\":\"fx\",\"data\":{}}");
  same(EV, "{\"type\":\"client_effect\",\"name\":\"fx\",\"data\":{\"a\":null}}");
  norm(EV, "{\"type\":\"error\"}",
       "{\"type\":\"error\",\"code\":\"custom\",\"allow_retry\":false}");
  same(EV, "{\"type\":\"error\",\"code\":\"custom\",\"message\":\"Nope\",\"allow_retry\":true}");
  same(EV, "{\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":true}");
  same(EV, "{\"type\":\"notice\",\"level\":\"warning\",\"message\":\"m\",\"title\":\"T\"}");
  bad(EV, "{\"type\":\"notice\",\"level\":\"fatal\",\"message\":\"m\"}", "event.level", NULL);
  /* thread.item.updated with each update variant (protocol.md §5.1 examples). */
  same(EV, "{\"type\":\"thread.item.updated\",\"item_id\":\"msg_a1\",\"update\":{\"type\":"
           "\"assistant_message.content_part.added\",\"content_index\":0,\"content\":{"
           "\"annotations\":[],\"text\":\"\",\"type\":\"output_text\"}}}");
  same(EV, "{\"type\":\"thread.item.updated\",\"item_id\":\"msg_a1\",\"update\":{\"type\":"
           "\"assistant_message.content_part.text_delta\",\"content_index\":0,\"delta\":"
           "\"H\xC3\xA9llo\"}}");
  same(EV, "{\"type\":\"thread.item.updated\",\"item_id\":\"msg_a1\",\"update\":{\"type\":"
           "\"assistant_message.content_part.annotation_added\",\"content_index\":0,"
           "\"annotation_index\":0,\"annotation\":{\"type\":\"annotation\",\"source\":{\"title\":"
           "\"E\",\"type\":\"url\",\"url\":\"https://e.com\"},\"index\":3}}}");
  norm(
      EV,
      "{\"type\":\"thread.item.updated\",\"item_id\":\"m\",\"update\":{\"type\":"
      "\"assistant_message.content_part.done\",\"content_index\":\"1\",\"content\":{\"text\":"
      "\"x\",\"type\":\"output_text\"}}}",
      "{\"type\":\"thread.item.updated\",\"item_id\":\"m\",\"update\":{\"type\":"
      "\"assistant_message.content_part.done\",\"content_index\":1,\"content\":{\"annotations\":[],"
      "\"text\":\"x\",\"type\":\"output_text\"}}}");
  same(EV, "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
           "\"widget.streaming_text.value_delta\",\"component_id\":\"c\",\"delta\":\"d\","
           "\"done\":false}}");
  norm(EV,
       "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
       "\"widget.component.updated\",\"component_id\":\"c\",\"component\":{\"type\":\"Text\","
       "\"value\":null}}}",
       "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
       "\"widget.component.updated\",\"component_id\":\"c\",\"component\":{\"type\":\"Text\"}}}");
  norm(EV,
       "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
       "\"widget.root.updated\",\"widget\":{\"type\":\"ListView\",\"children\":[null]}}}",
       "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
       "\"widget.root.updated\",\"widget\":{\"type\":\"ListView\",\"children\":[]}}}");
  same(EV, "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
           "\"workflow.task.added\",\"task_index\":0,\"task\":{\"status_indicator\":\"none\","
           "\"type\":\"thought\",\"content\":\"x\"}}}");
  same(EV, "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
           "\"workflow.task.updated\",\"task_index\":1,\"task\":{\"status_indicator\":\"complete\","
           "\"type\":\"custom\",\"icon\":\"lucide:star\"}}}");
  norm(EV,
       "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
       "\"generated_image.updated\",\"image\":{\"id\":\"i\",\"url\":\"u\"},\"progress\":1}}",
       "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":"
       "\"generated_image.updated\",\"image\":{\"id\":\"i\",\"url\":\"u\"},\"progress\":1.0}}");
}

static void test_unions_and_icons(void **state) {
  bad(EV, "{\"type\":\"thread.nope\"}", "event", "unknown type \"thread.nope\"");
  bad(EV, "{\"item_id\":\"x\"}", "event", "missing discriminator \"type\"");
  bad(EV, "{\"type\":5}", "event", "must be a string");
  bad(EV, "[]", "event", "expected an object");
  bad(TM, "{" B "\"type\":\"task\",\"task\":{\"type\":\"bogus\"}}", "item.task",
      "unknown type \"bogus\"");
  bad(EV, "{\"type\":\"thread.item.updated\",\"item_id\":\"w\",\"update\":{\"type\":\"x\"}}",
      "event.update", "unknown type");
  bad(EV,
      "{\"type\":\"thread.item.done\",\"item\":{" B "\"type\":\"user_message\",\"content\":[],"
      "\"inference_options\":{},\"attachments\":[{\"type\":\"file\",\"id\":\"a\"}]}}",
      "event.item.attachments[0].name", "field required");
  /* Icons: the 64 literals and vendor:/lucide: prefixes; anything else is rejected. */
  same(EV, "{\"type\":\"progress_update\",\"icon\":\"book-open\",\"text\":\"x\"}");
  same(EV, "{\"type\":\"progress_update\",\"icon\":\"vendor:anything\",\"text\":\"x\"}");
  bad(EV, "{\"type\":\"progress_update\",\"icon\":\"invalid-icon\",\"text\":\"x\"}", "event.icon",
      "icon");
  bad(EV, "{\"type\":\"progress_update\",\"icon\":\"Search\",\"text\":\"x\"}", "event.icon",
      "icon");
  bad(TM,
      "{" B "\"type\":\"workflow\",\"workflow\":{\"type\":\"custom\",\"summary\":{\"title\":"
      "\"S\",\"icon\":\"nope\"}}}",
      "item.workflow.summary.duration", "field required");
  /* Widget roots: only Card, ListView and Basic. */
  same(CK_MODEL_WIDGET_ROOT, "{\"type\":\"Basic\"}");
  bad(CK_MODEL_WIDGET_ROOT, "{\"type\":\"Text\",\"value\":\"x\"}", "widget", "root");
  bad(CK_MODEL_WIDGET_ROOT, "{\"children\":[]}", "widget", "type");
  bad(CK_MODEL_WIDGET_ROOT, "[]", "widget", "widget object");
}

/* ck_item_for_wire, ck_thread_for_wire and the builders, against protocol.md's bytes. */
static void test_wire_and_builders(void **state) {
  ck_arena *a = ck_arena_new(0);
  const char *item_text =
      "{" B
      "\"type\":\"user_message\",\"content\":[],\"attachments\":[{\"id\":\"a\",\"name\":\"n\","
      "\"mime_type\":\"m\",\"metadata\":{\"secret\":1},\"type\":\"file\"}],\"inference_options\":{}"
      "}";
  ck_json *item = NULL;
  assert_int_equal(ck_json_parse(a, item_text, strlen(item_text), 0, &item, NULL), CK_OK);
  ck_json *wire = ck_item_for_wire(a, item);
  assert_ptr_not_equal(wire, item);
  assert_string_equal(ck_json_dumps(a, wire, NULL),
                      "{" B "\"type\":\"user_message\",\"content\":[],\"attachments\":[{\"id\":"
                      "\"a\",\"name\":\"n\",\"mime_type\":\"m\",\"type\":\"file\"}],"
                      "\"inference_options\":{}}");
  /* The stored item keeps its private metadata. */
  assert_string_equal(ck_json_dumps(a, item, NULL), item_text);
  /* Nothing to strip: the item itself comes back. */
  assert_ptr_equal(ck_item_for_wire(a, wire), wire);

  ck_json *t = ck_thread_new(a, "thr_50995b94", "2026-11-26T19:31:29.731320");
  assert_string_equal(ck_json_dumps(a, t, NULL),
                      "{\"id\":\"thr_50995b94\",\"created_at\":\"2026-11-26T19:31:29.731320\","
                      "\"status\":{\"type\":\"active\"},\"metadata\":{}}");
  ck_json_object_set(ck_json_object_get(t, "metadata"), "private", ck_json_int(a, 1));
  ck_json_object_set(t, "title", ck_json_str(a, "T"));
  assert_string_equal(ck_json_dumps(a, ck_thread_for_wire(a, t, NULL), NULL),
                      "{\"title\":\"T\",\"id\":\"thr_50995b94\",\"created_at\":"
                      "\"2026-11-26T19:31:29.731320\",\"status\":{\"type\":\"active\"},"
                      "\"metadata\":{},\"items\":{\"data\":[],\"has_more\":false}}");
  assert_string_equal(ck_json_dumps(a, ck_page_json(a, NULL, true, "x"), NULL),
                      "{\"data\":[],\"has_more\":true,\"after\":\"x\"}");

  ck_json *msg =
      ck_item_assistant_message(a, "msg_a1", "thr_50995b94", "2025-01-02T03:04:05.678901", NULL);
  assert_string_equal(ck_json_dumps(a, ck_event_item(a, "thread.item.added", msg), NULL),
                      "{\"type\":\"thread.item.added\",\"item\":{\"id\":\"msg_a1\",\"thread_id\":"
                      "\"thr_50995b94\",\"created_at\":\"2025-01-02T03:04:05.678901\",\"type\":"
                      "\"assistant_message\",\"content\":[]}}");
  ck_json *part = ck_update_content_part(a, false, 0, ck_assistant_content(a, "", 0));
  assert_string_equal(ck_json_dumps(a, ck_event_item_updated(a, "msg_a1", part), NULL),
                      "{\"type\":\"thread.item.updated\",\"item_id\":\"msg_a1\",\"update\":{"
                      "\"type\":\"assistant_message.content_part.added\",\"content_index\":0,"
                      "\"content\":{\"annotations\":[],\"text\":\"\",\"type\":\"output_text\"}}}");
  const char *d = "H\xC3\xA9llo \"x\" \n";
  assert_string_equal(
      ck_json_dumps(a, ck_event_item_updated(a, "msg_a1", ck_update_text_delta(a, 0, d, strlen(d))),
                    NULL),
      "{\"type\":\"thread.item.updated\",\"item_id\":\"msg_a1\",\"update\":{\"type\":"
      "\"assistant_message.content_part.text_delta\",\"content_index\":0,\"delta\":"
      "\"H\xC3\xA9llo \\\"x\\\" \\n\"}}");
  assert_string_equal(
      ck_json_dumps(a, ck_update_content_part(a, true, 2, ck_assistant_content(a, "ab", 1)), NULL),
      "{\"type\":\"assistant_message.content_part.done\",\"content_index\":2,"
      "\"content\":{\"annotations\":[],\"text\":\"a\",\"type\":\"output_text\"}}");
  assert_string_equal(ck_json_dumps(a, ck_event_progress(a, "search", "Working"), NULL),
                      "{\"type\":\"progress_update\",\"icon\":\"search\",\"text\":\"Working\"}");
  assert_string_equal(ck_json_dumps(a, ck_event_progress(a, NULL, "W"), NULL),
                      "{\"type\":\"progress_update\",\"text\":\"W\"}");
  assert_string_equal(ck_json_dumps(a, ck_event_client_effect(a, "fx", NULL), NULL),
                      "{\"type\":\"client_effect\",\"name\":\"fx\",\"data\":{}}");
  assert_string_equal(ck_json_dumps(a, ck_event_error(a, "custom", "Nope", true), NULL),
                      "{\"type\":\"error\",\"code\":\"custom\",\"message\":\"Nope\","
                      "\"allow_retry\":true}");
  assert_string_equal(ck_json_dumps(a, ck_event_error(a, "stream.error", NULL, true), NULL),
                      "{\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":true}");
  assert_string_equal(
      ck_json_dumps(a, ck_event_notice(a, "warning", "m", "T"), NULL),
      "{\"type\":\"notice\",\"level\":\"warning\",\"message\":\"m\",\"title\":\"T\"}");
  assert_true(ck_item_type_is_hidden("hidden_context_item"));
  assert_true(ck_item_type_is_hidden("sdk_hidden_context"));
  assert_false(ck_item_type_is_hidden("end_of_turn"));
  assert_false(ck_item_type_is_hidden(NULL));
  ck_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_protocol_examples),  cmocka_unit_test(test_item_types),
      cmocka_unit_test(test_datetimes_and_urls), cmocka_unit_test(test_thread_metadata),
      cmocka_unit_test(test_event_types),        cmocka_unit_test(test_unions_and_icons),
      cmocka_unit_test(test_wire_and_builders),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
