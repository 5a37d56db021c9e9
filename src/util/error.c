/* Error strings (see chatkit/error.h). */
#include <chatkit/error.h>

#include <stdarg.h>
#include <stdio.h>

#include "util/errbuf.h"

const char *ck_strerror(int err) {
  switch (err) {
  case CK_OK:
    return "success";
  case CK_PENDING:
    return "in progress";
  case CK_ENOMEM:
    return "out of memory";
  case CK_EINVAL:
    return "invalid request";
  case CK_ENOTFOUND:
    return "not found";
  case CK_ETOOBIG:
    return "too large";
  case CK_ESTORE:
    return "store unavailable";
  case CK_ECANCELLED:
    return "cancelled";
  case CK_EHANDLER:
    return "handler failed";
  case CK_EUNSUPPORTED:
    return "not supported";
  case CK_ESTATE:
    return "precondition failed";
  case CK_EIO:
    return "I/O error";
  case CK_ECONFLICT:
    return "conflict";
  default:
    return "unknown error";
  }
}

void ck__errf(char *buf, size_t cap, const char *fmt, ...) {
  if (buf == NULL || cap == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
}

void ck__errs(char *buf, size_t cap, const char *msg) {
  ck__errf(buf, cap, "%s", msg);
}
