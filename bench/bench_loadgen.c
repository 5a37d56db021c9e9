/* bench_loadgen: a small epoll HTTP/1.1 load client for comparing ChatKit servers on loopback.
 *
 *   bench_loadgen json    --port P --body JSON [--connections N] [--duration S] [--warmup S]
 *   bench_loadgen sse     --port P --body JSON [--connections N] [--duration S] [--warmup S]
 *   bench_loadgen ttfb    --port P --body JSON [--streams K] [--timeout S] [--hold S]
 *   bench_loadgen agents  --port P --body JSON [--streams K] [--timeout S] [--gap-ms G]
 *   bench_loadgen startup [--runs R] [--timeout S] -- COMMAND ARGS...
 *
 * json:    N keep-alive connections POST the body back to back for S seconds; prints req/s and
 *          the latency p50/p99 of the requests that started inside the measured window.
 * sse:     like json, but each response is an SSE stream read to its end; prints streams/s,
 *          events/s (lines starting with "data:") and the stream duration p50/p99.
 * ttfb:    opens K connections at once, each POSTs the (streaming) body once; prints the time
 *          from connect() to the first response byte and to the first SSE event, p50/p99. With
 *          --hold it then keeps the streams open (reading and discarding) for up to S seconds or
 *          until SIGTERM/SIGINT, after printing "holding open=N", so a caller can read the
 *          server's memory while they are open.
 * agents:  opens K connections at once, each POSTs the body once and reads its stream to the
 *          end. Text deltas whose text starts with "@" and 16 digits carry the time the model
 *          sent them (CLOCK_MONOTONIC microseconds, from the mock model's "stamp" script
 *          member); for each, the time the delta reached us minus that stamp is the latency the
 *          server added. Also prints how much longer than G ms the model itself took between
 *          two deltas of a stream (its own lateness: timer slack and CPU starvation), the most
 *          streams answering (first response byte to end) and streaming (first delta to end)
 *          at once, the deltas per second, and this program's own CPU time.
 * startup: runs COMMAND R times; each time measures exec -> the "listening on http://H:P" line
 *          on its stdout and exec -> the first 200 from GET /health, reads the child's VmRSS,
 *          then stops it with SIGTERM. Prints the median and the minimum of each.
 *
 * Every mode talks to 127.0.0.1 only, and every loop is bounded in count and in time. Results
 * are single "key=value ..." lines on stdout so scripts can pick them apart. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 20000
#define HDR_MAX 16384
#define READ_CHUNK 65536
/* Latency samples kept; past this the run is long enough that the tail is well sampled. */
#define MAX_SAMPLES (8u << 20)

typedef enum mode { M_JSON, M_SSE, M_TTFB, M_AGENTS, M_STARTUP } mode;

typedef struct opts {
  mode m;
  int port;
  const char *path;
  const char *body;
  int conns;
  int streams;
  double duration, warmup, timeout, hold;
  double gap_ms;
  int runs;
  char **cmd;
} opts;

typedef enum cstate { C_IDLE, C_CONNECTING, C_WRITING, C_HEADERS, C_BODY, C_DONE } cstate;
typedef enum chunk_state { K_SIZE, K_SIZE_LF, K_DATA, K_DATA_CR, K_DATA_LF, K_TRAILER } chunk_state;

typedef struct conn {
  int fd;
  cstate st;
  size_t sent;
  char hdr[HDR_MAX];
  size_t hdr_len;
  int status;
  bool chunked, until_close, server_close;
  long long left; /* Content-Length bytes still to read */
  chunk_state ks;
  unsigned long long chunk_left;
  int trailer_col; /* bytes on the current trailer line */
  int sse_match;   /* bytes of "data:" matched at the start of this line; -1 once it cannot */
  size_t events;   /* SSE events in the current response */
  uint64_t t_start, t_first_byte, t_first_event;
  /* agents mode: the current "data:" line (in hdr, unused once the headers are parsed) */
  size_t line_len;
  bool in_data;
  int deltas;             /* stamped deltas seen on this stream */
  uint64_t last_stamp_us; /* the model's send time of the previous one */
} conn;

typedef struct samples {
  uint32_t *v;
  size_t n, cap;
} samples;

typedef struct run {
  const opts *o;
  int ep;
  char *req;
  size_t req_len;
  conn *c;
  int nconns;
  uint64_t t_window, t_end;
  bool measuring;
  /* counted inside the measured window */
  size_t completed, events, errors, non2xx, reconnects;
  samples lat, first_byte, first_event;
  int open_streams;
  /* agents mode */
  uint64_t t_recv;           /* when the bytes being parsed were read */
  samples added, model_late; /* per delta: arrival - stamp; gap since the last one - G */
  size_t deltas, done_streams;
  int streaming, max_streaming; /* streams between their first delta and their end */
  int answering, max_answering; /* streams between their first response byte and their end */
} run;

static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sample_add(samples *s, uint64_t ns) {
  if (s->n == s->cap) {
    if (s->cap >= MAX_SAMPLES)
      return;
    size_t cap = s->cap ? s->cap * 2 : 4096;
    uint32_t *v = realloc(s->v, cap * sizeof(*v));
    if (v == NULL)
      return;
    s->v = v;
    s->cap = cap;
  }
  uint64_t us = ns / 1000;
  s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* The q-quantile in milliseconds (nearest rank), or 0 without samples. */
static double quantile_ms(samples *s, double q) {
  if (s->n == 0)
    return 0;
  qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
  size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
  return (double)s->v[i] / 1000.0;
}

/* ---- Connections ---- */

static void conn_close(run *r, conn *c) {
  if (c->fd >= 0) {
    epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  c->st = C_IDLE;
}

static void conn_reset_response(conn *c) {
  c->sent = 0;
  c->hdr_len = 0;
  c->status = 0;
  c->chunked = c->until_close = c->server_close = false;
  c->left = 0;
  c->ks = K_SIZE;
  c->chunk_left = 0;
  c->trailer_col = 0;
  c->sse_match = 0;
  c->events = 0;
  c->t_first_byte = c->t_first_event = 0;
  c->line_len = 0;
  c->in_data = false;
  c->deltas = 0;
  c->last_stamp_us = 0;
}

static int conn_open(run *r, conn *c) {
  conn_reset_response(c);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)r->o->port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->t_start = now_ns();
  int rc = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
  if (rc != 0 && errno != EINPROGRESS) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  c->st = rc == 0 ? C_WRITING : C_CONNECTING;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

static void want_write(run *r, conn *c, bool on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u), .data.ptr = c};
  epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is left of the request; returns -1 on a dead socket. */
static int conn_write(run *r, conn *c) {
  for (int guard = 0; c->sent < r->req_len && guard < 64; guard++) {
    ssize_t n = send(c->fd, r->req + c->sent, r->req_len - c->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        break;
      return -1;
    }
    c->sent += (size_t)n;
  }
  if (c->sent == r->req_len) {
    c->st = C_HEADERS;
    want_write(r, c, false);
  } else {
    want_write(r, c, true);
  }
  return 0;
}

static void conn_start_request(run *r, conn *c) {
  conn_reset_response(c);
  c->t_start = now_ns();
  c->st = C_WRITING;
  if (conn_write(r, c) != 0) {
    r->errors += r->measuring;
    conn_close(r, c);
  }
}

/* Reads the stamp of a text delta from one complete "data:" line (agents mode): the delta
 * text starts with "@" and 16 digits, the model's send time in microseconds. */
static void delta_line(run *r, conn *c, const char *line, size_t len) {
  static const char key[] = "\"delta\":\"@";
  const char *p = memmem(line, len, key, sizeof(key) - 1);
  if (p == NULL)
    return;
  p += sizeof(key) - 1;
  if ((size_t)(line + len - p) < 16)
    return;
  uint64_t stamp = 0;
  for (int i = 0; i < 16; i++) {
    if (p[i] < '0' || p[i] > '9')
      return;
    stamp = stamp * 10 + (uint64_t)(p[i] - '0');
  }
  uint64_t now_us = r->t_recv / 1000;
  sample_add(&r->added, now_us > stamp ? (now_us - stamp) * 1000 : 0);
  if (c->deltas == 0) {
    if (++r->streaming > r->max_streaming)
      r->max_streaming = r->streaming;
  } else {
    uint64_t due = c->last_stamp_us + (uint64_t)(r->o->gap_ms * 1000.0);
    sample_add(&r->model_late, stamp > due ? (stamp - due) * 1000 : 0);
  }
  c->last_stamp_us = stamp;
  c->deltas++;
  r->deltas++;
}

/* Counts SSE "data:" lines in decoded body bytes. */
static void sse_feed(run *r, conn *c, const char *p, size_t n) {
  static const char tag[] = "data:";
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (c->in_data) {
      /* Agents mode: collect the data line (bounded by the buffer; longer lines are events
       * this mode does not look into) and look at it when it ends. */
      if (ch == '\n') {
        delta_line(r, c, c->hdr, c->line_len);
        c->in_data = false;
      } else if (c->line_len < HDR_MAX) {
        c->hdr[c->line_len++] = ch;
      }
    }
    if (ch == '\n') {
      c->sse_match = 0;
    } else if (c->sse_match >= 0) {
      if (ch == tag[c->sse_match]) {
        if (++c->sse_match == 5) {
          c->sse_match = -1;
          c->events++;
          if (c->t_first_event == 0)
            c->t_first_event = now_ns();
          if (r->measuring)
            r->events++;
          if (r->o->m == M_AGENTS) {
            c->in_data = true;
            c->line_len = 0;
          }
        }
      } else {
        c->sse_match = -1;
      }
    }
  }
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Decodes body bytes; returns how many were used, sets c->st = C_DONE at the end of the
 * response and returns (size_t)-1 on malformed framing. */
static size_t body_feed(run *r, conn *c, const char *p, size_t n) {
  if (c->until_close) {
    sse_feed(r, c, p, n);
    return n;
  }
  if (!c->chunked) {
    size_t take = (long long)n < c->left ? n : (size_t)c->left;
    sse_feed(r, c, p, take);
    c->left -= (long long)take;
    if (c->left == 0)
      c->st = C_DONE;
    return take;
  }
  size_t i = 0;
  while (i < n && c->st != C_DONE) {
    char ch = p[i];
    switch (c->ks) {
    case K_SIZE: {
      int h = hexval(ch);
      if (h >= 0) {
        if (c->chunk_left > (1ull << 40))
          return (size_t)-1;
        c->chunk_left = c->chunk_left * 16 + (unsigned)h;
      } else if (ch == '\r' || ch == ';') {
        c->ks = K_SIZE_LF;
      } else if (ch == '\n') {
        c->ks = c->chunk_left ? K_DATA : K_TRAILER;
        c->trailer_col = 0;
      } else {
        return (size_t)-1;
      }
      i++;
      break;
    }
    case K_SIZE_LF:
      if (ch == '\n') {
        c->ks = c->chunk_left ? K_DATA : K_TRAILER;
        c->trailer_col = 0;
      }
      i++;
      break;
    case K_DATA: {
      size_t take = n - i < c->chunk_left ? n - i : (size_t)c->chunk_left;
      sse_feed(r, c, p + i, take);
      c->chunk_left -= take;
      i += take;
      if (c->chunk_left == 0)
        c->ks = K_DATA_CR;
      break;
    }
    case K_DATA_CR:
      c->ks = ch == '\r' ? K_DATA_LF : K_SIZE;
      if (ch == '\n')
        c->ks = K_SIZE;
      i++;
      break;
    case K_DATA_LF:
      if (ch != '\n')
        return (size_t)-1;
      c->ks = K_SIZE;
      i++;
      break;
    case K_TRAILER:
      /* Trailer lines until an empty one ends the message. */
      if (ch == '\n') {
        if (c->trailer_col == 0)
          c->st = C_DONE;
        c->trailer_col = 0;
      } else if (ch != '\r') {
        c->trailer_col++;
      }
      i++;
      break;
    }
  }
  return i;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value) {
  size_t k = strlen(name);
  if (len <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
    return false;
  const char *v = line + k + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  *value = v;
  return true;
}

/* Parses the header block in c->hdr (terminated by CRLFCRLF at `end`). */
static int parse_headers(conn *c, size_t end) {
  c->hdr[end] = '\0';
  if (end < 12 || strncmp(c->hdr, "HTTP/1.", 7) != 0)
    return -1;
  c->status = (int)strtol(c->hdr + 9, NULL, 10);
  bool has_length = false;
  bool http10 = c->hdr[7] == '0';
  c->server_close = http10;
  const char *line = strstr(c->hdr, "\r\n");
  for (int guard = 0; line != NULL && guard < 256; guard++) {
    line += 2;
    const char *eol = strstr(line, "\r\n");
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    if (len == 0)
      break;
    const char *v;
    if (header_is(line, len, "content-length", &v)) {
      c->left = strtoll(v, NULL, 10);
      has_length = true;
    } else if (header_is(line, len, "transfer-encoding", &v)) {
      c->chunked = strncasecmp(v, "chunked", 7) == 0;
    } else if (header_is(line, len, "connection", &v)) {
      if (strncasecmp(v, "close", 5) == 0)
        c->server_close = true;
      else if (strncasecmp(v, "keep-alive", 10) == 0)
        c->server_close = false;
    }
    line = eol;
  }
  if (c->chunked)
    return 0;
  if (has_length || c->status == 204 || c->status == 304 || c->status / 100 == 1) {
    if (!has_length)
      c->left = 0;
    return 0;
  }
  c->until_close = true;
  c->server_close = true;
  return 0;
}

/* The response on `c` ended (cleanly or not); decides what the connection does next. */
static void on_response_end(run *r, conn *c, bool ok) {
  uint64_t t = now_ns();
  bool in_window = r->measuring && c->t_start >= r->t_window;
  if (ok && r->measuring) {
    r->completed++;
    if (c->status / 100 != 2)
      r->non2xx++;
    if (in_window)
      sample_add(&r->lat, t - c->t_start);
  } else if (!ok && r->measuring) {
    r->errors++;
  }
  if (r->o->m == M_AGENTS) {
    if (c->deltas > 0)
      r->streaming--;
    if (c->t_first_byte != 0)
      r->answering--;
    if (ok && c->status / 100 == 2)
      r->done_streams++;
  }
  if (r->o->m == M_TTFB || r->o->m == M_AGENTS) {
    if (c->fd >= 0)
      r->open_streams--;
    conn_close(r, c);
    c->st = C_DONE;
    return;
  }
  if (t >= r->t_end || g_stop) {
    conn_close(r, c);
    return;
  }
  if (!ok || c->server_close) {
    conn_close(r, c);
    r->reconnects++;
    if (conn_open(r, c) != 0)
      r->errors++;
    return;
  }
  conn_start_request(r, c);
}

static void conn_readable(run *r, conn *c) {
  static char buf[READ_CHUNK];
  for (int guard = 0; guard < 64 && c->fd >= 0; guard++) {
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return;
      on_response_end(r, c, false);
      return;
    }
    if (n == 0) {
      /* End of file: a clean end only for a body delimited by the close. */
      bool ok = c->st == C_BODY && c->until_close;
      if (c->st == C_HEADERS && c->hdr_len == 0 && c->t_first_byte == 0 && r->o->m != M_TTFB &&
          r->o->m != M_AGENTS) {
        /* The server closed an idle keep-alive connection before our request: reconnect. */
        conn_close(r, c);
        if (now_ns() < r->t_end && !g_stop && conn_open(r, c) != 0)
          r->errors++;
        return;
      }
      c->st = C_DONE;
      on_response_end(r, c, ok);
      return;
    }
    r->t_recv = now_ns();
    if (c->t_first_byte == 0) {
      c->t_first_byte = r->t_recv;
      if (++r->answering > r->max_answering)
        r->max_answering = r->answering;
    }
    size_t off = 0;
    while (off < (size_t)n && c->fd >= 0) {
      if (c->st == C_HEADERS || c->st == C_WRITING) {
        size_t room = HDR_MAX - 1 - c->hdr_len;
        size_t take = (size_t)n - off < room ? (size_t)n - off : room;
        memcpy(c->hdr + c->hdr_len, buf + off, take);
        size_t old = c->hdr_len;
        c->hdr_len += take;
        c->hdr[c->hdr_len] = '\0';
        char *end = memmem(c->hdr, c->hdr_len, "\r\n\r\n", 4);
        if (end == NULL) {
          if (c->hdr_len >= HDR_MAX - 1) {
            on_response_end(r, c, false);
            return;
          }
          off += take;
          continue;
        }
        size_t hend = (size_t)(end - c->hdr) + 4;
        off += hend - old;
        if (parse_headers(c, hend - 2) != 0) {
          on_response_end(r, c, false);
          return;
        }
        c->st = C_BODY;
        if (!c->chunked && !c->until_close && c->left == 0) {
          c->st = C_DONE;
          on_response_end(r, c, true);
          return;
        }
      } else if (c->st == C_BODY) {
        size_t used = body_feed(r, c, buf + off, (size_t)n - off);
        if (used == (size_t)-1) {
          on_response_end(r, c, false);
          return;
        }
        off += used;
        if (c->st == C_DONE) {
          /* No pipelining: nothing may follow, and the connection may be a new one now. */
          on_response_end(r, c, true);
          return;
        }
      } else {
        /* Bytes after the end of a response we did not ask for: drop the connection. */
        if (r->o->m == M_TTFB || r->o->m == M_AGENTS)
          return;
        on_response_end(r, c, false);
        return;
      }
    }
  }
}

static void conn_event(run *r, conn *c, uint32_t events) {
  if (c->st == C_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      on_response_end(r, c, false);
      return;
    }
    c->st = C_WRITING;
  }
  if (c->st == C_WRITING && (events & EPOLLOUT)) {
    if (conn_write(r, c) != 0) {
      on_response_end(r, c, false);
      return;
    }
  }
  if (c->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    conn_readable(r, c);
}

/* Runs the epoll loop until `until` (ns) or until `done(r)` says so. */
static void loop_until(run *r, uint64_t until, bool (*done)(run *)) {
  struct epoll_event evs[256];
  /* At most one iteration per millisecond of the time budget, plus slack for busy periods. */
  for (uint64_t guard = 0; guard < 100000000ull; guard++) {
    uint64_t t = now_ns();
    if (t >= until || g_stop || (done && done(r)))
      return;
    if (r->o->m != M_TTFB && r->o->m != M_AGENTS && !r->measuring && t >= r->t_window) {
      /* The warm-up is over: start counting from a clean slate. */
      r->measuring = true;
      r->completed = r->events = r->errors = r->non2xx = r->reconnects = 0;
    }
    int ms = (int)((until - t) / 1000000u) + 1;
    if (ms > 50)
      ms = 50;
    int n = epoll_wait(r->ep, evs, 256, ms);
    for (int i = 0; i < n; i++)
      conn_event(r, (conn *)evs[i].data.ptr, evs[i].events);
  }
}

/* ---- Modes ---- */

/* Opens every connection of a burst (ttfb and agents modes) as fast as one thread can. Each
 * request is sent as soon as its connect() completes, and sockets that became ready are
 * serviced after every open, so neither the requests nor the timestamps of early responses
 * wait for the whole burst to be opened: that wait is the client's, not the server's, and it
 * used to add up to `opened_in_ms` to every early stream's time to first byte. Returns the
 * number of connections that could not be opened. */
static size_t open_burst(run *r) {
  size_t connect_errors = 0;
  struct epoll_event evs[64];
  for (int i = 0; i < r->nconns; i++) {
    conn *c = &r->c[i];
    c->fd = -1;
    if (conn_open(r, c) != 0) {
      connect_errors++;
      c->st = C_DONE;
      continue;
    }
    r->open_streams++;
    if (c->st == C_WRITING && conn_write(r, c) != 0)
      on_response_end(r, c, false);
    int n = epoll_wait(r->ep, evs, 64, 0);
    for (int k = 0; k < n; k++)
      conn_event(r, (conn *)evs[k].data.ptr, evs[k].events);
  }
  return connect_errors;
}

static int build_request(run *r) {
  const opts *o = r->o;
  size_t blen = strlen(o->body);
  size_t cap = blen + 512;
  r->req = malloc(cap);
  if (r->req == NULL)
    return -1;
  int n =
      snprintf(r->req, cap,
               "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
               "Accept: %s\r\nContent-Length: %zu\r\n\r\n",
               o->path, o->port, o->m == M_JSON ? "application/json" : "text/event-stream", blen);
  if (n < 0 || (size_t)n + blen >= cap)
    return -1;
  memcpy(r->req + n, o->body, blen);
  r->req_len = (size_t)n + blen;
  return 0;
}

/* A run of `nconns` connections: the epoll set, the connection slots and the request text.
 * Returns 0, or 1 after a message. */
static int run_setup(run *r, const opts *o, int nconns) {
  memset(r, 0, sizeof(*r));
  r->o = o;
  r->ep = epoll_create1(EPOLL_CLOEXEC);
  r->nconns = nconns;
  r->c = calloc((size_t)nconns, sizeof(conn));
  if (r->ep < 0 || r->c == NULL || build_request(r) != 0) {
    fprintf(stderr, "bench_loadgen: out of resources\n");
    return 1;
  }
  return 0;
}

static int run_rate(const opts *o) {
  run r;
  if (run_setup(&r, o, o->conns) != 0)
    return 1;
  uint64_t t0 = now_ns();
  r.t_window = t0 + (uint64_t)(o->warmup * 1e9);
  r.t_end = r.t_window + (uint64_t)(o->duration * 1e9);
  r.measuring = o->warmup <= 0;
  for (int i = 0; i < r.nconns; i++) {
    r.c[i].fd = -1;
    if (conn_open(&r, &r.c[i]) != 0)
      r.errors++;
  }
  loop_until(&r, r.t_end, NULL);
  double secs = (double)(now_ns() - r.t_window) / 1e9;
  for (int i = 0; i < r.nconns; i++)
    conn_close(&r, &r.c[i]);
  if (o->m == M_JSON)
    printf("mode=json connections=%d seconds=%.2f requests=%zu rps=%.1f p50_ms=%.3f "
           "p99_ms=%.3f errors=%zu non2xx=%zu reconnects=%zu\n",
           o->conns, secs, r.completed, (double)r.completed / secs, quantile_ms(&r.lat, 0.50),
           quantile_ms(&r.lat, 0.99), r.errors, r.non2xx, r.reconnects);
  else
    printf("mode=sse connections=%d seconds=%.2f streams=%zu streams_per_s=%.1f events=%zu "
           "events_per_s=%.1f p50_ms=%.3f p99_ms=%.3f errors=%zu non2xx=%zu reconnects=%zu\n",
           o->conns, secs, r.completed, (double)r.completed / secs, r.events,
           (double)r.events / secs, quantile_ms(&r.lat, 0.50), quantile_ms(&r.lat, 0.99), r.errors,
           r.non2xx, r.reconnects);
  fflush(stdout);
  free(r.lat.v);
  free(r.c);
  free(r.req);
  close(r.ep);
  return r.completed > 0 ? 0 : 1;
}

static bool all_first_event(run *r) {
  for (int i = 0; i < r->nconns; i++) {
    conn *c = &r->c[i];
    if (c->t_first_event == 0 && c->st != C_DONE && c->fd >= 0)
      return false;
  }
  return true;
}

static int run_ttfb(const opts *o) {
  run r;
  if (run_setup(&r, o, o->streams) != 0)
    return 1;
  r.measuring = true;
  uint64_t t0 = now_ns();
  r.t_window = t0;
  r.t_end = t0 + (uint64_t)((o->timeout + o->hold) * 1e9);
  size_t connect_errors = open_burst(&r);
  uint64_t t_opened = now_ns();
  loop_until(&r, t0 + (uint64_t)(o->timeout * 1e9), all_first_event);
  size_t got = 0, no_event = 0;
  for (int i = 0; i < r.nconns; i++) {
    conn *c = &r.c[i];
    if (c->t_first_byte)
      sample_add(&r.first_byte, c->t_first_byte - c->t_start);
    if (c->t_first_event) {
      sample_add(&r.first_event, c->t_first_event - c->t_start);
      got++;
    } else {
      no_event++;
    }
  }
  printf("mode=ttfb streams=%d opened_in_ms=%.1f with_event=%zu without_event=%zu "
         "connect_errors=%zu ttfb_p50_ms=%.3f ttfb_p99_ms=%.3f first_event_p50_ms=%.3f "
         "first_event_p99_ms=%.3f all_in_ms=%.1f\n",
         o->streams, (double)(t_opened - t0) / 1e6, got, no_event, connect_errors,
         quantile_ms(&r.first_byte, 0.50), quantile_ms(&r.first_byte, 0.99),
         quantile_ms(&r.first_event, 0.50), quantile_ms(&r.first_event, 0.99),
         (double)(now_ns() - t0) / 1e6);
  fflush(stdout);
  if (o->hold > 0 && !g_stop) {
    printf("holding open=%d\n", r.open_streams);
    fflush(stdout);
    loop_until(&r, now_ns() + (uint64_t)(o->hold * 1e9), NULL);
    printf("released open=%d\n", r.open_streams);
    fflush(stdout);
  }
  for (int i = 0; i < r.nconns; i++)
    conn_close(&r, &r.c[i]);
  free(r.first_byte.v);
  free(r.first_event.v);
  free(r.lat.v);
  free(r.c);
  free(r.req);
  close(r.ep);
  return got > 0 ? 0 : 1;
}

/* CPU time (user + system) this process used so far, in milliseconds. */
static double self_cpu_ms(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static bool all_done(run *r) {
  return r->open_streams == 0;
}

static int run_agents(const opts *o) {
  run r;
  if (run_setup(&r, o, o->streams) != 0)
    return 1;
  r.measuring = true;
  uint64_t t0 = now_ns();
  r.t_window = t0;
  r.t_end = t0 + (uint64_t)(o->timeout * 1e9);
  size_t connect_errors = open_burst(&r);
  uint64_t t_opened = now_ns();
  loop_until(&r, r.t_end, all_done);
  uint64_t t_done = now_ns();
  size_t short_streams = 0;
  for (int i = 0; i < r.nconns; i++) {
    conn *c = &r.c[i];
    if (c->t_first_event)
      sample_add(&r.first_event, c->t_first_event - c->t_start);
  }
  for (int i = 0; i < r.nconns; i++)
    if (r.c[i].fd >= 0)
      short_streams++; /* still open at the timeout */
  double secs = (double)(t_done - t0) / 1e9;
  printf("mode=agents streams=%d opened_in_ms=%.1f completed=%zu unfinished=%zu errors=%zu "
         "non2xx=%zu connect_errors=%zu deltas=%zu max_open=%d max_streaming=%d seconds=%.2f "
         "deltas_per_s=%.1f loadgen_cpu_ms=%.0f added_p50_ms=%.3f added_p99_ms=%.3f "
         "added_p999_ms=%.3f "
         "added_max_ms=%.3f model_late_p50_ms=%.3f model_late_p99_ms=%.3f "
         "first_event_p50_ms=%.3f first_event_p99_ms=%.3f\n",
         o->streams, (double)(t_opened - t0) / 1e6, r.done_streams, short_streams, r.errors,
         r.non2xx, connect_errors, r.deltas, r.max_answering, r.max_streaming, secs,
         (double)r.deltas / secs, self_cpu_ms(), quantile_ms(&r.added, 0.50),
         quantile_ms(&r.added, 0.99), quantile_ms(&r.added, 0.999), quantile_ms(&r.added, 1.0),
         quantile_ms(&r.model_late, 0.50), quantile_ms(&r.model_late, 0.99),
         quantile_ms(&r.first_event, 0.50), quantile_ms(&r.first_event, 0.99));
  fflush(stdout);
  for (int i = 0; i < r.nconns; i++)
    conn_close(&r, &r.c[i]);
  free(r.added.v);
  free(r.model_late.v);
  free(r.first_event.v);
  free(r.c);
  free(r.req);
  close(r.ep);
  return r.done_streams > 0 ? 0 : 1;
}

/* ---- startup ---- */

static long vmrss_kb(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char line[256];
  long kb = -1;
  for (int guard = 0; guard < 200 && fgets(line, sizeof(line), f) != NULL; guard++) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb;
}

/* One blocking GET /health; true on a 200. */
static bool health_ok(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
    char req[128];
    int n =
        snprintf(req, sizeof(req),
                 "GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", port);
    char resp[64];
    if (n > 0 && send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
      ssize_t got = recv(fd, resp, sizeof(resp) - 1, 0);
      if (got >= 12) {
        resp[got] = '\0';
        ok = strncmp(resp + 8, " 200", 4) == 0;
      }
    }
  }
  close(fd);
  return ok;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void stop_child(pid_t pid) {
  kill(pid, SIGTERM);
  for (int i = 0; i < 500; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return;
    sleep_ms(10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* One start: fills the times (ms) and the RSS (KB); returns 0 on success. */
static int startup_once(const opts *o, double *listen_ms, double *health_ms, long *rss_kb) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0)
    return -1;
  uint64_t t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    dup2(p[1], STDOUT_FILENO);
    execvp(o->cmd[0], o->cmd);
    _exit(127);
  }
  close(p[1]);
  uint64_t deadline = t0 + (uint64_t)(o->timeout * 1e9);
  char out[4096];
  size_t len = 0;
  int port = -1;
  while (port < 0 && now_ns() < deadline && len < sizeof(out) - 1) {
    ssize_t n = read(p[0], out + len, sizeof(out) - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
    out[len] = '\0';
    const char *l = strstr(out, "listening on http://");
    const char *nl = l ? strchr(l, '\n') : NULL;
    if (nl != NULL) {
      *listen_ms = (double)(now_ns() - t0) / 1e6;
      const char *colon = memrchr(l, ':', (size_t)(nl - l));
      port = colon ? (int)strtol(colon + 1, NULL, 10) : -1;
    }
  }
  int rc = -1;
  for (int tries = 0; port > 0 && tries < 5000 && now_ns() < deadline; tries++) {
    if (health_ok(port)) {
      *health_ms = (double)(now_ns() - t0) / 1e6;
      rc = 0;
      break;
    }
    sleep_ms(1);
  }
  /* Let the process settle so the RSS is that of an idle server, not of one mid-start. */
  sleep_ms(200);
  *rss_kb = vmrss_kb(pid);
  close(p[0]);
  stop_child(pid);
  return rc;
}

static int run_startup(const opts *o) {
  double ls[64], hs[64], rs[64];
  int ok = 0;
  for (int i = 0; i < o->runs && i < 64; i++) {
    double l = 0, h = 0;
    long rss = 0;
    if (startup_once(o, &l, &h, &rss) != 0) {
      fprintf(stderr, "bench_loadgen: start %d failed\n", i);
      continue;
    }
    ls[ok] = l;
    hs[ok] = h;
    rs[ok] = (double)rss;
    ok++;
  }
  if (ok == 0)
    return 1;
  qsort(ls, (size_t)ok, sizeof(double), cmp_double);
  qsort(hs, (size_t)ok, sizeof(double), cmp_double);
  qsort(rs, (size_t)ok, sizeof(double), cmp_double);
  printf("mode=startup runs=%d listen_p50_ms=%.2f listen_min_ms=%.2f health_p50_ms=%.2f "
         "health_min_ms=%.2f idle_rss_kb=%.0f\n",
         ok, ls[ok / 2], ls[0], hs[ok / 2], hs[0], rs[ok / 2]);
  fflush(stdout);
  return 0;
}

/* ---- Command line ---- */

static void usage(void) {
  fprintf(stderr, "usage: bench_loadgen json|sse --port P --body JSON [--path /chatkit] "
                  "[--connections N] [--duration S] [--warmup S]\n"
                  "       bench_loadgen ttfb --port P --body JSON [--streams K] [--timeout S] "
                  "[--hold S]\n"
                  "       bench_loadgen agents --port P --body JSON [--streams K] [--timeout S] "
                  "[--gap-ms G]\n"
                  "       bench_loadgen startup [--runs R] [--timeout S] -- COMMAND ARGS...\n");
}

static bool num(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

int main(int argc, char **argv) {
  opts o = {.path = "/chatkit",
            .conns = 32,
            .streams = 1000,
            .duration = 5,
            .timeout = 30,
            .runs = 10,
            .gap_ms = 20,
            .port = -1};
  if (argc < 2) {
    usage();
    return 2;
  }
  const char *m = argv[1];
  if (strcmp(m, "json") == 0)
    o.m = M_JSON;
  else if (strcmp(m, "sse") == 0)
    o.m = M_SSE;
  else if (strcmp(m, "ttfb") == 0)
    o.m = M_TTFB;
  else if (strcmp(m, "agents") == 0)
    o.m = M_AGENTS;
  else if (strcmp(m, "startup") == 0)
    o.m = M_STARTUP;
  else {
    usage();
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      o.cmd = argv + i + 1;
      break;
    }
    if (i + 1 >= argc) {
      usage();
      return 2;
    }
    const char *v = argv[++i];
    double d;
    bool ok = true;
    if (strcmp(a, "--port") == 0 && (ok = num(v, 1, 65535, &d)))
      o.port = (int)d;
    else if (strcmp(a, "--path") == 0)
      o.path = v;
    else if (strcmp(a, "--body") == 0)
      o.body = v;
    else if (strcmp(a, "--connections") == 0 && (ok = num(v, 1, MAX_CONNS, &d)))
      o.conns = (int)d;
    else if (strcmp(a, "--streams") == 0 && (ok = num(v, 1, MAX_CONNS, &d)))
      o.streams = (int)d;
    else if (strcmp(a, "--duration") == 0 && (ok = num(v, 0.1, 3600, &d)))
      o.duration = d;
    else if (strcmp(a, "--warmup") == 0 && (ok = num(v, 0, 600, &d)))
      o.warmup = d;
    else if (strcmp(a, "--timeout") == 0 && (ok = num(v, 0.1, 600, &d)))
      o.timeout = d;
    else if (strcmp(a, "--hold") == 0 && (ok = num(v, 0, 3600, &d)))
      o.hold = d;
    else if (strcmp(a, "--gap-ms") == 0 && (ok = num(v, 0, 60000, &d)))
      o.gap_ms = d;
    else if (strcmp(a, "--runs") == 0 && (ok = num(v, 1, 64, &d)))
      o.runs = (int)d;
    else
      ok = false;
    if (!ok) {
      fprintf(stderr, "bench_loadgen: bad option %s %s\n", a, v);
      return 2;
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (o.m == M_STARTUP) {
    if (o.cmd == NULL || o.cmd[0] == NULL) {
      usage();
      return 2;
    }
    return run_startup(&o);
  }
  if (o.port < 0 || o.body == NULL) {
    usage();
    return 2;
  }
  if (o.m == M_AGENTS)
    return run_agents(&o);
  return o.m == M_TTFB ? run_ttfb(&o) : run_rate(&o);
}
