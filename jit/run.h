/* run.h: the JIT executor — plans, compiles (with caches) and runs a
 * graph's fused kernels on a thread pool.
 *
 * jit_run() is the fast counterpart of ir_interp_run() (interp.h) and
 * computes the same bytes for every output. For each graph it:
 *  1. looks the graph signature up in the plan cache (jit_fuse_plan on a
 *     miss), so a training loop resubmitting one structure skips fusion;
 *  2. for each group, producers first, looks its kernel key up in the
 *     kernel cache (codegen + libtcc compile on a miss: compiles are
 *     serialised by the jit_compiler, DESIGN's one compile worker);
 *  3. allocates the group's sinks (charged against max_bytes; a buffer
 *     is freed as soon as its last reader has run, unless it is an output),
 *     fills the params from the current graph, and splits each kernel's
 *     range over the pool.
 * Cache entries are checked against the node kinds they were made for, so
 * a 64-bit key collision is caught rather than run. Both caches are
 * bounded; the least recently used entry that no run holds is evicted.
 *
 * Tiers (DESIGN.md "Fusion and code generation"). With a cc tier (cc.h)
 * given in the options, each cached kernel adds up the wall time of its
 * launches; once that passes cc_threshold_ns it is queued for the system
 * compiler (promote.h: a background thread, in batches) and its -O3 code
 * is swapped in when ready. A kernel's code is refcounted apart from its
 * cache entry: a run takes a reference on the code current when it
 * starts and uses it for all of its launches (init, main, fini), so the
 * swap happens between runs and old code is unloaded only after the last
 * run on it has finished. A kernel-cache miss also asks the cc tier's
 * caches (objects loaded now, then the disk) first, so a restarted daemon
 * starts on the -O3 code it compiled before. Both tiers give the same
 * bytes (cc.h says why).
 *
 * Threads: one runtime serves every thread: jit_run may be called
 * concurrently (caches are locked; kernels are refcounted while in use).
 */
#ifndef KILN_JIT_RUN_H
#define KILN_JIT_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc.h"
#include "ir.h"
#include "mem.h"
#include "tcc.h"

/* What the daemon passes as cc_threshold_ns unless told otherwise. */
#define JIT_CC_THRESHOLD_NS_DEFAULT ((uint64_t) 50 * 1000000)

struct jit_runtime_opts {
    struct jit_compiler *compiler; /* required */
    unsigned threads;     /* helper threads splitting kernels (0: the caller alone) */
    uint32_t max_kernels; /* kernel cache entries (0: 4096) */
    uint32_t max_plans;   /* plan cache entries (0: 1024) */
    /* The cc tier, or NULL for libtcc alone. The caller keeps it and frees
     * it after the runtime (call jit_cc_cancel first to cut a compile in
     * progress short at shutdown). */
    struct jit_cc *cc;
    /* Run time after which a kernel is recompiled by cc: 0 promotes a
     * kernel after its first run (tests). Ignored without cc. */
    uint64_t cc_threshold_ns;
};

/* Counters since the runtime was made, for STATUS. */
struct jit_runtime_stats {
    uint64_t kernels_compiled; /* kernel-cache misses compiled */
    uint64_t kernel_hits;      /* kernel-cache hits */
    uint64_t compile_ns;       /* codegen + compile time of those misses */
    uint64_t plans_made;       /* plan-cache misses planned */
    uint64_t plan_hits;
    uint64_t kernels_run;      /* group launches */
    uint32_t kernels_cached, plans_cached; /* entries now */
    /* Relay groups (jit/relay.h): run, and of those by the library. */
    bool relay_library; /* built with oneDNN and its engine started */
    uint64_t relay_runs, relay_library_runs;
    /* The cc tier (all 0 without one). */
    bool cc_enabled;
    uint32_t cc_kernels;        /* cached kernels running cc code now */
    uint64_t kernels_promoted;  /* kernels queued for cc (their run time passed the threshold) */
    uint64_t cc_swapped;        /* of which swapped to cc code (the rest failed or wait) */
    uint64_t cc_loaded;         /* kernel-cache misses served by cc code already built */
    uint64_t cc_compiles;       /* kernels the system compiler built */
    uint64_t cc_batches;        /* compiler runs that made an object */
    uint64_t cc_failures;       /* kernels it could not build (they stay on libtcc) */
    uint64_t cc_compile_ns;     /* wall time of compiler runs (background) */
    uint64_t cc_disk_hits;      /* objects loaded from the on-disk cache */
    uint64_t cc_disk_writes;    /* entries written to it */
    uint64_t cc_disk_discarded; /* corrupt or foreign entries found and deleted */
};

/* What one jit_run did. */
struct jit_run_info {
    uint32_t groups;           /* kernels the graph fused into */
    uint32_t kernels_compiled; /* of which compiled by this run */
    uint32_t launched;         /* groups that ran a kernel (others had no elements) */
    uint32_t cc_groups;        /* of which on cc-compiled code */
    bool plan_hit;
    uint64_t compile_ns;
};

struct jit_runtime;

int jit_runtime_new(const struct jit_runtime_opts *o, struct jit_runtime **out);
void jit_runtime_free(struct jit_runtime *rt); /* no run may be active; NULL ok */
void jit_runtime_stats(struct jit_runtime *rt, struct jit_runtime_stats *out);

/* Waits until the cc tier has nothing queued or compiling (at most
 * timeout_ns): true when idle, or when there is no cc tier. For tests and
 * benchmarks; steps never wait for it. */
bool jit_runtime_cc_drain(struct jit_runtime *rt, uint64_t timeout_ns);

/* Runs `g` (externs as for ir_interp_run) and returns in *out an array of
 * g->count pointers: the value of every node with is_output[i] set (never
 * NULL, even for zero elements), NULL elsewhere: buffers from `mem`
 * (jit_mem_alloc with the node's byte size; NULL: plain allocation) that
 * the caller gives back with jit_mem_free, or all at once with
 * jit_run_free. Intermediates come from `mem` and go back to it.
 * Returns:
 *   KILN_OK
 *   KILN_ENOMEM     memory, or max_bytes exceeded: err names the node
 *                   whose buffer did not fit
 *   KILN_ELIMIT, KILN_EINTERNAL  a group could not be generated or
 *                   compiled (err says which): the caller may run the
 *                   graph with the interpreter instead.
 * info may be NULL. */
int jit_run(struct jit_runtime *rt, const struct ir_graph *g, const bool *is_output,
            const void *const *externs, struct jit_mem *mem, size_t max_bytes, void ***out,
            struct jit_run_info *info, struct ir_error *err);

/* What one run may spend compiling (a user's quotas, daemon/auth.h): a
 * kernel-cache miss once `kernels` kernels were compiled by this run, or
 * once its compile time reached `compile_ns`, fails the run with
 * KILN_EQUOTA (err names the group) instead of compiling. Cache hits
 * cost nothing. A compile may overshoot compile_ns by its own length. */
struct jit_run_budget {
    uint64_t kernels;
    uint64_t compile_ns;
};

/* jit_run within `budget` (NULL: none). */
int jit_run_budgeted(struct jit_runtime *rt, const struct ir_graph *g, const bool *is_output,
                     const void *const *externs, struct jit_mem *mem, size_t max_bytes,
                     const struct jit_run_budget *budget, void ***out, struct jit_run_info *info,
                     struct ir_error *err);

void jit_run_free(const struct ir_graph *g, void **out);

/* The fused plan of (g, is_output) from the plan cache (planned on a
 * miss), for another executor of the same plans (cuda_run.h). The plan
 * stays valid until jit_runtime_plan_put(ref). NULL: err says why (memory,
 * or a graph the planner refuses). */
struct jit_plan;
struct jit_plan_ref {
    void *entry;
    bool owned;
};
const struct jit_plan *jit_runtime_plan_get(struct jit_runtime *rt, const struct ir_graph *g,
                                            const bool *is_output, struct jit_plan_ref *ref,
                                            bool *hit, struct ir_error *err);
void jit_runtime_plan_put(struct jit_runtime *rt, struct jit_plan_ref *ref);

/* `bytes` of host memory from `mem` for node `node`'s value, counted in
 * *held against `max` (a step's memory quota): NULL with err filled
 * (KILN_ENOMEM naming the node) when over the quota or out of memory.
 * For executors of jit plans (run.c, cuda_run.c). */
void *jit_run_charge(struct jit_mem *mem, size_t *held, size_t max, const struct ir_graph *g,
                     uint32_t node, size_t bytes, struct ir_error *err);

/* Copies node nd's value from src to dst (its numel elements); bools are
 * written as canonical 0/1, as every copy of a value is. */
void jit_copy_value(void *dst, const void *src, const struct ir_node *nd);

/* What a cached kernel of group gi is checked against besides its key
 * (the group's kind, and (op, dtype, rank) of its inputs and members):
 * malloc'd, *n words; NULL when out of memory. */
uint32_t *jit_kernel_check(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           uint32_t *n);

#endif
