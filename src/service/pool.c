/* Worker threads and the loop mailbox (see pool.h). The loop never blocks: anything that may
 * block runs here, and results come back through one uv_async_t. */
#include "service/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct ck__pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ck__job *head, *tail;
  bool stopping;
  int n;
  pthread_t threads[];
};

static void *worker_main(void *arg) {
  ck__pool *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->head == NULL && !p->stopping)
      pthread_cond_wait(&p->cv, &p->mu);
    ck__job *job = p->head;
    if (job == NULL) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    p->head = job->next;
    if (p->head == NULL)
      p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    job->fn(job);
  }
}

ck__pool *ck__pool_new(int n) {
  if (n < 1)
    n = 1;
  ck__pool *p = calloc(1, sizeof(*p) + (size_t)n * sizeof(pthread_t));
  if (p == NULL)
    return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  /* Handlers and stores run here; 256 KiB of stack is plenty and keeps many workers cheap. */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (int i = 0; i < n; i++) {
    if (pthread_create(&p->threads[i], &attr, worker_main, p) != 0) {
      pthread_attr_destroy(&attr);
      p->n = i;
      ck__pool_free(p);
      return NULL;
    }
    p->n = i + 1;
  }
  pthread_attr_destroy(&attr);
  return p;
}

void ck__pool_submit(ck__pool *p, ck__job *job) {
  job->next = NULL;
  pthread_mutex_lock(&p->mu);
  if (p->tail)
    p->tail->next = job;
  else
    p->head = job;
  p->tail = job;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

void ck__pool_free(ck__pool *p) {
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n; i++)
    pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}

/* Messages from other threads go through a locked queue and the async handle (an eventfd
 * write and read). Messages the loop thread posts to itself (an inline request's results, a
 * producer started on the loop) need neither: they go on a queue only the loop thread touches,
 * run in the check phase right after the current I/O callbacks, and an idle handle keeps the
 * next poll from blocking if they were posted from a timer. */
struct ck__mailbox {
  uv_async_t async;
  uv_check_t check;
  uv_idle_t idle;
  uv_thread_t loop_thread;
  pthread_mutex_t mu;
  ck__msg *head, *tail;   /* from other threads, under mu */
  ck__msg *lhead, *ltail; /* from the loop thread */
  int open_handles;
};

static void run_all(ck__msg *msg) {
  while (msg != NULL) {
    ck__msg *next = msg->next;
    msg->fn(msg);
    msg = next;
  }
}

static void mailbox_drain(uv_async_t *h) {
  ck__mailbox *m = h->data;
  pthread_mutex_lock(&m->mu);
  ck__msg *msg = m->head;
  m->head = m->tail = NULL;
  pthread_mutex_unlock(&m->mu);
  run_all(msg);
}

/* Runs the loop thread's own messages, including those they post in turn. */
static void local_drain(ck__mailbox *m) {
  for (int guard = 0; m->lhead != NULL && guard < 64; guard++) {
    ck__msg *msg = m->lhead;
    m->lhead = m->ltail = NULL;
    run_all(msg);
  }
  if (m->lhead == NULL) {
    uv_check_stop(&m->check);
    uv_idle_stop(&m->idle);
  }
}

static void on_check(uv_check_t *h) {
  local_drain(h->data);
}

static void on_idle(uv_idle_t *h) {
  local_drain(h->data);
}

ck__mailbox *ck__mailbox_new(uv_loop_t *loop) {
  ck__mailbox *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return NULL;
  pthread_mutex_init(&m->mu, NULL);
  if (uv_async_init(loop, &m->async, mailbox_drain) != 0) {
    pthread_mutex_destroy(&m->mu);
    free(m);
    return NULL;
  }
  uv_check_init(loop, &m->check);
  uv_idle_init(loop, &m->idle);
  m->async.data = m->check.data = m->idle.data = m;
  m->loop_thread = uv_thread_self();
  return m;
}

void ck__mailbox_post(ck__mailbox *m, ck__msg *msg) {
  msg->next = NULL;
  uv_thread_t self = uv_thread_self();
  if (uv_thread_equal(&self, &m->loop_thread)) {
    if (m->ltail)
      m->ltail->next = msg;
    else
      m->lhead = msg;
    m->ltail = msg;
    uv_check_start(&m->check, on_check);
    uv_idle_start(&m->idle, on_idle);
    return;
  }
  pthread_mutex_lock(&m->mu);
  if (m->tail)
    m->tail->next = msg;
  else
    m->head = msg;
  m->tail = msg;
  pthread_mutex_unlock(&m->mu);
  uv_async_send(&m->async);
}

static void mailbox_closed(uv_handle_t *h) {
  ck__mailbox *m = h->data;
  if (--m->open_handles > 0)
    return;
  pthread_mutex_destroy(&m->mu);
  free(m);
}

void ck__mailbox_close(ck__mailbox *m) {
  if (m == NULL)
    return;
  mailbox_drain(&m->async);
  local_drain(m);
  m->open_handles = 3;
  uv_close((uv_handle_t *)&m->async, mailbox_closed);
  uv_close((uv_handle_t *)&m->check, mailbox_closed);
  uv_close((uv_handle_t *)&m->idle, mailbox_closed);
}
