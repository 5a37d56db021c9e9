/* End-to-end tests of the HTTP layer: a server on 127.0.0.1:0 runs its loop in a background
 * thread; the test thread is the client, with plain blocking sockets (and receive timeouts, so
 * a bug fails a test instead of hanging it). Anything touching the server hops to the loop
 * through run_on_loop(). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <chatkit/error.h>
#include <chatkit/http.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef void (*loop_fn)(void *arg);

typedef struct fixture {
  uv_loop_t loop;
  uv_async_t async;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  loop_fn cmd;
  void *cmd_arg;
  int cmd_done;
  ck_http_server *srv;
  int port;
  /* Handler state (touched on the loop thread, read under mu by the test thread). */
  ck_http_request *held;
  int aborts;
  uint64_t abort_ns;
  int holds;    /* requests the handler has parked in `held` */
  int requests; /* handler calls */
  int closed;
  int flood_rc;
  int abort_respond_rc;
} fixture;

static fixture fx;

static void on_async(uv_async_t *a) {
  pthread_mutex_lock(&fx.mu);
  loop_fn fn = fx.cmd;
  void *arg = fx.cmd_arg;
  fx.cmd = NULL;
  pthread_mutex_unlock(&fx.mu);
  if (fn == NULL)
    return;
  fn(arg);
  pthread_mutex_lock(&fx.mu);
  fx.cmd_done = 1;
  pthread_cond_broadcast(&fx.cv);
  pthread_mutex_unlock(&fx.mu);
}

/* Runs fn(arg) on the loop thread and waits for it. */
static void run_on_loop(loop_fn fn, void *arg) {
  pthread_mutex_lock(&fx.mu);
  fx.cmd = fn;
  fx.cmd_arg = arg;
  fx.cmd_done = 0;
  pthread_mutex_unlock(&fx.mu);
  uv_async_send(&fx.async);
  pthread_mutex_lock(&fx.mu);
  while (!fx.cmd_done)
    pthread_cond_wait(&fx.cv, &fx.mu);
  pthread_mutex_unlock(&fx.mu);
}

/* Waits until *flag is nonzero (read under mu) or `ms` pass; returns the flag. */
static int wait_flag(int *flag, int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  pthread_mutex_lock(&fx.mu);
  while (!*flag && pthread_cond_timedwait(&fx.cv, &fx.mu, &ts) == 0) {
  }
  int v = *flag;
  pthread_mutex_unlock(&fx.mu);
  return v;
}

static void signal_loop_event(void) {
  pthread_mutex_lock(&fx.mu);
  pthread_cond_broadcast(&fx.cv);
  pthread_mutex_unlock(&fx.mu);
}

/* Handler ------------------------------------------------------------------------------------ */

static void on_abort(ck_http_request *req, void *ud) {
  pthread_mutex_lock(&fx.mu);
  fx.aborts++;
  fx.abort_ns = uv_hrtime();
  pthread_mutex_unlock(&fx.mu);
  if (fx.held == req)
    fx.held = NULL;
  /* After on_abort the response calls are safe no-ops; the test thread checks the code. */
  fx.abort_respond_rc = ck_http_respond(req, 200, NULL, "x", 1, NULL);
  ck_http_request_release(req);
  signal_loop_event();
}

/* Parks `req` for the test thread to act on later. */
static void hold(ck_http_request *req) {
  fx.held = req;
  pthread_mutex_lock(&fx.mu);
  fx.holds++;
  pthread_cond_broadcast(&fx.cv);
  pthread_mutex_unlock(&fx.mu);
}

/* Waits until the handler has parked `n` requests in total. */
static int wait_holds(int n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 2;
  pthread_mutex_lock(&fx.mu);
  while (fx.holds < n && pthread_cond_timedwait(&fx.cv, &fx.mu, &ts) == 0) {
  }
  int ok = fx.holds >= n;
  pthread_mutex_unlock(&fx.mu);
  return ok;
}

typedef struct delayed {
  uv_timer_t timer;
  ck_http_request *req;
} delayed;

static void on_delayed_closed(uv_handle_t *h) {
  free(h->data);
}

static void on_delayed(uv_timer_t *t) {
  delayed *d = t->data;
  ck_http_respond(d->req, 200, "text/plain", "late", 4, NULL);
  ck_http_request_release(d->req);
  uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

static void handler(ck_http_request *req, void *ud) {
  const char *p = req->path;
  pthread_mutex_lock(&fx.mu);
  fx.requests++;
  pthread_mutex_unlock(&fx.mu);
  if (strcmp(p, "/echo") == 0 || strcmp(p, "/drop") == 0) {
    if (strcmp(p, "/drop") == 0)
      ck_http_request_drop_body(req); /* the echo then shows an empty body */
    char *text = ck_arena_printf(req->arena, "%s %s?%s len=%zu\n%s", req->method, req->path,
                                 req->query, req->body_len, req->body);
    const char *x = ck_http_request_header(req, "x-test");
    ck_http_header extra[] = {{"X-Request-Id", req->id}, {"X-Echo", x ? x : "-"}, {NULL, NULL}};
    ck_http_respond(req, 200, "text/plain", text, strlen(text), extra);
    ck_http_request_release(req);
  } else if (strcmp(p, "/error") == 0) {
    ck_http_respond_error(req, 422, "bad_thing", "say \"hi\"\n");
    ck_http_request_release(req);
  } else if (strcmp(p, "/delay") == 0) {
    delayed *d = calloc(1, sizeof(*d));
    d->req = req;
    uv_timer_init(&fx.loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_delayed, 30, 0);
  } else if (strcmp(p, "/stream") == 0 || strcmp(p, "/stream-idle") == 0) {
    ck_http_header h[] = {
        {"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}, {NULL, NULL}};
    assert_int_equal(ck_http_stream_begin(req, 200, h), CK_OK);
    if (strcmp(p, "/stream") == 0)
      assert_int_equal(ck_http_stream_write(req, "data: one\n\n", 11), CK_OK);
    ck_http_request_on_abort(req, on_abort, NULL);
    hold(req);
  } else if (strcmp(p, "/whole") == 0) {
    /* A whole streamed response in one call, after the calls it must refuse. */
    ck_http_header h[] = {{"Content-Type", "text/event-stream"}, {NULL, NULL}};
    assert_int_equal(ck_http_stream_send(req, 8, 200, h, "x", 1), CK_EINVAL);
    assert_int_equal(ck_http_stream_send(req, 0, 0, NULL, "x", 1), CK_ESTATE);
    assert_int_equal(ck_http_stream_send(req, CK_HTTP_STREAM_END, 0, NULL, NULL, 0), CK_ESTATE);
    assert_int_equal(ck_http_stream_send(req, CK_HTTP_STREAM_BEGIN, 204, h, NULL, 0), CK_EINVAL);
    assert_int_equal(ck_http_stream_send(req, CK_HTTP_STREAM_ALL, 200, h, "data: all\n\n", 11),
                     CK_OK);
    assert_int_equal(ck_http_stream_send(req, 0, 0, NULL, "x", 1), CK_ESTATE);
    ck_http_request_release(req);
  } else if (strcmp(p, "/hold") == 0) {
    ck_http_request_on_abort(req, on_abort, NULL);
    hold(req);
  } else if (strcmp(p, "/flood") == 0) {
    static char block[64 * 1024];
    ck_http_request_on_abort(req, on_abort, NULL);
    ck_http_stream_begin(req, 200, NULL);
    int rc = CK_OK;
    for (int i = 0; i < 4096 && rc == CK_OK; i++)
      rc = ck_http_stream_write(req, block, sizeof(block));
    fx.flood_rc = rc;
    fx.held = req;
  } else if (strcmp(p, "/forget") == 0) {
    ck_http_request_release(req); /* never answered: the layer must answer 500 */
  } else {
    ck_http_respond_error(req, 404, "not_found", "no such path");
    ck_http_request_release(req);
  }
}

static void finish_stream(void *arg) {
  ck_http_request *req = fx.held;
  fx.held = NULL;
  assert_non_null(req);
  assert_int_equal(ck_http_stream_write(req, "data: two\n\n", 11), CK_OK);
  assert_int_equal(ck_http_stream_end(req), CK_OK);
  assert_int_equal(ck_http_stream_write(req, "x", 1), CK_ESTATE);
  ck_http_request_release(req);
}

/* Server lifecycle ---------------------------------------------------------------------------- */

static void *loop_main(void *arg) {
  uv_run(&fx.loop, UV_RUN_DEFAULT);
  return NULL;
}

static void start_server(const ck_http_config *cfg, const char *host) {
  memset(&fx, 0, sizeof(fx));
  pthread_mutex_init(&fx.mu, NULL);
  pthread_cond_init(&fx.cv, NULL);
  assert_int_equal(uv_loop_init(&fx.loop), 0);
  assert_int_equal(uv_async_init(&fx.loop, &fx.async, on_async), 0);
  fx.srv = ck_http_server_new(&fx.loop, cfg, handler, NULL);
  assert_non_null(fx.srv);
  assert_int_equal(ck_http_listen(fx.srv, host ? host : "127.0.0.1", 0), CK_OK);
  fx.port = ck_http_server_port(fx.srv);
  assert_true(fx.port > 0);
  assert_int_equal(pthread_create(&fx.thread, NULL, loop_main, NULL), 0);
}

static void on_closed(ck_http_server *srv, void *ud) {
  pthread_mutex_lock(&fx.mu);
  fx.closed = 1;
  pthread_cond_broadcast(&fx.cv);
  pthread_mutex_unlock(&fx.mu);
}

static void stop_cmd(void *arg) {
  if (fx.srv != NULL) {
    ck_http_server_close_all(fx.srv);
    ck_http_server_close(fx.srv, on_closed, NULL);
  }
  if (fx.held != NULL) {
    ck_http_request_release(fx.held);
    fx.held = NULL;
  }
  uv_close((uv_handle_t *)&fx.async, NULL);
}

static void stop_server(void) {
  run_on_loop(stop_cmd, NULL);
  pthread_join(fx.thread, NULL);
  assert_int_equal(uv_loop_close(&fx.loop), 0);
  pthread_mutex_destroy(&fx.mu);
  pthread_cond_destroy(&fx.cv);
}

/* Client ------------------------------------------------------------------------------------- */

typedef struct client {
  int fd;
  char buf[256 * 1024];
  size_t len;
} client;

typedef struct resp {
  int status;
  char head[8192];
  char *body;
  size_t body_len;
} resp;

static client *cl_open_addr(int family, const char *ip) {
  client *c = calloc(1, sizeof(*c));
  c->fd = socket(family, SOCK_STREAM, 0);
  assert_true(c->fd >= 0);
  struct timeval tv = {.tv_sec = 3};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)fx.port);
    inet_pton(AF_INET6, ip, &s6->sin6_addr);
    len = sizeof(*s6);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)fx.port);
    inet_pton(AF_INET, ip, &s4->sin_addr);
    len = sizeof(*s4);
  }
  assert_int_equal(connect(c->fd, (struct sockaddr *)&ss, len), 0);
  return c;
}

static client *cl_open(void) {
  return cl_open_addr(AF_INET, "127.0.0.1");
}

static void cl_close(client *c) {
  if (c->fd >= 0)
    close(c->fd);
  free(c);
}

static void cl_send(client *c, const char *s) {
  size_t n = strlen(s), off = 0;
  while (off < n) {
    ssize_t w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
    assert_true(w > 0);
    off += (size_t)w;
  }
}

/* Reads more bytes into the buffer; returns how many (0 on EOF, -1 on error or timeout). */
static ssize_t cl_fill(client *c) {
  if (c->len == sizeof(c->buf))
    return -1;
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
  if (n > 0)
    c->len += (size_t)n;
  return n;
}

static void cl_consume(client *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* Returns 1 when the peer closed (EOF or reset) with nothing buffered. */
static int cl_eof(client *c) {
  return c->len == 0 && cl_fill(c) <= 0;
}

static const char *find_header(const resp *r, const char *name) {
  size_t n = strlen(name);
  for (const char *line = strstr(r->head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
      const char *v = line + 3 + n;
      while (*v == ' ')
        v++;
      return v;
    }
  }
  return NULL;
}

/* Reads one response (head, then the body by Content-Length, chunks or EOF). */
static int cl_response(client *c, resp *r, int head_only) {
  memset(r, 0, sizeof(*r));
  char *end;
  while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
    if (cl_fill(c) <= 0)
      return -1;
  }
  size_t hl = (size_t)(end - c->buf) + 4;
  assert_true(hl < sizeof(r->head));
  memcpy(r->head, c->buf, hl);
  r->head[hl] = '\0';
  cl_consume(c, hl);
  r->status = (int)strtol(r->head + 9, NULL, 10);
  r->body = calloc(1, 4 * 1024 * 1024);
  const char *cl = find_header(r, "Content-Length");
  const char *te = find_header(r, "Transfer-Encoding");
  if (head_only || r->status < 200 || r->status == 204 || r->status == 304)
    return 0;
  if (cl != NULL) {
    size_t want = strtoul(cl, NULL, 10);
    while (c->len < want) {
      if (cl_fill(c) <= 0)
        return -1;
    }
    memcpy(r->body, c->buf, want);
    r->body_len = want;
    cl_consume(c, want);
  } else if (te != NULL && strncasecmp(te, "chunked", 7) == 0) {
    for (;;) {
      while ((end = memmem(c->buf, c->len, "\r\n", 2)) == NULL) {
        if (cl_fill(c) <= 0)
          return -1;
      }
      size_t size = strtoul(c->buf, NULL, 16);
      size_t line = (size_t)(end - c->buf) + 2;
      while (c->len < line + size + 2) {
        if (cl_fill(c) <= 0)
          return -1;
      }
      memcpy(r->body + r->body_len, c->buf + line, size);
      r->body_len += size;
      cl_consume(c, line + size + 2);
      if (size == 0)
        break;
    }
  } else {
    while (cl_fill(c) > 0) {
    }
    memcpy(r->body, c->buf, c->len);
    r->body_len = c->len;
    cl_consume(c, c->len);
  }
  return 0;
}

static void resp_free(resp *r) {
  free(r->body);
  r->body = NULL;
}

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000u;
}

/* Tests -------------------------------------------------------------------------------------- */

static void test_get_and_post(void **state) {
  start_server(NULL, NULL);
  client *c = cl_open();
  resp r;
  cl_send(c, "GET /echo?a=1 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "GET /echo?a=1 len=0\n");
  assert_non_null(find_header(&r, "X-Request-Id"));
  assert_int_equal(strncmp(find_header(&r, "X-Echo"), "yes\r\n", 5), 0);
  resp_free(&r);
  cl_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "POST /echo? len=5\nhello");
  resp_free(&r);
  cl_send(c, "POST /drop HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "POST /drop? len=0\n");
  resp_free(&r);
  cl_send(c, "GET /error HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 422);
  assert_string_equal(r.body,
                      "{\"error\":{\"code\":\"bad_thing\",\"message\":\"say \\\"hi\\\"\\n\"}}");
  resp_free(&r);
  cl_close(c);
  stop_server();
}

static void test_pipelining(void **state) {
  start_server(NULL, NULL);
  client *c = cl_open();
  resp r;
  /* The first answer comes 30 ms later from a timer; the second must still come second. */
  cl_send(c, "GET /delay HTTP/1.1\r\n\r\nGET /echo?n=2 HTTP/1.1\r\n\r\n"
             "POST /echo?n=3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nz");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "late");
  resp_free(&r);
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "GET /echo?n=2 len=0\n");
  resp_free(&r);
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "POST /echo?n=3 len=1\nz");
  resp_free(&r);
  cl_close(c);
  stop_server();
}

static void test_chunked_body_and_continue(void **state) {
  ck_http_config cfg = {.max_body_bytes = 1000};
  start_server(&cfg, NULL);
  client *c = cl_open();
  resp r;
  cl_send(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "POST /echo? len=11\nhello world");
  resp_free(&r);
  /* 100-continue: the server says 100 before the client sends the body. */
  cl_send(c, "PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 100);
  resp_free(&r);
  cl_send(c, "abc");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "PUT /echo? len=3\nabc");
  resp_free(&r);
  /* Too large with Expect: 413 at once, without waiting for the body. */
  cl_send(c, "PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.head, "Connection: close"));
  resp_free(&r);
  assert_true(cl_eof(c));
  cl_close(c);
  c = cl_open();
  cl_send(c, "PUT /echo HTTP/1.1\r\nExpect: something\r\nContent-Length: 5\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 417);
  resp_free(&r);
  cl_close(c);
  stop_server();
}

static void test_limits(void **state) {
  ck_http_config cfg = {.max_body_bytes = 1000, .max_header_bytes = 2048, .max_headers = 10};
  start_server(&cfg, NULL);
  resp r;
  client *c = cl_open();
  cl_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 1001\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "\"code\":\"payload_too_large\""));
  resp_free(&r);
  assert_true(cl_eof(c));
  cl_close(c);

  c = cl_open();
  cl_send(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  char chunk[700];
  memset(chunk, 'a', sizeof(chunk));
  memcpy(chunk, "258\r\n", 5); /* 0x258 = 600 bytes of data */
  memcpy(chunk + 605, "\r\n", 3);
  cl_send(c, chunk);
  cl_send(c, chunk);
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 413);
  resp_free(&r);
  cl_close(c);

  c = cl_open();
  char big[4096];
  char fill[3001];
  memset(fill, 'b', 3000);
  fill[3000] = '\0';
  snprintf(big, sizeof(big), "GET /echo HTTP/1.1\r\nX-Big: %s\r\n\r\n", fill);
  cl_send(c, big);
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 431);
  resp_free(&r);
  cl_close(c);

  c = cl_open();
  cl_send(c, "GET /echo HTTP/1.1\r\n");
  for (int i = 0; i < 11; i++)
    cl_send(c, "A: b\r\n");
  cl_send(c, "\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 431);
  resp_free(&r);
  cl_close(c);

  c = cl_open();
  cl_send(c, "GET /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 501);
  resp_free(&r);
  cl_close(c);
  stop_server();
}

static void test_malformed(void **state) {
  start_server(NULL, NULL);
  resp r;
  client *c = cl_open();
  cl_send(c, "GARBAGE\x01 / HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.head, "Content-Type: application/json"));
  assert_non_null(strstr(r.head, "Connection: close"));
  assert_int_equal(strncmp(r.body, "{\"error\":{\"code\":\"bad_request\",\"message\":\"", 42), 0);
  resp_free(&r);
  assert_true(cl_eof(c));
  cl_close(c);
  stop_server();
}

static void test_head_and_http10(void **state) {
  start_server(NULL, NULL);
  resp r;
  client *c = cl_open();
  /* HEAD: the Content-Length of the GET body, no body bytes (the next response parses). */
  cl_send(c, "HEAD /echo HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 1), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(strtol(find_header(&r, "Content-Length"), NULL, 10),
                   strlen("HEAD /echo? len=0\n"));
  resp_free(&r);
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "GET /echo? len=0\n");
  resp_free(&r);
  cl_close(c);

  c = cl_open();
  cl_send(c, "GET /echo HTTP/1.0\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Connection: close"));
  resp_free(&r);
  assert_true(cl_eof(c));
  cl_close(c);

  c = cl_open();
  cl_send(c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_non_null(strstr(r.head, "Connection: keep-alive"));
  resp_free(&r);
  cl_send(c, "GET /echo?again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "GET /echo?again len=0\n");
  resp_free(&r);
  /* A stream to an HTTP/1.0 client is raw bytes ended by closing the connection. */
  cl_send(c, "GET /stream HTTP/1.0\r\n\r\n");
  assert_true(wait_holds(1));
  run_on_loop(finish_stream, NULL);
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_null(find_header(&r, "Transfer-Encoding"));
  assert_string_equal(r.body, "data: one\n\ndata: two\n\n");
  resp_free(&r);
  cl_close(c);
  stop_server();
}

static void test_streaming_incremental(void **state) {
  start_server(NULL, NULL);
  client *c = cl_open();
  cl_send(c, "GET /stream HTTP/1.1\r\n\r\n");
  /* The first event arrives while the server still holds the stream open. */
  while (memmem(c->buf, c->len, "data: one\n\n\r\n", 13) == NULL)
    assert_true(cl_fill(c) > 0);
  assert_null(memmem(c->buf, c->len, "two", 3));
  assert_non_null(memmem(c->buf, c->len, "Transfer-Encoding: chunked", 26));
  run_on_loop(finish_stream, NULL);
  resp r;
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "data: one\n\ndata: two\n\n");
  resp_free(&r);
  /* The connection is still usable afterwards. */
  cl_send(c, "GET /echo HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  cl_close(c);
  stop_server();
}

/* ck_http_stream_send: head, data and end in one call, chunked for HTTP/1.1 (the connection
 * stays usable) and raw for HTTP/1.0 (the end of the body is the end of the connection). */
static void test_stream_send_whole(void **state) {
  start_server(NULL, NULL);
  client *c = cl_open();
  cl_send(c, "GET /whole HTTP/1.1\r\n\r\n");
  resp r;
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Transfer-Encoding: chunked"));
  assert_string_equal(r.body, "data: all\n\n");
  resp_free(&r);
  cl_send(c, "GET /echo HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  cl_close(c);

  c = cl_open();
  cl_send(c, "GET /whole HTTP/1.0\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_null(strstr(r.head, "Transfer-Encoding"));
  assert_string_equal(r.body, "data: all\n\n");
  resp_free(&r);
  assert_true(cl_eof(c));
  cl_close(c);
  stop_server();
}

static void check_abort_latency(const char *request) {
  client *c = cl_open();
  int before = fx.holds; /* the loop only changes it after the send below */
  cl_send(c, request);
  assert_true(wait_holds(before + 1));
  uint64_t t0 = uv_hrtime();
  close(c->fd);
  c->fd = -1;
  assert_true(wait_flag(&fx.aborts, 2000) == 1);
  pthread_mutex_lock(&fx.mu);
  uint64_t dt_ms = (fx.abort_ns - t0) / 1000000u;
  fx.aborts = 0;
  pthread_mutex_unlock(&fx.mu);
  assert_true(dt_ms < 100);
  assert_int_equal(fx.abort_respond_rc, CK_ECANCELLED);
  cl_close(c);
}

static void test_abort_when_idle(void **state) {
  start_server(NULL, NULL);
  check_abort_latency("GET /stream-idle HTTP/1.1\r\n\r\n"); /* head sent, nothing since */
  check_abort_latency("GET /hold HTTP/1.1\r\n\r\n");        /* nothing sent at all */
  /* Bytes sent after the request (the next pipelined one) are buffered, not dispatched. */
  check_abort_latency("GET /hold HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
  pthread_mutex_lock(&fx.mu);
  assert_int_equal(fx.requests, 3);
  pthread_mutex_unlock(&fx.mu);
  stop_server();
}

static void test_slow_consumer(void **state) {
  ck_http_config cfg = {.max_write_queue_bytes = 256 * 1024};
  start_server(&cfg, NULL);
  client *c = cl_open();
  cl_send(c, "GET /flood HTTP/1.1\r\n\r\n"); /* and never read */
  assert_true(wait_flag(&fx.aborts, 3000) == 1);
  assert_int_equal(fx.flood_rc, CK_ECANCELLED);
  cl_close(c);
  stop_server();
}

static void test_forgotten_request(void **state) {
  start_server(NULL, NULL);
  client *c = cl_open();
  resp r;
  cl_send(c, "GET /forget HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 500);
  resp_free(&r);
  cl_close(c);
  stop_server();
}

static void test_header_timeout(void **state) {
  ck_http_config cfg = {.header_timeout_ms = 150, .keepalive_timeout_ms = 150};
  start_server(&cfg, NULL);
  client *c = cl_open();
  uint64_t t0 = now_ms();
  cl_send(c, "GET /echo HTTP/1.1\r\nHost: x\r\n");
  usleep(50 * 1000);
  cl_send(c, "X-Slow: 1\r\n"); /* trickling bytes does not extend the deadline */
  resp r;
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 408);
  resp_free(&r);
  assert_true(cl_eof(c));
  uint64_t dt = now_ms() - t0;
  assert_true(dt >= 140 && dt < 1000);
  cl_close(c);
  /* An idle keep-alive connection is closed after keepalive_timeout_ms. */
  c = cl_open();
  cl_send(c, "GET /echo HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  resp_free(&r);
  t0 = now_ms();
  assert_true(cl_eof(c));
  assert_true(now_ms() - t0 < 1000);
  cl_close(c);
  stop_server();
}

static void test_max_connections(void **state) {
  ck_http_config cfg = {.max_connections = 2};
  start_server(&cfg, NULL);
  resp r;
  client *a = cl_open(), *b = cl_open();
  cl_send(a, "GET /echo HTTP/1.1\r\n\r\n");
  cl_send(b, "GET /echo HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(a, &r, 0), 0);
  resp_free(&r);
  assert_int_equal(cl_response(b, &r, 0), 0);
  resp_free(&r);
  client *c = cl_open();
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 503);
  resp_free(&r);
  assert_true(cl_eof(c));
  cl_close(c);
  cl_close(a);
  /* Once a slot frees up, a new connection is served. */
  for (int i = 0; i < 100; i++) {
    c = cl_open();
    cl_send(c, "GET /echo HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_response(c, &r, 0), 0);
    int st = r.status;
    resp_free(&r);
    cl_close(c);
    if (st == 200)
      break;
    assert_int_equal(st, 503);
    usleep(10 * 1000);
  }
  cl_close(b);
  stop_server();
}

static void graceful_close_cmd(void *arg) {
  ck_http_server_close(fx.srv, on_closed, NULL);
}

static void test_graceful_close(void **state) {
  start_server(NULL, NULL);
  client *idle = cl_open();
  resp r;
  cl_send(idle, "GET /echo HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(idle, &r, 0), 0);
  resp_free(&r);
  client *c = cl_open();
  cl_send(c, "GET /stream HTTP/1.1\r\n\r\n");
  while (memmem(c->buf, c->len, "data: one", 9) == NULL)
    assert_true(cl_fill(c) > 0);
  run_on_loop(graceful_close_cmd, NULL);
  assert_true(cl_eof(idle)); /* the idle keep-alive connection goes at once */
  cl_close(idle);
  /* No new connections. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  assert_int_not_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  close(fd);
  assert_int_equal(fx.closed, 0);
  run_on_loop(finish_stream, NULL);
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_string_equal(r.body, "data: one\n\ndata: two\n\n");
  resp_free(&r);
  assert_true(cl_eof(c));
  cl_close(c);
  assert_true(wait_flag(&fx.closed, 2000));
  fx.srv = NULL; /* freed after on_closed */
  stop_server();
}

static void test_ipv6(void **state) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
  inet_pton(AF_INET6, "::1", &s6.sin6_addr);
  int ok = probe >= 0 && bind(probe, (struct sockaddr *)&s6, sizeof(s6)) == 0;
  if (probe >= 0)
    close(probe);
  if (!ok)
    skip();
  ck_http_config cfg = {.reuseport = 1};
  start_server(&cfg, "::1");
  client *c = cl_open_addr(AF_INET6, "::1");
  resp r;
  cl_send(c, "GET /echo HTTP/1.1\r\n\r\n");
  assert_int_equal(cl_response(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  cl_close(c);
  stop_server();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_and_post),
      cmocka_unit_test(test_pipelining),
      cmocka_unit_test(test_chunked_body_and_continue),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_head_and_http10),
      cmocka_unit_test(test_streaming_incremental),
      cmocka_unit_test(test_stream_send_whole),
      cmocka_unit_test(test_abort_when_idle),
      cmocka_unit_test(test_slow_consumer),
      cmocka_unit_test(test_forgotten_request),
      cmocka_unit_test(test_header_timeout),
      cmocka_unit_test(test_max_connections),
      cmocka_unit_test(test_graceful_close),
      cmocka_unit_test(test_ipv6),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
