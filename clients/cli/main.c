/* main.c: the `kiln` command — global options and dispatch.
 *
 *   kiln [--address ADDR] [--timeout MS] COMMAND [ARGS]
 *
 * Global options come before the command and are parsed here; each
 * command parses its own arguments. The address flag wins over
 * KILN_ADDRESS, which wins over the default ipc:// socket (libkiln applies
 * the last two). Exit status: 0 success, 1 the daemon or the connection
 * failed (or, for submit, the graph file is wrong), 2 bad usage. */
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kiln_limits.h"

static void usage(FILE *f)
{
    fputs("usage: kiln [--address ADDR] [--timeout MS] COMMAND [ARGS]\n"
          "\n"
          "Talk to a kilnd compute daemon.\n"
          "\n"
          "commands:\n"
          "  ping [-c COUNT] [-i MS]  round trips to the daemon, with their times\n"
          "  status [--json]          the daemon's counters, as a table or as JSON\n"
          "  top [--interval SECS] [--count N]\n"
          "                           live view: users, sessions, step rates, kernel time\n"
          "                           shares, memory, compile activity (every 2 s)\n"
          "  submit FILE.json [--fetch ID,...] [--wait MS]\n"
          "                           run the graph in FILE (\"-\": stdin) as one step, then\n"
          "                           fetch the vars that --fetch or the file's \"fetch\" names,\n"
          "                           waiting up to MS (default 60000) for them\n"
          "  version                  this client's version and protocol\n"
          "  help                     this text\n"
          "\n"
          "options:\n"
          "  -a, --address ADDR  daemon address (ipc://PATH, tcp://HOST:PORT);\n"
          "                      default $KILN_ADDRESS, else ipc://<runtime dir>/kilnd.sock\n"
          "  -t, --timeout MS    send and receive timeout (default 10000)\n"
          "  -h, --help          this text\n"
          "\n"
          "graph files (submit) are JSON in the wire's schema (protocol/PROTOCOL.md, section 8):\n"
          "  {\"nodes\": [{\"id\": 1, \"op\": \"array\", \"dtype\": \"float32\", \"shape\": [2],\n"
          "              \"data\": [1.5, 2]},\n"
          "             {\"id\": 2, \"op\": \"exp\", \"in\": [1]}],\n"
          "   \"keep\": [2], \"fetch\": [2]}\n"
          "  op, dtype, reduce_op and dist are numbers or names (\"add\", \"float32\", \"mean\",\n"
          "  \"normal\"); data is a flat row-major array converted to the dtype, each number\n"
          "  fitting it exactly (bool: true/false or 0/1); value and overflow_value are\n"
          "  numbers or booleans; \"nan\", \"inf\" and \"-inf\" stand for the IEEE values in\n"
          "  data and values. fetched vars must be in keep. The result is printed as\n"
          "  {\"step\": N, \"vars\": [{\"id\": 2, \"dtype\": \"float32\", \"shape\": [2],\n"
          "                        \"data\": [4.481689, 7.389056]}]}\n"
          "  with floats in the fewest digits that read back exactly and NaN and the\n"
          "  infinities as the strings \"nan\", \"inf\", \"-inf\".\n"
          "\n"
          "exit status: 0 success, 1 failure (daemon, connection, or a bad graph file),\n"
          "2 bad usage\n",
          f);
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "kiln: version takes no arguments\n");
        return CLI_EXIT_USAGE;
    }
    printf("kiln %s (protocol %d..%d)\n", KILN_VERSION, KILN_PROTO_VERSION_MIN,
           KILN_PROTO_VERSION_MAX);
    return CLI_EXIT_OK;
}

kiln_conn *cli_connect(const struct cli_opts *o)
{
    /* With no --address, libkiln resolves the default itself: only then
     * does it vet the runtime directory before dialling (kiln.h). */
    struct kiln_connect_opts co = {
        .address = o->address,
        .timeout_ms = o->timeout_ms,
        .client = "kiln-cli",
    };
    kiln_conn *c;
    struct kiln_error e;
    int rc = kiln_connect(&c, &co, &e);
    if (rc == KILN_OK)
        return c;
    /* A refused runtime directory is also KILN_ECONNECT, with the field
     * "address": its message says what is wrong, so print that instead. */
    char addr[512];
    if (rc == KILN_ECONNECT && e.field[0] == '\0' &&
        (o->address != NULL || kiln_default_address(addr, sizeof(addr)) == KILN_OK)) {
        char text[CLI_TEXT_SIZE(sizeof(addr))];
        fprintf(stderr,
                "kiln: no daemon answers at %s (start one with \"kilnd\", or set KILN_ADDRESS)\n",
                cli_text(text, sizeof(text), o->address ? o->address : addr));
    } else {
        cli_report("connect", &e);
    }
    return NULL;
}

void cli_report(const char *what, const struct kiln_error *e)
{
    /* Codes below 100 are wire codes, so the daemon sent them, except
     * KILN_ENOMEM, which libkiln also reports for its own allocations. A
     * code this build has no name for (a newer daemon's) shows its number. */
    bool from_daemon = e->code > KILN_OK && e->code < KILN_ECONNECT && e->code != KILN_ENOMEM;
    char name[32], field[CLI_TEXT_SIZE(KILN_ERROR_FIELD_MAX)];
    char message[CLI_TEXT_SIZE(KILN_ERROR_MESSAGE_MAX)];
    if (strcmp(kiln_err_name(e->code), "UNKNOWN") == 0)
        snprintf(name, sizeof(name), "code %d", e->code);
    else
        snprintf(name, sizeof(name), "%s", kiln_err_name(e->code));
    cli_text(field, sizeof(field), e->field);
    cli_text(message, sizeof(message), e->message);
    fprintf(stderr, "kiln: %s: %s %s%s%s%s: %s\n", what, from_daemon ? "daemon error" : "error",
            name, field[0] ? " (" : "", field, field[0] ? ")" : "", message);
}

/* Global options stop at the first word that is not one (the command). */
static int parse_globals(int argc, char **argv, struct cli_opts *o)
{
    static const struct option longopts[] = {
        {"address", required_argument, NULL, 'a'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long v;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+a:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            if (optarg[0] == '\0') {
                fprintf(stderr, "kiln: --address must not be empty\n");
                return -1;
            }
            o->address = optarg;
            break;
        case 't':
            if (cli_parse_long(optarg, 1, 24L * 3600 * 1000, &v) != 0) {
                fprintf(stderr, "kiln: --timeout takes milliseconds (1..86400000), not \"%s\"\n",
                        optarg);
                return -1;
            }
            o->timeout_ms = (int) v;
            break;
        case 'h':
            usage(stdout);
            exit(CLI_EXIT_OK);
        default:
            fprintf(stderr, "kiln: unknown or incomplete option \"%s\" (see kiln --help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    return optind;
}

int main(int argc, char **argv)
{
    struct cli_opts o = {0};
    int first = parse_globals(argc, argv, &o);
    if (first < 0)
        return CLI_EXIT_USAGE;
    if (first >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[first];
    int cargc = argc - first;
    char **cargv = argv + first;
    if (strcmp(cmd, "ping") == 0)
        return cli_cmd_ping(&o, cargc, cargv);
    if (strcmp(cmd, "status") == 0)
        return cli_cmd_status(&o, cargc, cargv);
    if (strcmp(cmd, "top") == 0)
        return cli_cmd_top(&o, cargc, cargv);
    if (strcmp(cmd, "submit") == 0)
        return cli_cmd_submit(&o, cargc, cargv);
    if (strcmp(cmd, "version") == 0)
        return cmd_version(cargc, cargv);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "kiln: unknown command \"%s\" (see kiln --help)\n", cmd);
    return CLI_EXIT_USAGE;
}
