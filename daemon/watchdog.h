/* watchdog.h: keeps kilnd's ipc:// listeners accepting.
 *
 * NNG 1.5.2, the version Debian 12 ships, has a listener bug: when a peer
 * connects to an ipc:// listener and hangs up before the 8-byte SP
 * handshake, the listener's accept loop ends with "closed" and never
 * accepts again (upstream issue nanomsg/nng#1518, fixed in 1.6). Existing
 * connections keep working, but every new client hangs. Any process of the
 * daemon's user can cause it by accident: a readiness check that only
 * connects, a port scanner, a client killed at the wrong moment.
 *
 * kilnd cannot patch NNG, so it watches instead. Every `every_ms` the
 * watchdog probes one ipc:// listener from a libuv worker thread (the
 * probe blocks for up to a second, so never on the loop thread): it
 * connects, completes the handshake like a client (probe.h) and waits for
 * the socket to attach the connection (a pipe event; the transport keeps
 * handshaking after the bug, so the handshake alone proves nothing). If
 * that does not happen in time, the listener is closed and opened again on the
 * same address (srv_relisten), which restores service within about
 * every_ms + the probe timeout; the event is logged at warn. Closing an
 * NNG listener also closes the connections it accepted: their clients
 * redial (NNG does so by itself) and a request in flight at that moment
 * fails with a connection error, but sessions belong to clients, not to
 * connections, so nothing else is lost. (Keeping the old listener open
 * beside a new one is not possible: NNG unlinks the socket path when a
 * listener closes, which would take the new listener's path with it.)
 * NNG also leaks the wedged listener's internal objects when it closes
 * (about 10 KB per incident), which is bounded by how often a peer
 * misbehaves. tcp:// listeners are not affected by the bug and are not
 * probed.
 *
 * Threads: everything here runs on the loop thread except the probe
 * itself, which reads only a copy of the path and writes only its result.
 */
#ifndef KILND_WATCHDOG_H
#define KILND_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include <uv.h>

#include "log.h"
#include "probe.h"
#include "server.h"

#define WD_EVERY_MS_DEFAULT 1000 /* probe interval */
#define WD_PROBE_TIMEOUT_MS 1000 /* how long a healthy listener may take to answer */

struct wd {
    uv_loop_t *loop;
    struct srv *srv;
    const struct log *log;
    uv_timer_t timer;
    bool timer_init;
    uv_work_t work;
    bool busy;        /* a probe is running on a worker */
    bool stopped;     /* wd_stop was called: ignore late results */
    size_t next;      /* listener to probe next (round robin) */
    size_t probing;   /* listener the running probe is about */
    char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    uint64_t own_before; /* srv_own_pipes() when the probe started */
    enum probe_result result;
    uint64_t restarts; /* listeners reopened since start */
};

/* Set up the timer on `loop`. Returns 0 or a libuv error. */
int wd_init(struct wd *wd, uv_loop_t *loop, struct srv *srv, const struct log *log);

/* Probe every `every_ms` from now on. */
void wd_start(struct wd *wd, uint64_t every_ms);

/* Stop probing (call before the listeners close). A probe already running
 * finishes on its worker; its result is ignored. The timer handle is
 * closed by the daemon's uv_walk at shutdown. */
void wd_stop(struct wd *wd);

#endif
