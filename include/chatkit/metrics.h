/* chatkit/metrics.h - a small thread-safe metrics registry with Prometheus text exposition.
 *
 * A registry holds metric families (counters, gauges and fixed-bucket histograms). Each family
 * has a fixed list of label names, given when it is registered, and at most a fixed number of
 * series (label value combinations): once that many exist, further combinations are folded
 * into one series whose label values are all "other", so memory stays bounded whatever the
 * label values are. Updates are lock-free atomic operations on a series that already exists;
 * only the first update of a new combination takes the family's lock.
 *
 * ck_metrics_new registers the server's own families (chatkit_requests_total and the others
 * listed in docs/operations.md); ck_metrics_render adds the process metrics
 * (process_resident_memory_bytes, process_cpu_seconds_total, process_start_time_seconds).
 * Integrators may register their own families next to them.
 *
 * Threads: every function may be called from any thread. Every update function accepts a NULL
 * registry or family and does nothing, so instrumented code needs no checks of its own.
 */
#ifndef CHATKIT_METRICS_H
#define CHATKIT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <chatkit/mem.h>
#include <chatkit/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_metrics ck_metrics;
typedef struct ck_metric ck_metric;

/* Caps that keep a registry's memory bounded. */
#define CK_METRICS_MAX_LABELS 4       /* label names per family */
#define CK_METRICS_MAX_SERIES 256     /* series per family, the "other" series included */
#define CK_METRICS_MAX_BUCKETS 24     /* histogram bucket bounds (+Inf is implicit) */
#define CK_METRICS_MAX_LABEL_VALUE 64 /* longer label values are truncated */
#define CK_METRICS_MAX_FAMILIES 64    /* families per registry */

typedef enum ck_metric_kind {
  CK_METRIC_COUNTER = 0,
  CK_METRIC_GAUGE = 1,
  CK_METRIC_HISTOGRAM = 2,
} ck_metric_kind;

/** Creates a registry with the server's families registered. Returns NULL when out of
 * memory. */
ck_metrics *ck_metrics_new(void);

/** Frees a registry and its families. NULL is a no-op. Nothing may update it afterwards. */
void ck_metrics_free(ck_metrics *m);

/** Registers a family. `name` must match [a-zA-Z_:][a-zA-Z0-9_:]* and be new in the registry;
 * `help` is free text (escaped on output); `labels` is a NULL-terminated list of at most
 * CK_METRICS_MAX_LABELS label names (NULL: no labels). For histograms, `bounds` holds
 * `nbounds` (1 to CK_METRICS_MAX_BUCKETS) strictly increasing finite upper bounds; other kinds
 * ignore them. Returns the family (owned by the registry), or NULL for an invalid argument, a
 * duplicate name, a full registry or no memory. */
ck_metric *ck_metrics_register(ck_metrics *m, ck_metric_kind kind, const char *name,
                               const char *help, const char *const *labels, const double *bounds,
                               size_t nbounds);

/** The family called `name`, or NULL. */
ck_metric *ck_metrics_find(ck_metrics *m, const char *name);

/** Adds `v` to a counter (negative values are ignored: counters only go up) or to a gauge
 * (which may go down). `values` holds one label value per label name, in order (NULL when the
 * family has no labels; a NULL entry is ""). No-op for a NULL family or a histogram. */
void ck_metric_add(ck_metric *f, const char *const *values, double v);

/** Sets a gauge to `v`. No-op for a NULL family or another kind. */
void ck_metric_set(ck_metric *f, const char *const *values, double v);

/** Records one observation `v` in a histogram. No-op for a NULL family or another kind. */
void ck_metric_observe(ck_metric *f, const char *const *values, double v);

/** The current value of a counter or gauge series, or the observation count of a histogram
 * series; 0 when the series does not exist (for tests and health checks). */
double ck_metric_value(ck_metric *f, const char *const *values);

/** Appends the Prometheus text exposition (format 0.0.4) of every family, then the process
 * metrics, to `out`. Families appear in registration order, each with its # HELP and # TYPE
 * lines, even before their first update. Returns CK_OK or CK_ENOMEM (the buffer's cap). */
int ck_metrics_render(ck_metrics *m, ck_buf *out);

/** The content type of the exposition. */
#define CK_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- The server's metrics -------------------------------------------------------------- */

/** Counts one model call that ended: `outcome` is "ok", "error" or "cancelled"; for an error,
 * `error_kind` (a ck_model_error_name, e.g. "timeout") also counts in
 * chatkit_model_errors_total. NULL registry: no-op. */
void ck_metrics_model_call(ck_metrics *m, const char *outcome, const char *error_kind);

/** Adds the token usage a model reported to chatkit_model_tokens_total. */
void ck_metrics_model_tokens(ck_metrics *m, int64_t input, int64_t output);

/** Counts one tool call that ended: `outcome` is "ok", "error", "invalid_arguments" or
 * "client" (handed to the browser). */
void ck_metrics_tool_call(ck_metrics *m, const char *outcome);

/** Wraps `inner` in a store that times every call into chatkit_store_duration_seconds{op}
 * (op is the vtable entry's name: "load_thread", "save_item", ...). The wrapper owns `inner`:
 * freeing it frees `inner`. It keeps inner's name and nonblocking flag. `m` is borrowed and
 * must outlive the wrapper. Returns NULL when out of memory (inner is then left alone);
 * returns `inner` itself when `m` is NULL. */
ck_store *ck_store_metrics_wrap(ck_store *inner, ck_metrics *m);

#ifdef __cplusplus
}
#endif
#endif
