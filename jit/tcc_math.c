/* tcc_math.c: the libm functions generated kernels may call.
 *
 * Kernels are compiled with -nostdlib and see only the symbols we hand
 * over, so math reaches them through this table instead of <math.h> and
 * dlsym. It lists float and double variants of what the element-wise
 * meta-ops need; add a row when codegen learns a new function. Each
 * address is taken from libm here, in the daemon's own link.
 */
#include <math.h>

#include "tcc.h"

/* clang-format cannot lay out a macro that expands to two initialisers. */
/* clang-format off */
#define JIT_MATH2(fn) {#fn "f", (const void *) fn##f}, {#fn, (const void *) fn}

static const struct jit_symbol jit_tcc_math[] = {
    JIT_MATH2(exp),   JIT_MATH2(expm1), JIT_MATH2(exp2),  JIT_MATH2(log),   JIT_MATH2(log1p),
    JIT_MATH2(log2),  JIT_MATH2(log10), JIT_MATH2(sqrt),  JIT_MATH2(cbrt),  JIT_MATH2(pow),
    JIT_MATH2(sin),   JIT_MATH2(cos),   JIT_MATH2(tan),   JIT_MATH2(asin),  JIT_MATH2(acos),
    JIT_MATH2(atan),  JIT_MATH2(atan2), JIT_MATH2(sinh),  JIT_MATH2(cosh),  JIT_MATH2(tanh),
    JIT_MATH2(asinh), JIT_MATH2(acosh), JIT_MATH2(atanh), JIT_MATH2(erf),   JIT_MATH2(erfc),
    JIT_MATH2(floor), JIT_MATH2(ceil),  JIT_MATH2(round), JIT_MATH2(trunc), JIT_MATH2(rint),
    JIT_MATH2(fabs),  JIT_MATH2(fmod),  JIT_MATH2(fmin),  JIT_MATH2(fmax),  JIT_MATH2(nearbyint),
};
/* clang-format on */

const struct jit_symbol *jit_tcc_math_symbols(size_t *n)
{
    *n = sizeof jit_tcc_math / sizeof jit_tcc_math[0];
    return jit_tcc_math;
}
