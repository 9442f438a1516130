/* interp.c: the reference interpreter (semantics in interp.h).
 *
 * Deliberately naive: one pass per node, element by element, every
 * element read and written through a dtype switch and memcpy (so no
 * alignment or aliasing assumption is made about extern or array data),
 * integers widened to 64 bits and floats to double. Speed is not a goal;
 * being obviously right is. The scalar rules live in small functions that
 * mirror interp.h's spec line by line, so a reviewer can check one
 * against the other.
 */
#include "interp.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_err.h"
#include "interp_impl.h"
#include "philox.h"
#include "relay_ref.h"

/* One run: the graph, its inputs, the buffers made so far, the quota. */
struct interp {
    const struct ir_graph *g;
    const void *const *externs;
    void **bufs;
    size_t held, max_bytes;
    struct ir_error *err;
};

/* A reduction accumulator: integers as 64-bit two's complement, floats as
 * double. */
union acc {
    int64_t i;
    uint64_t u;
    double f;
};

/* ---- element-wise nodes ---------------------------------------------- */

static void cast_elem(void *y, int ydt, const void *x, int xdt, int64_t k)
{
    if (!ir_interp_dt_is_float(xdt)) {
        int64_t v = ir_interp_load_int(x, xdt, k);
        if (ydt == IR_DTYPE_FLOAT32)
            ir_interp_store_float(y, ydt, k, (float) v); /* one rounding, even from int64 */
        else if (ydt == IR_DTYPE_FLOAT64)
            ir_interp_store_float(y, ydt, k, (double) v);
        else
            ir_interp_store_int(y, ydt, k, (uint64_t) v);
        return;
    }
    double v = ir_interp_load_float(x, xdt, k);
    if (ir_interp_dt_is_float(ydt))
        ir_interp_store_float(y, ydt, k, v);
    else if (ydt == IR_DTYPE_BOOL)
        ir_interp_store_int(y, ydt, k, v != 0.0);
    else
        ir_interp_store_int(y, ydt, k, (uint64_t) ir_interp_float_to_int(v, ydt));
}

static void eval_unary(const struct ir_node *n, const struct ir_node *xn, const void *x, void *y)
{
    int dt = n->dtype, xdt = xn->dtype;
    for (int64_t k = 0; k < n->numel; k++) {
        if (n->op == IR_OP_CAST)
            cast_elem(y, dt, x, xdt, k);
        else if (n->op == IR_OP_LOGICAL_NOT)
            ir_interp_store_int(y, dt, k, !ir_interp_truthy(x, xdt, k));
        else if (ir_interp_dt_is_float(dt))
            ir_interp_store_float(y, dt, k, ir_interp_float_unary(n->op, dt, ir_interp_load_float(x, dt, k)));
        else
            ir_interp_store_int(y, dt, k, ir_interp_int_unary(n->op, ir_interp_load_int(x, dt, k), dt));
    }
}

static void eval_binary(const struct ir_node *n, int dt, const void *a, const void *b, void *y)
{
    for (int64_t k = 0; k < n->numel; k++) {
        switch (n->op) {
        case IR_OP_EQ:
        case IR_OP_NE:
        case IR_OP_LT:
        case IR_OP_LE:
        case IR_OP_GT:
        case IR_OP_GE:
            ir_interp_store_int(y, n->dtype, k, ir_interp_compare(n->op, a, b, dt, k));
            break;
        case IR_OP_LOGICAL_AND:
            ir_interp_store_int(y, n->dtype, k, ir_interp_truthy(a, dt, k) && ir_interp_truthy(b, dt, k));
            break;
        case IR_OP_LOGICAL_OR:
            ir_interp_store_int(y, n->dtype, k, ir_interp_truthy(a, dt, k) || ir_interp_truthy(b, dt, k));
            break;
        case IR_OP_LOGICAL_XOR:
            ir_interp_store_int(y, n->dtype, k, ir_interp_truthy(a, dt, k) != ir_interp_truthy(b, dt, k));
            break;
        default:
            if (ir_interp_dt_is_float(dt))
                ir_interp_store_float(y, dt, k,
                            ir_interp_float_binary(n->op, ir_interp_load_float(a, dt, k), ir_interp_load_float(b, dt, k)));
            else
                ir_interp_store_int(y, dt, k, ir_interp_int_binary(n->op, ir_interp_load_int(a, dt, k), ir_interp_load_int(b, dt, k), dt));
            break;
        }
    }
}

static void eval_where(const struct ir_node *n, int cdt, const void *c, const void *a,
                       const void *b, void *y)
{
    for (int64_t k = 0; k < n->numel; k++)
        ir_interp_copy_elem(y, k, ir_interp_truthy(c, cdt, k) ? a : b, k, n->dtype);
}

/* ---- sources ---------------------------------------------------------- */

static void eval_index(const struct ir_node *n, void *y)
{
    int64_t stride[KILN_LIMIT_RANK];
    int d = n->attr.index.dim;
    ir_node_strides(n, stride);
    for (int64_t k = 0; k < n->numel; k++)
        ir_interp_store_int(y, n->dtype, k, (uint64_t) ((k / stride[d]) % n->shape[d]));
}

static void eval_random(const struct ir_node *n, void *y)
{
    bool normal = n->attr.random.dist == IR_RANDOM_NORMAL;
    for (int64_t k = 0; k < n->numel; k++) {
        uint32_t r[4];
        philox_block(n->attr.random.seed, n->attr.random.offset + (uint64_t) k, r);
        double v;
        if (n->dtype == IR_DTYPE_FLOAT32)
            v = normal ? philox_normal_f32(r) : philox_uniform_f32(r);
        else
            v = normal ? philox_normal_f64(r) : philox_uniform_f64(r);
        ir_interp_store_float(y, n->dtype, k, v);
    }
}

/* A whole buffer of x copied into y (ARRAY, EXTERN, RESHAPE). */
static void eval_copy(const struct ir_node *n, const void *x, void *y)
{
    if (n->dtype != IR_DTYPE_BOOL) {
        if (n->numel > 0)
            memcpy(y, x, (size_t) n->numel * ir_interp_dt_size(n->dtype));
        return;
    }
    for (int64_t k = 0; k < n->numel; k++)
        ir_interp_copy_elem(y, k, x, k, n->dtype);
}

/* ---- broadcast and reduce --------------------------------------------- */

static void eval_broadcast(const struct ir_node *n, const struct ir_node *xn, const void *x,
                           void *y)
{
    int64_t xstride[KILN_LIMIT_RANK], map[KILN_LIMIT_RANK], c[KILN_LIMIT_RANK] = {0};
    ir_node_strides(xn, xstride);
    for (int d = 0, j = 0; d < n->rank; d++) {
        if (n->attr.broadcast.dims & (1u << d)) {
            map[d] = 0;
        } else {
            map[d] = xn->shape[j] == 1 ? 0 : xstride[j];
            j++;
        }
    }
    for (int64_t k = 0; k < n->numel; k++) {
        ir_interp_copy_elem(y, k, x, ir_interp_dot(n->rank, c, map), n->dtype);
        ir_interp_coords_next(n->rank, n->shape, c);
    }
}

static void acc_init(union acc *a, int op, int dt)
{
    int64_t lo, hi;
    bool f = ir_interp_dt_is_float(dt);
    if (!f)
        ir_dtype_int_range((enum ir_dtype) dt, &lo, &hi);
    switch (op) {
    case IR_REDUCE_MUL:
        if (f)
            a->f = 1.0;
        else
            a->i = 1;
        break;
    case IR_REDUCE_MAX:
        if (f)
            a->f = -INFINITY;
        else
            a->i = lo;
        break;
    case IR_REDUCE_MIN:
        if (f)
            a->f = INFINITY;
        else
            a->i = hi;
        break;
    default: /* ADD, MEAN */
        if (f)
            a->f = 0.0;
        else
            a->i = 0;
        break;
    }
}

static void acc_float(union acc *a, int op, double v)
{
    switch (op) {
    case IR_REDUCE_MUL:
        a->f *= v;
        break;
    case IR_REDUCE_MAX:
        if (!isnan(a->f) && (isnan(v) || v > a->f))
            a->f = v;
        break;
    case IR_REDUCE_MIN:
        if (!isnan(a->f) && (isnan(v) || v < a->f))
            a->f = v;
        break;
    default:
        a->f += v;
        break; /* ADD, MEAN */
    }
}

static void acc_int(union acc *a, int op, int64_t v)
{
    switch (op) {
    case IR_REDUCE_MUL:
        a->u *= (uint64_t) v;
        break;
    case IR_REDUCE_MAX:
        if (v > a->i)
            a->i = v;
        break;
    case IR_REDUCE_MIN:
        if (v < a->i)
            a->i = v;
        break;
    default:
        a->u += (uint64_t) v;
        break;
    }
}

/* Combines element j of x into a. */
static void acc_add(union acc *a, int op, int dt, const void *x, int64_t j)
{
    if (ir_interp_dt_is_float(dt))
        acc_float(a, op, ir_interp_load_float(x, dt, j));
    else
        acc_int(a, op, ir_interp_load_int(x, dt, j));
}

/* Stores the final value of a; count is the number of elements (MEAN). */
static void acc_store(const union acc *a, int op, int dt, int64_t count, void *y, int64_t k)
{
    if (!ir_interp_dt_is_float(dt))
        ir_interp_store_int(y, dt, k, a->u);
    else if (op == IR_REDUCE_MEAN)
        ir_interp_store_float(y, dt, k, count > 0 ? a->f / (double) count : NAN);
    else
        ir_interp_store_float(y, dt, k, a->f);
}

/* ---- memory ----------------------------------------------------------- */

static int interp_oom(struct interp *in, uint32_t node, const char *why, size_t bytes)
{
    if (in->err) {
        const char *name = ir_op_name(in->g->nodes[node].op);
        in->err->code = KILN_ENOMEM;
        in->err->node = node; /* the graph's node: callers map it to their own numbering */
        snprintf(in->err->field, sizeof in->err->field, "nodes[%u]", (unsigned) node);
        snprintf(in->err->message, sizeof in->err->message, "%s: %s (%zu bytes)",
                 name ? name : "?", why, bytes);
    }
    return KILN_ENOMEM;
}

/* count elements of size bytes each, counted against the quota; never
 * NULL on success, even for count 0. */
static int interp_alloc(struct interp *in, uint32_t node, int64_t count, size_t size, void **p,
                        size_t *bytes)
{
    *p = NULL;
    *bytes = 0;
    if (count < 0 || (uint64_t) count > SIZE_MAX / size)
        return interp_oom(in, node, "allocation size overflows", SIZE_MAX);
    size_t b = (size_t) count * size;
    if (b == 0)
        b = 1;
    if (b > in->max_bytes - in->held)
        return interp_oom(in, node, "over the interpreter's memory quota", b);
    *p = malloc(b);
    if (!*p)
        return interp_oom(in, node, "out of memory", b);
    in->held += b;
    *bytes = b;
    return KILN_OK;
}

static void interp_release(struct interp *in, void *p, size_t bytes)
{
    free(p);
    in->held -= bytes;
}

/* Combines the 16 lanes of a float ADD, MUL or MEAN block by halves
 * (interp.h): lane l with lane l + w for w = 8, 4, 2, 1; lane 0 is the
 * block's value. */
static void lanes_fold(union acc *lane, int op)
{
    for (int w = IR_REDUCE_LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            acc_float(&lane[l], op, lane[l + w].f);
}

/* One output element: its n input elements, element j at offset
 * base + dot(ic, stride) where ic counts over `shape` (the reduced dims,
 * nr of them) in row-major order; combined into *a in the order interp.h
 * gives. */
static void reduce_one(union acc *a, int op, int dt, const void *x, int64_t base, int nr,
                       const int64_t *shape, const int64_t *stride, int64_t n)
{
    int64_t ic[KILN_LIMIT_RANK] = {0};
    acc_init(a, op, dt);
    if (!ir_interp_dt_is_float(dt) || op == IR_REDUCE_MAX || op == IR_REDUCE_MIN) {
        for (int64_t j = 0; j < n; j++) {
            acc_add(a, op, dt, x, base + ir_interp_dot(nr, ic, stride));
            ir_interp_coords_next(nr, shape, ic);
        }
        return;
    }
    union acc lane[IR_REDUCE_LANES];
    for (int64_t j = 0; j < n;) {
        int64_t end = n - j > IR_REDUCE_BLOCK ? j + IR_REDUCE_BLOCK : n;
        for (int l = 0; l < IR_REDUCE_LANES; l++)
            acc_init(&lane[l], op, dt);
        for (; j < end; j++) {
            acc_add(&lane[j % IR_REDUCE_LANES], op, dt, x, base + ir_interp_dot(nr, ic, stride));
            ir_interp_coords_next(nr, shape, ic);
        }
        lanes_fold(lane, op);
        acc_float(a, op, lane[0].f);
    }
}

static int eval_reduce(struct interp *in, uint32_t i, const struct ir_node *xn, const void *x,
                       void *y)
{
    const struct ir_node *n = &in->g->nodes[i];
    int op = n->attr.reduce.op, dt = n->dtype;
    /* The input's dims split into kept (their row-major order is the
     * output's) and reduced (the order of j). */
    int64_t xstride[KILN_LIMIT_RANK], kshape[KILN_LIMIT_RANK], kstride[KILN_LIMIT_RANK];
    int64_t rshape[KILN_LIMIT_RANK], rstride[KILN_LIMIT_RANK], kc[KILN_LIMIT_RANK] = {0};
    int nk = 0, nr = 0;
    int64_t count = 1;
    ir_node_strides(xn, xstride);
    for (int d = 0; d < xn->rank; d++) {
        if (n->attr.reduce.dims & (1u << d)) {
            rshape[nr] = xn->shape[d];
            rstride[nr++] = xstride[d];
            count *= xn->shape[d];
        } else {
            kshape[nk] = xn->shape[d];
            kstride[nk++] = xstride[d];
        }
    }
    for (int64_t k = 0; k < n->numel; k++) {
        union acc a;
        reduce_one(&a, op, dt, x, ir_interp_dot(nk, kc, kstride), nr, rshape, rstride, count);
        acc_store(&a, op, dt, count, y, k);
        ir_interp_coords_next(nk, kshape, kc);
    }
    return KILN_OK;
}

/* ---- reindex ---------------------------------------------------------- */

/* The extra inputs of a reindex, for the expression callback. */
struct interp_extras {
    const void *buf[KILN_LIMIT_EXPR_EXTRAS];
    int dt[KILN_LIMIT_EXPR_EXTRAS];
};

static int64_t interp_read_extra(void *arg, int k, int64_t flat)
{
    const struct interp_extras *e = arg;
    return ir_interp_load_int(e->buf[k], e->dt[k], flat);
}

/* Shapes, strides and extras of one reindex node, wired into env. */
struct reindex_ctx {
    int64_t xstride[KILN_LIMIT_RANK], ystride[KILN_LIMIT_RANK];
    struct interp_extras extras;
    struct ir_expr_env env;
};

static void reindex_ctx_init(struct reindex_ctx *r, const struct interp *in,
                             const struct ir_node *n, const int64_t *index)
{
    const struct ir_node *xn = &in->g->nodes[n->in[0]];
    ir_node_strides(xn, r->xstride);
    ir_node_strides(n, r->ystride);
    memset(&r->env, 0, sizeof r->env);
    r->env.index = index;
    r->env.xshape = xn->shape;
    r->env.xstride = r->xstride;
    r->env.yshape = n->shape;
    r->env.ystride = r->ystride;
    r->env.xrank = xn->rank;
    r->env.yrank = n->rank;
    for (int k = 0; k < n->attr.reindex->nextras && k < KILN_LIMIT_EXPR_EXTRAS; k++) {
        const struct ir_node *en = &in->g->nodes[n->in[1 + k]];
        r->extras.buf[k] = in->bufs[n->in[1 + k]];
        r->extras.dt[k] = en->dtype;
        r->env.extra_shape[k] = en->shape;
    }
    r->env.extra_read = interp_read_extra;
    r->env.extra_arg = &r->extras;
}

/* Evaluates the exprs and conds at env's index: the flat offset into a
 * tensor of `shape` (rank nexprs) and `stride`, or -1 when the element
 * overflows (out of range, or a cond holds). */
static int64_t reindex_target(const struct ir_reindex *ri, const struct ir_expr_env *env,
                              const int64_t *shape, const int64_t *stride, int64_t *scratch)
{
    int64_t flat = 0;
    for (int d = 0; d < ri->nexprs; d++) {
        int64_t c = ir_expr_eval(ri->exprs[d], env, scratch);
        if (c < 0 || c >= shape[d])
            return -1;
        flat += c * stride[d];
    }
    for (int j = 0; j < ri->nconds; j++)
        if (ir_expr_eval(ri->conds[j], env, scratch) != 0)
            return -1;
    return flat;
}

static void eval_reindex(struct interp *in, uint32_t i, const void *x, void *y)
{
    const struct ir_node *n = &in->g->nodes[i];
    const struct ir_reindex *ri = n->attr.reindex;
    int64_t c[KILN_LIMIT_RANK] = {0}, scratch[KILN_LIMIT_EXPR_NODES];
    struct reindex_ctx r;
    reindex_ctx_init(&r, in, n, c);
    for (int64_t k = 0; k < n->numel; k++) {
        int64_t j = reindex_target(ri, &r.env, r.env.xshape, r.xstride, scratch);
        if (j < 0)
            ir_interp_store_scalar(y, n->dtype, k, ri->overflow);
        else
            ir_interp_copy_elem(y, k, x, j, n->dtype);
        ir_interp_coords_next(n->rank, n->shape, c);
    }
}

static int eval_reindex_reduce(struct interp *in, uint32_t i, const void *x, void *y)
{
    const struct ir_node *n = &in->g->nodes[i];
    const struct ir_node *xn = &in->g->nodes[n->in[0]];
    const struct ir_reindex *ri = n->attr.reindex;
    int op = ri->op, dt = n->dtype;
    int64_t c[KILN_LIMIT_RANK] = {0}, scratch[KILN_LIMIT_EXPR_NODES];
    struct reindex_ctx r;
    reindex_ctx_init(&r, in, n, c);
    void *mem;
    size_t bytes;
    int rc = interp_alloc(in, i, n->numel, sizeof(union acc), &mem, &bytes);
    if (rc)
        return rc;
    union acc *a = mem;
    for (int64_t k = 0; k < n->numel; k++)
        acc_init(&a[k], op, dt);
    for (int64_t j = 0; j < xn->numel; j++) {
        int64_t k = reindex_target(ri, &r.env, n->shape, r.ystride, scratch);
        if (k >= 0)
            acc_add(&a[k], op, dt, x, j);
        ir_interp_coords_next(xn->rank, xn->shape, c);
    }
    for (int64_t k = 0; k < n->numel; k++)
        acc_store(&a[k], op, dt, 1, y, k);
    interp_release(in, a, bytes);
    return KILN_OK;
}

/* ---- the run ---------------------------------------------------------- */

static int eval_node(struct interp *in, uint32_t i, void *y)
{
    const struct ir_node *n = &in->g->nodes[i];
    const struct ir_node *g = in->g->nodes;
    void *const *b = in->bufs;
    switch (n->op) {
    case IR_OP_ARRAY:
        eval_copy(n, n->attr.array.data, y);
        break;
    case IR_OP_CONST:
        for (int64_t k = 0; k < n->numel; k++)
            ir_interp_store_scalar(y, n->dtype, k, n->attr.scalar);
        break;
    case IR_OP_INDEX:
        eval_index(n, y);
        break;
    case IR_OP_RANDOM:
        eval_random(n, y);
        break;
    case IR_OP_EXTERN:
        eval_copy(n, in->externs ? in->externs[n->attr.ext.slot] : NULL, y);
        break;
    case IR_OP_RESHAPE:
        eval_copy(n, b[n->in[0]], y);
        break;
    case IR_OP_WHERE:
        eval_where(n, g[n->in[0]].dtype, b[n->in[0]], b[n->in[1]], b[n->in[2]], y);
        break;
    case IR_OP_BROADCAST_TO:
        eval_broadcast(n, &g[n->in[0]], b[n->in[0]], y);
        break;
    case IR_OP_REDUCE:
        return eval_reduce(in, i, &g[n->in[0]], b[n->in[0]], y);
    case IR_OP_REINDEX:
        eval_reindex(in, i, b[n->in[0]], y);
        break;
    case IR_OP_REINDEX_REDUCE:
        return eval_reindex_reduce(in, i, b[n->in[0]], y);
    case IR_OP_MATMUL:
    case IR_OP_CONV2D:
    case IR_OP_CONV2D_BWD_DATA:
    case IR_OP_CONV2D_BWD_WEIGHT:
        ir_relay_ref(n, &g[n->in[0]], &g[n->in[1]], b[n->in[0]], b[n->in[1]], y, 0,
                     n->rank ? n->shape[0] : 1);
        break;
    default:
        if (n->op >= IR_OP_NEG && n->op <= IR_OP_CAST)
            eval_unary(n, &g[n->in[0]], b[n->in[0]], y);
        else if (n->op >= IR_OP_ADD && n->op <= IR_OP_SHR)
            eval_binary(n, g[n->in[0]].dtype, b[n->in[0]], b[n->in[1]], y);
        break; /* no other op passes the constructors */
    }
    return KILN_OK;
}

void ir_interp_free(const struct ir_graph *g, void **out)
{
    if (!out)
        return;
    for (uint32_t i = 0; i < g->count; i++)
        free(out[i]);
    free(out);
}

int ir_interp_run_quota(const struct ir_graph *g, const void *const *externs, size_t max_bytes,
                        void ***out, struct ir_error *err)
{
    struct interp in = {.g = g, .externs = externs, .max_bytes = max_bytes, .err = err};
    *out = NULL;
    in.bufs = calloc(g->count > 0 ? g->count : 1, sizeof *in.bufs);
    if (!in.bufs) {
        if (err) {
            err->code = KILN_ENOMEM;
            err->node = -1;
            snprintf(err->field, sizeof err->field, "nodes");
            snprintf(err->message, sizeof err->message,
                     "interpreter: out of memory for %u buffer pointers", (unsigned) g->count);
        }
        return KILN_ENOMEM;
    }
    for (uint32_t i = 0; i < g->count; i++) {
        const struct ir_node *n = &g->nodes[i];
        size_t bytes;
        int rc = interp_alloc(&in, i, n->numel, ir_interp_dt_size(n->dtype), &in.bufs[i], &bytes);
        if (rc == KILN_OK)
            rc = eval_node(&in, i, in.bufs[i]);
        if (rc != KILN_OK) {
            ir_interp_free(g, in.bufs);
            return rc;
        }
    }
    *out = in.bufs;
    return KILN_OK;
}

int ir_interp_run(const struct ir_graph *g, const void *const *externs, void ***out,
                  struct ir_error *err)
{
    return ir_interp_run_quota(g, externs, SIZE_MAX, out, err);
}
