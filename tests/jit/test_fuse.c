/* test_fuse.c: the fusion planner — the shapes of plans for the graphs
 * that matter (element-wise chains, softmax, reduce epilogues, conv2d,
 * shared producers, graphs where naive fusion makes a cycle), signatures,
 * and on hundreds of random graphs the invariants every plan must keep:
 * a partition of the live nodes, an acyclic producer-first group order,
 * and exactly the materialisations the rules call for. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"
#include "ir.h"
#include "kiln_err.h"

#include "tgraph.h"

/* ---- the invariants ------------------------------------------------------ */

static bool in_sorted(const uint32_t *v, uint32_t n, uint32_t x)
{
    for (uint32_t k = 0; k < n; k++)
        if (v[k] == x)
            return true;
    return false;
}

static bool is_input_op(int op)
{
    return op == IR_OP_ARRAY || op == IR_OP_EXTERN;
}

static int64_t numel(int rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return n;
}

/* Check every rule a plan must keep; independent of how fuse.c works. */
static void check_plan(const struct ir_graph *g, const bool *out, const struct jit_plan *p)
{
    uint32_t n = g->count;
    ck_assert_uint_eq(p->nnodes, n);
    bool *live = calloc(n + 1, 1);
    uint32_t *copies = calloc(n + 1, sizeof(uint32_t));
    ck_assert(live && copies);
    for (uint32_t i = n; i-- > 0;) {
        live[i] |= out[i];
        if (live[i])
            for (int k = 0; k < g->nodes[i].nin; k++)
                live[g->nodes[i].in[k]] = true;
    }
    for (uint32_t gi = 0; gi < p->ngroups; gi++) {
        const struct jit_group *G = &p->groups[gi];
        const uint32_t *mem = p->members + G->member0, *ins = p->refs + G->input0;
        const uint32_t *sinks = p->refs + G->sink0;
        ck_assert_uint_le(G->member0 + G->nmembers, p->nmembers);
        ck_assert_uint_le(G->input0 + G->ninputs, p->nrefs);
        ck_assert_uint_ge(G->nsinks, 1);
        int nred = 0;
        for (uint32_t k = 0; k < G->nmembers; k++) {
            uint32_t m = mem[k];
            uint8_t f = p->member_flags[G->member0 + k];
            const struct ir_node *nd = &g->nodes[m];
            if (k > 0)
                ck_assert_uint_lt(mem[k - 1], m); /* topological order */
            ck_assert(live[m] && !is_input_op(nd->op));
            copies[m]++;
            if (p->nodes[m].role == JIT_NODE_MEMBER)
                ck_assert_int_eq(p->nodes[m].group, (int) gi);
            else
                ck_assert(p->nodes[m].role == JIT_NODE_RECOMPUTED && (f & JIT_MEMBER_RECOMPUTED));
            ck_assert_msg(f & (JIT_MEMBER_MAIN | JIT_MEMBER_EPILOGUE), "node %u has no phase", m);
            bool both = (f & JIT_MEMBER_MAIN) && (f & JIT_MEMBER_EPILOGUE);
            ck_assert(!both || !p->nodes[m].materialised);
            ck_assert_int_eq(!!(f & JIT_MEMBER_SINK), p->nodes[m].materialised);
            ck_assert_int_eq(!!(f & JIT_MEMBER_SINK), in_sorted(sinks, G->nsinks, m));
            if (f & JIT_MEMBER_SINK) {
                /* Written once per point of its phase's loop. */
                int64_t want = (f & JIT_MEMBER_EPILOGUE) ? numel(G->out_rank, G->out_shape)
                                                         : numel(G->rank, G->shape);
                ck_assert_int_eq(nd->numel, want);
            }
            if (nd->op == IR_OP_REDUCE || nd->op == IR_OP_REINDEX_REDUCE) {
                nred++;
                ck_assert_int_eq(G->reduce, (int64_t) m);
                ck_assert_int_eq(G->kind, nd->op == IR_OP_REDUCE ? JIT_GROUP_REDUCE
                                                                 : JIT_GROUP_REINDEX_REDUCE);
                ck_assert_int_eq(G->out_rank, nd->rank);
                ck_assert_int_eq(G->rank, g->nodes[nd->in[0]].rank);
            }
            if (G->kind == JIT_GROUP_ELEMENTWISE || G->kind == JIT_GROUP_REINDEX_REDUCE)
                ck_assert(!(f & JIT_MEMBER_EPILOGUE) || (int64_t) m == G->reduce);
            for (int j = 0; j < nd->nin; j++) {
                uint32_t q = nd->in[j];
                if (in_sorted(mem, G->nmembers, q)) {
                    /* Extra inputs of gathers come from buffers. */
                    ck_assert(!((nd->op == IR_OP_REINDEX || nd->op == IR_OP_REINDEX_REDUCE) &&
                                j > 0));
                    continue;
                }
                ck_assert_msg(in_sorted(ins, G->ninputs, q), "group %u reads %u unlisted", gi,
                              q);
            }
        }
        ck_assert_int_eq(nred, G->kind == JIT_GROUP_ELEMENTWISE ? 0 : 1);
        for (uint32_t k = 0; k < G->ninputs; k++) {
            uint32_t q = ins[k];
            if (k > 0)
                ck_assert_uint_lt(ins[k - 1], q);
            if (is_input_op(g->nodes[q].op)) {
                ck_assert_int_eq(p->nodes[q].role, JIT_NODE_INPUT);
                continue;
            }
            /* Producers first, layers falling, and the value is stored. */
            ck_assert_int_eq(p->nodes[q].role, JIT_NODE_MEMBER);
            ck_assert_int_lt(p->nodes[q].group, (int) gi);
            ck_assert_uint_gt(p->groups[p->nodes[q].group].layer, G->layer);
            ck_assert_msg(p->nodes[q].materialised, "node %u read by group %u is not stored", q,
                          gi);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct jit_plan_node *pn = &p->nodes[i];
        ck_assert_int_eq(pn->output, out[i]);
        if (!live[i]) {
            ck_assert_int_eq(pn->role, JIT_NODE_DEAD);
            ck_assert_uint_eq(copies[i], 0);
        } else if (is_input_op(g->nodes[i].op)) {
            ck_assert_int_eq(pn->role, JIT_NODE_INPUT);
            ck_assert_uint_eq(copies[i], 0);
        } else if (pn->role == JIT_NODE_MEMBER) {
            ck_assert_uint_eq(copies[i], 1); /* exactly one group */
            /* Materialised iff an output or read by another group. */
            bool other = false;
            for (uint32_t c = i + 1; c < n; c++) {
                if (!live[c])
                    continue;
                for (int k = 0; k < g->nodes[c].nin; k++)
                    if (g->nodes[c].in[k] == i) {
                        const struct jit_group *G = &p->groups[pn->group];
                        other |= !in_sorted(p->members + G->member0, G->nmembers, c);
                    }
            }
            ck_assert_int_eq(pn->materialised, out[i] || other);
        } else {
            ck_assert_int_eq(pn->role, JIT_NODE_RECOMPUTED);
            ck_assert_uint_ge(copies[i], 2);
            ck_assert(!pn->materialised && !out[i]);
        }
    }
    /* Acyclic, independently of the order: Kahn over the group graph. */
    uint32_t *indeg = calloc(p->ngroups + 1, sizeof(uint32_t));
    uint8_t *done = calloc(p->ngroups + 1, 1);
    ck_assert(indeg && done);
    for (uint32_t gi = 0; gi < p->ngroups; gi++)
        for (uint32_t k = 0; k < p->groups[gi].ninputs; k++)
            if (p->nodes[p->refs[p->groups[gi].input0 + k]].role == JIT_NODE_MEMBER)
                indeg[gi]++;
    for (uint32_t round = 0; round < p->ngroups; round++) {
        uint32_t pick = UINT32_MAX;
        for (uint32_t gi = 0; gi < p->ngroups && pick == UINT32_MAX; gi++)
            if (!done[gi] && indeg[gi] == 0)
                pick = gi;
        ck_assert_msg(pick != UINT32_MAX, "the group graph has a cycle");
        done[pick] = 1;
        for (uint32_t gi = 0; gi < p->ngroups; gi++)
            for (uint32_t k = 0; k < p->groups[gi].ninputs; k++) {
                uint32_t q = p->refs[p->groups[gi].input0 + k];
                if (p->nodes[q].role == JIT_NODE_MEMBER && p->nodes[q].group == (int) pick)
                    indeg[gi]--;
            }
    }
    free(indeg);
    free(done);
    free(live);
    free(copies);
}

static void plan(struct tg *t)
{
    jit_plan_fini(&t->plan);
    int rc = jit_fuse_plan(&t->g, t->out, &t->plan, &t->err);
    ck_assert_msg(rc == KILN_OK, "plan failed: %s", t->err.message);
    check_plan(&t->g, t->out, &t->plan);
}

static uint8_t flags_of(const struct jit_plan *p, uint32_t gi, uint32_t node)
{
    const struct jit_group *G = &p->groups[gi];
    for (uint32_t k = 0; k < G->nmembers; k++)
        if (p->members[G->member0 + k] == node)
            return p->member_flags[G->member0 + k];
    return 0;
}

/* ---- the graphs that matter ------------------------------------------- */

START_TEST(chain_of_ten)
{
    struct tg t;
    tg_init(&t);
    int64_t s2[2] = {4, 8}, s1[1] = {8};
    int x = ext(&t, 2, s2), b = ext(&t, 1, s1);
    int bb = bcast(&t, b, 2, s2, 1u << 0);
    int y = bin(&t, IR_OP_ADD, x, bb);
    y = un(&t, IR_OP_EXP, y);
    y = bin(&t, IR_OP_MUL, y, bcast(&t, b, 2, s2, 1u << 0));
    y = un(&t, IR_OP_TANH, y);
    y = bin(&t, IR_OP_SUB, y, x);
    y = un(&t, IR_OP_NEG, y);
    y = bin(&t, IR_OP_MAXIMUM, y, cnst(&t, 2, s2, 0.0));
    y = un(&t, IR_OP_SQRT, y);
    y = bin(&t, IR_OP_DIV, y, bb);
    y = un(&t, IR_OP_LOG, y);
    t.out[y] = true;
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 1);
    ck_assert_int_eq(t.plan.groups[0].kind, JIT_GROUP_ELEMENTWISE);
    ck_assert_uint_eq(t.plan.groups[0].nsinks, 1);
    ck_assert_uint_eq(t.plan.refs[t.plan.groups[0].sink0], (uint32_t) y);
    ck_assert_uint_eq(t.plan.groups[0].ninputs, 2); /* x and b */
    tg_fini(&t);
}
END_TEST

/* softmax over the last axis of [n, m]; returns the output node. */
static int softmax(struct tg *t, int64_t n, int64_t m, bool keepdims)
{
    int64_t s2[2] = {n, m};
    int x = ext(t, 2, s2);
    int mx = red(t, IR_REDUCE_MAX, x, 1u << 1, keepdims);
    int mb = bcast(t, mx, 2, s2, keepdims ? 0 : 1u << 1);
    int e = un(t, IR_OP_EXP, bin(t, IR_OP_SUB, x, mb));
    int s = red(t, IR_REDUCE_ADD, e, 1u << 1, keepdims);
    int sb = bcast(t, s, 2, s2, keepdims ? 0 : 1u << 1);
    return bin(t, IR_OP_DIV, e, sb);
}

START_TEST(softmax_three_groups)
{
    for (int keep = 0; keep < 2; keep++) {
        struct tg t;
        tg_init(&t);
        int y = softmax(&t, 4, 8, keep);
        t.out[y] = true;
        plan(&t);
        ck_assert_uint_le(t.plan.ngroups, 3);
        ck_assert_uint_ge(t.plan.ngroups, 2);
        ck_assert(t.plan.nodes[y].materialised);
        tg_fini(&t);
    }
}
END_TEST

START_TEST(reduce_epilogue)
{
    struct tg t;
    tg_init(&t);
    int64_t s2[2] = {4, 8}, s1[1] = {4};
    int x = ext(&t, 2, s2), c = ext(&t, 1, s1);
    int a = un(&t, IR_OP_EXP, x);
    int r = red(&t, IR_REDUCE_ADD, a, 1u << 1, false);
    int y = bin(&t, IR_OP_MUL, r, c);
    y = un(&t, IR_OP_SQRT, bin(&t, IR_OP_ADD, y, cnst(&t, 1, s1, 1.0)));
    t.out[y] = true;
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 1);
    const struct jit_group *G = &t.plan.groups[0];
    ck_assert_int_eq(G->kind, JIT_GROUP_REDUCE);
    ck_assert_int_eq(G->reduce, r);
    ck_assert_int_eq(G->rank, 2);
    ck_assert_int_eq(G->shape[1], 8);
    ck_assert_int_eq(G->out_rank, 1);
    ck_assert_int_eq(G->out_shape[0], 4);
    ck_assert(flags_of(&t.plan, 0, (uint32_t) a) & JIT_MEMBER_MAIN);
    ck_assert(flags_of(&t.plan, 0, (uint32_t) y) & JIT_MEMBER_EPILOGUE);
    ck_assert(!t.plan.nodes[r].materialised);
    ck_assert_uint_eq(G->nsinks, 1);

    /* Keep the reduce too: written in the epilogue, still one group. */
    t.out[r] = true;
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 1);
    ck_assert(t.plan.nodes[r].materialised);
    ck_assert_uint_eq(t.plan.groups[0].nsinks, 2);

    /* Work at another shape after the reduce is a new group. */
    t.out[r] = false;
    t.out[y] = false;
    int z = un(&t, IR_OP_EXP, bcast(&t, r, 2, s2, 1u << 1));
    t.out[z] = true;
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 2);
    ck_assert(t.plan.nodes[r].materialised);
    tg_fini(&t);
}
END_TEST

START_TEST(shared_by_two_reduces)
{
    int64_t s2[2] = {4, 8};
    /* Expensive producer: stored once, in the first reduce's main loop. */
    struct tg t;
    tg_init(&t);
    int x = ext(&t, 2, s2);
    int a = un(&t, IR_OP_EXP, x);
    int r1 = red(&t, IR_REDUCE_ADD, a, 1u << 1, false);
    int r2 = red(&t, IR_REDUCE_MAX, a, 1u << 0, false);
    t.out[r1] = t.out[r2] = true;
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 2);
    ck_assert_int_eq(t.plan.nodes[a].role, JIT_NODE_MEMBER);
    ck_assert(t.plan.nodes[a].materialised);
    ck_assert(flags_of(&t.plan, (uint32_t) t.plan.nodes[a].group, (uint32_t) a) &
              JIT_MEMBER_MAIN);
    tg_fini(&t);

    /* Cheap producer of inputs only: recomputed in both, never stored. */
    tg_init(&t);
    x = ext(&t, 2, s2);
    a = bin(&t, IR_OP_MUL, x, cnst(&t, 2, s2, 3.0));
    r1 = red(&t, IR_REDUCE_ADD, a, 1u << 1, false);
    r2 = red(&t, IR_REDUCE_MAX, a, 1u << 0, false);
    t.out[r1] = t.out[r2] = true;
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 2);
    ck_assert_int_eq(t.plan.nodes[a].role, JIT_NODE_RECOMPUTED);
    ck_assert(!t.plan.nodes[a].materialised);
    for (uint32_t gi = 0; gi < 2; gi++) {
        ck_assert(flags_of(&t.plan, gi, (uint32_t) a) & JIT_MEMBER_RECOMPUTED);
        ck_assert_uint_eq(t.plan.groups[gi].ninputs, 1); /* x only */
    }
    /* Unless it is an output: then it is stored once. */
    t.out[a] = true;
    plan(&t);
    ck_assert_int_eq(t.plan.nodes[a].role, JIT_NODE_MEMBER);
    ck_assert(t.plan.nodes[a].materialised);
    tg_fini(&t);
}
END_TEST

START_TEST(conv2d_prologue)
{
    enum { N = 2, C = 3, H = 6, W = 5, O = 4, KH = 3, KW = 2 };
    struct tg t;
    tg_init(&t);
    int64_t xs[4] = {N, C, H, W}, ws[4] = {O, C, KH, KW};
    int64_t OH = H - KH + 1, OW = W - KW + 1;
    int64_t big[7] = {N, O, OH, OW, C, KH, KW};
    int x = ext(&t, 4, xs), w = ext(&t, 4, ws);
    const char *ex[4] = {"i0", "i4", "i2+i5", "i3+i6"};
    int xx = reindex(&t, x, 7, big, 4, ex, 0, NULL);
    int ww = bcast(&t, w, 7, big, (1u << 0) | (1u << 2) | (1u << 3));
    int yy = bin(&t, IR_OP_MUL, xx, ww);
    int y = red(&t, IR_REDUCE_ADD, yy, 0x70, false);
    t.out[y] = true;
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 1);
    const struct jit_group *G = &t.plan.groups[0];
    ck_assert_int_eq(G->kind, JIT_GROUP_REDUCE);
    ck_assert_int_eq(G->rank, 7);
    ck_assert_int_eq(G->out_rank, 4);
    ck_assert_uint_eq(G->nmembers, 4);
    ck_assert(flags_of(&t.plan, 0, (uint32_t) xx) & JIT_MEMBER_MAIN);
    ck_assert(flags_of(&t.plan, 0, (uint32_t) ww) & JIT_MEMBER_MAIN);
    ck_assert(flags_of(&t.plan, 0, (uint32_t) yy) & JIT_MEMBER_MAIN);
    ck_assert_uint_eq(G->ninputs, 2);
    ck_assert_uint_eq(G->nsinks, 1);
    tg_fini(&t);
}
END_TEST

START_TEST(no_cycle)
{
    /* a -> reduce r; b = f(a, broadcast(r)); c = g(a). Fusing a into b's
     * group (its consumer) would make b's group feed r's and r's feed
     * b's. `a` is made expensive so it cannot simply be recomputed. */
    int64_t s2[2] = {4, 8};
    for (int variant = 0; variant < 3; variant++) {
        struct tg t;
        tg_init(&t);
        int x = ext(&t, 2, s2);
        int a = un(&t, IR_OP_EXP, x);
        int r = red(&t, IR_REDUCE_ADD, a, 1u << 1, variant == 2);
        int rb = bcast(&t, r, 2, s2, variant == 2 ? 0 : 1u << 1);
        int b = bin(&t, IR_OP_DIV, a, rb);
        int c = un(&t, IR_OP_TANH, a);
        t.out[b] = true;
        t.out[c] = variant != 1;
        plan(&t);
        ck_assert(t.plan.nodes[a].materialised);
        ck_assert_int_ne(t.plan.nodes[a].group, t.plan.nodes[b].group);
        ck_assert_uint_le(t.plan.ngroups, 2);
        tg_fini(&t);
    }
}
END_TEST

START_TEST(outputs_mid_chain)
{
    struct tg t;
    tg_init(&t);
    int64_t s2[2] = {4, 8};
    int x = ext(&t, 2, s2);
    int a = un(&t, IR_OP_EXP, x);
    int b = bin(&t, IR_OP_ADD, a, x);
    int c = un(&t, IR_OP_TANH, b);
    int d = bin(&t, IR_OP_MUL, c, c);
    t.out[a] = t.out[c] = t.out[d] = true;
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 1);
    ck_assert(t.plan.nodes[a].materialised && t.plan.nodes[c].materialised);
    ck_assert(!t.plan.nodes[b].materialised);
    ck_assert_uint_eq(t.plan.groups[0].nsinks, 3);

    /* An output evaluated only through a broadcast cannot be written
     * once per point of its consumer's loop: it gets its own group. */
    int64_t s1[1] = {4};
    int v = ext(&t, 1, s1);
    int e = un(&t, IR_OP_EXP, v);
    int f = bin(&t, IR_OP_MUL, bcast(&t, e, 2, s2, 1u << 1), d);
    t.out[e] = t.out[f] = true;
    plan(&t);
    ck_assert_int_ne(t.plan.nodes[e].group, t.plan.nodes[f].group);
    ck_assert(t.plan.nodes[e].materialised);
    tg_fini(&t);
}
END_TEST

START_TEST(gathers_and_edges)
{
    struct tg t;
    tg_init(&t);
    int64_t s1[1] = {10}, s2[2] = {4, 3};
    int x = ext(&t, 1, s1);
    /* An index array built in the graph: extras are read from buffers. */
    int idx = ok(&t, ir_add_index(&t.g, IR_DTYPE_INT32, 2, s2, 0, &t.err));
    const char *ex[1] = {"@e0(i0,i1)+i1"};
    int y = reindex(&t, un(&t, IR_OP_EXP, x), 2, s2, 1, ex, 1, &idx);
    int dead = un(&t, IR_OP_NEG, x);
    (void) dead;
    t.out[y] = true;
    t.out[x] = true; /* an input that is an output: no kernel */
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 2);
    ck_assert(t.plan.nodes[idx].materialised);
    ck_assert_int_eq(t.plan.nodes[dead].role, JIT_NODE_DEAD);
    ck_assert_int_eq(t.plan.nodes[x].role, JIT_NODE_INPUT);
    ck_assert(!t.plan.nodes[x].materialised);

    /* No outputs: an empty plan. */
    memset(t.out, 0, sizeof(t.out));
    plan(&t);
    ck_assert_uint_eq(t.plan.ngroups, 0);
    jit_plan_fini(&t.plan);
    jit_plan_fini(&t.plan); /* safe twice */
    tg_fini(&t);
}
END_TEST

/* ---- signatures ----------------------------------------------------- */

struct sigs {
    uint64_t graph, plan, group[8];
    uint32_t ngroups;
};

static struct sigs softmax_sigs(int64_t n, int64_t m, enum ir_op mid, enum ir_dtype dt, bool keep)
{
    struct tg t;
    tg_init(&t);
    int64_t s2[2] = {n, m};
    int x = ok(&t, ir_add_extern(&t.g, dt, 2, s2, &t.err));
    int mx = red(&t, IR_REDUCE_MAX, x, 1u << 1, keep);
    int mb = bcast(&t, mx, 2, s2, keep ? 0 : 1u << 1);
    int e = un(&t, mid, bin(&t, IR_OP_SUB, x, mb));
    int s = red(&t, IR_REDUCE_ADD, e, 1u << 1, keep);
    int y = bin(&t, IR_OP_DIV, e, bcast(&t, s, 2, s2, keep ? 0 : 1u << 1));
    t.out[y] = true;
    plan(&t);
    struct sigs r = {.graph = jit_graph_signature(&t.g, t.out), .plan = t.plan.signature};
    r.ngroups = t.plan.ngroups;
    for (uint32_t gi = 0; gi < t.plan.ngroups && gi < 8; gi++) {
        r.group[gi] = t.plan.groups[gi].signature;
        ck_assert_uint_eq(r.group[gi], jit_group_signature(&t.g, &t.plan, gi));
    }
    tg_fini(&t);
    return r;
}

START_TEST(signatures)
{
    struct sigs a = softmax_sigs(4, 8, IR_OP_EXP, IR_DTYPE_FLOAT32, false);
    struct sigs b = softmax_sigs(16, 33, IR_OP_EXP, IR_DTYPE_FLOAT32, false);
    ck_assert_uint_eq(a.graph, b.graph);
    ck_assert_uint_eq(a.plan, b.plan);
    ck_assert_uint_eq(a.ngroups, b.ngroups);
    for (uint32_t gi = 0; gi < a.ngroups; gi++)
        ck_assert_uint_eq(a.group[gi], b.group[gi]);
    /* Groups of one plan differ from each other. */
    for (uint32_t i = 0; i < a.ngroups; i++)
        for (uint32_t j = i + 1; j < a.ngroups; j++)
            ck_assert_uint_ne(a.group[i], a.group[j]);

    struct sigs ops = softmax_sigs(4, 8, IR_OP_TANH, IR_DTYPE_FLOAT32, false);
    struct sigs dts = softmax_sigs(4, 8, IR_OP_EXP, IR_DTYPE_FLOAT64, false);
    struct sigs att = softmax_sigs(4, 8, IR_OP_EXP, IR_DTYPE_FLOAT32, true);
    const struct sigs *diff[3] = {&ops, &dts, &att};
    for (int k = 0; k < 3; k++) {
        ck_assert_uint_ne(a.graph, diff[k]->graph);
        ck_assert_uint_ne(a.plan, diff[k]->plan);
    }
    /* The group holding exp: the second reduce's (index 1 by layer). */
    ck_assert_uint_ne(a.group[1], ops.group[1]);
    ck_assert_uint_ne(a.group[1], dts.group[1]);
    ck_assert_uint_ne(a.group[0], att.group[0]); /* keepdims */

    /* Equal shapes that fusion relied on are part of the graph key. */
    struct tg t, u;
    tg_init(&t);
    tg_init(&u);
    int64_t s1[1] = {4}, s1b[1] = {5};
    int x = ext(&t, 1, s1), y = ext(&t, 1, s1);
    t.out[bin(&t, IR_OP_ADD, x, x)] = true;
    t.out[bin(&t, IR_OP_ADD, y, y)] = true;
    x = ext(&u, 1, s1);
    y = ext(&u, 1, s1b);
    u.out[bin(&u, IR_OP_ADD, x, x)] = true;
    u.out[bin(&u, IR_OP_ADD, y, y)] = true;
    ck_assert_uint_ne(jit_graph_signature(&t.g, t.out), jit_graph_signature(&u.g, u.out));
    /* Constants are run-time arguments: different values, one kernel. */
    int c1 = un(&t, IR_OP_EXP, cnst(&t, 1, s1, 1.0));
    int c2 = un(&u, IR_OP_EXP, cnst(&u, 1, s1, 2.0));
    t.out[c1] = u.out[c2] = true;
    plan(&t);
    plan(&u);
    uint32_t gt = (uint32_t) t.plan.nodes[c1].group, gu = (uint32_t) u.plan.nodes[c2].group;
    ck_assert_uint_eq(t.plan.groups[gt].signature, u.plan.groups[gu].signature);
    tg_fini(&t);
    tg_fini(&u);
}
END_TEST

/* ---- random graphs ----------------------------------------------------- */

START_TEST(random_graphs)
{
    int groups = 0, recomputed = 0, epilogues = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        int nn = 8 + (int) (seed * 7 % 60);
        struct tg t, u;
        tg_init(&t);
        tg_init(&u);
        random_graph(&t, seed * 0x9e3779b97f4a7c15ull, 3, 5, nn);
        random_graph(&u, seed * 0x9e3779b97f4a7c15ull, 6, 7, nn);
        plan(&t);
        plan(&u);
        ck_assert_uint_eq(t.g.count, u.g.count);
        /* The same structure at other sizes: the same keys and plan. */
        ck_assert_uint_eq(jit_graph_signature(&t.g, t.out), jit_graph_signature(&u.g, u.out));
        ck_assert_uint_eq(t.plan.signature, u.plan.signature);
        ck_assert_uint_eq(t.plan.ngroups, u.plan.ngroups);
        for (uint32_t gi = 0; gi < t.plan.ngroups; gi++) {
            ck_assert_uint_eq(t.plan.groups[gi].signature, u.plan.groups[gi].signature);
            for (uint32_t k = 0; k < t.plan.groups[gi].nmembers; k++)
                epilogues += !!(t.plan.member_flags[t.plan.groups[gi].member0 + k] &
                                JIT_MEMBER_EPILOGUE);
        }
        /* Deterministic: planning again gives the same plan. */
        uint64_t before = t.plan.signature;
        plan(&t);
        ck_assert_uint_eq(before, t.plan.signature);
        groups += (int) t.plan.ngroups;
        for (uint32_t i = 0; i < t.g.count; i++)
            recomputed += t.plan.nodes[i].role == JIT_NODE_RECOMPUTED;
        tg_fini(&t);
        tg_fini(&u);
    }
    /* The generator reaches the interesting cases. */
    ck_assert_int_gt(groups, 400);
    ck_assert_int_gt(recomputed, 10);
    ck_assert_int_gt(epilogues, 10);
}
END_TEST

/* A long training-step-like graph plans in linear-ish time: blocks of
 * element-wise work, a reduce, a broadcast back, and a wide fan-out. */
START_TEST(large_graph)
{
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    int64_t s2[2] = {16, 32};
    int x = ir_add_extern(&g, IR_DTYPE_FLOAT32, 2, s2, &err);
    int hub = ir_add_unary(&g, IR_OP_EXP, x, &err);
    int cur = hub;
    for (int it = 1; g.count < 60000; it++) {
        cur = ir_add_binary(&g, IR_OP_ADD, cur, hub, &err);
        cur = ir_add_unary(&g, IR_OP_TANH, cur, &err);
        if (it % 32 == 0) {
            int r = ir_add_reduce(&g, IR_REDUCE_ADD, cur, 1u << 1, false, &err);
            cur = ir_add_broadcast(&g, r, 2, s2, 1u << 1, &err);
            cur = ir_add_binary(&g, IR_OP_MUL, cur, hub, &err);
        }
        ck_assert_int_ge(cur, 0);
    }
    bool *out = calloc(g.count, 1);
    ck_assert_ptr_nonnull(out);
    out[cur] = true;
    for (uint32_t i = 0; i < g.count; i += 97)
        out[i] = true;
    struct jit_plan p;
    ck_assert_int_eq(jit_fuse_plan(&g, out, &p, &err), KILN_OK);
    ck_assert_uint_gt(p.ngroups, 100);
    ck_assert_uint_lt(p.ngroups, g.count / 10);
    ck_assert(p.nodes[hub].materialised);
    ck_assert_uint_ne(jit_graph_signature(&g, out), 0);
    /* Producers first. */
    for (uint32_t gi = 0; gi < p.ngroups; gi++)
        for (uint32_t k = 0; k < p.groups[gi].ninputs; k++) {
            uint32_t q = p.refs[p.groups[gi].input0 + k];
            ck_assert_int_lt(p.nodes[q].group, (int) gi);
        }
    jit_plan_fini(&p);
    ck_assert_int_eq(jit_fuse_plan(&g, NULL, &p, &err), KILN_OK); /* no outputs */
    ck_assert_uint_eq(p.ngroups, 0);
    jit_plan_fini(&p);
    free(out);
    ir_graph_fini(&g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jit");
    TCase *tc = tcase_create("fuse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, chain_of_ten);
    tcase_add_test(tc, softmax_three_groups);
    tcase_add_test(tc, reduce_epilogue);
    tcase_add_test(tc, shared_by_two_reduces);
    tcase_add_test(tc, conv2d_prologue);
    tcase_add_test(tc, no_cycle);
    tcase_add_test(tc, outputs_mid_chain);
    tcase_add_test(tc, gathers_and_edges);
    tcase_add_test(tc, signatures);
    tcase_add_test(tc, random_graphs);
    tcase_add_test(tc, large_graph);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
