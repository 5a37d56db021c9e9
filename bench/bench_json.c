/* Micro-benchmark of the JSON hot path: parses and writes a ~5 KB chat-like document N times
 * and prints the throughput of each.
 *
 *   bench_json [iterations]   (default 20000)
 */
#include <chatkit/error.h>
#include <chatkit/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Builds a thread-with-items document like a threads.get_by_id response: mostly ASCII text,
 * some non-ASCII and escapes, ids, timestamps, small numbers and nested arrays. */
static int build_doc(ck_buf *b) {
  static const char *texts[] = {
      "Sure! Here is a summary of the document you uploaded:\\n\\n1. The introduction sets "
      "out the goals of the project.\\n2. The second part describes the method in detail.",
      "Can you translate this into French? \\\"The quick brown fox jumps over the lazy dog.\\\"",
      "Voil\xc3\xa0 : \xc2\xab"
      " Le renard brun rapide saute par-dessus le chien paresseux. \xc2\xbb "
      "\xf0\x9f\xa6\x8a\xf0\x9f\x90\xb6",
      "The weather in Z\xc3\xbc"
      "rich today is 21\xc2\xb0"
      "C with light winds from the west.",
  };
  int rc = ck_buf_puts(b, "{\"id\":\"thr_1a2b3c4d\",\"created_at\":\"2025-01-02T03:04:05.678901\","
                          "\"status\":{\"type\":\"active\"},\"metadata\":{},\"items\":{\"data\":[");
  for (int i = 0; rc == CK_OK && b->len < 4800; i++) {
    const char *t = texts[i % 4];
    rc = ck_buf_printf(
        b,
        "%s{\"id\":\"msg_%04d\",\"thread_id\":\"thr_1a2b3c4d\",\"created_at\":"
        "\"2025-01-02T03:04:%02d.%06d\",\"type\":\"%s\",\"content\":[{\"type\":\"%s\","
        "\"text\":\"%s\",\"annotations\":[]}],\"attachments\":[],\"inference_options\":{"
        "\"tool_choice\":null,\"model\":\"gpt-4.1\"},\"progress\":%d.%d,\"tokens\":%d}",
        i ? "," : "", i, i % 60, i * 12345 % 1000000, i % 2 ? "assistant_message" : "user_message",
        i % 2 ? "output_text" : "input_text", t, i % 10, i % 7, 100 + i * 37);
  }
  if (rc == CK_OK)
    rc = ck_buf_puts(b, "],\"has_more\":false}}");
  return rc;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
  if (iters <= 0)
    iters = 20000;
  int rc = 1;
  ck_buf doc, out;
  ck_buf_init(&doc, 0);
  ck_buf_init(&out, 0);
  ck_arena *a = ck_arena_new(64 * 1024);
  ck_json *v = NULL;
  ck_json_error err;
  if (a == NULL || build_doc(&doc) != CK_OK)
    goto fail;

  /* Parse: one arena reset per document, as a request would do. */
  double t0 = now_s();
  for (long i = 0; i < iters; i++) {
    ck_arena_reset(a);
    if (ck_json_parse(a, doc.data, doc.len, 0, &v, &err) != CK_OK) {
      fprintf(stderr, "parse failed: %s at %zu\n", err.message, err.offset);
      goto fail;
    }
  }
  double t_parse = now_s() - t0;

  /* Write the last tree repeatedly into a reused buffer. */
  t0 = now_s();
  for (long i = 0; i < iters; i++) {
    ck_buf_reset(&out);
    if (ck_json_write(&out, v) != CK_OK)
      goto fail;
  }
  double t_write = now_s() - t0;

  double mb = (double)doc.len * (double)iters / 1e6;
  printf("document: %zu bytes, %ld iterations\n", doc.len, iters);
  printf("parse: %8.1f MB/s  (%.2f us/doc)\n", mb / t_parse, t_parse * 1e6 / (double)iters);
  printf("write: %8.1f MB/s  (%.2f us/doc)\n", (double)out.len * (double)iters / 1e6 / t_write,
         t_write * 1e6 / (double)iters);
  rc = out.len == doc.len && memcmp(out.data, doc.data, doc.len) == 0 ? 0 : 1;
  if (rc != 0)
    fprintf(stderr, "round trip differs\n");
fail:
  ck_arena_free(a);
  ck_buf_free(&doc);
  ck_buf_free(&out);
  return rc;
}
