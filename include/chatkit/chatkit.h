/* chatkit/chatkit.h - the whole public API of libchatkit in one include.
 *
 * Modules (one header each):
 *   agent.h     agents: history to model input, the agent loop, tools
 *   auth.h      JWT verification (HS256, RS256, ES256, JWKS)
 *   model.h     the streaming model client (Responses, Chat Completions)
 *   error.h     error codes
 *   mem.h       arenas and capped buffers
 *   json.h      the JSON document model, strict parser, canonical writer
 *   protocol.h  ChatKit requests, items and events; validation and builders
 *   store.h     the store interface and the memory/SQLite backends
 *   server.h    the request processor, streams and the handler API
 *   widgets.h   the widget streaming diff
 *   http.h      the HTTP/1.1 server layer on libuv
 *   service.h   the ChatKit HTTP service (processor + HTTP + workers)
 *   demo.h      the built-in demo model
 *   log.h       structured logs
 *   metrics.h   the metrics registry and the Prometheus exposition
 */
#ifndef CHATKIT_CHATKIT_H
#define CHATKIT_CHATKIT_H

#include <chatkit/agent.h>
#include <chatkit/auth.h>
#include <chatkit/demo.h>
#include <chatkit/error.h>
#include <chatkit/http.h>
#include <chatkit/json.h>
#include <chatkit/log.h>
#include <chatkit/model.h>
#include <chatkit/mem.h>
#include <chatkit/metrics.h>
#include <chatkit/protocol.h>
#include <chatkit/server.h>
#include <chatkit/service.h>
#include <chatkit/store.h>
#include <chatkit/widgets.h>

#endif
