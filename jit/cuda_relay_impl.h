/* cuda_relay_impl.h: what cuda_relay_load.c and cuda_relay.c share — the
 * declarations of the CUDA driver, cuBLAS and cuDNN entry points kiln
 * calls, their function tables, and the relay object that holds them.
 *
 * Every type here is declared by kiln, so no toolkit is needed to build
 * the daemon; where meson found the toolkit's headers (KILN_CUDA_HEADERS)
 * and they include cuBLAS and cuDNN (RELAY_HEADERS), cuda_relay_load.c
 * checks each pointer type, enum value and struct layout against
 * cublas_v2.h and cudnn.h at compile time.
 *
 * Enums travel as unsigned int (their values are all non-negative, which
 * is how GCC types such an enum) except cublasGemmAlgo_t, which has -1.
 * Handle and descriptor types use the libraries' own opaque struct tags,
 * so the same declarations are the real ones where the headers are seen.
 * Only the two files of the kiln_jit_cuda library include this.
 */
#ifndef KILN_JIT_CUDA_RELAY_IMPL_H
#define KILN_JIT_CUDA_RELAY_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_relay.h"

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
 * supported through 9.x); the relays are that API's one user. */
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

struct jit_cuda_relay {
    void *cu_lib, *blas_lib, *dnn_lib;
    struct cu_fns cu;
    struct blas_fns blas;
    struct dnn_fns dnn;
    struct jit_cuda_relay_info info;
};

#endif
