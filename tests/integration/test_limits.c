/* Metrics and limits of the real binary: GET /metrics is valid Prometheus text that counts
 * the requests made; --rate-limit-rpm refuses a burst past the limit with 429 and
 * Retry-After; --max-streams-per-user refuses a second stream while the first goes on to
 * complete; --max-stream-seconds ends a slow stream after about a second, through the
 * cancellation path, so its partial message is saved. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/http_client.h"
#include "support/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[256];
static char store[320];
static ck_proc srv;
static ck_arena *A;

static const char create_body[] =
    "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_text\","
    "\"text\":\"slow\"}],\"attachments\":[],\"inference_options\":{}}}}";
static const char list_body[] = "{\"type\":\"threads.list\",\"params\":{}}";

static int setup(void **state) {
  (void)state;
  A = ck_arena_new(0);
  if (A == NULL || ck_tmpdir_make(dir, sizeof(dir)) != 0)
    return -1;
  snprintf(store, sizeof(store), "sqlite:%s/chatkit.db", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ck_proc_kill_all();
  ck_tmpdir_remove(dir);
  ck_arena_free(A);
  return 0;
}

/* ---- Prometheus text ---- */

static bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

/* Checks one sample line: NAME, optional {label="value",...} with escapes, a space and a
 * number that strtod reads entirely. Returns the value through `value`. */
static bool parse_sample(const char *line, size_t len, char *name, size_t cap, double *value) {
  size_t i = 0;
  while (i < len && is_name_char(line[i], i == 0))
    i++;
  if (i == 0 || i >= cap)
    return false;
  memcpy(name, line, i);
  name[i] = '\0';
  if (i < len && line[i] == '{') {
    i++;
    while (i < len && line[i] != '}') {
      size_t start = i;
      while (i < len && is_name_char(line[i], i == start))
        i++;
      if (i == start || i + 1 >= len || line[i] != '=' || line[i + 1] != '"')
        return false;
      i += 2;
      while (i < len && line[i] != '"')
        i += line[i] == '\\' ? 2 : 1;
      if (i >= len)
        return false;
      i++;
      if (i < len && line[i] == ',')
        i++;
    }
    if (i >= len)
      return false;
    i++;
  }
  if (i >= len || line[i] != ' ')
    return false;
  char num[64];
  size_t n = len - i - 1;
  if (n == 0 || n >= sizeof(num))
    return false;
  memcpy(num, line + i + 1, n);
  num[n] = '\0';
  char *end = NULL;
  *value = strtod(num, &end);
  return *end == '\0';
}

/* Validates the whole exposition: # HELP and # TYPE lines name metrics, TYPE is a known
 * kind, and every sample's family (less _bucket/_sum/_count) was declared by a TYPE line. */
static void check_exposition(const char *text) {
  char types[4096] = " ";
  size_t samples = 0;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl); /* every line ends with a newline */
    size_t len = (size_t)(nl - p);
    char line[1024];
    assert_true(len < sizeof(line));
    memcpy(line, p, len);
    line[len] = '\0';
    if (strncmp(line, "# TYPE ", 7) == 0) {
      char name[256], kind[32];
      assert_int_equal(sscanf(line + 7, "%255s %31s", name, kind), 2);
      assert_true(strcmp(kind, "counter") == 0 || strcmp(kind, "gauge") == 0 ||
                  strcmp(kind, "histogram") == 0);
      size_t tl = strlen(types);
      snprintf(types + tl, sizeof(types) - tl, "%s ", name);
    } else if (strncmp(line, "# HELP ", 7) == 0) {
      assert_true(is_name_char(line[7], true));
    } else {
      char name[256];
      double v = 0;
      if (!parse_sample(line, len, name, sizeof(name), &v))
        fail_msg("not a sample line: %s", line);
      char family[260];
      snprintf(family, sizeof(family), " %s ", name);
      if (strstr(types, family) == NULL) {
        static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
        bool found = false;
        for (size_t k = 0; k < 3 && !found; k++) {
          size_t nl2 = strlen(name), sl = strlen(suffixes[k]);
          if (nl2 > sl && strcmp(name + nl2 - sl, suffixes[k]) == 0) {
            snprintf(family, sizeof(family), " %.*s ", (int)(nl2 - sl), name);
            found = strstr(types, family) != NULL;
          }
        }
        if (!found)
          fail_msg("sample of an undeclared metric: %s", line);
      }
      samples++;
    }
    p = nl + 1;
  }
  assert_true(samples > 10);
}

/* The value of the sample line that starts with `prefix` (name and labels exactly), or -1. */
static double sample(const char *text, const char *prefix) {
  size_t n = strlen(prefix);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  return -1;
}

static char *scrape(int port) {
  hc_response r;
  assert_int_equal(hc_request(port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  const char *ct = hc_header(&r, "Content-Type");
  assert_non_null(ct);
  assert_non_null(strstr(ct, "text/plain"));
  assert_non_null(strstr(ct, "version=0.0.4"));
  char *text = ck_arena_strndup(A, r.body, r.body_len);
  hc_response_free(&r);
  return text;
}

static void test_metrics_endpoint(void **state) {
  (void)state;
  const char *args[] = {"--store", "memory:", "--demo-delay-ms", "0", "--demo-tokens", "4", NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  hc_response r;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(hc_chatkit(port, list_body, &r), 0);
    assert_int_equal(r.status, 200);
    hc_response_free(&r);
  }
  assert_int_equal(hc_chatkit(port,
                              "{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":"
                              "\"thr_missing\"}}",
                              &r),
                   0);
  assert_int_equal(r.status, 404);
  hc_response_free(&r);
  ck_json *events = hc_stream(A, port, create_body);
  assert_non_null(events);
  size_t nevents = ck_json_array_size(events);

  char *text = scrape(port);
  check_exposition(text);
  static const char *const types[] = {
      "# TYPE chatkit_requests_total counter\n",
      "# TYPE chatkit_request_duration_seconds histogram\n",
      "# TYPE chatkit_open_streams gauge\n",
      "# TYPE chatkit_http_connections gauge\n",
      "# TYPE chatkit_stream_events_total counter\n",
      "# TYPE chatkit_model_calls_total counter\n",
      "# TYPE chatkit_model_tokens_total counter\n",
      "# TYPE chatkit_model_errors_total counter\n",
      "# TYPE chatkit_tool_calls_total counter\n",
      "# TYPE chatkit_store_duration_seconds histogram\n",
      "# TYPE chatkit_rate_limited_total counter\n",
      "# TYPE process_resident_memory_bytes gauge\n",
      "# TYPE process_cpu_seconds_total counter\n",
      "# TYPE process_start_time_seconds gauge\n",
  };
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strstr(text, types[i]) == NULL)
      fail_msg("missing %s", types[i]);
  assert_true(sample(text, "chatkit_requests_total{type=\"threads.list\",status=\"200\"}") == 3);
  assert_true(sample(text, "chatkit_requests_total{type=\"threads.get_by_id\",status=\"404\"}") ==
              1);
  assert_true(sample(text, "chatkit_requests_total{type=\"threads.create\",status=\"200\"}") == 1);
  assert_true(sample(text, "chatkit_request_duration_seconds_count{type=\"threads.list\"}") == 3);
  assert_true(sample(text, "chatkit_request_duration_seconds_bucket{type=\"threads.list\","
                           "le=\"+Inf\"}") == 3);
  assert_true(sample(text, "chatkit_stream_events_total") == (double)nevents);
  assert_true(sample(text, "chatkit_open_streams") == 0);
  assert_true(sample(text, "chatkit_http_connections") >= 1); /* this scrape's own */
  assert_true(sample(text, "chatkit_store_duration_seconds_count{op=\"load_threads\"}") == 3);
  assert_true(sample(text, "chatkit_store_duration_seconds_count{op=\"save_thread\"}") >= 1);
  assert_true(sample(text, "process_resident_memory_bytes") > 0);
  assert_true(sample(text, "process_start_time_seconds") > 1.5e9);

  /* Only GET (and HEAD) reads metrics. */
  assert_int_equal(hc_request(port, "POST", "/metrics", NULL, "", 0, &r), 0);
  assert_int_equal(r.status, 405);
  hc_response_free(&r);
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);

  /* --metrics false: no endpoint. */
  const char *off[] = {"--store", "memory:", "--metrics", "false", NULL};
  port = ck_server_start(&srv, dir, off, NULL);
  assert_true(port > 0);
  assert_int_equal(hc_request(port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 404);
  hc_response_free(&r);
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

static void test_rate_limit(void **state) {
  (void)state;
  const char *args[] = {"--store", "memory:", "--rate-limit-rpm", "5", NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  hc_response r;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(hc_chatkit(port, list_body, &r), 0);
    assert_int_equal(r.status, 200);
    hc_response_free(&r);
  }
  assert_int_equal(hc_chatkit(port, list_body, &r), 0);
  assert_int_equal(r.status, 429);
  const char *retry = hc_header(&r, "Retry-After");
  assert_non_null(retry);
  char *end = NULL;
  long secs = strtol(retry, &end, 10);
  assert_true(*end == '\0' && secs >= 1 && secs <= 12); /* a token every 12 s */
  ck_json *body = hc_json(A, r.body, r.body_len);
  hc_response_free(&r);
  const ck_json *err = ck_json_object_get(body, "error");
  assert_string_equal(ck_json_object_get_str(err, "code"), "rate_limited");
  assert_non_null(ck_json_object_get_str(err, "message"));
  /* Health checks and metrics are not ChatKit requests: never limited. */
  assert_true(hc_healthy(port));
  char *text = scrape(port);
  assert_true(sample(text, "chatkit_rate_limited_total{reason=\"requests_per_minute\"}") == 1);
  assert_true(sample(text, "chatkit_requests_total{type=\"unknown\",status=\"429\"}") == 1);
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

static void test_streams_per_user(void **state) {
  (void)state;
  const char *args[] = {"--store",
                        "memory:",
                        "--max-streams-per-user",
                        "1",
                        "--demo-delay-ms",
                        "200",
                        "--demo-tokens",
                        "50",
                        NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  hc_live s;
  assert_int_equal(hc_live_open(&s, port, create_body, A, 1), 0);
  hc_response r;
  assert_int_equal(hc_chatkit(port, create_body, &r), 0);
  assert_int_equal(r.status, 429);
  assert_non_null(hc_header(&r, "Retry-After"));
  ck_json *body = hc_json(A, r.body, r.body_len);
  hc_response_free(&r);
  assert_string_equal(ck_json_object_get_str(ck_json_object_get(body, "error"), "code"),
                      "rate_limited");
  /* JSON requests are not streams: they still pass. */
  assert_int_equal(hc_chatkit(port, list_body, &r), 0);
  assert_int_equal(r.status, 200);
  hc_response_free(&r);
  char *text = scrape(port);
  assert_true(sample(text, "chatkit_open_streams") == 1);
  assert_true(sample(text, "chatkit_rate_limited_total{reason=\"streams_per_user\"}") == 1);
  assert_true(sample(text, "chatkit_requests_total{type=\"threads.create\",status=\"429\"}") == 1);

  /* The first stream is untouched and completes. */
  assert_int_equal(hc_live_finish(&s, A), 0);
  assert_true(s.done);
  assert_int_equal(s.deltas, 50);
  text = scrape(port);
  assert_true(sample(text, "chatkit_open_streams") == 0);
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

static void test_max_stream_seconds(void **state) {
  (void)state;
  const char *args[] = {
      "--store", store, "--max-stream-seconds", "1", "--demo-delay-ms", "200", "--demo-tokens",
      "50",      NULL};
  int port = ck_server_start(&srv, dir, args, NULL);
  assert_true(port > 0);
  long long started = ck_now_ms();
  hc_live s;
  assert_int_equal(hc_live_open(&s, port, create_body, A, 1), 0);
  /* The stream ends on its own, cleanly (the last chunk), after about a second. */
  assert_int_equal(hc_live_finish(&s, A), 0);
  long long took = ck_now_ms() - started;
  assert_false(s.done);
  assert_true(s.deltas > 0 && s.deltas < 50);
  assert_true(took >= 900 && took < 3000);

  /* The partial message was saved through the cancellation path. */
  char body[256];
  snprintf(body, sizeof(body),
           "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\",\"order\":\"asc\"}}", s.tid);
  hc_response r;
  assert_int_equal(hc_chatkit(port, body, &r), 0);
  assert_int_equal(r.status, 200);
  ck_json *page = hc_json(A, r.body, r.body_len);
  hc_response_free(&r);
  const ck_json *items = ck_json_object_get(page, "data");
  assert_true(ck_json_array_size(items) >= 2);
  const ck_json *partial = ck_json_array_get(items, 1);
  assert_string_equal(ck_json_object_get_str(partial, "id"), s.mid);
  assert_string_equal(ck_json_object_get_str(partial, "type"), "assistant_message");
  const char *text = hc_item_text(A, partial);
  assert_true(strlen(text) > 0);
  assert_int_equal(strncmp(text, "You said: ", 10), 0);

  char *metrics = scrape(port);
  assert_true(sample(metrics, "chatkit_rate_limited_total{reason=\"stream_duration\"}") == 1);
  assert_true(sample(metrics, "chatkit_open_streams") == 0);
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_endpoint),
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test(test_streams_per_user),
      cmocka_unit_test(test_max_stream_seconds),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
