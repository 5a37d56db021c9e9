/* The server: configuration, listening (IPv4/IPv6, SO_REUSEPORT), accepting, and the graceful
 * and forced close paths. */
#include "http/internal.h"

#include <chatkit/error.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF_SIZE ((size_t)64 * 1024)

void ck_http_config_default(ck_http_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->max_header_bytes = 16 * 1024;
  cfg->max_headers = 64;
  cfg->max_body_bytes = 1024 * 1024;
  cfg->max_pipeline_bytes = 64 * 1024;
  cfg->max_write_queue_bytes = 1024 * 1024;
  cfg->max_connections = 10000;
  cfg->header_timeout_ms = 10000;
  cfg->body_timeout_ms = 30000;
  cfg->keepalive_timeout_ms = 60000;
  cfg->linger_timeout_ms = 2000;
  /* A burst of clients (a page of chat widgets reconnecting) must not overflow the accept
   * queue: a dropped handshake costs the client a 1 s SYN retransmit. The kernel caps this at
   * net.core.somaxconn. */
  cfg->backlog = 4096;
  cfg->log_level = CK_HTTP_LOG_DEBUG;
}

/* Copies `in` over the defaults field by field, so that a zero means "the default". */
static void config_merge(ck_http_config *out, const ck_http_config *in) {
  ck_http_config_default(out);
  if (in == NULL)
    return;
#define TAKE(f)                                                                                    \
  if (in->f)                                                                                       \
  out->f = in->f
  TAKE(max_header_bytes);
  TAKE(max_headers);
  TAKE(max_body_bytes);
  TAKE(max_pipeline_bytes);
  TAKE(max_write_queue_bytes);
  TAKE(max_connections);
  TAKE(header_timeout_ms);
  TAKE(body_timeout_ms);
  TAKE(keepalive_timeout_ms);
  TAKE(linger_timeout_ms);
  TAKE(backlog);
  TAKE(log_level);
#undef TAKE
  out->reuseport = in->reuseport;
  out->log = in->log;
  out->log_ud = in->log_ud;
}

void ck__http_log(const ck_http_server *srv, int level, const char *req_id, const char *fmt, ...) {
  if (srv->cfg.log == NULL || level < srv->cfg.log_level)
    return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  srv->cfg.log(srv->cfg.log_ud, level, req_id, msg);
}

/* Request ids are "<16 hex random>-<counter>": the random part separates servers, threads and
 * processes, the counter separates requests of one server. */
static void make_id_prefix(ck_http_server *srv) {
  unsigned char rnd[8];
  if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) != 0) {
    uint64_t x = uv_hrtime() ^ ((uint64_t)(uintptr_t)srv << 16) ^ (uint64_t)getpid();
    memcpy(rnd, &x, sizeof(rnd));
  }
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof(rnd); i++) {
    srv->id_prefix[2 * i] = hex[rnd[i] >> 4];
    srv->id_prefix[2 * i + 1] = hex[rnd[i] & 15];
  }
  srv->id_prefix[16] = '\0';
}

ck_http_server *ck_http_server_new(uv_loop_t *loop, const ck_http_config *cfg,
                                   ck_http_handler handler, void *ud) {
  if (loop == NULL || handler == NULL)
    return NULL;
  ck_http_server *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return NULL;
  srv->read_buf = malloc(READ_BUF_SIZE);
  if (srv->read_buf == NULL || uv_tcp_init(loop, &srv->listener) != 0) {
    free(srv->read_buf);
    free(srv);
    return NULL;
  }
  srv->loop = loop;
  config_merge(&srv->cfg, cfg);
  srv->handler = handler;
  srv->handler_ud = ud;
  srv->listener.data = srv;
  srv->lim.max_header_bytes = srv->cfg.max_header_bytes;
  srv->lim.max_headers = srv->cfg.max_headers;
  srv->lim.max_body_bytes = srv->cfg.max_body_bytes;
  make_id_prefix(srv);
  return srv;
}

static void on_connection(uv_stream_t *listener, int status) {
  ck_http_server *srv = listener->data;
  if (status < 0) {
    ck__http_log(srv, CK_HTTP_LOG_WARN, NULL, "accept failed: %s", uv_strerror(status));
    return;
  }
  if (srv->closing)
    return;
  ck__http_conn_accept(srv);
}

/* Binds a socket of our own so SO_REUSEPORT is set before bind (libuv 1.44 cannot). */
static int bind_reuseport(ck_http_server *srv, const struct sockaddr *sa, socklen_t len) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return CK_EIO;
  int one = 1;
  int rc = CK_EIO;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0 && bind(fd, sa, len) == 0 &&
      uv_tcp_open(&srv->listener, fd) == 0)
    rc = CK_OK;
  if (rc != CK_OK)
    close(fd);
  return rc;
}

int ck_http_listen(ck_http_server *srv, const char *host, int port) {
  if (srv == NULL || host == NULL || port < 0 || port > 65535 || srv->listening || srv->closing)
    return CK_EINVAL;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t len;
  if (strchr(host, ':') != NULL) {
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
      return CK_EINVAL;
    len = sizeof(struct sockaddr_in6);
  } else {
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0)
      return CK_EINVAL;
    len = sizeof(struct sockaddr_in);
  }
  int rc;
  if (srv->cfg.reuseport)
    rc = bind_reuseport(srv, (const struct sockaddr *)&ss, len);
  else
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0) == 0 ? CK_OK : CK_EIO;
  if (rc == CK_OK) {
    int err = uv_listen((uv_stream_t *)&srv->listener, srv->cfg.backlog, on_connection);
    if (err != 0) {
      ck__http_log(srv, CK_HTTP_LOG_ERROR, NULL, "listen on %s:%d failed: %s", host, port,
                   uv_strerror(err));
      rc = CK_EIO;
    }
  }
  if (rc == CK_OK)
    srv->listening = 1;
  return rc;
}

int ck_http_server_port(const ck_http_server *srv) {
  if (srv == NULL || !srv->listening || srv->listener_closed)
    return -1;
  struct sockaddr_storage ss;
  int len = (int)sizeof(ss);
  if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
}

size_t ck_http_server_connections(const ck_http_server *srv) {
  return srv != NULL ? srv->nconns : 0;
}

static void maybe_finish(ck_http_server *srv) {
  if (!srv->closing || !srv->listener_closed || srv->nall > 0 || srv->finished)
    return;
  srv->finished = 1;
  if (srv->on_closed != NULL)
    srv->on_closed(srv, srv->closed_ud);
  free(srv->read_buf);
  free(srv);
}

static void on_listener_closed(uv_handle_t *h) {
  ck_http_server *srv = h->data;
  srv->listener_closed = 1;
  maybe_finish(srv);
}

void ck__http_server_conn_gone(ck_http_server *srv, ck__http_conn *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  srv->nall--;
  maybe_finish(srv);
}

void ck_http_server_close(ck_http_server *srv, ck_http_closed_cb on_closed, void *ud) {
  if (srv == NULL || srv->closing)
    return;
  srv->closing = 1;
  srv->on_closed = on_closed;
  srv->closed_ud = ud;
  /* Idle keep-alive connections go now; connections with a request in progress finish it and
   * then close because srv->closing makes their response say Connection: close. */
  for (ck__http_conn *c = srv->conns, *next; c != NULL; c = next) {
    next = c->next;
    if (c->req == NULL && c->parser.phase == CK__HP_IDLE && c->pend_off >= c->pending.len)
      ck__http_conn_close_now(c);
  }
  uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
}

void ck_http_server_close_all(ck_http_server *srv) {
  if (srv == NULL)
    return;
  for (ck__http_conn *c = srv->conns, *next; c != NULL; c = next) {
    next = c->next;
    ck__http_conn_close_now(c);
  }
}
