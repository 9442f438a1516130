/* cuda_relay.c: the relays on cuBLAS and cuDNN (contract in cuda_relay.h;
 * the libraries are loaded by cuda_relay_load.c).
 *
 * Per stream, a handles object: the library handles, made on first use,
 * and the convolution plans — descriptors and the heuristics' ranked
 * candidates (algorithm, math type, workspace) for one (op, dtype, shapes,
 * attributes, precision), in an LRU of JIT_CUDA_RELAY_CONV_CACHE.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_relay_impl.h"
#include "cuda_relay_map.h"
#include "kiln_err.h"
#include "relay_ref.h"

/* ---- errors ---------------------------------------------------------------- */

/* Fills err for node n (UINT32_MAX: no node) and returns code. */
static int fail(struct ir_error *err, uint32_t n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct ir_error *err, uint32_t n, int code, const char *fmt, ...)
{
    if (err != NULL) {
        err->code = code;
        err->node = n == UINT32_MAX ? -1 : (int64_t) n;
        if (n == UINT32_MAX)
            err->field[0] = '\0';
        else
            snprintf(err->field, sizeof err->field, "nodes[%u]", n);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* A refusal (the shape, the dtype, the device) lets the executor fall
 * back; running out of memory is that; anything else is the library's
 * failure. */
static int blas_code(cublas_status s)
{
    switch (s) {
    case CUBLAS_NOT_INIT:
    case CUBLAS_INVALID_VALUE:
    case CUBLAS_ARCH_MISMATCH:
    case CUBLAS_NOT_SUPPORTED:
        return KILN_EUNSUPPORTED;
    case CUBLAS_ALLOC_FAILED:
        return KILN_ENOMEM;
    default:
        return KILN_EINTERNAL;
    }
}

/* cuDNN 9 groups its statuses by thousands: 1xxx not initialised (no
 * device, a sub-library missing), 2xxx bad parameter, 3xxx not supported,
 * 4xxx internal, 5xxx execution failed. */
static int dnn_code(cudnn_status s)
{
    if (s == CUDNN_ALLOC_FAILED)
        return KILN_ENOMEM;
    if (s >= 1000 && s < 4000)
        return KILN_EUNSUPPORTED;
    return KILN_EINTERNAL;
}

static int blas_fail(const struct jit_cuda_relay *r, struct ir_error *err, uint32_t n,
                     const char *call, cublas_status s)
{
    return fail(err, n, blas_code(s), "%s: %s (%s)", call, r->blas.get_status_name(s),
                r->blas.get_status_string(s));
}

static int dnn_fail(const struct jit_cuda_relay *r, struct ir_error *err, uint32_t n,
                    const char *call, cudnn_status s)
{
    return fail(err, n, dnn_code(s), "%s: %s (%u)", call, r->dnn.get_error_string(s), s);
}

static const char *cu_name(const struct jit_cuda_relay *r, cu_result e)
{
    const char *name = NULL;
    if (r->cu.get_error_name(e, &name) != CU_SUCCESS || name == NULL)
        name = "CUDA_ERROR_?";
    return name;
}

/* ---- handles --------------------------------------------------------------- */

#define RELAY_CANDS 8 /* heuristics' candidates kept per plan */

/* Everything a plan depends on; compared with memcmp, so built zeroed. */
struct conv_key {
    struct jit_cuda_conv c;
    int dtype;
    int tf32;
};

struct conv_cand {
    unsigned int algo, math;
    size_t ws;
};

struct conv_plan {
    bool live;
    struct conv_key key;
    uint64_t used;
    cudnn_tensor x, y;
    cudnn_filter w;
    cudnn_conv conv;
    int ncand; /* in order of preference */
    struct conv_cand cand[RELAY_CANDS];
};

struct jit_cuda_relay_handles {
    struct jit_cuda_relay *r;
    pthread_mutex_t lock;
    cu_context ctx;
    cu_stream stream;
    int cc_major; /* 0: unknown */
    cublas_handle blas;
    cudnn_handle dnn;
    uint64_t tick;
    struct conv_plan plans[JIT_CUDA_RELAY_CONV_CACHE];
};

int jit_cuda_relay_handles_new_ex(struct jit_cuda_relay *r, void *stream,
                                  struct jit_cuda_relay_handles **out, struct ir_error *err)
{
    *out = NULL;
    if (!r->info.driver)
        return fail(err, UINT32_MAX, KILN_EUNSUPPORTED, "%s", r->info.driver_why);
    cu_context ctx = NULL;
    cu_result e = r->cu.ctx_get_current(&ctx);
    if (e != CU_SUCCESS)
        return fail(err, UINT32_MAX, KILN_EUNSUPPORTED, "cuCtxGetCurrent: %s", cu_name(r, e));
    if (ctx == NULL)
        return fail(err, UINT32_MAX, KILN_EUNSUPPORTED,
                    "no CUDA context is current in this thread");
    struct jit_cuda_relay_handles *h = calloc(1, sizeof *h);
    if (h == NULL)
        return fail(err, UINT32_MAX, KILN_ENOMEM, "out of memory for relay handles");
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return fail(err, UINT32_MAX, KILN_ENOMEM, "no mutex for relay handles");
    }
    h->r = r;
    h->ctx = ctx;
    h->stream = stream;
    cu_device dev;
    if (r->cu.ctx_get_device(&dev) != CU_SUCCESS ||
        r->cu.device_get_attribute(&h->cc_major, CU_ATTR_COMPUTE_CAPABILITY_MAJOR, dev) !=
            CU_SUCCESS)
        h->cc_major = 0;
    *out = h;
    return KILN_OK;
}

int jit_cuda_relay_handles_new(struct jit_cuda_relay *r, void *stream,
                               struct jit_cuda_relay_handles **out)
{
    return jit_cuda_relay_handles_new_ex(r, stream, out, NULL);
}

static void plan_drop(const struct jit_cuda_relay *r, struct conv_plan *p)
{
    if (p->conv)
        r->dnn.destroy_conv(p->conv);
    if (p->w)
        r->dnn.destroy_filter(p->w);
    if (p->y)
        r->dnn.destroy_tensor(p->y);
    if (p->x)
        r->dnn.destroy_tensor(p->x);
    memset(p, 0, sizeof *p);
}

void jit_cuda_relay_handles_free(struct jit_cuda_relay_handles *h)
{
    if (h == NULL)
        return;
    for (int k = 0; k < JIT_CUDA_RELAY_CONV_CACHE; k++)
        plan_drop(h->r, &h->plans[k]);
    if (h->dnn)
        h->r->dnn.destroy(h->dnn);
    if (h->blas)
        h->r->blas.destroy(h->blas);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* The libraries use the calling thread's current context: it must be the
 * one the handles were made in. */
static int check_ctx(struct jit_cuda_relay_handles *h, uint32_t n, struct ir_error *err)
{
    cu_context c = NULL;
    cu_result e = h->r->cu.ctx_get_current(&c);
    if (e != CU_SUCCESS)
        return fail(err, n, KILN_EINTERNAL, "cuCtxGetCurrent: %s", cu_name(h->r, e));
    if (c != h->ctx)
        return fail(err, n, KILN_EINTERNAL,
                    "relay handles used outside their CUDA context (none or another is current)");
    return KILN_OK;
}

static int ensure_blas(struct jit_cuda_relay_handles *h, uint32_t n, struct ir_error *err)
{
    const struct jit_cuda_relay *r = h->r;
    if (h->blas != NULL)
        return KILN_OK;
    if (!r->info.cublas)
        return fail(err, n, KILN_EUNSUPPORTED, "%s", r->info.cublas_why);
    cublas_handle b = NULL;
    cublas_status s = r->blas.create(&b);
    if (s != CUBLAS_OK)
        return blas_fail(r, err, n, "cublasCreate", s);
    const char *call = "cublasSetStream";
    if ((s = r->blas.set_stream(b, h->stream)) == CUBLAS_OK) {
        call = "cublasSetMathMode";
        s = r->blas.set_math_mode(b, CUBLAS_MATH_DEFAULT);
    }
    if (s != CUBLAS_OK) {
        r->blas.destroy(b);
        return blas_fail(r, err, n, call, s);
    }
    h->blas = b;
    return KILN_OK;
}

static int ensure_dnn(struct jit_cuda_relay_handles *h, uint32_t n, struct ir_error *err)
{
    const struct jit_cuda_relay *r = h->r;
    if (h->dnn != NULL)
        return KILN_OK;
    if (!r->info.cudnn)
        return fail(err, n, KILN_EUNSUPPORTED, "%s", r->info.cudnn_why);
    cudnn_handle d = NULL;
    cudnn_status s = r->dnn.create(&d);
    if (s != CUDNN_OK)
        return dnn_fail(r, err, n, "cudnnCreate", s);
    if ((s = r->dnn.set_stream(d, h->stream)) != CUDNN_OK) {
        r->dnn.destroy(d);
        return dnn_fail(r, err, n, "cudnnSetStream", s);
    }
    h->dnn = d;
    return KILN_OK;
}

/* ---- convolution plans ----------------------------------------------------- */

/* Whether a heuristics record's math type may run at this precision: full
 * FP32 takes FMA (and default-math records, which run as FMA); TF32 any
 * tensor-op math but the one converting float32 to half; float64 all. */
static bool math_ok(int dtype, bool tf32, unsigned int math)
{
    if (math == CUDNN_MATH_FMA || math == CUDNN_MATH_DEFAULT)
        return true;
    if (math == CUDNN_MATH_TENSOR_OP)
        return dtype == IR_DTYPE_FLOAT64 || tf32;
    return false;
}

/* The math a plan's descriptor has while asking the heuristics. */
static unsigned int plan_math(int dtype, bool tf32)
{
    if (dtype == IR_DTYPE_FLOAT64)
        return CUDNN_MATH_DEFAULT;
    return tf32 ? CUDNN_MATH_TENSOR_OP : CUDNN_MATH_FMA;
}

/* The heuristics' records for plan p in one layout, best first. */
static cudnn_status ask(const struct jit_cuda_relay_handles *h, const struct conv_plan *p,
                        struct dnn_perf *out, int *got)
{
    const struct dnn_fns *d = &h->r->dnn;
    cudnn_status s;
    *got = 0;
    if (p->key.c.op == IR_OP_CONV2D) {
        dnn_fwd_perf perf[RELAY_CANDS];
        s = d->fwd_algos(h->dnn, p->x, p->w, p->conv, p->y, RELAY_CANDS, got, perf);
        memcpy(out, perf, sizeof perf);
    } else if (p->key.c.op == IR_OP_CONV2D_BWD_DATA) {
        dnn_bwd_data_perf perf[RELAY_CANDS];
        s = d->bwd_data_algos(h->dnn, p->w, p->y, p->conv, p->x, RELAY_CANDS, got, perf);
        memcpy(out, perf, sizeof perf);
    } else {
        dnn_bwd_filter_perf perf[RELAY_CANDS];
        s = d->bwd_filter_algos(h->dnn, p->x, p->y, p->conv, p->w, RELAY_CANDS, got, perf);
        memcpy(out, perf, sizeof perf);
    }
    if (*got < 0 || *got > RELAY_CANDS)
        *got = 0;
    return s;
}

static cudnn_status ws_size(const struct jit_cuda_relay_handles *h, const struct conv_plan *p,
                            unsigned int algo, size_t *bytes)
{
    const struct dnn_fns *d = &h->r->dnn;
    if (p->key.c.op == IR_OP_CONV2D)
        return d->fwd_ws(h->dnn, p->x, p->w, p->conv, p->y, algo, bytes);
    if (p->key.c.op == IR_OP_CONV2D_BWD_DATA)
        return d->bwd_data_ws(h->dnn, p->w, p->y, p->conv, p->x, algo, bytes);
    return d->bwd_filter_ws(h->dnn, p->x, p->y, p->conv, p->w, algo, bytes);
}

/* Descriptors and ranked candidates for p->key. */
static int plan_make(struct jit_cuda_relay_handles *h, struct conv_plan *p, uint32_t n,
                     struct ir_error *err)
{
    const struct jit_cuda_relay *r = h->r;
    const struct dnn_fns *d = &r->dnn;
    const struct jit_cuda_conv *c = &p->key.c;
    unsigned int dt = p->key.dtype == IR_DTYPE_FLOAT64 ? CUDNN_DT_DOUBLE : CUDNN_DT_FLOAT;
    cudnn_status s;
    const char *call;
    if ((s = d->create_tensor(&p->x)) != CUDNN_OK || (s = d->create_tensor(&p->y)) != CUDNN_OK) {
        call = "cudnnCreateTensorDescriptor";
        goto bad;
    }
    if ((s = d->create_filter(&p->w)) != CUDNN_OK) {
        call = "cudnnCreateFilterDescriptor";
        goto bad;
    }
    if ((s = d->create_conv(&p->conv)) != CUDNN_OK) {
        call = "cudnnCreateConvolutionDescriptor";
        goto bad;
    }
    call = "cudnnSetTensor4dDescriptor";
    if ((s = d->set_tensor_4d(p->x, CUDNN_NCHW, dt, c->x[0], c->x[1], c->x[2], c->x[3])) !=
            CUDNN_OK ||
        (s = d->set_tensor_4d(p->y, CUDNN_NCHW, dt, c->y[0], c->y[1], c->y[2], c->y[3])) !=
            CUDNN_OK)
        goto bad;
    call = "cudnnSetFilter4dDescriptor";
    if ((s = d->set_filter_4d(p->w, dt, CUDNN_NCHW, c->w[0], c->w[1], c->w[2], c->w[3])) !=
        CUDNN_OK)
        goto bad;
    call = "cudnnSetConvolution2dDescriptor";
    if ((s = d->set_conv_2d(p->conv, c->pad[0], c->pad[1], c->stride[0], c->stride[1],
                            c->dilation[0], c->dilation[1], CUDNN_XCORR, dt)) != CUDNN_OK)
        goto bad;
    call = "cudnnSetConvolutionGroupCount";
    if ((s = d->set_conv_groups(p->conv, c->groups)) != CUDNN_OK)
        goto bad;
    call = "cudnnSetConvolutionMathType";
    bool tf32 = p->key.tf32;
    if ((s = d->set_conv_math(p->conv, plan_math(p->key.dtype, tf32))) != CUDNN_OK)
        goto bad;
    call = c->op == IR_OP_CONV2D            ? "cudnnGetConvolutionForwardAlgorithm_v7"
           : c->op == IR_OP_CONV2D_BWD_DATA ? "cudnnGetConvolutionBackwardDataAlgorithm_v7"
                                            : "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
    struct dnn_perf perf[RELAY_CANDS];
    int got = 0;
    if ((s = ask(h, p, perf, &got)) != CUDNN_OK)
        goto bad;
    /* Deterministic algorithms first for the gradients (every forward
     * algorithm is), then the rest; within each, the heuristics' order. */
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < got; k++) {
            const struct dnn_perf *q = &perf[k];
            if (q->status != CUDNN_OK || !math_ok(p->key.dtype, tf32, q->mathType) ||
                (q->determinism == CUDNN_DET) != (pass == 0))
                continue;
            unsigned int math = q->mathType;
            if (p->key.dtype == IR_DTYPE_FLOAT32 && !tf32)
                math = CUDNN_MATH_FMA;
            size_t ws = 0;
            if (d->set_conv_math(p->conv, math) != CUDNN_OK ||
                ws_size(h, p, q->algo, &ws) != CUDNN_OK)
                continue;
            p->cand[p->ncand++] = (struct conv_cand){.algo = q->algo, .math = math, .ws = ws};
        }
    if (p->ncand == 0)
        return fail(err, n, KILN_EUNSUPPORTED,
                    "cuDNN has no %s algorithm for this convolution (%s, groups %d)",
                    ir_op_name(c->op), p->key.dtype == IR_DTYPE_FLOAT64 ? "float64" : "float32",
                    c->groups);
    return KILN_OK;
bad:
    return dnn_fail(r, err, n, call, s);
}

/* The plan for node n at this precision, from the cache or made now. */
static int plan_get(struct jit_cuda_relay_handles *h, const struct ir_node *node,
                    const struct ir_node *an, const struct ir_node *bn, uint32_t n, bool tf32,
                    struct conv_plan **out, struct ir_error *err)
{
    struct conv_key key;
    memset(&key, 0, sizeof key);
    if (!jit_cuda_conv_map(node, an, bn, &key.c))
        return fail(err, n, KILN_EUNSUPPORTED, "a dim of this convolution exceeds cuDNN's int");
    key.dtype = node->dtype;
    key.tf32 = tf32 && node->dtype == IR_DTYPE_FLOAT32;
    struct conv_plan *slot = NULL;
    for (int k = 0; k < JIT_CUDA_RELAY_CONV_CACHE; k++) {
        struct conv_plan *p = &h->plans[k];
        if (p->live && memcmp(&p->key, &key, sizeof key) == 0) {
            p->used = ++h->tick;
            *out = p;
            return KILN_OK;
        }
        if (slot == NULL || !p->live || (slot->live && p->used < slot->used))
            slot = p;
    }
    int rc = ensure_dnn(h, n, err);
    if (rc != KILN_OK)
        return rc;
    plan_drop(h->r, slot);
    slot->key = key;
    if ((rc = plan_make(h, slot, n, err)) != KILN_OK) {
        plan_drop(h->r, slot);
        return rc;
    }
    slot->live = true;
    slot->used = ++h->tick;
    *out = slot;
    return KILN_OK;
}

/* ---- workspace and runs ---------------------------------------------------- */

/* The node, its two inputs, or a typed refusal. */
static int node_of(const struct ir_graph *g, uint32_t n, const struct ir_node **node,
                   const struct ir_node **an, const struct ir_node **bn, struct ir_error *err)
{
    if (n >= g->count)
        return fail(err, n, KILN_EINTERNAL, "node %u is not in the graph", n);
    const struct ir_node *x = &g->nodes[n];
    if (!ir_op_is_relay(x->op) || x->nin != 2)
        return fail(err, n, KILN_EUNSUPPORTED, "%s is not a relay op",
                    ir_op_name(x->op) ? ir_op_name(x->op) : "?");
    if (x->dtype != IR_DTYPE_FLOAT32 && x->dtype != IR_DTYPE_FLOAT64)
        return fail(err, n, KILN_EUNSUPPORTED, "the GPU relays take float32 or float64, not %s",
                    ir_dtype_name(x->dtype));
    *node = x;
    *an = &g->nodes[x->in[0]];
    *bn = &g->nodes[x->in[1]];
    return KILN_OK;
}

/* Nothing for a library to do: an empty result, or an empty operand (the
 * sums are then over nothing and the result is zeros). */
static bool trivial(const struct ir_node *node, const struct ir_node *an, const struct ir_node *bn)
{
    return node->numel == 0 || an->numel == 0 || bn->numel == 0;
}

/* Less than this and cuBLAS may answer CUBLAS_STATUS_ALLOC_FAILED. */
#define RELAY_GEMM_WS_MIN ((size_t) 16 << 10)

static size_t gemm_ws(const struct jit_cuda_relay_handles *h)
{
    return h->cc_major >= 9 ? JIT_CUDA_RELAY_GEMM_WS_SM90 : JIT_CUDA_RELAY_GEMM_WS;
}

int jit_cuda_relay_workspace_for(struct jit_cuda_relay_handles *h, const struct ir_graph *g,
                                 uint32_t n, bool tf32, size_t *bytes, struct ir_error *err)
{
    *bytes = 0;
    const struct ir_node *node, *an, *bn;
    int rc = node_of(g, n, &node, &an, &bn, err);
    if (rc != KILN_OK || trivial(node, an, bn))
        return rc;
    if (node->op == IR_OP_MATMUL) {
        if (!h->r->info.cublas)
            return fail(err, n, KILN_EUNSUPPORTED, "%s", h->r->info.cublas_why);
        *bytes = gemm_ws(h);
        return KILN_OK;
    }
    pthread_mutex_lock(&h->lock);
    struct conv_plan *p = NULL;
    if ((rc = check_ctx(h, n, err)) == KILN_OK &&
        (rc = plan_get(h, node, an, bn, n, tf32, &p, err)) == KILN_OK)
        *bytes = p->cand[0].ws;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

size_t jit_cuda_relay_workspace(struct jit_cuda_relay_handles *h, const struct ir_graph *g,
                                uint32_t n)
{
    size_t full = 0, fast = 0;
    if (jit_cuda_relay_workspace_for(h, g, n, false, &full, NULL) != KILN_OK)
        full = 0;
    if (n < g->count && g->nodes[n].dtype == IR_DTYPE_FLOAT32 &&
        jit_cuda_relay_workspace_for(h, g, n, true, &fast, NULL) != KILN_OK)
        fast = 0;
    return full > fast ? full : fast;
}

static int run_gemm(struct jit_cuda_relay_handles *h, const struct ir_node *node,
                    const struct ir_node *an, const struct ir_node *bn, uint32_t n, uint64_t a,
                    uint64_t b, uint64_t y, uint64_t ws, size_t ws_bytes, bool tf32,
                    struct ir_error *err)
{
    const struct jit_cuda_relay *r = h->r;
    struct jit_cuda_gemm m;
    if (!jit_cuda_gemm_map(node, an, bn, &m))
        return fail(err, n, KILN_EUNSUPPORTED, "a matmul whose batch dims differ");
    int rc = ensure_blas(h, n, err);
    if (rc != KILN_OK)
        return rc;
    /* cuBLAS takes a workspace aligned to 256 bytes (trim the front of one
     * that is not) and may fail for want of memory with less than
     * RELAY_GEMM_WS_MIN; given less, it keeps to its own default pool,
     * which cublasSetStream restores. */
    uint64_t skip = (256 - ws % 256) % 256;
    if (ws == 0 || ws_bytes < skip + RELAY_GEMM_WS_MIN)
        ws = 0, ws_bytes = 0;
    else
        ws += skip, ws_bytes -= (size_t) skip;
    cublas_status s = ws_bytes ? r->blas.set_workspace(h->blas, (void *) (uintptr_t) ws, ws_bytes)
                               : r->blas.set_stream(h->blas, h->stream);
    if (s != CUBLAS_OK)
        return blas_fail(r, err, n, ws_bytes ? "cublasSetWorkspace" : "cublasSetStream", s);
    bool f64 = node->dtype == IR_DTYPE_FLOAT64;
    const float one_f = 1.0f, zero_f = 0.0f;
    const double one_d = 1.0, zero_d = 0.0;
    unsigned int type = f64 ? CUDA_R64F : CUDA_R32F;
    unsigned int compute = f64 ? CUBLAS_C64F : tf32 ? CUBLAS_C32F_FAST_TF32 : CUBLAS_C32F;
    s = r->blas.gemm(
        h->blas, m.trans_a ? CUBLAS_OPT : CUBLAS_OPN, m.trans_b ? CUBLAS_OPT : CUBLAS_OPN, m.m, m.n,
        m.k, f64 ? (const void *) &one_d : (const void *) &one_f, (const void *) (uintptr_t) b,
        type, m.lda, m.stride_a, (const void *) (uintptr_t) a, type, m.ldb, m.stride_b,
        f64 ? (const void *) &zero_d : (const void *) &zero_f, (void *) (uintptr_t) y, type, m.ldc,
        m.stride_c, m.batch, compute, CUBLAS_GEMM_DFALT);
    if (s != CUBLAS_OK)
        return blas_fail(r, err, n, "cublasGemmStridedBatchedEx_64", s);
    return KILN_OK;
}

static int run_conv(struct jit_cuda_relay_handles *h, const struct ir_node *node,
                    const struct ir_node *an, const struct ir_node *bn, uint32_t n, uint64_t a,
                    uint64_t b, uint64_t y, uint64_t ws, size_t ws_bytes, bool tf32,
                    struct ir_error *err)
{
    const struct jit_cuda_relay *r = h->r;
    const struct dnn_fns *d = &r->dnn;
    struct conv_plan *p = NULL;
    int rc = plan_get(h, node, an, bn, n, tf32, &p, err);
    if (rc != KILN_OK)
        return rc;
    if (ws == 0)
        ws_bytes = 0;
    const struct conv_cand *c = NULL;
    for (int k = 0; k < p->ncand && c == NULL; k++)
        if (p->cand[k].ws <= ws_bytes)
            c = &p->cand[k];
    if (c == NULL) {
        size_t least = p->cand[0].ws;
        for (int k = 1; k < p->ncand; k++)
            least = p->cand[k].ws < least ? p->cand[k].ws : least;
        return fail(err, n, KILN_EUNSUPPORTED,
                    "cuDNN needs %zu bytes of workspace for this convolution; %zu given", least,
                    ws_bytes);
    }
    cudnn_status s = d->set_conv_math(p->conv, c->math);
    if (s != CUDNN_OK)
        return dnn_fail(r, err, n, "cudnnSetConvolutionMathType", s);
    bool f64 = node->dtype == IR_DTYPE_FLOAT64;
    const float one_f = 1.0f, zero_f = 0.0f;
    const double one_d = 1.0, zero_d = 0.0;
    const void *one = f64 ? (const void *) &one_d : (const void *) &one_f;
    const void *zero = f64 ? (const void *) &zero_d : (const void *) &zero_f;
    const void *pa = (const void *) (uintptr_t) a, *pb = (const void *) (uintptr_t) b;
    void *py = (void *) (uintptr_t) y, *pw = (void *) (uintptr_t) ws;
    const char *call;
    if (node->op == IR_OP_CONV2D) { /* x, w -> y */
        call = "cudnnConvolutionForward";
        s = d->fwd(h->dnn, one, p->x, pa, p->w, pb, p->conv, c->algo, pw, ws_bytes, zero, p->y, py);
    } else if (node->op == IR_OP_CONV2D_BWD_DATA) { /* dy, w -> dx */
        call = "cudnnConvolutionBackwardData";
        s = d->bwd_data(h->dnn, one, p->w, pb, p->y, pa, p->conv, c->algo, pw, ws_bytes, zero, p->x,
                        py);
    } else { /* x, dy -> dw */
        call = "cudnnConvolutionBackwardFilter";
        s = d->bwd_filter(h->dnn, one, p->x, pa, p->y, pb, p->conv, c->algo, pw, ws_bytes, zero,
                          p->w, py);
    }
    if (s != CUDNN_OK)
        return dnn_fail(r, err, n, call, s);
    return KILN_OK;
}

int jit_cuda_relay_run(struct jit_cuda_relay_handles *h, const struct ir_graph *g, uint32_t n,
                       uint64_t a, uint64_t b, uint64_t y, uint64_t ws, size_t ws_bytes, bool tf32,
                       struct ir_error *err)
{
    const struct ir_node *node, *an, *bn;
    int rc = node_of(g, n, &node, &an, &bn, err);
    if (rc != KILN_OK)
        return rc;
    if (node->op == IR_OP_MATMUL && !h->r->info.cublas)
        return fail(err, n, KILN_EUNSUPPORTED, "%s", h->r->info.cublas_why);
    if (node->op != IR_OP_MATMUL && !h->r->info.cudnn)
        return fail(err, n, KILN_EUNSUPPORTED, "%s", h->r->info.cudnn_why);
    pthread_mutex_lock(&h->lock);
    rc = check_ctx(h, n, err);
    if (rc == KILN_OK && trivial(node, an, bn)) {
        size_t bytes = (size_t) node->numel * ir_dtype_size(node->dtype);
        cu_result e = bytes ? h->r->cu.memset_d8_async(y, 0, bytes, h->stream) : CU_SUCCESS;
        if (e != CU_SUCCESS)
            rc = fail(err, n, KILN_EINTERNAL, "cuMemsetD8Async: %s", cu_name(h->r, e));
    } else if (rc == KILN_OK && node->op == IR_OP_MATMUL) {
        rc = run_gemm(h, node, an, bn, n, a, b, y, ws, ws_bytes, tf32, err);
    } else if (rc == KILN_OK) {
        rc = run_conv(h, node, an, bn, n, a, b, y, ws, ws_bytes, tf32, err);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}
