/* test_ops_c.c: every element-wise op on every dtype, rendered through
 * jit_ops_render_c and compiled by libtcc, gives the reference
 * interpreter's bytes exactly (a NaN matches any NaN: payloads are not
 * specified), on edge values (every pair of them, for binary ops) and
 * random ones; random chains of ops agree too, which passes narrow
 * values from helper to helper; and render refuses what the constructors
 * refuse. One module per dtype keeps the compiles few. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "ir.h"
#include "kiln_err.h"
#include "ops_c.h"
#include "tcc.h"

#define NEDGE  96   /* edge values of one dtype, at most */
#define NRAND  4000 /* random elements after the edge pairs */
#define NCHAIN 40   /* random op chains per dtype */
#define CHAIN  6    /* ops per chain */

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t dsize(int dt)
{
    return ir_dtype_size((enum ir_dtype) dt);
}

static bool dfloat(int dt)
{
    return dt == IR_DTYPE_FLOAT32 || dt == IR_DTYPE_FLOAT64;
}

/* ---- values ----------------------------------------------------------- */

/* Edge values of dt, as raw elements in v; returns how many. */
static int edges(int dt, unsigned char *v)
{
    /* clang-format off */
    static const int64_t ints[] = {
        0, 1, -1, 2, -2, 3, -3, 5, 7, 8, 9, -8, -9, 31, 32, 33, -31, -32, 63, 64, 65, 100, -100,
        126, 127, 128, -127, -128, -129, 200, 254, 255, 256, 65536, -65536, 46341, 1000000007,
        INT32_MAX - 1, INT32_MAX, (int64_t) INT32_MAX + 1, INT32_MIN + 1, INT32_MIN,
        (int64_t) INT32_MIN - 1, 3037000500, (INT64_C(1) << 24) + 1, (INT64_C(1) << 53) + 1,
        (INT64_C(1) << 60) + (INT64_C(1) << 36) + 1, -((INT64_C(1) << 60) + (INT64_C(1) << 36) + 1),
        INT64_C(1) << 62, INT64_MAX - 1, INT64_MAX, INT64_MIN + 1, INT64_MIN};
    static const double flts[] = {
        0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 2.0, -2.0, 3.0, -3.0, 7.0, -7.5,
        0.1, -0.4, 0.49999999999999994, NAN, -NAN, INFINITY, -INFINITY, DBL_MIN, DBL_TRUE_MIN,
        -DBL_TRUE_MIN, 1e-310, FLT_TRUE_MIN, FLT_MIN, DBL_MAX, -DBL_MAX, FLT_MAX,
        3.4028235677973366e38, 3.4028236e38, 1.0000000596046448, 1.0000000596046457, 127.5,
        127.99, 128.0, 128.5, -128.5, -128.99, -129.0, 255.5, 256.0, 2147483520.0, 2147483647.5,
        2147483648.0, -2147483648.9, -2147483649.0, 9223372036854775808.0, 9223371487098961920.0,
        9223372036854774784.0, -9223372036854775808.0, -9223372036854777856.0, 1e300, -1e300,
        4503599627370497.0, 2251799813685248.5, 710.0, -745.5, 88.8, -104.0, 1e-7, 30.0};
    /* clang-format on */
    size_t s = dsize(dt);
    int n = 0;
    if (dt == IR_DTYPE_BOOL) {
        static const unsigned char b[] = {0, 1, 2, 0x80, 0xff};
        memcpy(v, b, sizeof b);
        return (int) sizeof b;
    }
    if (!dfloat(dt)) {
        for (size_t i = 0; i < sizeof ints / sizeof ints[0] && n < NEDGE; i++) {
            int64_t lo, hi;
            int64_t x = ints[i];
            switch (dt) {
            case IR_DTYPE_INT8:
                lo = INT8_MIN, hi = INT8_MAX;
                break;
            case IR_DTYPE_UINT8:
                lo = 0, hi = UINT8_MAX;
                break;
            case IR_DTYPE_INT32:
                lo = INT32_MIN, hi = INT32_MAX;
                break;
            default:
                lo = INT64_MIN, hi = INT64_MAX;
                break;
            }
            if (x < lo || x > hi)
                continue;
            uint64_t u = (uint64_t) x; /* little-endian: the low bytes */
            memcpy(v + (size_t) n++ * s, &u, s);
        }
        return n;
    }
    for (size_t i = 0; i < sizeof flts / sizeof flts[0] && n < NEDGE; i++) {
        if (dt == IR_DTYPE_FLOAT32) {
            float f = (float) flts[i];
            memcpy(v + (size_t) n++ * s, &f, s);
        } else {
            memcpy(v + (size_t) n++ * s, &flts[i], s);
        }
    }
    if (dt == IR_DTYPE_FLOAT32) { /* float32's own saturation neighbours */
        float more[] = {nextafterf(2147483648.0f, 0),
                        nextafterf(9.223372e18f, 0),
                        nextafterf(-9.223372e18f, -INFINITY),
                        16777217.0f,
                        8388608.5f,
                        nextafterf(0.5f, 0)};
        for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
            memcpy(v + (size_t) n++ * s, &more[i], s);
    }
    return n;
}

/* One random element of dt into p: raw bits, small numbers, or an edge. */
static void random_value(int dt, uint64_t *seed, const unsigned char *edge, int nedge,
                         unsigned char *p)
{
    size_t s = dsize(dt);
    uint64_t r = rng(seed);
    switch (r % 4) {
    case 0: { /* raw bits: any pattern, NaN payloads and garbage bools included */
        uint64_t u = rng(seed);
        memcpy(p, &u, s);
        return;
    }
    case 1:
        memcpy(p, edge + (size_t) (rng(seed) % (uint64_t) nedge) * s, s);
        return;
    default: { /* small: halves for floats, in-range exponents and shifts for ints */
        int64_t k = (int64_t) (rng(seed) % 141) - 70;
        if (dt == IR_DTYPE_FLOAT64) {
            double d = (double) k / ((r % 4) == 2 ? 2.0 : 7.0);
            memcpy(p, &d, s);
        } else if (dt == IR_DTYPE_FLOAT32) {
            float f = (float) ((double) k / ((r % 4) == 2 ? 2.0 : 7.0));
            memcpy(p, &f, s);
        } else {
            uint64_t u = (uint64_t) k;
            memcpy(p, &u, s);
        }
        return;
    }
    }
}

/* n elements of dt: all ordered pairs of edges (as a when `first`, else
 * as b) followed by random elements. */
static unsigned char *make_input(int dt, int64_t n, bool first, uint64_t *seed)
{
    unsigned char edge[(NEDGE + 8) * 8];
    int ne = edges(dt, edge);
    size_t s = dsize(dt);
    unsigned char *v = malloc((size_t) n * s);
    ck_assert_ptr_nonnull(v);
    for (int64_t k = 0; k < n; k++) {
        if (k < (int64_t) ne * ne)
            memcpy(v + (size_t) k * s, edge + (size_t) (first ? k / ne : k % ne) * s, s);
        else
            random_value(dt, seed, edge, ne, v + (size_t) k * s);
    }
    return v;
}

static int64_t input_len(int dt)
{
    unsigned char edge[(NEDGE + 8) * 8];
    int ne = edges(dt, edge);
    return (int64_t) ne * ne + NRAND;
}

/* ---- checking --------------------------------------------------------- */

static bool same(int dt, const unsigned char *x, const unsigned char *y)
{
    if (memcmp(x, y, dsize(dt)) == 0)
        return true;
    if (dt == IR_DTYPE_FLOAT32) {
        float a, b;
        memcpy(&a, x, 4), memcpy(&b, y, 4);
        return isnan(a) && isnan(b);
    }
    if (dt == IR_DTYPE_FLOAT64) {
        double a, b;
        memcpy(&a, x, 8), memcpy(&b, y, 8);
        return isnan(a) && isnan(b);
    }
    return false;
}

static void show(char *buf, size_t len, int dt, const unsigned char *p)
{
    if (dt == IR_DTYPE_FLOAT32) {
        float f;
        memcpy(&f, p, 4);
        snprintf(buf, len, "%a (%.9g)", (double) f, (double) f);
    } else if (dt == IR_DTYPE_FLOAT64) {
        double d;
        memcpy(&d, p, 8);
        snprintf(buf, len, "%a (%.17g)", d, d);
    } else {
        uint64_t u = 0;
        memcpy(&u, p, dsize(dt));
        snprintf(buf, len, "0x%llx", (unsigned long long) u);
    }
}

/* One kernel function: y[i] = expr for i < n. */
struct kfn {
    int node; /* the graph node it computes */
    int dt_out;
    const char *what; /* for failure messages */
    char name[16];
};

struct module_run {
    struct jit_compiler comp;
    struct jit_module *mod;
    struct jit_buf src;
    uint64_t compile_ns;
};

static void module_begin(struct module_run *m)
{
    ck_assert_int_eq(jit_compiler_init(&m->comp), KILN_OK);
    jit_buf_init(&m->src);
    jit_buf_add(&m->src, jit_ops_prelude_c());
}

static void module_compile(struct module_run *m)
{
    size_t nsym;
    const struct jit_symbol *sym = jit_tcc_math_symbols(&nsym);
    struct jit_tcc_opts opts = {.compiler = &m->comp};
    char err[2048];
    ck_assert(!m->src.bad);
    int rc = jit_tcc_compile(&opts, m->src.data, sym, nsym, &m->mod, err, sizeof err);
    ck_assert_msg(rc == KILN_OK, "compile failed: %s", err);
    m->compile_ns = jit_module_compile_ns(m->mod);
}

static void module_end(struct module_run *m)
{
    jit_module_free(m->mod);
    jit_buf_fini(&m->src);
    jit_compiler_fini(&m->comp);
}

/* The signature every test kernel has; pc is WHERE's condition. */
typedef void (*kernel_t)(const void *pa, const void *pb, const void *pc, void *py, int64_t n);

static void kernel_begin(struct jit_buf *src, struct kfn *f, int k, int dt, int cdt, int dt_out)
{
    snprintf(f->name, sizeof f->name, "k%d", k);
    f->dt_out = dt_out;
    jit_buf_addf(src,
                 "void %s(const void *pa, const void *pb, const void *pc, void *py, int64_t n)\n"
                 "{\n"
                 "    const %s *a = pa; const %s *b = pb; const %s *c = pc; %s *y = py;\n"
                 "    int64_t i;\n"
                 "    for (i = 0; i < n; i++)\n"
                 "        y[i] = ",
                 f->name, ir_dtype_ctype(dt), ir_dtype_ctype(dt), ir_dtype_ctype(cdt),
                 ir_dtype_ctype(dt_out));
}

/* Runs f on the inputs and compares each element with the interpreter's. */
static void kernel_check(const struct module_run *m, const struct kfn *f, void **want, int64_t n,
                         const void *a, const void *b, const void *c, int dt)
{
    kernel_t fn = (kernel_t) jit_module_lookup(m->mod, f->name);
    ck_assert_ptr_nonnull(fn);
    size_t s = dsize(f->dt_out);
    unsigned char *y = malloc((size_t) n * s);
    ck_assert_ptr_nonnull(y);
    memset(y, 0xa5, (size_t) n * s);
    fn(a, b, c, y, n);
    const unsigned char *w = want[f->node];
    for (int64_t k = 0; k < n; k++) {
        if (same(f->dt_out, y + (size_t) k * s, w + (size_t) k * s))
            continue;
        char sa[64], sb[64], sg[64], sw[64];
        show(sa, sizeof sa, dt, (const unsigned char *) a + (size_t) k * dsize(dt));
        show(sb, sizeof sb, dt, (const unsigned char *) b + (size_t) k * dsize(dt));
        show(sg, sizeof sg, f->dt_out, y + (size_t) k * s);
        show(sw, sizeof sw, f->dt_out, w + (size_t) k * s);
        ck_abort_msg("%s on %s, element %lld: a=%s b=%s: kernel %s, interpreter %s", f->what,
                     ir_dtype_name(dt), (long long) k, sa, sb, sg, sw);
    }
    free(y);
}

static void render_ok(struct jit_buf *src, int op, int din, int dout, const char *const *args)
{
    int rc = jit_ops_render_c(src, op, din, dout, args);
    ck_assert_msg(rc == KILN_OK, "render %s %s -> %s: %d", ir_op_name(op), ir_dtype_name(din),
                  ir_dtype_name(dout), rc);
}

/* ---- every op on one dtype ---------------------------------------------- */

START_TEST(every_op_matches_the_interpreter)
{
    int dt = IR_DTYPE_BOOL + _i;
    uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t) dt;
    int64_t n = input_len(dt), shape[1] = {n};
    unsigned char *a = make_input(dt, n, true, &seed), *b = make_input(dt, n, false, &seed);
    unsigned char *cond[IR_DTYPE_COUNT] = {0};
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    int na = ir_add_array(&g, dt, 1, shape, a, (size_t) n * dsize(dt), &err);
    int nb = ir_add_array(&g, dt, 1, shape, b, (size_t) n * dsize(dt), &err);
    ck_assert(na >= 0 && nb >= 0);
    int nc[IR_DTYPE_COUNT];
    for (int cd = IR_DTYPE_BOOL; cd < IR_DTYPE_COUNT; cd++) {
        cond[cd] = make_input(cd, n, (cd & 1) != 0, &seed);
        nc[cd] = ir_add_array(&g, cd, 1, shape, cond[cd], (size_t) n * dsize(cd), &err);
        ck_assert(nc[cd] >= 0);
    }

    struct module_run m;
    module_begin(&m);
    static struct kfn fns[128];
    int nf = 0;
    const char *ab[] = {"a[i]", "b[i]"}, *cab[] = {"c[i]", "a[i]", "b[i]"};
    struct jit_buf scratch;
    jit_buf_init(&scratch);
    for (int op = IR_OP_NEG; op <= IR_OP_WHERE; op++) {
        if (op > IR_OP_CAST && op < IR_OP_ADD)
            op = IR_OP_ADD;
        if (op > IR_OP_SHR)
            op = IR_OP_WHERE;
        /* CAST loops over targets, WHERE over condition dtypes. */
        int variants = op == IR_OP_CAST || op == IR_OP_WHERE ? IR_DTYPE_COUNT - 1 : 1;
        for (int v = 0; v < variants; v++) {
            int other = IR_DTYPE_BOOL + v, node;
            if (op == IR_OP_CAST)
                node = ir_add_cast(&g, na, other, &err);
            else if (op == IR_OP_WHERE)
                node = ir_add_where(&g, nc[other], na, nb, &err);
            else if (op < IR_OP_ADD)
                node = ir_add_unary(&g, op, na, &err);
            else
                node = ir_add_binary(&g, op, na, nb, &err);
            if (node < 0) { /* refused: render must refuse every output dtype too */
                ck_assert_int_eq(err.code, KILN_ETYPE);
                for (int o = IR_DTYPE_BOOL; o < IR_DTYPE_COUNT; o++)
                    ck_assert_int_eq(jit_ops_render_c(&scratch, op, dt, o, ab), KILN_EINTERNAL);
                continue;
            }
            int dout = g.nodes[node].dtype;
            struct kfn *f = &fns[nf];
            ck_assert_int_lt(nf, 128);
            f->node = node;
            f->what = ir_op_name(op);
            int cdt = op == IR_OP_WHERE ? other : dt;
            kernel_begin(&m.src, f, nf, dt, cdt, dout);
            if (op == IR_OP_WHERE)
                render_ok(&m.src, op, other, dout, cab);
            else
                render_ok(&m.src, op, dt, dout, ab);
            jit_buf_add(&m.src, ";\n}\n");
            /* A wrong output dtype is refused (CAST and WHERE take any). */
            if (op != IR_OP_CAST && op != IR_OP_WHERE) {
                int wrong = dout == IR_DTYPE_BOOL ? IR_DTYPE_INT8 : IR_DTYPE_BOOL;
                ck_assert_int_eq(jit_ops_render_c(&scratch, op, dt, wrong, ab), KILN_EINTERNAL);
            }
            nf++;
        }
    }
    jit_buf_fini(&scratch);

    void **want;
    ck_assert_int_eq(ir_interp_run(&g, NULL, &want, &err), KILN_OK);
    module_compile(&m);
    for (int k = 0; k < nf; k++) {
        /* name the variant for messages */
        const struct ir_node *nd = &g.nodes[fns[k].node];
        int cdt = nd->op == IR_OP_WHERE ? g.nodes[nd->in[0]].dtype : dt;
        kernel_check(&m, &fns[k], want, n, a, b, cond[cdt] ? cond[cdt] : a, dt);
    }
    fprintf(stderr,
            "ops_c: %s: %d op kernels x %lld elements, module of %zu bytes compiled in %.2f ms\n",
            ir_dtype_name(dt), nf, (long long) n, m.src.len, (double) m.compile_ns / 1e6);
    ir_interp_free(&g, want);
    module_end(&m);
    ir_graph_fini(&g);
    for (int cd = 0; cd < IR_DTYPE_COUNT; cd++)
        free(cond[cd]);
    free(a);
    free(b);
}
END_TEST

/* ---- random chains ------------------------------------------------------ */

struct value {
    int node, dt;
    char *expr; /* C expression over a[i], b[i] */
};

/* Tries one random op on the values so far; returns 1 and appends on success. */
static int chain_step(struct ir_graph *g, struct value *vals, int *nv, uint64_t *seed)
{
    static const int unary_ops[] = {
        IR_OP_NEG,  IR_OP_ABS,         IR_OP_EXP,         IR_OP_LOG, IR_OP_SQRT,  IR_OP_RSQRT,
        IR_OP_SIN,  IR_OP_TANH,        IR_OP_SIGMOID,     IR_OP_ERF, IR_OP_FLOOR, IR_OP_ROUND,
        IR_OP_SIGN, IR_OP_LOGICAL_NOT, IR_OP_BITWISE_NOT, IR_OP_CAST};
    struct ir_error err;
    const struct value *x = &vals[rng(seed) % (uint64_t) *nv];
    const struct value *y = NULL, *z = NULL;
    for (int t = 0; t < 8 && y == NULL; t++) {
        const struct value *c = &vals[rng(seed) % (uint64_t) *nv];
        if (c->dt == x->dt)
            y = c;
    }
    int kind = (int) (rng(seed) % 5), op, node, din = x->dt, dout;
    const char *args[3];
    if (kind < 2 || y == NULL) {
        op = unary_ops[rng(seed) % (sizeof unary_ops / sizeof unary_ops[0])];
        if (op == IR_OP_CAST)
            node = ir_add_cast(g, x->node, IR_DTYPE_BOOL + (int) (rng(seed) % 7), &err);
        else
            node = ir_add_unary(g, op, x->node, &err);
        args[0] = x->expr;
    } else if (kind < 4) {
        op = IR_OP_ADD + (int) (rng(seed) % (IR_OP_SHR - IR_OP_ADD + 1));
        node = ir_add_binary(g, op, x->node, y->node, &err);
        args[0] = x->expr, args[1] = y->expr;
    } else {
        op = IR_OP_WHERE;
        z = &vals[rng(seed) % (uint64_t) *nv];
        node = ir_add_where(g, z->node, x->node, y->node, &err);
        din = z->dt;
        args[0] = z->expr, args[1] = x->expr, args[2] = y->expr;
    }
    if (node < 0)
        return 0;
    dout = g->nodes[node].dtype;
    struct jit_buf e;
    jit_buf_init(&e);
    render_ok(&e, op, din, dout, args);
    vals[*nv] = (struct value){.node = node, .dt = dout, .expr = e.data};
    (*nv)++;
    return 1;
}

START_TEST(random_chains_match_the_interpreter)
{
    int dt = IR_DTYPE_BOOL + _i;
    uint64_t seed = 0x243f6a8885a308d3ULL + (uint64_t) dt;
    int64_t n = input_len(dt), shape[1] = {n};
    unsigned char *a = make_input(dt, n, true, &seed), *b = make_input(dt, n, false, &seed);
    struct ir_graph g;
    struct ir_error err;
    ir_graph_init(&g);
    static struct value vals[NCHAIN * (CHAIN + 2)];
    static struct kfn fns[NCHAIN * CHAIN];
    int nf = 0, nvals = 0;
    struct module_run m;
    module_begin(&m);
    for (int c = 0; c < NCHAIN; c++) {
        struct value *v = &vals[nvals];
        int nv = 2;
        v[0] = (struct value){ir_add_array(&g, dt, 1, shape, a, (size_t) n * dsize(dt), &err), dt,
                              strdup("a[i]")};
        v[1] = (struct value){ir_add_array(&g, dt, 1, shape, b, (size_t) n * dsize(dt), &err), dt,
                              strdup("b[i]")};
        for (int t = 0; nv < CHAIN + 2 && t < 100; t++)
            chain_step(&g, v, &nv, &seed);
        for (int k = 2; k < nv; k++) {
            struct kfn *f = &fns[nf];
            f->node = v[k].node;
            f->what = "chain";
            kernel_begin(&m.src, f, nf, dt, dt, v[k].dt);
            jit_buf_add(&m.src, v[k].expr);
            jit_buf_add(&m.src, ";\n}\n");
            nf++;
        }
        nvals += nv;
    }
    void **want;
    ck_assert_int_eq(ir_interp_run(&g, NULL, &want, &err), KILN_OK);
    module_compile(&m);
    for (int k = 0; k < nf; k++) {
        struct kfn *f = &fns[k];
        kernel_check(&m, f, want, n, a, b, a, dt);
    }
    fprintf(stderr, "ops_c: %s: %d chain kernels, module of %zu bytes compiled in %.2f ms\n",
            ir_dtype_name(dt), nf, m.src.len, (double) m.compile_ns / 1e6);
    ir_interp_free(&g, want);
    module_end(&m);
    for (int k = 0; k < nvals; k++)
        free(vals[k].expr);
    ir_graph_fini(&g);
    free(a);
    free(b);
}
END_TEST

/* ---- render's contract --------------------------------------------------- */

START_TEST(render_refuses_codegen_bugs)
{
    struct jit_buf b;
    jit_buf_init(&b);
    const char *two[] = {"x", "y"}, *one_null[] = {"x", NULL};
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_REDUCE, IR_DTYPE_INT32, IR_DTYPE_INT32, two),
                     KILN_EINTERNAL);
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_ARRAY, IR_DTYPE_INT32, IR_DTYPE_INT32, two),
                     KILN_EINTERNAL);
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_ADD, 0, 0, two), KILN_EINTERNAL);
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_CAST, IR_DTYPE_INT8, 8, two), KILN_EINTERNAL);
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_ADD, IR_DTYPE_INT8, IR_DTYPE_INT8, one_null),
                     KILN_EINTERNAL);
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_ADD, IR_DTYPE_INT8, IR_DTYPE_INT8, NULL),
                     KILN_EINTERNAL);
    ck_assert_uint_eq(b.len, 0); /* nothing appended on failure */

    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_FLOOR_DIV, IR_DTYPE_INT32, IR_DTYPE_INT32, two),
                     KILN_OK);
    ck_assert_str_eq(b.data, "kiln_floor_div_i32((x), (y))");
    jit_buf_clear(&b);
    const char *three[] = {"c", "x", "y"};
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_WHERE, IR_DTYPE_FLOAT32, IR_DTYPE_BOOL, three),
                     KILN_OK);
    ck_assert_str_eq(b.data, "kiln_where_b(kiln_truthy_f32((c)), (x), (y))");
    jit_buf_clear(&b);
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_CAST, IR_DTYPE_FLOAT64, IR_DTYPE_UINT8, two),
                     KILN_OK);
    ck_assert_str_eq(b.data, "kiln_cast_f64_u8((x))");
    b.bad = true;
    ck_assert_int_eq(jit_ops_render_c(&b, IR_OP_NEG, IR_DTYPE_INT8, IR_DTYPE_INT8, two),
                     KILN_ENOMEM);
    jit_buf_fini(&b);
}
END_TEST

/* What the prelude costs each kernel compile: a one-op kernel with and
 * without it (medians of 15). Informational; asserts only that both work. */
static double median_compile_ms(struct jit_compiler *comp, const char *src)
{
    size_t nsym;
    const struct jit_symbol *sym = jit_tcc_math_symbols(&nsym);
    struct jit_tcc_opts opts = {.compiler = comp};
    double t[15];
    for (int k = 0; k < 15; k++) {
        struct jit_module *mod;
        char err[512];
        ck_assert_int_eq(jit_tcc_compile(&opts, src, sym, nsym, &mod, err, sizeof err), KILN_OK);
        t[k] = (double) jit_module_compile_ns(mod) / 1e6;
        jit_module_free(mod);
    }
    for (int i = 1; i < 15; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1], t[j - 1] = x;
        }
    return t[7];
}

START_TEST(prelude_compile_cost)
{
#define BODY(EXPR)                                                                                 \
    "void k(void **bufs, const int64_t *shapes, int64_t begin, int64_t end)\n"                     \
    "{\n"                                                                                          \
    "    const float *a = bufs[0], *b = bufs[1]; float *y = bufs[2]; int64_t i;\n"                 \
    "    for (i = begin; i < end; i++) y[i] = " EXPR ";\n"                                         \
    "}\n"
    struct jit_compiler comp;
    ck_assert_int_eq(jit_compiler_init(&comp), KILN_OK);
    struct jit_buf bare, with;
    jit_buf_init(&bare);
    jit_buf_init(&with);
    jit_buf_add(&bare, "typedef long long int64_t;\n");
    jit_buf_add(&bare, BODY("a[i] + b[i]"));
    jit_buf_add(&with, jit_ops_prelude_c());
    jit_buf_add(&with, BODY("kiln_add_f32(a[i], b[i])"));
    double t0 = median_compile_ms(&comp, bare.data), t1 = median_compile_ms(&comp, with.data);
    fprintf(stderr,
            "ops_c: one-op kernel compiles in %.3f ms bare, %.3f ms with the %zu-byte "
            "prelude\n",
            t0, t1, strlen(jit_ops_prelude_c()));
    jit_buf_fini(&bare);
    jit_buf_fini(&with);
    jit_compiler_fini(&comp);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jit/ops_c");
    TCase *tc = tcase_create("ops_c");
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, every_op_matches_the_interpreter, 0, IR_DTYPE_COUNT - 1);
    tcase_add_loop_test(tc, random_chains_match_the_interpreter, 0, IR_DTYPE_COUNT - 1);
    tcase_add_test(tc, render_refuses_codegen_bugs);
    tcase_add_test(tc, prelude_compile_cost);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
