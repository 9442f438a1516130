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

