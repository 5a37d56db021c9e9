/* Tests of the document model: constructors, accessors, mutators, copy/expand and equality. */
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

static ck_json *P(ck_arena *a, const char *text) {
  ck_json *v = NULL;
  ck_json_error err;
  if (ck_json_parse(a, text, strlen(text), 0, &v, &err) != CK_OK)
    fail_msg("parse of %s failed: %s", text, err.message);
  return v;
}

static void test_constructors(void **state) {
  ck_arena *a = ck_arena_new(0);
  int64_t i;
  assert_true(ck_json_is_null(ck_json_null(a)));
  assert_true(ck_json_is_null(NULL));
  assert_int_equal(ck_json_typeof(NULL), CK_JSON_NULL);
  assert_true(ck_json_bool_value(ck_json_bool(a, true)));
  assert_false(ck_json_bool_value(ck_json_int(a, 1)));

  ck_json *v = ck_json_int(a, INT64_MIN);
  assert_string_equal(ck_json_int_digits_value(v), "-9223372036854775808");
  assert_int_equal(ck_json_int_value(v, &i), CK_OK);
  assert_true(i == INT64_MIN);
  assert_string_equal(ck_json_int_digits_value(ck_json_int(a, 0)), "0");
  assert_string_equal(ck_json_int_digits_value(ck_json_int(a, 42)), "42");

  v = ck_json_int_digits(a, "-000123", 7);
  assert_string_equal(ck_json_int_digits_value(v), "-123");
  assert_string_equal(ck_json_int_digits_value(ck_json_int_digits(a, "-0", 2)), "0");
  assert_null(ck_json_int_digits(a, "", 0));
  assert_null(ck_json_int_digits(a, "-", 1));
  assert_null(ck_json_int_digits(a, "1.0", 3));
  assert_null(ck_json_int_digits(a, "12a", 3));
  assert_null(ck_json_int_digits(a, "+1", 2));
  v = ck_json_int_digits(a, "123456789012345678901234567890", 30);
  assert_int_equal(ck_json_int_value(v, &i), CK_EINVAL);
  assert_string_equal(ck_json_dumps(a, v, NULL), "123456789012345678901234567890");

  assert_true(ck_json_number_value(ck_json_float(a, 2.5)) == 2.5);
  assert_true(ck_json_number_value(ck_json_str(a, "x")) == 0);
  assert_true(ck_json_is_null(ck_json_str(a, NULL)));
  v = ck_json_strn(a, "a\0b", 3);
  assert_int_equal(ck_json_str_len(v), 3);
  assert_null(ck_json_str_value(ck_json_int(a, 1)));
  assert_int_equal(ck_json_str_len(ck_json_int(a, 1)), 0);

  v = ck_json_raw(a, "[1,2]", 5);
  size_t n = 0;
  assert_string_equal(ck_json_raw_text(v, &n), "[1,2]");
  assert_int_equal(n, 5);
  assert_int_equal(ck_json_typeof(v), CK_JSON_RAW);
  ck_json *e = ck_json_expand(a, v);
  assert_true(ck_json_is_array(e) && ck_json_array_size(e) == 2);
  assert_ptr_equal(ck_json_expand(a, e), e);
  assert_null(ck_json_expand(a, ck_json_raw(a, "[1,", 3)));
  ck_arena_free(a);
}

/* Node lengths are 32-bit: a longer string or text is refused up front (before any byte of
 * it is read, so a short buffer with a huge length is safe to pass here). */
static void test_length_limit(void **state) {
  ck_arena *a = ck_arena_new(0);
  static const char small[] = "\"x\"";
  assert_null(ck_json_strn(a, small, (size_t)UINT32_MAX + 1));
  assert_null(ck_json_strn(a, small, (size_t)UINT32_MAX));
  ck_json *v = NULL;
  ck_json_error err;
  assert_int_equal(ck_json_parse(a, small, (size_t)UINT32_MAX + 1, 0, &v, &err), CK_EINVAL);
  assert_null(v);
  assert_int_equal(ck_json_parse(a, small, 3, 0, &v, &err), CK_OK);
  assert_int_equal(ck_json_str_len(v), 1);
  ck_arena_free(a);
}

static void test_arrays(void **state) {
  ck_arena *a = ck_arena_new(0);
  ck_json *arr = ck_json_array(a);
  for (int i = 0; i < 100; i++)
    assert_int_equal(ck_json_array_append(arr, ck_json_int(a, i)), CK_OK);
  assert_int_equal(ck_json_array_size(arr), 100);
  assert_int_equal(ck_json_array_insert(arr, 0, ck_json_str(a, "first")), CK_OK);
  assert_int_equal(ck_json_array_insert(arr, 101, ck_json_str(a, "last")), CK_OK);
  assert_int_equal(ck_json_array_insert(arr, 103, ck_json_null(a)), CK_EINVAL);
  assert_int_equal(ck_json_array_remove(arr, 1), CK_OK);
  assert_int_equal(ck_json_array_set(arr, 1, ck_json_bool(a, false)), CK_OK);
  assert_int_equal(ck_json_array_set(arr, 500, ck_json_bool(a, false)), CK_EINVAL);
  assert_int_equal(ck_json_array_remove(arr, 500), CK_EINVAL);
  assert_int_equal(ck_json_array_size(arr), 101);
  assert_string_equal(ck_json_str_value(ck_json_array_get(arr, 0)), "first");
  assert_true(ck_json_is_bool(ck_json_array_get(arr, 1)));
  assert_string_equal(ck_json_int_digits_value(ck_json_array_get(arr, 2)), "2");
  assert_string_equal(ck_json_str_value(ck_json_array_get(arr, 100)), "last");
  assert_null(ck_json_array_get(arr, 101));
  assert_int_equal(ck_json_array_append(arr, NULL), CK_EINVAL);
  assert_int_equal(ck_json_array_append(ck_json_object(a), ck_json_null(a)), CK_EINVAL);

  /* A parsed array (exactly sized) grows too. */
  ck_json *p = P(a, "[1,2,3]");
  assert_int_equal(ck_json_array_append(p, ck_json_int(a, 4)), CK_OK);
  assert_int_equal(ck_json_array_insert(p, 1, ck_json_float(a, 1.5)), CK_OK);
  assert_string_equal(ck_json_dumps(a, p, NULL), "[1,1.5,2,3,4]");
  ck_json_array_clear(p);
  assert_string_equal(ck_json_dumps(a, p, NULL), "[]");
  assert_int_equal(ck_json_array_size(ck_json_int(a, 1)), 0);
  ck_arena_free(a);
}

static void test_objects(void **state) {
  ck_arena *a = ck_arena_new(0);
  ck_json *o = ck_json_object(a);
  assert_int_equal(ck_json_object_set(o, "id", ck_json_str(a, "thr_1")), CK_OK);
  assert_int_equal(ck_json_object_set(o, "created_at", ck_json_str(a, "t")), CK_OK);
  assert_int_equal(ck_json_object_set(o, "status", ck_json_null(a)), CK_OK);
  assert_int_equal(ck_json_object_set(o, "metadata", ck_json_object(a)), CK_OK);
  /* Replacing keeps the position. */
  assert_int_equal(ck_json_object_set(o, "created_at", ck_json_int(a, 5)), CK_OK);
  assert_string_equal(ck_json_dumps(a, o, NULL),
                      "{\"id\":\"thr_1\",\"created_at\":5,\"status\":null,\"metadata\":{}}");
  /* A null member is present and null; an absent one is NULL. */
  assert_non_null(ck_json_object_get(o, "status"));
  assert_true(ck_json_is_null(ck_json_object_get(o, "status")));
  assert_null(ck_json_object_get(o, "nope"));
  assert_string_equal(ck_json_object_get_str(o, "id"), "thr_1");
  assert_null(ck_json_object_get_str(o, "created_at"));
  /* Deleting keeps the order of the rest; re-adding appends. */
  assert_int_equal(ck_json_object_del(o, "created_at"), CK_OK);
  assert_int_equal(ck_json_object_del(o, "created_at"), CK_ENOTFOUND);
  assert_int_equal(ck_json_object_set(o, "created_at", ck_json_bool(a, true)), CK_OK);
  assert_string_equal(ck_json_dumps(a, o, NULL),
                      "{\"id\":\"thr_1\",\"status\":null,\"metadata\":{},\"created_at\":true}");
  assert_int_equal(ck_json_object_size(o), 4);
  assert_string_equal(ck_json_object_key(o, 3), "created_at");
  assert_true(ck_json_is_object(ck_json_object_value(o, 2)));
  assert_null(ck_json_object_key(o, 4));
  assert_null(ck_json_object_value(o, 4));
  assert_int_equal(ck_json_object_set(o, NULL, ck_json_null(a)), CK_EINVAL);
  assert_int_equal(ck_json_object_set(o, "x", NULL), CK_EINVAL);
  assert_int_equal(ck_json_object_set(ck_json_array(a), "x", ck_json_null(a)), CK_EINVAL);

  /* The key is copied. */
  char key[4] = "abc";
  assert_int_equal(ck_json_object_set(o, key, ck_json_int(a, 1)), CK_OK);
  key[0] = 'z';
  assert_non_null(ck_json_object_get(o, "abc"));

  /* Many members: growth by doubling, lookups by length then bytes. */
  ck_json *big = P(a, "{\"a\":1}");
  for (int i = 0; i < 200; i++) {
    char k[16];
    snprintf(k, sizeof(k), "k%d", i);
    assert_int_equal(ck_json_object_set(big, k, ck_json_int(a, i)), CK_OK);
  }
  assert_int_equal(ck_json_object_size(big), 201);
  assert_string_equal(ck_json_int_digits_value(ck_json_object_get(big, "k199")), "199");
  assert_string_equal(ck_json_object_key(big, 0), "a");
  ck_arena_free(a);
}

static void test_copy(void **state) {
  ck_arena *a = ck_arena_new(0);
  ck_arena *b = ck_arena_new(0);
  const char *text = "{\"s\":\"x\\u0000y\",\"n\":[1,-0.0,1e300,12345678901234567890123,true,null],"
                     "\"o\":{\"k\":{}}}";
  ck_json *v = P(a, text);
  ck_json *o = ck_json_object(a);
  assert_int_equal(ck_json_object_set(o, "raw", ck_json_raw(a, "{\"z\":1}", 7)), CK_OK);
  assert_int_equal(ck_json_object_set(o, "v", v), CK_OK);
  const char *before = ck_json_dumps(b, o, NULL);
  ck_json *c = ck_json_copy(b, o);
  assert_ptr_equal(ck_json_arena(c), b);
  assert_ptr_equal(ck_json_arena(ck_json_object_get(c, "v")), b);
  assert_int_equal(ck_json_typeof(ck_json_object_get(c, "raw")), CK_JSON_RAW);
  ck_arena_free(a);
  /* The copy no longer depends on the first arena. */
  assert_string_equal(ck_json_dumps(b, c, NULL), before);
  assert_null(ck_json_copy(b, NULL));
  ck_arena_free(b);
}

static void test_equal(void **state) {
  ck_arena *a = ck_arena_new(0);
  assert_true(ck_json_equal(P(a, "4"), P(a, "4.0")));
  assert_true(ck_json_equal(P(a, "4.0"), P(a, "4")));
  assert_true(ck_json_equal(P(a, "-0"), P(a, "0.0")));
  assert_true(ck_json_equal(P(a, "0"), P(a, "-0.0")));
  assert_false(ck_json_equal(P(a, "4"), P(a, "4.5")));
  assert_false(ck_json_equal(P(a, "4"), P(a, "\"4\"")));
  assert_true(ck_json_equal(P(a, "1e2"), P(a, "100")));
  assert_true(ck_json_equal(P(a, "12345678901234567890123"), P(a, "12345678901234567890123")));
  assert_false(ck_json_equal(P(a, "12345678901234567890123"), P(a, "12345678901234567890124")));
  /* A big integer equals a float only when the float is exactly that integer. */
  assert_true(ck_json_equal(P(a, "9223372036854775808"), P(a, "9223372036854775808.0")));
  assert_true(ck_json_equal(P(a, "1e22"), P(a, "10000000000000000000000")));
  assert_false(ck_json_equal(P(a, "1e23"), P(a, "100000000000000000000000")));
  assert_false(ck_json_equal(P(a, "9007199254740993"), P(a, "9007199254740992.0")));
  assert_true(ck_json_equal(P(a, "9007199254740992"), P(a, "9007199254740992.0")));
  assert_false(ck_json_equal(P(a, "1e400"), P(a, "1")));
  /* Objects ignore member order; arrays do not ignore element order. */
  assert_true(ck_json_equal(P(a, "{\"a\":1,\"b\":[1,{\"c\":null}]}"),
                            P(a, "{\"b\":[1.0,{\"c\":null}],\"a\":1}")));
  assert_false(ck_json_equal(P(a, "{\"a\":1}"), P(a, "{\"a\":1,\"b\":2}")));
  assert_false(ck_json_equal(P(a, "{\"a\":1,\"c\":2}"), P(a, "{\"a\":1,\"b\":2}")));
  assert_false(ck_json_equal(P(a, "[1,2]"), P(a, "[2,1]")));
  assert_false(ck_json_equal(P(a, "[1,2]"), P(a, "[1,2,3]")));
  assert_true(ck_json_equal(P(a, "\"a\\u0000b\""), ck_json_strn(a, "a\0b", 3)));
  assert_false(ck_json_equal(P(a, "\"a\\u0000b\""), ck_json_strn(a, "a\0c", 3)));
  assert_true(ck_json_equal(P(a, "null"), NULL));
  assert_true(ck_json_equal(P(a, "true"), P(a, "true")));
  assert_false(ck_json_equal(P(a, "true"), P(a, "false")));
  /* RAW values: identical text, or the same structure once parsed. */
  assert_true(ck_json_equal(ck_json_raw(a, "[1]", 3), ck_json_raw(a, "[1]", 3)));
  assert_true(ck_json_equal(ck_json_raw(a, "{\"a\":1,\"b\":2}", 13),
                            ck_json_raw(a, "{\"b\":2,\"a\":1}", 13)));
  assert_true(ck_json_equal(ck_json_raw(a, "[1.0]", 5), P(a, "[1]")));
  assert_true(ck_json_equal(P(a, "[1]"), ck_json_raw(a, "[1.0]", 5)));
  assert_false(ck_json_equal(P(a, "[2]"), ck_json_raw(a, "[1]", 3)));
  ck_arena_free(a);
}

/* The fingerprint the pipeline uses to notice thread changes: equal trees hash equal, and any
 * edit a handler may make (a title, a nested status, a key's order) changes it. */
static void test_hash(void **state) {
  ck_arena *a = ck_arena_new(0);
  const char *text = "{\"title\":\"T\",\"id\":\"t\",\"status\":{\"type\":\"active\"},"
                     "\"metadata\":{\"n\":1.5,\"k\":[1,null,true]}}";
  ck_json *x = NULL, *y = NULL;
  assert_int_equal(ck_json_parse(a, text, strlen(text), 0, &x, NULL), CK_OK);
  assert_int_equal(ck_json_parse(a, text, strlen(text), 0, &y, NULL), CK_OK);
  assert_true(ck_json_hash(x) == ck_json_hash(y));
  assert_true(ck_json_hash(ck_json_copy(a, x)) == ck_json_hash(x));
  uint64_t h = ck_json_hash(x);
  ck_json_object_set(y, "title", ck_json_str(a, "U"));
  assert_true(ck_json_hash(y) != h);
  ck_json_object_set(y, "title", ck_json_str(a, "T"));
  assert_true(ck_json_hash(y) == h);
  ck_json_object_set(ck_json_object_get(y, "status"), "type", ck_json_str(a, "locked"));
  assert_true(ck_json_hash(y) != h);
  /* Same members in another order write differently, so they hash differently. */
  ck_json *p = ck_json_object(a), *q = ck_json_object(a);
  ck_json_object_set(p, "a", ck_json_int(a, 1));
  ck_json_object_set(p, "b", ck_json_int(a, 2));
  ck_json_object_set(q, "b", ck_json_int(a, 2));
  ck_json_object_set(q, "a", ck_json_int(a, 1));
  assert_true(ck_json_hash(p) != ck_json_hash(q));
  /* A string and the same text as a key, or 1 and 1.0, are different values. */
  assert_true(ck_json_hash(ck_json_int(a, 1)) != ck_json_hash(ck_json_float(a, 1.0)));
  assert_true(ck_json_hash(ck_json_str(a, "1")) != ck_json_hash(ck_json_int(a, 1)));
  ck_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_constructors), cmocka_unit_test(test_arrays),
      cmocka_unit_test(test_length_limit), cmocka_unit_test(test_objects),
      cmocka_unit_test(test_copy),         cmocka_unit_test(test_equal),
      cmocka_unit_test(test_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
