/* exec.h: running steps, and answering FETCH when their values are ready.
 *
 * Each session has a queue of steps; its steps run one at a time, in the
 * order they were submitted, while steps of different sessions run at the
 * same time on libuv's worker threads, at most `workers` at once. Which
 * session's step takes a free worker is decided by one fair scheduler
 * (exec.c): users share the workers in proportion to their weights
 * (auth.h), measured in the kernel time their steps actually used, and
 * each user's sessions share its part the same way.
 *
 * Admission: a session may have EXEC_QUEUE_PER_SESSION steps waiting and
 * EXEC_INFLIGHT_PER_SESSION bytes in its queued steps (BUSY beyond); a
 * user's sessions together at most its queued_steps quota, and its steps
 * compile within its kernels and compile_ms_per_minute quotas (QUOTA). A step runs on a worker (so the
 * loop thread never blocks on compute) and its results come back to the
 * loop thread, which makes the kept vars READY (or FAILED) and answers the
 * FETCH requests that were waiting for them.
 *
 * A step runs on the JIT (jit/run.h: fused kernels compiled by libtcc,
 * split over a thread pool), or on the reference interpreter
 * (kernels/interp.h) with --executor interp, on a host that forbids JIT
 * pages, or for the rare graph the JIT refuses (a group deeper than the
 * code generator allows); the results are the same bytes either way.
 *
 * A FETCH whose vars are not ready yet is deferred (srv_defer) until they
 * are, its timeout passes (KILN_ENOTREADY), the session ends
 * (KILN_ESESSION) or the daemon drains (KILN_ESHUTDOWN). Deferred FETCHes
 * hold server contexts, so their number is bounded per session and in all
 * (KILN_EBUSY beyond).
 *
 * Loop thread only, except the worker function, which touches nothing
 * but its own step.
 */
#ifndef KILND_EXEC_H
#define KILND_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>
#include <uv.h>

#include "log.h"
#include "server.h"
#include "session.h"
#include "stats.h"
#include "cc.h"
#include "cuda_run.h"
#include "step.h"
#include "tcc.h"

#define EXEC_WAITS_PER_SESSION 4                 /* deferred FETCHes per session */
#define EXEC_WAITS_MAX         (SRV_CONTEXTS / 2) /* and in all: half the contexts */
#define EXEC_QUEUE_PER_SESSION 64                 /* steps of a session waiting to run */
#define EXEC_CACHE_PER_SESSION ((size_t) 256 << 20) /* freed buffers a session keeps for reuse */
#define EXEC_INFLIGHT_PER_SESSION ((uint64_t) 1 << 30) /* bytes its queued steps may hold */

struct exec_wait;

struct exec {
    uv_loop_t *loop;
    struct sess_table *sessions;
    struct srv *srv;
    struct stats *stats;
    const struct log *log;
    uint64_t max_reply; /* bytes one FETCH reply may hold */
    struct exec_wait *waits;
    uint32_t nwaits;
    struct exec_sess *ready; /* sessions with a step to start and none running */
    uint64_t vclock;         /* the fair scheduler's clock (exec.c) */
    uv_timer_t timer; /* checks wait deadlines while there are waits */
    bool timer_init;
    bool stopping; /* exec_stop: start nothing, answer nothing */
    uint32_t running; /* steps on workers now */
    uint32_t workers; /* steps that may run at once (libuv pool threads for steps) */
    uint64_t queued;  /* steps waiting behind an earlier one of their session */
    uint64_t reserved; /* memory quotas of the running steps */
    uint64_t steps_done, steps_failed;
    uint64_t steps_merged; /* of steps_done: ran as part of a merged step (merge.h) */
    unsigned look_ahead;   /* steps merged into one at most (merge.h); <= 1: no merging */
    uint64_t run_ns; /* worker time of all steps */
    /* The JIT (NULL: every step runs on the reference interpreter). */
    struct jit_compiler compiler;
    struct jit_runtime *jit;
    struct jit_cc *cc;  /* its system-compiler tier, or NULL */
    uint64_t fallbacks; /* steps the JIT handed to the interpreter */
    /* The CUDA device (cuda_run.h), or NULL: steps that ask for it run on
     * the CPU. */
    struct jit_gpu *gpu;
    uint64_t gpu_steps;     /* steps run on the device */
    uint64_t gpu_fallbacks; /* steps that asked for it and ran on the CPU instead */
    /* Called on the loop thread once, when a step finds the device failed
     * (a sticky CUDA error): the daemon stops (DESIGN.md "GPU"). */
    void (*device_failed)(void *arg, const char *why);
    void *device_failed_arg;
    bool device_failed_told;
};

int exec_init(struct exec *x, uv_loop_t *loop, struct sess_table *t, struct srv *srv,
              struct stats *stats, const struct log *log, uint64_t max_reply);

/* How the JIT starts. */
struct exec_jit_opts {
    unsigned threads; /* helper threads splitting each kernel */
    /* Recompile hot kernels with the system C compiler (jit/cc.h): off
     * with --no-cc, and off (logged) when no compiler answers. */
    bool cc;
    const char *cache_dir;    /* its on-disk cache, or NULL */
    uint64_t cache_max_bytes; /* its size cap (0: the default) */
    uint64_t cc_threshold_ns; /* run time before a kernel is recompiled */
};

/* Turn the JIT on. KILN_EUNSUPPORTED when the host forbids
 * writable+executable pages (the daemon then runs steps on the
 * interpreter), KILN_ENOMEM otherwise on failure. A cc tier that cannot
 * start is not a failure: it is logged and kernels stay on libtcc. Before
 * any step; exec_jit_stop frees it once steps are done (cutting a compile
 * in progress short). */
int exec_jit_start(struct exec *x, const struct exec_jit_opts *o);
void exec_jit_stop(struct exec *x);

/* Opens the CUDA device `o` names for steps that ask for it (after
 * exec_jit_start). Not finding one is not an error: KILN_EUNSUPPORTED with
 * why filled, and steps run on the CPU. exec_jit_stop closes it. */
int exec_gpu_start(struct exec *x, struct jit_cuda *cuda, const struct jit_gpu_opts *o, char *why,
                   size_t whylen);

/* KILN_OK when session `s` may queue one more step, else KILN_EBUSY:
 * a client that submits faster than its steps run is told to wait, so
 * queued steps (which hold their graphs and uploaded data) stay bounded. */
int exec_can_queue(struct exec *x, struct sess *s, struct proto_error *err);

/* Queue a step (the executor takes it) for session `s` and start it if
 * nothing of that session is running. */
void exec_submit(struct exec *x, struct sess *s, struct step *st);

/* FETCH: on KILN_OK the reply is either encoded into `reply` or, when
 * some var is still pending, deferred (`reply` left empty); otherwise the
 * error (KILN_ENOTFOUND naming body.vars[i], KILN_EEXEC for a failed var,
 * KILN_ELIMIT for a reply too big, KILN_EBUSY for too many waits). */
int exec_fetch(struct exec *x, struct sess *s, const struct proto_fetch *f,
               msgpack_sbuffer *reply, struct proto_error *err);

/* sess_close_hook: drop the session's queued steps, let a running one
 * finish as an orphan, and answer its waiting FETCHes with KILN_ESESSION. */
void exec_session_closed(void *arg, struct sess *s);

/* Undo an ingested step that will not be queued: its kept vars leave the
 * session's table and its charges are returned. */
void exec_discard(struct exec *x, struct sess *s, struct step *st);

/* sess_busy_hook: a session with steps or waiting FETCHes is not idle. */
bool exec_session_busy(void *arg, const struct sess *s);

/* After RELEASE: waiting FETCHes naming a released var are answered. */
void exec_released(struct exec *x, struct sess *s);

/* CANCEL: drops the session's steps that have not started (a running one
 * runs out); their kept vars fail with EXEC ("cancelled"), which a waiting
 * FETCH reports at once. Returns how many were dropped. */
uint64_t exec_cancel(struct exec *x, struct sess *s);

/* What the executor holds for session `s`, for STATUS. */
struct exec_sess_info {
    uint64_t queued;    /* steps waiting */
    bool running;       /* a step on a worker */
    uint64_t kernel_ns; /* kernel time its steps used */
};
void exec_session_info(const struct sess *s, struct exec_sess_info *out);

/* Draining: answer every waiting FETCH with KILN_ESHUTDOWN. */
void exec_drain(struct exec *x);

/* Before the server closes: forget the waits (their contexts close with
 * the server), start no more steps, and cancel those not yet picked up by
 * a worker. Steps already running still finish. */
void exec_stop(struct exec *x);

#endif
