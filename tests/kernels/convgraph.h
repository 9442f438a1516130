/* convgraph.h: convolution and pooling written from meta-operators, the
 * way Jittor writes them, with direct nested-loop references — shared by
 * every evaluator's tests (the reference interpreter, the JIT executor, a
 * real kilnd).
 *
 * The builders append nodes to a struct ir_graph through the ir_add_*
 * constructors only (reindex, broadcast_to, mul, reduce, reindex_reduce),
 * so whatever evaluates the graph sees nothing but meta-operators:
 *
 *   conv2d            xx = reindex(x, [N,Co,C,OH,OW,KH,KW],
 *                                  i0, i2, i3*SH-PH+i5*DH, i4*SW-PW+i6*DW)
 *                     ww = broadcast(w, xx's shape, new dims 0,3,4)
 *                     y  = reduce_add(xx * ww, dims 2,5,6)  -> [N,Co,OH,OW]
 *   max / avg pool    xx = reindex(x, [N,C,OH,OW,KH,KW],
 *                                  i0, i1, i2*SH-PH+i4, i3*SW-PW+i5),
 *                     overflow -inf (max) or 0 (avg: padding counts, as
 *                     Jittor's and PyTorch's count_include_pad default);
 *                     y = reduce max / mean over dims 4,5
 *   max pool, scatter xb = broadcast(x, [N,C,H,W,KH,KW], new dims 4,5)
 *                     y  = reindex_reduce_max(xb, [N,C,OH,OW],
 *                                  i0, i1, (i2+PH-i4)/SH, (i3+PW-i5)/SW)
 *                     with conditions (i2+PH-i4) % SH != 0 and
 *                     (i3+PW-i5) % SW != 0 dropping the elements
 *                     between window starts
 *   conv_transpose2d  xx = broadcast(x, [N,C,Co,H,W,KH,KW], new dims 2,5,6)
 *                     ww = broadcast(w, same, new dims 0,3,4)
 *                     y  = reindex_reduce_add(xx * ww, [N,Co,OH,OW],
 *                                  i0, i2, i3*SH-PH+i5*DH, i4*SW-PW+i6*DW)
 *
 * Layouts are NCHW; conv weights are [Co, C, KH, KW], transposed-conv
 * weights [C, Co, KH, KW] (PyTorch's and Jittor's). Output sizes:
 *   conv   OH = (H + 2PH - DH(KH-1) - 1) / SH + 1   (pools: DH = 1)
 *   convT  OH = (H-1) SH - 2PH + DH(KH-1) + OPH + 1
 *
 * References. convgraph_reference() computes the same values with direct
 * nested loops in plain C, combining terms as the interpreter does
 * (interp.h): each product is rounded to the dtype (the MUL node), float
 * ADD accumulates in double from +0.0 in row-major order of the reduced
 * elements and rounds once, MEAN divides the double sum by the window
 * size before its single rounding, MAX starts from -inf. So against the
 * interpreter the comparison is exact (tol 0). An evaluator that may sum
 * in another order or precision (generated code accumulating in float32)
 * is compared with a tolerance: |got - want| <= tol * mag, where mag is
 * the sum of the magnitudes of the terms combined into that element.
 * Suggested: 1e-5 for float32 (error <= n * 2^-24 * mag for the n <= 36
 * terms of these cases), 1e-12 for float64.
 *
 * Threads: everything here is pure or writes only what it is given.
 */
#ifndef KILN_TEST_CONVGRAPH_H
#define KILN_TEST_CONVGRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "ir.h"

enum convgraph_kind {
    CONVGRAPH_CONV2D = 1,
    CONVGRAPH_MAX_POOL,         /* reindex + reduce max */
    CONVGRAPH_AVG_POOL,         /* reindex + reduce mean */
    CONVGRAPH_MAX_POOL_SCATTER, /* broadcast + reindex_reduce max with conditions */
    CONVGRAPH_CONV_TRANSPOSE2D,
    CONVGRAPH_KIND_END
};

/* "conv2d", "max_pool", ...; NULL for a number that is not a kind. */
const char *convgraph_kind_name(int kind);

/* One problem. Strides and dilations of 0 are taken as 1, so tables may
 * leave them out. Pools take no weight (cout unused) and need dilation 1;
 * output padding is for the transposed conv only (PyTorch wants it below
 * the stride or the dilation; any value >= 0 works here). */
struct convgraph_params {
    int kind;       /* enum convgraph_kind */
    int dtype;      /* IR_DTYPE_FLOAT32 or IR_DTYPE_FLOAT64 */
    int64_t n, c, h, w; /* x: [n, c, h, w] */
    int64_t cout;   /* conv2d, conv_transpose2d: output channels */
    int64_t kh, kw; /* kernel or window */
    int64_t sh, sw; /* stride */
    int64_t ph, pw; /* padding, >= 0 */
    int64_t dh, dw; /* dilation */
    int64_t oph, opw; /* output padding (conv_transpose2d) */
};

/* Shapes a problem implies. has_w is 0 for pools (w left zero). */
struct convgraph_shapes {
    int64_t x[4], w[4], y[4];
    int has_w;
    int64_t x_numel, w_numel, y_numel;
};

/* Checks the parameters (kind, dtype, positive sizes and strides,
 * non-negative padding, an output of at least one element, every
 * intermediate within KILN_LIMIT_ELEMENTS) and fills *s. Returns 0, or -1
 * with a message. */
int convgraph_shapes(const struct convgraph_params *p, struct convgraph_shapes *s, char *msg,
                     size_t msglen);

/* Builders. x (and w) are nodes of g already (EXTERN, ARRAY or anything
 * else) whose dtype and shape must match p (else KILN_EVALUE with field
 * "x" or "w"). Each returns the output node (of shape convgraph_shapes'
 * y), or -1 with err filled (by the check or by the constructor that
 * refused); on failure nodes added before the refusal stay in g. The kind
 * in p must match the builder's (convgraph_build dispatches on it). */
int convgraph_build(struct ir_graph *g, const struct convgraph_params *p, int x, int w,
                    struct ir_error *err);
int convgraph_conv2d(struct ir_graph *g, const struct convgraph_params *p, int x, int w,
                     struct ir_error *err);
int convgraph_max_pool(struct ir_graph *g, const struct convgraph_params *p, int x,
                       struct ir_error *err);
int convgraph_avg_pool(struct ir_graph *g, const struct convgraph_params *p, int x,
                       struct ir_error *err);
int convgraph_max_pool_scatter(struct ir_graph *g, const struct convgraph_params *p, int x,
                               struct ir_error *err);
int convgraph_conv_transpose2d(struct ir_graph *g, const struct convgraph_params *p, int x, int w,
                               struct ir_error *err);

/* The direct nested-loop reference. x, w (NULL for pools) and y hold
 * x_numel, w_numel and y_numel elements of p->dtype, row-major; mag, when
 * not NULL, gets y_numel doubles (the tolerance scale above). Returns 0,
 * or -1 when p is invalid or memory runs out. A max-pool window that
 * holds only padding is -inf. */
int convgraph_reference(const struct convgraph_params *p, const void *x, const void *w, void *y,
                        double *mag);

/* Fills n elements of dt (float32 or float64) with uniform values in
 * [-1, 1) from a splitmix64 stream at *state (advanced). */
void convgraph_random_fill(void *buf, int dt, int64_t n, uint64_t *state);

/* ---- running cases through any evaluator ---------------------------- */

struct convgraph_case {
    const char *name;
    struct convgraph_params p;
};

/* The standard cases (every kind; stride 1 and 2, padding 0 and 1,
 * dilation 2, non-square inputs, kernels and strides, batch and channels
 * above 1, outputs of one element; float32 and float64), small enough to
 * run under ASan in milliseconds. The table is static. */
const struct convgraph_case *convgraph_cases(size_t *count);

/* How the inputs enter the graph: EXTERN slots 0 (x) and 1 (w), or ARRAY
 * nodes holding the data (what a wire graph carries). */
enum convgraph_inputs {
    CONVGRAPH_INPUTS_EXTERN = 1,
    CONVGRAPH_INPUTS_ARRAY = 2,
};

/* An evaluator: compute node `out` of g (a valid graph from the ir_add_*
 * constructors) into y, `ybytes` bytes (out's numel times its dtype size).
 * externs[k] is EXTERN slot k's data (NULL when g->nextern is 0). Returns
 * KILN_OK, or an error code with a message in msg. */
typedef int (*convgraph_eval_fn)(void *ctx, const struct ir_graph *g, int out,
                                 const void *const *externs, void *y, size_t ybytes, char *msg,
                                 size_t msglen);

/* The reference interpreter as an evaluator (ctx unused). */
int convgraph_eval_interp(void *ctx, const struct ir_graph *g, int out, const void *const *externs,
                          void *y, size_t ybytes, char *msg, size_t msglen);

struct convgraph_run_opts {
    int inputs;    /* enum convgraph_inputs; 0 means EXTERN */
    uint64_t seed; /* data: x then w from one convgraph_random_fill stream */
    double tol;    /* 0: exact (==); else |got - want| <= tol * mag */
};

/* Builds c's graph on fresh random data, has `eval` compute the output,
 * and compares it with convgraph_reference element by element. Returns 0
 * when all match; else -1 with a message naming the case, and the first
 * bad element's coordinates and values (or the evaluator's error). */
int convgraph_case_run(const struct convgraph_case *c, const struct convgraph_run_opts *o,
                       convgraph_eval_fn eval, void *ctx, char *msg, size_t msglen);

#endif
