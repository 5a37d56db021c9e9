/* Chat Completions streams (and whole answers) -> neutral events.
 *
 * Text, refusal and reasoning deltas are delivered as they arrive. Tool calls are assembled
 * from fragments with the tolerant slot rules of the reference (llm-apis.md §1.4): by
 * "index", but a new id at a known index opens a new slot (Gemini-style backends send every
 * parallel call at index 0), by id when the index is missing, else the latest slot. They are
 * delivered whole when the stream ends, because only then are the fragments known to be
 * complete (servers interleave calls and may send the last fragment with finish_reason). */
#include "upstream/model_internal.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <string.h>

static bool str_eq(const ck_buf *b, const char *s, size_t n) {
  return b->len == n && (n == 0 || memcmp(b->data, s, n) == 0);
}

static ck__tool_slot *find_slot(ck_model_call *call, const ck_json *tc) {
  ck__stream *st = &call->st;
  int64_t idx = -1;
  if (ck_json_int_value(ck_json_object_get(tc, "index"), &idx) != CK_OK)
    idx = -1;
  const ck_json *idj = ck_json_object_get(tc, "id");
  const char *id = ck_json_str_len(idj) ? ck_json_str_value(idj) : NULL;
  size_t idlen = ck_json_str_len(idj);
  if (idx >= 0) {
    for (size_t i = st->nslots; i-- > 0;) {
      ck__tool_slot *s = &st->slots[i];
      if (s->index != idx)
        continue;
      if (id && s->id.len && !str_eq(&s->id, id, idlen))
        break; /* same index, new id: a new call */
      return s;
    }
  } else if (id) {
    for (size_t i = 0; i < st->nslots; i++)
      if (str_eq(&st->slots[i].id, id, idlen))
        return &st->slots[i];
  } else if (st->nslots) {
    return &st->slots[st->nslots - 1];
  }
  ck__tool_slot *s = ck__stream_new_slot(st, call->client->cfg.max_event_bytes);
  if (s)
    s->index = (long)idx;
  return s;
}

/* Applies one tool_calls entry. Returns nonzero when the stream must stop. */
static int apply_tool_call(ck_model_call *call, const ck_json *tc) {
  ck__tool_slot *s = find_slot(call, tc);
  if (s == NULL)
    return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                          "more than %d tool calls", CK__MAX_TOOL_CALLS);
  const ck_json *fn = ck_json_object_get(tc, "function");
  const ck_json *id = ck_json_object_get(tc, "id");
  const ck_json *name = ck_json_object_get(fn, "name");
  const ck_json *args = ck_json_object_get(fn, "arguments");
  int rc = CK_OK;
  if (ck_json_str_len(id)) {
    ck_buf_reset(&s->id);
    rc = ck_buf_append(&s->id, ck_json_str_value(id), ck_json_str_len(id));
  }
  if (rc == CK_OK && ck_json_str_len(name)) {
    /* A name is set, never appended: servers repeat it on later fragments. */
    ck_buf_reset(&s->name);
    rc = ck_buf_append(&s->name, ck_json_str_value(name), ck_json_str_len(name));
  }
  if (rc == CK_OK && ck_json_is_string(args))
    rc = ck_buf_append(&s->args, ck_json_str_value(args), ck_json_str_len(args));
  else if (rc == CK_OK && ck_json_is_object(args)) {
    /* A few servers send whole arguments as an object instead of a JSON string. */
    rc = ck_json_write(&s->args, args);
  }
  if (rc != CK_OK)
    return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, rc, false, NULL, "tool call too large");
  return 0;
}

static int emit_text(ck_model_call *call, ck_model_event_type type, const ck_json *s) {
  ck_model_event ev = {.type = type, .text = ck_json_str_value(s), .text_len = ck_json_str_len(s)};
  return ck__model_emit(call, &ev);
}

/* Handles one choice's delta (or, for a whole answer, its message). */
static int apply_delta(ck_model_call *call, const ck_json *delta) {
  ck__stream *st = &call->st;
  const ck_json *reasoning = ck_json_object_get(delta, "reasoning_content");
  if (!ck_json_str_len(reasoning))
    reasoning = ck_json_object_get(delta, "reasoning");
  if (ck_json_str_len(reasoning) && emit_text(call, CK_MODEL_EV_REASONING_DELTA, reasoning))
    return 1;
  const ck_json *content = ck_json_object_get(delta, "content");
  if (ck_json_str_len(content)) {
    /* A leading "" delta opens nothing: only real text starts a message. */
    if (!st->message_open) {
      st->message_open = true;
      ck_model_event ev = {.type = CK_MODEL_EV_MESSAGE_START};
      if (ck__model_emit(call, &ev))
        return 1;
    }
    if (call->keep_text &&
        ck_buf_append(&st->text, ck_json_str_value(content), ck_json_str_len(content)) != CK_OK)
      return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                            "answer text larger than %zu bytes", call->client->cfg.max_event_bytes);
    if (emit_text(call, CK_MODEL_EV_TEXT_DELTA, content))
      return 1;
  }
  const ck_json *refusal = ck_json_object_get(delta, "refusal");
  if (ck_json_str_len(refusal) && emit_text(call, CK_MODEL_EV_REFUSAL_DELTA, refusal))
    return 1;
  const ck_json *calls = ck_json_object_get(delta, "tool_calls");
  for (size_t i = 0; i < ck_json_array_size(calls); i++)
    if (apply_tool_call(call, ck_json_array_get(calls, i)))
      return 1;
  return 0;
}

/* Handles one parsed chunk (or whole answer): errors, usage, choice 0. */
static int apply_chunk(ck_model_call *call, const ck_json *doc, bool whole) {
  ck__stream *st = &call->st;
  const ck_json *err = ck_json_object_get(doc, "error");
  const char *object = ck_json_object_get_str(doc, "object");
  if ((err && !ck_json_is_null(err) && !(ck_json_is_bool(err) && !ck_json_bool_value(err))) ||
      (object && strcmp(object, "error") == 0))
    return ck__model_fail_json(call, CK_MODEL_ERR_UPSTREAM, !call->output, doc);
  const ck_json *usage = ck_json_object_get(doc, "usage");
  if (!ck_json_is_object(usage))
    usage = ck_json_object_get(ck_json_object_get(doc, "x_groq"), "usage");
  if (ck__model_parse_usage(usage, &st->usage))
    st->have_usage = true; /* the last one wins: some servers repeat it on every chunk */
  const ck_json *choices = ck_json_object_get(doc, "choices");
  const ck_json *ch = NULL;
  for (size_t i = 0; i < ck_json_array_size(choices) && ch == NULL; i++) {
    int64_t idx = 0;
    const ck_json *c = ck_json_array_get(choices, i);
    if (ck_json_int_value(ck_json_object_get(c, "index"), &idx) != CK_OK || idx == 0)
      ch = c; /* only choice 0 matters: we never ask for n > 1 */
  }
  if (ch == NULL)
    return 0;
  if (apply_delta(call, ck_json_object_get(ch, whole ? "message" : "delta")))
    return 1;
  const char *fr = ck_json_object_get_str(ch, "finish_reason");
  if (fr) {
    st->finish_seen = true;
    snprintf(st->finish_raw, sizeof(st->finish_raw), "%s", fr);
    if (strcmp(fr, "error") == 0) /* OpenRouter's mid-stream failure */
      return ck__model_fail(call, CK_MODEL_ERR_UPSTREAM, CK_EIO, !call->output, NULL,
                            "the upstream ended the answer with an error");
  }
  return 0;
}

int ck__chat_on_event(void *ud, const char *event, size_t event_len, const char *data,
                      size_t data_len) {
  ck_model_call *call = ud;
  ck__stream *st = &call->st;
  if (st->terminal || call->failed)
    return call->failed;
  if (ck__sse_is_done(data, data_len)) {
    st->terminal = true;
    return 0;
  }
  ck_arena_reset(st->scratch);
  ck_json *doc = NULL;
  ck_json_error jerr;
  if (ck_json_parse(st->scratch, data, data_len, 0, &doc, &jerr) != CK_OK) {
    /* Lost deltas would corrupt the answer or a tool's arguments: never skip silently. */
    return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EINVAL, !call->output, NULL,
                          "malformed stream event (%s): %.200s", jerr.message, data);
  }
  if (event_len == 5 && memcmp(event, "error", 5) == 0)
    return ck__model_fail_json(call, CK_MODEL_ERR_UPSTREAM, !call->output, doc);
  return apply_chunk(call, doc, false);
}

void ck__chat_finish(ck_model_call *call) {
  ck__stream *st = &call->st;
  if (call->failed || call->cancelled)
    return;
  if (!st->terminal && !st->finish_seen) {
    ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EIO, true, "truncated",
                   "the stream ended without a finish reason or [DONE]");
    return;
  }
  if (st->message_open) {
    ck_model_event ev = {.type = CK_MODEL_EV_TEXT_DONE,
                         .text = st->text.data ? st->text.data : "",
                         .text_len = st->text.len};
    if (ck__model_emit(call, &ev))
      return;
  }
  size_t ncalls = 0;
  for (size_t i = 0; i < st->nslots; i++) {
    ck__tool_slot *s = &st->slots[i];
    if (s->name.len == 0) {
      ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EINVAL, false, NULL,
                     "a streamed tool call has no name");
      return;
    }
    char synth[32];
    snprintf(synth, sizeof(synth), "call_%zu", i);
    ck_model_event ev = {.type = CK_MODEL_EV_TOOL_CALL};
    ev.tool_call.call_id = s->id.len ? s->id.data : synth;
    ev.tool_call.name = s->name.data;
    ev.tool_call.arguments = s->args.len ? s->args.data : "{}";
    ev.tool_call.arguments_len = s->args.len ? s->args.len : 2;
    if (ck__model_emit(call, &ev))
      return;
    ncalls++;
  }
  if (st->have_usage) {
    ck_model_event ev = {.type = CK_MODEL_EV_USAGE, .usage = st->usage};
    if (ck__model_emit(call, &ev))
      return;
  }
  /* "Did the model call tools" is decided by the calls, not the reason: OpenAI says "stop"
   * for a forced function and Ollama says "tool_calls" for any. */
  const char *fr = st->finish_raw;
  if (ncalls)
    call->finish = CK_MODEL_FINISH_TOOL_CALLS;
  else if (fr[0] == '\0' || strcmp(fr, "stop") == 0 || strcmp(fr, "eos") == 0)
    call->finish = CK_MODEL_FINISH_STOP;
  else if (strcmp(fr, "length") == 0)
    call->finish = CK_MODEL_FINISH_LENGTH;
  else if (strcmp(fr, "content_filter") == 0)
    call->finish = CK_MODEL_FINISH_CONTENT_FILTER;
  else if (strcmp(fr, "tool_calls") == 0 || strcmp(fr, "function_call") == 0)
    ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EINVAL, false, NULL,
                   "finish_reason tool_calls without any tool call");
  else
    call->finish = CK_MODEL_FINISH_OTHER;
}

void ck__chat_whole(ck_model_call *call, const char *body, size_t len) {
  ck__stream *st = &call->st;
  ck_arena_reset(st->scratch);
  ck_json *doc = NULL;
  ck_json_error jerr;
  if (ck_json_parse(st->scratch, body, len, 0, &doc, &jerr) != CK_OK) {
    ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EINVAL, true, NULL, "malformed JSON answer (%s)",
                   jerr.message);
    return;
  }
  if (apply_chunk(call, doc, true))
    return;
  st->terminal = true;
  ck__chat_finish(call);
}
