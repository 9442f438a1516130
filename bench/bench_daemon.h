/* bench_daemon.h: what every benchmark needs to run a private kilnd.
 *
 * A benchmark starts its own kilnd as a child process listening on
 * ipc://DIR/kilnd.sock in a fresh directory, so that it never meets a
 * daemon someone else runs, and stops it at the end. The child gets
 * SIGTERM if the benchmark dies first. Helpers for timing and medians
 * live here too. Single-threaded use only. */
#ifndef KILN_BENCH_DAEMON_H
#define KILN_BENCH_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Relative to the source root, where the README says to run from. */
#define BENCH_KILND_DEFAULT "build/daemon/kilnd"

/* A kilnd child process on a private socket. */
struct bench_daemon {
    pid_t pid;
    char address[128];
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Wait until an NNG dial to `address` succeeds (0), or `child` exits or
 * 10 s pass (-1; the child is then killed and reaped). A bare connect()
 * would not do (see tests/clients/fixture.c). */
int bench_wait_listening(pid_t child, const char *address);

/* SIGTERM `pid` and reap it: its exit status, or -1 if a signal ended it. */
int bench_child_stop(pid_t pid);

/* Start `kilnd` on ipc://`dir`/kilnd.sock with `extra` arguments (a
 * NULL-terminated list, or NULL) after the defaults (--log-level warn);
 * 0 once it listens, -1 (nothing left running) otherwise. */
int bench_daemon_start(struct bench_daemon *d, const char *kilnd, const char *dir,
                       const char *const *extra);

/* Sort `v` ascending (for medians and percentiles). */
void bench_sort(double *v, size_t n);

#endif
