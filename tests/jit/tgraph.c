/* tgraph.c: see tgraph.h. */
#include "tgraph.h"

#include <check.h>
#include <string.h>


void tg_init(struct tg *t)
{
    memset(t, 0, sizeof(*t));
    ir_graph_init(&t->g);
    jit_plan_init(&t->plan);
}

void tg_fini(struct tg *t)
{
    jit_plan_fini(&t->plan);
    ir_graph_fini(&t->g);
}

int ok(struct tg *t, int r)
{
    ck_assert_msg(r >= 0, "constructor refused: %s: %s", t->err.field, t->err.message);
    ck_assert_int_lt(r, MAXN);
    return r;
}

int ext(struct tg *t, int rank, const int64_t *shape)
{
    return ok(t, ir_add_extern(&t->g, IR_DTYPE_FLOAT32, rank, shape, &t->err));
}

int un(struct tg *t, enum ir_op op, int x)
{
    return ok(t, ir_add_unary(&t->g, op, x, &t->err));
}

int bin(struct tg *t, enum ir_op op, int a, int b)
{
    return ok(t, ir_add_binary(&t->g, op, a, b, &t->err));
}

int bcast(struct tg *t, int x, int rank, const int64_t *shape, uint16_t dims)
{
    return ok(t, ir_add_broadcast(&t->g, x, rank, shape, dims, &t->err));
}

int red(struct tg *t, enum ir_reduce_op op, int x, uint16_t dims, bool keep)
{
    return ok(t, ir_add_reduce(&t->g, op, x, dims, keep, &t->err));
}

int cnst(struct tg *t, int rank, const int64_t *shape, double v)
{
    struct ir_scalar s = {.f = v};
    return ok(t, ir_add_const(&t->g, IR_DTYPE_FLOAT32, rank, shape, s, &t->err));
}

int reindex(struct tg *t, int x, int rank, const int64_t *shape, int nexprs,
                   const char *const *exprs, int nextras, const int *extras)
{
    struct ir_reindex_text rt = {.nexprs = nexprs, .nextras = nextras, .extras = extras};
    for (int d = 0; d < nexprs; d++) {
        rt.exprs[d] = exprs[d];
        rt.expr_len[d] = strlen(exprs[d]);
    }
    return ok(t, ir_add_reindex(&t->g, x, rank, shape, &rt, &t->err));
}

int reindex_text(struct ir_graph *g, int op, int x, int rank, const int64_t *shape, int nexprs,
                 const char *const *exprs, int nconds, const char *const *conds, int nextras,
                 const int *extras, struct ir_scalar ovf)
{
    struct ir_error err;
    struct ir_reindex_text t = {.nexprs = nexprs, .nconds = nconds, .nextras = nextras,
                                .extras = extras, .overflow = ovf};
    size_t cl[8];
    for (int d = 0; d < nexprs; d++) {
        t.exprs[d] = exprs[d];
        t.expr_len[d] = strlen(exprs[d]);
    }
    for (int k = 0; k < nconds; k++)
        cl[k] = strlen(conds[k]);
    t.conds = conds;
    t.cond_len = cl;
    int r = op ? ir_add_reindex_reduce(g, op, x, rank, shape, &t, &err)
               : ir_add_reindex(g, x, rank, shape, &t, &err);
    ck_assert_msg(r >= 0, "reindex refused: %s %s", err.field, err.message);
    return r;
}

void build_broadcasting(struct ir_graph *g, int dt)
{
    struct ir_error err;
    int64_t s31[2] = {3, 1}, s34[2] = {3, 4}, s4[1] = {4}, s234[3] = {2, 3, 4};
    int a = ir_add_extern(g, dt, 2, s31, &err);
    int b = ir_add_extern(g, dt, 1, s4, &err);
    int c = ir_add_extern(g, dt, 0, NULL, &err);
    int ab = ir_add_broadcast(g, a, 2, s34, 0, &err);
    int bb = ir_add_broadcast(g, b, 2, s34, 1u << 0, &err);
    int cb = ir_add_broadcast(g, c, 2, s34, 3u, &err);
    ck_assert_int_ge(cb, 0);
    int w = ir_add_where(g, ab, bb, cb, &err);
    ck_assert_int_ge(w, 0);
    ck_assert_int_ge(ir_add_broadcast(g, w, 3, s234, 1u << 0, &err), 0);
    int m = ir_add_binary(g, IR_OP_MAXIMUM, ab, bb, &err);
    if (m >= 0)
        ck_assert_int_ge(ir_add_binary(g, IR_OP_MUL, m, cb, &err), 0);
}

void build_sources(struct ir_graph *g, const uint8_t bytes[60])
{
    struct ir_error err;
    int64_t sh[3] = {4, 3, 5}, fl[2] = {12, 5};
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_scalar v = {.i = dt == IR_DTYPE_BOOL ? 1 : 100, .f = -0.0};
        ck_assert_int_ge(ir_add_const(g, dt, 3, sh, v, &err), 0);
    }
    for (int d = 0; d < 3; d++) {
        ck_assert_int_ge(ir_add_index(g, IR_DTYPE_INT32, 3, sh, d, &err), 0);
        ck_assert_int_ge(ir_add_index(g, IR_DTYPE_INT64, 3, sh, d, &err), 0);
    }
    for (int dist = 1; dist <= 2; dist++) {
        ck_assert_int_ge(ir_add_random(g, IR_DTYPE_FLOAT32, 3, sh, dist, 7, 1000, &err), 0);
        int r = ir_add_random(g, IR_DTYPE_FLOAT64, 3, sh, dist, 99, UINT64_MAX - 5, &err);
        ck_assert_int_ge(r, 0);
        int rs = ir_add_reshape(g, r, 2, fl, &err);
        ck_assert_int_ge(ir_add_unary(g, IR_OP_EXP, rs, &err), 0);
    }
    int x = ir_add_extern(g, IR_DTYPE_BOOL, 3, sh, &err);
    ck_assert_int_ge(ir_add_reshape(g, x, 2, fl, &err), 0); /* bools canonicalised */
    int arr = ir_add_array(g, IR_DTYPE_INT8, 3, sh, bytes, 60, &err);
    ck_assert_int_ge(ir_add_reshape(g, arr, 2, fl, &err), 0);
}

void build_reindex(struct ir_graph *g, int dt)
{
    struct ir_error err;
    int64_t xs[2] = {4, 5}, ys[3] = {3, 6, 2}, is[1] = {6};
    int x = ir_add_extern(g, dt, 2, xs, &err);
    int ix = ir_add_extern(g, IR_DTYPE_INT32, 1, is, &err);
    const char *ex[2] = {"i0 + i2 - 1", "@e0(i1) % 7"};
    const char *co[1] = {"i1 == 4"};
    struct ir_scalar ovf = {.i = 1, .f = -7.25};
    int r = reindex_text(g, 0, x, 3, ys, 2, ex, 1, co, 1, &ix, ovf);
    int n = ir_add_unary(g, IR_OP_LOGICAL_NOT, r, &err);
    int64_t ts[3] = {2, 6, 3};
    const char *tx[3] = {"i2", "yshape1 - 1 - i1", "i0"};
    reindex_text(g, 0, n, 3, ts, 3, tx, 0, NULL, 0, NULL, (struct ir_scalar){0});
}

int build_reindex_reduce(struct ir_graph *g, int op, int dt)
{
    struct ir_error err;
    int64_t xs[2] = {6, 5}, ys[2] = {4, 3}, es[2] = {6, 5};
    int x = ir_add_extern(g, dt, 2, xs, &err);
    int e = ir_add_extern(g, IR_DTYPE_INT64, 2, es, &err);
    const char *ex[2] = {"i0 / 2 + @e0(i0, i1) % 2", "i1 - 1"};
    const char *co[1] = {"i0 == 5 && i1 == 4"};
    int x2 = ir_add_unary(g, IR_OP_ABS, x, &err);
    ck_assert_int_ge(x2, 0);
    reindex_text(g, op, x2, 2, ys, 2, ex, 1, co, 1, &e, (struct ir_scalar){0});
    return x;
}

uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random DAG of element-wise, broadcast, reshape, reindex and reduce
 * nodes over shapes [A], [A,B], [A,1], [A*B] and []; the same seed gives the
 * same structure at any sizes A != B (both > 1). */
void random_graph(struct tg *t, uint64_t seed, int64_t A, int64_t B, int nnodes)
{
    int64_t sh[5][2] = {{A, 0}, {A, B}, {A, 1}, {A * B, 0}, {0, 0}};
    const int rk[5] = {1, 2, 2, 1, 0};
    int cls[MAXN];
    uint64_t s = seed;
    int cnt = 0;
    while (t->g.count < (uint32_t) nnodes) {
        int pick = (int) (rng(&s) % 12), n = -1;
        int any = cnt ? (int) (rng(&s) % (uint64_t) cnt) : -1;
        if (cnt < 3 || pick == 0) {
            int c = (int) (rng(&s) % 5);
            n = rng(&s) % 3 ? ext(t, rk[c], sh[c]) : cnst(t, rk[c], sh[c], 0.5);
            cls[n] = c;
        } else if (pick <= 2) {
            const enum ir_op u[] = {IR_OP_EXP, IR_OP_NEG, IR_OP_TANH, IR_OP_ABS};
            n = un(t, u[rng(&s) % 4], any);
            cls[n] = cls[any];
        } else if (pick <= 5) {
            /* A partner of the same shape class; late nodes preferred. */
            int other = -1;
            for (int tries = 0; tries < 8 && other < 0; tries++) {
                int c = (int) (rng(&s) % (uint64_t) cnt);
                c = c > cnt / 2 ? c : (int) (cnt - 1 - rng(&s) % (uint64_t) (cnt / 2 + 1));
                if (cls[c] == cls[any])
                    other = c;
            }
            if (other < 0)
                other = any;
            const enum ir_op b[] = {IR_OP_ADD, IR_OP_MUL, IR_OP_SUB, IR_OP_MAXIMUM};
            n = bin(t, b[rng(&s) % 4], any, other);
            cls[n] = cls[any];
        } else if (pick <= 7) {
            if (cls[any] == 4)
                n = bcast(t, any, 1, sh[0], 1u << 0);
            else if (cls[any] == 0)
                n = bcast(t, any, 2, sh[1], 1u << 1);
            else if (cls[any] == 2)
                n = bcast(t, any, 2, sh[1], 0);
            else if (cls[any] == 3)
                n = ok(t, ir_add_reshape(&t->g, any, 2, sh[1], &t->err));
            else
                n = ok(t, ir_add_reshape(&t->g, any, 1, sh[3], &t->err));
            cls[n] = cls[any] == 1 ? 3 : cls[any] == 4 ? 0 : 1;
        } else if (pick <= 9) {
            const enum ir_reduce_op r[] = {IR_REDUCE_ADD, IR_REDUCE_MAX};
            if (cls[any] == 1) {
                bool keep = rng(&s) % 2;
                n = red(t, r[rng(&s) % 2], any, 1u << 1, keep);
                cls[n] = keep ? 2 : 0;
            } else if (cls[any] == 3 || cls[any] == 0) {
                n = red(t, r[rng(&s) % 2], any, 1u << 0, false);
                cls[n] = 4;
                if (rng(&s) % 2) {
                    n = bcast(t, n, 1, sh[cls[any]], 1u << 0);
                    cls[n] = cls[any];
                }
            } else
                continue;
        } else if (pick == 10 && cls[any] == 0) {
            const char *ex[1] = {"xshape0-1-i0"}; /* reverse */
            n = reindex(t, any, 1, sh[0], 1, ex, 0, NULL);
            cls[n] = 0;
        } else
            continue;
        cnt = (int) t->g.count;
    }
    memset(t->out, 0, sizeof(t->out));
    t->out[cnt - 1] = true;
    int extra = (int) (rng(&s) % 4);
    for (int k = 0; k < extra; k++)
        t->out[rng(&s) % (uint64_t) cnt] = true;
}

