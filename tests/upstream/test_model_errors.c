/* The model client's failure paths against the mock: HTTP errors and retries (Retry-After,
 * backoff bounds, no retry after output), errors inside the stream, truncation and resets,
 * the first-byte and idle timeouts, cancellation (the mock must see the connection close
 * promptly, and exactly one final callback must follow), and many concurrent calls. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <chatkit/error.h>

#include "support/model_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_HI "[{\"role\":\"user\",\"content\":\"hi\"}]"
#define OK_SCRIPT "{\"steps\":[{\"text\":\"fine\"},{\"finish\":\"stop\"},{\"done\":true}]}"
#define MS(ns) ((double)(ns) / 1e6)

static void reset(void) {
  ck_mock_model_reset(mh_mock);
}

static void test_429_then_success(void **state) {
  reset();
  ck_mock_model_queue(mh_mock,
                      "{\"status\":429,\"headers\":{\"retry-after\":\"0.3\"},\"body\":"
                      "{\"error\":{\"message\":\"Rate limit reached. Please try again "
                      "in 0.3s.\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}}");
  ck_mock_model_queue(mh_mock, OK_SCRIPT);
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.status, CK_OK);
  assert_string_equal(o.text.data, "fine");
  assert_int_equal(o.res.attempts, 2);
  assert_int_equal(ck_mock_model_requests(mh_mock), 2);
  /* Retry-After (300 ms) was honoured instead of the 10 ms test backoff. */
  assert_true(MS(o.done_ns - o.start_ns) >= 290.0);
  mh_outcome_free(&o);

  /* retry-after-ms wins over retry-after; a Retry-After beyond the cap means no retry. */
  ck_mock_model_queue(mh_mock,
                      "{\"status\":429,\"headers\":{\"retry-after\":\"3600\"},\"body\":"
                      "{\"error\":{\"message\":\"slow down\",\"code\":\"rate_limit_exceeded\"}}}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_RATE_LIMIT);
  assert_int_equal(o.res.http_status, 429);
  assert_int_equal(o.res.attempts, 1);
  assert_true(o.res.retryable);
  assert_string_equal(o.error_code, "rate_limit_exceeded");
  mh_outcome_free(&o);

  /* insufficient_quota is billing, not a rate limit: no retry. */
  ck_mock_model_queue(mh_mock, "{\"status\":429,\"body\":{\"error\":{\"message\":\"You exceeded "
                               "your current quota\",\"code\":\"insufficient_quota\"}}}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.attempts, 1);
  assert_false(o.res.retryable);
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void tweak_retries(ck_model_config *cfg) {
  cfg->max_retries = 2;
  cfg->retry_base_ms = 40;
  cfg->retry_max_ms = 60;
}

static void test_500_exhausts_retries(void **state) {
  reset();
  for (int i = 0; i < 3; i++)
    ck_mock_model_queue(mh_mock, "{\"status\":502,\"body\":\"<html><body>Bad gateway</body>\\n"
                                 "</html>\"}");
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, tweak_retries);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.dones, 1);
  assert_int_equal(o.res.error, CK_MODEL_ERR_SERVER);
  assert_int_equal(o.res.http_status, 502);
  assert_true(o.res.retryable);
  assert_false(o.res.output_delivered);
  assert_int_equal(o.res.attempts, 3);
  assert_int_equal(ck_mock_model_requests(mh_mock), 3);
  assert_non_null(strstr(o.message, "Bad gateway"));
  assert_null(strchr(o.message, '\n'));
  /* Two backoffs of 40 then 60 ms, minus at most 25% jitter each. */
  double ms = MS(o.done_ns - o.start_ns);
  assert_true(ms >= 70.0);
  assert_true(ms < 2000.0);
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void with_key(ck_model_config *cfg) {
  cfg->api_key = "sk-live-abcdef123456";
}

static void test_401_not_retried_and_redacted(void **state) {
  reset();
  ck_mock_model_queue(mh_mock, "{\"status\":401,\"body\":{\"error\":{\"message\":\"Incorrect API "
                               "key provided: sk-live-abcdef123456.\",\"type\":\"invalid_request_"
                               "error\",\"code\":\"invalid_api_key\"}}}");
  ck_model_client *c = mh_client(CK_MODEL_API_RESPONSES, with_key);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_AUTH);
  assert_int_equal(o.res.status, CK_EIO);
  assert_int_equal(o.res.attempts, 1);
  assert_false(o.res.retryable);
  assert_string_equal(o.error_code, "invalid_api_key");
  assert_null(strstr(o.message, "sk-live-abcdef123456"));
  assert_non_null(strstr(o.message, "[redacted]"));
  assert_int_equal(ck_mock_model_requests(mh_mock), 1);
  mh_outcome_free(&o);

  /* 400 is an invalid request; the top-level vLLM error shape is understood. */
  ck_mock_model_queue(mh_mock, "{\"status\":400,\"body\":{\"object\":\"error\",\"message\":\"too "
                               "long\",\"code\":400}}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_INVALID_REQUEST);
  assert_string_equal(o.message, "too long");
  assert_string_equal(o.error_code, "400");
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void test_error_mid_stream(void **state) {
  reset();
  /* Chat: text, then data: {"error":...}; never retried, the text stays delivered. */
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"text\":\"Partial answer\",\"chunk\":4},"
                               "{\"error\":{\"message\":\"upstream overloaded\",\"code\":\"server_"
                               "error\"}}]}");
  ck_mock_model_queue(mh_mock, OK_SCRIPT); /* must not be used */
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.dones, 1);
  assert_int_equal(o.res.error, CK_MODEL_ERR_UPSTREAM);
  assert_true(o.res.output_delivered);
  assert_int_equal(o.res.attempts, 1);
  assert_string_equal(o.text.data, "Partial answer");
  assert_string_equal(o.message, "upstream overloaded");
  assert_int_equal(ck_mock_model_requests(mh_mock), 1);
  mh_outcome_free(&o);
  mh_client_free(c);

  /* Responses: response.failed after text; and a bare error event. */
  reset();
  c = mh_client(CK_MODEL_API_RESPONSES, NULL);
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"text\":\"abc\"},{\"failed\":{\"code\":\"server_"
                               "error\",\"message\":\"boom\"}}]}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_UPSTREAM);
  assert_string_equal(o.error_code, "server_error");
  assert_string_equal(o.text.data, "abc");
  assert_int_equal(o.res.attempts, 1);
  mh_outcome_free(&o);
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"error\":{\"type\":\"error\",\"code\":\"invalid_"
                               "prompt\",\"message\":\"nope\"}}]}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_UPSTREAM);
  assert_string_equal(o.message, "nope");
  assert_false(o.res.output_delivered);
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void no_retries(ck_model_config *cfg) {
  cfg->max_retries = -1;
}

/* EOF without finish/[DONE], a reset before any output (retried), a reset after output. */
static void test_truncation_and_reset(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, no_retries);
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"text\":\"abc\"},{\"end\":true}]}");
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_PROTOCOL);
  assert_string_equal(o.error_code, "truncated");
  mh_outcome_free(&o);
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"text\":\"abc\"},{\"raw\":\"data: {oops\\n\\n\"}]}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_PROTOCOL);
  assert_non_null(strstr(o.message, "{oops"));
  mh_outcome_free(&o);
  mh_client_free(c);

  c = mh_client(CK_MODEL_API_CHAT, NULL);
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"reset\":true}]}");
  ck_mock_model_queue(mh_mock, OK_SCRIPT);
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.status, CK_OK);
  assert_int_equal(o.res.attempts, 2);
  mh_outcome_free(&o);
  ck_mock_model_queue(mh_mock,
                      "{\"steps\":[{\"text\":\"half\"},{\"sleep_ms\":20},{\"reset\":true}]}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_NETWORK);
  assert_int_equal(o.res.attempts, 1);
  assert_string_equal(o.text.data, "half");
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void short_timeouts(ck_model_config *cfg) {
  cfg->first_byte_timeout_ms = 200;
  cfg->idle_timeout_ms = 200;
  cfg->max_retries = -1;
}

static void test_timeouts(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, short_timeouts);
  /* No head for 2 s. */
  ck_mock_model_queue(mh_mock, "{\"ttfb_ms\":2000,\"steps\":[{\"text\":\"late\"}]}");
  mh_outcome o;
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_TIMEOUT);
  assert_string_equal(o.error_code, "first_byte_timeout");
  double ms = MS(o.done_ns - o.start_ns);
  assert_true(ms >= 190.0 && ms < 1000.0);
  assert_true(ck_mock_model_wait_aborts(mh_mock, 1, 2000, NULL) >= 1);
  mh_outcome_free(&o);

  /* Text, then silence: idle timeout, and the text stays delivered. Comments keep it alive. */
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"text\":\"so far\"},{\"sleep_ms\":120},{\"comment\":"
                               "\"ka\"},{\"sleep_ms\":120},{\"comment\":\"ka\"},{\"hang\":true}]}");
  mh_outcome_init(&o);
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  assert_int_equal(o.res.error, CK_MODEL_ERR_TIMEOUT);
  assert_string_equal(o.error_code, "idle_timeout");
  assert_string_equal(o.text.data, "so far");
  assert_true(o.res.output_delivered);
  ms = MS(o.done_ns - o.start_ns);
  assert_true(ms >= 430.0 && ms < 1500.0); /* 240 ms of comments + 200 ms idle */
  assert_true(ck_mock_model_wait_aborts(mh_mock, 2, 2000, NULL) >= 2);
  mh_outcome_free(&o);
  mh_client_free(c);
}

static void test_cancel_from_event(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_RESPONSES, NULL);
  ck_mock_model_queue(mh_mock, "{\"steps\":[{\"text\":\"0123456789abcdefghij\",\"chunk\":1,"
                               "\"gap_ms\":30},{\"finish\":\"stop\"}]}");
  mh_outcome o;
  mh_outcome_init(&o);
  o.cancel_after_deltas = 3;
  assert_int_equal(mh_call(c, NULL, USER_HI, NULL, NULL, &o), CK_OK);
  uint64_t abort_ns = 0;
  assert_int_equal(ck_mock_model_wait_aborts(mh_mock, 1, 2000, &abort_ns), 1);
  /* Keep the loop turning a little: a second on_done would show up now. */
  int never = 0;
  mh_run_until(&never, 1, 100);
  assert_int_equal(o.dones, 1);
  assert_int_equal(o.res.error, CK_MODEL_ERR_CANCELLED);
  assert_int_equal(o.res.status, CK_ECANCELLED);
  assert_int_equal(o.events_after_cancel, 0);
  assert_string_equal(o.text.data, "012");
  printf("cancel -> mock saw the close after %.2f ms\n", MS(abort_ns - o.cancel_ns));
  assert_true(abort_ns > o.cancel_ns && MS(abort_ns - o.cancel_ns) < 100.0);
  assert_int_equal(ck_model_client_active(c), 0);
  mh_outcome_free(&o);
  mh_client_free(c);
}

typedef struct cancel_ctx {
  ck_model_call *call;
  mh_outcome *o;
} cancel_ctx;

static void on_cancel_timer(uv_timer_t *t) {
  cancel_ctx *cc = t->data;
  cc->o->cancelled = true;
  cc->o->cancel_ns = uv_hrtime();
  ck_model_call_cancel(cc->call);
  ck_model_call_cancel(cc->call); /* twice is harmless */
  uv_close((uv_handle_t *)t, NULL);
}

/* Cancel from outside any callback (a timer), while the stream is silent between deltas, and
 * cancel during a retry backoff. */
static void test_cancel_from_outside(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  ck_mock_model_queue(mh_mock,
                      "{\"steps\":[{\"text\":\"a\"},{\"sleep_ms\":5000},{\"text\":\"b\"}]}");
  ck_arena *a = ck_arena_new(0);
  ck_model_request req = {.input = mh_json(a, USER_HI)};
  mh_outcome o;
  mh_outcome_init(&o);
  cancel_ctx cc = {.o = &o};
  assert_int_equal(ck_model_call_start(c, &req, mh_on_event, mh_on_done, &o, &cc.call), CK_OK);
  uv_timer_t t;
  uv_timer_init(mh_loop, &t);
  t.data = &cc;
  uv_timer_start(&t, on_cancel_timer, 150, 0);
  assert_true(mh_run_until(&o.dones, 1, 3000));
  uint64_t abort_ns = 0;
  assert_int_equal(ck_mock_model_wait_aborts(mh_mock, 1, 2000, &abort_ns), 1);
  assert_int_equal(o.res.error, CK_MODEL_ERR_CANCELLED);
  assert_string_equal(o.text.data, "a");
  assert_true(MS(abort_ns - o.cancel_ns) < 100.0);
  int never = 0;
  mh_run_until(&never, 1, 50);
  assert_int_equal(o.dones, 1);
  mh_outcome_free(&o);

  /* During backoff: a 429 asking for 5 s, cancelled after 100 ms. */
  ck_mock_model_queue(mh_mock, "{\"status\":429,\"headers\":{\"retry-after\":\"5\"}}");
  mh_outcome_init(&o);
  o.start_ns = uv_hrtime();
  cc.o = &o;
  assert_int_equal(ck_model_call_start(c, &req, mh_on_event, mh_on_done, &o, &cc.call), CK_OK);
  uv_timer_init(mh_loop, &t);
  t.data = &cc;
  uv_timer_start(&t, on_cancel_timer, 100, 0);
  assert_true(mh_run_until(&o.dones, 1, 3000));
  assert_int_equal(o.res.error, CK_MODEL_ERR_CANCELLED);
  assert_true(MS(o.done_ns - o.start_ns) < 1000.0);
  assert_int_equal(ck_mock_model_requests(mh_mock), 2);
  mh_outcome_free(&o);
  ck_arena_free(a);
  mh_client_free(c);
}

/* Freeing the client ends every call with one CANCELLED on_done. */
static void test_free_with_calls_running(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  ck_arena *a = ck_arena_new(0);
  ck_model_request req = {.input = mh_json(a, USER_HI)};
  mh_outcome o[3];
  int dones = 0;
  for (int i = 0; i < 3; i++) {
    ck_mock_model_queue(mh_mock, "{\"steps\":[{\"text\":\"x\"},{\"hang\":true}]}");
    mh_outcome_init(&o[i]);
    o[i].done_counter = &dones;
    ck_model_call *call;
    assert_int_equal(ck_model_call_start(c, &req, mh_on_event, mh_on_done, &o[i], &call), CK_OK);
  }
  for (int i = 0; i < 3; i++)
    mh_run_until(&o[i].deltas, 1, 2000);
  for (int i = 0; i < 3; i++)
    assert_int_equal(o[i].deltas, 1); /* all three stream at once: none waits behind another */
  mh_client_free(c);
  assert_int_equal(dones, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(o[i].res.error, CK_MODEL_ERR_CANCELLED);
    mh_outcome_free(&o[i]);
  }
  assert_int_equal(ck_mock_model_wait_aborts(mh_mock, 3, 2000, NULL), 3);
  ck_arena_free(a);
}

#define MANY 200

static void test_many_concurrent(void **state) {
  reset();
  ck_model_client *c = mh_client(CK_MODEL_API_CHAT, NULL);
  ck_arena *a = ck_arena_new(0);
  ck_model_request req = {.input = mh_json(a, USER_HI)};
  mh_outcome *o = calloc(MANY, sizeof(*o));
  int dones = 0;
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < MANY; i++) {
    ck_mock_model_queue(mh_mock,
                        "{\"steps\":[{\"role\":true},{\"text\":\"w0 w1 w2 w3 w4 w5 w6 "
                        "w7\",\"chunk\":3,\"gap_ms\":5},{\"finish\":\"stop\"},{\"usage\":"
                        "{\"prompt_tokens\":1,\"completion_tokens\":8}},{\"done\":true}]}");
    mh_outcome_init(&o[i]);
    o[i].done_counter = &dones;
    ck_model_call *call;
    assert_int_equal(ck_model_call_start(c, &req, mh_on_event, mh_on_done, &o[i], &call), CK_OK);
  }
  assert_int_equal(ck_model_client_active(c), MANY);
  assert_true(mh_run_until(&dones, MANY, 30000));
  printf("%d concurrent calls finished in %.1f ms\n", MANY, MS(uv_hrtime() - t0));
  for (int i = 0; i < MANY; i++) {
    assert_int_equal(o[i].dones, 1);
    assert_int_equal(o[i].res.status, CK_OK);
    assert_string_equal(o[i].text.data, "w0 w1 w2 w3 w4 w5 w6 w7");
    assert_int_equal(o[i].usage.output_tokens, 8);
    mh_outcome_free(&o[i]);
  }
  assert_int_equal(ck_mock_model_requests(mh_mock), MANY);
  assert_int_equal(ck_model_client_active(c), 0);
  free(o);
  ck_arena_free(a);
  mh_client_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_429_then_success),
      cmocka_unit_test(test_500_exhausts_retries),
      cmocka_unit_test(test_401_not_retried_and_redacted),
      cmocka_unit_test(test_error_mid_stream),
      cmocka_unit_test(test_truncation_and_reset),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_cancel_from_event),
      cmocka_unit_test(test_cancel_from_outside),
      cmocka_unit_test(test_free_with_calls_running),
      cmocka_unit_test(test_many_concurrent),
  };
  return cmocka_run_group_tests_name("upstream/model_errors", tests, mh_setup, mh_teardown);
}
