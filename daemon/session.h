/* session.h: client sessions, their var tables and memory accounting.
 *
 * A session is what HELLO opens: an unguessable random id (never 0), the
 * client's name, a table of the vars it keeps (client-assigned ids ->
 * refcounted values), and the bytes it holds. The
 * table keeps sessions in order of last activity so the idle sweep only
 * looks at the ones that may have expired.
 *
 * Memory accounting: every byte a session holds for a client is charged
 * here with sess_mem_charge() against the daemon's budget, and uncharged
 * when freed. A var still held by a running step when its session closes
 * stays charged to the daemon's total until the step lets go of it.
 *
 * Ownership: the table owns its sessions and each session owns its vars.
 * Only the loop thread touches any of it. sess_table_fini() is safe on a
 * zeroed table and closes whatever is still open.
 */
#ifndef KILND_SESSION_H
#define KILND_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "idmap.h"
#include "log.h"
#include "mem.h"
#include "proto.h"
#include "spill.h"

/* HELLO beyond this many open sessions gets KILN_EBUSY: each session costs
 * memory, and a client must not be able to exhaust it by saying hello. */
#define SESS_MAX_OPEN 16384

/* Vars one session may keep at once; each costs memory beyond its data. */
#define SESS_MAX_VARS (1 << 20)

/* Bytes charged for each kept var besides its data: the record and its
 * table slot, so that many empty vars still count against the budget. */
#define SESS_VAR_OVERHEAD 512

enum sess_var_state {
    SESS_VAR_PENDING = 0, /* a queued or running step will compute it */
    SESS_VAR_READY = 1,   /* `data` holds the value */
    SESS_VAR_FAILED = 2,  /* the step that computes it failed: err_* say why */
};

/* One var a session keeps. Refcounted, because a var can outlive its
 * place in the table: RELEASE or the end of the session drop the table's
 * reference, while a step that reads or writes the var holds its own until
 * it is done. All references are taken and dropped on the loop thread;
 * workers only read `data` of vars a running step holds. */
struct sess_var {
    uint64_t id;
    uint64_t session; /* the owner's id; the session may be gone while steps hold this */
    struct sess_user *acct; /* the owner's user, which outlives the session */
    uint32_t refs;
    uint8_t state; /* enum sess_var_state */
    uint8_t dtype;
    uint8_t rank;
    int64_t shape[KILN_LIMIT_RANK];
    uint64_t bytes; /* charged to the owner: the record's overhead, plus the data's */
    void *data;
    uint64_t data_len; /* bytes of `data` */
    struct jit_mem *mem; /* where `data` goes back (referenced), or NULL: free() */
    struct spill_entry spill; /* where the data is when not in memory (spill.h) */
    uint64_t dtag; /* names this var's value to the device (cuda_run.h): never reused */
    int err_code; /* FAILED: the error FETCH reports */
    int64_t err_node;
    char err_msg[PROTO_MESSAGE_MAX];
};

/* What all sessions of one user hold and use together (auth.h quotas),
 * and the scheduler's account of its share. Made when the user's first
 * session opens and kept until the table ends (at most one per configured
 * user, plus the anonymous one), so vars and steps that outlive their
 * session can still return their charges to it. */
struct sess_user {
    const struct auth_user *user;
    uint32_t sessions;       /* open now */
    uint64_t sessions_total; /* opened since start */
    uint64_t mem_in_use;     /* bytes charged by its sessions (quota host_memory) */
    uint64_t dev_in_use;     /* device bytes its running steps hold (quota device_memory);
                                workers update it with __atomic builtins (cuda_run.h) */
    /* The executor's (exec.c). */
    uint64_t queued;         /* steps submitted and not finished (quota queued_steps) */
    uint64_t running;        /* of which on a worker now */
    uint64_t vtime;          /* kernel time used / weight (ns): the fair scheduler's clock */
    uint64_t sclock;         /* the clock of its session picked last: where an idle one restarts */
    uint64_t kernel_ns;      /* kernel time its steps used since start */
    uint64_t steps_done;     /* its steps finished (failed or not) */
    uint64_t kernels;        /* kernel-cache misses its steps compiled (quota kernels) */
    uint64_t compile_ns;     /* compile time of those */
    uint64_t compile_minute;      /* the minute (loop ms / 60000) compile_now counts */
    uint64_t compile_now_ns;      /* compile time in that minute */
    uint64_t compile_prev_ns;     /* and in the minute before */
    uint64_t refused;        /* requests refused over one of its quotas */
};

struct sess {
    uint64_t id;
    char client[KILN_LIMIT_NAME + 1];
    uint64_t opened_ms;      /* loop time of HELLO */
    uint64_t last_active_ms; /* loop time of the latest request */
    uint64_t mem_in_use;     /* bytes charged to this session */
    struct idmap vars;       /* var id -> struct sess_var * (the table's reference) */
    struct sess *prev, *next; /* activity order, least recent first */
    void *exec;               /* the executor's per-session state, or NULL */
    uint64_t steps;           /* steps submitted so far */
    const struct auth_user *user; /* who opened it (auth.h); never NULL once open */
    struct sess_user *acct;       /* that user's account; never NULL once open */
    uint64_t number;              /* 1, 2, ... in order of opening (STATUS shows this, not the id) */
    uint32_t pipe;            /* the connection of its latest request (0: none known) */
    uint64_t orphaned_ms;     /* loop time its connection closed; 0 while connected */
};

struct sess;
struct auth_user;

/* Take n from an accounting counter, stopping at 0: returning more than
 * was charged is a bug, and it must not wrap into a count that refuses
 * everything. */
static inline void sess_take(uint64_t *counter, uint64_t n)
{
    *counter -= n <= *counter ? n : *counter;
}

/* Called by sess_close() before a session's table is freed, so the
 * executor can drop what it queued for that session. */
typedef void (*sess_close_hook)(void *arg, struct sess *s);
/* Asked by the idle sweep: true while a session has work in progress (a
 * step queued or running, a FETCH waiting), which keeps it from expiring. */
typedef bool (*sess_busy_hook)(void *arg, const struct sess *s);

struct sess_table {
    struct idmap by_id; /* session id -> struct sess * */
    struct idmap users; /* (uintptr_t) auth_user -> struct sess_user * */
    struct sess *oldest, *newest;
    uint64_t opened_total;
    uint64_t mem_in_use; /* bytes charged by all sessions */
    uint64_t mem_budget; /* 0: no budget */
    const struct log *log;
    sess_close_hook on_close; /* may be NULL */
    sess_busy_hook is_busy;   /* may be NULL */
    void *hook_arg;           /* for both hooks */
    bool lower_relays;        /* ingest: relay ops become meta-ops (--relays off) */
    struct spill *spill;      /* spills cold vars when over budget (spill.h), or NULL */
    uint64_t dtags;           /* the last var dtag given out */
    /* Called with a var's dtag when the var is freed (its device copy
     * goes), or NULL. Any thread that frees vars: the loop thread. */
    void (*on_var_free)(void *arg, uint64_t dtag);
    void *var_free_arg;
};

void sess_table_init(struct sess_table *t, uint64_t mem_budget, const struct log *log);
void sess_table_fini(struct sess_table *t);

static inline uint64_t sess_count(const struct sess_table *t)
{
    return idmap_count(&t->by_id);
}

/* Open a session for `client` (NUL-terminated, already validated by the
 * codec). Returns KILN_OK and the session, or KILN_EBUSY / KILN_ENOMEM /
 * KILN_EINTERNAL (no randomness) with `err` filled. */
int sess_open(struct sess_table *t, const char *client, const struct auth_user *user,
              uint64_t now_ms, struct sess **out, struct proto_error *err);

/* The live session with this id, or NULL (0 is never a session). */
struct sess *sess_find(const struct sess_table *t, uint64_t id);

/* Record a request: the session becomes the most recently active. */
void sess_touch(struct sess_table *t, struct sess *s, uint64_t now_ms);

/* End a session and free everything it holds; `reason` goes to the log
 * ("bye", "idle", "shutdown"). */
void sess_close(struct sess_table *t, struct sess *s, const char *reason);

/* End every session idle for at least `idle_ms` at `now_ms`, except busy
 * ones (which count as active); returns how many were ended. */
uint64_t sess_expire(struct sess_table *t, uint64_t now_ms, uint64_t idle_ms);

/* Connection `pipe` closed: its sessions become orphans at now_ms. */
void sess_orphan(struct sess_table *t, uint32_t pipe, uint64_t now_ms);

/* Ends sessions orphaned for at least grace_ms (a client that crashed or
 * hung up without BYE): their vars are freed, their queued steps dropped,
 * a running step finishes first. A client that reconnects within the grace
 * keeps its session. Returns how many ended. */
uint64_t sess_reap_orphans(struct sess_table *t, uint64_t now_ms, uint64_t grace_ms);

/* Charge `bytes` to `s` within its user's host_memory quota
 * (KILN_EQUOTA) and the daemon's budget (KILN_ENOMEM): KILN_OK, or the
 * error with `err` filled and nothing charged. */
int sess_mem_charge(struct sess_table *t, struct sess *s, uint64_t bytes, struct proto_error *err);
/* Charge bytes that are in memory already and must stay, even past the
 * budget (a spill whose write failed). */
void sess_mem_charge_over(struct sess_table *t, uint64_t id, struct sess_user *acct,
                          uint64_t bytes);
/* Return bytes charged earlier. */
void sess_mem_uncharge(struct sess_table *t, struct sess *s, uint64_t bytes);
/* Return bytes charged to session `id` of user `acct`: to the session
 * while it is open, else to the user and the daemon's total alone (its
 * charges outlive it while a step still holds them). */
void sess_mem_uncharge_id(struct sess_table *t, uint64_t id, struct sess_user *acct,
                          uint64_t bytes);

/* Calls fn for each user account (those that ever had a session). */
void sess_users_each(struct sess_table *t, void (*fn)(void *arg, struct sess_user *u), void *arg);

static inline size_t sess_var_count(const struct sess *s)
{
    return idmap_count(&s->vars);
}

/* Drop var `id` from the session's table. Returns false when it names
 * nothing (RELEASE is idempotent: that is counted, not an error). */
bool sess_var_release(struct sess_table *t, struct sess *s, uint64_t id);

/* A new PENDING var `id` of the given dtype and shape in the session's
 * table (one reference, the table's), charged SESS_VAR_OVERHEAD bytes.
 * KILN_OK, or KILN_EVALUE when the id is already kept, or KILN_ENOMEM
 * (memory or budget); `err` names `field`. */
int sess_var_add(struct sess_table *t, struct sess *s, uint64_t id, uint8_t dtype, uint8_t rank,
                 const int64_t *shape, struct sess_var **out, const char *field,
                 struct proto_error *err);

/* The kept var `id`, or NULL. */
struct sess_var *sess_var_get(const struct sess *s, uint64_t id);

static inline void sess_var_ref(struct sess_var *v)
{
    v->refs++;
}

/* Drop a reference; the last one frees the value and returns its charge. */
void sess_var_unref(struct sess_table *t, struct sess_var *v);

/* Give a PENDING var its value (`data`, `bytes` long; the var takes it):
 * from jit_mem_alloc(mem, bytes) when `mem` is not NULL (the var then
 * holds a reference on mem and gives the buffer back to it), else from
 * malloc. Charges the bytes to the owner: on KILN_ENOMEM the var is
 * FAILED with that error instead and `data` is freed. */
int sess_var_set_ready(struct sess_table *t, struct sess_var *v, void *data, uint64_t bytes,
                       struct jit_mem *mem);

/* Mark a PENDING var FAILED with a copy of `e`. */
void sess_var_set_failed(struct sess_var *v, const struct proto_error *e);


#endif
