/* Request envelope parsing: {"type": ..., "params": {...}, "metadata": {...}}. */
#include "protocol/schema.h"

#include <chatkit/error.h>
#include <chatkit/protocol.h>

#include <stdio.h>
#include <string.h>

/* The request body nesting cap: generous for widgets in payloads, small enough that a hostile
 * body cannot exhaust the stack. */
#define REQUEST_MAX_DEPTH 64

static const char *const request_names[CK_REQ__COUNT] = {
    [CK_REQ_THREADS_CREATE] = "threads.create",
    [CK_REQ_THREADS_ADD_USER_MESSAGE] = "threads.add_user_message",
    [CK_REQ_THREADS_ADD_CLIENT_TOOL_OUTPUT] = "threads.add_client_tool_output",
    [CK_REQ_THREADS_ADD_STRUCTURED_INPUT] = "threads.add_structured_input",
    [CK_REQ_THREADS_RETRY_AFTER_ITEM] = "threads.retry_after_item",
    [CK_REQ_THREADS_CUSTOM_ACTION] = "threads.custom_action",
    [CK_REQ_THREADS_GET_BY_ID] = "threads.get_by_id",
    [CK_REQ_THREADS_LIST] = "threads.list",
    [CK_REQ_ITEMS_LIST] = "items.list",
    [CK_REQ_ITEMS_FEEDBACK] = "items.feedback",
    [CK_REQ_ATTACHMENTS_CREATE] = "attachments.create",
    [CK_REQ_ATTACHMENTS_DELETE] = "attachments.delete",
    [CK_REQ_THREADS_UPDATE] = "threads.update",
    [CK_REQ_THREADS_DELETE] = "threads.delete",
    [CK_REQ_INPUT_TRANSCRIBE] = "input.transcribe",
    [CK_REQ_THREADS_SYNC_CUSTOM_ACTION] = "threads.sync_custom_action",
};

const char *ck_request_type_name(ck_request_type t) {
  if ((int)t < 0 || t >= CK_REQ__COUNT)
    return NULL;
  return request_names[t];
}

bool ck_request_is_streaming(ck_request_type t) {
  return t <= CK_REQ_THREADS_CUSTOM_ACTION;
}

static int reject(ck_validation_error *err, const char *path, const char *msg) {
  if (err != NULL) {
    snprintf(err->path, sizeof(err->path), "%s", path);
    snprintf(err->message, sizeof(err->message), "%s", msg);
  }
  return CK_EINVAL;
}

int ck_request_parse(ck_arena *a, const char *body, size_t len, ck_request *out,
                     ck_validation_error *err) {
  return ck__request_parse2(a, a, body, len, out, err);
}

int ck__request_parse2(ck_arena *raw, ck_arena *a, const char *body, size_t len, ck_request *out,
                       ck_validation_error *err) {
  ck_json *doc = NULL;
  ck_json_error jerr;
  int rc = ck_json_parse(raw, body, len, REQUEST_MAX_DEPTH, &doc, &jerr);
  if (rc == CK_ENOMEM)
    return rc;
  if (rc != CK_OK) {
    if (err != NULL) {
      snprintf(err->path, sizeof(err->path), "body");
      snprintf(err->message, sizeof(err->message), "invalid JSON at line %d column %d: %s",
               jerr.line, jerr.column, jerr.message);
    }
    return CK_EINVAL;
  }
  if (!ck_json_is_object(doc))
    return reject(err, "body", "the request body must be a JSON object");
  const ck_json *type = ck_json_object_get(doc, "type");
  if (type == NULL)
    return reject(err, "type", "field required");
  const char *name = ck_json_str_value(type);
  if (name == NULL)
    return reject(err, "type", "must be a string naming the request type");
  int t = -1;
  for (int i = 0; i < CK_REQ__COUNT; i++)
    if (strcmp(name, request_names[i]) == 0)
      t = i;
  if (t < 0) {
    if (err != NULL) {
      snprintf(err->path, sizeof(err->path), "type");
      snprintf(err->message, sizeof(err->message), "unknown request type \"%.80s\"", name);
    }
    return CK_EINVAL;
  }
  const ck_json *params = ck_json_object_get(doc, "params");
  if (params == NULL) {
    if (err != NULL) {
      snprintf(err->path, sizeof(err->path), "%s.params", name);
      snprintf(err->message, sizeof(err->message), "field required");
    }
    return CK_EINVAL;
  }
  const ck_json *metadata = ck_json_object_get(doc, "metadata");
  if (metadata != NULL && !ck_json_is_null(metadata) && !ck_json_is_object(metadata))
    return reject(err, "metadata", "must be an object");

  char root[64];
  snprintf(root, sizeof(root), "%s.params", name);
  ck__type pt = {CK__MODEL, ck__request_params[t]};
  rc = ck__normalize(a, &pt, params, root, &out->params, err);
  if (rc != CK_OK)
    return rc;
  out->type = (ck_request_type)t;
  return CK_OK;
}
