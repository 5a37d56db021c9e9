/* The event pipeline (protocol.md §6): every event a handler emits is tracked, persisted,
 * sent and followed by the thread-change check, in the reference's order. */
#include "pipeline/internal.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Payload framing on the wire: "data: " + JSON + "\n\n". */
#define FRAME_PREFIX "data: "
#define FRAME_PREFIX_LEN 6

ck_json *ck_stream_thread(ck_stream *s) {
  s->thread_exposed = true; /* the handler may now change it behind our back */
  return s->thread;
}

const ck_json *ck_stream_thread_view(const ck_stream *s) {
  return s->thread;
}

int ck_stream_set_thread(ck_stream *s, const char *key, const ck_json *value) {
  s->thread_dirty = true;
  if (value == NULL) {
    ck_json_object_del(s->thread, key);
    return CK_OK;
  }
  ck_json *v = ck_json_copy(s->arena, value);
  return v ? ck_json_object_set(s->thread, key, v) : CK_ENOMEM;
}

const ck_ctx *ck_stream_ctx(const ck_stream *s) {
  return s->ctx;
}

ck_server *ck_stream_server(ck_stream *s) {
  return s->srv;
}

ck_arena *ck_stream_scratch(ck_stream *s) {
  return s->scratch;
}

ck_arena *ck_stream_arena(ck_stream *s) {
  return s->arena;
}

bool ck_stream_is_cancelled(const ck_stream *s) {
  return atomic_load(&((ck_stream *)s)->cancelled);
}

const ck_error_info *ck_stream_error(const ck_stream *s) {
  static const ck_error_info none = {CK_OK, ""};
  return s->error != NULL ? s->error : &none;
}

ck_error_info *ck__stream_err(ck_stream *s) {
  if (s->error == NULL)
    s->error = calloc(1, sizeof(*s->error));
  return s->error; /* NULL without memory: ck__set_error then only returns the code */
}

size_t ck_stream_events_sent(const ck_stream *s) {
  return s->sent;
}

void ck_stream_add_usage(ck_stream *s, int64_t input_tokens, int64_t output_tokens) {
  if (input_tokens > 0)
    atomic_fetch_add(&s->input_tokens, input_tokens);
  if (output_tokens > 0)
    atomic_fetch_add(&s->output_tokens, output_tokens);
}

void ck_stream_usage(const ck_stream *s, int64_t *input_tokens, int64_t *output_tokens) {
  /* atomic_load takes a non-const pointer in C17. */
  ck_stream *m = (ck_stream *)s;
  *input_tokens = atomic_load(&m->input_tokens);
  *output_tokens = atomic_load(&m->output_tokens);
}

const char *ck_stream_new_id(ck_stream *s, const char *kind) {
  return ck_server_generate_id(s->srv, s->arena, kind, s->thread);
}

const char *ck_stream_now(ck_stream *s) {
  return ck_server_now(s->srv, s->arena);
}

int ck_stream_fail_custom(ck_stream *s, const char *message, bool allow_retry) {
  s->fail_set = true;
  s->fail_code = "custom";
  s->fail_message = ck_arena_strdup(s->arena, message);
  s->fail_allow_retry = allow_retry;
  return CK_EHANDLER;
}

int ck_stream_fail(ck_stream *s, const char *code, int allow_retry) {
  s->fail_set = true;
  s->fail_code = ck_arena_strdup(s->arena, code);
  s->fail_message = NULL;
  /* The reference's StreamError defaults allow_retry per code: true for stream.error. */
  if (allow_retry < 0)
    s->fail_allow_retry = strcmp(code, "stream.error") == 0;
  else
    s->fail_allow_retry = allow_retry != 0;
  return CK_EHANDLER;
}

void ck_stream_free(ck_stream *s) {
  if (s == NULL)
    return;
  /* Normally released when the stream ended; this covers a stream freed before its end. */
  ck__stream_lease_release(s);
  ck__pending_clear(s);
  ck__async_clear(s);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->wake);
  for (struct ck_assistant *m = s->messages; m != NULL; m = m->next)
    ck_buf_free(&m->text);
  ck_buf_free(&s->canonical);
  ck_buf_free(&s->frame);
  free(s->error);
  ck_arena_free(s->scratch);
  ck_arena_free(s->arena);
  free(s);
}

int ck__stream_send(ck_stream *s, const ck_json *event) {
  if (atomic_load(&s->cancelled))
    return CK_ECANCELLED;
  ck_buf_reset(&s->frame);
  int rc = ck_buf_append(&s->frame, FRAME_PREFIX, FRAME_PREFIX_LEN);
  if (rc == CK_OK)
    rc = ck_json_write(&s->frame, event);
  if (rc == CK_OK)
    rc = ck_buf_append(&s->frame, "\n\n", 2);
  if (rc != CK_OK)
    return rc;
  rc = s->sink.frame(s->sink.ud, s->frame.data, s->frame.len);
  if (rc != CK_OK) {
    atomic_store(&s->cancelled, true);
    return CK_ECANCELLED;
  }
  s->sent++;
  return CK_OK;
}

/* The thread-change check compares the handler's thread object as it stands with the last
 * snapshot. Handlers may change the object in any way (even add keys out of order), so a
 * changed object is put in canonical form before it is compared, saved and sent. */
static int canonical_thread(ck_stream *s, ck_arena *a, ck_json **out) {
  ck_validation_error verr;
  int rc = ck_protocol_normalize(a, CK_MODEL_THREAD_METADATA, s->thread, out, &verr);
  if (rc == CK_EINVAL)
    ck__set_error(ck__stream_err(s), rc, "the handler left an invalid thread: %s: %s", verr.path,
                  verr.message);
  return rc;
}

int ck__stream_snapshot(ck_stream *s) {
  ck_json *canon = NULL;
  ck_buf_reset(&s->canonical);
  s->thread_hash = ck_json_hash(s->thread);
  int rc = CK_OK;
  if (rc == CK_OK)
    rc = canonical_thread(s, s->scratch, &canon);
  if (rc == CK_OK)
    rc = ck_json_write(&s->canonical, canon);
  return rc;
}

/* protocol.md §6.2 step 4: after an event (and once at the end), a changed thread is saved and
 * announced with thread.updated. */
int ck__stream_check_thread(ck_stream *s) {
  ck_buf text;
  ck_json *canon = NULL;
  ck_buf_init(&text, 0);
  int rc = CK_OK;
  /* This runs after every event. A thread nobody could have touched needs no look; otherwise a
   * fingerprint of the object settles the common case (nothing changed) without writing. */
  if (!s->thread_exposed && !s->thread_dirty)
    goto done;
  s->thread_dirty = false;
  uint64_t h = ck_json_hash(s->thread);
  if (h == s->thread_hash)
    goto done;
  s->thread_hash = h;
  rc = canonical_thread(s, s->scratch, &canon);
  if (rc == CK_OK)
    rc = ck_json_write(&text, canon);
  if (rc != CK_OK)
    goto done;
  if (text.len == s->canonical.len && memcmp(text.data, s->canonical.data, text.len) == 0)
    goto done;
  ck_buf tmp = s->canonical;
  s->canonical = text;
  text = tmp;
  rc = s->srv->store->vt->save_thread(s->srv->store, canon, s->ctx);
  if (rc != CK_OK)
    goto done;
  ck_json *wire = ck_thread_for_wire(s->scratch, canon, NULL);
  ck_json *ev = wire ? ck_json_object(s->scratch) : NULL;
  ck_json *type = ev ? ck_json_str(s->scratch, "thread.updated") : NULL;
  if (type == NULL || ck_json_object_set(ev, "type", type) != CK_OK ||
      ck_json_object_set(ev, "thread", wire) != CK_OK) {
    rc = CK_ENOMEM;
    goto done;
  }
  rc = ck__stream_send(s, ev);
done:
  ck_buf_free(&text);
  return rc;
}

int ck__stream_emit(ck_stream *s, ck_json *event) {
  int rc = CK_OK;
  if (atomic_load(&s->cancelled))
    return CK_ECANCELLED;
  const char *type = ck_json_object_get_str(event, "type");
  ck_json *item = ck_json_object_get(event, "item");
  const char *thread_id = ck_json_object_get_str(s->thread, "id");
  ck_store *st = s->srv->store;
  bool send = true;
  if (type == NULL)
    return CK_EINVAL;
  rc = ck__stream_lease_renew(s);
  if (rc != CK_OK)
    return rc;

  if (strcmp(type, "thread.item.added") == 0) {
    rc = ck__pending_add(s, item);
  } else if (strcmp(type, "thread.item.done") == 0) {
    rc = st->vt->add_thread_item(st, thread_id, item, s->ctx);
    ck__pending_remove(s, ck_json_object_get_str(item, "id"));
    send = !ck_item_type_is_hidden(ck_json_object_get_str(item, "type"));
  } else if (strcmp(type, "thread.item.removed") == 0) {
    const char *id = ck_json_object_get_str(event, "item_id");
    rc = st->vt->delete_thread_item(st, thread_id, id, s->ctx);
    ck__pending_remove(s, id);
  } else if (strcmp(type, "thread.item.replaced") == 0) {
    rc = st->vt->save_item(st, thread_id, item, s->ctx);
    ck__pending_remove(s, ck_json_object_get_str(item, "id"));
  } else if (strcmp(type, "thread.item.updated") == 0) {
    rc = ck__pending_update(s, ck_json_object_get_str(event, "item_id"),
                            ck_json_object_get(event, "update"));
  }
  if (rc != CK_OK)
    goto done;

  if (send) {
    /* Attachment metadata is private: it is stored but never sent. */
    if (item != NULL) {
      ck_json *wire = ck_item_for_wire(s->scratch, item);
      if (wire == NULL) {
        rc = CK_ENOMEM;
        goto done;
      }
      if (wire != item) {
        ck_json *copy = ck_json_object(s->scratch);
        if (copy == NULL || ck_json_object_set(copy, "type", ck_json_object_get(event, "type")) ||
            ck_json_object_set(copy, "item", wire)) {
          rc = CK_ENOMEM;
          goto done;
        }
        event = copy;
      }
    }
    rc = ck__stream_send(s, event);
    if (rc != CK_OK)
      goto done;
  }
  rc = ck__stream_check_thread(s);
done:
  ck_arena_reset(s->scratch);
  return rc;
}

int ck_emit_canonical(ck_stream *s, ck_json *event) {
  return ck__stream_emit(s, event);
}

int ck_emit(ck_stream *s, const ck_json *event) {
  ck_json *canon = NULL;
  ck_validation_error verr;
  if (atomic_load(&s->cancelled))
    return CK_ECANCELLED;
  int rc = ck_protocol_normalize(s->scratch, CK_MODEL_STREAM_EVENT, event, &canon, &verr);
  if (rc != CK_OK) {
    ck_arena_reset(s->scratch);
    return rc;
  }
  return ck__stream_emit(s, canon);
}

/* ---- Pending items (protocol.md §6.4) ---- */

static void part_free(ck__part *p) {
  ck_buf_free(&p->text);
}

static void pending_free(ck__pending *p) {
  for (size_t i = 0; i < p->nparts; i++)
    part_free(&p->parts[i]);
  free(p->parts);
  p->parts = NULL;
  p->nparts = 0;
}

void ck__pending_clear(ck_stream *s) {
  for (size_t i = 0; i < s->npending; i++)
    pending_free(&s->pending[i]);
  free(s->pending);
  s->pending = NULL;
  s->npending = s->cap_pending = 0;
}

static ck__pending *pending_find(ck_stream *s, const char *id) {
  if (id == NULL)
    return NULL;
  for (size_t i = 0; i < s->npending; i++)
    if (strcmp(s->pending[i].id, id) == 0)
      return &s->pending[i];
  return NULL;
}

void ck__pending_remove(ck_stream *s, const char *id) {
  ck__pending *p = pending_find(s, id);
  if (p == NULL)
    return;
  pending_free(p);
  size_t i = (size_t)(p - s->pending);
  memmove(p, p + 1, (s->npending - i - 1) * sizeof(*p));
  s->npending--;
}

static bool is_assistant(const ck_json *item) {
  const char *t = ck_json_object_get_str(item, "type");
  return t != NULL && strcmp(t, "assistant_message") == 0;
}

/* Makes parts [0, index] exist, padding with empty ones as the reference does. */
static int ensure_parts(ck_stream *s, ck__pending *p, size_t index) {
  if (index >= 100000)
    return CK_ETOOBIG;
  if (index < p->nparts)
    return CK_OK;
  ck__part *np = realloc(p->parts, (index + 1) * sizeof(*np));
  if (np == NULL)
    return CK_ENOMEM;
  p->parts = np;
  for (size_t i = p->nparts; i <= index; i++) {
    ck_buf_init(&np[i].text, 0);
    np[i].annotations = ck_json_array(s->arena);
    if (np[i].annotations == NULL) {
      p->nparts = i;
      return CK_ENOMEM;
    }
  }
  p->nparts = index + 1;
  return CK_OK;
}

/* Replaces part `index` with a content object's text and annotations. */
static int set_part(ck_stream *s, ck__part *part, const ck_json *content) {
  ck_buf_reset(&part->text);
  const ck_json *text = ck_json_object_get(content, "text");
  int rc = ck_buf_append(&part->text, ck_json_str_value(text) ? ck_json_str_value(text) : "",
                         ck_json_str_len(text));
  if (rc != CK_OK)
    return rc;
  part->annotations = ck_json_copy(s->arena, ck_json_object_get(content, "annotations"));
  if (part->annotations == NULL)
    part->annotations = ck_json_array(s->arena);
  return part->annotations ? CK_OK : CK_ENOMEM;
}

int ck__pending_add(ck_stream *s, const ck_json *item) {
  const char *id = ck_json_object_get_str(item, "id");
  ck__pending_remove(s, id);
  if (s->npending == s->cap_pending) {
    size_t cap = s->cap_pending ? s->cap_pending * 2 : 4;
    ck__pending *np = realloc(s->pending, cap * sizeof(*np));
    if (np == NULL)
      return CK_ENOMEM;
    s->pending = np;
    s->cap_pending = cap;
  }
  ck__pending *p = &s->pending[s->npending];
  memset(p, 0, sizeof(*p));
  p->item = ck_json_copy(s->arena, item);
  p->id = ck_json_object_get_str(p->item, "id");
  if (p->item == NULL || p->id == NULL)
    return CK_ENOMEM;
  s->npending++;
  if (is_assistant(item)) {
    const ck_json *content = ck_json_object_get(item, "content");
    size_t n = ck_json_array_size(content);
    if (n > 0) {
      int rc = ensure_parts(s, p, n - 1);
      for (size_t i = 0; rc == CK_OK && i < n; i++)
        rc = set_part(s, &p->parts[i], ck_json_array_get(content, i));
      if (rc != CK_OK)
        return rc;
    }
  }
  return CK_OK;
}

/* A text delta of part `index` of pending assistant message `p`. */
static int pending_text(ck_stream *s, ck__pending *p, size_t index, const char *text, size_t len) {
  int rc = ensure_parts(s, p, index);
  return rc == CK_OK ? ck_buf_append(&p->parts[index].text, text ? text : "", len) : rc;
}

int ck__pending_update(ck_stream *s, const char *item_id, const ck_json *update) {
  ck__pending *p = pending_find(s, item_id);
  const char *type = ck_json_object_get_str(update, "type");
  int64_t index = 0;
  if (p == NULL || type == NULL)
    return CK_OK;
  if (strncmp(type, "assistant_message.content_part.", 31) == 0) {
    if (!is_assistant(p->item))
      return CK_OK;
    if (ck_json_int_value(ck_json_object_get(update, "content_index"), &index) != CK_OK ||
        index < 0)
      return CK_OK;
    const char *what = type + 31;
    if (strcmp(what, "text_delta") == 0) {
      const ck_json *d = ck_json_object_get(update, "delta");
      return pending_text(s, p, (size_t)index, ck_json_str_value(d), ck_json_str_len(d));
    }
    int rc = ensure_parts(s, p, (size_t)index);
    if (rc != CK_OK)
      return rc;
    ck__part *part = &p->parts[index];
    if (strcmp(what, "added") == 0 || strcmp(what, "done") == 0)
      return set_part(s, part, ck_json_object_get(update, "content"));
    if (strcmp(what, "annotation_added") == 0) {
      int64_t ai = 0;
      ck_json_int_value(ck_json_object_get(update, "annotation_index"), &ai);
      ck_json *ann = ck_json_copy(s->arena, ck_json_object_get(update, "annotation"));
      if (ann == NULL)
        return CK_ENOMEM;
      size_t n = ck_json_array_size(part->annotations);
      if (ai >= 0 && (size_t)ai <= n)
        return ck_json_array_insert(part->annotations, (size_t)ai, ann);
      return ck_json_array_append(part->annotations, ann);
    }
    return CK_OK;
  }
  if (strcmp(type, "workflow.task.added") == 0 || strcmp(type, "workflow.task.updated") == 0) {
    ck_json *wf = ck_json_object_get(p->item, "workflow");
    ck_json *tasks = ck_json_object_get(wf, "tasks");
    ck_json *task = ck_json_copy(s->arena, ck_json_object_get(update, "task"));
    if (tasks == NULL)
      return CK_OK;
    if (task == NULL)
      return CK_ENOMEM;
    /* The reference appends on "added" whatever task_index says. */
    if (strcmp(type, "workflow.task.added") == 0)
      return ck_json_array_append(tasks, task);
    if (ck_json_int_value(ck_json_object_get(update, "task_index"), &index) == CK_OK &&
        index >= 0 && (size_t)index < ck_json_array_size(tasks))
      return ck_json_array_set(tasks, (size_t)index, task);
  }
  return CK_OK;
}

/* The pending item with its streamed parts written back into `content`. */
static ck_json *materialize(ck_stream *s, ck_arena *a, const ck__pending *p) {
  ck_json *item = ck_json_copy(a, p->item);
  if (item == NULL || !is_assistant(p->item))
    return item;
  ck_json *content = ck_json_array(a);
  if (content == NULL)
    return NULL;
  for (size_t i = 0; i < p->nparts; i++) {
    ck_json *c = ck_assistant_content(a, p->parts[i].text.data ? p->parts[i].text.data : "",
                                      p->parts[i].text.len);
    ck_json *ann = ck_json_copy(a, p->parts[i].annotations);
    if (c == NULL || ann == NULL || ck_json_object_set(c, "annotations", ann) != CK_OK ||
        ck_json_array_append(content, c) != CK_OK)
      return NULL;
  }
  if (ck_json_object_set(item, "content", content) != CK_OK)
    return NULL;
  return item;
}

int ck__stream_emit_text_delta(ck_stream *s, const char *item_id, int content_index,
                               const char *text, size_t len) {
  if (atomic_load(&s->cancelled))
    return CK_ECANCELLED;
  if (content_index < 0)
    return CK_EINVAL;
  int rc = ck__stream_lease_renew(s);
  if (rc != CK_OK)
    return rc;
  ck__pending *p = pending_find(s, item_id);
  if (p != NULL && is_assistant(p->item) &&
      (rc = pending_text(s, p, (size_t)content_index, text, len)) != CK_OK)
    return rc;
  /* The canonical form of the event, written straight from its parts: the text deltas are
   * most of a stream's events, and building then serialising a JSON tree for each cost more
   * than the rest of their way to the socket. */
  char index[24];
  int n = snprintf(index, sizeof(index), "%d", content_index);
  ck_buf *f = &s->frame;
  ck_buf_reset(f);
  static const char head[] = FRAME_PREFIX "{\"type\":\"thread.item.updated\",\"item_id\":";
  static const char mid[] = ",\"update\":{\"type\":\"assistant_message.content_part.text_delta\","
                            "\"content_index\":";
  rc = ck_buf_append(f, head, sizeof(head) - 1);
  if (rc == CK_OK)
    rc = ck_json_write_string(f, item_id, strlen(item_id));
  if (rc == CK_OK)
    rc = ck_buf_append(f, mid, sizeof(mid) - 1);
  if (rc == CK_OK)
    rc = ck_buf_append(f, index, (size_t)n);
  if (rc == CK_OK)
    rc = ck_buf_append(f, ",\"delta\":", 9);
  if (rc == CK_OK)
    rc = ck_json_write_string(f, text ? text : "", len);
  if (rc == CK_OK)
    rc = ck_buf_append(f, "}}\n\n", 4);
  if (rc != CK_OK)
    return rc;
  if (s->sink.frame(s->sink.ud, f->data, f->len) != CK_OK) {
    atomic_store(&s->cancelled, true);
    return CK_ECANCELLED;
  }
  s->sent++;
  rc = ck__stream_check_thread(s);
  ck_arena_reset(s->scratch);
  return rc;
}

int ck__pending_message_done(ck_stream *s, const char *item_id) {
  ck__pending *p = pending_find(s, item_id);
  if (p == NULL || !is_assistant(p->item))
    return CK_OK;
  /* Its own arena: every emit empties the scratch arena, and the done item must outlive the
   * part.done emits. It is built first because those replace the parts' annotations with
   * their own empty lists. */
  size_t text = 0;
  for (size_t i = 0; i < p->nparts; i++)
    text += p->parts[i].text.len;
  ck_arena *a = ck_arena_new(2048 + 2 * text);
  ck_json *item = a ? materialize(s, a, p) : NULL;
  int rc = item ? CK_OK : CK_ENOMEM;
  const char *id = ck_json_object_get_str(item, "id");
  const ck_json *content = ck_json_object_get(item, "content");
  for (size_t i = 0; rc == CK_OK && i < ck_json_array_size(content); i++) {
    const ck_json *t = ck_json_object_get(ck_json_array_get(content, i), "text");
    ck_json *c = ck_assistant_content(a, ck_json_str_value(t), ck_json_str_len(t));
    ck_json *upd = c ? ck_update_content_part(a, true, (int)i, c) : NULL;
    ck_json *ev = upd ? ck_event_item_updated(a, id, upd) : NULL;
    rc = ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
  }
  if (rc == CK_OK) {
    ck_json *ev = ck_event_item(a, "thread.item.done", item);
    rc = ev ? ck__stream_emit(s, ev) : CK_ENOMEM;
  }
  ck_arena_free(a);
  return rc;
}

ck_json *ck__pending_items(ck_stream *s, ck_arena *a) {
  ck_json *arr = ck_json_array(a);
  if (arr == NULL)
    return NULL;
  for (size_t i = 0; i < s->npending; i++) {
    ck_json *item = materialize(s, a, &s->pending[i]);
    if (item == NULL || ck_json_array_append(arr, item) != CK_OK)
      return NULL;
  }
  return arr;
}

/* The length of the whitespace character at `t` as Python's str.isspace() defines it (the
 * reference tests `text.strip()`), or 0: ASCII \t-\r, \x1c-\x1f and space, U+0085, U+00A0,
 * U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F and U+3000. */
static size_t space_len(const unsigned char *t) {
  if ((t[0] >= 0x09 && t[0] <= 0x0d) || (t[0] >= 0x1c && t[0] <= 0x20))
    return 1;
  if (t[0] == 0xc2 && (t[1] == 0x85 || t[1] == 0xa0))
    return 2;
  if (t[0] == 0xe1 && t[1] == 0x9a && t[2] == 0x80)
    return 3;
  if (t[0] == 0xe2 && t[1] == 0x80 &&
      (t[2] <= 0x8a || t[2] == 0xa8 || t[2] == 0xa9 || t[2] == 0xaf))
    return 3;
  if (t[0] == 0xe2 && t[1] == 0x81 && t[2] == 0x9f)
    return 3;
  if (t[0] == 0xe3 && t[1] == 0x80 && t[2] == 0x80)
    return 3;
  return 0;
}

/* An assistant message is worth saving when some part has non-whitespace text. Texts are
 * NUL-terminated, so looking up to two bytes past a lead byte stays inside them. */
static bool has_visible_text(const ck_json *item) {
  const ck_json *content = ck_json_object_get(item, "content");
  size_t n = ck_json_array_size(content);
  for (size_t i = 0; i < n; i++) {
    const ck_json *text = ck_json_object_get(ck_json_array_get(content, i), "text");
    const unsigned char *t = (const unsigned char *)ck_json_str_value(text);
    const unsigned char *end = t ? t + ck_json_str_len(text) : NULL;
    while (t != NULL && t < end) {
      size_t k = space_len(t);
      if (k == 0)
        return true;
      t += k;
    }
  }
  return false;
}

#define CANCEL_TEXT "The user cancelled the stream. Stop responding to the prior request."

int ck_stream_default_cancel(ck_stream *s, const ck_json *pending) {
  ck_store *st = s->srv->store;
  const char *tid = ck_json_object_get_str(s->thread, "id");
  size_t n = ck_json_array_size(pending);
  for (size_t i = 0; i < n; i++) {
    const ck_json *item = ck_json_array_get(pending, i);
    if (!is_assistant(item) || !has_visible_text(item))
      continue;
    int rc = st->vt->add_thread_item(st, tid, item, s->ctx);
    if (rc != CK_OK)
      return rc;
  }
  ck_arena *a = s->arena;
  const char *id = ck_stream_new_id(s, "sdk_hidden_context");
  const char *now = id ? ck_stream_now(s) : NULL;
  ck_json *item = ck_json_object(a);
  if (now == NULL || item == NULL)
    return CK_ENOMEM;
  const char *keys[] = {"id", "thread_id", "created_at", "type", "content"};
  const char *vals[] = {id, tid, now, "sdk_hidden_context", CANCEL_TEXT};
  for (size_t i = 0; i < 5; i++) {
    ck_json *v = ck_json_str(a, vals[i]);
    if (v == NULL || ck_json_object_set(item, keys[i], v) != CK_OK)
      return CK_ENOMEM;
  }
  return st->vt->add_thread_item(st, tid, item, s->ctx);
}
