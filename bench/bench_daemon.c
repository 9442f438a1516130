/* bench_daemon.c: a private kilnd for benchmarks (see bench_daemon.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "bench_daemon.h"

#define BENCH_DAEMON_ARGS_MAX 16

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

int bench_wait_listening(pid_t child, const char *address)
{
    for (int i = 0; i < 1000; i++) {
        nng_socket s;
        if (nng_req0_open(&s) != 0)
            break;
        int rv = nng_dial(s, address, NULL, 0);
        nng_close(s);
        if (rv == 0)
            return 0;
        if (waitpid(child, NULL, WNOHANG) == child)
            return -1;
        usleep(10000);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return -1;
}

int bench_child_stop(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int bench_daemon_start(struct bench_daemon *d, const char *kilnd, const char *dir,
                       const char *const *extra)
{
    const char *argv[BENCH_DAEMON_ARGS_MAX + 1];
    size_t n = 0;
    snprintf(d->address, sizeof(d->address), "ipc://%s/kilnd.sock", dir);
    argv[n++] = kilnd;
    argv[n++] = "--listen";
    argv[n++] = d->address;
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    for (; extra != NULL && *extra != NULL; extra++) {
        if (n == BENCH_DAEMON_ARGS_MAX)
            return -1;
        argv[n++] = *extra;
    }
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(kilnd, (char *const *) argv);
        fprintf(stderr, "bench: cannot run %s\n", kilnd);
        _exit(127);
    }
    return bench_wait_listening(d->pid, d->address);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
}
