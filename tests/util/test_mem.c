/* Tests for src/util/mem.c: arenas and capped buffers. */
#include <chatkit/error.h>
#include <chatkit/mem.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_arena_alignment_and_growth(void **state) {
  ck_arena *a = ck_arena_new(64);
  assert_non_null(a);
  size_t before = ck_arena_footprint(a);
  for (int i = 0; i < 1000; i++) {
    void *p = ck_arena_alloc(a, (size_t)(i % 37) + 1);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    memset(p, 0xab, (size_t)(i % 37) + 1);
  }
  assert_true(ck_arena_footprint(a) > before);
  /* A huge allocation still works and is usable. */
  char *big = ck_arena_alloc(a, 3u << 20);
  assert_non_null(big);
  big[(3u << 20) - 1] = 1;
  ck_arena_reset(a);
  assert_int_equal(ck_arena_footprint(a), before);
  ck_arena_free(a);
  ck_arena_free(NULL);
}

static void test_arena_strings(void **state) {
  ck_arena *a = ck_arena_new(0);
  assert_string_equal(ck_arena_strdup(a, "hello"), "hello");
  assert_null(ck_arena_strdup(a, NULL));
  char *n = ck_arena_strndup(a, "a\0b", 3);
  assert_int_equal(n[1], '\0');
  assert_int_equal(n[2], 'b');
  assert_int_equal(n[3], '\0');
  assert_string_equal(ck_arena_printf(a, "%d-%s", 42, "x"), "42-x");
  char *z = ck_arena_calloc(a, 64);
  for (int i = 0; i < 64; i++)
    assert_int_equal(z[i], 0);
  ck_arena_free(a);
}

static void test_buf_cap_leaves_buffer_unchanged(void **state) {
  ck_buf b;
  ck_buf_init(&b, 8);
  assert_int_equal(ck_buf_puts(&b, "12345"), CK_OK);
  assert_int_equal(ck_buf_puts(&b, "6789"), CK_ETOOBIG);
  assert_int_equal(b.len, 5);
  assert_string_equal(b.data, "12345");
  assert_int_equal(ck_buf_printf(&b, "%s", "abcd"), CK_ETOOBIG);
  assert_int_equal(b.len, 5);
  assert_int_equal(ck_buf_printf(&b, "%d", 678), CK_OK);
  assert_string_equal(b.data, "12345678");
  ck_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_int_equal(ck_buf_putc(&b, 'x'), CK_OK);
  size_t len = 0;
  char *taken = ck_buf_take(&b, &len);
  assert_string_equal(taken, "x");
  assert_int_equal(len, 1);
  assert_null(b.data);
  free(taken);
  /* Taking an empty buffer gives an empty heap string, not NULL. */
  taken = ck_buf_take(&b, &len);
  assert_non_null(taken);
  assert_int_equal(len, 0);
  free(taken);
  ck_buf_free(&b);
  ck_buf_free(NULL);
}

static void test_buf_grows(void **state) {
  ck_buf b;
  ck_buf_init(&b, 0);
  for (int i = 0; i < 10000; i++)
    assert_int_equal(ck_buf_append(&b, "abc", 3), CK_OK);
  assert_int_equal(b.len, 30000);
  assert_int_equal(b.data[b.len], '\0');
  assert_memory_equal(b.data + 29997, "abc", 3);
  ck_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arena_alignment_and_growth),
      cmocka_unit_test(test_arena_strings),
      cmocka_unit_test(test_buf_cap_leaves_buffer_unchanged),
      cmocka_unit_test(test_buf_grows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
