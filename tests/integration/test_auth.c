/* Integration test of authentication and user isolation through the real binary: it starts
 * chatkit-server with --auth jwt and an HS256 secret, then talks HTTP to it. Requests without
 * a valid bearer token get 401 with WWW-Authenticate: Bearer and a JSON error body; user B
 * cannot see, change or delete user A's thread by any request type, and A still can.
 *
 * The process and HTTP helpers are small static functions here; they speak HTTP/1.0 so that
 * responses (streams included) are plain bytes ending when the server closes. */
#include <chatkit/error.h>
#include <chatkit/json.h>

#include "support/jwt_sign.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#define SECRET "integration-secret-0123456789abcdef"
#define AUD "chatkit-test"

typedef struct server {
  pid_t pid;
  int port;
} server;

/* Starts the binary and waits for its "listening on http://HOST:PORT" line. */
static int server_start(server *s) {
  int out[2];
  if (pipe(out) != 0)
    return -1;
  s->pid = fork();
  if (s->pid < 0)
    return -1;
  if (s->pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    /* Settings come only from the flags below. */
    unsetenv("CHATKIT_AUTH");
    unsetenv("CHATKIT_JWT_SECRET");
    execl(CK_BINARY_DIR "/chatkit-server", "chatkit-server", "--port", "0", "--store",
          "memory:", "--log-level", "warn", "--demo-delay-ms", "0", "--auth", "jwt", "--jwt-secret",
          SECRET, "--jwt-audience", AUD, (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  char line[256];
  size_t n = 0;
  s->port = -1;
  while (n < sizeof(line) - 1) {
    struct pollfd p = {out[0], POLLIN, 0};
    if (poll(&p, 1, 20000) <= 0)
      break;
    ssize_t r = read(out[0], line + n, 1);
    if (r <= 0)
      break;
    if (line[n] == '\n') {
      line[n] = '\0';
      const char *colon = strrchr(line, ':');
      if (strncmp(line, "listening on http://", 20) == 0 && colon != NULL)
        s->port = (int)strtol(colon + 1, NULL, 10);
      break;
    }
    n++;
  }
  close(out[0]);
  return s->port > 0 ? 0 : -1;
}

/* SIGTERM and wait; returns the exit status. */
static int server_stop(server *s) {
  int status = -1;
  kill(s->pid, SIGTERM);
  for (int i = 0; i < 200; i++) {
    if (waitpid(s->pid, &status, WNOHANG) == s->pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    usleep(50 * 1000);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &status, 0);
  return -1;
}

typedef struct response {
  int status;
  char *head; /* status line and headers */
  char *body;
} response;

static void response_free(response *r) {
  free(r->head);
  free(r->body);
}

/* POSTs `body` to /chatkit with an optional Authorization value. */
static response post(const server *s, const char *auth, const char *body) {
  response r = {0, NULL, NULL};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)s->port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_buf req;
  ck_buf_init(&req, 0);
  ck_buf_printf(&req,
                "POST /chatkit HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n");
  if (auth != NULL)
    ck_buf_printf(&req, "Authorization: %s\r\n", auth);
  ck_buf_printf(&req, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
  assert_int_equal(write(fd, req.data, req.len), (ssize_t)req.len);
  ck_buf_free(&req);
  ck_buf in;
  ck_buf_init(&in, 0);
  char chunk[4096];
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    assert_true(poll(&p, 1, 20000) > 0);
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0)
      break;
    ck_buf_append(&in, chunk, (size_t)n);
  }
  close(fd);
  assert_non_null(in.data);
  char *sep = strstr(in.data, "\r\n\r\n");
  assert_non_null(sep);
  r.head = strndup(in.data, (size_t)(sep - in.data));
  r.body = strdup(sep + 4);
  r.status = (int)strtol(in.data + 9, NULL, 10);
  ck_buf_free(&in);
  return r;
}

static char *bearer_for(const char *sub, long exp_offset, const char *secret) {
  char claims[256];
  long now = (long)time(NULL);
  snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"aud\":\"" AUD "\",\"iat\":%ld,\"exp\":%ld}",
           sub, now, now + exp_offset);
  char *jwt = ckt_jwt("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, CKT_HS256, secret,
                      strlen(secret), NULL);
  assert_non_null(jwt);
  size_t n = strlen(jwt) + 8;
  char *out = malloc(n);
  snprintf(out, n, "Bearer %s", jwt);
  free(jwt);
  return out;
}

/* A 401 with WWW-Authenticate: Bearer and a JSON error body. */
static void expect_401(const server *s, const char *auth) {
  response r = post(s, auth, "{\"type\":\"threads.list\",\"params\":{}}");
  assert_int_equal(r.status, 401);
  char *lower = strdup(r.head);
  for (char *p = lower; *p; p++)
    *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
  assert_non_null(strstr(lower, "\r\nwww-authenticate: bearer"));
  free(lower);
  ck_arena *a = ck_arena_new(0);
  ck_json *doc = NULL;
  assert_int_equal(ck_json_parse(a, r.body, strlen(r.body), 0, &doc, NULL), CK_OK);
  const ck_json *err = ck_json_object_get(doc, "error");
  assert_string_equal(ck_json_object_get_str(err, "code"), "unauthorized");
  assert_non_null(ck_json_object_get_str(err, "message"));
  /* The message never echoes the token. */
  if (auth != NULL && strlen(auth) > 20)
    assert_null(strstr(r.body, auth + 7));
  ck_arena_free(a);
  response_free(&r);
}

static void test_unauthenticated(void **state) {
  server *s = *state;
  expect_401(s, NULL);
  expect_401(s, "Basic dXNlcjpwYXNz");
  expect_401(s, "Bearer");
  expect_401(s, "Bearer not.a.token");
  char *wrong = bearer_for("alice", 600, "some-other-secret-0123456789abcdef0123");
  expect_401(s, wrong);
  free(wrong);
  char *expired = bearer_for("alice", -3600, SECRET);
  expect_401(s, expired);
  free(expired);
}

static void test_isolation(void **state) {
  server *s = *state;
  char *a = bearer_for("user-a", 600, SECRET), *b = bearer_for("user-b", 600, SECRET);
  response r = post(s, a,
                    "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":"
                    "\"input_text\",\"text\":\"secret plans\"}],\"attachments\":[],"
                    "\"inference_options\":{}}}}");
  assert_int_equal(r.status, 200);
  const char *created = strstr(r.body, "\"type\":\"thread.created\",\"thread\":{\"id\":\"");
  assert_non_null(created);
  char thread_id[64];
  const char *id = created + strlen("\"type\":\"thread.created\",\"thread\":{\"id\":\"");
  size_t idlen = strcspn(id, "\"");
  assert_true(idlen > 0 && idlen < sizeof(thread_id));
  memcpy(thread_id, id, idlen);
  thread_id[idlen] = '\0';
  const char *msg = strstr(r.body, "\"type\":\"user_message\"");
  assert_non_null(msg);
  response_free(&r);

  /* Every request type that names A's thread is "not found" for B. */
  /* Each request is PREFIX thread_id SUFFIX. */
  const char *reqs[][2] = {
      {"{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"", "\"}}"},
      {"{\"type\":\"items.list\",\"params\":{\"thread_id\":\"", "\"}}"},
      {"{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"",
       "\",\"input\":{\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"}],"
       "\"attachments\":[],\"inference_options\":{}}}}"},
      {"{\"type\":\"threads.update\",\"params\":{\"thread_id\":\"", "\",\"title\":\"mine now\"}}"},
      {"{\"type\":\"threads.delete\",\"params\":{\"thread_id\":\"", "\"}}"},
      {"{\"type\":\"threads.retry_after_item\",\"params\":{\"thread_id\":\"",
       "\",\"item_id\":\"msg_1\"}}"},
      {"{\"type\":\"threads.custom_action\",\"params\":{\"thread_id\":\"",
       "\",\"item_id\":null,\"action\":{\"type\":\"x\"}}}"},
  };
  for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
    char body[512];
    snprintf(body, sizeof(body), "%s%s%s", reqs[i][0], thread_id, reqs[i][1]);
    r = post(s, b, body);
    /* threads.delete is idempotent in the reference protocol: it answers {} for a thread the
     * user does not have (conformance case 017), and deletes nothing of A's (checked below). */
    bool is_delete = strstr(reqs[i][0], "threads.delete") != NULL;
    if (r.status != (is_delete ? 200 : 404))
      fprintf(stderr, "request %zu: status %d body %s\n", i, r.status, r.body);
    assert_int_equal(r.status, is_delete ? 200 : 404);
    if (is_delete)
      assert_string_equal(r.body, "{}");
    assert_null(strstr(r.body, "secret plans"));
    response_free(&r);
  }
  r = post(s, b, "{\"type\":\"threads.list\",\"params\":{}}");
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"data\":[]"));
  response_free(&r);

  /* A still has everything: the thread, its items, and its place in the list. */
  char body[256];
  snprintf(body, sizeof(body), "{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"%s\"}}",
           thread_id);
  r = post(s, a, body);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "secret plans"));
  assert_null(strstr(r.body, "mine now"));
  response_free(&r);
  snprintf(body, sizeof(body), "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"%s\"}}",
           thread_id);
  r = post(s, a, body);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "secret plans"));
  response_free(&r);
  r = post(s, a, "{\"type\":\"threads.list\",\"params\":{}}");
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, thread_id));
  response_free(&r);
  free(a);
  free(b);
}

static int setup(void **state) {
  server *s = calloc(1, sizeof(*s));
  if (s == NULL || server_start(s) != 0) {
    free(s);
    return -1;
  }
  *state = s;
  return 0;
}

static int teardown(void **state) {
  server *s = *state;
  int rc = server_stop(s);
  free(s);
  return rc == 0 ? 0 : -1;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unauthenticated),
      cmocka_unit_test(test_isolation),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
