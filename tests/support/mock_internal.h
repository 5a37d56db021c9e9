/* The mock model server's internals shared by mock_model.c (serving) and mock_render.c
 * (turning a script into pre-rendered frames for the Chat or Responses wire format). */
#ifndef CK_TEST_MOCK_INTERNAL_H
#define CK_TEST_MOCK_INTERNAL_H

#include "support/mock_model.h"

#include <chatkit/http.h>
#include <chatkit/json.h>

#include <stdbool.h>

enum { F_WRITE, F_HANG, F_RESET, F_END };

typedef struct frame {
  const char *data;
  size_t len;
  uint32_t delay_ms; /* wait this long before the frame */
  int action;
} frame;

typedef struct mstream mstream;

struct mstream {
  ck_mock_model *m;
  ck_http_request *req;
  uv_timer_t timer;
  frame *frames;
  size_t nframes, cap, next;
  size_t split;
  bool head_sent;
  bool is_error;
  bool self_reset;
  int status;
  const char *err_body;
  size_t err_len;
  ck_http_header *headers;
  const char *stamp; /* placeholder replaced by the send time in each frame, or NULL */
  size_t stamp_len;
  mstream *prev, *nextp;
};

typedef struct render {
  ck_arena *a;
  mstream *s;
  const char *eol;
  const char *model;
  bool chat;
  uint32_t pending_delay;
  int seq;
  int out_index;
  int msg_n, fc_n, rs_n;
  const ck_json *usage; /* Responses: usage for the next response.completed */
} render;

/** Renders a script's stream (after "response.created" for the Responses API) into r->s. */
void mock_render(render *r, const ck_json *script);

/** A non-negative integer member of `step`, or `def`. */
size_t mock_step_size(const ck_json *step, const char *key, size_t def);

#endif
