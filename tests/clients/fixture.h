/* fixture.h: test helpers for the client suite — a real kilnd on a private
 * ipc:// socket, a fake daemon made of a bare NNG REP socket, and running
 * the `kiln` command with its output captured.
 *
 * Paths come from the environment that meson sets: KILN_KILND (the
 * daemon; empty when it is not built) and KILN_CLI (the command). Each
 * helper owns what it creates and removes it in its _stop/_fini. */
#ifndef KILN_TEST_FIXTURE_H
#define KILN_TEST_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- a real kilnd ------------------------------------------------------ */

struct fixture_daemon {
    pid_t pid;         /* 0: not running */
    char dir[64];      /* private directory made by mkdtemp, holds the socket */
    char address[128]; /* ipc://<dir>/kilnd.sock */
};

/* The daemon's path, or NULL when the build has none. */
const char *fixture_kilnd_path(void);

/* Exit the test program with a failure when meson did not pass kilnd:
 * running without it is a broken setup, and silently testing less would
 * hide it. */
void fixture_require_kilnd(void);

/* Run a suite (with SIGPIPE ignored) and turn its result into the exit
 * status of main(). */
int fixture_run_suite(Suite *s);

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
    FAKE_REFUSE,  /* answer every request with an error reply */
    FAKE_SERVE,   /* answer HELLO, PING, STATUS and BYE like a kilnd */
};

#define FAKE_SESSION 42 /* the session id FAKE_SERVE's HELLO opens */

struct fake_config {
    enum fake_mode mode;
    const char *address; /* NULL: a fresh private ipc:// address; else listen
                            here (the caller owns the directory) */
    uint32_t proto;      /* FAKE_SERVE: the version HELLO chooses; 0: 1 */
    const char *server;  /* FAKE_SERVE: the name in HELLO and STATUS; NULL: "fake kilnd" */
    /* The error reply: FAKE_REFUSE sends it to everything, FAKE_SERVE to
     * PING when code is not 0. Any code 1..99 goes, and any bytes in the
     * text. FAKE_REFUSE with code 0: AUTH, "body.token", "token refused
     * by the fake daemon". */
    int code;
    const char *field;
    const char *message;
};

struct fake_server; /* opaque */

/* Listen and serve in a thread. Returns NULL on failure. */
struct fake_server *fake_server_start_with(const struct fake_config *cfg);
/* fake_server_start_with() with only the mode set. */
struct fake_server *fake_server_start(enum fake_mode mode);
const char *fake_server_address(const struct fake_server *f);
/* How many requests of `kind` arrived, and in *session (if not NULL) the
 * session the last one named. A request is counted before it is answered,
 * so one whose reply the client has seen is counted. */
unsigned fake_server_requests(struct fake_server *f, int kind, uint64_t *session);
/* Stop the thread, close the socket, remove the socket file and the
 * directory it made, free. Safe on NULL. */
void fake_server_stop(struct fake_server *f);

/* ---- a runtime directory ---------------------------------------------- */

/* A stand-in for $XDG_RUNTIME_DIR, so that the default address is
 * <base>/kiln/kilnd.sock. */
struct fixture_rundir {
    char base[64];     /* made by mkdtemp; XDG_RUNTIME_DIR points here */
    char dir[96];      /* <base>/kiln: the runtime directory under test */
    char address[160]; /* ipc://<dir>/kilnd.sock, the default address */
};

/* Make base, and dir with exactly `mode` unless mode is 0; set
 * XDG_RUNTIME_DIR to base and unset KILN_ADDRESS (the test's process
 * only: Check runs each test in a child). Returns 0, or -1 after saying
 * why on stderr. */
int fixture_rundir_setup(struct fixture_rundir *r, mode_t mode);
/* Remove the socket, whatever is at dir, and base; unset both variables. */
void fixture_rundir_teardown(struct fixture_rundir *r);

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
/* fixture_run_cli() with `input` (NULL: none; small enough for a pipe's
 * buffer) on its stdin. */
int fixture_run_cli_stdin(struct fixture_run *r, const char *kiln_address, const char *const *argv,
                          const char *input);
void fixture_run_fini(struct fixture_run *r);

/* Run any program: argv[0] is its path (or a name looked up in PATH),
 * with the given KILN_ADDRESS (NULL: unset) and no stdin; kill it after
 * wait_ms. Returns 0, or -1 if it could not be run. */
int fixture_run_program(struct fixture_run *r, const char *kiln_address, const char *const *argv,
                        int wait_ms);

/* Have python3 check that text is UTF-8 (strictly: no surrogateescape,
 * whatever the locale) and one JSON value. Returns 1 if it is, 0 if not,
 * -1 if python3 is missing. */
int fixture_json_valid(const char *text);

#endif
