/* Python's json.dumps, byte for byte: what the reference sends the model for tool-call
 * arguments and outputs. */
#include <chatkit/agent.h>
#include <chatkit/error.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Python's float repr: the shortest round-tripping digits, positional when the decimal
 * exponent is in [-4, 16), otherwise d.ddde+XX with at least two exponent digits. */
static int write_py_float(ck_buf *b, double d) {
  if (isnan(d))
    return ck_buf_puts(b, "NaN");
  if (isinf(d))
    return ck_buf_puts(b, d < 0 ? "-Infinity" : "Infinity");
  char tmp[40];
  for (int p = 0; p <= 17; p++) {
    snprintf(tmp, sizeof(tmp), "%.*e", p, d);
    if (strtod(tmp, NULL) == d)
      break;
  }
  /* tmp is [-]D[.DDD]e[+-]XX */
  const char *s = tmp;
  int rc = CK_OK;
  if (*s == '-') {
    rc = ck_buf_putc(b, '-');
    s++;
  }
  char digits[24];
  size_t nd = 0;
  const char *e = strchr(s, 'e');
  for (const char *q = s; q < e; q++)
    if (*q != '.')
      digits[nd++] = *q;
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  int exp = (int)strtol(e + 1, NULL, 10);
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      rc |= ck_buf_puts(b, "0.");
      for (int i = -1; i > exp; i--)
        rc |= ck_buf_putc(b, '0');
      rc |= ck_buf_append(b, digits, nd);
    } else {
      size_t whole = (size_t)exp + 1;
      for (size_t i = 0; i < whole; i++)
        rc |= ck_buf_putc(b, i < nd ? digits[i] : '0');
      rc |= ck_buf_putc(b, '.');
      if (nd > whole)
        rc |= ck_buf_append(b, digits + whole, nd - whole);
      else
        rc |= ck_buf_putc(b, '0');
    }
  } else {
    rc |= ck_buf_putc(b, digits[0]);
    if (nd > 1) {
      rc |= ck_buf_putc(b, '.');
      rc |= ck_buf_append(b, digits + 1, nd - 1);
    }
    rc |= ck_buf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
  }
  return rc == CK_OK ? CK_OK : CK_ENOMEM;
}

/* ensure_ascii: everything outside printable ASCII is a \u escape (surrogate pairs above the
 * BMP), with lowercase hex. */
static int write_py_string(ck_buf *b, const char *s, size_t n) {
  int rc = ck_buf_putc(b, '"');
  for (size_t i = 0; i < n && rc == CK_OK; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '"':
      rc = ck_buf_puts(b, "\\\"");
      continue;
    case '\\':
      rc = ck_buf_puts(b, "\\\\");
      continue;
    case '\n':
      rc = ck_buf_puts(b, "\\n");
      continue;
    case '\r':
      rc = ck_buf_puts(b, "\\r");
      continue;
    case '\t':
      rc = ck_buf_puts(b, "\\t");
      continue;
    case '\b':
      rc = ck_buf_puts(b, "\\b");
      continue;
    case '\f':
      rc = ck_buf_puts(b, "\\f");
      continue;
    default:
      break;
    }
    if (c < 0x20) {
      rc = ck_buf_printf(b, "\\u%04x", c);
      continue;
    }
    if (c < 0x80) {
      rc = ck_buf_putc(b, (char)c);
      continue;
    }
    /* Decode one UTF-8 sequence (the input is valid UTF-8: it came through the parser). */
    unsigned cp;
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    cp = c & (len == 4 ? 0x07 : len == 3 ? 0x0F : 0x1F);
    for (size_t k = 1; k < len && i + k < n; k++)
      cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
    i += len - 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      rc = ck_buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
    } else {
      rc = ck_buf_printf(b, "\\u%04x", cp);
    }
  }
  if (rc == CK_OK)
    rc = ck_buf_putc(b, '"');
  return rc;
}

static int write_py(ck_buf *b, ck_arena *a, const ck_json *v) {
  int rc = CK_OK;
  switch (ck_json_typeof(v)) {
  case CK_JSON_NULL:
    return ck_buf_puts(b, "null");
  case CK_JSON_BOOL:
    return ck_buf_puts(b, ck_json_bool_value(v) ? "true" : "false");
  case CK_JSON_INT:
    return ck_buf_puts(b, ck_json_int_digits_value(v));
  case CK_JSON_FLOAT:
    return write_py_float(b, ck_json_number_value(v));
  case CK_JSON_STRING:
    return write_py_string(b, ck_json_str_value(v), ck_json_str_len(v));
  case CK_JSON_ARRAY:
    rc = ck_buf_putc(b, '[');
    for (size_t i = 0; rc == CK_OK && i < ck_json_array_size(v); i++) {
      if (i > 0)
        rc = ck_buf_puts(b, ", ");
      if (rc == CK_OK)
        rc = write_py(b, a, ck_json_array_get(v, i));
    }
    return rc == CK_OK ? ck_buf_putc(b, ']') : rc;
  case CK_JSON_OBJECT:
    rc = ck_buf_putc(b, '{');
    for (size_t i = 0; rc == CK_OK && i < ck_json_object_size(v); i++) {
      if (i > 0)
        rc = ck_buf_puts(b, ", ");
      if (rc == CK_OK)
        rc = write_py_string(b, ck_json_object_key(v, i), ck_json_object_key_len(v, i));
      if (rc == CK_OK)
        rc = ck_buf_puts(b, ": ");
      if (rc == CK_OK)
        rc = write_py(b, a, ck_json_object_value(v, i));
    }
    return rc == CK_OK ? ck_buf_putc(b, '}') : rc;
  case CK_JSON_RAW: {
    ck_json *t = ck_json_expand(a, (ck_json *)v);
    return t ? write_py(b, a, t) : CK_EINVAL;
  }
  }
  return CK_EINVAL;
}

char *ck_json_dumps_python(ck_arena *a, const ck_json *v) {
  ck_buf b;
  ck_buf_init(&b, 0);
  char *out = NULL;
  if (write_py(&b, a, v) == CK_OK)
    out = ck_arena_strndup(a, b.data ? b.data : "", b.len);
  ck_buf_free(&b);
  return out;
}
