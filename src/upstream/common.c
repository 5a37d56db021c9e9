/* Helpers shared by the model client's files: names, the per-attempt stream state, failure
 * records, usage parsing, event delivery and secret redaction (see upstream/model_internal.h). */
#include "upstream/model_internal.h"

#include <chatkit/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Names ------------------------------------------------------------------------------ */

const char *ck_model_error_name(ck_model_error_kind kind) {
  static const char *const names[] = {"none",     "network",  "timeout",         "rate_limit",
                                      "server",   "auth",     "invalid_request", "http",
                                      "upstream", "protocol", "cancelled",       "internal"};
  if ((unsigned)kind < sizeof(names) / sizeof(names[0]))
    return names[kind];
  return "unknown";
}

const char *ck_model_finish_name(ck_model_finish finish) {
  static const char *const names[] = {"none",   "stop",           "tool_calls",
                                      "length", "content_filter", "other"};
  if ((unsigned)finish < sizeof(names) / sizeof(names[0]))
    return names[finish];
  return "unknown";
}

/* ---- Stream state ----------------------------------------------------------------------- */

static void slot_free(ck__tool_slot *s) {
  ck_buf_free(&s->id);
  ck_buf_free(&s->call_id);
  ck_buf_free(&s->name);
  ck_buf_free(&s->args);
}

void ck__stream_init(ck__stream *st) {
  memset(st, 0, sizeof(*st));
}

void ck__stream_reset(ck__stream *st) {
  for (size_t i = 0; i < st->nslots; i++)
    slot_free(&st->slots[i]);
  st->nslots = 0;
  ck_buf_reset(&st->text);
  ck_buf_reset(&st->message_id);
  ck_buf_reset(&st->response_id);
  if (st->scratch)
    ck_arena_reset(st->scratch);
  memset(&st->usage, 0, sizeof(st->usage));
  st->have_usage = st->message_open = st->terminal = st->finish_seen = false;
  st->finish_raw[0] = '\0';
}

void ck__stream_free(ck__stream *st) {
  st->scratch = NULL; /* borrowed from the client, which may be gone already */
  ck__stream_reset(st);
  free(st->slots);
  ck_buf_free(&st->text);
  ck_buf_free(&st->message_id);
  ck_buf_free(&st->response_id);
  memset(st, 0, sizeof(*st));
}

ck__tool_slot *ck__stream_new_slot(ck__stream *st, size_t cap) {
  if (st->nslots == CK__MAX_TOOL_CALLS)
    return NULL;
  if (st->nslots == st->slots_cap) {
    size_t n = st->slots_cap ? st->slots_cap * 2 : 4;
    ck__tool_slot *p = realloc(st->slots, n * sizeof(*p));
    if (p == NULL)
      return NULL;
    st->slots = p;
    st->slots_cap = n;
  }
  ck__tool_slot *s = &st->slots[st->nslots++];
  memset(s, 0, sizeof(*s));
  s->index = -1;
  ck_buf_init(&s->id, 1024);
  ck_buf_init(&s->call_id, 1024);
  ck_buf_init(&s->name, 1024);
  ck_buf_init(&s->args, cap);
  return s;
}

/* ---- Failures --------------------------------------------------------------------------- */

void ck__failure_reset(ck__failure *f) {
  ck_buf_reset(&f->message);
  ck_buf_reset(&f->code);
  f->kind = CK_MODEL_ERR_NONE;
  f->status = CK_OK;
  f->retryable = false;
}

int ck__model_fail(ck_model_call *call, ck_model_error_kind kind, int status, bool retryable,
                   const char *code, const char *fmt, ...) {
  call->abort_xfer = true;
  if (call->failed)
    return 1; /* the first cause is the one worth reporting */
  call->failed = true;
  ck__failure_reset(&call->fail);
  call->fail.kind = kind;
  call->fail.status = status;
  call->fail.retryable = retryable;
  if (code)
    ck_buf_puts(&call->fail.code, code);
  va_list ap;
  va_start(ap, fmt);
  ck_buf_vprintf(&call->fail.message, fmt, ap);
  va_end(ap);
  return 1;
}

int ck__model_fail_json(ck_model_call *call, ck_model_error_kind kind, bool retryable,
                        const ck_json *err) {
  const ck_json *inner = ck_json_object_get(err, "error");
  /* {"error":{...}} (OpenAI), {"error":"text"}, or the fields at top level (old vLLM). */
  const ck_json *obj = ck_json_is_object(inner) ? inner : err;
  const char *msg = ck_json_object_get_str(obj, "message");
  if (msg == NULL && ck_json_is_string(inner))
    msg = ck_json_str_value(inner);
  const ck_json *code = ck_json_object_get(obj, "code");
  if (code == NULL || ck_json_is_null(code))
    code = ck_json_object_get(obj, "type");
  char codebuf[64] = "";
  if (ck_json_is_string(code))
    snprintf(codebuf, sizeof(codebuf), "%s", ck_json_str_value(code));
  else if (ck_json_is_int(code))
    snprintf(codebuf, sizeof(codebuf), "%s", ck_json_int_digits_value(code));
  return ck__model_fail(call, kind, CK_EIO, retryable, codebuf[0] ? codebuf : NULL, "%s",
                        msg ? msg : "the upstream reported an error");
}

static int64_t get_int(const ck_json *obj, const char *key) {
  int64_t v = 0;
  if (ck_json_int_value(ck_json_object_get(obj, key), &v) != CK_OK)
    return 0;
  return v;
}

bool ck__model_parse_usage(const ck_json *u, ck_model_usage *out) {
  if (!ck_json_is_object(u))
    return false;
  memset(out, 0, sizeof(*out));
  bool chat = ck_json_object_get(u, "prompt_tokens") != NULL;
  out->input_tokens = get_int(u, chat ? "prompt_tokens" : "input_tokens");
  out->output_tokens = get_int(u, chat ? "completion_tokens" : "output_tokens");
  out->total_tokens = get_int(u, "total_tokens");
  if (out->total_tokens == 0)
    out->total_tokens = out->input_tokens + out->output_tokens;
  const ck_json *od =
      ck_json_object_get(u, chat ? "completion_tokens_details" : "output_tokens_details");
  const ck_json *id =
      ck_json_object_get(u, chat ? "prompt_tokens_details" : "input_tokens_details");
  out->reasoning_tokens = get_int(od, "reasoning_tokens");
  out->cached_tokens = get_int(id, "cached_tokens");
  return out->input_tokens || out->output_tokens || out->total_tokens;
}

int ck__model_emit(ck_model_call *call, const ck_model_event *ev) {
  if (call->cancelled || call->state != CK__CALL_RUNNING)
    return 1;
  call->output = true;
  if (call->on_event)
    call->on_event(call, ev, call->ud);
  return call->cancelled ? 1 : 0;
}

/* Replaces every occurrence of the API key in `b` so a server that echoes it (some 401 bodies
 * do) cannot leak it through our error messages or logs. */
void ck__model_redact(const ck_model_client *c, ck_buf *b) {
  if (c->api_key == NULL || c->api_key[0] == '\0' || b->len == 0)
    return;
  size_t klen = strlen(c->api_key);
  ck_buf out;
  ck_buf_init(&out, 0);
  const char *p = b->data, *end = b->data + b->len;
  while (p < end) {
    const char *hit = memmem(p, (size_t)(end - p), c->api_key, klen);
    if (hit == NULL) {
      ck_buf_append(&out, p, (size_t)(end - p));
      break;
    }
    ck_buf_append(&out, p, (size_t)(hit - p));
    ck_buf_puts(&out, "[redacted]");
    p = hit + klen;
  }
  ck_buf_reset(b);
  if (out.len)
    ck_buf_append(b, out.data, out.len);
  ck_buf_free(&out);
}
