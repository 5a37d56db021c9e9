/* ck_server_process and the six streaming request types (protocol.md §4.1-§4.6): the work
 * each does before its handler runs, and the pipeline wrapper around the handler (§6). */
#include "pipeline/internal.h"
#include "protocol/schema.h"

#include <chatkit/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ck_server_process(ck_server *srv, const char *body, size_t len, const ck_ctx *ctx,
                      ck_response *out, ck_error_info *err) {
  ck_request req;
  ck_validation_error verr;
  ck_buf json;
  int rc;
  memset(out, 0, sizeof(*out));
  ck_buf_init(&json, 0);
  /* A stream keeps this arena for its whole life: the parsed params, the thread, the user
   * message and the items pending while the model answers. With the demo model that measured
   * 2.77 KB for an 11-character message and 2.93 KB for a 130-character one: a fixed part and
   * about 1.4 bytes per request byte (the text is held in the params and in the message). So
   * the first block is sized from the request, 2.625 KiB plus 2 bytes per body byte in 256-byte
   * steps, rather than giving every stream the room of a long message; one that outgrows it
   * takes a second, doubled block. */
  size_t first = len < 128 * 1024 ? (2688 + 2 * len + 255) & ~(size_t)255 : 256 * 1024;
  ck_arena *a = ck_arena_new(first);
  /* The raw body tree goes to a second arena that is emptied right after validation (and then
   * serves as the stream's scratch arena). It holds one event at a time later, so 1 KB fits
   * a text delta and a bigger event only costs a temporary block. */
  ck_arena *raw = ck_arena_new(1024);
  if (a == NULL || raw == NULL) {
    ck_arena_free(raw);
    ck_arena_free(a);
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  }
  rc = ck__request_parse2(raw, a, body, len, &req, &verr);
  ck_arena_reset(raw);
  if (rc != CK_OK) {
    if (rc == CK_EINVAL)
      ck__set_error(err, rc, "%s: %s", verr.path, verr.message);
    else
      ck__set_error(err, rc, "%s", ck_strerror(rc));
    goto fail;
  }
  out->type = req.type;
  if (ck_request_is_streaming(req.type)) {
    ck_stream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
      rc = ck__set_error(err, CK_ENOMEM, "out of memory");
      goto fail;
    }
    s->scratch = raw;
    raw = NULL;
    s->srv = srv;
    s->ctx = ctx;
    s->arena = a;
    s->req = req;
    atomic_init(&s->cancelled, false);
    atomic_init(&s->input_tokens, 0);
    atomic_init(&s->output_tokens, 0);
    pthread_mutex_init(&s->mu, NULL);
    /* ck_stream_sleep measures its deadline on the monotonic clock. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    ck_buf_init(&s->canonical, 0);
    ck_buf_init(&s->frame, 0);
    out->stream = s;
    return CK_OK;
  }
  rc = ck__process_json(srv, a, &req, ctx, &json, err);
  if (rc != CK_OK)
    goto fail;
  out->body = ck_buf_take(&json, &out->body_len);
  if (out->body == NULL) {
    rc = ck__set_error(err, CK_ENOMEM, "out of memory");
    goto fail;
  }
  ck_arena_free(raw);
  ck_arena_free(a);
  return CK_OK;
fail:
  ck_buf_free(&json);
  ck_arena_free(raw);
  ck_arena_free(a);
  return rc;
}

/* ---- The pipeline wrapper ---- */

typedef enum handler_kind { HANDLE_RESPOND, HANDLE_ACTION } handler_kind;

typedef struct handler_args {
  handler_kind kind;
  const ck_json *user_message; /* respond */
  const ck_json *action;       /* action */
  const ck_json *sender;       /* action */
  ck_json *first_event;        /* sent through the pipeline before the handler runs */
} handler_args;

int ck__run_cancel(ck_stream *s) {
  ck_json *pending = ck__pending_items(s, s->arena);
  if (pending == NULL)
    return CK_ENOMEM;
  int rc;
  if (s->srv->h.stream_cancelled != NULL)
    rc = s->srv->h.stream_cancelled(s->srv->h.ud, s, pending);
  else
    rc = ck_stream_default_cancel(s, pending);
  return rc == CK_OK ? CK_ECANCELLED : rc;
}

static int call_handler(ck_stream *s, const handler_args *args) {
  const ck_handlers *h = &s->srv->h;
  if (args->kind == HANDLE_RESPOND)
    return h->respond ? h->respond(h->ud, s, args->user_message) : CK_OK;
  /* The reference's default action handler raises, which becomes a stream.error event. */
  return h->action ? h->action(h->ud, s, args->action, args->sender) : CK_EUNSUPPORTED;
}

/* protocol.md §6.6/§6.3: the end of the handler's events. An error becomes one error event
 * (only what the handler chose to say reaches the client; any other failure is the reference's
 * generic, retryable stream.error), then the final thread-change check runs; a consumer that
 * went away gets the cancellation routine instead. */
int ck__pipeline_finish(ck_stream *s, int rc) {
  if (rc == CK_ECANCELLED || ck_stream_is_cancelled(s)) {
    ck_stream_cancel(s);
    return ck__run_cancel(s);
  }
  if (rc != CK_OK) {
    const char *code = s->fail_set ? s->fail_code : "stream.error";
    const char *msg = s->fail_set ? s->fail_message : NULL;
    bool retry = s->fail_set ? s->fail_allow_retry : true;
    s->fail_set = false;
    ck_json *err = ck_event_error(s->scratch, code, msg, retry);
    rc = err ? ck__stream_emit(s, err) : CK_ENOMEM;
    if (rc == CK_ECANCELLED)
      return ck__run_cancel(s);
    if (rc != CK_OK)
      return rc;
  }
  rc = ck__stream_check_thread(s);
  ck_arena_reset(s->scratch);
  if (rc == CK_ECANCELLED)
    return ck__run_cancel(s);
  return rc;
}

/* protocol.md §6: stream_options, the handler's events, then ck__pipeline_finish. A handler
 * that returns CK_PENDING goes on asynchronously (see async.c). */
static int run_pipeline(ck_stream *s, const handler_args *args) {
  bool allow_cancel = true;
  int rc;
  if (s->srv->h.stream_options != NULL) {
    ck_call call = {s->srv, s->arena, s->ctx};
    rc = s->srv->h.stream_options(s->srv->h.ud, &call, s->thread, &allow_cancel);
    if (rc != CK_OK)
      return rc;
  }
  ck_json *opts = ck_json_object(s->scratch);
  ck_json *ev = ck_json_object(s->scratch);
  if (opts == NULL || ev == NULL ||
      ck_json_object_set(opts, "allow_cancel", ck_json_bool(s->scratch, allow_cancel)) ||
      ck_json_object_set(ev, "type", ck_json_str(s->scratch, "stream_options")) ||
      ck_json_object_set(ev, "stream_options", opts))
    return CK_ENOMEM;
  rc = ck__stream_send(s, ev);
  ck_arena_reset(s->scratch);
  if (rc == CK_ECANCELLED)
    return ck__run_cancel(s);
  if (rc != CK_OK)
    return rc;
  rc = ck__stream_snapshot(s);
  if (rc != CK_OK)
    return rc;

  rc = args->first_event ? ck__stream_emit(s, args->first_event) : CK_OK;
  if (rc == CK_OK) {
    ck__async_enter(s);
    rc = call_handler(s, args);
    if (rc == CK_PENDING)
      return ck__async_started(s);
    ck__async_leave(s);
  }
  return ck__pipeline_finish(s, rc);
}

/* ---- Prefix steps ---- */

static const char *param_str(ck_stream *s, const char *key) {
  return ck_json_object_get_str(s->req.params, key);
}

static int fail_store(ck_stream *s, int rc, const char *what, const char *id) {
  if (rc == CK_ENOTFOUND)
    return ck__set_error(ck__stream_err(s), rc, "%s %s not found", what, id ? id : "");
  return ck__set_error(ck__stream_err(s), rc, "store error: %s", ck_strerror(rc));
}

/* ---- The stream lease ----
 *
 * One response at a time per thread, even across processes sharing the store: a stream takes
 * the thread's lease before its first write and gives it back when it ends, so a second
 * request on a busy thread is refused before it sends anything instead of interleaving its
 * items with the first one's. Lease calls bypass nothing else: a store without leases (NULL
 * entries) or a server with leases turned off streams exactly as before. */

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The lease holder id: the server's random prefix and this stream's address, unique among the
 * live streams of every process sharing the store. Rebuilt when needed rather than kept. */
#define HOLDER_MAX 64
static const char *lease_holder(const ck_stream *s, char out[HOLDER_MAX]) {
  snprintf(out, HOLDER_MAX, "%s-%p", s->srv->lease_prefix, (const void *)s);
  return out;
}

static int lease_acquire(ck_stream *s, const char *tid) {
  ck_store *st = s->srv->store;
  if (st->vt->acquire_stream == NULL || s->srv->lease_ms <= 0 || tid == NULL)
    return CK_OK;
  char holder[HOLDER_MAX];
  int rc = st->vt->acquire_stream(st, tid, lease_holder(s, holder), s->srv->lease_ms, s->ctx);
  if (rc == CK_ECONFLICT)
    return ck__set_error(ck__stream_err(s), rc, "thread %s is busy with another response", tid);
  if (rc != CK_OK)
    return fail_store(s, rc, "Thread", tid);
  s->lease_held = true;
  s->lease_thread = tid;
  s->lease_at_ms = monotonic_ms();
  return CK_OK;
}

int ck__stream_lease_renew(ck_stream *s) {
  if (!s->lease_held || s->srv->store->vt->renew_stream == NULL)
    return CK_OK;
  int64_t now = monotonic_ms();
  if (now - s->lease_at_ms < s->srv->lease_ms / 2)
    return CK_OK;
  ck_store *st = s->srv->store;
  char holder[HOLDER_MAX];
  int rc =
      st->vt->renew_stream(st, s->lease_thread, lease_holder(s, holder), s->srv->lease_ms, s->ctx);
  if (rc == CK_OK) {
    s->lease_at_ms = now;
  } else if (rc == CK_ECONFLICT) {
    /* The lease expired (a pause longer than the TTL) and another response may be running:
     * going on would interleave with it. */
    s->lease_held = false;
    return ck__set_error(ck__stream_err(s), rc, "thread %s: the stream lost its lease",
                         s->lease_thread);
  }
  return CK_OK;
}

void ck__stream_lease_release(ck_stream *s) {
  if (!s->lease_held)
    return;
  s->lease_held = false;
  ck_store *st = s->srv->store;
  /* A failed release is not reported: the stream is over either way, and the lease expires. */
  char holder[HOLDER_MAX];
  if (st->vt->release_stream != NULL)
    st->vt->release_stream(st, s->lease_thread, lease_holder(s, holder), s->ctx);
}

/* Loads the thread of the request and takes its lease, before the operation writes anything. */
static int load_thread(ck_stream *s) {
  const char *tid = param_str(s, "thread_id");
  int rc = s->srv->store->vt->load_thread(s->srv->store, s->arena, tid, s->ctx, &s->thread);
  if (rc != CK_OK)
    return fail_store(s, rc, "Thread", tid);
  return lease_acquire(s, tid);
}

/* Sets `key` on a copy of `obj` and puts the result in canonical order again. */
static int set_and_normalize(ck_stream *s, ck_model model, const ck_json *obj, const char *key,
                             ck_json *val, ck_json **out) {
  ck_json *copy = ck_json_copy(s->arena, obj);
  if (copy == NULL)
    return CK_ENOMEM;
  int rc = val ? ck_json_object_set(copy, key, val) : ck_json_object_del(copy, key);
  if (rc != CK_OK && rc != CK_ENOTFOUND)
    return rc;
  ck_validation_error verr;
  rc = ck_protocol_normalize(s->arena, model, copy, out, &verr);
  if (rc == CK_EINVAL)
    return ck__set_error(ck__stream_err(s), CK_ESTORE, "stored %s is invalid: %s", verr.path,
                         verr.message);
  return rc;
}

/* §4.1 steps 4-7: builds, stores and sends the user message. */
static int add_user_message(ck_stream *s, const ck_json **out) {
  const ck_json *input = ck_json_object_get(s->req.params, "input");
  const char *tid = ck_json_object_get_str(s->thread, "id");
  ck_store *st = s->srv->store;
  const char *id = ck_stream_new_id(s, "message");
  ck_json *atts = ck_json_array(s->arena);
  ck_json *tidv = ck_json_str(s->arena, tid);
  if (id == NULL || atts == NULL || tidv == NULL)
    return CK_ENOMEM;
  const ck_json *ids = ck_json_object_get(input, "attachments");
  for (size_t i = 0; i < ck_json_array_size(ids); i++) {
    const char *aid = ck_json_str_value(ck_json_array_get(ids, i));
    ck_json *att = NULL;
    int rc = st->vt->load_attachment(st, s->arena, aid, s->ctx, &att);
    if (rc != CK_OK)
      return fail_store(s, rc, "Attachment", aid);
    rc = set_and_normalize(s, CK_MODEL_ATTACHMENT, att, "thread_id", tidv, &att);
    if (rc == CK_OK)
      rc = ck_json_array_append(atts, att);
    if (rc != CK_OK)
      return rc;
  }
  const char *now = ck_stream_now(s);
  ck_json *item = ck_json_object(s->arena);
  if (now == NULL || item == NULL)
    return CK_ENOMEM;
  int rc = CK_OK;
  rc |= ck_json_object_set(item, "id", ck_json_str(s->arena, id));
  rc |= ck_json_object_set(item, "thread_id", tidv);
  rc |= ck_json_object_set(item, "created_at", ck_json_str(s->arena, now));
  rc |= ck_json_object_set(item, "type", ck_json_str(s->arena, "user_message"));
  rc |= ck_json_object_set(item, "content", ck_json_object_get(input, "content"));
  rc |= ck_json_object_set(item, "attachments", atts);
  ck_json *quoted = ck_json_object_get(input, "quoted_text");
  if (quoted != NULL)
    rc |= ck_json_object_set(item, "quoted_text", quoted);
  rc |=
      ck_json_object_set(item, "inference_options", ck_json_object_get(input, "inference_options"));
  if (rc != CK_OK)
    return CK_ENOMEM;
  for (size_t i = 0; i < ck_json_array_size(atts); i++) {
    rc = st->vt->save_attachment(st, ck_json_array_get(atts, i), s->ctx);
    if (rc != CK_OK)
      return fail_store(s, rc, "Attachment", "");
  }
  rc = st->vt->add_thread_item(st, tid, item, s->ctx);
  if (rc != CK_OK)
    return fail_store(s, rc, "Thread", tid);
  ck_json *ev = ck_event_item(s->scratch, "thread.item.done", ck_item_for_wire(s->scratch, item));
  if (ev == NULL)
    return CK_ENOMEM;
  rc = ck__stream_send(s, ev);
  ck_arena_reset(s->scratch);
  *out = item;
  return rc;
}

static int op_create(ck_stream *s) {
  const char *id = ck_stream_new_id(s, "thread");
  const char *now = id ? ck_stream_now(s) : NULL;
  s->thread = now ? ck_thread_new(s->arena, id, now) : NULL;
  if (s->thread == NULL)
    return CK_ENOMEM;
  /* A new thread is leased too: its id reaches the client with thread.created, and a second
   * request on it must not start while this first response still runs. */
  int rc = lease_acquire(s, id);
  if (rc != CK_OK)
    return rc;
  rc = s->srv->store->vt->save_thread(s->srv->store, s->thread, s->ctx);
  if (rc != CK_OK)
    return fail_store(s, rc, "Thread", id);
  ck_json *wire = ck_thread_for_wire(s->scratch, s->thread, NULL);
  ck_json *ev = ck_json_object(s->scratch);
  if (wire == NULL || ev == NULL ||
      ck_json_object_set(ev, "type", ck_json_str(s->scratch, "thread.created")) ||
      ck_json_object_set(ev, "thread", wire))
    return CK_ENOMEM;
  rc = ck__stream_send(s, ev);
  ck_arena_reset(s->scratch);
  const ck_json *msg = NULL;
  if (rc == CK_OK)
    rc = add_user_message(s, &msg);
  if (rc != CK_OK)
    return rc;
  handler_args args = {HANDLE_RESPOND, msg, NULL, NULL, NULL};
  return run_pipeline(s, &args);
}

static int op_add_user_message(ck_stream *s) {
  const ck_json *msg = NULL;
  int rc = load_thread(s);
  if (rc == CK_OK)
    rc = add_user_message(s, &msg);
  if (rc != CK_OK)
    return rc;
  handler_args args = {HANDLE_RESPOND, msg, NULL, NULL, NULL};
  return run_pipeline(s, &args);
}

static bool is_pending_tool_call(const ck_json *item) {
  const char *type = ck_json_object_get_str(item, "type");
  const char *status = ck_json_object_get_str(item, "status");
  return type && status && strcmp(type, "client_tool_call") == 0 && strcmp(status, "pending") == 0;
}

static int op_add_client_tool_output(ck_stream *s) {
  ck_store *st = s->srv->store;
  const char *tid = param_str(s, "thread_id");
  ck_page page = {0};
  int rc = load_thread(s);
  if (rc != CK_OK)
    return rc;
  rc = st->vt->load_thread_items(st, s->arena, tid, NULL, 1, CK_ORDER_DESC, s->ctx, &page);
  if (rc != CK_OK)
    return fail_store(s, rc, "Thread", tid);
  ck_json *last = ck_json_expand(s->arena, ck_json_array_get(page.data, 0));
  if (!is_pending_tool_call(last))
    return ck__set_error(ck__stream_err(s), CK_ESTATE,
                         "Last thread item in %s was not a ClientToolCallItem", tid);
  ck_json *result = ck_json_object_get(s->req.params, "result");
  ck_json *done = NULL;
  rc = set_and_normalize(s, CK_MODEL_THREAD_ITEM, last, "output",
                         ck_json_is_null(result) ? NULL : result, &done);
  ck_json *status = ck_json_str(s->arena, "completed");
  if (rc != CK_OK || status == NULL || ck_json_object_set(done, "status", status) != CK_OK)
    return rc != CK_OK ? rc : CK_ENOMEM;
  rc = st->vt->save_item(st, tid, done, s->ctx);
  if (rc != CK_OK)
    return fail_store(s, rc, "Thread", tid);
  /* Older tool calls that never got an output would confuse the next model turn. */
  rc = st->vt->load_thread_items(st, s->arena, tid, NULL, 20, CK_ORDER_DESC, s->ctx, &page);
  if (rc != CK_OK)
    return fail_store(s, rc, "Thread", tid);
  for (size_t i = 0; i < ck_json_array_size(page.data); i++) {
    ck_json *item = ck_json_expand(s->arena, ck_json_array_get(page.data, i));
    if (!is_pending_tool_call(item))
      continue;
    rc = st->vt->delete_thread_item(st, tid, ck_json_object_get_str(item, "id"), s->ctx);
    if (rc != CK_OK)
      return fail_store(s, rc, "Thread", tid);
  }
  handler_args args = {HANDLE_RESPOND, NULL, NULL, NULL, NULL};
  return run_pipeline(s, &args);
}

/* §4.4 step 3: the answered copy of a structured input item. */
static int answer_structured_input(ck_stream *s, const ck_json *item, ck_json **out) {
  ck_arena *a = s->arena;
  const ck_json *sub = ck_json_object_get(s->req.params, "input");
  const char *status = ck_json_object_get_str(sub, "status");
  const ck_json *answers = ck_json_object_get(sub, "answers");
  bool skip_all = status != NULL && strcmp(status, "skipped") == 0;
  ck_json *copy = ck_json_copy(a, item);
  ck_json *inputs = ck_json_object_get(copy, "inputs");
  if (copy == NULL)
    return CK_ENOMEM;
  for (size_t i = 0; i < ck_json_array_size(inputs); i++) {
    ck_json *in = ck_json_array_get(inputs, i);
    const ck_json *ans = ck_json_object_get(answers, ck_json_object_get_str(in, "id"));
    const ck_json *values = ck_json_object_get(ans, "values");
    ck_json *answer = ck_json_object(a);
    ck_json *vals = ck_json_array(a);
    if (answer == NULL || vals == NULL)
      return CK_ENOMEM;
    bool skipped = skip_all || ans == NULL ||
                   ck_json_bool_value(ck_json_object_get(ans, "skipped")) ||
                   ck_json_array_size(values) == 0;
    if (!skipped) {
      const char *type = ck_json_object_get_str(in, "type");
      bool single = type && strcmp(type, "multiple_choice") == 0 &&
                    !ck_json_bool_value(ck_json_object_get(in, "multiple"));
      size_t n = single ? 1 : ck_json_array_size(values);
      for (size_t k = 0; k < n; k++)
        if (ck_json_array_append(vals, ck_json_copy(a, ck_json_array_get(values, k))) != CK_OK)
          return CK_ENOMEM;
    }
    if (ck_json_object_set(answer, "values", vals) ||
        ck_json_object_set(answer, "skipped", ck_json_bool(a, skipped)) ||
        ck_json_object_set(in, "answer", answer))
      return CK_ENOMEM;
  }
  return set_and_normalize(s, CK_MODEL_THREAD_ITEM, copy, "status", ck_json_str(a, status), out);
}

static int op_add_structured_input(ck_stream *s) {
  const char *tid = param_str(s, "thread_id");
  const char *item_id = param_str(s, "item_id");
  ck_json *item = NULL, *updated = NULL;
  int rc = load_thread(s);
  if (rc != CK_OK)
    return rc;
  rc = s->srv->store->vt->load_item(s->srv->store, s->arena, tid, item_id, s->ctx, &item);
  if (rc != CK_OK)
    return fail_store(s, rc, "Item", item_id);
  const char *type = ck_json_object_get_str(item, "type");
  const char *status = ck_json_object_get_str(item, "status");
  if (type == NULL || strcmp(type, "structured_input") != 0)
    return ck__set_error(ck__stream_err(s), CK_ESTATE, "Item %s is not a StructuredInputItem",
                         item_id);
  if (status == NULL || strcmp(status, "pending") != 0)
    return ck__set_error(ck__stream_err(s), CK_ESTATE, "Structured input item %s is not pending",
                         item_id);
  rc = answer_structured_input(s, item, &updated);
  if (rc != CK_OK)
    return rc;
  ck_json *ev = ck_event_item(s->arena, "thread.item.replaced", updated);
  if (ev == NULL)
    return CK_ENOMEM;
  handler_args args = {HANDLE_RESPOND, NULL, NULL, NULL, ev};
  return run_pipeline(s, &args);
}

static int op_retry_after_item(ck_stream *s) {
  ck_store *st = s->srv->store;
  const char *tid = param_str(s, "thread_id");
  const char *item_id = param_str(s, "item_id");
  ck_json *newer = ck_json_array(s->arena);
  ck_json *target = NULL;
  const char *after = NULL;
  int rc = load_thread(s);
  if (rc != CK_OK)
    return rc;
  if (newer == NULL)
    return CK_ENOMEM;
  for (;;) {
    ck_page page = {0};
    rc = st->vt->load_thread_items(st, s->arena, tid, after, 20, CK_ORDER_DESC, s->ctx, &page);
    if (rc != CK_OK)
      return fail_store(s, rc, "Thread", tid);
    for (size_t i = 0; i < ck_json_array_size(page.data) && target == NULL; i++) {
      ck_json *item = ck_json_expand(s->arena, ck_json_array_get(page.data, i));
      const char *id = ck_json_object_get_str(item, "id");
      if (id != NULL && strcmp(id, item_id) == 0)
        target = item;
      else if (ck_json_array_append(newer, item) != CK_OK)
        return CK_ENOMEM;
    }
    if (target != NULL || !page.has_more || page.after == NULL)
      break;
    after = page.after;
  }
  /* The reference ends the stream without a single event when the item is not found. */
  if (target == NULL)
    return CK_OK;
  const char *type = ck_json_object_get_str(target, "type");
  if (type == NULL || strcmp(type, "user_message") != 0)
    return ck__set_error(ck__stream_err(s), CK_ESTATE, "Item %s is not a user message", item_id);
  for (size_t i = 0; i < ck_json_array_size(newer); i++) {
    const char *id = ck_json_object_get_str(ck_json_array_get(newer, i), "id");
    rc = st->vt->delete_thread_item(st, tid, id, s->ctx);
    if (rc != CK_OK)
      return fail_store(s, rc, "Thread", tid);
  }
  handler_args args = {HANDLE_RESPOND, target, NULL, NULL, NULL};
  return run_pipeline(s, &args);
}

static int op_custom_action(ck_stream *s) {
  const char *tid = param_str(s, "thread_id");
  const char *item_id = param_str(s, "item_id");
  ck_json *sender = NULL;
  int rc = load_thread(s);
  if (rc != CK_OK)
    return rc;
  if (item_id != NULL && item_id[0] != '\0') {
    rc = s->srv->store->vt->load_item(s->srv->store, s->arena, tid, item_id, s->ctx, &sender);
    if (rc != CK_OK)
      return fail_store(s, rc, "Item", item_id);
    const char *type = ck_json_object_get_str(sender, "type");
    if (type == NULL || strcmp(type, "widget") != 0) {
      /* The reference answers a non-widget sender with one error event and no
       * stream_options. */
      ck_json *ev = ck_event_error(s->scratch, "stream.error", NULL, false);
      rc = ev ? ck__stream_send(s, ev) : CK_ENOMEM;
      ck_arena_reset(s->scratch);
      return rc;
    }
  }
  handler_args args = {HANDLE_ACTION, NULL, ck_json_object_get(s->req.params, "action"), sender,
                       NULL};
  return run_pipeline(s, &args);
}

int ck_stream_run(ck_stream *s, const ck_sink *sink) {
  int rc;
  s->sink = *sink;
  switch (s->req.type) {
  case CK_REQ_THREADS_CREATE:
    rc = op_create(s);
    break;
  case CK_REQ_THREADS_ADD_USER_MESSAGE:
    rc = op_add_user_message(s);
    break;
  case CK_REQ_THREADS_ADD_CLIENT_TOOL_OUTPUT:
    rc = op_add_client_tool_output(s);
    break;
  case CK_REQ_THREADS_ADD_STRUCTURED_INPUT:
    rc = op_add_structured_input(s);
    break;
  case CK_REQ_THREADS_RETRY_AFTER_ITEM:
    rc = op_retry_after_item(s);
    break;
  case CK_REQ_THREADS_CUSTOM_ACTION:
    rc = op_custom_action(s);
    break;
  default:
    rc = CK_EINVAL;
    break;
  }
  if (rc != CK_OK && rc != CK_ECANCELLED && rc != CK_PENDING &&
      (s->error == NULL || s->error->code == CK_OK))
    ck__set_error(ck__stream_err(s), rc, "%s", ck_strerror(rc));
  if (rc != CK_PENDING)
    ck__stream_lease_release(s);
  return rc;
}
