/* Bad input of every kind against the real binary: each is answered with the right status and
 * a JSON error body, the server stays healthy after each, and nothing stored changes (the
 * thread list is byte-identical before and after all the rejected requests). */
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

#define MAX_BODY 4096

static char dir[256];
static ck_proc srv;
static int port;
static ck_arena *A;
static char *list_before; /* threads.list body before the bad requests */

static char *threads_list(void) {
  hc_response r;
  assert_int_equal(hc_chatkit(port, "{\"type\":\"threads.list\",\"params\":{}}", &r), 0);
  assert_int_equal(r.status, 200);
  char *body = r.body;
  r.body = NULL;
  hc_response_free(&r);
  return body;
}

static int setup(void **state) {
  (void)state;
  A = ck_arena_new(0);
  if (A == NULL || ck_tmpdir_make(dir, sizeof(dir)) != 0)
    return -1;
  char store[320];
  snprintf(store, sizeof(store), "sqlite:%s/chatkit.db", dir);
  const char *args[] = {
      "--store", store, "--demo-delay-ms", "0", "--demo-tokens", "3", "--max-body-bytes",
      "4096",    NULL};
  port = ck_server_start(&srv, dir, args, NULL);
  return port > 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ck_proc_kill_all();
  ck_tmpdir_remove(dir);
  ck_arena_free(A);
  free(list_before);
  return 0;
}

/* Asserts a JSON error response with `status` and `code`, then that the server still answers
 * its health check. */
static void assert_rejected(hc_response *r, int status, const char *code, const char *what) {
  if (r->status != status)
    fprintf(stderr, "%s: got %d %s\n", what, r->status, r->body ? r->body : "");
  assert_int_equal(r->status, status);
  assert_string_equal(hc_header(r, "content-type"), "application/json");
  ck_json *body = hc_json(A, r->body, r->body_len);
  assert_non_null(body);
  const ck_json *e = ck_json_object_get(body, "error");
  assert_string_equal(ck_json_object_get_str(e, "code"), code);
  assert_true(strlen(ck_json_object_get_str(e, "message")) > 0);
  hc_response_free(r);
  assert_true(hc_healthy(port));
}

static void post_bad(const char *body, size_t len, int status, const char *code) {
  hc_response r;
  assert_int_equal(
      hc_request(port, "POST", "/chatkit", "Content-Type: application/json\r\n", body, len, &r), 0);
  assert_rejected(&r, status, code, body);
}

static void test_seed(void **state) {
  (void)state;
  /* Something stored, so "nothing changed" is a meaningful check. */
  ck_json *events = hc_stream(
      A, port,
      "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":"
      "\"input_text\",\"text\":\"seed\"}],\"attachments\":[],\"inference_options\":{}}}}");
  assert_non_null(events);
  list_before = threads_list();
}

static void test_bad_json(void **state) {
  (void)state;
  static const char *const bodies[] = {
      "{\"type\":",                                                    /* truncated */
      "",                                                              /* empty */
      "{\"type\":\"threads.list\",\"params\":{}} trailing",            /* trailing data */
      "{'type':'threads.list'}",                                       /* not JSON */
      "[1,2]",                                                         /* not an object */
      "\"threads.list\"",                                              /* not an object */
      "null",                                                          /* not an object */
      "{\"type\":\"threads.nope\",\"params\":{}}",                     /* unknown type */
      "{\"params\":{}}",                                               /* no type */
      "{\"type\":7,\"params\":{}}",                                    /* type not a string */
      "{\"type\":\"threads.list\"}",                                   /* missing params */
      "{\"type\":\"threads.list\",\"params\":[]}",                     /* params not an object */
      "{\"type\":\"threads.list\",\"params\":{\"limit\":\"abc\"}}",    /* wrong type */
      "{\"type\":\"threads.list\",\"params\":{\"limit\":5.5}}",        /* not integral */
      "{\"type\":\"threads.list\",\"params\":{\"order\":\"ASC\"}}",    /* bad enum */
      "{\"type\":\"threads.get_by_id\",\"params\":{\"thread_id\":5}}", /* wrong type */
      "{\"type\":\"threads.get_by_id\",\"params\":{}}",                /* missing field */
      "{\"type\":\"items.feedback\",\"params\":{\"thread_id\":\"t\",\"item_ids\":[],"
      "\"kind\":\"meh\"}}",                          /* bad enum */
      "{\"type\":\"threads.create\",\"params\":{}}", /* streaming, no input */
      "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[]}}}", /* partial */
      "{\"type\":\"threads.create\",\"params\":{\"input\":{\"content\":[{\"type\":\"x\"}],"
      "\"attachments\":[],\"inference_options\":{}}}}",                /* unknown content type */
      "{\"type\":\"threads.delete\",\"params\":{\"thread_id\":null}}", /* null id */
  };
  for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
    post_bad(bodies[i], strlen(bodies[i]), 400, "invalid_request");
}

static void test_invalid_utf8(void **state) {
  (void)state;
  static const char body[] = "{\"type\":\"threads.update\",\"params\":{\"thread_id\":\"t\","
                             "\"title\":\"\xff\xfe\"}}";
  post_bad(body, sizeof(body) - 1, 400, "invalid_request");
  /* An overlong encoding of '/' and a lone surrogate escape. */
  static const char overlong[] = "{\"type\":\"threads.list\",\"params\":{},\"x\":\"\xc0\xaf\"}";
  post_bad(overlong, sizeof(overlong) - 1, 400, "invalid_request");
  /* A NUL byte inside the body. */
  static const char nul[] = "{\"type\":\"threads.list\",\"params\":{}\0}";
  post_bad(nul, sizeof(nul) - 1, 400, "invalid_request");
}

static void test_deep_nesting(void **state) {
  (void)state;
  ck_buf b;
  ck_buf_init(&b, 0);
  ck_buf_puts(&b, "{\"type\":\"threads.list\",\"params\":{},\"metadata\":");
  for (int i = 0; i < 1500; i++)
    ck_buf_putc(&b, '[');
  for (int i = 0; i < 1500; i++)
    ck_buf_putc(&b, ']');
  ck_buf_putc(&b, '}');
  /* Deeper than the body limit allows is 413; this one fits (3 KiB) and is refused as JSON. */
  assert_true(b.len <= MAX_BODY);
  post_bad(b.data, b.len, 400, "invalid_request");
  ck_buf_free(&b);
}

static void test_body_too_large(void **state) {
  (void)state;
  ck_buf b;
  ck_buf_init(&b, 0);
  ck_buf_puts(&b, "{\"type\":\"threads.list\",\"params\":{},\"metadata\":{\"pad\":\"");
  while (b.len < MAX_BODY + 100)
    ck_buf_puts(&b, "xxxxxxxxxx");
  ck_buf_puts(&b, "\"}}");
  post_bad(b.data, b.len, 413, "payload_too_large");

  /* The same with a chunked body, whose size is only known while reading it. */
  hc_conn c;
  assert_int_equal(hc_open(&c, port, 10000), 0);
  ck_buf req;
  ck_buf_init(&req, 0);
  ck_buf_puts(&req, "POST /chatkit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (size_t off = 0; off < b.len; off += 1000) {
    size_t n = b.len - off < 1000 ? b.len - off : 1000;
    ck_buf_printf(&req, "%zx\r\n", n);
    ck_buf_append(&req, b.data + off, n);
    ck_buf_puts(&req, "\r\n");
  }
  ck_buf_puts(&req, "0\r\n\r\n");
  /* The server may answer and close before it read everything; a failed send is fine. */
  (void)hc_send(&c, req.data, req.len);
  hc_response r;
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_rejected(&r, 413, "payload_too_large", "chunked body");
  hc_close(&c);
  ck_buf_free(&req);
  ck_buf_free(&b);

  /* A declared length over the limit is refused before any body byte is sent. */
  assert_int_equal(hc_open(&c, port, 10000), 0);
  static const char big[] =
      "POST /chatkit HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n";
  assert_int_equal(hc_send(&c, big, sizeof(big) - 1), 0);
  assert_int_equal(hc_read_response(&c, &r, false), 0);
  assert_rejected(&r, 413, "payload_too_large", "declared length");
  hc_close(&c);
}

static void test_wrong_method_and_path(void **state) {
  (void)state;
  hc_response r;
  static const char *const methods[] = {"GET", "PUT", "DELETE", "PATCH"};
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
    assert_int_equal(hc_request(port, methods[i], "/chatkit", NULL, NULL, 0, &r), 0);
    assert_non_null(hc_header(&r, "allow"));
    assert_string_equal(hc_header(&r, "allow"), "POST, OPTIONS");
    assert_rejected(&r, 405, "method_not_allowed", methods[i]);
  }
  assert_int_equal(hc_request(port, "POST", "/health", NULL, "{}", 2, &r), 0);
  assert_non_null(hc_header(&r, "allow"));
  assert_rejected(&r, 405, "method_not_allowed", "POST /health");
  static const char *const paths[] = {"/", "/nope", "/chatkit/x", "/chatkitx", "/CHATKIT"};
  for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
    assert_int_equal(hc_request(port, "POST", paths[i], NULL, "{}", 2, &r), 0);
    assert_rejected(&r, 404, "not_found", paths[i]);
  }
  /* The query string is not part of the path. */
  assert_int_equal(hc_request(port, "POST", "/chatkit?x=1", NULL, "[]", 2, &r), 0);
  assert_rejected(&r, 400, "invalid_request", "query");
}

/* Sends raw bytes, expects a 400 response (the body may be JSON or empty, the HTTP layer
 * answers before a request exists) and the connection closed after it. */
static void raw_bad(const char *bytes) {
  hc_conn c;
  assert_int_equal(hc_open(&c, port, 5000), 0);
  assert_int_equal(hc_send(&c, bytes, strlen(bytes)), 0);
  hc_response r;
  int rc = hc_read_response(&c, &r, false);
  if (rc != 0 || r.status != 400)
    fprintf(stderr, "raw %s -> rc %d status %d\n", bytes, rc, r.status);
  assert_int_equal(rc, 0);
  assert_int_equal(r.status, 400);
  hc_response_free(&r);
  /* After a framing error the connection cannot be trusted: the server closes it. */
  char byte;
  assert_int_equal(recv(c.fd, &byte, 1, 0), 0);
  hc_close(&c);
  assert_true(hc_healthy(port));
}

static void test_malformed_http(void **state) {
  (void)state;
  raw_bad("GARBAGE\r\n\r\n");
  raw_bad("GET / HTTP/9.9x\r\n\r\n");
  raw_bad("POST /chatkit HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
  raw_bad("POST /chatkit HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}");
  raw_bad("POST /chatkit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  raw_bad("GET /health HTTP/1.1\r\nBad Header Name: x\r\n\r\n");
  raw_bad("POST /chatkit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n");
}

static void test_nothing_changed(void **state) {
  (void)state;
  char *after = threads_list();
  assert_string_equal(after, list_before);
  free(after);
  assert_int_equal(ck_proc_stop(&srv, 15000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seed),           cmocka_unit_test(test_bad_json),
      cmocka_unit_test(test_invalid_utf8),   cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_body_too_large), cmocka_unit_test(test_wrong_method_and_path),
      cmocka_unit_test(test_malformed_http), cmocka_unit_test(test_nothing_changed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
