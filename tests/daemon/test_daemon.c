/* test_daemon.c: kilnd end to end — sessions, STATUS counters, typed errors
 * for bad input, idle timeouts, oversized messages, signals and flags.
 * Every test starts its own kilnd on a private ipc:// socket and checks
 * that it exits 0 on SIGTERM (under ASan, LSan makes a leak fail that). */
#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

/* Raw msgpack for requests the encoders refuse to build. */
static void pack_request(msgpack_sbuffer *sb, int kind, uint64_t session)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, kind);
    msgpack_pack_uint64(&pk, session);
    msgpack_pack_map(&pk, 0);
}

/* Send raw bytes; expect an error reply with `code` naming `field`. */
static void expect_error(nng_socket s, const void *buf, size_t len, int code, const char *field)
{
    nng_msg *msg;
    int rv = th_roundtrip(s, buf, len, &msg);
    ck_assert_msg(rv == 0, "no reply: %s", nng_strerror(rv));
    struct proto_reply rep;
    struct proto_error err;
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_PING, nng_msg_body(msg), nng_msg_len(msg),
                                        &err),
                     KILN_OK);
    nng_msg_free(msg);
    ck_assert_msg(rep.code == code, "expected %s, got %s (%s)", kiln_err_name(code),
                  kiln_err_name(rep.code), rep.error.message);
    if (field != NULL)
        ck_assert_str_eq(rep.error.field, field);
    ck_assert(rep.error.message[0] != '\0');
    proto_reply_fini(&rep);
}

START_TEST(two_clients_and_status)
{
    struct th_daemon d;
    th_prepare(&d);
    const char *flags[] = {"--workers", "3", "--memory-budget", "2M", NULL};
    th_start(&d, flags);
    nng_socket a = th_connect(d.addr, TIMEOUT_MS), b = th_connect(d.addr, TIMEOUT_MS);

    uint64_t sa = th_hello(a, "alpha"), sb = th_hello(b, "beta");
    ck_assert_uint_ne(sa, sb);
    ck_assert_int_eq(th_simple(a, PROTO_PING, sa, NULL), KILN_OK);
    ck_assert_int_eq(th_simple(b, PROTO_PING, sb, NULL), KILN_OK);
    ck_assert_int_eq(th_simple(b, PROTO_PING, 0, NULL), KILN_OK);
    /* Another client's id is no use with a typo in it. */
    struct proto_error err;
    ck_assert_int_eq(th_simple(a, PROTO_PING, sa ^ 1, &err), KILN_ESESSION);
    ck_assert_str_eq(err.field, "session");
    ck_assert_int_eq(th_simple(a, PROTO_STATUS, sb ^ 2, NULL), KILN_ESESSION);

    struct proto_status st;
    th_status(a, &st);
    ck_assert_str_eq(st.server, "kilnd " KILN_VERSION);
    ck_assert_uint_eq(st.proto_min, KILN_PROTO_VERSION_MIN);
    ck_assert_uint_eq(st.proto_max, KILN_PROTO_VERSION_MAX);
    ck_assert_int_eq(st.pid, d.pid);
    ck_assert_uint_eq(st.sessions, 2);
    ck_assert_uint_eq(st.sessions_total, 2);
    ck_assert_uint_eq(st.requests, 8); /* 2 HELLO, 3 PING, 2 refused, this STATUS */
    ck_assert_uint_eq(st.errors[KILN_ESESSION], 2);
    uint64_t others = 0;
    for (int c = 0; c < KILN_ERR_WIRE_COUNT; c++)
        others += c == KILN_ESESSION ? 0 : st.errors[c];
    ck_assert_uint_eq(others, 0);
    ck_assert_uint_eq(st.workers, 3);
    ck_assert_uint_eq(st.mem_budget, 2u << 20);
    ck_assert_uint_eq(st.mem_in_use, 0);
    ck_assert_uint_gt(st.mem_rss, 0);
    ck_assert(!st.draining);

    nng_close(a);
    nng_close(b);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

START_TEST(garbage_gets_typed_errors)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);

    expect_error(s, "\xc1 garbage", 9, KILN_EMALFORMED, NULL);
    expect_error(s, "", 0, KILN_EMALFORMED, NULL);
    expect_error(s, "\x93\x02\x00", 3, KILN_EMALFORMED, NULL); /* truncated */
    expect_error(s, "\x93\x02\x00\x80\x00", 5, KILN_EMALFORMED, NULL); /* trailing byte */
    expect_error(s, "\x93\x02\xa1x\x80", 5, KILN_ETYPE, "session");
    expect_error(s, "\x93\x63\x00\x80", 4, KILN_EKIND, NULL);
    /* A 5-byte header claiming four billion elements. */
    expect_error(s, "\xdd\xff\xff\xff\xff", 5, KILN_ELIMIT, NULL);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_request(&sb, PROTO_SUBMIT, 0);
    expect_error(s, sb.data, sb.size, KILN_ESESSION, "session");
    msgpack_sbuffer_destroy(&sb);

    ck_assert_int_eq(th_simple(s, PROTO_PING, 0, NULL), KILN_OK);
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.errors[KILN_EMALFORMED], 4);
    ck_assert_uint_eq(st.errors[KILN_ETYPE], 1);
    ck_assert_uint_eq(st.errors[KILN_EKIND], 1);
    ck_assert_uint_eq(st.errors[KILN_ELIMIT], 1);
    ck_assert_uint_eq(st.errors[KILN_ESESSION], 1);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

START_TEST(version_mismatch)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);

    struct proto_hello h = {.proto_min = KILN_PROTO_VERSION_MAX + 1,
                            .proto_max = KILN_PROTO_VERSION_MAX + 5};
    snprintf(h.client, sizeof(h.client), "future");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_hello(&sb, &h), KILN_OK);
    expect_error(s, sb.data, sb.size, KILN_EVERSION, "body.proto_max");

    /* A client speaking 1..7 gets 1, the highest common version. */
    msgpack_sbuffer_clear(&sb);
    h.proto_min = 1;
    h.proto_max = 7;
    ck_assert_int_eq(proto_encode_hello(&sb, &h), KILN_OK);
    struct proto_reply rep;
    ck_assert_int_eq(th_call(s, &sb, PROTO_HELLO, &rep), KILN_OK);
    ck_assert_uint_eq(rep.u.hello.proto, KILN_PROTO_VERSION_MAX);
    ck_assert_uint_eq(rep.u.hello.idle_timeout_ms, 600000);
    ck_assert_uint_eq(rep.u.hello.limits.message_bytes, KILN_LIMIT_MESSAGE_BYTES);
    ck_assert_str_eq(rep.u.hello.server, "kilnd " KILN_VERSION);
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

START_TEST(bye_release_and_submit)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    uint64_t id = th_hello(s, "leaving");

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    uint64_t vars[] = {0, 7, 7, UINT64_MAX};
    ck_assert_int_eq(proto_encode_release(&sb, id, vars, 4), KILN_OK);
    struct proto_reply rep;
    ck_assert_int_eq(th_call(s, &sb, PROTO_RELEASE, &rep), KILN_OK);
    ck_assert_uint_eq(rep.u.release.released, 0);
    ck_assert_uint_eq(rep.u.release.unknown, 4);
    proto_reply_fini(&rep);

    /* A SUBMIT without nodes, and a FETCH of a var never kept. */
    msgpack_sbuffer_clear(&sb);
    pack_request(&sb, PROTO_SUBMIT, id);
    expect_error(s, sb.data, sb.size, KILN_EMISSING, "body.nodes");
    msgpack_sbuffer_clear(&sb);
    uint64_t missing = 7;
    ck_assert_int_eq(proto_encode_fetch(&sb, id, &missing, 1, 1000), KILN_OK);
    expect_error(s, sb.data, sb.size, KILN_ENOTFOUND, "body.vars[0]");

    ck_assert_int_eq(th_simple(s, PROTO_BYE, id, NULL), KILN_OK);
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.sessions, 0);
    ck_assert_uint_eq(st.sessions_total, 1);
    ck_assert_int_eq(th_simple(s, PROTO_PING, id, NULL), KILN_ESESSION);
    ck_assert_int_eq(th_simple(s, PROTO_BYE, id, NULL), KILN_ESESSION);
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_encode_release(&sb, id, vars, 1), KILN_OK);
    expect_error(s, sb.data, sb.size, KILN_ESESSION, "session");

    msgpack_sbuffer_destroy(&sb);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

START_TEST(idle_sessions_end)
{
    struct th_daemon d;
    th_prepare(&d);
    const char *flags[] = {"--idle-timeout", "1", NULL};
    th_start(&d, flags);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    uint64_t idle = th_hello(s, "sleepy"), busy = th_hello(s, "busy");

    /* Ping one session every 200 ms for 1.6 s; leave the other alone. */
    for (int i = 0; i < 8; i++) {
        th_sleep_ms(200);
        ck_assert_int_eq(th_simple(s, PROTO_PING, busy, NULL), KILN_OK);
    }
    ck_assert_int_eq(th_simple(s, PROTO_PING, idle, NULL), KILN_ESESSION);
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.sessions, 1);
    ck_assert(th_log_contains(&d, "reason=\"idle\""));
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

static void count_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    atomic_int *n = arg;
    atomic_fetch_add(n, 1);
}

START_TEST(oversized_message_drops_only_its_connection)
{
    struct th_daemon d;
    th_prepare(&d);
    const char *flags[] = {"--max-message", "4K", NULL};
    th_start(&d, flags);
    nng_socket good = th_connect(d.addr, TIMEOUT_MS);
    uint64_t id = th_hello(good, "good");

    atomic_int removed;
    atomic_init(&removed, 0);
    nng_socket bad;
    ck_assert_int_eq(nng_req0_open(&bad), 0);
    ck_assert_int_eq(nng_pipe_notify(bad, NNG_PIPE_EV_REM_POST, count_removed, &removed), 0);
    ck_assert_int_eq(nng_socket_set_ms(bad, NNG_OPT_RECVTIMEO, 500), 0);
    ck_assert_int_eq(nng_socket_set_ms(bad, NNG_OPT_RECONNMINT, 60000), 0); /* see th_connect */
    ck_assert_int_eq(nng_socket_set_ms(bad, NNG_OPT_RECONNMAXT, 60000), 0);
    ck_assert_int_eq(nng_dial(bad, d.addr, NULL, 0), 0);

    size_t len = 8192;
    char *big = calloc(1, len);
    ck_assert_ptr_nonnull(big);
    nng_msg *reply = NULL;
    ck_assert_int_eq(th_roundtrip(bad, big, len, &reply), NNG_ETIMEDOUT);
    free(big);
    ck_assert_int_ge(atomic_load(&removed), 1);
    nng_close(bad);

    ck_assert_int_eq(th_simple(good, PROTO_PING, id, NULL), KILN_OK);
    nng_close(good);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

START_TEST(sigterm_with_open_sessions_exits_clean)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    th_hello(s, "one");
    th_hello(s, "two");
    ck_assert_int_eq(th_stop(&d), 0); /* also removes the log */
    nng_close(s);
}
END_TEST

START_TEST(client_strings_cannot_forge_log_lines)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    th_hello(s, "evil\nts=0 level=error msg=\"forged\" \\");
    th_simple(s, PROTO_PING, 0, NULL);
    ck_assert(th_log_contains(&d, "client=\"evil\\x0ats=0 level=error msg=\\\"forged\\\" \\\\\""));
    ck_assert(!th_log_contains(&d, "\nts=0"));
    FILE *f = fopen(d.log, "r");
    ck_assert_ptr_nonnull(f);
    char line[2048];
    while (fgets(line, sizeof(line), f) != NULL)
        ck_assert_msg(strncmp(line, "ts=0", 4) != 0, "forged line: %s", line);
    fclose(f);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

START_TEST(bad_flags_exit_2)
{
    static const char *const cases[][4] = {
        {"kilnd", "--bogus", NULL},
        {"kilnd", "--workers", "0", NULL},
        {"kilnd", "--workers", "3x", NULL},
        {"kilnd", "--log-level", "loud", NULL},
        {"kilnd", "--idle-timeout", "-1", NULL},
        {"kilnd", "--memory-budget", "99999999999G", NULL},
        {"kilnd", "--max-message", "1G", NULL},
        {"kilnd", "--listen", "udp://x", NULL},
        {"kilnd", "--listen", "tls+tcp://127.0.0.1:1", NULL},
        {"kilnd", "--listen", NULL},
        {"kilnd", "extra", NULL},
    };
    struct th_daemon d;
    th_prepare(&d);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = th_wait(th_spawn(&d, cases[i], NULL), 5000);
        ck_assert_msg(status == 2, "%s %s: exit %d, want 2", cases[i][1],
                      cases[i][2] ? cases[i][2] : "", status);
    }
    ck_assert(th_log_contains(&d, "not supported yet"));
    const char *help[] = {"kilnd", "--help", NULL};
    ck_assert_int_eq(th_wait(th_spawn(&d, help, NULL), 5000), 0);
    ck_assert(th_log_contains(&d, "--idle-timeout"));
    const char *version[] = {"kilnd", "--version", NULL};
    ck_assert_int_eq(th_wait(th_spawn(&d, version, NULL), 5000), 0);
    ck_assert(th_log_contains(&d, "kilnd " KILN_VERSION));
    th_cleanup(&d);
}
END_TEST

START_TEST(address_in_use_exits_1)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    const char *argv[] = {"kilnd", "--listen", d.addr, NULL};
    ck_assert_int_eq(th_wait(th_spawn(&d, argv, NULL), 5000), 1);
    ck_assert(th_log_contains(&d, "address in use"));
    /* The first daemon still serves. */
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    ck_assert_int_eq(th_simple(s, PROTO_PING, 0, NULL), KILN_OK);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

START_TEST(default_address_in_private_runtime_dir)
{
    struct th_daemon d;
    th_prepare(&d);
    char rundir[256], addr[300];
    snprintf(rundir, sizeof(rundir), "%s/kiln", d.dir);
    snprintf(addr, sizeof(addr), "ipc://%s/kilnd.sock", rundir);

    const char *argv[] = {"kilnd", NULL};
    d.pid = th_spawn(&d, argv, d.dir);
    uint64_t deadline = th_now_ms() + 10000;
    struct stat st;
    while (stat(rundir, &st) != 0 || access(addr + 6, F_OK) != 0) {
        ck_assert_msg(th_now_ms() < deadline, "no socket at %s", addr);
        th_sleep_ms(10);
    }
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    nng_socket s = th_connect(addr, TIMEOUT_MS);
    ck_assert_int_eq(th_simple(s, PROTO_PING, 0, NULL), KILN_OK);
    nng_close(s);
    kill(d.pid, SIGTERM);
    ck_assert_int_eq(th_wait(d.pid, 15000), 0);

    /* A runtime directory others can read is refused. */
    ck_assert_int_eq(chmod(rundir, 0750), 0);
    ck_assert_int_eq(th_wait(th_spawn(&d, argv, d.dir), 5000), 1);
    ck_assert(th_log_contains(&d, "must be 0700"));
    d.pid = 0;
    th_cleanup(&d);
}
END_TEST

/* NNG 1.5.2's ipc listener stops attaching new connections after a peer
 * hangs up before the handshake; kilnd's watchdog must notice and reopen
 * it, so that new clients are served again within a few seconds. Reopening
 * drops the connections that listener had accepted, but sessions belong to
 * clients, not connections: a client that dials again keeps its session. */
START_TEST(hangup_before_handshake_does_not_lock_out_clients)
{
    struct th_daemon d;
    th_prepare(&d);
    /* NNG 1.5.2 leaks the objects of a wedged listener when it is closed
     * (about 10 KB per incident, inside libnng; see daemon/watchdog.h), so
     * LeakSanitizer would fail this daemon's exit for NNG's sake. Leak
     * checking stays on for every other test: the variable is restored as
     * soon as this daemon has started. */
    const char *asan = getenv("ASAN_OPTIONS");
    char saved[512], opts[600];
    snprintf(saved, sizeof(saved), "%s", asan ? asan : "");
    snprintf(opts, sizeof(opts), "%s%sdetect_leaks=0", saved, saved[0] ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    th_start(&d, NULL);
    if (asan != NULL)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    nng_socket before = th_connect(d.addr, TIMEOUT_MS);
    ck_assert_uint_ne(th_hello(before, "before"), 0);
    nng_close(before);

    for (int round = 0; round < 2; round++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        ck_assert_uint_lt(strlen(d.addr + 6), sizeof(sa.sun_path));
        memcpy(sa.sun_path, d.addr + 6, strlen(d.addr + 6) + 1);
        ck_assert_int_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        close(fd);

        /* A new client gets in within the watchdog's period plus its probe
         * timeout (about 2 s); allow generous slack for a loaded machine. */
        uint64_t deadline = th_now_ms() + 15000;
        bool served = false;
        while (!served && th_now_ms() < deadline) {
            nng_socket s = th_connect(d.addr, 1000);
            struct proto_error err;
            /* (Sessions end with their connection now: PING needs none.) */
            served = th_try_simple(s, PROTO_PING, 0, &err) == KILN_OK;
            nng_close(s);
        }
        ck_assert_msg(served, "no new client was served after a hang-up (round %d)", round);
    }
    /* Usually the hang-up wedged the listener and the watchdog reopened
     * it; on a loaded machine NNG sometimes finishes the aborted handshake
     * cleanly and nothing wedges. Either way clients got in, which is what
     * is asserted above; the log only says which path ran. */
    if (!th_log_contains(&d, "reopening it"))
        fprintf(stderr, "note: the listener did not wedge this time\n");
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

static Suite *daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, two_clients_and_status);
    tcase_add_test(tc, garbage_gets_typed_errors);
    tcase_add_test(tc, version_mismatch);
    tcase_add_test(tc, bye_release_and_submit);
    tcase_add_test(tc, idle_sessions_end);
    tcase_add_test(tc, oversized_message_drops_only_its_connection);
    tcase_add_test(tc, sigterm_with_open_sessions_exits_clean);
    tcase_add_test(tc, client_strings_cannot_forge_log_lines);
    suite_add_tcase(s, tc);
    TCase *life = tcase_create("life");
    tcase_set_timeout(life, 30);
    tcase_add_test(life, bad_flags_exit_2);
    tcase_add_test(life, address_in_use_exits_1);
    tcase_add_test(life, default_address_in_private_runtime_dir);
    tcase_add_test(life, hangup_before_handshake_does_not_lock_out_clients);
    suite_add_tcase(s, life);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        setenv("KILND_PATH", argv[1], 1);
    SRunner *sr = srunner_create(daemon_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nng_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
