/* fixture.c: a real kilnd for the client tests, and running programs with
 * their output captured.
 *
 * Each daemon gets its own mkdtemp directory and socket, so tests never
 * meet a developer's kilnd or each other. Readiness is checked with an NNG
 * dial rather than a kiln session, so the daemon's counters see only what
 * the test itself does. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "fixture.h"

#define START_WAIT_MS 10000
#define STOP_WAIT_MS  10000
#define RUN_WAIT_MS   20000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void fixture_require_kilnd(void)
{
    if (fixture_kilnd_path() == NULL) {
        fprintf(stderr, "KILN_KILND is not set: the tests that need kilnd cannot run\n");
        exit(EXIT_FAILURE);
    }
}

int fixture_run_suite(Suite *s)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *fixture_kilnd_path(void)
{
    const char *p = getenv("KILN_KILND");
    return p != NULL && p[0] != '\0' ? p : NULL;
}

/* Does an SP peer accept connections at address? Probed with a real NNG
 * dial (handshake included) and no request, so no session is opened. A
 * bare connect() and close() would do instead of the handshake, but NNG
 * 1.5.2's ipc listener stops accepting after a peer that closes before
 * the handshake, so the probe itself would wedge the daemon. */
static bool sp_listening(const char *address)
{
    nng_socket s;
    if (nng_req0_open(&s) != 0)
        return false;
    bool ok = nng_dial(s, address, NULL, 0) == 0;
    nng_close(s);
    return ok;
}

/* Wait for pid up to ms; returns the waitpid status word or -1 on timeout. */
static int wait_for(pid_t pid, int ms)
{
    for (int waited = 0;; waited += 10) {
        int st;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid)
            return st;
        if (got < 0 || waited >= ms)
            return -1;
        sleep_ms(10);
    }
}

static void remove_dir(const char *dir)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/kilnd.sock", dir);
    unlink(path);
    rmdir(dir);
}

int fixture_daemon_start(struct fixture_daemon *d, const char *const *extra)
{
    memset(d, 0, sizeof(*d));
    const char *kilnd = fixture_kilnd_path();
    if (kilnd == NULL) {
        fprintf(stderr, "fixture: KILN_KILND is not set\n");
        return -1;
    }
    snprintf(d->dir, sizeof(d->dir), "/tmp/kiln-test-XXXXXX");
    if (mkdtemp(d->dir) == NULL) {
        fprintf(stderr, "fixture: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    snprintf(d->address, sizeof(d->address), "ipc://%s/kilnd.sock", d->dir);

    const char *argv[32] = {kilnd, "--listen", d->address, "--log-level", "warn"};
    size_t n = 5;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n + 1 < 32; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    d->pid = fork();
    if (d->pid < 0) {
        fprintf(stderr, "fixture: fork: %s\n", strerror(errno));
        remove_dir(d->dir);
        return -1;
    }
    if (d->pid == 0) {
        /* If the test dies (a failed assert in a forked Check test), the
         * daemon must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(kilnd, (char *const *) argv);
        fprintf(stderr, "fixture: exec %s: %s\n", kilnd, strerror(errno));
        _exit(127);
    }
    for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
        if (sp_listening(d->address))
            return 0;
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "fixture: kilnd exited during start-up (status %d)\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            d->pid = 0;
            remove_dir(d->dir);
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "fixture: kilnd did not listen on %s within %d ms\n", d->address,
            START_WAIT_MS);
    fixture_daemon_stop(d);
    return -1;
}

int fixture_daemon_stop(struct fixture_daemon *d)
{
    if (d->pid <= 0)
        return 0;
    kill(d->pid, SIGTERM);
    int st = wait_for(d->pid, STOP_WAIT_MS);
    if (st == -1) {
        fprintf(stderr, "fixture: kilnd did not exit within %d ms of SIGTERM\n", STOP_WAIT_MS);
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
    }
    d->pid = 0;
    remove_dir(d->dir);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* ---- a runtime directory ---------------------------------------------- */

int fixture_rundir_setup(struct fixture_rundir *r, mode_t mode)
{
    snprintf(r->base, sizeof(r->base), "/tmp/kiln-test-XXXXXX");
    if (mkdtemp(r->base) == NULL) {
        fprintf(stderr, "fixture: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    snprintf(r->dir, sizeof(r->dir), "%s/kiln", r->base);
    snprintf(r->address, sizeof(r->address), "ipc://%s/kilnd.sock", r->dir);
    /* chmod after mkdir, so that the umask does not matter. */
    if (mode != 0 && (mkdir(r->dir, 0700) != 0 || chmod(r->dir, mode) != 0)) {
        fprintf(stderr, "fixture: mkdir %s: %s\n", r->dir, strerror(errno));
        rmdir(r->dir);
        rmdir(r->base);
        return -1;
    }
    setenv("XDG_RUNTIME_DIR", r->base, 1);
    unsetenv("KILN_ADDRESS");
    return 0;
}

void fixture_rundir_teardown(struct fixture_rundir *r)
{
    unlink(r->address + strlen("ipc://"));
    if (unlink(r->dir) != 0) /* a test may leave a file or a link there */
        rmdir(r->dir);
    rmdir(r->base);
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("KILN_ADDRESS");
}

/* ---- running programs --------------------------------------------------- */

/* Append what fd has to *buf; returns false at EOF or error. */
static bool drain(int fd, char **buf, size_t *len)
{
    char chunk[4096];
    ssize_t got = read(fd, chunk, sizeof(chunk));
    if (got <= 0)
        return got < 0 && errno == EINTR;
    char *grown = realloc(*buf, *len + (size_t) got + 1);
    if (grown == NULL)
        return false;
    memcpy(grown + *len, chunk, (size_t) got);
    *len += (size_t) got;
    grown[*len] = '\0';
    *buf = grown;
    return true;
}

/* Run argv with KILN_ADDRESS set to addr (NULL: unset), input on stdin;
 * kill it after wait_ms. */
static int run_capture_for(struct fixture_run *r, const char *const *argv, const char *addr,
                           const char *input, int wait_ms)
{
    memset(r, 0, sizeof(*r));
    int out[2], err[2], in[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(out[0]), close(out[1]);
        return -1;
    }
    if (pipe2(in, O_CLOEXEC) != 0) {
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        return -1;
    }
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0), dup2(out[1], 1), dup2(err[1], 2);
        if (addr != NULL)
            setenv("KILN_ADDRESS", addr, 1);
        else
            unsetenv("KILN_ADDRESS");
        execvp(argv[0], (char *const *) argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]), close(out[1]), close(err[1]);
    if (pid < 0) {
        close(in[1]), close(out[0]), close(err[0]);
        return -1;
    }
    /* Small enough for the pipe buffer. The suite ignores SIGPIPE, so a
     * child that exits without reading does not kill us. */
    if (input != NULL)
        (void) !write(in[1], input, strlen(input));
    close(in[1]);
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    size_t nout = 0, nerr = 0;
    struct pollfd p[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
    bool killed = false;
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        if (poll(p, 2, 100) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++)
            if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP)) &&
                !drain(p[i].fd, i == 0 ? &r->out : &r->err, i == 0 ? &nout : &nerr)) {
                close(p[i].fd);
                p[i].fd = -1;
            }
        if (!killed && now_s() - t0 > wait_ms / 1000.0) {
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    int st;
    waitpid(pid, &st, 0);
    r->secs = now_s() - t0;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return 0;
}

static int run_capture(struct fixture_run *r, const char *const *argv, const char *addr,
                       const char *input)
{
    return run_capture_for(r, argv, addr, input, RUN_WAIT_MS);
}

int fixture_run_program(struct fixture_run *r, const char *kiln_address, const char *const *argv,
                        int wait_ms)
{
    return run_capture_for(r, argv, kiln_address, NULL, wait_ms);
}

int fixture_run_cli(struct fixture_run *r, const char *kiln_address, const char *const *argv)
{
    return fixture_run_cli_stdin(r, kiln_address, argv, NULL);
}

int fixture_run_cli_stdin(struct fixture_run *r, const char *kiln_address, const char *const *argv,
                          const char *input)
{
    const char *cli = getenv("KILN_CLI");
    if (cli == NULL || cli[0] == '\0') {
        fprintf(stderr, "fixture: KILN_CLI is not set\n");
        return -1;
    }
    const char *full[32] = {cli};
    size_t n = 1;
    for (size_t i = 0; argv[i] != NULL && n + 1 < 32; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    return run_capture(r, full, kiln_address, input);
}

void fixture_run_fini(struct fixture_run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

int fixture_json_valid(const char *text)
{
    const char *argv[] = {"python3", "-c",
                          "import json,sys; json.loads(sys.stdin.buffer.read().decode('utf-8'))",
                          NULL};
    struct fixture_run r;
    if (run_capture(&r, argv, NULL, text) != 0)
        return -1;
    int status = r.status;
    if (status != 0 && status != 127)
        fprintf(stderr, "fixture: python3 rejects the JSON: %s", r.err);
    fixture_run_fini(&r);
    return status == 0 ? 1 : status == 127 ? -1 : 0;
}
