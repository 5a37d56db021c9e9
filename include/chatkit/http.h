/* chatkit/http.h - the HTTP/1.1 server layer: connections, requests, responses, streaming.
 *
 * A ck_http_server accepts TCP connections on a libuv loop that the caller owns, parses
 * HTTP/1.1 (and 1.0) requests with hard caps on every input, and hands each complete request
 * (headers and decoded body) to one handler callback. The handler answers later, possibly
 * after other threads did work, through ck_http_respond or the ck_http_stream_* functions.
 *
 * Threads: every function in this header must be called on the loop thread, and every
 * callback runs on it. Work done on other threads must hop back to the loop (for example
 * with uv_async_send) before it touches a server or a request.
 *
 * Request lifetime (a reference count of two):
 *   - The connection holds one reference until the response is complete (the last byte was
 *     handed to the socket or queued) or until the connection dies, whichever comes first.
 *   - The handler holds the other reference from the moment the handler callback is called
 *     until it calls ck_http_request_release, exactly once, when it no longer needs the
 *     request (typically right after answering, or in or after on_abort).
 *   The request, its headers, its body and its arena are freed when both are gone. So a
 *   handler may keep the pointer across worker-thread hops: after the peer left, the
 *   response functions return CK_ECANCELLED instead of touching freed memory.
 *
 * Disconnects: reading stays active while a request is being served, so a peer that closes
 * (EOF or reset), or a write that fails, is seen at once even when nothing is being written.
 * If the response is not complete then, the request's on_abort callback fires exactly once.
 * It never fires from inside a ck_http_respond / ck_http_stream_* call: a failure there is
 * reported by the return value and on_abort follows from the loop shortly after.
 */
#ifndef CHATKIT_HTTP_H
#define CHATKIT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <chatkit/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_http_server ck_http_server;

/* One header: a name and a value, both NUL-terminated. Arrays of headers passed to the
 * response functions end with an entry whose name is NULL. */
typedef struct ck_http_header {
  const char *name;
  const char *value;
} ck_http_header;

/* A parsed request. Every field is read-only for the handler and stays valid for the
 * request's lifetime (see the lifetime rule above). Strings are NUL-terminated. */
typedef struct ck_http_request {
  const char *method;            /* "GET", "POST", ... */
  const char *path;              /* the target without query and fragment, e.g. "/chatkit" */
  const char *query;             /* the raw query after '?', "" when there is none */
  const ck_http_header *headers; /* in arrival order, names as sent */
  size_t header_count;
  const char *body; /* decoded body (chunked encoding removed), NUL-terminated; "" if none */
  size_t body_len;
  const char *peer; /* the peer address, "127.0.0.1:5000" or "[::1]:5000" */
  const char *id;   /* a request id unique across servers and processes */
  int http_minor;   /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
  ck_arena *arena;  /* the request's arena; the handler may allocate from it too */
} ck_http_request;

/* Called on the loop thread for every complete request. The handler owns one reference. */
typedef void (*ck_http_handler)(ck_http_request *req, void *ud);

/* Called once when the peer left before the response was complete. */
typedef void (*ck_http_abort_cb)(ck_http_request *req, void *ud);

/* Called once when a graceful close has finished; the server is freed right after. */
typedef void (*ck_http_closed_cb)(ck_http_server *srv, void *ud);

enum { CK_HTTP_LOG_DEBUG = 0, CK_HTTP_LOG_INFO = 1, CK_HTTP_LOG_WARN = 2, CK_HTTP_LOG_ERROR = 3 };

/* Receives the layer's log lines. `request_id` is NULL when no request is involved. */
typedef void (*ck_http_log_fn)(void *ud, int level, const char *request_id, const char *msg);

/* Limits and timeouts. A field left at 0 takes its default (in brackets). */
typedef struct ck_http_config {
  size_t max_header_bytes;       /* request line + headers (and trailers) [16 KiB] -> 431 */
  size_t max_headers;            /* header count [64] -> 431 */
  size_t max_body_bytes;         /* decoded body [1 MiB] -> 413 */
  size_t max_pipeline_bytes;     /* unparsed bytes kept while a request is served [64 KiB] */
  size_t max_write_queue_bytes;  /* unsent response bytes per connection [1 MiB] */
  unsigned max_connections;      /* open connections; more are answered 503 [10000] */
  uint64_t header_timeout_ms;    /* the whole head must arrive within this [10 s] */
  uint64_t body_timeout_ms;      /* the whole body must arrive within this [30 s] */
  uint64_t keepalive_timeout_ms; /* idle time between requests [60 s] */
  uint64_t linger_timeout_ms;    /* wait for the peer's FIN after our last byte [2 s] */
  int backlog;                   /* listen backlog [4096] */
  int reuseport;                 /* nonzero: set SO_REUSEPORT so several loops share a port */
  ck_http_log_fn log;            /* optional log sink; NULL: the layer is silent */
  void *log_ud;
  int log_level; /* lowest level passed to `log` [CK_HTTP_LOG_DEBUG] */
} ck_http_config;

/** Fills `cfg` with the defaults listed in ck_http_config. */
void ck_http_config_default(ck_http_config *cfg);

/** Creates a server on `loop` (which the caller owns and runs). `cfg` is copied; NULL means all
 * defaults. `handler` is required; `ud` is passed to it. Returns NULL when out of memory or when
 * `loop` or `handler` is NULL. Free it with ck_http_server_close. */
ck_http_server *ck_http_server_new(uv_loop_t *loop, const ck_http_config *cfg,
                                   ck_http_handler handler, void *ud);

/** Binds and listens on a numeric IPv4 or IPv6 `host` ("127.0.0.1", "::1", "0.0.0.0", "::")
 * and `port` (0 picks a free port; see ck_http_server_port). May be called once. Returns CK_OK,
 * CK_EINVAL (bad host, or already listening) or CK_EIO (bind/listen failed). */
int ck_http_listen(ck_http_server *srv, const char *host, int port);

/** Returns the port the server is bound to, or -1 when it is not listening. */
int ck_http_server_port(const ck_http_server *srv);

/** Returns the number of open connections (for tests and metrics). */
size_t ck_http_server_connections(const ck_http_server *srv);

/** Starts a graceful close: stops accepting, closes idle keep-alive connections, and lets
 * requests in progress finish (their responses then carry Connection: close). When the last
 * connection is gone, `on_closed(srv, ud)` runs (it may be NULL) and the server is freed.
 * Calling it twice is a no-op. NULL is a no-op. */
void ck_http_server_close(ck_http_server *srv, ck_http_closed_cb on_closed, void *ud);

/** Closes every connection now. Requests whose response is not complete get on_abort (from
 * inside this call). Does not free the server: use ck_http_server_close for that, before or
 * after. NULL is a no-op. */
void ck_http_server_close_all(ck_http_server *srv);

/** Returns the value of the first header named `name` (compared case-insensitively), or NULL. */
const char *ck_http_request_header(const ck_http_request *req, const char *name);

/** Sets the callback fired once, on the loop thread, if the peer leaves before the response is
 * complete. Replaces any earlier callback. Setting it after the peer left does not fire it;
 * use ck_http_request_aborted to check. */
void ck_http_request_on_abort(ck_http_request *req, ck_http_abort_cb cb, void *ud);

/** Returns nonzero when the peer left before the response was complete. */
int ck_http_request_aborted(const ck_http_request *req);

/** Frees the request body before the request itself, for a handler whose response outlives its
 * need for the body (a long stream that parsed it at the start). Afterwards `body` is "" and
 * `body_len` 0. Call it from the thread that handles the request, at most once at a time; the
 * layer does not touch the body of a request it handed over. NULL is a no-op. */
void ck_http_request_drop_body(ck_http_request *req);

/** Drops the handler's reference; the handler must not use `req` afterwards. If the request
 * was never answered, the layer answers 500 (or closes the connection if a stream had begun)
 * so that the connection does not hang. Must be called exactly once per request. NULL is a
 * no-op. */
void ck_http_request_release(ck_http_request *req);

/** Sends a complete response with Content-Length. `content_type` may be NULL (no header);
 * `body` is copied as needed (the caller keeps ownership); `extra` is a NULL-name-terminated
 * header array or NULL. For HEAD requests and for 204/304 no body is sent. Returns CK_OK,
 * CK_ECANCELLED (the peer left), CK_ESTATE (already answered), CK_EINVAL (a header contains
 * CR, LF or NUL, or a bad status) or CK_ENOMEM. */
int ck_http_respond(ck_http_request *req, int status, const char *content_type, const void *body,
                    size_t len, const ck_http_header *extra);

/** Sends `{"error":{"code":"<code>","message":"<message>"}}` as application/json with
 * `status`. Both strings are escaped as JSON strings (invalid UTF-8 becomes U+FFFD). Returns
 * the same codes as ck_http_respond. */
int ck_http_respond_error(ck_http_request *req, int status, const char *code, const char *message);

/** Sends the response head of a streamed response and keeps the response open. HTTP/1.1 peers
 * get Transfer-Encoding: chunked; HTTP/1.0 peers get raw bytes and the connection closes at the
 * end. `headers` (NULL-name-terminated, may be NULL) should carry Content-Type. Returns the same
 * codes as ck_http_respond. */
int ck_http_stream_begin(ck_http_request *req, int status, const ck_http_header *headers);

/** Writes `len` bytes as one chunk right away (the socket has TCP_NODELAY). Zero bytes is a
 * no-op. If the connection's unsent bytes would exceed max_write_queue_bytes, the peer is
 * treated as gone. Returns CK_OK, CK_ECANCELLED (peer gone), CK_ESTATE (no stream begun or
 * already ended) or CK_ENOMEM. */
int ck_http_stream_write(ck_http_request *req, const void *data, size_t len);

/** Ends the stream (the zero-length chunk for HTTP/1.1). The response is complete afterwards.
 * Returns CK_OK, CK_ECANCELLED or CK_ESTATE. */
int ck_http_stream_end(ck_http_request *req);

/** Flags of ck_http_stream_send. */
enum {
  CK_HTTP_STREAM_BEGIN = 1, /* send the response head first (as ck_http_stream_begin) */
  CK_HTTP_STREAM_END = 2,   /* end the stream after the data (as ck_http_stream_end) */
  CK_HTTP_STREAM_ALL = 3
};

/** Does in one socket write what ck_http_stream_begin (with CK_HTTP_STREAM_BEGIN, using
 * `status` and `headers`), ck_http_stream_write (`data`, `len`; may be empty) and
 * ck_http_stream_end (with CK_HTTP_STREAM_END) would do in up to three. Each write on a
 * TCP_NODELAY socket is its own segment and wakes the peer once, so a response whose head and
 * first events, or whose last events and end, are ready together should go out this way.
 * Returns what those functions return: CK_OK, CK_ECANCELLED (peer gone), CK_ESTATE (wrong
 * state for the flags), CK_EINVAL (bad status, header, flags or length) or CK_ENOMEM. */
int ck_http_stream_send(ck_http_request *req, int flags, int status, const ck_http_header *headers,
                        const void *data, size_t len);

/** Returns the standard reason phrase for `status` ("OK", "Not Found"...), or "Unknown". */
const char *ck_http_reason(int status);

#ifdef __cplusplus
}
#endif
#endif
