/* relay_ref.c: reference matmul and convolutions (relay_ref.h). */
#include "relay_ref.h"

#include <stdbool.h>

static inline double ld(const void *p, int dt, int64_t k)
{
    return dt == IR_DTYPE_FLOAT32 ? (double) ((const float *) p)[k] : ((const double *) p)[k];
}

static inline void st(void *p, int dt, int64_t k, double v)
{
    if (dt == IR_DTYPE_FLOAT32)
        ((float *) p)[k] = (float) v;
    else
        ((double *) p)[k] = v;
}

/* Rows are the output's first dim: for a rank-2 matmul the rows of C,
 * for higher ranks the first batch dim. */
static void matmul_ref(const struct ir_node *n, const struct ir_node *an, const void *a,
                       const void *b, void *y, int64_t r0, int64_t r1)
{
    int r = n->rank, dt = n->dtype;
    bool ta = n->attr.matmul.ta, tb = n->attr.matmul.tb;
    int64_t N = n->shape[r - 2], M = n->shape[r - 1];
    int64_t K = an->shape[r - 1 - (ta ? 1 : 0)];
    int64_t batch = 1;
    for (int d = 0; d < r - 2; d++)
        batch *= n->shape[d];
    /* Row range over the first dim: scale to (batch, i) pairs. */
    int64_t per = n->shape[0] > 0 ? batch * N / n->shape[0] : 0; /* output rows of M per first-dim index */
    for (int64_t row = r0 * per; row < r1 * per; row++) {
        int64_t bi = row / N, i = row % N;
        const int64_t aoff = bi * N * K, boff = bi * K * M;
        for (int64_t j = 0; j < M; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++) {
                double av = ld(a, dt, aoff + (ta ? k * N + i : i * K + k));
                double bv = ld(b, dt, boff + (tb ? j * K + k : k * M + j));
                s += av * bv;
            }
            st(y, dt, row * M + j, s);
        }
    }
}

struct cgeom {
    int64_t N, C, H, W, O, Cg, Og, KH, KW, OH, OW;
    const struct ir_conv *c;
};

static struct cgeom geom(const int64_t *x, const int64_t *w, const int64_t *y,
                         const struct ir_conv *c)
{
    struct cgeom G = {.N = x[0], .C = x[1], .H = x[2], .W = x[3], .O = w[0], .Cg = w[1],
                      .KH = w[2], .KW = w[3], .OH = y[2], .OW = y[3], .c = c};
    G.Og = G.O / c->groups;
    return G;
}

static void conv_fwd(const struct cgeom *G, int dt, const void *x, const void *w, void *y,
                     int64_t r0, int64_t r1)
{
    const struct ir_conv *c = G->c;
    for (int64_t n = r0; n < r1; n++)
        for (int64_t o = 0; o < G->O; o++) {
            int64_t g = o / G->Og;
            for (int64_t i = 0; i < G->OH; i++)
                for (int64_t j = 0; j < G->OW; j++) {
                    double s = 0.0;
                    for (int64_t ci = 0; ci < G->Cg; ci++)
                        for (int64_t p = 0; p < G->KH; p++) {
                            int64_t ih = i * c->stride[0] - c->pad[0] + p * c->dilation[0];
                            if (ih < 0 || ih >= G->H)
                                continue;
                            for (int64_t q = 0; q < G->KW; q++) {
                                int64_t iw = j * c->stride[1] - c->pad[1] + q * c->dilation[1];
                                if (iw < 0 || iw >= G->W)
                                    continue;
                                s += ld(x, dt, ((n * G->C + g * G->Cg + ci) * G->H + ih) * G->W + iw) *
                                     ld(w, dt, ((o * G->Cg + ci) * G->KH + p) * G->KW + q);
                            }
                        }
                    st(y, dt, ((n * G->O + o) * G->OH + i) * G->OW + j, s);
                }
        }
}

/* The output index reached from input coordinate h by tap p, or -1. */
static inline int64_t tap(int64_t h, int64_t p, int32_t stride, int32_t pad, int32_t dil,
                          int64_t out)
{
    int64_t t = h + pad - p * dil;
    if (t < 0 || t % stride != 0)
        return -1;
    t /= stride;
    return t < out ? t : -1;
}

static void conv_bwd_data(const struct cgeom *G, int dt, const void *dy, const void *w, void *dx,
                          int64_t r0, int64_t r1)
{
    const struct ir_conv *c = G->c;
    for (int64_t n = r0; n < r1; n++)
        for (int64_t ch = 0; ch < G->C; ch++) {
            int64_t g = ch / G->Cg, ci = ch % G->Cg;
            for (int64_t h = 0; h < G->H; h++)
                for (int64_t x = 0; x < G->W; x++) {
                    double s = 0.0;
                    for (int64_t o = g * G->Og; o < (g + 1) * G->Og; o++)
                        for (int64_t p = 0; p < G->KH; p++) {
                            int64_t i = tap(h, p, c->stride[0], c->pad[0], c->dilation[0], G->OH);
                            if (i < 0)
                                continue;
                            for (int64_t q = 0; q < G->KW; q++) {
                                int64_t j = tap(x, q, c->stride[1], c->pad[1], c->dilation[1], G->OW);
                                if (j < 0)
                                    continue;
                                s += ld(dy, dt, ((n * G->O + o) * G->OH + i) * G->OW + j) *
                                     ld(w, dt, ((o * G->Cg + ci) * G->KH + p) * G->KW + q);
                            }
                        }
                    st(dx, dt, ((n * G->C + ch) * G->H + h) * G->W + x, s);
                }
        }
}

static void conv_bwd_weight(const struct cgeom *G, int dt, const void *x, const void *dy,
                            void *dw, int64_t r0, int64_t r1)
{
    const struct ir_conv *c = G->c;
    for (int64_t o = r0; o < r1; o++) {
        int64_t g = o / G->Og;
        for (int64_t ci = 0; ci < G->Cg; ci++)
            for (int64_t p = 0; p < G->KH; p++)
                for (int64_t q = 0; q < G->KW; q++) {
                    double s = 0.0;
                    for (int64_t n = 0; n < G->N; n++)
                        for (int64_t i = 0; i < G->OH; i++) {
                            int64_t ih = i * c->stride[0] - c->pad[0] + p * c->dilation[0];
                            if (ih < 0 || ih >= G->H)
                                continue;
                            for (int64_t j = 0; j < G->OW; j++) {
                                int64_t iw = j * c->stride[1] - c->pad[1] + q * c->dilation[1];
                                if (iw < 0 || iw >= G->W)
                                    continue;
                                s += ld(dy, dt, ((n * G->O + o) * G->OH + i) * G->OW + j) *
                                     ld(x, dt, ((n * G->C + g * G->Cg + ci) * G->H + ih) * G->W + iw);
                            }
                        }
                    st(dw, dt, ((o * G->Cg + ci) * G->KH + p) * G->KW + q, s);
                }
    }
}

void ir_conv_shapes(const struct ir_node *n, const struct ir_node *an, const struct ir_node *bn,
                    const int64_t **x, const int64_t **w, const int64_t **y)
{
    if (n->op == IR_OP_CONV2D)
        *x = an->shape, *w = bn->shape, *y = n->shape;
    else if (n->op == IR_OP_CONV2D_BWD_DATA) /* dy, w -> dx */
        *x = n->shape, *w = bn->shape, *y = an->shape;
    else /* x, dy -> dw */
        *x = an->shape, *w = n->shape, *y = bn->shape;
}

void ir_relay_ref(const struct ir_node *n, const struct ir_node *an, const struct ir_node *bn,
                  const void *a, const void *b, void *y, int64_t r0, int64_t r1)
{
    if (n->op == IR_OP_MATMUL) {
        matmul_ref(n, an, a, b, y, r0, r1);
        return;
    }
    const int64_t *xs, *ws, *ys;
    ir_conv_shapes(n, an, bn, &xs, &ws, &ys);
    struct cgeom G = geom(xs, ws, ys, &n->attr.conv);
    if (n->op == IR_OP_CONV2D)
        conv_fwd(&G, n->dtype, a, b, y, r0, r1);
    else if (n->op == IR_OP_CONV2D_BWD_DATA)
        conv_bwd_data(&G, n->dtype, a, b, y, r0, r1);
    else if (n->op == IR_OP_CONV2D_BWD_WEIGHT)
        conv_bwd_weight(&G, n->dtype, a, b, y, r0, r1);
}
