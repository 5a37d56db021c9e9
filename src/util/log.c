/* Structured logging (see chatkit/log.h). */
#include <chatkit/json.h>
#include <chatkit/log.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

struct ck_log {
  FILE *out;
  ck_log_level level;
  ck_log_format format;
  pthread_mutex_t mu;
};

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

ck_log *ck_log_new(FILE *out, ck_log_level level, ck_log_format format) {
  ck_log *log = calloc(1, sizeof(*log));
  if (log == NULL)
    return NULL;
  log->out = out ? out : stderr;
  log->level = level;
  log->format = format;
  pthread_mutex_init(&log->mu, NULL);
  return log;
}

void ck_log_free(ck_log *log) {
  if (log == NULL)
    return;
  pthread_mutex_destroy(&log->mu);
  free(log);
}

int ck_log_level_parse(const char *name, ck_log_level *out) {
  for (int i = 0; i <= CK_LOG_OFF; i++)
    if (name != NULL && strcmp(name, level_names[i]) == 0) {
      *out = (ck_log_level)i;
      return 0;
    }
  if (name != NULL && strcmp(name, "warning") == 0) {
    *out = CK_LOG_WARN;
    return 0;
  }
  return -1;
}

int ck_log_enabled(const ck_log *log, ck_log_level level) {
  return log != NULL && level >= log->level && level < CK_LOG_OFF;
}

static bool numeric_field(const char *name, const char *value) {
  size_t n = strlen(name);
  bool numeric_name = (n > 3 && strcmp(name + n - 3, "_ms") == 0) || strcmp(name, "status") == 0 ||
                      strcmp(name, "events") == 0 || strcmp(name, "port") == 0 ||
                      (n > 7 && strcmp(name + n - 7, "_tokens") == 0);
  if (!numeric_name || *value == '\0')
    return false;
  for (const char *p = value; *p; p++)
    if ((*p < '0' || *p > '9') && !(p == value && *p == '-') && *p != '.')
      return false;
  return true;
}

/* logfmt quotes values with spaces, quotes or '='; JSON-style escaping keeps one line. */
static void logfmt_value(ck_buf *b, const char *v) {
  bool quote = *v == '\0' || strpbrk(v, " \"=\\\n\r\t") != NULL;
  if (quote)
    ck_json_write_string(b, v, strlen(v));
  else
    ck_buf_puts(b, v);
}

void ck_log_event(ck_log *log, ck_log_level level, const char *msg, ...) {
  if (!ck_log_enabled(log, level))
    return;
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  char ts[96];
  snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
  ck_buf b;
  ck_buf_init(&b, 64 * 1024);
  bool json = log->format == CK_LOG_JSON;
  if (json) {
    ck_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]);
    ck_json_write_string(&b, msg, strlen(msg));
  } else {
    ck_buf_printf(&b, "ts=%s level=%s msg=", ts, level_names[level]);
    logfmt_value(&b, msg);
  }
  va_list ap;
  va_start(ap, msg);
  for (;;) {
    const char *name = va_arg(ap, const char *);
    if (name == NULL)
      break;
    const char *value = va_arg(ap, const char *);
    if (value == NULL)
      continue;
    if (json) {
      ck_buf_putc(&b, ',');
      ck_json_write_string(&b, name, strlen(name));
      ck_buf_putc(&b, ':');
      if (numeric_field(name, value))
        ck_buf_puts(&b, value);
      else
        ck_json_write_string(&b, value, strlen(value));
    } else {
      ck_buf_printf(&b, " %s=", name);
      logfmt_value(&b, value);
    }
  }
  va_end(ap);
  ck_buf_puts(&b, json ? "}\n" : "\n");
  pthread_mutex_lock(&log->mu);
  fwrite(b.data, 1, b.len, log->out);
  fflush(log->out);
  pthread_mutex_unlock(&log->mu);
  ck_buf_free(&b);
}
