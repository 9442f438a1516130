/* interp_scalar.c: the reference interpreter's element rules — loading
 * and storing elements of every dtype, and the scalar semantics of every
 * element-wise op (see interp.h for the specification). Split from
 * interp.c, which walks the graph; both are internal to the interpreter
 * and share interp_impl.h. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "interp_impl.h"
#include "vmath.h"

/* ---- dtypes, loads and stores ---------------------------------------- */

bool ir_interp_dt_is_float(int dt)
{
    return ir_dtype_info((enum ir_dtype) dt)->kind == IR_KIND_FLOAT;
}

size_t ir_interp_dt_size(int dt)
{
    return ir_dtype_size((enum ir_dtype) dt);
}

/* Bits of an integer dtype (8, 32, 64). */
static int dt_bits(int dt)
{
    return 8 * (int) ir_interp_dt_size(dt);
}

double ir_interp_load_float(const void *buf, int dt, int64_t k)
{
    const unsigned char *p = (const unsigned char *) buf + (size_t) k * ir_interp_dt_size(dt);
    if (dt == IR_DTYPE_FLOAT32) {
        float f;
        memcpy(&f, p, sizeof f);
        return f;
    }
    double d;
    memcpy(&d, p, sizeof d);
    return d;
}

/* CAST float -> integer: NaN 0, truncated toward zero, saturated. The
 * bounds are powers of two (or 2^k - 1, which rounds up to 2^k for int64),
 * so the comparisons are exact and the final conversion is in range. */
int64_t ir_interp_float_to_int(double x, int dt)
{
    int64_t lo, hi;
    ir_dtype_int_range((enum ir_dtype) dt, &lo, &hi);
    if (isnan(x))
        return 0;
    double t = trunc(x);
    if (t <= (double) lo)
        return lo;
    if (t >= (double) hi)
        return hi;
    return (int64_t) t;
}

/* An element as int64: integers exactly, bool 0/1, floats as CAST. */
int64_t ir_interp_load_int(const void *buf, int dt, int64_t k)
{
    const unsigned char *p = (const unsigned char *) buf + (size_t) k * ir_interp_dt_size(dt);
    switch (dt) {
    case IR_DTYPE_BOOL:
        return p[0] != 0;
    case IR_DTYPE_INT8: {
        int8_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case IR_DTYPE_UINT8:
        return p[0];
    case IR_DTYPE_INT32: {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case IR_DTYPE_INT64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    default:
        return ir_interp_float_to_int(ir_interp_load_float(buf, dt, k), IR_DTYPE_INT64);
    }
}

bool ir_interp_truthy(const void *buf, int dt, int64_t k)
{
    return ir_interp_dt_is_float(dt) ? ir_interp_load_float(buf, dt, k) != 0.0 : ir_interp_load_int(buf, dt, k) != 0;
}

/* Stores v truncated to an integer dtype's width; bool stores v != 0. */
void ir_interp_store_int(void *buf, int dt, int64_t k, uint64_t v)
{
    unsigned char *p = (unsigned char *) buf + (size_t) k * ir_interp_dt_size(dt);
    switch (dt) {
    case IR_DTYPE_BOOL:
        p[0] = v != 0;
        break;
    case IR_DTYPE_INT8:
    case IR_DTYPE_UINT8:
        p[0] = (unsigned char) v;
        break;
    case IR_DTYPE_INT32: {
        uint32_t w = (uint32_t) v;
        memcpy(p, &w, sizeof w);
        break;
    }
    default:
        memcpy(p, &v, sizeof v);
        break;
    }
}

/* Stores v rounded to a float dtype. */
void ir_interp_store_float(void *buf, int dt, int64_t k, double v)
{
    unsigned char *p = (unsigned char *) buf + (size_t) k * ir_interp_dt_size(dt);
    if (dt == IR_DTYPE_FLOAT32) {
        float f = (float) v;
        memcpy(p, &f, sizeof f);
    } else {
        memcpy(p, &v, sizeof v);
    }
}

/* Element j of src to element k of dst, same dtype; bool canonicalised. */
void ir_interp_copy_elem(void *dst, int64_t k, const void *src, int64_t j, int dt)
{
    if (dt == IR_DTYPE_BOOL) {
        ir_interp_store_int(dst, dt, k, (uint64_t) ir_interp_load_int(src, dt, j));
        return;
    }
    size_t s = ir_interp_dt_size(dt);
    memcpy((unsigned char *) dst + (size_t) k * s, (const unsigned char *) src + (size_t) j * s, s);
}

/* A scalar attribute (CONST, overflow) in dtype dt. */
void ir_interp_store_scalar(void *buf, int dt, int64_t k, struct ir_scalar v)
{
    if (ir_interp_dt_is_float(dt))
        ir_interp_store_float(buf, dt, k, v.f);
    else
        ir_interp_store_int(buf, dt, k, (uint64_t) v.i);
}

/* Advances row-major coordinates c within shape by one element. */
void ir_interp_coords_next(int rank, const int64_t *shape, int64_t *c)
{
    for (int d = rank - 1; d >= 0; d--) {
        if (++c[d] < shape[d])
            return;
        c[d] = 0;
    }
}

int64_t ir_interp_dot(int rank, const int64_t *c, const int64_t *stride)
{
    int64_t s = 0;
    for (int d = 0; d < rank; d++)
        s += c[d] * stride[d];
    return s;
}

/* ---- integer scalar rules --------------------------------------------- */

/* a >> s for 0 <= s < 64, arithmetic, without right-shifting a negative. */
static int64_t shr_arith(int64_t a, int64_t s)
{
    return a >= 0 ? a >> s : ~(~a >> s);
}

static uint64_t int_floor_div(int64_t a, int64_t b)
{
    if (b == 0)
        return 0;
    if (b == -1)
        return 0 - (uint64_t) a; /* INT64_MIN // -1 wraps */
    int64_t q = a / b;
    if (a % b != 0 && (a < 0) != (b < 0))
        q -= 1;
    return (uint64_t) q;
}

static uint64_t int_mod(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    int64_t r = a % b;
    if (r != 0 && (r < 0) != (b < 0))
        r += b; /* opposite signs: cannot overflow */
    return (uint64_t) r;
}

static uint64_t int_pow(int64_t a, int64_t b)
{
    if (b < 0) {
        if (a == 1)
            return 1;
        if (a == -1)
            return (b & 1) ? UINT64_MAX : 1;
        return 0;
    }
    uint64_t r = 1, base = (uint64_t) a, e = (uint64_t) b;
    while (e) {
        if (e & 1)
            r *= base;
        base *= base;
        e >>= 1;
    }
    return r;
}

static uint64_t int_shift(int op, int64_t a, int64_t b, int bits)
{
    bool in_range = b >= 0 && b < bits;
    if (op == IR_OP_SHL)
        return in_range ? (uint64_t) a << b : 0;
    if (in_range)
        return (uint64_t) shr_arith(a, b);
    return a < 0 ? UINT64_MAX : 0;
}

uint64_t ir_interp_int_unary(int op, int64_t a, int dt)
{
    switch (op) {
    case IR_OP_NEG:
        return 0 - (uint64_t) a;
    case IR_OP_ABS:
        return a < 0 ? 0 - (uint64_t) a : (uint64_t) a;
    case IR_OP_SIGN:
        return (uint64_t) (int64_t) ((a > 0) - (a < 0));
    case IR_OP_BITWISE_NOT:
        return dt == IR_DTYPE_BOOL ? (uint64_t) (a == 0) : ~(uint64_t) a;
    default:
        return 0; /* unreachable for a valid node */
    }
}

uint64_t ir_interp_int_binary(int op, int64_t a, int64_t b, int dt)
{
    uint64_t ua = (uint64_t) a, ub = (uint64_t) b;
    switch (op) {
    case IR_OP_ADD:
        return ua + ub;
    case IR_OP_SUB:
        return ua - ub;
    case IR_OP_MUL:
        return ua * ub;
    case IR_OP_FLOOR_DIV:
        return int_floor_div(a, b);
    case IR_OP_MOD:
        return int_mod(a, b);
    case IR_OP_POW:
        return int_pow(a, b);
    case IR_OP_MAXIMUM:
        return a >= b ? ua : ub;
    case IR_OP_MINIMUM:
        return a <= b ? ua : ub;
    case IR_OP_BITWISE_AND:
        return ua & ub;
    case IR_OP_BITWISE_OR:
        return ua | ub;
    case IR_OP_BITWISE_XOR:
        return ua ^ ub;
    case IR_OP_SHL:
    case IR_OP_SHR:
        return int_shift(op, a, b, dt_bits(dt));
    default:
        return 0; /* unreachable for a valid node */
    }
}

/* ---- float scalar rules ----------------------------------------------- */

static double round_half_even(double x)
{
    double r = floor(x);
    double d = x - r; /* exact: the fraction of x */
    if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0))
        r += 1.0;
    return copysign(r, x); /* -0.4 -> -0.0, as rint */
}

/* float32 exp, log, tanh, sigmoid and erf are kiln's own functions
 * (vmath.h), the text the JIT tiers compile too; float32 sqrt stays sqrt
 * in double rounded once, which is the correctly rounded sqrtf the JIT
 * calls. x is a float32 value here, so (float) x is exact. */
static bool float32_unary(int op, double x, double *y)
{
    float f = (float) x;
    switch (op) {
    case IR_OP_EXP:
        *y = kiln_vm_expf(f);
        return true;
    case IR_OP_LOG:
        *y = kiln_vm_logf(f);
        return true;
    case IR_OP_TANH:
        *y = kiln_vm_tanhf(f);
        return true;
    case IR_OP_SIGMOID:
        *y = kiln_vm_sigmoidf(f);
        return true;
    case IR_OP_ERF:
        *y = kiln_vm_erff(f);
        return true;
    default:
        return false;
    }
}

double ir_interp_float_unary(int op, int dt, double x)
{
    double y;
    if (dt == IR_DTYPE_FLOAT32 && float32_unary(op, x, &y))
        return y;
    switch (op) {
    case IR_OP_NEG:
        return -x;
    case IR_OP_ABS:
        return fabs(x);
    case IR_OP_EXP:
        return exp(x);
    case IR_OP_LOG:
        return log(x);
    case IR_OP_SQRT:
        return sqrt(x);
    case IR_OP_RSQRT:
        return 1.0 / sqrt(x);
    case IR_OP_SIN:
        return sin(x);
    case IR_OP_COS:
        return cos(x);
    case IR_OP_TAN:
        return tan(x);
    case IR_OP_TANH:
        return tanh(x);
    case IR_OP_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case IR_OP_ERF:
        return erf(x);
    case IR_OP_FLOOR:
        return floor(x);
    case IR_OP_CEIL:
        return ceil(x);
    case IR_OP_ROUND:
        return round_half_even(x);
    case IR_OP_SIGN:
        return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x;
    default:
        return NAN; /* unreachable for a valid node */
    }
}

/* numpy's npy_divmod for b != 0: the Python quotient and remainder. */
static double float_divmod(double a, double b, double *mod)
{
    double m = fmod(a, b);
    double div = (a - m) / b;
    if (m != 0) {
        if ((b < 0) != (m < 0)) {
            m += b;
            div -= 1.0;
        }
    } else {
        m = copysign(0.0, b);
    }
    double q;
    if (div != 0) {
        q = floor(div);
        if (div - q > 0.5)
            q += 1.0;
    } else {
        q = copysign(0.0, a / b);
    }
    *mod = m;
    return q;
}

double ir_interp_float_binary(int op, double a, double b)
{
    double m;
    switch (op) {
    case IR_OP_ADD:
        return a + b;
    case IR_OP_SUB:
        return a - b;
    case IR_OP_MUL:
        return a * b;
    case IR_OP_DIV:
        return a / b;
    case IR_OP_FLOOR_DIV:
        return b == 0 ? a / b : float_divmod(a, b, &m);
    case IR_OP_MOD:
        if (b == 0)
            return fmod(a, b);
        float_divmod(a, b, &m);
        return m;
    case IR_OP_POW:
        return pow(a, b);
    case IR_OP_MAXIMUM:
        return isnan(a) ? a : isnan(b) ? b : a >= b ? a : b;
    case IR_OP_MINIMUM:
        return isnan(a) ? a : isnan(b) ? b : a <= b ? a : b;
    default:
        return NAN; /* unreachable for a valid node */
    }
}

/* Comparisons, in the operands' own domain. */
bool ir_interp_compare(int op, const void *x, const void *y, int dt, int64_t k)
{
    double fa = 0, fb = 0;
    int64_t ia = 0, ib = 0;
    bool f = ir_interp_dt_is_float(dt);
    if (f)
        fa = ir_interp_load_float(x, dt, k), fb = ir_interp_load_float(y, dt, k);
    else
        ia = ir_interp_load_int(x, dt, k), ib = ir_interp_load_int(y, dt, k);
    switch (op) {
    case IR_OP_EQ:
        return f ? fa == fb : ia == ib;
    case IR_OP_NE:
        return f ? fa != fb : ia != ib;
    case IR_OP_LT:
        return f ? fa < fb : ia < ib;
    case IR_OP_LE:
        return f ? fa <= fb : ia <= ib;
    case IR_OP_GT:
        return f ? fa > fb : ia > ib;
    default:
        return f ? fa >= fb : ia >= ib;
    }
}

