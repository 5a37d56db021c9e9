/* Unit tests for the socket-free parser glue and the JSON error writer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/internal.h"

#include <chatkit/error.h>

#include <stdlib.h>
#include <string.h>

static const ck__http_limits lim = {
    .max_header_bytes = 1024, .max_headers = 8, .max_body_bytes = 64};

/* Feeds `s` in pieces of `step` bytes; returns the first non-NONE event and the request. */
static ck__http_event feed_all(ck__http_parser *p, const char *s, size_t step, size_t *off) {
  size_t len = strlen(s);
  while (*off < len) {
    size_t n = len - *off < step ? len - *off : step, used = 0;
    ck__http_event ev = ck__http_parser_feed(p, s + *off, n, &used);
    *off += used;
    if (ev != CK__HTTP_EV_NONE)
      return ev;
  }
  return CK__HTTP_EV_NONE;
}

static void test_byte_by_byte(void **state) {
  const char *in = "POST /a/b?x=1&y=2#frag HTTP/1.1\r\nHost: h\r\nX-Long:   v v  \r\n"
                   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nT: t\r\n\r\n"
                   "GET / HTTP/1.1\r\n\r\n";
  for (size_t step = 1; step <= 7; step += 3) {
    ck__http_parser p;
    ck__http_parser_init(&p, &lim);
    size_t off = 0;
    assert_int_equal(feed_all(&p, in, step, &off), CK__HTTP_EV_REQUEST);
    ck__http_req *r = ck__http_parser_take(&p);
    assert_non_null(r);
    assert_string_equal(r->pub.method, "POST");
    assert_string_equal(r->pub.path, "/a/b");
    assert_string_equal(r->pub.query, "x=1&y=2");
    assert_int_equal(r->pub.header_count, 3);
    assert_string_equal(ck_http_request_header(&r->pub, "x-long"), "v v");
    assert_null(ck_http_request_header(&r->pub, "T"));
    assert_int_equal(r->pub.body_len, 5);
    assert_string_equal(r->pub.body, "abcde");
    assert_true(r->keep_alive);
    ck__http_req_unref(r);
    ck__http_parser_resume(&p);
    assert_int_equal(feed_all(&p, in, step, &off), CK__HTTP_EV_REQUEST);
    r = ck__http_parser_take(&p);
    assert_string_equal(r->pub.method, "GET");
    assert_int_equal(r->pub.header_count, 0);
    ck__http_req_unref(r);
    ck__http_parser_free(&p);
  }
}

static int status_of(const char *in) {
  ck__http_parser p;
  ck__http_parser_init(&p, &lim);
  size_t off = 0;
  ck__http_event ev = feed_all(&p, in, 1000, &off);
  int st = ev == CK__HTTP_EV_ERROR ? ck__http_parser_status(&p, NULL) : 0;
  ck__http_parser_free(&p);
  return st;
}

static void test_errors(void **state) {
  assert_int_equal(status_of("BLAH\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nContent-Length: 65\r\n\r\n"), 413);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "41\r\n"),
                   0);
  char big[2048] = "GET / HTTP/1.1\r\nX: ";
  memset(big + strlen(big), 'a', 1500);
  assert_int_equal(status_of(big), 431);
  assert_int_equal(status_of("GET / HTTP/1.1\r\na:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\n"
                             "g:1\r\nh:1\r\ni:1\r\n\r\n"),
                   431);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nExpect: nope\r\n\r\n"), 417);
  assert_int_equal(status_of("CONNECT a:1 HTTP/1.1\r\n\r\n"), 501);
  assert_int_equal(
      status_of("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  /* Field names must be tokens: no whitespace (before the colon or inside) or separators. */
  assert_int_equal(status_of("GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nX(y): x\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nX-Ok_1.~!: x\r\n\r\n"), 0);
}

static void test_chunked_cap(void **state) {
  ck__http_parser p;
  ck__http_parser_init(&p, &lim);
  size_t off = 0;
  const char *in = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n"
                   "1\r\nx\r\n0\r\n\r\n";
  assert_int_equal(feed_all(&p, in, 1000, &off), CK__HTTP_EV_ERROR);
  assert_int_equal(ck__http_parser_status(&p, NULL), 413);
  ck__http_parser_free(&p);
}

static void test_expect(void **state) {
  ck__http_parser p;
  ck__http_parser_init(&p, &lim);
  size_t off = 0;
  const char *in = "PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok";
  assert_int_equal(feed_all(&p, in, 1000, &off), CK__HTTP_EV_CONTINUE);
  assert_int_equal(off, strlen(in) - 3); /* paused before the head's final LF */
  ck__http_parser_resume(&p);
  assert_int_equal(feed_all(&p, in, 1000, &off), CK__HTTP_EV_REQUEST);
  ck__http_req *r = ck__http_parser_take(&p);
  assert_string_equal(r->pub.body, "ok");
  ck__http_req_unref(r);
  ck__http_parser_free(&p);
}

static void test_http10(void **state) {
  ck__http_parser p;
  ck__http_parser_init(&p, &lim);
  size_t off = 0;
  assert_int_equal(feed_all(&p, "GET http://h/p?q HTTP/1.0\r\n\r\n", 1000, &off),
                   CK__HTTP_EV_REQUEST);
  ck__http_req *r = ck__http_parser_take(&p);
  assert_string_equal(r->pub.path, "/p");
  assert_string_equal(r->pub.query, "q");
  assert_int_equal(r->pub.http_minor, 0);
  assert_false(r->keep_alive);
  ck__http_req_unref(r);
  ck__http_parser_free(&p);
}

static void test_json_error(void **state) {
  ck_buf b;
  ck_buf_init(&b, 0);
  assert_int_equal(
      ck__http_json_error(&b, "c\"1", "a\\b\n\x01 \xC3\xA9 \xFF \xC0\xAF \xED\xA0\x80"), CK_OK);
  assert_string_equal(b.data, "{\"error\":{\"code\":\"c\\\"1\",\"message\":\"a\\\\b\\n\\u0001 "
                              "\xC3\xA9 \xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD\"}}");
  ck_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_byte_by_byte), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_chunked_cap),  cmocka_unit_test(test_expect),
      cmocka_unit_test(test_http10),       cmocka_unit_test(test_json_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
