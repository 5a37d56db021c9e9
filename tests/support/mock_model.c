/* The scripted model server (see mock_model.h). It is built on the project's HTTP layer; the
 * only thing that layer cannot do is a TCP reset, for which the mock reaches into the
 * connection (http/internal.h) and sets SO_LINGER to zero before failing it. */
#include "support/mock_internal.h"

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

/* Overwrites each occurrence of the script's "stamp" placeholder in `f` with the current
 * CLOCK_MONOTONIC microseconds, so a client on the same machine can tell how long the frame
 * took to reach it. The frame's bytes live in the request's arena and are written only once,
 * so they may be changed in place. */
static void stamp_frame(const mstream *s, frame *f) {
  if (s->stamp == NULL || f->data == NULL || f->len < s->stamp_len)
    return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long long us =
      (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
  char *p = (char *)f->data, *end = p + f->len;
  while ((p = memmem(p, (size_t)(end - p), s->stamp, s->stamp_len)) != NULL) {
    unsigned long long v = us;
    for (size_t i = s->stamp_len; i > 0; i--) {
      p[i - 1] = (char)('0' + v % 10);
      v /= 10;
    }
    p += s->stamp_len;
  }
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
    stamp_frame(s, f);
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
  s->split = mock_step_size(script, "split", 0);
  s->stamp = ck_json_object_get_str(script, "stamp");
  s->stamp_len = s->stamp ? strlen(s->stamp) : 0;
  if (s->stamp_len == 0)
    s->stamp = NULL;
  const char *le = ck_json_object_get_str(script, "line_ending");
  render r = {.a = req->arena, .s = s, .eol = "\n"};
  r.eol = le && strcmp(le, "crlf") == 0 ? "\r\n" : le && strcmp(le, "cr") == 0 ? "\r" : "\n";
  r.chat = strstr(req->path, "/chat/completions") != NULL;
  r.model = ck_json_object_get_str(script, "model");
  r.model = r.model ? r.model : (model ? model : "mock");
  if (!s->is_error)
    mock_render(&r, script);
  uv_timer_start(&s->timer, on_stream_timer, mock_step_size(script, "ttfb_ms", 0), 0);
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
