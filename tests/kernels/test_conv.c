/* test_conv.c: conv2d, max and average pooling and the transposed conv,
 * written only from meta-operators (convgraph.h), through the reference
 * interpreter against direct nested loops: every case of the shared table,
 * with the inputs as EXTERN slots and as ARRAY nodes, exactly. Also pins
 * the references on hand-worked examples, the runner's own failure
 * reports, and the builders' refusals. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convgraph.h"
#include "interp.h"
#include "kiln_err.h"

static const uint64_t seeds[] = {1, 0x5eed};

/* Every case of `kind`, both input forms, two data seeds, exact. */
static void run_kind(int kind)
{
    size_t n;
    const struct convgraph_case *cs = convgraph_cases(&n);
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (cs[i].p.kind != kind)
            continue;
        for (int inputs = CONVGRAPH_INPUTS_EXTERN; inputs <= CONVGRAPH_INPUTS_ARRAY; inputs++)
            for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
                struct convgraph_run_opts o = {.inputs = inputs, .seed = seeds[s], .tol = 0};
                char msg[512];
                int rc = convgraph_case_run(&cs[i], &o, convgraph_eval_interp, NULL, msg,
                                            sizeof msg);
                ck_assert_msg(rc == 0, "%s", msg);
                ran++;
            }
    }
    ck_assert_int_ge(ran, 4 * 4); /* at least four cases of each kind */
}

START_TEST(conv2d_matches_loops)
{
    run_kind(CONVGRAPH_CONV2D);
}
END_TEST

START_TEST(max_pool_matches_loops)
{
    run_kind(CONVGRAPH_MAX_POOL);
}
END_TEST

START_TEST(avg_pool_matches_loops)
{
    run_kind(CONVGRAPH_AVG_POOL);
}
END_TEST

START_TEST(max_pool_scatter_matches_loops)
{
    run_kind(CONVGRAPH_MAX_POOL_SCATTER);
}
END_TEST

START_TEST(conv_transpose2d_matches_loops)
{
    run_kind(CONVGRAPH_CONV_TRANSPOSE2D);
}
END_TEST

/* The table covers what the acceptance point names. */
START_TEST(case_table_coverage)
{
    size_t n;
    const struct convgraph_case *cs = convgraph_cases(&n);
    int stride2 = 0, pad0 = 0, pad1 = 0, dil2 = 0, nonsquare = 0, batch = 0, chans = 0, out1 = 0;
    int f32 = 0, f64 = 0;
    for (size_t i = 0; i < n; i++) {
        const struct convgraph_params *p = &cs[i].p;
        struct convgraph_shapes s;
        char msg[200];
        ck_assert_msg(convgraph_shapes(p, &s, msg, sizeof msg) == 0, "%s: %s", cs[i].name, msg);
        ck_assert_ptr_nonnull(convgraph_kind_name(p->kind));
        stride2 += p->sh == 2 || p->sw == 2;
        pad0 += p->ph == 0 && p->pw == 0;
        pad1 += p->ph == 1 || p->pw == 1;
        dil2 += p->dh == 2 || p->dw == 2;
        nonsquare += p->h != p->w || p->kh != p->kw || p->sh != p->sw || p->ph != p->pw;
        batch += p->n > 1;
        chans += p->c > 1 && (p->cout > 1 || p->cout == 0);
        out1 += s.y[2] == 1 && s.y[3] == 1;
        f32 += p->dtype == IR_DTYPE_FLOAT32;
        f64 += p->dtype == IR_DTYPE_FLOAT64;
    }
    ck_assert(stride2 && pad0 && pad1 && dil2 && nonsquare && batch && chans && out1);
    ck_assert(f32 && f64);
}
END_TEST

/* ---- the references on hand-worked examples -------------------------- */

static void assert_values(const double *got, const double *want, int n, const char *what)
{
    for (int k = 0; k < n; k++)
        ck_assert_msg(got[k] == want[k], "%s[%d] = %g, want %g", what, k, got[k], want[k]);
}

START_TEST(reference_hand_examples)
{
    double x9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, ones[4] = {1, 1, 1, 1}, y[16];
    /* 3x3 input, 2x2 ones kernel: window sums. */
    struct convgraph_params p = {.kind = CONVGRAPH_CONV2D, .dtype = IR_DTYPE_FLOAT64, .n = 1,
                                 .c = 1, .h = 3, .w = 3, .cout = 1, .kh = 2, .kw = 2};
    ck_assert_int_eq(convgraph_reference(&p, x9, ones, y, NULL), 0);
    assert_values(y, (double[]){12, 16, 24, 28}, 4, "conv2d");
    /* padding 1, stride 2: the corners' windows. */
    p.ph = p.pw = 1;
    p.sh = p.sw = 2;
    ck_assert_int_eq(convgraph_reference(&p, x9, ones, y, NULL), 0);
    assert_values(y, (double[]){1, 5, 11, 28}, 4, "conv2d pad stride");
    /* dilation 2 on 3x3: the four corners. */
    p = (struct convgraph_params){.kind = CONVGRAPH_CONV2D, .dtype = IR_DTYPE_FLOAT64, .n = 1,
                                  .c = 1, .h = 3, .w = 3, .cout = 1, .kh = 2, .kw = 2, .dh = 2,
                                  .dw = 2};
    ck_assert_int_eq(convgraph_reference(&p, x9, ones, y, NULL), 0);
    assert_values(y, (double[]){1 + 3 + 7 + 9}, 1, "conv2d dilation");

    /* 4x4 of 1..16, 2x2 windows, stride 2. */
    double x16[16];
    for (int k = 0; k < 16; k++)
        x16[k] = k + 1;
    p = (struct convgraph_params){.kind = CONVGRAPH_MAX_POOL, .dtype = IR_DTYPE_FLOAT64, .n = 1,
                                  .c = 1, .h = 4, .w = 4, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
    ck_assert_int_eq(convgraph_reference(&p, x16, NULL, y, NULL), 0);
    assert_values(y, (double[]){6, 8, 14, 16}, 4, "max_pool");
    p.kind = CONVGRAPH_MAX_POOL_SCATTER;
    ck_assert_int_eq(convgraph_reference(&p, x16, NULL, y, NULL), 0);
    assert_values(y, (double[]){6, 8, 14, 16}, 4, "max_pool_scatter");
    p.kind = CONVGRAPH_AVG_POOL;
    ck_assert_int_eq(convgraph_reference(&p, x16, NULL, y, NULL), 0);
    assert_values(y, (double[]){3.5, 5.5, 11.5, 13.5}, 4, "avg_pool");
    /* padding counts in the average: 3x3 windows, stride 3, pad 1 on 1..16 */
    p.kh = p.kw = 3;
    p.sh = p.sw = 3;
    p.ph = p.pw = 1;
    ck_assert_int_eq(convgraph_reference(&p, x16, NULL, y, NULL), 0);
    assert_values(y, (double[]){(1 + 2 + 5 + 6) / 9.0, (3 + 4 + 7 + 8) / 9.0,
                                (9 + 10 + 13 + 14) / 9.0, (11 + 12 + 15 + 16) / 9.0},
                  4, "avg_pool pad");

    /* 2x2 input, 2x2 ones kernel, stride 1: the full correlation. */
    double x4[4] = {1, 2, 3, 4};
    p = (struct convgraph_params){.kind = CONVGRAPH_CONV_TRANSPOSE2D, .dtype = IR_DTYPE_FLOAT64,
                                  .n = 1, .c = 1, .h = 2, .w = 2, .cout = 1, .kh = 2, .kw = 2};
    ck_assert_int_eq(convgraph_reference(&p, x4, ones, y, NULL), 0);
    assert_values(y, (double[]){1, 3, 2, 4, 10, 6, 3, 7, 4}, 9, "conv_transpose2d");
    /* stride 2: taps do not overlap; padding 1 crops a ring. */
    p.sh = p.sw = 2;
    ck_assert_int_eq(convgraph_reference(&p, x4, ones, y, NULL), 0);
    assert_values(y, (double[]){1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 16,
                  "conv_transpose2d stride");
    p.ph = p.pw = 1;
    ck_assert_int_eq(convgraph_reference(&p, x4, ones, y, NULL), 0);
    assert_values(y, (double[]){1, 2, 3, 4}, 4, "conv_transpose2d pad");
}
END_TEST

START_TEST(output_shapes)
{
    struct convgraph_shapes s;
    char msg[200];
    /* PyTorch's formulas. */
    struct convgraph_params p = {.kind = CONVGRAPH_CONV2D, .dtype = IR_DTYPE_FLOAT32, .n = 2,
                                 .c = 3, .h = 7, .w = 6, .cout = 5, .kh = 3, .kw = 2, .sh = 2,
                                 .sw = 2, .ph = 1, .pw = 1};
    ck_assert_int_eq(convgraph_shapes(&p, &s, msg, sizeof msg), 0);
    ck_assert(s.y[0] == 2 && s.y[1] == 5 && s.y[2] == 4 && s.y[3] == 4);
    ck_assert(s.w[0] == 5 && s.w[1] == 3 && s.w[2] == 3 && s.w[3] == 2 && s.has_w);
    p.dh = p.dw = 3; /* extents 7 and 4 */
    ck_assert_int_eq(convgraph_shapes(&p, &s, msg, sizeof msg), 0);
    ck_assert(s.y[2] == 2 && s.y[3] == 3);
    p.kind = CONVGRAPH_CONV_TRANSPOSE2D;
    p.dh = p.dw = 1;
    p.h = 4;
    p.oph = 1;
    ck_assert_int_eq(convgraph_shapes(&p, &s, msg, sizeof msg), 0);
    ck_assert(s.y[2] == 3 * 2 - 2 + 2 + 1 + 1 && s.y[3] == 5 * 2 - 2 + 1 + 0 + 1);
    ck_assert(s.w[0] == 3 && s.w[1] == 5);
    p = (struct convgraph_params){.kind = CONVGRAPH_AVG_POOL, .dtype = IR_DTYPE_FLOAT64, .n = 1,
                                  .c = 4, .h = 5, .w = 5, .kh = 2, .kw = 2};
    ck_assert_int_eq(convgraph_shapes(&p, &s, msg, sizeof msg), 0);
    ck_assert(s.y[1] == 4 && s.y[2] == 4 && s.y[3] == 4 && !s.has_w);

    /* Refusals. */
    struct convgraph_params bad = p;
    bad.kh = 6; /* window larger than the input */
    ck_assert_int_eq(convgraph_shapes(&bad, &s, msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "no output"));
    bad = p;
    bad.dh = 2;
    ck_assert_int_eq(convgraph_shapes(&bad, &s, msg, sizeof msg), -1);
    bad = p;
    bad.dtype = IR_DTYPE_INT32;
    ck_assert_int_eq(convgraph_shapes(&bad, &s, msg, sizeof msg), -1);
    bad = p;
    bad.ph = -1;
    ck_assert_int_eq(convgraph_shapes(&bad, &s, msg, sizeof msg), -1);
    bad = p;
    bad.kind = 99;
    ck_assert_int_eq(convgraph_shapes(&bad, &s, msg, sizeof msg), -1);
    bad = p;
    bad.oph = 1;
    ck_assert_int_eq(convgraph_shapes(&bad, &s, msg, sizeof msg), -1);
    /* An intermediate over KILN_LIMIT_ELEMENTS (2^40): 2^24 * 2^24. */
    bad = (struct convgraph_params){.kind = CONVGRAPH_MAX_POOL_SCATTER,
                                    .dtype = IR_DTYPE_FLOAT32, .n = INT64_C(1) << 24, .c = 1,
                                    .h = INT64_C(1) << 24, .w = 1, .kh = 1, .kw = 1};
    ck_assert_int_eq(convgraph_shapes(&bad, &s, msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "x"));
}
END_TEST

START_TEST(builders_check_their_inputs)
{
    struct ir_graph g;
    ir_graph_init(&g);
    struct ir_error err;
    struct convgraph_params p = {.kind = CONVGRAPH_CONV2D, .dtype = IR_DTYPE_FLOAT32, .n = 1,
                                 .c = 2, .h = 4, .w = 4, .cout = 3, .kh = 3, .kw = 3};
    int64_t xs[4] = {1, 2, 4, 4}, ws[4] = {3, 2, 3, 3}, wrong[4] = {3, 2, 3, 2};
    int x = ir_add_extern(&g, IR_DTYPE_FLOAT32, 4, xs, &err);
    int w = ir_add_extern(&g, IR_DTYPE_FLOAT32, 4, ws, &err);
    int w2 = ir_add_extern(&g, IR_DTYPE_FLOAT32, 4, wrong, &err);
    int x64 = ir_add_extern(&g, IR_DTYPE_FLOAT64, 4, xs, &err);
    ck_assert(x >= 0 && w >= 0 && w2 >= 0 && x64 >= 0);
    uint32_t before = g.count;
    ck_assert_int_eq(convgraph_conv2d(&g, &p, x, w2, &err), -1);
    ck_assert_str_eq(err.field, "w");
    ck_assert_int_eq(err.code, KILN_EVALUE);
    ck_assert_int_eq(convgraph_conv2d(&g, &p, x64, w, &err), -1);
    ck_assert_str_eq(err.field, "x");
    ck_assert_int_eq(convgraph_conv2d(&g, &p, 99, w, &err), -1);
    ck_assert_str_eq(err.field, "x");
    ck_assert_int_eq(convgraph_max_pool(&g, &p, x, &err), -1); /* a conv2d's params */
    ck_assert_str_eq(err.field, "kind");
    struct convgraph_params q = p;
    q.kh = 9;
    ck_assert_int_eq(convgraph_conv2d(&g, &q, x, w, &err), -1);
    ck_assert_str_eq(err.field, "params");
    q.kind = 0;
    ck_assert_int_eq(convgraph_build(&g, &q, x, w, &err), -1);
    ck_assert_uint_eq(g.count, before); /* nothing added by a refusal before building */

    /* The built graph is meta-operators only, and its output is y. */
    int y = convgraph_build(&g, &p, x, w, &err);
    ck_assert_msg(y >= 0, "%s: %s", err.field, err.message);
    ck_assert_int_eq(y, (int) g.count - 1);
    for (uint32_t i = before; i < g.count; i++) {
        int op = g.nodes[i].op;
        ck_assert(op == IR_OP_REINDEX || op == IR_OP_BROADCAST_TO || op == IR_OP_MUL ||
                  op == IR_OP_REDUCE);
    }
    ck_assert(g.nodes[y].rank == 4 && g.nodes[y].shape[1] == 3 && g.nodes[y].shape[2] == 2);
    ir_graph_fini(&g);
}
END_TEST

/* ---- the runner reports what is wrong ------------------------------- */

struct skew {
    int mode; /* 1: nudge the last element by one ulp; 2: fail; 3: write nothing */
};

static int skewed_eval(void *ctx, const struct ir_graph *g, int out, const void *const *externs,
                       void *y, size_t ybytes, char *msg, size_t msglen)
{
    const struct skew *sk = ctx;
    if (sk->mode == 2) {
        snprintf(msg, msglen, "no device");
        return KILN_EEXEC;
    }
    if (sk->mode == 3)
        return KILN_OK;
    int rc = convgraph_eval_interp(NULL, g, out, externs, y, ybytes, msg, msglen);
    if (rc == KILN_OK && g->nodes[out].dtype == IR_DTYPE_FLOAT32) {
        float *f = y;
        size_t last = ybytes / sizeof *f - 1;
        f[last] = nextafterf(f[last], INFINITY);
    } else if (rc == KILN_OK) {
        double *d = y;
        size_t last = ybytes / sizeof *d - 1;
        d[last] = nextafter(d[last], INFINITY);
    }
    return rc;
}

START_TEST(runner_reports_mismatches)
{
    size_t n;
    const struct convgraph_case *cs = convgraph_cases(&n);
    const struct convgraph_case *c = &cs[2]; /* conv2d, float32 */
    ck_assert_int_eq(c->p.dtype, IR_DTYPE_FLOAT32);
    struct convgraph_shapes s;
    ck_assert_int_eq(convgraph_shapes(&c->p, &s, NULL, 0), 0);
    char msg[512], want[96];
    struct skew sk = {.mode = 1};
    struct convgraph_run_opts exact = {.seed = 3}, loose = {.seed = 3, .tol = 1e-5};
    ck_assert_int_eq(convgraph_case_run(c, &exact, skewed_eval, &sk, msg, sizeof msg), -1);
    snprintf(want, sizeof want, "y[%lld,%lld,%lld,%lld]", (long long) s.y[0] - 1,
             (long long) s.y[1] - 1, (long long) s.y[2] - 1, (long long) s.y[3] - 1);
    ck_assert_msg(strstr(msg, want) != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "1 of ") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, c->name) != NULL, "%s", msg);
    /* One ulp is within the float32 tolerance. */
    ck_assert_msg(convgraph_case_run(c, &loose, skewed_eval, &sk, msg, sizeof msg) == 0, "%s", msg);
    sk.mode = 2;
    ck_assert_int_eq(convgraph_case_run(c, &exact, skewed_eval, &sk, msg, sizeof msg), -1);
    ck_assert_msg(strstr(msg, "no device") != NULL, "%s", msg);
    sk.mode = 3;
    ck_assert_int_eq(convgraph_case_run(c, &loose, skewed_eval, &sk, msg, sizeof msg), -1);
    /* And the interpreter is also within every tolerance. */
    for (size_t i = 0; i < n; i++) {
        struct convgraph_run_opts o = {
            .inputs = CONVGRAPH_INPUTS_ARRAY, .seed = 7,
            .tol = cs[i].p.dtype == IR_DTYPE_FLOAT32 ? 1e-5 : 1e-12};
        ck_assert_msg(convgraph_case_run(&cs[i], &o, convgraph_eval_interp, NULL, msg,
                                         sizeof msg) == 0,
                      "%s", msg);
    }
}
END_TEST

int main(void)
{
    Suite *su = suite_create("conv");
    TCase *tc = tcase_create("meta-op conv");
    tcase_add_test(tc, conv2d_matches_loops);
    tcase_add_test(tc, max_pool_matches_loops);
    tcase_add_test(tc, avg_pool_matches_loops);
    tcase_add_test(tc, max_pool_scatter_matches_loops);
    tcase_add_test(tc, conv_transpose2d_matches_loops);
    tcase_add_test(tc, case_table_coverage);
    tcase_add_test(tc, reference_hand_examples);
    tcase_add_test(tc, output_shapes);
    tcase_add_test(tc, builders_check_their_inputs);
    tcase_add_test(tc, runner_reports_mismatches);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
