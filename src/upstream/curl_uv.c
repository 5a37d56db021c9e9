/* libcurl multi_socket on libuv (see upstream/curl_uv.h and c-stack.md §3). */
#include "upstream/curl_uv.h"

#include <chatkit/error.h>

#include <stdlib.h>

/* One watched socket. Its uv_poll_t is freed only from the close callback, because curl may
 * reuse the descriptor number for a new connection before libuv is done with the old one. */
typedef struct sock {
  uv_poll_t poll;
  ck__curl_uv *g;
  curl_socket_t fd;
  struct sock *prev, *next;
} sock;

/* What a running transfer needs when it ends; kept in CURLOPT_PRIVATE. */
typedef struct xfer {
  ck__curl_done_fn done;
  void *ud;
} xfer;

struct ck__curl_uv {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  sock *socks; /* every sock not yet handed to uv_close */
  size_t nsocks;
  int in_cb;     /* depth of curl callbacks running */
  bool draining; /* inside check_done: do not recurse */
  bool closing;
};

static void check_done(ck__curl_uv *g) {
  if (g->draining)
    return;
  g->draining = true;
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(g->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *easy = m->easy_handle;
    CURLcode res = m->data.result;
    xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(g->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    if (x != NULL) {
      ck__curl_done_fn done = x->done;
      void *ud = x->ud;
      free(x);
      /* `m` may be invalid after the callback adds or removes handles, but info_read is
       * called afresh on the next iteration, which is allowed. */
      done(easy, res, ud);
    }
  }
  g->draining = false;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock *s = h->data;
  ck__curl_uv *g = s->g;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  int running = 0;
  curl_multi_socket_action(g->multi, s->fd, flags, &running);
  check_done(g);
}

static void on_timer(uv_timer_t *t) {
  ck__curl_uv *g = t->data;
  int running = 0;
  curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(g);
}

static void sock_closed(uv_handle_t *h) {
  free(h->data);
}

static void sock_release(ck__curl_uv *g, sock *s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    g->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  g->nsocks--;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp) {
  ck__curl_uv *g = userp;
  sock *s = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      curl_multi_assign(g->multi, fd, NULL);
      sock_release(g, s);
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL)
      return -1;
    if (uv_poll_init_socket(g->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->g = g;
    s->fd = fd;
    s->poll.data = s;
    s->next = g->socks;
    if (g->socks)
      g->socks->prev = s;
    g->socks = s;
    g->nsocks++;
    curl_multi_assign(g->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN)
    ev |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    ev |= UV_WRITABLE;
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

static int timer_cb(CURLM *multi, long ms, void *userp) {
  ck__curl_uv *g = userp;
  /* Only arm the timer here: acting now would be a recursive call into curl. A 0 ms timer
   * runs on the next loop iteration, which is what curl means by "soon". */
  if (ms < 0)
    uv_timer_stop(&g->timer);
  else
    uv_timer_start(&g->timer, on_timer, (uint64_t)ms, 0);
  return 0;
}

ck__curl_uv *ck__curl_uv_new(uv_loop_t *loop) {
  ck__curl_uv *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return NULL;
  g->loop = loop;
  g->multi = curl_multi_init();
  if (g->multi == NULL || uv_timer_init(loop, &g->timer) != 0) {
    if (g->multi)
      curl_multi_cleanup(g->multi);
    free(g);
    return NULL;
  }
  g->timer.data = g;
  curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
  curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g);
  /* HTTP/2 to the provider multiplexes streams; curl opens more connections when a server
   * caps concurrent streams. */
  curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, 256L);
  return g;
}

static void glue_closed(uv_handle_t *h) {
  free(h->data);
}

void ck__curl_uv_free(ck__curl_uv *g) {
  if (g == NULL || g->closing)
    return;
  g->closing = true;
  /* Transfers still added belong to the caller, which removes them before freeing us; what is
   * left are idle cached connections, whose sockets curl reports as removed while cleaning. */
  curl_multi_cleanup(g->multi);
  g->multi = NULL;
  while (g->socks)
    sock_release(g, g->socks);
  uv_timer_stop(&g->timer);
  uv_close((uv_handle_t *)&g->timer, glue_closed);
}

int ck__curl_uv_add(ck__curl_uv *g, CURL *easy, ck__curl_done_fn done, void *ud) {
  xfer *x = malloc(sizeof(*x));
  if (x == NULL)
    return CK_ENOMEM;
  x->done = done;
  x->ud = ud;
  curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
  if (curl_multi_add_handle(g->multi, easy) != CURLM_OK) {
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
    return CK_EIO;
  }
  return CK_OK;
}

void ck__curl_uv_remove(ck__curl_uv *g, CURL *easy) {
  xfer *x = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
  if (x == NULL)
    return; /* not added, or already finished */
  curl_multi_remove_handle(g->multi, easy);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
  free(x);
}

bool ck__curl_uv_in_callback(const ck__curl_uv *g) {
  return g->in_cb > 0;
}

void ck__curl_uv_enter(ck__curl_uv *g) {
  g->in_cb++;
}

void ck__curl_uv_leave(ck__curl_uv *g) {
  g->in_cb--;
}

size_t ck__curl_uv_sockets(const ck__curl_uv *g) {
  return g->nsocks;
}
