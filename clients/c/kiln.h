/* kiln.h: libkiln, the C client of the kiln compute daemon.
 *
 * This is the one public header of the C client. It speaks protocol v1
 * (protocol/PROTOCOL.md) to a kilnd over NNG; nothing of NNG or msgpack
 * shows through it, so a program needs only this header, kiln_err.h and
 * the library.
 *
 * Connections. kiln_connect() dials a daemon and opens a session (HELLO);
 * every later call is one request and its reply on that session, and
 * kiln_close() ends it. A connection is used by one thread at a time:
 * calls on one kiln_conn must not overlap (the library takes no lock), but
 * different connections may be used from different threads at once. The
 * library has no global state.
 *
 * Blocking. Every call that talks to the daemon blocks until the reply
 * arrives, for at most the connection's timeout (connect option
 * timeout_ms, 10 s by default) to send the request and as long again to
 * receive the reply. If the daemon goes away after kiln_connect(), the
 * library keeps redialling in the background and calls fail with
 * KILN_ETIMEDOUT until it is back (the session is then gone, and calls
 * that need one fail with KILN_ESESSION). Dialling an address where
 * nothing listens fails at once with KILN_ECONNECT; it never retries.
 * (A tcp:// host that drops packets rather than refusing is the one
 * exception: the dial then lasts as long as the OS's connect timeout.)
 *
 * Errors. Every function that can fail returns KILN_OK (0) or a code of
 * enum kiln_err (kiln_err.h): codes from 100 up arose in this library,
 * codes below 100 were sent by the daemon (except KILN_ENOMEM, which also
 * reports the client's own allocation failures). If the caller passes a
 * struct kiln_error, it is filled on failure with the code, the field at
 * fault (when the daemon named one) and a message that names the culprit
 * (the address, the limit, the daemon's own words); it is left untouched
 * on success. kiln_err_name() and kiln_err_str() (kiln_err.h) give a
 * code's stable name and a general description.
 *
 * Ownership. Structs the caller passes in stay the caller's. A kiln_conn
 * belongs to the caller from kiln_connect() until kiln_close(); strings
 * and structs it hands out (kiln_conn_address(), kiln_conn_session())
 * live as long as the connection.
 *
 * Growth. Option and result structs are read and filled field by field;
 * new fields are only ever added at the end, and a zeroed option struct
 * always means "all defaults". The library is static for now; when it
 * becomes a shared library, only functions marked KILN_API are exported.
 */
#ifndef KILN_H
#define KILN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_API __attribute__((visibility("default")))

#define KILN_TIMEOUT_DEFAULT_MS 10000 /* send and receive timeout when none is given */
#define KILN_ERROR_FIELD_MAX    64    /* bytes of kiln_error.field, with NUL */
#define KILN_ERROR_MESSAGE_MAX  256   /* bytes of kiln_error.message, with NUL */
#define KILN_NAME_MAX           128   /* bytes of a client or server name, without NUL */
#define KILN_ERROR_CODES        100   /* wire codes are 0..99: size of per-code tables */

/* What went wrong, filled by a failing call. */
struct kiln_error {
    int code;                             /* enum kiln_err */
    int64_t node;                         /* the graph node at fault, or -1 */
    char field[KILN_ERROR_FIELD_MAX];     /* "body.client", or "" for the whole message */
    char message[KILN_ERROR_MESSAGE_MAX]; /* one line, no trailing newline */
};

/* How to connect. A zeroed struct (or NULL) means every default. */
struct kiln_connect_opts {
    const char *address; /* "ipc://...", "tcp://host:port"; NULL: $KILN_ADDRESS or
                            ipc://<runtime dir>/kilnd.sock, the latter only
                            if the directory is safe (see kiln_connect) */
    int timeout_ms;      /* per send and per receive; 0: KILN_TIMEOUT_DEFAULT_MS,
                            < 0: wait forever */
    const char *client;  /* name shown by the daemon, 1..KILN_NAME_MAX bytes; NULL: "libkiln" */
    const char *token;   /* auth token for daemons that require one; NULL: none */
};

/* The limits a daemon enforces, as it announced them in HELLO. */
struct kiln_limits {
    uint64_t message_bytes, depth, container_items, objects, string, name, token;
    uint64_t nodes, rank, dim, elements, var_ids;
    uint64_t node_inputs, expr_bytes, expr_nodes, expr_depth, conds;
};

/* The session kiln_connect() opened. */
struct kiln_session {
    uint64_t id;                    /* never 0 */
    uint32_t proto;                 /* protocol version in use */
    char server[KILN_NAME_MAX + 1]; /* "kilnd 0.1.0" */
    uint64_t idle_timeout_ms;       /* the daemon ends the session after this long idle */
    struct kiln_limits limits;
};

/* Daemon-wide counters, as STATUS reports them. */
struct kiln_status {
    char server[KILN_NAME_MAX + 1];
    uint32_t proto_min, proto_max; /* versions the daemon speaks */
    int64_t pid;
    uint64_t uptime_ms;
    uint64_t sessions;                 /* open now */
    uint64_t sessions_total;           /* opened since start */
    uint64_t requests;                 /* answered since start, errors included */
    uint64_t workers;                  /* worker threads */
    uint64_t errors[KILN_ERROR_CODES]; /* error replies sent, indexed by code */
    uint64_t mem_in_use;               /* bytes held for clients */
    uint64_t mem_budget;               /* bytes allowed; 0: no budget */
    uint64_t mem_rss;                  /* resident set size of the daemon */
    bool draining;                     /* shutting down: takes no new sessions */
};

typedef struct kiln_conn kiln_conn;

/* Dial the daemon at opts->address and open a session. On success *out is
 * a new connection, to be given to kiln_close(). On failure *out is NULL
 * and the code is one of: KILN_EARG (bad option: the field names it),
 * KILN_ECONNECT (nothing listens at the address; fails at once),
 * KILN_ETIMEDOUT (the daemon did not answer HELLO in time), KILN_EPROTO
 * (a reply that breaks the protocol, or a daemon that chose a protocol
 * version outside the client's range: that session is ended with a BYE),
 * KILN_EIO, KILN_ENOMEM, or the daemon's refusal (KILN_EVERSION,
 * KILN_EAUTH, KILN_EBUSY, KILN_ESHUTDOWN, ...). Blocks for the dial
 * (see above) and then at most twice the timeout, plus at most 2 s for
 * the BYE that ends a session opened with a foreign protocol version.
 *
 * The default address is vetted before it is dialled. When neither
 * opts->address nor $KILN_ADDRESS names an address, the runtime directory
 * must be a directory (not a symlink) owned by the caller's user id with
 * no group or other permissions; otherwise nothing is dialled and the
 * call fails with KILN_ECONNECT, field "address", and a message naming
 * the directory and the fault, because another local user may have
 * created it to receive the token. A runtime directory that does not
 * exist gives KILN_ECONNECT with an empty field, like any address where
 * nothing listens. Addresses named explicitly are dialled unchecked. */
KILN_API int kiln_connect(kiln_conn **out, const struct kiln_connect_opts *opts,
                          struct kiln_error *err);

/* One PING round trip on the session (it also keeps the session from
 * going idle). Time it from the outside to measure latency. Fails with
 * KILN_ETIMEDOUT, KILN_ESESSION (the session expired), KILN_ESHUTDOWN,
 * KILN_EPROTO, KILN_EIO, KILN_ENOMEM or KILN_EARG (c is NULL). */
KILN_API int kiln_ping(kiln_conn *c, struct kiln_error *err);

/* Fetch the daemon's counters into *st (fully overwritten on success,
 * untouched on failure). Fails like kiln_ping(). */
KILN_API int kiln_status(kiln_conn *c, struct kiln_status *st, struct kiln_error *err);

/* End the session (a best-effort BYE, waiting at most the timeout, or
 * 1 s if that is shorter) and free the connection. Safe on NULL. */
KILN_API void kiln_close(kiln_conn *c);

/* The address used when none is given: $KILN_ADDRESS if set and not
 * empty, else ipc://<runtime dir>/kilnd.sock, where the runtime dir is
 * $XDG_RUNTIME_DIR/kiln or /tmp/kiln-<uid>. Writes it to buf; returns
 * KILN_OK, or KILN_ELIMIT if it does not fit in n bytes. It only names
 * the address: the runtime directory is checked by kiln_connect() when
 * given no address, not here. (Implemented by the protocol library, which
 * kilnd shares; proto.h declares the same.) */
KILN_API int kiln_default_address(char *buf, size_t n);

/* The address the connection dialled. */
KILN_API const char *kiln_conn_address(const kiln_conn *c);

/* The session opened by kiln_connect(). */
KILN_API const struct kiln_session *kiln_conn_session(const kiln_conn *c);

#ifdef __cplusplus
}
#endif

#endif
