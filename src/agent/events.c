/* The agent loop's ChatKit events from model events (protocol.md §9.2): assistant messages
 * with their text deltas and annotations, reasoning as a workflow, and tool calls recorded for
 * the turn. Everything here runs on the loop thread, in model-call callbacks. */
#include "agent/runtime.h"

#include <chatkit/error.h>

#include <string.h>

static const char *now(ck__run *r) {
  return ck_server_now(ck_stream_server(r->s), r->arena);
}

static ck_json *set(ck_json *o, const char *k, ck_json *v) {
  return ck__json_set(o, k, v);
}

static ck_json *workflow_item(ck__run *r, ck_arena *a, bool with_summary) {
  ck_json *wf = ck_json_object(a);
  set(wf, "type", ck_json_str(a, "reasoning"));
  ck_json *tasks = ck_json_array(a);
  if (r->thought_started) {
    ck_json *task = ck_json_object(a);
    set(task, "status_indicator", ck_json_str(a, "none"));
    set(task, "type", ck_json_str(a, "thought"));
    set(task, "content", ck_json_strn(a, r->thought.data ? r->thought.data : "", r->thought.len));
    ck_json_array_append(tasks, task);
  }
  set(wf, "tasks", tasks);
  if (with_summary) {
    int64_t secs = (r->clock_now_us() - r->wf_start_us) / 1000000;
    ck_json *sum = ck_json_object(a);
    set(sum, "duration", ck_json_int(a, secs < 0 ? 0 : secs));
    set(wf, "summary", sum);
  }
  set(wf, "expanded", ck_json_bool(a, false));
  ck_json *item = ck_json_object(a);
  set(item, "id", ck_json_str(a, r->wf_id));
  set(item, "thread_id", ck_json_str(a, r->thread_id));
  set(item, "created_at", ck_json_str(a, r->wf_created));
  set(item, "type", ck_json_str(a, "workflow"));
  return set(item, "workflow", wf);
}

/* A reasoning workflow ends when visible output starts (the reference's end_workflow). */
void ck__run_end_tool_workflow(ck__run *r) {
  if (!atomic_exchange(&r->tool_workflow, false))
    return;
  if (ck_stream_push_workflow(r->s, CK_WORKFLOW_END, NULL, 0, false) == CK_ECANCELLED)
    atomic_store(&r->cancelled, true);
}

void ck__run_close_workflow(ck__run *r) {
  if (!r->wf_open)
    return;
  r->wf_open = false;
  ck_arena *a = r->scratch;
  ck__run_push(r, ck_event_item(a, "thread.item.done", workflow_item(r, a, true)));
  ck_arena_reset(a);
}

static void on_reasoning(ck__run *r, const char *text, size_t len) {
  ck_arena *a = r->scratch;
  if (!r->wf_open) {
    ck__run_end_tool_workflow(r); /* the model's reasoning gets a workflow of its own */
    r->wf_open = true;
    r->thought_started = false;
    ck_buf_reset(&r->thought);
    r->wf_id = ck_server_generate_id(ck_stream_server(r->s), r->arena, "workflow", NULL);
    r->wf_created = now(r);
    r->wf_start_us = r->clock_now_us();
    ck__run_push(r, ck_event_item(a, "thread.item.added", workflow_item(r, a, false)));
  }
  bool first = !r->thought_started;
  r->thought_started = true;
  ck_buf_append(&r->thought, text, len);
  ck_json *task = ck_json_object(a);
  set(task, "status_indicator", ck_json_str(a, "none"));
  set(task, "type", ck_json_str(a, "thought"));
  set(task, "content", ck_json_strn(a, r->thought.data, r->thought.len));
  ck_json *upd = ck_json_object(a);
  set(upd, "type", ck_json_str(a, first ? "workflow.task.added" : "workflow.task.updated"));
  set(upd, "task_index", ck_json_int(a, 0));
  set(upd, "task", task);
  ck__run_push(r, ck_event_item_updated(a, r->wf_id, upd));
  ck_arena_reset(a);
}

static void open_message(ck__run *r, const char *item_id) {
  /* A visible item closes the open workflow (protocol.md §9.2), the tools' one included. */
  ck__run_close_workflow(r);
  ck__run_end_tool_workflow(r);
  ck_arena *a = r->scratch;
  r->msg_open = true;
  r->msg_id = item_id ? ck_arena_strdup(r->arena, item_id)
                      : ck_server_generate_id(ck_stream_server(r->s), r->arena, "message", NULL);
  r->msg_created = now(r);
  r->msg_annotations = ck_json_array(r->arena);
  ck_json *item = ck_item_assistant_message(a, r->msg_id, r->thread_id, r->msg_created, NULL);
  ck__run_push(r, ck_event_item(a, "thread.item.added", item));
  ck_json *part = ck_assistant_content(a, "", 0);
  ck__run_push(r, ck_event_item_updated(a, r->msg_id, ck_update_content_part(a, false, 0, part)));
  ck_arena_reset(a);
}

void ck__run_close_message(ck__run *r) {
  if (!r->msg_open)
    return;
  r->msg_open = false;
  /* content_part.done and thread.item.done come from the pipeline's own record of the message
   * (its text and annotations), so the run keeps no copy of the text. */
  if (ck_stream_push_message_done(r->s, r->msg_id) == CK_ECANCELLED)
    atomic_store(&r->cancelled, true);
}

static void on_text(ck__run *r, const char *text, size_t len) {
  if (!r->msg_open)
    open_message(r, NULL);
  if (ck_stream_push_text_delta(r->s, r->msg_id, 0, text, len) == CK_ECANCELLED)
    atomic_store(&r->cancelled, true);
}

/* Model annotations become ChatKit sources (protocol.md §9.2): url and file citations are
 * kept, anything else dropped; indices count only kept annotations. */
static void on_annotation(ck__run *r, const ck_json *ann) {
  const char *type = ck_json_object_get_str(ann, "type");
  ck_arena *a = r->arena;
  ck_json *source = ck_json_object(a);
  const ck_json *index = NULL;
  if (type == NULL || !r->msg_open) {
    return;
  } else if (strcmp(type, "url_citation") == 0 && ck_json_object_get_str(ann, "url")) {
    const char *title = ck_json_object_get_str(ann, "title");
    set(source, "title", ck_json_str(a, title ? title : ck_json_object_get_str(ann, "url")));
    set(source, "type", ck_json_str(a, "url"));
    set(source, "url", ck_json_copy(a, ck_json_object_get(ann, "url")));
    index = ck_json_object_get(ann, "end_index");
  } else if ((strcmp(type, "file_citation") == 0 || strcmp(type, "container_file_citation") == 0) &&
             ck_json_str_len(ck_json_object_get(ann, "filename")) > 0) {
    set(source, "title", ck_json_copy(a, ck_json_object_get(ann, "filename")));
    set(source, "type", ck_json_str(a, "file"));
    set(source, "filename", ck_json_copy(a, ck_json_object_get(ann, "filename")));
    index = ck_json_object_get(ann, type[0] == 'f' ? "index" : "end_index");
  } else {
    return;
  }
  ck_json *out = ck_json_object(a);
  set(out, "type", ck_json_str(a, "annotation"));
  set(out, "source", source);
  if (ck_json_is_int(index))
    set(out, "index", ck_json_copy(a, index));
  size_t n = ck_json_array_size(r->msg_annotations);
  ck_json_array_append(r->msg_annotations, out);
  ck_arena *s = r->scratch;
  ck_json *upd = ck_json_object(s);
  set(upd, "type", ck_json_str(s, "assistant_message.content_part.annotation_added"));
  set(upd, "content_index", ck_json_int(s, 0));
  set(upd, "annotation_index", ck_json_int(s, (int64_t)n));
  set(upd, "annotation", ck_json_copy(s, out));
  ck__run_push(r, ck_event_item_updated(s, r->msg_id, upd));
  ck_arena_reset(s);
}

void ck__run_on_model_event(ck_model_call *call, const ck_model_event *ev, void *ud) {
  ck__run *r = ud;
  if (ev->type == CK_MODEL_EV_USAGE) {
    ck_metrics_model_tokens(r->ag->cfg.metrics, ev->usage.input_tokens, ev->usage.output_tokens);
    if (!r->ended) /* the stream may be gone once the run ended */
      ck_stream_add_usage(r->s, ev->usage.input_tokens, ev->usage.output_tokens);
  }
  if (r->title_call) {
    if (ev->type == CK_MODEL_EV_TEXT_DELTA)
      ck_buf_append(&r->title, ev->text, ev->text_len);
    return;
  }
  switch (ev->type) {
  case CK_MODEL_EV_MESSAGE_START:
    if (r->msg_open)
      ck__run_close_message(r);
    open_message(r, ev->item_id);
    break;
  case CK_MODEL_EV_TEXT_DELTA:
  case CK_MODEL_EV_REFUSAL_DELTA:
    on_text(r, ev->text, ev->text_len);
    break;
  case CK_MODEL_EV_TEXT_DONE:
    ck__run_close_message(r);
    break;
  case CK_MODEL_EV_REASONING_DELTA:
    on_reasoning(r, ev->text, ev->text_len);
    break;
  case CK_MODEL_EV_ANNOTATION:
    on_annotation(r, ev->annotation);
    break;
  case CK_MODEL_EV_TOOL_CALL: {
    ck_arena *a = r->arena;
    ck_json *c = ck_json_object(a);
    if (ev->tool_call.id)
      set(c, "id", ck_json_str(a, ev->tool_call.id));
    set(c, "call_id", ck_json_str(a, ev->tool_call.call_id));
    set(c, "name", ck_json_str(a, ev->tool_call.name));
    set(c, "arguments", ck_json_strn(a, ev->tool_call.arguments, ev->tool_call.arguments_len));
    ck_json_array_append(r->calls, c);
    break;
  }
  default:
    break;
  }
}
