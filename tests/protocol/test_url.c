/* Tests of AnyUrl normalisation (protocol.md §2.4, conformance case 020). */
#include "protocol/url.h"

#include <chatkit/mem.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void check(const char *in, const char *want) {
  ck_arena *a = ck_arena_new(0);
  char *out = NULL;
  if (ck__url_normalize(a, in, strlen(in), &out) != 0)
    fail_msg("rejected: %s", in);
  if (strcmp(out, want) != 0)
    fail_msg("%s: got %s, want %s", in, out, want);
  ck_arena_free(a);
}

static void reject(const char *in) {
  ck_arena *a = ck_arena_new(0);
  char *out = NULL;
  if (ck__url_normalize(a, in, strlen(in), &out) == 0)
    fail_msg("accepted: %s as %s", in, out);
  ck_arena_free(a);
}

static void test_case_020(void **state) {
  check("https://Uploads.Example.COM:443/up load?sig=a b",
        "https://uploads.example.com/up%20load?sig=a%20b");
  check("https://CDN.Example.com", "https://cdn.example.com/");
  check("https://cdn.example.com/cat.png", "https://cdn.example.com/cat.png");
}

static void test_special_schemes(void **state) {
  check("HTTP://Example.com:80/A/B", "http://example.com/A/B");
  check("http://example.com:8080", "http://example.com:8080/");
  check("https://example.com:80/", "https://example.com:80/");
  check("http://example.com:443/", "http://example.com:443/");
  check("https://example.com:0443/", "https://example.com/");
  check("https://example.com:/x", "https://example.com/x");
  check("ws://h.example:80/s", "ws://h.example/s");
  check("wss://h.example:443", "wss://h.example/");
  check("ftp://files.example:21/pub", "ftp://files.example/pub");
  check("https://example.com?q=1", "https://example.com/?q=1");
  check("https://example.com#frag", "https://example.com/#frag");
  check("https://e.com/a?b=c&d=e", "https://e.com/a?b=c&d=e");
  /* Userinfo is kept (and encoded); an empty password is dropped. */
  check("https://User:P@ss@Example.com/", "https://User:P%40ss@example.com/");
  check("https://user:@example.com/", "https://user@example.com/");
  check("https://@example.com/", "https://example.com/");
  /* Slashes and backslashes after the scheme are all the same to special schemes. */
  check("https:example.com", "https://example.com/");
  check("https:\\\\example.com\\a\\b", "https://example.com/a/b");
  check("https:///example.com/", "https://example.com/");
  /* Surrounding controls and spaces are trimmed, tabs and newlines removed. */
  check("  https://exa\tmple.com/a\nb \n", "https://example.com/ab");
}

static void test_encoding(void **state) {
  /* Path set: space " < > ` { } and non-ASCII; existing escapes untouched. */
  check("https://e.com/a b\"c<d>e`f{g}h|i^j'k",
        "https://e.com/a%20b%22c%3Cd%3Ee%60f%7Bg%7Dh|i^j'k");
  check("https://e.com/%20already%zz", "https://e.com/%20already%zz");
  check("https://e.com/caf\xc3\xa9", "https://e.com/caf%C3%A9");
  check("https://e.com/\x7f", "https://e.com/%7F");
  /* Query set: space " # < > and ' for special schemes; ` { } stay. */
  check("https://e.com/?a b\"c<d>e'f`g{h}", "https://e.com/?a%20b%22c%3Cd%3Ee%27f`g{h}");
  check("s3://bucket/k?a b'c", "s3://bucket/k?a%20b'c");
  /* Fragment set: space " < > `; '#' in a fragment stays. */
  check("https://e.com/#a b\"c<d>e`f#g'h", "https://e.com/#a%20b%22c%3Cd%3Ee%60f#g'h");
}

static void test_dot_segments(void **state) {
  check("https://e.com/a/./b/../c", "https://e.com/a/c");
  check("https://e.com/a/b/..", "https://e.com/a/");
  check("https://e.com/a/b/.", "https://e.com/a/b/");
  check("https://e.com/../../x", "https://e.com/x");
  check("https://e.com/a/%2e%2E/b/%2e/c", "https://e.com/b/c");
  check("https://e.com/a//../b", "https://e.com/a/b");
  check("https://e.com/a/...", "https://e.com/a/...");
  check("https://e.com/..", "https://e.com/");
  check("https://e.com/a/..?q", "https://e.com/?q");
}

static void test_hosts(void **state) {
  check("http://127.0.0.1:8000/x", "http://127.0.0.1:8000/x");
  check("http://0x7f.1/", "http://127.0.0.1/");
  check("http://2130706433/", "http://127.0.0.1/");
  check("http://0177.0.0.01/", "http://127.0.0.1/");
  check("http://[::1]:8080/", "http://[::1]:8080/");
  check("http://[2001:DB8::1]/", "http://[2001:db8::1]/");
  check("http://ex%41mple.com/", "http://example.com/");
  reject("http://256.0.0.1/");
  reject("http://1.2.3.4.5/");
  reject("http://ex ample.com/");
  reject("http://ex<ample.com/");
  reject("http://exa%mple.com/");
  reject("http://caf\xc3\xa9.example/");
  reject("http://[::1/");
  reject("http://[zz]/");
}

static void test_other_schemes(void **state) {
  check("data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,iVBORw0KGgo=");
  check("DATA:text/plain,hello world", "data:text/plain,hello world");
  check("data:text/plain,a\x01z", "data:text/plain,a%01z");
  check("blob:https://example.com/550e8400-e29b", "blob:https://example.com/550e8400-e29b");
  /* Non-special hosts keep their case and get no default path. */
  check("s3://My-Bucket/key/a b", "s3://My-Bucket/key/a%20b");
  check("s3://bucket", "s3://bucket");
  check("s3://bucket:99/x/../y", "s3://bucket:99/y");
  check("mailto:someone@example.com", "mailto:someone@example.com");
  check("urn:/a/./b", "urn:/a/b");
  /* A host-less path that starts with an empty segment is kept a path with "/.". */
  check("s3:/.//host/x", "s3:/.//host/x");
  check("s3:/a/..//host", "s3:/.//host");
  check("file:///etc/passwd", "file:///etc/passwd");
  check("file://localhost/etc", "file:///etc");
  check("FILE://LocalHost/etc", "file:///etc");
  check("file://Host/share", "file://host/share");
}

static void test_rejections(void **state) {
  reject("");
  reject("   ");
  reject("/x");
  reject("//example.com/x");
  reject("example.com");
  reject("cat.png");
  reject("1http://example.com");
  reject("ht tp://example.com");
  reject("https://");
  reject("https:///");
  reject("http://:80/");
  reject("https://example.com:65536/");
  reject("https://example.com:8a/");
  reject("https://example.com:-1/");
  reject("https://user@/x");
  reject("https://user:pw@");
  /* Length-bounded: bytes after `n` are ignored. */
  ck_arena *a = ck_arena_new(0);
  char *out;
  assert_int_equal(ck__url_normalize(a, "https://e.comXXXX", 13, &out), 0);
  assert_string_equal(out, "https://e.com/");
  ck_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_case_020),   cmocka_unit_test(test_special_schemes),
      cmocka_unit_test(test_encoding),   cmocka_unit_test(test_dot_segments),
      cmocka_unit_test(test_hosts),      cmocka_unit_test(test_other_schemes),
      cmocka_unit_test(test_rejections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
