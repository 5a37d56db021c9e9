/* Internal: ChatKit timestamps, parsed and printed exactly as the reference does.
 *
 * The reference emits Python datetimes through pydantic: naive times as
 * "YYYY-MM-DDTHH:MM:SS" plus ".ffffff" (exactly six digits) only when the microseconds are not
 * zero; aware times add "Z" for a zero offset or "+HH:MM"/"-HH:MM" otherwise.
 */
#ifndef CK_PROTOCOL_DATETIME_H
#define CK_PROTOCOL_DATETIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ck__datetime {
  int64_t local_us; /* wall-clock microseconds since 1970-01-01T00:00:00 in its own offset */
  bool has_offset;  /* an aware time (offset known) */
  int offset_min;   /* minutes east of UTC when has_offset */
} ck__datetime;

/* Longest output of ck__datetime_format, NUL included. */
#define CK_DATETIME_MAX 40

/** Parses the forms pydantic accepts for a datetime: "YYYY-MM-DD" alone, or followed by 'T',
 * 't' or ' ' and "HH:MM[:SS[.f{1,6}]]", then optionally "Z"/"z" or "+HH:MM"/"-HH:MM"/"+HHMM".
 * Years 0001-9999. Returns 0 on success, -1 when the text is not such a datetime. */
int ck__datetime_parse(const char *s, size_t n, ck__datetime *out);

/** Interprets a Unix timestamp in seconds (may be fractional) as an aware UTC datetime,
 * as pydantic does for numbers: like pydantic, a magnitude above 2e10 is read as milliseconds.
 * The fraction is rounded to the nearest microsecond. Returns 0, or -1 when not finite or
 * outside years 0001-9999. */
int ck__datetime_from_unix(double seconds, ck__datetime *out);

/** Writes the canonical text into `out` (CK_DATETIME_MAX bytes) and returns its length. */
size_t ck__datetime_format(const ck__datetime *dt, char *out);

/** The instant in UTC microseconds (a naive time counts as UTC), for ordering. */
int64_t ck__datetime_instant_us(const ck__datetime *dt);

/** A naive datetime from wall-clock microseconds since the epoch. */
ck__datetime ck__datetime_naive(int64_t local_us);

#endif
