#!/usr/bin/env python3
"""vmath_fit.py: prints the polynomial coefficients of kernels/vmath.h
(lowest degree first) and each fit's error on its range. Needs mpmath.
Not part of the build: run it by hand when a fit changes."""
import mpmath as mp

mp.mp.dps = 40


def fit(name, f, lo, hi, deg):
    c, err = mp.chebyfit(f, [lo, hi], deg + 1, error=True)
    print('%s: degree %d on [%.6g, %.6g], error %.3e' % (name, deg, lo, hi, float(err)))
    for x in c[::-1]:
        print('    %r' % float(x))


ln2 = mp.log(2)
# float exp: e^r = 1 + r + r^2*Q(r), on a range 2 % wider than ln2/2.
h = ln2 / 2 * 1.02
fit('expf Q', lambda r: (mp.expm1(r) - r) / r**2 if r != 0 else mp.mpf(1) / 2, -h, h, 4)
# float tanh, |x| < 0.55: tanh(x) = x + x*z*P(z), z = x^2.
fit('tanhf P', lambda z: (mp.tanh(mp.sqrt(z)) / mp.sqrt(z) - 1) / z if z != 0 else -mp.mpf(1) / 3,
    0, 0.3025, 4)
# double exp (erf's): e^r = 1 + r*q(r) on [-ln2/2, ln2/2].
fit('exp q', lambda r: mp.expm1(r) / r if r != 0 else mp.mpf(1), -ln2 / 2, ln2 / 2, 6)
# log: log m = 2s + 2s*z*g(z), z = s^2, |s| <= (sqrt2-1)/(sqrt2+1).
smax = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
fit('log g', lambda z: (mp.atanh(mp.sqrt(z)) / mp.sqrt(z) - 1) / z if z != 0 else mp.mpf(1) / 3,
    0, smax**2 * 1.0001, 3)
# erf, |x| < 1: erf(x) = x*P(x^2).
fit('erf P', lambda z: mp.erf(mp.sqrt(z)) / mp.sqrt(z) if z != 0 else 2 / mp.sqrt(mp.pi), 0, 1, 7)
# erf, 1 <= |x| <= 4: erf = 1 - exp(-x^2)*R, R fitted in u = |x| - 2.5.
fit('erf R', lambda u: mp.erfc(u + 2.5) * mp.exp((u + 2.5)**2), -1.5, 1.5, 12)
