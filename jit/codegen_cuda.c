/* codegen_cuda.c: fusion groups as CUDA modules (contract in
 * codegen_cuda.h).
 *
 * Why the C text as it is, rather than a CUDA generator of its own: the
 * C module is what the reference interpreter is tested against, bit for
 * bit, on every op and dtype; compiling that very text for the device
 * keeps one definition of every op, index expression and reduction order
 * instead of two that could drift. The text was written to be valid C++
 * as well (explicit casts from void *, no designated initialisers or
 * compound literals), and NVRTC's -default-device turns its functions,
 * including the libm prototypes of ops_c.h's prelude, into device
 * functions, which CUDA's math library then defines. What CUDA needs
 * beyond it is added at the end: the random-number functions, from
 * kernels/philox.c's own text, and the __global__ entry points.
 */
#include "codegen_cuda.h"

#include <string.h>

#include "codegen.h"
#include "fuse_impl.h"
#include "kiln_err.h"
#include "philox_c_text.h"
#include "philox_h_text.h"

/* philox.h includes <stdint.h> and philox.c <math.h>: NVRTC has neither.
 * The module's prelude already typedefs the integer types (ops_c.h), and
 * CUDA declares the math functions, so these two only add UINT32_C. */
static const char stdint_text[] = "#define UINT32_C(c) c##U\n";
static const char *const header_texts[] = {JIT_PHILOX_H_TEXT, JIT_PHILOX_C_TEXT, stdint_text, ""};
static const char *const header_names[] = {"philox.h", "philox.c", "stdint.h", "math.h"};
_Static_assert(sizeof header_texts == sizeof header_names, "one name per header");

const char *const *jit_codegen_cuda_headers(int *n, const char *const **names)
{
    *n = (int) (sizeof header_names / sizeof header_names[0]);
    *names = header_names;
    return header_texts;
}

/* -default-device: functions without __global__ are device functions.
 * --fmad=false: no contraction into fused multiply-add (the CPU's
 * -ffp-contract=off). Division, square root and subnormals stay IEEE
 * (NVRTC's defaults, stated so that they stay so). Generated code
 * declares what a function might use (codegen.c's fn_head): the
 * unused-variable remarks (177, 550) are noise. */
static const char *const options[] = {
    "--gpu-architecture=" JIT_CUDA_ARCH,
    "--std=c++17",
    "-default-device",
    "--fmad=false",
    "--prec-div=true",
    "--prec-sqrt=true",
    "--ftz=false",
    "-diag-suppress=177,550",
};

const char *const *jit_codegen_cuda_options(int *n)
{
    *n = (int) (sizeof options / sizeof options[0]);
    return options;
}

/* kiln_rand_* of codegen.h's prelude, as codegen.c defines them for the
 * CPU: philox_block, then the dtype's rule. */
static const char random_fns[] =
    "#include \"philox.c\"\n"
    "float kiln_rand_uniform_f32(uint64_t seed, uint64_t ctr)\n"
    "{ uint32_t r[4]; philox_block(seed, ctr, r); return philox_uniform_f32(r); }\n"
    "double kiln_rand_uniform_f64(uint64_t seed, uint64_t ctr)\n"
    "{ uint32_t r[4]; philox_block(seed, ctr, r); return philox_uniform_f64(r); }\n"
    "float kiln_rand_normal_f32(uint64_t seed, uint64_t ctr)\n"
    "{ uint32_t r[4]; philox_block(seed, ctr, r); return philox_normal_f32(r); }\n"
    "double kiln_rand_normal_f64(uint64_t seed, uint64_t ctr)\n"
    "{ uint32_t r[4]; philox_block(seed, ctr, r); return philox_normal_f64(r); }\n";

size_t jit_codegen_cuda_nbufs(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi)
{
    const struct jit_group *G = &p->groups[gi];
    bool extra = G->kind == JIT_GROUP_REDUCE || jit_kernel_scratch(g, p, gi);
    return (size_t) G->ninputs + G->nsinks + (extra ? 1 : 0);
}

/* A __global__ entry `name` calling the module's function `fn`: over
 * [0, n) one element per call, grid-strided, or all of it in one call by
 * one thread (`serial`). */
static void entry(struct jit_buf *src, const char *name, const char *fn, bool serial)
{
    jit_buf_addf(src,
                 "extern \"C\" __global__ void %s(const __grid_constant__ struct kiln_args a, "
                 "int64_t n)\n{\n",
                 name);
    if (serial) {
        jit_buf_add(src, "    if (blockIdx.x == 0 && threadIdx.x == 0)\n");
        jit_buf_addf(src, "        %s((void **) a.b, a.p, 0, n);\n", fn);
    } else {
        jit_buf_add(src, "    const int64_t stride = (int64_t) gridDim.x * blockDim.x;\n");
        jit_buf_add(src, "    for (int64_t f = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; "
                         "f < n; f += stride)\n");
        jit_buf_addf(src, "        %s((void **) a.b, a.p, f, f + 1);\n", fn);
    }
    jit_buf_add(src, "}\n");
}

int jit_codegen_cuda_group(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           struct jit_buf *src)
{
    const struct jit_group *G = &p->groups[gi];
    if (G->kind != JIT_GROUP_ELEMENTWISE && G->kind != JIT_GROUP_REDUCE &&
        G->kind != JIT_GROUP_REINDEX_REDUCE)
        return KILN_EINTERNAL; /* relays are library calls, not modules */
    size_t nbufs = jit_codegen_cuda_nbufs(g, p, gi);
    size_t nparams = jit_kernel_nparams(g, p, gi);
    if (nparams == 0)
        nparams = 1; /* C++ has no empty arrays; the slot is never read */
    if (nbufs + nparams + 1 > JIT_CUDA_ARGS_MAX / 8)
        return KILN_ELIMIT;
    jit_buf_add(src, "/* kiln CUDA module (jit/codegen_cuda.c): codegen.c's C module, then what "
                     "CUDA needs */\n");
    int rc = jit_codegen_group(g, p, gi, src);
    if (rc != KILN_OK)
        return rc;
    jit_buf_add(src, random_fns);
    jit_buf_addf(src, "struct kiln_args { void *b[%zu]; int64_t p[%zu]; };\n", nbufs, nparams);
    switch (G->kind) {
    case JIT_GROUP_ELEMENTWISE:
        entry(src, "kiln_main", "k_main", false);
        break;
    case JIT_GROUP_REDUCE:
        entry(src, "kiln_main", "k_main", false);
        entry(src, "kiln_init", "k_init", false);
        entry(src, "kiln_fini", "k_fini", false);
        break;
    default:
        entry(src, "kiln_init", "k_init", false);
        entry(src, "kiln_main", "k_main", true);
        if (jit_kernel_scratch(g, p, gi))
            entry(src, "kiln_fini", "k_fini", false);
        break;
    }
    return src->bad ? KILN_ENOMEM : KILN_OK;
}
