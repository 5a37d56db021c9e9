/* An agent runtime under test: a service on its own loop thread answering with the given
 * agents, and the scripted mock model on another, for end-to-end tests of agent tools (the
 * same set-up as tests/agent/test_agent_e2e.c, shared). */
#ifndef CK_TEST_AGENT_HARNESS_H
#define CK_TEST_AGENT_HARNESS_H

#include "support/mock_model.h"

#include <chatkit/chatkit.h>
#include <chatkit/model.h>

#include <pthread.h>
#include <stdbool.h>

typedef struct ck_agent_harness {
  ck_mock_model *mock; /* queue the model's answers here */
  int port;            /* the service's port */
  /* Internal. */
  const ck_agent_def *agents;
  size_t nagents;
  pthread_t thread;
  uv_loop_t loop;
  uv_async_t stop;
  ck_store *store;
  ck_server *server;
  ck_service *svc;
  ck_model_client *client;
  ck_agents *ag;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool ready;
} ck_agent_harness;

/** Starts the mock model and a service whose handlers are the agents (borrowed: keep them
 * alive), with the Responses API and no automatic titles. Returns 0 or -1. */
int ck_agent_harness_start(ck_agent_harness *h, const ck_agent_def *agents, size_t nagents);

/** Stops and frees everything. */
void ck_agent_harness_stop(ck_agent_harness *h);

/** The body of a threads.create request with the user's `text` (from `a`). */
const char *ck_agent_harness_create_body(ck_arena *a, const char *text);

#endif
