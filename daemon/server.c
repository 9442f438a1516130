/* server.c: NNG contexts and aios feeding the libuv loop (see server.h).
 *
 * Each context owns two aios, one per direction, so a callback knows what
 * completed without shared state. A context is always in exactly one place:
 * waiting in NNG for a request, parked on the queue (holding `msg`), or
 * waiting in NNG for its reply to go out. That invariant is what makes the
 * shutdown order below safe: close the socket (every pending operation
 * fails), stop each aio (waits for a running callback), then free what the
 * queue still holds; only then can the wake-up handle close. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

struct srv_ctx {
    struct srv *srv;
    nng_ctx ctx;
    bool ctx_open;
    nng_aio *recv_aio;
    nng_aio *send_aio;
    nng_msg *msg;         /* the request, while parked on the queue */
    struct srv_ctx *next; /* queue link */
    bool deferred;        /* answered later with srv_respond() */
    bool local;           /* the request came over ipc:// (or inproc://) */
    uint32_t pipe;        /* the connection it came on */
};

/* A reply buffer that grew past this is given back after use, so one big
 * reply does not pin memory for the daemon's lifetime. */
#define REPLY_KEEP_BYTES (1u << 20)

static void log_nng(const struct srv *srv, const char *msg, const char *what, int rv)
{
    struct log_line l;
    log_begin(&l, srv->log, LOG_ERROR, msg);
    log_str(&l, "call", what);
    log_str(&l, "error", nng_strerror(rv));
    log_end(&l);
}

static void arm_recv(struct srv_ctx *c)
{
    nng_ctx_recv(c->ctx, c->recv_aio);
}

/* NNG thread: a request arrived (or the receive failed). */
static void recv_cb(void *arg)
{
    struct srv_ctx *c = arg;
    struct srv *srv = c->srv;
    int rv = nng_aio_result(c->recv_aio);
    if (rv != 0) {
        /* Closed or stopped: we are shutting down. Anything else is
         * transient for a REP context: wait for the next request. */
        if (rv != NNG_ECLOSED && rv != NNG_ECANCELED && !atomic_load(&srv->stopping))
            arm_recv(c);
        return;
    }
    nng_msg *msg = nng_aio_get_msg(c->recv_aio);
    if (atomic_load(&srv->stopping)) {
        nng_msg_free(msg);
        return;
    }
    atomic_fetch_add(&srv->busy, 1);
    c->msg = msg;
    c->next = NULL;
    uv_mutex_lock(&srv->mu);
    if (srv->queue_tail != NULL)
        srv->queue_tail->next = c;
    else
        srv->queue_head = c;
    srv->queue_tail = c;
    uv_mutex_unlock(&srv->mu);
    uv_async_send(&srv->wake);
}

/* NNG thread: a reply went out (or could not). */
static void send_cb(void *arg)
{
    struct srv_ctx *c = arg;
    struct srv *srv = c->srv;
    if (nng_aio_result(c->send_aio) != 0) {
        /* On failure the message is still ours. */
        nng_msg_free(nng_aio_get_msg(c->send_aio));
        nng_aio_set_msg(c->send_aio, NULL);
    }
    atomic_fetch_sub(&srv->busy, 1);
    if (!atomic_load(&srv->stopping))
        arm_recv(c);
}

/* NNG thread: a connection was attached to the socket. Count the ones
 * this process made itself, so the watchdog can tell its probe got in. */
static void on_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct srv *srv = arg;
    uint64_t pid = 0;
    if (ev == NNG_PIPE_EV_ADD_POST && nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) == 0 &&
        pid == srv->pid)
        atomic_fetch_add(&srv->own_pipes, 1);
}

uint64_t srv_own_pipes(struct srv *srv)
{
    return atomic_load(&srv->own_pipes);
}

/* Loop thread: answer one parked request. */
static void handle(struct srv *srv, struct srv_ctx *c)
{
    nng_msg *msg = c->msg;
    c->msg = NULL;

    msgpack_sbuffer_clear(&srv->reply);
    nng_sockaddr sa;
    nng_pipe pipe = nng_msg_get_pipe(msg);
    c->local = nng_pipe_get_addr(pipe, NNG_OPT_LOCADDR, &sa) == 0 &&
               (sa.s_family == NNG_AF_IPC || sa.s_family == NNG_AF_INPROC);
    c->pipe = (uint32_t) nng_pipe_id(pipe);
    srv->current = c;
    srv->handler(srv->handler_arg, nng_msg_body(msg), nng_msg_len(msg), &srv->reply);
    srv->current = NULL;
    if (c->deferred) {
        nng_msg_free(msg); /* srv_respond() builds the reply message */
        return;
    }

    /* Reuse the request's message for the reply: the handler is done with
     * the request bytes. */
    nng_msg_clear(msg);
    int rv = 0;
    if (srv->reply.size > 0) {
        if ((rv = nng_msg_append(msg, srv->reply.data, srv->reply.size)) != 0)
            log_nng(srv, "no reply sent", "nng_msg_append", rv);
    }
    if (srv->reply.alloc > REPLY_KEEP_BYTES) {
        msgpack_sbuffer_destroy(&srv->reply);
        msgpack_sbuffer_init(&srv->reply);
    }
    if (rv != 0 || nng_msg_len(msg) == 0) {
        /* No reply (the handler logged why): the client's request times
         * out, and this context waits for the next one. */
        nng_msg_free(msg);
        atomic_fetch_sub(&srv->busy, 1);
        arm_recv(c);
        return;
    }
    nng_aio_set_msg(c->send_aio, msg);
    nng_ctx_send(c->ctx, c->send_aio);
}

bool srv_request_local(const struct srv *srv)
{
    return srv->current != NULL && srv->current->local;
}

uint32_t srv_request_pipe(const struct srv *srv)
{
    return srv->current != NULL ? srv->current->pipe : 0;
}

void srv_on_gone(struct srv *srv, srv_gone_fn fn, void *arg)
{
    srv->on_gone = fn;
    srv->gone_arg = arg;
}

/* NNG thread: a connection closed. Queued for the loop thread, which owns
 * the sessions. Losing one to a failed allocation only delays that
 * session's end until it idles out. */
static void on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct srv *srv = arg;
    (void) ev;
    if (atomic_load(&srv->stopping))
        return;
    uv_mutex_lock(&srv->mu);
    if (srv->ngone == srv->capgone) {
        size_t cap = srv->capgone ? 2 * srv->capgone : 16;
        uint32_t *g = realloc(srv->gone, cap * sizeof(*g));
        if (g != NULL)
            srv->gone = g, srv->capgone = cap;
    }
    if (srv->ngone < srv->capgone)
        srv->gone[srv->ngone++] = (uint32_t) nng_pipe_id(p);
    uv_mutex_unlock(&srv->mu);
    uv_async_send(&srv->wake);
}

struct srv_ctx *srv_defer(struct srv *srv)
{
    struct srv_ctx *c = srv->current;
    if (c != NULL)
        c->deferred = true;
    return c;
}

void srv_respond(struct srv *srv, struct srv_ctx *c, const void *data, size_t len)
{
    c->deferred = false;
    nng_msg *msg;
    int rv = nng_msg_alloc(&msg, 0);
    if (rv == 0 && (rv = nng_msg_append(msg, data, len)) != 0)
        nng_msg_free(msg);
    if (rv != 0) {
        log_nng(srv, "no reply sent", "nng_msg_append", rv);
        atomic_fetch_sub(&srv->busy, 1);
        arm_recv(c);
        return;
    }
    nng_aio_set_msg(c->send_aio, msg);
    nng_ctx_send(c->ctx, c->send_aio);
}

/* Loop thread: the queue has work. Take all of it at once, then answer
 * without holding the lock. */
static void on_wake(uv_async_t *h)
{
    struct srv *srv = h->data;
    uv_mutex_lock(&srv->mu);
    struct srv_ctx *c = srv->queue_head;
    srv->queue_head = srv->queue_tail = NULL;
    uint32_t *gone = srv->gone; /* the closed connections: taken whole */
    size_t ngone = srv->ngone;
    srv->gone = NULL;
    srv->ngone = srv->capgone = 0;
    uv_mutex_unlock(&srv->mu);
    /* Requests first: one that arrived before its connection closed is
     * answered (into the void) before the close ends its session's link. */
    while (c != NULL) {
        struct srv_ctx *next = c->next;
        c->next = NULL;
        handle(srv, c);
        c = next;
    }
    for (size_t i = 0; i < ngone; i++) {
        srv->recent_gone[srv->recent_next++ % SRV_GONE_RECENT] = gone[i];
        if (srv->on_gone != NULL)
            srv->on_gone(srv->gone_arg, gone[i]);
    }
    free(gone);
}

bool srv_pipe_gone(const struct srv *srv, uint32_t pipe)
{
    size_t n = srv->recent_next < SRV_GONE_RECENT ? srv->recent_next : SRV_GONE_RECENT;
    for (size_t i = 0; i < n && pipe != 0; i++)
        if (srv->recent_gone[i] == pipe)
            return true;
    return false;
}

int srv_init(struct srv *srv, uv_loop_t *loop, const struct log *log, size_t max_message,
             srv_handler_fn handler, void *handler_arg)
{
    memset(srv, 0, sizeof(*srv));
    srv->log = log;
    srv->handler = handler;
    srv->handler_arg = handler_arg;
    atomic_init(&srv->busy, 0);
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->own_pipes, 0);
    srv->pid = (uint64_t) getpid();
    msgpack_sbuffer_init(&srv->reply);

    int rv = uv_mutex_init(&srv->mu);
    if (rv != 0) {
        log_msg(log, LOG_ERROR, "cannot create a mutex");
        return rv;
    }
    srv->mu_init = true;
    srv->wake.data = srv;
    if ((rv = uv_async_init(loop, &srv->wake, on_wake)) != 0) {
        log_msg(log, LOG_ERROR, "cannot create the wake-up handle");
        return rv;
    }
    srv->wake_open = true;

    if ((rv = nng_rep0_open(&srv->sock)) != 0) {
        log_nng(srv, "cannot open the socket", "nng_rep0_open", rv);
        return rv;
    }
    srv->sock_open = true;
    if ((rv = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, max_message)) != 0) {
        log_nng(srv, "cannot set the message limit", "nng_socket_set_size", rv);
        return rv;
    }
    if ((rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_POST, on_pipe_added, srv)) != 0 ||
        (rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, on_pipe_removed, srv)) != 0) {
        log_nng(srv, "cannot watch connections", "nng_pipe_notify", rv);
        return rv;
    }

    srv->ctxs = calloc(SRV_CONTEXTS, sizeof(*srv->ctxs));
    if (srv->ctxs == NULL) {
        log_msg(log, LOG_ERROR, "out of memory");
        return NNG_ENOMEM;
    }
    for (size_t i = 0; i < SRV_CONTEXTS; i++) {
        struct srv_ctx *c = &srv->ctxs[i];
        c->srv = srv;
        srv->nctxs = i + 1; /* srv_fini cleans up what this one got */
        if ((rv = nng_aio_alloc(&c->recv_aio, recv_cb, c)) != 0 ||
            (rv = nng_aio_alloc(&c->send_aio, send_cb, c)) != 0 ||
            (rv = nng_ctx_open(&c->ctx, srv->sock)) != 0) {
            log_nng(srv, "cannot create a context", "nng_ctx_open", rv);
            return rv;
        }
        c->ctx_open = true;
    }
    return 0;
}

int srv_listen(struct srv *srv, const char *addr)
{
    if (srv->nlisteners >= SIZE_MAX / sizeof(*srv->listeners) - 1)
        return NNG_ENOMEM;
    struct srv_listener *grown =
        realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*srv->listeners));
    if (grown == NULL)
        return NNG_ENOMEM;
    srv->listeners = grown;
    struct srv_listener *sl = &srv->listeners[srv->nlisteners];
    if ((sl->addr = strdup(addr)) == NULL)
        return NNG_ENOMEM;
    int rv = nng_listen(srv->sock, addr, &sl->l, 0);
    if (rv != 0) {
        free(sl->addr);
        return rv;
    }
    srv->nlisteners++;
    return 0;
}

int srv_relisten(struct srv *srv, size_t i)
{
    if (i >= srv->nlisteners)
        return NNG_EINVAL;
    struct srv_listener *sl = &srv->listeners[i];
    nng_listener_close(sl->l);
    return nng_listen(srv->sock, sl->addr, &sl->l, 0);
}

static void free_listeners(struct srv *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        free(srv->listeners[i].addr);
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}

void srv_start(struct srv *srv)
{
    for (size_t i = 0; i < srv->nctxs; i++)
        arm_recv(&srv->ctxs[i]);
}

void srv_stop_listening(struct srv *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        nng_listener_close(srv->listeners[i].l);
    free_listeners(srv);
}

bool srv_idle(struct srv *srv)
{
    return atomic_load(&srv->busy) == 0;
}

void srv_fini(struct srv *srv)
{
    atomic_store(&srv->stopping, true);
    free_listeners(srv); /* closing the socket closes them */
    if (srv->sock_open)
        nng_close(srv->sock);
    srv->sock_open = false;

    /* After a stop no callback runs again, so nothing can touch the queue
     * or the wake-up handle any more. */
    /* Sends first: a send callback that started before `stopping` was set
     * may still re-arm a receive, which then fails at once on the closed
     * socket; stopping the receives afterwards waits for that too. */
    for (size_t i = 0; i < srv->nctxs; i++) {
        if (srv->ctxs[i].send_aio != NULL)
            nng_aio_stop(srv->ctxs[i].send_aio);
    }
    for (size_t i = 0; i < srv->nctxs; i++) {
        if (srv->ctxs[i].recv_aio != NULL)
            nng_aio_stop(srv->ctxs[i].recv_aio);
    }
    for (size_t i = 0; i < srv->nctxs; i++) {
        struct srv_ctx *c = &srv->ctxs[i];
        if (c->msg != NULL) /* parked on the queue, never answered */
            nng_msg_free(c->msg);
        if (c->ctx_open)
            nng_ctx_close(c->ctx); /* already closed with the socket: harmless */
        if (c->recv_aio != NULL)
            nng_aio_free(c->recv_aio);
        if (c->send_aio != NULL)
            nng_aio_free(c->send_aio);
    }
    free(srv->ctxs);
    free(srv->gone);
    srv->ctxs = NULL;
    srv->nctxs = 0;
    srv->queue_head = srv->queue_tail = NULL;

    if (srv->wake_open)
        uv_close((uv_handle_t *) &srv->wake, NULL);
    srv->wake_open = false;
    if (srv->mu_init)
        uv_mutex_destroy(&srv->mu);
    srv->mu_init = false;
    msgpack_sbuffer_destroy(&srv->reply);
}
