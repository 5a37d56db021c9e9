/* YAML config files as JSON trees (see yaml.h). */
#include "yaml.h"

#include <chatkit/error.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct line_entry {
  const ck_json *v;
  int line;
} line_entry;

struct app_yaml {
  ck_arena *a;
  ck_json *root;
  line_entry *lines;
  size_t nlines, cap;
  char path[1024];
};

static void remember(app_yaml *y, const ck_json *v, int line) {
  if (y->nlines == y->cap) {
    size_t cap = y->cap ? y->cap * 2 : 64;
    line_entry *n = realloc(y->lines, cap * sizeof(*n));
    if (n == NULL)
      return;
    y->lines = n;
    y->cap = cap;
  }
  y->lines[y->nlines++] = (line_entry){v, line};
}

/* A plain scalar that reads as a JSON literal becomes one; anything else is a string. */
static ck_json *scalar(ck_arena *a, const yaml_node_t *n) {
  const char *s = (const char *)n->data.scalar.value;
  size_t len = n->data.scalar.length;
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return ck_json_strn(a, s, len);
  if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0)
    return ck_json_bool(a, true);
  if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0)
    return ck_json_bool(a, false);
  if (len == 0 || strcmp(s, "null") == 0 || strcmp(s, "~") == 0)
    return ck_json_null(a);
  ck_json *num = NULL;
  if ((s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) &&
      ck_json_parse(a, s, len, 1, &num, NULL) == CK_OK && ck_json_is_number(num))
    return num;
  return ck_json_strn(a, s, len);
}

static ck_json *convert(app_yaml *y, yaml_document_t *doc, yaml_node_t *n, int depth) {
  ck_json *v = NULL;
  if (n == NULL || depth > 64)
    return NULL;
  switch (n->type) {
  case YAML_SCALAR_NODE:
    v = scalar(y->a, n);
    break;
  case YAML_SEQUENCE_NODE:
    v = ck_json_array(y->a);
    for (yaml_node_item_t *it = n->data.sequence.items.start; v && it < n->data.sequence.items.top;
         it++) {
      ck_json *e = convert(y, doc, yaml_document_get_node(doc, *it), depth + 1);
      if (e == NULL || ck_json_array_append(v, e) != CK_OK)
        return NULL;
    }
    break;
  case YAML_MAPPING_NODE:
    v = ck_json_object(y->a);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; v && p < n->data.mapping.pairs.top;
         p++) {
      yaml_node_t *k = yaml_document_get_node(doc, p->key);
      ck_json *e = convert(y, doc, yaml_document_get_node(doc, p->value), depth + 1);
      if (k == NULL || k->type != YAML_SCALAR_NODE || e == NULL ||
          ck_json_object_set(v, (const char *)k->data.scalar.value, e) != CK_OK)
        return NULL;
    }
    break;
  default:
    return NULL;
  }
  if (v != NULL)
    remember(y, v, (int)n->start_mark.line + 1);
  return v;
}

int app_yaml_load(const char *path, app_yaml **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "chatkit-server: cannot open config file %s: %s\n", path, strerror(errno));
    return 2;
  }
  app_yaml *y = calloc(1, sizeof(*y));
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc = 0;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  if (y == NULL || (y->a = ck_arena_new(0)) == NULL) {
    fprintf(stderr, "chatkit-server: out of memory\n");
    rc = 2;
    goto done;
  }
  snprintf(y->path, sizeof(y->path), "%s", path);
  if (!yaml_parser_load(&parser, &doc)) {
    fprintf(stderr, "chatkit-server: %s:%zu:%zu: %s\n", path, parser.problem_mark.line + 1,
            parser.problem_mark.column + 1, parser.problem ? parser.problem : "invalid YAML");
    rc = 2;
    goto done;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root != NULL) {
    y->root = convert(y, &doc, root, 0);
    if (y->root == NULL) {
      fprintf(stderr,
              "chatkit-server: %s: unsupported YAML (aliases, non-scalar keys or nesting "
              "deeper than 64)\n",
              path);
      rc = 2;
    }
  }
  yaml_document_delete(&doc);
done:
  yaml_parser_delete(&parser);
  fclose(f);
  if (rc != 0) {
    app_yaml_free(y);
    return rc;
  }
  *out = y;
  return 0;
}

ck_json *app_yaml_root(app_yaml *y) {
  return y ? y->root : NULL;
}

int app_yaml_line(const app_yaml *y, const ck_json *v) {
  for (size_t i = 0; y && i < y->nlines; i++)
    if (y->lines[i].v == v)
      return y->lines[i].line;
  return 0;
}

const char *app_yaml_path(const app_yaml *y) {
  return y ? y->path : "";
}

void app_yaml_free(app_yaml *y) {
  if (y == NULL)
    return;
  ck_arena_free(y->a);
  free(y->lines);
  free(y);
}
