/* The ChatKit HTTP service (see chatkit/service.h): routing, CORS, the hop of each request to a
 * worker and of its results back to the loop, SSE framing onto the connection, disconnects and
 * graceful shutdown. */
#include "service/pool.h"
#include "service/ratelimit.h"

#include <chatkit/error.h>
#include <chatkit/service.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Frames a worker produced that the loop has not written yet; past this the consumer is too
 * slow and is treated as gone (the HTTP layer has its own cap on unsent socket bytes). */
#define MAX_PENDING_FRAMES (4u << 20)
#define MAX_ORIGINS 32
/* A worker result meaning "authentication failed": answered 401. */
#define RC_UNAUTHORIZED (-1000)
/* A worker result meaning "a limit refused the request" (ex->limit says which). */
#define RC_LIMITED (-1001)

/* Limit defaults (see ck_service_config). */
#define DEFAULT_RPM 120
#define DEFAULT_STREAMS_PER_USER 10
#define DEFAULT_MAX_STREAMS 10000
#define DEFAULT_MAX_STREAM_SECONDS 1800

typedef enum exchange_kind { EX_CHATKIT, EX_READY } exchange_kind;

/* One request in flight. The loop owns it; workers touch only the fields under `mu` and the
 * processor state while their job runs. */
typedef struct exchange {
  ck__job run_job;   /* process the request (and run a stream) */
  ck__job drain_job; /* drain an asynchronous stream */
  ck__msg msg;       /* "frames or the end are ready" to the loop */
  ck_service *svc;
  ck_http_request *req;
  exchange_kind kind;
  uint64_t start_ns;
  ck_ctx ctx;
  ck_response resp;
  ck_error_info *err; /* why the request failed, once it did (heap); NULL before */
  pthread_mutex_t mu;
  ck_buf out;        /* frames not yet written (under mu) */
  size_t out_events; /* frames in `out` (under mu) */
  bool msg_posted;   /* under mu */
  bool finished;     /* under mu: the worker side is done */
  int final_rc;      /* under mu */
  ck_stream *stream; /* under mu until finished */
  atomic_bool aborted;
  bool headers_sent;  /* loop only */
  bool ended;         /* loop only: the end of the stream was written with the last frames */
  size_t events;      /* loop only */
  const char *origin; /* allowed Origin to echo, or NULL (request arena) */
  /* Set by the worker before it posts the end (the mailbox orders it before the loop's read). */
  ck__rl_verdict limit; /* why the request was refused (RC_LIMITED) */
  const char *rl_key;   /* who the limits count this request against (request arena) */
  uint32_t retry_after; /* seconds, for RC_LIMITED */
  bool typed;           /* resp.type is known even without a body or a stream */
  atomic_bool admitted; /* a stream slot is held for ctx.user_id */
  bool timed_out;       /* loop only: cancelled for running too long */
  struct exchange *prev, *next;
} exchange;

struct ck_service {
  uv_loop_t *loop;
  uv_thread_t loop_thread; /* the thread that runs the loop (ck_service_new's caller) */
  ck_service_config cfg;
  char path[128];
  ck_http_server *http;
  ck__pool *pool;
  ck__mailbox *mb;
  char *origins[MAX_ORIGINS];
  size_t norigins;
  bool any_origin;
  char self_origin[96];
  exchange *active;
  size_t nactive;
  size_t nstreams;
  bool shutting, http_closed, torn_down;
  uv_timer_t grace;
  void (*done)(void *);
  void *done_ud;
  ck__ratelimit *rl;
  uint64_t max_stream_ns; /* 0: streams may run forever */
  uv_timer_t sweep;       /* cancels streams past max_stream_ns */
  bool sweeping;
  /* Families of cfg.metrics, looked up once (all NULL without metrics). */
  ck_metric *m_requests, *m_duration, *m_open_streams, *m_connections, *m_events, *m_limited;
};

static uint64_t now_ns(void) {
  return uv_hrtime();
}

/* ---- CORS ---- */

static const char *allowed_origin(ck_service *svc, const ck_http_request *req) {
  const char *origin = ck_http_request_header(req, "origin");
  if (origin == NULL)
    return NULL;
  if (svc->any_origin || strcmp(origin, svc->self_origin) == 0)
    return origin;
  for (size_t i = 0; i < svc->norigins; i++)
    if (strcmp(origin, svc->origins[i]) == 0)
      return origin;
  return NULL;
}

/* Fills `h` (room for 8 entries) with the CORS headers for `origin` plus `extra`. */
static void cors_headers(ck_http_header *h, const char *origin, const ck_http_header *extra) {
  size_t n = 0;
  if (origin != NULL) {
    h[n++] = (ck_http_header){"Access-Control-Allow-Origin", origin};
    h[n++] = (ck_http_header){"Vary", "Origin"};
  }
  for (; extra != NULL && extra->name != NULL && n < 7; extra++)
    h[n++] = *extra;
  h[n] = (ck_http_header){NULL, NULL};
}

static void respond_error(ck_http_request *req, const char *origin, int status, const char *code,
                          const char *message) {
  ck_http_header h[8];
  cors_headers(h, origin, NULL);
  ck_buf b;
  ck_buf_init(&b, 0);
  ck_buf_puts(&b, "{\"error\":{\"code\":");
  ck_json_write_string(&b, code, strlen(code));
  ck_buf_puts(&b, ",\"message\":");
  ck_json_write_string(&b, message, strlen(message));
  ck_buf_puts(&b, "}}");
  ck_http_respond(req, status, "application/json", b.data, b.len, h);
  ck_buf_free(&b);
}

/* The HTTP answer for a processor error. */
static int status_of(int code, const char **name) {
  switch (code) {
  case CK_EINVAL:
    *name = "invalid_request";
    return 400;
  case CK_ENOTFOUND:
    *name = "not_found";
    return 404;
  case CK_ETOOBIG:
    *name = "payload_too_large";
    return 413;
  case CK_ESTORE:
    *name = "store_unavailable";
    return 503;
  case CK_EUNSUPPORTED:
    *name = "not_implemented";
    return 501;
  case CK_ESTATE:
  case CK_ECONFLICT:
    *name = "conflict";
    return 409;
  case CK_EHANDLER:
    *name = "handler_error";
    return 500;
  default:
    *name = "internal_error";
    return 500;
  }
}

/* ---- Exchanges ---- */

static void maybe_teardown(ck_service *svc);

/* The request type for logs and metrics, or NULL when the request never got that far. */
static const char *type_label(const exchange *ex) {
  bool has_type = ex->kind == EX_CHATKIT && (ex->typed || ex->resp.body || ex->resp.stream);
  return has_type ? ck_request_type_name(ex->resp.type) : NULL;
}

/* The limit that refused or cut the exchange, as the reason label, or NULL. */
static const char *limit_reason(const exchange *ex) {
  if (ex->timed_out)
    return "stream_duration";
  if (ex->final_rc != RC_LIMITED)
    return NULL;
  switch (ex->limit) {
  case CK__RL_RATE:
    return "requests_per_minute";
  case CK__RL_USER_STREAMS:
    return "streams_per_user";
  case CK__RL_GLOBAL_STREAMS:
    return "streams_global";
  default:
    return "tracking_memory";
  }
}

/* Keeps why the request failed. Most requests never fail, so the room for the message is only
 * taken when one does; without memory for it the generic message of the code is used. */
static void keep_error(exchange *ex, int code, const char *message) {
  if (ex->err == NULL)
    ex->err = malloc(sizeof(*ex->err));
  if (ex->err != NULL) {
    ex->err->code = code;
    snprintf(ex->err->message, sizeof(ex->err->message), "%s", message);
  }
}

static const char *error_message(const exchange *ex) {
  return ex->err != NULL ? ex->err->message : "";
}

static void log_exchange(exchange *ex, int status, const char *end) {
  ck_service *svc = ex->svc;
  if (!ck_log_enabled(svc->cfg.log, CK_LOG_INFO))
    return;
  char st[16], ms[32], evs[24], tin[24], tout[24];
  snprintf(st, sizeof(st), "%d", status);
  snprintf(ms, sizeof(ms), "%.3f", (double)(now_ns() - ex->start_ns) / 1e6);
  snprintf(evs, sizeof(evs), "%zu", ex->events);
  int64_t in = 0, out = 0;
  if (ex->resp.stream != NULL)
    ck_stream_usage(ex->resp.stream, &in, &out);
  snprintf(tin, sizeof(tin), "%" PRId64, in);
  snprintf(tout, sizeof(tout), "%" PRId64, out);
  bool used = in > 0 || out > 0; /* only streams answered by a model that reports usage */
  ck_log_event(svc->cfg.log, status >= 500 ? CK_LOG_ERROR : CK_LOG_INFO, "request", "request_id",
               ex->req->id, "method", ex->req->method, "path", ex->req->path, "type",
               type_label(ex), "user", ex->ctx.user_id ? ex->ctx.user_id : "", "status", st,
               "duration_ms", ms, "events", ex->resp.stream ? evs : NULL, "end", end, "limit",
               limit_reason(ex), "input_tokens", used ? tin : NULL, "output_tokens",
               used ? tout : NULL, "error", ex->err != NULL ? ex->err->message : NULL,
               (const char *)NULL);
}

/* Counts a finished exchange in the request metrics. */
static void count_exchange(exchange *ex, int status) {
  ck_service *svc = ex->svc;
  if (svc->m_requests == NULL || ex->kind != EX_CHATKIT)
    return;
  const char *type = type_label(ex);
  char st[16];
  snprintf(st, sizeof(st), "%d", status);
  ck_metric_add(svc->m_requests, (const char *const[]){type ? type : "unknown", st}, 1);
  ck_metric_observe(svc->m_duration, (const char *const[]){type ? type : "unknown"},
                    (double)(now_ns() - ex->start_ns) / 1e9);
  const char *reason = limit_reason(ex);
  if (reason != NULL)
    ck_metric_add(svc->m_limited, (const char *const[]){reason}, 1);
}

static void exchange_free(exchange *ex) {
  ck_service *svc = ex->svc;
  if (ex->prev)
    ex->prev->next = ex->next;
  else
    svc->active = ex->next;
  if (ex->next)
    ex->next->prev = ex->prev;
  svc->nactive--;
  if (ex->headers_sent)
    svc->nstreams--;
  if (atomic_load(&ex->admitted)) {
    ck__ratelimit_stream_release(svc->rl, ex->rl_key);
    ck_metric_add(svc->m_open_streams, NULL, -1);
  }
  ck_stream_free(ex->resp.stream);
  free(ex->err);
  free(ex->resp.body);
  ck_buf_free(&ex->out);
  pthread_mutex_destroy(&ex->mu);
  ck_http_request_release(ex->req);
  free(ex);
  maybe_teardown(svc);
}

/* Worker side: hands what is ready to the loop, once per batch. */
static void post_to_loop(exchange *ex, bool finished, int rc) {
  pthread_mutex_lock(&ex->mu);
  if (finished) {
    ex->finished = true;
    ex->final_rc = rc;
  }
  bool post = !ex->msg_posted;
  ex->msg_posted = true;
  pthread_mutex_unlock(&ex->mu);
  if (post)
    ck__mailbox_post(ex->svc->mb, &ex->msg);
}

static int sink_frame(void *ud, const char *frame, size_t len) {
  exchange *ex = ud;
  if (atomic_load(&ex->aborted))
    return CK_ECANCELLED;
  pthread_mutex_lock(&ex->mu);
  if (ex->out.len + len > MAX_PENDING_FRAMES) {
    pthread_mutex_unlock(&ex->mu);
    return CK_ECANCELLED;
  }
  int rc = ck_buf_append(&ex->out, frame, len);
  if (rc == CK_OK)
    ex->out_events++;
  pthread_mutex_unlock(&ex->mu);
  if (rc != CK_OK)
    return CK_ECANCELLED;
  post_to_loop(ex, false, CK_OK);
  return CK_OK;
}

static void job_drain(ck__job *job) {
  exchange *ex = (exchange *)((char *)job - offsetof(exchange, drain_job));
  int rc = ck_stream_drain(ex->resp.stream);
  if (rc != CK_PENDING)
    post_to_loop(ex, true, rc);
}

/* Whether requests may run on the loop thread: nothing on their path blocks. Asked per request
 * because an integrator may install its handlers after creating the service. */
static bool inline_ok(ck_service *svc) {
  ck_store *store = ck_server_store(svc->cfg.server);
  return svc->cfg.auth == NULL && store != NULL && store->nonblocking &&
         ck_server_handlers_nonblocking(svc->cfg.server);
}

static void flush_frames(exchange *ex, bool last);

/* Whether the worker side is done with a stream exchange, so its end may go out with the
 * frames at hand. */
static bool exchange_finished(exchange *ex) {
  pthread_mutex_lock(&ex->mu);
  bool fin = ex->finished && ex->stream != NULL;
  pthread_mutex_unlock(&ex->mu);
  return fin;
}

/* Called by the stream when an asynchronous handler queued events. When nothing blocks and the
 * producer is on the loop thread, the events are drained right here; results still reach the
 * connection through the mailbox, so the exchange is never freed under the producer's feet. */
static void stream_notify(void *ud, ck_stream *s) {
  exchange *ex = ud;
  uv_thread_t self = uv_thread_self();
  if (inline_ok(ex->svc) && uv_thread_equal(&self, &ex->svc->loop_thread)) {
    job_drain(&ex->drain_job);
    /* On the loop already: write now rather than a loop turn later, with the end of the
     * stream if it came with these events. */
    flush_frames(ex, exchange_finished(ex));
  } else
    ck__pool_submit(ex->svc->pool, &ex->drain_job);
}

/* Who the limits count a request against: the authenticated user, or, without auth, the
 * client's address, so that an open deployment does not put every visitor in one bucket.
 * (Behind a proxy every anonymous client shares the proxy's address: use auth there, or
 * limit at the proxy.) */
static const char *limit_key(exchange *ex) {
  if (ex->ctx.user_id != NULL && ex->ctx.user_id[0] != '\0')
    return ex->ctx.user_id;
  const char *peer = ex->req->peer ? ex->req->peer : "";
  const char *colon = strrchr(peer, ':');
  size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
  const char *key = ck_arena_printf(ex->req->arena, "ip:%.*s", (int)n, peer);
  return key ? key : "";
}

static void job_run(ck__job *job) {
  exchange *ex = (exchange *)((char *)job - offsetof(exchange, run_job));
  ck_service *svc = ex->svc;
  int rc;
  if (ex->kind == EX_READY) {
    rc = svc->cfg.store && svc->cfg.store->vt->ping ? svc->cfg.store->vt->ping(svc->cfg.store)
                                                    : CK_OK;
    post_to_loop(ex, true, rc);
    return;
  }
  if (svc->cfg.auth != NULL) {
    const char *message = "authentication required";
    rc = svc->cfg.auth(svc->cfg.auth_ud, ex->req, ex->req->arena, &ex->ctx, &message);
    if (rc != CK_OK) {
      keep_error(ex, CK_EINVAL, message);
      post_to_loop(ex, true, RC_UNAUTHORIZED);
      return;
    }
  }
  /* The bucket is charged before any work, so a refused request costs next to nothing. */
  ex->rl_key = limit_key(ex);
  ck__rl_verdict v = ck__ratelimit_request(svc->rl, ex->rl_key, &ex->retry_after);
  if (v != CK__RL_OK) {
    ex->limit = v;
    post_to_loop(ex, true, RC_LIMITED);
    return;
  }
  ck_error_info err = {CK_OK, ""};
  rc = ck_server_process(svc->cfg.server, ex->req->body, ex->req->body_len, &ex->ctx, &ex->resp,
                         &err);
  if (rc != CK_OK)
    keep_error(ex, err.code, err.message);
  /* A stream may run for minutes; its request was parsed into it, so the body can go now. */
  if (ex->resp.stream != NULL)
    ck_http_request_drop_body(ex->req);
  /* Parsing fails only with CK_EINVAL or CK_ENOMEM: any other error came after it, so the
   * request type is known (a 404 of threads.get_by_id is labelled as such). */
  ex->typed = rc == CK_OK || (rc != CK_EINVAL && rc != CK_ENOMEM);
  if (rc != CK_OK || ex->resp.stream == NULL) {
    post_to_loop(ex, true, rc);
    return;
  }
  /* A stream has only been parsed so far: refusing it here leaves nothing behind. */
  v = ck__ratelimit_stream_acquire(svc->rl, ex->rl_key, &ex->retry_after);
  if (v != CK__RL_OK) {
    ck_stream_free(ex->resp.stream);
    ex->resp.stream = NULL;
    ex->typed = true;
    ex->limit = v;
    post_to_loop(ex, true, RC_LIMITED);
    return;
  }
  atomic_store(&ex->admitted, true);
  ck_metric_add(svc->m_open_streams, NULL, 1);
  pthread_mutex_lock(&ex->mu);
  ex->stream = ex->resp.stream;
  pthread_mutex_unlock(&ex->mu);
  /* A client that left while the request was parsed still gets the cancellation path. */
  if (atomic_load(&ex->aborted))
    ck_stream_cancel(ex->resp.stream);
  ck_stream_set_notify(ex->resp.stream, stream_notify, ex);
  ck_sink sink = {sink_frame, ex};
  rc = ck_stream_run(ex->resp.stream, &sink);
  if (rc != CK_PENDING)
    post_to_loop(ex, true, rc);
}

/* Answers a request a limit refused: 429 with Retry-After for the per-user limits, 503 for
 * the service-wide stream cap. Returns the status. */
static int respond_limited(exchange *ex) {
  char retry[16];
  snprintf(retry, sizeof(retry), "%u", ex->retry_after > 0 ? ex->retry_after : 1);
  const ck_http_header extra[] = {{"Retry-After", retry}, {NULL, NULL}};
  ck_http_header h[8];
  cors_headers(h, ex->origin, extra);
  int status = 429;
  const char *code = "rate_limited", *message;
  switch (ex->limit) {
  case CK__RL_RATE:
    message = "too many requests: slow down and retry after the time in Retry-After";
    break;
  case CK__RL_USER_STREAMS:
    message = "too many concurrent streams for this user";
    break;
  case CK__RL_GLOBAL_STREAMS:
    status = 503;
    code = "overloaded";
    message = "the server has too many open streams; retry shortly";
    break;
  default:
    status = 503;
    code = "overloaded";
    message = "the server cannot track more users right now";
    break;
  }
  ck_buf b;
  ck_buf_init(&b, 0);
  ck_buf_puts(&b, "{\"error\":{\"code\":");
  ck_json_write_string(&b, code, strlen(code));
  ck_buf_puts(&b, ",\"message\":");
  ck_json_write_string(&b, message, strlen(message));
  ck_buf_puts(&b, "}}");
  ck_http_respond(ex->req, status, "application/json", b.data, b.len, h);
  ck_buf_free(&b);
  return status;
}

/* Loop side: the end of an exchange. */
static void complete(exchange *ex, int rc) {
  ck_http_request *req = ex->req;
  const char *end = NULL;
  int status = 200;
  const char *code = NULL;
  if (ex->kind == EX_READY) {
    if (rc == CK_OK) {
      ck_http_header h[8];
      cors_headers(h, ex->origin, NULL);
      static const char body[] = "{\"status\":\"ready\"}";
      ck_http_respond(req, 200, "application/json", body, sizeof(body) - 1, h);
    } else {
      status = 503;
      respond_error(req, ex->origin, 503, "store_unavailable", "the store is not reachable");
    }
  } else if (rc == RC_UNAUTHORIZED) {
    status = 401;
    ck_http_header h[8];
    const ck_http_header www[] = {{"WWW-Authenticate", "Bearer"}, {NULL, NULL}};
    cors_headers(h, ex->origin, www);
    char body[400];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"unauthorized\",\"message\":");
    ck_buf b;
    ck_buf_init(&b, 0);
    ck_buf_append(&b, body, (size_t)n);
    ck_json_write_string(&b, error_message(ex), strlen(error_message(ex)));
    ck_buf_puts(&b, "}}");
    ck_http_respond(req, 401, "application/json", b.data, b.len, h);
    ck_buf_free(&b);
  } else if (rc == RC_LIMITED) {
    status = respond_limited(ex);
  } else if (ex->resp.stream != NULL) {
    end = rc == CK_OK           ? "complete"
          : ex->timed_out       ? "timeout"
          : rc == CK_ECANCELLED ? "disconnected"
                                : "aborted";
    if (ex->headers_sent) {
      if (!ex->ended)
        ck_http_stream_end(req);
    } else if (rc == CK_OK || rc == CK_ECANCELLED) {
      /* A stream with no events (e.g. a retry of an unknown item) is still a 200 stream. */
      const ck_http_header sse[] = {
          {"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}, {NULL, NULL}};
      ck_http_header h[8];
      cors_headers(h, ex->origin, sse);
      ck_http_stream_begin(req, 200, h);
      ck_http_stream_end(req);
    } else {
      /* Nothing was sent yet, so a failed prerequisite can still be a proper HTTP error. */
      const ck_error_info *e = ck_stream_error(ex->resp.stream);
      status = status_of(e->code, &code);
      respond_error(req, ex->origin, status, code, e->message);
    }
  } else if (rc == CK_OK) {
    ck_http_header h[8];
    cors_headers(h, ex->origin, NULL);
    ck_http_respond(req, 200, "application/json", ex->resp.body, ex->resp.body_len, h);
  } else {
    status = status_of(rc, &code);
    respond_error(req, ex->origin, status, code, error_message(ex));
  }
  log_exchange(ex, status, end);
  count_exchange(ex, status);
  exchange_free(ex);
}

/* Loop side: writes the frames produced so far (one write for the batch). The first write
 * carries the response head and, when the exchange is `last`, the end of the stream too. */
static void flush_frames(exchange *ex, bool last) {
  ck_buf frames;
  pthread_mutex_lock(&ex->mu);
  frames = ex->out;
  ck_buf_init(&ex->out, 0);
  size_t nev = ex->out_events;
  ex->out_events = 0;
  pthread_mutex_unlock(&ex->mu);
  if (frames.len > 0 && !atomic_load(&ex->aborted)) {
    int flags = last ? CK_HTTP_STREAM_END : 0;
    ck_http_header h[8];
    if (!ex->headers_sent) {
      const ck_http_header sse[] = {{"Content-Type", "text/event-stream"},
                                    {"Cache-Control", "no-cache"},
                                    {"X-Accel-Buffering", "no"},
                                    {NULL, NULL}};
      cors_headers(h, ex->origin, sse);
      flags |= CK_HTTP_STREAM_BEGIN;
    }
    int rc = ck_http_stream_send(ex->req, flags, 200, h, frames.data, frames.len);
    if ((flags & CK_HTTP_STREAM_BEGIN) != 0) {
      ex->headers_sent = true; /* counted as a stream until it completes, even if it failed */
      ex->svc->nstreams++;
    }
    if (rc != CK_OK)
      atomic_store(&ex->aborted, true);
    else
      ex->ended = last;
    ex->events += nev;
    ck_metric_add(ex->svc->m_events, NULL, (double)nev);
  }
  ck_buf_free(&frames);
}

static void on_msg(ck__msg *msg) {
  exchange *ex = (exchange *)((char *)msg - offsetof(exchange, msg));
  pthread_mutex_lock(&ex->mu);
  bool finished = ex->finished;
  int rc = ex->final_rc;
  ex->msg_posted = false;
  pthread_mutex_unlock(&ex->mu);
  flush_frames(ex, finished && ex->resp.stream != NULL);
  if (finished)
    complete(ex, rc);
}

static void on_abort(ck_http_request *req, void *ud) {
  exchange *ex = ud;
  atomic_store(&ex->aborted, true);
  pthread_mutex_lock(&ex->mu);
  ck_stream *s = ex->finished ? NULL : ex->stream;
  pthread_mutex_unlock(&ex->mu);
  /* The stream stays allocated until complete() runs on this thread, so this is safe. */
  if (s != NULL)
    ck_stream_cancel(s);
}

static exchange *exchange_new(ck_service *svc, ck_http_request *req, exchange_kind kind,
                              const char *origin) {
  exchange *ex = calloc(1, sizeof(*ex));
  if (ex == NULL)
    return NULL;
  ex->svc = svc;
  ex->req = req;
  ex->kind = kind;
  ex->origin = origin;
  ex->start_ns = now_ns();
  ex->ctx.request_id = req->id;
  ex->run_job.fn = job_run;
  ex->drain_job.fn = job_drain;
  ex->msg.fn = on_msg;
  ck_buf_init(&ex->out, MAX_PENDING_FRAMES);
  pthread_mutex_init(&ex->mu, NULL);
  atomic_init(&ex->aborted, false);
  atomic_init(&ex->admitted, false);
  ex->next = svc->active;
  if (svc->active)
    svc->active->prev = ex;
  svc->active = ex;
  svc->nactive++;
  ck_http_request_on_abort(req, on_abort, ex);
  return ex;
}

/* ---- Routing ---- */

static void respond_simple(ck_http_request *req, const char *origin, int status, const char *body,
                           const ck_http_header *extra) {
  ck_http_header h[8];
  cors_headers(h, origin, extra);
  ck_http_respond(req, status, "application/json", body, strlen(body), h);
  ck_http_request_release(req);
}

/* GET /metrics. The exposition is rendered on the loop thread: it reads atomics and two
 * small files under /proc, nothing that blocks for long. */
static void serve_metrics(ck_service *svc, ck_http_request *req, const char *origin) {
  ck_metric_set(svc->m_connections, NULL, (double)ck_http_server_connections(svc->http));
  ck_buf b;
  ck_buf_init(&b, 0);
  if (ck_metrics_render(svc->cfg.metrics, &b) != CK_OK) {
    ck_buf_free(&b);
    respond_simple(req, origin, 500,
                   "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}", NULL);
    return;
  }
  ck_http_header h[8];
  cors_headers(h, origin, NULL);
  ck_http_respond(req, 200, CK_METRICS_CONTENT_TYPE, b.data, b.len, h);
  ck_buf_free(&b);
  ck_http_request_release(req);
}

static void preflight(ck_service *svc, ck_http_request *req, const char *origin) {
  if (origin == NULL) {
    respond_error(req, NULL, 403, "cors_forbidden", "this origin is not allowed");
    ck_http_request_release(req);
    return;
  }
  const char *asked = ck_http_request_header(req, "access-control-request-headers");
  const ck_http_header extra[] = {{"Access-Control-Allow-Methods", "POST, GET, OPTIONS"},
                                  {"Access-Control-Allow-Headers",
                                   asked ? asked : "authorization, content-type, accept-language"},
                                  {"Access-Control-Max-Age", "600"},
                                  {NULL, NULL}};
  ck_http_header h[8];
  cors_headers(h, origin, extra);
  ck_http_respond(req, 204, NULL, NULL, 0, h);
  ck_http_request_release(req);
}

static void on_request(ck_http_request *req, void *ud) {
  ck_service *svc = ud;
  const char *origin = allowed_origin(svc, req);
  const char *m = req->method;
  bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
  if (strcmp(m, "OPTIONS") == 0) {
    preflight(svc, req, origin);
    return;
  }
  if (strcmp(req->path, "/health") == 0) {
    if (get)
      respond_simple(req, origin, 200, "{\"status\":\"ok\"}", NULL);
    else
      respond_simple(req, origin, 405,
                     "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use GET\"}}",
                     (const ck_http_header[]){{"Allow", "GET, HEAD"}, {NULL, NULL}});
    return;
  }
  if (strcmp(req->path, "/metrics") == 0 && svc->cfg.metrics != NULL) {
    if (get)
      serve_metrics(svc, req, origin);
    else
      respond_simple(req, origin, 405,
                     "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use GET\"}}",
                     (const ck_http_header[]){{"Allow", "GET, HEAD"}, {NULL, NULL}});
    return;
  }
  exchange_kind kind;
  if (strcmp(req->path, "/ready") == 0 && get) {
    kind = EX_READY;
  } else if (strcmp(req->path, svc->path) == 0) {
    if (strcmp(m, "POST") != 0) {
      respond_simple(req, origin, 405,
                     "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use POST\"}}",
                     (const ck_http_header[]){{"Allow", "POST, OPTIONS"}, {NULL, NULL}});
      return;
    }
    if (svc->shutting) {
      respond_simple(req, origin, 503,
                     "{\"error\":{\"code\":\"shutting_down\",\"message\":\"the server is "
                     "shutting down\"}}",
                     NULL);
      return;
    }
    kind = EX_CHATKIT;
  } else {
    respond_simple(req, origin, 404,
                   "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint\"}}", NULL);
    return;
  }
  exchange *ex = exchange_new(svc, req, kind, origin);
  if (ex == NULL) {
    respond_simple(req, origin, 500,
                   "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}", NULL);
    return;
  }
  /* When neither the store nor the handlers block, the request is served on this thread; its
   * results still come back through the mailbox, on a later loop turn. */
  if (kind == EX_CHATKIT && inline_ok(svc)) {
    job_run(&ex->run_job);
    /* The first bytes go out now: with many requests arriving together, waiting for the
     * mailbox would hold every first byte until the whole batch was processed. A stream that
     * already ended goes out whole, head to last chunk, in one write; the rest of the
     * exchange (log, metrics, freeing) still goes through the mailbox, a loop turn later. */
    flush_frames(ex, exchange_finished(ex));
  } else
    ck__pool_submit(svc->pool, &ex->run_job);
}

/* ---- Lifecycle ---- */

static void http_log(void *ud, int level, const char *request_id, const char *msg) {
  ck_service *svc = ud;
  ck_log_event(svc->cfg.log, (ck_log_level)level, msg, "request_id", request_id,
               (const char *)NULL);
}

/* A configured limit: 0 takes the default, a negative value disables it (0 to the limiter). */
static int limit_of(int configured, int dflt) {
  return configured == 0 ? dflt : configured < 0 ? 0 : configured;
}

/* Streams running longer than the maximum duration are cancelled through the normal
 * cancellation path, as on a disconnect: the handler stops, the partial message is saved and
 * the response ends. */
static void on_sweep(uv_timer_t *t) {
  ck_service *svc = t->data;
  uint64_t now = now_ns();
  for (exchange *ex = svc->active; ex != NULL; ex = ex->next) {
    if (ex->kind != EX_CHATKIT || ex->timed_out || now - ex->start_ns < svc->max_stream_ns)
      continue;
    pthread_mutex_lock(&ex->mu);
    ck_stream *s = ex->finished ? NULL : ex->stream;
    pthread_mutex_unlock(&ex->mu);
    if (s != NULL) {
      ex->timed_out = true;
      ck_stream_cancel(s);
    }
  }
}

ck_service *ck_service_new(uv_loop_t *loop, const ck_service_config *cfg) {
  if (loop == NULL || cfg == NULL || cfg->server == NULL)
    return NULL;
  ck_service *svc = calloc(1, sizeof(*svc));
  if (svc == NULL)
    return NULL;
  svc->loop = loop;
  svc->cfg = *cfg;
  svc->loop_thread = uv_thread_self();
  snprintf(svc->path, sizeof(svc->path), "%s", cfg->path ? cfg->path : "/chatkit");
  const char *origins = cfg->cors_origins ? cfg->cors_origins : "http://localhost:3000";
  while (*origins && svc->norigins < MAX_ORIGINS) {
    size_t n = strcspn(origins, ",");
    const char *p = origins;
    size_t k = n;
    while (k > 0 && *p == ' ') {
      p++;
      k--;
    }
    while (k > 0 && p[k - 1] == ' ')
      k--;
    if (k == 1 && *p == '*')
      svc->any_origin = true;
    else if (k > 0)
      svc->origins[svc->norigins++] = strndup(p, k);
    origins += n + (origins[n] == ',');
  }
  ck_http_config http = cfg->http;
  if (http.log == NULL && cfg->log != NULL) {
    http.log = http_log;
    http.log_ud = svc;
  }
  ck__ratelimit_config rl = {
      .rpm = limit_of(cfg->rate_limit_rpm, DEFAULT_RPM),
      .burst = cfg->rate_limit_burst > 0 ? cfg->rate_limit_burst : 0,
      .streams_per_user = limit_of(cfg->max_streams_per_user, DEFAULT_STREAMS_PER_USER),
      .max_streams = limit_of(cfg->max_streams, DEFAULT_MAX_STREAMS),
      .max_users = cfg->max_tracked_users,
  };
  svc->max_stream_ns =
      (uint64_t)limit_of(cfg->max_stream_seconds, DEFAULT_MAX_STREAM_SECONDS) * 1000000000u;
  ck_metrics *m = cfg->metrics;
  svc->m_requests = ck_metrics_find(m, "chatkit_requests_total");
  svc->m_duration = ck_metrics_find(m, "chatkit_request_duration_seconds");
  svc->m_open_streams = ck_metrics_find(m, "chatkit_open_streams");
  svc->m_connections = ck_metrics_find(m, "chatkit_http_connections");
  svc->m_events = ck_metrics_find(m, "chatkit_stream_events_total");
  svc->m_limited = ck_metrics_find(m, "chatkit_rate_limited_total");
  svc->rl = ck__ratelimit_new(&rl, NULL, NULL);
  svc->pool = ck__pool_new(cfg->workers > 0 ? cfg->workers : 4);
  svc->mb = ck__mailbox_new(loop);
  svc->http = ck_http_server_new(loop, &http, on_request, svc);
  if (svc->rl == NULL || svc->pool == NULL || svc->mb == NULL || svc->http == NULL) {
    ck__ratelimit_free(svc->rl);
    ck__pool_free(svc->pool);
    ck__mailbox_close(svc->mb);
    ck_http_server_close(svc->http, NULL, NULL);
    for (size_t i = 0; i < svc->norigins; i++)
      free(svc->origins[i]);
    free(svc);
    return NULL;
  }
  if (svc->max_stream_ns > 0) {
    /* A quarter of the limit, at most a second: a stream overruns by at most that much. */
    uint64_t every = svc->max_stream_ns / 4000000u;
    every = every < 50 ? 50 : every > 1000 ? 1000 : every;
    uv_timer_init(loop, &svc->sweep);
    svc->sweep.data = svc;
    uv_timer_start(&svc->sweep, on_sweep, every, every);
    /* The sweep alone must not keep the loop running. */
    uv_unref((uv_handle_t *)&svc->sweep);
    svc->sweeping = true;
  }
  return svc;
}

int ck_service_listen(ck_service *svc, const char *host, int port) {
  int rc = ck_http_listen(svc->http, host, port);
  if (rc == CK_OK) {
    bool v6 = strchr(host, ':') != NULL;
    snprintf(svc->self_origin, sizeof(svc->self_origin), v6 ? "http://[%s]:%d" : "http://%s:%d",
             host, ck_http_server_port(svc->http));
  }
  return rc;
}

int ck_service_port(const ck_service *svc) {
  return ck_http_server_port(svc->http);
}

size_t ck_service_active_streams(const ck_service *svc) {
  return svc->nstreams;
}

uv_loop_t *ck_service_loop(ck_service *svc) {
  return svc->loop;
}

typedef struct posted {
  ck__msg msg;
  void (*fn)(void *);
  void *ud;
} posted;

static void run_posted(ck__msg *msg) {
  posted *p = (posted *)msg;
  p->fn(p->ud);
  free(p);
}

int ck_service_post(ck_service *svc, void (*fn)(void *ud), void *ud) {
  posted *p = malloc(sizeof(*p));
  if (p == NULL)
    return CK_ENOMEM;
  p->msg.fn = run_posted;
  p->fn = fn;
  p->ud = ud;
  ck__mailbox_post(svc->mb, &p->msg);
  return CK_OK;
}

typedef struct submitted {
  ck__job job;
  void (*fn)(void *);
  void *ud;
} submitted;

static void run_submitted(ck__job *job) {
  submitted *p = (submitted *)job;
  p->fn(p->ud);
  free(p);
}

int ck_service_submit(ck_service *svc, void (*fn)(void *ud), void *ud) {
  submitted *p = malloc(sizeof(*p));
  if (p == NULL)
    return CK_ENOMEM;
  p->job.fn = run_submitted;
  p->fn = fn;
  p->ud = ud;
  ck__pool_submit(svc->pool, &p->job);
  return CK_OK;
}

static void grace_closed(uv_handle_t *h) {
  ck_service *svc = h->data;
  ck__mailbox_close(svc->mb);
  ck__ratelimit_free(svc->rl);
  for (size_t i = 0; i < svc->norigins; i++)
    free(svc->origins[i]);
  void (*done)(void *) = svc->done;
  void *ud = svc->done_ud;
  free(svc);
  if (done)
    done(ud);
}

/* The last step of a shutdown, once the HTTP side is closed and no exchange is left. */
static void maybe_teardown(ck_service *svc) {
  if (!svc->shutting || !svc->http_closed || svc->nactive > 0 || svc->torn_down)
    return;
  svc->torn_down = true;
  ck__pool_free(svc->pool);
  uv_timer_stop(&svc->grace);
  uv_close((uv_handle_t *)&svc->grace, grace_closed);
}

static void on_http_closed(ck_http_server *srv, void *ud) {
  ck_service *svc = ud;
  svc->http_closed = true;
  maybe_teardown(svc);
}

/* The cancelled streams' last bytes get this long to reach their clients before every
 * connection still open is closed. */
#define FORCE_CLOSE_MS 1000

/* Well after the grace period: whatever connection is still open goes now. Those are clients
 * that were half-way through sending a request when the shutdown began (or never finished
 * one); without this they would hold the process for the HTTP layer's header and body
 * timeouts (10 s and 30 s), far past the grace period. */
static void on_force_close(uv_timer_t *t) {
  ck_service *svc = t->data;
  if (!svc->http_closed)
    ck_http_server_close_all(svc->http);
}

/* The grace period is over: streams still open are cancelled like a client disconnect, so
 * their partial messages are saved, and their responses end. */
static void on_grace(uv_timer_t *t) {
  ck_service *svc = t->data;
  for (exchange *ex = svc->active; ex != NULL; ex = ex->next) {
    pthread_mutex_lock(&ex->mu);
    ck_stream *s = ex->finished ? NULL : ex->stream;
    pthread_mutex_unlock(&ex->mu);
    if (s != NULL)
      ck_stream_cancel(s);
  }
  uv_timer_start(&svc->grace, on_force_close, FORCE_CLOSE_MS, 0);
}

void ck_service_shutdown(ck_service *svc, void (*done)(void *ud), void *ud) {
  if (svc == NULL || svc->shutting)
    return;
  svc->shutting = true;
  if (svc->sweeping) {
    /* The grace period bounds what is left; the handle is closed long before the service is
     * freed (grace_closed runs in a later close phase). */
    uv_timer_stop(&svc->sweep);
    uv_close((uv_handle_t *)&svc->sweep, NULL);
  }
  svc->done = done;
  svc->done_ud = ud;
  uv_timer_init(svc->loop, &svc->grace);
  svc->grace.data = svc;
  int grace = svc->cfg.shutdown_grace_ms > 0 ? svc->cfg.shutdown_grace_ms : 10000;
  uv_timer_start(&svc->grace, on_grace, (uint64_t)grace, 0);
  ck_http_server_close(svc->http, on_http_closed, svc);
}
