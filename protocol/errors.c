/* errors.c: names and descriptions of the kiln error codes, and the
 * helper that fills a proto_error. The names are part of the protocol
 * (they appear in error replies and logs), so they never change. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

struct err_info {
    int code;
    const char *name;
    const char *desc;
};

static const struct err_info err_table[] = {
    {KILN_OK, "OK", "success"},
    {KILN_EMALFORMED, "MALFORMED", "the message is not one complete msgpack object"},
    {KILN_ETYPE, "TYPE", "a field has the wrong type"},
    {KILN_EMISSING, "MISSING", "a required field is missing"},
    {KILN_EFIELD, "FIELD", "a field is not defined by the protocol or is given twice"},
    {KILN_ELIMIT, "LIMIT", "a protocol limit is exceeded"},
    {KILN_EVALUE, "VALUE", "a value is out of range"},
    {KILN_EKIND, "KIND", "unknown message kind"},
    {KILN_EVERSION, "VERSION", "no protocol version in common"},
    {KILN_ESESSION, "SESSION", "unknown or expired session"},
    {KILN_EAUTH, "AUTH", "authentication refused"},
    {KILN_ENOTFOUND, "NOTFOUND", "no such var in this session"},
    {KILN_ENOMEM, "NOMEM", "out of memory or over quota"},
    {KILN_EBUSY, "BUSY", "an admission limit is reached; retry later"},
    {KILN_EUNSUPPORTED, "UNSUPPORTED", "not supported by this daemon"},
    {KILN_ESHUTDOWN, "SHUTDOWN", "the daemon is shutting down"},
    {KILN_EINTERNAL, "INTERNAL", "internal error in the daemon"},
    {KILN_EEXEC, "EXEC", "a step failed while running"},
    {KILN_ENOTREADY, "NOTREADY", "the value was not ready within the timeout"},
    {KILN_EQUOTA, "QUOTA", "over the user's quota"},
    {KILN_EDEVICE, "DEVICE", "the compute device failed; the daemon restarts"},
    {KILN_ECONNECT, "CONNECT", "no daemon answers at the address"},
    {KILN_ETIMEDOUT, "TIMEDOUT", "no reply within the timeout"},
    {KILN_ECLOSED, "CLOSED", "the connection is closed"},
    {KILN_EIO, "IO", "transport failure"},
    {KILN_EPROTO, "PROTO", "the reply does not follow the protocol"},
    {KILN_EARG, "ARG", "invalid argument"},
};

_Static_assert(sizeof(err_table) / sizeof(err_table[0]) ==
                   (size_t) KILN_ERR_WIRE_COUNT + (KILN_ERR_CLIENT_END - KILN_ECONNECT),
               "every error code needs a name");

static const struct err_info *err_find(int code)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
        if (err_table[i].code == code)
            return &err_table[i];
    return NULL;
}

const char *kiln_err_name(int code)
{
    const struct err_info *e = err_find(code);
    return e ? e->name : "UNKNOWN";
}

const char *kiln_err_str(int code)
{
    const struct err_info *e = err_find(code);
    return e ? e->desc : "unknown error code";
}

int proto_error_set(struct proto_error *e, int code, const char *field, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    e->node = -1;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return code;
}

static const char *const kind_names[PROTO_KIND_END] = {
    [PROTO_HELLO] = "HELLO",   [PROTO_PING] = "PING",       [PROTO_STATUS] = "STATUS",
    [PROTO_SUBMIT] = "SUBMIT", [PROTO_FETCH] = "FETCH",     [PROTO_RELEASE] = "RELEASE",
    [PROTO_BYE] = "BYE",       [PROTO_CANCEL] = "CANCEL",
};

const char *proto_kind_name(int kind)
{
    if (kind <= 0 || kind >= PROTO_KIND_END || kind_names[kind] == NULL)
        return "UNKNOWN";
    return kind_names[kind];
}
