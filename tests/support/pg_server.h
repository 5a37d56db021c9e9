/* A throw-away PostgreSQL server for tests.
 *
 * ck_pg_server_start runs initdb into a fresh mkdtemp directory under /tmp and starts the
 * server with pg_ctl on a free loopback port (its Unix socket in the same directory, fsync
 * off, trust authentication for the superuser "chatkit"); ck_pg_server_stop stops it and
 * removes the directory. Nothing outside that directory is touched and no system service is
 * used.
 *
 * Root: initdb and postgres refuse to run as root, and CI runs the tests as root. When the
 * test runs as root, the helper gives the directory to an unprivileged account ("postgres",
 * which the Debian postgresql package creates, else "nobody") and runs initdb and pg_ctl in a
 * forked child that drops to that account with setgid/setuid before exec; the test itself
 * stays root and connects over TCP. No sudo, su or runuser binary is needed.
 *
 * A watchdog process stops the server and removes the directory should the test die without
 * calling ck_pg_server_stop (crash, sanitizer abort, SIGKILL on a ctest timeout).
 *
 * The binaries are looked up in $CK_PG_BINDIR, then /usr/lib/postgresql/<version>/bin (newest
 * first), then $PATH. When they are missing, start returns CK_PG_SERVER_SKIP so the test can
 * report a skip instead of passing silently.
 */
#ifndef CK_TEST_PG_SERVER_H
#define CK_TEST_PG_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ck_pg_server_start's result when the PostgreSQL binaries are not installed. */
#define CK_PG_SERVER_SKIP 1

typedef struct ck_pg_server {
  char bindir[256];   /* where initdb and pg_ctl are */
  char dir[64];       /* the mkdtemp directory: data/, the socket, the logs */
  char data[96];      /* dir/data */
  char log[96];       /* dir/server.log */
  int port;           /* the TCP port on 127.0.0.1 */
  bool drop;          /* run the binaries as uid/gid (the test runs as root) */
  uid_t uid;          /* the account the binaries run as when `drop` */
  gid_t gid;          /* its group */
  bool running;       /* the server was started and not stopped */
  int watch_fd;       /* write end of the watchdog's pipe (see pg_server.c) */
  pid_t watch_pid;    /* the watchdog process, 0 when none */
  char conninfo[160]; /* libpq key=value string for the "postgres" database */
  char url[160];      /* the same as a postgresql:// URL */
} ck_pg_server;

/** Creates and starts a server. Returns 0 on success, CK_PG_SERVER_SKIP when the binaries are
 * missing, or -1 on failure; `err` then says why (including the end of the server's log). On
 * failure everything created so far is removed. */
int ck_pg_server_start(ck_pg_server *s, char *err, size_t errlen);

/** Runs `pg_ctl ACTION -m fast` on the running server's directory: "restart" drops every
 * client connection as a crash or failover would; "stop" and "start" take it down and bring it
 * back on the same port. Returns 0 or -1 with a message in `err`. */
int ck_pg_server_ctl(ck_pg_server *s, const char *action, char *err, size_t errlen);

/** Stops the server when running and removes its directory. NULL is a no-op; calling it twice
 * is harmless. */
void ck_pg_server_stop(ck_pg_server *s);

#endif
