/* ops_c.h: the C text of every element-wise op, for generated kernels.
 *
 * Generated kernels never spell an op's semantics inline: they call the
 * helpers of jit_ops_prelude_c(), through jit_ops_render_c(). Those
 * helpers compute exactly what the reference interpreter computes
 * (kernels/interp.h is the spec), bit for bit, on every input, and they
 * never reach C undefined behaviour: integer arithmetic is done in
 * uint64_t, division guards its zero and -1 divisors, shifts check their
 * count, and a float becomes an integer only after NaN, truncation and
 * saturation have been settled. The one thing left to the compiler is
 * implementation-defined (not undefined): converting an out-of-range
 * value to a signed narrower type, which gcc, clang and libtcc all define
 * as truncation modulo 2^width, the interpreter's store rule.
 *
 * Float ops mirror the interpreter's evaluation order as well as its
 * answer: operands are widened to double, computed in double (with the
 * double libm function where there is one: exp, not expf) and rounded
 * once to the node's dtype. So float32 transcendentals, POW, FLOOR_DIV
 * and MOD give the interpreter's bits too, not merely a few-ulp match, as
 * long as kernel and interpreter call the same libm (they do: the daemon
 * hands its own libm over through jit_tcc_math_symbols()). ADD SUB MUL
 * DIV are the exception in form only: they are written in the dtype
 * itself, since rounding a double sum, difference, product or quotient of
 * two float32 values to float32 gives exactly the float32 operation's
 * result (double has more than 2 x 24 + 2 bits), and float arithmetic
 * vectorises twice as wide.
 *
 * Value representation. A value of dtype d is a C expression of d's
 * ctype (ir_dtype_ctype: "uint8_t" for bool, "int8_t", "uint8_t",
 * "int32_t", "int64_t", "float", "double"). A bool argument may be any
 * byte, read as true iff non-zero (so codegen may pass bytes straight
 * from an extern buffer); every bool a helper returns is 0 or 1. A plain
 * copy of a bool (RESHAPE, BROADCAST_TO, REINDEX) is not an op here:
 * codegen canonicalises it with the CAST bool -> bool helper.
 *
 * Helper names, all in the generated module's own namespace:
 *   kiln_<op>_<sfx>(x)          unary op on dtype sfx (NEG .. BITWISE_NOT)
 *   kiln_<op>_<sfx>(a, b)       binary op on operands of dtype sfx
 *   kiln_cast_<from>_<to>(x)    CAST
 *   kiln_truthy_<sfx>(x)        int: 1 iff x is truthy (WHERE's condition)
 *   kiln_where_<sfx>(c, a, b)   c ? a : b for values of dtype sfx
 * where <op> is ir_op_name(op) ("add", "floor_div", "logical_not", ...)
 * and <sfx> is b, i8, u8, i32, i64, f32 or f64. A helper returns its
 * node's ctype (uint8_t for comparisons and logical ops). Names starting
 * "kiln__" are internal to the prelude. jit_expr_prelude_c()'s kiln_div,
 * kiln_mod, kiln_min and kiln_max do not collide with these.
 *
 * Threads: pure functions over static data; any thread.
 */
#ifndef KILN_JIT_OPS_C_H
#define KILN_JIT_OPS_C_H

#include "buf.h"

/* C source defining every helper above: typedefs of int8_t, uint8_t,
 * int32_t, uint32_t, int64_t and uint64_t (generated code has no headers),
 * prototypes of the double libm functions it calls (all in
 * jit_tcc_math_symbols(): exp log sqrt sin cos tan tanh erf floor ceil
 * trunc fmod pow fabs), then `static inline` helpers. Emit it once, first,
 * in a translation unit; if index expressions are rendered too, add
 * jit_expr_prelude_c(0) after it (its typedefs would repeat ours). libtcc
 * generates code only for the helpers a module calls. Static text; never
 * free it. */
const char *jit_ops_prelude_c(void);

/* Appends to `out` a C expression computing one element-wise op:
 *  - unary (NEG .. BITWISE_NOT): args[0]; dtype_in the input's dtype,
 *    dtype_out the node's (bool for LOGICAL_NOT, else dtype_in).
 *  - CAST: args[0]; from dtype_in to dtype_out (any pair).
 *  - binary (ADD .. SHR): args[0], args[1] of dtype_in; dtype_out the
 *    node's (bool for comparisons and LOGICAL_*, else dtype_in).
 *  - WHERE: args[0] the condition, of dtype_in (any dtype); args[1] and
 *    args[2] the values, of dtype_out.
 * Each argument is a side-effect-free C expression of its dtype's ctype,
 * named by codegen; it is pasted once, parenthesised. The result is an
 * expression of dtype_out's ctype.
 *
 * Returns KILN_OK; KILN_EINTERNAL (nothing appended) for an op that is
 * not element-wise, a dtype pair the ir.h constructors would refuse, or a
 * NULL argument — each is a codegen bug; KILN_ENOMEM if `out` is or goes
 * bad. */
int jit_ops_render_c(struct jit_buf *out, int op, int dtype_in, int dtype_out,
                     const char *const *args);

/* The helper-name suffix of a dtype ("b", "i8", ..., "f64"), NULL for an
 * invalid one. */
const char *jit_dtype_suffix(int dt);

#endif
