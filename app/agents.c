/* The binary's agent setup: the model provider, agents and tools from settings and the config
 * file, validated with messages that name the line and the key. */
#include "agents.h"
#include "yaml.h"

#include <chatkit/error.h>
#include <chatkit/http_tool.h>
#include <chatkit/mcp.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct app_agents {
  ck_arena *a;
  ck_model_client *client;
  ck_agents *agents;
  ck_agent_def *defs;
  size_t ndefs;
  ck_tool_def *tools; /* every tool (heap; MCP servers add several) */
  size_t ntools, cap_tools;
  struct {
    const char *name;    /* the config entry's name */
    size_t first, count; /* its tools in `tools` (for an MCP server: as listed at start-up) */
    ck_mcp *mcp;         /* an MCP server's entry: its client */
    bool dry_mcp;        /* an MCP server's entry when only checking (no client) */
  } * groups;
  size_t ngroups;
  ck_mcp *mcp[32]; /* connected MCP servers, closed at the end */
  size_t nmcp;
  char **header_lines;
  const char **allowed;
  size_t nallowed;
  bool dry; /* app_agents_check: validate only, start and contact nothing */
};

bool app_model_configured(const app_config *cfg) {
  const ck_json *root = app_yaml_root(cfg->yaml);
  return cfg->openai_api_key[0] || cfg->openai_base_url[0] || cfg->model[0] ||
         ck_json_object_get(root, "agents") != NULL ||
         ck_json_is_object(ck_json_object_get(root, "model"));
}

/* Prints "file:line: where: message" and returns 2. */
static int invalid(const app_config *cfg, const ck_json *at, const char *where, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static int invalid(const app_config *cfg, const ck_json *at, const char *where, const char *fmt,
                   ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "chatkit-server: %s:%d: %s: %s\n", app_yaml_path(cfg->yaml),
          app_yaml_line(cfg->yaml, at), where, msg);
  return 2;
}

/* A string member, or `dflt`; a member of another type is an error. */
static int get_str(const app_config *cfg, const ck_json *obj, const char *key, const char *where,
                   const char *dflt, const char **out) {
  const ck_json *v = ck_json_object_get(obj, key);
  *out = dflt;
  if (v == NULL || ck_json_is_null(v))
    return 0;
  if (!ck_json_is_string(v))
    return invalid(cfg, v, where, "%s must be a string", key);
  *out = ck_json_str_value(v);
  return 0;
}

static int get_int(const app_config *cfg, const ck_json *obj, const char *key, const char *where,
                   int64_t min, int64_t max, int64_t *out) {
  const ck_json *v = ck_json_object_get(obj, key);
  if (v == NULL)
    return 0;
  int64_t x = 0;
  if (ck_json_int_value(v, &x) != CK_OK || x < min || x > max)
    return invalid(cfg, v, where, "%s must be an integer from %lld to %lld", key, (long long)min,
                   (long long)max);
  *out = x;
  return 0;
}

/* Checks that `obj` only has keys from `allowed`. */
static int only_keys(const app_config *cfg, const ck_json *obj, const char *where,
                     const char *const *allowed) {
  for (size_t i = 0; i < ck_json_object_size(obj); i++) {
    const char *k = ck_json_object_key(obj, i);
    bool ok = false;
    for (size_t j = 0; allowed[j] != NULL && !ok; j++)
      ok = strcmp(k, allowed[j]) == 0;
    if (!ok)
      return invalid(cfg, ck_json_object_value(obj, i), where, "unknown key \"%s\"", k);
  }
  return 0;
}

/* "${NAME}" in a header value reads the environment, so secrets stay out of the file. */
static char *expand_env(ck_arena *a, const char *s) {
  if (strncmp(s, "${", 2) == 0 && s[strlen(s) - 1] == '}') {
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(strlen(s) - 3), s + 2);
    const char *v = getenv(name);
    return ck_arena_strdup(a, v ? v : "");
  }
  return ck_arena_strdup(a, s);
}

/* A list of strings from the file into an arena array. */
static int str_list(app_agents *ag, const app_config *cfg, const ck_json *list, const char *where,
                    const char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (list == NULL)
    return 0;
  if (!ck_json_is_array(list))
    return invalid(cfg, list, where, "must be a list of names");
  size_t m = ck_json_array_size(list);
  const char **arr = ck_arena_calloc(ag->a, (m ? m : 1) * sizeof(*arr));
  for (size_t i = 0; arr && i < m; i++) {
    arr[i] = ck_json_str_value(ck_json_array_get(list, i));
    if (arr[i] == NULL)
      return invalid(cfg, ck_json_array_get(list, i), where, "entries must be names");
  }
  *out = arr;
  *n = m;
  return 0;
}

/* Appends a tool definition, growing the array. */
static int push_tool(app_agents *ag, const ck_tool_def *d) {
  if (ag->ntools == ag->cap_tools) {
    size_t cap = ag->cap_tools ? ag->cap_tools * 2 : 8;
    ck_tool_def *n = realloc(ag->tools, cap * sizeof(*n));
    if (n == NULL)
      return 2;
    ag->tools = n;
    ag->cap_tools = cap;
  }
  ag->tools[ag->ntools++] = *d;
  return 0;
}

/* "Name: value" lines from a mapping, with ${ENV} values read from the environment. */
static int header_lines(app_agents *ag, const app_config *cfg, const ck_json *headers,
                        const char *where, const char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (headers == NULL)
    return 0;
  if (!ck_json_is_object(headers))
    return invalid(cfg, headers, where, "headers must be a mapping");
  size_t m = ck_json_object_size(headers);
  const char **lines = ck_arena_calloc(ag->a, (m + 1) * sizeof(*lines));
  for (size_t i = 0; lines && i < m; i++) {
    const char *val = ck_json_str_value(ck_json_object_value(headers, i));
    if (val == NULL)
      return invalid(cfg, ck_json_object_value(headers, i), where, "header values must be strings");
    lines[i] =
        ck_arena_printf(ag->a, "%s: %s", ck_json_object_key(headers, i), expand_env(ag->a, val));
  }
  *out = lines;
  *n = m;
  return 0;
}

/* An MCP server: connected at start-up, its tools added under "<name>__<tool>". */
static int mcp_entry(app_agents *ag, const app_config *cfg, const ck_json *t, const char *where,
                     const char *name) {
  int64_t timeout = 30000;
  const char *url = NULL;
  const ck_json *command = ck_json_object_get(t, "command");
  if (get_str(cfg, t, "url", where, NULL, &url) ||
      get_int(cfg, t, "timeout_ms", where, 100, 600000, &timeout))
    return 2;
  if ((command == NULL) == (url == NULL))
    return invalid(cfg, t, where, "an mcp tool needs exactly one of command (a list) or url");
  if (ag->dry) {
    /* The list parts are still checked; the server is neither started nor asked. */
    if (ag->nmcp == sizeof(ag->mcp) / sizeof(ag->mcp[0]))
      return invalid(cfg, t, where, "too many MCP servers (at most 32)");
    ag->mcp[ag->nmcp++] = NULL; /* counted; closing NULL is a no-op */
    const char **list = NULL;
    size_t nl = 0;
    if (url != NULL)
      return header_lines(ag, cfg, ck_json_object_get(t, "headers"), where, &list, &nl);
    if (str_list(ag, cfg, command, where, &list, &nl) || nl == 0)
      return nl == 0 ? invalid(cfg, command, where, "command must name a program") : 2;
    return header_lines(ag, cfg, ck_json_object_get(t, "env"), where, &list, &nl);
  }
  char err[512] = "";
  ck_mcp *m = NULL;
  int rc;
  if (url != NULL) {
    const char **headers = NULL;
    size_t nh = 0;
    if (header_lines(ag, cfg, ck_json_object_get(t, "headers"), where, &headers, &nh))
      return 2;
    rc = ck_mcp_connect_http(url, headers, (int)timeout, &m, err, sizeof(err));
  } else {
    const char **argv = NULL, **env = NULL;
    size_t argc = 0, nenv = 0;
    if (str_list(ag, cfg, command, where, &argv, &argc) || argc == 0)
      return argc == 0 ? invalid(cfg, command, where, "command must name a program") : 2;
    const char **argv0 = ck_arena_calloc(ag->a, (argc + 1) * sizeof(*argv0));
    for (size_t i = 0; argv0 && i < argc; i++)
      argv0[i] = argv[i];
    if (header_lines(ag, cfg, ck_json_object_get(t, "env"), where, &env, &nenv))
      return 2;
    /* header_lines gives "K: V"; the environment wants "K=V". */
    for (size_t i = 0; i < nenv; i++) {
      char *e = ck_arena_strdup(ag->a, env[i]);
      char *colon = e ? strstr(e, ": ") : NULL;
      if (colon != NULL) {
        colon[0] = '=';
        memmove(colon + 1, colon + 2, strlen(colon + 2) + 1);
      }
      env[i] = e;
    }
    rc = ck_mcp_connect_stdio(argv0, env, NULL, (int)timeout, &m, err, sizeof(err));
  }
  if (rc != CK_OK)
    return invalid(cfg, t, where, "cannot start MCP server \"%s\": %s", name, err);
  if (ag->nmcp == sizeof(ag->mcp) / sizeof(ag->mcp[0])) {
    ck_mcp_close(m);
    return invalid(cfg, t, where, "too many MCP servers (at most 32)");
  }
  ag->mcp[ag->nmcp++] = m;
  ag->groups[ag->ngroups].mcp = m;
  ck_tool_def *defs = NULL;
  size_t n = 0;
  if (ck_mcp_tools(m, ag->a, name, &defs, &n) != CK_OK)
    return invalid(cfg, t, where, "cannot list the tools of MCP server \"%s\": %s", name,
                   ck_mcp_last_error(m, err, sizeof(err)));
  for (size_t i = 0; i < n; i++)
    if (push_tool(ag, &defs[i]))
      return 2;
  return 0;
}

static int build_tools(app_agents *ag, const app_config *cfg, const ck_json *tools) {
  static const char *const keys[] = {"name",    "type",   "description", "parameters",
                                     "url",     "method", "headers",     "timeout_ms",
                                     "command", "env",    NULL};
  size_t n = ck_json_array_size(tools);
  if (tools != NULL && !ck_json_is_array(tools))
    return invalid(cfg, tools, "tools", "must be a list");
  ag->groups = ck_arena_calloc(ag->a, (n ? n : 1) * sizeof(*ag->groups));
  if (ag->groups == NULL)
    return 2;
  for (size_t i = 0; i < n; i++) {
    const ck_json *t = ck_json_array_get(tools, i);
    char where[64];
    snprintf(where, sizeof(where), "tools[%zu]", i);
    if (!ck_json_is_object(t))
      return invalid(cfg, t, where, "must be a mapping");
    if (only_keys(cfg, t, where, keys))
      return 2;
    const char *name, *type, *desc;
    if (get_str(cfg, t, "name", where, NULL, &name) ||
        get_str(cfg, t, "type", where, NULL, &type) ||
        get_str(cfg, t, "description", where, NULL, &desc))
      return 2;
    if (name == NULL || name[0] == '\0')
      return invalid(cfg, t, where, "name is required");
    for (size_t k = 0; k < ag->ngroups; k++)
      if (strcmp(ag->groups[k].name, name) == 0)
        return invalid(cfg, t, where, "a tool named \"%s\" is already defined", name);
    const ck_json *params = ck_json_object_get(t, "parameters");
    if (params != NULL && !ck_json_is_object(params))
      return invalid(cfg, params, where, "parameters must be a JSON Schema mapping");
    ag->groups[ag->ngroups].name = name;
    ag->groups[ag->ngroups].first = ag->ntools;
    ck_tool_def d;
    memset(&d, 0, sizeof(d));
    d.name = name;
    d.description = desc;
    d.parameters_json = params ? ck_json_dumps(ag->a, params, NULL) : NULL;
    if (type != NULL && strcmp(type, "client") == 0) {
      d.client = true;
      if (push_tool(ag, &d))
        return 2;
    } else if (type != NULL && strcmp(type, "http") == 0) {
      ck_http_tool_config hc;
      memset(&hc, 0, sizeof(hc));
      int64_t timeout = 0;
      hc.name = name;
      hc.description = desc;
      hc.parameters_json = d.parameters_json;
      if (get_str(cfg, t, "url", where, NULL, &hc.url) ||
          get_str(cfg, t, "method", where, NULL, &hc.method) ||
          get_int(cfg, t, "timeout_ms", where, 1, 600000, &timeout) ||
          header_lines(ag, cfg, ck_json_object_get(t, "headers"), where,
                       (const char ***)&hc.headers, &hc.nheaders))
        return 2;
      hc.timeout_ms = (int)timeout;
      char err[256] = "";
      if (ck_http_tool_def(ag->a, &hc, &d, err, sizeof(err)) != CK_OK)
        return invalid(cfg, t, where, "%s", err);
      if (push_tool(ag, &d))
        return 2;
    } else if (type != NULL && strcmp(type, "mcp") == 0) {
      if (mcp_entry(ag, cfg, t, where, name))
        return 2;
      ag->groups[ag->ngroups].dry_mcp = ag->dry;
    } else {
      return invalid(cfg, t, where,
                     "type must be client, http or mcp (C tools are defined with the library)");
    }
    ag->groups[ag->ngroups].count = ag->ntools - ag->groups[ag->ngroups].first;
    ag->ngroups++;
  }
  return 0;
}

/* The tools an agent offers. A config entry's name brings all of its tools; for an MCP server
 * that is the server itself, so the agent follows its tool list as it changes. One tool's full
 * name ("server__tool") brings that tool as it was at start-up. */
typedef struct agent_tools_out {
  ck_tool_def *tools;
  size_t ntools;
  ck_mcp **mcp;
  const char **prefixes;
  size_t nmcp;
} agent_tools_out;

static int add_group(app_agents *ag, size_t g, agent_tools_out *o) {
  if (ag->groups[g].mcp != NULL) {
    for (size_t i = 0; i < o->nmcp; i++)
      if (o->mcp[i] == ag->groups[g].mcp)
        return 0;
    o->mcp[o->nmcp] = ag->groups[g].mcp;
    o->prefixes[o->nmcp++] = ag->groups[g].name;
    return 0;
  }
  for (size_t i = 0; i < ag->groups[g].count && o->ntools < ag->ntools; i++)
    o->tools[o->ntools++] = ag->tools[ag->groups[g].first + i];
  return 0;
}

static int agent_tools(app_agents *ag, const app_config *cfg, const ck_json *at, const char *where,
                       const char **names, size_t nnames, bool all, agent_tools_out *o) {
  memset(o, 0, sizeof(*o));
  o->tools = ck_arena_calloc(ag->a, (ag->ntools ? ag->ntools : 1) * sizeof(*o->tools));
  o->mcp = ck_arena_calloc(ag->a, (ag->ngroups ? ag->ngroups : 1) * sizeof(*o->mcp));
  o->prefixes = ck_arena_calloc(ag->a, (ag->ngroups ? ag->ngroups : 1) * sizeof(*o->prefixes));
  if (o->tools == NULL || o->mcp == NULL || o->prefixes == NULL)
    return 2;
  for (size_t g = 0; all && g < ag->ngroups; g++)
    add_group(ag, g, o);
  for (size_t k = 0; k < nnames; k++) {
    bool found = false;
    for (size_t g = 0; g < ag->ngroups && !found; g++) {
      if (strcmp(ag->groups[g].name, names[k]) == 0) {
        found = true;
        add_group(ag, g, o);
      }
    }
    for (size_t i = 0; i < ag->ntools && !found; i++)
      if (strcmp(ag->tools[i].name, names[k]) == 0) {
        found = true;
        if (o->ntools < ag->ntools)
          o->tools[o->ntools++] = ag->tools[i];
      }
    /* Checking without the servers, a server's tool cannot be known: its prefix must be. */
    for (size_t g = 0; ag->dry && g < ag->ngroups && !found; g++) {
      size_t n = strlen(ag->groups[g].name);
      found = ag->groups[g].dry_mcp && strncmp(names[k], ag->groups[g].name, n) == 0 &&
              strncmp(names[k] + n, "__", 2) == 0;
    }
    if (!found)
      return invalid(cfg, at, where, "unknown tool \"%s\"", names[k]);
  }
  return 0;
}

static int build_agents(app_agents *ag, const app_config *cfg, const ck_json *agents,
                        const char *default_model) {
  static const char *const keys[] = {"name",     "instructions", "model",    "tools",
                                     "handoffs", "max_turns",    "settings", NULL};
  const char *fallback = cfg->instructions[0] ? cfg->instructions : "You are a helpful assistant.";
  if (agents == NULL) {
    /* No agents section: one assistant with every configured tool. */
    ag->defs = calloc(1, sizeof(*ag->defs));
    agent_tools_out o;
    if (ag->defs == NULL || agent_tools(ag, cfg, NULL, "tools", NULL, 0, true, &o))
      return 2;
    ck_agent_def *d = &ag->defs[0];
    d->name = "Assistant";
    d->instructions = fallback;
    d->model = default_model;
    d->tools = o.tools;
    d->ntools = o.ntools;
    d->mcp = o.mcp;
    d->mcp_prefixes = o.prefixes;
    d->nmcp = o.nmcp;
    ag->ndefs = 1;
    return 0;
  }
  if (!ck_json_is_array(agents) || ck_json_array_size(agents) == 0)
    return invalid(cfg, agents, "agents", "must be a non-empty list");
  size_t n = ck_json_array_size(agents);
  ag->defs = calloc(n, sizeof(*ag->defs));
  if (ag->defs == NULL)
    return 2;
  for (size_t i = 0; i < n; i++) {
    const ck_json *a = ck_json_array_get(agents, i);
    char where[64];
    snprintf(where, sizeof(where), "agents[%zu]", i);
    if (!ck_json_is_object(a))
      return invalid(cfg, a, where, "must be a mapping");
    if (only_keys(cfg, a, where, keys))
      return 2;
    ck_agent_def *d = &ag->defs[i];
    int64_t turns = 0;
    const char **tool_names = NULL, **handoffs = NULL;
    size_t ntool_names = 0;
    if (get_str(cfg, a, "name", where, NULL, &d->name) ||
        get_str(cfg, a, "instructions", where, fallback, &d->instructions) ||
        get_str(cfg, a, "model", where, default_model, &d->model) ||
        get_int(cfg, a, "max_turns", where, 1, 100, &turns) ||
        str_list(ag, cfg, ck_json_object_get(a, "tools"), where, &tool_names, &ntool_names) ||
        str_list(ag, cfg, ck_json_object_get(a, "handoffs"), where, &handoffs, &d->nhandoffs))
      return 2;
    if (d->name == NULL)
      return invalid(cfg, a, where, "name is required");
    d->max_turns = (int)turns;
    d->handoffs = handoffs;
    const ck_json *settings = ck_json_object_get(a, "settings");
    if (settings != NULL && !ck_json_is_object(settings))
      return invalid(cfg, settings, where, "settings must be a mapping of request fields");
    d->settings = settings;
    agent_tools_out o;
    if (agent_tools(ag, cfg, ck_json_object_get(a, "tools"), where, tool_names, ntool_names, false,
                    &o))
      return 2;
    d->tools = o.tools;
    d->ntools = o.ntools;
    d->mcp = o.mcp;
    d->mcp_prefixes = o.prefixes;
    d->nmcp = o.nmcp;
    for (size_t k = 0; k < i; k++)
      if (strcmp(ag->defs[k].name, d->name) == 0)
        return invalid(cfg, a, where, "an agent named \"%s\" is already defined", d->name);
  }
  ag->ndefs = n;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < ag->defs[i].nhandoffs; k++) {
      bool found = false;
      for (size_t j = 0; j < n && !found; j++)
        found = strcmp(ag->defs[j].name, ag->defs[i].handoffs[k]) == 0;
      if (!found)
        return invalid(cfg, ck_json_array_get(agents, i), "agents", "unknown handoff agent \"%s\"",
                       ag->defs[i].handoffs[k]);
    }
  return 0;
}

static int build(const app_config *cfg, uv_loop_t *loop, ck_service *svc, ck_log *log,
                 ck_metrics *metrics, bool dry, app_agents **out) {
  static const char *const model_keys[] = {"name",
                                           "base_url",
                                           "api_key_env",
                                           "api",
                                           "headers",
                                           "connect_timeout_ms",
                                           "idle_timeout_ms",
                                           "first_byte_timeout_ms",
                                           "total_timeout_ms",
                                           "max_retries",
                                           NULL};
  *out = NULL;
  app_agents *ag = calloc(1, sizeof(*ag));
  if (ag == NULL || (ag->a = ck_arena_new(4096)) == NULL) {
    free(ag);
    return 2;
  }
  ag->dry = dry;
  int rc = 0;
  const ck_json *root = app_yaml_root(cfg->yaml);
  const ck_json *provider = ck_json_object_get(root, "model");
  if (!ck_json_is_object(provider))
    provider = NULL;
  ck_model_config mc;
  memset(&mc, 0, sizeof(mc));
  mc.base_url = cfg->openai_base_url[0] ? cfg->openai_base_url : NULL;
  mc.api_key = cfg->openai_api_key[0] ? cfg->openai_api_key : NULL;
  mc.model = cfg->model[0] ? cfg->model : "gpt-4.1-mini";
  mc.log = log;
  if (strcmp(cfg->api, "responses") == 0)
    mc.api = CK_MODEL_API_RESPONSES;
  else if (strcmp(cfg->api, "chat_completions") == 0)
    mc.api = CK_MODEL_API_CHAT;
  if (provider != NULL) {
    const char *name, *base, *key_env, *api;
    int64_t v;
    if (only_keys(cfg, provider, "model", model_keys) ||
        get_str(cfg, provider, "name", "model", mc.model, &name) ||
        get_str(cfg, provider, "base_url", "model", mc.base_url, &base) ||
        get_str(cfg, provider, "api_key_env", "model", NULL, &key_env) ||
        get_str(cfg, provider, "api", "model", NULL, &api)) {
      rc = 2;
      goto done;
    }
    /* Flags and the environment win over the file, as for every other setting. */
    if (!cfg->model[0])
      mc.model = name;
    if (!cfg->openai_base_url[0])
      mc.base_url = base;
    if (key_env != NULL && getenv(key_env) != NULL)
      mc.api_key = getenv(key_env);
    if (api != NULL && !cfg->api[0]) {
      if (strcmp(api, "responses") == 0)
        mc.api = CK_MODEL_API_RESPONSES;
      else if (strcmp(api, "chat_completions") == 0)
        mc.api = CK_MODEL_API_CHAT;
      else {
        rc = invalid(cfg, ck_json_object_get(provider, "api"), "model",
                     "api must be responses or chat_completions");
        goto done;
      }
    }
    const ck_json *headers = ck_json_object_get(provider, "headers");
    if (headers != NULL) {
      if (!ck_json_is_object(headers)) {
        rc = invalid(cfg, headers, "model", "headers must be a mapping");
        goto done;
      }
      size_t n = ck_json_object_size(headers);
      const char **lines = ck_arena_calloc(ag->a, (n + 1) * sizeof(*lines));
      for (size_t i = 0; lines && i < n; i++) {
        const char *val = ck_json_str_value(ck_json_object_value(headers, i));
        if (val == NULL) {
          rc = invalid(cfg, ck_json_object_value(headers, i), "model.headers",
                       "header values must be strings");
          goto done;
        }
        lines[i] = ck_arena_printf(ag->a, "%s: %s", ck_json_object_key(headers, i),
                                   expand_env(ag->a, val));
      }
      mc.headers = lines;
    }
    v = 0;
    if (get_int(cfg, provider, "connect_timeout_ms", "model", 1, 600000, &v) == 0 && v)
      mc.connect_timeout_ms = (uint32_t)v;
    v = 0;
    if (get_int(cfg, provider, "first_byte_timeout_ms", "model", 1, 3600000, &v) == 0 && v)
      mc.first_byte_timeout_ms = (uint32_t)v;
    v = 0;
    if (get_int(cfg, provider, "idle_timeout_ms", "model", 1, 3600000, &v) == 0 && v)
      mc.idle_timeout_ms = (uint32_t)v;
    v = 0;
    if (get_int(cfg, provider, "total_timeout_ms", "model", 1, 86400000, &v) == 0 && v)
      mc.total_timeout_ms = (uint32_t)v;
    v = -2;
    if (get_int(cfg, provider, "max_retries", "model", -1, 10, &v) == 0 && v != -2)
      mc.max_retries = (int)v;
  }
  if ((rc = build_tools(ag, cfg, ck_json_object_get(root, "tools"))) != 0)
    goto done;
  if ((rc = build_agents(ag, cfg, ck_json_object_get(root, "agents"), mc.model)) != 0)
    goto done;

  ck_agents_config acfg;
  memset(&acfg, 0, sizeof(acfg));
  const char *dflt = NULL;
  if ((rc = get_str(cfg, root, "default_agent", "default_agent", NULL, &dflt)) != 0)
    goto done;
  const ck_json *title = ck_json_object_get(root, "title");
  acfg.auto_title = true;
  if (title != NULL) {
    const ck_json *en = ck_json_object_get(title, "enabled");
    if (en != NULL)
      acfg.auto_title = ck_json_bool_value(en);
    if ((rc = get_str(cfg, title, "model", "title", NULL, &acfg.title_model)) != 0)
      goto done;
  }
  const ck_json *history = ck_json_object_get(root, "history");
  int64_t items = 0, chars = 0;
  if ((rc = get_int(cfg, history, "items", "history", 1, 10000, &items)) != 0 ||
      (rc = get_int(cfg, history, "chars", "history", 1000, 100000000, &chars)) != 0)
    goto done;
  if ((rc = str_list(ag, cfg, ck_json_object_get(root, "models"), "models", &ag->allowed,
                     &ag->nallowed)) != 0)
    goto done;

  if (dry) {
    /* What ck_agents_new would refuse, said the same way. */
    bool known = dflt == NULL;
    for (size_t i = 0; i < ag->ndefs && !known; i++)
      known = strcmp(ag->defs[i].name, dflt) == 0;
    if (!known) {
      fprintf(stderr, "chatkit-server: invalid agent setup (unknown default_agent?)\n");
      rc = 2;
    }
    goto done;
  }
  int err = 0;
  ag->client = ck_model_client_new(loop, &mc, &err);
  if (ag->client == NULL) {
    fprintf(stderr, "chatkit-server: invalid model settings: %s\n", ck_strerror(err));
    rc = 2;
    goto done;
  }
  acfg.client = ag->client;
  acfg.metrics = metrics;
  acfg.service = svc;
  acfg.agents = ag->defs;
  acfg.nagents = ag->ndefs;
  acfg.default_agent = dflt;
  acfg.history_items = (int)items;
  acfg.history_chars = (size_t)chars;
  acfg.allowed_models = ag->allowed;
  acfg.nallowed_models = ag->nallowed;
  ag->agents = ck_agents_new(&acfg);
  if (ag->agents == NULL) {
    fprintf(stderr, "chatkit-server: invalid agent setup (unknown default_agent?)\n");
    rc = 2;
  }
done:
  if (rc != 0) {
    app_agents_free(ag);
    return rc;
  }
  *out = ag;
  return 0;
}

int app_agents_build(const app_config *cfg, uv_loop_t *loop, ck_service *svc, ck_log *log,
                     ck_metrics *metrics, app_agents **out) {
  return build(cfg, loop, svc, log, metrics, false, out);
}

int app_agents_check(const app_config *cfg) {
  app_agents *ag = NULL;
  int rc = build(cfg, NULL, NULL, NULL, NULL, true, &ag);
  app_agents_free(ag);
  return rc;
}

ck_handlers app_agents_handlers(app_agents *ag) {
  return ck_agents_handlers(ag->agents);
}

void app_agents_stop(app_agents *ag) {
  if (ag != NULL && ag->client != NULL) {
    ck_model_client_free(ag->client);
    ag->client = NULL;
  }
}

void app_agents_free(app_agents *ag) {
  if (ag == NULL)
    return;
  ck_agents_free(ag->agents);
  app_agents_stop(ag);
  for (size_t i = 0; i < ag->nmcp; i++)
    ck_mcp_close(ag->mcp[i]);
  free(ag->defs);
  free(ag->tools);
  ck_arena_free(ag->a);
  free(ag);
}
