/* Internal: the schema tables that describe every reference model, and the engine that
 * validates and canonicalises JSON against them (normalize.c).
 *
 * A model is an ordered list of fields; the order is the reference's declaration order, which
 * is the key order on the wire. Each field has a type and a presence rule that mirrors the
 * pydantic declaration: required, optional (omitted when null), or defaulted (the default is
 * written when the key is absent).
 */
#ifndef CK_PROTOCOL_SCHEMA_H
#define CK_PROTOCOL_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <chatkit/json.h>
#include <chatkit/protocol.h>

typedef enum ck__kind {
  CK__STR,      /* a string; no coercion from other types */
  CK__INT,      /* an integer; lax: integral floats, numeric strings, booleans */
  CK__FLOAT,    /* a number, written as a float; lax: numeric strings */
  CK__BOOL,     /* a boolean; lax: 0/1 and the usual strings */
  CK__DATETIME, /* a timestamp string (or Unix number), written canonically */
  CK__URL,      /* an absolute URL string, normalised */
  CK__ICON,     /* an IconName literal or a vendor:/lucide: name */
  CK__ANY,      /* any JSON, copied as is (nulls inside are kept) */
  CK__DICT,     /* any JSON object, copied as is */
  CK__WIDGET,   /* a widget tree: any JSON object, nulls removed at every depth */
  CK__LITERAL,  /* one of a NULL-terminated list of strings (ref: const char *const *) */
  CK__TAG,      /* the model's own discriminator value (ref: const char *) */
  CK__MODEL,    /* a nested model (ref: const ck__model *) */
  CK__LIST,     /* an array of (ref: const ck__type *) */
  CK__MAP,      /* an object whose values are (ref: const ck__type *) */
  CK__UNION,    /* a tagged union (ref: const ck__union *) */
} ck__kind;

typedef struct ck__type {
  ck__kind kind;
  const void *ref;
} ck__type;

typedef enum ck__presence {
  CK__REQ,     /* must be present and non-null */
  CK__OPT,     /* may be absent or null; omitted from the output when null */
  CK__DEF,     /* absent -> the default; null is rejected */
  CK__REQ_ANY, /* the key must be present; its value may be null (then omitted) */
} ck__presence;

typedef struct ck__field {
  const char *name;
  ck__type type;
  ck__presence presence;
  const char *dflt; /* canonical JSON text of the default for CK__DEF */
} ck__field;

typedef struct ck__model {
  const char *name;
  const ck__field *fields;
  size_t nfields;
} ck__model;

typedef struct ck__variant {
  const char *tag;
  const ck__model *model;
} ck__variant;

typedef struct ck__union {
  const char *disc; /* discriminator key, or NULL: try each variant in order */
  const ck__variant *variants;
  size_t nvariants;
} ck__union;

/* Tables (schema_tables.c). */
extern const ck__union ck__thread_item_union;
extern const ck__union ck__stream_event_union;
extern const ck__union ck__item_update_union;
extern const ck__union ck__task_union;
extern const ck__union ck__attachment_union;
extern const ck__model ck__thread_metadata_model;
extern const ck__model ck__workflow_model;
extern const ck__model ck__assistant_content_model;
extern const ck__model ck__annotation_model;

/* The params model of each request type, indexed by ck_request_type. */
extern const ck__model *const ck__request_params[CK_REQ__COUNT];

/** Validates and canonicalises `in` as `t` into a new tree allocated from `a`. `root` names
 * the value in error paths (e.g. "threads.list.params"). Returns CK_OK, CK_EINVAL (err filled
 * when not NULL) or CK_ENOMEM. */
int ck__normalize(ck_arena *a, const ck__type *t, const ck_json *in, const char *root,
                  ck_json **out, ck_validation_error *err);

/** A copy of the widget tree `in` from `a` with every null removed: object members whose value
 * is null and null array elements, at every depth. Returns NULL when out of memory. */
ck_json *ck__widget_strip_nulls(ck_arena *a, const ck_json *in);

/** ck_request_parse with the raw parse tree in `raw` and the canonical params in `a`, so a
 * caller that keeps the request can drop the raw tree at once (a stream keeps its params for
 * its whole life; the raw body tree would double that memory). */
int ck__request_parse2(ck_arena *raw, ck_arena *a, const char *body, size_t len, ck_request *out,
                       ck_validation_error *err);

/** True when `name` is an IconName (one of the 64 literals, or vendor:/lucide: prefixed). */
int ck__icon_valid(const char *name);

#endif
