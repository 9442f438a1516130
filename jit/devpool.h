/* devpool.h: a caching pool of device memory (one per GPU).
 *
 * cuMemAlloc and cuMemFree are slow (cuMemFree synchronises the device), and
 * a training loop asks for the same sizes every step, so freed blocks are
 * kept and handed out again. The pool knows nothing of CUDA: a backend
 * (two function pointers and a context) obtains and returns memory, and
 * pointers are plain uint64_t device addresses. The tests use malloc.
 *
 * Sizes. Requests are rounded up: below JIT_DEVPOOL_LARGE (1 MiB) to a
 * multiple of JIT_DEVPOOL_SMALL_ROUND (512 B), from it on to a multiple of
 * JIT_DEVPOOL_LARGE_ROUND (2 MiB). A block is always exactly what the
 * backend gave for one request; blocks are never split or merged.
 *
 * Reuse. An allocation takes the smallest cached block that fits (best
 * fit), but only a block at most twice the rounded request: a 64 MiB block
 * is not spent on a 1 KiB tensor. That rule is dropped when memory is
 * short (the limit is reached and no cached block can be given back): any
 * cached block that fits is better than a refusal.
 *
 * Streams. A block freed with a tag (a stream) may still be read or
 * written by work queued on that stream. Until jit_devpool_release_tag()
 * says the stream was synchronised, the block is handed out only to
 * allocations with the same tag (work queued later on one stream runs
 * later, so that reuse is safe) and is never given back to the backend by
 * trimming. Tag 0 means "no work pending": the block is free for everyone.
 *
 * The limit counts bytes obtained from the backend (in use + cached). An
 * allocation that would pass it, or that the backend refuses, first gives
 * cached tag-0 blocks back to the backend (the least recently freed
 * first), then calls the backend's reclaim hook (which moves cold buffers
 * to host memory and frees their blocks into this pool), then tries again.
 * Only when reclaim frees nothing more is the allocation refused.
 *
 * Threads. Every function may be called from any thread (one mutex). The
 * backend's alloc and free run without the mutex held (cuMemFree may wait
 * for the device); bytes being obtained are counted against the limit
 * while the call runs, so concurrent allocations never pass it together.
 * reclaim is always called without the mutex held and may call
 * jit_devpool_free. jit_devpool_free_pool only when no other call runs.
 */
#ifndef KILN_JIT_DEVPOOL_H
#define KILN_JIT_DEVPOOL_H

#include <stddef.h>
#include <stdint.h>

#define JIT_DEVPOOL_SMALL_ROUND ((size_t) 512)
#define JIT_DEVPOOL_LARGE       ((size_t) 1 << 20)
#define JIT_DEVPOOL_LARGE_ROUND ((size_t) 2 << 20)
/* Rounds of reclaim one allocation may ask for before it is refused. */
#define JIT_DEVPOOL_MAX_RECLAIMS 16

struct jit_devpool_backend {
    void *ctx;
    int (*alloc)(void *ctx, size_t bytes, uint64_t *ptr); /* KILN_OK or KILN_ENOMEM */
    void (*free)(void *ctx, uint64_t ptr, size_t bytes);
    /* Called (without the pool's lock held) when the limit or the backend
     * refuses `need` bytes even after the pool gave back its cached
     * blocks: the owner moves cold buffers elsewhere (to host) and
     * jit_devpool_free()s them; returns bytes it freed (0: nothing left to
     * move). May be NULL. */
    size_t (*reclaim)(void *ctx, size_t need);
};

struct jit_devpool;

/* A pool over backend `b` (copied), obtaining at most `limit` bytes from
 * it (0: no limit). KILN_OK or KILN_ENOMEM. */
int jit_devpool_new(const struct jit_devpool_backend *b, size_t limit, struct jit_devpool **out);

/* Gives every cached block back (tagged ones too: their streams must be
 * idle) and frees the pool. Blocks still in use are the caller's bug: they
 * are given back as well. NULL ok. */
void jit_devpool_free_pool(struct jit_devpool *p);

/* A block of at least `bytes` (0 ok), usable on stream tag `tag`.
 * KILN_ENOMEM when neither the cache, the backend within `limit`, nor
 * reclaim can serve it. */
int jit_devpool_alloc(struct jit_devpool *p, size_t bytes, uint64_t tag, uint64_t *ptr);

/* Returns a block (`bytes`: what it was allocated for). Work on stream
 * `tag` may still be using it: until jit_devpool_release_tag(tag) the
 * block is reused only by allocations with the same tag. tag 0: free for
 * everyone at once. */
void jit_devpool_free(struct jit_devpool *p, uint64_t ptr, size_t bytes, uint64_t tag);

/* The stream `tag` was synchronised: its cached blocks become free for
 * everyone (and may be trimmed). */
void jit_devpool_release_tag(struct jit_devpool *p, uint64_t tag);

/* Gives the cached tag-0 blocks back to the backend. */
void jit_devpool_trim(struct jit_devpool *p);

struct jit_devpool_stats {
    uint64_t in_use;          /* bytes of blocks handed out (rounded sizes) */
    uint64_t cached;          /* bytes of free blocks kept */
    uint64_t limit;           /* the limit (UINT64_MAX: none) */
    uint64_t peak;            /* most bytes held from the backend at once */
    uint64_t allocs;          /* jit_devpool_alloc calls */
    uint64_t cache_hits;      /* ... served by a cached block */
    uint64_t backend_allocs;  /* backend allocations that succeeded */
    uint64_t backend_frees;   /* blocks given back to the backend */
    uint64_t reclaims;        /* calls of the reclaim hook */
    uint64_t reclaimed_bytes; /* bytes those calls said they freed */
    uint64_t refused;         /* allocations refused (KILN_ENOMEM) */
};

void jit_devpool_stats(struct jit_devpool *p, struct jit_devpool_stats *out);

#endif
