/* harness.c: process control and wire helpers for the daemon tests (see
 * harness.h). Processes are started with fork+exec and always reaped with
 * a deadline, so a hung daemon fails a test instead of hanging the suite. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

uint64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

void th_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void th_prepare(struct th_daemon *d)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/kilnd-test-XXXXXX");
    ck_assert_msg(mkdtemp(d->dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(d->addr, sizeof(d->addr), "ipc://%s/kilnd.sock", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/kilnd.log", d->dir);
}

pid_t th_spawn(struct th_daemon *d, const char *const *argv, const char *env_xdg)
{
    const char *kilnd = getenv("KILND_PATH");
    ck_assert_msg(kilnd != NULL, "KILND_PATH is not set (pass kilnd's path as argv[1])");
    int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "open %s: %s", d->log, strerror(errno));
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        char *args[32];
        size_t n = 0;
        args[n++] = (char *) kilnd;
        for (size_t i = 1; argv[i] != NULL && n < 31; i++)
            args[n++] = (char *) argv[i];
        args[n] = NULL;
        /* A test that fails part way must not leave a daemon behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (env_xdg != NULL)
            setenv("XDG_RUNTIME_DIR", env_xdg, 1);
        execv(kilnd, args);
        _exit(127);
    }
    close(fd);
    return pid;
}

int th_wait(pid_t pid, int ms)
{
    uint64_t deadline = th_now_ms() + (uint64_t) ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0)
            return -1;
        if (th_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        th_sleep_ms(5);
    }
}

static void dump_log(const struct th_daemon *d)
{
    FILE *f = fopen(d->log, "r");
    if (f == NULL)
        return;
    char line[1024];
    fprintf(stderr, "---- kilnd log (%s) ----\n", d->log);
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---- end of log ----\n");
    fclose(f);
}

void th_start(struct th_daemon *d, const char *const *flags)
{
    const char *argv[32] = {"kilnd", "--listen", d->addr};
    size_t n = 3;
    for (size_t i = 0; flags != NULL && flags[i] != NULL && n < 31; i++)
        argv[n++] = flags[i];
    argv[n] = NULL;
    d->pid = th_spawn(d, argv, NULL);

    /* Ready when a dial succeeds. Fail fast if the daemon died. */
    uint64_t deadline = th_now_ms() + 10000;
    for (;;) {
        nng_socket s;
        ck_assert_int_eq(nng_req0_open(&s), 0);
        int rv = nng_dial(s, d->addr, NULL, 0);
        nng_close(s);
        if (rv == 0)
            return;
        int status;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            dump_log(d);
            d->pid = 0;
            ck_abort_msg("kilnd exited during start-up (status %d)", status);
        }
        if (th_now_ms() >= deadline) {
            dump_log(d);
            ck_abort_msg("kilnd did not start listening at %s within 10 s", d->addr);
        }
        th_sleep_ms(10);
    }
}

void th_cleanup(struct th_daemon *d)
{
    DIR *dir = opendir(d->dir);
    if (dir == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char path[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
        if (unlink(path) != 0 && errno == EISDIR) {
            chmod(path, 0700);
            rmdir(path); /* one level: the tests' runtime directory */
        }
    }
    closedir(dir);
    rmdir(d->dir);
}

int th_stop(struct th_daemon *d)
{
    int status = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        status = th_wait(d->pid, 15000);
        d->pid = 0;
    }
    if (status != 0)
        dump_log(d);
    th_cleanup(d);
    return status;
}

bool th_log_contains(const struct th_daemon *d, const char *needle)
{
    FILE *f = fopen(d->log, "r");
    if (f == NULL)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

nng_socket th_connect(const char *addr, int timeout_ms)
{
    nng_socket s;
    ck_assert_int_eq(nng_req0_open(&s), 0);
    ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms), 0);
    ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms), 0);
    /* No automatic redial: after the daemon drops us we close and dial
     * again ourselves. A redial racing our close would hang up in the
     * middle of the SP handshake, which stops NNG 1.5.2's ipc listener
     * from attaching new connections (nanomsg/nng#1518) until kilnd's
     * watchdog reopens it: a needless pause in every test. */
    ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 60000), 0);
    ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 60000), 0);
    int rv = nng_dial(s, addr, NULL, 0);
    ck_assert_msg(rv == 0, "dial %s: %s", addr, nng_strerror(rv));
    return s;
}

int th_roundtrip(nng_socket s, const void *buf, size_t len, nng_msg **reply)
{
    nng_msg *msg;
    int rv = nng_msg_alloc(&msg, 0);
    if (rv != 0)
        return rv;
    if ((rv = nng_msg_append(msg, buf, len)) != 0 || (rv = nng_sendmsg(s, msg, 0)) != 0) {
        nng_msg_free(msg);
        return rv;
    }
    return nng_recvmsg(s, reply, 0);
}

int th_call(nng_socket s, msgpack_sbuffer *req, int kind, struct proto_reply *rep)
{
    nng_msg *msg;
    int rv = th_roundtrip(s, req->data, req->size, &msg);
    ck_assert_msg(rv == 0, "%s: no reply: %s", proto_kind_name(kind), nng_strerror(rv));
    struct proto_error err;
    int rc = proto_reply_decode(rep, kind, nng_msg_body(msg), nng_msg_len(msg), &err);
    nng_msg_free(msg);
    ck_assert_msg(rc == KILN_OK, "%s: bad reply: %s (%s)", proto_kind_name(kind), err.message,
                  err.field);
    return rep->code;
}

uint64_t th_hello(nng_socket s, const char *client)
{
    struct proto_hello h = {.proto_min = 1, .proto_max = 1};
    snprintf(h.client, sizeof(h.client), "%s", client);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_hello(&sb, &h), KILN_OK);
    struct proto_reply rep;
    int code = th_call(s, &sb, PROTO_HELLO, &rep);
    msgpack_sbuffer_destroy(&sb);
    ck_assert_msg(code == KILN_OK, "HELLO refused: %s %s", kiln_err_name(code),
                  rep.error.message);
    ck_assert_uint_eq(rep.u.hello.proto, 1);
    ck_assert_uint_ne(rep.u.hello.session, 0);
    uint64_t id = rep.u.hello.session;
    proto_reply_fini(&rep);
    return id;
}

int th_simple(nng_socket s, int kind, uint64_t session, struct proto_error *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_simple(&sb, kind, session), KILN_OK);
    struct proto_reply rep;
    int code = th_call(s, &sb, kind, &rep);
    msgpack_sbuffer_destroy(&sb);
    if (err != NULL)
        *err = rep.error;
    proto_reply_fini(&rep);
    return code;
}

int th_try_simple(nng_socket s, int kind, uint64_t session, struct proto_error *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_simple(&sb, kind, session), KILN_OK);
    nng_msg *msg;
    int rv = th_roundtrip(s, sb.data, sb.size, &msg);
    msgpack_sbuffer_destroy(&sb);
    if (rv != 0)
        return -1;
    struct proto_reply rep;
    struct proto_error perr;
    int rc = proto_reply_decode(&rep, kind, nng_msg_body(msg), nng_msg_len(msg), &perr);
    nng_msg_free(msg);
    ck_assert_msg(rc == KILN_OK, "bad reply: %s", perr.message);
    if (err != NULL)
        *err = rep.error;
    int code = rep.code;
    proto_reply_fini(&rep);
    return code;
}

void th_status(nng_socket s, struct proto_status *st)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_simple(&sb, PROTO_STATUS, 0), KILN_OK);
    struct proto_reply rep;
    int code = th_call(s, &sb, PROTO_STATUS, &rep);
    msgpack_sbuffer_destroy(&sb);
    ck_assert_int_eq(code, KILN_OK);
    *st = rep.u.status;
    proto_reply_fini(&rep);
}

long th_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "open %s", path);
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    }
    fclose(f);
    ck_assert_msg(kib > 0, "no VmRSS in %s", path);
    return kib;
}

/* ---- graphs ---------------------------------------------------------- */

struct proto_node th_node(uint64_t id, uint32_t op)
{
    struct proto_node n;
    memset(&n, 0, sizeof(n));
    n.id = id;
    n.op = op;
    return n;
}

void th_set_shape(struct proto_node *n, uint32_t rank, const int64_t *shape)
{
    n->has |= PROTO_NODE_SHAPE;
    n->rank = rank;
    if (rank > 0)
        memcpy(n->shape, shape, rank * sizeof(shape[0]));
}

void th_set_dims(struct proto_node *n, uint32_t ndims, const uint32_t *dims)
{
    n->has |= PROTO_NODE_DIMS;
    n->ndims = ndims;
    if (ndims > 0)
        memcpy(n->dims, dims, ndims * sizeof(dims[0]));
}

void th_set_in(struct proto_node *n, uint32_t nin, const uint64_t *in)
{
    n->has |= PROTO_NODE_IN;
    n->nin = nin;
    if (nin > 0)
        memcpy(n->in, in, nin * sizeof(in[0]));
}

void th_set_dtype(struct proto_node *n, uint32_t dt)
{
    n->has |= PROTO_NODE_DTYPE;
    n->dtype = dt;
}

/* SUBMIT nodes keeping `keep`; returns the reply code (step in *step). */
int th_submit(nng_socket s, uint64_t sid, struct proto_node *nodes, uint32_t n,
                  const uint64_t *keep, uint32_t nkeep, struct proto_error *err, uint64_t *step)
{
    struct proto_submit sub = {.nnodes = n, .nodes = nodes, .nkeep = nkeep,
                               .keep = (uint64_t *) keep};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_submit(&sb, sid, &sub), KILN_OK);
    struct proto_reply rep;
    int code = th_call(s, &sb, PROTO_SUBMIT, &rep);
    if (err != NULL)
        *err = rep.error;
    if (step != NULL)
        *step = code == KILN_OK ? rep.u.submit.step : 0;
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
    return code;
}

/* FETCH one var into `out` (up to `cap` bytes); returns the code. */
int th_fetch(nng_socket s, uint64_t sid, uint64_t id, void *out, size_t cap, int timeout_ms,
                 struct proto_error *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_fetch(&sb, sid, &id, 1, (uint64_t) timeout_ms), KILN_OK);
    /* The decoded values point into the reply message: keep it until copied. */
    nng_msg *msg;
    int rv = th_roundtrip(s, sb.data, sb.size, &msg);
    ck_assert_msg(rv == 0, "FETCH: no reply: %s", nng_strerror(rv));
    struct proto_reply rep;
    struct proto_error perr;
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_FETCH, nng_msg_body(msg), nng_msg_len(msg),
                                        &perr),
                     KILN_OK);
    int code = rep.code;
    if (err != NULL)
        *err = rep.error;
    if (code == KILN_OK) {
        ck_assert_uint_eq(rep.u.fetch.count, 1);
        ck_assert_uint_eq(rep.u.fetch.vars[0].id, id);
        ck_assert_uint_le(rep.u.fetch.vars[0].bytes, cap);
        memcpy(out, rep.u.fetch.vars[0].data, rep.u.fetch.vars[0].bytes);
    }
    proto_reply_fini(&rep);
    nng_msg_free(msg);
    msgpack_sbuffer_destroy(&sb);
    return code;
}


void th_release(nng_socket s, uint64_t sid, const uint64_t *ids, uint32_t n)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_release(&sb, sid, ids, n), KILN_OK);
    struct proto_reply rep;
    ck_assert_int_eq(th_call(s, &sb, PROTO_RELEASE, &rep), KILN_OK);
    ck_assert_uint_eq(rep.u.release.released, n);
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
}
