/* Child processes and temporary directories for the integration tests.
 *
 * The integration tests run the real chatkit-server binary. Every child started here is
 * registered, so a test that fails half-way (cmocka jumps out of it) still gets its children
 * killed and reaped by ck_proc_kill_all() in the teardown; the children also get SIGKILL from
 * the kernel if the test program itself dies (PR_SET_PDEATHSIG), so nothing outlives a test. */
#ifndef CK_TEST_PROC_H
#define CK_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The binary under test: the one of the build tree the test was built in (so the ASan build
 * runs the ASan binary). */
#define CK_SERVER_BIN CK_BINARY_DIR "/chatkit-server"

typedef struct ck_proc {
  pid_t pid;          /* 0 once reaped */
  int out_fd;         /* read end of the child's stdout, -1 when closed */
  int exit_code;      /* after a wait: the exit status, or 128 + the signal; -1 before */
  int port;           /* from the "listening on" line, or -1 */
  char err_path[256]; /* the child's stderr is captured in this file */
  char out_line[512]; /* the first stdout line (the "listening on" line) */
} ck_proc;

/** Creates a fresh private directory and writes its path to `out`. Returns 0 or -1. */
int ck_tmpdir_make(char *out, size_t cap);

/** Removes `path` and everything below it. NULL or "" is a no-op. */
void ck_tmpdir_remove(const char *path);

/** Writes `text` to `dir`/`name`. Returns 0 or -1. */
int ck_write_file(const char *dir, const char *name, const char *text);

/** Starts `argv` (argv[0] is the program, the list ends with NULL) with its working directory
 * `cwd` (NULL: inherited) and an environment made of this process's environment without any
 * CHATKIT_*, PORT or OPENAI_* variable (so the developer's shell cannot change a result),
 * plus `env` ("KEY=VALUE" strings, NULL-terminated, may be NULL). The child's stdout is a
 * pipe (p->out_fd), its stderr a temporary file. Returns 0 or -1. */
int ck_proc_spawn(ck_proc *p, const char *const *argv, const char *cwd, const char *const *env);

/** Reads the child's stdout up to the first newline and parses "listening on
 * http://HOST:PORT" into p->port. Returns 0, or -1 on a timeout, EOF or another line. */
int ck_proc_wait_listening(ck_proc *p, int timeout_ms);

/** Starts the server binary with "--host 127.0.0.1 --port 0 --log-level warn" followed by
 * `args` (NULL-terminated, may be NULL) in `cwd`, and waits until it listens. Returns the
 * port, or -1 (the child is killed and its stderr printed). */
int ck_server_start(ck_proc *p, const char *cwd, const char *const *args, const char *const *env);

/** Waits up to `timeout_ms` for the child to exit. Returns its exit code (128 + signal when
 * killed), or -1 if it is still running. Its stdout and stderr stay readable until
 * ck_proc_kill releases them, which the caller must call (a stack ck_proc must be released
 * before it goes out of scope, since the registry points at it). */
int ck_proc_wait(ck_proc *p, int timeout_ms);

/** Sends SIGTERM and waits up to `timeout_ms`. Returns the exit code; when the child does
 * not exit in time it is killed and -1 is returned. A nonzero result prints the child's
 * stderr, which is where sanitizer reports go. Afterwards the child is released as by
 * ck_proc_kill, so its stderr is no longer readable. */
int ck_proc_stop(ck_proc *p, int timeout_ms);

/** Reads the child's remaining stdout until EOF (or the timeout) into `buf` (NUL-terminated).
 * Returns the number of bytes read. */
size_t ck_proc_read_stdout(ck_proc *p, char *buf, size_t cap, int timeout_ms);

/** The child's stderr so far, NUL-terminated (caller frees), or NULL. */
char *ck_proc_stderr(const ck_proc *p);

/** Kills the child if it still runs, reaps it, closes its pipe and removes its stderr
 * file. Safe to call twice. */
void ck_proc_kill(ck_proc *p);

/** ck_proc_kill on every child started by ck_proc_spawn that is still registered. */
void ck_proc_kill_all(void);

/** Milliseconds on the monotonic clock. */
long long ck_now_ms(void);

/** Sleeps `ms` milliseconds. */
void ck_sleep_ms(int ms);

#endif
