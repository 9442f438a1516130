/* test_cuda_relay.c: the GPU relays (jit/cuda_relay.h): cuBLAS and cuDNN.
 *
 * Without a GPU (the build machines): the libraries load and every entry
 * point resolves, STATUS's line names their versions, availability is
 * answered per op, handles cannot be made without a driver or a current
 * context and say why, and the mapping of kiln's nodes onto the libraries
 * (cuda_relay_map.h) gives the right numbers. The matmul mapping is also
 * run: a plain column-major strided batched gemm written here from
 * cuBLAS's documented semantics, fed the mapped parameters, must
 * reproduce ir_relay_ref for every transpose combination and batch.
 *
 * With a GPU (cuInit succeeds and a device exists) each relay also runs on
 * the device against ir_relay_ref on random data: matmul of every
 * transpose combination, batched, float32 (full FP32 and TF32) and float64;
 * the three convolutions with groups, stride, padding and dilation; an
 * empty operand (zeros); and the gradients twice, bit for bit.
 *
 * Where neither cuBLAS nor cuDNN can be loaded (no toolkit), the suite
 * says so and exits 77 (meson: SKIP).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_relay.h"
#include "cuda_relay_map.h"
#include "ir.h"
#include "kiln_err.h"
#include "relay_ref.h"

static struct jit_cuda_relay *rel;

static void setup(void)
{
    ck_assert_int_eq(jit_cuda_relay_open(&rel), KILN_OK);
}

static void teardown(void)
{
    jit_cuda_relay_close(rel);
    rel = NULL;
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
    size_t es = ir_dtype_size(dt);
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
    ck_assert_msg(r >= 0, "array: %s", err.message);
    return r;
}

static double at(int dt, const void *p, int64_t k)
{
    return dt == IR_DTYPE_FLOAT32 ? ((const float *) p)[k] : ((const double *) p)[k];
}

/* max |a - b| / (max |b| + 1e-30) */
static double relerr(const struct ir_node *n, const void *a, const void *b)
{
    double e = 0, m = 0;
    for (int64_t k = 0; k < n->numel; k++) {
        double d = fabs(at(n->dtype, a, k) - at(n->dtype, b, k));
        e = d > e ? d : e;
        m = fabs(at(n->dtype, b, k)) > m ? fabs(at(n->dtype, b, k)) : m;
    }
    return e / (m + 1e-30);
}

/* Node r of g by the reference (malloc'd). */
static void *reference(const struct ir_graph *g, int r)
{
    const struct ir_node *n = &g->nodes[r];
    void *y = calloc((size_t) (n->numel ? n->numel : 1), ir_dtype_size(n->dtype));
    const struct ir_node *an = &g->nodes[n->in[0]], *bn = &g->nodes[n->in[1]];
    ir_relay_ref(n, an, bn, an->attr.array.data, bn->attr.array.data, y, 0,
                 n->rank ? n->shape[0] : 1);
    return y;
}

/* ---- matmul and conv cases ------------------------------------------------- */

struct mcase {
    int rank;
    int64_t batch[2];
    int64_t n, k, m;
};

static const struct mcase mcases[] = {
    {2, {0, 0}, 5, 7, 3}, {2, {0, 0}, 1, 1, 1}, {2, {0, 0}, 17, 33, 9},
    {3, {4, 0}, 6, 5, 8}, {4, {2, 3}, 3, 4, 5}, {3, {1, 0}, 64, 32, 48},
};

/* A matmul node of case c with the given transposes; returns its index. */
static int matmul_graph(struct ir_graph *g, const struct mcase *c, enum ir_dtype dt, bool ta,
                        bool tb)
{
    int64_t as[4], bs[4];
    int r = c->rank;
    for (int d = 0; d < r - 2; d++)
        as[d] = bs[d] = c->batch[d];
    as[r - 2] = ta ? c->k : c->n;
    as[r - 1] = ta ? c->n : c->k;
    bs[r - 2] = tb ? c->m : c->k;
    bs[r - 1] = tb ? c->k : c->m;
    int a = array(g, dt, r, as), b = array(g, dt, r, bs);
    struct ir_error err;
    int y = ir_add_matmul(g, a, b, ta, tb, &err);
    ck_assert_msg(y >= 0, "matmul: %s", err.message);
    return y;
}

struct ccase {
    int64_t n, c, h, w, o, kh, kw;
    struct ir_conv a;
};

static const struct ccase ccases[] = {
    {2, 3, 8, 8, 4, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}},
    {1, 4, 9, 7, 6, 3, 2, {{2, 1}, {1, 0}, {1, 1}, 2}},
    {3, 6, 10, 11, 6, 3, 3, {{1, 2}, {2, 1}, {2, 1}, 3}},
    {2, 8, 6, 6, 8, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 8}},
    {1, 2, 5, 5, 3, 5, 5, {{1, 1}, {2, 2}, {1, 1}, 1}},
};

static void conv_shapes(const struct ccase *k, int64_t *xs, int64_t *ws, int64_t *ys)
{
    xs[0] = k->n, xs[1] = k->c, xs[2] = k->h, xs[3] = k->w;
    ws[0] = k->o, ws[1] = k->c / k->a.groups, ws[2] = k->kh, ws[3] = k->kw;
    ys[0] = k->n, ys[1] = k->o;
    ys[2] = ir_conv_out_dim(k->h, k->kh, k->a.stride[0], k->a.pad[0], k->a.dilation[0]);
    ys[3] = ir_conv_out_dim(k->w, k->kw, k->a.stride[1], k->a.pad[1], k->a.dilation[1]);
}

static int conv_graph(struct ir_graph *g, const struct ccase *k, enum ir_dtype d, int op)
{
    int64_t xs[4], ws[4], ys[4];
    conv_shapes(k, xs, ws, ys);
    struct ir_error err;
    int r;
    if (op == IR_OP_CONV2D)
        r = ir_add_conv(g, op, array(g, d, 4, xs), array(g, d, 4, ws), 0, NULL, &k->a, &err);
    else if (op == IR_OP_CONV2D_BWD_DATA)
        r = ir_add_conv(g, op, array(g, d, 4, ys), array(g, d, 4, ws), 4, xs, &k->a, &err);
    else
        r = ir_add_conv(g, op, array(g, d, 4, xs), array(g, d, 4, ys), 4, ws, &k->a, &err);
    ck_assert_msg(r >= 0, "conv: %s", err.message);
    return r;
}

/* ---- without a GPU ---------------------------------------------------------- */

START_TEST(libraries_load)
{
    const struct jit_cuda_relay_info *in = jit_cuda_relay_info(rel);
    ck_assert_msg(in->cublas, "cuBLAS: %s", in->cublas_why);
    ck_assert_msg(in->cudnn, "cuDNN: %s", in->cudnn_why);
    ck_assert_int_ge(in->cublas_major, 12);
    ck_assert_uint_ge(in->cudnn_version, 90000);
    char line[512];
    jit_cuda_relay_describe(rel, line, sizeof line);
    ck_assert_msg(strncmp(line, "cuBLAS ", 7) == 0 && strstr(line, ", cuDNN 9.") != NULL, "%s",
                  line);
    printf("test_cuda_relay: %s; driver: %s\n", line, in->driver ? "loaded" : in->driver_why);
    char tiny[8];
    jit_cuda_relay_describe(rel, tiny, sizeof tiny);
    ck_assert_uint_eq(strlen(tiny), sizeof tiny - 1);
}
END_TEST

START_TEST(available_per_op)
{
    const char *why = "x";
    ck_assert(jit_cuda_relay_available(rel, IR_OP_MATMUL, &why));
    ck_assert_ptr_null(why);
    for (int op = IR_OP_CONV2D; op <= IR_OP_CONV2D_BWD_WEIGHT; op++)
        ck_assert(jit_cuda_relay_available(rel, op, NULL));
    ck_assert(!jit_cuda_relay_available(rel, IR_OP_ADD, &why));
    ck_assert_str_eq(why, "not a relay op");
    ck_assert(!jit_cuda_relay_available(rel, 9999, NULL));
}
END_TEST

START_TEST(gemm_map_numbers)
{
    struct ir_graph g;
    ir_graph_init(&g);
    /* [5, 7] x [7, 3]: C^T (3 x 5) = b^T (3 x 7, ld 3) a^T (7 x 5, ld 7). */
    int y = matmul_graph(&g, &mcases[0], IR_DTYPE_FLOAT32, false, false);
    const struct ir_node *n = &g.nodes[y];
    struct jit_cuda_gemm m;
    ck_assert(jit_cuda_gemm_map(n, &g.nodes[n->in[0]], &g.nodes[n->in[1]], &m));
    ck_assert(!m.trans_a && !m.trans_b);
    ck_assert_int_eq(m.m, 3);
    ck_assert_int_eq(m.n, 5);
    ck_assert_int_eq(m.k, 7);
    ck_assert_int_eq(m.lda, 3);
    ck_assert_int_eq(m.ldb, 7);
    ck_assert_int_eq(m.ldc, 3);
    ck_assert_int_eq(m.batch, 1);
    /* Both transposed: a stored [7, 5], b stored [3, 7]. */
    y = matmul_graph(&g, &mcases[0], IR_DTYPE_FLOAT32, true, true);
    n = &g.nodes[y];
    ck_assert(jit_cuda_gemm_map(n, &g.nodes[n->in[0]], &g.nodes[n->in[1]], &m));
    ck_assert(m.trans_a && m.trans_b);
    ck_assert_int_eq(m.lda, 7);
    ck_assert_int_eq(m.ldb, 5);
    ck_assert_int_eq(m.ldc, 3);
    /* Batched [2, 3, n 3, k 4] x [2, 3, 4, m 5], a transposed. */
    y = matmul_graph(&g, &mcases[4], IR_DTYPE_FLOAT64, true, false);
    n = &g.nodes[y];
    ck_assert(jit_cuda_gemm_map(n, &g.nodes[n->in[0]], &g.nodes[n->in[1]], &m));
    ck_assert(!m.trans_a && m.trans_b);
    ck_assert_int_eq(m.m, 5);
    ck_assert_int_eq(m.n, 3);
    ck_assert_int_eq(m.k, 4);
    ck_assert_int_eq(m.lda, 5);
    ck_assert_int_eq(m.ldb, 3);
    ck_assert_int_eq(m.ldc, 5);
    ck_assert_int_eq(m.batch, 6);
    ck_assert_int_eq(m.stride_a, 20);
    ck_assert_int_eq(m.stride_b, 12);
    ck_assert_int_eq(m.stride_c, 15);
    /* Not a matmul; batch dims that differ (no constructor makes one). */
    ck_assert(!jit_cuda_gemm_map(&g.nodes[n->in[0]], &g.nodes[n->in[0]], &g.nodes[n->in[1]], &m));
    struct ir_node odd = *n, oa = g.nodes[n->in[0]];
    oa.shape[0] = 1;
    ck_assert(!jit_cuda_gemm_map(&odd, &oa, &g.nodes[n->in[1]], &m));
    ir_graph_fini(&g);
}
END_TEST

/* cuBLAS's gemm as its documentation defines it: column-major, element
 * (i, j) of a matrix with leading dim ld at i + j * ld, op(X) = X or X^T. */
static void colmajor_gemm(const struct jit_cuda_gemm *m, int dt, const void *A, const void *B,
                          void *C)
{
    for (int64_t p = 0; p < m->batch; p++)
        for (int64_t j = 0; j < m->n; j++)
            for (int64_t i = 0; i < m->m; i++) {
                double s = 0;
                for (int64_t l = 0; l < m->k; l++) {
                    int64_t ia = m->trans_a ? l + i * m->lda : i + l * m->lda;
                    int64_t ib = m->trans_b ? j + l * m->ldb : l + j * m->ldb;
                    s += at(dt, A, p * m->stride_a + ia) * at(dt, B, p * m->stride_b + ib);
                }
                int64_t ic = p * m->stride_c + i + j * m->ldc;
                if (dt == IR_DTYPE_FLOAT32)
                    ((float *) C)[ic] = (float) s;
                else
                    ((double *) C)[ic] = s;
            }
}

START_TEST(gemm_map_computes_the_matmul)
{
    for (size_t c = 0; c < sizeof mcases / sizeof mcases[0]; c++)
        for (int t = 0; t < 4; t++) {
            struct ir_graph g;
            ir_graph_init(&g);
            int y = matmul_graph(&g, &mcases[c], IR_DTYPE_FLOAT64, t & 1, t & 2);
            const struct ir_node *n = &g.nodes[y];
            const struct ir_node *an = &g.nodes[n->in[0]], *bn = &g.nodes[n->in[1]];
            struct jit_cuda_gemm m;
            ck_assert(jit_cuda_gemm_map(n, an, bn, &m));
            double *got = calloc((size_t) n->numel, sizeof *got);
            /* cuBLAS's A is kiln's b, its B kiln's a. */
            colmajor_gemm(&m, n->dtype, bn->attr.array.data, an->attr.array.data, got);
            double *want = reference(&g, y);
            ck_assert_msg(relerr(n, got, want) <= 1e-12, "case %zu ta %d tb %d: %g", c, t & 1,
                          !!(t & 2), relerr(n, got, want));
            free(got);
            free(want);
            ir_graph_fini(&g);
        }
}
END_TEST

START_TEST(conv_map_numbers)
{
    struct ir_graph g;
    ir_graph_init(&g);
    /* Case 2: N 3, C 6, 10x11, O 6, 3x3, stride (1, 2), pad (2, 1), dilation (2, 1), groups 3:
     * oh = (10 + 4 - 2*2 - 1) / 1 + 1 = 10, ow = (11 + 2 - 2 - 1) / 2 + 1 = 6. */
    for (int op = IR_OP_CONV2D; op <= IR_OP_CONV2D_BWD_WEIGHT; op++) {
        int r = conv_graph(&g, &ccases[2], IR_DTYPE_FLOAT32, op);
        const struct ir_node *n = &g.nodes[r];
        struct jit_cuda_conv c;
        ck_assert(jit_cuda_conv_map(n, &g.nodes[n->in[0]], &g.nodes[n->in[1]], &c));
        const int x[4] = {3, 6, 10, 11}, w[4] = {6, 2, 3, 3}, y[4] = {3, 6, 10, 6};
        ck_assert_int_eq(c.op, op);
        for (int d = 0; d < 4; d++) {
            ck_assert_int_eq(c.x[d], x[d]);
            ck_assert_int_eq(c.w[d], w[d]);
            ck_assert_int_eq(c.y[d], y[d]);
        }
        ck_assert_int_eq(c.stride[0], 1);
        ck_assert_int_eq(c.stride[1], 2);
        ck_assert_int_eq(c.pad[0], 2);
        ck_assert_int_eq(c.pad[1], 1);
        ck_assert_int_eq(c.dilation[0], 2);
        ck_assert_int_eq(c.dilation[1], 1);
        ck_assert_int_eq(c.groups, 3);
    }
    /* Depthwise (groups = C = O), 1x1. */
    int r = conv_graph(&g, &ccases[3], IR_DTYPE_FLOAT64, IR_OP_CONV2D_BWD_WEIGHT);
    const struct ir_node *n = &g.nodes[r];
    struct jit_cuda_conv c;
    ck_assert(jit_cuda_conv_map(n, &g.nodes[n->in[0]], &g.nodes[n->in[1]], &c));
    ck_assert_int_eq(c.w[0], 8);
    ck_assert_int_eq(c.w[1], 1);
    ck_assert_int_eq(c.groups, 8);
    ck_assert_int_eq(c.y[2], 6);
    ck_assert_int_eq(c.y[3], 6);
    /* A dim over cuDNN's int is refused, not truncated. */
    struct ir_node big = *n, bx = g.nodes[n->in[0]];
    bx.shape[3] = (int64_t) INT_MAX + 1;
    ck_assert(!jit_cuda_conv_map(&big, &bx, &g.nodes[n->in[1]], &c));
    ck_assert(!jit_cuda_conv_map(&g.nodes[n->in[0]], &bx, &bx, &c));
    ir_graph_fini(&g);
}
END_TEST

/* ---- with a GPU ------------------------------------------------------------- */

/* The few driver calls the device test makes, declared as cuda.h has them. */
typedef unsigned int cu_result;
typedef struct CUctx_st *cu_context;
typedef struct CUstream_st *cu_stream;
static struct {
    void *lib;
    cu_result (*init)(unsigned);
    cu_result (*device_get_count)(int *);
    cu_result (*device_get)(int *, int);
    cu_result (*primary_retain)(cu_context *, int);
    cu_result (*primary_release)(int);
    cu_result (*ctx_set_current)(cu_context);
    cu_result (*stream_create)(cu_stream *, unsigned);
    cu_result (*stream_destroy)(cu_stream);
    cu_result (*stream_sync)(cu_stream);
    cu_result (*mem_alloc)(unsigned long long *, size_t);
    cu_result (*mem_free)(unsigned long long);
    cu_result (*htod)(unsigned long long, const void *, size_t);
    cu_result (*dtoh)(void *, unsigned long long, size_t);
    int dev;
    cu_context ctx;
    cu_stream stream;
} gpu;

#include <dlfcn.h>

/* True when a device can run the GPU cases (the context is then current). */
static bool gpu_open(void)
{
    if (gpu.ctx != NULL)
        return gpu.ctx_set_current(gpu.ctx) == 0;
    gpu.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (gpu.lib == NULL)
        return false;
    struct {
        const char *name;
        void *slot;
    } syms[] = {
        {"cuInit", &gpu.init},
        {"cuDeviceGetCount", &gpu.device_get_count},
        {"cuDeviceGet", &gpu.device_get},
        {"cuDevicePrimaryCtxRetain", &gpu.primary_retain},
        {"cuDevicePrimaryCtxRelease_v2", &gpu.primary_release},
        {"cuCtxSetCurrent", &gpu.ctx_set_current},
        {"cuStreamCreate", &gpu.stream_create},
        {"cuStreamDestroy_v2", &gpu.stream_destroy},
        {"cuStreamSynchronize", &gpu.stream_sync},
        {"cuMemAlloc_v2", &gpu.mem_alloc},
        {"cuMemFree_v2", &gpu.mem_free},
        {"cuMemcpyHtoD_v2", &gpu.htod},
        {"cuMemcpyDtoH_v2", &gpu.dtoh},
    };
    for (size_t k = 0; k < sizeof syms / sizeof syms[0]; k++) {
        void *p = dlsym(gpu.lib, syms[k].name);
        if (p == NULL)
            return false;
        memcpy(syms[k].slot, &p, sizeof p);
    }
    int count = 0;
    if (gpu.init(0) != 0 || gpu.device_get_count(&count) != 0 || count < 1 ||
        gpu.device_get(&gpu.dev, 0) != 0)
        return false;
    /* A driver and a device, but no context current yet: handles refuse. */
    struct jit_cuda_relay_handles *h = NULL;
    struct ir_error err;
    ck_assert_int_eq(jit_cuda_relay_handles_new_ex(rel, NULL, &h, &err), KILN_EUNSUPPORTED);
    ck_assert_msg(strstr(err.message, "context") != NULL, "%s", err.message);
    ck_assert_int_eq(gpu.primary_retain(&gpu.ctx, gpu.dev), 0);
    ck_assert_int_eq(gpu.ctx_set_current(gpu.ctx), 0);
    /* A blocking stream: it waits for the synchronous copies, which run on
     * the legacy default stream. */
    ck_assert_int_eq(gpu.stream_create(&gpu.stream, 0), 0);
    return true;
}

/* Device memory of `bytes` (at least 1), holding p's bytes unless p is NULL. */
static unsigned long long upload(const void *p, size_t bytes)
{
    unsigned long long d = 0;
    ck_assert_int_eq(gpu.mem_alloc(&d, bytes ? bytes : 1), 0);
    if (p != NULL && bytes > 0)
        ck_assert_int_eq(gpu.htod(d, p, bytes), 0);
    return d;
}

/* Runs relay node r of g on the device with `wsb` bytes of workspace
 * (SIZE_MAX: what jit_cuda_relay_workspace asks). Returns the run's code;
 * on KILN_OK *out is the result (malloc'd). */
static int device_try(struct jit_cuda_relay_handles *h, const struct ir_graph *g, int r, bool tf32,
                      size_t wsb, void **out, struct ir_error *err)
{
    const struct ir_node *n = &g->nodes[r];
    const struct ir_node *an = &g->nodes[n->in[0]], *bn = &g->nodes[n->in[1]];
    size_t es = ir_dtype_size(n->dtype), ybytes = (size_t) n->numel * es;
    unsigned long long a = upload(an->attr.array.data, (size_t) an->numel * es);
    unsigned long long b = upload(bn->attr.array.data, (size_t) bn->numel * es);
    unsigned long long y = upload(NULL, ybytes), ws = 0;
    if (wsb == SIZE_MAX)
        wsb = jit_cuda_relay_workspace(h, g, (uint32_t) r);
    if (wsb)
        ck_assert_int_eq(gpu.mem_alloc(&ws, wsb), 0);
    int rc = jit_cuda_relay_run(h, g, (uint32_t) r, a, b, y, ws, wsb, tf32, err);
    ck_assert_int_eq(gpu.stream_sync(gpu.stream), 0);
    *out = NULL;
    if (rc == KILN_OK) {
        *out = malloc(ybytes ? ybytes : 1);
        if (ybytes)
            ck_assert_int_eq(gpu.dtoh(*out, y, ybytes), 0);
    }
    gpu.mem_free(a), gpu.mem_free(b), gpu.mem_free(y);
    if (ws)
        gpu.mem_free(ws);
    return rc;
}

static void *device_run(struct jit_cuda_relay_handles *h, const struct ir_graph *g, int r,
                        bool tf32)
{
    void *out;
    struct ir_error err;
    int rc = device_try(h, g, r, tf32, SIZE_MAX, &out, &err);
    ck_assert_msg(rc == KILN_OK, "%s: %s", ir_op_name(g->nodes[r].op), err.message);
    return out;
}

START_TEST(gpu_matmul)
{
    if (!gpu_open())
        return; /* no device: the mapping tests above are what runs */
    struct jit_cuda_relay_handles *h = NULL;
    ck_assert_int_eq(jit_cuda_relay_handles_new(rel, gpu.stream, &h), KILN_OK);
    for (size_t c = 0; c < sizeof mcases / sizeof mcases[0]; c++)
        for (int dt = IR_DTYPE_FLOAT32; dt <= IR_DTYPE_FLOAT64; dt++)
            for (int t = 0; t < 4; t++)
                for (int fast = 0; fast < (dt == IR_DTYPE_FLOAT32 ? 2 : 1); fast++) {
                    struct ir_graph g;
                    ir_graph_init(&g);
                    int y = matmul_graph(&g, &mcases[c], (enum ir_dtype) dt, t & 1, t & 2);
                    const struct ir_node *n = &g.nodes[y];
                    void *want = reference(&g, y), *got = device_run(h, &g, y, fast);
                    double tol = dt == IR_DTYPE_FLOAT64 ? 1e-12 : fast ? 5e-3 : 2e-5;
                    ck_assert_msg(relerr(n, got, want) <= tol, "case %zu dt %d t %d tf32 %d: %g", c,
                                  dt, t, fast, relerr(n, got, want));
                    free(want), free(got);
                    ir_graph_fini(&g);
                }
    jit_cuda_relay_handles_free(h);
}
END_TEST

START_TEST(gpu_conv)
{
    if (!gpu_open())
        return;
    struct jit_cuda_relay_handles *h = NULL;
    ck_assert_int_eq(jit_cuda_relay_handles_new(rel, gpu.stream, &h), KILN_OK);
    for (size_t c = 0; c < sizeof ccases / sizeof ccases[0]; c++)
        for (int dt = IR_DTYPE_FLOAT32; dt <= IR_DTYPE_FLOAT64; dt++)
            for (int op = IR_OP_CONV2D; op <= IR_OP_CONV2D_BWD_WEIGHT; op++)
                for (int fast = 0; fast < (dt == IR_DTYPE_FLOAT32 ? 2 : 1); fast++) {
                    struct ir_graph g;
                    ir_graph_init(&g);
                    int r = conv_graph(&g, &ccases[c], (enum ir_dtype) dt, op);
                    const struct ir_node *n = &g.nodes[r];
                    void *want = reference(&g, r), *got = device_run(h, &g, r, fast);
                    double tol = dt == IR_DTYPE_FLOAT64 ? 1e-11 : fast ? 5e-3 : 5e-5;
                    ck_assert_msg(relerr(n, got, want) <= tol, "%s case %zu dt %d tf32 %d: %g",
                                  ir_op_name(op), c, dt, fast, relerr(n, got, want));
                    if (op != IR_OP_CONV2D) { /* the gradients: the same bits again */
                        void *again = device_run(h, &g, r, fast);
                        ck_assert_msg(
                            memcmp(again, got, (size_t) n->numel * ir_dtype_size(n->dtype)) == 0,
                            "%s case %zu dt %d: not deterministic", ir_op_name(op), c, dt);
                        free(again);
                    }
                    free(want), free(got);
                    ir_graph_fini(&g);
                }
    jit_cuda_relay_handles_free(h);
}
END_TEST

/* An empty operand: the sums are over nothing, the result zeros. */
START_TEST(gpu_empty_operand)
{
    if (!gpu_open())
        return;
    struct jit_cuda_relay_handles *h = NULL;
    ck_assert_int_eq(jit_cuda_relay_handles_new(rel, gpu.stream, &h), KILN_OK);
    struct ir_graph g;
    ir_graph_init(&g);
    const struct mcase k0 = {2, {0, 0}, 4, 0, 3};
    int y = matmul_graph(&g, &k0, IR_DTYPE_FLOAT32, false, false);
    float *got = device_run(h, &g, y, false);
    for (int k = 0; k < 12; k++)
        ck_assert(got[k] == 0.0f);
    free(got);
    ir_graph_fini(&g);
    jit_cuda_relay_handles_free(h);
}
END_TEST

/* No workspace at all: matmul keeps to cuBLAS's own pool; a convolution
 * takes an algorithm that needs none, or is refused, saying so. */
START_TEST(gpu_without_workspace)
{
    if (!gpu_open())
        return;
    struct jit_cuda_relay_handles *h = NULL;
    ck_assert_int_eq(jit_cuda_relay_handles_new(rel, gpu.stream, &h), KILN_OK);
    struct ir_graph g;
    ir_graph_init(&g);
    int y = matmul_graph(&g, &mcases[2], IR_DTYPE_FLOAT32, false, true);
    void *got, *want = reference(&g, y);
    struct ir_error err;
    ck_assert_int_eq(device_try(h, &g, y, false, 0, &got, &err), KILN_OK);
    ck_assert(relerr(&g.nodes[y], got, want) <= 2e-5);
    free(got), free(want);
    for (int op = IR_OP_CONV2D; op <= IR_OP_CONV2D_BWD_WEIGHT; op++) {
        int r = conv_graph(&g, &ccases[0], IR_DTYPE_FLOAT32, op);
        int rc = device_try(h, &g, r, false, 0, &got, &err);
        if (rc == KILN_OK) {
            want = reference(&g, r);
            ck_assert(relerr(&g.nodes[r], got, want) <= 5e-5);
            free(got), free(want);
        } else {
            ck_assert_int_eq(rc, KILN_EUNSUPPORTED);
            ck_assert_msg(strstr(err.message, "workspace") != NULL, "%s", err.message);
            ck_assert_int_eq(err.node, r);
        }
    }
    ir_graph_fini(&g);
    jit_cuda_relay_handles_free(h);
}
END_TEST

/* No driver, or a driver and no context current in this thread: a typed
 * refusal that says which, nothing made. */
START_TEST(handles_need_a_context)
{
    if (gpu.ctx != NULL) /* a GPU case ran in this process (CK_FORK=no) */
        ck_assert_int_eq(gpu.ctx_set_current(NULL), 0);
    struct jit_cuda_relay_handles *h = (void *) 1;
    struct ir_error err;
    memset(&err, 0, sizeof err);
    int rc = jit_cuda_relay_handles_new_ex(rel, NULL, &h, &err);
    ck_assert_int_eq(rc, KILN_EUNSUPPORTED);
    ck_assert_ptr_null(h);
    ck_assert_int_eq(err.code, KILN_EUNSUPPORTED);
    ck_assert_int_eq(err.node, -1);
    ck_assert_msg(err.message[0] != '\0', "a reason");
    ck_assert_int_eq(jit_cuda_relay_handles_new(rel, NULL, &h), KILN_EUNSUPPORTED);
    jit_cuda_relay_handles_free(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cuda_relay");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, libraries_load);
    tcase_add_test(tc, available_per_op);
    tcase_add_test(tc, gemm_map_numbers);
    tcase_add_test(tc, gemm_map_computes_the_matmul);
    tcase_add_test(tc, conv_map_numbers);
    tcase_add_test(tc, gpu_matmul);
    tcase_add_test(tc, gpu_conv);
    tcase_add_test(tc, gpu_empty_operand);
    tcase_add_test(tc, gpu_without_workspace);
    tcase_add_test(tc, handles_need_a_context);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* Without cuBLAS and cuDNN there is nothing to test: say why, and skip. */
    struct jit_cuda_relay *r = NULL;
    if (jit_cuda_relay_open(&r) != KILN_OK)
        return EXIT_FAILURE;
    const struct jit_cuda_relay_info *in = jit_cuda_relay_info(r);
    if (!in->cublas && !in->cudnn) {
        printf("SKIP: neither cuBLAS nor cuDNN: %s; %s\n", in->cublas_why, in->cudnn_why);
        jit_cuda_relay_close(r);
        return 77;
    }
    jit_cuda_relay_close(r);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
