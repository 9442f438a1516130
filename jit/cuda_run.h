/* cuda_run.h: the device executor — runs a graph's fused plan on a CUDA
 * device and computes what jit_run (run.h) computes on the CPU.
 *
 * One jit_gpu per device: the device's primary context (made with
 * blocking synchronisation, so a worker waiting for the device sleeps
 * instead of spinning on a core CPU steps need), a cache of loaded
 * modules (kernel key and check words -> CUmodule and its entry points),
 * the caching device pool (devpool.h) and the resident buffers, the
 * relays' libraries (cuda_relay.h), and pairs of pinned staging buffers,
 * one taken by each run while it copies (so pinned memory grows with the
 * runs on the device at once, not with sessions). One jit_gpu_stream per
 * session: a CUDA stream and the relays' handles bound to it, so that
 * sessions' uploads, kernels and downloads overlap with each other's
 * while each session's own work stays in order. Making and freeing a
 * stream may wait for the device: the daemon does both on workers.
 *
 * A run (jit_gpu_run, on a daemon worker):
 *  1. takes the plan from the CPU runtime's plan cache (the same plans);
 *  2. gives each input a device buffer: a resident one (below) when the
 *     caller tagged the input and its tag is resident, else an upload
 *     through the run's pinned staging buffers, in chunks, double
 *     buffered, so the copy of one chunk into pinned memory overlaps the
 *     transfer of the one before;
 *  3. for each group, producers first: its sinks come from the pool; a
 *     kernel group is generated as CUDA (codegen_cuda.h), compiled by
 *     NVRTC to a cubin for the device's own architecture (or to PTX where
 *     this NVRTC cannot assemble for it: jit_gpu_stats.arch says which),
 *     through cuda_disk.h (memory, disk, then NVRTC on this worker;
 *     workers compile in parallel), loaded once, and launched as
 *     jit_codegen_cuda_launches() says; a relay group goes to cuBLAS or
 *     cuDNN, or, for what they refuse (float64 convolutions, a missing
 *     library), to the reference loops on the host between a download and
 *     an upload; a buffer of the run's own goes back to the pool (tagged
 *     with the stream, so only this stream reuses it before the run ends)
 *     once its last reader is enqueued;
 *  4. downloads every output into host memory from the caller's jit_mem,
 *     as jit_run returns them; outputs the caller tagged stay resident;
 *  5. synchronises the stream and checks it; only then may its pool
 *     blocks go to other streams, the resident values it read be evicted
 *     (their readers are done) and the modules it launched be unloaded.
 *
 * Resident buffers. Session values are immutable once computed, and the
 * daemon gives each value a tag that no other value ever gets (never
 * reused), so a device copy under that tag stays right for the value's
 * whole life: the parameters and optimizer state of a training loop
 * stay on the device from step to step and are uploaded once. The host
 * copy is always written too (write-through): the daemon's memory, spill,
 * FETCH and the CPU path keep working unchanged, and a resident buffer
 * can be dropped at any time without losing anything. When the pool
 * cannot serve an allocation within its limit, it first gives back its
 * cached free blocks, then drops the least recently used resident
 * buffers that no run is reading (counted as evictions); a value dropped
 * so is uploaded again the next time a step reads it. jit_gpu_forget()
 * drops a tag for good (the daemon calls it when the value is freed).
 *
 * Faults. A CUDA error that leaves the context unusable (illegal address,
 * launch failure, device-side trap, ECC: jit_cuda_error_is_sticky) fails
 * the run with KILN_EDEVICE naming the error and the group (or, when it
 * only shows at the final synchronisation, the call), also when the run
 * had already failed otherwise, and marks the device failed (a sticky
 * error met by an allocation too): every later run fails at once, and
 * jit_gpu_failed() says so; the daemon then stops (DESIGN.md "GPU": its
 * supervisor restarts it). Other driver errors fail the run alone
 * (KILN_ENOMEM for device memory, KILN_EINTERNAL otherwise).
 *
 * Threads: jit_gpu_run may run on any number of threads at once for
 * different streams; a stream is used by one run at a time.
 */
#ifndef KILN_JIT_CUDA_RUN_H
#define KILN_JIT_CUDA_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_dl.h"
#include "ir.h"
#include "mem.h"
#include "run.h"

/* Bytes of each of a staging pair's two pinned buffers. */
#define JIT_GPU_STAGE_BYTES ((size_t) 8 << 20)

struct jit_gpu_opts {
    int ordinal;           /* which device (jit_cuda_info's list) */
    size_t mem_limit;      /* device pool limit; 0: 90 % of the memory free at open */
    const char *cache_dir; /* compiled modules on disk (cuda_disk.h); NULL: memory only */
    uint64_t cache_max;    /* its byte cap; 0: its default */
    bool host_relays;      /* don't load cuBLAS/cuDNN: relays run on the host (tests) */
};

struct jit_gpu_stats {
    char name[JIT_CUDA_NAME_MAX + 1];
    int cc_major, cc_minor, sms;
    char arch[16];       /* what modules are compiled for: "sm_90" (cubins), or "compute_90" (PTX) */
    uint64_t mem_total; /* bytes on the card */
    uint64_t pool_limit, pool_in_use, pool_cached, pool_peak;
    uint64_t resident, resident_bytes; /* values kept on the device now */
    uint64_t resident_hits;            /* inputs served by a resident buffer */
    uint64_t evictions;                /* resident buffers dropped under memory pressure */
    uint64_t uploads, upload_bytes, downloads, download_bytes;
    uint64_t modules; /* loaded now */
    uint64_t module_loads, module_hits;
    uint64_t ptx_compiles, ptx_disk_hits, compile_ns;
    uint64_t launches, relay_runs, relay_fallbacks, runs, failed_runs;
    bool failed;                    /* a sticky error: the device serves nothing more */
    char why[JIT_CUDA_WHY_MAX + 1]; /* failed: the error */
};

struct jit_gpu;
struct jit_gpu_stream;

/* Opens device o->ordinal of `cuda` (whose driver must be loaded) for
 * plans from `rt`. Both must outlive the jit_gpu. KILN_OK; KILN_EUNSUPPORTED
 * (no driver, no such device, no NVRTC): why says which; KILN_ENOMEM;
 * KILN_EINTERNAL (the driver refused: why says how). */
int jit_gpu_open(struct jit_cuda *cuda, struct jit_runtime *rt, const struct jit_gpu_opts *o,
                 struct jit_gpu **out, char *why, size_t whylen);
void jit_gpu_close(struct jit_gpu *d); /* no run active, every stream freed; NULL ok */

int jit_gpu_stream_new(struct jit_gpu *d, struct jit_gpu_stream **out);
void jit_gpu_stream_free(struct jit_gpu_stream *s); /* NULL ok; waits for its work */

/* Runs g as jit_run does (same outputs, same ownership: buffers from
 * `mem` for every is_output node), on stream s. extern_tags[slot]: the
 * resident tag of extern `slot`'s value (0: none, upload it); out_tags[i]:
 * keep output i resident under that tag (0: don't); either array may be
 * NULL. Returns KILN_OK; KILN_ENOMEM (host: max_bytes or memory; device:
 * the pool); KILN_EDEVICE (the device failed, now or before); KILN_ELIMIT
 * or KILN_EINTERNAL (a group could not be generated or compiled: the
 * caller may run the graph on the CPU instead). */
int jit_gpu_run(struct jit_gpu *d, struct jit_gpu_stream *s, const struct ir_graph *g,
                const bool *is_output, const void *const *externs, const uint64_t *extern_tags,
                const uint64_t *out_tags, struct jit_mem *mem, size_t max_bytes, void ***out,
                struct jit_run_info *info, struct ir_error *err);

/* What else a run may be told. */
struct jit_gpu_run_opts {
    const uint64_t *in_tags, *out_tags;  /* as jit_gpu_run's extern_tags and out_tags */
    const struct jit_run_budget *budget; /* module misses NVRTC compiled count; NULL: none */
    bool tf32; /* the client allows TF32 in this run's matmuls and convolutions */
    /* The device memory the run holds (its inputs, intermediates and
     * results while it runs; values kept resident afterwards are the
     * device's cache, not the run's) is added to *dev_account (atomically:
     * several runs of one user share it) and taken off as it is released;
     * an allocation that would take it past dev_limit (0: none) fails the
     * run with KILN_EQUOTA, its message starting "device_memory quota".
     * dev_account NULL: not counted. */
    uint64_t *dev_account;
    uint64_t dev_limit;
};

/* jit_gpu_run with options (o NULL: none). */
int jit_gpu_run_opt(struct jit_gpu *d, struct jit_gpu_stream *s, const struct ir_graph *g,
                    const bool *is_output, const void *const *externs, struct jit_mem *mem,
                    size_t max_bytes, const struct jit_gpu_run_opts *o, void ***out,
                    struct jit_run_info *info, struct ir_error *err);

/* Drops the resident buffer of `tag`, if any (at once, or when the last
 * run reading it ends). Any thread. */
void jit_gpu_forget(struct jit_gpu *d, uint64_t tag);

/* True once a sticky error hit the device; why (may be NULL) gets it. */
bool jit_gpu_failed(struct jit_gpu *d, char *why, size_t whylen);

void jit_gpu_stats(struct jit_gpu *d, struct jit_gpu_stats *out);

#endif
