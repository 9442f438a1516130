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
 * sinks for REDUCE (the partials) and for a scratch REINDEX_REDUCE; p:
 * jit_kernel_params(). jit_codegen_cuda_launches() says which entries to
 * launch, in order on one stream, with which n, grid and block, and how
 * many bytes the extra slot needs; the executor follows it and knows
 * nothing else. Blocks are 256 threads (a multiple of 32, as the REDUCE
 * entries need: they shuffle within warps), no dynamic shared memory;
 * every entry strides over its n with any grid.
 *
 *   kind            launches (n)                         extra slot
 *   ELEMENTWISE     kiln_main (main elements)             -
 *   REDUCE          kiln_main (outputs x T), or           -
 *                   kiln_init (blocks x outputs x T),     8 B x blocks x outputs
 *                   then kiln_fini (outputs)
 *   REINDEX_REDUCE  kiln_init (outputs),                  8 B x outputs when
 *                   kiln_main (input elements; grid 1 x   float32 (the scratch)
 *                   block 32 when serial, below),
 *                   kiln_fini (outputs) when float32
 * No launches when there is nothing to do (no main elements; no outputs).
 *
 * REDUCE keeps the CPU's bytes in every case. The order interp.h fixes
 * (blocks of IR_REDUCE_BLOCK elements, 16 lanes j % 16 each combined in
 * increasing j, the lanes folded by halves, blocks combined in order) is
 * mapped onto threads: an item (an output element, or one block of one)
 * is done by T threads, T = 16 (a half-warp, thread l being lane l, the
 * fold as __shfl_down_sync in the C text's operand order) or T = 1 (one
 * thread, the 16 lanes in registers); the plan picks T (16 when the last
 * dim is reduced, or when the items are too few to fill the device) and
 * passes n = items x T. Float max/min, serial on the CPU, take 16 threads
 * too: each lane keeps the index of the element its value came from, and
 * lanes merge as (earlier, later) by the same rule, which picks the first
 * NaN or the first maximal element, as the serial walk does (signed zeros
 * and NaN payloads included). Integers are exact in any order. With few
 * outputs of more than one block each, kiln_init computes every block of
 * every output at once into the partials and kiln_fini (the C text's
 * k_fini) combines them in block order, as run.c does on the CPU. What
 * the order cannot give: a lane's elements are a chain of dependent adds
 * (4096 per block), so one output element of one block has at most 16
 * threads; a lone huge sum runs its blocks in parallel, no more.
 *
 * REINDEX_REDUCE of integers scatters in parallel with atomics (add
 * where the native one wraps at the width, max/min of int32 and int64,
 * else a compare-and-swap loop doing the C text's combine; 8-bit values
 * through their aligned 32-bit word): integer combines give the same
 * bytes in any order. Floats keep the C text's serial walk (one thread):
 * an add or mul in another order rounds differently, and max/min in
 * another order could keep the other of two equal signed zeros or NaNs.
 * That walk is correct but slow; a parallel float scatter that keeps the
 * order is not written yet.
 *
 * ELEMENTWISE: one element per thread, grid-strided.
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

#define JIT_CUDA_LAUNCH_MAX 4
struct jit_cuda_launch {
    const char *entry;    /* "kiln_main", "kiln_init" or "kiln_fini" (static) */
    int64_t n;            /* the entry's n argument */
    uint32_t grid, block; /* 1-D launch geometry */
    uint32_t shared;      /* dynamic shared-memory bytes */
};

/* The launches that run group gi, in order on one stream, for a device with
 * `sms` multiprocessors; *extra_bytes: bytes the executor must allocate for
 * the extra buffer slot (kiln_args.b[nbufs - 1], REDUCE partials or the
 * scratch), 0 when none. Returns the number of launches (0: nothing to run,
 * e.g. no elements; always 0 for relays). Sizes come from g, as
 * jit_kernel_params() reads them. */
uint32_t jit_codegen_cuda_launches(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                                   uint32_t sms, struct jit_cuda_launch out[JIT_CUDA_LAUNCH_MAX],
                                   size_t *extra_bytes);

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
