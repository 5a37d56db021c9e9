/* Internal: the processor's and the stream's state, shared by the files of src/pipeline. */
#ifndef CK_PIPELINE_INTERNAL_H
#define CK_PIPELINE_INTERNAL_H

#include <chatkit/server.h>

#include <pthread.h>
#include <stdatomic.h>

struct ck_server {
  ck_store *store;
  const ck_attachment_store *attachments;
  ck_handlers h;
  ck_idgen_fn idgen;
  void *idgen_ud;
  ck_clock_fn clock;
  void *clock_ud;
  int lease_ms;          /* the stream lease TTL; <= 0: streams take no lease */
  char lease_prefix[24]; /* random per server (so per process): the first half of a holder id */
  /* Random bytes for the default ids, fetched 256 at a time: one getrandom per 64 ids instead
   * of one per id (ids are made on workers and on the loop, hence the lock). */
  pthread_mutex_t rnd_mu;
  unsigned char rnd[256];
  size_t rnd_pos; /* bytes of rnd used; sizeof(rnd) when empty */
};

/* An assistant message content part while it streams: its text grows in a heap buffer so
 * thousands of deltas cost amortised O(1) each instead of copying the whole text every time. */
typedef struct ck__part {
  ck_buf text;
  ck_json *annotations; /* array in the stream arena */
} ck__part;

/* An item that was added but is not done yet (what a cancel may persist). */
typedef struct ck__pending {
  const char *id;  /* stream arena */
  ck_json *item;   /* deep copy in the stream arena */
  ck__part *parts; /* assistant messages only (heap) */
  size_t nparts;
} ck__pending;

struct ck_widget_stream {
  ck_stream *s;
  const char *id;
  const char *created_at;
  const char *copy_text;
  ck_json *state; /* last state, in the stream arena */
  struct ck_widget_stream *next;
};

struct ck_assistant {
  ck_stream *s;
  const char *id;
  const char *created_at;
  ck_buf text;
  bool ended;
  struct ck_assistant *next;
};

/* The open workflow of a stream (the reference's AgentContext.workflow_item). */
typedef struct ck__workflow {
  ck_json *item;      /* the workflow item, in the stream arena */
  int64_t started_us; /* clock value at start, for the duration summary */
  bool announced;     /* thread.item.added was sent */
} ck__workflow;

/* An event queued by an asynchronous handler, as serialised JSON, or the end marker. */
typedef struct ck__queued {
  struct ck__queued *next;
  bool end;      /* the handler finished; `rc` is its result */
  char *set_key; /* not NULL: set this thread field to the JSON in `json` (heap) */
  int rc;
  bool canonical; /* built with the protocol builders: skip validation */
  /* A text delta queued without JSON: `json` holds the item id (`id_len` bytes, then NUL)
   * followed by the delta text (`len` bytes). */
  bool delta;
  bool message_done; /* ck_stream_push_message_done: `json` is the item id */
  int wf_op; /* ck_stream_push_workflow: the ck_workflow_op; `json` its value or "", the task
              * index in `content_index`, END's `expanded` in `rc` */
  int content_index;
  size_t id_len;
  size_t len;
  char json[]; /* the event text (NUL-terminated) */
} ck__queued;

struct ck_stream {
  ck_server *srv;
  const ck_ctx *ctx;
  ck_arena *arena;   /* lives as long as the stream */
  ck_arena *scratch; /* emptied after every emit */
  ck_request req;
  ck_json *thread;      /* the live thread metadata the handler may change */
  uint64_t thread_hash; /* fingerprint of the thread object at the last change check */
  bool thread_exposed;  /* a handler holds the mutable thread (ck_stream_thread) */
  bool thread_dirty;    /* changed through ck_stream_set_thread or a queued change */
  ck_buf canonical;     /* its canonical form then (what was last saved or announced) */
  ck_buf frame;         /* the SSE frame being built */
  ck_sink sink;         /* copied: the caller's struct may be gone when an async stream drains */
  atomic_bool cancelled;
  _Atomic int64_t input_tokens, output_tokens; /* model usage, for the request log */
  size_t sent;
  ck_error_info *error; /* why the stream failed, once it did (heap; see ck__stream_err) */
  /* How the handler asked its failure to be reported. */
  bool fail_set;
  const char *fail_code;
  const char *fail_message;
  bool fail_allow_retry;
  ck__pending *pending; /* heap array */
  size_t npending, cap_pending;
  struct ck_widget_stream *widgets;
  struct ck_assistant *messages; /* assistant helpers, freed with the stream */
  ck__workflow workflow;
  /* Asynchronous handlers: the queue is shared with producer threads under `mu`. */
  pthread_mutex_t mu;
  pthread_cond_t wake; /* signalled on cancel, for ck_stream_sleep */
  ck__queued *qhead, *qtail;
  int async_error; /* an event failed to persist: the rest is dropped */
  bool async;      /* the handler returned CK_PENDING and has not ended */
  bool draining;   /* a drain is running or scheduled: pushes do not notify */
  bool ended;      /* the end marker was pushed */
  bool held;       /* ck_stream_push_hold: pushes wait for ck_stream_push_flush to notify */
  void (*notify)(void *ud, ck_stream *s);
  void *notify_ud;
  void (*on_cancel)(void *ud);
  void *on_cancel_ud;
  /* The lease on the thread (see ck_store_vtable.acquire_stream), held from the prefix work
   * until the stream ends. */
  bool lease_held;
  const char *lease_thread; /* the thread id (stream arena) */
  int64_t lease_at_ms;      /* monotonic time of the last acquire or renewal */
};

/** Returns the stream's error record, allocated when first needed (most streams never fail),
 * or NULL without memory. */
ck_error_info *ck__stream_err(ck_stream *s);

/** Emits a canonical event through the pipeline (persist, track, send, check the thread). */
int ck__stream_emit(ck_stream *s, ck_json *event);

/** Emits a text delta of assistant message `item_id` through the pipeline, as ck__stream_emit
 * would the equivalent event, without building it as a JSON tree. `text` is valid UTF-8. */
int ck__stream_emit_text_delta(ck_stream *s, const char *item_id, int content_index,
                               const char *text, size_t len);

/** Sends a canonical event without pipeline bookkeeping (prefix events and stream_options). */
int ck__stream_send(ck_stream *s, const ck_json *event);

/** Takes the snapshot the thread-change check compares against. */
int ck__stream_snapshot(ck_stream *s);

/** The thread-change check: saves a changed thread and sends thread.updated. */
int ck__stream_check_thread(ck_stream *s);

/** Frees the pending-item bookkeeping. */
void ck__pending_clear(ck_stream *s);

/** Tracks an added item. */
int ck__pending_add(ck_stream *s, const ck_json *item);

/** Forgets a pending item (done, replaced or removed). */
void ck__pending_remove(ck_stream *s, const char *id);

/** Applies a thread.item.updated update to the pending copy. */
int ck__pending_update(ck_stream *s, const char *item_id, const ck_json *update);

/** The pending items as they stand, as a JSON array from `a` (assistant texts materialised). */
ck_json *ck__pending_items(ck_stream *s, ck_arena *a);

/** Ends pending assistant message `item_id` from what the pipeline kept of it: a
 * content_part.done per part (its text, no annotations, as the reference sends it) and
 * thread.item.done with the whole item (text and annotations), through the pipeline. A message
 * that is not pending (already done, or never added) is left alone. */
int ck__pending_message_done(ck_stream *s, const char *item_id);

/** Runs the cancellation routine (the handler's or the default); returns CK_ECANCELLED. */
int ck__run_cancel(ck_stream *s);

/** Ends the pipeline after the handler's events with the handler's result `rc`. */
int ck__pipeline_finish(ck_stream *s, int rc);

/** Asynchronous handlers (async.c): called around the handler call, and when it returned
 * CK_PENDING. */
void ck__async_enter(ck_stream *s);
void ck__async_leave(ck_stream *s);
int ck__async_started(ck_stream *s);

/** Frees queued asynchronous events. */
void ck__async_clear(ck_stream *s);

/** Renews the stream's lease when half of its TTL has passed (called on every emit). Returns
 * CK_OK, or CK_ECONFLICT (with the stream's error set) when another holder took the lease
 * over; a store failure is ignored until the next emit tries again. */
int ck__stream_lease_renew(ck_stream *s);

/** Gives the stream's lease back if it holds one. Called wherever a stream is known to have
 * ended: when ck_stream_run or ck_stream_drain returns anything but CK_PENDING, and, as a
 * safety net, by ck_stream_free. */
void ck__stream_lease_release(ck_stream *s);

/** Runs a non-streaming request (everything but the six streaming types). */
int ck__process_json(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                     ck_buf *body, ck_error_info *err);

/** Sets an error: code and printf message. Returns the code. */
int ck__set_error(ck_error_info *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** "limit or 20" as the reference computes it, clamped to int. */
int ck__page_limit(const ck_json *params);

#endif
