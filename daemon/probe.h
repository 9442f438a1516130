/* probe.h: is a live kiln daemon listening on an ipc:// path?
 *
 * kilnd asks before it listens on ipc:// so that it can refuse to start
 * with a clear message, and its watchdog asks every second whether its own
 * listeners still take connections in (watchdog.h). The question must not
 * be left to NNG: NNG 1.5.2 answers it by connecting and hanging up at
 * once, and a peer that hangs up before the SP handshake stops a live
 * daemon's ipc listener from attaching any new connection (nanomsg/nng
 * issue #1518, fixed in NNG 1.6). This probe completes the handshake
 * before it closes, which the live daemon handles like any client that
 * connects and leaves.
 */
#ifndef KILND_PROBE_H
#define KILND_PROBE_H

#include <stdbool.h>
#include <stddef.h>

enum probe_result {
    PROBE_ABSENT, /* nothing listens (no socket file, or a stale one) */
    PROBE_LIVE,   /* a peer accepted the connection and sent its handshake */
    PROBE_SILENT, /* the socket is bound, but no handshake came in time (or the
                     backlog is full): a listener that stopped accepting */
    PROBE_ERROR,  /* could not tell; `why` says why */
};

/* After the handshake, the probe can also wait until the server says it
 * took the connection in: `done(arg)` is polled every millisecond until it
 * returns true (PROBE_LIVE) or the timeout passes (PROBE_SILENT). */
struct probe_wait {
    bool (*done)(void *arg);
    void *arg;
};

/* Probe the Unix socket at `path`, waiting at most `timeout_ms` for the
 * peer's handshake (and for `wait`, when not NULL). Blocks: call it before
 * the loop starts, or from a worker thread (it touches nothing but its
 * arguments and what `wait` reads). */
enum probe_result probe_ipc(const char *path, int timeout_ms, const struct probe_wait *wait,
                            char *why, size_t why_size);

#endif
