/* grad.c: reverse-mode autodiff (see grad.h).
 *
 * One call makes three passes over the nodes up to the loss: which nodes
 * the loss depends on (backwards from the loss), which depend on a target
 * (forwards from the first target), and then, backwards from the loss,
 * the backward rule of every node that is both, accumulating each input's
 * gradient with ADD nodes in the order the consumers are visited. So the
 * backward graph holds nothing that does not lead from a target to the
 * loss.
 *
 * Every node is made through the ir.h constructors. The helpers below
 * take node indices and return one, or -1 once anything failed (then
 * every later helper returns -1 at once), so a rule reads as a formula
 * and checks its error once. Node pointers are never held across a
 * constructor call (the node array may move); nodes are copied by value.
 */
#include "grad.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_err.h"

const char *ir_grad_name(int op)
{
    switch (op) {
    case IR_GRAD_GRAD: return "grad";
    case IR_GRAD_STOP: return "stop_grad";
    default: return NULL;
    }
}

/* ---- building blocks ---------------------------------------------------- */

struct gctx {
    struct ir_graph *g;
    struct ir_error *err;
    bool failed;
};

/* A constructor's result: a failure sticks. */
static int got(struct gctx *c, int r)
{
    if (r < 0)
        c->failed = true;
    return r;
}

static bool is_float_dt(int dt)
{
    return ir_dtype_info((enum ir_dtype) dt)->kind == IR_KIND_FLOAT;
}

static struct ir_node node(const struct gctx *c, int i)
{
    return c->g->nodes[i];
}

/* A constant of node `like`'s shape, in dtype dt. */
static int cst_dt(struct gctx *c, int like, int dt, double v)
{
    if (c->failed || like < 0)
        return -1;
    struct ir_node n = node(c, like);
    struct ir_scalar s = {0};
    if (is_float_dt(dt))
        s.f = v;
    else
        s.i = (int64_t) v;
    return got(c, ir_add_const(c->g, (enum ir_dtype) dt, n.rank, n.shape, s, c->err));
}

/* A constant of node `like`'s shape and dtype. */
static int cst(struct gctx *c, int like, double v)
{
    return like < 0 ? -1 : cst_dt(c, like, node(c, like).dtype, v);
}

static int un(struct gctx *c, enum ir_op op, int x)
{
    if (c->failed || x < 0)
        return -1;
    return got(c, ir_add_unary(c->g, op, x, c->err));
}

static int bin(struct gctx *c, enum ir_op op, int a, int b)
{
    if (c->failed || a < 0 || b < 0)
        return -1;
    return got(c, ir_add_binary(c->g, op, a, b, c->err));
}

static int mul(struct gctx *c, int a, int b) { return bin(c, IR_OP_MUL, a, b); }
static int dvd(struct gctx *c, int a, int b) { return bin(c, IR_OP_DIV, a, b); }
static int neg(struct gctx *c, int a) { return un(c, IR_OP_NEG, a); }

/* a times the constant v. */
static int scale(struct gctx *c, int a, double v)
{
    return mul(c, a, cst(c, a, v));
}

static int sel(struct gctx *c, int cond, int a, int b)
{
    if (c->failed || cond < 0 || a < 0 || b < 0)
        return -1;
    return got(c, ir_add_where(c->g, cond, a, b, c->err));
}

static int cast(struct gctx *c, int x, int dt)
{
    if (c->failed || x < 0)
        return -1;
    if (node(c, x).dtype == dt)
        return x;
    return got(c, ir_add_cast(c->g, x, (enum ir_dtype) dt, c->err));
}

/* x reshaped to node `like`'s shape (x itself when the shapes match). */
static int reshape_like(struct gctx *c, int x, int like)
{
    if (c->failed || x < 0)
        return -1;
    struct ir_node a = node(c, x), b = node(c, like);
    if (a.rank == b.rank && memcmp(a.shape, b.shape, sizeof(a.shape[0]) * a.rank) == 0)
        return x;
    return got(c, ir_add_reshape(c->g, x, b.rank, b.shape, c->err));
}

static int reduce(struct gctx *c, enum ir_reduce_op op, int x, uint16_t dims, bool keepdims)
{
    if (c->failed || x < 0)
        return -1;
    return got(c, ir_add_reduce(c->g, op, x, dims, keepdims, c->err));
}

/* v, at the shape a reduce of x over `dims` (keepdims as given) makes,
 * broadcast back to x's shape. */
static int back(struct gctx *c, int v, const struct ir_node *x, uint16_t dims, bool keepdims)
{
    if (c->failed || v < 0)
        return -1;
    if (dims == 0)
        return v;
    return got(c, ir_add_broadcast(c->g, v, x->rank, x->shape, keepdims ? 0 : dims, c->err));
}

/* The expressions of reindex-like node n, for a node built from them. */
static struct ir_reindex_ast ast_of(const struct ir_node *n, int swap_xy, struct ir_scalar over)
{
    const struct ir_reindex *r = n->attr.reindex;
    struct ir_reindex_ast a = {
        .nexprs = r->nexprs,
        .exprs = (const struct ir_expr *const *) r->exprs,
        .nconds = r->nconds,
        .conds = (const struct ir_expr *const *) r->conds,
        .nextras = r->nextras,
        .overflow = over,
        .swap_xy = swap_xy,
    };
    return a;
}

/* v (at n's loop shape of a reindex_reduce, i.e. n's output shape) read
 * back at each element of n's input x: a reindex with n's expressions,
 * `over` where the element was dropped. */
static int gather_back(struct gctx *c, int v, const struct ir_node *n, const struct ir_node *x,
                       double over)
{
    if (c->failed || v < 0)
        return -1;
    int extras[IR_MAX_INPUTS];
    for (int k = 1; k < n->nin; k++)
        extras[k - 1] = (int) n->in[k];
    struct ir_scalar s = {.f = over, .i = (int64_t) over};
    if (!is_float_dt(node(c, v).dtype) && isnan(over))
        s.i = 0;
    struct ir_reindex_ast a = ast_of(n, 1, s);
    a.extras = extras;
    return got(c, ir_add_reindex_ast(c->g, v, x->rank, x->shape, &a, c->err));
}

/* v (at x's shape) combined onto n's output shape with n's own
 * expressions (op: add, mul). */
static int scatter_like(struct gctx *c, enum ir_reduce_op op, int v, const struct ir_node *n)
{
    if (c->failed || v < 0)
        return -1;
    int extras[IR_MAX_INPUTS];
    for (int k = 1; k < n->nin; k++)
        extras[k - 1] = (int) n->in[k];
    struct ir_reindex_ast a = ast_of(n, 0, (struct ir_scalar){0});
    a.extras = extras;
    return got(c, ir_add_reindex_reduce_ast(c->g, op, v, n->rank, n->shape, &a, c->err));
}

/* ---- which inputs carry gradient ---------------------------------------- */

/* Does input k of node n pass gradient back? Only float to float. */
static bool diff_edge(const struct ir_graph *g, const struct ir_node *n, int k)
{
    if (!is_float_dt(n->dtype) || !is_float_dt(g->nodes[n->in[k]].dtype))
        return false;
    switch (n->op) {
    case IR_OP_NEG: case IR_OP_ABS: case IR_OP_EXP: case IR_OP_LOG: case IR_OP_SQRT:
    case IR_OP_RSQRT: case IR_OP_SIN: case IR_OP_COS: case IR_OP_TAN: case IR_OP_TANH:
    case IR_OP_SIGMOID: case IR_OP_ERF: case IR_OP_CAST: case IR_OP_RESHAPE:
    case IR_OP_BROADCAST_TO: case IR_OP_REDUCE:
        return k == 0;
    case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV: case IR_OP_POW:
    case IR_OP_MAXIMUM: case IR_OP_MINIMUM: case IR_OP_MOD:
        return k <= 1;
    case IR_OP_WHERE:
        return k == 1 || k == 2;
    case IR_OP_REINDEX: case IR_OP_REINDEX_REDUCE:
        return k == 0; /* extras are indices */
    case IR_OP_MATMUL: case IR_OP_CONV2D: case IR_OP_CONV2D_BWD_DATA:
    case IR_OP_CONV2D_BWD_WEIGHT:
        return k <= 1;
    default:
        return false; /* sources, piecewise-constant ops, comparisons, logic, bits */
    }
}

/* ---- backward rules ----------------------------------------------------- */

/* Gradients of a reduction by max or min (reduce or reindex_reduce):
 * each element equal to its result gets g divided by how many are. */
static int extremum_back(struct gctx *c, int i, int gy, const struct ir_node *n,
                         const struct ir_node *x)
{
    int xi = (int) n->in[0];
    int mask, cnt, spread;
    if (n->op == IR_OP_REDUCE) {
        uint16_t dims = n->attr.reduce.dims;
        bool keep = n->attr.reduce.keepdims;
        mask = bin(c, IR_OP_EQ, xi, back(c, i, x, dims, keep));
        cnt = reduce(c, IR_REDUCE_ADD, cast(c, mask, x->dtype), dims, keep);
        spread = back(c, dvd(c, gy, cnt), x, dims, keep);
    } else {
        /* Dropped elements read NaN, which equals nothing. */
        mask = bin(c, IR_OP_EQ, xi, gather_back(c, i, n, x, NAN));
        cnt = scatter_like(c, IR_REDUCE_ADD, cast(c, mask, x->dtype), n);
        spread = gather_back(c, dvd(c, gy, cnt), n, x, 0);
    }
    return sel(c, mask, spread, cst(c, xi, 0));
}

/* Gradients of a product (reduce or reindex_reduce by mul), exact where
 * x holds zeros: p is the product of the non-zero elements and nz the
 * number of zeros. With no zero an element gets g*p/x; with one zero that
 * element gets g*p and the others 0; with more, all get 0. */
static int product_back(struct gctx *c, int gy, const struct ir_node *n, const struct ir_node *x)
{
    int xi = (int) n->in[0];
    int z = bin(c, IR_OP_EQ, xi, cst(c, xi, 0));
    int nonzero = sel(c, z, cst(c, xi, 1), xi);
    int nzb, gpb;
    if (n->op == IR_OP_REDUCE) {
        uint16_t dims = n->attr.reduce.dims;
        bool keep = n->attr.reduce.keepdims;
        int nz = reduce(c, IR_REDUCE_ADD, cast(c, z, x->dtype), dims, keep);
        int p = reduce(c, IR_REDUCE_MUL, nonzero, dims, keep);
        nzb = back(c, nz, x, dims, keep);
        gpb = back(c, mul(c, gy, p), x, dims, keep);
    } else {
        int nz = scatter_like(c, IR_REDUCE_ADD, cast(c, z, x->dtype), n);
        int p = scatter_like(c, IR_REDUCE_MUL, nonzero, n);
        nzb = gather_back(c, nz, n, x, -1); /* dropped: neither case below */
        gpb = gather_back(c, mul(c, gy, p), n, x, 0);
    }
    int zero = cst(c, xi, 0);
    int one_zero = bin(c, IR_OP_LOGICAL_AND, bin(c, IR_OP_EQ, nzb, cst(c, xi, 1)), z);
    return sel(c, bin(c, IR_OP_EQ, nzb, zero), dvd(c, gpb, xi),
               sel(c, one_zero, gpb, zero));
}

/* Relays are bilinear, so each gradient is another relay:
 *   C = op(A) op(B)  gives dA and dB as matmuls of gy with the other
 *   operand, transposed as the table in matmul_back says;
 *   y = conv(x, w)   dx = bwd_data(gy, w),  dw = bwd_weight(x, gy);
 *   dx = bwd_data(dy, w)   d(dy) = conv(gy, w),  dw = bwd_weight(gy, dy);
 *   dw = bwd_weight(x, dy) dx = bwd_data(dy, gy), d(dy) = conv(x, gy). */
static int matmul_back(struct gctx *c, int k, int gy, const struct ir_node *n)
{
    if (c->failed || gy < 0)
        return -1;
    int a = (int) n->in[0], b = (int) n->in[1];
    bool ta = n->attr.matmul.ta, tb = n->attr.matmul.tb;
    int p, q;
    bool tp, tq;
    if (k == 0) { /* dA: op(A) = gy op(B)^T */
        if (!ta)
            p = gy, q = b, tp = false, tq = !tb;
        else /* A = (gy op(B)^T)^T = op(B) gy^T */
            p = b, q = gy, tp = tb, tq = true;
    } else { /* dB: op(B) = op(A)^T gy */
        if (!tb)
            p = a, q = gy, tp = !ta, tq = false;
        else /* B = (op(A)^T gy)^T = gy^T op(A) */
            p = gy, q = a, tp = true, tq = ta;
    }
    return got(c, ir_add_matmul(c->g, p, q, tp, tq, c->err));
}

static int conv_back(struct gctx *c, int k, int gy, const struct ir_node *n)
{
    if (c->failed || gy < 0)
        return -1;
    int a = (int) n->in[0], b = (int) n->in[1];
    const struct ir_node *x = &c->g->nodes[n->in[k]];
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof shape);
    const struct ir_conv *cv = &n->attr.conv;
    int r;
    switch (n->op) {
    case IR_OP_CONV2D:
        r = k == 0 ? ir_add_conv(c->g, IR_OP_CONV2D_BWD_DATA, gy, b, 4, shape, cv, c->err)
                   : ir_add_conv(c->g, IR_OP_CONV2D_BWD_WEIGHT, a, gy, 4, shape, cv, c->err);
        break;
    case IR_OP_CONV2D_BWD_DATA:
        r = k == 0 ? ir_add_conv(c->g, IR_OP_CONV2D, gy, b, 4, shape, cv, c->err)
                   : ir_add_conv(c->g, IR_OP_CONV2D_BWD_WEIGHT, gy, a, 4, shape, cv, c->err);
        break;
    default: /* CONV2D_BWD_WEIGHT */
        r = k == 0 ? ir_add_conv(c->g, IR_OP_CONV2D_BWD_DATA, b, gy, 4, shape, cv, c->err)
                   : ir_add_conv(c->g, IR_OP_CONV2D, a, gy, 4, shape, cv, c->err);
        break;
    }
    return got(c, r);
}

/* The gradient that node i (value y, incoming gradient gy) passes to its
 * input k; diff_edge(n, k) holds. */
static int rule(struct gctx *c, int i, int k, int gy)
{
    const struct ir_node n = node(c, i);
    const struct ir_node x = node(c, (int) n.in[k]);
    int a = (int) n.in[0], b = n.nin > 1 ? (int) n.in[1] : -1;
    switch (n.op) {
    case IR_OP_NEG: return neg(c, gy);
    case IR_OP_ABS: return mul(c, gy, un(c, IR_OP_SIGN, a));
    case IR_OP_EXP: return mul(c, gy, i);
    case IR_OP_LOG: return dvd(c, gy, a);
    case IR_OP_SQRT: return dvd(c, scale(c, gy, 0.5), i);
    case IR_OP_RSQRT: return mul(c, scale(c, gy, -0.5), mul(c, mul(c, i, i), i));
    case IR_OP_SIN: return mul(c, gy, un(c, IR_OP_COS, a));
    case IR_OP_COS: return neg(c, mul(c, gy, un(c, IR_OP_SIN, a)));
    case IR_OP_TAN: return mul(c, gy, bin(c, IR_OP_ADD, cst(c, i, 1), mul(c, i, i)));
    case IR_OP_TANH: return mul(c, gy, bin(c, IR_OP_SUB, cst(c, i, 1), mul(c, i, i)));
    case IR_OP_SIGMOID:
        return mul(c, gy, mul(c, i, bin(c, IR_OP_SUB, cst(c, i, 1), i)));
    case IR_OP_ERF: /* 2/sqrt(pi) exp(-x^2) */
        return mul(c, scale(c, gy, 1.1283791670955126),
                   un(c, IR_OP_EXP, neg(c, mul(c, a, a))));
    case IR_OP_CAST: return cast(c, gy, x.dtype);
    case IR_OP_RESHAPE: return reshape_like(c, gy, a);
    case IR_OP_ADD: return gy;
    case IR_OP_SUB: return k == 0 ? gy : neg(c, gy);
    case IR_OP_MUL: return mul(c, gy, k == 0 ? b : a);
    case IR_OP_DIV: return k == 0 ? dvd(c, gy, b) : neg(c, dvd(c, mul(c, gy, i), b));
    case IR_OP_MOD: return k == 0 ? gy : neg(c, mul(c, gy, bin(c, IR_OP_FLOOR_DIV, a, b)));
    case IR_OP_POW:
        if (k == 0) { /* b a^(b-1), 0 where b is 0 (so 0^0 passes 0, not NaN) */
            int d = mul(c, gy, mul(c, b, bin(c, IR_OP_POW, a,
                                             bin(c, IR_OP_SUB, b, cst(c, b, 1)))));
            return sel(c, bin(c, IR_OP_EQ, b, cst(c, b, 0)), cst(c, b, 0), d);
        } else { /* a^b log a, 0 where a is 0 */
            int d = mul(c, gy, mul(c, i, un(c, IR_OP_LOG, a)));
            return sel(c, bin(c, IR_OP_EQ, a, cst(c, a, 0)), cst(c, a, 0), d);
        }
    case IR_OP_MAXIMUM:
    case IR_OP_MINIMUM: { /* the winner takes g; a tie shares it */
        enum ir_op wins = n.op == IR_OP_MAXIMUM ? IR_OP_GT : IR_OP_LT;
        int self = k == 0 ? a : b, other = k == 0 ? b : a;
        int zero = cst(c, i, 0);
        return sel(c, bin(c, wins, self, other), gy,
                   sel(c, bin(c, IR_OP_EQ, a, b), scale(c, gy, 0.5), zero));
    }
    case IR_OP_WHERE: {
        int zero = cst(c, i, 0);
        return k == 1 ? sel(c, (int) n.in[0], gy, zero) : sel(c, (int) n.in[0], zero, gy);
    }
    case IR_OP_BROADCAST_TO: {
        uint16_t dims = n.attr.broadcast.dims; /* new dims, then the stretched ones */
        for (int d = 0, j = 0; d < n.rank; d++) {
            if (dims & (1u << d))
                continue;
            if (x.shape[j] == 1 && n.shape[d] != 1)
                dims |= (uint16_t) (1u << d);
            j++;
        }
        if (dims == 0)
            return gy;
        return reshape_like(c, reduce(c, IR_REDUCE_ADD, gy, dims, false), a);
    }
    case IR_OP_REDUCE: {
        uint16_t dims = n.attr.reduce.dims;
        bool keep = n.attr.reduce.keepdims;
        switch (n.attr.reduce.op) {
        case IR_REDUCE_ADD:
            return back(c, gy, &x, dims, keep);
        case IR_REDUCE_MEAN: {
            double count = 1;
            for (int d = 0; d < x.rank; d++)
                if (dims & (1u << d))
                    count *= (double) x.shape[d];
            return back(c, dvd(c, gy, cst(c, gy, count)), &x, dims, keep);
        }
        case IR_REDUCE_MUL:
            return product_back(c, gy, &n, &x);
        default:
            return extremum_back(c, i, gy, &n, &x);
        }
    }
    case IR_OP_REINDEX: {
        int extras[IR_MAX_INPUTS];
        for (int e = 1; e < n.nin; e++)
            extras[e - 1] = (int) n.in[e];
        struct ir_reindex_ast t = ast_of(&n, 1, (struct ir_scalar){0});
        t.extras = extras;
        if (c->failed || gy < 0)
            return -1;
        return got(c, ir_add_reindex_reduce_ast(c->g, IR_REDUCE_ADD, gy, x.rank, x.shape, &t,
                                                c->err));
    }
    case IR_OP_REINDEX_REDUCE:
        switch (n.attr.reindex->op) {
        case IR_REDUCE_ADD: return gather_back(c, gy, &n, &x, 0);
        case IR_REDUCE_MUL: return product_back(c, gy, &n, &x);
        default: return extremum_back(c, i, gy, &n, &x);
        }
    case IR_OP_MATMUL:
        return matmul_back(c, k, gy, &n);
    case IR_OP_CONV2D: case IR_OP_CONV2D_BWD_DATA: case IR_OP_CONV2D_BWD_WEIGHT:
        return conv_back(c, k, gy, &n);
    default:
        c->failed = true;
        return ir_error_set(c->err, KILN_EINTERNAL, "", "no backward rule for %s", ir_op_name(n.op));
    }
}

/* ---- the sweep ---------------------------------------------------------- */

static int check_request(const struct ir_graph *g, const struct ir_grad_request *r,
                         struct ir_error *err)
{
    if (r->loss < 0 || (uint32_t) r->loss >= g->count)
        return ir_error_set(err, KILN_EVALUE, "in[0]", "the loss names no node (%d)", r->loss);
    const struct ir_node *loss = &g->nodes[r->loss];
    if (!is_float_dt(loss->dtype))
        return ir_error_set(err, KILN_ETYPE, "in[0]", "the loss is %s: only a float loss has a gradient",
                    ir_dtype_name(loss->dtype));
    if (r->seed >= 0) {
        if ((uint32_t) r->seed >= g->count)
            return ir_error_set(err, KILN_EVALUE, "in[2]", "the seed names no node (%d)", r->seed);
        const struct ir_node *s = &g->nodes[r->seed];
        if (s->dtype != loss->dtype)
            return ir_error_set(err, KILN_ETYPE, "in[2]", "the seed is %s, the loss %s: they must match",
                        ir_dtype_name(s->dtype), ir_dtype_name(loss->dtype));
        if (s->rank != loss->rank ||
            memcmp(s->shape, loss->shape, sizeof(s->shape[0]) * s->rank) != 0)
            return ir_error_set(err, KILN_EVALUE, "in[2]", "the seed's shape differs from the loss's");
    } else if (loss->numel != 1) {
        return ir_error_set(err, KILN_EVALUE, "in",
                    "the loss has %lld elements: a loss that is not a scalar needs a seed",
                    (long long) loss->numel);
    }
    for (int k = 0; k < r->ntargets; k++)
        if (r->targets[k] < 0 || (uint32_t) r->targets[k] >= g->count)
            return ir_error_set(err, KILN_EVALUE, "in[1]", "a target names no node (%d)", r->targets[k]);
    return 0;
}

int ir_grad(struct ir_graph *g, const struct ir_grad_request *r, int *grads, uint8_t *zero,
            struct ir_error *err)
{
    if (check_request(g, r, err) < 0)
        return -1;
    const uint32_t count = g->count, loss = (uint32_t) r->loss;
    struct ir_graph_mark mark = ir_graph_mark(g);
    /* anc: the loss depends on it; dep: it depends on a target; adj: its
     * gradient so far (-1: none). */
    uint8_t *anc = calloc(count, 1), *dep = calloc(count, 1);
    int *adj = malloc(count * sizeof(*adj));
    if (anc == NULL || dep == NULL || adj == NULL) {
        free(anc);
        free(dep);
        free(adj);
        return ir_error_set(err, KILN_ENOMEM, "", "out of memory for the gradient");
    }
    uint32_t lo = count;
    for (int k = 0; k < r->ntargets; k++) {
        dep[r->targets[k]] = 1;
        if ((uint32_t) r->targets[k] < lo)
            lo = (uint32_t) r->targets[k];
    }
    anc[loss] = 1;
    for (uint32_t i = loss + 1; i-- > lo;) {
        const struct ir_node *n = &g->nodes[i];
        if (!anc[i] || (r->stop != NULL && r->stop[i]))
            continue;
        for (int k = 0; k < n->nin; k++)
            if (diff_edge(g, n, k))
                anc[n->in[k]] = 1;
    }
    for (uint32_t i = lo; i <= loss; i++) {
        const struct ir_node *n = &g->nodes[i];
        if (dep[i] || (r->stop != NULL && r->stop[i]))
            continue;
        for (int k = 0; k < n->nin && !dep[i]; k++)
            dep[i] = diff_edge(g, n, k) && dep[n->in[k]];
    }
    for (uint32_t i = 0; i < count; i++)
        adj[i] = -1;

    struct gctx c = {.g = g, .err = err};
    if (dep[loss])
        adj[loss] = r->seed >= 0 ? r->seed : cst(&c, (int) loss, 1);
    for (uint32_t i = loss + 1; !c.failed && i-- > lo;) {
        if (!anc[i] || !dep[i] || adj[i] < 0 || (r->stop != NULL && r->stop[i]))
            continue;
        struct ir_node n = g->nodes[i];
        for (int k = 0; !c.failed && k < n.nin; k++) {
            uint32_t in = n.in[k];
            if (!diff_edge(g, &n, k) || !anc[in] || !dep[in])
                continue;
            int part = rule(&c, (int) i, k, adj[i]);
            adj[in] = adj[in] < 0 ? part : bin(&c, IR_OP_ADD, adj[in], part);
        }
    }

    /* Results: each a node of this call's own, none shared. Each target
     * adds at most one node below (a zero or a copy), so `claimed` covers
     * every node this call can add. */
    size_t cap = g->count - count + (size_t) r->ntargets + 1;
    uint8_t *claimed = NULL;
    if (!c.failed && (claimed = calloc(cap, 1)) == NULL)
        c.failed = ir_error_set(err, KILN_ENOMEM, "", "out of memory for the gradient") < 0;
    for (int k = 0; !c.failed && k < r->ntargets; k++) {
        int t = r->targets[k];
        bool none = !(anc[t] && dep[t]) || adj[t] < 0;
        int v = none ? cst(&c, t, 0) : adj[t];
        if (!none && ((uint32_t) v < count || claimed[(uint32_t) v - count])) {
            struct ir_node tn = node(&c, t);
            v = got(&c, ir_add_reshape(g, v, tn.rank, tn.shape, err));
        }
        if (v >= 0) {
            claimed[(uint32_t) v - count] = 1;
            grads[k] = v;
            if (zero != NULL)
                zero[k] = none;
        }
    }
    free(claimed);
    free(anc);
    free(dep);
    free(adj);
    if (c.failed) {
        /* A constructor's field names an argument of a node made here,
         * which means nothing to the caller: only the graph's bound or
         * memory (no field) can fail a valid request. */
        if (err != NULL)
            err->field[0] = '\0';
        ir_graph_undo(g, mark);
        return -1;
    }
    return 0;
}
