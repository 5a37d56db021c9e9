/* The agent runtime under test (see agent_harness.h). */
#include "support/agent_harness.h"

#include <stdio.h>
#include <string.h>

static void stop_loop(uv_async_t *a) {
  ck_agent_harness *h = a->data;
  ck_service_shutdown(h->svc, NULL, NULL);
  ck_model_client_free(h->client);
  uv_close((uv_handle_t *)&h->stop, NULL);
}

static void *server_main(void *arg) {
  ck_agent_harness *h = arg;
  uv_loop_init(&h->loop);
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", ck_mock_model_port(h->mock));
  ck_model_config mc = {0};
  mc.base_url = base;
  mc.api = CK_MODEL_API_RESPONSES;
  mc.model = "test-model";
  mc.max_retries = -1;
  int err = 0;
  h->client = ck_model_client_new(&h->loop, &mc, &err);
  h->store = ck_store_memory_new();
  /* The agents need the service and the service needs a server: the handlers are set once
   * both exist, before anything is served. */
  ck_server_config scfg = {.store = h->store};
  scfg.handlers.nonblocking = true;
  h->server = ck_server_new(&scfg);
  ck_service_config svcfg = {0};
  svcfg.server = h->server;
  svcfg.store = h->store;
  svcfg.workers = 4;
  h->svc = ck_service_new(&h->loop, &svcfg);
  ck_agents_config acfg;
  memset(&acfg, 0, sizeof(acfg));
  acfg.client = h->client;
  acfg.service = h->svc;
  acfg.agents = h->agents;
  acfg.nagents = h->nagents;
  h->ag = ck_agents_new(&acfg);
  if (h->ag != NULL) {
    ck_server_set_handlers(h->server, ck_agents_handlers(h->ag));
    ck_service_listen(h->svc, "127.0.0.1", 0);
  }
  h->stop.data = h;
  uv_async_init(&h->loop, &h->stop, stop_loop);
  pthread_mutex_lock(&h->mu);
  h->port = h->ag ? ck_service_port(h->svc) : -1;
  h->ready = true;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  uv_loop_close(&h->loop);
  return NULL;
}

int ck_agent_harness_start(ck_agent_harness *h, const ck_agent_def *agents, size_t nagents) {
  memset(h, 0, sizeof(*h));
  h->agents = agents;
  h->nagents = nagents;
  h->mock = ck_mock_model_start(0);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  pthread_create(&h->thread, NULL, server_main, h);
  pthread_mutex_lock(&h->mu);
  while (!h->ready)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  return h->mock != NULL && h->port > 0 ? 0 : -1;
}

void ck_agent_harness_stop(ck_agent_harness *h) {
  uv_async_send(&h->stop);
  pthread_join(h->thread, NULL);
  ck_agents_free(h->ag);
  ck_server_free(h->server);
  ck_store_free(h->store);
  ck_mock_model_free(h->mock);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
}

const char *ck_agent_harness_create_body(ck_arena *a, const char *text) {
  return ck_arena_printf(a,
                         "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{"
                         "\"type\":\"input_text\",\"text\":\"%s\"}],\"attachments\":[],"
                         "\"inference_options\":{}}}}",
                         text);
}
