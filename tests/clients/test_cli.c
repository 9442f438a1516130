/* test_cli.c: the `kiln` command, run as a program (fork/exec) the way a
 * user or a script runs it: exit status, stdout and stderr are the
 * contract. Tests that need a daemon start a private kilnd and are skipped
 * when the build has none. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "proto.h" /* PROTO_HELLO, for the fake's counters */

/* Run kiln; the caller gives r to fixture_run_fini(). */
static void run(struct fixture_run *r, const char *env_address, const char *const *argv)
{
    ck_assert_int_eq(fixture_run_cli(r, env_address, argv), 0);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#define assert_contains(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in:\n%s", (needle), (hay))

/* ---- offline ----------------------------------------------------------- */

START_TEST(no_daemon_is_one_clear_line)
{
    char dir[] = "/tmp/kiln-test-XXXXXX", addr[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(addr, sizeof(addr), "ipc://%s/kilnd.sock", dir);
    /* A long timeout that must not be waited out: no daemon is a fast failure. */
    const char *cmds[][5] = {{"--timeout", "60000", "ping", NULL},
                             {"--timeout", "60000", "status", NULL},
                             {"--timeout", "60000", "status", "--json", NULL}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        struct fixture_run r;
        run(&r, addr, cmds[i]);
        ck_assert_int_eq(r.status, 1);
        ck_assert_str_eq(r.out, "");
        ck_assert_int_eq(count_lines(r.err), 1);
        assert_contains(r.err, "kiln: no daemon answers at ");
        assert_contains(r.err, addr);
        assert_contains(r.err, "kilnd");
        ck_assert_double_lt(r.secs, 20.0);
        fixture_run_fini(&r);
    }
    rmdir(dir);
}
END_TEST

START_TEST(address_flag_wins_over_environment)
{
    struct fixture_run r;
    const char *argv[] = {"--address", "tcp://127.0.0.1:1", "ping", NULL};
    run(&r, "ipc:///nonexistent/kilnd.sock", argv);
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "no daemon answers at tcp://127.0.0.1:1 ");
    fixture_run_fini(&r);
}
END_TEST

START_TEST(bad_usage_exits_2)
{
    const char *cases[][4] = {
        {NULL},
        {"bogus", NULL},
        {"--frob", "ping", NULL},
        {"--timeout", "0", "ping", NULL},
        {"--timeout", "x", "ping", NULL},
        {"--address", NULL},
        {"ping", "-c", "0", NULL},
        {"ping", "-c", "many", NULL},
        {"ping", "extra", NULL},
        {"status", "--frob", NULL},
        {"status", "extra", NULL},
        {"version", "extra", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fixture_run r;
        run(&r, "tcp://127.0.0.1:1", cases[i]);
        ck_assert_msg(r.status == 2, "case %zu (%s): exit %d, stderr: %s", i,
                      cases[i][0] ? cases[i][0] : "no args", r.status, r.err);
        ck_assert_str_ne(r.err, "");
        fixture_run_fini(&r);
    }
}
END_TEST

START_TEST(help_and_version)
{
    const char *cases[][2] = {{"--help", NULL}, {"help", NULL}, {"-h", NULL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fixture_run r;
        run(&r, NULL, cases[i]);
        ck_assert_int_eq(r.status, 0);
        assert_contains(r.out, "usage: kiln");
        assert_contains(r.out, "status [--json]");
        fixture_run_fini(&r);
    }
    struct fixture_run r;
    const char *argv[] = {"version", NULL};
    run(&r, NULL, argv);
    ck_assert_int_eq(r.status, 0);
    assert_contains(r.out, "kiln " KILN_VERSION " (protocol 1..1)");
    fixture_run_fini(&r);
}
END_TEST

START_TEST(daemon_error_names_the_code)
{
    struct fake_server *f = fake_server_start(FAKE_REFUSE);
    ck_assert_ptr_nonnull(f);
    struct fixture_run r;
    const char *argv[] = {"status", NULL};
    run(&r, fake_server_address(f), argv);
    ck_assert_int_eq(r.status, 1);
    ck_assert_int_eq(count_lines(r.err), 1);
    assert_contains(r.err, "AUTH");
    assert_contains(r.err, "token refused by the fake daemon");
    fixture_run_fini(&r);
    fake_server_stop(f);
}
END_TEST

START_TEST(silent_daemon_times_out)
{
    struct fake_server *f = fake_server_start(FAKE_SILENT);
    ck_assert_ptr_nonnull(f);
    struct fixture_run r;
    const char *argv[] = {"--timeout", "200", "ping", NULL};
    run(&r, fake_server_address(f), argv);
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "kiln: connect: error TIMEDOUT: ");
    ck_assert_double_lt(r.secs, 10.0); /* the 200 ms timeout, not the 10 s default */
    fixture_run_fini(&r);
    fake_server_stop(f);
}
END_TEST

/* Run `kiln status` against a fake that refuses HELLO with code, field
 * and message; check stderr is exactly `want`. */
static void refused_says(int code, const char *field, const char *message, const char *want)
{
    struct fake_server *f = fake_server_start_with(&(struct fake_config){
        .mode = FAKE_REFUSE, .code = code, .field = field, .message = message});
    ck_assert_ptr_nonnull(f);
    struct fixture_run r;
    const char *argv[] = {"status", NULL};
    run(&r, fake_server_address(f), argv);
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, want);
    fixture_run_fini(&r);
    fake_server_stop(f);
}

START_TEST(error_labels_say_who_failed)
{
    refused_says(0, NULL, NULL,
                 "kiln: connect: daemon error AUTH (body.token): token refused by the fake "
                 "daemon\n");
    refused_says(KILN_EINTERNAL, "", "oops", "kiln: connect: daemon error INTERNAL: oops\n");
    /* A code this client has no name for: a newer daemon's. Still the daemon's. */
    refused_says(KILN_ERR_WIRE_COUNT, "body.x", "from the future",
                 "kiln: connect: daemon error code 21 (body.x): from the future\n");
    _Static_assert(KILN_ERR_WIRE_COUNT == 21, "the message above names the first unused code");
    refused_says(99, "", "last wire code", "kiln: connect: daemon error code 99: last wire code\n");
    /* NOMEM may be the daemon's or libkiln's own: no claim either way. */
    refused_says(KILN_ENOMEM, "", "out of memory", "kiln: connect: error NOMEM: out of memory\n");
}
END_TEST

/* Daemon text with terminal escapes (OSC retitle, CSI, BEL, a C1 CSI),
 * bytes that are not UTF-8, a valid non-ASCII letter and a backslash; and
 * how the table and the JSON must show it. ("1m" is a literal of its own
 * so that \x9b does not swallow the 1.) */
#define HOSTILE                                                                                    \
    "\x1b]0;pwned\x07\x1b[2J\xff\xfe caf\xc3\xa9 \xc2\x9b"                                         \
    "1m\\"
#define HOSTILE_TEXT                                                                               \
    "\\x1b]0;pwned\\x07\\x1b[2J\\xff\\xfe caf\xc3\xa9 \\xc2\\x9b"                                  \
    "1m\\\\"
#define HOSTILE_JSON                                                                               \
    "\\u001b]0;pwned\\u0007\\u001b[2J\\ufffd\\ufffd caf\xc3\xa9 \\u009b"                           \
    "1m\\\\"

/* No byte that a terminal acts on: C0 other than newline, DEL, and the
 * first byte of an escape (0x1b) or of a UTF-8 C1 control (0xc2 0x80..0x9f),
 * nor a byte that can never appear in UTF-8. */
static void assert_inert(const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        ck_assert_msg(*p >= 0x20 || *p == '\n', "control byte 0x%02x in:\n%s", *p, s);
        ck_assert_msg(*p != 0x7f && *p != 0xff && *p != 0xfe, "byte 0x%02x in:\n%s", *p, s);
        ck_assert_msg(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f), "C1 control in:\n%s", s);
    }
}

START_TEST(daemon_error_text_is_escaped)
{
    refused_says(KILN_EAUTH, "body.\x1b[1m", HOSTILE,
                 "kiln: connect: daemon error AUTH (body.\\x1b[1m): " HOSTILE_TEXT "\n");
    /* PING's error goes to stdout, in ping's own line. */
    struct fake_server *f = fake_server_start_with(
        &(struct fake_config){.mode = FAKE_SERVE, .code = KILN_ESESSION, .message = HOSTILE});
    ck_assert_ptr_nonnull(f);
    struct fixture_run r;
    const char *argv[] = {"ping", "-c", "1", NULL};
    run(&r, fake_server_address(f), argv);
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.out, ": seq=1 SESSION: " HOSTILE_TEXT "\n");
    assert_inert(r.out);
    fixture_run_fini(&r);
    fake_server_stop(f);
}
END_TEST

START_TEST(hostile_server_name_is_escaped)
{
    struct fake_server *f =
        fake_server_start_with(&(struct fake_config){.mode = FAKE_SERVE, .server = HOSTILE});
    ck_assert_ptr_nonnull(f);
    struct fixture_run r;
    const char *table[] = {"status", NULL};
    run(&r, fake_server_address(f), table);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "server          " HOSTILE_TEXT "\n");
    /* This daemon reports no JIT: the table says so. */
    assert_contains(r.out, "executor        reference interpreter\n");
    assert_contains(r.out, "cuda 0          " HOSTILE_TEXT ", compute 9.0, ");
    assert_contains(r.out, "nvrtc           " HOSTILE_TEXT "\n");
    assert_inert(r.out);
    fixture_run_fini(&r);

    const char *json[] = {"status", "--json", NULL};
    run(&r, fake_server_address(f), json);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "\"server\": \"" HOSTILE_JSON "\",\n");
    assert_contains(r.out, "\"jit\": {\"enabled\": false, \"kernels_compiled\": 0,");
    assert_contains(r.out,
                    "\"devices\": {\"cuda\": [{\"name\": \"" HOSTILE_JSON "\", \"cc_major\": 9,");
    assert_inert(r.out);
    int valid = fixture_json_valid(r.out);
    if (valid < 0)
        fprintf(stderr, "python3 not found: JSON checked by bytes only\n");
    else
        ck_assert_msg(valid == 1, "not valid JSON in UTF-8:\n%s", r.out);
    fixture_run_fini(&r);
    fake_server_stop(f);
}
END_TEST

START_TEST(unsafe_default_dir_is_refused)
{
    struct fixture_rundir d;
    ck_assert_int_eq(fixture_rundir_setup(&d, 0755), 0);
    struct fake_server *f =
        fake_server_start_with(&(struct fake_config){.mode = FAKE_SERVE, .address = d.address});
    ck_assert_ptr_nonnull(f);
    struct fixture_run r;
    const char *argv[] = {"status", NULL};
    run(&r, NULL, argv); /* no --address, no KILN_ADDRESS: the default */
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.out, "");
    ck_assert_int_eq(count_lines(r.err), 1);
    assert_contains(r.err, "kiln: connect: error CONNECT (address): refusing to dial the default "
                           "address ");
    assert_contains(r.err, d.dir);
    assert_contains(r.err, "mode 0755");
    fixture_run_fini(&r);
    ck_assert_uint_eq(fake_server_requests(f, PROTO_HELLO, NULL), 0);

    ck_assert_int_eq(chmod(d.dir, 0700), 0);
    run(&r, NULL, argv);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "server          fake kilnd\n");
    assert_contains(r.out, d.address);
    fixture_run_fini(&r);
    fake_server_stop(f);
    fixture_rundir_teardown(&d);
}
END_TEST

START_TEST(missing_default_dir_is_no_daemon)
{
    struct fixture_rundir d;
    ck_assert_int_eq(fixture_rundir_setup(&d, 0), 0);
    struct fixture_run r;
    const char *argv[] = {"ping", NULL};
    run(&r, NULL, argv);
    ck_assert_int_eq(r.status, 1);
    char want[256];
    snprintf(want, sizeof(want),
             "kiln: no daemon answers at %s (start one with \"kilnd\", or set KILN_ADDRESS)\n",
             d.address);
    ck_assert_str_eq(r.err, want);
    fixture_run_fini(&r);
    fixture_rundir_teardown(&d);
}
END_TEST

/* ---- against kilnd ----------------------------------------------------- */

START_TEST(ping_prints_each_round_trip)
{
    struct fixture_daemon d;
    ck_assert_int_eq(fixture_daemon_start(&d, NULL), 0);
    struct fixture_run r;
    const char *argv[] = {"--address", d.address, "ping", "-c", "3", NULL};
    run(&r, NULL, argv);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    char line[256];
    for (int seq = 1; seq <= 3; seq++) {
        snprintf(line, sizeof(line), "pong from %s: seq=%d time=", d.address, seq);
        assert_contains(r.out, line);
    }
    assert_contains(r.out, "3 sent, 3 received, 0 lost, time min/avg/max = ");
    ck_assert_str_eq(r.err, "");
    fixture_run_fini(&r);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

START_TEST(kiln_address_is_honoured)
{
    struct fixture_daemon d;
    ck_assert_int_eq(fixture_daemon_start(&d, NULL), 0);
    struct fixture_run r;
    const char *argv[] = {"ping", "-c", "1", NULL};
    run(&r, d.address, argv);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, d.address);
    fixture_run_fini(&r);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

START_TEST(status_table_has_every_row)
{
    struct fixture_daemon d;
    const char *extra[] = {"--workers", "3", NULL};
    ck_assert_int_eq(fixture_daemon_start(&d, extra), 0);
    struct fixture_run r;
    const char *argv[] = {"status", NULL};
    run(&r, d.address, argv);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    char pid[64];
    snprintf(pid, sizeof(pid), "\npid             %d\n", (int) d.pid);
    assert_contains(r.out, "server          kilnd");
    assert_contains(r.out, pid);
    assert_contains(r.out, "\nprotocol        1 ");
    assert_contains(r.out, "\nuptime          ");
    assert_contains(r.out, "\nsessions        1\n");
    assert_contains(r.out, "\nsessions total  ");
    assert_contains(r.out, "\nrequests        ");
    assert_contains(r.out, "\nworkers         3\n");
    assert_contains(r.out, "\nmemory in use   ");
    assert_contains(r.out, "\nmemory budget   ");
    assert_contains(r.out, "\nmemory RSS      ");
    assert_contains(r.out, "\nerrors          ");
    assert_contains(r.out, "\ndraining        no\n");
    /* Devices, or why none; and NVRTC's version, or why none. */
    ck_assert(strstr(r.out, "\ncuda 0          ") != NULL ||
              strstr(r.out, "\ncuda            ") != NULL);
    assert_contains(r.out, "\nnvrtc           ");
    fixture_run_fini(&r);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

START_TEST(status_json_parses)
{
    struct fixture_daemon d;
    ck_assert_int_eq(fixture_daemon_start(&d, NULL), 0);
    struct fixture_run r;
    const char *argv[] = {"status", "--json", NULL};
    run(&r, d.address, argv);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    char pid[64];
    snprintf(pid, sizeof(pid), "\"pid\": %d,", (int) d.pid);
    assert_contains(r.out, pid);
    const char *keys[] = {"\"server\": \"kilnd",       "\"uptime_ms\": ",
                          "\"sessions_total\": ",      "\"errors\": {\"MALFORMED\": ",
                          "\"memory\": {\"in_use\": ", "\"draining\": false",
                          "\"devices\": {\"cuda\": [", "\"nvrtc_why\": "};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_contains(r.out, keys[i]);
    int valid = fixture_json_valid(r.out);
    if (valid < 0)
        fprintf(stderr, "python3 not found: JSON checked by keys only\n");
    else
        ck_assert_msg(valid == 1, "not valid JSON:\n%s", r.out);
    fixture_run_fini(&r);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *off = tcase_create("offline");
    tcase_set_timeout(off, 30);
    tcase_add_test(off, no_daemon_is_one_clear_line);
    tcase_add_test(off, address_flag_wins_over_environment);
    tcase_add_test(off, bad_usage_exits_2);
    tcase_add_test(off, help_and_version);
    tcase_add_test(off, daemon_error_names_the_code);
    tcase_add_test(off, silent_daemon_times_out);
    tcase_add_test(off, error_labels_say_who_failed);
    tcase_add_test(off, daemon_error_text_is_escaped);
    tcase_add_test(off, hostile_server_name_is_escaped);
    tcase_add_test(off, unsafe_default_dir_is_refused);
    tcase_add_test(off, missing_default_dir_is_no_daemon);
    suite_add_tcase(s, off);
    fixture_require_kilnd();
    TCase *live = tcase_create("daemon");
    tcase_set_timeout(live, 30);
    tcase_add_test(live, ping_prints_each_round_trip);
    tcase_add_test(live, kiln_address_is_honoured);
    tcase_add_test(live, status_table_has_every_row);
    tcase_add_test(live, status_json_parses);
    suite_add_tcase(s, live);
    return s;
}

int main(void)
{
    return fixture_run_suite(cli_suite());
}
