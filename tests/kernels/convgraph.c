/* convgraph.c: conv2d, pooling and the transposed conv built from
 * meta-operators, their nested-loop references, the shared case table and
 * the runner that checks any evaluator against them (convgraph.h).
 *
 * The references are written as a textbook would (loop over outputs, or
 * for the transposed conv scatter over inputs) and share nothing with the
 * graph builders but the parameters, so a wrong index expression in a
 * builder shows up as a mismatch. They combine terms in the interpreter's
 * order and precision so that the interpreter matches them exactly.
 */
#include "convgraph.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "kiln_err.h"

/* Sizes, strides, paddings and dilations above this are refused, so that
 * every product of two of them fits in int64 without checks. */
#define PARAM_MAX (INT64_C(1) << 24)

static int fail(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t len, const char *fmt, ...)
{
    if (msg != NULL && len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int set_err(struct ir_error *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_err(struct ir_error *err, int code, const char *field, const char *fmt, ...)
{
    if (err != NULL) {
        err->code = code;
        err->node = -1;
        snprintf(err->field, sizeof err->field, "%s", field);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *convgraph_kind_name(int kind)
{
    static const char *const names[CONVGRAPH_KIND_END] = {
        [CONVGRAPH_CONV2D] = "conv2d",
        [CONVGRAPH_MAX_POOL] = "max_pool",
        [CONVGRAPH_AVG_POOL] = "avg_pool",
        [CONVGRAPH_MAX_POOL_SCATTER] = "max_pool_scatter",
        [CONVGRAPH_CONV_TRANSPOSE2D] = "conv_transpose2d",
    };
    return kind > 0 && kind < CONVGRAPH_KIND_END ? names[kind] : NULL;
}

static bool is_pool(int kind)
{
    return kind == CONVGRAPH_MAX_POOL || kind == CONVGRAPH_AVG_POOL ||
           kind == CONVGRAPH_MAX_POOL_SCATTER;
}

/* p with zero strides and dilations made 1. */
static struct convgraph_params normalised(const struct convgraph_params *p)
{
    struct convgraph_params q = *p;
    q.sh = q.sh == 0 ? 1 : q.sh;
    q.sw = q.sw == 0 ? 1 : q.sw;
    q.dh = q.dh == 0 ? 1 : q.dh;
    q.dw = q.dw == 0 ? 1 : q.dw;
    return q;
}

/* One output extent; < 1 when there is no output. */
static int64_t out_size(const struct convgraph_params *q, int64_t in, int64_t k, int64_t s,
                        int64_t pad, int64_t d, int64_t opad)
{
    if (q->kind == CONVGRAPH_CONV_TRANSPOSE2D)
        return (in - 1) * s - 2 * pad + d * (k - 1) + opad + 1;
    int64_t room = in + 2 * pad - d * (k - 1) - 1;
    return room < 0 ? 0 : room / s + 1;
}

static int within(int rank, const int64_t *shape, const char *what, char *msg, size_t msglen)
{
    struct ir_error e;
    if (ir_shape_numel(rank, shape, &e) < 0)
        return fail(msg, msglen, "%s: %s", what, e.message);
    return 0;
}

int convgraph_shapes(const struct convgraph_params *p, struct convgraph_shapes *s, char *msg,
                     size_t msglen)
{
    struct convgraph_params q = normalised(p);
    memset(s, 0, sizeof *s);
    if (convgraph_kind_name(q.kind) == NULL)
        return fail(msg, msglen, "unknown kind %d", q.kind);
    if (q.dtype != IR_DTYPE_FLOAT32 && q.dtype != IR_DTYPE_FLOAT64)
        return fail(msg, msglen, "dtype %d: float32 or float64 only", q.dtype);
    const int64_t pos[] = {q.n, q.c, q.h, q.w, q.kh, q.kw, q.sh, q.sw, q.dh, q.dw};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i] < 1 || pos[i] > PARAM_MAX)
            return fail(msg, msglen, "sizes, strides and dilations must be in [1, 2^24]");
    const int64_t nonneg[] = {q.ph, q.pw, q.oph, q.opw};
    for (size_t i = 0; i < sizeof nonneg / sizeof nonneg[0]; i++)
        if (nonneg[i] < 0 || nonneg[i] > PARAM_MAX)
            return fail(msg, msglen, "paddings must be in [0, 2^24]");
    if (!is_pool(q.kind) && (q.cout < 1 || q.cout > PARAM_MAX))
        return fail(msg, msglen, "cout must be in [1, 2^24]");
    if (is_pool(q.kind) && (q.dh != 1 || q.dw != 1))
        return fail(msg, msglen, "pools take no dilation");
    if (q.kind != CONVGRAPH_CONV_TRANSPOSE2D && (q.oph != 0 || q.opw != 0))
        return fail(msg, msglen, "output padding is for conv_transpose2d only");
    int64_t oh = out_size(&q, q.h, q.kh, q.sh, q.ph, q.dh, q.oph);
    int64_t ow = out_size(&q, q.w, q.kw, q.sw, q.pw, q.dw, q.opw);
    if (oh < 1 || ow < 1)
        return fail(msg, msglen, "no output: %lld x %lld", (long long) oh, (long long) ow);
    int64_t ych = is_pool(q.kind) ? q.c : q.cout;
    const int64_t x[4] = {q.n, q.c, q.h, q.w}, y[4] = {q.n, ych, oh, ow};
    memcpy(s->x, x, sizeof x);
    memcpy(s->y, y, sizeof y);
    if (q.kind == CONVGRAPH_CONV2D) {
        const int64_t w[4] = {q.cout, q.c, q.kh, q.kw};
        memcpy(s->w, w, sizeof w);
        s->has_w = 1;
    } else if (q.kind == CONVGRAPH_CONV_TRANSPOSE2D) {
        const int64_t w[4] = {q.c, q.cout, q.kh, q.kw};
        memcpy(s->w, w, sizeof w);
        s->has_w = 1;
    }
    /* The largest intermediate of each graph. */
    const int64_t conv[7] = {q.n, q.cout, q.c, oh, ow, q.kh, q.kw};
    const int64_t pool[6] = {q.n, q.c, oh, ow, q.kh, q.kw};
    const int64_t scat[6] = {q.n, q.c, q.h, q.w, q.kh, q.kw};
    const int64_t convt[7] = {q.n, q.c, q.cout, q.h, q.w, q.kh, q.kw};
    const int64_t *big = q.kind == CONVGRAPH_CONV2D             ? conv
                         : q.kind == CONVGRAPH_CONV_TRANSPOSE2D ? convt
                         : q.kind == CONVGRAPH_MAX_POOL_SCATTER ? scat
                                                                : pool;
    int bigrank = q.kind == CONVGRAPH_CONV2D || q.kind == CONVGRAPH_CONV_TRANSPOSE2D ? 7 : 6;
    if (within(4, s->x, "x", msg, msglen) < 0 || within(4, s->y, "y", msg, msglen) < 0 ||
        (s->has_w && within(4, s->w, "w", msg, msglen) < 0) ||
        within(bigrank, big, "intermediate", msg, msglen) < 0)
        return -1;
    s->x_numel = q.n * q.c * q.h * q.w;
    s->w_numel = s->has_w ? s->w[0] * s->w[1] * s->w[2] * s->w[3] : 0;
    s->y_numel = y[0] * y[1] * y[2] * y[3];
    return 0;
}

/* ---- builders ------------------------------------------------------- */

/* Normalises p into *q and its shapes into *s, checking its kind. */
static int prepare(const struct convgraph_params *p, int kind, struct convgraph_params *q,
                   struct convgraph_shapes *s, struct ir_error *err)
{
    char why[200];
    if (p->kind != kind)
        return set_err(err, KILN_EVALUE, "kind", "%s builder given kind %d",
                       convgraph_kind_name(kind), p->kind);
    if (convgraph_shapes(p, s, why, sizeof why) < 0)
        return set_err(err, KILN_EVALUE, "params", "%s", why);
    *q = normalised(p);
    return 0;
}

static int check_input(const struct ir_graph *g, int node, int dt, const int64_t *shape,
                       const char *field, struct ir_error *err)
{
    if (node < 0 || (uint32_t) node >= g->count)
        return set_err(err, KILN_EVALUE, field, "%s: node %d is not in the graph", field, node);
    const struct ir_node *n = &g->nodes[node];
    if (n->dtype != dt || n->rank != 4 || memcmp(n->shape, shape, 4 * sizeof shape[0]) != 0)
        return set_err(err, KILN_EVALUE, field,
                       "%s: expected dtype %d shape [%lld, %lld, %lld, %lld], node %d differs",
                       field, dt, (long long) shape[0], (long long) shape[1],
                       (long long) shape[2], (long long) shape[3], node);
    return 0;
}

enum { EXPR_MAX = 96 };

/* Fills an ir_reindex_text from NUL-terminated texts. */
static void reindex_text(struct ir_reindex_text *t, int nexprs, char (*exprs)[EXPR_MAX],
                         int nconds, const char *const *conds, size_t *cond_len)
{
    memset(t, 0, sizeof *t);
    t->nexprs = nexprs;
    for (int d = 0; d < nexprs; d++) {
        t->exprs[d] = exprs[d];
        t->expr_len[d] = strlen(exprs[d]);
    }
    t->nconds = nconds;
    t->conds = conds;
    for (int c = 0; c < nconds; c++)
        cond_len[c] = strlen(conds[c]);
    t->cond_len = cond_len;
}

/* The window expression of one spatial dim: i<o>*S-P+i<k>*D. */
static void window_expr(char *buf, int o, int64_t s, int64_t pad, int k, int64_t d)
{
    snprintf(buf, EXPR_MAX, "i%d*%lld-%lld+i%d*%lld", o, (long long) s, (long long) pad, k,
             (long long) d);
}

int convgraph_conv2d(struct ir_graph *g, const struct convgraph_params *p, int x, int w,
                     struct ir_error *err)
{
    struct convgraph_params q;
    struct convgraph_shapes s;
    if (prepare(p, CONVGRAPH_CONV2D, &q, &s, err) < 0 ||
        check_input(g, x, q.dtype, s.x, "x", err) < 0 ||
        check_input(g, w, q.dtype, s.w, "w", err) < 0)
        return -1;
    /* [N, Co, C, OH, OW, KH, KW]: x gathered at each window position. */
    const int64_t big[7] = {q.n, q.cout, q.c, s.y[2], s.y[3], q.kh, q.kw};
    char e[4][EXPR_MAX] = {"i0", "i2"};
    window_expr(e[2], 3, q.sh, q.ph, 5, q.dh);
    window_expr(e[3], 4, q.sw, q.pw, 6, q.dw);
    struct ir_reindex_text t;
    size_t no_len[1];
    reindex_text(&t, 4, e, 0, NULL, no_len);
    t.overflow.f = 0.0; /* zero padding */
    int xx = ir_add_reindex(g, x, 7, big, &t, err);
    if (xx < 0)
        return -1;
    int ww = ir_add_broadcast(g, w, 7, big, (1u << 0) | (1u << 3) | (1u << 4), err);
    if (ww < 0)
        return -1;
    int yy = ir_add_binary(g, IR_OP_MUL, xx, ww, err);
    if (yy < 0)
        return -1;
    return ir_add_reduce(g, IR_REDUCE_ADD, yy, (1u << 2) | (1u << 5) | (1u << 6), false, err);
}

/* reindex + reduce, the pools Jittor writes without a custom kernel. */
static int pool_gather(struct ir_graph *g, const struct convgraph_params *p, int kind, int x,
                       double overflow, enum ir_reduce_op op, struct ir_error *err)
{
    struct convgraph_params q;
    struct convgraph_shapes s;
    if (prepare(p, kind, &q, &s, err) < 0 || check_input(g, x, q.dtype, s.x, "x", err) < 0)
        return -1;
    const int64_t big[6] = {q.n, q.c, s.y[2], s.y[3], q.kh, q.kw};
    char e[4][EXPR_MAX] = {"i0", "i1"};
    window_expr(e[2], 2, q.sh, q.ph, 4, 1);
    window_expr(e[3], 3, q.sw, q.pw, 5, 1);
    struct ir_reindex_text t;
    size_t no_len[1];
    reindex_text(&t, 4, e, 0, NULL, no_len);
    t.overflow.f = overflow;
    int xx = ir_add_reindex(g, x, 6, big, &t, err);
    if (xx < 0)
        return -1;
    return ir_add_reduce(g, op, xx, (1u << 4) | (1u << 5), false, err);
}

int convgraph_max_pool(struct ir_graph *g, const struct convgraph_params *p, int x,
                       struct ir_error *err)
{
    return pool_gather(g, p, CONVGRAPH_MAX_POOL, x, -INFINITY, IR_REDUCE_MAX, err);
}

int convgraph_avg_pool(struct ir_graph *g, const struct convgraph_params *p, int x,
                       struct ir_error *err)
{
    return pool_gather(g, p, CONVGRAPH_AVG_POOL, x, 0.0, IR_REDUCE_MEAN, err);
}

int convgraph_max_pool_scatter(struct ir_graph *g, const struct convgraph_params *p, int x,
                               struct ir_error *err)
{
    struct convgraph_params q;
    struct convgraph_shapes s;
    if (prepare(p, CONVGRAPH_MAX_POOL_SCATTER, &q, &s, err) < 0 ||
        check_input(g, x, q.dtype, s.x, "x", err) < 0)
        return -1;
    /* Every input element once per kernel offset (i4, i5): it lands in the
     * window that starts at i2+PH-i4 when that is a multiple of the
     * stride. A negative start needs no condition of its own: one that is
     * not a multiple fails the remainder test, and one that is gives a
     * negative coordinate, which the op drops, as it drops those past the
     * output's end. */
    const int64_t big[6] = {q.n, q.c, q.h, q.w, q.kh, q.kw};
    int xb = ir_add_broadcast(g, x, 6, big, (1u << 4) | (1u << 5), err);
    if (xb < 0)
        return -1;
    char e[4][EXPR_MAX] = {"i0", "i1"};
    char c[2][EXPR_MAX];
    snprintf(e[2], EXPR_MAX, "(i2+%lld-i4)/%lld", (long long) q.ph, (long long) q.sh);
    snprintf(e[3], EXPR_MAX, "(i3+%lld-i5)/%lld", (long long) q.pw, (long long) q.sw);
    snprintf(c[0], EXPR_MAX, "(i2+%lld-i4)%%%lld!=0", (long long) q.ph, (long long) q.sh);
    snprintf(c[1], EXPR_MAX, "(i3+%lld-i5)%%%lld!=0", (long long) q.pw, (long long) q.sw);
    const char *conds[2] = {c[0], c[1]};
    size_t cond_len[2];
    struct ir_reindex_text t;
    reindex_text(&t, 4, e, 2, conds, cond_len);
    return ir_add_reindex_reduce(g, IR_REDUCE_MAX, xb, 4, s.y, &t, err);
}

int convgraph_conv_transpose2d(struct ir_graph *g, const struct convgraph_params *p, int x, int w,
                               struct ir_error *err)
{
    struct convgraph_params q;
    struct convgraph_shapes s;
    if (prepare(p, CONVGRAPH_CONV_TRANSPOSE2D, &q, &s, err) < 0 ||
        check_input(g, x, q.dtype, s.x, "x", err) < 0 ||
        check_input(g, w, q.dtype, s.w, "w", err) < 0)
        return -1;
    /* [N, C, Co, H, W, KH, KW]: every product once, scattered onto y. */
    const int64_t big[7] = {q.n, q.c, q.cout, q.h, q.w, q.kh, q.kw};
    int xx = ir_add_broadcast(g, x, 7, big, (1u << 2) | (1u << 5) | (1u << 6), err);
    if (xx < 0)
        return -1;
    int ww = ir_add_broadcast(g, w, 7, big, (1u << 0) | (1u << 3) | (1u << 4), err);
    if (ww < 0)
        return -1;
    int pr = ir_add_binary(g, IR_OP_MUL, xx, ww, err);
    if (pr < 0)
        return -1;
    char e[4][EXPR_MAX] = {"i0", "i2"};
    window_expr(e[2], 3, q.sh, q.ph, 5, q.dh);
    window_expr(e[3], 4, q.sw, q.pw, 6, q.dw);
    struct ir_reindex_text t;
    size_t no_len[1];
    reindex_text(&t, 4, e, 0, NULL, no_len);
    return ir_add_reindex_reduce(g, IR_REDUCE_ADD, pr, 4, s.y, &t, err);
}

int convgraph_build(struct ir_graph *g, const struct convgraph_params *p, int x, int w,
                    struct ir_error *err)
{
    switch (p->kind) {
    case CONVGRAPH_CONV2D:
        return convgraph_conv2d(g, p, x, w, err);
    case CONVGRAPH_MAX_POOL:
        return convgraph_max_pool(g, p, x, err);
    case CONVGRAPH_AVG_POOL:
        return convgraph_avg_pool(g, p, x, err);
    case CONVGRAPH_MAX_POOL_SCATTER:
        return convgraph_max_pool_scatter(g, p, x, err);
    case CONVGRAPH_CONV_TRANSPOSE2D:
        return convgraph_conv_transpose2d(g, p, x, w, err);
    default:
        return set_err(err, KILN_EVALUE, "kind", "unknown kind %d", p->kind);
    }
}

/* ---- references ----------------------------------------------------- */

static double load(const void *b, int dt, int64_t k)
{
    return dt == IR_DTYPE_FLOAT32 ? (double) ((const float *) b)[k] : ((const double *) b)[k];
}

static void store(void *b, int dt, int64_t k, double v)
{
    if (dt == IR_DTYPE_FLOAT32)
        ((float *) b)[k] = (float) v;
    else
        ((double *) b)[k] = v;
}

/* A product rounded to the dtype, as the MUL node stores it. The volatile
 * keeps the compiler from fusing it into a later add (an FMA would round
 * once where the graph rounds twice). */
static double mul_dt(double a, double b, int dt)
{
    volatile double p = a * b;
    return dt == IR_DTYPE_FLOAT32 ? (double) (float) p : p;
}

/* A float sum in the order of PROTOCOL.md "Order of a reduction": element
 * j in lane j % 16, the lanes folded by halves (8, 4, 2, 1). The windows
 * here are far below one block (65536 elements). Elements a graph adds as
 * 0 (padding) still take their j: adding 0.0 to a lane changes nothing. */
struct ref_lanes {
    double l[16];
};

static void lanes_zero(struct ref_lanes *r)
{
    for (int k = 0; k < 16; k++)
        r->l[k] = 0.0;
}

static double lanes_fold(struct ref_lanes *r)
{
    for (int w = 8; w >= 1; w /= 2)
        for (int k = 0; k < w; k++)
            r->l[k] += r->l[k + w];
    return 0.0 + r->l[0];
}

static void ref_conv2d(const struct convgraph_params *q, const struct convgraph_shapes *s,
                       const void *x, const void *w, void *y, double *mag)
{
    int dt = q->dtype;
    int64_t C = q->c, H = q->h, W = q->w, OH = s->y[2], OW = s->y[3], k = 0;
    for (int64_t n = 0; n < q->n; n++)
        for (int64_t co = 0; co < q->cout; co++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++, k++) {
                    double m = 0.0;
                    struct ref_lanes acc;
                    int64_t j = 0;
                    lanes_zero(&acc);
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t a = 0; a < q->kh; a++)
                            for (int64_t b = 0; b < q->kw; b++, j++) {
                                int64_t ih = oh * q->sh - q->ph + a * q->dh;
                                int64_t iw = ow * q->sw - q->pw + b * q->dw;
                                bool in = ih >= 0 && ih < H && iw >= 0 && iw < W;
                                double xv = in ? load(x, dt, ((n * C + c) * H + ih) * W + iw) : 0.0;
                                double wv = load(w, dt, ((co * C + c) * q->kh + a) * q->kw + b);
                                double t = mul_dt(xv, wv, dt);
                                acc.l[j % 16] += t;
                                m += fabs(t);
                            }
                    store(y, dt, k, lanes_fold(&acc));
                    if (mag != NULL)
                        mag[k] = m;
                }
}

/* Max and average pools (the scatter max pool computes the same). */
static void ref_pool(const struct convgraph_params *q, const struct convgraph_shapes *s,
                     const void *x, void *y, double *mag)
{
    int dt = q->dtype;
    bool max = q->kind != CONVGRAPH_AVG_POOL;
    int64_t C = q->c, H = q->h, W = q->w, OH = s->y[2], OW = s->y[3], k = 0;
    double count = (double) (q->kh * q->kw);
    for (int64_t n = 0; n < q->n; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++, k++) {
                    double acc = max ? -INFINITY : 0.0, m = 0.0;
                    struct ref_lanes sum;
                    lanes_zero(&sum);
                    for (int64_t a = 0; a < q->kh; a++)
                        for (int64_t b = 0; b < q->kw; b++) {
                            int64_t ih = oh * q->sh - q->ph + a, iw = ow * q->sw - q->pw + b;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                continue; /* -inf for max, 0 for the sum */
                            double v = load(x, dt, ((n * C + c) * H + ih) * W + iw);
                            if (!max)
                                sum.l[(a * q->kw + b) % 16] += v;
                            else if (!isnan(acc) && (isnan(v) || v > acc))
                                acc = v;
                            m += max ? 0.0 : fabs(v);
                        }
                    if (!max)
                        acc = lanes_fold(&sum);
                    store(y, dt, k, max ? acc : acc / count);
                    if (mag != NULL)
                        mag[k] = max ? fabs(acc) : m / count;
                }
}

static int ref_conv_transpose2d(const struct convgraph_params *q, const struct convgraph_shapes *s,
                                const void *x, const void *w, void *y, double *mag)
{
    int dt = q->dtype;
    int64_t C = q->c, CO = q->cout, H = q->h, W = q->w, OH = s->y[2], OW = s->y[3];
    double *acc = calloc((size_t) s->y_numel, sizeof *acc);
    double *m = calloc((size_t) s->y_numel, sizeof *m);
    if (acc == NULL || m == NULL) {
        free(acc);
        free(m);
        return -1;
    }
    /* Scatter: each input pixel, times each weight tap, lands on one
     * output pixel (in the graph's row-major order, so sums match). */
    for (int64_t n = 0; n < q->n; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t co = 0; co < CO; co++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t wi = 0; wi < W; wi++)
                        for (int64_t a = 0; a < q->kh; a++)
                            for (int64_t b = 0; b < q->kw; b++) {
                                int64_t oh = h * q->sh - q->ph + a * q->dh;
                                int64_t ow = wi * q->sw - q->pw + b * q->dw;
                                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW)
                                    continue;
                                double t = mul_dt(load(x, dt, ((n * C + c) * H + h) * W + wi),
                                                  load(w, dt, ((c * CO + co) * q->kh + a) * q->kw + b),
                                                  dt);
                                int64_t k = ((n * CO + co) * OH + oh) * OW + ow;
                                acc[k] += t;
                                m[k] += fabs(t);
                            }
    for (int64_t k = 0; k < s->y_numel; k++) {
        store(y, dt, k, acc[k]);
        if (mag != NULL)
            mag[k] = m[k];
    }
    free(acc);
    free(m);
    return 0;
}

int convgraph_reference(const struct convgraph_params *p, const void *x, const void *w, void *y,
                        double *mag)
{
    struct convgraph_shapes s;
    if (convgraph_shapes(p, &s, NULL, 0) < 0 || x == NULL || y == NULL || (s.has_w && w == NULL))
        return -1;
    struct convgraph_params q = normalised(p);
    switch (q.kind) {
    case CONVGRAPH_CONV2D:
        ref_conv2d(&q, &s, x, w, y, mag);
        return 0;
    case CONVGRAPH_CONV_TRANSPOSE2D:
        return ref_conv_transpose2d(&q, &s, x, w, y, mag);
    default:
        ref_pool(&q, &s, x, y, mag);
        return 0;
    }
}

void convgraph_random_fill(void *buf, int dt, int64_t n, uint64_t *state)
{
    for (int64_t k = 0; k < n; k++) {
        uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15)); /* splitmix64 */
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        z ^= z >> 31;
        store(buf, dt, k, (double) (z >> 11) * 0x1p-52 - 1.0);
    }
}

/* ---- the case table ------------------------------------------------- */

#define F32 IR_DTYPE_FLOAT32
#define F64 IR_DTYPE_FLOAT64
#define CONV(dt_) .kind = CONVGRAPH_CONV2D, .dtype = (dt_)
#define MAXP(dt_) .kind = CONVGRAPH_MAX_POOL, .dtype = (dt_)
#define AVGP(dt_) .kind = CONVGRAPH_AVG_POOL, .dtype = (dt_)
#define SCAT(dt_) .kind = CONVGRAPH_MAX_POOL_SCATTER, .dtype = (dt_)
#define CONVT(dt_) .kind = CONVGRAPH_CONV_TRANSPOSE2D, .dtype = (dt_)

static const struct convgraph_case cases[] = {
    {"conv2d 1x1x5x5 k3", {CONV(F32), .n = 1, .c = 1, .h = 5, .w = 5, .cout = 1, .kh = 3, .kw = 3}},
    {"conv2d batch+channels pad1",
     {CONV(F64), .n = 2, .c = 3, .h = 6, .w = 5, .cout = 4, .kh = 3, .kw = 3, .ph = 1, .pw = 1}},
    {"conv2d stride2 pad1 k3x2",
     {CONV(F32), .n = 2, .c = 2, .h = 7, .w = 6, .cout = 3, .kh = 3, .kw = 2, .sh = 2, .sw = 2,
      .ph = 1, .pw = 1}},
    {"conv2d stride 2x1 pad 0x1 k2x3",
     {CONV(F64), .n = 1, .c = 2, .h = 8, .w = 9, .cout = 2, .kh = 2, .kw = 3, .sh = 2, .sw = 1,
      .pw = 1}},
    {"conv2d dilation2",
     {CONV(F32), .n = 2, .c = 2, .h = 7, .w = 8, .cout = 2, .kh = 3, .kw = 3, .dh = 2, .dw = 2}},
    {"conv2d dilation2 stride2 pad1",
     {CONV(F64), .n = 1, .c = 3, .h = 9, .w = 7, .cout = 2, .kh = 3, .kw = 2, .sh = 2, .sw = 2,
      .ph = 1, .pw = 1, .dh = 2, .dw = 2}},
    {"conv2d output 1x1",
     {CONV(F32), .n = 2, .c = 3, .h = 3, .w = 3, .cout = 2, .kh = 3, .kw = 3}},
    {"conv2d output 1x1 stride3",
     {CONV(F64), .n = 1, .c = 1, .h = 4, .w = 5, .cout = 1, .kh = 3, .kw = 3, .sh = 3, .sw = 3}},
    {"conv2d k1 stride2",
     {CONV(F64), .n = 2, .c = 4, .h = 5, .w = 5, .cout = 3, .kh = 1, .kw = 1, .sh = 2, .sw = 2}},
    {"max_pool 2x2 stride2", {MAXP(F32), .n = 2, .c = 3, .h = 6, .w = 6, .kh = 2, .kw = 2,
                              .sh = 2, .sw = 2}},
    {"max_pool 3x3 stride2 pad1", {MAXP(F64), .n = 2, .c = 2, .h = 7, .w = 5, .kh = 3, .kw = 3,
                                   .sh = 2, .sw = 2, .ph = 1, .pw = 1}},
    {"max_pool k3x2 pad1", {MAXP(F32), .n = 1, .c = 2, .h = 5, .w = 7, .kh = 3, .kw = 2,
                            .ph = 1, .pw = 1}},
    {"max_pool global (output 1x1)", {MAXP(F64), .n = 2, .c = 3, .h = 4, .w = 5, .kh = 4,
                                      .kw = 5}},
    {"avg_pool 2x2 stride2", {AVGP(F32), .n = 2, .c = 3, .h = 6, .w = 7, .kh = 2, .kw = 2,
                              .sh = 2, .sw = 2}},
    {"avg_pool 3x3 stride2 pad1", {AVGP(F64), .n = 2, .c = 2, .h = 7, .w = 5, .kh = 3, .kw = 3,
                                   .sh = 2, .sw = 2, .ph = 1, .pw = 1}},
    {"avg_pool k2x3 stride 1x2 pad 1x0", {AVGP(F32), .n = 1, .c = 2, .h = 5, .w = 8, .kh = 2,
                                          .kw = 3, .sw = 2, .ph = 1}},
    {"avg_pool global (output 1x1)", {AVGP(F32), .n = 2, .c = 3, .h = 4, .w = 5, .kh = 4,
                                      .kw = 5}},
    {"max_pool_scatter 3x3 stride2 pad1", {SCAT(F32), .n = 2, .c = 2, .h = 7, .w = 5, .kh = 3,
                                           .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1}},
    {"max_pool_scatter 2x2 stride2", {SCAT(F64), .n = 1, .c = 3, .h = 6, .w = 6, .kh = 2,
                                      .kw = 2, .sh = 2, .sw = 2}},
    {"max_pool_scatter k3x2 stride 1x2 pad 1x0", {SCAT(F64), .n = 2, .c = 1, .h = 6, .w = 7,
                                                  .kh = 3, .kw = 2, .sw = 2, .ph = 1}},
    {"max_pool_scatter global (output 1x1)", {SCAT(F32), .n = 1, .c = 2, .h = 3, .w = 4,
                                              .kh = 3, .kw = 4}},
    {"conv_transpose2d 1x1x3x3 k3", {CONVT(F32), .n = 1, .c = 1, .h = 3, .w = 3, .cout = 1,
                                     .kh = 3, .kw = 3}},
    {"conv_transpose2d stride2 pad1",
     {CONVT(F64), .n = 2, .c = 3, .h = 4, .w = 3, .cout = 2, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
      .ph = 1, .pw = 1}},
    {"conv_transpose2d stride 2x1 pad 0x1 k2x3",
     {CONVT(F32), .n = 2, .c = 2, .h = 3, .w = 4, .cout = 3, .kh = 2, .kw = 3, .sh = 2, .sw = 1,
      .pw = 1}},
    {"conv_transpose2d dilation2 stride2 pad1 out_pad1",
     {CONVT(F64), .n = 1, .c = 2, .h = 3, .w = 3, .cout = 2, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
      .ph = 1, .pw = 1, .dh = 2, .dw = 2, .oph = 1, .opw = 1}},
    {"conv_transpose2d output 1x1 pad1",
     {CONVT(F64), .n = 2, .c = 2, .h = 2, .w = 2, .cout = 2, .kh = 2, .kw = 2, .ph = 1, .pw = 1}},
};

const struct convgraph_case *convgraph_cases(size_t *count)
{
    *count = sizeof cases / sizeof cases[0];
    return cases;
}

/* ---- running a case ------------------------------------------------- */

int convgraph_eval_interp(void *ctx, const struct ir_graph *g, int out, const void *const *externs,
                          void *y, size_t ybytes, char *msg, size_t msglen)
{
    (void) ctx;
    void **bufs = NULL;
    struct ir_error err;
    int rc = ir_interp_run(g, externs, &bufs, &err);
    if (rc != KILN_OK) {
        fail(msg, msglen, "interpreter: %s", err.message);
        return rc;
    }
    const struct ir_node *n = &g->nodes[out];
    size_t need = (size_t) n->numel * ir_dtype_size((enum ir_dtype) n->dtype);
    if (need != ybytes) {
        ir_interp_free(g, bufs);
        fail(msg, msglen, "output is %zu bytes, %zu given", need, ybytes);
        return KILN_EVALUE;
    }
    memcpy(y, bufs[out], ybytes);
    ir_interp_free(g, bufs);
    return KILN_OK;
}

static bool close_enough(double got, double want, double tol, double mag)
{
    if (got == want || (isnan(got) && isnan(want)))
        return true;
    return tol > 0 && fabs(got - want) <= tol * mag;
}

/* Builds the case's graph on x and w; returns the output node or -1. */
static int build_case(struct ir_graph *g, const struct convgraph_case *c,
                      const struct convgraph_shapes *s, int inputs, const void *x, const void *w,
                      struct ir_error *err)
{
    enum ir_dtype dt = (enum ir_dtype) c->p.dtype;
    size_t es = ir_dtype_size(dt);
    int xn, wn = -1;
    if (inputs == CONVGRAPH_INPUTS_ARRAY) {
        xn = ir_add_array(g, dt, 4, s->x, x, (size_t) s->x_numel * es, err);
        if (xn >= 0 && s->has_w)
            wn = ir_add_array(g, dt, 4, s->w, w, (size_t) s->w_numel * es, err);
    } else {
        xn = ir_add_extern(g, dt, 4, s->x, err);
        if (xn >= 0 && s->has_w)
            wn = ir_add_extern(g, dt, 4, s->w, err);
    }
    if (xn < 0 || (s->has_w && wn < 0))
        return -1;
    return convgraph_build(g, &c->p, xn, wn, err);
}

int convgraph_case_run(const struct convgraph_case *c, const struct convgraph_run_opts *o,
                       convgraph_eval_fn eval, void *ctx, char *msg, size_t msglen)
{
    struct convgraph_shapes s;
    char why[256];
    if (convgraph_shapes(&c->p, &s, why, sizeof why) < 0)
        return fail(msg, msglen, "%s: %s", c->name, why);
    int dt = c->p.dtype, inputs = o->inputs != 0 ? o->inputs : CONVGRAPH_INPUTS_EXTERN;
    size_t es = ir_dtype_size((enum ir_dtype) dt), ybytes = (size_t) s.y_numel * es;
    void *x = malloc((size_t) s.x_numel * es);
    void *w = s.has_w ? malloc((size_t) s.w_numel * es) : NULL;
    void *got = malloc(ybytes), *want = malloc(ybytes);
    double *mag = malloc((size_t) s.y_numel * sizeof *mag);
    struct ir_graph g;
    ir_graph_init(&g);
    int rc = -1;
    if (x == NULL || (s.has_w && w == NULL) || got == NULL || want == NULL || mag == NULL) {
        fail(msg, msglen, "%s: out of memory", c->name);
        goto done;
    }
    uint64_t state = o->seed;
    convgraph_random_fill(x, dt, s.x_numel, &state);
    if (s.has_w)
        convgraph_random_fill(w, dt, s.w_numel, &state);

    struct ir_error err;
    int out = build_case(&g, c, &s, inputs, x, w, &err);
    if (out < 0) {
        fail(msg, msglen, "%s: building refused: %s: %s", c->name, err.field, err.message);
        goto done;
    }
    const struct ir_node *yn = &g.nodes[out];
    if (yn->dtype != dt || yn->rank != 4 || memcmp(yn->shape, s.y, sizeof s.y) != 0) {
        fail(msg, msglen, "%s: the graph's output has the wrong dtype or shape", c->name);
        goto done;
    }
    if (convgraph_reference(&c->p, x, w, want, mag) < 0) {
        fail(msg, msglen, "%s: reference failed", c->name);
        goto done;
    }
    memset(got, 0xff, ybytes); /* NaNs: an evaluator that writes nothing fails */
    const void *ext[2] = {x, w};
    int erc = eval(ctx, &g, out, inputs == CONVGRAPH_INPUTS_EXTERN ? ext : NULL, got, ybytes, why,
                   sizeof why);
    if (erc != KILN_OK) {
        fail(msg, msglen, "%s: evaluator failed (code %d): %s", c->name, erc, why);
        goto done;
    }
    int64_t bad = 0, first = -1;
    for (int64_t k = 0; k < s.y_numel; k++)
        if (!close_enough(load(got, dt, k), load(want, dt, k), o->tol, mag[k])) {
            if (first < 0)
                first = k;
            bad++;
        }
    if (bad == 0) {
        rc = 0;
        goto done;
    }
    int64_t co[4], r = first;
    for (int d = 3; d >= 0; d--) {
        co[d] = r % s.y[d];
        r /= s.y[d];
    }
    fail(msg, msglen,
         "%s (%s, %s inputs): y[%lld,%lld,%lld,%lld] = %.17g, reference %.17g (tolerance %g of "
         "%g); %lld of %lld elements differ",
         c->name, dt == IR_DTYPE_FLOAT32 ? "float32" : "float64",
         inputs == CONVGRAPH_INPUTS_ARRAY ? "array" : "extern", (long long) co[0],
         (long long) co[1], (long long) co[2], (long long) co[3], load(got, dt, first),
         load(want, dt, first), o->tol, mag[first], (long long) bad, (long long) s.y_numel);
done:
    ir_graph_fini(&g);
    free(x);
    free(w);
    free(got);
    free(want);
    free(mag);
    return rc;
}
