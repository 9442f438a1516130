/* cmd_submit.c: `kiln submit FILE.json [--fetch ID,...] [--wait MS]`.
 *
 * Reads a graph file (graph_json.c), submits it as one step, fetches the
 * vars that `fetch` (or --fetch, which replaces it) names, and prints
 *
 *   {"step": N, "vars": [
 *     {"id": 3, "dtype": "float32", "shape": [2, 3], "data": [...]}
 *   ]}
 *
 * on stdout: one var per line, data flat in row-major order. Floats are
 * printed in the fewest digits that read back as the same float32 or
 * float64 (at most %.9g and %.17g), and NaN and the infinities, which
 * JSON cannot write as numbers, as the strings "nan", "inf" and "-inf"
 * (the same strings a graph file may use). bool is true/false. A var of a
 * dtype this build does not know shows its number and "data": null.
 *
 * The whole file is read and checked before anything is dialled, so a
 * bad file costs no daemon round trip. The session ends when the command
 * does, which frees the vars it kept. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define SUBMIT_FETCH_MAX 65536

struct submit_args {
    const char *path;
    bool has_fetch; /* --fetch given: replaces the file's list */
    uint64_t *fetch;
    size_t nfetch;
    long wait_ms;
};

/* "3,4,7": positive ids. Returns 0 or -1. */
static int parse_ids(const char *s, struct submit_args *a)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    if (cap > SUBMIT_FETCH_MAX || (a->fetch = calloc(cap, sizeof(*a->fetch))) == NULL)
        return -1;
    const char *p = s;
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9')
            return -1;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno != 0 || v == 0)
            return -1;
        a->fetch[a->nfetch++] = v;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

static int submit_parse(int argc, char **argv, struct submit_args *a)
{
    static const struct option longopts[] = {
        {"fetch", required_argument, NULL, 'f'},
        {"wait", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 0; /* glibc: restart getopt, permuting so options may follow FILE */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "f:w:", longopts, NULL)) != -1) {
        if (ch == 'f' && !a->has_fetch && parse_ids(optarg, a) == 0) {
            a->has_fetch = true;
            continue;
        }
        if (ch == 'w' && cli_parse_long(optarg, 0, KILN_FETCH_WAIT_MAX, &a->wait_ms) == 0)
            continue;
        fprintf(stderr, "kiln: usage: kiln submit FILE.json [--fetch ID,...] [--wait MS (0..%d)]\n",
                KILN_FETCH_WAIT_MAX);
        return -1;
    }
    if (optind >= argc || optind + 1 < argc) {
        fprintf(stderr, "kiln: usage: kiln submit FILE.json [--fetch ID,...] [--wait MS]%s\n",
                optind >= argc ? " (no FILE given)" : " (one FILE only)");
        return -1;
    }
    a->path = argv[optind];
    return 0;
}

static void print_float(double v, bool single)
{
    char buf[40];
    cli_format_double(buf, sizeof(buf), v, single);
    if (isnan(v) || isinf(v))
        printf("\"%s\"", buf); /* JSON has no literal for them */
    else
        fputs(buf, stdout);
}

static void print_element(const unsigned char *p, uint32_t dtype)
{
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    switch (dtype) {
    case KILN_DTYPE_BOOL:
        fputs(*p ? "true" : "false", stdout);
        break;
    case KILN_DTYPE_INT8:
        printf("%d", (int) (int8_t) *p);
        break;
    case KILN_DTYPE_UINT8:
        printf("%u", (unsigned) *p);
        break;
    case KILN_DTYPE_INT32:
        memcpy(&i32, p, sizeof(i32));
        printf("%" PRId32, i32);
        break;
    case KILN_DTYPE_INT64:
        memcpy(&i64, p, sizeof(i64));
        printf("%" PRId64, i64);
        break;
    case KILN_DTYPE_FLOAT32:
        memcpy(&f, p, sizeof(f));
        print_float(f, true);
        break;
    default: /* KILN_DTYPE_FLOAT64: print_var checked the size */
        memcpy(&d, p, sizeof(d));
        print_float(d, false);
        break;
    }
}

static void print_var(const struct kiln_tensor *t)
{
    const char *name = kiln_dtype_name((int) t->dtype);
    size_t size = kiln_dtype_size((int) t->dtype);
    printf("  {\"id\": %" PRIu64 ", \"dtype\": ", t->id);
    if (size != 0)
        printf("\"%s\"", name);
    else
        printf("%u", (unsigned) t->dtype);
    printf(", \"shape\": [");
    for (uint32_t j = 0; j < t->rank; j++)
        printf("%s%" PRId64, j ? ", " : "", t->shape[j]);
    printf("], \"data\": ");
    if (size == 0) {
        printf("null}");
        return;
    }
    printf("[");
    /* libkiln checked bytes == elements x size for the dtypes it knows. */
    for (size_t i = 0; i < t->bytes / size; i++) {
        if (i > 0)
            fputs(", ", stdout);
        print_element((const unsigned char *) t->data + i * size, t->dtype);
    }
    printf("]}");
}

/* The ids to fetch, each of which the graph must keep. */
static int submit_fetch_list(const struct submit_args *a, struct cli_graph *g)
{
    if (!a->has_fetch)
        return 0;
    for (size_t i = 0; i < a->nfetch; i++) {
        size_t j = 0;
        while (j < g->nkeep && g->keep[j] != a->fetch[i])
            j++;
        if (j == g->nkeep) {
            char path[CLI_TEXT_SIZE(256)];
            fprintf(stderr,
                    "kiln: submit: %s: --fetch: var %" PRIu64
                    " is not in keep: only kept vars can be fetched\n",
                    cli_text(path, sizeof(path), a->path), a->fetch[i]);
            return -1;
        }
    }
    free(g->fetch);
    g->fetch = a->fetch; /* the graph frees it now */
    g->nfetch = a->nfetch;
    return 0;
}

static int submit_run(kiln_conn *c, const struct submit_args *a, const struct cli_graph *g)
{
    struct kiln_error e;
    uint64_t step = 0;
    int rc = kiln_submit(c, g->nodes, g->nnodes, g->keep, g->nkeep, &step, &e);
    if (rc != KILN_OK) {
        char what[CLI_TEXT_SIZE(256) + 64], path[CLI_TEXT_SIZE(256)];
        cli_text(path, sizeof(path), a->path);
        if (e.node >= 0 && (uint64_t) e.node < g->nnodes)
            snprintf(what, sizeof(what), "submit: %s: nodes[%lld] (id %" PRIu64 ")", path,
                     (long long) e.node, g->nodes[e.node].id);
        else
            snprintf(what, sizeof(what), "submit: %s", path);
        cli_report(what, &e);
        return CLI_EXIT_FAIL;
    }
    struct kiln_tensor *vars = NULL;
    if (g->nfetch > 0 &&
        (rc = kiln_fetch(c, g->fetch, g->nfetch, (int) a->wait_ms, &vars, &e)) != KILN_OK) {
        char what[64];
        snprintf(what, sizeof(what), "fetch (after step %" PRIu64 ")", step);
        cli_report(what, &e);
        return CLI_EXIT_FAIL;
    }
    printf("{\"step\": %" PRIu64 ", \"vars\": [", step);
    for (size_t i = 0; i < g->nfetch; i++) {
        printf(i ? ",\n" : "\n");
        print_var(&vars[i]);
    }
    printf("%s]}\n", g->nfetch ? "\n" : "");
    kiln_tensors_free(vars);
    return CLI_EXIT_OK;
}

int cli_cmd_submit(const struct cli_opts *o, int argc, char **argv)
{
    struct submit_args a = {.wait_ms = 60000};
    if (submit_parse(argc, argv, &a) != 0) {
        free(a.fetch);
        return CLI_EXIT_USAGE;
    }
    struct cli_graph g;
    if (cli_graph_read(&g, a.path) != 0) {
        free(a.fetch);
        return CLI_EXIT_FAIL;
    }
    if (submit_fetch_list(&a, &g) != 0) {
        free(a.fetch);
        cli_graph_fini(&g);
        return CLI_EXIT_FAIL;
    }
    int status = CLI_EXIT_FAIL;
    kiln_conn *c = cli_connect(o);
    if (c != NULL) {
        status = submit_run(c, &a, &g);
        kiln_close(c);
    }
    cli_graph_fini(&g);
    return status;
}
