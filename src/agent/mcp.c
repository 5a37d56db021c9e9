/* The MCP client's core (issue: MCP tools): JSON-RPC requests over a transport, the initialize
 * handshake, reconnecting after a lost connection, the tools cache, and answering the requests
 * a server sends us. The transports are in mcp_stdio.c and mcp_http.c; the agent-tool glue is
 * in mcp_tools.c. */
#include "agent/mcp_internal.h"
#include "util/errbuf.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A server that keeps answering with another cursor must not keep us paging forever. */
#define MAX_TOOL_PAGES 100

int64_t ck__mcp_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ck__mcp_set_error(ck_mcp *m, const char *msg) {
  pthread_mutex_lock(&m->mu);
  snprintf(m->last_error, sizeof(m->last_error), "%s", msg ? msg : "");
  pthread_mutex_unlock(&m->mu);
}

void ck__mcp_lost(ck_mcp *m) {
  pthread_mutex_lock(&m->mu);
  m->ready = false;
  pthread_mutex_unlock(&m->mu);
}

void ck__mcp_protocol(ck_mcp *m, char *buf, size_t cap) {
  pthread_mutex_lock(&m->mu);
  snprintf(buf, cap, "%s", m->protocol ? m->protocol : "");
  pthread_mutex_unlock(&m->mu);
}

bool ck__mcp_response_id(const ck_json *msg, int64_t *id) {
  return ck_json_is_int(ck_json_object_get(msg, "id")) &&
         ck_json_int_value(ck_json_object_get(msg, "id"), id) == CK_OK;
}

/* ---- Messages ---- */

static ck_json *set(ck_json *o, const char *k, ck_json *v) {
  if (o == NULL || v == NULL || ck_json_object_set(o, k, v) != CK_OK)
    return NULL;
  return o;
}

/* {"jsonrpc":"2.0","id":id,"method":method,"params":params} as text from `a`; id < 0 makes a
 * notification. */
static char *message_text(ck_arena *a, int64_t id, const char *method, const ck_json *params,
                          size_t *len) {
  ck_json *msg = ck_json_object(a);
  set(msg, "jsonrpc", ck_json_str(a, "2.0"));
  if (id >= 0)
    set(msg, "id", ck_json_int(a, id));
  set(msg, "method", ck_json_str(a, method));
  if (params != NULL)
    set(msg, "params", ck_json_copy(a, params));
  return msg ? ck_json_dumps(a, msg, len) : NULL;
}

void ck__mcp_incoming(ck_mcp *m, const ck_json *msg) {
  const char *method = ck_json_object_get_str(msg, "method");
  const ck_json *id = ck_json_object_get(msg, "id");
  if (method == NULL)
    return; /* a response nobody waits for any more (its request timed out): dropped */
  if (id == NULL) {
    if (strcmp(method, "notifications/tools/list_changed") == 0) {
      pthread_mutex_lock(&m->mu);
      m->tools_gen++;
      pthread_mutex_unlock(&m->mu);
    }
    return; /* other notifications (logging, progress, ...) carry nothing we act on */
  }
  ck_arena *a = ck_arena_new(1024);
  if (a == NULL)
    return;
  ck_json *reply = ck_json_object(a);
  set(reply, "jsonrpc", ck_json_str(a, "2.0"));
  set(reply, "id", ck_json_copy(a, id));
  if (strcmp(method, "ping") == 0) {
    set(reply, "result", ck_json_object(a));
  } else {
    /* We declare no client capabilities (sampling, roots, elicitation), so a server should not
     * ask; if it does, the standard "method not found" answer lets it go on. */
    ck_json *e = ck_json_object(a);
    set(e, "code", ck_json_int(a, -32601));
    set(e, "message", ck_json_str(a, ck_arena_printf(a, "Method not found: %.100s", method)));
    set(reply, "error", e);
  }
  size_t len = 0;
  char *text = reply ? ck_json_dumps(a, reply, &len) : NULL;
  char why[160];
  if (text != NULL)
    m->ops->send(m, text, len, why, sizeof(why));
  ck_arena_free(a);
}

/* ---- Connecting ---- */

/* The handshake on a freshly opened transport: initialize, then notifications/initialized. */
static int handshake(ck_mcp *m, char *err, size_t errlen) {
  ck_arena *a = ck_arena_new(2048);
  if (a == NULL)
    return CK_ENOMEM;
  ck_json *params = ck_json_object(a);
  ck_json *info = ck_json_object(a);
  set(info, "name", ck_json_str(a, "chatkit-server"));
  set(info, "version", ck_json_str(a, "0.1.0"));
  set(params, "protocolVersion", ck_json_str(a, CK_MCP_PROTOCOL_VERSION));
  set(params, "capabilities", ck_json_object(a));
  set(params, "clientInfo", info);
  int64_t id = atomic_fetch_add(&m->next_id, 1);
  size_t len = 0;
  char *text = params ? message_text(a, id, "initialize", params, &len) : NULL;
  ck_json *resp = NULL;
  int rc = text ? m->ops->rpc(m, a, id, text, len, &resp, err, errlen) : CK_ENOMEM;
  if (rc == CK_ESTATE) {
    ck__errs(err, errlen, "the MCP server refused to start a session");
    rc = CK_EIO;
  }
  const ck_json *result = ck_json_object_get(resp, "result");
  const char *version = ck_json_object_get_str(result, "protocolVersion");
  if (rc == CK_OK && (!ck_json_is_object(result) || version == NULL)) {
    const char *why = ck_json_object_get_str(ck_json_object_get(resp, "error"), "message");
    char msg[256];
    snprintf(msg, sizeof(msg), "MCP initialize failed: %.200s",
             why ? why : "the answer has no protocolVersion");
    ck__errs(err, errlen, msg);
    rc = CK_EIO;
  }
  if (rc == CK_OK) {
    const char *name = ck_json_object_get_str(ck_json_object_get(result, "serverInfo"), "name");
    char *p = strdup(version);
    char *n = strdup(name ? name : "");
    pthread_mutex_lock(&m->mu);
    if (p != NULL && n != NULL) {
      free(m->protocol);
      free(m->server_name);
      m->protocol = p;
      m->server_name = n;
      p = n = NULL;
    } else {
      rc = CK_ENOMEM;
    }
    pthread_mutex_unlock(&m->mu);
    free(p);
    free(n);
  }
  if (rc == CK_OK) {
    text = message_text(a, -1, "notifications/initialized", NULL, &len);
    rc = text ? m->ops->send(m, text, len, err, errlen) : CK_ENOMEM;
  }
  ck_arena_free(a);
  return rc;
}

/* Makes sure a handshaken connection exists, reconnecting once when it was lost. */
static int ensure_ready(ck_mcp *m, char *err, size_t errlen) {
  pthread_mutex_lock(&m->mu);
  bool ready = m->ready;
  pthread_mutex_unlock(&m->mu);
  if (ready)
    return CK_OK;
  pthread_mutex_lock(&m->cmu);
  pthread_mutex_lock(&m->mu);
  ready = m->ready; /* another thread may have reconnected while we waited for the lock */
  pthread_mutex_unlock(&m->mu);
  int rc = CK_OK;
  if (!ready) {
    m->ops->shut(m);
    rc = m->ops->open(m, err, errlen);
    if (rc == CK_OK)
      rc = handshake(m, err, errlen);
    pthread_mutex_lock(&m->mu);
    m->ready = rc == CK_OK;
    m->tools_gen++; /* a new connection may offer other tools */
    pthread_mutex_unlock(&m->mu);
  }
  pthread_mutex_unlock(&m->cmu);
  return rc;
}

/* One request: its response message (result or error) in `*response`. A server that lost our
 * session gets a new handshake and the request once more (it never ran). */
static int request(ck_mcp *m, ck_arena *a, const char *method, const ck_json *params,
                   ck_json **response, char *err, size_t errlen) {
  int rc = CK_OK;
  for (int attempt = 0; attempt < 2; attempt++) {
    rc = ensure_ready(m, err, errlen);
    if (rc != CK_OK)
      break;
    int64_t id = atomic_fetch_add(&m->next_id, 1);
    size_t len = 0;
    char *text = message_text(a, id, method, params, &len);
    if (text == NULL)
      return CK_ENOMEM;
    rc = m->ops->rpc(m, a, id, text, len, response, err, errlen);
    if (rc != CK_ESTATE)
      break;
    ck__mcp_lost(m);
    ck__errs(err, errlen, "the MCP server ended the session");
    rc = CK_EIO;
  }
  if (rc != CK_OK && err != NULL)
    ck__mcp_set_error(m, err);
  return rc;
}

static ck_mcp *mcp_alloc(int timeout_ms) {
  ck_mcp *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return NULL;
  m->timeout_ms = timeout_ms > 0 ? timeout_ms : CK_MCP_DEFAULT_TIMEOUT_MS;
  atomic_init(&m->next_id, 1);
  pthread_mutex_init(&m->mu, NULL);
  pthread_mutex_init(&m->cmu, NULL);
  m->server_name = strdup("");
  if (m->server_name == NULL) {
    ck_mcp_close(m);
    return NULL;
  }
  return m;
}

static int connect_common(ck_mcp *m, ck_mcp **out, char *err, size_t errlen) {
  int rc = ensure_ready(m, err, errlen);
  if (rc != CK_OK) {
    ck_mcp_close(m);
    return rc;
  }
  *out = m;
  return CK_OK;
}

int ck_mcp_connect_stdio(const char *const *argv, const char *const *env, const char *cwd,
                         int timeout_ms, ck_mcp **out, char *err, size_t errlen) {
  if (out == NULL || argv == NULL || argv[0] == NULL || argv[0][0] == '\0') {
    ck__errs(err, errlen, "no MCP server command");
    return CK_EINVAL;
  }
  *out = NULL;
  ck_mcp *m = mcp_alloc(timeout_ms);
  if (m == NULL)
    return CK_ENOMEM;
  m->ops = &ck__mcp_stdio_ops;
  int rc = ck__mcp_stdio_new(m, argv, env, cwd);
  if (rc != CK_OK) {
    ck__errs(err, errlen, "out of memory");
    ck_mcp_close(m);
    return rc;
  }
  return connect_common(m, out, err, errlen);
}

int ck_mcp_connect_http(const char *url, const char *const *headers, int timeout_ms, ck_mcp **out,
                        char *err, size_t errlen) {
  if (out == NULL || url == NULL) {
    ck__errs(err, errlen, "no MCP server URL");
    return CK_EINVAL;
  }
  *out = NULL;
  ck_mcp *m = mcp_alloc(timeout_ms);
  if (m == NULL)
    return CK_ENOMEM;
  m->ops = &ck__mcp_http_ops;
  int rc = ck__mcp_http_new(m, url, headers, err, errlen);
  if (rc != CK_OK) {
    ck_mcp_close(m);
    return rc;
  }
  return connect_common(m, out, err, errlen);
}

void ck_mcp_close(ck_mcp *m) {
  if (m == NULL)
    return;
  if (m->ops != NULL) {
    m->ops->shut(m);
    m->ops->destroy(m);
  }
  free(m->protocol);
  free(m->server_name);
  free(m->tools_cache);
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->cmu);
  free(m);
}

const char *ck_mcp_server_name(const ck_mcp *m) {
  return m && m->server_name ? m->server_name : "";
}

const char *ck_mcp_last_error(ck_mcp *m, char *buf, size_t cap) {
  if (buf == NULL || cap == 0)
    return buf;
  buf[0] = '\0';
  if (m != NULL) {
    pthread_mutex_lock(&m->mu);
    snprintf(buf, cap, "%s", m->last_error);
    pthread_mutex_unlock(&m->mu);
  }
  return buf;
}

/* ---- Tools ---- */

/* The message of a JSON-RPC error answer, or NULL when `resp` carries a result. */
static const char *rpc_error(ck_arena *a, const ck_json *resp) {
  const ck_json *e = ck_json_object_get(resp, "error");
  if (e == NULL && ck_json_object_get(resp, "result") != NULL)
    return NULL;
  const char *msg = ck_json_object_get_str(e, "message");
  int64_t code = 0;
  ck_json_int_value(ck_json_object_get(e, "code"), &code);
  return ck_arena_printf(a, "%.200s (JSON-RPC error %lld)", msg ? msg : "no result",
                         (long long)code);
}

/* Fetches every page of tools/list into a new array from `a`. */
static int fetch_tools(ck_mcp *m, ck_arena *a, ck_json **out) {
  ck_json *all = ck_json_array(a);
  char err[256] = "";
  const char *cursor = NULL;
  int rc = all ? CK_OK : CK_ENOMEM;
  for (int page = 0; rc == CK_OK; page++) {
    if (page == MAX_TOOL_PAGES) {
      ck__mcp_set_error(m, "the MCP server's tool list does not end");
      rc = CK_EIO;
      break;
    }
    ck_json *params = NULL;
    if (cursor != NULL) {
      params = ck_json_object(a);
      set(params, "cursor", ck_json_str(a, cursor));
    }
    ck_json *resp = NULL;
    rc = request(m, a, "tools/list", params, &resp, err, sizeof(err));
    if (rc != CK_OK)
      break;
    const char *why = rpc_error(a, resp);
    const ck_json *result = ck_json_object_get(resp, "result");
    const ck_json *tools = ck_json_object_get(result, "tools");
    if (why != NULL || !ck_json_is_array(tools)) {
      ck__mcp_set_error(m, why ? why : "tools/list answered without a tools array");
      rc = CK_EIO;
      break;
    }
    for (size_t i = 0; rc == CK_OK && i < ck_json_array_size(tools); i++) {
      const ck_json *t = ck_json_array_get(tools, i);
      if (ck_json_object_get_str(t, "name") != NULL) /* a nameless tool cannot be called */
        rc = ck_json_array_append(all, ck_json_copy(a, t));
    }
    cursor = ck_json_object_get_str(result, "nextCursor");
    if (cursor == NULL || cursor[0] == '\0')
      break;
  }
  *out = all;
  return rc;
}

uint64_t ck_mcp_tools_generation(ck_mcp *m) {
  if (m == NULL)
    return 0;
  pthread_mutex_lock(&m->mu);
  uint64_t gen = m->tools_gen;
  pthread_mutex_unlock(&m->mu);
  return gen;
}

int ck_mcp_list_tools(ck_mcp *m, ck_arena *a, ck_json **tools) {
  if (m == NULL || a == NULL || tools == NULL)
    return CK_EINVAL;
  *tools = NULL;
  pthread_mutex_lock(&m->mu);
  bool fresh = m->ready && m->tools_cache != NULL && m->cache_gen == m->tools_gen;
  char *cached = fresh ? ck_arena_strdup(a, m->tools_cache) : NULL;
  uint64_t gen = m->tools_gen;
  pthread_mutex_unlock(&m->mu);
  if (cached != NULL)
    return ck_json_parse(a, cached, strlen(cached), 0, tools, NULL);
  if (fresh)
    return CK_ENOMEM;
  /* Make sure the connection is up before noting the generation: connecting bumps it. */
  char err[256] = "";
  int rc = ensure_ready(m, err, sizeof(err));
  if (rc != CK_OK) {
    ck__mcp_set_error(m, err);
    return rc;
  }
  pthread_mutex_lock(&m->mu);
  gen = m->tools_gen;
  pthread_mutex_unlock(&m->mu);
  rc = fetch_tools(m, a, tools);
  char *text = rc == CK_OK ? ck_json_dumps(a, *tools, NULL) : NULL;
  char *copy = text ? strdup(text) : NULL;
  if (copy != NULL) {
    /* A list_changed that arrived while we were paging leaves the cache stale on purpose. */
    pthread_mutex_lock(&m->mu);
    free(m->tools_cache);
    m->tools_cache = copy;
    m->cache_gen = gen;
    pthread_mutex_unlock(&m->mu);
  }
  return rc;
}

/* An isError result with one text content, for failures that never reached the tool. */
static ck_json *error_result(ck_arena *a, const char *text) {
  ck_json *c = ck_json_object(a);
  set(c, "type", ck_json_str(a, "text"));
  set(c, "text", ck_json_str(a, text));
  ck_json *content = ck_json_array(a);
  if (content == NULL || c == NULL || ck_json_array_append(content, c) != CK_OK)
    return NULL;
  ck_json *r = ck_json_object(a);
  set(r, "content", content);
  return set(r, "isError", ck_json_bool(a, true));
}

int ck_mcp_call_tool(ck_mcp *m, ck_arena *a, const char *name, const ck_json *args,
                     ck_json **result, bool *is_error) {
  if (m == NULL || a == NULL || name == NULL || result == NULL ||
      (args != NULL && !ck_json_is_object(args)))
    return CK_EINVAL;
  *result = NULL;
  if (is_error != NULL)
    *is_error = true;
  ck_json *params = ck_json_object(a);
  set(params, "name", ck_json_str(a, name));
  set(params, "arguments", args ? ck_json_copy(a, args) : ck_json_object(a));
  if (params == NULL)
    return CK_ENOMEM;
  ck_json *resp = NULL;
  char err[256] = "";
  int rc = request(m, a, "tools/call", params, &resp, err, sizeof(err));
  if (rc != CK_OK) {
    *result = error_result(a, err[0] ? err : ck_strerror(rc));
    return rc;
  }
  const char *why = rpc_error(a, resp);
  ck_json *res = ck_json_object_get(resp, "result");
  if (why != NULL || !ck_json_is_object(res)) {
    *result = error_result(a, why ? why : "tools/call answered without a result");
    return *result ? CK_OK : CK_ENOMEM;
  }
  *result = res;
  if (is_error != NULL)
    *is_error = ck_json_bool_value(ck_json_object_get(res, "isError"));
  return CK_OK;
}
