/* exec.c: step queues, workers and deferred FETCHes (see exec.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "exec.h"
#include "interp.h"
#include "merge.h"

#define WAIT_TICK_MS 20

/* Per-session queue, hung on struct sess's `exec`. */
struct exec_sess {
    struct sess *s; /* its session (this is freed before the session is) */
    struct step *head, *tail;
    struct step *running;
    uint32_t queued; /* steps in head..tail */
    uint32_t nwaits;
    struct jit_mem *mem; /* the session's buffer cache (NULL: plain malloc) */
    /* The scheduler's. Ready: a step queued and none running. */
    struct exec_sess *rprev, *rnext;
    bool ready;
    uint64_t vtime;     /* kernel time used (ns): its order among its user's sessions */
    uint64_t last_ns;   /* run time of its latest step: the estimate for the next */
    uint64_t inflight;  /* bytes charged by its queued and running steps */
    uint64_t kernel_ns; /* kernel time its steps used */
    struct jit_gpu_stream *gs; /* its device stream, made by its first device step */
    bool gs_failed;            /* could not make one: its steps run on the CPU */
};

struct exec_wait {
    struct exec_wait *next;
    uint64_t session;
    uint64_t deadline_ms;
    uint32_t count;
    uint64_t *ids;
    struct srv_ctx *ctx;
};

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static struct exec_sess *sess_state(struct sess *s)
{
    if (s->exec == NULL) {
        struct exec_sess *es = calloc(1, sizeof(struct exec_sess));
        if (es != NULL) {
            es->s = s;
            es->mem = jit_mem_new(EXEC_CACHE_PER_SESSION);
        }
        s->exec = es;
    }
    return s->exec;
}

/* ---- the fair scheduler ----------------------------------------------------
 *
 * Start-time fair queuing over users, then over each user's sessions.
 * Every user has a virtual clock, the kernel time its steps used divided
 * by its weight; every session has one too (kernel time, unweighted). A
 * free worker takes the head step of the ready session whose user's clock
 * is lowest, and among that user's sessions the one whose clock is
 * lowest (ties: the one ready longest). A step is charged an estimate
 * when it starts (its session's previous step's time), corrected by what
 * it really took when it ends, so a user with one step running is not
 * picked again for free. A user (or session) that had nothing to do
 * starts again at the scheduler's clock (the clock of the latest user
 * picked), so idle time is not saved up as credit. Weights only matter
 * while more sessions are ready than there are workers: a session runs
 * one step at a time, in the order it submitted them. */

#define EST_DEFAULT_NS 1000000 /* a session's first step is guessed at 1 ms */

static void ready_add(struct exec *x, struct exec_sess *es)
{
    if (es->ready)
        return;
    es->ready = true;
    es->rprev = NULL;
    es->rnext = x->ready;
    if (x->ready != NULL)
        x->ready->rprev = es;
    x->ready = es;
}

static void ready_remove(struct exec *x, struct exec_sess *es)
{
    if (!es->ready)
        return;
    if (es->rprev != NULL)
        es->rprev->rnext = es->rnext;
    else
        x->ready = es->rnext;
    if (es->rnext != NULL)
        es->rnext->rprev = es->rprev;
    es->rprev = es->rnext = NULL;
    es->ready = false;
}

/* The ready session to run next, or NULL. */
static struct exec_sess *pick(const struct exec *x)
{
    struct exec_sess *best = NULL;
    for (struct exec_sess *es = x->ready; es != NULL; es = es->rnext) {
        /* The list is newest first: on a full tie the later (older) wins. */
        uint64_t ua = es->s->acct->vtime, ub = best ? best->s->acct->vtime : 0;
        if (best == NULL || ua < ub || (ua == ub && es->vtime <= best->vtime))
            best = es;
    }
    return best;
}

static uint64_t weight_of(const struct sess_user *u)
{
    return u->user->weight > 0 ? u->user->weight : 1;
}

/* ---- running steps ------------------------------------------------------ */

static void step_fail(struct exec *x, struct step *st, const struct proto_error *e)
{
    for (uint32_t j = 0; j < st->nkeep; j++)
        if (st->keep[j].var->state == SESS_VAR_PENDING)
            sess_var_set_failed(st->keep[j].var, e);
    x->steps_failed++;
}

static void resolve_waits(struct exec *x, uint64_t session);
static void schedule(struct exec *x);

/* Runs st on the device (worker thread). False: the device could not
 * generate or compile a kernel of it, and the caller runs it on the CPU
 * (the same results); every other outcome, failures included, is the
 * step's. Resident tags: each input var's dtag, and each kept var's for
 * the node computing it. */
static bool gpu_work(const struct exec *x, struct step *st, const bool *mark)
{
    uint64_t *in_tags = calloc(st->nbind ? st->nbind : 1, sizeof(uint64_t));
    uint64_t *out_tags = calloc((size_t) st->graph.count + 1, sizeof(uint64_t));
    if (in_tags == NULL || out_tags == NULL) {
        free(in_tags);
        free(out_tags);
        return false;
    }
    for (uint32_t k = 0; k < st->nbind; k++)
        in_tags[k] = st->bind[k]->dtag;
    for (uint32_t j = 0; j < st->nkeep; j++)
        out_tags[st->keep[j].node] = st->keep[j].var->dtag;
    struct jit_gpu_run_opts o = {.in_tags = in_tags, .out_tags = out_tags, .budget = &st->budget,
                                 .tf32 = st->tf32, .dev_account = &st->acct->dev_in_use,
                                 .dev_limit = st->acct->user->quota.device_memory};
    st->rc = jit_gpu_run_opt(x->gpu, st->gs, &st->graph, mark, st->inputs, st->mem,
                             (size_t) st->quota, &o, &st->outs, &st->jinfo, &st->ierr);
    free(in_tags);
    free(out_tags);
    if (st->rc == KILN_ELIMIT || st->rc == KILN_EINTERNAL) {
        snprintf(st->gpu_why, sizeof st->gpu_why, "%.150s", st->ierr.message);
        return false;
    }
    return true;
}

static void step_work(uv_work_t *w)
{
    struct step *st = w->data;
    const struct exec *x = st->exec;
    uint64_t t0 = now_ns();
    if (st->spill != NULL && spill_step_load(st) != KILN_OK) { /* inputs back from disk */
        st->ran_ns = now_ns() - t0;
        return;
    }
    if (x->jit != NULL) {
        bool *mark = calloc((size_t) st->graph.count + 1, sizeof(bool));
        if (mark == NULL) {
            st->rc = KILN_ENOMEM;
            st->ierr.node = -1;
            snprintf(st->ierr.message, sizeof st->ierr.message, "out of memory starting the step");
            st->ran_ns = now_ns() - t0;
            return;
        }
        for (uint32_t j = 0; j < st->nkeep; j++)
            mark[st->keep[j].node] = true;
        st->rc = KILN_EINTERNAL;
        if (st->want_gs && st->gs == NULL) { /* a CUDA stream is made off the loop thread */
            st->gs_new = jit_gpu_stream_new(x->gpu, &st->gs) == KILN_OK;
            st->gs_failed = !st->gs_new;
        }
        if (st->gs != NULL && gpu_work(x, st, mark)) {
            st->on_gpu = true;
        } else {
            st->rc = jit_run_budgeted(x->jit, &st->graph, mark, st->inputs, st->mem,
                                      (size_t) st->quota, &st->budget, &st->outs, &st->jinfo,
                                      &st->ierr);
        }
        free(mark);
        st->jitted = st->rc == KILN_OK;
        /* merge.h: a merged graph the JIT refuses runs again step by step. */
        if ((st->rc == KILN_ELIMIT || st->rc == KILN_EINTERNAL) && st->nparts == 0) {
            st->fell_back = true;
            snprintf(st->fallback, sizeof st->fallback, "%.150s", st->ierr.message);
        }
    }
    if (x->jit == NULL || st->fell_back)
        st->rc = ir_interp_run_quota(&st->graph, st->inputs, (size_t) st->quota, &st->outs,
                                     &st->ierr);
    st->ran_ns = now_ns() - t0;
}

/* The cc tier, or NULL (logged) when it cannot start. */
static struct jit_cc *cc_start(struct exec *x, const struct exec_jit_opts *o)
{
    struct jit_cc *cc = NULL;
    char why[768];
    struct jit_cc_opts co = {.cache_dir = o->cache_dir, .cache_max_bytes = o->cache_max_bytes};
    int rc = jit_cc_new(&co, &cc, why, sizeof why);
    struct log_line l;
    if (rc != KILN_OK) {
        log_begin(&l, x->log, LOG_WARN,
                  "no system C compiler tier: kernels stay on libtcc (slower hot loops)");
        log_str(&l, "error", rc == KILN_ENOMEM ? "out of memory" : why);
        log_end(&l);
        return NULL;
    }
    if (why[0] != '\0') {
        log_begin(&l, x->log, LOG_WARN, "cc-compiled kernels are not cached on disk");
        log_str(&l, "error", why);
        log_end(&l);
    }
    log_begin(&l, x->log, LOG_INFO, "hot kernels are recompiled by the system C compiler");
    log_str(&l, "compiler", jit_cc_compiler(cc));
    log_str(&l, "cache_dir", jit_cc_cache_dir(cc) ? jit_cc_cache_dir(cc) : "none");
    log_u64(&l, "threshold_ms", o->cc_threshold_ns / 1000000);
    log_end(&l);
    return cc;
}

int exec_jit_start(struct exec *x, const struct exec_jit_opts *o)
{
    int rc = jit_compiler_init(&x->compiler);
    if (rc != KILN_OK)
        return rc;
    x->cc = o->cc ? cc_start(x, o) : NULL;
    struct jit_runtime_opts ro = {.compiler = &x->compiler,
                                  .threads = o->threads,
                                  .cc = x->cc,
                                  .cc_threshold_ns = o->cc_threshold_ns};
    rc = jit_runtime_new(&ro, &x->jit);
    if (rc != KILN_OK) {
        jit_cc_free(x->cc);
        x->cc = NULL;
        jit_compiler_fini(&x->compiler);
    }
    return rc;
}

static void forget_dtag(void *arg, uint64_t dtag)
{
    jit_gpu_forget(arg, dtag);
}

int exec_gpu_start(struct exec *x, struct jit_cuda *cuda, const struct jit_gpu_opts *o, char *why,
                   size_t whylen)
{
    if (x->jit == NULL) {
        snprintf(why, whylen, "the JIT is off (--interpret)");
        return KILN_EUNSUPPORTED;
    }
    int rc = jit_gpu_open(cuda, x->jit, o, &x->gpu, why, whylen);
    if (rc == KILN_OK) {
        x->sessions->on_var_free = forget_dtag;
        x->sessions->var_free_arg = x->gpu;
    }
    return rc;
}

void exec_jit_stop(struct exec *x)
{
    if (x->jit == NULL)
        return;
    if (x->gpu != NULL) {
        x->sessions->on_var_free = NULL;
        /* Steps are done (stop() ran the loop out): the streams go first. */
        for (struct sess *s = x->sessions->oldest; s != NULL; s = s->next) {
            struct exec_sess *es = s->exec;
            if (es != NULL) {
                jit_gpu_stream_free(es->gs);
                es->gs = NULL;
            }
        }
        jit_gpu_close(x->gpu);
        x->gpu = NULL;
    }
    if (x->cc != NULL)
        jit_cc_cancel(x->cc); /* a compile in progress would only delay the exit */
    jit_runtime_free(x->jit);
    x->jit = NULL;
    jit_cc_free(x->cc);
    x->cc = NULL;
    jit_compiler_fini(&x->compiler);
}

/* How many bytes one step may hold while it runs: what is left of the
 * memory budget, or without a budget half the machine's memory, so that a
 * client's graph gets an error instead of the kernel's OOM killer. */
static uint64_t step_quota(const struct exec *x)
{
    const struct sess_table *t = x->sessions;
    uint64_t limit = t->mem_budget;
    if (limit == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        limit = pages > 0 && page > 0 ? (uint64_t) pages / 2 * (uint64_t) page : UINT64_C(1) << 32;
    }
    /* Steps running side by side share what is left: each reserves its
     * quota until it finishes, so together they stay within the limit.
     * A starting step leaves an eighth of what is left for each other
     * worker that may start a step beside it (half at most), so a step
     * alone gets most of the memory and a concurrent one never finds
     * nothing left. (The fair scheduler replaces this with per-user
     * quotas.) */
    uint64_t used = t->mem_in_use + x->reserved;
    uint64_t left = used < limit ? limit - used : 0;
    uint32_t others = x->workers > x->running + 1 ? x->workers - x->running - 1 : 0;
    return left - (others < 4 ? left / 8 * others : left / 2);
}

/* The QUOTA error of a step whose run needed a compile its user's quota
 * did not allow. */
static void quota_error(struct proto_error *e, const struct step *st, int64_t at)
{
    const struct sess_user *u = st->acct;
    const struct auth_quota *q = &u->user->quota;
    bool kernels = st->budget.kernels == 0 || st->jinfo.kernels_compiled >= st->budget.kernels;
    if (strncmp(st->ierr.message, "device_memory quota", 19) == 0)
        proto_error_set(e, KILN_EQUOTA, "", "step %" PRIu64 " of user \"%s\": %s", st->number,
                        u->user->name, st->ierr.message);
    else if (kernels)
        proto_error_set(e, KILN_EQUOTA, "",
                        "step %" PRIu64 " needs a new kernel, and user \"%s\" has compiled %" PRIu64
                        " kernels: its kernels quota is %" PRIu64,
                        st->number, u->user->name, u->kernels, q->kernels);
    else
        proto_error_set(e, KILN_EQUOTA, "",
                        "step %" PRIu64 " needs a new kernel, and user \"%s\" has used its "
                        "compile_ms_per_minute quota (%" PRIu64 " ms)",
                        st->number, u->user->name, q->compile_ms_per_minute);
    e->node = at;
}

/* Compile time of user `u` over the last minute at loop time now_ms (the
 * current minute, plus the previous one weighted by how much of it is
 * still inside the window), after adding add_ns. */
static uint64_t compile_window(struct sess_user *u, uint64_t now_ms, uint64_t add_ns)
{
    uint64_t minute = now_ms / 60000;
    if (minute != u->compile_minute) {
        u->compile_prev_ns = minute == u->compile_minute + 1 ? u->compile_now_ns : 0;
        u->compile_now_ns = 0;
        u->compile_minute = minute;
    }
    u->compile_now_ns += add_ns;
    uint64_t left = 60000 - now_ms % 60000;
    return u->compile_now_ns + (uint64_t) ((double) u->compile_prev_ns * (double) left / 60000.0);
}

/* Steps of the session a (possibly merged) step stands for, and the bytes
 * they were admitted with. */
static uint32_t step_parts(const struct step *st)
{
    return st->nparts > 0 ? st->nparts : 1;
}

static uint64_t step_inflight(const struct step *st)
{
    if (st->nparts == 0)
        return st->admitted;
    uint64_t b = 0;
    for (const struct step *p = st->parts; p != NULL; p = p->next)
        b += p->admitted;
    return b;
}

static void inflight_done(struct exec_sess *es, const struct step *st)
{
    sess_take(&es->inflight, step_inflight(st));
}

/* A scheduler clock charged `est` (in units of `weight`) when a step
 * started: the time it really ran replaces the estimate. */
static void clock_correct(uint64_t *clock, uint64_t ran, uint64_t est, uint64_t weight)
{
    if (ran >= est)
        *clock += (ran - est) / weight;
    else
        sess_take(clock, (est - ran) / weight);
}

/* Charge a finished step's kernel time and compiles to its user (and,
 * when it is over, its steps: a merged run that failed puts them back). */
static void account(struct exec *x, struct step *st, bool over)
{
    struct sess_user *u = st->acct;
    clock_correct(&u->vtime, st->ran_ns, st->est_ns, weight_of(u));
    u->kernel_ns += st->ran_ns;
    u->running--;
    u->kernels += st->jinfo.kernels_compiled;
    u->compile_ns += st->jinfo.compile_ns;
    compile_window(u, uv_now(x->loop), st->jinfo.compile_ns);
    if (over) {
        sess_take(&u->queued, step_parts(st));
        u->steps_done += step_parts(st);
    }
}

/* A finished (or failed merged) step of `es`: its real time replaces the
 * estimate in the session's clock, and per step of it estimates the next. */
static void session_ran(struct exec_sess *es, const struct step *st)
{
    clock_correct(&es->vtime, st->ran_ns, st->est_ns, 1);
    es->kernel_ns += st->ran_ns;
    es->last_ns = st->ran_ns / step_parts(st);
}

/* merge.h rule 5: the steps of a merged run that failed go back to the
 * front of their session's queue and run again one by one. */
static void merged_failed(struct exec *x, struct step *st)
{
    struct log_line l;
    log_begin(&l, x->log, LOG_DEBUG, "merged steps failed together: they run again one by one");
    log_u64(&l, "session", st->session);
    log_u64(&l, "step", st->number);
    log_u64(&l, "steps", st->nparts);
    log_str(&l, "error", st->ierr.message);
    log_end(&l);
    uint64_t session = st->session;
    bool orphan = st->orphan;
    jit_mem_unref(st->mem);
    st->mem = NULL;
    struct sess *s = orphan ? NULL : sess_find(x->sessions, session);
    struct exec_sess *es = s != NULL ? s->exec : NULL;
    if (es == NULL) /* the session ended: its steps end with the merged one */
        sess_take(&st->acct->queued, st->nparts);
    else
        session_ran(es, st);
    uint32_t n = merge_undo(x->sessions, st, es != NULL ? &es->head : NULL,
                            es != NULL ? &es->tail : NULL);
    if (es != NULL) {
        es->queued += n;
        x->queued += n;
        es->running = NULL;
        ready_add(x, es);
    }
    schedule(x);
}

/* The device failed: tell the daemon, once. */
static void device_failed(struct exec *x)
{
    char why[JIT_CUDA_WHY_MAX + 1] = "";
    if (x->device_failed_told || x->gpu == NULL || !jit_gpu_failed(x->gpu, why, sizeof why))
        return;
    x->device_failed_told = true;
    if (x->device_failed != NULL)
        x->device_failed(x->device_failed_arg, why);
}

static void stream_free_work(uv_work_t *w)
{
    jit_gpu_stream_free(w->data);
}

static void stream_free_done(uv_work_t *w, int status)
{
    if (status != 0) /* cancelled at shutdown: before the device closes */
        jit_gpu_stream_free(w->data);
    free(w);
}

/* Frees a session's CUDA stream on a worker: destroying its library
 * handles may wait for the whole device, which the loop thread must not. */
static void stream_free_async(struct exec *x, struct jit_gpu_stream *gs)
{
    if (gs == NULL)
        return;
    uv_work_t *w = malloc(sizeof *w);
    if (w != NULL) {
        w->data = gs;
        if (uv_queue_work(x->loop, w, stream_free_work, stream_free_done) == 0)
            return;
        free(w);
    }
    jit_gpu_stream_free(gs); /* out of memory: here, then */
}

/* The step's stream after it ran: one its worker made goes to its session
 * (if the session lives and has none), one its ended session left it is
 * freed. */
static void step_stream_done(struct exec *x, struct step *st)
{
    struct jit_gpu_stream *gs = st->gs;
    st->gs = NULL;
    struct sess *s = st->orphan ? NULL : sess_find(x->sessions, st->session);
    struct exec_sess *es = s != NULL ? s->exec : NULL;
    if (st->gs_failed && es != NULL && !es->gs_failed) {
        es->gs_failed = true;
        log_msg(x->log, LOG_WARN, "cannot make a CUDA stream: the session runs on the CPU");
    }
    if (!st->gs_new && !st->gs_free)
        return; /* the session's own, still its */
    if (es != NULL && es->gs == NULL && !st->gs_free)
        es->gs = gs;
    else
        stream_free_async(x, gs);
}

static void step_done(uv_work_t *w, int status)
{
    struct step *st = w->data;
    struct exec *x = st->exec;
    if (x->sessions->spill != NULL)
        spill_step_done(x->sessions->spill, st);
    x->running--;
    x->reserved -= st->quota;
    x->run_ns += st->ran_ns;
    if (status == 0 && (st->gs != NULL || st->gs_failed)) {
        st->on_gpu ? x->gpu_steps++ : x->gpu_fallbacks++;
        /* Said the first time and every thousandth: a driver that refuses
         * every kernel (PTX newer than it reads) should not flood the log. */
        if (!st->on_gpu && st->gpu_why[0] != '\0' &&
            (x->gpu_fallbacks == 1 || x->gpu_fallbacks % 1000 == 0)) {
            struct log_line l;
            log_begin(&l, x->log, LOG_WARN, "a step that asked for CUDA ran on the CPU");
            log_u64(&l, "fallbacks", x->gpu_fallbacks);
            log_str(&l, "why", st->gpu_why);
            log_end(&l);
        }
    }
    step_stream_done(x, st);
    if (status == 0 && st->rc == KILN_EDEVICE)
        device_failed(x); /* arms the daemon's exit; the errors below still go out */
    if (st->nparts > 0 && (status != 0 || st->rc != KILN_OK)) {
        account(x, st, false);
        merged_failed(x, st);
        return;
    }
    account(x, st, true);
    if (st->fell_back) {
        x->fallbacks++;
        struct log_line l;
        log_begin(&l, x->log, LOG_WARN, "step ran on the interpreter");
        log_u64(&l, "session", st->session);
        log_u64(&l, "step", st->number);
        log_str(&l, "why", st->fallback);
        log_end(&l);
    }
    struct sess_table *t = x->sessions;
    if (status != 0 || st->rc != KILN_OK) {
        struct proto_error e;
        int64_t at = -1;
        if (status == 0 && st->ierr.node >= 0 && (uint64_t) st->ierr.node < st->graph.count)
            at = st->from[st->ierr.node];
        if (status == 0 && st->rc == KILN_EQUOTA)
            quota_error(&e, st, at);
        else if (status == 0 && st->rc == KILN_EDEVICE)
            proto_error_set(&e, KILN_EDEVICE, "", "step %" PRIu64 " failed: %s", st->number,
                            st->ierr.message);
        else if (at >= 0)
            proto_error_set(&e, KILN_EEXEC, "", "step %" PRIu64 " failed at node %" PRId64 ": %s",
                            st->number, at, st->ierr.message);
        else
            proto_error_set(&e, KILN_EEXEC, "", "step %" PRIu64 " failed: %s", st->number,
                            status != 0 ? "cancelled before it ran" : st->ierr.message);
        e.node = at;
        step_fail(x, st, &e);
    } else {
        if (st->nparts > 0) {
            /* The merged copy and the parts' graphs and uploads are done
             * with: their charges go before the results are charged, so
             * the results fit where they would have one step at a time. */
            sess_mem_uncharge_id(t, st->session, st->acct, st->charged);
            st->charged = 0;
            for (struct step *p = st->parts; p != NULL; p = p->next) {
                sess_mem_uncharge_id(t, p->session, p->acct, p->charged);
                p->charged = 0;
            }
        }
        for (uint32_t j = 0; j < st->nkeep; j++) {
            const struct ir_node *n = &st->graph.nodes[st->keep[j].node];
            void *data = st->outs[st->keep[j].node];
            st->outs[st->keep[j].node] = NULL; /* the var takes it */
            uint64_t bytes = (uint64_t) n->numel * ir_dtype_size((enum ir_dtype) n->dtype);
            /* JIT buffers go back to the session's cache when freed. */
            sess_var_set_ready(t, st->keep[j].var, data, bytes, st->jitted ? st->mem : NULL);
        }
        x->steps_done += step_parts(st);
        x->steps_merged += st->nparts;
    }
    uint64_t session = st->session;
    bool orphan = st->orphan;
    jit_mem_unref(st->mem);
    st->mem = NULL;
    if (!orphan) {
        struct sess *s = sess_find(t, session);
        struct exec_sess *es = s != NULL ? s->exec : NULL;
        if (es != NULL) {
            es->running = NULL;
            session_ran(es, st);
            inflight_done(es, st);
            if (es->head != NULL)
                ready_add(x, es);
        }
    }
    step_free(t, st);
    schedule(x);
    resolve_waits(x, session);
}

/* Gather the inputs of `st`: KILN_OK, or an error in *e (an input that
 * failed earlier, memory) for the caller to fail the step with. */
static int gather(struct exec *x, struct step *st, struct proto_error *e)
{
    if (st->nbind > 0 && st->inputs == NULL && /* a merged step has its inputs already */
        (st->inputs = calloc(st->nbind, sizeof(*st->inputs))) == NULL)
        return proto_error_set(e, KILN_ENOMEM, "", "out of memory starting step %" PRIu64,
                               st->number);
    for (uint32_t k = 0; k < st->nbind; k++) {
        const struct sess_var *v = st->bind[k];
        if (v->state != SESS_VAR_READY)
            /* Steps run in order, so an input is never still pending. */
            return proto_error_set(e, KILN_EEXEC, "",
                                   "step %" PRIu64 " cannot run: its input var %" PRIu64 " %s%s",
                                   st->number, v->id,
                                   v->state == SESS_VAR_FAILED ? "failed: " : "is not ready",
                                   v->state == SESS_VAR_FAILED ? v->err_msg : "");
        st->inputs[k] = v->data;
    }
    /* Inputs on disk come back in the step's worker (spill.h rule 4). */
    if (x->sessions->spill != NULL)
        return spill_step_start(x->sessions->spill, st, x->reserved, e);
    return KILN_OK;
}

/* What the step's user may still compile (its kernels and compile-time
 * quotas). Steps of one user running at once each get what is left, so
 * together they may overshoot by what they compile side by side. */
static struct jit_run_budget compile_budget(struct exec *x, struct sess_user *u)
{
    const struct auth_quota *q = &u->user->quota;
    struct jit_run_budget b = {UINT64_MAX, UINT64_MAX};
    if (q->kernels != 0)
        b.kernels = u->kernels < q->kernels ? q->kernels - u->kernels : 0;
    if (q->compile_ms_per_minute != 0) {
        uint64_t used = compile_window(u, uv_now(x->loop), 0);
        uint64_t allow = q->compile_ms_per_minute * UINT64_C(1000000);
        b.compile_ns = used < allow ? allow - used : 0;
    }
    return b;
}

/* Where st runs: steps that ask for the device run there while the daemon
 * has one, on their session's stream; a session's first such step has its
 * worker make the stream (want_gs), which the session then keeps. */
static void step_stream(struct exec *x, struct exec_sess *es, struct step *st)
{
    if (st->device != PROTO_DEVICE_CUDA || x->gpu == NULL || x->jit == NULL || es->gs_failed)
        return;
    st->gs = es->gs;
    st->want_gs = es->gs == NULL;
}

/* Hand the head step of `es` to a worker. False when it could not start
 * (it failed and was freed). */
static bool start_head(struct exec *x, struct exec_sess *es)
{
    uint32_t took;
    struct step *st = merge_take(x->sessions, es->s, &es->head,
                                 x->jit != NULL ? x->look_ahead : 1, &took);
    if (es->head == NULL)
        es->tail = NULL;
    es->queued -= took;
    x->queued -= took;
    struct sess_user *u = st->acct;
    struct proto_error e;
    bool queued = false;
    if (gather(x, st, &e) == KILN_OK) {
        st->work.data = st;
        st->quota = step_quota(x);
        st->budget = compile_budget(x, u);
        /* What the worker reads is set before it can start. */
        st->mem = es->mem;
        if (st->mem != NULL)
            jit_mem_ref(st->mem);
        step_stream(x, es, st);
        queued = uv_queue_work(x->loop, &st->work, step_work, step_done) == 0;
        if (!queued) {
            jit_mem_unref(st->mem);
            st->mem = NULL;
            st->gs = NULL;
            st->want_gs = false;
            proto_error_set(&e, KILN_EINTERNAL, "", "cannot queue step %" PRIu64, st->number);
            if (x->sessions->spill != NULL)
                spill_step_done(x->sessions->spill, st);
        }
    }
    if (!queued && st->nparts > 0) {
        /* merge.h rule 5: what stops a merged step stops nothing of its
         * parts: they go back and start one by one. */
        uint32_t n = merge_undo(x->sessions, st, &es->head, &es->tail);
        es->queued += n;
        x->queued += n;
        return false;
    }
    if (!queued) {
        uint64_t session = st->session;
        step_fail(x, st, &e);
        u->queued -= took;
        inflight_done(es, st);
        step_free(x->sessions, st);
        resolve_waits(x, session);
        return false;
    }
    /* The scheduler's clocks move to where the picked user and session
     * stand (the lowest of those ready), before the estimate of this step
     * is charged: a user or session that comes back from idle starts there. */
    if (u->vtime > x->vclock)
        x->vclock = u->vtime;
    if (es->vtime > u->sclock)
        u->sclock = es->vtime;
    /* Charged now by an estimate; step_done puts the real time in. */
    st->est_ns = es->last_ns ? es->last_ns : EST_DEFAULT_NS;
    u->vtime += st->est_ns / weight_of(u);
    es->vtime += st->est_ns;
    u->running++;
    es->running = st;
    x->running++;
    x->reserved += st->quota;
    return true;
}

/* Fill the free workers with the steps the fair order picks. */
static void schedule(struct exec *x)
{
    uint32_t slots = x->workers > 0 ? x->workers : 1;
    while (!x->stopping && x->running < slots) {
        struct exec_sess *es = pick(x);
        if (es == NULL)
            return;
        ready_remove(x, es);
        bool started = start_head(x, es);
        if (!started && es->head != NULL && es->running == NULL)
            ready_add(x, es); /* its next step may run */
    }
}

int exec_can_queue(struct exec *x, struct sess *s, struct proto_error *err)
{
    (void) x;
    const struct exec_sess *es = s->exec;
    uint32_t queued = es != NULL ? es->queued : 0;
    if (queued >= EXEC_QUEUE_PER_SESSION)
        return proto_error_set(err, KILN_EBUSY, "",
                               "%u steps of this session are waiting to run (at most %d): "
                               "FETCH a result before submitting more",
                               queued, EXEC_QUEUE_PER_SESSION);
    uint64_t inflight = es != NULL ? es->inflight : 0;
    if (inflight >= EXEC_INFLIGHT_PER_SESSION)
        return proto_error_set(err, KILN_EBUSY, "",
                               "the session's queued steps hold %" PRIu64 " bytes of graphs and "
                               "uploads (at most %" PRIu64 "): FETCH a result before submitting "
                               "more",
                               inflight, (uint64_t) EXEC_INFLIGHT_PER_SESSION);
    struct sess_user *u = s->acct;
    uint64_t quota = u->user->quota.queued_steps;
    if (quota != 0 && u->queued >= quota) {
        u->refused++;
        return proto_error_set(err, KILN_EQUOTA, "",
                               "user \"%s\" has %" PRIu64 " steps queued or running in all its "
                               "sessions: its queued_steps quota is %" PRIu64,
                               u->user->name, u->queued, quota);
    }
    return KILN_OK;
}

void exec_submit(struct exec *x, struct sess *s, struct step *st)
{
    st->exec = x;
    struct exec_sess *es = sess_state(s);
    if (es == NULL || x->stopping) {
        struct proto_error e;
        proto_error_set(&e, x->stopping ? KILN_ESHUTDOWN : KILN_ENOMEM, "",
                        "step %" PRIu64 " was not queued", st->number);
        step_fail(x, st, &e);
        step_free(x->sessions, st);
        return;
    }
    struct sess_user *u = s->acct;
    /* Back from idle: start at the scheduler's clock, with no credit. */
    if (u->queued == 0 && u->vtime < x->vclock)
        u->vtime = x->vclock;
    if (es->running == NULL && es->head == NULL && es->vtime < u->sclock)
        es->vtime = u->sclock;
    u->queued++;
    st->admitted = st->charged;
    es->inflight += st->admitted;
    if (es->tail != NULL)
        es->tail->next = st;
    else
        es->head = st;
    es->tail = st;
    es->queued++;
    x->queued++;
    if (es->running == NULL)
        ready_add(x, es);
    schedule(x);
}

/* ---- FETCH ---------------------------------------------------------------- */

/* KILN_OK when every var is ready (reply encoded), 1 when some is still
 * pending, or an error for a missing or failed var or an oversized reply. */
static int try_reply(struct exec *x, struct sess *s, const uint64_t *ids, uint32_t count,
                     msgpack_sbuffer *reply, struct proto_error *err)
{
    bool pending = false;
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        const struct sess_var *v = sess_var_get(s, ids[i]);
        if (v == NULL || v->state == SESS_VAR_FAILED) {
            char field[PROTO_FIELD_MAX];
            snprintf(field, sizeof(field), "body.vars[%u]", i);
            if (v == NULL)
                return proto_error_set(err, KILN_ENOTFOUND, field,
                                       "var %" PRIu64 " is not kept by this session", ids[i]);
            proto_error_set(err, v->err_code, field, "var %" PRIu64 ": %s", ids[i], v->err_msg);
            err->node = v->err_node;
            return v->err_code;
        }
        if (v->state == SESS_VAR_PENDING)
            pending = true;
        else
            total += v->data_len;
    }
    if (pending)
        return 1;
    /* Room for the envelope and per-var headers besides the data. */
    if (total > x->max_reply || x->max_reply - total < 64 + (uint64_t) count * 128)
        return proto_error_set(err, KILN_ELIMIT, "body.vars",
                               "the values hold %" PRIu64 " bytes, more than one reply of %" PRIu64
                               " bytes carries: fetch fewer vars at once",
                               total, x->max_reply);
    /* Values spilled to disk come back first (spill.h rule 5). */
    int back = x->sessions->spill != NULL ? spill_fetch(x->sessions->spill, s, ids, count, err)
                                          : KILN_OK;
    if (back != KILN_OK)
        return back;
    struct proto_tensor *ts = calloc(count ? count : 1, sizeof(*ts));
    if (ts == NULL)
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory for the reply");
    for (uint32_t i = 0; i < count; i++) {
        const struct sess_var *v = sess_var_get(s, ids[i]);
        ts[i].id = v->id;
        ts[i].dtype = v->dtype;
        ts[i].rank = v->rank;
        memcpy(ts[i].shape, v->shape, sizeof(ts[i].shape));
        ts[i].data = v->data;
        ts[i].bytes = v->data_len;
    }
    /* One allocation of the final size: the values are copied once, not
     * again at every doubling of the buffer. */
    size_t want = reply->size + (size_t) total + 64 + (size_t) count * 128;
    if (reply->alloc < want) {
        char *grown = realloc(reply->data, want);
        if (grown != NULL) {
            reply->data = grown;
            reply->alloc = want;
        }
    }
    int rc = proto_encode_reply_fetch(reply, ts, count);
    free(ts);
    if (rc == KILN_ENOMEM)
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory encoding the reply");
    if (rc != KILN_OK) /* a var whose bytes disagree with its shape: our bug */
        return proto_error_set(err, KILN_EINTERNAL, "", "cannot encode the values (%s)",
                               kiln_err_name(rc));
    return KILN_OK;
}

static void timer_tick(uv_timer_t *h);

int exec_fetch(struct exec *x, struct sess *s, const struct proto_fetch *f,
               msgpack_sbuffer *reply, struct proto_error *err)
{
    int rc = try_reply(x, s, f->ids, f->count, reply, err);
    if (rc != 1)
        return rc;
    if (f->timeout_ms == 0)
        return proto_error_set(err, KILN_ENOTREADY, "body.timeout_ms",
                               "the values are not ready yet");
    struct exec_sess *es = sess_state(s);
    if (es == NULL)
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory");
    if (es->nwaits >= EXEC_WAITS_PER_SESSION)
        return proto_error_set(err, KILN_EBUSY, "",
                               "%u FETCH requests of this session are waiting already (at most "
                               "%d): retry when one returns",
                               es->nwaits, EXEC_WAITS_PER_SESSION);
    if (x->nwaits >= EXEC_WAITS_MAX)
        return proto_error_set(err, KILN_EBUSY, "",
                               "%u FETCH requests are waiting in kilnd (at most %d): retry "
                               "shortly",
                               x->nwaits, EXEC_WAITS_MAX);
    if (x->srv->current == NULL) /* only a request being handled can wait */
        return proto_error_set(err, KILN_EINTERNAL, "", "FETCH cannot wait outside a request");
    struct exec_wait *w = calloc(1, sizeof(*w));
    uint64_t *ids = calloc(f->count ? f->count : 1, sizeof(*ids));
    if (w == NULL || ids == NULL) {
        free(w);
        free(ids);
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory");
    }
    memcpy(ids, f->ids, f->count * sizeof(*ids));
    w->session = s->id;
    w->ids = ids;
    w->count = f->count;
    w->deadline_ms = uv_now(x->loop) + f->timeout_ms;
    w->ctx = srv_defer(x->srv);
    w->next = x->waits;
    x->waits = w;
    x->nwaits++;
    es->nwaits++;
    if (x->timer_init && !uv_is_active((uv_handle_t *) &x->timer))
        uv_timer_start(&x->timer, timer_tick, WAIT_TICK_MS, WAIT_TICK_MS);
    return KILN_OK;
}

/* Send a deferred reply: `code` KILN_OK with `reply` built, or an error. */
static void answer(struct exec *x, struct exec_wait *w, int code, msgpack_sbuffer *reply,
                   struct proto_error *err)
{
    if (code != KILN_OK) {
        err->code = code;
        msgpack_sbuffer_clear(reply);
        if (proto_encode_reply_error(reply, err) != KILN_OK)
            msgpack_sbuffer_clear(reply);
    }
    srv_respond(x->srv, w->ctx, reply->data, reply->size);
    stats_count_reply(x->stats, code);
}

/* Unlink and free one wait, given the link that points to it. */
static void drop_wait(struct exec *x, struct exec_wait **link)
{
    struct exec_wait *w = *link;
    *link = w->next;
    x->nwaits--;
    struct sess *s = sess_find(x->sessions, w->session);
    if (s != NULL && s->exec != NULL)
        ((struct exec_sess *) s->exec)->nwaits--;
    free(w->ids);
    free(w);
}

/* Answer the waits of `session` that can be answered now. Also used with
 * session 0 by the timer, for deadlines. */
static void resolve_waits(struct exec *x, uint64_t session)
{
    if (x->stopping)
        return;
    uint64_t now = uv_now(x->loop);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (struct exec_wait **link = &x->waits; *link != NULL;) {
        struct exec_wait *w = *link;
        struct proto_error err = {.node = -1};
        int rc = 1;
        /* Readiness changes only when a step of the session finishes or
         * one of its vars is released; the timer (session 0) only checks
         * deadlines, so waits cost nothing while nothing happens. */
        if (session != 0 && w->session == session) {
            struct sess *s = sess_find(x->sessions, w->session);
            msgpack_sbuffer_clear(&sb);
            if (s == NULL)
                rc = proto_error_set(&err, KILN_ESESSION, "session", "the session ended");
            else
                rc = try_reply(x, s, w->ids, w->count, &sb, &err);
        }
        if (rc == 1 && now >= w->deadline_ms)
            rc = proto_error_set(&err, KILN_ENOTREADY, "body.timeout_ms",
                                 "the values were not ready within the timeout");
        if (rc == 1) {
            link = &w->next;
            continue;
        }
        answer(x, w, rc, &sb, &err);
        drop_wait(x, link);
    }
    msgpack_sbuffer_destroy(&sb);
    if (x->waits == NULL && x->timer_init)
        uv_timer_stop(&x->timer);
}

static void timer_tick(uv_timer_t *h)
{
    resolve_waits(h->data, 0);
}

/* Answer every wait (of `session`, or all when 0) with `code`. */
static void answer_all(struct exec *x, uint64_t session, int code, const char *why)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (struct exec_wait **link = &x->waits; *link != NULL;) {
        if (session != 0 && (*link)->session != session) {
            link = &(*link)->next;
            continue;
        }
        struct proto_error err;
        proto_error_set(&err, code, code == KILN_ESESSION ? "session" : "", "%s", why);
        answer(x, *link, code, &sb, &err);
        drop_wait(x, link);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* ---- life ----------------------------------------------------------------- */

int exec_init(struct exec *x, uv_loop_t *loop, struct sess_table *t, struct srv *srv,
              struct stats *stats, const struct log *log, uint64_t max_reply)
{
    memset(x, 0, sizeof(*x));
    x->loop = loop;
    x->sessions = t;
    x->srv = srv;
    x->stats = stats;
    x->log = log;
    x->max_reply = max_reply;
    int rv = uv_timer_init(loop, &x->timer);
    if (rv == 0) {
        x->timer.data = x;
        x->timer_init = true;
    }
    t->on_close = exec_session_closed;
    t->is_busy = exec_session_busy;
    t->hook_arg = x;
    return rv;
}

void exec_discard(struct exec *x, struct sess *s, struct step *st)
{
    for (uint32_t j = 0; j < st->nkeep; j++)
        sess_var_release(x->sessions, s, st->keep[j].var->id);
    if (s->steps == st->number)
        s->steps--;
    step_free(x->sessions, st);
}

bool exec_session_busy(void *arg, const struct sess *s)
{
    (void) arg;
    const struct exec_sess *es = s->exec;
    return es != NULL && (es->running != NULL || es->head != NULL || es->nwaits > 0);
}

void exec_released(struct exec *x, struct sess *s)
{
    /* A released var turns a waiting FETCH that names it into NOTFOUND. */
    if (s->exec != NULL && ((struct exec_sess *) s->exec)->nwaits > 0)
        resolve_waits(x, s->id);
}

uint64_t exec_cancel(struct exec *x, struct sess *s)
{
    struct exec_sess *es = s->exec;
    uint64_t n = 0;
    while (es != NULL && es->head != NULL) {
        struct step *st = es->head;
        es->head = st->next;
        if (es->head == NULL)
            es->tail = NULL;
        es->queued--;
        x->queued--;
        st->acct->queued--;
        inflight_done(es, st);
        struct proto_error e;
        proto_error_set(&e, KILN_EEXEC, "", "step %" PRIu64 " was cancelled (CANCEL) before it ran",
                        st->number);
        step_fail(x, st, &e);
        step_free(x->sessions, st);
        n++;
    }
    if (es != NULL)
        ready_remove(x, es);
    if (n > 0)
        resolve_waits(x, s->id);
    return n;
}

void exec_session_closed(void *arg, struct sess *s)
{
    struct exec *x = arg;
    struct exec_sess *es = s->exec;
    if (es != NULL) {
        ready_remove(x, es);
        while (es->head != NULL) {
            struct step *st = es->head;
            es->head = st->next;
            st->acct->queued--;
            step_free(x->sessions, st);
            x->queued--;
        }
        if (es->running != NULL && es->gs != NULL && es->running->gs == es->gs) {
            es->running->gs_free = true; /* the running step still uses it */
            es->gs = NULL;
        }
        if (es->running != NULL) {
            es->running->orphan = true;
            /* Not started yet: it never will. (Started: it runs out.) */
            uv_cancel((uv_req_t *) &es->running->work);
        }
    }
    if (!x->stopping)
        answer_all(x, s->id, KILN_ESESSION, "the session ended");
    if (es != NULL) {
        jit_mem_unref(es->mem);
        stream_free_async(x, es->gs);
    }
    free(es);
    s->exec = NULL;
}

void exec_session_info(const struct sess *s, struct exec_sess_info *out)
{
    const struct exec_sess *es = s->exec;
    out->queued = es != NULL ? es->queued : 0;
    out->running = es != NULL && es->running != NULL;
    out->kernel_ns = es != NULL ? es->kernel_ns : 0;
}

void exec_drain(struct exec *x)
{
    answer_all(x, 0, KILN_ESHUTDOWN, "kilnd is shutting down");
}

void exec_stop(struct exec *x)
{
    x->stopping = true;
    /* Steps handed to a worker but not started yet never will be. */
    for (struct sess *s = x->sessions->oldest; s != NULL; s = s->next) {
        struct exec_sess *es = s->exec;
        if (es != NULL && es->running != NULL)
            uv_cancel((uv_req_t *) &es->running->work);
    }
    while (x->waits != NULL)
        drop_wait(x, &x->waits);
    if (x->timer_init)
        uv_timer_stop(&x->timer);
}
