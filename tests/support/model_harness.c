/* Model client test helpers (see model_harness.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/model_harness.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uv_loop_t *mh_loop;
ck_mock_model *mh_mock;

int mh_setup(void **state) {
  mh_mock = ck_mock_model_start(0);
  if (mh_mock == NULL)
    return -1;
  mh_loop = malloc(sizeof(*mh_loop));
  uv_loop_init(mh_loop);
  return ck_model_global_init();
}

int mh_teardown(void **state) {
  ck_mock_model_free(mh_mock);
  uv_run(mh_loop, UV_RUN_DEFAULT);
  uv_loop_close(mh_loop);
  free(mh_loop);
  return 0;
}

ck_model_client *mh_client(ck_model_api api, void (*tweak)(ck_model_config *cfg)) {
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", ck_mock_model_port(mh_mock));
  ck_model_config cfg = {.base_url = base, .api = api, .model = "test-model"};
  /* Short defaults keep failing tests fast; tests that need others set them in `tweak`. */
  cfg.retry_base_ms = 10;
  cfg.retry_max_ms = 50;
  cfg.first_byte_timeout_ms = 5000;
  cfg.idle_timeout_ms = 5000;
  if (tweak)
    tweak(&cfg);
  int err = 0;
  ck_model_client *c = ck_model_client_new(mh_loop, &cfg, &err);
  assert_non_null(c);
  return c;
}

void mh_client_free(ck_model_client *c) {
  ck_model_client_free(c);
  uv_run(mh_loop, UV_RUN_DEFAULT);
}

void mh_outcome_init(mh_outcome *o) {
  memset(o, 0, sizeof(*o));
  ck_buf_init(&o->text, 0);
  ck_buf_init(&o->text_done, 0);
  ck_buf_init(&o->reasoning, 0);
  ck_buf_init(&o->refusal, 0);
}

void mh_outcome_free(mh_outcome *o) {
  ck_buf_free(&o->text);
  ck_buf_free(&o->text_done);
  ck_buf_free(&o->reasoning);
  ck_buf_free(&o->refusal);
}

static void copy(char *dst, size_t cap, const char *s) {
  snprintf(dst, cap, "%s", s ? s : "");
}

void mh_on_event(ck_model_call *call, const ck_model_event *ev, void *ud) {
  mh_outcome *o = ud;
  if (o->cancelled || o->dones)
    o->events_after_cancel++;
  switch (ev->type) {
  case CK_MODEL_EV_MESSAGE_START:
    o->message_starts++;
    copy(o->message_id, sizeof(o->message_id), ev->item_id);
    break;
  case CK_MODEL_EV_TEXT_DELTA:
    ck_buf_append(&o->text, ev->text, ev->text_len);
    o->deltas++;
    if (o->cancel_after_deltas && o->deltas == o->cancel_after_deltas) {
      o->cancelled = true;
      o->cancel_ns = uv_hrtime();
      ck_model_call_cancel(call);
    }
    break;
  case CK_MODEL_EV_TEXT_DONE:
    o->text_dones++;
    ck_buf_reset(&o->text_done);
    ck_buf_append(&o->text_done, ev->text, ev->text_len);
    break;
  case CK_MODEL_EV_REFUSAL_DELTA:
    ck_buf_append(&o->refusal, ev->text, ev->text_len);
    break;
  case CK_MODEL_EV_REASONING_DELTA:
    ck_buf_append(&o->reasoning, ev->text, ev->text_len);
    break;
  case CK_MODEL_EV_ANNOTATION:
    o->annotations++;
    break;
  case CK_MODEL_EV_TOOL_CALL:
    if (o->ncalls < MH_MAX_CALLS) {
      copy(o->call_name[o->ncalls], 64, ev->tool_call.name);
      copy(o->call_id[o->ncalls], 64, ev->tool_call.call_id);
      copy(o->call_item[o->ncalls], 64, ev->tool_call.id);
      copy(o->call_args[o->ncalls], 256, ev->tool_call.arguments);
      assert_int_equal(strlen(ev->tool_call.arguments), ev->tool_call.arguments_len);
    }
    o->ncalls++;
    break;
  case CK_MODEL_EV_USAGE:
    o->have_usage = true;
    o->usage = ev->usage;
    break;
  }
}

void mh_on_done(ck_model_call *call, const ck_model_result *res, void *ud) {
  mh_outcome *o = ud;
  o->dones++;
  o->done_ns = uv_hrtime();
  o->res = *res;
  copy(o->message, sizeof(o->message), res->message);
  copy(o->error_code, sizeof(o->error_code), res->error_code);
  copy(o->response_id, sizeof(o->response_id), res->response_id);
  o->res.message = o->res.error_code = o->res.response_id = o->res.finish_raw = NULL;
  o->res.request_id = NULL;
  if (o->done_counter)
    (*o->done_counter)++;
}

static void on_watchdog(uv_timer_t *t) {
  *(bool *)t->data = true;
}

bool mh_run_until(int *flag, int want, int timeout_ms) {
  bool expired = false;
  uv_timer_t dog;
  uv_timer_init(mh_loop, &dog);
  dog.data = &expired;
  uv_timer_start(&dog, on_watchdog, (uint64_t)timeout_ms, 0);
  while (*flag < want && !expired)
    uv_run(mh_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&dog, NULL);
  uv_run(mh_loop, UV_RUN_NOWAIT);
  return *flag >= want;
}

ck_json *mh_json(ck_arena *a, const char *text) {
  ck_json *v = NULL;
  ck_json_error err;
  int rc = ck_json_parse(a, text, strlen(text), 0, &v, &err);
  if (rc != CK_OK)
    fprintf(stderr, "bad test JSON: %s: %s\n", err.message, text);
  assert_int_equal(rc, CK_OK);
  return v;
}

int mh_call(ck_model_client *c, const char *model, const char *input, const char *tools,
            const char *tool_choice, mh_outcome *o) {
  ck_arena *a = ck_arena_new(0);
  ck_model_request req = {.model = model, .instructions = "Be brief."};
  req.input = mh_json(a, input);
  req.tools = tools ? mh_json(a, tools) : NULL;
  req.tool_choice = tool_choice ? mh_json(a, tool_choice) : NULL;
  req.no_done_text = o->no_done_text;
  ck_model_call *call = NULL;
  o->start_ns = uv_hrtime();
  int rc = ck_model_call_start(c, &req, mh_on_event, mh_on_done, o, &call);
  /* The request was serialised: the caller's JSON may go at once. */
  ck_arena_free(a);
  if (rc != CK_OK)
    return rc;
  assert_true(mh_run_until(&o->dones, 1, 20000));
  /* Let any (wrong) extra callback show up before the test checks for exactly one. */
  uv_run(mh_loop, UV_RUN_NOWAIT);
  return rc;
}
