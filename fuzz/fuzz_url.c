/* libFuzzer harness for URL normalisation and datetime parsing (internal protocol helpers).
 *
 * Properties: normalising is idempotent (a normalised URL normalises to itself), and a
 * parsed datetime's canonical text parses back to the same value. */
#include "protocol/datetime.h"
#include "protocol/url.h"

#include <chatkit/mem.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ck_arena *a = ck_arena_new(0);
  if (a == NULL)
    return 0;
  char *once = NULL, *twice = NULL;
  if (ck__url_normalize(a, (const char *)data, size, &once) == 0) {
    if (ck__url_normalize(a, once, strlen(once), &twice) != 0 || strcmp(once, twice) != 0) {
      fprintf(stderr, "not idempotent: %s -> %s\n", once, twice ? twice : "(rejected)");
      abort();
    }
  }
  ck__datetime dt, back;
  if (ck__datetime_parse((const char *)data, size, &dt) == 0) {
    char text[CK_DATETIME_MAX];
    size_t n = ck__datetime_format(&dt, text);
    if (n >= CK_DATETIME_MAX || ck__datetime_parse(text, n, &back) != 0 ||
        back.local_us != dt.local_us || back.has_offset != dt.has_offset ||
        back.offset_min != dt.offset_min)
      abort();
  }
  ck_arena_free(a);
  return 0;
}
