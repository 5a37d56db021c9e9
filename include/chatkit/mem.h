/* chatkit/mem.h - the two memory tools every module uses: arenas and capped buffers.
 *
 * An arena (ck_arena) owns every allocation made from it and frees them all at once: a request
 * gets one arena, and everything built while serving it (parsed JSON, scratch strings) is freed
 * when the request ends. Arenas are not thread-safe; one thread uses one arena at a time.
 *
 * A buffer (ck_buf) is a growable byte string with a hard cap, in the manner of curl's dynbuf:
 * an append that would pass the cap fails with CK_ETOOBIG and leaves the buffer as it was.
 */
#ifndef CHATKIT_MEM_H
#define CHATKIT_MEM_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_arena ck_arena;

/** Creates an arena. `chunk` is the size of its first block (0 picks 4 KiB); later blocks
 * double up to 1 MiB. Returns NULL when out of memory. The caller owns the arena. */
ck_arena *ck_arena_new(size_t chunk);

/** Frees the arena and everything allocated from it. NULL is a no-op. */
void ck_arena_free(ck_arena *a);

/** Frees everything allocated from the arena but keeps its first block for reuse. */
void ck_arena_reset(ck_arena *a);

/** Allocates `n` bytes aligned for any type, owned by the arena. Returns NULL when out of
 * memory. Zero bytes returns a valid unique pointer. */
void *ck_arena_alloc(ck_arena *a, size_t n);

/** Like ck_arena_alloc, and the memory is zeroed. */
void *ck_arena_calloc(ck_arena *a, size_t n);

/** Copies `n` bytes of `s` into the arena and appends a NUL. Returns NULL when out of memory. */
char *ck_arena_strndup(ck_arena *a, const char *s, size_t n);

/** Copies a NUL-terminated string into the arena. NULL in gives NULL out. */
char *ck_arena_strdup(ck_arena *a, const char *s);

/** printf into the arena. Returns NULL when out of memory. */
char *ck_arena_printf(ck_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Total bytes the arena holds from the system (for memory accounting and tests). */
size_t ck_arena_footprint(const ck_arena *a);

/* A growable byte buffer with a cap. Zero-initialise it or use ck_buf_init. `data` is always
 * NUL-terminated when `len` > 0 (the NUL is not counted in `len`). */
typedef struct ck_buf {
  char *data; /* heap memory owned by the buffer (NULL until the first append) */
  size_t len; /* bytes in use */
  size_t cap; /* bytes allocated */
  size_t max; /* the cap on `len`; 0 means CK_BUF_DEFAULT_MAX */
} ck_buf;

#define CK_BUF_DEFAULT_MAX ((size_t)64 * 1024 * 1024)

/** Initialises an empty buffer whose length may never exceed `max` (0: the default cap). */
void ck_buf_init(ck_buf *b, size_t max);

/** Frees the buffer's memory and leaves it empty and reusable. NULL is a no-op. */
void ck_buf_free(ck_buf *b);

/** Empties the buffer but keeps its memory. */
void ck_buf_reset(ck_buf *b);

/** Appends `n` bytes. Returns CK_OK, CK_ENOMEM or CK_ETOOBIG; on failure the buffer is
 * unchanged. */
int ck_buf_append(ck_buf *b, const void *p, size_t n);

/** Appends a NUL-terminated string. */
int ck_buf_puts(ck_buf *b, const char *s);

/** Appends one byte. */
int ck_buf_putc(ck_buf *b, char c);

/** Appends printf-formatted text. */
int ck_buf_printf(ck_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Appends vprintf-formatted text. */
int ck_buf_vprintf(ck_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/** Hands the heap memory to the caller (free() it) and leaves the buffer empty. Returns an
 * empty heap string rather than NULL when the buffer is empty; NULL only when out of memory.
 * `len` (optional) receives the length. */
char *ck_buf_take(ck_buf *b, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
