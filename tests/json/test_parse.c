/* Tests of the strict parser: accepted forms, every rejection class with its position and
 * message, the depth cap, duplicate keys and the number model. */
#include <chatkit/error.h>
#include <chatkit/json.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int parse_n(ck_arena *a, const char *in, size_t n, ck_json **out, ck_json_error *err) {
  memset(err, 0, sizeof(*err));
  return ck_json_parse(a, in, n, 0, out, err);
}

/* Asserts that `in` (n bytes) is rejected with CK_EINVAL and a message containing `msg`. */
static void reject_n(const char *in, size_t n, const char *msg) {
  ck_arena *a = ck_arena_new(0);
  ck_json *v = NULL;
  ck_json_error err;
  int rc = parse_n(a, in, n, &v, &err);
  if (rc != CK_EINVAL)
    fail_msg("accepted: %.*s", (int)n, in);
  if (strstr(err.message, msg) == NULL)
    fail_msg("%.*s: message \"%s\", want \"%s\"", (int)n, in, err.message, msg);
  assert_true(err.offset <= n);
  assert_true(err.line >= 1 && err.column >= 1);
  ck_arena_free(a);
}

static void reject(const char *in, const char *msg) {
  reject_n(in, strlen(in), msg);
}

static const char *rewrite(ck_arena *a, const char *in) {
  ck_json *v = NULL;
  ck_json_error err;
  if (parse_n(a, in, strlen(in), &v, &err) != CK_OK)
    fail_msg("parse of %s failed: %s", in, err.message);
  return ck_json_dumps(a, v, NULL);
}

static void test_scalars_and_whitespace(void **state) {
  ck_arena *a = ck_arena_new(0);
  ck_json *v;
  ck_json_error err;
  assert_int_equal(parse_n(a, " \n\t\rtrue \n", 10, &v, &err), CK_OK);
  assert_true(ck_json_is_bool(v) && ck_json_bool_value(v));
  assert_int_equal(parse_n(a, "null", 4, &v, &err), CK_OK);
  assert_true(ck_json_is_null(v) && v != NULL);
  assert_int_equal(parse_n(a, "\"h\\u00e9\"", 9, &v, &err), CK_OK);
  assert_string_equal(ck_json_str_value(v), "h\xc3\xa9");
  assert_int_equal(ck_json_str_len(v), 3);
  /* A string value may hold NUL; the length counts past it. */
  assert_int_equal(parse_n(a, "\"a\\u0000b\"", 10, &v, &err), CK_OK);
  assert_int_equal(ck_json_str_len(v), 3);
  assert_memory_equal(ck_json_str_value(v), "a\0b", 4);
  /* Every node knows its arena. */
  assert_ptr_equal(ck_json_arena(v), a);
  ck_arena_free(a);
}

static void test_numbers(void **state) {
  ck_arena *a = ck_arena_new(0);
  ck_json *v;
  ck_json_error err;
  int64_t i;

  assert_int_equal(parse_n(a, "-0", 2, &v, &err), CK_OK);
  assert_true(ck_json_is_int(v));
  assert_string_equal(ck_json_int_digits_value(v), "0");
  assert_int_equal(ck_json_int_value(v, &i), CK_OK);
  assert_int_equal(i, 0);

  assert_int_equal(parse_n(a, "9223372036854775807", 19, &v, &err), CK_OK);
  assert_int_equal(ck_json_int_value(v, &i), CK_OK);
  assert_true(i == INT64_MAX);
  assert_int_equal(parse_n(a, "-9223372036854775808", 20, &v, &err), CK_OK);
  assert_int_equal(ck_json_int_value(v, &i), CK_OK);
  assert_true(i == INT64_MIN);
  assert_int_equal(parse_n(a, "9223372036854775808", 19, &v, &err), CK_OK);
  assert_int_equal(ck_json_int_value(v, &i), CK_EINVAL);
  assert_string_equal(ck_json_int_digits_value(v), "9223372036854775808");
  assert_true(ck_json_number_value(v) == 9223372036854775808.0);
  assert_int_equal(parse_n(a, "12345678901234567890123", 23, &v, &err), CK_OK);
  assert_true(ck_json_is_int(v) && ck_json_is_number(v));
  assert_int_equal(ck_json_int_value(v, &i), CK_EINVAL);

  assert_int_equal(parse_n(a, "-0.0", 4, &v, &err), CK_OK);
  assert_true(ck_json_is_float(v));
  assert_true(ck_json_number_value(v) == 0.0);
  assert_int_equal(parse_n(a, "1E5", 3, &v, &err), CK_OK);
  assert_true(ck_json_is_float(v) && ck_json_number_value(v) == 100000.0);
  assert_int_equal(ck_json_int_value(v, &i), CK_EINVAL);
  /* A long float token (longer than the parser's stack copy) still converts. */
  char longnum[200];
  memset(longnum, '1', sizeof(longnum));
  longnum[1] = '.';
  assert_int_equal(parse_n(a, longnum, sizeof(longnum), &v, &err), CK_OK);
  assert_true(ck_json_number_value(v) > 1.11 && ck_json_number_value(v) < 1.12);

  reject("01", "leading zeros");
  reject("-01", "leading zeros");
  reject("-", "invalid number");
  reject("1.", "digit after decimal point");
  reject(".5", "unexpected character");
  reject("1e", "exponent");
  reject("1e+", "exponent");
  reject("+1", "unexpected character");
  reject("NaN", "unexpected character");
  reject("Infinity", "unexpected character");
  reject("-Infinity", "invalid number");
  reject("0x10", "unexpected data after JSON value");
  ck_arena_free(a);
}

static void test_structure_errors(void **state) {
  reject("", "unexpected end of input");
  reject("   ", "unexpected end of input");
  reject("[1,]", "unexpected character");
  reject("[1 2]", "expected ',' or ']' after array element");
  reject("{\"a\":1,}", "expected string key in object");
  reject("{\"a\":1 \"b\":2}", "expected ',' or '}' after object member");
  reject("{\"a\" 1}", "expected ':' after object key");
  reject("{a:1}", "expected string key in object");
  reject("{\"a\":1", "unterminated object");
  reject("[1", "unterminated array");
  reject("[", "unexpected end of input");
  reject("\"abc", "unterminated string");
  reject("\"abc\\", "unterminated string");
  reject("tru", "invalid literal");
  reject("nul", "invalid literal");
  reject("True", "unexpected character");
  reject("{} x", "unexpected data after JSON value");
  reject("[] []", "unexpected data after JSON value");
  reject("1 2", "unexpected data after JSON value");
  reject("/* c */ 1", "unexpected character");
  reject("[1] // c", "unexpected data after JSON value");
  reject_n("1\0", 2, "unexpected data after JSON value");
  reject("\"a\tb\"", "control character in string");
  reject("\"a\nb\"", "control character in string");
  reject("\"\\x41\"", "invalid escape");
  reject("\"\\u12\"", "invalid \\u escape");
  reject("\"\\u12G4\"", "invalid \\u escape");
  reject("\"\\'\"", "invalid escape");

  /* A NUL in a key is kept (the reference echoes such keys in free-form data), and the key
   * round-trips with its full length. */
  ck_arena *a = ck_arena_new(0);
  ck_json *nk = NULL;
  assert_int_equal(ck_json_parse(a, "{\"a\\u0000b\":1}", 14, 0, &nk, NULL), CK_OK);
  assert_int_equal(ck_json_object_key_len(nk, 0), 3);
  assert_string_equal(ck_json_dumps(a, nk, NULL), "{\"a\\u0000b\":1}");
  ck_json *copy = ck_json_object(a);
  assert_int_equal(ck_json_object_setn(copy, "a\0b", 3, ck_json_int(a, 1)), CK_OK);
  assert_true(ck_json_equal(copy, nk));

  /* Error positions: offset, 1-based line and column. */
  ck_json *v = NULL;
  ck_json_error err;
  const char *in = "{\n  \"a\": 1\n  \"b\": 2}";
  assert_int_equal(parse_n(a, in, strlen(in), &v, &err), CK_EINVAL);
  assert_string_equal(err.message, "expected ',' or '}' after object member");
  assert_int_equal(err.offset, 13);
  assert_int_equal(err.line, 3);
  assert_int_equal(err.column, 3);
  /* A NULL error pointer is allowed. */
  assert_int_equal(ck_json_parse(a, "[", 1, 0, &v, NULL), CK_EINVAL);
  assert_int_equal(ck_json_parse(a, "1", 1, -1, &v, &err), CK_EINVAL);
  ck_arena_free(a);
}

static void test_utf8_rejections(void **state) {
  /* Each class from the contract, inside a string. */
  static const struct {
    const char *bytes;
    size_t n;
  } bad[] = {
      {"\"\x80\"", 3},                                    /* stray continuation byte */
      {"\"\xbf\"", 3},                                    /* stray continuation byte */
      {"\"\xc0\xaf\"", 4},                                /* overlong 2-byte '/' */
      {"\"\xc1\xbf\"", 4},                                /* overlong 2-byte */
      {"\"\xe0\x80\xaf\"", 5},                            /* overlong 3-byte */
      {"\"\xe0\x9f\xbf\"", 5},                            /* overlong 3-byte (U+07FF) */
      {"\"\xf0\x80\x80\xaf\"", 6},                        /* overlong 4-byte */
      {"\"\xf0\x8f\xbf\xbf\"", 6},                        /* overlong 4-byte (U+FFFF) */
      {"\"\xed\xa0\x80\"", 5},                            /* surrogate U+D800 */
      {"\"\xed\xbf\xbf\"", 5},                            /* surrogate U+DFFF */
      {"\"\xf4\x90\x80\x80\"", 6},                        /* U+110000 */
      {"\"\xf5\x80\x80\x80\"", 6},                        /* lead byte beyond U+10FFFF */
      {"\"\xff\"", 3},                                    /* never valid */
      {"\"\xc3\"", 3},                                    /* truncated 2-byte */
      {"\"\xe2\x82\"", 4},                                /* truncated 3-byte */
      {"\"\xf0\x9f\x98\"", 5},                            /* truncated 4-byte */
      {"\"\xc3(\"", 4},                                   /* bad continuation */
      {"\"\xf0\x9f\x98", 4},                              /* truncated at end of input */
      {"\"abcdefghijklm\xc3\xa9nop\xa9qrstuvwxyz\"", 31}, /* stray byte after the fast path */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    reject_n(bad[i].bytes, bad[i].n, "invalid UTF-8 in string");

  /* The boundaries that are valid. */
  ck_arena *a = ck_arena_new(0);
  static const char *good[] = {
      "\"\xc2\x80\"",         /* U+0080 */
      "\"\xdf\xbf\"",         /* U+07FF */
      "\"\xe0\xa0\x80\"",     /* U+0800 */
      "\"\xed\x9f\xbf\"",     /* U+D7FF */
      "\"\xee\x80\x80\"",     /* U+E000 */
      "\"\xef\xbf\xbf\"",     /* U+FFFF */
      "\"\xf0\x90\x80\x80\"", /* U+10000 */
      "\"\xf4\x8f\xbf\xbf\"", /* U+10FFFF */
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    assert_string_equal(rewrite(a, good[i]), good[i]);

  /* Surrogate escapes: pairs decode to four bytes, lone halves are refused. */
  assert_string_equal(rewrite(a, "\"\\uD83D\\uDE00\""), "\"\xf0\x9f\x98\x80\"");
  assert_string_equal(rewrite(a, "\"\\udbff\\udfff\""), "\"\xf4\x8f\xbf\xbf\"");
  reject("\"\\uD83D\"", "unpaired surrogate");
  reject("\"\\uD83Dx\"", "unpaired surrogate");
  reject("\"\\uD83D\\u0041\"", "unpaired surrogate");
  reject("\"\\uD83D\\uD83D\"", "unpaired surrogate");
  reject("\"\\uDE00\"", "unpaired surrogate");
  reject("\"\\uDE00\\uD83D\"", "unpaired surrogate");
  /* Invalid UTF-8 inside a key is refused as well. */
  reject("{\"\xc0\xaf\":1}", "invalid UTF-8");
  ck_arena_free(a);
}

static void test_depth_limit(void **state) {
  ck_arena *a = ck_arena_new(0);
  ck_json *v;
  ck_json_error err;
  char buf[2 * 200 + 1];
  /* Exactly the default depth is accepted, one more is not. */
  for (int depth = 63; depth <= 65; depth++) {
    size_t n = 0;
    for (int i = 0; i < depth; i++)
      buf[n++] = '[';
    for (int i = 0; i < depth; i++)
      buf[n++] = ']';
    int rc = ck_json_parse(a, buf, n, 0, &v, &err);
    assert_int_equal(rc, depth <= CK_JSON_DEFAULT_MAX_DEPTH ? CK_OK : CK_EINVAL);
    if (rc != CK_OK) {
      assert_string_equal(err.message, "nesting too deep");
      assert_int_equal(err.offset, CK_JSON_DEFAULT_MAX_DEPTH);
    }
  }
  /* Objects count as well, and a caller-supplied cap applies. */
  assert_int_equal(ck_json_parse(a, "{\"a\":{\"b\":[1]}}", 15, 3, &v, &err), CK_OK);
  assert_int_equal(ck_json_parse(a, "{\"a\":{\"b\":[1]}}", 15, 2, &v, &err), CK_EINVAL);
  assert_int_equal(ck_json_parse(a, "[]", 2, 1, &v, &err), CK_OK);
  assert_int_equal(ck_json_parse(a, "[[]]", 4, 1, &v, &err), CK_EINVAL);
  assert_int_equal(ck_json_parse(a, "1", 1, 1, &v, &err), CK_OK);
  /* A deep text far beyond any cap fails cleanly rather than exhausting the stack. */
  size_t deep = 100000;
  char *big = malloc(deep);
  assert_non_null(big);
  memset(big, '[', deep);
  assert_int_equal(ck_json_parse(a, big, deep, 1000000, &v, &err), CK_EINVAL);
  assert_string_equal(err.message, "nesting too deep");
  free(big);
  ck_arena_free(a);
}

static void test_duplicate_keys(void **state) {
  ck_arena *a = ck_arena_new(0);
  assert_string_equal(rewrite(a, "{\"a\":1,\"b\":2,\"a\":3}"), "{\"a\":3,\"b\":2}");
  assert_string_equal(rewrite(a, "{\"a\":1,\"a\":2,\"a\":{\"x\":1,\"x\":[]}}"),
                      "{\"a\":{\"x\":[]}}");
  /* Keys that differ only after an escape are distinct; escaped and raw forms are the same. */
  assert_string_equal(rewrite(a, "{\"\\u0061\":1,\"a\":2,\"ab\":3}"), "{\"a\":2,\"ab\":3}");
  /* Large objects take the sorting path: same result. */
  char in[4096], want[4096];
  size_t n = 0, w = 0;
  in[n++] = '{';
  want[w++] = '{';
  for (int i = 0; i < 40; i++)
    n += (size_t)snprintf(in + n, sizeof(in) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
  for (int i = 0; i < 40; i += 3)
    n += (size_t)snprintf(in + n, sizeof(in) - n, ",\"k%d\":%d", i, 1000 + i);
  in[n++] = '}';
  in[n] = '\0';
  for (int i = 0; i < 40; i++)
    w += (size_t)snprintf(want + w, sizeof(want) - w, "%s\"k%d\":%d", i ? "," : "", i,
                          i % 3 == 0 ? 1000 + i : i);
  want[w++] = '}';
  want[w] = '\0';
  assert_string_equal(rewrite(a, in), want);
  /* The case of 067: a duplicate top-level key keeps the last value. */
  assert_string_equal(
      rewrite(a, "{\"type\":\"threads.list\",\"params\":{\"limit\":5},\"params\":{\"limit\":1}}"),
      "{\"type\":\"threads.list\",\"params\":{\"limit\":1}}");
  ck_arena_free(a);
}

static void test_large_document(void **state) {
  /* Enough elements to grow the parser's scratch stacks several times. */
  ck_arena *a = ck_arena_new(0);
  ck_buf b;
  ck_buf_init(&b, 0);
  assert_int_equal(ck_buf_puts(&b, "[{"), CK_OK);
  for (int i = 0; i < 3000; i++)
    assert_int_equal(ck_buf_printf(&b, "%s\"key%d\":[%d,\"v\"]", i ? "," : "", i, i), CK_OK);
  assert_int_equal(ck_buf_puts(&b, "}]"), CK_OK);
  ck_json *v;
  ck_json_error err;
  assert_int_equal(ck_json_parse(a, b.data, b.len, 0, &v, &err), CK_OK);
  ck_json *o = ck_json_array_get(v, 0);
  assert_int_equal(ck_json_object_size(o), 3000);
  assert_string_equal(ck_json_object_key(o, 2999), "key2999");
  size_t len;
  const char *out = ck_json_dumps(a, v, &len);
  assert_int_equal(len, b.len);
  assert_memory_equal(out, b.data, len);
  ck_buf_free(&b);
  ck_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalars_and_whitespace),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_structure_errors),
      cmocka_unit_test(test_utf8_rejections),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_large_document),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
