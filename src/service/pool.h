/* Internal: the worker pool for blocking work (store calls, handlers) and the mailbox that
 * carries results back to the event-loop thread. */
#ifndef CK_SERVICE_POOL_H
#define CK_SERVICE_POOL_H

#include <stddef.h>
#include <uv.h>

typedef struct ck__pool ck__pool;

/** A unit of work. `fn` runs on a worker thread. Embed it in the job's own struct. */
typedef struct ck__job {
  struct ck__job *next;
  void (*fn)(struct ck__job *job);
} ck__job;

/** Starts `n` worker threads. Returns NULL when out of memory or a thread cannot start. */
ck__pool *ck__pool_new(int n);

/** Queues a job; it runs on some worker soon. Thread-safe. */
void ck__pool_submit(ck__pool *p, ck__job *job);

/** Finishes queued jobs, stops and joins the workers, frees the pool. NULL is a no-op. */
void ck__pool_free(ck__pool *p);

typedef struct ck__mailbox ck__mailbox;

/** A message to the loop thread. Embed it; `fn` runs on the loop thread. */
typedef struct ck__msg {
  struct ck__msg *next;
  void (*fn)(struct ck__msg *msg);
} ck__msg;

/** Creates a mailbox on `loop` (an async handle). Call it on the loop's thread. */
ck__mailbox *ck__mailbox_new(uv_loop_t *loop);

/** Posts a message from any thread. Posted from the loop thread itself, it runs after the
 * current callback returns (never inside the post), without a system call. */
void ck__mailbox_post(ck__mailbox *m, ck__msg *msg);

/** Closes the mailbox (on the loop thread); pending messages are delivered first. */
void ck__mailbox_close(ck__mailbox *m);

#endif
