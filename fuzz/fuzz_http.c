/* libFuzzer harness for the HTTP parser glue: arbitrary bytes, split at fuzzer-chosen points,
 * go through ck__http_parser exactly as a connection feeds them (pausing after each request,
 * resuming after 100-continue), with small limits so every cap is reachable. */
#include "http/internal.h"

#include <chatkit/error.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const ck__http_req *r, const ck__http_limits *lim) {
  /* Invariants every dispatched request must hold; a violation crashes on purpose. */
  if (r->pub.body_len > lim->max_body_bytes || r->pub.header_count > lim->max_headers)
    abort();
  if (r->pub.method == NULL || r->pub.path == NULL || r->pub.query == NULL || r->pub.body == NULL)
    abort();
  if (strlen(r->pub.body) > r->pub.body_len)
    abort();
  for (size_t i = 0; i < r->pub.header_count; i++) {
    if (r->pub.headers[i].name == NULL || r->pub.headers[i].value == NULL)
      abort();
    (void)ck_http_request_header(&r->pub, r->pub.headers[i].name);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  /* The first byte picks the read size, so both one-byte trickles and big reads are tried. */
  size_t step = (size_t)data[0] % 64 + 1;
  if (data[0] >= 192)
    step = size;
  data++;
  size--;
  const ck__http_limits lim = {.max_header_bytes = 512, .max_headers = 8, .max_body_bytes = 256};
  ck__http_parser p;
  ck__http_parser_init(&p, &lim);
  size_t off = 0;
  int requests = 0;
  while (off < size) {
    size_t n = size - off < step ? size - off : step, used = 0;
    ck__http_event ev = ck__http_parser_feed(&p, (const char *)data + off, n, &used);
    if (used > n)
      abort();
    off += used;
    if (ev == CK__HTTP_EV_ERROR) {
      const char *msg = NULL;
      int st = ck__http_parser_status(&p, &msg);
      if (st < 400 || st > 599 || msg == NULL)
        abort();
      ck_buf b;
      ck_buf_init(&b, 0);
      ck__http_json_error(&b, "bad_request", msg);
      ck_buf_free(&b);
      break;
    }
    if (ev == CK__HTTP_EV_REQUEST) {
      ck__http_req *r = ck__http_parser_take(&p);
      if (r == NULL)
        abort();
      check_request(r, &lim);
      int keep = r->keep_alive;
      ck__http_req_unref(r);
      if (!keep || ++requests > 64)
        break; /* a connection closes after a non-keep-alive request */
      ck__http_parser_resume(&p);
    } else if (ev == CK__HTTP_EV_CONTINUE) {
      ck__http_parser_resume(&p);
    } else if (used == 0) {
      abort(); /* NONE with nothing consumed would spin a connection forever */
    }
  }
  ck__http_parser_free(&p);
  return 0;
}
