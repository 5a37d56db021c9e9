/* mcp-server: a tiny MCP server for the MCP client's tests (build/tests/mcp-server).
 *
 *   mcp-server [--ignore-eof] [--ignore-term]     stdio: JSON lines on stdin/stdout
 *   mcp-server --http PORT [--no-get]              Streamable HTTP on 127.0.0.1:PORT (0: any);
 *                                                  prints "listening on http://127.0.0.1:PORT"
 *
 * Tools (served in two pages of tools/list): add {a,b} -> the sum as text; echo -> the
 * arguments as structuredContent (no text; over HTTP as an SSE stream after a log
 * notification); fail -> isError; slow {ms} -> "slept" after ms (default 2000); crash -> exits
 * with status 3; pid -> the process id; change -> adds the tool "extra" and sends
 * notifications/tools/list_changed; stats -> "list_calls=N"; ping_client (stdio) -> asks the
 * client for ping and sampling/createMessage and reports the answers; whoami (HTTP) -> the
 * session and protocol headers it got; expire (HTTP) -> forgets the session.
 *
 * Over HTTP a client may hold a GET stream open for messages the server sends on its own (one
 * at a time here; a newer one replaces the older). Two unlisted tools use it: gets -> "open=0|1
 * tries=N opened=M" (GET requests seen, streams accepted); change_later -> adds the tool "later"
 * and sends notifications/tools/list_changed on the GET stream only (an error without one).
 * --no-get answers every GET with 405, as a server without that stream does.
 *
 * --ignore-eof keeps running after stdin closes and --ignore-term ignores SIGTERM, so tests
 * can check that the client escalates to SIGTERM and SIGKILL. */
#include <chatkit/http.h>
#include <chatkit/json.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cv = PTHREAD_COND_INITIALIZER;
static atomic_int list_calls;
static atomic_bool extra_tool, later_tool;
static atomic_int running; /* stdio requests in progress */
/* ping_client: the client's answers (guarded by out_mu). */
static char *answer_ping, *answer_sampling;

static ck_json *set(ck_json *o, const char *k, ck_json *v) {
  ck_json_object_set(o, k, v);
  return o;
}

static ck_json *parse(ck_arena *a, const char *text) {
  ck_json *v = NULL;
  ck_json_parse(a, text, strlen(text), 0, &v, NULL);
  return v;
}

static ck_json *text_result(ck_arena *a, const char *text, bool is_error) {
  ck_json *c = ck_json_object(a);
  set(c, "type", ck_json_str(a, "text"));
  set(c, "text", ck_json_str(a, text));
  ck_json *content = ck_json_array(a);
  ck_json_array_append(content, c);
  ck_json *r = set(ck_json_object(a), "content", content);
  if (is_error)
    set(r, "isError", ck_json_bool(a, true));
  return r;
}

static ck_json *response(ck_arena *a, const ck_json *id, ck_json *result) {
  ck_json *r = set(ck_json_object(a), "jsonrpc", ck_json_str(a, "2.0"));
  set(r, "id", ck_json_copy(a, id));
  return set(r, "result", result);
}

static ck_json *error_response(ck_arena *a, const ck_json *id, int code, const char *msg) {
  ck_json *e = set(ck_json_object(a), "code", ck_json_int(a, code));
  set(e, "message", ck_json_str(a, msg));
  ck_json *r = set(ck_json_object(a), "jsonrpc", ck_json_str(a, "2.0"));
  set(r, "id", ck_json_copy(a, id));
  return set(r, "error", e);
}

static const char *tool_page(int page) {
  if (page == 1)
    return "[{\"name\":\"add\",\"description\":\"Adds two numbers\",\"inputSchema\":{\"type\":"
           "\"object\",\"properties\":{\"a\":{\"type\":\"number\"},\"b\":{\"type\":\"number\"}},"
           "\"required\":[\"a\",\"b\"]}},"
           "{\"name\":\"echo\",\"description\":\"Echoes\",\"inputSchema\":{\"type\":\"object\"}},"
           "{\"name\":\"fail\",\"description\":\"Fails\",\"inputSchema\":{\"type\":\"object\"}},"
           "{\"name\":\"slow\",\"description\":\"Sleeps\",\"inputSchema\":{\"type\":\"object\"}}]";
  return "[{\"name\":\"crash\",\"inputSchema\":{\"type\":\"object\"}},"
         "{\"name\":\"pid\",\"inputSchema\":{\"type\":\"object\"}},"
         "{\"name\":\"change\",\"inputSchema\":{\"type\":\"object\"}},"
         "{\"name\":\"stats\",\"inputSchema\":{\"type\":\"object\"}},"
         "{\"name\":\"ping_client\",\"inputSchema\":{\"type\":\"object\"}},"
         "{\"name\":\"whoami\",\"inputSchema\":{\"type\":\"object\"}},"
         "{\"name\":\"expire\",\"inputSchema\":{\"type\":\"object\"}}]";
}

/* The answer to requests every transport handles the same way; NULL for tools/call of a tool
 * the transport handles itself. */
static ck_json *common(ck_arena *a, const ck_json *msg) {
  const char *method = ck_json_object_get_str(msg, "method");
  const ck_json *id = ck_json_object_get(msg, "id");
  const ck_json *params = ck_json_object_get(msg, "params");
  if (strcmp(method, "initialize") == 0) {
    ck_json *r = parse(a, "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{"
                          "\"listChanged\":true}},\"serverInfo\":{\"name\":\"fake-mcp\","
                          "\"version\":\"1.0\"}}");
    return response(a, id, r);
  }
  if (strcmp(method, "ping") == 0)
    return response(a, id, ck_json_object(a));
  if (strcmp(method, "tools/list") == 0) {
    atomic_fetch_add(&list_calls, 1);
    const char *cursor = ck_json_object_get_str(params, "cursor");
    bool second = cursor != NULL && strcmp(cursor, "page-2") == 0;
    ck_json *tools = parse(a, tool_page(second ? 2 : 1));
    if (second && atomic_load(&extra_tool))
      ck_json_array_append(tools, parse(a, "{\"name\":\"extra\",\"inputSchema\":{}}"));
    if (second && atomic_load(&later_tool))
      ck_json_array_append(tools, parse(a, "{\"name\":\"later\",\"inputSchema\":{}}"));
    ck_json *r = set(ck_json_object(a), "tools", tools);
    if (!second)
      set(r, "nextCursor", ck_json_str(a, "page-2"));
    return response(a, id, r);
  }
  if (strcmp(method, "tools/call") != 0)
    return error_response(a, id, -32601, "Method not found");
  const char *name = ck_json_object_get_str(params, "name");
  const ck_json *args = ck_json_object_get(params, "arguments");
  if (name == NULL)
    return error_response(a, id, -32602, "no tool name");
  if (strcmp(name, "add") == 0) {
    double s = ck_json_number_value(ck_json_object_get(args, "a")) +
               ck_json_number_value(ck_json_object_get(args, "b"));
    return response(a, id, text_result(a, ck_arena_printf(a, "%g", s), false));
  }
  if (strcmp(name, "echo") == 0) {
    ck_json *r = set(ck_json_object(a), "content", ck_json_array(a));
    return response(a, id, set(r, "structuredContent", ck_json_copy(a, args)));
  }
  if (strcmp(name, "fail") == 0)
    return response(a, id, text_result(a, "it failed on purpose", true));
  if (strcmp(name, "crash") == 0)
    _exit(3);
  if (strcmp(name, "pid") == 0)
    return response(a, id, text_result(a, ck_arena_printf(a, "%d", (int)getpid()), false));
  if (strcmp(name, "stats") == 0) {
    const char *t = ck_arena_printf(a, "list_calls=%d", atomic_load(&list_calls));
    return response(a, id, text_result(a, t, false));
  }
  if (strcmp(name, "extra") == 0 && atomic_load(&extra_tool))
    return response(a, id, text_result(a, "extra", false));
  if (strcmp(name, "change") == 0 || strcmp(name, "slow") == 0 ||
      strcmp(name, "ping_client") == 0 || strcmp(name, "whoami") == 0 ||
      strcmp(name, "expire") == 0)
    return NULL;
  return error_response(a, id, -32602, ck_arena_printf(a, "Unknown tool: %s", name));
}

/* ---- stdio ---- */

static void write_msg(const ck_json *msg) {
  ck_arena *a = ck_arena_new(0);
  char *text = ck_json_dumps(a, msg, NULL);
  pthread_mutex_lock(&out_mu);
  fputs(text, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&out_mu);
  ck_arena_free(a);
}

static void write_text(const char *text) {
  pthread_mutex_lock(&out_mu);
  fputs(text, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&out_mu);
}

/* One request on its own thread, so that slow calls overlap. */
typedef struct job {
  ck_arena *a;
  ck_json *msg;
} job;

static void *stdio_job(void *arg) {
  job *j = arg;
  ck_arena *a = j->a;
  ck_json *msg = j->msg;
  const ck_json *id = ck_json_object_get(msg, "id");
  ck_json *out = common(a, msg);
  if (out == NULL) {
    const ck_json *params = ck_json_object_get(msg, "params");
    const char *name = ck_json_object_get_str(params, "name");
    const ck_json *args = ck_json_object_get(params, "arguments");
    if (strcmp(name, "slow") == 0) {
      int64_t ms = 2000;
      ck_json_int_value(ck_json_object_get(args, "ms"), &ms);
      usleep((useconds_t)ms * 1000);
      out = response(a, id, text_result(a, "slept", false));
    } else if (strcmp(name, "change") == 0) {
      atomic_store(&extra_tool, true);
      write_text("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}");
      out = response(a, id, text_result(a, "changed", false));
    } else if (strcmp(name, "ping_client") == 0) {
      write_text("{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"ping\"}");
      write_text("{\"jsonrpc\":\"2.0\",\"id\":\"srv-2\",\"method\":\"sampling/createMessage\","
                 "\"params\":{\"messages\":[],\"maxTokens\":10}}");
      pthread_mutex_lock(&out_mu);
      for (int i = 0; i < 50 && (answer_ping == NULL || answer_sampling == NULL); i++) {
        pthread_mutex_unlock(&out_mu);
        usleep(100000);
        pthread_mutex_lock(&out_mu);
      }
      const char *t = ck_arena_printf(a, "ping=%s sampling=%s", answer_ping ? answer_ping : "-",
                                      answer_sampling ? answer_sampling : "-");
      pthread_mutex_unlock(&out_mu);
      out = response(a, id, text_result(a, t, false));
    } else {
      out = error_response(a, id, -32602, "not over stdio");
    }
  }
  write_msg(out);
  ck_arena_free(a);
  free(j);
  atomic_fetch_sub(&running, 1);
  return NULL;
}

/* A response from the client to one of our requests. */
static void client_answer(ck_arena *a, const ck_json *msg) {
  const char *id = ck_json_object_get_str(msg, "id");
  const ck_json *err = ck_json_object_get(msg, "error");
  char *v = err ? strdup(ck_json_dumps(a, ck_json_object_get(err, "code"), NULL))
                : strdup(ck_json_dumps(a, ck_json_object_get(msg, "result"), NULL));
  pthread_mutex_lock(&out_mu);
  if (id != NULL && strcmp(id, "srv-1") == 0 && answer_ping == NULL)
    answer_ping = v, v = NULL;
  else if (id != NULL && strcmp(id, "srv-2") == 0 && answer_sampling == NULL)
    answer_sampling = v, v = NULL;
  pthread_cond_broadcast(&out_cv);
  pthread_mutex_unlock(&out_mu);
  free(v);
}

static int run_stdio(bool ignore_eof) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    ck_arena *a = ck_arena_new(0);
    ck_json *msg = NULL;
    if (ck_json_parse(a, line, (size_t)n, 0, &msg, NULL) != 0 || !ck_json_is_object(msg)) {
      ck_arena_free(a);
      continue;
    }
    if (ck_json_object_get(msg, "method") == NULL) {
      client_answer(a, msg);
      ck_arena_free(a);
      continue;
    }
    if (ck_json_object_get(msg, "id") == NULL) { /* a notification */
      ck_arena_free(a);
      continue;
    }
    job *j = malloc(sizeof(*j));
    j->a = a;
    j->msg = msg;
    pthread_t t;
    atomic_fetch_add(&running, 1);
    pthread_create(&t, NULL, stdio_job, j);
    pthread_detach(t);
  }
  free(line);
  /* Finish the requests in progress (as servers do on a clean shutdown) for up to 5 s. */
  for (int i = 0; i < 500 && atomic_load(&running) > 0; i++)
    usleep(10000);
  while (ignore_eof)
    pause();
  return 0;
}

/* ---- Streamable HTTP ---- */

static char session[64];
static int session_count;
/* The GET stream (loop thread only). */
static bool no_get;
static ck_http_request *get_req;
static int get_tries, get_opened;

static void get_aborted(ck_http_request *req, void *ud) {
  if (get_req == req) {
    get_req = NULL;
    ck_http_request_release(req);
  }
}

static void on_get(ck_http_request *req, const char *sid) {
  get_tries++;
  const char *accept = ck_http_request_header(req, "Accept");
  if (no_get) {
    ck_http_respond_error(req, 405, "method_not_allowed", "no GET stream here");
  } else if (accept == NULL || strstr(accept, "text/event-stream") == NULL) {
    ck_http_respond_error(req, 406, "not_acceptable", "GET wants text/event-stream");
  } else if (sid == NULL || session[0] == '\0' || strcmp(sid, session) != 0) {
    ck_http_respond_error(req, sid == NULL ? 400 : 404, "session", "unknown session");
  } else {
    ck_http_header h[] = {{"Content-Type", "text/event-stream"}, {NULL, NULL}};
    ck_http_stream_begin(req, 200, h);
    ck_http_stream_write(req, ": open\n\n", 8);
    if (get_req != NULL) {
      ck_http_stream_end(get_req);
      ck_http_request_release(get_req);
    }
    get_req = req;
    get_opened++;
    ck_http_request_on_abort(req, get_aborted, NULL);
    return;
  }
  ck_http_request_release(req);
}

typedef struct slow_req {
  uv_timer_t timer;
  ck_http_request *req;
  char *body;
} slow_req;

static void respond_json(ck_http_request *req, const ck_json *msg, const char *sid) {
  ck_arena *a = ck_arena_new(0);
  size_t len = 0;
  char *text = ck_json_dumps(a, msg, &len);
  ck_http_header extra[] = {{sid ? "Mcp-Session-Id" : NULL, sid}, {NULL, NULL}};
  ck_http_respond(req, 200, "application/json", text, len, extra);
  ck_http_request_release(req);
  ck_arena_free(a);
}

static void slow_closed(uv_handle_t *h) {
  slow_req *s = h->data;
  free(s->body);
  free(s);
}

static void slow_fire(uv_timer_t *t) {
  slow_req *s = t->data;
  ck_http_respond(s->req, 200, "application/json", s->body, strlen(s->body), NULL);
  ck_http_request_release(s->req);
  uv_close((uv_handle_t *)t, slow_closed);
}

/* An SSE answer: `first` (a notification, may be NULL) and then the response. */
static void respond_sse(ck_http_request *req, const ck_json *first, const ck_json *resp) {
  ck_arena *a = ck_arena_new(0);
  ck_http_header h[] = {{"Content-Type", "text/event-stream"}, {NULL, NULL}};
  ck_http_stream_begin(req, 200, h);
  if (first != NULL) {
    char *ev = ck_arena_printf(a, "event: message\ndata: %s\n\n", ck_json_dumps(a, first, NULL));
    ck_http_stream_write(req, ev, strlen(ev));
  }
  char *ev = ck_arena_printf(a, "data: %s\n\n", ck_json_dumps(a, resp, NULL));
  ck_http_stream_write(req, ev, strlen(ev));
  ck_http_stream_end(req);
  ck_http_request_release(req);
  ck_arena_free(a);
}

static void on_http(ck_http_request *req, void *ud) {
  uv_loop_t *loop = ud;
  ck_arena *a = req->arena;
  const char *sid = ck_http_request_header(req, "Mcp-Session-Id");
  if (strcmp(req->method, "DELETE") == 0) {
    if (sid != NULL && strcmp(sid, session) == 0)
      session[0] = '\0';
    ck_http_respond(req, 200, NULL, "", 0, NULL);
    ck_http_request_release(req);
    return;
  }
  if (strcmp(req->method, "GET") == 0) {
    on_get(req, sid);
    return;
  }
  ck_json *msg = NULL;
  const char *accept = ck_http_request_header(req, "Accept");
  if (strcmp(req->method, "POST") != 0 || accept == NULL ||
      strstr(accept, "text/event-stream") == NULL ||
      ck_json_parse(a, req->body, req->body_len, 0, &msg, NULL) != 0 || !ck_json_is_object(msg)) {
    ck_http_respond_error(req, 400, "bad_request", "bad request");
    ck_http_request_release(req);
    return;
  }
  const char *method = ck_json_object_get_str(msg, "method");
  const ck_json *id = ck_json_object_get(msg, "id");
  if (method != NULL && strcmp(method, "initialize") == 0) {
    snprintf(session, sizeof(session), "sess-%d", ++session_count);
    respond_json(req, common(a, msg), session);
    return;
  }
  if (sid == NULL || session[0] == '\0' || strcmp(sid, session) != 0) {
    ck_http_respond_error(req, sid == NULL ? 400 : 404, "session", "unknown session");
    ck_http_request_release(req);
    return;
  }
  if (method == NULL || id == NULL) { /* a notification or a response */
    ck_http_respond(req, 202, NULL, "", 0, NULL);
    ck_http_request_release(req);
    return;
  }
  const ck_json *params = ck_json_object_get(msg, "params");
  const char *name = ck_json_object_get_str(params, "name");
  if (strcmp(method, "tools/call") == 0 && name != NULL && strcmp(name, "gets") == 0) {
    const char *t =
        ck_arena_printf(a, "open=%d tries=%d opened=%d", get_req != NULL, get_tries, get_opened);
    respond_json(req, response(a, id, text_result(a, t, false)), NULL);
    return;
  }
  if (strcmp(method, "tools/call") == 0 && name != NULL && strcmp(name, "change_later") == 0) {
    if (get_req == NULL) {
      respond_json(req, response(a, id, text_result(a, "no GET stream", true)), NULL);
      return;
    }
    atomic_store(&later_tool, true);
    const char *ev = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
                     "\"notifications/tools/list_changed\"}\n\n";
    ck_http_stream_write(get_req, ev, strlen(ev));
    respond_json(req, response(a, id, text_result(a, "changed later", false)), NULL);
    return;
  }
  ck_json *out = common(a, msg);
  if (out != NULL && name != NULL && strcmp(name, "echo") == 0) {
    respond_sse(req,
                parse(a, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{"
                         "\"level\":\"info\",\"data\":\"echoing\"}}"),
                out);
    return;
  }
  if (out != NULL) {
    respond_json(req, out, NULL);
    return;
  }
  if (strcmp(name, "change") == 0) {
    atomic_store(&extra_tool, true);
    respond_sse(req,
                parse(a, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}"),
                response(a, id, text_result(a, "changed", false)));
  } else if (strcmp(name, "whoami") == 0) {
    const char *v = ck_http_request_header(req, "MCP-Protocol-Version");
    const char *t = ck_arena_printf(a, "session=%s version=%s", sid, v ? v : "-");
    respond_json(req, response(a, id, text_result(a, t, false)), NULL);
  } else if (strcmp(name, "expire") == 0) {
    session[0] = '\0';
    respond_json(req, response(a, id, text_result(a, "expired", false)), NULL);
  } else if (strcmp(name, "slow") == 0) {
    int64_t ms = 2000;
    ck_json_int_value(ck_json_object_get(ck_json_object_get(params, "arguments"), "ms"), &ms);
    slow_req *s = calloc(1, sizeof(*s));
    s->req = req;
    s->body = strdup(ck_json_dumps(a, response(a, id, text_result(a, "slept", false)), NULL));
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, slow_fire, (uint64_t)ms, 0);
  } else {
    respond_json(req, error_response(a, id, -32602, "not over HTTP"), NULL);
  }
}

static int run_http(int port) {
  uv_loop_t *loop = uv_default_loop();
  ck_http_server *srv = ck_http_server_new(loop, NULL, on_http, loop);
  if (srv == NULL || ck_http_listen(srv, "127.0.0.1", port) != 0) {
    fprintf(stderr, "mcp-server: cannot listen on port %d\n", port);
    return 1;
  }
  printf("listening on http://127.0.0.1:%d\n", ck_http_server_port(srv));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}

int main(int argc, char **argv) {
  bool ignore_eof = false;
  long port = -1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--ignore-eof") == 0) {
      ignore_eof = true;
    } else if (strcmp(argv[i], "--no-get") == 0) {
      no_get = true;
    } else if (strcmp(argv[i], "--ignore-term") == 0) {
      signal(SIGTERM, SIG_IGN);
    } else if (strcmp(argv[i], "--http") == 0 && i + 1 < argc) {
      char *end = NULL;
      port = strtol(argv[++i], &end, 10);
      if (*end != '\0' || port < 0 || port > 65535)
        return 2;
    } else {
      fprintf(stderr,
              "usage: mcp-server [--ignore-eof] [--ignore-term] [--http PORT [--no-get]]\n");
      return 2;
    }
  }
  return port >= 0 ? run_http((int)port) : run_stdio(ignore_eof);
}
