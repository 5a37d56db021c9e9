/* Streaming widgets from handlers: the reference's stream_widget helper (protocol.md §8.5). */
#include "pipeline/internal.h"

#include <chatkit/error.h>
#include <chatkit/widgets.h>

#include <string.h>

/* A widget item {"id","thread_id","created_at","type":"widget","widget","copy_text"?}. */
static ck_json *widget_item(ck_arena *a, const ck_widget_stream *ws, const ck_json *state) {
  ck_json *it = ck_json_object(a);
  if (it == NULL)
    return NULL;
  const char *tid = ck_json_object_get_str(ck_stream_thread_view(ws->s), "id");
  if (ck_json_object_set(it, "id", ck_json_str(a, ws->id)) ||
      ck_json_object_set(it, "thread_id", ck_json_str(a, tid)) ||
      ck_json_object_set(it, "created_at", ck_json_str(a, ws->created_at)) ||
      ck_json_object_set(it, "type", ck_json_str(a, "widget")) ||
      ck_json_object_set(it, "widget", ck_json_copy(a, state)))
    return NULL;
  if (ws->copy_text != NULL && ck_json_object_set(it, "copy_text", ck_json_str(a, ws->copy_text)))
    return NULL;
  return it;
}

/* Validates a handler's widget state and keeps its canonical form for the stream's life. */
static int canonical_state(ck_stream *s, const ck_json *w, ck_json **out) {
  ck_validation_error verr;
  return ck_protocol_normalize(s->arena, CK_MODEL_WIDGET_ROOT, w, out, &verr);
}

static int start(ck_stream *s, const char *copy_text, ck_widget_stream **out) {
  ck_widget_stream *ws = ck_arena_calloc(s->arena, sizeof(*ws));
  if (ws == NULL)
    return CK_ENOMEM;
  ws->s = s;
  ws->id = ck_stream_new_id(s, "message");
  ws->created_at = ws->id ? ck_stream_now(s) : NULL;
  ws->copy_text = copy_text ? ck_arena_strdup(s->arena, copy_text) : NULL;
  if (ws->created_at == NULL || (copy_text != NULL && ws->copy_text == NULL))
    return CK_ENOMEM;
  ws->next = s->widgets;
  s->widgets = ws;
  *out = ws;
  return CK_OK;
}

static int emit_item(ck_widget_stream *ws, const char *event_type) {
  ck_arena *a = ck_stream_scratch(ws->s);
  ck_json *item = widget_item(a, ws, ws->state);
  ck_json *ev = item ? ck_event_item(a, event_type, item) : NULL;
  return ev ? ck__stream_emit(ws->s, ev) : CK_ENOMEM;
}

int ck_stream_widget(ck_stream *s, const ck_json *widget, const char *copy_text) {
  ck_widget_stream *ws = NULL;
  ck_json *state = NULL;
  int rc = canonical_state(s, widget, &state);
  if (rc == CK_OK)
    rc = start(s, copy_text, &ws);
  if (rc != CK_OK)
    return rc;
  ws->state = state;
  return emit_item(ws, "thread.item.done");
}

int ck_widget_stream_begin(ck_stream *s, const ck_json *first, const char *copy_text,
                           ck_widget_stream **out) {
  ck_json *state = NULL;
  int rc = canonical_state(s, first, &state);
  if (rc == CK_OK)
    rc = start(s, copy_text, out);
  if (rc != CK_OK)
    return rc;
  (*out)->state = state;
  return emit_item(*out, "thread.item.added");
}

int ck_widget_stream_update(ck_widget_stream *ws, const ck_json *next) {
  ck_json *state = NULL, *updates = NULL;
  ck_validation_error verr;
  int rc = canonical_state(ws->s, next, &state);
  if (rc != CK_OK)
    return rc;
  rc = ck_widget_diff(ws->s->arena, ws->state, state, &updates, &verr);
  if (rc != CK_OK)
    return rc;
  ws->state = state;
  for (size_t i = 0; i < ck_json_array_size(updates); i++) {
    ck_arena *a = ck_stream_scratch(ws->s);
    ck_json *ev = ck_event_item_updated(a, ws->id, ck_json_copy(a, ck_json_array_get(updates, i)));
    rc = ev ? ck__stream_emit(ws->s, ev) : CK_ENOMEM;
    if (rc != CK_OK)
      return rc;
  }
  return CK_OK;
}

int ck_widget_stream_end(ck_widget_stream *ws) {
  return emit_item(ws, "thread.item.done");
}
