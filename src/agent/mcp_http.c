/* The MCP Streamable HTTP transport: every message is a POST to the server's endpoint.
 *
 * A request's answer is either a JSON body or an SSE stream that carries the response (maybe
 * after notifications and requests from the server, which go to the core as they arrive; the
 * stream is dropped once the response is in). The session id the server gives at initialize
 * goes on every later request, with the negotiated protocol version; a 404 on a request that
 * carried a session means the server forgot it, and the core starts a new one.
 *
 * Each POST is a curl easy transfer on the calling thread, so concurrent calls are concurrent
 * requests. Messages the server sends on its own (notifications/tools/list_changed above all)
 * come on the optional GET stream, which a listener thread keeps open while there is a session
 * (see listen_main); list_changed on a POST stream is taken too. */
#include "agent/mcp_internal.h"
#include "upstream/sse.h"
#include "util/errbuf.h"

#include <chatkit/error.h>
#include <chatkit/model.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

/* A session id longer than this is not one we keep (the spec's ids are short tokens). */
#define MAX_SESSION_ID 256
/* Ending a session on close is a courtesy: it must not hold up the shutdown. */
#define DELETE_TIMEOUT_MS 2000
/* The GET stream is reopened after it ends or fails, waiting this long at first, doubling up
 * to the maximum while it keeps failing. */
#define LISTEN_RETRY_MS 500
#define LISTEN_RETRY_MAX_MS 30000

struct ck__mcp_http {
  char *url;
  char **headers; /* the caller's extra headers (copies), NULL-terminated */
  char *session;  /* guarded by m->mu; NULL until initialize answered with one */
  /* The listener thread and its GET stream, guarded by lmu. */
  pthread_mutex_t lmu;
  pthread_cond_t lcv; /* signalled on stop and when a session arrives */
  pthread_t listener;
  bool listening;       /* the thread was started and not joined yet */
  bool stop;            /* the thread must end */
  curl_socket_t get_fd; /* the GET stream's socket while one is open */
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

/* The request's header list: the `n` fixed lines (NULL entries skipped), then the caller's
 * extra headers. Sets *ok to false when out of memory. */
static struct curl_slist *header_list(const char *const *fixed, size_t n, char **extra, bool *ok) {
  struct curl_slist *hdrs = NULL, *tmp = NULL;
  for (size_t i = 0; i < n; i++)
    if (fixed[i] != NULL && *ok)
      *ok = (tmp = curl_slist_append(hdrs, fixed[i])) != NULL && (hdrs = tmp) != NULL;
  for (size_t i = 0; extra[i] != NULL && *ok; i++)
    *ok = (tmp = curl_slist_append(hdrs, extra[i])) != NULL && (hdrs = tmp) != NULL;
  return hdrs;
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
  struct curl_slist *hdrs = header_list(fixed, sizeof(fixed) / sizeof(fixed[0]), h->headers, &ok);
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
    pthread_mutex_lock(&h->lmu);
    pthread_cond_broadcast(&h->lcv); /* the listener may open the GET stream now */
    pthread_mutex_unlock(&h->lmu);
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

/* ---- The GET stream ---------------------------------------------------------------------- */

/* One GET stream: its SSE parser and the arena each message is parsed into. */
typedef struct listen_ctx {
  ck_mcp *m;
  ck_arena *a;
  ck__sse parser;
  bool sse;
} listen_ctx;

static int on_listen_event(void *ud, const char *event, size_t event_len, const char *data,
                           size_t data_len) {
  listen_ctx *l = ud;
  if (strcmp(event, "message") != 0 || data_len == 0)
    return 0;
  ck_arena_reset(l->a);
  ck_json *v = NULL;
  if (ck_json_parse(l->a, data, data_len, 0, &v, NULL) != CK_OK)
    return 0; /* not JSON: skipped, the stream goes on */
  if (ck_json_is_object(v))
    ck__mcp_incoming(l->m, v);
  for (size_t i = 0; ck_json_is_array(v) && i < ck_json_array_size(v); i++)
    if (ck_json_is_object(ck_json_array_get(v, i)))
      ck__mcp_incoming(l->m, ck_json_array_get(v, i));
  return 0;
}

static size_t on_listen_header(char *data, size_t size, size_t nmemb, void *ud) {
  listen_ctx *l = ud;
  size_t n = size * nmemb;
  if (n >= 13 && strncasecmp(data, "content-type:", 13) == 0) {
    size_t v = 13;
    while (v < n && (data[v] == ' ' || data[v] == '\t'))
      v++;
    l->sse = n - v >= 17 && strncasecmp(data + v, "text/event-stream", 17) == 0;
  }
  return n;
}

static size_t on_listen_body(char *data, size_t size, size_t nmemb, void *ud) {
  listen_ctx *l = ud;
  size_t n = size * nmemb;
  if (!l->sse)
    return n; /* an error body: ignored, the status says enough */
  return ck__sse_feed(&l->parser, data, n) == CK_OK ? n : 0;
}

/* The GET stream's socket is opened and closed here so that a stopping thread can shut it
 * down (which ends the blocking transfer at once) without racing curl's close of it. */
static curl_socket_t listen_open_socket(void *ud, curlsocktype purpose,
                                        struct curl_sockaddr *addr) {
  ck__mcp_http *h = ud;
  curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  pthread_mutex_lock(&h->lmu);
  if (fd != CURL_SOCKET_BAD && h->stop) {
    close(fd);
    fd = CURL_SOCKET_BAD;
  }
  h->get_fd = fd;
  pthread_mutex_unlock(&h->lmu);
  return fd;
}

static int listen_close_socket(void *ud, curl_socket_t fd) {
  ck__mcp_http *h = ud;
  pthread_mutex_lock(&h->lmu);
  if (h->get_fd == fd)
    h->get_fd = CURL_SOCKET_BAD;
  close(fd);
  pthread_mutex_unlock(&h->lmu);
  return 0;
}

/* Holds one GET stream open until it ends; returns the HTTP status (0: no answer). */
static long listen_once(ck_mcp *m, const char *session) {
  ck__mcp_http *h = m->http;
  listen_ctx l;
  memset(&l, 0, sizeof(l));
  l.m = m;
  l.a = ck_arena_new(1024);
  ck__sse_init(&l.parser, CK_MCP_MAX_MESSAGE, on_listen_event, &l);
  char protocol[32];
  ck__mcp_protocol(m, protocol, sizeof(protocol));
  char line[MAX_SESSION_ID + 32], pline[64];
  snprintf(line, sizeof(line), "Mcp-Session-Id: %s", session);
  snprintf(pline, sizeof(pline), "MCP-Protocol-Version: %s", protocol);
  const char *fixed[] = {"Accept: text/event-stream", line, protocol[0] ? pline : NULL};
  bool ok = l.a != NULL;
  struct curl_slist *hdrs = header_list(fixed, sizeof(fixed) / sizeof(fixed[0]), h->headers, &ok);
  CURL *c = ok ? curl_easy_init() : NULL;
  long status = 0;
  if (c != NULL) {
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)m->timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "chatkit-server");
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_listen_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &l);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_listen_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &l);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, listen_open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, h);
    curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, listen_close_socket);
    curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, h);
    /* A stream that stays open is the point: no total timeout, and no connection reuse (a
     * socket this thread shut down must not be handed to anyone). */
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
  }
  curl_slist_free_all(hdrs);
  ck__sse_free(&l.parser);
  ck_arena_free(l.a);
  return status;
}

/* Waits, up to `ms` (or for ever when negative), for a stop or a session other than `not`.
 * Returns the session (heap), or NULL when stopping. */
static char *listen_wait(ck_mcp *m, const char * not, long ms) {
  ck__mcp_http *h = m->http;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  long long ns = (long long)until.tv_nsec + (long long)(ms < 0 ? 0 : ms) * 1000000LL;
  until.tv_sec += (time_t)(ns / 1000000000LL);
  until.tv_nsec = (long)(ns % 1000000000LL);
  char *session = NULL;
  pthread_mutex_lock(&h->lmu);
  for (;;) {
    if (h->stop)
      break;
    pthread_mutex_lock(&m->mu);
    bool usable = h->session != NULL && (not == NULL || strcmp(h->session, not ) != 0);
    session = usable ? strdup(h->session) : NULL;
    pthread_mutex_unlock(&m->mu);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    bool waited = ms <= 0 || now.tv_sec > until.tv_sec ||
                  (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec);
    if (session != NULL && waited)
      break;
    free(session);
    session = NULL;
    if (ms > 0 && !waited)
      pthread_cond_timedwait(&h->lcv, &h->lmu, &until);
    else
      pthread_cond_wait(&h->lcv, &h->lmu);
  }
  pthread_mutex_unlock(&h->lmu);
  return session;
}

/* The listener: while the transport is open, keeps a GET stream open on the current session
 * so that the server can tell us things between requests. A server without one answers 405:
 * the listener then ends (the transport's next open tries again). A 404 means the session is
 * gone: wait for the next one. Anything else (the stream ended, a network error, a 5xx) is
 * retried after a pause that doubles while it keeps failing. */
static void *listen_main(void *arg) {
  ck_mcp *m = arg;
  char *refused = NULL; /* a session the server refused the stream for */
  long pause = 0, backoff = LISTEN_RETRY_MS;
  for (;;) {
    char *session = listen_wait(m, refused, pause);
    if (session == NULL)
      break;
    int64_t t0 = ck__mcp_now_ms();
    long status = listen_once(m, session);
    if (status == 405 || status == 501) {
      free(session);
      break;
    }
    if (status == 404 || status == 400) {
      free(refused);
      refused = session;
      pause = 0;
      continue;
    }
    free(session);
    /* A stream that stayed up a while was healthy: start the backoff over. */
    if (ck__mcp_now_ms() - t0 > LISTEN_RETRY_MAX_MS)
      backoff = LISTEN_RETRY_MS;
    pause = backoff;
    backoff = backoff * 2 > LISTEN_RETRY_MAX_MS ? LISTEN_RETRY_MAX_MS : backoff * 2;
  }
  free(refused);
  return NULL;
}

/* Ends the listener and its GET stream, and waits for the thread. */
static void listen_stop(ck__mcp_http *h) {
  pthread_mutex_lock(&h->lmu);
  bool was = h->listening;
  h->stop = true;
  if (h->get_fd != CURL_SOCKET_BAD)
    shutdown(h->get_fd, SHUT_RDWR); /* the blocking transfer sees the end at once */
  pthread_cond_broadcast(&h->lcv);
  pthread_mutex_unlock(&h->lmu);
  if (was)
    pthread_join(h->listener, NULL);
  pthread_mutex_lock(&h->lmu);
  h->listening = false;
  pthread_mutex_unlock(&h->lmu);
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

/* The handshake's POST creates the session; the listener waits for it to open the GET stream.
 * Without a thread there is no GET stream, which the protocol allows: not an error. */
static int http_open(ck_mcp *m, char *err, size_t errlen) {
  ck__mcp_http *h = m->http;
  pthread_mutex_lock(&h->lmu);
  h->stop = false;
  if (!h->listening) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    h->listening = pthread_create(&h->listener, &attr, listen_main, m) == 0;
    pthread_attr_destroy(&attr);
  }
  pthread_mutex_unlock(&h->lmu);
  return CK_OK;
}

/* Ends the session (best effort) and forgets it. */
static void http_shut(ck_mcp *m) {
  ck__mcp_http *h = m->http;
  if (h == NULL)
    return;
  listen_stop(h);
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
  listen_stop(h); /* normally done by http_shut already */
  for (size_t i = 0; h->headers != NULL && h->headers[i] != NULL; i++)
    free(h->headers[i]);
  free(h->headers);
  free(h->url);
  free(h->session);
  pthread_mutex_destroy(&h->lmu);
  pthread_cond_destroy(&h->lcv);
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
  pthread_mutex_init(&h->lmu, NULL);
  pthread_cond_init(&h->lcv, NULL);
  h->get_fd = CURL_SOCKET_BAD;
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
