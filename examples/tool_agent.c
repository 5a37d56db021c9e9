/* tool_agent: an AI agent with tools written in C, served to ChatKit by libchatkit.
 *
 * The config file of chatkit-server covers HTTP, MCP and browser tools; a tool that should run
 * inside the server, next to your data, is a C function. This program is the whole server for
 * such an agent: a model client, the agent runtime with two C tools, a SQLite store and the
 * HTTP service, with a clean shutdown on SIGINT/SIGTERM.
 *
 *   roll_dice        {sides, count} -> {"rolls": [...], "total": N}: the simplest tool, a JSON
 *                    answer for the model.
 *   roll_statistics  {sides, count, trials} -> a summary for the model; on the way it streams
 *                    a progress line, shows its step as a workflow task and shows the user a
 *                    widget (a card of the most common totals), which is how a tool talks to
 *                    the user directly.
 *
 * The model comes from the same environment variables as chatkit-server's:
 *
 *   OPENAI_API_KEY=sk-... build/examples/tool_agent 8000 sqlite:./data/dice.db
 *   OPENAI_BASE_URL=http://localhost:11434/v1 CHATKIT_MODEL=llama3.1 build/examples/tool_agent
 *
 * CHATKIT_API (responses or chat_completions) picks the wire API; by default it is the
 * Responses API for api.openai.com and Chat Completions anywhere else.
 */
#include <chatkit/chatkit.h>
#include <chatkit/model.h>

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

/* ---- Randomness ------------------------------------------------------------------------ */

/* Tools run on several worker threads at once, so the generator must be thread-safe: a
 * SplitMix64 sequence whose state only ever moves by one atomic addition. It is seeded from
 * the clock at start-up; dice do not need a cryptographic generator. */
static _Atomic uint64_t rng_state;

static uint64_t rng_next(void) {
  uint64_t z = atomic_fetch_add(&rng_state, 0x9E3779B97F4A7C15u) + 0x9E3779B97F4A7C15u;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* 1..sides. The modulo's bias is below sides / 2^64: invisible for dice. */
static int64_t roll(int64_t sides) {
  return 1 + (int64_t)(rng_next() % (uint64_t)sides);
}

/* ---- The tools ------------------------------------------------------------------------- */

/* Reads an optional integer argument. Returns false (and `why`) when it is present but not an
 * integer in [min, max]; the model then gets that text and can call again. */
static bool int_arg(ck_tool_ctx *t, const ck_json *args, const char *key, int64_t dflt, int64_t min,
                    int64_t max, int64_t *out, const char **why) {
  const ck_json *v = ck_json_object_get(args, key);
  *out = dflt;
  if (v == NULL || ck_json_is_null(v))
    return true;
  if (ck_json_int_value(v, out) != CK_OK || *out < min || *out > max) {
    *why = ck_arena_printf(ck_tool_arena(t), "%s must be an integer from %lld to %lld", key,
                           (long long)min, (long long)max);
    return false;
  }
  return true;
}

/* roll_dice: the model's arguments arrive parsed; the answer is any JSON value, which the
 * model receives as compact JSON text. Everything is allocated from the tool's arena, which is
 * freed after the call, so there is nothing to free here. */
static int roll_dice(void *ud, ck_tool_ctx *t, const ck_json *args) {
  (void)ud;
  ck_arena *a = ck_tool_arena(t);
  int64_t sides, count;
  const char *why = NULL;
  if (!int_arg(t, args, "sides", 6, 2, 1000, &sides, &why) ||
      !int_arg(t, args, "count", 1, 1, 100, &count, &why))
    return ck_tool_error(t, why);
  ck_json *rolls = ck_json_array(a);
  ck_json *out = ck_json_object(a);
  if (rolls == NULL || out == NULL)
    return CK_ENOMEM; /* also reported to the model as a failed call; the chat goes on */
  int64_t total = 0;
  for (int64_t i = 0; i < count; i++) {
    int64_t r = roll(sides);
    total += r;
    if (ck_json_array_append(rolls, ck_json_int(a, r)) != CK_OK)
      return CK_ENOMEM;
  }
  if (ck_json_object_set(out, "dice",
                         ck_json_str(a, ck_arena_printf(a, "%lldd%lld", (long long)count,
                                                        (long long)sides))) != CK_OK ||
      ck_json_object_set(out, "rolls", rolls) != CK_OK ||
      ck_json_object_set(out, "total", ck_json_int(a, total)) != CK_OK)
    return CK_ENOMEM;
  return ck_tool_result(t, out);
}

/* roll_statistics: a tool that takes a moment and keeps the user informed.
 *
 * ck_tool_emit streams any ChatKit event while the tool runs (here a progress line, which the
 * client shows until the next event replaces it); ck_tool_widget shows a finished widget item
 * in the thread. The model gets a short summary either way: it should talk about the result,
 * not redraw the card. */
static int roll_statistics(void *ud, ck_tool_ctx *t, const ck_json *args) {
  (void)ud;
  ck_arena *a = ck_tool_arena(t);
  int64_t sides, count, trials;
  const char *why = NULL;
  if (!int_arg(t, args, "sides", 6, 2, 100, &sides, &why) ||
      !int_arg(t, args, "count", 2, 1, 10, &count, &why) ||
      !int_arg(t, args, "trials", 10000, 1, 1000000, &trials, &why))
    return ck_tool_error(t, why);
  const char *dice = ck_arena_printf(a, "%lldd%lld", (long long)count, (long long)sides);

  const char *what = ck_arena_printf(a, "Rolling %s %lld times", dice, (long long)trials);
  int rc = ck_tool_emit(t, ck_event_progress(a, "chart", what));
  if (rc != CK_OK)
    return rc; /* CK_ECANCELLED: the user stopped the response; nobody is listening */
  /* The same step as a workflow the user can open afterwards: a task shown as loading, marked
   * complete once the rolls are in. The widget shown next ends the workflow. */
  ck_json *task = ck_json_object(a);
  ck_json_object_set(task, "type", ck_json_str(a, "custom"));
  ck_json_object_set(task, "title", ck_json_str(a, what));
  ck_json_object_set(task, "status_indicator", ck_json_str(a, "loading"));
  if ((rc = ck_tool_workflow_task(t, task)) != CK_OK)
    return rc;

  /* hits[k] counts the trials whose total was k (count <= k <= count * sides). */
  size_t ntotals = (size_t)(count * sides) + 1;
  int64_t *hits = ck_arena_calloc(a, ntotals * sizeof(*hits));
  if (hits == NULL)
    return CK_ENOMEM;
  double sum = 0;
  for (int64_t i = 0; i < trials; i++) {
    int64_t total = 0;
    for (int64_t d = 0; d < count; d++)
      total += roll(sides);
    hits[total]++;
    sum += (double)total;
  }
  double mean = round(sum / (double)trials * 100.0) / 100.0;
  ck_json_object_set(task, "status_indicator", ck_json_str(a, "complete"));
  if ((rc = ck_tool_workflow_update(t, task, 0)) != CK_OK)
    return rc;

  /* The card: a title, then the five most common totals with their share as a badge. Widgets
   * are plain JSON; building them from a text template is fine when, as here, only numbers are
   * put in (user text would need escaping: build such trees with the JSON API instead, as
   * examples/weather_api.c does). */
  ck_buf w;
  ck_buf_init(&w, 0);
  ck_buf_printf(&w,
                "{\"type\":\"Card\",\"size\":\"sm\",\"children\":["
                "{\"type\":\"Title\",\"value\":\"%s rolled %lld times\"},"
                "{\"type\":\"Caption\",\"value\":\"Most common totals (mean %.2f)\"}",
                dice, (long long)trials, mean);
  int64_t best_total = count;
  double best_pct = 0;
  bool *shown = ck_arena_calloc(a, ntotals * sizeof(*shown));
  for (int rank = 0; shown != NULL && rank < 5; rank++) {
    size_t top = 0;
    for (size_t k = (size_t)count; k < ntotals; k++)
      if (!shown[k] && (top == 0 || hits[k] > hits[top]))
        top = k;
    if (top == 0 || hits[top] == 0)
      break;
    shown[top] = true;
    double pct = round((double)hits[top] * 1000.0 / (double)trials) / 10.0;
    if (rank == 0) {
      best_total = (int64_t)top;
      best_pct = pct;
    }
    ck_buf_printf(&w,
                  ",{\"type\":\"Row\",\"justify\":\"between\",\"children\":["
                  "{\"type\":\"Text\",\"value\":\"Total %zu\"},"
                  "{\"type\":\"Badge\",\"label\":\"%.1f%%\",\"color\":\"%s\"}]}",
                  top, pct, rank == 0 ? "success" : "secondary");
  }
  ck_buf_puts(&w, "]}");
  ck_json *card = NULL;
  rc = shown == NULL ? CK_ENOMEM : ck_json_parse(a, w.data, w.len, 0, &card, NULL);
  ck_buf_free(&w);
  if (rc != CK_OK)
    return rc;
  const char *copy =
      ck_arena_printf(a, "%s x%lld: mean %.2f, most common total %lld (%.1f%%)", dice,
                      (long long)trials, mean, (long long)best_total, best_pct);
  if ((rc = ck_tool_widget(t, card, copy)) != CK_OK)
    return rc;

  ck_json *out = ck_json_object(a);
  if (out == NULL || ck_json_object_set(out, "dice", ck_json_str(a, dice)) != CK_OK ||
      ck_json_object_set(out, "trials", ck_json_int(a, trials)) != CK_OK ||
      ck_json_object_set(out, "mean", ck_json_float(a, mean)) != CK_OK ||
      ck_json_object_set(out, "most_common_total", ck_json_int(a, best_total)) != CK_OK ||
      ck_json_object_set(out, "most_common_share_pct", ck_json_float(a, best_pct)) != CK_OK ||
      ck_json_object_set(out, "widget_shown", ck_json_bool(a, true)) != CK_OK)
    return CK_ENOMEM;
  return ck_tool_result(t, out);
}

/* The tools as the model sees them: a name, a description and a JSON Schema of the arguments.
 * The descriptions are prompts: they tell the model when a tool is the right one. */
static const ck_tool_def dice_tools[] = {
    {"roll_dice", "Rolls dice and returns each roll and the total. Use it for every roll.",
     "{\"type\":\"object\",\"properties\":{"
     "\"sides\":{\"type\":\"integer\",\"minimum\":2,\"maximum\":1000,"
     "\"description\":\"Sides per die (default 6)\"},"
     "\"count\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,"
     "\"description\":\"How many dice (default 1)\"}}}",
     roll_dice, NULL, false},
    {"roll_statistics",
     "Rolls dice many times and reports how the totals are distributed; shows the user a chart "
     "card. Use it for questions about odds and likely totals.",
     "{\"type\":\"object\",\"properties\":{"
     "\"sides\":{\"type\":\"integer\",\"minimum\":2,\"maximum\":100},"
     "\"count\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},"
     "\"trials\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000000}}}",
     roll_statistics, NULL, false},
};

static const ck_agent_def dice_agent[] = {{
    .name = "Dice",
    .instructions = "You are a game master's assistant. Never make up dice results: call "
                    "roll_dice for every roll and report exactly what it returned. For questions "
                    "about odds, call roll_statistics; the user sees its card, so summarise it "
                    "in a sentence.",
    .model = NULL, /* the client's default model (CHATKIT_MODEL) */
    .tools = dice_tools,
    .ntools = sizeof(dice_tools) / sizeof(dice_tools[0]),
}};

/* ---- The server ------------------------------------------------------------------------ */

typedef struct app {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  ck_service *svc;
  ck_model_client *client;
  bool stopping;
} app;

/* Runs once the service has closed every connection and stopped its workers (and freed
 * itself). The model client and the signal handles are the loop's last handles: closing them
 * lets uv_run return. */
static void service_done(void *ud) {
  app *ap = ud;
  ck_model_client_free(ap->client);
  ap->client = NULL;
  uv_close((uv_handle_t *)&ap->sigint, NULL);
  uv_close((uv_handle_t *)&ap->sigterm, NULL);
}

/* SIGINT/SIGTERM: a graceful shutdown. Streams in progress may finish for the grace period,
 * then they are cancelled and their partial replies saved. */
static void on_signal(uv_signal_t *h, int signum) {
  app *ap = h->data;
  if (ap->stopping)
    return;
  ap->stopping = true;
  fprintf(stderr, "tool_agent: %s, shutting down\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
  ck_service_shutdown(ap->svc, service_done, ap);
}

/* A non-empty environment variable, or NULL. */
static const char *env(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

int main(int argc, char **argv) {
  long port = 8000;
  /* A store URL as chatkit-server's --store takes it: sqlite:PATH (its directory is created),
   * memory: or postgres://... */
  const char *store_url = argc > 2 ? argv[2] : "sqlite:./data/tool_agent.db";
  if (argc > 1) {
    char *end = NULL;
    port = strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || port < 0 || port > 65535) {
      fprintf(stderr, "usage: tool_agent [PORT [STORE_URL]]   (port 0 picks a free one)\n");
      return 2;
    }
  }
  const char *api = env("CHATKIT_API");
  if (api != NULL && strcmp(api, "responses") != 0 && strcmp(api, "chat_completions") != 0) {
    fprintf(stderr, "tool_agent: CHATKIT_API must be responses or chat_completions\n");
    return 2;
  }
  if (env("OPENAI_API_KEY") == NULL && env("OPENAI_BASE_URL") == NULL)
    fprintf(stderr, "tool_agent: warning: neither OPENAI_API_KEY nor OPENAI_BASE_URL is set; "
                    "OpenAI will refuse the model calls\n");
  signal(SIGPIPE, SIG_IGN); /* a browser that goes away must not kill the server */
  atomic_store(&rng_state, (uint64_t)uv_hrtime() ^ ((uint64_t)getpid() << 32));

  app ap;
  memset(&ap, 0, sizeof(ap));
  int exit_code = 1;
  char err[256] = "";
  ck_log *log = ck_log_new(stderr, CK_LOG_INFO, CK_LOG_LOGFMT);
  ck_store *store = NULL;
  ck_server *server = NULL;
  ck_agents *agents = NULL;
  if (ck_store_open_url(store_url, &store, err, sizeof(err)) != CK_OK) {
    fprintf(stderr, "tool_agent: cannot open the store %s: %s\n", store_url, err);
    ck_log_free(log);
    return 1;
  }
  /* The processor first, without handlers: the agents need the service, which needs the
   * processor, so the handlers are set once the agents exist. */
  ck_server_config scfg = {.store = store};
  server = ck_server_new(&scfg);
  if (server == NULL || uv_loop_init(&ap.loop) != 0) {
    fprintf(stderr, "tool_agent: out of memory\n");
    ck_server_free(server);
    ck_store_free(store);
    ck_log_free(log);
    return 1;
  }
  ck_service_config svcfg = {.server = server, .store = store, .log = log};
  ap.svc = ck_service_new(&ap.loop, &svcfg);
  if (ap.svc == NULL) {
    fprintf(stderr, "tool_agent: cannot start the service\n");
    goto close_loop;
  }
  uv_signal_init(&ap.loop, &ap.sigint);
  uv_signal_init(&ap.loop, &ap.sigterm);
  ap.sigint.data = ap.sigterm.data = &ap;

  /* The model client lives on the service's loop; strings in the config are copied. */
  ck_model_config mc = {
      .base_url = env("OPENAI_BASE_URL"), /* NULL: https://api.openai.com/v1 */
      .api_key = env("OPENAI_API_KEY"),
      .model = env("CHATKIT_MODEL") ? env("CHATKIT_MODEL") : "gpt-4.1-mini",
      .api = api == NULL                     ? CK_MODEL_API_AUTO
             : strcmp(api, "responses") == 0 ? CK_MODEL_API_RESPONSES
                                             : CK_MODEL_API_CHAT,
      .log = log,
  };
  int mrc = CK_OK;
  ap.client = ck_model_client_new(&ap.loop, &mc, &mrc);
  if (ap.client == NULL) {
    fprintf(stderr, "tool_agent: invalid model settings: %s\n", ck_strerror(mrc));
    goto stop;
  }
  ck_agents_config acfg = {
      .client = ap.client,
      .service = ap.svc,
      .agents = dice_agent,
      .nagents = 1,
      .auto_title = true, /* one short extra model call names each new thread */
  };
  agents = ck_agents_new(&acfg);
  if (agents == NULL) {
    fprintf(stderr, "tool_agent: cannot create the agents\n");
    goto stop;
  }
  ck_server_set_handlers(server, ck_agents_handlers(agents));

  if (ck_service_listen(ap.svc, "127.0.0.1", (int)port) != CK_OK) {
    fprintf(stderr, "tool_agent: cannot listen on 127.0.0.1:%ld\n", port);
    goto stop;
  }
  uv_signal_start(&ap.sigint, on_signal, SIGINT);
  uv_signal_start(&ap.sigterm, on_signal, SIGTERM);
  printf("listening on http://127.0.0.1:%d\n", ck_service_port(ap.svc));
  fflush(stdout);
  exit_code = 0;
  uv_run(&ap.loop, UV_RUN_DEFAULT);
  goto close_loop;

stop:
  /* Start-up failed after the service existed: shut it down the normal way, which also frees
   * the model client and closes the signal handles, so nothing leaks. */
  ck_service_shutdown(ap.svc, service_done, &ap);
  uv_run(&ap.loop, UV_RUN_DEFAULT);
close_loop:
  if (uv_loop_close(&ap.loop) != 0)
    fprintf(stderr, "tool_agent: the event loop still had open handles\n");
  ck_agents_free(agents);
  ck_server_free(server);
  ck_store_free(store);
  ck_log_free(log);
  return exit_code;
}
