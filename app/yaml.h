/* The config file as JSON: libyaml's document turned into a ck_json tree, with the line each
 * value came from so that errors can name it. */
#ifndef CK_APP_YAML_H
#define CK_APP_YAML_H

#include <chatkit/json.h>

typedef struct app_yaml app_yaml;

/** Loads `path`. Plain scalars become JSON true/false/null/numbers when they read as such
 * (YAML 1.2 core schema), quoted ones stay strings. Returns 0, or 2 after printing
 * "PATH:LINE:COL: problem" to stderr. */
int app_yaml_load(const char *path, app_yaml **out);

/** The document's root value (NULL for an empty file). */
ck_json *app_yaml_root(app_yaml *y);

/** The 1-based line of `v` (a value of this document), or 0 when unknown. */
int app_yaml_line(const app_yaml *y, const ck_json *v);

/** The file name, for messages. */
const char *app_yaml_path(const app_yaml *y);

/** Frees the document. NULL is a no-op. */
void app_yaml_free(app_yaml *y);

#endif
