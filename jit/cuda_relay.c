/* cuda_relay.c: cuBLAS and cuDNN through dlopen (contract in cuda_relay.h).
 *
 * Shaped like cuda_dl.c: each library is a table of function pointers
 * filled with dlsym from a const list of names, and every type the calls
 * need is declared here, so no toolkit is needed to build the daemon.
 * Where meson found the toolkit's headers (KILN_CUDA_HEADERS) and they
 * include cuBLAS and cuDNN, each pointer type, enum value and struct
 * layout below is checked against cublas_v2.h and cudnn.h at compile time.
 *
 * Enums travel as unsigned int (their values are all non-negative, which
 * is how GCC types such an enum) except cublasGemmAlgo_t, which has -1.
 * Handle and descriptor types use the libraries' own opaque struct tags,
 * so the same declarations are the real ones where the headers are seen.
 *
 * Convolution plans: descriptors and the heuristics' ranked candidates
 * (algorithm, math type, workspace) for one (op, dtype, shapes, attributes,
 * precision), in an LRU of JIT_CUDA_RELAY_CONV_CACHE per handles object.
 */
#include "cuda_relay.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_relay_map.h"
#include "kiln_err.h"
#include "relay_ref.h"

#ifndef JIT_CUDA_HOME
#define JIT_CUDA_HOME "/usr/local/cuda"
#endif

#if defined(KILN_CUDA_HEADERS) && defined(__has_include)
#if __has_include(<cublas_v2.h>) && __has_include(<cudnn.h>)
#define RELAY_HEADERS 1
#endif
#endif

#ifdef RELAY_HEADERS
#include <cublas_v2.h>
#include <cuda.h>
/* cuDNN 9 marks its legacy convolution API deprecated (it remains
 * supported through 9.x); this file is that API's one user. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <cudnn.h>
#endif

/* ---- declarations ---------------------------------------------------------- */

typedef unsigned int cu_result;
typedef int cu_device;
typedef unsigned long long cu_deviceptr;
typedef struct CUctx_st *cu_context;
typedef struct CUstream_st *cu_stream;
typedef unsigned int cublas_status;
typedef struct cublasContext *cublas_handle;
typedef unsigned int cudnn_status;
typedef struct cudnnContext *cudnn_handle;
typedef struct cudnnTensorStruct *cudnn_tensor;
typedef struct cudnnFilterStruct *cudnn_filter;
typedef struct cudnnConvolutionStruct *cudnn_conv;

/* The three heuristics' result records share one layout. */
struct dnn_perf {
    unsigned int algo;
    cudnn_status status;
    float time;
    size_t memory;
    unsigned int determinism;
    unsigned int mathType;
    int reserved[3];
};
#ifdef RELAY_HEADERS
typedef cudnnConvolutionFwdAlgoPerf_t dnn_fwd_perf;
typedef cudnnConvolutionBwdDataAlgoPerf_t dnn_bwd_data_perf;
typedef cudnnConvolutionBwdFilterAlgoPerf_t dnn_bwd_filter_perf;
#else
typedef struct dnn_perf dnn_fwd_perf;
typedef struct dnn_perf dnn_bwd_data_perf;
typedef struct dnn_perf dnn_bwd_filter_perf;
#endif

#define CU_SUCCESS                       0u
#define CU_ATTR_COMPUTE_CAPABILITY_MAJOR 75u

#define CUBLAS_OK             0u
#define CUBLAS_NOT_INIT       1u
#define CUBLAS_ALLOC_FAILED   3u
#define CUBLAS_INVALID_VALUE  7u
#define CUBLAS_ARCH_MISMATCH  8u
#define CUBLAS_NOT_SUPPORTED  15u
#define CUBLAS_OPN            0u
#define CUBLAS_OPT            1u
#define CUBLAS_MATH_DEFAULT   0u
#define CUBLAS_GEMM_DFALT     (-1)
#define CUBLAS_C32F           68u
#define CUBLAS_C32F_FAST_TF32 77u
#define CUBLAS_C64F           70u
#define CUDA_R32F             0u
#define CUDA_R64F             1u
#define LIB_MAJOR             0u
#define LIB_MINOR             1u
#define LIB_PATCH             2u

#define CUDNN_OK             0u
#define CUDNN_DT_FLOAT       0u
#define CUDNN_DT_DOUBLE      1u
#define CUDNN_NCHW           0u
#define CUDNN_XCORR          1u
#define CUDNN_MATH_DEFAULT   0u
#define CUDNN_MATH_TENSOR_OP 1u
#define CUDNN_MATH_FMA       3u
#define CUDNN_DET            1u
#define CUDNN_ALLOC_FAILED   4003u /* host allocation */

struct cu_fns {
    cu_result (*ctx_get_current)(cu_context *ctx);
    cu_result (*ctx_get_device)(cu_device *dev);
    cu_result (*device_get_attribute)(int *value, unsigned int attr, cu_device dev);
    cu_result (*memset_d8_async)(cu_deviceptr dst, unsigned char v, size_t n, cu_stream s);
    cu_result (*get_error_name)(cu_result err, const char **str);
};

struct blas_fns {
    cublas_status (*create)(cublas_handle *h);
    cublas_status (*destroy)(cublas_handle h);
    cublas_status (*set_stream)(cublas_handle h, cu_stream s);
    cublas_status (*set_workspace)(cublas_handle h, void *ws, size_t bytes);
    cublas_status (*set_math_mode)(cublas_handle h, unsigned int mode);
    cublas_status (*get_property)(unsigned int type, int *value);
    const char *(*get_status_name)(cublas_status s);
    const char *(*get_status_string)(cublas_status s);
    cublas_status (*gemm)(cublas_handle h, unsigned int transa, unsigned int transb, int64_t m,
                          int64_t n, int64_t k, const void *alpha, const void *A, unsigned int at,
                          int64_t lda, long long sa, const void *B, unsigned int bt, int64_t ldb,
                          long long sb, const void *beta, void *C, unsigned int ct, int64_t ldc,
                          long long sc, int64_t batch, unsigned int compute, int algo);
};

struct dnn_fns {
    size_t (*get_version)(void);
    const char *(*get_error_string)(cudnn_status s);
    cudnn_status (*cnn_version_check)(void);
    cudnn_status (*create)(cudnn_handle *h);
    cudnn_status (*destroy)(cudnn_handle h);
    cudnn_status (*set_stream)(cudnn_handle h, cu_stream s);
    cudnn_status (*create_tensor)(cudnn_tensor *d);
    cudnn_status (*set_tensor_4d)(cudnn_tensor d, unsigned int format, unsigned int dt, int n,
                                  int c, int h, int w);
    cudnn_status (*destroy_tensor)(cudnn_tensor d);
    cudnn_status (*create_filter)(cudnn_filter *d);
    cudnn_status (*set_filter_4d)(cudnn_filter d, unsigned int dt, unsigned int format, int k,
                                  int c, int h, int w);
    cudnn_status (*destroy_filter)(cudnn_filter d);
    cudnn_status (*create_conv)(cudnn_conv *d);
    cudnn_status (*set_conv_2d)(cudnn_conv d, int pad_h, int pad_w, int u, int v, int dil_h,
                                int dil_w, unsigned int mode, unsigned int compute);
    cudnn_status (*set_conv_groups)(cudnn_conv d, int groups);
    cudnn_status (*set_conv_math)(cudnn_conv d, unsigned int math);
    cudnn_status (*destroy_conv)(cudnn_conv d);
    cudnn_status (*fwd_algos)(cudnn_handle h, const cudnn_tensor x, const cudnn_filter w,
                              const cudnn_conv c, const cudnn_tensor y, const int want, int *got,
                              dnn_fwd_perf *perf);
    cudnn_status (*bwd_data_algos)(cudnn_handle h, const cudnn_filter w, const cudnn_tensor dy,
                                   const cudnn_conv c, const cudnn_tensor dx, const int want,
                                   int *got, dnn_bwd_data_perf *perf);
    cudnn_status (*bwd_filter_algos)(cudnn_handle h, const cudnn_tensor x, const cudnn_tensor dy,
                                     const cudnn_conv c, const cudnn_filter dw, const int want,
                                     int *got, dnn_bwd_filter_perf *perf);
    cudnn_status (*fwd_ws)(cudnn_handle h, const cudnn_tensor x, const cudnn_filter w,
                           const cudnn_conv c, const cudnn_tensor y, unsigned int algo,
                           size_t *bytes);
    cudnn_status (*bwd_data_ws)(cudnn_handle h, const cudnn_filter w, const cudnn_tensor dy,
                                const cudnn_conv c, const cudnn_tensor dx, unsigned int algo,
                                size_t *bytes);
    cudnn_status (*bwd_filter_ws)(cudnn_handle h, const cudnn_tensor x, const cudnn_tensor dy,
                                  const cudnn_conv c, const cudnn_filter dw, unsigned int algo,
                                  size_t *bytes);
    cudnn_status (*fwd)(cudnn_handle h, const void *alpha, const cudnn_tensor xd, const void *x,
                        const cudnn_filter wd, const void *w, const cudnn_conv c, unsigned int algo,
                        void *ws, size_t ws_bytes, const void *beta, const cudnn_tensor yd,
                        void *y);
    cudnn_status (*bwd_data)(cudnn_handle h, const void *alpha, const cudnn_filter wd,
                             const void *w, const cudnn_tensor dyd, const void *dy,
                             const cudnn_conv c, unsigned int algo, void *ws, size_t ws_bytes,
                             const void *beta, const cudnn_tensor dxd, void *dx);
    cudnn_status (*bwd_filter)(cudnn_handle h, const void *alpha, const cudnn_tensor xd,
                               const void *x, const cudnn_tensor dyd, const void *dy,
                               const cudnn_conv c, unsigned int algo, void *ws, size_t ws_bytes,
                               const void *beta, const cudnn_filter dwd, void *dw);
};

/* ---- checked against the toolkit ------------------------------------------- */

#ifdef RELAY_HEADERS
#define SAME(table, field, fn)                                                                     \
    _Static_assert(                                                                                \
        __builtin_types_compatible_p(__typeof__(((struct table *) 0)->field), __typeof__(&fn)),    \
        #fn " is declared as in the toolkit's headers")
SAME(cu_fns, ctx_get_current, cuCtxGetCurrent);
SAME(cu_fns, ctx_get_device, cuCtxGetDevice);
SAME(cu_fns, device_get_attribute, cuDeviceGetAttribute);
SAME(cu_fns, memset_d8_async, cuMemsetD8Async);
SAME(cu_fns, get_error_name, cuGetErrorName);
SAME(blas_fns, create, cublasCreate_v2);
SAME(blas_fns, destroy, cublasDestroy_v2);
SAME(blas_fns, set_stream, cublasSetStream_v2);
SAME(blas_fns, set_workspace, cublasSetWorkspace_v2);
SAME(blas_fns, set_math_mode, cublasSetMathMode);
SAME(blas_fns, get_property, cublasGetProperty);
SAME(blas_fns, get_status_name, cublasGetStatusName);
SAME(blas_fns, get_status_string, cublasGetStatusString);
SAME(blas_fns, gemm, cublasGemmStridedBatchedEx_64);
SAME(dnn_fns, get_version, cudnnGetVersion);
SAME(dnn_fns, get_error_string, cudnnGetErrorString);
SAME(dnn_fns, cnn_version_check, cudnnCnnVersionCheck);
SAME(dnn_fns, create, cudnnCreate);
SAME(dnn_fns, destroy, cudnnDestroy);
SAME(dnn_fns, set_stream, cudnnSetStream);
SAME(dnn_fns, create_tensor, cudnnCreateTensorDescriptor);
SAME(dnn_fns, set_tensor_4d, cudnnSetTensor4dDescriptor);
SAME(dnn_fns, destroy_tensor, cudnnDestroyTensorDescriptor);
SAME(dnn_fns, create_filter, cudnnCreateFilterDescriptor);
SAME(dnn_fns, set_filter_4d, cudnnSetFilter4dDescriptor);
SAME(dnn_fns, destroy_filter, cudnnDestroyFilterDescriptor);
SAME(dnn_fns, create_conv, cudnnCreateConvolutionDescriptor);
SAME(dnn_fns, set_conv_2d, cudnnSetConvolution2dDescriptor);
SAME(dnn_fns, set_conv_groups, cudnnSetConvolutionGroupCount);
SAME(dnn_fns, set_conv_math, cudnnSetConvolutionMathType);
SAME(dnn_fns, destroy_conv, cudnnDestroyConvolutionDescriptor);
SAME(dnn_fns, fwd_algos, cudnnGetConvolutionForwardAlgorithm_v7);
SAME(dnn_fns, bwd_data_algos, cudnnGetConvolutionBackwardDataAlgorithm_v7);
SAME(dnn_fns, bwd_filter_algos, cudnnGetConvolutionBackwardFilterAlgorithm_v7);
SAME(dnn_fns, fwd_ws, cudnnGetConvolutionForwardWorkspaceSize);
SAME(dnn_fns, bwd_data_ws, cudnnGetConvolutionBackwardDataWorkspaceSize);
SAME(dnn_fns, bwd_filter_ws, cudnnGetConvolutionBackwardFilterWorkspaceSize);
SAME(dnn_fns, fwd, cudnnConvolutionForward);
SAME(dnn_fns, bwd_data, cudnnConvolutionBackwardData);
SAME(dnn_fns, bwd_filter, cudnnConvolutionBackwardFilter);
#undef SAME
_Static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == CU_ATTR_COMPUTE_CAPABILITY_MAJOR,
               "cuda.h's numbers");
_Static_assert(CUBLAS_STATUS_SUCCESS == CUBLAS_OK &&
                   CUBLAS_STATUS_NOT_INITIALIZED == CUBLAS_NOT_INIT &&
                   CUBLAS_STATUS_ALLOC_FAILED == CUBLAS_ALLOC_FAILED &&
                   CUBLAS_STATUS_INVALID_VALUE == CUBLAS_INVALID_VALUE &&
                   CUBLAS_STATUS_ARCH_MISMATCH == CUBLAS_ARCH_MISMATCH &&
                   CUBLAS_STATUS_NOT_SUPPORTED == CUBLAS_NOT_SUPPORTED &&
                   CUBLAS_OP_N == CUBLAS_OPN && CUBLAS_OP_T == CUBLAS_OPT &&
                   CUBLAS_DEFAULT_MATH == CUBLAS_MATH_DEFAULT &&
                   CUBLAS_GEMM_DEFAULT == CUBLAS_GEMM_DFALT && CUBLAS_COMPUTE_32F == CUBLAS_C32F &&
                   CUBLAS_COMPUTE_32F_FAST_TF32 == CUBLAS_C32F_FAST_TF32 &&
                   CUBLAS_COMPUTE_64F == CUBLAS_C64F && CUDA_R_32F == CUDA_R32F &&
                   CUDA_R_64F == CUDA_R64F && MAJOR_VERSION == LIB_MAJOR &&
                   MINOR_VERSION == LIB_MINOR && PATCH_LEVEL == LIB_PATCH,
               "cublas_v2.h's numbers");
_Static_assert(CUDNN_STATUS_SUCCESS == CUDNN_OK && CUDNN_DATA_FLOAT == CUDNN_DT_FLOAT &&
                   CUDNN_DATA_DOUBLE == CUDNN_DT_DOUBLE && CUDNN_TENSOR_NCHW == CUDNN_NCHW &&
                   CUDNN_CROSS_CORRELATION == CUDNN_XCORR &&
                   CUDNN_DEFAULT_MATH == CUDNN_MATH_DEFAULT &&
                   CUDNN_TENSOR_OP_MATH == CUDNN_MATH_TENSOR_OP &&
                   CUDNN_FMA_MATH == CUDNN_MATH_FMA && CUDNN_DETERMINISTIC == CUDNN_DET &&
                   CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED == CUDNN_ALLOC_FAILED,
               "cudnn.h's numbers");
#define SAME_LAYOUT(T)                                                                             \
    _Static_assert(sizeof(T) == sizeof(struct dnn_perf) &&                                         \
                       offsetof(T, algo) == offsetof(struct dnn_perf, algo) &&                     \
                       offsetof(T, status) == offsetof(struct dnn_perf, status) &&                 \
                       offsetof(T, memory) == offsetof(struct dnn_perf, memory) &&                 \
                       offsetof(T, determinism) == offsetof(struct dnn_perf, determinism) &&       \
                       offsetof(T, mathType) == offsetof(struct dnn_perf, mathType),               \
                   #T " is laid out as struct dnn_perf")
SAME_LAYOUT(cudnnConvolutionFwdAlgoPerf_t);
SAME_LAYOUT(cudnnConvolutionBwdDataAlgoPerf_t);
SAME_LAYOUT(cudnnConvolutionBwdFilterAlgoPerf_t);
#undef SAME_LAYOUT
_Static_assert(sizeof(cudnnConvolutionFwdAlgo_t) == sizeof(unsigned int) &&
                   sizeof(cudnnDataType_t) == sizeof(unsigned int),
               "an enum is an int");
#endif

/* ---- loading --------------------------------------------------------------- */

struct sym {
    const char *name;
    size_t off;
};

#define FN(t, f, name)                                                                             \
    {                                                                                              \
        name, offsetof(struct t, f)                                                                \
    }
static const struct sym cu_syms[] = {
    FN(cu_fns, ctx_get_current, "cuCtxGetCurrent"),
    FN(cu_fns, ctx_get_device, "cuCtxGetDevice"),
    FN(cu_fns, device_get_attribute, "cuDeviceGetAttribute"),
    FN(cu_fns, memset_d8_async, "cuMemsetD8Async"),
    FN(cu_fns, get_error_name, "cuGetErrorName"),
};
static const struct sym blas_syms[] = {
    FN(blas_fns, create, "cublasCreate_v2"),
    FN(blas_fns, destroy, "cublasDestroy_v2"),
    FN(blas_fns, set_stream, "cublasSetStream_v2"),
    FN(blas_fns, set_workspace, "cublasSetWorkspace_v2"),
    FN(blas_fns, set_math_mode, "cublasSetMathMode"),
    FN(blas_fns, get_property, "cublasGetProperty"),
    FN(blas_fns, get_status_name, "cublasGetStatusName"),
    FN(blas_fns, get_status_string, "cublasGetStatusString"),
    FN(blas_fns, gemm, "cublasGemmStridedBatchedEx_64"),
};
static const struct sym dnn_syms[] = {
    FN(dnn_fns, get_version, "cudnnGetVersion"),
    FN(dnn_fns, get_error_string, "cudnnGetErrorString"),
    FN(dnn_fns, cnn_version_check, "cudnnCnnVersionCheck"),
    FN(dnn_fns, create, "cudnnCreate"),
    FN(dnn_fns, destroy, "cudnnDestroy"),
    FN(dnn_fns, set_stream, "cudnnSetStream"),
    FN(dnn_fns, create_tensor, "cudnnCreateTensorDescriptor"),
    FN(dnn_fns, set_tensor_4d, "cudnnSetTensor4dDescriptor"),
    FN(dnn_fns, destroy_tensor, "cudnnDestroyTensorDescriptor"),
    FN(dnn_fns, create_filter, "cudnnCreateFilterDescriptor"),
    FN(dnn_fns, set_filter_4d, "cudnnSetFilter4dDescriptor"),
    FN(dnn_fns, destroy_filter, "cudnnDestroyFilterDescriptor"),
    FN(dnn_fns, create_conv, "cudnnCreateConvolutionDescriptor"),
    FN(dnn_fns, set_conv_2d, "cudnnSetConvolution2dDescriptor"),
    FN(dnn_fns, set_conv_groups, "cudnnSetConvolutionGroupCount"),
    FN(dnn_fns, set_conv_math, "cudnnSetConvolutionMathType"),
    FN(dnn_fns, destroy_conv, "cudnnDestroyConvolutionDescriptor"),
    FN(dnn_fns, fwd_algos, "cudnnGetConvolutionForwardAlgorithm_v7"),
    FN(dnn_fns, bwd_data_algos, "cudnnGetConvolutionBackwardDataAlgorithm_v7"),
    FN(dnn_fns, bwd_filter_algos, "cudnnGetConvolutionBackwardFilterAlgorithm_v7"),
    FN(dnn_fns, fwd_ws, "cudnnGetConvolutionForwardWorkspaceSize"),
    FN(dnn_fns, bwd_data_ws, "cudnnGetConvolutionBackwardDataWorkspaceSize"),
    FN(dnn_fns, bwd_filter_ws, "cudnnGetConvolutionBackwardFilterWorkspaceSize"),
    FN(dnn_fns, fwd, "cudnnConvolutionForward"),
    FN(dnn_fns, bwd_data, "cudnnConvolutionBackwardData"),
    FN(dnn_fns, bwd_filter, "cudnnConvolutionBackwardFilter"),
};
#undef FN
#define NSYMS(a) (sizeof a / sizeof a[0])
_Static_assert(NSYMS(cu_syms) == sizeof(struct cu_fns) / sizeof(void (*)(void)),
               "every driver entry point is looked up");
_Static_assert(NSYMS(blas_syms) == sizeof(struct blas_fns) / sizeof(void (*)(void)),
               "every cuBLAS entry point is looked up");
_Static_assert(NSYMS(dnn_syms) == sizeof(struct dnn_fns) / sizeof(void (*)(void)),
               "every cuDNN entry point is looked up");

struct jit_cuda_relay {
    void *cu_lib, *blas_lib, *dnn_lib;
    struct cu_fns cu;
    struct blas_fns blas;
    struct dnn_fns dnn;
    struct jit_cuda_relay_info info;
};

/* Opens the first of `names` that loads; on failure writes why (the
 * loader's words for the first name) and returns NULL. */
static void *open_first(const char *const *names, size_t n, const char *what, char *why,
                        size_t whylen)
{
    char first[128] = "";
    for (size_t k = 0; k < n; k++) {
        dlerror();
        void *lib = dlopen(names[k], RTLD_NOW | RTLD_LOCAL);
        if (lib != NULL)
            return lib;
        const char *e = dlerror();
        if (k == 0 && e != NULL)
            snprintf(first, sizeof first, "%s", e);
    }
    snprintf(why, whylen, "no %s (%s)", what, first[0] ? first : "not found");
    return NULL;
}

/* Fills `table` from `lib`; on a missing symbol writes why and returns false. */
static bool resolve(void *lib, const struct sym *syms, size_t n, void *table, char *why,
                    size_t whylen, const char *libname)
{
    for (size_t k = 0; k < n; k++) {
        void *p = dlsym(lib, syms[k].name);
        if (p == NULL) {
            snprintf(why, whylen, "%s has no %s (too old?)", libname, syms[k].name);
            return false;
        }
        memcpy((char *) table + syms[k].off, &p, sizeof p);
    }
    return true;
}

static void open_driver(struct jit_cuda_relay *r)
{
    static const char *const names[] = {"libcuda.so.1"};
    struct jit_cuda_relay_info *in = &r->info;
    r->cu_lib =
        open_first(names, NSYMS(names), "NVIDIA driver", in->driver_why, sizeof in->driver_why);
    if (r->cu_lib == NULL)
        return;
    if (!resolve(r->cu_lib, cu_syms, NSYMS(cu_syms), &r->cu, in->driver_why, sizeof in->driver_why,
                 "libcuda.so.1")) {
        dlclose(r->cu_lib);
        r->cu_lib = NULL;
        return;
    }
    in->driver = true;
}

static void open_cublas(struct jit_cuda_relay *r)
{
    static const char *const names[] = {
        "libcublas.so.13",
        JIT_CUDA_HOME "/lib64/libcublas.so.13",
        "/usr/local/cuda/lib64/libcublas.so.13",
    };
    struct jit_cuda_relay_info *in = &r->info;
    r->blas_lib = open_first(names, NSYMS(names), "cuBLAS", in->cublas_why, sizeof in->cublas_why);
    if (r->blas_lib == NULL)
        return;
    if (!resolve(r->blas_lib, blas_syms, NSYMS(blas_syms), &r->blas, in->cublas_why,
                 sizeof in->cublas_why, "libcublas.so.13")) {
        dlclose(r->blas_lib);
        r->blas_lib = NULL;
        return;
    }
    cublas_status s;
    if ((s = r->blas.get_property(LIB_MAJOR, &in->cublas_major)) != CUBLAS_OK ||
        (s = r->blas.get_property(LIB_MINOR, &in->cublas_minor)) != CUBLAS_OK ||
        (s = r->blas.get_property(LIB_PATCH, &in->cublas_patch)) != CUBLAS_OK) {
        snprintf(in->cublas_why, sizeof in->cublas_why, "cublasGetProperty: %s",
                 r->blas.get_status_string(s));
        return; /* loaded and resolved: keep it so nothing is unloaded behind a live pointer */
    }
    in->cublas = true;
}

static void open_cudnn(struct jit_cuda_relay *r)
{
    static const char *const names[] = {
        "libcudnn.so.9",
        JIT_CUDA_HOME "/lib64/libcudnn.so.9",
        "/usr/local/cuda/lib64/libcudnn.so.9",
    };
    struct jit_cuda_relay_info *in = &r->info;
    r->dnn_lib = open_first(names, NSYMS(names), "cuDNN", in->cudnn_why, sizeof in->cudnn_why);
    if (r->dnn_lib == NULL)
        return;
    if (!resolve(r->dnn_lib, dnn_syms, NSYMS(dnn_syms), &r->dnn, in->cudnn_why,
                 sizeof in->cudnn_why, "libcudnn.so.9")) {
        dlclose(r->dnn_lib);
        r->dnn_lib = NULL;
        return;
    }
    in->cudnn_version = r->dnn.get_version();
    /* The front library loads its convolution sub-library (and that its
     * ops and graph libraries) on demand; the version check makes it load
     * now, so a missing or mismatched one shows here, not in a run. */
    cudnn_status s = r->dnn.cnn_version_check();
    if (s != CUDNN_OK) {
        snprintf(in->cudnn_why, sizeof in->cudnn_why, "cudnnCnnVersionCheck: %s (%u)",
                 r->dnn.get_error_string(s), s);
        return;
    }
    in->cudnn = true;
}

int jit_cuda_relay_open(struct jit_cuda_relay **out)
{
    struct jit_cuda_relay *r = calloc(1, sizeof *r);
    if (r == NULL)
        return KILN_ENOMEM;
    open_driver(r);
    open_cublas(r);
    open_cudnn(r);
    *out = r;
    return KILN_OK;
}

/* The libraries are not dlclosed, as cuda_dl.c does not: cuBLAS and cuDNN
 * keep global state (and cuDNN threads of its own) that outlive a handle.
 * A process opens them once. */
void jit_cuda_relay_close(struct jit_cuda_relay *r)
{
    free(r);
}

const struct jit_cuda_relay_info *jit_cuda_relay_info(const struct jit_cuda_relay *r)
{
    return &r->info;
}

char *jit_cuda_relay_describe(const struct jit_cuda_relay *r, char *buf, size_t len)
{
    const struct jit_cuda_relay_info *in = &r->info;
    char b[JIT_CUDA_WHY_MAX + 32], d[JIT_CUDA_WHY_MAX + 32];
    if (in->cublas)
        snprintf(b, sizeof b, "cuBLAS %d.%d.%d", in->cublas_major, in->cublas_minor,
                 in->cublas_patch);
    else
        snprintf(b, sizeof b, "%s", in->cublas_why);
    if (in->cudnn)
        snprintf(d, sizeof d, "cuDNN %zu.%zu.%zu", in->cudnn_version / 10000,
                 in->cudnn_version / 100 % 100, in->cudnn_version % 100);
    else
        snprintf(d, sizeof d, "%s", in->cudnn_why);
    if (len > 0)
        snprintf(buf, len, "%s, %s", b, d);
    return buf;
}

bool jit_cuda_relay_available(const struct jit_cuda_relay *r, int op, const char **why)
{
    const char *w = NULL;
    if (!ir_op_is_relay(op))
        w = "not a relay op";
    else if (op == IR_OP_MATMUL && !r->info.cublas)
        w = r->info.cublas_why;
    else if (op != IR_OP_MATMUL && !r->info.cudnn)
        w = r->info.cudnn_why;
    if (why != NULL)
        *why = w;
    return w == NULL;
}

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
