/* kiln_err.h: the one error enum of kiln, shared by the wire and every C API.
 *
 * Numbers are stable forever: they travel in error replies and clients in
 * other languages switch on them. Add new codes at the end of a range; never
 * renumber or reuse one. Codes below 100 may appear on the wire; codes from
 * 100 up are produced by client libraries only (a daemon never sends them).
 */
#ifndef KILN_ERR_H
#define KILN_ERR_H

typedef enum kiln_err {
    KILN_OK = 0,
    /* The request was wrong: fix the client. */
    KILN_EMALFORMED = 1,     /* not one complete msgpack object: truncated, trailing bytes, bad byte */
    KILN_ETYPE = 2,          /* a field or element has the wrong msgpack type */
    KILN_EMISSING = 3,       /* a required field is absent */
    KILN_EFIELD = 4,         /* a field the protocol does not define, or given twice */
    KILN_ELIMIT = 5,         /* a named limit is exceeded (size, count, depth, length) */
    KILN_EVALUE = 6,         /* a value is out of its documented range */
    KILN_EKIND = 7,          /* unknown message kind */
    KILN_EVERSION = 8,       /* no protocol version both sides speak */
    KILN_ESESSION = 9,       /* unknown or expired session, or HELLO missing */
    KILN_EAUTH = 10,         /* token refused */
    KILN_ENOTFOUND = 11,     /* a named var does not exist in this session */
    /* The request was fine but cannot be served now. */
    KILN_ENOMEM = 12,        /* out of memory or over a quota */
    KILN_EBUSY = 13,         /* an admission limit is hit: retry later */
    KILN_EUNSUPPORTED = 14,  /* valid but not supported by this daemon */
    KILN_ESHUTDOWN = 15,     /* the daemon is draining and takes no new work */
    KILN_EINTERNAL = 16,     /* a bug in kilnd: please report it */
    KILN_EEXEC = 17,         /* a step failed while running (names the node and op) */
    KILN_ENOTREADY = 18,     /* a fetched value was not ready within the timeout */
    KILN_EQUOTA = 19,        /* the user's quota (auth.h) does not allow it */
    KILN_EDEVICE = 20,       /* the compute device failed (a sticky CUDA error): the daemon restarts */
    KILN_ERR_WIRE_COUNT,     /* first unused wire code; not itself an error */

    /* Client-side codes: never sent by a daemon. */
    KILN_ECONNECT = 100,     /* no daemon answers at the address */
    KILN_ETIMEDOUT = 101,    /* no reply within the timeout */
    KILN_ECLOSED = 102,      /* the connection or handle is closed */
    KILN_EIO = 103,          /* transport failure (see the message) */
    KILN_EPROTO = 104,       /* the daemon's reply does not follow the protocol */
    KILN_EARG = 105,         /* a C API function was called with a bad argument */
    KILN_ERR_CLIENT_END
} kiln_err;

/* "MALFORMED", "LIMIT", ...: the stable name used on the wire and in logs.
 * Returns "UNKNOWN" for a number that is not a code. Thread-safe. */
const char *kiln_err_name(int code);

/* One sentence describing the code in general. Thread-safe. */
const char *kiln_err_str(int code);

#endif
