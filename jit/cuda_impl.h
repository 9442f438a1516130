/* cuda_impl.h: the CUDA driver's entry points as kiln calls them, for the
 * jit's own CUDA code (cuda_dl.c fills the table; cuda_run.c uses it).
 *
 * The types are declared here, not taken from cuda.h, so that kiln builds
 * where no toolkit is installed; cuda_dl.c checks every pointer type
 * against cuda.h where meson found it (KILN_CUDA_HEADERS). Handles are
 * opaque pointers, device addresses 64-bit integers, results unsigned
 * (CUresult is an enum of non-negative values; its ABI is unsigned int).
 *
 * Not part of any public API: only jit/ includes it.
 */
#ifndef KILN_JIT_CUDA_IMPL_H
#define KILN_JIT_CUDA_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_dl.h"

typedef unsigned int cu_result;
typedef int cu_device;
typedef uint64_t cu_devptr; /* CUdeviceptr: unsigned long long on 64-bit hosts */
typedef struct cu_context_s *cu_context;
typedef struct cu_module_s *cu_module;
typedef struct cu_function_s *cu_function;
typedef struct cu_stream_s *cu_stream;
typedef struct cu_event_s *cu_event;

#define CU_SUCCESS                       0u
#define CU_ERROR_OUT_OF_MEMORY           2u
#define CU_ERROR_NO_DEVICE               100u
#define CU_ERROR_NOT_READY               600u
#define CU_ATTR_MULTIPROCESSOR_COUNT     16u
#define CU_ATTR_COMPUTE_CAPABILITY_MAJOR 75u
#define CU_ATTR_COMPUTE_CAPABILITY_MINOR 76u
#define CU_STREAM_NON_BLOCKING_FLAG      1u
#define CU_EVENT_DISABLE_TIMING_FLAG     2u
#define CU_CTX_SCHED_BLOCKING_SYNC_FLAG  4u

/* The driver entry points (cuda_dl.c's list names the symbol of each: the
 * _v2 ones where cuda.h #defines the name to it). */
struct jit_cu_fns {
    cu_result (*init)(unsigned int flags);
    cu_result (*driver_get_version)(int *version);
    cu_result (*device_get_count)(int *count);
    cu_result (*device_get)(cu_device *dev, int ordinal);
    cu_result (*device_get_name)(char *name, int len, cu_device dev);
    cu_result (*device_get_attribute)(int *value, unsigned int attr, cu_device dev);
    cu_result (*device_total_mem)(size_t *bytes, cu_device dev);
    cu_result (*get_error_name)(cu_result err, const char **str);
    cu_result (*get_error_string)(cu_result err, const char **str);
    /* Contexts and streams. */
    cu_result (*primary_ctx_retain)(cu_context *ctx, cu_device dev);
    cu_result (*primary_ctx_release)(cu_device dev);
    cu_result (*primary_ctx_set_flags)(cu_device dev, unsigned int flags);
    cu_result (*ctx_set_current)(cu_context ctx);
    cu_result (*stream_create)(cu_stream *s, unsigned int flags);
    cu_result (*stream_destroy)(cu_stream s);
    cu_result (*stream_synchronize)(cu_stream s);
    cu_result (*event_create)(cu_event *e, unsigned int flags);
    cu_result (*event_destroy)(cu_event e);
    cu_result (*event_record)(cu_event e, cu_stream s);
    cu_result (*event_synchronize)(cu_event e);
    /* Memory. */
    cu_result (*mem_get_info)(size_t *free_bytes, size_t *total);
    cu_result (*mem_alloc)(cu_devptr *p, size_t bytes);
    cu_result (*mem_free)(cu_devptr p);
    cu_result (*mem_alloc_host)(void **p, size_t bytes);
    cu_result (*mem_free_host)(void *p);
    cu_result (*memcpy_htod_async)(cu_devptr dst, const void *src, size_t bytes, cu_stream s);
    cu_result (*memcpy_dtoh_async)(void *dst, cu_devptr src, size_t bytes, cu_stream s);
    cu_result (*memcpy_dtod_async)(cu_devptr dst, cu_devptr src, size_t bytes, cu_stream s);
    /* Modules and launches. */
    cu_result (*module_load_data)(cu_module *m, const void *image);
    cu_result (*module_unload)(cu_module m);
    cu_result (*module_get_function)(cu_function *f, cu_module m, const char *name);
    cu_result (*launch_kernel)(cu_function f, unsigned int gx, unsigned int gy, unsigned int gz,
                               unsigned int bx, unsigned int by, unsigned int bz,
                               unsigned int shared, cu_stream s, void **params, void **extra);
};

/* The loaded driver's table, or NULL when the driver is not loaded (or
 * cuInit failed). */
const struct jit_cu_fns *jit_cuda_driver(const struct jit_cuda *c);

/* "CUDA_ERROR_ILLEGAL_ADDRESS 700 (an illegal memory access ...)" into buf. */
const char *jit_cuda_strerror(const struct jit_cuda *c, cu_result r, char *buf, size_t len);

/* True for the errors after which the context is unusable for good (an
 * illegal address, a failed launch, a device-side trap, an uncorrectable
 * ECC error, ...): CUDA reports them from every later call, and the only
 * recovery is a new process. */
int jit_cuda_error_is_sticky(cu_result r);

#endif
