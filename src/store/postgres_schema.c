/* The PostgreSQL store's schema, versioned by a list of migrations (see postgres_schema.h).
 *
 * As for SQLite, a migration is appended to the list and never edited once released; the
 * table chatkit_schema_version records how many migrations a database has applied, and a
 * database with a higher version than this build knows is refused. Migrations run inside one
 * transaction that first takes a transaction-level advisory lock, so when several processes
 * start at once against a new database, one migrates and the others wait for its COMMIT and
 * then find the schema up to date. PostgreSQL DDL is transactional, so a migration that fails
 * half-way leaves nothing behind.
 *
 * Every table is prefixed "chatkit_" because a PostgreSQL database is often shared with other
 * applications; the names are unqualified, so the connection's search_path (for example
 * "options=-csearch_path=chatkit" in the conninfo) decides which schema holds them.
 */
#include "store/postgres_schema.h"
#include "util/errbuf.h"

#include <chatkit/error.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Version 1: the initial schema, one statement per string (the extended query protocol that
 * pipelines use takes a single statement per query).
 *
 * Records keep their canonical JSON text in a TEXT column, so a load returns exactly the bytes
 * that were saved (JSONB would normalise key order and whitespace). created_us (created_at as
 * UTC microseconds) and seq form the ordering key. seq defaults to nextval of one shared
 * sequence: it is unique across tables and processes, never rolls back, and costs no extra
 * statement; gaps (an upsert that turned into an update still draws a value) do not matter
 * because only the order is used. Ids and owners use the "C" collation: they are compared for
 * equality only, and "C" keeps that bytewise whatever the database's default collation is.
 * The indexes cover the paging queries, which compare (created_us, seq) as a row value and
 * scan the index in either direction. Items reference their thread with ON DELETE CASCADE. */
static const char *const migration_1[] = {
    "CREATE TABLE chatkit_schema_version ("
    "  singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),"
    "  version INTEGER NOT NULL"
    ")",
    "CREATE SEQUENCE chatkit_seq AS BIGINT",
    "CREATE TABLE chatkit_threads ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  user_id TEXT COLLATE \"C\" NOT NULL,"
    "  created_us BIGINT NOT NULL,"
    "  seq BIGINT NOT NULL DEFAULT nextval('chatkit_seq'),"
    "  json TEXT NOT NULL"
    ")",
    "CREATE INDEX chatkit_threads_by_user_order ON chatkit_threads (user_id, created_us, seq)",
    "CREATE TABLE chatkit_items ("
    "  thread_id TEXT COLLATE \"C\" NOT NULL REFERENCES chatkit_threads (id) ON DELETE CASCADE,"
    "  id TEXT COLLATE \"C\" NOT NULL,"
    "  created_us BIGINT NOT NULL,"
    "  seq BIGINT NOT NULL DEFAULT nextval('chatkit_seq'),"
    "  type TEXT NOT NULL,"
    "  json TEXT NOT NULL,"
    "  PRIMARY KEY (thread_id, id)"
    ")",
    "CREATE INDEX chatkit_items_by_order ON chatkit_items (thread_id, created_us, seq)",
    "CREATE TABLE chatkit_attachments ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  user_id TEXT COLLATE \"C\" NOT NULL,"
    "  seq BIGINT NOT NULL DEFAULT nextval('chatkit_seq'),"
    "  json TEXT NOT NULL"
    ")",
    NULL,
};

/* Version 2: stream leases (see ck_store_vtable.acquire_stream), one row per thread that is
 * producing a response, shared by every process on the database. Expiry is compared with the
 * database server's clock_timestamp() only, so the processes' clocks need not agree. No
 * foreign key to chatkit_threads: deleting a thread must not wait for, or fail on, a stream
 * that is still running on it, and a stale row is harmless (it expires). */
static const char *const migration_2[] = {
    "CREATE TABLE chatkit_stream_leases ("
    "  thread_id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  holder TEXT COLLATE \"C\" NOT NULL,"
    "  expires_at TIMESTAMPTZ NOT NULL"
    ")",
    NULL,
};

static const char *const *const migrations[] = {migration_1, migration_2};

#define MIGRATION_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The most statements one migration run sends in its pipeline. */
#define MAX_STATEMENTS 64

int ck__pg_first_line_len(const char *msg) {
  size_t n = strcspn(msg, "\n");
  return n > 1000 ? 1000 : (int)n;
}

int ck__pg_schema_current(void) {
  return MIGRATION_COUNT;
}

/* Drops the rest of one query's results, up to the NULL that ends them. A broken connection
 * ends them too. */
static void drain_query(PGconn *c) {
  PGresult *r;
  while (PQstatus(c) == CONNECTION_OK && (r = PQgetResult(c)) != NULL)
    PQclear(r);
}

int ck__pg_pipeline(PGconn *c, const char *const *sql, int n, PGresult **last, const char *what,
                    char *errbuf, size_t errlen) {
  int rc = CK_OK;
  bool have_err = false;
  if (last != NULL)
    *last = NULL;
  if (!PQenterPipelineMode(c)) {
    ck__errf(errbuf, errlen, "%s: %.*s", what, ck__pg_first_line_len(PQerrorMessage(c)),
             PQerrorMessage(c));
    return CK_ESTORE;
  }
  /* Blocking sends are fine here: the statements are a few kilobytes of DDL, far below what
   * would fill both socket buffers while the server's replies wait to be read. */
  for (int i = 0; i < n; i++) {
    if (!PQsendQueryParams(c, sql[i], 0, NULL, NULL, NULL, NULL, 0))
      goto broken;
  }
  if (!PQpipelineSync(c))
    goto broken;
  for (int i = 0; i < n; i++) {
    PGresult *r = PQgetResult(c);
    if (r == NULL)
      goto broken;
    ExecStatusType st = PQresultStatus(r);
    /* After a failed statement the server skips the rest of the pipeline; those statements
     * report PGRES_PIPELINE_ABORTED, and the first error is the one worth reporting. */
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !have_err) {
      const char *msg = st == PGRES_PIPELINE_ABORTED ? "pipeline aborted" : PQresultErrorMessage(r);
      ck__errf(errbuf, errlen, "%s: %.*s", what, ck__pg_first_line_len(msg), msg);
      have_err = true;
      rc = CK_ESTORE;
    }
    if (i == n - 1 && rc == CK_OK && last != NULL)
      *last = r;
    else
      PQclear(r);
    drain_query(c);
  }
  PGresult *sync = PQgetResult(c);
  bool synced = sync != NULL && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced || !PQexitPipelineMode(c))
    goto broken;
  return rc;
broken:
  /* The connection failed mid-pipeline; the caller discards it, so nothing is left to read. */
  if (!have_err)
    ck__errf(errbuf, errlen, "%s: %.*s", what, ck__pg_first_line_len(PQerrorMessage(c)),
             PQerrorMessage(c));
  if (last != NULL) {
    PQclear(*last);
    *last = NULL;
  }
  return CK_ESTORE;
}

/* Runs a pipeline whose last statement returns at most one row of one column and parses that
 * value as a non-negative integer (*out = -1 when the value is NULL or there is no row). */
static int pipeline_int(PGconn *c, const char *const *sql, int n, const char *what, long *out,
                        char *errbuf, size_t errlen) {
  PGresult *r = NULL;
  *out = -1;
  int rc = ck__pg_pipeline(c, sql, n, &r, what, errbuf, errlen);
  if (rc != CK_OK)
    return rc;
  if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
    const char *s = PQgetvalue(r, 0, 0);
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0) {
      ck__errf(errbuf, errlen, "%s: unexpected value \"%.32s\"", what, s);
      rc = CK_ESTORE;
    } else {
      *out = v;
    }
  }
  PQclear(r);
  return rc;
}

int ck__pg_migrate(PGconn *c, char *errbuf, size_t errlen) {
  /* Round trip 1: open the transaction, wait for the lock, and learn whether the version
   * table exists. Checking with to_regclass rather than CREATE TABLE IF NOT EXISTS keeps an
   * up-to-date database free of DDL, which a user with only DML rights may not run. */
  static const char *const head[] = {
      "BEGIN",
      "SELECT pg_advisory_xact_lock(" CK__PG_MIGRATION_LOCK ")",
      "SELECT CASE WHEN to_regclass('chatkit_schema_version') IS NULL THEN 0 END",
  };
  static const char *const read_version[] = {"SELECT version FROM chatkit_schema_version"};
  const char *list[MAX_STATEMENTS];
  char write_version[160];
  long version;
  int n = 0;
  int rc = pipeline_int(c, head, 3, "cannot lock the chatkit schema", &version, errbuf, errlen);
  if (rc != CK_OK)
    goto fail;
  /* Round trip 2 (only when the table exists): the recorded version. A table without a row
   * is treated like a new database; migration 1 would then fail on its CREATE TABLE, which is
   * the right outcome for a table that someone emptied by hand. */
  if (version < 0) {
    rc = pipeline_int(c, read_version, 1, "cannot read the chatkit schema version", &version,
                      errbuf, errlen);
    if (rc != CK_OK)
      goto fail;
    if (version < 0)
      version = 0;
  }
  if (version > MIGRATION_COUNT) {
    ck__errf(errbuf, errlen,
             "PostgreSQL database has chatkit schema version %ld, newer than version %d that "
             "this build supports; refusing to open it (upgrade chatkit-server)",
             version, MIGRATION_COUNT);
    rc = CK_ESTORE;
    goto fail;
  }
  /* Round trip 3: every missing migration, the new version and COMMIT in one pipeline. An
   * up-to-date database just commits the (empty) transaction, which releases the lock. */
  for (int v = (int)version; v < MIGRATION_COUNT; v++) {
    for (const char *const *s = migrations[v]; *s != NULL; s++) {
      if (n >= MAX_STATEMENTS - 2)
        goto too_many;
      list[n++] = *s;
    }
  }
  if (version != MIGRATION_COUNT) {
    snprintf(write_version, sizeof(write_version),
             "INSERT INTO chatkit_schema_version (singleton, version) VALUES (true, %d)"
             " ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
             MIGRATION_COUNT);
    list[n++] = write_version;
  }
  list[n++] = "COMMIT";
  rc = ck__pg_pipeline(c, list, n, NULL, "migrating the chatkit schema failed", errbuf, errlen);
  if (rc != CK_OK)
    goto fail;
  return CK_OK;
too_many:
  ck__errf(errbuf, errlen, "too many migration statements (raise MAX_STATEMENTS)");
  rc = CK_ESTORE;
fail:
  if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
    PQclear(PQexec(c, "ROLLBACK"));
  return rc;
}
