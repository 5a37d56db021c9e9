/* chatkit/mcp.h - a blocking Model Context Protocol client, and its tools as agent tools.
 *
 * An MCP server offers tools (and more) over JSON-RPC 2.0. This client speaks the two standard
 * transports: stdio (the client starts the server as a child process and exchanges
 * newline-delimited JSON messages on its stdin and stdout; the child's stderr is its log and
 * is passed through to ours) and Streamable HTTP (every message is POSTed to one endpoint; the
 * answer is a JSON body or an SSE stream carrying the response).
 *
 * Every function blocks, so call them from worker threads (agent tools run there) or at
 * start-up, never on an event loop. A client is thread-safe: several threads may call tools at
 * once. Over stdio the requests share the child's pipes and responses are matched by id, so a
 * slow call does not hold up the others; over HTTP each request is its own POST.
 *
 * Failures: every wait has the client's timeout. A server that exits or drops its connection
 * fails the requests in flight with a clear message; the next request reconnects (stdio:
 * starts the program again, once per request; HTTP: a new session when the server forgot the
 * old one). A tool call that failed is never retried by the client, since tools need not be
 * idempotent.
 */
#ifndef CHATKIT_MCP_H
#define CHATKIT_MCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <chatkit/agent.h>
#include <chatkit/json.h>
#include <chatkit/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_mcp ck_mcp;

/* The protocol revision offered at initialize; the server may answer with an older one. */
#define CK_MCP_PROTOCOL_VERSION "2025-06-18"
/* The default timeout of every request when a connect call is given 0. */
#define CK_MCP_DEFAULT_TIMEOUT_MS 30000
/* The cap on one message from a server (a line over stdio, a body or SSE event over HTTP). */
#define CK_MCP_MAX_MESSAGE ((size_t)8 * 1024 * 1024)

/** Starts `argv` (argv[0] is the program, looked up in PATH; the list ends with NULL) as an MCP
 * server over stdio and runs the initialize handshake. `env` holds "NAME=value" strings
 * (NULL-terminated, may be NULL) added to this process's environment for the child; `cwd` is
 * its working directory (NULL: ours). `timeout_ms` bounds every request (0: the default).
 * Returns CK_OK with the client in `*out`, or CK_EINVAL, CK_ENOMEM or CK_EIO with a reason in
 * `err` (`errlen` bytes, may be NULL) and nothing left running. */
int ck_mcp_connect_stdio(const char *const *argv, const char *const *env, const char *cwd,
                         int timeout_ms, ck_mcp **out, char *err, size_t errlen);

/** Connects to the Streamable HTTP endpoint `url` (http or https) and runs the initialize
 * handshake. `headers` holds extra "Name: value" request headers (NULL-terminated, may be
 * NULL), typically an Authorization header. `timeout_ms` bounds every request (0: the
 * default). Returns like ck_mcp_connect_stdio. */
int ck_mcp_connect_http(const char *url, const char *const *headers, int timeout_ms, ck_mcp **out,
                        char *err, size_t errlen);

/** The server's tools: a JSON array (from `a`) of the tool objects of tools/list ({"name",
 * "description", "inputSchema", ...}), every page. The list is cached and fetched again only
 * after the server sent notifications/tools/list_changed or after a reconnect. Returns CK_OK,
 * CK_EIO (the server failed or answered with an error), CK_EINVAL or CK_ENOMEM. */
int ck_mcp_list_tools(ck_mcp *m, ck_arena *a, ck_json **tools);

/** A number that changes whenever the server's tool list may have changed: it sent
 * notifications/tools/list_changed, or the client reconnected. Never blocks, so a caller on an
 * event loop can tell whether to list the tools again (on a thread that may block). */
uint64_t ck_mcp_tools_generation(ck_mcp *m);

/** Calls the tool `name` with `args` (a JSON object, or NULL for {}). On CK_OK `*result` is the
 * tools/call result ({"content": [...], "structuredContent"?, "isError"?}, from `a`) and
 * `*is_error` its isError flag; a JSON-RPC error answer (an unknown tool, for instance) also
 * gives CK_OK, as an isError result carrying the error's message. Other failures return
 * CK_EIO (the server died, the connection failed, or no answer within the timeout), CK_EINVAL
 * or CK_ENOMEM, and still set `*result` to an isError result describing the failure when
 * memory allows, so a caller can always show the model something. `is_error` may be NULL. */
int ck_mcp_call_tool(ck_mcp *m, ck_arena *a, const char *name, const ck_json *args,
                     ck_json **result, bool *is_error);

/** The server's name from initialize (serverInfo.name), or "" before a handshake succeeded.
 * The pointer stays valid until ck_mcp_close. */
const char *ck_mcp_server_name(const ck_mcp *m);

/** Copies the most recent failure message of this client into `buf` (for logs; with several
 * threads it may be another thread's). Returns `buf`. */
const char *ck_mcp_last_error(ck_mcp *m, char *buf, size_t cap);

/** Closes the client: over stdio it closes the child's stdin, waits briefly for it to exit,
 * then sends SIGTERM and finally SIGKILL, and always reaps it; over HTTP it ends the session
 * with a DELETE (best effort). No call may be running or start afterwards. NULL is a no-op. */
void ck_mcp_close(ck_mcp *m);

/** Turns the server's current tools into agent tools, allocated from `a` (which must outlive
 * the agents using them, as must `m`). Each tool's fn calls ck_mcp_call_tool on a worker; the
 * model gets the result's text contents joined with newlines (structuredContent as JSON when
 * there is no text, the content array as JSON when there is neither), and an isError result
 * becomes ck_tool_error with that text. When `prefix` is not NULL the names are
 * "<prefix>__<name>" so that several servers cannot clash. Names are made to fit the model
 * APIs: characters outside [a-zA-Z0-9_-] become '_', at most 64 characters; a tool whose name
 * collides after that is left out. Returns CK_OK with `*defs` and `*n`, or the error of
 * ck_mcp_list_tools. */
int ck_mcp_tools(ck_mcp *m, ck_arena *a, const char *prefix, ck_tool_def **defs, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
