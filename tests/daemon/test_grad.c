/* test_grad.c: gradients through a real kilnd (PROTOCOL.md §8 "Gradients").
 *
 * The seed's two-layer network (1 input, 10 sigmoid hidden units, 1
 * output, L2 loss, plain gradient descent, batches of 50 from sin on
 * [-3, 3]) trains from scratch with one SUBMIT per step — forward, `grad`
 * nodes and the update in one graph, the weights kept and replaced every
 * step — and its loss falls at least tenfold over 1000 steps while the
 * steps after the first compile no kernel (STATUS jit counters). Then:
 * derivatives up to the third within one SUBMIT, a max pool and a flip
 * whose backward runs on generated code, stop_grad, kept vars as leaves
 * with the zero-gradient warning in the SUBMIT reply, and every refusal
 * of a malformed `grad` node, typed and naming the field.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TIMEOUT_MS 30000
#define OP_GRAD 128
#define OP_STOP 129
#define F32 6
#define F64 7

struct conn {
    struct th_daemon d;
    nng_socket s;
    uint64_t sid;
};

static void open_conn_with(struct conn *c, const char *const *flags)
{
    th_prepare(&c->d);
    th_start(&c->d, flags);
    c->s = th_connect(c->d.addr, TIMEOUT_MS);
    c->sid = th_hello(c->s, "grad");
}

static void open_conn(struct conn *c)
{
    open_conn_with(c, NULL);
}

static void close_conn(struct conn *c)
{
    nng_close(c->s);
    ck_assert_int_eq(th_stop(&c->d), 0);
}

/* ---- node builders ------------------------------------------------------ */

static struct proto_node array(uint64_t id, uint32_t dt, uint32_t rank, const int64_t *shape,
                               const void *data, size_t bytes)
{
    struct proto_node a = th_node(id, 1);
    th_set_dtype(&a, dt);
    th_set_shape(&a, rank, shape);
    a.has |= PROTO_NODE_DATA;
    a.data = data;
    a.data_len = bytes;
    return a;
}

static struct proto_node constant(uint64_t id, uint32_t dt, uint32_t rank, const int64_t *shape,
                                  double v)
{
    struct proto_node c = th_node(id, 2);
    th_set_dtype(&c, dt);
    th_set_shape(&c, rank, shape);
    c.has |= PROTO_NODE_VALUE;
    c.value = (struct proto_number){.is_float = true, .f = v};
    return c;
}

static struct proto_node op1(uint64_t id, uint32_t op, uint64_t a)
{
    struct proto_node n = th_node(id, op);
    th_set_in(&n, 1, (uint64_t[]){a});
    return n;
}

static struct proto_node op2(uint64_t id, uint32_t op, uint64_t a, uint64_t b)
{
    struct proto_node n = th_node(id, op);
    th_set_in(&n, 2, (uint64_t[]){a, b});
    return n;
}

static struct proto_node grad(uint64_t id, uint64_t loss, uint64_t target)
{
    return op2(id, OP_GRAD, loss, target);
}

static struct proto_node grad_seeded(uint64_t id, uint64_t loss, uint64_t target, uint64_t seed)
{
    struct proto_node n = th_node(id, OP_GRAD);
    th_set_in(&n, 3, (uint64_t[]){loss, target, seed});
    return n;
}

static struct proto_node bcast(uint64_t id, uint64_t x, uint32_t rank, const int64_t *shape,
                               uint32_t ndims, const uint32_t *dims)
{
    struct proto_node n = op1(id, 96, x);
    th_set_shape(&n, rank, shape);
    th_set_dims(&n, ndims, dims);
    return n;
}

static struct proto_node reduce(uint64_t id, uint64_t x, uint32_t rop, uint32_t ndims,
                                const uint32_t *dims)
{
    struct proto_node n = op1(id, 98, x);
    n.has |= PROTO_NODE_REDUCE_OP;
    n.reduce_op = rop;
    th_set_dims(&n, ndims, dims);
    return n;
}

static struct proto_node reindex(uint64_t id, uint64_t x, uint32_t rank, const int64_t *shape,
                                 uint32_t nexprs, const char *const *exprs)
{
    struct proto_node n = op1(id, 97, x);
    th_set_shape(&n, rank, shape);
    n.has |= PROTO_NODE_EXPRS;
    n.nexprs = nexprs;
    for (uint32_t k = 0; k < nexprs; k++)
        n.exprs[k] = (struct proto_str){exprs[k], (uint32_t) strlen(exprs[k])};
    return n;
}

/* SUBMIT, returning the code and copying the reply's warnings. */
static int submit(struct conn *c, struct proto_node *nodes, uint32_t n, const uint64_t *keep,
                  uint32_t nkeep, struct proto_error *err, struct proto_warning *warnings,
                  uint32_t *nwarnings)
{
    struct proto_submit sub = {.nnodes = n, .nodes = nodes, .nkeep = nkeep,
                               .keep = (uint64_t *) keep};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_submit(&sb, c->sid, &sub), KILN_OK);
    struct proto_reply rep;
    int code = th_call(c->s, &sb, PROTO_SUBMIT, &rep);
    if (err != NULL)
        *err = rep.error;
    if (nwarnings != NULL) {
        *nwarnings = code == KILN_OK ? rep.u.submit.nwarnings : 0;
        if (*nwarnings > 0)
            memcpy(warnings, rep.u.submit.warnings, *nwarnings * sizeof(*warnings));
    }
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
    return code;
}

static void submit_ok(struct conn *c, struct proto_node *nodes, uint32_t n, const uint64_t *keep,
                      uint32_t nkeep)
{
    struct proto_error err;
    uint32_t nw;
    struct proto_warning w[PROTO_WARNINGS_MAX];
    int code = submit(c, nodes, n, keep, nkeep, &err, w, &nw);
    ck_assert_msg(code == KILN_OK, "SUBMIT refused: %s (%s)", err.message, err.field);
    ck_assert_msg(nw == 0, "unexpected warning: %s", nw ? w[0].message : "");
}

static void fetch(struct conn *c, uint64_t id, void *out, size_t bytes)
{
    struct proto_error err;
    int code = th_fetch(c->s, c->sid, id, out, bytes, TIMEOUT_MS, &err);
    ck_assert_msg(code == KILN_OK, "FETCH %llu: %s", (unsigned long long) id, err.message);
}

/* ---- the two-layer network --------------------------------------------- */

#define BATCH  50
#define HIDDEN 10
#define STEPS  1000
#define LR     0.1

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
    return (double) (splitmix(s) >> 11) * 0x1.0p-53;
}

static double normal(uint64_t *s)
{
    double u = uniform01(s), v = uniform01(s);
    return sqrt(-2 * log(1 - u)) * cos(6.283185307179586 * v);
}

/* Weight ids: set 0 or 1 (ping-pong, since a kept id cannot be redefined
 * until it is released). W1 [1,10], b1 [10], W2 [10], b2 [], loss []. */
enum { W1, B1, W2, B2, LOSS, NPARAM = 4 };
static uint64_t wid(int set, int which)
{
    return (uint64_t) (1000 + 100 * set + which);
}

static const int64_t s_w1[2] = {1, HIDDEN}, s_b1[1] = {HIDDEN}, s_w2[1] = {HIDDEN};
static const int64_t s_x[2] = {BATCH, 1}, s_t[1] = {BATCH}, s_h[2] = {BATCH, HIDDEN};

/* One training step: reads weight set `in`, keeps set 1 - in and the loss. */
static uint32_t train_nodes(struct proto_node *g, int in, const float *x, const float *t)
{
    int out = 1 - in;
    uint32_t n = 0;
    const uint32_t d0[1] = {0}, d1[1] = {1};
    g[n++] = array(1, F32, 2, s_x, x, BATCH * sizeof(float));
    g[n++] = array(2, F32, 1, s_t, t, BATCH * sizeof(float));
    g[n++] = bcast(3, 1, 2, s_h, 0, NULL);                   /* x stretched over units */
    g[n++] = bcast(4, wid(in, W1), 2, s_h, 0, NULL);         /* W1 stretched over the batch */
    g[n++] = bcast(5, wid(in, B1), 2, s_h, 1, d0);
    g[n++] = op2(6, 50, 3, 4);                               /* x * W1 */
    g[n++] = op2(7, 48, 6, 5);                               /* + b1 */
    g[n++] = op1(8, 26, 7);                                  /* sigmoid */
    g[n++] = bcast(9, wid(in, W2), 2, s_h, 1, d0);
    g[n++] = op2(10, 50, 8, 9);
    g[n++] = reduce(11, 10, 1, 1, d1);                       /* [50] */
    g[n++] = bcast(12, wid(in, B2), 1, s_t, 1, d0);
    g[n++] = op2(13, 48, 11, 12);                            /* y */
    g[n++] = op2(14, 49, 13, 2);                             /* y - t */
    g[n++] = op2(15, 50, 14, 14);
    g[n++] = reduce(wid(out, LOSS), 15, 5, 1, d0);           /* mean: the loss */
    const int64_t *shapes[NPARAM] = {s_w1, s_b1, s_w2, NULL};
    const uint32_t ranks[NPARAM] = {2, 1, 1, 0};
    for (int p = 0; p < NPARAM; p++) /* one backward pass for all four */
        g[n++] = grad((uint64_t) (20 + p), wid(out, LOSS), wid(in, p));
    for (int p = 0; p < NPARAM; p++) {
        g[n++] = constant((uint64_t) (30 + p), F32, ranks[p], shapes[p], LR);
        g[n++] = op2((uint64_t) (40 + p), 50, (uint64_t) (30 + p), (uint64_t) (20 + p));
        g[n++] = op2(wid(out, p), 49, wid(in, p), (uint64_t) (40 + p)); /* w - lr * g */
    }
    return n;
}

static void batch(uint64_t *rng, float *x, float *t)
{
    for (int j = 0; j < BATCH; j++) {
        x[j] = (float) (-3 + 6 * uniform01(rng));
        t[j] = sinf(x[j]);
    }
}

START_TEST(two_layer_network_trains)
{
    /* One plan per step, every step: steps that queue are not merged
     * (merged pairs have plans of their own; test_merge covers them). */
    static const char *const no_merge[] = {"--look-ahead", "1", NULL};
    struct conn c;
    open_conn_with(&c, no_merge);
    uint64_t rng = 12345;
    float w1[HIDDEN], b1[HIDDEN], w2[HIDDEN], b2 = 0;
    for (int k = 0; k < HIDDEN; k++) {
        w1[k] = (float) normal(&rng);
        b1[k] = (float) normal(&rng);
        w2[k] = (float) (0.5 * normal(&rng));
    }
    struct proto_node init[4] = {
        array(wid(0, W1), F32, 2, s_w1, w1, sizeof w1),
        array(wid(0, B1), F32, 1, s_b1, b1, sizeof b1),
        array(wid(0, W2), F32, 1, s_w2, w2, sizeof w2),
        array(wid(0, B2), F32, 0, NULL, &b2, sizeof b2),
    };
    const uint64_t init_keep[4] = {wid(0, W1), wid(0, B1), wid(0, W2), wid(0, B2)};
    submit_ok(&c, init, 4, init_keep, 4);

    struct proto_node g[64];
    float x[BATCH], t[BATCH], first = 0, last = 0;
    struct proto_status st1, st2;
    uint64_t t0 = th_now_ms();
    for (int step = 0; step < STEPS; step++) {
        int in = step % 2, out = 1 - in;
        batch(&rng, x, t);
        uint32_t n = train_nodes(g, in, x, t);
        ck_assert_uint_le(n, 64);
        const uint64_t keep[5] = {wid(out, W1), wid(out, B1), wid(out, W2), wid(out, B2),
                                  wid(out, LOSS)};
        submit_ok(&c, g, n, keep, 5);
        /* The step holds its inputs: the old set can go at once. */
        uint64_t old[5] = {wid(in, W1), wid(in, B1), wid(in, W2), wid(in, B2), wid(in, LOSS)};
        th_release(c.s, c.sid, old, step == 0 ? 4 : 5);
        if (step == 0) {
            fetch(&c, wid(out, LOSS), &first, sizeof first);
            th_status(c.s, &st1); /* after the first step, which compiled everything */
        } else if (step == STEPS - 1) {
            fetch(&c, wid(out, LOSS), &last, sizeof last);
        } else if (step % 32 == 0) {
            float l;
            fetch(&c, wid(out, LOSS), &l, sizeof l); /* bounds the queue */
            ck_assert(isfinite(l));
        }
    }
    th_status(c.s, &st2);
    uint64_t ms = th_now_ms() - t0;
    uint64_t steps_after = STEPS - 1;
    double per_step = (double) (st2.jit_kernels_run - st1.jit_kernels_run) / (double) steps_after;
    printf("two-layer network: loss %.6f -> %.6f (%.1fx) in %d steps, %llu ms; "
           "%.2f kernels per step; first step compiled %llu kernels; later steps compiled %llu, "
           "plan hits %llu, fallbacks %llu\n",
           first, last, first / last, STEPS, (unsigned long long) ms, per_step,
           (unsigned long long) st1.jit_kernels_compiled,
           (unsigned long long) (st2.jit_kernels_compiled - st1.jit_kernels_compiled),
           (unsigned long long) (st2.jit_plan_hits - st1.jit_plan_hits),
           (unsigned long long) st2.jit_fallbacks);
    ck_assert_msg(isfinite(first) && isfinite(last) && last * 10 <= first,
                  "loss %g -> %g: not a tenfold fall", first, last);
    ck_assert(st1.jit_enabled);
    ck_assert_uint_gt(st1.jit_kernels_compiled, 0);
    ck_assert_uint_eq(st2.jit_kernels_compiled, st1.jit_kernels_compiled);
    ck_assert_uint_eq(st2.jit_fallbacks, 0);
    ck_assert_uint_eq(st2.jit_plan_hits - st1.jit_plan_hits, steps_after);
    /* A whole number of kernels per step, the same every step. */
    ck_assert_uint_eq((st2.jit_kernels_run - st1.jit_kernels_run) % steps_after, 0);
    close_conn(&c);
}
END_TEST

/* ---- higher order, stop_grad, leaves, warnings -------------------------- */

/* f = x^3 and tanh(x) over a vector: f', f'', f''' in one SUBMIT (seeded
 * with ones, as the Jacobian is diagonal), and x * sigmoid(x) as a
 * rank-0 scalar without a seed. */
START_TEST(third_derivatives_in_one_submit)
{
    struct conn c;
    open_conn(&c);
    static const double xs[5] = {-1.5, -0.25, 0, 0.75, 2};
    const int64_t s5[1] = {5};
    struct proto_node g[32];
    uint32_t n = 0;
    g[n++] = array(1, F64, 1, s5, xs, sizeof xs);
    g[n++] = constant(2, F64, 1, s5, 3);
    g[n++] = constant(3, F64, 1, s5, 1); /* seed */
    g[n++] = op2(4, 54, 1, 2);           /* x^3 */
    g[n++] = grad_seeded(5, 4, 1, 3);
    g[n++] = grad_seeded(6, 5, 1, 3);
    g[n++] = grad_seeded(7, 6, 1, 3);
    g[n++] = op1(8, 25, 1); /* tanh */
    g[n++] = grad_seeded(9, 8, 1, 3);
    g[n++] = grad_seeded(10, 9, 1, 3);
    g[n++] = grad_seeded(11, 10, 1, 3);
    double x0 = 0.6;
    g[n++] = array(12, F64, 0, NULL, &x0, sizeof x0);
    g[n++] = op1(13, 26, 12);
    g[n++] = op2(14, 50, 13, 12); /* x sigmoid(x) */
    g[n++] = grad(15, 14, 12);
    g[n++] = grad(16, 15, 12);
    g[n++] = grad(17, 16, 12);
    const uint64_t keep[9] = {5, 6, 7, 9, 10, 11, 15, 16, 17};
    submit_ok(&c, g, n, keep, 9);
    double v[3][5];
    for (int o = 0; o < 3; o++)
        fetch(&c, keep[o], v[o], sizeof v[o]);
    for (int j = 0; j < 5; j++) {
        double x = xs[j];
        ck_assert(fabs(v[0][j] - 3 * x * x) <= 1e-12 * fmax(1, 3 * x * x));
        ck_assert(fabs(v[1][j] - 6 * x) <= 1e-12 * fmax(1, fabs(6 * x)));
        ck_assert(fabs(v[2][j] - 6) <= 1e-12 * 6);
    }
    for (int o = 0; o < 3; o++)
        fetch(&c, keep[3 + o], v[o], sizeof v[o]);
    for (int j = 0; j < 5; j++) {
        double th = tanh(xs[j]), s = 1 - th * th;
        double want[3] = {s, -2 * th * s, -2 * s * (1 - 3 * th * th)};
        for (int o = 0; o < 3; o++)
            ck_assert_msg(fabs(v[o][j] - want[o]) <= 1e-12 * fmax(1, fabs(want[o])),
                          "tanh order %d at %g: %.17g, want %.17g", o + 1, xs[j], v[o][j],
                          want[o]);
    }
    double sg = 1 / (1 + exp(-x0)), s1 = sg * (1 - sg), u = 1 - 2 * sg;
    double want[3] = {sg + x0 * s1, 2 * s1 + x0 * s1 * u, 3 * s1 * u + x0 * s1 * (u * u - 2 * s1)};
    for (int o = 0; o < 3; o++) {
        double got;
        fetch(&c, keep[6 + o], &got, sizeof got);
        ck_assert_msg(fabs(got - want[o]) <= 1e-12 * fmax(1, fabs(want[o])),
                      "x sigmoid order %d: %.17g, want %.17g", o + 1, got, want[o]);
    }
    close_conn(&c);
}
END_TEST

/* A max pool (reindex into windows, reduce max) after a flip that names
 * xshape, and an average through reindex_reduce: gradients on generated
 * code against the rule by hand. */
START_TEST(pool_and_flip_on_generated_code)
{
    struct conn c;
    open_conn(&c);
    static const float xs[8] = {3, -1, 4, 1, -5, 9, 2, 6};
    static const float seed[4] = {1, 2, 3, 4};
    const int64_t s8[1] = {8}, s4[1] = {4}, s42[2] = {4, 2};
    const uint32_t d1[1] = {1};
    struct proto_node g[16];
    uint32_t n = 0;
    g[n++] = array(1, F32, 1, s8, xs, sizeof xs);
    g[n++] = reindex(2, 1, 1, s8, 1, (const char *const[]){"xshape0 - 1 - i0"}); /* flip */
    g[n++] = reindex(3, 2, 2, s42, 1, (const char *const[]){"i0 * 2 + i1"});    /* windows */
    g[n++] = reduce(4, 3, 3, 1, d1);                                            /* max */
    g[n++] = array(5, F32, 1, s4, seed, sizeof seed);
    g[n++] = grad_seeded(6, 4, 1, 5);
    /* sum pairs with reindex_reduce, then differentiate through it */
    struct proto_node rr = op1(7, 99, 1);
    th_set_shape(&rr, 1, s4);
    rr.has |= PROTO_NODE_EXPRS | PROTO_NODE_REDUCE_OP;
    rr.reduce_op = 1;
    rr.nexprs = 1;
    rr.exprs[0] = (struct proto_str){"(xshape0 - 1 - i0) / 2", 22};
    g[n++] = rr;
    g[n++] = grad_seeded(8, 7, 1, 5);
    const uint64_t keep[2] = {6, 8};
    submit_ok(&c, g, n, keep, 2);
    float gx[8], gs[8];
    fetch(&c, 6, gx, sizeof gx);
    fetch(&c, 8, gs, sizeof gs);
    /* flipped: 6 2 9 -5 1 4 -1 3; windows max: 6 (x7), 9 (x5), 4 (x2), 3 (x0) */
    static const float want[8] = {4, 0, 3, 0, 0, 2, 0, 1};
    for (int j = 0; j < 8; j++) {
        ck_assert_msg(gx[j] == want[j], "max pool grad[%d] = %g, want %g", j, gx[j], want[j]);
        ck_assert_msg(gs[j] == seed[(7 - j) / 2], "pair sum grad[%d] = %g", j, gs[j]);
    }
    close_conn(&c);
}
END_TEST

START_TEST(stop_grad_kept_leaves_and_warnings)
{
    struct conn c;
    open_conn(&c);
    static const double xs[3] = {1, -2, 0.5};
    const int64_t s3[1] = {3};
    const uint32_t d0[1] = {0};
    struct proto_node g[16];
    uint32_t n = 0;
    g[n++] = array(1, F64, 1, s3, xs, sizeof xs);
    g[n++] = op1(2, OP_STOP, 1);
    g[n++] = op2(3, 50, 1, 2); /* x * stop(x) */
    g[n++] = reduce(4, 3, 1, 1, d0);
    g[n++] = grad(5, 4, 1);    /* = x, not 2x */
    g[n++] = grad(6, 4, 2);    /* the stop's own gradient: x */
    g[n++] = op2(7, 57, 1, 1); /* a bool */
    g[n++] = grad(8, 4, 7);    /* not a float: zeros, warned */
    g[n++] = array(9, F64, 1, s3, xs, sizeof xs);
    g[n++] = grad(10, 4, 9);   /* unused: zeros, warned */
    const uint64_t keep[5] = {5, 6, 8, 10, 4};
    struct proto_error err;
    struct proto_warning w[PROTO_WARNINGS_MAX];
    uint32_t nw = 0;
    ck_assert_int_eq(submit(&c, g, n, keep, 5, &err, w, &nw), KILN_OK);
    ck_assert_uint_eq(nw, 2);
    ck_assert_int_eq(w[0].node, 7);
    ck_assert_str_eq(w[0].field, "body.nodes[7].in[1]");
    ck_assert_int_eq(w[1].node, 9);
    ck_assert_str_eq(w[1].field, "body.nodes[9].in[1]");
    ck_assert(strstr(w[1].message, "zeros") != NULL);
    double v[3];
    fetch(&c, 5, v, sizeof v);
    for (int j = 0; j < 3; j++)
        ck_assert(v[j] == xs[j]);
    fetch(&c, 6, v, sizeof v);
    for (int j = 0; j < 3; j++)
        ck_assert(v[j] == xs[j]);
    uint8_t b[3];
    fetch(&c, 8, b, sizeof b);
    ck_assert(b[0] == 0 && b[1] == 0 && b[2] == 0);
    fetch(&c, 10, v, sizeof v);
    ck_assert(v[0] == 0 && v[1] == 0 && v[2] == 0);

    /* Kept vars are leaves: the kept gradient 5 (= x) differentiated with
     * respect to kept x is zeros (its graph is gone), with a warning; a
     * kept var as a target of a new loss gets its gradient. */
    const uint64_t keepx[1] = {20};
    struct proto_node gx[1] = {array(20, F64, 1, s3, xs, sizeof xs)};
    submit_ok(&c, gx, 1, keepx, 1);
    n = 0;
    g[n++] = reduce(21, 5, 1, 1, d0);
    g[n++] = grad(22, 21, 20); /* zeros: 5 is a leaf here */
    g[n++] = op2(23, 50, 5, 20);
    g[n++] = reduce(24, 23, 1, 1, d0);
    g[n++] = grad(25, 24, 5);  /* = x: kept 5 as a target */
    const uint64_t keep2[2] = {22, 25};
    ck_assert_int_eq(submit(&c, g, n, keep2, 2, &err, w, &nw), KILN_OK);
    ck_assert_uint_eq(nw, 1);
    ck_assert_str_eq(w[0].field, "body.nodes[1].in[1]");
    fetch(&c, 22, v, sizeof v);
    ck_assert(v[0] == 0 && v[1] == 0 && v[2] == 0);
    fetch(&c, 25, v, sizeof v);
    for (int j = 0; j < 3; j++)
        ck_assert(v[j] == xs[j]);
    close_conn(&c);
}
END_TEST

/* Two grad nodes naming the same loss, target and seed get distinct vars;
 * the gradient with respect to the loss itself is the seed. */
START_TEST(shared_pass_distinct_vars)
{
    struct conn c;
    open_conn(&c);
    static const float xs[2] = {2, 3}, ss[2] = {0.5f, -1};
    const int64_t s2[1] = {2};
    struct proto_node g[8] = {
        array(1, F32, 1, s2, xs, sizeof xs), op2(2, 50, 1, 1),
        array(3, F32, 1, s2, ss, sizeof ss), grad_seeded(4, 2, 1, 3),
        grad_seeded(5, 2, 1, 3), grad_seeded(6, 2, 2, 3),
    };
    const uint64_t keep[4] = {4, 5, 6, 2};
    submit_ok(&c, g, 6, keep, 4);
    /* A target defined after the loss's first grad node: a pass of its
     * own, zeros and a warning. */
    struct proto_node late2[6] = {
        array(12, F32, 1, s2, ss, sizeof ss), array(7, F32, 1, s2, xs, sizeof xs),
        op2(8, 50, 7, 7), grad_seeded(9, 8, 7, 12), array(10, F32, 1, s2, xs, sizeof xs),
        grad_seeded(11, 8, 10, 12),
    };
    struct proto_error err;
    struct proto_warning w[PROTO_WARNINGS_MAX];
    uint32_t nw;
    const uint64_t keep2[2] = {9, 11};
    ck_assert_int_eq(submit(&c, late2, 6, keep2, 2, &err, w, &nw), KILN_OK);
    ck_assert_uint_eq(nw, 1);
    ck_assert_int_eq(w[0].node, 5);
    float z[2];
    fetch(&c, 11, z, sizeof z);
    ck_assert(z[0] == 0 && z[1] == 0);
    float a[2], b[2], l[2];
    fetch(&c, 4, a, sizeof a);
    fetch(&c, 5, b, sizeof b);
    fetch(&c, 6, l, sizeof l);
    for (int j = 0; j < 2; j++) {
        ck_assert(a[j] == 2 * xs[j] * ss[j] && b[j] == a[j]);
        ck_assert(l[j] == ss[j]);
    }
    close_conn(&c);
}
END_TEST

/* ---- refusals ------------------------------------------------------------ */

static void refused(struct conn *c, struct proto_node *g, uint32_t n, int code,
                    const char *field, int64_t node)
{
    struct proto_error err;
    int got = submit(c, g, n, NULL, 0, &err, NULL, NULL);
    ck_assert_msg(got == code, "code %d (%s), want %d", got, err.message, code);
    ck_assert_str_eq(err.field, field);
    ck_assert_int_eq(err.node, node);
}

START_TEST(malformed_grads_refused)
{
    struct conn c;
    open_conn(&c);
    static const double xs[3] = {1, 2, 3};
    static const int32_t is[3] = {1, 2, 3};
    const int64_t s3[1] = {3}, s2[1] = {2};
    struct proto_node g[8];

    g[0] = array(1, F64, 1, s3, xs, sizeof xs);
    g[1] = op1(2, OP_GRAD, 1);
    refused(&c, g, 2, KILN_EVALUE, "body.nodes[1].in", 1); /* one input */
    g[1] = th_node(2, OP_GRAD);
    th_set_in(&g[1], 4, (uint64_t[]){1, 1, 1, 1});
    refused(&c, g, 2, KILN_EVALUE, "body.nodes[1].in", 1); /* four */
    g[1] = grad(2, 1, 1);
    refused(&c, g, 2, KILN_EVALUE, "body.nodes[1].in", 1); /* a loss of 3, no seed */
    g[1] = grad(2, 1, 99);
    refused(&c, g, 2, KILN_ENOTFOUND, "body.nodes[1].in[1]", 1);
    g[1] = array(2, 4, 1, s3, is, sizeof is);
    g[2] = grad_seeded(3, 2, 1, 2);
    refused(&c, g, 3, KILN_ETYPE, "body.nodes[2].in[0]", 2); /* an int loss */
    g[1] = array(2, F32, 1, s3, (float[]){1, 2, 3}, 12);
    g[2] = grad_seeded(3, 1, 1, 2);
    refused(&c, g, 3, KILN_ETYPE, "body.nodes[2].in[2]", 2); /* seed dtype */
    g[1] = array(2, F64, 1, s2, xs, 16);
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in[2]", 2); /* seed shape */
    g[1] = grad_seeded(2, 1, 1, 1);
    th_set_shape(&g[1], 1, s2);
    refused(&c, g, 2, KILN_EVALUE, "body.nodes[1].shape", 1); /* declared shape */
    g[1] = op1(2, OP_STOP, 1);
    th_set_dtype(&g[1], F32);
    refused(&c, g, 2, KILN_EVALUE, "body.nodes[1].dtype", 1);
    g[1] = grad_seeded(2, 1, 1, 1);
    g[1].has |= PROTO_NODE_DIMS;
    refused(&c, g, 2, KILN_EFIELD, "body.nodes[1].dims", 1);

    /* More backward passes than grad_passes: each grad below has a loss
     * of its own. */
    uint32_t passes = KILN_LIMIT_GRAD_PASSES + 1;
    struct proto_node *many = calloc(2 * passes + 1, sizeof(*many));
    ck_assert_ptr_nonnull(many);
    double one = 1;
    many[0] = array(1, F64, 0, NULL, &one, sizeof one);
    for (uint32_t k = 0; k < passes; k++) {
        many[1 + 2 * k] = op1(10 + 2 * k, 18, 1); /* exp */
        many[2 + 2 * k] = grad(11 + 2 * k, 10 + 2 * k, 1);
    }
    char field[64];
    snprintf(field, sizeof field, "body.nodes[%u]", 2 * passes);
    refused(&c, many, 2 * passes + 1, KILN_ELIMIT, field, 2 * passes);
    free(many);

    /* Nothing was kept: the session still works. */
    g[0] = array(1, F64, 0, NULL, &one, sizeof one);
    g[1] = op1(2, 18, 1);
    g[2] = grad(3, 2, 1);
    const uint64_t keep[1] = {3};
    submit_ok(&c, g, 3, keep, 1);
    double v;
    fetch(&c, 3, &v, sizeof v);
    ck_assert(v == exp(1.0));
    close_conn(&c);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        setenv("KILND_PATH", argv[1], 1);
    Suite *su = suite_create("daemon-grad");
    TCase *tc = tcase_create("grad");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, two_layer_network_trains);
    tcase_add_test(tc, third_derivatives_in_one_submit);
    tcase_add_test(tc, pool_and_flip_on_generated_code);
    tcase_add_test(tc, stop_grad_kept_leaves_and_warnings);
    tcase_add_test(tc, shared_pass_distinct_vars);
    tcase_add_test(tc, malformed_grads_refused);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
