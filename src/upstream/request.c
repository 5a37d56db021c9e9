/* Request bodies: the neutral ck_model_request mapped to the Responses API or to Chat
 * Completions (see docs/internals/upstream.md, "Requests"). Input arrives as Responses-API
 * items because that is the richer format: it can say everything Chat messages can. */
#include "upstream/model_internal.h"

#include <chatkit/error.h>

#include <string.h>

/* Builders return NULL when out of memory; callers check once at the end of each step. */

static bool is_text_part(const char *type) {
  return type && (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0 ||
                  strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0);
}

/* The string node holding a text part's text ("text", or "refusal" for refusal parts). */
static const ck_json *part_text(const ck_json *part) {
  const ck_json *t = ck_json_object_get(part, "text");
  return t ? t : ck_json_object_get(part, "refusal");
}

/* Converts Responses content (a string or an array of parts) to Chat content. Text-only
 * arrays become one string, joined by newlines: assistant and system messages must be strings
 * on many servers, and every server accepts a string. */
static ck_json *chat_content(ck_arena *a, const ck_json *content) {
  if (content == NULL || ck_json_is_null(content))
    return ck_json_null(a);
  if (ck_json_is_string(content))
    return ck_json_copy(a, content);
  if (!ck_json_is_array(content))
    return NULL;
  size_t n = ck_json_array_size(content);
  bool text_only = true;
  for (size_t i = 0; i < n; i++)
    if (!is_text_part(ck_json_object_get_str(ck_json_array_get(content, i), "type")))
      text_only = false;
  if (text_only) {
    ck_buf b;
    ck_buf_init(&b, 0);
    for (size_t i = 0; i < n; i++) {
      const ck_json *t = part_text(ck_json_array_get(content, i));
      if (i > 0)
        ck_buf_putc(&b, '\n');
      if (ck_json_is_string(t))
        ck_buf_append(&b, ck_json_str_value(t), ck_json_str_len(t));
    }
    ck_json *s = ck_json_strn(a, b.data ? b.data : "", b.len);
    ck_buf_free(&b);
    return s;
  }
  ck_json *arr = ck_json_array(a);
  for (size_t i = 0; arr && i < n; i++) {
    const ck_json *p = ck_json_array_get(content, i);
    const char *type = ck_json_object_get_str(p, "type");
    ck_json *o = ck_json_object(a);
    if (o == NULL)
      return NULL;
    if (is_text_part(type)) {
      ck_json_object_set(o, "type", ck_json_str(a, "text"));
      ck_json_object_set(o, "text", ck_json_copy(a, ck_json_object_get(p, "text")));
    } else if (type && strcmp(type, "input_image") == 0) {
      ck_json *img = ck_json_object(a);
      const ck_json *url = ck_json_object_get(p, "image_url");
      if (img == NULL)
        return NULL;
      ck_json_object_set(img, "url", ck_json_copy(a, url));
      if (ck_json_object_get(p, "detail"))
        ck_json_object_set(img, "detail", ck_json_copy(a, ck_json_object_get(p, "detail")));
      ck_json_object_set(o, "type", ck_json_str(a, "image_url"));
      ck_json_object_set(o, "image_url", img);
    } else if (type && strcmp(type, "input_file") == 0) {
      ck_json *f = ck_json_object(a);
      if (f == NULL)
        return NULL;
      static const char *const keys[] = {"file_data", "file_id", "filename"};
      for (size_t k = 0; k < 3; k++)
        if (ck_json_object_get(p, keys[k]))
          ck_json_object_set(f, keys[k], ck_json_copy(a, ck_json_object_get(p, keys[k])));
      ck_json_object_set(o, "type", ck_json_str(a, "file"));
      ck_json_object_set(o, "file", f);
    } else {
      continue; /* a part Chat Completions cannot carry (audio output, ...) */
    }
    if (ck_json_array_append(arr, o) != CK_OK)
      return NULL;
  }
  return arr;
}

/* The text of a function_call_output's "output": a string, or the text parts of an array;
 * anything else is serialised as JSON so the model still sees it. */
static ck_json *tool_output(ck_arena *a, const ck_json *out) {
  if (ck_json_is_string(out))
    return ck_json_copy(a, out);
  if (ck_json_is_array(out)) {
    ck_json *c = chat_content(a, out);
    if (c == NULL || ck_json_is_string(c))
      return c;
  }
  if (out == NULL)
    return ck_json_str(a, "");
  char *s = ck_json_dumps(a, out, NULL);
  return s ? ck_json_str(a, s) : NULL;
}

/* Function call arguments are a JSON string on the wire; tolerate an object given by mistake. */
static ck_json *arguments_string(ck_arena *a, const ck_json *args) {
  if (ck_json_is_string(args))
    return ck_json_copy(a, args);
  if (args == NULL || ck_json_is_null(args))
    return ck_json_str(a, "{}");
  char *s = ck_json_dumps(a, args, NULL);
  return s ? ck_json_str(a, s) : NULL;
}

static int chat_messages(const ck_model_client *c, ck_arena *a, const ck_model_request *req,
                         ck_json *msgs) {
  if (req->instructions) {
    ck_json *m = ck_json_object(a);
    if (m == NULL || ck_json_object_set(m, "role", ck_json_str(a, "system")) != CK_OK ||
        ck_json_object_set(m, "content", ck_json_str(a, req->instructions)) != CK_OK ||
        ck_json_array_append(msgs, m) != CK_OK)
      return CK_ENOMEM;
  }
  if (ck_json_is_string(req->input)) {
    ck_json *m = ck_json_object(a);
    if (m == NULL || ck_json_object_set(m, "role", ck_json_str(a, "user")) != CK_OK ||
        ck_json_object_set(m, "content", ck_json_copy(a, req->input)) != CK_OK ||
        ck_json_array_append(msgs, m) != CK_OK)
      return CK_ENOMEM;
    return CK_OK;
  }
  ck_json *assistant = NULL; /* the message that consecutive function_call items join */
  size_t n = ck_json_array_size(req->input);
  for (size_t i = 0; i < n; i++) {
    const ck_json *it = ck_json_array_get(req->input, i);
    if (!ck_json_is_object(it))
      return CK_EINVAL;
    const char *type = ck_json_object_get_str(it, "type");
    const char *role = ck_json_object_get_str(it, "role");
    ck_json *m = NULL;
    if ((type == NULL || strcmp(type, "message") == 0) && role) {
      if (strcmp(role, "developer") == 0 && !c->developer_role)
        role = "system"; /* most compatible servers reject the developer role */
      m = ck_json_object(a);
      ck_json *content = chat_content(a, ck_json_object_get(it, "content"));
      if (m == NULL || content == NULL)
        return CK_ENOMEM;
      ck_json_object_set(m, "role", ck_json_str(a, role));
      ck_json_object_set(m, "content", content);
      assistant = strcmp(role, "assistant") == 0 ? m : NULL;
    } else if (type && strcmp(type, "function_call") == 0) {
      if (assistant == NULL) {
        m = ck_json_object(a);
        if (m == NULL)
          return CK_ENOMEM;
        ck_json_object_set(m, "role", ck_json_str(a, "assistant"));
        ck_json_object_set(m, "content", ck_json_null(a));
        assistant = m;
      }
      ck_json *calls = ck_json_object_get(assistant, "tool_calls");
      if (calls == NULL) {
        calls = ck_json_array(a);
        if (calls == NULL || ck_json_object_set(assistant, "tool_calls", calls) != CK_OK)
          return CK_ENOMEM;
      }
      ck_json *tc = ck_json_object(a), *fn = ck_json_object(a);
      if (tc == NULL || fn == NULL)
        return CK_ENOMEM;
      ck_json_object_set(fn, "name", ck_json_copy(a, ck_json_object_get(it, "name")));
      ck_json_object_set(fn, "arguments", arguments_string(a, ck_json_object_get(it, "arguments")));
      ck_json_object_set(tc, "id", ck_json_copy(a, ck_json_object_get(it, "call_id")));
      ck_json_object_set(tc, "type", ck_json_str(a, "function"));
      ck_json_object_set(tc, "function", fn);
      if (ck_json_array_append(calls, tc) != CK_OK)
        return CK_ENOMEM;
    } else if (type && strcmp(type, "function_call_output") == 0) {
      m = ck_json_object(a);
      ck_json *out = tool_output(a, ck_json_object_get(it, "output"));
      if (m == NULL || out == NULL)
        return CK_ENOMEM;
      ck_json_object_set(m, "role", ck_json_str(a, "tool"));
      ck_json_object_set(m, "tool_call_id", ck_json_copy(a, ck_json_object_get(it, "call_id")));
      ck_json_object_set(m, "content", out);
      assistant = NULL;
    }
    /* Reasoning items and hosted-tool items have no Chat Completions form: dropped. */
    if (m && ck_json_array_append(msgs, m) != CK_OK)
      return CK_ENOMEM;
  }
  return CK_OK;
}

/* Copies `v`'s member `key` into `dst` when present. */
static void copy_member(ck_arena *a, ck_json *dst, const ck_json *v, const char *key) {
  const ck_json *m = ck_json_object_get(v, key);
  if (m)
    ck_json_object_set(dst, key, ck_json_copy(a, m));
}

/* Tools in the shape the API wants: nested under "function" for Chat, flat for Responses. */
static ck_json *convert_tools(ck_arena *a, const ck_json *tools, bool chat) {
  ck_json *arr = ck_json_array(a);
  size_t n = ck_json_array_size(tools);
  for (size_t i = 0; arr && i < n; i++) {
    const ck_json *t = ck_json_array_get(tools, i);
    const ck_json *fn = ck_json_object_get(t, "function");
    const char *type = ck_json_object_get_str(t, "type");
    ck_json *o = NULL;
    if (chat && fn == NULL && type && strcmp(type, "function") == 0) {
      ck_json *f = ck_json_object(a);
      o = ck_json_object(a);
      if (f == NULL || o == NULL)
        return NULL;
      copy_member(a, f, t, "name");
      copy_member(a, f, t, "description");
      copy_member(a, f, t, "parameters");
      copy_member(a, f, t, "strict");
      ck_json_object_set(o, "type", ck_json_str(a, "function"));
      ck_json_object_set(o, "function", f);
    } else if (!chat && ck_json_is_object(fn)) {
      o = ck_json_object(a);
      if (o == NULL)
        return NULL;
      ck_json_object_set(o, "type", ck_json_str(a, "function"));
      copy_member(a, o, fn, "name");
      copy_member(a, o, fn, "description");
      copy_member(a, o, fn, "parameters");
      copy_member(a, o, fn, "strict");
    } else if (chat && fn == NULL) {
      continue; /* hosted tools (web_search, ...) exist only in the Responses API */
    } else {
      o = ck_json_copy(a, t);
    }
    if (o == NULL || ck_json_array_append(arr, o) != CK_OK)
      return NULL;
  }
  return arr;
}

static ck_json *convert_tool_choice(ck_arena *a, const ck_json *tc, bool chat) {
  if (!ck_json_is_object(tc))
    return ck_json_copy(a, tc);
  const ck_json *fn = ck_json_object_get(tc, "function");
  const ck_json *name = ck_json_object_get(tc, "name");
  ck_json *o = ck_json_object(a);
  if (o == NULL)
    return NULL;
  if (chat && fn == NULL && name) {
    ck_json *f = ck_json_object(a);
    if (f == NULL)
      return NULL;
    ck_json_object_set(f, "name", ck_json_copy(a, name));
    ck_json_object_set(o, "type", ck_json_str(a, "function"));
    ck_json_object_set(o, "function", f);
    return o;
  }
  if (!chat && ck_json_is_object(fn)) {
    ck_json_object_set(o, "type", ck_json_str(a, "function"));
    ck_json_object_set(o, "name", ck_json_copy(a, ck_json_object_get(fn, "name")));
    return o;
  }
  return ck_json_copy(a, tc);
}

int ck__model_build_body(const ck_model_client *c, const ck_model_request *req, ck_buf *out) {
  const char *model = req->model && req->model[0] ? req->model : c->model;
  if (model == NULL || model[0] == '\0')
    return CK_EINVAL;
  if (!ck_json_is_array(req->input) && !ck_json_is_string(req->input))
    return CK_EINVAL;
  if (req->tools && !ck_json_is_array(req->tools))
    return CK_EINVAL;
  if (req->extra && !ck_json_is_object(req->extra))
    return CK_EINVAL;
  bool chat = c->api == CK_MODEL_API_CHAT;
  ck_arena *a = ck_arena_new(0);
  if (a == NULL)
    return CK_ENOMEM;
  int rc = CK_ENOMEM;
  ck_json *body = ck_json_object(a);
  if (body == NULL)
    goto done;
  ck_json_object_set(body, "model", ck_json_str(a, model));
  if (chat) {
    ck_json *msgs = ck_json_array(a);
    if (msgs == NULL)
      goto done;
    if ((rc = chat_messages(c, a, req, msgs)) != CK_OK)
      goto done;
    rc = CK_ENOMEM;
    ck_json_object_set(body, "messages", msgs);
  } else {
    if (req->instructions)
      ck_json_object_set(body, "instructions", ck_json_str(a, req->instructions));
    ck_json *in = ck_json_copy(a, req->input);
    if (in == NULL || ck_json_object_set(body, "input", in) != CK_OK)
      goto done;
  }
  size_t ntools = ck_json_array_size(req->tools);
  if (ntools) {
    ck_json *tools = convert_tools(a, req->tools, chat);
    if (tools == NULL || ck_json_object_set(body, "tools", tools) != CK_OK)
      goto done;
  }
  if (req->tool_choice) {
    ck_json *tc = convert_tool_choice(a, req->tool_choice, chat);
    if (tc == NULL || ck_json_object_set(body, "tool_choice", tc) != CK_OK)
      goto done;
  }
  /* OpenAI answers 400 to parallel_tool_calls without tools. */
  if (ntools && req->parallel_tool_calls != CK_MODEL_AUTO)
    ck_json_object_set(body, "parallel_tool_calls",
                       ck_json_bool(a, req->parallel_tool_calls == CK_MODEL_ON));
  ck_json_object_set(body, "stream", ck_json_bool(a, true));
  if (chat && c->stream_usage) {
    ck_json *so = ck_json_object(a);
    if (so == NULL || ck_json_object_set(so, "include_usage", ck_json_bool(a, true)) != CK_OK ||
        ck_json_object_set(body, "stream_options", so) != CK_OK)
      goto done;
  }
  for (size_t i = 0; i < ck_json_object_size(req->extra); i++) {
    ck_json *v = ck_json_copy(a, ck_json_object_value(req->extra, i));
    if (v == NULL || ck_json_object_setn(body, ck_json_object_key(req->extra, i),
                                         ck_json_object_key_len(req->extra, i), v) != CK_OK)
      goto done;
  }
  rc = ck_json_write(out, body);
done:
  ck_arena_free(a);
  return rc;
}
