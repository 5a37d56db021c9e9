/* ChatKit timestamps (see datetime.h).
 *
 * Pure integer arithmetic on a proleptic Gregorian calendar: no timegm, no time zone
 * database, no locale. Dates are converted with the days-from-civil method (count days by
 * 400-year eras whose years start in March, so the leap day falls at the end of a year).
 */
#include "protocol/datetime.h"

#include <math.h>
#include <string.h>

#define US_PER_SEC INT64_C(1000000)
#define US_PER_MIN (60 * US_PER_SEC)
#define US_PER_DAY (86400 * US_PER_SEC)

/* Days from 1970-01-01 to y-m-d. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;                                   /* [0, 399] */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
  return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
    return 29;
  return days[m - 1];
}

/* Reads exactly `k` decimal digits at s[*i] into *out. */
static bool digits(const char *s, size_t n, size_t *i, int k, int *out) {
  int v = 0;
  if (n - *i < (size_t)k)
    return false;
  for (int j = 0; j < k; j++) {
    char c = s[*i + (size_t)j];
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + (c - '0');
  }
  *i += (size_t)k;
  *out = v;
  return true;
}

static bool expect(const char *s, size_t n, size_t *i, char c) {
  if (*i < n && s[*i] == c) {
    (*i)++;
    return true;
  }
  return false;
}

int ck__datetime_parse(const char *s, size_t n, ck__datetime *out) {
  size_t i = 0;
  int y, mo, d, h = 0, mi = 0, sec = 0, us = 0;
  if (s == NULL || out == NULL)
    return -1;
  if (!digits(s, n, &i, 4, &y) || !expect(s, n, &i, '-') || !digits(s, n, &i, 2, &mo) ||
      !expect(s, n, &i, '-') || !digits(s, n, &i, 2, &d))
    return -1;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
    return -1;
  ck__datetime dt = {0};
  if (i < n) {
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
      return -1;
    i++;
    if (!digits(s, n, &i, 2, &h) || !expect(s, n, &i, ':') || !digits(s, n, &i, 2, &mi))
      return -1;
    if (expect(s, n, &i, ':')) {
      if (!digits(s, n, &i, 2, &sec))
        return -1;
      if (expect(s, n, &i, '.')) {
        /* One to six fraction digits, scaled to microseconds. */
        int k = 0, scale = 100000;
        while (i < n && s[i] >= '0' && s[i] <= '9' && k < 6) {
          us += (s[i] - '0') * scale;
          scale /= 10;
          i++;
          k++;
        }
        if (k == 0)
          return -1;
      }
    }
    if (h > 23 || mi > 59 || sec > 59)
      return -1;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
      i++;
      dt.has_offset = true;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
      int sign = s[i] == '-' ? -1 : 1, oh, om;
      i++;
      if (!digits(s, n, &i, 2, &oh))
        return -1;
      expect(s, n, &i, ':');
      if (!digits(s, n, &i, 2, &om) || oh > 23 || om > 59)
        return -1;
      dt.has_offset = true;
      dt.offset_min = sign * (oh * 60 + om);
    }
  }
  if (i != n)
    return -1;
  dt.local_us = days_from_civil(y, mo, d) * US_PER_DAY + (int64_t)h * 3600 * US_PER_SEC +
                (int64_t)mi * US_PER_MIN + (int64_t)sec * US_PER_SEC + us;
  *out = dt;
  return 0;
}

int ck__datetime_from_unix(double seconds, ck__datetime *out) {
  /* pydantic reads numbers beyond +-2e10 as milliseconds rather than seconds. */
  if (!isfinite(seconds) || out == NULL)
    return -1;
  if (fabs(seconds) > 2e10)
    seconds /= 1000;
  /* 0001-01-01T00:00:00 to 9999-12-31T23:59:59.999999, in seconds. */
  if (seconds < -62135596800.0 || seconds >= 253402300800.0)
    return -1;
  double whole = floor(seconds);
  int64_t us = (int64_t)whole * US_PER_SEC + (int64_t)llround((seconds - whole) * 1e6);
  if (us >= INT64_C(253402300800) * US_PER_SEC)
    return -1;
  out->local_us = us;
  out->has_offset = true;
  out->offset_min = 0;
  return 0;
}

/* Writes `v` as exactly `k` digits. */
static size_t put_num(char *o, int64_t v, int k) {
  for (int j = k - 1; j >= 0; j--) {
    o[j] = (char)('0' + v % 10);
    v /= 10;
  }
  return (size_t)k;
}

/* Floor division for the negative instants before 1970. */
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

size_t ck__datetime_format(const ck__datetime *dt, char *out) {
  int64_t days = floor_div(dt->local_us, US_PER_DAY);
  int64_t rem = dt->local_us - days * US_PER_DAY;
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  size_t o = 0;
  if (y < 0 || y > 9999) {
    /* Outside what parse and from_unix produce; clamp rather than overflow the buffer. */
    y = y < 0 ? 0 : 9999;
  }
  o += put_num(out + o, y, 4);
  out[o++] = '-';
  o += put_num(out + o, m, 2);
  out[o++] = '-';
  o += put_num(out + o, d, 2);
  out[o++] = 'T';
  o += put_num(out + o, rem / (3600 * US_PER_SEC), 2);
  out[o++] = ':';
  o += put_num(out + o, rem / US_PER_MIN % 60, 2);
  out[o++] = ':';
  o += put_num(out + o, rem / US_PER_SEC % 60, 2);
  if (rem % US_PER_SEC != 0) {
    out[o++] = '.';
    o += put_num(out + o, rem % US_PER_SEC, 6);
  }
  if (dt->has_offset) {
    if (dt->offset_min == 0) {
      out[o++] = 'Z';
    } else {
      int off = dt->offset_min < 0 ? -dt->offset_min : dt->offset_min;
      out[o++] = dt->offset_min < 0 ? '-' : '+';
      o += put_num(out + o, off / 60 % 100, 2);
      out[o++] = ':';
      o += put_num(out + o, off % 60, 2);
    }
  }
  out[o] = '\0';
  return o;
}

int64_t ck__datetime_instant_us(const ck__datetime *dt) {
  return dt->has_offset ? dt->local_us - (int64_t)dt->offset_min * US_PER_MIN : dt->local_us;
}

ck__datetime ck__datetime_naive(int64_t local_us) {
  ck__datetime dt = {local_us, false, 0};
  return dt;
}
