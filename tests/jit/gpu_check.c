/* gpu_check.c: test graphs on a real CUDA device against the interpreter
 * (see gpu_check.h). */
#include "gpu_check.h"

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

struct gpu_check {
    struct jit_compiler comp;
    struct jit_runtime *rt;
    struct jit_cuda *cuda;
    struct jit_gpu *gpu;
    struct jit_gpu_stream *s;
    bool subset;
    bool dry; /* tests/jit's stand-in driver: runs, but computes nothing to compare */
    unsigned seen, graphs, outputs, exact, close;
};

struct gpu_check *gpu_check_open(void)
{
    struct jit_cuda *c = NULL;
    if (jit_cuda_open(JIT_CUDA_DRIVER | JIT_CUDA_NVRTC, &c) != KILN_OK)
        return NULL;
    const struct jit_cuda_info *in = jit_cuda_info(c);
    if (in->ndevices == 0 || !in->nvrtc) {
        jit_cuda_close(c);
        return NULL;
    }
    struct gpu_check *gc = calloc(1, sizeof *gc);
    ck_assert_ptr_nonnull(gc);
    gc->cuda = c;
    gc->dry = strstr(in->devices[0].name, "kiln fake") != NULL;
    gc->subset = getenv("KILN_GPU_SUBSET") != NULL;
    ck_assert_int_eq(jit_compiler_init(&gc->comp), KILN_OK);
    struct jit_runtime_opts o = {.compiler = &gc->comp};
    ck_assert_int_eq(jit_runtime_new(&o, &gc->rt), KILN_OK);
    char why[256] = "";
    struct jit_gpu_opts go = {.ordinal = 0};
    int rc = jit_gpu_open(c, gc->rt, &go, &gc->gpu, why, sizeof why);
    ck_assert_msg(rc == KILN_OK, "jit_gpu_open: %d %s", rc, why);
    ck_assert_int_eq(jit_gpu_stream_new(gc->gpu, &gc->s), KILN_OK);
    fprintf(stderr, "gpu_check: running the graphs on %s too%s\n", in->devices[0].name,
            gc->dry ? " (no results to compare: it computes nothing)" : "");
    return gc;
}

void gpu_check_close(struct gpu_check *gc)
{
    if (gc == NULL)
        return;
    fprintf(stderr,
            "gpu_check: %u graphs on the device, %u outputs: %u bit for bit, %u within "
            "tolerance\n",
            gc->graphs, gc->outputs, gc->exact, gc->close);
    jit_gpu_stream_free(gc->s);
    jit_gpu_close(gc->gpu);
    jit_cuda_close(gc->cuda);
    jit_runtime_free(gc->rt);
    jit_compiler_fini(&gc->comp);
    free(gc);
}

/* Random bytes of dtype dt: small floats (no infinities from exp), any
 * integer, bools 0 or 1. */
static void fill(void *p, int dt, int64_t n, uint64_t *seed)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rng(seed);
        double f = (double) (r % 4001) / 1000.0 - 2.0;
        switch (dt) {
        case IR_DTYPE_FLOAT32:
            ((float *) p)[i] = (float) f;
            break;
        case IR_DTYPE_FLOAT64:
            ((double *) p)[i] = f;
            break;
        case IR_DTYPE_BOOL:
            ((uint8_t *) p)[i] = (uint8_t) (r & 1);
            break;
        default:
            memcpy((char *) p + (size_t) i * ir_dtype_size(dt), &r, ir_dtype_size(dt));
        }
    }
}

/* May node n's value differ from glibc's in its last bits? */
static bool inexact(const struct ir_graph *g, uint32_t n, bool *seen)
{
    if (seen[n])
        return false;
    seen[n] = true;
    const struct ir_node *nd = &g->nodes[n];
    if (nd->op >= IR_OP_MATMUL && nd->op <= IR_OP_CONV2D_BWD_WEIGHT)
        return true;
    if (nd->op == IR_OP_RANDOM)
        return true; /* normal numbers use the device's log, sqrt and cos */
    if (nd->dtype == IR_DTYPE_FLOAT64 &&
        (nd->op == IR_OP_SIN || nd->op == IR_OP_COS || nd->op == IR_OP_TAN ||
         nd->op == IR_OP_TANH || nd->op == IR_OP_ERF || nd->op == IR_OP_EXP ||
         nd->op == IR_OP_LOG || nd->op == IR_OP_POW))
        return true;
    for (int k = 0; k < nd->nin; k++)
        if (inexact(g, nd->in[k], seen))
            return true;
    return false;
}

/* The same bytes, any NaN matching any NaN (as test_run.c compares). */
static bool same_bytes(int dt, const void *a, const void *b, int64_t n, size_t bytes)
{
    if (memcmp(a, b, bytes) == 0)
        return true;
    for (int64_t k = 0; k < n; k++) {
        if (dt == IR_DTYPE_FLOAT32) {
            float x = ((const float *) a)[k], y = ((const float *) b)[k];
            if (!(isnan(x) && isnan(y)) && memcmp(&x, &y, 4) != 0)
                return false;
        } else if (dt == IR_DTYPE_FLOAT64) {
            double x = ((const double *) a)[k], y = ((const double *) b)[k];
            if (!(isnan(x) && isnan(y)) && memcmp(&x, &y, 8) != 0)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static bool near(double a, double b, double tol)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= tol * fmax(1.0, fmax(fabs(a), fabs(b)));
}

void gpu_check_graph(struct gpu_check *gc, const struct ir_graph *g, const bool *out,
                     const char *what)
{
    if (gc == NULL || (gc->subset && gc->seen++ % 8 != 0))
        return;
    bool *marks = calloc(g->count + 1, 1);
    const void **ext = calloc(g->count + 1, sizeof *ext);
    ck_assert(marks != NULL && ext != NULL);
    uint64_t seed = 0x6b696c6e + g->count;
    for (uint32_t i = 0; i < g->count; i++) {
        const struct ir_node *nd = &g->nodes[i];
        marks[i] = out ? out[i] : true;
        if (nd->op == IR_OP_EXTERN) {
            void *p = malloc((size_t) nd->numel * ir_dtype_size(nd->dtype) + 1);
            fill(p, nd->dtype, nd->numel, &seed);
            ext[nd->attr.ext.slot] = p;
        }
    }
    void **dev = NULL, **ref = NULL;
    struct ir_error e;
    int rc = jit_gpu_run(gc->gpu, gc->s, g, marks, ext, NULL, NULL, NULL, SIZE_MAX, &dev, NULL, &e);
    ck_assert_msg(rc == KILN_OK, "%s: on the device: %d %s", what, rc, e.message);
    ck_assert_int_eq(ir_interp_run(g, ext, &ref, &e), KILN_OK);
    gc->graphs++;
    for (uint32_t i = 0; i < g->count && !gc->dry; i++) {
        if (!marks[i])
            continue;
        const struct ir_node *nd = &g->nodes[i];
        size_t bytes = (size_t) nd->numel * ir_dtype_size(nd->dtype);
        gc->outputs++;
        if (same_bytes(nd->dtype, dev[i], ref[i], nd->numel, bytes)) {
            gc->exact++;
            continue;
        }
        bool *seen = calloc(g->count, 1);
        bool loose = inexact(g, i, seen);
        free(seen);
        ck_assert_msg(loose, "%s: node %u (%s %s) differs from the interpreter", what, i,
                      ir_op_name(nd->op), ir_dtype_name(nd->dtype));
        double tol = nd->dtype == IR_DTYPE_FLOAT64 ? 1e-12 : 1e-5;
        for (int64_t k = 0;
             k < nd->numel && (nd->dtype == IR_DTYPE_FLOAT32 || nd->dtype == IR_DTYPE_FLOAT64);
             k++) {
            double a =
                nd->dtype == IR_DTYPE_FLOAT32 ? ((float *) dev[i])[k] : ((double *) dev[i])[k];
            double b =
                nd->dtype == IR_DTYPE_FLOAT32 ? ((float *) ref[i])[k] : ((double *) ref[i])[k];
            ck_assert_msg(near(a, b, tol),
                          "%s: node %u (%s) element %lld: device %.17g, interpreter %.17g", what, i,
                          ir_op_name(nd->op), (long long) k, a, b);
        }
        /* (an integer or bool from an inexact float, a cast or a
         * comparison, is let through: its inputs were checked above) */
        gc->close++;
    }
    jit_run_free(g, dev);
    jit_run_free(g, ref);
    for (uint32_t i = 0; i < g->count; i++)
        if (g->nodes[i].op == IR_OP_EXTERN)
            free((void *) ext[g->nodes[i].attr.ext.slot]);
    free(ext);
    free(marks);
}
