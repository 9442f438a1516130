/* server.h: the NNG REP socket, bridged onto the libuv loop.
 *
 * Threads: NNG completes receives on its own threads. The receive callback
 * only parks the context on a mutex-protected queue and wakes the loop with
 * uv_async_send(); the loop drains the whole queue, hands each request to
 * the handler (decode, dispatch, encode: all on the loop thread, which owns
 * every piece of daemon state), and starts the send. The send callback
 * frees the message if the send failed and re-arms the receive. So the
 * handler never runs concurrently with itself, and NNG threads never touch
 * daemon state.
 *
 * A fixed pool of contexts (SRV_CONTEXTS) bounds how many requests can be
 * in the daemon at once; NNG queues the rest in its pipes. Messages larger
 * than the configured maximum are refused by NNG itself (NNG_OPT_RECVMAXSZ),
 * which drops that connection.
 *
 * Lifecycle, all on the loop thread: srv_init, srv_listen (once per
 * address), srv_start; to drain, srv_stop_listening and poll srv_idle;
 * then srv_fini, and run the loop once more so the async handle closes
 * before the struct goes away. srv_fini is safe after a failed srv_init.
 */
#ifndef KILND_SERVER_H
#define KILND_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <uv.h>

#include "log.h"

#define SRV_CONTEXTS 64

/* Called on the loop thread with one request's bytes (valid only during the
 * call). Must append exactly one reply to `reply`, which is empty on entry;
 * leaving it empty sends nothing (the client's request then times out) —
 * unless the handler called srv_defer(), which keeps the context aside for
 * a reply sent later with srv_respond(). */
typedef void (*srv_handler_fn)(void *arg, const void *req, size_t len, msgpack_sbuffer *reply);
/* Loop thread: connection `pipe` (srv_request_pipe's id) has closed. */
typedef void (*srv_gone_fn)(void *arg, uint32_t pipe);

/* Closed connections remembered, so that a request that NNG delivered
 * from a connection after it was reported closed is known for what it is. */
#define SRV_GONE_RECENT 1024

struct srv_ctx; /* one NNG context with its receive and send aio: server.c */

struct srv_listener {
    nng_listener l;
    char *addr; /* owned copy of the address it listens on */
};

struct srv {
    nng_socket sock;
    bool sock_open;
    struct srv_listener *listeners;
    size_t nlisteners;
    struct srv_ctx *ctxs;
    size_t nctxs; /* contexts opened (all of SRV_CONTEXTS after a good init) */

    uv_async_t wake; /* NNG threads -> loop: the queue has work */
    bool wake_open;
    uv_mutex_t mu; /* guards the queue */
    bool mu_init;
    struct srv_ctx *queue_head, *queue_tail;
    uint32_t *gone;        /* ids of connections that closed, for the loop (guarded) */
    size_t ngone, capgone;
    uint32_t recent_gone[SRV_GONE_RECENT]; /* the latest closed ones (loop thread) */
    size_t recent_next;
    srv_gone_fn on_gone;   /* NULL: nobody asks */
    void *gone_arg;

    atomic_int busy;      /* contexts between a received request and its sent reply */
    atomic_uint_fast64_t own_pipes; /* connections attached whose peer is this process */
    uint64_t pid;                   /* this process, for own_pipes */
    atomic_bool stopping; /* srv_fini began: callbacks re-arm nothing */

    srv_handler_fn handler;
    void *handler_arg;
    struct srv_ctx *current; /* the context whose request the handler is answering */
    msgpack_sbuffer reply; /* reused for every reply (loop thread only) */
    const struct log *log;
};

/* Open the socket with the receive limit and the context pool, and register
 * the wake-up handle on `loop`. Returns 0 or an NNG/libuv error (logged). */
int srv_init(struct srv *srv, uv_loop_t *loop, const struct log *log, size_t max_message,
             srv_handler_fn handler, void *handler_arg);

/* Listen on `addr`. Returns 0 or the NNG error (NNG_EADDRINUSE when a live
 * process already listens there); the caller reports it. */
int srv_listen(struct srv *srv, const char *addr);

/* Close listener `i` and listen again on its address: the cure for an
 * ipc:// listener that stopped accepting (see watchdog.h). Connections
 * already accepted are not affected. Returns 0 or the NNG error; on error
 * the listener stays closed and the caller reports it. */
int srv_relisten(struct srv *srv, size_t i);

/* How many connections from this very process the socket has attached so
 * far (the watchdog's probes). Any thread. */
uint64_t srv_own_pipes(struct srv *srv);

/* From inside the handler: whether the request being answered came over a
 * local transport (ipc://, inproc://), where the socket's directory
 * permissions already say who may connect. */
bool srv_request_local(const struct srv *srv);

/* From inside the handler: the id of the connection the request came on
 * (never 0). srv_on_gone's callback later names it when it closes. */
uint32_t srv_request_pipe(const struct srv *srv);

/* True when connection `pipe` is among the SRV_GONE_RECENT latest that
 * closed: a request from it is a dead client's last words (a session it
 * names must not take it for its connection). */
bool srv_pipe_gone(const struct srv *srv, uint32_t pipe);

/* Call `fn` on the loop thread for every connection that closes. Set
 * before srv_start. */
void srv_on_gone(struct srv *srv, srv_gone_fn fn, void *arg);

/* From inside the handler: do not reply now. Returns the context to pass
 * to srv_respond() later; it stays busy (counted by srv_idle) until then.
 * The request's bytes are gone once the handler returns: copy what the
 * reply will need. Every deferred context must be answered before
 * srv_fini(), or its client waits for its own timeout. */
struct srv_ctx *srv_defer(struct srv *srv);

/* Send the reply of a deferred request (`len` bytes). Loop thread. */
void srv_respond(struct srv *srv, struct srv_ctx *c, const void *data, size_t len);

/* Start receiving on every context. */
void srv_start(struct srv *srv);

/* Close the listeners: no new connections; open ones keep working. */
void srv_stop_listening(struct srv *srv);

/* True when no request is between receipt and the completion of its reply. */
bool srv_idle(struct srv *srv);

/* Close the socket, stop and free every aio and context, free any message
 * still held, and start closing the wake-up handle. */
void srv_fini(struct srv *srv);

#endif
