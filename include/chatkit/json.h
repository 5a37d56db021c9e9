/* chatkit/json.h - the JSON document model, a strict parser and the canonical writer.
 *
 * Why not a general-purpose JSON library: the ChatKit wire format must be byte-identical to the
 * reference (pydantic) output, and that needs things no packaged parser keeps: integers of any
 * size printed exactly, floats printed in shortest round-trip form with the reference's
 * notation rules, `-0.0` kept apart from `0`, object keys in insertion order with duplicate
 * keys resolved "last value wins, first position kept", and values that live in a per-request
 * arena so a request's memory is freed in one go. See docs/architecture.md.
 *
 * Memory: every value is allocated from a ck_arena and lives as long as that arena. A tree may
 * only point at values of its own arena (or of an arena that outlives it); ck_json_copy moves a
 * tree to another arena. Nothing here is thread-safe; a tree is used by one thread at a time.
 *
 * Mutating functions take the value they change and allocate from that value's arena.
 */
#ifndef CHATKIT_JSON_H
#define CHATKIT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <chatkit/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ck_json_type {
  CK_JSON_NULL,
  CK_JSON_BOOL,
  CK_JSON_INT,    /* an integer literal (no '.', 'e' or 'E'); any size, kept as its digits */
  CK_JSON_FLOAT,  /* a number with a fraction or exponent, as an IEEE double */
  CK_JSON_STRING, /* UTF-8, may contain NUL bytes (length-counted) */
  CK_JSON_ARRAY,
  CK_JSON_OBJECT,
  CK_JSON_RAW, /* pre-serialised canonical JSON text, written verbatim (see ck_json_raw) */
} ck_json_type;

typedef struct ck_json ck_json;

/* ---- Parsing ----------------------------------------------------------------------------- */

/* Default and hard caps for the parser. Depth counts nested arrays/objects. The parser
 * recurses once per level, so the hard cap bounds its C stack use whatever the caller asks. */
#define CK_JSON_DEFAULT_MAX_DEPTH 64
#define CK_JSON_MAX_DEPTH 1024

typedef struct ck_json_error {
  size_t offset;     /* byte offset of the problem in the input */
  int line;          /* 1-based line of the problem */
  int column;        /* 1-based column (in bytes) */
  char message[120]; /* English, NUL-terminated, e.g. "invalid UTF-8 in string" */
} ck_json_error;

/** Parses one JSON text of `len` bytes into `*out`, allocating from `a`.
 *
 * Strict RFC 8259: rejects invalid or overlong UTF-8, unpaired surrogate escapes, control
 * characters inside strings, comments, trailing commas, leading zeros, NaN/Infinity and any
 * non-whitespace after the value. Whitespace around the value is allowed. `max_depth` caps
 * nesting (0 means CK_JSON_DEFAULT_MAX_DEPTH, larger than CK_JSON_MAX_DEPTH means
 * CK_JSON_MAX_DEPTH, negative is CK_EINVAL). Strings and object keys may contain NUL
 * ("\u0000"): both are length-counted (see ck_json_object_key_len). Duplicate object keys: the last
 * value wins and keeps the position of the first occurrence. Integer literals keep their exact
 * digits ("-0" becomes "0"); a float that overflows a double becomes infinity, which is written as
 * null. Floats are converted with strtod, which assumes the "C" locale (the process never calls
 * setlocale).
 *
 * Returns CK_OK, CK_EINVAL (with `err` filled when not NULL) or CK_ENOMEM. */
int ck_json_parse(ck_arena *a, const char *text, size_t len, int max_depth, ck_json **out,
                  ck_json_error *err);

/* ---- Writing ----------------------------------------------------------------------------- */

/** Appends the canonical compact serialisation of `v` to `b`.
 *
 * No whitespace; object keys in insertion order; strings escape only `"`, `\` and control
 * characters below U+0020 (`\n \r \t \b \f`, the rest as lowercase `\u00XX`), everything else
 * (non-ASCII, `/`, DEL, U+2028/9) raw; integers exactly as their digits; floats in the
 * shortest form that reads back to the same double, positional when 1e-5 <= |x| < 1e16 with
 * integral values keeping ".0" (1.0, 0.00001, -0.0), otherwise mantissa 'e' exponent with '+'
 * for positive exponents and no zero padding (1e-7, 1e+16, 1.2345e+16); non-finite floats
 * as null. Returns CK_OK, CK_ENOMEM or CK_ETOOBIG (the buffer's cap). */
int ck_json_write(ck_buf *b, const ck_json *v);

/** Serialises `v` into a NUL-terminated string allocated from `a`. `len` (optional) receives
 * the length. Returns NULL when out of memory. */
char *ck_json_dumps(ck_arena *a, const ck_json *v, size_t *len);

/** Appends the shortest round-trip text of `d` under the rules of ck_json_write. */
int ck_json_write_double(ck_buf *b, double d);

/** Appends `s` (`n` bytes) as a quoted, escaped JSON string. */
int ck_json_write_string(ck_buf *b, const char *s, size_t n);

/* ---- Constructors (all return NULL when out of memory) ------------------------------------ */

/** A JSON null. */
ck_json *ck_json_null(ck_arena *a);
/** A JSON boolean. */
ck_json *ck_json_bool(ck_arena *a, bool v);
/** An integer. */
ck_json *ck_json_int(ck_arena *a, int64_t v);
/** An integer from decimal digits with an optional leading '-' (any length). Leading zeros
 * are dropped and "-0" becomes "0". Returns NULL when `digits` is not such a literal. */
ck_json *ck_json_int_digits(ck_arena *a, const char *digits, size_t n);
/** A float (written with ".0" when integral; infinities and NaN are written as null). */
ck_json *ck_json_float(ck_arena *a, double v);
/** A string copied from the NUL-terminated `s` (NULL `s` gives a JSON null). */
ck_json *ck_json_str(ck_arena *a, const char *s);
/** A string copied from `n` bytes of `s`. The caller guarantees valid UTF-8. */
ck_json *ck_json_strn(ck_arena *a, const char *s, size_t n);
/** An empty array. */
ck_json *ck_json_array(ck_arena *a);
/** An empty object. */
ck_json *ck_json_object(ck_arena *a);
/** A RAW value: `n` bytes of already-canonical JSON text, copied, written verbatim by the
 * writer. Readers that need the structure call ck_json_expand. Used to splice stored items
 * into responses without re-serialising them. */
ck_json *ck_json_raw(ck_arena *a, const char *text, size_t n);

/** Returns a deep copy of `v` allocated from `a` (RAW values stay RAW). NULL in, NULL out. */
ck_json *ck_json_copy(ck_arena *a, const ck_json *v);

/** If `v` is RAW, parses its text (allocating from `a`) and returns the tree; otherwise
 * returns `v`. Returns NULL on parse failure or when out of memory. */
ck_json *ck_json_expand(ck_arena *a, ck_json *v);

/* ---- Inspection --------------------------------------------------------------------------- */

/** The type of `v`; CK_JSON_NULL for a NULL pointer. */
ck_json_type ck_json_typeof(const ck_json *v);

/** True for JSON null and for a NULL pointer. */
bool ck_json_is_null(const ck_json *v);
/** True for a boolean. */
bool ck_json_is_bool(const ck_json *v);
/** True for an integer literal (any size). */
bool ck_json_is_int(const ck_json *v);
/** True for a number with a fraction or exponent. */
bool ck_json_is_float(const ck_json *v);
/** True for an integer or a float. */
bool ck_json_is_number(const ck_json *v);
/** True for a string. */
bool ck_json_is_string(const ck_json *v);
/** True for an array. */
bool ck_json_is_array(const ck_json *v);
/** True for an object. */
bool ck_json_is_object(const ck_json *v);

/** The boolean value; false when `v` is not a boolean. */
bool ck_json_bool_value(const ck_json *v);

/** Stores the integer in `*out`. Returns CK_OK, or CK_EINVAL when `v` is not an integer or
 * does not fit in int64. */
int ck_json_int_value(const ck_json *v, int64_t *out);

/** The decimal digits of an integer (NUL-terminated, arena-owned), NULL for other types. */
const char *ck_json_int_digits_value(const ck_json *v);

/** The numeric value of an int or float as a double (ints beyond 2^53 are rounded); 0 for
 * other types. */
double ck_json_number_value(const ck_json *v);

/** The string's bytes (NUL-terminated, arena-owned) or NULL when `v` is not a string. */
const char *ck_json_str_value(const ck_json *v);

/** The string's length in bytes; 0 when `v` is not a string. */
size_t ck_json_str_len(const ck_json *v);

/** The RAW text of a RAW value (and its length in `len`), NULL otherwise. */
const char *ck_json_raw_text(const ck_json *v, size_t *len);

/** Deep equality. Numbers compare by value across int and float (4 == 4.0, -0 == 0.0, big
 * integers by digits; an integer equals a float only when the float is exactly that integer;
 * NaN equals nothing); object member order does not matter; a NULL pointer equals JSON null.
 * RAW values with identical text are equal; otherwise a RAW value is parsed (into a scratch
 * arena) and compared by structure, so it can equal an expanded tree. */
bool ck_json_equal(const ck_json *x, const ck_json *y);

/* ---- Arrays ------------------------------------------------------------------------------- */

/** Number of elements; 0 when `v` is not an array. */
size_t ck_json_array_size(const ck_json *v);

/** Element `i`, or NULL when out of range or `v` is not an array. */
ck_json *ck_json_array_get(const ck_json *v, size_t i);

/** Appends `elem` (which must live in the same arena). Returns CK_OK, CK_EINVAL or CK_ENOMEM. */
int ck_json_array_append(ck_json *arr, ck_json *elem);

/** Inserts `elem` before index `i` (i == size appends). */
int ck_json_array_insert(ck_json *arr, size_t i, ck_json *elem);

/** Replaces element `i`. */
int ck_json_array_set(ck_json *arr, size_t i, ck_json *elem);

/** Removes element `i`, shifting the rest down. */
int ck_json_array_remove(ck_json *arr, size_t i);

/** Removes every element. */
void ck_json_array_clear(ck_json *arr);

/* ---- Objects ------------------------------------------------------------------------------ */

/** Number of members; 0 when `v` is not an object. */
size_t ck_json_object_size(const ck_json *v);

/** The value of member `key`, or NULL when absent or `v` is not an object. A member whose
 * value is JSON null returns that null value (use ck_json_is_null to test both). */
ck_json *ck_json_object_get(const ck_json *v, const char *key);

/** The i-th member's key (NUL-terminated) in insertion order, or NULL when out of range. */
const char *ck_json_object_key(const ck_json *v, size_t i);

/** The length in bytes of the i-th member's key. Keys may contain NUL bytes (JSON allows
 * "\u0000"); code that copies members should use this with ck_json_object_setn. */
size_t ck_json_object_key_len(const ck_json *v, size_t i);

/** The i-th member's value in insertion order, or NULL when out of range. */
ck_json *ck_json_object_value(const ck_json *v, size_t i);

/** Sets member `key` (copied) to `val`: replaces the value in place when the key exists,
 * otherwise appends the member at the end. Returns CK_OK, CK_EINVAL or CK_ENOMEM. */
int ck_json_object_set(ck_json *obj, const char *key, ck_json *val);

/** Like ck_json_object_set with a key of `klen` bytes that may contain NUL bytes. */
int ck_json_object_setn(ck_json *obj, const char *key, size_t klen, ck_json *val);

/** Removes member `key`, keeping the order of the others. Returns CK_OK, CK_ENOTFOUND, or
 * CK_EINVAL when `obj` is not an object. */
int ck_json_object_del(ck_json *obj, const char *key);

/** Convenience: the string value of member `key`, or NULL when absent or not a string. */
const char *ck_json_object_get_str(const ck_json *obj, const char *key);

/** A 64-bit fingerprint (FNV-1a) of the value: its types, keys in order, and contents. Trees
 * that ck_json_write would write identically hash identically; any change to a value changes
 * the hash except with negligible probability. Cheaper than serialising: no escaping, no
 * buffer. */
uint64_t ck_json_hash(const ck_json *v);

/** The arena that owns `v` (for building values that will be attached to it). */
ck_arena *ck_json_arena(const ck_json *v);

#ifdef __cplusplus
}
#endif
#endif
