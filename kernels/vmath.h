/* vmath.h: kiln's own float32 exp, log, tanh, sigmoid and erf — the one
 * text every tier computes them with.
 *
 * Why our own. A float32 transcendental used to be libm's double function
 * rounded once to float. That is nearly correctly rounded, but a call to
 * libm cannot be vectorised, so the cc tier ran the fused chain
 * sigmoid(x*a+b)*tanh(x)+x*x at a few per cent of memory bandwidth. These
 * functions are straight-line arithmetic (selects, no branches, no tables,
 * no calls), so gcc -O3 -march=native vectorises a loop that calls them.
 *
 * One source, every tier. The reference interpreter (interp_scalar.c)
 * #includes this file; meson turns the same file into a string literal
 * (jit/vmath_text.py -> vmath_text.h) that jit/ops_c.c puts in the kernel
 * prelude, so libtcc and the cc tier compile the very same text. With
 * -ffp-contract=off everywhere (meson.build, JIT_CC_FLAGS) and IEEE double
 * and float arithmetic on every tier, all three give the same bits. Hence
 * the rules this text keeps: plain C99 that libtcc accepts, no #include,
 * no builtins, no libm, bit casts through unions; it needs only the
 * typedefs uint32_t, uint64_t (the prelude and <stdint.h> both give them).
 * Names start with kiln_vm; kiln_vm__ ones are internal.
 *
 * How. Each function widens its float argument to double (exact), works
 * in double, and rounds once to float at the end. Double makes the error
 * analysis short: the argument reductions are exact or nearly so, and
 * polynomials fitted to ~2^-30 relative error leave the double result
 * within far less than half a float ulp of the true value, so the float
 * result is the correctly rounded one or its neighbour (within 1 ulp;
 * tests/kernels/test_vmath.c sweeps float32 and asserts it). On AVX-512 a
 * float vector of 16 becomes two double vectors of 8; float internals
 * would need two-part reductions and error-compensated steps, which
 * without FMA cost about as much.
 *
 *   exp:  n = round(x/ln2) by adding and subtracting 1.5*2^52 (round to
 *         nearest even, exact); r = x - n*ln2, |r| <= ln2/2 (one double
 *         constant: |n| <= 174, the product's rounding is < 2^-45);
 *         e^r - 1 = r*q(r), q a degree-6 Chebyshev fit (2.4e-10);
 *         2^n built from the exponent bits of the rounded sum. x is
 *         clamped to [-120, 120], where e^x is a normal double beyond
 *         float's range both ways, so the final rounding to float makes
 *         the overflow to Inf and the subnormals and underflow to 0.
 *   expm1 (internal, for tanh): 2^n*(r*q) + (2^n - 1), exact-ish near 0.
 *   log:  x = 2^k*m with m in [sqrt(1/2), sqrt(2)) by integer arithmetic
 *         on the double's bits (float subnormals are normal doubles);
 *         log m = 2s + 2s*z*g(z), s = (m-1)/(m+1), z = s^2, g a degree-3
 *         fit of (atanh(s)/s - 1)/z (5.8e-10); plus k*ln2.
 *   tanh: |t| = e/(e+2) with e = expm1(2|x|) (no cancellation near 0:
 *         tanh(x) rounds to x for tiny x), |x| clamped to 10 (tanh = 1
 *         in float from 9.01 on); the sign copied from x (tanh(-0) = -0).
 *   sigmoid: 1/(1 + e^-x).
 *   erf:  |x| < 1: x*P(x^2), P a degree-7 fit (3.4e-11); else
 *         1 - e^(-x^2)*R(|x|), R = erfc*e^(x^2) fitted in |x| - 2.5 on
 *         [1, 4] with degree 12 (1.7e-9; x^2 is exact in double); |x|
 *         clamped to 4 (erf = 1 in float from 3.92 on); sign from x.
 *
 * Special values: NaN in, NaN out (the input, quieted: x + x); exp(-Inf)
 * = 0, exp(+Inf) = Inf; log(±0) = -Inf, log(x<0) = NaN, log(Inf) = Inf;
 * tanh(±Inf) = ±1, sigmoid(-Inf) = 0, sigmoid(Inf) = 1, erf(±Inf) = ±1;
 * tanh and erf keep the sign of ±0.
 *
 * Measured over every float32 (tests/kernels/test_vmath.c, against
 * glibc's double functions rounded to float): max error 1 ulp for each
 * function; see that test for the share of results that are not
 * correctly rounded.
 */
#ifndef KILN_VMATH_H
#define KILN_VMATH_H

static inline uint64_t kiln_vm__bits(double x)
{
    union { double d; uint64_t u; } v;
    v.d = x;
    return v.u;
}

static inline double kiln_vm__from_bits(uint64_t u)
{
    union { double d; uint64_t u; } v;
    v.u = u;
    return v.d;
}

static inline uint32_t kiln_vm__bitsf(float x)
{
    union { float f; uint32_t u; } v;
    v.f = x;
    return v.u;
}

static inline float kiln_vm__from_bitsf(uint32_t u)
{
    union { float f; uint32_t u; } v;
    v.u = u;
    return v.f;
}

/* r, with the sign bit of s (on floats: the results are never NaN here). */
static inline float kiln_vm__signf(float r, float s)
{
    return kiln_vm__from_bitsf(kiln_vm__bitsf(r) | (kiln_vm__bitsf(s) & 0x80000000u));
}

/* e^x = s*(1 + p): s = 2^n, p = e^r - 1. */
struct kiln_vm__exp_parts {
    double s, p;
};

static inline struct kiln_vm__exp_parts kiln_vm__exp_split(double x)
{
    struct kiln_vm__exp_parts e;
    double t, n, r, q;
    x = x < -120.0 ? -120.0 : x;
    x = x > 120.0 ? 120.0 : x;
    /* 1.5*2^52: the sum's last mantissa bits hold round(x/ln2). */
    t = x * 1.4426950408889634 + 6755399441055744.0;
    n = t - 6755399441055744.0;
    r = x - n * 0.6931471805599453;
    q = 0.0001989927395864936;
    q = q * r + 0.0013941108433972674;
    q = q * r + 0.008333298483754886;
    q = q * r + 0.04166635289677516;
    q = q * r + 0.16666666718997508;
    q = q * r + 0.5000000047117757;
    q = q * r + 1.0;
    e.p = r * q;
    /* bits(t) - bits(1.5*2^52) = n; 2^n's exponent field is n + 1023. */
    e.s = kiln_vm__from_bits((kiln_vm__bits(t) - 0x4338000000000000u + 1023u) << 52);
    return e;
}

static inline double kiln_vm__exp(double x)
{
    struct kiln_vm__exp_parts e = kiln_vm__exp_split(x);
    return e.s + e.s * e.p;
}

/* e^x - 1 with a small relative error near 0 too. */
static inline double kiln_vm__expm1(double x)
{
    struct kiln_vm__exp_parts e = kiln_vm__exp_split(x);
    return e.s * e.p + (e.s - 1.0);
}

static inline float kiln_vm_expf(float a)
{
    float r = (float) kiln_vm__exp(a);
    return a != a ? a + a : r;
}

static inline float kiln_vm_logf(float a)
{
    double x = a, m, k, s, z, g, l;
    /* u = bits(x) - bits(sqrt(1/2)) + 2^63, no wrap for x > 0: its top 12
     * bits are k + 2048, its low 52 bits bits(m) - bits(sqrt(1/2)). */
    uint64_t u = kiln_vm__bits(x) + 0x8000000000000000u - 0x3FE6A09E667F3BCDu;
    m = kiln_vm__from_bits((u & 0x000FFFFFFFFFFFFFu) + 0x3FE6A09E667F3BCDu);
    /* k as a double without an int64 conversion (AVX2 has none). */
    k = kiln_vm__from_bits(0x4330000000000000u | (u >> 52)) - (4503599627370496.0 + 2048.0);
    s = (m - 1.0) / (m + 1.0);
    z = s * s;
    g = 0.11665290969120946;
    g = g * z + 0.14275408299855774;
    g = g * z + 0.20000060938486;
    g = g * z + 0.33333333277225824;
    l = k * 0.6931471805599453 + (2.0 * s + 2.0 * s * z * g);
    float r = (float) l;
    r = a < 0.0f ? kiln_vm__from_bitsf(0x7FC00000u) : r;
    r = a == 0.0f ? kiln_vm__from_bitsf(0xFF800000u) : r;
    r = a > 3.4028234663852886e38f ? a : r;
    return a != a ? a + a : r;
}

static inline float kiln_vm_tanhf(float a)
{
    double x = kiln_vm__from_bits(kiln_vm__bits((double) a) & 0x7FFFFFFFFFFFFFFFu), e;
    x = x > 10.0 ? 10.0 : x;
    e = kiln_vm__expm1(2.0 * x);
    float r = kiln_vm__signf((float) (e / (e + 2.0)), a);
    return a != a ? a + a : r;
}

static inline float kiln_vm_sigmoidf(float a)
{
    float r = (float) (1.0 / (1.0 + kiln_vm__exp(-(double) a)));
    return a != a ? a + a : r;
}

static inline float kiln_vm_erff(float a)
{
    double x = kiln_vm__from_bits(kiln_vm__bits((double) a) & 0x7FFFFFFFFFFFFFFFu);
    double z = x * x, p, t, u, big;
    p = -9.667044571486996e-06;
    p = p * z + 0.00011265959025606609;
    p = p * z - 0.0008484080405535107;
    p = p * z + 0.005221031807858023;
    p = p * z - 0.026865430727670243;
    p = p * z + 0.11283782495236845;
    p = p * z - 0.3761263846802871;
    p = p * z + 1.1283791670615435;
    t = x > 4.0 ? 4.0 : x;
    u = t - 2.5;
    big = 1.0301512994682683e-07;
    big = big * u - 4.264734348150259e-07;
    big = big * u + 9.763901572173902e-07;
    big = big * u - 3.7472737729690635e-06;
    big = big * u + 1.6114106393804864e-05;
    big = big * u - 5.9523157031741315e-05;
    big = big * u + 0.0002109179637713861;
    big = big * u - 0.0007331529642909852;
    big = big * u + 0.0024670657614729186;
    big = big * u - 0.008001693887595496;
    big = big * u + 0.024937994751043007;
    big = big * u - 0.07434733674204068;
    big = big * u + 0.2108063640611436;
    big = 1.0 - kiln_vm__exp(-(t * t)) * big;
    float r = kiln_vm__signf((float) (x < 1.0 ? x * p : big), a);
    return a != a ? a + a : r;
}

#endif
