/* The in-memory store: the reference test store's behaviour, for tests, demos and the
 * conformance replay.
 *
 * Each record is kept as its canonical text (so a round trip is byte-identical by
 * construction) together with its ordering key. Threads and each thread's items live in an
 * ordered set: an array sorted by (key, seq), where key is created_at as UTC microseconds and
 * seq a store-wide insertion counter, plus a hash table on id. Attachments use the same set
 * with key 0, which orders them by first save. One mutex guards the whole store; loads copy
 * the texts into the caller's arena under the mutex and parse them after releasing it, so
 * parsing (the expensive part) runs in parallel.
 */
#include "store/memory.h"
#include "store/store_internal.h"

#include <chatkit/error.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rec rec;

/* An ordered set of records (see the file comment). */
typedef struct rec_list {
  rec **v;         /* sorted by (key, seq) */
  size_t n;        /* records in use */
  size_t cap;      /* slots in v */
  rec **buckets;   /* hash chains on id */
  size_t nbuckets; /* a power of two, or 0 before the first insert */
} rec_list;

struct rec {
  char *id;
  char *owner;     /* threads and attachments: the owning user id; items: NULL */
  int64_t key;     /* created_at in UTC microseconds (attachments: 0) */
  uint64_t seq;    /* store-wide insertion counter: breaks ties, unique */
  char *text;      /* canonical JSON text, NUL-terminated */
  size_t len;      /* bytes of text */
  uint64_t hash;   /* hash of id */
  rec *hnext;      /* next record in the same hash chain */
  rec_list *items; /* threads only: the thread's items */
};

/* A stream lease (see ck_store_vtable.acquire_stream): one per thread that is streaming right
 * now, which under load is thousands, so they live in a hash table on the thread id. */
typedef struct lease {
  struct lease *next;
  char *thread_id;
  char *holder;
  int64_t expires_ms; /* on the monotonic clock: the store lives in one process */
} lease;

typedef struct mem_store {
  ck_store base;
  pthread_mutex_t mu; /* guards everything below */
  rec_list threads;
  rec_list attachments;
  uint64_t next_seq;
  lease **lbuckets; /* hash chains of leases; a power of two of them, or none yet */
  size_t nlbuckets, nleases;
} mem_store;

/* A record picked for a page: copied to the caller's arena under the lock, parsed later. */
typedef struct picked {
  const char *id;
  const char *text;
  size_t len;
} picked;

static const ck_store_vtable memory_vtable;

/* ---- Ordered sets ------------------------------------------------------------------------ */

static uint64_t hash_id(const char *s) {
  uint64_t h = 14695981039346656037u; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211u;
  }
  return h;
}

/* (a.key, a.seq) compared with (key, seq). */
static int rec_cmp(const rec *a, int64_t key, uint64_t seq) {
  if (a->key != key)
    return a->key < key ? -1 : 1;
  if (a->seq != seq)
    return a->seq < seq ? -1 : 1;
  return 0;
}

/* The first index whose record sorts after (key, seq). */
static size_t upper_bound(const rec_list *l, int64_t key, uint64_t seq) {
  size_t lo = 0, hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (rec_cmp(l->v[mid], key, seq) <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The index of `r`, which must be in `l`. (key, seq) is unique, so the record just before
 * the upper bound of its own key is the record itself. */
static size_t index_of(const rec_list *l, const rec *r) {
  return upper_bound(l, r->key, r->seq) - 1;
}

static rec *list_find(const rec_list *l, const char *id) {
  if (l->nbuckets == 0 || id == NULL)
    return NULL;
  uint64_t h = hash_id(id);
  for (rec *r = l->buckets[h & (l->nbuckets - 1)]; r != NULL; r = r->hnext) {
    if (r->hash == h && strcmp(r->id, id) == 0)
      return r;
  }
  return NULL;
}

/* Makes room for one more record, so that the following list_insert cannot fail. */
static int list_reserve(rec_list *l) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4;
    rec **v = realloc(l->v, cap * sizeof(*v));
    if (v == NULL)
      return CK_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  if (l->n + 1 > l->nbuckets) {
    size_t nb = l->nbuckets ? l->nbuckets * 2 : 4;
    rec **b = calloc(nb, sizeof(*b));
    if (b == NULL)
      return CK_ENOMEM;
    for (size_t i = 0; i < l->nbuckets; i++) {
      rec *r = l->buckets[i];
      while (r != NULL) {
        rec *next = r->hnext;
        r->hnext = b[r->hash & (nb - 1)];
        b[r->hash & (nb - 1)] = r;
        r = next;
      }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = nb;
  }
  return CK_OK;
}

/* Inserts `r` at its place in the order. list_reserve must have succeeded just before. */
static void list_insert(rec_list *l, rec *r) {
  size_t i = upper_bound(l, r->key, r->seq);
  memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(*l->v));
  l->v[i] = r;
  l->n++;
  r->hash = hash_id(r->id);
  r->hnext = l->buckets[r->hash & (l->nbuckets - 1)];
  l->buckets[r->hash & (l->nbuckets - 1)] = r;
}

/* Takes `r` out of the set without freeing it. */
static void list_remove(rec_list *l, rec *r) {
  size_t i = index_of(l, r);
  memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
  l->n--;
  rec **pp = &l->buckets[r->hash & (l->nbuckets - 1)];
  while (*pp != r)
    pp = &(*pp)->hnext;
  *pp = r->hnext;
  r->hnext = NULL;
}

/* Moves `r` to the place of a new key, keeping its seq. Needs no memory. */
static void list_rekey(rec_list *l, rec *r, int64_t key) {
  size_t i = index_of(l, r);
  memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
  l->n--;
  r->key = key;
  size_t j = upper_bound(l, r->key, r->seq);
  memmove(&l->v[j + 1], &l->v[j], (l->n - j) * sizeof(*l->v));
  l->v[j] = r;
  l->n++;
}

static void rec_free(rec *r);

/* Frees every record of the set and the set's arrays. */
static void list_clear(rec_list *l) {
  for (size_t i = 0; i < l->n; i++)
    rec_free(l->v[i]);
  free(l->v);
  free(l->buckets);
  memset(l, 0, sizeof(*l));
}

static void rec_free(rec *r) {
  if (r == NULL)
    return;
  if (r->items != NULL) {
    list_clear(r->items);
    free(r->items);
  }
  free(r->id);
  free(r->owner);
  free(r->text);
  free(r);
}

static char *dup_n(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

/* A new record holding a copy of the prepared record's id and text. */
static rec *rec_new(const ck__store_record *pr, const char *owner, int64_t key, bool thread) {
  rec *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->key = key;
  r->len = pr->text.len;
  r->id = dup_n(pr->id, strlen(pr->id));
  r->text = dup_n(pr->text.data, pr->text.len);
  if (owner != NULL)
    r->owner = dup_n(owner, strlen(owner));
  if (thread)
    r->items = calloc(1, sizeof(*r->items));
  if (r->id == NULL || r->text == NULL || (owner != NULL && r->owner == NULL) ||
      (thread && r->items == NULL)) {
    rec_free(r);
    return NULL;
  }
  return r;
}

/* Replaces a record's text with the prepared record's. On failure the old text stays. */
static int rec_set_text(rec *r, const ck__store_record *pr) {
  char *t = dup_n(pr->text.data, pr->text.len);
  if (t == NULL)
    return CK_ENOMEM;
  free(r->text);
  r->text = t;
  r->len = pr->text.len;
  return CK_OK;
}

/* Inserts a new record built from `pr` into `l`, or replaces the text of the record with the
 * same id. Threads get their key updated (they are ordered by their current created_at);
 * items and attachments keep their original place. */
static int upsert(mem_store *m, rec_list *l, const ck__store_record *pr, const char *owner,
                  int64_t key, bool thread) {
  rec *r = list_find(l, pr->id);
  if (r != NULL) {
    if (owner != NULL && strcmp(r->owner, owner) != 0)
      return CK_ENOTFOUND; /* another user's id: the same answer as a missing thread */
    int rc = rec_set_text(r, pr);
    if (rc == CK_OK && thread && r->key != key)
      list_rekey(l, r, key);
    return rc;
  }
  if (list_reserve(l) != CK_OK)
    return CK_ENOMEM;
  r = rec_new(pr, owner, key, thread);
  if (r == NULL)
    return CK_ENOMEM;
  r->seq = m->next_seq++;
  list_insert(l, r);
  return CK_OK;
}

/* The record `id` of `l` when `owner` may see it. */
static rec *find_owned(const rec_list *l, const char *id, const char *owner) {
  rec *r = list_find(l, id);
  if (r == NULL || strcmp(r->owner, owner) != 0)
    return NULL;
  return r;
}

/* ---- Copy out, parse later ---------------------------------------------------------------- */

static int copy_text(ck_arena *a, const rec *r, picked *p) {
  p->id = ck_arena_strdup(a, r->id);
  p->text = ck_arena_strndup(a, r->text, r->len);
  p->len = r->len;
  return (p->id == NULL || p->text == NULL) ? CK_ENOMEM : CK_OK;
}

/* Picks the page's records from `l` (only `owner`'s when not NULL) following the paging rules
 * of store.h. Runs under the store's mutex; copies into `a`. */
static int pick_page(const rec_list *l, const char *owner, const char *after, int limit,
                     ck_order order, ck_arena *a, picked **out, size_t *count, bool *has_more) {
  *out = NULL;
  *count = 0;
  *has_more = false;
  ptrdiff_t step = order == CK_ORDER_ASC ? 1 : -1;
  ptrdiff_t i = order == CK_ORDER_ASC ? 0 : (ptrdiff_t)l->n - 1;
  if (!ck__store_no_cursor(after)) {
    rec *c = list_find(l, after);
    if (c == NULL || (owner != NULL && strcmp(c->owner, owner) != 0))
      return CK_ENOTFOUND;
    i = (ptrdiff_t)index_of(l, c) + step;
  }
  size_t want = limit > 0 ? (size_t)limit : 0;
  if (want > l->n)
    want = l->n;
  picked *p = ck_arena_alloc(a, (want ? want : 1) * sizeof(*p));
  if (p == NULL)
    return CK_ENOMEM;
  size_t n = 0;
  for (; i >= 0 && i < (ptrdiff_t)l->n; i += step) {
    const rec *r = l->v[i];
    if (owner != NULL && strcmp(r->owner, owner) != 0)
      continue;
    if (n == want) {
      *has_more = true;
      break;
    }
    if (copy_text(a, r, &p[n]) != CK_OK)
      return CK_ENOMEM;
    n++;
  }
  *out = p;
  *count = n;
  return CK_OK;
}

/* Parses the picked records into the page. Runs without the mutex. */
/* Items are handed back as RAW canonical text: a listing is usually written straight out, so
 * parsing each record here would be wasted (store.h allows it; readers call ck_json_expand). */
static int fill_page(ck_arena *a, const picked *p, size_t n, bool has_more, bool raw,
                     ck_page *out) {
  ck_json *data = ck_json_array(a);
  if (data == NULL)
    return CK_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    ck_json *v;
    int rc = CK_OK;
    if (raw)
      v = ck_json_raw(a, p[i].text, p[i].len);
    else
      rc = ck__store_parse(a, p[i].text, p[i].len, &v);
    if (rc != CK_OK)
      return rc;
    rc = v ? ck_json_array_append(data, v) : CK_ENOMEM;
    if (rc != CK_OK)
      return rc;
  }
  out->data = data;
  out->has_more = has_more;
  out->after = (has_more && n > 0) ? p[n - 1].id : NULL;
  return CK_OK;
}

/* ---- Operations --------------------------------------------------------------------------- */

static int mem_load_thread(ck_store *s, ck_arena *a, const char *thread_id, const ck_ctx *ctx,
                           ck_json **out) {
  mem_store *m = (mem_store *)s;
  *out = NULL;
  if (thread_id == NULL)
    return CK_EINVAL;
  picked p = {0};
  pthread_mutex_lock(&m->mu);
  rec *t = find_owned(&m->threads, thread_id, ck__store_user(ctx));
  int rc = t == NULL ? CK_ENOTFOUND : copy_text(a, t, &p);
  pthread_mutex_unlock(&m->mu);
  if (rc != CK_OK)
    return rc;
  return ck__store_parse(a, p.text, p.len, out);
}

static int mem_save_thread(ck_store *s, const ck_json *thread, const ck_ctx *ctx) {
  mem_store *m = (mem_store *)s;
  ck__store_record pr;
  int rc = ck__store_record_prepare(thread, CK__RECORD_THREAD, &pr);
  if (rc != CK_OK)
    return rc;
  pthread_mutex_lock(&m->mu);
  rc = upsert(m, &m->threads, &pr, ck__store_user(ctx), pr.created_us, true);
  pthread_mutex_unlock(&m->mu);
  ck__store_record_clear(&pr);
  return rc;
}

static int mem_delete_thread(ck_store *s, const char *thread_id, const ck_ctx *ctx) {
  mem_store *m = (mem_store *)s;
  if (thread_id == NULL)
    return CK_EINVAL;
  pthread_mutex_lock(&m->mu);
  rec *t = find_owned(&m->threads, thread_id, ck__store_user(ctx));
  if (t != NULL)
    list_remove(&m->threads, t);
  pthread_mutex_unlock(&m->mu);
  rec_free(t); /* the thread's items go with it; attachments are kept */
  return CK_OK;
}

static int mem_load_threads(ck_store *s, ck_arena *a, int limit, const char *after, ck_order order,
                            const ck_ctx *ctx, ck_page *out) {
  mem_store *m = (mem_store *)s;
  memset(out, 0, sizeof(*out));
  picked *p;
  size_t n;
  bool more;
  pthread_mutex_lock(&m->mu);
  int rc = pick_page(&m->threads, ck__store_user(ctx), after, limit, order, a, &p, &n, &more);
  pthread_mutex_unlock(&m->mu);
  if (rc != CK_OK)
    return rc;
  return fill_page(a, p, n, more, true, out);
}

static int mem_load_thread_items(ck_store *s, ck_arena *a, const char *thread_id, const char *after,
                                 int limit, ck_order order, const ck_ctx *ctx, ck_page *out) {
  mem_store *m = (mem_store *)s;
  memset(out, 0, sizeof(*out));
  if (thread_id == NULL)
    return CK_EINVAL;
  picked *p = NULL;
  size_t n = 0;
  bool more = false;
  int rc = CK_ENOTFOUND;
  pthread_mutex_lock(&m->mu);
  rec *t = find_owned(&m->threads, thread_id, ck__store_user(ctx));
  if (t != NULL)
    rc = pick_page(t->items, NULL, after, limit, order, a, &p, &n, &more);
  pthread_mutex_unlock(&m->mu);
  if (rc != CK_OK)
    return rc;
  return fill_page(a, p, n, more, true, out);
}

static int mem_save_item(ck_store *s, const char *thread_id, const ck_json *item,
                         const ck_ctx *ctx) {
  mem_store *m = (mem_store *)s;
  if (thread_id == NULL)
    return CK_EINVAL;
  ck__store_record pr;
  int rc = ck__store_record_prepare(item, CK__RECORD_ITEM, &pr);
  if (rc != CK_OK)
    return rc;
  pthread_mutex_lock(&m->mu);
  rec *t = find_owned(&m->threads, thread_id, ck__store_user(ctx));
  rc = t == NULL ? CK_ENOTFOUND : upsert(m, t->items, &pr, NULL, pr.created_us, false);
  pthread_mutex_unlock(&m->mu);
  ck__store_record_clear(&pr);
  return rc;
}

static int mem_load_item(ck_store *s, ck_arena *a, const char *thread_id, const char *item_id,
                         const ck_ctx *ctx, ck_json **out) {
  mem_store *m = (mem_store *)s;
  *out = NULL;
  if (thread_id == NULL || item_id == NULL)
    return CK_EINVAL;
  picked p = {0};
  int rc = CK_ENOTFOUND;
  pthread_mutex_lock(&m->mu);
  rec *t = find_owned(&m->threads, thread_id, ck__store_user(ctx));
  rec *it = t != NULL ? list_find(t->items, item_id) : NULL;
  if (it != NULL)
    rc = copy_text(a, it, &p);
  pthread_mutex_unlock(&m->mu);
  if (rc != CK_OK)
    return rc;
  return ck__store_parse(a, p.text, p.len, out);
}

static int mem_delete_thread_item(ck_store *s, const char *thread_id, const char *item_id,
                                  const ck_ctx *ctx) {
  mem_store *m = (mem_store *)s;
  if (thread_id == NULL || item_id == NULL)
    return CK_EINVAL;
  pthread_mutex_lock(&m->mu);
  rec *t = find_owned(&m->threads, thread_id, ck__store_user(ctx));
  rec *it = t != NULL ? list_find(t->items, item_id) : NULL;
  if (it != NULL)
    list_remove(t->items, it);
  pthread_mutex_unlock(&m->mu);
  rec_free(it);
  return CK_OK;
}

static int mem_save_attachment(ck_store *s, const ck_json *attachment, const ck_ctx *ctx) {
  mem_store *m = (mem_store *)s;
  ck__store_record pr;
  int rc = ck__store_record_prepare(attachment, CK__RECORD_ATTACHMENT, &pr);
  if (rc != CK_OK)
    return rc;
  pthread_mutex_lock(&m->mu);
  rc = upsert(m, &m->attachments, &pr, ck__store_user(ctx), 0, false);
  pthread_mutex_unlock(&m->mu);
  ck__store_record_clear(&pr);
  return rc;
}

static int mem_load_attachment(ck_store *s, ck_arena *a, const char *attachment_id,
                               const ck_ctx *ctx, ck_json **out) {
  mem_store *m = (mem_store *)s;
  *out = NULL;
  if (attachment_id == NULL)
    return CK_EINVAL;
  picked p = {0};
  pthread_mutex_lock(&m->mu);
  rec *r = find_owned(&m->attachments, attachment_id, ck__store_user(ctx));
  int rc = r == NULL ? CK_ENOTFOUND : copy_text(a, r, &p);
  pthread_mutex_unlock(&m->mu);
  if (rc != CK_OK)
    return rc;
  return ck__store_parse(a, p.text, p.len, out);
}

static int mem_delete_attachment(ck_store *s, const char *attachment_id, const ck_ctx *ctx) {
  mem_store *m = (mem_store *)s;
  if (attachment_id == NULL)
    return CK_EINVAL;
  pthread_mutex_lock(&m->mu);
  rec *r = find_owned(&m->attachments, attachment_id, ck__store_user(ctx));
  if (r != NULL)
    list_remove(&m->attachments, r);
  pthread_mutex_unlock(&m->mu);
  rec_free(r);
  return CK_OK;
}

static int mem_ping(ck_store *s) {
  (void)s;
  return CK_OK;
}

/* ---- Stream leases ----------------------------------------------------------------------- */

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lease_free(lease *l) {
  if (l == NULL)
    return;
  free(l->thread_id);
  free(l->holder);
  free(l);
}

/* The link that points at the lease of `thread_id`, or at the end of its chain; NULL before
 * the table exists. */
static lease **lease_find(mem_store *m, const char *thread_id) {
  if (m->nlbuckets == 0)
    return NULL;
  lease **pp = &m->lbuckets[hash_id(thread_id) & (m->nlbuckets - 1)];
  while (*pp != NULL && strcmp((*pp)->thread_id, thread_id) != 0)
    pp = &(*pp)->next;
  return pp;
}

/* Keeps chains short: doubles the table when there are as many leases as chains. */
static int lease_table_grow(mem_store *m) {
  if (m->nlbuckets != 0 && m->nleases < m->nlbuckets)
    return CK_OK;
  size_t nb = m->nlbuckets ? m->nlbuckets * 2 : 64;
  lease **b = calloc(nb, sizeof(*b));
  if (b == NULL)
    return CK_ENOMEM;
  for (size_t i = 0; i < m->nlbuckets; i++) {
    lease *l = m->lbuckets[i];
    while (l != NULL) {
      lease *next = l->next;
      size_t k = hash_id(l->thread_id) & (nb - 1);
      l->next = b[k];
      b[k] = l;
      l = next;
    }
  }
  free(m->lbuckets);
  m->lbuckets = b;
  m->nlbuckets = nb;
  return CK_OK;
}

static int mem_acquire_stream(ck_store *s, const char *thread_id, const char *holder, int ttl_ms,
                              const ck_ctx *ctx) {
  (void)ctx;
  if (thread_id == NULL || holder == NULL)
    return CK_EINVAL;
  mem_store *m = (mem_store *)s;
  int rc = CK_OK;
  pthread_mutex_lock(&m->mu);
  int64_t now = monotonic_ms();
  rc = lease_table_grow(m);
  lease **pp = rc == CK_OK ? lease_find(m, thread_id) : NULL;
  lease *l = pp ? *pp : NULL;
  if (pp == NULL) {
    rc = CK_ENOMEM;
  } else if (l != NULL && l->expires_ms > now && strcmp(l->holder, holder) != 0) {
    rc = CK_ECONFLICT;
  } else if (l != NULL) {
    /* An expired lease is taken over, or the holder takes its own lease again. */
    char *h = strdup(holder);
    if (h == NULL) {
      rc = CK_ENOMEM;
    } else {
      free(l->holder);
      l->holder = h;
      l->expires_ms = now + ttl_ms;
    }
  } else {
    l = calloc(1, sizeof(*l));
    if (l != NULL && (l->thread_id = strdup(thread_id)) != NULL &&
        (l->holder = strdup(holder)) != NULL) {
      l->expires_ms = now + ttl_ms;
      *pp = l;
      m->nleases++;
    } else {
      lease_free(l);
      rc = CK_ENOMEM;
    }
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

static int mem_release_stream(ck_store *s, const char *thread_id, const char *holder,
                              const ck_ctx *ctx) {
  (void)ctx;
  if (thread_id == NULL || holder == NULL)
    return CK_EINVAL;
  mem_store *m = (mem_store *)s;
  pthread_mutex_lock(&m->mu);
  lease **pp = lease_find(m, thread_id);
  lease *l = pp ? *pp : NULL;
  if (l != NULL && strcmp(l->holder, holder) == 0) {
    *pp = l->next;
    lease_free(l);
    m->nleases--;
  }
  pthread_mutex_unlock(&m->mu);
  return CK_OK;
}

static int mem_renew_stream(ck_store *s, const char *thread_id, const char *holder, int ttl_ms,
                            const ck_ctx *ctx) {
  (void)ctx;
  if (thread_id == NULL || holder == NULL)
    return CK_EINVAL;
  mem_store *m = (mem_store *)s;
  int rc = CK_ECONFLICT;
  pthread_mutex_lock(&m->mu);
  lease **pp = lease_find(m, thread_id);
  lease *l = pp ? *pp : NULL;
  if (l != NULL && strcmp(l->holder, holder) == 0) {
    l->expires_ms = monotonic_ms() + ttl_ms;
    rc = CK_OK;
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

static void mem_destroy(ck_store *s) {
  mem_store *m = (mem_store *)s;
  for (size_t i = 0; i < m->nlbuckets; i++) {
    lease *l = m->lbuckets[i];
    while (l != NULL) {
      lease *next = l->next;
      lease_free(l);
      l = next;
    }
  }
  free(m->lbuckets);
  list_clear(&m->threads);
  list_clear(&m->attachments);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static const ck_store_vtable memory_vtable = {
    .load_thread = mem_load_thread,
    .save_thread = mem_save_thread,
    .delete_thread = mem_delete_thread,
    .load_threads = mem_load_threads,
    .load_thread_items = mem_load_thread_items,
    .add_thread_item = mem_save_item,
    .save_item = mem_save_item,
    .load_item = mem_load_item,
    .delete_thread_item = mem_delete_thread_item,
    .save_attachment = mem_save_attachment,
    .load_attachment = mem_load_attachment,
    .delete_attachment = mem_delete_attachment,
    .ping = mem_ping,
    .destroy = mem_destroy,
    .acquire_stream = mem_acquire_stream,
    .release_stream = mem_release_stream,
    .renew_stream = mem_renew_stream,
};

ck_store *ck_store_memory_new(void) {
  mem_store *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return NULL;
  if (pthread_mutex_init(&m->mu, NULL) != 0) {
    free(m);
    return NULL;
  }
  m->base.vt = &memory_vtable;
  m->base.name = "memory";
  m->base.nonblocking = true; /* a mutex held for microseconds, no I/O */
  m->next_seq = 1;
  return &m->base;
}

/* ---- Dump --------------------------------------------------------------------------------- */

/* Appends the parsed text of every record of `l` to the array `arr`. */
static int dump_list(ck_arena *a, const rec_list *l, ck_json *arr) {
  for (size_t i = 0; i < l->n; i++) {
    ck_json *v;
    int rc = ck__store_parse(a, l->v[i]->text, l->v[i]->len, &v);
    if (rc == CK_OK)
      rc = ck_json_array_append(arr, v);
    if (rc != CK_OK)
      return rc;
  }
  return CK_OK;
}

int ck__store_memory_dump(ck_store *s, ck_arena *a, ck_json **out) {
  *out = NULL;
  if (s == NULL || s->vt != &memory_vtable)
    return CK_EINVAL;
  mem_store *m = (mem_store *)s;
  int rc = CK_ENOMEM;
  pthread_mutex_lock(&m->mu);
  ck_json *root = ck_json_object(a);
  ck_json *threads = ck_json_array(a);
  ck_json *items = ck_json_object(a);
  ck_json *atts = ck_json_array(a);
  if (root == NULL || threads == NULL || items == NULL || atts == NULL)
    goto fail;
  rc = dump_list(a, &m->threads, threads);
  for (size_t i = 0; rc == CK_OK && i < m->threads.n; i++) {
    const rec *t = m->threads.v[i];
    ck_json *arr = ck_json_array(a);
    if (arr == NULL) {
      rc = CK_ENOMEM;
      break;
    }
    rc = dump_list(a, t->items, arr);
    if (rc == CK_OK)
      rc = ck_json_object_set(items, t->id, arr);
  }
  if (rc == CK_OK)
    rc = dump_list(a, &m->attachments, atts);
  if (rc == CK_OK)
    rc = ck_json_object_set(root, "threads", threads);
  if (rc == CK_OK)
    rc = ck_json_object_set(root, "items", items);
  if (rc == CK_OK)
    rc = ck_json_object_set(root, "attachments", atts);
  if (rc == CK_OK)
    *out = root;
fail:
  pthread_mutex_unlock(&m->mu);
  return rc;
}
