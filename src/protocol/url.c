/* URL normalisation for AnyUrl fields (see url.h).
 *
 * A small subset of the WHATWG URL parser, without a base URL: scheme, authority (userinfo,
 * host, port), path with "." and ".." resolution, query and fragment, each re-encoded with
 * the percent-encode set the standard (and the Rust `url` crate that pydantic-core uses)
 * assigns to it. Deliberately not supported, and rejected rather than guessed: non-ASCII
 * host names (they would need IDNA/punycode). IPv6 literals are kept as written, only
 * lower-cased, rather than re-compressed. Windows drive-letter quirks of file: URLs are not
 * applied.
 */
#include "protocol/url.h"

#include <chatkit/error.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The percent-encode sets of the WHATWG URL standard, smallest first. Each includes the
 * ones before it except where noted. */
enum enc_set {
  SET_C0,            /* C0 controls and every byte above '~' (DEL and non-ASCII) */
  SET_FRAGMENT,      /* C0 + space " < > ` */
  SET_QUERY,         /* C0 + space " # < > (not '`') */
  SET_SPECIAL_QUERY, /* QUERY + ' */
  SET_PATH,          /* QUERY + ? ` { } */
  SET_USERINFO,      /* PATH + / : ; = @ [ \ ] ^ | */
};

static bool needs_encoding(unsigned char c, enum enc_set set) {
  if (c < 0x20 || c > 0x7E)
    return true;
  switch (set) {
  case SET_C0:
    return false;
  case SET_FRAGMENT:
    return c == ' ' || c == '"' || c == '<' || c == '>' || c == '`';
  case SET_QUERY:
  case SET_SPECIAL_QUERY:
    return c == ' ' || c == '"' || c == '#' || c == '<' || c == '>' ||
           (set == SET_SPECIAL_QUERY && c == '\'');
  case SET_USERINFO:
    return c == '/' || c == ':' || c == ';' || c == '=' || c == '@' || c == '[' || c == '\\' ||
           c == ']' || c == '^' || c == '|' || needs_encoding(c, SET_PATH);
  case SET_PATH:
    return c == ' ' || c == '"' || c == '#' || c == '<' || c == '>' || c == '?' || c == '`' ||
           c == '{' || c == '}';
  }
  return true;
}

/* Appends `n` bytes of `s` to `b`, percent-encoding (uppercase hex) the bytes in `set`.
 * Existing %XX sequences pass through untouched, as the standard requires. */
static int put_encoded(ck_buf *b, const char *s, size_t n, enum enc_set set) {
  static const char hex[] = "0123456789ABCDEF";
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!needs_encoding(c, set))
      continue;
    char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
    if (ck_buf_append(b, s + run, i - run) != CK_OK || ck_buf_append(b, esc, 3) != CK_OK)
      return -1;
    run = i + 1;
  }
  return ck_buf_append(b, s + run, n - run) == CK_OK ? 0 : -1;
}

static bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int hexval(char c) {
  if (is_digit(c))
    return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
    return (c | 0x20) - 'a' + 10;
  return -1;
}

static char lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Parses one IPv4 part (decimal, 0-prefixed octal or 0x-prefixed hex) into *out; values are
 * capped just above 2^32 so overflow is impossible and still detected. */
static bool ipv4_part(const char *s, size_t n, uint64_t *out) {
  unsigned base = 10;
  if (n == 0)
    return false;
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
    n -= 2;
  } else if (n >= 2 && s[0] == '0') {
    base = 8;
    s++;
    n--;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    int d = hexval(s[i]);
    if (d < 0 || (unsigned)d >= base)
      return false;
    v = v * base + (unsigned)d;
    if (v > UINT64_C(0x1FFFFFFFF))
      v = UINT64_C(0x1FFFFFFFF);
  }
  *out = v;
  return true;
}

/* True when the last label of the host is a number, which makes the host an IPv4 address
 * in the WHATWG parser ("ends in a number"). */
static bool ends_in_number(const char *h, size_t n) {
  if (n > 0 && h[n - 1] == '.')
    n--;
  size_t start = n;
  while (start > 0 && h[start - 1] != '.')
    start--;
  const char *l = h + start;
  size_t ln = n - start;
  if (ln == 0)
    return false;
  bool all_digits = true;
  for (size_t i = 0; i < ln; i++)
    all_digits = all_digits && is_digit(l[i]);
  if (all_digits)
    return true;
  if (ln >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
    for (size_t i = 2; i < ln; i++) {
      if (hexval(l[i]) < 0)
        return false;
    }
    return true;
  }
  return false;
}

/* Writes the IPv4 address spelled by host `h` in dotted decimal, or fails. */
static int put_ipv4(ck_buf *b, const char *h, size_t n) {
  uint64_t parts[4];
  size_t count = 0, start = 0;
  if (n > 0 && h[n - 1] == '.')
    n--;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && h[i] != '.')
      continue;
    if (count == 4 || !ipv4_part(h + start, i - start, &parts[count]))
      return -1;
    count++;
    start = i + 1;
  }
  uint64_t addr = 0;
  for (size_t i = 0; i + 1 < count; i++) {
    if (parts[i] > 255)
      return -1;
    addr = addr * 256 + parts[i];
  }
  unsigned shift = 8 * (unsigned)(5 - count);
  if (parts[count - 1] >= (UINT64_C(1) << shift))
    return -1;
  addr = (addr << shift) + parts[count - 1];
  for (int i = 3; i >= 0; i--) {
    if (ck_buf_printf(b, i == 3 ? "%u" : ".%u", (unsigned)((addr >> (8 * i)) & 255)) != CK_OK)
      return -1;
  }
  return 0;
}

/* Code points a domain may not contain (after percent-decoding). `opaque` hosts of
 * non-special schemes allow '%'. */
static bool forbidden_host_char(unsigned char c, bool opaque) {
  if (c <= 0x20 || c == 0x7F)
    return true;
  return strchr(opaque ? "#/:<>?@[\\]^|" : "#%/:<>?@[\\]^|", c) != NULL;
}

/* Writes the host of a special URL: percent-decoded, lower-cased, validated, IPv4 numbers
 * normalised. Non-ASCII hosts are refused (IDNA is out of scope). */
static int put_special_host(ck_buf *b, const char *h, size_t n) {
  char dec[256];
  size_t d = 0;
  if (n > 0 && h[0] == '[') {
    if (n < 3 || h[n - 1] != ']')
      return -1;
    for (size_t i = 1; i + 1 < n; i++) {
      if (hexval(h[i]) < 0 && h[i] != ':' && h[i] != '.')
        return -1;
    }
    if (ck_buf_putc(b, '[') != CK_OK)
      return -1;
    for (size_t i = 1; i + 1 < n; i++) {
      if (ck_buf_putc(b, lower(h[i])) != CK_OK)
        return -1;
    }
    return ck_buf_putc(b, ']') == CK_OK ? 0 : -1;
  }
  for (size_t i = 0; i < n; i++) {
    char c = h[i];
    if (c == '%' && i + 2 < n && hexval(h[i + 1]) >= 0 && hexval(h[i + 2]) >= 0) {
      c = (char)(hexval(h[i + 1]) * 16 + hexval(h[i + 2]));
      i += 2;
    }
    if (d == sizeof(dec) || (unsigned char)c >= 0x80 ||
        forbidden_host_char((unsigned char)c, false))
      return -1;
    dec[d++] = lower(c);
  }
  if (d == 0)
    return -1;
  if (ends_in_number(dec, d))
    return put_ipv4(b, dec, d);
  return ck_buf_append(b, dec, d) == CK_OK ? 0 : -1;
}

/* Writes the host of a non-special URL: kept as written (no lower-casing), controls and
 * non-ASCII percent-encoded. */
static int put_opaque_host(ck_buf *b, const char *h, size_t n) {
  if (n > 0 && h[0] == '[')
    return put_special_host(b, h, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)h[i];
    if (c < 0x80 && forbidden_host_char(c, true))
      return -1;
  }
  return put_encoded(b, h, n, SET_C0);
}

/* True when a path segment is "." or ".." (possibly spelled with %2e). */
static int dot_segment(const char *s, size_t n) {
  size_t dots = 0;
  for (size_t i = 0; i < n;) {
    if (s[i] == '.') {
      i++;
    } else if (n - i >= 3 && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e') {
      i += 3;
    } else {
      return 0;
    }
    if (++dots > 2)
      return 0;
  }
  return (int)dots;
}

/* Writes a hierarchical path ("/a/b"), resolving "." and ".." segments. `p` is the text
 * after the authority; for special schemes '\' separates segments too and an empty path
 * becomes "/". */
static int put_path(ck_buf *b, const char *p, size_t n, bool special) {
  size_t base = b->len;
  size_t i = 0;
  if (n == 0) {
    if (!special)
      return 0;
    return ck_buf_putc(b, '/') == CK_OK ? 0 : -1;
  }
  /* The text starts with a separator here (the authority or scheme ended at one). */
  if (p[0] == '/' || (special && p[0] == '\\'))
    i = 1;
  for (;;) {
    size_t j = i;
    while (j < n && p[j] != '/' && !(special && p[j] == '\\'))
      j++;
    bool last = j == n;
    int dots = dot_segment(p + i, j - i);
    if (dots == 2) {
      /* Pop the last segment: written segments never contain a raw '/', so it starts at
       * the last '/' written after `base`. */
      while (b->len > base && b->data[b->len - 1] != '/')
        b->len--;
      if (b->len > base)
        b->len--;
      if (last && ck_buf_putc(b, '/') != CK_OK)
        return -1;
    } else if (dots == 1) {
      if (last && ck_buf_putc(b, '/') != CK_OK)
        return -1;
    } else {
      if (ck_buf_putc(b, '/') != CK_OK || put_encoded(b, p + i, j - i, SET_PATH) != 0)
        return -1;
    }
    if (last)
      break;
    i = j + 1;
  }
  /* ck_buf keeps its text NUL-terminated; restore that after the pops above. */
  if (b->data != NULL)
    b->data[b->len] = '\0';
  return 0;
}

/* Splits the authority into userinfo, host and port and writes "//[user[:pass]@]host[:port]".
 * `default_port` is the scheme's default (-1 when none); `special` picks the host rules. */
static int put_authority(ck_buf *b, const char *s, size_t n, bool special, bool is_file,
                         long default_port) {
  const char *at = NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '@')
      at = s + i;
  }
  const char *h = at ? at + 1 : s;
  size_t hn = (size_t)(s + n - h);
  /* The port follows the last ':' that is not inside an IPv6 literal. */
  const char *port = NULL;
  size_t pn = 0;
  const char *scan = h;
  if (hn > 0 && h[0] == '[') {
    const char *close = memchr(h, ']', hn);
    if (close == NULL)
      return -1;
    scan = close;
  }
  const char *colon = memchr(scan, ':', (size_t)(h + hn - scan));
  if (colon != NULL) {
    port = colon + 1;
    pn = (size_t)(h + hn - port);
    hn = (size_t)(colon - h);
  }
  if (ck_buf_append(b, "//", 2) != CK_OK)
    return -1;
  if (at != NULL) {
    if (hn == 0)
      return -1; /* credentials without a host */
    const char *pw = memchr(s, ':', (size_t)(at - s));
    size_t un = pw ? (size_t)(pw - s) : (size_t)(at - s);
    size_t pwn = pw ? (size_t)(at - pw - 1) : 0;
    if (un > 0 || pwn > 0) {
      if (put_encoded(b, s, un, SET_USERINFO) != 0)
        return -1;
      if (pwn > 0 &&
          (ck_buf_putc(b, ':') != CK_OK || put_encoded(b, pw + 1, pwn, SET_USERINFO) != 0))
        return -1;
      if (ck_buf_putc(b, '@') != CK_OK)
        return -1;
    }
  }
  if (is_file) {
    if (port != NULL || at != NULL)
      return -1;
    size_t start = b->len;
    if (hn > 0 && put_special_host(b, h, hn) != 0)
      return -1;
    /* "localhost" means no host for file: URLs; compare after normalising, so any
     * spelling (LocalHost, %6Cocalhost) is caught. */
    if (b->len - start == 9 && memcmp(b->data + start, "localhost", 9) == 0) {
      b->len = start;
      b->data[start] = '\0';
    }
    return 0;
  }
  if (special && hn == 0)
    return -1;
  if (hn > 0 && (special ? put_special_host(b, h, hn) : put_opaque_host(b, h, hn)) != 0)
    return -1;
  if (port != NULL && pn > 0) {
    if (hn == 0)
      return -1;
    long v = 0;
    for (size_t i = 0; i < pn; i++) {
      if (!is_digit(port[i]))
        return -1;
      v = v * 10 + (port[i] - '0');
      if (v > 65535)
        return -1;
    }
    if (v != default_port && ck_buf_printf(b, ":%ld", v) != CK_OK)
      return -1;
  }
  return 0;
}

int ck__url_normalize(ck_arena *a, const char *in, size_t n, char **out) {
  ck_buf b, clean;
  ck_buf_init(&b, 0);
  ck_buf_init(&clean, 0);
  int rc = -1;
  if (a == NULL || out == NULL || (in == NULL && n > 0))
    goto fail;

  /* Trim leading and trailing C0 controls and spaces, and drop tabs and newlines anywhere,
   * as the standard's pre-processing does. */
  size_t lo = 0, hi = n;
  while (lo < hi && (unsigned char)in[lo] <= 0x20)
    lo++;
  while (hi > lo && (unsigned char)in[hi - 1] <= 0x20)
    hi--;
  for (size_t i = lo; i < hi; i++) {
    if (in[i] != '\t' && in[i] != '\n' && in[i] != '\r' && ck_buf_putc(&clean, in[i]) != CK_OK)
      goto fail;
  }
  const char *s = clean.data;
  size_t len = clean.len;

  /* Scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":". Anything else is relative. */
  size_t i = 0;
  if (len == 0 || !is_alpha(s[0]))
    goto fail;
  while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
    i++;
  if (i == len || s[i] != ':')
    goto fail;
  size_t scheme_len = i;
  char scheme[16] = {0};
  bool special = false;
  long default_port = -1;
  if (scheme_len < sizeof(scheme)) {
    for (size_t k = 0; k < scheme_len; k++)
      scheme[k] = lower(s[k]);
    static const struct {
      const char *name;
      long port;
    } specials[] = {{"http", 80}, {"https", 443}, {"ws", 80},
                    {"wss", 443}, {"ftp", 21},    {"file", -1}};
    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
      if (strcmp(scheme, specials[k].name) == 0) {
        special = true;
        default_port = specials[k].port;
      }
    }
  }
  bool is_file = special && strcmp(scheme, "file") == 0;
  for (size_t k = 0; k < scheme_len; k++) {
    if (ck_buf_putc(&b, lower(s[k])) != CK_OK)
      goto fail;
  }
  if (ck_buf_putc(&b, ':') != CK_OK)
    goto fail;
  i++;

  /* The end of the part before the query and fragment. */
  size_t q = i;
  while (q < len && s[q] != '?' && s[q] != '#')
    q++;

  size_t path_start = i;
  if (special && !is_file) {
    /* Any run of slashes or backslashes introduces the authority of a special URL. */
    while (path_start < q && (s[path_start] == '/' || s[path_start] == '\\'))
      path_start++;
    size_t auth = path_start;
    while (path_start < q && s[path_start] != '/' && s[path_start] != '\\')
      path_start++;
    if (put_authority(&b, s + auth, path_start - auth, true, false, default_port) != 0)
      goto fail;
    if (put_path(&b, s + path_start, q - path_start, true) != 0)
      goto fail;
  } else if (q - i >= 2 && (s[i] == '/' || (is_file && s[i] == '\\')) &&
             (s[i + 1] == '/' || (is_file && s[i + 1] == '\\'))) {
    size_t auth = i + 2;
    path_start = auth;
    while (path_start < q && s[path_start] != '/' && !(special && s[path_start] == '\\'))
      path_start++;
    if (put_authority(&b, s + auth, path_start - auth, special, is_file, default_port) != 0)
      goto fail;
    if (put_path(&b, s + path_start, q - path_start, special) != 0)
      goto fail;
  } else if (is_file || (i < q && s[i] == '/')) {
    /* A path without an authority; file: URLs always get an (empty) host. */
    if (is_file && ck_buf_append(&b, "//", 2) != CK_OK)
      goto fail;
    size_t start = b.len;
    if (put_path(&b, s + i, q - i, special) != 0)
      goto fail;
    /* Without a host, a path that now starts with "//" would read back as an authority;
     * the standard's serialiser prefixes "/." to keep it a path. */
    if (!is_file && b.len - start >= 2 && b.data[start] == '/' && b.data[start + 1] == '/') {
      if (ck_buf_append(&b, "..", 2) != CK_OK)
        goto fail;
      memmove(b.data + start + 2, b.data + start, b.len - start - 2);
      b.data[start] = '/';
      b.data[start + 1] = '.';
    }
  } else {
    /* An opaque path (data:, mailto:, ...): only controls and non-ASCII are encoded. */
    if (put_encoded(&b, s + i, q - i, SET_C0) != 0)
      goto fail;
  }

  if (q < len && s[q] == '?') {
    size_t f = q + 1;
    while (f < len && s[f] != '#')
      f++;
    if (ck_buf_putc(&b, '?') != CK_OK ||
        put_encoded(&b, s + q + 1, f - q - 1, special ? SET_SPECIAL_QUERY : SET_QUERY) != 0)
      goto fail;
    q = f;
  }
  if (q < len && s[q] == '#') {
    if (ck_buf_putc(&b, '#') != CK_OK || put_encoded(&b, s + q + 1, len - q - 1, SET_FRAGMENT) != 0)
      goto fail;
  }
  *out = ck_arena_strndup(a, b.data, b.len);
  if (*out != NULL)
    rc = 0;
fail:
  ck_buf_free(&b);
  ck_buf_free(&clean);
  return rc;
}
