/* test_submit.c: `kiln submit FILE.json`, run as a program against graph
 * files the tests write: the printed values, every kind of bad file
 * (named by line and column, or by node and field, and refused before
 * anything is dialled), the daemon's refusals, and exit statuses. Also
 * checks the command's op and dtype names against PROTOCOL.md's tables. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h" /* the name tables */
#include "fixture.h"

#define DEAD_ADDRESS "tcp://127.0.0.1:1" /* nothing listens: a dial would fail */

#define assert_contains(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in:\n%s", (needle), (hay))

/* A private directory for the graph files of one test. */
static char tmpdir[64];

static void files_setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kiln-submit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void files_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    (void) !system(cmd);
}

/* Write text to <tmpdir>/name; returns the path (static, one at a time). */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ---- names against PROTOCOL.md ---------------------------------------- */

/* Split a markdown table row into trimmed cells; returns the count. */
static int cells(char *line, char **out, int max)
{
    int n = 0;
    char *p = strchr(line, '|');
    while (p != NULL && n < max) {
        char *next = strchr(p + 1, '|');
        if (next == NULL)
            break;
        *next = '\0';
        char *c = p + 1;
        while (*c == ' ')
            c++;
        for (char *e = c + strlen(c); e > c && e[-1] == ' ';)
            *--e = '\0';
        out[n++] = c;
        p = next;
    }
    return n;
}

/* "16–27" or "52, 53" or "48": the numbers of a table row, in order. */
static int numbers(const char *s, long *out, int max)
{
    const char *dash = strstr(s, "\xe2\x80\x93"); /* an en dash */
    if (dash != NULL) {
        long a = strtol(s, NULL, 10), b = strtol(dash + 3, NULL, 10);
        int n = 0;
        for (long v = a; v <= b && n < max; v++)
            out[n++] = v;
        return n;
    }
    int n = 0;
    for (const char *p = s; *p && n < max;) {
        char *end;
        out[n++] = strtol(p, &end, 10);
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return n;
}

/* Check a row's numbers against its comma-separated names. */
static int check_row(const char *nums, char *names, const struct cli_names *t, bool in_table)
{
    long v[32];
    int n = numbers(nums, v, 32), k = 0;
    for (char *save, *name = strtok_r(names, ", ", &save); name;
         name = strtok_r(NULL, ", ", &save)) {
        ck_assert_msg(k < n, "more names than numbers in \"%s\"", nums);
        uint32_t got;
        if (in_table) {
            ck_assert_msg(cli_name_find(t, name, &got) == 0, "no name \"%s\" in the CLI", name);
            ck_assert_msg(got == (uint32_t) v[k], "%s: the CLI says %u, PROTOCOL.md %ld", name, got,
                          v[k]);
            ck_assert_str_eq(cli_name_of(t, got), name);
        } else {
            ck_assert_msg(cli_name_find(t, name, &got) != 0, "reserved \"%s\" is accepted", name);
        }
        k++;
    }
    ck_assert_msg(k == n, "%d names for %d numbers in \"%s\"", k, n, nums);
    return k;
}

START_TEST(names_match_protocol)
{
    char path[512];
    const char *root = getenv("KILN_SOURCE_ROOT");
    ck_assert_ptr_nonnull(root);
    snprintf(path, sizeof(path), "%s/protocol/PROTOCOL.md", root);
    char *text = read_text(path);
    int ops = 0, dtypes = 0;
    enum { NONE, OPS, DTYPES } in = NONE;
    for (char *save, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "###", 3) == 0)
            in = strcmp(line, "### Ops") == 0      ? OPS
                 : strcmp(line, "### Dtypes") == 0 ? DTYPES
                                                   : NONE;
        if (in == NONE || line[0] != '|' || strstr(line, "---") || strstr(line, "| number |"))
            continue;
        char *c[16];
        int n = cells(line, c, 16);
        if (in == OPS && n >= 2)
            ops += check_row(c[0], c[1], &cli_op_names, true);
        for (int at = 0; in == DTYPES && at + 1 < n; at += 4) {
            bool reserved = n > at + 2 && strstr(c[at + 2], "reserved") != NULL;
            dtypes += check_row(c[at], c[at + 1], &cli_dtype_names, !reserved) * !reserved;
        }
    }
    ck_assert_int_eq(ops, (int) cli_op_names.n); /* every name in the CLI is in the spec */
    ck_assert_int_eq(dtypes, (int) cli_dtype_names.n);
    ck_assert_int_eq(dtypes, 7);
    ck_assert_int_gt(ops, 50);
    /* reduce_op and dist names are in the node table's text. */
    snprintf(path, sizeof(path), "%s/protocol/PROTOCOL.md", root);
    text = read_text(path);
    assert_contains(text, "1 add, 2 mul, 3 max, 4 min, 5 mean");
    assert_contains(text, "1 uniform on [0, 1), 2 standard normal");
    const char *reduce[] = {"add", "mul", "max", "min", "mean"};
    for (uint32_t i = 0; i < 5; i++)
        ck_assert_str_eq(cli_name_of(&cli_reduce_op_names, i + 1), reduce[i]);
    ck_assert_str_eq(cli_name_of(&cli_dist_names, 1), "uniform");
    ck_assert_str_eq(cli_name_of(&cli_dist_names, 2), "normal");
}
END_TEST

/* ---- without a daemon ------------------------------------------------- */

static void run(struct fixture_run *r, const char *const *argv)
{
    ck_assert_int_eq(fixture_run_cli(r, DEAD_ADDRESS, argv), 0);
}

START_TEST(help_documents_submit)
{
    struct fixture_run r;
    const char *argv[] = {"--help", NULL};
    run(&r, argv);
    ck_assert_int_eq(r.status, 0);
    assert_contains(r.out, "submit FILE.json [--fetch ID,...]");
    assert_contains(r.out, "\"nan\", \"inf\" and \"-inf\"");
    assert_contains(r.out, "exit status: 0 success, 1 failure");
    fixture_run_fini(&r);
}
END_TEST

START_TEST(usage_exits_2)
{
    const char *file = write_file("g.json", "{\"nodes\": [{\"id\": 1, \"op\": 2}]}");
    const char *cases[][6] = {
        {"submit", NULL},
        {"submit", file, "extra", NULL},
        {"submit", file, "--fetch", "x", NULL},
        {"submit", file, "--fetch", "0", NULL},
        {"submit", file, "--fetch", "1,,2", NULL},
        {"submit", file, "--fetch", "1,", NULL},
        {"submit", file, "--fetch", "-1", NULL},
        {"submit", file, "--wait", "-1", NULL},
        {"submit", file, "--wait", "600001", NULL},
        {"submit", "--frob", file, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fixture_run r;
        run(&r, cases[i]);
        ck_assert_msg(r.status == 2, "case %zu: exit %d, stderr: %s", i, r.status, r.err);
        ck_assert_str_eq(r.out, "");
        assert_contains(r.err, "usage: kiln submit FILE.json");
        fixture_run_fini(&r);
    }
}
END_TEST

static const struct {
    const char *json;
    const char *want; /* in stderr, after "kiln: submit: <path>: " */
} bad_files[] = {
    {"{\"nodes\": [\n  {\"id\": 1, \"op\": 1,, }\n]}",
     "line 2, column 21: invalid JSON: string or '}' expected near ','"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 2}],\n \"nodes\": []}",
     "line 2, column 8: invalid JSON: duplicate object key"},
    {"[1, 2]", "the file must hold one object"},
    {"{\"nodes\": [{\"id\": 1, \"op\": \"slice\", \"in\": [2], \"starts\": [0, 1.5]}]}",
     "nodes[0] (id 1): starts[1]: must be an integer"},
    {"{\"nodes\": [{\"id\": 1, \"op\": \"pad\", \"in\": [2], \"pads\": 3}]}",
     "nodes[0] (id 1): pads: must be an array"},
    {"{\"nodes\": [{\"id\": 1, \"op\": \"pad\", \"in\": [2],\n"
     "  \"pads\": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}]}",
     "nodes[0] (id 1): pads: holds 17 elements, at most 16 are allowed"},
    {"{\"nodes\": [{\"id\": 1, \"op\": \"matmul\", \"in\": [2, 2], \"trans\": [0, 1, 0]}]}",
     "nodes[0] (id 1): trans: holds 3 elements, at most 2 are allowed"},
    {"{\"nodes\": [{\"id\": 1, \"op\": \"conv2d\", \"in\": [2, 3], \"groups\": -1}]}",
     "nodes[0] (id 1): groups: must be an integer in 0.."},
    {"{\"nodes\": []}", "nodes: must be an array of 1..65536 nodes"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 2}], \"kept\": [1]}", "kept: unknown field"},
    {"{\"nodes\": [{\"op\": 2}]}", "nodes[0]: id: must be an integer in 1.."},
    {"{\"nodes\": [{\"id\": 0, \"op\": 2}]}", "nodes[0]: id: must be an integer in 1.."},
    {"{\"nodes\": [{\"id\": 4}]}", "nodes[0] (id 4): op: missing"},
    {"{\"nodes\": [{\"id\": 1, \"op\": \"array\", \"dtype\": \"uint8\", \"shape\": [2],\n"
     "  \"data\": [1, 300]}]}",
     "nodes[0] (id 1): data[1]: 300 does not fit uint8: out of range"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"dtype\": 2, \"shape\": [1], \"data\": [1.5]}]}",
     "nodes[0] (id 1): data[0]: 1.5 does not fit int8: not an integer"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"dtype\": 4, \"shape\": [1], \"data\": [2147483648]}]}",
     "data[0]: 2147483648 does not fit int32: out of range"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"dtype\": \"float32\", \"shape\": [2],\n"
     "  \"data\": [1, 16777217]}]}",
     "data[1]: 16777217 does not fit float32: an integer the dtype cannot hold exactly"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"dtype\": \"float32\", \"shape\": [1], \"data\": "
     "[1e39]}]}",
     "data[0]: 1e+39 does not fit float32: out of range"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"dtype\": \"bool\", \"shape\": [1], \"data\": [2]}]}",
     "data[0]: 2 does not fit bool: a bool is true, false, 0 or 1"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"dtype\": \"int64\", \"shape\": [1], \"data\": "
     "[\"7\"]}]}",
     "data[0]: \"7\" does not fit int64: not a number"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"dtype\": 6, \"shape\": [2, 2], \"data\": [1, 2, 3]}]}",
     "nodes[0] (id 1): data: holds 3 numbers, but the shape has 4 elements"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"dtype\": 6, \"shape\": [1099511627776, 1099511627776, "
     "1099511627776],"
     " \"data\": [1]}]}",
     "data: holds 1 numbers, but the shape has more than 2^64 elements"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 1, \"shape\": [1], \"data\": [1]}]}",
     "data: needs the node's dtype and shape"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 2, \"dtype\": 6, \"shape\": [1], \"value\": 1},\n"
     "  {\"id\": 2, \"op\": \"frobnicate\", \"in\": [1]}]}",
     "nodes[1] (id 2): op: unknown op name \"frobnicate\""},
    {"{\"nodes\": [{\"id\": 1, \"op\": 2, \"dtype\": \"float128\", \"shape\": [1], \"value\": 1}]}",
     "nodes[0] (id 1): dtype: unknown dtype name \"float128\""},
    {"{\"nodes\": [{\"id\": 1, \"op\": 2, \"dtype\": 6, \"shap\": [1], \"value\": 1}]}",
     "nodes[0] (id 1): shap: unknown field"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 2, \"dtype\": 6, \"shape\": [1], \"value\": null}]}",
     "nodes[0] (id 1): value: must be a number, a boolean"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 98, \"in\": [1], \"dims\": [8]}]}",
     "nodes[0] (id 1): dims[0]: must be an integer in 0..7"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 97, \"in\": [1], \"exprs\": [\"i0\", 3]}]}",
     "nodes[0] (id 1): exprs: element 1 must be a string"},
    {"{\"nodes\": [{\"id\": 1, \"op\": 2, \"dtype\": 6, \"shape\": [1], \"value\": 1}],\n"
     " \"keep\": [1], \"fetch\": [3]}",
     "fetch[0]: var 3 is not in keep"},
};

START_TEST(bad_files_name_the_culprit)
{
    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        const char *path = write_file("bad.json", bad_files[i].json);
        char prefix[256];
        snprintf(prefix, sizeof(prefix), "kiln: submit: %s: ", path);
        struct fixture_run r;
        const char *argv[] = {"submit", path, NULL};
        run(&r, argv);
        ck_assert_msg(r.status == 1, "case %zu: exit %d, stderr: %s", i, r.status, r.err);
        ck_assert_str_eq(r.out, "");
        ck_assert_msg(strncmp(r.err, prefix, strlen(prefix)) == 0, "case %zu: %s", i, r.err);
        assert_contains(r.err, bad_files[i].want);
        ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "one line: %s", r.err);
        fixture_run_fini(&r);
    }
    /* --fetch must name kept vars too; a missing file is one line. */
    const char *path = write_file("ok.json", "{\"nodes\": [{\"id\": 1, \"op\": 2, \"dtype\": 6, "
                                             "\"shape\": [1], \"value\": 1}], \"keep\": [1]}");
    struct fixture_run r;
    const char *argv[] = {"submit", path, "--fetch", "1,2", NULL};
    run(&r, argv);
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "--fetch: var 2 is not in keep");
    fixture_run_fini(&r);
    const char *missing[] = {"submit", "/nonexistent/graph.json", NULL};
    run(&r, missing);
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "kiln: submit: /nonexistent/graph.json: cannot read: ");
    fixture_run_fini(&r);
    /* A good file is read, and only then is the daemon dialled. */
    const char *good[] = {"submit", path, NULL};
    run(&r, good);
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "kiln: no daemon answers at " DEAD_ADDRESS);
    fixture_run_fini(&r);
}
END_TEST

/* ---- against kilnd ----------------------------------------------------- */

static struct fixture_daemon daemon_;

static void daemon_setup(void)
{
    files_setup();
    ck_assert_msg(fixture_daemon_start(&daemon_, NULL) == 0, "kilnd did not start");
}

static void daemon_teardown(void)
{
    ck_assert_int_eq(fixture_daemon_stop(&daemon_), 0);
    files_teardown();
}

static void run_live(struct fixture_run *r, const char *const *argv)
{
    ck_assert_int_eq(fixture_run_cli(r, daemon_.address, argv), 0);
}

START_TEST(prints_exact_values)
{
    const char *path = write_file(
        "types.json",
        "{\"nodes\": [\n"
        "  {\"id\": 1, \"op\": \"array\", \"dtype\": \"float64\", \"shape\": [6],\n"
        "   \"data\": [0.1, \"nan\", \"inf\", \"-inf\", -0.0, 1e300]},\n"
        "  {\"id\": 2, \"op\": \"array\", \"dtype\": \"bool\", \"shape\": [3], \"data\": [true, 0, "
        "1]},\n"
        "  {\"id\": 3, \"op\": \"const\", \"dtype\": \"int64\", \"shape\": [2, 2],\n"
        "   \"value\": -9007199254740993},\n"
        "  {\"id\": 4, \"op\": \"index\", \"dtype\": \"int32\", \"shape\": [2, 3], \"dim\": 1},\n"
        "  {\"id\": 5, \"op\": \"array\", \"dtype\": \"int8\", \"shape\": [], \"data\": [-128]},\n"
        "  {\"id\": 6, \"op\": \"const\", \"dtype\": \"float32\", \"shape\": [3], \"value\": "
        "0.1},\n"
        "  {\"id\": 7, \"op\": \"array\", \"dtype\": \"uint8\", \"shape\": [2, 0], \"data\": []},\n"
        "  {\"id\": 8, \"op\": 48, \"dtype\": 6, \"in\": [6, 6]},\n"
        "  {\"id\": 9, \"op\": \"array\", \"dtype\": \"float32\", \"shape\": [3],\n"
        "   \"data\": [16777216, 3.4028234663852886e38, 1e-45]}\n"
        "], \"keep\": [1, 2, 3, 4, 5, 7, 8, 9], \"fetch\": [1, 2, 3, 4, 5, 7, 8, 9]}\n");
    struct fixture_run r;
    const char *argv[] = {"submit", path, NULL};
    run_live(&r, argv);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_str_eq(r.err, "");
    ck_assert_str_eq(
        r.out,
        "{\"step\": 1, \"vars\": [\n"
        "  {\"id\": 1, \"dtype\": \"float64\", \"shape\": [6], \"data\": [0.1, \"nan\", \"inf\", "
        "\"-inf\", -0, 1e+300]},\n"
        "  {\"id\": 2, \"dtype\": \"bool\", \"shape\": [3], \"data\": [true, false, true]},\n"
        "  {\"id\": 3, \"dtype\": \"int64\", \"shape\": [2, 2], \"data\": [-9007199254740993, "
        "-9007199254740993, -9007199254740993, -9007199254740993]},\n"
        "  {\"id\": 4, \"dtype\": \"int32\", \"shape\": [2, 3], \"data\": [0, 1, 2, 0, 1, 2]},\n"
        "  {\"id\": 5, \"dtype\": \"int8\", \"shape\": [], \"data\": [-128]},\n"
        "  {\"id\": 7, \"dtype\": \"uint8\", \"shape\": [2, 0], \"data\": []},\n"
        "  {\"id\": 8, \"dtype\": \"float32\", \"shape\": [3], \"data\": [0.2, 0.2, 0.2]},\n"
        "  {\"id\": 9, \"dtype\": \"float32\", \"shape\": [3], \"data\": [16777216, 3.4028235e+38, "
        "1e-45]}\n"
        "]}\n");
    ck_assert_int_ne(fixture_json_valid(r.out), 0);
    fixture_run_fini(&r);

    /* --fetch replaces the file's list; no fetch prints no vars. */
    const char *one[] = {"submit", path, "--fetch", "5", NULL};
    run_live(&r, one);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "{\"step\": 1, \"vars\": [\n"
                            "  {\"id\": 5, \"dtype\": \"int8\", \"shape\": [], \"data\": [-128]}\n"
                            "]}\n");
    fixture_run_fini(&r);
    const char *none =
        write_file("none.json", "{\"nodes\": [{\"id\": 1, \"op\": \"const\", "
                                "\"dtype\": \"int32\", \"shape\": [], \"value\": true}]}");
    const char *argv2[] = {"submit", none, NULL};
    run_live(&r, argv2);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "{\"step\": 1, \"vars\": []}\n");
    fixture_run_fini(&r);

    /* The lowered ops, by name, with their fields. */
    const char *lowered = write_file(
        "lowered.json",
        "{\"nodes\": [\n"
        "  {\"id\": 1, \"op\": \"index\", \"dtype\": \"int32\", \"shape\": [2, 3], \"dim\": 1},\n"
        "  {\"id\": 2, \"op\": \"transpose\", \"in\": [1], \"dims\": [1, 0]},\n"
        "  {\"id\": 3, \"op\": \"slice\", \"in\": [2], \"starts\": [-1, 0],\n"
        "   \"stops\": [-9223372036854775808, 9223372036854775807], \"steps\": [-2, 1]},\n"
        "  {\"id\": 4, \"op\": \"concat\", \"in\": [3, 3], \"dim\": 1},\n"
        "  {\"id\": 5, \"op\": \"pad\", \"in\": [4], \"pads\": [0, 1, -1, 0], \"value\": 7},\n"
        "  {\"id\": 6, \"op\": \"flip\", \"in\": [5], \"dims\": [1]}\n"
        "], \"keep\": [6], \"fetch\": [6]}\n");
    const char *argv3[] = {"submit", lowered, NULL};
    run_live(&r, argv3);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    /* x.T[::-2] = [[2, 2], [0, 0]] -> concat [[2,2,2,2],[0,0,0,0]] -> pad
     * [[2,2,2],[0,0,0],[7,7,7]] -> flip dim 1: the same */
    ck_assert_str_eq(r.out, "{\"step\": 1, \"vars\": [\n"
                            "  {\"id\": 6, \"dtype\": \"int32\", \"shape\": [3, 3], \"data\": "
                            "[2, 2, 2, 0, 0, 0, 7, 7, 7]}\n"
                            "]}\n");
    fixture_run_fini(&r);

    /* The relays, by name, with their fields. */
    const char *relays = write_file(
        "relays.json",
        "{\"nodes\": [\n"
        "  {\"id\": 1, \"op\": \"array\", \"dtype\": \"float32\", \"shape\": [2, 2],\n"
        "   \"data\": [1, 2, 3, 4]},\n"
        "  {\"id\": 2, \"op\": \"matmul\", \"in\": [1, 1], \"trans\": [0, 1]},\n"
        "  {\"id\": 3, \"op\": \"const\", \"dtype\": \"float32\", \"shape\": [1, 2, 3, 3],\n"
        "   \"value\": 1},\n"
        "  {\"id\": 4, \"op\": \"const\", \"dtype\": \"float32\", \"shape\": [2, 1, 1, 1],\n"
        "   \"value\": 3},\n"
        "  {\"id\": 5, \"op\": \"conv2d\", \"in\": [3, 4], \"stride\": [2, 2],\n"
        "   \"padding\": [0, 1], \"dilation\": [1, 1], \"groups\": 2}\n"
        "], \"keep\": [2, 5], \"fetch\": [2, 5]}\n");
    const char *argv4[] = {"submit", relays, NULL};
    run_live(&r, argv4);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    /* a a^T; then [1, 2, 2, 3]: 3 where the window's one tap is in x, 0 on
     * the padding (columns -1 and 3) */
    ck_assert_str_eq(r.out, "{\"step\": 1, \"vars\": [\n"
                            "  {\"id\": 2, \"dtype\": \"float32\", \"shape\": [2, 2], \"data\": "
                            "[5, 11, 11, 25]},\n"
                            "  {\"id\": 5, \"dtype\": \"float32\", \"shape\": [1, 2, 2, 3], "
                            "\"data\": [0, 3, 0, 0, 3, 0, 0, 3, 0, 0, 3, 0]}\n"
                            "]}\n");
    fixture_run_fini(&r);
}
END_TEST

START_TEST(example_graph_and_stdin)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/deploy/example-graph.json", getenv("KILN_SOURCE_ROOT"));
    const char *text = read_text(path);
    struct fixture_run r;
    const char *argv[] = {"submit", path, NULL};
    const char *from_stdin[] = {"submit", "-", NULL};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            run_live(&r, argv);
        else
            ck_assert_int_eq(fixture_run_cli_stdin(&r, daemon_.address, from_stdin, text), 0);
        ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
        /* X . w is exact in float32; the sigmoid is checked to 7 digits. */
        assert_contains(r.out, "{\"step\": 1, \"vars\": [\n"
                               "  {\"id\": 5, \"dtype\": \"float32\", \"shape\": [2], \"data\": "
                               "[-0.75, -1.5]},\n"
                               "  {\"id\": 8, \"dtype\": \"float32\", \"shape\": [2], \"data\": "
                               "[0.562176");
        assert_contains(r.out, ", 0.377540");
        ck_assert_int_ne(fixture_json_valid(r.out), 0);
        fixture_run_fini(&r);
    }
    /* The same structure twice: the second run compiled nothing, and
     * `kiln status` shows the JIT's counters. */
    const char *status[] = {"status", NULL};
    run_live(&r, status);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "\nkernels         ");
    assert_contains(r.out, " cache hits, ");
    assert_contains(r.out, "\nplans           ");
    assert_contains(r.out, "\ncc tier         ");
    fixture_run_fini(&r);
}
END_TEST

START_TEST(daemon_refusal_names_the_node)
{
    const char *path = write_file(
        "refused.json", "{\"nodes\": [\n"
                        "  {\"id\": 1, \"op\": \"const\", \"dtype\": \"float32\", \"shape\": [2], "
                        "\"value\": 1},\n"
                        "  {\"id\": 2, \"op\": \"add\", \"in\": [1, 99]}\n"
                        "], \"keep\": [2], \"fetch\": [2]}");
    struct fixture_run r;
    const char *argv[] = {"submit", path, NULL};
    run_live(&r, argv);
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.out, "");
    char want[512];
    snprintf(
        want, sizeof(want),
        "kiln: submit: %s: nodes[1] (id 2): daemon error NOTFOUND (body.nodes[1].in[1]): ", path);
    assert_contains(r.err, want);
    fixture_run_fini(&r);

    /* The daemon's own shape rules: 2 elements do not reshape to 3. */
    path =
        write_file("exec.json", "{\"nodes\": [\n"
                                "  {\"id\": 1, \"op\": \"const\", \"dtype\": \"float32\", "
                                "\"shape\": [2], \"value\": 1},\n"
                                "  {\"id\": 2, \"op\": \"reshape\", \"in\": [1], \"shape\": [3]}\n"
                                "], \"keep\": [2], \"fetch\": [2]}");
    const char *argv2[] = {"submit", path, NULL};
    run_live(&r, argv2);
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "nodes[1] (id 2): daemon error VALUE (body.nodes[1]");
    fixture_run_fini(&r);
}
END_TEST

static Suite *submit_suite(void)
{
    Suite *s = suite_create("clients");
    TCase *off = tcase_create("offline");
    tcase_add_unchecked_fixture(off, files_setup, files_teardown);
    tcase_set_timeout(off, 30);
    tcase_add_test(off, names_match_protocol);
    tcase_add_test(off, help_documents_submit);
    tcase_add_test(off, usage_exits_2);
    tcase_add_test(off, bad_files_name_the_culprit);
    suite_add_tcase(s, off);
    fixture_require_kilnd();
    TCase *live = tcase_create("daemon");
    tcase_add_checked_fixture(live, daemon_setup, daemon_teardown);
    tcase_set_timeout(live, 30);
    tcase_add_test(live, prints_exact_values);
    tcase_add_test(live, example_graph_and_stdin);
    tcase_add_test(live, daemon_refusal_names_the_node);
    suite_add_tcase(s, live);
    return s;
}

int main(void)
{
    return fixture_run_suite(submit_suite());
}
