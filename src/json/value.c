/* The JSON document model: constructors, accessors and mutators (see chatkit/json.h). */
#include "json/json_internal.h"

#include <chatkit/error.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ck_json *ck__json_node(ck_arena *a, ck_json_type t, size_t extra, char **extra_out) {
  if (a == NULL || extra > SIZE_MAX - sizeof(ck_json))
    return NULL;
  ck_json *v = ck_arena_alloc(a, sizeof(ck_json) + extra);
  if (v == NULL)
    return NULL;
  memset(v, 0, sizeof(*v));
  v->type = t;
  v->arena = a;
  if (extra_out != NULL)
    *extra_out = (char *)(v + 1);
  return v;
}

ck_json *ck__json_make_int(ck_arena *a, const char *lit, size_t n) {
  bool neg = n > 0 && lit[0] == '-';
  const char *d = lit + neg;
  size_t nd = n - neg;
  /* Leading zeros carry no value; keep one digit so "000" is "0". */
  while (nd > 1 && d[0] == '0') {
    d++;
    nd--;
  }
  if (nd == 1 && d[0] == '0')
    neg = false;

  /* Accumulate the magnitude in uint64 and note overflow; int64 holds up to 2^63-1 and,
   * negated, 2^63. */
  uint64_t mag = 0;
  bool over = false;
  for (size_t i = 0; i < nd; i++) {
    unsigned dig = (unsigned)(d[i] - '0');
    if (mag > (UINT64_MAX - dig) / 10) {
      over = true;
      break;
    }
    mag = mag * 10 + dig;
  }
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

  char *text;
  ck_json *v = ck__json_node(a, CK_JSON_INT, nd + neg + 1, &text);
  if (v == NULL)
    return NULL;
  if (neg)
    text[0] = '-';
  memcpy(text + neg, d, nd);
  text[nd + neg] = '\0';
  v->u.num.digits = text;
  v->num_len = (uint32_t)(nd + neg);
  v->num_fits = !over && mag <= limit;
  if (v->num_fits)
    v->u.num.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
  return v;
}

/* ---- Constructors ---- */

ck_json *ck_json_null(ck_arena *a) {
  return ck__json_node(a, CK_JSON_NULL, 0, NULL);
}

ck_json *ck_json_bool(ck_arena *a, bool b) {
  ck_json *v = ck__json_node(a, CK_JSON_BOOL, 0, NULL);
  if (v != NULL)
    v->u.b = b;
  return v;
}

ck_json *ck_json_int(ck_arena *a, int64_t i) {
  /* Format by hand into a small buffer: 20 digits and a sign cover every int64. */
  char tmp[24];
  size_t pos = sizeof(tmp);
  uint64_t mag = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
  do {
    tmp[--pos] = (char)('0' + mag % 10);
    mag /= 10;
  } while (mag != 0);
  if (i < 0)
    tmp[--pos] = '-';
  return ck__json_make_int(a, tmp + pos, sizeof(tmp) - pos);
}

ck_json *ck_json_int_digits(ck_arena *a, const char *digits, size_t n) {
  if (digits == NULL)
    return NULL;
  size_t i = n > 0 && digits[0] == '-';
  if (i == n)
    return NULL;
  for (; i < n; i++) {
    if (digits[i] < '0' || digits[i] > '9')
      return NULL;
  }
  return ck__json_make_int(a, digits, n);
}

ck_json *ck_json_float(ck_arena *a, double d) {
  ck_json *v = ck__json_node(a, CK_JSON_FLOAT, 0, NULL);
  if (v != NULL)
    v->u.f = d;
  return v;
}

ck_json *ck_json_str(ck_arena *a, const char *s) {
  if (s == NULL)
    return ck_json_null(a);
  return ck_json_strn(a, s, strlen(s));
}

/* A STRING or RAW node holding a copy of `n` bytes, NUL-terminated. */
static ck_json *text_node(ck_arena *a, ck_json_type t, const char *s, size_t n) {
  if (n > CK__JSON_MAX_LEN || (n > 0 && s == NULL))
    return NULL;
  char *dst;
  ck_json *v = ck__json_node(a, t, n + 1, &dst);
  if (v == NULL)
    return NULL;
  if (n > 0)
    memcpy(dst, s, n);
  dst[n] = '\0';
  v->u.str.s = dst;
  v->u.str.len = (uint32_t)n;
  return v;
}

ck_json *ck_json_strn(ck_arena *a, const char *s, size_t n) {
  return text_node(a, CK_JSON_STRING, s, n);
}

ck_json *ck_json_raw(ck_arena *a, const char *text, size_t n) {
  return text_node(a, CK_JSON_RAW, text, n);
}

ck_json *ck_json_array(ck_arena *a) {
  return ck__json_node(a, CK_JSON_ARRAY, 0, NULL);
}

ck_json *ck_json_object(ck_arena *a) {
  return ck__json_node(a, CK_JSON_OBJECT, 0, NULL);
}

ck_json *ck_json_copy(ck_arena *a, const ck_json *v) {
  if (v == NULL)
    return NULL;
  ck_json *c = NULL;
  switch (v->type) {
  case CK_JSON_NULL:
    return ck_json_null(a);
  case CK_JSON_BOOL:
    return ck_json_bool(a, v->u.b);
  case CK_JSON_INT:
    return ck__json_make_int(a, v->u.num.digits, v->num_len);
  case CK_JSON_FLOAT:
    return ck_json_float(a, v->u.f);
  case CK_JSON_STRING:
  case CK_JSON_RAW:
    return text_node(a, v->type, v->u.str.s, v->u.str.len);
  case CK_JSON_ARRAY:
    c = ck_json_array(a);
    if (c == NULL || v->u.arr.len == 0)
      return c;
    c->u.arr.v = ck_arena_alloc(a, v->u.arr.len * sizeof(ck_json *));
    if (c->u.arr.v == NULL)
      return NULL;
    for (size_t i = 0; i < v->u.arr.len; i++) {
      c->u.arr.v[i] = ck_json_copy(a, v->u.arr.v[i]);
      if (c->u.arr.v[i] == NULL)
        return NULL;
    }
    c->u.arr.len = c->u.arr.cap = v->u.arr.len;
    return c;
  case CK_JSON_OBJECT:
    c = ck_json_object(a);
    if (c == NULL || v->u.obj.len == 0)
      return c;
    c->u.obj.m = ck_arena_alloc(a, v->u.obj.len * sizeof(ck__json_member));
    if (c->u.obj.m == NULL)
      return NULL;
    for (size_t i = 0; i < v->u.obj.len; i++) {
      const ck__json_member *src = &v->u.obj.m[i];
      ck__json_member *dst = &c->u.obj.m[i];
      dst->key = ck_arena_strndup(a, src->key, src->klen);
      dst->klen = src->klen;
      dst->val = ck_json_copy(a, src->val);
      if (dst->key == NULL || dst->val == NULL)
        return NULL;
    }
    c->u.obj.len = c->u.obj.cap = v->u.obj.len;
    return c;
  }
  return NULL;
}

ck_json *ck_json_expand(ck_arena *a, ck_json *v) {
  if (v == NULL || v->type != CK_JSON_RAW)
    return v;
  ck_json *out = NULL;
  if (ck_json_parse(a, v->u.str.s, v->u.str.len, 0, &out, NULL) != CK_OK)
    return NULL;
  return out;
}

/* ---- Inspection ---- */

ck_json_type ck_json_typeof(const ck_json *v) {
  return v ? v->type : CK_JSON_NULL;
}

bool ck_json_is_null(const ck_json *v) {
  return v == NULL || v->type == CK_JSON_NULL;
}

bool ck_json_is_bool(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_BOOL;
}

bool ck_json_is_int(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_INT;
}

bool ck_json_is_float(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_FLOAT;
}

bool ck_json_is_number(const ck_json *v) {
  return v != NULL && (v->type == CK_JSON_INT || v->type == CK_JSON_FLOAT);
}

bool ck_json_is_string(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_STRING;
}

bool ck_json_is_array(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_ARRAY;
}

bool ck_json_is_object(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_OBJECT;
}

bool ck_json_bool_value(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_BOOL && v->u.b;
}

int ck_json_int_value(const ck_json *v, int64_t *out) {
  if (v == NULL || v->type != CK_JSON_INT || !v->num_fits)
    return CK_EINVAL;
  if (out != NULL)
    *out = v->u.num.i;
  return CK_OK;
}

const char *ck_json_int_digits_value(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_INT ? v->u.num.digits : NULL;
}

double ck_json_number_value(const ck_json *v) {
  if (v == NULL)
    return 0;
  if (v->type == CK_JSON_FLOAT)
    return v->u.f;
  if (v->type != CK_JSON_INT)
    return 0;
  if (v->num_fits)
    return (double)v->u.num.i;
  /* The digits are a valid decimal literal; strtod rounds it correctly (C locale assumed). */
  return strtod(v->u.num.digits, NULL);
}

const char *ck_json_str_value(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_STRING ? v->u.str.s : NULL;
}

size_t ck_json_str_len(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_STRING ? v->u.str.len : 0;
}

const char *ck_json_raw_text(const ck_json *v, size_t *len) {
  if (v == NULL || v->type != CK_JSON_RAW)
    return NULL;
  if (len != NULL)
    *len = v->u.str.len;
  return v->u.str.s;
}

ck_arena *ck_json_arena(const ck_json *v) {
  return v ? v->arena : NULL;
}

/* ---- Equality ---- */

/* An integer literal equals a float when the float is integral and its exact decimal
 * expansion is the same digits. glibc's "%.0f" prints the exact value of a double, so this
 * is exact for every magnitude without a bignum library. */
static bool int_equals_float(const ck_json *i, double f) {
  if (!isfinite(f) || f != floor(f))
    return false;
  if (i->num_fits && fabs(f) < 9223372036854775808.0)
    return (int64_t)f == i->u.num.i;
  if (fabs(f) < 9223372036854775808.0)
    return false;
  char tmp[400];
  int n = snprintf(tmp, sizeof(tmp), "%.0f", f);
  return n > 0 && (size_t)n == i->num_len && memcmp(tmp, i->u.num.digits, (size_t)n) == 0;
}

static bool equal_rec(const ck_json *x, const ck_json *y);

/* Compares a RAW value with any value by parsing the RAW text into a scratch arena. */
static bool raw_equal(const ck_json *raw, const ck_json *other) {
  ck_arena *tmp = ck_arena_new(raw->u.str.len * 4 + 256);
  if (tmp == NULL)
    return false;
  bool eq = false;
  ck_json *a = NULL;
  ck_json *b = (ck_json *)other;
  if (ck_json_parse(tmp, raw->u.str.s, raw->u.str.len, 0, &a, NULL) != CK_OK)
    goto done;
  if (other->type == CK_JSON_RAW &&
      ck_json_parse(tmp, other->u.str.s, other->u.str.len, 0, &b, NULL) != CK_OK)
    goto done;
  eq = equal_rec(a, b);
done:
  ck_arena_free(tmp);
  return eq;
}

static bool equal_rec(const ck_json *x, const ck_json *y) {
  if (x == y)
    return true;
  if (x == NULL || y == NULL)
    return ck_json_is_null(x) && ck_json_is_null(y);
  if (x->type == CK_JSON_RAW || y->type == CK_JSON_RAW) {
    if (x->type == CK_JSON_RAW && y->type == CK_JSON_RAW && x->u.str.len == y->u.str.len &&
        memcmp(x->u.str.s, y->u.str.s, x->u.str.len) == 0)
      return true;
    return x->type == CK_JSON_RAW ? raw_equal(x, y) : raw_equal(y, x);
  }
  if (x->type == CK_JSON_INT && y->type == CK_JSON_FLOAT)
    return int_equals_float(x, y->u.f);
  if (x->type == CK_JSON_FLOAT && y->type == CK_JSON_INT)
    return int_equals_float(y, x->u.f);
  if (x->type != y->type)
    return false;
  switch (x->type) {
  case CK_JSON_NULL:
    return true;
  case CK_JSON_BOOL:
    return x->u.b == y->u.b;
  case CK_JSON_INT:
    return x->num_len == y->num_len && memcmp(x->u.num.digits, y->u.num.digits, x->num_len) == 0;
  case CK_JSON_FLOAT:
    return x->u.f == y->u.f;
  case CK_JSON_STRING:
    return x->u.str.len == y->u.str.len && memcmp(x->u.str.s, y->u.str.s, x->u.str.len) == 0;
  case CK_JSON_ARRAY:
    if (x->u.arr.len != y->u.arr.len)
      return false;
    for (size_t i = 0; i < x->u.arr.len; i++) {
      if (!equal_rec(x->u.arr.v[i], y->u.arr.v[i]))
        return false;
    }
    return true;
  case CK_JSON_OBJECT:
    /* Keys are unique within an object, so equal sizes plus every member of x found equal in
     * y means the member sets are equal. Same-position keys are tried first because equal
     * objects usually share their order. */
    if (x->u.obj.len != y->u.obj.len)
      return false;
    for (size_t i = 0; i < x->u.obj.len; i++) {
      const ck__json_member *m = &x->u.obj.m[i];
      const ck__json_member *o = &y->u.obj.m[i];
      if (o->klen != m->klen || memcmp(o->key, m->key, m->klen) != 0) {
        size_t j = ck__json_find(y, m->key, m->klen);
        if (j == SIZE_MAX)
          return false;
        o = &y->u.obj.m[j];
      }
      if (!equal_rec(m->val, o->val))
        return false;
    }
    return true;
  case CK_JSON_RAW:
    break;
  }
  return false;
}

bool ck_json_equal(const ck_json *x, const ck_json *y) {
  return equal_rec(x, y);
}

/* ---- Arrays ---- */

size_t ck_json_array_size(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_ARRAY ? v->u.arr.len : 0;
}

ck_json *ck_json_array_get(const ck_json *v, size_t i) {
  if (v == NULL || v->type != CK_JSON_ARRAY || i >= v->u.arr.len)
    return NULL;
  return v->u.arr.v[i];
}

/* Makes room for one more element, doubling the vector inside the array's arena. The old
 * vector stays in the arena until it is freed; doubling keeps that waste below 2x. */
static int array_grow(ck_json *arr) {
  if (arr->u.arr.len < arr->u.arr.cap)
    return CK_OK;
  size_t cap = arr->u.arr.cap ? (size_t)arr->u.arr.cap * 2 : 4;
  if (cap > CK__JSON_MAX_LEN)
    cap = CK__JSON_MAX_LEN;
  if (cap <= arr->u.arr.cap || cap > SIZE_MAX / sizeof(ck_json *))
    return CK_ENOMEM;
  ck_json **v = ck_arena_alloc(arr->arena, cap * sizeof(ck_json *));
  if (v == NULL)
    return CK_ENOMEM;
  if (arr->u.arr.len > 0)
    memcpy(v, arr->u.arr.v, arr->u.arr.len * sizeof(ck_json *));
  arr->u.arr.v = v;
  arr->u.arr.cap = (uint32_t)cap;
  return CK_OK;
}

int ck_json_array_append(ck_json *arr, ck_json *elem) {
  if (arr == NULL)
    return CK_EINVAL;
  return ck_json_array_insert(arr, arr->type == CK_JSON_ARRAY ? arr->u.arr.len : 0, elem);
}

int ck_json_array_insert(ck_json *arr, size_t i, ck_json *elem) {
  if (arr == NULL || arr->type != CK_JSON_ARRAY || elem == NULL || i > arr->u.arr.len)
    return CK_EINVAL;
  int rc = array_grow(arr);
  if (rc != CK_OK)
    return rc;
  memmove(arr->u.arr.v + i + 1, arr->u.arr.v + i, (arr->u.arr.len - i) * sizeof(ck_json *));
  arr->u.arr.v[i] = elem;
  arr->u.arr.len++;
  return CK_OK;
}

int ck_json_array_set(ck_json *arr, size_t i, ck_json *elem) {
  if (arr == NULL || arr->type != CK_JSON_ARRAY || elem == NULL || i >= arr->u.arr.len)
    return CK_EINVAL;
  arr->u.arr.v[i] = elem;
  return CK_OK;
}

int ck_json_array_remove(ck_json *arr, size_t i) {
  if (arr == NULL || arr->type != CK_JSON_ARRAY || i >= arr->u.arr.len)
    return CK_EINVAL;
  memmove(arr->u.arr.v + i, arr->u.arr.v + i + 1, (arr->u.arr.len - i - 1) * sizeof(ck_json *));
  arr->u.arr.len--;
  return CK_OK;
}

void ck_json_array_clear(ck_json *arr) {
  if (arr != NULL && arr->type == CK_JSON_ARRAY)
    arr->u.arr.len = 0;
}

/* ---- Objects ---- */

size_t ck__json_find(const ck_json *obj, const char *key, size_t klen) {
  const ck__json_member *m = obj->u.obj.m;
  for (size_t i = 0; i < obj->u.obj.len; i++) {
    if (m[i].klen == klen && memcmp(m[i].key, key, klen) == 0)
      return i;
  }
  return SIZE_MAX;
}

size_t ck_json_object_size(const ck_json *v) {
  return v != NULL && v->type == CK_JSON_OBJECT ? v->u.obj.len : 0;
}

ck_json *ck_json_object_get(const ck_json *v, const char *key) {
  if (v == NULL || v->type != CK_JSON_OBJECT || key == NULL)
    return NULL;
  size_t i = ck__json_find(v, key, strlen(key));
  return i == SIZE_MAX ? NULL : v->u.obj.m[i].val;
}

const char *ck_json_object_key(const ck_json *v, size_t i) {
  if (v == NULL || v->type != CK_JSON_OBJECT || i >= v->u.obj.len)
    return NULL;
  return v->u.obj.m[i].key;
}

ck_json *ck_json_object_value(const ck_json *v, size_t i) {
  if (v == NULL || v->type != CK_JSON_OBJECT || i >= v->u.obj.len)
    return NULL;
  return v->u.obj.m[i].val;
}

size_t ck_json_object_key_len(const ck_json *v, size_t i) {
  if (v == NULL || v->type != CK_JSON_OBJECT || i >= v->u.obj.len)
    return 0;
  return v->u.obj.m[i].klen;
}

int ck_json_object_set(ck_json *obj, const char *key, ck_json *val) {
  if (key == NULL)
    return CK_EINVAL;
  return ck_json_object_setn(obj, key, strlen(key), val);
}

int ck_json_object_setn(ck_json *obj, const char *key, size_t klen, ck_json *val) {
  if (obj == NULL || obj->type != CK_JSON_OBJECT || key == NULL || val == NULL)
    return CK_EINVAL;
  size_t i = ck__json_find(obj, key, klen);
  if (i != SIZE_MAX) {
    obj->u.obj.m[i].val = val;
    return CK_OK;
  }
  if (obj->u.obj.len == obj->u.obj.cap) {
    /* Double inside the arena, as arrays do. */
    size_t cap = obj->u.obj.cap ? (size_t)obj->u.obj.cap * 2 : 4;
    if (cap > CK__JSON_MAX_LEN)
      cap = CK__JSON_MAX_LEN;
    if (cap <= obj->u.obj.cap || cap > SIZE_MAX / sizeof(ck__json_member))
      return CK_ENOMEM;
    ck__json_member *m = ck_arena_alloc(obj->arena, cap * sizeof(*m));
    if (m == NULL)
      return CK_ENOMEM;
    if (obj->u.obj.len > 0)
      memcpy(m, obj->u.obj.m, obj->u.obj.len * sizeof(*m));
    obj->u.obj.m = m;
    obj->u.obj.cap = (uint32_t)cap;
  }
  char *k = ck_arena_strndup(obj->arena, key, klen);
  if (k == NULL)
    return CK_ENOMEM;
  obj->u.obj.m[obj->u.obj.len++] = (ck__json_member){k, klen, val};
  return CK_OK;
}

int ck_json_object_del(ck_json *obj, const char *key) {
  if (obj == NULL || obj->type != CK_JSON_OBJECT || key == NULL)
    return CK_EINVAL;
  size_t i = ck__json_find(obj, key, strlen(key));
  if (i == SIZE_MAX)
    return CK_ENOTFOUND;
  memmove(obj->u.obj.m + i, obj->u.obj.m + i + 1,
          (obj->u.obj.len - i - 1) * sizeof(ck__json_member));
  obj->u.obj.len--;
  return CK_OK;
}

const char *ck_json_object_get_str(const ck_json *obj, const char *key) {
  return ck_json_str_value(ck_json_object_get(obj, key));
}

/* ---- Fingerprints ---- */

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= FNV_PRIME;
  }
  return h;
}

/* Hashes a length as the size_t it was before lengths became 32-bit, so fingerprints kept
 * across versions (none are stored today) would not change. */
static uint64_t fnv_len(uint64_t h, size_t n) {
  return fnv(h, &n, sizeof(n));
}

static uint64_t hash_value(uint64_t h, const ck_json *v) {
  unsigned char tag = v ? (unsigned char)v->type : (unsigned char)CK_JSON_NULL;
  h = fnv(h, &tag, 1);
  if (v == NULL)
    return h;
  switch (v->type) {
  case CK_JSON_BOOL:
    return fnv(h, &v->u.b, sizeof(v->u.b));
  case CK_JSON_INT:
    return fnv(h, v->u.num.digits, v->num_len);
  case CK_JSON_FLOAT:
    return fnv(h, &v->u.f, sizeof(v->u.f));
  case CK_JSON_STRING:
  case CK_JSON_RAW:
    h = fnv_len(h, v->u.str.len);
    return fnv(h, v->u.str.s, v->u.str.len);
  case CK_JSON_ARRAY:
    h = fnv_len(h, v->u.arr.len);
    for (size_t i = 0; i < v->u.arr.len; i++)
      h = hash_value(h, v->u.arr.v[i]);
    return h;
  case CK_JSON_OBJECT:
    h = fnv_len(h, v->u.obj.len);
    for (size_t i = 0; i < v->u.obj.len; i++) {
      h = fnv(h, &v->u.obj.m[i].klen, sizeof(v->u.obj.m[i].klen));
      h = fnv(h, v->u.obj.m[i].key, v->u.obj.m[i].klen);
      h = hash_value(h, v->u.obj.m[i].val);
    }
    return h;
  default:
    return h;
  }
}

uint64_t ck_json_hash(const ck_json *v) {
  return hash_value(FNV_OFFSET, v);
}
