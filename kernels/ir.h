/* ir.h: kiln's graph IR — the meta-operators, their validating
 * constructors and the graph that holds them.
 *
 * A graph from the wire becomes IR only through the ir_add_* constructors
 * below: each checks arity, dtypes, ranks, shapes and attributes, infers
 * the result's dtype and shape, and either appends a node or leaves the
 * graph unchanged and fills a struct ir_error naming what is wrong. So
 * every node in a graph is valid by construction, and everything after
 * this layer (autodiff, fusion, codegen, the reference interpreter) may
 * rely on that without checking again.
 *
 * Graphs are append-only and topologically ordered by construction: a
 * node's inputs are nodes added before it, so a graph can never hold a
 * cycle. (The wire ingest is where forward references and cycles in a
 * client's node list are detected and refused.)
 *
 * Type rules here are strict: inputs of an element-wise op have the same
 * dtype and shape. Promotion (ir_dtype_promote) and implicit broadcasting
 * are applied by whoever builds the graph (the wire ingest), by inserting
 * CAST and BROADCAST_TO nodes, so they are visible to fusion and autodiff.
 *
 * Ownership: a graph owns its nodes and everything they point to (parsed
 * expressions, copies of array data). ir_graph_fini frees it all and is
 * safe on a zeroed graph. Threads: a graph is built by one thread; once
 * built it is immutable and may be read from any number of threads.
 */
#ifndef KILN_IR_H
#define KILN_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "expr.h"
#include "kiln_limits.h"

/* Op numbers go on the wire: stable forever, never renumbered. Gaps leave
 * room in each family. */
enum ir_op {
    IR_OP_INVALID = 0,
    /* Sources: no inputs; shape and dtype given. */
    IR_OP_ARRAY = 1,  /* attr.array: bytes the client uploaded */
    IR_OP_CONST = 2,  /* attr.scalar: one value filling the shape */
    IR_OP_INDEX = 3,  /* attr.index: each element is its coordinate along dim */
    IR_OP_RANDOM = 4, /* attr.random: counter-based uniform [0,1) or standard normal */
    IR_OP_EXTERN = 5, /* attr.ext: a value bound at run time (a session var); never on the wire */
    /* Views. */
    IR_OP_RESHAPE = 8, /* one input; same element count, row-major order kept */
    /* Element-wise, one input, same shape. */
    IR_OP_NEG = 16,
    IR_OP_ABS,
    IR_OP_EXP,
    IR_OP_LOG,
    IR_OP_SQRT,
    IR_OP_RSQRT,
    IR_OP_SIN,
    IR_OP_COS,
    IR_OP_TAN,
    IR_OP_TANH,
    IR_OP_SIGMOID,
    IR_OP_ERF,
    IR_OP_FLOOR,
    IR_OP_CEIL,
    IR_OP_ROUND, /* half to even, as numpy */
    IR_OP_SIGN,
    IR_OP_LOGICAL_NOT,
    IR_OP_BITWISE_NOT,
    IR_OP_CAST, /* to the node's dtype */
    /* Element-wise, two inputs of one dtype and shape. */
    IR_OP_ADD = 48,
    IR_OP_SUB,
    IR_OP_MUL,
    IR_OP_DIV,       /* true division: floats only */
    IR_OP_FLOOR_DIV, /* Python semantics: rounds toward -inf */
    IR_OP_MOD,       /* Python semantics: the sign of the divisor */
    IR_OP_POW,
    IR_OP_MAXIMUM,
    IR_OP_MINIMUM,
    IR_OP_EQ,
    IR_OP_NE,
    IR_OP_LT,
    IR_OP_LE,
    IR_OP_GT,
    IR_OP_GE,
    IR_OP_LOGICAL_AND,
    IR_OP_LOGICAL_OR,
    IR_OP_LOGICAL_XOR,
    IR_OP_BITWISE_AND,
    IR_OP_BITWISE_OR,
    IR_OP_BITWISE_XOR,
    IR_OP_SHL,
    IR_OP_SHR,
    /* Element-wise, three inputs: cond (any dtype, non-zero is true), a, b. */
    IR_OP_WHERE = 80,
    /* Shape-changing meta-operators. */
    IR_OP_BROADCAST_TO = 96, /* attr.broadcast */
    IR_OP_REINDEX = 97,      /* attr.reindex; inputs: x, then extras */
    IR_OP_REDUCE = 98,       /* attr.reduce */
    IR_OP_REINDEX_REDUCE = 99, /* attr.reindex (with op); inputs: x, then extras */
    /* Relay ops: contractions the JIT hands to a library (jit/relay.h).
     * Each has a reference definition in the interpreter and a meta-op
     * lowering (kernels/lower.h) that computes the same sums. */
    IR_OP_MATMUL = 104,            /* attr.matmul; inputs: a, b */
    IR_OP_CONV2D = 105,            /* attr.conv; inputs: x [N,C,H,W], w [O,C/g,kh,kw] */
    IR_OP_CONV2D_BWD_DATA = 106,   /* attr.conv; inputs: dy, w; shape: x's */
    IR_OP_CONV2D_BWD_WEIGHT = 107, /* attr.conv; inputs: x, dy; shape: w's */
    IR_OP_END
};

/* "add", "reindex_reduce", ...; NULL for a number that is not an op. */
const char *ir_op_name(int op);

/* Reduction operators, for REDUCE and REINDEX_REDUCE. Wire numbers. */
enum ir_reduce_op {
    IR_REDUCE_ADD = 1,
    IR_REDUCE_MUL = 2,
    IR_REDUCE_MAX = 3,
    IR_REDUCE_MIN = 4,
    IR_REDUCE_MEAN = 5, /* REDUCE only, float dtypes only */
    IR_REDUCE_END
};

enum ir_random_dist {
    IR_RANDOM_UNIFORM = 1, /* [0, 1) */
    IR_RANDOM_NORMAL = 2,  /* mean 0, standard deviation 1 */
};

/* A scalar in the node's dtype: `i` for bool and integers, `f` for floats. */
struct ir_scalar {
    int64_t i;
    double f;
};

/* Index expressions and conditions of REINDEX / REINDEX_REDUCE. For
 * REINDEX the loop runs over the output: i0.. are output coordinates,
 * exprs[d] gives input coordinate d (nexprs == input rank), and an element
 * whose input coordinates fall outside the input, or for which any cond is
 * non-zero, is `overflow`. For REINDEX_REDUCE the loop runs over the
 * input: exprs[d] gives output coordinate d (nexprs == output rank), and
 * an input element that lands outside the output, or for which any cond
 * is non-zero, is dropped; the output starts at the identity of `op`.
 * Extra inputs (read by @e0..) hold bool or integer values. */
struct ir_reindex {
    uint8_t nexprs;
    uint8_t nconds;
    uint8_t nextras; /* extra inputs after x, read by @e0.. */
    uint8_t op;      /* enum ir_reduce_op; REINDEX_REDUCE only (not MEAN) */
    struct ir_expr *exprs[KILN_LIMIT_RANK];
    struct ir_expr **conds; /* nconds, owned by the graph */
    struct ir_scalar overflow; /* REINDEX only */
};

union ir_attr {
    struct {
        const void *data; /* owned by the graph: row-major, little-endian */
        size_t bytes;
    } array;
    struct ir_scalar scalar; /* CONST */
    struct {
        uint8_t dim;
    } index;
    struct {
        uint8_t dist; /* enum ir_random_dist */
        uint64_t seed;
        uint64_t offset; /* counter of element 0: a stream position, so calls differ */
    } random;
    struct {
        uint32_t slot; /* which run-time binding */
    } ext;
    struct {
        uint16_t dims; /* bit d set: output dim d is new (not from the input) */
    } broadcast;
    struct {
        uint8_t op;       /* enum ir_reduce_op */
        uint8_t keepdims; /* reduced dims stay as size 1 */
        uint16_t dims;    /* bit d set: input dim d is reduced */
    } reduce;
    struct ir_reindex *reindex; /* owned by the graph */
    struct {
        uint8_t ta, tb; /* operand read transposed (its last two dims swapped) */
    } matmul;
    struct ir_conv {
        int32_t stride[2], pad[2], dilation[2]; /* (h, w); each <= KILN_LIMIT_CONV_ATTR */
        int32_t groups;
    } conv;
};

#define IR_MAX_INPUTS (1 + KILN_LIMIT_EXPR_EXTRAS)
#define IR_MAX_CONDS  (4 * KILN_LIMIT_RANK) /* overflow conditions of one reindex */

struct ir_node {
    uint16_t op;    /* enum ir_op */
    uint8_t dtype;  /* enum ir_dtype */
    uint8_t rank;   /* 0..KILN_LIMIT_RANK */
    uint8_t nin;
    uint32_t in[IR_MAX_INPUTS]; /* node indices, each below this node's own */
    int64_t shape[KILN_LIMIT_RANK];
    int64_t numel; /* product of shape, <= KILN_LIMIT_ELEMENTS */
    union ir_attr attr;
};

struct ir_graph {
    struct ir_node *nodes;
    uint32_t count, cap;
    uint32_t nextern; /* EXTERN nodes: slots 0..nextern-1 */
    /* Every allocation nodes point to, freed by ir_graph_fini. */
    void **owned;
    size_t nowned, capowned;
};

/* What was wrong with a constructor call, or with a run. Constructors
 * leave `node` -1 (the ingest knows the client's node number); a run sets
 * it to the graph node that failed. `field` names the argument ("shape",
 * "dims", "in[1]", "exprs[2]"), or for a run the graph node ("nodes[7]"). */
struct ir_error {
    int code; /* enum kiln_err: KILN_EVALUE, KILN_ELIMIT, KILN_ETYPE, KILN_ENOMEM */
    int64_t node;
    char field[64];
    char message[256];
};

/* Fills `err` (when not NULL): code, node -1, field (NULL: ""), and a
 * printf-style message. Returns -1, the constructors' failure value. */
int ir_error_set(struct ir_error *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void ir_graph_init(struct ir_graph *g);
void ir_graph_fini(struct ir_graph *g);

/* The element count of a shape, or -1 (with err filled: KILN_ELIMIT or
 * KILN_EVALUE) when a dim is negative, over KILN_LIMIT_DIM, the rank is
 * over KILN_LIMIT_RANK, or the product overflows or exceeds
 * KILN_LIMIT_ELEMENTS. Checked without overflow. */
int64_t ir_shape_numel(int rank, const int64_t *shape, struct ir_error *err);

/* Constructors. Each returns the new node's index (>= 0), or -1 with
 * `err` filled and the graph unchanged. Input indices must name existing
 * nodes (else KILN_EVALUE naming the input). */

/* `data` is copied; `bytes` must equal numel * dtype size. For bool any
 * non-zero byte means true (backends normalise when they load). */
int ir_add_array(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape,
                 const void *data, size_t bytes, struct ir_error *err);
/* `value.i` is used for bool and integer dtypes (must fit: ir_dtype_int_fits),
 * `value.f` for floats. */
int ir_add_const(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape,
                 struct ir_scalar value, struct ir_error *err);
/* dt: int32 or int64; dim < rank. */
int ir_add_index(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape, int dim,
                 struct ir_error *err);
/* dt: float32 or float64. */
int ir_add_random(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape,
                  enum ir_random_dist dist, uint64_t seed, uint64_t offset,
                  struct ir_error *err);
/* A run-time value; its slot is g->nextern at the call (then incremented). */
int ir_add_extern(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape,
                  struct ir_error *err);
int ir_add_reshape(struct ir_graph *g, int x, int rank, const int64_t *shape,
                   struct ir_error *err);
/* Unary element-wise ops except CAST. Dtype rules: EXP..ERF, FLOOR, CEIL,
 * ROUND need a float; NEG, ABS, SIGN need int or float; BITWISE_NOT bool
 * or int; LOGICAL_NOT any (result bool). */
int ir_add_unary(struct ir_graph *g, enum ir_op op, int x, struct ir_error *err);
int ir_add_cast(struct ir_graph *g, int x, enum ir_dtype to, struct ir_error *err);
/* Binary element-wise ops: same dtype and shape. ADD SUB MUL MAXIMUM
 * MINIMUM POW FLOOR_DIV MOD: int or float; DIV: float; comparisons: any,
 * result bool; LOGICAL_*: any, result bool; BITWISE_*: bool or int; SHL
 * SHR: int. */
int ir_add_binary(struct ir_graph *g, enum ir_op op, int a, int b, struct ir_error *err);
/* cond any dtype; a and b same dtype; all three the same shape. */
int ir_add_where(struct ir_graph *g, int cond, int a, int b, struct ir_error *err);
/* Output `shape` of `rank`; `dims` marks the new output dims; the others,
 * in order, take the input's dims, each equal to the output's or 1. */
int ir_add_broadcast(struct ir_graph *g, int x, int rank, const int64_t *shape, uint16_t dims,
                     struct ir_error *err);
/* `dims` marks the input dims to reduce (may be 0: a copy). ADD/MUL/MAX/MIN
 * need int or float; MEAN a float. */
int ir_add_reduce(struct ir_graph *g, enum ir_reduce_op op, int x, uint16_t dims, bool keepdims,
                  struct ir_error *err);

/* Relay ops (float32 or float64, both inputs one dtype).
 *
 * MATMUL: a [B.., n, k] and b [B.., k, m] of one rank >= 2 with equal
 * batch dims B (no broadcasting); `ta` reads a as [B.., k, n] transposed,
 * `tb` reads b as [B.., m, k] transposed. Result [B.., n, m]: each element
 * sums a*b over k in ascending order (floats in double, rounded once). */
int ir_add_matmul(struct ir_graph *g, int a, int b, bool ta, bool tb, struct ir_error *err);
/* CONV2D: x [N, C, H, W] and w [O, C/groups, kh, kw] give y [N, O, oh, ow]
 * with oh = (H + 2*pad - dilation*(kh-1) - 1) / stride + 1 (>= 1), zero
 * padding, cross-correlation as every framework has it. The gradients:
 * CONV2D_BWD_DATA takes dy [N, O, oh, ow] and w and gives dx of `shape`
 * (x's: [N, C, H, W], whose oh/ow must equal dy's); CONV2D_BWD_WEIGHT
 * takes x and dy and gives dw of `shape` (w's). `op` picks which. */
int ir_add_conv(struct ir_graph *g, enum ir_op op, int in0, int in1, int rank,
                const int64_t *shape, const struct ir_conv *attr, struct ir_error *err);

/* Output extent of a convolution along one dim, or -1 when the window
 * does not fit (the output would be empty). */
int64_t ir_conv_out_dim(int64_t in, int64_t k, int32_t stride, int32_t pad, int32_t dilation);

/* Index expressions as text (from the wire), parsed here against the
 * scope the constructor derives from the shapes. */
struct ir_reindex_text {
    int nexprs;
    const char *exprs[KILN_LIMIT_RANK];
    size_t expr_len[KILN_LIMIT_RANK];
    int nconds;
    const char *const *conds; /* nconds texts */
    const size_t *cond_len;
    int nextras;
    const int *extras; /* nextras node indices */
    struct ir_scalar overflow;
};

int ir_add_reindex(struct ir_graph *g, int x, int rank, const int64_t *shape,
                   const struct ir_reindex_text *t, struct ir_error *err);
/* op: ADD MUL MAX MIN. */
int ir_add_reindex_reduce(struct ir_graph *g, enum ir_reduce_op op, int x, int rank,
                          const int64_t *shape, const struct ir_reindex_text *t,
                          struct ir_error *err);

/* Index expressions already parsed: autodiff builds the backward of a
 * reindex from the forward node's own expressions (expr.h, ir_expr_copy),
 * so no text is printed or parsed again. Each is copied into the graph;
 * with `swap_xy` the names of x and y trade places (see ir_expr_copy), and
 * every name is checked against the new node's scope as a parse would. */
struct ir_reindex_ast {
    int nexprs;
    const struct ir_expr *const *exprs;
    int nconds;
    const struct ir_expr *const *conds;
    int nextras;
    const int *extras; /* nextras node indices */
    struct ir_scalar overflow;
    int swap_xy;
};

int ir_add_reindex_ast(struct ir_graph *g, int x, int rank, const int64_t *shape,
                       const struct ir_reindex_ast *t, struct ir_error *err);
int ir_add_reindex_reduce_ast(struct ir_graph *g, enum ir_reduce_op op, int x, int rank,
                              const int64_t *shape, const struct ir_reindex_ast *t,
                              struct ir_error *err);

/* The graph as it is now, to undo a builder that adds several nodes and
 * fails half way (lowering, autodiff): nodes and what they own are only
 * ever appended, so truncating both restores the graph exactly. */
struct ir_graph_mark {
    uint32_t count, nextern;
    size_t nowned;
};

struct ir_graph_mark ir_graph_mark(const struct ir_graph *g);
/* Removes every node (and owned allocation) added since `m`. */
void ir_graph_undo(struct ir_graph *g, struct ir_graph_mark m);

/* Row-major strides (in elements) of a node's shape. A zero-size dim
 * makes the strides of the dims before it 0; index expressions can read
 * strides (xstride/ystride), so every backend uses exactly this. */
void ir_node_strides(const struct ir_node *n, int64_t *strides);

#endif
