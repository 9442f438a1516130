/* interp.h: the reference interpreter — the naive, obviously correct
 * evaluator of an IR graph, and the written semantics of every op.
 *
 * Every backend (libtcc, the gcc tier, CUDA) is tested against this
 * interpreter on random data, so this header is the spec codegen follows.
 * The rules match numpy wherever numpy defines an answer, and are total
 * everywhere: any valid graph (ir.h's constructors guarantee validity) on
 * any data, NaNs, infinities, garbage bool bytes and extreme integers
 * included, has one defined result and never reaches C undefined behaviour.
 *
 * Representation. A buffer holds numel elements of the node's dtype,
 * row-major, native byte order. A bool element read from any buffer (ARRAY
 * data, an extern) is true iff its byte is non-zero; every bool the
 * interpreter writes is 0 or 1, copies (RESHAPE, BROADCAST_TO, REINDEX,
 * WHERE, ARRAY, EXTERN) included. "Truthy" below means: a bool byte or an
 * integer that is non-zero, or a float that is not == 0 (so NaN is true).
 *
 * Integers (int8, uint8, int32, int64) are read exactly (sign- or
 * zero-extended to 64 bits), computed on 64 bits with two's-complement
 * wrapping (in uint64_t, never signed overflow) and truncated to the
 * dtype's width on store: every integer op is modulo 2^width, as numpy's.
 *
 * Floats. Each float op reads its operands as double, computes in double
 * (libm for functions) and rounds the result once to the node's dtype
 * (round to nearest even; float32 overflow gives +-inf as IEEE 754). For
 * float32 this equals float32 arithmetic bit for bit for ADD SUB MUL DIV
 * SQRT and for every exact op (NEG ABS FLOOR CEIL ROUND SIGN MAXIMUM
 * MINIMUM, comparisons, CAST); for the transcendental ops, POW, FLOOR_DIV
 * and MOD it is at least as accurate as float32 libm, and backends are
 * compared with a tolerance of a few ulps there. NaN results are "a NaN":
 * payload and sign are not specified. Float exceptions are not reported.
 *
 * Sources
 *   ARRAY    the attribute's bytes.  CONST  attr.scalar: .i for bool and
 *            integers (truncated to the width; the constructor checks it
 *            fits), .f for floats (rounded to the dtype).
 *   INDEX    element = its coordinate along attr.index.dim (the
 *            constructor checks that int32 holds every coordinate).
 *   RANDOM   Philox4x32-10, element k from counter attr.random.offset + k
 *            under key attr.random.seed; the exact word-to-number rules are
 *            in philox.h (UNIFORM in [0, 1), NORMAL by Box-Muller).
 *   EXTERN   externs[attr.ext.slot], numel elements of the node's dtype.
 *   RESHAPE  the input's elements in row-major order (copied).
 *
 * Unary element-wise (x an element of the input, result in the node dtype)
 *   NEG      -x; integers wrap (-INT8_MIN == INT8_MIN; -uint8 1 == 255).
 *   ABS      |x|; integers wrap (abs(INT_MIN) == INT_MIN); uint identity;
 *            float fabs (clears the sign of -0.0 and of NaN).
 *   EXP LOG SQRT SIN COS TAN TANH ERF   libm's exp log sqrt sin cos tan
 *            tanh erf (log of a negative is NaN, log 0 is -inf).
 *   RSQRT    1 / sqrt(x) (0 -> +inf, -0 -> -inf, negative -> NaN).
 *   SIGMOID  1 / (1 + exp(-x)) (-> 0 for large negative x, never NaN but
 *            for NaN x).
 *   FLOOR CEIL   floor, ceil.
 *   ROUND    to the nearest integer, halves to even (numpy's rint):
 *            0.5 -> 0, 1.5 -> 2, -2.5 -> -2, -0.4 -> -0.0; inf, NaN kept.
 *   SIGN     -1, 0 or 1 (ints: 0 or 1 for uint8); float: x > 0 -> 1,
 *            x < 0 -> -1, +-0.0 -> +0.0, NaN -> NaN (numpy's np.sign).
 *   LOGICAL_NOT  bool: 1 iff x is not truthy (so NOT NaN is 0).
 *   BITWISE_NOT  integers ~x; bool: logical not (numpy's ~ on bool).
 *   CAST     to the node's dtype:
 *            - bool -> any: 0 or 1. any -> bool: 1 iff truthy (NaN -> 1).
 *            - int -> int: truncation to the width (wraps, as numpy).
 *            - int -> float: the nearest float (one rounding, also for
 *              int64 -> float32).
 *            - float -> int: NaN -> 0; otherwise truncated toward zero and
 *              saturated to [min, max] of the target (so +inf -> max,
 *              -inf -> min, 300.0 -> uint8 255, -1.5 -> uint8 0). numpy
 *              leaves out-of-range casts undefined; C makes them UB.
 *            - float -> float: rounded to nearest (float32 overflow -> inf).
 *
 * Binary element-wise (a from input 0, b from input 1, same dtype)
 *   ADD SUB MUL   integers wrap; floats IEEE.
 *   DIV      floats only: IEEE a / b (x / 0 is +-inf, 0 / 0 is NaN).
 *   FLOOR_DIV  Python's a // b, rounding toward -inf.
 *            integers: b == 0 -> 0 (numpy's result); INT_MIN // -1 wraps to
 *            INT_MIN (for int8, int32 and int64 alike).
 *            floats: numpy's npy_floor_divide: b == 0 -> a / b (+-inf or
 *            NaN); otherwise q = (a - fmod(a, b)) / b, minus 1 when
 *            fmod(a, b) is non-zero with a sign differing from b's, then
 *            snapped to the nearest integer (floor(q), +1 if q - floor(q)
 *            > 0.5); a zero quotient takes the sign of a / b. So 7 // -2
 *            == -4, -7.5 // 2 == -4, 5 // inf == 0, -5 // inf == -1.
 *   MOD      Python's a % b: the result has the sign of b (or is 0).
 *            integers: a - (a // b) * b with the rule above; b == 0 -> 0;
 *            INT_MIN % -1 -> 0.
 *            floats: numpy's npy_remainder: b == 0 -> NaN (fmod); else
 *            r = fmod(a, b), plus b when r != 0 and its sign differs from
 *            b's; r == 0 -> +0.0 or -0.0 with b's sign. So -1 % 3 == 2,
 *            1 % -3 == -2, -5 % inf == inf, 5 % -inf == -inf, inf % b NaN.
 *   POW      floats: libm pow (pow(x, 0) == 1, even for NaN x).
 *            integers: a^b by repeated multiplication, wrapping; a^0 == 1
 *            (0^0 too). A negative exponent (numpy raises) gives 0, except
 *            base 1 -> 1 and base -1 -> 1 for an even, -1 for an odd b.
 *   MAXIMUM MINIMUM  the larger / smaller; floats propagate NaN (if a is
 *            NaN the result is a, else if b is NaN it is b, as np.maximum);
 *            ties, including -0.0 vs +0.0, give a.
 *   EQ NE LT LE GT GE  bool; exact comparison in the input dtype; with a
 *            NaN operand all are 0 except NE, which is 1.
 *   LOGICAL_AND OR XOR  bool, of truthy(a) and truthy(b).
 *   BITWISE_AND OR XOR  integers bit by bit; bool as logical ops.
 *   SHL      a << b, integers. b < 0 or b >= the width (8, 32, 64) -> 0.
 *   SHR      a >> b, arithmetic for signed dtypes (sign copies in),
 *            logical for uint8. b < 0 or b >= the width: 0, or -1 when a
 *            is negative (all bits shifted out; numpy's npy_rshift, which
 *            also treats a negative count as too large).
 *
 * WHERE      truthy(cond) ? a : b, element by element (a copy).
 *
 * BROADCAST_TO  output dims whose bit is set in attr.broadcast.dims are
 *            new; the remaining output dims, in order, correspond to the
 *            input's dims, and an input dim of size 1 is stretched:
 *            y[i] = x[j] where j lists the coordinates of the non-new dims
 *            with a 0 for each stretched dim.
 *
 * REDUCE     attr.reduce.dims marks the input dims reduced; with keepdims
 *            they stay as size 1, else they are dropped. Each output
 *            element combines its n input elements, numbered j = 0..n-1
 *            in row-major order of the reduced dims, in this order (the
 *            same bytes on every backend for any number of threads):
 *            ADD MUL MEAN on floats, in double: cut into blocks of
 *                 IR_REDUCE_BLOCK consecutive j (the last may be
 *                 shorter); in a block, element j goes to lane
 *                 j % IR_REDUCE_LANES, each lane starting at the identity
 *                 (0.0, or 1.0 for MUL) and combining its elements in
 *                 increasing j; the lanes fold by halves (lane l op=
 *                 lane l + w for l < w, w = 8, 4, 2, 1) and lane 0 is the
 *                 block's value; the result starts at the identity and
 *                 combines the block values in block order, rounded once
 *                 to the dtype at the end (MEAN: divided by n first).
 *            ADD MUL on integers: wrap (exact in any order).
 *            MAX MIN  in increasing j; exact; floats propagate NaN (any
 *                 NaN -> NaN, the first one's payload); on a tie the
 *                 earlier element stays (so -0.0 vs +0.0 keeps the first
 *                 seen). Reducing blocks apart and combining their
 *                 results in block order by the same rule gives the same
 *                 value, which is what lets a backend split them.
 *            MEAN floats only.
 *            No elements (a reduced dim of size 0): ADD 0, MUL 1, MAX the
 *            dtype's min (-inf for floats), MIN its max (+inf), MEAN NaN.
 *            (numpy raises for max/min of nothing; these are identities.)
 *            dims == 0 is a copy.
 *
 * REINDEX    as struct ir_reindex (ir.h) documents. For each output
 *            element (loop indices i0.. = its coordinates), with the scope
 *            xshape/xstride = input x, yshape/ystride = the output:
 *            c[d] = exprs[d] (ir_expr_eval, expr.h's total semantics); if
 *            any c[d] is outside [0, xshape[d]) or any cond != 0 the
 *            element is attr overflow (.i truncated for integers, != 0 for
 *            bool, .f rounded for floats), else x[c].
 * REINDEX_REDUCE  the output starts at the identity of op (as REDUCE's
 *            empty case); for each input element in row-major order (loop
 *            indices = its coordinates; same xshape/yshape scope), c[d] =
 *            exprs[d]; if every c[d] is in [0, yshape[d]) and every cond is
 *            0, the element is combined into y[c] (as REDUCE: integers wrap,
 *            float ADD/MUL accumulate in double and are rounded once at the
 *            end, NaN propagates through MAX/MIN), else it is dropped.
 * Extras     @e k (k < nextras) reads node input k + 1 at coordinates given
 *            in the extra's own shape; out of range reads 0 (expr.h).
 *            Extras hold integers or bool (the constructor checks), read
 *            as int64: integers exactly, bool 0/1. (Were floats ever
 *            allowed, the interpreter reads them as CAST float -> int64.)
 *
 * Threads: a run reads the graph and the externs and writes only its own
 * buffers: any number of runs may proceed at once on one graph.
 */
#ifndef KILN_INTERP_H
#define KILN_INTERP_H

#include <stddef.h>

#include "ir.h"

/* The fixed order of float reductions (REDUCE below; protocol/PROTOCOL.md
 * "Order of a reduction"): lanes per block, and elements per block. Part
 * of the wire contract: changing either changes results. */
#define IR_REDUCE_LANES 16
#define IR_REDUCE_BLOCK 65536

/* Evaluates every node of `g` in order. externs[k] points to the data of
 * EXTERN slot k (numel elements of that node's dtype, row-major); it may
 * be NULL only when that node has no elements, and `externs` itself may
 * be NULL when g->nextern is 0. On success returns KILN_OK and sets *out
 * to a new array of g->count buffers, buffer i holding node i's value
 * (never NULL, even for zero elements); the caller frees them all with
 * ir_interp_free. On failure returns KILN_ENOMEM (memory, or an
 * allocation size that overflows size_t), fills *err (node: the graph
 * node that failed; the message names its op) and sets *out to NULL; nothing
 * is leaked. No other failure is possible. */
int ir_interp_run(const struct ir_graph *g, const void *const *externs, void ***out,
                  struct ir_error *err);

/* As ir_interp_run, but fails with KILN_ENOMEM before the bytes it holds
 * at once (result buffers and temporary accumulators, not counting the
 * pointer array) would exceed max_bytes. A quota for callers, and the
 * way tests reach every allocation failure. */
int ir_interp_run_quota(const struct ir_graph *g, const void *const *externs, size_t max_bytes,
                        void ***out, struct ir_error *err);

/* Frees what a successful run returned; out may be NULL. */
void ir_interp_free(const struct ir_graph *g, void **out);

#endif
