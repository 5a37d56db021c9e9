/* Script rendering for the mock model server: each step becomes SSE frames in the Chat
 * Completions or Responses wire format (see mock_model.h for the step vocabulary). */
#include "support/mock_internal.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <string.h>

/* ---- Rendering ------------------------------------------------------------------------ */

static int add_frame(render *r, const char *data, size_t len, int action) {
  mstream *s = r->s;
  if (s->nframes == s->cap) {
    size_t n = s->cap ? s->cap * 2 : 16;
    frame *f = ck_arena_alloc(r->a, n * sizeof(*f));
    if (f == NULL)
      return -1;
    if (s->nframes)
      memcpy(f, s->frames, s->nframes * sizeof(*f));
    s->frames = f;
    s->cap = n;
  }
  s->frames[s->nframes++] = (frame){data, len, r->pending_delay, action};
  r->pending_delay = 0;
  return 0;
}

/* Adds one SSE event: optional "event:" line, one "data:" line, blank line. */
static int add_event(render *r, const char *event, const char *json, size_t len) {
  ck_buf b;
  ck_buf_init(&b, 0);
  if (event)
    ck_buf_printf(&b, "event: %s%s", event, r->eol);
  ck_buf_puts(&b, "data: ");
  ck_buf_append(&b, json, len);
  ck_buf_printf(&b, "%s%s", r->eol, r->eol);
  char *p = ck_arena_strndup(r->a, b.data, b.len);
  size_t n = b.len;
  ck_buf_free(&b);
  return p ? add_frame(r, p, n, F_WRITE) : -1;
}

/* Serialises `obj` (adding sequence_number for Responses) and adds it as an event. */
static int add_json(render *r, const char *event, ck_json *obj) {
  if (!r->chat)
    ck_json_object_set(obj, "sequence_number", ck_json_int(r->a, r->seq++));
  size_t n = 0;
  char *s = ck_json_dumps(r->a, obj, &n);
  return s ? add_event(r, r->chat ? NULL : event, s, n) : -1;
}

static ck_json *obj(render *r) {
  return ck_json_object(r->a);
}

static void set_str(render *r, ck_json *o, const char *k, const char *v) {
  ck_json_object_set(o, k, ck_json_str(r->a, v));
}

static void set_int(render *r, ck_json *o, const char *k, int64_t v) {
  ck_json_object_set(o, k, ck_json_int(r->a, v));
}

/* A chat.completion.chunk around `choice` (NULL: "choices":[]). */
static ck_json *chat_chunk(render *r, ck_json *choice) {
  ck_json *c = obj(r);
  set_str(r, c, "id", "chatcmpl-mock");
  set_str(r, c, "object", "chat.completion.chunk");
  set_int(r, c, "created", 1700000000);
  set_str(r, c, "model", r->model);
  ck_json *arr = ck_json_array(r->a);
  if (choice)
    ck_json_array_append(arr, choice);
  ck_json_object_set(c, "choices", arr);
  return c;
}

static ck_json *chat_choice(render *r, ck_json *delta, const char *finish) {
  ck_json *ch = obj(r);
  set_int(r, ch, "index", 0);
  ck_json_object_set(ch, "delta", delta ? delta : obj(r));
  ck_json_object_set(ch, "finish_reason", finish ? ck_json_str(r->a, finish) : ck_json_null(r->a));
  return ch;
}

/* Length of the next piece of `s` of about `n` bytes, never cutting a UTF-8 sequence. */
static size_t piece(const char *s, size_t len, size_t n) {
  if (n == 0 || n >= len)
    return len;
  while (n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
    n++;
  return n;
}

size_t mock_step_size(const ck_json *step, const char *key, size_t def) {
  int64_t v = 0;
  if (ck_json_int_value(ck_json_object_get(step, key), &v) != CK_OK || v < 0)
    return def;
  return (size_t)v;
}

/* Text-like steps: one chunk/event per piece. `field` is the Chat delta key. */
static void chat_pieces(render *r, const char *field, const ck_json *text, const ck_json *step) {
  const char *s = ck_json_str_value(text);
  size_t len = ck_json_str_len(text), chunk = mock_step_size(step, "chunk", 0);
  uint32_t gap = (uint32_t)mock_step_size(step, "gap_ms", 0);
  for (size_t off = 0; off < len;) {
    size_t n = piece(s + off, len - off, chunk);
    ck_json *d = obj(r);
    ck_json_object_set(d, field, ck_json_strn(r->a, s + off, n));
    add_json(r, NULL, chat_chunk(r, chat_choice(r, d, NULL)));
    off += n;
    if (off < len)
      r->pending_delay = gap;
  }
}

static void chat_tool_call(render *r, const ck_json *tc, uint32_t gap) {
  const char *args = ck_json_object_get_str(tc, "arguments");
  args = args ? args : "";
  size_t alen = strlen(args), frag = mock_step_size(tc, "fragment", 0);
  bool whole = ck_json_bool_value(ck_json_object_get(tc, "whole"));
  int64_t index = (int64_t)mock_step_size(tc, "index", 0);
  for (size_t off = 0, first = 1; first || off < alen; first = 0) {
    size_t n = whole ? alen : (first ? 0 : piece(args + off, alen - off, frag));
    ck_json *call = obj(r), *fn = obj(r);
    if (!ck_json_bool_value(ck_json_object_get(tc, "no_index")))
      set_int(r, call, "index", index);
    if (first) {
      set_str(r, call, "id", ck_json_object_get_str(tc, "id"));
      set_str(r, call, "type", "function");
      set_str(r, fn, "name", ck_json_object_get_str(tc, "name"));
    }
    ck_json_object_set(fn, "arguments", ck_json_strn(r->a, args + off, n));
    ck_json_object_set(call, "function", fn);
    ck_json *arr = ck_json_array(r->a), *d = obj(r);
    ck_json_array_append(arr, call);
    ck_json_object_set(d, "tool_calls", arr);
    add_json(r, NULL, chat_chunk(r, chat_choice(r, d, NULL)));
    off += n;
    if (off < alen)
      r->pending_delay = gap;
    if (whole)
      break;
  }
}

static ck_json *resp_object(render *r, const char *status) {
  ck_json *o = obj(r);
  set_str(r, o, "id", "resp_mock");
  set_str(r, o, "object", "response");
  set_str(r, o, "status", status);
  set_str(r, o, "model", r->model);
  ck_json_object_set(o, "output", ck_json_array(r->a));
  return o;
}

static void resp_simple(render *r, const char *type, ck_json *o) {
  set_str(r, o, "type", type);
  add_json(r, type, o);
}

static void resp_item_event(render *r, const char *type, ck_json *item) {
  ck_json *e = obj(r);
  set_int(r, e, "output_index", r->out_index);
  ck_json_object_set(e, "item", item);
  resp_simple(r, type, e);
}

static void resp_text(render *r, const ck_json *step) {
  char id[32];
  snprintf(id, sizeof(id), "msg_mock_%d", r->msg_n++);
  const char *mid = ck_json_object_get_str(step, "id") ? ck_json_object_get_str(step, "id") : id;
  ck_json *item = obj(r);
  set_str(r, item, "id", mid);
  set_str(r, item, "type", "message");
  set_str(r, item, "role", "assistant");
  set_str(r, item, "status", "in_progress");
  ck_json_object_set(item, "content", ck_json_array(r->a));
  resp_item_event(r, "response.output_item.added", item);
  const ck_json *text = ck_json_object_get(step, "text");
  const char *s = ck_json_str_value(text);
  size_t len = ck_json_str_len(text), chunk = mock_step_size(step, "chunk", 0);
  uint32_t gap = (uint32_t)mock_step_size(step, "gap_ms", 0);
  for (size_t off = 0; off < len;) {
    size_t n = piece(s + off, len - off, chunk);
    ck_json *e = obj(r);
    set_str(r, e, "item_id", mid);
    set_int(r, e, "output_index", r->out_index);
    set_int(r, e, "content_index", 0);
    ck_json_object_set(e, "delta", ck_json_strn(r->a, s + off, n));
    resp_simple(r, "response.output_text.delta", e);
    off += n;
    if (off < len)
      r->pending_delay = gap;
  }
  const ck_json *anns = ck_json_object_get(step, "annotations");
  for (size_t i = 0; i < ck_json_array_size(anns); i++) {
    ck_json *e = obj(r);
    set_str(r, e, "item_id", mid);
    set_int(r, e, "output_index", r->out_index);
    set_int(r, e, "annotation_index", (int64_t)i);
    ck_json_object_set(e, "annotation", ck_json_copy(r->a, ck_json_array_get(anns, i)));
    resp_simple(r, "response.output_text.annotation.added", e);
  }
  ck_json *done = obj(r);
  set_str(r, done, "item_id", mid);
  set_int(r, done, "output_index", r->out_index);
  ck_json_object_set(done, "text", ck_json_copy(r->a, text));
  resp_simple(r, "response.output_text.done", done);
  ck_json *fin = ck_json_copy(r->a, item);
  set_str(r, fin, "status", "completed");
  resp_item_event(r, "response.output_item.done", fin);
  r->out_index++;
}

static void resp_reasoning(render *r, const ck_json *step) {
  char id[32];
  snprintf(id, sizeof(id), "rs_mock_%d", r->rs_n++);
  ck_json *item = obj(r);
  set_str(r, item, "id", id);
  set_str(r, item, "type", "reasoning");
  ck_json_object_set(item, "summary", ck_json_array(r->a));
  resp_item_event(r, "response.output_item.added", item);
  const ck_json *text = ck_json_object_get(step, "reasoning");
  const char *s = ck_json_str_value(text);
  size_t len = ck_json_str_len(text), chunk = mock_step_size(step, "chunk", 0);
  for (size_t off = 0; off < len;) {
    size_t n = piece(s + off, len - off, chunk);
    ck_json *e = obj(r);
    set_str(r, e, "item_id", id);
    set_int(r, e, "output_index", r->out_index);
    set_int(r, e, "summary_index", 0);
    ck_json_object_set(e, "delta", ck_json_strn(r->a, s + off, n));
    resp_simple(r, "response.reasoning_summary_text.delta", e);
    off += n;
  }
  resp_item_event(r, "response.output_item.done", ck_json_copy(r->a, item));
  r->out_index++;
}

static void resp_tool_call(render *r, const ck_json *tc, uint32_t gap) {
  char id[32];
  snprintf(id, sizeof(id), "fc_mock_%d", r->fc_n++);
  const char *item_id =
      ck_json_object_get_str(tc, "item_id") ? ck_json_object_get_str(tc, "item_id") : id;
  const char *args = ck_json_object_get_str(tc, "arguments");
  args = args ? args : "";
  ck_json *item = obj(r);
  set_str(r, item, "id", item_id);
  set_str(r, item, "type", "function_call");
  set_str(r, item, "call_id", ck_json_object_get_str(tc, "id"));
  set_str(r, item, "name", ck_json_object_get_str(tc, "name"));
  set_str(r, item, "arguments", "");
  set_str(r, item, "status", "in_progress");
  resp_item_event(r, "response.output_item.added", item);
  size_t alen = strlen(args), frag = mock_step_size(tc, "fragment", 0);
  for (size_t off = 0; off < alen;) {
    size_t n = piece(args + off, alen - off, frag);
    ck_json *e = obj(r);
    set_str(r, e, "item_id", item_id);
    set_int(r, e, "output_index", r->out_index);
    ck_json_object_set(e, "delta", ck_json_strn(r->a, args + off, n));
    resp_simple(r, "response.function_call_arguments.delta", e);
    off += n;
    if (off < alen)
      r->pending_delay = gap;
  }
  ck_json *done = obj(r);
  set_str(r, done, "item_id", item_id);
  set_int(r, done, "output_index", r->out_index);
  set_str(r, done, "arguments", args);
  resp_simple(r, "response.function_call_arguments.done", done);
  ck_json *fin = ck_json_copy(r->a, item);
  set_str(r, fin, "arguments", args);
  set_str(r, fin, "status", "completed");
  resp_item_event(r, "response.output_item.done", fin);
  r->out_index++;
}

static void render_step(render *r, const ck_json *st) {
  const ck_json *v;
  uint32_t gap = (uint32_t)mock_step_size(st, "gap_ms", 0);
  if ((v = ck_json_object_get(st, "sleep_ms")) != NULL) {
    r->pending_delay += (uint32_t)mock_step_size(st, "sleep_ms", 0);
  } else if (ck_json_object_get(st, "role")) {
    if (r->chat) {
      ck_json *d = obj(r);
      set_str(r, d, "role", "assistant");
      set_str(r, d, "content", ""); /* the leading empty delta real servers send */
      add_json(r, NULL, chat_chunk(r, chat_choice(r, d, NULL)));
    }
  } else if ((v = ck_json_object_get(st, "text")) != NULL) {
    if (r->chat)
      chat_pieces(r, "content", v, st);
    else
      resp_text(r, st);
  } else if ((v = ck_json_object_get(st, "reasoning")) != NULL) {
    const char *field = ck_json_object_get_str(st, "field");
    if (r->chat)
      chat_pieces(r, field ? field : "reasoning_content", v, st);
    else
      resp_reasoning(r, st);
  } else if ((v = ck_json_object_get(st, "refusal")) != NULL) {
    if (r->chat)
      chat_pieces(r, "refusal", v, st);
  } else if ((v = ck_json_object_get(st, "tool_call")) != NULL) {
    if (r->chat)
      chat_tool_call(r, v, gap);
    else
      resp_tool_call(r, v, gap);
  } else if ((v = ck_json_object_get(st, "usage")) != NULL) {
    if (r->chat) {
      ck_json *c = chat_chunk(r, NULL);
      ck_json_object_set(c, "usage", ck_json_copy(r->a, v));
      add_json(r, NULL, c);
    } else {
      r->usage = v;
    }
  } else if ((v = ck_json_object_get(st, "finish")) != NULL) {
    if (r->chat) {
      add_json(r, NULL, chat_chunk(r, chat_choice(r, NULL, ck_json_str_value(v))));
    } else {
      ck_json *resp = resp_object(r, "completed");
      if (r->usage)
        ck_json_object_set(resp, "usage", ck_json_copy(r->a, r->usage));
      ck_json *e = obj(r);
      ck_json_object_set(e, "response", resp);
      resp_simple(r, "response.completed", e);
    }
  } else if ((v = ck_json_object_get(st, "incomplete")) != NULL) {
    ck_json *resp = resp_object(r, "incomplete"), *det = obj(r), *e = obj(r);
    ck_json_object_set(det, "reason", ck_json_copy(r->a, v));
    ck_json_object_set(resp, "incomplete_details", det);
    ck_json_object_set(e, "response", resp);
    resp_simple(r, "response.incomplete", e);
  } else if ((v = ck_json_object_get(st, "failed")) != NULL) {
    ck_json *resp = resp_object(r, "failed"), *e = obj(r);
    ck_json_object_set(resp, "error", ck_json_copy(r->a, v));
    ck_json_object_set(e, "response", resp);
    resp_simple(r, "response.failed", e);
  } else if ((v = ck_json_object_get(st, "error")) != NULL) {
    if (r->chat) {
      ck_json *e = obj(r);
      ck_json_object_set(e, "error", ck_json_copy(r->a, v));
      add_json(r, NULL, e);
    } else {
      ck_json *e = ck_json_copy(r->a, v);
      resp_simple(r, "error", e);
    }
  } else if (ck_json_object_get(st, "done")) {
    add_event(r, NULL, "[DONE]", 6);
  } else if ((v = ck_json_object_get(st, "comment")) != NULL) {
    char *p = ck_arena_printf(r->a, ":%s%s", ck_json_str_value(v), r->eol);
    add_frame(r, p, strlen(p), F_WRITE);
  } else if ((v = ck_json_object_get(st, "raw")) != NULL) {
    add_frame(r, ck_json_str_value(v), ck_json_str_len(v), F_WRITE);
  } else if (ck_json_object_get(st, "hang")) {
    add_frame(r, NULL, 0, F_HANG);
  } else if (ck_json_object_get(st, "reset")) {
    add_frame(r, NULL, 0, F_RESET);
  } else if (ck_json_object_get(st, "end")) {
    add_frame(r, NULL, 0, F_END);
  }
}

void mock_render(render *r, const ck_json *script) {
  if (!r->chat) {
    ck_json *e = obj(r);
    ck_json_object_set(e, "response", resp_object(r, "in_progress"));
    resp_simple(r, "response.created", e);
  }
  const ck_json *steps = ck_json_object_get(script, "steps");
  for (size_t i = 0; i < ck_json_array_size(steps); i++)
    render_step(r, ck_json_array_get(steps, i));
}
