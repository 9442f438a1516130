/* cmd_top.c: `kiln top [--interval SECS] [--count N]`: a live view of a
 * daemon for its operators.
 *
 * Every interval it asks STATUS and prints the daemon lines (steps per
 * second, memory and each memory tier's use and spills, compile
 * activity), the users (weight, sessions, queued
 * and running steps, their share of the kernel time over the last
 * interval, memory, kernels compiled, refusals) and the sessions (by
 * number, never by id). Shares are computed here from the change of each
 * kernel_ms counter between two samples; the first screen shows shares
 * since the daemon started. On a terminal the screen is redrawn in place;
 * otherwise each sample is printed after the last, separated by a blank
 * line. Users and sessions are listed for clients on the daemon's local
 * socket only: elsewhere top says so and shows the daemon line. */
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define TOP_INTERVAL_MAX_S 3600

/* The previous sample's counters, to turn totals into rates. */
struct top_prev {
    bool have;
    uint64_t uptime_ms, steps_done, compile_us, compiled;
    uint32_t nusers, nsessions;
    struct {
        char name[KILN_NAME_MAX + 1];
        uint64_t kernel_ms;
    } users[KILN_STATUS_LIST_MAX];
    struct {
        uint64_t number, kernel_ms;
    } sess[KILN_STATUS_LIST_MAX];
};

static uint64_t prev_user_ms(const struct top_prev *p, const char *name)
{
    for (uint32_t i = 0; p->have && i < p->nusers; i++)
        if (strcmp(p->users[i].name, name) == 0)
            return p->users[i].kernel_ms;
    return 0;
}

static uint64_t prev_sess_ms(const struct top_prev *p, uint64_t number)
{
    for (uint32_t i = 0; p->have && i < p->nsessions; i++)
        if (p->sess[i].number == number)
            return p->sess[i].kernel_ms;
    return 0;
}

static uint64_t delta(uint64_t now, uint64_t before)
{
    return now >= before ? now - before : now; /* a restarted daemon: since its start */
}

static void draw(const struct kiln_status *s, const struct top_prev *p)
{
    char b1[64], b2[64], b3[64], text[CLI_TEXT_SIZE(KILN_NAME_MAX)];
    uint64_t span_ms = p->have ? delta(s->uptime_ms, p->uptime_ms) : s->uptime_ms;
    double span_s = span_ms > 0 ? (double) span_ms / 1000.0 : 1.0;
    cli_format_duration(b1, sizeof b1, s->uptime_ms);
    printf("%s  pid %lld  up %s  workers %llu  sessions %llu\n",
           cli_text(text, sizeof text, s->server), (long long) s->pid, b1,
           (unsigned long long) s->workers, (unsigned long long) s->sessions);
    printf("steps    %llu running, %llu queued, %.1f/s done, %llu failed and %llu merged in all\n",
           (unsigned long long) s->steps_running, (unsigned long long) s->steps_queued,
           (double) delta(s->steps_done, p->have ? p->steps_done : 0) / span_s,
           (unsigned long long) s->steps_failed, (unsigned long long) s->steps_merged);
    cli_format_bytes(b1, sizeof b1, s->mem_in_use);
    if (s->mem_budget > 0)
        cli_format_bytes(b2, sizeof b2, s->mem_budget);
    else
        snprintf(b2, sizeof b2, "none");
    cli_format_bytes(b3, sizeof b3, s->mem_rss);
    printf("memory   %s held for clients, budget %s, RSS %s\n", b1, b2, b3);
    for (uint32_t i = 0; i < s->ntiers; i++) {
        const struct kiln_tier *t = &s->tiers[i];
        char name[CLI_TEXT_SIZE(sizeof t->name)];
        cli_format_bytes(b1, sizeof b1, t->in_use);
        if (t->limit > 0)
            cli_format_bytes(b2, sizeof b2, t->limit);
        else
            snprintf(b2, sizeof b2, "no limit");
        printf("  %-6s %s of %s; %llu spilled, %llu restored, %llu refused\n",
               cli_text(name, sizeof name, t->name), b1, b2, (unsigned long long) t->spills,
               (unsigned long long) t->restores, (unsigned long long) t->refused);
    }
    printf("compile  %llu kernels (%.1f ms) in the last %.1f s; %llu cached; cc tier %s, %llu "
           "promoted, %llu built\n",
           (unsigned long long) delta(s->jit_kernels_compiled, p->have ? p->compiled : 0),
           (double) delta(s->jit_compile_us, p->have ? p->compile_us : 0) / 1000.0, span_s,
           (unsigned long long) s->jit_kernels_cached, s->cc_enabled ? "on" : "off",
           (unsigned long long) s->cc_promoted, (unsigned long long) s->cc_compiles);
    if (!s->has_lists) {
        printf("\n(users and sessions are listed for clients on the daemon's local socket "
               "only)\n");
        return;
    }

    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nusers; i++)
        total += delta(s->users[i].kernel_ms, prev_user_ms(p, s->users[i].name));
    printf("\n%-16s %6s %5s %6s %4s %6s %10s %10s %8s %10s %7s\n", "USER", "WEIGHT", "SESS",
           "QUEUED", "RUN", "SHARE", "KERNEL", "MEMORY", "KERNELS", "COMPILE", "REFUSED");
    for (uint32_t i = 0; i < s->nusers; i++) {
        const struct kiln_status_user *u = &s->users[i];
        uint64_t d = delta(u->kernel_ms, prev_user_ms(p, u->name));
        cli_format_duration(b1, sizeof b1, u->kernel_ms);
        cli_format_bytes(b2, sizeof b2, u->memory);
        printf("%-16.16s %6llu %5llu %6llu %4llu %5.1f%% %10s %10s %8llu %8llums %7llu\n",
               cli_text(text, sizeof text, u->name), (unsigned long long) u->weight,
               (unsigned long long) u->sessions, (unsigned long long) u->queued,
               (unsigned long long) u->running, total ? 100.0 * (double) d / (double) total : 0.0,
               b1, b2, (unsigned long long) u->kernels, (unsigned long long) u->compile_ms,
               (unsigned long long) u->refused);
    }
    if (s->users_total > s->nusers)
        printf("(%llu more users)\n", (unsigned long long) (s->users_total - s->nusers));

    total = 0;
    for (uint32_t i = 0; i < s->nsessions; i++)
        total += delta(s->session_list[i].kernel_ms, prev_sess_ms(p, s->session_list[i].number));
    printf("\n%6s %-14s %-20s %6s %4s %8s %6s %10s %7s %8s\n", "#", "USER", "CLIENT", "QUEUED",
           "RUN", "STEPS", "SHARE", "MEMORY", "VARS", "IDLE");
    for (uint32_t i = 0; i < s->nsessions; i++) {
        const struct kiln_status_session *x = &s->session_list[i];
        char t2[CLI_TEXT_SIZE(KILN_NAME_MAX)];
        uint64_t d = delta(x->kernel_ms, prev_sess_ms(p, x->number));
        cli_format_bytes(b2, sizeof b2, x->memory);
        cli_format_duration(b3, sizeof b3, x->idle_ms);
        printf("%6llu %-14.14s %-20.20s %6llu %4s %8llu %5.1f%% %10s %7llu %8s\n",
               (unsigned long long) x->number, cli_text(text, sizeof text, x->user),
               cli_text(t2, sizeof t2, x->client), (unsigned long long) x->queued,
               x->running ? "yes" : "-", (unsigned long long) x->steps,
               total ? 100.0 * (double) d / (double) total : 0.0, b2,
               (unsigned long long) x->vars, b3);
    }
    if (s->sessions > s->nsessions)
        printf("(%llu more sessions)\n", (unsigned long long) (s->sessions - s->nsessions));
}

static void remember(struct top_prev *p, const struct kiln_status *s)
{
    p->have = true;
    p->uptime_ms = s->uptime_ms;
    p->steps_done = s->steps_done;
    p->compile_us = s->jit_compile_us;
    p->compiled = s->jit_kernels_compiled;
    p->nusers = s->nusers;
    for (uint32_t i = 0; i < s->nusers; i++) {
        memcpy(p->users[i].name, s->users[i].name, sizeof p->users[i].name);
        p->users[i].kernel_ms = s->users[i].kernel_ms;
    }
    p->nsessions = s->nsessions;
    for (uint32_t i = 0; i < s->nsessions; i++) {
        p->sess[i].number = s->session_list[i].number;
        p->sess[i].kernel_ms = s->session_list[i].kernel_ms;
    }
}

int cli_cmd_top(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, 'i'},
        {"count", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    double interval = 2.0;
    long count = 0; /* 0: until interrupted */
    int ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+i:n:", longopts, NULL)) != -1) {
        char *end = NULL;
        if (ch == 'i') {
            interval = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(interval >= 0.1 && interval <= TOP_INTERVAL_MAX_S)) {
                fprintf(stderr, "kiln: top: --interval must be seconds in 0.1..3600\n");
                return CLI_EXIT_USAGE;
            }
        } else if (ch == 'n') {
            count = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || count < 1 || count > 1000000) {
                fprintf(stderr, "kiln: top: --count must be an integer in 1..1000000\n");
                return CLI_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "kiln: usage: kiln top [--interval SECS] [--count N]\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kiln: top: unexpected argument \"%s\"\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    kiln_conn *c = cli_connect(o);
    if (c == NULL)
        return CLI_EXIT_FAIL;
    struct kiln_status *s = malloc(sizeof *s);
    struct top_prev *p = calloc(1, sizeof *p);
    int rc = s != NULL && p != NULL ? KILN_OK : KILN_ENOMEM;
    bool tty = isatty(STDOUT_FILENO);
    for (long n = 0; rc == KILN_OK && (count == 0 || n < count); n++) {
        if (n > 0) {
            struct timespec ts = {(time_t) interval,
                                  (long) ((interval - (double) (time_t) interval) * 1e9)};
            nanosleep(&ts, NULL);
        }
        struct kiln_error e;
        rc = kiln_status(c, s, &e);
        if (rc != KILN_OK) {
            cli_report("top", &e);
            break;
        }
        if (tty)
            fputs("\033[H\033[2J", stdout); /* home, clear */
        else if (n > 0)
            putchar('\n');
        draw(s, p);
        fflush(stdout);
        remember(p, s);
    }
    if (s == NULL || p == NULL)
        fprintf(stderr, "kiln: top: out of memory\n");
    free(s);
    free(p);
    kiln_close(c);
    return rc == KILN_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
