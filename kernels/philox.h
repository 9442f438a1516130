/* philox.h: the Philox4x32-10 counter-based generator and the exact rules
 * that turn its words into floating-point numbers.
 *
 * RANDOM nodes must give the same numbers on every backend (interpreter,
 * generated C, CUDA), so the generator is counter-based: element k of a
 * RANDOM node is a pure function of (seed, offset + k), with no state to
 * carry between threads or kernels. Philox4x32-10 is the generator of
 * Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1,
 * 2, 3" (SC 2011), as shipped in Random123, cuRAND and JAX; it is checked
 * here against Random123's known-answer vectors.
 *
 * Block of element k of a node with seed s and offset o:
 *   key     = { s & 0xffffffff, s >> 32 }
 *   counter = { c & 0xffffffff, c >> 32, 0, 0 } with c = o + k (mod 2^64)
 *   r[0..3] = philox_4x32_10(counter, key)
 *
 * Words to numbers (all exact integer arithmetic, so reproducible bit for
 * bit; 2^-24 and 2^-53 scalings are exact):
 *   uniform float32: (r0 >> 8) * 2^-24                        in [0, 1)
 *   uniform float64: (((r0 << 32) | r1) >> 11) * 2^-53        in [0, 1)
 *   normal float32:  u1 = ((r0 >> 8) + 1) * 2^-24             in (0, 1]
 *                    u2 = (r1 >> 8) * 2^-24                   in [0, 1)
 *   normal float64:  u1 = ((((r0 << 32) | r1) >> 11) + 1) * 2^-53
 *                    u2 = (((r2 << 32) | r3) >> 11) * 2^-53
 *   normal value:    sqrt(-2 * log(u1)) * cos(2*pi * u2), evaluated in
 *                    double and rounded once to the dtype (the cosine
 *                    branch of Box-Muller; the sine branch is not used,
 *                    so each element owns its block and elements stay
 *                    independent of how work is split). u1 > 0, so the
 *                    log is finite and |value| < 8.6.
 * Uniform numbers are therefore bit-exact across backends; normal numbers
 * have bit-exact u1, u2 and differ only by the libm (or CUDA) error of
 * log, sqrt and cos: a few ulps.
 *
 * Threads: everything here is pure; any thread may call anything.
 */
#ifndef KILN_PHILOX_H
#define KILN_PHILOX_H

#include <stdint.h>

#define PHILOX_M0     UINT32_C(0xD2511F53) /* multiplier of words 0 and 1 */
#define PHILOX_M1     UINT32_C(0xCD9E8D57) /* multiplier of words 2 and 3 */
#define PHILOX_W0     UINT32_C(0x9E3779B9) /* key schedule: golden ratio */
#define PHILOX_W1     UINT32_C(0xBB67AE85) /* key schedule: sqrt(3) - 1 */
#define PHILOX_ROUNDS 10

/* One Philox4x32-10 block: out = philox(ctr, key). out may alias ctr. */
void philox_4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The block of counter `counter` under key `seed`, laid out as above. */
void philox_block(uint64_t seed, uint64_t counter, uint32_t out[4]);

/* The numbers of one block, by the rules above. */
float philox_uniform_f32(const uint32_t r[4]);
double philox_uniform_f64(const uint32_t r[4]);
float philox_normal_f32(const uint32_t r[4]);
double philox_normal_f64(const uint32_t r[4]);

#endif
