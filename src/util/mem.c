/* Arenas and capped buffers (see chatkit/mem.h). */
#include <chatkit/error.h>
#include <chatkit/mem.h>

#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A block of arena memory; the usable bytes follow the header. */
typedef struct block {
  struct block *next;
  size_t size; /* usable bytes after the header */
  size_t used;
} block;

struct ck_arena {
  block *head;      /* the block allocations come from; older blocks follow */
  size_t first;     /* size of the first block, kept across resets */
  size_t footprint; /* bytes obtained from malloc */
};

#define ARENA_ALIGN (alignof(max_align_t))
#define ARENA_MAX_BLOCK ((size_t)1 << 20)
#define HEADER_SIZE ((sizeof(block) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1))

static block *block_new(size_t size) {
  block *b = malloc(HEADER_SIZE + size);
  if (b == NULL)
    return NULL;
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

ck_arena *ck_arena_new(size_t chunk) {
  ck_arena *a = malloc(sizeof(*a));
  if (a == NULL)
    return NULL;
  a->first = chunk ? chunk : 4096;
  a->head = block_new(a->first);
  if (a->head == NULL) {
    free(a);
    return NULL;
  }
  a->footprint = sizeof(*a) + HEADER_SIZE + a->first;
  return a;
}

static void free_blocks(block *b) {
  while (b != NULL) {
    block *next = b->next;
    free(b);
    b = next;
  }
}

void ck_arena_free(ck_arena *a) {
  if (a == NULL)
    return;
  free_blocks(a->head);
  free(a);
}

void ck_arena_reset(ck_arena *a) {
  if (a == NULL)
    return;
  /* The first block is the last in the list; keep it and free the rest. */
  block *b = a->head;
  while (b->next != NULL) {
    block *next = b->next;
    a->footprint -= HEADER_SIZE + b->size;
    free(b);
    b = next;
  }
  b->used = 0;
  a->head = b;
}

/* Takes `n` bytes aligned to `align` (a power of two, at most ARENA_ALIGN). Blocks start
 * ARENA_ALIGN-aligned; `used` is rounded up to `align` first, so byte strings (align 1) pack
 * tightly between the aligned allocations. */
static void *arena_take(ck_arena *a, size_t n, size_t align) {
  if (n == 0)
    n = 1;
  if (n > SIZE_MAX - ARENA_ALIGN)
    return NULL;
  block *b = a->head;
  size_t off = (b->used + align - 1) & ~(align - 1);
  if (off > b->size || b->size - off < n) {
    size_t need = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    size_t size = b->size * 2;
    if (size > ARENA_MAX_BLOCK)
      size = ARENA_MAX_BLOCK;
    if (size < need)
      size = need;
    block *nb = block_new(size);
    if (nb == NULL)
      return NULL;
    /* A huge one-off allocation goes behind the head so the head's free space stays usable. */
    if (need > ARENA_MAX_BLOCK / 2 && b->size - b->used > 256) {
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      a->head = nb;
    }
    a->footprint += HEADER_SIZE + size;
    b = nb;
    off = 0;
  }
  void *p = (char *)b + HEADER_SIZE + off;
  b->used = off + n;
  return p;
}

void *ck_arena_alloc(ck_arena *a, size_t n) {
  return arena_take(a, n, ARENA_ALIGN);
}

void *ck_arena_calloc(ck_arena *a, size_t n) {
  void *p = ck_arena_alloc(a, n);
  if (p != NULL)
    memset(p, 0, n);
  return p;
}

char *ck_arena_strndup(ck_arena *a, const char *s, size_t n) {
  if (n == SIZE_MAX)
    return NULL;
  char *p = arena_take(a, n + 1, 1); /* text needs no alignment */
  if (p == NULL)
    return NULL;
  if (n)
    memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *ck_arena_strdup(ck_arena *a, const char *s) {
  if (s == NULL)
    return NULL;
  return ck_arena_strndup(a, s, strlen(s));
}

char *ck_arena_printf(ck_arena *a, const char *fmt, ...) {
  va_list ap;
  char small[256];
  /* Most results are short: format once into the stack and copy. */
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  if ((size_t)n < sizeof(small))
    return ck_arena_strndup(a, small, (size_t)n);
  char *p = ck_arena_alloc(a, (size_t)n + 1);
  if (p == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

size_t ck_arena_footprint(const ck_arena *a) {
  return a ? a->footprint : 0;
}

/* ---- ck_buf ---- */

void ck_buf_init(ck_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void ck_buf_free(ck_buf *b) {
  if (b == NULL)
    return;
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void ck_buf_reset(ck_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

/* Makes room for `n` more bytes plus the terminating NUL. */
static int buf_reserve(ck_buf *b, size_t n) {
  size_t max = b->max ? b->max : CK_BUF_DEFAULT_MAX;
  if (n > max || b->len > max - n)
    return CK_ETOOBIG;
  size_t need = b->len + n + 1;
  if (need <= b->cap)
    return CK_OK;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (p == NULL)
    return CK_ENOMEM;
  b->data = p;
  b->cap = cap;
  return CK_OK;
}

int ck_buf_append(ck_buf *b, const void *p, size_t n) {
  int rc = buf_reserve(b, n);
  if (rc != CK_OK)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return CK_OK;
}

int ck_buf_puts(ck_buf *b, const char *s) {
  return ck_buf_append(b, s, strlen(s));
}

int ck_buf_putc(ck_buf *b, char c) {
  return ck_buf_append(b, &c, 1);
}

int ck_buf_vprintf(ck_buf *b, const char *fmt, va_list ap) {
  va_list cp;
  /* Formatting twice (measure, then write) doubles the cost of every log line and response
   * head, so first try to write straight into the room already there. */
  size_t max = b->max ? b->max : CK_BUF_DEFAULT_MAX;
  if (b->cap > b->len + 1) {
    size_t room = b->cap - b->len;
    va_copy(cp, ap);
    int n = vsnprintf(b->data + b->len, room, fmt, cp);
    va_end(cp);
    if (n < 0) {
      b->data[b->len] = '\0';
      return CK_EINVAL;
    }
    if ((size_t)n < room) {
      if ((size_t)n > max || b->len > max - (size_t)n) {
        b->data[b->len] = '\0'; /* over the cap: leave the buffer as it was */
        return CK_ETOOBIG;
      }
      b->len += (size_t)n;
      return CK_OK;
    }
    b->data[b->len] = '\0';
  }
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0)
    return CK_EINVAL;
  int rc = buf_reserve(b, (size_t)n);
  if (rc != CK_OK)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return CK_OK;
}

int ck_buf_printf(ck_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = ck_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

char *ck_buf_take(ck_buf *b, size_t *len) {
  char *p = b->data;
  if (p == NULL) {
    p = malloc(1);
    if (p == NULL)
      return NULL;
    p[0] = '\0';
  }
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}
