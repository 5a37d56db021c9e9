/* Error messages written into a caller's buffer: the `errbuf, errlen` pair that the open and
 * connect functions of stores, MCP clients and HTTP tools take. */
#ifndef CK_UTIL_ERRBUF_H
#define CK_UTIL_ERRBUF_H

#include <stddef.h>

/* Formats into `buf` (truncating to `cap`); does nothing when `buf` is NULL or `cap` is 0, so
 * callers that do not want the message may pass NULL. */
void ck__errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies `msg` into `buf` as ck__errf does. */
void ck__errs(char *buf, size_t cap, const char *msg);

#endif
