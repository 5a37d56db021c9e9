/* Thread items to Responses input items (protocol.md §9.3), text for text like the reference's
 * ThreadItemConverter. */
#include <chatkit/agent.h>
#include <chatkit/error.h>

#include <string.h>

#define MENTION_INSTRUCTIONS                                                                       \
  "# User-provided context for @-mentions\n"                                                       \
  "- When referencing resolved entities, use their canonical names **without** '@'.\n"             \
  "- The '@' form appears only in user text and should not be echoed."

/* Builders that report out-of-memory as NULL, so callers chain them and test once. */
static ck_json *obj2(ck_arena *a, const char *k1, ck_json *v1, const char *k2, ck_json *v2) {
  ck_json *o = ck_json_object(a);
  if (o == NULL || v1 == NULL || ck_json_object_set(o, k1, v1) != CK_OK)
    return NULL;
  if (k2 != NULL && (v2 == NULL || ck_json_object_set(o, k2, v2) != CK_OK))
    return NULL;
  return o;
}

static ck_json *text_part(ck_arena *a, const char *text, size_t len) {
  return obj2(a, "type", ck_json_str(a, "input_text"), "text", ck_json_strn(a, text, len));
}

static ck_json *message(ck_arena *a, const char *role, ck_json *parts) {
  ck_json *m = obj2(a, "type", ck_json_str(a, "message"), "role", ck_json_str(a, role));
  if (m == NULL || parts == NULL || ck_json_object_set(m, "content", parts) != CK_OK)
    return NULL;
  return m;
}

/* Appends a user message holding one input_text. */
static int push_user_text(ck_arena *a, ck_json *out, const char *text, size_t len) {
  ck_json *parts = ck_json_array(a);
  ck_json *p = text_part(a, text, len);
  if (parts == NULL || p == NULL || ck_json_array_append(parts, p) != CK_OK)
    return CK_ENOMEM;
  ck_json *m = message(a, "user", parts);
  return m ? ck_json_array_append(out, m) : CK_ENOMEM;
}

static int default_attachment(void *ud, ck_arena *a, const ck_json *att, ck_json *parts) {
  const char *type = ck_json_object_get_str(att, "type");
  const char *url = ck_json_object_get_str(att, "preview_url");
  ck_json *p;
  if (type != NULL && strcmp(type, "image") == 0 && url != NULL) {
    p = obj2(a, "type", ck_json_str(a, "input_image"), "image_url", ck_json_str(a, url));
    if (p != NULL && ck_json_object_set(p, "detail", ck_json_str(a, "auto")) != CK_OK)
      p = NULL;
  } else {
    const char *name = ck_json_object_get_str(att, "name");
    const char *mime = ck_json_object_get_str(att, "mime_type");
    const char *t = ck_arena_printf(a, "[Attached file: %s (%s)]", name ? name : "?",
                                    mime ? mime : "application/octet-stream");
    p = t ? text_part(a, t, strlen(t)) : NULL;
  }
  return p ? ck_json_array_append(parts, p) : CK_ENOMEM;
}

static int default_tag(void *ud, ck_arena *a, const ck_json *tag, ck_json *parts) {
  const char *data = ck_json_dumps(a, ck_json_object_get(tag, "data"), NULL);
  const char *text = ck_json_object_get_str(tag, "text");
  const char *t = data ? ck_arena_printf(a, "@%s: %s", text ? text : "", data) : NULL;
  ck_json *p = t ? text_part(a, t, strlen(t)) : NULL;
  return p ? ck_json_array_append(parts, p) : CK_ENOMEM;
}

static int convert_user(ck_arena *a, const ck_json *item, bool last, const ck_input_hooks *h,
                        ck_json *out) {
  const ck_json *content = ck_json_object_get(item, "content");
  ck_buf text;
  ck_buf_init(&text, 0);
  ck_json *tags = ck_json_array(a);
  int rc = tags ? CK_OK : CK_ENOMEM;
  for (size_t i = 0; rc == CK_OK && i < ck_json_array_size(content); i++) {
    const ck_json *part = ck_json_array_get(content, i);
    const char *type = ck_json_object_get_str(part, "type");
    const ck_json *t = ck_json_object_get(part, "text");
    bool tag = type != NULL && strcmp(type, "input_tag") == 0;
    if (tag)
      rc = ck_buf_putc(&text, '@');
    if (rc == CK_OK)
      rc = ck_buf_append(&text, ck_json_str_value(t) ? ck_json_str_value(t) : "",
                         ck_json_str_len(t));
    if (rc == CK_OK && tag) {
      /* One context part per distinct tag text, in first-occurrence order. */
      bool seen = false;
      for (size_t k = 0; k < ck_json_array_size(tags) && !seen; k++)
        seen = ck_json_equal(ck_json_object_get(ck_json_array_get(tags, k), "text"), t);
      if (!seen)
        rc = ck_json_array_append(tags, (ck_json *)part);
    }
  }
  ck_json *parts = rc == CK_OK ? ck_json_array(a) : NULL;
  ck_json *p = parts ? text_part(a, text.data ? text.data : "", text.len) : NULL;
  ck_buf_free(&text);
  if (p == NULL || ck_json_array_append(parts, p) != CK_OK)
    return CK_ENOMEM;
  const ck_json *atts = ck_json_object_get(item, "attachments");
  for (size_t i = 0; i < ck_json_array_size(atts); i++) {
    rc = (h && h->attachment) ? h->attachment(h->ud, a, ck_json_array_get(atts, i), parts)
                              : default_attachment(NULL, a, ck_json_array_get(atts, i), parts);
    if (rc != CK_OK)
      return rc;
  }
  ck_json *m = message(a, "user", parts);
  if (m == NULL || ck_json_array_append(out, m) != CK_OK)
    return CK_ENOMEM;
  const char *quoted = ck_json_object_get_str(item, "quoted_text");
  if (last && quoted != NULL) {
    const char *t = ck_arena_printf(a, "The user is referring to this in particular: \n%s", quoted);
    if (t == NULL || push_user_text(a, out, t, strlen(t)) != CK_OK)
      return CK_ENOMEM;
  }
  if (ck_json_array_size(tags) > 0) {
    ck_json *tparts = ck_json_array(a);
    ck_json *intro = text_part(a, MENTION_INSTRUCTIONS, strlen(MENTION_INSTRUCTIONS));
    if (tparts == NULL || intro == NULL || ck_json_array_append(tparts, intro) != CK_OK)
      return CK_ENOMEM;
    for (size_t i = 0; i < ck_json_array_size(tags); i++) {
      rc = (h && h->tag) ? h->tag(h->ud, a, ck_json_array_get(tags, i), tparts)
                         : default_tag(NULL, a, ck_json_array_get(tags, i), tparts);
      if (rc != CK_OK)
        return rc;
    }
    m = message(a, "user", tparts);
    if (m == NULL || ck_json_array_append(out, m) != CK_OK)
      return CK_ENOMEM;
  }
  return CK_OK;
}

static int convert_assistant(ck_arena *a, const ck_json *item, ck_json *out) {
  const ck_json *content = ck_json_object_get(item, "content");
  ck_json *parts = ck_json_array(a);
  if (parts == NULL)
    return CK_ENOMEM;
  for (size_t i = 0; i < ck_json_array_size(content); i++) {
    ck_json *p = ck_json_object(a);
    if (p == NULL || ck_json_object_set(p, "annotations", ck_json_array(a)) != CK_OK ||
        ck_json_object_set(
            p, "text",
            ck_json_copy(a, ck_json_object_get(ck_json_array_get(content, i), "text"))) != CK_OK ||
        ck_json_object_set(p, "type", ck_json_str(a, "output_text")) != CK_OK ||
        ck_json_object_set(p, "logprobs", ck_json_null(a)) != CK_OK ||
        ck_json_array_append(parts, p) != CK_OK)
      return CK_ENOMEM;
  }
  ck_json *m = message(a, "assistant", parts);
  return m ? ck_json_array_append(out, m) : CK_ENOMEM;
}

static int convert_tool_call(ck_arena *a, const ck_json *item, ck_json *out) {
  const char *status = ck_json_object_get_str(item, "status");
  if (status == NULL || strcmp(status, "completed") != 0)
    return CK_OK; /* a pending call has no output yet: the model must not see half of it */
  ck_json *call_id = ck_json_copy(a, ck_json_object_get(item, "call_id"));
  ck_json *fc = obj2(a, "type", ck_json_str(a, "function_call"), "call_id", call_id);
  const char *args = ck_json_dumps_python(a, ck_json_object_get(item, "arguments"));
  const ck_json *outv = ck_json_object_get(item, "output");
  const char *output = outv ? ck_json_dumps_python(a, outv) : "null";
  if (fc == NULL || args == NULL || output == NULL ||
      ck_json_object_set(fc, "name", ck_json_copy(a, ck_json_object_get(item, "name"))) ||
      ck_json_object_set(fc, "arguments", ck_json_str(a, args)) || ck_json_array_append(out, fc))
    return CK_ENOMEM;
  ck_json *fo =
      obj2(a, "type", ck_json_str(a, "function_call_output"), "call_id", ck_json_copy(a, call_id));
  if (fo == NULL || ck_json_object_set(fo, "output", ck_json_str(a, output)) ||
      ck_json_array_append(out, fo))
    return CK_ENOMEM;
  return CK_OK;
}

/* A custom task with a title or content is described to the model; other tasks are not. */
static int convert_task(ck_arena *a, const ck_json *task, ck_json *out) {
  const char *type = ck_json_object_get_str(task, "type");
  if (type == NULL || strcmp(type, "custom") != 0)
    return CK_OK;
  const char *title = ck_json_object_get_str(task, "title");
  const char *content = ck_json_object_get_str(task, "content");
  const char *t;
  if (title != NULL && content != NULL)
    t = ck_arena_printf(a, "%s: %s", title, content);
  else if (title != NULL || content != NULL)
    t = title ? title : content;
  else
    return CK_OK;
  const char *text = t ? ck_arena_printf(a,
                                         "A message was displayed to the user that the following "
                                         "task was performed:\n<Task>\n%s\n</Task>",
                                         t)
                       : NULL;
  return text ? push_user_text(a, out, text, strlen(text)) : CK_ENOMEM;
}

static int convert_structured_input(ck_arena *a, const ck_json *item, ck_json *out) {
  ck_buf b;
  ck_buf_init(&b, 0);
  int rc = ck_buf_printf(&b,
                         "A structured input request was displayed to the user with the following "
                         "status: %s\n<StructuredInput>\n",
                         ck_json_object_get_str(item, "status"));
  const ck_json *inputs = ck_json_object_get(item, "inputs");
  for (size_t i = 0; rc == CK_OK && i < ck_json_array_size(inputs); i++) {
    const ck_json *in = ck_json_array_get(inputs, i);
    const ck_json *answer = ck_json_object_get(in, "answer");
    rc = ck_buf_printf(&b, "- %s: ", ck_json_object_get_str(in, "question"));
    if (rc != CK_OK)
      break;
    if (answer == NULL) {
      rc = ck_buf_puts(&b, "unanswered");
    } else if (ck_json_bool_value(ck_json_object_get(answer, "skipped"))) {
      rc = ck_buf_puts(&b, "skipped");
    } else {
      const ck_json *values = ck_json_object_get(answer, "values");
      for (size_t k = 0; rc == CK_OK && k < ck_json_array_size(values); k++)
        rc = ck_buf_printf(&b, "%s%s", k ? ", " : "",
                           ck_json_str_value(ck_json_array_get(values, k)));
    }
    if (rc == CK_OK)
      rc = ck_buf_putc(&b, '\n');
  }
  if (rc == CK_OK)
    rc = ck_buf_puts(&b, "</StructuredInput>");
  if (rc == CK_OK)
    rc = push_user_text(a, out, b.data, b.len);
  ck_buf_free(&b);
  return rc;
}

static int convert_hidden(ck_arena *a, const ck_json *item, ck_json *out) {
  const ck_json *content = ck_json_object_get(item, "content");
  const char *text =
      ck_json_is_string(content) ? ck_json_str_value(content) : ck_json_dumps(a, content, NULL);
  const char *t = text ? ck_arena_printf(a,
                                         "Hidden context for the agent (not shown to the user):\n"
                                         "<HiddenContext>\n%s\n</HiddenContext>",
                                         text)
                       : NULL;
  return t ? push_user_text(a, out, t, strlen(t)) : CK_ENOMEM;
}

static int convert_image(ck_arena *a, const ck_json *item, ck_json *out) {
  const char *url = ck_json_object_get_str(ck_json_object_get(item, "image"), "url");
  if (url == NULL)
    return CK_OK;
  static const char intro[] = "The following image was generated by the agent.";
  ck_json *parts = ck_json_array(a);
  ck_json *img = obj2(a, "type", ck_json_str(a, "input_image"), "detail", ck_json_str(a, "auto"));
  ck_json *t = text_part(a, intro, sizeof(intro) - 1);
  if (parts == NULL || img == NULL || t == NULL ||
      ck_json_object_set(img, "image_url", ck_json_str(a, url)) || ck_json_array_append(parts, t) ||
      ck_json_array_append(parts, img))
    return CK_ENOMEM;
  ck_json *m = message(a, "user", parts);
  return m ? ck_json_array_append(out, m) : CK_ENOMEM;
}

static int convert_item(ck_arena *a, const ck_json *item, bool last, const ck_input_hooks *h,
                        ck_json *out) {
  const char *type = ck_json_object_get_str(item, "type");
  if (type == NULL)
    return CK_OK;
  if (strcmp(type, "user_message") == 0)
    return convert_user(a, item, last, h, out);
  if (strcmp(type, "assistant_message") == 0)
    return convert_assistant(a, item, out);
  if (strcmp(type, "client_tool_call") == 0)
    return convert_tool_call(a, item, out);
  if (strcmp(type, "widget") == 0) {
    const char *w = ck_json_dumps(a, ck_json_object_get(item, "widget"), NULL);
    const char *t = w ? ck_arena_printf(a,
                                        "The following graphical UI widget (id: %s) was displayed "
                                        "to the user:%s",
                                        ck_json_object_get_str(item, "id"), w)
                      : NULL;
    return t ? push_user_text(a, out, t, strlen(t)) : CK_ENOMEM;
  }
  if (strcmp(type, "workflow") == 0) {
    const ck_json *tasks = ck_json_object_get(ck_json_object_get(item, "workflow"), "tasks");
    for (size_t i = 0; i < ck_json_array_size(tasks); i++) {
      int rc = convert_task(a, ck_json_array_get(tasks, i), out);
      if (rc != CK_OK)
        return rc;
    }
    return CK_OK;
  }
  if (strcmp(type, "task") == 0)
    return convert_task(a, ck_json_object_get(item, "task"), out);
  if (strcmp(type, "structured_input") == 0)
    return convert_structured_input(a, item, out);
  if (strcmp(type, "hidden_context_item") == 0 || strcmp(type, "sdk_hidden_context") == 0)
    return convert_hidden(a, item, out);
  if (strcmp(type, "generated_image") == 0)
    return convert_image(a, item, out);
  return CK_OK; /* end_of_turn and anything newer: nothing for the model */
}

int ck_thread_to_model_input(ck_arena *a, const ck_json *items, const ck_input_hooks *hooks,
                             size_t max_chars, ck_json **out) {
  size_t n = ck_json_array_size(items);
  ck_json *per = ck_json_array(a); /* one array of inputs per item */
  *out = ck_json_array(a);
  if (per == NULL || *out == NULL)
    return CK_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    ck_json *item = ck_json_expand(a, ck_json_array_get(items, i));
    ck_json *inputs = ck_json_array(a);
    if (item == NULL || inputs == NULL)
      return CK_ENOMEM;
    int rc = convert_item(a, item, i + 1 == n, hooks, inputs);
    if (rc != CK_OK)
      return rc;
    if (ck_json_array_append(per, inputs) != CK_OK)
      return CK_ENOMEM;
  }
  /* Keep the newest items that fit the budget; the newest is always kept. */
  size_t first = 0;
  if (max_chars > 0) {
    size_t used = 0;
    first = n;
    while (first > 0) {
      size_t len = 0;
      if (ck_json_dumps(a, ck_json_array_get(per, first - 1), &len) == NULL)
        return CK_ENOMEM;
      if (first < n && used + len > max_chars)
        break;
      used += len;
      first--;
    }
  }
  for (size_t i = first; i < n; i++) {
    ck_json *inputs = ck_json_array_get(per, i);
    for (size_t k = 0; k < ck_json_array_size(inputs); k++)
      if (ck_json_array_append(*out, ck_json_array_get(inputs, k)) != CK_OK)
        return CK_ENOMEM;
  }
  return CK_OK;
}
