/* fuse.c: the fusion planner (contract in fuse.h); signatures are in
 * fuse_sig.c.
 *
 * The algorithm, in four passes over the node array:
 *
 *  1. Liveness, backwards from the outputs; consumer lists of live nodes.
 *  2. Recompute marks, forwards: cheap nodes fed only by inputs (fuse.h).
 *     They take no part in grouping: they only read buffers, so copying
 *     them into any group adds no edge between groups.
 *  3. Grouping, backwards (consumers before producers), with union-find
 *     over nodes. When node p is visited, every consumer already sits in
 *     a group. p joins a set F of its consumers' groups (merging them) if
 *     the rules allow, or starts a group of its own.
 *  4. Assembly: groups ordered by layer, members sorted, recomputed nodes
 *     copied in, sinks and input buffers listed, signatures taken.
 *
 * Why no cycle can form (longest-distance layering). Every group carries
 * a layer L, every member of a group shares it, and we keep:
 *
 *   (I) every edge u -> v between two different groups has L(u) > L(v).
 *
 * Then the group graph is acyclic (layers strictly fall along any path)
 * and listing groups by descending layer puts producers first. (I) holds
 * at every step of pass 3:
 *  - p alone: L(p) = 1 + max L over its consumers; edges into p come from
 *    nodes not yet visited, which are checked when they are.
 *  - p joins F at layer L' = max(L(G) for G in F, L(c) + 1 for consumers
 *    c outside F). Edges from p leaving F fall (L' > L(c)). Groups of F
 *    whose layer is raised to L' keep their out-edges falling (raising
 *    the source only widens the gap); their in-edges from visited nodes
 *    are covered by `minprod`, a lower bound on the layer of every
 *    visited producer outside the group, and a group may be raised only
 *    when minprod > L'. Edges between two groups of F become internal.
 *    A path G1 -> X -> G2 through an outside group X, the one way merging
 *    G1 and G2 could close a cycle, implies minprod(G2) <= L(X) < L(G1)
 *    <= L', so G2 is refused. The check is conservative (it may refuse a
 *    safe merge, never accept an unsafe one).
 *  - Layers are only ever raised, so minprod stays a lower bound.
 *
 * Shapes: a group has one main iteration space (and, for a reduce, an
 * epilogue space). Each member records the phase it is evaluated in and
 * two flags: at_id (evaluated at least once at the very point the loop is
 * at, so it can be written there exactly once) and only_id (evaluated only
 * there, so a reduce read this way can feed its epilogue). Element-wise
 * ops and reshape read their inputs at their own (flat) point; broadcast
 * and reindex do not. A member that must be materialised needs at_id.
 *
 * Plans decide by shapes only through same_shape() (whole-shape
 * equality), which is why jit_graph_signature() hashes equal-shape
 * classes and not sizes.
 */
#include "fuse.h"
#include "relay_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_impl.h"
#include "kiln_err.h"

#define NONE UINT32_MAX

/* ---- op classes --------------------------------------------------------- */

bool jit_op_is_input(int op)
{
    return op == IR_OP_ARRAY || op == IR_OP_EXTERN;
}

static bool is_source(int op)
{
    return op == IR_OP_CONST || op == IR_OP_INDEX || op == IR_OP_RANDOM;
}

static bool is_unary(int op)
{
    return op >= IR_OP_NEG && op <= IR_OP_CAST;
}

static bool is_binary(int op)
{
    return op >= IR_OP_ADD && op <= IR_OP_SHR;
}

/* Reads each input at its own flat point. */
static bool same_point(int op)
{
    return is_unary(op) || is_binary(op) || op == IR_OP_WHERE || op == IR_OP_RESHAPE;
}

/* May be evaluated inside a consumer's kernel. */
static bool fusible_producer(int op)
{
    return same_point(op) || is_source(op) || op == IR_OP_BROADCAST_TO || op == IR_OP_REINDEX;
}

/* Cheap enough to recompute in every group that reads it. */
static bool cheap(int op)
{
    switch (op) {
    case IR_OP_CONST: case IR_OP_INDEX: case IR_OP_RANDOM:
    case IR_OP_RESHAPE: case IR_OP_BROADCAST_TO: case IR_OP_WHERE:
    case IR_OP_NEG: case IR_OP_ABS: case IR_OP_FLOOR: case IR_OP_CEIL: case IR_OP_ROUND:
    case IR_OP_SIGN: case IR_OP_LOGICAL_NOT: case IR_OP_BITWISE_NOT: case IR_OP_CAST:
        return true;
    default:
        return is_binary(op) && op != IR_OP_POW;
    }
}

static bool is_gather(int op)
{
    return op == IR_OP_REINDEX || op == IR_OP_REINDEX_REDUCE;
}

bool jit_same_shape(const struct ir_node *a, const struct ir_node *b)
{
    return a->rank == b->rank && memcmp(a->shape, b->shape, sizeof(int64_t) * a->rank) == 0;
}

/* ---- the planner's state ------------------------------------------------ */

/* Sort key of a candidate group (see sort_candidates). */
struct ckey {
    uint32_t elementwise, layer, root;
};

struct planner {
    const struct ir_graph *g;
    const bool *out;
    uint32_t n;
    uint8_t *live, *recomp, *rops, *rreads;
    uint32_t *cstart, *cons; /* CSR of live consumers: cons[cstart[p] .. cstart[p+1]) */
    uint8_t *cslot;          /* which input of the consumer */
    /* Union-find over nodes. The fields below are valid at roots. */
    uint32_t *parent;
    uint32_t *layer, *minprod;
    uint8_t *kind;
    uint32_t *rnode; /* the group's reduce or reindex_reduce, or NONE */
    uint32_t *space; /* the node whose shape is the main loop's */
    uint32_t *head, *tail, *next; /* member lists (next is per node) */
    /* Per node. */
    uint8_t *phase, *at_id, *only_id, *mat;
    /* Per root, for the node being visited. */
    uint32_t *stamp, *cand;
    struct ckey *ckeys;
    uint8_t *ag_phase, *ag_fus, *ag_at, *ag_only, *in_f;
};

static const struct ir_node *node(const struct planner *P, uint32_t i)
{
    return &P->g->nodes[i];
}

static uint32_t find(struct planner *P, uint32_t x)
{
    while (P->parent[x] != x) {
        P->parent[x] = P->parent[P->parent[x]];
        x = P->parent[x];
    }
    return x;
}

static bool out_of(const struct planner *P, uint32_t i)
{
    return P->out != NULL && P->out[i];
}

/* ---- passes 1 and 2 ----------------------------------------------------- */

static void mark_live(struct planner *P)
{
    for (uint32_t i = P->n; i-- > 0;) {
        if (out_of(P, i))
            P->live[i] = 1;
        if (!P->live[i])
            continue;
        for (int k = 0; k < node(P, i)->nin; k++)
            P->live[node(P, i)->in[k]] = 1;
    }
}

static void build_consumers(struct planner *P)
{
    for (uint32_t c = 0; c < P->n; c++)
        if (P->live[c])
            for (int k = 0; k < node(P, c)->nin; k++)
                P->cstart[node(P, c)->in[k] + 1]++;
    for (uint32_t i = 0; i < P->n; i++)
        P->cstart[i + 1] += P->cstart[i];
    /* Fill in ascending consumer order, using `next` as a cursor. */
    memcpy(P->next, P->cstart, sizeof(uint32_t) * P->n);
    for (uint32_t c = 0; c < P->n; c++)
        if (P->live[c])
            for (int k = 0; k < node(P, c)->nin; k++) {
                uint32_t e = P->next[node(P, c)->in[k]]++;
                P->cons[e] = c;
                P->cslot[e] = (uint8_t) k;
            }
}

static void mark_recompute(struct planner *P)
{
    for (uint32_t i = 0; i < P->n; i++) {
        const struct ir_node *nd = node(P, i);
        if (!P->live[i] || out_of(P, i) || !cheap(nd->op))
            continue;
        unsigned ops = nd->op == IR_OP_CONST ? 0 : 1, reads = 0;
        bool ok = true;
        for (int k = 0; k < nd->nin && ok; k++) {
            uint32_t q = nd->in[k];
            if (jit_op_is_input(node(P, q)->op))
                reads++;
            else if (P->recomp[q]) {
                ops += P->rops[q];
                reads += P->rreads[q];
            } else
                ok = false;
        }
        /* Extras, and a relay's operands, are read from buffers. */
        for (uint32_t e = P->cstart[i]; e < P->cstart[i + 1] && ok; e++) {
            int cop = node(P, P->cons[e])->op;
            if ((is_gather(cop) && P->cslot[e] != 0) || ir_op_is_relay(cop))
                ok = false;
        }
        if (ok && ops <= JIT_RECOMPUTE_MAX_OPS && reads <= JIT_RECOMPUTE_MAX_READS) {
            P->recomp[i] = 1;
            P->rops[i] = (uint8_t) ops;
            P->rreads[i] = (uint8_t) reads;
        }
    }
}

/* ---- pass 3: grouping --------------------------------------------------- */

/* Aggregate, per consumer group, how p is read there. Returns the number
 * of distinct consumer groups, listed in P->cand. */
static uint32_t gather_candidates(struct planner *P, uint32_t p)
{
    int pop = node(P, p)->op;
    uint32_t nc = 0;
    for (uint32_t e = P->cstart[p]; e < P->cstart[p + 1]; e++) {
        uint32_t c = P->cons[e], r = find(P, c);
        int cop = node(P, c)->op;
        if (P->stamp[r] != p + 1) {
            P->stamp[r] = p + 1;
            P->cand[nc++] = r;
            P->ag_phase[r] = 0;
            P->ag_fus[r] = 1;
            P->ag_at[r] = 0;
            P->ag_only[r] = 1;
            P->in_f[r] = 0;
        }
        bool fus;
        if (ir_op_is_relay(cop))
            fus = false; /* a library call reads whole buffers */
        else if (is_gather(cop) && P->cslot[e] != 0)
            fus = false; /* extras are read from buffers */
        else if (pop == IR_OP_REDUCE)
            fus = cop != IR_OP_REDUCE && cop != IR_OP_REINDEX_REDUCE;
        else
            fus = fusible_producer(pop);
        uint8_t ph;
        bool at, only;
        if (c == P->rnode[r]) {
            ph = JIT_MEMBER_MAIN; /* the reduction reads its input in the main loop */
            at = only = true;
        } else {
            bool id = same_point(cop);
            ph = P->phase[c];
            at = id && P->at_id[c];
            only = id && P->only_id[c];
        }
        P->ag_fus[r] &= fus;
        P->ag_phase[r] |= ph;
        P->ag_at[r] |= at;
        P->ag_only[r] &= only;
    }
    return nc;
}

/* Candidate order: reduction groups first (a prologue saves the most),
 * then higher layers, then lower root. A total order: deterministic. */
static int cmp_ckey(const void *a, const void *b)
{
    const struct ckey *x = a, *y = b;
    if (x->elementwise != y->elementwise)
        return x->elementwise < y->elementwise ? -1 : 1;
    if (x->layer != y->layer)
        return x->layer > y->layer ? -1 : 1;
    return (x->root > y->root) - (x->root < y->root);
}

static void sort_candidates(struct planner *P, uint32_t nc)
{
    if (nc < 2)
        return;
    for (uint32_t i = 0; i < nc; i++) {
        uint32_t r = P->cand[i];
        P->ckeys[i] = (struct ckey){P->kind[r] == JIT_GROUP_ELEMENTWISE, P->layer[r], r};
    }
    qsort(P->ckeys, nc, sizeof(P->ckeys[0]), cmp_ckey);
    for (uint32_t i = 0; i < nc; i++)
        P->cand[i] = P->ckeys[i].root;
}

/* Choose F (P->in_f) for an element-wise-like p; returns the chosen
 * reduction group or NONE, and its phase in *phi. */
static uint32_t choose_pointwise(struct planner *P, uint32_t nc, uint8_t *phi)
{
    uint32_t rn = NONE, spc = NONE;
    *phi = JIT_MEMBER_MAIN;
    for (uint32_t i = 0; i < nc; i++) {
        uint32_t r = P->cand[i];
        uint8_t ph = P->ag_phase[r];
        if (!P->ag_fus[r] || (ph != JIT_MEMBER_MAIN && ph != JIT_MEMBER_EPILOGUE))
            continue;
        uint32_t s = P->kind[r] == JIT_GROUP_ELEMENTWISE || ph == JIT_MEMBER_MAIN ? P->space[r]
                                                                                  : P->rnode[r];
        bool red = P->kind[r] != JIT_GROUP_ELEMENTWISE;
        if (red && rn != NONE)
            continue; /* one reduction per group */
        if (spc != NONE && !jit_same_shape(node(P, spc), node(P, s)))
            continue;
        if (red) {
            rn = r;
            *phi = ph;
        }
        spc = s;
        P->in_f[r] = 1;
    }
    return rn;
}

static void choose_epilogue(struct planner *P, uint32_t p, uint32_t nc)
{
    for (uint32_t i = 0; i < nc; i++) {
        uint32_t r = P->cand[i];
        P->in_f[r] = P->ag_fus[r] && P->ag_only[r] && P->kind[r] == JIT_GROUP_ELEMENTWISE &&
                     jit_same_shape(node(P, P->space[r]), node(P, p));
    }
}

/* Shrink F until the layering invariant and materialisation allow it.
 * Returns p's layer (for F empty: the layer of p alone). */
static uint32_t settle(struct planner *P, uint32_t p, uint32_t nc)
{
    for (;;) {
        uint32_t lay = 0;
        bool unfused = false, at = false, changed = false, any = false;
        for (uint32_t i = 0; i < nc; i++) {
            uint32_t r = P->cand[i];
            if (P->in_f[r]) {
                any = true;
                lay = P->layer[r] > lay ? P->layer[r] : lay;
                at |= P->ag_at[r];
            } else {
                lay = P->layer[r] + 1 > lay ? P->layer[r] + 1 : lay;
                unfused = true;
            }
        }
        if (!any)
            return lay;
        if ((out_of(P, p) || unfused) && !at) {
            /* Must be written, but no group evaluates it once per point. */
            for (uint32_t i = 0; i < nc; i++)
                P->in_f[P->cand[i]] = 0;
            continue;
        }
        for (uint32_t i = 0; i < nc; i++) {
            uint32_t r = P->cand[i];
            if (P->in_f[r] && P->layer[r] < lay && P->minprod[r] <= lay) {
                P->in_f[r] = 0;
                changed = true;
            }
        }
        if (!changed)
            return lay;
    }
}

static void set_phase(struct planner *P, uint32_t root, uint8_t ph)
{
    for (uint32_t m = P->head[root]; m != NONE; m = P->next[m])
        P->phase[m] = ph;
}

static void start_group(struct planner *P, uint32_t p, uint32_t lay)
{
    const struct ir_node *np = node(P, p);
    P->parent[p] = p;
    P->layer[p] = lay;
    P->minprod[p] = NONE;
    P->head[p] = P->tail[p] = p;
    P->next[p] = NONE;
    P->at_id[p] = P->only_id[p] = 1;
    if (np->op == IR_OP_REDUCE || np->op == IR_OP_REINDEX_REDUCE) {
        P->kind[p] = np->op == IR_OP_REDUCE ? JIT_GROUP_REDUCE : JIT_GROUP_REINDEX_REDUCE;
        P->rnode[p] = p;
        P->space[p] = np->in[0];
        P->phase[p] = JIT_MEMBER_EPILOGUE; /* its value exists at the output shape */
    } else if (ir_op_is_relay(np->op)) {
        P->kind[p] = JIT_GROUP_RELAY; /* alone: no consumer ever fuses into it */
        P->rnode[p] = NONE;
        P->space[p] = p;
        P->phase[p] = JIT_MEMBER_MAIN;
    } else {
        P->kind[p] = JIT_GROUP_ELEMENTWISE;
        P->rnode[p] = NONE;
        P->space[p] = p;
        P->phase[p] = JIT_MEMBER_MAIN;
    }
}

static void join_groups(struct planner *P, uint32_t p, uint32_t nc, uint32_t rn, uint8_t phi,
                        uint32_t lay)
{
    bool is_red = node(P, p)->op == IR_OP_REDUCE;
    uint32_t root = rn;
    bool at = false, only = true;
    for (uint32_t i = 0; i < nc; i++) {
        uint32_t r = P->cand[i];
        if (!P->in_f[r])
            continue;
        at |= P->ag_at[r];
        only &= P->ag_only[r];
        if (is_red || (P->kind[r] == JIT_GROUP_ELEMENTWISE && phi == JIT_MEMBER_EPILOGUE))
            set_phase(P, r, JIT_MEMBER_EPILOGUE);
        if (root == NONE) {
            root = r;
            continue;
        }
        if (r == root)
            continue;
        P->parent[r] = root;
        P->next[P->tail[root]] = P->head[r];
        P->tail[root] = P->tail[r];
        if (P->minprod[r] < P->minprod[root])
            P->minprod[root] = P->minprod[r];
    }
    P->layer[root] = lay;
    if (is_red) {
        P->kind[root] = JIT_GROUP_REDUCE;
        P->rnode[root] = p;
        P->space[root] = node(P, p)->in[0];
        phi = JIT_MEMBER_EPILOGUE;
    }
    P->parent[p] = root;
    P->next[p] = NONE;
    P->next[P->tail[root]] = p;
    P->tail[root] = p;
    P->phase[p] = phi;
    P->at_id[p] = at;
    P->only_id[p] = only;
}

static void plan_node(struct planner *P, uint32_t p)
{
    int op = node(P, p)->op;
    uint32_t nc = gather_candidates(P, p);
    sort_candidates(P, nc);
    uint32_t rn = NONE;
    uint8_t phi = JIT_MEMBER_MAIN;
    if (op == IR_OP_REDUCE)
        choose_epilogue(P, p, nc);
    else if (op != IR_OP_REINDEX_REDUCE)
        rn = choose_pointwise(P, nc, &phi);
    uint32_t lay = settle(P, p, nc);
    bool any = false;
    for (uint32_t i = 0; i < nc; i++)
        any |= P->in_f[P->cand[i]];
    if (rn != NONE && !P->in_f[rn]) {
        rn = NONE; /* the reduction group was refused; the rest are element-wise */
        phi = JIT_MEMBER_MAIN;
    }
    if (any)
        join_groups(P, p, nc, rn, phi, lay);
    else
        start_group(P, p, lay);
    uint32_t lp = P->layer[find(P, p)];
    for (uint32_t i = 0; i < nc; i++) {
        uint32_t r = P->cand[i];
        if (!P->in_f[r] && lp < P->minprod[r])
            P->minprod[r] = lp;
    }
}

/* ---- allocation --------------------------------------------------------- */

static void *zalloc(size_t n, size_t size, bool *bad)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL)
        *bad = true;
    return p;
}

static void planner_free(struct planner *P)
{
    void *arrs[] = {P->live, P->recomp, P->rops, P->rreads, P->cstart, P->cons, P->cslot,
                    P->parent, P->layer, P->minprod, P->kind, P->rnode, P->space, P->head,
                    P->tail, P->next, P->phase, P->at_id, P->only_id, P->mat, P->stamp,
                    P->cand, P->ckeys, P->ag_phase, P->ag_fus, P->ag_at, P->ag_only, P->in_f};
    for (size_t i = 0; i < sizeof(arrs) / sizeof(arrs[0]); i++)
        free(arrs[i]);
}

static int planner_alloc(struct planner *P)
{
    bool bad = false;
    size_t n = P->n, ne = 0;
    for (uint32_t i = 0; i < P->n; i++)
        ne += P->g->nodes[i].nin;
    P->live = zalloc(n, 1, &bad);
    P->recomp = zalloc(n, 1, &bad);
    P->rops = zalloc(n, 1, &bad);
    P->rreads = zalloc(n, 1, &bad);
    P->cstart = zalloc(n + 1, sizeof(uint32_t), &bad);
    P->cons = zalloc(ne, sizeof(uint32_t), &bad);
    P->cslot = zalloc(ne, 1, &bad);
    P->parent = zalloc(n, sizeof(uint32_t), &bad);
    P->layer = zalloc(n, sizeof(uint32_t), &bad);
    P->minprod = zalloc(n, sizeof(uint32_t), &bad);
    P->kind = zalloc(n, 1, &bad);
    P->rnode = zalloc(n, sizeof(uint32_t), &bad);
    P->space = zalloc(n, sizeof(uint32_t), &bad);
    P->head = zalloc(n, sizeof(uint32_t), &bad);
    P->tail = zalloc(n, sizeof(uint32_t), &bad);
    P->next = zalloc(n, sizeof(uint32_t), &bad);
    P->phase = zalloc(n, 1, &bad);
    P->at_id = zalloc(n, 1, &bad);
    P->only_id = zalloc(n, 1, &bad);
    P->mat = zalloc(n, 1, &bad);
    P->stamp = zalloc(n, sizeof(uint32_t), &bad);
    P->cand = zalloc(n, sizeof(uint32_t), &bad);
    P->ckeys = zalloc(n, sizeof(struct ckey), &bad);
    P->ag_phase = zalloc(n, 1, &bad);
    P->ag_fus = zalloc(n, 1, &bad);
    P->ag_at = zalloc(n, 1, &bad);
    P->ag_only = zalloc(n, 1, &bad);
    P->in_f = zalloc(n, 1, &bad);
    if (bad)
        return -1;
    for (uint32_t i = 0; i < P->n; i++) {
        P->parent[i] = i;
        P->rnode[i] = NONE;
    }
    return 0;
}

/* ---- pass 4: assembly --------------------------------------------------- */

struct vec32 {
    uint32_t *v;
    uint32_t n, cap;
    uint8_t *f; /* parallel flags, when used */
};

static int vec_push(struct vec32 *a, uint32_t x, uint8_t f, bool flags)
{
    if (a->n == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 64;
        uint32_t *v = realloc(a->v, sizeof(uint32_t) * cap);
        if (v == NULL)
            return -1;
        a->v = v;
        if (flags) {
            uint8_t *nf = realloc(a->f, cap);
            if (nf == NULL)
                return -1;
            a->f = nf;
        }
        a->cap = cap;
    }
    if (flags)
        a->f[a->n] = f;
    a->v[a->n++] = x;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return (x > y) - (x < y);
}

/* Group order key: descending layer, then ascending first member. */
struct gkey {
    uint32_t root, layer, first;
};

static int cmp_gkey(const void *a, const void *b)
{
    const struct gkey *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer > y->layer ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* Scratch for assembly, reusing planner arrays that pass 3 is done with:
 * stamp marks entries of the current group (g + 1), cand collects them;
 * `mark2` and `rflags` are fresh. */
struct assembly {
    struct vec32 members, refs;
    uint32_t *gid;    /* per root: group index */
    uint32_t *mark2;  /* per node: group + 1 whose input list holds it */
    uint8_t *rflags;  /* per recomputed node: phases it is read in */
    uint32_t *ncopy;  /* per recomputed node: groups inlining it */
};

static int assemble_group(struct planner *P, struct assembly *A, struct jit_plan *pl,
                          uint32_t gi, uint32_t root)
{
    struct jit_group *G = &pl->groups[gi];
    uint32_t tag = gi + 1, cnt = 0;
    /* Members, then the closure of recomputed nodes they read. */
    for (uint32_t m = P->head[root]; m != NONE; m = P->next[m]) {
        P->stamp[m] = tag;
        P->cand[cnt++] = m;
    }
    uint32_t nreal = cnt;
    for (uint32_t k = 0; k < cnt; k++) {
        const struct ir_node *nd = node(P, P->cand[k]);
        for (int j = 0; j < nd->nin; j++) {
            uint32_t q = nd->in[j];
            if (P->recomp[q] && P->stamp[q] != tag) {
                P->stamp[q] = tag;
                A->rflags[q] = 0;
                P->cand[cnt++] = q;
            }
        }
    }
    /* Phases recomputed copies are read in: members first, then copies in
     * descending order (a copy's inputs have lower indices). */
    for (uint32_t k = 0; k < nreal; k++) {
        uint32_t m = P->cand[k];
        uint8_t ph = m == P->rnode[root] ? JIT_MEMBER_MAIN : P->phase[m];
        for (int j = 0; j < node(P, m)->nin; j++)
            if (P->recomp[node(P, m)->in[j]])
                A->rflags[node(P, m)->in[j]] |= ph;
    }
    qsort(P->cand, cnt, sizeof(uint32_t), cmp_u32);
    for (uint32_t k = cnt; k-- > 0;) {
        uint32_t q = P->cand[k];
        if (!P->recomp[q])
            continue;
        for (int j = 0; j < node(P, q)->nin; j++)
            if (P->recomp[node(P, q)->in[j]])
                A->rflags[node(P, q)->in[j]] |= A->rflags[q];
    }
    G->member0 = A->members.n;
    G->nmembers = cnt;
    for (uint32_t k = 0; k < cnt; k++) {
        uint32_t m = P->cand[k];
        uint8_t f;
        if (P->recomp[m]) {
            f = A->rflags[m];
            if (A->ncopy[m]++ == 0)
                pl->nodes[m].group = (int32_t) gi;
        } else {
            f = P->phase[m] | (P->mat[m] ? JIT_MEMBER_SINK : 0);
            pl->nodes[m].group = (int32_t) gi;
        }
        if (vec_push(&A->members, m, f, true) < 0)
            return -1;
    }
    G->sink0 = A->refs.n;
    for (uint32_t k = 0; k < cnt; k++)
        if (!P->recomp[P->cand[k]] && P->mat[P->cand[k]] &&
            vec_push(&A->refs, P->cand[k], 0, false) < 0)
            return -1;
    G->nsinks = A->refs.n - G->sink0;
    /* Input buffers: inputs of the graph and other groups' members. */
    G->input0 = A->refs.n;
    for (uint32_t k = 0; k < cnt; k++) {
        const struct ir_node *nd = node(P, P->cand[k]);
        for (int j = 0; j < nd->nin; j++) {
            uint32_t q = nd->in[j];
            if (P->stamp[q] == tag || A->mark2[q] == tag)
                continue;
            A->mark2[q] = tag;
            if (vec_push(&A->refs, q, 0, false) < 0)
                return -1;
        }
    }
    G->ninputs = A->refs.n - G->input0;
    qsort(A->refs.v + G->input0, G->ninputs, sizeof(uint32_t), cmp_u32);
    /* Kind and iteration spaces. */
    const struct ir_node *sp = node(P, P->space[root]);
    G->kind = P->kind[root];
    G->layer = P->layer[root];
    G->rank = sp->rank;
    G->space = P->space[root];
    memcpy(G->shape, sp->shape, sizeof(G->shape));
    G->reduce = P->rnode[root] == NONE ? -1 : (int64_t) P->rnode[root];
    if (P->rnode[root] != NONE) {
        const struct ir_node *rd = node(P, P->rnode[root]);
        G->out_rank = rd->rank;
        memcpy(G->out_shape, rd->shape, sizeof(G->out_shape));
    }
    return 0;
}

static int assemble(struct planner *P, struct jit_plan *pl)
{
    struct assembly A;
    memset(&A, 0, sizeof(A));
    bool bad = false;
    A.gid = zalloc(P->n, sizeof(uint32_t), &bad);
    A.mark2 = zalloc(P->n, sizeof(uint32_t), &bad);
    A.rflags = zalloc(P->n, 1, &bad);
    A.ncopy = zalloc(P->n, sizeof(uint32_t), &bad);
    struct gkey *keys = zalloc(P->n, sizeof(struct gkey), &bad);
    pl->nodes = zalloc(P->n, sizeof(struct jit_plan_node), &bad);
    int rc = -1;
    if (bad)
        goto out;
    pl->nnodes = P->n;
    uint32_t ng = 0;
    for (uint32_t i = 0; i < P->n; i++) {
        pl->nodes[i].group = -1;
        A.gid[i] = NONE;
        P->stamp[i] = 0; /* pass 3 is done with it */
    }
    for (uint32_t i = 0; i < P->n; i++) {
        if (!P->live[i] || P->recomp[i] || jit_op_is_input(node(P, i)->op))
            continue;
        uint32_t r = find(P, i);
        if (A.gid[r] == NONE) {
            A.gid[r] = ng;
            keys[ng++] = (struct gkey){.root = r, .layer = P->layer[r], .first = i};
        }
        /* Materialised: an output, or read by another group. */
        P->mat[i] = out_of(P, i);
        for (uint32_t e = P->cstart[i]; e < P->cstart[i + 1]; e++)
            if (find(P, P->cons[e]) != r)
                P->mat[i] = 1;
    }
    qsort(keys, ng, sizeof(keys[0]), cmp_gkey);
    pl->groups = zalloc(ng, sizeof(struct jit_group), &bad);
    if (bad)
        goto out;
    pl->ngroups = ng;
    for (uint32_t gi = 0; gi < ng; gi++)
        if (assemble_group(P, &A, pl, gi, keys[gi].root) < 0)
            goto out;
    for (uint32_t i = 0; i < P->n; i++) {
        struct jit_plan_node *pn = &pl->nodes[i];
        pn->output = out_of(P, i);
        if (!P->live[i])
            pn->role = JIT_NODE_DEAD;
        else if (jit_op_is_input(node(P, i)->op))
            pn->role = JIT_NODE_INPUT;
        else if (P->recomp[i] && A.ncopy[i] > 1)
            pn->role = JIT_NODE_RECOMPUTED;
        else {
            pn->role = JIT_NODE_MEMBER;
            pn->materialised = P->mat[i];
        }
    }
    for (uint32_t k = 0; k < A.members.n; k++)
        if (pl->nodes[A.members.v[k]].role == JIT_NODE_RECOMPUTED)
            A.members.f[k] |= JIT_MEMBER_RECOMPUTED;
    pl->members = A.members.v;
    pl->member_flags = A.members.f;
    pl->nmembers = A.members.n;
    pl->refs = A.refs.v;
    pl->nrefs = A.refs.n;
    A.members.v = A.refs.v = NULL;
    A.members.f = NULL;
    rc = 0;
out:
    free(A.members.v);
    free(A.members.f);
    free(A.refs.v);
    free(A.gid);
    free(A.mark2);
    free(A.rflags);
    free(A.ncopy);
    free(keys);
    return rc;
}

/* ---- entry points ------------------------------------------------------- */

void jit_plan_init(struct jit_plan *p)
{
    memset(p, 0, sizeof(*p));
}

void jit_plan_fini(struct jit_plan *p)
{
    free(p->nodes);
    free(p->groups);
    free(p->members);
    free(p->member_flags);
    free(p->refs);
    memset(p, 0, sizeof(*p));
}

static int fail(struct ir_error *err, int code, const char *msg)
{
    if (err != NULL) {
        err->code = code;
        err->node = -1;
        snprintf(err->field, sizeof(err->field), "graph");
        snprintf(err->message, sizeof(err->message), "fusion: %s", msg);
    }
    return code;
}

int jit_fuse_plan(const struct ir_graph *g, const bool *is_output, struct jit_plan *out,
                  struct ir_error *err)
{
    jit_plan_init(out);
    if (g->count > KILN_LIMIT_NODES)
        return fail(err, KILN_ELIMIT, "graph has more nodes than KILN_LIMIT_NODES");
    struct planner P;
    memset(&P, 0, sizeof(P));
    P.g = g;
    P.out = is_output;
    P.n = g->count;
    int rc = KILN_ENOMEM;
    if (planner_alloc(&P) < 0)
        goto done;
    mark_live(&P);
    build_consumers(&P);
    mark_recompute(&P);
    for (uint32_t p = P.n; p-- > 0;)
        if (P.live[p] && !P.recomp[p] && !jit_op_is_input(node(&P, p)->op))
            plan_node(&P, p);
    if (assemble(&P, out) < 0)
        goto done;
    for (uint32_t gi = 0; gi < out->ngroups; gi++)
        out->groups[gi].signature = jit_group_signature(g, out, gi);
    out->signature = jit_plan_signature(g, out);
    rc = KILN_OK;
done:
    planner_free(&P);
    if (rc != KILN_OK) {
        jit_plan_fini(out);
        return fail(err, rc, "out of memory while planning");
    }
    return KILN_OK;
}
