/* Strict base64url (RFC 4648 §5) as JWS compact serialisation uses it: no padding, no
 * whitespace, and the unused bits of the last character must be zero, so every byte string has
 * exactly one accepted encoding and a token cannot be altered without changing its bytes. */
#include "internal.h"

#include <chatkit/error.h>

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of a base64url character, or -1. */
static int sextet(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

int ck__b64url_decode(ck_arena *a, const char *s, size_t n, unsigned char **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  /* A remainder of one character carries only 6 bits: never a whole byte. */
  if (n % 4 == 1)
    return CK_EINVAL;
  size_t len = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
  unsigned char *buf = ck_arena_alloc(a, len + 1);
  if (buf == NULL)
    return CK_ENOMEM;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = sextet((unsigned char)s[i]);
    if (v < 0)
      return CK_EINVAL;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* The leftover bits are padding inside the last character: they must be zero. */
  if (acc != 0)
    return CK_EINVAL;
  buf[o] = '\0';
  *out = buf;
  *out_len = o;
  return CK_OK;
}

int ck__b64url_encode(ck_buf *b, const void *data, size_t n) {
  const unsigned char *p = data;
  char quad[4];
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    quad[0] = alphabet[v >> 18];
    quad[1] = alphabet[(v >> 12) & 63];
    quad[2] = alphabet[(v >> 6) & 63];
    quad[3] = alphabet[v & 63];
    int rc = ck_buf_append(b, quad, 4);
    if (rc != CK_OK)
      return rc;
  }
  size_t rest = n - i;
  if (rest == 0)
    return CK_OK;
  uint32_t v = (uint32_t)p[i] << 16 | (rest == 2 ? (uint32_t)p[i + 1] << 8 : 0);
  quad[0] = alphabet[v >> 18];
  quad[1] = alphabet[(v >> 12) & 63];
  quad[2] = alphabet[(v >> 6) & 63];
  return ck_buf_append(b, quad, rest + 1);
}
