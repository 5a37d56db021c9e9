/* Connections: reading into the shared buffer, feeding the parser, dispatching requests in
 * order, timers, writing with backpressure, and the graceful and immediate close paths.
 *
 * Reading stays active for the whole life of a connection (unless the pipeline buffer is
 * full) so that a peer that leaves is seen at once, even while its response is idle.
 */
#include "http/internal.h"

#include <chatkit/error.h>

#include <stdlib.h>
#include <string.h>

#define READ_BUF_SIZE ((size_t)64 * 1024)

/* A queued write owns a copy of the bytes uv_try_write could not send. */
typedef struct write_req {
  uv_write_t req;
  char data[];
} write_req;

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void drain_pending(ck__http_conn *c);

static uv_stream_t *stream(ck__http_conn *c) {
  return (uv_stream_t *)&c->tcp;
}

static const char *req_id(const ck__http_conn *c) {
  return c->req != NULL ? c->req->pub.id : NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ck__http_conn *c = h->data;
  ck_http_server *srv = c->srv;
  /* Reads are handled one at a time on the loop thread, so one buffer serves every
   * connection; the flag only guards against a future change breaking that. */
  if (srv->read_busy) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  srv->read_busy = 1;
  *buf = uv_buf_init(srv->read_buf, (unsigned)READ_BUF_SIZE);
}

static void start_reading(ck__http_conn *c) {
  if (uv_read_start(stream(c), on_alloc, on_read) == 0)
    c->read_stopped = 0;
}

static void stop_reading(ck__http_conn *c) {
  uv_read_stop(stream(c));
  c->read_stopped = 1;
}

static void on_close(uv_handle_t *h) {
  ck__http_conn *c = h->data;
  if (--c->handles_open > 0)
    return;
  ck__http_server_conn_gone(c->srv, c);
  free(c->peer);
  free(c);
}

static void set_timer(ck__http_conn *c, uint8_t kind, uint64_t ms);

/* Picks the timer for the connection's state. A timer is restarted only when the state
 * changes, so the head timeout covers the whole head however slowly it trickles in. */
static void update_timer(ck__http_conn *c) {
  if (c->closed || c->dead || c->closing)
    return; /* those states armed their own timer */
  const ck_http_config *cfg = &c->srv->cfg;
  if (c->req != NULL) {
    set_timer(c, CK__TIMER_NONE, 0); /* the handler owns the pace now */
    return;
  }
  switch (c->parser.phase) {
  case CK__HP_IDLE:
    set_timer(c, CK__TIMER_IDLE, cfg->keepalive_timeout_ms);
    break;
  case CK__HP_HEAD:
    set_timer(c, CK__TIMER_HEAD, cfg->header_timeout_ms);
    break;
  case CK__HP_BODY:
    set_timer(c, CK__TIMER_BODY, cfg->body_timeout_ms);
    break;
  default:
    set_timer(c, CK__TIMER_NONE, 0);
    break;
  }
}

static void on_timer(uv_timer_t *t) {
  ck__http_conn *c = t->data;
  uint8_t kind = c->timer_kind;
  c->timer_kind = CK__TIMER_NONE;
  switch (kind) {
  case CK__TIMER_HEAD:
  case CK__TIMER_BODY:
    ck__http_log(c->srv, CK_HTTP_LOG_DEBUG, NULL, "request %s timed out",
                 kind == CK__TIMER_HEAD ? "head" : "body");
    ck__http_conn_send_error(c, 408, "request_timeout", "the request did not arrive in time");
    break;
  default:
    ck__http_conn_close_now(c);
    break;
  }
}

static void set_timer(ck__http_conn *c, uint8_t kind, uint64_t ms) {
  if (c->timer_kind == kind && kind != CK__TIMER_KILL)
    return;
  c->timer_kind = kind;
  if (kind == CK__TIMER_NONE)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

void ck__http_conn_close_now(ck__http_conn *c) {
  if (c == NULL || c->closed)
    return;
  c->closed = 1;
  ck__http_req *r = c->req;
  if (r != NULL) {
    c->req = NULL;
    r->conn = NULL;
    if (r->state != CK__REQ_DONE) {
      r->aborted = 1;
      ck_http_abort_cb cb = r->on_abort;
      r->on_abort = NULL;
      if (cb != NULL)
        cb(&r->pub, r->abort_ud);
    }
    ck__http_req_unref(r);
  }
  ck__http_parser_free(&c->parser);
  ck_buf_free(&c->pending);
  c->pend_off = 0;
  if (c->counted) {
    c->counted = 0;
    c->srv->nconns--;
  }
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_close);
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

void ck__http_conn_fail(ck__http_conn *c, const char *why) {
  if (c == NULL || c->closed || c->dead)
    return;
  c->dead = 1;
  ck__http_log(c->srv, CK_HTTP_LOG_DEBUG, req_id(c), "closing connection: %s", why);
  stop_reading(c);
  /* Close from the loop rather than from inside the caller, so on_abort never runs inside a
   * ck_http_* call the handler is making. */
  set_timer(c, CK__TIMER_KILL, 0);
}

static void on_shutdown(uv_shutdown_t *sr, int status) {
  ck__http_conn *c = sr->data;
  free(sr);
  if (status == UV_ECANCELED || c->closed)
    return;
  c->shut_done = 1;
  /* Our last byte is out. Wait for the peer's FIN (bounded by the linger timer), because
   * closing with unread input makes the kernel send a reset that can destroy the response
   * before the client has read it. */
  if (status < 0 || c->peer_eof)
    ck__http_conn_close_now(c);
}

void ck__http_conn_close_graceful(ck__http_conn *c) {
  if (c->closed || c->closing || c->dead)
    return;
  c->closing = 1;
  if (c->read_stopped)
    start_reading(c); /* to see the FIN; further input is discarded */
  uv_shutdown_t *sr = malloc(sizeof(*sr));
  if (sr == NULL) {
    ck__http_conn_close_now(c);
    return;
  }
  sr->data = c;
  if (uv_shutdown(sr, stream(c), on_shutdown) != 0) {
    free(sr);
    ck__http_conn_close_now(c);
    return;
  }
  c->timer_kind = CK__TIMER_LINGER;
  uv_timer_start(&c->timer, on_timer, c->srv->cfg.linger_timeout_ms, 0);
}

static void on_write(uv_write_t *req, int status) {
  ck__http_conn *c = req->data;
  free(req);
  if (status < 0 && status != UV_ECANCELED)
    ck__http_conn_fail(c, "write failed");
}

int ck__http_conn_write(ck__http_conn *c, const uv_buf_t *bufs, unsigned nbufs) {
  /* After a graceful close started, our FIN is queued: nothing may follow it. */
  if (c == NULL || c->closed || c->dead || c->closing)
    return CK_ECANCELLED;
  size_t total = 0;
  for (unsigned i = 0; i < nbufs; i++)
    total += bufs[i].len;
  if (total == 0)
    return CK_OK;
  size_t done = 0;
  /* Most writes fit the socket buffer: try to send them without allocating anything. */
  if (uv_stream_get_write_queue_size(stream(c)) == 0) {
    int n = uv_try_write(stream(c), bufs, nbufs);
    if (n >= 0) {
      done = (size_t)n;
    } else if (n != UV_EAGAIN) {
      ck__http_conn_fail(c, "write failed");
      return CK_ECANCELLED;
    }
  }
  if (done == total)
    return CK_OK;
  size_t rest = total - done;
  if (uv_stream_get_write_queue_size(stream(c)) + rest > c->srv->cfg.max_write_queue_bytes) {
    ck__http_log(c->srv, CK_HTTP_LOG_WARN, req_id(c), "slow consumer: write queue over %zu bytes",
                 c->srv->cfg.max_write_queue_bytes);
    ck__http_conn_fail(c, "slow consumer");
    return CK_ECANCELLED;
  }
  write_req *w = malloc(sizeof(*w) + rest);
  if (w == NULL) {
    ck__http_conn_fail(c, "out of memory");
    return CK_ENOMEM;
  }
  size_t skip = done, off = 0;
  for (unsigned i = 0; i < nbufs; i++) {
    size_t n = bufs[i].len;
    if (skip >= n) {
      skip -= n;
      continue;
    }
    memcpy(w->data + off, bufs[i].base + skip, n - skip);
    off += n - skip;
    skip = 0;
  }
  w->req.data = c;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)rest);
  if (uv_write(&w->req, stream(c), &b, 1, on_write) != 0) {
    free(w);
    ck__http_conn_fail(c, "write failed");
    return CK_ECANCELLED;
  }
  return CK_OK;
}

void ck__http_conn_send_error(ck__http_conn *c, int status, const char *code, const char *msg) {
  ck_buf body, head;
  ck_buf_init(&body, 4096);
  ck_buf_init(&head, 4096);
  int rc = ck__http_json_error(&body, code, msg);
  if (rc == CK_OK)
    rc = ck_buf_printf(&head,
                       "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                       status, ck_http_reason(status), body.len);
  if (rc == CK_OK) {
    uv_buf_t bufs[2] = {uv_buf_init(head.data, (unsigned)head.len),
                        uv_buf_init(body.data, (unsigned)body.len)};
    ck__http_conn_write(c, bufs, 2);
  }
  ck_buf_free(&body);
  ck_buf_free(&head);
  ck__http_conn_close_graceful(c);
}

static const char *error_code(int status) {
  switch (status) {
  case 413:
    return "payload_too_large";
  case 417:
    return "expectation_failed";
  case 431:
    return "headers_too_large";
  case 501:
    return "not_implemented";
  case 503:
    return "unavailable";
  case 505:
    return "http_version_not_supported";
  default:
    return "bad_request";
  }
}

static void dispatch(ck__http_conn *c) {
  ck_http_server *srv = c->srv;
  ck__http_req *r = ck__http_parser_take(&c->parser);
  if (r == NULL) {
    ck__http_conn_send_error(c, 500, "internal_error", "parser state");
    return;
  }
  ck_arena *a = r->pub.arena;
  r->pub.id = ck_arena_printf(a, "%s-%llx", srv->id_prefix, (unsigned long long)++srv->seq);
  /* The peer does not change on a keep-alive connection: ask the kernel once. */
  if (c->peer == NULL) {
    struct sockaddr_storage ss;
    int sl = (int)sizeof(ss);
    char ip[64] = "";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
      if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(s6, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
      } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        uv_ip4_name(s4, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
      }
    }
    char buf[96];
    snprintf(buf, sizeof(buf), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
    c->peer = strdup(buf);
  }
  r->pub.peer = c->peer ? ck_arena_strdup(a, c->peer) : NULL;
  if (r->pub.id == NULL || r->pub.peer == NULL) {
    ck__http_req_unref(r);
    ck__http_conn_send_error(c, 503, "unavailable", "out of memory");
    return;
  }
  /* The parser's reference becomes the connection's; the handler gets the second one. */
  r->conn = c;
  r->refs = 2;
  c->req = r;
  update_timer(c);
  srv->handler(&r->pub, srv->handler_ud);
}

/* Feeds bytes to the parser until they run out or a request is being served. Returns how
 * many bytes were consumed; the caller keeps the rest. */
static size_t process(ck__http_conn *c, const char *data, size_t len) {
  size_t off = 0;
  c->in_process = 1;
  while (off < len && c->req == NULL && !c->closing && !c->dead && !c->closed) {
    size_t used = 0;
    ck__http_event ev = ck__http_parser_feed(&c->parser, data + off, len - off, &used);
    off += used;
    if (ev == CK__HTTP_EV_CONTINUE) {
      uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
      ck__http_conn_write(c, &b, 1);
      ck__http_parser_resume(&c->parser);
    } else if (ev == CK__HTTP_EV_REQUEST) {
      dispatch(c);
    } else if (ev == CK__HTTP_EV_ERROR) {
      const char *msg = NULL;
      int status = ck__http_parser_status(&c->parser, &msg);
      ck__http_log(c->srv, CK_HTTP_LOG_DEBUG, NULL, "bad request (%d): %s", status, msg);
      ck__http_conn_send_error(c, status, error_code(status), msg);
    } else if (used == 0) {
      break;
    }
  }
  c->in_process = 0;
  return off;
}

static void pending_append(ck__http_conn *c, const char *data, size_t len) {
  if (c->pend_off > 0) {
    memmove(c->pending.data, c->pending.data + c->pend_off, c->pending.len - c->pend_off);
    c->pending.len -= c->pend_off;
    c->pend_off = 0;
  }
  if (ck_buf_append(&c->pending, data, len) != CK_OK) {
    ck__http_conn_fail(c, "pipeline buffer overflow");
    return;
  }
  /* Past the cap, stop reading and let TCP push back on the client; disconnects are then
   * seen by the next failed write instead of at once. */
  if (c->pending.len >= c->srv->cfg.max_pipeline_bytes)
    stop_reading(c);
}

static void drain_pending(ck__http_conn *c) {
  while (c->pend_off < c->pending.len && c->req == NULL && !c->closing && !c->dead && !c->closed) {
    size_t used = process(c, c->pending.data + c->pend_off, c->pending.len - c->pend_off);
    c->pend_off += used;
    if (used == 0)
      break;
  }
  if (c->closed)
    return;
  if (c->pend_off >= c->pending.len) {
    ck_buf_free(&c->pending); /* keep idle connections small */
    c->pend_off = 0;
  }
  if (c->read_stopped && !c->dead && c->pending.len - c->pend_off < c->srv->cfg.max_pipeline_bytes)
    start_reading(c);
}

static void on_data(ck__http_conn *c, const char *data, size_t len) {
  if (c->closing || c->dead || c->closed)
    return; /* lingering: input after our last response is discarded */
  if (c->req != NULL || c->pend_off < c->pending.len) {
    pending_append(c, data, len);
    if (c->req == NULL)
      drain_pending(c);
  } else {
    size_t used = process(c, data, len);
    if (used < len && !c->closing && !c->dead && !c->closed)
      pending_append(c, data + used, len - used);
  }
  update_timer(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ck__http_conn *c = s->data;
  ck_http_server *srv = c->srv;
  if (nread > 0) {
    on_data(c, buf->base, (size_t)nread);
  } else if (nread < 0 && nread != UV_ENOBUFS) {
    c->peer_eof = 1;
    if (!c->closing && c->req != NULL)
      ck__http_log(srv, CK_HTTP_LOG_DEBUG, req_id(c), "peer left: %s", uv_strerror((int)nread));
    if (!c->closed) {
      stop_reading(c);
      /* While lingering, a plain EOF means the client read what it wanted; still let our
       * queued bytes drain (on_shutdown closes) rather than cancel them. Otherwise the peer is
       * gone: close, which fires on_abort if the response was not complete. */
      if (!(c->closing && !c->shut_done && nread == UV_EOF))
        ck__http_conn_close_now(c);
    }
  }
  if (buf->base == srv->read_buf)
    srv->read_busy = 0;
}

void ck__http_conn_response_done(ck__http_conn *c) {
  ck__http_req *r = c->req;
  int close_after = r->close_after;
  c->req = NULL;
  r->conn = NULL;
  ck__http_req_unref(r); /* the connection's reference; the handler may still hold its own */
  if (close_after || c->srv->closing) {
    ck__http_conn_close_graceful(c);
    return;
  }
  ck__http_parser_resume(&c->parser);
  /* Inside process() the loop there continues with the next bytes; otherwise (an answer
   * that came later) parse what the client pipelined meanwhile. */
  if (!c->in_process)
    drain_pending(c);
  update_timer(c);
}

void ck__http_conn_accept(ck_http_server *srv) {
  ck__http_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    ck__http_log(srv, CK_HTTP_LOG_ERROR, NULL, "out of memory accepting a connection");
    return;
  }
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  uv_timer_init(srv->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles_open = 2;
  ck__http_parser_init(&c->parser, &srv->lim);
  ck_buf_init(&c->pending, srv->cfg.max_pipeline_bytes + READ_BUF_SIZE);
  c->next = srv->conns;
  if (srv->conns != NULL)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nall++;
  if (uv_accept((uv_stream_t *)&srv->listener, stream(c)) != 0) {
    ck__http_conn_close_now(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1); /* streamed chunks must leave at once, not wait for Nagle */
  start_reading(c);
  if (srv->nconns >= srv->cfg.max_connections) {
    ck__http_log(srv, CK_HTTP_LOG_WARN, NULL, "connection limit (%u) reached",
                 srv->cfg.max_connections);
    ck__http_conn_send_error(c, 503, "unavailable", "too many connections");
    return;
  }
  c->counted = 1;
  srv->nconns++;
  /* A fresh connection gets the head timeout, not the keep-alive one: a client that connects
   * and says nothing is the cheapest slowloris. */
  set_timer(c, CK__TIMER_HEAD, srv->cfg.header_timeout_ms);
}
