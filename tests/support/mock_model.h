/* A scripted OpenAI-compatible model server for tests (and, through tests/fakes/mock_model.c,
 * a standalone program for manual and load testing).
 *
 * It answers POST .../chat/completions and POST .../responses by replaying a SCRIPT: a JSON
 * object describing an HTTP error or a stream, rendered in the wire format of the endpoint that
 * was called. Script selection per request, first match wins:
 *   1. the header "X-Mock-Scenario: <name>" names a script added with ck_mock_model_add;
 *   2. the request's "model" is "mock/<name>" and names an added script;
 *   3. the next script queued with ck_mock_model_queue (first in, first out);
 *   4. a default script that streams "Hello from the mock." and finishes.
 *
 * Script members (all optional):
 *   "status": 200            any other status (or a "body" with 200) answers in one piece
 *                            with "body" (a string sent verbatim, or JSON serialised, as
 *                            application/json) and "headers"
 *   "headers": {"n":"v"}     extra response headers (for example "retry-after")
 *   "ttfb_ms": 0             delay before the response head
 *   "line_ending": "lf"      "lf", "crlf" or "cr" for every SSE line
 *   "split": 0               write every frame in pieces of this many bytes (separate chunks)
 *   "model": "..."           the model name put into chunks (default: the request's)
 *   "stamp": "~~~~~~~~"      every occurrence of this placeholder in a frame is overwritten,
 *                            just before the frame is written, with the send time: the
 *                            CLOCK_MONOTONIC microseconds, zero-padded to the placeholder's
 *                            length (for load tests measuring latency added downstream)
 *   "steps": [...]           the stream; each step is an object with one of:
 *     {"role": true}                         Chat: the first {"role":"assistant","content":""}
 *     {"text": "...", "chunk": 3, "gap_ms": 0, "id": "msg_1", "annotations": [...]}
 *     {"reasoning": "...", "chunk": n, "gap_ms": g, "field": "reasoning_content"|"reasoning"}
 *     {"refusal": "..."}
 *     {"tool_call": {"id": "call_1", "item_id": "fc_1", "name": "f", "arguments": "{...}",
 *                    "index": 0, "fragment": 4, "whole": false}, "gap_ms": g}
 *     {"finish": "stop"}                     Chat: a finish chunk; Responses: response.completed
 *     {"usage": {...}}                       Chat: a choices:[] usage chunk; Responses: the usage
 *                                            of the next response.completed
 *     {"incomplete": "max_output_tokens"}    Responses: response.incomplete
 *     {"failed": {"code": "...", "message": "..."}}   Responses: response.failed
 *     {"error": {...}}                       Chat: data: {"error":...}; Responses: an error event
 *     {"done": true}                         data: [DONE]
 *     {"comment": "keep-alive"}              ": keep-alive"
 *     {"raw": "bytes"}                       written verbatim
 *     {"sleep_ms": n}                        delay before the next frame
 *     {"hang": true}                         stop sending and keep the connection open
 *     {"reset": true}                        close the connection with a TCP reset
 *     {"end": true}                          end the body here (the rest is not sent)
 *   Responses streams begin with response.created automatically.
 *
 * Threads: ck_mock_model_start runs the server on its own loop thread; every function below
 * is then safe to call from the test thread. ck_mock_model_new runs it on a caller's loop.
 */
#ifndef CK_TEST_MOCK_MODEL_H
#define CK_TEST_MOCK_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct ck_mock_model ck_mock_model;

/** Starts the mock on 127.0.0.1 (port 0: any free port) on a new loop thread. Returns NULL on
 * failure. Free it with ck_mock_model_free. */
ck_mock_model *ck_mock_model_start(int port);

/** Creates the mock on `loop` (borrowed, run by the caller) listening on host:port. */
ck_mock_model *ck_mock_model_new(uv_loop_t *loop, const char *host, int port);

/** Stops the mock, aborting streams in progress, and frees it (joins its thread when it has
 * one; for ck_mock_model_new the caller runs the loop afterwards). NULL is a no-op. */
void ck_mock_model_free(ck_mock_model *m);

/** The port the mock listens on. */
int ck_mock_model_port(const ck_mock_model *m);

/** Adds or replaces the script called `name`. Returns 0, or -1 when `script` is not a JSON
 * object. */
int ck_mock_model_add(ck_mock_model *m, const char *name, const char *script);

/** Queues a script for the next request that no header or model name selects. Returns 0 or -1. */
int ck_mock_model_queue(ck_mock_model *m, const char *script);

/** Forgets recorded requests, queued scripts and counters (named scripts stay). */
void ck_mock_model_reset(ck_mock_model *m);

/** Number of requests received since the last reset. */
size_t ck_mock_model_requests(ck_mock_model *m);

/** The path, body, or a header (first match, case-insensitive) of request `i`, as a malloc'd
 * copy the caller frees; NULL when out of range or absent. */
char *ck_mock_model_request_path(ck_mock_model *m, size_t i);
char *ck_mock_model_request_body(ck_mock_model *m, size_t i);
char *ck_mock_model_request_header(ck_mock_model *m, size_t i, const char *name);

/** Streams whose client went away before the script finished. */
int ck_mock_model_aborts(ck_mock_model *m);

/** Waits until at least `n` aborts were seen or `timeout_ms` passed; returns the count. Sets
 * `*last_ns` (when not NULL) to the uv_hrtime() of the latest abort. */
int ck_mock_model_wait_aborts(ck_mock_model *m, int n, int timeout_ms, uint64_t *last_ns);

/** Streams in progress right now. */
int ck_mock_model_active(ck_mock_model *m);

#endif
