/* daemon.h: the life of one kilnd process.
 *
 * kilnd_run() owns everything the daemon has: the libuv loop (whose thread
 * is the only one that touches daemon state), the server, the session
 * table, the counters, the signal handlers and the timers. It listens,
 * serves until the first SIGTERM/SIGINT, drains, tears everything down in
 * the order NNG and libuv need, and returns the exit status.
 */
#ifndef KILND_DAEMON_H
#define KILND_DAEMON_H

#include "config.h"

/* The exit status after the CUDA device failed (a sticky CUDA error): the
 * daemon drained and stopped so that its supervisor starts a new one. */
#define KILND_EXIT_DEVICE 3

/* Run until shut down. Returns 0 after a clean shutdown, 1 when the daemon
 * could not start (the reason is logged), KILND_EXIT_DEVICE after the
 * CUDA device failed. Call once per process: it ends with nng_fini(). */
int kilnd_run(const struct cfg *cfg);

#endif
