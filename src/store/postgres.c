/* The PostgreSQL store: several server processes sharing one database.
 *
 * Threads and connections. The store API is synchronous and runs on the caller's worker
 * thread. A bounded pool (a mutex, a condition variable and a stack of idle connections) lends
 * each call one connection for the duration of one statement; when all are lent out, callers
 * wait. Connections are opened lazily, outside the mutex, up to max_connections; a connection
 * goes back to the pool only when it is healthy and idle (no transaction open), otherwise it
 * is closed and its slot freed. libpq is thread-safe as long as one connection is used by one
 * thread at a time, which the pool guarantees.
 *
 * Round trips. Every operation is exactly one statement and so one round trip in its own
 * implicit transaction: upserts are INSERT ... ON CONFLICT DO UPDATE whose WHERE clause (or,
 * for items, whose SELECT from the owning thread) checks the owner, and a page query resolves
 * its thread and cursor in CTEs and fetches the page with a LATERAL join. One statement sees
 * one snapshot and commits atomically, so no explicit BEGIN/COMMIT is needed and nothing is
 * left to pipeline; pipeline mode is used where several statements are unavoidable, at open
 * for the migrations (see postgres_schema.c). Statements go through PQexecParams-style unnamed
 * statements only, never named prepared ones, so the store works behind PgBouncer in
 * transaction mode.
 *
 * Reconnects. An idle connection taken from the pool is first checked without a round trip:
 * if its socket has something to read, the server sent it a goodbye (a restart or
 * pg_terminate_backend) and the connection is replaced before it is used. A statement that
 * still fails because the connection broke mid-flight (the goodbye raced with the query, a
 * crash, a network cut) has an unknown outcome; it is retried once on a fresh connection only
 * when running it twice is harmless (see retry_policy). Today that is every statement: reads,
 * deletes, and upserts that set a record to given values, because each is one statement in
 * its own transaction and doing it again yields what doing it once did. A future write that
 * is not idempotent (a counter, an append) must use RETRY_IF_UNSENT and then fails with
 * CK_ESTORE rather than risk applying twice. A statement that provably never left this process,
 * and a deadlock or serialisation failure (the server rolled the statement back), is retried
 * under either policy.
 *
 * Records are stored as their canonical JSON text; loads parse that text into the caller's
 * arena and return ordinary trees, exactly as the SQLite store does.
 */
#include "store/postgres_schema.h"
#include "store/store_internal.h"
#include "util/errbuf.h"

#include <chatkit/error.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* The pool size when the caller passes <= 0: enough for the worker threads of one process. */
#define DEFAULT_CONNECTIONS 8

/* A sanity cap on the pool size; a server process never needs more. */
#define MAX_CONNECTIONS 1024

/* ---- SQL ---------------------------------------------------------------------------------- */

/* Loads name the owner in the WHERE clause; item statements reach the owner through the
 * thread. As in SQLite, isolation is enforced by every statement, not by the C code. */
static const char SQL_THREAD_LOAD[] =
    "SELECT json FROM chatkit_threads WHERE id = $1 AND user_id = $2";

/* The conflict arm only updates a row the same user owns; another user's id returns no row,
 * which the caller reports as CK_ENOTFOUND. seq (the tie-break) is drawn on first insert and
 * never changed, so a saved thread moves with its created_at but keeps its creation rank. */
static const char SQL_THREAD_SAVE[] =
    "INSERT INTO chatkit_threads AS t (id, user_id, created_us, json)"
    " VALUES ($1, $2, $3::bigint, $4)"
    " ON CONFLICT (id) DO UPDATE SET created_us = excluded.created_us, json = excluded.json"
    " WHERE t.user_id = excluded.user_id RETURNING 1";

static const char SQL_THREAD_DELETE[] =
    "DELETE FROM chatkit_threads WHERE id = $1 AND user_id = $2";

/* The row comes from the owning thread, so a missing or foreign thread inserts nothing and
 * returns no row (CK_ENOTFOUND). A replaced item keeps created_us and seq, hence its place.
 * A thread deleted concurrently makes the foreign key check fail (SQLSTATE 23503), which is
 * CK_ENOTFOUND as well. */
static const char SQL_ITEM_SAVE[] =
    "INSERT INTO chatkit_items AS i (thread_id, id, created_us, type, json)"
    " SELECT t.id, $2::text, $3::bigint, $4::text, $5::text FROM chatkit_threads t"
    " WHERE t.id = $1 AND t.user_id = $6"
    " ON CONFLICT (thread_id, id) DO UPDATE SET type = excluded.type, json = excluded.json"
    " RETURNING 1";

static const char SQL_ITEM_LOAD[] =
    "SELECT i.json FROM chatkit_items i JOIN chatkit_threads t ON t.id = i.thread_id"
    " WHERE i.thread_id = $1 AND i.id = $2 AND t.user_id = $3";

static const char SQL_ITEM_DELETE[] =
    "DELETE FROM chatkit_items i USING chatkit_threads t"
    " WHERE i.thread_id = $1 AND i.id = $2 AND t.id = i.thread_id AND t.user_id = $3";

static const char SQL_ATT_SAVE[] =
    "INSERT INTO chatkit_attachments AS a (id, user_id, json) VALUES ($1, $2, $3)"
    " ON CONFLICT (id) DO UPDATE SET json = excluded.json"
    " WHERE a.user_id = excluded.user_id RETURNING 1";

static const char SQL_ATT_LOAD[] =
    "SELECT json FROM chatkit_attachments WHERE id = $1 AND user_id = $2";

static const char SQL_ATT_DELETE[] =
    "DELETE FROM chatkit_attachments WHERE id = $1 AND user_id = $2";

/* Stream leases (schema version 2). Time is the database server's clock_timestamp(), the one
 * clock every process sharing the database agrees on. Acquire inserts a lease, takes over an
 * expired one or refreshes the caller's own in one statement, and returns a row only when the
 * caller holds the lease afterwards; since it succeeds again for the same holder, running it
 * twice is harmless and it may be retried like the upserts. $3 is the TTL in milliseconds. */
static const char SQL_LEASE_ACQUIRE[] =
    "INSERT INTO chatkit_stream_leases AS l (thread_id, holder, expires_at)"
    " VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 millisecond')"
    " ON CONFLICT (thread_id) DO UPDATE SET holder = excluded.holder,"
    " expires_at = excluded.expires_at"
    " WHERE l.expires_at <= clock_timestamp() OR l.holder = excluded.holder RETURNING 1";

static const char SQL_LEASE_RELEASE[] =
    "DELETE FROM chatkit_stream_leases WHERE thread_id = $1 AND holder = $2";

static const char SQL_LEASE_RENEW[] =
    "UPDATE chatkit_stream_leases"
    " SET expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'"
    " WHERE thread_id = $1 AND holder = $2 RETURNING 1";

/* Page queries. The CTE `c` yields the starting key: the cursor record's (created_us, seq), or
 * a bound below/above every key when there is no cursor. It is empty when the cursor (or, for
 * items, the thread) is not this user's, and then the statement returns no row at all, which
 * is CK_ENOTFOUND. Otherwise the LEFT JOIN LATERAL returns the page (limit + 1 rows, to learn
 * has_more) or, for an empty page, a single row of NULLs. The inner query is a range scan of
 * the (scope, created_us, seq) index in the page's direction, so a page costs the same at any
 * depth. Parameters: threads ($1 user, $2 cursor id or bound, $3 limit), items ($1 thread,
 * $2 user, $3 limit, $4 cursor id or bound). */
#define PAGE_BODY(TABLE, SCOPE, CMP, DIR)                                                          \
  " SELECT p.id, p.json FROM c LEFT JOIN LATERAL (SELECT r.id, r.json, r.created_us, r.seq"        \
  " FROM " TABLE " r WHERE " SCOPE " AND (r.created_us, r.seq) " CMP " (c.created_us, c.seq)"      \
  " ORDER BY r.created_us " DIR ", r.seq " DIR " LIMIT $3::bigint) p ON true"                      \
  " ORDER BY p.created_us " DIR ", p.seq " DIR

#define THREADS_CURSOR                                                                             \
  "WITH c AS (SELECT created_us, seq FROM chatkit_threads WHERE id = $2 AND user_id = $1)"
#define THREADS_START "WITH c AS (SELECT $2::bigint AS created_us, $2::bigint AS seq)"
#define THREADS_BODY(CMP, DIR) PAGE_BODY("chatkit_threads", "r.user_id = $1", CMP, DIR)

#define ITEMS_CURSOR                                                                               \
  "WITH c AS (SELECT i.created_us, i.seq FROM chatkit_items i"                                     \
  " JOIN chatkit_threads t ON t.id = i.thread_id"                                                  \
  " WHERE i.thread_id = $1 AND i.id = $4 AND t.user_id = $2)"
#define ITEMS_START                                                                                \
  "WITH c AS (SELECT $4::bigint AS created_us, $4::bigint AS seq FROM chatkit_threads"             \
  " WHERE id = $1 AND user_id = $2)"
#define ITEMS_BODY(CMP, DIR) PAGE_BODY("chatkit_items", "r.thread_id = $1", CMP, DIR)

/* Indexed by [has cursor][order]. */
static const char *const SQL_THREADS[2][2] = {
    {[CK_ORDER_DESC] = THREADS_START THREADS_BODY("<", "DESC"),
     [CK_ORDER_ASC] = THREADS_START THREADS_BODY(">", "ASC")},
    {[CK_ORDER_DESC] = THREADS_CURSOR THREADS_BODY("<", "DESC"),
     [CK_ORDER_ASC] = THREADS_CURSOR THREADS_BODY(">", "ASC")},
};
static const char *const SQL_ITEMS[2][2] = {
    {[CK_ORDER_DESC] = ITEMS_START ITEMS_BODY("<", "DESC"),
     [CK_ORDER_ASC] = ITEMS_START ITEMS_BODY(">", "ASC")},
    {[CK_ORDER_DESC] = ITEMS_CURSOR ITEMS_BODY("<", "DESC"),
     [CK_ORDER_ASC] = ITEMS_CURSOR ITEMS_BODY(">", "ASC")},
};

/* ---- The store and its pool --------------------------------------------------------------- */

typedef struct pg_store {
  ck_store base;
  char *conninfo;     /* as given (may hold a password; never copied into messages) */
  int max;            /* the pool's capacity */
  pthread_mutex_t mu; /* guards idle, nidle and nopen */
  pthread_cond_t cv;  /* signalled when a connection or a slot becomes free */
  PGconn **idle;      /* idle connections, a stack of `max` entries (the warmest on top) */
  int nidle;
  int nopen; /* connections open or being opened, lent out or idle */
} pg_store;

/* Server notices ("relation already exists, skipping", a FATAL sent to an idle connection)
 * would go to stderr by default; the store reports through return codes instead. */
static void quiet_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Opens one connection. The caller's conninfo is expanded in the middle of the parameter
 * list: libpq keeps the last value of a repeated keyword, so the settings before it are
 * defaults the conninfo may override, while client_encoding is forced to UTF8 because the
 * stored texts are UTF-8 and must come back byte for byte. The keepalive defaults make a
 * connection whose server vanished without a word (a cut network, a dead host) fail within
 * about a minute and a half instead of the kernel's two hours, so a worker thread waiting for
 * a result is not stuck that long. */
static int conn_open(const char *conninfo, PGconn **out, char *errbuf, size_t errlen) {
  static const char *const keys[] = {
      "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
      "keepalives_count", "dbname",           "client_encoding", NULL};
  const char *const vals[] = {"10", "chatkit-server", "60", "10", "3", conninfo, "UTF8", NULL};
  *out = NULL;
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c == NULL)
    return CK_ENOMEM;
  if (PQstatus(c) != CONNECTION_OK) {
    const char *msg = PQerrorMessage(c);
    ck__errf(errbuf, errlen, "cannot connect to PostgreSQL: %.*s", ck__pg_first_line_len(msg), msg);
    PQfinish(c);
    return CK_ESTORE;
  }
  PQsetNoticeProcessor(c, quiet_notice, NULL);
  *out = c;
  return CK_OK;
}

/* True when an idle connection can be used. A healthy idle connection has nothing to read:
 * the store never LISTENs and never changes reported settings, so the server has no reason to
 * speak first. Readable data is normally the FATAL message and end of file of a shutdown,
 * restart or pg_terminate_backend. (libpq would only notice the end of file on a later read,
 * after the next query was sent, so the data itself is the signal.) Whatever it is, replacing
 * the connection costs one connect and is always safe. */
static bool conn_alive(PGconn *c) {
  if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)
    return false;
  struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
  int n;
  do {
    n = poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n == 0;
}

/* Lends a connection: an idle one that passes conn_alive, or a new one when a slot is free;
 * waits while all `max` are lent out. */
static int pool_get(pg_store *q, PGconn **out) {
  PGconn *c = NULL;
  pthread_mutex_lock(&q->mu);
  while (q->nidle == 0 && q->nopen >= q->max)
    pthread_cond_wait(&q->cv, &q->mu);
  if (q->nidle > 0)
    c = q->idle[--q->nidle];
  else
    q->nopen++; /* reserve the slot; the connection is opened outside the mutex */
  pthread_mutex_unlock(&q->mu);
  if (c != NULL && !conn_alive(c)) {
    PQfinish(c); /* the slot stays reserved for its replacement */
    c = NULL;
  }
  if (c == NULL) {
    int rc = conn_open(q->conninfo, &c, NULL, 0);
    if (rc != CK_OK) {
      pthread_mutex_lock(&q->mu);
      q->nopen--;
      pthread_cond_signal(&q->cv);
      pthread_mutex_unlock(&q->mu);
      return rc == CK_ENOMEM ? CK_ENOMEM : CK_ESTORE;
    }
  }
  *out = c;
  return CK_OK;
}

/* Takes a connection back: kept when healthy and outside any transaction, else closed. */
static void pool_put(pg_store *q, PGconn *c) {
  bool clean = PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
  if (!clean)
    PQfinish(c);
  pthread_mutex_lock(&q->mu);
  if (clean)
    q->idle[q->nidle++] = c;
  else
    q->nopen--;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

/* ---- Running statements ------------------------------------------------------------------- */

/* How a statement failed, for the retry decision. */
typedef enum failure {
  FAIL_NONE,      /* it succeeded, or failed in a way that a retry would not change */
  FAIL_UNSENT,    /* it never left this process: safe to retry */
  FAIL_LOST,      /* the connection broke; the server may or may not have run it */
  FAIL_TRANSIENT, /* deadlock or serialisation failure: rolled back, safe to retry */
} failure;

/* Runs one statement with text parameters `v` on `c`. Returns CK_OK with its result in *out
 * (the caller PQclears it), CK_ENOTFOUND for a foreign key violation (the thread an item was
 * written to is gone), otherwise CK_ESTORE, with *why saying whether a retry may help. */
static int conn_exec(PGconn *c, const char *sql, int n, const char *const *v, PGresult **out,
                     failure *why) {
  *out = NULL;
  *why = FAIL_NONE;
  if (!PQsendQueryParams(c, sql, n, NULL, v, NULL, NULL, 0)) {
    *why = FAIL_UNSENT;
    return CK_ESTORE;
  }
  /* One statement gives one result, then NULL; the loop keeps the first and drains the rest
   * so the connection is idle again. */
  PGresult *r, *first = NULL;
  while ((r = PQgetResult(c)) != NULL) {
    if (first == NULL)
      first = r;
    else
      PQclear(r);
  }
  ExecStatusType st = PQresultStatus(first);
  if (first != NULL && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
    *out = first;
    return CK_OK;
  }
  const char *state = first != NULL ? PQresultErrorField(first, PG_DIAG_SQLSTATE) : NULL;
  int rc = CK_ESTORE;
  if (PQstatus(c) != CONNECTION_OK)
    *why = FAIL_LOST;
  else if (state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
    *why = FAIL_TRANSIENT;
  else if (state != NULL && strcmp(state, "23503") == 0)
    rc = CK_ENOTFOUND;
  PQclear(first);
  return rc;
}

/* When run() may repeat a statement whose connection broke before its result arrived. */
typedef enum retry_policy {
  /* Running the statement twice leaves the same state and answer as running it once. A retry
   * happens while the caller still waits for the call, so even when another writer changed
   * the record in between, the result is one that some order of the overlapping calls gives
   * (for example, a delete by another request that overlapped this save ordered before it). */
  RETRY_IDEMPOTENT,
  /* Retried only when it never reached the server; an unknown outcome is CK_ESTORE. */
  RETRY_IF_UNSENT,
} retry_policy;

/* Runs one statement on a pooled connection, retrying once when `policy` allows it. */
static int run(pg_store *q, const char *sql, int n, const char *const *v, retry_policy policy,
               PGresult **out) {
  int rc = CK_ESTORE;
  *out = NULL;
  for (int attempt = 0; attempt < 2; attempt++) {
    PGconn *c;
    failure why;
    rc = pool_get(q, &c);
    if (rc != CK_OK)
      return rc;
    rc = conn_exec(c, sql, n, v, out, &why);
    pool_put(q, c);
    bool retry = why == FAIL_UNSENT || why == FAIL_TRANSIENT ||
                 (why == FAIL_LOST && policy == RETRY_IDEMPOTENT);
    if (rc == CK_OK || !retry)
      return rc;
  }
  return rc;
}

/* Runs a statement that returns the single JSON column of at most one row and parses it. */
static int load_one(pg_store *q, const char *sql, const char *const *v, int n, ck_arena *a,
                    ck_json **out) {
  PGresult *r;
  int rc = run(q, sql, n, v, RETRY_IDEMPOTENT, &r);
  if (rc != CK_OK)
    return rc;
  if (PQntuples(r) == 0)
    rc = CK_ENOTFOUND;
  else
    rc = ck__store_parse(a, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), out);
  PQclear(r);
  return rc;
}

/* Runs an upsert that returns one row when it took effect and none when the record (or its
 * thread) belongs to someone else or does not exist. Every upsert sets the record to the given
 * values, so it is idempotent. */
static int write_one(pg_store *q, const char *sql, const char *const *v, int n) {
  PGresult *r;
  int rc = run(q, sql, n, v, RETRY_IDEMPOTENT, &r);
  if (rc != CK_OK)
    return rc;
  rc = PQntuples(r) > 0 ? CK_OK : CK_ENOTFOUND;
  PQclear(r);
  return rc;
}

/* Runs a delete; deletes are silent when nothing matched, so they are idempotent. */
static int delete_with(pg_store *q, const char *sql, const char *const *v, int n) {
  PGresult *r;
  int rc = run(q, sql, n, v, RETRY_IDEMPOTENT, &r);
  PQclear(r);
  return rc;
}

/* Turns the rows of a page query (id, json; see PAGE_BODY) into `out`. */
static int read_page(PGresult *r, ck_arena *a, int64_t want, ck_page *out) {
  int rows = PQntuples(r);
  if (rows == 0)
    return CK_ENOTFOUND; /* the thread or the cursor is not this user's */
  ck_json *data = ck_json_array(a);
  if (data == NULL)
    return CK_ENOMEM;
  int64_t n = PQgetisnull(r, 0, 0) ? 0 : rows;
  bool more = n > want;
  int take = (int)(more ? want : n);
  const char *last = NULL;
  for (int i = 0; i < take; i++) {
    ck_json *v;
    int rc = ck__store_parse(a, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &v);
    if (rc == CK_OK)
      rc = ck_json_array_append(data, v);
    if (rc != CK_OK)
      return rc;
  }
  if (more && take > 0) {
    last = ck_arena_strdup(a, PQgetvalue(r, take - 1, 0));
    if (last == NULL)
      return CK_ENOMEM;
  }
  out->data = data;
  out->has_more = more;
  out->after = last;
  return CK_OK;
}

/* Runs a page query and reads its page. */
static int page_query(pg_store *q, const char *sql, const char *const *v, int n, int limit,
                      ck_arena *a, ck_page *out) {
  PGresult *r;
  int rc = run(q, sql, n, v, RETRY_IDEMPOTENT, &r);
  if (rc != CK_OK)
    return rc;
  rc = read_page(r, a, limit > 0 ? limit : 0, out);
  PQclear(r);
  return rc;
}

/* The page bound without a cursor, below or above every key, as a decimal parameter. */
static const char *start_bound(ck_order order) {
  return order == CK_ORDER_ASC ? "-9223372036854775808" : "9223372036854775807";
}

/* ---- Operations --------------------------------------------------------------------------- */

static int pg_load_thread(ck_store *s, ck_arena *a, const char *thread_id, const ck_ctx *ctx,
                          ck_json **out) {
  *out = NULL;
  if (thread_id == NULL)
    return CK_EINVAL;
  const char *v[] = {thread_id, ck__store_user(ctx)};
  return load_one((pg_store *)s, SQL_THREAD_LOAD, v, 2, a, out);
}

static int pg_save_thread(ck_store *s, const ck_json *thread, const ck_ctx *ctx) {
  ck__store_record pr;
  char created[24];
  int rc = ck__store_record_prepare(thread, CK__RECORD_THREAD, &pr);
  if (rc != CK_OK)
    return rc;
  snprintf(created, sizeof(created), "%" PRId64, pr.created_us);
  const char *v[] = {pr.id, ck__store_user(ctx), created, pr.text.data};
  rc = write_one((pg_store *)s, SQL_THREAD_SAVE, v, 4);
  ck__store_record_clear(&pr);
  return rc;
}

static int pg_delete_thread(ck_store *s, const char *thread_id, const ck_ctx *ctx) {
  if (thread_id == NULL)
    return CK_EINVAL;
  const char *v[] = {thread_id, ck__store_user(ctx)};
  return delete_with((pg_store *)s, SQL_THREAD_DELETE, v, 2);
}

static int pg_load_threads(ck_store *s, ck_arena *a, int limit, const char *after, ck_order order,
                           const ck_ctx *ctx, ck_page *out) {
  memset(out, 0, sizeof(*out));
  bool cursor = !ck__store_no_cursor(after);
  int o = order == CK_ORDER_ASC ? CK_ORDER_ASC : CK_ORDER_DESC;
  char lim[24];
  snprintf(lim, sizeof(lim), "%" PRId64, limit > 0 ? (int64_t)limit + 1 : 1);
  const char *v[] = {ck__store_user(ctx), cursor ? after : start_bound(order), lim};
  return page_query((pg_store *)s, SQL_THREADS[cursor][o], v, 3, limit, a, out);
}

static int pg_load_thread_items(ck_store *s, ck_arena *a, const char *thread_id, const char *after,
                                int limit, ck_order order, const ck_ctx *ctx, ck_page *out) {
  memset(out, 0, sizeof(*out));
  if (thread_id == NULL)
    return CK_EINVAL;
  bool cursor = !ck__store_no_cursor(after);
  int o = order == CK_ORDER_ASC ? CK_ORDER_ASC : CK_ORDER_DESC;
  char lim[24];
  snprintf(lim, sizeof(lim), "%" PRId64, limit > 0 ? (int64_t)limit + 1 : 1);
  const char *v[] = {thread_id, ck__store_user(ctx), lim, cursor ? after : start_bound(order)};
  return page_query((pg_store *)s, SQL_ITEMS[cursor][o], v, 4, limit, a, out);
}

static int pg_save_item(ck_store *s, const char *thread_id, const ck_json *item,
                        const ck_ctx *ctx) {
  ck__store_record pr;
  char created[24];
  if (thread_id == NULL)
    return CK_EINVAL;
  int rc = ck__store_record_prepare(item, CK__RECORD_ITEM, &pr);
  if (rc != CK_OK)
    return rc;
  snprintf(created, sizeof(created), "%" PRId64, pr.created_us);
  const char *v[] = {thread_id, pr.id, created, pr.type, pr.text.data, ck__store_user(ctx)};
  rc = write_one((pg_store *)s, SQL_ITEM_SAVE, v, 6);
  ck__store_record_clear(&pr);
  return rc;
}

static int pg_load_item(ck_store *s, ck_arena *a, const char *thread_id, const char *item_id,
                        const ck_ctx *ctx, ck_json **out) {
  *out = NULL;
  if (thread_id == NULL || item_id == NULL)
    return CK_EINVAL;
  const char *v[] = {thread_id, item_id, ck__store_user(ctx)};
  return load_one((pg_store *)s, SQL_ITEM_LOAD, v, 3, a, out);
}

static int pg_delete_thread_item(ck_store *s, const char *thread_id, const char *item_id,
                                 const ck_ctx *ctx) {
  if (thread_id == NULL || item_id == NULL)
    return CK_EINVAL;
  const char *v[] = {thread_id, item_id, ck__store_user(ctx)};
  return delete_with((pg_store *)s, SQL_ITEM_DELETE, v, 3);
}

static int pg_save_attachment(ck_store *s, const ck_json *attachment, const ck_ctx *ctx) {
  ck__store_record pr;
  int rc = ck__store_record_prepare(attachment, CK__RECORD_ATTACHMENT, &pr);
  if (rc != CK_OK)
    return rc;
  const char *v[] = {pr.id, ck__store_user(ctx), pr.text.data};
  rc = write_one((pg_store *)s, SQL_ATT_SAVE, v, 3);
  ck__store_record_clear(&pr);
  return rc;
}

static int pg_load_attachment(ck_store *s, ck_arena *a, const char *attachment_id,
                              const ck_ctx *ctx, ck_json **out) {
  *out = NULL;
  if (attachment_id == NULL)
    return CK_EINVAL;
  const char *v[] = {attachment_id, ck__store_user(ctx)};
  return load_one((pg_store *)s, SQL_ATT_LOAD, v, 2, a, out);
}

static int pg_delete_attachment(ck_store *s, const char *attachment_id, const ck_ctx *ctx) {
  if (attachment_id == NULL)
    return CK_EINVAL;
  const char *v[] = {attachment_id, ck__store_user(ctx)};
  return delete_with((pg_store *)s, SQL_ATT_DELETE, v, 2);
}

/* Runs a lease statement that returns a row when the caller holds the lease afterwards. */
static int lease_write(pg_store *q, const char *sql, const char *thread_id, const char *holder,
                       int ttl_ms) {
  if (thread_id == NULL || holder == NULL)
    return CK_EINVAL;
  char ttl[24];
  snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
  const char *v[] = {thread_id, holder, ttl};
  int rc = write_one(q, sql, v, 3);
  return rc == CK_ENOTFOUND ? CK_ECONFLICT : rc;
}

static int pg_acquire_stream(ck_store *s, const char *thread_id, const char *holder, int ttl_ms,
                             const ck_ctx *ctx) {
  (void)ctx;
  return lease_write((pg_store *)s, SQL_LEASE_ACQUIRE, thread_id, holder, ttl_ms);
}

static int pg_renew_stream(ck_store *s, const char *thread_id, const char *holder, int ttl_ms,
                           const ck_ctx *ctx) {
  (void)ctx;
  return lease_write((pg_store *)s, SQL_LEASE_RENEW, thread_id, holder, ttl_ms);
}

static int pg_release_stream(ck_store *s, const char *thread_id, const char *holder,
                             const ck_ctx *ctx) {
  (void)ctx;
  if (thread_id == NULL || holder == NULL)
    return CK_EINVAL;
  const char *v[] = {thread_id, holder};
  return delete_with((pg_store *)s, SQL_LEASE_RELEASE, v, 2);
}

static int pg_ping(ck_store *s) {
  PGresult *r;
  int rc = run((pg_store *)s, "SELECT 1", 0, NULL, RETRY_IDEMPOTENT, &r);
  PQclear(r);
  return rc;
}

/* Closes every idle connection. The caller guarantees no call is in progress, so none is
 * lent out. */
static void pg_destroy(ck_store *s) {
  pg_store *q = (pg_store *)s;
  for (int i = 0; i < q->nidle; i++)
    PQfinish(q->idle[i]);
  pthread_cond_destroy(&q->cv);
  pthread_mutex_destroy(&q->mu);
  free(q->idle);
  free(q->conninfo);
  free(q);
}

static const ck_store_vtable postgres_vtable = {
    .load_thread = pg_load_thread,
    .save_thread = pg_save_thread,
    .delete_thread = pg_delete_thread,
    .load_threads = pg_load_threads,
    .load_thread_items = pg_load_thread_items,
    .add_thread_item = pg_save_item,
    .save_item = pg_save_item,
    .load_item = pg_load_item,
    .delete_thread_item = pg_delete_thread_item,
    .save_attachment = pg_save_attachment,
    .load_attachment = pg_load_attachment,
    .delete_attachment = pg_delete_attachment,
    .ping = pg_ping,
    .destroy = pg_destroy,
    .acquire_stream = pg_acquire_stream,
    .release_stream = pg_release_stream,
    .renew_stream = pg_renew_stream,
};

/* Allocates the store and its pool, with no connection yet. */
static int store_new(const char *conninfo, int max, pg_store **out) {
  *out = NULL;
  pg_store *q = calloc(1, sizeof(*q));
  if (q == NULL)
    return CK_ENOMEM;
  q->base.vt = &postgres_vtable;
  q->base.name = "postgres";
  q->max = max;
  q->conninfo = strdup(conninfo);
  q->idle = calloc((size_t)max, sizeof(*q->idle));
  if (q->conninfo == NULL || q->idle == NULL)
    goto fail;
  if (pthread_mutex_init(&q->mu, NULL) != 0)
    goto fail;
  if (pthread_cond_init(&q->cv, NULL) != 0) {
    pthread_mutex_destroy(&q->mu);
    goto fail;
  }
  *out = q;
  return CK_OK;
fail:
  free(q->idle);
  free(q->conninfo);
  free(q);
  return CK_ENOMEM;
}

int ck_store_postgres_open(const char *conninfo, int max_connections, ck_store **out, char *errbuf,
                           size_t errlen) {
  *out = NULL;
  if (conninfo == NULL)
    conninfo = ""; /* libpq's defaults: the PG* environment variables, then the local socket */
  if (!PQisthreadsafe()) {
    ck__errf(errbuf, errlen, "the libpq library was built without thread support");
    return CK_ESTORE;
  }
  int max = max_connections <= 0 ? DEFAULT_CONNECTIONS : max_connections;
  if (max > MAX_CONNECTIONS)
    max = MAX_CONNECTIONS;
  pg_store *q;
  int rc = store_new(conninfo, max, &q);
  if (rc != CK_OK)
    return rc;
  /* The first connection is opened now rather than lazily so that a wrong address, password
   * or schema version fails at startup, with libpq's reason, instead of on the first request. */
  PGconn *c = NULL;
  rc = conn_open(q->conninfo, &c, errbuf, errlen);
  if (rc == CK_OK)
    rc = ck__pg_migrate(c, errbuf, errlen);
  if (rc != CK_OK) {
    PQfinish(c);
    pg_destroy(&q->base);
    return rc == CK_ENOMEM ? CK_ENOMEM : CK_ESTORE;
  }
  q->nopen = 1;
  pool_put(q, c);
  *out = &q->base;
  return CK_OK;
}
