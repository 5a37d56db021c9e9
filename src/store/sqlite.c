/* The SQLite store: the embedded default backend.
 *
 * Connections. One writer connection, guarded by a mutex, runs every write inside BEGIN
 * IMMEDIATE, so the write lock is taken up front and a transaction never has to be retried
 * half-way; other processes on the same file wait up to busy_timeout. A small pool of reader
 * connections serves loads in parallel; WAL mode lets them read a consistent snapshot while
 * the writer commits. Every connection is opened with SQLITE_OPEN_NOMUTEX because it is only
 * ever used by one thread at a time (the writer under its mutex, a reader while checked out
 * of the pool), and caches its prepared statements, created on first use.
 *
 * Records are stored as their canonical JSON text (see sqlite_schema.c); loads parse that text
 * into the caller's arena and return ordinary trees, never RAW values, so callers may change
 * what they load.
 */
#include "store/sqlite_schema.h"
#include "store/store_internal.h"
#include "util/errbuf.h"

#include <chatkit/error.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

/* Readers in the pool: enough for the worker threads that typically load at once. */
#define READERS 4

/* How long a connection waits for another connection's lock before failing, in ms. */
#define BUSY_TIMEOUT_MS 5000

/* Every statement the store runs, prepared once per connection on first use. */
typedef enum stmt_id {
  ST_BEGIN_READ,
  ST_BEGIN_WRITE,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_NEXT_SEQ,
  ST_THREAD_OWNER,
  ST_THREAD_INSERT,
  ST_THREAD_UPDATE,
  ST_THREAD_LOAD,
  ST_THREAD_DELETE,
  ST_THREAD_KEY,
  ST_THREADS_ASC,
  ST_THREADS_DESC,
  ST_ITEM_UPDATE,
  ST_ITEM_INSERT,
  ST_ITEM_LOAD,
  ST_ITEM_DELETE,
  ST_ITEM_KEY,
  ST_ITEMS_ASC,
  ST_ITEMS_DESC,
  ST_ATT_OWNER,
  ST_ATT_INSERT,
  ST_ATT_UPDATE,
  ST_ATT_LOAD,
  ST_ATT_DELETE,
  ST_PING,
  ST_LEASE_ACQUIRE,
  ST_LEASE_RELEASE,
  ST_LEASE_RENEW,
  ST_COUNT
} stmt_id;

/* The SQL of each statement. Every statement that touches a user's data names the user (items
 * through their thread's user_id), so isolation does not depend on the C code remembering an
 * extra check; the thread checks that precede item writes make the answer precise
 * (CK_ENOTFOUND) but are not what keeps users apart. Paging compares the
 * (created_us, seq) ordering key as a row value, which SQLite answers with a range scan of
 * the ordering index, and fetches one row more than the page to learn has_more. */
static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN_READ] = "BEGIN",
    [ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_NEXT_SEQ] = "UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value",
    [ST_THREAD_OWNER] = "SELECT user_id FROM threads WHERE id = ?1",
    [ST_THREAD_INSERT] = "INSERT INTO threads(id, user_id, created_us, seq, json)"
                         " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_THREAD_UPDATE] = "UPDATE threads SET created_us = ?3, json = ?4"
                         " WHERE id = ?1 AND user_id = ?2",
    [ST_THREAD_LOAD] = "SELECT json FROM threads WHERE id = ?1 AND user_id = ?2",
    [ST_THREAD_DELETE] = "DELETE FROM threads WHERE id = ?1 AND user_id = ?2",
    [ST_THREAD_KEY] = "SELECT created_us, seq FROM threads WHERE id = ?1 AND user_id = ?2",
    [ST_THREADS_ASC] = "SELECT id, json FROM threads WHERE user_id = ?1"
                       " AND (created_us, seq) > (?2, ?3)"
                       " ORDER BY created_us ASC, seq ASC LIMIT ?4",
    [ST_THREADS_DESC] = "SELECT id, json FROM threads WHERE user_id = ?1"
                        " AND (created_us, seq) < (?2, ?3)"
                        " ORDER BY created_us DESC, seq DESC LIMIT ?4",
    [ST_ITEM_UPDATE] = "UPDATE items SET type = ?3, json = ?4 WHERE thread_id = ?1 AND id = ?2"
                       " AND EXISTS (SELECT 1 FROM threads WHERE id = ?1 AND user_id = ?5)",
    [ST_ITEM_INSERT] = "INSERT INTO items(thread_id, id, created_us, seq, type, json)"
                       " SELECT ?1, ?2, ?3, ?4, ?5, ?6"
                       " WHERE EXISTS (SELECT 1 FROM threads WHERE id = ?1 AND user_id = ?7)",
    [ST_ITEM_LOAD] = "SELECT i.json FROM items i JOIN threads t ON t.id = i.thread_id"
                     " WHERE i.thread_id = ?1 AND i.id = ?2 AND t.user_id = ?3",
    [ST_ITEM_DELETE] = "DELETE FROM items WHERE thread_id = ?1 AND id = ?2"
                       " AND EXISTS (SELECT 1 FROM threads WHERE id = ?1 AND user_id = ?3)",
    [ST_ITEM_KEY] = "SELECT i.created_us, i.seq FROM items i JOIN threads t ON t.id = i.thread_id"
                    " WHERE i.thread_id = ?1 AND i.id = ?2 AND t.user_id = ?3",
    [ST_ITEMS_ASC] = "SELECT id, json FROM items WHERE thread_id = ?1"
                     " AND (created_us, seq) > (?2, ?3)"
                     " AND EXISTS (SELECT 1 FROM threads WHERE id = ?1 AND user_id = ?5)"
                     " ORDER BY created_us ASC, seq ASC LIMIT ?4",
    [ST_ITEMS_DESC] = "SELECT id, json FROM items WHERE thread_id = ?1"
                      " AND (created_us, seq) < (?2, ?3)"
                      " AND EXISTS (SELECT 1 FROM threads WHERE id = ?1 AND user_id = ?5)"
                      " ORDER BY created_us DESC, seq DESC LIMIT ?4",
    [ST_ATT_OWNER] = "SELECT user_id FROM attachments WHERE id = ?1",
    [ST_ATT_INSERT] = "INSERT INTO attachments(id, user_id, seq, json) VALUES (?1, ?2, ?3, ?4)",
    [ST_ATT_UPDATE] = "UPDATE attachments SET json = ?3 WHERE id = ?1 AND user_id = ?2",
    [ST_ATT_LOAD] = "SELECT json FROM attachments WHERE id = ?1 AND user_id = ?2",
    [ST_ATT_DELETE] = "DELETE FROM attachments WHERE id = ?1 AND user_id = ?2",
    [ST_PING] = "SELECT 1",
    /* Stream leases (schema version 2). One statement inserts a new lease, takes over an
     * expired one or refreshes the caller's own, and returns a row only when the caller holds
     * the lease afterwards. ?3 is the current time and ?4 the TTL, in milliseconds. */
    [ST_LEASE_ACQUIRE] =
        "INSERT INTO stream_leases(thread_id, holder, expires_ms) VALUES (?1, ?2, ?3 + ?4)"
        " ON CONFLICT(thread_id) DO UPDATE SET holder = excluded.holder,"
        " expires_ms = excluded.expires_ms"
        " WHERE stream_leases.expires_ms <= ?3 OR stream_leases.holder = excluded.holder"
        " RETURNING 1",
    [ST_LEASE_RELEASE] = "DELETE FROM stream_leases WHERE thread_id = ?1 AND holder = ?2",
    [ST_LEASE_RENEW] = "UPDATE stream_leases SET expires_ms = ?3 + ?4"
                       " WHERE thread_id = ?1 AND holder = ?2 RETURNING 1",
};

/* A connection and its statement cache. */
typedef struct conn {
  sqlite3 *db;
  sqlite3_stmt *st[ST_COUNT];
} conn;

typedef struct sql_store {
  ck_store base;
  pthread_mutex_t wmu; /* serialises use of the writer connection */
  conn writer;
  pthread_mutex_t pmu; /* guards reader_busy */
  pthread_cond_t pcv;  /* signalled when a reader returns to the pool */
  conn readers[READERS];
  bool reader_busy[READERS];
} sql_store;

/* ---- Connections and statements ----------------------------------------------------------- */

static int map_rc(int rc) {
  return (rc & 0xff) == SQLITE_NOMEM ? CK_ENOMEM : CK_ESTORE;
}

/* The cached statement `id` of `c`, prepared on first use; NULL when preparing failed. */
static sqlite3_stmt *stmt(conn *c, stmt_id id) {
  if (c->st[id] == NULL && sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                              &c->st[id], NULL) != SQLITE_OK) {
    c->st[id] = NULL;
    return NULL;
  }
  return c->st[id];
}

/* Makes a used statement ready for its next use. */
static void stmt_done(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows (or whose rows are ignored) to completion. */
static int exec_stmt(sqlite3_stmt *st) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
  }
  stmt_done(st);
  return rc == SQLITE_DONE ? CK_OK : map_rc(rc);
}

static int exec_id(conn *c, stmt_id id) {
  sqlite3_stmt *st = stmt(c, id);
  return st == NULL ? map_rc(sqlite3_errcode(c->db)) : exec_stmt(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *s, size_t n) {
  return sqlite3_bind_text64(st, i, s, n, SQLITE_STATIC, SQLITE_UTF8) == SQLITE_OK ? CK_OK
                                                                                   : CK_ESTORE;
}

static int bind_str(sqlite3_stmt *st, int i, const char *s) {
  return bind_text(st, i, s, strlen(s));
}

static int bind_i64(sqlite3_stmt *st, int i, int64_t v) {
  return sqlite3_bind_int64(st, i, v) == SQLITE_OK ? CK_OK : CK_ESTORE;
}

/* Parses text column `col` of the current row into `a`. */
static int column_json(sqlite3_stmt *st, int col, ck_arena *a, ck_json **out) {
  const char *text = (const char *)sqlite3_column_text(st, col);
  int n = sqlite3_column_bytes(st, col);
  if (text == NULL)
    return CK_ESTORE;
  return ck__store_parse(a, text, (size_t)n, out);
}

static void conn_close(conn *c) {
  for (int i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(c->st[i]);
  sqlite3_close(c->db);
  memset(c, 0, sizeof(*c));
}

/* Opens one connection and applies the per-connection settings. foreign_keys makes
 * ON DELETE CASCADE work; synchronous=NORMAL is durable across application crashes in WAL
 * mode and only risks the last commits on power loss, the usual trade-off for WAL. */
static int conn_open(conn *c, const char *path, bool writer, char *errbuf, size_t errlen) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
  if (rc != SQLITE_OK) {
    ck__errf(errbuf, errlen, "cannot open SQLite database \"%s\": %s", path,
             c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    goto fail;
  }
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
  rc = sqlite3_exec(c->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;", NULL, NULL,
                    NULL);
  /* A reader never writes; query_only turns a bug that would write through it into an error. */
  if (rc == SQLITE_OK && !writer)
    rc = sqlite3_exec(c->db, "PRAGMA query_only = ON", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    ck__errf(errbuf, errlen, "cannot configure SQLite database \"%s\": %s", path,
             sqlite3_errmsg(c->db));
    goto fail;
  }
  return CK_OK;
fail:
  conn_close(c);
  return map_rc(rc);
}

/* Switches the database file to WAL (a persistent property of the file). */
static int enable_wal(conn *c, const char *path, char *errbuf, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int ok = 0;
  if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    ok = mode != NULL && strcmp(mode, "wal") == 0;
  }
  if (!ok)
    ck__errf(errbuf, errlen, "cannot switch SQLite database \"%s\" to WAL mode: %s", path,
             sqlite3_errmsg(c->db));
  sqlite3_finalize(st);
  return ok ? CK_OK : CK_ESTORE;
}

/* Checks a reader out of the pool, waiting while all are in use. */
static conn *reader_get(sql_store *q) {
  pthread_mutex_lock(&q->pmu);
  for (;;) {
    for (int i = 0; i < READERS; i++) {
      if (!q->reader_busy[i]) {
        q->reader_busy[i] = true;
        pthread_mutex_unlock(&q->pmu);
        return &q->readers[i];
      }
    }
    pthread_cond_wait(&q->pcv, &q->pmu);
  }
}

static void reader_put(sql_store *q, conn *c) {
  pthread_mutex_lock(&q->pmu);
  q->reader_busy[c - q->readers] = false;
  pthread_cond_signal(&q->pcv);
  pthread_mutex_unlock(&q->pmu);
}

/* Takes the writer and opens a write transaction. On failure the writer is released. */
static int write_begin(sql_store *q) {
  pthread_mutex_lock(&q->wmu);
  int rc = exec_id(&q->writer, ST_BEGIN_WRITE);
  if (rc != CK_OK)
    pthread_mutex_unlock(&q->wmu);
  return rc;
}

/* Commits when `rc` is CK_OK, otherwise rolls back, then releases the writer. */
static int write_end(sql_store *q, int rc) {
  if (rc == CK_OK)
    rc = exec_id(&q->writer, ST_COMMIT);
  if (rc != CK_OK)
    exec_id(&q->writer, ST_ROLLBACK);
  pthread_mutex_unlock(&q->wmu);
  return rc;
}

/* Ends a read transaction; a read-only transaction has nothing to keep, so a rollback is as
 * good as a commit and cannot fail for lack of locks. */
static void read_end(conn *c) {
  if (!sqlite3_get_autocommit(c->db))
    exec_id(c, ST_ROLLBACK);
}

/* The next value of the store-wide insertion counter (inside a write transaction). */
static int next_seq(conn *c, int64_t *out) {
  sqlite3_stmt *st = stmt(c, ST_NEXT_SEQ);
  if (st == NULL)
    return map_rc(sqlite3_errcode(c->db));
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = sqlite3_step(st);
  }
  stmt_done(st);
  return rc == SQLITE_DONE ? CK_OK : map_rc(rc);
}

/* Looks up the owner of a thread or attachment id: CK_OK with *found false when there is no
 * such record, *mine telling whether `user` owns it. */
static int owner_of(conn *c, stmt_id id, const char *rec_id, const char *user, bool *found,
                    bool *mine) {
  sqlite3_stmt *st = stmt(c, id);
  *found = *mine = false;
  if (st == NULL)
    return map_rc(sqlite3_errcode(c->db));
  int rc = bind_str(st, 1, rec_id);
  if (rc == CK_OK) {
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
      const char *owner = (const char *)sqlite3_column_text(st, 0);
      *found = true;
      *mine = owner != NULL && strcmp(owner, user) == 0;
    } else if (s != SQLITE_DONE) {
      rc = map_rc(s);
    }
  }
  stmt_done(st);
  return rc;
}

/* Reads a (created_us, seq) key with statement `id` bound to (a, b[, u]). CK_ENOTFOUND without
 * a row. */
static int read_key(conn *c, stmt_id id, const char *a, const char *b, const char *u,
                    int64_t key[2]) {
  sqlite3_stmt *st = stmt(c, id);
  if (st == NULL)
    return map_rc(sqlite3_errcode(c->db));
  int rc = bind_str(st, 1, a);
  if (rc == CK_OK)
    rc = bind_str(st, 2, b);
  if (rc == CK_OK && u != NULL)
    rc = bind_str(st, 3, u);
  if (rc == CK_OK) {
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
      key[0] = sqlite3_column_int64(st, 0);
      key[1] = sqlite3_column_int64(st, 1);
    } else {
      rc = s == SQLITE_DONE ? CK_ENOTFOUND : map_rc(s);
    }
  }
  stmt_done(st);
  return rc;
}

/* Loads the single JSON column of a one-row query whose parameters are the strings `p`. */
static int load_one(sql_store *q, stmt_id id, const char *const *p, int np, ck_arena *a,
                    ck_json **out) {
  conn *c = reader_get(q);
  sqlite3_stmt *st = stmt(c, id);
  int rc = st == NULL ? map_rc(sqlite3_errcode(c->db)) : CK_OK;
  for (int i = 0; rc == CK_OK && i < np; i++)
    rc = bind_str(st, i + 1, p[i]);
  if (rc == CK_OK) {
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
      rc = column_json(st, 0, a, out);
    else
      rc = s == SQLITE_DONE ? CK_ENOTFOUND : map_rc(s);
  }
  if (st != NULL)
    stmt_done(st);
  reader_put(q, c);
  return rc;
}

/* Runs a bound page query (which fetches up to `limit` + 1 rows of id, json) into `out`. */
static int run_page(sqlite3_stmt *st, ck_arena *a, int64_t want, ck_page *out) {
  ck_json *data = ck_json_array(a);
  const char *last = NULL;
  bool more = false;
  int64_t n = 0;
  int rc = data == NULL ? CK_ENOMEM : CK_OK;
  while (rc == CK_OK) {
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE)
      break;
    if (s != SQLITE_ROW) {
      rc = map_rc(s);
      break;
    }
    if (n == want) {
      more = true;
      break;
    }
    /* Pages hand back RAW canonical text (see store.h): listings are written straight out. */
    const char *text = (const char *)sqlite3_column_text(st, 1);
    ck_json *v = text ? ck_json_raw(a, text, (size_t)sqlite3_column_bytes(st, 1)) : NULL;
    rc = text == NULL ? CK_ESTORE : v == NULL ? CK_ENOMEM : CK_OK;
    if (rc == CK_OK)
      rc = ck_json_array_append(data, v);
    /* Only the page's last id is needed, for page->after. */
    if (rc == CK_OK && n == want - 1) {
      last = ck_arena_strdup(a, (const char *)sqlite3_column_text(st, 0));
      if (last == NULL)
        rc = CK_ENOMEM;
    }
    n++;
  }
  stmt_done(st);
  if (rc != CK_OK)
    return rc;
  out->data = data;
  out->has_more = more;
  out->after = more ? last : NULL;
  return CK_OK;
}

/* Binds the scope (user id or thread id), the cursor key, the row limit and, for item pages,
 * the user id (`user` when not NULL) of a page query and runs it. */
static int page_query(conn *c, stmt_id id, const char *scope, const char *user,
                      const int64_t key[2], int limit, ck_arena *a, ck_page *out) {
  sqlite3_stmt *st = stmt(c, id);
  if (st == NULL)
    return map_rc(sqlite3_errcode(c->db));
  int64_t want = limit > 0 ? limit : 0;
  int rc = bind_str(st, 1, scope);
  if (rc == CK_OK)
    rc = bind_i64(st, 2, key[0]);
  if (rc == CK_OK)
    rc = bind_i64(st, 3, key[1]);
  if (rc == CK_OK)
    rc = bind_i64(st, 4, want + 1);
  if (rc == CK_OK && user != NULL)
    rc = bind_str(st, 5, user);
  if (rc != CK_OK) {
    stmt_done(st);
    return rc;
  }
  return run_page(st, a, want, out);
}

/* The key to start from without a cursor: below or above every real key. */
static void start_key(ck_order order, int64_t key[2]) {
  key[0] = key[1] = order == CK_ORDER_ASC ? INT64_MIN : INT64_MAX;
}

/* ---- Operations --------------------------------------------------------------------------- */

static int sq_load_thread(ck_store *s, ck_arena *a, const char *thread_id, const ck_ctx *ctx,
                          ck_json **out) {
  *out = NULL;
  if (thread_id == NULL)
    return CK_EINVAL;
  const char *p[] = {thread_id, ck__store_user(ctx)};
  return load_one((sql_store *)s, ST_THREAD_LOAD, p, 2, a, out);
}

/* Inserts or updates a thread or attachment owned by `user`. Threads pass their created_us
 * (has_key); a thread's order follows its current created_at, with its creation seq kept. */
static int save_owned(sql_store *q, const ck__store_record *pr, const char *user, bool thread) {
  conn *c = &q->writer;
  sqlite3_stmt *st = NULL;
  bool found, mine;
  int64_t seq = 0;
  int i = 1;
  int rc = write_begin(q);
  if (rc != CK_OK)
    return rc;
  rc = owner_of(c, thread ? ST_THREAD_OWNER : ST_ATT_OWNER, pr->id, user, &found, &mine);
  if (rc == CK_OK && found && !mine)
    rc = CK_ENOTFOUND; /* another user's id looks exactly like a missing record */
  if (rc == CK_OK && !found)
    rc = next_seq(c, &seq);
  if (rc != CK_OK)
    goto fail;
  st = stmt(c, thread ? (found ? ST_THREAD_UPDATE : ST_THREAD_INSERT)
                      : (found ? ST_ATT_UPDATE : ST_ATT_INSERT));
  if (st == NULL) {
    rc = map_rc(sqlite3_errcode(c->db));
    goto fail;
  }
  /* Parameters in order: id, user, [created_us for threads], [seq for inserts], json. */
  rc = bind_str(st, i++, pr->id);
  if (rc == CK_OK)
    rc = bind_str(st, i++, user);
  if (rc == CK_OK && thread)
    rc = bind_i64(st, i++, pr->created_us);
  if (rc == CK_OK && !found)
    rc = bind_i64(st, i++, seq);
  if (rc == CK_OK)
    rc = bind_text(st, i++, pr->text.data, pr->text.len);
  if (rc == CK_OK)
    rc = exec_stmt(st);
  else
    stmt_done(st);
fail:
  return write_end(q, rc);
}

static int sq_save_thread(ck_store *s, const ck_json *thread, const ck_ctx *ctx) {
  ck__store_record pr;
  int rc = ck__store_record_prepare(thread, CK__RECORD_THREAD, &pr);
  if (rc != CK_OK)
    return rc;
  rc = save_owned((sql_store *)s, &pr, ck__store_user(ctx), true);
  ck__store_record_clear(&pr);
  return rc;
}

/* Runs a delete statement bound to the strings `p` in its own write transaction. */
static int delete_with(sql_store *q, stmt_id id, const char *const *p, int np) {
  int rc = write_begin(q);
  if (rc != CK_OK)
    return rc;
  sqlite3_stmt *st = stmt(&q->writer, id);
  rc = st == NULL ? map_rc(sqlite3_errcode(q->writer.db)) : CK_OK;
  for (int i = 0; rc == CK_OK && i < np; i++)
    rc = bind_str(st, i + 1, p[i]);
  if (rc == CK_OK)
    rc = exec_stmt(st);
  else if (st != NULL)
    stmt_done(st);
  return write_end(q, rc);
}

static int sq_delete_thread(ck_store *s, const char *thread_id, const ck_ctx *ctx) {
  if (thread_id == NULL)
    return CK_EINVAL;
  const char *p[] = {thread_id, ck__store_user(ctx)};
  return delete_with((sql_store *)s, ST_THREAD_DELETE, p, 2);
}

static int sq_load_threads(ck_store *s, ck_arena *a, int limit, const char *after, ck_order order,
                           const ck_ctx *ctx, ck_page *out) {
  sql_store *q = (sql_store *)s;
  memset(out, 0, sizeof(*out));
  const char *user = ck__store_user(ctx);
  conn *c = reader_get(q);
  int64_t key[2];
  start_key(order, key);
  /* One read transaction, so the cursor lookup and the page see the same snapshot. */
  int rc = exec_id(c, ST_BEGIN_READ);
  if (rc == CK_OK && !ck__store_no_cursor(after))
    rc = read_key(c, ST_THREAD_KEY, after, user, NULL, key);
  if (rc == CK_OK)
    rc = page_query(c, order == CK_ORDER_ASC ? ST_THREADS_ASC : ST_THREADS_DESC, user, NULL, key,
                    limit, a, out);
  read_end(c);
  reader_put(q, c);
  return rc;
}

static int sq_load_thread_items(ck_store *s, ck_arena *a, const char *thread_id, const char *after,
                                int limit, ck_order order, const ck_ctx *ctx, ck_page *out) {
  sql_store *q = (sql_store *)s;
  memset(out, 0, sizeof(*out));
  if (thread_id == NULL)
    return CK_EINVAL;
  conn *c = reader_get(q);
  int64_t key[2];
  int rc = exec_id(c, ST_BEGIN_READ);
  if (rc == CK_OK)
    rc = read_key(c, ST_THREAD_KEY, thread_id, ck__store_user(ctx), NULL, key);
  start_key(order, key);
  if (rc == CK_OK && !ck__store_no_cursor(after))
    rc = read_key(c, ST_ITEM_KEY, thread_id, after, ck__store_user(ctx), key);
  if (rc == CK_OK)
    rc = page_query(c, order == CK_ORDER_ASC ? ST_ITEMS_ASC : ST_ITEMS_DESC, thread_id,
                    ck__store_user(ctx), key, limit, a, out);
  read_end(c);
  reader_put(q, c);
  return rc;
}

/* Replaces the text and type of an existing item (its created_us and seq, hence its place,
 * stay). Sets *done when there was such an item. */
static int item_update(conn *c, const char *thread_id, const ck__store_record *pr, const char *user,
                       bool *done) {
  sqlite3_stmt *st = stmt(c, ST_ITEM_UPDATE);
  *done = false;
  if (st == NULL)
    return map_rc(sqlite3_errcode(c->db));
  int rc = bind_str(st, 1, thread_id);
  if (rc == CK_OK)
    rc = bind_str(st, 2, pr->id);
  if (rc == CK_OK)
    rc = bind_str(st, 3, pr->type);
  if (rc == CK_OK)
    rc = bind_text(st, 4, pr->text.data, pr->text.len);
  if (rc == CK_OK)
    rc = bind_str(st, 5, user);
  if (rc != CK_OK) {
    stmt_done(st);
    return rc;
  }
  rc = exec_stmt(st);
  *done = rc == CK_OK && sqlite3_changes(c->db) > 0;
  return rc;
}

/* Inserts a new item with the next sequence number. CK_ENOTFOUND when the thread is not the
 * user's (the caller checked already; the statement re-checks so it cannot be misused). */
static int item_insert(conn *c, const char *thread_id, const ck__store_record *pr,
                       const char *user) {
  int64_t seq;
  int rc = next_seq(c, &seq);
  if (rc != CK_OK)
    return rc;
  sqlite3_stmt *st = stmt(c, ST_ITEM_INSERT);
  if (st == NULL)
    return map_rc(sqlite3_errcode(c->db));
  rc = bind_str(st, 1, thread_id);
  if (rc == CK_OK)
    rc = bind_str(st, 2, pr->id);
  if (rc == CK_OK)
    rc = bind_i64(st, 3, pr->created_us);
  if (rc == CK_OK)
    rc = bind_i64(st, 4, seq);
  if (rc == CK_OK)
    rc = bind_str(st, 5, pr->type);
  if (rc == CK_OK)
    rc = bind_text(st, 6, pr->text.data, pr->text.len);
  if (rc == CK_OK)
    rc = bind_str(st, 7, user);
  if (rc != CK_OK) {
    stmt_done(st);
    return rc;
  }
  rc = exec_stmt(st);
  if (rc == CK_OK && sqlite3_changes(c->db) == 0)
    rc = CK_ENOTFOUND;
  return rc;
}

static int sq_save_item(ck_store *s, const char *thread_id, const ck_json *item,
                        const ck_ctx *ctx) {
  sql_store *q = (sql_store *)s;
  const char *user = ck__store_user(ctx);
  ck__store_record pr;
  int64_t key[2];
  bool replaced = false;
  if (thread_id == NULL)
    return CK_EINVAL;
  int rc = ck__store_record_prepare(item, CK__RECORD_ITEM, &pr);
  if (rc != CK_OK)
    return rc;
  rc = write_begin(q);
  if (rc != CK_OK)
    goto fail;
  /* Check the thread first so a missing thread is CK_ENOTFOUND, then replace or insert. */
  rc = read_key(&q->writer, ST_THREAD_KEY, thread_id, user, NULL, key);
  if (rc == CK_OK)
    rc = item_update(&q->writer, thread_id, &pr, user, &replaced);
  if (rc == CK_OK && !replaced)
    rc = item_insert(&q->writer, thread_id, &pr, user);
  rc = write_end(q, rc);
fail:
  ck__store_record_clear(&pr);
  return rc;
}

static int sq_load_item(ck_store *s, ck_arena *a, const char *thread_id, const char *item_id,
                        const ck_ctx *ctx, ck_json **out) {
  *out = NULL;
  if (thread_id == NULL || item_id == NULL)
    return CK_EINVAL;
  const char *p[] = {thread_id, item_id, ck__store_user(ctx)};
  return load_one((sql_store *)s, ST_ITEM_LOAD, p, 3, a, out);
}

static int sq_delete_thread_item(ck_store *s, const char *thread_id, const char *item_id,
                                 const ck_ctx *ctx) {
  if (thread_id == NULL || item_id == NULL)
    return CK_EINVAL;
  const char *p[] = {thread_id, item_id, ck__store_user(ctx)};
  return delete_with((sql_store *)s, ST_ITEM_DELETE, p, 3);
}

static int sq_save_attachment(ck_store *s, const ck_json *attachment, const ck_ctx *ctx) {
  ck__store_record pr;
  int rc = ck__store_record_prepare(attachment, CK__RECORD_ATTACHMENT, &pr);
  if (rc != CK_OK)
    return rc;
  rc = save_owned((sql_store *)s, &pr, ck__store_user(ctx), false);
  ck__store_record_clear(&pr);
  return rc;
}

static int sq_load_attachment(ck_store *s, ck_arena *a, const char *attachment_id,
                              const ck_ctx *ctx, ck_json **out) {
  *out = NULL;
  if (attachment_id == NULL)
    return CK_EINVAL;
  const char *p[] = {attachment_id, ck__store_user(ctx)};
  return load_one((sql_store *)s, ST_ATT_LOAD, p, 2, a, out);
}

static int sq_delete_attachment(ck_store *s, const char *attachment_id, const ck_ctx *ctx) {
  if (attachment_id == NULL)
    return CK_EINVAL;
  const char *p[] = {attachment_id, ck__store_user(ctx)};
  return delete_with((sql_store *)s, ST_ATT_DELETE, p, 2);
}

static int sq_ping(ck_store *s) {
  sql_store *q = (sql_store *)s;
  conn *c = reader_get(q);
  int rc = exec_id(c, ST_PING);
  reader_put(q, c);
  return rc;
}

/* ---- Stream leases ------------------------------------------------------------------------ */

/* Wall-clock milliseconds: the database file may be shared by several processes on this host,
 * which agree on the real-time clock but not on a monotonic one. */
static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs lease statement `id` in its own write transaction. `*rows` says whether it returned a
 * row (NULL for statements whose rows do not matter). */
static int lease_exec(sql_store *q, stmt_id id, const char *thread_id, const char *holder,
                      int ttl_ms, bool *rows) {
  if (thread_id == NULL || holder == NULL)
    return CK_EINVAL;
  int rc = write_begin(q);
  if (rc != CK_OK)
    return rc;
  sqlite3_stmt *st = stmt(&q->writer, id);
  rc = st == NULL ? map_rc(sqlite3_errcode(q->writer.db)) : CK_OK;
  if (rc == CK_OK)
    rc = bind_str(st, 1, thread_id);
  if (rc == CK_OK)
    rc = bind_str(st, 2, holder);
  if (rc == CK_OK && rows != NULL)
    rc = bind_i64(st, 3, wall_ms());
  if (rc == CK_OK && rows != NULL)
    rc = bind_i64(st, 4, ttl_ms);
  if (rc == CK_OK) {
    int step = sqlite3_step(st);
    if (rows != NULL)
      *rows = step == SQLITE_ROW;
    /* The statement may still have to finish after its RETURNING row: step it to the end. */
    while (step == SQLITE_ROW)
      step = sqlite3_step(st);
    rc = step == SQLITE_DONE ? CK_OK : map_rc(step);
  }
  if (st != NULL)
    stmt_done(st);
  return write_end(q, rc);
}

static int sq_acquire_stream(ck_store *s, const char *thread_id, const char *holder, int ttl_ms,
                             const ck_ctx *ctx) {
  (void)ctx;
  bool held = false;
  int rc = lease_exec((sql_store *)s, ST_LEASE_ACQUIRE, thread_id, holder, ttl_ms, &held);
  return rc != CK_OK ? rc : held ? CK_OK : CK_ECONFLICT;
}

static int sq_release_stream(ck_store *s, const char *thread_id, const char *holder,
                             const ck_ctx *ctx) {
  (void)ctx;
  return lease_exec((sql_store *)s, ST_LEASE_RELEASE, thread_id, holder, 0, NULL);
}

static int sq_renew_stream(ck_store *s, const char *thread_id, const char *holder, int ttl_ms,
                           const ck_ctx *ctx) {
  (void)ctx;
  bool held = false;
  int rc = lease_exec((sql_store *)s, ST_LEASE_RENEW, thread_id, holder, ttl_ms, &held);
  return rc != CK_OK ? rc : held ? CK_OK : CK_ECONFLICT;
}

static void sq_destroy(ck_store *s) {
  sql_store *q = (sql_store *)s;
  /* Readers first: the last connection to close checkpoints the WAL into the main file. */
  for (int i = 0; i < READERS; i++)
    conn_close(&q->readers[i]);
  conn_close(&q->writer);
  pthread_cond_destroy(&q->pcv);
  pthread_mutex_destroy(&q->pmu);
  pthread_mutex_destroy(&q->wmu);
  free(q);
}

static const ck_store_vtable sqlite_vtable = {
    .load_thread = sq_load_thread,
    .save_thread = sq_save_thread,
    .delete_thread = sq_delete_thread,
    .load_threads = sq_load_threads,
    .load_thread_items = sq_load_thread_items,
    .add_thread_item = sq_save_item,
    .save_item = sq_save_item,
    .load_item = sq_load_item,
    .delete_thread_item = sq_delete_thread_item,
    .save_attachment = sq_save_attachment,
    .load_attachment = sq_load_attachment,
    .delete_attachment = sq_delete_attachment,
    .ping = sq_ping,
    .destroy = sq_destroy,
    .acquire_stream = sq_acquire_stream,
    .release_stream = sq_release_stream,
    .renew_stream = sq_renew_stream,
};

int ck_store_sqlite_open(const char *path, ck_store **out, char *errbuf, size_t errlen) {
  *out = NULL;
  if (path == NULL || path[0] == '\0') {
    ck__errf(errbuf, errlen, "SQLite store needs a file path");
    return CK_ESTORE;
  }
  if (!sqlite3_threadsafe()) {
    ck__errf(errbuf, errlen, "the SQLite library was built without thread support");
    return CK_ESTORE;
  }
  sql_store *q = calloc(1, sizeof(*q));
  if (q == NULL)
    return CK_ENOMEM;
  q->base.vt = &sqlite_vtable;
  q->base.name = "sqlite";
  /* Initialised first so sq_destroy can always run on the failure path. */
  if (pthread_mutex_init(&q->wmu, NULL) != 0) {
    free(q);
    return CK_ENOMEM;
  }
  if (pthread_mutex_init(&q->pmu, NULL) != 0) {
    pthread_mutex_destroy(&q->wmu);
    free(q);
    return CK_ENOMEM;
  }
  if (pthread_cond_init(&q->pcv, NULL) != 0) {
    pthread_mutex_destroy(&q->pmu);
    pthread_mutex_destroy(&q->wmu);
    free(q);
    return CK_ENOMEM;
  }
  int rc = conn_open(&q->writer, path, true, errbuf, errlen);
  if (rc == CK_OK)
    rc = enable_wal(&q->writer, path, errbuf, errlen);
  if (rc == CK_OK)
    rc = ck__sqlite_migrate(q->writer.db, path, errbuf, errlen);
  for (int i = 0; rc == CK_OK && i < READERS; i++)
    rc = conn_open(&q->readers[i], path, false, errbuf, errlen);
  if (rc != CK_OK)
    goto fail;
  *out = &q->base;
  return CK_OK;
fail:
  sq_destroy(&q->base);
  return rc == CK_ENOMEM ? CK_ENOMEM : CK_ESTORE;
}
