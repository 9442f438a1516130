/* mem.h: a caching allocator for tensor buffers.
 *
 * Big buffers (JIT_MEM_MIN_CACHED bytes and up) freed into a jit_mem are
 * kept, up to its capacity, and handed out again for the next request of
 * the same size class (the size rounded up to a page). A training loop
 * allocates the same sizes every step, so after the first step its
 * buffers come back without mmap, page faults and zeroing by the kernel.
 * Smaller buffers go straight to malloc and free.
 *
 * The daemon gives each session its own jit_mem: a buffer one client's
 * step freed is only ever reused by that client's steps, never seen by
 * another tenant. A jit_mem is refcounted because kept vars may outlive
 * their session (a step still running when it ends); the last unref frees
 * the cached blocks.
 *
 * Contract: a block given to jit_mem_free must come from jit_mem_alloc of
 * the same jit_mem (or any, they share the layout) with the same `bytes`.
 * Buffers are 64-byte aligned. Threads: every function may be called from
 * any thread (one mutex).
 */
#ifndef KILN_JIT_MEM_H
#define KILN_JIT_MEM_H

#include <stddef.h>

#define JIT_MEM_MIN_CACHED ((size_t) 64 << 10) /* smaller buffers are not cached */

struct jit_mem;

/* A new allocator keeping at most `capacity` bytes of free blocks, with
 * one reference; NULL when out of memory. */
struct jit_mem *jit_mem_new(size_t capacity);
void jit_mem_ref(struct jit_mem *m);
void jit_mem_unref(struct jit_mem *m); /* NULL ok */

/* A buffer of at least `bytes` (never NULL for 0 bytes), or NULL when out
 * of memory. m may be NULL: plain allocation. */
void *jit_mem_alloc(struct jit_mem *m, size_t bytes);
/* Gives a buffer back (kept for reuse or freed). m may be NULL; p may be
 * NULL. */
void jit_mem_free(struct jit_mem *m, void *p, size_t bytes);

/* Free every cached block now (memory pressure: the daemon is spilling
 * tensors to disk, so idle blocks are better given back). m may be NULL. */
void jit_mem_trim(struct jit_mem *m);

/* Bytes of free blocks held now. */
size_t jit_mem_cached(struct jit_mem *m);

#endif
