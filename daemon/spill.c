/* spill.c: the host -> disk tier (the rules are in spill.h).
 *
 * Victims are chosen on the loop thread, in the same call that needs the
 * room, so the charge that asked can succeed at once; the bytes are
 * written by a job on a worker, and the buffer is freed when it is back.
 * A var's place is `where` in its spill_entry; the buffer's lifetime is
 * decided on the loop thread only, so a var still being written can be
 * taken back by a step that needs it without any lock: the worker only
 * reads the buffer, and the job's completion sees that the var is no
 * longer WRITING and just releases the extent it wrote. */
#include <errno.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "mem.h"
#include "rundir.h"
#include "session.h"
#include "spill.h"
#include "step.h"

/* ---- the LRU of vars that may spill ----------------------------------------- */

static void lru_unlink(struct spill *sp, struct sess_var *v)
{
    struct spill_entry *e = &v->spill;
    if (!e->listed)
        return;
    if (e->prev != NULL)
        e->prev->spill.next = e->next;
    else
        sp->lru_head = e->next;
    if (e->next != NULL)
        e->next->spill.prev = e->prev;
    else
        sp->lru_tail = e->prev;
    e->prev = e->next = NULL;
    e->listed = false;
}

static void lru_append(struct spill *sp, struct sess_var *v)
{
    struct spill_entry *e = &v->spill;
    e->prev = sp->lru_tail;
    e->next = NULL;
    if (sp->lru_tail != NULL)
        sp->lru_tail->spill.next = v;
    else
        sp->lru_head = v;
    sp->lru_tail = v;
    e->listed = true;
}

/* Used now: the most recent. */
static void touch(struct spill *sp, struct sess_var *v)
{
    if (v->spill.listed) {
        lru_unlink(sp, v);
        lru_append(sp, v);
    }
}

void spill_var_ready(struct spill *sp, struct sess_var *v)
{
    if (sp->on && !v->spill.listed && v->spill.where == SPILL_RAM)
        lru_append(sp, v);
}

void spill_var_forget(struct spill *sp, struct sess_var *v)
{
    lru_unlink(sp, v);
    /* Write jobs and steps hold references: only DISK can be left here. */
    if (v->spill.where != SPILL_RAM)
        spill_file_release(&sp->file, v->spill.off, v->data_len);
    v->spill.where = SPILL_RAM;
}

void spill_count_refused(struct spill *sp)
{
    sp->host.refused++;
}

/* The var's buffer goes back to the C library, and its session's cache of
 * free blocks with it (rule 3). */
static void drop_data(struct sess_var *v)
{
    jit_mem_trim(v->mem);
    jit_mem_free(NULL, v->data, v->data_len);
    jit_mem_unref(v->mem);
    v->mem = NULL;
    v->data = NULL;
}

/* ---- writing out ------------------------------------------------------------ */

struct spill_write {
    struct sess_var *v; /* referenced by the job */
    const void *data;
    uint64_t off, len;
    int err;
};

struct spill_job {
    uv_work_t work;
    struct spill *sp;
    int fd;
    uint64_t ns;
    uint32_t n, cap;
    struct spill_write *w;
};

static void job_work(uv_work_t *req)
{
    struct spill_job *j = req->data;
    uint64_t t0 = uv_hrtime();
    for (uint32_t i = 0; i < j->n; i++)
        j->w[i].err = spill_file_write(j->fd, j->w[i].off, j->w[i].data, j->w[i].len);
    j->ns = uv_hrtime() - t0;
}

static void job_done(uv_work_t *req, int status)
{
    struct spill_job *j = req->data;
    struct spill *sp = j->sp;
    for (uint32_t i = 0; i < j->n; i++) {
        struct spill_write *w = &j->w[i];
        struct sess_var *v = w->v;
        sp->host.moving -= w->len;
        if (v->spill.where != SPILL_WRITING || v->spill.off != w->off) {
            /* A step took it back meanwhile: this copy is not needed. */
            spill_file_release(&sp->file, w->off, w->len);
        } else if (status == 0 && w->err == 0) {
            drop_data(v);
            v->spill.where = SPILL_DISK;
            sp->host.spills++;
            sp->host.spilled_bytes += w->len;
        } else {
            /* Rule 7: it stays in memory, and spilling stops. */
            spill_file_release(&sp->file, w->off, w->len);
            v->spill.where = SPILL_RAM;
            sess_mem_charge_over(sp->t, v->session, v->acct, w->len);
            v->bytes += w->len;
            lru_append(sp, v);
            if (status == 0 && !sp->broken) {
                sp->broken = true;
                struct log_line l;
                log_begin(&l, sp->log, LOG_ERROR,
                          "cannot write to the spill file: spilling is off from now on");
                log_str(&l, "error", strerror(w->err));
                log_end(&l);
            }
        }
        sess_var_unref(sp->t, v);
    }
    sp->host.spill_ns += j->ns;
    sp->jobs--;
    free(j->w);
    free(j);
}

/* Why no more can spill, logged once per episode. */
static void warn_full(struct spill *sp, int rc)
{
    static const char *const what[] = {"the spill file reached --spill-max",
                                       "the disk holding the spill file is full"};
    struct log_line l;
    log_begin(&l, sp->log, LOG_WARN, rc == EFBIG ? what[0] : rc == ENOSPC ? what[1]
                                                                          : "cannot grow the spill file");
    log_u64(&l, "spill_bytes", sp->file.used);
    log_u64(&l, "spill_max", sp->file.cap);
    if (rc != EFBIG && rc != ENOSPC)
        log_str(&l, "error", strerror(rc));
    log_end(&l);
}

uint64_t spill_make_room(struct spill *sp, uint64_t need)
{
    if (!sp->on || sp->broken || need == 0)
        return 0;
    struct spill_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return 0;
    uint64_t freed = 0;
    int rc = 0;
    for (struct sess_var *v = sp->lru_head, *next; v != NULL && freed < need; v = next) {
        next = v->spill.next;
        if (v->spill.pins > 0 || v->state != SESS_VAR_READY || v->data == NULL ||
            v->data_len < SPILL_MIN_BYTES)
            continue;
        if (j->n == j->cap) {
            uint32_t cap = j->cap ? j->cap * 2 : 8;
            struct spill_write *grown = realloc(j->w, cap * sizeof(*grown));
            if (grown == NULL)
                break;
            j->w = grown;
            j->cap = cap;
        }
        uint64_t off;
        if ((rc = spill_file_alloc(&sp->file, v->data_len, &off)) != 0)
            break;
        lru_unlink(sp, v);
        v->spill.where = SPILL_WRITING;
        v->spill.off = off;
        sess_mem_uncharge_id(sp->t, v->session, v->acct, v->data_len);
        v->bytes -= v->data_len;
        sess_var_ref(v);
        sp->host.moving += v->data_len;
        j->w[j->n++] = (struct spill_write){v, v->data, off, v->data_len, 0};
        freed += v->data_len;
    }
    if (rc != 0 && !sp->warned) {
        sp->warned = true;
        warn_full(sp, rc);
    } else if (rc == 0 && j->n > 0) {
        sp->warned = false;
    }
    if (j->n == 0) {
        free(j->w);
        free(j);
        return 0;
    }
    j->sp = sp;
    j->fd = sp->file.fd;
    j->work.data = j;
    sp->jobs++;
    if (uv_queue_work(sp->loop, &j->work, job_work, job_done) != 0) {
        job_done(&j->work, UV_ECANCELED); /* everything goes back as it was */
        return 0;
    }
    return freed;
}

/* ---- steps ------------------------------------------------------------------ */

struct spill_load {
    uint32_t k; /* its EXTERN slot */
    struct sess_var *v;
    uint64_t id, off, len; /* copied: the worker reads nothing of the var */
    int64_t dup;           /* >= 0: the same var as l[dup] (bound twice): no read */
    void *buf;
    int err; /* errno of a failed read; ENOMEM: no buffer */
};

struct spill_step {
    int fd;
    uint64_t ns;
    uint32_t n;
    struct spill_load l[];
};

/* Bytes a graph may materialise besides its inputs: every other node
 * once. The fused plan materialises far fewer; this is a bound. */
static uint64_t graph_bound(const struct ir_graph *g)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < g->count; i++) {
        const struct ir_node *n = &g->nodes[i];
        if (n->op == IR_OP_EXTERN)
            continue;
        uint64_t b = (uint64_t) n->numel * ir_dtype_size((enum ir_dtype) n->dtype);
        sum = b > UINT64_MAX - sum ? UINT64_MAX : sum + b;
    }
    return sum;
}

/* Undo what spill_step_start did for st->bind[0..upto) plus the pins. */
static void step_unwind(struct spill *sp, struct step *st, uint32_t upto, const uint8_t *was)
{
    for (uint32_t k = 0; k < upto; k++) {
        struct sess_var *v = st->bind[k];
        if (was[k] == SPILL_RAM)
            continue;
        sess_mem_uncharge_id(sp->t, v->session, v->acct, v->data_len);
        v->bytes -= v->data_len;
        if (was[k] == SPILL_WRITING)
            lru_unlink(sp, v);
        v->spill.where = was[k];
        st->inputs[k] = NULL;
    }
    for (uint32_t k = 0; k < st->nbind; k++)
        st->bind[k]->spill.pins--;
}

int spill_step_start(struct spill *sp, struct step *st, uint64_t reserved, struct proto_error *err)
{
    if (!sp->on)
        return KILN_OK;
    uint32_t nload = 0;
    for (uint32_t k = 0; k < st->nbind; k++) {
        st->bind[k]->spill.pins++; /* first, so that charges below spill none of them */
        nload += st->bind[k]->spill.where == SPILL_DISK; /* bound twice: counted twice */
    }
    struct spill_step *ss = calloc(1, sizeof(*ss) + nload * sizeof(ss->l[0]));
    uint8_t *was = calloc(st->nbind ? st->nbind : 1, 1);
    if (ss == NULL || was == NULL) {
        free(ss);
        free(was);
        step_unwind(sp, st, 0, NULL);
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory starting step %" PRIu64,
                               st->number);
    }
    ss->fd = sp->file.fd;
    struct sess *owner = sess_find(sp->t, st->session);
    for (uint32_t k = 0; k < st->nbind; k++) {
        struct sess_var *v = st->bind[k];
        was[k] = v->spill.where;
        if (was[k] == SPILL_RAM)
            continue;
        if (was[k] == SPILL_LOADING) {
            /* Bound twice by this step: read once. (Another running step
             * reading it back cannot be: one step per session runs.) */
            int64_t first = -1;
            for (uint32_t i = 0; i < ss->n && first < 0; i++)
                if (ss->l[i].v == v && ss->l[i].dup < 0)
                    first = i;
            if (first >= 0) {
                was[k] = SPILL_RAM; /* nothing of its own to undo */
                ss->l[ss->n++] = (struct spill_load){.k = k, .v = v, .dup = first};
                continue;
            }
            step_unwind(sp, st, k, was);
            free(ss);
            free(was);
            return proto_error_set(err, KILN_EBUSY, "",
                                   "step %" PRIu64 " cannot start: its input var %" PRIu64
                                   " is being read back for another step",
                                   st->number, v->id);
        }
        int rc = owner == NULL ? KILN_ESESSION
                               : sess_mem_charge(sp->t, owner, v->data_len, err);
        if (rc != KILN_OK) {
            step_unwind(sp, st, k, was);
            free(ss);
            free(was);
            if (rc == KILN_EQUOTA) /* the user's limit, not the daemon's: say so */
                return rc;
            return proto_error_set(err, KILN_ENOMEM, "",
                                   "step %" PRIu64 " needs its input var %" PRIu64
                                   " (%" PRIu64 " bytes) in memory, but the memory budget of %"
                                   PRIu64 " bytes cannot hold it even after spilling "
                                   "(%" PRIu64 " bytes in use, the rest held by running steps "
                                   "or unable to spill)",
                                   st->number, v->id, v->data_len, sp->t->mem_budget,
                                   sp->t->mem_in_use);
        }
        v->bytes += v->data_len;
        if (was[k] == SPILL_WRITING) {
            v->spill.where = SPILL_RAM; /* taken back: the write in flight is dropped */
            lru_append(sp, v);
            st->inputs[k] = v->data;
        } else {
            v->spill.where = SPILL_LOADING;
            ss->l[ss->n++] = (struct spill_load){
                .k = k, .v = v, .id = v->id, .off = v->spill.off, .len = v->data_len, .dup = -1};
        }
    }
    free(was);
    for (uint32_t k = 0; k < st->nbind; k++)
        touch(sp, st->bind[k]);
    st->spill = ss;
    /* Room for what the step may allocate (rule 4), as far as possible. */
    const struct sess_table *t = sp->t;
    uint64_t bound = graph_bound(&st->graph);
    if (bound > t->mem_budget)
        bound = t->mem_budget;
    uint64_t want = t->mem_in_use + reserved;
    want = bound > UINT64_MAX - want ? UINT64_MAX : want + bound;
    if (want > t->mem_budget)
        spill_make_room(sp, want - t->mem_budget);
    return KILN_OK;
}

int spill_step_load(struct step *st)
{
    struct spill_step *ss = st->spill;
    uint64_t t0 = uv_hrtime();
    for (uint32_t i = 0; i < ss->n; i++) {
        struct spill_load *l = &ss->l[i];
        if (l->dup >= 0) {
            st->inputs[l->k] = ss->l[l->dup].buf;
            continue;
        }
        l->buf = jit_mem_alloc(st->mem, l->len);
        l->err = l->buf == NULL ? ENOMEM : spill_file_read(ss->fd, l->off, l->buf, l->len);
        if (l->err != 0) {
            jit_mem_free(st->mem, l->buf, l->len);
            l->buf = NULL;
            st->rc = l->err == ENOMEM ? KILN_ENOMEM : KILN_EINTERNAL;
            st->ierr.node = -1;
            snprintf(st->ierr.message, sizeof st->ierr.message,
                     "cannot read input var %" PRIu64 " back from the spill file: %s", l->id,
                     strerror(l->err));
            break;
        }
        st->inputs[l->k] = l->buf;
    }
    ss->ns = uv_hrtime() - t0;
    return st->rc == KILN_OK || ss->n == 0 ? KILN_OK : st->rc;
}

void spill_step_done(struct spill *sp, struct step *st)
{
    struct spill_step *ss = st->spill;
    if (ss == NULL)
        return;
    for (uint32_t i = 0; i < ss->n; i++) {
        struct spill_load *l = &ss->l[i];
        struct sess_var *v = l->v;
        if (l->dup >= 0)
            continue;
        if (l->buf != NULL) {
            spill_file_release(&sp->file, v->spill.off, v->data_len);
            v->data = l->buf;
            v->mem = st->mem;
            if (v->mem != NULL)
                jit_mem_ref(v->mem);
            v->spill.where = SPILL_RAM;
            lru_append(sp, v);
            sp->host.restores++;
            sp->host.restored_bytes += v->data_len;
            continue;
        }
        /* Not read (the step never ran, or an earlier read failed), or no
         * buffer for it: it is still on disk. */
        sess_mem_uncharge_id(sp->t, v->session, v->acct, v->data_len);
        v->bytes -= v->data_len;
        v->spill.where = SPILL_DISK;
        if (l->err != 0 && l->err != ENOMEM) {
            /* Rule 7: a read that failed loses the value. */
            spill_file_release(&sp->file, v->spill.off, v->data_len);
            v->spill.where = SPILL_RAM;
            struct proto_error e;
            proto_error_set(&e, KILN_EEXEC, "", "var %" PRIu64
                            " was lost: reading it back from the spill file failed: %s",
                            v->id, strerror(l->err));
            sess_var_set_failed(v, &e);
        }
    }
    sp->host.restore_ns += ss->ns;
    for (uint32_t k = 0; k < st->nbind; k++) {
        st->bind[k]->spill.pins--;
        touch(sp, st->bind[k]);
    }
    free(ss);
    st->spill = NULL;
}

/* ---- FETCH -------------------------------------------------------------------- */

int spill_fetch(struct spill *sp, struct sess *s, const uint64_t *ids, uint32_t count,
                struct proto_error *err)
{
    if (!sp->on)
        return KILN_OK;
    bool disk = false;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t where = sess_var_get(s, ids[i])->spill.where;
        if (where == SPILL_LOADING)
            return 1;
        disk |= where == SPILL_DISK;
    }
    int rc = KILN_OK;
    for (uint32_t i = 0; i < count; i++)
        sess_var_get(s, ids[i])->spill.pins++; /* restoring one must not spill another */
    for (uint32_t i = 0; disk && rc == KILN_OK && i < count; i++) {
        struct sess_var *v = sess_var_get(s, ids[i]);
        if (v->spill.where != SPILL_DISK)
            continue;
        char field[PROTO_FIELD_MAX];
        snprintf(field, sizeof(field), "body.vars[%u]", i);
        if (sess_mem_charge(sp->t, s, v->data_len, err) != KILN_OK) {
            rc = proto_error_set(err, KILN_ENOMEM, field,
                                 "var %" PRIu64 " (%" PRIu64 " bytes) is on disk and the "
                                 "memory budget of %" PRIu64 " bytes cannot hold it even after "
                                 "spilling (%" PRIu64 " bytes in use): fetch fewer vars at once",
                                 v->id, v->data_len, sp->t->mem_budget, sp->t->mem_in_use);
            break;
        }
        uint64_t t0 = uv_hrtime();
        void *buf = jit_mem_alloc(NULL, v->data_len);
        int e = buf == NULL ? ENOMEM : spill_file_read(sp->file.fd, v->spill.off, buf, v->data_len);
        sp->host.restore_ns += uv_hrtime() - t0;
        if (e != 0) {
            jit_mem_free(NULL, buf, v->data_len);
            sess_mem_uncharge(sp->t, s, v->data_len);
            if (e == ENOMEM) {
                rc = proto_error_set(err, KILN_ENOMEM, field, "out of memory reading var %" PRIu64
                                     " back from disk", v->id);
                break;
            }
            spill_file_release(&sp->file, v->spill.off, v->data_len);
            v->spill.where = SPILL_RAM;
            rc = proto_error_set(err, KILN_EEXEC, field,
                                 "var %" PRIu64 " was lost: reading it back from the spill file "
                                 "failed: %s", v->id, strerror(e));
            sess_var_set_failed(v, err);
            break;
        }
        spill_file_release(&sp->file, v->spill.off, v->data_len);
        v->data = buf;
        v->bytes += v->data_len;
        v->spill.where = SPILL_RAM;
        lru_append(sp, v);
        sp->host.restores++;
        sp->host.restored_bytes += v->data_len;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct sess_var *v = sess_var_get(s, ids[i]);
        v->spill.pins--;
        touch(sp, v);
    }
    return rc;
}

/* ---- life and numbers ------------------------------------------------------- */

/* A directory given with --spill-dir: created 0700 when missing; it must
 * be a directory we may write to. */
static int check_dir(const char *dir, bool private_dir, char *why, size_t n)
{
    if (private_dir)
        return rundir_prepare(dir, why, n);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, n, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, n, "%s is not a directory", dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(why, n, "cannot write to %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int spill_init(struct spill *sp, struct sess_table *t, uv_loop_t *loop, const struct log *log,
               const struct spill_opts *o)
{
    memset(sp, 0, sizeof(*sp));
    sp->t = t;
    sp->loop = loop;
    sp->log = log;
    sp->host.name = "host";
    sp->disk.name = "disk";
    t->spill = sp; /* off, it still counts refused charges */
    if (t->mem_budget == 0 || o->max == 0 || o->dir == NULL)
        return 0;
    char why[512];
    struct log_line l;
    if (check_dir(o->dir, o->private_dir, why, sizeof(why)) != 0)
        goto fail;
    uint64_t max = o->max;
    struct statvfs vfs;
    if (max == SPILL_MAX_AUTO) {
        max = t->mem_budget > SPILL_MAX_DEFAULT_CAP / SPILL_MAX_DEFAULT_FACTOR
                  ? SPILL_MAX_DEFAULT_CAP
                  : t->mem_budget * SPILL_MAX_DEFAULT_FACTOR;
        if (statvfs(o->dir, &vfs) == 0) {
            uint64_t avail = (uint64_t) vfs.f_bavail * vfs.f_frsize / 2;
            max = avail < max ? avail : max;
        }
    }
    if (spill_file_open(&sp->file, o->dir, max, why, sizeof(why)) != 0)
        goto fail;
    struct statfs fs;
    if (statfs(o->dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC) {
        log_begin(&l, log, LOG_WARN, "the spill directory is on tmpfs: spilled tensors stay in "
                                     "memory (use --spill-dir on a disk)");
        log_str(&l, "spill_dir", o->dir);
        log_end(&l);
    }
    sp->on = true;
    sp->disk.limit = sp->file.cap;
    log_begin(&l, log, LOG_INFO, "tensors spill to disk past the memory budget");
    log_str(&l, "spill_dir", o->dir);
    log_u64(&l, "spill_max", sp->file.cap);
    log_end(&l);
    return 0;
fail:
    log_begin(&l, log, LOG_ERROR, "cannot set up spilling (--spill-dir; --spill-max 0 turns it off)");
    log_str(&l, "error", why);
    log_end(&l);
    return -1;
}

void spill_fini(struct spill *sp)
{
    if (sp->t != NULL && sp->t->spill == sp)
        sp->t->spill = NULL;
    spill_file_close(&sp->file);
    sp->on = false;
}

static void tier_out(struct proto_tier *o, const struct spill_tier *s, uint64_t in_use)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->name, sizeof(o->name), "%s", s->name);
    o->in_use = in_use;
    o->limit = s->limit;
    o->moving = s->moving;
    o->spills = s->spills;
    o->spilled_bytes = s->spilled_bytes;
    o->spill_ms = s->spill_ns / 1000000;
    o->restores = s->restores;
    o->restored_bytes = s->restored_bytes;
    o->restore_ms = s->restore_ns / 1000000;
    o->refused = s->refused;
}

uint32_t spill_tiers(const struct spill *sp, const struct sess_table *t, struct proto_tier *out,
                     uint32_t max)
{
    struct spill_tier host = sp->host;
    host.name = "host";
    host.limit = t->mem_budget;
    uint32_t n = 0;
    if (n < max)
        tier_out(&out[n++], &host, t->mem_in_use);
    if (sp->on && n < max)
        tier_out(&out[n++], &sp->disk, sp->file.used);
    return n;
}
