/* graph.c: the bodies of SUBMIT and FETCH — typed decoding and their
 * canonical descriptions.
 *
 * A SUBMIT is the largest thing a client sends: up to KILN_LIMIT_NODES
 * node maps, each with fixed-size arrays bounded by the limits of
 * kiln_limits.h. Decoding here checks every type and every limit, and
 * that ids are non-zero, before the allocations it makes (the node
 * array, the keep list, and each node's out-of-line conds and integer
 * lists), all sized by counts already checked. What a
 * node means — which fields its op takes, whether its inputs exist, how
 * many bytes its data should hold — is the daemon's ingest, which has the
 * op table; this layer only guarantees that every field it hands on has
 * the right type and fits its limit. Strings and bin payloads point into
 * the received message (zero-copy).
 *
 * Node fields are read in the fixed order of PROTOCOL.md §8, not in the
 * order the client sent them, so that the first error reported for a
 * node does not depend on how a client's msgpack library orders maps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_impl.h"

size_t proto_dtype_size(uint32_t dtype)
{
    static const uint8_t size[] = {0, 1, 1, 1, 4, 8, 4, 8};
    return dtype < sizeof(size) ? size[dtype] : 0;
}

uint64_t proto_elements(const int64_t *shape, uint32_t rank)
{
    uint64_t n = 1;
    for (uint32_t j = 0; j < rank; j++) {
        uint64_t d = (uint64_t) shape[j];
        if (d == 0)
            return 0;
        if (n > (uint64_t) KILN_LIMIT_ELEMENTS / d)
            n = UINT64_MAX; /* stays saturated: later dims are >= 1 */
        else
            n *= d;
    }
    return n;
}

/* A var id: an unsigned integer, never 0 (0 names no var). */
static int get_id(const msgpack_object *o, const char *field, uint64_t *out,
                  struct proto_error *err)
{
    int rc = proto_get_uint(o, field, UINT64_MAX, out, KILN_ETYPE, err);
    if (rc == KILN_OK && *out == 0)
        return proto_error_set(err, KILN_EVALUE, field, "%s is 0, which is never a var id", field);
    return rc;
}

static int get_u32(const msgpack_object *o, const char *field, uint32_t *out,
                   struct proto_error *err)
{
    uint64_t v = 0;
    int rc = proto_get_uint(o, field, UINT32_MAX, &v, KILN_ETYPE, err);
    *out = (uint32_t) v;
    return rc;
}

/* An array of at most `max` elements; `limit` names the limit in errors. */
static int get_array(const msgpack_object *o, const char *field, uint32_t max, const char *limit,
                     struct proto_error *err)
{
    if (o == NULL)
        return proto_error_set(err, KILN_EMISSING, field, "required field %s is missing", field);
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return proto_error_set(err, KILN_ETYPE, field, "%s must be an array", field);
    if (o->via.array.size > max)
        return proto_error_set(err, KILN_ELIMIT, field, "%s has %u elements, above the %s limit %u",
                               field, o->via.array.size, limit, max);
    return KILN_OK;
}

/* `value` and `overflow_value`: an int, a float or a bool (as 0 or 1). */
static int get_number(const msgpack_object *o, const char *field, struct proto_number *out,
                      struct proto_error *err)
{
    *out = (struct proto_number){0};
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t) INT64_MAX)
            return proto_error_set(err, KILN_EVALUE, field,
                                   "%s is %llu, which no kiln dtype holds", field,
                                   (unsigned long long) o->via.u64);
        out->i = (int64_t) o->via.u64;
        return KILN_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        out->i = o->via.i64;
        return KILN_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        out->is_float = true;
        out->f = o->via.f64;
        return KILN_OK;
    case MSGPACK_OBJECT_BOOLEAN:
        out->i = o->via.boolean ? 1 : 0;
        return KILN_OK;
    default:
        return proto_error_set(err, KILN_ETYPE, field, "%s must be an int, a float or a bool",
                               field);
    }
}

/* An array of expression strings (`exprs`, `conds`), each pointing into
 * the message. */
static int get_exprs(const msgpack_object *o, const char *field, uint32_t max, const char *limit,
                     struct proto_str *dst, uint32_t *count, struct proto_error *err)
{
    int rc = get_array(o, field, max, limit, err);
    if (rc != KILN_OK)
        return rc;
    for (uint32_t j = 0; j < o->via.array.size; j++) {
        const msgpack_object *e = &o->via.array.ptr[j];
        char f[PROTO_FIELD_MAX];
        snprintf(f, sizeof(f), "%s[%u]", field, j);
        if (e->type != MSGPACK_OBJECT_STR)
            return proto_error_set(err, KILN_ETYPE, f, "%s must be a string", f);
        if (e->via.str.size > KILN_LIMIT_EXPR_BYTES)
            return proto_error_set(err, KILN_ELIMIT, f,
                                   "%s is %u bytes, above the expr_bytes limit %d", f,
                                   e->via.str.size, KILN_LIMIT_EXPR_BYTES);
        dst[j] = (struct proto_str){.ptr = e->via.str.ptr, .len = e->via.str.size};
    }
    *count = o->via.array.size;
    return KILN_OK;
}

/* An array of at most `max` int64s (`starts`, `stops`, `steps`, `pads`)
 * into dst. A positive int above the int64 range is VALUE, as for `value`;
 * a float or a bool is TYPE. */
static int get_ints(const msgpack_object *o, const char *field, uint32_t max, const char *limit,
                    int64_t *dst, uint32_t *count, struct proto_error *err)
{
    int rc = get_array(o, field, max, limit, err);
    if (rc != KILN_OK)
        return rc;
    for (uint32_t j = 0; j < o->via.array.size; j++) {
        const msgpack_object *e = &o->via.array.ptr[j];
        char f[PROTO_FIELD_MAX];
        snprintf(f, sizeof(f), "%s[%u]", field, j);
        if (e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            dst[j] = e->via.i64;
        else if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return proto_error_set(err, KILN_ETYPE, f, "%s must be an integer", f);
        else if (e->via.u64 > (uint64_t) INT64_MAX)
            return proto_error_set(err, KILN_EVALUE, f, "%s is %llu, beyond the int64 range", f,
                                   (unsigned long long) e->via.u64);
        else
            dst[j] = (int64_t) e->via.u64;
    }
    *count = o->via.array.size;
    return KILN_OK;
}

/* Node keys, in the order they are read; enum node_key indexes it. */
static const char *const node_keys[] = {
    "id",   "op",     "in",   "dtype",    "shape",     "data",  "value", "dim",           "dist",
    "seed", "offset", "dims", "keepdims", "reduce_op", "exprs", "conds", "overflow_value",
    "starts", "stops", "steps", "pads", "stride", "padding", "dilation", "trans", "groups",
};
enum node_key {
    K_ID, K_OP, K_IN, K_DTYPE, K_SHAPE, K_DATA, K_VALUE, K_DIM, K_DIST,
    K_SEED, K_OFFSET, K_DIMS, K_KEEPDIMS, K_REDUCE_OP, K_EXPRS, K_CONDS, K_OVERFLOW,
    K_STARTS, K_STOPS, K_STEPS, K_PADS, K_STRIDE, K_PADDING, K_DILATION, K_TRANS, K_GROUPS,
    K_COUNT
};
_Static_assert(sizeof(node_keys) / sizeof(node_keys[0]) == K_COUNT, "a name per node key");
/* The PROTO_NODE_* bits follow the keys after "id" and "op", in order. */
_Static_assert(PROTO_NODE_IN == 1u && PROTO_NODE_OVERFLOW == 1u << (K_OVERFLOW - K_IN) &&
                   PROTO_NODE_PADS == 1u << (K_PADS - K_IN) &&
                   PROTO_NODE_GROUPS == 1u << (K_GROUPS - K_IN),
               "field bits follow the key order");

const char *proto_node_field_name(uint32_t bit)
{
    for (int k = K_IN; k < K_COUNT; k++)
        if (bit == 1u << (k - K_IN))
            return node_keys[k];
    return NULL;
}

/* starts, stops, steps and pads: read in key order into one buffer, then
 * copied out of line into a block sized by what the node holds. */
static int decode_ints(const msgpack_object *const *v, char (*f)[PROTO_FIELD_MAX],
                       struct proto_node *nd, struct proto_error *err)
{
    static const struct {
        int key;
        uint32_t bit, max;
        const char *limit;
    } fields[] = {
        {K_STARTS, PROTO_NODE_STARTS, KILN_LIMIT_RANK, "rank"},
        {K_STOPS, PROTO_NODE_STOPS, KILN_LIMIT_RANK, "rank"},
        {K_STEPS, PROTO_NODE_STEPS, KILN_LIMIT_RANK, "rank"},
        {K_PADS, PROTO_NODE_PADS, 2 * KILN_LIMIT_RANK, "2 x rank"},
        {K_STRIDE, PROTO_NODE_STRIDE, 2, "2 (h, w)"},
        {K_PADDING, PROTO_NODE_PADDING, 2, "2 (h, w)"},
        {K_DILATION, PROTO_NODE_DILATION, 2, "2 (h, w)"},
        {K_TRANS, PROTO_NODE_TRANS, 2, "2 (a, b)"},
    };
    enum { NF = sizeof fields / sizeof fields[0] };
    int64_t buf[5 * KILN_LIMIT_RANK + 8];
    uint32_t count[NF] = {0}, total = 0;
    for (int j = 0; j < NF; j++) {
        if (v[fields[j].key] == NULL)
            continue;
        int rc = get_ints(v[fields[j].key], f[fields[j].key], fields[j].max, fields[j].limit,
                          buf + total, &count[j], err);
        if (rc != KILN_OK)
            return rc;
        total += count[j];
        nd->has |= fields[j].bit;
    }
    if (total == 0)
        return KILN_OK;
    /* Freed with the request (proto_request_fini), also on failure. */
    if ((nd->ints = malloc(total * sizeof(*nd->ints))) == NULL)
        return proto_error_set(err, KILN_ENOMEM, "body.nodes", "out of memory");
    memcpy(nd->ints, buf, total * sizeof(*nd->ints));
    const int64_t *p = nd->ints;
    nd->starts = p, nd->nstarts = count[0], p += count[0];
    nd->stops = p, nd->nstops = count[1], p += count[1];
    nd->steps = p, nd->nsteps = count[2], p += count[2];
    nd->pads = p, nd->npads = count[3], p += count[3];
    nd->stride = p, nd->nstride = count[4], p += count[4];
    nd->padding = p, nd->npadding = count[5], p += count[5];
    nd->dilation = p, nd->ndilation = count[6], p += count[6];
    nd->trans = p, nd->ntrans = count[7];
    return KILN_OK;
}

static int decode_node(const msgpack_object *o, uint32_t i, struct proto_node *nd,
                       struct proto_error *err)
{
    char path[PROTO_FIELD_MAX], f[K_COUNT][PROTO_FIELD_MAX];
    const msgpack_object *v[K_COUNT] = {0};
    int rc;

    snprintf(path, sizeof(path), "body.nodes[%u]", i);
    if (o->type != MSGPACK_OBJECT_MAP)
        return proto_error_set(err, KILN_ETYPE, path, "%s must be a map", path);
    if ((rc = proto_check_keys(o, node_keys, K_COUNT, false, path, err)) != KILN_OK)
        return rc;
    /* proto_check_keys proved every key is a known string, given once. */
    for (uint32_t p = 0; p < o->via.map.size; p++) {
        const msgpack_object *k = &o->via.map.ptr[p].key;
        for (int j = 0; j < K_COUNT; j++) {
            if (k->via.str.size == strlen(node_keys[j]) &&
                memcmp(k->via.str.ptr, node_keys[j], k->via.str.size) == 0) {
                v[j] = &o->via.map.ptr[p].val;
                break;
            }
        }
    }
    for (int j = 0; j < K_COUNT; j++)
        if (v[j] != NULL || j == K_ID || j == K_OP) /* id and op may be missing */
            snprintf(f[j], sizeof(f[j]), "body.nodes[%u].%s", i, node_keys[j]);

    if ((rc = get_id(v[K_ID], f[K_ID], &nd->id, err)) != KILN_OK ||
        (rc = get_u32(v[K_OP], f[K_OP], &nd->op, err)) != KILN_OK)
        return rc;
    if (v[K_IN] != NULL) {
        if ((rc = get_array(v[K_IN], f[K_IN], KILN_LIMIT_NODE_INPUTS, "node_inputs", err)) !=
            KILN_OK)
            return rc;
        for (uint32_t j = 0; j < v[K_IN]->via.array.size; j++) {
            char fe[PROTO_FIELD_MAX];
            snprintf(fe, sizeof(fe), "body.nodes[%u].in[%u]", i, j);
            if ((rc = get_id(&v[K_IN]->via.array.ptr[j], fe, &nd->in[j], err)) != KILN_OK)
                return rc;
        }
        nd->nin = v[K_IN]->via.array.size;
        nd->has |= PROTO_NODE_IN;
    }
    if (v[K_DTYPE] != NULL) {
        if ((rc = get_u32(v[K_DTYPE], f[K_DTYPE], &nd->dtype, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_DTYPE;
    }
    if (v[K_SHAPE] != NULL) {
        if ((rc = get_array(v[K_SHAPE], f[K_SHAPE], KILN_LIMIT_RANK, "rank", err)) != KILN_OK)
            return rc;
        for (uint32_t j = 0; j < v[K_SHAPE]->via.array.size; j++) {
            char fe[PROTO_FIELD_MAX];
            uint64_t d = 0;
            snprintf(fe, sizeof(fe), "body.nodes[%u].shape[%u]", i, j);
            if ((rc = proto_get_uint(&v[K_SHAPE]->via.array.ptr[j], fe, UINT64_MAX, &d,
                                     KILN_ETYPE, err)) != KILN_OK)
                return rc;
            if (d > (uint64_t) KILN_LIMIT_DIM)
                return proto_error_set(err, KILN_ELIMIT, fe,
                                       "%s is %llu, above the dim limit %lld", fe,
                                       (unsigned long long) d, (long long) KILN_LIMIT_DIM);
            nd->shape[j] = (int64_t) d;
        }
        nd->rank = v[K_SHAPE]->via.array.size;
        nd->has |= PROTO_NODE_SHAPE;
    }
    if (v[K_DATA] != NULL) {
        if (v[K_DATA]->type != MSGPACK_OBJECT_BIN)
            return proto_error_set(err, KILN_ETYPE, f[K_DATA], "%s must be bin", f[K_DATA]);
        nd->data = v[K_DATA]->via.bin.ptr;
        nd->data_len = v[K_DATA]->via.bin.size;
        nd->has |= PROTO_NODE_DATA;
    }
    if (v[K_VALUE] != NULL) {
        if ((rc = get_number(v[K_VALUE], f[K_VALUE], &nd->value, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_VALUE;
    }
    if (v[K_DIM] != NULL) {
        if ((rc = get_u32(v[K_DIM], f[K_DIM], &nd->dim, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_DIM;
    }
    if (v[K_DIST] != NULL) {
        if ((rc = get_u32(v[K_DIST], f[K_DIST], &nd->dist, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_DIST;
    }
    if (v[K_SEED] != NULL) {
        if ((rc = proto_get_uint(v[K_SEED], f[K_SEED], UINT64_MAX, &nd->seed, KILN_ETYPE, err)) !=
            KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_SEED;
    }
    if (v[K_OFFSET] != NULL) {
        if ((rc = proto_get_uint(v[K_OFFSET], f[K_OFFSET], UINT64_MAX, &nd->offset, KILN_ETYPE,
                                 err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_OFFSET;
    }
    if (v[K_DIMS] != NULL) {
        if ((rc = get_array(v[K_DIMS], f[K_DIMS], KILN_LIMIT_RANK, "rank", err)) != KILN_OK)
            return rc;
        for (uint32_t j = 0; j < v[K_DIMS]->via.array.size; j++) {
            char fe[PROTO_FIELD_MAX];
            uint64_t d = 0;
            snprintf(fe, sizeof(fe), "body.nodes[%u].dims[%u]", i, j);
            /* A dimension number: above rank - 1 it can name no dimension. */
            if ((rc = proto_get_uint(&v[K_DIMS]->via.array.ptr[j], fe, KILN_LIMIT_RANK - 1, &d,
                                     KILN_ETYPE, err)) != KILN_OK)
                return rc;
            nd->dims[j] = (uint32_t) d;
        }
        nd->ndims = v[K_DIMS]->via.array.size;
        nd->has |= PROTO_NODE_DIMS;
    }
    if (v[K_KEEPDIMS] != NULL) {
        if ((rc = proto_get_bool(v[K_KEEPDIMS], f[K_KEEPDIMS], &nd->keepdims, KILN_ETYPE, err)) !=
            KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_KEEPDIMS;
    }
    if (v[K_REDUCE_OP] != NULL) {
        if ((rc = get_u32(v[K_REDUCE_OP], f[K_REDUCE_OP], &nd->reduce_op, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_REDUCE_OP;
    }
    if (v[K_EXPRS] != NULL) {
        if ((rc = get_exprs(v[K_EXPRS], f[K_EXPRS], KILN_LIMIT_RANK, "rank", nd->exprs,
                            &nd->nexprs, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_EXPRS;
    }
    if (v[K_CONDS] != NULL) {
        if ((rc = get_array(v[K_CONDS], f[K_CONDS], KILN_LIMIT_CONDS, "conds", err)) != KILN_OK)
            return rc;
        uint32_t nc = v[K_CONDS]->via.array.size;
        /* Freed with the request (proto_request_fini), also on failure. */
        if (nc > 0 && (nd->conds = calloc(nc, sizeof(*nd->conds))) == NULL)
            return proto_error_set(err, KILN_ENOMEM, f[K_CONDS], "out of memory");
        if ((rc = get_exprs(v[K_CONDS], f[K_CONDS], KILN_LIMIT_CONDS, "conds", nd->conds,
                            &nd->nconds, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_CONDS;
    }
    if (v[K_OVERFLOW] != NULL) {
        if ((rc = get_number(v[K_OVERFLOW], f[K_OVERFLOW], &nd->overflow, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_OVERFLOW;
    }
    if (v[K_GROUPS] != NULL) {
        if ((rc = get_u32(v[K_GROUPS], f[K_GROUPS], &nd->groups, err)) != KILN_OK)
            return rc;
        nd->has |= PROTO_NODE_GROUPS;
    }
    return decode_ints(v, f, nd, err);
}

int proto_decode_submit(struct proto_request *req, const msgpack_object *body,
                        struct proto_error *err)
{
    static const char *const keys[] = {"nodes", "keep", "device", "tf32"};
    struct proto_submit *s = &req->u.submit;
    int rc;

    if ((rc = proto_check_keys(body, keys, 4, false, "body", err)) != KILN_OK)
        return rc;
    const msgpack_object *tf32 = proto_map_get(body, "tf32");
    if (tf32 != NULL && (rc = proto_get_bool(tf32, "body.tf32", &s->tf32, KILN_ETYPE, err)) != KILN_OK)
        return rc;
    const msgpack_object *device = proto_map_get(body, "device");
    if (device != NULL) {
        char name[8];
        if ((rc = proto_get_str(device, "body.device", sizeof name - 1, name, KILN_ETYPE, err)) !=
            KILN_OK)
            return rc;
        if (strcmp(name, "cpu") == 0)
            s->device = PROTO_DEVICE_CPU;
        else if (strcmp(name, "cuda") == 0)
            s->device = PROTO_DEVICE_CUDA;
        else
            return proto_error_set(err, KILN_EVALUE, "body.device",
                                   "body.device is \"%s\": \"cpu\" or \"cuda\"", name);
    }
    /* Both counts are checked before anything is allocated. */
    const msgpack_object *nodes = proto_map_get(body, "nodes");
    const msgpack_object *keep = proto_map_get(body, "keep");
    if ((rc = get_array(nodes, "body.nodes", KILN_LIMIT_NODES, "nodes", err)) != KILN_OK)
        return rc;
    if (nodes->via.array.size == 0)
        return proto_error_set(err, KILN_EVALUE, "body.nodes", "a graph has at least one node");
    if ((rc = get_array(keep, "body.keep", KILN_LIMIT_VAR_IDS, "var_ids", err)) != KILN_OK)
        return rc;

    uint32_t n = nodes->via.array.size, nkeep = keep->via.array.size;
    if ((s->nodes = calloc(n, sizeof(*s->nodes))) == NULL)
        return proto_error_set(err, KILN_ENOMEM, "body.nodes", "out of memory for %u nodes", n);
    s->nnodes = n; /* so that proto_request_fini frees what nodes allocate, on failure too */
    if (nkeep > 0 && (s->keep = malloc((size_t) nkeep * sizeof(*s->keep))) == NULL)
        return proto_error_set(err, KILN_ENOMEM, "body.keep", "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = decode_node(&nodes->via.array.ptr[i], i, &s->nodes[i], err)) != KILN_OK) {
            if (err != NULL)
                err->node = i;
            return rc;
        }
    }
    for (uint32_t i = 0; i < nkeep; i++) {
        char f[PROTO_FIELD_MAX];
        snprintf(f, sizeof(f), "body.keep[%u]", i);
        if ((rc = get_id(&keep->via.array.ptr[i], f, &s->keep[i], err)) != KILN_OK)
            return rc;
    }
    s->nnodes = n;
    s->nkeep = nkeep;
    return KILN_OK;
}

int proto_decode_fetch(struct proto_request *req, const msgpack_object *body,
                       struct proto_error *err)
{
    static const char *const keys[] = {"vars", "timeout_ms"};
    struct proto_fetch *f = &req->u.fetch;
    int rc;

    if ((rc = proto_check_keys(body, keys, 2, false, "body", err)) != KILN_OK)
        return rc;
    const msgpack_object *vars = proto_map_get(body, "vars");
    const msgpack_object *timeout = proto_map_get(body, "timeout_ms");
    if ((rc = get_array(vars, "body.vars", KILN_LIMIT_VAR_IDS, "var_ids", err)) != KILN_OK)
        return rc;
    f->timeout_ms = KILN_FETCH_TIMEOUT_DEFAULT_MS;
    if (timeout != NULL && (rc = proto_get_uint(timeout, "body.timeout_ms",
                                                KILN_FETCH_TIMEOUT_MAX_MS, &f->timeout_ms,
                                                KILN_ETYPE, err)) != KILN_OK)
        return rc;
    uint32_t n = vars->via.array.size;
    if (n > 0 && (f->ids = malloc((size_t) n * sizeof(*f->ids))) == NULL)
        return proto_error_set(err, KILN_ENOMEM, "body.vars", "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        char fe[PROTO_FIELD_MAX];
        snprintf(fe, sizeof(fe), "body.vars[%u]", i);
        if ((rc = get_id(&vars->via.array.ptr[i], fe, &f->ids[i], err)) != KILN_OK)
            return rc;
    }
    f->count = n;
    return KILN_OK;
}

/* ---- canonical descriptions (PROTOCOL.md §7) --------------------------- */

static void out_ids(struct proto_out *o, const char *name, const uint64_t *ids, uint32_t n)
{
    proto_out_add(o, " %s=[", name);
    for (uint32_t i = 0; i < n; i++)
        proto_out_add(o, "%s%llu", i ? "," : "", (unsigned long long) ids[i]);
    proto_out_add(o, "]");
}

static void out_ints(struct proto_out *o, const char *name, const int64_t *v, uint32_t n)
{
    proto_out_add(o, " %s=[", name);
    for (uint32_t i = 0; i < n; i++)
        proto_out_add(o, "%s%lld", i ? "," : "", (long long) v[i]);
    proto_out_add(o, "]");
}

static void out_number(struct proto_out *o, const char *name, const struct proto_number *v)
{
    if (!v->is_float)
        proto_out_add(o, " %s=%lld", name, (long long) v->i);
    else if (isnan(v->f))
        proto_out_add(o, " %s=float:nan", name);
    else if (isinf(v->f))
        proto_out_add(o, " %s=float:%sinf", name, v->f < 0 ? "-" : "");
    else
        proto_out_add(o, " %s=float:%.17g", name, v->f);
}

static void out_strs(struct proto_out *o, const char *name, const struct proto_str *s, uint32_t n)
{
    proto_out_add(o, " %s=[", name);
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            proto_out_add(o, ",");
        proto_out_quoted(o, s[i].ptr, s[i].len);
    }
    proto_out_add(o, "]");
}

/* Lower-case hex, written straight into the buffer: `data` may be large,
 * and once the buffer is full only the length is counted. (The length
 * cannot overflow an int: a description is at most about four times the
 * message, which is at most KILN_LIMIT_MESSAGE_BYTES.) */
static void out_hex(struct proto_out *o, const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        if ((size_t) o->len + 1 >= o->n) {
            o->len += (int) (2 * (len - i));
            return;
        }
        size_t used = (size_t) o->len;
        o->buf[used] = digits[p[i] >> 4];
        if (used + 2 < o->n) {
            o->buf[used + 1] = digits[p[i] & 15];
            o->buf[used + 2] = '\0';
        } else {
            o->buf[used + 1] = '\0';
        }
        o->len += 2;
    }
}

static void describe_node(struct proto_out *o, const struct proto_node *nd)
{
    proto_out_add(o, " {id=%llu op=%u", (unsigned long long) nd->id, nd->op);
    if (nd->has & PROTO_NODE_IN)
        out_ids(o, "in", nd->in, nd->nin);
    if (nd->has & PROTO_NODE_DTYPE)
        proto_out_add(o, " dtype=%u", nd->dtype);
    if (nd->has & PROTO_NODE_SHAPE) {
        proto_out_add(o, " shape=[");
        for (uint32_t j = 0; j < nd->rank; j++)
            proto_out_add(o, "%s%lld", j ? "," : "", (long long) nd->shape[j]);
        proto_out_add(o, "]");
    }
    if (nd->has & PROTO_NODE_DATA) {
        proto_out_add(o, " data=0x");
        out_hex(o, nd->data, nd->data_len);
    }
    if (nd->has & PROTO_NODE_VALUE)
        out_number(o, "value", &nd->value);
    if (nd->has & PROTO_NODE_DIM)
        proto_out_add(o, " dim=%u", nd->dim);
    if (nd->has & PROTO_NODE_DIST)
        proto_out_add(o, " dist=%u", nd->dist);
    if (nd->has & PROTO_NODE_SEED)
        proto_out_add(o, " seed=%llu", (unsigned long long) nd->seed);
    if (nd->has & PROTO_NODE_OFFSET)
        proto_out_add(o, " offset=%llu", (unsigned long long) nd->offset);
    if (nd->has & PROTO_NODE_DIMS) {
        proto_out_add(o, " dims=[");
        for (uint32_t j = 0; j < nd->ndims; j++)
            proto_out_add(o, "%s%u", j ? "," : "", nd->dims[j]);
        proto_out_add(o, "]");
    }
    if (nd->has & PROTO_NODE_KEEPDIMS)
        proto_out_add(o, " keepdims=%s", nd->keepdims ? "true" : "false");
    if (nd->has & PROTO_NODE_REDUCE_OP)
        proto_out_add(o, " reduce_op=%u", nd->reduce_op);
    if (nd->has & PROTO_NODE_EXPRS)
        out_strs(o, "exprs", nd->exprs, nd->nexprs);
    if (nd->has & PROTO_NODE_CONDS)
        out_strs(o, "conds", nd->conds, nd->nconds);
    if (nd->has & PROTO_NODE_OVERFLOW)
        out_number(o, "overflow_value", &nd->overflow);
    if (nd->has & PROTO_NODE_STARTS)
        out_ints(o, "starts", nd->starts, nd->nstarts);
    if (nd->has & PROTO_NODE_STOPS)
        out_ints(o, "stops", nd->stops, nd->nstops);
    if (nd->has & PROTO_NODE_STEPS)
        out_ints(o, "steps", nd->steps, nd->nsteps);
    if (nd->has & PROTO_NODE_PADS)
        out_ints(o, "pads", nd->pads, nd->npads);
    if (nd->has & PROTO_NODE_STRIDE)
        out_ints(o, "stride", nd->stride, nd->nstride);
    if (nd->has & PROTO_NODE_PADDING)
        out_ints(o, "padding", nd->padding, nd->npadding);
    if (nd->has & PROTO_NODE_DILATION)
        out_ints(o, "dilation", nd->dilation, nd->ndilation);
    if (nd->has & PROTO_NODE_TRANS)
        out_ints(o, "trans", nd->trans, nd->ntrans);
    if (nd->has & PROTO_NODE_GROUPS)
        proto_out_add(o, " groups=%u", nd->groups);
    proto_out_add(o, "}");
}

void proto_describe_submit(struct proto_out *o, const struct proto_submit *s)
{
    proto_out_add(o, " nodes=%u", s->nnodes);
    out_ids(o, "keep", s->keep, s->nkeep);
    for (uint32_t i = 0; i < s->nnodes; i++)
        describe_node(o, &s->nodes[i]);
}

void proto_describe_fetch(struct proto_out *o, const struct proto_fetch *f)
{
    out_ids(o, "vars", f->ids, f->count);
    proto_out_add(o, " timeout_ms=%llu", (unsigned long long) f->timeout_ms);
}
