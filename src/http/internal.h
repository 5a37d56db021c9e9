/* src/http/internal.h - shared between the files of the HTTP layer and its tests and fuzzer.
 *
 * The parser glue (ck__http_parser) turns bytes into request events without any socket, so
 * the fuzzer can drive it from a buffer. The connection (conn.c) feeds it socket bytes, the
 * server (server.c) owns connections, and response.c writes answers.
 */
#ifndef CK_HTTP_INTERNAL_H
#define CK_HTTP_INTERNAL_H

#include <chatkit/http.h>
#include <chatkit/mem.h>

#include <http_parser.h>
#include <uv.h>

#include <stdint.h>

/* Request object -------------------------------------------------------------------------- */

typedef struct ck__http_conn ck__http_conn;

enum {
  CK__REQ_DISPATCHED = 0, /* handed to the handler, nothing sent yet */
  CK__REQ_STREAMING = 1,  /* head sent, chunks may follow */
  CK__REQ_DONE = 2,       /* the whole response was written or queued */
};

typedef struct ck__http_req {
  ck_http_request pub; /* first, so a ck_http_request * converts back */
  ck_buf body;         /* decoded body, capped at max_body_bytes */
  ck_http_header *hdrs;
  size_t hdr_cap;
  ck__http_conn *conn; /* NULL once the connection is done with the request */
  ck_http_abort_cb on_abort;
  void *abort_ud;
  uint8_t refs;
  uint8_t state;
  unsigned keep_alive : 1;  /* what the client asked for (HTTP/1.0/1.1 rules) */
  unsigned is_head : 1;     /* HEAD: never send a body */
  unsigned aborted : 1;     /* the peer left before the response was complete */
  unsigned released : 1;    /* the handler dropped its reference */
  unsigned chunked : 1;     /* the streamed response uses chunked encoding */
  unsigned close_after : 1; /* the response said Connection: close */
  unsigned expect_continue : 1;
} ck__http_req;

/** Creates an empty request with its own arena and one reference (the parser's). */
ck__http_req *ck__http_req_new(size_t max_body);

/** Drops one reference; frees the request and its arena at zero. NULL is a no-op. */
void ck__http_req_unref(ck__http_req *r);

/* Parser glue ------------------------------------------------------------------------------- */

typedef struct ck__http_limits {
  size_t max_header_bytes;
  size_t max_headers;
  size_t max_body_bytes;
} ck__http_limits;

enum {
  CK__HP_IDLE = 0, /* between requests: no byte of the next one yet */
  CK__HP_HEAD = 1, /* request line and headers arriving */
  CK__HP_BODY = 2, /* body arriving */
  CK__HP_READY = 3 /* a complete request waits to be taken; parsing is paused */
};

typedef enum ck__http_event {
  CK__HTTP_EV_NONE = 0,     /* every byte was consumed, more are needed */
  CK__HTTP_EV_CONTINUE = 1, /* head complete with Expect: 100-continue; paused until resume */
  CK__HTTP_EV_REQUEST = 2,  /* a complete request: take it, answer it, then resume */
  CK__HTTP_EV_ERROR = 3,    /* a protocol error: answer ck__http_parser_status() and close */
} ck__http_event;

typedef struct ck__http_parser {
  http_parser hp;
  ck__http_limits lim;
  ck__http_req *req; /* the request being built, or ready to be taken */
  ck_buf tok;        /* the URL, header name or value being accumulated */
  const char *field; /* the current header name, copied into the request arena */
  size_t head_bytes; /* head (or trailer) bytes so far, for max_header_bytes */
  int err_status;    /* the HTTP status for an error event */
  const char *err_msg;
  uint8_t phase;
  uint8_t last; /* which callback ran last: 0 none, 1 url, 2 field, 3 value */
  unsigned has_te : 1;
  unsigned te_chunked : 1;
  unsigned has_expect : 1;
} ck__http_parser;

/** Prepares a parser for a new connection. */
void ck__http_parser_init(ck__http_parser *p, const ck__http_limits *lim);

/** Frees the request being built (if any) and the scratch buffer. NULL-safe. */
void ck__http_parser_free(ck__http_parser *p);

/** Consumes bytes of `data` until an event or the end. `*used` receives how many bytes were
 * consumed; the rest must be fed again (after a resume for the CONTINUE and REQUEST events). */
ck__http_event ck__http_parser_feed(ck__http_parser *p, const char *data, size_t len, size_t *used);

/** After CK__HTTP_EV_REQUEST: hands the request (and the parser's reference) to the caller. */
ck__http_req *ck__http_parser_take(ck__http_parser *p);

/** Unpauses the parser after a CONTINUE or REQUEST event. */
void ck__http_parser_resume(ck__http_parser *p);

/** The status (400, 413, 417, 431, 501) and a static message for an error event. */
int ck__http_parser_status(const ck__http_parser *p, const char **msg);

/* Writes a JSON error body into `b`: {"error":{"code":..,"message":..}}. */
int ck__http_json_error(ck_buf *b, const char *code, const char *message);

/* Connections and server ------------------------------------------------------------------- */

struct ck_http_server {
  uv_loop_t *loop;
  ck_http_config cfg;
  ck_http_handler handler;
  void *handler_ud;
  uv_tcp_t listener;
  ck__http_limits lim;
  ck__http_conn *conns; /* doubly-linked list of every open connection */
  size_t nconns;        /* connections counted against max_connections */
  size_t nall;          /* every connection whose handles are not closed yet */
  char *read_buf;       /* one 64 KiB buffer shared by every connection's reads */
  int read_busy;
  uint64_t seq; /* request counter for ids */
  char id_prefix[17];
  ck_http_closed_cb on_closed;
  void *closed_ud;
  unsigned listening : 1;
  unsigned closing : 1;
  unsigned listener_closed : 1;
  unsigned finished : 1;
};

enum {
  CK__TIMER_NONE = 0,
  CK__TIMER_IDLE,
  CK__TIMER_HEAD,
  CK__TIMER_BODY,
  CK__TIMER_LINGER,
  CK__TIMER_KILL, /* zero delay: close from the loop, not from inside the caller */
};

struct ck__http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  ck_http_server *srv;
  ck__http_conn *prev, *next;
  ck__http_parser parser;
  ck__http_req *req; /* the request being served (the connection's reference) */
  ck_buf pending;    /* bytes read but not parsed while a request is served */
  size_t pend_off;
  uint8_t timer_kind;
  uint8_t handles_open;
  unsigned counted : 1;   /* counts against max_connections */
  unsigned closing : 1;   /* graceful close started: our last byte is queued */
  unsigned closed : 1;    /* uv_close called */
  unsigned dead : 1;      /* the peer is gone or misbehaved; close from the timer */
  unsigned peer_eof : 1;  /* we saw EOF */
  unsigned shut_done : 1; /* our shutdown completed: every queued byte was sent */
  unsigned in_process : 1;
  unsigned read_stopped : 1;
  char *peer; /* "ip:port", looked up once at the first request (heap) */
};

/** Accepts a connection from the listener. */
void ck__http_conn_accept(ck_http_server *srv);

/** Writes bytes to the connection (try_write first, then a queued copy). Returns CK_OK or
 * CK_ECANCELLED when the peer is gone or too slow (the connection then closes from the loop). */
int ck__http_conn_write(ck__http_conn *c, const uv_buf_t *bufs, unsigned nbufs);

/** Called by response.c when the response to c->req is complete. */
void ck__http_conn_response_done(ck__http_conn *c);

/** Marks the connection dead and closes it from the loop shortly. */
void ck__http_conn_fail(ck__http_conn *c, const char *why);

/** Closes now: fires on_abort if needed and calls uv_close on the handles. */
void ck__http_conn_close_now(ck__http_conn *c);

/** Starts a graceful close (shutdown, wait for the peer's FIN, close). */
void ck__http_conn_close_graceful(ck__http_conn *c);

/** Sends a JSON error response on a connection with no request object, then closes. */
void ck__http_conn_send_error(ck__http_conn *c, int status, const char *code, const char *msg);

/** Called from a connection's close callback once its handles are closed. */
void ck__http_server_conn_gone(ck_http_server *srv, ck__http_conn *c);

/** Logs through the config's callback if set. */
void ck__http_log(const ck_http_server *srv, int level, const char *req_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
