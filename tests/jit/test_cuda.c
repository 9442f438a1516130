/* test_cuda.c: every op family's fused groups rendered as CUDA and
 * compiled to PTX by NVRTC, on machines without a GPU.
 *
 * The graphs are those of test_run.c's op tests, condensed so that each
 * helper is compiled at least once without a compile per (op, dtype,
 * shape): every unary and binary op, cast and where of each dtype in one
 * element-wise group per dtype, broadcasting, sources (const, index,
 * random, array, reshape), reductions of every op over float32, float64
 * and int32 in each loop layout with a prologue and an epilogue, reindex
 * with extras and conditions, reindex_reduce of every op, and random
 * fused graphs (tgraph.h). Each is planned with jit_fuse_plan; each
 * kernel group is rendered with jit_codegen_cuda_group and compiled with
 * the options of codegen_cuda.h. A refusal fails with NVRTC's log (on
 * stderr: it can be long) and the source's name. The PTX must define the
 * entry points the contract names and call nothing it does not define
 * (an unresolved function would only fail when a driver loads it).
 *
 * Also the loader: without a driver (this machine), the info says why;
 * with one, it lists devices.
 *
 * NVRTC comes from the CUDA toolkit, which the build machines have; where
 * it is absent the suite says so and exits 77 (meson: SKIP).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_cuda.h"
#include "cuda_dl.h"
#include "fuse.h"
#include "ir.h"
#include "kiln_err.h"
#include "nvrtc_main.h"
#include "tgraph.h"

static struct jit_cuda *cu;
static unsigned kernels_compiled;

static void setup(void)
{
    ck_assert_int_eq(jit_cuda_open(JIT_CUDA_NVRTC, &cu), KILN_OK);
    ck_assert_msg(jit_cuda_info(cu)->nvrtc, "NVRTC: %s", jit_cuda_info(cu)->nvrtc_why);
}

static void teardown(void)
{
    if (kernels_compiled > 0)
        fprintf(stderr, "test_cuda: %u kernels compiled to PTX\n", kernels_compiled);
    jit_cuda_close(cu);
    cu = NULL;
}

/* Compiles `src`; on failure prints the log and the numbered source. */
static char *compile(const char *src, const char *what, char **log)
{
    int nopt, nhdr;
    const char *const *opts = jit_codegen_cuda_options(&nopt);
    const char *const *names;
    const char *const *hdrs = jit_codegen_cuda_headers(&nhdr, &names);
    char *ptx = NULL;
    size_t len = 0;
    int rc = jit_cuda_compile_ptx(cu, src, "kiln_group.cu", nhdr, hdrs, names, nopt, opts, &ptx,
                                  &len, log);
    if (rc != KILN_OK) {
        fprintf(stderr, "---- %s: NVRTC refused the source (%d):\n%s\n---- source:\n%s\n", what, rc,
                *log ? *log : "(no log)", src);
        ck_abort_msg("%s: NVRTC refused the source (rc %d): %.600s", what, rc,
                     *log ? *log : "(no log)");
    }
    ck_assert_uint_eq(strlen(ptx), len);
    return ptx;
}

static void expect_entry(const char *ptx, const char *name, bool want, const char *what)
{
    char pat[64];
    snprintf(pat, sizeof pat, ".entry %s(", name);
    ck_assert_msg((strstr(ptx, pat) != NULL) == want, "%s: PTX %s %s", what, want ? "lacks" : "has",
                  name);
}

/* Plans g (outputs `out`; every node when NULL) and compiles every kernel
 * group of the plan. */
static void compile_graph(const struct ir_graph *g, const bool *out, const char *what)
{
    bool *marks = calloc(g->count + 1, 1);
    ck_assert_ptr_nonnull(marks);
    for (uint32_t i = 0; i < g->count; i++)
        marks[i] = out ? out[i] : true;
    struct jit_plan p;
    struct ir_error err;
    jit_plan_init(&p);
    ck_assert_int_eq(jit_fuse_plan(g, marks, &p, &err), KILN_OK);
    for (uint32_t gi = 0; gi < p.ngroups; gi++) {
        const struct jit_group *G = &p.groups[gi];
        if (G->kind == JIT_GROUP_RELAY)
            continue;
        char name[160];
        snprintf(name, sizeof name, "%s, group %u (kind %d)", what, gi, G->kind);
        struct jit_buf src;
        jit_buf_init(&src);
        int rc = jit_codegen_cuda_group(g, &p, gi, &src);
        ck_assert_msg(rc == KILN_OK, "%s: codegen: %d", name, rc);
        ck_assert(!src.bad);
        char *log = NULL;
        char *ptx = compile(src.data, name, &log);
        ck_assert_msg(strstr(ptx, ".extern") == NULL, "%s: the PTX calls an undefined function",
                      name);
        expect_entry(ptx, "kiln_main", true, name);
        expect_entry(ptx, "kiln_init", G->kind != JIT_GROUP_ELEMENTWISE, name);
        if (G->kind == JIT_GROUP_ELEMENTWISE)
            expect_entry(ptx, "kiln_fini", false, name);
        kernels_compiled++;
        free(ptx);
        free(log);
        jit_buf_fini(&src);
    }
    jit_plan_fini(&p);
    free(marks);
}

/* ---- element-wise --------------------------------------------------------- */

/* Per dtype, one group: every unary and binary op it allows, casts to
 * every dtype, and where with this dtype as the condition over values of
 * every dtype; on a rank-2 shape, then the first ops on rank 0 and 3. */
START_TEST(elementwise_every_op)
{
    static const int64_t sh[2] = {3, 5};
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_graph g;
        struct ir_error err;
        ir_graph_init(&g);
        int a = ir_add_extern(&g, dt, 2, sh, &err), b = ir_add_extern(&g, dt, 2, sh, &err);
        int vals[IR_DTYPE_COUNT];
        for (int v = 1; v < IR_DTYPE_COUNT; v++)
            vals[v] = ir_add_extern(&g, v, 2, sh, &err);
        int made = 0;
        for (int op = IR_OP_NEG; op <= IR_OP_BITWISE_NOT; op++)
            made += ir_add_unary(&g, op, a, &err) >= 0;
        for (int op = IR_OP_ADD; op <= IR_OP_SHR; op++)
            made += ir_add_binary(&g, op, a, b, &err) >= 0;
        for (int to = 1; to < IR_DTYPE_COUNT; to++)
            made += ir_add_cast(&g, a, to, &err) >= 0;
        for (int v = 1; v < IR_DTYPE_COUNT; v++)
            made += ir_add_where(&g, a, vals[v], vals[v], &err) >= 0;
        ck_assert_int_gt(made, 20);
        char what[64];
        snprintf(what, sizeof what, "element-wise %s", ir_dtype_name(dt));
        compile_graph(&g, NULL, what);
        ir_graph_fini(&g);
    }
    /* Ranks 0 and 3: other index math. */
    static const int64_t s3[3] = {2, 3, 4};
    for (int rank = 0; rank <= 3; rank += 3) {
        struct ir_graph g;
        struct ir_error err;
        ir_graph_init(&g);
        int x = ir_add_extern(&g, IR_DTYPE_FLOAT32, rank, s3, &err);
        int e = ir_add_unary(&g, IR_OP_SIGMOID, x, &err);
        ck_assert_int_ge(ir_add_binary(&g, IR_OP_MUL, e, x, &err), 0);
        compile_graph(&g, NULL, rank ? "element-wise rank 3" : "element-wise rank 0");
        ir_graph_fini(&g);
    }
}
END_TEST

/* float32 exp, tanh, sigmoid, log and erf are kiln's vmath, straight-line
 * arithmetic; with --fmad=false none of it may become a fused
 * multiply-add, which would round differently from the CPU. */
START_TEST(vmath_without_fma)
{
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    int64_t sh[1] = {1000};
    int x = ir_add_extern(&g, IR_DTYPE_FLOAT32, 1, sh, &err);
    int v = x;
    static const int ops[] = {IR_OP_EXP, IR_OP_TANH, IR_OP_SIGMOID, IR_OP_LOG, IR_OP_ERF};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        v = ir_add_binary(&g, IR_OP_ADD,
                          ir_add_binary(&g, IR_OP_MUL, ir_add_unary(&g, ops[k], v, &err), x, &err),
                          x, &err);
    ck_assert_int_ge(v, 0);
    bool out[64] = {false};
    out[v] = true;
    struct jit_plan p;
    jit_plan_init(&p);
    ck_assert_int_eq(jit_fuse_plan(&g, out, &p, &err), KILN_OK);
    ck_assert_uint_eq(p.ngroups, 1);
    struct jit_buf src;
    jit_buf_init(&src);
    ck_assert_int_eq(jit_codegen_cuda_group(&g, &p, 0, &src), KILN_OK);
    char *log = NULL;
    char *ptx = compile(src.data, "vmath chain", &log);
    ck_assert_msg(strstr(ptx, "fma.") == NULL, "the PTX has a fused multiply-add");
    /* --fmad=false writes multiplies and adds with explicit rounding, which
     * ptxas may not contract either. */
    ck_assert_msg(strstr(ptx, "mul.rn.f32") != NULL, "no float32 multiply in the PTX?");
    free(ptx);
    free(log);
    jit_buf_fini(&src);
    jit_plan_fini(&p);
    ir_graph_fini(&g);
}
END_TEST

/* test_run.c's broadcasting: a size-1 dim stretched, a new dim, a scalar. */
START_TEST(broadcasting)
{
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_graph g;
        struct ir_error err;
        ir_graph_init(&g);
        int64_t s31[2] = {3, 1}, s34[2] = {3, 4}, s4[1] = {4}, s234[3] = {2, 3, 4};
        int a = ir_add_extern(&g, dt, 2, s31, &err);
        int b = ir_add_extern(&g, dt, 1, s4, &err);
        int c = ir_add_extern(&g, dt, 0, NULL, &err);
        int ab = ir_add_broadcast(&g, a, 2, s34, 0, &err);
        int bb = ir_add_broadcast(&g, b, 2, s34, 1u << 0, &err);
        int cb = ir_add_broadcast(&g, c, 2, s34, 3u, &err);
        int w = ir_add_where(&g, ab, bb, cb, &err);
        ck_assert_int_ge(w, 0);
        ck_assert_int_ge(ir_add_broadcast(&g, w, 3, s234, 1u << 0, &err), 0);
        int m = ir_add_binary(&g, IR_OP_MAXIMUM, ab, bb, &err);
        if (m >= 0)
            ck_assert_int_ge(ir_add_binary(&g, IR_OP_MUL, m, cb, &err), 0);
        compile_graph(&g, NULL, "broadcasting");
        ir_graph_fini(&g);
    }
}
END_TEST

/* test_run.c's sources: const of every dtype, index, random of both
 * distributions and float dtypes, reshape (bools too), array. */
START_TEST(sources_random_reshape)
{
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    int64_t sh[3] = {4, 3, 5}, fl[2] = {12, 5};
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_scalar v = {.i = dt == IR_DTYPE_BOOL ? 1 : 100, .f = -0.0};
        ck_assert_int_ge(ir_add_const(&g, dt, 3, sh, v, &err), 0);
    }
    for (int d = 0; d < 3; d++) {
        ck_assert_int_ge(ir_add_index(&g, IR_DTYPE_INT32, 3, sh, d, &err), 0);
        ck_assert_int_ge(ir_add_index(&g, IR_DTYPE_INT64, 3, sh, d, &err), 0);
    }
    for (int dist = 1; dist <= 2; dist++) {
        ck_assert_int_ge(ir_add_random(&g, IR_DTYPE_FLOAT32, 3, sh, dist, 7, 1000, &err), 0);
        int r = ir_add_random(&g, IR_DTYPE_FLOAT64, 3, sh, dist, 99, UINT64_MAX - 5, &err);
        ck_assert_int_ge(r, 0);
        int rs = ir_add_reshape(&g, r, 2, fl, &err);
        ck_assert_int_ge(ir_add_unary(&g, IR_OP_EXP, rs, &err), 0);
    }
    int x = ir_add_extern(&g, IR_DTYPE_BOOL, 3, sh, &err);
    ck_assert_int_ge(ir_add_reshape(&g, x, 2, fl, &err), 0);
    uint8_t bytes[60] = {1, 2, 3};
    int arr = ir_add_array(&g, IR_DTYPE_INT8, 3, sh, bytes, 60, &err);
    ck_assert_int_ge(ir_add_reshape(&g, arr, 2, fl, &err), 0);
    compile_graph(&g, NULL, "sources");
    ir_graph_fini(&g);
}
END_TEST

/* ---- reductions ------------------------------------------------------------- */

/* Every op on float32, float64 and int32 (and one each on int8, uint8
 * and int64), with the last dim reduced (the INNER loop), only an
 * outer dim (the tiled loop), everything, and with keepdims; each with a
 * prologue, and an epilogue at the output shape. */
START_TEST(reductions)
{
    static const int64_t sh[3] = {5, 37, 70};
    static const uint16_t layouts[] = {4, 1, 7, 5};
    static const int dts[] = {IR_DTYPE_FLOAT32, IR_DTYPE_FLOAT64, IR_DTYPE_INT32};
    for (size_t t = 0; t < 3; t++)
        for (int op = IR_REDUCE_ADD; op < IR_REDUCE_END; op++)
            for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
                struct ir_graph g;
                struct ir_error err;
                ir_graph_init(&g);
                int x = ir_add_extern(&g, dts[t], 3, sh, &err);
                int pro = ir_add_binary(&g, IR_OP_MUL, x, x, &err);
                int y = ir_add_reduce(&g, op, pro, layouts[l], l == 3, &err);
                if (y < 0) { /* mean of an integer */
                    ir_graph_fini(&g);
                    continue;
                }
                int epi = ir_add_unary(&g, IR_OP_NEG, y, &err);
                ck_assert_int_ge(epi, 0);
                bool out[8] = {false};
                out[epi] = true;
                char what[96];
                snprintf(what, sizeof what, "reduce op %d %s dims %u", op, ir_dtype_name(dts[t]),
                         layouts[l]);
                compile_graph(&g, out, what);
                ir_graph_fini(&g);
            }
    static const int small[] = {IR_DTYPE_INT8, IR_DTYPE_UINT8, IR_DTYPE_INT64};
    static const int small_op[] = {IR_REDUCE_ADD, IR_REDUCE_MUL, IR_REDUCE_MIN};
    for (size_t t = 0; t < 3; t++) {
        struct ir_graph g;
        struct ir_error err;
        ir_graph_init(&g);
        int x = ir_add_extern(&g, small[t], 3, sh, &err);
        ck_assert_int_ge(ir_add_reduce(&g, small_op[t], x, 2, false, &err), 0);
        compile_graph(&g, NULL, "reduce of a small dtype");
        ir_graph_fini(&g);
    }
    /* A rank-0 input, and softmax (a reduce feeding a reduce). */
    struct tg t;
    tg_init(&t);
    int x0 = ext(&t, 0, NULL);
    t.out[red(&t, IR_REDUCE_MEAN, x0, 0, false)] = true;
    int64_t s2[2] = {6, 33};
    int x = ext(&t, 2, s2);
    int mx = bcast(&t, red(&t, IR_REDUCE_MAX, x, 2, true), 2, s2, 0);
    int e = un(&t, IR_OP_EXP, bin(&t, IR_OP_SUB, x, mx));
    int s = red(&t, IR_REDUCE_ADD, e, 2, true);
    t.out[bin(&t, IR_OP_DIV, e, bcast(&t, s, 2, s2, 0))] = true;
    compile_graph(&t.g, t.out, "rank-0 mean and softmax");
    tg_fini(&t);
}
END_TEST

/* ---- reindex and reindex_reduce ----------------------------------------------- */

static int reindex_text(struct ir_graph *g, int op, int x, int rank, const int64_t *shape,
                        int nexprs, const char *const *exprs, int nconds, const char *const *conds,
                        int nextras, const int *extras, struct ir_scalar ovf)
{
    struct ir_error err;
    struct ir_reindex_text t = {
        .nexprs = nexprs, .nconds = nconds, .nextras = nextras, .extras = extras, .overflow = ovf};
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

/* test_run.c's reindex_every_dtype: extras, a condition, the overflow
 * value, then a transpose-and-flip of a computed value. */
START_TEST(reindex_every_dtype)
{
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_graph g;
        struct ir_error err;
        ir_graph_init(&g);
        int64_t xs[2] = {4, 5}, ys[3] = {3, 6, 2}, is[1] = {6};
        int x = ir_add_extern(&g, dt, 2, xs, &err);
        int ix = ir_add_extern(&g, IR_DTYPE_INT32, 1, is, &err);
        const char *ex[2] = {"i0 + i2 - 1", "@e0(i1) % 7"};
        const char *co[1] = {"i1 == 4"};
        struct ir_scalar ovf = {.i = 1, .f = -7.25};
        int r = reindex_text(&g, 0, x, 3, ys, 2, ex, 1, co, 1, &ix, ovf);
        int n = ir_add_unary(&g, IR_OP_LOGICAL_NOT, r, &err);
        int64_t ts[3] = {2, 6, 3};
        const char *tx[3] = {"i2", "yshape1 - 1 - i1", "i0"};
        reindex_text(&g, 0, n, 3, ts, 3, tx, 0, NULL, 0, NULL, (struct ir_scalar){0});
        compile_graph(&g, NULL, "reindex");
        ir_graph_fini(&g);
    }
}
END_TEST

/* test_run.c's reindex_reduce_every_op, over the dtypes with distinct
 * code: float32 (the scratch), float64, int32 and uint8 (in place). */
START_TEST(reindex_reduce_every_op)
{
    static const int dts[] = {IR_DTYPE_FLOAT32, IR_DTYPE_FLOAT64, IR_DTYPE_INT32, IR_DTYPE_UINT8};
    for (int op = IR_REDUCE_ADD; op <= IR_REDUCE_MIN; op++)
        for (size_t t = 0; t < 4; t++) {
            struct ir_graph g;
            struct ir_error err;
            ir_graph_init(&g);
            int64_t xs[2] = {6, 5}, ys[2] = {4, 3}, es[2] = {6, 5};
            int x = ir_add_extern(&g, dts[t], 2, xs, &err);
            int e = ir_add_extern(&g, IR_DTYPE_INT64, 2, es, &err);
            const char *ex[2] = {"i0 / 2 + @e0(i0, i1) % 2", "i1 - 1"};
            const char *co[1] = {"i0 == 5 && i1 == 4"};
            int x2 = ir_add_unary(&g, IR_OP_ABS, x, &err);
            ck_assert_int_ge(x2, 0);
            reindex_text(&g, op, x2, 2, ys, 2, ex, 1, co, 1, &e, (struct ir_scalar){0});
            char what[64];
            snprintf(what, sizeof what, "reindex_reduce op %d %s", op, ir_dtype_name(dts[t]));
            compile_graph(&g, NULL, what);
            ir_graph_fini(&g);
        }
}
END_TEST

/* ---- fused graphs ---------------------------------------------------------------- */

START_TEST(random_graphs)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        struct tg t;
        tg_init(&t);
        random_graph(&t, seed * 0x9e3779b97f4a7c15ull, 3 + (int64_t) (seed % 3),
                     5 + (int64_t) (seed % 4), 8 + (int) (seed * 7 % 50));
        char what[64];
        snprintf(what, sizeof what, "random graph %llu", (unsigned long long) seed);
        compile_graph(&t.g, t.out, what);
        tg_fini(&t);
    }
}
END_TEST

/* ---- the loader ---------------------------------------------------------------- */

/* A source NVRTC refuses: KILN_EINTERNAL, the log names the line. */
START_TEST(compile_error_has_log)
{
    char *ptx = (char *) 1, *log = NULL;
    size_t len = 1;
    const char *opt = "--gpu-architecture=" JIT_CUDA_ARCH;
    int rc = jit_cuda_compile_ptx(cu, "__global__ void k(void) { undeclared_name = 1; }\n",
                                  "bad.cu", 0, NULL, NULL, 1, &opt, &ptx, &len, &log);
    ck_assert_int_eq(rc, KILN_EINTERNAL);
    ck_assert_ptr_null(ptx);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "undeclared_name") != NULL, "log: %s", log);
    free(log);
}
END_TEST

/* The driver: devices, or a reason. NVRTC: a version. */
START_TEST(driver_probe)
{
    struct jit_cuda *c = NULL;
    ck_assert_int_eq(jit_cuda_open(JIT_CUDA_DRIVER | JIT_CUDA_NVRTC, &c), KILN_OK);
    const struct jit_cuda_info *in = jit_cuda_info(c);
    if (in->ndevices == 0) {
        ck_assert_msg(in->why[0] != '\0', "no devices and no reason");
        fprintf(stderr, "test_cuda: no CUDA devices: %s\n", in->why);
    }
    for (uint32_t k = 0; k < in->ndevices; k++) {
        ck_assert(in->devices[k].name[0] != '\0');
        ck_assert_int_ge(in->devices[k].cc_major, 1);
        ck_assert_uint_gt(in->devices[k].mem_total, 0);
    }
    ck_assert(in->nvrtc);
    ck_assert_int_ge(in->nvrtc_major, 12);
    jit_cuda_close(c);
    jit_cuda_close(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("nvrtc");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, elementwise_every_op);
    tcase_add_test(tc, vmath_without_fma);
    tcase_add_test(tc, broadcasting);
    tcase_add_test(tc, sources_random_reshape);
    tcase_add_test(tc, reductions);
    tcase_add_test(tc, reindex_every_dtype);
    tcase_add_test(tc, reindex_reduce_every_op);
    tcase_add_test(tc, random_graphs);
    tcase_add_test(tc, compile_error_has_log);
    tcase_add_test(tc, driver_probe);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nvrtc_suite_main(suite, "CUDA compile test");
}
