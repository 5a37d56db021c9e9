/* Public entry points over the schema engine, the wire-form helpers and the builders of
 * canonical values (see chatkit/protocol.h). */
#include "protocol/schema.h"

#include <chatkit/error.h>
#include <chatkit/protocol.h>

#include <string.h>

int ck_protocol_normalize(ck_arena *a, ck_model model, const ck_json *in, ck_json **out,
                          ck_validation_error *err) {
  ck__type t;
  const char *root;
  switch (model) {
  case CK_MODEL_THREAD_ITEM:
    t = (ck__type){CK__UNION, &ck__thread_item_union};
    root = "item";
    break;
  case CK_MODEL_STREAM_EVENT:
    t = (ck__type){CK__UNION, &ck__stream_event_union};
    root = "event";
    break;
  case CK_MODEL_THREAD_METADATA:
    t = (ck__type){CK__MODEL, &ck__thread_metadata_model};
    root = "thread";
    break;
  case CK_MODEL_ATTACHMENT:
    t = (ck__type){CK__UNION, &ck__attachment_union};
    root = "attachment";
    break;
  case CK_MODEL_WIDGET_ROOT:
    t = (ck__type){CK__WIDGET, NULL};
    root = "widget";
    break;
  case CK_MODEL_ITEM_UPDATE:
    t = (ck__type){CK__UNION, &ck__item_update_union};
    root = "update";
    break;
  case CK_MODEL_TASK:
    t = (ck__type){CK__UNION, &ck__task_union};
    root = "task";
    break;
  case CK_MODEL_WORKFLOW:
    t = (ck__type){CK__MODEL, &ck__workflow_model};
    root = "workflow";
    break;
  case CK_MODEL_ASSISTANT_CONTENT:
    t = (ck__type){CK__MODEL, &ck__assistant_content_model};
    root = "content";
    break;
  case CK_MODEL_ANNOTATION:
    t = (ck__type){CK__MODEL, &ck__annotation_model};
    root = "annotation";
    break;
  default:
    return CK_EINVAL;
  }
  return ck__normalize(a, &t, in, root, out, err);
}

bool ck_item_type_is_hidden(const char *type) {
  return type != NULL &&
         (strcmp(type, "hidden_context_item") == 0 || strcmp(type, "sdk_hidden_context") == 0);
}

/* Copies an object without one key; used to drop private fields. */
static ck_json *object_without(ck_arena *a, const ck_json *obj, const char *key) {
  ck_json *o = ck_json_object(a);
  if (o == NULL)
    return NULL;
  size_t n = ck_json_object_size(obj);
  for (size_t i = 0; i < n; i++) {
    const char *k = ck_json_object_key(obj, i);
    if (strcmp(k, key) == 0)
      continue;
    if (ck_json_object_set(o, k, ck_json_object_value(obj, i)) != CK_OK)
      return NULL;
  }
  return o;
}

ck_json *ck_attachment_for_wire(ck_arena *a, ck_json *attachment) {
  if (ck_json_object_get(attachment, "metadata") == NULL)
    return attachment;
  return object_without(a, attachment, "metadata");
}

ck_json *ck_item_for_wire(ck_arena *a, ck_json *item) {
  ck_json *atts = ck_json_object_get(item, "attachments");
  size_t n = ck_json_array_size(atts);
  bool private_data = false;
  for (size_t i = 0; i < n && !private_data; i++)
    private_data = ck_json_object_get(ck_json_array_get(atts, i), "metadata") != NULL;
  if (!private_data)
    return item;
  ck_json *copy = ck_json_object(a);
  ck_json *list = ck_json_array(a);
  if (copy == NULL || list == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    ck_json *att = ck_attachment_for_wire(a, ck_json_array_get(atts, i));
    if (att == NULL || ck_json_array_append(list, att) != CK_OK)
      return NULL;
  }
  size_t m = ck_json_object_size(item);
  for (size_t i = 0; i < m; i++) {
    const char *k = ck_json_object_key(item, i);
    ck_json *v = strcmp(k, "attachments") == 0 ? list : ck_json_object_value(item, i);
    if (ck_json_object_set(copy, k, v) != CK_OK)
      return NULL;
  }
  return copy;
}

ck_json *ck_page_json(ck_arena *a, ck_json *data, bool has_more, const char *after) {
  ck_json *page = ck_json_object(a);
  if (page == NULL)
    return NULL;
  if (data == NULL)
    data = ck_json_array(a);
  ck_json *hm = ck_json_bool(a, has_more);
  if (data == NULL || hm == NULL || ck_json_object_set(page, "data", data) != CK_OK ||
      ck_json_object_set(page, "has_more", hm) != CK_OK)
    return NULL;
  if (after != NULL) {
    ck_json *av = ck_json_str(a, after);
    if (av == NULL || ck_json_object_set(page, "after", av) != CK_OK)
      return NULL;
  }
  return page;
}

ck_json *ck_thread_for_wire(ck_arena *a, const ck_json *thread, ck_json *items) {
  static const char *const keys[] = {"title", "id", "created_at", "status",
                                     "allowed_image_domains"};
  ck_json *out = ck_json_object(a);
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    ck_json *v = ck_json_object_get(thread, keys[i]);
    if (v == NULL || ck_json_is_null(v))
      continue;
    if (ck_json_object_set(out, keys[i], v) != CK_OK)
      return NULL;
  }
  if (items == NULL)
    items = ck_page_json(a, NULL, false, NULL);
  ck_json *md = ck_json_object(a);
  if (items == NULL || md == NULL || ck_json_object_set(out, "metadata", md) != CK_OK ||
      ck_json_object_set(out, "items", items) != CK_OK)
    return NULL;
  return out;
}

/* ---- Builders ---- */

/* Sets a string member; returns false when out of memory. */
static bool set_str(ck_json *o, const char *key, const char *value) {
  ck_json *v = ck_json_str(ck_json_arena(o), value);
  return v != NULL && ck_json_object_set(o, key, v) == CK_OK;
}

static bool set_val(ck_json *o, const char *key, ck_json *v) {
  return v != NULL && ck_json_object_set(o, key, v) == CK_OK;
}

ck_json *ck_thread_new(ck_arena *a, const char *id, const char *created_at) {
  ck_json *t = ck_json_object(a);
  ck_json *status = ck_json_object(a);
  if (t == NULL || status == NULL || !set_str(status, "type", "active") || !set_str(t, "id", id) ||
      !set_str(t, "created_at", created_at) || !set_val(t, "status", status) ||
      !set_val(t, "metadata", ck_json_object(a)))
    return NULL;
  return t;
}

ck_json *ck_item_assistant_message(ck_arena *a, const char *id, const char *thread_id,
                                   const char *created_at, ck_json *content) {
  ck_json *it = ck_json_object(a);
  if (content == NULL)
    content = ck_json_array(a);
  if (it == NULL || !set_str(it, "id", id) || !set_str(it, "thread_id", thread_id) ||
      !set_str(it, "created_at", created_at) || !set_str(it, "type", "assistant_message") ||
      !set_val(it, "content", content))
    return NULL;
  return it;
}

ck_json *ck_assistant_content(ck_arena *a, const char *text, size_t len) {
  ck_json *c = ck_json_object(a);
  if (c == NULL || !set_val(c, "annotations", ck_json_array(a)) ||
      !set_val(c, "text", ck_json_strn(a, text, len)) || !set_str(c, "type", "output_text"))
    return NULL;
  return c;
}

ck_json *ck_event_item(ck_arena *a, const char *event_type, ck_json *item) {
  ck_json *e = ck_json_object(a);
  if (e == NULL || !set_str(e, "type", event_type) || !set_val(e, "item", item))
    return NULL;
  return e;
}

ck_json *ck_event_item_updated(ck_arena *a, const char *item_id, ck_json *update) {
  ck_json *e = ck_json_object(a);
  if (e == NULL || !set_str(e, "type", "thread.item.updated") || !set_str(e, "item_id", item_id) ||
      !set_val(e, "update", update))
    return NULL;
  return e;
}

ck_json *ck_update_text_delta(ck_arena *a, int content_index, const char *delta, size_t len) {
  ck_json *u = ck_json_object(a);
  if (u == NULL || !set_str(u, "type", "assistant_message.content_part.text_delta") ||
      !set_val(u, "content_index", ck_json_int(a, content_index)) ||
      !set_val(u, "delta", ck_json_strn(a, delta, len)))
    return NULL;
  return u;
}

ck_json *ck_update_content_part(ck_arena *a, bool done, int content_index, ck_json *content) {
  ck_json *u = ck_json_object(a);
  const char *type =
      done ? "assistant_message.content_part.done" : "assistant_message.content_part.added";
  if (u == NULL || !set_str(u, "type", type) ||
      !set_val(u, "content_index", ck_json_int(a, content_index)) ||
      !set_val(u, "content", content))
    return NULL;
  return u;
}

ck_json *ck_event_progress(ck_arena *a, const char *icon, const char *text) {
  ck_json *e = ck_json_object(a);
  if (e == NULL || !set_str(e, "type", "progress_update"))
    return NULL;
  if (icon != NULL && !set_str(e, "icon", icon))
    return NULL;
  if (!set_str(e, "text", text))
    return NULL;
  return e;
}

ck_json *ck_event_notice(ck_arena *a, const char *level, const char *message, const char *title) {
  ck_json *e = ck_json_object(a);
  if (e == NULL || !set_str(e, "type", "notice") || !set_str(e, "level", level) ||
      !set_str(e, "message", message))
    return NULL;
  if (title != NULL && !set_str(e, "title", title))
    return NULL;
  return e;
}

ck_json *ck_event_client_effect(ck_arena *a, const char *name, ck_json *data) {
  ck_json *e = ck_json_object(a);
  if (data == NULL)
    data = ck_json_object(a);
  if (e == NULL || !set_str(e, "type", "client_effect") || !set_str(e, "name", name) ||
      !set_val(e, "data", data))
    return NULL;
  return e;
}

ck_json *ck_event_error(ck_arena *a, const char *code, const char *message, bool allow_retry) {
  ck_json *e = ck_json_object(a);
  if (e == NULL || !set_str(e, "type", "error") || !set_str(e, "code", code))
    return NULL;
  if (message != NULL && !set_str(e, "message", message))
    return NULL;
  if (!set_val(e, "allow_retry", ck_json_bool(a, allow_retry)))
    return NULL;
  return e;
}
