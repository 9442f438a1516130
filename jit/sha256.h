/* sha256.h: SHA-256 (FIPS 180-4), for the keys and checksums of the cc
 * tier's on-disk cache (cc.h).
 *
 * A cached object is code the daemon will run, found by the hash of the
 * source it was built from: a collision would run the wrong kernel, so
 * the key is a cryptographic hash rather than the 64-bit mixes the
 * in-memory caches use (which double-check node kinds instead). The same
 * function checksums the cached bytes. Plain C, no allocation.
 *
 * Threads: a context belongs to one thread; the functions are pure.
 */
#ifndef KILN_JIT_SHA256_H
#define KILN_JIT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define JIT_SHA256_BYTES 32

struct jit_sha256 {
    uint32_t h[8];
    uint64_t bytes;    /* message length so far */
    uint8_t block[64]; /* pending input */
    size_t used;       /* bytes in block */
};

void jit_sha256_init(struct jit_sha256 *s);
void jit_sha256_add(struct jit_sha256 *s, const void *data, size_t n);
void jit_sha256_final(struct jit_sha256 *s, uint8_t out[JIT_SHA256_BYTES]);

/* One call: out = SHA-256(data[0..n)). */
void jit_sha256(const void *data, size_t n, uint8_t out[JIT_SHA256_BYTES]);

/* A digest as 64 lower-case hex digits and a NUL. */
void jit_sha256_hex(const uint8_t d[JIT_SHA256_BYTES], char hex[2 * JIT_SHA256_BYTES + 1]);

#endif
