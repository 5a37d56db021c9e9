/* The scripted model server (see mock_model.h). It is built on the project's HTTP layer; the
 * only thing that layer cannot do is a TCP reset, for which the mock reaches into the
 * connection (http/internal.h) and sets SO_LINGER to zero before failing it. */
#include "mock_model.h"

#include "http/internal.h"

#include <chatkit/error.h>
#include <chatkit/http.h>
#include <chatkit/json.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_RECORDS 4096

enum { F_WRITE, F_HANG, F_RESET, F_END };

typedef struct frame {
  const char *data;
  size_t len;
  uint32_t delay_ms; /* wait this long before the frame */
  int action;
} frame;

typedef struct named {
  char *name;
  char *script;
  struct named *next;
} named;

typedef struct queued {
  char *script;
  struct queued *next;
} queued;

typedef struct record {
  char *path;
  char *body;
  char *headers; /* "name: value\n" lines */
} record;

typedef struct mstream mstream;

struct ck_mock_model {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  bool own;
  pthread_t thread;
  uv_async_t stop_async;
  ck_http_server *srv;
  int port;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  named *scripts;
  queued *queue, *queue_tail;
  record *records;
  size_t nrecords;
  int aborts;
  uint64_t last_abort_ns;
  int active;
  mstream *streams; /* loop thread only */
};

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
  mstream *prev, *nextp;
};

/* ---- Rendering ------------------------------------------------------------------------ */

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

static int add_frame(render *r, const char *data, size_t len, int action) {
  mstream *s = r->s;
  if (s->nframes == s->cap) {
    size_t n = s->cap ? s->cap * 2 : 16;
    frame *f = ck_arena_alloc(r->a, n * sizeof(*f));
    if (f == NULL)
      return -1;
    if (s->nframes)
      memcpy(f, s->frames, s->nframes * sizeof(*f));
    s->frames = f;
    s->cap = n;
  }
  s->frames[s->nframes++] = (frame){data, len, r->pending_delay, action};
  r->pending_delay = 0;
  return 0;
}

/* Adds one SSE event: optional "event:" line, one "data:" line, blank line. */
static int add_event(render *r, const char *event, const char *json, size_t len) {
  ck_buf b;
  ck_buf_init(&b, 0);
  if (event)
    ck_buf_printf(&b, "event: %s%s", event, r->eol);
  ck_buf_puts(&b, "data: ");
  ck_buf_append(&b, json, len);
  ck_buf_printf(&b, "%s%s", r->eol, r->eol);
  char *p = ck_arena_strndup(r->a, b.data, b.len);
  size_t n = b.len;
  ck_buf_free(&b);
  return p ? add_frame(r, p, n, F_WRITE) : -1;
}

/* Serialises `obj` (adding sequence_number for Responses) and adds it as an event. */
static int add_json(render *r, const char *event, ck_json *obj) {
  if (!r->chat)
    ck_json_object_set(obj, "sequence_number", ck_json_int(r->a, r->seq++));
  size_t n = 0;
  char *s = ck_json_dumps(r->a, obj, &n);
  return s ? add_event(r, r->chat ? NULL : event, s, n) : -1;
}

static ck_json *obj(render *r) {
  return ck_json_object(r->a);
}

static void set_str(render *r, ck_json *o, const char *k, const char *v) {
  ck_json_object_set(o, k, ck_json_str(r->a, v));
}

static void set_int(render *r, ck_json *o, const char *k, int64_t v) {
  ck_json_object_set(o, k, ck_json_int(r->a, v));
}

/* A chat.completion.chunk around `choice` (NULL: "choices":[]). */
static ck_json *chat_chunk(render *r, ck_json *choice) {
  ck_json *c = obj(r);
  set_str(r, c, "id", "chatcmpl-mock");
  set_str(r, c, "object", "chat.completion.chunk");
  set_int(r, c, "created", 1700000000);
  set_str(r, c, "model", r->model);
  ck_json *arr = ck_json_array(r->a);
  if (choice)
    ck_json_array_append(arr, choice);
  ck_json_object_set(c, "choices", arr);
  return c;
}

static ck_json *chat_choice(render *r, ck_json *delta, const char *finish) {
  ck_json *ch = obj(r);
  set_int(r, ch, "index", 0);
  ck_json_object_set(ch, "delta", delta ? delta : obj(r));
  ck_json_object_set(ch, "finish_reason", finish ? ck_json_str(r->a, finish) : ck_json_null(r->a));
  return ch;
}

/* Length of the next piece of `s` of about `n` bytes, never cutting a UTF-8 sequence. */
static size_t piece(const char *s, size_t len, size_t n) {
  if (n == 0 || n >= len)
    return len;
  while (n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
    n++;
  return n;
}

static size_t step_size(const ck_json *step, const char *key, size_t def) {
  int64_t v = 0;
  if (ck_json_int_value(ck_json_object_get(step, key), &v) != CK_OK || v < 0)
    return def;
  return (size_t)v;
}

/* Text-like steps: one chunk/event per piece. `field` is the Chat delta key. */
static void chat_pieces(render *r, const char *field, const ck_json *text, const ck_json *step) {
  const char *s = ck_json_str_value(text);
  size_t len = ck_json_str_len(text), chunk = step_size(step, "chunk", 0);
  uint32_t gap = (uint32_t)step_size(step, "gap_ms", 0);
  for (size_t off = 0; off < len;) {
    size_t n = piece(s + off, len - off, chunk);
    ck_json *d = obj(r);
    ck_json_object_set(d, field, ck_json_strn(r->a, s + off, n));
    add_json(r, NULL, chat_chunk(r, chat_choice(r, d, NULL)));
    off += n;
    if (off < len)
      r->pending_delay = gap;
  }
}

static void chat_tool_call(render *r, const ck_json *tc, uint32_t gap) {
  const char *args = ck_json_object_get_str(tc, "arguments");
  args = args ? args : "";
  size_t alen = strlen(args), frag = step_size(tc, "fragment", 0);
  bool whole = ck_json_bool_value(ck_json_object_get(tc, "whole"));
  int64_t index = (int64_t)step_size(tc, "index", 0);
  for (size_t off = 0, first = 1; first || off < alen; first = 0) {
    size_t n = whole ? alen : (first ? 0 : piece(args + off, alen - off, frag));
    ck_json *call = obj(r), *fn = obj(r);
    if (!ck_json_bool_value(ck_json_object_get(tc, "no_index")))
      set_int(r, call, "index", index);
    if (first) {
      set_str(r, call, "id", ck_json_object_get_str(tc, "id"));
      set_str(r, call, "type", "function");
      set_str(r, fn, "name", ck_json_object_get_str(tc, "name"));
    }
    ck_json_object_set(fn, "arguments", ck_json_strn(r->a, args + off, n));
    ck_json_object_set(call, "function", fn);
    ck_json *arr = ck_json_array(r->a), *d = obj(r);
    ck_json_array_append(arr, call);
    ck_json_object_set(d, "tool_calls", arr);
    add_json(r, NULL, chat_chunk(r, chat_choice(r, d, NULL)));
    off += n;
    if (off < alen)
      r->pending_delay = gap;
    if (whole)
      break;
  }
}

static ck_json *resp_object(render *r, const char *status) {
  ck_json *o = obj(r);
  set_str(r, o, "id", "resp_mock");
  set_str(r, o, "object", "response");
  set_str(r, o, "status", status);
  set_str(r, o, "model", r->model);
  ck_json_object_set(o, "output", ck_json_array(r->a));
  return o;
}

static void resp_simple(render *r, const char *type, ck_json *o) {
  set_str(r, o, "type", type);
  add_json(r, type, o);
}

static void resp_item_event(render *r, const char *type, ck_json *item) {
  ck_json *e = obj(r);
  set_int(r, e, "output_index", r->out_index);
  ck_json_object_set(e, "item", item);
  resp_simple(r, type, e);
}

static void resp_text(render *r, const ck_json *step) {
  char id[32];
  snprintf(id, sizeof(id), "msg_mock_%d", r->msg_n++);
  const char *mid = ck_json_object_get_str(step, "id") ? ck_json_object_get_str(step, "id") : id;
  ck_json *item = obj(r);
  set_str(r, item, "id", mid);
  set_str(r, item, "type", "message");
  set_str(r, item, "role", "assistant");
  set_str(r, item, "status", "in_progress");
  ck_json_object_set(item, "content", ck_json_array(r->a));
  resp_item_event(r, "response.output_item.added", item);
  const ck_json *text = ck_json_object_get(step, "text");
  const char *s = ck_json_str_value(text);
  size_t len = ck_json_str_len(text), chunk = step_size(step, "chunk", 0);
  uint32_t gap = (uint32_t)step_size(step, "gap_ms", 0);
  for (size_t off = 0; off < len;) {
    size_t n = piece(s + off, len - off, chunk);
    ck_json *e = obj(r);
    set_str(r, e, "item_id", mid);
    set_int(r, e, "output_index", r->out_index);
    set_int(r, e, "content_index", 0);
    ck_json_object_set(e, "delta", ck_json_strn(r->a, s + off, n));
    resp_simple(r, "response.output_text.delta", e);
    off += n;
    if (off < len)
      r->pending_delay = gap;
  }
  const ck_json *anns = ck_json_object_get(step, "annotations");
  for (size_t i = 0; i < ck_json_array_size(anns); i++) {
    ck_json *e = obj(r);
    set_str(r, e, "item_id", mid);
    set_int(r, e, "output_index", r->out_index);
    set_int(r, e, "annotation_index", (int64_t)i);
    ck_json_object_set(e, "annotation", ck_json_copy(r->a, ck_json_array_get(anns, i)));
    resp_simple(r, "response.output_text.annotation.added", e);
  }
  ck_json *done = obj(r);
  set_str(r, done, "item_id", mid);
  set_int(r, done, "output_index", r->out_index);
  ck_json_object_set(done, "text", ck_json_copy(r->a, text));
  resp_simple(r, "response.output_text.done", done);
  ck_json *fin = ck_json_copy(r->a, item);
  set_str(r, fin, "status", "completed");
  resp_item_event(r, "response.output_item.done", fin);
  r->out_index++;
}

static void resp_reasoning(render *r, const ck_json *step) {
  char id[32];
  snprintf(id, sizeof(id), "rs_mock_%d", r->rs_n++);
  ck_json *item = obj(r);
  set_str(r, item, "id", id);
  set_str(r, item, "type", "reasoning");
  ck_json_object_set(item, "summary", ck_json_array(r->a));
  resp_item_event(r, "response.output_item.added", item);
  const ck_json *text = ck_json_object_get(step, "reasoning");
  const char *s = ck_json_str_value(text);
  size_t len = ck_json_str_len(text), chunk = step_size(step, "chunk", 0);
  for (size_t off = 0; off < len;) {
    size_t n = piece(s + off, len - off, chunk);
    ck_json *e = obj(r);
    set_str(r, e, "item_id", id);
    set_int(r, e, "output_index", r->out_index);
    set_int(r, e, "summary_index", 0);
    ck_json_object_set(e, "delta", ck_json_strn(r->a, s + off, n));
    resp_simple(r, "response.reasoning_summary_text.delta", e);
    off += n;
  }
  resp_item_event(r, "response.output_item.done", ck_json_copy(r->a, item));
  r->out_index++;
}

static void resp_tool_call(render *r, const ck_json *tc, uint32_t gap) {
  char id[32];
  snprintf(id, sizeof(id), "fc_mock_%d", r->fc_n++);
  const char *item_id =
      ck_json_object_get_str(tc, "item_id") ? ck_json_object_get_str(tc, "item_id") : id;
  const char *args = ck_json_object_get_str(tc, "arguments");
  args = args ? args : "";
  ck_json *item = obj(r);
  set_str(r, item, "id", item_id);
  set_str(r, item, "type", "function_call");
  set_str(r, item, "call_id", ck_json_object_get_str(tc, "id"));
  set_str(r, item, "name", ck_json_object_get_str(tc, "name"));
  set_str(r, item, "arguments", "");
  set_str(r, item, "status", "in_progress");
  resp_item_event(r, "response.output_item.added", item);
  size_t alen = strlen(args), frag = step_size(tc, "fragment", 0);
  for (size_t off = 0; off < alen;) {
    size_t n = piece(args + off, alen - off, frag);
    ck_json *e = obj(r);
    set_str(r, e, "item_id", item_id);
    set_int(r, e, "output_index", r->out_index);
    ck_json_object_set(e, "delta", ck_json_strn(r->a, args + off, n));
    resp_simple(r, "response.function_call_arguments.delta", e);
    off += n;
    if (off < alen)
      r->pending_delay = gap;
  }
  ck_json *done = obj(r);
  set_str(r, done, "item_id", item_id);
  set_int(r, done, "output_index", r->out_index);
  set_str(r, done, "arguments", args);
  resp_simple(r, "response.function_call_arguments.done", done);
  ck_json *fin = ck_json_copy(r->a, item);
  set_str(r, fin, "arguments", args);
  set_str(r, fin, "status", "completed");
  resp_item_event(r, "response.output_item.done", fin);
  r->out_index++;
}

static void render_step(render *r, const ck_json *st) {
  const ck_json *v;
  uint32_t gap = (uint32_t)step_size(st, "gap_ms", 0);
  if ((v = ck_json_object_get(st, "sleep_ms")) != NULL) {
    r->pending_delay += (uint32_t)step_size(st, "sleep_ms", 0);
  } else if (ck_json_object_get(st, "role")) {
    if (r->chat) {
      ck_json *d = obj(r);
      set_str(r, d, "role", "assistant");
      set_str(r, d, "content", ""); /* the leading empty delta real servers send */
      add_json(r, NULL, chat_chunk(r, chat_choice(r, d, NULL)));
    }
  } else if ((v = ck_json_object_get(st, "text")) != NULL) {
    if (r->chat)
      chat_pieces(r, "content", v, st);
    else
      resp_text(r, st);
  } else if ((v = ck_json_object_get(st, "reasoning")) != NULL) {
    const char *field = ck_json_object_get_str(st, "field");
    if (r->chat)
      chat_pieces(r, field ? field : "reasoning_content", v, st);
    else
      resp_reasoning(r, st);
  } else if ((v = ck_json_object_get(st, "refusal")) != NULL) {
    if (r->chat)
      chat_pieces(r, "refusal", v, st);
  } else if ((v = ck_json_object_get(st, "tool_call")) != NULL) {
    if (r->chat)
      chat_tool_call(r, v, gap);
    else
      resp_tool_call(r, v, gap);
  } else if ((v = ck_json_object_get(st, "usage")) != NULL) {
    if (r->chat) {
      ck_json *c = chat_chunk(r, NULL);
      ck_json_object_set(c, "usage", ck_json_copy(r->a, v));
      add_json(r, NULL, c);
    } else {
      r->usage = v;
    }
  } else if ((v = ck_json_object_get(st, "finish")) != NULL) {
    if (r->chat) {
      add_json(r, NULL, chat_chunk(r, chat_choice(r, NULL, ck_json_str_value(v))));
    } else {
      ck_json *resp = resp_object(r, "completed");
      if (r->usage)
        ck_json_object_set(resp, "usage", ck_json_copy(r->a, r->usage));
      ck_json *e = obj(r);
      ck_json_object_set(e, "response", resp);
      resp_simple(r, "response.completed", e);
    }
  } else if ((v = ck_json_object_get(st, "incomplete")) != NULL) {
    ck_json *resp = resp_object(r, "incomplete"), *det = obj(r), *e = obj(r);
    ck_json_object_set(det, "reason", ck_json_copy(r->a, v));
    ck_json_object_set(resp, "incomplete_details", det);
    ck_json_object_set(e, "response", resp);
    resp_simple(r, "response.incomplete", e);
  } else if ((v = ck_json_object_get(st, "failed")) != NULL) {
    ck_json *resp = resp_object(r, "failed"), *e = obj(r);
    ck_json_object_set(resp, "error", ck_json_copy(r->a, v));
    ck_json_object_set(e, "response", resp);
    resp_simple(r, "response.failed", e);
  } else if ((v = ck_json_object_get(st, "error")) != NULL) {
    if (r->chat) {
      ck_json *e = obj(r);
      ck_json_object_set(e, "error", ck_json_copy(r->a, v));
      add_json(r, NULL, e);
    } else {
      ck_json *e = ck_json_copy(r->a, v);
      resp_simple(r, "error", e);
    }
  } else if (ck_json_object_get(st, "done")) {
    add_event(r, NULL, "[DONE]", 6);
  } else if ((v = ck_json_object_get(st, "comment")) != NULL) {
    char *p = ck_arena_printf(r->a, ":%s%s", ck_json_str_value(v), r->eol);
    add_frame(r, p, strlen(p), F_WRITE);
  } else if ((v = ck_json_object_get(st, "raw")) != NULL) {
    add_frame(r, ck_json_str_value(v), ck_json_str_len(v), F_WRITE);
  } else if (ck_json_object_get(st, "hang")) {
    add_frame(r, NULL, 0, F_HANG);
  } else if (ck_json_object_get(st, "reset")) {
    add_frame(r, NULL, 0, F_RESET);
  } else if (ck_json_object_get(st, "end")) {
    add_frame(r, NULL, 0, F_END);
  }
}

/* ---- Serving -------------------------------------------------------------------------- */

static void stream_closed(uv_handle_t *h) {
  free(h->data);
}

/* Ends a stream's life: unlink, release the request, close the timer. */
static void stream_free(mstream *s) {
  ck_mock_model *m = s->m;
  if (s->prev)
    s->prev->nextp = s->nextp;
  else
    m->streams = s->nextp;
  if (s->nextp)
    s->nextp->prev = s->prev;
  pthread_mutex_lock(&m->mu);
  m->active--;
  pthread_mutex_unlock(&m->mu);
  uv_timer_stop(&s->timer);
  ck_http_request_release(s->req);
  s->req = NULL;
  uv_close((uv_handle_t *)&s->timer, stream_closed);
}

static void on_abort(ck_http_request *req, void *ud) {
  mstream *s = ud;
  ck_mock_model *m = s->m;
  if (!s->self_reset) {
    pthread_mutex_lock(&m->mu);
    m->aborts++;
    m->last_abort_ns = uv_hrtime();
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
  }
  stream_free(s);
}

static void tcp_reset(mstream *s) {
  ck__http_req *r = (ck__http_req *)s->req;
  if (r->conn == NULL)
    return;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&r->conn->tcp, &fd) == 0) {
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  s->self_reset = true;
  ck__http_conn_fail(r->conn, "mock reset");
}

static void on_stream_timer(uv_timer_t *t) {
  mstream *s = t->data;
  if (!s->head_sent) {
    s->head_sent = true;
    if (s->is_error) {
      ck_http_respond(s->req, s->status, "application/json", s->err_body, s->err_len, s->headers);
      stream_free(s);
      return;
    }
    if (ck_http_stream_begin(s->req, 200, s->headers) != CK_OK)
      return; /* on_abort follows */
  }
  while (s->next < s->nframes) {
    frame *f = &s->frames[s->next];
    if (f->delay_ms) {
      uint32_t d = f->delay_ms;
      f->delay_ms = 0;
      uv_timer_start(&s->timer, on_stream_timer, d, 0);
      return;
    }
    s->next++;
    if (f->action == F_HANG)
      return; /* only the client leaving ends this stream */
    if (f->action == F_RESET) {
      tcp_reset(s);
      return; /* on_abort (not counted) frees the stream */
    }
    if (f->action == F_END)
      break;
    size_t step = s->split ? s->split : f->len;
    for (size_t off = 0; off < f->len; off += step) {
      size_t n = f->len - off < step ? f->len - off : step;
      if (ck_http_stream_write(s->req, f->data + off, n) != CK_OK)
        return; /* the peer left: on_abort follows */
    }
  }
  ck_http_stream_end(s->req);
  stream_free(s);
}

static const char *DEFAULT_SCRIPT =
    "{\"steps\":[{\"text\":\"Hello from the mock.\",\"chunk\":6},{\"finish\":\"stop\"},"
    "{\"done\":true}]}";

/* Picks the script text (a malloc'd copy) for a request. Called with the mutex held. */
static char *pick_script(ck_mock_model *m, ck_http_request *req, const char *model) {
  const char *name = ck_http_request_header(req, "X-Mock-Scenario");
  if (name == NULL && model && strncmp(model, "mock/", 5) == 0)
    name = model + 5;
  for (named *n = m->scripts; name && n; n = n->next)
    if (strcmp(n->name, name) == 0)
      return strdup(n->script);
  if (m->queue) {
    queued *q = m->queue;
    m->queue = q->next;
    if (m->queue == NULL)
      m->queue_tail = NULL;
    char *s = q->script;
    free(q);
    return s;
  }
  return strdup(DEFAULT_SCRIPT);
}

static void record_request(ck_mock_model *m, ck_http_request *req) {
  if (m->nrecords == MAX_RECORDS)
    return;
  ck_buf h;
  ck_buf_init(&h, 0);
  for (size_t i = 0; i < req->header_count; i++)
    ck_buf_printf(&h, "%s: %s\n", req->headers[i].name, req->headers[i].value);
  record *r = &m->records[m->nrecords++];
  r->path = strdup(req->path);
  r->body = strndup(req->body, req->body_len);
  r->headers = ck_buf_take(&h, NULL);
  ck_buf_free(&h);
}

static ck_http_header *script_headers(ck_arena *a, const ck_json *hdrs, bool sse) {
  size_t n = ck_json_object_size(hdrs);
  ck_http_header *h = ck_arena_calloc(a, (n + 2) * sizeof(*h));
  size_t k = 0;
  if (h == NULL)
    return NULL;
  if (sse)
    h[k++] = (ck_http_header){"Content-Type", "text/event-stream"};
  for (size_t i = 0; i < n; i++) {
    const char *v = ck_json_str_value(ck_json_object_value(hdrs, i));
    if (v)
      h[k++] = (ck_http_header){ck_json_object_key(hdrs, i), v};
  }
  return h;
}

static void handler(ck_http_request *req, void *ud) {
  ck_mock_model *m = ud;
  ck_json *body = NULL;
  ck_json_parse(req->arena, req->body, req->body_len, 0, &body, NULL);
  const char *model = ck_json_object_get_str(body, "model");
  pthread_mutex_lock(&m->mu);
  record_request(m, req);
  char *text = strcmp(req->method, "POST") == 0 ? pick_script(m, req, model) : NULL;
  pthread_mutex_unlock(&m->mu);
  ck_json *script = NULL;
  if (text == NULL || ck_json_parse(req->arena, text, strlen(text), 0, &script, NULL) != CK_OK ||
      !ck_json_is_object(script)) {
    free(text);
    ck_http_respond_error(req, 400, "mock", "no usable script");
    ck_http_request_release(req);
    return;
  }
  free(text);
  mstream *s = calloc(1, sizeof(*s));
  s->m = m;
  s->req = req;
  uv_timer_init(m->loop, &s->timer);
  s->timer.data = s;
  s->nextp = m->streams;
  if (m->streams)
    m->streams->prev = s;
  m->streams = s;
  pthread_mutex_lock(&m->mu);
  m->active++;
  pthread_mutex_unlock(&m->mu);
  ck_http_request_on_abort(req, on_abort, s);
  int64_t status = 200;
  ck_json_int_value(ck_json_object_get(script, "status"), &status);
  s->status = (int)status;
  /* Any status other than 200, or a 200 with a "body", is answered in one piece. */
  if (status != 200 || ck_json_object_get(script, "body")) {
    s->is_error = true;
    const ck_json *eb = ck_json_object_get(script, "body");
    if (ck_json_is_string(eb)) {
      s->err_body = ck_json_str_value(eb);
      s->err_len = ck_json_str_len(eb);
    } else if (eb) {
      s->err_body = ck_json_dumps(req->arena, eb, &s->err_len);
    }
  }
  s->headers = script_headers(req->arena, ck_json_object_get(script, "headers"), !s->is_error);
  s->split = step_size(script, "split", 0);
  const char *le = ck_json_object_get_str(script, "line_ending");
  render r = {.a = req->arena, .s = s, .eol = "\n"};
  r.eol = le && strcmp(le, "crlf") == 0 ? "\r\n" : le && strcmp(le, "cr") == 0 ? "\r" : "\n";
  r.chat = strstr(req->path, "/chat/completions") != NULL;
  r.model = ck_json_object_get_str(script, "model");
  r.model = r.model ? r.model : (model ? model : "mock");
  if (!s->is_error) {
    if (!r.chat) {
      ck_json *e = obj(&r);
      ck_json_object_set(e, "response", resp_object(&r, "in_progress"));
      resp_simple(&r, "response.created", e);
    }
    const ck_json *steps = ck_json_object_get(script, "steps");
    for (size_t i = 0; i < ck_json_array_size(steps); i++)
      render_step(&r, ck_json_array_get(steps, i));
  }
  uv_timer_start(&s->timer, on_stream_timer, step_size(script, "ttfb_ms", 0), 0);
}

/* ---- Lifecycle and test-thread API --------------------------------------------------- */

ck_mock_model *ck_mock_model_new(uv_loop_t *loop, const char *host, int port) {
  ck_mock_model *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return NULL;
  m->loop = loop;
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  m->records = calloc(MAX_RECORDS, sizeof(record));
  ck_http_config cfg;
  ck_http_config_default(&cfg);
  cfg.max_body_bytes = 16 * 1024 * 1024;
  cfg.max_write_queue_bytes = 64 * 1024 * 1024;
  m->srv = ck_http_server_new(loop, &cfg, handler, m);
  if (m->records == NULL || m->srv == NULL || ck_http_listen(m->srv, host, port) != CK_OK) {
    if (m->srv)
      ck_http_server_close(m->srv, NULL, NULL);
    free(m->records);
    free(m);
    return NULL;
  }
  m->port = ck_http_server_port(m->srv);
  return m;
}

static void on_stop(uv_async_t *a) {
  ck_mock_model *m = a->data;
  ck_http_server_close_all(m->srv);
  ck_http_server_close(m->srv, NULL, NULL);
  m->srv = NULL;
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  ck_mock_model *m = arg;
  uv_run(m->loop, UV_RUN_DEFAULT);
  return NULL;
}

ck_mock_model *ck_mock_model_start(int port) {
  uv_loop_t *tmp = malloc(sizeof(*tmp));
  if (tmp == NULL || uv_loop_init(tmp) != 0) {
    free(tmp);
    return NULL;
  }
  ck_mock_model *m = ck_mock_model_new(tmp, "127.0.0.1", port);
  if (m == NULL) {
    uv_loop_close(tmp);
    free(tmp);
    return NULL;
  }
  /* The mock owns this loop (freed in ck_mock_model_free) and runs it on its own thread. */
  m->own = true;
  uv_async_init(m->loop, &m->stop_async, on_stop);
  m->stop_async.data = m;
  pthread_create(&m->thread, NULL, loop_main, m);
  return m;
}

static void free_state(ck_mock_model *m) {
  for (size_t i = 0; i < m->nrecords; i++) {
    free(m->records[i].path);
    free(m->records[i].body);
    free(m->records[i].headers);
  }
  m->nrecords = 0;
  while (m->queue) {
    queued *q = m->queue;
    m->queue = q->next;
    free(q->script);
    free(q);
  }
  m->queue_tail = NULL;
  m->aborts = 0;
}

void ck_mock_model_free(ck_mock_model *m) {
  if (m == NULL)
    return;
  if (m->own) {
    uv_async_send(&m->stop_async);
    pthread_join(m->thread, NULL);
    uv_loop_close(m->loop);
    free(m->loop);
  } else if (m->srv) {
    ck_http_server_close_all(m->srv);
    ck_http_server_close(m->srv, NULL, NULL);
  }
  free_state(m);
  while (m->scripts) {
    named *n = m->scripts;
    m->scripts = n->next;
    free(n->name);
    free(n->script);
    free(n);
  }
  free(m->records);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
  free(m);
}

int ck_mock_model_port(const ck_mock_model *m) {
  return m->port;
}

static bool is_object_text(const char *s) {
  ck_arena *a = ck_arena_new(0);
  ck_json *v = NULL;
  bool ok = a && ck_json_parse(a, s, strlen(s), 0, &v, NULL) == CK_OK && ck_json_is_object(v);
  ck_arena_free(a);
  return ok;
}

int ck_mock_model_add(ck_mock_model *m, const char *name, const char *script) {
  if (!is_object_text(script))
    return -1;
  pthread_mutex_lock(&m->mu);
  named *n = m->scripts;
  while (n && strcmp(n->name, name) != 0)
    n = n->next;
  if (n == NULL) {
    n = calloc(1, sizeof(*n));
    n->name = strdup(name);
    n->next = m->scripts;
    m->scripts = n;
  }
  free(n->script);
  n->script = strdup(script);
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int ck_mock_model_queue(ck_mock_model *m, const char *script) {
  if (!is_object_text(script))
    return -1;
  queued *q = calloc(1, sizeof(*q));
  q->script = strdup(script);
  pthread_mutex_lock(&m->mu);
  if (m->queue_tail)
    m->queue_tail->next = q;
  else
    m->queue = q;
  m->queue_tail = q;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

void ck_mock_model_reset(ck_mock_model *m) {
  pthread_mutex_lock(&m->mu);
  free_state(m);
  pthread_mutex_unlock(&m->mu);
}

size_t ck_mock_model_requests(ck_mock_model *m) {
  pthread_mutex_lock(&m->mu);
  size_t n = m->nrecords;
  pthread_mutex_unlock(&m->mu);
  return n;
}

char *ck_mock_model_request_path(ck_mock_model *m, size_t i) {
  pthread_mutex_lock(&m->mu);
  char *s = i < m->nrecords ? strdup(m->records[i].path) : NULL;
  pthread_mutex_unlock(&m->mu);
  return s;
}

char *ck_mock_model_request_body(ck_mock_model *m, size_t i) {
  pthread_mutex_lock(&m->mu);
  char *s = i < m->nrecords ? strdup(m->records[i].body) : NULL;
  pthread_mutex_unlock(&m->mu);
  return s;
}

char *ck_mock_model_request_header(ck_mock_model *m, size_t i, const char *name) {
  char *out = NULL;
  size_t nl = strlen(name);
  pthread_mutex_lock(&m->mu);
  for (const char *p = i < m->nrecords ? m->records[i].headers : NULL; p && *p && !out;) {
    const char *eol = strchr(p, '\n');
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
      out = strndup(p + nl + 2, (size_t)(eol - p - (ptrdiff_t)nl - 2));
    p = eol ? eol + 1 : NULL;
  }
  pthread_mutex_unlock(&m->mu);
  return out;
}

int ck_mock_model_aborts(ck_mock_model *m) {
  pthread_mutex_lock(&m->mu);
  int n = m->aborts;
  pthread_mutex_unlock(&m->mu);
  return n;
}

int ck_mock_model_wait_aborts(ck_mock_model *m, int n, int timeout_ms, uint64_t *last_ns) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  ts.tv_sec += timeout_ms / 1000 + ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  pthread_mutex_lock(&m->mu);
  while (m->aborts < n && pthread_cond_timedwait(&m->cv, &m->mu, &ts) == 0) {
  }
  int got = m->aborts;
  if (last_ns)
    *last_ns = m->last_abort_ns;
  pthread_mutex_unlock(&m->mu);
  return got;
}

int ck_mock_model_active(ck_mock_model *m) {
  pthread_mutex_lock(&m->mu);
  int n = m->active;
  pthread_mutex_unlock(&m->mu);
  return n;
}
