/* test_client.c: libkiln against a real kilnd and against fake daemons.
 *
 * The "offline" case needs no daemon: dead addresses, bad arguments, and
 * a fake REP server for timeouts, malformed replies and refusals. The
 * "daemon" case starts a kilnd per test on a private socket (skipped when
 * the build has no kilnd) and stops it with SIGTERM, which must give exit
 * status 0. */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client_impl.h" /* client_error_from_decode(), tested directly */
#include "fixture.h"
#include "kiln.h"

#define OTHER_UID 65534 /* nobody: the owner of a planted directory */

/* A connect that must fail without waiting out its timeout gets a long
 * timeout and must end well inside it. */
#define FAIL_FAST_TIMEOUT_MS 60000
#define FAIL_FAST_S          20.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Connect to addr, expecting failure with `want`; returns the time taken. */
static double connect_fails(const char *addr, int timeout_ms, int want, struct kiln_error *e)
{
    struct kiln_connect_opts o = {.address = addr, .timeout_ms = timeout_ms};
    kiln_conn *c = (kiln_conn *) 1;
    double t0 = now_s();
    int rc = kiln_connect(&c, &o, e);
    double dt = now_s() - t0;
    ck_assert_msg(rc == want, "connect %s: want %s, got %s (%s)", addr, kiln_err_name(want),
                  kiln_err_name(rc), rc ? e->message : "");
    ck_assert_int_eq(e->code, want);
    ck_assert_ptr_null(c);
    return dt;
}

static kiln_conn *connect_ok(const char *addr, const char *client)
{
    struct kiln_connect_opts o = {.address = addr, .timeout_ms = 5000, .client = client};
    kiln_conn *c = NULL;
    struct kiln_error e;
    int rc = kiln_connect(&c, &o, &e);
    ck_assert_msg(rc == KILN_OK, "connect %s: %s: %s", addr, kiln_err_name(rc), e.message);
    ck_assert_ptr_nonnull(c);
    return c;
}

static void start(struct fixture_daemon *d, const char *const *extra)
{
    ck_assert_msg(fixture_daemon_start(d, extra) == 0, "kilnd did not start");
}

static void stop(struct fixture_daemon *d)
{
    ck_assert_int_eq(fixture_daemon_stop(d), 0);
}

/* ---- offline ----------------------------------------------------------- */

START_TEST(connect_missing_socket_fails_fast)
{
    char dir[] = "/tmp/kiln-test-XXXXXX", addr[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(addr, sizeof(addr), "ipc://%s/nobody.sock", dir);
    struct kiln_error e;
    /* "Fast" means without waiting for the timeout: give a long one and
     * require far less, so a loaded machine cannot make this flaky. */
    double dt = connect_fails(addr, FAIL_FAST_TIMEOUT_MS, KILN_ECONNECT, &e);
    ck_assert_double_lt(dt, FAIL_FAST_S);
    ck_assert_msg(strstr(e.message, addr) != NULL, "message names the address: %s", e.message);
    rmdir(dir);
}
END_TEST

START_TEST(connect_stale_socket_fails_fast)
{
    /* A socket file nobody listens on: what a crashed daemon leaves. */
    char dir[] = "/tmp/kiln-test-XXXXXX", addr[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/stale.sock", dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    close(fd);
    snprintf(addr, sizeof(addr), "ipc://%s", sa.sun_path);
    struct kiln_error e;
    ck_assert_double_lt(connect_fails(addr, FAIL_FAST_TIMEOUT_MS, KILN_ECONNECT, &e), FAIL_FAST_S);
    ck_assert_ptr_nonnull(strstr(e.message, addr));
    unlink(sa.sun_path);
    rmdir(dir);
}
END_TEST

START_TEST(connect_tcp_refused_fails_fast)
{
    struct kiln_error e;
    ck_assert_double_lt(
        connect_fails("tcp://127.0.0.1:1", FAIL_FAST_TIMEOUT_MS, KILN_ECONNECT, &e), FAIL_FAST_S);
}
END_TEST

START_TEST(connect_uses_kiln_address)
{
    char dir[] = "/tmp/kiln-test-XXXXXX", addr[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(addr, sizeof(addr), "ipc://%s/env.sock", dir);
    setenv("KILN_ADDRESS", addr, 1);
    char buf[256];
    ck_assert_int_eq(kiln_default_address(buf, sizeof(buf)), KILN_OK);
    ck_assert_str_eq(buf, addr);
    struct kiln_error e;
    connect_fails(NULL, 0, KILN_ECONNECT, &e);
    ck_assert_ptr_nonnull(strstr(e.message, addr));
    unsetenv("KILN_ADDRESS");
    rmdir(dir);
}
END_TEST

START_TEST(connect_rejects_bad_arguments)
{
    struct kiln_error e;
    kiln_conn *c;
    char long_name[KILN_NAME_MAX + 2], long_token[300];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    memset(long_token, 't', sizeof(long_token) - 1);
    long_token[sizeof(long_token) - 1] = '\0';
    const struct {
        struct kiln_connect_opts o;
        const char *field;
    } cases[] = {
        {{.address = "tcp://127.0.0.1:1", .client = ""}, "client"},
        {{.address = "tcp://127.0.0.1:1", .client = long_name}, "client"},
        {{.address = "tcp://127.0.0.1:1", .token = long_token}, "token"},
        {{.address = ""}, "address"},
        {{.address = "nonsense://x"}, "address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = (kiln_conn *) 1;
        ck_assert_int_eq(kiln_connect(&c, &cases[i].o, &e), KILN_EARG);
        ck_assert_ptr_null(c);
        ck_assert_str_eq(e.field, cases[i].field);
    }
    ck_assert_int_eq(kiln_connect(NULL, NULL, &e), KILN_EARG);
}
END_TEST

START_TEST(null_connection_is_safe)
{
    struct kiln_error e;
    struct kiln_status st;
    kiln_close(NULL);
    ck_assert_int_eq(kiln_ping(NULL, &e), KILN_EARG);
    ck_assert_int_eq(kiln_ping(NULL, NULL), KILN_EARG);
    ck_assert_int_eq(kiln_status(NULL, &st, &e), KILN_EARG);
    ck_assert_ptr_null(kiln_conn_address(NULL));
    ck_assert_ptr_null(kiln_conn_session(NULL));
}
END_TEST

START_TEST(silent_daemon_times_out)
{
    struct fake_server *f = fake_server_start(FAKE_SILENT);
    ck_assert_ptr_nonnull(f);
    struct kiln_error e;
    double dt = connect_fails(fake_server_address(f), 200, KILN_ETIMEDOUT, &e);
    ck_assert_double_ge(dt, 0.15);
    ck_assert_double_lt(dt, FAIL_FAST_S); /* the 200 ms timeout, not the default */
    ck_assert_ptr_nonnull(strstr(e.message, fake_server_address(f)));
    fake_server_stop(f);
}
END_TEST

START_TEST(garbage_reply_is_a_protocol_error)
{
    struct fake_server *f = fake_server_start(FAKE_GARBAGE);
    ck_assert_ptr_nonnull(f);
    struct kiln_error e;
    connect_fails(fake_server_address(f), 2000, KILN_EPROTO, &e);
    ck_assert_str_ne(e.message, "");
    fake_server_stop(f);
}
END_TEST

START_TEST(daemon_refusal_is_reported)
{
    struct fake_server *f = fake_server_start(FAKE_REFUSE);
    ck_assert_ptr_nonnull(f);
    struct kiln_error e;
    connect_fails(fake_server_address(f), 2000, KILN_EAUTH, &e);
    ck_assert_str_eq(e.field, "body.token");
    ck_assert_str_eq(e.message, "token refused by the fake daemon");
    fake_server_stop(f);
}
END_TEST

static void rundir_setup(struct fixture_rundir *r, mode_t mode)
{
    ck_assert_msg(fixture_rundir_setup(r, mode) == 0, "cannot set up a runtime directory");
    char want[sizeof(r->address)];
    ck_assert_int_eq(kiln_default_address(want, sizeof(want)), KILN_OK);
    ck_assert_str_eq(want, r->address);
}

/* Give dir to OTHER_UID; false (after saying why) where we may not. */
static bool give_away(const char *dir)
{
    if (chown(dir, OTHER_UID, OTHER_UID) == 0)
        return true;
    fprintf(stderr, "cannot chown %s (not root?): skipping the foreign-owner case\n", dir);
    return false;
}

/* Connect with no address (the default), expecting `want`. */
static kiln_conn *connect_default(int want, struct kiln_error *e)
{
    struct kiln_connect_opts o = {.timeout_ms = 2000};
    kiln_conn *c = (kiln_conn *) 1;
    int rc = kiln_connect(&c, &o, e);
    ck_assert_msg(rc == want, "connect to the default: want %s, got %s (%s)", kiln_err_name(want),
                  kiln_err_name(rc), rc ? e->message : "");
    if (want != KILN_OK)
        ck_assert_ptr_null(c);
    return c;
}

#define assert_contains(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in \"%s\"", (needle), (hay))

START_TEST(runtime_dir_check_rules)
{
    struct fixture_rundir r;
    rundir_setup(&r, 0);
    char why[256];
    ck_assert_int_eq(kiln_runtime_dir_check(r.dir, why, sizeof(why)), KILN_ECONNECT);
    assert_contains(why, r.dir);
    assert_contains(why, "does not exist");

    int fd = open(r.dir, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(kiln_runtime_dir_check(r.dir, why, sizeof(why)), KILN_EARG);
    assert_contains(why, "not a directory");
    unlink(r.dir);

    /* A link to a directory that would pass is still refused: lstat. */
    ck_assert_int_eq(symlink(r.base, r.dir), 0);
    ck_assert_int_eq(kiln_runtime_dir_check(r.dir, why, sizeof(why)), KILN_EARG);
    assert_contains(why, "symbolic link");
    unlink(r.dir);

    ck_assert_int_eq(mkdir(r.dir, 0700), 0);
    ck_assert_int_eq(chmod(r.dir, 0700), 0);
    ck_assert_int_eq(kiln_runtime_dir_check(r.dir, why, sizeof(why)), KILN_OK);
    ck_assert_str_eq(why, "");
    ck_assert_int_eq(kiln_runtime_dir_check(r.dir, NULL, 0), KILN_OK);

    const struct {
        mode_t mode;
        const char *shown;
    } open_modes[] = {{0755, "mode 0755"}, {0710, "mode 0710"}, {0701, "mode 0701"},
                      {0740, "mode 0740"}, {0704, "mode 0704"}, {0777, "mode 0777"}};
    for (size_t i = 0; i < sizeof(open_modes) / sizeof(open_modes[0]); i++) {
        ck_assert_int_eq(chmod(r.dir, open_modes[i].mode), 0);
        ck_assert_int_eq(kiln_runtime_dir_check(r.dir, why, sizeof(why)), KILN_EARG);
        assert_contains(why, r.dir);
        assert_contains(why, open_modes[i].shown);
        ck_assert_int_eq(kiln_runtime_dir_check(r.dir, NULL, 0), KILN_EARG);
    }
    /* A message too long for the buffer is cut, never overrun. */
    ck_assert_int_eq(kiln_runtime_dir_check(r.dir, why, 8), KILN_EARG);
    ck_assert_uint_eq(strlen(why), 7);
    ck_assert_int_eq(chmod(r.dir, 0700), 0);
    if (give_away(r.dir)) {
        ck_assert_int_eq(kiln_runtime_dir_check(r.dir, why, sizeof(why)), KILN_EARG);
        assert_contains(why, r.dir);
        assert_contains(why, "belongs to uid 65534");
    }
    fixture_rundir_teardown(&r);
}
END_TEST

START_TEST(default_address_refuses_unsafe_dir)
{
    /* A daemon really listens in the unsafe directory, so a client that
     * skipped the check would connect and the test would see a HELLO. */
    struct fixture_rundir r;
    rundir_setup(&r, 0755);
    struct fake_server *f =
        fake_server_start_with(&(struct fake_config){.mode = FAKE_SERVE, .address = r.address});
    ck_assert_ptr_nonnull(f);
    struct kiln_error e;
    connect_default(KILN_ECONNECT, &e);
    ck_assert_str_eq(e.field, "address");
    assert_contains(e.message, "refusing to dial the default address");
    assert_contains(e.message, r.dir);
    assert_contains(e.message, "mode 0755");

    ck_assert_int_eq(chmod(r.dir, 0700), 0);
    if (give_away(r.dir)) {
        connect_default(KILN_ECONNECT, &e);
        ck_assert_str_eq(e.field, "address");
        assert_contains(e.message, r.dir);
        assert_contains(e.message, "belongs to uid 65534");
    }
    ck_assert_uint_eq(fake_server_requests(f, PROTO_HELLO, NULL), 0);

    /* Named explicitly, the same address is the caller's choice. */
    ck_assert_int_eq(chmod(r.dir, 0755), 0);
    setenv("KILN_ADDRESS", r.address, 1);
    kiln_close(connect_default(KILN_OK, &e));
    unsetenv("KILN_ADDRESS");
    kiln_close(connect_ok(r.address, NULL));
    ck_assert_uint_eq(fake_server_requests(f, PROTO_HELLO, NULL), 2);
    fake_server_stop(f);
    fixture_rundir_teardown(&r);
}
END_TEST

START_TEST(default_address_in_safe_dir_is_dialled)
{
    struct fixture_rundir r;
    rundir_setup(&r, 0700);
    struct fake_server *f =
        fake_server_start_with(&(struct fake_config){.mode = FAKE_SERVE, .address = r.address});
    ck_assert_ptr_nonnull(f);
    struct kiln_error e;
    kiln_conn *c = connect_default(KILN_OK, &e);
    ck_assert_str_eq(kiln_conn_address(c), r.address);
    ck_assert_int_eq(kiln_ping(c, &e), KILN_OK);
    kiln_close(c);
    ck_assert_uint_eq(fake_server_requests(f, PROTO_HELLO, NULL), 1);
    fake_server_stop(f);
    fixture_rundir_teardown(&r);
}
END_TEST

START_TEST(default_address_missing_dir_is_no_daemon)
{
    struct fixture_rundir r;
    rundir_setup(&r, 0);
    struct kiln_error e;
    connect_default(KILN_ECONNECT, &e);
    ck_assert_str_eq(e.field, "");
    assert_contains(e.message, "no daemon answers at ");
    assert_contains(e.message, r.address);
    assert_contains(e.message, "does not exist");
    fixture_rundir_teardown(&r);
}
END_TEST

START_TEST(foreign_protocol_session_is_ended)
{
    struct fake_server *f =
        fake_server_start_with(&(struct fake_config){.mode = FAKE_SERVE, .proto = 2});
    ck_assert_ptr_nonnull(f);
    struct kiln_error e;
    connect_fails(fake_server_address(f), 2000, KILN_EPROTO, &e);
    ck_assert_str_eq(e.field, "body.proto");
    assert_contains(e.message, "protocol 2");
    uint64_t session = 0;
    ck_assert_uint_eq(fake_server_requests(f, PROTO_HELLO, NULL), 1);
    ck_assert_uint_eq(fake_server_requests(f, PROTO_BYE, &session), 1);
    ck_assert_uint_eq(session, FAKE_SESSION);
    fake_server_stop(f);
}
END_TEST

START_TEST(close_says_bye)
{
    struct fake_server *f = fake_server_start(FAKE_SERVE);
    ck_assert_ptr_nonnull(f);
    kiln_conn *c = connect_ok(fake_server_address(f), NULL);
    ck_assert_uint_eq(fake_server_requests(f, PROTO_BYE, NULL), 0);
    kiln_close(c);
    uint64_t session = 0;
    ck_assert_uint_eq(fake_server_requests(f, PROTO_BYE, &session), 1);
    ck_assert_uint_eq(session, FAKE_SESSION);
    fake_server_stop(f);
}
END_TEST

START_TEST(decode_failure_codes)
{
    /* proto_reply_decode() failing for want of memory is our failure, not
     * the daemon's: it stays NOMEM. Anything else it reports is the
     * daemon breaking the protocol, whatever code the decoder used. */
    const struct {
        int decoder, want;
    } cases[] = {
        {KILN_ENOMEM, KILN_ENOMEM},     {KILN_EPROTO, KILN_EPROTO},    {KILN_ELIMIT, KILN_EPROTO},
        {KILN_EMALFORMED, KILN_EPROTO}, {KILN_EINTERNAL, KILN_EPROTO}, {KILN_EARG, KILN_EPROTO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proto_error pe;
        proto_error_set(&pe, cases[i].decoder, "body.x", "decoder says %d", cases[i].decoder);
        struct kiln_error e;
        ck_assert_int_eq(client_error_from_decode(&e, &pe), cases[i].want);
        ck_assert_int_eq(e.code, cases[i].want);
        ck_assert_str_eq(e.field, "body.x");
        assert_contains(e.message, "decoder says");
        ck_assert_int_eq(client_error_from_decode(NULL, &pe), cases[i].want);
    }
}
END_TEST

/* ---- against kilnd ----------------------------------------------------- */

START_TEST(connect_ping_status)
{
    struct fixture_daemon d;
    const char *extra[] = {"--workers", "2", NULL};
    start(&d, extra);
    kiln_conn *c = connect_ok(d.address, "test-client");
    ck_assert_str_eq(kiln_conn_address(c), d.address);
    const struct kiln_session *s = kiln_conn_session(c);
    ck_assert_uint_ne(s->id, 0);
    ck_assert_uint_eq(s->proto, 1);
    ck_assert_msg(strncmp(s->server, "kilnd", 5) == 0, "server name: %s", s->server);
    ck_assert_uint_gt(s->idle_timeout_ms, 0);
    ck_assert_uint_gt(s->limits.message_bytes, 0);

    struct kiln_error e;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kiln_ping(c, &e), KILN_OK);
    struct kiln_status st;
    ck_assert_int_eq(kiln_status(c, &st, &e), KILN_OK);
    ck_assert_str_eq(st.server, s->server);
    ck_assert_int_eq(st.pid, d.pid);
    ck_assert_uint_le(st.proto_min, 1);
    ck_assert_uint_ge(st.proto_max, 1);
    ck_assert_uint_eq(st.sessions, 1);
    ck_assert_uint_ge(st.sessions_total, 1);
    ck_assert_uint_ge(st.requests, 4); /* HELLO and three PINGs before this STATUS */
    ck_assert_uint_eq(st.workers, 2);
    ck_assert_uint_gt(st.mem_rss, 0);
    ck_assert(!st.draining);
    kiln_close(c);
    stop(&d);
}
END_TEST

START_TEST(two_connections_at_once)
{
    struct fixture_daemon d;
    start(&d, NULL);
    kiln_conn *a = connect_ok(d.address, "a");
    kiln_conn *b = connect_ok(d.address, "b");
    ck_assert_uint_ne(kiln_conn_session(a)->id, kiln_conn_session(b)->id);
    struct kiln_error e;
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(kiln_ping(a, &e), KILN_OK);
        ck_assert_int_eq(kiln_ping(b, &e), KILN_OK);
    }
    struct kiln_status st;
    ck_assert_int_eq(kiln_status(b, &st, &e), KILN_OK);
    ck_assert_uint_eq(st.sessions, 2);
    ck_assert_uint_ge(st.sessions_total, 2);
    kiln_close(a); /* BYE ends a's session at once */
    ck_assert_int_eq(kiln_status(b, &st, &e), KILN_OK);
    ck_assert_uint_eq(st.sessions, 1);
    kiln_close(b);
    stop(&d);
}
END_TEST

struct pinger {
    const char *address;
    int failures;
};

static void *pinger_run(void *arg)
{
    struct pinger *p = arg;
    struct kiln_connect_opts o = {.address = p->address, .timeout_ms = 5000};
    kiln_conn *c;
    if (kiln_connect(&c, &o, NULL) != KILN_OK) {
        p->failures = -1;
        return NULL;
    }
    for (int i = 0; i < 200; i++)
        p->failures += kiln_ping(c, NULL) != KILN_OK;
    kiln_close(c);
    return NULL;
}

START_TEST(connections_in_threads)
{
    /* One connection per thread is the documented rule: no shared state. */
    struct fixture_daemon d;
    start(&d, NULL);
    struct pinger p[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (struct pinger){.address = d.address};
        ck_assert_int_eq(pthread_create(&t[i], NULL, pinger_run, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(p[i].failures, 0);
    }
    stop(&d);
}
END_TEST

START_TEST(daemon_gone_times_out)
{
    struct fixture_daemon d;
    start(&d, NULL);
    struct kiln_connect_opts o = {.address = d.address, .timeout_ms = 300};
    kiln_conn *c;
    struct kiln_error e;
    ck_assert_int_eq(kiln_connect(&c, &o, &e), KILN_OK);
    stop(&d);
    double t0 = now_s();
    int rc = kiln_ping(c, &e);
    ck_assert_msg(rc == KILN_ETIMEDOUT, "ping a stopped daemon: %s: %s", kiln_err_name(rc),
                  e.message);
    kiln_close(c); /* BYE cannot be answered: costs at most the timeout */
    /* Ping and BYE each wait 300 ms; the 10 s default would take 20. */
    ck_assert_double_lt(now_s() - t0, FAIL_FAST_S / 2);
}
END_TEST

START_TEST(idle_session_expires)
{
    struct fixture_daemon d;
    const char *extra[] = {"--idle-timeout", "1", NULL};
    start(&d, extra);
    kiln_conn *c = connect_ok(d.address, "idle");
    ck_assert_uint_eq(kiln_conn_session(c)->idle_timeout_ms, 1000);
    sleep(3);
    struct kiln_error e;
    int rc = kiln_ping(c, &e);
    ck_assert_msg(rc == KILN_ESESSION, "ping an expired session: %s", kiln_err_name(rc));
    ck_assert_str_ne(e.message, "");
    kiln_conn *watcher = connect_ok(d.address, "watcher");
    struct kiln_status st;
    ck_assert_int_eq(kiln_status(watcher, &st, &e), KILN_OK);
    ck_assert_uint_ge(st.errors[KILN_ESESSION], 1);
    kiln_close(watcher);
    kiln_close(c);
    stop(&d);
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("clients");
    TCase *off = tcase_create("offline");
    tcase_set_timeout(off, 20);
    tcase_add_test(off, connect_missing_socket_fails_fast);
    tcase_add_test(off, connect_stale_socket_fails_fast);
    tcase_add_test(off, connect_tcp_refused_fails_fast);
    tcase_add_test(off, connect_uses_kiln_address);
    tcase_add_test(off, connect_rejects_bad_arguments);
    tcase_add_test(off, null_connection_is_safe);
    tcase_add_test(off, silent_daemon_times_out);
    tcase_add_test(off, garbage_reply_is_a_protocol_error);
    tcase_add_test(off, daemon_refusal_is_reported);
    tcase_add_test(off, runtime_dir_check_rules);
    tcase_add_test(off, default_address_refuses_unsafe_dir);
    tcase_add_test(off, default_address_in_safe_dir_is_dialled);
    tcase_add_test(off, default_address_missing_dir_is_no_daemon);
    tcase_add_test(off, foreign_protocol_session_is_ended);
    tcase_add_test(off, close_says_bye);
    tcase_add_test(off, decode_failure_codes);
    suite_add_tcase(s, off);
    fixture_require_kilnd();
    TCase *live = tcase_create("daemon");
    tcase_set_timeout(live, 30);
    tcase_add_test(live, connect_ping_status);
    tcase_add_test(live, two_connections_at_once);
    tcase_add_test(live, connections_in_threads);
    tcase_add_test(live, daemon_gone_times_out);
    tcase_add_test(live, idle_session_expires);
    suite_add_tcase(s, live);
    return s;
}

int main(void)
{
    return fixture_run_suite(client_suite());
}
