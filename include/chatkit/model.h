/* chatkit/model.h - a streaming client for OpenAI-compatible model servers.
 *
 * A ck_model_client sends requests to one upstream (OpenAI, Azure OpenAI, Ollama, vLLM,
 * llama.cpp, OpenRouter, Groq, ...) through libcurl driven by a libuv loop that the caller owns
 * and runs. It speaks the Responses API (`POST {base}/responses`) and Chat Completions
 * (`POST {base}/chat/completions`), always streaming, and turns either wire format into one
 * small set of NEUTRAL events, so the agent layer does not care which API or server answered.
 *
 * Threads: every function here must be called on the loop thread, and every callback runs on
 * it. A client and its calls are not thread-safe.
 *
 * Process setup: libcurl needs curl_global_init() once per process before any thread starts.
 * ck_model_client_new calls ck_model_global_init(), which does it under a pthread_once, so an
 * application that wants control over the moment calls ck_model_global_init() early in main().
 *
 * Secrets: the API key is sent only in the Authorization header. It is never logged, never
 * put into an error message (server messages that echo it are redacted) and the client copies
 * it into memory that is wiped when the client is freed.
 *
 * Call lifecycle: ck_model_call_start returns a call; events follow through `on_event`; then
 * exactly one `on_done` ends the call, on success, on error, on timeout or after
 * ck_model_call_cancel. The call pointer is valid until on_done returns and must not be used
 * afterwards. on_done never runs from inside ck_model_call_start or ck_model_call_cancel.
 *
 * Retries: a call is retried (with backoff, honouring Retry-After) only while no event at all
 * has been delivered for it; once anything was delivered, a failure ends the call with an
 * error and the output already delivered stays delivered. See docs/internals/upstream.md.
 */
#ifndef CHATKIT_MODEL_H
#define CHATKIT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <chatkit/json.h>
#include <chatkit/log.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_model_client ck_model_client;
typedef struct ck_model_call ck_model_call;

/* Which upstream API a client speaks. */
typedef enum ck_model_api {
  CK_MODEL_API_AUTO = 0,      /* Responses for api.openai.com, Chat Completions otherwise */
  CK_MODEL_API_RESPONSES = 1, /* POST {base}/responses */
  CK_MODEL_API_CHAT = 2,      /* POST {base}/chat/completions */
} ck_model_api;

/* A three-way setting: leave it at AUTO to get the per-provider default. */
enum { CK_MODEL_AUTO = 0, CK_MODEL_ON = 1, CK_MODEL_OFF = 2 };

/* Client configuration. Strings are copied by ck_model_client_new. A field left at 0 / NULL
 * takes the default in brackets. */
typedef struct ck_model_config {
  const char *base_url; /* ["https://api.openai.com/v1"], without the trailing endpoint */
  const char *api_key;  /* sent as "Authorization: Bearer <key>"; NULL or "": no header */
  /* Extra request headers as "Name: value" strings, terminated by NULL (for example Azure's
   * "api-key: ..." or OpenRouter's "HTTP-Referer: ..."). Values are never logged. */
  const char *const *headers;
  ck_model_api api;  /* [AUTO] */
  const char *model; /* the default model when a request names none */

  uint32_t connect_timeout_ms;    /* DNS + TCP + TLS [10 s] */
  uint32_t first_byte_timeout_ms; /* from sending until the first body byte [120 s] */
  uint32_t idle_timeout_ms;       /* between body bytes once the body has started [60 s] */
  uint32_t total_timeout_ms;      /* the whole call, retries and waits included [600 s] */

  int max_retries;             /* retries after the first attempt [2]; negative: none */
  uint32_t retry_base_ms;      /* backoff base: min(base * 2^n, max) minus <= 25% jitter [500] */
  uint32_t retry_max_ms;       /* backoff cap [8000] */
  uint32_t retry_after_max_ms; /* a longer Retry-After means "do not retry" [120 s] */

  /* Dialect options (Chat Completions only). */
  int stream_usage;   /* send stream_options.include_usage [AUTO: on for api.openai.com] */
  int developer_role; /* keep the "developer" role [AUTO: only for api.openai.com; else it
                         becomes "system", which every server knows] */

  size_t max_event_bytes; /* cap on one SSE line/event and on assembled text [16 MiB] */
  size_t max_error_body;  /* cap on a kept error body [64 KiB] */
  const char *ca_file;    /* CA bundle for TLS [libcurl's default] */
  ck_log *log;            /* optional (borrowed): one line per failed attempt, no secrets */
} ck_model_config;

/* ---- Requests --------------------------------------------------------------------------- */

/* One model call. The client serialises it inside ck_model_call_start, so every pointer may
 * be freed as soon as that returns. */
typedef struct ck_model_request {
  const char *model;        /* NULL: the client's default model */
  const char *instructions; /* the system prompt; NULL: none */
  /* The conversation as Responses-API input items: an array of {"role","content"} /
   * {"type":"message",...}, {"type":"function_call",...}, {"type":"function_call_output",...}
   * and {"type":"reasoning",...} objects, or a plain string (one user message). For Chat
   * Completions the client converts them to messages (function_call items become assistant
   * tool_calls, outputs become "tool" messages, reasoning items are dropped). */
  const ck_json *input;
  /* Function tools as an array of Responses-style {"type":"function","name","description",
   * "parameters","strict"} objects (the Chat form {"type":"function","function":{...}} is
   * accepted too). NULL or empty: no tools. */
  const ck_json *tools;
  const ck_json *tool_choice; /* "auto" | "none" | "required" | {"type":"function","name":X} */
  int parallel_tool_calls;    /* CK_MODEL_AUTO (not sent), CK_MODEL_ON or CK_MODEL_OFF; never
                                 sent without tools */
  /* Members merged verbatim into the top level of the request body last (temperature,
   * max_output_tokens or max_tokens, reasoning, store, ...). The caller picks the names that
   * fit the API in use. NULL: none. */
  const ck_json *extra;
  /* CK_MODEL_EV_TEXT_DONE then carries only a whole text the server sends itself (the
   * Responses API's output_text.done), never a copy the client assembled from the deltas
   * (empty instead): for a caller that keeps the streamed text anyway, one copy of every
   * answer less. */
  bool no_done_text;
} ck_model_request;

/* ---- Events ----------------------------------------------------------------------------- */

typedef enum ck_model_event_type {
  /* An assistant message begins. `item_id` is the Responses message id ("msg_..."), which
   * the agent may reuse as the ChatKit assistant message id; NULL for Chat Completions, which
   * has no such id. */
  CK_MODEL_EV_MESSAGE_START = 1,
  CK_MODEL_EV_TEXT_DELTA = 2,      /* `text` is the next piece of visible text */
  CK_MODEL_EV_TEXT_DONE = 3,       /* `text` is the message's whole text */
  CK_MODEL_EV_REFUSAL_DELTA = 4,   /* `text` is the next piece of a refusal */
  CK_MODEL_EV_REASONING_DELTA = 5, /* `text` is reasoning (summary) text */
  CK_MODEL_EV_ANNOTATION = 6,      /* `annotation` is one annotation object (url_citation...) */
  CK_MODEL_EV_TOOL_CALL = 7,       /* `tool_call` is one complete function call */
  CK_MODEL_EV_USAGE = 8,           /* `usage` holds the token counts (at most once) */
} ck_model_event_type;

typedef struct ck_model_usage {
  int64_t input_tokens;  /* prompt_tokens for Chat Completions */
  int64_t output_tokens; /* completion_tokens */
  int64_t total_tokens;
  int64_t reasoning_tokens; /* 0 when not reported */
  int64_t cached_tokens;    /* 0 when not reported */
} ck_model_usage;

typedef struct ck_model_tool_call {
  const char *id;        /* Responses item id ("fc_..."); NULL for Chat Completions */
  const char *call_id;   /* the id tool results must quote; synthesised ("call_<n>") if the
                            server sent none */
  const char *name;      /* never NULL or empty */
  const char *arguments; /* the JSON text of the arguments as the model produced it ("{}" when
                            it sent nothing); not validated: the agent reports bad JSON back */
  size_t arguments_len;
} ck_model_tool_call;

/* One event. Every pointer is owned by the call and valid only during the callback. */
typedef struct ck_model_event {
  ck_model_event_type type;
  const char *item_id; /* the Responses output item the event belongs to, or NULL */
  const char *text;    /* TEXT_DELTA, TEXT_DONE, REFUSAL_DELTA, REASONING_DELTA; UTF-8 */
  size_t text_len;
  ck_model_tool_call tool_call; /* TOOL_CALL */
  const ck_json *annotation;    /* ANNOTATION */
  ck_model_usage usage;         /* USAGE */
} ck_model_event;

/* ---- Completion ------------------------------------------------------------------------- */

typedef enum ck_model_finish {
  CK_MODEL_FINISH_NONE = 0,       /* the call failed */
  CK_MODEL_FINISH_STOP = 1,       /* the model finished its answer */
  CK_MODEL_FINISH_TOOL_CALLS = 2, /* at least one TOOL_CALL was delivered */
  CK_MODEL_FINISH_LENGTH = 3,     /* the output-token cap was hit */
  CK_MODEL_FINISH_CONTENT_FILTER = 4,
  CK_MODEL_FINISH_OTHER = 5, /* an unknown reason; see finish_raw */
} ck_model_finish;

typedef enum ck_model_error_kind {
  CK_MODEL_ERR_NONE = 0,
  CK_MODEL_ERR_NETWORK = 1,         /* connect failure, reset, truncated transfer */
  CK_MODEL_ERR_TIMEOUT = 2,         /* connect, first-byte, idle or total timeout */
  CK_MODEL_ERR_RATE_LIMIT = 3,      /* HTTP 429 */
  CK_MODEL_ERR_SERVER = 4,          /* HTTP 5xx, 408, 409 */
  CK_MODEL_ERR_AUTH = 5,            /* HTTP 401, 403 */
  CK_MODEL_ERR_INVALID_REQUEST = 6, /* HTTP 400, 404, 413, 422 */
  CK_MODEL_ERR_HTTP = 7,            /* any other non-2xx status */
  CK_MODEL_ERR_UPSTREAM = 8,        /* an error reported inside the stream (error event,
                                       response.failed, finish_reason "error") */
  CK_MODEL_ERR_PROTOCOL = 9,        /* a malformed or truncated stream */
  CK_MODEL_ERR_CANCELLED = 10,      /* ck_model_call_cancel or ck_model_client_free */
  CK_MODEL_ERR_INTERNAL = 11,       /* out of memory, libcurl setup failure */
} ck_model_error_kind;

/* The end of a call. Every pointer is owned by the call and valid only during on_done. */
typedef struct ck_model_result {
  int status;                /* CK_OK, or the error's library code (CK_EIO, ...) */
  ck_model_finish finish;    /* on success */
  const char *finish_raw;    /* the server's finish reason text, or NULL */
  ck_model_error_kind error; /* CK_MODEL_ERR_NONE on success */
  bool retryable;            /* the failure is of a transient kind (the client already
                                retried as far as its policy allowed) */
  bool output_delivered;     /* at least one event was delivered */
  int http_status;           /* the last attempt's status, 0 when none arrived */
  const char *message;       /* a human-readable error (secrets redacted), or NULL */
  const char *error_code;    /* the provider's error code ("rate_limit_exceeded"...), or NULL */
  const char *response_id;   /* Responses: "resp_..."; NULL otherwise */
  const char *request_id;    /* the x-request-id response header, or NULL */
  int attempts;              /* HTTP attempts made (1 + retries) */
} ck_model_result;

/* Receives the events of a call, in order. May call ck_model_call_cancel (on this or any
 * call) and ck_model_call_start; must not free the client. */
typedef void (*ck_model_event_fn)(ck_model_call *call, const ck_model_event *ev, void *ud);

/* Receives the single final result of a call. May start new calls and cancel others; must
 * not free the client. `call` is freed when this returns. */
typedef void (*ck_model_done_fn)(ck_model_call *call, const ck_model_result *res, void *ud);

/* ---- Functions -------------------------------------------------------------------------- */

/** Initialises libcurl for the whole process, once (pthread_once). Safe to call repeatedly
 * from any thread; ck_model_client_new calls it. Returns CK_OK or CK_EIO. */
int ck_model_global_init(void);

/** Creates a client on `loop` (borrowed; the caller runs it). `cfg` is copied (NULL: all
 * defaults, which only make sense with an api_key for api.openai.com). Returns NULL and sets
 * `*err` (when not NULL) to CK_EINVAL (a header with CR/LF, a bad base URL), CK_ENOMEM or
 * CK_EIO. The caller owns the client and frees it with ck_model_client_free. */
ck_model_client *ck_model_client_new(uv_loop_t *loop, const ck_model_config *cfg, int *err);

/** Cancels every call still running (each gets its on_done with CK_MODEL_ERR_CANCELLED,
 * from inside this function, since no loop turn follows) and starts closing the client's
 * libuv handles; the memory is released from their close callbacks, so the caller must run
 * the loop afterwards (as for any libuv handle). Must not be called from a client callback.
 * NULL is a no-op. */
void ck_model_client_free(ck_model_client *c);

/** The API the client resolved (never CK_MODEL_API_AUTO). */
ck_model_api ck_model_client_api(const ck_model_client *c);

/** Number of calls started and not yet finished (for tests and metrics). */
size_t ck_model_client_active(const ck_model_client *c);

/** Starts a streaming call. The request is serialised before this returns. `on_done` is
 * required; `on_event` may be NULL (the call then only reports its end). Returns the call
 * (owned by the client until on_done returns) and sets `*out`, or returns CK_EINVAL (no model,
 * no input, input of the wrong shape), CK_ENOMEM or CK_ETOOBIG (the body hit its cap). On
 * failure no callback will run. */
int ck_model_call_start(ck_model_client *c, const ck_model_request *req, ck_model_event_fn on_event,
                        ck_model_done_fn on_done, void *ud, ck_model_call **out);

/** Cancels a call: the HTTP transfer is aborted at once (the connection is closed, which is
 * how the upstream learns the generation is no longer wanted), no further event is delivered,
 * and exactly one on_done with CK_MODEL_ERR_CANCELLED follows from the loop. A call already
 * finishing keeps its real result. NULL is a no-op. */
void ck_model_call_cancel(ck_model_call *call);

/** A short static English name of an error kind ("timeout", "auth", ...). */
const char *ck_model_error_name(ck_model_error_kind kind);

/** A static name for a finish reason ("stop", "tool_calls", ...). */
const char *ck_model_finish_name(ck_model_finish finish);

#ifdef __cplusplus
}
#endif
#endif
