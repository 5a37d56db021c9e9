/* Tests for the loop mailbox in src/service/pool.c: messages posted from the loop thread itself
 * never run inside the post, run in order on the same loop turn or the next (also when posted
 * from a timer, so the loop must not block in between), may post more; messages from another
 * thread run on the loop thread; closing delivers what is pending. */
#include "service/pool.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct note {
  ck__msg msg;
  struct world *w;
  int id;
  int repost; /* when > 0, posts message id+100 once more from inside the run */
} note;

typedef struct world {
  uv_loop_t loop;
  uv_timer_t timer, guard;
  ck__mailbox *mb;
  uv_thread_t loop_thread;
  int order[16];
  int n;
  bool in_post; /* set around ck__mailbox_post by the test */
  bool ran_inside_post;
  bool guard_fired;
  bool wrong_thread;
  note notes[8];
  note extra;
} world;

static void run_note(ck__msg *msg) {
  note *n = (note *)msg;
  world *w = n->w;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &w->loop_thread))
    w->wrong_thread = true;
  if (w->in_post)
    w->ran_inside_post = true;
  if (w->n < 16)
    w->order[w->n++] = n->id;
  if (n->repost > 0) {
    n->repost = 0;
    w->extra.msg.fn = run_note;
    w->extra.w = w;
    w->extra.id = n->id + 100;
    ck__mailbox_post(w->mb, &w->extra.msg);
  }
}

static void post(world *w, int i, int id, int repost) {
  w->notes[i].msg.fn = run_note;
  w->notes[i].w = w;
  w->notes[i].id = id;
  w->notes[i].repost = repost;
  w->in_post = true;
  ck__mailbox_post(w->mb, &w->notes[i].msg);
  w->in_post = false;
}

/* A timer callback posts: nothing else would wake the loop, so this only finishes if the
 * mailbox keeps the next poll from blocking. */
static void on_timer(uv_timer_t *t) {
  world *w = t->data;
  post(w, 0, 1, 1);
  post(w, 1, 2, 0);
  assert_int_equal(w->n, 0); /* not run inside the posts */
}

static void on_guard(uv_timer_t *t) {
  world *w = t->data;
  w->guard_fired = true; /* the loop slept with messages waiting: fail below */
  uv_stop(&w->loop);
}

static void setup_world(world *w) {
  memset(w, 0, sizeof(*w));
  assert_int_equal(uv_loop_init(&w->loop), 0);
  w->loop_thread = uv_thread_self();
  w->mb = ck__mailbox_new(&w->loop);
  assert_non_null(w->mb);
}

static void close_world(world *w) {
  uv_close((uv_handle_t *)&w->timer, NULL);
  uv_close((uv_handle_t *)&w->guard, NULL);
  ck__mailbox_close(w->mb);
  assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&w->loop), 0);
}

static void test_post_from_loop_thread(void **state) {
  world w;
  setup_world(&w);
  uv_timer_init(&w.loop, &w.timer);
  uv_timer_init(&w.loop, &w.guard);
  w.timer.data = w.guard.data = &w;
  uv_timer_start(&w.timer, on_timer, 0, 0);
  uv_timer_start(&w.guard, on_guard, 5000, 0);
  uv_unref((uv_handle_t *)&w.guard);
  /* The mailbox's async handle keeps the loop alive: run turns until the messages ran. */
  for (int i = 0; i < 1000 && w.n < 3; i++)
    uv_run(&w.loop, UV_RUN_ONCE);
  assert_int_equal(w.n, 3);
  assert_int_equal(w.order[0], 1);
  assert_int_equal(w.order[1], 2);
  assert_int_equal(w.order[2], 101); /* posted while the first ran: runs after the batch */
  assert_false(w.ran_inside_post);
  assert_false(w.wrong_thread);
  assert_false(w.guard_fired);
  close_world(&w);
}

static void *poster(void *arg) {
  world *w = arg;
  w->notes[5].msg.fn = run_note;
  w->notes[5].w = w;
  w->notes[5].id = 7;
  ck__mailbox_post(w->mb, &w->notes[5].msg);
  return NULL;
}

static void test_post_from_other_thread(void **state) {
  world w;
  setup_world(&w);
  uv_timer_init(&w.loop, &w.timer);
  uv_timer_init(&w.loop, &w.guard);
  w.timer.data = w.guard.data = &w;
  uv_timer_start(&w.guard, on_guard, 1000, 0);
  uv_unref((uv_handle_t *)&w.guard);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, poster, &w), 0);
  for (int i = 0; i < 1000 && w.n < 1; i++)
    uv_run(&w.loop, UV_RUN_ONCE);
  pthread_join(t, NULL);
  assert_int_equal(w.n, 1);
  assert_int_equal(w.order[0], 7);
  assert_false(w.wrong_thread);
  close_world(&w);
}

/* Closing the mailbox delivers the messages still waiting, from both sides. */
static void test_close_delivers(void **state) {
  world w;
  setup_world(&w);
  uv_timer_init(&w.loop, &w.timer);
  uv_timer_init(&w.loop, &w.guard);
  post(&w, 0, 3, 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, poster, &w), 0);
  pthread_join(t, NULL);
  close_world(&w);
  assert_int_equal(w.n, 2);
  assert_true((w.order[0] == 3 && w.order[1] == 7) || (w.order[0] == 7 && w.order[1] == 3));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_post_from_loop_thread),
      cmocka_unit_test(test_post_from_other_thread),
      cmocka_unit_test(test_close_delivers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
