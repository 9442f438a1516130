/* ops_c.c: element-wise op semantics as C text (see ops_c.h).
 *
 * The prelude is one string literal, assembled at kiln's own compile time
 * from the templates below: each template takes a dtype's suffix and
 * ctype as string literals and pastes them into the helpers of one op
 * family. So what a kernel compiles is plain expanded C (no macros in the
 * generated code), while this file states each rule once.
 *
 * The helpers are two layers. The "kiln__" core holds the interpreter's
 * scalar rules (kernels/interp_scalar.c) line for line, on int64_t /
 * uint64_t and double; the per-dtype helpers widen their operands to that
 * domain exactly as the interpreter's loads do, call the core, and narrow
 * the result as its stores do. Where the interpreter calls a libm
 * function, the core calls the same double function; where it calls one
 * we do not hand to kernels (copysign) or a macro (isnan), the core uses
 * the exact bit-level equivalent.
 *
 * float32 exp, log, tanh, sigmoid and erf are the exception: they are
 * kiln's own functions (kernels/vmath.h, pasted in below as
 * JIT_VMATH_TEXT, the same text the interpreter #includes), computed
 * without libm so that the cc tier can vectorise them. float32 sqrt is
 * sqrtf, which is correctly rounded and so equals sqrt in double rounded
 * to float, the interpreter's rule.
 */
#include "ops_c.h"

#include <stdbool.h>
#include <stddef.h>

#include "ir.h"
#include "kiln_err.h"
#include "vmath_text.h"

/* ---- the prelude ------------------------------------------------------ */

/* clang-format cannot lay out string templates; they are aligned by hand. */
/* clang-format off */

#define TYPES                                                                                 \
    "typedef signed char int8_t;\n"                                                          \
    "typedef unsigned char uint8_t;\n"                                                       \
    "typedef int int32_t;\n"                                                                 \
    "typedef unsigned int uint32_t;\n"                                                       \
    "typedef long long int64_t;\n"                                                           \
    "typedef unsigned long long uint64_t;\n"

/* The double libm functions the helpers call (jit_tcc_math_symbols()). */
#define LIBM                                                                                  \
    "double exp(double); double log(double); double sqrt(double); double sin(double);\n"     \
    "double cos(double); double tan(double); double tanh(double); double erf(double);\n"     \
    "double floor(double); double ceil(double); double trunc(double); double fabs(double);\n" \
    "double fmod(double, double); double pow(double, double); float sqrtf(float);\n"

/* Integer rules on int64_t, results modulo 2^64 (interp_scalar.c). */
#define CORE_INT                                                                              \
    "static inline uint64_t kiln__i_abs(int64_t a)\n"                                        \
    "{ return a < 0 ? 0 - (uint64_t) a : (uint64_t) a; }\n"                                  \
    "static inline uint64_t kiln__i_sign(int64_t a)\n"                                       \
    "{ return (uint64_t) (int64_t) ((a > 0) - (a < 0)); }\n"                                 \
    "static inline uint64_t kiln__i_floor_div(int64_t a, int64_t b)\n"                       \
    "{\n"                                                                                    \
    "    int64_t q;\n"                                                                       \
    "    if (b == 0) return 0;\n"                                                            \
    "    if (b == -1) return 0 - (uint64_t) a;\n"                                            \
    "    q = a / b;\n"                                                                       \
    "    if (a % b != 0 && (a < 0) != (b < 0)) q -= 1;\n"                                    \
    "    return (uint64_t) q;\n"                                                             \
    "}\n"                                                                                    \
    "static inline uint64_t kiln__i_mod(int64_t a, int64_t b)\n"                             \
    "{\n"                                                                                    \
    "    int64_t r;\n"                                                                       \
    "    if (b == 0 || b == -1) return 0;\n"                                                 \
    "    r = a % b;\n"                                                                       \
    "    if (r != 0 && (r < 0) != (b < 0)) r += b;\n"                                        \
    "    return (uint64_t) r;\n"                                                             \
    "}\n"                                                                                    \
    "static inline uint64_t kiln__i_pow(int64_t a, int64_t b)\n"                             \
    "{\n"                                                                                    \
    "    uint64_t r = 1, base = (uint64_t) a, e = (uint64_t) b;\n"                           \
    "    if (b < 0) return a == 1 ? 1 : a == -1 ? ((e & 1) ? ~(uint64_t) 0 : 1) : 0;\n"      \
    "    while (e) { if (e & 1) r *= base; base *= base; e >>= 1; }\n"                       \
    "    return r;\n"                                                                        \
    "}\n"                                                                                    \
    "static inline uint64_t kiln__i_shl(int64_t a, int64_t b, int bits)\n"                   \
    "{ return b >= 0 && b < bits ? (uint64_t) a << b : 0; }\n"                               \
    "static inline uint64_t kiln__i_shr(int64_t a, int64_t b, int bits)\n"                   \
    "{\n"                                                                                    \
    "    if (b >= 0 && b < bits) return a >= 0 ? (uint64_t) a >> b : ~(~(uint64_t) a >> b);\n" \
    "    return a < 0 ? ~(uint64_t) 0 : 0;\n"                                                \
    "}\n"

/* Float rules on double (interp_scalar.c). Bits through a union: the
 * sign of -0.0 and NaN is what copysign and NEG must move. */
#define CORE_FLOAT                                                                            \
    "static inline uint64_t kiln__f_bits(double x)\n"                                        \
    "{ union { double d; uint64_t u; } v; v.d = x; return v.u; }\n"                          \
    "static inline double kiln__f_from_bits(uint64_t u)\n"                                   \
    "{ union { double d; uint64_t u; } v; v.u = u; return v.d; }\n"                          \
    "static inline double kiln__f_copysign(double x, double s)\n"                            \
    "{\n"                                                                                    \
    "    uint64_t m = (uint64_t) 1 << 63;\n"                                                 \
    "    return kiln__f_from_bits((kiln__f_bits(x) & ~m) | (kiln__f_bits(s) & m));\n"        \
    "}\n"                                                                                    \
    "static inline double kiln__f_neg(double x)\n"                                           \
    "{ return kiln__f_from_bits(kiln__f_bits(x) ^ ((uint64_t) 1 << 63)); }\n"                \
    "static inline int kiln__f_isnan(double x) { return x != x; }\n"                         \
    "static inline double kiln__f_sigmoid(double x)\n"                                       \
    "{ return 1.0 / (1.0 + exp(kiln__f_neg(x))); }\n"                                        \
    "static inline double kiln__f_round(double x)\n"                                         \
    "{\n"                                                                                    \
    "    double r = floor(x), d = x - r;\n"                                                  \
    "    if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;\n"                      \
    "    return kiln__f_copysign(r, x);\n"                                                   \
    "}\n"                                                                                    \
    "static inline double kiln__f_sign(double x)\n"                                          \
    "{ return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x; }\n"                            \
    "static inline double kiln__f_floor_div(double a, double b)\n"                           \
    "{\n"                                                                                    \
    "    double m, div, q;\n"                                                                \
    "    if (b == 0) return a / b;\n"                                                        \
    "    m = fmod(a, b);\n"                                                                  \
    "    div = (a - m) / b;\n"                                                               \
    "    if (m != 0 && (b < 0) != (m < 0)) div -= 1.0;\n"                                    \
    "    if (div == 0) return kiln__f_copysign(0.0, a / b);\n"                               \
    "    q = floor(div);\n"                                                                  \
    "    if (div - q > 0.5) q += 1.0;\n"                                                     \
    "    return q;\n"                                                                        \
    "}\n"                                                                                    \
    "static inline double kiln__f_mod(double a, double b)\n"                                 \
    "{\n"                                                                                    \
    "    double m = fmod(a, b);\n"                                                           \
    "    if (b == 0) return m;\n"                                                            \
    "    if (m == 0) return kiln__f_copysign(0.0, b);\n"                                     \
    "    if ((b < 0) != (m < 0)) m += b;\n"                                                  \
    "    return m;\n"                                                                        \
    "}\n"                                                                                    \
    "static inline double kiln__f_maximum(double a, double b)\n"                             \
    "{ return kiln__f_isnan(a) ? a : kiln__f_isnan(b) ? b : a >= b ? a : b; }\n"             \
    "static inline double kiln__f_minimum(double a, double b)\n"                             \
    "{ return kiln__f_isnan(a) ? a : kiln__f_isnan(b) ? b : a <= b ? a : b; }\n"             \
    "static inline int64_t kiln__f_to_i(double x, int64_t lo, int64_t hi)\n"                 \
    "{\n"                                                                                    \
    "    double t;\n"                                                                        \
    "    if (kiln__f_isnan(x)) return 0;\n"                                                  \
    "    t = trunc(x);\n"                                                                    \
    "    if (t <= (double) lo) return lo;\n"                                                 \
    "    if (t >= (double) hi) return hi;\n"                                                 \
    "    return (int64_t) t;\n"                                                              \
    "}\n"

/* One helper: "static inline RT kiln_NAME_S(PARAMS) { return BODY; }". */
#define FN(RT, NAME, S, PARAMS, BODY)                                                         \
    "static inline " RT " kiln_" NAME "_" S "(" PARAMS ") { return " BODY "; }\n"
#define P1(T) T " a"
#define P2(T) T " a, " T " b"
#define NARROW(T, E) "(" T ") " E

/* Comparisons, logical ops, WHERE's truthiness: every dtype. A and B are
 * the operands as compared: the bool family reads "(a != 0)". */
#define COMMON(S, T, A, B)                                                                    \
    FN("uint8_t", "eq", S, P2(T), "(uint8_t) (" A " == " B ")")                              \
    FN("uint8_t", "ne", S, P2(T), "(uint8_t) (" A " != " B ")")                              \
    FN("uint8_t", "lt", S, P2(T), "(uint8_t) (" A " < " B ")")                               \
    FN("uint8_t", "le", S, P2(T), "(uint8_t) (" A " <= " B ")")                              \
    FN("uint8_t", "gt", S, P2(T), "(uint8_t) (" A " > " B ")")                               \
    FN("uint8_t", "ge", S, P2(T), "(uint8_t) (" A " >= " B ")")                              \
    FN("uint8_t", "logical_not", S, P1(T), "(uint8_t) !(a != 0)")                           \
    FN("uint8_t", "logical_and", S, P2(T), "(uint8_t) (a != 0 && b != 0)")                  \
    FN("uint8_t", "logical_or", S, P2(T), "(uint8_t) (a != 0 || b != 0)")                   \
    FN("uint8_t", "logical_xor", S, P2(T), "(uint8_t) ((a != 0) != (b != 0))")              \
    FN("int", "truthy", S, P1(T), "a != 0")

/* Integers: widened to int64_t (sign- or zero-extended, as the loads),
 * computed modulo 2^64, truncated to T. BITS is the width for shifts. */
#define INT_OPS(S, T, BITS)                                                                   \
    COMMON(S, T, "a", "b")                                                                   \
    FN(T, "neg", S, P1(T), NARROW(T, "(0 - (uint64_t) a)"))                                  \
    FN(T, "abs", S, P1(T), NARROW(T, "kiln__i_abs(a)"))                                      \
    FN(T, "sign", S, P1(T), NARROW(T, "kiln__i_sign(a)"))                                    \
    FN(T, "bitwise_not", S, P1(T), NARROW(T, "~(uint64_t) a"))                               \
    FN(T, "add", S, P2(T), NARROW(T, "((uint64_t) a + (uint64_t) b)"))                       \
    FN(T, "sub", S, P2(T), NARROW(T, "((uint64_t) a - (uint64_t) b)"))                       \
    FN(T, "mul", S, P2(T), NARROW(T, "((uint64_t) a * (uint64_t) b)"))                       \
    FN(T, "floor_div", S, P2(T), NARROW(T, "kiln__i_floor_div(a, b)"))                       \
    FN(T, "mod", S, P2(T), NARROW(T, "kiln__i_mod(a, b)"))                                   \
    FN(T, "pow", S, P2(T), NARROW(T, "kiln__i_pow(a, b)"))                                   \
    FN(T, "maximum", S, P2(T), "a >= b ? a : b")                                             \
    FN(T, "minimum", S, P2(T), "a <= b ? a : b")                                             \
    FN(T, "bitwise_and", S, P2(T), NARROW(T, "((uint64_t) a & (uint64_t) b)"))               \
    FN(T, "bitwise_or", S, P2(T), NARROW(T, "((uint64_t) a | (uint64_t) b)"))                \
    FN(T, "bitwise_xor", S, P2(T), NARROW(T, "((uint64_t) a ^ (uint64_t) b)"))               \
    FN(T, "shl", S, P2(T), NARROW(T, "kiln__i_shl(a, b, " BITS ")"))                         \
    FN(T, "shr", S, P2(T), NARROW(T, "kiln__i_shr(a, b, " BITS ")"))                         \
    FN(T, "where", S, "int c, " P2(T), "c ? a : b")

/* bool: any non-zero byte is true; results are 0 or 1. */
#define BOOL_OPS                                                                              \
    COMMON("b", "uint8_t", "(a != 0)", "(b != 0)")                                           \
    FN("uint8_t", "bitwise_not", "b", P1("uint8_t"), "(uint8_t) (a == 0)")                   \
    FN("uint8_t", "bitwise_and", "b", P2("uint8_t"), "(uint8_t) ((a != 0) & (b != 0))")      \
    FN("uint8_t", "bitwise_or", "b", P2("uint8_t"), "(uint8_t) ((a != 0) | (b != 0))")       \
    FN("uint8_t", "bitwise_xor", "b", P2("uint8_t"), "(uint8_t) ((a != 0) ^ (b != 0))")      \
    FN("uint8_t", "where", "b", "int c, " P2("uint8_t"), "(uint8_t) (c ? a != 0 : b != 0)")

/* Floats: operands widened to double (the prototypes convert), computed
 * in double, rounded once to T. */
#define FLOAT_OPS(S, T)                                                                       \
    COMMON(S, T, "a", "b")                                                                   \
    FN(T, "neg", S, P1(T), NARROW(T, "kiln__f_neg(a)"))                                      \
    FN(T, "abs", S, P1(T), NARROW(T, "fabs(a)"))                                             \
    FN(T, "rsqrt", S, P1(T), NARROW(T, "(1.0 / sqrt(a))"))                                   \
    FN(T, "sin", S, P1(T), NARROW(T, "sin(a)"))                                              \
    FN(T, "cos", S, P1(T), NARROW(T, "cos(a)"))                                              \
    FN(T, "tan", S, P1(T), NARROW(T, "tan(a)"))                                              \
    FN(T, "floor", S, P1(T), NARROW(T, "floor(a)"))                                          \
    FN(T, "ceil", S, P1(T), NARROW(T, "ceil(a)"))                                            \
    FN(T, "round", S, P1(T), NARROW(T, "kiln__f_round(a)"))                                  \
    FN(T, "sign", S, P1(T), NARROW(T, "kiln__f_sign(a)"))                                    \
    FN(T, "add", S, P2(T), NARROW(T, "(a + b)"))                                     \
    FN(T, "sub", S, P2(T), NARROW(T, "(a - b)"))                                     \
    FN(T, "mul", S, P2(T), NARROW(T, "(a * b)"))                                     \
    FN(T, "div", S, P2(T), NARROW(T, "(a / b)"))                                     \
    FN(T, "floor_div", S, P2(T), NARROW(T, "kiln__f_floor_div(a, b)"))                       \
    FN(T, "mod", S, P2(T), NARROW(T, "kiln__f_mod(a, b)"))                                   \
    FN(T, "pow", S, P2(T), NARROW(T, "pow(a, b)"))                                           \
    FN(T, "maximum", S, P2(T), NARROW(T, "kiln__f_maximum(a, b)"))                           \
    FN(T, "minimum", S, P2(T), NARROW(T, "kiln__f_minimum(a, b)"))                           \
    FN(T, "where", S, "int c, " P2(T), "c ? a : b")

/* float64: libm's double functions. */
#define F64_FUNCS                                                                             \
    FN("double", "exp", "f64", P1("double"), "exp(a)")                                       \
    FN("double", "log", "f64", P1("double"), "log(a)")                                       \
    FN("double", "sqrt", "f64", P1("double"), "sqrt(a)")                                     \
    FN("double", "tanh", "f64", P1("double"), "tanh(a)")                                     \
    FN("double", "sigmoid", "f64", P1("double"), "kiln__f_sigmoid(a)")                       \
    FN("double", "erf", "f64", P1("double"), "erf(a)")

/* float32: kiln's own functions (vmath.h) and sqrtf. */
#define F32_FUNCS                                                                             \
    FN("float", "exp", "f32", P1("float"), "kiln_vm_expf(a)")                                \
    FN("float", "log", "f32", P1("float"), "kiln_vm_logf(a)")                                \
    FN("float", "sqrt", "f32", P1("float"), "sqrtf(a)")                                      \
    FN("float", "tanh", "f32", P1("float"), "kiln_vm_tanhf(a)")                              \
    FN("float", "sigmoid", "f32", P1("float"), "kiln_vm_sigmoidf(a)")                        \
    FN("float", "erf", "f32", P1("float"), "kiln_vm_erff(a)")

/* CAST from an integer or bool; V is the source value as int64_t (bool
 * reads 0 or 1). int64 -> float32 is one rounding, straight from int64. */
#define CASTS_FROM_INT(S, T, V)                                                               \
    FN("uint8_t", "cast", S "_b", P1(T), "(uint8_t) (a != 0)")                               \
    FN("int8_t", "cast", S "_i8", P1(T), "(int8_t) " V)                                      \
    FN("uint8_t", "cast", S "_u8", P1(T), "(uint8_t) " V)                                    \
    FN("int32_t", "cast", S "_i32", P1(T), "(int32_t) " V)                                   \
    FN("int64_t", "cast", S "_i64", P1(T), V)                                                \
    FN("float", "cast", S "_f32", P1(T), "(float) " V)                                       \
    FN("double", "cast", S "_f64", P1(T), "(double) " V)

/* CAST from a float: NaN -> 0, truncated, saturated to the target. */
#define CASTS_FROM_FLOAT(S, T)                                                                \
    FN("uint8_t", "cast", S "_b", P1(T), "(uint8_t) (a != 0)")                               \
    FN("int8_t", "cast", S "_i8", P1(T), "(int8_t) kiln__f_to_i(a, -128, 127)")              \
    FN("uint8_t", "cast", S "_u8", P1(T), "(uint8_t) kiln__f_to_i(a, 0, 255)")               \
    FN("int32_t", "cast", S "_i32", P1(T),                                                   \
       "(int32_t) kiln__f_to_i(a, -2147483647 - 1, 2147483647)")                             \
    FN("int64_t", "cast", S "_i64", P1(T),                                                   \
       "kiln__f_to_i(a, -9223372036854775807LL - 1, 9223372036854775807LL)")                \
    FN("float", "cast", S "_f32", P1(T), "(float) (double) a")                               \
    FN("double", "cast", S "_f64", P1(T), "(double) a")

static const char prelude[] =
    "/* kiln element-wise ops (jit/ops_c.c) */\n"
    TYPES LIBM CORE_INT CORE_FLOAT JIT_VMATH_TEXT
    BOOL_OPS
    INT_OPS("i8", "int8_t", "8")
    INT_OPS("u8", "uint8_t", "8")
    INT_OPS("i32", "int32_t", "32")
    INT_OPS("i64", "int64_t", "64")
    FLOAT_OPS("f32", "float") F32_FUNCS
    FLOAT_OPS("f64", "double") F64_FUNCS
    CASTS_FROM_INT("b", "uint8_t", "(int64_t) (a != 0)")
    CASTS_FROM_INT("i8", "int8_t", "(int64_t) a")
    CASTS_FROM_INT("u8", "uint8_t", "(int64_t) a")
    CASTS_FROM_INT("i32", "int32_t", "(int64_t) a")
    CASTS_FROM_INT("i64", "int64_t", "(int64_t) a")
    CASTS_FROM_FLOAT("f32", "float")
    CASTS_FROM_FLOAT("f64", "double");

/* clang-format on */

const char *jit_ops_prelude_c(void)
{
    return prelude;
}

/* ---- rendering -------------------------------------------------------- */

static const char *const suffix[IR_DTYPE_COUNT] = {
    [IR_DTYPE_BOOL] = "b",      [IR_DTYPE_INT8] = "i8",   [IR_DTYPE_UINT8] = "u8",
    [IR_DTYPE_INT32] = "i32",   [IR_DTYPE_INT64] = "i64", [IR_DTYPE_FLOAT32] = "f32",
    [IR_DTYPE_FLOAT64] = "f64",
};
_Static_assert(IR_DTYPE_COUNT == 8, "a new dtype needs a suffix and prelude helpers");

const char *jit_dtype_suffix(int dt)
{
    return dt > 0 && dt < IR_DTYPE_COUNT ? suffix[dt] : NULL;
}

static int kind(int dt)
{
    return ir_dtype_info((enum ir_dtype) dt)->kind;
}

static bool is_int(int dt)
{
    return kind(dt) == IR_KIND_INT || kind(dt) == IR_KIND_UINT;
}

/* The node dtype an element-wise op gives on operands of dtype `in`
 * (ir.c's rules), or IR_DTYPE_INVALID where a constructor refuses the
 * pair. CAST and WHERE are handled by the caller. */
static int result_dtype(int op, int in)
{
    bool f = kind(in) == IR_KIND_FLOAT, i = is_int(in), b = kind(in) == IR_KIND_BOOL;
    bool ok;
    int out = in;
    switch (op) {
    case IR_OP_EXP:
    case IR_OP_LOG:
    case IR_OP_SQRT:
    case IR_OP_RSQRT:
    case IR_OP_SIN:
    case IR_OP_COS:
    case IR_OP_TAN:
    case IR_OP_TANH:
    case IR_OP_SIGMOID:
    case IR_OP_ERF:
    case IR_OP_FLOOR:
    case IR_OP_CEIL:
    case IR_OP_ROUND:
    case IR_OP_DIV:
        ok = f;
        break;
    case IR_OP_NEG:
    case IR_OP_ABS:
    case IR_OP_SIGN:
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL:
    case IR_OP_MAXIMUM:
    case IR_OP_MINIMUM:
    case IR_OP_POW:
    case IR_OP_FLOOR_DIV:
    case IR_OP_MOD:
        ok = f || i;
        break;
    case IR_OP_BITWISE_NOT:
    case IR_OP_BITWISE_AND:
    case IR_OP_BITWISE_OR:
    case IR_OP_BITWISE_XOR:
        ok = b || i;
        break;
    case IR_OP_SHL:
    case IR_OP_SHR:
        ok = i;
        break;
    case IR_OP_LOGICAL_NOT:
    case IR_OP_EQ:
    case IR_OP_NE:
    case IR_OP_LT:
    case IR_OP_LE:
    case IR_OP_GT:
    case IR_OP_GE:
    case IR_OP_LOGICAL_AND:
    case IR_OP_LOGICAL_OR:
    case IR_OP_LOGICAL_XOR:
        ok = true;
        out = IR_DTYPE_BOOL;
        break;
    default:
        ok = false;
        break;
    }
    return ok ? out : IR_DTYPE_INVALID;
}

/* How many arguments op takes, or 0 if it is not element-wise. */
static int arity(int op)
{
    if (op >= IR_OP_NEG && op <= IR_OP_CAST)
        return 1;
    if (op >= IR_OP_ADD && op <= IR_OP_SHR)
        return 2;
    return op == IR_OP_WHERE ? 3 : 0;
}

static void arg(struct jit_buf *out, const char *sep, const char *a)
{
    jit_buf_add(out, sep);
    jit_buf_add(out, "(");
    jit_buf_add(out, a);
    jit_buf_add(out, ")");
}

int jit_ops_render_c(struct jit_buf *out, int op, int dtype_in, int dtype_out,
                     const char *const *args)
{
    int n = arity(op);
    if (n == 0 || !ir_dtype_valid(dtype_in) || !ir_dtype_valid(dtype_out) || args == NULL)
        return KILN_EINTERNAL;
    if (op != IR_OP_CAST && op != IR_OP_WHERE && result_dtype(op, dtype_in) != dtype_out)
        return KILN_EINTERNAL;
    for (int k = 0; k < n; k++)
        if (args[k] == NULL)
            return KILN_EINTERNAL;
    if (out->bad)
        return KILN_ENOMEM;
    const char *in = suffix[dtype_in], *res = suffix[dtype_out];
    if (op == IR_OP_CAST) {
        jit_buf_addf(out, "kiln_cast_%s_%s", in, res);
        arg(out, "(", args[0]);
    } else if (op == IR_OP_WHERE) {
        jit_buf_addf(out, "kiln_where_%s(kiln_truthy_%s", res, in);
        arg(out, "(", args[0]);
        jit_buf_add(out, ")");
        arg(out, ", ", args[1]);
        arg(out, ", ", args[2]);
    } else {
        jit_buf_addf(out, "kiln_%s_%s", ir_op_name(op), in);
        for (int k = 0; k < n; k++)
            arg(out, k == 0 ? "(" : ", ", args[k]);
    }
    jit_buf_add(out, ")");
    return out->bad ? KILN_ENOMEM : KILN_OK;
}
