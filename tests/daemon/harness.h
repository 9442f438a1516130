/* harness.h: start a real kilnd and talk to it over raw NNG REQ sockets.
 *
 * Each test gets its own daemon on a private ipc:// socket in a fresh
 * temporary directory, with its log captured to a file there (printed when
 * the daemon exits badly). Requests are built with the protocol encoders;
 * the C client library is deliberately not used, so these tests pin the
 * daemon's behaviour on the wire. The path of kilnd comes from the
 * environment variable KILND_PATH (each test main sets it from argv[1]).
 *
 * Helpers fail the current Check test (ck_assert) on anything unexpected.
 */
#ifndef KILND_TEST_HARNESS_H
#define KILND_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "proto.h"

struct th_daemon {
    pid_t pid;
    char dir[128];     /* the temporary directory */
    char addr[192];    /* ipc://<dir>/kilnd.sock */
    char log[192];     /* <dir>/kilnd.log: the daemon's stderr */
};

/* Create the temporary directory and fill in addr and log; no process. */
void th_prepare(struct th_daemon *d);

/* Start kilnd with --listen <addr> and the given extra flags (NULL-ended),
 * and wait until it answers. */
void th_start(struct th_daemon *d, const char *const *flags);

/* Run kilnd with exactly `argv` (NULL-ended; argv[0] is replaced) and
 * `env_xdg` as XDG_RUNTIME_DIR when non-NULL, with stderr to the log.
 * Returns the pid without waiting for anything. */
pid_t th_spawn(struct th_daemon *d, const char *const *argv, const char *env_xdg);

/* Wait up to `ms` for `pid` to exit; returns its exit status, 128+signal
 * when killed, or -1 on timeout (the process is then killed). */
int th_wait(pid_t pid, int ms);

/* SIGTERM the daemon and wait for it; returns its exit status and prints
 * its log when that is not 0. Removes the temporary directory. */
int th_stop(struct th_daemon *d);

/* Remove the temporary directory and what the tests put there. */
void th_cleanup(struct th_daemon *d);

/* True when the daemon's log contains `needle`. */
bool th_log_contains(const struct th_daemon *d, const char *needle);

/* A REQ socket dialled to `addr` with send and receive timeouts. */
nng_socket th_connect(const char *addr, int timeout_ms);

/* Send raw bytes and receive the reply. Returns 0 and the reply in
 * *reply (free with nng_msg_free), or the NNG error. */
int th_roundtrip(nng_socket s, const void *buf, size_t len, nng_msg **reply);

/* Send an encoded request of `kind` and decode the reply into `rep`
 * (give it to proto_reply_fini). Fails the test on transport or
 * protocol errors; returns rep->code. */
int th_call(nng_socket s, msgpack_sbuffer *req, int kind, struct proto_reply *rep);

/* HELLO as `client`; returns the session id (asserts success). */
uint64_t th_hello(nng_socket s, const char *client);
/* PING, STATUS and BYE; return the reply code. */
int th_simple(nng_socket s, int kind, uint64_t session, struct proto_error *err);
/* Like th_simple, but a missing reply is not a test failure: returns -1
 * when nothing came back in time. */
int th_try_simple(nng_socket s, int kind, uint64_t session, struct proto_error *err);
/* STATUS into *st (asserts success). */
void th_status(nng_socket s, struct proto_status *st);

/* VmRSS of `pid` in KiB, from /proc/PID/status. */
long th_rss_kib(pid_t pid);

/* Milliseconds on a monotonic clock. */
uint64_t th_now_ms(void);
void th_sleep_ms(int ms);

/* Graph helpers over struct proto_node: a node with only id and op,
 * then its fields. */
struct proto_node th_node(uint64_t id, uint32_t op);
void th_set_shape(struct proto_node *n, uint32_t rank, const int64_t *shape);
void th_set_in(struct proto_node *n, uint32_t nin, const uint64_t *in);
void th_set_dtype(struct proto_node *n, uint32_t dt);
void th_set_dims(struct proto_node *n, uint32_t ndims, const uint32_t *dims);
/* SUBMIT nodes keeping `keep`; returns the reply code (the step number in
 * *step, and the error in *err, when not NULL). */
int th_submit(nng_socket s, uint64_t sid, struct proto_node *nodes, uint32_t n,
              const uint64_t *keep, uint32_t nkeep, struct proto_error *err, uint64_t *step);
/* FETCH one var into `out` (up to `cap` bytes, asserted); returns the code. */
int th_fetch(nng_socket s, uint64_t sid, uint64_t id, void *out, size_t cap, int timeout_ms,
             struct proto_error *err);

/* RELEASE `n` kept vars, asserting that all of them were released. */
void th_release(nng_socket s, uint64_t sid, const uint64_t *ids, uint32_t n);

#endif
