/* chatkit/widgets.h - widget trees: the streaming diff of the reference.
 *
 * Widgets are JSON trees of components ({"type": ..., "children": [...], ...}); the library
 * passes them through verbatim apart from removing nulls. When a widget is streamed through
 * successive states (see ck_widget_stream_begin in chatkit/server.h), consecutive states are
 * diffed into the smallest updates the client understands.
 */
#ifndef CHATKIT_WIDGETS_H
#define CHATKIT_WIDGETS_H

#include <chatkit/json.h>
#include <chatkit/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Computes the updates that turn widget root `before` into `after` (protocol.md §8.5):
 * either one {"type":"widget.root.updated","widget":after}, or one
 * {"type":"widget.streaming_text.value_delta","component_id","delta","done"} per Text or
 * Markdown component with an id whose value grew by an append, in document order, or nothing.
 * `*updates` receives a JSON array allocated from `a`. Returns CK_OK, CK_EINVAL (a component
 * with an id appeared that was not in `before`; message in `err`) or CK_ENOMEM. */
int ck_widget_diff(ck_arena *a, const ck_json *before, const ck_json *after, ck_json **updates,
                   ck_validation_error *err);

#ifdef __cplusplus
}
#endif
#endif
