/* libFuzzer harness for the JSON parser and writer.
 *
 * Every input is parsed; when it parses, the canonical text must parse again and write the
 * same bytes (the writer's output is a fixed point), and the two trees must be equal unless
 * a float overflowed to infinity (written as null). */
#include <chatkit/error.h>
#include <chatkit/json.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when the tree holds a float that overflowed to infinity: it is written as null, so
 * that tree is not equal to its re-parsed output. */
static int has_inf(const ck_json *v) {
  if (ck_json_is_float(v))
    return isinf(ck_json_number_value(v));
  for (size_t i = 0; i < ck_json_array_size(v); i++) {
    if (has_inf(ck_json_array_get(v, i)))
      return 1;
  }
  for (size_t i = 0; i < ck_json_object_size(v); i++) {
    if (has_inf(ck_json_object_value(v, i)))
      return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ck_arena *a = ck_arena_new(0);
  ck_buf first, second;
  ck_buf_init(&first, 0);
  ck_buf_init(&second, 0);
  if (a == NULL)
    goto done;
  ck_json *v = NULL, *w = NULL;
  ck_json_error err;
  int rc = ck_json_parse(a, (const char *)data, size, 0, &v, &err);
  if (rc != CK_OK) {
    /* A rejection must point inside the input and say why. */
    if (rc != CK_EINVAL || err.offset > size || err.message[0] == '\0')
      abort();
    goto done;
  }
  if (ck_json_write(&first, v) != CK_OK)
    abort();
  /* Depth cannot grow through a round trip, so the same cap must accept the output. */
  if (ck_json_parse(a, first.data, first.len, 0, &w, &err) != CK_OK) {
    fprintf(stderr, "re-parse failed: %s at %zu\n", err.message, err.offset);
    abort();
  }
  if (ck_json_write(&second, w) != CK_OK)
    abort();
  if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0) {
    fprintf(stderr, "unstable:\n%s\n%s\n", first.data, second.data);
    abort();
  }
  if (!has_inf(v) && !ck_json_equal(v, w))
    abort();
  if (!ck_json_equal(w, v) && !has_inf(v))
    abort();
  /* A deep copy writes the same bytes too. */
  ck_json *c = ck_json_copy(a, v);
  char *third = ck_json_dumps(a, c, NULL);
  if (third == NULL || strcmp(third, first.data) != 0)
    abort();
done:
  ck_buf_free(&first);
  ck_buf_free(&second);
  ck_arena_free(a);
  return 0;
}
