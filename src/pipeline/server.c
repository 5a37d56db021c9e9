/* The request processor: construction, ids and time, dispatch, and the ten non-streaming
 * request types (protocol.md §4.7-§4.16). The streaming ones live in stream_ops.c. */
#include "pipeline/internal.h"
#include "protocol/datetime.h"

#include <chatkit/error.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int ck__set_error(ck_error_info *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
  }
  return code;
}

const char *ck_id_prefix(const char *kind) {
  static const char *const map[][2] = {
      {"thread", "thr"},  {"message", "msg"},    {"tool_call", "tc"},           {"task", "tsk"},
      {"workflow", "wf"}, {"attachment", "atc"}, {"sdk_hidden_context", "shcx"}};
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(kind, map[i][0]) == 0)
      return map[i][1];
  return NULL;
}

/* Takes `n` (at most 16) random bytes from the server's buffer, refilling it when empty. */
static int take_random(ck_server *srv, unsigned char *out, size_t n) {
  int rc = CK_OK;
  pthread_mutex_lock(&srv->rnd_mu);
  if (srv->rnd_pos + n > sizeof(srv->rnd)) {
    if (getrandom(srv->rnd, sizeof(srv->rnd), 0) == (ssize_t)sizeof(srv->rnd))
      srv->rnd_pos = 0;
    else
      rc = CK_EIO;
  }
  if (rc == CK_OK) {
    memcpy(out, srv->rnd + srv->rnd_pos, n);
    srv->rnd_pos += n;
  }
  pthread_mutex_unlock(&srv->rnd_mu);
  return rc;
}

/* The reference's default: the prefix, '_' and the first 8 hex digits of a random UUID. */
static int default_idgen(void *ud, const char *kind, const ck_json *thread, char *out, size_t cap) {
  const char *prefix = ck_id_prefix(kind);
  unsigned char r[4];
  if (prefix == NULL)
    prefix = kind;
  if (take_random(ud, r, sizeof(r)) != CK_OK)
    return CK_EIO;
  int n = snprintf(out, cap, "%s_%02x%02x%02x%02x", prefix, r[0], r[1], r[2], r[3]);
  return (n < 0 || (size_t)n >= cap) ? CK_ETOOBIG : CK_OK;
}

/* Local wall-clock time, like the reference's naive datetime.now(). */
static int64_t default_clock(void *ud) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  time_t t = tv.tv_sec;
  localtime_r(&t, &tm);
  return ((int64_t)tv.tv_sec + tm.tm_gmtoff) * 1000000 + tv.tv_usec;
}

ck_server *ck_server_new(const ck_server_config *cfg) {
  if (cfg == NULL || cfg->store == NULL)
    return NULL;
  ck_server *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return NULL;
  srv->store = cfg->store;
  srv->attachments = cfg->attachments;
  srv->h = cfg->handlers;
  srv->idgen = cfg->idgen ? cfg->idgen : default_idgen;
  srv->idgen_ud = cfg->idgen ? cfg->idgen_ud : srv;
  pthread_mutex_init(&srv->rnd_mu, NULL);
  srv->rnd_pos = sizeof(srv->rnd);
  srv->clock = cfg->clock ? cfg->clock : default_clock;
  srv->clock_ud = cfg->clock_ud;
  srv->lease_ms = cfg->stream_lease_ms == 0 ? CK_STREAM_LEASE_DEFAULT_MS : cfg->stream_lease_ms;
  /* The holder id must differ between processes sharing a store, so it starts with random
   * bytes; without randomness the pid and the time still tell processes apart. */
  unsigned char r[8];
  if (getrandom(r, sizeof(r), 0) == (ssize_t)sizeof(r))
    snprintf(srv->lease_prefix, sizeof(srv->lease_prefix), "%02x%02x%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
  else
    snprintf(srv->lease_prefix, sizeof(srv->lease_prefix), "%ld.%lld", (long)getpid(),
             (long long)time(NULL));
  return srv;
}

void ck_server_free(ck_server *srv) {
  if (srv == NULL)
    return;
  pthread_mutex_destroy(&srv->rnd_mu);
  free(srv);
}

void ck_server_set_handlers(ck_server *srv, ck_handlers handlers) {
  srv->h = handlers;
}

bool ck_server_handlers_nonblocking(const ck_server *srv) {
  return srv->h.nonblocking;
}

ck_store *ck_server_store(ck_server *srv) {
  return srv->store;
}

const char *ck_server_generate_id(ck_server *srv, ck_arena *a, const char *kind,
                                  const ck_json *thread) {
  char id[128];
  if (srv->idgen(srv->idgen_ud, kind, thread, id, sizeof(id)) != CK_OK)
    return NULL;
  return ck_arena_strdup(a, id);
}

const char *ck_server_now(ck_server *srv, ck_arena *a) {
  ck__datetime dt = ck__datetime_naive(srv->clock(srv->clock_ud));
  char text[CK_DATETIME_MAX];
  size_t n = ck__datetime_format(&dt, text);
  return ck_arena_strndup(a, text, n);
}

int ck__page_limit(const ck_json *params) {
  int64_t limit = 0;
  const ck_json *v = ck_json_object_get(params, "limit");
  if (v != NULL && ck_json_int_value(v, &limit) != CK_OK)
    limit = ck_json_number_value(v) < 0 ? INT_MIN : INT_MAX;
  if (limit == 0)
    return 20;
  if (limit > INT_MAX)
    return INT_MAX;
  if (limit < INT_MIN)
    return INT_MIN;
  return (int)limit;
}

/* Store errors reach the client as the processor's error kinds. */
static int store_error(ck_error_info *err, int rc, const char *what, const char *id) {
  if (rc == CK_ENOTFOUND)
    return ck__set_error(err, rc, "%s %s not found", what, id ? id : "");
  if (rc == CK_ENOMEM)
    return ck__set_error(err, rc, "out of memory");
  return ck__set_error(err, rc == CK_EINVAL ? CK_ESTORE : rc, "store error: %s", ck_strerror(rc));
}

static const char *param_str(const ck_request *req, const char *key) {
  return ck_json_object_get_str(req->params, key);
}

static ck_order param_order(const ck_request *req) {
  const char *o = param_str(req, "order");
  return (o != NULL && strcmp(o, "asc") == 0) ? CK_ORDER_ASC : CK_ORDER_DESC;
}

/* The first occurrence of `key` (which starts with ',') in `text`. Canonical records have few
 * commas outside their long string values, so hopping from comma to comma with memchr beats a
 * general substring search on these short texts (listing 20 threads does it 20 times). */
static const char *find_comma_key(const char *text, size_t len, const char *key, size_t klen) {
  const char *p = text, *end = text + len;
  while (p + klen <= end) {
    p = memchr(p, ',', (size_t)(end - p));
    if (p == NULL || p + klen > end)
      return NULL;
    if (memcmp(p, key, klen) == 0)
      return p;
    p++;
  }
  return NULL;
}

/* The type of a stored item given as canonical text. Canonical items start with three string
 * members (id, thread_id, created_at) and JSON strings cannot hold a raw quote, so the first
 * `,"type":"` is the item's own type. Returns NULL when the text is not shaped like that. */
static const char *raw_item_type(const char *text, size_t len, size_t *tlen) {
  static const char key[] = ",\"type\":\"";
  const char *p = find_comma_key(text, len, key, sizeof(key) - 1);
  if (p == NULL)
    return NULL;
  p += sizeof(key) - 1;
  const char *end = memchr(p, '"', len - (size_t)(p - text));
  if (end == NULL)
    return NULL;
  *tlen = (size_t)(end - p);
  return p;
}

/* Whether a RAW item can be sent as stored: not hidden, and no private attachment metadata
 * (a conservative test: any "metadata" key in a user message sends it the slow way). Sets
 * `*skip` for hidden items. Returns false when the item must be expanded and checked. */
static bool raw_item_passes(const ck_json *item, bool *skip) {
  size_t len = 0, tlen = 0;
  const char *text = ck_json_raw_text(item, &len);
  const char *type = text ? raw_item_type(text, len, &tlen) : NULL;
  *skip = false;
  if (type == NULL)
    return false;
  if ((tlen == 19 && memcmp(type, "hidden_context_item", 19) == 0) ||
      (tlen == 18 && memcmp(type, "sdk_hidden_context", 18) == 0)) {
    *skip = true;
    return true;
  }
  if (tlen == 12 && memcmp(type, "user_message", 12) == 0)
    return memmem(text, len, "\"metadata\":", 11) == NULL;
  return true;
}

/* Removes hidden items from a page's data and strips private attachment metadata. Items the
 * store returned as RAW text are passed through untouched when that is safe, so a typical
 * listing is spliced from stored bytes without parsing or re-serialising. */
static int filter_page_items(ck_arena *a, ck_page *page) {
  ck_json *out = ck_json_array(a);
  if (out == NULL)
    return CK_ENOMEM;
  size_t n = ck_json_array_size(page->data);
  for (size_t i = 0; i < n; i++) {
    ck_json *raw = ck_json_array_get(page->data, i);
    bool skip = false;
    if (ck_json_typeof(raw) == CK_JSON_RAW && raw_item_passes(raw, &skip)) {
      if (!skip && ck_json_array_append(out, raw) != CK_OK)
        return CK_ENOMEM;
      continue;
    }
    ck_json *item = ck_json_expand(a, raw);
    if (item == NULL)
      return CK_ESTORE;
    if (ck_item_type_is_hidden(ck_json_object_get_str(item, "type")))
      continue;
    item = ck_item_for_wire(a, item);
    if (item == NULL || ck_json_array_append(out, item) != CK_OK)
      return CK_ENOMEM;
  }
  page->data = out;
  return CK_OK;
}

static int write_empty(ck_buf *body) {
  return ck_buf_puts(body, "{}");
}

static int op_get_by_id(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                        ck_buf *body, ck_error_info *err) {
  const char *tid = param_str(req, "thread_id");
  ck_json *thread = NULL;
  ck_page page = {0};
  int rc = srv->store->vt->load_thread(srv->store, a, tid, ctx, &thread);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", tid);
  rc = srv->store->vt->load_thread_items(srv->store, a, tid, NULL, 20, CK_ORDER_ASC, ctx, &page);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", tid);
  rc = filter_page_items(a, &page);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", tid);
  ck_json *items = ck_page_json(a, page.data, page.has_more, page.after);
  ck_json *wire = items ? ck_thread_for_wire(a, thread, items) : NULL;
  if (wire == NULL)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  return ck_json_write(body, wire);
}

/* The wire form of a stored thread kept as canonical text: the same text with `metadata`
 * emptied and the empty items page added. Canonical threads end with their metadata member,
 * and the members before it are strings or small objects of strings, which cannot hold a raw
 * quote, so the first `,"metadata":` is the key. Returns NULL when the text is not shaped like
 * that (the caller then takes the slow path). */
static ck_json *raw_thread_for_wire(ck_arena *a, const ck_json *raw) {
  static const char key[] = ",\"metadata\":";
  static const char tail[] = ",\"metadata\":{},\"items\":{\"data\":[],\"has_more\":false}}";
  size_t len = 0;
  const char *text = ck_json_raw_text(raw, &len);
  const char *p = text ? find_comma_key(text, len, key, sizeof(key) - 1) : NULL;
  if (p == NULL)
    return NULL;
  size_t head = (size_t)(p - text);
  char *out = ck_arena_alloc(a, head + sizeof(tail));
  if (out == NULL)
    return NULL;
  memcpy(out, text, head);
  memcpy(out + head, tail, sizeof(tail));
  return ck_json_raw(a, out, head + sizeof(tail) - 1);
}

static int op_threads_list(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                           ck_buf *body, ck_error_info *err) {
  ck_page page = {0};
  const char *after = param_str(req, "after");
  int rc = srv->store->vt->load_threads(srv->store, a, ck__page_limit(req->params), after,
                                        param_order(req), ctx, &page);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", after);
  ck_json *data = ck_json_array(a);
  if (data == NULL)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  size_t n = ck_json_array_size(page.data);
  for (size_t i = 0; i < n; i++) {
    ck_json *rec = ck_json_array_get(page.data, i);
    ck_json *w = ck_json_typeof(rec) == CK_JSON_RAW ? raw_thread_for_wire(a, rec) : NULL;
    if (w == NULL) {
      ck_json *t = ck_json_expand(a, rec);
      w = t ? ck_thread_for_wire(a, t, NULL) : NULL;
    }
    if (w == NULL || ck_json_array_append(data, w) != CK_OK)
      return ck__set_error(err, CK_ENOMEM, "out of memory");
  }
  ck_json *out = ck_page_json(a, data, page.has_more, page.after);
  if (out == NULL)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  return ck_json_write(body, out);
}

static int op_items_list(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                         ck_buf *body, ck_error_info *err) {
  ck_page page = {0};
  const char *tid = param_str(req, "thread_id");
  int rc =
      srv->store->vt->load_thread_items(srv->store, a, tid, param_str(req, "after"),
                                        ck__page_limit(req->params), param_order(req), ctx, &page);
  if (rc == CK_OK)
    rc = filter_page_items(a, &page);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", tid);
  ck_json *out = ck_page_json(a, page.data, page.has_more, page.after);
  if (out == NULL)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  return ck_json_write(body, out);
}

static int op_feedback(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                       ck_buf *body, ck_error_info *err) {
  if (srv->h.add_feedback != NULL) {
    ck_call call = {srv, a, ctx};
    int rc =
        srv->h.add_feedback(srv->h.ud, &call, param_str(req, "thread_id"),
                            ck_json_object_get(req->params, "item_ids"), param_str(req, "kind"));
    if (rc != CK_OK)
      return ck__set_error(err, rc, "add_feedback failed: %s", ck_strerror(rc));
  }
  return write_empty(body);
}

static int op_attachments_create(ck_server *srv, ck_arena *a, const ck_request *req,
                                 const ck_ctx *ctx, ck_buf *body, ck_error_info *err) {
  if (srv->attachments == NULL)
    return ck__set_error(err, CK_EUNSUPPORTED,
                         "AttachmentStore is not configured; file uploads are disabled");
  if (srv->attachments->create == NULL)
    return ck__set_error(err, CK_EUNSUPPORTED, "two-phase upload is not supported");
  int64_t size = 0;
  ck_json_int_value(ck_json_object_get(req->params, "size"), &size);
  ck_call call = {srv, a, ctx};
  ck_json *att = NULL;
  int rc = srv->attachments->create(srv->attachments->ud, &call, param_str(req, "name"), size,
                                    param_str(req, "mime_type"), &att);
  if (rc != CK_OK || att == NULL)
    return ck__set_error(err, rc != CK_OK ? rc : CK_EHANDLER, "create_attachment failed: %s",
                         ck_strerror(rc != CK_OK ? rc : CK_EHANDLER));
  ck_json *canon = NULL;
  ck_validation_error verr;
  rc = ck_protocol_normalize(a, CK_MODEL_ATTACHMENT, att, &canon, &verr);
  if (rc != CK_OK)
    return ck__set_error(err, CK_EHANDLER, "invalid attachment from the attachment store: %s: %s",
                         verr.path, verr.message);
  rc = srv->store->vt->save_attachment(srv->store, canon, ctx);
  if (rc != CK_OK)
    return store_error(err, rc, "Attachment", ck_json_object_get_str(canon, "id"));
  return ck_json_write(body, ck_attachment_for_wire(a, canon));
}

static int op_attachments_delete(ck_server *srv, ck_arena *a, const ck_request *req,
                                 const ck_ctx *ctx, ck_buf *body, ck_error_info *err) {
  const char *id = param_str(req, "attachment_id");
  if (srv->attachments == NULL)
    return ck__set_error(err, CK_EUNSUPPORTED,
                         "AttachmentStore is not configured; file uploads are disabled");
  if (srv->attachments->remove != NULL) {
    ck_call call = {srv, a, ctx};
    int rc = srv->attachments->remove(srv->attachments->ud, &call, id);
    if (rc != CK_OK)
      return ck__set_error(err, rc, "delete_attachment failed: %s", ck_strerror(rc));
  }
  int rc = srv->store->vt->delete_attachment(srv->store, id, ctx);
  if (rc != CK_OK)
    return store_error(err, rc, "Attachment", id);
  return write_empty(body);
}

static int op_threads_update(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                             ck_buf *body, ck_error_info *err) {
  const char *tid = param_str(req, "thread_id");
  ck_json *thread = NULL;
  int rc = srv->store->vt->load_thread(srv->store, a, tid, ctx, &thread);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", tid);
  ck_json *title = ck_json_str(a, param_str(req, "title"));
  if (title == NULL)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  /* The title is the first field of a thread; an absent one must go first, not last. */
  ck_json *updated = ck_json_object(a);
  if (updated == NULL || ck_json_object_set(updated, "title", title) != CK_OK)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  size_t n = ck_json_object_size(thread);
  for (size_t i = 0; i < n; i++) {
    const char *k = ck_json_object_key(thread, i);
    if (strcmp(k, "title") != 0 &&
        ck_json_object_set(updated, k, ck_json_object_value(thread, i)) != CK_OK)
      return ck__set_error(err, CK_ENOMEM, "out of memory");
  }
  rc = srv->store->vt->save_thread(srv->store, updated, ctx);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", tid);
  ck_json *wire = ck_thread_for_wire(a, updated, NULL);
  if (wire == NULL)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  return ck_json_write(body, wire);
}

static int op_threads_delete(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                             ck_buf *body, ck_error_info *err) {
  const char *tid = param_str(req, "thread_id");
  int rc = srv->store->vt->delete_thread(srv->store, tid, ctx);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", tid);
  return write_empty(body);
}

/* Python's non-validating b64decode: characters outside the alphabet are skipped, and the
 * data must end on a whole quantum (with '=' padding); anything else is an error. */
static int b64_decode_lenient(ck_arena *a, const char *in, size_t n, unsigned char **out,
                              size_t *outlen) {
  unsigned char *buf = ck_arena_alloc(a, n / 4 * 3 + 3);
  if (buf == NULL)
    return CK_ENOMEM;
  uint32_t acc = 0;
  size_t bits = 0, len = 0, pad = 0, quads = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=') {
      if (quads % 4 >= 2) {
        pad++;
        if (quads % 4 + pad == 4) {
          break; /* a complete padded quantum ends the data */
        }
      }
      continue;
    } else
      continue;
    if (pad)
      return CK_EINVAL;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    quads++;
    if (bits >= 8) {
      bits -= 8;
      buf[len++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (quads % 4 == 1 || (quads % 4 != 0 && quads % 4 + pad != 4))
    return CK_EINVAL;
  *out = buf;
  *outlen = len;
  return CK_OK;
}

static int op_transcribe(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                         ck_buf *body, ck_error_info *err) {
  const ck_json *b64 = ck_json_object_get(req->params, "audio_base64");
  unsigned char *audio = NULL;
  size_t len = 0;
  if (b64_decode_lenient(a, ck_json_str_value(b64), ck_json_str_len(b64), &audio, &len) != CK_OK)
    return ck__set_error(err, CK_EINVAL, "input.transcribe.params.audio_base64: invalid base64");
  if (srv->h.transcribe == NULL)
    return ck__set_error(err, CK_EUNSUPPORTED, "transcription is not supported by this server");
  const char *mime = param_str(req, "mime_type");
  const char *semi = strchr(mime, ';');
  const char *media = semi ? ck_arena_strndup(a, mime, (size_t)(semi - mime)) : mime;
  const char *text = NULL;
  ck_call call = {srv, a, ctx};
  int rc = srv->h.transcribe(srv->h.ud, &call, audio, len, mime, media, &text);
  if (rc != CK_OK || text == NULL)
    return ck__set_error(err, rc != CK_OK ? rc : CK_EHANDLER, "transcription failed");
  ck_json *out = ck_json_object(a);
  ck_json *tv = ck_json_str(a, text);
  if (out == NULL || tv == NULL || ck_json_object_set(out, "text", tv) != CK_OK)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  return ck_json_write(body, out);
}

static int op_sync_action(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                          ck_buf *body, ck_error_info *err) {
  const char *tid = param_str(req, "thread_id");
  const char *item_id = param_str(req, "item_id");
  ck_json *thread = NULL, *sender = NULL;
  int rc = srv->store->vt->load_thread(srv->store, a, tid, ctx, &thread);
  if (rc != CK_OK)
    return store_error(err, rc, "Thread", tid);
  if (item_id != NULL && item_id[0] != '\0') {
    rc = srv->store->vt->load_item(srv->store, a, tid, item_id, ctx, &sender);
    if (rc != CK_OK)
      return store_error(err, rc, "Item", item_id);
    const char *type = ck_json_object_get_str(sender, "type");
    if (type == NULL || strcmp(type, "widget") != 0)
      return ck__set_error(err, CK_ESTATE,
                           "threads.sync_custom_action requires a widget sender item");
  }
  if (srv->h.sync_action == NULL)
    return ck__set_error(err, CK_EUNSUPPORTED, "sync_action is not implemented by this server");
  ck_call call = {srv, a, ctx};
  ck_json *updated = NULL;
  rc = srv->h.sync_action(srv->h.ud, &call, thread, ck_json_object_get(req->params, "action"),
                          sender, &updated);
  if (rc != CK_OK)
    return ck__set_error(err, rc, "sync_action failed: %s", ck_strerror(rc));
  ck_json *out = ck_json_object(a);
  if (out == NULL)
    return ck__set_error(err, CK_ENOMEM, "out of memory");
  if (updated != NULL && !ck_json_is_null(updated)) {
    ck_json *canon = NULL;
    ck_validation_error verr;
    if (ck_protocol_normalize(a, CK_MODEL_THREAD_ITEM, updated, &canon, &verr) != CK_OK)
      return ck__set_error(err, CK_EHANDLER, "invalid item from sync_action: %s: %s", verr.path,
                           verr.message);
    canon = ck_item_for_wire(a, canon);
    if (canon == NULL || ck_json_object_set(out, "updated_item", canon) != CK_OK)
      return ck__set_error(err, CK_ENOMEM, "out of memory");
  }
  return ck_json_write(body, out);
}

int ck__process_json(ck_server *srv, ck_arena *a, const ck_request *req, const ck_ctx *ctx,
                     ck_buf *body, ck_error_info *err) {
  switch (req->type) {
  case CK_REQ_THREADS_GET_BY_ID:
    return op_get_by_id(srv, a, req, ctx, body, err);
  case CK_REQ_THREADS_LIST:
    return op_threads_list(srv, a, req, ctx, body, err);
  case CK_REQ_ITEMS_LIST:
    return op_items_list(srv, a, req, ctx, body, err);
  case CK_REQ_ITEMS_FEEDBACK:
    return op_feedback(srv, a, req, ctx, body, err);
  case CK_REQ_ATTACHMENTS_CREATE:
    return op_attachments_create(srv, a, req, ctx, body, err);
  case CK_REQ_ATTACHMENTS_DELETE:
    return op_attachments_delete(srv, a, req, ctx, body, err);
  case CK_REQ_THREADS_UPDATE:
    return op_threads_update(srv, a, req, ctx, body, err);
  case CK_REQ_THREADS_DELETE:
    return op_threads_delete(srv, a, req, ctx, body, err);
  case CK_REQ_INPUT_TRANSCRIBE:
    return op_transcribe(srv, a, req, ctx, body, err);
  case CK_REQ_THREADS_SYNC_CUSTOM_ACTION:
    return op_sync_action(srv, a, req, ctx, body, err);
  default:
    return ck__set_error(err, CK_EINVAL, "not a non-streaming request");
  }
}
