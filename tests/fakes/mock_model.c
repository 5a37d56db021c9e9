/* mock-model: the scripted model server of tests/support/mock_model.h as a program, for
 * trying the client by hand or pointing a load test at it.
 *
 *   mock-model [--host 127.0.0.1] [--port 0] [--scenarios file.json]
 *
 * The scenarios file is a JSON object {"name": script, ...}; requests pick one with the
 * header "X-Mock-Scenario: name" or the model "mock/name". The program prints
 * "listening on HOST:PORT" and runs until SIGINT or SIGTERM. */
#include "support/mock_model.h"

#include <chatkit/json.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ck_mock_model *mock;

static void on_signal(uv_signal_t *h, int sig) {
  ck_mock_model_free(mock);
  mock = NULL;
  uv_stop(h->loop);
}

static int load_scenarios(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return -1;
  ck_buf b;
  ck_buf_init(&b, 0);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    ck_buf_append(&b, chunk, n);
  fclose(f);
  ck_arena *a = ck_arena_new(0);
  ck_json *doc = NULL;
  int rc = -1;
  if (a && b.len && ck_json_parse(a, b.data, b.len, 0, &doc, NULL) == 0 && ck_json_is_object(doc)) {
    rc = 0;
    for (size_t i = 0; i < ck_json_object_size(doc) && rc == 0; i++) {
      char *text = ck_json_dumps(a, ck_json_object_value(doc, i), NULL);
      rc = text ? ck_mock_model_add(mock, ck_json_object_key(doc, i), text) : -1;
    }
  }
  ck_arena_free(a);
  ck_buf_free(&b);
  return rc;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *scenarios = NULL;
  long port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (strcmp(argv[i], "--port") == 0) {
      char *end = NULL;
      port = strtol(argv[i + 1], &end, 10);
      if (*end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "mock-model: bad port\n");
        return 2;
      }
    } else if (strcmp(argv[i], "--scenarios") == 0) {
      scenarios = argv[i + 1];
    } else {
      fprintf(stderr, "usage: mock-model [--host H] [--port P] [--scenarios FILE]\n");
      return 2;
    }
  }
  uv_loop_t *loop = uv_default_loop();
  mock = ck_mock_model_new(loop, host, (int)port);
  if (mock == NULL) {
    fprintf(stderr, "mock-model: cannot listen on %s:%ld\n", host, port);
    return 1;
  }
  if (scenarios && load_scenarios(scenarios) != 0) {
    fprintf(stderr, "mock-model: cannot load %s\n", scenarios);
    return 1;
  }
  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  printf("listening on http://%s:%d\n", host, ck_mock_model_port(mock));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
