/* chatkit/log.h - structured one-line logs.
 *
 * Every line is one event with fields, written as JSON ({"ts":...,"level":...,"msg":...,...})
 * or logfmt (ts=... level=... msg=...), so log collectors can index them. Secrets never go
 * through here: callers log user ids and request ids, not tokens or bodies.
 */
#ifndef CHATKIT_LOG_H
#define CHATKIT_LOG_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ck_log_level {
  CK_LOG_DEBUG = 0,
  CK_LOG_INFO = 1,
  CK_LOG_WARN = 2,
  CK_LOG_ERROR = 3,
  CK_LOG_OFF = 4,
} ck_log_level;

typedef enum ck_log_format { CK_LOG_JSON = 0, CK_LOG_LOGFMT = 1 } ck_log_format;

typedef struct ck_log ck_log;

/** Creates a logger writing to `out` (borrowed; NULL means stderr) at or above `level`.
 * Thread-safe: lines from several threads never interleave. Returns NULL when out of memory. */
ck_log *ck_log_new(FILE *out, ck_log_level level, ck_log_format format);

/** Frees a logger. NULL is a no-op. */
void ck_log_free(ck_log *log);

/** Parses "debug", "info", "warn", "error" or "off". Returns 0, or -1 when unknown. */
int ck_log_level_parse(const char *name, ck_log_level *out);

/** True when a line at `level` would be written (to skip building fields). NULL: false. */
int ck_log_enabled(const ck_log *log, ck_log_level level);

/** Writes one event: `msg` then NULL-terminated pairs of field names and string values
 * (a NULL value skips the field). Values that look like integers are written as numbers when
 * the name ends in "_ms" or "_tokens", or is "status", "events" or "port". NULL logger: no-op. */
void ck_log_event(ck_log *log, ck_log_level level, const char *msg, ...) __attribute__((sentinel));

#ifdef __cplusplus
}
#endif
#endif
