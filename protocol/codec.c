/* codec.c: typed decoding of requests, on top of the structural scan.
 *
 * Requests are strict: an unknown or repeated field, a wrong type or a
 * value out of range is refused with an error naming the field, so that a
 * client mistake surfaces at once instead of being silently ignored. The
 * field helpers here are shared with the reply decoder (reply.c), which is
 * lenient about fields it does not know. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_impl.h"

int proto_unpack(msgpack_unpacked *up, const void *buf, size_t len, struct proto_error *err)
{
    int rc = proto_scan(buf, len, err);
    if (rc != KILN_OK)
        return rc;
    msgpack_unpacked_init(up);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(up, buf, len, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        msgpack_unpacked_destroy(up);
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory unpacking the message");
    }
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        /* The scan accepted what msgpack-c refused: a bug on our side. */
        msgpack_unpacked_destroy(up);
        return proto_error_set(err, KILN_EINTERNAL, "",
                               "msgpack-c refused a message the scan accepted (%d)", (int) ur);
    }
    return KILN_OK;
}

static bool key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

/* Copy a key for an error message, replacing anything unprintable. */
static void key_text(const msgpack_object *k, char *dst, size_t size)
{
    size_t n = k->via.str.size < size - 1 ? k->via.str.size : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) k->via.str.ptr[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char) c : '?';
    }
    dst[n] = '\0';
}

int proto_check_keys(const msgpack_object *map, const char *const *allowed, size_t nallowed,
                     bool allow_unknown, const char *path, struct proto_error *err)
{
    uint32_t seen = 0;
    assert(nallowed <= 32); /* `seen` has one bit per allowed key */
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return proto_error_set(err, allow_unknown ? KILN_EPROTO : KILN_ETYPE, path,
                                   "key #%u of %s is not a string", i, path);
        size_t j = 0;
        while (j < nallowed && !key_is(k, allowed[j]))
            j++;
        char name[48];
        key_text(k, name, sizeof(name));
        if (j == nallowed) {
            if (allow_unknown)
                continue;
            char field[PROTO_FIELD_MAX];
            snprintf(field, sizeof(field), "%s.%s", path, name);
            return proto_error_set(err, KILN_EFIELD, field, "%s has no field \"%s\"", path,
                                   name);
        }
        if (seen & (UINT32_C(1) << j)) {
            char field[PROTO_FIELD_MAX];
            snprintf(field, sizeof(field), "%s.%s", path, allowed[j]);
            return proto_error_set(err, allow_unknown ? KILN_EPROTO : KILN_EFIELD, field,
                                   "field \"%s\" is given twice", allowed[j]);
        }
        seen |= UINT32_C(1) << j;
    }
    return KILN_OK;
}

const msgpack_object *proto_map_get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

static int missing(const char *field, int code_bad, struct proto_error *err)
{
    return proto_error_set(err, code_bad == KILN_EPROTO ? KILN_EPROTO : KILN_EMISSING, field,
                           "required field %s is missing", field);
}

int proto_get_uint(const msgpack_object *o, const char *field, uint64_t max, uint64_t *out,
               int code_bad, struct proto_error *err)
{
    if (o == NULL)
        return missing(field, code_bad, err);
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return proto_error_set(err, code_bad == KILN_EPROTO ? KILN_EPROTO : KILN_EVALUE, field,
                               "%s must not be negative", field);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return proto_error_set(err, code_bad, field, "%s must be an unsigned integer", field);
    if (o->via.u64 > max)
        return proto_error_set(err, code_bad == KILN_EPROTO ? KILN_EPROTO : KILN_EVALUE, field,
                               "%s is %llu, above its maximum %llu", field,
                               (unsigned long long) o->via.u64, (unsigned long long) max);
    *out = o->via.u64;
    return KILN_OK;
}

int proto_get_int(const msgpack_object *o, const char *field, int64_t *out, int code_bad,
              struct proto_error *err)
{
    if (o == NULL)
        return missing(field, code_bad, err);
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return KILN_OK;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t) INT64_MAX) {
        *out = (int64_t) o->via.u64;
        return KILN_OK;
    }
    return proto_error_set(err, code_bad, field, "%s must be a 64-bit signed integer", field);
}

int proto_get_bool(const msgpack_object *o, const char *field, bool *out, int code_bad,
               struct proto_error *err)
{
    if (o == NULL)
        return missing(field, code_bad, err);
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return proto_error_set(err, code_bad, field, "%s must be a boolean", field);
    *out = o->via.boolean;
    return KILN_OK;
}

int proto_get_str(const msgpack_object *o, const char *field, size_t max, char *dst, int code_bad,
              struct proto_error *err)
{
    if (o == NULL)
        return missing(field, code_bad, err);
    if (o->type != MSGPACK_OBJECT_STR)
        return proto_error_set(err, code_bad, field, "%s must be a string", field);
    if (o->via.str.size > max)
        return proto_error_set(err, code_bad == KILN_EPROTO ? KILN_EPROTO : KILN_ELIMIT, field,
                               "%s is %u bytes, above its limit of %zu", field, o->via.str.size,
                               max);
    if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
        return proto_error_set(err, code_bad == KILN_EPROTO ? KILN_EPROTO : KILN_EVALUE, field,
                               "%s contains a NUL byte", field);
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return KILN_OK;
}

int proto_get_str_trunc(const msgpack_object *o, const char *field, char *dst, size_t size,
                    int code_bad, struct proto_error *err)
{
    if (o == NULL)
        return missing(field, code_bad, err);
    if (o->type != MSGPACK_OBJECT_STR)
        return proto_error_set(err, code_bad, field, "%s must be a string", field);
    size_t n = o->via.str.size < size - 1 ? o->via.str.size : size - 1;
    memcpy(dst, o->via.str.ptr, n);
    dst[n] = '\0';
    /* An embedded NUL simply ends the text early. */
    return KILN_OK;
}

int proto_pack_key(msgpack_packer *pk, const char *key)
{
    size_t n = strlen(key);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, key, n);
}

/* ---- requests ---------------------------------------------------------- */

static int need_session(const struct proto_request *req, struct proto_error *err)
{
    if (req->session == 0)
        return proto_error_set(err, KILN_ESESSION, "session",
                               "%s needs the session id from HELLO", proto_kind_name(req->kind));
    return KILN_OK;
}

static int empty_body(const msgpack_object *body, struct proto_error *err)
{
    return proto_check_keys(body, NULL, 0, false, "body", err);
}

static int decode_hello(struct proto_request *req, const msgpack_object *body,
                        struct proto_error *err)
{
    static const char *const keys[] = {"proto_min", "proto_max", "client", "token"};
    struct proto_hello *h = &req->u.hello;
    uint64_t vmin = 0, vmax = 0;
    int rc;

    if (req->session != 0)
        return proto_error_set(err, KILN_EVALUE, "session", "HELLO must carry session 0");
    if ((rc = proto_check_keys(body, keys, 4, false, "body", err)) != KILN_OK ||
        (rc = proto_get_uint(proto_map_get(body, "proto_min"), "body.proto_min", UINT32_MAX, &vmin,
                         KILN_ETYPE, err)) != KILN_OK ||
        (rc = proto_get_uint(proto_map_get(body, "proto_max"), "body.proto_max", UINT32_MAX, &vmax,
                         KILN_ETYPE, err)) != KILN_OK ||
        (rc = proto_get_str(proto_map_get(body, "client"), "body.client", KILN_LIMIT_NAME, h->client,
                        KILN_ETYPE, err)) != KILN_OK)
        return rc;
    if (vmin == 0)
        return proto_error_set(err, KILN_EVALUE, "body.proto_min", "protocol versions start at 1");
    if (vmax < vmin)
        return proto_error_set(err, KILN_EVALUE, "body.proto_max",
                               "proto_max %llu is below proto_min %llu", (unsigned long long) vmax,
                               (unsigned long long) vmin);
    if (h->client[0] == '\0')
        return proto_error_set(err, KILN_EVALUE, "body.client", "client name is empty");
    h->proto_min = (uint32_t) vmin;
    h->proto_max = (uint32_t) vmax;
    const msgpack_object *tok = proto_map_get(body, "token");
    if (tok != NULL) {
        if ((rc = proto_get_str(tok, "body.token", KILN_LIMIT_TOKEN, h->token, KILN_ETYPE, err)) !=
            KILN_OK)
            return rc;
        h->has_token = true;
    }
    return KILN_OK;
}

static int decode_release(struct proto_request *req, const msgpack_object *body,
                          struct proto_error *err)
{
    static const char *const keys[] = {"vars"};
    int rc;
    if ((rc = need_session(req, err)) != KILN_OK ||
        (rc = proto_check_keys(body, keys, 1, false, "body", err)) != KILN_OK)
        return rc;
    const msgpack_object *vars = proto_map_get(body, "vars");
    if (vars == NULL)
        return proto_error_set(err, KILN_EMISSING, "body.vars", "required field body.vars is missing");
    if (vars->type != MSGPACK_OBJECT_ARRAY)
        return proto_error_set(err, KILN_ETYPE, "body.vars", "body.vars must be an array");
    uint32_t n = vars->via.array.size;
    if (n > KILN_LIMIT_VAR_IDS)
        return proto_error_set(err, KILN_ELIMIT, "body.vars",
                               "body.vars names %u vars, above the var_ids limit %d", n,
                               KILN_LIMIT_VAR_IDS);
    uint64_t *ids = NULL;
    if (n > 0 && (ids = malloc((size_t) n * sizeof(*ids))) == NULL)
        return proto_error_set(err, KILN_ENOMEM, "body.vars", "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        char field[PROTO_FIELD_MAX];
        snprintf(field, sizeof(field), "body.vars[%u]", i);
        if ((rc = proto_get_uint(&vars->via.array.ptr[i], field, UINT64_MAX, &ids[i], KILN_ETYPE,
                             err)) != KILN_OK) {
            free(ids);
            return rc;
        }
    }
    req->u.release.ids = ids;
    req->u.release.count = n;
    return KILN_OK;
}

static int decode_body(struct proto_request *req, const msgpack_object *body,
                       struct proto_error *err)
{
    int rc;
    switch (req->kind) {
    case PROTO_HELLO:
        return decode_hello(req, body, err);
    case PROTO_PING:
    case PROTO_STATUS:
        return empty_body(body, err);
    case PROTO_BYE:
    case PROTO_CANCEL:
        if ((rc = need_session(req, err)) != KILN_OK)
            return rc;
        return empty_body(body, err);
    case PROTO_RELEASE:
        return decode_release(req, body, err);
    case PROTO_SUBMIT:
        if ((rc = need_session(req, err)) != KILN_OK)
            return rc;
        return proto_decode_submit(req, body, err);
    case PROTO_FETCH:
        if ((rc = need_session(req, err)) != KILN_OK)
            return rc;
        return proto_decode_fetch(req, body, err);
    default:
        return proto_error_set(err, KILN_EKIND, "kind", "unknown message kind %d", req->kind);
    }
}

int proto_request_decode(struct proto_request *req, const void *buf, size_t len,
                         struct proto_error *err)
{
    memset(req, 0, sizeof(*req));
    int rc = proto_unpack(&req->unpacked, buf, len, err);
    if (rc != KILN_OK)
        return rc;
    req->has_unpacked = true;

    const msgpack_object *top = &req->unpacked.data;
    uint64_t kind = 0, session = 0;
    if (top->type != MSGPACK_OBJECT_ARRAY) {
        rc = proto_error_set(err, KILN_ETYPE, "",
                             "a request must be the array [kind, session, body]");
        goto fail;
    }
    if (top->via.array.size != 3) {
        rc = proto_error_set(err, KILN_EVALUE, "",
                             "a request must be the array [kind, session, body], not %u elements",
                             top->via.array.size);
        goto fail;
    }
    const msgpack_object *el = top->via.array.ptr;
    if ((rc = proto_get_uint(&el[0], "kind", UINT64_MAX, &kind, KILN_ETYPE, err)) != KILN_OK ||
        (rc = proto_get_uint(&el[1], "session", UINT64_MAX, &session, KILN_ETYPE, err)) != KILN_OK)
        goto fail;
    if (kind == 0 || kind >= PROTO_KIND_END) {
        rc = proto_error_set(err, KILN_EKIND, "kind", "unknown message kind %llu",
                             (unsigned long long) kind);
        goto fail;
    }
    req->kind = (int) kind;
    req->session = session;
    if (el[2].type != MSGPACK_OBJECT_MAP) {
        rc = proto_error_set(err, KILN_ETYPE, "body", "the body of %s must be a map",
                             proto_kind_name(req->kind));
        goto fail;
    }
    req->body = &el[2];
    if ((rc = decode_body(req, req->body, err)) != KILN_OK)
        goto fail;
    return KILN_OK;
fail:
    proto_request_fini(req);
    return rc;
}

void proto_request_fini(struct proto_request *req)
{
    if (req == NULL)
        return;
    if (req->kind == PROTO_RELEASE) {
        free(req->u.release.ids);
    } else if (req->kind == PROTO_SUBMIT) {
        for (uint32_t i = 0; req->u.submit.nodes != NULL && i < req->u.submit.nnodes; i++) {
            free(req->u.submit.nodes[i].conds);
            free(req->u.submit.nodes[i].ints);
        }
        free(req->u.submit.nodes);
        free(req->u.submit.keep);
    } else if (req->kind == PROTO_FETCH) {
        free(req->u.fetch.ids);
    }
    if (req->has_unpacked)
        msgpack_unpacked_destroy(&req->unpacked);
    memset(req, 0, sizeof(*req));
}

/* ---- canonical description (test vectors) ------------------------------ */

void proto_out_add(struct proto_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t used = (size_t) o->len;
    int w = vsnprintf(used < o->n ? o->buf + used : NULL, used < o->n ? o->n - used : 0, fmt, ap);
    va_end(ap);
    if (w > 0)
        o->len += w;
}

void proto_out_quoted(struct proto_out *o, const char *s, size_t len)
{
    proto_out_add(o, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\')
            proto_out_add(o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            proto_out_add(o, "\\x%02x", c);
        else
            proto_out_add(o, "%c", c);
    }
    proto_out_add(o, "\"");
}

int proto_request_describe(const struct proto_request *req, char *buf, size_t n)
{
    struct proto_out o = {.buf = buf, .n = n, .len = 0};
    if (n > 0)
        buf[0] = '\0';
    proto_out_add(&o, "%s session=%llu", proto_kind_name(req->kind),
                  (unsigned long long) req->session);
    switch (req->kind) {
    case PROTO_HELLO:
        proto_out_add(&o, " proto_min=%u proto_max=%u client=", req->u.hello.proto_min,
                      req->u.hello.proto_max);
        proto_out_quoted(&o, req->u.hello.client, strlen(req->u.hello.client));
        proto_out_add(&o, " token=");
        if (req->u.hello.has_token)
            proto_out_quoted(&o, req->u.hello.token, strlen(req->u.hello.token));
        else
            proto_out_add(&o, "-");
        break;
    case PROTO_RELEASE:
        proto_out_add(&o, " vars=[");
        for (uint32_t i = 0; i < req->u.release.count; i++)
            proto_out_add(&o, "%s%llu", i ? "," : "", (unsigned long long) req->u.release.ids[i]);
        proto_out_add(&o, "]");
        break;
    case PROTO_SUBMIT:
        proto_describe_submit(&o, &req->u.submit);
        break;
    case PROTO_FETCH:
        proto_describe_fetch(&o, &req->u.fetch);
        break;
    default:
        break;
    }
    return o.len;
}
