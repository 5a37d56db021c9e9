/* chatkit/store.h - where threads, items and attachment records live.
 *
 * The processor never touches persistence directly: it calls a ck_store, a vtable plus state,
 * exactly as the reference calls its Store class. Three backends ship with the library:
 * memory (tests, demos), SQLite (the embedded default) and PostgreSQL (several processes sharing
 * one database). Every backend
 * must pass the shared suite in tests/store/.
 *
 * Values cross this interface as canonical JSON trees (see chatkit/json.h):
 *   - a thread is a ThreadMetadata object: {"title"?, "id", "created_at", "status",
 *     "allowed_image_domains"?, "metadata"} in that key order, nulls omitted;
 *   - an item is a thread item object ({"id","thread_id","created_at","type",...});
 *   - an attachment is an Attachment object including its private "metadata".
 * A store keeps what it is given verbatim (it may keep the serialised text) and hands back
 * equal trees: a round trip must be byte-identical under ck_json_write. Loads allocate the
 * returned trees from the caller's arena, so the caller may change them freely; nothing
 * changes in the store until a save.
 *
 * Blocking: every call may block (disk, network). The server only calls stores from worker
 * threads, never from the event-loop thread. A backend must allow calls from several threads
 * at once.
 *
 * Users: every call receives the request context; a backend scopes every read and write to
 * ctx->user_id. Another user's thread, item or attachment is CK_ENOTFOUND, exactly like a
 * missing one, and never appears in a list.
 */
#ifndef CHATKIT_STORE_H
#define CHATKIT_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <chatkit/json.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The per-request context that flows, unchanged, to every store and handler call. */
typedef struct ck_ctx {
  const char *user_id;    /* the authenticated user; NULL or "" means the anonymous user */
  const char *request_id; /* for logs; may be NULL */
  void *user_data;        /* opaque pointer for integrators; never touched by the library */
} ck_ctx;

typedef enum ck_order { CK_ORDER_DESC = 0, CK_ORDER_ASC = 1 } ck_order;

/** A page of threads or items. */
typedef struct ck_page {
  ck_json *data;     /* a JSON array of records, in page order */
  bool has_more;     /* records remain beyond this page */
  const char *after; /* id of the last record when has_more, else NULL (arena-owned) */
} ck_page;

typedef struct ck_store ck_store;

/* The operations, with the reference's contract. Pagination (load_threads, load_thread_items):
 * records are ordered by created_at (compared as instants; a timestamp without an offset is
 * UTC), ties by insertion order; reversed for CK_ORDER_DESC. `after` NULL or "" means from the
 * start, otherwise the page starts just after the record with that id, and an id not in the
 * list is CK_ENOTFOUND. The page holds the next `limit` records (limit <= 0 gives an empty
 * page); has_more says whether more follow, and page->after is then the id of the page's last
 * record (NULL when the page is empty). Writes: add_thread_item and save_item both insert or
 * replace by id within the thread; a replaced item keeps its original place in the order even
 * if its created_at or type changed. A saved thread is ordered by its current created_at,
 * ties by when the thread was first created. Deletes are silent when the record does not
 * exist; deleting a thread deletes its items but not attachment records. Every function
 * returns CK_OK, CK_ENOTFOUND, CK_ENOMEM, CK_EINVAL (a record that is not a valid object) or
 * CK_ESTORE (the backend failed). */
typedef struct ck_store_vtable {
  /** Loads a thread's metadata. CK_ENOTFOUND when missing or not this user's. */
  int (*load_thread)(ck_store *s, ck_arena *a, const char *thread_id, const ck_ctx *ctx,
                     ck_json **out);
  /** Inserts or replaces a thread (upsert by id), owned by ctx->user_id. Saving a thread id
   * that belongs to another user is CK_ENOTFOUND. */
  int (*save_thread)(ck_store *s, const ck_json *thread, const ck_ctx *ctx);
  /** Deletes a thread and its items. */
  int (*delete_thread)(ck_store *s, const char *thread_id, const ck_ctx *ctx);
  /** Lists this user's threads. Like load_thread_items, the records may be RAW values. */
  int (*load_threads)(ck_store *s, ck_arena *a, int limit, const char *after, ck_order order,
                      const ck_ctx *ctx, ck_page *out);
  /** Lists a thread's items (hidden ones included). CK_ENOTFOUND for a missing thread. The
   * page's records may be RAW values holding the stored canonical text (see ck_json_raw):
   * listings are mostly written straight out, so backends need not parse them; readers that
   * inspect a record call ck_json_expand first. */
  int (*load_thread_items)(ck_store *s, ck_arena *a, const char *thread_id, const char *after,
                           int limit, ck_order order, const ck_ctx *ctx, ck_page *out);
  /** Inserts or replaces an item. CK_ENOTFOUND when the thread does not exist. */
  int (*add_thread_item)(ck_store *s, const char *thread_id, const ck_json *item,
                         const ck_ctx *ctx);
  /** Inserts or replaces an item (same contract as add_thread_item). */
  int (*save_item)(ck_store *s, const char *thread_id, const ck_json *item, const ck_ctx *ctx);
  /** Loads one item. CK_ENOTFOUND when the thread or the item is missing. */
  int (*load_item)(ck_store *s, ck_arena *a, const char *thread_id, const char *item_id,
                   const ck_ctx *ctx, ck_json **out);
  /** Deletes one item. */
  int (*delete_thread_item)(ck_store *s, const char *thread_id, const char *item_id,
                            const ck_ctx *ctx);
  /** Inserts or replaces an attachment record (with its metadata), owned by ctx->user_id.
   * Saving an attachment id that belongs to another user is CK_ENOTFOUND. */
  int (*save_attachment)(ck_store *s, const ck_json *attachment, const ck_ctx *ctx);
  /** Loads an attachment record. */
  int (*load_attachment)(ck_store *s, ck_arena *a, const char *attachment_id, const ck_ctx *ctx,
                         ck_json **out);
  /** Deletes an attachment record. */
  int (*delete_attachment)(ck_store *s, const char *attachment_id, const ck_ctx *ctx);
  /** Checks that the backend is reachable (for GET /ready). */
  int (*ping)(ck_store *s);
  /** Frees the store. */
  void (*destroy)(ck_store *s);

  /* Stream leases (optional; all three NULL means the backend does not lock, and the pipeline
   * then runs concurrent streams on one thread as it always did). A lease says that one
   * response is being produced on a thread, so that two processes sharing the store never
   * interleave two responses. It is keyed by thread id alone: the pipeline takes it only after
   * loading the thread for ctx->user_id, so ctx is passed for logging and tracing only. A lease
   * that is not renewed expires `ttl_ms` after it was last taken or renewed, which is how a
   * process that died mid-stream lets go. */

  /** Takes the lease on `thread_id` for `holder` for `ttl_ms` milliseconds: succeeds when no
   * lease exists, when the existing one has expired (it is taken over) or when `holder` already
   * holds it (so a retried call is harmless). Returns CK_OK, CK_ECONFLICT when another holder's
   * lease is still valid, or CK_ESTORE. */
  int (*acquire_stream)(ck_store *s, const char *thread_id, const char *holder, int ttl_ms,
                        const ck_ctx *ctx);
  /** Gives the lease back when `holder` holds it; silent otherwise. Returns CK_OK or
   * CK_ESTORE. */
  int (*release_stream)(ck_store *s, const char *thread_id, const char *holder, const ck_ctx *ctx);
  /** Extends `holder`'s lease to `ttl_ms` milliseconds from now. Returns CK_OK, CK_ECONFLICT
   * when `holder` no longer holds it (it was released, or it expired and another holder took
   * it over), or CK_ESTORE. */
  int (*renew_stream)(ck_store *s, const char *thread_id, const char *holder, int ttl_ms,
                      const ck_ctx *ctx);
} ck_store_vtable;

/** A store: backends embed this as their first member and fill `vt`. */
struct ck_store {
  const ck_store_vtable *vt;
  const char *name; /* "memory", "sqlite", ... (static string) */
  /* True when no call ever blocks (no disk or network I/O): the service may then answer from
   * its event-loop thread instead of handing the request to a worker. */
  bool nonblocking;
};

/** Frees a store through its vtable. NULL is a no-op. */
void ck_store_free(ck_store *s);

/** Creates an empty in-memory store. Its ordering, paging and error behaviour is the
 * reference test store's (see tests/conformance). Returns NULL when out of memory. */
ck_store *ck_store_memory_new(void);

/** Opens (creating if needed) an SQLite store at `path`, in WAL mode, migrating its schema to
 * the current version. The parent directory must exist. Returns CK_OK, CK_ESTORE (with a
 * message in `errbuf` when not NULL) or CK_ENOMEM. */
int ck_store_sqlite_open(const char *path, ck_store **out, char *errbuf, size_t errlen);

/** Opens a PostgreSQL store. `conninfo` is anything libpq accepts: a "postgres://" or
 * "postgresql://" URL or "key=value" pairs (sslmode, sslrootcert, connect_timeout... as
 * libpq documents them). At most `max_connections` connections are open at once (<= 0 means 8);
 * they are opened lazily, except the first, which migrates the schema (tables prefixed
 * "chatkit_" in the connection's current schema) under an advisory lock, so several processes
 * may open the same database at once. The user needs CREATE on that schema the first time.
 * Returns CK_OK, CK_ESTORE (with a message in `errbuf` when not NULL: unreachable server,
 * failed authentication, a schema newer than this build) or CK_ENOMEM. */
int ck_store_postgres_open(const char *conninfo, int max_connections, ck_store **out, char *errbuf,
                           size_t errlen);

/** Opens a store from a URL: "memory:", "sqlite:PATH" (the parent directory is created),
 * "postgres://..." or "postgresql://..." (passed to libpq as it is, with the default pool size).
 * Returns CK_OK, CK_EINVAL for an unknown scheme (message in errbuf), or the backend's error. */
int ck_store_open_url(const char *url, ck_store **out, char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
