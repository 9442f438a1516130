/* cuda_dl.c: libcuda.so.1 and NVRTC through dlopen (contract in cuda_dl.h).
 *
 * The two libraries are tables of function pointers filled with dlsym by
 * name from a const list, so adding an entry point is one line in the
 * struct and one in the list. The CUDA types are declared here, not taken
 * from cuda.h: the daemon must build where no toolkit is installed. Where
 * meson found the toolkit's headers (KILN_CUDA_HEADERS), every pointer
 * type below is checked against the real prototype at compile time, so a
 * wrong declaration is a build error here, not a crash on a GPU machine.
 *
 * Versioned driver symbols: cuda.h #defines some API names to _v2
 * variants (cuDeviceTotalMem -> cuDeviceTotalMem_v2); dlsym needs the
 * real symbol, so the list names it.
 */
#include "cuda_dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.h"
#include "dl.h"
#include "kiln_err.h"

#ifndef JIT_CUDA_HOME
#define JIT_CUDA_HOME "/usr/local/cuda"
#endif

/* nvrtcResult is an enum of non-negative values (unsigned int in the
 * ABI); the program handle is opaque. The driver's types are cuda_impl.h's. */
typedef unsigned int nv_result;
#ifdef KILN_CUDA_HEADERS
#include <cuda.h>
#include <nvrtc.h>
typedef nvrtcProgram nv_program;
#else
typedef struct nv_program_s *nv_program;
#endif

#define NV_SUCCESS             0u
#define NV_ERROR_OUT_OF_MEMORY 1u

struct nv_fns {
    const char *(*get_error_string)(nv_result r);
    nv_result (*version)(int *major, int *minor);
    nv_result (*create_program)(nv_program *prog, const char *src, const char *name, int nheaders,
                                const char *const *headers, const char *const *names);
    nv_result (*compile_program)(nv_program prog, int nopts, const char *const *opts);
    nv_result (*get_program_log_size)(nv_program prog, size_t *size);
    nv_result (*get_program_log)(nv_program prog, char *log);
    nv_result (*get_ptx_size)(nv_program prog, size_t *size);
    nv_result (*get_ptx)(nv_program prog, char *ptx);
    nv_result (*get_cubin_size)(nv_program prog, size_t *size);
    nv_result (*get_cubin)(nv_program prog, char *cubin);
    nv_result (*destroy_program)(nv_program *prog);
};

#ifdef KILN_CUDA_HEADERS
#define SAME(field, fn)                                                                            \
    _Static_assert(__builtin_types_compatible_p(__typeof__(((struct jit_cu_fns *) 0)->field),      \
                                                __typeof__(&fn)),                                  \
                   #fn " is declared as in cuda.h")
SAME(init, cuInit);
SAME(driver_get_version, cuDriverGetVersion);
SAME(device_get_count, cuDeviceGetCount);
SAME(device_get, cuDeviceGet);
SAME(device_get_name, cuDeviceGetName);
SAME(device_total_mem, cuDeviceTotalMem_v2);
SAME(get_error_name, cuGetErrorName);
SAME(get_error_string, cuGetErrorString);
SAME(mem_get_info, cuMemGetInfo_v2);
SAME(mem_free_host, cuMemFreeHost);
SAME(mem_alloc_host, cuMemAllocHost_v2);
#undef SAME
/* Handles and device pointers are declared apart from cuda.h's (opaque
 * struct pointers of our own, uint64_t): same size and passing, which is
 * what the ABI sees; the prototypes using them are checked by shape. */
_Static_assert(sizeof(CUdeviceptr) == sizeof(cu_devptr) &&
                   sizeof(CUcontext) == sizeof(cu_context) &&
                   sizeof(CUstream) == sizeof(cu_stream) && sizeof(CUmodule) == sizeof(cu_module) &&
                   sizeof(CUfunction) == sizeof(cu_function) && sizeof(CUevent) == sizeof(cu_event),
               "handle sizes");
_Static_assert(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT == CU_ATTR_MULTIPROCESSOR_COUNT &&
                   CU_STREAM_NON_BLOCKING == CU_STREAM_NON_BLOCKING_FLAG &&
                   CU_EVENT_DISABLE_TIMING == CU_EVENT_DISABLE_TIMING_FLAG &&
                   CUDA_ERROR_OUT_OF_MEMORY == CU_ERROR_OUT_OF_MEMORY &&
                   CUDA_ERROR_NOT_READY == CU_ERROR_NOT_READY &&
                   CU_CTX_SCHED_BLOCKING_SYNC == CU_CTX_SCHED_BLOCKING_SYNC_FLAG,
               "cuda.h's numbers (2)");
/* The attribute parameter is an enum type of its own: its ABI is unsigned. */
_Static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == CU_ATTR_COMPUTE_CAPABILITY_MAJOR &&
                   CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR ==
                       CU_ATTR_COMPUTE_CAPABILITY_MINOR &&
                   CUDA_ERROR_NO_DEVICE == CU_ERROR_NO_DEVICE,
               "cuda.h's numbers");
_Static_assert(sizeof(CUdevice_attribute) == sizeof(unsigned int), "an enum is an int");
#define SAME(field, fn)                                                                            \
    _Static_assert(                                                                                \
        __builtin_types_compatible_p(__typeof__(((struct nv_fns *) 0)->field), __typeof__(&fn)),   \
        #fn " is declared as in nvrtc.h")
SAME(get_error_string, nvrtcGetErrorString);
SAME(version, nvrtcVersion);
SAME(create_program, nvrtcCreateProgram);
SAME(compile_program, nvrtcCompileProgram);
SAME(get_program_log_size, nvrtcGetProgramLogSize);
SAME(get_program_log, nvrtcGetProgramLog);
SAME(get_ptx_size, nvrtcGetPTXSize);
SAME(get_ptx, nvrtcGetPTX);
SAME(get_cubin_size, nvrtcGetCUBINSize);
SAME(get_cubin, nvrtcGetCUBIN);
SAME(destroy_program, nvrtcDestroyProgram);
#undef SAME
_Static_assert(NVRTC_ERROR_OUT_OF_MEMORY == NV_ERROR_OUT_OF_MEMORY, "nvrtc.h's numbers");
#endif

static const struct jit_dl_sym cu_syms[] = {
    {"cuInit", offsetof(struct jit_cu_fns, init)},
    {"cuDriverGetVersion", offsetof(struct jit_cu_fns, driver_get_version)},
    {"cuDeviceGetCount", offsetof(struct jit_cu_fns, device_get_count)},
    {"cuDeviceGet", offsetof(struct jit_cu_fns, device_get)},
    {"cuDeviceGetName", offsetof(struct jit_cu_fns, device_get_name)},
    {"cuDeviceGetAttribute", offsetof(struct jit_cu_fns, device_get_attribute)},
    {"cuDeviceTotalMem_v2", offsetof(struct jit_cu_fns, device_total_mem)},
    {"cuGetErrorName", offsetof(struct jit_cu_fns, get_error_name)},
    {"cuGetErrorString", offsetof(struct jit_cu_fns, get_error_string)},
    {"cuDevicePrimaryCtxRetain", offsetof(struct jit_cu_fns, primary_ctx_retain)},
    {"cuDevicePrimaryCtxRelease_v2", offsetof(struct jit_cu_fns, primary_ctx_release)},
    {"cuDevicePrimaryCtxSetFlags_v2", offsetof(struct jit_cu_fns, primary_ctx_set_flags)},
    {"cuCtxSetCurrent", offsetof(struct jit_cu_fns, ctx_set_current)},
    {"cuStreamCreate", offsetof(struct jit_cu_fns, stream_create)},
    {"cuStreamDestroy_v2", offsetof(struct jit_cu_fns, stream_destroy)},
    {"cuStreamSynchronize", offsetof(struct jit_cu_fns, stream_synchronize)},
    {"cuEventCreate", offsetof(struct jit_cu_fns, event_create)},
    {"cuEventDestroy_v2", offsetof(struct jit_cu_fns, event_destroy)},
    {"cuEventRecord", offsetof(struct jit_cu_fns, event_record)},
    {"cuEventSynchronize", offsetof(struct jit_cu_fns, event_synchronize)},
    {"cuMemGetInfo_v2", offsetof(struct jit_cu_fns, mem_get_info)},
    {"cuMemAlloc_v2", offsetof(struct jit_cu_fns, mem_alloc)},
    {"cuMemFree_v2", offsetof(struct jit_cu_fns, mem_free)},
    {"cuMemAllocHost_v2", offsetof(struct jit_cu_fns, mem_alloc_host)},
    {"cuMemFreeHost", offsetof(struct jit_cu_fns, mem_free_host)},
    {"cuMemcpyHtoDAsync_v2", offsetof(struct jit_cu_fns, memcpy_htod_async)},
    {"cuMemcpyDtoHAsync_v2", offsetof(struct jit_cu_fns, memcpy_dtoh_async)},
    {"cuMemcpyDtoDAsync_v2", offsetof(struct jit_cu_fns, memcpy_dtod_async)},
    {"cuModuleLoadData", offsetof(struct jit_cu_fns, module_load_data)},
    {"cuModuleUnload", offsetof(struct jit_cu_fns, module_unload)},
    {"cuModuleGetFunction", offsetof(struct jit_cu_fns, module_get_function)},
    {"cuLaunchKernel", offsetof(struct jit_cu_fns, launch_kernel)},
};
_Static_assert(sizeof cu_syms / sizeof cu_syms[0] ==
                   sizeof(struct jit_cu_fns) / sizeof(void (*)(void)),
               "every driver entry point is looked up");

static const struct jit_dl_sym nv_syms[] = {
    {"nvrtcGetErrorString", offsetof(struct nv_fns, get_error_string)},
    {"nvrtcVersion", offsetof(struct nv_fns, version)},
    {"nvrtcCreateProgram", offsetof(struct nv_fns, create_program)},
    {"nvrtcCompileProgram", offsetof(struct nv_fns, compile_program)},
    {"nvrtcGetProgramLogSize", offsetof(struct nv_fns, get_program_log_size)},
    {"nvrtcGetProgramLog", offsetof(struct nv_fns, get_program_log)},
    {"nvrtcGetPTXSize", offsetof(struct nv_fns, get_ptx_size)},
    {"nvrtcGetPTX", offsetof(struct nv_fns, get_ptx)},
    {"nvrtcGetCUBINSize", offsetof(struct nv_fns, get_cubin_size)},
    {"nvrtcGetCUBIN", offsetof(struct nv_fns, get_cubin)},
    {"nvrtcDestroyProgram", offsetof(struct nv_fns, destroy_program)},
};
_Static_assert(sizeof nv_syms / sizeof nv_syms[0] == sizeof(struct nv_fns) / sizeof(void (*)(void)),
               "every NVRTC entry point is looked up");

struct jit_cuda {
    void *cu_lib, *nv_lib;
    struct jit_cu_fns cu;
    struct nv_fns nv;
    struct jit_cuda_info info;
};

const char *jit_cuda_strerror(const struct jit_cuda *c, cu_result r, char *buf, size_t len)
{
    if (c == NULL || c->cu_lib == NULL) {
        snprintf(buf, len, "CUDA error %u", r);
        return buf;
    }
    const char *name = NULL, *text = NULL;
    if (c->cu.get_error_name(r, &name) != CU_SUCCESS || name == NULL)
        name = "CUDA_ERROR_?";
    if (c->cu.get_error_string(r, &text) != CU_SUCCESS || text == NULL)
        text = "unknown error";
    snprintf(buf, len, "%s %u (%s)", name, r, text);
    return buf;
}

static void open_driver(struct jit_cuda *c)
{
    struct jit_cuda_info *in = &c->info;
    dlerror();
    c->cu_lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (c->cu_lib == NULL) {
        const char *e = dlerror();
        snprintf(in->why, sizeof in->why, "no NVIDIA driver (%s)",
                 e ? e : "libcuda.so.1 not found");
        return;
    }
    if (!jit_dl_resolve(c->cu_lib, cu_syms, sizeof cu_syms / sizeof cu_syms[0], &c->cu, in->why,
                        sizeof in->why, "libcuda.so.1")) {
        dlclose(c->cu_lib);
        c->cu_lib = NULL;
        return;
    }
    char eb[128];
    cu_result r = c->cu.init(0);
    if (r != CU_SUCCESS) {
        snprintf(in->why, sizeof in->why, "cuInit: %s", jit_cuda_strerror(c, r, eb, sizeof eb));
        return;
    }
    in->driver = true;
    if (c->cu.driver_get_version(&in->driver_version) != CU_SUCCESS)
        in->driver_version = 0;
    int n = 0;
    r = c->cu.device_get_count(&n);
    if (r != CU_SUCCESS) {
        snprintf(in->why, sizeof in->why, "cuDeviceGetCount: %s",
                 jit_cuda_strerror(c, r, eb, sizeof eb));
        return;
    }
    for (int k = 0; k < n && in->ndevices < JIT_CUDA_MAX_DEVICES; k++) {
        struct jit_cuda_device *d = &in->devices[in->ndevices];
        cu_device dev;
        size_t mem = 0;
        if ((r = c->cu.device_get(&dev, k)) != CU_SUCCESS ||
            (r = c->cu.device_get_name(d->name, (int) sizeof d->name, dev)) != CU_SUCCESS ||
            (r = c->cu.device_get_attribute(&d->cc_major, CU_ATTR_COMPUTE_CAPABILITY_MAJOR, dev)) !=
                CU_SUCCESS ||
            (r = c->cu.device_get_attribute(&d->cc_minor, CU_ATTR_COMPUTE_CAPABILITY_MINOR, dev)) !=
                CU_SUCCESS ||
            (r = c->cu.device_total_mem(&mem, dev)) != CU_SUCCESS) {
            snprintf(in->why, sizeof in->why, "device %d: %s", k,
                     jit_cuda_strerror(c, r, eb, sizeof eb));
            memset(d, 0, sizeof *d);
            continue;
        }
        d->name[sizeof d->name - 1] = '\0';
        d->mem_total = mem;
        in->ndevices++;
    }
    if (in->ndevices == 0 && in->why[0] == '\0')
        snprintf(in->why, sizeof in->why, "the driver reports no CUDA devices");
    else if (in->ndevices > 0)
        in->why[0] = '\0'; /* one device failed to answer but others did: say nothing */
}

static void open_nvrtc(struct jit_cuda *c)
{
    static const char *const names[] = {
        "libnvrtc.so.13",
        "libnvrtc.so",
        JIT_CUDA_HOME "/lib64/libnvrtc.so.13",
        JIT_CUDA_HOME "/lib64/libnvrtc.so",
        "/usr/local/cuda/lib64/libnvrtc.so.13",
        "/usr/local/cuda/lib64/libnvrtc.so",
    };
    struct jit_cuda_info *in = &c->info;
    c->nv_lib = jit_dl_open_first(names, sizeof names / sizeof names[0], "NVRTC", in->nvrtc_why,
                                  sizeof in->nvrtc_why);
    if (c->nv_lib == NULL)
        return;
    if (!jit_dl_resolve(c->nv_lib, nv_syms, sizeof nv_syms / sizeof nv_syms[0], &c->nv,
                        in->nvrtc_why, sizeof in->nvrtc_why, "libnvrtc")) {
        dlclose(c->nv_lib);
        c->nv_lib = NULL;
        return;
    }
    nv_result r = c->nv.version(&in->nvrtc_major, &in->nvrtc_minor);
    if (r != NV_SUCCESS) {
        snprintf(in->nvrtc_why, sizeof in->nvrtc_why, "nvrtcVersion: %s",
                 c->nv.get_error_string(r));
        dlclose(c->nv_lib);
        c->nv_lib = NULL;
        return;
    }
    in->nvrtc = true;
}

int jit_cuda_open(unsigned what, struct jit_cuda **out)
{
    struct jit_cuda *c = calloc(1, sizeof *c);
    if (c == NULL)
        return KILN_ENOMEM;
    if (what & JIT_CUDA_DRIVER)
        open_driver(c);
    else
        snprintf(c->info.why, sizeof c->info.why, "the driver was not probed");
    if (what & JIT_CUDA_NVRTC)
        open_nvrtc(c);
    else
        snprintf(c->info.nvrtc_why, sizeof c->info.nvrtc_why, "NVRTC was not loaded");
    *out = c;
    return KILN_OK;
}

/* Neither library is dlclosed: after cuInit the driver keeps threads of
 * its own, and both keep global state whose memory a leak checker would
 * report once the library holding the pointers is gone. A process opens
 * them once (the daemon at start), so nothing accumulates. */
void jit_cuda_close(struct jit_cuda *c)
{
    free(c);
}

const struct jit_cuda_info *jit_cuda_info(const struct jit_cuda *c)
{
    return &c->info;
}

const struct jit_cu_fns *jit_cuda_driver(const struct jit_cuda *c)
{
    return c != NULL && c->info.driver ? &c->cu : NULL;
}

int jit_cuda_error_is_sticky(cu_result r)
{
    switch (r) {
    case 214: /* CUDA_ERROR_ECC_UNCORRECTABLE */
    case 700: /* CUDA_ERROR_ILLEGAL_ADDRESS */
    case 702: /* CUDA_ERROR_LAUNCH_TIMEOUT */
    case 709: /* CUDA_ERROR_CONTEXT_IS_DESTROYED */
    case 710: /* CUDA_ERROR_ASSERT */
    case 714: /* CUDA_ERROR_HARDWARE_STACK_ERROR */
    case 715: /* CUDA_ERROR_ILLEGAL_INSTRUCTION */
    case 716: /* CUDA_ERROR_MISALIGNED_ADDRESS */
    case 717: /* CUDA_ERROR_INVALID_ADDRESS_SPACE */
    case 718: /* CUDA_ERROR_INVALID_PC */
    case 719: /* CUDA_ERROR_LAUNCH_FAILED */
    case 999: /* CUDA_ERROR_UNKNOWN: nothing can be trusted after it */
        return 1;
    default:
        return 0;
    }
}

/* A malloc'd copy of what get_size/get say, NUL-terminated, or NULL.
 * *len: text (the log, PTX) up to its NUL (the sizes count it); binary (a
 * cubin) its whole size. */
static char *fetch(nv_program prog, nv_result (*get_size)(nv_program, size_t *),
                   nv_result (*get)(nv_program, char *), bool binary, size_t *len)
{
    size_t n = 0;
    if (get_size(prog, &n) != NV_SUCCESS)
        n = 0;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    if (n > 0 && get(prog, s) != NV_SUCCESS)
        n = 0;
    s[n] = '\0';
    if (len != NULL)
        *len = binary ? n : strlen(s);
    return s;
}

/* True when the options name a real architecture (sm_XY): NVRTC then
 * makes a cubin, not PTX. */
static bool real_arch(int nopts, const char *const *opts)
{
    static const char a1[] = "--gpu-architecture=sm_", a2[] = "-arch=sm_";
    for (int k = 0; k < nopts; k++)
        if (strncmp(opts[k], a1, sizeof a1 - 1) == 0 || strncmp(opts[k], a2, sizeof a2 - 1) == 0)
            return true;
    return false;
}

int jit_cuda_compile_ptx(struct jit_cuda *c, const char *src, const char *name, int nheaders,
                         const char *const *headers, const char *const *names, int nopts,
                         const char *const *opts, char **ptx, size_t *ptx_len, char **log)
{
    *ptx = NULL;
    *ptx_len = 0;
    if (log != NULL)
        *log = NULL;
    if (c == NULL || c->nv_lib == NULL)
        return KILN_EUNSUPPORTED;
    nv_program prog = NULL;
    nv_result r = c->nv.create_program(&prog, src, name, nheaders, headers, names);
    if (r != NV_SUCCESS) {
        if (log != NULL && (*log = malloc(128)) != NULL)
            snprintf(*log, 128, "nvrtcCreateProgram: %s", c->nv.get_error_string(r));
        return r == NV_ERROR_OUT_OF_MEMORY ? KILN_ENOMEM : KILN_EINTERNAL;
    }
    r = c->nv.compile_program(prog, nopts, opts);
    int rc = KILN_OK;
    if (log != NULL && (*log = fetch(prog, c->nv.get_program_log_size, c->nv.get_program_log, false,
                                     NULL)) == NULL)
        rc = KILN_ENOMEM;
    if (rc == KILN_OK && r != NV_SUCCESS)
        rc = r == NV_ERROR_OUT_OF_MEMORY ? KILN_ENOMEM : KILN_EINTERNAL; /* bad source or options */
    bool cubin = real_arch(nopts, opts);
    if (rc == KILN_OK &&
        (*ptx = cubin ? fetch(prog, c->nv.get_cubin_size, c->nv.get_cubin, true, ptx_len)
                      : fetch(prog, c->nv.get_ptx_size, c->nv.get_ptx, false, ptx_len)) == NULL)
        rc = KILN_ENOMEM;
    if (rc == KILN_OK && *ptx_len == 0) { /* NVRTC made nothing: say so rather than load it */
        free(*ptx);
        *ptx = NULL;
        rc = KILN_EINTERNAL;
    }
    c->nv.destroy_program(&prog);
    if (rc != KILN_OK && log != NULL && *log == NULL && r != NV_SUCCESS &&
        (*log = malloc(128)) != NULL)
        snprintf(*log, 128, "nvrtcCompileProgram: %s", c->nv.get_error_string(r));
    return rc;
}
