/* cuda_relay_load.c: loading cuBLAS, cuDNN and the driver (cuda_relay.h),
 * and what STATUS says of them.
 *
 * Shaped like cuda_dl.c: each library is a table of function pointers
 * (cuda_relay_impl.h) filled with dlsym from a const list of names, so
 * adding an entry point is one line in the table and one in the list.
 * Where the toolkit's headers are seen, every declaration is checked
 * against them here.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_relay_impl.h"
#include "dl.h"
#include "kiln_err.h"
#include "relay_ref.h"

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

static const struct jit_dl_sym cu_syms[] = {
    {"cuCtxGetCurrent", offsetof(struct cu_fns, ctx_get_current)},
    {"cuCtxGetDevice", offsetof(struct cu_fns, ctx_get_device)},
    {"cuDeviceGetAttribute", offsetof(struct cu_fns, device_get_attribute)},
    {"cuMemsetD8Async", offsetof(struct cu_fns, memset_d8_async)},
    {"cuGetErrorName", offsetof(struct cu_fns, get_error_name)},
};
static const struct jit_dl_sym blas_syms[] = {
    {"cublasCreate_v2", offsetof(struct blas_fns, create)},
    {"cublasDestroy_v2", offsetof(struct blas_fns, destroy)},
    {"cublasSetStream_v2", offsetof(struct blas_fns, set_stream)},
    {"cublasSetWorkspace_v2", offsetof(struct blas_fns, set_workspace)},
    {"cublasSetMathMode", offsetof(struct blas_fns, set_math_mode)},
    {"cublasGetProperty", offsetof(struct blas_fns, get_property)},
    {"cublasGetStatusName", offsetof(struct blas_fns, get_status_name)},
    {"cublasGetStatusString", offsetof(struct blas_fns, get_status_string)},
    {"cublasGemmStridedBatchedEx_64", offsetof(struct blas_fns, gemm)},
};
static const struct jit_dl_sym dnn_syms[] = {
    {"cudnnGetVersion", offsetof(struct dnn_fns, get_version)},
    {"cudnnGetErrorString", offsetof(struct dnn_fns, get_error_string)},
    {"cudnnCnnVersionCheck", offsetof(struct dnn_fns, cnn_version_check)},
    {"cudnnCreate", offsetof(struct dnn_fns, create)},
    {"cudnnDestroy", offsetof(struct dnn_fns, destroy)},
    {"cudnnSetStream", offsetof(struct dnn_fns, set_stream)},
    {"cudnnCreateTensorDescriptor", offsetof(struct dnn_fns, create_tensor)},
    {"cudnnSetTensor4dDescriptor", offsetof(struct dnn_fns, set_tensor_4d)},
    {"cudnnDestroyTensorDescriptor", offsetof(struct dnn_fns, destroy_tensor)},
    {"cudnnCreateFilterDescriptor", offsetof(struct dnn_fns, create_filter)},
    {"cudnnSetFilter4dDescriptor", offsetof(struct dnn_fns, set_filter_4d)},
    {"cudnnDestroyFilterDescriptor", offsetof(struct dnn_fns, destroy_filter)},
    {"cudnnCreateConvolutionDescriptor", offsetof(struct dnn_fns, create_conv)},
    {"cudnnSetConvolution2dDescriptor", offsetof(struct dnn_fns, set_conv_2d)},
    {"cudnnSetConvolutionGroupCount", offsetof(struct dnn_fns, set_conv_groups)},
    {"cudnnSetConvolutionMathType", offsetof(struct dnn_fns, set_conv_math)},
    {"cudnnDestroyConvolutionDescriptor", offsetof(struct dnn_fns, destroy_conv)},
    {"cudnnGetConvolutionForwardAlgorithm_v7", offsetof(struct dnn_fns, fwd_algos)},
    {"cudnnGetConvolutionBackwardDataAlgorithm_v7", offsetof(struct dnn_fns, bwd_data_algos)},
    {"cudnnGetConvolutionBackwardFilterAlgorithm_v7", offsetof(struct dnn_fns, bwd_filter_algos)},
    {"cudnnGetConvolutionForwardWorkspaceSize", offsetof(struct dnn_fns, fwd_ws)},
    {"cudnnGetConvolutionBackwardDataWorkspaceSize", offsetof(struct dnn_fns, bwd_data_ws)},
    {"cudnnGetConvolutionBackwardFilterWorkspaceSize", offsetof(struct dnn_fns, bwd_filter_ws)},
    {"cudnnConvolutionForward", offsetof(struct dnn_fns, fwd)},
    {"cudnnConvolutionBackwardData", offsetof(struct dnn_fns, bwd_data)},
    {"cudnnConvolutionBackwardFilter", offsetof(struct dnn_fns, bwd_filter)},
};
#define NSYMS(a) (sizeof a / sizeof a[0])
_Static_assert(NSYMS(cu_syms) == sizeof(struct cu_fns) / sizeof(void (*)(void)),
               "every driver entry point is looked up");
_Static_assert(NSYMS(blas_syms) == sizeof(struct blas_fns) / sizeof(void (*)(void)),
               "every cuBLAS entry point is looked up");
_Static_assert(NSYMS(dnn_syms) == sizeof(struct dnn_fns) / sizeof(void (*)(void)),
               "every cuDNN entry point is looked up");

static void open_driver(struct jit_cuda_relay *r)
{
    static const char *const names[] = {"libcuda.so.1"};
    struct jit_cuda_relay_info *in = &r->info;
    r->cu_lib = jit_dl_open_first(names, NSYMS(names), "NVIDIA driver", in->driver_why,
                                  sizeof in->driver_why);
    if (r->cu_lib == NULL)
        return;
    if (!jit_dl_resolve(r->cu_lib, cu_syms, NSYMS(cu_syms), &r->cu, in->driver_why,
                        sizeof in->driver_why, "libcuda.so.1")) {
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
        "libcublas.so.12", /* CUDA 12: the same entry points (the _64 GEMM since 12.0) */
    };
    struct jit_cuda_relay_info *in = &r->info;
    r->blas_lib =
        jit_dl_open_first(names, NSYMS(names), "cuBLAS", in->cublas_why, sizeof in->cublas_why);
    if (r->blas_lib == NULL)
        return;
    if (!jit_dl_resolve(r->blas_lib, blas_syms, NSYMS(blas_syms), &r->blas, in->cublas_why,
                        sizeof in->cublas_why, "libcublas")) {
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
    r->dnn_lib =
        jit_dl_open_first(names, NSYMS(names), "cuDNN", in->cudnn_why, sizeof in->cudnn_why);
    if (r->dnn_lib == NULL)
        return;
    if (!jit_dl_resolve(r->dnn_lib, dnn_syms, NSYMS(dnn_syms), &r->dnn, in->cudnn_why,
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
