/* ping_rtt.c: how close a kiln PING round trip comes to NNG's own floor.
 *
 *   ping_rtt [--rounds N] [--block N] [--warmup N] [KILND]
 *
 * Two measurements over ipc://, each on its own private socket:
 *   nng   a bare REQ/REP echo (a REP server in a child process) carrying
 *         the bytes of an encoded PING: NNG's floor, nothing of kiln in it;
 *   kiln  kiln_ping() through libkiln to a real kilnd (default path
 *         build/daemon/kilnd): encode, send, the daemon's listener, loop
 *         and dispatch, the reply, decode.
 * The rounds run interleaved in blocks, alternating which goes first, so
 * that noise on a shared machine hits both alike. Prints median, p99 and
 * mean of each and the ratio kiln/nng. A benchmark, not a test: it asserts
 * no time and fails only if something cannot run. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "bench_daemon.h"
#include "kiln.h"
#include "proto.h"

struct bench_args {
    long rounds, block, warmup;
    const char *kilnd;
};

/* The echo server's whole life, in a child forked before this process
 * starts any NNG thread. Ends when killed (SIGTERM from bench_child_stop, or
 * when the parent dies). */
static void echo_serve(const char *address)
{
    nng_socket s;
    nng_msg *msg;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (nng_rep0_open(&s) != 0 || nng_listen(s, address, NULL, 0) != 0) {
        fprintf(stderr, "ping_rtt: echo server cannot listen on %s\n", address);
        _exit(1);
    }
    while (nng_recvmsg(s, &msg, 0) == 0)
        if (nng_sendmsg(s, msg, 0) != 0)
            nng_msg_free(msg);
    _exit(1);
}

/* n NNG round trips of payload, each timed into out (may be NULL). */
static int nng_rounds(nng_socket s, const msgpack_sbuffer *payload, long n, double *out)
{
    for (long i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        nng_msg *m;
        if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, payload->data, payload->size) != 0)
            return -1;
        if (nng_sendmsg(s, m, 0) != 0) {
            nng_msg_free(m);
            return -1;
        }
        if (nng_recvmsg(s, &m, 0) != 0)
            return -1;
        nng_msg_free(m);
        if (out != NULL)
            out[i] = (double) (bench_now_ns() - t0) / 1e3;
    }
    return 0;
}

static int kiln_rounds(kiln_conn *c, long n, double *out)
{
    for (long i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        struct kiln_error e;
        if (kiln_ping(c, &e) != KILN_OK) {
            fprintf(stderr, "ping_rtt: kiln_ping: %s: %s\n", kiln_err_name(e.code), e.message);
            return -1;
        }
        if (out != NULL)
            out[i] = (double) (bench_now_ns() - t0) / 1e3;
    }
    return 0;
}

struct summary {
    double median, p99, mean;
};

static struct summary summarize(double *v, long n)
{
    bench_sort(v, (size_t) n);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += v[i];
    return (struct summary){
        .median = v[n / 2],
        .p99 = v[(long) ((double) (n - 1) * 0.99)],
        .mean = sum / (double) n,
    };
}

static int parse_args(int argc, char **argv, struct bench_args *a)
{
    static const struct option longopts[] = {
        {"rounds", required_argument, NULL, 'n'},
        {"block", required_argument, NULL, 'b'},
        {"warmup", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    *a = (struct bench_args){
        .rounds = 20000, .block = 1000, .warmup = 2000, .kilnd = BENCH_KILND_DEFAULT};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:b:w:", longopts, NULL)) != -1) {
        long *dst = ch == 'n' ? &a->rounds : ch == 'b' ? &a->block : ch == 'w' ? &a->warmup : NULL;
        char *end;
        if (dst == NULL || (*dst = strtol(optarg, &end, 10)) < (ch == 'w' ? 0 : 1) || *end)
            return -1;
    }
    if (optind < argc)
        a->kilnd = argv[optind++];
    if (optind < argc || a->rounds % a->block != 0)
        return -1;
    return 0;
}

/* Everything the run needs, set up in order and torn down in reverse. */
struct bench {
    char dir[64];
    pid_t echo; /* 0: not started */
    nng_socket req;
    bool req_open;
    struct bench_daemon daemon;
    bool daemon_up;
    kiln_conn *conn;
    msgpack_sbuffer ping;
    double *nng_t, *kiln_t;
};

static int bench_setup(struct bench *b, const struct bench_args *a)
{
    char echo_addr[128];
    snprintf(b->dir, sizeof(b->dir), "/tmp/kiln-bench-XXXXXX");
    if (mkdtemp(b->dir) == NULL)
        return -1;
    snprintf(echo_addr, sizeof(echo_addr), "ipc://%s/echo.sock", b->dir);
    /* The echo server is a process, like kilnd, so that both sides pay
     * the same scheduling and neither shares NNG's threads with the
     * client. Forked first: no NNG thread exists yet. */
    if ((b->echo = fork()) < 0)
        return -1;
    if (b->echo == 0)
        echo_serve(echo_addr);
    if (bench_wait_listening(b->echo, echo_addr) != 0) {
        b->echo = 0;
        return -1;
    }
    msgpack_sbuffer_init(&b->ping);
    /* The same bytes kiln_ping() sends: PING with a full-width session id. */
    if (proto_encode_simple(&b->ping, PROTO_PING, UINT64_MAX) != KILN_OK)
        return -1;
    b->nng_t = malloc(sizeof(double) * (size_t) a->rounds);
    b->kiln_t = malloc(sizeof(double) * (size_t) a->rounds);
    if (b->nng_t == NULL || b->kiln_t == NULL)
        return -1;
    if (nng_req0_open(&b->req) != 0)
        return -1;
    b->req_open = true;
    if (nng_dial(b->req, echo_addr, NULL, 0) != 0)
        return -1;
    if (bench_daemon_start(&b->daemon, a->kilnd, b->dir, NULL) != 0) {
        fprintf(stderr, "ping_rtt: cannot start %s (give its path as the argument)\n", a->kilnd);
        return -1;
    }
    b->daemon_up = true;
    struct kiln_connect_opts o = {.address = b->daemon.address, .client = "ping_rtt"};
    struct kiln_error e;
    if (kiln_connect(&b->conn, &o, &e) != KILN_OK) {
        fprintf(stderr, "ping_rtt: %s: %s\n", kiln_err_name(e.code), e.message);
        return -1;
    }
    return 0;
}

static int bench_teardown(struct bench *b)
{
    int rc = 0;
    kiln_close(b->conn);
    if (b->daemon_up && bench_child_stop(b->daemon.pid) != 0) {
        fprintf(stderr, "ping_rtt: kilnd did not exit cleanly\n");
        rc = -1;
    }
    if (b->req_open)
        nng_close(b->req);
    if (b->echo > 0)
        bench_child_stop(b->echo); /* dies of SIGTERM by design */
    msgpack_sbuffer_destroy(&b->ping);
    free(b->nng_t);
    free(b->kiln_t);
    char path[128];
    snprintf(path, sizeof(path), "%s/echo.sock", b->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/kilnd.sock", b->dir);
    unlink(path);
    rmdir(b->dir);
    return rc;
}

static int bench_run(struct bench *b, const struct bench_args *a)
{
    if (nng_rounds(b->req, &b->ping, a->warmup, NULL) != 0 ||
        kiln_rounds(b->conn, a->warmup, NULL) != 0)
        return -1;
    for (long off = 0, blk = 0; off < a->rounds; off += a->block, blk++) {
        /* Alternate which side goes first, so neither always follows a switch. */
        bool nng_first = blk % 2 == 0;
        if (nng_first && nng_rounds(b->req, &b->ping, a->block, b->nng_t + off) != 0)
            return -1;
        if (kiln_rounds(b->conn, a->block, b->kiln_t + off) != 0)
            return -1;
        if (!nng_first && nng_rounds(b->req, &b->ping, a->block, b->nng_t + off) != 0)
            return -1;
    }
    struct summary n = summarize(b->nng_t, a->rounds), k = summarize(b->kiln_t, a->rounds);
    printf("ping_rtt: %ld round trips each over ipc://, blocks of %ld, after %ld warm-up\n",
           a->rounds, a->block, a->warmup);
    printf("%-24s %10s %10s %10s\n", "", "median", "p99", "mean");
    printf("%-24s %7.1f us %7.1f us %7.1f us\n", "nng req/rep echo", n.median, n.p99, n.mean);
    printf("%-24s %7.1f us %7.1f us %7.1f us\n", "kiln PING (libkiln)", k.median, k.p99, k.mean);
    printf("%-24s %9.2fx %9.2fx %9.2fx\n", "ratio kiln/nng", k.median / n.median, k.p99 / n.p99,
           k.mean / n.mean);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_args a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: ping_rtt [--rounds N] [--block N (divides N)] [--warmup N] "
                        "[KILND]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct bench b = {0};
    int rc = bench_setup(&b, &a) == 0 ? bench_run(&b, &a) : -1;
    if (bench_teardown(&b) != 0)
        rc = -1;
    return rc == 0 ? 0 : 1;
}
