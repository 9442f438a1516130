/* philox.c: Philox4x32-10 (Salmon et al., 2011) and its number rules.
 *
 * Written from the paper's definition, round by round as Random123's
 * philox4x32round: two 32x32->64 multiplies, the high halves mixed with
 * the other words and the key, the key bumped by the Weyl constants
 * between rounds. The conversions are documented in philox.h, which is
 * the contract GPU code follows.
 */
#include "philox.h"

#include <math.h>

/* 2*pi rounded to double; the same constant generated code must use. */
#define PHILOX_TWO_PI 6.283185307179586476925286766559

static void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t) PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t) PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t) (p0 >> 32), lo0 = (uint32_t) p0;
    uint32_t hi1 = (uint32_t) (p1 >> 32), lo1 = (uint32_t) p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

void philox_4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        if (r > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = c[i];
}

void philox_block(uint64_t seed, uint64_t counter, uint32_t out[4])
{
    const uint32_t key[2] = {(uint32_t) seed, (uint32_t) (seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t) counter, (uint32_t) (counter >> 32), 0, 0};
    philox_4x32_10(ctr, key, out);
}

/* The top 53 bits of the 64-bit word (hi:lo). */
static uint64_t philox_bits53(uint32_t hi, uint32_t lo)
{
    return (((uint64_t) hi << 32) | lo) >> 11;
}

float philox_uniform_f32(const uint32_t r[4])
{
    return (float) (r[0] >> 8) * 0x1p-24f;
}

double philox_uniform_f64(const uint32_t r[4])
{
    return (double) philox_bits53(r[0], r[1]) * 0x1p-53;
}

static double philox_box_muller(double u1, double u2)
{
    return sqrt(-2.0 * log(u1)) * cos(PHILOX_TWO_PI * u2);
}

float philox_normal_f32(const uint32_t r[4])
{
    double u1 = (double) ((r[0] >> 8) + 1) * 0x1p-24;
    double u2 = (double) (r[1] >> 8) * 0x1p-24;
    return (float) philox_box_muller(u1, u2);
}

double philox_normal_f64(const uint32_t r[4])
{
    double u1 = (double) (philox_bits53(r[0], r[1]) + 1) * 0x1p-53;
    double u2 = (double) philox_bits53(r[2], r[3]) * 0x1p-53;
    return philox_box_muller(u1, u2);
}
