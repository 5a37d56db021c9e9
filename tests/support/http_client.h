/* A small blocking HTTP/1.1 client over plain sockets for the integration tests.
 *
 * Every socket gets send and receive timeouts, so a server that stops answering fails the
 * test instead of hanging it. A connection buffers what it read, so pipelined responses and
 * streamed chunks are read one at a time. Bodies are decoded (chunked or Content-Length). */
#ifndef CK_TEST_HTTP_CLIENT_H
#define CK_TEST_HTTP_CLIENT_H

#include <chatkit/json.h>
#include <chatkit/mem.h>

#include <stdbool.h>
#include <stddef.h>

#define HC_MAX_HEADERS 32

typedef struct hc_conn {
  int fd;
  char *buf; /* bytes read but not consumed */
  size_t len, cap;
} hc_conn;

typedef struct hc_response {
  int status;
  char *head; /* the status line and headers, NUL-separated copies point into it */
  const char *names[HC_MAX_HEADERS];
  const char *values[HC_MAX_HEADERS];
  size_t nheaders;
  bool chunked;
  char *body; /* decoded, NUL-terminated (never NULL after a successful read) */
  size_t body_len;
} hc_response;

/** Connects to 127.0.0.1:`port` with `timeout_ms` on every send and receive. Returns 0, or -1
 * (connection refused, for instance). */
int hc_open(hc_conn *c, int port, int timeout_ms);

/** Closes the connection (safe on a closed one). */
void hc_close(hc_conn *c);

/** Sends all of `data`. Returns 0 or -1. */
int hc_send(hc_conn *c, const void *data, size_t len);

/** Formats a request: "METHOD PATH HTTP/1.1", Host, Content-Length when `body` is not NULL,
 * `headers` verbatim (each line ending in "\r\n"; may be NULL), the blank line and the body.
 * Appends it to `out`. */
void hc_format(ck_buf *out, const char *method, const char *path, const char *headers,
               const char *body, size_t body_len);

/** Reads the status line and headers. Returns 0 or -1. */
int hc_read_head(hc_conn *c, hc_response *r);

/** Reads the body that follows a head (none for HEAD, 204 and 304). Returns 0 or -1. */
int hc_read_body(hc_conn *c, hc_response *r, bool head_request);

/** hc_read_head then hc_read_body. Returns 0 or -1. */
int hc_read_response(hc_conn *c, hc_response *r, bool head_request);

/** Reads one chunk of a chunked body and appends its data to `out`. Returns the chunk's size
 * (0 for the last chunk, after its trailers), or -1. */
long hc_read_chunk(hc_conn *c, ck_buf *out);

/** A header's value (names compare case-insensitively), or NULL. */
const char *hc_header(const hc_response *r, const char *name);

void hc_response_free(hc_response *r);

/** One request on a fresh connection ("Connection: close" is added). Returns 0 or -1. */
int hc_request(int port, const char *method, const char *path, const char *headers,
               const char *body, size_t body_len, hc_response *r);

/** POST /chatkit with `json` (Content-Type: application/json). Returns 0 or -1. */
int hc_chatkit(int port, const char *json, hc_response *r);

/** true when GET /health answers 200 {"status":"ok"}. */
bool hc_healthy(int port);

/** Splits an SSE body into events, checking the framing exactly: every event is "data: ",
 * one line of JSON without a newline, then "\n\n", and nothing else is in the body. Each
 * event is parsed into `events` (a JSON array allocated from `a`). Returns 0, or -1 on a
 * framing or JSON error (printed). */
int hc_sse_split(ck_arena *a, const char *body, size_t len, ck_json **events);

/** Incremental SSE reading over a chunked stream: `pending` keeps the bytes of a partial
 * event between calls (zero-initialise it, free it with ck_buf_free). Returns 1 with the
 * next event parsed into *event, 0 at the end of the stream, -1 on a timeout or error. */
int hc_sse_next(hc_conn *c, ck_buf *pending, ck_arena *a, ck_json **event);

/** Parses `text` into JSON from `a`, or NULL. */
ck_json *hc_json(ck_arena *a, const char *text, size_t len);

/** POSTs a streaming request, checks it is a 200 chunked text/event-stream with
 * Cache-Control no-cache, and returns its events (JSON array), or NULL (the reason is
 * printed). */
ck_json *hc_stream(ck_arena *a, int port, const char *json);

/** A streaming response read while it runs: what the tests of limits and shutdown watch of a
 * demo-model answer. */
typedef struct hc_live {
  hc_conn c;
  ck_buf pending;
  char tid[64], mid[64]; /* the thread (thread.created) and the assistant message ids */
  int deltas;            /* text deltas seen */
  bool done;             /* the assistant message's thread.item.done arrived */
} hc_live;

/** POSTs `json` (a streaming request), expects a 200, then reads events until `deltas` text
 * deltas arrived. Returns 0, or -1 (the stream is then closed). */
int hc_live_open(hc_live *s, int port, const char *json, ck_arena *a, int deltas);

/** Reads the rest of the stream, then closes it. Returns 0 when it ended cleanly (the last
 * chunk), -1 if the connection broke or timed out. */
int hc_live_finish(hc_live *s, ck_arena *a);

/** The "type" of each event joined with spaces, into `out` (for order assertions). */
void hc_event_types(const ck_json *events, char *out, size_t cap);

/** The number of events of type `type`. */
size_t hc_count_type(const ck_json *events, const char *type);

/** The first event of type `type` at or after index `from`, or NULL. */
ck_json *hc_find_type(const ck_json *events, const char *type, size_t from);

/** The concatenated text of an assistant message item's output_text parts (from `a`). */
const char *hc_item_text(ck_arena *a, const ck_json *item);

#endif
