/* Internal: the PostgreSQL store's schema, its migrations and the pipeline helper they use. */
#ifndef CK_STORE_POSTGRES_SCHEMA_H
#define CK_STORE_POSTGRES_SCHEMA_H

#include <stddef.h>

#include <libpq-fe.h>

/* The advisory lock key that serialises migrations across processes: the ASCII bytes of
 * "ckschema". It is a transaction-level lock, so it is released by COMMIT or ROLLBACK (and
 * works through PgBouncer in transaction mode, unlike a session lock). */
#define CK__PG_MIGRATION_LOCK "7163946503053340001"

/** The schema version this build creates and understands. */
int ck__pg_schema_current(void);

/** Sends the `n` parameterless statements `sql` as one pipeline (one round trip) and reads
 * their results. Returns CK_OK when every statement succeeded, with the last statement's
 * result in `*last` when `last` is not NULL (the caller PQclears it); otherwise CK_ESTORE with
 * the first error in `errbuf` (when not NULL) prefixed by `what`. The connection leaves
 * pipeline mode either way; a failed explicit transaction is left for the caller to roll back. */
int ck__pg_pipeline(PGconn *c, const char *const *sql, int n, PGresult **last, const char *what,
                    char *errbuf, size_t errlen);

/** Brings the database behind `c` (outside any transaction) to the current schema version:
 * takes the migration advisory lock inside a transaction, reads chatkit_schema_version (absent
 * means version 0), refuses a newer version and applies the missing migrations, then commits.
 * An up-to-date database costs three round trips and runs no DDL, so a user with only DML
 * rights can open it. Returns CK_OK or
 * CK_ESTORE with a message in `errbuf` (when not NULL); on failure nothing was changed. */
int ck__pg_migrate(PGconn *c, char *errbuf, size_t errlen);

/* The length of a libpq message's first line, at most 1000: libpq messages end with a newline
 * and sometimes run over several lines, while our error messages are one line. For "%.*s". */
int ck__pg_first_line_len(const char *msg);

#endif
