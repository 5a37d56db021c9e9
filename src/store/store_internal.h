/* Internal: what the store backends share.
 *
 * Every backend turns an incoming record (thread, item or attachment tree) into the same
 * "prepared record": its id, its ordering key and its canonical text. Keeping this in one
 * place guarantees that the memory, SQLite and later PostgreSQL backends validate records
 * identically and order them by exactly the same key.
 */
#ifndef CK_STORE_INTERNAL_H
#define CK_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <chatkit/json.h>
#include <chatkit/mem.h>
#include <chatkit/store.h>

/* The largest serialised record a store accepts. A thread item with a big widget tree or a
 * long tool output is well below this; anything larger is a bug or an abuse. */
#define CK__STORE_RECORD_MAX ((size_t)16 * 1024 * 1024)

/* The nesting depth used when a stored text is parsed back. It is generous because the text
 * was produced by our own writer from a tree that the protocol layer already accepted. */
#define CK__STORE_MAX_DEPTH 512

/* Which fields a record must carry. */
typedef enum ck__record_kind {
  CK__RECORD_THREAD,     /* id + created_at */
  CK__RECORD_ITEM,       /* id + created_at + type */
  CK__RECORD_ATTACHMENT, /* id */
} ck__record_kind;

/* A validated record ready to be stored. */
typedef struct ck__store_record {
  const char *id;     /* the record's "id" (points into the caller's tree) */
  const char *type;   /* the item's "type" (items only, points into the tree), else NULL */
  int64_t created_us; /* created_at as UTC microseconds (threads and items), else 0 */
  ck_buf text;        /* the canonical serialisation (ck_json_write) */
} ck__store_record;

/** Validates `v` as a record of `kind` and serialises it into `r->text`. Returns CK_OK,
 * CK_EINVAL (not an object, a missing or empty id, a missing or unparseable created_at or a
 * missing type, a record larger than CK__STORE_RECORD_MAX) or CK_ENOMEM. On failure nothing
 * needs to be freed; on success the caller frees with ck__store_record_clear. */
int ck__store_record_prepare(const ck_json *v, ck__record_kind kind, ck__store_record *r);

/** Frees a prepared record's text. NULL is a no-op. */
void ck__store_record_clear(ck__store_record *r);

/** Parses a stored record's text into `a`. A text that does not parse means the storage was
 * corrupted behind our back, so that is CK_ESTORE, not CK_EINVAL. */
int ck__store_parse(ck_arena *a, const char *text, size_t len, ck_json **out);

/** The owner key for a context: the anonymous user (NULL context, NULL or "" user) is "". */
const char *ck__store_user(const ck_ctx *ctx);

/** True when `s` is NULL or empty: both mean "no cursor". */
bool ck__store_no_cursor(const char *s);

#endif
