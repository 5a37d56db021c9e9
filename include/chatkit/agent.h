/* chatkit/agent.h - turning a thread into model input (the agent layer's first half).
 *
 * The model sees a thread as a list of Responses-API input items. The conversion follows the
 * reference's ThreadItemConverter (protocol.md §9.3) text for text, so a conversation moved
 * from the Python SDK to this server reads the same to the model. Where the reference raises by
 * default (attachments, @-mention tags, non-string hidden context) this library has working
 * defaults that an integration can replace.
 */
#ifndef CHATKIT_AGENT_H
#define CHATKIT_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include <chatkit/json.h>
#include <chatkit/metrics.h>
#include <chatkit/server.h>
#include <chatkit/service.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Hooks for the parts of the conversion an integration may want to decide. Every entry may
 * be NULL for the default. Each returns CK_OK and appends zero or more content parts (input
 * items' `content` entries) to `parts`, allocating from `a`. */
typedef struct ck_input_hooks {
  void *ud;
  /** An attachment of a user message. Default: an image with a preview URL becomes
   * {"type":"input_image","image_url":<preview_url>,"detail":"auto"}; anything else an
   * input_text naming the file ("[Attached file: NAME (MIME)]"). */
  int (*attachment)(void *ud, ck_arena *a, const ck_json *attachment, ck_json *parts);
  /** An @-mention tag (first occurrence of each distinct tag text). Default: an input_text
   * "@TEXT: " followed by the tag's data as compact JSON. */
  int (*tag)(void *ud, ck_arena *a, const ck_json *tag, ck_json *parts);
} ck_input_hooks;

/** Converts thread items (oldest first; the array may hold RAW values) into Responses input
 * items, appended to `*out` (a new array from `a`). `max_chars` > 0 keeps only the newest
 * items whose converted text fits that budget (the newest item is always kept), so long
 * threads stay within the model's context. `hooks` may be NULL. Returns CK_OK or CK_ENOMEM. */
int ck_thread_to_model_input(ck_arena *a, const ck_json *items, const ck_input_hooks *hooks,
                             size_t max_chars, ck_json **out);

/** Serialises `v` exactly as Python's json.dumps does with its defaults (separators ", " and
 * ": ", non-ASCII escaped as \uXXXX, floats in Python's repr), the form the reference sends
 * for tool-call arguments and outputs. Returns a string from `a`, or NULL when out of
 * memory. */
char *ck_json_dumps_python(ck_arena *a, const ck_json *v);

/* ---- Agents ------------------------------------------------------------------------------ */

typedef struct ck_tool_ctx ck_tool_ctx;
typedef struct ck_agents ck_agents;
typedef struct ck_model_client ck_model_client; /* chatkit/model.h */

/** A C tool. It runs on a worker thread and may block. It answers with exactly one of
 * ck_tool_result, ck_tool_result_text or ck_tool_error (no answer counts as an error the model
 * sees). Returning non-OK without an answer also reports an error to the model: a failing tool
 * never ends the conversation. */
typedef int (*ck_tool_fn)(void *ud, ck_tool_ctx *t, const ck_json *arguments);

typedef struct ck_tool_def {
  const char *name;            /* [a-zA-Z0-9_-], unique within an agent */
  const char *description;     /* shown to the model */
  const char *parameters_json; /* JSON Schema of the arguments (text); NULL: any object */
  ck_tool_fn fn;               /* C tool; NULL for a client tool */
  void *ud;
  /* A client tool runs in the browser: the call becomes a pending client_tool_call item, the
   * turn ends, and threads.add_client_tool_output resumes the agent with the output. */
  bool client;
} ck_tool_def;

/** The tool's answer: a JSON value (sent to the model as its compact JSON text). */
int ck_tool_result(ck_tool_ctx *t, const ck_json *result);
/** The tool's answer as plain text. */
int ck_tool_result_text(ck_tool_ctx *t, const char *text);
/** The tool failed: the model sees "An error occurred while running the tool. Please try
 * again. Error: <message>", as with the reference's default failure handler. */
int ck_tool_error(ck_tool_ctx *t, const char *message);
/** An arena for the tool's allocations (freed after the call). */
ck_arena *ck_tool_arena(ck_tool_ctx *t);
/** The request context of the conversation (user id, integrator data). */
const ck_ctx *ck_tool_request_ctx(ck_tool_ctx *t);
/** Streams an event to the client while the tool runs (a progress update, a widget item...):
 * any reference-compatible event JSON. Thread-safe. */
int ck_tool_emit(ck_tool_ctx *t, const ck_json *event);
/** Adds `task` (a workflow task: {"type":"custom","title":...}, {"type":"search",...}...) to the
 * conversation's open workflow, starting a custom workflow when none is open, as the
 * reference's add_workflow_task (a new custom workflow is shown with its first task). The
 * workflow stays open after the tool; another visible item a tool shows (ck_tool_widget, or an
 * item through ck_tool_emit), the next assistant message or reasoning, or the end of the
 * answer ends it (summary: its duration). Thread-safe. Returns what ck_stream_push_workflow
 * returns; a task the protocol rejects stops the answer with an error event. */
int ck_tool_workflow_task(ck_tool_ctx *t, const ck_json *task);

/** Replaces task `index` of the open workflow (workflow.task.updated). Thread-safe. */
int ck_tool_workflow_update(ck_tool_ctx *t, const ck_json *task, size_t index);

/** Ends the open workflow now with `summary` (NULL: its duration) and `expanded`. Thread-safe. */
int ck_tool_workflow_end(ck_tool_ctx *t, const ck_json *summary, bool expanded);

/** Asks the browser to run client tool `name` with `arguments` (a JSON object; NULL: {}) once
 * this tool has answered, as the reference's context.client_tool_call: the turn then ends with
 * a pending client_tool_call item carrying this call's call_id, `name` and `arguments`, and
 * threads.add_client_tool_output resumes the agent, whose model then sees the browser's output
 * as the answer to this call. This tool's own answer is not sent to the model. One per turn:
 * with several, the first tool in call order wins; a second request from the same tool
 * replaces its first. Returns CK_OK, CK_EINVAL or CK_ENOMEM. */
int ck_tool_client_call(ck_tool_ctx *t, const char *name, const ck_json *arguments);

/** Streams a finished widget (one thread.item.done with a new widget item). */
int ck_tool_widget(ck_tool_ctx *t, const ck_json *widget, const char *copy_text);

/* An MCP client (see chatkit/mcp.h). */
typedef struct ck_mcp ck_mcp;

typedef struct ck_agent_def {
  const char *name;         /* unique; handoff tools are named transfer_to_<name> */
  const char *instructions; /* the system prompt */
  const char *model;        /* NULL: the client's default model */
  const ck_tool_def *tools;
  size_t ntools;
  const char *const *handoffs; /* names of agents this one may hand the conversation to */
  size_t nhandoffs;
  int max_turns;           /* model calls per user message; 0: 10 */
  const ck_json *settings; /* extra request fields (temperature, reasoning...), or NULL */
  /* MCP servers whose tools the agent offers besides `tools`, named as ck_mcp_tools names
   * them with the matching prefix (a NULL array or entry: no prefix). Unlike a snapshot taken
   * with ck_mcp_tools, these follow the server: when it announces that its tools changed, the
   * list is fetched again on a worker and used from the next model call on. Borrowed; the
   * servers must outlive the runtime. */
  ck_mcp *const *mcp;
  const char *const *mcp_prefixes;
  size_t nmcp;
} ck_agent_def;

typedef struct ck_agents_config {
  ck_model_client *client;    /* required; borrowed; runs on the service's loop */
  ck_service *service;        /* required; borrowed: the loop and the worker threads */
  const ck_agent_def *agents; /* copied (names and texts are borrowed: keep them alive) */
  size_t nagents;
  const char *default_agent; /* NULL: the first */
  int history_items;         /* thread items loaded as context; 0: 100 */
  size_t history_chars;      /* character budget for the context; 0: 200000 */
  bool auto_title;           /* name an untitled thread after the first exchange */
  const char *title_model;   /* NULL: the agent's model */
  ck_input_hooks hooks;
  const char *const *allowed_models; /* inference_options.model values accepted, or NULL */
  size_t nallowed_models;
  /* The multi-agent routing hook: picks the agent that answers this message (by name; NULL
   * or an unknown name: the default agent). It runs on a worker thread before the first model
   * call and may block (a classifier, a lookup). `user_message` is NULL after a client tool
   * output. */
  const char *(*route)(void *ud, const ck_json *thread, const ck_json *user_message,
                       const ck_ctx *ctx);
  void *route_ud;
  /* Borrowed, may be NULL: model calls, tokens, errors and tool calls are counted here. */
  ck_metrics *metrics;
} ck_agents_config;

/** Creates the agent runtime. Returns NULL when out of memory or when the configuration is
 * invalid (no client or service, no agents, an unknown default or handoff name). */
ck_agents *ck_agents_new(const ck_agents_config *cfg);

/** Frees the runtime; conversations must have ended. NULL is a no-op. */
void ck_agents_free(ck_agents *ag);

/** The handler set that answers with the agents (respond; action is left to the
 * integration). */
ck_handlers ck_agents_handlers(ck_agents *ag);

#ifdef __cplusplus
}
#endif
#endif
