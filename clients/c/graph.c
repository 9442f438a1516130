/* graph.c: the graph requests of the public API — SUBMIT, FETCH, RELEASE
 * — and the dtype table they need.
 *
 * struct kiln_node is the caller's mirror of the wire node; it is turned
 * into the protocol library's struct proto_node here and encoded by
 * proto_encode_submit(), so the wire format lives in one place. Before
 * that every node is checked for what the encoder would refuse without
 * saying where, so that a bad argument is reported with the node and
 * field the daemon would have named. Fetched values point into the reply
 * message; they are copied into one caller-owned block (tensor headers
 * first, then each tensor's data on a 16-byte boundary) so that a single
 * kiln_tensors_free() releases everything and the data is aligned for
 * any element type, which the message never guarantees. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

/* The public constants are the protocol's, restated so that kiln.h needs
 * no protocol header. */
_Static_assert(KILN_MAX_RANK == KILN_LIMIT_RANK, "rank");
_Static_assert(KILN_MAX_INPUTS == KILN_LIMIT_NODE_INPUTS, "node_inputs");
_Static_assert(KILN_MAX_CONDS == KILN_LIMIT_CONDS, "conds");
_Static_assert(KILN_MAX_EXPR == KILN_LIMIT_EXPR_BYTES, "expr_bytes");
_Static_assert(KILN_FETCH_WAIT_MAX == KILN_FETCH_TIMEOUT_MAX_MS, "fetch timeout");
_Static_assert(KILN_WARNINGS_MAX == PROTO_WARNINGS_MAX, "warnings");
/* kiln_node.has bits are the wire's, so they pass through unchanged. */
#define GRAPH_SAME_BIT(k, p)                                                                       \
    _Static_assert((unsigned) KILN_NODE_##k == (unsigned) PROTO_NODE_##p, #k)
GRAPH_SAME_BIT(IN, IN);
GRAPH_SAME_BIT(DTYPE, DTYPE);
GRAPH_SAME_BIT(SHAPE, SHAPE);
GRAPH_SAME_BIT(DATA, DATA);
GRAPH_SAME_BIT(VALUE, VALUE);
GRAPH_SAME_BIT(DIM, DIM);
GRAPH_SAME_BIT(DIST, DIST);
GRAPH_SAME_BIT(SEED, SEED);
GRAPH_SAME_BIT(OFFSET, OFFSET);
GRAPH_SAME_BIT(DIMS, DIMS);
GRAPH_SAME_BIT(KEEPDIMS, KEEPDIMS);
GRAPH_SAME_BIT(REDUCE_OP, REDUCE_OP);
GRAPH_SAME_BIT(EXPRS, EXPRS);
GRAPH_SAME_BIT(CONDS, CONDS);
GRAPH_SAME_BIT(OVERFLOW_VALUE, OVERFLOW);
GRAPH_SAME_BIT(STARTS, STARTS);
GRAPH_SAME_BIT(STOPS, STOPS);
GRAPH_SAME_BIT(STEPS, STEPS);
GRAPH_SAME_BIT(PADS, PADS);
GRAPH_SAME_BIT(STRIDE, STRIDE);
GRAPH_SAME_BIT(PADDING, PADDING);
GRAPH_SAME_BIT(DILATION, DILATION);
GRAPH_SAME_BIT(TRANS, TRANS);
GRAPH_SAME_BIT(GROUPS, GROUPS);

#define GRAPH_NODE_ALL ((uint32_t) KILN_NODE_GROUPS * 2 - 1)
#define GRAPH_ALIGN    16

static const struct {
    const char *name;
    size_t size;
} graph_dtypes[] = {
    [KILN_DTYPE_BOOL] = {"bool", 1},
    [KILN_DTYPE_INT8] = {"int8", 1},
    [KILN_DTYPE_UINT8] = {"uint8", 1},
    [KILN_DTYPE_INT32] = {"int32", 4},
    [KILN_DTYPE_INT64] = {"int64", 8},
    [KILN_DTYPE_FLOAT32] = {"float32", 4},
    [KILN_DTYPE_FLOAT64] = {"float64", 8},
    [8] = {"float16", 0},
    [9] = {"bfloat16", 0},
};

size_t kiln_dtype_size(int dtype)
{
    if (dtype <= 0 || dtype >= (int) (sizeof(graph_dtypes) / sizeof(graph_dtypes[0])))
        return 0;
    return graph_dtypes[dtype].size;
}

const char *kiln_dtype_name(int dtype)
{
    if (dtype <= 0 || dtype >= (int) (sizeof(graph_dtypes) / sizeof(graph_dtypes[0])))
        return NULL;
    return graph_dtypes[dtype].name;
}

/* Fill err for node i's `what` ("shape[1]", or "" for the node) and
 * return KILN_EARG. */
__attribute__((format(printf, 4, 5))) static int
graph_bad_node(struct kiln_error *err, size_t i, const char *what, const char *fmt, ...)
{
    char field[KILN_ERROR_FIELD_MAX], why[KILN_ERROR_MESSAGE_MAX];
    snprintf(field, sizeof(field), "body.nodes[%zu]%s%s", i, what[0] ? "." : "", what);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    client_error_set(err, KILN_EARG, field, "%s: %s", field, why);
    if (err != NULL)
        err->node = (int64_t) i;
    return KILN_EARG;
}

static int graph_strs(struct proto_str *dst, const char *const *src, uint32_t n, size_t i,
                      const char *name, struct kiln_error *err)
{
    for (uint32_t j = 0; j < n; j++) {
        char what[32];
        snprintf(what, sizeof(what), "%s[%u]", name, (unsigned) j);
        if (src[j] == NULL)
            return graph_bad_node(err, i, what, "is NULL");
        size_t len = strnlen(src[j], KILN_MAX_EXPR + 1);
        if (len > KILN_MAX_EXPR)
            return graph_bad_node(err, i, what, "is longer than expr_bytes (%d)", KILN_MAX_EXPR);
        dst[j] = (struct proto_str){.ptr = src[j], .len = (uint32_t) len};
    }
    return KILN_OK;
}

/* Free translated nodes and the condition lists they point to. */
static void graph_nodes_free(struct proto_node *pn, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(pn[i].conds);
    free(pn);
}

/* Check node i and translate it; on failure err names the field. */
static int graph_node(struct proto_node *p, const struct kiln_node *k, size_t i,
                      const struct kiln_limits *lim, struct kiln_error *err)
{
    char what[32];
    if (k->id == 0)
        return graph_bad_node(err, i, "id", "var ids are never 0");
    if ((k->has & ~GRAPH_NODE_ALL) != 0)
        return graph_bad_node(err, i, "", "`has` holds a bit that names no field");
    memset(p, 0, sizeof(*p));
    p->id = k->id;
    p->op = k->op;
    p->has = k->has;
    if (k->has & KILN_NODE_IN) {
        if (k->nin > KILN_MAX_INPUTS)
            return graph_bad_node(err, i, "in", "more inputs than node_inputs (9)");
        for (uint32_t j = 0; j < k->nin; j++) {
            snprintf(what, sizeof(what), "in[%u]", (unsigned) j);
            if (k->in[j] == 0)
                return graph_bad_node(err, i, what, "var ids are never 0");
        }
        p->nin = k->nin;
        memcpy(p->in, k->in, k->nin * sizeof(k->in[0]));
    }
    p->dtype = k->dtype;
    if (k->has & KILN_NODE_SHAPE) {
        if (k->rank > KILN_MAX_RANK)
            return graph_bad_node(err, i, "shape", "more dimensions than rank (8)");
        for (uint32_t j = 0; j < k->rank; j++) {
            snprintf(what, sizeof(what), "shape[%u]", (unsigned) j);
            if (k->shape[j] < 0 || (uint64_t) k->shape[j] > lim->dim)
                return graph_bad_node(err, i, what, "a size must be in 0..dim");
        }
        p->rank = k->rank;
        memcpy(p->shape, k->shape, k->rank * sizeof(k->shape[0]));
    }
    if ((k->has & KILN_NODE_DATA) && k->data == NULL && k->data_len > 0)
        return graph_bad_node(err, i, "data", "NULL with a non-zero length");
    if ((k->has & KILN_NODE_DATA) && k->data_len > lim->message_bytes)
        return graph_bad_node(err, i, "data",
                              "%zu bytes, more than one message holds "
                              "(message_bytes %llu)",
                              k->data_len, (unsigned long long) lim->message_bytes);
    p->data = k->data;
    p->data_len = k->data_len;
    p->value = (struct proto_number){k->value.is_float, k->value.i, k->value.f};
    p->dim = k->dim;
    p->dist = k->dist;
    p->seed = k->seed;
    p->offset = k->offset;
    if (k->has & KILN_NODE_DIMS) {
        if (k->ndims > KILN_MAX_RANK)
            return graph_bad_node(err, i, "dims", "more entries than rank (8)");
        for (uint32_t j = 0; j < k->ndims; j++) {
            snprintf(what, sizeof(what), "dims[%u]", (unsigned) j);
            if (k->dims[j] >= KILN_MAX_RANK)
                return graph_bad_node(err, i, what, "a dimension number must be below rank (8)");
        }
        p->ndims = k->ndims;
        memcpy(p->dims, k->dims, k->ndims * sizeof(k->dims[0]));
    }
    p->keepdims = k->keepdims;
    p->reduce_op = k->reduce_op;
    int rc;
    if (k->has & KILN_NODE_EXPRS) {
        if (k->nexprs > KILN_MAX_RANK)
            return graph_bad_node(err, i, "exprs", "more expressions than rank (8)");
        if ((rc = graph_strs(p->exprs, k->exprs, k->nexprs, i, "exprs", err)) != KILN_OK)
            return rc;
        p->nexprs = k->nexprs;
    }
    if (k->has & KILN_NODE_CONDS) {
        if (k->nconds > KILN_MAX_CONDS)
            return graph_bad_node(err, i, "conds", "more conditions than conds (32)");
        /* Freed by graph_nodes_free(), also when a later check fails. */
        if (k->nconds > 0 && (p->conds = calloc(k->nconds, sizeof(*p->conds))) == NULL)
            return client_error_set(err, KILN_ENOMEM, NULL, "out of memory");
        if ((rc = graph_strs(p->conds, k->conds, k->nconds, i, "conds", err)) != KILN_OK)
            return rc;
        p->nconds = k->nconds;
    }
    p->overflow =
        (struct proto_number){k->overflow_value.is_float, k->overflow_value.i, k->overflow_value.f};
    /* The int lists, borrowed: k outlives the encoding. */
    const struct {
        const char *name, *limit;
        uint32_t bit, max, count;
        const int64_t *src;
        const int64_t **dst;
        uint32_t *n;
    } lists[] = {
        {"starts", "rank", KILN_NODE_STARTS, KILN_MAX_RANK, k->nstarts, k->starts, &p->starts,
         &p->nstarts},
        {"stops", "rank", KILN_NODE_STOPS, KILN_MAX_RANK, k->nstops, k->stops, &p->stops,
         &p->nstops},
        {"steps", "rank", KILN_NODE_STEPS, KILN_MAX_RANK, k->nsteps, k->steps, &p->steps,
         &p->nsteps},
        {"pads", "2 x rank", KILN_NODE_PADS, 2 * KILN_MAX_RANK, k->npads, k->pads, &p->pads,
         &p->npads},
        {"stride", "2 (h, w)", KILN_NODE_STRIDE, 2, k->nstride, k->stride, &p->stride, &p->nstride},
        {"padding", "2 (h, w)", KILN_NODE_PADDING, 2, k->npadding, k->padding, &p->padding,
         &p->npadding},
        {"dilation", "2 (h, w)", KILN_NODE_DILATION, 2, k->ndilation, k->dilation, &p->dilation,
         &p->ndilation},
        {"trans", "2 (a, b)", KILN_NODE_TRANS, 2, k->ntrans, k->trans, &p->trans, &p->ntrans},
    };
    for (size_t j = 0; j < sizeof(lists) / sizeof(lists[0]); j++) {
        if (!(k->has & lists[j].bit))
            continue;
        if (lists[j].count > lists[j].max)
            return graph_bad_node(err, i, lists[j].name, "more entries than %s (%u)",
                                  lists[j].limit, (unsigned) lists[j].max);
        *lists[j].dst = lists[j].src;
        *lists[j].n = lists[j].count;
    }
    p->groups = k->groups;
    return KILN_OK;
}

/* Check a list of var ids against the session's var_ids limit. */
static int graph_ids(const kiln_conn *c, const uint64_t *ids, size_t n, bool zero_ok,
                     const char *name, struct kiln_error *err)
{
    uint64_t max = c->session.limits.var_ids;
    if (max == 0 || max > KILN_LIMIT_VAR_IDS)
        max = KILN_LIMIT_VAR_IDS;
    if (n > max)
        return client_error_set(err, KILN_EARG, name, "%zu ids in %s, more than var_ids (%llu)", n,
                                name, (unsigned long long) max);
    if (n > 0 && ids == NULL)
        return client_error_set(err, KILN_EARG, name, "%s is NULL with %zu ids", name, n);
    for (size_t i = 0; i < n && !zero_ok; i++)
        if (ids[i] == 0)
            return client_error_set(err, KILN_EARG, name, "%s[%zu] is 0: var ids are never 0", name,
                                    i);
    return KILN_OK;
}

/* Copy a SUBMIT reply's warnings into c, for kiln_conn_warnings(). The
 * step was accepted whatever happens here: running out of memory loses
 * the warnings (all but one that says so), never the step. */
static void graph_keep_warnings(kiln_conn *c, const struct proto_submit_reply *sr)
{
    if (sr->nwarnings == 0)
        return;
    struct kiln_warning *w = realloc(c->warnings, sr->nwarnings * sizeof(*w));
    if (w == NULL) {
        if (c->warnings != NULL) {
            c->warnings[0] = (struct kiln_warning){.node = -1};
            snprintf(c->warnings[0].message, sizeof(c->warnings[0].message),
                     "out of memory for the daemon's %u warnings", (unsigned) sr->nwarnings);
            c->nwarnings = 1;
        }
        return;
    }
    c->warnings = w;
    for (uint32_t i = 0; i < sr->nwarnings; i++) {
        w[i].node = sr->warnings[i].node;
        snprintf(w[i].field, sizeof(w[i].field), "%s", sr->warnings[i].field);
        snprintf(w[i].message, sizeof(w[i].message), "%s", sr->warnings[i].message);
    }
    c->nwarnings = sr->nwarnings;
}

int kiln_submit(kiln_conn *c, const struct kiln_node *nodes, size_t n, const uint64_t *keep,
                size_t nkeep, uint64_t *step, struct kiln_error *err)
{
    if (c == NULL)
        return client_error_set(err, KILN_EARG, "conn", "SUBMIT on a NULL connection");
    c->nwarnings = 0;
    uint64_t max = c->session.limits.nodes;
    if (max == 0 || max > KILN_LIMIT_NODES)
        max = KILN_LIMIT_NODES;
    if (nodes == NULL || n == 0 || n > max)
        return client_error_set(err, KILN_EARG, "body.nodes",
                                "a graph needs 1..%llu nodes, not %zu%s", (unsigned long long) max,
                                n, nodes == NULL ? " (nodes is NULL)" : "");
    int rc = graph_ids(c, keep, nkeep, false, "keep", err);
    if (rc != KILN_OK)
        return rc;
    struct kiln_limits lim = c->session.limits;
    if (lim.dim == 0 || lim.dim > (uint64_t) KILN_LIMIT_DIM)
        lim.dim = (uint64_t) KILN_LIMIT_DIM;
    if (lim.message_bytes == 0 || lim.message_bytes > KILN_LIMIT_MESSAGE_BYTES)
        lim.message_bytes = KILN_LIMIT_MESSAGE_BYTES;

    struct proto_node *pn = calloc(n, sizeof(*pn));
    if (pn == NULL)
        return client_error_set(err, KILN_ENOMEM, NULL, "out of memory for %zu nodes", n);
    for (size_t i = 0; i < n; i++)
        if ((rc = graph_node(&pn[i], &nodes[i], i, &lim, err)) != KILN_OK) {
            graph_nodes_free(pn, n);
            return rc;
        }
    struct proto_submit s = {
        .nnodes = (uint32_t) n, .nodes = pn, .nkeep = (uint32_t) nkeep, .keep = (uint64_t *) keep};
    msgpack_sbuffer_clear(&c->sb);
    rc = proto_encode_submit(&c->sb, c->session.id, &s);
    graph_nodes_free(pn, n);
    /* Each node passed its checks, so what is left is the message as a
     * whole: more bytes or objects than one message may hold. A daemon
     * closes the connection on a message over its limit without a reply,
     * so that must never be sent. */
    if (rc == KILN_OK && c->sb.size > lim.message_bytes)
        rc = KILN_EARG;
    if (rc == KILN_EARG)
        return client_error_set(err, KILN_EARG, "body.nodes",
                                "the graph does not fit in one message (message_bytes %llu, "
                                "objects %u): submit it in smaller steps",
                                (unsigned long long) lim.message_bytes, KILN_LIMIT_OBJECTS);
    if (rc != KILN_OK)
        return client_error_set(err, rc, NULL, "cannot encode SUBMIT");

    struct client_reply r;
    if ((rc = client_call(c, PROTO_SUBMIT, &r, err)) != KILN_OK)
        return rc;
    if (step != NULL)
        *step = r.rep.u.submit.step;
    graph_keep_warnings(c, &r.rep.u.submit);
    client_reply_fini(&r);
    return KILN_OK;
}

const struct kiln_warning *kiln_conn_warnings(const kiln_conn *c, size_t *n)
{
    if (n != NULL)
        *n = c != NULL ? c->nwarnings : 0;
    return c != NULL && c->nwarnings > 0 ? c->warnings : NULL;
}

static size_t graph_round_up(size_t v)
{
    return (v + GRAPH_ALIGN - 1) / GRAPH_ALIGN * GRAPH_ALIGN;
}

/* Copy a decoded FETCH reply into one caller-owned block. */
static int graph_copy_out(const struct proto_fetch_reply *fr, const uint64_t *ids, size_t n,
                          struct kiln_tensor **out, struct kiln_error *err)
{
    if (fr->count != n)
        return client_error_set(err, KILN_EPROTO, "body.vars", "FETCH of %zu vars answered with %u",
                                n, (unsigned) fr->count);
    /* The data came in one message, so the sum cannot overflow. */
    size_t total = graph_round_up(n * sizeof(struct kiln_tensor));
    for (size_t i = 0; i < n; i++) {
        if (fr->vars[i].id != ids[i])
            return client_error_set(err, KILN_EPROTO, "body.vars",
                                    "FETCH asked for var %llu at %zu, the reply holds var %llu",
                                    (unsigned long long) ids[i], i,
                                    (unsigned long long) fr->vars[i].id);
        total += graph_round_up(fr->vars[i].bytes);
    }
    unsigned char *block = malloc(total);
    if (block == NULL)
        return client_error_set(err, KILN_ENOMEM, NULL, "out of memory for %zu bytes of values",
                                total);
    struct kiln_tensor *t = (struct kiln_tensor *) block;
    size_t at = graph_round_up(n * sizeof(struct kiln_tensor));
    for (size_t i = 0; i < n; i++) {
        const struct proto_tensor *v = &fr->vars[i];
        memset(&t[i], 0, sizeof(t[i]));
        t[i].id = v->id;
        t[i].dtype = v->dtype;
        t[i].rank = v->rank;
        memcpy(t[i].shape, v->shape, v->rank * sizeof(v->shape[0]));
        t[i].bytes = v->bytes;
        if (v->bytes > 0) {
            t[i].data = block + at;
            memcpy(t[i].data, v->data, v->bytes);
            at += graph_round_up(v->bytes);
        }
    }
    *out = t;
    return KILN_OK;
}

int kiln_fetch(kiln_conn *c, const uint64_t *ids, size_t n, int timeout_ms,
               struct kiln_tensor **out, struct kiln_error *err)
{
    if (out == NULL)
        return client_error_set(err, KILN_EARG, "out", "kiln_fetch needs somewhere to write");
    *out = NULL;
    if (c == NULL)
        return client_error_set(err, KILN_EARG, "conn", "FETCH on a NULL connection");
    if (timeout_ms == KILN_FETCH_WAIT_DEFAULT)
        timeout_ms = KILN_FETCH_TIMEOUT_DEFAULT_MS;
    if (timeout_ms < 0 || timeout_ms > KILN_FETCH_WAIT_MAX)
        return client_error_set(err, KILN_EARG, "timeout_ms",
                                "the wait must be 0..%d ms or KILN_FETCH_WAIT_DEFAULT, not %d",
                                KILN_FETCH_WAIT_MAX, timeout_ms);
    int rc = graph_ids(c, ids, n, false, "ids", err);
    if (rc != KILN_OK)
        return rc;
    msgpack_sbuffer_clear(&c->sb);
    if ((rc = proto_encode_fetch(&c->sb, c->session.id, ids, (uint32_t) n,
                                 (uint64_t) timeout_ms)) != KILN_OK)
        return client_error_set(err, rc, NULL, "cannot encode FETCH");

    /* The daemon answers only once the values are ready or the wait is
     * over, so the reply may take the wait plus the usual round trip. */
    bool longer = c->timeout_ms != NNG_DURATION_INFINITE && timeout_ms > 0;
    if (longer) {
        int64_t t = (int64_t) c->timeout_ms + timeout_ms;
        nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, (nng_duration) t);
    }
    struct client_reply r;
    rc = client_call(c, PROTO_FETCH, &r, err);
    if (longer)
        nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, c->timeout_ms);
    if (rc != KILN_OK)
        return rc;
    if (n > 0)
        rc = graph_copy_out(&r.rep.u.fetch, ids, n, out, err);
    else if (r.rep.u.fetch.count != 0)
        rc = client_error_set(err, KILN_EPROTO, "body.vars", "FETCH of no vars answered with %u",
                              (unsigned) r.rep.u.fetch.count);
    client_reply_fini(&r);
    return rc;
}

int kiln_fetch_poll(kiln_conn *c, const uint64_t *ids, size_t n, struct kiln_tensor **out,
                    struct kiln_error *err)
{
    return kiln_fetch(c, ids, n, 0, out, err);
}

void kiln_tensors_free(struct kiln_tensor *vars)
{
    free(vars); /* one block: see graph_copy_out() */
}

int kiln_cancel(kiln_conn *c, uint64_t *cancelled, struct kiln_error *err)
{
    if (c == NULL)
        return client_error_set(err, KILN_EARG, "conn", "CANCEL on a NULL connection");
    msgpack_sbuffer_clear(&c->sb);
    int rc = proto_encode_simple(&c->sb, PROTO_CANCEL, c->session.id);
    if (rc != KILN_OK)
        return client_error_set(err, rc, NULL, "cannot encode CANCEL");
    struct client_reply r;
    if ((rc = client_call(c, PROTO_CANCEL, &r, err)) != KILN_OK)
        return rc;
    if (cancelled != NULL)
        *cancelled = r.rep.u.cancel.cancelled;
    client_reply_fini(&r);
    return KILN_OK;
}

int kiln_release(kiln_conn *c, const uint64_t *ids, size_t n, uint64_t *released, uint64_t *unknown,
                 struct kiln_error *err)
{
    if (c == NULL)
        return client_error_set(err, KILN_EARG, "conn", "RELEASE on a NULL connection");
    int rc = graph_ids(c, ids, n, true, "ids", err);
    if (rc != KILN_OK)
        return rc;
    msgpack_sbuffer_clear(&c->sb);
    if ((rc = proto_encode_release(&c->sb, c->session.id, ids, (uint32_t) n)) != KILN_OK)
        return client_error_set(err, rc, NULL, "cannot encode RELEASE");
    struct client_reply r;
    if ((rc = client_call(c, PROTO_RELEASE, &r, err)) != KILN_OK)
        return rc;
    if (released != NULL)
        *released = r.rep.u.release.released;
    if (unknown != NULL)
        *unknown = r.rep.u.release.unknown;
    client_reply_fini(&r);
    return KILN_OK;
}
