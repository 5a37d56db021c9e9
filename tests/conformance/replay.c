/* conformance-replay: replays recorded reference traces (tests/conformance/cases/NNN-*.json)
 * against the processor and reports PASS or FAIL per case.
 *
 * The case format is described in tests/conformance/README.md (a copy of the shared one). Each
 * case runs against a fresh memory store wrapped in a recorder, deterministic ids
 * (<prefix>_<4 digits>, one counter per prefix) and a deterministic clock (start + n*step), with
 * scripted handlers. Matched: the response bytes (JSON body or every SSE payload), how a
 * stream ended, the rejection category, the store calls in order, the handler calls, and the
 * store's contents after the last step.
 *
 * Usage: conformance-replay [-v] CASE.json...
 */
#include "protocol/datetime.h"

#include <chatkit/error.h>
#include <chatkit/server.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Per-case state ---- */

#define MAX_PREFIXES 16
#define MAX_LABELS 64

typedef struct replay {
  ck_arena *a;           /* lives for the whole case */
  ck_store *inner;       /* the memory store */
  ck_store rec;          /* the recording wrapper (vtable below) */
  ck_json *calls;        /* store calls of the current step */
  ck_json *hcalls;       /* handler calls of the current step */
  ck_json *att_order;    /* attachment ids in first-saved order */
  const ck_json *script; /* handler script of the current step */
  ck_server *srv;
  int64_t clock_start, clock_step, clock_n;
  struct {
    char prefix[16];
    int n;
  } counters[MAX_PREFIXES];
  size_t ncounters;
  struct {
    const char *label;
    const char *value;
  } labels[MAX_LABELS];
  size_t nlabels;
  bool allow_cancel; /* what the integration returns as stream options */
  char failure[600]; /* the first difference */
} replay;

static int failf(replay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int failf(replay *r, const char *fmt, ...) {
  if (r->failure[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failure, sizeof(r->failure), fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---- Deterministic ids and clock ---- */

static int replay_idgen(void *ud, const char *kind, const ck_json *thread, char *out, size_t cap) {
  replay *r = ud;
  const char *prefix = ck_id_prefix(kind);
  if (prefix == NULL)
    prefix = kind;
  size_t i = 0;
  while (i < r->ncounters && strcmp(r->counters[i].prefix, prefix) != 0)
    i++;
  if (i == r->ncounters) {
    if (r->ncounters == MAX_PREFIXES)
      return CK_ETOOBIG;
    snprintf(r->counters[i].prefix, sizeof(r->counters[i].prefix), "%s", prefix);
    r->counters[i].n = 0;
    r->ncounters++;
  }
  snprintf(out, cap, "%s_%04d", prefix, ++r->counters[i].n);
  return CK_OK;
}

static int64_t replay_clock(void *ud) {
  replay *r = ud;
  return r->clock_start + r->clock_step * r->clock_n++;
}

/* ---- The recording store ---- */

static replay *rec_of(ck_store *s) {
  return (replay *)((char *)s - offsetof(replay, rec));
}

/* Appends [op, args...] to the call log; args are strings (NULL -> null) or, with the "%d"
 * marker, integers. */
static void log_call(replay *r, const char *op, int nargs, ...) {
  ck_json *c = ck_json_array(r->a);
  ck_json_array_append(c, ck_json_str(r->a, op));
  va_list ap;
  va_start(ap, nargs);
  for (int i = 0; i < nargs; i++) {
    const char *s = va_arg(ap, const char *);
    ck_json_array_append(c, s ? ck_json_str(r->a, s) : ck_json_null(r->a));
  }
  va_end(ap);
  ck_json_array_append(r->calls, c);
}

static const char *order_name(ck_order o) {
  return o == CK_ORDER_ASC ? "asc" : "desc";
}

static int rec_load_thread(ck_store *s, ck_arena *a, const char *id, const ck_ctx *ctx,
                           ck_json **out) {
  replay *r = rec_of(s);
  log_call(r, "load_thread", 1, id);
  return r->inner->vt->load_thread(r->inner, a, id, ctx, out);
}

static int rec_save_thread(ck_store *s, const ck_json *t, const ck_ctx *ctx) {
  replay *r = rec_of(s);
  log_call(r, "save_thread", 1, ck_json_object_get_str(t, "id"));
  return r->inner->vt->save_thread(r->inner, t, ctx);
}

static int rec_delete_thread(ck_store *s, const char *id, const ck_ctx *ctx) {
  replay *r = rec_of(s);
  log_call(r, "delete_thread", 1, id);
  return r->inner->vt->delete_thread(r->inner, id, ctx);
}

static void log_page_call(replay *r, const char *op, const char *tid, const char *after, int limit,
                          ck_order order) {
  ck_json *c = ck_json_array(r->a);
  ck_json_array_append(c, ck_json_str(r->a, op));
  if (tid != NULL)
    ck_json_array_append(c, ck_json_str(r->a, tid));
  if (tid == NULL) {
    ck_json_array_append(c, ck_json_int(r->a, limit));
    ck_json_array_append(c, after ? ck_json_str(r->a, after) : ck_json_null(r->a));
  } else {
    ck_json_array_append(c, after ? ck_json_str(r->a, after) : ck_json_null(r->a));
    ck_json_array_append(c, ck_json_int(r->a, limit));
  }
  ck_json_array_append(c, ck_json_str(r->a, order_name(order)));
  ck_json_array_append(r->calls, c);
}

static int rec_load_threads(ck_store *s, ck_arena *a, int limit, const char *after, ck_order order,
                            const ck_ctx *ctx, ck_page *out) {
  replay *r = rec_of(s);
  log_page_call(r, "load_threads", NULL, after, limit, order);
  return r->inner->vt->load_threads(r->inner, a, limit, after, order, ctx, out);
}

static int rec_load_thread_items(ck_store *s, ck_arena *a, const char *tid, const char *after,
                                 int limit, ck_order order, const ck_ctx *ctx, ck_page *out) {
  replay *r = rec_of(s);
  log_page_call(r, "load_thread_items", tid, after, limit, order);
  return r->inner->vt->load_thread_items(r->inner, a, tid, after, limit, order, ctx, out);
}

static int rec_add_thread_item(ck_store *s, const char *tid, const ck_json *item,
                               const ck_ctx *ctx) {
  replay *r = rec_of(s);
  log_call(r, "add_thread_item", 2, tid, ck_json_object_get_str(item, "id"));
  return r->inner->vt->add_thread_item(r->inner, tid, item, ctx);
}

static int rec_save_item(ck_store *s, const char *tid, const ck_json *item, const ck_ctx *ctx) {
  replay *r = rec_of(s);
  log_call(r, "save_item", 2, tid, ck_json_object_get_str(item, "id"));
  return r->inner->vt->save_item(r->inner, tid, item, ctx);
}

static int rec_load_item(ck_store *s, ck_arena *a, const char *tid, const char *id,
                         const ck_ctx *ctx, ck_json **out) {
  replay *r = rec_of(s);
  log_call(r, "load_item", 2, tid, id);
  return r->inner->vt->load_item(r->inner, a, tid, id, ctx, out);
}

static int rec_delete_thread_item(ck_store *s, const char *tid, const char *id, const ck_ctx *ctx) {
  replay *r = rec_of(s);
  log_call(r, "delete_thread_item", 2, tid, id);
  return r->inner->vt->delete_thread_item(r->inner, tid, id, ctx);
}

static int rec_save_attachment(ck_store *s, const ck_json *att, const ck_ctx *ctx) {
  replay *r = rec_of(s);
  const char *id = ck_json_object_get_str(att, "id");
  log_call(r, "save_attachment", 1, id);
  bool seen = false;
  for (size_t i = 0; i < ck_json_array_size(r->att_order) && !seen; i++)
    seen = strcmp(ck_json_str_value(ck_json_array_get(r->att_order, i)), id) == 0;
  if (!seen)
    ck_json_array_append(r->att_order, ck_json_str(r->a, id));
  return r->inner->vt->save_attachment(r->inner, att, ctx);
}

static int rec_load_attachment(ck_store *s, ck_arena *a, const char *id, const ck_ctx *ctx,
                               ck_json **out) {
  replay *r = rec_of(s);
  log_call(r, "load_attachment", 1, id);
  return r->inner->vt->load_attachment(r->inner, a, id, ctx, out);
}

static int rec_delete_attachment(ck_store *s, const char *id, const ck_ctx *ctx) {
  replay *r = rec_of(s);
  log_call(r, "delete_attachment", 1, id);
  return r->inner->vt->delete_attachment(r->inner, id, ctx);
}

static int rec_ping(ck_store *s) {
  return CK_OK;
}

static void rec_destroy(ck_store *s) {
}

/* Stream leases are forwarded to the memory store but never logged: the reference has no such
 * calls, so the recorded call sequence stays the reference's, while the pipeline's locking
 * still runs (and must not change any logged call) in every case. */
static int rec_acquire_stream(ck_store *s, const char *tid, const char *holder, int ttl_ms,
                              const ck_ctx *ctx) {
  replay *r = rec_of(s);
  return r->inner->vt->acquire_stream(r->inner, tid, holder, ttl_ms, ctx);
}

static int rec_release_stream(ck_store *s, const char *tid, const char *holder, const ck_ctx *ctx) {
  replay *r = rec_of(s);
  return r->inner->vt->release_stream(r->inner, tid, holder, ctx);
}

static int rec_renew_stream(ck_store *s, const char *tid, const char *holder, int ttl_ms,
                            const ck_ctx *ctx) {
  replay *r = rec_of(s);
  return r->inner->vt->renew_stream(r->inner, tid, holder, ttl_ms, ctx);
}

static const ck_store_vtable rec_vt = {
    rec_load_thread,
    rec_save_thread,
    rec_delete_thread,
    rec_load_threads,
    rec_load_thread_items,
    rec_add_thread_item,
    rec_save_item,
    rec_load_item,
    rec_delete_thread_item,
    rec_save_attachment,
    rec_load_attachment,
    rec_delete_attachment,
    rec_ping,
    rec_destroy,
    rec_acquire_stream,
    rec_release_stream,
    rec_renew_stream,
};

/* ---- Placeholders ---- */

static const char *label_value(replay *r, ck_arena *a, const char *label) {
  for (size_t i = 0; i < r->nlabels; i++)
    if (strcmp(r->labels[i].label, label) == 0)
      return r->labels[i].value;
  if (r->nlabels == MAX_LABELS)
    return NULL;
  const char *v = ck_server_now(r->srv, r->a);
  r->labels[r->nlabels].label = ck_arena_strdup(r->a, label);
  r->labels[r->nlabels].value = v;
  r->nlabels++;
  return v;
}

/* A copy of `v` with "$now", "$now:<label>", "$thread_id" and "$attachment_id" resolved, in
 * document order. */
static ck_json *resolve(replay *r, ck_arena *a, const ck_json *v, const char *thread_id) {
  switch (ck_json_typeof(v)) {
  case CK_JSON_STRING: {
    const char *s = ck_json_str_value(v);
    if (strcmp(s, "$now") == 0)
      return ck_json_str(a, ck_server_now(r->srv, a));
    if (strncmp(s, "$now:", 5) == 0)
      return ck_json_str(a, label_value(r, a, s + 5));
    if (strcmp(s, "$thread_id") == 0 && thread_id != NULL)
      return ck_json_str(a, thread_id);
    if (strcmp(s, "$attachment_id") == 0)
      return ck_json_str(a, ck_server_generate_id(r->srv, a, "attachment", NULL));
    return ck_json_copy(a, v);
  }
  case CK_JSON_ARRAY: {
    ck_json *arr = ck_json_array(a);
    for (size_t i = 0; i < ck_json_array_size(v); i++)
      ck_json_array_append(arr, resolve(r, a, ck_json_array_get(v, i), thread_id));
    return arr;
  }
  case CK_JSON_OBJECT: {
    ck_json *obj = ck_json_object(a);
    for (size_t i = 0; i < ck_json_object_size(v); i++)
      ck_json_object_setn(obj, ck_json_object_key(v, i), ck_json_object_key_len(v, i),
                          resolve(r, a, ck_json_object_value(v, i), thread_id));
    return obj;
  }
  default:
    return ck_json_copy(a, v);
  }
}

/* ---- Scripted handlers ---- */

static ck_json *canonical_thread(ck_arena *a, const ck_json *thread) {
  ck_json *out = NULL;
  ck_protocol_normalize(a, CK_MODEL_THREAD_METADATA, thread, &out, NULL);
  return out;
}

static void record_hcall(replay *r, ck_json *call) {
  ck_json_array_append(r->hcalls, call);
}

static ck_json *hcall(replay *r, const char *name) {
  ck_json *c = ck_json_object(r->a);
  ck_json_object_set(c, "handler", ck_json_str(r->a, name));
  return c;
}

static int apply_update_thread(ck_stream *s, const ck_json *set) {
  ck_json *t = ck_stream_thread(s);
  ck_arena *a = ck_stream_arena(s);
  for (size_t i = 0; i < ck_json_object_size(set); i++) {
    const char *k = ck_json_object_key(set, i);
    const ck_json *v = ck_json_object_value(set, i);
    if (ck_json_is_null(v))
      ck_json_object_del(t, k);
    else
      ck_json_object_set(t, k, ck_json_copy(a, v));
  }
  return CK_OK;
}

/* Runs a streaming handler's script. */
static int run_script(replay *r, ck_stream *s) {
  const ck_json *script = r->script;
  const char *tid = ck_json_object_get_str(ck_stream_thread(s), "id");
  for (size_t i = 0; i < ck_json_array_size(script); i++) {
    const ck_json *op = ck_json_array_get(script, i);
    const char *name = ck_json_object_get_str(op, "op");
    int rc = CK_OK;
    if (strcmp(name, "yield") == 0) {
      ck_arena *a = ck_stream_scratch(s);
      rc = ck_emit(s, resolve(r, a, ck_json_object_get(op, "event"), tid));
    } else if (strcmp(name, "update_thread") == 0) {
      rc = apply_update_thread(s, ck_json_object_get(op, "set"));
    } else if (strcmp(name, "stream_widget") == 0) {
      const char *copy = ck_json_object_get_str(op, "copy_text");
      const ck_json *states = ck_json_object_get(op, "states");
      if (states == NULL) {
        rc = ck_stream_widget(s, ck_json_object_get(op, "widget"), copy);
      } else {
        ck_widget_stream *ws = NULL;
        rc = ck_widget_stream_begin(s, ck_json_array_get(states, 0), copy, &ws);
        for (size_t k = 1; rc == CK_OK && k < ck_json_array_size(states); k++)
          rc = ck_widget_stream_update(ws, ck_json_array_get(states, k));
        if (rc == CK_OK)
          rc = ck_widget_stream_end(ws);
      }
    } else if (strcmp(name, "raise_custom_stream_error") == 0) {
      const ck_json *retry = ck_json_object_get(op, "allow_retry");
      return ck_stream_fail_custom(s, ck_json_object_get_str(op, "message"),
                                   ck_json_bool_value(retry));
    } else if (strcmp(name, "raise_stream_error") == 0) {
      const ck_json *retry = ck_json_object_get(op, "allow_retry");
      return ck_stream_fail(s, ck_json_object_get_str(op, "code"),
                            retry ? ck_json_bool_value(retry) : -1);
    } else if (strcmp(name, "raise") == 0) {
      return CK_EHANDLER;
    } else if (strcmp(name, "disconnect") == 0) {
      ck_stream_cancel(s);
      return CK_ECANCELLED;
    } else if (strcmp(name, "default") == 0) {
      return CK_EUNSUPPORTED;
    }
    if (rc != CK_OK)
      return rc;
  }
  return CK_OK;
}

static int h_respond(void *ud, ck_stream *s, const ck_json *user_message) {
  replay *r = ud;
  ck_json *c = hcall(r, "respond");
  ck_json_object_set(c, "thread", ck_json_copy(r->a, canonical_thread(r->a, ck_stream_thread(s))));
  ck_json_object_set(c, "input_user_message",
                     user_message ? ck_json_copy(r->a, user_message) : ck_json_null(r->a));
  record_hcall(r, c);
  return run_script(r, s);
}

static int h_stream_options(void *ud, const ck_call *call, const ck_json *thread,
                            bool *allow_cancel) {
  *allow_cancel = ((replay *)ud)->allow_cancel;
  return CK_OK;
}

static int h_action(void *ud, ck_stream *s, const ck_json *action, const ck_json *sender) {
  replay *r = ud;
  ck_json *c = hcall(r, "action");
  ck_json_object_set(c, "thread", ck_json_copy(r->a, canonical_thread(r->a, ck_stream_thread(s))));
  ck_json_object_set(c, "action", ck_json_copy(r->a, action));
  ck_json_object_set(c, "sender", sender ? ck_json_copy(r->a, sender) : ck_json_null(r->a));
  record_hcall(r, c);
  return run_script(r, s);
}

/* The `return` value of a non-streaming script, or NULL; *is_default is set for "default". */
static const ck_json *script_return(replay *r, bool *is_default) {
  *is_default = false;
  for (size_t i = 0; i < ck_json_array_size(r->script); i++) {
    const ck_json *op = ck_json_array_get(r->script, i);
    const char *name = ck_json_object_get_str(op, "op");
    if (strcmp(name, "return") == 0)
      return ck_json_object_get(op, "value");
    if (strcmp(name, "default") == 0)
      *is_default = true;
  }
  return NULL;
}

static int h_sync_action(void *ud, const ck_call *call, const ck_json *thread,
                         const ck_json *action, const ck_json *sender, ck_json **updated) {
  replay *r = ud;
  ck_json *c = hcall(r, "sync_action");
  ck_json_object_set(c, "thread", ck_json_copy(r->a, canonical_thread(r->a, thread)));
  ck_json_object_set(c, "action", ck_json_copy(r->a, action));
  ck_json_object_set(c, "sender", sender ? ck_json_copy(r->a, sender) : ck_json_null(r->a));
  record_hcall(r, c);
  bool dflt;
  const ck_json *ret = script_return(r, &dflt);
  if (dflt)
    return CK_EUNSUPPORTED;
  if (ret != NULL) {
    ck_json *v = resolve(r, call->arena, ret, ck_json_object_get_str(thread, "id"));
    *updated = ck_json_object_get(v, "updated_item");
  }
  return CK_OK;
}

static int h_feedback(void *ud, const ck_call *call, const char *thread_id, const ck_json *item_ids,
                      const char *kind) {
  replay *r = ud;
  ck_json *c = hcall(r, "add_feedback");
  ck_json_object_set(c, "thread_id", ck_json_str(r->a, thread_id));
  ck_json_object_set(c, "item_ids", ck_json_copy(r->a, item_ids));
  ck_json_object_set(c, "kind", ck_json_str(r->a, kind));
  record_hcall(r, c);
  return CK_OK;
}

static char *b64_encode(ck_arena *a, const unsigned char *p, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = ck_arena_alloc(a, (n + 2) / 3 * 4 + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n)
      v |= p[i + 2];
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
  return out;
}

static int h_transcribe(void *ud, const ck_call *call, const unsigned char *audio, size_t len,
                        const char *mime, const char *media, const char **text) {
  replay *r = ud;
  ck_json *c = hcall(r, "transcribe");
  ck_json_object_set(c, "audio_base64", ck_json_str(r->a, b64_encode(r->a, audio, len)));
  ck_json_object_set(c, "mime_type", ck_json_str(r->a, mime));
  ck_json_object_set(c, "media_type", ck_json_str(r->a, media));
  record_hcall(r, c);
  bool dflt;
  const ck_json *ret = script_return(r, &dflt);
  if (dflt || ret == NULL)
    return CK_EUNSUPPORTED;
  *text = ck_arena_strdup(call->arena, ck_json_object_get_str(ret, "text"));
  return CK_OK;
}

static int att_create(void *ud, const ck_call *call, const char *name, int64_t size,
                      const char *mime, ck_json **att) {
  replay *r = ud;
  log_call(r, "attachment_store.create_attachment", 1, name);
  ck_json *c = hcall(r, "create_attachment");
  ck_json_object_set(c, "name", ck_json_str(r->a, name));
  ck_json_object_set(c, "size", ck_json_int(r->a, size));
  ck_json_object_set(c, "mime_type", ck_json_str(r->a, mime));
  record_hcall(r, c);
  bool dflt;
  const ck_json *ret = script_return(r, &dflt);
  if (dflt || ret == NULL)
    return CK_EUNSUPPORTED;
  *att = resolve(r, call->arena, ret, NULL);
  return CK_OK;
}

static int att_remove(void *ud, const ck_call *call, const char *id) {
  replay *r = ud;
  log_call(r, "attachment_store.delete_attachment", 1, id);
  ck_json *c = hcall(r, "delete_attachment");
  ck_json_object_set(c, "attachment_id", ck_json_str(r->a, id));
  record_hcall(r, c);
  return CK_OK;
}

/* ---- Running a case ---- */

typedef struct collector {
  ck_arena *a;
  ck_json *events;
} collector;

static int collect_frame(void *ud, const char *frame, size_t len) {
  collector *c = ud;
  /* The frame must be exactly "data: " + payload + "\n\n". */
  if (len < 8 || memcmp(frame, "data: ", 6) != 0 || memcmp(frame + len - 2, "\n\n", 2) != 0 ||
      memchr(frame + 6, '\n', len - 8) != NULL)
    ck_json_array_append(c->events, ck_json_str(c->a, "<bad SSE frame>"));
  else
    ck_json_array_append(c->events, ck_json_strn(c->a, frame + 6, len - 8));
  return CK_OK;
}

static const char *category_of(int code) {
  switch (code) {
  case CK_EINVAL:
    return "invalid_request";
  case CK_ENOTFOUND:
    return "not_found";
  default:
    return "server_error";
  }
}

static const char *short_json(ck_arena *a, const ck_json *v) {
  char *s = ck_json_dumps(a, v, NULL);
  if (s != NULL && strlen(s) > 240)
    s[240] = '\0';
  return s ? s : "?";
}

/* Compares a JSON array of byte strings with what we produced. */
static int compare_strings(replay *r, const char *what, const ck_json *want, const ck_json *got) {
  size_t nw = ck_json_array_size(want), ng = ck_json_array_size(got);
  for (size_t i = 0; i < nw && i < ng; i++) {
    const char *w = ck_json_str_value(ck_json_array_get(want, i));
    const char *g = ck_json_str_value(ck_json_array_get(got, i));
    if (strcmp(w, g) != 0)
      return failf(r, "%s[%zu] differs:\n    want %s\n    got  %s", what, i, w, g);
  }
  if (nw != ng)
    return failf(r, "%s: want %zu, got %zu%s%s", what, nw, ng, ng > nw ? "; extra: " : "",
                 ng > nw ? ck_json_str_value(ck_json_array_get(got, nw)) : "");
  return 0;
}

static int run_step(replay *r, const ck_json *step, size_t index, const ck_ctx *ctx) {
  ck_arena *a = r->a;
  r->script = ck_json_object_get(step, "handler");
  r->calls = ck_json_array(a);
  r->hcalls = ck_json_array(a);
  const char *body = ck_json_object_get_str(step, "request");
  size_t len = ck_json_str_len(ck_json_object_get(step, "request"));
  if (body == NULL) {
    /* request_base64: decode with the processor's own lenient rules is not needed here; the
     * base64 in cases is canonical. */
    const char *b64 = ck_json_object_get_str(step, "request_base64");
    size_t n = b64 ? strlen(b64) : 0;
    unsigned char *raw = ck_arena_alloc(a, n);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
      const char *p =
          strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", b64[i]);
      if (b64[i] == '=' || p == NULL)
        continue;
      acc = (acc << 6) |
            (uint32_t)(p - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        raw[o++] = (unsigned char)(acc >> bits);
      }
    }
    body = (const char *)raw;
    len = o;
  }
  const ck_json *resp = ck_json_object_get(step, "response");
  const ck_json *error = ck_json_object_get(step, "error");
  ck_response out;
  ck_error_info err = {0};
  int rc = ck_server_process(r->srv, body, len, ctx, &out, &err);
  int result = 0;

  if (ck_json_is_null(resp)) {
    /* Rejected before responding: we must fail here, or fail a stream before any event. */
    const char *want_cat = ck_json_object_get_str(error, "category");
    int code = rc;
    if (rc == CK_OK && out.stream != NULL) {
      collector col = {a, ck_json_array(a)};
      ck_sink sink = {collect_frame, &col};
      code = ck_stream_run(out.stream, &sink);
      if (code != CK_OK && code != CK_ECANCELLED && ck_json_array_size(col.events) == 0)
        code = ck_stream_error(out.stream)->code;
      else
        code = CK_OK;
      ck_stream_free(out.stream);
    } else if (rc == CK_OK) {
      free(out.body);
    }
    if (code == CK_OK)
      result = failf(r, "step %zu: want rejection (%s), got a response", index, want_cat);
    else if (strcmp(category_of(code), want_cat) != 0)
      result = failf(r, "step %zu: want %s, got %s (%s)", index, want_cat, category_of(code),
                     err.message);
  } else {
    const char *kind = ck_json_object_get_str(resp, "kind");
    if (rc != CK_OK) {
      result = failf(r, "step %zu: want a %s response, got error %s: %s", index, kind,
                     ck_strerror(rc), err.message);
    } else if (strcmp(kind, "json") == 0) {
      if (out.stream != NULL) {
        result = failf(r, "step %zu: want JSON, got a stream", index);
        ck_stream_free(out.stream);
      } else {
        const char *want = ck_json_object_get_str(resp, "body");
        if (out.body_len != strlen(want) || memcmp(out.body, want, out.body_len) != 0)
          result = failf(r, "step %zu: body differs:\n    want %s\n    got  %.*s", index, want,
                         (int)out.body_len, out.body);
        free(out.body);
      }
    } else {
      if (out.stream == NULL) {
        result =
            failf(r, "step %zu: want a stream, got JSON %.*s", index, (int)out.body_len, out.body);
        free(out.body);
      } else {
        collector col = {a, ck_json_array(a)};
        ck_sink sink = {collect_frame, &col};
        int src = ck_stream_run(out.stream, &sink);
        const char *end = src == CK_OK           ? "complete"
                          : src == CK_ECANCELLED ? "disconnected"
                                                 : "aborted";
        char what[64];
        snprintf(what, sizeof(what), "step %zu events", index);
        result = compare_strings(r, what, ck_json_object_get(resp, "events"), col.events);
        const char *want_end = ck_json_object_get_str(resp, "end");
        if (result == 0 && strcmp(end, want_end) != 0)
          result = failf(r, "step %zu: stream ended %s, want %s (%s)", index, end, want_end,
                         ck_stream_error(out.stream)->message);
        if (result == 0 && src != CK_OK && src != CK_ECANCELLED && error != NULL &&
            !ck_json_is_null(error)) {
          const char *want_cat = ck_json_object_get_str(error, "category");
          int code = ck_stream_error(out.stream)->code;
          if (strcmp(category_of(code), want_cat) != 0)
            result = failf(r, "step %zu: aborted as %s, want %s (%s)", index, category_of(code),
                           want_cat, ck_stream_error(out.stream)->message);
        }
        ck_stream_free(out.stream);
      }
    }
  }
  if (result != 0)
    return result;

  const ck_json *want_calls = ck_json_object_get(step, "store_calls");
  if (want_calls != NULL && !ck_json_equal(want_calls, r->calls))
    return failf(r, "step %zu: store calls differ:\n    want %s\n    got  %s", index,
                 short_json(a, want_calls), short_json(a, r->calls));
  const ck_json *want_h = ck_json_object_get(step, "handler_calls");
  if (want_h != NULL && !ck_json_equal(want_h, r->hcalls))
    return failf(r, "step %zu: handler calls differ:\n    want %s\n    got  %s", index,
                 short_json(a, want_h), short_json(a, r->hcalls));
  return 0;
}

/* Dumps the store (threads oldest first, items per thread, attachments in first-saved order)
 * and compares it with store_after. */
static int compare_store(replay *r, const ck_json *want, const ck_ctx *ctx) {
  ck_arena *a = r->a;
  ck_store *st = r->inner;
  ck_page threads = {0};
  if (st->vt->load_threads(st, a, 1 << 30, NULL, CK_ORDER_ASC, ctx, &threads) != CK_OK)
    return failf(r, "store dump: load_threads failed");
  ck_json *got_threads = ck_json_array(a);
  for (size_t i = 0; i < ck_json_array_size(threads.data); i++)
    ck_json_array_append(
        got_threads, ck_json_str(a, ck_json_dumps(a, ck_json_array_get(threads.data, i), NULL)));
  if (compare_strings(r, "store_after.threads", ck_json_object_get(want, "threads"), got_threads) !=
      0)
    return -1;
  const ck_json *want_items = ck_json_object_get(want, "items");
  for (size_t i = 0; i < ck_json_array_size(threads.data); i++) {
    const char *tid =
        ck_json_object_get_str(ck_json_expand(a, ck_json_array_get(threads.data, i)), "id");
    ck_page page = {0};
    if (st->vt->load_thread_items(st, a, tid, NULL, 1 << 30, CK_ORDER_ASC, ctx, &page) != CK_OK)
      return failf(r, "store dump: load_thread_items %s failed", tid);
    ck_json *got = ck_json_array(a);
    for (size_t k = 0; k < ck_json_array_size(page.data); k++)
      ck_json_array_append(got,
                           ck_json_str(a, ck_json_dumps(a, ck_json_array_get(page.data, k), NULL)));
    const ck_json *w = ck_json_object_get(want_items, tid);
    char what[160];
    snprintf(what, sizeof(what), "store_after.items[%.100s]", tid);
    if (w == NULL && ck_json_array_size(got) == 0)
      continue;
    if (w == NULL)
      return failf(r, "store_after.items: unexpected items for %s", tid);
    if (compare_strings(r, what, w, got) != 0)
      return -1;
  }
  ck_json *got_atts = ck_json_array(a);
  for (size_t i = 0; i < ck_json_array_size(r->att_order); i++) {
    ck_json *att = NULL;
    const char *id = ck_json_str_value(ck_json_array_get(r->att_order, i));
    if (st->vt->load_attachment(st, a, id, ctx, &att) == CK_OK)
      ck_json_array_append(got_atts, ck_json_str(a, ck_json_dumps(a, att, NULL)));
  }
  return compare_strings(r, "store_after.attachments", ck_json_object_get(want, "attachments"),
                         got_atts);
}

static int run_case(const char *path, char *name, size_t name_cap, char *why, size_t why_cap) {
  replay r;
  memset(&r, 0, sizeof(r));
  int result = -1;
  char *text = NULL;
  ck_json *doc = NULL;
  snprintf(name, name_cap, "%s", path);
  r.a = ck_arena_new(1 << 16);
  FILE *f = fopen(path, "rb");
  if (f == NULL || r.a == NULL) {
    snprintf(why, why_cap, "cannot open");
    goto done;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  text = malloc((size_t)size + 1);
  if (text == NULL || fread(text, 1, (size_t)size, f) != (size_t)size) {
    snprintf(why, why_cap, "cannot read");
    goto done;
  }
  ck_json_error jerr;
  if (ck_json_parse(r.a, text, (size_t)size, 0, &doc, &jerr) != CK_OK) {
    snprintf(why, why_cap, "case is not valid JSON: %s", jerr.message);
    goto done;
  }
  snprintf(name, name_cap, "%s", ck_json_object_get_str(doc, "name"));
  const ck_json *config = ck_json_object_get(doc, "config");
  const ck_json *clock = ck_json_object_get(config, "clock");
  ck__datetime start;
  const char *start_s = ck_json_object_get_str(clock, "start");
  if (start_s == NULL || ck__datetime_parse(start_s, strlen(start_s), &start) != 0) {
    snprintf(why, why_cap, "bad clock start");
    goto done;
  }
  r.clock_start = start.local_us;
  ck_json_int_value(ck_json_object_get(clock, "step_microseconds"), &r.clock_step);
  r.allow_cancel = ck_json_bool_value(
      ck_json_object_get(ck_json_object_get(config, "stream_options"), "allow_cancel"));

  r.inner = ck_store_memory_new();
  r.rec.vt = &rec_vt;
  r.rec.name = "recording";
  r.att_order = ck_json_array(r.a);
  ck_attachment_store atts = {&r, att_create, att_remove};
  ck_server_config cfg = {0};
  cfg.store = &r.rec;
  cfg.attachments =
      ck_json_bool_value(ck_json_object_get(config, "attachment_store")) ? &atts : NULL;
  cfg.handlers.ud = &r;
  cfg.handlers.respond = h_respond;
  cfg.handlers.action = h_action;
  cfg.handlers.sync_action = h_sync_action;
  cfg.handlers.add_feedback = h_feedback;
  cfg.handlers.transcribe = h_transcribe;
  cfg.handlers.stream_options = h_stream_options;
  cfg.idgen = replay_idgen;
  cfg.idgen_ud = &r;
  cfg.clock = replay_clock;
  cfg.clock_ud = &r;
  r.srv = ck_server_new(&cfg);
  if (r.inner == NULL || r.srv == NULL) {
    snprintf(why, why_cap, "out of memory");
    goto done;
  }
  ck_ctx ctx = {"user", NULL, NULL};
  const ck_json *steps = ck_json_object_get(doc, "steps");
  result = 0;
  for (size_t i = 0; i < ck_json_array_size(steps) && result == 0; i++)
    result = run_step(&r, ck_json_array_get(steps, i), i, &ctx);
  if (result == 0)
    result = compare_store(&r, ck_json_object_get(doc, "store_after"), &ctx);
  if (result != 0)
    snprintf(why, why_cap, "%s", r.failure);
done:
  if (f != NULL)
    fclose(f);
  free(text);
  ck_server_free(r.srv);
  ck_store_free(r.inner);
  ck_arena_free(r.a);
  return result;
}

int main(int argc, char **argv) {
  int failed = 0, passed = 0;
  for (int i = 1; i < argc; i++) {
    char name[256], why[1024] = "";
    if (run_case(argv[i], name, sizeof(name), why, sizeof(why)) == 0) {
      printf("PASS %s\n", name);
      passed++;
    } else {
      printf("FAIL %s: %s\n", name, why);
      failed++;
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
