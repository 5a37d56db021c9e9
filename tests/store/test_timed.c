/* The metrics wrapper around a store (ck_store_metrics_wrap) must be invisible: it passes the
 * whole shared suite, stream leases included, on top of the memory store, and it times the
 * calls it forwards. */
#include <chatkit/error.h>
#include <chatkit/metrics.h>
#include <chatkit/store.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/store_suite.h"

static ck_metrics *metrics;

static ck_store *open_timed(void *ud) {
  (void)ud;
  return ck_store_metrics_wrap(ck_store_memory_new(), metrics);
}

int main(void) {
  metrics = ck_metrics_new();
  int failed = ck_test_store_suite("timed memory", open_timed, NULL, NULL);
  /* The suite's calls were timed: the exposition has store_duration samples. */
  ck_buf out;
  ck_buf_init(&out, 0);
  ck_metrics_render(metrics, &out);
  if (out.data == NULL ||
      strstr(out.data, "chatkit_store_duration_seconds_count{op=\"load_thread\"}") == NULL)
    failed++;
  ck_buf_free(&out);
  ck_metrics_free(metrics);
  return failed;
}
