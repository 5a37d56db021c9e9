/* libFuzzer harness for the SSE parser: the input is parsed once whole and once split at
 * fuzzer-chosen points; both runs must give exactly the same events and the same result,
 * because framing must never depend on how TCP cut the bytes. A small cap makes the overflow
 * path reachable. */
#include "upstream/sse.h"

#include <chatkit/error.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 512

static int record(void *ud, const char *ev, size_t evlen, const char *d, size_t dlen) {
  ck_buf *b = ud;
  /* Length-prefixed, so "a|b" + "c" cannot collide with "a" + "b|c". */
  ck_buf_append(b, &evlen, sizeof(evlen));
  ck_buf_append(b, ev, evlen);
  ck_buf_append(b, &dlen, sizeof(dlen));
  ck_buf_append(b, d, dlen);
  if (dlen > CAP || evlen > CAP)
    abort(); /* the cap must hold */
  return 0;
}

static int parse(const uint8_t *in, size_t n, const uint8_t *cuts, size_t ncuts, ck_buf *out) {
  ck__sse p;
  ck__sse_init(&p, CAP, record, out);
  int rc = CK_OK;
  size_t off = 0, k = 0;
  while (off < n && rc == CK_OK) {
    size_t step = ncuts ? (size_t)cuts[k++ % ncuts] % 17 : n - off;
    if (step == 0)
      step = 1;
    if (step > n - off)
      step = n - off;
    rc = ck__sse_feed(&p, (const char *)in + off, step);
    off += step;
  }
  if (rc == CK_OK)
    rc = ck__sse_finish(&p);
  ck__sse_free(&p);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  /* The first byte says how many of the following bytes are split sizes. */
  size_t ncuts = data[0] % 16;
  if (ncuts > size - 1)
    ncuts = size - 1;
  const uint8_t *cuts = data + 1;
  const uint8_t *in = data + 1 + ncuts;
  size_t n = size - 1 - ncuts;
  ck_buf whole, split;
  ck_buf_init(&whole, 0);
  ck_buf_init(&split, 0);
  int rc1 = parse(in, n, NULL, 0, &whole);
  int rc2 = parse(in, n, cuts, ncuts, &split);
  /* An overflow may be detected at a different event depending on the cuts, but whether the
   * input overflows at all, and every event before it, must agree. */
  if (rc1 != rc2)
    abort();
  if (rc1 == CK_OK &&
      (whole.len != split.len || (whole.len && memcmp(whole.data, split.data, whole.len))))
    abort();
  ck_buf_free(&whole);
  ck_buf_free(&split);
  return 0;
}
