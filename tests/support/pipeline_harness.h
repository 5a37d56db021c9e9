/* A harness for driving the request processor in tests: a memory store behind a wrapper that
 * can be told to fail, deterministic ids ("<prefix>_<4 digits>", one counter per prefix, as in
 * the conformance replay) and clock (2025-01-01T00:00:00 plus one second per reading), and a
 * sink that keeps every frame it receives.
 *
 * Why a wrapper store: the pipeline's persist-before-emit rule can only be observed when a
 * store call fails at a chosen moment, which the memory store alone never does.
 */
#ifndef CK_TEST_PIPELINE_HARNESS_H
#define CK_TEST_PIPELINE_HARNESS_H

#include <chatkit/server.h>
#include <chatkit/store.h>

#include <stdbool.h>
#include <stddef.h>

#define HX_MAX_FRAMES 4096

typedef struct hx {
  ck_store base;   /* the wrapper the server uses (must stay the first member) */
  ck_store *inner; /* the memory store */
  ck_server *srv;
  /* When set, add_thread_item fails with CK_ESTORE for items of this type. */
  const char *fail_add_type;
  int add_calls; /* add_thread_item calls seen (failed ones included) */
  /* Stream lease calls seen, forwarded to the memory store. */
  int acquire_calls, release_calls, renew_calls;
  int fail_acquire; /* when not CK_OK, acquire_stream returns this instead */
  struct {
    char prefix[24];
    int n;
  } ids[16];
  size_t nids;
  long long clock_n;
  /* Frames of the last stream, each as its JSON payload (the "data: " prefix and the blank
   * line checked and removed). */
  char *frames[HX_MAX_FRAMES];
  size_t nframes;
  size_t cancel_at; /* when > 0, the sink refuses frame number cancel_at (1-based) */
  bool bad_framing; /* a frame did not have the exact SSE framing */
  ck_sink sink;
} hx;

/** Sets up `h` with a fresh memory store and a server using `handlers` (NULL: all defaults). */
void hx_init(hx *h, const ck_handlers *handlers);

/** hx_init with a stream lease TTL for the server (ck_server_config.stream_lease_ms). */
void hx_init_lease(hx *h, const ck_handlers *handlers, int stream_lease_ms);

/** Frees everything `hx_init` made and the collected frames. */
void hx_free(hx *h);

/** Forgets the collected frames. */
void hx_clear_frames(hx *h);

/** Processes `body` for `ctx` (NULL: user "u1"). A JSON answer is returned in `*json` (malloc'd,
 * may be NULL when not wanted); a stream is run to its end into the collecting sink and
 * freed. Returns the code of ck_server_process, or of ck_stream_run for streams. */
int hx_request(hx *h, const ck_ctx *ctx, const char *body, char **json, ck_error_info *err);

/** Like hx_request for a streaming body, but hands the unrun stream to the caller. */
int hx_open_stream(hx *h, const ck_ctx *ctx, const char *body, ck_stream **s);

/** The sink that collects frames into `h` (ud = h). */
const ck_sink *hx_sink(hx *h);

/** A stream run on a thread of its own (pthread_create(&t, NULL, hx_run_stream, &r)), for
 * tests that act on it from another thread meanwhile. */
typedef struct hx_runner {
  ck_stream *s;
  hx *h;
  int rc; /* ck_stream_run's result, once the thread was joined */
} hx_runner;

/** The thread function: runs r->s into hx_sink(r->h). */
void *hx_run_stream(void *arg);

/** The payload of frame `i`, or NULL. */
const char *hx_frame(const hx *h, size_t i);

/** Index of the first frame whose payload contains `needle`, or -1. */
long hx_find(const hx *h, const char *needle);

/** The stored items of `tid` (ascending, hidden ones included) serialised one per element
 * into `out` (malloc'd strings, at most `cap`); returns how many. */
size_t hx_stored_items(hx *h, const ck_ctx *ctx, const char *tid, char **out, size_t cap);

/** Frees strings returned by hx_stored_items. */
void hx_free_strings(char **s, size_t n);

/** The default test user's context. */
extern const ck_ctx hx_user1;

#endif
