/* The model client: calls, attempts, timeouts, retries and cancellation (see chatkit/model.h
 * and docs/internals/upstream.md). The stream formats live in chat.c and responses.c. */
#include "upstream/model_internal.h"

#include <chatkit/error.h>

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_BASE_URL "https://api.openai.com/v1"
/* After a terminal event the server should end the body at once; this bounds how long a
 * server that keeps the stream open can delay the result. */
#define TERMINAL_GRACE_MS 1000

/* ---- Process-wide libcurl setup --------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = CK_OK;

static void global_init_once(void) {
  global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? CK_OK : CK_EIO;
}

int ck_model_global_init(void) {
  pthread_once(&global_once, global_init_once);
  return global_rc;
}

/* ---- Small helpers ---------------------------------------------------------------------- */

static char *dup_str(const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s);
  char *p = malloc(n + 1);
  if (p)
    memcpy(p, s, n + 1);
  return p;
}

static bool has_crlf(const char *s) {
  return strpbrk(s, "\r\n") != NULL;
}

static uint64_t rng_next(ck_model_client *c) {
  uint64_t x = c->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  c->rng = x;
  return x;
}

/* ---- Client ----------------------------------------------------------------------------- */

static void wipe_free(char *s) {
  if (s == NULL)
    return;
  explicit_bzero(s, strlen(s));
  free(s);
}

static void free_headers(struct curl_slist *h) {
  /* The Authorization line holds the key: wipe every line before libcurl frees it. */
  for (struct curl_slist *p = h; p; p = p->next)
    explicit_bzero(p->data, strlen(p->data));
  curl_slist_free_all(h);
}

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *n = curl_slist_append(*list, line);
  if (n == NULL)
    return CK_ENOMEM;
  *list = n;
  return CK_OK;
}

static int build_headers(ck_model_client *c, const ck_model_config *cfg) {
  int rc = add_header(&c->headers, "Content-Type: application/json");
  if (rc == CK_OK)
    rc = add_header(&c->headers, "Accept: text/event-stream");
  /* Without this curl waits up to a second for "100 Continue" before sending large bodies. */
  if (rc == CK_OK)
    rc = add_header(&c->headers, "Expect:");
  if (rc == CK_OK && c->api_key && c->api_key[0]) {
    ck_buf line;
    ck_buf_init(&line, 0);
    rc = ck_buf_printf(&line, "Authorization: Bearer %s", c->api_key);
    if (rc == CK_OK)
      rc = add_header(&c->headers, line.data);
    if (line.data)
      explicit_bzero(line.data, line.len);
    ck_buf_free(&line);
  }
  for (size_t i = 0; rc == CK_OK && cfg->headers && cfg->headers[i]; i++) {
    const char *h = cfg->headers[i];
    if (has_crlf(h) || strchr(h, ':') == NULL || h[0] == ':')
      return CK_EINVAL;
    rc = add_header(&c->headers, h);
  }
  return rc;
}

ck_model_client *ck_model_client_new(uv_loop_t *loop, const ck_model_config *cfg, int *err) {
  ck_model_config defaults = {0};
  int rc = CK_OK;
  ck_model_client *c = NULL;
  if (cfg == NULL)
    cfg = &defaults;
  if (loop == NULL) {
    rc = CK_EINVAL;
    goto fail;
  }
  if ((rc = ck_model_global_init()) != CK_OK)
    goto fail;
  c = calloc(1, sizeof(*c));
  if (c == NULL) {
    rc = CK_ENOMEM;
    goto fail;
  }
  c->loop = loop;
  c->cfg = *cfg;
  const char *base = cfg->base_url && cfg->base_url[0] ? cfg->base_url : DEFAULT_BASE_URL;
  if ((strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) || has_crlf(base) ||
      (cfg->api_key && has_crlf(cfg->api_key))) {
    rc = CK_EINVAL;
    goto fail;
  }
  c->base_url = dup_str(base);
  c->api_key = dup_str(cfg->api_key);
  c->model = dup_str(cfg->model);
  c->ca_file = dup_str(cfg->ca_file);
  /* A parsed Chat Completions chunk (~400 bytes of JSON) takes about 1.5 KiB; a 1 KiB first
   * block spilled into a 2 KiB one on every event. */
  c->scratch = ck_arena_new(2048);
  if (c->base_url == NULL || (cfg->api_key && !c->api_key) || (cfg->model && !c->model) ||
      (cfg->ca_file && !c->ca_file) || c->scratch == NULL) {
    rc = CK_ENOMEM;
    goto fail;
  }
  size_t bl = strlen(c->base_url);
  while (bl > 0 && c->base_url[bl - 1] == '/')
    c->base_url[--bl] = '\0';
  /* Only these strings outlive the caller's config; clear the borrowed pointers. */
  c->cfg.base_url = c->base_url;
  c->cfg.api_key = NULL;
  c->cfg.headers = NULL;
  c->cfg.model = c->model;
  c->cfg.ca_file = c->ca_file;
  c->is_openai = strstr(c->base_url, "://api.openai.com") != NULL;
  c->api = cfg->api != CK_MODEL_API_AUTO
               ? cfg->api
               : (c->is_openai ? CK_MODEL_API_RESPONSES : CK_MODEL_API_CHAT);
  c->stream_usage =
      cfg->stream_usage == CK_MODEL_AUTO ? c->is_openai : cfg->stream_usage == CK_MODEL_ON;
  c->developer_role =
      cfg->developer_role == CK_MODEL_AUTO ? c->is_openai : cfg->developer_role == CK_MODEL_ON;
#define DEF(f, v)                                                                                  \
  if (c->cfg.f == 0)                                                                               \
  c->cfg.f = (v)
  DEF(connect_timeout_ms, 10000);
  DEF(first_byte_timeout_ms, 120000);
  DEF(idle_timeout_ms, 60000);
  DEF(total_timeout_ms, 600000);
  DEF(max_retries, 2);
  DEF(retry_base_ms, 500);
  DEF(retry_max_ms, 8000);
  DEF(retry_after_max_ms, 120000);
  DEF(max_event_bytes, CK__SSE_DEFAULT_MAX);
  DEF(max_error_body, 64 * 1024);
#undef DEF
  if (c->cfg.max_retries < 0)
    c->cfg.max_retries = 0;
  if ((rc = build_headers(c, cfg)) != CK_OK)
    goto fail;
  c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c ^ 0x9E3779B97F4A7C15ull;
  if (c->rng == 0)
    c->rng = 1;
  c->glue = ck__curl_uv_new(loop);
  if (c->glue == NULL) {
    rc = CK_ENOMEM;
    goto fail;
  }
  return c;
fail:
  if (c) {
    free_headers(c->headers);
    free(c->base_url);
    wipe_free(c->api_key);
    free(c->model);
    free(c->ca_file);
    ck_arena_free(c->scratch);
    free(c);
  }
  if (err)
    *err = rc;
  return NULL;
}

ck_model_api ck_model_client_api(const ck_model_client *c) {
  return c->api;
}

size_t ck_model_client_active(const ck_model_client *c) {
  return c->active;
}

/* ---- Calls: lifecycle ------------------------------------------------------------------- */

static void on_call_timer(uv_timer_t *t);
static void start_attempt(ck_model_call *call);

static void call_closed(uv_handle_t *h) {
  ck_model_call *call = h->data;
  ck__sse_free(&call->sse);
  ck__stream_free(&call->st);
  ck_buf_free(&call->errbody);
  ck_buf_free(&call->fail.message);
  ck_buf_free(&call->fail.code);
  free(call->url);
  free(call->body);
  free(call);
}

static void detach(ck_model_call *call) {
  if (call->attached) {
    ck__curl_uv_remove(call->client->glue, call->easy);
    call->attached = false;
  }
}

/* Runs on_done once, then releases the call. Only ever called outside curl callbacks. */
static void deliver_done(ck_model_call *call) {
  ck_model_client *c = call->client;
  detach(call);
  uv_timer_stop(&call->timer);
  ck_model_result r = {0};
  r.attempts = call->attempts;
  r.output_delivered = call->output;
  r.http_status = (int)call->http_status;
  r.request_id = call->request_id[0] ? call->request_id : NULL;
  r.response_id = call->st.response_id.len ? call->st.response_id.data : NULL;
  r.finish_raw = call->st.finish_raw[0] ? call->st.finish_raw : NULL;
  if (call->failed) {
    ck__model_redact(c, &call->fail.message);
    r.status = call->fail.status ? call->fail.status : CK_EIO;
    r.error = call->fail.kind;
    r.retryable = call->fail.retryable;
    r.message = call->fail.message.len ? call->fail.message.data : NULL;
    r.error_code = call->fail.code.len ? call->fail.code.data : NULL;
  } else {
    r.status = CK_OK;
    r.finish = call->finish;
  }
  if (c->cfg.log && call->failed) {
    char st[16], at[16];
    snprintf(st, sizeof(st), "%ld", call->http_status);
    snprintf(at, sizeof(at), "%d", call->attempts);
    ck_log_event(c->cfg.log, CK_LOG_WARN, "model call failed", "kind", ck_model_error_name(r.error),
                 "http_status", st, "attempts", at, "request_id", r.request_id, "error", r.message,
                 (const char *)NULL);
  }
  /* Unlink before the callback, so a client_free racing with it cannot see the call. */
  if (call->prev)
    call->prev->next = call->next;
  else
    c->calls = call->next;
  if (call->next)
    call->next->prev = call->prev;
  c->active--;
  call->on_done(call, &r, call->ud);
  if (call->easy)
    curl_easy_cleanup(call->easy);
  call->easy = NULL;
  uv_close((uv_handle_t *)&call->timer, call_closed);
}

/* Decides the result; on_done follows from the timer on the next loop turn, so it never runs
 * inside the caller's own call into us. */
static void finish_later(ck_model_call *call) {
  call->state = CK__CALL_DONE;
  uv_timer_start(&call->timer, on_call_timer, 0, 0);
}

/* Parses a Retry-After value: seconds (fractions allowed) or an HTTP-date. -1 if neither. */
static int64_t parse_retry_after(const char *v) {
  char *end = NULL;
  double s = strtod(v, &end);
  if (end != v && (*end == '\0' || *end == ' ' || *end == '\t')) {
    if (!(s >= 0) || s > 1e7)
      return -1;
    return (int64_t)(s * 1000.0);
  }
  time_t t = curl_getdate(v, NULL);
  if (t == -1)
    return -1;
  time_t now = time(NULL);
  return t > now ? (int64_t)(t - now) * 1000 : 0;
}

/* The attempt is over: retry, or decide the result. */
static void attempt_ended(ck_model_call *call) {
  ck_model_client *c = call->client;
  if (call->cancelled || call->state == CK__CALL_DONE)
    return;
  if (!call->failed) {
    finish_later(call);
    return;
  }
  bool retry = call->fail.retryable;
  if (call->should_retry >= 0 && call->http_status != 0)
    retry = call->should_retry == 1; /* the provider's explicit word wins */
  if (call->output || call->attempts > c->cfg.max_retries)
    retry = false;
  uint64_t delay = 0;
  if (retry) {
    if (call->retry_after_ms > 0) {
      if (call->retry_after_ms > (int64_t)c->cfg.retry_after_max_ms)
        retry = false; /* the provider asks for a longer pause than a live chat can wait */
      delay = (uint64_t)call->retry_after_ms;
    } else {
      double base = (double)c->cfg.retry_base_ms * ldexp(1.0, call->attempts - 1);
      if (base > c->cfg.retry_max_ms)
        base = c->cfg.retry_max_ms;
      /* Up to 25% jitter so that many streams failing together do not retry in lock-step. */
      double jitter = (double)(rng_next(c) % 1000) / 1000.0 * 0.25;
      delay = (uint64_t)(base * (1.0 - jitter));
    }
    uint64_t now = uv_now(c->loop);
    if (now + delay >= call->t_start + c->cfg.total_timeout_ms)
      retry = false;
  }
  if (!retry) {
    finish_later(call);
    return;
  }
  if (c->cfg.log) {
    char st[16], d[24];
    snprintf(st, sizeof(st), "%ld", call->http_status);
    snprintf(d, sizeof(d), "%llu", (unsigned long long)delay);
    ck_log_event(c->cfg.log, CK_LOG_INFO, "model call retrying", "kind",
                 ck_model_error_name(call->fail.kind), "http_status", st, "delay_ms", d,
                 "request_id", call->request_id[0] ? call->request_id : NULL, (const char *)NULL);
  }
  call->state = CK__CALL_BACKOFF;
  uv_timer_start(&call->timer, on_call_timer, delay, 0);
}

/* Arms the call's timer for its nearest deadline. */
static void arm_deadline(ck_model_call *call) {
  const ck_model_config *cfg = &call->client->cfg;
  uint64_t now = uv_now(call->client->loop);
  uint64_t dl = call->t_start + cfg->total_timeout_ms;
  uint64_t d2;
  if (call->st.terminal)
    d2 = call->t_last_byte + TERMINAL_GRACE_MS;
  else if (!call->got_body)
    d2 = call->t_attempt + cfg->first_byte_timeout_ms;
  else
    d2 = call->t_last_byte + cfg->idle_timeout_ms;
  if (d2 < dl)
    dl = d2;
  uv_timer_start(&call->timer, on_call_timer, dl > now ? dl - now : 0, 0);
}

/* Classifies a non-2xx answer. */
static void http_failure(ck_model_call *call) {
  long st = call->http_status;
  ck_model_error_kind kind = CK_MODEL_ERR_HTTP;
  bool retry = false;
  if (st == 401 || st == 403) {
    kind = CK_MODEL_ERR_AUTH;
  } else if (st == 400 || st == 404 || st == 413 || st == 422) {
    kind = CK_MODEL_ERR_INVALID_REQUEST;
  } else if (st == 429) {
    kind = CK_MODEL_ERR_RATE_LIMIT;
    retry = true;
  } else if (st >= 500 || st == 408 || st == 409) {
    kind = CK_MODEL_ERR_SERVER;
    retry = true;
  }
  ck_arena *a = ck_arena_new(0);
  ck_json *doc = NULL;
  if (a && call->errbody.len &&
      ck_json_parse(a, call->errbody.data, call->errbody.len, 0, &doc, NULL) == CK_OK &&
      ck_json_is_object(doc)) {
    ck__model_fail_json(call, kind, retry, doc);
    /* Out of quota is a billing state, not a rate limit: waiting will not help. */
    if (call->fail.code.len && strcmp(call->fail.code.data, "insufficient_quota") == 0)
      call->fail.retryable = false;
  } else {
    /* Proxies answer 502/504 with HTML: keep a short, single-line excerpt. */
    char excerpt[201];
    size_t n = call->errbody.len < 200 ? call->errbody.len : 200;
    for (size_t i = 0; i < n; i++) {
      char ch = call->errbody.data[i];
      excerpt[i] = (ch == '\r' || ch == '\n' || ch == '\t') ? ' ' : ch;
    }
    excerpt[n] = '\0';
    ck__model_fail(call, kind, CK_EIO, retry, NULL, "HTTP %ld%s%s", st, n ? ": " : "", excerpt);
  }
  ck_arena_free(a);
}

static void on_xfer_done(CURL *easy, CURLcode res, void *ud) {
  ck_model_call *call = ud;
  call->attached = false;
  if (call->state != CK__CALL_RUNNING)
    return; /* cancelled or already decided: on_done is on its way */
  uv_timer_stop(&call->timer);
  if (!call->got_body) /* a response without a body never reached on_write */
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &call->http_status);
  if (call->failed) {
    /* The write callback stopped the transfer for a reason it recorded. */
  } else if (res != CURLE_OK && !call->st.terminal) {
    const char *why = curl_easy_strerror(res);
    if (res == CURLE_OPERATION_TIMEDOUT)
      ck__model_fail(call, CK_MODEL_ERR_TIMEOUT, CK_EIO, true, NULL, "connect timeout: %s", why);
    else if (res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_URL_MALFORMAT ||
             res == CURLE_PEER_FAILED_VERIFICATION || res == CURLE_SSL_CACERT_BADFILE)
      ck__model_fail(call, CK_MODEL_ERR_NETWORK, CK_EIO, false, NULL, "%s", why);
    else
      ck__model_fail(call, CK_MODEL_ERR_NETWORK, CK_EIO, true, NULL, "%s", why);
  } else if (call->http_status < 200 || call->http_status > 299) {
    http_failure(call);
  } else if (call->json_body) {
    if (call->client->api == CK_MODEL_API_CHAT)
      ck__chat_whole(call, call->errbody.data ? call->errbody.data : "", call->errbody.len);
    else
      ck__responses_whole(call, call->errbody.data ? call->errbody.data : "", call->errbody.len);
  } else {
    ck__curl_uv_enter(call->client->glue);
    int rc = call->st.terminal ? CK_OK : ck__sse_finish(&call->sse);
    ck__curl_uv_leave(call->client->glue);
    if (rc == CK_ETOOBIG)
      ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                     "stream event too large");
    if (!call->failed && !call->cancelled) {
      if (call->client->api == CK_MODEL_API_CHAT)
        ck__chat_finish(call);
      else
        ck__responses_finish(call);
    }
  }
  if (call->cancelled)
    return;
  attempt_ended(call);
}

/* ---- libcurl callbacks ------------------------------------------------------------------ */

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  ck_model_call *call = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    /* A new status line (after "100 Continue" too): forget the previous response's headers. */
    call->retry_after_ms = -1;
    call->should_retry = -1;
    call->request_id[0] = '\0';
    return len;
  }
  const char *colon = memchr(buf, ':', len);
  if (colon == NULL)
    return len;
  size_t nlen = (size_t)(colon - buf);
  const char *v = colon + 1;
  size_t vlen = len - nlen - 1;
  while (vlen && (*v == ' ' || *v == '\t'))
    v++, vlen--;
  while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
    vlen--;
  char val[128];
  if (vlen >= sizeof(val))
    vlen = sizeof(val) - 1;
  memcpy(val, v, vlen);
  val[vlen] = '\0';
  if (nlen == 14 && strncasecmp(buf, "retry-after-ms", 14) == 0) {
    char *end = NULL;
    double ms = strtod(val, &end);
    if (end != val && ms >= 0 && ms < 1e10)
      call->retry_after_ms = (int64_t)ms;
  } else if (nlen == 11 && strncasecmp(buf, "retry-after", 11) == 0) {
    if (call->retry_after_ms < 0) /* retry-after-ms is more precise and wins */
      call->retry_after_ms = parse_retry_after(val);
  } else if (nlen == 14 && strncasecmp(buf, "x-should-retry", 14) == 0) {
    call->should_retry = strcasecmp(val, "true") == 0 ? 1 : strcasecmp(val, "false") == 0 ? 0 : -1;
  } else if (nlen == 12 && strncasecmp(buf, "x-request-id", 12) == 0) {
    snprintf(call->request_id, sizeof(call->request_id), "%s", val);
  }
  return len;
}

/* Looks at the status and content type once, when the body starts. */
static void classify_body(ck_model_call *call) {
  curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &call->http_status);
  char *ct = NULL;
  curl_easy_getinfo(call->easy, CURLINFO_CONTENT_TYPE, &ct);
  if (call->http_status >= 200 && call->http_status <= 299) {
    /* A 200 with application/json means the server ignored stream:true. */
    if (ct && strncasecmp(ct, "application/json", 16) == 0)
      call->json_body = true;
    else
      call->streaming = true;
  }
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud) {
  ck_model_call *call = ud;
  ck_model_client *c = call->client;
  size_t n = size * nmemb;
  if (call->state != CK__CALL_RUNNING || call->cancelled || call->abort_xfer)
    return 0; /* any short count makes curl abort the transfer and close the connection */
  call->t_last_byte = uv_now(c->loop);
  if (!call->got_body) {
    call->got_body = true;
    classify_body(call);
  }
  if (call->st.terminal)
    return n; /* bytes after the terminal event do not matter */
  ck__curl_uv_enter(c->glue);
  if (call->streaming) {
    int rc = ck__sse_feed(&call->sse, ptr, n);
    if (rc == CK_ETOOBIG || rc == CK_ENOMEM)
      ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, rc, false, NULL,
                     "stream line or event larger than %zu bytes", c->cfg.max_event_bytes);
  } else if (call->json_body) {
    if (ck_buf_append(&call->errbody, ptr, n) != CK_OK)
      ck__model_fail(call, CK_MODEL_ERR_PROTOCOL, CK_ETOOBIG, false, NULL,
                     "response body too large");
  } else {
    /* An error body: keep its beginning, ignore the rest. */
    size_t room = c->cfg.max_error_body - call->errbody.len;
    ck_buf_append(&call->errbody, ptr, n < room ? n : room);
  }
  ck__curl_uv_leave(c->glue);
  if (call->st.terminal && !call->abort_xfer)
    arm_deadline(call); /* the grace period for the server to end the body */
  return call->abort_xfer ? 0 : n;
}

/* ---- Attempts --------------------------------------------------------------------------- */

static int setup_easy(ck_model_call *call) {
  ck_model_client *c = call->client;
  CURL *e = curl_easy_init();
  if (e == NULL)
    return CK_ENOMEM;
  call->easy = e;
  curl_easy_setopt(e, CURLOPT_URL, call->url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "chatkit-server");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  /* Debian's libcurl has a CA path, which disables the CA cache: every TLS handshake would
   * re-read the whole bundle (c-stack.md §3.2). */
  curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
  if (c->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  /* Waiting for a connection that may multiplex only pays where HTTP/2 can be negotiated
   * (ALPN over TLS). On cleartext HTTP/1.1 curl parks the new transfer behind a long-running
   * stream to the same host and nothing wakes it until that stream ends. */
  if (strncmp(call->url, "https://", 8) == 0)
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  return CK_OK;
}

static void start_attempt(ck_model_call *call) {
  ck_model_client *c = call->client;
  call->attempts++;
  call->state = CK__CALL_RUNNING;
  call->failed = call->abort_xfer = call->got_body = call->streaming = call->json_body = false;
  ck__failure_reset(&call->fail);
  call->http_status = 0;
  call->retry_after_ms = -1;
  call->should_retry = -1;
  call->request_id[0] = '\0';
  ck_buf_reset(&call->errbody);
  ck__sse_reset(&call->sse);
  ck__stream_reset(&call->st);
  call->t_attempt = uv_now(c->loop);
  int rc = ck__curl_uv_add(c->glue, call->easy, on_xfer_done, call);
  if (rc != CK_OK) {
    ck__model_fail(call, CK_MODEL_ERR_INTERNAL, rc, false, NULL, "could not start the transfer");
    finish_later(call);
    return;
  }
  call->attached = true;
  arm_deadline(call);
}

static void on_call_timer(uv_timer_t *t) {
  ck_model_call *call = t->data;
  ck_model_client *c = call->client;
  if (call->state == CK__CALL_DONE) {
    deliver_done(call);
    return;
  }
  if (call->state == CK__CALL_BACKOFF) {
    start_attempt(call);
    return;
  }
  uint64_t now = uv_now(c->loop);
  const ck_model_config *cfg = &c->cfg;
  if (call->st.terminal && now >= call->t_last_byte + TERMINAL_GRACE_MS) {
    /* The stream said it was complete; the server just did not end the body. */
    detach(call);
    if (c->api == CK_MODEL_API_CHAT)
      ck__chat_finish(call);
    else
      ck__responses_finish(call);
    attempt_ended(call);
    return;
  }
  if (now >= call->t_start + cfg->total_timeout_ms) {
    detach(call);
    ck__model_fail(call, CK_MODEL_ERR_TIMEOUT, CK_EIO, false, "total_timeout",
                   "no complete answer within %u ms", cfg->total_timeout_ms);
  } else if (!call->got_body && now >= call->t_attempt + cfg->first_byte_timeout_ms) {
    detach(call);
    ck__model_fail(call, CK_MODEL_ERR_TIMEOUT, CK_EIO, true, "first_byte_timeout",
                   "no response within %u ms", cfg->first_byte_timeout_ms);
  } else if (call->got_body && !call->st.terminal &&
             now >= call->t_last_byte + cfg->idle_timeout_ms) {
    detach(call);
    ck__model_fail(call, CK_MODEL_ERR_TIMEOUT, CK_EIO, true, "idle_timeout",
                   "the stream was silent for %u ms", cfg->idle_timeout_ms);
  } else {
    arm_deadline(call); /* activity moved the deadline */
    return;
  }
  attempt_ended(call);
}

int ck_model_call_start(ck_model_client *c, const ck_model_request *req, ck_model_event_fn on_event,
                        ck_model_done_fn on_done, void *ud, ck_model_call **out) {
  if (c == NULL || req == NULL || on_done == NULL || out == NULL)
    return CK_EINVAL;
  ck_buf body;
  ck_buf_init(&body, 0);
  int rc = ck__model_build_body(c, req, &body);
  ck_model_call *call = NULL;
  if (rc != CK_OK)
    goto fail;
  call = calloc(1, sizeof(*call));
  if (call == NULL) {
    rc = CK_ENOMEM;
    goto fail;
  }
  call->client = c;
  call->on_event = on_event;
  call->keep_text = !req->no_done_text;
  call->on_done = on_done;
  call->ud = ud;
  call->body = ck_buf_take(&body, &call->body_len);
  ck_buf url;
  ck_buf_init(&url, 0);
  rc = ck_buf_printf(&url, "%s%s", c->base_url,
                     c->api == CK_MODEL_API_CHAT ? "/chat/completions" : "/responses");
  call->url = rc == CK_OK ? ck_buf_take(&url, NULL) : NULL;
  ck_buf_free(&url);
  ck_buf_init(&call->errbody, c->cfg.max_event_bytes);
  ck__sse_init(&call->sse, c->cfg.max_event_bytes,
               c->api == CK_MODEL_API_CHAT ? ck__chat_on_event : ck__responses_on_event, call);
  ck__stream_init(&call->st);
  ck_buf_init(&call->st.text, c->cfg.max_event_bytes);
  call->st.scratch = c->scratch;
  if (call->body == NULL || call->url == NULL || (rc = setup_easy(call)) != CK_OK) {
    rc = rc != CK_OK ? rc : CK_ENOMEM;
    goto fail;
  }
  uv_timer_init(c->loop, &call->timer);
  call->timer.data = call;
  call->next = c->calls;
  if (c->calls)
    c->calls->prev = call;
  c->calls = call;
  c->active++;
  call->t_start = uv_now(c->loop);
  if (ck__curl_uv_in_callback(c->glue)) {
    /* Started from inside an event callback: curl may not be re-entered, so the first
     * attempt begins on the next loop turn. */
    call->state = CK__CALL_BACKOFF;
    uv_timer_start(&call->timer, on_call_timer, 0, 0);
  } else {
    start_attempt(call);
  }
  *out = call;
  return CK_OK;
fail:
  ck_buf_free(&body);
  if (call) {
    if (call->easy)
      curl_easy_cleanup(call->easy);
    ck__sse_free(&call->sse);
    ck__stream_free(&call->st);
    ck_buf_free(&call->errbody);
    free(call->url);
    free(call->body);
    free(call);
  }
  return rc;
}

void ck_model_call_cancel(ck_model_call *call) {
  if (call == NULL || call->cancelled || call->state == CK__CALL_DONE)
    return;
  call->cancelled = true;
  call->abort_xfer = true;
  call->failed = false; /* cancellation replaces whatever the attempt was failing with */
  ck__model_fail(call, CK_MODEL_ERR_CANCELLED, CK_ECANCELLED, false, NULL,
                 "the call was cancelled");
  /* Inside a curl callback the short write count aborts the transfer as soon as the callback
   * returns; elsewhere the handle is removed now, which closes the connection at once. */
  if (!ck__curl_uv_in_callback(call->client->glue))
    detach(call);
  finish_later(call);
}

void ck_model_client_free(ck_model_client *c) {
  if (c == NULL)
    return;
  /* Calls whose on_done is pending (state DONE) and running calls alike end now: no loop turn
   * is guaranteed after this. */
  while (c->calls) {
    ck_model_call *call = c->calls;
    if (call->state != CK__CALL_DONE)
      ck_model_call_cancel(call);
    deliver_done(call);
  }
  ck__curl_uv_free(c->glue);
  free_headers(c->headers);
  free(c->base_url);
  wipe_free(c->api_key);
  free(c->model);
  free(c->ca_file);
  ck_arena_free(c->scratch);
  free(c);
}
