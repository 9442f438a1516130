/* test_relay.c: the relay ops (matmul, conv2d and its gradients).
 *
 * Each case builds one relay node on random data and checks three ways of
 * computing it against each other: the reference interpreter (relay_ref.c:
 * sums in double, rounded once), the JIT (jit/relay.c: oneDNN for
 * float32, the reference split over the pool otherwise) and the meta-op
 * lowering (lower.c, run by the interpreter) — within float tolerance,
 * since each sums in its own order. Then the relay's backward rules are
 * checked against the meta-op rules of the lowered graph, and a relay
 * inside a graph still lets its element-wise neighbours fuse. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"
#include "grad.h"
#include "interp.h"
#include "ir.h"
#include "kiln_err.h"
#include "lower.h"
#include "relay.h"
#include "relay_ref.h"
#include "run.h"

static struct jit_compiler comp;
static struct jit_runtime *rt;

static void setup(void)
{
    ck_assert_int_eq(jit_compiler_init(&comp), KILN_OK);
    struct jit_runtime_opts o = {.compiler = &comp, .threads = 2};
    ck_assert_int_eq(jit_runtime_new(&o, &rt), KILN_OK);
}

static void teardown(void)
{
    jit_runtime_free(rt);
    rt = NULL;
    jit_compiler_fini(&comp);
}

static uint64_t state = 0x9e3779b97f4a7c15ull;

static double urand(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double) (state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static int array(struct ir_graph *g, enum ir_dtype dt, int rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    size_t es = dt == IR_DTYPE_FLOAT32 ? 4 : 8;
    void *p = malloc((size_t) (n ? n : 1) * es);
    for (int64_t k = 0; k < n; k++) {
        if (dt == IR_DTYPE_FLOAT32)
            ((float *) p)[k] = (float) urand();
        else
            ((double *) p)[k] = urand();
    }
    struct ir_error err;
    int r = ir_add_array(g, dt, rank, shape, p, (size_t) n * es, &err);
    free(p);
    ck_assert_int_ge(r, 0);
    return r;
}

static double at(const struct ir_node *n, const void *p, int64_t k)
{
    return n->dtype == IR_DTYPE_FLOAT32 ? ((const float *) p)[k] : ((const double *) p)[k];
}

/* max |a - b| / (max |b| + 1e-30) over the node's elements */
static double relerr(const struct ir_node *n, const void *a, const void *b)
{
    double e = 0, m = 0;
    for (int64_t k = 0; k < n->numel; k++) {
        double d = fabs(at(n, a, k) - at(n, b, k));
        e = d > e ? d : e;
        m = fabs(at(n, b, k)) > m ? fabs(at(n, b, k)) : m;
    }
    return e / (m + 1e-30);
}

/* The value of node `node` by the interpreter (from `g`'s run). */
static void **interp(const struct ir_graph *g)
{
    void **out = NULL;
    struct ir_error err;
    ck_assert_int_eq(ir_interp_run(g, NULL, &out, &err), KILN_OK);
    return out;
}

static void **jit(const struct ir_graph *g, int node, struct jit_run_info *info)
{
    bool *is_out = calloc(g->count, 1);
    is_out[node] = true;
    void **out = NULL;
    struct ir_error err;
    int rc = jit_run(rt, g, is_out, NULL, NULL, (size_t) 1 << 32, &out, info, &err);
    ck_assert_msg(rc == KILN_OK, "jit_run: %s", err.message);
    free(is_out);
    return out;
}

/* Reference, JIT and lowering agree on relay node `r` of g. */
static void compare_three(struct ir_graph *g, int r, const char *what)
{
    const struct ir_node *n = &g->nodes[r];
    double tol = n->dtype == IR_DTYPE_FLOAT32 ? 2e-5 : 1e-12;
    struct jit_run_info info;
    void **ref = interp(g);
    void **fast = jit(g, r, &info);
    ck_assert_msg(relerr(n, fast[r], ref[r]) <= tol, "%s: jit vs reference %g", what,
                  relerr(n, fast[r], ref[r]));
    ir_interp_free(g, ref); /* before the graph grows: it frees one entry per node */
    jit_run_free(g, fast);
    struct ir_error err;
    int low = ir_lower_relay(g, r, &err);
    ck_assert_msg(low >= 0, "%s: lowering: %s", what, err.message);
    n = &g->nodes[r];
    void **meta = interp(g);
    ck_assert_msg(relerr(n, meta[low], meta[r]) <= tol, "%s: meta-ops vs reference %g", what,
                  relerr(n, meta[low], meta[r]));
    ir_interp_free(g, meta);
}

START_TEST(matmul_cases)
{
    static const struct { int rank; int64_t b, n, k, m; } cases[] = {
        {2, 1, 5, 7, 3}, {2, 1, 64, 33, 17}, {3, 4, 6, 5, 9}, {4, 2, 3, 8, 4},
        {2, 1, 1, 1, 1}, {2, 1, 4, 0, 3}, {2, 1, 130, 70, 66},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int dt = IR_DTYPE_FLOAT32; dt <= IR_DTYPE_FLOAT64; dt++)
            for (int t = 0; t < 4; t++) {
                bool ta = t & 1, tb = t & 2;
                int r = cases[c].rank;
                int64_t as[4], bs[4];
                for (int d = 0; d < r - 2; d++)
                    as[d] = bs[d] = cases[c].b + d;
                as[r - 2] = ta ? cases[c].k : cases[c].n;
                as[r - 1] = ta ? cases[c].n : cases[c].k;
                bs[r - 2] = tb ? cases[c].m : cases[c].k;
                bs[r - 1] = tb ? cases[c].k : cases[c].m;
                struct ir_graph g;
                ir_graph_init(&g);
                int a = array(&g, (enum ir_dtype) dt, r, as), b = array(&g, (enum ir_dtype) dt, r, bs);
                struct ir_error err;
                int y = ir_add_matmul(&g, a, b, ta, tb, &err);
                ck_assert_msg(y >= 0, "%s", err.message);
                ck_assert_int_eq(g.nodes[y].shape[r - 2], cases[c].n);
                ck_assert_int_eq(g.nodes[y].shape[r - 1], cases[c].m);
                char what[64];
                snprintf(what, sizeof what, "matmul case %zu dt %d t %d", c, dt, t);
                compare_three(&g, y, what);
                ir_graph_fini(&g);
            }
    struct jit_runtime_stats st;
    jit_runtime_stats(rt, &st);
    ck_assert_uint_gt(st.relay_runs, 0);
    if (jit_relay_has_library()) /* float32 went to the library, float64 did not */
        ck_assert(st.relay_library_runs > 0 && st.relay_library_runs < st.relay_runs);
}
END_TEST

struct ccase {
    int64_t n, c, h, w, o, kh, kw;
    struct ir_conv a;
};

static const struct ccase ccases[] = {
    {2, 3, 8, 8, 4, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}},
    {1, 4, 9, 7, 6, 3, 2, {{2, 1}, {1, 0}, {1, 2}, 2}},
    {3, 2, 5, 5, 2, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 1}},
    {2, 6, 11, 10, 6, 3, 3, {{2, 2}, {2, 1}, {2, 1}, 3}},
    {1, 3, 4, 4, 5, 4, 4, {{1, 1}, {0, 0}, {1, 1}, 1}}, /* 1x1 output */
    {2, 1, 7, 7, 1, 2, 2, {{3, 3}, {0, 0}, {1, 1}, 1}}, /* stride leaves rows unread */
};

/* x, w and dy arrays of case k; returns the forward's output shape. */
static void conv_shapes(const struct ccase *k, int64_t *xs, int64_t *ws, int64_t *ys)
{
    xs[0] = k->n, xs[1] = k->c, xs[2] = k->h, xs[3] = k->w;
    ws[0] = k->o, ws[1] = k->c / k->a.groups, ws[2] = k->kh, ws[3] = k->kw;
    ys[0] = k->n, ys[1] = k->o;
    ys[2] = ir_conv_out_dim(k->h, k->kh, k->a.stride[0], k->a.pad[0], k->a.dilation[0]);
    ys[3] = ir_conv_out_dim(k->w, k->kw, k->a.stride[1], k->a.pad[1], k->a.dilation[1]);
}

START_TEST(conv_cases)
{
    for (size_t c = 0; c < sizeof ccases / sizeof ccases[0]; c++)
        for (int dt = IR_DTYPE_FLOAT32; dt <= IR_DTYPE_FLOAT64; dt++)
            for (int op = IR_OP_CONV2D; op <= IR_OP_CONV2D_BWD_WEIGHT; op++) {
                int64_t xs[4], ws[4], ys[4];
                conv_shapes(&ccases[c], xs, ws, ys);
                struct ir_graph g;
                ir_graph_init(&g);
                enum ir_dtype d = (enum ir_dtype) dt;
                int r;
                struct ir_error err;
                if (op == IR_OP_CONV2D)
                    r = ir_add_conv(&g, op, array(&g, d, 4, xs), array(&g, d, 4, ws), 0, NULL,
                                    &ccases[c].a, &err);
                else if (op == IR_OP_CONV2D_BWD_DATA)
                    r = ir_add_conv(&g, op, array(&g, d, 4, ys), array(&g, d, 4, ws), 4, xs,
                                    &ccases[c].a, &err);
                else
                    r = ir_add_conv(&g, op, array(&g, d, 4, xs), array(&g, d, 4, ys), 4, ws,
                                    &ccases[c].a, &err);
                ck_assert_msg(r >= 0, "case %zu op %d: %s", c, op, err.message);
                char what[64];
                snprintf(what, sizeof what, "%s case %zu dt %d", ir_op_name(op), c, dt);
                compare_three(&g, r, what);
                ir_graph_fini(&g);
            }
    struct jit_runtime_stats st;
    jit_runtime_stats(rt, &st);
    if (jit_relay_has_library()) /* every float32 case is one oneDNN accepts */
        ck_assert_uint_eq(st.relay_library_runs * 2, st.relay_runs);
}
END_TEST

/* The relay backward rules give what the meta-op rules give for the same
 * function: loss = sum(relay(p, q) * s) for random s. */
static void grads_agree(struct ir_graph *g, int r, int p, int q)
{
    struct ir_error err;
    int low = ir_lower_relay(g, r, &err);
    ck_assert_int_ge(low, 0);
    const struct ir_node n = g->nodes[r];
    int s = array(g, (enum ir_dtype) n.dtype, n.rank, n.shape);
    int lr = ir_add_binary(g, IR_OP_MUL, r, s, &err);
    int ll = ir_add_binary(g, IR_OP_MUL, low, s, &err);
    uint16_t all = (uint16_t) ((1u << n.rank) - 1);
    lr = ir_add_reduce(g, IR_REDUCE_ADD, lr, all, false, &err);
    ll = ir_add_reduce(g, IR_REDUCE_ADD, ll, all, false, &err);
    ck_assert(lr >= 0 && ll >= 0);
    int targets[2] = {p, q}, gr[2], gl[2];
    uint8_t zr[2], zl[2];
    struct ir_grad_request rr = {.loss = lr, .seed = -1, .ntargets = 2, .targets = targets};
    struct ir_grad_request rl = {.loss = ll, .seed = -1, .ntargets = 2, .targets = targets};
    ck_assert_msg(ir_grad(g, &rr, gr, zr, &err) == 0, "%s", err.message);
    ck_assert_msg(ir_grad(g, &rl, gl, zl, &err) == 0, "%s", err.message);
    for (int k = 0; k < 2; k++) {
        ck_assert(!zr[k] && !zl[k]);
        ck_assert(ir_op_is_relay(g->nodes[gr[k]].op)); /* a relay's gradient is a relay */
    }
    void **v = interp(g);
    for (int k = 0; k < 2; k++) {
        const struct ir_node *gn = &g->nodes[gr[k]];
        double tol = gn->dtype == IR_DTYPE_FLOAT32 ? 2e-5 : 1e-12;
        ck_assert_msg(relerr(gn, v[gr[k]], v[gl[k]]) <= tol, "%s: grad %d differs by %g",
                      ir_op_name(n.op), k, relerr(gn, v[gr[k]], v[gl[k]]));
    }
    ir_interp_free(g, v);
}

START_TEST(gradients_match_meta_ops)
{
    struct ir_error err;
    for (int t = 0; t < 4; t++) {
        struct ir_graph g;
        ir_graph_init(&g);
        bool ta = t & 1, tb = t & 2;
        int64_t as[3] = {2, ta ? 4 : 3, ta ? 3 : 4}, bs[3] = {2, tb ? 5 : 4, tb ? 4 : 5};
        int a = array(&g, IR_DTYPE_FLOAT64, 3, as), b = array(&g, IR_DTYPE_FLOAT64, 3, bs);
        int r = ir_add_matmul(&g, a, b, ta, tb, &err);
        ck_assert_int_ge(r, 0);
        grads_agree(&g, r, a, b);
        ir_graph_fini(&g);
    }
    for (size_t c = 0; c < sizeof ccases / sizeof ccases[0]; c++)
        for (int op = IR_OP_CONV2D; op <= IR_OP_CONV2D_BWD_WEIGHT; op++) {
            int64_t xs[4], ws[4], ys[4];
            conv_shapes(&ccases[c], xs, ws, ys);
            struct ir_graph g;
            ir_graph_init(&g);
            enum ir_dtype d = IR_DTYPE_FLOAT64;
            int p, q, r;
            if (op == IR_OP_CONV2D) {
                p = array(&g, d, 4, xs), q = array(&g, d, 4, ws);
                r = ir_add_conv(&g, op, p, q, 0, NULL, &ccases[c].a, &err);
            } else if (op == IR_OP_CONV2D_BWD_DATA) {
                p = array(&g, d, 4, ys), q = array(&g, d, 4, ws);
                r = ir_add_conv(&g, op, p, q, 4, xs, &ccases[c].a, &err);
            } else {
                p = array(&g, d, 4, xs), q = array(&g, d, 4, ys);
                r = ir_add_conv(&g, op, p, q, 4, ws, &ccases[c].a, &err);
            }
            ck_assert_int_ge(r, 0);
            grads_agree(&g, r, p, q);
            ir_graph_fini(&g);
        }
}
END_TEST

/* relu(x @ w + b): the relay is a group of its own, the bias and relu one
 * kernel after it, and nothing fuses into the relay. */
START_TEST(neighbours_still_fuse)
{
    struct ir_graph g;
    ir_graph_init(&g);
    struct ir_error err;
    int64_t xs[2] = {8, 16}, ws[2] = {16, 4}, ys[2] = {8, 4};
    int x = array(&g, IR_DTYPE_FLOAT32, 2, xs), w = array(&g, IR_DTYPE_FLOAT32, 2, ws);
    int x2 = ir_add_unary(&g, IR_OP_TANH, x, &err); /* element-wise before */
    int y = ir_add_matmul(&g, x2, w, false, false, &err);
    int b = array(&g, IR_DTYPE_FLOAT32, 2, ys);
    int z = ir_add_binary(&g, IR_OP_ADD, y, b, &err);
    struct ir_scalar zero = {0};
    int c0 = ir_add_const(&g, IR_DTYPE_FLOAT32, 2, ys, zero, &err);
    int out = ir_add_binary(&g, IR_OP_MAXIMUM, z, c0, &err);
    ck_assert_int_ge(out, 0);
    bool is_out[16] = {0};
    is_out[out] = true;
    struct jit_plan p;
    ck_assert_int_eq(jit_fuse_plan(&g, is_out, &p, &err), KILN_OK);
    ck_assert_int_eq(p.ngroups, 3); /* tanh | matmul | add+max */
    int relays = 0;
    for (uint32_t k = 0; k < p.ngroups; k++) {
        const struct jit_group *G = &p.groups[k];
        if (G->kind == JIT_GROUP_RELAY) {
            relays++;
            ck_assert_int_eq(G->nmembers, 1);
            ck_assert_int_eq(p.members[G->member0], (uint32_t) y);
        }
    }
    ck_assert_int_eq(relays, 1);
    ck_assert_int_eq(p.nodes[z].group, p.nodes[out].group);
    jit_plan_fini(&p);
    struct jit_run_info info;
    void **ref = interp(&g);
    void **fast = jit(&g, out, &info);
    ck_assert_int_eq(info.launched, 3);
    ck_assert(relerr(&g.nodes[out], fast[out], ref[out]) <= 2e-5);
    ir_interp_free(&g, ref);
    jit_run_free(&g, fast);
    ir_graph_fini(&g);
}
END_TEST

START_TEST(constructors_refuse)
{
    struct ir_graph g;
    ir_graph_init(&g);
    struct ir_error err;
    int64_t s23[2] = {2, 3}, s34[2] = {3, 4}, s4[4] = {1, 2, 5, 5}, w4[4] = {3, 2, 3, 3};
    int a = array(&g, IR_DTYPE_FLOAT32, 2, s23), b = array(&g, IR_DTYPE_FLOAT32, 2, s34);
    int d = array(&g, IR_DTYPE_FLOAT64, 2, s34);
    ck_assert_int_eq(ir_add_matmul(&g, a, a, false, false, &err), -1); /* 3 vs 2 */
    ck_assert_str_eq(err.field, "in[1]");
    ck_assert_int_eq(ir_add_matmul(&g, a, d, false, false, &err), -1);
    ck_assert_int_eq(err.code, KILN_ETYPE);
    ck_assert_int_ge(ir_add_matmul(&g, a, b, false, false, &err), 0);
    ck_assert_int_ge(ir_add_matmul(&g, a, a, false, true, &err), 0); /* [2,3] @ [3,2] */
    int x = array(&g, IR_DTYPE_FLOAT32, 4, s4), w = array(&g, IR_DTYPE_FLOAT32, 4, w4);
    struct ir_conv c = {{1, 1}, {0, 0}, {1, 1}, 1};
    ck_assert_int_ge(ir_add_conv(&g, IR_OP_CONV2D, x, w, 0, NULL, &c, &err), 0);
    c.stride[1] = 0;
    ck_assert_int_eq(ir_add_conv(&g, IR_OP_CONV2D, x, w, 0, NULL, &c, &err), -1);
    ck_assert_str_eq(err.field, "stride");
    c.stride[1] = 1, c.pad[0] = KILN_LIMIT_CONV_ATTR + 1;
    ck_assert_int_eq(ir_add_conv(&g, IR_OP_CONV2D, x, w, 0, NULL, &c, &err), -1);
    ck_assert_int_eq(err.code, KILN_ELIMIT);
    c.pad[0] = 0, c.groups = 2; /* 2 channels in 2 groups: w must have 1 per group */
    ck_assert_int_eq(ir_add_conv(&g, IR_OP_CONV2D, x, w, 0, NULL, &c, &err), -1);
    c.groups = 1, c.dilation[0] = 3; /* window 7 > 5 */
    ck_assert_int_eq(ir_add_conv(&g, IR_OP_CONV2D, x, w, 0, NULL, &c, &err), -1);
    c.dilation[0] = 1;
    int64_t bad[4] = {1, 3, 2, 3}; /* dy of the wrong spatial size for x [1,2,5,5] */
    int dy = array(&g, IR_DTYPE_FLOAT32, 4, bad);
    ck_assert_int_eq(ir_add_conv(&g, IR_OP_CONV2D_BWD_DATA, dy, w, 4, s4, &c, &err), -1);
    ck_assert_str_eq(err.field, "in[0]");
    ir_graph_fini(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relay");
    TCase *tc = tcase_create("relay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matmul_cases);
    tcase_add_test(tc, conv_cases);
    tcase_add_test(tc, gradients_match_meta_ops);
    tcase_add_test(tc, neighbours_still_fuse);
    tcase_add_test(tc, constructors_refuse);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
