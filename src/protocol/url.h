/* Internal: URL normalisation for the fields the reference types as pydantic AnyUrl
 * (ImageAttachment.preview_url, AttachmentUploadDescriptor.url).
 *
 * pydantic-core follows the WHATWG URL standard (Rust `url` crate): the URL must be absolute
 * (have a scheme); scheme and host are lower-cased; a default port (http 80, https 443,
 * ws 80, wss 443, ftp 21) is dropped; for special schemes (http, https, ws, wss, ftp, file) an
 * empty path becomes "/"; characters outside the allowed sets (space, '"', '<', '>', '`',
 * control and non-ASCII bytes, and in the path also '{' '}' ...) are percent-encoded with
 * uppercase hex; existing %XX escapes are kept. Non-special schemes (data:, blob:, s3:, ...)
 * keep their path as written apart from the same encoding of spaces and controls in query
 * and fragment.
 */
#ifndef CK_PROTOCOL_URL_H
#define CK_PROTOCOL_URL_H

#include <stddef.h>

#include <chatkit/mem.h>

/** Normalises `n` bytes of `in` into an arena string `*out`. Returns 0, or -1 when the input
 * is not an absolute URL (no scheme, an empty host for a special scheme, a bad port). */
int ck__url_normalize(ck_arena *a, const char *in, size_t n, char **out);

#endif
