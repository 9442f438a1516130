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

uint64_t rng(uint64_t *s);
/* A random DAG over shapes [A], [A,B], [A,1], [A*B] and []; the same seed
 * gives the same structure at any sizes A != B (both > 1). Marks the last
 * node and a few random ones as outputs. */
void random_graph(struct tg *t, uint64_t seed, int64_t A, int64_t B, int nnodes);

#endif
