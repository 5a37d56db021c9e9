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

struct ck__mailbox {
  uv_async_t async;
  pthread_mutex_t mu;
  ck__msg *head, *tail;
};

static void mailbox_drain(uv_async_t *h) {
  ck__mailbox *m = h->data;
  pthread_mutex_lock(&m->mu);
  ck__msg *msg = m->head;
  m->head = m->tail = NULL;
  pthread_mutex_unlock(&m->mu);
  while (msg != NULL) {
    ck__msg *next = msg->next;
    msg->fn(msg);
    msg = next;
  }
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
  m->async.data = m;
  return m;
}

void ck__mailbox_post(ck__mailbox *m, ck__msg *msg) {
  msg->next = NULL;
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
  pthread_mutex_destroy(&m->mu);
  free(m);
}

void ck__mailbox_close(ck__mailbox *m) {
  if (m == NULL)
    return;
  mailbox_drain(&m->async);
  uv_close((uv_handle_t *)&m->async, mailbox_closed);
}
