/* test_jit.c: the JIT through a real kilnd — kernel counts read from
 * STATUS (a ten-op chain with broadcasts is one kernel, softmax at most
 * three), a structure resubmitted a hundred times with new data compiles
 * nothing new, and the interpreter (--executor interp) gives the same
 * bytes. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TIMEOUT_MS 20000
#define ROWS       40
#define COLS       33

struct conn {
    struct th_daemon d;
    nng_socket s;
    uint64_t sid;
};

static void open_conn(struct conn *c, const char *const *flags)
{
    th_prepare(&c->d);
    th_start(&c->d, flags);
    c->s = th_connect(c->d.addr, TIMEOUT_MS);
    c->sid = th_hello(c->s, "jit");
}

static void close_conn(struct conn *c)
{
    nng_close(c->s);
    ck_assert_int_eq(th_stop(&c->d), 0);
}

static struct proto_node array_f32(uint64_t id, uint32_t rank, const int64_t *shape,
                                   const float *data, size_t n)
{
    struct proto_node a = th_node(id, 1);
    th_set_dtype(&a, 6);
    th_set_shape(&a, rank, shape);
    a.has |= PROTO_NODE_DATA;
    a.data = data;
    a.data_len = n * sizeof(float);
    return a;
}

static struct proto_node const_f32(uint64_t id, uint32_t rank, const int64_t *shape, double v)
{
    struct proto_node c = th_node(id, 2);
    th_set_dtype(&c, 6);
    th_set_shape(&c, rank, shape);
    c.has |= PROTO_NODE_VALUE;
    c.value = (struct proto_number){.is_float = true, .f = v};
    return c;
}

static struct proto_node op2(uint64_t id, uint32_t op, uint64_t a, uint64_t b)
{
    struct proto_node n = th_node(id, op);
    th_set_in(&n, 2, (uint64_t[]){a, b});
    return n;
}

static struct proto_node op1(uint64_t id, uint32_t op, uint64_t a)
{
    struct proto_node n = th_node(id, op);
    th_set_in(&n, 1, (uint64_t[]){a});
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

static struct proto_node reduce(uint64_t id, uint64_t x, uint32_t op, uint32_t dim, bool keep)
{
    struct proto_node n = op1(id, 98, x);
    n.has |= PROTO_NODE_DIMS | PROTO_NODE_REDUCE_OP | PROTO_NODE_KEEPDIMS;
    n.ndims = 1;
    n.dims[0] = dim;
    n.reduce_op = op;
    n.keepdims = keep;
    return n;
}

static void fill(float *v, size_t n, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 1;
    for (size_t k = 0; k < n; k++) {
        s = s * 1664525u + 1013904223u;
        v[k] = (float) ((double) (s >> 8) / 16777216.0 * 4.0 - 2.0);
    }
}

/* Runs a SUBMIT keeping `out`, fetches it, and returns how the STATUS
 * counters moved. */
static void run_step(struct conn *c, struct proto_node *nodes, uint32_t n, uint64_t out,
                     float *result, size_t count, struct proto_status *delta)
{
    struct proto_status a, b;
    th_status(c->s, &a);
    struct proto_error err;
    int rc = th_submit(c->s, c->sid, nodes, n, &out, 1, &err, NULL);
    ck_assert_msg(rc == KILN_OK, "SUBMIT: %s %s", kiln_err_name(rc), err.message);
    rc = th_fetch(c->s, c->sid, out, result, count * sizeof(float), TIMEOUT_MS, &err);
    ck_assert_msg(rc == KILN_OK, "FETCH: %s %s", kiln_err_name(rc), err.message);
    th_release(c->s, c->sid, &out, 1);
    th_status(c->s, &b);
    memset(delta, 0, sizeof *delta);
    delta->jit_enabled = b.jit_enabled;
    delta->jit_kernels_run = b.jit_kernels_run - a.jit_kernels_run;
    delta->jit_kernels_compiled = b.jit_kernels_compiled - a.jit_kernels_compiled;
    delta->jit_plan_hits = b.jit_plan_hits - a.jit_plan_hits;
    delta->jit_fallbacks = b.jit_fallbacks - a.jit_fallbacks;
}

/* y = ten element-wise ops over x [ROWS, COLS] with a broadcast row b and
 * scalar constants; the nodes go into g, the C reference into want. */
static uint32_t chain(struct proto_node *g, const float *x, const float *b, float *want,
                      double k0)
{
    static const int64_t sh[2] = {ROWS, COLS}, row[1] = {COLS};
    uint32_t n = 0;
    g[n++] = array_f32(1, 2, sh, x, ROWS * COLS);
    g[n++] = array_f32(2, 1, row, b, COLS);
    g[n++] = bcast(3, 2, 2, sh, 1, (uint32_t[]){0});
    g[n++] = const_f32(4, 2, sh, k0);
    uint64_t y = 1, id = 10;
    /* add k, mul b, tanh, sub b, maximum k, mul k, add b, sigmoid, neg, mul b */
    static const uint32_t ops[10] = {48, 50, 25, 49, 55, 50, 48, 26, 16, 50};
    static const int with[10] = {4, 3, 0, 3, 4, 4, 3, 0, 0, 3};
    for (int k = 0; k < 10; k++) {
        g[n++] = with[k] ? op2(id, ops[k], y, (uint64_t) with[k]) : op1(id, ops[k], y);
        y = id++;
    }
    for (int i = 0; i < ROWS * COLS; i++) {
        float v = x[i], bb = b[i % COLS], kk = (float) k0;
        v = v + kk;
        v = v * bb;
        v = (float) tanh(v);
        v = v - bb;
        v = v > kk || isnan(v) ? v : kk;
        v = v * kk;
        v = v + bb;
        v = (float) (1.0 / (1.0 + exp(-(double) v)));
        v = -v;
        v = v * bb;
        want[i] = v;
    }
    return n;
}

static void expect_close(const float *got, const float *want, size_t n, double tol)
{
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(fabs((double) got[k] - want[k]) <= tol * (1 + fabs(want[k])),
                      "element %zu: %.9g, expected %.9g", k, got[k], want[k]);
}

START_TEST(chain_of_ten_is_one_kernel)
{
    struct conn c;
    open_conn(&c, NULL);
    static float x[ROWS * COLS], b[COLS], want[ROWS * COLS], got[ROWS * COLS];
    fill(x, ROWS * COLS, 1);
    fill(b, COLS, 2);
    struct proto_node g[20];
    uint32_t n = chain(g, x, b, want, 0.25);
    struct proto_status d;
    run_step(&c, g, n, 19, got, ROWS * COLS, &d);
    ck_assert(d.jit_enabled);
    ck_assert_uint_eq(d.jit_kernels_run, 1);
    ck_assert_uint_eq(d.jit_kernels_compiled, 1);
    ck_assert_uint_eq(d.jit_fallbacks, 0);
    expect_close(got, want, ROWS * COLS, 1e-6);
    close_conn(&c);
}
END_TEST

/* softmax over rows: max, subtract, exp, sum, divide. */
static uint32_t softmax(struct proto_node *g, const float *x, float *want)
{
    static const int64_t sh[2] = {ROWS, COLS};
    uint32_t n = 0;
    g[n++] = array_f32(1, 2, sh, x, ROWS * COLS);
    g[n++] = reduce(2, 1, 3, 1, true);
    g[n++] = bcast(3, 2, 2, sh, 0, NULL);
    g[n++] = op2(4, 49, 1, 3);
    g[n++] = op1(5, 18, 4);
    g[n++] = reduce(6, 5, 1, 1, true);
    g[n++] = bcast(7, 6, 2, sh, 0, NULL);
    g[n++] = op2(8, 51, 5, 7);
    for (int r = 0; r < ROWS; r++) {
        double m = -INFINITY, s = 0;
        for (int k = 0; k < COLS; k++)
            m = fmax(m, x[r * COLS + k]);
        for (int k = 0; k < COLS; k++)
            s += (float) exp((float) (x[r * COLS + k] - m));
        for (int k = 0; k < COLS; k++)
            want[r * COLS + k] = (float) ((float) exp((float) (x[r * COLS + k] - m)) / (float) s);
    }
    return n;
}

START_TEST(softmax_at_most_three_kernels)
{
    struct conn c;
    open_conn(&c, NULL);
    static float x[ROWS * COLS], want[ROWS * COLS], got[ROWS * COLS];
    fill(x, ROWS * COLS, 3);
    struct proto_node g[10];
    uint32_t n = softmax(g, x, want);
    struct proto_status d;
    run_step(&c, g, n, 8, got, ROWS * COLS, &d);
    ck_assert_uint_le(d.jit_kernels_run, 3);
    ck_assert_uint_ge(d.jit_kernels_run, 1);
    expect_close(got, want, ROWS * COLS, 1e-6);
    close_conn(&c);
}
END_TEST

START_TEST(resubmit_compiles_nothing)
{
    struct conn c;
    open_conn(&c, NULL);
    static float x[ROWS * COLS], b[COLS], want[ROWS * COLS], got[ROWS * COLS];
    struct proto_node g[20];
    uint64_t compiled = 0, hits = 0;
    for (int k = 0; k < 100; k++) {
        fill(x, ROWS * COLS, 10 + (unsigned) k);
        fill(b, COLS, 500 + (unsigned) k);
        uint32_t n = chain(g, x, b, want, 0.125 * (k % 7));
        struct proto_status d;
        run_step(&c, g, n, 19, got, ROWS * COLS, &d);
        expect_close(got, want, ROWS * COLS, 1e-6);
        if (k > 0) {
            compiled += d.jit_kernels_compiled;
            hits += d.jit_plan_hits;
        }
    }
    ck_assert_uint_eq(compiled, 0);
    ck_assert_uint_eq(hits, 99);
    close_conn(&c);
}
END_TEST

/* The same graphs on the interpreter: the same bytes, and STATUS says so. */
START_TEST(interpreter_gives_the_same_bytes)
{
    static float x[ROWS * COLS], b[COLS], want[ROWS * COLS], a[ROWS * COLS], i[ROWS * COLS];
    fill(x, ROWS * COLS, 7);
    fill(b, COLS, 8);
    struct proto_node g[20];
    struct proto_status d;
    struct conn c;
    open_conn(&c, NULL);
    run_step(&c, g, chain(g, x, b, want, -0.5), 19, a, ROWS * COLS, &d);
    close_conn(&c);
    const char *flags[] = {"--executor", "interp", NULL};
    open_conn(&c, flags);
    run_step(&c, g, chain(g, x, b, want, -0.5), 19, i, ROWS * COLS, &d);
    ck_assert(!d.jit_enabled);
    ck_assert_uint_eq(d.jit_kernels_run, 0);
    close_conn(&c);
    ck_assert_mem_eq(a, i, sizeof a);
}
END_TEST

/* A graph too deep for codegen still runs: on the interpreter, logged. */
START_TEST(too_deep_falls_back)
{
    struct conn c;
    open_conn(&c, NULL);
    static const int64_t sh[2] = {ROWS, COLS}, fl[1] = {ROWS * COLS};
    static float x[ROWS * COLS], got[ROWS * COLS], want[ROWS * COLS];
    fill(x, ROWS * COLS, 11);
    static struct proto_node g[603];
    uint32_t n = 0;
    g[n++] = array_f32(1, 2, sh, x, ROWS * COLS);
    g[n++] = op1(2, 18, 1); /* exp */
    for (int k = 0; k < 600; k++) {
        g[n] = op1(3 + (uint64_t) k, 8, 2 + (uint64_t) k);
        th_set_shape(&g[n], k % 2 ? 2 : 1, k % 2 ? sh : fl);
        n++;
    }
    g[n++] = op1(1000, 16, 602); /* neg */
    for (int k = 0; k < ROWS * COLS; k++)
        want[k] = -(float) exp(x[k]);
    struct proto_status d;
    run_step(&c, g, n, 1000, got, ROWS * COLS, &d);
    ck_assert_uint_eq(d.jit_fallbacks, 1);
    expect_close(got, want, ROWS * COLS, 1e-6);
    ck_assert(th_log_contains(&c.d, "step ran on the interpreter"));
    close_conn(&c);
}
END_TEST

/* Steps of two sessions running side by side both get memory to run in
 * (each takes a share of what is left, not all of it). */
START_TEST(concurrent_sessions_share_memory)
{
    struct conn a;
    open_conn(&a, NULL);
    nng_socket s2 = th_connect(a.d.addr, TIMEOUT_MS);
    uint64_t sid2 = th_hello(s2, "second");
    nng_socket socks[2] = {a.s, s2};
    uint64_t sids[2] = {a.sid, sid2};
    int64_t n = INT64_C(1) << 20;
    for (int k = 0; k < 6; k++)
        for (int j = 0; j < 2; j++) {
            struct proto_node g[2];
            g[0] = th_node(100 + (uint64_t) k * 2, 4);
            th_set_dtype(&g[0], 7);
            th_set_shape(&g[0], 1, &n);
            g[0].has |= PROTO_NODE_DIST | PROTO_NODE_SEED;
            g[0].dist = 1;
            g[0].seed = (uint64_t) k;
            g[1] = reduce(101 + (uint64_t) k * 2, g[0].id, 5, 0, false);
            uint64_t keep = g[1].id;
            struct proto_error err;
            int rc = th_submit(socks[j], sids[j], g, 2, &keep, 1, &err, NULL);
            ck_assert_msg(rc == KILN_OK, "%s", err.message);
        }
    for (int k = 0; k < 6; k++)
        for (int j = 0; j < 2; j++) {
            double v = 0;
            struct proto_error err;
            int rc = th_fetch(socks[j], sids[j], 101 + (uint64_t) k * 2, &v, sizeof v, TIMEOUT_MS,
                              &err);
            ck_assert_msg(rc == KILN_OK, "session %d step %d: %s", j, k, err.message);
            ck_assert_double_eq_tol(v, 0.5, 0.01);
        }
    nng_close(s2);
    close_conn(&a);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        setenv("KILND_PATH", argv[1], 1);
    Suite *su = suite_create("daemon-jit");
    TCase *tc = tcase_create("jit");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, chain_of_ten_is_one_kernel);
    tcase_add_test(tc, softmax_at_most_three_kernels);
    tcase_add_test(tc, resubmit_compiles_nothing);
    tcase_add_test(tc, interpreter_gives_the_same_bytes);
    tcase_add_test(tc, too_deep_falls_back);
    tcase_add_test(tc, concurrent_sessions_share_memory);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
