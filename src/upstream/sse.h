/* upstream/sse.h - an incremental Server-Sent Events parser (internal).
 *
 * The parser follows the WHATWG event-stream rules with the leniencies LLM providers need (see
 * docs/internals/upstream.md): bytes arrive in arbitrary chunks, a line may span any number of
 * chunks, lines end with "\n", "\r\n" or "\r" (a "\r\n" pair split across two chunks counts
 * once), a leading UTF-8 byte-order mark is dropped, ":" lines are comments, "data:" lines of
 * one event are joined with "\n", and a blank line dispatches the event. The non-standard
 * "error:" field that old llama.cpp builds send is turned into an event named "error".
 *
 * The parser works on bytes only. It never splits inside a line, and "\r" and "\n" never
 * occur inside a multi-byte UTF-8 sequence, so a character split across chunks is always
 * reassembled before anyone decodes it.
 *
 * Memory: the partial line and the pending event are kept in capped buffers. A line or an
 * event larger than the cap is a protocol error (CK_ETOOBIG), after which the parser refuses
 * further input; this bounds what a hostile or broken upstream can make us hold.
 */
#ifndef CK_UPSTREAM_SSE_H
#define CK_UPSTREAM_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include <chatkit/mem.h>

/* Called once per dispatched event. `event` is the "event:" value ("message" when the event
 * had none) and `data` the joined "data:" lines; both are NUL-terminated, owned by the parser
 * and valid only during the call. Returning nonzero stops parsing: ck__sse_feed returns that
 * value at once and the rest of the chunk is not looked at. */
typedef int (*ck__sse_event_fn)(void *ud, const char *event, size_t event_len, const char *data,
                                size_t data_len);

/* Default cap on one line and on one event's data (16 MiB, as the reference recommends for
 * tool arguments that may be large). */
#define CK__SSE_DEFAULT_MAX ((size_t)16 * 1024 * 1024)

typedef struct ck__sse {
  ck_buf line;  /* the current partial line */
  ck_buf data;  /* the pending event's data lines, joined with "\n" */
  ck_buf event; /* the pending event's name */
  ck__sse_event_fn on_event;
  void *ud;
  size_t comments;   /* comment lines seen (keep-alives); for tests and statistics */
  unsigned bom_seen; /* bytes of a leading BOM matched so far (0..3) */
  bool started;      /* past the point where a BOM may appear */
  bool skip_lf;      /* the last byte ended a line with "\r": a following "\n" belongs to it */
  bool has_data;     /* at least one data line arrived (an empty "data:" still counts) */
  bool failed;       /* a cap was hit; every later feed fails */
} ck__sse;

/** Initialises `p`. `max` caps a line and an event's data (0: CK__SSE_DEFAULT_MAX). */
void ck__sse_init(ck__sse *p, size_t max, ck__sse_event_fn on_event, void *ud);

/** Frees the parser's buffers; `p` may be initialised again. NULL is a no-op. */
void ck__sse_free(ck__sse *p);

/** Forgets any partial line and pending event so the parser can read a new stream. */
void ck__sse_reset(ck__sse *p);

/** Feeds `n` bytes. Returns CK_OK, CK_ETOOBIG (a cap was hit; the parser is now failed), the
 * first nonzero value an event callback returned, or CK_ENOMEM. */
int ck__sse_feed(ck__sse *p, const char *buf, size_t n);

/** Signals the end of the stream: a final line without terminator is processed and a pending
 * event is dispatched even without the blank line (servers such as llama.cpp end with
 * "data: [DONE]\n" and close). Returns like ck__sse_feed. */
int ck__sse_finish(ck__sse *p);

/** True when `data` is the "[DONE]" sentinel, ignoring surrounding whitespace. */
bool ck__sse_is_done(const char *data, size_t len);

#endif
