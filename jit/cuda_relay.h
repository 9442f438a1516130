/* cuda_relay.h: the relay ops on a GPU — matmul through cuBLAS,
 * convolution and its two gradients through cuDNN, loaded at run time.
 *
 * The CUDA counterpart of relay.h. Nothing is linked: jit_cuda_relay_open
 * dlopens libcublas.so.13 (which brings libcublasLt), libcudnn.so.9 (whose
 * front library loads its cnn/ops sub-libraries on demand) and
 * libcuda.so.1 (the driver: the current context, a memset) into function
 * tables, looking in the loader's path and then in the toolkit's lib64
 * (JIT_CUDA_HOME). A missing library is not an error: the relays it would
 * serve are unavailable (jit_cuda_relay_available says why) and the
 * executor runs those nodes another way. Loading is not free: on the build
 * machines jit_cuda_relay_open took 155-185 ms and left 160 MB resident
 * (cuBLAS and cuBLASLt relocated, cuDNN's sub-libraries loaded), so open
 * it where jit_cuda found a device, not on every machine.
 *
 * How each op maps onto its library is cuda_relay_map.h. Precision: float32
 * runs in full FP32 (cuBLAS compute type 32F; cuDNN FMA math, since cuDNN's
 * default math lets float32 convolutions use TF32 tensor cores on Ampere
 * and later) unless the client asked for TF32; float64 in FP64.
 * Convolution algorithms come from cuDNN's heuristics (no trial runs),
 * deterministic ones preferred for the gradients so that a step run twice
 * gives the same bits; the choice is cached per handles object.
 *
 * Ownership and threads. The relay object is filled once by open and is
 * read-only after: any thread may use it. A handles object belongs to one
 * CUDA stream in one context; its library handles are made on first use,
 * in the calling thread's current context, which must be the context that
 * was current at jit_cuda_relay_handles_new (the executor makes it
 * current). Calls on one handles object are serialised by its lock; use
 * one handles object per stream for parallel work. Free handles before
 * the relay object, and before destroying their stream or context.
 *
 * meson's `cuda` option: `disabled` builds cuda_relay_none.c, which has
 * this API and reports that kilnd was built without CUDA support.
 */
#ifndef KILN_JIT_CUDA_RELAY_H
#define KILN_JIT_CUDA_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_dl.h"
#include "ir.h"

/* The workspace a matmul asks for: cuBLAS's recommendation per
 * architecture (Hopper and later, then the rest). */
#define JIT_CUDA_RELAY_GEMM_WS_SM90 ((size_t) 32 << 20)
#define JIT_CUDA_RELAY_GEMM_WS      ((size_t) 4 << 20)
#define JIT_CUDA_RELAY_CONV_CACHE   32 /* convolution plans kept per handles object (LRU) */

struct jit_cuda_relay;         /* the libraries, loaded once per process */
struct jit_cuda_relay_handles; /* per stream: cuBLAS and cuDNN handles bound to it */

/* What was loaded, for `kiln status`. A library that is absent has its
 * reason (never empty then) in words: "no cuBLAS (libcublas.so.13: cannot
 * open shared object file ...)". */
struct jit_cuda_relay_info {
    bool driver; /* libcuda.so.1 loaded (a context can be looked up) */
    char driver_why[JIT_CUDA_WHY_MAX + 1];
    bool cublas;
    int cublas_major, cublas_minor, cublas_patch; /* cublasGetProperty */
    char cublas_why[JIT_CUDA_WHY_MAX + 1];
    bool cudnn;           /* libcudnn.so.9 and its convolution sub-library */
    size_t cudnn_version; /* cudnnGetVersion: 10000 * major + 100 * minor + patch */
    char cudnn_why[JIT_CUDA_WHY_MAX + 1];
};

/* Loads what can be loaded. Returns KILN_OK with *out set whatever was
 * found, or KILN_ENOMEM. */
int jit_cuda_relay_open(struct jit_cuda_relay **out);
void jit_cuda_relay_close(struct jit_cuda_relay *r); /* NULL ok; free every handles object first */

const struct jit_cuda_relay_info *jit_cuda_relay_info(const struct jit_cuda_relay *r);

/* One line for STATUS: "cuBLAS 13.1.0, cuDNN 9.19.0" or what is missing
 * and why. Writes at most `len` bytes (NUL included); returns `buf`. */
char *jit_cuda_relay_describe(const struct jit_cuda_relay *r, char *buf, size_t len);

/* Whether op kind `op` (IR_OP_MATMUL, IR_OP_CONV2D, ...) can run here as far
 * as the libraries go: matmul needs cuBLAS, the convolutions cuDNN. False
 * with *why (when why is not NULL; a static or r-owned string) naming the
 * missing library, or "not a relay op". A device and context are checked
 * by jit_cuda_relay_handles_new, not here. */
bool jit_cuda_relay_available(const struct jit_cuda_relay *r, int op, const char **why);

/* Handles for CUDA stream `stream` (a CUstream; NULL: the legacy default
 * stream) in the calling thread's current context. Returns KILN_OK;
 * KILN_EUNSUPPORTED when there is no driver or no current context;
 * KILN_ENOMEM. The _ex form says which in `err` (may be NULL). */
int jit_cuda_relay_handles_new(struct jit_cuda_relay *r, void *stream,
                               struct jit_cuda_relay_handles **out);
int jit_cuda_relay_handles_new_ex(struct jit_cuda_relay *r, void *stream,
                                  struct jit_cuda_relay_handles **out, struct ir_error *err);
void jit_cuda_relay_handles_free(struct jit_cuda_relay_handles *h); /* NULL ok; in its context */

/* Workspace bytes relay node n needs, for either precision (the larger):
 * the executor allocates it from its device pool and passes it to
 * jit_cuda_relay_run. 0 also when the library cannot serve the node: the
 * run then says why. */
size_t jit_cuda_relay_workspace(struct jit_cuda_relay_handles *h, const struct ir_graph *g,
                                uint32_t n);
/* The same for one precision, with failures reported: KILN_OK and *bytes,
 * or the code and err jit_cuda_relay_run would give. */
int jit_cuda_relay_workspace_for(struct jit_cuda_relay_handles *h, const struct ir_graph *g,
                                 uint32_t n, bool tf32, size_t *bytes, struct ir_error *err);

/* Computes relay node n of g from device buffers a, b (its two inputs,
 * row-major contiguous as kiln stores every value) into y, enqueued on
 * the handles' stream; ws is ws_bytes of device scratch (0 and 0 allowed;
 * a convolution then takes an algorithm needing none). tf32: allow TF32
 * tensor-core math for float32 (only when the client asked for it).
 * Returns KILN_OK; KILN_EUNSUPPORTED when the library is missing or refuses
 * the shape or dtype (err says which: the executor then falls back);
 * KILN_ENOMEM (the library ran out of host or device memory);
 * KILN_EINTERNAL (a library error: err names the call and its status).
 * err->node is n, err->field "nodes[n]". */
int jit_cuda_relay_run(struct jit_cuda_relay_handles *h, const struct ir_graph *g, uint32_t n,
                       uint64_t a, uint64_t b, uint64_t y, uint64_t ws, size_t ws_bytes, bool tf32,
                       struct ir_error *err);

#endif
