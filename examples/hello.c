/* hello: a complete ChatKit server in C on libchatkit.
 *
 * It answers every message with a greeting streamed word by word, shows a progress line and,
 * when the user says "card", a widget. Threads live in SQLite.
 *
 *   build/examples/hello 8000 ./hello.db
 *   curl -N localhost:8000/chatkit -d '{"type":"threads.create","params":{"input":
 *     {"content":[{"type":"input_text","text":"card"}],"attachments":[],"inference_options":{}}}}'
 */
#include <chatkit/chatkit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs on a worker thread for every user message; it may block (call a database, a model). */
static int respond(void *ud, ck_stream *s, const ck_json *user_message) {
  const ck_json *content = ck_json_object_get(user_message, "content");
  const char *text = ck_json_object_get_str(ck_json_array_get(content, 0), "text");
  int rc = ck_stream_progress(s, "sparkle", "Thinking");
  if (rc == CK_OK && text != NULL && strstr(text, "card") != NULL) {
    /* Widgets are plain JSON trees; build them from text or with the JSON API. */
    ck_json *card = NULL;
    const char *src = "{\"type\":\"Card\",\"children\":[{\"type\":\"Title\",\"value\":\"Hello\"},"
                      "{\"type\":\"Text\",\"value\":\"A widget from C.\"}]}";
    rc = ck_json_parse(ck_stream_scratch(s), src, strlen(src), 0, &card, NULL);
    if (rc == CK_OK)
      rc = ck_stream_widget(s, card, "Hello");
    return rc;
  }
  ck_assistant *m = NULL;
  if (rc == CK_OK)
    rc = ck_assistant_begin(s, NULL, &m);
  const char *words[] = {"Hello ", "from ", "a ", "C ", "handler!"};
  for (size_t i = 0; rc == CK_OK && i < 5; i++)
    rc = ck_assistant_delta(m, words[i], strlen(words[i]));
  if (rc == CK_OK)
    rc = ck_assistant_end(m);
  return rc; /* CK_ECANCELLED when the user pressed stop: the partial reply is saved */
}

int main(int argc, char **argv) {
  int port = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 8000;
  const char *db = argc > 2 ? argv[2] : "./hello.db";
  ck_store *store = NULL;
  char err[256];
  if (ck_store_sqlite_open(db, &store, err, sizeof(err)) != CK_OK) {
    fprintf(stderr, "hello: %s\n", err);
    return 1;
  }
  ck_server_config scfg = {.store = store};
  scfg.handlers.respond = respond;
  ck_server *server = ck_server_new(&scfg);

  uv_loop_t loop;
  uv_loop_init(&loop);
  ck_log *log = ck_log_new(stderr, CK_LOG_INFO, CK_LOG_LOGFMT);
  ck_service_config cfg = {.server = server, .store = store, .log = log};
  ck_service *svc = ck_service_new(&loop, &cfg);
  if (svc == NULL || ck_service_listen(svc, "127.0.0.1", port) != CK_OK) {
    fprintf(stderr, "hello: cannot listen on port %d\n", port);
    return 1;
  }
  printf("listening on http://127.0.0.1:%d\n", ck_service_port(svc));
  fflush(stdout);
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}
