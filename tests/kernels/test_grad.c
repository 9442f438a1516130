/* test_grad.c: autodiff (kernels/grad.h) on the reference interpreter.
 *
 * Every differentiable op is checked against central finite differences
 * in float64 on random inputs kept away from the op's kinks: the loss is
 * sum(seed * y) for a random seed, and the analytic gradient (ir_grad,
 * evaluated by the interpreter) must agree with the difference quotients
 * to a relative error below 1e-6 (max-norm over each input). Ops whose
 * gradient is zero almost everywhere must give exact zeros. Second and
 * third derivatives of x^3, tanh and x*sigmoid(x) are compared with their
 * closed forms; conv2d, the pools and the transposed conv of convgraph.h
 * with finite differences. Then the edges: ties, zeros in products, int
 * paths, stop flags, seeds, targets the loss does not use, refusals that
 * leave the graph unchanged, and results that are always distinct nodes.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convgraph.h"
#include "grad.h"
#include "interp.h"
#include "ir.h"
#include "kiln_err.h"
#include "lower.h"

#define F64 IR_DTYPE_FLOAT64
#define MAXIN 4
#define FD_H 1e-6
#define FD_TOL 1e-6
#define FD_SAMPLES 48 /* elements of each input checked, at most */

/* ---- random numbers ---------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * ((double) (splitmix(s) >> 11) * 0x1.0p-53);
}

/* ---- evaluation -------------------------------------------------------- */

/* Run g on the interpreter and copy node `n` (float64) into a new array. */
static double *eval(const struct ir_graph *g, int n, const void *const *externs)
{
    void **out = NULL;
    struct ir_error e;
    int rc = ir_interp_run(g, externs, &out, &e);
    ck_assert_msg(rc == KILN_OK, "interpreter: %s", e.message);
    const struct ir_node *node = &g->nodes[n];
    ck_assert_int_eq(node->dtype, F64);
    double *v = malloc((size_t) (node->numel ? node->numel : 1) * sizeof(*v));
    ck_assert_ptr_nonnull(v);
    memcpy(v, out[n], (size_t) node->numel * sizeof(*v));
    ir_interp_free(g, out);
    return v;
}

static int64_t numel(int rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return n;
}

/* ---- finite-difference cases ------------------------------------------- */

/* A function of nin float64 inputs (EXTERN nodes x[k]) built into g;
 * returns its output node. ctx is the case's. */
typedef int (*build_fn)(struct ir_graph *g, const int *x, const void *ctx);
/* Fill input k (n elements); NULL means uniform in [lo, hi). */
typedef void (*fill_fn)(int k, double *v, int64_t n, uint64_t *rng);

struct fd_case {
    const char *name;
    int nin;
    int rank[MAXIN];
    int64_t shape[MAXIN][KILN_LIMIT_RANK];
    double lo, hi;
    build_fn build;
    fill_fn fill;
    const void *ctx;
    unsigned zero; /* bit k: input k's gradient is zero almost everywhere: exact zeros */
};

struct inputs {
    double *v[MAXIN];
    int64_t n[MAXIN];
};

static void inputs_fini(struct inputs *in)
{
    for (int k = 0; k < MAXIN; k++)
        free(in->v[k]);
}

static int add_externs(struct ir_graph *g, const struct fd_case *c, int *x)
{
    struct ir_error e;
    for (int k = 0; k < c->nin; k++) {
        x[k] = ir_add_extern(g, F64, c->rank[k], c->shape[k], &e);
        ck_assert_msg(x[k] >= 0, "%s", e.message);
    }
    return 0;
}

/* sum(seed * y) for the forward graph f (output y) on the inputs. */
static double objective(const struct ir_graph *f, int y, const struct inputs *in,
                        const double *seed)
{
    const void *ext[MAXIN];
    for (int k = 0; k < MAXIN; k++)
        ext[k] = in->v[k];
    double *v = eval(f, y, ext);
    double s = 0;
    for (int64_t j = 0; j < f->nodes[y].numel; j++)
        s += seed[j] * v[j];
    free(v);
    return s;
}

/* Check c's analytic gradient against central differences. With
 * scalar_seed and a one-element output, the implicit seed 1 is used. */
static void check_fd(const struct fd_case *c, uint64_t seed_state, bool implicit_seed)
{
    uint64_t rng = seed_state;
    struct inputs in = {0};
    for (int k = 0; k < c->nin; k++) {
        in.n[k] = numel(c->rank[k], c->shape[k]);
        in.v[k] = malloc((size_t) (in.n[k] ? in.n[k] : 1) * sizeof(double));
        ck_assert_ptr_nonnull(in.v[k]);
        if (c->fill != NULL)
            c->fill(k, in.v[k], in.n[k], &rng);
        else
            for (int64_t j = 0; j < in.n[k]; j++)
                in.v[k][j] = uniform(&rng, c->lo, c->hi);
    }

    /* The forward graph alone, for the differences. */
    struct ir_graph f;
    ir_graph_init(&f);
    int xf[MAXIN];
    add_externs(&f, c, xf);
    int yf = c->build(&f, xf, c->ctx);
    ck_assert_msg(yf >= 0, "%s: build failed", c->name);
    const struct ir_node yn = f.nodes[yf];
    ck_assert_int_eq(yn.dtype, F64);
    double *seed = malloc((size_t) (yn.numel ? yn.numel : 1) * sizeof(double));
    ck_assert_ptr_nonnull(seed);
    bool implicit = implicit_seed && yn.numel == 1;
    for (int64_t j = 0; j < yn.numel; j++)
        seed[j] = implicit ? 1.0 : uniform(&rng, -1, 1);

    /* The same forward and its gradient. */
    struct ir_graph g;
    ir_graph_init(&g);
    struct ir_error e;
    int x[MAXIN];
    add_externs(&g, c, x);
    int y = c->build(&g, x, c->ctx);
    int s = implicit ? -1
                     : ir_add_array(&g, F64, yn.rank, yn.shape, seed,
                                    (size_t) yn.numel * sizeof(double), &e);
    ck_assert(implicit || s >= 0);
    int grads[MAXIN];
    uint8_t zero[MAXIN];
    struct ir_grad_request r = {.loss = y, .seed = s, .ntargets = c->nin, .targets = x};
    ck_assert_msg(ir_grad(&g, &r, grads, zero, &e) == 0, "%s: %s", c->name, e.message);

    const void *ext[MAXIN];
    for (int k = 0; k < MAXIN; k++)
        ext[k] = in.v[k];
    for (int k = 0; k < c->nin; k++) {
        double *a = eval(&g, grads[k], ext);
        double maxfd = 0, maxerr = 0, maxa = 0;
        int64_t step = in.n[k] > FD_SAMPLES ? in.n[k] / FD_SAMPLES : 1;
        for (int64_t j = (int64_t) (splitmix(&rng) % (uint64_t) step); j < in.n[k]; j += step) {
            double keep = in.v[k][j];
            in.v[k][j] = keep + FD_H;
            double up = objective(&f, yf, &in, seed);
            in.v[k][j] = keep - FD_H;
            double down = objective(&f, yf, &in, seed);
            in.v[k][j] = keep;
            double fd = (up - down) / (2 * FD_H);
            maxfd = fmax(maxfd, fabs(fd));
            maxa = fmax(maxa, fabs(a[j]));
            maxerr = fmax(maxerr, fabs(a[j] - fd));
        }
        if (c->zero & (1u << k)) {
            ck_assert_msg(maxa == 0 && maxfd == 0, "%s input %d: want zeros, got %g (fd %g)",
                          c->name, k, maxa, maxfd);
            ck_assert_msg(zero[k], "%s input %d: a zero gradient not flagged", c->name, k);
        } else {
            ck_assert_msg(maxfd > 0, "%s input %d: the differences are all zero", c->name, k);
            ck_assert_msg(maxerr / maxfd < FD_TOL,
                          "%s input %d: relative error %.3g (max |fd| %.3g)", c->name, k,
                          maxerr / maxfd, maxfd);
            ck_assert(!zero[k]);
        }
        free(a);
    }
    free(seed);
    ir_graph_fini(&g);
    ir_graph_fini(&f);
    inputs_fini(&in);
}

/* ---- builders ------------------------------------------------------------ */

static int must(int r, const struct ir_error *e)
{
    ck_assert_msg(r >= 0, "constructor: %s", e->message);
    return r;
}

static int b_unary(struct ir_graph *g, const int *x, const void *ctx)
{
    struct ir_error e;
    return must(ir_add_unary(g, (enum ir_op) (intptr_t) ctx, x[0], &e), &e);
}

static int b_binary(struct ir_graph *g, const int *x, const void *ctx)
{
    struct ir_error e;
    return must(ir_add_binary(g, (enum ir_op) (intptr_t) ctx, x[0], x[1], &e), &e);
}

/* where(x2 > 0, x0, x1) */
static int b_where(struct ir_graph *g, const int *x, const void *ctx)
{
    (void) ctx;
    struct ir_error e;
    int zero = must(ir_add_const(g, F64, g->nodes[x[2]].rank, g->nodes[x[2]].shape,
                                 (struct ir_scalar){.f = 0}, &e), &e);
    int cond = must(ir_add_binary(g, IR_OP_GT, x[2], zero, &e), &e);
    return must(ir_add_where(g, cond, x[0], x[1], &e), &e);
}

/* sin(cast(cast(x, int32), float64)): the int path passes nothing back.
 * (A float32 round trip would carry gradient but round it, so float casts
 * are checked exactly in test_float32_and_casts instead.) */
static int b_cast_int(struct ir_graph *g, const int *x, const void *ctx)
{
    (void) ctx;
    struct ir_error e;
    int i = must(ir_add_cast(g, x[0], IR_DTYPE_INT32, &e), &e);
    int back = must(ir_add_cast(g, i, F64, &e), &e);
    return must(ir_add_unary(g, IR_OP_SIN, back, &e), &e);
}

/* cast(x, float64) * itself: a cast to the same dtype passes g through. */
static int b_cast_same(struct ir_graph *g, const int *x, const void *ctx)
{
    (void) ctx;
    struct ir_error e;
    int y = must(ir_add_cast(g, x[0], F64, &e), &e);
    return must(ir_add_binary(g, IR_OP_MUL, y, y, &e), &e);
}

static int b_reshape(struct ir_graph *g, const int *x, const void *ctx)
{
    (void) ctx;
    struct ir_error e;
    int64_t shape[3] = {2, 3, 2};
    int y = must(ir_add_reshape(g, x[0], 3, shape, &e), &e);
    return must(ir_add_unary(g, IR_OP_SIN, y, &e), &e);
}

/* x [3,1] -> [2,3,4]: a new dim 0, dim 1 from x's 3, dim 2 stretched. */
static int b_broadcast(struct ir_graph *g, const int *x, const void *ctx)
{
    (void) ctx;
    struct ir_error e;
    int64_t shape[3] = {2, 3, 4};
    int y = must(ir_add_broadcast(g, x[0], 3, shape, 1u << 0, &e), &e);
    return must(ir_add_unary(g, IR_OP_SIN, y, &e), &e);
}

struct reduce_ctx {
    enum ir_reduce_op op;
    uint16_t dims;
    bool keepdims;
};

static int b_reduce(struct ir_graph *g, const int *x, const void *ctx)
{
    const struct reduce_ctx *r = ctx;
    struct ir_error e;
    return must(ir_add_reduce(g, r->op, x[0], r->dims, r->keepdims, &e), &e);
}

/* Reindex and reindex_reduce from texts; extras: an int64 gather index. */
struct rx_ctx {
    bool reduce;
    enum ir_reduce_op op;
    int rank;
    int64_t shape[KILN_LIMIT_RANK];
    const char *exprs[KILN_LIMIT_RANK];
    const char *cond; /* NULL: none */
    double overflow;
    int nidx;         /* extra @e0: int64 [nidx] holding idx[] */
    int64_t idx[8];
};

static int b_reindex(struct ir_graph *g, const int *x, const void *ctx)
{
    const struct rx_ctx *c = ctx;
    struct ir_error e;
    int extra = -1;
    if (c->nidx > 0) {
        int64_t s[1] = {c->nidx};
        extra = must(ir_add_array(g, IR_DTYPE_INT64, 1, s, c->idx,
                                  (size_t) c->nidx * sizeof(int64_t), &e), &e);
    }
    int n = c->reduce ? c->rank : g->nodes[x[0]].rank;
    struct ir_reindex_text t = {.nexprs = n, .overflow = {.f = c->overflow},
                                .nextras = extra >= 0, .extras = &extra};
    for (int d = 0; d < n; d++) {
        t.exprs[d] = c->exprs[d];
        t.expr_len[d] = strlen(c->exprs[d]);
    }
    size_t clen = c->cond ? strlen(c->cond) : 0;
    if (c->cond != NULL) {
        t.nconds = 1;
        t.conds = &c->cond;
        t.cond_len = &clen;
    }
    int y = c->reduce ? ir_add_reindex_reduce(g, c->op, x[0], c->rank, c->shape, &t, &e)
                      : ir_add_reindex(g, x[0], c->rank, c->shape, &t, &e);
    return must(y, &e);
}

enum lower_kind { L_TRANSPOSE, L_SLICE, L_PAD, L_FLIP, L_CONCAT };

/* x [3,4] (and x1 [2,4] for concat), lowered, then sin. */
static int b_lowered(struct ir_graph *g, const int *x, const void *ctx)
{
    struct ir_error e;
    int y = -1;
    switch ((enum lower_kind) (intptr_t) ctx) {
    case L_TRANSPOSE: {
        uint32_t perm[2] = {1, 0};
        y = ir_lower_transpose(g, x[0], 2, perm, &e);
        break;
    }
    case L_SLICE: {
        int64_t starts[2] = {2, 0}, stops[2] = {INT64_MIN, 4}, steps[2] = {-1, 2};
        struct ir_slice sl = {2, 2, 2, starts, stops, steps};
        y = ir_lower_slice(g, x[0], &sl, &e);
        break;
    }
    case L_PAD: {
        int64_t pads[4] = {1, -1, 2, 0};
        y = ir_lower_pad(g, x[0], 4, pads, (struct ir_scalar){.f = 3}, &e);
        break;
    }
    case L_FLIP: {
        uint32_t dims[1] = {1};
        y = ir_lower_flip(g, x[0], 1, dims, &e);
        break;
    }
    case L_CONCAT: {
        int xs[3] = {x[0], x[1], x[0]};
        y = ir_lower_concat(g, 3, xs, 0, &e);
        break;
    }
    }
    must(y, &e);
    return must(ir_add_unary(g, IR_OP_SIN, y, &e), &e);
}

/* ---- fills -------------------------------------------------------------- */

/* Away from integers (floor, ceil, round, floor_div, mod's jumps). */
static void fill_offgrid(int k, double *v, int64_t n, uint64_t *rng)
{
    (void) k;
    for (int64_t j = 0; j < n; j++)
        v[j] = (double) (int64_t) uniform(rng, -3, 3) + uniform(rng, 0.2, 0.4);
}

/* mod and floor_div: b in [0.5, 2] or [-2, -0.5], a = b * (m + u), u in
 * [0.2, 0.8], so a / b stays away from integers. */
static double mod_b[64];
static void fill_mod(int k, double *v, int64_t n, uint64_t *rng)
{
    if (k == 0) {
        for (int64_t j = 0; j < n && j < 64; j++) {
            double b = uniform(rng, 0.5, 2) * (splitmix(rng) & 1 ? 1 : -1);
            mod_b[j] = b;
            v[j] = b * ((double) (int64_t) uniform(rng, -3, 3) + uniform(rng, 0.2, 0.8));
        }
    } else {
        for (int64_t j = 0; j < n && j < 64; j++)
            v[j] = mod_b[j];
    }
}

/* maximum/minimum: a and b apart by at least 0.1. */
static void fill_apart(int k, double *v, int64_t n, uint64_t *rng)
{
    static double a[64];
    for (int64_t j = 0; j < n && j < 64; j++) {
        if (k == 0)
            v[j] = a[j] = uniform(rng, -1, 1);
        else
            v[j] = a[j] + (splitmix(rng) & 1 ? 1 : -1) * uniform(rng, 0.1, 1);
    }
}

/* |x| >= 0.2 for abs. */
static void fill_nonzero(int k, double *v, int64_t n, uint64_t *rng)
{
    (void) k;
    for (int64_t j = 0; j < n; j++)
        v[j] = uniform(rng, 0.2, 2) * (splitmix(rng) & 1 ? 1 : -1);
}

/* Products: near 1, with zeros placed so that [4,3] reduced over dim 1
 * has rows with no zero, one zero and two zeros. */
static void fill_zeros(int k, double *v, int64_t n, uint64_t *rng)
{
    (void) k;
    for (int64_t j = 0; j < n; j++)
        v[j] = uniform(rng, 0.5, 1.5) * (splitmix(rng) & 1 ? 1 : -1);
    if (n >= 12) {
        v[4] = 0;          /* row 1: one zero */
        v[6] = v[8] = 0;   /* row 2: two zeros */
    }
}

/* ---- the op table ------------------------------------------------------- */

#define UNARY(op, lo_, hi_, fill_, z)                                                            \
    {#op, 1, {2}, {{3, 4}}, lo_, hi_, b_unary, fill_, (const void *) (intptr_t) IR_OP_##op, z}
#define BINARY(op, lo_, hi_, fill_, z)                                                           \
    {#op, 2, {2, 2}, {{3, 4}, {3, 4}}, lo_, hi_, b_binary, fill_,                                \
     (const void *) (intptr_t) IR_OP_##op, z}

static const struct fd_case elementwise[] = {
    UNARY(NEG, -2, 2, NULL, 0),
    UNARY(ABS, 0, 0, fill_nonzero, 0),
    UNARY(EXP, -2, 2, NULL, 0),
    UNARY(LOG, 0.2, 3, NULL, 0),
    UNARY(SQRT, 0.2, 3, NULL, 0),
    UNARY(RSQRT, 0.2, 3, NULL, 0),
    UNARY(SIN, -3, 3, NULL, 0),
    UNARY(COS, -3, 3, NULL, 0),
    UNARY(TAN, -1.2, 1.2, NULL, 0),
    UNARY(TANH, -2, 2, NULL, 0),
    UNARY(SIGMOID, -4, 4, NULL, 0),
    UNARY(ERF, -2, 2, NULL, 0),
    UNARY(FLOOR, 0, 0, fill_offgrid, 1),
    UNARY(CEIL, 0, 0, fill_offgrid, 1),
    UNARY(ROUND, 0, 0, fill_offgrid, 1),
    UNARY(SIGN, 0, 0, fill_nonzero, 1),
    BINARY(ADD, -2, 2, NULL, 0),
    BINARY(SUB, -2, 2, NULL, 0),
    BINARY(MUL, -2, 2, NULL, 0),
    BINARY(DIV, 0.3, 2, NULL, 0),
    BINARY(POW, 0.3, 2, NULL, 0),
    BINARY(MAXIMUM, 0, 0, fill_apart, 0),
    BINARY(MINIMUM, 0, 0, fill_apart, 0),
    BINARY(MOD, 0, 0, fill_mod, 0),
    BINARY(FLOOR_DIV, 0, 0, fill_mod, 3),
    {"where", 3, {2, 2, 2}, {{3, 4}, {3, 4}, {3, 4}}, -2, 2, b_where, NULL, NULL, 4},
    {"cast f64", 1, {1}, {{5}}, -2, 2, b_cast_same, NULL, NULL, 0},
    {"cast via int32", 1, {1}, {{5}}, 0, 0, b_cast_int, fill_offgrid, NULL, 1},
    {"reshape", 1, {2}, {{3, 4}}, -2, 2, b_reshape, NULL, NULL, 0},
    {"broadcast_to new+stretched", 1, {2}, {{3, 1}}, -2, 2, b_broadcast, NULL, NULL, 0},
};

START_TEST(test_elementwise_fd)
{
    const struct fd_case *c = &elementwise[_i];
    check_fd(c, 1000 + (uint64_t) _i, false);
}
END_TEST

/* where's third input x2 feeds only the condition: flagged zero. */
START_TEST(test_where_cond_has_no_gradient)
{
    struct fd_case c = elementwise[0];
    for (size_t i = 0; i < sizeof elementwise / sizeof elementwise[0]; i++)
        if (strcmp(elementwise[i].name, "where") == 0)
            c = elementwise[i];
    struct ir_graph g;
    ir_graph_init(&g);
    int x[3];
    add_externs(&g, &c, x);
    int y = b_where(&g, x, NULL);
    int64_t shape[2] = {3, 4};
    struct ir_error e;
    int s = ir_add_const(&g, F64, 2, shape, (struct ir_scalar){.f = 1}, &e);
    int grads[3];
    uint8_t zero[3];
    struct ir_grad_request r = {.loss = y, .seed = s, .ntargets = 3, .targets = x};
    ck_assert_int_eq(ir_grad(&g, &r, grads, zero, &e), 0);
    ck_assert(!zero[0] && !zero[1] && zero[2]);
    ir_graph_fini(&g);
}
END_TEST

static const struct reduce_ctx r_add = {IR_REDUCE_ADD, 1u << 1, false};
static const struct reduce_ctx r_add_all = {IR_REDUCE_ADD, 3, false};
static const struct reduce_ctx r_add_keep = {IR_REDUCE_ADD, 1u << 0, true};
static const struct reduce_ctx r_mean = {IR_REDUCE_MEAN, 1u << 1, false};
static const struct reduce_ctx r_mean_keep = {IR_REDUCE_MEAN, 3, true};
static const struct reduce_ctx r_max = {IR_REDUCE_MAX, 1u << 1, false};
static const struct reduce_ctx r_min_keep = {IR_REDUCE_MIN, 1u << 0, true};
static const struct reduce_ctx r_mul = {IR_REDUCE_MUL, 1u << 1, false};
static const struct reduce_ctx r_mul_keep = {IR_REDUCE_MUL, 1u << 1, true};
static const struct reduce_ctx r_copy = {IR_REDUCE_ADD, 0, false};

#define RED(name, ctx, fill)                                                                     \
    {name, 1, {2}, {{4, 3}}, -2, 2, b_reduce, fill, &ctx, 0}

/* Reindex cases; x is [4, 5] unless said. */
static const struct rx_ctx rx_plain = {
    .rank = 3, .shape = {3, 4, 2},
    .exprs = {"(i0 + i2) % xshape0", "xshape1 - 1 - i1"}};
static const struct rx_ctx rx_cond = {
    .rank = 2, .shape = {3, 6}, .exprs = {"i0 * 2 - 1", "i1"},
    .cond = "i0 + i1 == yshape0", .overflow = 7};
static const struct rx_ctx rx_gather = {
    .rank = 2, .shape = {6, 5}, .exprs = {"@e0(i0)", "i1 * xstride1"},
    .nidx = 6, .idx = {3, 0, 3, 3, 9, 1}};
static const struct rx_ctx rx_strides = {
    .rank = 1, .shape = {20}, .exprs = {"i0 / xstride0", "i0 % xstride0"}};
static const struct rx_ctx rr_add = {
    .reduce = true, .op = IR_REDUCE_ADD, .rank = 2, .shape = {2, 5},
    .exprs = {"i0 / 2", "yshape1 - 1 - i1"}, .cond = "i1 == xshape1 - 2"};
static const struct rx_ctx rr_max = {
    .reduce = true, .op = IR_REDUCE_MAX, .rank = 2, .shape = {2, 3},
    .exprs = {"i0 % 2", "i1 / 2"}, .cond = "i0 == 3 && i1 == 0"};
static const struct rx_ctx rr_min = {
    .reduce = true, .op = IR_REDUCE_MIN, .rank = 1, .shape = {3},
    .exprs = {"(i0 * xshape1 + i1) % 3"}};
static const struct rx_ctx rr_mul = {
    .reduce = true, .op = IR_REDUCE_MUL, .rank = 1, .shape = {4},
    .exprs = {"i0"}, .cond = "i1 == 4"};
static const struct rx_ctx rr_gather = {
    .reduce = true, .op = IR_REDUCE_ADD, .rank = 2, .shape = {10, 5},
    .exprs = {"@e0(i0)", "i1"}, .nidx = 4, .idx = {9, 2, 2, -1}};

#define RX(name, ctx, fill) {name, 1, {2}, {{4, 5}}, -2, 2, b_reindex, fill, &ctx, 0}

static void fill_zeros45(int k, double *v, int64_t n, uint64_t *rng)
{
    (void) k;
    for (int64_t j = 0; j < n; j++)
        v[j] = uniform(rng, 0.5, 1.5) * (splitmix(rng) & 1 ? 1 : -1);
    v[1 * 5 + 2] = 0;             /* row 1: one zero (among kept columns) */
    v[2 * 5 + 0] = v[2 * 5 + 3] = 0; /* row 2: two */
    v[3 * 5 + 4] = 0;             /* row 3: a zero that the condition drops */
}

static const struct fd_case meta[] = {
    RED("reduce add dim1", r_add, NULL),
    RED("reduce add all", r_add_all, NULL),
    RED("reduce add keepdims", r_add_keep, NULL),
    RED("reduce copy", r_copy, NULL),
    RED("reduce mean dim1", r_mean, NULL),
    RED("reduce mean all keepdims", r_mean_keep, NULL),
    RED("reduce max dim1", r_max, NULL),
    RED("reduce min dim0 keepdims", r_min_keep, NULL),
    RED("reduce mul with zeros", r_mul, fill_zeros),
    RED("reduce mul keepdims with zeros", r_mul_keep, fill_zeros),
    RX("reindex names shapes", rx_plain, NULL),
    RX("reindex cond + overflow", rx_cond, NULL),
    RX("reindex gather (repeats)", rx_gather, NULL),
    RX("reindex strides", rx_strides, NULL),
    RX("reindex_reduce add cond", rr_add, NULL),
    RX("reindex_reduce max cond", rr_max, NULL),
    RX("reindex_reduce min", rr_min, NULL),
    RX("reindex_reduce mul zeros cond", rr_mul, fill_zeros45),
    RX("reindex_reduce scatter extras", rr_gather, NULL),
    {"transpose", 1, {2}, {{3, 4}}, -2, 2, b_lowered, NULL, (void *) (intptr_t) L_TRANSPOSE,
     false},
    {"slice", 1, {2}, {{3, 4}}, -2, 2, b_lowered, NULL, (void *) (intptr_t) L_SLICE, 0},
    {"pad", 1, {2}, {{3, 4}}, -2, 2, b_lowered, NULL, (void *) (intptr_t) L_PAD, 0},
    {"flip", 1, {2}, {{3, 4}}, -2, 2, b_lowered, NULL, (void *) (intptr_t) L_FLIP, 0},
    {"concat", 2, {2, 2}, {{3, 4}, {2, 4}}, -2, 2, b_lowered, NULL,
     (void *) (intptr_t) L_CONCAT, 0},
};

START_TEST(test_meta_fd)
{
    check_fd(&meta[_i], 2000 + (uint64_t) _i, false);
}
END_TEST

/* ---- conv and pools ---------------------------------------------------- */

static int b_conv(struct ir_graph *g, const int *x, const void *ctx)
{
    struct ir_error e;
    const struct convgraph_params *p = ctx;
    return must(convgraph_build(g, p, x[0], p->kind == CONVGRAPH_CONV2D ||
                                                     p->kind == CONVGRAPH_CONV_TRANSPOSE2D
                                                 ? x[1]
                                                 : -1,
                                &e),
                &e);
}

START_TEST(test_conv_fd)
{
    size_t n;
    const struct convgraph_case *cases = convgraph_cases(&n);
    ck_assert_uint_lt((size_t) _i, n);
    struct convgraph_params p = cases[_i].p;
    p.dtype = F64; /* every case, in float64 */
    struct convgraph_shapes s;
    char msg[200];
    ck_assert_int_eq(convgraph_shapes(&p, &s, msg, sizeof msg), 0);
    struct fd_case c = {.name = cases[_i].name, .nin = s.has_w ? 2 : 1, .rank = {4, 4},
                        .lo = -1, .hi = 1, .build = b_conv, .ctx = &p};
    memcpy(c.shape[0], s.x, sizeof s.x);
    memcpy(c.shape[1], s.w, sizeof s.w);
    check_fd(&c, 3000 + (uint64_t) _i, false);
}
END_TEST

/* ---- higher order ------------------------------------------------------ */

enum fn { FN_CUBE_POW, FN_CUBE_MUL, FN_TANH, FN_XSIGMOID };

static int build_fn_of(struct ir_graph *g, int x, enum fn f)
{
    struct ir_error e;
    const struct ir_node n = g->nodes[x];
    switch (f) {
    case FN_CUBE_POW: {
        int three = must(ir_add_const(g, F64, n.rank, n.shape, (struct ir_scalar){.f = 3}, &e), &e);
        return must(ir_add_binary(g, IR_OP_POW, x, three, &e), &e);
    }
    case FN_CUBE_MUL: {
        int sq = must(ir_add_binary(g, IR_OP_MUL, x, x, &e), &e);
        return must(ir_add_binary(g, IR_OP_MUL, sq, x, &e), &e);
    }
    case FN_TANH:
        return must(ir_add_unary(g, IR_OP_TANH, x, &e), &e);
    case FN_XSIGMOID: {
        int s = must(ir_add_unary(g, IR_OP_SIGMOID, x, &e), &e);
        return must(ir_add_binary(g, IR_OP_MUL, s, x, &e), &e);
    }
    }
    return -1;
}

/* f', f'', f''' in closed form. */
static double closed(enum fn f, int order, double x)
{
    switch (f) {
    case FN_CUBE_POW:
    case FN_CUBE_MUL:
        return order == 1 ? 3 * x * x : order == 2 ? 6 * x : 6;
    case FN_TANH: {
        double t = tanh(x), s = 1 - t * t;
        return order == 1 ? s : order == 2 ? -2 * t * s : -2 * s * (1 - 3 * t * t);
    }
    case FN_XSIGMOID: {
        double sg = 1 / (1 + exp(-x)), s1 = sg * (1 - sg), u = 1 - 2 * sg;
        return order == 1   ? sg + x * s1
               : order == 2 ? 2 * s1 + x * s1 * u
                            : 3 * s1 * u + x * s1 * (u * u - 2 * s1);
    }
    }
    return NAN;
}

/* Elementwise over a vector (seeded with ones: the Jacobian is diagonal)
 * and over a rank-0 scalar (no seed). */
static void check_orders(enum fn f, bool scalar)
{
    static const double xs[] = {-1.7, -0.6, 0.0, 0.35, 1.2, 2.5};
    int64_t n = scalar ? 1 : 6;
    int64_t shape[1] = {n};
    int rank = scalar ? 0 : 1;
    for (int64_t start = 0; start < 6; start += n) {
        struct ir_graph g;
        ir_graph_init(&g);
        struct ir_error e;
        int x = must(ir_add_extern(&g, F64, rank, shape, &e), &e);
        int d = build_fn_of(&g, x, f);
        int seed = scalar ? -1
                          : must(ir_add_const(&g, F64, rank, shape, (struct ir_scalar){.f = 1},
                                              &e),
                                 &e);
        int ds[3];
        for (int order = 1; order <= 3; order++) {
            struct ir_grad_request r = {.loss = d, .seed = seed, .ntargets = 1, .targets = &x};
            uint8_t zero;
            ck_assert_msg(ir_grad(&g, &r, &d, &zero, &e) == 0, "order %d: %s", order,
                          e.message);
            ck_assert(!zero);
            ds[order - 1] = d;
        }
        const void *ext[1] = {xs + start};
        for (int order = 1; order <= 3; order++) {
            double *v = eval(&g, ds[order - 1], ext);
            for (int64_t j = 0; j < n; j++) {
                double want = closed(f, order, xs[start + j]);
                ck_assert_msg(fabs(v[j] - want) <= 1e-12 * fmax(1, fabs(want)),
                              "fn %d order %d at %g: %.17g, want %.17g", (int) f, order,
                              xs[start + j], v[j], want);
            }
            free(v);
        }
        ir_graph_fini(&g);
    }
}

START_TEST(test_higher_order)
{
    check_orders((enum fn) _i, false);
    check_orders((enum fn) _i, true);
}
END_TEST

/* ---- edges --------------------------------------------------------------- */

static struct ir_graph g;
static struct ir_error err;

static void setup(void)
{
    ir_graph_init(&g);
    memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
    ir_graph_fini(&g);
}

static int ext(int dt, int rank, const int64_t *shape)
{
    return must(ir_add_extern(&g, (enum ir_dtype) dt, rank, shape, &err), &err);
}

static double *run1(int node, const double *x0, const double *x1)
{
    const void *e[2] = {x0, x1};
    return eval(&g, node, e);
}

START_TEST(test_refusals_leave_graph)
{
    int64_t s3[1] = {3};
    int xf = ext(F64, 1, s3);
    int xi = ext(IR_DTYPE_INT32, 1, s3);
    int scalar = ext(F64, 0, NULL);
    int f32 = ext(IR_DTYPE_FLOAT32, 1, s3);
    int out[2];
    uint32_t count = g.count;
    size_t owned = g.nowned;
#define REFUSE(req, code_, field_)                                                               \
    do {                                                                                         \
        struct ir_grad_request r_ = req;                                                         \
        ck_assert_int_eq(ir_grad(&g, &r_, out, NULL, &err), -1);                                 \
        ck_assert_int_eq(err.code, code_);                                                       \
        ck_assert_str_eq(err.field, field_);                                                     \
        ck_assert(err.message[0] != '\0');                                                       \
        ck_assert_uint_eq(g.count, count);                                                       \
        ck_assert_uint_eq(g.nowned, owned);                                                      \
    } while (0)
    REFUSE(((struct ir_grad_request){.loss = xi, .seed = -1, .ntargets = 1, .targets = &xf}),
           KILN_ETYPE, "in[0]");
    REFUSE(((struct ir_grad_request){.loss = xf, .seed = -1, .ntargets = 1, .targets = &xf}),
           KILN_EVALUE, "in");
    REFUSE(((struct ir_grad_request){.loss = xf, .seed = f32, .ntargets = 1, .targets = &xf}),
           KILN_ETYPE, "in[2]");
    REFUSE(((struct ir_grad_request){.loss = xf, .seed = scalar, .ntargets = 1, .targets = &xf}),
           KILN_EVALUE, "in[2]");
    REFUSE(((struct ir_grad_request){.loss = 99, .seed = -1, .ntargets = 1, .targets = &xf}),
           KILN_EVALUE, "in[0]");
    int bad = 99;
    REFUSE(((struct ir_grad_request){.loss = scalar, .seed = -1, .ntargets = 1, .targets = &bad}),
           KILN_EVALUE, "in[1]");
#undef REFUSE
}
END_TEST

/* The graph's node bound reached half way: refused, graph unchanged. */
START_TEST(test_node_limit_undoes)
{
    int x = ext(F64, 0, NULL);
    int y = x;
    for (int k = 0; k < 40; k++)
        y = must(ir_add_unary(&g, IR_OP_SIN, y, &err), &err);
    struct ir_scalar zero = {0};
    while (ir_add_const(&g, IR_DTYPE_INT8, 0, NULL, zero, &err) >= 0)
        ;
    ck_assert_int_eq(err.code, KILN_ELIMIT);
    /* Room for 20 nodes: the last consts own nothing, so dropping them is
     * exact. The 40 sines need about 3 nodes each. */
    g.count -= 20;
    uint32_t count = g.count;
    size_t owned = g.nowned;
    int out;
    struct ir_grad_request r = {.loss = y, .seed = -1, .ntargets = 1, .targets = &x};
    ck_assert_int_eq(ir_grad(&g, &r, &out, NULL, &err), -1);
    ck_assert_int_eq(err.code, KILN_ELIMIT);
    ck_assert_uint_eq(g.count, count);
    ck_assert_uint_eq(g.nowned, owned);
}
END_TEST

START_TEST(test_zero_and_int_targets)
{
    int64_t s3[1] = {3};
    int a = ext(F64, 1, s3), b = ext(F64, 1, s3);
    int i = must(ir_add_cast(&g, a, IR_DTYPE_INT64, &err), &err);
    int y = must(ir_add_reduce(&g, IR_REDUCE_ADD, must(ir_add_unary(&g, IR_OP_EXP, a, &err),
                                                     &err),
                               1, false, &err),
                 &err);
    int later = must(ir_add_unary(&g, IR_OP_SIN, b, &err), &err); /* after the loss */
    int t[4] = {b, i, later, a};
    int out[4];
    uint8_t zero[4];
    struct ir_grad_request r = {.loss = y, .seed = -1, .ntargets = 4, .targets = t};
    ck_assert_int_eq(ir_grad(&g, &r, out, zero, &err), 0);
    ck_assert(zero[0] && zero[1] && zero[2] && !zero[3]);
    ck_assert_int_eq(g.nodes[out[1]].dtype, IR_DTYPE_INT64);
    ck_assert_int_eq(g.nodes[out[1]].op, IR_OP_CONST);
    double av[3] = {0, 1, -2}, bv[3] = {5, 6, 7};
    double *gb = run1(out[0], av, bv), *ga = run1(out[3], av, bv);
    for (int j = 0; j < 3; j++) {
        ck_assert(gb[j] == 0);
        ck_assert(ga[j] == exp(av[j]));
    }
    free(gb);
    free(ga);
}
END_TEST

/* Every result is its own new node: the loss itself, a repeated target,
 * two targets sharing one gradient, a seed given as the gradient. */
START_TEST(test_results_distinct)
{
    int64_t s2[1] = {2};
    int a = ext(F64, 1, s2), b = ext(F64, 1, s2), s = ext(F64, 1, s2);
    int y = must(ir_add_binary(&g, IR_OP_ADD, a, b, &err), &err);
    uint32_t before = g.count;
    int t[5] = {a, b, y, a, y};
    int out[5];
    struct ir_grad_request r = {.loss = y, .seed = s, .ntargets = 5, .targets = t};
    ck_assert_int_eq(ir_grad(&g, &r, out, NULL, &err), 0);
    for (int k = 0; k < 5; k++) {
        ck_assert_uint_ge((uint32_t) out[k], before);
        for (int j = 0; j < k; j++)
            ck_assert_int_ne(out[j], out[k]);
    }
    double av[2] = {1, 2}, sv[2] = {0.5, -3};
    const void *e[3] = {av, av, sv};
    for (int k = 0; k < 5; k++) {
        double *v = eval(&g, out[k], e);
        ck_assert(v[0] == 0.5 && v[1] == -3);
        free(v);
    }
}
END_TEST

START_TEST(test_stop_flags)
{
    int64_t s2[1] = {2};
    int a = ext(F64, 1, s2);
    int stopped = must(ir_add_reshape(&g, a, 1, s2, &err), &err); /* as the ingest makes one */
    int sq = must(ir_add_binary(&g, IR_OP_MUL, a, stopped, &err), &err); /* a * stop(a) */
    int y = must(ir_add_reduce(&g, IR_REDUCE_ADD, sq, 1, false, &err), &err);
    uint8_t *stop = calloc(g.count, 1);
    ck_assert_ptr_nonnull(stop);
    stop[stopped] = 1;
    int out;
    uint8_t zero;
    struct ir_grad_request r = {.loss = y, .seed = -1, .ntargets = 1, .targets = &a,
                                .stop = stop};
    ck_assert_int_eq(ir_grad(&g, &r, &out, &zero, &err), 0);
    free(stop);
    double av[2] = {3, -4};
    double *v = run1(out, av, NULL);
    ck_assert(v[0] == 3 && v[1] == -4); /* d/da of a*c with c = a held constant */
    free(v);
    /* A stop in front of every path: zeros, flagged. */
    int only = must(ir_add_reduce(&g, IR_REDUCE_ADD, stopped, 1, false, &err), &err);
    stop = calloc(g.count, 1);
    stop[stopped] = 1;
    r.loss = only;
    r.stop = stop;
    ck_assert_int_eq(ir_grad(&g, &r, &out, &zero, &err), 0);
    ck_assert(zero);
    free(stop);
}
END_TEST

/* Ties: maximum/minimum share g/2; reduce max/min share g/k; reindex
 * reduce max likewise; a NaN result passes nothing. */
START_TEST(test_ties)
{
    int64_t s4[1] = {4}, s23[2] = {2, 3};
    int a = ext(F64, 1, s4), b = ext(F64, 1, s4);
    int m = must(ir_add_binary(&g, IR_OP_MAXIMUM, a, b, &err), &err);
    int y = must(ir_add_reduce(&g, IR_REDUCE_ADD, m, 1, false, &err), &err);
    int t[2] = {a, b}, out[2];
    struct ir_grad_request r = {.loss = y, .seed = -1, .ntargets = 2, .targets = t};
    ck_assert_int_eq(ir_grad(&g, &r, out, NULL, &err), 0);
    double av[4] = {1, 2, 3, NAN}, bv[4] = {1, 5, 0, 1};
    double *ga = run1(out[0], av, bv), *gb = run1(out[1], av, bv);
    ck_assert(ga[0] == 0.5 && gb[0] == 0.5);
    ck_assert(ga[1] == 0 && gb[1] == 1);
    ck_assert(ga[2] == 1 && gb[2] == 0);
    ck_assert(ga[3] == 0 && gb[3] == 0); /* NaN wins, but passes nothing */
    free(ga);
    free(gb);

    int x = ext(F64, 2, s23);
    int mx = must(ir_add_reduce(&g, IR_REDUCE_MAX, x, 2, false, &err), &err);
    int l2 = must(ir_add_reduce(&g, IR_REDUCE_ADD, mx, 1, false, &err), &err);
    int gx;
    struct ir_grad_request r2 = {.loss = l2, .seed = -1, .ntargets = 1, .targets = &x};
    ck_assert_int_eq(ir_grad(&g, &r2, &gx, NULL, &err), 0);
    double xv[6] = {4, 4, 4, 1, 7, 7};
    const void *e[3] = {av, bv, xv};
    double *v = eval(&g, gx, e);
    for (int j = 0; j < 3; j++)
        ck_assert(fabs(v[j] - 1.0 / 3) < 1e-15);
    ck_assert(v[3] == 0 && v[4] == 0.5 && v[5] == 0.5);
    free(v);
}
END_TEST

/* Gradients of gradients of a reindex: the backward of a backward uses
 * the swapped names twice, so it must land on the forward's meaning. */
START_TEST(test_reindex_second_order)
{
    /* y = sum(w * reindex(x)^2) with a flip that names xshape: d/dx twice. */
    int64_t s5[1] = {5};
    int x = ext(F64, 1, s5);
    struct ir_reindex_text t = {.nexprs = 1, .exprs = {"xshape0 - 1 - i0"}, .expr_len = {16}};
    int64_t s4[1] = {4};
    int r = must(ir_add_reindex(&g, x, 1, s4, &t, &err), &err);
    int sq = must(ir_add_binary(&g, IR_OP_MUL, r, r, &err), &err);
    int ones = must(ir_add_const(&g, F64, 1, s5, (struct ir_scalar){.f = 1}, &err), &err);
    int y = must(ir_add_reduce(&g, IR_REDUCE_ADD, sq, 1, false, &err), &err);
    int g1, g2;
    struct ir_grad_request q = {.loss = y, .seed = -1, .ntargets = 1, .targets = &x};
    ck_assert_int_eq(ir_grad(&g, &q, &g1, NULL, &err), 0);
    struct ir_grad_request q2 = {.loss = g1, .seed = ones, .ntargets = 1, .targets = &x};
    ck_assert_int_eq(ir_grad(&g, &q2, &g2, NULL, &err), 0);
    double xv[5] = {1, 2, 3, 4, 5};
    double *v1 = run1(g1, xv, NULL), *v2 = run1(g2, xv, NULL);
    /* r = x[4], x[3], x[2], x[1]: x[0] unused. */
    ck_assert(v1[0] == 0 && v2[0] == 0);
    for (int j = 1; j < 5; j++) {
        ck_assert(v1[j] == 2 * xv[j]);
        ck_assert(v2[j] == 2);
    }
    free(v1);
    free(v2);
}
END_TEST

/* float32 graphs differentiate in float32, and a cast between float
 * dtypes passes the gradient back through the cast. */
START_TEST(test_float32_and_casts)
{
    int64_t s3[1] = {3};
    int x = ext(IR_DTYPE_FLOAT32, 1, s3);
    int w = must(ir_add_cast(&g, x, F64, &err), &err);
    int y = must(ir_add_reduce(&g, IR_REDUCE_ADD, must(ir_add_binary(&g, IR_OP_MUL, w, w, &err),
                                                     &err),
                               1, false, &err),
                 &err);
    int gx;
    struct ir_grad_request r = {.loss = y, .seed = -1, .ntargets = 1, .targets = &x};
    ck_assert_int_eq(ir_grad(&g, &r, &gx, NULL, &err), 0);
    ck_assert_int_eq(g.nodes[gx].dtype, IR_DTYPE_FLOAT32);
    float xv[3] = {1.5f, -2, 0.25f};
    const void *e[1] = {xv};
    void **out;
    ck_assert_int_eq(ir_interp_run(&g, e, &out, &err), KILN_OK);
    const float *v = out[gx];
    for (int j = 0; j < 3; j++)
        ck_assert(v[j] == 2 * xv[j]);
    ir_interp_free(&g, out);
}
END_TEST

/* Only what leads from a target to the loss is built. */
START_TEST(test_builds_only_paths)
{
    int64_t s8[1] = {8};
    int a = ext(F64, 1, s8), b = ext(F64, 1, s8);
    int side = a;
    for (int k = 0; k < 20; k++) /* a long chain on b's side only */
        side = must(ir_add_unary(&g, IR_OP_SIN, k == 0 ? b : side, &err), &err);
    int y = must(ir_add_binary(&g, IR_OP_MUL, a, side, &err), &err);
    int l = must(ir_add_reduce(&g, IR_REDUCE_ADD, y, 1, false, &err), &err);
    uint32_t before = g.count;
    int ga;
    struct ir_grad_request r = {.loss = l, .seed = -1, .ntargets = 1, .targets = &a};
    ck_assert_int_eq(ir_grad(&g, &r, &ga, NULL, &err), 0);
    /* seed, its broadcast, one mul: nothing along the chain. */
    ck_assert_uint_le(g.count - before, 4);
}
END_TEST

/* ir_expr_copy: names swapped, and checked against the new scope. */
START_TEST(test_expr_copy)
{
    struct ir_expr_scope from = {.loop_rank = 1, .xrank = 2, .yrank = 1};
    struct ir_expr *e, *c;
    char msg[128];
    const char *text = "xshape1 - ystride0 + i0";
    ck_assert_int_eq(ir_expr_parse(text, strlen(text), &from, &e, msg, sizeof msg), KILN_OK);
    /* Swapped: xshape1 becomes yshape1, which a yrank-2 scope has. */
    struct ir_expr_scope to = {.loop_rank = 1, .xrank = 1, .yrank = 2};
    ck_assert_int_eq(ir_expr_copy(e, 1, &to, &c, msg, sizeof msg), KILN_OK);
    int64_t idx[1] = {3}, xs[1] = {10}, xst[1] = {7}, ys[2] = {4, 5}, yst[2] = {5, 1};
    struct ir_expr_env env = {.index = idx, .xshape = xs, .xstride = xst, .yshape = ys,
                              .ystride = yst, .xrank = 1, .yrank = 2};
    int64_t scratch[KILN_LIMIT_EXPR_NODES];
    ck_assert_int_eq(ir_expr_eval(c, &env, scratch), 5 - 7 + 3); /* yshape1 - xstride0 + i0 */
    ir_expr_free(c);
    /* Unswapped, xshape1 is outside an xrank-1 scope; so is i0 in a
     * loop of rank 0. */
    ck_assert_int_eq(ir_expr_copy(e, 0, &to, &c, msg, sizeof msg), KILN_EVALUE);
    ck_assert_ptr_null(c);
    ck_assert(msg[0] != '\0');
    struct ir_expr_scope noloop = {.loop_rank = 0, .xrank = 2, .yrank = 2};
    ck_assert_int_eq(ir_expr_copy(e, 1, &noloop, &c, msg, sizeof msg), KILN_EVALUE);
    ir_expr_free(e);
    /* Extras: the copy's reads must match the scope's extra ranks. */
    struct ir_expr_scope ex = {.loop_rank = 2, .xrank = 1, .yrank = 1, .nextras = 1,
                               .extra_rank = {2}};
    text = "@e0(i0, i1)";
    ck_assert_int_eq(ir_expr_parse(text, strlen(text), &ex, &e, msg, sizeof msg), KILN_OK);
    ck_assert_int_eq(ir_expr_copy(e, 1, &ex, &c, msg, sizeof msg), KILN_OK);
    ir_expr_free(c);
    ex.extra_rank[0] = 1;
    ck_assert_int_eq(ir_expr_copy(e, 1, &ex, &c, msg, sizeof msg), KILN_EVALUE);
    ex.nextras = 0;
    ck_assert_int_eq(ir_expr_copy(e, 1, &ex, &c, msg, sizeof msg), KILN_EVALUE);
    ir_expr_free(e);
    ck_assert_str_eq(ir_grad_name(IR_GRAD_GRAD), "grad");
    ck_assert_str_eq(ir_grad_name(IR_GRAD_STOP), "stop_grad");
    ck_assert_ptr_null(ir_grad_name(IR_OP_ADD));
    ck_assert_ptr_null(ir_op_name(IR_GRAD_GRAD)); /* never an IR op */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("finite differences");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_elementwise_fd, 0,
                        (int) (sizeof elementwise / sizeof elementwise[0]));
    tcase_add_loop_test(tc, test_meta_fd, 0, (int) (sizeof meta / sizeof meta[0]));
    size_t nconv;
    convgraph_cases(&nconv);
    tcase_add_loop_test(tc, test_conv_fd, 0, (int) nconv);
    tcase_add_test(tc, test_where_cond_has_no_gradient);
    tcase_add_loop_test(tc, test_higher_order, 0, 4);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("edges");
    tcase_set_timeout(te, 60);
    tcase_add_checked_fixture(te, setup, teardown);
    tcase_add_test(te, test_refusals_leave_graph);
    tcase_add_test(te, test_node_limit_undoes);
    tcase_add_test(te, test_zero_and_int_targets);
    tcase_add_test(te, test_results_distinct);
    tcase_add_test(te, test_stop_flags);
    tcase_add_test(te, test_ties);
    tcase_add_test(te, test_reindex_second_order);
    tcase_add_test(te, test_float32_and_casts);
    tcase_add_test(te, test_builds_only_paths);
    tcase_add_test(te, test_expr_copy);
    suite_add_tcase(s, te);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
