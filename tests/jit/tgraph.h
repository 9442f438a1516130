/* tgraph.h: small graph-building helpers shared by the jit tests, and a
 * random DAG generator (element-wise, broadcast, reshape, reindex and
 * reduce nodes over float32) whose structure depends only on its seed. */
#ifndef KILN_TESTS_TGRAPH_H
#define KILN_TESTS_TGRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "fuse.h"
#include "ir.h"

#define MAXN 512

struct tg {
    struct ir_graph g;
    struct ir_error err;
    bool out[MAXN];
    struct jit_plan plan;
};

void tg_init(struct tg *t);
void tg_fini(struct tg *t);
/* Each asserts (Check) that the constructor accepted the node. */
int ok(struct tg *t, int r);
int ext(struct tg *t, int rank, const int64_t *shape);
int un(struct tg *t, enum ir_op op, int x);
int bin(struct tg *t, enum ir_op op, int a, int b);
int bcast(struct tg *t, int x, int rank, const int64_t *shape, uint16_t dims);
int red(struct tg *t, enum ir_reduce_op op, int x, uint16_t dims, bool keep);
int cnst(struct tg *t, int rank, const int64_t *shape, double v);
int reindex(struct tg *t, int x, int rank, const int64_t *shape, int nexprs,
            const char *const *exprs, int nextras, const int *extras);

/* A reindex (op 0) or reindex_reduce (op an ir_reduce_op) from index
 * expression text, with conditions, extras and the overflow value;
 * asserts that the constructor accepted it. */
int reindex_text(struct ir_graph *g, int op, int x, int rank, const int64_t *shape, int nexprs,
                 const char *const *exprs, int nconds, const char *const *conds, int nextras,
                 const int *extras, struct ir_scalar ovf);

/* Graphs the op tests share (test_run.c runs them against the
 * interpreter, test_cuda.c compiles them), each into an empty `g`, of
 * dtype `dt`:
 *   build_broadcasting   a size-1 dim stretched, a new dim, a scalar
 *   build_sources        const of every dtype, index, random of both
 *                        distributions, reshape (of bools too), and an
 *                        int8 array of the 60 `bytes`
 *   build_reindex        extras, a condition, the overflow value, then a
 *                        transpose-and-flip of a computed value
 *   build_reindex_reduce reindex_reduce `op` of abs(x) with an extra and a
 *                        condition; returns x */
void build_broadcasting(struct ir_graph *g, int dt);
void build_sources(struct ir_graph *g, const uint8_t bytes[60]);
void build_reindex(struct ir_graph *g, int dt);
int build_reindex_reduce(struct ir_graph *g, int op, int dt);

uint64_t rng(uint64_t *s);
/* A random DAG over shapes [A], [A,B], [A,1], [A*B] and []; the same seed
 * gives the same structure at any sizes A != B (both > 1). Marks the last
 * node and a few random ones as outputs. */
void random_graph(struct tg *t, uint64_t seed, int64_t A, int64_t B, int nnodes);

#endif
