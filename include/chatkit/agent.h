/* chatkit/agent.h - turning a thread into model input (the agent layer's first half).
 *
 * The model sees a thread as a list of Responses-API input items. The conversion follows the
 * reference's ThreadItemConverter (protocol.md §9.3) text for text, so a conversation moved
 * from the Python SDK to this server reads the same to the model. Where the reference raises by
 * default (attachments, @-mention tags, non-string hidden context) this library has working
 * defaults that an integration can replace.
 */
#ifndef CHATKIT_AGENT_H
#define CHATKIT_AGENT_H

#include <stddef.h>

#include <chatkit/json.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Hooks for the parts of the conversion an integration may want to decide. Every entry may
 * be NULL for the default. Each returns CK_OK and appends zero or more content parts (input
 * items' `content` entries) to `parts`, allocating from `a`. */
typedef struct ck_input_hooks {
  void *ud;
  /** An attachment of a user message. Default: an image with a preview URL becomes
   * {"type":"input_image","image_url":<preview_url>,"detail":"auto"}; anything else an
   * input_text naming the file ("[Attached file: NAME (MIME)]"). */
  int (*attachment)(void *ud, ck_arena *a, const ck_json *attachment, ck_json *parts);
  /** An @-mention tag (first occurrence of each distinct tag text). Default: an input_text
   * "@TEXT: " followed by the tag's data as compact JSON. */
  int (*tag)(void *ud, ck_arena *a, const ck_json *tag, ck_json *parts);
} ck_input_hooks;

/** Converts thread items (oldest first; the array may hold RAW values) into Responses input
 * items, appended to `*out` (a new array from `a`). `max_chars` > 0 keeps only the newest
 * items whose converted text fits that budget (the newest item is always kept), so long
 * threads stay within the model's context. `hooks` may be NULL. Returns CK_OK or CK_ENOMEM. */
int ck_thread_to_model_input(ck_arena *a, const ck_json *items, const ck_input_hooks *hooks,
                             size_t max_chars, ck_json **out);

/** Serialises `v` exactly as Python's json.dumps does with its defaults (separators ", " and
 * ": ", non-ASCII escaped as \uXXXX, floats in Python's repr), the form the reference sends
 * for tool-call arguments and outputs. Returns a string from `a`, or NULL when out of
 * memory. */
char *ck_json_dumps_python(ck_arena *a, const ck_json *v);

#ifdef __cplusplus
}
#endif
#endif
