/* Internal: the layout of a ck_json node, shared by the DOM, the parser and the writer.
 *
 * Nothing outside src/json/ may include this header; other modules go through chatkit/json.h.
 */
#ifndef CK_JSON_INTERNAL_H
#define CK_JSON_INTERNAL_H

#include <chatkit/json.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One object member. Keys are NUL-terminated, never contain NUL, and `klen` is their length,
 * so lookups can reject most candidates by comparing lengths before bytes. */
typedef struct ck__json_member {
  const char *key;
  size_t klen;
  ck_json *val;
} ck__json_member;

/* The longest string, array or object a node can hold: lengths are 32-bit so that a node is
 * 32 bytes (a parsed request or a thread is mostly nodes; 48-byte nodes made a stream's
 * long-lived state a third larger). Inputs are capped far below this. */
#define CK__JSON_MAX_LEN ((size_t)UINT32_MAX - 1)

struct ck_json {
  ck_arena *arena;  /* the arena that owns this node (and that mutators allocate from) */
  uint8_t type;     /* a ck_json_type */
  bool num_fits;    /* INT: the literal is within int64, and u.num.i holds it */
  uint32_t num_len; /* INT: the length of u.num.digits */
  union {
    bool b;
    struct {
      const char *digits; /* canonical: optional '-', no leading zeros, "-0" is "0" */
      int64_t i;          /* the value when num_fits */
    } num;
    double f;
    struct {
      const char *s; /* NUL-terminated; may also contain NUL bytes (STRING) */
      uint32_t len;
    } str; /* STRING and RAW */
    struct {
      ck_json **v;
      uint32_t len, cap;
    } arr;
    struct {
      ck__json_member *m;
      uint32_t len, cap;
    } obj;
  } u;
};

_Static_assert(sizeof(struct ck_json) == 32, "a ck_json node is 32 bytes");

/** Allocates a node of type `t` from `a` followed by `extra` bytes of arena memory (returned in
 * `*extra_out` when not NULL). One allocation per scalar keeps parsing cheap. */
ck_json *ck__json_node(ck_arena *a, ck_json_type t, size_t extra, char **extra_out);

/** Builds an INT node from `n` bytes matching -?[0-9]+ (the caller has checked): leading
 * zeros are dropped, "-0" becomes "0", and the int64 cache is filled. NULL when out of memory. */
ck_json *ck__json_make_int(ck_arena *a, const char *lit, size_t n);

/** Finds member `key` (`klen` bytes) of an object; returns its index or SIZE_MAX. */
size_t ck__json_find(const ck_json *obj, const char *key, size_t klen);

#endif
