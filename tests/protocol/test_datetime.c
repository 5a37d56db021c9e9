/* Tests of timestamp parsing and printing (protocol.md §2.3). */
#include "protocol/datetime.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Parses `in` and asserts its canonical form is `want`. */
static void check(const char *in, const char *want) {
  ck__datetime dt;
  char out[CK_DATETIME_MAX];
  if (ck__datetime_parse(in, strlen(in), &dt) != 0)
    fail_msg("rejected: %s", in);
  size_t n = ck__datetime_format(&dt, out);
  assert_int_equal(n, strlen(out));
  assert_string_equal(out, want);
}

static void reject(const char *in) {
  ck__datetime dt;
  if (ck__datetime_parse(in, strlen(in), &dt) == 0)
    fail_msg("accepted: %s", in);
}

static void test_forms(void **state) {
  check("2025-01-02T03:04:05.678901", "2025-01-02T03:04:05.678901");
  check("2025-01-02T03:04:05.000000", "2025-01-02T03:04:05");
  check("2025-01-02T03:04:05", "2025-01-02T03:04:05");
  check("2025-01-02T03:04:05Z", "2025-01-02T03:04:05Z");
  check("2025-01-02T03:04:05z", "2025-01-02T03:04:05Z");
  check("2025-01-02T03:04:05+00:00", "2025-01-02T03:04:05Z");
  check("2025-01-02T03:04:05.12-05:00", "2025-01-02T03:04:05.120000-05:00");
  check("2025-01-02T03:04:05+0530", "2025-01-02T03:04:05+05:30");
  check("2025-01-02 03:04:05", "2025-01-02T03:04:05");
  check("2025-01-02t03:04", "2025-01-02T03:04:00");
  check("2025-01-02T03:04Z", "2025-01-02T03:04:00Z");
  check("2025-01-02T03:04:05.1", "2025-01-02T03:04:05.100000");
  check("2025-01-02T03:04:05.12", "2025-01-02T03:04:05.120000");
  check("2025-01-02T03:04:05.123", "2025-01-02T03:04:05.123000");
  check("2025-01-02T03:04:05.1234", "2025-01-02T03:04:05.123400");
  check("2025-01-02T03:04:05.12345", "2025-01-02T03:04:05.123450");
  check("2025-01-02T03:04:05.000001", "2025-01-02T03:04:05.000001");
  check("2025-01-02", "2025-01-02T00:00:00");
  check("2024-02-29T23:59:59.999999", "2024-02-29T23:59:59.999999");
  check("2000-02-29", "2000-02-29T00:00:00");
  check("0001-01-01T00:00:00", "0001-01-01T00:00:00");
  check("9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999");
  check("1969-12-31T23:59:59.5", "1969-12-31T23:59:59.500000");
  check("1970-01-01T00:00:00", "1970-01-01T00:00:00");
}

static void test_bad_inputs(void **state) {
  reject("");
  reject("2025");
  reject("2025-1-02");
  reject("2025-01-2");
  reject("25-01-02");
  reject("0000-01-01");
  reject("2025-00-01");
  reject("2025-13-01");
  reject("2025-01-00");
  reject("2025-01-32");
  reject("2025-02-29");
  reject("1900-02-29");
  reject("2025-04-31");
  reject("2025-01-02T");
  reject("2025-01-02X03:04:05");
  reject("2025-01-02T24:00:00");
  reject("2025-01-02T23:60:00");
  reject("2025-01-02T23:59:60");
  reject("2025-01-02T3:04:05");
  reject("2025-01-02T03:04:05.");
  reject("2025-01-02T03:04:05.1234567");
  reject("2025-01-02T03:04:05+5:00");
  reject("2025-01-02T03:04:05+24:00");
  reject("2025-01-02T03:04:05+05:60");
  reject("2025-01-02T03:04:05ZZ");
  reject("2025-01-02T03:04:05 ");
  reject(" 2025-01-02");
  reject("2025-01-02T03:04:05Z+01:00");
  reject("２０２５-01-02");
  /* Length-bounded: the bytes after `n` are not read. */
  ck__datetime dt;
  assert_int_equal(ck__datetime_parse("2025-01-02T03:04:05Zjunk", 20, &dt), 0);
  assert_int_equal(ck__datetime_parse("2025-01-02T03:04:05", 18, &dt), -1);
}

static void test_instant_and_naive(void **state) {
  ck__datetime a, b;
  assert_int_equal(ck__datetime_parse("2025-01-02T03:04:05-05:00", 25, &a), 0);
  assert_int_equal(ck__datetime_parse("2025-01-02T08:04:05Z", 20, &b), 0);
  assert_true(ck__datetime_instant_us(&a) == ck__datetime_instant_us(&b));
  assert_true(a.local_us != b.local_us);
  assert_int_equal(a.offset_min, -300);

  assert_int_equal(ck__datetime_parse("2025-01-01T00:00:00", 19, &a), 0);
  assert_true(a.local_us == INT64_C(1735689600) * 1000000);
  assert_false(a.has_offset);
  assert_true(ck__datetime_instant_us(&a) == a.local_us);

  char out[CK_DATETIME_MAX];
  ck__datetime n = ck__datetime_naive(INT64_C(1735689600) * 1000000 + 1000000 + 1);
  ck__datetime_format(&n, out);
  assert_string_equal(out, "2025-01-01T00:00:01.000001");
  n = ck__datetime_naive(-1);
  ck__datetime_format(&n, out);
  assert_string_equal(out, "1969-12-31T23:59:59.999999");
}

static void test_from_unix(void **state) {
  ck__datetime dt;
  char out[CK_DATETIME_MAX];
  assert_int_equal(ck__datetime_from_unix(1735689600.0, &dt), 0);
  ck__datetime_format(&dt, out);
  assert_string_equal(out, "2025-01-01T00:00:00Z");
  assert_int_equal(ck__datetime_from_unix(1735689600.5, &dt), 0);
  ck__datetime_format(&dt, out);
  assert_string_equal(out, "2025-01-01T00:00:00.500000Z");
  assert_int_equal(ck__datetime_from_unix(-0.25, &dt), 0);
  ck__datetime_format(&dt, out);
  assert_string_equal(out, "1969-12-31T23:59:59.750000Z");
  /* Beyond 2e10 the number is milliseconds. */
  assert_int_equal(ck__datetime_from_unix(1735689600123.0, &dt), 0);
  ck__datetime_format(&dt, out);
  assert_string_equal(out, "2025-01-01T00:00:00.123000Z");
  assert_int_equal(ck__datetime_from_unix(0.0 / 0.0, &dt), -1);
  assert_int_equal(ck__datetime_from_unix(1e300, &dt), -1);
  assert_int_equal(ck__datetime_from_unix(-62135596801.0 * 1000, &dt), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forms),
      cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_instant_and_naive),
      cmocka_unit_test(test_from_unix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
