/* Handler conveniences: assistant text streaming, progress updates and workflows, built from
 * canonical values so they skip validation on the hot path (the reference's AgentContext
 * helpers, protocol.md §9.1). */
#include "pipeline/internal.h"
#include "protocol/datetime.h"

#include <chatkit/error.h>

#include <string.h>

int ck_stream_progress(ck_stream *s, const char *icon, const char *text) {
  ck_json *ev = ck_event_progress(s->scratch, icon, text);
  return ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
}

/* ---- Assistant messages ---- */

int ck_assistant_begin(ck_stream *s, const char *id, ck_assistant **out) {
  ck_assistant *m = ck_arena_calloc(s->arena, sizeof(*m));
  if (m == NULL)
    return CK_ENOMEM;
  m->s = s;
  m->id = id ? ck_arena_strdup(s->arena, id) : ck_stream_new_id(s, "message");
  m->created_at = m->id ? ck_stream_now(s) : NULL;
  if (m->created_at == NULL)
    return CK_ENOMEM;
  ck_buf_init(&m->text, 0);
  m->next = s->messages;
  s->messages = m;
  *out = m;
  const char *tid = ck_json_object_get_str(s->thread, "id");
  ck_arena *a = s->scratch;
  ck_json *item = ck_item_assistant_message(a, m->id, tid, m->created_at, NULL);
  ck_json *ev = item ? ck_event_item(a, "thread.item.added", item) : NULL;
  int rc = ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
  if (rc != CK_OK)
    return rc;
  ck_json *part = ck_assistant_content(s->scratch, "", 0);
  ck_json *upd = part ? ck_update_content_part(s->scratch, false, 0, part) : NULL;
  ev = upd ? ck_event_item_updated(s->scratch, m->id, upd) : NULL;
  return ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
}

int ck_assistant_delta(ck_assistant *m, const char *text, size_t len) {
  if (m->ended)
    return CK_ESTATE;
  int rc = ck_buf_append(&m->text, text, len);
  return rc == CK_OK ? ck__stream_emit_text_delta(m->s, m->id, 0, text, len) : rc;
}

const char *ck_assistant_text(const ck_assistant *m, size_t *len) {
  if (len)
    *len = m->text.len;
  return m->text.data ? m->text.data : "";
}

int ck_assistant_end(ck_assistant *m) {
  if (m->ended)
    return CK_ESTATE;
  m->ended = true;
  ck_stream *s = m->s;
  size_t len = 0;
  const char *text = ck_assistant_text(m, &len);
  ck_json *part = ck_assistant_content(s->scratch, text, len);
  ck_json *upd = part ? ck_update_content_part(s->scratch, true, 0, part) : NULL;
  ck_json *ev = upd ? ck_event_item_updated(s->scratch, m->id, upd) : NULL;
  int rc = ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
  if (rc != CK_OK)
    return rc;
  const char *tid = ck_json_object_get_str(s->thread, "id");
  ck_json *content = ck_json_array(s->scratch);
  part = ck_assistant_content(s->scratch, text, len);
  if (content == NULL || part == NULL || ck_json_array_append(content, part) != CK_OK)
    return CK_ENOMEM;
  ck_json *item = ck_item_assistant_message(s->scratch, m->id, tid, m->created_at, content);
  ev = item ? ck_event_item(s->scratch, "thread.item.done", item) : NULL;
  return ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
}

/* ---- Workflows ---- */

static int emit_workflow_item(ck_stream *s, const char *event_type) {
  ck_json *ev = ck_event_item(s->scratch, event_type, ck_json_copy(s->scratch, s->workflow.item));
  return ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
}

int ck_workflow_start(ck_stream *s, const char *type) {
  if (strcmp(type, "custom") != 0 && strcmp(type, "reasoning") != 0)
    return CK_EINVAL;
  int rc = ck_workflow_end(s, NULL, false);
  if (rc != CK_OK)
    return rc;
  ck_arena *a = s->arena;
  const char *id = ck_stream_new_id(s, "workflow");
  int64_t now_us = s->srv->clock(s->srv->clock_ud);
  ck__datetime dt = ck__datetime_naive(now_us);
  char created[CK_DATETIME_MAX];
  size_t n = ck__datetime_format(&dt, created);
  ck_json *wf = ck_json_object(a);
  ck_json *item = ck_json_object(a);
  if (id == NULL || wf == NULL || item == NULL)
    return CK_ENOMEM;
  if (ck_json_object_set(wf, "type", ck_json_str(a, type)) ||
      ck_json_object_set(wf, "tasks", ck_json_array(a)) ||
      ck_json_object_set(wf, "expanded", ck_json_bool(a, false)) ||
      ck_json_object_set(item, "id", ck_json_str(a, id)) ||
      ck_json_object_set(item, "thread_id",
                         ck_json_str(a, ck_json_object_get_str(s->thread, "id"))) ||
      ck_json_object_set(item, "created_at", ck_json_strn(a, created, n)) ||
      ck_json_object_set(item, "type", ck_json_str(a, "workflow")) ||
      ck_json_object_set(item, "workflow", wf))
    return CK_ENOMEM;
  s->workflow.item = item;
  s->workflow.started_us = now_us;
  s->workflow.announced = false;
  /* A custom workflow with no task yet would show an empty box: the reference waits for its
   * first task. */
  if (strcmp(type, "reasoning") == 0) {
    s->workflow.announced = true;
    return emit_workflow_item(s, "thread.item.added");
  }
  return CK_OK;
}

int ck_workflow_add_task(ck_stream *s, const ck_json *task) {
  ck_json *canon = NULL;
  ck_validation_error verr;
  int rc = ck_protocol_normalize(s->arena, CK_MODEL_TASK, task, &canon, &verr);
  if (rc != CK_OK)
    return rc;
  if (s->workflow.item == NULL && (rc = ck_workflow_start(s, "custom")) != CK_OK)
    return rc;
  ck_json *tasks = ck_json_object_get(ck_json_object_get(s->workflow.item, "workflow"), "tasks");
  if (ck_json_array_append(tasks, canon) != CK_OK)
    return CK_ENOMEM;
  size_t index = ck_json_array_size(tasks) - 1;
  if (!s->workflow.announced) {
    s->workflow.announced = true;
    return emit_workflow_item(s, "thread.item.added");
  }
  ck_json *upd = ck_json_object(s->scratch);
  if (upd == NULL ||
      ck_json_object_set(upd, "type", ck_json_str(s->scratch, "workflow.task.added")) ||
      ck_json_object_set(upd, "task_index", ck_json_int(s->scratch, (int64_t)index)) ||
      ck_json_object_set(upd, "task", ck_json_copy(s->scratch, canon)))
    return CK_ENOMEM;
  ck_json *id = ck_json_object_get(s->workflow.item, "id");
  ck_json *ev = ck_event_item_updated(s->scratch, ck_json_str_value(id), upd);
  return ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
}

int ck_workflow_update_task(ck_stream *s, const ck_json *task, size_t index) {
  if (s->workflow.item == NULL)
    return CK_ESTATE;
  ck_json *tasks = ck_json_object_get(ck_json_object_get(s->workflow.item, "workflow"), "tasks");
  if (index >= ck_json_array_size(tasks))
    return CK_ESTATE;
  ck_json *canon = NULL;
  ck_validation_error verr;
  int rc = ck_protocol_normalize(s->arena, CK_MODEL_TASK, task, &canon, &verr);
  if (rc != CK_OK)
    return rc;
  if (ck_json_array_set(tasks, index, canon) != CK_OK)
    return CK_ENOMEM;
  ck_json *upd = ck_json_object(s->scratch);
  if (upd == NULL ||
      ck_json_object_set(upd, "type", ck_json_str(s->scratch, "workflow.task.updated")) ||
      ck_json_object_set(upd, "task_index", ck_json_int(s->scratch, (int64_t)index)) ||
      ck_json_object_set(upd, "task", ck_json_copy(s->scratch, canon)))
    return CK_ENOMEM;
  ck_json *ev =
      ck_event_item_updated(s->scratch, ck_json_object_get_str(s->workflow.item, "id"), upd);
  return ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
}

int ck_workflow_end(ck_stream *s, const ck_json *summary, bool expanded) {
  if (s->workflow.item == NULL)
    return CK_OK;
  ck_arena *a = s->arena;
  ck_json *wf = ck_json_object_get(s->workflow.item, "workflow");
  ck_json *sum = NULL;
  if (summary != NULL) {
    sum = ck_json_copy(a, summary);
  } else if (ck_json_object_get(wf, "summary") != NULL) {
    sum = ck_json_object_get(wf, "summary"); /* a summary set earlier is kept */
  } else {
    int64_t secs = (s->srv->clock(s->srv->clock_ud) - s->workflow.started_us) / 1000000;
    sum = ck_json_object(a);
    if (sum != NULL && ck_json_object_set(sum, "duration", ck_json_int(a, secs)))
      sum = NULL;
  }
  /* Rebuild in canonical key order: type, tasks, summary, expanded. */
  ck_json *nwf = ck_json_object(a);
  if (sum == NULL || nwf == NULL ||
      ck_json_object_set(nwf, "type", ck_json_object_get(wf, "type")) ||
      ck_json_object_set(nwf, "tasks", ck_json_object_get(wf, "tasks")) ||
      ck_json_object_set(nwf, "summary", sum) ||
      ck_json_object_set(nwf, "expanded", ck_json_bool(a, expanded)) ||
      ck_json_object_set(s->workflow.item, "workflow", nwf))
    return CK_ENOMEM;
  int rc = emit_workflow_item(s, "thread.item.done");
  s->workflow.item = NULL;
  return rc;
}
