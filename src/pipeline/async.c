/* Asynchronous handlers: events pushed from other threads are queued as text and run through
 * the pipeline by ck_stream_drain, in order, on a thread that may block. */
#include "pipeline/internal.h"

#include <chatkit/error.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ck_stream_set_notify(ck_stream *s, void (*notify)(void *ud, ck_stream *s), void *ud) {
  pthread_mutex_lock(&s->mu);
  s->notify = notify;
  s->notify_ud = ud;
  pthread_mutex_unlock(&s->mu);
}

void ck_stream_on_cancel(ck_stream *s, void (*cb)(void *ud), void *ud) {
  pthread_mutex_lock(&s->mu);
  s->on_cancel = cb;
  s->on_cancel_ud = ud;
  pthread_mutex_unlock(&s->mu);
}

/* Tells the producer to stop, once. The callback runs under the lock so that a producer that
 * unregisters (ck_stream_on_cancel(s, NULL, NULL)) before freeing its state can never be
 * called afterwards; it may therefore only signal, never call back into the stream. */
static void stop_producer(ck_stream *s) {
  pthread_mutex_lock(&s->mu);
  void (*cb)(void *) = s->on_cancel;
  void *ud = s->on_cancel_ud;
  s->on_cancel = NULL;
  if (cb != NULL)
    cb(ud);
  pthread_mutex_unlock(&s->mu);
}

void ck_stream_cancel(ck_stream *s) {
  atomic_store(&s->cancelled, true);
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->wake);
  pthread_mutex_unlock(&s->mu);
  stop_producer(s);
}

int ck_stream_sleep(ck_stream *s, int ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  while (!atomic_load(&s->cancelled) && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&s->wake, &s->mu, &until);
  pthread_mutex_unlock(&s->mu);
  return atomic_load(&s->cancelled) ? CK_ECANCELLED : CK_OK;
}

/* Notifies the owner, if events wait, no drain is pending and no hold is on. Called with `mu`
 * held; returns with it released. */
static void notify_unlock(ck_stream *s) {
  bool notify = s->qhead != NULL && !s->draining && !s->held && s->notify != NULL;
  if (notify)
    s->draining = true;
  void (*fn)(void *, ck_stream *) = s->notify;
  void *ud = s->notify_ud;
  pthread_mutex_unlock(&s->mu);
  if (notify)
    fn(ud, s);
}

/* Appends an entry; notifies the owner when no drain is pending. The end marker ends a hold:
 * the producer may not touch the stream after it. */
static int enqueue(ck_stream *s, ck__queued *q) {
  pthread_mutex_lock(&s->mu);
  if (s->ended) {
    pthread_mutex_unlock(&s->mu);
    free(q);
    return CK_ESTATE;
  }
  if (q->end) {
    s->ended = true;
    s->held = false;
  }
  if (s->qtail)
    s->qtail->next = q;
  else
    s->qhead = q;
  s->qtail = q;
  notify_unlock(s);
  return atomic_load(&s->cancelled) ? CK_ECANCELLED : CK_OK;
}

void ck_stream_push_hold(ck_stream *s) {
  pthread_mutex_lock(&s->mu);
  s->held = !s->ended;
  pthread_mutex_unlock(&s->mu);
}

void ck_stream_push_flush(ck_stream *s) {
  pthread_mutex_lock(&s->mu);
  s->held = false;
  notify_unlock(s);
}

static int push_json(ck_stream *s, const ck_json *event, bool canonical) {
  ck_buf b;
  ck_buf_init(&b, 0);
  int rc = ck_json_write(&b, event);
  if (rc != CK_OK) {
    ck_buf_free(&b);
    return rc;
  }
  ck__queued *q = malloc(sizeof(*q) + b.len + 1);
  if (q == NULL) {
    ck_buf_free(&b);
    return CK_ENOMEM;
  }
  memset(q, 0, sizeof(*q));
  q->canonical = canonical;
  q->len = b.len;
  memcpy(q->json, b.data, b.len);
  q->json[b.len] = '\0';
  ck_buf_free(&b);
  return enqueue(s, q);
}

int ck_stream_push_thread_set(ck_stream *s, const char *key, const ck_json *value) {
  ck_buf b;
  ck_buf_init(&b, 0);
  int rc = ck_json_write(&b, value);
  ck__queued *q = rc == CK_OK ? calloc(1, sizeof(*q) + b.len + 1) : NULL;
  char *k = q ? strdup(key) : NULL;
  if (q == NULL || k == NULL) {
    free(q);
    ck_buf_free(&b);
    return rc == CK_OK ? CK_ENOMEM : rc;
  }
  q->set_key = k;
  q->len = b.len;
  memcpy(q->json, b.data, b.len);
  ck_buf_free(&b);
  return enqueue(s, q);
}

int ck_stream_push_text_delta(ck_stream *s, const char *item_id, int content_index,
                              const char *text, size_t len) {
  size_t id_len = strlen(item_id);
  ck__queued *q = malloc(sizeof(*q) + id_len + 1 + len + 1);
  if (q == NULL)
    return CK_ENOMEM;
  memset(q, 0, sizeof(*q));
  q->delta = true;
  q->canonical = true;
  q->content_index = content_index;
  q->id_len = id_len;
  q->len = len;
  memcpy(q->json, item_id, id_len + 1);
  memcpy(q->json + id_len + 1, text, len);
  q->json[id_len + 1 + len] = '\0';
  return enqueue(s, q);
}

int ck_stream_push_message_done(ck_stream *s, const char *item_id) {
  size_t n = strlen(item_id);
  ck__queued *q = calloc(1, sizeof(*q) + n + 1);
  if (q == NULL)
    return CK_ENOMEM;
  q->message_done = true;
  q->len = n;
  memcpy(q->json, item_id, n + 1);
  return enqueue(s, q);
}

int ck_stream_push_workflow(ck_stream *s, ck_workflow_op op, const ck_json *value, size_t index,
                            bool expanded) {
  if (op < CK_WORKFLOW_START || op > CK_WORKFLOW_END || (op != CK_WORKFLOW_END && value == NULL))
    return CK_EINVAL;
  ck_buf b;
  ck_buf_init(&b, 0);
  int rc = value ? ck_json_write(&b, value) : CK_OK;
  ck__queued *q = rc == CK_OK ? calloc(1, sizeof(*q) + b.len + 1) : NULL;
  if (q == NULL) {
    ck_buf_free(&b);
    return rc == CK_OK ? CK_ENOMEM : rc;
  }
  q->wf_op = (int)op;
  q->len = b.len;
  q->content_index = (int)(index > INT_MAX ? INT_MAX : index);
  q->rc = expanded;
  if (b.len)
    memcpy(q->json, b.data, b.len);
  ck_buf_free(&b);
  return enqueue(s, q);
}

/* Runs a queued workflow step on the pipeline's thread. The value is parsed into an arena of
 * its own: the steps emit events, and every emit empties the scratch arena. */
static int run_workflow_op(ck_stream *s, const ck__queued *q) {
  ck_arena *a = ck_arena_new(q->len * 2 + 512);
  ck_json *v = NULL;
  int rc = a ? CK_OK : CK_ENOMEM;
  if (rc == CK_OK && q->len > 0)
    rc = ck_json_parse(a, q->json, q->len, 0, &v, NULL);
  if (rc == CK_OK) {
    switch ((ck_workflow_op)q->wf_op) {
    case CK_WORKFLOW_START:
      rc = ck_json_is_string(v) ? ck_workflow_start(s, ck_json_str_value(v)) : CK_EINVAL;
      break;
    case CK_WORKFLOW_ADD_TASK:
      rc = ck_workflow_add_task(s, v);
      break;
    case CK_WORKFLOW_UPDATE_TASK:
      rc = ck_workflow_update_task(s, v, (size_t)q->content_index);
      break;
    case CK_WORKFLOW_END:
      rc = ck_workflow_end(s, v, q->rc != 0);
      break;
    }
  }
  ck_arena_free(a);
  return rc;
}

int ck_stream_push(ck_stream *s, const ck_json *event) {
  return push_json(s, event, false);
}

int ck_stream_push_canonical(ck_stream *s, const ck_json *event) {
  return push_json(s, event, true);
}

/* The end marker carries the failure as "code\0message\0" in its text. */
static int push_end(ck_stream *s, int rc, const char *code, const char *message, int allow_retry) {
  size_t cl = code ? strlen(code) : 0, ml = message ? strlen(message) : 0;
  ck__queued *q = calloc(1, sizeof(*q) + cl + ml + 2);
  if (q == NULL)
    return CK_ENOMEM;
  q->end = true;
  q->rc = rc;
  q->canonical = message != NULL; /* reused as "has a message" */
  q->len = (size_t)(allow_retry < 0 ? -1 : allow_retry);
  if (cl)
    memcpy(q->json, code, cl);
  if (ml)
    memcpy(q->json + cl + 1, message, ml);
  return enqueue(s, q);
}

int ck_stream_push_end(ck_stream *s) {
  return push_end(s, CK_OK, NULL, NULL, -1);
}

int ck_stream_push_fail(ck_stream *s, const char *code, const char *message, int allow_retry) {
  return push_end(s, CK_EHANDLER, code, message, allow_retry);
}

static void queued_free(ck__queued *q) {
  free(q->set_key);
  free(q);
}

void ck__async_clear(ck_stream *s) {
  ck__queued *q = s->qhead;
  while (q != NULL) {
    ck__queued *next = q->next;
    queued_free(q);
    q = next;
  }
  s->qhead = s->qtail = NULL;
}

void ck__async_enter(ck_stream *s) {
  pthread_mutex_lock(&s->mu);
  s->draining = true; /* the running handler owns the pipeline: pushes must not notify */
  pthread_mutex_unlock(&s->mu);
}

void ck__async_leave(ck_stream *s) {
  pthread_mutex_lock(&s->mu);
  s->draining = false;
  s->ended = true; /* a synchronous handler is done: later pushes are refused */
  ck__async_clear(s);
  pthread_mutex_unlock(&s->mu);
}

int ck__async_started(ck_stream *s) {
  s->async = true;
  return ck_stream_drain(s);
}

/* Applies the failure carried by an end marker. */
static void apply_end(ck_stream *s, const ck__queued *q) {
  if (q->rc == CK_OK)
    return;
  const char *code = q->json;
  const char *message = q->json + strlen(code) + 1;
  int allow_retry = q->len == (size_t)-1 ? -1 : (int)q->len;
  if (q->canonical)
    ck_stream_fail_custom(s, message, allow_retry > 0);
  else if (code[0] != '\0')
    ck_stream_fail(s, code, allow_retry);
}

int ck_stream_drain(ck_stream *s) {
  if (!s->async)
    return CK_ESTATE;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    ck__queued *q = s->qhead;
    if (q == NULL) {
      /* An idle stream waits on its producer, perhaps for seconds; the frame buffer is rebuilt
       * on the next event, so it need not hold memory meanwhile. It is freed while this drain
       * still owns the pipeline (before `draining` is cleared). */
      ck_buf_free(&s->frame);
      ck_arena_free(s->scratch); /* likewise: recreated when the next event arrives */
      s->scratch = NULL;
      s->draining = false;
      pthread_mutex_unlock(&s->mu);
      return CK_PENDING;
    }
    s->qhead = q->next;
    if (s->qhead == NULL)
      s->qtail = NULL;
    pthread_mutex_unlock(&s->mu);
    if (s->scratch == NULL && (s->scratch = ck_arena_new(1024)) == NULL) {
      bool end = q->end;
      queued_free(q); /* out of memory: the producer is stopped like after a failed emit */
      if (end) {
        s->async = false;
        return ck__set_error(ck__stream_err(s), CK_ENOMEM, "out of memory");
      }
      s->async_error = CK_ENOMEM;
      stop_producer(s);
      continue;
    }

    if (q->end) {
      int rc = s->async_error != CK_OK ? s->async_error : q->rc;
      apply_end(s, q);
      queued_free(q);
      s->async = false;
      rc = ck__pipeline_finish(s, rc);
      ck__stream_lease_release(s);
      return rc;
    }
    if (s->async_error != CK_OK || ck_stream_is_cancelled(s)) {
      queued_free(q); /* the producer was told to stop; its leftovers are dropped */
      continue;
    }
    ck_json *ev = NULL;
    int rc = CK_OK;
    if (q->delta) {
      /* The most common event: written straight into its frame, no JSON tree at all. */
      rc =
          ck__stream_emit_text_delta(s, q->json, q->content_index, q->json + q->id_len + 1, q->len);
      ev = NULL; /* emitted already */
    } else if (q->message_done) {
      rc = ck__pending_message_done(s, q->json);
      ev = NULL; /* emitted already */
    } else if (q->wf_op != 0) {
      rc = run_workflow_op(s, q);
      ev = NULL;
    } else {
      rc = ck_json_parse(s->scratch, q->json, q->len, 0, &ev, NULL);
    }
    if (rc == CK_OK && ev != NULL && q->set_key != NULL) {
      /* A thread change from the producer: applied here, on the pipeline's thread, and
       * announced by the check like any handler change. */
      ck_json *v = ck_json_copy(s->arena, ev);
      rc = v ? ck_json_object_set(s->thread, q->set_key, v) : CK_ENOMEM;
      s->thread_dirty = true;
      if (rc == CK_OK)
        rc = ck__stream_check_thread(s);
    } else if (rc == CK_OK && ev != NULL) {
      rc = q->canonical ? ck__stream_emit(s, ev) : ck_emit(s, ev);
    }
    queued_free(q);
    ck_arena_reset(s->scratch);
    if (rc == CK_ECANCELLED) {
      ck_stream_cancel(s);
    } else if (rc != CK_OK) {
      s->async_error = rc;
      stop_producer(s);
    }
  }
}
