/* A throw-away PostgreSQL server for tests (see pg_server.h). */
#include "support/pg_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long pg_ctl waits for the server to start or stop, in seconds. */
#define PG_CTL_TIMEOUT "60"

/* How many ports start tries when the one it picked was taken meanwhile. */
#define START_ATTEMPTS 3

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Appends the last bytes of file `path` to `err`, so a failed start says why. */
static void append_tail(char *err, size_t errlen, const char *path) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL || err == NULL)
    goto done;
  char tail[1024];
  if (fseek(fp, 0, SEEK_END) == 0) {
    long size = ftell(fp);
    fseek(fp, size > (long)sizeof(tail) - 1 ? size - (long)sizeof(tail) + 1 : 0, SEEK_SET);
  }
  size_t n = fread(tail, 1, sizeof(tail) - 1, fp);
  tail[n] = '\0';
  size_t used = strlen(err);
  if (used < errlen)
    snprintf(err + used, errlen - used, "\n--- %s ---\n%s", path, tail);
done:
  if (fp != NULL)
    fclose(fp);
}

static bool executable(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return access(path, X_OK) == 0;
}

static bool has_binaries(const char *dir) {
  return executable(dir, "initdb") && executable(dir, "pg_ctl") && executable(dir, "postgres");
}

/* Finds the directory holding initdb, pg_ctl and postgres (see pg_server.h for the order). */
static bool find_bindir(ck_pg_server *s) {
  const char *env = getenv("CK_PG_BINDIR");
  if (env != NULL && env[0] != '\0') {
    snprintf(s->bindir, sizeof(s->bindir), "%s", env);
    return has_binaries(s->bindir);
  }
  for (int v = 17; v >= 12; v--) {
    snprintf(s->bindir, sizeof(s->bindir), "/usr/lib/postgresql/%d/bin", v);
    if (has_binaries(s->bindir))
      return true;
  }
  const char *path = getenv("PATH");
  while (path != NULL && *path != '\0') {
    size_t n = strcspn(path, ":");
    if (n > 0 && n < sizeof(s->bindir)) {
      memcpy(s->bindir, path, n);
      s->bindir[n] = '\0';
      if (has_binaries(s->bindir))
        return true;
    }
    path += n + (path[n] == ':');
  }
  s->bindir[0] = '\0';
  return false;
}

/* Picks the account the binaries run as when the test runs as root. */
static int pick_account(ck_pg_server *s, char *err, size_t errlen) {
  s->drop = geteuid() == 0;
  if (!s->drop)
    return 0;
  const struct passwd *pw = getpwnam("postgres");
  if (pw == NULL)
    pw = getpwnam("nobody");
  if (pw == NULL || pw->pw_uid == 0) {
    set_err(err, errlen,
            "running as root and neither a \"postgres\" nor a \"nobody\" account exists to run "
            "initdb as (initdb refuses root)");
    return -1;
  }
  s->uid = pw->pw_uid;
  s->gid = pw->pw_gid;
  return 0;
}

/* Runs bindir/argv[0] with the arguments in argv (NULL-terminated) in the server directory,
 * as the unprivileged account when `drop`, with its output appended to `out`. Returns 0 when
 * it exited with status 0. */
static int run_tool(const ck_pg_server *s, char *const argv[], const char *out) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", s->bindir, argv[0]);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    /* The child: only async-signal-safe calls until exec. Privileges go first, so the log
     * file is created by (and writable for) the account the server runs as. */
    if (s->drop && (setgroups(0, NULL) != 0 || setgid(s->gid) != 0 || setuid(s->uid) != 0))
      _exit(126);
    if (chdir(s->dir) != 0)
      _exit(126);
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execv(path, argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return -1;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A port on 127.0.0.1 that was free a moment ago. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  int port = -1;
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

/* Appends the test settings to postgresql.conf; a later line wins, so a retry with another
 * port just appends again. Durability is pointless for a server that lives for one test run,
 * hence fsync and friends off. */
static int write_conf(const ck_pg_server *s) {
  char path[128];
  snprintf(path, sizeof(path), "%s/postgresql.conf", s->data);
  FILE *fp = fopen(path, "a");
  if (fp == NULL)
    return -1;
  fprintf(fp,
          "\n# ck_pg_server\nport = %d\nlisten_addresses = '127.0.0.1'\n"
          "unix_socket_directories = '%s'\nfsync = off\nsynchronous_commit = off\n"
          "full_page_writes = off\nmax_connections = 100\nshared_buffers = 32MB\n",
          s->port, s->dir);
  return fclose(fp) == 0 ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static int pg_ctl(const ck_pg_server *s, const char *action) {
  char *const argv[] = {"pg_ctl",       "-D", (char *)s->data, "-l", (char *)s->log, "-w", "-t",
                        PG_CTL_TIMEOUT, "-m", "fast",          "-s", (char *)action, NULL};
  return run_tool(s, argv, s->log);
}

/* Stops the server and removes its directory (the shared end of stop and the watchdog). */
static void teardown(ck_pg_server *s) {
  if (s->running) {
    /* A fast stop waits for the server to exit; should it fail, an immediate stop still
     * leaves nothing running before the directory goes. */
    if (pg_ctl(s, "stop") != 0) {
      char *const argv[] = {"pg_ctl", "-D", s->data, "-w", "-m", "immediate", "-s", "stop", NULL};
      run_tool(s, argv, s->log);
    }
    s->running = false;
  }
  if (s->dir[0] != '\0') {
    nftw(s->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = '\0';
  }
}

/* Forks a watchdog that cleans up when the test process dies without calling stop (a crash,
 * an abort from a sanitizer, SIGKILL from a ctest timeout, SIGPIPE from `| head`), so no
 * server is left running and no directory left behind. It blocks reading a pipe whose only
 * write end the test holds (close-on-exec, so neither pg_ctl nor the server inherits it); the
 * read returns end of file when the test closes it or exits, however it exits. The test is
 * still single-threaded here, so the child may use ordinary library calls. */
static int start_watchdog(ck_pg_server *s) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    /* Ctrl-C and kill reach the whole process group; the watchdog outlives them to clean up. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    close(fds[1]);
    char byte;
    while (read(fds[0], &byte, 1) != 0 && errno == EINTR) {
    }
    /* The test may have stopped the server itself; its directory is gone then. */
    struct stat st;
    if (stat(s->dir, &st) == 0)
      teardown(s);
    _exit(0);
  }
  close(fds[0]);
  s->watch_fd = fds[1];
  s->watch_pid = pid;
  return 0;
}

int ck_pg_server_start(ck_pg_server *s, char *err, size_t errlen) {
  char initlog[96];
  memset(s, 0, sizeof(*s));
  if (!find_bindir(s)) {
    set_err(err, errlen,
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $CK_PG_BINDIR, "
            "/usr/lib/postgresql/*/bin or $PATH; install the \"postgresql\" package "
            "(scripts/deps.sh --test)");
    return CK_PG_SERVER_SKIP;
  }
  if (pick_account(s, err, errlen) != 0)
    return -1;
  snprintf(s->dir, sizeof(s->dir), "/tmp/ck-pg-XXXXXX");
  if (mkdtemp(s->dir) == NULL) {
    set_err(err, errlen, "mkdtemp: %s", strerror(errno));
    s->dir[0] = '\0';
    return -1;
  }
  snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
  snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
  snprintf(initlog, sizeof(initlog), "%s/initdb.log", s->dir);
  if (s->drop && chown(s->dir, s->uid, s->gid) != 0) {
    set_err(err, errlen, "chown %s: %s", s->dir, strerror(errno));
    goto fail;
  }
  /* --no-locale and UTF8 make the cluster independent of the machine's locales; trust
   * authentication is acceptable for a loopback-only server that lives for one test run. */
  char *const initdb[] = {"initdb", "-D", s->data, "-U",          "chatkit",   "-A",
                          "trust",  "-E", "UTF8",  "--no-locale", "--no-sync", "--no-instructions",
                          NULL};
  if (run_tool(s, initdb, initlog) != 0) {
    set_err(err, errlen, "initdb failed");
    append_tail(err, errlen, initlog);
    goto fail;
  }
  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    s->port = free_port();
    if (s->port < 0 || write_conf(s) != 0) {
      set_err(err, errlen, "cannot pick a port or write postgresql.conf: %s", strerror(errno));
      goto fail;
    }
    if (pg_ctl(s, "start") == 0) {
      s->running = true;
      break;
    }
  }
  if (!s->running) {
    set_err(err, errlen, "pg_ctl start failed");
    append_tail(err, errlen, s->log);
    goto fail;
  }
  if (start_watchdog(s) != 0) {
    set_err(err, errlen, "cannot start the clean-up watchdog: %s", strerror(errno));
    goto fail;
  }
  snprintf(s->conninfo, sizeof(s->conninfo), "host=127.0.0.1 port=%d user=chatkit dbname=postgres",
           s->port);
  snprintf(s->url, sizeof(s->url), "postgresql://chatkit@127.0.0.1:%d/postgres", s->port);
  return 0;
fail:
  ck_pg_server_stop(s);
  return -1;
}

int ck_pg_server_ctl(ck_pg_server *s, const char *action, char *err, size_t errlen) {
  if (pg_ctl(s, action) != 0) {
    set_err(err, errlen, "pg_ctl %s failed", action);
    append_tail(err, errlen, s->log);
    return -1;
  }
  s->running = strcmp(action, "stop") != 0;
  return 0;
}

void ck_pg_server_stop(ck_pg_server *s) {
  if (s == NULL)
    return;
  teardown(s);
  if (s->watch_pid > 0) {
    close(s->watch_fd);
    while (waitpid(s->watch_pid, NULL, 0) < 0 && errno == EINTR) {
    }
    s->watch_pid = 0;
  }
}
