/* ctable.h: the bounded, checked hash tables behind the jit's caches
 * (run.c's plans and kernels, cuda_run.c's device modules).
 *
 * An entry starts with a struct centry: a bucket chain, its 64-bit key,
 * its use order and references, and the node kinds it was made for. A
 * lookup must match the check words as well as the key, so a 64-bit key
 * collision is never served. The table holds at most `max` entries; the
 * least recently used one that nothing references is the one evicted.
 *
 * Threads: none of its own; the owner's lock guards a table and its
 * entries' refs and ticks.
 */
#ifndef KILN_JIT_CTABLE_H
#define KILN_JIT_CTABLE_H

#include <stdbool.h>
#include <stdint.h>

struct centry {
    struct centry *next;
    uint64_t key, tick;
    uint32_t refs;
    uint32_t ncheck;
    uint32_t *check;
};

struct ctable {
    struct centry **b;
    uint32_t nb, n, max;
};

bool ctable_init(struct ctable *t, uint32_t max);
void ctable_fini(struct ctable *t); /* the buckets; the entries are the owner's */

/* The entry for key whose check matches, with a reference taken and its
 * use order refreshed; NULL when there is none. */
struct centry *ctable_hit(struct ctable *t, uint64_t *tick, uint64_t key, const uint32_t *check,
                          uint32_t ncheck);

/* Unlinks and returns the least recently used entry no one holds, or NULL. */
struct centry *ctable_take_lru(struct ctable *t);

/* Adds e if the table has room (take_lru first to make some); false when it
 * is full of entries in use. */
bool ctable_add(struct ctable *t, uint64_t *tick, struct centry *e);

/* Unlinks every entry and returns them as a list through ->next (for the
 * owner to free). */
struct centry *ctable_drain(struct ctable *t);

#endif
