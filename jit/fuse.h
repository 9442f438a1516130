/* fuse.h: the fusion planner — which nodes of a graph become one kernel,
 * and which values are written to memory.
 *
 * jit_fuse_plan() partitions the live nodes of a graph into groups, each
 * of which becomes one kernel, and says which nodes are materialised:
 * every output the caller marks (kept or fetched vars), every group result
 * read by another group, and nothing else.
 *
 * Node roles:
 *   INPUT       ARRAY and EXTERN: buffers that exist before the plan runs;
 *               never computed in a kernel (an output that is an input
 *               needs no kernel at all).
 *   MEMBER      computed in exactly one group.
 *   RECOMPUTED  cheap and fed only by inputs (see "Recompute" below):
 *               evaluated inline in every group that reads it, never
 *               stored. Listed in the members of each such group, with
 *               JIT_MEMBER_RECOMPUTED set. A recomputable node read by
 *               one group only is an ordinary MEMBER of it.
 *   DEAD        no output depends on it: not computed.
 *
 * Group kinds and iteration spaces (one per group, two for reductions):
 *   ELEMENTWISE     the loop runs over `shape`, the shape of the group's
 *                   sinks. Broadcast, reindex and reshape members are
 *                   read through their index maps, so a member may be
 *                   evaluated at several coordinates (recomputed in
 *                   registers); sinks are written once per point.
 *   REDUCE          the main loop runs over the reduce's input (`shape`):
 *                   its prologue (JIT_MEMBER_MAIN) is everything fused
 *                   before the reduce. The epilogue (JIT_MEMBER_EPILOGUE)
 *                   is element-wise work at the reduce's output shape
 *                   (`out_shape`), applied to each output element once it
 *                   is complete; it reads the reduce only at the element
 *                   just reduced.
 *   REINDEX_REDUCE  the main loop runs over the input (`shape`), scattering
 *                   into `out_shape`. No epilogue: an output element is
 *                   complete only after the whole loop.
 *   RELAY           one relay op (MATMUL, CONV2D and its gradients) alone:
 *                   jit/relay.h runs it from its input buffers. Nothing
 *                   fuses into it; its producers and consumers fuse among
 *                   themselves on either side as usual.
 * A sink may also sit in the main loop of a reduction group (a value both
 * reduced and stored, as exp(x - max) in softmax): it is then written once
 * per main-loop point. Sinks are written by flat (row-major) index: a sink
 * reached from the loop through a reshape has the loop's element count,
 * not necessarily its shape.
 *
 * Fusion rules: element-wise ops, cast, reshape, broadcast_to and reindex
 * (through x, never through its extra inputs), and const/index/random
 * sources fuse into their consumers; a reduce or reindex_reduce takes all
 * of that as its prologue; a reduce takes element-wise consumers at its
 * output shape as an epilogue. Extra inputs of reindex and reindex_reduce
 * (gathers, scatters) are always read from a buffer. A group holds at most
 * one reduce or reindex_reduce.
 *
 * Recompute: a node is recomputed rather than stored when it is not an
 * output, is a source (const, index, random) or a cheap op (arithmetic,
 * comparison, logic, cast, broadcast_to, reshape; not transcendental, not
 * pow, not reindex), reads only inputs and other recomputable nodes, the
 * inline tree it stands for has at most JIT_RECOMPUTE_MAX_OPS ops and
 * JIT_RECOMPUTE_MAX_READS buffer reads, and no reindex reads it as an
 * extra input. Everything else read by two groups is stored once.
 *
 * Cycles: the planner never makes one (the proof is in fuse.c): groups
 * carry a layer, every edge between groups goes from a higher layer to a
 * lower one, and groups are listed by layer, so producers come first.
 *
 * Determinism: the plan depends only on the graph's structure, dtypes,
 * ranks, attributes, output marks and which node shapes are equal —
 * jit_graph_signature() hashes exactly that, so it is a sound plan-cache
 * key: two graphs with the same signature get the same plan, up to sizes.
 *
 * Ownership: a plan owns its arrays; jit_plan_fini frees them and is safe
 * on a zeroed plan. It keeps no pointer into the graph. Threads: planning
 * is pure; a finished plan is immutable and may be read from any thread.
 */
#ifndef KILN_JIT_FUSE_H
#define KILN_JIT_FUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"
#include "kiln_limits.h"

#define JIT_RECOMPUTE_MAX_OPS   4 /* ops in one recomputed inline tree */
#define JIT_RECOMPUTE_MAX_READS 2 /* buffer reads in one recomputed inline tree */

enum jit_group_kind {
    JIT_GROUP_ELEMENTWISE = 1,
    JIT_GROUP_REDUCE = 2,
    JIT_GROUP_REINDEX_REDUCE = 3,
    JIT_GROUP_RELAY = 4, /* one relay op (matmul, conv2d..): a library call, no kernel */
};

enum jit_node_role {
    JIT_NODE_DEAD = 0,
    JIT_NODE_INPUT = 1,
    JIT_NODE_MEMBER = 2,
    JIT_NODE_RECOMPUTED = 3,
};

/* Member flags, one byte per entry of jit_plan.members. Every entry has
 * MAIN or EPILOGUE; only a recomputed (never stored) node may have both,
 * being read in both loops. The reduce or reindex_reduce node itself has
 * EPILOGUE: its value exists at the output shape. */
#define JIT_MEMBER_MAIN       0x01u /* evaluated in the main loop */
#define JIT_MEMBER_EPILOGUE   0x02u /* evaluated at the reduce's output shape */
#define JIT_MEMBER_SINK       0x04u /* materialised: written to its buffer */
#define JIT_MEMBER_RECOMPUTED 0x08u /* inline copy of a RECOMPUTED node (may have MAIN and EPILOGUE) */

struct jit_plan_node {
    int32_t group; /* MEMBER: its group; RECOMPUTED: the first group inlining it; else -1 */
    uint8_t role;  /* enum jit_node_role */
    bool output;   /* marked by the caller */
    bool materialised; /* written by a kernel: a MEMBER that is an output or read by another group */
};

struct jit_group {
    uint8_t kind;    /* enum jit_group_kind */
    uint8_t rank;    /* of the main loop */
    uint8_t out_rank; /* REDUCE, REINDEX_REDUCE: of the reduction's output */
    uint32_t layer;  /* every producer group has a higher layer; groups with one
                      * layer are independent (may run concurrently) */
    int64_t shape[KILN_LIMIT_RANK];     /* main loop (ELEMENTWISE: the sinks') */
    int64_t out_shape[KILN_LIMIT_RANK]; /* REDUCE, REINDEX_REDUCE */
    int64_t reduce;  /* the REDUCE or REINDEX_REDUCE node; -1 for ELEMENTWISE */
    uint32_t space;  /* the member or input whose shape is `shape` (sizes of a
                      * later graph with the same signature are read from it) */
    /* Ranges of jit_plan.members/member_flags and of jit_plan.refs. */
    uint32_t member0, nmembers; /* node ids in topological order */
    uint32_t sink0, nsinks;     /* materialised members, ascending */
    uint32_t input0, ninputs;   /* buffers read: inputs and other groups' sinks, ascending */
    uint64_t signature;         /* jit_group_signature */
};

struct jit_plan {
    uint32_t nnodes; /* the graph's node count */
    struct jit_plan_node *nodes;
    uint32_t ngroups; /* producers first */
    struct jit_group *groups;
    uint32_t nmembers;
    uint32_t *members;
    uint8_t *member_flags;
    uint32_t nrefs;
    uint32_t *refs;
    uint64_t signature; /* jit_plan_signature */
};

void jit_plan_init(struct jit_plan *p);
void jit_plan_fini(struct jit_plan *p);

/* Plan the fusion of `g`. `is_output` has g->count entries (NULL: no
 * outputs, an empty plan). On success returns KILN_OK and fills *out
 * (initialised here; free with jit_plan_fini). On failure returns
 * KILN_ENOMEM (or KILN_ELIMIT for a graph over KILN_LIMIT_NODES) with
 * `err` filled and *out left empty. */
int jit_fuse_plan(const struct ir_graph *g, const bool *is_output, struct jit_plan *out,
                  struct ir_error *err);

/* Kernel-cache key of one group: its kind, iteration ranks, and for each
 * member in order its op, dtype, rank, flags and attributes (reduce op,
 * dims and keepdims; broadcast dims and which input dims are 1, i.e.
 * stretched; index dim; random distribution; cast target via
 * dtype; reindex expressions and conditions as ASTs, with the overflow
 * value) and its wiring (each input as a member position or a buffer
 * position). Not in it: sizes, node numbers, extern slots, array bytes,
 * const values, random seed and offset — those are run-time arguments of the kernel, so
 * codegen must not bake them in. Computed by jit_fuse_plan. */
uint64_t jit_group_signature(const struct ir_graph *g, const struct jit_plan *p, uint32_t group);

/* Plan-cache entry check: the group signatures in order, and how the
 * groups are wired (each buffer a group reads named as an input ordinal or
 * as (group, sink) positions), and which sinks are outputs. */
uint64_t jit_plan_signature(const struct ir_graph *g, const struct jit_plan *p);

/* Plan-cache key, computed before planning (0 only when out of memory:
 * do not cache then): structure (ops, dtypes,
 * ranks, attributes as above, inputs as node distances), output marks,
 * and the classes of equal shapes (each node names the first node with
 * an identical shape) — everything jit_fuse_plan decides by. */
uint64_t jit_graph_signature(const struct ir_graph *g, const bool *is_output);

#endif
