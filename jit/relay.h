/* relay.h: relay groups — a matmul or convolution handed to a library.
 *
 * The fusion planner puts every relay op (kernels/relay_ref.h) in a group
 * of its own (JIT_GROUP_RELAY); the runtime calls jit_relay_run for it
 * with the operands' buffers, row-major and contiguous as every
 * materialised value is. float32 matmuls go to oneDNN's sgemm (one call
 * per batch element), float32 convolutions and their two gradients to
 * oneDNN's convolution primitives (in whatever memory layout oneDNN
 * prefers for this machine, with reorders to and from kiln's row-major
 * NCHW around them). Everything else (float64; a build without oneDNN; a
 * shape oneDNN refuses) runs the reference loops of relay_ref.h split
 * over the worker pool. Results agree with the reference within float
 * tolerance (the library sums in its own order, in float).
 *
 * Primitives are made once per (op, shapes, attributes) and kept in a
 * small LRU cache; each run brings its own scratch memory, so runs of
 * several sessions may share a primitive at once. Threads: every function
 * is safe to call from any thread.
 */
#ifndef KILN_JIT_RELAY_H
#define KILN_JIT_RELAY_H

#include <stdbool.h>

#include "ir.h"
#include "pool.h"

struct jit_relay;

/* Counters for STATUS (jit.relay). */
struct jit_relay_stats {
    bool library;          /* built with oneDNN */
    uint64_t runs;         /* relay groups run */
    uint64_t library_runs; /* of which by the library */
    uint64_t primitives;   /* primitives made */
};

/* Built with oneDNN (the relays run in the library, not the reference). */
bool jit_relay_has_library(void);

/* `threads`: how many threads a library call may use (0: the library's
 * default, every CPU). */
int jit_relay_new(unsigned threads, struct jit_relay **out);
void jit_relay_free(struct jit_relay *r); /* NULL ok; no run may be active */
void jit_relay_stats(struct jit_relay *r, struct jit_relay_stats *out);

/* Computes relay node `n` of `g` from `a` and `b` (its two inputs' data)
 * into `y` (n's numel elements). Returns KILN_OK, or KILN_ENOMEM with
 * `err` filled. */
int jit_relay_run(struct jit_relay *r, struct jit_pool *pool, const struct ir_graph *g,
                  uint32_t n, const void *a, const void *b, void *y, struct ir_error *err);

#endif
