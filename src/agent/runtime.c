/* The agent loop (issue: Agents): a respond handler that streams a model's answer into the
 * thread, runs tools and hands off between agents.
 *
 * It is an asynchronous handler: respond (on a worker) loads the thread's history, converts it
 * to model input and returns CK_PENDING; the model call then runs on the service's loop, and
 * every model event becomes ChatKit events pushed into the stream (events.c, protocol.md §9.2). C
 * tools run on the service's workers; their results go back to the model in call order. */
#include "agent/runtime.h"
#include "agent/toolsets.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Configuration ---- */

static size_t find_agent(const ck_agents *ag, const char *name) {
  for (size_t i = 0; name != NULL && i < ag->nagents; i++)
    if (strcmp(ag->agents[i].name, name) == 0)
      return i;
  return SIZE_MAX;
}

ck_agents *ck_agents_new(const ck_agents_config *cfg) {
  if (cfg == NULL || cfg->client == NULL || cfg->service == NULL || cfg->nagents == 0)
    return NULL;
  ck_agents *ag = calloc(1, sizeof(*ag));
  if (ag == NULL)
    return NULL;
  ag->cfg = *cfg;
  ag->nagents = cfg->nagents;
  ag->agents = calloc(cfg->nagents, sizeof(*ag->agents));
  if (ag->agents == NULL)
    goto fail;
  memcpy(ag->agents, cfg->agents, cfg->nagents * sizeof(*ag->agents));
  ag->default_agent = cfg->default_agent ? find_agent(ag, cfg->default_agent) : 0;
  if (ag->default_agent == SIZE_MAX)
    goto fail;
  for (size_t i = 0; i < ag->nagents; i++)
    for (size_t k = 0; k < ag->agents[i].nhandoffs; k++)
      if (find_agent(ag, ag->agents[i].handoffs[k]) == SIZE_MAX)
        goto fail;
  ag->sources = calloc(ag->nagents, sizeof(*ag->sources));
  ag->scratch = ck_arena_new(1024);
  if (ag->sources == NULL || ag->scratch == NULL)
    goto fail;
  for (size_t i = 0; i < ag->nagents; i++)
    if (ck__sources_new(&ag->agents[i], &ag->sources[i]) != CK_OK)
      goto fail;
  return ag;
fail:
  ck_agents_free(ag);
  return NULL;
}

void ck_agents_free(ck_agents *ag) {
  if (ag == NULL)
    return;
  for (size_t i = 0; ag->sources != NULL && i < ag->nagents; i++)
    ck__sources_free(ag->sources[i], ag->agents[i].nmcp);
  free(ag->sources);
  ck_arena_free(ag->scratch);
  free(ag->agents);
  free(ag);
}

/* The handoff tool name of the reference: transfer_to_<name>, lower-cased, anything outside
 * [a-z0-9_] as '_'. */
static char *handoff_tool_name(ck_arena *a, const char *agent) {
  char *name = ck_arena_printf(a, "transfer_to_%s", agent);
  for (char *p = name ? name + 12 : NULL; p && *p; p++) {
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
    else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
      *p = '_';
  }
  return name;
}

/* ---- Run lifetime ---- */

/* Drops the turn's references to its MCP tool sets. */
static void release_sets(ck__run *r) {
  for (size_t i = 0; i < r->nsets; i++)
    ck__toolset_release(r->sets[i]);
  r->nsets = 0;
}

static void run_release(ck__run *r) {
  if (atomic_fetch_sub(&r->refs, 1) != 1)
    return;
  release_sets(r);
  ck_buf_free(&r->thought);
  ck_buf_free(&r->title);
  ck_arena_free(r->arena);
  free(r);
}

/* Ends the conversation turn: after this the stream may be freed at any time, so nothing
 * touches it again. `code`/`message` NULL means success. */
static void finish(ck__run *r, bool failed, const char *code, const char *message,
                   int allow_retry) {
  if (r->ended)
    return;
  r->ended = true;
  ck_stream_on_cancel(r->s, NULL, NULL);
  if (failed)
    ck_stream_push_fail(r->s, code, message, allow_retry);
  else
    ck_stream_push_end(r->s);
  run_release(r);
}

void ck__run_push(ck__run *r, ck_json *ev) {
  if (ev == NULL || ck_stream_push_canonical(r->s, ev) == CK_ECANCELLED)
    atomic_store(&r->cancelled, true);
}

static ck_json *set(ck_json *o, const char *k, ck_json *v) {
  return ck__json_set(o, k, v);
}

/* ---- Turns ---- */

static void start_turn(ck__run *r);
static void on_model_done(ck_model_call *call, const ck_model_result *res, void *ud);

static const ck_agent_def *agent_of(ck__run *r) {
  return &r->ag->agents[r->agent];
}

/* The turn's tools: the agent's own, then those of its MCP servers' sets. */
static size_t tool_count(const ck__run *r) {
  size_t n = r->ag->agents[r->agent].ntools;
  for (size_t i = 0; i < r->nsets; i++) {
    size_t k = 0;
    if (r->sets[i] != NULL)
      ck__toolset_defs(r->sets[i], &k);
    n += k;
  }
  return n;
}

static const ck_tool_def *tool_at(const ck__run *r, size_t i) {
  const ck_agent_def *def = &r->ag->agents[r->agent];
  if (i < def->ntools)
    return &def->tools[i];
  i -= def->ntools;
  for (size_t s = 0; s < r->nsets; s++) {
    size_t k = 0;
    const ck_tool_def *defs = r->sets[s] ? ck__toolset_defs(r->sets[s], &k) : NULL;
    if (i < k)
      return &defs[i];
    i -= k;
  }
  return NULL;
}

/* The tools the current agent offers the model: its own tools and its handoffs. */
static ck_json *tools_json(ck__run *r) {
  ck_arena *a = r->arena;
  const ck_agent_def *def = agent_of(r);
  ck_json *tools = ck_json_array(a);
  for (size_t i = 0; i < tool_count(r); i++) {
    const ck_tool_def *t = tool_at(r, i);
    ck_json *params = NULL;
    const char *schema = t->parameters_json ? t->parameters_json : "{\"type\":\"object\"}";
    if (ck_json_parse(a, schema, strlen(schema), 0, &params, NULL) != CK_OK)
      continue;
    ck_json *o = ck_json_object(a);
    set(o, "type", ck_json_str(a, "function"));
    set(o, "name", ck_json_str(a, t->name));
    if (t->description)
      set(o, "description", ck_json_str(a, t->description));
    set(o, "parameters", params);
    ck_json_array_append(tools, o);
  }
  for (size_t i = 0; i < def->nhandoffs; i++) {
    ck_json *o = ck_json_object(a);
    ck_json *params = NULL;
    const char *schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";
    ck_json_parse(a, schema, strlen(schema), 0, &params, NULL);
    set(o, "type", ck_json_str(a, "function"));
    set(o, "name", ck_json_str(a, handoff_tool_name(a, def->handoffs[i])));
    set(o, "description",
        ck_json_str(a, ck_arena_printf(a, "Handoff to the %s agent to handle the request.",
                                       def->handoffs[i])));
    set(o, "parameters", params);
    ck_json_array_append(tools, o);
  }
  return tools;
}

/* The model call failed: keep what was streamed, then an error event fitting the cause. */
static void fail_from_model(ck__run *r, const ck_model_result *res) {
  ck__run_close_message(r);
  ck__run_close_workflow(r);
  switch (res->error) {
  case CK_MODEL_ERR_AUTH:
    finish(r, true, NULL,
           "The model provider rejected the request's credentials. Check the API key.", 0);
    break;
  case CK_MODEL_ERR_INVALID_REQUEST:
    finish(r, true, NULL, "The model provider rejected the request.", 0);
    break;
  default:
    finish(r, true, "stream.error", NULL, 1);
    break;
  }
}

static void title_done(ck__run *r) {
  /* Keep the first line without quotes and spaces around it, at most 80 bytes. */
  const char *t = r->title.data ? r->title.data : "";
  size_t n = strcspn(t, "\r\n");
  while (n > 0 && strchr(" \t\"'", t[n - 1]))
    n--;
  while (n > 0 && strchr(" \t\"'", *t)) {
    t++;
    n--;
  }
  if (n > 80)
    n = 80;
  while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
    n--;
  if (n > 0) {
    ck_json *v = ck_json_strn(r->scratch, t, n);
    if (v != NULL)
      ck_stream_push_thread_set(r->s, "title", v);
  }
  ck_arena_reset(r->scratch);
  finish(r, false, NULL, NULL, 0);
}

static void start_title(ck__run *r) {
  r->title_call = true;
  ck_json *input = ck_json_str(r->arena, r->user_text ? r->user_text : "");
  ck_model_request req = {0};
  req.model = r->ag->cfg.title_model ? r->ag->cfg.title_model : agent_of(r)->model;
  req.instructions = "Write a short title (at most six words) for a conversation that starts "
                     "with the user's message below. Answer with the title only, without quotes.";
  req.input = input;
  int rc = ck_model_call_start(r->ag->cfg.client, &req, ck__run_on_model_event, on_model_done, r,
                               &r->call);
  if (rc != CK_OK)
    finish(r, false, NULL, NULL, 0); /* a missing title is not worth an error */
}

static void end_of_answer(ck__run *r) {
  ck__run_close_message(r);
  ck__run_close_workflow(r);
  ck__run_end_tool_workflow(r);
  if (r->want_title && !atomic_load(&r->cancelled))
    start_title(r);
  else
    finish(r, false, NULL, NULL, 0);
}

/* ---- Tools ---- */

struct ck_tool_ctx {
  ck__run *r;
  size_t index;
  const ck_tool_def *def;
  ck_arena *arena;
  const char *arguments;
  char *answer; /* heap */
  bool failed;  /* the answer is ck_tool_error's (for the tool-call metrics) */
  /* ck_tool_client_call: the client tool to run after this one (heap), or NULL. */
  char *client_name, *client_args;
};

static int answer(ck_tool_ctx *t, const char *text, size_t len) {
  if (t->answer != NULL)
    return CK_ESTATE;
  t->answer = strndup(text, len);
  return t->answer ? CK_OK : CK_ENOMEM;
}

int ck_tool_workflow_task(ck_tool_ctx *t, const ck_json *task) {
  atomic_store(&t->r->tool_workflow, true);
  return ck_stream_push_workflow(t->r->s, CK_WORKFLOW_ADD_TASK, task, 0, false);
}

int ck_tool_workflow_update(ck_tool_ctx *t, const ck_json *task, size_t index) {
  atomic_store(&t->r->tool_workflow, true);
  return ck_stream_push_workflow(t->r->s, CK_WORKFLOW_UPDATE_TASK, task, index, false);
}

int ck_tool_workflow_end(ck_tool_ctx *t, const ck_json *summary, bool expanded) {
  return ck_stream_push_workflow(t->r->s, CK_WORKFLOW_END, summary, 0, expanded);
}

int ck_tool_client_call(ck_tool_ctx *t, const char *name, const ck_json *arguments) {
  if (t == NULL || name == NULL || name[0] == '\0' ||
      (arguments != NULL && !ck_json_is_object(arguments)))
    return CK_EINVAL;
  char *args = arguments ? ck_json_dumps(t->arena, arguments, NULL) : "{}";
  char *n = strdup(name), *a = args ? strdup(args) : NULL;
  if (n == NULL || a == NULL) {
    free(n);
    free(a);
    return CK_ENOMEM;
  }
  free(t->client_name);
  free(t->client_args);
  t->client_name = n;
  t->client_args = a;
  return CK_OK;
}

int ck_tool_result(ck_tool_ctx *t, const ck_json *result) {
  size_t len = 0;
  char *text = ck_json_dumps(t->arena, result, &len);
  return text ? answer(t, text, len) : CK_ENOMEM;
}

int ck_tool_result_text(ck_tool_ctx *t, const char *text) {
  return answer(t, text, strlen(text));
}

int ck_tool_error(ck_tool_ctx *t, const char *message) {
  t->failed = true;
  char *text = ck_arena_printf(t->arena,
                               "An error occurred while running the tool. Please try again. "
                               "Error: %s",
                               message ? message : "unknown error");
  return text ? answer(t, text, strlen(text)) : CK_ENOMEM;
}

ck_arena *ck_tool_arena(ck_tool_ctx *t) {
  return t->arena;
}

const ck_ctx *ck_tool_request_ctx(ck_tool_ctx *t) {
  return ck_stream_ctx(t->r->s);
}

/* protocol.md §9.2: an item a tool shows (added or done), other than a client tool call or
 * hidden context, first ends the workflow the tools have open. */
static void end_workflow_before(ck_tool_ctx *t, const ck_json *event) {
  const char *type = ck_json_object_get_str(event, "type");
  const char *item = ck_json_object_get_str(ck_json_object_get(event, "item"), "type");
  if (type == NULL || item == NULL ||
      (strcmp(type, "thread.item.added") != 0 && strcmp(type, "thread.item.done") != 0))
    return;
  if (strcmp(item, "workflow") == 0 || strcmp(item, "client_tool_call") == 0 ||
      strcmp(item, "hidden_context_item") == 0)
    return;
  ck__run_end_tool_workflow(t->r);
}

int ck_tool_emit(ck_tool_ctx *t, const ck_json *event) {
  end_workflow_before(t, event);
  return ck_stream_push(t->r->s, event);
}

int ck_tool_widget(ck_tool_ctx *t, const ck_json *widget, const char *copy_text) {
  ck_arena *a = t->arena;
  ck_server *srv = ck_stream_server(t->r->s);
  ck_json *item = ck_json_object(a);
  set(item, "id", ck_json_str(a, ck_server_generate_id(srv, a, "message", NULL)));
  set(item, "thread_id", ck_json_str(a, t->r->thread_id));
  set(item, "created_at", ck_json_str(a, ck_server_now(srv, a)));
  set(item, "type", ck_json_str(a, "widget"));
  set(item, "widget", ck_json_copy(a, widget));
  if (copy_text != NULL)
    set(item, "copy_text", ck_json_str(a, copy_text));
  ck_json *ev = ck_event_item(a, "thread.item.done", item);
  return ev ? ck_tool_emit(t, ev) : CK_ENOMEM;
}

static void tools_finished(void *ud);

/* Runs one C tool on a worker thread. */
static void tool_job(void *ud) {
  ck_tool_ctx *t = ud;
  ck_json *args = NULL;
  ck_json_error jerr;
  if (ck_json_parse(t->arena, t->arguments, strlen(t->arguments), 0, &args, &jerr) != CK_OK ||
      !ck_json_is_object(args)) {
    char *m = ck_arena_printf(t->arena,
                              "An error occurred while parsing tool arguments. Please try again "
                              "with valid JSON. Error: %s",
                              jerr.message);
    if (m != NULL)
      answer(t, m, strlen(m));
    ck_metrics_tool_call(t->r->ag->cfg.metrics, "invalid_arguments");
  } else if (!atomic_load(&t->r->cancelled)) {
    int rc = t->def->fn(t->def->ud, t, args);
    ck_metrics_tool_call(t->r->ag->cfg.metrics,
                         rc == CK_OK && t->answer && !t->failed ? "ok" : "error");
    if (t->answer == NULL)
      ck_tool_error(t, rc == CK_OK ? "the tool gave no result" : ck_strerror(rc));
  }
  if (atomic_fetch_sub(&t->r->tools_left, 1) == 1)
    ck_service_post(t->r->ag->cfg.service, tools_finished, t->r);
}

static const ck_tool_def *find_tool(const ck__run *r, const char *name) {
  for (size_t i = 0; name != NULL && i < tool_count(r); i++)
    if (strcmp(tool_at(r, i)->name, name) == 0)
      return tool_at(r, i);
  return NULL;
}

static ck_json *call_item(ck_arena *a, const ck_json *call) {
  ck_json *fc = ck_json_object(a);
  set(fc, "type", ck_json_str(a, "function_call"));
  set(fc, "call_id", ck_json_copy(a, ck_json_object_get(call, "call_id")));
  set(fc, "name", ck_json_copy(a, ck_json_object_get(call, "name")));
  return set(fc, "arguments", ck_json_copy(a, ck_json_object_get(call, "arguments")));
}

static ck_json *output_item(ck_arena *a, const ck_json *call, const char *output) {
  ck_json *fo = ck_json_object(a);
  set(fo, "type", ck_json_str(a, "function_call_output"));
  set(fo, "call_id", ck_json_copy(a, ck_json_object_get(call, "call_id")));
  return set(fo, "output", ck_json_str(a, output));
}

/* Loop thread: every tool of the turn answered; their outputs go to the model in call order. */
static void client_tool_call(ck__run *r, const ck_json *call);

/* The client tool call a tool asked for (the first in call order), as the model's call of it:
 * the tool's own call id and item id, the client tool's name and arguments. NULL if none. */
static ck_json *requested_client_call(ck__run *r) {
  for (size_t i = 0; i < r->ntools_running; i++) {
    ck_tool_ctx *t = &r->tool_ctx[i];
    if (t->client_name == NULL)
      continue;
    const ck_json *call = ck_json_array_get(r->calls, t->index);
    ck_json *c = ck_json_object(r->arena);
    if (ck_json_object_get(call, "id") != NULL)
      set(c, "id", ck_json_copy(r->arena, ck_json_object_get(call, "id")));
    set(c, "call_id", ck_json_copy(r->arena, ck_json_object_get(call, "call_id")));
    set(c, "name", ck_json_str(r->arena, t->client_name));
    set(c, "arguments", ck_json_str(r->arena, t->client_args));
    return c;
  }
  return NULL;
}

static void tools_finished(void *ud) {
  ck__run *r = ud;
  /* A tool that asked for a client tool ends the turn there, as the reference's agents stop
   * at such a tool: the browser's output answers that call when the conversation resumes. */
  ck_json *client = atomic_load(&r->cancelled) ? NULL : requested_client_call(r);
  for (size_t i = 0; i < r->ntools_running; i++) {
    ck_tool_ctx *t = &r->tool_ctx[i];
    ck_json *out = output_item(r->arena, ck_json_array_get(r->calls, t->index), t->answer);
    ck_json_array_append(r->input, out);
    free(t->answer);
    free(t->client_name);
    free(t->client_args);
    ck_arena_free(t->arena);
  }
  free(r->tool_ctx);
  r->tool_ctx = NULL;
  r->ntools_running = 0;
  if (atomic_load(&r->cancelled)) {
    finish(r, false, NULL, NULL, 0);
    return;
  }
  if (client != NULL) {
    ck_metrics_tool_call(r->ag->cfg.metrics, "client");
    client_tool_call(r, client);
    end_of_answer(r);
    return;
  }
  start_turn(r);
}

/* A client tool call ends the turn with a pending client_tool_call item. */
static void client_tool_call(ck__run *r, const ck_json *call) {
  ck_arena *a = r->scratch;
  ck_server *srv = ck_stream_server(r->s);
  ck_json *args = NULL;
  const char *text = ck_json_object_get_str(call, "arguments");
  if (text == NULL || ck_json_parse(a, text, strlen(text), 0, &args, NULL) != CK_OK ||
      !ck_json_is_object(args))
    args = ck_json_object(a);
  const char *id = ck_json_object_get_str(call, "id");
  ck_json *item = ck_json_object(a);
  set(item, "id", ck_json_str(a, id ? id : ck_server_generate_id(srv, a, "tool_call", NULL)));
  set(item, "thread_id", ck_json_str(a, r->thread_id));
  set(item, "created_at", ck_json_str(a, ck_server_now(srv, a)));
  set(item, "type", ck_json_str(a, "client_tool_call"));
  set(item, "status", ck_json_str(a, "pending"));
  set(item, "call_id", ck_json_copy(a, ck_json_object_get(call, "call_id")));
  set(item, "name", ck_json_copy(a, ck_json_object_get(call, "name")));
  set(item, "arguments", args);
  ck__run_push(r, ck_event_item(a, "thread.item.done", item));
  ck_arena_reset(a);
}

/* After a model turn that asked for tools: hand off, end at a client tool, or run C tools. */
static void handle_calls(ck__run *r) {
  const ck_agent_def *def = agent_of(r);
  size_t n = ck_json_array_size(r->calls);
  /* A handoff switches agents; only the first counts, as in the reference. */
  for (size_t i = 0; i < n; i++) {
    const ck_json *call = ck_json_array_get(r->calls, i);
    const char *name = ck_json_object_get_str(call, "name");
    for (size_t k = 0; k < def->nhandoffs; k++) {
      if (strcmp(name, handoff_tool_name(r->arena, def->handoffs[k])) != 0)
        continue;
      r->agent = find_agent(r->ag, def->handoffs[k]);
      ck_json_array_append(r->input, call_item(r->arena, call));
      const char *out = ck_arena_printf(r->arena, "{\"assistant\": \"%s\"}", def->handoffs[k]);
      ck_json_array_append(r->input, output_item(r->arena, call, out));
      r->tool_choice = NULL;
      start_turn(r);
      return;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const ck_json *call = ck_json_array_get(r->calls, i);
    const ck_tool_def *t = find_tool(r, ck_json_object_get_str(call, "name"));
    if (t != NULL && t->client) {
      ck_metrics_tool_call(r->ag->cfg.metrics, "client");
      client_tool_call(r, call);
      end_of_answer(r);
      return;
    }
  }
  r->tool_ctx = calloc(n, sizeof(*r->tool_ctx));
  if (r->tool_ctx == NULL) {
    finish(r, true, "stream.error", NULL, 1);
    return;
  }
  /* Every call is answered: unknown tools get the reference's "not found" text. */
  size_t running = 0;
  for (size_t i = 0; i < n; i++) {
    const ck_json *call = ck_json_array_get(r->calls, i);
    ck_json_array_append(r->input, call_item(r->arena, call));
    ck_tool_ctx *t = &r->tool_ctx[running++];
    t->r = r;
    t->index = i;
    t->def = find_tool(r, ck_json_object_get_str(call, "name"));
    t->arena = ck_arena_new(2048);
    t->arguments = ck_json_object_get_str(call, "arguments");
    if (t->def == NULL || t->def->fn == NULL) {
      char *m =
          ck_arena_printf(t->arena, "Tool '%s' not found.", ck_json_object_get_str(call, "name"));
      answer(t, m, strlen(m));
    }
  }
  r->ntools_running = running;
  r->tool_choice = NULL; /* a forced tool choice is reset once a tool ran */
  atomic_store(&r->tools_left, (int)running + 1);
  for (size_t i = 0; i < running; i++) {
    ck_tool_ctx *t = &r->tool_ctx[i];
    if (t->answer != NULL)
      atomic_fetch_sub(&r->tools_left, 1);
    else
      ck_service_submit(r->ag->cfg.service, tool_job, t);
  }
  /* The extra count keeps the last worker from finishing the turn before all were queued. */
  if (atomic_fetch_sub(&r->tools_left, 1) == 1)
    tools_finished(r);
}

static void on_model_done(ck_model_call *call, const ck_model_result *res, void *ud) {
  ck__run *r = ud;
  r->call = NULL;
  bool cancelled = res->error == CK_MODEL_ERR_CANCELLED, failed = res->status != CK_OK;
  ck_metrics_model_call(r->ag->cfg.metrics,
                        cancelled ? "cancelled"
                        : failed  ? "error"
                                  : "ok",
                        failed && !cancelled ? ck_model_error_name(res->error) : NULL);
  if (r->title_call) {
    title_done(r);
    return;
  }
  if (atomic_load(&r->cancelled) || res->error == CK_MODEL_ERR_CANCELLED) {
    finish(r, false, NULL, NULL, 0); /* the pipeline's cancellation routine saves the rest */
    return;
  }
  if (res->status != CK_OK) {
    fail_from_model(r, res);
    return;
  }
  if (ck_json_array_size(r->calls) > 0) {
    ck__run_close_message(r);
    ck__run_close_workflow(r);
    handle_calls(r);
    return;
  }
  end_of_answer(r);
}

static void start_turn(ck__run *r) {
  const ck_agent_def *def = agent_of(r);
  int max_turns = def->max_turns > 0 ? def->max_turns : 10;
  if (++r->turn > max_turns) {
    char *m = ck_arena_printf(r->arena, "The agent stopped after %d model calls.", max_turns);
    finish(r, true, NULL, m, 0);
    return;
  }
  r->calls = ck_json_array(r->arena);
  /* This turn's MCP tools: the sets current now (a server that announced a change gets its
   * list fetched again in the background, for a later turn). */
  release_sets(r);
  r->sets = def->nmcp ? ck_arena_calloc(r->arena, def->nmcp * sizeof(*r->sets)) : NULL;
  if (r->sets != NULL) {
    ck__sources_snapshot(r->ag->sources[r->agent], def->nmcp, r->ag->cfg.service, r->sets);
    r->nsets = def->nmcp;
  }
  ck_model_request req = {0};
  req.model = r->model ? r->model : def->model;
  req.instructions = def->instructions;
  req.input = r->input;
  req.tools = tools_json(r);
  req.tool_choice = r->tool_choice;
  req.extra = def->settings;
  req.no_done_text = true; /* the pipeline keeps the message text (ck_stream_push_message_done) */
  int rc = ck_model_call_start(r->ag->cfg.client, &req, ck__run_on_model_event, on_model_done, r,
                               &r->call);
  if (rc != CK_OK)
    finish(r, true, "stream.error", NULL, 1);
}

/* ---- Cancellation ---- */

static void cancel_on_loop(void *ud) {
  ck__run *r = ud;
  if (!r->ended && r->call != NULL)
    ck_model_call_cancel(r->call);
  run_release(r);
}

/* Runs with the stream's lock held, on any thread: only signal the loop. */
static void on_cancel(void *ud) {
  ck__run *r = ud;
  atomic_store(&r->cancelled, true);
  atomic_fetch_add(&r->refs, 1);
  if (ck_service_post(r->ag->cfg.service, cancel_on_loop, r) != CK_OK)
    atomic_fetch_sub(&r->refs, 1);
}

static void start_on_loop(void *ud) {
  start_turn(ud);
}

/* ---- respond ---- */

static int64_t wall_us(void) {
  return (int64_t)uv_hrtime() / 1000;
}

/* The user's words, for the title call. */
static char *user_text(ck_arena *a, const ck_json *msg) {
  ck_buf b;
  ck_buf_init(&b, 4096);
  const ck_json *content = ck_json_object_get(msg, "content");
  for (size_t i = 0; i < ck_json_array_size(content); i++) {
    const char *t = ck_json_object_get_str(ck_json_array_get(content, i), "text");
    if (t != NULL && ck_buf_puts(&b, t) != CK_OK)
      break;
  }
  char *out = ck_arena_strndup(a, b.data ? b.data : "", b.len);
  ck_buf_free(&b);
  return out;
}

static bool model_allowed(const ck_agents *ag, const char *model) {
  for (size_t i = 0; i < ag->cfg.nallowed_models; i++)
    if (strcmp(ag->cfg.allowed_models[i], model) == 0)
      return true;
  return false;
}

static int agents_respond(void *ud, ck_stream *s, const ck_json *user_message) {
  ck_agents *ag = ud;
  ck__run *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return CK_ENOMEM;
  atomic_init(&r->refs, 1);
  atomic_init(&r->cancelled, false);
  atomic_init(&r->tools_left, 0);
  atomic_init(&r->tool_workflow, false);
  r->ag = ag;
  r->s = s;
  r->agent = ag->default_agent;
  r->clock_now_us = wall_us;
  r->arena = ck_arena_new(2048);
  r->scratch = ag->scratch; /* loop thread only; this function may run on a worker */
  ck_buf_init(&r->thought, 0);
  ck_buf_init(&r->title, 4096);
  /* The history's own scratch: this may be a worker thread, where the shared one is off limits. */
  ck_arena *hist = ck_arena_new(4096);
  if (r->arena == NULL || hist == NULL) {
    ck_arena_free(hist);
    run_release(r);
    return CK_ENOMEM;
  }
  const ck_json *thread = ck_stream_thread_view(s);
  r->thread_id = ck_arena_strdup(r->arena, ck_json_object_get_str(thread, "id"));

  /* The history, oldest first: the newest items that the budget allows. The stored items and
   * the conversion's intermediate values go to the scratch arena and only the model input is
   * copied into the run's arena: the run lives as long as the answer streams, and keeping the
   * page there doubled the run's memory (2 KiB -> 6 KiB for a one-message thread). */
  ck_store *st = ck_server_store(ck_stream_server(s));
  ck_page page = {0};
  int limit = ag->cfg.history_items > 0 ? ag->cfg.history_items : 100;
  int rc = st->vt->load_thread_items(st, hist, r->thread_id, NULL, limit, CK_ORDER_DESC,
                                     ck_stream_ctx(s), &page);
  ck_json *items = ck_json_array(hist);
  for (size_t i = ck_json_array_size(page.data); rc == CK_OK && i > 0; i--)
    rc = ck_json_array_append(items, ck_json_array_get(page.data, i - 1));
  ck_json *input = NULL;
  if (rc == CK_OK)
    rc = ck_thread_to_model_input(hist, items, &ag->cfg.hooks,
                                  ag->cfg.history_chars ? ag->cfg.history_chars : 200000, &input);
  if (rc == CK_OK && input != NULL && (r->input = ck_json_copy(r->arena, input)) == NULL)
    rc = CK_ENOMEM;
  ck_arena_free(hist);
  if (rc != CK_OK) {
    run_release(r);
    return rc;
  }
  if (ag->cfg.route != NULL) {
    size_t chosen =
        find_agent(ag, ag->cfg.route(ag->cfg.route_ud, thread, user_message, ck_stream_ctx(s)));
    if (chosen != SIZE_MAX)
      r->agent = chosen;
  }
  const ck_json *opts = ck_json_object_get(user_message, "inference_options");
  const char *model = ck_json_object_get_str(opts, "model");
  if (model != NULL && model_allowed(ag, model))
    r->model = ck_arena_strdup(r->arena, model);
  const char *forced = ck_json_object_get_str(ck_json_object_get(opts, "tool_choice"), "id");
  if (forced != NULL) {
    r->tool_choice = ck_json_object(r->arena);
    set(r->tool_choice, "type", ck_json_str(r->arena, "function"));
    set(r->tool_choice, "name", ck_json_str(r->arena, forced));
  }
  if (ag->cfg.auto_title && user_message != NULL && ck_json_object_get(thread, "title") == NULL) {
    r->want_title = true;
    r->user_text = user_text(r->arena, user_message);
  }
  ck_stream_on_cancel(s, on_cancel, r);
  if (ck_service_post(ag->cfg.service, start_on_loop, r) != CK_OK) {
    ck_stream_on_cancel(s, NULL, NULL);
    run_release(r);
    return CK_ENOMEM;
  }
  return CK_PENDING;
}

ck_handlers ck_agents_handlers(ck_agents *ag) {
  ck_handlers h;
  memset(&h, 0, sizeof(h));
  h.ud = ag;
  h.respond = agents_respond;
  /* respond reads the history from the store and hands the rest to the loop: it blocks only
   * as much as the store does, which the service checks separately. */
  h.nonblocking = true;
  return h;
}
