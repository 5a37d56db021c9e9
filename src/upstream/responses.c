/* Responses API streams (and whole answers) -> neutral events.
 *
 * The event's JSON "type" drives everything (it equals the SSE event name, which some gateways
 * drop). Items are keyed by their item id. A function call is delivered on
 * response.output_item.done, which is the authority for the final item; calls whose done
 * event never came are delivered from the accumulated deltas at response.completed. The
 * stream ends at the first terminal event (completed, incomplete, failed, error, or a
 * gateway's [DONE] / response.done). */
#include "upstream/model_internal.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <string.h>

static bool type_is(const char *t, const char *want) {
  return t && strcmp(t, want) == 0;
}

static int set_buf(ck_buf *b, const ck_json *s) {
  ck_buf_reset(b);
  if (!ck_json_is_string(s))
    return CK_OK;
  return ck_buf_append(b, ck_json_str_value(s), ck_json_str_len(s));
}

static ck__tool_slot *slot_by_item(ck__stream *st, const char *item_id) {
  if (item_id == NULL)
    return NULL;
  for (size_t i = 0; i < st->nslots; i++)
    if (st->slots[i].id.len && strcmp(st->slots[i].id.data, item_id) == 0)
      return &st->slots[i];
  return NULL;
}

static int emit_slot(ck_model_call *call, ck__tool_slot *s) {
  if (s->delivered)
    return 0;
  s->delivered = true;
  if (s->name.len == 0)
    return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EINVAL, false, NULL,
                          "a function call item has no name");
  ck_model_event ev = {.type = CK_MODEL_EV_TOOL_CALL, .item_id = s->id.len ? s->id.data : NULL};
  ev.tool_call.id = ev.item_id;
  ev.tool_call.call_id = s->call_id.len ? s->call_id.data : (s->id.len ? s->id.data : "call_0");
  ev.tool_call.name = s->name.data;
  ev.tool_call.arguments = s->args.len ? s->args.data : "{}";
  ev.tool_call.arguments_len = s->args.len ? s->args.len : 2;
  return ck__model_emit(call, &ev);
}

/* Copies a function_call item's fields into its slot (creating it). */
static ck__tool_slot *update_slot(ck_model_call *call, const ck_json *item) {
  ck__stream *st = &call->st;
  const char *id = ck_json_object_get_str(item, "id");
  ck__tool_slot *s = slot_by_item(st, id);
  if (s == NULL) {
    s = ck__stream_new_slot(st, call->client->cfg.max_event_bytes);
    if (s == NULL)
      return NULL;
    set_buf(&s->id, ck_json_object_get(item, "id"));
  }
  if (ck_json_str_len(ck_json_object_get(item, "call_id")))
    set_buf(&s->call_id, ck_json_object_get(item, "call_id"));
  if (ck_json_str_len(ck_json_object_get(item, "name")))
    set_buf(&s->name, ck_json_object_get(item, "name"));
  const ck_json *args = ck_json_object_get(item, "arguments");
  if (ck_json_str_len(args) && set_buf(&s->args, args) != CK_OK)
    return NULL;
  return s;
}

static int emit_text(ck_model_call *call, ck_model_event_type type, const char *item_id,
                     const ck_json *s) {
  if (!ck_json_is_string(s))
    return 0;
  ck_model_event ev = {.type = type,
                       .item_id = item_id,
                       .text = ck_json_str_value(s),
                       .text_len = ck_json_str_len(s)};
  return ck__model_emit(call, &ev);
}

/* response.completed / incomplete / done: usage, undelivered calls, the finish reason. */
static int complete(ck_model_call *call, const ck_json *resp, const char *type) {
  ck__stream *st = &call->st;
  st->terminal = true;
  st->finish_seen = true;
  if (st->response_id.len == 0)
    set_buf(&st->response_id, ck_json_object_get(resp, "id"));
  size_t ncalls = 0;
  for (size_t i = 0; i < st->nslots; i++) {
    if (emit_slot(call, &st->slots[i]))
      return 1;
    ncalls++;
  }
  if (ck__model_parse_usage(ck_json_object_get(resp, "usage"), &st->usage)) {
    ck_model_event ev = {.type = CK_MODEL_EV_USAGE, .usage = st->usage};
    if (ck__model_emit(call, &ev))
      return 1;
  }
  const char *reason =
      ck_json_object_get_str(ck_json_object_get(resp, "incomplete_details"), "reason");
  if (type_is(type, "response.incomplete")) {
    snprintf(st->finish_raw, sizeof(st->finish_raw), "%s", reason ? reason : "incomplete");
    call->finish = type_is(reason, "content_filter")      ? CK_MODEL_FINISH_CONTENT_FILTER
                   : type_is(reason, "max_output_tokens") ? CK_MODEL_FINISH_LENGTH
                                                          : CK_MODEL_FINISH_OTHER;
  } else {
    snprintf(st->finish_raw, sizeof(st->finish_raw), "%s", "completed");
    call->finish = ncalls ? CK_MODEL_FINISH_TOOL_CALLS : CK_MODEL_FINISH_STOP;
  }
  return 0;
}

/* Handles one event (or, for a whole answer, a synthesised one). */
static int apply_event(ck_model_call *call, const char *type, const ck_json *doc) {
  ck__stream *st = &call->st;
  const char *item_id = ck_json_object_get_str(doc, "item_id");
  if (type_is(type, "response.created") || type_is(type, "response.in_progress") ||
      type_is(type, "response.queued")) {
    if (st->response_id.len == 0)
      set_buf(&st->response_id, ck_json_object_get(ck_json_object_get(doc, "response"), "id"));
  } else if (type_is(type, "response.output_item.added")) {
    const ck_json *item = ck_json_object_get(doc, "item");
    const char *itype = ck_json_object_get_str(item, "type");
    if (type_is(itype, "message")) {
      set_buf(&st->message_id, ck_json_object_get(item, "id"));
      ck_buf_reset(&st->text);
      st->message_open = true;
      ck_model_event ev = {.type = CK_MODEL_EV_MESSAGE_START,
                           .item_id = st->message_id.len ? st->message_id.data : NULL};
      return ck__model_emit(call, &ev);
    }
    if (type_is(itype, "function_call") && update_slot(call, item) == NULL)
      return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                            "too many or too large function calls");
  } else if (type_is(type, "response.output_text.delta")) {
    const ck_json *d = ck_json_object_get(doc, "delta");
    if (call->keep_text && ck_json_is_string(d) &&
        ck_buf_append(&st->text, ck_json_str_value(d), ck_json_str_len(d)) != CK_OK)
      return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                            "answer text too large");
    return emit_text(call, CK_MODEL_EV_TEXT_DELTA, item_id, d);
  } else if (type_is(type, "response.output_text.done")) {
    const ck_json *t = ck_json_object_get(doc, "text");
    if (ck_json_is_string(t))
      return emit_text(call, CK_MODEL_EV_TEXT_DONE, item_id, t);
    ck_model_event ev = {.type = CK_MODEL_EV_TEXT_DONE,
                         .item_id = item_id,
                         .text = st->text.data ? st->text.data : "",
                         .text_len = st->text.len};
    return ck__model_emit(call, &ev);
  } else if (type_is(type, "response.output_text.annotation.added")) {
    ck_model_event ev = {.type = CK_MODEL_EV_ANNOTATION,
                         .item_id = item_id,
                         .annotation = ck_json_object_get(doc, "annotation")};
    return ev.annotation ? ck__model_emit(call, &ev) : 0;
  } else if (type_is(type, "response.refusal.delta")) {
    return emit_text(call, CK_MODEL_EV_REFUSAL_DELTA, item_id, ck_json_object_get(doc, "delta"));
  } else if (type_is(type, "response.reasoning_summary_text.delta") ||
             type_is(type, "response.reasoning_text.delta")) {
    return emit_text(call, CK_MODEL_EV_REASONING_DELTA, item_id, ck_json_object_get(doc, "delta"));
  } else if (type_is(type, "response.function_call_arguments.delta")) {
    ck__tool_slot *s = slot_by_item(st, item_id);
    const ck_json *d = ck_json_object_get(doc, "delta");
    if (s && ck_json_is_string(d) &&
        ck_buf_append(&s->args, ck_json_str_value(d), ck_json_str_len(d)) != CK_OK)
      return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                            "function call arguments too large");
  } else if (type_is(type, "response.function_call_arguments.done")) {
    ck__tool_slot *s = slot_by_item(st, item_id);
    if (s && ck_json_is_string(ck_json_object_get(doc, "arguments")))
      set_buf(&s->args, ck_json_object_get(doc, "arguments"));
  } else if (type_is(type, "response.output_item.done")) {
    const ck_json *item = ck_json_object_get(doc, "item");
    if (type_is(ck_json_object_get_str(item, "type"), "function_call")) {
      ck__tool_slot *s = update_slot(call, item);
      if (s == NULL)
        return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                              "too many or too large function calls");
      return emit_slot(call, s);
    }
  } else if (type_is(type, "response.completed") || type_is(type, "response.incomplete") ||
             type_is(type, "response.done")) {
    return complete(call, ck_json_object_get(doc, "response"), type);
  } else if (type_is(type, "response.failed")) {
    st->terminal = true;
    const ck_json *resp = ck_json_object_get(doc, "response");
    const ck_json *err = ck_json_object_get(resp, "error");
    const char *code = ck_json_object_get_str(err, "code");
    bool retry =
        !call->output && (type_is(code, "server_error") || type_is(code, "rate_limit_exceeded"));
    if (ck_json_is_object(err))
      return ck__model_fail_json(call, CK_MODEL_ERR_UPSTREAM, retry, err);
    return ck__model_fail(call, CK_MODEL_ERR_UPSTREAM, CK_EIO, retry, NULL, "response.failed");
  } else if (type_is(type, "error")) {
    st->terminal = true;
    const char *code = ck_json_object_get_str(doc, "code");
    if (code == NULL)
      code = ck_json_object_get_str(ck_json_object_get(doc, "error"), "code");
    bool retry =
        !call->output && (type_is(code, "server_error") || type_is(code, "rate_limit_exceeded"));
    return ck__model_fail_json(call, CK_MODEL_ERR_UPSTREAM, retry, doc);
  }
  return 0; /* everything else (content_part, summary_part, hosted tools...) is not needed */
}

int ck__responses_on_event(void *ud, const char *event, size_t event_len, const char *data,
                           size_t data_len) {
  ck_model_call *call = ud;
  ck__stream *st = &call->st;
  if (st->terminal || call->failed)
    return call->failed;
  if (ck__sse_is_done(data, data_len)) {
    st->terminal = true; /* a gateway's addition; the finish is decided at the end */
    return 0;
  }
  ck_arena_reset(st->scratch);
  ck_json *doc = NULL;
  ck_json_error jerr;
  if (ck_json_parse(st->scratch, data, data_len, 0, &doc, &jerr) != CK_OK ||
      !ck_json_is_object(doc))
    return ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EINVAL, !call->output, NULL,
                          "malformed stream event: %.200s", data);
  const char *type = ck_json_object_get_str(doc, "type");
  char evname[96];
  if (type == NULL) {
    /* Some gateways keep only the SSE event name. */
    snprintf(evname, sizeof(evname), "%.*s", (int)(event_len < 95 ? event_len : 95), event);
    type = evname;
  }
  return apply_event(call, type, doc);
}

void ck__responses_finish(ck_model_call *call) {
  ck__stream *st = &call->st;
  if (call->failed || call->cancelled)
    return;
  if (!st->terminal) {
    ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EIO, true, "truncated",
                   "the stream ended before response.completed");
    return;
  }
  if (!st->finish_seen) {
    /* Ended by [DONE] without a completed event: deliver what was assembled. */
    ck_json *empty = ck_json_object(st->scratch);
    if (empty)
      complete(call, empty, "response.completed");
  }
}

void ck__responses_whole(ck_model_call *call, const char *body, size_t len) {
  ck__stream *st = &call->st;
  ck_arena_reset(st->scratch);
  ck_json *resp = NULL;
  if (ck_json_parse(st->scratch, body, len, 0, &resp, NULL) != CK_OK || !ck_json_is_object(resp)) {
    ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_EINVAL, true, NULL, "malformed JSON answer");
    return;
  }
  const ck_json *err = ck_json_object_get(resp, "error");
  if (ck_json_is_object(err)) {
    ck__model_fail_json(call, CK_MODEL_ERR_UPSTREAM, false, err);
    return;
  }
  set_buf(&st->response_id, ck_json_object_get(resp, "id"));
  const ck_json *output = ck_json_object_get(resp, "output");
  for (size_t i = 0; i < ck_json_array_size(output); i++) {
    const ck_json *item = ck_json_array_get(output, i);
    const char *itype = ck_json_object_get_str(item, "type");
    const char *id = ck_json_object_get_str(item, "id");
    if (type_is(itype, "message")) {
      set_buf(&st->message_id, ck_json_object_get(item, "id"));
      ck_model_event ev = {.type = CK_MODEL_EV_MESSAGE_START, .item_id = id};
      if (ck__model_emit(call, &ev))
        return;
      const ck_json *content = ck_json_object_get(item, "content");
      for (size_t k = 0; k < ck_json_array_size(content); k++) {
        const ck_json *part = ck_json_array_get(content, k);
        if (type_is(ck_json_object_get_str(part, "type"), "refusal")) {
          if (emit_text(call, CK_MODEL_EV_REFUSAL_DELTA, id, ck_json_object_get(part, "refusal")))
            return;
          continue;
        }
        const ck_json *text = ck_json_object_get(part, "text");
        if (emit_text(call, CK_MODEL_EV_TEXT_DELTA, id, text) ||
            emit_text(call, CK_MODEL_EV_TEXT_DONE, id, text))
          return;
        const ck_json *anns = ck_json_object_get(part, "annotations");
        for (size_t j = 0; j < ck_json_array_size(anns); j++) {
          ck_model_event ae = {.type = CK_MODEL_EV_ANNOTATION,
                               .item_id = id,
                               .annotation = ck_json_array_get(anns, j)};
          if (ck__model_emit(call, &ae))
            return;
        }
      }
    } else if (type_is(itype, "reasoning")) {
      const ck_json *summary = ck_json_object_get(item, "summary");
      for (size_t k = 0; k < ck_json_array_size(summary); k++)
        if (emit_text(call, CK_MODEL_EV_REASONING_DELTA, id,
                      ck_json_object_get(ck_json_array_get(summary, k), "text")))
          return;
    } else if (type_is(itype, "function_call")) {
      if (update_slot(call, item) == NULL) {
        ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                       "too many or too large function calls");
        return;
      }
    }
  }
  const char *status = ck_json_object_get_str(resp, "status");
  complete(call, resp,
           type_is(status, "incomplete") ? "response.incomplete" : "response.completed");
}
