/* A small blocking HTTP/1.1 client for the integration tests (see http_client.h). */
#include "support/http_client.h"

#include <chatkit/error.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int hc_open(hc_conn *c, int port, int timeout_ms) {
  memset(c, 0, sizeof(*c));
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    return -1;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

void hc_close(hc_conn *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  free(c->buf);
  c->buf = NULL;
  c->len = c->cap = 0;
}

int hc_send(hc_conn *c, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

void hc_format(ck_buf *out, const char *method, const char *path, const char *headers,
               const char *body, size_t body_len) {
  ck_buf_printf(out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
  if (body != NULL)
    ck_buf_printf(out, "Content-Length: %zu\r\n", body_len);
  if (headers != NULL)
    ck_buf_puts(out, headers);
  ck_buf_puts(out, "\r\n");
  if (body != NULL)
    ck_buf_append(out, body, body_len);
}

/* Reads more bytes into the connection buffer. Returns the count, 0 at EOF, -1 on error or
 * timeout. */
static ssize_t fill(hc_conn *c) {
  if (c->len == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16384;
    char *b = realloc(c->buf, cap + 1);
    if (b == NULL)
      return -1;
    c->buf = b;
    c->cap = cap;
  }
  for (;;) {
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n > 0)
      c->len += (size_t)n;
    return n;
  }
}

static void consume(hc_conn *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* Finds `pat` in the buffer; returns its offset or -1. */
static long find(const hc_conn *c, const char *pat) {
  size_t m = strlen(pat);
  for (size_t i = 0; c->len >= m && i <= c->len - m; i++)
    if (memcmp(c->buf + i, pat, m) == 0)
      return (long)i;
  return -1;
}

/* Takes one "\r\n"-terminated line (without it) into a malloc'd string. */
static char *take_line(hc_conn *c) {
  long at;
  while ((at = find(c, "\r\n")) < 0)
    if (fill(c) <= 0)
      return NULL;
  char *line = strndup(c->buf, (size_t)at);
  consume(c, (size_t)at + 2);
  return line;
}

int hc_read_head(hc_conn *c, hc_response *r) {
  memset(r, 0, sizeof(*r));
  long at;
  while ((at = find(c, "\r\n\r\n")) < 0)
    if (fill(c) <= 0)
      return -1;
  r->head = strndup(c->buf, (size_t)at + 2);
  consume(c, (size_t)at + 4);
  if (r->head == NULL || strncmp(r->head, "HTTP/1.", 7) != 0)
    return -1;
  char *sp = strchr(r->head, ' ');
  r->status = sp ? (int)strtol(sp + 1, NULL, 10) : 0;
  char *line = strstr(r->head, "\r\n");
  while (line != NULL && r->nheaders < HC_MAX_HEADERS) {
    *line = '\0';
    line += 2;
    char *next = strstr(line, "\r\n");
    if (next == NULL)
      break;
    char *colon = memchr(line, ':', (size_t)(next - line));
    if (colon != NULL) {
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ')
        v++;
      r->names[r->nheaders] = line;
      r->values[r->nheaders++] = v;
    }
    line = next;
  }
  const char *te = hc_header(r, "transfer-encoding");
  r->chunked = te != NULL && strncasecmp(te, "chunked", 7) == 0;
  return r->status > 0 ? 0 : -1;
}

const char *hc_header(const hc_response *r, const char *name) {
  for (size_t i = 0; i < r->nheaders; i++) {
    /* A value ends at the next header's "\r\n", which hc_read_head replaced by NUL. */
    if (strcasecmp(r->names[i], name) == 0)
      return r->values[i];
  }
  return NULL;
}

long hc_read_chunk(hc_conn *c, ck_buf *out) {
  char *line = take_line(c);
  if (line == NULL)
    return -1;
  char *end = NULL;
  long size = strtol(line, &end, 16);
  bool ok = end != line && size >= 0;
  free(line);
  if (!ok)
    return -1;
  if (size == 0) {
    /* Trailers, then the blank line. */
    for (;;) {
      char *t = take_line(c);
      if (t == NULL)
        return -1;
      bool blank = *t == '\0';
      free(t);
      if (blank)
        return 0;
    }
  }
  while (c->len < (size_t)size + 2)
    if (fill(c) <= 0)
      return -1;
  if (memcmp(c->buf + size, "\r\n", 2) != 0)
    return -1;
  ck_buf_append(out, c->buf, (size_t)size);
  consume(c, (size_t)size + 2);
  return size;
}

int hc_read_body(hc_conn *c, hc_response *r, bool head_request) {
  ck_buf body;
  ck_buf_init(&body, 0);
  int rc = 0;
  if (head_request || r->status == 204 || r->status == 304 || r->status / 100 == 1) {
    /* No body. */
  } else if (r->chunked) {
    long n;
    while ((n = hc_read_chunk(c, &body)) > 0) {
    }
    rc = n == 0 ? 0 : -1;
  } else if (hc_header(r, "content-length") != NULL) {
    size_t want = (size_t)strtoull(hc_header(r, "content-length"), NULL, 10);
    while (c->len < want)
      if (fill(c) <= 0) {
        rc = -1;
        break;
      }
    if (rc == 0) {
      ck_buf_append(&body, c->buf, want);
      consume(c, want);
    }
  } else {
    /* Read until the server closes. */
    ssize_t n;
    while ((n = fill(c)) > 0) {
    }
    ck_buf_append(&body, c->buf, c->len);
    consume(c, c->len);
    rc = n == 0 ? 0 : -1;
  }
  ck_buf_putc(&body, '\0');
  r->body = ck_buf_take(&body, &r->body_len);
  if (r->body == NULL)
    return -1;
  r->body_len--;
  return rc;
}

int hc_read_response(hc_conn *c, hc_response *r, bool head_request) {
  if (hc_read_head(c, r) != 0)
    return -1;
  return hc_read_body(c, r, head_request);
}

void hc_response_free(hc_response *r) {
  free(r->head);
  free(r->body);
  memset(r, 0, sizeof(*r));
}

int hc_request(int port, const char *method, const char *path, const char *headers,
               const char *body, size_t body_len, hc_response *r) {
  hc_conn c;
  memset(r, 0, sizeof(*r));
  if (hc_open(&c, port, 10000) != 0)
    return -1;
  ck_buf req, hdrs;
  ck_buf_init(&req, 0);
  ck_buf_init(&hdrs, 0);
  ck_buf_puts(&hdrs, "Connection: close\r\n");
  if (headers != NULL)
    ck_buf_puts(&hdrs, headers);
  hc_format(&req, method, path, hdrs.data, body, body_len);
  int rc = hc_send(&c, req.data, req.len);
  if (rc == 0)
    rc = hc_read_response(&c, r, strcmp(method, "HEAD") == 0);
  ck_buf_free(&req);
  ck_buf_free(&hdrs);
  hc_close(&c);
  return rc;
}

int hc_chatkit(int port, const char *json, hc_response *r) {
  return hc_request(port, "POST", "/chatkit", "Content-Type: application/json\r\n", json,
                    strlen(json), r);
}

bool hc_healthy(int port) {
  hc_response r;
  bool ok = hc_request(port, "GET", "/health", NULL, NULL, 0, &r) == 0 && r.status == 200 &&
            strcmp(r.body, "{\"status\":\"ok\"}") == 0;
  hc_response_free(&r);
  return ok;
}

ck_json *hc_json(ck_arena *a, const char *text, size_t len) {
  ck_json *v = NULL;
  if (ck_json_parse(a, text, len, 0, &v, NULL) != CK_OK)
    return NULL;
  return v;
}

/* One event's JSON line (without "data: " and "\n\n"), parsed and appended. */
static int add_event(ck_arena *a, ck_json *events, const char *data, size_t len) {
  if (memchr(data, '\n', len) != NULL) {
    fprintf(stderr, "SSE: an event's data spans lines: %.*s\n", (int)len, data);
    return -1;
  }
  ck_json *ev = hc_json(a, data, len);
  if (ev == NULL || !ck_json_is_object(ev) || ck_json_object_get_str(ev, "type") == NULL) {
    fprintf(stderr, "SSE: not a JSON event object: %.*s\n", (int)len, data);
    return -1;
  }
  return ck_json_array_append(events, ev) == CK_OK ? 0 : -1;
}

int hc_sse_split(ck_arena *a, const char *body, size_t len, ck_json **events) {
  *events = ck_json_array(a);
  size_t i = 0;
  while (i < len) {
    if (len - i < 6 || memcmp(body + i, "data: ", 6) != 0) {
      fprintf(stderr, "SSE: expected \"data: \" at byte %zu: %.40s\n", i, body + i);
      return -1;
    }
    i += 6;
    const char *end = NULL;
    for (size_t k = i; k + 1 < len; k++) {
      if (body[k] == '\n') {
        end = body + k;
        break;
      }
    }
    if (end == NULL || end[1] != '\n') {
      fprintf(stderr, "SSE: an event does not end with \"\\n\\n\" (byte %zu)\n", i);
      return -1;
    }
    if (add_event(a, *events, body + i, (size_t)(end - (body + i))) != 0)
      return -1;
    i = (size_t)(end - body) + 2;
  }
  return 0;
}

int hc_sse_next(hc_conn *c, ck_buf *pending, ck_arena *a, ck_json **event) {
  for (;;) {
    const char *sep = NULL;
    for (size_t k = 0; pending->len >= 2 && k + 1 < pending->len; k++) {
      if (pending->data[k] == '\n' && pending->data[k + 1] == '\n') {
        sep = pending->data + k;
        break;
      }
    }
    if (sep != NULL) {
      size_t n = (size_t)(sep - pending->data);
      if (n < 6 || memcmp(pending->data, "data: ", 6) != 0)
        return -1;
      ck_json *arr = ck_json_array(a);
      int rc = add_event(a, arr, pending->data + 6, n - 6);
      memmove(pending->data, sep + 2, pending->len - n - 2);
      pending->len -= n + 2;
      if (rc != 0)
        return -1;
      *event = ck_json_array_get(arr, 0);
      return 1;
    }
    long got = hc_read_chunk(c, pending);
    if (got == 0)
      return pending->len == 0 ? 0 : -1;
    if (got < 0)
      return -1;
  }
}

ck_json *hc_stream(ck_arena *a, int port, const char *json) {
  hc_response r;
  ck_json *events = NULL;
  if (hc_chatkit(port, json, &r) != 0) {
    fprintf(stderr, "stream: no complete response to %s\n", json);
  } else if (r.status != 200) {
    fprintf(stderr, "stream: status %d for %s: %s\n", r.status, json, r.body);
  } else if (!r.chunked) {
    fprintf(stderr, "stream: not chunked\n");
  } else if (hc_header(&r, "content-type") == NULL ||
             strncmp(hc_header(&r, "content-type"), "text/event-stream", 17) != 0) {
    fprintf(stderr, "stream: Content-Type is %s\n", hc_header(&r, "content-type"));
  } else if (hc_header(&r, "cache-control") == NULL ||
             strcmp(hc_header(&r, "cache-control"), "no-cache") != 0) {
    fprintf(stderr, "stream: Cache-Control is %s\n", hc_header(&r, "cache-control"));
  } else if (hc_sse_split(a, r.body, r.body_len, &events) != 0) {
    events = NULL;
  }
  hc_response_free(&r);
  return events;
}

void hc_event_types(const ck_json *events, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < ck_json_array_size(events); i++) {
    const ck_json *ev = ck_json_array_get(events, i);
    const char *t = ck_json_object_get_str(ev, "type");
    if (t != NULL && strcmp(t, "thread.item.updated") == 0)
      t = ck_json_object_get_str(ck_json_object_get(ev, "update"), "type");
    int n = snprintf(out + len, cap - len, "%s%s", i ? " " : "", t ? t : "?");
    if (n < 0 || (size_t)n >= cap - len)
      break;
    len += (size_t)n;
  }
}

size_t hc_count_type(const ck_json *events, const char *type) {
  size_t n = 0;
  for (size_t i = 0; i < ck_json_array_size(events); i++) {
    const char *t = ck_json_object_get_str(ck_json_array_get(events, i), "type");
    if (t != NULL && strcmp(t, type) == 0)
      n++;
  }
  return n;
}

ck_json *hc_find_type(const ck_json *events, const char *type, size_t from) {
  for (size_t i = from; i < ck_json_array_size(events); i++) {
    ck_json *ev = ck_json_array_get(events, i);
    const char *t = ck_json_object_get_str(ev, "type");
    if (t != NULL && strcmp(t, type) == 0)
      return ev;
  }
  return NULL;
}

const char *hc_item_text(ck_arena *a, const ck_json *item) {
  ck_buf b;
  ck_buf_init(&b, 0);
  const ck_json *content = ck_json_object_get(item, "content");
  for (size_t i = 0; i < ck_json_array_size(content); i++) {
    const char *t = ck_json_object_get_str(ck_json_array_get(content, i), "text");
    if (t != NULL)
      ck_buf_puts(&b, t);
  }
  const char *s = ck_arena_strndup(a, b.data ? b.data : "", b.len);
  ck_buf_free(&b);
  return s;
}

static void live_event(hc_live *s, const ck_json *ev) {
  const char *type = ck_json_object_get_str(ev, "type");
  const ck_json *item = ck_json_object_get(ev, "item");
  if (type == NULL)
    return;
  if (strcmp(type, "thread.created") == 0)
    snprintf(s->tid, sizeof(s->tid), "%s",
             ck_json_object_get_str(ck_json_object_get(ev, "thread"), "id"));
  if (strcmp(type, "thread.item.added") == 0)
    snprintf(s->mid, sizeof(s->mid), "%s", ck_json_object_get_str(item, "id"));
  const char *ut = ck_json_object_get_str(ck_json_object_get(ev, "update"), "type");
  if (ut != NULL && strcmp(ut, "assistant_message.content_part.text_delta") == 0)
    s->deltas++;
  const char *id = ck_json_object_get_str(item, "id");
  if (strcmp(type, "thread.item.done") == 0 && s->mid[0] && id != NULL && strcmp(id, s->mid) == 0)
    s->done = true;
}

static int live_close(hc_live *s, int rc) {
  hc_close(&s->c);
  ck_buf_free(&s->pending);
  return rc;
}

int hc_live_open(hc_live *s, int port, const char *json, ck_arena *a, int deltas) {
  memset(s, 0, sizeof(*s));
  ck_buf_init(&s->pending, 0);
  if (hc_open(&s->c, port, 20000) != 0)
    return -1;
  ck_buf req;
  ck_buf_init(&req, 0);
  hc_format(&req, "POST", "/chatkit", NULL, json, strlen(json));
  int rc = hc_send(&s->c, req.data, req.len);
  ck_buf_free(&req);
  hc_response head;
  memset(&head, 0, sizeof(head));
  if (rc != 0 || hc_read_head(&s->c, &head) != 0 || head.status != 200) {
    hc_response_free(&head);
    return live_close(s, -1);
  }
  hc_response_free(&head);
  while (s->deltas < deltas) {
    ck_json *ev = NULL;
    if (hc_sse_next(&s->c, &s->pending, a, &ev) != 1)
      return live_close(s, -1);
    live_event(s, ev);
  }
  return 0;
}

int hc_live_finish(hc_live *s, ck_arena *a) {
  for (;;) {
    ck_json *ev = NULL;
    int rc = hc_sse_next(&s->c, &s->pending, a, &ev);
    if (rc <= 0)
      return live_close(s, rc);
    live_event(s, ev);
  }
}
