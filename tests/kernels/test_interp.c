/* test_interp.c: the reference interpreter against hand-written references.
 *
 * Element-wise ops are checked element by element against scalar formulas
 * written here independently of interp.c (integer wrapping through
 * __int128 arithmetic reduced modulo 2^width, float ops through libm), for
 * every dtype the constructors allow, on random data full of boundary
 * values and on boundary shapes (rank 0, zero-size dims). Every semantic
 * edge case interp.h documents has an explicit case. Reduce, broadcast
 * and reindex are checked against nested loops, and by building conv2d,
 * pooling, a transposed conv and a gather Jittor-style from meta-ops.
 * RANDOM is checked against Random123's known answers and for its
 * statistics. Allocation failure is reached through the quota.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "ir.h"
#include "kiln_err.h"
#include "philox.h"

/* The ENOMEM test asks malloc for terabytes; under ASan that must return
 * NULL instead of aborting. Exported past -fvisibility=hidden so the
 * sanitizer runtime finds it; harmless in other builds. */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
__attribute__((visibility("default"))) const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* Sets of dtypes, as bit masks. */
#define DT_BOOL (1u << IR_DTYPE_BOOL)
#define DT_INTS                                                                                    \
    ((1u << IR_DTYPE_INT8) | (1u << IR_DTYPE_UINT8) | (1u << IR_DTYPE_INT32) |                     \
     (1u << IR_DTYPE_INT64))
#define DT_FLOATS ((1u << IR_DTYPE_FLOAT32) | (1u << IR_DTYPE_FLOAT64))
#define DT_ALL    (DT_BOOL | DT_INTS | DT_FLOATS)

/* ---- a graph under test ------------------------------------------------ */

struct tg {
    struct ir_graph g;
    void **out;
    struct ir_error err;
};

static void tg_init(struct tg *t)
{
    memset(t, 0, sizeof *t);
    ir_graph_init(&t->g);
}

static void tg_fini(struct tg *t)
{
    ir_interp_free(&t->g, t->out);
    ir_graph_fini(&t->g);
}

static int tg_ok(struct tg *t, int id)
{
    ck_assert_msg(id >= 0, "constructor refused: %s: %s", t->err.field, t->err.message);
    return id;
}

static void tg_run(struct tg *t, const void *const *ext)
{
    int rc = ir_interp_run(&t->g, ext, &t->out, &t->err);
    ck_assert_msg(rc == KILN_OK, "run failed: %s", t->err.message);
}

static int64_t numel_of(int rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return n;
}

static int tg_array(struct tg *t, int dt, int rank, const int64_t *shape, const void *data)
{
    size_t bytes = (size_t) numel_of(rank, shape) * ir_dtype_size((enum ir_dtype) dt);
    return tg_ok(t, ir_add_array(&t->g, (enum ir_dtype) dt, rank, shape, data, bytes, &t->err));
}

/* ---- typed access and reference arithmetic ----------------------------- */

static int64_t geti(const void *b, int dt, int64_t k)
{
    switch (dt) {
    case IR_DTYPE_BOOL:
        return ((const uint8_t *) b)[k] != 0;
    case IR_DTYPE_INT8:
        return ((const int8_t *) b)[k];
    case IR_DTYPE_UINT8:
        return ((const uint8_t *) b)[k];
    case IR_DTYPE_INT32:
        return ((const int32_t *) b)[k];
    default:
        return ((const int64_t *) b)[k];
    }
}

static double getf(const void *b, int dt, int64_t k)
{
    return dt == IR_DTYPE_FLOAT32 ? ((const float *) b)[k] : ((const double *) b)[k];
}

static void seti(void *b, int dt, int64_t k, int64_t v)
{
    switch (dt) {
    case IR_DTYPE_BOOL:
        ((uint8_t *) b)[k] = (uint8_t) v;
        break; /* raw byte: may be garbage */
    case IR_DTYPE_INT8:
        ((int8_t *) b)[k] = (int8_t) v;
        break;
    case IR_DTYPE_UINT8:
        ((uint8_t *) b)[k] = (uint8_t) v;
        break;
    case IR_DTYPE_INT32:
        ((int32_t *) b)[k] = (int32_t) v;
        break;
    default:
        ((int64_t *) b)[k] = v;
        break;
    }
}

static void setf(void *b, int dt, int64_t k, double v)
{
    if (dt == IR_DTYPE_FLOAT32)
        ((float *) b)[k] = (float) v;
    else
        ((double *) b)[k] = v;
}

static bool isf(int dt)
{
    return dt == IR_DTYPE_FLOAT32 || dt == IR_DTYPE_FLOAT64;
}

static int bits_of(int dt)
{
    return 8 * (int) ir_dtype_size((enum ir_dtype) dt);
}

static bool is_signed_dt(int dt)
{
    return dt == IR_DTYPE_INT8 || dt == IR_DTYPE_INT32 || dt == IR_DTYPE_INT64;
}

/* v modulo 2^width, as the dtype's value. */
static int64_t wrap(__int128 v, int dt)
{
    if (dt == IR_DTYPE_BOOL)
        return v != 0;
    int bits = bits_of(dt);
    __int128 m = (__int128) 1 << bits;
    __int128 r = v % m;
    if (r < 0)
        r += m;
    if (is_signed_dt(dt) && r >= m / 2)
        r -= m;
    return (int64_t) r;
}

static void int_range(int dt, int64_t *lo, int64_t *hi)
{
    if (dt == IR_DTYPE_BOOL) {
        *lo = 0, *hi = 1;
    } else if (!is_signed_dt(dt)) {
        *lo = 0, *hi = UINT8_MAX;
    } else {
        int bits = bits_of(dt);
        *hi = (int64_t) (((unsigned __int128) 1 << (bits - 1)) - 1);
        *lo = -*hi - 1;
    }
}

/* splitmix64: test data only. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int64_t rnd_range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t) (rnd(s) % (uint64_t) (hi - lo + 1));
}

enum data_kind { DATA_ANY, DATA_SHIFT, DATA_POW, DATA_SMALL };

static int64_t rnd_int(uint64_t *s, int dt, enum data_kind kind)
{
    int64_t lo, hi;
    int_range(dt, &lo, &hi);
    if (dt == IR_DTYPE_BOOL) {
        static const int64_t bytes[] = {0, 1, 0, 1, 2, 255};
        return bytes[rnd(s) % 6]; /* garbage bytes too: non-zero is true */
    }
    if (kind == DATA_SHIFT)
        return wrap(rnd_range(s, -3, bits_of(dt) + 3), dt);
    if (kind == DATA_POW)
        return wrap(rnd_range(s, -3, 70), dt);
    if (kind == DATA_SMALL)
        return wrap(rnd_range(s, -9, 9), dt);
    switch (rnd(s) % 8) {
    case 0:
        return lo;
    case 1:
        return hi;
    case 2:
        return wrap(rnd_range(s, -2, 2), dt);
    case 3:
        return wrap((__int128) lo + 1, dt);
    case 4:
        return wrap(rnd_range(s, -20, 20), dt);
    default:
        return wrap((int64_t) rnd(s), dt);
    }
}

static double rnd_float(uint64_t *s, int dt, enum data_kind kind)
{
    static const double special[] = {NAN,  INFINITY, -INFINITY, 0.0,  -0.0,   0.5,    -0.5, 1.5,
                                     -2.5, 1.0,      -1.0,      3e38, -1e300, 1e-310, 2.0,  7.0};
    if (kind == DATA_SMALL)
        return (double) rnd_range(s, -16, 16) / 4;
    switch (rnd(s) % 4) {
    case 0:
        return special[rnd(s) % 16];
    case 1:
        return (double) rnd_range(s, -400, 400) / 4;
    case 2:
        return ((double) (rnd(s) >> 11) * 0x1p-53 - 0.5) * 20;
    default:
        return ((double) (rnd(s) >> 11) * 0x1p-53 - 0.5) * 1e6;
    }
}

static void *rnd_data(int dt, int64_t n, uint64_t *s, enum data_kind kind)
{
    void *b = malloc((size_t) (n > 0 ? n : 1) * ir_dtype_size((enum ir_dtype) dt));
    ck_assert_ptr_nonnull(b);
    for (int64_t k = 0; k < n; k++) {
        if (isf(dt))
            setf(b, dt, k, rnd_float(s, dt, kind));
        else
            seti(b, dt, k, rnd_int(s, dt, kind));
    }
    return b;
}

/* An expected element: .i for bool and integers, .f for floats; .ulp
 * float32 ulps of slack (kiln's own float32 exp, log, tanh and erf are
 * within 1 ulp of the correctly rounded result, sigmoid within 2:
 * kernels/vmath.h). */
struct want {
    int64_t i;
    double f;
    int ulp;
};

static struct want wi(int64_t i)
{
    return (struct want){.i = i};
}

static struct want wf(double f)
{
    return (struct want){.f = f};
}

static struct want elem(const void *v, int dt, int64_t k)
{
    return isf(dt) ? wf(getf(v, dt, k)) : wi(geti(v, dt, k));
}

/* A float32 as an integer that counts ulps (monotonic over the floats). */
static int64_t f32_ordinal(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? -(int64_t) (u & 0x7fffffffu) : (int64_t) u;
}

/* Exact comparison: equal bits for floats (after rounding the expected
 * double to the dtype; within w.ulp float32 ulps, same sign, where it
 * says so), any NaN for a NaN. */
static void check_elem(const void *out, int dt, int64_t k, struct want w, const char *ctx)
{
    if (isf(dt)) {
        double want = dt == IR_DTYPE_FLOAT32 ? (double) (float) w.f : w.f;
        double got = getf(out, dt, k);
        if (isnan(want))
            ck_assert_msg(isnan(got), "%s [%lld]: got %a, want NaN", ctx, (long long) k, got);
        else if (dt == IR_DTYPE_FLOAT32 && w.ulp > 0)
            ck_assert_msg(!isnan(got) && signbit(got) == signbit(want) &&
                              llabs(f32_ordinal((float) got) - f32_ordinal((float) want)) <= w.ulp,
                          "%s [%lld]: got %a, want %a within %d ulp", ctx, (long long) k, got, want,
                          w.ulp);
        else
            ck_assert_msg(got == want && signbit(got) == signbit(want),
                          "%s [%lld]: got %a, want %a", ctx, (long long) k, got, want);
    } else {
        int64_t got = geti(out, dt, k);
        if (dt == IR_DTYPE_BOOL)
            ck_assert_msg(((const uint8_t *) out)[k] <= 1, "%s [%lld]: bool byte %d", ctx,
                          (long long) k, ((const uint8_t *) out)[k]);
        ck_assert_msg(got == w.i, "%s [%lld]: got %lld, want %lld", ctx, (long long) k,
                      (long long) got, (long long) w.i);
    }
}

/* ---- scalar references ------------------------------------------------- */

static bool truthy(const void *b, int dt, int64_t k)
{
    return isf(dt) ? getf(b, dt, k) != 0 : geti(b, dt, k) != 0;
}

static double ref_round(double x)
{
    return rint(x); /* default rounding mode: to nearest, ties to even */
}

static struct want ref_unary_float(int op, double x)
{
    switch (op) {
    case IR_OP_NEG:
        return wf(-x);
    case IR_OP_ABS:
        return wf(fabs(x));
    case IR_OP_EXP:
        return wf(exp(x));
    case IR_OP_LOG:
        return wf(log(x));
    case IR_OP_SQRT:
        return wf(sqrt(x));
    case IR_OP_RSQRT:
        return wf(1 / sqrt(x));
    case IR_OP_SIN:
        return wf(sin(x));
    case IR_OP_COS:
        return wf(cos(x));
    case IR_OP_TAN:
        return wf(tan(x));
    case IR_OP_TANH:
        return wf(tanh(x));
    case IR_OP_SIGMOID:
        return wf(1 / (1 + exp(-x)));
    case IR_OP_ERF:
        return wf(erf(x));
    case IR_OP_FLOOR:
        return wf(floor(x));
    case IR_OP_CEIL:
        return wf(ceil(x));
    case IR_OP_ROUND:
        return wf(ref_round(x));
    case IR_OP_SIGN:
        return wf(isnan(x) ? x : (double) ((x > 0) - (x < 0)));
    default:
        ck_abort_msg("no reference for op %d", op);
        return wf(0);
    }
}

static struct want ref_unary(int op, int dt, const void *x, int64_t k)
{
    if (op == IR_OP_LOGICAL_NOT)
        return wi(!truthy(x, dt, k));
    if (isf(dt)) {
        struct want w = ref_unary_float(op, getf(x, dt, k));
        bool own = op == IR_OP_EXP || op == IR_OP_LOG || op == IR_OP_TANH || op == IR_OP_SIGMOID ||
                   op == IR_OP_ERF;
        w.ulp = dt == IR_DTYPE_FLOAT32 && own ? (op == IR_OP_SIGMOID ? 2 : 1) : 0;
        return w;
    }
    __int128 a = geti(x, dt, k);
    switch (op) {
    case IR_OP_NEG:
        return wi(wrap(-a, dt));
    case IR_OP_ABS:
        return wi(wrap(a < 0 ? -a : a, dt));
    case IR_OP_SIGN:
        return wi((a > 0) - (a < 0));
    case IR_OP_BITWISE_NOT:
        return wi(dt == IR_DTYPE_BOOL ? a == 0 : wrap(-a - 1, dt));
    default:
        ck_abort_msg("no reference for op %d", op);
        return wi(0);
    }
}

static __int128 floor_div128(__int128 a, __int128 b)
{
    __int128 q = a / b;
    if (q * b != a && (a < 0) != (b < 0))
        q -= 1;
    return q;
}

static int64_t ref_pow_int(__int128 a, int64_t b, int dt)
{
    if (b < 0)
        return a == 1 ? 1 : a == -1 ? ((b % 2) ? -1 : 1) : 0;
    __int128 r = 1;
    for (int64_t e = 0; e < b; e++)
        r = wrap(r * a, IR_DTYPE_INT64);
    return wrap(r, dt);
}

static int64_t ref_shift(int op, __int128 a, __int128 b, int dt)
{
    if (b < 0 || b >= bits_of(dt))
        return op == IR_OP_SHL ? 0 : a < 0 ? -1 : 0;
    __int128 p = (__int128) 1 << (int) b;
    return op == IR_OP_SHL ? wrap(a * p, dt) : wrap(floor_div128(a, p), dt);
}

static struct want ref_binary_int(int op, int dt, __int128 a, __int128 b)
{
    switch (op) {
    case IR_OP_ADD:
        return wi(wrap(a + b, dt));
    case IR_OP_SUB:
        return wi(wrap(a - b, dt));
    case IR_OP_MUL:
        return wi(wrap(a * b, dt));
    case IR_OP_FLOOR_DIV:
        return wi(b == 0 ? 0 : wrap(floor_div128(a, b), dt));
    case IR_OP_MOD:
        return wi(b == 0 ? 0 : wrap(a - floor_div128(a, b) * b, dt));
    case IR_OP_POW:
        return wi(ref_pow_int(a, (int64_t) b, dt));
    case IR_OP_MAXIMUM:
        return wi((int64_t) (a > b ? a : b));
    case IR_OP_MINIMUM:
        return wi((int64_t) (a < b ? a : b));
    case IR_OP_BITWISE_AND:
        return wi(wrap(a & b, dt));
    case IR_OP_BITWISE_OR:
        return wi(wrap(a | b, dt));
    case IR_OP_BITWISE_XOR:
        return wi(wrap(a ^ b, dt));
    case IR_OP_SHL:
    case IR_OP_SHR:
        return wi(ref_shift(op, a, b, dt));
    default:
        ck_abort_msg("no reference for op %d", op);
        return wi(0);
    }
}

/* numpy's npy_divmod, transcribed from numpy/npymath for b != 0. */
static double np_divmod(double a, double b, double *mod)
{
    double m = fmod(a, b), div = (a - m) / b, fd;
    if (m) {
        if (isless(b, 0) != isless(m, 0)) {
            m += b;
            div -= 1.0;
        }
    } else {
        m = copysign(0, b);
    }
    if (div) {
        fd = floor(div);
        if (isgreater(div - fd, 0.5))
            fd += 1.0;
    } else {
        fd = copysign(0, a / b);
    }
    *mod = m;
    return fd;
}

static struct want ref_binary_float(int op, double a, double b)
{
    double m;
    switch (op) {
    case IR_OP_ADD:
        return wf(a + b);
    case IR_OP_SUB:
        return wf(a - b);
    case IR_OP_MUL:
        return wf(a * b);
    case IR_OP_DIV:
        return wf(a / b);
    case IR_OP_FLOOR_DIV:
        return wf(b == 0 ? a / b : np_divmod(a, b, &m));
    case IR_OP_MOD:
        if (b == 0)
            return wf(NAN);
        np_divmod(a, b, &m);
        return wf(m);
    case IR_OP_POW:
        return wf(pow(a, b));
    case IR_OP_MAXIMUM:
        return wf(isnan(a) || isnan(b) ? NAN : (a >= b ? a : b));
    case IR_OP_MINIMUM:
        return wf(isnan(a) || isnan(b) ? NAN : (a <= b ? a : b));
    default:
        ck_abort_msg("no reference for op %d", op);
        return wf(0);
    }
}

static struct want ref_binary(int op, int dt, const void *x, const void *y, int64_t k)
{
    bool f = isf(dt);
    double fa = f ? getf(x, dt, k) : 0, fb = f ? getf(y, dt, k) : 0;
    int64_t ia = f ? 0 : geti(x, dt, k), ib = f ? 0 : geti(y, dt, k);
    bool ta = truthy(x, dt, k), tb = truthy(y, dt, k);
    switch (op) {
    case IR_OP_EQ:
        return wi(f ? fa == fb : ia == ib);
    case IR_OP_NE:
        return wi(f ? fa != fb : ia != ib);
    case IR_OP_LT:
        return wi(f ? fa < fb : ia < ib);
    case IR_OP_LE:
        return wi(f ? fa <= fb : ia <= ib);
    case IR_OP_GT:
        return wi(f ? fa > fb : ia > ib);
    case IR_OP_GE:
        return wi(f ? fa >= fb : ia >= ib);
    case IR_OP_LOGICAL_AND:
        return wi(ta && tb);
    case IR_OP_LOGICAL_OR:
        return wi(ta || tb);
    case IR_OP_LOGICAL_XOR:
        return wi(ta != tb);
    default:
        return f ? ref_binary_float(op, fa, fb) : ref_binary_int(op, dt, ia, ib);
    }
}

static struct want ref_cast(int from, int to, const void *x, int64_t k)
{
    if (!isf(from)) {
        int64_t v = geti(x, from, k);
        if (to == IR_DTYPE_FLOAT32)
            return wf((float) (long double) v); /* long double holds int64 exactly */
        return isf(to) ? wf((double) v) : wi(wrap(v, to));
    }
    double v = getf(x, from, k);
    if (isf(to))
        return wf(v);
    if (to == IR_DTYPE_BOOL)
        return wi(v != 0);
    int64_t lo, hi;
    int_range(to, &lo, &hi);
    if (isnan(v))
        return wi(0);
    if (v >= ldexp(1, is_signed_dt(to) ? bits_of(to) - 1 : bits_of(to)))
        return wi(hi);
    if (v <= (double) lo - (is_signed_dt(to) ? 0 : 1))
        return wi(lo);
    return wi((int64_t) trunc(v));
}

/* ---- element-wise against the references ------------------------------ */

static const struct {
    int rank;
    int64_t shape[3];
} ew_shapes[] = {{0, {0}}, {1, {0}}, {3, {2, 0, 3}}, {1, {1}}, {3, {3, 4, 5}}, {2, {17, 11}}};
#define N_EW_SHAPES (sizeof ew_shapes / sizeof ew_shapes[0])

static const struct {
    int op;
    unsigned dts;
} unary_ops[] = {
    {IR_OP_NEG, DT_INTS | DT_FLOATS}, {IR_OP_ABS, DT_INTS | DT_FLOATS},
    {IR_OP_EXP, DT_FLOATS},           {IR_OP_LOG, DT_FLOATS},
    {IR_OP_SQRT, DT_FLOATS},          {IR_OP_RSQRT, DT_FLOATS},
    {IR_OP_SIN, DT_FLOATS},           {IR_OP_COS, DT_FLOATS},
    {IR_OP_TAN, DT_FLOATS},           {IR_OP_TANH, DT_FLOATS},
    {IR_OP_SIGMOID, DT_FLOATS},       {IR_OP_ERF, DT_FLOATS},
    {IR_OP_FLOOR, DT_FLOATS},         {IR_OP_CEIL, DT_FLOATS},
    {IR_OP_ROUND, DT_FLOATS},         {IR_OP_SIGN, DT_INTS | DT_FLOATS},
    {IR_OP_LOGICAL_NOT, DT_ALL},      {IR_OP_BITWISE_NOT, DT_BOOL | DT_INTS},
};

static const struct {
    int op;
    unsigned dts;
    enum data_kind b_kind; /* how to draw the second operand */
} binary_ops[] = {
    {IR_OP_ADD, DT_INTS | DT_FLOATS, DATA_ANY},
    {IR_OP_SUB, DT_INTS | DT_FLOATS, DATA_ANY},
    {IR_OP_MUL, DT_INTS | DT_FLOATS, DATA_ANY},
    {IR_OP_DIV, DT_FLOATS, DATA_ANY},
    {IR_OP_FLOOR_DIV, DT_INTS | DT_FLOATS, DATA_ANY},
    {IR_OP_MOD, DT_INTS | DT_FLOATS, DATA_ANY},
    {IR_OP_FLOOR_DIV, DT_INTS | DT_FLOATS, DATA_SMALL},
    {IR_OP_MOD, DT_INTS | DT_FLOATS, DATA_SMALL},
    {IR_OP_POW, DT_INTS, DATA_POW},
    {IR_OP_POW, DT_FLOATS, DATA_ANY},
    {IR_OP_POW, DT_FLOATS, DATA_SMALL},
    {IR_OP_MAXIMUM, DT_INTS | DT_FLOATS, DATA_ANY},
    {IR_OP_MINIMUM, DT_INTS | DT_FLOATS, DATA_ANY},
    {IR_OP_EQ, DT_ALL, DATA_ANY},
    {IR_OP_NE, DT_ALL, DATA_ANY},
    {IR_OP_LT, DT_ALL, DATA_ANY},
    {IR_OP_LE, DT_ALL, DATA_ANY},
    {IR_OP_GT, DT_ALL, DATA_ANY},
    {IR_OP_GE, DT_ALL, DATA_ANY},
    {IR_OP_LOGICAL_AND, DT_ALL, DATA_ANY},
    {IR_OP_LOGICAL_OR, DT_ALL, DATA_ANY},
    {IR_OP_LOGICAL_XOR, DT_ALL, DATA_ANY},
    {IR_OP_BITWISE_AND, DT_BOOL | DT_INTS, DATA_ANY},
    {IR_OP_BITWISE_OR, DT_BOOL | DT_INTS, DATA_ANY},
    {IR_OP_BITWISE_XOR, DT_BOOL | DT_INTS, DATA_ANY},
    {IR_OP_SHL, DT_INTS, DATA_SHIFT},
    {IR_OP_SHR, DT_INTS, DATA_SHIFT},
};

START_TEST(unary_all_dtypes)
{
    uint64_t s = 1;
    int cases = 0;
    for (size_t u = 0; u < sizeof unary_ops / sizeof unary_ops[0]; u++) {
        for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
            if (!(unary_ops[u].dts & (1u << dt)))
                continue;
            for (size_t sh = 0; sh < N_EW_SHAPES; sh++) {
                struct tg t;
                tg_init(&t);
                int rank = ew_shapes[sh].rank;
                int64_t n = numel_of(rank, ew_shapes[sh].shape);
                void *x = rnd_data(dt, n, &s, DATA_ANY);
                int a = tg_array(&t, dt, rank, ew_shapes[sh].shape, x);
                int y = tg_ok(&t, ir_add_unary(&t.g, (enum ir_op) unary_ops[u].op, a, &t.err));
                tg_run(&t, NULL);
                char ctx[96];
                snprintf(ctx, sizeof ctx, "%s %s", ir_op_name(unary_ops[u].op),
                         ir_dtype_name((enum ir_dtype) dt));
                for (int64_t k = 0; k < n; k++)
                    check_elem(t.out[y], t.g.nodes[y].dtype, k,
                               ref_unary(unary_ops[u].op, dt, x, k), ctx);
                free(x);
                tg_fini(&t);
                cases++;
            }
        }
    }
    ck_assert_int_gt(cases, 200);
}
END_TEST

START_TEST(binary_all_dtypes)
{
    uint64_t s = 2;
    for (size_t u = 0; u < sizeof binary_ops / sizeof binary_ops[0]; u++) {
        for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
            if (!(binary_ops[u].dts & (1u << dt)))
                continue;
            for (size_t sh = 0; sh < N_EW_SHAPES; sh++) {
                struct tg t;
                tg_init(&t);
                int rank = ew_shapes[sh].rank;
                int64_t n = numel_of(rank, ew_shapes[sh].shape);
                void *x = rnd_data(dt, n, &s, DATA_ANY);
                void *z = rnd_data(dt, n, &s, binary_ops[u].b_kind);
                int a = tg_array(&t, dt, rank, ew_shapes[sh].shape, x);
                int b = tg_array(&t, dt, rank, ew_shapes[sh].shape, z);
                int y = tg_ok(&t, ir_add_binary(&t.g, (enum ir_op) binary_ops[u].op, a, b, &t.err));
                tg_run(&t, NULL);
                char ctx[96];
                snprintf(ctx, sizeof ctx, "%s %s", ir_op_name(binary_ops[u].op),
                         ir_dtype_name((enum ir_dtype) dt));
                for (int64_t k = 0; k < n; k++)
                    check_elem(t.out[y], t.g.nodes[y].dtype, k,
                               ref_binary(binary_ops[u].op, dt, x, z, k), ctx);
                free(x);
                free(z);
                tg_fini(&t);
            }
        }
    }
}
END_TEST

START_TEST(cast_all_pairs)
{
    uint64_t s = 3;
    for (int from = 1; from < IR_DTYPE_COUNT; from++) {
        for (int to = 1; to < IR_DTYPE_COUNT; to++) {
            for (size_t sh = 0; sh < N_EW_SHAPES; sh++) {
                struct tg t;
                tg_init(&t);
                int rank = ew_shapes[sh].rank;
                int64_t n = numel_of(rank, ew_shapes[sh].shape);
                void *x = rnd_data(from, n, &s, DATA_ANY);
                int a = tg_array(&t, from, rank, ew_shapes[sh].shape, x);
                int y = tg_ok(&t, ir_add_cast(&t.g, a, (enum ir_dtype) to, &t.err));
                tg_run(&t, NULL);
                char ctx[64];
                snprintf(ctx, sizeof ctx, "cast %s -> %s", ir_dtype_name((enum ir_dtype) from),
                         ir_dtype_name((enum ir_dtype) to));
                for (int64_t k = 0; k < n; k++)
                    check_elem(t.out[y], to, k, ref_cast(from, to, x, k), ctx);
                free(x);
                tg_fini(&t);
            }
        }
    }
}
END_TEST

START_TEST(where_all_dtypes)
{
    uint64_t s = 4;
    for (int cdt = 1; cdt < IR_DTYPE_COUNT; cdt++) {
        for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
            for (size_t sh = 0; sh < N_EW_SHAPES; sh++) {
                struct tg t;
                tg_init(&t);
                int rank = ew_shapes[sh].rank;
                const int64_t *shape = ew_shapes[sh].shape;
                int64_t n = numel_of(rank, shape);
                void *c = rnd_data(cdt, n, &s, DATA_ANY);
                void *x = rnd_data(dt, n, &s, DATA_ANY);
                void *z = rnd_data(dt, n, &s, DATA_ANY);
                int nc = tg_array(&t, cdt, rank, shape, c);
                int na = tg_array(&t, dt, rank, shape, x);
                int nb = tg_array(&t, dt, rank, shape, z);
                int y = tg_ok(&t, ir_add_where(&t.g, nc, na, nb, &t.err));
                tg_run(&t, NULL);
                for (int64_t k = 0; k < n; k++) {
                    const void *src = truthy(c, cdt, k) ? x : z;
                    check_elem(t.out[y], dt, k, elem(src, dt, k), "where");
                }
                free(c);
                free(x);
                free(z);
                tg_fini(&t);
            }
        }
    }
}
END_TEST

/* ---- semantic edge cases, one scalar at a time ------------------------ */

static struct want run_binary1(int op, int dt, struct want a, struct want b)
{
    struct tg t;
    tg_init(&t);
    int64_t one = 1;
    char xa[8], xb[8];
    if (isf(dt)) {
        setf(xa, dt, 0, a.f);
        setf(xb, dt, 0, b.f);
    } else {
        seti(xa, dt, 0, a.i);
        seti(xb, dt, 0, b.i);
    }
    int na = tg_array(&t, dt, 1, &one, xa), nb = tg_array(&t, dt, 1, &one, xb);
    int y = tg_ok(&t, ir_add_binary(&t.g, (enum ir_op) op, na, nb, &t.err));
    tg_run(&t, NULL);
    int ydt = t.g.nodes[y].dtype;
    struct want r = isf(ydt) ? wf(getf(t.out[y], ydt, 0)) : wi(geti(t.out[y], ydt, 0));
    tg_fini(&t);
    return r;
}

static struct want run_unary1(int op, int dt, int to, struct want a)
{
    struct tg t;
    tg_init(&t);
    int64_t one = 1;
    char xa[8];
    if (isf(dt))
        setf(xa, dt, 0, a.f);
    else
        seti(xa, dt, 0, a.i);
    int na = tg_array(&t, dt, 1, &one, xa);
    int y = op == IR_OP_CAST ? ir_add_cast(&t.g, na, (enum ir_dtype) to, &t.err)
                             : ir_add_unary(&t.g, (enum ir_op) op, na, &t.err);
    tg_ok(&t, y);
    tg_run(&t, NULL);
    int ydt = t.g.nodes[y].dtype;
    struct want r = isf(ydt) ? wf(getf(t.out[y], ydt, 0)) : wi(geti(t.out[y], ydt, 0));
    tg_fini(&t);
    return r;
}

static void expect_i(struct want got, int64_t want, const char *what)
{
    ck_assert_msg(got.i == want, "%s: got %lld, want %lld", what, (long long) got.i,
                  (long long) want);
}

static void expect_f(struct want got, double want, const char *what)
{
    if (isnan(want))
        ck_assert_msg(isnan(got.f), "%s: got %a, want NaN", what, got.f);
    else
        ck_assert_msg(got.f == want && signbit(got.f) == signbit(want), "%s: got %a, want %a", what,
                      got.f, want);
}

START_TEST(edge_integer_wrap)
{
    expect_i(run_binary1(IR_OP_ADD, IR_DTYPE_INT8, wi(127), wi(1)), -128, "int8 127+1");
    expect_i(run_binary1(IR_OP_ADD, IR_DTYPE_UINT8, wi(255), wi(1)), 0, "uint8 255+1");
    expect_i(run_binary1(IR_OP_SUB, IR_DTYPE_UINT8, wi(0), wi(1)), 255, "uint8 0-1");
    expect_i(run_binary1(IR_OP_ADD, IR_DTYPE_INT64, wi(INT64_MAX), wi(1)), INT64_MIN,
             "int64 max+1");
    expect_i(run_binary1(IR_OP_MUL, IR_DTYPE_INT32, wi(65536), wi(65536)), 0, "int32 2^32");
    expect_i(run_binary1(IR_OP_MUL, IR_DTYPE_INT64, wi(INT64_MIN), wi(-1)), INT64_MIN,
             "int64 min*-1");
    expect_i(run_unary1(IR_OP_NEG, IR_DTYPE_INT8, 0, wi(-128)), -128, "-int8 min");
    expect_i(run_unary1(IR_OP_NEG, IR_DTYPE_UINT8, 0, wi(1)), 255, "-uint8 1");
    expect_i(run_unary1(IR_OP_ABS, IR_DTYPE_INT64, 0, wi(INT64_MIN)), INT64_MIN, "abs int64 min");
    expect_i(run_unary1(IR_OP_ABS, IR_DTYPE_INT32, 0, wi(-5)), 5, "abs -5");
    expect_i(run_unary1(IR_OP_SIGN, IR_DTYPE_UINT8, 0, wi(200)), 1, "sign uint8 200");
    expect_i(run_unary1(IR_OP_SIGN, IR_DTYPE_INT8, 0, wi(-3)), -1, "sign -3");
    expect_i(run_unary1(IR_OP_BITWISE_NOT, IR_DTYPE_INT8, 0, wi(0)), -1, "~0");
    expect_i(run_unary1(IR_OP_BITWISE_NOT, IR_DTYPE_UINT8, 0, wi(0)), 255, "~uint8 0");
    expect_i(run_unary1(IR_OP_BITWISE_NOT, IR_DTYPE_BOOL, 0, wi(1)), 0, "~True");
    expect_i(run_unary1(IR_OP_BITWISE_NOT, IR_DTYPE_BOOL, 0, wi(0)), 1, "~False");
}
END_TEST

START_TEST(edge_floor_div_mod_int)
{
    static const struct {
        int64_t a, b, q, r;
    } c[] = {
        {7, 2, 3, 1},   {-7, 2, -4, 1}, {7, -2, -4, -1}, {-7, -2, 3, -1}, {6, 3, 2, 0},
        {-6, 3, -2, 0}, {0, 5, 0, 0},   {7, 0, 0, 0},    {-7, 0, 0, 0},   {0, 0, 0, 0},
        {1, -1, -1, 0}, {-1, 3, -1, 2}, {1, -3, -1, -2},
    };
    const int dts[] = {IR_DTYPE_INT8, IR_DTYPE_INT32, IR_DTYPE_INT64};
    for (size_t d = 0; d < 3; d++) {
        for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
            char what[64];
            snprintf(what, sizeof what, "%s %lld // %lld", ir_dtype_name((enum ir_dtype) dts[d]),
                     (long long) c[k].a, (long long) c[k].b);
            expect_i(run_binary1(IR_OP_FLOOR_DIV, dts[d], wi(c[k].a), wi(c[k].b)), c[k].q, what);
            expect_i(run_binary1(IR_OP_MOD, dts[d], wi(c[k].a), wi(c[k].b)), c[k].r, what);
        }
    }
    /* INT_MIN // -1 wraps; INT_MIN % -1 is 0. */
    expect_i(run_binary1(IR_OP_FLOOR_DIV, IR_DTYPE_INT8, wi(-128), wi(-1)), -128, "int8 min//-1");
    expect_i(run_binary1(IR_OP_FLOOR_DIV, IR_DTYPE_INT32, wi(INT32_MIN), wi(-1)), INT32_MIN,
             "int32 min//-1");
    expect_i(run_binary1(IR_OP_FLOOR_DIV, IR_DTYPE_INT64, wi(INT64_MIN), wi(-1)), INT64_MIN,
             "int64 min//-1");
    expect_i(run_binary1(IR_OP_MOD, IR_DTYPE_INT64, wi(INT64_MIN), wi(-1)), 0, "int64 min%-1");
    expect_i(run_binary1(IR_OP_MOD, IR_DTYPE_INT64, wi(INT64_MIN), wi(INT64_MAX)), INT64_MAX - 1,
             "int64 min % max");
    expect_i(run_binary1(IR_OP_FLOOR_DIV, IR_DTYPE_UINT8, wi(200), wi(7)), 28, "uint8 200//7");
    expect_i(run_binary1(IR_OP_MOD, IR_DTYPE_UINT8, wi(200), wi(7)), 4, "uint8 200%7");
    expect_i(run_binary1(IR_OP_MOD, IR_DTYPE_UINT8, wi(200), wi(0)), 0, "uint8 200%0");
}
END_TEST

START_TEST(edge_floor_div_mod_float)
{
    static const struct {
        double a, b, q, r;
    } c[] = {
        {7, 2, 3, 1},
        {-7, 2, -4, 1},
        {7, -2, -4, -1},
        {-7, -2, 3, -1},
        {7.5, 2, 3, 1.5},
        {-7.5, 2, -4, 0.5},
        {1, 0, INFINITY, NAN},
        {-1, 0, -INFINITY, NAN},
        {0, 0, NAN, NAN},
        {5, INFINITY, 0, 5},
        {-5, INFINITY, -1, INFINITY},
        {5, -INFINITY, -1, -INFINITY},
        {INFINITY, 2, NAN, NAN},
        {NAN, 2, NAN, NAN},
        {0.0, 5, 0.0, 0.0},
        {-0.0, 5, -0.0, 0.0},
        {0.0, -5, -0.0, -0.0},
        {6, 3, 2, 0},
        {-6, 3, -2, 0},
        {6, -3, -2, -0.0},
    };
    const int dts[] = {IR_DTYPE_FLOAT32, IR_DTYPE_FLOAT64};
    for (size_t d = 0; d < 2; d++) {
        for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
            char what[96];
            snprintf(what, sizeof what, "%s %g // %g", ir_dtype_name((enum ir_dtype) dts[d]),
                     c[k].a, c[k].b);
            expect_f(run_binary1(IR_OP_FLOOR_DIV, dts[d], wf(c[k].a), wf(c[k].b)), c[k].q, what);
            snprintf(what, sizeof what, "%s %g %% %g", ir_dtype_name((enum ir_dtype) dts[d]),
                     c[k].a, c[k].b);
            expect_f(run_binary1(IR_OP_MOD, dts[d], wf(c[k].a), wf(c[k].b)), c[k].r, what);
        }
    }
    expect_f(run_binary1(IR_OP_DIV, IR_DTYPE_FLOAT64, wf(1), wf(-0.0)), -INFINITY, "1/-0");
    expect_f(run_binary1(IR_OP_DIV, IR_DTYPE_FLOAT32, wf(0), wf(0)), NAN, "0/0");
}
END_TEST

START_TEST(edge_pow)
{
    static const struct {
        int64_t a, b, want;
    } c[] = {
        {2, 10, 1024}, {0, 0, 1},  {5, 0, 1},          {0, 3, 0},    {-2, 3, -8},
        {2, -1, 0},    {0, -1, 0}, {1, -5, 1},         {-1, -5, -1}, {-1, -4, 1},
        {-1, 7, -1},   {3, -2, 0}, {2, 63, INT64_MIN}, {2, 64, 0},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        char what[64];
        snprintf(what, sizeof what, "%lld ** %lld", (long long) c[k].a, (long long) c[k].b);
        expect_i(run_binary1(IR_OP_POW, IR_DTYPE_INT64, wi(c[k].a), wi(c[k].b)), c[k].want, what);
    }
    /* 3^40 = 12157665459056928801 > 2^63: wraps to that minus 2^64. */
    expect_i(run_binary1(IR_OP_POW, IR_DTYPE_INT64, wi(3), wi(40)),
             (int64_t) (UINT64_C(12157665459056928801) - UINT64_MAX - 1), "3**40 wraps");
    expect_i(run_binary1(IR_OP_POW, IR_DTYPE_INT8, wi(2), wi(7)), -128, "int8 2**7");
    expect_i(run_binary1(IR_OP_POW, IR_DTYPE_INT8, wi(3), wi(5)), wrap(243, IR_DTYPE_INT8),
             "int8 3**5");
    expect_i(run_binary1(IR_OP_POW, IR_DTYPE_UINT8, wi(2), wi(8)), 0, "uint8 2**8");
    expect_i(run_binary1(IR_OP_POW, IR_DTYPE_INT64, wi(-1), wi(INT64_MAX)), -1, "-1**max");
    expect_i(run_binary1(IR_OP_POW, IR_DTYPE_INT64, wi(-1), wi(INT64_MIN)), 1, "-1**min");
    expect_i(run_binary1(IR_OP_POW, IR_DTYPE_INT64, wi(2), wi(INT64_MAX)), 0, "2**max");
    expect_i(run_binary1(IR_OP_POW, IR_DTYPE_INT64, wi(1), wi(INT64_MAX)), 1, "1**max");
    expect_f(run_binary1(IR_OP_POW, IR_DTYPE_FLOAT64, wf(NAN), wf(0)), 1, "nan**0");
    expect_f(run_binary1(IR_OP_POW, IR_DTYPE_FLOAT32, wf(2), wf(-1)), 0.5, "2.0**-1");
    expect_f(run_binary1(IR_OP_POW, IR_DTYPE_FLOAT64, wf(-8), wf(1.0 / 3)), NAN, "(-8)**(1/3)");
}
END_TEST

START_TEST(edge_shifts)
{
    expect_i(run_binary1(IR_OP_SHL, IR_DTYPE_INT8, wi(1), wi(7)), -128, "int8 1<<7");
    expect_i(run_binary1(IR_OP_SHL, IR_DTYPE_INT8, wi(1), wi(8)), 0, "int8 1<<8");
    expect_i(run_binary1(IR_OP_SHL, IR_DTYPE_INT32, wi(3), wi(-1)), 0, "3<<-1");
    expect_i(run_binary1(IR_OP_SHL, IR_DTYPE_INT64, wi(1), wi(63)), INT64_MIN, "1<<63");
    expect_i(run_binary1(IR_OP_SHL, IR_DTYPE_INT64, wi(1), wi(64)), 0, "1<<64");
    expect_i(run_binary1(IR_OP_SHL, IR_DTYPE_UINT8, wi(255), wi(4)), 240, "uint8 255<<4");
    expect_i(run_binary1(IR_OP_SHL, IR_DTYPE_UINT8, wi(255), wi(200)), 0, "uint8 255<<200");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT8, wi(-128), wi(7)), -1, "int8 -128>>7");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT8, wi(-128), wi(8)), -1, "int8 -128>>8");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT8, wi(100), wi(8)), 0, "int8 100>>8");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT32, wi(-5), wi(1)), -3, "-5>>1");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT32, wi(-5), wi(-1)), -1, "-5>>-1");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT32, wi(5), wi(-1)), 0, "5>>-1");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT64, wi(INT64_MIN), wi(63)), -1, "min>>63");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT64, wi(INT64_MIN), wi(64)), -1, "min>>64");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_INT64, wi(INT64_MAX), wi(62)), 1, "max>>62");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_UINT8, wi(255), wi(7)), 1, "uint8 255>>7");
    expect_i(run_binary1(IR_OP_SHR, IR_DTYPE_UINT8, wi(255), wi(8)), 0, "uint8 255>>8");
}
END_TEST

START_TEST(edge_nan_and_float_unary)
{
    const int F64 = IR_DTYPE_FLOAT64, F32 = IR_DTYPE_FLOAT32;
    expect_f(run_binary1(IR_OP_MAXIMUM, F64, wf(NAN), wf(1)), NAN, "max(nan,1)");
    expect_f(run_binary1(IR_OP_MAXIMUM, F64, wf(1), wf(NAN)), NAN, "max(1,nan)");
    expect_f(run_binary1(IR_OP_MINIMUM, F32, wf(NAN), wf(1)), NAN, "min(nan,1)");
    expect_f(run_binary1(IR_OP_MINIMUM, F32, wf(1), wf(NAN)), NAN, "min(1,nan)");
    expect_f(run_binary1(IR_OP_MAXIMUM, F64, wf(-0.0), wf(0.0)), -0.0, "max(-0,0) is a");
    expect_f(run_binary1(IR_OP_MINIMUM, F64, wf(0.0), wf(-0.0)), 0.0, "min(0,-0) is a");
    const int cmps[] = {IR_OP_EQ, IR_OP_NE, IR_OP_LT, IR_OP_LE, IR_OP_GT, IR_OP_GE};
    for (int k = 0; k < 6; k++) {
        expect_i(run_binary1(cmps[k], F64, wf(NAN), wf(NAN)), cmps[k] == IR_OP_NE, "nan cmp");
        expect_i(run_binary1(cmps[k], F32, wf(1), wf(NAN)), cmps[k] == IR_OP_NE, "nan cmp");
    }
    expect_i(run_binary1(IR_OP_EQ, F64, wf(0.0), wf(-0.0)), 1, "0 == -0");
    expect_i(run_binary1(IR_OP_LOGICAL_AND, F64, wf(NAN), wf(2)), 1, "nan and 2");
    expect_i(run_binary1(IR_OP_LOGICAL_OR, F64, wf(-0.0), wf(0)), 0, "-0 or 0");
    expect_i(run_unary1(IR_OP_LOGICAL_NOT, F64, 0, wf(NAN)), 0, "not nan");
    expect_i(run_unary1(IR_OP_LOGICAL_NOT, F64, 0, wf(-0.0)), 1, "not -0");
    expect_i(run_unary1(IR_OP_LOGICAL_NOT, IR_DTYPE_BOOL, 0, wi(2)), 0, "not garbage byte");
    expect_f(run_unary1(IR_OP_SIGN, F64, 0, wf(-0.0)), 0.0, "sign(-0)");
    expect_f(run_unary1(IR_OP_SIGN, F64, 0, wf(NAN)), NAN, "sign(nan)");
    expect_f(run_unary1(IR_OP_SIGN, F32, 0, wf(-INFINITY)), -1, "sign(-inf)");
    static const double rounds[][2] = {{0.5, 0},
                                       {1.5, 2},
                                       {2.5, 2},
                                       {-2.5, -2},
                                       {-0.4, -0.0},
                                       {-0.5, -0.0},
                                       {3.7, 4},
                                       {-3.5, -4},
                                       {INFINITY, INFINITY},
                                       {1e300, 1e300},
                                       {0x1.fffffffffffffp51, 0x1p52}};
    for (size_t k = 0; k < sizeof rounds / sizeof rounds[0]; k++)
        expect_f(run_unary1(IR_OP_ROUND, F64, 0, wf(rounds[k][0])), rounds[k][1], "round");
    expect_f(run_unary1(IR_OP_ROUND, F32, 0, wf(8388609.0)), 8388609.0, "round f32 2^23+1");
    expect_f(run_unary1(IR_OP_SIGMOID, F64, 0, wf(-1000)), 0, "sigmoid(-1000)");
    expect_f(run_unary1(IR_OP_SIGMOID, F32, 0, wf(1000)), 1, "sigmoid(1000)");
    expect_f(run_unary1(IR_OP_SIGMOID, F64, 0, wf(0)), 0.5, "sigmoid(0)");
    expect_f(run_unary1(IR_OP_RSQRT, F64, 0, wf(4)), 0.5, "rsqrt(4)");
    expect_f(run_unary1(IR_OP_RSQRT, F64, 0, wf(0)), INFINITY, "rsqrt(0)");
    expect_f(run_unary1(IR_OP_RSQRT, F64, 0, wf(-0.0)), -INFINITY, "rsqrt(-0)");
    expect_f(run_unary1(IR_OP_RSQRT, F64, 0, wf(-1)), NAN, "rsqrt(-1)");
    expect_f(run_unary1(IR_OP_LOG, F32, 0, wf(0)), -INFINITY, "log(0)");
    expect_f(run_unary1(IR_OP_LOG, F32, 0, wf(-1)), NAN, "log(-1)");
    expect_f(run_unary1(IR_OP_ERF, F64, 0, wf(INFINITY)), 1, "erf(inf)");
    expect_f(run_unary1(IR_OP_ABS, F64, 0, wf(-0.0)), 0.0, "abs(-0)");
    expect_f(run_unary1(IR_OP_EXP, F32, 0, wf(100)), INFINITY, "float32 exp(100) overflows");
}
END_TEST

START_TEST(edge_cast)
{
    const int F64 = IR_DTYPE_FLOAT64, F32 = IR_DTYPE_FLOAT32;
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT32, wf(NAN)), 0, "nan -> int32");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT32, wf(1e10)), INT32_MAX, "1e10 -> int32");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT32, wf(-1e10)), INT32_MIN, "-1e10 -> int32");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT32, wf(-2147483648.9)), INT32_MIN,
             "-2^31-0.9 -> int32");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT32, wf(2147483647.9)), INT32_MAX,
             "2^31-0.1 -> int32");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT64, wf(INFINITY)), INT64_MAX, "inf -> int64");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT64, wf(-INFINITY)), INT64_MIN,
             "-inf -> int64");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT64, wf(0x1p63)), INT64_MAX, "2^63 -> int64");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT64, wf(-0x1p63)), INT64_MIN, "-2^63 -> int64");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_INT64, wf(0x1.fffffffffffffp62)),
             (int64_t) 0x1.fffffffffffffp62, "largest double below 2^63");
    expect_i(run_unary1(IR_OP_CAST, F32, IR_DTYPE_UINT8, wf(300)), 255, "300 -> uint8");
    expect_i(run_unary1(IR_OP_CAST, F32, IR_DTYPE_UINT8, wf(-1.5)), 0, "-1.5 -> uint8");
    expect_i(run_unary1(IR_OP_CAST, F32, IR_DTYPE_UINT8, wf(255.9)), 255, "255.9 -> uint8");
    expect_i(run_unary1(IR_OP_CAST, F32, IR_DTYPE_INT8, wf(-128.7)), -128, "-128.7 -> int8");
    expect_i(run_unary1(IR_OP_CAST, F32, IR_DTYPE_INT8, wf(-3.9)), -3, "-3.9 -> int8");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_BOOL, wf(NAN)), 1, "nan -> bool");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_BOOL, wf(-0.0)), 0, "-0 -> bool");
    expect_i(run_unary1(IR_OP_CAST, F64, IR_DTYPE_BOOL, wf(1e-310)), 1, "denormal -> bool");
    expect_i(run_unary1(IR_OP_CAST, IR_DTYPE_INT32, IR_DTYPE_BOOL, wi(256)), 1, "256 -> bool");
    expect_i(run_unary1(IR_OP_CAST, IR_DTYPE_INT32, IR_DTYPE_UINT8, wi(256 + 7)), 7, "263 -> u8");
    expect_i(run_unary1(IR_OP_CAST, IR_DTYPE_INT32, IR_DTYPE_INT8, wi(200)), -56, "200 -> i8");
    expect_i(run_unary1(IR_OP_CAST, IR_DTYPE_BOOL, IR_DTYPE_INT64, wi(255)), 1, "garbage bool");
    expect_f(run_unary1(IR_OP_CAST, IR_DTYPE_BOOL, F32, wi(7)), 1, "garbage bool -> f32");
    /* 2^53 + 1 (int64) -> float64: nearest even, 2^53. */
    expect_f(run_unary1(IR_OP_CAST, IR_DTYPE_INT64, F64, wi((INT64_C(1) << 53) + 1)), 0x1p53,
             "2^53+1 -> f64");
    /* 2^24 + 1 + 2^-29-ish: int64 (2^60 + 2^36 + 1) -> float32 needs one rounding: up. */
    expect_f(run_unary1(IR_OP_CAST, IR_DTYPE_INT64, F32,
                        wi((INT64_C(1) << 60) + (INT64_C(1) << 36) + 1)),
             (double) (0x1p60f + 0x1p37f), "one rounding int64 -> f32");
    expect_f(run_unary1(IR_OP_CAST, F64, F32, wf(1e300)), INFINITY, "1e300 -> f32");
    expect_f(run_unary1(IR_OP_CAST, F64, F32, wf(-0.0)), -0.0, "-0 -> f32");
}
END_TEST

/* ---- sources and copies ----------------------------------------------- */

START_TEST(sources_and_copies)
{
    uint64_t s = 5;
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct tg t;
        tg_init(&t);
        int64_t shape[3] = {2, 3, 4}, flat = 24, zero[2] = {3, 0};
        void *x = rnd_data(dt, flat, &s, DATA_ANY);
        void *e = rnd_data(dt, flat, &s, DATA_ANY);
        struct ir_scalar cv = {.i = dt == IR_DTYPE_BOOL    ? 1
                                    : dt == IR_DTYPE_UINT8 ? 200
                                                           : -7,
                               .f = -2.75};
        int a = tg_array(&t, dt, 3, shape, x);
        int c = tg_ok(&t, ir_add_const(&t.g, (enum ir_dtype) dt, 2, shape, cv, &t.err));
        int c0 = tg_ok(&t, ir_add_const(&t.g, (enum ir_dtype) dt, 0, NULL, cv, &t.err));
        int ex = tg_ok(&t, ir_add_extern(&t.g, (enum ir_dtype) dt, 3, shape, &t.err));
        int ez = tg_ok(&t, ir_add_extern(&t.g, (enum ir_dtype) dt, 2, zero, &t.err));
        int r = tg_ok(&t, ir_add_reshape(&t.g, a, 1, &flat, &t.err));
        int r0 = tg_ok(&t, ir_add_reshape(&t.g, ez, 1, zero + 1, &t.err));
        const void *ext[2] = {e, NULL};
        tg_run(&t, ext);
        for (int64_t k = 0; k < flat; k++) {
            struct want wa = elem(x, dt, k), we = elem(e, dt, k);
            check_elem(t.out[a], dt, k, wa, "array");
            check_elem(t.out[r], dt, k, wa, "reshape");
            check_elem(t.out[ex], dt, k, we, "extern");
            if (k < 6)
                check_elem(t.out[c], dt, k, isf(dt) ? wf(cv.f) : wi(cv.i), "const");
        }
        check_elem(t.out[c0], dt, 0, isf(dt) ? wf(cv.f) : wi(cv.i), "rank-0 const");
        ck_assert_ptr_nonnull(t.out[ez]);
        ck_assert_ptr_nonnull(t.out[r0]);
        free(x);
        free(e);
        tg_fini(&t);
    }
}
END_TEST

START_TEST(index_op)
{
    const int dts[] = {IR_DTYPE_INT32, IR_DTYPE_INT64};
    int64_t shape[3] = {3, 4, 5};
    for (int d = 0; d < 2; d++) {
        struct tg t;
        tg_init(&t);
        int ix[3];
        for (int dim = 0; dim < 3; dim++)
            ix[dim] = tg_ok(&t, ir_add_index(&t.g, (enum ir_dtype) dts[d], 3, shape, dim, &t.err));
        int64_t zero[2] = {0, 5};
        int iz = tg_ok(&t, ir_add_index(&t.g, (enum ir_dtype) dts[d], 2, zero, 1, &t.err));
        tg_run(&t, NULL);
        for (int64_t i = 0, k = 0; i < 3; i++)
            for (int64_t j = 0; j < 4; j++)
                for (int64_t l = 0; l < 5; l++, k++) {
                    check_elem(t.out[ix[0]], dts[d], k, wi(i), "index dim 0");
                    check_elem(t.out[ix[1]], dts[d], k, wi(j), "index dim 1");
                    check_elem(t.out[ix[2]], dts[d], k, wi(l), "index dim 2");
                }
        ck_assert_ptr_nonnull(t.out[iz]);
        tg_fini(&t);
    }
}
END_TEST

/* ---- broadcast --------------------------------------------------------- */

START_TEST(broadcast_cases)
{
    uint64_t s = 6;
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct tg t;
        tg_init(&t);
        int64_t xa[3] = {3, 1, 4}, ya[4] = {2, 3, 5, 4}; /* new dim 0, dim 1 stretches */
        int64_t yb[2] = {2, 3};                          /* from rank 0 */
        int64_t xc[1] = {4}, yc[2] = {4, 3};             /* new trailing dim */
        int64_t xd[2] = {1, 0}, yd[2] = {3, 0};          /* zero-size */
        int64_t xe[1] = {1}, ye[1] = {0};                /* 1 stretches to 0 */
        void *va = rnd_data(dt, 12, &s, DATA_ANY);
        void *vb = rnd_data(dt, 1, &s, DATA_ANY);
        void *vc = rnd_data(dt, 4, &s, DATA_ANY);
        int a = tg_array(&t, dt, 3, xa, va), b = tg_array(&t, dt, 0, NULL, vb);
        int c = tg_array(&t, dt, 1, xc, vc), d = tg_array(&t, dt, 2, xd, NULL);
        int e = tg_array(&t, dt, 1, xe, vb);
        int ba = tg_ok(&t, ir_add_broadcast(&t.g, a, 4, ya, 1u << 0, &t.err));
        int bb = tg_ok(&t, ir_add_broadcast(&t.g, b, 2, yb, 3u, &t.err));
        int bc = tg_ok(&t, ir_add_broadcast(&t.g, c, 2, yc, 1u << 1, &t.err));
        int bd = tg_ok(&t, ir_add_broadcast(&t.g, d, 2, yd, 0, &t.err));
        int be = tg_ok(&t, ir_add_broadcast(&t.g, e, 1, ye, 0, &t.err));
        tg_run(&t, NULL);
        for (int i = 0, k = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int l = 0; l < 5; l++)
                    for (int m = 0; m < 4; m++, k++)
                        check_elem(t.out[ba], dt, k, elem(va, dt, j * 4 + m),
                                   "broadcast new+stretch");
        for (int k = 0; k < 6; k++)
            check_elem(t.out[bb], dt, k, elem(vb, dt, 0), "broadcast rank 0");
        for (int i = 0, k = 0; i < 4; i++)
            for (int j = 0; j < 3; j++, k++)
                check_elem(t.out[bc], dt, k, elem(vc, dt, i), "broadcast trailing");
        ck_assert_ptr_nonnull(t.out[bd]);
        ck_assert_ptr_nonnull(t.out[be]);
        free(va);
        free(vb);
        free(vc);
        tg_fini(&t);
    }
}
END_TEST

/* ---- reduce ------------------------------------------------------------ */

/* The float add/mul of v[0..n) in PROTOCOL.md's "Order of a reduction",
 * written out independently of the interpreter: per block of 65536, the
 * sixteen lanes v[j], v[j+16], ... and the fold 8, 4, 2, 1. */
static double spec_sum(const double *v, int64_t n, bool mul)
{
    double total = mul ? 1 : 0;
    for (int64_t b0 = 0; b0 < n; b0 += 65536) {
        int64_t b1 = n - b0 < 65536 ? n : b0 + 65536;
        double lane[16];
        for (int l = 0; l < 16; l++) {
            lane[l] = mul ? 1 : 0;
            for (int64_t j = b0 + l; j < b1; j += 16)
                lane[l] = mul ? lane[l] * v[j] : lane[l] + v[j];
        }
        for (int w = 8; w >= 1; w /= 2)
            for (int l = 0; l < w; l++)
                lane[l] = mul ? lane[l] * lane[l + w] : lane[l] + lane[l + w];
        total = mul ? total * lane[0] : total + lane[0];
    }
    return total;
}

/* One reduce over a rank-3 input against nested loops. Accumulates as the
 * spec says: integers modulo 2^64 (then wrapped), floats in double, add
 * and mul in lanes and blocks (spec_sum). */
static void check_reduce(int op, int dt, const int64_t *shape, uint16_t dims, bool keep,
                         uint64_t *s)
{
    struct tg t;
    tg_init(&t);
    int64_t n = numel_of(3, shape);
    double *vals = malloc((size_t) (n > 0 ? n : 1) * sizeof(double));
    ck_assert_ptr_nonnull(vals);
    void *x = rnd_data(dt, n, s, op == IR_REDUCE_MUL ? DATA_SMALL : DATA_ANY);
    int a = tg_array(&t, dt, 3, shape, x);
    int y = tg_ok(&t, ir_add_reduce(&t.g, (enum ir_reduce_op) op, a, dims, keep, &t.err));
    tg_run(&t, NULL);
    const struct ir_node *yn = &t.g.nodes[y];
    int64_t ext[3]; /* output extent per input dim: 1 where reduced */
    for (int d = 0; d < 3; d++)
        ext[d] = (dims >> d) & 1 ? 1 : shape[d];
    ck_assert_int_eq(yn->numel, ext[0] * ext[1] * ext[2]);
    char ctx[96];
    snprintf(ctx, sizeof ctx, "reduce op %d %s dims %u keep %d", op,
             ir_dtype_name((enum ir_dtype) dt), dims, keep);
    for (int64_t o0 = 0; o0 < ext[0]; o0++)
        for (int64_t o1 = 0; o1 < ext[1]; o1++)
            for (int64_t o2 = 0; o2 < ext[2]; o2++) {
                double f = op == IR_REDUCE_MUL   ? 1
                           : op == IR_REDUCE_MAX ? -INFINITY
                           : op == IR_REDUCE_MIN ? INFINITY
                                                 : 0;
                int64_t lo, hi;
                int_range(isf(dt) ? IR_DTYPE_INT64 : dt, &lo, &hi);
                __int128 iv = op == IR_REDUCE_MUL   ? 1
                              : op == IR_REDUCE_MAX ? lo
                              : op == IR_REDUCE_MIN ? hi
                                                    : 0;
                int64_t count = 0;
                for (int64_t i = 0; i < shape[0]; i++)
                    for (int64_t j = 0; j < shape[1]; j++)
                        for (int64_t k = 0; k < shape[2]; k++) {
                            if (((dims & 1) ? 0 : i) != o0 || ((dims & 2) ? 0 : j) != o1 ||
                                ((dims & 4) ? 0 : k) != o2)
                                continue;
                            int64_t at = (i * shape[1] + j) * shape[2] + k;
                            count++;
                            if (isf(dt)) {
                                double v = getf(x, dt, at);
                                vals[count - 1] = v;
                                if (op == IR_REDUCE_MUL)
                                    f *= v;
                                else if (op == IR_REDUCE_MAX)
                                    f = isnan(f) || isnan(v) ? NAN : v > f ? v : f;
                                else if (op == IR_REDUCE_MIN)
                                    f = isnan(f) || isnan(v) ? NAN : v < f ? v : f;
                                else
                                    f += v;
                            } else {
                                int64_t v = geti(x, dt, at);
                                if (op == IR_REDUCE_MUL)
                                    iv = wrap(iv * v, IR_DTYPE_INT64);
                                else if (op == IR_REDUCE_MAX)
                                    iv = iv > v ? iv : v;
                                else if (op == IR_REDUCE_MIN)
                                    iv = iv < v ? iv : v;
                                else
                                    iv = wrap(iv + v, IR_DTYPE_INT64);
                            }
                        }
                if (isf(dt) && op != IR_REDUCE_MAX && op != IR_REDUCE_MIN)
                    f = spec_sum(vals, count, op == IR_REDUCE_MUL);
                if (op == IR_REDUCE_MEAN)
                    f = count ? f / (double) count : NAN;
                int64_t k = (o0 * ext[1] + o1) * ext[2] + o2;
                check_elem(t.out[y], dt, k, isf(dt) ? wf(f) : wi(wrap(iv, dt)), ctx);
            }
    free(x);
    free(vals);
    tg_fini(&t);
}

START_TEST(reduce_all)
{
    uint64_t s = 7;
    static const int64_t shapes[][3] = {{3, 4, 5}, {2, 0, 3}, {1, 1, 1}, {4, 1, 6}};
    for (int op = IR_REDUCE_ADD; op < IR_REDUCE_END; op++)
        for (int dt = IR_DTYPE_INT8; dt < IR_DTYPE_COUNT; dt++) {
            if (op == IR_REDUCE_MEAN && !isf(dt))
                continue;
            for (size_t sh = 0; sh < 4; sh++)
                for (uint16_t dims = 0; dims < 8; dims++)
                    for (int keep = 0; keep < 2; keep++)
                        check_reduce(op, dt, shapes[sh], dims, keep, &s);
        }
}
END_TEST

START_TEST(reduce_edges)
{
    struct tg t;
    tg_init(&t);
    int64_t zero[2] = {0, 3}, one = 1, three = 3;
    int z8 = tg_array(&t, IR_DTYPE_INT8, 2, zero, NULL);
    int zf = tg_array(&t, IR_DTYPE_FLOAT32, 2, zero, NULL);
    int r[8];
    r[0] = ir_add_reduce(&t.g, IR_REDUCE_MAX, z8, 1, false, &t.err);
    r[1] = ir_add_reduce(&t.g, IR_REDUCE_MIN, z8, 1, false, &t.err);
    r[2] = ir_add_reduce(&t.g, IR_REDUCE_MUL, z8, 1, false, &t.err);
    r[3] = ir_add_reduce(&t.g, IR_REDUCE_MEAN, zf, 1, true, &t.err);
    r[4] = ir_add_reduce(&t.g, IR_REDUCE_MAX, zf, 1, false, &t.err);
    r[5] = ir_add_reduce(&t.g, IR_REDUCE_ADD, zf, 3, false, &t.err); /* rank 0 out */
    const float nanv[3] = {1, NAN, 2};
    int fn = tg_array(&t, IR_DTYPE_FLOAT32, 1, &three, nanv);
    r[6] = ir_add_reduce(&t.g, IR_REDUCE_MIN, fn, 1, false, &t.err);
    const int64_t big[1] = {INT64_MAX};
    int bi = tg_array(&t, IR_DTYPE_INT64, 1, &one, big);
    int bb = tg_ok(&t, ir_add_broadcast(&t.g, bi, 1, &three, 0, &t.err));
    r[7] = ir_add_reduce(&t.g, IR_REDUCE_ADD, bb, 1, false, &t.err);
    for (int k = 0; k < 8; k++)
        tg_ok(&t, r[k]);
    tg_run(&t, NULL);
    for (int k = 0; k < 3; k++) {
        check_elem(t.out[r[0]], IR_DTYPE_INT8, k, wi(INT8_MIN), "max of nothing");
        check_elem(t.out[r[1]], IR_DTYPE_INT8, k, wi(INT8_MAX), "min of nothing");
        check_elem(t.out[r[2]], IR_DTYPE_INT8, k, wi(1), "mul of nothing");
        check_elem(t.out[r[3]], IR_DTYPE_FLOAT32, k, wf(NAN), "mean of nothing");
        check_elem(t.out[r[4]], IR_DTYPE_FLOAT32, k, wf(-INFINITY), "float max of nothing");
    }
    check_elem(t.out[r[5]], IR_DTYPE_FLOAT32, 0, wf(0), "sum of nothing");
    check_elem(t.out[r[6]], IR_DTYPE_FLOAT32, 0, wf(NAN), "min propagates nan");
    check_elem(t.out[r[7]], IR_DTYPE_INT64, 0, wi(INT64_MAX - 2), "3*max wraps");
    tg_fini(&t);
}
END_TEST

/* The order of a float sum is the spec's, not row-major: values chosen so
 * that the serial sum, the lanes and the blocks each give another answer. */
START_TEST(reduce_order)
{
    struct tg t;
    tg_init(&t);
    /* 17 elements: lane 0 holds x[0] + x[16], lane 1 x[1], lane 8 x[8].
     * Serially 1e16 + 1 + ... loses every 1 (ulp 2 at 1e16) and gives 0;
     * the spec gives lane 0 = 1e16 + -1e16 = 0, then the fold adds the
     * 1s exactly: 15 ones in lanes 1..15 -> 15. */
    int64_t n17 = 17;
    double v[17];
    v[0] = 1e16;
    for (int j = 1; j < 16; j++)
        v[j] = 1;
    v[16] = -1e16;
    int a = tg_array(&t, IR_DTYPE_FLOAT64, 1, &n17, v);
    int y = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_ADD, a, 1, false, &t.err));
    int m = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_MEAN, a, 1, false, &t.err));
    /* Fold order: lanes 0 and 8 meet first. 1e16 in lane 0, -1e16 in
     * lane 8, ones elsewhere: lane 0 + lane 8 = 0 exactly, and every 1
     * survives: 14. (Serial: 1e16 + 1 = 1e16 ... -> 0 + 1 = ... gives 0.) */
    double w[16];
    for (int j = 0; j < 16; j++)
        w[j] = 1;
    w[0] = 1e16;
    w[8] = -1e16;
    int64_t n16 = 16;
    int b = tg_array(&t, IR_DTYPE_FLOAT64, 1, &n16, w);
    int yb = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_ADD, b, 1, false, &t.err));
    /* A sum over dim 0 of [17, 2]: j counts rows, so lanes hold rows. */
    double c[34];
    for (int j = 0; j < 17; j++) {
        c[2 * j] = v[j];
        c[2 * j + 1] = w[j % 16];
    }
    int64_t s172[2] = {17, 2};
    int cc = tg_array(&t, IR_DTYPE_FLOAT64, 2, s172, c);
    int yc = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_ADD, cc, 1, false, &t.err));
    tg_run(&t, NULL);
    check_elem(t.out[y], IR_DTYPE_FLOAT64, 0, wf(15), "lanes: 1e16 and -1e16 share lane 0");
    check_elem(t.out[m], IR_DTYPE_FLOAT64, 0, wf(15.0 / 17), "mean in lanes");
    check_elem(t.out[yb], IR_DTYPE_FLOAT64, 0, wf(14), "fold: lane 0 meets lane 8 first");
    check_elem(t.out[yc], IR_DTYPE_FLOAT64, 0, wf(15), "column 0");
    /* Column 1 is w[0..15] then w[0] = 1e16 again: lane 0 = 2e16, lane 8
     * = -1e16, the fold gives 1e16 + 2 + 4 + 8 = 1e16 + 14 (exact: the
     * ones meet each other before they meet 1e16). */
    double col1[17];
    for (int j = 0; j < 17; j++)
        col1[j] = w[j % 16];
    ck_assert(spec_sum(col1, 17, false) == 1e16 + 14);
    check_elem(t.out[yc], IR_DTYPE_FLOAT64, 1, wf(1e16 + 14), "column 1");
    tg_fini(&t);
}
END_TEST

/* A sum longer than one block: the blocks combine left to right. Block 0
 * holds 1e16 and then ones, block 1 holds -1e16: per block the lanes keep
 * the ones (65535 of them, 4095 to 4096 per lane, each lane exact below
 * 2^53), the block value 1e16 + 65535 rounds to even (ulp 2), then
 * -1e16 leaves 65536: the row-major serial sum would give 0. */
START_TEST(reduce_order_blocks)
{
    struct tg t;
    tg_init(&t);
    int64_t n = 65537;
    double *v = malloc((size_t) n * sizeof(double));
    ck_assert_ptr_nonnull(v);
    v[0] = 1e16;
    for (int64_t j = 1; j < 65536; j++)
        v[j] = 1;
    v[65536] = -1e16;
    int a = tg_array(&t, IR_DTYPE_FLOAT64, 1, &n, v);
    int y = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_ADD, a, 1, false, &t.err));
    tg_run(&t, NULL);
    /* Block 0: lane 0 = 1e16 + 4095 ones (serial in the lane: each +1
     * to 1e16 is lost, ties to even), lanes 1..15 = 4096 each (exact). */
    double lane0 = 1e16;
    for (int k = 0; k < 4095; k++)
        lane0 += 1;
    ck_assert(lane0 == 1e16);
    double block0 = spec_sum(v, 65536, false);
    ck_assert(block0 == (1e16 + 15 * 4096.0)); /* 61440 is even: exact */
    check_elem(t.out[y], IR_DTYPE_FLOAT64, 0, wf(61440), "blocks combine in order");
    free(v);
    tg_fini(&t);
}
END_TEST

/* ---- reindex: Jittor-style compositions ------------------------------- */

static int reindex(struct tg *t, int x, int rank, const int64_t *shape, int nexprs,
                   const char *const *exprs, int nconds, const char *const *conds, int nextras,
                   const int *extras, struct ir_scalar overflow)
{
    struct ir_reindex_text rt = {.nexprs = nexprs,
                                 .nconds = nconds,
                                 .conds = conds,
                                 .nextras = nextras,
                                 .extras = extras,
                                 .overflow = overflow};
    size_t clen[8];
    for (int d = 0; d < nexprs; d++) {
        rt.exprs[d] = exprs[d];
        rt.expr_len[d] = strlen(exprs[d]);
    }
    for (int c = 0; c < nconds; c++)
        clen[c] = strlen(conds[c]);
    rt.cond_len = clen;
    return tg_ok(t, ir_add_reindex(&t->g, x, rank, shape, &rt, &t->err));
}

static int reindex_reduce(struct tg *t, int op, int x, int rank, const int64_t *shape,
                          const char *const *exprs, int nconds, const char *const *conds)
{
    struct ir_reindex_text rt = {.nexprs = rank, .nconds = nconds, .conds = conds};
    size_t clen[8];
    for (int d = 0; d < rank; d++) {
        rt.exprs[d] = exprs[d];
        rt.expr_len[d] = strlen(exprs[d]);
    }
    for (int c = 0; c < nconds; c++)
        clen[c] = strlen(conds[c]);
    rt.cond_len = clen;
    return tg_ok(
        t, ir_add_reindex_reduce(&t->g, (enum ir_reduce_op) op, x, rank, shape, &rt, &t->err));
}

/* conv2d as Jittor writes it: reindex x to [N,O,OH,OW,C,KH,KW], broadcast
 * w to the same shape, multiply, sum the last three dims. */
static void check_conv2d(int dt, int64_t stride, int64_t pad, uint64_t *s)
{
    enum { N = 2, C = 3, H = 6, W = 5, O = 4, KH = 3, KW = 2 };
    int64_t OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
    int64_t xs[4] = {N, C, H, W}, ws[4] = {O, C, KH, KW};
    int64_t big[7] = {N, O, OH, OW, C, KH, KW};
    void *x = rnd_data(dt, N * C * H * W, s, DATA_SMALL);
    void *w = rnd_data(dt, O * C * KH * KW, s, DATA_SMALL);
    struct tg t;
    tg_init(&t);
    int nx = tg_array(&t, dt, 4, xs, x), nw = tg_array(&t, dt, 4, ws, w);
    char e2[64], e3[64];
    snprintf(e2, sizeof e2, "i2*%lld-%lld+i5", (long long) stride, (long long) pad);
    snprintf(e3, sizeof e3, "i3*%lld-%lld+i6", (long long) stride, (long long) pad);
    const char *ex[4] = {"i0", "i4", e2, e3};
    int xx = reindex(&t, nx, 7, big, 4, ex, 0, NULL, 0, NULL, (struct ir_scalar){0});
    int ww =
        tg_ok(&t, ir_add_broadcast(&t.g, nw, 7, big, (1u << 0) | (1u << 2) | (1u << 3), &t.err));
    int yy = tg_ok(&t, ir_add_binary(&t.g, IR_OP_MUL, xx, ww, &t.err));
    int y = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_ADD, yy, 0x70, false, &t.err));
    tg_run(&t, NULL);
    for (int64_t n = 0, k = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++, k++) {
                    double acc = 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                double xv =
                                    isf(dt) ? getf(x, dt, ((n * C + c) * H + ih) * W + iw)
                                            : (double) geti(x, dt, ((n * C + c) * H + ih) * W + iw);
                                double wv =
                                    isf(dt)
                                        ? getf(w, dt, ((o * C + c) * KH + kh) * KW + kw)
                                        : (double) geti(w, dt, ((o * C + c) * KH + kh) * KW + kw);
                                acc += xv * wv;
                            }
                    /* Small quarter-integer data: every sum is exact. */
                    check_elem(t.out[y], dt, k, isf(dt) ? wf(acc) : wi((int64_t) acc), "conv2d");
                }
    free(x);
    free(w);
    tg_fini(&t);
}

START_TEST(reindex_conv2d)
{
    uint64_t s = 8;
    const int dts[] = {IR_DTYPE_FLOAT32, IR_DTYPE_FLOAT64, IR_DTYPE_INT32};
    for (int d = 0; d < 3; d++) {
        check_conv2d(dts[d], 1, 0, &s);
        check_conv2d(dts[d], 1, 1, &s);
        check_conv2d(dts[d], 2, 1, &s);
    }
}
END_TEST

START_TEST(reindex_pooling)
{
    enum { N = 2, C = 3, H = 5, W = 7 };
    uint64_t s = 9;
    int64_t xs[4] = {N, C, H, W};
    /* 2x2 windows, stride 2, padding 1: out 3x4; pads are -inf for max,
     * and 0 for the average (count_include_pad, as Jittor's default). */
    int64_t OH = 3, OW = 4, ps[6] = {N, C, OH, OW, 2, 2};
    void *x = rnd_data(IR_DTYPE_FLOAT64, N * C * H * W, &s, DATA_ANY);
    struct tg t;
    tg_init(&t);
    int nx = tg_array(&t, IR_DTYPE_FLOAT64, 4, xs, x);
    const char *ex[4] = {"i0", "i1", "i2*2-1+i4", "i3*2-1+i5"};
    int pm = reindex(&t, nx, 6, ps, 4, ex, 0, NULL, 0, NULL, (struct ir_scalar){.f = -INFINITY});
    int pa = reindex(&t, nx, 6, ps, 4, ex, 0, NULL, 0, NULL, (struct ir_scalar){.f = 0});
    int ymax = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_MAX, pm, 0x30, false, &t.err));
    int yavg = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_MEAN, pa, 0x30, false, &t.err));
    tg_run(&t, NULL);
    for (int64_t n = 0, k = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++, k++) {
                    double mx = -INFINITY, win[4];
                    for (int64_t a = 0; a < 2; a++)
                        for (int64_t b = 0; b < 2; b++) {
                            int64_t ih = oh * 2 - 1 + a, iw = ow * 2 - 1 + b;
                            bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                            double v =
                                inside ? getf(x, IR_DTYPE_FLOAT64, ((n * C + c) * H + ih) * W + iw)
                                       : 0.0;
                            win[a * 2 + b] = v;
                            if (inside)
                                mx = isnan(mx) || isnan(v) ? NAN : v > mx ? v : mx;
                        }
                    check_elem(t.out[ymax], IR_DTYPE_FLOAT64, k, wf(mx), "max pool");
                    check_elem(t.out[yavg], IR_DTYPE_FLOAT64, k, wf(spec_sum(win, 4, false) / 4),
                               "avg pool");
                }
    free(x);
    tg_fini(&t);
}
END_TEST

/* conv_transpose as Jittor writes it: broadcast x and w to
 * [N,C,O,H,W,KH,KW], multiply, reindex_reduce onto [N,O,OH,OW]. */
START_TEST(reindex_reduce_conv_transpose)
{
    enum { N = 2, C = 3, O = 2, H = 4, W = 3, KH = 3, KW = 3, S = 2, P = 1 };
    const int64_t OH = (H - 1) * S - 2 * P + KH, OW = (W - 1) * S - 2 * P + KW;
    uint64_t s = 10;
    int64_t xs[4] = {N, C, H, W}, ws[4] = {C, O, KH, KW}, ys[4] = {N, O, OH, OW};
    int64_t big[7] = {N, C, O, H, W, KH, KW};
    void *x = rnd_data(IR_DTYPE_FLOAT64, N * C * H * W, &s, DATA_SMALL);
    void *w = rnd_data(IR_DTYPE_FLOAT64, C * O * KH * KW, &s, DATA_SMALL);
    struct tg t;
    tg_init(&t);
    int nx = tg_array(&t, IR_DTYPE_FLOAT64, 4, xs, x);
    int nw = tg_array(&t, IR_DTYPE_FLOAT64, 4, ws, w);
    int xx =
        tg_ok(&t, ir_add_broadcast(&t.g, nx, 7, big, (1u << 2) | (1u << 5) | (1u << 6), &t.err));
    int ww =
        tg_ok(&t, ir_add_broadcast(&t.g, nw, 7, big, (1u << 0) | (1u << 3) | (1u << 4), &t.err));
    int p = tg_ok(&t, ir_add_binary(&t.g, IR_OP_MUL, xx, ww, &t.err));
    const char *ex[4] = {"i0", "i2", "i3*2-1+i5", "i4*2-1+i6"};
    int y = reindex_reduce(&t, IR_REDUCE_ADD, p, 4, ys, ex, 0, NULL);
    tg_run(&t, NULL);
    double *want = calloc((size_t) (N * O * OH * OW), sizeof *want);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t o = 0; o < O; o++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t wd = 0; wd < W; wd++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t oh = h * S - P + kh, ow = wd * S - P + kw;
                                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW)
                                    continue;
                                want[((n * O + o) * OH + oh) * OW + ow] +=
                                    ((double *) x)[((n * C + c) * H + h) * W + wd] *
                                    ((double *) w)[((c * O + o) * KH + kh) * KW + kw];
                            }
    for (int64_t k = 0; k < N * O * OH * OW; k++)
        check_elem(t.out[y], IR_DTYPE_FLOAT64, k, wf(want[k]), "conv_transpose");
    free(want);
    free(x);
    free(w);
    tg_fini(&t);
}
END_TEST

START_TEST(reindex_gather_and_conds)
{
    struct tg t;
    tg_init(&t);
    int64_t xs[2] = {5, 4}, is[1] = {4}, ys[2] = {4, 4};
    float x[20];
    for (int k = 0; k < 20; k++)
        x[k] = (float) k + 0.5f;
    const int32_t idx[4] = {3, -1, 7, 0}; /* two out of range: overflow */
    int nx = tg_array(&t, IR_DTYPE_FLOAT32, 2, xs, x);
    int ni = tg_array(&t, IR_DTYPE_INT32, 1, is, idx);
    const char *ex[2] = {"@e0(i0)", "i1"};
    const char *cond[1] = {"i0==3&&i1>=2"};
    int y = reindex(&t, nx, 2, ys, 2, ex, 1, cond, 1, &ni, (struct ir_scalar){.f = -1});
    /* Shape and stride names: reverse a flattened [2,3] via xshape/xstride. */
    int64_t ss[2] = {2, 3}, fs[1] = {6};
    const int64_t sv[6] = {10, 11, 12, 13, 14, 15};
    int ns = tg_array(&t, IR_DTYPE_INT64, 2, ss, sv);
    const char *rev[2] = {"(yshape0-1-i0)/xstride0", "(yshape0-1-i0)%xshape1"};
    int yr = reindex(&t, ns, 1, fs, 2, rev, 0, NULL, 0, NULL, (struct ir_scalar){.i = 0});
    /* Rank-0 source, and a cond on a rank-0 output. */
    const uint8_t b1[1] = {7};
    int nb = tg_array(&t, IR_DTYPE_BOOL, 0, NULL, b1);
    int64_t three = 3;
    const char *c1[1] = {"i0==1"};
    int yb = reindex(&t, nb, 1, &three, 0, NULL, 1, c1, 0, NULL, (struct ir_scalar){.i = 0});
    int64_t zero[1] = {0};
    int nz = tg_array(&t, IR_DTYPE_INT8, 1, zero, NULL);
    const char *ez[1] = {"i0"};
    int yz = reindex(&t, nz, 1, &three, 1, ez, 0, NULL, 0, NULL, (struct ir_scalar){.i = -5});
    tg_run(&t, NULL);
    for (int i = 0, k = 0; i < 4; i++)
        for (int j = 0; j < 4; j++, k++) {
            bool out = idx[i] < 0 || idx[i] >= 5 || (i == 3 && j >= 2);
            check_elem(t.out[y], IR_DTYPE_FLOAT32, k, wf(out ? -1.0 : x[idx[i] * 4 + j]), "gather");
        }
    for (int k = 0; k < 6; k++)
        check_elem(t.out[yr], IR_DTYPE_INT64, k, wi(15 - k), "reverse via shape names");
    for (int k = 0; k < 3; k++) {
        check_elem(t.out[yb], IR_DTYPE_BOOL, k, wi(k != 1), "rank-0 source, cond");
        check_elem(t.out[yz], IR_DTYPE_INT8, k, wi(-5), "empty source overflows");
    }
    tg_fini(&t);
}
END_TEST

/* Every dtype: y[i,j] = x[j, i-1] on a [5,3] output from a [3,4] input,
 * with the row i == 2 forced to overflow by a cond. */
START_TEST(reindex_all_dtypes)
{
    uint64_t s = 11;
    for (int dt = 1; dt < IR_DTYPE_COUNT; dt++) {
        struct tg t;
        tg_init(&t);
        int64_t xs[2] = {3, 4}, ys[2] = {5, 3};
        void *x = rnd_data(dt, 12, &s, DATA_ANY);
        int nx = tg_array(&t, dt, 2, xs, x);
        const char *ex[2] = {"i1", "i0-1"};
        const char *cond[1] = {"i0==2"};
        struct ir_scalar ov = {.i = dt == IR_DTYPE_BOOL    ? 1
                                    : dt == IR_DTYPE_UINT8 ? 250
                                                           : -3,
                               .f = -3.5};
        int y = reindex(&t, nx, 2, ys, 2, ex, 1, cond, 0, NULL, ov);
        tg_run(&t, NULL);
        for (int64_t i = 0, k = 0; i < 5; i++)
            for (int64_t j = 0; j < 3; j++, k++) {
                bool over = i - 1 < 0 || i - 1 >= 4 || i == 2;
                struct want w = isf(dt) ? wf(ov.f) : wi(ov.i);
                check_elem(t.out[y], dt, k, over ? w : elem(x, dt, j * 4 + (i - 1)), "reindex");
            }
        free(x);
        tg_fini(&t);
    }
}
END_TEST

START_TEST(reindex_reduce_ops)
{
    /* x[6] -> y[4] by i0/2, x[3] dropped by a cond, y[3] gets nothing. */
    const int dts[] = {IR_DTYPE_INT8,  IR_DTYPE_UINT8,   IR_DTYPE_INT32,
                       IR_DTYPE_INT64, IR_DTYPE_FLOAT32, IR_DTYPE_FLOAT64};
    const int64_t xv[6] = {3, -2, 5, 100, 7, 6};
    int64_t six = 6, four = 4;
    for (int d = 0; d < 6; d++) {
        int dt = dts[d];
        char x[48];
        for (int k = 0; k < 6; k++) {
            if (isf(dt))
                setf(x, dt, k, (double) xv[k]);
            else
                seti(x, dt, k, xv[k]);
        }
        struct tg t;
        tg_init(&t);
        int nx = tg_array(&t, dt, 1, &six, x);
        const char *ex[1] = {"i0/2"};
        const char *cond[1] = {"i0==3"};
        int y[4];
        for (int op = IR_REDUCE_ADD; op <= IR_REDUCE_MIN; op++)
            y[op - 1] = reindex_reduce(&t, op, nx, 1, &four, ex, 1, cond);
        tg_run(&t, NULL);
        int64_t lo, hi;
        int_range(isf(dt) ? IR_DTYPE_INT64 : dt, &lo, &hi);
        int64_t v[6];
        for (int k = 0; k < 6; k++)
            v[k] = isf(dt) ? xv[k] : geti(x, dt, k);
        const int64_t groups[3][2] = {{v[0], v[1]}, {v[2], v[2]}, {v[4], v[5]}};
        for (int g = 0; g < 3; g++) {
            bool pair = g != 1;
            int64_t g0 = groups[g][0], g1 = groups[g][1];
            struct want w[4];
            if (isf(dt)) {
                w[0] = wf(pair ? (double) (g0 + g1) : (double) g0);
                w[1] = wf(pair ? (double) (g0 * g1) : (double) g0);
                w[2] = wf((double) (pair && g1 > g0 ? g1 : g0));
                w[3] = wf((double) (pair && g1 < g0 ? g1 : g0));
            } else {
                w[0] = wi(wrap(pair ? (__int128) g0 + g1 : g0, dt));
                w[1] = wi(wrap(pair ? (__int128) g0 * g1 : g0, dt));
                w[2] = wi(pair && g1 > g0 ? g1 : g0);
                w[3] = wi(pair && g1 < g0 ? g1 : g0);
            }
            for (int op = 0; op < 4; op++)
                check_elem(t.out[y[op]], dt, g, w[op], "reindex_reduce");
        }
        /* y[3]: no element lands there: the identity. */
        check_elem(t.out[y[0]], dt, 3, isf(dt) ? wf(0) : wi(0), "add identity");
        check_elem(t.out[y[1]], dt, 3, isf(dt) ? wf(1) : wi(1), "mul identity");
        check_elem(t.out[y[2]], dt, 3, isf(dt) ? wf(-INFINITY) : wi(lo), "max identity");
        check_elem(t.out[y[3]], dt, 3, isf(dt) ? wf(INFINITY) : wi(hi), "min identity");
        tg_fini(&t);
    }
}
END_TEST

/* ---- random ------------------------------------------------------------ */

START_TEST(philox_known_answers)
{
    static const struct {
        uint32_t ctr[4], key[2], want[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t k = 0; k < 3; k++) {
        uint32_t out[4];
        philox_4x32_10(kat[k].ctr, kat[k].key, out);
        for (int w = 0; w < 4; w++)
            ck_assert_msg(out[w] == kat[k].want[w], "KAT %zu word %d: %08x want %08x", k, w, out[w],
                          kat[k].want[w]);
    }
    /* philox_block's layout: seed -> key words, counter -> words 0 and 1. */
    uint32_t a[4], b[4];
    const uint32_t ctr[4] = {0x243f6a88, 0x85a308d3, 0, 0}, key[2] = {0xa4093822, 0x299f31d0};
    philox_4x32_10(ctr, key, a);
    philox_block(UINT64_C(0x299f31d0a4093822), UINT64_C(0x85a308d3243f6a88), b);
    ck_assert_mem_eq(a, b, sizeof a);
}
END_TEST

static int random_node(struct tg *t, int dt, int dist, int64_t n, uint64_t seed, uint64_t off)
{
    return tg_ok(t, ir_add_random(&t->g, (enum ir_dtype) dt, 1, &n, (enum ir_random_dist) dist,
                                  seed, off, &t->err));
}

START_TEST(random_reproducible)
{
    struct tg t;
    tg_init(&t);
    const int64_t n = 1000;
    int u32 = random_node(&t, IR_DTYPE_FLOAT32, IR_RANDOM_UNIFORM, n, 42, 0);
    int u32b = random_node(&t, IR_DTYPE_FLOAT32, IR_RANDOM_UNIFORM, n, 42, 0);
    int u32s = random_node(&t, IR_DTYPE_FLOAT32, IR_RANDOM_UNIFORM, n, 42, 10);
    int u32o = random_node(&t, IR_DTYPE_FLOAT32, IR_RANDOM_UNIFORM, n, 43, 0);
    int u64 = random_node(&t, IR_DTYPE_FLOAT64, IR_RANDOM_UNIFORM, n, 42, 0);
    int n32 = random_node(&t, IR_DTYPE_FLOAT32, IR_RANDOM_NORMAL, n, 42, 0);
    int n64 = random_node(&t, IR_DTYPE_FLOAT64, IR_RANDOM_NORMAL, n, 42, 0);
    int wrapn = random_node(&t, IR_DTYPE_FLOAT64, IR_RANDOM_UNIFORM, 2, 7, UINT64_MAX);
    int wrap0 = random_node(&t, IR_DTYPE_FLOAT64, IR_RANDOM_UNIFORM, 1, 7, 0);
    int r0 =
        tg_ok(&t, ir_add_random(&t.g, IR_DTYPE_FLOAT64, 0, NULL, IR_RANDOM_NORMAL, 42, 0, &t.err));
    tg_run(&t, NULL);
    const float *a = t.out[u32], *b = t.out[u32b], *sh = t.out[u32s], *o = t.out[u32o];
    ck_assert_mem_eq(a, b, (size_t) n * sizeof *a);
    int same_other = 0;
    for (int64_t k = 0; k < n; k++) {
        if (k + 10 < n)
            ck_assert_msg(sh[k] == a[k + 10], "offset 10 shifts the stream by 10");
        same_other += o[k] == a[k];
        uint32_t r[4];
        philox_block(42, (uint64_t) k, r);
        ck_assert(a[k] == (float) (r[0] >> 8) / 16777216.0f);
        uint64_t m = (((uint64_t) r[0] << 32) | r[1]) >> 11;
        ck_assert(((double *) t.out[u64])[k] == (double) m / 9007199254740992.0);
        double u1 = ((r[0] >> 8) + 1) / 16777216.0, u2 = (r[1] >> 8) / 16777216.0;
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        ck_assert(((float *) t.out[n32])[k] == (float) z);
        double v1 = (double) ((((uint64_t) r[0] << 32 | r[1]) >> 11) + 1) / 0x1p53;
        double v2 = (double) ((((uint64_t) r[2] << 32 | r[3]) >> 11)) / 0x1p53;
        ck_assert(((double *) t.out[n64])[k] == sqrt(-2 * log(v1)) * cos(2 * M_PI * v2));
    }
    ck_assert_int_lt(same_other, 10);
    /* The counter wraps modulo 2^64: offset 2^64-1, element 1 is counter 0. */
    ck_assert(((double *) t.out[wrapn])[1] == ((double *) t.out[wrap0])[0]);
    ck_assert(((double *) t.out[r0])[0] == ((double *) t.out[n64])[0]);
    tg_fini(&t);
}
END_TEST

START_TEST(random_statistics)
{
    const int64_t n = 1 << 20;
    for (int dt = IR_DTYPE_FLOAT32; dt <= IR_DTYPE_FLOAT64; dt++) {
        struct tg t;
        tg_init(&t);
        int u = random_node(&t, dt, IR_RANDOM_UNIFORM, n, 1234, 99);
        int z = random_node(&t, dt, IR_RANDOM_NORMAL, n, 1234, 99);
        tg_run(&t, NULL);
        double su = 0, su2 = 0, sz = 0, sz2 = 0;
        int64_t bad = 0; /* counted, not asserted per element: Check's asserts cost a syscall */
        for (int64_t k = 0; k < n; k++) {
            double a = getf(t.out[u], dt, k), b = getf(t.out[z], dt, k);
            bad += !(a >= 0 && a < 1) + !(isfinite(b) && fabs(b) < 8.6);
            su += a, su2 += a * a, sz += b, sz2 += b * b;
        }
        ck_assert_int_eq(bad, 0);
        double mu = su / n, vu = su2 / n - mu * mu, mz = sz / n, vz = sz2 / n - mz * mz;
        ck_assert_msg(fabs(mu - 0.5) < 0.002, "uniform mean %g", mu);
        ck_assert_msg(fabs(vu - 1.0 / 12) < 0.002, "uniform variance %g", vu);
        ck_assert_msg(fabs(mz) < 0.01, "normal mean %g", mz);
        ck_assert_msg(fabs(sqrt(vz) - 1) < 0.01, "normal std %g", sqrt(vz));
        tg_fini(&t);
    }
}
END_TEST

/* ---- memory ------------------------------------------------------------ */

START_TEST(quota_reaches_every_allocation)
{
    struct tg t;
    tg_init(&t);
    int64_t xs[2] = {4, 6}, ys[1] = {3};
    double x[24] = {0};
    int nx = tg_array(&t, IR_DTYPE_FLOAT64, 2, xs, x);
    int r = tg_ok(&t, ir_add_reduce(&t.g, IR_REDUCE_ADD, nx, 1, false, &t.err));
    const char *ex[1] = {"i0/2"};
    reindex_reduce(&t, IR_REDUCE_MAX, r, 1, ys, ex, 0, NULL);
    int fails = 0;
    for (size_t quota = 0;; quota += 8) {
        void *sentinel;
        void **out = &sentinel; /* must be reset to NULL on failure */
        struct ir_error err = {0};
        int rc = ir_interp_run_quota(&t.g, NULL, quota, &out, &err);
        if (rc == KILN_OK) {
            ir_interp_free(&t.g, out);
            break;
        }
        ck_assert_int_eq(rc, KILN_ENOMEM);
        ck_assert_int_eq(err.code, KILN_ENOMEM);
        ck_assert_ptr_null(out);
        ck_assert_msg(strstr(err.message, "quota") != NULL, "%s", err.message);
        fails++;
        ck_assert_int_lt(quota, 4096);
    }
    /* 192 + 48 + (48 acc) + 24 + (24 acc) bytes: failures at many points. */
    ck_assert_int_ge(fails, 30);
    tg_fini(&t);
}
END_TEST

START_TEST(enomem_from_malloc)
{
    /* 2^40 float64 elements: 8 TiB, which malloc refuses unless the
     * kernel overcommits without limit (then the test would fill it). */
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = f && fgetc(f) == '1';
    if (f)
        fclose(f);
    if (mode)
        return;
    struct tg t;
    tg_init(&t);
    int64_t shape[2] = {INT64_C(1) << 20, INT64_C(1) << 20};
    tg_ok(&t, ir_add_const(&t.g, IR_DTYPE_FLOAT64, 2, shape, (struct ir_scalar){.f = 1}, &t.err));
    void **out = NULL;
    struct ir_error err = {0};
    ck_assert_int_eq(ir_interp_run(&t.g, NULL, &out, &err), KILN_ENOMEM);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err.message, "const") != NULL, "names the op: %s", err.message);
    tg_fini(&t);
}
END_TEST

START_TEST(empty_graph)
{
    struct tg t;
    tg_init(&t);
    tg_run(&t, NULL);
    ck_assert_ptr_nonnull(t.out);
    tg_fini(&t);
}
END_TEST

static Suite *interp_suite(void)
{
    Suite *s = suite_create("interp");
    TCase *ew = tcase_create("elementwise");
    tcase_set_timeout(ew, 120);
    tcase_add_test(ew, unary_all_dtypes);
    tcase_add_test(ew, binary_all_dtypes);
    tcase_add_test(ew, cast_all_pairs);
    tcase_add_test(ew, where_all_dtypes);
    suite_add_tcase(s, ew);
    TCase *edge = tcase_create("edges");
    tcase_add_test(edge, edge_integer_wrap);
    tcase_add_test(edge, edge_floor_div_mod_int);
    tcase_add_test(edge, edge_floor_div_mod_float);
    tcase_add_test(edge, edge_pow);
    tcase_add_test(edge, edge_shifts);
    tcase_add_test(edge, edge_nan_and_float_unary);
    tcase_add_test(edge, edge_cast);
    suite_add_tcase(s, edge);
    TCase *shape = tcase_create("shapes");
    tcase_set_timeout(shape, 120);
    tcase_add_test(shape, sources_and_copies);
    tcase_add_test(shape, index_op);
    tcase_add_test(shape, broadcast_cases);
    tcase_add_test(shape, reduce_all);
    tcase_add_test(shape, reduce_edges);
    tcase_add_test(shape, reduce_order);
    tcase_add_test(shape, reduce_order_blocks);
    tcase_add_test(shape, empty_graph);
    suite_add_tcase(s, shape);
    TCase *ri = tcase_create("reindex");
    tcase_set_timeout(ri, 60);
    tcase_add_test(ri, reindex_conv2d);
    tcase_add_test(ri, reindex_pooling);
    tcase_add_test(ri, reindex_reduce_conv_transpose);
    tcase_add_test(ri, reindex_gather_and_conds);
    tcase_add_test(ri, reindex_reduce_ops);
    tcase_add_test(ri, reindex_all_dtypes);
    suite_add_tcase(s, ri);
    TCase *rnd_tc = tcase_create("random");
    tcase_set_timeout(rnd_tc, 120);
    tcase_add_test(rnd_tc, philox_known_answers);
    tcase_add_test(rnd_tc, random_reproducible);
    tcase_add_test(rnd_tc, random_statistics);
    suite_add_tcase(s, rnd_tc);
    TCase *mem = tcase_create("memory");
    tcase_add_test(mem, quota_reaches_every_allocation);
    tcase_add_test(mem, enomem_from_malloc);
    suite_add_tcase(s, mem);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(interp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
