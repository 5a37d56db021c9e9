/* Tests for src/service/metrics.c: the registry, the Prometheus text format, bounded series,
 * thread safety and the timing store. */
#include <chatkit/error.h>
#include <chatkit/metrics.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define V(...) ((const char *const[]){__VA_ARGS__})

/* The exposition of the families registered by the test: everything from the first
 * "# HELP test_" line up to the process metrics, which always come last. */
static char *render_test_part(ck_metrics *m) {
  ck_buf b;
  ck_buf_init(&b, 0);
  assert_int_equal(ck_metrics_render(m, &b), CK_OK);
  const char *start = strstr(b.data, "# HELP test_");
  const char *end = strstr(b.data, "# HELP process_");
  assert_non_null(start);
  assert_non_null(end);
  char *out = strndup(start, (size_t)(end - start));
  ck_buf_free(&b);
  return out;
}

static void test_counters_and_gauges(void **state) {
  ck_metrics *m = ck_metrics_new();
  assert_non_null(m);
  ck_metric *c = ck_metrics_register(m, CK_METRIC_COUNTER, "test_hits_total", "Hits.",
                                     V("path", "code", NULL), NULL, 0);
  assert_non_null(c);
  ck_metric_add(c, V("/a", "200"), 1);
  ck_metric_add(c, V("/a", "200"), 2);
  ck_metric_add(c, V("/a", "404"), 1);
  ck_metric_add(c, V("/a", "200"), -5); /* counters never go down */
  assert_true(ck_metric_value(c, V("/a", "200")) == 3);
  assert_true(ck_metric_value(c, V("/a", "404")) == 1);
  assert_true(ck_metric_value(c, V("/b", "200")) == 0);
  ck_metric_observe(c, V("/a", "200"), 1); /* not a histogram: ignored */
  assert_true(ck_metric_value(c, V("/a", "200")) == 3);

  ck_metric *g = ck_metrics_register(m, CK_METRIC_GAUGE, "test_level", "Level.", NULL, NULL, 0);
  ck_metric_add(g, NULL, 5);
  ck_metric_add(g, NULL, -2);
  assert_true(ck_metric_value(g, NULL) == 3);
  ck_metric_set(g, NULL, 42.5);
  assert_true(ck_metric_value(g, NULL) == 42.5);
  assert_ptr_equal(ck_metrics_find(m, "test_level"), g);
  assert_null(ck_metrics_find(m, "test_missing"));

  /* NULL registries and families are no-ops. */
  ck_metric_add(NULL, NULL, 1);
  ck_metric_set(NULL, NULL, 1);
  ck_metric_observe(NULL, NULL, 1);
  ck_metrics_model_call(NULL, "ok", NULL);
  ck_metrics_model_tokens(NULL, 1, 2);
  ck_metrics_tool_call(NULL, "ok");
  assert_null(ck_metrics_find(NULL, "x"));
  ck_metrics_free(m);
  ck_metrics_free(NULL);
}

static void test_invalid_registrations(void **state) {
  ck_metrics *m = ck_metrics_new();
  static const double ok_bounds[] = {1, 2};
  static const double bad_bounds[] = {2, 1};
  assert_null(ck_metrics_register(m, CK_METRIC_COUNTER, "9starts_with_digit", "", NULL, NULL, 0));
  assert_null(ck_metrics_register(m, CK_METRIC_COUNTER, "has-dash", "", NULL, NULL, 0));
  assert_null(ck_metrics_register(m, CK_METRIC_COUNTER, "", "", NULL, NULL, 0));
  assert_null(ck_metrics_register(m, CK_METRIC_COUNTER, "test_x", "", V("le", NULL), NULL, 0));
  assert_null(ck_metrics_register(m, CK_METRIC_COUNTER, "test_x", "", V("__x", NULL), NULL, 0));
  assert_null(ck_metrics_register(m, CK_METRIC_COUNTER, "test_x", "",
                                  V("a", "b", "c", "d", "e", NULL), NULL, 0));
  assert_null(ck_metrics_register(m, CK_METRIC_HISTOGRAM, "test_h", "", NULL, NULL, 0));
  assert_null(ck_metrics_register(m, CK_METRIC_HISTOGRAM, "test_h", "", NULL, bad_bounds, 2));
  assert_non_null(ck_metrics_register(m, CK_METRIC_HISTOGRAM, "test_h", "", NULL, ok_bounds, 2));
  /* Names are unique, the server's included. */
  assert_null(ck_metrics_register(m, CK_METRIC_HISTOGRAM, "test_h", "", NULL, ok_bounds, 2));
  assert_null(
      ck_metrics_register(m, CK_METRIC_COUNTER, "chatkit_requests_total", "", NULL, NULL, 0));
  ck_metrics_free(m);
}

static void test_exposition_format(void **state) {
  ck_metrics *m = ck_metrics_new();
  ck_metric *c =
      ck_metrics_register(m, CK_METRIC_COUNTER, "test_events_total",
                          "Events with a \\ backslash\nand a newline.", V("kind", NULL), NULL, 0);
  ck_metric_add(c, V("a\"b\\c\nd"), 3);
  ck_metric_add(c, V("plain"), 0.5);
  ck_metric *g = ck_metrics_register(m, CK_METRIC_GAUGE, "test_idle", "Idle.", NULL, NULL, 0);
  (void)g;
  static const double bounds[] = {0.1, 1, 2.5};
  ck_metric *h = ck_metrics_register(m, CK_METRIC_HISTOGRAM, "test_latency_seconds", "Latency.",
                                     V("op", NULL), bounds, 3);
  ck_metric_observe(h, V("get"), 0.05);
  ck_metric_observe(h, V("get"), 0.1); /* bounds are inclusive */
  ck_metric_observe(h, V("get"), 2);
  ck_metric_observe(h, V("get"), 100);
  char *text = render_test_part(m);
  const char *expected = "# HELP test_events_total Events with a \\\\ backslash\\nand a newline.\n"
                         "# TYPE test_events_total counter\n"
                         "test_events_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"
                         "test_events_total{kind=\"plain\"} 0.5\n"
                         "# HELP test_idle Idle.\n"
                         "# TYPE test_idle gauge\n"
                         "test_idle 0\n"
                         "# HELP test_latency_seconds Latency.\n"
                         "# TYPE test_latency_seconds histogram\n"
                         "test_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
                         "test_latency_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                         "test_latency_seconds_bucket{op=\"get\",le=\"2.5\"} 3\n"
                         "test_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                         "test_latency_seconds_sum{op=\"get\"} 102.15\n"
                         "test_latency_seconds_count{op=\"get\"} 4\n";
  assert_string_equal(text, expected);
  assert_true(ck_metric_value(h, V("get")) == 4);
  free(text);
  ck_metrics_free(m);
}

static void test_server_families_and_process(void **state) {
  ck_metrics *m = ck_metrics_new();
  ck_metrics_model_call(m, "ok", NULL);
  ck_metrics_model_call(m, "error", "timeout");
  ck_metrics_model_tokens(m, 120, 30);
  ck_metrics_tool_call(m, "ok");
  ck_buf b;
  ck_buf_init(&b, 0);
  assert_int_equal(ck_metrics_render(m, &b), CK_OK);
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
    assert_non_null(strstr(b.data, types[i]));
  assert_non_null(strstr(b.data, "chatkit_model_calls_total{outcome=\"ok\"} 1\n"));
  assert_non_null(strstr(b.data, "chatkit_model_calls_total{outcome=\"error\"} 1\n"));
  assert_non_null(strstr(b.data, "chatkit_model_errors_total{kind=\"timeout\"} 1\n"));
  assert_non_null(strstr(b.data, "chatkit_model_tokens_total{kind=\"input\"} 120\n"));
  assert_non_null(strstr(b.data, "chatkit_model_tokens_total{kind=\"output\"} 30\n"));
  assert_non_null(strstr(b.data, "chatkit_tool_calls_total{outcome=\"ok\"} 1\n"));
  assert_non_null(strstr(b.data, "chatkit_open_streams 0\n"));
  /* The process metrics are real numbers: a resident size and a start time in this era. */
  const char *rss = strstr(b.data, "\nprocess_resident_memory_bytes ");
  assert_non_null(rss);
  assert_true(strtod(rss + strlen("\nprocess_resident_memory_bytes "), NULL) > 1024 * 1024);
  const char *start = strstr(b.data, "\nprocess_start_time_seconds ");
  assert_non_null(start);
  assert_true(strtod(start + strlen("\nprocess_start_time_seconds "), NULL) > 1.5e9);
  ck_buf_free(&b);

  /* A buffer too small for the exposition is reported, not overrun. */
  ck_buf small;
  ck_buf_init(&small, 64);
  assert_int_equal(ck_metrics_render(m, &small), CK_ENOMEM);
  ck_buf_free(&small);
  ck_metrics_free(m);
}

static void test_series_are_bounded(void **state) {
  ck_metrics *m = ck_metrics_new();
  ck_metric *c =
      ck_metrics_register(m, CK_METRIC_COUNTER, "test_by_user_total", "", V("user", NULL), NULL, 0);
  for (int i = 0; i < 1000; i++) {
    char user[32];
    snprintf(user, sizeof(user), "user-%d", i);
    ck_metric_add(c, V(user), 1);
  }
  /* The first CK_METRICS_MAX_SERIES - 1 combinations have their own series; the rest share
   * "other", so nothing is lost and memory stays bounded. */
  assert_true(ck_metric_value(c, V("user-0")) == 1);
  assert_true(ck_metric_value(c, V("user-999")) == 0);
  assert_true(ck_metric_value(c, V("other")) == 1000 - (CK_METRICS_MAX_SERIES - 1));
  char *text = render_test_part(m);
  size_t lines = 0;
  for (const char *p = text; (p = strstr(p, "test_by_user_total{")) != NULL; p++)
    lines++;
  assert_int_equal(lines, CK_METRICS_MAX_SERIES);
  free(text);

  /* A label value over the cap is truncated, and the long value keeps finding its series. */
  char long_value[300];
  memset(long_value, 'x', sizeof(long_value) - 1);
  long_value[sizeof(long_value) - 1] = '\0';
  ck_metric *g =
      ck_metrics_register(m, CK_METRIC_COUNTER, "test_long_total", "", V("v", NULL), NULL, 0);
  ck_metric_add(g, V(long_value), 1);
  ck_metric_add(g, V(long_value), 1);
  assert_true(ck_metric_value(g, V(long_value)) == 2);
  ck_metrics_free(m);
}

typedef struct worker_arg {
  ck_metric *c, *h;
  int id;
} worker_arg;

static void *worker(void *ud) {
  worker_arg *a = ud;
  char label[8];
  snprintf(label, sizeof(label), "w%d", a->id % 2);
  for (int i = 0; i < 20000; i++) {
    ck_metric_add(a->c, V(label), 1);
    ck_metric_observe(a->h, V(label), 0.5);
  }
  return NULL;
}

static void test_concurrent_updates(void **state) {
  ck_metrics *m = ck_metrics_new();
  static const double bounds[] = {1};
  ck_metric *c =
      ck_metrics_register(m, CK_METRIC_COUNTER, "test_conc_total", "", V("w", NULL), NULL, 0);
  ck_metric *h =
      ck_metrics_register(m, CK_METRIC_HISTOGRAM, "test_conc_seconds", "", V("w", NULL), bounds, 1);
  pthread_t t[6];
  worker_arg args[6];
  for (int i = 0; i < 6; i++) {
    args[i] = (worker_arg){c, h, i};
    pthread_create(&t[i], NULL, worker, &args[i]);
  }
  for (int i = 0; i < 6; i++)
    pthread_join(t[i], NULL);
  assert_true(ck_metric_value(c, V("w0")) == 60000);
  assert_true(ck_metric_value(c, V("w1")) == 60000);
  assert_true(ck_metric_value(h, V("w0")) == 60000);
  char *text = render_test_part(m);
  assert_non_null(strstr(text, "test_conc_seconds_sum{w=\"w1\"} 30000\n"));
  free(text);
  ck_metrics_free(m);
}

static void test_store_wrapper(void **state) {
  ck_metrics *m = ck_metrics_new();
  ck_store *inner = ck_store_memory_new();
  assert_null(ck_store_metrics_wrap(NULL, m));
  assert_ptr_equal(ck_store_metrics_wrap(inner, NULL), inner);
  ck_store *s = ck_store_metrics_wrap(inner, m);
  assert_non_null(s);
  assert_string_equal(s->name, inner->name);
  assert_int_equal(s->nonblocking, inner->nonblocking);
  ck_arena *a = ck_arena_new(0);
  ck_ctx ctx = {.user_id = "u1"};
  ck_json *out = NULL;
  assert_int_equal(s->vt->load_thread(s, a, "thr_missing", &ctx, &out), CK_ENOTFOUND);
  assert_int_equal(s->vt->load_thread(s, a, "thr_missing", &ctx, &out), CK_ENOTFOUND);
  ck_page page;
  assert_int_equal(s->vt->load_threads(s, a, 10, NULL, CK_ORDER_DESC, &ctx, &page), CK_OK);
  assert_int_equal(s->vt->ping(s), CK_OK);
  ck_metric *h = ck_metrics_find(m, "chatkit_store_duration_seconds");
  assert_true(ck_metric_value(h, V("load_thread")) == 2);
  assert_true(ck_metric_value(h, V("load_threads")) == 1);
  assert_true(ck_metric_value(h, V("ping")) == 0); /* probes are not workload */
  ck_arena_free(a);
  ck_store_free(s); /* frees the inner store too (ASan checks) */
  ck_metrics_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counters_and_gauges),
      cmocka_unit_test(test_invalid_registrations),
      cmocka_unit_test(test_exposition_format),
      cmocka_unit_test(test_server_families_and_process),
      cmocka_unit_test(test_series_are_bounded),
      cmocka_unit_test(test_concurrent_updates),
      cmocka_unit_test(test_store_wrapper),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
