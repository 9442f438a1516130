/* codegen.c: fusion groups lowered to C (contract in codegen.h).
 *
 * How a kernel is written. The loop walks the group's iteration space
 * with a flat index `f` and an odometer of coordinates. Values are
 * produced on demand: val(node, point) returns the name of a C variable
 * holding `node` at `point`, emitting the statements that compute it
 * first (and remembering them, so a value used twice is computed once).
 * A point is a place in some node's shape, known by its flat index or its
 * coordinates or both; the other form is derived lazily when an op needs
 * it. Element-wise ops evaluate their inputs at their own point; reshape
 * keeps the flat index; broadcast_to and reindex make new coordinates.
 * A member that is not computed in this group is read from its buffer.
 *
 * Reindex reads its input only where the index is in range: that read
 * sits in an `if` block, a scope. Values and derived point forms made in
 * a scope are forgotten when it closes, so nothing declared inside is
 * used outside.
 *
 * Size facts. The source depends on the graph's sizes only through
 * whole-shape equality of each slot with the loop spaces (so a point in a
 * node shaped like the loop reuses the loop's coordinates) and the
 * broadcast stretch masks already in the group signature; jit_kernel_key
 * hashes exactly these.
 */
#include "codegen.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_c.h"
#include "fuse_impl.h"
#include "interp.h"
#include "kiln_err.h"
#include "ops_c.h"
#include "philox.h"

#define NAMELEN 24
#define PT_NONE 0
#define PT_MAIN 1
#define PT_OUT  2
#define OWNER_MAIN (-1)
#define OWNER_OUT  (-2)

typedef char name_t[NAMELEN];

struct pt {
    int32_t owner; /* slot whose dims it is in, or OWNER_MAIN / OWNER_OUT */
    uint8_t rank;
    uint8_t loop; /* PT_MAIN / PT_OUT: `flat` is that loop's flat index */
    bool hf, hc;
    uint32_t fdepth, cdepth; /* scope depth where flat / comps were made */
    name_t flat;
    name_t comp[KILN_LIMIT_RANK];
};

struct memo {
    uint32_t node, pt, depth;
    name_t name;
};

struct cg {
    const struct ir_graph *g;
    const struct jit_plan *p;
    const struct jit_group *G;
    uint32_t nin, nmem, nslots;
    const uint32_t *ins, *mem, *sinks;
    const uint8_t *mfl;
    int32_t *slot_of;  /* node -> slot, -1 (g->count entries) */
    uint8_t *same_main, *same_out;
    uint32_t *dim_off, *scal_off;
    uint8_t *need_dims, *need_str, *need_ptr, *need_extra;
    uint32_t nparams;
    int main_rank, out_rank;
    struct jit_buf pre, head, body;
    int ind;
    uint32_t depth, calls;
    uint32_t tmp;
    struct pt *pts;
    uint32_t npts, cappts;
    struct memo *memo;
    uint32_t nmemo, capmemo;
    int rc;
};

/* ---- small helpers ------------------------------------------------------ */

static const struct ir_node *N(const struct cg *c, uint32_t i)
{
    return &c->g->nodes[i];
}

static const char *ct(int dt)
{
    return ir_dtype_ctype((enum ir_dtype) dt);
}

static bool is_float(int dt)
{
    return ir_dtype_info((enum ir_dtype) dt)->kind == IR_KIND_FLOAT;
}

static void fail(struct cg *c, int rc)
{
    if (c->rc == KILN_OK)
        c->rc = rc;
}

static void line(struct cg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct cg *c, const char *fmt, ...)
{
    char small[256];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    char *text = small;
    if (n >= 0 && (size_t) n >= sizeof small && (text = malloc((size_t) n + 1)) != NULL)
        vsnprintf(text, (size_t) n + 1, fmt, again); /* a long rendered expression */
    va_end(again);
    if (n < 0 || text == NULL) {
        fail(c, n < 0 ? KILN_EINTERNAL : KILN_ENOMEM);
        return;
    }
    for (int k = 0; k < c->ind; k++)
        jit_buf_add(&c->body, "    ");
    jit_buf_add(&c->body, text);
    jit_buf_add(&c->body, "\n");
    if (text != small)
        free(text);
}

static void newname(struct cg *c, char *dst, char prefix)
{
    snprintf(dst, NAMELEN, "%c%u", prefix, c->tmp++);
}

/* 64-bit pattern literal of a double, through kiln_bits_f64. */
static void f64_literal(char *dst, size_t len, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    snprintf(dst, len, "kiln_bits_f64((int64_t) 0x%016" PRIx64 "ull)", u);
}

static void i64_literal(char *dst, size_t len, int64_t v)
{
    snprintf(dst, len, "((int64_t) 0x%016" PRIx64 "ull)", (uint64_t) v);
}

/* ---- slots, dims and strides -------------------------------------------- */

static int32_t slot(const struct cg *c, uint32_t node)
{
    return c->slot_of[node];
}

static uint32_t slot_node(const struct cg *c, uint32_t s)
{
    return s < c->nin ? c->ins[s] : c->mem[s - c->nin];
}

static void dim_name(struct cg *c, int32_t owner, int d, char *dst)
{
    if (owner == OWNER_MAIN)
        snprintf(dst, NAMELEN, "L%d", d);
    else if (owner == OWNER_OUT)
        snprintf(dst, NAMELEN, "O%d", d);
    else {
        c->need_dims[owner] = 1;
        snprintf(dst, NAMELEN, "d%d_%d", owner, d);
    }
}

static void stride_name(struct cg *c, int32_t owner, int d, char *dst)
{
    if (owner == OWNER_MAIN)
        snprintf(dst, NAMELEN, "Ls%d", d);
    else if (owner == OWNER_OUT)
        snprintf(dst, NAMELEN, "Os%d", d);
    else {
        c->need_dims[owner] = c->need_str[owner] = 1;
        snprintf(dst, NAMELEN, "s%d_%d", owner, d);
    }
}

static int owner_rank(const struct cg *c, int32_t owner)
{
    if (owner == OWNER_MAIN)
        return c->main_rank;
    if (owner == OWNER_OUT)
        return c->out_rank;
    return N(c, slot_node(c, (uint32_t) owner))->rank;
}

/* ---- points --------------------------------------------------------------- */

static uint32_t pt_add(struct cg *c, const struct pt *p)
{
    for (uint32_t k = 0; k < c->npts; k++) {
        const struct pt *q = &c->pts[k];
        if (q->owner != p->owner || q->rank != p->rank || q->loop != p->loop || q->hf != p->hf ||
            q->hc != p->hc)
            continue;
        if (p->hf && strcmp(q->flat, p->flat) != 0)
            continue;
        bool same = true;
        for (int d = 0; p->hc && d < p->rank; d++)
            same = same && strcmp(q->comp[d], p->comp[d]) == 0;
        if (same)
            return k;
    }
    if (c->npts == c->cappts) {
        uint32_t cap = c->cappts ? 2 * c->cappts : 16;
        struct pt *np = realloc(c->pts, cap * sizeof(*np));
        if (np == NULL) {
            fail(c, KILN_ENOMEM);
            return 0;
        }
        c->pts = np;
        c->cappts = cap;
    }
    c->pts[c->npts] = *p;
    c->pts[c->npts].fdepth = c->pts[c->npts].cdepth = c->depth;
    return c->npts++;
}

/* The point at flat index `flat` (a name) of slot s's shape; if that is
 * the loop's flat index and s is shaped like the loop space, the loop's
 * own point. */
static uint32_t pt_flat_in(struct cg *c, int32_t s, const char *flat, uint8_t loop)
{
    if (loop == PT_MAIN && c->same_main[s])
        return 0;
    if (loop == PT_OUT && c->same_out[s])
        return 1;
    struct pt p;
    memset(&p, 0, sizeof p);
    p.owner = s;
    p.rank = (uint8_t) owner_rank(c, s);
    p.loop = loop;
    p.hf = true;
    snprintf(p.flat, NAMELEN, "%s", flat);
    return pt_add(c, &p);
}

static void pt_get_flat(struct cg *c, uint32_t k, char *dst)
{
    struct pt *p = &c->pts[k];
    if (!p->hf) {
        if (p->rank == 0) {
            snprintf(p->flat, NAMELEN, "0");
        } else {
            char nm[NAMELEN], expr[512] = "", st[NAMELEN];
            newname(c, nm, 't');
            for (int d = 0; d < p->rank; d++) {
                stride_name(c, p->owner, d, st);
                size_t len = strlen(expr);
                snprintf(expr + len, sizeof expr - len, "%s%s * %s", d ? " + " : "", p->comp[d],
                         st);
            }
            line(c, "int64_t %s = %s;", nm, expr);
            p = &c->pts[k];
            snprintf(p->flat, NAMELEN, "%s", nm);
        }
        p->hf = true;
        p->fdepth = c->depth;
    }
    snprintf(dst, NAMELEN, "%s", c->pts[k].flat);
}

static void pt_get_comp(struct cg *c, uint32_t k, int d, char *dst)
{
    struct pt *p = &c->pts[k];
    if (!p->hc) {
        char flat[NAMELEN], rem[NAMELEN], dn[NAMELEN];
        pt_get_flat(c, k, flat);
        p = &c->pts[k];
        newname(c, rem, 'r');
        line(c, "int64_t %s = %s;", rem, flat);
        for (int e = p->rank - 1; e >= 0; e--) {
            char nm[NAMELEN];
            newname(c, nm, 't');
            dim_name(c, p->owner, e, dn);
            if (e > 0) {
                line(c, "int64_t %s = %s %% %s;", nm, rem, dn);
                line(c, "%s /= %s;", rem, dn);
            } else {
                line(c, "int64_t %s = %s;", nm, rem);
            }
            snprintf(c->pts[k].comp[e], NAMELEN, "%s", nm);
        }
        p = &c->pts[k];
        p->hc = true;
        p->cdepth = c->depth;
    }
    snprintf(dst, NAMELEN, "%s", c->pts[k].comp[d]);
}

/* ---- scopes and memo ------------------------------------------------------ */

static void open_scope(struct cg *c)
{
    c->depth++;
    c->ind++;
}

static void close_scope(struct cg *c)
{
    c->depth--;
    c->ind--;
    while (c->nmemo > 0 && c->memo[c->nmemo - 1].depth > c->depth)
        c->nmemo--;
    for (uint32_t k = 0; k < c->npts; k++) {
        struct pt *p = &c->pts[k];
        if (p->hf && p->fdepth > c->depth)
            p->hf = false;
        if (p->hc && p->cdepth > c->depth)
            p->hc = false;
    }
}

static bool memo_find(struct cg *c, uint32_t node, uint32_t pt, char *dst)
{
    for (uint32_t k = c->nmemo; k-- > 0;)
        if (c->memo[k].node == node && c->memo[k].pt == pt) {
            snprintf(dst, NAMELEN, "%s", c->memo[k].name);
            return true;
        }
    return false;
}

static void memo_put(struct cg *c, uint32_t node, uint32_t pt, const char *name)
{
    if (c->nmemo == c->capmemo) {
        uint32_t cap = c->capmemo ? 2 * c->capmemo : 64;
        struct memo *nm = realloc(c->memo, cap * sizeof(*nm));
        if (nm == NULL) {
            fail(c, KILN_ENOMEM);
            return;
        }
        c->memo = nm;
        c->capmemo = cap;
    }
    struct memo *m = &c->memo[c->nmemo++];
    m->node = node;
    m->pt = pt;
    m->depth = c->depth;
    snprintf(m->name, NAMELEN, "%s", name);
}

/* ---- values ---------------------------------------------------------------- */

static bool computed_here(const struct cg *c, uint32_t node)
{
    int32_t s = slot(c, node);
    return s >= (int32_t) c->nin;
}

/* The point of reshape nd's input that point `pt` of nd reads, from pt's
 * coordinates, when pt has them: the two shapes split into groups of dims
 * with equal products (a [N, C, H, W] read as [N, C, H/k, k, W/k, k] has
 * groups N | C | H | W), and each input coordinate comes from its own
 * group's output coordinates — a multiply-add where the output splits an
 * input dim, a division only inside a group that merges dims. The flat
 * index is the same on both sides. False (nothing emitted) when pt has no
 * coordinates or a dim is 0: the caller goes through the flat index. */
static bool reshape_point(struct cg *c, const struct ir_node *nd, uint32_t pt, uint32_t *out)
{
    const struct ir_node *x = N(c, nd->in[0]);
    if (!c->pts[pt].hc || nd->numel == 0)
        return false;
    int gi[KILN_LIMIT_RANK + 1], gj[KILN_LIMIT_RANK + 1], ng = 0;
    int i = 0, j = 0;
    while (i < nd->rank || j < x->rank) {
        int64_t pd = 1, ps = 1;
        gi[ng] = i, gj[ng] = j;
        if (i < nd->rank)
            pd *= nd->shape[i++];
        if (j < x->rank)
            ps *= x->shape[j++];
        while (pd != ps) {
            if (pd < ps && i < nd->rank)
                pd *= nd->shape[i++];
            else if (ps < pd && j < x->rank)
                ps *= x->shape[j++];
            else
                return false;
        }
        ng++;
    }
    gi[ng] = nd->rank, gj[ng] = x->rank;
    struct pt q;
    memset(&q, 0, sizeof q);
    int32_t xs = slot(c, nd->in[0]);
    q.owner = xs;
    q.rank = x->rank;
    q.hc = true;
    const struct pt *P = &c->pts[pt];
    if (P->hf) {
        q.hf = true;
        q.loop = P->loop;
        snprintf(q.flat, NAMELEN, "%s", P->flat);
    }
    int32_t owner = P->owner;
    for (int k = 0; k < ng; k++) {
        char g[NAMELEN], dn[NAMELEN];
        int n_out = gi[k + 1] - gi[k], n_in = gj[k + 1] - gj[k];
        if (n_in == 0)
            continue; /* output dims of size 1 only */
        if (n_out == 0) { /* input dims of size 1 only */
            for (int e = gj[k]; e < gj[k + 1]; e++)
                snprintf(q.comp[e], NAMELEN, "0");
            continue;
        }
        /* The group's own flat index, from its output coordinates. */
        if (n_out == 1) {
            snprintf(g, NAMELEN, "%s", c->pts[pt].comp[gi[k]]);
        } else {
            /* Horner over the group's dims, one statement per dim. */
            newname(c, g, 't');
            line(c, "int64_t %s = %s;", g, c->pts[pt].comp[gi[k]]);
            for (int d = gi[k] + 1; d < gi[k + 1]; d++) {
                dim_name(c, owner, d, dn);
                line(c, "%s = %s * %s + %s;", g, g, dn, c->pts[pt].comp[d]);
            }
        }
        if (n_in == 1) {
            snprintf(q.comp[gj[k]], NAMELEN, "%s", g);
            continue;
        }
        char rem[NAMELEN];
        newname(c, rem, 'r');
        line(c, "int64_t %s = %s;", rem, g);
        for (int e = gj[k + 1] - 1; e >= gj[k]; e--) {
            char nm[NAMELEN];
            newname(c, nm, 't');
            dim_name(c, xs, e, dn);
            if (e > gj[k]) {
                line(c, "int64_t %s = %s %% %s;", nm, rem, dn);
                line(c, "%s /= %s;", rem, dn);
            } else {
                line(c, "int64_t %s = %s;", nm, rem);
            }
            snprintf(q.comp[e], NAMELEN, "%s", nm);
        }
    }
    *out = pt_add(c, &q);
    return c->rc == KILN_OK;
}

static void val(struct cg *c, uint32_t node, uint32_t pt, char *dst);


/* Reads from the extra input slot s (an int or bool buffer) at the given
 * coordinates, 0 outside its shape: a function per slot, and a macro
 * that passes the kernel's own bufs and params. */
static void extra_reader(struct cg *c, int32_t s, char *macro)
{
    snprintf(macro, NAMELEN, "KX%d", s);
    if (c->need_extra[s])
        return;
    c->need_extra[s] = 1;
    const struct ir_node *x = N(c, slot_node(c, (uint32_t) s));
    struct jit_buf *b = &c->pre;
    jit_buf_addf(b, "static int64_t kx%d(void **bufs, const int64_t *P", s);
    for (int d = 0; d < x->rank; d++)
        jit_buf_addf(b, ", int64_t a%d", d);
    jit_buf_add(b, ")\n{\n    int64_t k = 0;\n");
    for (int d = 0; d < x->rank; d++) {
        jit_buf_addf(b, "    if ((uint64_t) a%d >= (uint64_t) P[%u])\n        return 0;\n", d,
                     c->dim_off[s] + d);
        jit_buf_addf(b, "    k = k * P[%u] + a%d;\n", c->dim_off[s] + d, d);
    }
    if (x->dtype == IR_DTYPE_BOOL)
        jit_buf_addf(b, "    return ((const uint8_t *) bufs[%d])[k] != 0;\n}\n", s);
    else
        jit_buf_addf(b, "    return (int64_t) ((const %s *) bufs[%d])[k];\n}\n", ct(x->dtype), s);
    jit_buf_addf(b, "#define KX%d(", s);
    for (int d = 0; d < x->rank; d++)
        jit_buf_addf(b, "%sa%d", d ? ", " : "", d);
    jit_buf_addf(b, ") kx%d(bufs, P", s);
    for (int d = 0; d < x->rank; d++)
        jit_buf_addf(b, ", (a%d)", d);
    jit_buf_add(b, ")\n");
}

/* Renders exprs and conds of reindex node n evaluated at point `pt`
 * (coordinates `index`, i.e. the output for REINDEX, the input for
 * REINDEX_REDUCE). Declares a<k> variables into `a` and a combined
 * "inside" flag into `ok`. `lim_owner` is the slot whose dims bound the
 * results (x for REINDEX, the output for REINDEX_REDUCE). */
static void reindex_targets(struct cg *c, uint32_t n, uint32_t pt, int32_t xs, int32_t ys,
                            int32_t lim, name_t *a, char *ok)
{
    const struct ir_node *nd = N(c, n);
    const struct ir_reindex *r = nd->attr.reindex;
    const struct ir_node *x = N(c, slot_node(c, (uint32_t) xs));
    name_t idx[KILN_LIMIT_RANK], xsh[KILN_LIMIT_RANK], xst[KILN_LIMIT_RANK];
    name_t ysh[KILN_LIMIT_RANK], yst[KILN_LIMIT_RANK], ex[KILN_LIMIT_EXPR_EXTRAS];
    struct jit_expr_names nm;
    memset(&nm, 0, sizeof nm);
    int irank = nd->op == IR_OP_REINDEX ? nd->rank : x->rank;
    for (int d = 0; d < irank; d++) {
        pt_get_comp(c, pt, d, idx[d]);
        nm.index[d] = idx[d];
    }
    for (int d = 0; d < x->rank; d++) {
        dim_name(c, xs, d, xsh[d]);
        stride_name(c, xs, d, xst[d]);
        nm.xshape[d] = xsh[d];
        nm.xstride[d] = xst[d];
    }
    for (int d = 0; d < nd->rank; d++) {
        dim_name(c, ys, d, ysh[d]);
        stride_name(c, ys, d, yst[d]);
        nm.yshape[d] = ysh[d];
        nm.ystride[d] = yst[d];
    }
    for (int k = 0; k < r->nextras; k++) {
        int32_t es = slot(c, nd->in[1 + k]);
        if (es < 0 || es >= (int32_t) c->nin) {
            fail(c, KILN_EINTERNAL); /* extras are always buffers */
            return;
        }
        extra_reader(c, es, ex[k]);
        nm.extra_fn[k] = ex[k];
    }
    struct jit_buf e;
    jit_buf_init(&e);
    newname(c, ok, 'k');
    line(c, "int %s = 1;", ok);
    for (int d = 0; d < r->nexprs; d++) {
        jit_buf_clear(&e);
        if (jit_expr_render_c(r->exprs[d], &nm, &e) != KILN_OK || e.bad) {
            fail(c, e.bad ? KILN_ENOMEM : KILN_EINTERNAL);
            break;
        }
        newname(c, a[d], 'a');
        char dn[NAMELEN];
        dim_name(c, lim, d, dn);
        line(c, "int64_t %s = %s;", a[d], e.data);
        line(c, "%s = %s && (uint64_t) %s < (uint64_t) %s;", ok, ok, a[d], dn);
    }
    for (int k = 0; k < r->nconds; k++) {
        jit_buf_clear(&e);
        if (jit_expr_render_c(r->conds[k], &nm, &e) != KILN_OK || e.bad) {
            fail(c, e.bad ? KILN_ENOMEM : KILN_EINTERNAL);
            break;
        }
        line(c, "%s = %s && (%s) == 0;", ok, ok, e.data);
    }
    jit_buf_fini(&e);
}

static void scalar_literal(const struct ir_node *nd, struct ir_scalar v, char *dst, size_t len)
{
    if (nd->dtype == IR_DTYPE_BOOL)
        snprintf(dst, len, "%d", v.i != 0);
    else if (is_float(nd->dtype)) {
        char lit[80];
        f64_literal(lit, sizeof lit, v.f);
        snprintf(dst, len, "(%s) %s", ct(nd->dtype), lit);
    } else {
        char lit[64];
        i64_literal(lit, sizeof lit, v.i);
        snprintf(dst, len, "(%s) %s", ct(nd->dtype), lit);
    }
}

static void val_reindex(struct cg *c, uint32_t n, uint32_t pt, char *dst)
{
    const struct ir_node *nd = N(c, n);
    int32_t xs = slot(c, nd->in[0]), ys = slot(c, n);
    name_t a[KILN_LIMIT_RANK];
    char ok[NAMELEN], lit[128], v[NAMELEN], xv[NAMELEN];
    reindex_targets(c, n, pt, xs, ys, xs, a, ok);
    if (c->rc != KILN_OK)
        return;
    newname(c, v, 'v');
    scalar_literal(nd, nd->attr.reindex->overflow, lit, sizeof lit);
    line(c, "%s %s = %s;", ct(nd->dtype), v, lit);
    line(c, "if (%s) {", ok);
    open_scope(c);
    struct pt q;
    memset(&q, 0, sizeof q);
    q.owner = xs;
    q.rank = N(c, nd->in[0])->rank;
    q.hc = true;
    for (int d = 0; d < q.rank; d++)
        snprintf(q.comp[d], NAMELEN, "%s", a[d]);
    uint32_t qk = pt_add(c, &q);
    val(c, nd->in[0], qk, xv);
    line(c, "%s = %s;", v, xv);
    close_scope(c);
    line(c, "}");
    snprintf(dst, NAMELEN, "%s", v);
}

static void val_compute(struct cg *c, uint32_t n, uint32_t pt, char *dst)
{
    const struct ir_node *nd = N(c, n);
    int32_t s = slot(c, n);
    char v[NAMELEN];
    switch (nd->op) {
    case IR_OP_CONST:
        snprintf(dst, NAMELEN, "cv%d", s);
        return;
    case IR_OP_INDEX: {
        char cn[NAMELEN];
        pt_get_comp(c, pt, nd->attr.index.dim, cn);
        newname(c, v, 'v');
        line(c, "%s %s = (%s) %s;", ct(nd->dtype), v, ct(nd->dtype), cn);
        break;
    }
    case IR_OP_RANDOM: {
        char fl[NAMELEN];
        pt_get_flat(c, pt, fl);
        newname(c, v, 'v');
        line(c, "%s %s = kiln_rand_%s_%s((uint64_t) P[%u], (uint64_t) P[%u] + (uint64_t) %s);",
             ct(nd->dtype), v, nd->attr.random.dist == IR_RANDOM_NORMAL ? "normal" : "uniform",
             jit_dtype_suffix(nd->dtype), c->scal_off[s], c->scal_off[s] + 1, fl);
        break;
    }
    case IR_OP_RESHAPE: {
        uint32_t q;
        if (!reshape_point(c, nd, pt, &q)) {
            char fl[NAMELEN];
            pt_get_flat(c, pt, fl);
            q = pt_flat_in(c, slot(c, nd->in[0]), fl, c->pts[pt].loop);
        }
        val(c, nd->in[0], q, dst);
        return;
    }
    case IR_OP_BROADCAST_TO: {
        const struct ir_node *x = N(c, nd->in[0]);
        struct pt q;
        memset(&q, 0, sizeof q);
        q.owner = slot(c, nd->in[0]);
        q.rank = x->rank;
        q.hc = true;
        int j = 0;
        for (int d = 0; d < nd->rank; d++) {
            if (nd->attr.broadcast.dims & (1u << d))
                continue;
            if (x->shape[j] == 1 && nd->shape[d] != 1)
                snprintf(q.comp[j], NAMELEN, "0");
            else
                pt_get_comp(c, pt, d, q.comp[j]);
            j++;
        }
        uint32_t qk = pt_add(c, &q);
        val(c, nd->in[0], qk, dst);
        return;
    }
    case IR_OP_REINDEX:
        val_reindex(c, n, pt, dst);
        return;
    case IR_OP_REDUCE:
        snprintf(dst, NAMELEN, "rv");
        return;
    default: {
        if (nd->op < IR_OP_NEG || nd->op > IR_OP_WHERE) {
            fail(c, KILN_EINTERNAL);
            snprintf(dst, NAMELEN, "0");
            return;
        }
        name_t args[3];
        const char *ap[3];
        for (int k = 0; k < nd->nin; k++) {
            val(c, nd->in[k], pt, args[k]);
            ap[k] = args[k];
        }
        struct jit_buf e;
        jit_buf_init(&e);
        int rc = jit_ops_render_c(&e, nd->op, N(c, nd->in[0])->dtype, nd->dtype, ap);
        if (rc != KILN_OK || e.bad) {
            fail(c, rc != KILN_OK ? rc : KILN_ENOMEM);
            jit_buf_fini(&e);
            snprintf(dst, NAMELEN, "0");
            return;
        }
        newname(c, v, 'v');
        line(c, "%s %s = %s;", ct(nd->dtype), v, e.data);
        jit_buf_fini(&e);
        break;
    }
    }
    snprintf(dst, NAMELEN, "%s", v);
}

static void val(struct cg *c, uint32_t node, uint32_t pt, char *dst)
{
    if (c->rc != KILN_OK) {
        snprintf(dst, NAMELEN, "0");
        return;
    }
    if (memo_find(c, node, pt, dst))
        return;
    if (++c->calls > JIT_CODEGEN_MAX_DEPTH) {
        fail(c, KILN_ELIMIT);
        snprintf(dst, NAMELEN, "0");
        c->calls--;
        return;
    }
    int32_t s = slot(c, node);
    if (s < 0) {
        fail(c, KILN_EINTERNAL);
        snprintf(dst, NAMELEN, "0");
    } else if (!computed_here(c, node)) {
        char fl[NAMELEN], v[NAMELEN];
        pt_get_flat(c, pt, fl);
        newname(c, v, 'v');
        c->need_ptr[s] = 1;
        line(c, "%s %s = b%d[%s];", ct(N(c, node)->dtype), v, s, fl);
        snprintf(dst, NAMELEN, "%s", v);
    } else {
        val_compute(c, node, pt, dst);
    }
    c->calls--;
    memo_put(c, node, pt, dst);
}

/* ---- reductions ------------------------------------------------------------ */

/* The accumulator's C type and identity for op on dtype dt. */
static const char *acc_type(int op, int dt)
{
    if (is_float(dt))
        return "double";
    return op == IR_REDUCE_MAX || op == IR_REDUCE_MIN ? "int64_t" : "uint64_t";
}

static void acc_identity(int op, int dt, char *dst, size_t len)
{
    if (is_float(dt)) {
        double v = op == IR_REDUCE_MUL ? 1.0
                   : op == IR_REDUCE_MAX ? -__builtin_inf()
                   : op == IR_REDUCE_MIN ? __builtin_inf()
                                         : 0.0;
        f64_literal(dst, len, v);
        return;
    }
    int64_t lo, hi;
    ir_dtype_int_range((enum ir_dtype) dt, &lo, &hi);
    int64_t v = op == IR_REDUCE_MUL ? 1 : op == IR_REDUCE_MAX ? lo : op == IR_REDUCE_MIN ? hi : 0;
    i64_literal(dst, len, v);
}

/* Emits `acc = acc op x` where acc is an lvalue of acc_type. */
static void acc_combine(struct cg *c, int op, int dt, const char *acc, const char *x)
{
    if (is_float(dt)) {
        char t[NAMELEN];
        newname(c, t, 't');
        line(c, "double %s = (double) %s;", t, x);
        switch (op) {
        case IR_REDUCE_MUL:
            line(c, "%s *= %s;", acc, t);
            break;
        case IR_REDUCE_MAX:
            line(c, "if (%s == %s && (%s != %s || %s > %s)) %s = %s;", acc, acc, t, t, t, acc, acc,
                 t);
            break;
        case IR_REDUCE_MIN:
            line(c, "if (%s == %s && (%s != %s || %s < %s)) %s = %s;", acc, acc, t, t, t, acc, acc,
                 t);
            break;
        default:
            line(c, "%s += %s;", acc, t);
            break;
        }
        return;
    }
    switch (op) {
    case IR_REDUCE_MUL:
        line(c, "%s *= (uint64_t) (int64_t) %s;", acc, x);
        break;
    case IR_REDUCE_MAX:
        line(c, "if ((int64_t) %s > %s) %s = (int64_t) %s;", x, acc, acc, x);
        break;
    case IR_REDUCE_MIN:
        line(c, "if ((int64_t) %s < %s) %s = (int64_t) %s;", x, acc, acc, x);
        break;
    default:
        line(c, "%s += (uint64_t) (int64_t) %s;", acc, x);
        break;
    }
}

/* ---- kernel assembly -------------------------------------------------------- */

static void write_sink(struct cg *c, uint32_t node, uint32_t pt, const char *flat)
{
    char v[NAMELEN];
    val(c, node, pt, v);
    uint32_t k = 0;
    while (k < c->G->nsinks && c->sinks[k] != node)
        k++;
    const struct ir_node *nd = N(c, node);
    if (nd->dtype == IR_DTYPE_BOOL)
        line(c, "w%u[%s] = kiln_cast_b_b(%s);", k, flat, v);
    else
        line(c, "w%u[%s] = %s;", k, flat, v);
}

/* Declares the odometer c0.. (names cn) over `rank` dims (names dn)
 * starting at flat index `begin`. */
static void odometer_start(struct cg *c, int rank, const char *cn, const char *dn)
{
    if (rank == 0)
        return;
    line(c, "int64_t %s0", cn);
    c->body.len--; /* reopen the line to add the rest */
    for (int d = 1; d < rank; d++)
        jit_buf_addf(&c->body, ", %s%d", cn, d);
    jit_buf_add(&c->body, ";\n");
    line(c, "{");
    line(c, "    int64_t r = begin;");
    for (int d = rank - 1; d > 0; d--) {
        line(c, "    %s%d = r %% %s%d;", cn, d, dn, d);
        line(c, "    r /= %s%d;", dn, d);
    }
    line(c, "    %s0 = r;", cn);
    line(c, "}");
}

static void odometer_step(struct cg *c, int rank, const char *cn, const char *dn)
{
    if (rank == 0)
        return;
    struct jit_buf *b = &c->body;
    for (int k = 0; k < c->ind; k++)
        jit_buf_add(b, "    ");
    for (int d = rank - 1; d > 0; d--)
        jit_buf_addf(b, "if (++%s%d == %s%d) { %s%d = 0; ", cn, d, dn, d, cn, d);
    jit_buf_addf(b, "++%s0;", cn);
    for (int d = rank - 1; d > 0; d--)
        jit_buf_add(b, " }");
    jit_buf_add(b, "\n");
}

static void begin_fn(struct cg *c, const char *name)
{
    jit_buf_addf(&c->body, "void %s(void **bufs, const int64_t *P, int64_t begin, int64_t end)\n{\n",
                 name);
    c->ind = 1;
    c->depth = 0;
    c->nmemo = 0;
}

/* The declarations every function of the module starts with; emitted
 * generously (unused ones cost libtcc nothing to speak of). */
static void fn_head(struct cg *c, struct jit_buf *b)
{
    for (int d = 0; d < c->main_rank; d++)
        jit_buf_addf(b, "    const int64_t L%d = P[%d];\n", d, d);
    if (c->main_rank > 0) {
        jit_buf_addf(b, "    const int64_t Ls%d = 1;\n", c->main_rank - 1);
        for (int d = c->main_rank - 2; d >= 0; d--)
            jit_buf_addf(b, "    const int64_t Ls%d = Ls%d * L%d;\n", d, d + 1, d + 1);
    }
    for (int d = 0; d < c->out_rank; d++)
        jit_buf_addf(b, "    const int64_t O%d = P[%d];\n", d, c->main_rank + d);
    if (c->out_rank > 0) {
        jit_buf_addf(b, "    const int64_t Os%d = 1;\n", c->out_rank - 1);
        for (int d = c->out_rank - 2; d >= 0; d--)
            jit_buf_addf(b, "    const int64_t Os%d = Os%d * O%d;\n", d, d + 1, d + 1);
    }
    for (uint32_t s = 0; s < c->nslots; s++) {
        const struct ir_node *nd = N(c, slot_node(c, s));
        if (c->need_dims[s])
            for (int d = 0; d < nd->rank; d++)
                jit_buf_addf(b, "    const int64_t d%u_%d = P[%u];\n", s, d, c->dim_off[s] + d);
        if (c->need_str[s] && nd->rank > 0) {
            jit_buf_addf(b, "    const int64_t s%u_%d = 1;\n", s, nd->rank - 1);
            for (int d = nd->rank - 2; d >= 0; d--)
                jit_buf_addf(b, "    const int64_t s%u_%d = s%u_%d * d%u_%d;\n", s, d, s, d + 1,
                             s, d + 1);
        }
        if (c->need_ptr[s])
            jit_buf_addf(b, "    const %s *b%u = (const %s *) bufs[%u];\n", ct(nd->dtype), s,
                         ct(nd->dtype), s);
        if (s >= c->nin && nd->op == IR_OP_CONST) {
            if (nd->dtype == IR_DTYPE_BOOL)
                jit_buf_addf(b, "    const uint8_t cv%u = P[%u] != 0;\n", s, c->scal_off[s]);
            else if (is_float(nd->dtype))
                jit_buf_addf(b, "    const %s cv%u = (%s) kiln_bits_f64(P[%u]);\n", ct(nd->dtype), s,
                             ct(nd->dtype), c->scal_off[s]);
            else
                jit_buf_addf(b, "    const %s cv%u = (%s) P[%u];\n", ct(nd->dtype), s,
                             ct(nd->dtype), c->scal_off[s]);
        }
    }
    for (uint32_t k = 0; k < c->G->nsinks; k++) {
        const struct ir_node *nd = N(c, c->sinks[k]);
        jit_buf_addf(b, "    %s *w%u = (%s *) bufs[%u];\n", ct(nd->dtype), k, ct(nd->dtype),
                     c->nin + k);
    }
    jit_buf_add(b, "    (void) bufs; (void) P; (void) begin; (void) end;\n");
}

/* Moves the function body written so far into `out`, with its head. */
static void end_fn(struct cg *c, struct jit_buf *out)
{
    jit_buf_add(&c->body, "}\n");
    fn_head(c, &c->head);
    /* The signature line is the first line of body: split it off. */
    char *brace = c->body.data ? strstr(c->body.data, "{\n") : NULL;
    if (brace == NULL || c->body.bad || c->head.bad) {
        fail(c, KILN_ENOMEM);
        return;
    }
    size_t cut = (size_t) (brace - c->body.data) + 2;
    char save = c->body.data[cut];
    c->body.data[cut] = '\0';
    jit_buf_add(out, c->body.data);
    c->body.data[cut] = save;
    jit_buf_add(out, c->head.data ? c->head.data : "");
    jit_buf_add(out, c->body.data + cut);
    jit_buf_clear(&c->body);
    jit_buf_clear(&c->head);
}

static bool is_main_sink(const struct cg *c, uint32_t mk)
{
    return (c->mfl[mk] & JIT_MEMBER_SINK) && (c->mfl[mk] & JIT_MEMBER_MAIN);
}

static bool is_elementwise_op(int op)
{
    return op >= IR_OP_NEG && op <= IR_OP_WHERE;
}

/* In a big group, evaluates the element-wise members shaped like the main
 * space at the main point first, in topological order, so that a long
 * chain is built one link at a time instead of by recursion as deep as
 * the chain. (Small groups skip this: a member evaluated here that no
 * sink needs at this point would be wasted work.) */
static void prewarm(struct cg *c)
{
    if (c->nmem <= JIT_CODEGEN_MAX_DEPTH / 4)
        return;
    for (uint32_t mk = 0; mk < c->nmem && c->rc == KILN_OK; mk++) {
        uint32_t node = c->mem[mk];
        char v[NAMELEN];
        if ((c->mfl[mk] & JIT_MEMBER_MAIN) && c->same_main[c->nin + mk] &&
            is_elementwise_op(N(c, node)->op))
            val(c, node, 0, v);
    }
}

static void gen_elementwise(struct cg *c, struct jit_buf *out)
{
    begin_fn(c, "k_main");
    odometer_start(c, c->main_rank, "c", "L");
    line(c, "for (int64_t f = begin; f < end; f++) {");
    open_scope(c);
    prewarm(c);
    for (uint32_t k = 0; k < c->G->nsinks; k++)
        write_sink(c, c->sinks[k], pt_flat_in(c, slot(c, c->sinks[k]), "f", PT_MAIN), "f");
    odometer_step(c, c->main_rank, "c", "L");
    close_scope(c);
    line(c, "}");
    end_fn(c, out);
}

/* Main-loop sinks of a reduction group, written at the main point. */
static void main_sinks(struct cg *c)
{
    for (uint32_t mk = 0; mk < c->nmem; mk++) {
        if (!is_main_sink(c, mk))
            continue;
        char fl[NAMELEN];
        uint32_t node = c->mem[mk];
        pt_get_flat(c, 0, fl);
        uint32_t q = pt_flat_in(c, slot(c, node), fl, PT_MAIN);
        write_sink(c, node, q, fl);
    }
}

/* ---- reductions in the spec's order ----------------------------------------
 *
 * interp.h fixes the order: per output element, its n elements j (row-major
 * over the reduced dims) in blocks of IR_REDUCE_BLOCK, within a block float
 * add/mul/mean in IR_REDUCE_LANES lanes (j % lanes) folded by halves, block
 * values combined in block order; float max/min in one lane (serial), which
 * blocked and combined in order gives the same bytes. Integers are exact in
 * any order and take the lanes too.
 *
 * The module has a helper and three entry points:
 *   k_blk   one block [begin, end) of j for a tile of nt output elements
 *           starting at coordinates oc, each tile element's value to bv[t].
 *           Two loop orders:
 *           INNER (the input's last dim is reduced, so j walks memory;
 *             nt is 1): the run along the last dim is cut where j is a
 *             multiple of the lane count, the aligned middle updates all
 *             lanes at once (gcc vectorises it), and the short ends test
 *             each lane, so every lane index is a constant and the lanes
 *             stay in registers; the fold is written out.
 *           TILE (nt > 1): nt consecutive output elements along the
 *             output dim of the last kept input dim (at most RD_TILE),
 *             the inner loop over them, each with its own lanes. When the
 *             last dim is kept (OUTER) that reads memory contiguously;
 *             when it is reduced, k_main still takes tiles for rows of at
 *             most one lane each (n <= 16: pooling windows), where the
 *             INNER loop's fixed cost per row would dominate.
 *   k_main  over output elements (any split): every block of each.
 *   k_init  over partial items b * nout + f (any split): block b of output
 *           f into the scratch array of partials (one acc value each).
 *   k_fini  over output elements (any split): the partials of each in
 *           block order, then the epilogue.
 * k_main alone, or k_init then k_fini, give the same bytes; run.c picks. */

#define RD_TILE 64

struct rd {
    const struct ir_node *rd, *x;
    int op, dt, lanes;
    bool inner;     /* the input's last dim is reduced */
    int od;         /* the output dim of the last kept input dim; -1: none */
    const char *at; /* acc_type */
    char id[96];    /* the identity */
    char nred[256]; /* C expression: elements per output */
    char nout[256]; /* C expression: output elements */
};

/* Names the main point's coordinates: reduced dims i<d> (the last input
 * dim "ii" in the INNER loop), kept dims o<k> (the last kept one "ot" in
 * a tile). */
static void rd_point(struct cg *c, const struct rd *r, bool tile)
{
    struct pt *m = &c->pts[0];
    int o = 0;
    for (int d = 0; d < r->x->rank; d++) {
        bool last = d == r->x->rank - 1;
        if (r->rd->attr.reduce.dims & (1u << d)) {
            snprintf(m->comp[d], NAMELEN, last && !tile ? "ii" : "i%d", d);
            if (r->rd->attr.reduce.keepdims)
                o++;
        } else {
            snprintf(m->comp[d], NAMELEN, tile && o == r->od ? "ot" : "o%d", o);
            o++;
        }
    }
    m->hc = true;
    m->hf = false;
}

/* One main-loop point: the reduce's input combined into `acc`, and the
 * main-loop sinks written. Opens and closes its own scope. */
static void rd_point_body(struct cg *c, const struct rd *r, const char *acc)
{
    open_scope(c);
    char xv[NAMELEN];
    prewarm(c);
    val(c, r->rd->in[0], 0, xv);
    acc_combine(c, r->op, r->dt, acc, xv);
    main_sinks(c);
    close_scope(c);
}

/* Folds a tile's lanes by halves: `al` names lane l, `aw` lane l + w. Only
 * the first `na` lanes (the block's length, at most the lane count) ever
 * took an element; the others still hold the identity, and combining the
 * identity changes no bit (x * 1.0 is x; x + 0.0 is x unless x is -0.0,
 * and a lane that starts at +0.0 never becomes -0.0 in round to nearest;
 * integers are exact), so the fold skips them: a short block costs in
 * proportion to its length. */
static void rd_fold(struct cg *c, const struct rd *r, const char *al, const char *aw)
{
    if (r->lanes == 1)
        return;
    line(c, "for (int w = %d; w >= 1; w /= 2) {", r->lanes / 2);
    line(c, "    for (int l = 0; l + w < na; l++) {");
    line(c, "    for (int64_t t = 0; t < nt; t++) {"); /* the tile at once: a vector loop */
    c->ind += 2;
    acc_combine(c, r->op, r->dt, al, aw);
    c->ind -= 2;
    line(c, "    }");
    line(c, "    }");
    line(c, "    if (na > w)");
    line(c, "        na = w;");
    line(c, "}");
}

/* Declares the reduced dims' counters (all but "ii" when INNER) at flat
 * index `from` of the reduced space. */
static void rd_reduced_start(struct cg *c, const struct rd *r, const char *from, bool tile)
{
    /* Divisions only past the first block: most reductions have one. */
    line(c, "int64_t rj = %s;", from);
    for (int d = r->x->rank - 1; d >= 0; d--)
        if (r->rd->attr.reduce.dims & (1u << d)) {
            if (!tile && r->inner && d == r->x->rank - 1)
                line(c, "int64_t ii = 0;");
            else
                line(c, "int64_t i%d = 0;", d);
        }
    line(c, "if (rj != 0) {");
    for (int d = r->x->rank - 1; d >= 0; d--)
        if (r->rd->attr.reduce.dims & (1u << d)) {
            const char *nm = !tile && r->inner && d == r->x->rank - 1 ? "ii" : NULL;
            char buf[NAMELEN];
            snprintf(buf, sizeof buf, "i%d", d);
            line(c, "    %s = rj %% L%d;", nm ? nm : buf, d);
            line(c, "    rj /= L%d;", d);
        }
    line(c, "}");
}

/* Steps the reduced dims' counters from `first` (an input dim index, or
 * -1 for the last reduced dim) outwards, as an odometer. */
static void rd_reduced_step(struct cg *c, const struct rd *r, bool skip_last)
{
    int ds[KILN_LIMIT_RANK], n = 0;
    for (int d = 0; d < r->x->rank; d++)
        if (r->rd->attr.reduce.dims & (1u << d))
            ds[n++] = d;
    if (skip_last)
        n--; /* the INNER run's own dim was reset by the caller */
    if (n <= 0)
        return;
    struct jit_buf *b = &c->body;
    for (int k = 0; k < c->ind; k++)
        jit_buf_add(b, "    ");
    for (int k = n - 1; k > 0; k--)
        jit_buf_addf(b, "if (++i%d == L%d) { i%d = 0; ", ds[k], ds[k], ds[k]);
    jit_buf_addf(b, "++i%d;", ds[0]);
    for (int k = n - 1; k > 0; k--)
        jit_buf_add(b, " }");
    jit_buf_add(b, "\n");
}

static void rd_gen_blk(struct cg *c, const struct rd *r, struct jit_buf *out)
{
    char sig[256];
    snprintf(sig, sizeof sig,
             "static void k_blk(void **bufs, const int64_t *P, int64_t begin, int64_t end, "
             "const int64_t *oc, int64_t nt, %s *bv)",
             r->at);
    jit_buf_addf(&c->body, "%s\n{\n", sig);
    c->ind = 1;
    c->depth = 0;
    c->nmemo = 0;
    for (int d = 0; d < c->out_rank; d++)
        line(c, "const int64_t o%d = oc[%d]; (void) o%d;", d, d, d);
    line(c, "(void) nt;");
    int L = r->lanes;
    bool both = r->inner && r->od >= 0;
    if (both) /* a tile of short reductions (k_main chooses) */
        line(c, "if (nt == 1) {");
    if (r->inner) {
        rd_point(c, r, false);
        /* Lane indices are constants in every loop (the short runs test
         * each lane instead of indexing by j), so the lanes can live in
         * registers. */
        int last = r->x->rank - 1;
        line(c, "%s a[%d];", r->at, L);
        line(c, "for (int l = 0; l < %d; l++)", L);
        line(c, "    a[l] = %s;", r->id);
        rd_reduced_start(c, r, "begin", false);
        line(c, "for (int64_t j = begin; j < end;) {");
        c->ind++;
        line(c, "const int64_t i0r = ii;");
        line(c, "int64_t run = L%d - i0r;", last);
        line(c, "if (run > end - j)");
        line(c, "    run = end - j;");
        line(c, "int64_t k = 0;");
        if (L > 1) {
            /* A run that starts off a lane boundary: its first elements
             * take lanes p.. (a reduced dim before the last one, with a
             * last dim no multiple of the lane count). */
            line(c, "const int64_t p = j & %d;", L - 1);
            line(c, "if (p != 0) {");
            line(c, "    for (int l = 0; l < %d; l++) {", L);
            line(c, "        if (l >= p && l - p < run) {");
            line(c, "            const int64_t ii = i0r + l - p;");
            c->ind += 3;
            rd_point_body(c, r, "a[l]");
            c->ind -= 3;
            line(c, "        }");
            line(c, "    }");
            line(c, "    k = %d - p < run ? %d - p : run;", L, L);
            line(c, "}");
            line(c, "for (; k + %d <= run; k += %d) {", L, L);
            line(c, "    for (int l = 0; l < %d; l++) {", L);
            line(c, "        const int64_t ii = i0r + k + l;");
            c->ind += 2;
            rd_point_body(c, r, "a[l]");
            c->ind -= 2;
            line(c, "    }");
            line(c, "}");
            /* The rest starts on a lane boundary: lanes 0.. */
            line(c, "if (k < run) {");
            line(c, "    const int64_t rem = run - k;");
            line(c, "    for (int l = 0; l < %d; l++) {", L);
            line(c, "        if (l < rem) {");
            line(c, "            const int64_t ii = i0r + k + l;");
            c->ind += 3;
            rd_point_body(c, r, "a[l]");
            c->ind -= 3;
            line(c, "        }");
            line(c, "    }");
            line(c, "}");
        } else {
            line(c, "for (; k < run; k++) {");
            line(c, "    const int64_t ii = i0r + k;");
            c->ind++;
            rd_point_body(c, r, "a[0]");
            c->ind--;
            line(c, "}");
        }
        line(c, "j += run;");
        line(c, "ii = 0;");
        rd_reduced_step(c, r, true);
        c->ind--;
        line(c, "}");
        /* The whole fold, written out: constant lanes stay in registers
         * (a loop over lanes made gcc spill them, a store-forwarding stall
         * per step). */
        for (int w = L / 2; w >= 1; w /= 2)
            for (int l = 0; l < w; l++) {
                char al[16], aw[16];
                snprintf(al, sizeof al, "a[%d]", l);
                snprintf(aw, sizeof aw, "a[%d]", l + w);
                acc_combine(c, r->op, r->dt, al, aw);
            }
        line(c, "bv[0] = a[0];");
    }
    if (both)
        line(c, "} else {");
    if (!r->inner || both) {
        rd_point(c, r, true);
        line(c, "%s a[%d][%d];", r->at, L, RD_TILE);
        line(c, "int64_t na = end - begin < %d ? end - begin : %d;", L, L);
        line(c, "for (int l = 0; l < na; l++)");
        line(c, "    for (int64_t t = 0; t < nt; t++)");
        line(c, "        a[l][t] = %s;", r->id);
        rd_reduced_start(c, r, "begin", true);
        line(c, "for (int64_t j = begin; j < end; j++) {");
        line(c, "    %s *al = a[j & %d];", r->at, L - 1);
        line(c, "    for (int64_t t = 0; t < nt; t++) {");
        if (r->od >= 0)
            line(c, "        const int64_t ot = o%d + t;", r->od);
        c->ind += 2;
        rd_point_body(c, r, "al[t]");
        c->ind -= 2;
        line(c, "    }");
        c->ind++;
        rd_reduced_step(c, r, false);
        c->ind--;
        line(c, "}");
        rd_fold(c, r, "a[l][t]", "a[l + w][t]");
        line(c, "for (int64_t t = 0; t < nt; t++)");
        line(c, "    bv[t] = a[0][t];");
    }
    if (both)
        line(c, "}");
    end_fn(c, out); /* the head declares what P and bufs hold */
}

/* rv from `tot` and the epilogue's sinks at output f (coordinates o<d>). */
static void rd_epilogue(struct cg *c, const struct rd *r, const char *tot)
{
    open_scope(c);
    if (is_float(r->dt) && r->op == IR_REDUCE_MEAN) {
        char nan[80];
        f64_literal(nan, sizeof nan, __builtin_nan(""));
        line(c, "const int64_t cnt = %s;", r->nred);
        line(c, "%s rv = (%s) (cnt > 0 ? %s / (double) cnt : %s);", ct(r->dt), ct(r->dt), tot, nan);
    } else {
        line(c, "%s rv = (%s) %s;", ct(r->dt), ct(r->dt), tot);
    }
    for (uint32_t k = 0; k < c->G->nsinks; k++) {
        uint32_t node = c->sinks[k];
        int32_t s = slot(c, node);
        uint32_t mk = (uint32_t) s - c->nin;
        if (c->mfl[mk] & JIT_MEMBER_EPILOGUE)
            write_sink(c, node, pt_flat_in(c, s, "f", PT_OUT), "f");
    }
    close_scope(c);
}

/* The tile of output elements starting at f (coordinates o<d>) within
 * [f, lim): nt = 1 when INNER, else up to RD_TILE along the last dim. */
static void rd_tile(struct cg *c, const struct rd *r, const char *lim)
{
    if (r->od < 0) {
        line(c, "const int64_t nt = 1;");
        return;
    }
    line(c, "int64_t nt = %s - f;", lim);
    line(c, "if (nt > %d)", RD_TILE);
    line(c, "    nt = %d;", RD_TILE);
    line(c, "if (nt > O%d - o%d)", r->od, r->od);
    line(c, "    nt = O%d - o%d;", r->od, r->od);
    if (r->inner) { /* rows of up to one lane each: a tile, else one row at a time */
        line(c, "if (nred > %d)", IR_REDUCE_LANES);
        line(c, "    nt = 1;");
    }
}

static void rd_oc(struct cg *c)
{
    line(c, "int64_t oc[%d];", c->out_rank > 0 ? c->out_rank : 1);
    for (int d = 0; d < c->out_rank; d++)
        line(c, "oc[%d] = o%d;", d, d);
}

static void rd_init(struct cg *c, struct rd *rp)
{
    struct rd r;
    memset(&r, 0, sizeof r);
    r.rd = N(c, (uint32_t) c->G->reduce);
    r.x = N(c, r.rd->in[0]);
    r.op = r.rd->attr.reduce.op;
    r.dt = r.rd->dtype;
    r.lanes =
        is_float(r.dt) && (r.op == IR_REDUCE_MAX || r.op == IR_REDUCE_MIN) ? 1 : IR_REDUCE_LANES;
    r.inner = r.x->rank > 0 && (r.rd->attr.reduce.dims & (1u << (r.x->rank - 1)));
    r.od = -1;
    for (int d = 0, o = 0; d < r.x->rank; d++) {
        bool reduced = r.rd->attr.reduce.dims & (1u << d);
        if (!reduced)
            r.od = o;
        if (!reduced || r.rd->attr.reduce.keepdims)
            o++;
    }
    r.at = acc_type(r.op, r.dt);
    acc_identity(r.op, r.dt, r.id, sizeof r.id);
    snprintf(r.nred, sizeof r.nred, "(int64_t) 1");
    for (int d = 0; d < r.x->rank; d++)
        if (r.rd->attr.reduce.dims & (1u << d)) {
            size_t len = strlen(r.nred);
            snprintf(r.nred + len, sizeof r.nred - len, " * L%d", d);
        }
    snprintf(r.nout, sizeof r.nout, "(int64_t) 1");
    for (int d = 0; d < c->out_rank; d++) {
        size_t len = strlen(r.nout);
        snprintf(r.nout + len, sizeof r.nout - len, " * O%d", d);
    }
    *rp = r;
}

/* CUDA only (codegen_cuda.c): the device's reductions need the value of
 * one point and the epilogue of one output element, from the same value
 * machinery, and the accumulator's type, identity and combine:
 *   kiln_acc  the accumulator type (acc_type)
 *   k_id()    the identity
 *   k_comb(&a, x)  a = a op x, as acc_combine
 *   k_pt(bufs, P, 0, 0, oc, ic)  the reduce's input at output coordinates
 *             oc and reduced coordinates ic (the reduced dims in order),
 *             as the accumulator type, writing the main-loop sinks there
 *   k_epi(bufs, P, f, 0, tot)  the epilogue of output element f
 * The C text for the CPU does not contain them. */
static void rd_gen_cuda(struct cg *c, const struct rd *r, struct jit_buf *out)
{
    jit_buf_addf(out, "typedef %s kiln_acc;\n", r->at);
    jit_buf_addf(out, "static __forceinline__ kiln_acc k_id(void) { return %s; }\n", r->id);
    jit_buf_add(out, "static __forceinline__ void k_comb(kiln_acc *a, kiln_acc x)\n{\n");
    c->ind = 1;
    acc_combine(c, r->op, r->dt, "(*a)", "x");
    jit_buf_add(&c->body, "}\n");
    jit_buf_add(out, c->body.data ? c->body.data : "");
    jit_buf_clear(&c->body);

    jit_buf_add(&c->body, "static __forceinline__ kiln_acc k_pt(void **bufs, const int64_t *P, "
                          "int64_t begin, int64_t end, const int64_t *oc, const int64_t *ic)\n{\n");
    c->ind = 1;
    c->depth = 0;
    c->nmemo = 0;
    rd_point(c, r, false);
    for (int d = 0; d < c->out_rank; d++)
        line(c, "const int64_t o%d = oc[%d]; (void) o%d;", d, d, d);
    for (int d = 0, k = 0; d < r->x->rank; d++)
        if (r->rd->attr.reduce.dims & (1u << d))
            line(c, "const int64_t %s = ic[%d];", c->pts[0].comp[d], k++);
    line(c, "(void) ic;");
    line(c, "kiln_acc xr;");
    open_scope(c);
    char xv[NAMELEN];
    prewarm(c);
    val(c, r->rd->in[0], 0, xv);
    if (is_float(r->dt))
        line(c, "xr = (double) %s;", xv);
    else if (r->op == IR_REDUCE_MAX || r->op == IR_REDUCE_MIN)
        line(c, "xr = (int64_t) %s;", xv);
    else
        line(c, "xr = (uint64_t) (int64_t) %s;", xv);
    main_sinks(c);
    close_scope(c);
    line(c, "return xr;");
    end_fn(c, out);

    jit_buf_add(&c->body, "static __forceinline__ void k_epi(void **bufs, const int64_t *P, "
                          "int64_t begin, int64_t end, kiln_acc tot)\n{\n");
    c->ind = 1;
    c->depth = 0;
    c->nmemo = 0;
    odometer_start(c, c->out_rank, "o", "O");
    line(c, "const int64_t f = begin;");
    rd_epilogue(c, r, "tot");
    end_fn(c, out);
}

static void gen_reduce(struct cg *c, struct jit_buf *out, bool cuda)
{
    struct rd r;
    rd_init(c, &r);
    _Static_assert(IR_REDUCE_LANES == 16, "k_blk's lane masks say 15");
    rd_gen_blk(c, &r, out);

    /* k_main: every block of each output element. */
    begin_fn(c, "k_main");
    line(c, "const int64_t nred = %s;", r.nred);
    odometer_start(c, c->out_rank, "o", "O");
    line(c, "%s tot[%d], bv[%d];", r.at, RD_TILE, RD_TILE);
    line(c, "for (int64_t f = begin; f < end;) {");
    c->ind++;
    rd_tile(c, &r, "end");
    rd_oc(c);
    line(c, "for (int64_t t = 0; t < nt; t++)");
    line(c, "    tot[t] = %s;", r.id);
    line(c, "for (int64_t jb = 0; jb < nred; jb += %d) {", IR_REDUCE_BLOCK);
    line(c, "    k_blk(bufs, P, jb, nred - jb > %d ? jb + %d : nred, oc, nt, bv);", IR_REDUCE_BLOCK,
         IR_REDUCE_BLOCK);
    line(c, "    for (int64_t t = 0; t < nt; t++) {");
    c->ind += 2;
    acc_combine(c, r.op, r.dt, "tot[t]", "bv[t]");
    c->ind -= 2;
    line(c, "    }");
    line(c, "}");
    line(c, "for (int64_t t = 0; t < nt; t++, f++) {");
    c->ind++;
    rd_epilogue(c, &r, "tot[t]");
    odometer_step(c, c->out_rank, "o", "O");
    c->ind--;
    line(c, "}");
    c->ind--;
    line(c, "}");
    end_fn(c, out);

    /* k_init: partial items it = b * nout + f into the scratch. */
    begin_fn(c, "k_init");
    line(c, "%s *part = (%s *) bufs[%u];", r.at, r.at, c->nin + c->G->nsinks);
    line(c, "const int64_t nred = %s, nout = %s;", r.nred, r.nout);
    line(c, "%s bv[%d];", r.at, RD_TILE);
    line(c, "for (int64_t it = begin; it < end;) {");
    c->ind++;
    line(c, "const int64_t b = it / nout, f = it %% nout;");
    line(c, "int64_t rf = f;");
    for (int d = c->out_rank - 1; d >= 0; d--) {
        line(c, "const int64_t o%d = rf %% O%d;", d, d);
        line(c, "rf /= O%d;", d);
    }
    line(c, "(void) rf;");
    rd_oc(c);
    if (r.inner || r.od < 0) {
        line(c, "const int64_t nt = 1;");
    } else {
        line(c, "int64_t nt = end - it;");
        line(c, "if (nt > nout - f)");
        line(c, "    nt = nout - f;");
        line(c, "if (nt > %d)", RD_TILE);
        line(c, "    nt = %d;", RD_TILE);
        line(c, "if (nt > O%d - o%d)", r.od, r.od);
        line(c, "    nt = O%d - o%d;", r.od, r.od);
    }
    line(c, "const int64_t jb = b * %d;", IR_REDUCE_BLOCK);
    line(c, "k_blk(bufs, P, jb, nred - jb > %d ? jb + %d : nred, oc, nt, bv);", IR_REDUCE_BLOCK,
         IR_REDUCE_BLOCK);
    line(c, "for (int64_t t = 0; t < nt; t++)");
    line(c, "    part[it + t] = bv[t];");
    line(c, "it += nt;");
    c->ind--;
    line(c, "}");
    end_fn(c, out);

    /* k_fini: the partials of each output element in block order. */
    begin_fn(c, "k_fini");
    line(c, "const %s *part = (const %s *) bufs[%u];", r.at, r.at, c->nin + c->G->nsinks);
    line(c, "const int64_t nred = %s, nout = %s;", r.nred, r.nout);
    line(c, "const int64_t nb = (nred + %d) / %d;", IR_REDUCE_BLOCK - 1, IR_REDUCE_BLOCK);
    odometer_start(c, c->out_rank, "o", "O");
    line(c, "for (int64_t f = begin; f < end; f++) {");
    c->ind++;
    line(c, "%s tot = %s;", r.at, r.id);
    line(c, "for (int64_t b = 0; b < nb; b++) {");
    c->ind++;
    acc_combine(c, r.op, r.dt, "tot", "part[b * nout + f]");
    c->ind--;
    line(c, "}");
    rd_epilogue(c, &r, "tot");
    odometer_step(c, c->out_rank, "o", "O");
    c->ind--;
    line(c, "}");
    end_fn(c, out);
    if (cuda)
        rd_gen_cuda(c, &r, out);
}

/* The sink index of REINDEX_REDUCE node rr. */
static uint32_t rr_sink(const struct cg *c, uint32_t rr)
{
    uint32_t wk = 0;
    while (wk < c->G->nsinks && c->sinks[wk] != rr)
        wk++;
    return wk;
}

/* REINDEX_REDUCE's walk over the input space as function `name`: each
 * element combined into its output element in place (`atomic`: handed to
 * kiln_rr_atomic instead, which codegen_cuda.c defines). */
static void rr_gen_main(struct cg *c, struct jit_buf *out, const char *name, bool scratch,
                        bool atomic)
{
    uint32_t rr = (uint32_t) c->G->reduce;
    const struct ir_node *nd = N(c, rr);
    int op = nd->attr.reindex->op, dt = nd->dtype;
    uint32_t wk = rr_sink(c, rr);
    char acc[64];
    begin_fn(c, name);
    if (scratch)
        line(c, "double *acc = (double *) bufs[%u];", c->nin + c->G->nsinks);
    c->pts[0].hf = true;
    snprintf(c->pts[0].flat, NAMELEN, "f");
    for (int d = 0; d < c->main_rank; d++)
        snprintf(c->pts[0].comp[d], NAMELEN, "c%d", d);
    c->pts[0].hc = true;
    odometer_start(c, c->main_rank, "c", "L");
    line(c, "for (int64_t f = begin; f < end; f++) {");
    open_scope(c);
    char xv[NAMELEN], ok[NAMELEN];
    val(c, nd->in[0], 0, xv);
    main_sinks(c);
    name_t a[KILN_LIMIT_RANK];
    int32_t xs = slot(c, nd->in[0]), ys = slot(c, rr);
    reindex_targets(c, rr, 0, xs, ys, ys, a, ok);
    line(c, "if (%s) {", ok);
    open_scope(c);
    char kx[512] = "0";
    for (int d = 0; d < nd->rank; d++) {
        char dn[NAMELEN];
        dim_name(c, ys, d, dn);
        char tmp[512];
        snprintf(tmp, sizeof tmp, "(%s) * %s + %s", kx, dn, a[d]);
        snprintf(kx, sizeof kx, "%s", tmp);
    }
    line(c, "int64_t k = %s;", kx);
    if (atomic) {
        line(c, "kiln_rr_atomic(w%u + k, (%s) %s%s);", wk, acc_type(op, dt),
             is_float(dt) || op == IR_REDUCE_MAX || op == IR_REDUCE_MIN ? "" : "(int64_t) ", xv);
    } else if (scratch || is_float(dt)) {
        snprintf(acc, sizeof acc, scratch ? "acc[k]" : "w%u[k]", wk);
        acc_combine(c, op, dt, acc, xv);
    } else {
        /* Integers combine in place: wrapping add/mul truncated at the
         * width equals the interpreter's 64-bit accumulate-then-truncate. */
        char t[NAMELEN];
        newname(c, t, 't');
        line(c, "%s %s = (%s) w%u[k];", acc_type(op, dt), t, acc_type(op, dt), wk);
        acc_combine(c, op, dt, t, xv);
        line(c, "w%u[k] = (%s) %s;", wk, ct(dt), t);
    }
    close_scope(c);
    line(c, "}");
    odometer_step(c, c->main_rank, "c", "L");
    close_scope(c);
    line(c, "}");
    end_fn(c, out);
}

static void gen_reindex_reduce(struct cg *c, struct jit_buf *out, bool scratch, bool cuda)
{
    uint32_t rr = (uint32_t) c->G->reduce;
    const struct ir_node *nd = N(c, rr);
    int op = nd->attr.reindex->op, dt = nd->dtype;
    uint32_t wk = rr_sink(c, rr);
    char id[96];
    acc_identity(op, dt, id, sizeof id);
    /* init */
    begin_fn(c, "k_init");
    if (scratch)
        line(c, "double *acc = (double *) bufs[%u];", c->nin + c->G->nsinks);
    line(c, "for (int64_t f = begin; f < end; f++)");
    if (scratch)
        line(c, "    acc[f] = %s;", id);
    else
        line(c, "    w%u[f] = (%s) %s;", wk, ct(dt), id);
    end_fn(c, out);
    rr_gen_main(c, out, "k_main", scratch, false);
    if (scratch) {
        begin_fn(c, "k_fini");
        line(c, "const double *acc = (const double *) bufs[%u];", c->nin + c->G->nsinks);
        line(c, "for (int64_t f = begin; f < end; f++)");
        line(c, "    w%u[f] = (%s) acc[f];", wk, ct(dt));
        end_fn(c, out);
    }
    /* CUDA only (codegen_cuda.c): for integers, whose combine gives the
     * same bytes in any order, the accumulator (as REDUCE's rd_gen_cuda)
     * and k_scat, the walk with each combine an atomic kiln_rr_atomic. */
    if (cuda && !is_float(dt)) {
        jit_buf_addf(out, "typedef %s kiln_acc;\n", acc_type(op, dt));
        jit_buf_add(out, "static __forceinline__ void k_comb(kiln_acc *a, kiln_acc x)\n{\n");
        c->ind = 1;
        acc_combine(c, op, dt, "(*a)", "x");
        jit_buf_add(&c->body, "}\n");
        jit_buf_add(out, c->body.data ? c->body.data : "");
        jit_buf_clear(&c->body);
        jit_buf_addf(out, "static __device__ void kiln_rr_atomic(%s *p, kiln_acc x);\n", ct(dt));
        rr_gen_main(c, out, "k_scat", false, true);
    }
}

/* ---- setup -------------------------------------------------------------------- */

static void cg_fini(struct cg *c)
{
    free(c->slot_of);
    free(c->same_main);
    free(c->dim_off);
    free(c->pts);
    free(c->memo);
    jit_buf_fini(&c->pre);
    jit_buf_fini(&c->head);
    jit_buf_fini(&c->body);
}

/* Fills the slot tables; no codegen. KILN_OK or KILN_ENOMEM. */
static int cg_init(struct cg *c, const struct ir_graph *g, const struct jit_plan *p, uint32_t gi)
{
    memset(c, 0, sizeof *c);
    c->g = g;
    c->p = p;
    c->G = &p->groups[gi];
    c->nin = c->G->ninputs;
    c->nmem = c->G->nmembers;
    c->nslots = c->nin + c->nmem;
    c->ins = p->refs + c->G->input0;
    c->sinks = p->refs + c->G->sink0;
    c->mem = p->members + c->G->member0;
    c->mfl = p->member_flags + c->G->member0;
    jit_buf_init(&c->pre);
    jit_buf_init(&c->head);
    jit_buf_init(&c->body);
    c->slot_of = malloc((size_t) g->count * sizeof(int32_t));
    c->same_main = calloc((size_t) c->nslots + 1, 7);
    c->dim_off = calloc((size_t) c->nslots + 1, 2 * sizeof(uint32_t));
    if (c->slot_of == NULL || c->same_main == NULL || c->dim_off == NULL)
        return KILN_ENOMEM;
    size_t ns = (size_t) c->nslots + 1;
    c->same_out = c->same_main + ns;
    c->need_dims = c->same_main + 2 * ns;
    c->need_str = c->same_main + 3 * ns;
    c->need_ptr = c->same_main + 4 * ns;
    c->need_extra = c->same_main + 5 * ns;
    c->scal_off = c->dim_off + ns;
    for (uint32_t i = 0; i < g->count; i++)
        c->slot_of[i] = -1;
    for (uint32_t s = 0; s < c->nslots; s++)
        c->slot_of[slot_node(c, s)] = (int32_t) s;
    const struct ir_node *space = N(c, c->G->space);
    const struct ir_node *red = c->G->reduce >= 0 ? N(c, (uint32_t) c->G->reduce) : NULL;
    c->main_rank = space->rank;
    c->out_rank = red ? red->rank : 0;
    uint32_t off = (uint32_t) (c->main_rank + c->out_rank);
    for (uint32_t s = 0; s < c->nslots; s++) {
        const struct ir_node *nd = N(c, slot_node(c, s));
        c->same_main[s] = jit_same_shape(nd, space);
        c->same_out[s] = red != NULL && jit_same_shape(nd, red);
        c->dim_off[s] = off;
        off += nd->rank;
    }
    for (uint32_t s = c->nin; s < c->nslots; s++) {
        const struct ir_node *nd = N(c, slot_node(c, s));
        c->scal_off[s] = off;
        off += nd->op == IR_OP_CONST ? 1 : nd->op == IR_OP_RANDOM ? 2 : 0;
    }
    c->nparams = off;
    return KILN_OK;
}

static bool needs_scratch(const struct ir_graph *g, const struct jit_group *G)
{
    return G->kind == JIT_GROUP_REINDEX_REDUCE &&
           g->nodes[G->reduce].dtype == IR_DTYPE_FLOAT32;
}

bool jit_kernel_scratch(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi)
{
    return needs_scratch(g, &p->groups[gi]);
}

static const char prelude[] =
    "static inline double kiln_bits_f64(int64_t u)\n"
    "{\n"
    "    union { int64_t i; double d; } x;\n"
    "    x.i = u;\n"
    "    return x.d;\n"
    "}\n"
    "float kiln_rand_uniform_f32(uint64_t seed, uint64_t ctr);\n"
    "double kiln_rand_uniform_f64(uint64_t seed, uint64_t ctr);\n"
    "float kiln_rand_normal_f32(uint64_t seed, uint64_t ctr);\n"
    "double kiln_rand_normal_f64(uint64_t seed, uint64_t ctr);\n";

void jit_codegen_prelude(struct jit_buf *src)
{
    jit_buf_add(src, jit_ops_prelude_c());
    jit_buf_add(src, jit_expr_prelude_c(0));
    jit_buf_add(src, prelude);
}

static int codegen_group(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                         struct jit_buf *src, bool cuda)
{
    struct cg c;
    int rc = cg_init(&c, g, p, gi);
    if (rc != KILN_OK) {
        cg_fini(&c);
        return rc;
    }
    /* Point 0: the main loop's point; point 1: the output loop's. */
    struct pt m;
    memset(&m, 0, sizeof m);
    m.owner = OWNER_MAIN;
    m.rank = (uint8_t) c.main_rank;
    m.loop = PT_MAIN;
    m.hc = true;
    m.hf = true;
    snprintf(m.flat, NAMELEN, "f");
    for (int d = 0; d < c.main_rank; d++)
        snprintf(m.comp[d], NAMELEN, "c%d", d);
    c.npts = 0;
    struct pt o;
    memset(&o, 0, sizeof o);
    o.owner = OWNER_OUT;
    o.rank = (uint8_t) c.out_rank;
    o.loop = PT_OUT;
    o.hc = o.hf = true;
    snprintf(o.flat, NAMELEN, "f");
    for (int d = 0; d < c.out_rank; d++)
        snprintf(o.comp[d], NAMELEN, "o%d", d);
    if (c.cappts == 0) {
        c.pts = calloc(16, sizeof(struct pt));
        c.cappts = c.pts ? 16 : 0;
    }
    if (c.pts == NULL) {
        cg_fini(&c);
        return KILN_ENOMEM;
    }
    c.pts[0] = m;
    c.pts[1] = o;
    c.npts = 2;
    struct jit_buf fns;
    jit_buf_init(&fns);
    switch (c.G->kind) {
    case JIT_GROUP_ELEMENTWISE:
        gen_elementwise(&c, &fns);
        break;
    case JIT_GROUP_REDUCE:
        gen_reduce(&c, &fns, cuda);
        break;
    case JIT_GROUP_REINDEX_REDUCE:
        gen_reindex_reduce(&c, &fns, needs_scratch(g, c.G), cuda);
        break;
    default:
        fail(&c, KILN_EINTERNAL);
        break;
    }
    rc = c.rc;
    if (rc == KILN_OK) {
        jit_codegen_prelude(src);
        jit_buf_add(src, c.pre.data ? c.pre.data : "");
        jit_buf_add(src, fns.data ? fns.data : "");
        if (src->bad || c.pre.bad || fns.bad)
            rc = KILN_ENOMEM;
    }
    jit_buf_fini(&fns);
    cg_fini(&c);
    return rc;
}

int jit_codegen_group(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                      struct jit_buf *src)
{
    return codegen_group(g, p, gi, src, false);
}

int jit_codegen_group_cuda(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           struct jit_buf *src)
{
    return codegen_group(g, p, gi, src, true);
}

/* ---- keys and params --------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 29);
}

uint64_t jit_kernel_key(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi)
{
    const struct jit_group *G = &p->groups[gi];
    const struct ir_node *space = &g->nodes[G->space];
    const struct ir_node *red = G->reduce >= 0 ? &g->nodes[G->reduce] : NULL;
    uint64_t h = mix(G->signature, 0x6b65726e656c0001ull);
    uint32_t n = G->ninputs + G->nmembers;
    uint64_t bits = 0;
    int nb = 0;
    for (uint32_t s = 0; s < n; s++) {
        uint32_t node = s < G->ninputs ? p->refs[G->input0 + s] : p->members[G->member0 + s - G->ninputs];
        const struct ir_node *nd = &g->nodes[node];
        bits = bits << 2 | (uint64_t) jit_same_shape(nd, space) << 1 |
               (uint64_t) (red != NULL && jit_same_shape(nd, red));
        if (node == G->space)
            h = mix(h, 0x100000000ull | s);
        if ((nb += 2) == 64) {
            h = mix(h, bits);
            bits = 0;
            nb = 0;
        }
    }
    return mix(mix(h, bits), n);
}

size_t jit_kernel_nparams(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi)
{
    const struct jit_group *G = &p->groups[gi];
    size_t n = g->nodes[G->space].rank + (G->reduce >= 0 ? g->nodes[G->reduce].rank : 0);
    for (uint32_t k = 0; k < G->ninputs; k++)
        n += g->nodes[p->refs[G->input0 + k]].rank;
    for (uint32_t k = 0; k < G->nmembers; k++) {
        const struct ir_node *nd = &g->nodes[p->members[G->member0 + k]];
        n += nd->rank + (nd->op == IR_OP_CONST ? 1 : nd->op == IR_OP_RANDOM ? 2 : 0);
    }
    return n;
}

void jit_kernel_params(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                       int64_t *P)
{
    const struct jit_group *G = &p->groups[gi];
    size_t k = 0;
    const struct ir_node *space = &g->nodes[G->space];
    for (int d = 0; d < space->rank; d++)
        P[k++] = space->shape[d];
    if (G->reduce >= 0) {
        const struct ir_node *rd = &g->nodes[G->reduce];
        for (int d = 0; d < rd->rank; d++)
            P[k++] = rd->shape[d];
    }
    for (uint32_t s = 0; s < G->ninputs; s++) {
        const struct ir_node *nd = &g->nodes[p->refs[G->input0 + s]];
        for (int d = 0; d < nd->rank; d++)
            P[k++] = nd->shape[d];
    }
    for (uint32_t s = 0; s < G->nmembers; s++) {
        const struct ir_node *nd = &g->nodes[p->members[G->member0 + s]];
        for (int d = 0; d < nd->rank; d++)
            P[k++] = nd->shape[d];
    }
    for (uint32_t s = 0; s < G->nmembers; s++) {
        const struct ir_node *nd = &g->nodes[p->members[G->member0 + s]];
        if (nd->op == IR_OP_CONST) {
            if (ir_dtype_info((enum ir_dtype) nd->dtype)->kind == IR_KIND_FLOAT)
                memcpy(&P[k++], &nd->attr.scalar.f, sizeof(double));
            else
                P[k++] = nd->attr.scalar.i;
        } else if (nd->op == IR_OP_RANDOM) {
            P[k++] = (int64_t) nd->attr.random.seed;
            P[k++] = (int64_t) nd->attr.random.offset;
        }
    }
}

/* ---- symbols ------------------------------------------------------------------ */

/* The random numbers of RANDOM element `ctr` under key `seed`, as the
 * interpreter computes them (philox.h). */
#define RAND_FN(name, type, pick)                                                                   \
    static type name(uint64_t seed, uint64_t ctr)                                                   \
    {                                                                                               \
        uint32_t r[4];                                                                              \
        philox_block(seed, ctr, r);                                                                 \
        return pick(r);                                                                             \
    }
RAND_FN(rand_uniform_f32, float, philox_uniform_f32)
RAND_FN(rand_uniform_f64, double, philox_uniform_f64)
RAND_FN(rand_normal_f32, float, philox_normal_f32)
RAND_FN(rand_normal_f64, double, philox_normal_f64)

static const struct jit_symbol symbols[] = {
    {"kiln_rand_uniform_f32", (const void *) rand_uniform_f32},
    {"kiln_rand_uniform_f64", (const void *) rand_uniform_f64},
    {"kiln_rand_normal_f32", (const void *) rand_normal_f32},
    {"kiln_rand_normal_f64", (const void *) rand_normal_f64},
};

const struct jit_symbol *jit_codegen_symbols(size_t *n)
{
    *n = sizeof symbols / sizeof symbols[0];
    return symbols;
}

/* The same functions for a module that is linked without them: each calls
 * through entry k of kiln__imports, which the loader fills with
 * symbols[k].addr. So the code that runs is this file's, and the numbers
 * are the interpreter's whichever compiler built the module. */
static const char imports_c[] =
    "extern void (*kiln__imports[])(void);\n"
    "float kiln_rand_uniform_f32(uint64_t seed, uint64_t ctr)\n"
    "{ return ((float (*)(uint64_t, uint64_t)) kiln__imports[0])(seed, ctr); }\n"
    "double kiln_rand_uniform_f64(uint64_t seed, uint64_t ctr)\n"
    "{ return ((double (*)(uint64_t, uint64_t)) kiln__imports[1])(seed, ctr); }\n"
    "float kiln_rand_normal_f32(uint64_t seed, uint64_t ctr)\n"
    "{ return ((float (*)(uint64_t, uint64_t)) kiln__imports[2])(seed, ctr); }\n"
    "double kiln_rand_normal_f64(uint64_t seed, uint64_t ctr)\n"
    "{ return ((double (*)(uint64_t, uint64_t)) kiln__imports[3])(seed, ctr); }\n";
_Static_assert(sizeof symbols / sizeof symbols[0] == 4, "imports_c lists every symbol");

const char *jit_codegen_imports_c(void)
{
    return imports_c;
}
