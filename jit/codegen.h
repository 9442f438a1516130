/* codegen.h: one fusion group (fuse.h) lowered to C kernels.
 *
 * A group becomes one compiled module holding one to three functions of
 * the calling convention in tcc.h,
 *
 *     void k(void **bufs, const int64_t *params, int64_t begin, int64_t end);
 *
 * and this header says what each is called with.
 *
 * Buffers (bufs): the group's input buffers in plan order (jit_group
 * input0..), then its sinks in plan order (sink0..), then, when
 * jit_kernel_scratch() says so, one scratch array of out-numel doubles;
 * for REDUCE's k_init and k_fini, that slot holds the partials instead:
 * ceil(n / IR_REDUCE_BLOCK) * out-numel values of 8 bytes (double for
 * floats, 64-bit integers otherwise), n the elements per output.
 *
 * Params: int64 run-time arguments filled by jit_kernel_params() from the
 * graph being run: the main space's dims, the reduction output's dims,
 * every slot's dims (slots: inputs, then members), then one value per
 * CONST member (its bits) and two per RANDOM member (seed, offset). So a
 * kernel is rank-specialised but size-, constant- and seed-generic, and
 * one compiled module serves every graph whose group has the same key.
 *
 * Entry points and their ranges (all flat, row-major):
 *   ELEMENTWISE     "k_main" over the main space's elements; any split.
 *   REDUCE          "k_main" over the reduction's output elements; any
 *                   split (each call reduces whole output elements in
 *                   interp.h's order and runs the epilogue). Or, the
 *                   same bytes: "k_init" over partial items
 *                   b * out-numel + f (any split: block b of output f),
 *                   then "k_fini" over the output elements (any split:
 *                   each one's partials in block order, then the
 *                   epilogue).
 *   REINDEX_REDUCE  "k_init" over the output (any split), then "k_main"
 *                   over the input space in ONE call (scatters are not
 *                   thread-private), then "k_fini" over the output when
 *                   there is a scratch buffer (any split).
 *
 * Results are exactly those of the reference interpreter (interp.h), bit
 * for bit: element-wise ops come from ops_c.h, index expressions from
 * expr_c.h, random numbers from the same Philox functions, and reductions
 * accumulate as the interpreter does (floats in double, rounded once, in
 * the lanes and blocks interp.h fixes).
 *
 * Source text is made only of kiln's own names and of numbers kiln
 * formats; nothing a client sent is ever part of it (constants are not
 * even in the text: they are params).
 *
 * Threads: pure functions of their arguments; any thread.
 */
#ifndef KILN_JIT_CODEGEN_H
#define KILN_JIT_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fuse.h"
#include "tcc.h"

/* Deepest chain of value lookups one kernel may need (members evaluated
 * through other members). Deeper groups are refused with KILN_ELIMIT and
 * run by the interpreter instead. */
#define JIT_CODEGEN_MAX_DEPTH 256

/* The kernel-cache key of group `gi`: jit_group_signature mixed with the
 * size-derived facts codegen decides by (which slot's shape equals the
 * main space's or the output's, and which slot is the main space). Two
 * groups with one key get the same source text. */
uint64_t jit_kernel_key(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi);

/* Number of params group `gi` takes, and the params themselves (`params`
 * has room for jit_kernel_nparams entries). */
size_t jit_kernel_nparams(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi);
void jit_kernel_params(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                       int64_t *params);

/* Whether the group needs the scratch buffer (out-numel doubles). */
bool jit_kernel_scratch(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi);

/* Appends the C source of group `gi`'s module to `src` (which the caller
 * initialised). Returns KILN_OK; KILN_ELIMIT when the group is deeper than
 * JIT_CODEGEN_MAX_DEPTH; KILN_ENOMEM; KILN_EINTERNAL for a plan codegen
 * does not understand (a bug: callers fall back to the interpreter). */
int jit_codegen_group(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                      struct jit_buf *src);

/* As jit_codegen_group, followed by the device-only helpers that
 * codegen_cuda.c builds its kernels from (REDUCE: kiln_acc, k_id, k_comb,
 * k_pt, k_epi; integer REINDEX_REDUCE: kiln_acc, k_comb, k_scat). The
 * result is CUDA, not C; the module's first part is jit_codegen_group's
 * text unchanged. */
int jit_codegen_group_cuda(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           struct jit_buf *src);

/* Symbols generated code calls besides libm: the random-number functions.
 * Pass them to jit_tcc_compile together with jit_tcc_math_symbols(). */
const struct jit_symbol *jit_codegen_symbols(size_t *n);

/* Appends the text every module of jit_codegen_group starts with: the
 * helpers and prototypes of ops_c.h, expr_c.h and codegen's own, the same
 * for every group. A compiler that puts several modules into one
 * translation unit (the cc tier, cc.h) emits it once and then, for each
 * module, the text that follows it. */
void jit_codegen_prelude(struct jit_buf *src);

/* C text defining every function of jit_codegen_symbols() for a module
 * linked without them (a shared object made by the system compiler): each
 * calls through `void (*kiln__imports[])(void)`, entry k holding symbol
 * k's address, which the text declares extern. The includer defines that
 * array (one per translation unit, after the prelude) and fills it before
 * any kernel runs. Static text. */
const char *jit_codegen_imports_c(void);

#endif
