/* bench_core: throughput of the core request path with no network.
 *
 *   items.list  parse -> process -> serialise of {"type":"items.list"} on a thread of 20 items
 *               (alternating user and assistant messages of realistic size)
 *   stream      threads.add_user_message whose respond handler streams a 50-delta assistant
 *               message (added, content_part.added, 50 text_delta, content_part.done, done)
 *               into a sink that discards the frames
 *
 * each on the memory store and on an SQLite store in a temporary directory. Every figure is
 * the best of 5 runs of about one second, in operations per second. The stream benchmark
 * starts a new thread every 256 messages so the thread's length (which the stores' item
 * lookups depend on) stays bounded and the figure does not depend on how long a run lasts.
 *
 * Usage: bench_core [seconds-per-run]   (see bench/README.md)
 */
#include <chatkit/error.h>
#include <chatkit/protocol.h>
#include <chatkit/server.h>
#include <chatkit/store.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define RUNS 5
#define DELTAS 50
#define MSGS_PER_THREAD 256

static double run_seconds = 1.0;

typedef struct bench {
  ck_store *store;
  ck_server *srv;
  ck_ctx ctx;
  uint64_t ids;
  int64_t clock;
  char thread_id[32];
} bench;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sequential ids: the default random ids are 32 bits and would collide over a long run. */
static int idgen(void *ud, const char *kind, const ck_json *thread, char *out, size_t cap) {
  bench *b = ud;
  const char *p = ck_id_prefix(kind);
  snprintf(out, cap, "%s_%08llx", p ? p : kind, (unsigned long long)++b->ids);
  return CK_OK;
}

static int64_t clock_fn(void *ud) {
  bench *b = ud;
  return 1735689600LL * 1000000 + 1000LL * b->clock++;
}

static int discard(void *ud, const char *frame, size_t len) {
  return CK_OK;
}

/* Fifty deltas of a typical model token size (4-6 bytes each, ~250 bytes in all). */
static const char *const words[] = {"The ",  "quick ", "brown ", "fox ",  "jumps ",
                                    "over ", "the ",   "lazy ",  "dog. ", "Then "};

static int respond(void *ud, ck_stream *s, const ck_json *user_message) {
  const char *id = ck_stream_new_id(s, "message");
  const char *at = ck_stream_now(s);
  const char *tid = ck_json_object_get_str(ck_stream_thread(s), "id");
  ck_arena *a = ck_stream_scratch(s);
  int rc = ck_emit_canonical(
      s, ck_event_item(a, "thread.item.added", ck_item_assistant_message(a, id, tid, at, NULL)));
  a = ck_stream_scratch(s);
  if (rc == CK_OK)
    rc = ck_emit_canonical(
        s, ck_event_item_updated(
               a, id, ck_update_content_part(a, false, 0, ck_assistant_content(a, "", 0))));
  char text[512];
  size_t len = 0;
  for (int i = 0; rc == CK_OK && i < DELTAS; i++) {
    const char *w = words[i % 10];
    size_t n = strlen(w);
    memcpy(text + len, w, n);
    len += n;
    a = ck_stream_scratch(s);
    rc = ck_emit_canonical(s, ck_event_item_updated(a, id, ck_update_text_delta(a, 0, w, n)));
  }
  a = ck_stream_scratch(s);
  if (rc == CK_OK)
    rc = ck_emit_canonical(
        s, ck_event_item_updated(
               a, id, ck_update_content_part(a, true, 0, ck_assistant_content(a, text, len))));
  a = ck_stream_scratch(s);
  if (rc == CK_OK) {
    ck_json *content = ck_json_array(a);
    ck_json_array_append(content, ck_assistant_content(a, text, len));
    rc = ck_emit_canonical(s, ck_event_item(a, "thread.item.done",
                                            ck_item_assistant_message(a, id, tid, at, content)));
  }
  return rc;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_core: %s: %s\n", what, ck_strerror(rc));
  exit(1);
}

static void bench_init(bench *b, ck_store *store) {
  memset(b, 0, sizeof(*b));
  b->store = store;
  b->ctx.user_id = "bench";
  ck_server_config cfg = {0};
  cfg.store = store;
  cfg.handlers.respond = respond;
  cfg.idgen = idgen;
  cfg.idgen_ud = b;
  cfg.clock = clock_fn;
  cfg.clock_ud = b;
  b->srv = ck_server_new(&cfg);
  if (b->srv == NULL)
    die("ck_server_new", CK_ENOMEM);
}

static void new_thread(bench *b) {
  ck_arena *a = ck_arena_new(0);
  snprintf(b->thread_id, sizeof(b->thread_id), "thr_%08llx", (unsigned long long)++b->ids);
  ck_json *t = ck_thread_new(a, b->thread_id, ck_server_now(b->srv, a));
  int rc = b->store->vt->save_thread(b->store, t, &b->ctx);
  if (rc != CK_OK)
    die("save_thread", rc);
  ck_arena_free(a);
}

/* A thread of 20 items: user questions of ~120 bytes and assistant answers of ~900 bytes with
 * an annotation, like a real conversation. */
static void seed_thread(bench *b) {
  new_thread(b);
  ck_arena *a = ck_arena_new(0);
  for (int i = 0; i < 20; i++) {
    char *text;
    if (i % 2 == 0)
      text = ck_arena_printf(
          a,
          "{\"id\":\"msg_u%02d\",\"thread_id\":\"%s\",\"created_at\":\"2025-01-01T00:00:%02d\","
          "\"type\":\"user_message\",\"content\":[{\"type\":\"input_text\",\"text\":\"Could you "
          "explain how the event pipeline persists items before it emits them? (%d)\"}],"
          "\"attachments\":[],\"inference_options\":{\"model\":\"gpt-4.1\"}}",
          i, b->thread_id, i, i);
    else {
      char body[901];
      for (int k = 0; k < 900; k++)
        body[k] = "abcdefgh ijklmnop qrstuvwx yz. "[k % 31];
      body[900] = '\0';
      text = ck_arena_printf(
          a,
          "{\"id\":\"msg_a%02d\",\"thread_id\":\"%s\",\"created_at\":\"2025-01-01T00:00:%02d\","
          "\"type\":\"assistant_message\",\"content\":[{\"annotations\":[{\"type\":\"annotation\","
          "\"source\":{\"title\":\"Docs\",\"type\":\"url\",\"url\":\"https://example.com/d\"},"
          "\"index\":12}],\"text\":\"%s\",\"type\":\"output_text\"}]}",
          i, b->thread_id, i, body);
    }
    ck_json *item = NULL;
    int rc = ck_json_parse(a, text, strlen(text), 0, &item, NULL);
    if (rc == CK_OK)
      rc = b->store->vt->add_thread_item(b->store, b->thread_id, item, &b->ctx);
    if (rc != CK_OK)
      die("seed add_thread_item", rc);
  }
  ck_arena_free(a);
}

static void op_items_list(bench *b, const char *body, size_t len) {
  ck_response resp;
  ck_error_info err;
  int rc = ck_server_process(b->srv, body, len, &b->ctx, &resp, &err);
  if (rc != CK_OK)
    die(err.message, rc);
  free(resp.body);
}

static void op_stream(bench *b, uint64_t n) {
  if (n % MSGS_PER_THREAD == 0)
    new_thread(b);
  char body[320];
  int len = snprintf(body, sizeof(body),
                     "{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"%s\","
                     "\"input\":{\"content\":[{\"type\":\"input_text\",\"text\":\"Tell me a "
                     "story about a fox.\"}],\"attachments\":[],\"inference_options\":{}}}}",
                     b->thread_id);
  ck_response resp;
  ck_error_info err;
  int rc = ck_server_process(b->srv, body, (size_t)len, &b->ctx, &resp, &err);
  if (rc != CK_OK)
    die(err.message, rc);
  ck_sink sink = {discard, NULL};
  rc = ck_stream_run(resp.stream, &sink);
  if (rc != CK_OK)
    die(ck_stream_error(resp.stream)->message, rc);
  if (ck_stream_events_sent(resp.stream) != DELTAS + 6)
    die("unexpected number of events", CK_ESTATE);
  ck_stream_free(resp.stream);
}

/* Best of RUNS runs of about run_seconds each, in operations per second. */
static double measure(bench *b, int which) {
  char body[160];
  int len =
      snprintf(body, sizeof(body),
               "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\",\"order\":\"asc\"}}",
               b->thread_id);
  double best = 0;
  uint64_t total = 0;
  for (int r = 0; r < RUNS; r++) {
    uint64_t ops = 0;
    double start = now_s(), elapsed = 0;
    do {
      for (int k = 0; k < 16; k++, ops++, total++) {
        if (which == 0)
          op_items_list(b, body, (size_t)len);
        else
          op_stream(b, total);
      }
      elapsed = now_s() - start;
    } while (elapsed < run_seconds);
    double rate = (double)ops / elapsed;
    if (rate > best)
      best = rate;
  }
  return best;
}

static void run_suite(const char *name, ck_store *store) {
  bench b;
  bench_init(&b, store);
  seed_thread(&b);
  double list = measure(&b, 0);
  printf("%-7s items.list (20 items)            %10.0f ops/s\n", name, list);
  double stream = measure(&b, 1);
  printf("%-7s add_user_message stream (%d deltas) %8.0f ops/s  (%.0f events/s)\n", name, DELTAS,
         stream, stream * (DELTAS + 6));
  ck_server_free(b.srv);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    char *end = NULL;
    run_seconds = strtod(argv[1], &end);
    if (end == argv[1] || run_seconds <= 0) {
      fprintf(stderr, "usage: %s [seconds-per-run]\n", argv[0]);
      return 2;
    }
  }
  ck_store *mem = ck_store_memory_new();
  if (mem == NULL)
    die("ck_store_memory_new", CK_ENOMEM);
  run_suite("memory", mem);
  ck_store_free(mem);

  char dir[] = "/tmp/bench_core.XXXXXX";
  if (mkdtemp(dir) == NULL)
    die("mkdtemp", CK_EIO);
  char path[64], errbuf[256];
  snprintf(path, sizeof(path), "%s/bench.db", dir);
  ck_store *sq = NULL;
  int rc = ck_store_sqlite_open(path, &sq, errbuf, sizeof(errbuf));
  if (rc != CK_OK)
    die(errbuf, rc);
  run_suite("sqlite", sq);
  ck_store_free(sq);
  /* The WAL and shared-memory files go with the database. */
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    char p[80];
    snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
    unlink(p);
  }
  rmdir(dir);
  return 0;
}
