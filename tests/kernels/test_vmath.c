/* test_vmath.c: kiln's own float32 exp, log, tanh, sigmoid and erf
 * (kernels/vmath.h) against glibc's double functions rounded to float.
 *
 * glibc's double exp, log, tanh and erf are within about one double ulp,
 * so rounding them to float gives the correctly rounded float32 result
 * except where the true value lies within ~2^-29 float ulps of a rounding
 * boundary: a good enough stand-in for "correctly rounded". The bounds
 * asserted, max_ulp[], are the ones vmath.h states; the sweep visits every
 * 97th float32 bit pattern (both signs, every exponent) plus every pattern
 * in windows around the places where each function changes regime
 * (overflow, underflow, saturation, the erf switch at 1, tiny arguments).
 * (SWEEP_STRIDE 1, all 2^32 inputs, takes minutes; run by hand it gave the
 * same maximum.) Special values must be exact, bit for bit.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmath.h"

/* Sanitizer builds are slower: a sparser sweep there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SWEEP_STRIDE 1999u
#else
#define SWEEP_STRIDE 97u
#endif
#define WINDOW 32768u /* bit patterns either side of a critical value */

enum fn { FN_EXP, FN_LOG, FN_TANH, FN_SIGMOID, FN_ERF, FN_COUNT };

static const char *const fn_name[FN_COUNT] = {"exp", "log", "tanh", "sigmoid", "erf"};

/* The stated error bounds, in ulps of the correctly rounded result. */
static const int64_t max_ulp[FN_COUNT] = {1, 1, 1, 2, 1};

static float ours(enum fn f, float x)
{
    switch (f) {
    case FN_EXP:
        return kiln_vm_expf(x);
    case FN_LOG:
        return kiln_vm_logf(x);
    case FN_TANH:
        return kiln_vm_tanhf(x);
    case FN_SIGMOID:
        return kiln_vm_sigmoidf(x);
    default:
        return kiln_vm_erff(x);
    }
}

static float reference(enum fn f, float x)
{
    double d = x;
    switch (f) {
    case FN_EXP:
        return (float) exp(d);
    case FN_LOG:
        return (float) log(d);
    case FN_TANH:
        return (float) tanh(d);
    case FN_SIGMOID:
        return (float) (1.0 / (1.0 + exp(-d)));
    default:
        return (float) erf(d);
    }
}

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Ordinal of a non-NaN float: consecutive floats differ by 1, and -0 and
 * +0 are the same point. */
static int64_t ordinal(float x)
{
    uint32_t u = bits(x);
    return (u & 0x80000000u) ? -(int64_t) (u & 0x7fffffffu) : (int64_t) u;
}

/* What a sweep found. Failures are counted and the first one kept, and
 * asserted after the sweep: a Check assertion per input costs a write to
 * the runner's pipe. */
struct tally {
    int64_t max_ulp;
    float worst;
    uint64_t n, not_cr, failures;
    char first[160];
};

static void note_failure(struct tally *t, enum fn f, float x, float got, float want,
                         const char *why)
{
    if (t->failures++ == 0)
        snprintf(t->first, sizeof t->first, "%s(%a): got %a, want %a (%s)", fn_name[f], (double) x,
                 (double) got, (double) want, why);
}

static void check_one(enum fn f, float x, struct tally *t)
{
    float got = ours(f, x), want = reference(f, x);
    t->n++;
    if (isnan(want) || isnan(got)) {
        if (isnan(want) != isnan(got))
            note_failure(t, f, x, got, want, "NaN");
        return;
    }
    /* Same sign, zeros included (-0 where the true result is -0). */
    if (signbit(got) != signbit(want))
        note_failure(t, f, x, got, want, "sign");
    int64_t d = llabs(ordinal(got) - ordinal(want));
    if (d != 0)
        t->not_cr++;
    if (d > t->max_ulp) {
        t->max_ulp = d;
        t->worst = x;
    }
}

static void check_window(enum fn f, float centre, struct tally *t)
{
    for (int s = 0; s < 2; s++) {
        uint32_t c = bits(s ? -centre : centre);
        for (uint32_t k = c > WINDOW ? c - WINDOW : 0; k < c + WINDOW; k++)
            check_one(f, from_bits(k), t);
    }
}

/* Where each function changes regime; both signs are visited. */
static const float critical[FN_COUNT][6] = {
    [FN_EXP] = {88.72283f, 103.97208f, 87.33655f, 0x1p-24f, 1.0f, 0.34657359f},
    [FN_LOG] = {1.0f, 1.41421356f, 0.70710678f, 0x1p-126f, 3.4e38f, 2.0f},
    [FN_TANH] = {9.01091f, 10.0f, 0x1p-12f, 0.17328679f, 1.0f, 0x1p-126f},
    [FN_SIGMOID] = {103.97208f, 88.72283f, 16.635532f, 0x1p-24f, 1.0f, 0.0f},
    [FN_ERF] = {1.0f, 3.9192059f, 4.0f, 0x1p-12f, 0x1p-126f, 2.5f},
};

START_TEST(sweep_error_bound)
{
    enum fn f = (enum fn) _i;
    struct tally t = {0};
    for (uint64_t b = 0; b <= 0xffffffffu; b += SWEEP_STRIDE)
        check_one(f, from_bits((uint32_t) b), &t);
    for (int k = 0; k < 6; k++)
        check_window(f, critical[f][k], &t);
    printf("vmath %-7s %llu inputs: max %lld ulp (at %a), %.2e not correctly rounded\n", fn_name[f],
           (unsigned long long) t.n, (long long) t.max_ulp, (double) t.worst,
           (double) t.not_cr / (double) t.n);
    ck_assert_msg(t.failures == 0, "%llu failures, the first: %s", (unsigned long long) t.failures,
                  t.first);
    ck_assert_msg(t.max_ulp <= max_ulp[f], "%s: %lld ulp at %a, bound %lld", fn_name[f],
                  (long long) t.max_ulp, (double) t.worst, (long long) max_ulp[f]);
}
END_TEST

/* got must be want bit for bit. */
static void exact(float got, float want, const char *what)
{
    ck_assert_msg(bits(got) == bits(want), "%s: got %a (0x%08x), want %a (0x%08x)", what,
                  (double) got, bits(got), (double) want, bits(want));
}

START_TEST(special_values)
{
    const float inf = INFINITY, qnan = from_bits(0x7fc01234u), snan = from_bits(0xff801234u);
    /* NaN in: the input NaN out, quieted. */
    for (enum fn f = 0; f < FN_COUNT; f++) {
        exact(ours(f, qnan), qnan, fn_name[f]);
        exact(ours(f, snan), from_bits(0xffc01234u), fn_name[f]);
    }
    exact(kiln_vm_expf(0.0f), 1.0f, "exp(0)");
    exact(kiln_vm_expf(-0.0f), 1.0f, "exp(-0)");
    exact(kiln_vm_expf(inf), inf, "exp(inf)");
    exact(kiln_vm_expf(-inf), 0.0f, "exp(-inf)");
    exact(kiln_vm_expf(88.8f), inf, "exp(88.8) overflows");
    exact(kiln_vm_expf(1e30f), inf, "exp(1e30)");
    exact(kiln_vm_expf(-104.0f), 0.0f, "exp(-104) underflows");
    exact(kiln_vm_expf(-1e30f), 0.0f, "exp(-1e30)");
    exact(kiln_vm_expf(-103.0f), (float) exp(-103.0), "exp(-103) is subnormal");
    exact(kiln_vm_expf(1.0f), 2.71828182845904523536f, "exp(1)");
    exact(kiln_vm_logf(1.0f), 0.0f, "log(1) is +0");
    exact(kiln_vm_logf(0.0f), -inf, "log(0)");
    exact(kiln_vm_logf(-0.0f), -inf, "log(-0)");
    exact(kiln_vm_logf(inf), inf, "log(inf)");
    ck_assert(isnan(kiln_vm_logf(-1.0f)));
    ck_assert(isnan(kiln_vm_logf(-inf)));
    ck_assert(isnan(kiln_vm_logf(-0x1p-149f)));
    exact(kiln_vm_logf(0x1p-149f), (float) log(0x1p-149), "log(smallest subnormal)");
    exact(kiln_vm_logf(2.0f), 0.693147180559945309f, "log(2)");
    exact(kiln_vm_tanhf(0.0f), 0.0f, "tanh(0)");
    exact(kiln_vm_tanhf(-0.0f), -0.0f, "tanh(-0)");
    exact(kiln_vm_tanhf(inf), 1.0f, "tanh(inf)");
    exact(kiln_vm_tanhf(-inf), -1.0f, "tanh(-inf)");
    exact(kiln_vm_tanhf(20.0f), 1.0f, "tanh(20)");
    exact(kiln_vm_tanhf(1e-30f), 1e-30f, "tanh(tiny) = tiny");
    exact(kiln_vm_tanhf(-0x1p-149f), -0x1p-149f, "tanh(-subnormal)");
    exact(kiln_vm_sigmoidf(0.0f), 0.5f, "sigmoid(0)");
    exact(kiln_vm_sigmoidf(-0.0f), 0.5f, "sigmoid(-0)");
    exact(kiln_vm_sigmoidf(inf), 1.0f, "sigmoid(inf)");
    exact(kiln_vm_sigmoidf(-inf), 0.0f, "sigmoid(-inf)");
    exact(kiln_vm_sigmoidf(1000.0f), 1.0f, "sigmoid(1000)");
    exact(kiln_vm_sigmoidf(-1000.0f), 0.0f, "sigmoid(-1000)");
    exact(kiln_vm_erff(0.0f), 0.0f, "erf(0)");
    exact(kiln_vm_erff(-0.0f), -0.0f, "erf(-0)");
    exact(kiln_vm_erff(inf), 1.0f, "erf(inf)");
    exact(kiln_vm_erff(-inf), -1.0f, "erf(-inf)");
    exact(kiln_vm_erff(-5.0f), -1.0f, "erf(-5)");
    exact(kiln_vm_erff(-0x1p-149f), (float) erf(-0x1p-149), "erf(-subnormal)");
}
END_TEST

static Suite *vmath_suite(void)
{
    Suite *s = suite_create("vmath");
    TCase *t = tcase_create("vmath");
    tcase_set_timeout(t, 240);
    tcase_add_loop_test(t, sweep_error_bound, 0, FN_COUNT);
    tcase_add_test(t, special_values);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(vmath_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
