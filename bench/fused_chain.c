/* fused_chain.c: the element-wise chain of issue 3 through kilnd, against memcpy.
 *
 *   fused_chain [--elements N] [--reps N] [--warmup N] [--memcpy-reps N]
 *               [--workers N] [--seed N] [KILND]
 *
 * y = sigmoid(x*a+b)*tanh(x)+x*x over N float32 (default 16M = 64 MiB).
 * A private kilnd (default path build/daemon/kilnd) runs on an ipc://
 * socket in a fresh /tmp/kiln-bench-* directory. x is uploaded once and
 * kept; each rep submits one graph that reads x by its var id, with a and
 * b as full-shape const nodes (the wire has no implicit broadcast), and
 * keeps y plus a one-element marker. FETCHing the marker says the step is
 * done without moving 64 MiB: every kept var of a step becomes ready at
 * once, when the step ends. y is then fetched (timed on its own), checked
 * against a C reference at sampled elements, and released.
 *
 * Per rep it records:
 *   kernel       the daemon's own worker time for the step: the change of
 *                STATUS steps.run_ms around it (whole milliseconds);
 *   end to end   kiln_submit() called -> marker FETCH answered;
 *   fetch y      the FETCH of y's 64 MiB, apart from the above;
 *   memcpy       a memcpy of the same bytes in this process, a block of
 *                them after each rep so that machine noise hits both.
 * Bandwidths count both buffers (x read + y written, src read + dst
 * written: 2 x N x 4 bytes), in GB/s of 1e9 bytes. A benchmark, not a
 * test: it asserts no time; it fails (exit 1) if something cannot run or
 * y is wrong, and exits 2 on bad usage. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_daemon.h"
#include "kiln.h"

#define CHAIN_A        1.5 /* y = sigmoid(x*A+B)*tanh(x)+x*x */
#define CHAIN_B        0.25
#define CHAIN_SAMPLES  4096 /* elements of y checked per rep, besides the first and last */
#define CHAIN_TOL      1e-5 /* relative, absolute below 1 */
#define CHAIN_MAX_REPS 100000

/* Var ids of the session. */
enum {
    ID_X = 1,
    ID_A,
    ID_B,
    ID_T1,
    ID_T2,
    ID_SIG,
    ID_TANH,
    ID_PROD,
    ID_SQ,
    ID_Y,
    ID_DONE, /* the one-element marker FETCHed to learn the step is done */
};

struct bench_args {
    long elements, reps, warmup, memcpy_reps, workers;
    uint64_t seed;
    const char *kilnd;
};

struct bench {
    char dir[64];
    struct bench_daemon daemon;
    bool daemon_up;
    kiln_conn *conn;
    float *x;        /* the uploaded input, kept for the reference */
    void *src, *dst; /* memcpy buffers */
    unsigned sink;   /* bytes read back from dst */
    double upload_ms;
    uint64_t workers;
    /* per rep */
    double *kernel_ms, *e2e_ms, *ack_ms, *fetch_ms, *copy_ms;
    double first_e2e_ms, first_kernel_ms;
    double max_err;
};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double ms_since(uint64_t t0)
{
    return (double) (bench_now_ns() - t0) / 1e6;
}

static void report(const char *what, const struct kiln_error *e)
{
    fprintf(stderr, "fused_chain: %s: %s%s%s: %s\n", what, kiln_err_name(e->code),
            e->field[0] != '\0' ? " at " : "", e->field, e->message);
}

/* The chain one float32 op at a time, each op computed in double and
 * rounded, as the reference interpreter does. */
static float chain_ref(float x)
{
    float t = (float) ((double) x * (double) (float) CHAIN_A);
    t = (float) ((double) t + (double) (float) CHAIN_B);
    float s = (float) (1.0 / (1.0 + exp(-(double) t)));
    float th = (float) tanh((double) x);
    float p = (float) ((double) s * (double) th);
    float sq = (float) ((double) x * (double) x);
    return (float) ((double) p + (double) sq);
}

static struct kiln_node node_nary(uint64_t id, uint32_t op, uint32_t nin, uint64_t a, uint64_t b)
{
    return (struct kiln_node){.id = id, .op = op, .has = KILN_NODE_IN, .nin = nin, .in = {a, b}};
}

static struct kiln_node node_const(uint64_t id, uint32_t rank, int64_t n, double v)
{
    return (struct kiln_node){.id = id,
                              .op = KILN_OP_CONST,
                              .has = KILN_NODE_DTYPE | KILN_NODE_SHAPE | KILN_NODE_VALUE,
                              .dtype = KILN_DTYPE_FLOAT32,
                              .rank = rank,
                              .shape = {n},
                              .value = {.is_float = true, .f = v}};
}

/* Wait for the marker of the last step and drop it. */
static int wait_done(struct bench *b, double *ms, uint64_t t0)
{
    struct kiln_error e;
    struct kiln_tensor *t;
    uint64_t id = ID_DONE;
    if (kiln_fetch(b->conn, &id, 1, KILN_FETCH_WAIT_MAX, &t, &e) != KILN_OK) {
        report("FETCH of the done marker", &e);
        return -1;
    }
    *ms = ms_since(t0);
    kiln_tensors_free(t);
    return 0;
}

static int upload_x(struct bench *b, const struct bench_args *a)
{
    size_t n = (size_t) a->elements;
    if ((b->x = malloc(n * sizeof(float))) == NULL)
        return -1;
    uint64_t s = a->seed;
    for (size_t i = 0; i < n; i++) /* uniform on [-2, 2) */
        b->x[i] = (float) ((double) (splitmix64(&s) >> 40) * 0x1p-24 * 4.0 - 2.0);
    struct kiln_node nodes[2] = {
        {.id = ID_X,
         .op = KILN_OP_ARRAY,
         .has = KILN_NODE_DTYPE | KILN_NODE_SHAPE | KILN_NODE_DATA,
         .dtype = KILN_DTYPE_FLOAT32,
         .rank = 1,
         .shape = {a->elements},
         .data = b->x,
         .data_len = n * sizeof(float)},
        node_const(ID_DONE, 0, 0, 1.0),
    };
    uint64_t keep[] = {ID_X, ID_DONE};
    struct kiln_error e;
    uint64_t t0 = bench_now_ns();
    if (kiln_submit(b->conn, nodes, 2, keep, 2, NULL, &e) != KILN_OK) {
        report("SUBMIT of x", &e);
        return -1;
    }
    if (wait_done(b, &b->upload_ms, t0) != 0)
        return -1;
    uint64_t done = ID_DONE;
    if (kiln_release(b->conn, &done, 1, NULL, NULL, &e) != KILN_OK) {
        report("RELEASE", &e);
        return -1;
    }
    return 0;
}

/* FETCH y, time it, and compare sampled elements with chain_ref. */
static int fetch_check(struct bench *b, const struct bench_args *a, long rep, double *ms)
{
    struct kiln_error e;
    struct kiln_tensor *t;
    uint64_t id = ID_Y;
    uint64_t t0 = bench_now_ns();
    if (kiln_fetch(b->conn, &id, 1, KILN_FETCH_WAIT_MAX, &t, &e) != KILN_OK) {
        report("FETCH of y", &e);
        return -1;
    }
    *ms = ms_since(t0);
    size_t n = (size_t) a->elements;
    int rc = 0;
    if (t->dtype != KILN_DTYPE_FLOAT32 || t->rank != 1 || t->shape[0] != a->elements ||
        t->bytes != n * sizeof(float)) {
        fprintf(stderr, "fused_chain: y came back as dtype %u rank %u (%zu bytes)\n", t->dtype,
                t->rank, t->bytes);
        rc = -1;
    }
    const float *y = t->data;
    uint64_t s = a->seed ^ (uint64_t) (rep + 1) * UINT64_C(0x2545f4914f6cdd1d);
    for (long k = 0; rc == 0 && k < CHAIN_SAMPLES + 2; k++) {
        size_t i = k == 0 ? 0 : k == 1 ? n - 1 : (size_t) (splitmix64(&s) % n);
        double ref = chain_ref(b->x[i]);
        double err = fabs((double) y[i] - ref) / fmax(1.0, fabs(ref));
        if (!(err <= CHAIN_TOL)) { /* NaN fails too */
            fprintf(stderr, "fused_chain: y[%zu] = %.9g, reference %.9g (x = %.9g)\n", i,
                    (double) y[i], ref, (double) b->x[i]);
            rc = -1;
        }
        b->max_err = fmax(b->max_err, err);
    }
    kiln_tensors_free(t);
    return rc;
}

/* One step: submit, wait for the marker, read the daemon's run time,
 * check y, release. */
static int step(struct bench *b, const struct bench_args *a, long rep, double *kernel_ms,
                double *e2e_ms, double *ack_ms, double *fetch_ms)
{
    int64_t n = a->elements;
    struct kiln_node nodes[] = {
        node_const(ID_A, 1, n, CHAIN_A),
        node_const(ID_B, 1, n, CHAIN_B),
        node_nary(ID_T1, KILN_OP_MUL, 2, ID_X, ID_A),
        node_nary(ID_T2, KILN_OP_ADD, 2, ID_T1, ID_B),
        node_nary(ID_SIG, KILN_OP_SIGMOID, 1, ID_T2, 0),
        node_nary(ID_TANH, KILN_OP_TANH, 1, ID_X, 0),
        node_nary(ID_PROD, KILN_OP_MUL, 2, ID_SIG, ID_TANH),
        node_nary(ID_SQ, KILN_OP_MUL, 2, ID_X, ID_X),
        node_nary(ID_Y, KILN_OP_ADD, 2, ID_PROD, ID_SQ),
        node_const(ID_DONE, 0, 0, 1.0),
    };
    uint64_t keep[] = {ID_Y, ID_DONE};
    struct kiln_status s0, s1;
    struct kiln_error e;
    if (kiln_status(b->conn, &s0, &e) != KILN_OK) {
        report("STATUS", &e);
        return -1;
    }
    uint64_t t0 = bench_now_ns();
    if (kiln_submit(b->conn, nodes, sizeof(nodes) / sizeof(nodes[0]), keep, 2, NULL, &e) !=
        KILN_OK) {
        report("SUBMIT of the chain", &e);
        return -1;
    }
    *ack_ms = ms_since(t0);
    if (wait_done(b, e2e_ms, t0) != 0)
        return -1;
    if (kiln_status(b->conn, &s1, &e) != KILN_OK) {
        report("STATUS", &e);
        return -1;
    }
    /* Only this session runs steps, so the totals moved by this one alone. */
    if (s1.steps_done != s0.steps_done + 1 || s1.steps_failed != s0.steps_failed) {
        fprintf(stderr,
                "fused_chain: STATUS counted %" PRIu64 " steps done, %" PRIu64
                " failed, for one step\n",
                s1.steps_done - s0.steps_done, s1.steps_failed - s0.steps_failed);
        return -1;
    }
    *kernel_ms = (double) (s1.step_run_ms - s0.step_run_ms);
    b->workers = s1.workers;
    if (fetch_check(b, a, rep, fetch_ms) != 0)
        return -1;
    uint64_t ids[] = {ID_Y, ID_DONE};
    if (kiln_release(b->conn, ids, 2, NULL, NULL, &e) != KILN_OK) {
        report("RELEASE", &e);
        return -1;
    }
    return 0;
}

static void copy_block(struct bench *b, size_t bytes, long reps, double *out)
{
    for (long i = 0; i < reps; i++) {
        uint64_t t0 = bench_now_ns();
        memcpy(b->dst, b->src, bytes);
        out[i] = ms_since(t0);
        /* Read the copy back so the compiler cannot drop it. */
        b->sink += ((const volatile unsigned char *) b->dst)[bytes - 1 - (size_t) i % bytes];
    }
}

static int parse_args(int argc, char **argv, struct bench_args *a)
{
    static const struct option longopts[] = {
        {"elements", required_argument, NULL, 'n'},
        {"reps", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"memcpy-reps", required_argument, NULL, 'm'},
        {"workers", required_argument, NULL, 'j'},
        {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    *a = (struct bench_args){.elements = 16L << 20,
                             .reps = 5,
                             .warmup = 1,
                             .memcpy_reps = 10,
                             .workers = 0,
                             .seed = 1,
                             .kilnd = BENCH_KILND_DEFAULT};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:r:w:m:j:s:", longopts, NULL)) != -1) {
        char *end;
        long v;
        if (ch == '?' || (v = strtol(optarg, &end, 10)) < 0 || *end != '\0' || end == optarg)
            return -1;
        switch (ch) {
        case 'n':
            a->elements = v;
            break;
        case 'r':
            a->reps = v;
            break;
        case 'w':
            a->warmup = v;
            break;
        case 'm':
            a->memcpy_reps = v;
            break;
        case 'j':
            a->workers = v;
            break;
        case 's':
            a->seed = (uint64_t) v;
            break;
        default:
            return -1;
        }
    }
    if (optind < argc)
        a->kilnd = argv[optind++];
    /* 2^26 floats is 256 MiB, the protocol's largest message. */
    if (optind < argc || a->elements < 1 || a->elements >= (1L << 26) || a->reps < 1 ||
        a->reps > CHAIN_MAX_REPS || a->memcpy_reps < 1 || a->memcpy_reps > CHAIN_MAX_REPS ||
        a->warmup > CHAIN_MAX_REPS)
        return -1;
    return 0;
}

static int bench_setup(struct bench *b, const struct bench_args *a)
{
    size_t bytes = (size_t) a->elements * sizeof(float);
    size_t r = (size_t) a->reps;
    b->kernel_ms = calloc(r, sizeof(double));
    b->e2e_ms = calloc(r, sizeof(double));
    b->ack_ms = calloc(r, sizeof(double));
    b->fetch_ms = calloc(r, sizeof(double));
    b->copy_ms = calloc(r * (size_t) a->memcpy_reps, sizeof(double));
    b->src = malloc(bytes);
    b->dst = malloc(bytes);
    if (b->kernel_ms == NULL || b->e2e_ms == NULL || b->ack_ms == NULL || b->fetch_ms == NULL ||
        b->copy_ms == NULL || b->src == NULL || b->dst == NULL)
        return -1;
    /* Touch both memcpy buffers so that no page fault is timed. */
    memset(b->src, 0x3c, bytes);
    memset(b->dst, 0, bytes);
    snprintf(b->dir, sizeof(b->dir), "/tmp/kiln-bench-XXXXXX");
    if (mkdtemp(b->dir) == NULL)
        return -1;
    char workers[24];
    const char *extra[] = {"--workers", workers, NULL};
    snprintf(workers, sizeof(workers), "%ld", a->workers);
    if (bench_daemon_start(&b->daemon, a->kilnd, b->dir, a->workers > 0 ? extra : NULL) != 0) {
        fprintf(stderr, "fused_chain: cannot start %s (give its path as the argument)\n", a->kilnd);
        return -1;
    }
    b->daemon_up = true;
    struct kiln_connect_opts o = {
        .address = b->daemon.address, .client = "fused_chain", .timeout_ms = 60000};
    struct kiln_error e;
    if (kiln_connect(&b->conn, &o, &e) != KILN_OK) {
        report("connect", &e);
        return -1;
    }
    return upload_x(b, a);
}

static int bench_teardown(struct bench *b)
{
    int rc = 0;
    kiln_close(b->conn);
    if (b->daemon_up && bench_child_stop(b->daemon.pid) != 0) {
        fprintf(stderr, "fused_chain: kilnd did not exit cleanly\n");
        rc = -1;
    }
    free(b->x);
    free(b->src);
    free(b->dst);
    free(b->kernel_ms);
    free(b->e2e_ms);
    free(b->ack_ms);
    free(b->fetch_ms);
    free(b->copy_ms);
    if (b->dir[0] != '\0') {
        char path[128];
        snprintf(path, sizeof(path), "%s/kilnd.sock", b->dir);
        unlink(path);
        rmdir(b->dir);
    }
    return rc;
}

/* One row: median and min of v (sorted here), and the bandwidth of
 * moving `bytes` in the median time, with its ratio to memcpy's. */
static double row(const char *what, double *v, long n, double bytes, double copy_gbs)
{
    bench_sort(v, (size_t) n);
    double med = v[n / 2];
    double gbs = med > 0 ? bytes / (med / 1e3) / 1e9 : INFINITY;
    printf("%-30s %10.2f ms %10.2f ms %9.3f GB/s", what, med, v[0], gbs);
    if (copy_gbs > 0)
        printf(" %9.4fx", gbs / copy_gbs);
    printf("\n");
    return gbs;
}

static int bench_run(struct bench *b, const struct bench_args *a)
{
    size_t bytes = (size_t) a->elements * sizeof(float);
    double k, e2e, ack, fetch;
    for (long i = 0; i < a->warmup; i++) {
        if (step(b, a, -1 - i, &k, &e2e, &ack, &fetch) != 0)
            return -1;
        if (i == 0) {
            b->first_e2e_ms = e2e;
            b->first_kernel_ms = k;
        }
    }
    double warm_copy;
    copy_block(b, bytes, 1, &warm_copy);
    for (long i = 0; i < a->reps; i++) {
        if (step(b, a, i, &b->kernel_ms[i], &b->e2e_ms[i], &b->ack_ms[i], &b->fetch_ms[i]) != 0)
            return -1;
        copy_block(b, bytes, a->memcpy_reps, b->copy_ms + i * a->memcpy_reps);
    }
    double both = 2.0 * (double) bytes, mib = (double) bytes / (1 << 20);
    printf("fused_chain: y = sigmoid(x*a+b)*tanh(x)+x*x, %ld float32 (%.1f MiB a buffer); "
           "kilnd workers %" PRIu64 "\n",
           a->elements, mib, b->workers);
    printf("%ld reps after %ld warm-up, %ld memcpy after each rep; GB/s = 1e9 bytes/s, "
           "2 buffers (%.0f MiB) unless noted\n",
           a->reps, a->warmup, a->memcpy_reps, 2 * mib);
    printf("%-30s %13s %13s %14s %10s\n", "", "median", "min", "bandwidth", "vs memcpy");
    double copy_gbs = row("memcpy (this process)", b->copy_ms, a->reps * a->memcpy_reps, both, 0);
    row("kernel (daemon run_ms)", b->kernel_ms, a->reps, both, copy_gbs);
    row("submit -> done (end to end)", b->e2e_ms, a->reps, both, copy_gbs);
    bench_sort(b->ack_ms, (size_t) a->reps);
    printf("%-30s %10.2f ms %10.2f ms\n", "  of which SUBMIT ack", b->ack_ms[a->reps / 2],
           b->ack_ms[0]);
    row("FETCH of y (1 buffer)", b->fetch_ms, a->reps, (double) bytes, copy_gbs / 2);
    printf("%-30s %10.2f ms %13s %9.3f GB/s (1 buffer, once)\n", "upload of x (SUBMIT+done)",
           b->upload_ms, "", (double) bytes / (b->upload_ms / 1e3) / 1e9);
    if (a->warmup > 0)
        printf("%-30s %10.2f ms (kernel %.0f ms)\n", "first step (warm-up)", b->first_e2e_ms,
               b->first_kernel_ms);
    printf("y checked at %d elements a step against a C reference: max rel. error %.2g "
           "(tolerance %g); run_ms has 1 ms resolution\n",
           CHAIN_SAMPLES + 2, b->max_err, CHAIN_TOL);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_args a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: fused_chain [--elements N (< 2^26)] [--reps N] [--warmup N] "
                        "[--memcpy-reps N] [--workers N] [--seed N] [KILND]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct bench b = {0};
    int rc = bench_setup(&b, &a) == 0 ? bench_run(&b, &a) : -1;
    if (bench_teardown(&b) != 0)
        rc = -1;
    return rc == 0 ? 0 : 1;
}
