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
 * (jit/embed_text.py -> vmath_text.h) that jit/ops_c.c puts in the kernel
 * prelude, so libtcc and the cc tier compile the very same text. With
 * -ffp-contract=off everywhere (meson.build, JIT_CC_FLAGS) and IEEE double
 * and float arithmetic on every tier, all three give the same bits. Hence
 * the rules this text keeps: plain C99 that libtcc accepts, no #include,
 * no builtins, no libm, bit casts through unions; it needs only the
 * typedefs int32_t, uint32_t, uint64_t (the prelude and <stdint.h> both
 * give them). gcc vectorises it with -fno-trapping-math (jit/cc.h).
 * Names start with kiln_vm; kiln_vm__ ones are internal.
 *
 * How. Two kinds of internals, chosen by measurement. exp, tanh and
 * sigmoid, which the hot element-wise chains call, work in float: a
 * 512-bit vector holds 16 of them, and the fused chain
 * sigmoid(x*a+b)*tanh(x)+x*x ran 1.5x faster (one core, CPU time) than
 * with the double versions. log and erf widen to double (exact), work
 * there and round once at the end, which keeps the error analysis short
 * and the results nearly always correctly rounded, at half the lanes.
 *
 *   exp (float):  n = round(x/ln2) by adding and subtracting 1.5*2^23;
 *         two-part (Cody-Waite) r = x - n*ln2; e^r = 1 + r + r^2*Q(r), Q a
 *         degree-4 fit (7.2e-8); 2^n from exponent bits, as two factors so that
 *         subnormal results and overflow round once (kiln_vm__expf_split).
 *   tanh (float): |x| < 0.55: x + x*z*P(z), z = x^2, P a degree-4
 *         fit (1.3e-8); else
 *         1 - 2/(e^(2|x|) + 1) with |x| clamped to 10; sign from x.
 *   sigmoid (float): e/(1 + e) for x < 0, 1/(1 + e) for x >= 0, with
 *         e = e^-|x| (never overflows; subnormal results come from e).
 *   exp (double, for erf): n = round(x/ln2) with 1.5*2^52; r = x - n*ln2
 *         (one constant: |n| <= 174, the product's rounding is < 2^-45);
 *         e^r = 1 + r*q(r), q a degree-6 Chebyshev fit (2.4e-10); 2^n
 *         from exponent bits; x clamped to [-120, 120].
 *   log (double): x = 2^k*m with m in [sqrt(1/2), sqrt(2)) by integer
 *         arithmetic on the double's bits (float subnormals are normal
 *         doubles); log m = 2s + 2s*z*g(z), s = (m-1)/(m+1), z = s^2, g a
 *         degree-3 fit of (atanh(s)/s - 1)/z (5.8e-10); plus k*ln2.
 *   erf (double): |x| < 1: x*P(x^2), P a degree-7 fit (3.4e-11); else
 *         1 - e^(-x^2)*R(|x|), R = erfc*e^(x^2) fitted in |x| - 2.5 on
 *         [1, 4] with degree 12 (1.7e-9; x^2 is exact in double); |x|
 *         clamped to 4 (erf = 1 in float from 3.92 on); sign from x.
 *
 * The fits are Chebyshev interpolants (mpmath.chebyfit), near minimax;
 * the numbers in parentheses are their errors on the range;
 * kernels/vmath_fit.py prints them.
 *
 * Error, measured against glibc's double functions rounded to float
 * (tests/kernels/test_vmath.c, which asserts these bounds over a sweep of
 * float32 inputs): exp, log, tanh, erf within 1 ulp of the correctly
 * rounded result, sigmoid within 2 ulp.
 *
 * Special values: NaN in, NaN out (the input, quieted: x + x); exp(-Inf)
 * = 0, exp(+Inf) = Inf; log(±0) = -Inf, log(x<0) = NaN, log(Inf) = Inf;
 * tanh(±Inf) = ±1, sigmoid(-Inf) = 0, sigmoid(Inf) = 1, erf(±Inf) = ±1;
 * tanh and erf keep the sign of ±0.
 */
#ifndef KILN_VMATH_H
#define KILN_VMATH_H

static inline uint64_t kiln_vm__bits(double x)
{
    union {
        double d;
        uint64_t u;
    } v;
    v.d = x;
    return v.u;
}

static inline double kiln_vm__from_bits(uint64_t u)
{
    union {
        double d;
        uint64_t u;
    } v;
    v.u = u;
    return v.d;
}

static inline uint32_t kiln_vm__bitsf(float x)
{
    union {
        float f;
        uint32_t u;
    } v;
    v.f = x;
    return v.u;
}

static inline float kiln_vm__from_bitsf(uint32_t u)
{
    union {
        float f;
        uint32_t u;
    } v;
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

/* e^x = s1*s2*(1 + p) in float, for the functions the JIT's hot chains
 * call (exp, tanh, sigmoid): 16 lanes to a vector instead of 8. n =
 * round(x/ln2) by the 1.5*2^23 trick; r = x - n*ln2 in two parts (ln2's
 * head has 15 bits, so n*head is exact for |n| < 256 and x - n*head is
 * exact); p = r + r^2*Q(r), Q a degree-4 fit (7.2e-8 on a range 2 % wider
 * than [-ln2/2, ln2/2]: the product x/ln2 is rounded before n is). x is
 * clamped to [-104, 89], beyond which float's exp is 0 or Inf, so |n| <=
 * 150, and 2^n is applied as two normal factors 2^(n/2) and 2^(n-n/2): the
 * second multiplication makes a subnormal or an overflow with one
 * rounding. */
struct kiln_vm__expf_parts {
    float s1, s2, p;
};

static inline struct kiln_vm__expf_parts kiln_vm__expf_split(float x)
{
    struct kiln_vm__expf_parts e;
    float t, n, r, q;
    int32_t k, h;
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    t = x * 1.44269504f + 12582912.0f;
    n = t - 12582912.0f;
    r = x - n * 0.693145751953125f;
    r = r - n * 1.42860677e-06f;
    q = 0.0013927684616575004f;
    q = q * r + 0.00836438069329107f;
    q = q * r + 0.04166654542109553f;
    q = q * r + 0.16666569628115477f;
    q = q * r + 0.5f;
    e.p = r + r * (r * q);
    /* bits(t) - bits(1.5*2^23) = n. */
    k = (int32_t) (kiln_vm__bitsf(t) - 0x4B400000u);
    h = k / 2;
    e.s1 = kiln_vm__from_bitsf((uint32_t) (h + 127) << 23);
    e.s2 = kiln_vm__from_bitsf((uint32_t) (k - h + 127) << 23);
    return e;
}

static inline float kiln_vm__expf(float x)
{
    struct kiln_vm__expf_parts e = kiln_vm__expf_split(x);
    return (e.s1 * (1.0f + e.p)) * e.s2;
}

static inline float kiln_vm_expf(float a)
{
    float r = kiln_vm__expf(a);
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

/* |x| < 0.55: x + x*z*P(z), z = x^2, P a degree-4 fit of
 * (tanh(x)/x - 1)/z (1.3e-8); else 1 - 2/(e^(2|x|) + 1), |x| clamped to
 * 10 (tanh = 1 in float from 9.01 on). The sign is x's (tanh(-0) = -0). */
static inline float kiln_vm_tanhf(float a)
{
    float x = kiln_vm__from_bitsf(kiln_vm__bitsf(a) & 0x7FFFFFFFu), z = x * x, p, c, big;
    p = -0.006610227831114735f;
    p = p * z + 0.021309388664443474f;
    p = p * z - 0.05390942882746055f;
    p = p * z + 0.1333311372902087f;
    p = p * z - 0.3333333200797698f;
    c = x > 10.0f ? 10.0f : x;
    big = 1.0f - 2.0f / (kiln_vm__expf(2.0f * c) + 1.0f);
    float r = kiln_vm__signf(x < 0.55f ? x + x * (z * p) : big, a);
    return a != a ? a + a : r;
}

/* e/(1 + e) for x < 0 and 1/(1 + e) for x >= 0, e = e^-|x| <= 1: no
 * overflow, and the subnormal results of large negative x come out of
 * e^x itself. */
static inline float kiln_vm_sigmoidf(float a)
{
    float x = kiln_vm__from_bitsf(kiln_vm__bitsf(a) & 0x7FFFFFFFu), e;
    e = kiln_vm__expf(-x);
    float r = (a < 0.0f ? e : 1.0f) / (1.0f + e);
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
