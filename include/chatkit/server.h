/* chatkit/server.h - the request processor (the reference's ChatKitServer) and the handler API.
 *
 * One entry point, ck_server_process, takes a request body and a request context and returns
 * either a JSON body or a stream. The stream runs the integration's handler through the event
 * pipeline of the reference: store calls in order, persist-before-emit, pending-item tracking,
 * thread.updated after a handler changed the thread, error events, and the cancellation
 * routine when the consumer goes away. Nothing here does network I/O; the HTTP layer (or a
 * test) consumes the stream through a sink.
 *
 * Threads: ck_server_process and ck_stream_run call the store and the handlers, which may
 * block, so they run on worker threads. A ck_server may be used from several threads at once;
 * one request (and one ck_stream) is used by one thread at a time, except ck_stream_cancel,
 * which any thread may call.
 */
#ifndef CHATKIT_SERVER_H
#define CHATKIT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <chatkit/json.h>
#include <chatkit/protocol.h>
#include <chatkit/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_server ck_server;
typedef struct ck_stream ck_stream;

/* ---- Ids and time (injectable so tests are deterministic) ---------------------------------- */

/** Generates an id for `kind`: "thread", "message", "tool_call", "task", "workflow",
 * "attachment" or "sdk_hidden_context". `thread` is the thread's metadata (NULL for threads and
 * attachments). Writes a NUL-terminated id of at most `cap` bytes into `out`. Returns CK_OK or
 * an error. The default gives the reference's "<prefix>_<8 hex>" (thr, msg, tc, tsk, wf, atc,
 * shcx). */
typedef int (*ck_idgen_fn)(void *ud, const char *kind, const ck_json *thread, char *out,
                           size_t cap);

/** Returns the current wall-clock time as microseconds since 1970-01-01T00:00:00 in local time
 * (timestamps are naive, like the reference's datetime.now()). */
typedef int64_t (*ck_clock_fn)(void *ud);

/** The id prefix the reference uses for an id kind ("thread" -> "thr"), NULL when unknown. */
const char *ck_id_prefix(const char *kind);

/* ---- The handler API ------------------------------------------------------------------------ */

/** What a non-streaming handler gets besides its arguments. */
typedef struct ck_call {
  ck_server *server; /* for ck_server_generate_id */
  ck_arena *arena;   /* results may be allocated here; freed when the request ends */
  const ck_ctx *ctx; /* the request context */
} ck_call;

/** The integration's handlers. Every function pointer may be NULL: the reference's default
 * applies (respond: no events; action: a stream.error event; sync_action, transcribe:
 * CK_EUNSUPPORTED; add_feedback: nothing; stream_options: allow_cancel true; stream_cancelled:
 * the default cancellation routine). Handlers may block; they run on worker threads. */
typedef struct ck_handlers {
  void *ud; /* passed to every handler */

  /** Produces the reply to `user_message` (NULL after a client tool output or a structured
   * input) by emitting events on `s`. The thread is ck_stream_thread(s). Return CK_OK; any
   * error becomes an error event (see ck_stream_fail). Return CK_ECANCELLED (or any code) once
   * an emit reported that the client left. */
  int (*respond)(void *ud, ck_stream *s, const ck_json *user_message);

  /** Handles a widget action on a stream. `sender` is the widget item or NULL. */
  int (*action)(void *ud, ck_stream *s, const ck_json *action, const ck_json *sender);

  /** Handles a non-streaming widget action. Set `*updated_item` (from call->arena) to a
   * replacement item or leave it NULL. */
  int (*sync_action)(void *ud, const ck_call *call, const ck_json *thread, const ck_json *action,
                     const ck_json *sender, ck_json **updated_item);

  /** Records feedback (`kind` is "positive" or "negative") on `item_ids` (a JSON array). */
  int (*add_feedback)(void *ud, const ck_call *call, const char *thread_id, const ck_json *item_ids,
                      const char *kind);

  /** Transcribes audio: `media_type` is `mime_type` before its first ';'. Set `*text` to a
   * NUL-terminated string from call->arena. */
  int (*transcribe)(void *ud, const ck_call *call, const unsigned char *audio, size_t len,
                    const char *mime_type, const char *media_type, const char **text);

  /** Decides the stream options for `thread`; sets `*allow_cancel`. */
  int (*stream_options)(void *ud, const ck_call *call, const ck_json *thread, bool *allow_cancel);

  /** True when no handler ever blocks (each computes briefly or goes asynchronous with
   * CK_PENDING). With a store that does not block either, the service runs requests on its
   * event-loop thread, saving two thread hops per request. */
  bool nonblocking;

  /** Replaces the cancellation routine. `pending` is a JSON array of the items that were
   * added but not done. The default (ck_stream_default_cancel) saves non-empty assistant
   * messages and a hidden "cancelled" context item. */
  int (*stream_cancelled)(void *ud, ck_stream *s, const ck_json *pending);
} ck_handlers;

/** The optional attachment store: byte storage for two-phase uploads. */
typedef struct ck_attachment_store {
  void *ud;
  /** Creates the attachment record for an upload (id from ck_server_generate_id(...,
   * "attachment")), typically with an upload_descriptor and, for images, a preview_url. The
   * server validates it and saves it to the store. NULL: CK_EUNSUPPORTED. */
  int (*create)(void *ud, const ck_call *call, const char *name, int64_t size,
                const char *mime_type, ck_json **attachment);
  /** Deletes the stored bytes of an attachment. */
  int (*remove)(void *ud, const ck_call *call, const char *attachment_id);
} ck_attachment_store;

/* ---- The server ---------------------------------------------------------------------------- */

typedef struct ck_server_config {
  ck_store *store;                        /* required; borrowed, must outlive the server */
  const ck_attachment_store *attachments; /* optional; borrowed */
  ck_handlers handlers;                   /* copied */
  /* NULL: the default ids, prefix + 8 hex digits from getrandom, buffered per server (so a
   * process must not fork and keep using a server it created before the fork). */
  ck_idgen_fn idgen;
  void *idgen_ud;
  ck_clock_fn clock; /* NULL: wall-clock local time */
  void *clock_ud;
  /* How long a stream's lease on its thread lasts without renewal, in milliseconds (see
   * ck_store_vtable.acquire_stream): 0 means CK_STREAM_LEASE_DEFAULT_MS, a negative value
   * turns leases off. A stream renews its lease when it emits an event and half of this has
   * passed, so it must exceed the longest pause between two events of a response; it is also
   * how long a thread stays busy after the process streaming on it died. */
  int stream_lease_ms;
} ck_server_config;

/** The default stream lease: one minute. */
#define CK_STREAM_LEASE_DEFAULT_MS 60000

/** Creates a processor. Returns NULL when out of memory or when `cfg->store` is NULL. */
ck_server *ck_server_new(const ck_server_config *cfg);

/** Frees the processor. Streams it returned must have been freed. NULL is a no-op. */
void ck_server_free(ck_server *srv);

/** Replaces the handlers. Call it before the server serves requests (for handlers that need
 * objects created after the server, such as the agent runtime, which needs the service). */
void ck_server_set_handlers(ck_server *srv, ck_handlers handlers);

/** True when the configured handlers promise never to block (ck_handlers.nonblocking). */
bool ck_server_handlers_nonblocking(const ck_server *srv);

/** The store the processor was configured with (borrowed). */
ck_store *ck_server_store(ck_server *srv);

/** Generates an id through the configured generator, allocated from `a`. */
const char *ck_server_generate_id(ck_server *srv, ck_arena *a, const char *kind,
                                  const ck_json *thread);

/** Reads the configured clock and formats it as a timestamp string allocated from `a`. */
const char *ck_server_now(ck_server *srv, ck_arena *a);

/** What went wrong with a request. */
typedef struct ck_error_info {
  int code;          /* a ck_err code */
  char message[256]; /* for the client: names the offending field for CK_EINVAL */
} ck_error_info;

/** The result of ck_server_process. */
typedef struct ck_response {
  ck_stream *stream; /* set for streaming requests: run it, then free it */
  char *body;        /* otherwise: the JSON body (malloc'd; free() it) */
  size_t body_len;
  ck_request_type type; /* the request type (for logs and metrics) */
} ck_response;

/** Processes one request body for the user in `ctx` (borrowed until the response, and any
 * stream in it, is freed).
 *
 * Non-streaming requests run to completion here and fill `out->body`. Streaming requests are
 * only parsed and validated; `out->stream` does the work when run. Returns CK_OK, or an error
 * with `err` filled: CK_EINVAL (invalid request, nothing was done), CK_ENOTFOUND, CK_ESTORE,
 * CK_EUNSUPPORTED (no attachment store or handler), CK_ESTATE, CK_EHANDLER, CK_ENOMEM. */
int ck_server_process(ck_server *srv, const char *body, size_t len, const ck_ctx *ctx,
                      ck_response *out, ck_error_info *err);

/* ---- Streams -------------------------------------------------------------------------------- */

/** Receives each event of a stream as a complete SSE frame: "data: <json>\n\n". Returns CK_OK,
 * or CK_ECANCELLED when the client went away (the stream then runs its cancellation routine).
 * Called on the thread that runs the stream. */
typedef struct ck_sink {
  int (*frame)(void *ud, const char *frame, size_t len);
  void *ud;
} ck_sink;

/** Runs a stream to its end, sending events to `sink` (copied; its `ud` must stay valid until
 * the stream ends). Returns CK_OK when the stream completed,
 * CK_ECANCELLED when the client disconnected (the cancellation routine has run), or another
 * code when the stream was aborted (details in ck_stream_error); then no error event was sent,
 * as in the reference. Run a stream once. */
int ck_stream_run(ck_stream *s, const ck_sink *sink);

/** Marks the stream's consumer as gone. Safe from any thread; the next emit reports
 * CK_ECANCELLED to the handler. */
void ck_stream_cancel(ck_stream *s);

/** True once the consumer went away. */
bool ck_stream_is_cancelled(const ck_stream *s);

/** The error of an aborted stream (valid after ck_stream_run returned). */
const ck_error_info *ck_stream_error(const ck_stream *s);

/** Number of events the stream has sent so far. */
size_t ck_stream_events_sent(const ck_stream *s);

/** Adds model token usage to the stream's totals, which the service writes into the request's
 * log line (input_tokens, output_tokens). Safe from any thread while the stream is alive; the
 * agent runtime calls it for every usage report of its model calls. */
void ck_stream_add_usage(ck_stream *s, int64_t input_tokens, int64_t output_tokens);

/** The stream's token totals so far (both 0 when no model reported usage). */
void ck_stream_usage(const ck_stream *s, int64_t *input_tokens, int64_t *output_tokens);

/** Frees a stream. NULL is a no-op. */
void ck_stream_free(ck_stream *s);

/* ---- Asynchronous handlers ---------------------------------------------------------------- */

/* A handler that waits on the network or a timer should not hold a worker thread. It arranges
 * for its events to be produced elsewhere (typically on the event loop) and returns CK_PENDING
 * from respond or action; ck_stream_run then returns CK_PENDING too. The producer feeds events
 * with ck_stream_push / ck_stream_push_canonical from any thread and finishes with
 * ck_stream_push_end or ck_stream_push_fail, after which it must not touch the stream. The
 * stream's owner learns through the notify callback that queued events wait, and calls
 * ck_stream_drain on a thread that may block (the store is called there); one stream is never
 * drained by two threads at once. When the consumer goes away, the on_cancel callback tells the
 * producer to stop; it still ends with ck_stream_push_end. */

/** Sets the callback that asks the owner to call ck_stream_drain soon. It runs on the thread
 * that pushed, without locks held, at most once per drain. */
void ck_stream_set_notify(ck_stream *s, void (*notify)(void *ud, ck_stream *s), void *ud);

/** Sets the callback that tells an asynchronous producer to stop: the consumer left, or an
 * event failed to persist. It runs once, on whichever thread noticed, with the stream's lock
 * held: it may only signal (set a flag, uv_async_send), never call stream functions. Passing
 * NULL unregisters it; after that returns, the callback is not running and will not run. */
void ck_stream_on_cancel(ck_stream *s, void (*cb)(void *ud), void *ud);

/** Queues an event in any reference-compatible form (it is copied and validated when drained).
 * Returns CK_OK, CK_ECANCELLED (the consumer left: stop producing), CK_ESTATE (already ended)
 * or CK_ENOMEM. Thread-safe. */
int ck_stream_push(ck_stream *s, const ck_json *event);

/** Queues an event that is already canonical (built with the protocol builders). */
int ck_stream_push_canonical(ck_stream *s, const ck_json *event);

/** Queues a change of the thread's field `key` ("title", "status", "metadata",
 * "allowed_image_domains") to `value` (copied). It is applied in order with the events, then
 * saved and announced with thread.updated like a change made by a blocking handler.
 * Thread-safe. */
int ck_stream_push_thread_set(ck_stream *s, const char *key, const ck_json *value);

/** Queues an assistant message text delta ({"type":"thread.item.updated","item_id":...,
 * "update":{"type":"assistant_message.content_part.text_delta",...}}) without building JSON:
 * the cheapest way to stream model tokens. `text` is `len` bytes of valid UTF-8.
 * Thread-safe. */
int ck_stream_push_text_delta(ck_stream *s, const char *item_id, int content_index,
                              const char *text, size_t len);

/** Ends the assistant message `item_id` that this producer streamed (thread.item.added, the
 * content parts, text deltas, annotations): the pipeline sends content_part.done for each part
 * and thread.item.done with the whole item from what it keeps of the message anyway (for the
 * cancellation path), so the producer need not keep its own copy of the text. A message that
 * is not open is left alone. Thread-safe. */
int ck_stream_push_message_done(ck_stream *s, const char *item_id);

/** A workflow step for ck_stream_push_workflow: the ck_workflow_* function of the same name. */
typedef enum ck_workflow_op {
  CK_WORKFLOW_START = 1,
  CK_WORKFLOW_ADD_TASK = 2,
  CK_WORKFLOW_UPDATE_TASK = 3,
  CK_WORKFLOW_END = 4
} ck_workflow_op;

/** The workflow helpers (ck_workflow_start and the rest) for asynchronous producers: queues the
 * step, which the pipeline runs in order with the pushed events. `value` is the workflow type
 * as a JSON string ("custom" or "reasoning") for START, the task for ADD_TASK and
 * UPDATE_TASK, and the summary for END (NULL: the duration); `index` is UPDATE_TASK's task and
 * `expanded` END's flag. A step that fails when run (an invalid task, no workflow to update)
 * stops the producer like a failed event. Thread-safe. Returns CK_OK, CK_EINVAL (bad op, or
 * no value where one is needed), CK_ECANCELLED or CK_ENOMEM. */
int ck_stream_push_workflow(ck_stream *s, ck_workflow_op op, const ck_json *value, size_t index,
                            bool expanded);

/** Holds back the notify callback for the pushes that follow, until ck_stream_push_flush, or
 * ck_stream_push_end / ck_stream_push_fail, which end the hold. A producer with several events
 * ready at once (the first events of a message, a model read that carried several deltas)
 * pushes them inside a hold, so that they are drained together and reach the client in one
 * write instead of one each. Holds do not nest. Thread-safe. */
void ck_stream_push_hold(ck_stream *s);

/** Ends a hold: if pushed events wait, the owner is notified now. Thread-safe. */
void ck_stream_push_flush(ck_stream *s);

/** Ends the asynchronous handler successfully. Thread-safe. */
int ck_stream_push_end(ck_stream *s);

/** Ends the asynchronous handler with a failure: with a `message`, a custom error event
 * ({"code":"custom","message",...}); otherwise an error event with `code` (NULL:
 * "stream.error"). `allow_retry` < 0 picks the code's default. Thread-safe. */
int ck_stream_push_fail(ck_stream *s, const char *code, const char *message, int allow_retry);

/** Processes queued events. Returns CK_PENDING while the handler goes on, otherwise the final
 * result, as ck_stream_run would. */
int ck_stream_drain(ck_stream *s);

/** Waits up to `ms` milliseconds, returning early with CK_ECANCELLED when the consumer leaves.
 * For blocking handlers that pace their output. */
int ck_stream_sleep(ck_stream *s, int ms);

/* ---- Inside handlers: emitting events ------------------------------------------------------- */

/** The thread being worked on: its metadata object, mutable. Changes (title, status, metadata,
 * allowed_image_domains) are noticed after the next emitted event and saved, followed by a
 * thread.updated event, as in the reference. Once a handler has this pointer it may change the
 * object at any time, so from then on the pipeline checks the thread after every event; to
 * only read it, use ck_stream_thread_view, and to change a field, ck_stream_set_thread. */
ck_json *ck_stream_thread(ck_stream *s);

/** The thread being worked on, read-only (costs nothing per event). */
const ck_json *ck_stream_thread_view(const ck_stream *s);

/** Sets the thread's field `key` ("title", "status", "metadata", "allowed_image_domains") to
 * `value` (copied); NULL removes it. Noticed after the next event like any change. Returns
 * CK_OK or CK_ENOMEM. */
int ck_stream_set_thread(ck_stream *s, const char *key, const ck_json *value);

/** The request context. */
const ck_ctx *ck_stream_ctx(const ck_stream *s);

/** The server running the stream. */
ck_server *ck_stream_server(ck_stream *s);

/** A scratch arena for building events. It is emptied after every emit, so values built from
 * it must not be used after the ck_emit that sent them. Blocking handlers only: while an
 * asynchronous stream waits for its producer the arena is released (NULL). */
ck_arena *ck_stream_scratch(ck_stream *s);

/** An arena that lives as long as the stream. */
ck_arena *ck_stream_arena(ck_stream *s);

/** Emits a stream event given as JSON in any reference-compatible form; it is validated and
 * canonicalised first. Returns CK_OK, CK_EINVAL (not a valid event; nothing sent),
 * CK_ECANCELLED (the client left: stop and return), or a store error (persisting a done,
 * replaced or removed item failed). */
int ck_emit(ck_stream *s, const ck_json *event);

/** Emits an event that is already canonical (built with the chatkit/protocol.h builders);
 * skips validation. */
int ck_emit_canonical(ck_stream *s, ck_json *event);

/** Makes the handler's failure a custom error event {"code":"custom","message",...}. Returns
 * CK_EHANDLER, for `return ck_stream_fail_custom(...)`. */
int ck_stream_fail_custom(ck_stream *s, const char *message, bool allow_retry);

/** Makes the handler's failure an error event with `code` and no message; `allow_retry` < 0
 * picks the code's default (true for "stream.error"). Returns CK_EHANDLER. */
int ck_stream_fail(ck_stream *s, const char *code, int allow_retry);

/** A new id of `kind` for an item in this stream's thread (arena-allocated). */
const char *ck_stream_new_id(ck_stream *s, const char *kind);

/** The current time as a timestamp string (arena-allocated). */
const char *ck_stream_now(ck_stream *s);

/** The default cancellation routine (see ck_handlers.stream_cancelled). */
int ck_stream_default_cancel(ck_stream *s, const ck_json *pending);

/* ---- Inside handlers: assistant text, progress and workflows ------------------------------- */

/** Emits {"type":"progress_update","icon"?,"text"}: an ephemeral status line. `icon` may be
 * NULL. */
int ck_stream_progress(ck_stream *s, const char *icon, const char *text);

typedef struct ck_assistant ck_assistant;

/** Starts an assistant message: emits thread.item.added (empty content) and a content part.
 * `id` NULL generates a "message" id. `*out` is owned by the stream. */
int ck_assistant_begin(ck_stream *s, const char *id, ck_assistant **out);

/** Streams `len` bytes of text (valid UTF-8) as a text_delta of the current part. */
int ck_assistant_delta(ck_assistant *m, const char *text, size_t len);

/** Finishes the message: emits content_part.done and thread.item.done with the whole text. */
int ck_assistant_end(ck_assistant *m);

/** The text streamed so far (NUL-terminated, owned by the message). */
const char *ck_assistant_text(const ck_assistant *m, size_t *len);

/** Starts a workflow of `type` ("custom" or "reasoning") as the reference's start_workflow
 * does: a reasoning workflow is announced at once, a custom one with its first task. Ends an
 * open workflow first. */
int ck_workflow_start(ck_stream *s, const char *type);

/** Appends a task (validated as a workflow task) to the open workflow, starting a custom one if
 * none is open; emits the deferred thread.item.added or a workflow.task.added update. */
int ck_workflow_add_task(ck_stream *s, const ck_json *task);

/** Replaces task `index` of the open workflow and emits workflow.task.updated. CK_ESTATE when
 * no workflow is open or the index is out of range. */
int ck_workflow_update_task(ck_stream *s, const ck_json *task, size_t index);

/** Ends the open workflow (no-op when none): sets `summary` (NULL: {"duration": whole seconds
 * since the workflow started}) and `expanded`, and emits thread.item.done. */
int ck_workflow_end(ck_stream *s, const ck_json *summary, bool expanded);

/* ---- Inside handlers: widgets --------------------------------------------------------------- */

/** Streams a finished widget: one thread.item.done with a new widget item (id of kind
 * "message"). `copy_text` may be NULL. */
int ck_stream_widget(ck_stream *s, const ck_json *widget, const char *copy_text);

typedef struct ck_widget_stream ck_widget_stream;

/** Starts streaming a widget through successive states: emits thread.item.added with the first
 * state. `*ws` is owned by the stream. */
int ck_widget_stream_begin(ck_stream *s, const ck_json *first, const char *copy_text,
                           ck_widget_stream **ws);

/** Emits the difference between the previous state and `next` (text deltas or a root
 * replacement, possibly nothing). */
int ck_widget_stream_update(ck_widget_stream *ws, const ck_json *next);

/** Emits thread.item.done with the last state. */
int ck_widget_stream_end(ck_widget_stream *ws);

#ifdef __cplusplus
}
#endif
#endif
