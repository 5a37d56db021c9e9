/* Internal: the MCP client's shared state and its two transports (mcp.c, mcp_stdio.c,
 * mcp_http.c).
 *
 * The core (mcp.c) owns the JSON-RPC side: ids, the handshake, reconnecting, the tools cache
 * and answering what a server asks of us. A transport moves message texts: `rpc` sends one
 * request and returns the response with the same id, handing every other message it sees to
 * ck__mcp_incoming. */
#ifndef CK_AGENT_MCP_INTERNAL_H
#define CK_AGENT_MCP_INTERNAL_H

#include <chatkit/mcp.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct ck__mcp_ops {
  /* Starts the transport (spawns the child). Called with the connect lock held. */
  int (*open)(ck_mcp *m, char *err, size_t errlen);
  /* Stops whatever `open` started; safe on a transport that never opened or already died.
   * Called with the connect lock held, or from ck_mcp_close. */
  void (*shut)(ck_mcp *m);
  /* Sends request `id` (its text is `len` bytes) and waits for its response, parsed into `a`.
   * Returns CK_OK, CK_EIO with a reason (the connection is lost or the wait timed out), or
   * CK_ESTATE when the server no longer knows our session (re-initialize and retry). */
  int (*rpc)(ck_mcp *m, ck_arena *a, int64_t id, const char *text, size_t len, ck_json **response,
             char *err, size_t errlen);
  /* Sends a notification or a response: nothing comes back. */
  int (*send)(ck_mcp *m, const char *text, size_t len, char *err, size_t errlen);
  /* Frees the transport's state (after shut). */
  void (*destroy)(ck_mcp *m);
} ck__mcp_ops;

typedef struct ck__mcp_stdio ck__mcp_stdio;
typedef struct ck__mcp_http ck__mcp_http;

struct ck_mcp {
  const ck__mcp_ops *ops;
  ck__mcp_stdio *stdio;
  ck__mcp_http *http;
  int timeout_ms;
  atomic_llong next_id;
  /* Serialises (re)connecting, so one thread respawns a dead server while the others wait. */
  pthread_mutex_t cmu;
  /* Guards everything below. */
  pthread_mutex_t mu;
  bool ready;         /* the handshake succeeded and the connection was not lost since */
  char *protocol;     /* the negotiated protocol version (heap) */
  char *server_name;  /* serverInfo.name (heap, never NULL) */
  uint64_t tools_gen; /* bumped by list_changed and reconnects */
  uint64_t cache_gen; /* the tools_gen the cache was fetched at */
  char *tools_cache;  /* the tools array as JSON text (heap), or NULL */
  char last_error[256];
};

/** Handles a message from the server that is not the awaited response: answers requests
 * (ping with {}, anything else with "method not found") through ops->send, and notes
 * notifications/tools/list_changed. Any thread. */
void ck__mcp_incoming(ck_mcp *m, const ck_json *msg);

/** Marks the connection lost: the next request reconnects first. Any thread. */
void ck__mcp_lost(ck_mcp *m);

/** Records a failure message for ck_mcp_last_error. Any thread. */
void ck__mcp_set_error(ck_mcp *m, const char *msg);

/** The negotiated protocol version, copied into `buf` ("" before the handshake). */
void ck__mcp_protocol(ck_mcp *m, char *buf, size_t cap);

/** The id of a response message as an integer; false when it has none (or not a number). */
bool ck__mcp_response_id(const ck_json *msg, int64_t *id);

/** Monotonic milliseconds. */
int64_t ck__mcp_now_ms(void);

extern const ck__mcp_ops ck__mcp_stdio_ops;
extern const ck__mcp_ops ck__mcp_http_ops;

/** Creates the stdio transport state in `m` (copies of argv, env, cwd). */
int ck__mcp_stdio_new(ck_mcp *m, const char *const *argv, const char *const *env, const char *cwd);

/** Creates the HTTP transport state in `m` (copies of url and headers). */
int ck__mcp_http_new(ck_mcp *m, const char *url, const char *const *headers, char *err,
                     size_t errlen);

#endif
