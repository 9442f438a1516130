/* test_cuda_run.c: the device executor (jit/cuda_run.h).
 *
 * Where there is no GPU the suite runs this against tests/jit's stand-in
 * driver (fakecuda.c: device memory in host memory, launches that run
 * nothing), which exercises everything but the kernels themselves:
 * uploads and downloads through the staging buffers, the pool, values
 * kept resident across runs and dropped under pressure, module loading
 * of NVRTC's real PTX, relays on the host, and a sticky error failing the
 * device for good. On a real GPU (tests/gpu/run.sh; KILN_GPU_REAL=1) the
 * same graphs run and every output is compared with the interpreter.
 * Exits 77 (skip) where NVRTC cannot be loaded. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_dl.h"
#include "cuda_run.h"
#include "interp.h"
#include "kiln_err.h"
#include "run.h"
#include "tcc.h"
#include "tgraph.h"

static struct jit_compiler comp;
static struct jit_runtime *rt;
static struct jit_cuda *cuda;
static struct jit_gpu *gpu;
static struct jit_gpu_stream *gs;
static bool real; /* a real GPU: kernels' results are checked too */

static void open_gpu(size_t limit)
{
    ck_assert_int_eq(jit_compiler_init(&comp), KILN_OK);
    struct jit_runtime_opts o = {.compiler = &comp};
    ck_assert_int_eq(jit_runtime_new(&o, &rt), KILN_OK);
    ck_assert_int_eq(jit_cuda_open(JIT_CUDA_DRIVER | JIT_CUDA_NVRTC, &cuda), KILN_OK);
    char why[256] = "";
    struct jit_gpu_opts go = {.mem_limit = limit, .host_relays = !real};
    int rc = jit_gpu_open(cuda, rt, &go, &gpu, why, sizeof why);
    ck_assert_msg(rc == KILN_OK, "jit_gpu_open: %d %s", rc, why);
    ck_assert_int_eq(jit_gpu_stream_new(gpu, &gs), KILN_OK);
}

static void setup(void)
{
    open_gpu(0);
}

static void teardown(void)
{
    jit_gpu_stream_free(gs);
    jit_gpu_close(gpu);
    jit_cuda_close(cuda);
    jit_runtime_free(rt);
    jit_compiler_fini(&comp);
    gs = NULL;
    gpu = NULL;
}

static float *randf(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float) (rng(&seed) % 2001) / 1000.0f - 1.0f;
    return x;
}

/* Runs t's graph on the device and on the interpreter; relays compare
 * within float tolerance, everything else bit for bit. Only outputs the
 * device computed without a kernel are compared on the stand-in driver
 * (`all` false). Returns the run's code. */
static int run_both(struct tg *t, const void *const *ext, const uint64_t *in_tags,
                    const uint64_t *out_tags, bool all, struct jit_run_info *info)
{
    void **dev = NULL, **ref = NULL;
    struct ir_error e;
    int rc =
        jit_gpu_run(gpu, gs, &t->g, t->out, ext, in_tags, out_tags, NULL, SIZE_MAX, &dev, info, &e);
    if (rc != KILN_OK)
        return rc;
    ck_assert_int_eq(ir_interp_run(&t->g, ext, &ref, &e), KILN_OK);
    for (uint32_t i = 0; i < t->g.count; i++) {
        if (!t->out[i])
            continue;
        const struct ir_node *nd = &t->g.nodes[i];
        ck_assert_ptr_nonnull(dev[i]);
        if (!all && !(nd->op == IR_OP_MATMUL || nd->op == IR_OP_EXTERN))
            continue;
        if (nd->op == IR_OP_MATMUL && real) {
            for (int64_t k = 0; k < nd->numel; k++)
                ck_assert_float_eq_tol(((float *) dev[i])[k], ((float *) ref[i])[k], 1e-4f);
        } else {
            size_t bytes = (size_t) nd->numel * ir_dtype_size((enum ir_dtype) nd->dtype);
            ck_assert_msg(memcmp(dev[i], ref[i], bytes) == 0, "node %u (%s) differs", i,
                          ir_op_name(nd->op));
        }
    }
    jit_run_free(&t->g, dev);
    jit_run_free(&t->g, ref);
    return KILN_OK;
}

/* y = a @ b (a relay: on the stand-in driver, the host's reference loops
 * between a download and an upload, so the bytes are the interpreter's). */
START_TEST(matmul_round_trip)
{
    struct tg t;
    tg_init(&t);
    int64_t sa[2] = {33, 70}, sb[2] = {70, 9};
    int a = ext(&t, 2, sa), b = ext(&t, 2, sb);
    int y = ok(&t, ir_add_matmul(&t.g, a, b, false, false, &t.err));
    t.out[y] = true;
    float *xa = randf(33 * 70, 1), *xb = randf(70 * 9, 2);
    const void *ext_[2] = {xa, xb};
    struct jit_run_info info;
    ck_assert_int_eq(run_both(&t, ext_, NULL, NULL, true, &info), KILN_OK);
    ck_assert_uint_eq(info.groups, 1);
    struct jit_gpu_stats st;
    jit_gpu_stats(gpu, &st);
    ck_assert_uint_eq(st.uploads, 3); /* a, b, and y back from the host relay */
    ck_assert_uint_ge(st.downloads, 1);
    ck_assert_uint_eq(st.relay_runs, 1);
    ck_assert_uint_eq(st.pool_in_use, 0); /* nothing kept: every buffer back in the pool */
    ck_assert(!st.failed);
    free(xa);
    free(xb);
    tg_fini(&t);
}
END_TEST

/* An input tagged once is uploaded once: the second run reads it from the
 * device; an output tagged stays there; forget drops both. */
START_TEST(resident_values)
{
    struct tg t;
    tg_init(&t);
    int64_t sa[2] = {16, 16};
    int a = ext(&t, 2, sa), b = ext(&t, 2, sa);
    int y = ok(&t, ir_add_matmul(&t.g, a, b, false, true, &t.err));
    t.out[y] = true;
    float *xa = randf(256, 3), *xb = randf(256, 4);
    const void *ext_[2] = {xa, xb};
    uint64_t in_tags[2] = {101, 0};
    uint64_t *out_tags = calloc(t.g.count, sizeof(uint64_t));
    out_tags[y] = 202;
    ck_assert_int_eq(run_both(&t, ext_, in_tags, out_tags, true, NULL), KILN_OK);
    struct jit_gpu_stats s1, s2, s3;
    jit_gpu_stats(gpu, &s1);
    ck_assert_uint_eq(s1.resident, 2); /* input 101 and output 202 */
    ck_assert_uint_eq(s1.resident_bytes, 2 * 256 * sizeof(float));
    ck_assert_uint_eq(s1.resident_hits, 0);
    ck_assert_uint_eq(s1.pool_in_use, 2 * 256 * sizeof(float));
    out_tags[y] = 0;
    ck_assert_int_eq(run_both(&t, ext_, in_tags, out_tags, true, NULL), KILN_OK);
    jit_gpu_stats(gpu, &s2);
    ck_assert_uint_eq(s2.resident_hits, 1);
    ck_assert_uint_eq(s2.uploads, s1.uploads + 2); /* b, and y back from the host relay */
    jit_gpu_forget(gpu, 101);
    jit_gpu_forget(gpu, 202);
    jit_gpu_forget(gpu, 999); /* never kept: nothing happens */
    jit_gpu_stats(gpu, &s3);
    ck_assert_uint_eq(s3.resident, 0);
    ck_assert_uint_eq(s3.pool_in_use, 0);
    free(out_tags);
    free(xa);
    free(xb);
    tg_fini(&t);
}
END_TEST

/* Under a small pool, resident values that no run reads are dropped to
 * make room (their host copy stays), and runs go on. */
START_TEST(eviction_under_pressure)
{
    teardown();
    open_gpu((size_t) 6 << 20);
    struct tg t;
    tg_init(&t);
    int64_t sa[2] = {512, 512}; /* 1 MiB each */
    int a = ext(&t, 2, sa), b = ext(&t, 2, sa);
    int y = ok(&t, ir_add_matmul(&t.g, a, b, false, false, &t.err));
    t.out[y] = true;
    float *xa = randf(512 * 512, 5), *xb = randf(512 * 512, 6);
    const void *ext_[2] = {xa, xb};
    for (uint64_t k = 1; k <= 6; k++) {
        uint64_t in_tags[2] = {2 * k, 2 * k + 1}; /* new values every run */
        ck_assert_int_eq(run_both(&t, ext_, in_tags, NULL, k == 1, NULL), KILN_OK);
    }
    struct jit_gpu_stats st;
    jit_gpu_stats(gpu, &st);
    ck_assert_uint_gt(st.evictions, 0);
    ck_assert_uint_le(st.pool_in_use, (uint64_t) 6 << 20);
    ck_assert_uint_le(st.resident_bytes, (uint64_t) 6 << 20);
    free(xa);
    free(xb);
    tg_fini(&t);
}
END_TEST

/* Kernel groups: generated, compiled by NVRTC (then from the module
 * cache), loaded and launched as their launch plans say. */
START_TEST(kernels_load_and_launch)
{
    struct tg t;
    tg_init(&t);
    int64_t s[2] = {64, 300};
    int a = ext(&t, 2, s), b = ext(&t, 2, s);
    int e = un(&t, IR_OP_EXP, bin(&t, IR_OP_MUL, a, b));
    int r = red(&t, IR_REDUCE_ADD, e, 2, false);
    t.out[e] = t.out[r] = true;
    float *xa = randf(64 * 300, 7), *xb = randf(64 * 300, 8);
    const void *ext_[2] = {xa, xb};
    struct jit_run_info info;
    ck_assert_int_eq(run_both(&t, ext_, NULL, NULL, real, &info), KILN_OK);
    ck_assert_uint_ge(info.kernels_compiled, 1);
    struct jit_gpu_stats s1, s2;
    jit_gpu_stats(gpu, &s1);
    ck_assert_uint_ge(s1.launches, 1); /* one REDUCE kernel writing both outputs, or more */
    ck_assert_uint_ge(s1.module_loads, 1);
    ck_assert_uint_eq(s1.module_hits, 0);
    /* NVRTC assembles for the device's own architecture: cubins, which a
     * driver older than NVRTC still loads. */
    ck_assert_msg(strncmp(s1.arch, "sm_", 3) == 0, "modules for %s", s1.arch);
    ck_assert_int_eq(run_both(&t, ext_, NULL, NULL, real, &info), KILN_OK);
    ck_assert_uint_eq(info.kernels_compiled, 0);
    jit_gpu_stats(gpu, &s2);
    ck_assert_uint_eq(s2.module_loads, s1.module_loads);
    ck_assert_uint_ge(s2.module_hits, s1.module_loads);
    free(xa);
    free(xb);
    tg_fini(&t);
}
END_TEST

/* A sticky error (the stand-in driver's first kernel faults with an
 * illegal address when it runs) fails the run with DEVICE, marks the
 * device failed, and every later run fails at once. */
START_TEST(sticky_error_fails_device)
{
    teardown();
    setenv("KILN_FAKECUDA_FAIL_LAUNCH", "1", 1); /* read by the stand-in's cuInit */
    open_gpu(0);
    struct tg t;
    tg_init(&t);
    int64_t s[1] = {1000};
    int a = ext(&t, 1, s);
    int e = un(&t, IR_OP_TANH, a);
    t.out[e] = true;
    float *xa = randf(1000, 9);
    const void *ext_[1] = {xa};
    void **out = NULL;
    struct ir_error err;
    ck_assert_int_eq(
        jit_gpu_run(gpu, gs, &t.g, t.out, ext_, NULL, NULL, NULL, SIZE_MAX, &out, NULL, &err),
        KILN_EDEVICE);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err.message, "ILLEGAL_ADDRESS") != NULL, "%s", err.message);
    char why[256];
    ck_assert(jit_gpu_failed(gpu, why, sizeof why));
    /* It shows where the run next waits for the device, as on a GPU. */
    ck_assert_msg(strstr(why, "Synchronize") != NULL && strstr(why, "ILLEGAL_ADDRESS") != NULL,
                  "%s", why);
    ck_assert_int_eq(
        jit_gpu_run(gpu, gs, &t.g, t.out, ext_, NULL, NULL, NULL, SIZE_MAX, &out, NULL, &err),
        KILN_EDEVICE);
    struct jit_gpu_stats st;
    jit_gpu_stats(gpu, &st);
    ck_assert(st.failed);
    ck_assert_uint_eq(st.failed_runs, 2);
    free(xa);
    tg_fini(&t);
}
END_TEST

int main(void)
{
    struct jit_cuda *probe;
    if (jit_cuda_open(JIT_CUDA_DRIVER | JIT_CUDA_NVRTC, &probe) != KILN_OK)
        return 1;
    const struct jit_cuda_info *in = jit_cuda_info(probe);
    bool usable = in->ndevices > 0 && in->nvrtc;
    if (!usable) {
        printf("skip: %s\n", in->nvrtc ? in->why : in->nvrtc_why);
        jit_cuda_close(probe);
        return 77;
    }
    real = strstr(in->devices[0].name, "kiln fake") == NULL;
    jit_cuda_close(probe);
    Suite *s = suite_create("cuda_run");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, matmul_round_trip);
    tcase_add_test(tc, resident_values);
    tcase_add_test(tc, eviction_under_pressure);
    tcase_add_test(tc, kernels_load_and_launch);
    if (!real) /* the stand-in's failing launch: never planted on a real card */
        tcase_add_test(tc, sticky_error_fails_device);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
