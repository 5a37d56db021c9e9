/* Internal: the SQLite store's schema and its migrations. */
#ifndef CK_STORE_SQLITE_SCHEMA_H
#define CK_STORE_SQLITE_SCHEMA_H

#include <stddef.h>

#include <sqlite3.h>

/** The schema version this build creates and understands. */
int ck__sqlite_schema_current(void);

/** Brings the database behind `db` (the writer connection, outside any transaction) to the
 * current schema version: reads schema_version, refuses a newer version, and applies the
 * missing migrations in order inside one BEGIN IMMEDIATE transaction. Returns CK_OK or
 * CK_ESTORE with a message in `errbuf` (when not NULL). */
int ck__sqlite_migrate(sqlite3 *db, const char *path, char *errbuf, size_t errlen);

#endif
