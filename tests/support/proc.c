/* Child processes and temporary directories for the integration tests (see proc.h). */
#include "support/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_CHILDREN 16

/* Children still registered, so a failed test can kill them all from its teardown. */
static ck_proc *children[MAX_CHILDREN];

long long ck_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ck_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int ck_tmpdir_make(char *out, size_t cap) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || *base == '\0')
    base = "/tmp";
  int n = snprintf(out, cap, "%s/ck-integ-XXXXXX", base);
  if (n < 0 || (size_t)n >= cap)
    return -1;
  return mkdtemp(out) != NULL ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void ck_tmpdir_remove(const char *path) {
  if (path == NULL || *path == '\0')
    return;
  nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int ck_write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof(path))
    return -1;
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  size_t len = strlen(text);
  int rc = fwrite(text, 1, len, f) == len ? 0 : -1;
  if (fclose(f) != 0)
    rc = -1;
  return rc;
}

/* Variables that configure the server: a test must see only the ones it sets itself. */
static bool filtered(const char *kv) {
  return strncmp(kv, "CHATKIT_", 8) == 0 || strncmp(kv, "PORT=", 5) == 0 ||
         strncmp(kv, "OPENAI_", 7) == 0;
}

static void registry_add(ck_proc *p) {
  for (size_t i = 0; i < MAX_CHILDREN; i++) {
    if (children[i] == NULL) {
      children[i] = p;
      return;
    }
  }
}

static void registry_remove(ck_proc *p) {
  for (size_t i = 0; i < MAX_CHILDREN; i++)
    if (children[i] == p)
      children[i] = NULL;
}

int ck_proc_spawn(ck_proc *p, const char *const *argv, const char *cwd, const char *const *env) {
  memset(p, 0, sizeof(*p));
  p->out_fd = -1;
  p->exit_code = -1;
  p->port = -1;
  /* Everything the child needs is prepared before fork: after it only async-signal-safe
   * calls are allowed, since the test program may have other threads. */
  size_t n = 0, extra = 0;
  while (environ[n] != NULL)
    n++;
  while (env != NULL && env[extra] != NULL)
    extra++;
  char **envp = calloc(n + extra + 1, sizeof(char *));
  if (envp == NULL)
    return -1;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!filtered(environ[i]))
      envp[k++] = environ[i];
  for (size_t i = 0; i < extra; i++)
    envp[k++] = (char *)env[i];
  envp[k] = NULL;

  const char *base = getenv("TMPDIR");
  snprintf(p->err_path, sizeof(p->err_path), "%s/ck-integ-stderr-XXXXXX",
           base && *base ? base : "/tmp");
  int err_fd = mkstemp(p->err_path);
  int pipefd[2] = {-1, -1};
  if (err_fd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
    if (err_fd >= 0) {
      close(err_fd);
      unlink(p->err_path);
    }
    p->err_path[0] = '\0';
    free(envp);
    return -1;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    /* The child dies with the test program, even if the test is killed by a timeout. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    dup2(pipefd[1], STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, STDIN_FILENO);
    if (cwd != NULL && chdir(cwd) != 0)
      _exit(127);
    execve(argv[0], (char *const *)argv, envp);
    _exit(127);
  }
  close(pipefd[1]);
  close(err_fd);
  free(envp);
  if (pid < 0) {
    close(pipefd[0]);
    unlink(p->err_path);
    p->err_path[0] = '\0';
    return -1;
  }
  p->pid = pid;
  p->out_fd = pipefd[0];
  registry_add(p);
  return 0;
}

/* Reads up to `cap` bytes from the child's stdout, waiting until `deadline` (ms). */
static ssize_t read_until(ck_proc *p, char *buf, size_t cap, long long deadline) {
  for (;;) {
    long long left = deadline - ck_now_ms();
    if (left <= 0)
      return -1;
    struct pollfd pfd = {p->out_fd, POLLIN, 0};
    int r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    ssize_t got = read(p->out_fd, buf, cap);
    if (got < 0 && errno == EINTR)
      continue;
    return got;
  }
}

int ck_proc_wait_listening(ck_proc *p, int timeout_ms) {
  long long deadline = ck_now_ms() + timeout_ms;
  size_t len = 0;
  while (len + 1 < sizeof(p->out_line)) {
    /* One byte at a time: nothing after the line may be swallowed. */
    ssize_t got = read_until(p, p->out_line + len, 1, deadline);
    if (got <= 0)
      break;
    if (p->out_line[len] == '\n') {
      p->out_line[len] = '\0';
      const char *prefix = "listening on http://";
      if (strncmp(p->out_line, prefix, strlen(prefix)) != 0)
        return -1;
      const char *colon = strrchr(p->out_line, ':');
      char *end = NULL;
      long port = colon ? strtol(colon + 1, &end, 10) : -1;
      if (colon == NULL || end == colon + 1 || *end != '\0' || port <= 0 || port > 65535)
        return -1;
      p->port = (int)port;
      return 0;
    }
    len++;
  }
  p->out_line[len] = '\0';
  return -1;
}

static void print_stderr(const ck_proc *p, const char *why) {
  char *err = ck_proc_stderr(p);
  fprintf(stderr, "--- chatkit-server (pid %d) %s; its stderr:\n%s\n---\n", (int)p->pid, why,
          err ? err : "(unreadable)");
  free(err);
}

int ck_server_start(ck_proc *p, const char *cwd, const char *const *args, const char *const *env) {
  const char *argv[48] = {CK_SERVER_BIN, "--host",      "127.0.0.1", "--port",
                          "0",           "--log-level", "warn"};
  size_t n = 7;
  for (size_t i = 0; args != NULL && args[i] != NULL && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  if (ck_proc_spawn(p, argv, cwd, env) != 0)
    return -1;
  /* ASan builds start slowly; 15 s is far above the normal few milliseconds. */
  if (ck_proc_wait_listening(p, 15000) != 0) {
    print_stderr(p, "did not print its listening line");
    ck_proc_kill(p);
    return -1;
  }
  return p->port;
}

static int decode_status(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

int ck_proc_wait(ck_proc *p, int timeout_ms) {
  if (p->pid <= 0)
    return p->exit_code;
  long long deadline = ck_now_ms() + timeout_ms;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
      p->exit_code = decode_status(status);
      p->pid = 0;
      return p->exit_code;
    }
    if (r < 0 && errno != EINTR)
      return -1;
    if (ck_now_ms() >= deadline)
      return -1;
    ck_sleep_ms(5);
  }
}

int ck_proc_stop(ck_proc *p, int timeout_ms) {
  if (p->pid > 0)
    kill(p->pid, SIGTERM);
  int rc = ck_proc_wait(p, timeout_ms);
  if (rc < 0) {
    print_stderr(p, "did not exit after SIGTERM");
    ck_proc_kill(p);
    return -1;
  }
  if (rc != 0)
    print_stderr(p, "exited with a nonzero code");
  ck_proc_kill(p); /* reaped already: this only releases the pipe and the stderr file */
  return rc;
}

size_t ck_proc_read_stdout(ck_proc *p, char *buf, size_t cap, int timeout_ms) {
  long long deadline = ck_now_ms() + timeout_ms;
  size_t len = 0;
  while (p->out_fd >= 0 && len + 1 < cap) {
    ssize_t got = read_until(p, buf + len, cap - 1 - len, deadline);
    if (got <= 0)
      break;
    len += (size_t)got;
  }
  if (cap > 0)
    buf[len] = '\0';
  return len;
}

char *ck_proc_stderr(const ck_proc *p) {
  FILE *f = p->err_path[0] ? fopen(p->err_path, "rb") : NULL;
  if (f == NULL)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    size_t got = fread(buf + len, 1, cap - 1 - len, f);
    len += got;
    if (got == 0)
      break;
    if (len + 1 == cap) {
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL)
        break;
      buf = bigger;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf != NULL)
    buf[len] = '\0';
  return buf;
}

void ck_proc_kill(ck_proc *p) {
  if (p->pid > 0) {
    kill(p->pid, SIGKILL);
    int status = 0;
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
    }
    p->exit_code = decode_status(status);
    p->pid = 0;
  }
  if (p->out_fd >= 0) {
    close(p->out_fd);
    p->out_fd = -1;
  }
  if (p->err_path[0]) {
    unlink(p->err_path);
    p->err_path[0] = '\0';
  }
  registry_remove(p);
}

void ck_proc_kill_all(void) {
  for (size_t i = 0; i < MAX_CHILDREN; i++)
    if (children[i] != NULL)
      ck_proc_kill(children[i]);
}
