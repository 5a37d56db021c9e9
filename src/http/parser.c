/* Parser glue: http-parser callbacks that build a ck__http_req with every limit enforced.
 *
 * Nothing here touches a socket, so the fuzzer drives this file directly from a buffer. The
 * parser pauses after each complete request (and after a head with Expect: 100-continue) so
 * that a connection never parses request N+1 before it has answered request N.
 */
#include "http/internal.h"

#include <chatkit/error.h>

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

enum { LAST_NONE = 0, LAST_URL = 1, LAST_FIELD = 2, LAST_VALUE = 3 };

/* Bytes a header line costs beyond its name and value (": " and CRLF), so that many tiny
 * headers cannot slip under max_header_bytes. */
#define HEADER_OVERHEAD 4

static int fail(ck__http_parser *p, int status, const char *msg) {
  if (p->err_status == 0) {
    p->err_status = status;
    p->err_msg = msg;
  }
  return -1;
}

static const char *tok_str(ck__http_parser *p) {
  return p->tok.len > 0 ? p->tok.data : "";
}

static int on_message_begin(http_parser *hp) {
  ck__http_parser *p = hp->data;
  ck__http_req_unref(p->req);
  p->req = ck__http_req_new(p->lim.max_body_bytes);
  if (p->req == NULL)
    return fail(p, 503, "out of memory");
  p->phase = CK__HP_HEAD;
  p->head_bytes = 0;
  p->last = LAST_NONE;
  p->field = NULL;
  p->has_te = 0;
  p->te_chunked = 1;
  p->has_expect = 0;
  ck_buf_reset(&p->tok);
  return 0;
}

/* Counts head bytes against the cap and, outside trailers, keeps them in the token buffer. */
static int add_bytes(ck__http_parser *p, const char *at, size_t len) {
  p->head_bytes += len;
  if (p->head_bytes > p->lim.max_header_bytes)
    return fail(p, 431, "request header fields too large");
  if (p->phase != CK__HP_HEAD)
    return 0; /* trailers are counted but dropped: the handler never sees them */
  if (memchr(at, '\0', len) != NULL)
    return fail(p, 400, "NUL byte in request head");
  if (ck_buf_append(&p->tok, at, len) != CK_OK)
    return fail(p, 431, "request header fields too large");
  return 0;
}

static int commit_url(ck__http_parser *p) {
  ck__http_req *r = p->req;
  const char *url = tok_str(p);
  size_t n = p->tok.len;
  if (n == 0)
    return fail(p, 400, "empty request target");
  if (p->hp.method == HTTP_CONNECT)
    return fail(p, 501, "CONNECT is not supported"); /* its target is host:port, not a path */
  /* Absolute-form targets (http://host/path) are reduced to their path. */
  size_t start = 0;
  if (url[0] != '/' && url[0] != '*') {
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, n, 0, &u) != 0)
      return fail(p, 400, "malformed request target");
    start = (u.field_set & (1 << UF_PATH)) ? u.field_data[UF_PATH].off : n;
  }
  const char *end = url + n;
  const char *hash = memchr(url + start, '#', n - start);
  if (hash != NULL)
    end = hash;
  const char *q = memchr(url + start, '?', (size_t)(end - (url + start)));
  const char *path_end = q != NULL ? q : end;
  if (path_end == url + start)
    r->pub.path = ck_arena_strdup(r->pub.arena, "/");
  else
    r->pub.path = ck_arena_strndup(r->pub.arena, url + start, (size_t)(path_end - (url + start)));
  r->pub.query = q != NULL ? ck_arena_strndup(r->pub.arena, q + 1, (size_t)(end - q - 1)) : "";
  if (r->pub.path == NULL || r->pub.query == NULL)
    return fail(p, 503, "out of memory");
  ck_buf_reset(&p->tok);
  return 0;
}

static int commit_header(ck__http_parser *p) {
  ck__http_req *r = p->req;
  if (r->pub.header_count >= p->lim.max_headers)
    return fail(p, 431, "too many request header fields");
  /* http-parser strips leading whitespace of a value; strip the trailing part here. */
  size_t n = p->tok.len;
  const char *v = tok_str(p);
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  char *value = ck_arena_strndup(r->pub.arena, v, n);
  if (value == NULL)
    return fail(p, 503, "out of memory");
  if (r->pub.header_count == r->hdr_cap) {
    size_t cap = r->hdr_cap ? r->hdr_cap * 2 : 8;
    ck_http_header *h = ck_arena_alloc(r->pub.arena, cap * sizeof(*h));
    if (h == NULL)
      return fail(p, 503, "out of memory");
    if (r->pub.header_count > 0)
      memcpy(h, r->hdrs, r->pub.header_count * sizeof(*h));
    r->hdrs = h;
    r->hdr_cap = cap;
    r->pub.headers = h;
  }
  r->hdrs[r->pub.header_count].name = p->field;
  r->hdrs[r->pub.header_count].value = value;
  r->pub.header_count++;
  if (strcasecmp(p->field, "transfer-encoding") == 0) {
    p->has_te = 1;
    if (strcasecmp(value, "chunked") != 0)
      p->te_chunked = 0;
  } else if (strcasecmp(p->field, "expect") == 0) {
    p->has_expect = 1;
    r->expect_continue = strcasecmp(value, "100-continue") == 0;
    if (!r->expect_continue)
      return fail(p, 417, "unsupported expectation");
  }
  ck_buf_reset(&p->tok);
  return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len) {
  ck__http_parser *p = hp->data;
  p->last = LAST_URL;
  return add_bytes(p, at, len);
}

static int on_header_field(http_parser *hp, const char *at, size_t len) {
  ck__http_parser *p = hp->data;
  if (p->last != LAST_FIELD) {
    int rc = 0;
    if (p->phase == CK__HP_HEAD && p->last == LAST_URL)
      rc = commit_url(p);
    else if (p->phase == CK__HP_HEAD && p->last == LAST_VALUE)
      rc = commit_header(p);
    if (rc != 0)
      return rc;
    ck_buf_reset(&p->tok);
    p->head_bytes += HEADER_OVERHEAD;
  }
  p->last = LAST_FIELD;
  return add_bytes(p, at, len);
}

/* RFC 9110 §5.1: a field name is a token. The system's http-parser is built lenient and lets
 * spaces and other separators through, so "Transfer-Encoding : chunked" would reach us as an
 * unknown header while a proxy in front may read it as the real one (request smuggling);
 * RFC 9112 §5.1 requires a 400 for whitespace before the colon. */
static bool is_token(const char *s, size_t n) {
  static const char extra[] = "!#$%&'*+-.^_`|~";
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && (c == '\0' || strchr(extra, c) == NULL))
      return false;
  }
  return true;
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
  ck__http_parser *p = hp->data;
  if (p->last != LAST_VALUE) {
    if (p->phase == CK__HP_HEAD) {
      if (!is_token(tok_str(p), p->tok.len))
        return fail(p, 400, "invalid header field name");
      p->field = ck_arena_strndup(p->req->pub.arena, tok_str(p), p->tok.len);
      if (p->field == NULL)
        return fail(p, 503, "out of memory");
    }
    ck_buf_reset(&p->tok);
  }
  p->last = LAST_VALUE;
  return add_bytes(p, at, len);
}

static int on_headers_complete(http_parser *hp) {
  ck__http_parser *p = hp->data;
  ck__http_req *r = p->req;
  int rc = 0;
  if (p->last == LAST_URL)
    rc = commit_url(p);
  else if (p->last == LAST_VALUE)
    rc = commit_header(p);
  if (rc != 0)
    return rc;
  if (r->pub.path == NULL)
    return fail(p, 400, "missing request target");
  if (hp->http_major != 1)
    return fail(p, 505, "HTTP version not supported");
  if (p->has_te && !p->te_chunked)
    return fail(p, 501, "unsupported transfer encoding");
  if (hp->method == HTTP_CONNECT)
    return fail(p, 501, "CONNECT is not supported");
  r->pub.method = http_method_str((enum http_method)hp->method);
  r->pub.http_minor = hp->http_minor;
  r->keep_alive = http_should_keep_alive(hp) != 0;
  r->is_head = hp->method == HTTP_HEAD;
  int chunked = (hp->flags & F_CHUNKED) != 0;
  int has_len = hp->content_length != ULLONG_MAX && hp->content_length > 0;
  if (has_len && !chunked && hp->content_length > p->lim.max_body_bytes)
    return fail(p, 413, "request body too large");
  ck_buf_free(&p->tok); /* the head is done: give its scratch memory back */
  p->phase = CK__HP_BODY;
  p->head_bytes = 0; /* trailers get their own budget */
  p->last = LAST_NONE;
  /* An HTTP/1.0 client cannot expect 100 Continue (RFC 9110 10.1.1), and neither can one that
   * sends no body. Otherwise stop here so the connection can say 100 Continue first. */
  if (r->expect_continue && (chunked || has_len) && hp->http_minor >= 1)
    http_parser_pause(hp, 1);
  else
    r->expect_continue = 0;
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) {
  ck__http_parser *p = hp->data;
  int rc = ck_buf_append(&p->req->body, at, len);
  if (rc == CK_ETOOBIG)
    return fail(p, 413, "request body too large");
  if (rc != CK_OK)
    return fail(p, 503, "out of memory");
  return 0;
}

static int on_message_complete(http_parser *hp) {
  ck__http_parser *p = hp->data;
  p->phase = CK__HP_READY;
  http_parser_pause(hp, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void ck__http_parser_init(ck__http_parser *p, const ck__http_limits *lim) {
  memset(p, 0, sizeof(*p));
  http_parser_init(&p->hp, HTTP_REQUEST);
  p->hp.data = p;
  p->lim = *lim;
  ck_buf_init(&p->tok, lim->max_header_bytes);
}

void ck__http_parser_free(ck__http_parser *p) {
  if (p == NULL)
    return;
  ck__http_req_unref(p->req);
  p->req = NULL;
  ck_buf_free(&p->tok);
}

ck__http_event ck__http_parser_feed(ck__http_parser *p, const char *data, size_t len,
                                    size_t *used) {
  *used = 0;
  if (p->err_status != 0)
    return CK__HTTP_EV_ERROR;
  if (len == 0 || HTTP_PARSER_ERRNO(&p->hp) == HPE_PAUSED)
    return CK__HTTP_EV_NONE;
  if (p->phase == CK__HP_IDLE)
    p->phase = CK__HP_HEAD; /* even a stray CRLF starts the head timer */
  size_t n = http_parser_execute(&p->hp, &settings, data, len);
  *used = n;
  enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
  if (e == HPE_PAUSED)
    return p->phase == CK__HP_READY ? CK__HTTP_EV_REQUEST : CK__HTTP_EV_CONTINUE;
  if (e != HPE_OK) {
    if (p->err_status == 0) {
      p->err_status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
      p->err_msg = http_errno_description(e);
      if (e == HPE_INVALID_TRANSFER_ENCODING) {
        /* http-parser rejects a non-chunked coding before our head callback sees it. */
        p->err_status = 501;
        p->err_msg = "unsupported transfer encoding";
      }
    }
    return CK__HTTP_EV_ERROR;
  }
  if (n < len) {
    /* Only an upgrade stops the parser early without an error; we do not speak other
     * protocols on this port. */
    fail(p, 400, "protocol upgrade is not supported");
    return CK__HTTP_EV_ERROR;
  }
  return CK__HTTP_EV_NONE;
}

ck__http_req *ck__http_parser_take(ck__http_parser *p) {
  if (p->phase != CK__HP_READY)
    return NULL;
  ck__http_req *r = p->req;
  p->req = NULL;
  r->pub.body = r->body.len > 0 ? r->body.data : "";
  r->pub.body_len = r->body.len;
  if (r->pub.headers == NULL)
    r->pub.headers = r->hdrs;
  return r;
}

void ck__http_parser_resume(ck__http_parser *p) {
  if (p->phase == CK__HP_READY) {
    ck__http_req_unref(p->req); /* a request nobody took */
    p->req = NULL;
    p->phase = CK__HP_IDLE;
  }
  http_parser_pause(&p->hp, 0);
}

int ck__http_parser_status(const ck__http_parser *p, const char **msg) {
  if (msg != NULL)
    *msg = p->err_msg != NULL ? p->err_msg : "bad request";
  return p->err_status != 0 ? p->err_status : 400;
}
