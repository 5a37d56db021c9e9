/* The validation and canonicalisation engine behind ck_protocol_normalize and
 * ck_request_parse: it walks a JSON value and a schema type together and builds the canonical
 * tree, applying pydantic's rules (lax coercions, defaults, null omission). */
#include "protocol/datetime.h"
#include "protocol/schema.h"
#include "protocol/url.h"

#include <chatkit/error.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A location in the input, as a linked list from the leaf up, so building it costs nothing
 * unless an error message needs it. */
typedef struct path {
  const struct path *up;
  const char *key; /* member name, or NULL for an array index */
  size_t index;
} path;

static void render_path(const path *p, char *out, size_t cap) {
  const path *segs[32];
  size_t n = 0;
  for (const path *q = p; q != NULL && n < 32; q = q->up)
    segs[n++] = q;
  size_t len = 0;
  out[0] = '\0';
  while (n > 0 && len + 1 < cap) {
    const path *s = segs[--n];
    int w;
    if (s->key != NULL)
      w = snprintf(out + len, cap - len, "%s%s", len ? "." : "", s->key);
    else
      w = snprintf(out + len, cap - len, "[%zu]", s->index);
    if (w < 0)
      break;
    len += (size_t)w;
    if (len >= cap)
      len = cap - 1;
  }
}

static int fail(ck_validation_error *err, const path *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ck_validation_error *err, const path *p, const char *fmt, ...) {
  if (err != NULL) {
    render_path(p, err->path, sizeof(err->path));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
  }
  return CK_EINVAL;
}

static const char *type_name(const ck_json *v) {
  switch (ck_json_typeof(v)) {
  case CK_JSON_NULL:
    return "null";
  case CK_JSON_BOOL:
    return "a boolean";
  case CK_JSON_INT:
  case CK_JSON_FLOAT:
    return "a number";
  case CK_JSON_STRING:
    return "a string";
  case CK_JSON_ARRAY:
    return "an array";
  case CK_JSON_OBJECT:
    return "an object";
  default:
    return "raw JSON";
  }
}

ck_json *ck__widget_strip_nulls(ck_arena *a, const ck_json *in) {
  switch (ck_json_typeof(in)) {
  case CK_JSON_OBJECT: {
    ck_json *o = ck_json_object(a);
    if (o == NULL)
      return NULL;
    size_t n = ck_json_object_size(in);
    for (size_t i = 0; i < n; i++) {
      ck_json *v = ck_json_object_value(in, i);
      if (ck_json_is_null(v))
        continue;
      ck_json *c = ck__widget_strip_nulls(a, v);
      if (c == NULL || ck_json_object_setn(o, ck_json_object_key(in, i),
                                           ck_json_object_key_len(in, i), c) != CK_OK)
        return NULL;
    }
    return o;
  }
  case CK_JSON_ARRAY: {
    ck_json *arr = ck_json_array(a);
    if (arr == NULL)
      return NULL;
    size_t n = ck_json_array_size(in);
    for (size_t i = 0; i < n; i++) {
      ck_json *v = ck_json_array_get(in, i);
      if (ck_json_is_null(v))
        continue;
      ck_json *c = ck__widget_strip_nulls(a, v);
      if (c == NULL || ck_json_array_append(arr, c) != CK_OK)
        return NULL;
    }
    return arr;
  }
  default:
    return ck_json_copy(a, in);
  }
}

/* Builds the value of a default from its canonical text. The common shapes are built
 * directly; anything else goes through the parser. */
static ck_json *make_default(ck_arena *a, const char *text) {
  size_t n = strlen(text);
  if (n == 2 && text[0] == '[')
    return ck_json_array(a);
  if (n == 2 && text[0] == '{')
    return ck_json_object(a);
  if (strcmp(text, "false") == 0)
    return ck_json_bool(a, false);
  if (strcmp(text, "true") == 0)
    return ck_json_bool(a, true);
  if (text[0] == '"' && memchr(text + 1, '\\', n - 1) == NULL)
    return ck_json_strn(a, text + 1, n - 2);
  ck_json *v = NULL;
  if (ck_json_parse(a, text, n, 0, &v, NULL) != CK_OK)
    return NULL;
  return v;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* pydantic-core's str_as_int: surrounding whitespace, one leading sign ('+' dropped),
 * leading zeros, single underscores between digits ("1_000") and an all-zero fraction ("5.0",
 * "5.00", but not "5.") are accepted. Writes canonical digits (optional '-', no leading zeros)
 * into `out` and returns 0, or -1 when `s` is not such an integer. */
static int lax_int_digits(const char *s, size_t n, char *out, size_t cap, size_t *outlen) {
  while (n > 0 && is_space(*s)) {
    s++;
    n--;
  }
  while (n > 0 && is_space(s[n - 1]))
    n--;
  size_t len = 0;
  if (n > 0 && (s[0] == '-' || s[0] == '+')) {
    if (s[0] == '-')
      out[len++] = '-';
    s++;
    n--;
  }
  /* Drop an all-zero fraction first; whatever precedes the dot must then be digits. */
  const char *dot = memchr(s, '.', n);
  if (dot != NULL) {
    size_t i = (size_t)(dot - s) + 1;
    if (i == n)
      return -1;
    for (; i < n; i++)
      if (s[i] != '0')
        return -1;
    n = (size_t)(dot - s);
  }
  if (n == 0 || s[0] == '_' || s[n - 1] == '_')
    return -1;
  size_t ndigits = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '_') {
      if (s[i + 1] == '_')
        return -1;
      continue;
    }
    if (s[i] < '0' || s[i] > '9')
      return -1;
    if (ndigits == 0 && s[i] == '0' && i + 1 < n)
      continue; /* a leading zero (the last digit is always kept) */
    if (len + 1 >= cap)
      return -1;
    out[len++] = s[i];
    ndigits++;
  }
  if (ndigits == 0)
    return -1;
  *outlen = len;
  return 0;
}

/* pydantic's lax integer: an int, an integral float, a numeric string or a boolean. */
static int norm_int(ck_arena *a, const ck_json *in, const path *p, ck_json **out,
                    ck_validation_error *err) {
  switch (ck_json_typeof(in)) {
  case CK_JSON_INT:
    *out = ck_json_copy(a, in);
    break;
  case CK_JSON_BOOL:
    *out = ck_json_int(a, ck_json_bool_value(in) ? 1 : 0);
    break;
  case CK_JSON_FLOAT: {
    double d = ck_json_number_value(in);
    if (!isfinite(d) || d != floor(d))
      return fail(err, p, "expected an integer, got a number with a fractional part");
    /* pydantic-core's float_as_int only takes floats strictly inside the int64 range. */
    if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0))
      return fail(err, p, "expected an integer, got a number too large to be one");
    *out = ck_json_int(a, (int64_t)d);
    break;
  }
  case CK_JSON_STRING: {
    /* Python caps int() at 4300 digits; so does pydantic-core. */
    char digits[4304];
    size_t len = 0;
    if (lax_int_digits(ck_json_str_value(in), ck_json_str_len(in), digits, sizeof(digits), &len) !=
        0)
      return fail(err, p, "expected an integer, got a string that is not one");
    if (len == 2 && digits[0] == '-' && digits[1] == '0')
      *out = ck_json_int(a, 0);
    else
      *out = ck_json_int_digits(a, digits, len);
    break;
  }
  default:
    return fail(err, p, "expected an integer, got %s", type_name(in));
  }
  return *out ? CK_OK : CK_ENOMEM;
}

static int norm_float(ck_arena *a, const ck_json *in, const path *p, ck_json **out,
                      ck_validation_error *err) {
  switch (ck_json_typeof(in)) {
  case CK_JSON_INT:
  case CK_JSON_FLOAT:
    *out = ck_json_float(a, ck_json_number_value(in));
    break;
  case CK_JSON_BOOL:
    *out = ck_json_float(a, ck_json_bool_value(in) ? 1.0 : 0.0);
    break;
  case CK_JSON_STRING: {
    char buf[64];
    size_t n = ck_json_str_len(in);
    if (n == 0 || n >= sizeof(buf))
      return fail(err, p, "expected a number, got a string that is not one");
    memcpy(buf, ck_json_str_value(in), n);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double d = strtod(buf, &end);
    while (end && is_space(*end))
      end++;
    if (end == buf || *end != '\0')
      return fail(err, p, "expected a number, got a string that is not one");
    *out = ck_json_float(a, d);
    break;
  }
  default:
    return fail(err, p, "expected a number, got %s", type_name(in));
  }
  return *out ? CK_OK : CK_ENOMEM;
}

static int norm_bool(ck_arena *a, const ck_json *in, const path *p, ck_json **out,
                     ck_validation_error *err) {
  static const char *const yes[] = {"1", "on", "t", "true", "y", "yes", NULL};
  static const char *const no[] = {"0", "off", "f", "false", "n", "no", NULL};
  int v = -1;
  switch (ck_json_typeof(in)) {
  case CK_JSON_BOOL:
    v = ck_json_bool_value(in);
    break;
  case CK_JSON_INT:
  case CK_JSON_FLOAT: {
    double d = ck_json_number_value(in);
    if (d == 0.0 || d == 1.0)
      v = d == 1.0;
    break;
  }
  case CK_JSON_STRING: {
    const char *s = ck_json_str_value(in);
    for (size_t i = 0; yes[i] && v < 0; i++)
      if (strcasecmp(s, yes[i]) == 0)
        v = 1;
    for (size_t i = 0; no[i] && v < 0; i++)
      if (strcasecmp(s, no[i]) == 0)
        v = 0;
    break;
  }
  default:
    break;
  }
  if (v < 0)
    return fail(err, p, "expected a boolean, got %s", type_name(in));
  *out = ck_json_bool(a, v);
  return *out ? CK_OK : CK_ENOMEM;
}

static int norm_datetime(ck_arena *a, const ck_json *in, const path *p, ck_json **out,
                         ck_validation_error *err) {
  ck__datetime dt;
  if (ck_json_is_string(in)) {
    if (ck__datetime_parse(ck_json_str_value(in), ck_json_str_len(in), &dt) != 0)
      return fail(err, p, "expected a datetime, got \"%.60s\"", ck_json_str_value(in));
  } else if (ck_json_is_number(in)) {
    if (ck__datetime_from_unix(ck_json_number_value(in), &dt) != 0)
      return fail(err, p, "datetime out of range");
  } else {
    return fail(err, p, "expected a datetime string, got %s", type_name(in));
  }
  char text[CK_DATETIME_MAX];
  size_t n = ck__datetime_format(&dt, text);
  *out = ck_json_strn(a, text, n);
  return *out ? CK_OK : CK_ENOMEM;
}

static int norm_model(ck_arena *a, const ck__model *m, const ck_json *in, const path *p,
                      ck_json **out, ck_validation_error *err);

static int norm_union(ck_arena *a, const ck__union *u, const ck_json *in, const path *p,
                      ck_json **out, ck_validation_error *err) {
  if (!ck_json_is_object(in))
    return fail(err, p, "expected an object, got %s", type_name(in));
  if (u->disc == NULL) {
    int rc = CK_EINVAL;
    for (size_t i = 0; i < u->nvariants; i++) {
      rc = norm_model(a, u->variants[i].model, in, p, out, err);
      if (rc != CK_EINVAL)
        return rc;
    }
    return rc;
  }
  const ck_json *tag = ck_json_object_get(in, u->disc);
  if (tag == NULL)
    return fail(err, p, "missing discriminator \"%s\"", u->disc);
  const char *s = ck_json_str_value(tag);
  if (s != NULL) {
    for (size_t i = 0; i < u->nvariants; i++)
      if (strcmp(s, u->variants[i].tag) == 0)
        return norm_model(a, u->variants[i].model, in, p, out, err);
    return fail(err, p, "unknown %s \"%.60s\"", u->disc, s);
  }
  return fail(err, p, "\"%s\" must be a string, got %s", u->disc, type_name(tag));
}

static int norm_value(ck_arena *a, const ck__type *t, const ck_json *in, const path *p,
                      ck_json **out, ck_validation_error *err) {
  switch (t->kind) {
  case CK__STR:
    if (!ck_json_is_string(in))
      return fail(err, p, "expected a string, got %s", type_name(in));
    *out = ck_json_copy(a, in);
    break;
  case CK__INT:
    return norm_int(a, in, p, out, err);
  case CK__FLOAT:
    return norm_float(a, in, p, out, err);
  case CK__BOOL:
    return norm_bool(a, in, p, out, err);
  case CK__DATETIME:
    return norm_datetime(a, in, p, out, err);
  case CK__URL: {
    if (!ck_json_is_string(in))
      return fail(err, p, "expected a URL string, got %s", type_name(in));
    char *u = NULL;
    if (ck__url_normalize(a, ck_json_str_value(in), ck_json_str_len(in), &u) != 0)
      return fail(err, p, "expected an absolute URL, got \"%.60s\"", ck_json_str_value(in));
    *out = ck_json_str(a, u);
    break;
  }
  case CK__ICON:
    if (!ck_json_is_string(in) || !ck__icon_valid(ck_json_str_value(in)))
      return fail(err, p, "expected an icon name");
    *out = ck_json_copy(a, in);
    break;
  case CK__ANY:
    *out = ck_json_copy(a, in);
    break;
  case CK__DICT:
    if (!ck_json_is_object(in))
      return fail(err, p, "expected an object, got %s", type_name(in));
    *out = ck_json_copy(a, in);
    break;
  case CK__WIDGET: {
    if (!ck_json_is_object(in))
      return fail(err, p, "expected a widget object, got %s", type_name(in));
    const char *type = ck_json_object_get_str(in, "type");
    if (type == NULL)
      return fail(err, p, "a widget component needs a string \"type\"");
    if (t->ref == NULL && strcmp(type, "Card") != 0 && strcmp(type, "ListView") != 0 &&
        strcmp(type, "Basic") != 0)
      return fail(err, p, "a widget root must be a Card, ListView or Basic, not \"%.40s\"", type);
    *out = ck__widget_strip_nulls(a, in);
    break;
  }
  case CK__LITERAL: {
    const char *s = ck_json_str_value(in);
    const char *const *lits = t->ref;
    if (s != NULL)
      for (size_t i = 0; lits[i] != NULL; i++)
        if (strcmp(s, lits[i]) == 0) {
          *out = ck_json_copy(a, in);
          return *out ? CK_OK : CK_ENOMEM;
        }
    return fail(err, p, "expected one of \"%s\"%s", lits[0], lits[1] ? ", ..." : "");
  }
  case CK__TAG: {
    const char *s = ck_json_str_value(in);
    if (s == NULL || strcmp(s, (const char *)t->ref) != 0)
      return fail(err, p, "expected \"%s\"", (const char *)t->ref);
    *out = ck_json_copy(a, in);
    break;
  }
  case CK__MODEL:
    return norm_model(a, t->ref, in, p, out, err);
  case CK__LIST: {
    if (!ck_json_is_array(in))
      return fail(err, p, "expected a list, got %s", type_name(in));
    ck_json *arr = ck_json_array(a);
    if (arr == NULL)
      return CK_ENOMEM;
    size_t n = ck_json_array_size(in);
    for (size_t i = 0; i < n; i++) {
      path child = {p, NULL, i};
      ck_json *v = NULL;
      int rc = norm_value(a, t->ref, ck_json_array_get(in, i), &child, &v, err);
      if (rc != CK_OK)
        return rc;
      if (ck_json_array_append(arr, v) != CK_OK)
        return CK_ENOMEM;
    }
    *out = arr;
    break;
  }
  case CK__MAP: {
    if (!ck_json_is_object(in))
      return fail(err, p, "expected an object, got %s", type_name(in));
    ck_json *obj = ck_json_object(a);
    if (obj == NULL)
      return CK_ENOMEM;
    size_t n = ck_json_object_size(in);
    for (size_t i = 0; i < n; i++) {
      path child = {p, ck_json_object_key(in, i), 0};
      ck_json *v = NULL;
      int rc = norm_value(a, t->ref, ck_json_object_value(in, i), &child, &v, err);
      if (rc != CK_OK)
        return rc;
      if (ck_json_object_setn(obj, ck_json_object_key(in, i), ck_json_object_key_len(in, i), v) !=
          CK_OK)
        return CK_ENOMEM;
    }
    *out = obj;
    break;
  }
  case CK__UNION:
    return norm_union(a, t->ref, in, p, out, err);
  }
  return *out ? CK_OK : CK_ENOMEM;
}

static int norm_model(ck_arena *a, const ck__model *m, const ck_json *in, const path *p,
                      ck_json **out, ck_validation_error *err) {
  if (!ck_json_is_object(in))
    return fail(err, p, "expected an object, got %s", type_name(in));
  ck_json *obj = ck_json_object(a);
  if (obj == NULL)
    return CK_ENOMEM;
  for (size_t i = 0; i < m->nfields; i++) {
    const ck__field *f = &m->fields[i];
    const ck_json *v = ck_json_object_get(in, f->name);
    path child = {p, f->name, 0};
    ck_json *nv = NULL;
    if (v == NULL) {
      if (f->type.kind == CK__TAG) {
        nv = ck_json_str(a, f->type.ref); /* a literal field with its only value as default */
      } else if (f->presence == CK__DEF) {
        nv = make_default(a, f->dflt);
      } else if (f->presence == CK__OPT) {
        continue;
      } else {
        return fail(err, &child, "field required");
      }
    } else if (ck_json_is_null(v)) {
      if (f->presence == CK__OPT || f->presence == CK__REQ_ANY)
        continue;
      return fail(err, &child, "must not be null");
    } else {
      int rc = norm_value(a, &f->type, v, &child, &nv, err);
      if (rc != CK_OK)
        return rc;
    }
    if (nv == NULL || ck_json_object_set(obj, f->name, nv) != CK_OK)
      return CK_ENOMEM;
  }
  *out = obj;
  return CK_OK;
}

int ck__normalize(ck_arena *a, const ck__type *t, const ck_json *in, const char *root,
                  ck_json **out, ck_validation_error *err) {
  path p = {NULL, root, 0};
  *out = NULL;
  return norm_value(a, t, in, root ? &p : NULL, out, err);
}

/* Appendix A of the protocol notes: the 64 IconName literals. */
static const char *const icon_names[] = {"agent",
                                         "analytics",
                                         "atom",
                                         "batch",
                                         "bolt",
                                         "book-open",
                                         "book-closed",
                                         "book-clock",
                                         "bug",
                                         "calendar",
                                         "chart",
                                         "check",
                                         "check-circle",
                                         "check-circle-filled",
                                         "chevron-left",
                                         "chevron-right",
                                         "circle-question",
                                         "clock",
                                         "compass",
                                         "confetti",
                                         "cube",
                                         "desktop",
                                         "document",
                                         "dot",
                                         "dots-horizontal",
                                         "dots-vertical",
                                         "empty-circle",
                                         "external-link",
                                         "globe",
                                         "keys",
                                         "lab",
                                         "images",
                                         "info",
                                         "lifesaver",
                                         "lightbulb",
                                         "mail",
                                         "map-pin",
                                         "maps",
                                         "mobile",
                                         "name",
                                         "notebook",
                                         "notebook-pencil",
                                         "page-blank",
                                         "phone",
                                         "play",
                                         "plus",
                                         "profile",
                                         "profile-card",
                                         "reload",
                                         "star",
                                         "star-filled",
                                         "search",
                                         "sparkle",
                                         "sparkle-double",
                                         "square-code",
                                         "square-image",
                                         "square-text",
                                         "suitcase",
                                         "settings-slider",
                                         "user",
                                         "wreath",
                                         "write",
                                         "write-alt",
                                         "write-alt2",
                                         NULL};

int ck__icon_valid(const char *name) {
  if (name == NULL)
    return 0;
  if (strncmp(name, "vendor:", 7) == 0 || strncmp(name, "lucide:", 7) == 0)
    return 1;
  for (size_t i = 0; icon_names[i] != NULL; i++)
    if (strcmp(name, icon_names[i]) == 0)
      return 1;
  return 0;
}
