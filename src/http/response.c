/* Responses: full responses with Content-Length, JSON error bodies and chunked streams. */
#include "http/internal.h"

#include <chatkit/error.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A response head never needs more; it bounds what a careless caller can make us build. */
#define MAX_HEAD_BYTES ((size_t)64 * 1024)

const char *ck_http_reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Content Too Large";
  case 415:
    return "Unsupported Media Type";
  case 417:
    return "Expectation Failed";
  case 422:
    return "Unprocessable Content";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}

/* Header names are tokens; values may not contain CR, LF or NUL (response splitting). */
static int header_ok(const ck_http_header *h) {
  if (h->name == NULL || h->value == NULL || h->name[0] == '\0')
    return 0;
  for (const unsigned char *s = (const unsigned char *)h->name; *s; s++) {
    if (*s <= ' ' || *s >= 127 || *s == ':')
      return 0;
  }
  return strpbrk(h->value, "\r\n") == NULL;
}

static int headers_ok(const ck_http_header *extra) {
  for (const ck_http_header *h = extra; h != NULL && h->name != NULL; h++) {
    if (!header_ok(h))
      return 0;
  }
  return 1;
}

/* Builds the head. `clen` < 0 means no Content-Length. `conn_hdr` is 0 (none), 1 (close) or
 * 2 (keep-alive, for HTTP/1.0 clients). */
/* Appends a non-negative integer in decimal (the head is built on every response, so no
 * printf). */
static int put_uint(ck_buf *h, unsigned long long v) {
  char digits[24];
  size_t i = sizeof(digits);
  do {
    digits[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  return ck_buf_append(h, digits + i, sizeof(digits) - i);
}

/* Appends "Name: value\r\n". */
static int put_header(ck_buf *h, const char *name, const char *value) {
  int rc = ck_buf_puts(h, name);
  if (rc == CK_OK)
    rc = ck_buf_append(h, ": ", 2);
  if (rc == CK_OK)
    rc = ck_buf_puts(h, value);
  if (rc == CK_OK)
    rc = ck_buf_append(h, "\r\n", 2);
  return rc;
}

static int build_head(ck_buf *h, int status, const char *ctype, long long clen, int chunked,
                      int conn_hdr, const ck_http_header *extra) {
  int rc = ck_buf_append(h, "HTTP/1.1 ", 9);
  if (rc == CK_OK)
    rc = put_uint(h, (unsigned long long)status);
  if (rc == CK_OK)
    rc = ck_buf_putc(h, ' ');
  if (rc == CK_OK)
    rc = ck_buf_puts(h, ck_http_reason(status));
  if (rc == CK_OK)
    rc = ck_buf_append(h, "\r\n", 2);
  if (rc == CK_OK && ctype != NULL)
    rc = put_header(h, "Content-Type", ctype);
  if (rc == CK_OK && clen >= 0) {
    rc = ck_buf_puts(h, "Content-Length: ");
    if (rc == CK_OK)
      rc = put_uint(h, (unsigned long long)clen);
    if (rc == CK_OK)
      rc = ck_buf_append(h, "\r\n", 2);
  }
  if (rc == CK_OK && chunked)
    rc = ck_buf_puts(h, "Transfer-Encoding: chunked\r\n");
  for (const ck_http_header *x = extra; rc == CK_OK && x != NULL && x->name != NULL; x++)
    rc = put_header(h, x->name, x->value);
  if (rc == CK_OK && conn_hdr == 1)
    rc = ck_buf_puts(h, "Connection: close\r\n");
  if (rc == CK_OK && conn_hdr == 2)
    rc = ck_buf_puts(h, "Connection: keep-alive\r\n");
  if (rc == CK_OK)
    rc = ck_buf_puts(h, "\r\n");
  return rc;
}

/* Checks that `req` may start a response now. */
static int can_begin(ck__http_req *r, int status, const char *ctype, const ck_http_header *h) {
  if (r->aborted || r->conn == NULL || r->conn->dead || r->conn->closed)
    return r->state == CK__REQ_DONE ? CK_ESTATE : CK_ECANCELLED;
  if (r->state != CK__REQ_DISPATCHED)
    return CK_ESTATE;
  if (status < 200 || status > 999)
    return CK_EINVAL;
  if (ctype != NULL && strpbrk(ctype, "\r\n") != NULL)
    return CK_EINVAL;
  if (!headers_ok(h))
    return CK_EINVAL;
  return CK_OK;
}

/* Decides whether the connection closes after this response and which header says so. */
static int connection_header(ck__http_req *r, int force_close) {
  ck__http_conn *c = r->conn;
  r->close_after = force_close || !r->keep_alive || c->srv->closing || c->closing;
  if (r->close_after)
    return 1;
  return r->pub.http_minor == 0 ? 2 : 0;
}

int ck_http_respond(ck_http_request *req, int status, const char *content_type, const void *body,
                    size_t len, const ck_http_header *extra) {
  if (req == NULL || (body == NULL && len > 0))
    return CK_EINVAL;
  ck__http_req *r = (ck__http_req *)req;
  int rc = can_begin(r, status, content_type, extra);
  if (rc != CK_OK)
    return rc;
  if (len > UINT32_MAX)
    return CK_EINVAL; /* uv_buf_t lengths are unsigned int on Linux */
  int no_body = status == 204 || status == 304;
  int conn_hdr = connection_header(r, 0);
  ck_buf head;
  ck_buf_init(&head, MAX_HEAD_BYTES);
  rc = build_head(&head, status, content_type, no_body ? -1 : (long long)len, 0, conn_hdr, extra);
  if (rc == CK_OK) {
    uv_buf_t bufs[2] = {uv_buf_init(head.data, (unsigned)head.len),
                        uv_buf_init((char *)(uintptr_t)body, (unsigned)len)};
    unsigned n = (r->is_head || no_body || len == 0 || body == NULL) ? 1 : 2;
    rc = ck__http_conn_write(r->conn, bufs, n);
  }
  ck_buf_free(&head);
  if (rc != CK_OK)
    return rc == CK_ETOOBIG ? CK_EINVAL : rc;
  r->state = CK__REQ_DONE;
  ck__http_conn_response_done(r->conn);
  return CK_OK;
}

/* Appends `s` as the inside of a JSON string. Invalid UTF-8 becomes U+FFFD so the output is
 * always valid JSON whatever the caller passed. */
static int json_escape(ck_buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
  int rc = CK_OK;
  while (*p && rc == CK_OK) {
    unsigned char ch = *p;
    if (ch == '"' || ch == '\\') {
      char esc[2] = {'\\', (char)ch};
      rc = ck_buf_append(b, esc, 2);
      p++;
    } else if (ch < 0x20) {
      static const char hex[] = "0123456789abcdef";
      char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
      if (ch == '\n')
        rc = ck_buf_puts(b, "\\n");
      else if (ch == '\r')
        rc = ck_buf_puts(b, "\\r");
      else if (ch == '\t')
        rc = ck_buf_puts(b, "\\t");
      else
        rc = ck_buf_append(b, esc, 6);
      p++;
    } else if (ch < 0x80) {
      rc = ck_buf_putc(b, (char)ch);
      p++;
    } else {
      /* Validate one UTF-8 sequence: length, continuation bytes, overlongs, surrogates. */
      size_t n = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 0;
      uint32_t cp = n == 4 ? ch & 7u : n == 3 ? ch & 15u : ch & 31u;
      size_t i = 1;
      for (; n > 0 && i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
          break;
        cp = (cp << 6) | (p[i] & 0x3Fu);
      }
      int ok = n > 0 && i == n && ch <= 0xF4;
      if (ok) {
        uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
        ok = cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
      }
      if (ok) {
        rc = ck_buf_append(b, p, n);
        p += n;
      } else {
        rc = ck_buf_puts(b, "\xEF\xBF\xBD");
        p += i > 0 ? i : 1; /* skip the bad lead byte and any continuation bytes read */
      }
    }
  }
  return rc;
}

int ck__http_json_error(ck_buf *b, const char *code, const char *message) {
  int rc = ck_buf_puts(b, "{\"error\":{\"code\":\"");
  if (rc == CK_OK)
    rc = json_escape(b, code);
  if (rc == CK_OK)
    rc = ck_buf_puts(b, "\",\"message\":\"");
  if (rc == CK_OK)
    rc = json_escape(b, message);
  if (rc == CK_OK)
    rc = ck_buf_puts(b, "\"}}");
  return rc;
}

int ck_http_respond_error(ck_http_request *req, int status, const char *code, const char *message) {
  ck_buf b;
  ck_buf_init(&b, 0);
  int rc = ck__http_json_error(&b, code, message);
  if (rc == CK_OK)
    rc = ck_http_respond(req, status, "application/json", b.data, b.len, NULL);
  ck_buf_free(&b);
  return rc;
}

/* Checks that `req` has an open stream. */
static int can_stream(ck__http_req *r) {
  if (r->state == CK__REQ_DONE)
    return CK_ESTATE;
  if (r->aborted || r->conn == NULL || r->conn->dead || r->conn->closed)
    return CK_ECANCELLED;
  if (r->state != CK__REQ_STREAMING)
    return CK_ESTATE;
  return CK_OK;
}

int ck_http_stream_send(ck_http_request *req, int flags, int status, const ck_http_header *headers,
                        const void *data, size_t len) {
  if (req == NULL || (data == NULL && len > 0) || (flags & ~CK_HTTP_STREAM_ALL) != 0)
    return CK_EINVAL;
  if (len > UINT32_MAX)
    return CK_EINVAL; /* uv_buf_t lengths are unsigned int on Linux */
  ck__http_req *r = (ck__http_req *)req;
  bool begin = (flags & CK_HTTP_STREAM_BEGIN) != 0, end = (flags & CK_HTTP_STREAM_END) != 0;
  int rc;
  if (begin) {
    rc = can_begin(r, status, NULL, headers);
    if (rc == CK_OK && (status == 204 || status == 304))
      rc = CK_EINVAL; /* those never carry a body to stream */
  } else {
    rc = can_stream(r);
  }
  if (rc != CK_OK)
    return rc;
  /* Up to five pieces, one write: head, chunk size line, data, chunk CRLF, last chunk. */
  uv_buf_t bufs[5];
  unsigned n = 0;
  char size_line[24];
  ck_buf head;
  ck_buf_init(&head, MAX_HEAD_BYTES);
  if (begin) {
    /* HTTP/1.0 has no chunked encoding: the end of the body is the end of the connection. */
    r->chunked = r->pub.http_minor >= 1;
    rc =
        build_head(&head, status, NULL, -1, r->chunked, connection_header(r, !r->chunked), headers);
    if (rc != CK_OK) {
      rc = rc == CK_ETOOBIG ? CK_EINVAL : rc;
      goto done;
    }
    bufs[n++] = uv_buf_init(head.data, (unsigned)head.len);
  }
  if (len > 0 && !r->is_head) {
    char *body = (char *)(uintptr_t)data;
    if (r->chunked) {
      int k = snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
      bufs[n++] = uv_buf_init(size_line, (unsigned)k);
      bufs[n++] = uv_buf_init(body, (unsigned)len);
      bufs[n++] = uv_buf_init("\r\n", 2);
    } else {
      bufs[n++] = uv_buf_init(body, (unsigned)len);
    }
  }
  if (end && r->chunked && !r->is_head)
    bufs[n++] = uv_buf_init("0\r\n\r\n", 5);
  rc = n > 0 ? ck__http_conn_write(r->conn, bufs, n) : CK_OK;
  if (rc != CK_OK)
    goto done;
  r->state = end ? CK__REQ_DONE : CK__REQ_STREAMING;
  if (end)
    ck__http_conn_response_done(r->conn);
done:
  ck_buf_free(&head);
  return rc;
}

int ck_http_stream_begin(ck_http_request *req, int status, const ck_http_header *headers) {
  return ck_http_stream_send(req, CK_HTTP_STREAM_BEGIN, status, headers, NULL, 0);
}

int ck_http_stream_write(ck_http_request *req, const void *data, size_t len) {
  return ck_http_stream_send(req, 0, 0, NULL, data, len);
}

int ck_http_stream_end(ck_http_request *req) {
  return ck_http_stream_send(req, CK_HTTP_STREAM_END, 0, NULL, NULL, 0);
}
