/* grad.h: reverse-mode autodiff over the IR — backward rules for every
 * meta-operator, written with meta-operators.
 *
 * ir_grad() appends to a graph the nodes that compute the gradient of one
 * loss node with respect to any number of target nodes. Each backward
 * rule is an ordinary graph built through the validating constructors of
 * ir.h, so a gradient fuses with the forward work around it, runs on every
 * backend that runs the forward, and can itself be differentiated: the
 * gradient of a gradient is a second ir_grad call on the first's result.
 *
 * The rules (PROTOCOL.md §8 "Gradients" is the client's copy of this
 * table; g is the incoming gradient, y the node's value):
 *   reindex          -> reindex_reduce(add) of g onto x's shape with the
 *                       same expressions and conditions, x and y names
 *                       swapped (ir_expr_copy), same extras
 *   reindex_reduce   add -> reindex of g, same expressions, overflow 0;
 *                    max/min -> equality mask, ties share g equally;
 *                    mul -> g times the product of the others (exact
 *                    with zeros: zeros are counted separately)
 *   broadcast_to     -> reduce(add) over new and stretched dims, reshaped
 *   reduce           add/mean -> broadcast back (mean / count); max/min and
 *                    mul as reindex_reduce's
 *   element-wise     closed forms (grad.c); where routed by its condition;
 *                    float casts cast back; reshape reshaped back
 * Only float values carry gradient: an int or bool node, an int or bool
 * input (a cast from one, a reindex extra, where's condition), the
 * piecewise-constant ops (floor, ceil, round, sign, floor_div) and
 * comparisons pass nothing back. Ties: maximum/minimum of two equal values
 * give each g/2; a reduce max/min gives each of its k tied maxima g/k; a
 * NaN result passes nothing back. Non-differentiable points take the
 * one-sided value the formulas give (abs'(0) = 0, sqrt'(0) = inf).
 *
 * Only nodes that lie on a differentiable path from a target to the loss
 * get a backward node, so a target the loss does not depend on costs one
 * zero constant, and the forward nodes elsewhere are untouched.
 *
 * Ownership and failure: as the constructors — on failure the graph is
 * exactly as it was (ir_graph_undo) and `err` names the culprit.
 * Threads: as the constructors of ir.h (one builder per graph).
 */
#ifndef KILN_IR_GRAD_H
#define KILN_IR_GRAD_H

#include <stdint.h>

#include "ir.h"

/* Wire op numbers (PROTOCOL.md §8), stable forever. Like the lowered ops
 * they never name a graph node: the ingest expands a `grad` node with
 * ir_grad and turns `stop_grad` into a copy it marks in `stop`. */
enum ir_grad_op {
    IR_GRAD_GRAD = 128, /* loss, target[, seed]: the gradient, target's dtype and shape */
    IR_GRAD_STOP = 129, /* x: x, through which no gradient flows */
    IR_GRAD_END
};

/* "grad", "stop_grad"; NULL for any other number. */
const char *ir_grad_name(int op);

struct ir_grad_request {
    int loss;     /* a float node */
    int seed;     /* a node of loss's dtype and shape, or -1: the loss then has one
                     element and the seed is 1 */
    int ntargets; /* >= 0 */
    const int *targets; /* ntargets nodes, any dtype, repeats allowed */
    /* NULL, or one flag per node of the graph at the call: a non-zero
     * flag stops the gradient there (the node's inputs get nothing
     * through it), as a stop_grad does. */
    const uint8_t *stop;
};

/* Differentiates r->loss with respect to each target: on success returns
 * 0, and grads[k] is a node holding d(sum(seed * loss)) / d(targets[k]),
 * in the target's dtype and shape. Every grads[k] is a node added by this
 * call and no two are the same node, so each can be named (kept) on its
 * own. zero (may be NULL) gets, per target, 1 when no differentiable path
 * leads from it to the loss (grads[k] is then a constant 0), else 0.
 * On failure returns -1 with the graph as it was and err filled:
 *   KILN_ETYPE  "in[0]" the loss is not a float; "in[2]" the seed's dtype
 *               is not the loss's
 *   KILN_EVALUE "in[2]" the seed's shape is not the loss's; "in" no seed
 *               and the loss has other than one element; "in[0]",
 *               "in[1]", "in[2]" a node index that names no node
 *   KILN_ELIMIT, KILN_ENOMEM  the graph's node bound or memory. */
int ir_grad(struct ir_graph *g, const struct ir_grad_request *r, int *grads, uint8_t *zero,
            struct ir_error *err);

#endif
