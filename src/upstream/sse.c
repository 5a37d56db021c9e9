/* The incremental SSE parser (see upstream/sse.h). */
#include "upstream/sse.h"

#include <chatkit/error.h>

#include <string.h>

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

void ck__sse_init(ck__sse *p, size_t max, ck__sse_event_fn on_event, void *ud) {
  memset(p, 0, sizeof(*p));
  if (max == 0)
    max = CK__SSE_DEFAULT_MAX;
  ck_buf_init(&p->line, max);
  ck_buf_init(&p->data, max);
  /* An event name is a single line, so the line cap bounds it already. */
  ck_buf_init(&p->event, max);
  p->on_event = on_event;
  p->ud = ud;
}

void ck__sse_free(ck__sse *p) {
  if (p == NULL)
    return;
  ck_buf_free(&p->line);
  ck_buf_free(&p->data);
  ck_buf_free(&p->event);
}

void ck__sse_reset(ck__sse *p) {
  ck_buf_reset(&p->line);
  ck_buf_reset(&p->data);
  ck_buf_reset(&p->event);
  p->bom_seen = 0;
  p->started = false;
  p->skip_lf = false;
  p->has_data = false;
  p->failed = false;
  p->comments = 0;
}

bool ck__sse_is_done(const char *data, size_t len) {
  size_t b = 0, e = len;
  while (b < e && (data[b] == ' ' || data[b] == '\t' || data[b] == '\r' || data[b] == '\n'))
    b++;
  while (e > b &&
         (data[e - 1] == ' ' || data[e - 1] == '\t' || data[e - 1] == '\r' || data[e - 1] == '\n'))
    e--;
  return e - b == 6 && memcmp(data + b, "[DONE]", 6) == 0;
}

/* Marks the parser failed and returns `rc`, so every error path is one expression. */
static int fail(ck__sse *p, int rc) {
  p->failed = true;
  return rc;
}

static int dispatch(ck__sse *p) {
  if (!p->has_data) {
    /* The spec drops an event without data lines, and its name with it. */
    ck_buf_reset(&p->event);
    return CK_OK;
  }
  const char *ev = p->event.len ? p->event.data : "message";
  size_t ev_len = p->event.len ? p->event.len : 7;
  const char *data = p->data.len ? p->data.data : "";
  int rc = p->on_event ? p->on_event(p->ud, ev, ev_len, data, p->data.len) : 0;
  ck_buf_reset(&p->data);
  ck_buf_reset(&p->event);
  p->has_data = false;
  return rc;
}

/* Handles one complete line (without its terminator). */
static int process_line(ck__sse *p, const char *line, size_t len) {
  if (len == 0)
    return dispatch(p);
  if (line[0] == ':') {
    p->comments++;
    return CK_OK;
  }
  const char *colon = memchr(line, ':', len);
  size_t flen = colon ? (size_t)(colon - line) : len;
  const char *val = colon ? colon + 1 : line + len;
  size_t vlen = len - flen - (colon ? 1 : 0);
  if (vlen > 0 && val[0] == ' ') {
    val++;
    vlen--;
  }
  int rc = CK_OK;
  if (flen == 4 && memcmp(line, "data", 4) == 0) {
    if (p->has_data)
      rc = ck_buf_putc(&p->data, '\n');
    if (rc == CK_OK)
      rc = ck_buf_append(&p->data, val, vlen);
    p->has_data = true;
  } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
    ck_buf_reset(&p->event);
    rc = ck_buf_append(&p->event, val, vlen);
  } else if (flen == 5 && memcmp(line, "error", 5) == 0) {
    /* Old llama.cpp builds report mid-stream failures in a field named "error", which a
     * strict parser would drop; surfacing it as an "error" event keeps the failure visible. */
    ck_buf_reset(&p->event);
    rc = ck_buf_puts(&p->event, "error");
    if (rc == CK_OK && p->has_data)
      rc = ck_buf_putc(&p->data, '\n');
    if (rc == CK_OK)
      rc = ck_buf_append(&p->data, val, vlen);
    p->has_data = true;
  }
  /* "id", "retry" and unknown fields are legal and meaningless for a POST stream. */
  return rc;
}

int ck__sse_feed(ck__sse *p, const char *buf, size_t n) {
  if (p->failed)
    return CK_ETOOBIG;
  size_t i = 0;
  /* A BOM may itself be split across chunks, so it is matched byte by byte. */
  while (!p->started && i < n) {
    if ((unsigned char)buf[i] == BOM[p->bom_seen]) {
      i++;
      if (++p->bom_seen == 3)
        p->started = true;
      continue;
    }
    p->started = true;
    /* A partial BOM that did not complete was content after all. */
    if (p->bom_seen && ck_buf_append(&p->line, BOM, p->bom_seen) != CK_OK)
      return fail(p, CK_ETOOBIG);
  }
  while (i < n) {
    if (p->skip_lf) {
      p->skip_lf = false;
      if (buf[i] == '\n') {
        i++;
        continue;
      }
    }
    const char *start = buf + i;
    size_t rest = n - i, k = 0;
    while (k < rest && start[k] != '\n' && start[k] != '\r')
      k++;
    if (k == rest) {
      /* No terminator yet: carry the partial line into the next chunk. */
      int rc = ck_buf_append(&p->line, start, k);
      return rc == CK_OK ? CK_OK : fail(p, rc);
    }
    /* The cap applies to a line whether or not it had to be carried across chunks, so the
     * outcome never depends on where the reads were cut. */
    if (p->line.len + k > p->line.max)
      return fail(p, CK_ETOOBIG);
    int rc;
    if (p->line.len) {
      rc = ck_buf_append(&p->line, start, k);
      if (rc != CK_OK)
        return fail(p, rc);
      rc = process_line(p, p->line.data, p->line.len);
      ck_buf_reset(&p->line);
    } else {
      rc = process_line(p, start, k);
    }
    if (rc == CK_ETOOBIG || rc == CK_ENOMEM)
      return fail(p, rc);
    p->skip_lf = start[k] == '\r';
    i += k + 1;
    if (rc != CK_OK)
      return rc;
  }
  return CK_OK;
}

int ck__sse_finish(ck__sse *p) {
  if (p->failed)
    return CK_ETOOBIG;
  p->started = true;
  int rc = CK_OK;
  if (p->line.len) {
    rc = process_line(p, p->line.data, p->line.len);
    ck_buf_reset(&p->line);
  }
  if (rc == CK_OK)
    rc = dispatch(p);
  return rc;
}
