/* expr_c.h: render a parsed index expression (kernels/expr.h) as C.
 *
 * This is where the rule "no client byte is ever pasted into source" is
 * kept for index expressions: the output is built from the AST alone, out
 * of integer literals the daemon prints itself, fixed operators, and the
 * names in struct jit_expr_names, which codegen chooses. A client's text
 * never reaches here; only its parsed, validated meaning does.
 *
 * The C produced has exactly the total semantics of ir_expr_eval():
 * arithmetic wraps (done in uint64_t), division and remainder go through
 * the helpers of jit_expr_prelude_c() (x/0 == 0, INT64_MIN/-1 wraps), and
 * extra reads call a function codegen generates per extra input, which
 * returns 0 outside the extra's shape. Every value is int64_t.
 *
 * Threads: pure functions; any thread.
 */
#ifndef KILN_JIT_EXPR_C_H
#define KILN_JIT_EXPR_C_H

#include "buf.h"
#include "expr.h"

/* C names for what an expression may refer to, chosen by codegen. Each is
 * an expression or function name of the generated kernel, e.g. index[0] =
 * "i0", xshape[1] = "xs1", extra_fn[0] = "kx_e0" (called with one int64_t
 * coordinate per dimension, returning int64_t). Entries the expression's
 * scope does not allow may be NULL. */
struct jit_expr_names {
    const char *index[KILN_LIMIT_RANK];
    const char *xshape[KILN_LIMIT_RANK], *xstride[KILN_LIMIT_RANK];
    const char *yshape[KILN_LIMIT_RANK], *ystride[KILN_LIMIT_RANK];
    const char *extra_fn[KILN_LIMIT_EXPR_EXTRAS];
};

/* The C helpers rendered expressions use (typedefs for int64_t/uint64_t
 * when `with_types`, then kiln_div, kiln_mod, kiln_min, kiln_max). Emit it
 * once at the top of a translation unit. Static text. */
const char *jit_expr_prelude_c(int with_types);

/* Append the C expression for `e` to `out`. Returns KILN_OK, KILN_EINTERNAL
 * if the AST names something `names` left NULL (a codegen bug), or
 * KILN_ENOMEM if the buffer went bad. */
int jit_expr_render_c(const struct ir_expr *e, const struct jit_expr_names *names,
                      struct jit_buf *out);

#endif
