/* cmd_ping.c: `kiln ping [-c COUNT] [-i MS]`.
 *
 * Like ping(1): one line per round trip, then a summary. Round trips are
 * timed around kiln_ping() alone, so the figures are what a client of
 * libkiln sees, connection set-up excluded. A lost ping (timeout) is
 * reported and counted, and the run goes on; the exit status is 1 if any
 * was lost. */
#include <getopt.h>
#include <time.h>

#include "cli.h"

#define PING_COUNT_DEFAULT 4
#define PING_COUNT_MAX     1000000
#define PING_INTERVAL_MAX  3600000 /* ms */

struct ping_args {
    long count;
    long interval_ms;
};

static int ping_parse(int argc, char **argv, struct ping_args *a)
{
    static const struct option longopts[] = {
        {"count", required_argument, NULL, 'c'},
        {"interval", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 0; /* glibc: restart getopt on the command's own arguments */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:i:", longopts, NULL)) != -1) {
        if (ch == 'c' && cli_parse_long(optarg, 1, PING_COUNT_MAX, &a->count) == 0)
            continue;
        if (ch == 'i' && cli_parse_long(optarg, 0, PING_INTERVAL_MAX, &a->interval_ms) == 0)
            continue;
        fprintf(stderr, "kiln: usage: kiln ping [-c COUNT (1..%d)] [-i MS (0..%d)]\n",
                PING_COUNT_MAX, PING_INTERVAL_MAX);
        return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "kiln: ping: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int cli_cmd_ping(const struct cli_opts *o, int argc, char **argv)
{
    struct ping_args a = {.count = PING_COUNT_DEFAULT, .interval_ms = 0};
    if (ping_parse(argc, argv, &a) != 0)
        return CLI_EXIT_USAGE;
    kiln_conn *c = cli_connect(o);
    if (c == NULL)
        return CLI_EXIT_FAIL;
    char addr[CLI_TEXT_SIZE(512)];
    cli_text(addr, sizeof(addr), kiln_conn_address(c));

    long received = 0;
    double min = 0, max = 0, sum = 0;
    for (long seq = 1; seq <= a.count; seq++) {
        if (seq > 1 && a.interval_ms > 0)
            sleep_ms(a.interval_ms);
        struct kiln_error e;
        double t0 = now_ms();
        int rc = kiln_ping(c, &e);
        double dt = now_ms() - t0;
        if (rc != KILN_OK) {
            char msg[CLI_TEXT_SIZE(KILN_ERROR_MESSAGE_MAX)];
            printf("no pong from %s: seq=%ld %s: %s\n", addr, seq, kiln_err_name(rc),
                   cli_text(msg, sizeof(msg), e.message));
            continue;
        }
        printf("pong from %s: seq=%ld time=%.3f ms\n", addr, seq, dt);
        min = received == 0 || dt < min ? dt : min;
        max = dt > max ? dt : max;
        sum += dt;
        received++;
    }
    printf("--- %s kiln ping statistics ---\n", addr);
    printf("%ld sent, %ld received, %ld lost", a.count, received, a.count - received);
    if (received > 0)
        printf(", time min/avg/max = %.3f/%.3f/%.3f ms", min, sum / (double) received, max);
    printf("\n");
    kiln_close(c);
    return received == a.count ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
