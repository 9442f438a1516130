/* step.h: one SUBMIT turned into something the executor can run.
 *
 * ingest_submit() checks a decoded SUBMIT against the session and builds
 * the step: an IR graph made only through the validating constructors of
 * kernels/ir.h, the session vars the graph reads (bound to EXTERN nodes),
 * and the vars it produces for the session to keep. A graph with any
 * error is refused as a whole, with an error naming the node by its
 * position in the SUBMIT, and leaves the session exactly as it was.
 *
 * A step holds one reference on every var it reads or writes, so RELEASE
 * or the end of the session cannot free them under a running step.
 * Loop thread only, except `graph` and the data of the bound vars, which
 * the worker running the step reads.
 */
#ifndef KILND_STEP_H
#define KILND_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "ir.h"
#include "proto.h"
#include "run.h"
#include "session.h"

struct step_keep {
    struct sess_var *var; /* PENDING until the step finishes */
    uint32_t node;        /* the graph node that computes it */
};

struct step {
    uint64_t session; /* the owner's id */
    struct sess_user *acct; /* the owner's user (outlives the session) */
    uint64_t number;  /* 1, 2, ... within the session */
    struct ir_graph graph;
    uint32_t nbind;
    struct sess_var **bind; /* EXTERN slot k reads bind[k] */
    uint32_t nkeep;
    struct step_keep *keep;
    uint32_t *from;    /* graph node -> position of the SUBMIT node it came from */
    uint64_t charged;  /* bytes charged to the session while the step exists */
    uint64_t admitted; /* of which counted in the session's bytes in flight (exec.c) */
    uint32_t nwarnings; /* for the SUBMIT reply: targets given zero gradients */
    struct proto_warning *warnings; /* PROTO_WARNINGS_MAX entries once the first is made */

    /* Cross-iteration fusion (merge.h). A merged step owns the steps it
     * was made of, in order, linked by `next`; step_free frees them. */
    struct step *parts;
    uint32_t nparts;   /* 0: an ordinary step */
    uint32_t merged_at; /* a part: its first node in the merged graph */
    bool no_merge;     /* runs alone (a merged run of it failed) */
    uint8_t device;    /* where the SUBMIT asked it to run: enum proto_submit_device */
    bool tf32;         /* the SUBMIT allowed TF32 on the device */

    /* The executor's. */
    void *exec;        /* the struct exec running it */
    struct step *next; /* queue link */
    bool orphan;       /* the session ended while this step ran */
    uv_work_t work;
    const void **inputs; /* bind[k]->data, gathered when the step starts */
    size_t quota;        /* bytes the step may hold while it runs */
    void **outs;         /* the interpreter's results */
    int rc;
    struct ir_error ierr;
    struct jit_run_info jinfo; /* what the JIT did, when it ran the step */
    bool fell_back;            /* the JIT could not: the interpreter ran it */
    bool jitted;               /* the JIT ran it: outs come from `mem` */
    struct jit_mem *mem;       /* the session's buffer cache, referenced while running */
    char fallback[160];        /* why */
    uint64_t started_ns, ran_ns;
    uint64_t est_ns;               /* kernel time charged when it started (the scheduler's guess) */
    struct jit_run_budget budget;  /* what it may compile (its user's quotas) */
    struct spill_step *spill;  /* its pinned inputs and those read back from disk (spill.h) */
    /* The device (cuda_run.h): its session's stream when it runs there. */
    struct jit_gpu_stream *gs;
    bool want_gs;              /* asks for the device, and its session has no stream yet */
    bool gs_new;               /* its worker made gs (the session adopts it) */
    bool gs_failed;            /* its worker could not make one: it ran on the CPU */
    bool gs_free;              /* the session ended while it ran: free gs when done */
    bool on_gpu;               /* it ran on the device */
    char gpu_why[160];         /* asked for it and ran on the CPU: why */
};

/* Build a step from `sub` for session `s`. On success *out is a new step
 * (its keep vars are now PENDING in the session's table, and the memory
 * the step holds until it finishes — its graph and uploaded data — is
 * charged to the session) and the step number is taken; on failure `err`
 * names the culprit (field "body.nodes[i]...", node i) and nothing
 * changed. */
int ingest_submit(struct sess_table *t, struct sess *s, const struct proto_submit *sub,
                  struct step **out, struct proto_error *err);

/* Drop the step's var references and free it. Safe on NULL. */
void step_free(struct sess_table *t, struct step *st);

#endif
