/* chatkit/error.h - error codes shared by every libchatkit module.
 *
 * Every fallible function returns 0 (CK_OK) or one of the negative codes below. Codes are
 * stable: the HTTP layer maps them to status codes (see docs/architecture.md).
 */
#ifndef CHATKIT_ERROR_H
#define CHATKIT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ck_err {
  CK_PENDING = 1, /* not an error: the work goes on asynchronously (see ck_stream_drain) */
  CK_OK = 0,
  CK_ENOMEM = -1,       /* an allocation failed */
  CK_EINVAL = -2,       /* invalid request or argument (bad JSON, schema violation, ...) */
  CK_ENOTFOUND = -3,    /* a thread, item, attachment or cursor does not exist for this user */
  CK_ETOOBIG = -4,      /* a buffer or input hit its cap */
  CK_ESTORE = -5,       /* the store failed or is unavailable */
  CK_ECANCELLED = -6,   /* the consumer of a stream went away */
  CK_EHANDLER = -7,     /* an integration handler failed */
  CK_EUNSUPPORTED = -8, /* the integration does not implement this operation */
  CK_ESTATE = -9,       /* a precondition on stored state does not hold */
  CK_EIO = -10,         /* an operating-system or network call failed */
  CK_ECONFLICT = -11,   /* the resource is busy (e.g. a thread already streaming) */
} ck_err;

/** Returns a short, static, English description of an error code (never NULL). */
const char *ck_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
