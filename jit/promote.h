/* promote.h: the cc tier's background worker — one thread that takes hot
 * kernels' sources, compiles them in batches with the system compiler
 * (cc.h) and hands each result back through a callback.
 *
 * The executor (run.c) submits a kernel when its accumulated run time
 * passes the threshold; the worker waits a short window after the first
 * submission for others to join (kernels of one step tend to get hot
 * together), looks each up in the cc tier's caches first (memory, then
 * disk), compiles the rest as one translation unit, and calls `done` once
 * per submission, on the worker thread, with the kernel (or a zeroed one
 * when it could not be built). Nothing here touches a step's critical
 * path: jit_promote_submit only queues.
 *
 * Threads: submit, drain and stats from any thread; free from one thread
 * once no submit can race with it. `done` runs on the worker (and, for
 * jobs still queued, on the thread calling jit_promote_free, with
 * cancelled set).
 */
#ifndef KILN_JIT_PROMOTE_H
#define KILN_JIT_PROMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "cc.h"

#define JIT_PROMOTE_BATCH   64                        /* kernels per compiler run at most */
#define JIT_PROMOTE_WAIT_NS ((uint64_t) 20 * 1000000) /* window for a batch to fill */

/* The result of one submission. k->lib == NULL: not built (cancelled
 * tells whether because the worker is stopping). The callee owns *k. */
typedef void (*jit_promote_done)(void *ctx, void *tag, struct jit_cc_kernel *k, bool cancelled);

struct jit_promote;

/* Starts the worker. KILN_OK, KILN_ENOMEM, KILN_EINTERNAL (no thread). */
int jit_promote_new(struct jit_cc *cc, jit_promote_done done, void *ctx, struct jit_promote **out);

/* Stops the worker (a compile in progress finishes unless jit_cc_cancel
 * was called), reports still-queued jobs as cancelled, joins, frees.
 * NULL ok. */
void jit_promote_free(struct jit_promote *p);

/* Queues `source` (malloc'd; taken, also on failure) under `tag`. False
 * when the worker is stopping: then done() is not called. */
bool jit_promote_submit(struct jit_promote *p, void *tag, char *source);

/* Waits until nothing is queued or compiling, at most timeout_ns: true
 * when idle. What is queued is compiled at once, without the batch
 * window. For tests and benchmarks. */
bool jit_promote_drain(struct jit_promote *p, uint64_t timeout_ns);

#endif
