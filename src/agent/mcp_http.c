/* The MCP Streamable HTTP transport: every message is a POST to the server's endpoint.
 *
 * A request's answer is either a JSON body or an SSE stream that carries the response (maybe
 * after notifications and requests from the server, which go to the core as they arrive; the
 * stream is dropped once the response is in). The session id the server gives at initialize
 * goes on every later request, with the negotiated protocol version; a 404 on a request that
 * carried a session means the server forgot it, and the core starts a new one.
 *
 * Each POST is a curl easy transfer on the calling thread, so concurrent calls are concurrent
 * requests. The optional GET stream for unsolicited server messages is not opened: tool calls
 * do not need it, and list_changed notifications still arrive on the POST streams. */
#include "agent/mcp_internal.h"
#include "upstream/sse.h"
#include "util/errbuf.h"

#include <chatkit/error.h>
#include <chatkit/model.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* A session id longer than this is not one we keep (the spec's ids are short tokens). */
#define MAX_SESSION_ID 256
/* Ending a session on close is a courtesy: it must not hold up the shutdown. */
#define DELETE_TIMEOUT_MS 2000

struct ck__mcp_http {
  char *url;
  char **headers; /* the caller's extra headers (copies), NULL-terminated */
  char *session;  /* guarded by m->mu; NULL until initialize answered with one */
};

/* ---- One POST ---- */

typedef struct post {
  ck_mcp *m;
  ck_arena *a;
  int64_t want; /* the response id we wait for; -1 for none */
  bool sse, head_done;
  ck_buf body; /* a JSON answer */
  ck__sse parser;
  ck_json *response;
  char session[MAX_SESSION_ID + 1];
  bool bad_message; /* an SSE event that was not JSON */
} post;

/* Hands one parsed message to the waiting request or to the core. Returns true when it was
 * the response we wait for. */
static bool take_message(post *p, ck_json *msg) {
  int64_t id = 0;
  if (p->want >= 0 && ck_json_object_get(msg, "method") == NULL && ck__mcp_response_id(msg, &id) &&
      id == p->want) {
    p->response = msg;
    return true;
  }
  ck__mcp_incoming(p->m, msg);
  return false;
}

/* A JSON text holding one message or a batch of them. */
static bool take_json(post *p, const char *text, size_t len) {
  ck_json *v = NULL;
  if (ck_json_parse(p->a, text, len, 0, &v, NULL) != CK_OK) {
    p->bad_message = true;
    return false;
  }
  if (ck_json_is_object(v))
    return take_message(p, v);
  bool found = false;
  for (size_t i = 0; i < ck_json_array_size(v); i++)
    if (ck_json_is_object(ck_json_array_get(v, i)))
      found = take_message(p, ck_json_array_get(v, i)) || found;
  return found;
}

static int on_sse_event(void *ud, const char *event, size_t event_len, const char *data,
                        size_t data_len) {
  post *p = ud;
  if (strcmp(event, "message") != 0 || data_len == 0)
    return 0;
  /* Stop reading once our response is in: the server may keep the stream open. */
  return take_json(p, data, data_len) ? 1 : 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
  post *p = ud;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new head (after a 100 or a redirect) */
    p->sse = false;
    p->session[0] = '\0';
    return n;
  }
  size_t colon = 0;
  while (colon < n && data[colon] != ':')
    colon++;
  if (colon == n)
    return n;
  size_t v = colon + 1, end = n;
  while (v < end && (data[v] == ' ' || data[v] == '\t'))
    v++;
  while (end > v && isspace((unsigned char)data[end - 1]))
    end--;
  if (colon == 14 && strncasecmp(data, "mcp-session-id", 14) == 0 && end - v <= MAX_SESSION_ID) {
    bool visible = true;
    for (size_t i = v; i < end; i++)
      visible = visible && data[i] > 0x20 && data[i] < 0x7f;
    if (visible) {
      memcpy(p->session, data + v, end - v);
      p->session[end - v] = '\0';
    }
  } else if (colon == 12 && strncasecmp(data, "content-type", 12) == 0) {
    p->sse = end - v >= 17 && strncasecmp(data + v, "text/event-stream", 17) == 0;
  }
  return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  post *p = ud;
  size_t n = size * nmemb;
  if (p->sse) {
    /* Returning less than given ends the transfer: the response arrived or a cap was hit. */
    return ck__sse_feed(&p->parser, data, n) == CK_OK ? n : 0;
  }
  return ck_buf_append(&p->body, data, n) == CK_OK ? n : 0;
}

/* POSTs (or, with `method` "DELETE", deletes the session with) one message. */
static int http_post(ck_mcp *m, ck_arena *a, const char *method, int64_t want, const char *text,
                     size_t len, int timeout_ms, ck_json **response, char *err, size_t errlen) {
  ck__mcp_http *h = m->http;
  post p;
  memset(&p, 0, sizeof(p));
  p.m = m;
  p.a = a;
  p.want = want;
  ck_buf_init(&p.body, CK_MCP_MAX_MESSAGE);
  ck__sse_init(&p.parser, CK_MCP_MAX_MESSAGE, on_sse_event, &p);
  char protocol[32], msg[320];
  ck__mcp_protocol(m, protocol, sizeof(protocol));
  struct curl_slist *hdrs = NULL, *tmp = NULL;
  char *session_header = NULL;
  pthread_mutex_lock(&m->mu);
  bool had_session = h->session != NULL;
  if (had_session)
    session_header = ck_arena_printf(a, "Mcp-Session-Id: %s", h->session);
  pthread_mutex_unlock(&m->mu);
  const char *fixed[] = {
      "Content-Type: application/json", "Accept: application/json, text/event-stream",
      protocol[0] ? ck_arena_printf(a, "MCP-Protocol-Version: %s", protocol) : NULL,
      session_header};
  bool ok = true;
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    if (fixed[i] != NULL && ok)
      ok = (tmp = curl_slist_append(hdrs, fixed[i])) != NULL && (hdrs = tmp) != NULL;
  for (size_t i = 0; h->headers[i] != NULL && ok; i++)
    ok = (tmp = curl_slist_append(hdrs, h->headers[i])) != NULL && (hdrs = tmp) != NULL;
  CURL *c = ok ? curl_easy_init() : NULL;
  int rc = CK_EIO;
  if (c == NULL) {
    ck__errs(err, errlen, "out of memory");
    rc = CK_ENOMEM;
    goto done;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, h->url);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  /* Debian's libcurl has a CA path, which disables the CA cache (see src/upstream/client.c). */
  curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "chatkit-server");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &p);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &p);
  CURLcode cc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (p.session[0] != '\0' && strcmp(method, "DELETE") != 0) {
    char *s = strdup(p.session);
    pthread_mutex_lock(&m->mu);
    if (s != NULL) {
      free(h->session);
      h->session = s;
    }
    pthread_mutex_unlock(&m->mu);
  }
  if (p.response != NULL) { /* an SSE stream we ended ourselves once the response came */
    rc = CK_OK;
  } else if (cc == CURLE_OPERATION_TIMEDOUT) {
    snprintf(msg, sizeof(msg), "no answer from the MCP server within %d ms", timeout_ms);
    ck__errs(err, errlen, msg);
  } else if (cc == CURLE_WRITE_ERROR) {
    snprintf(msg, sizeof(msg), "the MCP server sent a message over %zu bytes",
             (size_t)CK_MCP_MAX_MESSAGE);
    ck__errs(err, errlen, msg);
  } else if (cc != CURLE_OK) {
    snprintf(msg, sizeof(msg), "cannot reach the MCP server: %.200s",
             errbuf[0] ? errbuf : curl_easy_strerror(cc));
    ck__errs(err, errlen, msg);
  } else if (status == 404 && had_session) {
    rc = CK_ESTATE;
  } else if (status < 200 || status > 299) {
    snprintf(msg, sizeof(msg), "the MCP server answered HTTP %ld: %.200s", status,
             p.body.data ? p.body.data : "");
    ck__errs(err, errlen, msg);
  } else if (p.sse) {
    ck__sse_finish(&p.parser);
    rc = p.response != NULL || want < 0 ? CK_OK : CK_EIO;
    if (rc != CK_OK)
      ck__errs(err, errlen, "the MCP server's event stream ended without the response");
  } else if (want < 0) {
    rc = CK_OK; /* 202 Accepted, or any 2xx, for a notification or a response */
  } else if (p.body.len > 0 && take_json(&p, p.body.data, p.body.len)) {
    rc = CK_OK;
  } else {
    ck__errs(err, errlen,
             p.bad_message ? "the MCP server's answer is not JSON"
                           : "the MCP server's answer does not hold the response");
  }
done:
  if (rc == CK_OK && response != NULL)
    *response = p.response;
  curl_slist_free_all(hdrs);
  ck_buf_free(&p.body);
  ck__sse_free(&p.parser);
  return rc;
}

static int http_rpc(ck_mcp *m, ck_arena *a, int64_t id, const char *text, size_t len,
                    ck_json **response, char *err, size_t errlen) {
  return http_post(m, a, "POST", id, text, len, m->timeout_ms, response, err, errlen);
}

static int http_send(ck_mcp *m, const char *text, size_t len, char *err, size_t errlen) {
  ck_arena *a = ck_arena_new(1024);
  if (a == NULL)
    return CK_ENOMEM;
  int rc = http_post(m, a, "POST", -1, text, len, m->timeout_ms, NULL, err, errlen);
  ck_arena_free(a);
  return rc;
}

static int http_open(ck_mcp *m, char *err, size_t errlen) {
  return CK_OK; /* nothing to start: the handshake's POST creates the session */
}

/* Ends the session (best effort) and forgets it. */
static void http_shut(ck_mcp *m) {
  ck__mcp_http *h = m->http;
  if (h == NULL)
    return;
  pthread_mutex_lock(&m->mu);
  bool had = h->session != NULL;
  pthread_mutex_unlock(&m->mu);
  if (had) {
    ck_arena *a = ck_arena_new(1024);
    if (a != NULL)
      http_post(m, a, "DELETE", -1, NULL, 0, DELETE_TIMEOUT_MS, NULL, NULL, 0);
    ck_arena_free(a);
  }
  pthread_mutex_lock(&m->mu);
  free(h->session);
  h->session = NULL;
  m->ready = false;
  pthread_mutex_unlock(&m->mu);
}

static void http_destroy(ck_mcp *m) {
  ck__mcp_http *h = m->http;
  if (h == NULL)
    return;
  for (size_t i = 0; h->headers != NULL && h->headers[i] != NULL; i++)
    free(h->headers[i]);
  free(h->headers);
  free(h->url);
  free(h->session);
  free(h);
  m->http = NULL;
}

int ck__mcp_http_new(ck_mcp *m, const char *url, const char *const *headers, char *err,
                     size_t errlen) {
  if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
    ck__errs(err, errlen, "the MCP server URL must be http:// or https://");
    return CK_EINVAL;
  }
  for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
    if (strchr(headers[i], ':') == NULL || strpbrk(headers[i], "\r\n") != NULL) {
      ck__errs(err, errlen, "an MCP header must be one \"Name: value\" line");
      return CK_EINVAL;
    }
  }
  if (ck_model_global_init() != CK_OK) {
    ck__errs(err, errlen, "libcurl cannot be initialised");
    return CK_EIO;
  }
  ck__mcp_http *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return CK_ENOMEM;
  m->http = h;
  size_t n = 0;
  while (headers != NULL && headers[n] != NULL)
    n++;
  h->url = strdup(url);
  h->headers = calloc(n + 1, sizeof(*h->headers));
  if (h->url == NULL || h->headers == NULL)
    goto oom;
  for (size_t i = 0; i < n; i++)
    if ((h->headers[i] = strdup(headers[i])) == NULL)
      goto oom;
  return CK_OK;
oom:
  ck__errs(err, errlen, "out of memory");
  return CK_ENOMEM;
}

const ck__mcp_ops ck__mcp_http_ops = {http_open, http_shut, http_rpc, http_send, http_destroy};
