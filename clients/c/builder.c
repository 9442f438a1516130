/* builder.c: kiln_graph, the graph builder of the public API.
 *
 * A builder is a growing array of struct kiln_node (the same struct
 * kiln_submit() takes, so submitting is one call and the wire encoding
 * stays in graph.c) plus an arena that owns every byte the nodes point
 * to: uploaded data, index expressions and conditions. The arena is a
 * list of blocks that never move, so node pointers stay valid while the
 * node array grows by realloc.
 *
 * Failures are sticky (the first is kept, later calls return 0), the
 * pattern of cairo and of SQLite's prepared statements: building a graph
 * is a long run of small calls whose arguments are mostly the results of
 * the calls before, and checking each one would bury the graph in error
 * handling. Nothing is sent while a graph holds an error. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

#define BUILDER_BLOCK_MIN 4096
#define BUILDER_ALIGN     16

struct builder_block {
    struct builder_block *next;
    size_t used, cap;
    _Alignas(BUILDER_ALIGN) unsigned char data[];
};

struct kiln_graph {
    kiln_conn *conn;
    struct kiln_node *nodes;
    size_t n, cap;
    uint64_t *keep;
    size_t nkeep, keep_cap;
    struct builder_block *blocks; /* newest first */
    int failed;                   /* KILN_OK, or the code of `error` */
    struct kiln_error error;
};

/* ---- errors and memory ------------------------------------------------ */

/* Record the first failure; returns 0, the id a failing call returns. */
__attribute__((format(printf, 4, 5))) static uint64_t
builder_fail(kiln_graph *g, int code, const char *what, const char *fmt, ...)
{
    if (g->failed != KILN_OK)
        return 0;
    char why[KILN_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    g->failed = code;
    client_error_set(&g->error, code, what, "%s (node %zu): %s", what, g->n, why);
    g->error.node = (int64_t) g->n;
    return 0;
}

static void *builder_alloc(kiln_graph *g, size_t size)
{
    size = (size + BUILDER_ALIGN - 1) / BUILDER_ALIGN * BUILDER_ALIGN;
    struct builder_block *b = g->blocks;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > BUILDER_BLOCK_MIN ? size : BUILDER_BLOCK_MIN;
        if (b != NULL && cap < 2 * b->cap && size <= 2 * b->cap)
            cap = 2 * b->cap; /* grow geometrically, so many small copies stay cheap */
        if ((b = malloc(sizeof(*b) + cap)) == NULL) {
            builder_fail(g, KILN_ENOMEM, "graph", "out of memory for %zu bytes", size);
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        b->next = g->blocks;
        g->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

static const void *builder_copy(kiln_graph *g, const void *src, size_t size)
{
    if (size == 0)
        return NULL;
    void *p = builder_alloc(g, size);
    if (p != NULL)
        memcpy(p, src, size);
    return p;
}

static void builder_blocks_free(struct builder_block *b)
{
    while (b != NULL) {
        struct builder_block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---- the graph --------------------------------------------------------- */

kiln_graph *kiln_graph_new(kiln_conn *c)
{
    if (c == NULL)
        return NULL;
    kiln_graph *g = calloc(1, sizeof(*g));
    if (g != NULL)
        g->conn = c;
    return g;
}

void kiln_graph_free(kiln_graph *g)
{
    if (g == NULL)
        return;
    builder_blocks_free(g->blocks);
    free(g->nodes);
    free(g->keep);
    free(g);
}

void kiln_graph_reset(kiln_graph *g)
{
    if (g == NULL)
        return;
    /* Keep the newest (largest) block, free the rest. */
    if (g->blocks != NULL) {
        builder_blocks_free(g->blocks->next);
        g->blocks->next = NULL;
        g->blocks->used = 0;
    }
    g->n = 0;
    g->nkeep = 0;
    g->failed = KILN_OK;
    memset(&g->error, 0, sizeof(g->error));
}

int kiln_graph_error(const kiln_graph *g, struct kiln_error *err)
{
    if (g == NULL)
        return client_error_set(err, KILN_EARG, "graph", "the graph is NULL");
    if (g->failed != KILN_OK && err != NULL)
        *err = g->error;
    return g->failed;
}

const struct kiln_node *kiln_graph_nodes(const kiln_graph *g, size_t *n)
{
    if (n != NULL)
        *n = g != NULL ? g->n : 0;
    return g != NULL ? g->nodes : NULL;
}

int kiln_graph_keep(kiln_graph *g, uint64_t id)
{
    if (g == NULL)
        return KILN_EARG;
    if (g->failed != KILN_OK)
        return g->failed;
    if (id == 0) {
        builder_fail(g, KILN_EARG, "keep", "var id 0 (the result of a failed call?)");
        return g->failed;
    }
    if (g->nkeep == g->keep_cap) {
        size_t cap = g->keep_cap ? 2 * g->keep_cap : 16;
        uint64_t *k = realloc(g->keep, cap * sizeof(*k));
        if (k == NULL) {
            builder_fail(g, KILN_ENOMEM, "keep", "out of memory");
            return g->failed;
        }
        g->keep = k;
        g->keep_cap = cap;
    }
    g->keep[g->nkeep++] = id;
    return KILN_OK;
}

int kiln_graph_submit(kiln_graph *g, uint64_t *step, struct kiln_error *err)
{
    if (g == NULL)
        return client_error_set(err, KILN_EARG, "graph", "the graph is NULL");
    if (g->failed != KILN_OK) {
        if (err != NULL)
            *err = g->error;
        return g->failed;
    }
    return kiln_submit(g->conn, g->nodes, g->n, g->keep, g->nkeep, step, err);
}

/* A zeroed node at the end of the graph with a fresh id and `op`; NULL
 * (error recorded) when memory is short or the graph has failed. */
static struct kiln_node *builder_node(kiln_graph *g, uint32_t op)
{
    if (g->failed != KILN_OK)
        return NULL;
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        struct kiln_node *nodes = realloc(g->nodes, cap * sizeof(*nodes));
        if (nodes == NULL) {
            builder_fail(g, KILN_ENOMEM, "graph", "out of memory for %zu nodes", cap);
            return NULL;
        }
        g->nodes = nodes;
        g->cap = cap;
    }
    struct kiln_node *n = &g->nodes[g->n];
    memset(n, 0, sizeof(*n));
    n->op = op;
    return n;
}

/* Make the node builder_node() returned part of the graph; returns its id. */
static uint64_t builder_commit(kiln_graph *g, struct kiln_node *n)
{
    if (n->id == 0)
        n->id = kiln_conn_new_id(g->conn);
    g->n++;
    return n->id;
}

/* ---- argument checks --------------------------------------------------- */

/* Inputs: 0 is a failed earlier call (already recorded) or a caller bug. */
static bool builder_inputs(kiln_graph *g, struct kiln_node *n, const char *what, uint32_t nin,
                           const uint64_t *in)
{
    if (nin > KILN_MAX_INPUTS)
        return builder_fail(g, KILN_EARG, what, "%u inputs, more than %d", (unsigned) nin,
                            KILN_MAX_INPUTS),
               false;
    for (uint32_t i = 0; i < nin; i++)
        if (in[i] == 0)
            return builder_fail(g, KILN_EARG, what, "input %u is var 0", (unsigned) i), false;
    n->has |= KILN_NODE_IN;
    n->nin = nin;
    memcpy(n->in, in, nin * sizeof(in[0]));
    return true;
}

static bool builder_shape(kiln_graph *g, struct kiln_node *n, const char *what, uint32_t rank,
                          const int64_t *shape)
{
    if (rank > KILN_MAX_RANK)
        return builder_fail(g, KILN_EARG, what, "rank %u, more than %d", (unsigned) rank,
                            KILN_MAX_RANK),
               false;
    if (rank > 0 && shape == NULL)
        return builder_fail(g, KILN_EARG, what, "shape is NULL with rank %u", (unsigned) rank),
               false;
    n->has |= KILN_NODE_SHAPE;
    n->rank = rank;
    if (rank > 0)
        memcpy(n->shape, shape, rank * sizeof(shape[0]));
    return true;
}

static bool builder_dims(kiln_graph *g, struct kiln_node *n, const char *what, uint32_t ndims,
                         const uint32_t *dims)
{
    if (ndims > KILN_MAX_RANK)
        return builder_fail(g, KILN_EARG, what, "%u dims, more than %d", (unsigned) ndims,
                            KILN_MAX_RANK),
               false;
    if (ndims > 0 && dims == NULL)
        return builder_fail(g, KILN_EARG, what, "dims is NULL with %u dims", (unsigned) ndims),
               false;
    n->has |= KILN_NODE_DIMS;
    n->ndims = ndims;
    if (ndims > 0)
        memcpy(n->dims, dims, ndims * sizeof(dims[0]));
    return true;
}

/* Copy `count` strings into the arena. */
static bool builder_strs(kiln_graph *g, const char **dst, const char *const *src, uint32_t count,
                         const char *what)
{
    if (count > 0 && src == NULL)
        return builder_fail(g, KILN_EARG, what, "the list is NULL with %u entries",
                            (unsigned) count),
               false;
    for (uint32_t i = 0; i < count; i++) {
        if (src[i] == NULL)
            return builder_fail(g, KILN_EARG, what, "entry %u is NULL", (unsigned) i), false;
        size_t len = strnlen(src[i], KILN_MAX_EXPR + 1);
        if (len > KILN_MAX_EXPR)
            return builder_fail(g, KILN_EARG, what, "entry %u is longer than %d bytes",
                                (unsigned) i, KILN_MAX_EXPR),
                   false;
        if ((dst[i] = builder_copy(g, src[i], len + 1)) == NULL)
            return false;
    }
    return true;
}

static bool builder_data(kiln_graph *g, struct kiln_node *n, const void *data, size_t bytes,
                         bool copy)
{
    if (bytes > 0 && data == NULL)
        return builder_fail(g, KILN_EARG, "array", "data is NULL with %zu bytes", bytes), false;
    n->has |= KILN_NODE_DATA;
    n->data_len = bytes;
    n->data = copy ? builder_copy(g, data, bytes) : data;
    return !(copy && bytes > 0 && n->data == NULL);
}

/* ---- any node ---------------------------------------------------------- */

uint64_t kiln_graph_add_node(kiln_graph *g, const struct kiln_node *src)
{
    if (g == NULL)
        return 0;
    if (src == NULL)
        return builder_fail(g, KILN_EARG, "node", "the node is NULL");
    struct kiln_node *n = builder_node(g, src->op);
    if (n == NULL)
        return 0;
    *n = *src;
    /* Counts decide how much is copied: check them before trusting them. */
    if ((n->has & KILN_NODE_EXPRS) && n->nexprs > KILN_MAX_RANK)
        return builder_fail(g, KILN_EARG, "exprs", "%u expressions, more than %d",
                            (unsigned) n->nexprs, KILN_MAX_RANK);
    if ((n->has & KILN_NODE_CONDS) && n->nconds > KILN_MAX_CONDS)
        return builder_fail(g, KILN_EARG, "conds", "%u conditions, more than %d",
                            (unsigned) n->nconds, KILN_MAX_CONDS);
    if ((n->has & KILN_NODE_DATA) && !builder_data(g, n, src->data, src->data_len, true))
        return 0;
    if ((n->has & KILN_NODE_EXPRS) && !builder_strs(g, n->exprs, src->exprs, n->nexprs, "exprs"))
        return 0;
    if ((n->has & KILN_NODE_CONDS) && !builder_strs(g, n->conds, src->conds, n->nconds, "conds"))
        return 0;
    return builder_commit(g, n);
}

int kiln_graph_expect(kiln_graph *g, uint64_t id, uint32_t dtype, int rank, const int64_t *shape)
{
    if (g == NULL)
        return KILN_EARG;
    if (g->failed != KILN_OK)
        return g->failed;
    struct kiln_node *n = NULL;
    for (size_t i = g->n; i > 0 && n == NULL; i--)
        if (g->nodes[i - 1].id == id)
            n = &g->nodes[i - 1];
    if (n == NULL) {
        builder_fail(g, KILN_EARG, "expect", "var %llu is no node of this graph",
                     (unsigned long long) id);
        return g->failed;
    }
    /* A source's dtype and shape are what it makes, not a check: refuse
     * to change them. */
    if (dtype != 0 && (n->has & KILN_NODE_DTYPE) && n->dtype != dtype)
        builder_fail(g, KILN_EARG, "expect", "var %llu already has dtype %u",
                     (unsigned long long) id, (unsigned) n->dtype);
    else if (rank >= 0 && (n->has & KILN_NODE_SHAPE))
        builder_fail(g, KILN_EARG, "expect", "var %llu already has a shape",
                     (unsigned long long) id);
    else if (rank < -1 || rank > KILN_MAX_RANK || (rank > 0 && shape == NULL))
        builder_fail(g, KILN_EARG, "expect", "rank %d with shape %s", rank,
                     shape ? "given" : "NULL");
    if (g->failed != KILN_OK)
        return g->failed;
    if (dtype != 0) {
        n->has |= KILN_NODE_DTYPE;
        n->dtype = dtype;
    }
    if (rank >= 0) {
        n->has |= KILN_NODE_SHAPE;
        n->rank = (uint32_t) rank;
        if (rank > 0)
            memcpy(n->shape, shape, (size_t) rank * sizeof(shape[0]));
    }
    return KILN_OK;
}

/* ---- sources ----------------------------------------------------------- */

static struct kiln_node *builder_source(kiln_graph *g, uint32_t op, const char *what,
                                        uint32_t dtype, uint32_t rank, const int64_t *shape)
{
    struct kiln_node *n = g != NULL ? builder_node(g, op) : NULL;
    if (n == NULL || !builder_shape(g, n, what, rank, shape))
        return NULL;
    n->has |= KILN_NODE_DTYPE;
    n->dtype = dtype;
    return n;
}

static uint64_t builder_array(kiln_graph *g, uint32_t dtype, uint32_t rank, const int64_t *shape,
                              const void *data, size_t bytes, bool copy)
{
    struct kiln_node *n = builder_source(g, KILN_OP_ARRAY, "array", dtype, rank, shape);
    if (n == NULL || !builder_data(g, n, data, bytes, copy))
        return 0;
    return builder_commit(g, n);
}

uint64_t kiln_graph_array(kiln_graph *g, uint32_t dtype, uint32_t rank, const int64_t *shape,
                          const void *data, size_t bytes)
{
    return builder_array(g, dtype, rank, shape, data, bytes, true);
}

uint64_t kiln_graph_array_ref(kiln_graph *g, uint32_t dtype, uint32_t rank, const int64_t *shape,
                              const void *data, size_t bytes)
{
    return builder_array(g, dtype, rank, shape, data, bytes, false);
}

uint64_t kiln_graph_const(kiln_graph *g, uint32_t dtype, uint32_t rank, const int64_t *shape,
                          struct kiln_number value)
{
    struct kiln_node *n = builder_source(g, KILN_OP_CONST, "const", dtype, rank, shape);
    if (n == NULL)
        return 0;
    n->has |= KILN_NODE_VALUE;
    n->value = value;
    return builder_commit(g, n);
}

uint64_t kiln_graph_fill(kiln_graph *g, uint32_t dtype, uint32_t rank, const int64_t *shape,
                         double value)
{
    if (g == NULL)
        return 0;
    if (dtype == KILN_DTYPE_FLOAT32 || dtype == KILN_DTYPE_FLOAT64)
        return kiln_graph_const(g, dtype, rank, shape, kiln_number_float(value));
    /* 2^63 is the first double past int64's range. */
    if (!(value == floor(value) && value >= -9223372036854775808.0 &&
          value < 9223372036854775808.0))
        return builder_fail(g, KILN_EARG, "const", "%g is no whole number for dtype %u", value,
                            (unsigned) dtype);
    return kiln_graph_const(g, dtype, rank, shape, kiln_number_int((int64_t) value));
}

uint64_t kiln_graph_scalar(kiln_graph *g, uint32_t dtype, double value)
{
    return kiln_graph_fill(g, dtype, 0, NULL, value);
}

uint64_t kiln_graph_index(kiln_graph *g, uint32_t dtype, uint32_t rank, const int64_t *shape,
                          uint32_t dim)
{
    struct kiln_node *n = builder_source(g, KILN_OP_INDEX, "index", dtype, rank, shape);
    if (n == NULL)
        return 0;
    n->has |= KILN_NODE_DIM;
    n->dim = dim;
    return builder_commit(g, n);
}

uint64_t kiln_graph_random(kiln_graph *g, uint32_t dtype, uint32_t rank, const int64_t *shape,
                           uint32_t dist, uint64_t seed, uint64_t offset)
{
    struct kiln_node *n = builder_source(g, KILN_OP_RANDOM, "random", dtype, rank, shape);
    if (n == NULL)
        return 0;
    n->has |= KILN_NODE_DIST | KILN_NODE_SEED | KILN_NODE_OFFSET;
    n->dist = dist;
    n->seed = seed;
    n->offset = offset;
    return builder_commit(g, n);
}

/* ---- ops with inputs --------------------------------------------------- */

/* A node of `op` on nin inputs; NULL when an input is 0 or it failed. */
static struct kiln_node *builder_op(kiln_graph *g, uint32_t op, const char *what, uint32_t nin,
                                    const uint64_t *in)
{
    if (g == NULL)
        return NULL;
    struct kiln_node *n = builder_node(g, op);
    if (n == NULL || !builder_inputs(g, n, what, nin, in))
        return NULL;
    return n;
}

static uint64_t builder_simple(kiln_graph *g, uint32_t op, const char *what, uint32_t nin,
                               const uint64_t *in)
{
    struct kiln_node *n = builder_op(g, op, what, nin, in);
    return n != NULL ? builder_commit(g, n) : 0;
}

uint64_t kiln_graph_unary(kiln_graph *g, uint32_t op, uint64_t x)
{
    if (g != NULL && !(op >= KILN_OP_NEG && op <= KILN_OP_BITWISE_NOT))
        return builder_fail(g, KILN_EARG, "unary",
                            "op %u is not unary (16..33; cast has its own "
                            "call)",
                            (unsigned) op);
    return builder_simple(g, op, "unary", 1, &x);
}

uint64_t kiln_graph_binary(kiln_graph *g, uint32_t op, uint64_t a, uint64_t b)
{
    if (g != NULL && !(op >= KILN_OP_ADD && op <= KILN_OP_SHR))
        return builder_fail(g, KILN_EARG, "binary", "op %u is not binary (48..70)", (unsigned) op);
    return builder_simple(g, op, "binary", 2, (uint64_t[]){a, b});
}

uint64_t kiln_graph_cast(kiln_graph *g, uint64_t x, uint32_t dtype)
{
    struct kiln_node *n = builder_op(g, KILN_OP_CAST, "cast", 1, &x);
    if (n == NULL)
        return 0;
    n->has |= KILN_NODE_DTYPE;
    n->dtype = dtype;
    return builder_commit(g, n);
}

uint64_t kiln_graph_where(kiln_graph *g, uint64_t cond, uint64_t a, uint64_t b)
{
    return builder_simple(g, KILN_OP_WHERE, "where", 3, (uint64_t[]){cond, a, b});
}

uint64_t kiln_graph_reshape(kiln_graph *g, uint64_t x, uint32_t rank, const int64_t *shape)
{
    struct kiln_node *n = builder_op(g, KILN_OP_RESHAPE, "reshape", 1, &x);
    if (n == NULL || !builder_shape(g, n, "reshape", rank, shape))
        return 0;
    return builder_commit(g, n);
}

uint64_t kiln_graph_broadcast_to(kiln_graph *g, uint64_t x, uint32_t rank, const int64_t *shape,
                                 uint32_t ndims, const uint32_t *dims)
{
    struct kiln_node *n = builder_op(g, KILN_OP_BROADCAST_TO, "broadcast_to", 1, &x);
    if (n == NULL || !builder_shape(g, n, "broadcast_to", rank, shape) ||
        !builder_dims(g, n, "broadcast_to", ndims, dims))
        return 0;
    return builder_commit(g, n);
}

uint64_t kiln_graph_reduce(kiln_graph *g, uint32_t reduce_op, uint64_t x, uint32_t ndims,
                           const uint32_t *dims, bool keepdims)
{
    struct kiln_node *n = builder_op(g, KILN_OP_REDUCE, "reduce", 1, &x);
    if (n == NULL || !builder_dims(g, n, "reduce", ndims, dims))
        return 0;
    n->has |= KILN_NODE_REDUCE_OP | KILN_NODE_KEEPDIMS;
    n->reduce_op = reduce_op;
    n->keepdims = keepdims;
    return builder_commit(g, n);
}

static uint64_t builder_reindex(kiln_graph *g, uint32_t op, uint64_t x,
                                const struct kiln_reindex *r, const char *what)
{
    if (g == NULL)
        return 0;
    if (r == NULL)
        return builder_fail(g, KILN_EARG, what, "the reindex arguments are NULL");
    if (r->nextras > KILN_MAX_INPUTS - 1)
        return builder_fail(g, KILN_EARG, what, "%u extras, more than %d", (unsigned) r->nextras,
                            KILN_MAX_INPUTS - 1);
    if (r->nextras > 0 && r->extras == NULL)
        return builder_fail(g, KILN_EARG, what, "extras is NULL with %u entries",
                            (unsigned) r->nextras);
    if (r->nexprs > KILN_MAX_RANK)
        return builder_fail(g, KILN_EARG, what, "%u expressions, more than %d",
                            (unsigned) r->nexprs, KILN_MAX_RANK);
    if (r->nconds > KILN_MAX_CONDS)
        return builder_fail(g, KILN_EARG, what, "%u conditions, more than %d", (unsigned) r->nconds,
                            KILN_MAX_CONDS);
    uint64_t in[KILN_MAX_INPUTS] = {x};
    if (r->nextras > 0)
        memcpy(in + 1, r->extras, r->nextras * sizeof(in[0]));
    struct kiln_node *n = builder_op(g, op, what, 1 + r->nextras, in);
    if (n == NULL || !builder_shape(g, n, what, r->rank, r->shape) ||
        !builder_strs(g, n->exprs, r->exprs, r->nexprs, what))
        return 0;
    n->has |= KILN_NODE_EXPRS;
    n->nexprs = r->nexprs;
    if (r->nconds > 0) {
        if (!builder_strs(g, n->conds, r->conds, r->nconds, what))
            return 0;
        n->has |= KILN_NODE_CONDS;
        n->nconds = r->nconds;
    }
    return builder_commit(g, n);
}

uint64_t kiln_graph_reindex(kiln_graph *g, uint64_t x, const struct kiln_reindex *r)
{
    uint64_t id = builder_reindex(g, KILN_OP_REINDEX, x, r, "reindex");
    if (id != 0 && r->has_overflow) {
        struct kiln_node *n = &g->nodes[g->n - 1];
        n->has |= KILN_NODE_OVERFLOW_VALUE;
        n->overflow_value = r->overflow_value;
    }
    return id;
}

uint64_t kiln_graph_reindex_reduce(kiln_graph *g, uint32_t reduce_op, uint64_t x,
                                   const struct kiln_reindex *r)
{
    if (g != NULL && r != NULL && r->has_overflow)
        return builder_fail(g, KILN_EARG, "reindex_reduce",
                            "reindex_reduce takes no overflow "
                            "value");
    uint64_t id = builder_reindex(g, KILN_OP_REINDEX_REDUCE, x, r, "reindex_reduce");
    if (id != 0) {
        struct kiln_node *n = &g->nodes[g->n - 1];
        n->has |= KILN_NODE_REDUCE_OP;
        n->reduce_op = reduce_op;
    }
    return id;
}

/* ---- lowered ops ------------------------------------------------------- */

uint64_t kiln_graph_transpose(kiln_graph *g, uint64_t x, uint32_t ndims, const uint32_t *dims)
{
    struct kiln_node *n = builder_op(g, KILN_OP_TRANSPOSE, "transpose", 1, &x);
    if (n == NULL || !builder_dims(g, n, "transpose", ndims, dims))
        return 0;
    return builder_commit(g, n);
}

uint64_t kiln_graph_flip(kiln_graph *g, uint64_t x, uint32_t ndims, const uint32_t *dims)
{
    struct kiln_node *n = builder_op(g, KILN_OP_FLIP, "flip", 1, &x);
    if (n == NULL || !builder_dims(g, n, "flip", ndims, dims))
        return 0;
    return builder_commit(g, n);
}

uint64_t kiln_graph_slice(kiln_graph *g, uint64_t x, uint32_t n_dims, const int64_t *starts,
                          const int64_t *stops, const int64_t *steps)
{
    if (g != NULL && n_dims > KILN_MAX_RANK)
        return builder_fail(g, KILN_EARG, "slice", "%u dims, more than %d", (unsigned) n_dims,
                            KILN_MAX_RANK);
    struct kiln_node *n = builder_op(g, KILN_OP_SLICE, "slice", 1, &x);
    if (n == NULL)
        return 0;
    size_t bytes = n_dims * sizeof(int64_t);
    if (starts != NULL) {
        n->has |= KILN_NODE_STARTS;
        n->nstarts = n_dims;
        memcpy(n->starts, starts, bytes);
    }
    if (stops != NULL) {
        n->has |= KILN_NODE_STOPS;
        n->nstops = n_dims;
        memcpy(n->stops, stops, bytes);
    }
    if (steps != NULL) {
        n->has |= KILN_NODE_STEPS;
        n->nsteps = n_dims;
        memcpy(n->steps, steps, bytes);
    }
    return builder_commit(g, n);
}

uint64_t kiln_graph_concat(kiln_graph *g, uint32_t n_in, const uint64_t *xs, uint32_t dim)
{
    if (g != NULL && (n_in == 0 || xs == NULL))
        return builder_fail(g, KILN_EARG, "concat", "concat needs 1..%d inputs", KILN_MAX_INPUTS);
    struct kiln_node *n = builder_op(g, KILN_OP_CONCAT, "concat", n_in, xs);
    if (n == NULL)
        return 0;
    n->has |= KILN_NODE_DIM;
    n->dim = dim;
    return builder_commit(g, n);
}

uint64_t kiln_graph_pad(kiln_graph *g, uint64_t x, uint32_t npads, const int64_t *pads,
                        const struct kiln_number *value)
{
    if (g != NULL && npads > 2 * KILN_MAX_RANK)
        return builder_fail(g, KILN_EARG, "pad", "%u pads, more than %d", (unsigned) npads,
                            2 * KILN_MAX_RANK);
    if (g != NULL && npads > 0 && pads == NULL)
        return builder_fail(g, KILN_EARG, "pad", "pads is NULL with %u entries", (unsigned) npads);
    struct kiln_node *n = builder_op(g, KILN_OP_PAD, "pad", 1, &x);
    if (n == NULL)
        return 0;
    n->has |= KILN_NODE_PADS;
    n->npads = npads;
    if (npads > 0)
        memcpy(n->pads, pads, npads * sizeof(pads[0]));
    if (value != NULL) {
        n->has |= KILN_NODE_VALUE;
        n->value = *value;
    }
    return builder_commit(g, n);
}

/* ---- relays ------------------------------------------------------------ */

uint64_t kiln_graph_matmul(kiln_graph *g, uint64_t a, uint64_t b, bool trans_a, bool trans_b)
{
    struct kiln_node *n = builder_op(g, KILN_OP_MATMUL, "matmul", 2, (uint64_t[]){a, b});
    if (n == NULL)
        return 0;
    n->has |= KILN_NODE_TRANS;
    n->ntrans = 2;
    n->trans[0] = trans_a;
    n->trans[1] = trans_b;
    return builder_commit(g, n);
}

/* conv2d and its gradients: two inputs, the result's shape (the
 * gradients' only; NULL for conv2d) and the attributes. A NULL conv sends
 * none, for the daemon's defaults; a given one is sent whole, so that the
 * daemon, not the builder, judges its values. */
static uint64_t builder_conv(kiln_graph *g, uint32_t op, const char *what, uint64_t in0,
                             uint64_t in1, const char *shape_name, const int64_t *shape,
                             const struct kiln_conv *c)
{
    if (g != NULL && shape_name != NULL && shape == NULL)
        return builder_fail(g, KILN_EARG, what, "%s is NULL", shape_name);
    struct kiln_node *n = builder_op(g, op, what, 2, (uint64_t[]){in0, in1});
    if (n == NULL || (shape != NULL && !builder_shape(g, n, what, 4, shape)))
        return 0;
    if (c != NULL) {
        n->has |= KILN_NODE_STRIDE | KILN_NODE_PADDING | KILN_NODE_DILATION | KILN_NODE_GROUPS;
        n->nstride = n->npadding = n->ndilation = 2;
        memcpy(n->stride, c->stride, sizeof(n->stride));
        memcpy(n->padding, c->padding, sizeof(n->padding));
        memcpy(n->dilation, c->dilation, sizeof(n->dilation));
        n->groups = c->groups;
    }
    return builder_commit(g, n);
}

uint64_t kiln_graph_conv2d(kiln_graph *g, uint64_t x, uint64_t w, const struct kiln_conv *c)
{
    return builder_conv(g, KILN_OP_CONV2D, "conv2d", x, w, NULL, NULL, c);
}

uint64_t kiln_graph_conv2d_bwd_data(kiln_graph *g, uint64_t dy, uint64_t w,
                                    const int64_t x_shape[4], const struct kiln_conv *c)
{
    return builder_conv(g, KILN_OP_CONV2D_BWD_DATA, "conv2d_bwd_data", dy, w, "x_shape", x_shape,
                        c);
}

uint64_t kiln_graph_conv2d_bwd_weight(kiln_graph *g, uint64_t x, uint64_t dy,
                                      const int64_t w_shape[4], const struct kiln_conv *c)
{
    return builder_conv(g, KILN_OP_CONV2D_BWD_WEIGHT, "conv2d_bwd_weight", x, dy, "w_shape",
                        w_shape, c);
}

/* ---- gradients --------------------------------------------------------- */

uint64_t kiln_graph_grad(kiln_graph *g, uint64_t loss, uint64_t target, uint64_t seed)
{
    uint64_t in[3] = {loss, target, seed};
    return builder_simple(g, KILN_OP_GRAD, "grad", seed != 0 ? 3 : 2, in);
}

uint64_t kiln_graph_stop_grad(kiln_graph *g, uint64_t x)
{
    return builder_simple(g, KILN_OP_STOP_GRAD, "stop_grad", 1, &x);
}
