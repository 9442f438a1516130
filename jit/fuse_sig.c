/* fuse_sig.c: canonical signatures of groups, plans and graphs, the keys
 * of the kernel cache and the plan cache (what goes in: fuse.h).
 *
 * One node hash serves all three, so a group signature and the graph
 * signature agree on what an attribute is. Sizes never go in; the only
 * size-derived facts are the broadcast stretch mask (which input dims are
 * 1, so codegen may bake the zero stride) and, in the graph signature,
 * which nodes share a shape (the planner decides by shape equality).
 * Positions replace node numbers in a group signature, so the same
 * kernel found anywhere in any graph hashes alike.
 */
#include <stdlib.h>
#include <string.h>

#include "fuse.h"
#include "fuse_impl.h"

#define SEED 0x6b696c6e66757365ull /* "kilnfuse" */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static void add(uint64_t *h, uint64_t v)
{
    *h = mix64(*h ^ mix64(v + 0x9e3779b97f4a7c15ull));
}

static uint64_t fbits(double f)
{
    uint64_t b;
    memcpy(&b, &f, sizeof(b));
    return b;
}

static void add_expr(uint64_t *h, const struct ir_expr *e)
{
    add(h, e->count);
    for (uint32_t k = 0; k < e->count; k++) {
        const struct ir_expr_node *x = &e->nodes[k];
        add(h, (uint64_t) x->op | (uint64_t) x->nargs << 8 | (uint64_t) x->slot << 16);
        for (int a = 0; a < x->nargs; a++)
            add(h, (uint64_t) (uint16_t) x->arg[a]);
        if (x->op == IR_EXPR_CONST)
            add(h, (uint64_t) x->value);
    }
}

/* Op, dtype, rank, arity and attributes; never sizes, slots or data. */
static void add_node(uint64_t *h, const struct ir_graph *g, const struct ir_node *nd)
{
    add(h, (uint64_t) nd->op | (uint64_t) nd->dtype << 16 | (uint64_t) nd->rank << 24 |
               (uint64_t) nd->nin << 32);
    switch (nd->op) {
    case IR_OP_CONST:
        break; /* the value is a run-time argument, as sizes are */
    case IR_OP_INDEX:
        add(h, nd->attr.index.dim);
        break;
    case IR_OP_RANDOM:
        add(h, nd->attr.random.dist); /* seed and offset are run-time arguments */
        break;
    case IR_OP_BROADCAST_TO: {
        const struct ir_node *in = &g->nodes[nd->in[0]];
        uint64_t ones = 0;
        for (int d = 0; d < in->rank && d < KILN_LIMIT_RANK; d++)
            ones |= (uint64_t) (in->shape[d] == 1) << d;
        add(h, nd->attr.broadcast.dims | ones << 16 | (uint64_t) in->rank << 32);
        break;
    }
    case IR_OP_REDUCE:
        add(h, nd->attr.reduce.op | (uint64_t) nd->attr.reduce.keepdims << 8 |
                   (uint64_t) nd->attr.reduce.dims << 16 |
                   (uint64_t) g->nodes[nd->in[0]].rank << 32);
        break;
    case IR_OP_RESHAPE:
        add(h, g->nodes[nd->in[0]].rank);
        break;
    case IR_OP_REINDEX:
    case IR_OP_REINDEX_REDUCE: {
        const struct ir_reindex *r = nd->attr.reindex;
        add(h, r->nexprs | (uint64_t) r->nconds << 8 | (uint64_t) r->nextras << 16 |
                   (uint64_t) r->op << 24 | (uint64_t) g->nodes[nd->in[0]].rank << 32);
        for (int k = 0; k < r->nextras; k++)
            add(h, g->nodes[nd->in[1 + k]].rank);
        if (nd->op == IR_OP_REINDEX) {
            add(h, (uint64_t) r->overflow.i);
            add(h, fbits(r->overflow.f));
        }
        for (int k = 0; k < r->nexprs; k++)
            add_expr(h, r->exprs[k]);
        for (int k = 0; k < r->nconds; k++)
            add_expr(h, r->conds[k]);
        break;
    }
    case IR_OP_MATMUL:
        add(h, nd->attr.matmul.ta | (uint64_t) nd->attr.matmul.tb << 8);
        break;
    case IR_OP_CONV2D:
    case IR_OP_CONV2D_BWD_DATA:
    case IR_OP_CONV2D_BWD_WEIGHT: {
        /* Sizes are not in the signature, but a relay takes them from the
         * node at run time; the attributes are part of what it computes. */
        const struct ir_conv *c = &nd->attr.conv;
        add(h, (uint64_t) (uint32_t) c->stride[0] | (uint64_t) (uint32_t) c->stride[1] << 32);
        add(h, (uint64_t) (uint32_t) c->pad[0] | (uint64_t) (uint32_t) c->pad[1] << 32);
        add(h, (uint64_t) (uint32_t) c->dilation[0] | (uint64_t) (uint32_t) c->dilation[1] << 32);
        add(h, (uint64_t) (uint32_t) c->groups);
        break;
    }
    default:
        break; /* element-wise: op and dtypes say it all; ARRAY, EXTERN: buffers */
    }
}

/* Position of `x` in the ascending `v[0..n)`, or -1. */
static int64_t find_pos(const uint32_t *v, uint32_t n, uint32_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x ? (int64_t) lo : -1;
}

uint64_t jit_group_signature(const struct ir_graph *g, const struct jit_plan *p, uint32_t group)
{
    const struct jit_group *G = &p->groups[group];
    const uint32_t *mem = p->members + G->member0, *ins = p->refs + G->input0;
    uint64_t h = SEED;
    add(&h, G->kind | (uint64_t) G->rank << 8 | (uint64_t) G->out_rank << 16);
    add(&h, G->nmembers | (uint64_t) G->nsinks << 32);
    add(&h, G->ninputs);
    for (uint32_t k = 0; k < G->nmembers; k++) {
        const struct ir_node *nd = &g->nodes[mem[k]];
        add_node(&h, g, nd);
        add(&h, p->member_flags[G->member0 + k]);
        for (int j = 0; j < nd->nin; j++) {
            int64_t at = find_pos(mem, G->nmembers, nd->in[j]);
            if (at >= 0)
                add(&h, (uint64_t) at << 1);
            else
                add(&h, (uint64_t) find_pos(ins, G->ninputs, nd->in[j]) << 1 | 1);
        }
    }
    /* Buffers read: their dtype and rank (an input's element type is
     * part of the kernel even when no member's dtype shows it). */
    for (uint32_t k = 0; k < G->ninputs; k++)
        add(&h, g->nodes[ins[k]].dtype | (uint64_t) g->nodes[ins[k]].rank << 8);
    return h;
}

uint64_t jit_plan_signature(const struct ir_graph *g, const struct jit_plan *p)
{
    uint64_t h = SEED ^ 1;
    add(&h, p->nnodes);
    add(&h, p->ngroups);
    for (uint32_t gi = 0; gi < p->ngroups; gi++) {
        const struct jit_group *G = &p->groups[gi];
        add(&h, jit_group_signature(g, p, gi));
        for (uint32_t k = 0; k < G->nmembers; k++)
            add(&h, p->members[G->member0 + k]);
        for (uint32_t k = 0; k < G->nsinks; k++) {
            uint32_t s = p->refs[G->sink0 + k];
            add(&h, (uint64_t) s << 1 | p->nodes[s].output);
        }
        for (uint32_t k = 0; k < G->ninputs; k++) {
            uint32_t s = p->refs[G->input0 + k];
            add(&h, (uint64_t) s << 32 | (uint32_t) (p->nodes[s].group + 1));
        }
    }
    for (uint32_t i = 0; i < p->nnodes; i++)
        add(&h, p->nodes[i].role | (uint64_t) p->nodes[i].output << 8);
    return h;
}

static uint64_t shape_hash(const struct ir_node *nd)
{
    uint64_t h = SEED ^ 2;
    add(&h, nd->rank);
    for (int d = 0; d < nd->rank; d++)
        add(&h, (uint64_t) nd->shape[d]);
    return h;
}

uint64_t jit_graph_signature(const struct ir_graph *g, const bool *is_output)
{
    /* Open addressing: shape -> first node with it (index + 1). */
    size_t cap = 16;
    while (cap < 2 * (size_t) g->count)
        cap *= 2;
    uint32_t *tab = calloc(cap, sizeof(uint32_t));
    if (tab == NULL)
        return 0;
    uint64_t h = SEED ^ 3;
    add(&h, g->count);
    for (uint32_t i = 0; i < g->count; i++) {
        const struct ir_node *nd = &g->nodes[i];
        add_node(&h, g, nd);
        for (int j = 0; j < nd->nin; j++)
            add(&h, i - nd->in[j]);
        add(&h, is_output != NULL && is_output[i]);
        size_t s = (size_t) shape_hash(nd) & (cap - 1);
        while (tab[s] != 0 && !jit_same_shape(&g->nodes[tab[s] - 1], nd))
            s = (s + 1) & (cap - 1);
        if (tab[s] == 0)
            tab[s] = i + 1;
        add(&h, i - (tab[s] - 1)); /* distance to the first node of this shape */
    }
    free(tab);
    return h == 0 ? 1 : h;
}
