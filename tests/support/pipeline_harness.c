/* See pipeline_harness.h. */
#include "pipeline_harness.h"

#include <chatkit/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ck_ctx hx_user1 = {"u1", NULL, NULL};

static hx *of(ck_store *s) {
  return (hx *)s;
}

static int w_load_thread(ck_store *s, ck_arena *a, const char *id, const ck_ctx *ctx,
                         ck_json **out) {
  return of(s)->inner->vt->load_thread(of(s)->inner, a, id, ctx, out);
}

static int w_save_thread(ck_store *s, const ck_json *t, const ck_ctx *ctx) {
  return of(s)->inner->vt->save_thread(of(s)->inner, t, ctx);
}

static int w_delete_thread(ck_store *s, const char *id, const ck_ctx *ctx) {
  return of(s)->inner->vt->delete_thread(of(s)->inner, id, ctx);
}

static int w_load_threads(ck_store *s, ck_arena *a, int limit, const char *after, ck_order o,
                          const ck_ctx *ctx, ck_page *out) {
  return of(s)->inner->vt->load_threads(of(s)->inner, a, limit, after, o, ctx, out);
}

static int w_load_thread_items(ck_store *s, ck_arena *a, const char *tid, const char *after,
                               int limit, ck_order o, const ck_ctx *ctx, ck_page *out) {
  return of(s)->inner->vt->load_thread_items(of(s)->inner, a, tid, after, limit, o, ctx, out);
}

static int w_add_thread_item(ck_store *s, const char *tid, const ck_json *item, const ck_ctx *ctx) {
  hx *h = of(s);
  h->add_calls++;
  const char *type = ck_json_object_get_str(item, "type");
  if (h->fail_add_type != NULL && type != NULL && strcmp(type, h->fail_add_type) == 0)
    return CK_ESTORE;
  return h->inner->vt->add_thread_item(h->inner, tid, item, ctx);
}

static int w_save_item(ck_store *s, const char *tid, const ck_json *item, const ck_ctx *ctx) {
  return of(s)->inner->vt->save_item(of(s)->inner, tid, item, ctx);
}

static int w_load_item(ck_store *s, ck_arena *a, const char *tid, const char *id, const ck_ctx *ctx,
                       ck_json **out) {
  return of(s)->inner->vt->load_item(of(s)->inner, a, tid, id, ctx, out);
}

static int w_delete_thread_item(ck_store *s, const char *tid, const char *id, const ck_ctx *ctx) {
  return of(s)->inner->vt->delete_thread_item(of(s)->inner, tid, id, ctx);
}

static int w_save_attachment(ck_store *s, const ck_json *att, const ck_ctx *ctx) {
  return of(s)->inner->vt->save_attachment(of(s)->inner, att, ctx);
}

static int w_load_attachment(ck_store *s, ck_arena *a, const char *id, const ck_ctx *ctx,
                             ck_json **out) {
  return of(s)->inner->vt->load_attachment(of(s)->inner, a, id, ctx, out);
}

static int w_delete_attachment(ck_store *s, const char *id, const ck_ctx *ctx) {
  return of(s)->inner->vt->delete_attachment(of(s)->inner, id, ctx);
}

static int w_ping(ck_store *s) {
  return CK_OK;
}

/* The wrapper does not own itself; hx_free frees the inner store. */
static void w_destroy(ck_store *s) {
}

static int w_acquire_stream(ck_store *s, const char *tid, const char *holder, int ttl_ms,
                            const ck_ctx *ctx) {
  hx *h = of(s);
  h->acquire_calls++;
  if (h->fail_acquire != CK_OK)
    return h->fail_acquire;
  return h->inner->vt->acquire_stream(h->inner, tid, holder, ttl_ms, ctx);
}

static int w_release_stream(ck_store *s, const char *tid, const char *holder, const ck_ctx *ctx) {
  hx *h = of(s);
  h->release_calls++;
  return h->inner->vt->release_stream(h->inner, tid, holder, ctx);
}

static int w_renew_stream(ck_store *s, const char *tid, const char *holder, int ttl_ms,
                          const ck_ctx *ctx) {
  hx *h = of(s);
  h->renew_calls++;
  return h->inner->vt->renew_stream(h->inner, tid, holder, ttl_ms, ctx);
}

static const ck_store_vtable wrapper_vt = {.load_thread = w_load_thread,
                                           .save_thread = w_save_thread,
                                           .delete_thread = w_delete_thread,
                                           .load_threads = w_load_threads,
                                           .load_thread_items = w_load_thread_items,
                                           .add_thread_item = w_add_thread_item,
                                           .save_item = w_save_item,
                                           .load_item = w_load_item,
                                           .delete_thread_item = w_delete_thread_item,
                                           .save_attachment = w_save_attachment,
                                           .load_attachment = w_load_attachment,
                                           .delete_attachment = w_delete_attachment,
                                           .ping = w_ping,
                                           .destroy = w_destroy,
                                           .acquire_stream = w_acquire_stream,
                                           .release_stream = w_release_stream,
                                           .renew_stream = w_renew_stream};

static int idgen(void *ud, const char *kind, const ck_json *thread, char *out, size_t cap) {
  hx *h = ud;
  const char *prefix = ck_id_prefix(kind);
  if (prefix == NULL)
    prefix = kind;
  size_t i = 0;
  while (i < h->nids && strcmp(h->ids[i].prefix, prefix) != 0)
    i++;
  if (i == h->nids) {
    if (h->nids == sizeof(h->ids) / sizeof(h->ids[0]))
      return CK_ETOOBIG;
    snprintf(h->ids[i].prefix, sizeof(h->ids[i].prefix), "%s", prefix);
    h->ids[i].n = 0;
    h->nids++;
  }
  snprintf(out, cap, "%s_%04d", prefix, ++h->ids[i].n);
  return CK_OK;
}

/* 2025-01-01T00:00:00 as microseconds since the epoch, plus one second per reading. */
static int64_t clock_fn(void *ud) {
  hx *h = ud;
  return 1735689600LL * 1000000 + 1000000LL * h->clock_n++;
}

static int collect(void *ud, const char *frame, size_t len) {
  hx *h = ud;
  if (h->cancel_at > 0 && h->nframes + 1 == h->cancel_at)
    return CK_ECANCELLED;
  if (h->nframes == HX_MAX_FRAMES)
    return CK_ETOOBIG;
  if (len < 8 || memcmp(frame, "data: ", 6) != 0 || memcmp(frame + len - 2, "\n\n", 2) != 0 ||
      memchr(frame, '\n', len - 2) != NULL) {
    h->bad_framing = true;
    return CK_OK;
  }
  char *p = malloc(len - 7);
  if (p == NULL)
    return CK_ENOMEM;
  memcpy(p, frame + 6, len - 8);
  p[len - 8] = '\0';
  h->frames[h->nframes++] = p;
  return CK_OK;
}

void hx_init(hx *h, const ck_handlers *handlers) {
  hx_init_lease(h, handlers, 0);
}

void hx_init_lease(hx *h, const ck_handlers *handlers, int stream_lease_ms) {
  memset(h, 0, sizeof(*h));
  h->base.vt = &wrapper_vt;
  h->base.name = "test-wrapper";
  h->inner = ck_store_memory_new();
  h->sink.frame = collect;
  h->sink.ud = h;
  ck_server_config cfg = {0};
  cfg.store = &h->base;
  if (handlers != NULL)
    cfg.handlers = *handlers;
  cfg.idgen = idgen;
  cfg.idgen_ud = h;
  cfg.clock = clock_fn;
  cfg.clock_ud = h;
  cfg.stream_lease_ms = stream_lease_ms;
  h->srv = h->inner ? ck_server_new(&cfg) : NULL;
  if (h->srv == NULL)
    abort();
}

void hx_clear_frames(hx *h) {
  for (size_t i = 0; i < h->nframes; i++)
    free(h->frames[i]);
  h->nframes = 0;
  h->bad_framing = false;
}

void hx_free(hx *h) {
  hx_clear_frames(h);
  ck_server_free(h->srv);
  ck_store_free(h->inner);
}

const ck_sink *hx_sink(hx *h) {
  return &h->sink;
}

void *hx_run_stream(void *arg) {
  hx_runner *r = arg;
  r->rc = ck_stream_run(r->s, hx_sink(r->h));
  return NULL;
}

int hx_open_stream(hx *h, const ck_ctx *ctx, const char *body, ck_stream **s) {
  ck_response resp;
  ck_error_info err;
  int rc = ck_server_process(h->srv, body, strlen(body), ctx ? ctx : &hx_user1, &resp, &err);
  if (rc != CK_OK)
    return rc;
  if (resp.stream == NULL) {
    free(resp.body);
    return CK_EINVAL;
  }
  *s = resp.stream;
  return CK_OK;
}

int hx_request(hx *h, const ck_ctx *ctx, const char *body, char **json, ck_error_info *err) {
  ck_response resp;
  ck_error_info local;
  if (err == NULL)
    err = &local;
  memset(err, 0, sizeof(*err));
  if (json != NULL)
    *json = NULL;
  hx_clear_frames(h);
  int rc = ck_server_process(h->srv, body, strlen(body), ctx ? ctx : &hx_user1, &resp, err);
  if (rc != CK_OK)
    return rc;
  if (resp.stream != NULL) {
    rc = ck_stream_run(resp.stream, &h->sink);
    if (rc != CK_OK && rc != CK_ECANCELLED)
      *err = *ck_stream_error(resp.stream);
    ck_stream_free(resp.stream);
    return rc;
  }
  if (json != NULL)
    *json = resp.body;
  else
    free(resp.body);
  return CK_OK;
}

const char *hx_frame(const hx *h, size_t i) {
  return i < h->nframes ? h->frames[i] : NULL;
}

long hx_find(const hx *h, const char *needle) {
  for (size_t i = 0; i < h->nframes; i++)
    if (strstr(h->frames[i], needle) != NULL)
      return (long)i;
  return -1;
}

size_t hx_stored_items(hx *h, const ck_ctx *ctx, const char *tid, char **out, size_t cap) {
  ck_arena *a = ck_arena_new(0);
  ck_page page = {0};
  size_t n = 0;
  if (h->inner->vt->load_thread_items(h->inner, a, tid, NULL, 10000, CK_ORDER_ASC,
                                      ctx ? ctx : &hx_user1, &page) == CK_OK) {
    for (size_t i = 0; i < ck_json_array_size(page.data) && n < cap; i++) {
      size_t len = 0;
      char *text = ck_json_dumps(a, ck_json_array_get(page.data, i), &len);
      out[n] = text ? strdup(text) : NULL;
      if (out[n] != NULL)
        n++;
    }
  }
  ck_arena_free(a);
  return n;
}

void hx_free_strings(char **s, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(s[i]);
}
