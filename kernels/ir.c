/* ir.c: the graph and its validating constructors (see ir.h).
 *
 * Every constructor follows one pattern: check the inputs exist, check
 * dtypes, shapes and attributes against the op's rules, compute the
 * result's dtype and shape, and only then allocate and append. A failure
 * fills struct ir_error and leaves the graph exactly as it was, so a
 * caller can report the error and throw the whole graph away, or carry on.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "kiln_err.h"

/* More nodes than the wire allows: ingest adds casts and broadcasts, and
 * autodiff adds gradients. Still a hard bound on one graph's memory. */
#define IR_MAX_GRAPH_NODES (16u * KILN_LIMIT_NODES)

static const char *const op_names[IR_OP_END] = {
    [IR_OP_ARRAY] = "array",
    [IR_OP_CONST] = "const",
    [IR_OP_INDEX] = "index",
    [IR_OP_RANDOM] = "random",
    [IR_OP_EXTERN] = "extern",
    [IR_OP_RESHAPE] = "reshape",
    [IR_OP_NEG] = "neg",
    [IR_OP_ABS] = "abs",
    [IR_OP_EXP] = "exp",
    [IR_OP_LOG] = "log",
    [IR_OP_SQRT] = "sqrt",
    [IR_OP_RSQRT] = "rsqrt",
    [IR_OP_SIN] = "sin",
    [IR_OP_COS] = "cos",
    [IR_OP_TAN] = "tan",
    [IR_OP_TANH] = "tanh",
    [IR_OP_SIGMOID] = "sigmoid",
    [IR_OP_ERF] = "erf",
    [IR_OP_FLOOR] = "floor",
    [IR_OP_CEIL] = "ceil",
    [IR_OP_ROUND] = "round",
    [IR_OP_SIGN] = "sign",
    [IR_OP_LOGICAL_NOT] = "logical_not",
    [IR_OP_BITWISE_NOT] = "bitwise_not",
    [IR_OP_CAST] = "cast",
    [IR_OP_ADD] = "add",
    [IR_OP_SUB] = "sub",
    [IR_OP_MUL] = "mul",
    [IR_OP_DIV] = "div",
    [IR_OP_FLOOR_DIV] = "floor_div",
    [IR_OP_MOD] = "mod",
    [IR_OP_POW] = "pow",
    [IR_OP_MAXIMUM] = "maximum",
    [IR_OP_MINIMUM] = "minimum",
    [IR_OP_EQ] = "eq",
    [IR_OP_NE] = "ne",
    [IR_OP_LT] = "lt",
    [IR_OP_LE] = "le",
    [IR_OP_GT] = "gt",
    [IR_OP_GE] = "ge",
    [IR_OP_LOGICAL_AND] = "logical_and",
    [IR_OP_LOGICAL_OR] = "logical_or",
    [IR_OP_LOGICAL_XOR] = "logical_xor",
    [IR_OP_BITWISE_AND] = "bitwise_and",
    [IR_OP_BITWISE_OR] = "bitwise_or",
    [IR_OP_BITWISE_XOR] = "bitwise_xor",
    [IR_OP_SHL] = "shl",
    [IR_OP_SHR] = "shr",
    [IR_OP_WHERE] = "where",
    [IR_OP_BROADCAST_TO] = "broadcast_to",
    [IR_OP_REINDEX] = "reindex",
    [IR_OP_REDUCE] = "reduce",
    [IR_OP_REINDEX_REDUCE] = "reindex_reduce",
    [IR_OP_MATMUL] = "matmul",
    [IR_OP_CONV2D] = "conv2d",
    [IR_OP_CONV2D_BWD_DATA] = "conv2d_bwd_data",
    [IR_OP_CONV2D_BWD_WEIGHT] = "conv2d_bwd_weight",
};

const char *ir_op_name(int op)
{
    return op > 0 && op < IR_OP_END ? op_names[op] : NULL;
}

/* ---- errors ------------------------------------------------------------ */

int ir_error_set(struct ir_error *err, int code, const char *field, const char *fmt, ...)
{
    if (err != NULL) {
        err->code = code;
        err->node = -1;
        snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- the graph --------------------------------------------------------- */

void ir_graph_init(struct ir_graph *g)
{
    memset(g, 0, sizeof(*g));
}

void ir_graph_fini(struct ir_graph *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->nowned; i++)
        free(g->owned[i]);
    free(g->owned);
    /* Parsed expressions are plain mallocs registered in `owned` too. */
    free(g->nodes);
    memset(g, 0, sizeof(*g));
}

/* Make room for one more node and `nown` more owned pointers, so that the
 * append that follows cannot fail half way. */
static int reserve(struct ir_graph *g, size_t nown, struct ir_error *err)
{
    if (g->count >= IR_MAX_GRAPH_NODES)
        return ir_error_set(err, KILN_ELIMIT, "", "graph has more than %u nodes", IR_MAX_GRAPH_NODES);
    if (g->count == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 64;
        struct ir_node *grown = realloc(g->nodes, (size_t) cap * sizeof(*grown));
        if (grown == NULL)
            return ir_error_set(err, KILN_ENOMEM, "", "out of memory for graph nodes");
        g->nodes = grown;
        g->cap = cap;
    }
    if (g->nowned + nown > g->capowned) {
        size_t cap = g->capowned ? g->capowned * 2 : 16;
        while (cap < g->nowned + nown)
            cap *= 2;
        void **grown = realloc(g->owned, cap * sizeof(*grown));
        if (grown == NULL)
            return ir_error_set(err, KILN_ENOMEM, "", "out of memory for graph data");
        g->owned = grown;
        g->capowned = cap;
    }
    return 0;
}

/* Record an allocation; room was made by reserve(). */
static void own(struct ir_graph *g, void *p)
{
    g->owned[g->nowned++] = p;
}

static int append(struct ir_graph *g, const struct ir_node *n)
{
    g->nodes[g->count] = *n;
    return (int) g->count++;
}

int64_t ir_shape_numel(int rank, const int64_t *shape, struct ir_error *err)
{
    if (rank < 0 || rank > KILN_LIMIT_RANK)
        return ir_error_set(err, KILN_ELIMIT, "shape", "rank %d is over the rank limit %d", rank,
                    KILN_LIMIT_RANK);
    int64_t n = 1;
    bool zero = false;
    for (int d = 0; d < rank; d++) {
        if (shape[d] < 0)
            return ir_error_set(err, KILN_EVALUE, "shape", "dimension %d is negative (%lld)", d,
                        (long long) shape[d]);
        if (shape[d] > KILN_LIMIT_DIM)
            return ir_error_set(err, KILN_ELIMIT, "shape", "dimension %d (%lld) is over the dim limit 2^40",
                        d, (long long) shape[d]);
        if (shape[d] == 0)
            zero = true;
        else if (!zero && n > KILN_LIMIT_ELEMENTS / shape[d])
            return ir_error_set(err, KILN_ELIMIT, "shape",
                        "the shape has more than the elements limit of 2^40 elements");
        else if (!zero)
            n *= shape[d];
    }
    return zero ? 0 : n;
}

void ir_node_strides(const struct ir_node *n, int64_t *strides)
{
    int64_t s = 1;
    for (int d = n->rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= n->shape[d];
    }
}

/* ---- shared checks ----------------------------------------------------- */

static const struct ir_node *input(const struct ir_graph *g, int x, const char *field,
                                   struct ir_error *err)
{
    if (x < 0 || (uint32_t) x >= g->count) {
        ir_error_set(err, KILN_EVALUE, field, "%s names no earlier node (%d)", field, x);
        return NULL;
    }
    return &g->nodes[x];
}

/* A node of `dt` and `shape`, numel checked; fills *n. */
static int shaped(struct ir_node *n, int op, enum ir_dtype dt, int rank, const int64_t *shape,
                  struct ir_error *err)
{
    memset(n, 0, sizeof(*n));
    if (!ir_dtype_valid(dt))
        return ir_error_set(err, KILN_EVALUE, "dtype", "dtype %d is not a dtype", (int) dt);
    int64_t numel = ir_shape_numel(rank, shape, err);
    if (numel < 0)
        return -1;
    n->op = (uint16_t) op;
    n->dtype = (uint8_t) dt;
    n->rank = (uint8_t) rank;
    if (rank > 0)
        memcpy(n->shape, shape, (size_t) rank * sizeof(shape[0]));
    n->numel = numel;
    return 0;
}

static bool same_shape(const struct ir_node *a, const struct ir_node *b)
{
    return a->rank == b->rank &&
           (a->rank == 0 || memcmp(a->shape, b->shape, a->rank * sizeof(a->shape[0])) == 0);
}

static int kind_of(int dt)
{
    return ir_dtype_info((enum ir_dtype) dt)->kind;
}

static bool is_float(int dt)
{
    return kind_of(dt) == IR_KIND_FLOAT;
}

static bool is_int(int dt)
{
    return kind_of(dt) == IR_KIND_INT || kind_of(dt) == IR_KIND_UINT;
}

static bool is_bool(int dt)
{
    return kind_of(dt) == IR_KIND_BOOL;
}

static int scalar_fits(enum ir_dtype dt, struct ir_scalar v, const char *field,
                       struct ir_error *err)
{
    if (!is_float(dt) && !ir_dtype_int_fits(dt, v.i))
        return ir_error_set(err, KILN_EVALUE, field, "%s %lld does not fit %s", field, (long long) v.i,
                    ir_dtype_name(dt));
    return 0;
}

/* ---- sources ----------------------------------------------------------- */

int ir_add_array(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape,
                 const void *data, size_t bytes, struct ir_error *err)
{
    struct ir_node n;
    if (reserve(g, 1, err) < 0 || shaped(&n, IR_OP_ARRAY, dt, rank, shape, err) < 0)
        return -1;
    /* numel <= 2^40 and sizes <= 8: the product fits in 64 bits. */
    uint64_t want = (uint64_t) n.numel * ir_dtype_size(dt);
    if (bytes != want)
        return ir_error_set(err, KILN_EVALUE, "data", "data has %zu bytes; shape and dtype need %llu",
                    bytes, (unsigned long long) want);
    void *copy = malloc(bytes ? bytes : 1);
    if (copy == NULL)
        return ir_error_set(err, KILN_ENOMEM, "data", "out of memory for %zu bytes of data", bytes);
    if (bytes)
        memcpy(copy, data, bytes);
    own(g, copy);
    n.attr.array.data = copy;
    n.attr.array.bytes = bytes;
    return append(g, &n);
}

int ir_add_const(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape,
                 struct ir_scalar value, struct ir_error *err)
{
    struct ir_node n;
    if (reserve(g, 0, err) < 0 || shaped(&n, IR_OP_CONST, dt, rank, shape, err) < 0 ||
        scalar_fits(dt, value, "value", err) < 0)
        return -1;
    n.attr.scalar = value;
    return append(g, &n);
}

int ir_add_index(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape, int dim,
                 struct ir_error *err)
{
    struct ir_node n;
    if (reserve(g, 0, err) < 0 || shaped(&n, IR_OP_INDEX, dt, rank, shape, err) < 0)
        return -1;
    if (dt != IR_DTYPE_INT32 && dt != IR_DTYPE_INT64)
        return ir_error_set(err, KILN_EVALUE, "dtype", "index gives int32 or int64, not %s",
                    ir_dtype_name(dt));
    if (dim < 0 || dim >= rank)
        return ir_error_set(err, KILN_EVALUE, "dim", "dim %d is not a dimension of a rank-%d shape", dim,
                    rank);
    if (dt == IR_DTYPE_INT32 && shape[dim] - 1 > INT32_MAX)
        return ir_error_set(err, KILN_EVALUE, "dtype", "coordinates along dim %d do not fit int32", dim);
    n.attr.index.dim = (uint8_t) dim;
    return append(g, &n);
}

int ir_add_random(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape,
                  enum ir_random_dist dist, uint64_t seed, uint64_t offset, struct ir_error *err)
{
    struct ir_node n;
    if (reserve(g, 0, err) < 0 || shaped(&n, IR_OP_RANDOM, dt, rank, shape, err) < 0)
        return -1;
    if (!is_float(dt))
        return ir_error_set(err, KILN_EVALUE, "dtype", "random gives float32 or float64, not %s",
                    ir_dtype_name(dt));
    if (dist != IR_RANDOM_UNIFORM && dist != IR_RANDOM_NORMAL)
        return ir_error_set(err, KILN_EVALUE, "dist", "unknown distribution %d", (int) dist);
    n.attr.random.dist = (uint8_t) dist;
    n.attr.random.seed = seed;
    n.attr.random.offset = offset;
    return append(g, &n);
}

int ir_add_extern(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape,
                  struct ir_error *err)
{
    struct ir_node n;
    if (reserve(g, 0, err) < 0 || shaped(&n, IR_OP_EXTERN, dt, rank, shape, err) < 0)
        return -1;
    n.attr.ext.slot = g->nextern++;
    return append(g, &n);
}

/* ---- views and element-wise ops ---------------------------------------- */

int ir_add_reshape(struct ir_graph *g, int x, int rank, const int64_t *shape,
                   struct ir_error *err)
{
    if (reserve(g, 0, err) < 0) /* before taking node pointers: it may move them */
        return -1;
    const struct ir_node *in = input(g, x, "in[0]", err);
    struct ir_node n;
    if (in == NULL || shaped(&n, IR_OP_RESHAPE, (enum ir_dtype) in->dtype, rank, shape, err) < 0)
        return -1;
    if (n.numel != in->numel)
        return ir_error_set(err, KILN_EVALUE, "shape",
                    "reshape to %lld elements from %lld: the counts must match",
                    (long long) n.numel, (long long) in->numel);
    n.nin = 1;
    n.in[0] = (uint32_t) x;
    return append(g, &n);
}

/* Copy x's shape into a new node of `op` and `dt` with the given inputs. */
static void like(struct ir_node *n, const struct ir_node *x, int op, int dt, int nin,
                 const int *ins)
{
    memset(n, 0, sizeof(*n));
    n->op = (uint16_t) op;
    n->dtype = (uint8_t) dt;
    n->rank = x->rank;
    memcpy(n->shape, x->shape, sizeof(n->shape));
    n->numel = x->numel;
    n->nin = (uint8_t) nin;
    for (int i = 0; i < nin; i++)
        n->in[i] = (uint32_t) ins[i];
}

int ir_add_unary(struct ir_graph *g, enum ir_op op, int x, struct ir_error *err)
{
    if (reserve(g, 0, err) < 0) /* before taking node pointers: it may move them */
        return -1;
    const struct ir_node *in = input(g, x, "in[0]", err);
    if (in == NULL)
        return -1;
    int dt = in->dtype, out = dt;
    const char *name = ir_op_name(op);
    bool ok;
    switch (op) {
    case IR_OP_EXP: case IR_OP_LOG: case IR_OP_SQRT: case IR_OP_RSQRT: case IR_OP_SIN:
    case IR_OP_COS: case IR_OP_TAN: case IR_OP_TANH: case IR_OP_SIGMOID: case IR_OP_ERF:
    case IR_OP_FLOOR: case IR_OP_CEIL: case IR_OP_ROUND:
        ok = is_float(dt);
        break;
    case IR_OP_NEG: case IR_OP_ABS: case IR_OP_SIGN:
        ok = is_float(dt) || is_int(dt);
        break;
    case IR_OP_BITWISE_NOT:
        ok = is_bool(dt) || is_int(dt);
        break;
    case IR_OP_LOGICAL_NOT:
        ok = true;
        out = IR_DTYPE_BOOL;
        break;
    default:
        return ir_error_set(err, KILN_EVALUE, "op", "op %d is not a unary element-wise op", (int) op);
    }
    if (!ok)
        return ir_error_set(err, KILN_ETYPE, "in[0]", "%s does not take %s", name, ir_dtype_name(dt));
    struct ir_node n;
    like(&n, in, op, out, 1, &x);
    return append(g, &n);
}

int ir_add_cast(struct ir_graph *g, int x, enum ir_dtype to, struct ir_error *err)
{
    if (reserve(g, 0, err) < 0) /* before taking node pointers: it may move them */
        return -1;
    const struct ir_node *in = input(g, x, "in[0]", err);
    if (in == NULL)
        return -1;
    if (!ir_dtype_valid(to))
        return ir_error_set(err, KILN_EVALUE, "dtype", "dtype %d is not a dtype", (int) to);
    struct ir_node n;
    like(&n, in, IR_OP_CAST, to, 1, &x);
    return append(g, &n);
}

int ir_add_binary(struct ir_graph *g, enum ir_op op, int a, int b, struct ir_error *err)
{
    if (reserve(g, 0, err) < 0) /* before taking node pointers: it may move them */
        return -1;
    const struct ir_node *na = input(g, a, "in[0]", err);
    const struct ir_node *nb = na ? input(g, b, "in[1]", err) : NULL;
    if (nb == NULL)
        return -1;
    const char *name = ir_op_name(op);
    if (op < IR_OP_ADD || op > IR_OP_SHR)
        return ir_error_set(err, KILN_EVALUE, "op", "op %d is not a binary element-wise op", (int) op);
    if (na->dtype != nb->dtype)
        return ir_error_set(err, KILN_ETYPE, "in[1]", "%s of %s and %s: inputs must have one dtype", name,
                    ir_dtype_name(na->dtype), ir_dtype_name(nb->dtype));
    if (!same_shape(na, nb))
        return ir_error_set(err, KILN_EVALUE, "in[1]",
                    "%s of different shapes: broadcast explicitly first", name);
    int dt = na->dtype, out = dt;
    bool ok;
    switch (op) {
    case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_MAXIMUM: case IR_OP_MINIMUM:
    case IR_OP_POW: case IR_OP_FLOOR_DIV: case IR_OP_MOD:
        ok = is_int(dt) || is_float(dt);
        break;
    case IR_OP_DIV:
        ok = is_float(dt);
        break;
    case IR_OP_EQ: case IR_OP_NE: case IR_OP_LT: case IR_OP_LE: case IR_OP_GT: case IR_OP_GE:
    case IR_OP_LOGICAL_AND: case IR_OP_LOGICAL_OR: case IR_OP_LOGICAL_XOR:
        ok = true;
        out = IR_DTYPE_BOOL;
        break;
    case IR_OP_BITWISE_AND: case IR_OP_BITWISE_OR: case IR_OP_BITWISE_XOR:
        ok = is_bool(dt) || is_int(dt);
        break;
    default: /* SHL, SHR */
        ok = is_int(dt);
        break;
    }
    if (!ok)
        return ir_error_set(err, KILN_ETYPE, "in[0]", "%s does not take %s", name, ir_dtype_name(dt));
    struct ir_node n;
    int ins[2] = {a, b};
    like(&n, na, op, out, 2, ins);
    return append(g, &n);
}

int ir_add_where(struct ir_graph *g, int cond, int a, int b, struct ir_error *err)
{
    if (reserve(g, 0, err) < 0) /* before taking node pointers: it may move them */
        return -1;
    const struct ir_node *nc = input(g, cond, "in[0]", err);
    const struct ir_node *na = nc ? input(g, a, "in[1]", err) : NULL;
    const struct ir_node *nb = na ? input(g, b, "in[2]", err) : NULL;
    if (nb == NULL)
        return -1;
    if (na->dtype != nb->dtype)
        return ir_error_set(err, KILN_ETYPE, "in[2]", "where of %s and %s: values must have one dtype",
                    ir_dtype_name(na->dtype), ir_dtype_name(nb->dtype));
    if (!same_shape(nc, na) || !same_shape(na, nb))
        return ir_error_set(err, KILN_EVALUE, !same_shape(nc, na) ? "in[1]" : "in[2]",
                    "where of different shapes: broadcast explicitly first");
    struct ir_node n;
    int ins[3] = {cond, a, b};
    like(&n, na, IR_OP_WHERE, na->dtype, 3, ins);
    return append(g, &n);
}

/* ---- broadcast and reduce ---------------------------------------------- */

static int popcount16(uint16_t v)
{
    int c = 0;
    for (; v; v &= (uint16_t) (v - 1))
        c++;
    return c;
}

int ir_add_broadcast(struct ir_graph *g, int x, int rank, const int64_t *shape, uint16_t dims,
                     struct ir_error *err)
{
    if (reserve(g, 0, err) < 0) /* before taking node pointers: it may move them */
        return -1;
    const struct ir_node *in = input(g, x, "in[0]", err);
    struct ir_node n;
    if (in == NULL ||
        shaped(&n, IR_OP_BROADCAST_TO, (enum ir_dtype) in->dtype, rank, shape, err) < 0)
        return -1;
    if (rank < in->rank)
        return ir_error_set(err, KILN_EVALUE, "shape", "broadcast_to rank %d is below the input's %d",
                    rank, in->rank);
    if ((dims >> rank) != 0 || popcount16(dims) != rank - in->rank)
        return ir_error_set(err, KILN_EVALUE, "dims",
                    "dims must mark exactly the %d new dimensions of the rank-%d output",
                    rank - in->rank, rank);
    for (int d = 0, k = 0; d < rank; d++) {
        if (dims & (1u << d))
            continue;
        if (in->shape[k] != shape[d] && in->shape[k] != 1)
            return ir_error_set(err, KILN_EVALUE, "shape",
                        "input dim %d (%lld) cannot stretch to output dim %d (%lld)", k,
                        (long long) in->shape[k], d, (long long) shape[d]);
        k++;
    }
    n.nin = 1;
    n.in[0] = (uint32_t) x;
    n.attr.broadcast.dims = dims;
    return append(g, &n);
}

int ir_add_reduce(struct ir_graph *g, enum ir_reduce_op op, int x, uint16_t dims, bool keepdims,
                  struct ir_error *err)
{
    if (reserve(g, 0, err) < 0) /* before taking node pointers: it may move them */
        return -1;
    const struct ir_node *in = input(g, x, "in[0]", err);
    if (in == NULL)
        return -1;
    if (op < IR_REDUCE_ADD || op >= IR_REDUCE_END)
        return ir_error_set(err, KILN_EVALUE, "op", "unknown reduce op %d", (int) op);
    if (op == IR_REDUCE_MEAN ? !is_float(in->dtype) : !(is_int(in->dtype) || is_float(in->dtype)))
        return ir_error_set(err, KILN_ETYPE, "in[0]", "reduce %s does not take %s",
                    op == IR_REDUCE_MEAN ? "mean" : "add/mul/max/min",
                    ir_dtype_name(in->dtype));
    if ((dims >> in->rank) != 0)
        return ir_error_set(err, KILN_EVALUE, "dims", "dims name a dimension the rank-%d input lacks",
                    in->rank);
    int64_t shape[KILN_LIMIT_RANK];
    int rank = 0;
    for (int d = 0; d < in->rank; d++) {
        if (!(dims & (1u << d)))
            shape[rank++] = in->shape[d];
        else if (keepdims)
            shape[rank++] = 1;
    }
    struct ir_node n;
    if (shaped(&n, IR_OP_REDUCE, (enum ir_dtype) in->dtype, rank, shape, err) < 0)
        return -1;
    n.nin = 1;
    n.in[0] = (uint32_t) x;
    n.attr.reduce.op = (uint8_t) op;
    n.attr.reduce.keepdims = keepdims;
    n.attr.reduce.dims = dims;
    return append(g, &n);
}

/* ---- relay ops ----------------------------------------------------------- */

int ir_add_matmul(struct ir_graph *g, int a, int b, bool ta, bool tb, struct ir_error *err)
{
    if (reserve(g, 0, err) < 0)
        return -1;
    const struct ir_node *A = input(g, a, "in[0]", err), *B = input(g, b, "in[1]", err);
    if (A == NULL || B == NULL)
        return -1;
    if (!is_float(A->dtype))
        return ir_error_set(err, KILN_ETYPE, "in[0]", "matmul takes float32 or float64, not %s",
                            ir_dtype_name(A->dtype));
    if (B->dtype != A->dtype)
        return ir_error_set(err, KILN_ETYPE, "in[1]", "matmul operands differ in dtype (%s, %s)",
                            ir_dtype_name(A->dtype), ir_dtype_name(B->dtype));
    if (A->rank < 2 || B->rank != A->rank)
        return ir_error_set(err, KILN_EVALUE, "in[1]",
                            "matmul needs two operands of one rank >= 2 (ranks %d and %d)",
                            A->rank, B->rank);
    int r = A->rank;
    for (int d = 0; d < r - 2; d++)
        if (A->shape[d] != B->shape[d])
            return ir_error_set(err, KILN_EVALUE, "in[1]",
                                "matmul batch dim %d differs (%lld and %lld)", d,
                                (long long) A->shape[d], (long long) B->shape[d]);
    int64_t n = A->shape[r - 2 + (ta ? 1 : 0)], k = A->shape[r - 1 - (ta ? 1 : 0)];
    int64_t kb = B->shape[r - 2 + (tb ? 1 : 0)], m = B->shape[r - 1 - (tb ? 1 : 0)];
    if (k != kb)
        return ir_error_set(err, KILN_EVALUE, "in[1]",
                            "matmul inner dims differ (%lld and %lld)", (long long) k,
                            (long long) kb);
    int64_t shape[KILN_LIMIT_RANK];
    memcpy(shape, A->shape, (size_t) r * sizeof(shape[0]));
    shape[r - 2] = n;
    shape[r - 1] = m;
    struct ir_node nd;
    if (shaped(&nd, IR_OP_MATMUL, (enum ir_dtype) A->dtype, r, shape, err) < 0)
        return -1;
    nd.nin = 2;
    nd.in[0] = (uint32_t) a;
    nd.in[1] = (uint32_t) b;
    nd.attr.matmul.ta = ta;
    nd.attr.matmul.tb = tb;
    return append(g, &nd);
}

int64_t ir_conv_out_dim(int64_t in, int64_t k, int32_t stride, int32_t pad, int32_t dilation)
{
    int64_t span = (int64_t) dilation * (k - 1) + 1;
    int64_t room = in + 2 * (int64_t) pad - span;
    return room < 0 ? -1 : room / stride + 1;
}

/* The attributes, and that x [N,C,H,W], w [O,C/g,kh,kw] and y [N,O,oh,ow]
 * fit together. */
static int conv_check(const struct ir_conv *c, const int64_t *x, const int64_t *w,
                      const int64_t *y, const char *xf, const char *wf, const char *yf,
                      struct ir_error *err)
{
    static const char *const names[] = {"stride", "padding", "dilation"};
    const int32_t *v[] = {c->stride, c->pad, c->dilation};
    for (int a = 0; a < 3; a++)
        for (int d = 0; d < 2; d++)
            if (v[a][d] < (a == 1 ? 0 : 1) || v[a][d] > KILN_LIMIT_CONV_ATTR)
                return ir_error_set(err, v[a][d] > KILN_LIMIT_CONV_ATTR ? KILN_ELIMIT : KILN_EVALUE,
                                    names[a], "%s[%d] is %d: it must be %s and at most %d",
                                    names[a], d, (int) v[a][d],
                                    a == 1 ? "non-negative" : "positive", KILN_LIMIT_CONV_ATTR);
    if (c->groups < 1 || c->groups > KILN_LIMIT_CONV_ATTR)
        return ir_error_set(err, c->groups < 1 ? KILN_EVALUE : KILN_ELIMIT, "groups",
                            "groups is %d: it must be between 1 and %d", (int) c->groups,
                            KILN_LIMIT_CONV_ATTR);
    if (x[1] % c->groups != 0 || w[0] % c->groups != 0 || x[1] / c->groups != w[1])
        return ir_error_set(err, KILN_EVALUE, wf,
                            "%s [%lld, %lld, ..] does not fit %lld input channels in %d groups",
                            wf, (long long) w[0], (long long) w[1], (long long) x[1],
                            (int) c->groups);
    for (int d = 0; d < 2; d++) {
        int64_t o = ir_conv_out_dim(x[2 + d], w[2 + d], c->stride[d], c->pad[d], c->dilation[d]);
        if (o < 1)
            return ir_error_set(err, KILN_EVALUE, xf,
                                "the %s window does not fit %s's size %lld (kernel %lld, "
                                "padding %d, dilation %d)",
                                d ? "width" : "height", xf, (long long) x[2 + d],
                                (long long) w[2 + d], (int) c->pad[d], (int) c->dilation[d]);
        if (y != NULL && y[2 + d] != o)
            return ir_error_set(err, KILN_EVALUE, yf,
                                "%s's %s is %lld but the convolution gives %lld", yf,
                                d ? "width" : "height", (long long) y[2 + d], (long long) o);
    }
    if (y != NULL && (y[0] != x[0] || y[1] != w[0]))
        return ir_error_set(err, KILN_EVALUE, yf,
                            "%s is [%lld, %lld, ..] but batch and output channels are "
                            "[%lld, %lld]", yf, (long long) y[0], (long long) y[1],
                            (long long) x[0], (long long) w[0]);
    return 0;
}

int ir_add_conv(struct ir_graph *g, enum ir_op op, int in0, int in1, int rank,
                const int64_t *shape, const struct ir_conv *attr, struct ir_error *err)
{
    if (reserve(g, 0, err) < 0)
        return -1;
    const struct ir_node *P = input(g, in0, "in[0]", err), *Q = input(g, in1, "in[1]", err);
    if (P == NULL || Q == NULL)
        return -1;
    if (op != IR_OP_CONV2D && op != IR_OP_CONV2D_BWD_DATA && op != IR_OP_CONV2D_BWD_WEIGHT)
        return ir_error_set(err, KILN_EVALUE, "op", "op %d is not a convolution", (int) op);
    if (P->dtype != IR_DTYPE_FLOAT32 && P->dtype != IR_DTYPE_FLOAT64)
        return ir_error_set(err, KILN_ETYPE, "in[0]", "%s takes float32 or float64, not %s",
                            ir_op_name(op), ir_dtype_name(P->dtype));
    if (Q->dtype != P->dtype)
        return ir_error_set(err, KILN_ETYPE, "in[1]", "%s's inputs differ in dtype (%s, %s)",
                            ir_op_name(op), ir_dtype_name(P->dtype), ir_dtype_name(Q->dtype));
    if (P->rank != 4 || Q->rank != 4)
        return ir_error_set(err, KILN_EVALUE, P->rank != 4 ? "in[0]" : "in[1]",
                            "%s takes rank-4 inputs (ranks %d and %d)", ir_op_name(op), P->rank,
                            Q->rank);
    int64_t out[4];
    if (op == IR_OP_CONV2D) {
        if (conv_check(attr, P->shape, Q->shape, NULL, "in[0]", "in[1]", "", err) < 0)
            return -1;
        out[0] = P->shape[0];
        out[1] = Q->shape[0];
        for (int d = 0; d < 2; d++)
            out[2 + d] = ir_conv_out_dim(P->shape[2 + d], Q->shape[2 + d], attr->stride[d],
                                         attr->pad[d], attr->dilation[d]);
    } else {
        if (rank != 4)
            return ir_error_set(err, KILN_EVALUE, "shape", "%s needs a rank-4 shape, not rank %d",
                                ir_op_name(op), rank);
        for (int d = 0; d < 4; d++)
            if (shape[d] < 1)
                return ir_error_set(err, KILN_EVALUE, "shape", "shape[%d] of %s must be positive",
                                    d, ir_op_name(op));
        int rc = op == IR_OP_CONV2D_BWD_DATA
                     ? conv_check(attr, shape, Q->shape, P->shape, "shape", "in[1]", "in[0]", err)
                     : conv_check(attr, P->shape, shape, Q->shape, "in[0]", "shape", "in[1]", err);
        if (rc < 0)
            return -1;
        memcpy(out, shape, sizeof out);
    }
    struct ir_node nd;
    if (shaped(&nd, op, (enum ir_dtype) P->dtype, 4, out, err) < 0)
        return -1;
    nd.nin = 2;
    nd.in[0] = (uint32_t) in0;
    nd.in[1] = (uint32_t) in1;
    nd.attr.conv = *attr;
    return append(g, &nd);
}

/* ---- reindex ------------------------------------------------------------ */

/* Parse one expression text into a graph-owned AST. */
static int parse_into(struct ir_graph *g, const char *text, size_t len,
                      const struct ir_expr_scope *sc, struct ir_expr **out, const char *field,
                      struct ir_error *err)
{
    char msg[200];
    if (text == NULL)
        return ir_error_set(err, KILN_EVALUE, field, "%s is missing", field);
    int rc = ir_expr_parse(text, len, sc, out, msg, sizeof(msg));
    if (rc != KILN_OK)
        return ir_error_set(err, rc, field, "%s: %s", field, msg);
    own(g, *out);
    return 0;
}

/* Copy one parsed expression into a graph-owned one for scope `sc`. */
static int copy_into(struct ir_graph *g, const struct ir_expr *src, int swap_xy,
                     const struct ir_expr_scope *sc, struct ir_expr **out, const char *field,
                     struct ir_error *err)
{
    char msg[200];
    if (src == NULL)
        return ir_error_set(err, KILN_EVALUE, field, "%s is missing", field);
    int rc = ir_expr_copy(src, swap_xy, sc, out, msg, sizeof(msg));
    if (rc != KILN_OK)
        return ir_error_set(err, rc, field, "%s: %s", field, msg);
    own(g, *out);
    return 0;
}

/* Shared by REINDEX and REINDEX_REDUCE: everything but the op-specific
 * checks. Expressions come as text (t) or parsed (a, when t is NULL): the
 * common fields are read into `t` from either. */
static int add_reindex_any(struct ir_graph *g, int op, enum ir_reduce_op rop, int x, int rank,
                           const int64_t *shape, const struct ir_reindex_text *t,
                           const struct ir_reindex_ast *a, struct ir_error *err);

static int add_reindex(struct ir_graph *g, int op, enum ir_reduce_op rop, int x, int rank,
                       const int64_t *shape, const struct ir_reindex_text *t,
                       struct ir_error *err)
{
    return add_reindex_any(g, op, rop, x, rank, shape, t, NULL, err);
}

static int add_reindex_any(struct ir_graph *g, int op, enum ir_reduce_op rop, int x, int rank,
                           const int64_t *shape, const struct ir_reindex_text *text,
                           const struct ir_reindex_ast *a, struct ir_error *err)
{
    struct ir_reindex_text common = {0};
    if (text == NULL) {
        common.nexprs = a->nexprs;
        common.nconds = a->nconds;
        common.nextras = a->nextras;
        common.extras = a->extras;
        common.overflow = a->overflow;
    }
    const struct ir_reindex_text *t = text != NULL ? text : &common;
    if (t->nexprs < 0 || t->nexprs > KILN_LIMIT_RANK)
        return ir_error_set(err, KILN_ELIMIT, "exprs", "%d index expressions: at most %d", t->nexprs,
                    KILN_LIMIT_RANK);
    if (t->nconds < 0 || t->nconds > IR_MAX_CONDS)
        return ir_error_set(err, KILN_ELIMIT, "conds", "%d overflow conditions: at most %d", t->nconds,
                    IR_MAX_CONDS);
    if (t->nextras < 0 || t->nextras > KILN_LIMIT_EXPR_EXTRAS)
        return ir_error_set(err, KILN_ELIMIT, "extras", "%d extra inputs: at most %d", t->nextras,
                    KILN_LIMIT_EXPR_EXTRAS);
    /* One owned block for the attributes, one per expression, one for the
     * condition array; and before taking node pointers, which it may move. */
    if (reserve(g, 2 + (size_t) t->nexprs + (size_t) t->nconds, err) < 0)
        return -1;
    const struct ir_node *in = input(g, x, "in[0]", err);
    struct ir_node n;
    if (in == NULL || shaped(&n, op, (enum ir_dtype) in->dtype, rank, shape, err) < 0)
        return -1;
    bool reduce = op == IR_OP_REINDEX_REDUCE;
    int want = reduce ? rank : in->rank;
    if (t->nexprs != want)
        return ir_error_set(err, KILN_EVALUE, "exprs", "%s needs %d index expressions (one per %s dim), "
                    "not %d", ir_op_name(op), want, reduce ? "output" : "input", t->nexprs);
    if (reduce && (rop < IR_REDUCE_ADD || rop > IR_REDUCE_MIN))
        return ir_error_set(err, KILN_EVALUE, "op", "reindex_reduce takes add, mul, max or min");
    if (reduce && !(is_int(in->dtype) || is_float(in->dtype)))
        return ir_error_set(err, KILN_ETYPE, "in[0]", "reindex_reduce does not take %s",
                    ir_dtype_name(in->dtype));
    if (!reduce && scalar_fits((enum ir_dtype) in->dtype, t->overflow, "overflow_value", err) < 0)
        return -1;

    struct ir_expr_scope sc = {
        .loop_rank = reduce ? in->rank : rank,
        .xrank = in->rank,
        .yrank = rank,
        .nextras = t->nextras,
    };
    for (int k = 0; k < t->nextras; k++) {
        char field[24];
        snprintf(field, sizeof(field), "in[%d]", k + 1);
        const struct ir_node *e = input(g, t->extras[k], field, err);
        if (e == NULL)
            return -1;
        if (!(is_int(e->dtype) || is_bool(e->dtype)))
            return ir_error_set(err, KILN_ETYPE, field, "extra input @e%d must hold integers, not %s", k,
                        ir_dtype_name(e->dtype));
        sc.extra_rank[k] = e->rank;
    }
    size_t owned_before = g->nowned;
    struct ir_reindex *r = calloc(1, sizeof(*r));
    struct ir_expr **conds = t->nconds ? calloc((size_t) t->nconds, sizeof(*conds)) : NULL;
    if (r == NULL || (t->nconds && conds == NULL)) {
        free(r);
        free(conds);
        return ir_error_set(err, KILN_ENOMEM, "", "out of memory for reindex attributes");
    }
    own(g, r);
    if (conds)
        own(g, conds);
    r->nexprs = (uint8_t) t->nexprs;
    r->nconds = (uint8_t) t->nconds;
    r->nextras = (uint8_t) t->nextras;
    r->op = reduce ? (uint8_t) rop : 0;
    r->conds = conds;
    r->overflow = t->overflow;
    int rc = 0;
    for (int d = 0; rc == 0 && d < t->nexprs; d++) {
        char field[24];
        snprintf(field, sizeof(field), "exprs[%d]", d);
        rc = text != NULL
                 ? parse_into(g, t->exprs[d], t->expr_len[d], &sc, &r->exprs[d], field, err)
                 : copy_into(g, a->exprs[d], a->swap_xy, &sc, &r->exprs[d], field, err);
    }
    for (int c = 0; rc == 0 && c < t->nconds; c++) {
        char field[24];
        snprintf(field, sizeof(field), "conds[%d]", c);
        rc = text != NULL
                 ? parse_into(g, t->conds[c], t->cond_len[c], &sc, &conds[c], field, err)
                 : copy_into(g, a->conds[c], a->swap_xy, &sc, &conds[c], field, err);
    }
    if (rc < 0) {
        /* Undo: the graph must be as it was. */
        while (g->nowned > owned_before)
            free(g->owned[--g->nowned]);
        return -1;
    }
    n.nin = (uint8_t) (1 + t->nextras);
    n.in[0] = (uint32_t) x;
    for (int k = 0; k < t->nextras; k++)
        n.in[1 + k] = (uint32_t) t->extras[k];
    n.attr.reindex = r;
    return append(g, &n);
}

int ir_add_reindex(struct ir_graph *g, int x, int rank, const int64_t *shape,
                   const struct ir_reindex_text *t, struct ir_error *err)
{
    return add_reindex(g, IR_OP_REINDEX, IR_REDUCE_ADD, x, rank, shape, t, err);
}

int ir_add_reindex_reduce(struct ir_graph *g, enum ir_reduce_op op, int x, int rank,
                          const int64_t *shape, const struct ir_reindex_text *t,
                          struct ir_error *err)
{
    return add_reindex(g, IR_OP_REINDEX_REDUCE, op, x, rank, shape, t, err);
}

int ir_add_reindex_ast(struct ir_graph *g, int x, int rank, const int64_t *shape,
                       const struct ir_reindex_ast *t, struct ir_error *err)
{
    return add_reindex_any(g, IR_OP_REINDEX, IR_REDUCE_ADD, x, rank, shape, NULL, t, err);
}

int ir_add_reindex_reduce_ast(struct ir_graph *g, enum ir_reduce_op op, int x, int rank,
                              const int64_t *shape, const struct ir_reindex_ast *t,
                              struct ir_error *err)
{
    return add_reindex_any(g, IR_OP_REINDEX_REDUCE, op, x, rank, shape, NULL, t, err);
}

/* ---- marks ------------------------------------------------------------- */

struct ir_graph_mark ir_graph_mark(const struct ir_graph *g)
{
    return (struct ir_graph_mark){g->count, g->nextern, g->nowned};
}

void ir_graph_undo(struct ir_graph *g, struct ir_graph_mark m)
{
    while (g->nowned > m.nowned)
        free(g->owned[--g->nowned]);
    g->count = m.count;
    g->nextern = m.nextern;
}
