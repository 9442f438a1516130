/* lower.c: transpose, slice, concat, pad and flip as meta-operators (see
 * lower.h).
 *
 * Every argument is checked first, against the input nodes, so that the
 * constructors called afterwards can only fail for reasons outside the
 * arguments (memory, the graph's node limit). The index expressions are
 * printed here with "%d" and "%lld" from integers the checks bounded, so
 * each literal is far inside the expression language's range; the
 * constructors parse them like any other text. A lowering that adds
 * several nodes and then fails removes them again (ir_graph_mark and
 * ir_graph_undo), so a failed call leaves the graph as it was, as a failed
 * constructor does.
 */
#include "lower.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_err.h"
#include "relay_ref.h"

#define TEXT 64 /* bytes of one expression this file writes; the longest is ~40 */

static const char *const names[] = {"transpose", "slice", "concat", "pad", "flip"};
_Static_assert(sizeof(names) / sizeof(names[0]) == IR_LOWER_END - IR_LOWER_TRANSPOSE,
               "a name per lowered op");

const char *ir_lower_name(int op)
{
    return op >= IR_LOWER_TRANSPOSE && op < IR_LOWER_END ? names[op - IR_LOWER_TRANSPOSE] : NULL;
}

/* A constructor failed on arguments this file derived, so its field
 * ("shape", "exprs[0]") means nothing to the caller: name the caller's
 * field instead. Errors with no field (memory, the node limit) keep none. */
static int blame(struct ir_error *err, const char *field)
{
    if (err != NULL && err->field[0] != '\0')
        snprintf(err->field, sizeof(err->field), "%s", field);
    return -1;
}

static const struct ir_node *input(const struct ir_graph *g, int x, const char *field,
                                   struct ir_error *err)
{
    if (x < 0 || (uint32_t) x >= g->count) {
        ir_error_set(err, KILN_EVALUE, field, "%s names no earlier node (%d)", field, x);
        return NULL;
    }
    return &g->nodes[x];
}

/* A lowering that fails half way leaves the graph as it was
 * (ir_graph_mark, ir_graph_undo). */
static int graph_undo(struct ir_graph *g, struct ir_graph_mark m)
{
    ir_graph_undo(g, m);
    return -1;
}

/* One REINDEX of x onto (rank, shape), from texts this file printed. */
static int reindex(struct ir_graph *g, int x, int rank, const int64_t *shape, int nexprs,
                   char (*exprs)[TEXT], int nconds, char (*conds)[TEXT], struct ir_scalar overflow,
                   struct ir_error *err)
{
    struct ir_reindex_text t = {.nexprs = nexprs, .nconds = nconds, .overflow = overflow};
    const char *ctext[1];
    size_t clen[1];
    for (int d = 0; d < nexprs; d++) {
        t.exprs[d] = exprs[d];
        t.expr_len[d] = strlen(exprs[d]);
    }
    if (nconds > 1)
        return ir_error_set(err, KILN_EINTERNAL, "", "lowering wrote %d conditions", nconds);
    if (nconds == 1) {
        ctext[0] = conds[0];
        clen[0] = strlen(conds[0]);
        t.conds = ctext;
        t.cond_len = clen;
    }
    return ir_add_reindex(g, x, rank, shape, &t, err);
}

/* "i3", "i3 + 5" or "i3 - 5". */
static void shifted(char *buf, int d, int64_t by)
{
    if (by == 0)
        snprintf(buf, TEXT, "i%d", d);
    else
        snprintf(buf, TEXT, "i%d %c %" PRId64, d, by < 0 ? '-' : '+', by < 0 ? -by : by);
}

/* ---- transpose and flip ------------------------------------------------ */

/* Each entry of dims[] names a dim of a rank-`rank` input, none twice. */
static int dim_list(int n, const uint32_t *dims, int rank, struct ir_error *err)
{
    uint32_t seen = 0;
    for (int k = 0; k < n; k++) {
        char field[24];
        snprintf(field, sizeof(field), "dims[%d]", k);
        if (dims[k] >= (uint32_t) rank)
            return ir_error_set(err, KILN_EVALUE, field, "dims[%d] is %u, but the input has %d dims", k,
                        dims[k], rank);
        if (seen & (1u << dims[k]))
            return ir_error_set(err, KILN_EVALUE, field, "dim %u is given twice", dims[k]);
        seen |= 1u << dims[k];
    }
    return 0;
}

int ir_lower_transpose(struct ir_graph *g, int x, int n, const uint32_t *perm, struct ir_error *err)
{
    const struct ir_node *in = input(g, x, "in[0]", err);
    if (in == NULL)
        return -1;
    int rank = in->rank;
    if (n != rank)
        return ir_error_set(err, KILN_EVALUE, "dims",
                    "dims must be a permutation of the input's %d dims: %d entries given", rank, n);
    if (dim_list(n, perm, rank, err) < 0)
        return -1;
    int64_t shape[KILN_LIMIT_RANK];
    char exprs[KILN_LIMIT_RANK][TEXT];
    for (int k = 0; k < rank; k++) {
        shape[k] = in->shape[perm[k]];
        snprintf(exprs[perm[k]], TEXT, "i%d", k);
    }
    if (reindex(g, x, rank, shape, rank, exprs, 0, NULL, (struct ir_scalar){0}, err) < 0)
        return blame(err, "dims");
    return (int) g->count - 1;
}

int ir_lower_flip(struct ir_graph *g, int x, int n, const uint32_t *dims, struct ir_error *err)
{
    const struct ir_node *in = input(g, x, "in[0]", err);
    if (in == NULL)
        return -1;
    if (n < 0 || n > KILN_LIMIT_RANK)
        return ir_error_set(err, KILN_EVALUE, "dims", "%d dims", n);
    if (dim_list(n, dims, in->rank, err) < 0)
        return -1;
    int rank = in->rank;
    int64_t shape[KILN_LIMIT_RANK];
    char exprs[KILN_LIMIT_RANK][TEXT];
    for (int d = 0; d < rank; d++) {
        shape[d] = in->shape[d];
        snprintf(exprs[d], TEXT, "i%d", d);
    }
    for (int k = 0; k < n; k++)
        snprintf(exprs[dims[k]], TEXT, "xshape%u - 1 - i%u", dims[k], dims[k]);
    if (reindex(g, x, rank, shape, rank, exprs, 0, NULL, (struct ir_scalar){0}, err) < 0)
        return blame(err, "dims");
    return (int) g->count - 1;
}

/* ---- slice -------------------------------------------------------------- */

/* Python's slice.indices() for one bound: negative counts from the end,
 * then clamped to [lo, hi]. n <= 2^40, so nothing here can overflow. */
static int64_t clamp_bound(int64_t v, int64_t n, int64_t lo, int64_t hi)
{
    if (v < 0) {
        v += n;
        return v < lo ? lo : v;
    }
    return v > hi ? hi : v;
}

static int count_is_rank(int count, int rank, const char *field, struct ir_error *err)
{
    if (count >= 0 && count != rank)
        return ir_error_set(err, KILN_EVALUE, field, "%s needs one entry per input dim (%d), not %d", field,
                    rank, count);
    return 0;
}

int ir_lower_slice(struct ir_graph *g, int x, const struct ir_slice *s, struct ir_error *err)
{
    const struct ir_node *in = input(g, x, "in[0]", err);
    if (in == NULL)
        return -1;
    int rank = in->rank;
    if (count_is_rank(s->nstarts, rank, "starts", err) < 0 ||
        count_is_rank(s->nstops, rank, "stops", err) < 0 ||
        count_is_rank(s->nsteps, rank, "steps", err) < 0)
        return -1;
    int64_t shape[KILN_LIMIT_RANK];
    char exprs[KILN_LIMIT_RANK][TEXT];
    for (int d = 0; d < rank; d++) {
        int64_t n = in->shape[d];
        int64_t step = s->nsteps >= 0 ? s->steps[d] : 1;
        if (step == 0) {
            char field[24];
            snprintf(field, sizeof(field), "steps[%d]", d);
            return ir_error_set(err, KILN_EVALUE, field, "a step of 0 selects nothing");
        }
        /* With step < 0 the bounds live in [-1, n-1]: -1 is "before 0". */
        int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
        int64_t start =
            s->nstarts >= 0 ? clamp_bound(s->starts[d], n, lo, hi) : (step < 0 ? hi : lo);
        int64_t stop = s->nstops >= 0 ? clamp_bound(s->stops[d], n, lo, hi) : (step < 0 ? lo : hi);
        /* |step| as unsigned: -INT64_MIN does not fit an int64. */
        uint64_t mag = step < 0 ? (uint64_t) 0 - (uint64_t) step : (uint64_t) step;
        uint64_t span = step < 0 ? (uint64_t) (start - stop) : (uint64_t) (stop - start);
        int64_t len =
            (step < 0 ? stop < start : start < stop) ? (int64_t) ((span - 1) / mag + 1) : 0;
        shape[d] = len;
        /* With two or more elements |step| < n <= 2^40; with fewer the
         * step is never used, so it never reaches the text. */
        if (len <= 1)
            snprintf(exprs[d], TEXT, "%" PRId64, len == 1 ? start : (int64_t) 0);
        else if (step == 1)
            shifted(exprs[d], d, start);
        else
            snprintf(exprs[d], TEXT, "%" PRId64 " %c %" PRIu64 " * i%d", start,
                     step < 0 ? '-' : '+', mag, d);
    }
    if (reindex(g, x, rank, shape, rank, exprs, 0, NULL, (struct ir_scalar){0}, err) < 0)
        return blame(err, "starts");
    return (int) g->count - 1;
}

/* ---- pad ---------------------------------------------------------------- */

static bool lower_is_float(int dt)
{
    const struct ir_dtype_info *info = ir_dtype_info((enum ir_dtype) dt);
    return info != NULL && info->kind == IR_KIND_FLOAT;
}

int ir_lower_pad(struct ir_graph *g, int x, int npads, const int64_t *pads, struct ir_scalar value,
                 struct ir_error *err)
{
    const struct ir_node *in = input(g, x, "in[0]", err);
    if (in == NULL)
        return -1;
    int rank = in->rank;
    if (npads != 2 * rank)
        return ir_error_set(err, KILN_EVALUE, "pads",
                    "pads needs two entries (before, after) per input dim: %d, not %d", 2 * rank,
                    npads);
    for (int k = 0; k < npads; k++) {
        char field[24];
        snprintf(field, sizeof(field), "pads[%d]", k);
        if (pads[k] < -KILN_LIMIT_DIM || pads[k] > KILN_LIMIT_DIM)
            return ir_error_set(err, KILN_EVALUE, field,
                        "pads[%d] is %" PRId64 ", beyond the dim limit 2^40 either way", k,
                        pads[k]);
    }
    if (!lower_is_float(in->dtype) && !ir_dtype_int_fits((enum ir_dtype) in->dtype, value.i))
        return ir_error_set(err, KILN_EVALUE, "value", "value %" PRId64 " does not fit %s", value.i,
                    ir_dtype_name(in->dtype));
    int64_t shape[KILN_LIMIT_RANK];
    char exprs[KILN_LIMIT_RANK][TEXT];
    for (int d = 0; d < rank; d++) {
        /* Each term within ±2^40: the sum cannot overflow. */
        int64_t size = pads[2 * d] + in->shape[d] + pads[2 * d + 1];
        char field[24];
        snprintf(field, sizeof(field), "pads[%d]", 2 * d + 1);
        if (size < 0)
            return ir_error_set(err, KILN_EVALUE, field,
                        "dim %d of %" PRId64 " elements would have %" PRId64
                        ": negative pads remove more than it holds",
                        d, in->shape[d], size);
        if (size > KILN_LIMIT_DIM)
            return ir_error_set(err, KILN_ELIMIT, field,
                        "dim %d would have %" PRId64 " elements, above the dim limit 2^40", d,
                        size);
        shape[d] = size;
        shifted(exprs[d], d, -pads[2 * d]);
    }
    if (reindex(g, x, rank, shape, rank, exprs, 0, NULL, value, err) < 0)
        return blame(err, "pads");
    return (int) g->count - 1;
}

/* ---- concat ------------------------------------------------------------- */

/* Checks every input against the first and fills the output shape. */
static int concat_check(const struct ir_graph *g, int n, const int *xs, int dim, int64_t *shape,
                        struct ir_error *err)
{
    if (n < 1 || n > IR_MAX_INPUTS)
        return ir_error_set(err, KILN_EVALUE, "in", "takes 1..%d inputs, not %d", IR_MAX_INPUTS, n);
    const struct ir_node *first = input(g, xs[0], "in[0]", err);
    if (first == NULL)
        return -1;
    int rank = first->rank;
    if (rank == 0)
        return ir_error_set(err, KILN_EVALUE, "in[0]", "a rank-0 input has no dim to join along");
    if (dim < 0 || dim >= rank)
        return ir_error_set(err, KILN_EVALUE, "dim", "dim %d is not a dim of the rank-%d inputs", dim,
                    rank);
    memcpy(shape, first->shape, (size_t) rank * sizeof(shape[0]));
    for (int k = 1; k < n; k++) {
        char field[24];
        snprintf(field, sizeof(field), "in[%d]", k);
        const struct ir_node *x = input(g, xs[k], field, err);
        if (x == NULL)
            return -1;
        if (x->dtype != first->dtype)
            return ir_error_set(err, KILN_ETYPE, field, "of %s and %s: inputs must have one dtype",
                        ir_dtype_name(first->dtype), ir_dtype_name(x->dtype));
        if (x->rank != rank)
            return ir_error_set(err, KILN_EVALUE, field, "input %d has rank %d, input 0 rank %d", k,
                        x->rank, rank);
        for (int d = 0; d < rank; d++)
            if (d != dim && x->shape[d] != first->shape[d])
                return ir_error_set(err, KILN_EVALUE, field,
                            "input %d has %" PRId64 " elements in dim %d, input 0 %" PRId64
                            ": only dim %d may differ",
                            k, x->shape[d], d, first->shape[d], dim);
        /* Each size <= 2^40 and the sum so far too: no overflow. */
        shape[dim] += x->shape[dim];
        if (shape[dim] > KILN_LIMIT_DIM)
            return ir_error_set(err, KILN_ELIMIT, field,
                        "dim %d would have %" PRId64 " elements, above the dim limit 2^40", dim,
                        shape[dim]);
    }
    if (ir_shape_numel(rank, shape, err) < 0)
        return blame(err, "in");
    return 0;
}

/* Each input with elements becomes a piece: a REINDEX onto the output
 * shape, reading its own span of `dim` and 0 elsewhere (its coordinates
 * leave it there). The pieces are then chosen from the last to the first:
 * acc = where(i_dim < end_k, piece_k, acc), with the masks made by
 * REINDEX from one rank-0 `true` whose overflow condition is
 * i_dim >= end_k. So m pieces take 3m - 1 nodes and no arithmetic touches
 * an element: the result is exact for every dtype, -0.0 and NaN included. */
int ir_lower_concat(struct ir_graph *g, int n, const int *xs, int dim, struct ir_error *err)
{
    int64_t shape[KILN_LIMIT_RANK];
    if (concat_check(g, n, xs, dim, shape, err) < 0)
        return -1;
    int rank = g->nodes[xs[0]].rank;
    int pieces[IR_MAX_INPUTS];
    int64_t end[IR_MAX_INPUTS];
    int m = 0;
    int64_t off = 0;
    struct ir_graph_mark mark = ir_graph_mark(g);
    for (int k = 0; k < n; k++) {
        int64_t size = g->nodes[xs[k]].shape[dim];
        if (size == 0 && !(k == n - 1 && m == 0)) /* one piece at least, for the shape */
            continue;
        char exprs[KILN_LIMIT_RANK][TEXT];
        for (int d = 0; d < rank; d++)
            shifted(exprs[d], d, d == dim ? -off : 0);
        pieces[m] =
            reindex(g, xs[k], rank, shape, rank, exprs, 0, NULL, (struct ir_scalar){0}, err);
        if (pieces[m] < 0) {
            blame(err, "in");
            return graph_undo(g, mark);
        }
        off += size;
        end[m++] = off;
    }
    if (m == 1)
        return pieces[0];
    struct ir_scalar yes = {.i = 1};
    int t = ir_add_const(g, IR_DTYPE_BOOL, 0, NULL, yes, err);
    int acc = pieces[m - 1];
    for (int k = m - 2; t >= 0 && acc >= 0 && k >= 0; k--) {
        char cond[1][TEXT];
        snprintf(cond[0], TEXT, "i%d >= %" PRId64, dim, end[k]);
        int mask = reindex(g, t, rank, shape, 0, NULL, 1, cond, (struct ir_scalar){0}, err);
        acc = mask < 0 ? -1 : ir_add_where(g, mask, pieces[k], acc, err);
    }
    if (t < 0 || acc < 0) {
        blame(err, "in");
        return graph_undo(g, mark);
    }
    return acc;
}

/* ---- relay ops as meta-operators --------------------------------------- */

/* A REINDEX or REINDEX_REDUCE add from printf'd expressions, no conditions. */
static int reindex_texts(struct ir_graph *g, bool scatter, int x, int rank, const int64_t *shape,
                         int nexprs, char (*exprs)[TEXT], struct ir_error *err)
{
    if (!scatter)
        return reindex(g, x, rank, shape, nexprs, exprs, 0, NULL, (struct ir_scalar){0}, err);
    struct ir_reindex_text t = {.nexprs = nexprs};
    for (int d = 0; d < nexprs; d++) {
        t.exprs[d] = exprs[d];
        t.expr_len[d] = strlen(exprs[d]);
    }
    return ir_add_reindex_reduce(g, IR_REDUCE_ADD, x, rank, shape, &t, err);
}

/* An operand of a lowered contraction: a broadcast when it is read in its
 * own dim order (the new dims in `fresh`), else a reindex by `exprs`. */
static int operand(struct ir_graph *g, int x, int rank, const int64_t *shape, bool plain,
                   uint16_t fresh, int nexprs, char (*exprs)[TEXT], struct ir_error *err)
{
    if (plain)
        return ir_add_broadcast(g, x, rank, shape, fresh, err);
    return reindex_texts(g, false, x, rank, shape, nexprs, exprs, err);
}

/* Product space [B.., n, k, m], reduced over k. */
static int lower_matmul(struct ir_graph *g, const struct ir_node n, struct ir_error *err)
{
    int r = n.rank;
    if (r + 1 > KILN_LIMIT_RANK)
        return ir_error_set(err, KILN_ELIMIT, "in[0]",
                            "a rank-%d matmul needs rank %d to lower, above the rank limit %d", r,
                            r + 1, KILN_LIMIT_RANK);
    const struct ir_node *a = &g->nodes[n.in[0]];
    int in = r - 2, ik = r - 1, im = r;
    int64_t shape[KILN_LIMIT_RANK];
    memcpy(shape, n.shape, (size_t) (r - 1) * sizeof shape[0]);
    shape[ik] = a->shape[r - 1 - (n.attr.matmul.ta ? 1 : 0)];
    shape[im] = n.shape[r - 1];
    char ea[KILN_LIMIT_RANK][TEXT], eb[KILN_LIMIT_RANK][TEXT];
    for (int d = 0; d < r - 2; d++) {
        snprintf(ea[d], TEXT, "i%d", d);
        snprintf(eb[d], TEXT, "i%d", d);
    }
    snprintf(ea[r - 2], TEXT, "i%d", n.attr.matmul.ta ? ik : in);
    snprintf(ea[r - 1], TEXT, "i%d", n.attr.matmul.ta ? in : ik);
    snprintf(eb[r - 2], TEXT, "i%d", n.attr.matmul.tb ? im : ik);
    snprintf(eb[r - 1], TEXT, "i%d", n.attr.matmul.tb ? ik : im);
    int xa = operand(g, (int) n.in[0], r + 1, shape, !n.attr.matmul.ta, (uint16_t) (1u << im), r,
                     ea, err);
    int xb = xa < 0 ? -1
                    : operand(g, (int) n.in[1], r + 1, shape, !n.attr.matmul.tb,
                              (uint16_t) (1u << in), r, eb, err);
    int p = xb < 0 ? -1 : ir_add_binary(g, IR_OP_MUL, xa, xb, err);
    return p < 0 ? -1 : ir_add_reduce(g, IR_REDUCE_ADD, p, (uint16_t) (1u << ik), false, err);
}

/* Convolutions over the window space [N, G, O/G, C/G, oh, ow, kh, kw]
 * (the forward of Jittor's construction): x read through the window
 * expressions (padding reads 0), w and dy through their own coordinates;
 * forward and bwd_weight reduce the product, bwd_data scatters it back
 * onto x with the same window expressions (padding taps are dropped). */
static int lower_conv(struct ir_graph *g, const struct ir_node n, struct ir_error *err)
{
    const struct ir_conv *c = &n.attr.conv;
    const int64_t *xs, *ws, *ys;
    ir_conv_shapes(&n, &g->nodes[n.in[0]], &g->nodes[n.in[1]], &xs, &ws, &ys);
    int64_t G = c->groups, Cg = ws[1], Og = ws[0] / G;
    int64_t win[8] = {xs[0], G, Og, Cg, ys[2], ys[3], ws[2], ws[3]};
    char ex[4][TEXT];
    snprintf(ex[0], TEXT, "i0");
    snprintf(ex[1], TEXT, "i1 * %" PRId64 " + i3", Cg);
    snprintf(ex[2], TEXT, "i4 * %d - %d + i6 * %d", c->stride[0], c->pad[0], c->dilation[0]);
    snprintf(ex[3], TEXT, "i5 * %d - %d + i7 * %d", c->stride[1], c->pad[1], c->dilation[1]);
    int x = -1, w = -1, dy = -1;
    if (n.op != IR_OP_CONV2D_BWD_DATA)
        x = reindex_texts(g, false, (int) n.in[0], 8, win, 4, ex, err);
    /* w [O, C/G, kh, kw] and dy [N, O, oh, ow] are the window space less
     * some dims, in order: a reshape splitting O into (G, O/G) and a
     * broadcast. */
    if (n.op != IR_OP_CONV2D_BWD_WEIGHT && (n.op == IR_OP_CONV2D_BWD_DATA || x >= 0)) {
        int64_t s5[5] = {G, Og, Cg, ws[2], ws[3]};
        w = ir_add_reshape(g, (int) n.in[1], 5, s5, err);
        w = w < 0 ? -1 : ir_add_broadcast(g, w, 8, win, (1u << 0) | (1u << 4) | (1u << 5), err);
    }
    if (n.op != IR_OP_CONV2D) {
        int src = n.op == IR_OP_CONV2D_BWD_DATA ? (int) n.in[0] : (int) n.in[1];
        int64_t s5[5] = {ys[0], G, Og, ys[2], ys[3]};
        if ((n.op == IR_OP_CONV2D_BWD_DATA ? w : x) >= 0)
            dy = ir_add_reshape(g, src, 5, s5, err);
        dy = dy < 0 ? -1 : ir_add_broadcast(g, dy, 8, win, (1u << 3) | (1u << 6) | (1u << 7), err);
    }
    int p;
    if (n.op == IR_OP_CONV2D) {
        p = w < 0 ? -1 : ir_add_binary(g, IR_OP_MUL, x, w, err);
        p = p < 0 ? -1 : ir_add_reduce(g, IR_REDUCE_ADD, p, (1u << 3) | (1u << 6) | (1u << 7), false, err);
    } else if (n.op == IR_OP_CONV2D_BWD_WEIGHT) {
        p = dy < 0 ? -1 : ir_add_binary(g, IR_OP_MUL, dy, x, err);
        p = p < 0 ? -1 : ir_add_reduce(g, IR_REDUCE_ADD, p, (1u << 0) | (1u << 4) | (1u << 5), false, err);
    } else {
        p = dy < 0 ? -1 : ir_add_binary(g, IR_OP_MUL, dy, w, err);
        return p < 0 ? -1 : reindex_texts(g, true, p, 4, n.shape, 4, ex, err);
    }
    return p < 0 ? -1 : ir_add_reshape(g, p, 4, n.shape, err);
}

int ir_lower_relay(struct ir_graph *g, int node, struct ir_error *err)
{
    if (node < 0 || (uint32_t) node >= g->count || !(g->nodes[node].op >= IR_OP_MATMUL &&
                                                     g->nodes[node].op <= IR_OP_CONV2D_BWD_WEIGHT))
        return ir_error_set(err, KILN_EINTERNAL, "", "node %d is not a relay op", node);
    struct ir_graph_mark m = ir_graph_mark(g);
    const struct ir_node n = g->nodes[node]; /* a copy: adding nodes may move them */
    int r = n.op == IR_OP_MATMUL ? lower_matmul(g, n, err) : lower_conv(g, n, err);
    return r < 0 ? graph_undo(g, m) : r;
}
