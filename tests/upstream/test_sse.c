/* Unit tests of the incremental SSE parser: every framing case of the reference's robustness
 * list (llm-apis.md §5.1 and §4.3.6-7), each fed whole, byte by byte and at every split
 * point, which must all give the same events. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <chatkit/error.h>

#include "upstream/sse.h"

#include <stdio.h>
#include <string.h>

/* Events are recorded as "name|data\n" lines so a whole run compares as one string. */
typedef struct rec {
  ck_buf out;
  int events;
  int stop_after; /* return nonzero from the callback after this many events (0: never) */
} rec;

static int on_event(void *ud, const char *ev, size_t evlen, const char *data, size_t dlen) {
  rec *r = ud;
  ck_buf_append(&r->out, ev, evlen);
  ck_buf_putc(&r->out, '|');
  ck_buf_append(&r->out, data, dlen);
  ck_buf_putc(&r->out, '\n');
  r->events++;
  if (r->stop_after && r->events >= r->stop_after)
    return 42;
  return 0;
}

/* Feeds `in` in pieces of `step` bytes (0: whole) and returns the recorded events (static). */
static const char *run(const char *in, size_t len, size_t step, bool finish, int *rc_out) {
  static char result[4096];
  rec r = {0};
  ck_buf_init(&r.out, 0);
  ck__sse p;
  ck__sse_init(&p, 1024, on_event, &r);
  int rc = CK_OK;
  if (step == 0)
    step = len ? len : 1;
  for (size_t off = 0; off < len && rc == CK_OK; off += step)
    rc = ck__sse_feed(&p, in + off, len - off < step ? len - off : step);
  if (rc == CK_OK && finish)
    rc = ck__sse_finish(&p);
  if (rc_out)
    *rc_out = rc;
  snprintf(result, sizeof(result), "%s", r.out.data ? r.out.data : "");
  ck__sse_free(&p);
  ck_buf_free(&r.out);
  return result;
}

/* Asserts that `in` gives `want` whole, byte by byte, and split in two at every point. */
static void check(const char *in, bool finish, const char *want) {
  size_t len = strlen(in);
  int rc;
  assert_string_equal(run(in, len, 0, finish, &rc), want);
  assert_int_equal(rc, CK_OK);
  assert_string_equal(run(in, len, 1, finish, &rc), want);
  for (size_t cut = 1; cut < len; cut++) {
    rec r = {0};
    ck_buf_init(&r.out, 0);
    ck__sse p;
    ck__sse_init(&p, 1024, on_event, &r);
    assert_int_equal(ck__sse_feed(&p, in, cut), CK_OK);
    assert_int_equal(ck__sse_feed(&p, in + cut, len - cut), CK_OK);
    if (finish)
      assert_int_equal(ck__sse_finish(&p), CK_OK);
    assert_string_equal(r.out.data ? r.out.data : "", want);
    ck__sse_free(&p);
    ck_buf_free(&r.out);
  }
}

static void test_basic_lf(void **state) {
  check("data: {\"a\":1}\n\ndata: [DONE]\n\n", false, "message|{\"a\":1}\nmessage|[DONE]\n");
}

static void test_crlf_and_cr(void **state) {
  check("data: x\r\n\r\ndata: y\r\rdata: z\n\n", false, "message|x\nmessage|y\nmessage|z\n");
  /* A lone CR followed by LF in the next chunk is one terminator, not a blank line. */
  check("data: a\r\ndata: b\r\n\r\n", false, "message|a\nb\n");
}

static void test_comments_ignored(void **state) {
  check(": OPENROUTER PROCESSING\n\n: keep-alive\ndata: 1\n\n", false, "message|1\n");
  rec r = {0};
  ck__sse p;
  ck__sse_init(&p, 0, on_event, &r);
  assert_int_equal(ck__sse_feed(&p, ": a\n: b\n", 8), CK_OK);
  assert_int_equal(p.comments, 2);
  ck__sse_free(&p);
}

static void test_event_and_multiline_data(void **state) {
  check("event: response.output_text.delta\ndata: {\"a\":\ndata: 1}\n\n", false,
        "response.output_text.delta|{\"a\":\n1}\n");
  /* The event name does not leak into the next event. */
  check("event: x\ndata: 1\n\ndata: 2\n\n", false, "x|1\nmessage|2\n");
}

static void test_field_rules(void **state) {
  /* No space after the colon; only one leading space is removed; id/retry/unknown ignored. */
  check("data:a\ndata:  b\nid: 7\nretry: 100\nfoo: bar\n\n", false, "message|a\n b\n");
  /* A line without a colon is a field name with an empty value. */
  check("data\n\n", false, "message|\n");
  /* An event without data is not dispatched, and its name is dropped. */
  check("event: lonely\n\ndata: x\n\n", false, "message|x\n");
}

static void test_error_field(void **state) {
  check("error: {\"message\":\"boom\"}\n\n", false, "error|{\"message\":\"boom\"}\n");
}

static void test_bom(void **state) {
  check("\xEF\xBB\xBF"
        "data: x\n\n",
        false, "message|x\n");
  /* A partial BOM at the start is content: here it makes the field name "\xEFdata", which
   * is unknown and ignored, so there is no event. A BOM later in the data is content too. */
  check("\xEF"
        "data: x\n\n",
        false, "");
  check("data: \xEF\xBB\xBFx\n\n", false, "message|\xEF\xBB\xBFx\n");
}

static void test_eof_without_blank_line(void **state) {
  check("data: {\"a\":1}\n\ndata: [DONE]", true, "message|{\"a\":1}\nmessage|[DONE]\n");
  check("data: [DONE]\n", true, "message|[DONE]\n");
  /* Without finish the pending event stays pending. */
  int rc;
  assert_string_equal(run("data: x\n", 8, 0, false, &rc), "");
}

static void test_utf8_split(void **state) {
  /* "☔" (E2 98 94) and "😀" (F0 9F 98 80) split at every byte by check(). */
  check("data: {\"t\":\"\xE2\x98\x94\xF0\x9F\x98\x80\"}\n\n", false,
        "message|{\"t\":\"\xE2\x98\x94\xF0\x9F\x98\x80\"}\n");
}

static void test_cap(void **state) {
  char big[2100];
  memset(big, 'x', sizeof(big));
  memcpy(big, "data: ", 6);
  int rc;
  run(big, sizeof(big), 7, false, &rc);
  assert_int_equal(rc, CK_ETOOBIG);
  /* Many small data lines that add up past the cap fail too. */
  ck_buf in;
  ck_buf_init(&in, 0);
  for (int i = 0; i < 300; i++)
    ck_buf_puts(&in, "data: 0123456789\n");
  run(in.data, in.len, 0, false, &rc);
  assert_int_equal(rc, CK_ETOOBIG);
  ck_buf_free(&in);
  /* Once failed, the parser refuses further input. */
  ck__sse p;
  ck__sse_init(&p, 16, NULL, NULL);
  assert_int_equal(ck__sse_feed(&p, big, 100), CK_ETOOBIG);
  assert_int_equal(ck__sse_feed(&p, "\n\n", 2), CK_ETOOBIG);
  assert_int_equal(ck__sse_finish(&p), CK_ETOOBIG);
  ck__sse_reset(&p);
  assert_int_equal(ck__sse_feed(&p, "data: a\n\n", 9), CK_OK);
  ck__sse_free(&p);
}

static void test_stop_from_callback(void **state) {
  rec r = {.stop_after = 1};
  ck_buf_init(&r.out, 0);
  ck__sse p;
  ck__sse_init(&p, 0, on_event, &r);
  assert_int_equal(ck__sse_feed(&p, "data: 1\n\ndata: 2\n\n", 18), 42);
  assert_int_equal(r.events, 1);
  ck__sse_free(&p);
  ck_buf_free(&r.out);
}

static void test_is_done(void **state) {
  assert_true(ck__sse_is_done("[DONE]", 6));
  assert_true(ck__sse_is_done(" [DONE] \r\n", 10));
  assert_false(ck__sse_is_done("[DONE]x", 7));
  assert_false(ck__sse_is_done("", 0));
}

static void test_free_null(void **state) {
  ck__sse_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_lf),
      cmocka_unit_test(test_crlf_and_cr),
      cmocka_unit_test(test_comments_ignored),
      cmocka_unit_test(test_event_and_multiline_data),
      cmocka_unit_test(test_field_rules),
      cmocka_unit_test(test_error_field),
      cmocka_unit_test(test_bom),
      cmocka_unit_test(test_eof_without_blank_line),
      cmocka_unit_test(test_utf8_split),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_stop_from_callback),
      cmocka_unit_test(test_is_done),
      cmocka_unit_test(test_free_null),
  };
  return cmocka_run_group_tests_name("upstream/sse", tests, NULL, NULL);
}
