/* cuda_disk.h: compiled CUDA modules (PTX), cached in memory and on disk,
 * compiled by NVRTC at most once at a time per source.
 *
 * NVRTC takes 17-23 ms per module (FACTS.md), and a restarted daemon sees
 * the same fused groups again, so the executor asks this cache for the
 * PTX of a module's source instead of calling NVRTC itself:
 *     key = SHA-256(format version, NVRTC version, architecture,
 *                   codegen_cuda.h's options and in-memory headers, source)
 * The answer comes from an in-memory LRU of recent modules (at most
 * JIT_CUDA_MODCACHE_MEM_ENTRIES entries and JIT_CUDA_MODCACHE_MEM_BYTES
 * bytes), then from <dir>/<hex key>.kptx, else from NVRTC, whose PTX is
 * then written to disk. Disk entries have disk_cache.h's format (magic
 * "KILNPTX\x01", one key, the PTX as payload) with its integrity checks,
 * atomic writes, ownership rules and byte cap: a truncated, corrupt or
 * foreign entry is deleted, counted in disk_discarded and compiled again.
 *
 * Single flight: callers asking for a source whose lookup or compile is in
 * flight wait for that one (counted in `waits`) and share its result,
 * failures included; different sources are looked up and compiled in
 * parallel (NVRTC has no global lock).
 *
 * Without NVRTC (not installed, or kilnd built with -Dcuda=disabled, whose
 * cuda_dl_none.c this builds against) every request answers
 * KILN_EUNSUPPORTED.
 *
 * Threads: jit_cuda_modcache_ptx and _stats from any number of threads;
 * new and free from one, with no other call running. The jit_cuda given
 * to _new must outlive the cache.
 */
#ifndef KILN_JIT_CUDA_DISK_H
#define KILN_JIT_CUDA_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_dl.h"

#define JIT_CUDA_MODCACHE_DISK_DEFAULT ((uint64_t) 256 << 20) /* bytes on disk */
#define JIT_CUDA_MODCACHE_MEM_ENTRIES  256                    /* modules kept in memory */
#define JIT_CUDA_MODCACHE_MEM_BYTES    ((size_t) 64 << 20)    /* bytes of PTX kept in memory */
#define JIT_CUDA_MODCACHE_MAX_PTX      ((uint64_t) 64 << 20)  /* a larger module is not kept */
#define JIT_CUDA_MODCACHE_ARCH_MAX     31                     /* bytes of an architecture name */

struct jit_cuda_modcache;

/* A cache compiling with `cuda`'s NVRTC. dir NULL (or ""): memory only;
 * otherwise the directory is made (0700) if missing, and one that cannot
 * be used (not ours, a symlink, not writable) leaves the cache memory-only.
 * max_disk_bytes 0: JIT_CUDA_MODCACHE_DISK_DEFAULT. KILN_OK or KILN_ENOMEM. */
int jit_cuda_modcache_new(struct jit_cuda *cuda, const char *dir, uint64_t max_disk_bytes,
                          struct jit_cuda_modcache **out);
void jit_cuda_modcache_free(struct jit_cuda_modcache *m); /* NULL ok */

/* The PTX of `src` (compiled with codegen_cuda.h's options and headers:
 * jit_codegen_cuda_options / jit_codegen_cuda_headers, the architecture
 * option replaced by `arch`, e.g. JIT_CUDA_ARCH), from memory, then disk,
 * else NVRTC. Concurrent callers with the same source wait for the one
 * compile in flight (single flight); different sources compile in
 * parallel. *ptx is the caller's (malloc'd, NUL-terminated), *len its
 * length. *from_disk / *compiled say where it came from (either may be
 * NULL; both false: memory). *log (when log != NULL) is NVRTC's log on
 * KILN_EINTERNAL, else NULL; the caller frees it. Errors:
 * KILN_EUNSUPPORTED (no NVRTC), KILN_EINTERNAL (NVRTC refused the
 * source), KILN_EVALUE (`arch` is not a name of letters, digits and '_' of
 * at most JIT_CUDA_MODCACHE_ARCH_MAX bytes), KILN_ENOMEM. */
int jit_cuda_modcache_ptx(struct jit_cuda_modcache *m, const char *src, const char *arch,
                          char **ptx, size_t *len, bool *from_disk, bool *compiled, char **log);

struct jit_cuda_modcache_stats {
    uint64_t mem_hits;       /* answered from memory */
    uint64_t disk_hits;      /* answered by a disk entry */
    uint64_t compiles;       /* NVRTC runs, failed ones too */
    uint64_t compile_ns;     /* their wall time */
    uint64_t disk_writes;    /* entries written */
    uint64_t disk_discarded; /* entries found corrupt, truncated or foreign, deleted */
    uint64_t waits;          /* callers that waited for another's lookup or compile */
    uint64_t disk_evicted;   /* entries deleted to keep the directory under its cap */
    uint64_t disk_errors;    /* entries that could not be written */
};

void jit_cuda_modcache_stats(struct jit_cuda_modcache *m, struct jit_cuda_modcache_stats *out);

/* Tests: computes keys as if NVRTC were version major.minor (a cache
 * written by another NVRTC must miss). */
void jit_cuda_modcache_pretend_nvrtc(struct jit_cuda_modcache *m, int major, int minor);

#endif
