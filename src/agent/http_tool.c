/* HTTP tools (issue: remote tools): a tool declared by configuration whose fn sends the model's
 * arguments to an endpoint with a blocking curl transfer on the tool's worker thread. See
 * chatkit/http_tool.h for what the endpoint may answer. */
#include <chatkit/error.h>
#include <chatkit/http_tool.h>
#include <chatkit/model.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "util/errbuf.h"

/* The part of an error body the model sees: enough to explain, not enough to flood. */
#define ERROR_BODY_BYTES 200

typedef struct http_tool {
  const char *url;
  const char *method;
  const char *const *headers; /* NULL-terminated copies */
  int timeout_ms;
} http_tool;

/* The length of the valid UTF-8 sequence at `s` (`n` bytes left), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len = c < 0x80                 ? 1
               : c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
  if (len == 0 || len > n)
    return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  /* Overlong forms, surrogates and code points past U+10FFFF. */
  if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
      (c == 0xF4 && s[1] > 0x8F))
    return 0;
  return len;
}

/* At most `max` bytes of `s` as valid UTF-8 text (bad bytes become '?', a sequence cut by the
 * limit is dropped), from `a`. */
static char *printable(ck_arena *a, const char *s, size_t n, size_t max) {
  char *out = ck_arena_alloc(a, (n < max ? n : max) + 1);
  size_t o = 0;
  for (size_t i = 0; out != NULL && i < n && o < max;) {
    size_t len = utf8_seq((const unsigned char *)s + i, n - i);
    if (len == 0) {
      out[o++] = '?';
      i++;
    } else if (o + len > max) {
      break;
    } else {
      memcpy(out + o, s + i, len);
      o += len;
      i += len;
    }
  }
  if (out != NULL)
    out[o] = '\0';
  return out;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  /* Returning less than given makes curl stop with CURLE_WRITE_ERROR: the cap was hit. */
  return ck_buf_append(ud, data, size * nmemb) == CK_OK ? size * nmemb : 0;
}

/* A widget root the client can render. */
static bool is_widget_root(const ck_json *w) {
  const char *type = ck_json_object_get_str(w, "type");
  return type != NULL &&
         (strcmp(type, "Card") == 0 || strcmp(type, "ListView") == 0 || strcmp(type, "Basic") == 0);
}

/* The model's view of a 2xx answer, streaming a widget on the way. */
static int answer_ok(ck_tool_ctx *t, const char *body, size_t len, long status) {
  ck_arena *a = ck_tool_arena(t);
  ck_json *v = NULL;
  if (len == 0 || ck_json_parse(a, body, len, 0, &v, NULL) != CK_OK) {
    const char *text = len == 0 ? ck_arena_printf(a, "OK (HTTP %ld, no content)", status)
                                : printable(a, body, len, len);
    return text ? ck_tool_result_text(t, text) : CK_ENOMEM;
  }
  ck_json *widget = ck_json_object_get(v, "widget");
  if (!ck_json_is_object(v) || !is_widget_root(widget))
    return ck_tool_result(t, v);
  int rc = ck_tool_widget(t, widget, ck_json_object_get_str(v, "copy_text"));
  if (rc != CK_OK)
    return ck_tool_error(t, "the widget could not be shown");
  ck_json_object_del(v, "widget");
  if (ck_json_object_size(v) == 0) {
    rc = ck_json_object_set(v, "widget_shown", ck_json_bool(a, true));
    if (rc != CK_OK)
      return rc;
  }
  return ck_tool_result(t, v);
}

static int call_http_tool(void *ud, ck_tool_ctx *t, const ck_json *arguments) {
  const http_tool *h = ud;
  ck_arena *a = ck_tool_arena(t);
  size_t body_len = 0;
  char *body = ck_json_dumps(a, arguments, &body_len);
  ck_buf resp;
  ck_buf_init(&resp, CK_HTTP_TOOL_MAX_RESPONSE);
  struct curl_slist *hdrs = NULL, *tmp = NULL;
  const char *fixed[] = {"Content-Type: application/json", "Accept: application/json"};
  bool ok = body != NULL;
  for (size_t i = 0; i < 2 && ok; i++)
    ok = (tmp = curl_slist_append(hdrs, fixed[i])) != NULL && (hdrs = tmp) != NULL;
  for (size_t i = 0; h->headers[i] != NULL && ok; i++)
    ok = (tmp = curl_slist_append(hdrs, h->headers[i])) != NULL && (hdrs = tmp) != NULL;
  CURL *c = ok ? curl_easy_init() : NULL;
  if (c == NULL) {
    curl_slist_free_all(hdrs);
    return CK_ENOMEM;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, h->url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, h->method);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->timeout_ms);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  /* Debian's libcurl has a CA path, which disables the CA cache (see src/upstream/client.c). */
  curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CK_HTTP_TOOL_MAX_RESPONSE);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "chatkit-server");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
  CURLcode cc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hdrs);
  const char *data = resp.data ? resp.data : "";
  int rc;
  if (cc == CURLE_OPERATION_TIMEDOUT)
    rc = ck_tool_error(t, ck_arena_printf(a, "the request timed out after %d ms", h->timeout_ms));
  else if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED)
    rc = ck_tool_error(t, ck_arena_printf(a, "the answer is larger than %zu bytes",
                                          (size_t)CK_HTTP_TOOL_MAX_RESPONSE));
  else if (cc != CURLE_OK)
    rc = ck_tool_error(t, ck_arena_printf(a, "the request failed: %s",
                                          errbuf[0] ? errbuf : curl_easy_strerror(cc)));
  else if (status < 200 || status > 299)
    rc = ck_tool_error(t, ck_arena_printf(a, "HTTP %ld: %s", status,
                                          printable(a, data, resp.len, ERROR_BODY_BYTES)));
  else
    rc = answer_ok(t, data, resp.len, status);
  ck_buf_free(&resp);
  return rc;
}

int ck_http_tool_def(ck_arena *a, const ck_http_tool_config *cfg, ck_tool_def *out, char *err,
                     size_t errlen) {
  if (a == NULL || cfg == NULL || out == NULL) {
    ck__errs(err, errlen, "no configuration");
    return CK_EINVAL;
  }
  size_t nlen = cfg->name ? strlen(cfg->name) : 0;
  bool name_ok = nlen > 0 && nlen <= 64 &&
                 strspn(cfg->name, "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789_-") == nlen;
  if (!name_ok) {
    ck__errs(err, errlen, "a tool name is 1 to 64 characters of [a-zA-Z0-9_-]");
    return CK_EINVAL;
  }
  if (cfg->url == NULL ||
      (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0)) {
    ck__errs(err, errlen, "an HTTP tool needs an http:// or https:// URL");
    return CK_EINVAL;
  }
  const char *method = cfg->method ? cfg->method : "POST";
  const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
  const char *m = NULL;
  for (size_t i = 0; i < 4 && m == NULL; i++)
    if (strcasecmp(method, methods[i]) == 0)
      m = methods[i];
  if (m == NULL) {
    ck__errs(err, errlen, "an HTTP tool's method is POST, PUT, PATCH or DELETE");
    return CK_EINVAL;
  }
  for (size_t i = 0; i < cfg->nheaders; i++) {
    const char *hd = cfg->headers[i];
    if (hd == NULL || strchr(hd, ':') == NULL || hd[0] == ':' || strpbrk(hd, "\r\n") != NULL) {
      ck__errs(err, errlen, "an HTTP tool header must be one \"Name: value\" line");
      return CK_EINVAL;
    }
  }
  if (cfg->parameters_json != NULL) {
    ck_json *schema = NULL;
    ck_json_error jerr;
    if (ck_json_parse(a, cfg->parameters_json, strlen(cfg->parameters_json), 0, &schema, &jerr) !=
            CK_OK ||
        !ck_json_is_object(schema)) {
      ck__errs(err, errlen, "an HTTP tool's parameters must be a JSON Schema object");
      return CK_EINVAL;
    }
  }
  if (ck_model_global_init() != CK_OK) {
    ck__errs(err, errlen, "libcurl cannot be initialised");
    return CK_EIO;
  }
  http_tool *h = ck_arena_calloc(a, sizeof(*h));
  const char **headers = ck_arena_calloc(a, (cfg->nheaders + 1) * sizeof(*headers));
  if (h == NULL || headers == NULL)
    goto oom;
  for (size_t i = 0; i < cfg->nheaders; i++)
    if ((headers[i] = ck_arena_strdup(a, cfg->headers[i])) == NULL)
      goto oom;
  h->url = ck_arena_strdup(a, cfg->url);
  h->method = m;
  h->headers = headers;
  h->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : CK_HTTP_TOOL_DEFAULT_TIMEOUT_MS;
  memset(out, 0, sizeof(*out));
  out->name = ck_arena_strdup(a, cfg->name);
  out->description = cfg->description ? ck_arena_strdup(a, cfg->description) : NULL;
  out->parameters_json = cfg->parameters_json ? ck_arena_strdup(a, cfg->parameters_json) : NULL;
  out->fn = call_http_tool;
  out->ud = h;
  if (h->url == NULL || out->name == NULL || (cfg->description && out->description == NULL) ||
      (cfg->parameters_json && out->parameters_json == NULL))
    goto oom;
  return CK_OK;
oom:
  ck__errs(err, errlen, "out of memory");
  return CK_ENOMEM;
}
