/* The MCP stdio transport: the server is our child process; messages are lines of JSON on its
 * stdin and stdout.
 *
 * A reader thread per child reads its stdout and hands each response to the request waiting
 * for that id (callers wait on a condition variable with a deadline), so calls from several
 * threads share the child without holding each other up. Requests and notifications from the
 * server are answered by the reader itself. Writes go through a non-blocking pipe with a
 * deadline, so a child that stops reading cannot block a caller forever, and SIGPIPE is
 * blocked around them, so a child that died cannot kill us.
 *
 * The child gets its own process group: stopping it signals the group, which also stops the
 * helpers a launcher script (sh, npx, uvx) may have started. */
#include "agent/mcp_internal.h"
#include "util/errbuf.h"

#include <chatkit/error.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* How long a child gets to exit after its stdin closed, and again after SIGTERM. */
#define EXIT_GRACE_MS 1000
/* How long the reader looks for the exit status of a child whose stdout closed. */
#define REAP_GRACE_MS 200

typedef struct waiter {
  int64_t id;
  char *text; /* the response line (heap), once it arrived */
  size_t len;
  struct waiter *next;
} waiter;

struct ck__mcp_stdio {
  char **argv; /* copies */
  char **envp; /* this process's environment with the extra variables */
  char *cwd;
  /* The connection. pid, reaped, status, eof, gen and waiters are guarded by m->mu; in_fd by
   * wmu; out_fd belongs to the reader thread. */
  pid_t pid; /* 0: no child */
  bool reaped;
  int status;    /* the wait status once reaped */
  bool eof;      /* the reader stopped: no response will come */
  char why[160]; /* why the reader stopped */
  uint64_t gen;  /* bumped for every connection, so a waiter notices a respawn */
  int in_fd, out_fd;
  pthread_t reader;
  bool have_reader;
  atomic_bool stop;
  pthread_mutex_t wmu;
  pthread_cond_t cv; /* with m->mu: a response arrived or the reader stopped */
  waiter *waiters;
};

/* ---- Small helpers ---- */

static void free_strv(char **v) {
  for (size_t i = 0; v != NULL && v[i] != NULL; i++)
    free(v[i]);
  free(v);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A deadline `ms` from now on the monotonic clock, for pthread_cond_timedwait. */
static struct timespec deadline_in(int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

/* Reaps the child if it exited. Called with m->mu held; never blocks. */
static bool try_reap(ck__mcp_stdio *st) {
  if (st->pid == 0 || st->reaped)
    return true;
  int status = 0;
  pid_t r = waitpid(st->pid, &status, WNOHANG);
  if (r == st->pid || (r < 0 && errno == ECHILD)) {
    st->reaped = true;
    st->status = r == st->pid ? status : 0;
  }
  return st->reaped;
}

/* Waits up to `ms` (negative: without limit) for the child to be reaped. */
static bool wait_exit(ck_mcp *m, int ms) {
  ck__mcp_stdio *st = m->stdio;
  for (int waited = 0;; waited += 10) {
    pthread_mutex_lock(&m->mu);
    bool done = try_reap(st);
    pthread_mutex_unlock(&m->mu);
    if (done)
      return true;
    if (ms >= 0 && waited >= ms)
      return false;
    sleep_ms(10);
  }
}

/* Signals the child's process group, unless the child was reaped already (its id could then
 * belong to somebody else). */
static void signal_child(ck_mcp *m, int sig) {
  ck__mcp_stdio *st = m->stdio;
  pthread_mutex_lock(&m->mu);
  if (st->pid > 0 && !try_reap(st) && kill(-st->pid, sig) != 0)
    kill(st->pid, sig);
  pthread_mutex_unlock(&m->mu);
}

/* "exited with status 3", "was killed by signal 9", or "closed its output". */
static void describe_exit(ck__mcp_stdio *st, char *buf, size_t cap) {
  if (buf == NULL || cap == 0)
    return;
  if (st->why[0] != '\0')
    snprintf(buf, cap, "%s", st->why);
  else if (st->reaped && WIFEXITED(st->status))
    snprintf(buf, cap, "the MCP server exited with status %d", WEXITSTATUS(st->status));
  else if (st->reaped && WIFSIGNALED(st->status))
    snprintf(buf, cap, "the MCP server was killed by signal %d", WTERMSIG(st->status));
  else
    snprintf(buf, cap, "the MCP server closed its output");
}

/* ---- Writing ---- */

/* Writes all of `p` before the deadline. SIGPIPE is blocked for this thread meanwhile, and one
 * raised by this write is taken off the pending set, so a dead reader gives EPIPE instead of
 * killing the process. */
static int write_all(ck__mcp_stdio *st, const char *p, size_t n, int64_t deadline) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  int rc = CK_OK;
  bool epipe = false;
  while (n > 0) {
    if (st->in_fd < 0) {
      rc = CK_EIO;
      break;
    }
    ssize_t w = write(st->in_fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t left = deadline - ck__mcp_now_ms();
      struct pollfd pfd = {st->in_fd, POLLOUT, 0};
      if (left > 0 && poll(&pfd, 1, (int)left) >= 0)
        continue;
    }
    epipe = w < 0 && errno == EPIPE;
    rc = CK_EIO;
    break;
  }
  if (epipe) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* Sends one message: its text and a newline, as one write sequence under the write lock. */
static int send_line(ck_mcp *m, const char *text, size_t len, char *err, size_t errlen) {
  ck__mcp_stdio *st = m->stdio;
  int64_t deadline = ck__mcp_now_ms() + m->timeout_ms;
  pthread_mutex_lock(&st->wmu);
  int rc = write_all(st, text, len, deadline);
  if (rc == CK_OK)
    rc = write_all(st, "\n", 1, deadline);
  pthread_mutex_unlock(&st->wmu);
  if (rc != CK_OK) {
    ck__errs(err, errlen, "cannot write to the MCP server (it stopped reading or exited)");
    ck__mcp_lost(m);
  }
  return rc;
}

static int stdio_send(ck_mcp *m, const char *text, size_t len, char *err, size_t errlen) {
  return send_line(m, text, len, err, errlen);
}

/* ---- Reading ---- */

/* Hands one message to its waiter, or to the core. */
static void dispatch(ck_mcp *m, ck_arena *a, const char *line, size_t len, const ck_json *msg) {
  ck__mcp_stdio *st = m->stdio;
  int64_t id = 0;
  if (ck_json_object_get(msg, "method") == NULL && ck__mcp_response_id(msg, &id)) {
    pthread_mutex_lock(&m->mu);
    for (waiter *w = st->waiters; w != NULL; w = w->next) {
      if (w->id == id && w->text == NULL) {
        w->text = strndup(line, len);
        w->len = len;
        pthread_cond_broadcast(&st->cv);
        break;
      }
    }
    pthread_mutex_unlock(&m->mu);
    return;
  }
  ck__mcp_incoming(m, msg);
}

static void handle_line(ck_mcp *m, ck_arena *a, char *line, size_t len) {
  while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
    len--;
  if (len == 0)
    return;
  ck_json *msg = NULL;
  /* A line that is not JSON is a server bug (its logs belong on stderr); skipping it keeps
   * the conversation going. */
  if (ck_json_parse(a, line, len, 0, &msg, NULL) != CK_OK)
    return;
  if (ck_json_is_array(msg)) { /* a batch, from servers of the 2025-03-26 revision */
    for (size_t i = 0; i < ck_json_array_size(msg); i++) {
      ck_json *one = ck_json_array_get(msg, i);
      char *text = ck_json_dumps(a, one, &len);
      if (text != NULL)
        dispatch(m, a, text, len, one);
    }
  } else if (ck_json_is_object(msg)) {
    dispatch(m, a, line, len, msg);
  }
  ck_arena_reset(a);
}

static void *reader_main(void *arg) {
  ck_mcp *m = arg;
  ck__mcp_stdio *st = m->stdio;
  ck_arena *a = ck_arena_new(8192);
  ck_buf line;
  ck_buf_init(&line, CK_MCP_MAX_MESSAGE);
  char why[160] = "";
  char chunk[16384];
  while (a != NULL && !atomic_load(&st->stop)) {
    struct pollfd pfd = {st->out_fd, POLLIN, 0};
    int pr = poll(&pfd, 1, 100); /* the timeout lets shut() stop us even if a grandchild
                                    keeps the pipe open */
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0)
      continue;
    ssize_t n = pr > 0 ? read(st->out_fd, chunk, sizeof(chunk)) : -1;
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      break;
    size_t start = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
      if (chunk[i] != '\n')
        continue;
      if (ck_buf_append(&line, chunk + start, i - start) != CK_OK) {
        snprintf(why, sizeof(why), "the MCP server sent a message over %zu bytes",
                 (size_t)CK_MCP_MAX_MESSAGE);
        goto out;
      }
      handle_line(m, a, line.data ? line.data : "", line.len);
      ck_buf_reset(&line);
      start = i + 1;
    }
    if (ck_buf_append(&line, chunk + start, (size_t)n - start) != CK_OK) {
      snprintf(why, sizeof(why), "the MCP server sent a message over %zu bytes",
               (size_t)CK_MCP_MAX_MESSAGE);
      goto out;
    }
  }
out:
  if (a == NULL)
    snprintf(why, sizeof(why), "out of memory reading the MCP server");
  if (!atomic_load(&st->stop) && why[0] == '\0')
    wait_exit(m, REAP_GRACE_MS); /* most servers exit as their stdout closes */
  pthread_mutex_lock(&m->mu);
  st->eof = true;
  snprintf(st->why, sizeof(st->why), "%s", why);
  m->ready = false;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&m->mu);
  ck_buf_free(&line);
  ck_arena_free(a);
  return NULL;
}

/* ---- Requests ---- */

static int stdio_rpc(ck_mcp *m, ck_arena *a, int64_t id, const char *text, size_t len,
                     ck_json **response, char *err, size_t errlen) {
  ck__mcp_stdio *st = m->stdio;
  waiter w = {id, NULL, 0, NULL};
  pthread_mutex_lock(&m->mu);
  if (st->pid == 0 || st->eof) {
    describe_exit(st, err, errlen);
    pthread_mutex_unlock(&m->mu);
    return CK_EIO;
  }
  uint64_t gen = st->gen;
  w.next = st->waiters;
  st->waiters = &w;
  pthread_mutex_unlock(&m->mu);

  int rc = send_line(m, text, len, err, errlen);
  struct timespec deadline = deadline_in(m->timeout_ms);
  bool timed_out = false;
  pthread_mutex_lock(&m->mu);
  while (rc == CK_OK && w.text == NULL && !st->eof && st->gen == gen && !timed_out)
    timed_out = pthread_cond_timedwait(&st->cv, &m->mu, &deadline) == ETIMEDOUT;
  for (waiter **p = &st->waiters; *p != NULL; p = &(*p)->next) {
    if (*p == &w) {
      *p = w.next;
      break;
    }
  }
  if (rc != CK_OK) {
    /* A write fails when the child is gone: give the reader a moment to see it exit, so the
     * error says how it ended rather than just that the pipe broke. */
    struct timespec grace = deadline_in(REAP_GRACE_MS * 2);
    while (!st->eof && st->gen == gen &&
           pthread_cond_timedwait(&st->cv, &m->mu, &grace) != ETIMEDOUT) {
    }
    if (st->eof && st->gen == gen)
      describe_exit(st, err, errlen);
  } else if (w.text == NULL) {
    rc = CK_EIO;
    if (st->eof || st->gen != gen)
      describe_exit(st, err, errlen);
  }
  pthread_mutex_unlock(&m->mu);

  if (w.text != NULL) {
    rc = ck_json_parse(a, w.text, w.len, 0, response, NULL);
    free(w.text);
    return rc == CK_OK ? CK_OK : CK_EIO;
  }
  if (timed_out) {
    char msg[160];
    snprintf(msg, sizeof(msg), "no answer from the MCP server within %d ms", m->timeout_ms);
    ck__errs(err, errlen, msg);
    /* Tell the server to stop working on it; its late answer is dropped by the reader. */
    char *note = ck_arena_printf(a,
                                 "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                                 "\"params\":{\"requestId\":%lld,\"reason\":\"timeout\"}}",
                                 (long long)id);
    if (note != NULL)
      send_line(m, note, strlen(note), NULL, 0);
  }
  return rc;
}

/* ---- Starting and stopping ---- */

static int stdio_open(ck_mcp *m, char *err, size_t errlen) {
  ck__mcp_stdio *st = m->stdio;
  int inp[2] = {-1, -1}, outp[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  bool have_fa = false, have_attr = false;
  int rc = CK_EIO;
  char msg[256];
  if (pipe2(inp, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0) {
    snprintf(msg, sizeof(msg), "cannot create pipes: %s", strerror(errno));
    goto done;
  }
  have_fa = posix_spawn_file_actions_init(&fa) == 0;
  have_attr = have_fa && posix_spawnattr_init(&attr) == 0;
  if (!have_attr) {
    snprintf(msg, sizeof(msg), "out of memory");
    goto done;
  }
  posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
  posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
  if (st->cwd != NULL)
    posix_spawn_file_actions_addchdir_np(&fa, st->cwd);
  /* The child starts with default signal handling and an empty mask whatever ours are (the
   * server binary ignores SIGPIPE, and callers may block signals), in a group of its own. */
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = 0;
  int serr = posix_spawnp(&pid, st->argv[0], &fa, &attr, st->argv, st->envp);
  if (serr != 0) {
    snprintf(msg, sizeof(msg), "cannot start the MCP server %.100s: %s", st->argv[0],
             strerror(serr));
    goto done;
  }
  close(inp[0]);
  close(outp[1]);
  inp[0] = outp[1] = -1;
  fcntl(inp[1], F_SETFL, fcntl(inp[1], F_GETFL) | O_NONBLOCK);
  pthread_mutex_lock(&m->mu);
  st->pid = pid;
  st->reaped = false;
  st->status = 0;
  st->eof = false;
  st->why[0] = '\0';
  st->gen++;
  pthread_mutex_unlock(&m->mu);
  pthread_mutex_lock(&st->wmu);
  st->in_fd = inp[1];
  pthread_mutex_unlock(&st->wmu);
  st->out_fd = outp[0];
  inp[1] = outp[0] = -1;
  atomic_store(&st->stop, false);
  if (pthread_create(&st->reader, NULL, reader_main, m) != 0) {
    snprintf(msg, sizeof(msg), "cannot start a reader thread");
    pthread_mutex_lock(&m->mu);
    st->eof = true;
    pthread_mutex_unlock(&m->mu);
    goto done; /* the caller's shut() stops the child */
  }
  st->have_reader = true;
  rc = CK_OK;
done:
  if (rc != CK_OK)
    ck__errs(err, errlen, msg);
  for (int i = 0; i < 2; i++) {
    if (inp[i] >= 0)
      close(inp[i]);
    if (outp[i] >= 0)
      close(outp[i]);
  }
  if (have_fa)
    posix_spawn_file_actions_destroy(&fa);
  if (have_attr)
    posix_spawnattr_destroy(&attr);
  return rc;
}

static void stdio_shut(ck_mcp *m) {
  ck__mcp_stdio *st = m->stdio;
  if (st == NULL)
    return;
  /* Closing stdin is the polite way to ask a stdio server to exit (the MCP lifecycle). */
  pthread_mutex_lock(&st->wmu);
  if (st->in_fd >= 0)
    close(st->in_fd);
  st->in_fd = -1;
  pthread_mutex_unlock(&st->wmu);
  if (st->pid > 0 && !wait_exit(m, EXIT_GRACE_MS)) {
    signal_child(m, SIGTERM);
    if (!wait_exit(m, EXIT_GRACE_MS)) {
      signal_child(m, SIGKILL);
      wait_exit(m, -1);
    }
  }
  if (st->have_reader) {
    atomic_store(&st->stop, true);
    pthread_join(st->reader, NULL);
    st->have_reader = false;
  }
  if (st->out_fd >= 0)
    close(st->out_fd);
  st->out_fd = -1;
  pthread_mutex_lock(&m->mu);
  st->pid = 0;
  st->eof = true;
  st->gen++;
  m->ready = false;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&m->mu);
}

static void stdio_destroy(ck_mcp *m) {
  ck__mcp_stdio *st = m->stdio;
  if (st == NULL)
    return;
  free_strv(st->argv);
  free_strv(st->envp);
  free(st->cwd);
  pthread_mutex_destroy(&st->wmu);
  pthread_cond_destroy(&st->cv);
  free(st);
  m->stdio = NULL;
}

/* The child's environment: ours, minus the names `extra` sets, plus `extra`. */
static char **merge_env(const char *const *extra) {
  size_t n = 0, k = 0;
  while (environ != NULL && environ[n] != NULL)
    n++;
  while (extra != NULL && extra[k] != NULL)
    k++;
  char **out = calloc(n + k + 1, sizeof(*out));
  size_t j = 0;
  for (size_t i = 0; out != NULL && i < n; i++) {
    size_t name = strcspn(environ[i], "=");
    bool replaced = false;
    for (size_t e = 0; e < k && !replaced; e++)
      replaced = strncmp(extra[e], environ[i], name) == 0 && extra[e][name] == '=';
    if (!replaced && (out[j++] = strdup(environ[i])) == NULL)
      goto fail;
  }
  for (size_t e = 0; out != NULL && e < k; e++)
    if (strchr(extra[e], '=') != NULL && (out[j++] = strdup(extra[e])) == NULL)
      goto fail;
  return out;
fail:
  free_strv(out);
  return NULL;
}

int ck__mcp_stdio_new(ck_mcp *m, const char *const *argv, const char *const *env, const char *cwd) {
  ck__mcp_stdio *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return CK_ENOMEM;
  m->stdio = st;
  st->in_fd = st->out_fd = -1;
  atomic_init(&st->stop, false);
  pthread_mutex_init(&st->wmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&st->cv, &ca);
  pthread_condattr_destroy(&ca);
  st->eof = true;
  size_t n = 0;
  while (argv[n] != NULL)
    n++;
  st->argv = calloc(n + 1, sizeof(*st->argv));
  for (size_t i = 0; st->argv != NULL && i < n; i++)
    if ((st->argv[i] = strdup(argv[i])) == NULL)
      return CK_ENOMEM;
  st->envp = merge_env(env);
  st->cwd = cwd ? strdup(cwd) : NULL;
  if (st->argv == NULL || st->envp == NULL || (cwd != NULL && st->cwd == NULL))
    return CK_ENOMEM;
  return CK_OK;
}

const ck__mcp_ops ck__mcp_stdio_ops = {stdio_open, stdio_shut, stdio_rpc, stdio_send,
                                       stdio_destroy};
