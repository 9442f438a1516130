/* relay_ref.h: the reference definitions of the relay ops (ir.h: MATMUL,
 * CONV2D and its two gradients).
 *
 * Plain loops that say exactly what each element is: a sum of products
 * taken in a fixed order (below), each product and the running sum in
 * double, rounded once to the node's dtype. The interpreter runs these;
 * the JIT runs a library instead (jit/relay.h) and agrees within float
 * tolerance, and falls back to these where the library cannot serve a
 * node (float64 convolutions, a build without the library).
 *
 * Orders: matmul sums over k ascending; conv2d over (c, p, q) of the
 * group's input channels and the kernel window, row-major; bwd_data over
 * (o, p, q) of the group's output channels and the window taps that reach
 * the element; bwd_weight over (n, i, j) of the batch and output pixels.
 * Padding contributes nothing.
 */
#ifndef KILN_RELAY_REF_H
#define KILN_RELAY_REF_H

#include <stdint.h>

#include "ir.h"

/* Computes node `n` (a relay op) from its two inputs `a` and `b` (shapes
 * as the node's inputs in its graph: `an`, `bn`) into `y`. Rows [r0, r1)
 * of the output's first dim only, so callers may split the work. */
void ir_relay_ref(const struct ir_node *n, const struct ir_node *an, const struct ir_node *bn,
                  const void *a, const void *b, void *y, int64_t r0, int64_t r1);

/* The three shapes of convolution node n (CONV2D or a gradient) whose
 * inputs are an and bn: x [N, C, H, W], w [O, C/groups, kh, kw] and
 * y [N, O, oh, ow], one of which is the node's own result. */
void ir_conv_shapes(const struct ir_node *n, const struct ir_node *an, const struct ir_node *bn,
                    const int64_t **x, const int64_t **w, const int64_t **y);

/* True for MATMUL, CONV2D, CONV2D_BWD_DATA and CONV2D_BWD_WEIGHT. */
static inline int ir_op_is_relay(int op)
{
    return op >= IR_OP_MATMUL && op <= IR_OP_CONV2D_BWD_WEIGHT;
}

#endif
