/* chatkit/demo.h - the built-in demo model.
 *
 * When no model is configured the server still has to show that the front end works: the demo
 * model streams a short reply built from the user's message, token by token, and names the
 * thread after the first message. With a delay between tokens it paces itself on the event
 * loop (an asynchronous handler), so thousands of slow demo streams cost no threads.
 */
#ifndef CHATKIT_DEMO_H
#define CHATKIT_DEMO_H

#include <chatkit/server.h>
#include <chatkit/service.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_demo ck_demo;

typedef struct ck_demo_config {
  int tokens;   /* tokens per reply; 0: the natural length of the reply text */
  int delay_ms; /* pause between tokens; 0: as fast as possible */
} ck_demo_config;

/** Creates the demo model. Returns NULL when out of memory. */
ck_demo *ck_demo_new(const ck_demo_config *cfg);

/** Frees the demo model. NULL is a no-op. */
void ck_demo_free(ck_demo *demo);

/** Lets the demo pace its tokens on `svc`'s loop instead of sleeping on a worker thread. Call
 * it once the service exists, before it serves requests. */
void ck_demo_attach(ck_demo *demo, ck_service *svc);

/** The handler set that answers with the demo model (respond only). It is marked non-blocking:
 * with a delay, call ck_demo_attach before the service serves requests. */
ck_handlers ck_demo_handlers(ck_demo *demo);

#ifdef __cplusplus
}
#endif
#endif
