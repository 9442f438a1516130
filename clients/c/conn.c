/* conn.c: the life of a connection — dial, HELLO, BYE, close.
 *
 * kiln_connect() dials synchronously so that an address where nothing
 * listens fails at once (ECONNREFUSED or ENOENT from NNG) instead of
 * leaving a dialer retrying in the background while the caller waits for
 * a HELLO reply that cannot come. Once connected, NNG redials on its own
 * if the daemon goes away; the reconnect interval is kept short so that a
 * restarted daemon is found quickly.
 *
 * The default ipc:// address lives in a directory that, under /tmp, any
 * local user could have created first; it is dialled only after
 * kiln_runtime_dir_check() finds it ours and closed to others, so that the
 * token is never sent to a listener another user planted. An address the
 * caller or KILN_ADDRESS names is the caller's choice and is not checked. */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "client_impl.h"

#include <nng/protocol/reqrep0/req.h> /* after nng.h, which it needs */

#define CONN_RECONNECT_MIN_MS 50
#define CONN_RECONNECT_MAX_MS 1000
#define CONN_BYE_TIMEOUT_MS   1000
#define CONN_DEFAULT_CLIENT   "libkiln"

/* Frees what conn_new() and a partial connect made; no BYE. */
static void conn_free(struct kiln_conn *c)
{
    if (c == NULL)
        return;
    if (nng_socket_id(c->sock) > 0)
        nng_close(c->sock); /* also closes the dialer */
    msgpack_sbuffer_destroy(&c->sb);
    free(c->warnings);
    free(c->address);
    free(c);
}

static int conn_check_opts(const struct kiln_connect_opts *o, struct kiln_error *err)
{
    if (o->client != NULL) {
        size_t n = strlen(o->client);
        if (n == 0 || n > KILN_LIMIT_NAME)
            return client_error_set(err, KILN_EARG, "client",
                                    "client name must be 1..%d bytes, not %zu", KILN_LIMIT_NAME, n);
    }
    if (o->token != NULL && strlen(o->token) > KILN_LIMIT_TOKEN)
        return client_error_set(err, KILN_EARG, "token", "token is longer than %d bytes",
                                KILN_LIMIT_TOKEN);
    if (o->address != NULL && o->address[0] == '\0')
        return client_error_set(err, KILN_EARG, "address", "address is empty");
    return KILN_OK;
}

static int conn_set_timeouts(struct kiln_conn *c, nng_duration ms)
{
    int rv = nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, ms);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, ms);
    return rv;
}

/* End c's session with a BYE. Best effort: a daemon that does not answer
 * only costs the BYE timeout, and it will expire the session on its own
 * anyway. Leaves the socket's timeouts shortened: call only before
 * conn_free(). */
static void conn_bye(struct kiln_conn *c)
{
    nng_duration t = c->timeout_ms == NNG_DURATION_INFINITE || c->timeout_ms > CONN_BYE_TIMEOUT_MS
                         ? CONN_BYE_TIMEOUT_MS
                         : c->timeout_ms;
    msgpack_sbuffer_clear(&c->sb);
    if (conn_set_timeouts(c, t) == 0 &&
        proto_encode_simple(&c->sb, PROTO_BYE, c->session.id) == KILN_OK) {
        struct client_reply r;
        if (client_call(c, PROTO_BYE, &r, NULL) == KILN_OK)
            client_reply_fini(&r);
    }
}

/* Set c->address: the caller's address, else $KILN_ADDRESS (set and not
 * empty, the rule of kiln_default_address()), else the default ipc://
 * socket if its runtime directory passes kiln_runtime_dir_check(). */
static int conn_resolve_address(struct kiln_conn *c, const char *given, struct kiln_error *err)
{
    const char *env = getenv("KILN_ADDRESS");
    if (given == NULL && env != NULL && env[0] != '\0')
        given = env;
    char addr[512], dir[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    if (given == NULL) {
        if (kiln_runtime_dir(dir, sizeof(dir)) != KILN_OK ||
            kiln_ipc_address(addr, sizeof(addr)) != KILN_OK)
            return client_error_set(err, KILN_EARG, "address",
                                    "the default address does not fit (XDG_RUNTIME_DIR is too "
                                    "long)");
        char why[KILN_ERROR_MESSAGE_MAX];
        int rc = kiln_runtime_dir_check(dir, why, sizeof(why));
        /* A missing directory is a daemon that is not running; anything
         * else is a directory we must not trust, and the field says so. */
        if (rc == KILN_ECONNECT)
            return client_error_set(err, KILN_ECONNECT, NULL, "no daemon answers at %s (%s)", addr,
                                    why);
        if (rc != KILN_OK)
            return client_error_set(err, KILN_ECONNECT, "address",
                                    "refusing to dial the default address %s: %s", addr, why);
        given = addr;
    }
    c->address = strdup(given);
    if (c->address == NULL)
        return client_error_set(err, KILN_ENOMEM, NULL, "out of memory");
    return KILN_OK;
}

/* Open the req0 socket, set its options and dial. */
static int conn_dial(struct kiln_conn *c, struct kiln_error *err)
{
    int rv = nng_req0_open(&c->sock);
    if (rv != 0)
        return client_error_from_nng(err, rv, "socket", c->address);
    /* A req0 socket resends a request that got no reply within the resend
     * time. Requests such as HELLO are not idempotent, and our own timeout
     * already bounds the wait, so resending is off. */
    if ((rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, KILN_LIMIT_MESSAGE_BYTES)) != 0 ||
        (rv = conn_set_timeouts(c, c->timeout_ms)) != 0 ||
        (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, CONN_RECONNECT_MIN_MS)) != 0 ||
        (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, CONN_RECONNECT_MAX_MS)) != 0 ||
        (rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0)
        return client_error_from_nng(err, rv, "socket options", c->address);
    rv = nng_dial(c->sock, c->address, &c->dialer, 0);
    if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP)
        return client_error_set(err, KILN_EARG, "address", "invalid address %s: %s", c->address,
                                nng_strerror(rv));
    if (rv != 0)
        return client_error_from_nng(err, rv, "dial", c->address);
    return KILN_OK;
}

static void conn_copy_limits(struct kiln_limits *dst, const struct proto_limits *src)
{
    *dst = (struct kiln_limits){
        .message_bytes = src->message_bytes,
        .depth = src->depth,
        .container_items = src->container_items,
        .objects = src->objects,
        .string = src->string,
        .name = src->name,
        .token = src->token,
        .nodes = src->nodes,
        .rank = src->rank,
        .dim = src->dim,
        .elements = src->elements,
        .var_ids = src->var_ids,
        .node_inputs = src->node_inputs,
        .expr_bytes = src->expr_bytes,
        .expr_nodes = src->expr_nodes,
        .expr_depth = src->expr_depth,
        .conds = src->conds,
        .grad_passes = src->grad_passes,
    };
}

static int conn_hello(struct kiln_conn *c, const struct kiln_connect_opts *o,
                      struct kiln_error *err)
{
    /* The caller's token, else $KILN_TOKEN (set and not empty). */
    const char *token = o->token, *env = getenv("KILN_TOKEN");
    if (token == NULL && env != NULL && env[0] != '\0') {
        if (strlen(env) > KILN_LIMIT_TOKEN)
            return client_error_set(err, KILN_EARG, "token",
                                    "KILN_TOKEN is longer than %d bytes", KILN_LIMIT_TOKEN);
        token = env;
    }
    struct proto_hello h = {
        .proto_min = KILN_PROTO_VERSION_MIN,
        .proto_max = KILN_PROTO_VERSION_MAX,
        .has_token = token != NULL,
    };
    /* Lengths were checked by conn_check_opts(), so these copies fit. */
    strcpy(h.client, o->client ? o->client : CONN_DEFAULT_CLIENT);
    if (token != NULL)
        strcpy(h.token, token);
    msgpack_sbuffer_clear(&c->sb);
    int rc = proto_encode_hello(&c->sb, &h);
    if (rc != KILN_OK)
        return client_error_set(err, rc, NULL, "cannot encode HELLO");

    struct client_reply r;
    if ((rc = client_call(c, PROTO_HELLO, &r, err)) != KILN_OK)
        return rc;
    const struct proto_hello_reply *hr = &r.rep.u.hello;
    c->session.id = hr->session;
    c->session.proto = hr->proto;
    c->session.idle_timeout_ms = hr->idle_timeout_ms;
    memcpy(c->session.server, hr->server, sizeof(c->session.server));
    conn_copy_limits(&c->session.limits, &hr->limits);
    client_reply_fini(&r);

    if (c->session.proto < KILN_PROTO_VERSION_MIN || c->session.proto > KILN_PROTO_VERSION_MAX) {
        /* The daemon opened a session we cannot use: end it now rather
         * than leave it open until its idle timeout. */
        rc = client_error_set(err, KILN_EPROTO, "body.proto",
                              "daemon chose protocol %u, outside the %d..%d this client speaks",
                              (unsigned) c->session.proto, KILN_PROTO_VERSION_MIN,
                              KILN_PROTO_VERSION_MAX);
        conn_bye(c);
        return rc;
    }
    /* Accept no reply larger than the daemon says it may send. */
    uint64_t maxsz = c->session.limits.message_bytes;
    if (maxsz > 0 && maxsz < KILN_LIMIT_MESSAGE_BYTES)
        nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, (size_t) maxsz);
    return KILN_OK;
}

int kiln_connect(kiln_conn **out, const struct kiln_connect_opts *opts, struct kiln_error *err)
{
    static const struct kiln_connect_opts defaults;
    const struct kiln_connect_opts *o = opts ? opts : &defaults;
    if (out == NULL)
        return client_error_set(err, KILN_EARG, "out", "kiln_connect needs somewhere to write");
    *out = NULL;
    int rc = conn_check_opts(o, err);
    if (rc != KILN_OK)
        return rc;

    struct kiln_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return client_error_set(err, KILN_ENOMEM, NULL, "out of memory");
    msgpack_sbuffer_init(&c->sb);
    c->timeout_ms = o->timeout_ms == 0  ? KILN_TIMEOUT_DEFAULT_MS
                    : o->timeout_ms < 0 ? NNG_DURATION_INFINITE
                                        : o->timeout_ms;
    if ((rc = conn_resolve_address(c, o->address, err)) != KILN_OK ||
        (rc = conn_dial(c, err)) != KILN_OK || (rc = conn_hello(c, o, err)) != KILN_OK) {
        conn_free(c);
        return rc;
    }
    *out = c;
    return KILN_OK;
}

void kiln_close(kiln_conn *c)
{
    if (c == NULL)
        return;
    conn_bye(c);
    conn_free(c);
}

const char *kiln_conn_address(const kiln_conn *c)
{
    return c ? c->address : NULL;
}

const struct kiln_session *kiln_conn_session(const kiln_conn *c)
{
    return c ? &c->session : NULL;
}

uint64_t kiln_conn_new_id(kiln_conn *c)
{
    /* Relaxed is enough: callers need distinct ids, not an order. */
    return c ? __atomic_add_fetch(&c->last_id, 1, __ATOMIC_RELAXED) : 0;
}
