/* fixture.h: test helpers for the client suite — a real kilnd on a private
 * ipc:// socket, a fake daemon made of a bare NNG REP socket, and running
 * the `kiln` command with its output captured.
 *
 * Paths come from the environment that meson sets: KILN_KILND (the
 * daemon; empty when it is not built) and KILN_CLI (the command). Each
 * helper owns what it creates and removes it in its _stop/_fini. */
#ifndef KILN_TEST_FIXTURE_H
#define KILN_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- a real kilnd ------------------------------------------------------ */

struct fixture_daemon {
    pid_t pid;         /* 0: not running */
    char dir[64];      /* private directory made by mkdtemp, holds the socket */
    char address[128]; /* ipc://<dir>/kilnd.sock */
};

/* The daemon's path, or NULL when the build has none. */
const char *fixture_kilnd_path(void);

/* Start kilnd listening on a fresh private socket, with `extra` arguments
 * (NULL-terminated, may be NULL), and wait until it accepts connections.
 * Returns 0, or -1 after printing why on stderr (nothing is left behind). */
int fixture_daemon_start(struct fixture_daemon *d, const char *const *extra);

/* SIGTERM the daemon and wait up to 10 s for it. Returns its exit status,
 * or -1 if it died of a signal or had to be killed. Removes the directory.
 * Safe on a daemon that is not running (returns 0). */
int fixture_daemon_stop(struct fixture_daemon *d);

/* ---- a fake daemon ------------------------------------------------------ */

enum fake_mode {
    FAKE_SILENT,  /* receive requests and never answer */
    FAKE_GARBAGE, /* answer every request with bytes that are not msgpack */
    FAKE_REFUSE,  /* answer every request with an AUTH error reply */
};

struct fake_server; /* opaque */

/* Listen on a fresh private ipc:// address and serve in a thread.
 * Returns NULL on failure. */
struct fake_server *fake_server_start(enum fake_mode mode);
const char *fake_server_address(const struct fake_server *f);
/* Stop the thread, close the socket, remove the directory, free. Safe on NULL. */
void fake_server_stop(struct fake_server *f);

/* ---- the kiln command --------------------------------------------------- */

struct fixture_run {
    int status;  /* exit status, or -1 if killed by a signal */
    char *out;   /* stdout, NUL-terminated; owned, freed by fixture_run_fini */
    char *err;   /* stderr, likewise */
    double secs; /* wall time */
};

/* Run KILN_CLI with argv (NULL-terminated, without argv[0]) and the given
 * KILN_ADDRESS (NULL: unset it), feeding no stdin; kill it after 20 s.
 * Returns 0, or -1 if it could not be run. */
int fixture_run_cli(struct fixture_run *r, const char *kiln_address, const char *const *argv);
void fixture_run_fini(struct fixture_run *r);

/* Run `python3 -c 'import json,sys; json.load(sys.stdin)'` on text.
 * Returns 1 if it parses, 0 if not, -1 if python3 is missing. */
int fixture_json_valid(const char *text);

#endif
