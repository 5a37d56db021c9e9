/* The widget diff of the reference's stream_widget helper (protocol.md §8.5). */
#include <chatkit/error.h>
#include <chatkit/widgets.h>

#include <stdio.h>
#include <string.h>

/* A value that is absent and a value that is null are the same to the diff. */
static const ck_json *member(const ck_json *obj, const char *key) {
  const ck_json *v = ck_json_object_get(obj, key);
  return ck_json_is_null(v) ? NULL : v;
}

static bool same(const ck_json *x, const ck_json *y) {
  if (x == NULL || y == NULL)
    return x == y;
  return ck_json_equal(x, y);
}

/* Text and Markdown with a string value are the only components whose value streams. */
static bool is_streaming_text(const ck_json *c) {
  const char *type = ck_json_object_get_str(c, "type");
  return type != NULL && (strcmp(type, "Text") == 0 || strcmp(type, "Markdown") == 0) &&
         ck_json_is_string(ck_json_object_get(c, "value"));
}

static bool has_prefix(const ck_json *s, const ck_json *prefix) {
  size_t n = ck_json_str_len(prefix);
  return ck_json_str_len(s) >= n && memcmp(ck_json_str_value(s), ck_json_str_value(prefix), n) == 0;
}

static bool needs_replace(const ck_json *b, const ck_json *a);

static bool differs(const ck_json *x, const ck_json *y, bool via_children) {
  if (ck_json_is_array(x) && ck_json_is_array(y)) {
    size_t n = ck_json_array_size(x);
    if (n != ck_json_array_size(y))
      return true;
    for (size_t i = 0; i < n; i++)
      if (differs(ck_json_array_get(x, i), ck_json_array_get(y, i), via_children))
        return true;
    return false;
  }
  if (same(x, y))
    return false;
  if (via_children && ck_json_is_object(x) && ck_json_is_object(y))
    return needs_replace(x, y);
  return true;
}

static bool key_differs(const ck_json *b, const ck_json *a, const char *key) {
  const ck_json *bv = member(b, key), *av = member(a, key);
  if (strcmp(key, "value") == 0 && is_streaming_text(b) && is_streaming_text(a) &&
      has_prefix(av, bv))
    return false;
  return differs(bv, av, strcmp(key, "children") == 0);
}

static bool needs_replace(const ck_json *b, const ck_json *a) {
  static const char *const ident[] = {"type", "id", "key"};
  for (size_t i = 0; i < 3; i++)
    if (!same(member(b, ident[i]), member(a, ident[i])))
      return true;
  for (size_t i = 0; i < ck_json_object_size(b); i++)
    if (key_differs(b, a, ck_json_object_key(b, i)))
      return true;
  for (size_t i = 0; i < ck_json_object_size(a); i++) {
    const char *k = ck_json_object_key(a, i);
    if (ck_json_object_get(b, k) == NULL && key_differs(b, a, k))
      return true;
  }
  return false;
}

/* Pre-order walk through array children only, collecting streaming text with an id. */
static int collect(const ck_json *node, const ck_json **out, size_t *n, size_t cap) {
  if (!ck_json_is_object(node))
    return CK_OK;
  const char *id = ck_json_object_get_str(node, "id");
  if (is_streaming_text(node) && id != NULL && id[0] != '\0') {
    if (*n == cap)
      return CK_ETOOBIG;
    out[(*n)++] = node;
  }
  const ck_json *children = ck_json_object_get(node, "children");
  for (size_t i = 0; i < ck_json_array_size(children); i++) {
    int rc = collect(ck_json_array_get(children, i), out, n, cap);
    if (rc != CK_OK)
      return rc;
  }
  return CK_OK;
}

/* The id is cut to 40 bytes so the longest message (113 bytes) still fits in err->message; a
 * Release build (-O3) proves the bound and would otherwise fail -Werror=format-truncation. */
static int diff_error(ck_validation_error *err, const char *id, const char *what) {
  if (err != NULL) {
    snprintf(err->path, sizeof(err->path), "widget");
    snprintf(err->message, sizeof(err->message), "Node %.40s %s", id, what);
  }
  return CK_EINVAL;
}

#define MAX_TEXT_NODES 256

int ck_widget_diff(ck_arena *a, const ck_json *before, const ck_json *after, ck_json **updates,
                   ck_validation_error *err) {
  ck_json *list = ck_json_array(a);
  if (list == NULL)
    return CK_ENOMEM;
  *updates = list;
  if (needs_replace(before, after)) {
    ck_json *u = ck_json_object(a);
    if (u == NULL || ck_json_object_set(u, "type", ck_json_str(a, "widget.root.updated")) ||
        ck_json_object_set(u, "widget", ck_json_copy(a, after)) || ck_json_array_append(list, u))
      return CK_ENOMEM;
    return CK_OK;
  }
  const ck_json *bnodes[MAX_TEXT_NODES], *anodes[MAX_TEXT_NODES];
  size_t nb = 0, na = 0;
  if (collect(before, bnodes, &nb, MAX_TEXT_NODES) != CK_OK ||
      collect(after, anodes, &na, MAX_TEXT_NODES) != CK_OK)
    return diff_error(err, "", "limit: too many streaming text components");
  for (size_t i = 0; i < na; i++) {
    const char *id = ck_json_object_get_str(anodes[i], "id");
    const ck_json *prev = NULL;
    for (size_t k = 0; k < nb && prev == NULL; k++)
      if (strcmp(ck_json_object_get_str(bnodes[k], "id"), id) == 0)
        prev = bnodes[k];
    if (prev == NULL)
      return diff_error(err, id,
                        "was not present when the widget was initially rendered. All nodes "
                        "with ID must persist across all widget updates.");
    const ck_json *bv = ck_json_object_get(prev, "value");
    const ck_json *av = ck_json_object_get(anodes[i], "value");
    if (ck_json_equal(bv, av))
      continue;
    if (!has_prefix(av, bv))
      return diff_error(err, id, "text is not a prefix of the new text");
    size_t skip = ck_json_str_len(bv);
    const ck_json *streaming = ck_json_object_get(anodes[i], "streaming");
    bool done = !(ck_json_is_bool(streaming) && ck_json_bool_value(streaming));
    ck_json *u = ck_json_object(a);
    if (u == NULL ||
        ck_json_object_set(u, "type", ck_json_str(a, "widget.streaming_text.value_delta")) ||
        ck_json_object_set(u, "component_id", ck_json_str(a, id)) ||
        ck_json_object_set(
            u, "delta",
            ck_json_strn(a, ck_json_str_value(av) + skip, ck_json_str_len(av) - skip)) ||
        ck_json_object_set(u, "done", ck_json_bool(a, done)) || ck_json_array_append(list, u))
      return CK_ENOMEM;
  }
  return CK_OK;
}
