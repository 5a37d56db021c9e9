/* The binary's agent setup (agents.c): a model provider, agents and tools from the settings
 * and the config file's model, agents, tools, default_agent, title, history and models
 * sections. */
#ifndef CK_APP_AGENTS_H
#define CK_APP_AGENTS_H

#include "config.h"

#include <chatkit/agent.h>
#include <chatkit/log.h>
#include <chatkit/metrics.h>
#include <chatkit/model.h>

typedef struct app_agents app_agents;

/** True when a model is configured (a key, a base URL, a model name or agent sections); the
 * demo model answers otherwise. */
bool app_model_configured(const app_config *cfg);

/** Builds the model client on `loop` and the agent runtime on `svc`. Returns 0, or 2 after
 * printing a message that names the config file's line and key. */
int app_agents_build(const app_config *cfg, uv_loop_t *loop, ck_service *svc, ck_log *log,
                     ck_metrics *metrics, app_agents **out);

/** Checks the model, tools and agents sections as app_agents_build would, with no side
 * effects: no MCP server is started or contacted (a "server__tool" name is accepted for any
 * configured server) and no model client is made. For the config fuzz harness. Returns 0, or 2
 * after printing the same message app_agents_build would. */
int app_agents_check(const app_config *cfg);

/** The handlers that answer with the agents. */
ck_handlers app_agents_handlers(app_agents *ag);

/** Cancels model calls in flight (before the loop's last run). */
void app_agents_stop(app_agents *ag);

/** Frees everything. NULL is a no-op. */
void app_agents_free(app_agents *ag);

#endif
