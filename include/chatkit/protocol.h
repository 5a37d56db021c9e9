/* chatkit/protocol.h - the ChatKit wire types: requests, thread items, stream events.
 *
 * Protocol values are JSON trees (chatkit/json.h) in *canonical form*: the key order of the
 * reference models, null model fields omitted, non-null defaults present, timestamps and URLs
 * normalised, widget trees stripped of nulls. A schema table for every model of the reference
 * (openai-chatkit 1.6.5) drives both validation and canonicalisation, so a value that went
 * through ck_protocol_normalize serialises byte-for-byte like the reference's pydantic output.
 *
 * Builders below construct canonical values directly (no validation pass needed); they are
 * what handlers and the agent layer use on hot paths.
 */
#ifndef CHATKIT_PROTOCOL_H
#define CHATKIT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <chatkit/json.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Requests ---------------------------------------------------------------------------- */

/** The 16 request types. The first six answer with an SSE stream, the rest with JSON. */
typedef enum ck_request_type {
  CK_REQ_THREADS_CREATE,
  CK_REQ_THREADS_ADD_USER_MESSAGE,
  CK_REQ_THREADS_ADD_CLIENT_TOOL_OUTPUT,
  CK_REQ_THREADS_ADD_STRUCTURED_INPUT,
  CK_REQ_THREADS_RETRY_AFTER_ITEM,
  CK_REQ_THREADS_CUSTOM_ACTION,
  CK_REQ_THREADS_GET_BY_ID,
  CK_REQ_THREADS_LIST,
  CK_REQ_ITEMS_LIST,
  CK_REQ_ITEMS_FEEDBACK,
  CK_REQ_ATTACHMENTS_CREATE,
  CK_REQ_ATTACHMENTS_DELETE,
  CK_REQ_THREADS_UPDATE,
  CK_REQ_THREADS_DELETE,
  CK_REQ_INPUT_TRANSCRIBE,
  CK_REQ_THREADS_SYNC_CUSTOM_ACTION,
  CK_REQ__COUNT
} ck_request_type;

/** A parsed, validated request. `params` is the canonical params object (defaults filled in,
 * unknown keys dropped, lax values coerced: "5" -> 5 for integers). */
typedef struct ck_request {
  ck_request_type type;
  ck_json *params;
} ck_request;

/** Why a value was rejected: a path such as "threads.list.params.limit" and a message. */
typedef struct ck_validation_error {
  char path[192];
  char message[256];
} ck_validation_error;

/** The wire name of a request type ("threads.create"), or NULL when out of range. */
const char *ck_request_type_name(ck_request_type t);

/** True for the six request types answered with an SSE stream. */
bool ck_request_is_streaming(ck_request_type t);

/** Parses and validates a request body (UTF-8 JSON of `len` bytes), allocating from `a`.
 * Returns CK_OK, CK_EINVAL with `err` filled (bad JSON, not an object, unknown or missing
 * `type`, missing or mistyped params) or CK_ENOMEM. Nesting deeper than 64 levels is
 * rejected. */
int ck_request_parse(ck_arena *a, const char *body, size_t len, ck_request *out,
                     ck_validation_error *err);

/* ---- Canonical values -------------------------------------------------------------------- */

/** The protocol models a value can be normalised as. */
typedef enum ck_model {
  CK_MODEL_THREAD_ITEM,       /* any thread item (discriminated by "type") */
  CK_MODEL_STREAM_EVENT,      /* any stream event (discriminated by "type") */
  CK_MODEL_THREAD_METADATA,   /* a stored thread: title?, id, created_at, status, ... */
  CK_MODEL_ATTACHMENT,        /* a file or image attachment, metadata included */
  CK_MODEL_WIDGET_ROOT,       /* a widget root (Card, ListView, Basic), nulls stripped */
  CK_MODEL_ITEM_UPDATE,       /* the `update` of a thread.item.updated event */
  CK_MODEL_TASK,              /* a workflow task */
  CK_MODEL_WORKFLOW,          /* a workflow */
  CK_MODEL_ASSISTANT_CONTENT, /* {"annotations","text","type":"output_text"} */
  CK_MODEL_ANNOTATION,
} ck_model;

/** Validates `in` as `model` and returns its canonical form in `*out` (a new tree allocated
 * from `a`; `in` is not changed). Returns CK_OK, CK_EINVAL with `err` filled, or CK_ENOMEM. */
int ck_protocol_normalize(ck_arena *a, ck_model model, const ck_json *in, ck_json **out,
                          ck_validation_error *err);

/** True for the item types that are never shown to the client (hidden_context_item and
 * sdk_hidden_context). */
bool ck_item_type_is_hidden(const char *type);

/** Returns the item as the client may see it: attachments inside a user message lose their
 * private `metadata`. Returns `item` itself when nothing needs removing, else a copy from `a`
 * (NULL when out of memory). */
ck_json *ck_item_for_wire(ck_arena *a, ck_json *item);

/** Returns the attachment without its private `metadata` (itself or a copy from `a`). */
ck_json *ck_attachment_for_wire(ck_arena *a, ck_json *attachment);

/** Builds the wire form of a stored thread: `metadata` replaced by {} and an `items` page
 * (`items` may be NULL for the empty page {"data":[],"has_more":false}). */
ck_json *ck_thread_for_wire(ck_arena *a, const ck_json *thread, ck_json *items);

/** Builds a page object {"data":..., "has_more":..., "after"?}. */
ck_json *ck_page_json(ck_arena *a, ck_json *data, bool has_more, const char *after);

/* ---- Builders (canonical output; all return NULL when out of memory) ---------------------- */

/** A new thread's metadata: {"id","created_at","status":{"type":"active"},"metadata":{}}. */
ck_json *ck_thread_new(ck_arena *a, const char *id, const char *created_at);

/** An assistant message item with the given content array (NULL: empty). */
ck_json *ck_item_assistant_message(ck_arena *a, const char *id, const char *thread_id,
                                   const char *created_at, ck_json *content);

/** An output_text content part {"annotations":[],"text":text,"type":"output_text"}. */
ck_json *ck_assistant_content(ck_arena *a, const char *text, size_t len);

/** {"type":"thread.item.added"|"thread.item.done"|"thread.item.replaced","item":item}. */
ck_json *ck_event_item(ck_arena *a, const char *event_type, ck_json *item);

/** {"type":"thread.item.updated","item_id":id,"update":update}. */
ck_json *ck_event_item_updated(ck_arena *a, const char *item_id, ck_json *update);

/** {"type":"assistant_message.content_part.text_delta","content_index":i,"delta":...}. */
ck_json *ck_update_text_delta(ck_arena *a, int content_index, const char *delta, size_t len);

/** {"type":"assistant_message.content_part.added"|"...done","content_index":i,"content":c}. */
ck_json *ck_update_content_part(ck_arena *a, bool done, int content_index, ck_json *content);

/** {"type":"progress_update","icon"?,"text"}. */
ck_json *ck_event_progress(ck_arena *a, const char *icon, const char *text);

/** {"type":"notice","level","message","title"?}. */
ck_json *ck_event_notice(ck_arena *a, const char *level, const char *message, const char *title);

/** {"type":"client_effect","name","data"} (`data` NULL gives {}). */
ck_json *ck_event_client_effect(ck_arena *a, const char *name, ck_json *data);

/** {"type":"error","code","message"?,"allow_retry"}. */
ck_json *ck_event_error(ck_arena *a, const char *code, const char *message, bool allow_retry);

#ifdef __cplusplus
}
#endif
#endif
