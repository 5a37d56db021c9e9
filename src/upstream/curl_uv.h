/* upstream/curl_uv.h - libcurl's multi_socket interface driven by a libuv loop (internal).
 *
 * One ck__curl_uv wraps one CURLM on one loop: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION -> one uv_poll_t per socket) and when to wake it up
 * (CURLMOPT_TIMERFUNCTION -> one uv_timer_t); libuv tells curl when a socket is ready or the
 * timer fired (curl_multi_socket_action). Finished transfers are collected with
 * curl_multi_info_read after every socket_action, removed from the multi handle, and reported
 * through the `done` function given to ck__curl_uv_add.
 *
 * The rule that shapes this module: curl_multi_* must never be called from inside a curl
 * callback (libcurl answers CURLM_RECURSIVE_API_CALL). Our own callbacks run only from libuv
 * callbacks, outside curl, so `done` may add and remove transfers freely; code running inside
 * a curl write or header callback checks ck__curl_uv_in_callback() and defers instead.
 */
#ifndef CK_UPSTREAM_CURL_UV_H
#define CK_UPSTREAM_CURL_UV_H

#include <stdbool.h>

#include <curl/curl.h>
#include <uv.h>

typedef struct ck__curl_uv ck__curl_uv;

/* A transfer ended (completed or failed); `easy` is already removed from the multi handle and
 * still belongs to the caller. */
typedef void (*ck__curl_done_fn)(CURL *easy, CURLcode result, void *ud);

/** Creates the glue on `loop`. Returns NULL when out of memory or when curl fails. */
ck__curl_uv *ck__curl_uv_new(uv_loop_t *loop);

/** Removes any transfer still added (without calling `done`), cleans up the multi handle and
 * closes the libuv handles; the memory goes in their close callbacks. NULL is a no-op. */
void ck__curl_uv_free(ck__curl_uv *g);

/** Adds `easy`; `done(easy, result, ud)` runs once when it ends. Must not be called inside a
 * curl callback. Returns CK_OK or CK_EIO. */
int ck__curl_uv_add(ck__curl_uv *g, CURL *easy, ck__curl_done_fn done, void *ud);

/** Removes `easy` without calling its `done`: curl closes the connection if the transfer was
 * in progress. Must not be called inside a curl callback. */
void ck__curl_uv_remove(ck__curl_uv *g, CURL *easy);

/** True while a curl callback (write, header) of this glue is running: curl_multi_* calls are
 * forbidden then. The model code marks its write/header callbacks with enter/leave. */
bool ck__curl_uv_in_callback(const ck__curl_uv *g);
void ck__curl_uv_enter(ck__curl_uv *g);
void ck__curl_uv_leave(ck__curl_uv *g);

/** The number of sockets being watched (for tests). */
size_t ck__curl_uv_sockets(const ck__curl_uv *g);

#endif
