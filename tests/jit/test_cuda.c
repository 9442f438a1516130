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
 * (an unresolved function would only fail when a driver loads it). Every
 * group's launch plan (jit_codegen_cuda_launches) must be sane for a large
 * and a one-SM device and name entries the PTX defines, with the extra
 * slot's bytes the shapes need; a reduction's PTX may hold no per-thread
 * array in local memory, and at large sizes its plans split and shuffle.
 *
 * Also the loader: without a driver (this machine), the info says why;
 * with one, it lists devices.
 *
 * On a real GPU (tests/gpu/run.sh) every one of these graphs also runs on
 * the device, through the device executor, and every output is compared
 * with the reference interpreter (gpu_check.h).
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
#include "codegen.h"
#include "fuse.h"
#include "interp.h"
#include "ir.h"
#include "kiln_err.h"
#include "gpu_check.h"
#include "nvrtc_main.h"
#include "tgraph.h"

static struct jit_cuda *cu;
static unsigned kernels_compiled;
static struct gpu_check *gc; /* a real GPU: every graph also runs there (gpu_check.h) */

static void setup(void)
{
    ck_assert_int_eq(jit_cuda_open(JIT_CUDA_NVRTC, &cu), KILN_OK);
    ck_assert_msg(jit_cuda_info(cu)->nvrtc, "NVRTC: %s", jit_cuda_info(cu)->nvrtc_why);
    gc = gpu_check_open();
}

static void teardown(void)
{
    if (kernels_compiled > 0)
        fprintf(stderr, "test_cuda: %u kernels compiled to PTX\n", kernels_compiled);
    gpu_check_close(gc);
    gc = NULL;
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

/* Group gi of plan p rendered as CUDA and compiled: the PTX (to free). */
static char *compile_group(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           const char *what)
{
    struct jit_buf src;
    jit_buf_init(&src);
    int rc = jit_codegen_cuda_group(g, p, gi, &src);
    ck_assert_msg(rc == KILN_OK, "%s: codegen: %d", what, rc);
    ck_assert(!src.bad);
    char *log = NULL;
    char *ptx = compile(src.data, what, &log);
    free(log);
    jit_buf_fini(&src);
    return ptx;
}

/* The largest local-memory array (.local ... [bytes]) the PTX declares:
 * a per-thread array the compiler could not keep in registers. */
static long local_bytes(const char *ptx)
{
    long most = 0;
    for (const char *q = ptx; (q = strstr(q, ".local")) != NULL; q++) {
        const char *br = strchr(q, '[');
        const char *nl = strchr(q, '\n');
        if (br != NULL && (nl == NULL || br < nl)) {
            long b = strtol(br + 1, NULL, 10);
            most = b > most ? b : most;
        }
    }
    return most;
}

/* The launch plan of group gi on a device of `sms` multiprocessors: sane
 * geometry, entries the PTX defines, and the extra slot's bytes as the
 * shapes need. */
static void check_launches(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           uint32_t sms, const char *ptx, const char *what)
{
    const struct jit_group *G = &p->groups[gi];
    struct jit_cuda_launch l[JIT_CUDA_LAUNCH_MAX];
    size_t extra = 1;
    uint32_t nl = jit_codegen_cuda_launches(g, p, gi, sms, l, &extra);
    ck_assert_uint_le(nl, JIT_CUDA_LAUNCH_MAX);
    int64_t main_n = g->nodes[G->space].numel;
    int64_t out_n = G->reduce >= 0 ? g->nodes[G->reduce].numel : 0;
    bool work = G->kind == JIT_GROUP_ELEMENTWISE ? main_n > 0 : out_n > 0;
    ck_assert_msg((nl > 0) == work, "%s: %u launches for %s", what, nl, work ? "work" : "none");
    for (uint32_t k = 0; k < nl; k++) {
        ck_assert_msg(l[k].grid > 0 && l[k].block > 0 && l[k].block % 32 == 0 &&
                          l[k].block <= 1024 && l[k].shared <= 48 * 1024 && l[k].n > 0,
                      "%s: launch %u (%s): grid %u block %u shared %u n %lld", what, k,
                      l[k].entry, l[k].grid, l[k].block, l[k].shared, (long long) l[k].n);
        ck_assert_uint_le(l[k].grid, sms * 64);
        expect_entry(ptx, l[k].entry, true, what);
    }
    size_t want = 0;
    if (G->kind == JIT_GROUP_REDUCE && nl == 2) {
        /* The split: init over (block, output) items, partials 8 B each. */
        int64_t nred = main_n / out_n, nb = (nred + IR_REDUCE_BLOCK - 1) / IR_REDUCE_BLOCK;
        ck_assert_str_eq(l[0].entry, "kiln_init");
        ck_assert_str_eq(l[1].entry, "kiln_fini");
        ck_assert(l[0].n == nb * out_n || l[0].n == 16 * nb * out_n);
        ck_assert_int_eq(l[1].n, out_n);
        want = (size_t) (nb * out_n) * 8;
    } else if (G->kind == JIT_GROUP_REDUCE && nl == 1) {
        ck_assert_str_eq(l[0].entry, "kiln_main");
        ck_assert(l[0].n == out_n || l[0].n == 16 * out_n);
    } else if (G->kind == JIT_GROUP_REINDEX_REDUCE && nl > 0) {
        ck_assert_str_eq(l[0].entry, "kiln_init");
        ck_assert_int_eq(l[0].n, out_n);
        if (jit_kernel_scratch(g, p, gi)) {
            want = (size_t) out_n * 8;
            ck_assert_str_eq(l[nl - 1].entry, "kiln_fini");
        }
    }
    ck_assert_msg(extra == want, "%s: extra bytes %zu, want %zu", what, extra, want);
}

/* Plans g (outputs `out`; every node when NULL) and compiles every kernel
 * group of the plan; checks its launch plans and, for reductions, that no
 * thread keeps a large array in local memory. */
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
        char *ptx = compile_group(g, &p, gi, name);
        ck_assert_msg(strstr(ptx, ".extern") == NULL, "%s: the PTX calls an undefined function",
                      name);
        expect_entry(ptx, "kiln_main", true, name);
        expect_entry(ptx, "kiln_init", G->kind != JIT_GROUP_ELEMENTWISE, name);
        if (G->kind == JIT_GROUP_ELEMENTWISE)
            expect_entry(ptx, "kiln_fini", false, name);
        check_launches(g, &p, gi, 132, ptx, name);
        check_launches(g, &p, gi, 1, ptx, name);
        if (G->kind == JIT_GROUP_REDUCE)
            ck_assert_msg(local_bytes(ptx) <= 256, "%s: %ld bytes of local memory per thread",
                          name, local_bytes(ptx));
        kernels_compiled++;
        free(ptx);
    }
    jit_plan_fini(&p);
    free(marks);
    gpu_check_graph(gc, g, out, what);
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
    char *ptx = compile_group(&g, &p, 0, "vmath chain");
    ck_assert_msg(strstr(ptx, "fma.") == NULL, "the PTX has a fused multiply-add");
    /* --fmad=false writes multiplies and adds with explicit rounding, which
     * ptxas may not contract either. */
    ck_assert_msg(strstr(ptx, "mul.rn.f32") != NULL, "no float32 multiply in the PTX?");
    free(ptx);
    jit_plan_fini(&p);
    ir_graph_fini(&g);
}
END_TEST

/* tgraph.h's build_broadcasting, of every dtype. */
START_TEST(broadcasting)
{
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_graph g;
        ir_graph_init(&g);
        build_broadcasting(&g, dt);
        compile_graph(&g, NULL, "broadcasting");
        ir_graph_fini(&g);
    }
}
END_TEST

/* tgraph.h's build_sources: const of every dtype, index, random of both
 * distributions and float dtypes, reshape (bools too), array. */
START_TEST(sources_random_reshape)
{
    struct ir_graph g;
    ir_graph_init(&g);
    uint8_t bytes[60] = {1, 2, 3};
    build_sources(&g, bytes);
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

/* Launch plans at sizes the small graphs do not reach: few outputs of
 * several blocks each (split into kiln_init and kiln_fini, over the last
 * dim or an outer one, float max too), and many outputs (kiln_main: a
 * half-warp per output along a reduced last dim, a thread per output
 * along a kept one). The kernels shuffle lanes within warps. */
START_TEST(reduce_launch_plans)
{
    static const struct {
        int64_t shape[2];
        uint16_t dims;
        int op;
        uint32_t nl;
        int64_t n; /* the first launch's */
    } cases[] = {
        {{3, 200000}, 2, IR_REDUCE_ADD, 2, 16 * 4 * 3},
        {{200000, 3}, 1, IR_REDUCE_ADD, 2, 16 * 4 * 3},
        {{5, 300000}, 2, IR_REDUCE_MAX, 2, 16 * 5 * 5},
        {{100000, 64}, 2, IR_REDUCE_ADD, 1, 16 * 100000},
        {{64, 1000000}, 1, IR_REDUCE_ADD, 1, 1000000},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct ir_graph g;
        struct ir_error err;
        ir_graph_init(&g);
        int x = ir_add_extern(&g, IR_DTYPE_FLOAT32, 2, cases[k].shape, &err);
        ck_assert_int_ge(ir_add_reduce(&g, cases[k].op, x, cases[k].dims, false, &err), 0);
        bool out[4] = {false, true};
        struct jit_plan p;
        jit_plan_init(&p);
        ck_assert_int_eq(jit_fuse_plan(&g, out, &p, &err), KILN_OK);
        ck_assert_uint_eq(p.ngroups, 1);
        struct jit_cuda_launch l[JIT_CUDA_LAUNCH_MAX];
        size_t extra;
        uint32_t nl = jit_codegen_cuda_launches(&g, &p, 0, 132, l, &extra);
        ck_assert_msg(nl == cases[k].nl && l[0].n == cases[k].n,
                      "case %zu: %u launches, n %lld", k, nl, (long long) l[0].n);
        char what[32];
        snprintf(what, sizeof what, "reduce plan %zu", k);
        char *ptx = compile_group(&g, &p, 0, what);
        check_launches(&g, &p, 0, 132, ptx, what);
        ck_assert_msg(strstr(ptx, "shfl.sync.down") != NULL, "%s: no shuffle in the PTX", what);
        ck_assert_int_le(local_bytes(ptx), 256);
        kernels_compiled++;
        free(ptx);
        jit_plan_fini(&p);
        ir_graph_fini(&g);
    }
}
END_TEST

/* ---- reindex and reindex_reduce ----------------------------------------------- */

/* tgraph.h's build_reindex: extras, a condition, the overflow
 * value, then a transpose-and-flip of a computed value. */
START_TEST(reindex_every_dtype)
{
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct ir_graph g;
        ir_graph_init(&g);
        build_reindex(&g, dt);
        compile_graph(&g, NULL, "reindex");
        ir_graph_fini(&g);
    }
}
END_TEST

/* tgraph.h's build_reindex_reduce of every op, over the dtypes with distinct
 * code: float32 (the scratch), float64, int32 and uint8 (in place). */
START_TEST(reindex_reduce_every_op)
{
    static const int dts[] = {IR_DTYPE_FLOAT32, IR_DTYPE_FLOAT64, IR_DTYPE_INT32, IR_DTYPE_UINT8};
    for (int op = IR_REDUCE_ADD; op <= IR_REDUCE_MIN; op++)
        for (size_t t = 0; t < 4; t++) {
            struct ir_graph g;
            ir_graph_init(&g);
            build_reindex_reduce(&g, op, dts[t]);
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
    tcase_add_test(tc, reduce_launch_plans);
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
