/* upstream/model_internal.h - what the model client's source files share (internal).
 *
 *   client.c     the client, calls, attempts, timeouts, retries, cancellation
 *   common.c     names, stream state, failures, usage, event delivery, redaction
 *   request.c    request bodies for both APIs (and Responses items -> Chat messages)
 *   chat.c       the Chat Completions stream -> neutral events
 *   responses.c  the Responses stream -> neutral events
 *   curl_uv.c    libcurl on the libuv loop
 *   sse.c        the SSE framing
 */
#ifndef CK_UPSTREAM_MODEL_INTERNAL_H
#define CK_UPSTREAM_MODEL_INTERNAL_H

#include <chatkit/mem.h>
#include <chatkit/model.h>

#include "upstream/curl_uv.h"
#include "upstream/sse.h"

/* The most tool calls one Chat Completions response may carry; more is a protocol error. */
#define CK__MAX_TOOL_CALLS 128

/* One tool call being assembled from Chat Completions fragments or Responses events. */
typedef struct ck__tool_slot {
  long index; /* the Chat "index", -1 when the server sent none */
  ck_buf id;  /* Chat: tool_call id (call_...); Responses: the item id (fc_...) */
  ck_buf call_id;
  ck_buf name;
  ck_buf args;
  bool delivered;
} ck__tool_slot;

/* The state of one attempt's stream, reset before every attempt. */
typedef struct ck__stream {
  ck_arena *scratch; /* JSON of the event being handled, reset at every event; borrowed */
  ck_buf text;       /* the current message's text so far (for TEXT_DONE) */
  ck_buf message_id; /* Responses: the current message item's id */
  ck__tool_slot *slots;
  size_t nslots;
  size_t slots_cap;
  ck_model_usage usage;
  bool have_usage;
  bool message_open; /* Chat: MESSAGE_START was delivered */
  bool terminal;     /* a terminal event arrived ([DONE], response.completed, ...) */
  bool finish_seen;  /* Chat: a finish_reason arrived */
  char finish_raw[48];
  ck_buf response_id;
} ck__stream;

/* Why an attempt failed (kept until the call decides to retry or to report it). */
typedef struct ck__failure {
  ck_model_error_kind kind;
  int status; /* library code */
  bool retryable;
  ck_buf message;
  ck_buf code;
} ck__failure;

typedef enum ck__call_state {
  CK__CALL_RUNNING = 0, /* an HTTP attempt is in flight */
  CK__CALL_BACKOFF = 1, /* waiting before the next attempt */
  CK__CALL_DONE = 2,    /* the result is decided; on_done runs from the timer */
} ck__call_state;

struct ck_model_client {
  uv_loop_t *loop;
  ck__curl_uv *glue;
  ck_model_config cfg; /* strings point into the copies below */
  char *base_url;
  char *api_key;              /* wiped before it is freed */
  struct curl_slist *headers; /* Content-Type, Accept, auth and the extra headers */
  char *model;
  char *ca_file;
  ck_model_api api;
  bool is_openai; /* api.openai.com: the dialect defaults differ */
  bool stream_usage;
  bool developer_role;
  uint64_t rng;         /* xorshift state for backoff jitter */
  ck_model_call *calls; /* every call not yet freed */
  size_t active;
  /* The JSON of the model event being handled, for every call: events are parsed and handled
   * one at a time on the loop thread, and nothing parsed outlives its event callback, so one
   * arena serves all calls instead of 2 KiB per open conversation. */
  ck_arena *scratch;
};

struct ck_model_call {
  ck_model_client *client;
  ck_model_call *prev, *next;
  ck_model_event_fn on_event;
  ck_model_done_fn on_done;
  void *ud;
  uv_timer_t timer; /* deadlines, backoff waits and the deferred on_done */
  CURL *easy;
  bool attached; /* easy is added to the multi handle */
  char *url;
  char *body;
  size_t body_len;
  ck__call_state state;
  int attempts;
  bool cancelled;
  bool output;     /* an event was delivered: never retry from here on */
  bool abort_xfer; /* the write callback should make curl stop */
  bool got_body;   /* the attempt received a body byte */
  bool streaming;  /* 2xx with an event stream (or an unknown type): parse as SSE */
  bool json_body;  /* 2xx with application/json: a non-streamed answer */
  bool keep_text;  /* assemble the answer text for TEXT_DONE (ck_model_request.no_done_text) */
  uint64_t t_start, t_attempt, t_last_byte; /* uv_now() milliseconds */
  long http_status;
  int64_t retry_after_ms; /* -1: none */
  int should_retry;       /* -1 unknown, 0 no, 1 yes (x-should-retry) */
  char request_id[128];
  ck_buf errbody; /* a non-2xx body, or a whole JSON body */
  ck__sse sse;
  ck__stream st;
  ck__failure fail;
  bool failed;
  ck_model_finish finish;
};

/* ---- request.c ---- */

/** Builds the JSON body of `req` for the client's API into `out`. Returns CK_OK, CK_EINVAL or
 * CK_ENOMEM/CK_ETOOBIG. */
int ck__model_build_body(const ck_model_client *c, const ck_model_request *req, ck_buf *out);

/* ---- common.c (used by every file) ---- */

/** Delivers an event unless the call was cancelled; marks output as delivered. Returns
 * nonzero when the stream must stop (the call was cancelled from the callback). */
int ck__model_emit(ck_model_call *call, const ck_model_event *ev);

/** Records a failure of the current attempt (the first one wins) and asks curl to stop.
 * Always returns 1 so SSE callbacks can `return ck__model_fail(...)`. */
int ck__model_fail(ck_model_call *call, ck_model_error_kind kind, int status, bool retryable,
                   const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/** Finds a string field "error.message"-style: copies the message and code of an error
 * object (OpenAI, vLLM top-level, string or integer codes) into the failure. */
int ck__model_fail_json(ck_model_call *call, ck_model_error_kind kind, bool retryable,
                        const ck_json *err_obj);

/** Fills `u` from a usage object of either API. Returns true when it held token counts. */
bool ck__model_parse_usage(const ck_json *obj, ck_model_usage *u);

/** Clears a failure record. */
void ck__failure_reset(ck__failure *f);

/** Replaces every occurrence of the client's API key in `b` with "[redacted]". */
void ck__model_redact(const ck_model_client *c, ck_buf *b);

/* ---- stream state (common.c) ---- */

void ck__stream_init(ck__stream *st);
void ck__stream_reset(ck__stream *st);
void ck__stream_free(ck__stream *st);
/** Returns a new zeroed slot, or NULL when out of memory or past CK__MAX_TOOL_CALLS. */
ck__tool_slot *ck__stream_new_slot(ck__stream *st, size_t cap);

/* ---- chat.c / responses.c ---- */

/** SSE event callbacks for ck__sse (ud is the call). */
int ck__chat_on_event(void *ud, const char *event, size_t event_len, const char *data,
                      size_t data_len);
int ck__responses_on_event(void *ud, const char *event, size_t event_len, const char *data,
                           size_t data_len);

/** Called at the end of a successful transfer: completes what the stream left open (Chat:
 * text done, tool calls, usage) and decides success or truncation. */
void ck__chat_finish(ck_model_call *call);
void ck__responses_finish(ck_model_call *call);

/** Handles a whole non-streamed JSON answer (a server that ignored stream:true). */
void ck__chat_whole(ck_model_call *call, const char *body, size_t len);
void ck__responses_whole(ck_model_call *call, const char *body, size_t len);

#endif
