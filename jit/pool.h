/* pool.h: a fixed set of threads that split one loop range at a time.
 *
 * The executor runs a kernel over [0, n) by handing the pool a function
 * and a range; the range is cut into chunks that the pool's threads and
 * the calling thread take in turn, and jit_pool_for returns when every
 * chunk is done. Several callers (steps of different sessions) may call
 * jit_pool_for at once: their jobs share the threads, each caller always
 * working on its own job too, so a job never waits for a thread to free.
 *
 * Threads: jit_pool_for from any number of threads; new/free from one.
 */
#ifndef KILN_JIT_POOL_H
#define KILN_JIT_POOL_H

#include <stdint.h>

struct jit_pool;

typedef void (*jit_pool_fn)(void *arg, int64_t begin, int64_t end);

/* A pool with `threads` helper threads (0: the caller does all the work).
 * KILN_OK, KILN_ENOMEM or KILN_EINTERNAL (thread creation failed). */
int jit_pool_new(unsigned threads, struct jit_pool **out);

/* Stops and joins the threads. No jit_pool_for may be running. NULL ok. */
void jit_pool_free(struct jit_pool *p);

/* Runs fn over [0, n) in chunks of at least `grain` (>= 1) iterations;
 * returns when all are done. A NULL pool runs fn(arg, 0, n) inline. */
void jit_pool_for(struct jit_pool *p, int64_t n, int64_t grain, jit_pool_fn fn, void *arg);

/* Helper threads of the pool (0 for NULL). */
unsigned jit_pool_threads(const struct jit_pool *p);

#endif
