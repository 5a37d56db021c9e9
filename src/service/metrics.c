/* The metrics registry and its Prometheus text exposition (see chatkit/metrics.h), the server's
 * own families, and the timing decorator for stores. */
#include <chatkit/error.h>
#include <chatkit/metrics.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* One label value combination. Values are doubles kept as their bit patterns in 64-bit
 * atomics, so updates from many threads need no lock. */
typedef struct series {
  char values[CK_METRICS_MAX_LABELS][CK_METRICS_MAX_LABEL_VALUE + 1];
  _Atomic uint64_t value; /* counter or gauge value; histogram sum */
  /* Histogram: per-bucket counts, not cumulative; the last is the +Inf bucket. */
  _Atomic uint64_t buckets[CK_METRICS_MAX_BUCKETS + 1];
} series;

struct ck_metric {
  ck_metric_kind kind;
  char *name, *help;
  char *labels[CK_METRICS_MAX_LABELS];
  size_t nlabels;
  double bounds[CK_METRICS_MAX_BUCKETS];
  size_t nbounds;
  pthread_mutex_t mu; /* serialises the creation of series */
  /* Series [0, nseries) are complete: readers load nseries with acquire order and scan them
   * without the lock. The last slot is kept for the "other" overflow series. */
  series *slots[CK_METRICS_MAX_SERIES];
  _Atomic size_t nseries;
  _Atomic(series *) other;
};

struct ck_metrics {
  pthread_mutex_t mu; /* serialises registration */
  ck_metric *families[CK_METRICS_MAX_FAMILIES];
  _Atomic size_t nfamilies;
  double start_time; /* seconds since the epoch when the registry was created */
  /* The server's families, looked up once. */
  ck_metric *model_calls, *model_tokens, *model_errors, *tool_calls, *store_duration;
};

/* ---- Atomic doubles ---- */

static double bits_to_double(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}

static uint64_t double_to_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof(u));
  return u;
}

static void atomic_add_double(_Atomic uint64_t *p, double v) {
  uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
  uint64_t next;
  do {
    next = double_to_bits(bits_to_double(old) + v);
  } while (!atomic_compare_exchange_weak_explicit(p, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed));
}

/* ---- Families ---- */

static bool valid_name(const char *s, bool colon_ok) {
  if (s == NULL || *s == '\0')
    return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
    if (!alpha && !(p > s && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

static void family_free(ck_metric *f) {
  if (f == NULL)
    return;
  size_t n = atomic_load(&f->nseries);
  for (size_t i = 0; i < n; i++)
    free(f->slots[i]);
  free(atomic_load(&f->other));
  for (size_t i = 0; i < f->nlabels; i++)
    free(f->labels[i]);
  free(f->name);
  free(f->help);
  pthread_mutex_destroy(&f->mu);
  free(f);
}

static struct series *series_get(ck_metric *f, const char *const *values);

ck_metric *ck_metrics_find(ck_metrics *m, const char *name) {
  if (m == NULL || name == NULL)
    return NULL;
  size_t n = atomic_load_explicit(&m->nfamilies, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    if (strcmp(m->families[i]->name, name) == 0)
      return m->families[i];
  return NULL;
}

ck_metric *ck_metrics_register(ck_metrics *m, ck_metric_kind kind, const char *name,
                               const char *help, const char *const *labels, const double *bounds,
                               size_t nbounds) {
  if (m == NULL || !valid_name(name, true) || kind < CK_METRIC_COUNTER ||
      kind > CK_METRIC_HISTOGRAM)
    return NULL;
  size_t nlabels = 0;
  for (; labels != NULL && labels[nlabels] != NULL; nlabels++) {
    /* "le" is reserved for histogram buckets and "__" prefixes for Prometheus itself. */
    if (nlabels == CK_METRICS_MAX_LABELS || !valid_name(labels[nlabels], false) ||
        strcmp(labels[nlabels], "le") == 0 || strncmp(labels[nlabels], "__", 2) == 0)
      return NULL;
  }
  if (kind == CK_METRIC_HISTOGRAM) {
    if (bounds == NULL || nbounds == 0 || nbounds > CK_METRICS_MAX_BUCKETS)
      return NULL;
    for (size_t i = 0; i < nbounds; i++)
      if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
        return NULL;
  }
  ck_metric *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return NULL;
  f->kind = kind;
  f->name = strdup(name);
  f->help = strdup(help ? help : "");
  pthread_mutex_init(&f->mu, NULL);
  atomic_init(&f->nseries, 0);
  atomic_init(&f->other, NULL);
  bool ok = f->name != NULL && f->help != NULL;
  for (size_t i = 0; ok && i < nlabels; i++) {
    f->labels[i] = strdup(labels[i]);
    f->nlabels = i + 1;
    ok = f->labels[i] != NULL;
  }
  if (kind == CK_METRIC_HISTOGRAM) {
    memcpy(f->bounds, bounds, nbounds * sizeof(bounds[0]));
    f->nbounds = nbounds;
  }
  pthread_mutex_lock(&m->mu);
  size_t n = atomic_load(&m->nfamilies);
  if (ok && n < CK_METRICS_MAX_FAMILIES && ck_metrics_find(m, name) == NULL) {
    m->families[n] = f;
    atomic_store_explicit(&m->nfamilies, n + 1, memory_order_release);
  } else {
    ok = false;
  }
  pthread_mutex_unlock(&m->mu);
  if (!ok) {
    family_free(f);
    return NULL;
  }
  /* A family without labels has exactly one series: it exists from the start, so it is
   * exposed as 0 before its first update rather than missing. */
  if (nlabels == 0)
    series_get(f, NULL);
  return f;
}

/* The length a label value is stored with: at most the cap, cut on a UTF-8 character
 * boundary. */
static size_t stored_len(const char *v) {
  size_t n = strlen(v);
  if (n > CK_METRICS_MAX_LABEL_VALUE) {
    n = CK_METRICS_MAX_LABEL_VALUE;
    while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
      n--;
  }
  return n;
}

static void copy_value(char *dst, const char *src) {
  size_t n = stored_len(src);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* A value longer than the cap matches the series holding its truncation. */
static bool series_matches(const ck_metric *f, const series *s, const char *const *values) {
  for (size_t i = 0; i < f->nlabels; i++) {
    const char *v = values && values[i] ? values[i] : "";
    size_t n = stored_len(v);
    if (memcmp(s->values[i], v, n) != 0 || s->values[i][n] != '\0')
      return false;
  }
  return true;
}

static series *scan(ck_metric *f, const char *const *values, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (series_matches(f, f->slots[i], values))
      return f->slots[i];
  return NULL;
}

/* The series for `values`, created on first use; NULL only when out of memory. */
static series *series_get(ck_metric *f, const char *const *values) {
  size_t n = atomic_load_explicit(&f->nseries, memory_order_acquire);
  series *s = scan(f, values, n);
  if (s != NULL)
    return s;
  pthread_mutex_lock(&f->mu);
  size_t n2 = atomic_load_explicit(&f->nseries, memory_order_acquire);
  s = scan(f, values, n2);
  if (s == NULL && n2 < CK_METRICS_MAX_SERIES - 1) {
    s = calloc(1, sizeof(*s));
    if (s != NULL) {
      for (size_t i = 0; i < f->nlabels; i++)
        copy_value(s->values[i], values && values[i] ? values[i] : "");
      f->slots[n2] = s;
      atomic_store_explicit(&f->nseries, n2 + 1, memory_order_release);
    }
  } else if (s == NULL) {
    /* Too many combinations: they all share the "other" series. */
    s = atomic_load(&f->other);
    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
      for (size_t i = 0; i < f->nlabels; i++)
        copy_value(s->values[i], "other");
      atomic_store(&f->other, s);
    }
  }
  pthread_mutex_unlock(&f->mu);
  return s;
}

void ck_metric_add(ck_metric *f, const char *const *values, double v) {
  if (f == NULL || f->kind == CK_METRIC_HISTOGRAM || (f->kind == CK_METRIC_COUNTER && !(v >= 0)))
    return;
  series *s = series_get(f, values);
  if (s != NULL)
    atomic_add_double(&s->value, v);
}

void ck_metric_set(ck_metric *f, const char *const *values, double v) {
  if (f == NULL || f->kind != CK_METRIC_GAUGE)
    return;
  series *s = series_get(f, values);
  if (s != NULL)
    atomic_store_explicit(&s->value, double_to_bits(v), memory_order_relaxed);
}

void ck_metric_observe(ck_metric *f, const char *const *values, double v) {
  if (f == NULL || f->kind != CK_METRIC_HISTOGRAM || isnan(v))
    return;
  series *s = series_get(f, values);
  if (s == NULL)
    return;
  size_t i = 0;
  while (i < f->nbounds && v > f->bounds[i])
    i++;
  atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
  atomic_add_double(&s->value, v);
}

double ck_metric_value(ck_metric *f, const char *const *values) {
  if (f == NULL)
    return 0;
  series *s = scan(f, values, atomic_load_explicit(&f->nseries, memory_order_acquire));
  series *other = atomic_load(&f->other);
  if (s == NULL && other != NULL && series_matches(f, other, values))
    s = other;
  if (s == NULL)
    return 0;
  if (f->kind != CK_METRIC_HISTOGRAM)
    return bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed));
  uint64_t total = 0;
  for (size_t i = 0; i <= f->nbounds; i++)
    total += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
  return (double)total;
}

/* ---- Exposition ---- */

/* A sample value: integers without a fraction, others with the shortest form that reads
 * back exactly. */
static int put_number(ck_buf *b, double v) {
  if (isnan(v))
    return ck_buf_puts(b, "NaN");
  if (isinf(v))
    return ck_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
  if (v == floor(v) && fabs(v) < 1e15)
    return ck_buf_printf(b, "%.0f", v);
  char tmp[40];
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(tmp, sizeof(tmp), "%.*g", digits, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  return ck_buf_puts(b, tmp);
}

/* HELP text escapes backslash and newline; label values also escape the double quote. */
static int put_escaped(ck_buf *b, const char *s, bool quote) {
  int rc = CK_OK;
  for (const char *p = s; *p && rc == CK_OK; p++) {
    if (*p == '\\')
      rc = ck_buf_puts(b, "\\\\");
    else if (*p == '\n')
      rc = ck_buf_puts(b, "\\n");
    else if (quote && *p == '"')
      rc = ck_buf_puts(b, "\\\"");
    else
      rc = ck_buf_putc(b, *p);
  }
  return rc;
}

/* `name<suffix>{l1="v1",...,le="<le>"}`; `suffix` and `le` may be NULL. */
static int put_series_name(ck_buf *b, const ck_metric *f, const series *s, const char *suffix,
                           const char *le) {
  int rc = ck_buf_puts(b, f->name);
  if (rc == CK_OK && suffix)
    rc = ck_buf_puts(b, suffix);
  if (f->nlabels == 0 && le == NULL)
    return rc;
  if (rc == CK_OK)
    rc = ck_buf_putc(b, '{');
  for (size_t i = 0; rc == CK_OK && i < f->nlabels; i++) {
    rc = ck_buf_printf(b, "%s%s=\"", i > 0 ? "," : "", f->labels[i]);
    if (rc == CK_OK)
      rc = put_escaped(b, s->values[i], true);
    if (rc == CK_OK)
      rc = ck_buf_putc(b, '"');
  }
  if (rc == CK_OK && le != NULL)
    rc = ck_buf_printf(b, "%sle=\"%s\"", f->nlabels > 0 ? "," : "", le);
  if (rc == CK_OK)
    rc = ck_buf_putc(b, '}');
  return rc;
}

static int render_series(ck_buf *b, const ck_metric *f, const series *s) {
  int rc = CK_OK;
  double value = bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed));
  if (f->kind != CK_METRIC_HISTOGRAM) {
    rc = put_series_name(b, f, s, NULL, NULL);
    if (rc == CK_OK)
      rc = ck_buf_putc(b, ' ');
    if (rc == CK_OK)
      rc = put_number(b, value);
    return rc == CK_OK ? ck_buf_putc(b, '\n') : rc;
  }
  uint64_t cumulative = 0;
  for (size_t i = 0; rc == CK_OK && i <= f->nbounds; i++) {
    cumulative += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    char le[40];
    if (i == f->nbounds) {
      snprintf(le, sizeof(le), "+Inf");
    } else {
      ck_buf tmp;
      ck_buf_init(&tmp, sizeof(le) - 1);
      put_number(&tmp, f->bounds[i]);
      snprintf(le, sizeof(le), "%s", tmp.data ? tmp.data : "0");
      ck_buf_free(&tmp);
    }
    rc = put_series_name(b, f, s, "_bucket", le);
    if (rc == CK_OK)
      rc = ck_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
  }
  if (rc == CK_OK)
    rc = put_series_name(b, f, s, "_sum", NULL);
  if (rc == CK_OK)
    rc = ck_buf_putc(b, ' ');
  if (rc == CK_OK)
    rc = put_number(b, value);
  if (rc == CK_OK)
    rc = ck_buf_putc(b, '\n');
  if (rc == CK_OK)
    rc = put_series_name(b, f, s, "_count", NULL);
  if (rc == CK_OK)
    rc = ck_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
  return rc;
}

static const char *kind_name(ck_metric_kind k) {
  return k == CK_METRIC_COUNTER ? "counter" : k == CK_METRIC_GAUGE ? "gauge" : "histogram";
}

static int render_header(ck_buf *b, const char *name, const char *help, const char *type) {
  int rc = ck_buf_printf(b, "# HELP %s ", name);
  if (rc == CK_OK)
    rc = put_escaped(b, help, false);
  if (rc == CK_OK)
    rc = ck_buf_printf(b, "\n# TYPE %s %s\n", name, type);
  return rc;
}

/* Resident set size from /proc/self/statm (its second field, in pages); 0 when unreadable. */
static double resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return 0;
  char line[128];
  double out = 0;
  if (fgets(line, sizeof(line), f) != NULL) {
    char *end = NULL;
    strtoull(line, &end, 10);
    unsigned long long pages = strtoull(end, NULL, 10);
    long page = sysconf(_SC_PAGESIZE);
    out = (double)pages * (double)(page > 0 ? page : 4096);
  }
  fclose(f);
  return out;
}

static int render_one(ck_buf *b, const char *name, const char *help, const char *type, double v) {
  int rc = render_header(b, name, help, type);
  if (rc == CK_OK)
    rc = ck_buf_printf(b, "%s ", name);
  if (rc == CK_OK)
    rc = put_number(b, v);
  return rc == CK_OK ? ck_buf_putc(b, '\n') : rc;
}

/* The standard process metrics, read when scraped. The start time is the registry's creation,
 * which a server does at startup. */
static int render_process(ck_metrics *m, ck_buf *b) {
  struct rusage ru;
  double cpu = 0;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  int rc = render_one(b, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
                      resident_bytes());
  if (rc == CK_OK)
    rc = render_one(b, "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.", "counter", cpu);
  if (rc == CK_OK)
    rc = render_one(b, "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.", "gauge",
                    m->start_time);
  return rc;
}

int ck_metrics_render(ck_metrics *m, ck_buf *out) {
  if (m == NULL || out == NULL)
    return CK_EINVAL;
  int rc = CK_OK;
  size_t nf = atomic_load_explicit(&m->nfamilies, memory_order_acquire);
  for (size_t i = 0; rc == CK_OK && i < nf; i++) {
    ck_metric *f = m->families[i];
    rc = render_header(out, f->name, f->help, kind_name(f->kind));
    size_t n = atomic_load_explicit(&f->nseries, memory_order_acquire);
    for (size_t k = 0; rc == CK_OK && k < n; k++)
      rc = render_series(out, f, f->slots[k]);
    series *other = atomic_load(&f->other);
    if (rc == CK_OK && other != NULL)
      rc = render_series(out, f, other);
  }
  if (rc == CK_OK)
    rc = render_process(m, out);
  /* The buffer's own errors are CK_ENOMEM or CK_ETOOBIG; both mean "no room". */
  return rc == CK_OK ? CK_OK : CK_ENOMEM;
}

/* ---- The registry and the server's families ---- */

/* Request and stream durations: from a fast JSON answer to a half-hour stream. */
static const double request_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                        5,     10,   30,    60,   120, 300,  600, 1800};
/* Store calls: from an in-memory lookup to a slow database round trip. */
static const double store_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                      0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

#define LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NBOUNDS(a) (sizeof(a) / sizeof((a)[0]))

static int register_server_families(ck_metrics *m) {
  bool ok =
      ck_metrics_register(m, CK_METRIC_COUNTER, "chatkit_requests_total",
                          "ChatKit requests answered, by request type and HTTP status.",
                          LABELS("type", "status"), NULL, 0) &&
      ck_metrics_register(m, CK_METRIC_HISTOGRAM, "chatkit_request_duration_seconds",
                          "Time from a request's arrival to its response (JSON) or to the end "
                          "of its stream.",
                          LABELS("type"), request_bounds, NBOUNDS(request_bounds)) &&
      ck_metrics_register(m, CK_METRIC_GAUGE, "chatkit_open_streams",
                          "Streams admitted and not yet finished.", NULL, NULL, 0) &&
      ck_metrics_register(m, CK_METRIC_GAUGE, "chatkit_http_connections", "Open HTTP connections.",
                          NULL, NULL, 0) &&
      ck_metrics_register(m, CK_METRIC_COUNTER, "chatkit_stream_events_total",
                          "Server-sent events written to clients.", NULL, NULL, 0) &&
      ck_metrics_register(m, CK_METRIC_COUNTER, "chatkit_model_calls_total",
                          "Model calls that ended, by outcome (ok, error, cancelled).",
                          LABELS("outcome"), NULL, 0) &&
      ck_metrics_register(m, CK_METRIC_COUNTER, "chatkit_model_tokens_total",
                          "Tokens the model reported, by kind (input, output).", LABELS("kind"),
                          NULL, 0) &&
      ck_metrics_register(m, CK_METRIC_COUNTER, "chatkit_model_errors_total",
                          "Failed model calls, by error kind.", LABELS("kind"), NULL, 0) &&
      ck_metrics_register(m, CK_METRIC_COUNTER, "chatkit_tool_calls_total",
                          "Tool calls that ended, by outcome.", LABELS("outcome"), NULL, 0) &&
      ck_metrics_register(m, CK_METRIC_HISTOGRAM, "chatkit_store_duration_seconds",
                          "Duration of store calls, by operation.", LABELS("op"), store_bounds,
                          NBOUNDS(store_bounds)) &&
      ck_metrics_register(m, CK_METRIC_COUNTER, "chatkit_rate_limited_total",
                          "Requests refused or streams cut by a limit, by reason.",
                          LABELS("reason"), NULL, 0);
  if (!ok)
    return CK_ENOMEM;
  m->model_calls = ck_metrics_find(m, "chatkit_model_calls_total");
  m->model_tokens = ck_metrics_find(m, "chatkit_model_tokens_total");
  m->model_errors = ck_metrics_find(m, "chatkit_model_errors_total");
  m->tool_calls = ck_metrics_find(m, "chatkit_tool_calls_total");
  m->store_duration = ck_metrics_find(m, "chatkit_store_duration_seconds");
  return CK_OK;
}

ck_metrics *ck_metrics_new(void) {
  ck_metrics *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return NULL;
  pthread_mutex_init(&m->mu, NULL);
  atomic_init(&m->nfamilies, 0);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  m->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  if (register_server_families(m) != CK_OK) {
    ck_metrics_free(m);
    return NULL;
  }
  return m;
}

void ck_metrics_free(ck_metrics *m) {
  if (m == NULL)
    return;
  size_t n = atomic_load(&m->nfamilies);
  for (size_t i = 0; i < n; i++)
    family_free(m->families[i]);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

void ck_metrics_model_call(ck_metrics *m, const char *outcome, const char *error_kind) {
  if (m == NULL)
    return;
  ck_metric_add(m->model_calls, (const char *const[]){outcome}, 1);
  if (error_kind != NULL)
    ck_metric_add(m->model_errors, (const char *const[]){error_kind}, 1);
}

void ck_metrics_model_tokens(ck_metrics *m, int64_t input, int64_t output) {
  if (m == NULL)
    return;
  if (input > 0)
    ck_metric_add(m->model_tokens, (const char *const[]){"input"}, (double)input);
  if (output > 0)
    ck_metric_add(m->model_tokens, (const char *const[]){"output"}, (double)output);
}

void ck_metrics_tool_call(ck_metrics *m, const char *outcome) {
  if (m == NULL)
    return;
  ck_metric_add(m->tool_calls, (const char *const[]){outcome}, 1);
}

/* ---- The timing store ---- */

typedef struct timed_store {
  ck_store base;
  ck_store *inner;
  ck_metric *hist;
  ck_store_vtable vt; /* per instance: optional operations exist only if the inner store's do */
} timed_store;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record(ck_store *s, const char *op, uint64_t t0) {
  timed_store *t = (timed_store *)s;
  ck_metric_observe(t->hist, (const char *const[]){op}, (double)(mono_ns() - t0) / 1e9);
}

#define INNER(s) (((timed_store *)(s))->inner)

static int t_load_thread(ck_store *s, ck_arena *a, const char *id, const ck_ctx *ctx,
                         ck_json **out) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->load_thread(INNER(s), a, id, ctx, out);
  record(s, "load_thread", t0);
  return rc;
}

static int t_save_thread(ck_store *s, const ck_json *thread, const ck_ctx *ctx) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->save_thread(INNER(s), thread, ctx);
  record(s, "save_thread", t0);
  return rc;
}

static int t_delete_thread(ck_store *s, const char *id, const ck_ctx *ctx) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->delete_thread(INNER(s), id, ctx);
  record(s, "delete_thread", t0);
  return rc;
}

static int t_load_threads(ck_store *s, ck_arena *a, int limit, const char *after, ck_order order,
                          const ck_ctx *ctx, ck_page *out) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->load_threads(INNER(s), a, limit, after, order, ctx, out);
  record(s, "load_threads", t0);
  return rc;
}

static int t_load_thread_items(ck_store *s, ck_arena *a, const char *id, const char *after,
                               int limit, ck_order order, const ck_ctx *ctx, ck_page *out) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->load_thread_items(INNER(s), a, id, after, limit, order, ctx, out);
  record(s, "load_thread_items", t0);
  return rc;
}

static int t_add_thread_item(ck_store *s, const char *id, const ck_json *item, const ck_ctx *ctx) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->add_thread_item(INNER(s), id, item, ctx);
  record(s, "add_thread_item", t0);
  return rc;
}

static int t_save_item(ck_store *s, const char *id, const ck_json *item, const ck_ctx *ctx) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->save_item(INNER(s), id, item, ctx);
  record(s, "save_item", t0);
  return rc;
}

static int t_load_item(ck_store *s, ck_arena *a, const char *id, const char *item_id,
                       const ck_ctx *ctx, ck_json **out) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->load_item(INNER(s), a, id, item_id, ctx, out);
  record(s, "load_item", t0);
  return rc;
}

static int t_delete_thread_item(ck_store *s, const char *id, const char *item_id,
                                const ck_ctx *ctx) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->delete_thread_item(INNER(s), id, item_id, ctx);
  record(s, "delete_thread_item", t0);
  return rc;
}

static int t_save_attachment(ck_store *s, const ck_json *att, const ck_ctx *ctx) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->save_attachment(INNER(s), att, ctx);
  record(s, "save_attachment", t0);
  return rc;
}

static int t_load_attachment(ck_store *s, ck_arena *a, const char *id, const ck_ctx *ctx,
                             ck_json **out) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->load_attachment(INNER(s), a, id, ctx, out);
  record(s, "load_attachment", t0);
  return rc;
}

static int t_delete_attachment(ck_store *s, const char *id, const ck_ctx *ctx) {
  uint64_t t0 = mono_ns();
  int rc = INNER(s)->vt->delete_attachment(INNER(s), id, ctx);
  record(s, "delete_attachment", t0);
  return rc;
}

/* Pings are readiness probes, not workload: they pass through untimed, and a backend without
 * a ping stays without one. */
static int t_ping(ck_store *s) {
  ck_store *in = INNER(s);
  return in->vt->ping ? in->vt->ping(in) : CK_OK;
}

/* Stream leases are forwarded untimed: they are one cheap statement each and guard
 * correctness (one response per thread across processes), so the wrapper must not hide them. */
static int t_acquire_stream(ck_store *s, const char *tid, const char *holder, int ttl_ms,
                            const ck_ctx *ctx) {
  return INNER(s)->vt->acquire_stream(INNER(s), tid, holder, ttl_ms, ctx);
}

static int t_release_stream(ck_store *s, const char *tid, const char *holder, const ck_ctx *ctx) {
  return INNER(s)->vt->release_stream(INNER(s), tid, holder, ctx);
}

static int t_renew_stream(ck_store *s, const char *tid, const char *holder, int ttl_ms,
                          const ck_ctx *ctx) {
  return INNER(s)->vt->renew_stream(INNER(s), tid, holder, ttl_ms, ctx);
}

static void t_destroy(ck_store *s) {
  ck_store_free(INNER(s));
  free(s);
}

static const ck_store_vtable timed_vt = {
    .load_thread = t_load_thread,
    .save_thread = t_save_thread,
    .delete_thread = t_delete_thread,
    .load_threads = t_load_threads,
    .load_thread_items = t_load_thread_items,
    .add_thread_item = t_add_thread_item,
    .save_item = t_save_item,
    .load_item = t_load_item,
    .delete_thread_item = t_delete_thread_item,
    .save_attachment = t_save_attachment,
    .load_attachment = t_load_attachment,
    .delete_attachment = t_delete_attachment,
    .ping = t_ping,
    .destroy = t_destroy,
};

ck_store *ck_store_metrics_wrap(ck_store *inner, ck_metrics *m) {
  if (inner == NULL || m == NULL)
    return inner;
  timed_store *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return NULL;
  t->vt = timed_vt;
  if (inner->vt->acquire_stream != NULL)
    t->vt.acquire_stream = t_acquire_stream;
  if (inner->vt->release_stream != NULL)
    t->vt.release_stream = t_release_stream;
  if (inner->vt->renew_stream != NULL)
    t->vt.renew_stream = t_renew_stream;
  t->base.vt = &t->vt;
  t->base.name = inner->name;
  t->base.nonblocking = inner->nonblocking;
  t->inner = inner;
  t->hist = m->store_duration;
  return &t->base;
}
