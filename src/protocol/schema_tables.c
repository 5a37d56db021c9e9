/* The reference models (openai-chatkit 1.6.5, chatkit/types.py), field by field, in
 * declaration order. See schema.h for what the columns mean and
 * ../shared/reference/protocol.md §3, §5 for the models themselves. */
#include "protocol/schema.h"

#define COUNT(x) (sizeof(x) / sizeof((x)[0]))

#define STR                                                                                        \
  { CK__STR, NULL }
#define INT                                                                                        \
  { CK__INT, NULL }
#define FLOAT                                                                                      \
  { CK__FLOAT, NULL }
#define BOOL                                                                                       \
  { CK__BOOL, NULL }
#define DT                                                                                         \
  { CK__DATETIME, NULL }
#define URL                                                                                        \
  { CK__URL, NULL }
#define ICON                                                                                       \
  { CK__ICON, NULL }
#define ANY                                                                                        \
  { CK__ANY, NULL }
#define DICT                                                                                       \
  { CK__DICT, NULL }
#define WIDGET_ROOT                                                                                \
  { CK__WIDGET, NULL }
#define WIDGET_COMPONENT                                                                           \
  { CK__WIDGET, "component" }
#define LIT(l)                                                                                     \
  { CK__LITERAL, l }
#define TAG(s)                                                                                     \
  { CK__TAG, s }
#define MODEL(m)                                                                                   \
  { CK__MODEL, &m }
#define LIST(t)                                                                                    \
  { CK__LIST, &t }
#define MAP(t)                                                                                     \
  { CK__MAP, &t }
#define UNION(u)                                                                                   \
  { CK__UNION, &u }

#define REQ(n, t)                                                                                  \
  { n, t, CK__REQ, NULL }
#define OPT(n, t)                                                                                  \
  { n, t, CK__OPT, NULL }
#define DEF(n, t, d)                                                                               \
  { n, t, CK__DEF, d }
#define REQ_ANY(n)                                                                                 \
  { n, ANY, CK__REQ_ANY, NULL }

#define DEFINE_MODEL(var, name, ...)                                                               \
  static const ck__field var##_fields[] = {__VA_ARGS__};                                           \
  static const ck__model var = {name, var##_fields, COUNT(var##_fields)}

#define DEFINE_UNION(storage, var, disc, ...)                                                      \
  static const ck__variant var##_variants[] = {__VA_ARGS__};                                       \
  storage const ck__union var = {disc, var##_variants, COUNT(var##_variants)}

/* ---- Literal sets ---- */
static const char *const lit_tool_status[] = {"pending", "completed", NULL};
static const char *const lit_si_status[] = {"pending", "answered", "skipped", NULL};
static const char *const lit_submission_status[] = {"answered", "skipped", NULL};
static const char *const lit_status_indicator[] = {"none", "loading", "complete", NULL};
static const char *const lit_workflow_type[] = {"custom", "reasoning", NULL};
static const char *const lit_method[] = {"POST", "PUT", NULL};
static const char *const lit_notice_level[] = {"info", "warning", "danger", NULL};
static const char *const lit_order[] = {"asc", "desc", NULL};
static const char *const lit_feedback[] = {"positive", "negative", NULL};
static const char *const lit_preview[] = {"lazy", NULL};

/* ---- Shared element types ---- */
static const ck__type t_str = STR;

/* ---- User message content and input ---- */
DEFINE_MODEL(m_tool_choice, "ToolChoice", REQ("id", STR));
DEFINE_MODEL(m_inference_options, "InferenceOptions", OPT("tool_choice", MODEL(m_tool_choice)),
             OPT("model", STR));
DEFINE_MODEL(m_input_text, "UserMessageTextContent", REQ("type", TAG("input_text")),
             REQ("text", STR));
DEFINE_MODEL(m_input_tag, "UserMessageTagContent", REQ("type", TAG("input_tag")), REQ("id", STR),
             REQ("text", STR), REQ("data", DICT), OPT("group", STR),
             DEF("interactive", BOOL, "false"));
DEFINE_UNION(static, u_user_content, "type", {"input_text", &m_input_text},
             {"input_tag", &m_input_tag});
static const ck__type t_user_content = UNION(u_user_content);

/* ---- Attachments ---- */
DEFINE_MODEL(m_upload_descriptor, "AttachmentUploadDescriptor", REQ("url", URL),
             REQ("method", LIT(lit_method)), DEF("headers", MAP(t_str), "{}"));
DEFINE_MODEL(m_file_attachment, "FileAttachment", REQ("id", STR), REQ("name", STR),
             REQ("mime_type", STR), OPT("upload_descriptor", MODEL(m_upload_descriptor)),
             OPT("thread_id", STR), OPT("metadata", DICT), REQ("type", TAG("file")));
DEFINE_MODEL(m_image_attachment, "ImageAttachment", REQ("id", STR), REQ("name", STR),
             REQ("mime_type", STR), OPT("upload_descriptor", MODEL(m_upload_descriptor)),
             OPT("thread_id", STR), OPT("metadata", DICT), REQ("type", TAG("image")),
             REQ("preview_url", URL));
DEFINE_UNION(, ck__attachment_union, "type", {"file", &m_file_attachment},
             {"image", &m_image_attachment});
static const ck__type t_attachment = UNION(ck__attachment_union);

/* ---- Sources and annotations ---- */
#define SOURCE_BASE                                                                                \
  REQ("title", STR), OPT("description", STR), OPT("timestamp", STR), OPT("group", STR)
DEFINE_MODEL(m_url_source, "URLSource", SOURCE_BASE, REQ("type", TAG("url")), REQ("url", STR),
             OPT("attribution", STR));
DEFINE_MODEL(m_file_source, "FileSource", SOURCE_BASE, REQ("type", TAG("file")),
             REQ("filename", STR));
DEFINE_MODEL(m_entity_source, "EntitySource", SOURCE_BASE, REQ("type", TAG("entity")),
             REQ("id", STR), OPT("icon", ICON), OPT("label", STR), OPT("inline_label", STR),
             DEF("interactive", BOOL, "false"), DEF("data", DICT, "{}"),
             OPT("preview", LIT(lit_preview)));
DEFINE_UNION(static, u_source, "type", {"url", &m_url_source}, {"file", &m_file_source},
             {"entity", &m_entity_source});
static const ck__type t_url_source = MODEL(m_url_source);
static const ck__type t_file_source = MODEL(m_file_source);

static const ck__field annotation_fields[] = {REQ("type", TAG("annotation")),
                                              REQ("source", UNION(u_source)), OPT("index", INT)};
const ck__model ck__annotation_model = {"Annotation", annotation_fields, COUNT(annotation_fields)};
static const ck__type t_annotation = MODEL(ck__annotation_model);
static const ck__field assistant_content_fields[] = {DEF("annotations", LIST(t_annotation), "[]"),
                                                     REQ("text", STR),
                                                     REQ("type", TAG("output_text"))};
const ck__model ck__assistant_content_model = {"AssistantMessageContent", assistant_content_fields,
                                               COUNT(assistant_content_fields)};
static const ck__type t_assistant_content = MODEL(ck__assistant_content_model);

/* ---- Workflows and tasks ---- */
#define TASK_BASE DEF("status_indicator", LIT(lit_status_indicator), "\"none\"")
DEFINE_MODEL(m_custom_task, "CustomTask", TASK_BASE, REQ("type", TAG("custom")), OPT("title", STR),
             OPT("icon", ICON), OPT("content", STR));
DEFINE_MODEL(m_search_task, "SearchTask", TASK_BASE, REQ("type", TAG("web_search")),
             OPT("title", STR), OPT("title_query", STR), DEF("queries", LIST(t_str), "[]"),
             DEF("sources", LIST(t_url_source), "[]"));
DEFINE_MODEL(m_thought_task, "ThoughtTask", TASK_BASE, REQ("type", TAG("thought")),
             OPT("title", STR), REQ("content", STR));
DEFINE_MODEL(m_file_task, "FileTask", TASK_BASE, REQ("type", TAG("file")), OPT("title", STR),
             DEF("sources", LIST(t_file_source), "[]"));
DEFINE_MODEL(m_image_task, "ImageTask", TASK_BASE, REQ("type", TAG("image")), OPT("title", STR));
DEFINE_UNION(, ck__task_union, "type", {"custom", &m_custom_task}, {"web_search", &m_search_task},
             {"thought", &m_thought_task}, {"file", &m_file_task}, {"image", &m_image_task});
static const ck__type t_task = UNION(ck__task_union);

DEFINE_MODEL(m_custom_summary, "CustomSummary", REQ("title", STR), OPT("icon", ICON));
DEFINE_MODEL(m_duration_summary, "DurationSummary", REQ("duration", INT));
/* Not discriminated in the reference (a pydantic smart union): the first variant that
 * validates wins. */
DEFINE_UNION(static, u_summary, NULL, {NULL, &m_custom_summary}, {NULL, &m_duration_summary});

static const ck__field workflow_fields[] = {
    REQ("type", LIT(lit_workflow_type)), DEF("tasks", LIST(t_task), "[]"),
    OPT("summary", UNION(u_summary)), DEF("expanded", BOOL, "false")};
const ck__model ck__workflow_model = {"Workflow", workflow_fields, COUNT(workflow_fields)};

/* ---- Structured input ---- */
DEFINE_MODEL(m_answer, "StructuredInputAnswer", DEF("values", LIST(t_str), "[]"),
             DEF("skipped", BOOL, "false"));
DEFINE_MODEL(m_choice_option, "MultipleChoiceOption", REQ("value", STR));
static const ck__type t_choice_option = MODEL(m_choice_option);
DEFINE_MODEL(m_multiple_choice, "MultipleChoiceInput", REQ("id", STR), REQ("question", STR),
             OPT("answer", MODEL(m_answer)), REQ("type", TAG("multiple_choice")),
             REQ("options", LIST(t_choice_option)), DEF("multiple", BOOL, "false"));
DEFINE_MODEL(m_freeform, "FreeformInput", REQ("id", STR), REQ("question", STR),
             OPT("answer", MODEL(m_answer)), REQ("type", TAG("freeform")), OPT("description", STR));
DEFINE_UNION(static, u_structured_input, "type", {"multiple_choice", &m_multiple_choice},
             {"freeform", &m_freeform});
static const ck__type t_structured_input = UNION(u_structured_input);

DEFINE_MODEL(m_generated_image, "GeneratedImage", REQ("id", STR), REQ("url", STR));

/* ---- Thread items ---- */
#define ITEM_BASE(tag)                                                                             \
  REQ("id", STR), REQ("thread_id", STR), REQ("created_at", DT), REQ("type", TAG(tag))
DEFINE_MODEL(m_user_message, "UserMessageItem", ITEM_BASE("user_message"),
             REQ("content", LIST(t_user_content)), DEF("attachments", LIST(t_attachment), "[]"),
             OPT("quoted_text", STR), DEF("inference_options", MODEL(m_inference_options), "{}"));
DEFINE_MODEL(m_assistant_message, "AssistantMessageItem", ITEM_BASE("assistant_message"),
             DEF("content", LIST(t_assistant_content), "[]"));
DEFINE_MODEL(m_client_tool_call, "ClientToolCallItem", ITEM_BASE("client_tool_call"),
             DEF("status", LIT(lit_tool_status), "\"pending\""), REQ("call_id", STR),
             REQ("name", STR), REQ("arguments", DICT), OPT("output", ANY));
DEFINE_MODEL(m_widget_item, "WidgetItem", ITEM_BASE("widget"), REQ("widget", WIDGET_ROOT),
             OPT("copy_text", STR));
DEFINE_MODEL(m_generated_image_item, "GeneratedImageItem", ITEM_BASE("generated_image"),
             OPT("image", MODEL(m_generated_image)));
DEFINE_MODEL(m_structured_input_item, "StructuredInputItem", ITEM_BASE("structured_input"),
             DEF("status", LIT(lit_si_status), "\"pending\""),
             REQ("inputs", LIST(t_structured_input)));
DEFINE_MODEL(m_workflow_item, "WorkflowItem", ITEM_BASE("workflow"),
             REQ("workflow", MODEL(ck__workflow_model)));
DEFINE_MODEL(m_task_item, "TaskItem", ITEM_BASE("task"), REQ("task", UNION(ck__task_union)));
DEFINE_MODEL(m_hidden_context_item, "HiddenContextItem", ITEM_BASE("hidden_context_item"),
             REQ_ANY("content"));
DEFINE_MODEL(m_sdk_hidden_context_item, "SDKHiddenContextItem", ITEM_BASE("sdk_hidden_context"),
             REQ("content", STR));
DEFINE_MODEL(m_end_of_turn_item, "EndOfTurnItem", ITEM_BASE("end_of_turn"));
DEFINE_UNION(, ck__thread_item_union, "type", {"user_message", &m_user_message},
             {"assistant_message", &m_assistant_message}, {"client_tool_call", &m_client_tool_call},
             {"widget", &m_widget_item}, {"generated_image", &m_generated_image_item},
             {"structured_input", &m_structured_input_item}, {"workflow", &m_workflow_item},
             {"task", &m_task_item}, {"hidden_context_item", &m_hidden_context_item},
             {"sdk_hidden_context", &m_sdk_hidden_context_item},
             {"end_of_turn", &m_end_of_turn_item});
static const ck__type t_thread_item = UNION(ck__thread_item_union);

/* ---- Threads ---- */
DEFINE_MODEL(m_status_active, "ActiveStatus", REQ("type", TAG("active")));
DEFINE_MODEL(m_status_locked, "LockedStatus", REQ("type", TAG("locked")), OPT("reason", STR));
DEFINE_MODEL(m_status_closed, "ClosedStatus", REQ("type", TAG("closed")), OPT("reason", STR));
DEFINE_UNION(static, u_thread_status, "type", {"active", &m_status_active},
             {"locked", &m_status_locked}, {"closed", &m_status_closed});

#define THREAD_BASE                                                                                \
  OPT("title", STR), REQ("id", STR), REQ("created_at", DT),                                        \
      DEF("status", UNION(u_thread_status), "{\"type\":\"active\"}"),                              \
      OPT("allowed_image_domains", LIST(t_str)), DEF("metadata", DICT, "{}")
static const ck__field thread_metadata_fields[] = {THREAD_BASE};
const ck__model ck__thread_metadata_model = {"ThreadMetadata", thread_metadata_fields,
                                             COUNT(thread_metadata_fields)};
DEFINE_MODEL(m_item_page, "Page", DEF("data", LIST(t_thread_item), "[]"),
             DEF("has_more", BOOL, "false"), OPT("after", STR));
DEFINE_MODEL(m_thread, "Thread", THREAD_BASE,
             DEF("items", MODEL(m_item_page), "{\"data\":[],\"has_more\":false}"));

/* ---- Item updates ---- */
#define UPDATE(tag) REQ("type", TAG(tag))
DEFINE_MODEL(m_part_added, "AssistantMessageContentPartAdded",
             UPDATE("assistant_message.content_part.added"), REQ("content_index", INT),
             REQ("content", MODEL(ck__assistant_content_model)));
DEFINE_MODEL(m_part_delta, "AssistantMessageContentPartTextDelta",
             UPDATE("assistant_message.content_part.text_delta"), REQ("content_index", INT),
             REQ("delta", STR));
DEFINE_MODEL(m_part_annotation, "AssistantMessageContentPartAnnotationAdded",
             UPDATE("assistant_message.content_part.annotation_added"), REQ("content_index", INT),
             REQ("annotation_index", INT), REQ("annotation", MODEL(ck__annotation_model)));
DEFINE_MODEL(m_part_done, "AssistantMessageContentPartDone",
             UPDATE("assistant_message.content_part.done"), REQ("content_index", INT),
             REQ("content", MODEL(ck__assistant_content_model)));
DEFINE_MODEL(m_value_delta, "WidgetStreamingTextValueDelta",
             UPDATE("widget.streaming_text.value_delta"), REQ("component_id", STR),
             REQ("delta", STR), REQ("done", BOOL));
DEFINE_MODEL(m_component_updated, "WidgetComponentUpdated", UPDATE("widget.component.updated"),
             REQ("component_id", STR), REQ("component", WIDGET_COMPONENT));
DEFINE_MODEL(m_root_updated, "WidgetRootUpdated", UPDATE("widget.root.updated"),
             REQ("widget", WIDGET_ROOT));
DEFINE_MODEL(m_task_added, "WorkflowTaskAdded", UPDATE("workflow.task.added"),
             REQ("task_index", INT), REQ("task", UNION(ck__task_union)));
DEFINE_MODEL(m_task_updated, "WorkflowTaskUpdated", UPDATE("workflow.task.updated"),
             REQ("task_index", INT), REQ("task", UNION(ck__task_union)));
DEFINE_MODEL(m_image_updated, "GeneratedImageUpdated", UPDATE("generated_image.updated"),
             REQ("image", MODEL(m_generated_image)), OPT("progress", FLOAT));
DEFINE_UNION(, ck__item_update_union, "type",
             {"assistant_message.content_part.added", &m_part_added},
             {"assistant_message.content_part.text_delta", &m_part_delta},
             {"assistant_message.content_part.annotation_added", &m_part_annotation},
             {"assistant_message.content_part.done", &m_part_done},
             {"widget.streaming_text.value_delta", &m_value_delta},
             {"widget.component.updated", &m_component_updated},
             {"widget.root.updated", &m_root_updated}, {"workflow.task.added", &m_task_added},
             {"workflow.task.updated", &m_task_updated},
             {"generated_image.updated", &m_image_updated});

/* ---- Stream events ---- */
#define EVENT(tag) REQ("type", TAG(tag))
DEFINE_MODEL(m_stream_options, "StreamOptions", REQ("allow_cancel", BOOL));
DEFINE_MODEL(m_ev_thread_created, "ThreadCreatedEvent", EVENT("thread.created"),
             REQ("thread", MODEL(m_thread)));
DEFINE_MODEL(m_ev_thread_updated, "ThreadUpdatedEvent", EVENT("thread.updated"),
             REQ("thread", MODEL(m_thread)));
DEFINE_MODEL(m_ev_item_added, "ThreadItemAddedEvent", EVENT("thread.item.added"),
             REQ("item", UNION(ck__thread_item_union)));
DEFINE_MODEL(m_ev_item_updated, "ThreadItemUpdatedEvent", EVENT("thread.item.updated"),
             REQ("item_id", STR), REQ("update", UNION(ck__item_update_union)));
DEFINE_MODEL(m_ev_item_done, "ThreadItemDoneEvent", EVENT("thread.item.done"),
             REQ("item", UNION(ck__thread_item_union)));
DEFINE_MODEL(m_ev_item_removed, "ThreadItemRemovedEvent", EVENT("thread.item.removed"),
             REQ("item_id", STR));
DEFINE_MODEL(m_ev_item_replaced, "ThreadItemReplacedEvent", EVENT("thread.item.replaced"),
             REQ("item", UNION(ck__thread_item_union)));
DEFINE_MODEL(m_ev_stream_options, "StreamOptionsEvent", EVENT("stream_options"),
             REQ("stream_options", MODEL(m_stream_options)));
DEFINE_MODEL(m_ev_progress, "ProgressUpdateEvent", EVENT("progress_update"), OPT("icon", ICON),
             REQ("text", STR));
DEFINE_MODEL(m_ev_client_effect, "ClientEffectEvent", EVENT("client_effect"), REQ("name", STR),
             DEF("data", DICT, "{}"));
DEFINE_MODEL(m_ev_error, "ErrorEvent", EVENT("error"), DEF("code", STR, "\"custom\""),
             OPT("message", STR), DEF("allow_retry", BOOL, "false"));
DEFINE_MODEL(m_ev_notice, "NoticeEvent", EVENT("notice"), REQ("level", LIT(lit_notice_level)),
             REQ("message", STR), OPT("title", STR));
DEFINE_UNION(, ck__stream_event_union, "type", {"thread.created", &m_ev_thread_created},
             {"thread.updated", &m_ev_thread_updated}, {"thread.item.added", &m_ev_item_added},
             {"thread.item.updated", &m_ev_item_updated}, {"thread.item.done", &m_ev_item_done},
             {"thread.item.removed", &m_ev_item_removed},
             {"thread.item.replaced", &m_ev_item_replaced},
             {"stream_options", &m_ev_stream_options}, {"progress_update", &m_ev_progress},
             {"client_effect", &m_ev_client_effect}, {"error", &m_ev_error},
             {"notice", &m_ev_notice});

/* ---- Request params ---- */
static const ck__type t_attachment_id = STR;
DEFINE_MODEL(m_user_message_input, "UserMessageInput", REQ("content", LIST(t_user_content)),
             REQ("attachments", LIST(t_attachment_id)), OPT("quoted_text", STR),
             REQ("inference_options", MODEL(m_inference_options)));
static const ck__type t_answer = MODEL(m_answer);
DEFINE_MODEL(m_submission, "StructuredInputSubmission",
             DEF("status", LIT(lit_submission_status), "\"answered\""),
             DEF("answers", MAP(t_answer), "{}"));
DEFINE_MODEL(m_action, "Action", REQ("type", STR), OPT("payload", ANY));

DEFINE_MODEL(p_create, "ThreadsCreateParams", REQ("input", MODEL(m_user_message_input)));
DEFINE_MODEL(p_add_user_message, "ThreadsAddUserMessageParams",
             REQ("input", MODEL(m_user_message_input)), REQ("thread_id", STR));
DEFINE_MODEL(p_add_tool_output, "ThreadsAddClientToolOutputParams", REQ("thread_id", STR),
             REQ_ANY("result"));
DEFINE_MODEL(p_add_structured_input, "ThreadsAddStructuredInputParams", REQ("thread_id", STR),
             REQ("item_id", STR), REQ("input", MODEL(m_submission)));
DEFINE_MODEL(p_retry, "ThreadsRetryAfterItemParams", REQ("thread_id", STR), REQ("item_id", STR));
DEFINE_MODEL(p_custom_action, "ThreadsCustomActionParams", REQ("thread_id", STR),
             OPT("item_id", STR), REQ("action", MODEL(m_action)));
DEFINE_MODEL(p_get_by_id, "ThreadsGetByIdParams", REQ("thread_id", STR));
DEFINE_MODEL(p_threads_list, "ThreadsListParams", OPT("limit", INT),
             DEF("order", LIT(lit_order), "\"desc\""), OPT("after", STR));
DEFINE_MODEL(p_items_list, "ItemsListParams", REQ("thread_id", STR), OPT("limit", INT),
             DEF("order", LIT(lit_order), "\"desc\""), OPT("after", STR));
DEFINE_MODEL(p_feedback, "ItemsFeedbackParams", REQ("thread_id", STR), REQ("item_ids", LIST(t_str)),
             REQ("kind", LIT(lit_feedback)));
DEFINE_MODEL(p_attachments_create, "AttachmentsCreateParams", REQ("name", STR), REQ("size", INT),
             REQ("mime_type", STR));
DEFINE_MODEL(p_attachments_delete, "AttachmentsDeleteParams", REQ("attachment_id", STR));
DEFINE_MODEL(p_threads_update, "ThreadsUpdateParams", REQ("thread_id", STR), REQ("title", STR));
DEFINE_MODEL(p_threads_delete, "ThreadsDeleteParams", REQ("thread_id", STR));
DEFINE_MODEL(p_transcribe, "InputTranscribeParams", REQ("audio_base64", STR),
             REQ("mime_type", STR));

const ck__model *const ck__request_params[CK_REQ__COUNT] = {
    [CK_REQ_THREADS_CREATE] = &p_create,
    [CK_REQ_THREADS_ADD_USER_MESSAGE] = &p_add_user_message,
    [CK_REQ_THREADS_ADD_CLIENT_TOOL_OUTPUT] = &p_add_tool_output,
    [CK_REQ_THREADS_ADD_STRUCTURED_INPUT] = &p_add_structured_input,
    [CK_REQ_THREADS_RETRY_AFTER_ITEM] = &p_retry,
    [CK_REQ_THREADS_CUSTOM_ACTION] = &p_custom_action,
    [CK_REQ_THREADS_GET_BY_ID] = &p_get_by_id,
    [CK_REQ_THREADS_LIST] = &p_threads_list,
    [CK_REQ_ITEMS_LIST] = &p_items_list,
    [CK_REQ_ITEMS_FEEDBACK] = &p_feedback,
    [CK_REQ_ATTACHMENTS_CREATE] = &p_attachments_create,
    [CK_REQ_ATTACHMENTS_DELETE] = &p_attachments_delete,
    [CK_REQ_THREADS_UPDATE] = &p_threads_update,
    [CK_REQ_THREADS_DELETE] = &p_threads_delete,
    [CK_REQ_INPUT_TRANSCRIBE] = &p_transcribe,
    [CK_REQ_THREADS_SYNC_CUSTOM_ACTION] = &p_custom_action,
};
