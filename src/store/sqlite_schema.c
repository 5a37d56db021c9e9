/* The SQLite store's schema, versioned by a list of migrations (see sqlite_schema.h).
 *
 * A migration is appended to the list and never edited once released: a database records the
 * number of migrations it has applied in schema_version, and opening it applies the rest. A
 * database whose version is higher than the list is long was written by a newer build; it is
 * refused rather than risk writing rows that the newer schema does not expect.
 */
#include "store/sqlite_schema.h"
#include "util/errbuf.h"

#include <chatkit/error.h>

#include <stdarg.h>
#include <stdio.h>

/* Version 1: the initial schema.
 *
 * Records keep their canonical JSON text in `json`, so a load returns exactly what was saved
 * without re-serialising. created_us (created_at as UTC microseconds) and seq (a store-wide
 * insertion counter from `counters`) form the ordering key; the indexes cover the paging
 * queries, which compare (created_us, seq) as a row value. Items reference their thread with
 * ON DELETE CASCADE so deleting a thread deletes its items in the same statement. */
static const char migration_1[] =
    "CREATE TABLE threads ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  created_us INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  json TEXT NOT NULL"
    ");"
    "CREATE INDEX threads_by_user_order ON threads(user_id, created_us, seq);"
    "CREATE TABLE items ("
    "  thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,"
    "  id TEXT NOT NULL,"
    "  created_us INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  json TEXT NOT NULL,"
    "  PRIMARY KEY (thread_id, id)"
    ");"
    "CREATE INDEX items_by_order ON items(thread_id, created_us, seq);"
    "CREATE TABLE attachments ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  json TEXT NOT NULL"
    ");"
    "CREATE TABLE counters ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  value INTEGER NOT NULL"
    ");"
    "INSERT INTO counters(name, value) VALUES ('seq', 0);";

/* Version 2: stream leases (see ck_store_vtable.acquire_stream), one row per thread that is
 * producing a response. The same table as PostgreSQL's chatkit_stream_leases (SQLite's tables
 * carry no prefix), with the expiry as wall-clock milliseconds since the epoch because SQLite
 * has no timestamp type. There is deliberately no foreign key to threads: a lease is taken
 * after the thread was loaded and outlives nothing but a crashed stream, and deleting a thread
 * must not wait for, or fail on, a stream that is still running on it. */
static const char migration_2[] = "CREATE TABLE stream_leases ("
                                  "  thread_id TEXT PRIMARY KEY NOT NULL,"
                                  "  holder TEXT NOT NULL,"
                                  "  expires_ms INTEGER NOT NULL"
                                  ");";

static const char *const migrations[] = {migration_1, migration_2};

#define MIGRATION_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))

int ck__sqlite_schema_current(void) {
  return MIGRATION_COUNT;
}

/* Reads the recorded version: 0 for a new database (no row yet). */
static int read_version(sqlite3 *db, int *version) {
  sqlite3_stmt *st = NULL;
  *version = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    sqlite3_int64 v = sqlite3_column_int64(st, 0);
    *version = v > 1000000 ? 1000000 : (int)v;
    rc = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_version(sqlite3 *db, int version) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_exec(db, "DELETE FROM schema_version", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_prepare_v2(db, "INSERT INTO schema_version(version) VALUES (?)", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_int(st, 1, version);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int ck__sqlite_migrate(sqlite3 *db, const char *path, char *errbuf, size_t errlen) {
  int version = 0;
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    ck__errf(errbuf, errlen, "cannot lock SQLite database \"%s\": %s", path, sqlite3_errmsg(db));
    return CK_ESTORE;
  }
  rc = sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                    NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = read_version(db, &version);
  if (rc != SQLITE_OK) {
    ck__errf(errbuf, errlen, "cannot read the schema version of \"%s\": %s", path,
             sqlite3_errmsg(db));
    goto fail;
  }
  if (version > MIGRATION_COUNT) {
    ck__errf(errbuf, errlen,
             "SQLite database \"%s\" has schema version %d, newer than version %d that this "
             "build supports; refusing to open it (upgrade chatkit-server)",
             path, version, MIGRATION_COUNT);
    goto fail;
  }
  for (int v = version; v < MIGRATION_COUNT; v++) {
    rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      ck__errf(errbuf, errlen, "migrating \"%s\" to schema version %d failed: %s", path, v + 1,
               sqlite3_errmsg(db));
      goto fail;
    }
  }
  if (version != MIGRATION_COUNT && write_version(db, MIGRATION_COUNT) != SQLITE_OK) {
    ck__errf(errbuf, errlen, "cannot record the schema version of \"%s\": %s", path,
             sqlite3_errmsg(db));
    goto fail;
  }
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    ck__errf(errbuf, errlen, "cannot commit the schema of \"%s\": %s", path, sqlite3_errmsg(db));
    goto fail;
  }
  return CK_OK;
fail:
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return CK_ESTORE;
}
