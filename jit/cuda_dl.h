/* cuda_dl.h: the CUDA driver and NVRTC, loaded at run time.
 *
 * kilnd is one binary for machines with and without a GPU, so nothing of
 * CUDA is linked: jit_cuda_open() dlopens libcuda.so.1 (the driver, which
 * comes with the NVIDIA kernel module, never with the toolkit) and NVRTC
 * (libnvrtc.so.13, then libnvrtc.so, in the loader's search path and then
 * in the toolkit's lib64 directory: JIT_CUDA_HOME, set by meson to the
 * toolkit it found, else /usr/local/cuda) into function tables of the few
 * entry points kiln calls. A library that is missing is not an error: the
 * info says what was found and, for what was not, why, in words meant for
 * `kiln status` ("no NVIDIA driver (libcuda.so.1: ...)", "cuInit:
 * CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)", ...).
 *
 * NVRTC works without a GPU and without a driver: jit_cuda_compile_ptx()
 * turns CUDA source (codegen_cuda.h) into PTX for a virtual architecture,
 * which any later driver JIT-compiles for the card it has.
 *
 * meson's `cuda` option: `disabled` builds cuda_dl_none.c instead, which has
 * this API and reports that kilnd was built without CUDA support.
 * Otherwise cuda_dl.c is built; it declares the CUDA types it needs itself,
 * so no toolkit is needed to build it, and where meson finds the toolkit's
 * headers it checks those declarations against cuda.h and nvrtc.h.
 *
 * Ownership and threads. jit_cuda_open returns an object the caller owns
 * and frees with jit_cuda_close (safe on NULL); the info is filled once,
 * in jit_cuda_open, and read-only after. jit_cuda_compile_ptx may be
 * called from any number of threads at once (NVRTC has no global lock;
 * each call has its own program). The libraries stay loaded after
 * jit_cuda_close (cuda_dl.c says why): open them once per process.
 */
#ifndef KILN_JIT_CUDA_DL_H
#define KILN_JIT_CUDA_DL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JIT_CUDA_MAX_DEVICES 16  /* devices listed; more are counted, not named */
#define JIT_CUDA_NAME_MAX    95  /* bytes of a device name */
#define JIT_CUDA_WHY_MAX     191 /* bytes of a reason */

/* What jit_cuda_open may load. */
#define JIT_CUDA_DRIVER 1u /* libcuda.so.1: cuInit and the device list */
#define JIT_CUDA_NVRTC  2u /* NVRTC: compiling CUDA source to PTX */

struct jit_cuda_device {
    char name[JIT_CUDA_NAME_MAX + 1]; /* "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor;           /* compute capability */
    uint64_t mem_total;               /* bytes of device memory */
};

struct jit_cuda_info {
    /* The driver. ndevices 0: `why` says why (never empty then). */
    bool driver;        /* libcuda.so.1 loaded and cuInit succeeded */
    int driver_version; /* cuDriverGetVersion: 1000 * major + 10 * minor; 0 unknown */
    uint32_t ndevices;  /* listed in devices[], at most JIT_CUDA_MAX_DEVICES */
    struct jit_cuda_device devices[JIT_CUDA_MAX_DEVICES];
    char why[JIT_CUDA_WHY_MAX + 1];
    /* NVRTC. Absent: nvrtc_why says why. */
    bool nvrtc;
    int nvrtc_major, nvrtc_minor;
    char nvrtc_why[JIT_CUDA_WHY_MAX + 1];
};

struct jit_cuda;

/* Loads what `what` (JIT_CUDA_DRIVER | JIT_CUDA_NVRTC) names and fills
 * the info; for the driver that includes cuInit(0) and the device list.
 * Returns KILN_OK with *out set whatever was found, or KILN_ENOMEM. */
int jit_cuda_open(unsigned what, struct jit_cuda **out);
void jit_cuda_close(struct jit_cuda *c);

const struct jit_cuda_info *jit_cuda_info(const struct jit_cuda *c);

/* Compiles `src` (named `name` in diagnostics) with NVRTC to PTX, with the
 * in-memory headers `headers[k]` known as `names[k]` to #include, and
 * `nopts` options. On KILN_OK *ptx is a malloc'd NUL-terminated string and
 * *ptx_len its length (without the NUL). When the options name a real
 * architecture (--gpu-architecture=sm_XY) NVRTC also assembles it, and
 * *ptx is the cubin instead (binary: *ptx_len is its size; a NUL follows
 * it too), which a driver loads without compiling PTX: the way around a
 * driver older than NVRTC, which refuses newer PTX. *log, when `log` is not NULL, is
 * NVRTC's log (malloc'd, possibly empty) on success and failure alike; the
 * caller frees it. Returns KILN_OK; KILN_EUNSUPPORTED when NVRTC is not
 * loaded; KILN_EINTERNAL when NVRTC refuses the source (a codegen bug: the
 * log says where); KILN_ENOMEM. */
int jit_cuda_compile_ptx(struct jit_cuda *c, const char *src, const char *name, int nheaders,
                         const char *const *headers, const char *const *names, int nopts,
                         const char *const *opts, char **ptx, size_t *ptx_len, char **log);

#endif
