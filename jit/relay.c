/* relay.c: matmul and convolutions through oneDNN (relay.h). */
#include "relay.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_err.h"
#include "relay_ref.h"

#ifdef KILN_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#ifdef KILN_HAVE_GOMP
void omp_set_num_threads(int n); /* libgomp, which oneDNN runs on */
#endif

#define RELAY_PRIMITIVES 64 /* convolution primitives kept (LRU) */

/* ---- the reference, split over the pool ---------------------------------- */

struct refjob {
    const struct ir_node *n, *an, *bn;
    const void *a, *b;
    void *y;
};

static void ref_chunk(void *arg, int64_t b, int64_t e)
{
    const struct refjob *j = arg;
    ir_relay_ref(j->n, j->an, j->bn, j->a, j->b, j->y, b, e);
}

static void run_ref(struct jit_pool *pool, const struct ir_node *n, const struct ir_node *an,
                    const struct ir_node *bn, const void *a, const void *b, void *y)
{
    struct refjob j = {n, an, bn, a, b, y};
    int64_t rows = n->rank ? n->shape[0] : 1;
    jit_pool_for(pool, rows, 1, ref_chunk, &j);
}

#ifdef KILN_HAVE_DNNL

/* ---- convolution primitives --------------------------------------------- */

/* Everything a primitive depends on. */
struct ckey {
    int op;
    int64_t x[4], w[4], y[4];
    struct ir_conv c;
};

/* One of a primitive's three arguments: kiln's row-major layout (`user`)
 * and the layout the primitive wants (`want`), with a reorder between
 * them when they differ. */
struct carg {
    int arg; /* DNNL_ARG_* */
    bool input;
    dnnl_memory_desc_t user, want;
    dnnl_primitive_t reorder; /* NULL: same layout */
    size_t bytes;             /* of `want` */
};

struct cprim {
    struct ckey key;
    dnnl_primitive_t prim;
    struct carg args[3]; /* in0, in1, out */
    dnnl_memory_desc_t scratch_md;
    size_t scratch;
    uint64_t used;
    int refs; /* runs using it, plus one while cached */
};

#endif

struct jit_relay {
    pthread_mutex_t lock;
    unsigned threads; /* a library call's thread team; 0: its default */
    struct jit_relay_stats st;
#ifdef KILN_HAVE_DNNL
    dnnl_engine_t engine;
    struct cprim *prims[RELAY_PRIMITIVES];
    uint64_t tick;
#endif
};

#ifdef KILN_HAVE_DNNL

static void cprim_free(struct cprim *p)
{
    if (p == NULL)
        return;
    if (p->prim)
        dnnl_primitive_destroy(p->prim);
    for (int k = 0; k < 3; k++)
        if (p->args[k].reorder)
            dnnl_primitive_destroy(p->args[k].reorder);
    free(p);
}

static void cprim_unref(struct jit_relay *r, struct cprim *p)
{
    pthread_mutex_lock(&r->lock);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (last)
        cprim_free(p);
}

static dnnl_status_t plain_md(dnnl_memory_desc_t *md, const int64_t *dims4, int groups,
                              bool weights)
{
    dnnl_dims_t d;
    if (weights && groups > 1) {
        d[0] = groups;
        d[1] = dims4[0] / groups;
        d[2] = dims4[1];
        d[3] = dims4[2];
        d[4] = dims4[3];
        return dnnl_memory_desc_init_by_tag(md, 5, d, dnnl_f32, dnnl_goihw);
    }
    for (int k = 0; k < 4; k++)
        d[k] = dims4[k];
    return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, weights ? dnnl_oihw : dnnl_nchw);
}

static dnnl_status_t any_md(dnnl_memory_desc_t *md, const dnnl_memory_desc_t *like)
{
    return dnnl_memory_desc_init_by_tag(md, like->ndims, like->dims, dnnl_f32,
                                        dnnl_format_tag_any);
}

/* Sets up one argument from the primitive's choice of layout. */
static bool carg_init(struct jit_relay *r, struct carg *a, int arg, bool input,
                      const dnnl_memory_desc_t *user, const_dnnl_primitive_desc_t pd,
                      dnnl_query_t q)
{
    a->arg = arg;
    a->input = input;
    a->user = *user;
    const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md(pd, q, 0);
    if (w == NULL)
        return false;
    a->want = *w;
    a->bytes = dnnl_memory_desc_get_size(&a->want);
    if (dnnl_memory_desc_equal(&a->user, &a->want))
        return true;
    dnnl_primitive_desc_t rpd = NULL;
    const dnnl_memory_desc_t *from = input ? &a->user : &a->want, *to = input ? &a->want : &a->user;
    if (dnnl_reorder_primitive_desc_create(&rpd, from, r->engine, to, r->engine, NULL) !=
        dnnl_success)
        return false;
    dnnl_status_t s = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return s == dnnl_success;
}

/* Makes the primitive for `k`, or NULL when oneDNN will not (the caller
 * runs the reference then). */
static struct cprim *cprim_make(struct jit_relay *r, const struct ckey *k)
{
    struct cprim *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->key = *k;
    const struct ir_conv *c = &k->c;
    dnnl_memory_desc_t xm, wm, ym, xa, wa, ya;
    dnnl_dims_t strides = {c->stride[0], c->stride[1]};
    dnnl_dims_t dil = {c->dilation[0] - 1, c->dilation[1] - 1};
    dnnl_dims_t pl = {c->pad[0], c->pad[1]}, pr;
    for (int d = 0; d < 2; d++)
        pr[d] = (k->y[2 + d] - 1) * c->stride[d] + (k->w[2 + d] - 1) * c->dilation[d] + 1 -
                k->x[2 + d] - c->pad[d];
    dnnl_convolution_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    bool ok = plain_md(&xm, k->x, 1, false) == dnnl_success &&
              plain_md(&wm, k->w, c->groups, true) == dnnl_success &&
              plain_md(&ym, k->y, 1, false) == dnnl_success && any_md(&xa, &xm) == dnnl_success &&
              any_md(&wa, &wm) == dnnl_success && any_md(&ya, &ym) == dnnl_success &&
              dnnl_primitive_attr_create(&attr) == dnnl_success &&
              dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ==
                  dnnl_success &&
              dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                                         dnnl_convolution_direct, &xa, &wa, NULL,
                                                         &ya, strides, dil, pl, pr) ==
                  dnnl_success &&
              dnnl_primitive_desc_create(&fpd, &fd, attr, r->engine, NULL) == dnnl_success;
    if (ok && k->op == IR_OP_CONV2D) {
        pd = fpd;
        fpd = NULL;
        ok = carg_init(r, &p->args[0], DNNL_ARG_SRC, true, &xm, pd, dnnl_query_src_md) &&
             carg_init(r, &p->args[1], DNNL_ARG_WEIGHTS, true, &wm, pd, dnnl_query_weights_md) &&
             carg_init(r, &p->args[2], DNNL_ARG_DST, false, &ym, pd, dnnl_query_dst_md);
    } else if (ok && k->op == IR_OP_CONV2D_BWD_DATA) {
        ok = dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &xa,
                                                              &wa, &ya, strides, dil, pl, pr) ==
                 dnnl_success &&
             dnnl_primitive_desc_create(&pd, &bd, attr, r->engine, fpd) == dnnl_success &&
             carg_init(r, &p->args[0], DNNL_ARG_DIFF_DST, true, &ym, pd,
                       dnnl_query_diff_dst_md) &&
             carg_init(r, &p->args[1], DNNL_ARG_WEIGHTS, true, &wm, pd, dnnl_query_weights_md) &&
             carg_init(r, &p->args[2], DNNL_ARG_DIFF_SRC, false, &xm, pd, dnnl_query_diff_src_md);
    } else if (ok) {
        ok = dnnl_dilated_convolution_backward_weights_desc_init(
                 &bd, dnnl_convolution_direct, &xa, &wa, NULL, &ya, strides, dil, pl, pr) ==
                 dnnl_success &&
             dnnl_primitive_desc_create(&pd, &bd, attr, r->engine, fpd) == dnnl_success &&
             carg_init(r, &p->args[0], DNNL_ARG_SRC, true, &xm, pd, dnnl_query_src_md) &&
             carg_init(r, &p->args[1], DNNL_ARG_DIFF_DST, true, &ym, pd,
                       dnnl_query_diff_dst_md) &&
             carg_init(r, &p->args[2], DNNL_ARG_DIFF_WEIGHTS, false, &wm, pd,
                       dnnl_query_diff_weights_md);
    }
    if (ok) {
        const dnnl_memory_desc_t *s = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        if (s != NULL) {
            p->scratch_md = *s;
            p->scratch = dnnl_memory_desc_get_size(s);
        }
        ok = dnnl_primitive_create(&p->prim, pd) == dnnl_success;
    }
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (!ok) {
        cprim_free(p);
        return NULL;
    }
    return p;
}

/* The cached primitive for `k` (a reference taken), made if missing. */
static struct cprim *cprim_get(struct jit_relay *r, const struct ckey *k)
{
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < RELAY_PRIMITIVES; i++) {
        struct cprim *p = r->prims[i];
        if (p != NULL && memcmp(&p->key, k, sizeof *k) == 0) {
            p->refs++;
            p->used = ++r->tick;
            pthread_mutex_unlock(&r->lock);
            return p;
        }
    }
    pthread_mutex_unlock(&r->lock);
    struct cprim *p = cprim_make(r, k); /* outside the lock: it may take milliseconds */
    if (p == NULL)
        return NULL;
    p->refs = 2; /* the cache's and the caller's */
    struct cprim *evict = NULL;
    pthread_mutex_lock(&r->lock);
    r->st.primitives++;
    int slot = 0;
    for (int i = 0; i < RELAY_PRIMITIVES; i++) {
        if (r->prims[i] == NULL) {
            slot = i;
            break;
        }
        if (r->prims[i]->used < r->prims[slot]->used)
            slot = i;
    }
    if (r->prims[slot] != NULL && --r->prims[slot]->refs == 0)
        evict = r->prims[slot];
    r->prims[slot] = p;
    p->used = ++r->tick;
    pthread_mutex_unlock(&r->lock);
    cprim_free(evict);
    return p;
}

static void *aligned(size_t bytes)
{
    void *m = NULL;
    return posix_memalign(&m, 64, bytes ? bytes : 64) == 0 ? m : NULL;
}

/* Runs a convolution through `p`. False when oneDNN failed (the caller
 * runs the reference); *oom when memory ran out. */
static bool cprim_run(struct jit_relay *r, struct cprim *p, const void *const user[3], bool *oom)
{
    dnnl_stream_t stream = NULL;
    dnnl_memory_t um[3] = {0}, wm[3] = {0}, sm = NULL;
    void *tmp[3] = {0}, *scratch = NULL;
    bool ok = dnnl_stream_create(&stream, r->engine, dnnl_stream_default_flags) == dnnl_success;
    for (int k = 0; k < 3 && ok; k++) {
        struct carg *a = &p->args[k];
        ok = dnnl_memory_create(&um[k], &a->user, r->engine, (void *) user[k]) == dnnl_success;
        if (ok && a->reorder != NULL) {
            if ((tmp[k] = aligned(a->bytes)) == NULL) {
                *oom = true;
                ok = false;
                break;
            }
            ok = dnnl_memory_create(&wm[k], &a->want, r->engine, tmp[k]) == dnnl_success;
            if (ok && a->input) {
                dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, um[k]}, {DNNL_ARG_TO, wm[k]}};
                ok = dnnl_primitive_execute(a->reorder, stream, 2, ra) == dnnl_success;
            }
        }
    }
    if (ok && p->scratch > 0) {
        if ((scratch = aligned(p->scratch)) == NULL)
            *oom = true, ok = false;
        else
            ok = dnnl_memory_create(&sm, &p->scratch_md, r->engine, scratch) == dnnl_success;
    }
    if (ok) {
        dnnl_exec_arg_t args[4];
        int na = 0;
        for (int k = 0; k < 3; k++)
            args[na++] = (dnnl_exec_arg_t){p->args[k].arg, wm[k] ? wm[k] : um[k]};
        if (sm)
            args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sm};
        ok = dnnl_primitive_execute(p->prim, stream, na, args) == dnnl_success;
    }
    if (ok && p->args[2].reorder != NULL) {
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, wm[2]}, {DNNL_ARG_TO, um[2]}};
        ok = dnnl_primitive_execute(p->args[2].reorder, stream, 2, ra) == dnnl_success;
    }
    if (stream) {
        if (ok)
            ok = dnnl_stream_wait(stream) == dnnl_success;
        dnnl_stream_destroy(stream);
    }
    for (int k = 0; k < 3; k++) {
        if (um[k])
            dnnl_memory_destroy(um[k]);
        if (wm[k])
            dnnl_memory_destroy(wm[k]);
        free(tmp[k]);
    }
    if (sm)
        dnnl_memory_destroy(sm);
    free(scratch);
    return ok;
}

static bool run_conv(struct jit_relay *r, const struct ir_node *n, const struct ir_node *an,
                     const struct ir_node *bn, const void *a, const void *b, void *y, bool *oom)
{
    struct ckey k;
    memset(&k, 0, sizeof k); /* padding bytes too: keys are compared with memcmp */
    k.op = n->op;
    k.c = n->attr.conv;
    const int64_t *xs, *ws, *ys;
    const void *user[3] = {a, b, y};
    ir_conv_shapes(n, an, bn, &xs, &ws, &ys);
    memcpy(k.x, xs, sizeof k.x);
    memcpy(k.w, ws, sizeof k.w);
    memcpy(k.y, ys, sizeof k.y);
    struct cprim *p = cprim_get(r, &k);
    if (p == NULL)
        return false;
    bool ok = cprim_run(r, p, user, oom);
    cprim_unref(r, p);
    return ok;
}

/* C[n, m] = op(A) op(B) per batch element, row-major, by sgemm. */
static bool run_sgemm(const struct ir_node *n, const struct ir_node *an, const float *a,
                      const float *b, float *y)
{
    int rk = n->rank;
    bool ta = n->attr.matmul.ta, tb = n->attr.matmul.tb;
    int64_t N = n->shape[rk - 2], M = n->shape[rk - 1], K = an->shape[rk - 1 - (ta ? 1 : 0)];
    int64_t batch = 1;
    for (int d = 0; d < rk - 2; d++)
        batch *= n->shape[d];
    if (K == 0) {
        memset(y, 0, (size_t) (batch * N * M) * sizeof(float));
        return true;
    }
    for (int64_t i = 0; i < batch; i++)
        if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', N, M, K, 1.0f, a + i * N * K,
                       ta ? N : K, b + i * K * M, tb ? K : M, 0.0f, y + i * N * M, M) !=
            dnnl_success)
            return false;
    return true;
}

/* oneDNN generates its gemm kernels and starts its threads on the first
 * call (tens of milliseconds): done once when the runtime starts, so that
 * a client's first step does not pay for it. */
static void *warm_up(void *arg)
{
    (void) arg;
    enum { W = 64 };
    float *m = calloc(3 * W * W, sizeof(float));
    if (m == NULL)
        return NULL;
    static const char t[3][2] = {{'N', 'N'}, {'N', 'T'}, {'T', 'N'}};
    for (int k = 0; k < 3; k++)
        dnnl_sgemm(t[k][0], t[k][1], W, W, W, 1.0f, m, W, m + W * W, W, 0.0f, m + 2 * W * W, W);
    free(m);
    return NULL;
}

#endif /* KILN_HAVE_DNNL */

bool jit_relay_has_library(void)
{
#ifdef KILN_HAVE_DNNL
    return true;
#else
    return false;
#endif
}

int jit_relay_new(unsigned threads, struct jit_relay **out)
{
    struct jit_relay *r = calloc(1, sizeof *r);
    if (r == NULL)
        return KILN_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    r->threads = threads;
#ifdef KILN_HAVE_DNNL
    /* Without an engine every relay runs the reference: slow, still right. */
    r->st.library = dnnl_engine_create(&r->engine, dnnl_cpu, 0) == dnnl_success;
    /* Synchronously: a daemon is ready when it listens, and its memory
     * use settled (oneDNN's code and OpenMP threads included). */
    if (r->st.library)
        warm_up(NULL);
#endif
    *out = r;
    return KILN_OK;
}

void jit_relay_free(struct jit_relay *r)
{
    if (r == NULL)
        return;
#ifdef KILN_HAVE_DNNL
    for (int i = 0; i < RELAY_PRIMITIVES; i++)
        if (r->prims[i] != NULL && --r->prims[i]->refs == 0)
            cprim_free(r->prims[i]);
    if (r->engine)
        dnnl_engine_destroy(r->engine);
#endif
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void jit_relay_stats(struct jit_relay *r, struct jit_relay_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->st;
    pthread_mutex_unlock(&r->lock);
}

int jit_relay_run(struct jit_relay *r, struct jit_pool *pool, const struct ir_graph *g,
                  uint32_t node, const void *a, const void *b, void *y, struct ir_error *err)
{
    const struct ir_node *n = &g->nodes[node];
    const struct ir_node *an = &g->nodes[n->in[0]], *bn = &g->nodes[n->in[1]];
    bool lib = false, oom = false;
    if (n->numel == 0)
        return KILN_OK;
#ifdef KILN_HAVE_DNNL
    if (r->st.library && n->dtype == IR_DTYPE_FLOAT32) {
#ifdef KILN_HAVE_GOMP
        if (r->threads > 0) /* this thread's team size (an OpenMP per-thread setting) */
            omp_set_num_threads((int) r->threads);
#endif
        if (n->op == IR_OP_MATMUL)
            lib = run_sgemm(n, an, a, b, y);
        else
            lib = run_conv(r, n, an, bn, a, b, y, &oom);
    }
#endif
    if (oom) {
        err->code = KILN_ENOMEM;
        err->node = node;
        snprintf(err->field, sizeof err->field, "nodes[%u]", node);
        snprintf(err->message, sizeof err->message, "%s: out of memory for the library's buffers",
                 ir_op_name(n->op));
        return KILN_ENOMEM;
    }
    if (!lib)
        run_ref(pool, n, an, bn, a, b, y);
    pthread_mutex_lock(&r->lock);
    r->st.runs++;
    r->st.library_runs += lib;
    pthread_mutex_unlock(&r->lock);
    return KILN_OK;
}
