/* The built-in demo model (see chatkit/demo.h). */
#include <chatkit/demo.h>
#include <chatkit/error.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct ck_demo {
  ck_demo_config cfg;
  ck_service *svc;
};

ck_demo *ck_demo_new(const ck_demo_config *cfg) {
  ck_demo *d = calloc(1, sizeof(*d));
  if (d != NULL && cfg != NULL)
    d->cfg = *cfg;
  return d;
}

void ck_demo_free(ck_demo *demo) {
  free(demo);
}

void ck_demo_attach(ck_demo *demo, ck_service *svc) {
  demo->svc = svc;
}

/* The user's text: input_text parts verbatim and tags as @name, like the reference's model
 * input conversion. */
static void user_text(const ck_json *msg, ck_buf *out) {
  const ck_json *content = ck_json_object_get(msg, "content");
  for (size_t i = 0; i < ck_json_array_size(content); i++) {
    const ck_json *part = ck_json_array_get(content, i);
    const char *type = ck_json_object_get_str(part, "type");
    const char *text = ck_json_object_get_str(part, "text");
    if (type != NULL && strcmp(type, "input_tag") == 0)
      ck_buf_putc(out, '@');
    if (text != NULL)
      ck_buf_puts(out, text);
  }
}

#define MAX_TOKENS 4096

/* The reply and how many tokens to send (cycling through the text when that is more than it
 * has). Tokens are found as they are sent, so a paced reply keeps no table of them. */
typedef struct reply {
  ck_buf text;
  size_t want; /* tokens to send */
} reply;

static void reply_free(reply *r) {
  ck_buf_free(&r->text);
}

/* The token at byte offset *pos: a word and the spaces after it. Moves *pos to the next token,
 * or back to the start after the last one. The text is never empty. */
static void next_token(const reply *r, size_t *pos, const char **p, size_t *n) {
  const char *t = r->text.data;
  size_t len = r->text.len, i = *pos < len ? *pos : 0, e = i;
  while (e < len && t[e] != ' ')
    e++;
  while (e < len && t[e] == ' ')
    e++;
  *p = t + i;
  *n = e - i;
  *pos = e < len ? e : 0;
}

/* The number of tokens in the text, capped at MAX_TOKENS. */
static size_t count_tokens(const reply *r) {
  size_t pos = 0, n = 0;
  do {
    const char *p;
    size_t k;
    next_token(r, &pos, &p, &k);
    n++;
  } while (pos != 0 && n < MAX_TOKENS);
  return n;
}

static int build_reply(ck_demo *d, const ck_json *msg, reply *r) {
  ck_buf said;
  ck_buf_init(&said, 4096);
  ck_buf_init(&r->text, 16384);
  user_text(msg, &said);
  if (said.len > 200)
    said.len = 200; /* quote a bounded prefix (may cut a UTF-8 sequence: trimmed below) */
  while (said.len > 0 && ((unsigned char)said.data[said.len - 1] & 0xC0) == 0x80)
    said.len--;
  if (said.len > 0 && (unsigned char)said.data[said.len - 1] >= 0xC0)
    said.len--;
  int rc = ck_buf_puts(&r->text, "You said: \"");
  if (rc == CK_OK && said.len)
    rc = ck_buf_append(&r->text, said.data, said.len);
  if (rc == CK_OK)
    rc = ck_buf_puts(&r->text, "\". This is the built-in demo model of chatkit-server. Set "
                               "OPENAI_API_KEY or OPENAI_BASE_URL to talk to a real model.");
  ck_buf_free(&said);
  if (rc != CK_OK)
    return rc;
  r->want = d->cfg.tokens > 0 ? (size_t)d->cfg.tokens : count_tokens(r);
  return CK_OK;
}

/* Names an untitled thread after the start of its first message. */
static int maybe_title(ck_stream *s, const ck_json *msg) {
  const ck_json *thread = ck_stream_thread_view(s);
  if (msg == NULL || ck_json_object_get(thread, "title") != NULL)
    return CK_OK;
  ck_buf t;
  ck_buf_init(&t, 4096);
  user_text(msg, &t);
  size_t n = t.len < 40 ? t.len : 40;
  while (n > 0 && n < t.len && ((unsigned char)t.data[n] & 0xC0) == 0x80)
    n--;
  int rc = CK_OK;
  if (n > 0) {
    ck_json *title = ck_json_strn(ck_stream_scratch(s), t.data, n);
    rc = title ? ck_stream_set_thread(s, "title", title) : CK_ENOMEM;
  }
  ck_buf_free(&t);
  return rc;
}

/* ---- Synchronous replies (no delay, or no loop to pace on) ---- */

static int respond_sync(ck_demo *d, ck_stream *s, reply *r) {
  ck_assistant *m = NULL;
  int rc = ck_assistant_begin(s, NULL, &m);
  size_t pos = 0;
  for (size_t k = 0; rc == CK_OK && k < r->want; k++) {
    const char *p;
    size_t n;
    next_token(r, &pos, &p, &n);
    if (k > 0 && d->cfg.delay_ms > 0)
      rc = ck_stream_sleep(s, d->cfg.delay_ms);
    if (rc == CK_OK)
      rc = ck_assistant_delta(m, p, n);
  }
  if (rc == CK_OK)
    rc = ck_assistant_end(m);
  return rc;
}

/* ---- Paced replies on the loop ---- */

typedef struct producer {
  uv_timer_t timer;
  ck_stream *s;
  ck_demo *demo;
  reply r;
  size_t k;   /* tokens sent */
  size_t pos; /* where the next token starts in r.text */
  const char *id, *thread_id, *created_at;
  atomic_bool stop;
} producer;

static void producer_closed(uv_handle_t *h) {
  producer *p = h->data;
  reply_free(&p->r);
  free(p);
}

static void finish(producer *p) {
  uv_timer_stop(&p->timer);
  ck_stream_on_cancel(p->s, NULL, NULL); /* p is freed soon: no callback may reach it */
  ck_stream_push_end(p->s);
  uv_close((uv_handle_t *)&p->timer, producer_closed);
}

/* The events of the first tick (the message and its content part), or of the last (the part
 * and the message, done), built in a scratch arena that lives only for the tick: the ticks in
 * between send a bare text delta and need none. */
static int push_first(producer *p, ck_arena *a) {
  ck_json *item = ck_item_assistant_message(a, p->id, p->thread_id, p->created_at, NULL);
  ck_json *ev = item ? ck_event_item(a, "thread.item.added", item) : NULL;
  int rc = ev ? ck_stream_push_canonical(p->s, ev) : CK_ENOMEM;
  ck_json *part = ck_assistant_content(a, "", 0);
  ck_json *upd = part ? ck_update_content_part(a, false, 0, part) : NULL;
  ev = upd ? ck_event_item_updated(a, p->id, upd) : NULL;
  if (rc == CK_OK)
    rc = ev ? ck_stream_push_canonical(p->s, ev) : CK_ENOMEM;
  return rc;
}

static int push_last(producer *p, ck_arena *a) {
  ck_buf full;
  ck_buf_init(&full, 0);
  int rc = CK_OK;
  size_t pos = 0;
  for (size_t k = 0; k < p->r.want && rc == CK_OK; k++) {
    const char *tok;
    size_t n;
    next_token(&p->r, &pos, &tok, &n);
    rc = ck_buf_append(&full, tok, n);
  }
  const char *text = full.data ? full.data : "";
  ck_json *part = ck_assistant_content(a, text, full.len);
  ck_json *upd = part ? ck_update_content_part(a, true, 0, part) : NULL;
  ck_json *ev = upd ? ck_event_item_updated(a, p->id, upd) : NULL;
  if (rc == CK_OK)
    rc = ev ? ck_stream_push_canonical(p->s, ev) : CK_ENOMEM;
  ck_json *content = ck_json_array(a);
  part = ck_assistant_content(a, text, full.len);
  ck_json_array_append(content, part);
  ck_json *item = ck_item_assistant_message(a, p->id, p->thread_id, p->created_at, content);
  ev = item ? ck_event_item(a, "thread.item.done", item) : NULL;
  if (rc == CK_OK)
    rc = ev ? ck_stream_push_canonical(p->s, ev) : CK_ENOMEM;
  ck_buf_free(&full);
  return rc;
}

static void on_tick(uv_timer_t *t) {
  producer *p = t->data;
  if (atomic_load(&p->stop)) {
    finish(p);
    return;
  }
  /* A tick's events (three on the first, three on the last) leave in one write. */
  ck_stream_push_hold(p->s);
  bool first = p->k == 0, last = p->k + 1 >= p->r.want;
  ck_arena *a = first || last ? ck_arena_new(1024) : NULL;
  int rc = (first || last) && a == NULL ? CK_ENOMEM : CK_OK;
  if (rc == CK_OK && first)
    rc = push_first(p, a);
  if (rc == CK_OK && p->k < p->r.want) {
    const char *tok;
    size_t n;
    next_token(&p->r, &p->pos, &tok, &n);
    rc = ck_stream_push_text_delta(p->s, p->id, 0, tok, n);
    p->k++;
  }
  if (rc == CK_OK && last)
    rc = push_last(p, a);
  ck_arena_free(a);
  if (rc != CK_OK || last)
    finish(p); /* ends the hold */
  else
    ck_stream_push_flush(p->s);
}

static void on_cancel(void *ud) {
  producer *p = ud;
  atomic_store(&p->stop, true);
}

static void start_on_loop(void *ud) {
  producer *p = ud;
  uv_timer_init(ck_service_loop(p->demo->svc), &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, on_tick, 0, (uint64_t)p->demo->cfg.delay_ms);
}

static int respond_async(ck_demo *d, ck_stream *s, reply *r) {
  producer *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return CK_ENOMEM;
  p->s = s;
  p->demo = d;
  p->r = *r; /* takes the reply text */
  p->id = ck_stream_new_id(s, "message");
  p->created_at = p->id ? ck_stream_now(s) : NULL;
  p->thread_id = ck_json_object_get_str(ck_stream_thread_view(s), "id");
  atomic_init(&p->stop, false);
  if (p->created_at == NULL) {
    free(p);
    return CK_ENOMEM;
  }
  ck_stream_on_cancel(s, on_cancel, p);
  if (ck_service_post(d->svc, start_on_loop, p) != CK_OK) {
    ck_stream_on_cancel(s, NULL, NULL);
    free(p);
    return CK_ENOMEM;
  }
  return CK_PENDING;
}

static int demo_respond(void *ud, ck_stream *s, const ck_json *msg) {
  ck_demo *d = ud;
  reply *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return CK_ENOMEM;
  int rc = maybe_title(s, msg);
  if (rc == CK_OK)
    rc = build_reply(d, msg, r);
  if (rc == CK_OK && d->cfg.delay_ms > 0 && d->svc != NULL) {
    rc = respond_async(d, s, r);
    if (rc != CK_PENDING)
      reply_free(r);
  } else {
    if (rc == CK_OK)
      rc = respond_sync(d, s, r);
    reply_free(r);
  }
  free(r);
  return rc;
}

ck_handlers ck_demo_handlers(ck_demo *demo) {
  ck_handlers h;
  memset(&h, 0, sizeof(h));
  h.ud = demo;
  h.respond = demo_respond;
  /* Without a delay the reply is pure computation; with one it is paced on the loop once
   * ck_demo_attach was called, as the header asks, so respond itself never blocks. */
  h.nonblocking = true;
  return h;
}
