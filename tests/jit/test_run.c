/* test_run.c: the JIT executor against the reference interpreter.
 *
 * Every op and dtype pair the constructors allow is generated, compiled
 * with libtcc and run on random data with special values (NaN, infinities,
 * signed zeros, extreme integers), and its bytes are compared with the
 * interpreter's, on boundary shapes too (rank 0, zero-size dims, size-1
 * broadcasting). Then fused graphs: random DAGs, softmax, chains, the
 * cache behaviour, the kernel counts, and the rule that no text from a
 * graph reaches generated source. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "convgraph.h"
#include "fuse.h"
#include "interp.h"
#include "ir.h"
#include "kiln_err.h"
#include "run.h"
#include "tgraph.h"

static struct jit_compiler comp;
static struct jit_runtime *rt;
static struct jit_mem *tmem; /* intermediates of every compared run */

static void setup(void)
{
    ck_assert_int_eq(jit_compiler_init(&comp), KILN_OK);
    struct jit_runtime_opts o = {.compiler = &comp, .threads = 2};
    ck_assert_int_eq(jit_runtime_new(&o, &rt), KILN_OK);
    tmem = jit_mem_new((size_t) 64 << 20);
    ck_assert_ptr_nonnull(tmem);
}

static void teardown(void)
{
    jit_runtime_free(rt);
    rt = NULL;
    jit_mem_unref(tmem);
    tmem = NULL;
    jit_compiler_fini(&comp);
}

/* ---- data ---------------------------------------------------------------- */

static uint64_t seed_state = 0x243f6a8885a308d3ull;

static uint64_t next(void)
{
    return rng(&seed_state);
}

static void fill(enum ir_dtype dt, void *p, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        uint64_t r = next();
        switch (dt) {
        case IR_DTYPE_BOOL:
            ((uint8_t *) p)[k] = r % 4 == 0 ? (uint8_t) (r >> 8) : (uint8_t) (r >> 8 & 1);
            break;
        case IR_DTYPE_INT8:
        case IR_DTYPE_UINT8:
            ((uint8_t *) p)[k] = (uint8_t) (r % 3 ? r % 7 - 3 : r >> 8);
            break;
        case IR_DTYPE_INT32:
            ((int32_t *) p)[k] = (int32_t) (r % 3 ? (int64_t) (r % 11) - 5 : (int64_t) (r >> 16));
            break;
        case IR_DTYPE_INT64:
            ((int64_t *) p)[k] = r % 3 ? (int64_t) (r % 13) - 6 : (int64_t) (r ^ (r << 40));
            break;
        default: {
            static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e30, -1e-30,
                                             INFINITY, -INFINITY, NAN, 3.0, 1e300};
            double v = r % 4 == 0 ? special[(r >> 8) % 13]
                                  : ((double) (r >> 11) / 9007199254740992.0 - 0.5) * 8;
            if (dt == IR_DTYPE_FLOAT32)
                ((float *) p)[k] = (float) v;
            else
                ((double *) p)[k] = v;
            break;
        }
        }
    }
}

/* Element equality: bytes, except that any NaN equals any NaN. */
static bool same(enum ir_dtype dt, const void *a, const void *b, int64_t k)
{
    if (dt == IR_DTYPE_FLOAT32) {
        float x = ((const float *) a)[k], y = ((const float *) b)[k];
        return (isnan(x) && isnan(y)) || memcmp(&x, &y, 4) == 0;
    }
    if (dt == IR_DTYPE_FLOAT64) {
        double x = ((const double *) a)[k], y = ((const double *) b)[k];
        return (isnan(x) && isnan(y)) || memcmp(&x, &y, 8) == 0;
    }
    size_t sz = ir_dtype_size(dt);
    return memcmp((const char *) a + k * sz, (const char *) b + k * sz, sz) == 0;
}

/* Runs g on random externs through both executors and compares every
 * marked output (all nodes when out is NULL). Returns the run info. */
static struct jit_run_info compare(const struct ir_graph *g, const bool *out)
{
    bool *marks = calloc(g->count + 1, 1);
    for (uint32_t i = 0; i < g->count; i++)
        marks[i] = out ? out[i] : true;
    void **ext = calloc(g->nextern + 1, sizeof(void *));
    for (uint32_t i = 0; i < g->count; i++) {
        const struct ir_node *nd = &g->nodes[i];
        if (nd->op != IR_OP_EXTERN)
            continue;
        ext[nd->attr.ext.slot] = malloc((size_t) nd->numel * ir_dtype_size(nd->dtype) + 1);
        fill(nd->dtype, ext[nd->attr.ext.slot], nd->numel);
    }
    void **want = NULL, **got = NULL;
    struct ir_error err;
    ck_assert_int_eq(ir_interp_run(g, (const void *const *) ext, &want, &err), KILN_OK);
    struct jit_run_info info;
    int rc = jit_run(rt, g, marks, (const void *const *) ext, tmem, SIZE_MAX, &got, &info, &err);
    ck_assert_msg(rc == KILN_OK, "jit_run: %d %s: %s", rc, err.field, err.message);
    for (uint32_t i = 0; i < g->count; i++) {
        if (!marks[i])
            continue;
        const struct ir_node *nd = &g->nodes[i];
        ck_assert_ptr_nonnull(got[i]);
        for (int64_t k = 0; k < nd->numel; k++)
            ck_assert_msg(same(nd->dtype, want[i], got[i], k),
                          "node %u (%s, %s) differs at element %lld", i, ir_op_name(nd->op),
                          ir_dtype_name(nd->dtype), (long long) k);
    }
    ir_interp_free(g, want);
    jit_run_free(g, got);
    for (uint32_t k = 0; k < g->nextern; k++)
        free(ext[k]);
    free(ext);
    free(marks);
    return info;
}

static const int64_t shapes[][3] = {{0}, {7}, {0}, {3, 5}, {2, 3, 4}};
static const int ranks[] = {0, 1, 1, 2, 3};
#define NSHAPES 5

/* ---- element-wise ops ----------------------------------------------------- */

START_TEST(unary_ops)
{
    int tried = 0;
    for (int op = IR_OP_NEG; op <= IR_OP_BITWISE_NOT; op++)
        for (int dt = 1; dt < IR_DTYPE_COUNT; dt++)
            for (int s = 0; s < NSHAPES; s++) {
                struct ir_graph g;
                struct ir_error err;
                ir_graph_init(&g);
                int x = ir_add_extern(&g, dt, ranks[s], shapes[s], &err);
                if (ir_add_unary(&g, op, x, &err) >= 0) {
                    compare(&g, NULL);
                    tried++;
                }
                ir_graph_fini(&g);
            }
    ck_assert_int_gt(tried, 200);
}
END_TEST

START_TEST(casts)
{
    for (int from = 1; from < IR_DTYPE_COUNT; from++)
        for (int to = 1; to < IR_DTYPE_COUNT; to++) {
            struct ir_graph g;
            struct ir_error err;
            ir_graph_init(&g);
            int64_t sh[1] = {257};
            int x = ir_add_extern(&g, from, 1, sh, &err);
            ck_assert_int_ge(ir_add_cast(&g, x, to, &err), 0);
            compare(&g, NULL);
            ir_graph_fini(&g);
        }
}
END_TEST

START_TEST(binary_ops)
{
    int tried = 0;
    for (int op = IR_OP_ADD; op <= IR_OP_SHR; op++)
        for (int dt = 1; dt < IR_DTYPE_COUNT; dt++)
            for (int s = 0; s < NSHAPES; s++) {
                struct ir_graph g;
                struct ir_error err;
                ir_graph_init(&g);
                int a = ir_add_extern(&g, dt, ranks[s], shapes[s], &err);
                int b = ir_add_extern(&g, dt, ranks[s], shapes[s], &err);
                if (ir_add_binary(&g, op, a, b, &err) >= 0) {
                    compare(&g, NULL);
                    tried++;
                }
                ir_graph_fini(&g);
            }
    ck_assert_int_gt(tried, 500);
}
END_TEST

/* A size-1 dim stretched by broadcast_to, a new dim, and a scalar. */
START_TEST(broadcasting)
{
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_graph g;
        ir_graph_init(&g);
        build_broadcasting(&g, dt);
        compare(&g, NULL);
        ir_graph_fini(&g);
    }
}
END_TEST

START_TEST(where_every_dtype)
{
    for (int cd = 1; cd < IR_DTYPE_COUNT; cd++)
        for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
            struct ir_graph g;
            struct ir_error err;
            ir_graph_init(&g);
            int64_t sh[2] = {5, 3};
            int c = ir_add_extern(&g, cd, 2, sh, &err);
            int a = ir_add_extern(&g, dt, 2, sh, &err);
            int b = ir_add_extern(&g, dt, 2, sh, &err);
            ck_assert_int_ge(ir_add_where(&g, c, a, b, &err), 0);
            compare(&g, NULL);
            ir_graph_fini(&g);
        }
}
END_TEST

/* ---- sources and views ---------------------------------------------------- */

START_TEST(sources)
{
    struct ir_graph g;
    ir_graph_init(&g);
    uint8_t bytes[60];
    fill(IR_DTYPE_INT8, bytes, 60);
    build_sources(&g, bytes);
    compare(&g, NULL);
    ir_graph_fini(&g);
}
END_TEST

/* ---- reductions -------------------------------------------------------------- */

START_TEST(reductions)
{
    static const int64_t sh[][3] = {{2, 3, 4}, {3, 0, 2}, {1, 1, 5}};
    int tried = 0;
    for (int op = IR_REDUCE_ADD; op < IR_REDUCE_END; op++)
        for (int dt = 1; dt < IR_DTYPE_COUNT; dt++)
            for (int s = 0; s < 3; s++)
                for (uint16_t dims = 0; dims < 8; dims++)
                    for (int keep = 0; keep < 2; keep++) {
                        struct ir_graph g;
                        struct ir_error err;
                        ir_graph_init(&g);
                        int x = ir_add_extern(&g, dt, 3, sh[s], &err);
                        if (ir_add_reduce(&g, op, x, dims, keep, &err) >= 0) {
                            compare(&g, NULL);
                            tried++;
                        }
                        ir_graph_fini(&g);
                    }
    ck_assert_int_gt(tried, 500);
    /* Rank 0 input. */
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    int x = ir_add_extern(&g, IR_DTYPE_FLOAT32, 0, NULL, &err);
    ck_assert_int_ge(ir_add_reduce(&g, IR_REDUCE_MEAN, x, 0, false, &err), 0);
    compare(&g, NULL);
    ir_graph_fini(&g);
}
END_TEST

/* Finite data of mixed magnitudes (2^-20 .. 2^20, both signs, some exact
 * zeros of either sign), so that every order of a float sum rounds
 * differently and only the spec's order matches the interpreter. */
static void fill_mixed(enum ir_dtype dt, void *p, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        uint64_t r = next();
        double v =
            ((double) (r >> 11) / 9007199254740992.0 - 0.5) * ldexp(1.0, (int) (r % 41) - 20);
        if (r % 97 == 0)
            v = r % 2 ? -0.0 : 0.0;
        if (dt == IR_DTYPE_FLOAT32)
            ((float *) p)[k] = (float) v;
        else if (dt == IR_DTYPE_FLOAT64)
            ((double *) p)[k] = v;
        else
            ((int32_t *) p)[k] = (int32_t) (r >> 20);
    }
}

/* Output `y` of g (one extern, slot 0, filled with fill_mixed) on `r`,
 * compared byte for byte (any NaN equals any NaN) with the interpreter. */
static void compare_on(struct jit_runtime *r, const struct ir_graph *g, int y, const void *x,
                       const char *what)
{
    bool *marks = calloc(g->count, 1);
    ck_assert_ptr_nonnull(marks);
    marks[y] = true;
    const void *ext[1] = {x};
    void **want = NULL, **got = NULL;
    struct ir_error err;
    ck_assert_int_eq(ir_interp_run(g, ext, &want, &err), KILN_OK);
    int rc = jit_run(r, g, marks, ext, tmem, SIZE_MAX, &got, NULL, &err);
    ck_assert_msg(rc == KILN_OK, "%s: jit_run: %d %s", what, rc, err.message);
    const struct ir_node *nd = &g->nodes[y];
    for (int64_t k = 0; k < nd->numel; k++)
        ck_assert_msg(same(nd->dtype, want[y], got[y], k), "%s: element %lld differs", what,
                      (long long) k);
    jit_run_free(g, got);
    ir_interp_free(g, want);
    free(marks);
}

/* Long reductions with few outputs are split by blocks over the pool
 * (k_init partials, k_fini in block order); with no helper threads they
 * run whole (k_main). Both give the interpreter's bytes: the worker count
 * changes nothing. Covers the last dim reduced and kept (the tiled loop),
 * a prologue, every float op and an integer sum, and a length that is no
 * multiple of the block or the lane count. */
START_TEST(reduce_split_same_bytes)
{
    struct jit_runtime *r0 = NULL, *r3 = NULL;
    struct jit_runtime_opts o0 = {.compiler = &comp, .threads = 0};
    struct jit_runtime_opts o3 = {.compiler = &comp, .threads = 3};
    ck_assert_int_eq(jit_runtime_new(&o0, &r0), KILN_OK);
    ck_assert_int_eq(jit_runtime_new(&o3, &r3), KILN_OK);
    struct jit_runtime *rts[3] = {r0, rt, r3}; /* 1, 3 and 4 workers */
    static const struct {
        int dt, op, rank;
        int64_t shape[2];
        uint16_t dims;
        bool prologue;
    } cs[] = {
        {IR_DTYPE_FLOAT32, IR_REDUCE_ADD, 1, {3 * 65536 + 1237}, 1, false}, /* a loss */
        {IR_DTYPE_FLOAT32, IR_REDUCE_ADD, 1, {2 * 65536 + 5}, 1, true},
        {IR_DTYPE_FLOAT64, IR_REDUCE_MEAN, 2, {3, 65536 + 77}, 2, false},
        {IR_DTYPE_FLOAT32, IR_REDUCE_ADD, 2, {65536 + 4099, 3}, 1, true}, /* outer axis */
        {IR_DTYPE_FLOAT64, IR_REDUCE_MUL, 1, {2 * 65536 + 3}, 1, false},
        {IR_DTYPE_FLOAT32, IR_REDUCE_MAX, 2, {65536 + 9, 2}, 1, false},
        {IR_DTYPE_FLOAT64, IR_REDUCE_MIN, 1, {2 * 65536 + 1}, 1, true},
        {IR_DTYPE_INT32, IR_REDUCE_ADD, 1, {2 * 65536 + 17}, 1, false},
        {IR_DTYPE_FLOAT32, IR_REDUCE_ADD, 2, {3, 65536}, 3, false}, /* exactly blocks */
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        struct ir_graph g;
        struct ir_error err;
        ir_graph_init(&g);
        int x = ir_add_extern(&g, cs[c].dt, cs[c].rank, cs[c].shape, &err);
        ck_assert_int_ge(x, 0);
        int in = x;
        if (cs[c].prologue)
            in = ir_add_binary(&g, IR_OP_ADD, ir_add_binary(&g, IR_OP_MUL, x, x, &err), x, &err);
        ck_assert_int_ge(in, 0);
        int y = ir_add_reduce(&g, cs[c].op, in, cs[c].dims, false, &err);
        ck_assert_int_ge(y, 0);
        int64_t n = g.nodes[x].numel;
        void *data = malloc((size_t) n * ir_dtype_size(cs[c].dt));
        ck_assert_ptr_nonnull(data);
        fill_mixed(cs[c].dt, data, n);
        if (cs[c].op == IR_REDUCE_MUL) /* keep the product finite and inexact */
            for (int64_t k = 0; k < n; k++)
                ((double *) data)[k] = 1.0 + ldexp(((double *) data)[k], -22);
        if (cs[c].op == IR_REDUCE_MAX) /* ties of -0.0 and +0.0 across blocks */
            for (int64_t k = 0; k < n; k++)
                ((float *) data)[k] =
                    k % 3 == 0 ? ((k / 7) % 2 ? 0.0f : -0.0f) : -fabsf(((float *) data)[k]);
        for (int w = 0; w < 3; w++) {
            char what[64];
            snprintf(what, sizeof what, "case %zu, runtime %d", c, w);
            compare_on(rts[w], &g, y, data, what);
        }
        free(data);
        ir_graph_fini(&g);
    }
    jit_runtime_free(r0);
    jit_runtime_free(r3);
}
END_TEST

/* Reductions of every layout (each subset of three dims reduced, kept or
 * not) over sizes that are no multiple of the lane count or the tile of
 * 64 outputs, and rows short enough to be reduced a tile at a time, on
 * finite data where the order shows. */
START_TEST(reduce_layouts_order)
{
    static const int64_t shs[2][3] = {{5, 37, 70}, {9, 70, 3}}; /* the second: short rows */
    static const int dts[] = {IR_DTYPE_FLOAT32, IR_DTYPE_FLOAT64, IR_DTYPE_INT32};
    for (int si = 0; si < 2; si++)
        for (size_t t = 0; t < 3; t++)
            for (uint16_t dims = 1; dims < 8; dims++)
                for (int op = IR_REDUCE_ADD; op < IR_REDUCE_END; op++) {
                    if (op == IR_REDUCE_MEAN && dts[t] == IR_DTYPE_INT32)
                        continue;
                    struct ir_graph g;
                    struct ir_error err;
                    ir_graph_init(&g);
                    const int64_t *sh = shs[si];
                    int x = ir_add_extern(&g, dts[t], 3, sh, &err);
                    int e = dts[t] == IR_DTYPE_INT32 ? x : ir_add_unary(&g, IR_OP_NEG, x, &err);
                    int y = ir_add_reduce(&g, op, e, dims, dims == 5 || dims == 4, &err);
                    ck_assert_int_ge(y, 0);
                    int64_t n = sh[0] * sh[1] * sh[2];
                    void *data = malloc((size_t) n * ir_dtype_size(dts[t]));
                    ck_assert_ptr_nonnull(data);
                    fill_mixed(dts[t], data, n);
                    char what[64];
                    snprintf(what, sizeof what, "shape %d dtype %d dims %u op %d", si, dts[t], dims,
                             op);
                    compare_on(rt, &g, y, data, what);
                    free(data);
                    ir_graph_fini(&g);
                }
}
END_TEST

START_TEST(reindex_every_dtype)
{
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_graph g;
        ir_graph_init(&g);
        build_reindex(&g, dt);
        compare(&g, NULL);
        ir_graph_fini(&g);
    }
}
END_TEST

START_TEST(reindex_reduce_every_op)
{
    for (int op = IR_REDUCE_ADD; op <= IR_REDUCE_MIN; op++)
        for (int dt = 2; dt < IR_DTYPE_COUNT; dt++) {
            struct ir_graph g;
            ir_graph_init(&g);
            int x = build_reindex_reduce(&g, op, dt);
            int64_t ys[2] = {4, 3};
            /* Nothing lands: the output is the identity. */
            const char *far[2] = {"i0 + 100", "i1"};
            reindex_text(&g, op, x, 2, ys, 2, far, 0, NULL, 0, NULL, (struct ir_scalar){0});
            compare(&g, NULL);
            ir_graph_fini(&g);
        }
}
END_TEST

/* ---- fused graphs ---------------------------------------------------------------- */

START_TEST(random_graphs)
{
    for (uint64_t seed = 1; seed <= 150; seed++) {
        struct tg t;
        tg_init(&t);
        random_graph(&t, seed * 0x9e3779b97f4a7c15ull, 3 + (int64_t) (seed % 3),
                     5 + (int64_t) (seed % 4), 8 + (int) (seed * 7 % 50));
        compare(&t.g, t.out);
        tg_fini(&t);
    }
}
END_TEST

/* Random graphs over every dtype and op: each step tries a random op on
 * random earlier nodes with random attributes and keeps what the
 * constructors accept, so the mix follows the IR's own rules. */
static void random_typed_graph(struct ir_graph *g, uint64_t seed, bool *out, int nnodes)
{
    uint64_t s = seed;
    struct ir_error err;
    static const int64_t shp[4][2] = {{3, 4}, {4, 1}, {12, 0}, {1, 4}};
    static const int rks[4] = {2, 2, 1, 2};
    int tries = 0;
    while (g->count < (uint32_t) nnodes && tries++ < 20 * nnodes) {
        uint64_t r = rng(&s);
        int n = (int) g->count;
        int a = n ? (int) (rng(&s) % (uint64_t) n) : 0, b = n ? (int) (rng(&s) % (uint64_t) n) : 0,
            c = n ? (int) (rng(&s) % (uint64_t) n) : 0;
        int dt = 1 + (int) (rng(&s) % (IR_DTYPE_COUNT - 1));
        int si = (int) (rng(&s) % 4);
        switch (n < 3 ? 0 : r % 14) {
        case 0: {
            int k = (int) (rng(&s) % 4);
            if (k == 0)
                ir_add_extern(g, dt, rks[si], shp[si], &err);
            else if (k == 1)
                ir_add_const(g, dt, rks[si], shp[si],
                             (struct ir_scalar){.i = dt == IR_DTYPE_BOOL ? 1 : 3, .f = 0.75}, &err);
            else if (k == 2)
                ir_add_index(g, IR_DTYPE_INT32, rks[si], shp[si], (int) (rng(&s) % 2) % rks[si],
                             &err);
            else
                ir_add_random(g, rng(&s) % 2 ? IR_DTYPE_FLOAT32 : IR_DTYPE_FLOAT64, rks[si],
                              shp[si], 1 + (int) (rng(&s) % 2), rng(&s), rng(&s) % 1000, &err);
            break;
        }
        case 1:
        case 2:
            ir_add_unary(g, IR_OP_NEG + (int) (rng(&s) % (IR_OP_BITWISE_NOT - IR_OP_NEG + 1)), a,
                         &err);
            break;
        case 3:
            ir_add_cast(g, a, dt, &err);
            break;
        case 4:
        case 5:
        case 6:
            ir_add_binary(g, IR_OP_ADD + (int) (rng(&s) % (IR_OP_SHR - IR_OP_ADD + 1)), a, b, &err);
            break;
        case 7:
            ir_add_where(g, a, b, c, &err);
            break;
        case 8: {
            const struct ir_node *x = &g->nodes[a];
            int64_t to[KILN_LIMIT_RANK] = {2};
            if (x->rank > 3)
                break;
            for (int d = 0; d < x->rank; d++)
                to[1 + d] = x->shape[d] == 1 ? 5 : x->shape[d];
            ir_add_broadcast(g, a, x->rank + 1, to, 1u, &err);
            break;
        }
        case 9:
            ir_add_reduce(g, 1 + (int) (rng(&s) % 5), a, (uint16_t) (rng(&s) % 4),
                          rng(&s) % 2, &err);
            break;
        case 10: {
            const struct ir_node *x = &g->nodes[a];
            int64_t fl[1] = {x->numel};
            ir_add_reshape(g, a, 1, fl, &err);
            break;
        }
        case 11:
        case 12: {
            const struct ir_node *x = &g->nodes[a];
            if (x->rank != 2)
                break;
            static const char *const ex[3][2] = {
                {"xshape0 - 1 - i0", "i1"}, {"i1 % xshape0", "i0 / 2"}, {"i0", "@e0(i1)"}};
            int k = (int) (rng(&s) % 3);
            const char *const *e = ex[k];
            int64_t ys[2] = {x->shape[0], x->shape[1] + 1};
            int extra = -1;
            if (k == 2) {
                int64_t es[1] = {ys[1]};
                extra = ir_add_index(g, IR_DTYPE_INT64, 1, es, 0, &err);
            }
            struct ir_reindex_text t = {.nexprs = 2, .nextras = k == 2, .extras = &extra,
                                        .overflow = {.i = 1, .f = -1.5}};
            for (int d = 0; d < 2; d++) {
                t.exprs[d] = e[d];
                t.expr_len[d] = strlen(e[d]);
            }
            if (r % 28 < 14)
                ir_add_reindex(g, a, 2, ys, &t, &err);
            else
                ir_add_reindex_reduce(g, 1 + (int) (rng(&s) % 4), a, 2, ys, &t, &err);
            break;
        }
        default:
            break;
        }
    }
    memset(out, 0, g->count);
    out[g->count - 1] = true;
    for (int k = 0; k < 3; k++)
        out[rng(&s) % g->count] = true;
}

START_TEST(random_typed_graphs)
{
    int seen[IR_OP_END] = {0};
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct ir_graph g;
        ir_graph_init(&g);
        bool out[64];
        random_typed_graph(&g, seed * 0x2545f4914f6cdd1dull, out, 10 + (int) (seed % 30));
        for (uint32_t i = 0; i < g.count; i++)
            seen[g.nodes[i].op]++;
        compare(&g, out);
        ir_graph_fini(&g);
    }
    /* The generator reaches every kind of node. */
    static const int kinds[] = {IR_OP_RANDOM, IR_OP_INDEX, IR_OP_CONST, IR_OP_RESHAPE, IR_OP_CAST,
                                IR_OP_WHERE, IR_OP_BROADCAST_TO, IR_OP_REINDEX, IR_OP_REDUCE,
                                IR_OP_REINDEX_REDUCE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        ck_assert_msg(seen[kinds[k]] >= 10, "%s made %d times", ir_op_name(kinds[k]),
                      seen[kinds[k]]);
}
END_TEST

static int softmax(struct tg *t, int64_t n, int64_t m)
{
    int64_t sh[2] = {n, m}, r[2] = {n, 1};
    int x = ext(t, 2, sh);
    int mx = bcast(t, red(t, IR_REDUCE_MAX, x, 2, true), 2, sh, 0);
    int e = un(t, IR_OP_EXP, bin(t, IR_OP_SUB, x, mx));
    int s = red(t, IR_REDUCE_ADD, e, 2, true);
    (void) r;
    return bin(t, IR_OP_DIV, e, bcast(t, s, 2, sh, 0));
}

START_TEST(kernel_counts)
{
    /* Ten element-wise ops with broadcasts: one kernel. */
    struct tg t;
    tg_init(&t);
    int64_t sh[2] = {33, 17}, row[1] = {17};
    int x = ext(&t, 2, sh), b = ext(&t, 1, row);
    int y = x;
    for (int k = 0; k < 10; k++) {
        int o = k % 2 ? bcast(&t, b, 2, sh, 1u << 0) : cnst(&t, 2, sh, 0.25 * k);
        y = k % 3 == 2 ? un(&t, IR_OP_TANH, bin(&t, IR_OP_ADD, y, o))
                       : bin(&t, k % 2 ? IR_OP_MUL : IR_OP_ADD, y, o);
    }
    t.out[y] = true;
    struct jit_run_info info = compare(&t.g, t.out);
    ck_assert_uint_eq(info.groups, 1);
    tg_fini(&t);
    /* Softmax: at most three. */
    tg_init(&t);
    t.out[softmax(&t, 37, 29)] = true;
    info = compare(&t.g, t.out);
    ck_assert_uint_le(info.groups, 3);
    tg_fini(&t);
}
END_TEST

/* The same structure with new data, sizes and constants compiles nothing. */
START_TEST(resubmit_compiles_nothing)
{
    struct jit_runtime_stats before, after;
    for (int k = 0; k < 101; k++) {
        struct tg t;
        tg_init(&t);
        int64_t n = 10 + k % 5, m = 20 + k % 7;
        int s = softmax(&t, n, m);
        int64_t sh[2] = {n, m};
        t.out[bin(&t, IR_OP_MUL, s, cnst(&t, 2, sh, 0.5 + k))] = true;
        struct jit_run_info info = compare(&t.g, t.out);
        if (k == 0) {
            ck_assert_uint_ge(info.kernels_compiled, 1);
            jit_runtime_stats(rt, &before);
        } else {
            ck_assert_uint_eq(info.kernels_compiled, 0);
            ck_assert(info.plan_hit);
        }
        tg_fini(&t);
    }
    jit_runtime_stats(rt, &after);
    ck_assert_uint_eq(after.kernels_compiled, before.kernels_compiled);
    ck_assert_uint_ge(after.kernel_hits, before.kernel_hits + 100);
    ck_assert_uint_ge(after.plan_hits, before.plan_hits + 100);
}
END_TEST

/* The longest expressions the limits allow render and run (a balanced
 * sum of 128 terms: ~250 AST nodes, depth 8). */
START_TEST(long_expressions)
{
    char text[1024] = "i0";
    for (int level = 0; level < 7; level++) {
        char next[1024];
        snprintf(next, sizeof next, "(%s)+(%s)", text, text);
        snprintf(text, sizeof text, "%s", next);
    }
    ck_assert_uint_lt(strlen(text), 1024);
    struct ir_graph g;
    ir_graph_init(&g);
    struct ir_error err;
    int64_t xs[1] = {300}, ys[1] = {3};
    int x = ir_add_extern(&g, IR_DTYPE_FLOAT64, 1, xs, &err);
    const char *ex[1] = {text};
    const char *co[1] = {text};
    reindex_text(&g, 0, x, 1, ys, 1, ex, 1, co, 0, NULL, (struct ir_scalar){.f = 2});
    bool out[2] = {false, true};
    struct jit_run_info info = compare(&g, out);
    ck_assert_uint_eq(info.groups, 1);
    ir_graph_fini(&g);
}
END_TEST

/* Index expressions and conditions reach the source only as the AST's
 * meaning: literals the client spelled in its own way never appear. */
START_TEST(no_graph_text_in_source)
{
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    int64_t xs[2] = {4, 5}, ys[2] = {4, 5};
    int x = ir_add_extern(&g, IR_DTYPE_FLOAT32, 2, xs, &err);
    int e = ir_add_extern(&g, IR_DTYPE_INT32, 1, xs, &err);
    const char *ex[2] = {"i0 +  0000000731 * 0", "(((i1)))+0000000733*@e0(i0)*0"};
    const char *co[2] = {"i0 ==   0000000737", "xshape0<0000000739"};
    reindex_text(&g, 0, x, 2, ys, 2, ex, 2, co, 1, &e, (struct ir_scalar){.f = 0.0000000741});
    bool out[4] = {false, false, true};
    struct jit_plan p;
    jit_plan_init(&p);
    ck_assert_int_eq(jit_fuse_plan(&g, out, &p, &err), KILN_OK);
    struct jit_buf src;
    jit_buf_init(&src);
    ck_assert_int_eq(jit_codegen_group(&g, &p, 0, &src), KILN_OK);
    static const char *const marks[] = {"0000000731", "0000000733", "0000000737", "0000000739",
                                        "0000000741", "(((i1)))"};
    for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++) {
        const char *m = marks[k];
        ck_assert_msg(strstr(src.data, m) == NULL, "marker %s reached the source", m);
    }
    jit_buf_fini(&src);
    jit_plan_fini(&p);
    compare(&g, out);
    ir_graph_fini(&g);
}
END_TEST

START_TEST(quota_names_the_node)
{
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    int64_t sh[1] = {1000};
    int x = ir_add_extern(&g, IR_DTYPE_FLOAT64, 1, sh, &err);
    int y = ir_add_unary(&g, IR_OP_EXP, x, &err);
    int64_t big[2] = {1000, 1000};
    int z = ir_add_broadcast(&g, y, 2, big, 1u << 0, &err);
    int w = ir_add_reduce(&g, IR_REDUCE_ADD, z, 1u, false, &err);
    bool out[4] = {false, true, false, true};
    (void) w;
    double data[1000] = {0};
    const void *ext[1] = {data};
    void **res = NULL;
    int rc = jit_run(rt, &g, out, ext, NULL, 8000 + 4000, &res, NULL, &err);
    ck_assert_int_eq(rc, KILN_ENOMEM);
    ck_assert_int_eq(err.node, 3);
    ck_assert_ptr_null(res);
    rc = jit_run(rt, &g, out, ext, NULL, 16000, &res, NULL, &err);
    ck_assert_int_eq(rc, KILN_OK);
    for (int k = 0; k < 1000; k++)
        ck_assert(((double *) res[3])[k] == 1000.0);
    jit_run_free(&g, res);
    ir_graph_fini(&g);
}
END_TEST

/* A chain of 3000 element-wise ops is one kernel, built without deep
 * recursion; 600 alternating reshapes are too deep for codegen and are
 * refused with ELIMIT naming a node (the daemon then interprets). */
START_TEST(deep_chains)
{
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    int64_t sh[2] = {4, 5}, fl[1] = {20};
    int x = ir_add_extern(&g, IR_DTYPE_FLOAT32, 2, sh, &err);
    int y = x;
    for (int k = 0; k < 3000; k++)
        y = ir_add_binary(&g, k % 2 ? IR_OP_ADD : IR_OP_MAXIMUM, y, x, &err);
    ck_assert_int_ge(y, 0);
    bool *out = calloc(g.count, 1);
    out[y] = true;
    struct jit_run_info info = compare(&g, out);
    ck_assert_uint_eq(info.groups, 1);
    free(out);
    ir_graph_fini(&g);

    ir_graph_init(&g);
    x = ir_add_extern(&g, IR_DTYPE_FLOAT32, 2, sh, &err);
    y = ir_add_unary(&g, IR_OP_EXP, x, &err);
    for (int k = 0; k < 600; k++)
        y = k % 2 ? ir_add_reshape(&g, y, 2, sh, &err) : ir_add_reshape(&g, y, 1, fl, &err);
    y = ir_add_unary(&g, IR_OP_NEG, y, &err);
    ck_assert_int_ge(y, 0);
    out = calloc(g.count, 1);
    out[y] = true;
    float data[20] = {0};
    const void *ext[1] = {data};
    void **res = NULL;
    int rc = jit_run(rt, &g, out, ext, NULL, SIZE_MAX, &res, NULL, &err);
    ck_assert_int_eq(rc, KILN_ELIMIT);
    ck_assert_int_eq(err.node, y);
    ck_assert_ptr_null(res);
    free(out);
    ir_graph_fini(&g);
}
END_TEST

/* ---- convolution and pooling from meta-ops --------------------------------- */

struct conv_ctx {
    struct jit_run_info info;
};

static int eval_jit(void *ctx, const struct ir_graph *g, int out, const void *const *externs,
                    void *y, size_t ybytes, char *msg, size_t msglen)
{
    struct conv_ctx *cc = ctx;
    bool *marks = calloc(g->count, 1);
    marks[out] = true;
    void **res = NULL;
    struct ir_error err;
    int rc = jit_run(rt, g, marks, externs, NULL, SIZE_MAX, &res, &cc->info, &err);
    free(marks);
    if (rc != KILN_OK) {
        snprintf(msg, msglen, "jit_run: %s: %s", err.field, err.message);
        return rc;
    }
    memcpy(y, res[out], ybytes);
    jit_run_free(g, res);
    return KILN_OK;
}

/* Every conv, pooling and transposed-conv case matches the nested-loop
 * reference exactly (the JIT accumulates as the interpreter does), and a
 * conv2d is one kernel: reindex, broadcast and multiply fuse into the
 * reduction's prologue. */
START_TEST(conv_and_pooling)
{
    size_t n;
    const struct convgraph_case *cases = convgraph_cases(&n);
    ck_assert_uint_gt(n, 10);
    for (size_t k = 0; k < n; k++)
        for (int inputs = CONVGRAPH_INPUTS_EXTERN; inputs <= CONVGRAPH_INPUTS_ARRAY; inputs++) {
            struct conv_ctx cc;
            memset(&cc, 0, sizeof cc);
            struct convgraph_run_opts o = {.inputs = inputs, .seed = 17 + k, .tol = 0};
            char msg[512];
            int rc = convgraph_case_run(&cases[k], &o, eval_jit, &cc, msg, sizeof msg);
            ck_assert_msg(rc == 0, "%s", msg);
            if (cases[k].p.kind == CONVGRAPH_CONV2D)
                ck_assert_uint_eq(cc.info.groups, 1);
        }
}
END_TEST

/* Bounded caches: with room for two kernels and one plan, distinct graphs
 * evict the least recently used idle entries and still compute right. */
START_TEST(caches_evict)
{
    struct jit_runtime *small;
    struct jit_runtime_opts o = {.compiler = &comp, .threads = 1, .max_kernels = 2, .max_plans = 1};
    ck_assert_int_eq(jit_runtime_new(&o, &small), KILN_OK);
    for (int k = 0; k < 12; k++) {
        struct ir_graph g;
        struct ir_error err;
        ir_graph_init(&g);
        int64_t sh[1] = {5 + k};
        int x = ir_add_extern(&g, IR_DTYPE_FLOAT64, 1, sh, &err);
        int y = ir_add_unary(&g, k % 3 == 0 ? IR_OP_EXP : k % 3 == 1 ? IR_OP_NEG : IR_OP_ABS, x,
                             &err);
        if (k % 2)
            y = ir_add_reduce(&g, IR_REDUCE_ADD, y, 1u, false, &err);
        ck_assert_int_ge(y, 0);
        bool out[3] = {false};
        out[y] = true;
        double data[16];
        for (int i = 0; i < 16; i++)
            data[i] = i - 7.5;
        const void *ext[1] = {data};
        void **res = NULL;
        ck_assert_int_eq(jit_run(small, &g, out, ext, NULL, SIZE_MAX, &res, NULL, &err), KILN_OK);
        double want = 0;
        for (int i = 0; i < 5 + k; i++) {
            double v = k % 3 == 0 ? exp(data[i]) : k % 3 == 1 ? -data[i] : fabs(data[i]);
            if (k % 2)
                want += v;
            else
                ck_assert(((double *) res[y])[i] == v);
        }
        if (k % 2)
            ck_assert(((double *) res[y])[0] == want);
        jit_run_free(&g, res);
        ir_graph_fini(&g);
        struct jit_runtime_stats st;
        jit_runtime_stats(small, &st);
        ck_assert_uint_le(st.kernels_cached, 2);
        ck_assert_uint_le(st.plans_cached, 1);
    }
    struct jit_runtime_stats st;
    jit_runtime_stats(small, &st);
    ck_assert_uint_eq(st.plans_made, 12); /* twelve structures, each planned once */
    ck_assert_uint_gt(st.kernels_compiled, 2); /* evicted kernels were compiled again */
    jit_runtime_free(small);
}
END_TEST

/* The caching allocator hands a freed big block back for the same size
 * class, keeps small ones out, and stays within its capacity. */
START_TEST(caching_allocator)
{
    struct jit_mem *m = jit_mem_new((size_t) 1 << 20);
    void *a = jit_mem_alloc(m, 300000);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq((uintptr_t) a % 64, 0);
    memset(a, 1, 300000);
    jit_mem_free(m, a, 300000);
    ck_assert_uint_eq(jit_mem_cached(m), 303104); /* rounded to pages */
    void *b = jit_mem_alloc(m, 300000 - 100); /* the same class */
    ck_assert_ptr_eq(a, b);
    ck_assert_uint_eq(jit_mem_cached(m), 0);
    void *c = jit_mem_alloc(m, 500000), *d = jit_mem_alloc(m, 600000), *e = jit_mem_alloc(m, 100);
    jit_mem_free(m, b, 300000 - 100);
    jit_mem_free(m, c, 500000);
    jit_mem_free(m, d, 600000); /* over capacity: the oldest go */
    ck_assert_uint_le(jit_mem_cached(m), (size_t) 1 << 20);
    ck_assert_uint_ge(jit_mem_cached(m), 600000);
    jit_mem_free(m, e, 100);
    ck_assert_uint_le(jit_mem_cached(m), (size_t) 1 << 20);
    jit_mem_ref(m);
    jit_mem_unref(m);
    jit_mem_unref(m);
    void *z = jit_mem_alloc(NULL, 0);
    ck_assert_ptr_nonnull(z);
    jit_mem_free(NULL, z, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("run");
    TCase *tc = tcase_create("run");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, unary_ops);
    tcase_add_test(tc, casts);
    tcase_add_test(tc, binary_ops);
    tcase_add_test(tc, broadcasting);
    tcase_add_test(tc, where_every_dtype);
    tcase_add_test(tc, sources);
    tcase_add_test(tc, reductions);
    tcase_add_test(tc, reduce_split_same_bytes);
    tcase_add_test(tc, reduce_layouts_order);
    tcase_add_test(tc, reindex_every_dtype);
    tcase_add_test(tc, reindex_reduce_every_op);
    tcase_add_test(tc, random_graphs);
    tcase_add_test(tc, random_typed_graphs);
    tcase_add_test(tc, kernel_counts);
    tcase_add_test(tc, resubmit_compiles_nothing);
    tcase_add_test(tc, no_graph_text_in_source);
    tcase_add_test(tc, long_expressions);
    tcase_add_test(tc, quota_names_the_node);
    tcase_add_test(tc, deep_chains);
    tcase_add_test(tc, conv_and_pooling);
    tcase_add_test(tc, caching_allocator);
    tcase_add_test(tc, caches_evict);
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
