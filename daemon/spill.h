/* spill.h: memory tiers; cold tensors spill to disk under a host budget.
 *
 * Tiers. Memory is a stack of tiers, each with a limit and counters: today
 * `host` (the --memory-budget every session's bytes are charged against,
 * session.h) over `disk` (one unnamed spill file, spillfile.h, capped by
 * --spill-max). A device tier will sit on top of host the same way: its
 * budget exhausted, its least recently used buffers move down to host.
 * STATUS reports each tier (memory.tiers): bytes in use, limit, bytes
 * moving out now, and tensors/bytes/time spilled out of it and restored
 * into it.
 *
 * The rules (host -> disk):
 *  1. Spilling happens only with a host budget and a spill file
 *     (--spill-max 0 turns it off). Only READY vars of at least
 *     SPILL_MIN_BYTES whose data is in memory and that no running step
 *     holds ("pinned": the inputs of a running step) may spill.
 *  2. When a charge would pass the budget (sess_mem_charge), vars spill
 *     least recently used first until it fits; then the charge succeeds.
 *     "Use" is: becoming READY (a step's result, which is also how uploads
 *     arrive), a step starting that reads it, a FETCH returning it.
 *  3. A spilled var's bytes leave the host charge (its session's and the
 *     daemon's) the moment it is chosen, and move to the disk tier. Its
 *     data is written by a job on a worker thread; until that job is back
 *     the buffer stays in memory (reported as the host tier's `moving`
 *     bytes) and is then freed to the C library, not to the session's
 *     buffer cache, whose free blocks are trimmed too (jit_mem_trim):
 *     under pressure, cached free blocks are given back rather than kept
 *     while live tensors go to disk. kilnd (main.c) has
 *     glibc map every block of SPILL_MMAP_THRESHOLD bytes and more on its
 *     own (mallopt M_MMAP_THRESHOLD, which also stops glibc raising that
 *     threshold as big blocks are freed), so a freed tensor's pages leave
 *     the process: without it, training under a 64M budget peaked at
 *     270 MB resident, with it at 82 MB (15 MB of that is kilnd idle).
 *  4. A step whose input is on disk charges its bytes when it starts
 *     (spilling others as in 2) and its worker reads it back before the
 *     kernels run; the input is then in memory again and pinned while the
 *     step runs. An input still being written out is simply taken back
 *     (its bytes charged again; the finished write is discarded). A
 *     starting step also spills until the budget has room for the bytes
 *     its graph could materialise (every node but its inputs, a bound the
 *     fused plan never exceeds), as far as anything is left to spill, so
 *     that its memory quota (exec.c) is not eaten by cold tensors.
 *  5. FETCH of a var on disk reads it back on the loop thread, charged
 *     like a step input. This is the one read on the loop thread: it is
 *     bounded by the reply size (--max-message), the reply copies the same
 *     bytes on the loop thread anyway, and they were written recently, so
 *     they usually come from the page cache. A FETCH naming a var that a
 *     running step is reading back waits for that step like for a pending
 *     var.
 *  6. Out of memory after spilling (spilling off, the spill file at its
 *     cap or the disk full, everything else pinned or too small) is
 *     KILN_ENOMEM for the request that needed the memory, naming the need
 *     and the budget; nothing else changes. Counted as the tier's
 *     `refused`.
 *  7. A write that fails (I/O error) leaves that var in memory, charged
 *     again even past the budget, and turns spilling off (logged). A read
 *     that fails loses the var: it becomes FAILED with the error, which
 *     every later use reports.
 *
 * Threads: everything here is loop-thread only except spill_step_load,
 * which the worker running the step calls. Write jobs hold a reference on
 * each var they write, so a var cannot be freed under one.
 */
#ifndef KILND_SPILL_H
#define KILND_SPILL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "log.h"
#include "proto.h"
#include "spillfile.h"

#define SPILL_MIN_BYTES ((uint64_t) 4096) /* smaller vars stay in memory */
#define SPILL_MMAP_THRESHOLD (128 << 10)  /* see rule 3 */
/* Default --spill-max: this many times the host budget, at most
 * SPILL_MAX_DEFAULT_CAP and half the free space of the spill directory. */
#define SPILL_MAX_DEFAULT_FACTOR 4
#define SPILL_MAX_DEFAULT_CAP    ((uint64_t) 64 << 30)
#define SPILL_MAX_AUTO           UINT64_MAX /* spill_opts.max: the default above */

struct sess;
struct sess_var;
struct sess_table;
struct step;

enum spill_where {
    SPILL_RAM = 0,     /* data in memory (or none yet) */
    SPILL_WRITING = 1, /* data in memory, being written out; its bytes charged to disk */
    SPILL_DISK = 2,    /* data only in the spill file */
    SPILL_LOADING = 3, /* on disk, charged to host: a running step reads it back */
};

/* What a var carries for this module (inside struct sess_var). */
struct spill_entry {
    struct sess_var *prev, *next; /* the LRU of vars that may spill */
    bool listed;                  /* on that list */
    uint8_t where;                /* enum spill_where */
    uint32_t pins;                /* running steps that read it */
    uint64_t off;                 /* its extent while not SPILL_RAM */
};

/* One tier's numbers, as STATUS reports them. */
struct spill_tier {
    const char *name;
    uint64_t limit;                   /* 0: none */
    uint64_t moving;                  /* bytes being written out of it now */
    uint64_t spills, spilled_bytes;   /* tensors and bytes moved out, to the tier below */
    uint64_t spill_ns;                /* worker time writing them */
    uint64_t restores, restored_bytes; /* tensors and bytes moved back in */
    uint64_t restore_ns;              /* time reading them */
    uint64_t refused;                 /* charges refused after spilling */
};

struct spill_opts {
    const char *dir;  /* where the spill file lives (made 0700 when missing) */
    bool private_dir; /* dir is our default: it must be ours and 0700 (rundir.h) */
    uint64_t max;     /* bytes the file may hold; 0: no spilling; SPILL_MAX_AUTO */
};

struct spill {
    struct sess_table *t;
    uv_loop_t *loop;
    const struct log *log;
    struct spill_file file;
    bool on;       /* vars may spill */
    bool broken;   /* a write failed: no more spilling */
    bool warned;   /* "spill file full" was logged; quiet until a spill succeeds */
    struct sess_var *lru_head, *lru_tail; /* least recently used first */
    uint32_t jobs; /* write jobs on workers */
    struct spill_tier host, disk;
};

/* Set t->spill, and start spilling when `t` has a budget and o->max > 0
 * (else `sp` only counts refused charges). Returns 0, or -1 (logged) when
 * the spill file cannot be made. Loop thread, before any session. */
int spill_init(struct spill *sp, struct sess_table *t, uv_loop_t *loop, const struct log *log,
               const struct spill_opts *o);
/* After every var is gone and every job is back. Safe on a zeroed struct. */
void spill_fini(struct spill *sp);

/* session.c's hooks. make_room spills until `need` bytes have left the
 * host charge (or nothing more can go) and returns how many left. */
uint64_t spill_make_room(struct spill *sp, uint64_t need);
void spill_var_ready(struct spill *sp, struct sess_var *v); /* became READY: listed, most recent */
void spill_var_forget(struct spill *sp, struct sess_var *v); /* freed: unlisted, extent released */
void spill_count_refused(struct spill *sp);

/* exec.c's hooks for a step. start: after the step's inputs were gathered
 * (st->inputs[k] NULL for those on disk), pins its inputs, charges those
 * to read back, and makes room for what its graph may materialise beside
 * `reserved` (the quotas of running steps). KILN_OK, or KILN_ENOMEM
 * naming the input and the budget with nothing changed. load: on the
 * worker, reads the inputs back into st->inputs (on failure st->rc and
 * st->ierr say why). done: once the step is back (or was never queued),
 * the inputs read back stay in memory, and every input is unpinned. */
int spill_step_start(struct spill *sp, struct step *st, uint64_t reserved, struct proto_error *err);
int spill_step_load(struct step *st);
void spill_step_done(struct spill *sp, struct step *st);

/* FETCH: KILN_OK once every var named is in memory (those on disk read
 * back, see rule 5), 1 when some var is being read back by a running step
 * (wait as for a pending var), or an error (KILN_ENOMEM naming vars[i],
 * KILN_EEXEC for a read that failed). Vars must exist and be READY. */
int spill_fetch(struct spill *sp, struct sess *s, const uint64_t *ids, uint32_t count,
                struct proto_error *err);

/* The tiers, top first, for STATUS: how many were written to `out`. */
uint32_t spill_tiers(const struct spill *sp, const struct sess_table *t, struct proto_tier *out,
                     uint32_t max);

#endif
