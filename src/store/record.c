/* Record validation and serialisation shared by the store backends (see store_internal.h). */
#include "store/store_internal.h"

#include <string.h>

#include <chatkit/error.h>

#include "protocol/datetime.h"

/* Returns the value of string member `key` when it is a non-empty string without NUL bytes
 * (ids are used as C strings and SQL text, so an embedded NUL would silently truncate them). */
static const char *nonempty_str(const ck_json *obj, const char *key) {
  const ck_json *v = ck_json_object_get(obj, key);
  const char *s = ck_json_str_value(v);
  if (s == NULL || ck_json_str_len(v) == 0 || strlen(s) != ck_json_str_len(v))
    return NULL;
  return s;
}

/* True when `v` nests no deeper than `left` levels of arrays and objects. A deeper record
 * could be written but not parsed back under CK__STORE_MAX_DEPTH, so it is refused at save
 * time instead of turning into a corrupt-looking record at load time. */
static bool depth_ok(const ck_json *v, int left) {
  size_t n;
  switch (ck_json_typeof(v)) {
  case CK_JSON_ARRAY:
    if (left == 0)
      return false;
    n = ck_json_array_size(v);
    for (size_t i = 0; i < n; i++) {
      if (!depth_ok(ck_json_array_get(v, i), left - 1))
        return false;
    }
    return true;
  case CK_JSON_OBJECT:
    if (left == 0)
      return false;
    n = ck_json_object_size(v);
    for (size_t i = 0; i < n; i++) {
      if (!depth_ok(ck_json_object_value(v, i), left - 1))
        return false;
    }
    return true;
  default:
    return true;
  }
}

int ck__store_record_prepare(const ck_json *v, ck__record_kind kind, ck__store_record *r) {
  memset(r, 0, sizeof(*r));
  ck_buf_init(&r->text, CK__STORE_RECORD_MAX);
  if (!ck_json_is_object(v))
    return CK_EINVAL;
  r->id = nonempty_str(v, "id");
  if (r->id == NULL)
    return CK_EINVAL;
  if (kind != CK__RECORD_ATTACHMENT) {
    const ck_json *c = ck_json_object_get(v, "created_at");
    const char *s = ck_json_str_value(c);
    ck__datetime dt;
    if (s == NULL || ck__datetime_parse(s, ck_json_str_len(c), &dt) != 0)
      return CK_EINVAL;
    r->created_us = ck__datetime_instant_us(&dt);
  }
  if (kind == CK__RECORD_ITEM) {
    r->type = nonempty_str(v, "type");
    if (r->type == NULL)
      return CK_EINVAL;
  }
  if (!depth_ok(v, CK__STORE_MAX_DEPTH))
    return CK_EINVAL;
  int rc = ck_json_write(&r->text, v);
  if (rc != CK_OK) {
    ck_buf_free(&r->text);
    /* The contract has no "too big" code for stores: an oversized record is an invalid one. */
    return rc == CK_ETOOBIG ? CK_EINVAL : rc;
  }
  if (r->text.len == 0) {
    /* ck_json_write never produces an empty object text; guard so r->text.data is valid. */
    ck_buf_free(&r->text);
    return CK_EINVAL;
  }
  return CK_OK;
}

void ck__store_record_clear(ck__store_record *r) {
  if (r == NULL)
    return;
  ck_buf_free(&r->text);
}

int ck__store_parse(ck_arena *a, const char *text, size_t len, ck_json **out) {
  *out = NULL;
  int rc = ck_json_parse(a, text, len, CK__STORE_MAX_DEPTH, out, NULL);
  if (rc == CK_EINVAL)
    return CK_ESTORE;
  return rc;
}

const char *ck__store_user(const ck_ctx *ctx) {
  if (ctx == NULL || ctx->user_id == NULL)
    return "";
  return ctx->user_id;
}

bool ck__store_no_cursor(const char *s) {
  return s == NULL || s[0] == '\0';
}
