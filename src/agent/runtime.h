/* Internal: the agent runtime's state (runtime.c). */
#ifndef CK_AGENT_RUNTIME_H
#define CK_AGENT_RUNTIME_H

#include <chatkit/agent.h>
#include <chatkit/error.h>
#include <chatkit/model.h>

#include <stdatomic.h>

struct ck__source;
struct ck__toolset;

struct ck_agents {
  ck_agents_config cfg;
  ck_agent_def *agents; /* copied array */
  size_t nagents;
  size_t default_agent;
  struct ck__source ***sources; /* per agent: its MCP servers' current tool sets (toolsets.h) */
  /* Events are built here one at a time on the loop thread, for every run (ck__run.scratch):
   * each use empties it, so the runs need not hold 1 KiB each. */
  ck_arena *scratch;
};

/* One respond call, from the history load to the end of the answer. The loop thread owns it;
 * workers touch only their tool slots and the atomics. */
typedef struct ck__run {
  ck_agents *ag;
  ck_stream *s;
  ck_arena *arena;   /* lives for the run: input items, ids, tool call records */
  ck_arena *scratch; /* the runtime's (loop thread only), emptied after each pushed event */
  atomic_int refs;   /* the flow's own reference plus queued cancel messages */
  atomic_bool cancelled;
  bool ended; /* push_end/push_fail was called: the stream may be gone */
  const char *thread_id;
  size_t agent; /* the current agent (handoffs change it) */
  int turn;
  const char *model;    /* an allowed inference_options.model, or NULL */
  ck_json *tool_choice; /* forced by inference_options.tool_choice; reset after a tool ran */
  ck_json *input;       /* Responses input items so far */
  ck_model_call *call;  /* the model call in flight, or NULL */
  ck_json *calls;       /* this turn's tool calls: {id?, call_id, name, arguments} */
  /* The assistant message being streamed. */
  bool msg_open;
  const char *msg_id, *msg_created;
  ck_json *msg_annotations;  /* kept for their count: annotation_added's index */
  atomic_bool tool_workflow; /* a tool opened or changed a workflow (ck_tool_workflow_task) */
  /* The reasoning workflow being streamed. */
  bool wf_open, thought_started;
  const char *wf_id, *wf_created;
  int64_t wf_start_us;
  ck_buf thought;
  int64_t (*clock_now_us)(void);
  /* The MCP tool sets the current turn offers (one per MCP server of its agent), held until
   * the next turn or the end of the run, so the tools it calls stay valid. */
  struct ck__toolset **sets;
  size_t nsets;
  /* Tools of the current turn. */
  struct ck_tool_ctx *tool_ctx;
  size_t ntools_running;
  atomic_int tools_left;
  /* Title generation after the first exchange. */
  bool want_title, title_call;
  char *user_text;
  ck_buf title;
} ck__run;

/** Pushes a canonical event into the run's stream; a stream that is gone marks the run
 * cancelled. NULL (out of memory while building it) counts as gone. */
void ck__run_push(ck__run *r, ck_json *ev);

/** The model-call callback of every turn: model events become ChatKit events (events.c). */
void ck__run_on_model_event(ck_model_call *call, const ck_model_event *ev, void *ud);

/** Ends the assistant message being streamed, if any (content_part.done, item.done). */
void ck__run_close_message(ck__run *r);

/** Ends the reasoning workflow being streamed, if any. */
void ck__run_close_workflow(ck__run *r);

/** Ends the workflow the run's tools opened (ck_tool_workflow_task), if they did. */
void ck__run_end_tool_workflow(ck__run *r);

/* Sets member `k` of object `o` to `v`; returns `o`, or NULL if any is NULL or out of memory,
 * so builders can chain without checking each step. */
static inline ck_json *ck__json_set(ck_json *o, const char *k, ck_json *v) {
  if (o == NULL || v == NULL || ck_json_object_set(o, k, v) != CK_OK)
    return NULL;
  return o;
}

#endif
