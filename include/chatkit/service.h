/* chatkit/service.h - the ChatKit HTTP service: the processor on the network.
 *
 * A ck_service ties a ck_server (the processor) to the HTTP layer on a libuv loop the caller
 * owns: POST to the ChatKit path answers JSON or an SSE stream, GET /health and GET /ready
 * report liveness and store reachability, CORS is answered for the configured origins, and
 * errors come back as {"error":{"code","message"}} with the right status. With a metrics
 * registry, GET /metrics answers the Prometheus text exposition.
 *
 * Limits (see docs/operations.md): each user (ctx->user_id after authentication; anonymous
 * requests share one user) has a token bucket of requests per minute and a cap on concurrent
 * streams; the whole service has a cap on open streams; a stream running longer than its
 * maximum duration is cancelled like a client disconnect (its partial message is saved). A
 * refused request is answered 429 rate_limited with Retry-After, or 503 overloaded when the
 * service-wide stream cap is reached.
 *
 * Threads: the loop thread owns sockets and stream state; everything that may block (the
 * store, the handlers) runs on the service's worker threads and reports back through a
 * mailbox. All functions here are called on the loop thread.
 */
#ifndef CHATKIT_SERVICE_H
#define CHATKIT_SERVICE_H

#include <uv.h>

#include <chatkit/http.h>
#include <chatkit/log.h>
#include <chatkit/metrics.h>
#include <chatkit/server.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_service ck_service;

/** Decides who the request is for. Runs on a worker thread before the request is processed;
 * fills ctx->user_id (a string that stays valid until the request's arena is freed: allocate it
 * from `arena`). Return CK_OK, or CK_EINVAL to answer 401 with `message`. NULL: every request
 * is the anonymous user. */
typedef int (*ck_service_auth_fn)(void *ud, const ck_http_request *req, ck_arena *arena,
                                  ck_ctx *ctx, const char **message);

typedef struct ck_service_config {
  ck_server *server; /* required; borrowed */
  ck_store *store;   /* for GET /ready; borrowed, may be NULL */
  const char *path;  /* the ChatKit endpoint; NULL: "/chatkit" */
  int workers;       /* worker threads; 0: 4 */
  /* Allowed CORS origins, comma-separated ("*" allows any). NULL: "http://localhost:3000".
   * The server's own origin (http://HOST:PORT) is always allowed. */
  const char *cors_origins;
  int shutdown_grace_ms; /* how long streams may finish after a shutdown; 0: 10000 */
  ck_http_config http;   /* zero fields take the HTTP layer's defaults */
  ck_log *log;           /* borrowed; NULL: no logs */
  ck_service_auth_fn auth;
  void *auth_ud;
  ck_metrics *metrics; /* borrowed; NULL: no metrics, and GET /metrics answers 404 */
  /* Limits. 0 takes the default in brackets; a negative value disables the limit. */
  int rate_limit_rpm;       /* requests per minute per user [120] */
  int rate_limit_burst;     /* requests a user may make at once [rate_limit_rpm] */
  int max_streams_per_user; /* concurrent streams per user [10] */
  int max_streams;          /* concurrent streams in all [10000] */
  int max_stream_seconds;   /* a longer stream is cancelled [1800] */
  size_t max_tracked_users; /* users whose limits are tracked at once [100000] */
} ck_service_config;

/** Creates a service on `loop`; call it on the thread that will run the loop. Returns NULL when out
 * of memory, when the worker threads cannot start, or when cfg->server is NULL. */
ck_service *ck_service_new(uv_loop_t *loop, const ck_service_config *cfg);

/** Listens on a numeric IPv4/IPv6 `host` and `port` (0 picks a free port). Returns CK_OK,
 * CK_EINVAL or CK_EIO. */
int ck_service_listen(ck_service *svc, const char *host, int port);

/** The bound port, or -1. */
int ck_service_port(const ck_service *svc);

/** Number of streams in progress. */
size_t ck_service_active_streams(const ck_service *svc);

/** Graceful shutdown: stops accepting, lets requests in progress finish for up to the grace
 * period, then cancels the streams still open through the normal cancellation path (their
 * partial messages are saved). When everything is closed and the workers have stopped,
 * `done(ud)` runs and the service is freed. Calling it twice is a no-op. */
void ck_service_shutdown(ck_service *svc, void (*done)(void *ud), void *ud);

/** Runs `fn(ud)` on the loop thread soon. Thread-safe: asynchronous handlers call it from a
 * worker to start their producer (a timer, a model request) on the loop. Returns CK_OK or
 * CK_ENOMEM. */
int ck_service_post(ck_service *svc, void (*fn)(void *ud), void *ud);

/** Runs `fn(ud)` on one of the service's worker threads, where it may block (a C tool, a
 * store call). Thread-safe. Returns CK_OK or CK_ENOMEM. */
int ck_service_submit(ck_service *svc, void (*fn)(void *ud), void *ud);

/** The service's loop (for producers started through ck_service_post). */
uv_loop_t *ck_service_loop(ck_service *svc);

#ifdef __cplusplus
}
#endif
#endif
