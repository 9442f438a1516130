/* client_impl.h: internals of libkiln shared by its files.
 *
 * A connection is an NNG req0 socket dialled to one daemon, the session
 * HELLO opened, and one encode buffer reused by every request (so that a
 * round trip allocates only the NNG messages and the reply's unpack zone).
 * conn.c owns the connection's life, call.c the round trip, error.c the
 * translation of NNG and protocol errors into struct kiln_error, ops.c
 * the public requests that need no graph, graph.c SUBMIT, FETCH and
 * RELEASE, and builder.c the graph builder (kiln_graph).
 */
#ifndef KILN_CLIENT_IMPL_H
#define KILN_CLIENT_IMPL_H

#include <nng/nng.h>

#include "kiln.h"
#include "proto.h"

struct kiln_conn {
    nng_socket sock;
    nng_dialer dialer;
    int timeout_ms;     /* as NNG takes it: > 0, or NNG_DURATION_INFINITE */
    msgpack_sbuffer sb; /* encode buffer, emptied before each request */
    struct kiln_session session;
    char *address;                 /* owned; the address dialled */
    uint64_t last_id;              /* the last id kiln_conn_new_id() gave; atomic */
    struct kiln_warning *warnings; /* owned; the last SUBMIT's */
    size_t nwarnings;
};

/* A decoded reply and the NNG message it points into. */
struct client_reply {
    nng_msg *msg;
    struct proto_reply rep;
};

/* Send the request encoded in c->sb and decode the reply to `kind` into
 * *out. Returns KILN_OK with *out to be given to client_reply_fini(); a
 * daemon error reply returns its code with err filled (and *out holds
 * nothing). Any other failure fills err and leaves nothing to free. */
int client_call(struct kiln_conn *c, int kind, struct client_reply *out, struct kiln_error *err);
void client_reply_fini(struct client_reply *r);

/* Fill err (if non-NULL) and return code. */
int client_error_set(struct kiln_error *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copy a protocol error into err; returns its code. */
int client_error_from_proto(struct kiln_error *err, const struct proto_error *pe);

/* Report a reply that proto_reply_decode() refused, as described by pe:
 * KILN_ENOMEM stays KILN_ENOMEM (our own allocation failed, the daemon is
 * not at fault); any other code becomes KILN_EPROTO, so that a decode
 * failure is never mistaken for a code the daemon sent. Returns the code. */
int client_error_from_decode(struct kiln_error *err, const struct proto_error *pe);

/* Map an NNG error from `what` ("dial", "send", ...) to a kiln code and
 * fill err with a message naming the address. */
int client_error_from_nng(struct kiln_error *err, int nng_rv, const char *what,
                          const char *address);

#endif
