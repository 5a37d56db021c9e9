/* The strict JSON parser (see ck_json_parse in chatkit/json.h).
 *
 * Design: a recursive-descent parser over the byte range, bounded by the depth cap so the C
 * stack stays small. Children of an array or object are first collected on a scratch stack
 * shared by the whole parse (heap memory, freed at the end), and copied into an exactly sized
 * arena vector when the container closes: no arena memory is wasted on growth while parsing.
 *
 * Strings are scanned once to find their end (eight bytes at a time while they are plain
 * ASCII), validating UTF-8 on the way, and then copied with one memcpy, or decoded when they
 * contain escapes. Floats are converted with strtod on a NUL-terminated copy of the token;
 * the process never calls setlocale, so strtod runs in the "C" locale and '.' is the decimal
 * point.
 */
#include "json/json_internal.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Objects with more members than this are de-duplicated by sorting instead of by pairwise
 * comparison, so a hostile body with many keys cannot make parsing quadratic. */
#define DEDUP_LINEAR_MAX 16

typedef struct parser {
  ck_arena *a;
  const unsigned char *begin, *p, *end;
  int max_depth;
  int rc; /* the first error (CK_EINVAL or CK_ENOMEM); CK_OK while parsing succeeds */
  ck_json_error *err;
  ck_json **vs; /* scratch stack of array elements */
  size_t vlen, vcap;
  ck__json_member *ms; /* scratch stack of object members */
  size_t mlen, mcap;
} parser;

/* Records the first error at `at` and returns NULL so callers can `return fail(...)`. */
static ck_json *fail(parser *ps, const unsigned char *at, const char *msg) {
  if (ps->rc != CK_OK)
    return NULL;
  ps->rc = CK_EINVAL;
  if (ps->err != NULL) {
    ck_json_error *e = ps->err;
    e->offset = (size_t)(at - ps->begin);
    e->line = 1;
    e->column = 1;
    for (const unsigned char *q = ps->begin; q < at; q++) {
      if (*q == '\n') {
        e->line++;
        e->column = 1;
      } else {
        e->column++;
      }
    }
    snprintf(e->message, sizeof(e->message), "%s", msg);
  }
  return NULL;
}

static ck_json *oom(parser *ps) {
  if (ps->rc == CK_OK) {
    ps->rc = CK_ENOMEM;
    if (ps->err != NULL) {
      ps->err->offset = (size_t)(ps->p - ps->begin);
      ps->err->line = 0;
      ps->err->column = 0;
      snprintf(ps->err->message, sizeof(ps->err->message), "out of memory");
    }
  }
  return NULL;
}

static inline void skip_ws(parser *ps) {
  const unsigned char *p = ps->p, *end = ps->end;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  ps->p = p;
}

/* ---- Strings ---- */

/* Bytes that end the fast scan of a string: '"', '\\', control characters and non-ASCII. */
static inline bool str_special(unsigned char c) {
  return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero when one of the eight bytes of `v` is special (see str_special). Each term sets a
 * byte's high bit for a match; borrows can only mark bytes above a genuine match, so the
 * any-match answer is exact. */
static inline uint64_t swar_special(uint64_t v) {
  uint64_t quote = v ^ (ONES * '"');
  uint64_t bslash = v ^ (ONES * '\\');
  return (((quote - ONES) & ~quote) | ((bslash - ONES) & ~bslash) | ((v - ONES * 0x20) & ~v) | v) &
         HIGHS;
}

/* Length of the valid UTF-8 sequence at `q` (2-4), or 0 when it is invalid: a stray
 * continuation byte, an overlong form, a surrogate (ED A0..BF), a code point above U+10FFFF
 * or a sequence cut short by `end`. */
static inline size_t utf8_seq(const unsigned char *q, const unsigned char *end) {
  unsigned c = q[0];
  size_t left = (size_t)(end - q);
  if (c < 0xC2)
    return 0;
  if (c < 0xE0)
    return left >= 2 && (q[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    if (left < 3 || q[1] < lo || q[1] > hi || (q[2] & 0xC0) != 0x80)
      return 0;
    return 3;
  }
  if (c < 0xF5) {
    unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    if (left < 4 || q[1] < lo || q[1] > hi || (q[2] & 0xC0) != 0x80 || (q[3] & 0xC0) != 0x80)
      return 0;
    return 4;
  }
  return 0;
}

static int hex4(const unsigned char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      d = (c | 0x20) - 'a' + 10;
    else
      return -1;
    v = v * 16 + d;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Decodes the escapes of the string body [s, e) into `o` (which has room for e - s bytes,
 * enough because no escape grows). Returns the decoded length, or SIZE_MAX after reporting
 * an error. UTF-8 outside escapes was validated by the scan. */
static size_t decode_escapes(parser *ps, const unsigned char *s, const unsigned char *e,
                             unsigned char *o) {
  unsigned char *o0 = o;
  while (s < e) {
    const unsigned char *bs = memchr(s, '\\', (size_t)(e - s));
    if (bs == NULL)
      bs = e;
    memcpy(o, s, (size_t)(bs - s));
    o += bs - s;
    s = bs;
    if (s == e)
      break;
    /* The scan guaranteed a byte after every backslash inside the body. */
    unsigned char c = s[1];
    unsigned cp;
    switch (c) {
    case '"':
    case '\\':
    case '/':
      *o++ = c;
      s += 2;
      continue;
    case 'b':
      *o++ = '\b';
      s += 2;
      continue;
    case 'f':
      *o++ = '\f';
      s += 2;
      continue;
    case 'n':
      *o++ = '\n';
      s += 2;
      continue;
    case 'r':
      *o++ = '\r';
      s += 2;
      continue;
    case 't':
      *o++ = '\t';
      s += 2;
      continue;
    case 'u':
      if (e - s < 6 || hex4(s + 2, &cp) != 0) {
        fail(ps, s, "invalid \\u escape in string");
        return SIZE_MAX;
      }
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail(ps, s, "unpaired surrogate escape in string");
        return SIZE_MAX;
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned lo;
        if (e - s < 12 || s[6] != '\\' || s[7] != 'u' || hex4(s + 8, &lo) != 0 || lo < 0xDC00 ||
            lo > 0xDFFF) {
          fail(ps, s, "unpaired surrogate escape in string");
          return SIZE_MAX;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        s += 6;
      }
      o += put_utf8(o, cp);
      s += 6;
      continue;
    default:
      fail(ps, s, "invalid escape in string");
      return SIZE_MAX;
    }
  }
  return (size_t)(o - o0);
}

/* Scans the string whose opening quote is at ps->p. On success stores its body, decoded and
 * NUL-terminated in the arena, in `*out` and `*outlen`. When `node_out` is not NULL the bytes are
 * placed after a STRING node that is returned through *node_out, saving an allocation. */
static int parse_string(parser *ps, bool key, const char **out, size_t *outlen,
                        ck_json **node_out) {
  const unsigned char *open = ps->p;
  const unsigned char *s = open + 1, *q = s, *end = ps->end;
  bool esc = false;
  for (;;) {
    while (end - q >= 8) {
      uint64_t v;
      memcpy(&v, q, 8);
      if (swar_special(v))
        break;
      q += 8;
    }
    while (q < end && !str_special(*q))
      q++;
    if (q >= end) {
      fail(ps, open, "unterminated string");
      return -1;
    }
    unsigned char c = *q;
    if (c == '"')
      break;
    if (c == '\\') {
      if (end - q < 2) {
        fail(ps, open, "unterminated string");
        return -1;
      }
      esc = true;
      q += 2;
      continue;
    }
    if (c < 0x20) {
      fail(ps, q, "control character in string");
      return -1;
    }
    size_t n = utf8_seq(q, end);
    if (n == 0) {
      fail(ps, q, "invalid UTF-8 in string");
      return -1;
    }
    q += n;
  }
  size_t span = (size_t)(q - s);
  char *dst;
  ck_json *node = NULL;
  if (node_out != NULL) {
    node = ck__json_node(ps->a, CK_JSON_STRING, span + 1, &dst);
  } else {
    dst = ck_arena_alloc(ps->a, span + 1);
  }
  if ((node_out != NULL && node == NULL) || (node_out == NULL && dst == NULL)) {
    oom(ps);
    return -1;
  }
  size_t len = span;
  if (!esc) {
    memcpy(dst, s, span);
  } else {
    len = decode_escapes(ps, s, q, (unsigned char *)dst);
    if (len == SIZE_MAX)
      return -1;
  }
  dst[len] = '\0';
  ps->p = q + 1;
  *out = dst;
  *outlen = len;
  if (node_out != NULL) {
    node->u.str.s = dst;
    node->u.str.len = (uint32_t)len; /* below CK__JSON_MAX_LEN: the input is */
    *node_out = node;
  }
  return 0;
}

/* ---- Numbers ---- */

static inline bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

static ck_json *parse_number(parser *ps) {
  const unsigned char *start = ps->p, *p = start, *end = ps->end;
  if (*p == '-')
    p++;
  if (p >= end || !is_digit(*p))
    return fail(ps, start, "invalid number");
  if (*p == '0') {
    p++;
    if (p < end && is_digit(*p))
      return fail(ps, start, "leading zeros are not allowed in numbers");
  } else {
    while (p < end && is_digit(*p))
      p++;
  }
  bool is_float = false;
  if (p < end && *p == '.') {
    is_float = true;
    p++;
    if (p >= end || !is_digit(*p))
      return fail(ps, p, "expected digit after decimal point");
    while (p < end && is_digit(*p))
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    is_float = true;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    if (p >= end || !is_digit(*p))
      return fail(ps, p, "expected digit in exponent");
    while (p < end && is_digit(*p))
      p++;
  }
  ps->p = p;
  size_t n = (size_t)(p - start);
  if (!is_float) {
    ck_json *v = ck__json_make_int(ps->a, (const char *)start, n);
    return v ? v : oom(ps);
  }

  /* strtod needs a NUL-terminated token; the input is not. Short tokens use the stack. */
  char small[64];
  char *tok = small;
  if (n >= sizeof(small)) {
    tok = malloc(n + 1);
    if (tok == NULL)
      return oom(ps);
  }
  memcpy(tok, start, n);
  tok[n] = '\0';
  double d = strtod(tok, NULL);
  if (tok != small)
    free(tok);
  ck_json *v = ck__json_node(ps->a, CK_JSON_FLOAT, 0, NULL);
  if (v == NULL)
    return oom(ps);
  v->u.f = d;
  return v;
}

/* ---- Containers ---- */

static int push_value(parser *ps, ck_json *v) {
  if (ps->vlen == ps->vcap) {
    size_t cap = ps->vcap ? ps->vcap * 2 : 64;
    ck_json **n = realloc(ps->vs, cap * sizeof(*n));
    if (n == NULL)
      return -1;
    ps->vs = n;
    ps->vcap = cap;
  }
  ps->vs[ps->vlen++] = v;
  return 0;
}

static int push_member(parser *ps, const char *key, size_t klen, ck_json *v) {
  if (ps->mlen == ps->mcap) {
    size_t cap = ps->mcap ? ps->mcap * 2 : 32;
    ck__json_member *n = realloc(ps->ms, cap * sizeof(*n));
    if (n == NULL)
      return -1;
    ps->ms = n;
    ps->mcap = cap;
  }
  ps->ms[ps->mlen++] = (ck__json_member){key, klen, v};
  return 0;
}

static int member_ptr_cmp(const void *x, const void *y) {
  const ck__json_member *a = *(const ck__json_member *const *)x;
  const ck__json_member *b = *(const ck__json_member *const *)y;
  if (a->klen != b->klen)
    return a->klen < b->klen ? -1 : 1;
  int c = memcmp(a->key, b->key, a->klen);
  if (c != 0)
    return c;
  /* Equal keys keep their input order, so the first of a run is the first occurrence. */
  return a < b ? -1 : a > b;
}

/* Resolves duplicate keys among the `n` members at `m`, in place: the last value wins and
 * takes the position of the first occurrence. Returns the new count, or SIZE_MAX when out of
 * memory. */
static size_t dedup_members(ck__json_member *m, size_t n) {
  if (n <= DEDUP_LINEAR_MAX) {
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
      size_t j = 0;
      while (j < out && (m[j].klen != m[i].klen || memcmp(m[j].key, m[i].key, m[i].klen) != 0))
        j++;
      if (j < out)
        m[j].val = m[i].val;
      else
        m[out++] = m[i];
    }
    return out;
  }
  ck__json_member **idx = malloc(n * sizeof(*idx));
  if (idx == NULL)
    return SIZE_MAX;
  for (size_t i = 0; i < n; i++)
    idx[i] = &m[i];
  qsort(idx, n, sizeof(*idx), member_ptr_cmp);
  bool dup = false;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && idx[j]->klen == idx[i]->klen &&
           memcmp(idx[j]->key, idx[i]->key, idx[i]->klen) == 0)
      j++;
    if (j - i > 1) {
      /* Mark the later occurrences dead (NULL value) after moving the last value forward. */
      idx[i]->val = idx[j - 1]->val;
      for (size_t k = i + 1; k < j; k++)
        idx[k]->val = NULL;
      dup = true;
    }
    i = j;
  }
  free(idx);
  if (!dup)
    return n;
  size_t out = 0;
  for (size_t i = 0; i < n; i++) {
    if (m[i].val != NULL)
      m[out++] = m[i];
  }
  return out;
}

static ck_json *parse_value(parser *ps, int depth);

static ck_json *parse_array(parser *ps, int depth) {
  const unsigned char *open = ps->p;
  if (depth >= ps->max_depth)
    return fail(ps, open, "nesting too deep");
  ps->p++;
  size_t base = ps->vlen;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
  } else {
    for (;;) {
      ck_json *v = parse_value(ps, depth + 1);
      if (v == NULL)
        return NULL;
      if (push_value(ps, v) != 0)
        return oom(ps);
      skip_ws(ps);
      if (ps->p >= ps->end)
        return fail(ps, ps->p, "unterminated array");
      if (*ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        continue;
      }
      if (*ps->p == ']') {
        ps->p++;
        break;
      }
      return fail(ps, ps->p, "expected ',' or ']' after array element");
    }
  }
  ck_json *arr = ck__json_node(ps->a, CK_JSON_ARRAY, 0, NULL);
  if (arr == NULL)
    return oom(ps);
  size_t n = ps->vlen - base;
  if (n > 0) {
    arr->u.arr.v = ck_arena_alloc(ps->a, n * sizeof(ck_json *));
    if (arr->u.arr.v == NULL)
      return oom(ps);
    memcpy(arr->u.arr.v, ps->vs + base, n * sizeof(ck_json *));
    arr->u.arr.len = arr->u.arr.cap = (uint32_t)n;
  }
  ps->vlen = base;
  return arr;
}

static ck_json *parse_object(parser *ps, int depth) {
  const unsigned char *open = ps->p;
  if (depth >= ps->max_depth)
    return fail(ps, open, "nesting too deep");
  ps->p++;
  size_t base = ps->mlen;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
  } else {
    for (;;) {
      if (ps->p >= ps->end)
        return fail(ps, ps->p, "unterminated object");
      if (*ps->p != '"')
        return fail(ps, ps->p, "expected string key in object");
      const char *key;
      size_t klen;
      if (parse_string(ps, true, &key, &klen, NULL) != 0)
        return NULL;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':')
        return fail(ps, ps->p, "expected ':' after object key");
      ps->p++;
      skip_ws(ps);
      ck_json *v = parse_value(ps, depth + 1);
      if (v == NULL)
        return NULL;
      if (push_member(ps, key, klen, v) != 0)
        return oom(ps);
      skip_ws(ps);
      if (ps->p >= ps->end)
        return fail(ps, ps->p, "unterminated object");
      if (*ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        continue;
      }
      if (*ps->p == '}') {
        ps->p++;
        break;
      }
      return fail(ps, ps->p, "expected ',' or '}' after object member");
    }
  }
  ck_json *obj = ck__json_node(ps->a, CK_JSON_OBJECT, 0, NULL);
  if (obj == NULL)
    return oom(ps);
  size_t n = ps->mlen - base;
  if (n > 0) {
    n = dedup_members(ps->ms + base, n);
    if (n == SIZE_MAX)
      return oom(ps);
    obj->u.obj.m = ck_arena_alloc(ps->a, n * sizeof(ck__json_member));
    if (obj->u.obj.m == NULL)
      return oom(ps);
    memcpy(obj->u.obj.m, ps->ms + base, n * sizeof(ck__json_member));
    obj->u.obj.len = obj->u.obj.cap = (uint32_t)n;
  }
  ps->mlen = base;
  return obj;
}

static ck_json *parse_literal(parser *ps, const char *word, size_t n, ck_json_type t, bool b) {
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return fail(ps, ps->p, "invalid literal");
  ps->p += n;
  ck_json *v = ck__json_node(ps->a, t, 0, NULL);
  if (v == NULL)
    return oom(ps);
  v->u.b = b;
  return v;
}

static ck_json *parse_value(parser *ps, int depth) {
  if (ps->p >= ps->end)
    return fail(ps, ps->p, "unexpected end of input");
  switch (*ps->p) {
  case '{':
    return parse_object(ps, depth);
  case '[':
    return parse_array(ps, depth);
  case '"': {
    const char *s;
    size_t n;
    ck_json *v = NULL;
    if (parse_string(ps, false, &s, &n, &v) != 0)
      return NULL;
    return v;
  }
  case 't':
    return parse_literal(ps, "true", 4, CK_JSON_BOOL, true);
  case 'f':
    return parse_literal(ps, "false", 5, CK_JSON_BOOL, false);
  case 'n':
    return parse_literal(ps, "null", 4, CK_JSON_NULL, false);
  case '-':
  case '0':
  case '1':
  case '2':
  case '3':
  case '4':
  case '5':
  case '6':
  case '7':
  case '8':
  case '9':
    return parse_number(ps);
  default:
    return fail(ps, ps->p, "unexpected character");
  }
}

int ck_json_parse(ck_arena *a, const char *text, size_t len, int max_depth, ck_json **out,
                  ck_json_error *err) {
  parser ps = {0};
  /* A NULL text is only acceptable when empty; point it at "" so offsets stay defined. */
  bool bad_text = text == NULL && len > 0;
  if (text == NULL)
    text = "";
  ps.a = a;
  ps.begin = ps.p = (const unsigned char *)text;
  ps.end = ps.begin + len;
  ps.err = err;
  if (a == NULL || out == NULL || bad_text || max_depth < 0) {
    fail(&ps, ps.begin, "invalid arguments");
    goto fail;
  }
  if (len > CK__JSON_MAX_LEN) {
    /* Node lengths are 32-bit; no string, array or object can be longer than its text. */
    fail(&ps, ps.begin, "input too large");
    goto fail;
  }
  ps.max_depth = max_depth == 0 ? CK_JSON_DEFAULT_MAX_DEPTH : max_depth;
  if (ps.max_depth > CK_JSON_MAX_DEPTH)
    ps.max_depth = CK_JSON_MAX_DEPTH;
  if (len == 0) {
    /* An empty text: keep `ps.p` valid for the error position. */
    fail(&ps, ps.begin, "unexpected end of input");
    goto fail;
  }
  skip_ws(&ps);
  ck_json *v = parse_value(&ps, 0);
  if (v == NULL)
    goto fail;
  skip_ws(&ps);
  if (ps.p != ps.end) {
    fail(&ps, ps.p, "unexpected data after JSON value");
    goto fail;
  }
  free(ps.vs);
  free(ps.ms);
  *out = v;
  return CK_OK;
fail:
  free(ps.vs);
  free(ps.ms);
  return ps.rc != CK_OK ? ps.rc : CK_EINVAL;
}
