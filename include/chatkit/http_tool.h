/* chatkit/http_tool.h - agent tools that call an HTTP endpoint, declared by configuration.
 *
 * An HTTP tool sends the model's arguments as a JSON body to a URL and gives the model the
 * answer. It lets an integration add tools without writing C: a small web service (in any
 * language) implements the tool, and this server only needs its URL and schema.
 *
 * What the endpoint answers, and what the model and the user get:
 *   - 2xx with a JSON body: the model gets the JSON. When it is an object with a top-level
 *     "widget" object (a widget root: type Card, ListView or Basic), the widget is streamed to
 *     the user as a widget item (with the answer's "copy_text" string as its copy text, if
 *     any), and the model gets the object without "widget", or {"widget_shown": true} when
 *     nothing else is left.
 *   - 2xx with another body: the model gets the body as text.
 *   - any other status, a network failure or the timeout: the model gets a tool error with a
 *     short reason (the status and the first 200 bytes of the body).
 * Answers are capped at 1 MiB.
 */
#ifndef CHATKIT_HTTP_TOOL_H
#define CHATKIT_HTTP_TOOL_H

#include <stddef.h>

#include <chatkit/agent.h>
#include <chatkit/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The cap on an endpoint's answer. */
#define CK_HTTP_TOOL_MAX_RESPONSE ((size_t)1024 * 1024)
/* The timeout when the configuration gives 0. */
#define CK_HTTP_TOOL_DEFAULT_TIMEOUT_MS 30000

typedef struct ck_http_tool_config {
  const char *name;            /* required; [a-zA-Z0-9_-], at most 64 characters */
  const char *description;     /* shown to the model */
  const char *parameters_json; /* JSON Schema of the arguments; NULL: any object */
  const char *url;             /* required; http:// or https:// */
  const char *method;          /* POST (NULL), PUT, PATCH or DELETE */
  const char *const *headers;  /* "Name: value" lines, e.g. an Authorization header */
  size_t nheaders;
  int timeout_ms; /* the whole request; 0: CK_HTTP_TOOL_DEFAULT_TIMEOUT_MS */
} ck_http_tool_config;

/** Fills `*out` with a tool that calls the endpoint described by `cfg`. Every string is
 * copied into `a`, which must outlive the agents that use the tool. Returns CK_OK, CK_EINVAL
 * (a missing or invalid name, URL, method, header or schema; the reason in `err`, `errlen`
 * bytes, may be NULL), CK_EIO (libcurl cannot be initialised) or CK_ENOMEM. */
int ck_http_tool_def(ck_arena *a, const ck_http_tool_config *cfg, ck_tool_def *out, char *err,
                     size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
