/* lower.h: ops that exist on the wire but not in the IR — transpose,
 * slice, concat, pad and flip — and their lowering to meta-operators.
 *
 * Each of these is a data movement that a REINDEX states exactly: output
 * element i reads input element f(i), or a fill value where f(i) leaves
 * the input. So instead of five more ops for every backend, fusion pass
 * and backward rule to learn, a client's node becomes one REINDEX (or, for
 * concat, a few REINDEX and WHERE nodes) whose index expressions the
 * lowering writes itself, from integers it computed and checked, and
 * passes through the validating ir_add_* constructors like any other
 * node. No client byte is ever part of an expression's text.
 *
 * Where the sizes allow, expressions name shapes (`xshape0 - 1 - i0` for
 * a flip) rather than baking sizes in, so one plan serves every size.
 *
 * Errors: each function checks its arguments before it adds anything and
 * fills `err` (code, and `field` named as the wire node's field:
 * "dims[1]", "starts", "steps[0]", "pads[3]", "in[2]", "dim", "value").
 * On failure the graph is exactly as it was, whatever failed. On success
 * the result is the index of the last node added; the nodes before it are
 * only read by it. Threads: as the constructors of ir.h.
 */
#ifndef KILN_IR_LOWER_H
#define KILN_IR_LOWER_H

#include <stdint.h>

#include "ir.h"

/* Wire op numbers (PROTOCOL.md §8), stable forever. They never name a
 * graph node: no IR node has one of these ops. */
enum ir_lower_op {
    IR_LOWER_TRANSPOSE = 112, /* x; dims: a permutation of x's dims */
    IR_LOWER_SLICE = 113,     /* x; starts, stops, steps (Python semantics) */
    IR_LOWER_CONCAT = 114,    /* x0, x1, ...; dim */
    IR_LOWER_PAD = 115,       /* x; pads (before and after, per dim), value */
    IR_LOWER_FLIP = 116,      /* x; dims reversed */
    IR_LOWER_END
};

/* "transpose", "slice", ...; NULL for any other number. */
const char *ir_lower_name(int op);

/* y.shape[k] = x.shape[perm[k]] and y[i] = x[j] with j[perm[k]] = i[k]
 * (numpy.transpose with axes, torch.permute). `n` must be x's rank and
 * perm a permutation of 0..n-1 (KILN_EVALUE naming "dims" or "dims[k]"). */
int ir_lower_transpose(struct ir_graph *g, int x, int n, const uint32_t *perm,
                       struct ir_error *err);

/* Each dim listed in `dims` (n entries, distinct, each below x's rank:
 * else KILN_EVALUE naming "dims[k]") reversed; the others unchanged. */
int ir_lower_flip(struct ir_graph *g, int x, int n, const uint32_t *dims, struct ir_error *err);

/* Python's x[start:stop:step] in every dim. A count of -1 means the array
 * is absent: starts and stops default to Python's None, steps to 1;
 * otherwise the count must be x's rank (KILN_EVALUE naming "starts", ...).
 * Negative starts and stops count from the end; out-of-range ones are
 * clamped as slice.indices() clamps them, so INT64_MIN and INT64_MAX
 * stand for None. A step of 0 is KILN_EVALUE naming "steps[k]". */
struct ir_slice {
    int nstarts, nstops, nsteps;
    const int64_t *starts, *stops, *steps;
};
int ir_lower_slice(struct ir_graph *g, int x, const struct ir_slice *s, struct ir_error *err);

/* x padded by pads[2d] elements before and pads[2d+1] after dim d, filled
 * with `value` (in x's dtype: .i for bool and integers, .f for floats). A
 * negative pad removes elements from that end (torch.nn.functional.pad).
 * npads must be twice x's rank; each pad within ±KILN_LIMIT_DIM; a dim
 * may not end up negative or over the dim limit. */
int ir_lower_pad(struct ir_graph *g, int x, int npads, const int64_t *pads, struct ir_scalar value,
                 struct ir_error *err);

/* The n inputs (1..IR_MAX_INPUTS) joined along `dim`: one dtype, one rank
 * of at least 1, equal sizes in every other dim (else KILN_ETYPE or
 * KILN_EVALUE naming "in[k]"). Exact for every dtype: elements are
 * selected (WHERE), never added. */
int ir_lower_concat(struct ir_graph *g, int n, const int *xs, int dim, struct ir_error *err);

/* Relay node `node` (MATMUL, CONV2D, CONV2D_BWD_DATA, CONV2D_BWD_WEIGHT,
 * already in g) computed again from meta-operators: reindex, mul and a
 * reduce (bwd_data: a reindex_reduce), the sums relay_ref.h defines in
 * another order. Returns the node holding the same value; the relay node
 * itself is left for the caller to ignore (nothing reads it). This is the
 * daemon's `--relays off` path and the comparison the relay tests run. */
int ir_lower_relay(struct ir_graph *g, int node, struct ir_error *err);

#endif
