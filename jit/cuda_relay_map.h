/* cuda_relay_map.h: how a relay node becomes a cuBLAS or cuDNN call.
 *
 * Pure arithmetic on the node and its inputs, kept apart from the
 * libraries (cuda_relay.c) so that it can be tested on a machine with no
 * GPU: which operand is which, the dims, leading dimensions and batch
 * strides of a matmul, and the NCHW dims, padding, strides, dilation and
 * groups of a convolution.
 *
 * Matmul. kiln stores every value row-major; cuBLAS reads column-major. A
 * row-major [r, c] matrix is the column-major [c, r] matrix, its
 * transpose, so kiln's C = op(a) op(b) is computed as the column-major
 * C^T = op(b)^T op(a)^T: cuBLAS's first operand is kiln's b, its second
 * kiln's a, and C^T lands in y exactly as kiln's row-major C. Batches (the
 * dims before the last two, equal in a and b: ir.h's MATMUL does not
 * broadcast) are one strided batched call.
 */
#ifndef KILN_JIT_CUDA_RELAY_MAP_H
#define KILN_JIT_CUDA_RELAY_MAP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "ir.h"
#include "relay_ref.h"

/* One cublasGemmStridedBatchedEx_64 call, column-major, in cuBLAS's own
 * names: A is kiln's b, B is kiln's a, C is y. */
struct jit_cuda_gemm {
    bool trans_a, trans_b;                /* CUBLAS_OP_T (else CUBLAS_OP_N) */
    int64_t m, n, k;                      /* C is m x n (m: kiln's columns, n: kiln's rows) */
    int64_t lda, ldb, ldc;                /* leading dimensions */
    int64_t stride_a, stride_b, stride_c; /* elements between batch matrices */
    int64_t batch;                        /* product of the batch dims (1 for rank 2) */
};

/* Fills `g` for MATMUL node `n` with inputs `an` (kiln's a) and `bn`.
 * False when the node is not one cuBLAS can take as described (batch dims
 * that differ, which ir_add_matmul never makes). */
static inline bool jit_cuda_gemm_map(const struct ir_node *n, const struct ir_node *an,
                                     const struct ir_node *bn, struct jit_cuda_gemm *g)
{
    int r = n->rank;
    if (n->op != IR_OP_MATMUL || r < 2 || an->rank != r || bn->rank != r)
        return false;
    bool ta = n->attr.matmul.ta, tb = n->attr.matmul.tb;
    int64_t rows = n->shape[r - 2], cols = n->shape[r - 1];
    int64_t k = an->shape[ta ? r - 2 : r - 1];
    int64_t batch = 1;
    for (int d = 0; d < r - 2; d++) {
        if (an->shape[d] != n->shape[d] || bn->shape[d] != n->shape[d])
            return false;
        batch *= n->shape[d];
    }
    /* kiln's b, row-major [k, cols] (or [cols, k] when tb), is column-major
     * [cols, k] with leading dim cols: op(b)^T as it stands (or, when tb,
     * column-major [k, cols] read transposed). Likewise a. */
    g->trans_a = tb;
    g->lda = tb ? k : cols;
    g->trans_b = ta;
    g->ldb = ta ? rows : k;
    g->m = cols;
    g->n = rows;
    g->k = k;
    g->ldc = cols;
    g->stride_a = k * cols;
    g->stride_b = rows * k;
    g->stride_c = rows * cols;
    g->batch = batch;
    /* cuBLAS wants leading dims >= 1 even where a dim is 0. */
    if (g->lda < 1)
        g->lda = 1;
    if (g->ldb < 1)
        g->ldb = 1;
    if (g->ldc < 1)
        g->ldc = 1;
    return true;
}

/* One cuDNN convolution (legacy API), every dim an int as cuDNN takes it. */
struct jit_cuda_conv {
    int op;   /* IR_OP_CONV2D, _BWD_DATA or _BWD_WEIGHT */
    int x[4]; /* [N, C, H, W]: the data tensor (dx for BWD_DATA) */
    int w[4]; /* [O, C/groups, kh, kw]: the filter (dw for BWD_WEIGHT) */
    int y[4]; /* [N, O, oh, ow]: the output tensor (dy for the gradients) */
    int pad[2], stride[2], dilation[2]; /* (h, w) */
    int groups;
};

/* Fills `c` for convolution node `n` with inputs `an`, `bn`. False when a
 * dim does not fit cuDNN's int (or the node is no convolution). */
static inline bool jit_cuda_conv_map(const struct ir_node *n, const struct ir_node *an,
                                     const struct ir_node *bn, struct jit_cuda_conv *c)
{
    if (n->op != IR_OP_CONV2D && n->op != IR_OP_CONV2D_BWD_DATA && n->op != IR_OP_CONV2D_BWD_WEIGHT)
        return false;
    if (n->rank != 4 || an->rank != 4 || bn->rank != 4)
        return false;
    const int64_t *xs, *ws, *ys;
    ir_conv_shapes(n, an, bn, &xs, &ws, &ys);
    c->op = n->op;
    for (int d = 0; d < 4; d++) {
        if (xs[d] > INT_MAX || ws[d] > INT_MAX || ys[d] > INT_MAX)
            return false;
        c->x[d] = (int) xs[d];
        c->w[d] = (int) ws[d];
        c->y[d] = (int) ys[d];
    }
    const struct ir_conv *a = &n->attr.conv;
    for (int d = 0; d < 2; d++) {
        c->pad[d] = a->pad[d];
        c->stride[d] = a->stride[d];
        c->dilation[d] = a->dilation[d];
    }
    c->groups = a->groups;
    return true;
}

#endif
