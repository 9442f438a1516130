/* reduce_rows.c: float32 sums through kilnd (issue 7, benchmark W5).
 *
 *   reduce_rows [--rows N] [--cols N] [--reps N] [--workers N] [--seed N]
 *               [--only MASK] [KILND]
 *
 * Three reductions of kept vars, each timed on its own:
 *   rows    sum over the last axis of a ROWS x COLS float32 x (W5: 4096 x 4096);
 *   columns sum over the first axis of the same x;
 *   full    sum of all ROWS*COLS elements of a rank-1 copy of x
 * (--only: a mask of which to run, 1 rows, 2 columns, 4 full; default 7).
 * A private kilnd (default path build/daemon/kilnd) runs with
 * --cc-threshold 0, so every kernel is queued for the system compiler
 * after its first run; the benchmark waits until the cc tier has built
 * them (STATUS cc_compiles + cc_failures reach cc_promoted) before it
 * times, so the figures are the -O3 tier's. Each rep submits one graph
 * holding the reduction and a one-element marker and FETCHes the marker
 * (every kept var of a step is ready when the step ends); the result is
 * then fetched and checked against a double-precision C reference.
 *
 * Per rep it records `kernel` (the change of STATUS step_run_ms, whole
 * milliseconds) and `end to end` (submit -> marker answered). GB/s counts
 * the bytes of x read once (1e9 bytes/s) over the median end-to-end time,
 * which includes a round trip (~0.2 ms): an upper bound on the kernel's
 * time. The cc tier's disk cache is a directory of its own, removed at the
 * end, so a run never starts on objects a previous build left. A benchmark, not a test: it asserts
 * no time; exit 1 when something cannot run or a result is wrong, 2 on bad usage. */
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

#define RR_MAX_REPS 10000
#define RR_TOL      1e-4 /* relative to the sum of |x| of the output */

enum { ID_X = 1, ID_XF, ID_Y, ID_DONE };

struct args {
    long rows, cols, reps, workers, only; /* only: a mask of 1 rows, 2 columns, 4 full */
    uint64_t seed;
    const char *kilnd;
};

struct bench {
    char dir[64];
    struct bench_daemon daemon;
    bool up;
    kiln_conn *conn;
    float *x;
    uint64_t workers;
};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void report(const char *what, const struct kiln_error *e)
{
    fprintf(stderr, "reduce_rows: %s: %s%s%s: %s\n", what, kiln_err_name(e->code),
            e->field[0] != '\0' ? " at " : "", e->field, e->message);
}

static struct kiln_node node_done(void)
{
    return (struct kiln_node){.id = ID_DONE,
                              .op = KILN_OP_CONST,
                              .has = KILN_NODE_DTYPE | KILN_NODE_SHAPE | KILN_NODE_VALUE,
                              .dtype = KILN_DTYPE_FLOAT32,
                              .value = {.is_float = true, .f = 1.0}};
}

static int wait_done(struct bench *b)
{
    struct kiln_error e;
    struct kiln_tensor *t;
    uint64_t id = ID_DONE;
    if (kiln_fetch(b->conn, &id, 1, KILN_FETCH_WAIT_MAX, &t, &e) != KILN_OK) {
        report("FETCH of the done marker", &e);
        return -1;
    }
    kiln_tensors_free(t);
    uint64_t ids[] = {ID_DONE};
    if (kiln_release(b->conn, ids, 1, NULL, NULL, &e) != KILN_OK) {
        report("RELEASE", &e);
        return -1;
    }
    return 0;
}

/* x as ID_X (rows x cols) and ID_XF (rank 1), uploaded once and kept. */
static int upload(struct bench *b, const struct args *a)
{
    size_t n = (size_t) (a->rows * a->cols);
    if ((b->x = malloc(n * sizeof(float))) == NULL)
        return -1;
    uint64_t s = a->seed;
    for (size_t i = 0; i < n; i++) /* uniform on [-1, 1) */
        b->x[i] = (float) ((double) (splitmix64(&s) >> 40) * 0x1p-23 - 1.0);
    for (int k = 0; k < 2; k++) {
        struct kiln_node nodes[2] = {
            {.id = k ? ID_XF : ID_X,
             .op = KILN_OP_ARRAY,
             .has = KILN_NODE_DTYPE | KILN_NODE_SHAPE | KILN_NODE_DATA,
             .dtype = KILN_DTYPE_FLOAT32,
             .rank = k ? 1 : 2,
             .shape = {k ? (int64_t) n : a->rows, a->cols},
             .data = b->x,
             .data_len = n * sizeof(float)},
            node_done(),
        };
        uint64_t keep[] = {nodes[0].id, ID_DONE};
        struct kiln_error e;
        if (kiln_submit(b->conn, nodes, 2, keep, 2, NULL, &e) != KILN_OK) {
            report("SUBMIT of x", &e);
            return -1;
        }
        if (wait_done(b) != 0)
            return -1;
    }
    return 0;
}

enum which { W_ROWS, W_COLS, W_FULL };
static const char *const wname[] = {"rows (sum dim 1)", "columns (sum dim 0)", "full (sum all)"};

/* Checks y against double sums of x. */
static int check(const struct bench *b, const struct args *a, enum which w, const float *y)
{
    long R = a->rows, C = a->cols;
    long nout = w == W_ROWS ? R : w == W_COLS ? C : 1;
    for (long k = 0; k < nout; k += (nout > 64 ? nout / 64 : 1)) {
        double s = 0, m = 0;
        long n = w == W_ROWS ? C : w == W_COLS ? R : R * C;
        for (long j = 0; j < n; j++) {
            double v = b->x[w == W_ROWS ? k * C + j : w == W_COLS ? j * C + k : j];
            s += v;
            m += fabs(v);
        }
        if (!(fabs((double) y[k] - s) <= RR_TOL * fmax(1.0, m) + fabs(s) * 1e-6)) {
            fprintf(stderr, "reduce_rows: %s: y[%ld] = %.9g, reference %.9g\n", wname[w], k,
                    (double) y[k], s);
            return -1;
        }
    }
    return 0;
}

static int step(struct bench *b, const struct args *a, enum which w, bool verify, double *kms,
                double *ems)
{
    struct kiln_node nodes[2] = {
        {.id = ID_Y,
         .op = KILN_OP_REDUCE,
         .has = KILN_NODE_IN | KILN_NODE_DIMS | KILN_NODE_REDUCE_OP,
         .nin = 1,
         .in = {w == W_FULL ? ID_XF : ID_X},
         .ndims = 1,
         .dims = {w == W_ROWS ? 1 : 0},
         .reduce_op = KILN_REDUCE_ADD},
        node_done(),
    };
    uint64_t keep[] = {ID_Y, ID_DONE};
    struct kiln_status s0, s1;
    struct kiln_error e;
    if (kiln_status(b->conn, &s0, &e) != KILN_OK) {
        report("STATUS", &e);
        return -1;
    }
    uint64_t t0 = bench_now_ns();
    if (kiln_submit(b->conn, nodes, 2, keep, 2, NULL, &e) != KILN_OK) {
        report("SUBMIT", &e);
        return -1;
    }
    if (wait_done(b) != 0)
        return -1;
    *ems = (double) (bench_now_ns() - t0) / 1e6;
    if (kiln_status(b->conn, &s1, &e) != KILN_OK) {
        report("STATUS", &e);
        return -1;
    }
    *kms = (double) (s1.step_run_ms - s0.step_run_ms);
    b->workers = s1.workers;
    struct kiln_tensor *t;
    uint64_t id = ID_Y;
    if (kiln_fetch(b->conn, &id, 1, KILN_FETCH_WAIT_MAX, &t, &e) != KILN_OK) {
        report("FETCH of y", &e);
        return -1;
    }
    int rc = t->dtype == KILN_DTYPE_FLOAT32 ? 0 : -1;
    if (rc == 0 && verify)
        rc = check(b, a, w, t->data);
    kiln_tensors_free(t);
    if (kiln_release(b->conn, &id, 1, NULL, NULL, &e) != KILN_OK) {
        report("RELEASE", &e);
        return -1;
    }
    return rc;
}

/* Waits (at most 60 s) until the cc tier has built all it was given. */
static int cc_wait(struct bench *b)
{
    for (int i = 0; i < 600; i++) {
        struct kiln_status s;
        struct kiln_error e;
        if (kiln_status(b->conn, &s, &e) != KILN_OK) {
            report("STATUS", &e);
            return -1;
        }
        if (!s.cc_enabled)
            return 0;
        if (s.cc_promoted > 0 && s.cc_compiles + s.cc_failures >= s.cc_promoted)
            return 0;
        usleep(100000);
    }
    fprintf(stderr, "reduce_rows: the cc tier did not finish in 60 s; timing anyway\n");
    return 0;
}

static int cmp(const void *p, const void *q)
{
    double a = *(const double *) p, b = *(const double *) q;
    return (a > b) - (a < b);
}

static int run(struct bench *b, const struct args *a)
{
    double *k = calloc((size_t) a->reps, sizeof(double));
    double *t = calloc((size_t) a->reps, sizeof(double));
    if (k == NULL || t == NULL) {
        free(k);
        free(t);
        return -1;
    }
    double bytes = (double) a->rows * (double) a->cols * 4.0;
    int rc = 0;
    for (int w = W_ROWS; rc == 0 && w <= W_FULL; w++) {
        if (!(a->only >> w & 1))
            continue;
        /* First run (libtcc, promotes), wait for cc, one more warm-up. */
        double k0, t0;
        rc = step(b, a, (enum which) w, true, &k0, &t0);
        if (rc == 0)
            rc = cc_wait(b);
        if (rc == 0)
            rc = step(b, a, (enum which) w, true, &k0, &t0);
        for (long i = 0; rc == 0 && i < a->reps; i++)
            rc = step(b, a, (enum which) w, i == 0, &k[i], &t[i]);
        if (rc != 0)
            break;
        struct kiln_status st;
        struct kiln_error e;
        if (kiln_status(b->conn, &st, &e) == KILN_OK && st.cc_failures > 0)
            fprintf(stderr,
                    "reduce_rows: the cc tier failed %" PRIu64 " kernels (%" PRIu64 " run on it)\n",
                    st.cc_failures, st.cc_kernels);
        qsort(k, (size_t) a->reps, sizeof(double), cmp);
        qsort(t, (size_t) a->reps, sizeof(double), cmp);
        double med = t[a->reps / 2];
        printf("%-22s kernel %6.1f ms  end to end %8.3f ms (min %8.3f)  %7.2f GB/s (min time: "
               "%7.2f)\n",
               wname[w], k[a->reps / 2], med, t[0], bytes / (med / 1e3) / 1e9,
               bytes / (t[0] / 1e3) / 1e9);
    }
    free(k);
    free(t);
    return rc;
}

static int parse(int argc, char **argv, struct args *a)
{
    static const struct option lo[] = {
        {"rows", required_argument, NULL, 'r'},
        {"cols", required_argument, NULL, 'c'},
        {"reps", required_argument, NULL, 'n'},
        {"workers", required_argument, NULL, 'j'},
        {"seed", required_argument, NULL, 's'},
        {"only", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    *a = (struct args){
        .rows = 4096, .cols = 4096, .reps = 21, .seed = 1, .only = 7, .kilnd = BENCH_KILND_DEFAULT};
    int ch;
    while ((ch = getopt_long(argc, argv, "r:c:n:j:s:o:", lo, NULL)) != -1) {
        char *end;
        long v;
        if (ch == '?' || (v = strtol(optarg, &end, 10)) < 0 || *end != '\0' || end == optarg)
            return -1;
        if (ch == 'r')
            a->rows = v;
        else if (ch == 'c')
            a->cols = v;
        else if (ch == 'n')
            a->reps = v;
        else if (ch == 'j')
            a->workers = v;
        else if (ch == 'o')
            a->only = v;
        else
            a->seed = (uint64_t) v;
    }
    if (optind < argc)
        a->kilnd = argv[optind++];
    /* 2^26 floats is 256 MiB, the protocol's largest message. */
    if (optind < argc || a->rows < 1 || a->cols < 1 || a->rows > (1L << 26) ||
        a->cols > (1L << 26) / a->rows || a->reps < 1 || a->reps > RR_MAX_REPS || a->only < 1 ||
        a->only > 7)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    if (parse(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: reduce_rows [--rows N] [--cols N] (rows*cols <= 2^26) "
                        "[--reps N] [--workers N] [--seed N] [--only 1..7] [KILND]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct bench b = {0};
    int rc = -1;
    snprintf(b.dir, sizeof b.dir, "/tmp/kiln-bench-XXXXXX");
    if (mkdtemp(b.dir) == NULL) {
        b.dir[0] = '\0';
    } else {
        char workers[24], cache[96];
        snprintf(cache, sizeof cache, "%s/cache", b.dir);
        const char *extra[] = {"--cc-threshold", "0",     "--cache-dir", cache,
                               "--workers",      workers, NULL};
        snprintf(workers, sizeof workers, "%ld", a.workers);
        if (a.workers == 0)
            extra[4] = NULL;
        if (bench_daemon_start(&b.daemon, a.kilnd, b.dir, extra) != 0) {
            fprintf(stderr, "reduce_rows: cannot start %s (give its path as the argument)\n",
                    a.kilnd);
        } else {
            b.up = true;
            struct kiln_connect_opts o = {
                .address = b.daemon.address, .client = "reduce_rows", .timeout_ms = 60000};
            struct kiln_error e;
            if (kiln_connect(&b.conn, &o, &e) != KILN_OK)
                report("connect", &e);
            else if (upload(&b, &a) == 0) {
                printf("reduce_rows: float32 x of %ld x %ld (%.1f MiB); kilnd cc tier, "
                       "%ld reps; GB/s = x's bytes / median end-to-end time\n",
                       a.rows, a.cols, (double) a.rows * (double) a.cols * 4 / (1 << 20), a.reps);
                rc = run(&b, &a);
                printf("kilnd workers %" PRIu64 "\n", b.workers);
            }
        }
    }
    kiln_close(b.conn);
    if (b.up && bench_child_stop(b.daemon.pid) != 0) {
        fprintf(stderr, "reduce_rows: kilnd did not exit cleanly\n");
        rc = -1;
    }
    free(b.x);
    if (b.dir[0] != '\0') {
        char path[128];
        snprintf(path, sizeof path, "rm -rf '%s'", b.dir); /* the socket and the cc cache */
        if (system(path) != 0)
            fprintf(stderr, "reduce_rows: could not remove %s\n", b.dir);
    }
    return rc == 0 ? 0 : 1;
}
