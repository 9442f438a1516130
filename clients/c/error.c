/* error.c: filling struct kiln_error.
 *
 * Every failure a caller sees goes through here, so that the code and the
 * message agree and the message always names the culprit: the address for
 * transport errors, the field for protocol errors. NNG's error numbers are
 * folded into the few kiln codes a caller can act on; the NNG text is
 * kept in the message. */
#include <stdarg.h>
#include <stdio.h>

#include "client_impl.h"

_Static_assert(KILN_ERROR_FIELD_MAX == PROTO_FIELD_MAX, "kiln_error.field mirrors proto_error");
_Static_assert(KILN_ERROR_MESSAGE_MAX == PROTO_MESSAGE_MAX,
               "kiln_error.message mirrors proto_error");
_Static_assert(KILN_ERROR_CODES >= KILN_ERR_WIRE_COUNT && KILN_ERROR_CODES == KILN_ECONNECT,
               "per-code tables cover every wire code");
_Static_assert(KILN_NAME_MAX == KILN_LIMIT_NAME, "names follow the protocol limit");

int client_error_set(struct kiln_error *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->node = -1;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

int client_error_from_proto(struct kiln_error *err, const struct proto_error *pe)
{
    if (err != NULL) {
        err->code = pe->code;
        err->node = pe->node;
        snprintf(err->field, sizeof(err->field), "%s", pe->field);
        snprintf(err->message, sizeof(err->message), "%s",
                 pe->message[0] ? pe->message : kiln_err_str(pe->code));
    }
    return pe->code;
}

int client_error_from_decode(struct kiln_error *err, const struct proto_error *pe)
{
    struct proto_error e = *pe;
    if (e.code != KILN_ENOMEM)
        e.code = KILN_EPROTO;
    return client_error_from_proto(err, &e);
}

int client_error_from_nng(struct kiln_error *err, int nng_rv, const char *what, const char *address)
{
    switch (nng_rv) {
    case NNG_ETIMEDOUT:
        return client_error_set(err, KILN_ETIMEDOUT, NULL, "%s: no answer from %s in time", what,
                                address);
    case NNG_ECONNREFUSED:
    case NNG_ENOENT:
        return client_error_set(err, KILN_ECONNECT, NULL, "no daemon answers at %s (%s)", address,
                                nng_strerror(nng_rv));
    case NNG_ECLOSED:
        return client_error_set(err, KILN_ECLOSED, NULL, "%s: the connection to %s is closed", what,
                                address);
    case NNG_ENOMEM:
        return client_error_set(err, KILN_ENOMEM, NULL, "%s: out of memory", what);
    default:
        return client_error_set(err, KILN_EIO, NULL, "%s on %s failed: %s", what, address,
                                nng_strerror(nng_rv));
    }
}
