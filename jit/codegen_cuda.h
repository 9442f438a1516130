/* codegen_cuda.h: one fusion group (fuse.h) as a CUDA module for NVRTC.
 *
 * The module is codegen.h's C module for the group, unchanged, compiled
 * as device code (NVRTC's -default-device makes every function without an
 * execution space __device__), plus __global__ entry points that call its
 * functions. So CUDA kernels and CPU kernels are one text: the same index
 * math, the same element-wise helpers (ops_c.h), the same float32
 * exp/log/tanh/sigmoid/erf (kernels/vmath.h), the same reduction order,
 * and random numbers from kernels/philox.c itself (its text is handed to
 * NVRTC as an in-memory header). jit_codegen_cuda_options() turn off
 * contraction into fused multiply-add (--fmad=false) and keep IEEE
 * division, square root and subnormals, as -ffp-contract=off does on the
 * CPU, so float32 and float64 arithmetic and vmath give the CPU's bits.
 * What can differ: the double functions the C text takes from libm (sin,
 * cos, tan, tanh and erf in float64, exp and log in float64, pow, and the
 * Box-Muller of normal random numbers) are CUDA's there, within their
 * documented ulp bounds of glibc's, not bit-identical.
 *
 * Entry points, all `extern "C"`, each called as
 *     kernel(const struct kiln_args a, int64_t n)
 * where kiln_args is, by value (kernel parameters, no upload),
 *     void *b[nbufs];  int64_t p[max(nparams, 1)];
 * b: codegen.h's bufs (device pointers), with one more slot after the
 * sinks for REDUCE (the partials, for kiln_init/kiln_fini) and for a
 * scratch REINDEX_REDUCE; p: jit_kernel_params(). Sizes below.
 *   ELEMENTWISE     kiln_main, n = the main space's elements; any grid.
 *   REDUCE          kiln_main, n = output elements; any grid: one thread
 *                   reduces one output element in interp.h's order. Or
 *                   kiln_init, n = partial items (blocks * outputs), then
 *                   kiln_fini, n = output elements; any grids.
 *   REINDEX_REDUCE  kiln_init, n = output elements, any grid; kiln_main,
 *                   n = the input space's elements, which ONE thread
 *                   walks in order (launch 1 x 1; the scatter is not
 *                   thread-private); kiln_fini, n = output elements, any
 *                   grid, when there is a scratch buffer.
 * Every grid strides over [0, n): a thread does elements i, i + stride,
 * ... with stride = gridDim.x * blockDim.x.
 *
 * This is the first, plain version: one thread per output element, with
 * the C text's per-thread lane arrays (k_blk keeps 64 x 16 accumulators
 * in local memory), and a serial scatter. Warp-shuffle and block
 * reductions that keep the same order, and atomics where they cannot
 * change the bytes, come next.
 *
 * Threads: pure functions of their arguments; any thread.
 */
#ifndef KILN_JIT_CODEGEN_CUDA_H
#define KILN_JIT_CODEGEN_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fuse.h"

/* The virtual architecture modules are compiled for: PTX for it runs on
 * compute capability 8.0 and later (Ampere, Hopper, ...), JIT-compiled by
 * the driver for the card it finds. */
#define JIT_CUDA_ARCH "compute_80"

/* Bytes of kernel parameters (kiln_args and n) one launch may pass: CUDA
 * 12.1 and later allow 32764 on compute capability 7.0 and up. A group
 * that needs more is refused with KILN_ELIMIT. */
#define JIT_CUDA_ARGS_MAX 32764

/* Buffer slots in kiln_args.b for group `gi`. */
size_t jit_codegen_cuda_nbufs(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi);

/* Appends the CUDA source of group `gi`'s module to `src`. Returns KILN_OK;
 * KILN_ELIMIT (deeper than JIT_CODEGEN_MAX_DEPTH, or arguments over
 * JIT_CUDA_ARGS_MAX); KILN_ENOMEM; KILN_EINTERNAL (a plan codegen does not
 * understand). */
int jit_codegen_cuda_group(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           struct jit_buf *src);

/* The NVRTC options every module is compiled with (static), and their
 * number. */
const char *const *jit_codegen_cuda_options(int *n);

/* The in-memory headers modules #include (static): their texts and the
 * names they are included by, and their number. */
const char *const *jit_codegen_cuda_headers(int *n, const char *const **names);

#endif
