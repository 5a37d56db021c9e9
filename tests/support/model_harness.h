/* Helpers for the model client tests: a mock server on its own thread, a client loop on the
 * test thread, and an "outcome" that records every event and the final result of a call. */
#ifndef CK_TEST_MODEL_HARNESS_H
#define CK_TEST_MODEL_HARNESS_H

#include <chatkit/model.h>

#include "support/mock_model.h"

#define MH_MAX_CALLS 8

typedef struct mh_outcome {
  ck_buf text;      /* TEXT_DELTA pieces joined */
  ck_buf text_done; /* the TEXT_DONE text */
  ck_buf reasoning; /* REASONING_DELTA pieces joined */
  ck_buf refusal;
  char message_id[64];
  int message_starts, text_dones, deltas, annotations, events_after_cancel;
  int ncalls;
  char call_name[MH_MAX_CALLS][64];
  char call_id[MH_MAX_CALLS][64];
  char call_item[MH_MAX_CALLS][64];
  char call_args[MH_MAX_CALLS][256];
  bool have_usage;
  ck_model_usage usage;
  /* The result. */
  int dones;
  ck_model_result res; /* pointers below are copies */
  char message[512];
  char error_code[64];
  char response_id[64];
  uint64_t start_ns, done_ns;
  /* Cancellation from the event callback after this many text deltas (0: never). */
  int cancel_after_deltas;
  bool cancelled;
  uint64_t cancel_ns;
  int *done_counter; /* incremented on done (for many calls) */
  bool no_done_text; /* set before mh_call: ck_model_request.no_done_text */
} mh_outcome;

/** The client loop (the test thread's) and the mock (on its own thread). */
extern uv_loop_t *mh_loop;
extern ck_mock_model *mh_mock;

/** cmocka group setup/teardown: start and stop the mock and the loop. */
int mh_setup(void **state);
int mh_teardown(void **state);

/** A client for the mock with `api`; `tweak` (optional) edits the config first. */
ck_model_client *mh_client(ck_model_api api, void (*tweak)(ck_model_config *cfg));

/** Frees a client and runs the loop until its handles are closed. */
void mh_client_free(ck_model_client *c);

void mh_outcome_init(mh_outcome *o);
void mh_outcome_free(mh_outcome *o);

/** The callbacks that fill an outcome (ud is the mh_outcome). */
void mh_on_event(ck_model_call *call, const ck_model_event *ev, void *ud);
void mh_on_done(ck_model_call *call, const ck_model_result *res, void *ud);

/** Runs the loop until *flag >= want or timeout_ms passed; returns *flag >= want. */
bool mh_run_until(int *flag, int want, int timeout_ms);

/** Starts one call with `input` (JSON text) and optional tools / tool_choice (JSON text),
 * runs it to the end and fills `o`. Returns the ck_model_call_start code. */
int mh_call(ck_model_client *c, const char *model, const char *input, const char *tools,
            const char *tool_choice, mh_outcome *o);

/** Parses JSON text into `a` (asserting success). */
ck_json *mh_json(ck_arena *a, const char *text);

#endif
