/* The canonical compact writer (see ck_json_write in chatkit/json.h). */
#include "json/json_internal.h"

#include <chatkit/error.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Floats ---- */

/* Formats `d` (finite, non-zero) as the shortest decimal that strtod reads back to the same
 * double: "%.{p}e" for the smallest p from 0 to 16 that round-trips (17 significant digits
 * always do). Stores the significant digits without the point and trailing zeros in `digits`
 * and returns their count; `*exp10` receives the decimal exponent of the first digit.
 * snprintf and strtod both run in the "C" locale (the process never calls setlocale). */
static size_t shortest_digits(double d, char digits[32], int *exp10) {
  char tmp[40];
  int n = 0;
  for (int p = 0; p <= 16; p++) {
    n = snprintf(tmp, sizeof(tmp), "%.*e", p, d);
    if (strtod(tmp, NULL) == d)
      break;
  }
  /* tmp is "[-]d[.ddd]e[+-]xx"; collect the digits and parse the exponent. */
  const char *s = tmp;
  if (*s == '-')
    s++;
  size_t nd = 0;
  for (; *s != 'e' && s < tmp + n; s++) {
    if (*s != '.')
      digits[nd++] = *s;
  }
  int e = 0, sign = 1;
  s++;
  if (*s == '-' || *s == '+')
    sign = *s++ == '-' ? -1 : 1;
  for (; *s >= '0' && *s <= '9'; s++)
    e = e * 10 + (*s - '0');
  *exp10 = sign * e;
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  return nd;
}

/* The fast path for the common "few decimals" floats (0.5, 12.25, 3.7): finds the smallest
 * k <= 8 such that m = round(|d| * 10^k) satisfies m / 10^k == |d|. Division of two exact
 * doubles is correctly rounded, so m * 10^-k then reads back as |d|; keeping |d| * 10^k
 * below 2^50 makes m the only integer that can, so it is the shortest form the general path
 * would find. Writes the positional text and returns its length, or 0 to fall back. */
static size_t fast_positional(double d, char *out) {
  static const double tens[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
  static const uint64_t itens[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
  double ad = fabs(d);
  if (!(ad >= 1e-5 && ad < 1e15))
    return 0;
  for (int k = 0; k <= 8; k++) {
    double scaled = ad * tens[k];
    if (scaled >= 0x1p50)
      return 0;
    double m = rint(scaled);
    if (m == 0 || m / tens[k] != ad)
      continue;
    uint64_t im = (uint64_t)m, ip = im / itens[k], fp = im % itens[k];
    size_t o = 0;
    char tmp[24];
    size_t t = 0;
    if (d < 0)
      out[o++] = '-';
    do {
      tmp[t++] = (char)('0' + ip % 10);
      ip /= 10;
    } while (ip != 0);
    while (t > 0)
      out[o++] = tmp[--t];
    out[o++] = '.';
    if (k == 0) {
      out[o++] = '0';
      return o;
    }
    for (int i = k - 1; i >= 0; i--) {
      out[o + (size_t)i] = (char)('0' + fp % 10);
      fp /= 10;
    }
    o += (size_t)k;
    while (out[o - 1] == '0' && out[o - 2] != '.')
      o--;
    return o;
  }
  return 0;
}

int ck_json_write_double(ck_buf *b, double d) {
  if (!isfinite(d))
    return ck_buf_append(b, "null", 4);
  if (d == 0)
    return signbit(d) ? ck_buf_append(b, "-0.0", 4) : ck_buf_append(b, "0.0", 3);
  char fast[48];
  size_t fn = fast_positional(d, fast);
  if (fn > 0)
    return ck_buf_append(b, fast, fn);

  char digits[32];
  int e;
  size_t nd = shortest_digits(d, digits, &e);

  /* Lay the digits out by hand; the longest result is "-0.00001" plus 17 digits or
   * "-d.dddddddddddddddde-324", both well under 48 bytes. */
  char out[48];
  size_t o = 0;
  if (d < 0)
    out[o++] = '-';
  double ad = fabs(d);
  if (ad >= 1e-5 && ad < 1e16) {
    if (e >= 0) {
      /* Integer part: the first e+1 digits, padded with zeros when the digits run out. */
      for (int i = 0; i <= e; i++)
        out[o++] = (size_t)i < nd ? digits[i] : '0';
      out[o++] = '.';
      if ((size_t)e + 1 < nd) {
        for (size_t i = (size_t)e + 1; i < nd; i++)
          out[o++] = digits[i];
      } else {
        out[o++] = '0';
      }
    } else {
      out[o++] = '0';
      out[o++] = '.';
      for (int i = 0; i < -e - 1; i++)
        out[o++] = '0';
      for (size_t i = 0; i < nd; i++)
        out[o++] = digits[i];
    }
  } else {
    out[o++] = digits[0];
    if (nd > 1) {
      out[o++] = '.';
      for (size_t i = 1; i < nd; i++)
        out[o++] = digits[i];
    }
    out[o++] = 'e';
    out[o++] = e < 0 ? '-' : '+';
    unsigned ae = (unsigned)(e < 0 ? -e : e);
    char tmp[8];
    size_t t = 0;
    do {
      tmp[t++] = (char)('0' + ae % 10);
      ae /= 10;
    } while (ae != 0);
    while (t > 0)
      out[o++] = tmp[--t];
  }
  return ck_buf_append(b, out, o);
}

/* ---- Strings ---- */

/* How each byte is written: 0 raw, otherwise the character after the backslash ('u' for the
 * \u00XX form). Only '"', '\\' and control characters are escaped. */
static char escape_of(unsigned char c) {
  switch (c) {
  case '"':
    return '"';
  case '\\':
    return '\\';
  case '\n':
    return 'n';
  case '\r':
    return 'r';
  case '\t':
    return 't';
  case '\b':
    return 'b';
  case '\f':
    return 'f';
  default:
    return c < 0x20 ? 'u' : 0;
  }
}

static int write_string_body(ck_buf *b, const unsigned char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *run = s, *end = s + n;
  int rc = CK_OK;
  for (const unsigned char *p = s; p < end; p++) {
    unsigned char c = *p;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    if (p > run && (rc = ck_buf_append(b, run, (size_t)(p - run))) != CK_OK)
      return rc;
    char e = escape_of(c);
    char esc[6] = {'\\', e, '0', '0', hex[c >> 4], hex[c & 15]};
    if ((rc = ck_buf_append(b, esc, e == 'u' ? 6 : 2)) != CK_OK)
      return rc;
    run = p + 1;
  }
  if (end > run)
    rc = ck_buf_append(b, run, (size_t)(end - run));
  return rc;
}

/* Runs `body` between quotes; on failure the caller truncates the buffer. */
static int write_quoted(ck_buf *b, const char *s, size_t n) {
  int rc = ck_buf_append(b, "\"", 1);
  if (rc == CK_OK)
    rc = write_string_body(b, (const unsigned char *)s, n);
  if (rc == CK_OK)
    rc = ck_buf_append(b, "\"", 1);
  return rc;
}

/* Restores `b` to `len` bytes after a failed write, so a failed call leaves no partial text. */
static void truncate_buf(ck_buf *b, size_t len) {
  b->len = len;
  if (b->data != NULL)
    b->data[len] = '\0';
}

int ck_json_write_string(ck_buf *b, const char *s, size_t n) {
  size_t start = b->len;
  int rc = write_quoted(b, s, n);
  if (rc != CK_OK)
    truncate_buf(b, start);
  return rc;
}

/* ---- Values ---- */

static int write_value(ck_buf *b, const ck_json *v) {
  int rc = CK_OK;
  if (v == NULL)
    return ck_buf_append(b, "null", 4);
  switch (v->type) {
  case CK_JSON_NULL:
    return ck_buf_append(b, "null", 4);
  case CK_JSON_BOOL:
    return v->u.b ? ck_buf_append(b, "true", 4) : ck_buf_append(b, "false", 5);
  case CK_JSON_INT:
    return ck_buf_append(b, v->u.num.digits, v->num_len);
  case CK_JSON_FLOAT:
    return ck_json_write_double(b, v->u.f);
  case CK_JSON_STRING:
    return write_quoted(b, v->u.str.s, v->u.str.len);
  case CK_JSON_RAW:
    return ck_buf_append(b, v->u.str.s, v->u.str.len);
  case CK_JSON_ARRAY:
    if ((rc = ck_buf_append(b, "[", 1)) != CK_OK)
      return rc;
    for (size_t i = 0; i < v->u.arr.len; i++) {
      if (i > 0 && (rc = ck_buf_append(b, ",", 1)) != CK_OK)
        return rc;
      if ((rc = write_value(b, v->u.arr.v[i])) != CK_OK)
        return rc;
    }
    return ck_buf_append(b, "]", 1);
  case CK_JSON_OBJECT:
    if ((rc = ck_buf_append(b, "{", 1)) != CK_OK)
      return rc;
    for (size_t i = 0; i < v->u.obj.len; i++) {
      const ck__json_member *m = &v->u.obj.m[i];
      if (i > 0 && (rc = ck_buf_append(b, ",", 1)) != CK_OK)
        return rc;
      if ((rc = write_quoted(b, m->key, m->klen)) != CK_OK)
        return rc;
      if ((rc = ck_buf_append(b, ":", 1)) != CK_OK)
        return rc;
      if ((rc = write_value(b, m->val)) != CK_OK)
        return rc;
    }
    return ck_buf_append(b, "}", 1);
  }
  return CK_EINVAL;
}

int ck_json_write(ck_buf *b, const ck_json *v) {
  size_t start = b->len;
  int rc = write_value(b, v);
  if (rc != CK_OK)
    truncate_buf(b, start);
  return rc;
}

char *ck_json_dumps(ck_arena *a, const ck_json *v, size_t *len) {
  ck_buf b;
  ck_buf_init(&b, 0);
  char *out = NULL;
  if (ck_json_write(&b, v) != CK_OK)
    goto fail;
  out = ck_arena_strndup(a, b.data ? b.data : "", b.len);
  if (out != NULL && len != NULL)
    *len = b.len;
fail:
  ck_buf_free(&b);
  return out;
}
