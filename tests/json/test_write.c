/* Tests of the canonical writer: number formatting (conformance case 061), string escaping
 * and round-trip identity of canonical text. */
#include <chatkit/error.h>
#include <chatkit/json.h>

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Parses `in` and returns its canonical serialisation from the arena (fails the test on a
 * parse error). */
static const char *rewrite(ck_arena *a, const char *in) {
  ck_json *v = NULL;
  ck_json_error err;
  int rc = ck_json_parse(a, in, strlen(in), 0, &v, &err);
  if (rc != CK_OK)
    fail_msg("parse of %s failed: %s at %zu", in, err.message, err.offset);
  const char *out = ck_json_dumps(a, v, NULL);
  assert_non_null(out);
  return out;
}

static const char *fmt_double(ck_arena *a, double d) {
  ck_buf b;
  ck_buf_init(&b, 0);
  assert_int_equal(ck_json_write_double(&b, d), CK_OK);
  char *s = ck_arena_strndup(a, b.data, b.len);
  ck_buf_free(&b);
  return s;
}

/* An independent statement of the float rule: the shortest "%.{p}e" that strtod reads back,
 * laid out positionally for 1e-5 <= |x| < 1e16 and with an exponent otherwise. */
static void reference_double(double d, char *out, size_t cap) {
  char e[40];
  int p = 0;
  for (; p <= 16; p++) {
    snprintf(e, sizeof(e), "%.*e", p, d);
    if (strtod(e, NULL) == d)
      break;
  }
  char digits[24];
  size_t nd = 0;
  const char *s = e + (e[0] == '-');
  for (; *s != 'e'; s++) {
    if (*s != '.')
      digits[nd++] = *s;
  }
  int x = (int)strtol(s + 1, NULL, 10);
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  digits[nd] = '\0';
  const char *sign = d < 0 ? "-" : "";
  if (fabs(d) >= 1e-5 && fabs(d) < 1e16) {
    if (x >= 0) {
      char ip[24], fp[24];
      for (int i = 0; i <= x; i++)
        ip[i] = (size_t)i < nd ? digits[i] : '0';
      ip[x + 1] = '\0';
      snprintf(fp, sizeof(fp), "%s", (size_t)x + 1 < nd ? digits + x + 1 : "0");
      snprintf(out, cap, "%s%s.%s", sign, ip, fp);
    } else {
      snprintf(out, cap, "%s0.%0*d%s", sign, -x - 1, 0, digits);
      if (x == -1) /* "%0*d" with width 0 still prints one zero */
        snprintf(out, cap, "%s0.%s", sign, digits);
    }
  } else {
    snprintf(out, cap, "%s%c%s%s%se%c%d", sign, digits[0], nd > 1 ? "." : "", digits + 1, "",
             x < 0 ? '-' : '+', x < 0 ? -x : x);
  }
}

/* The writer (fast and general paths) against the reference, over short decimals around
 * every magnitude and over random bit patterns. */
static void test_doubles_against_reference(void **state) {
  ck_arena *a = ck_arena_new(0);
  char want[64];
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 200000; i++) {
    double d;
    if (i % 2 == 0) {
      /* A short decimal: integer * 10^e. */
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      int64_t mant = (int64_t)(seed >> 40) % 100000 - 50000;
      int e = (int)((seed >> 20) % 40) - 25;
      d = (double)mant * pow(10, e);
    } else {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      uint64_t bits = seed;
      memcpy(&d, &bits, sizeof(d));
      if (!isfinite(d) || d == 0)
        continue;
    }
    if (d == 0)
      continue;
    reference_double(d, want, sizeof(want));
    const char *got = fmt_double(a, d);
    if (strcmp(got, want) != 0)
      fail_msg("%.17g: got %s, want %s", d, got, want);
    if (i % 1000 == 0)
      ck_arena_reset(a);
  }
  ck_arena_free(a);
}

/* Every float of conformance case 061, as the reference prints them. */
static void test_case_061_floats(void **state) {
  ck_arena *a = ck_arena_new(0);
  static const struct {
    double d;
    const char *want;
  } cases[] = {
      {1e-06, "1e-6"},
      {1.5e-06, "1.5e-6"},
      {1e-05, "0.00001"},
      {2.5e-05, "0.000025"},
      {0.001, "0.001"},
      {0.1, "0.1"},
      {0.30000000000000004, "0.30000000000000004"},
      {1.0, "1.0"},
      {100.0, "100.0"},
      {-1.5, "-1.5"},
      {-0.0, "-0.0"},
      {1000000000000000.0, "1000000000000000.0"},
      {9500000000000000.0, "9500000000000000.0"},
      {1e+16, "1e+16"},
      {1.2345e+16, "1.2345e+16"},
      {1.2345678901234568e+17, "1.2345678901234568e+17"},
      {1.5e+300, "1.5e+300"},
      {5e-324, "5e-324"},
      {1e-7, "1e-7"},
      {2.0, "2.0"},
      {0.0, "0.0"},
      {100000.0, "100000.0"},
      {0.5, "0.5"},
      {1.0 / 3.0, "0.3333333333333333"},
      {1e22, "1e+22"},
      {9999999999999998.0, "9999999999999998.0"},
      {123.456, "123.456"},
      {-2.5e-300, "-2.5e-300"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {NAN, "null"},
      {INFINITY, "null"},
      {-INFINITY, "null"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_string_equal(fmt_double(a, cases[i].d), cases[i].want);
  ck_arena_free(a);
}

/* The whole floats/ints document of case 061, parsed and re-written. */
static void test_case_061_document(void **state) {
  ck_arena *a = ck_arena_new(0);
  assert_string_equal(
      rewrite(a, "{\"floats\":[1e-06,1.5e-06,1e-05,2.5e-05,0.001,0.1,0.30000000000000004,1.0,"
                 "100.0,-1.5,-0.0,1000000000000000.0,9500000000000000.0,1e+16,1.2345e+16,"
                 "1.2345678901234568e+17,1.5e+300,5e-324],\"ints\":[0,3,-7,9007199254740993,"
                 "12345678901234567890123]}"),
      "{\"floats\":[1e-6,1.5e-6,0.00001,0.000025,0.001,0.1,0.30000000000000004,1.0,100.0,-1.5,"
      "-0.0,1000000000000000.0,9500000000000000.0,1e+16,1.2345e+16,1.2345678901234568e+17,"
      "1.5e+300,5e-324],\"ints\":[0,3,-7,9007199254740993,12345678901234567890123]}");
  /* The request of the second step and the output the reference stores for it. */
  assert_string_equal(rewrite(a, "[1E5,1.0e2,-0,-0.0,12345678901234567890123,1e400,0.1e1,5E-324,"
                                 "1e-5,1e-7,1e16,0.30000000000000004]"),
                      "[100000.0,100.0,0,-0.0,12345678901234567890123,null,1.0,5e-324,0.00001,"
                      "1e-7,1e+16,0.30000000000000004]");
  assert_string_equal(rewrite(a, "{\"n\":[1e-07,2.0,42]}"), "{\"n\":[1e-7,2.0,42]}");
  /* Overflow becomes null (written as such), underflow becomes a signed zero. */
  assert_string_equal(rewrite(a, "[-1e400,1e-400,-1e-400,-0.5e0]"), "[null,0.0,-0.0,-0.5]");
  ck_arena_free(a);
}

static void test_escaping(void **state) {
  ck_arena *a = ck_arena_new(0);
  /* Control characters: the short escapes, the rest as lowercase \u00XX. */
  assert_string_equal(rewrite(a, "\"\\u0001\\u001f\\n\\r\\t\\b\\f\\u000b\\u001A\""),
                      "\"\\u0001\\u001f\\n\\r\\t\\b\\f\\u000b\\u001a\"");
  /* Quote and backslash escaped; '/' and DEL raw (even when escaped in the input). */
  assert_string_equal(rewrite(a, "\"a\\\"b\\\\c\\/d\x7f\\u007f\""), "\"a\\\"b\\\\c/d\x7f\x7f\"");
  /* Non-ASCII raw: emoji from a surrogate pair, U+2028/9, e-acute. */
  assert_string_equal(rewrite(a, "\"\\ud83d\\ude00 \\u2028\\u2029 \\u00e9\""),
                      "\"\xf0\x9f\x98\x80 \xe2\x80\xa8\xe2\x80\xa9 \xc3\xa9\"");
  assert_string_equal(rewrite(a, "\"\xf0\x9f\x98\x80\xe2\x80\xa8\""),
                      "\"\xf0\x9f\x98\x80\xe2\x80\xa8\"");
  /* A NUL byte in a string value survives and is written as \u0000. */
  assert_string_equal(rewrite(a, "[\"a\\u0000b\"]"), "[\"a\\u0000b\"]");

  ck_buf b;
  ck_buf_init(&b, 0);
  assert_int_equal(ck_json_write_string(&b, "x\0y\"", 4), CK_OK);
  assert_string_equal(b.data, "\"x\\u0000y\\\"\"");
  ck_buf_free(&b);
  ck_arena_free(a);
}

static void test_round_trip_identity(void **state) {
  ck_arena *a = ck_arena_new(0);
  static const char *canonical[] = {
      "null",
      "true",
      "false",
      "0",
      "-7",
      "12345678901234567890123",
      "-12345678901234567890123",
      "1.0",
      "-0.0",
      "\"\"",
      "[]",
      "{}",
      "[[],{},[{}]]",
      "{\"type\":\"thread.item.done\",\"item\":{\"id\":\"msg_0001\",\"thread_id\":\"thr_0001\","
      "\"created_at\":\"2025-01-01T00:00:01\",\"type\":\"user_message\",\"content\":[{\"type\":"
      "\"input_text\",\"text\":\"numbers\"}],\"attachments\":[],\"inference_options\":{}}}",
      "{\"b\":1,\"a\":2,\"\xc3\xa9\":[null,true,false,0.25,\"\\u0000\"]}",
      "{\"output\":{\"r\":null}}",
  };
  for (size_t i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++)
    assert_string_equal(rewrite(a, canonical[i]), canonical[i]);
  /* Whitespace around and between tokens disappears. */
  assert_string_equal(rewrite(a, " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } }\n "),
                      "{\"a\":[1,2],\"b\":{}}");
  ck_arena_free(a);
}

static void test_raw_and_caps(void **state) {
  ck_arena *a = ck_arena_new(0);
  ck_json *o = ck_json_object(a);
  assert_int_equal(ck_json_object_set(o, "item", ck_json_raw(a, "{\"x\":[1,2]}", 11)), CK_OK);
  assert_int_equal(ck_json_object_set(o, "n", ck_json_float(a, 0.5)), CK_OK);
  size_t len = 0;
  const char *s = ck_json_dumps(a, o, &len);
  assert_string_equal(s, "{\"item\":{\"x\":[1,2]},\"n\":0.5}");
  assert_int_equal(len, strlen(s));

  /* A write that hits the cap fails and leaves the buffer as it was. */
  ck_buf b;
  ck_buf_init(&b, 10);
  assert_int_equal(ck_buf_append(&b, "ab", 2), CK_OK);
  assert_int_equal(ck_json_write(&b, o), CK_ETOOBIG);
  assert_int_equal(b.len, 2);
  assert_string_equal(b.data, "ab");
  ck_buf_free(&b);

  /* A NULL value is written as null. */
  ck_buf_init(&b, 0);
  assert_int_equal(ck_json_write(&b, NULL), CK_OK);
  assert_string_equal(b.data, "null");
  ck_buf_free(&b);
  ck_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_case_061_floats), cmocka_unit_test(test_case_061_document),
      cmocka_unit_test(test_escaping),        cmocka_unit_test(test_round_trip_identity),
      cmocka_unit_test(test_raw_and_caps),    cmocka_unit_test(test_doubles_against_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
