/* HTTP behaviour of the real binary: keep-alive across JSON and streamed responses,
 * pipelining, HEAD, and CORS (an allowed origin, a disallowed one, and "*"). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/http_client.h"
#include "support/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ORIGIN "http://app.example:3000"

static char dir[256];
static ck_proc srv, any;
static int port, any_port;
static ck_arena *A;

static const char create_body[] =
    "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"input_text\","
    "\"text\":\"hi\"}],\"attachments\":[],\"inference_options\":{}}}}";

static int setup(void **state) {
  (void)state;
  A = ck_arena_new(0);
  if (A == NULL || ck_tmpdir_make(dir, sizeof(dir)) != 0)
    return -1;
  const char *args[] = {"--store",
                        "memory:",
                        "--demo-delay-ms",
                        "0",
                        "--demo-tokens",
                        "4",
                        "--cors-origins",
                        "http://other.example, " ORIGIN,
                        NULL};
  port = ck_server_start(&srv, dir, args, NULL);
  const char *any_args[] = {"--store", "memory:", "--cors-origins", "*", NULL};
  any_port = ck_server_start(&any, dir, any_args, NULL);
  return port > 0 && any_port > 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ck_proc_kill_all();
  ck_tmpdir_remove(dir);
  ck_arena_free(A);
  return 0;
}

static void send_req(hc_conn *c, const char *method, const char *path, const char *headers,
                     const char *body) {
  ck_buf b;
  ck_buf_init(&b, 0);
  hc_format(&b, method, path, headers, body, body ? strlen(body) : 0);
  assert_int_equal(hc_send(c, b.data, b.len), 0);
  ck_buf_free(&b);
}

/* Several requests, JSON and streamed, one after the other on one connection. */
static void test_keep_alive(void **state) {
  (void)state;
  hc_conn c;
  assert_int_equal(hc_open(&c, port, 10000), 0);
  hc_response r;
  for (int round = 0; round < 3; round++) {
    send_req(&c, "GET", "/health", NULL, NULL);
    assert_int_equal(hc_read_response(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    hc_response_free(&r);

    send_req(&c, "POST", "/chatkit", "Content-Type: application/json\r\n", create_body);
    assert_int_equal(hc_read_response(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_true(r.chunked);
    ck_json *events = NULL;
    assert_int_equal(hc_sse_split(A, r.body, r.body_len, &events), 0);
    assert_non_null(hc_find_type(events, "thread.item.done", 2));
    hc_response_free(&r);

    send_req(&c, "POST", "/chatkit", NULL, "{\"type\":\"threads.list\",\"params\":{}}");
    assert_int_equal(hc_read_response(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    ck_json *list = hc_json(A, r.body, r.body_len);
    assert_int_equal(ck_json_array_size(ck_json_object_get(list, "data")), (size_t)round + 1);
    hc_response_free(&r);

    /* An error answer keeps the connection too. */
    send_req(&c, "POST", "/chatkit", NULL, "{\"type\":\"nope\",\"params\":{}}");
    assert_int_equal(hc_read_response(&c, &r, false), 0);
    assert_int_equal(r.status, 400);
    hc_response_free(&r);
  }
  hc_close(&c);
}

/* Two requests in one write: both answered, in order. */
static void test_pipelining(void **state) {
  (void)state;
  hc_conn c;
  assert_int_equal(hc_open(&c, port, 10000), 0);
  ck_buf b;
  ck_buf_init(&b, 0);
  const char *first = "{\"type\":\"threads.list\",\"params\":{\"limit\":1}}";
  const char *second = "{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":\"thr_none\"}}";
  hc_format(&b, "POST", "/chatkit", NULL, first, strlen(first));
  hc_format(&b, "POST", "/chatkit", NULL, second, strlen(second));
  hc_format(&b, "GET", "/health", NULL, NULL, 0);
  assert_int_equal(hc_send(&c, b.data, b.len), 0);
  ck_buf_free(&b);
  hc_response r;
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_int_equal(r.status, 200);
  ck_json *page = hc_json(A, r.body, r.body_len);
  assert_int_equal(ck_json_array_size(ck_json_object_get(page, "data")), 1);
  hc_response_free(&r);
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_int_equal(r.status, 404);
  assert_non_null(strstr(r.body, "thr_none"));
  hc_response_free(&r);
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_int_equal(r.status, 200);
  hc_response_free(&r);
  hc_close(&c);
}

/* A stream then a JSON request in one write: the second waits for the whole stream. */
static void test_pipelined_stream(void **state) {
  (void)state;
  hc_conn c;
  assert_int_equal(hc_open(&c, port, 10000), 0);
  ck_buf b;
  ck_buf_init(&b, 0);
  const char *list = "{\"type\":\"threads.list\",\"params\":{}}";
  hc_format(&b, "POST", "/chatkit", NULL, create_body, strlen(create_body));
  hc_format(&b, "POST", "/chatkit", "Connection: close\r\n", list, strlen(list));
  assert_int_equal(hc_send(&c, b.data, b.len), 0);
  ck_buf_free(&b);
  hc_response r;
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_int_equal(r.status, 200);
  ck_json *events = NULL;
  assert_int_equal(hc_sse_split(A, r.body, r.body_len, &events), 0);
  const char *tid =
      ck_json_object_get_str(ck_json_object_get(ck_json_array_get(events, 0), "thread"), "id");
  hc_response_free(&r);
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_int_equal(r.status, 200);
  /* The listing already holds the thread the stream created. */
  assert_non_null(strstr(r.body, tid));
  hc_response_free(&r);
  hc_close(&c);
}

/* An HTTP/1.0 client cannot take chunks: the stream is delimited by closing instead. */
static void test_http10_stream(void **state) {
  (void)state;
  hc_conn c;
  assert_int_equal(hc_open(&c, port, 10000), 0);
  ck_buf b;
  ck_buf_init(&b, 0);
  ck_buf_printf(&b, "POST /chatkit HTTP/1.0\r\nContent-Length: %zu\r\n\r\n%s", strlen(create_body),
                create_body);
  assert_int_equal(hc_send(&c, b.data, b.len), 0);
  ck_buf_free(&b);
  hc_response r;
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_int_equal(r.status, 200);
  assert_false(r.chunked);
  assert_null(hc_header(&r, "content-length"));
  ck_json *events = NULL;
  assert_int_equal(hc_sse_split(A, r.body, r.body_len, &events), 0);
  assert_int_equal(hc_count_type(events, "thread.item.done"), 2);
  hc_response_free(&r);
  hc_close(&c);
}

/* HEAD /health: the GET headers, no body, and the connection stays in sync. */
static void test_head(void **state) {
  (void)state;
  hc_conn c;
  assert_int_equal(hc_open(&c, port, 10000), 0);
  send_req(&c, "HEAD", "/health", NULL, NULL);
  send_req(&c, "GET", "/health", NULL, NULL);
  hc_response r;
  assert_int_equal(hc_read_response(&c, &r, true), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(hc_header(&r, "content-type"), "application/json");
  assert_string_equal(hc_header(&r, "content-length"), "15");
  assert_int_equal(r.body_len, 0);
  hc_response_free(&r);
  /* Had HEAD sent a body, it would be read here as the next status line. */
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"status\":\"ok\"}");
  hc_response_free(&r);
  hc_close(&c);
  assert_int_equal(hc_request(port, "HEAD", "/ready", NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  hc_response_free(&r);
}

static void preflight(int p, const char *origin, hc_response *r) {
  char headers[512];
  snprintf(headers, sizeof(headers),
           "Origin: %s\r\nAccess-Control-Request-Method: POST\r\n"
           "Access-Control-Request-Headers: content-type, authorization\r\n",
           origin);
  assert_int_equal(hc_request(p, "OPTIONS", "/chatkit", headers, NULL, 0, r), 0);
}

static void test_cors_allowed(void **state) {
  (void)state;
  hc_response r;
  preflight(port, ORIGIN, &r);
  assert_int_equal(r.status, 204);
  assert_string_equal(hc_header(&r, "access-control-allow-origin"), ORIGIN);
  assert_non_null(strstr(hc_header(&r, "access-control-allow-methods"), "POST"));
  const char *allow_headers = hc_header(&r, "access-control-allow-headers");
  assert_non_null(allow_headers);
  assert_non_null(strstr(allow_headers, "content-type"));
  assert_int_equal(r.body_len, 0);
  hc_response_free(&r);
  /* The actual request from that origin carries the header too (JSON and streams). */
  const char *h = "Origin: " ORIGIN "\r\nContent-Type: application/json\r\n";
  const char *list = "{\"type\":\"threads.list\",\"params\":{}}";
  assert_int_equal(hc_request(port, "POST", "/chatkit", h, list, strlen(list), &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(hc_header(&r, "access-control-allow-origin"), ORIGIN);
  hc_response_free(&r);
  assert_int_equal(hc_request(port, "POST", "/chatkit", h, create_body, strlen(create_body), &r),
                   0);
  assert_int_equal(r.status, 200);
  assert_true(r.chunked);
  assert_string_equal(hc_header(&r, "access-control-allow-origin"), ORIGIN);
  hc_response_free(&r);
  /* Errors too, or the browser could not read them. */
  assert_int_equal(hc_request(port, "POST", "/chatkit", h, "[]", 2, &r), 0);
  assert_int_equal(r.status, 400);
  assert_string_equal(hc_header(&r, "access-control-allow-origin"), ORIGIN);
  hc_response_free(&r);
  /* The other configured origin (after ", " in the list) works as well. */
  preflight(port, "http://other.example", &r);
  assert_int_equal(r.status, 204);
  hc_response_free(&r);
}

static void test_cors_disallowed(void **state) {
  (void)state;
  hc_response r;
  static const char *const bad[] = {"http://evil.example", "http://app.example",
                                    "http://app.example:3000.evil", "null"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    preflight(port, bad[i], &r);
    assert_int_equal(r.status, 403);
    assert_null(hc_header(&r, "access-control-allow-origin"));
    hc_response_free(&r);
  }
  /* A plain request from a disallowed origin is served, without the CORS header (the
   * browser then hides the answer). */
  const char *list = "{\"type\":\"threads.list\",\"params\":{}}";
  assert_int_equal(hc_request(port, "POST", "/chatkit", "Origin: http://evil.example\r\n", list,
                              strlen(list), &r),
                   0);
  assert_int_equal(r.status, 200);
  assert_null(hc_header(&r, "access-control-allow-origin"));
  hc_response_free(&r);
  assert_true(hc_healthy(port));
}

static void test_cors_any(void **state) {
  (void)state;
  hc_response r;
  preflight(any_port, "http://anything.example", &r);
  assert_int_equal(r.status, 204);
  const char *acao = hc_header(&r, "access-control-allow-origin");
  assert_non_null(acao);
  assert_true(strcmp(acao, "http://anything.example") == 0 || strcmp(acao, "*") == 0);
  assert_non_null(hc_header(&r, "access-control-allow-methods"));
  hc_response_free(&r);
  assert_int_equal(
      hc_request(any_port, "GET", "/health", "Origin: https://x.example\r\n", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(hc_header(&r, "access-control-allow-origin"));
  hc_response_free(&r);
}

static void test_stop(void **state) {
  (void)state;
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
  assert_int_equal(ck_proc_stop(&any, 15000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_pipelining),
      cmocka_unit_test(test_pipelined_stream),
      cmocka_unit_test(test_http10_stream),
      cmocka_unit_test(test_head),
      cmocka_unit_test(test_cors_allowed),
      cmocka_unit_test(test_cors_disallowed),
      cmocka_unit_test(test_cors_any),
      cmocka_unit_test(test_stop),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
