/* cmd_status.c: `kiln status [--json]`.
 *
 * The table is for people: aligned labels, human units, only the error
 * codes that occurred. The JSON is for programs: every field, raw
 * numbers (bytes, milliseconds), and every wire error code by name, zero
 * counts included, so a consumer never has to guess whether a key is
 * missing or zero. */
#include <getopt.h>
#include <stdbool.h>
#include <string.h>

#include "cli.h"

#define LABEL_WIDTH 16

static void row(const char *label, const char *value)
{
    printf("%-*s%s\n", LABEL_WIDTH, label, value);
}

static void row_u64(const char *label, uint64_t v)
{
    printf("%-*s%llu\n", LABEL_WIDTH, label, (unsigned long long) v);
}

/* One row per memory tier: use, limit, and what moved out of it and back. */
static void tier_rows(const struct kiln_status *s)
{
    for (uint32_t i = 0; i < s->ntiers && i < KILN_TIERS_MAX; i++) {
        const struct kiln_tier *t = &s->tiers[i];
        char label[64], name[CLI_TEXT_SIZE(16)], use[32], lim[32], out[32], in[32];
        cli_format_bytes(use, sizeof(use), t->in_use);
        if (t->limit == 0)
            snprintf(lim, sizeof(lim), "no limit");
        else
            cli_format_bytes(lim, sizeof(lim), t->limit);
        char name_raw[sizeof(t->name) + 1];
        memcpy(name_raw, t->name, sizeof(t->name));
        name_raw[sizeof(t->name)] = '\0';
        snprintf(label, sizeof(label), "tier %s", cli_text(name, sizeof(name), name_raw));
        char buf[256];
        if (t->spills == 0 && t->restores == 0 && t->refused == 0) {
            snprintf(buf, sizeof(buf), "%s of %s", use, lim);
        } else {
            cli_format_bytes(out, sizeof(out), t->spilled_bytes);
            cli_format_bytes(in, sizeof(in), t->restored_bytes);
            snprintf(buf, sizeof(buf),
                     "%s of %s; spilled %llu (%s, %llu ms), restored %llu (%s, %llu ms), "
                     "refused %llu",
                     use, lim, (unsigned long long) t->spills, out,
                     (unsigned long long) t->spill_ms, (unsigned long long) t->restores, in,
                     (unsigned long long) t->restore_ms, (unsigned long long) t->refused);
        }
        row(label, buf);
    }
}

/* One row per CUDA device, or why there is none; then NVRTC. Names and
 * reasons come from the daemon: never printed raw. */
static void device_rows(const struct kiln_status *s)
{
    char text[CLI_TEXT_SIZE(192)], mem[32], buf[512];
    if (!s->has_devices) {
        row("devices", "not reported (older daemon)");
        return;
    }
    for (uint32_t i = 0; i < s->ndevices && i < KILN_DEVICES_MAX; i++) {
        const struct kiln_device *d = &s->devices[i];
        char name_raw[sizeof(d->name) + 1], label[32];
        memcpy(name_raw, d->name, sizeof(d->name));
        name_raw[sizeof(d->name)] = '\0';
        cli_format_bytes(mem, sizeof(mem), d->memory);
        snprintf(label, sizeof(label), "cuda %u", (unsigned) i);
        snprintf(buf, sizeof(buf), "%s, compute %u.%u, %s", cli_text(text, sizeof(text), name_raw),
                 (unsigned) d->cc_major, (unsigned) d->cc_minor, mem);
        row(label, buf);
    }
    if (s->ndevices == 0)
        row("cuda", cli_text(text, sizeof(text), s->cuda_why[0] ? s->cuda_why : "no devices"));
    if (s->cuda_state[0] != '\0') {
        snprintf(buf, sizeof(buf), "%s (%llu steps on the device, %llu fell back to the CPU)",
                 cli_text(text, sizeof(text), s->cuda_state), (unsigned long long) s->cuda_steps,
                 (unsigned long long) s->cuda_fallbacks);
        row("cuda steps", buf);
    }
    if (s->nvrtc[0] != '\0') {
        snprintf(buf, sizeof(buf), "%s", cli_text(text, sizeof(text), s->nvrtc));
        row("nvrtc", buf);
    } else {
        row("nvrtc", cli_text(text, sizeof(text), s->nvrtc_why[0] ? s->nvrtc_why : "absent"));
    }
}

static void status_table(const kiln_conn *c, const struct kiln_status *s)
{
    char buf[128], text[CLI_TEXT_SIZE(512)];
    /* The server name is the daemon's to choose: never print it raw. */
    row("server", cli_text(text, sizeof(text), s->server));
    row("address", cli_text(text, sizeof(text), kiln_conn_address(c)));
    snprintf(buf, sizeof(buf), "%u (daemon speaks %u..%u)", (unsigned) kiln_conn_session(c)->proto,
             (unsigned) s->proto_min, (unsigned) s->proto_max);
    row("protocol", buf);
    snprintf(buf, sizeof(buf), "%lld", (long long) s->pid);
    row("pid", buf);
    cli_format_duration(buf, sizeof(buf), s->uptime_ms);
    row("uptime", buf);
    row_u64("sessions", s->sessions);
    row_u64("sessions total", s->sessions_total);
    row_u64("requests", s->requests);
    row_u64("workers", s->workers);
    cli_format_bytes(buf, sizeof(buf), s->mem_in_use);
    row("memory in use", buf);
    if (s->mem_budget == 0)
        snprintf(buf, sizeof(buf), "none");
    else
        cli_format_bytes(buf, sizeof(buf), s->mem_budget);
    row("memory budget", buf);
    cli_format_bytes(buf, sizeof(buf), s->mem_rss);
    row("memory RSS", buf);
    tier_rows(s);
    const char *label = "errors";
    for (int code = 1; code < KILN_ERR_WIRE_COUNT; code++) {
        if (s->errors[code] == 0)
            continue;
        snprintf(buf, sizeof(buf), "%-12s %llu", kiln_err_name(code),
                 (unsigned long long) s->errors[code]);
        row(label, buf);
        label = "";
    }
    if (label[0] != '\0')
        row(label, "none");
    snprintf(buf, sizeof(buf), "%llu done, %llu failed, %llu running, %llu queued, %llu merged",
             (unsigned long long) s->steps_done, (unsigned long long) s->steps_failed,
             (unsigned long long) s->steps_running, (unsigned long long) s->steps_queued,
             (unsigned long long) s->steps_merged);
    row("steps", buf);
    snprintf(buf, sizeof(buf), "%llu ms", (unsigned long long) s->step_run_ms);
    row("step time", buf);
    if (s->jit_enabled) {
        snprintf(buf, sizeof(buf), "%llu compiled (%.1f ms), %llu cache hits, %llu cached",
                 (unsigned long long) s->jit_kernels_compiled, (double) s->jit_compile_us / 1000.0,
                 (unsigned long long) s->jit_kernel_hits,
                 (unsigned long long) s->jit_kernels_cached);
        row("kernels", buf);
        snprintf(buf, sizeof(buf), "%llu fused, %llu cache hits; %llu kernel runs",
                 (unsigned long long) s->jit_plans, (unsigned long long) s->jit_plan_hits,
                 (unsigned long long) s->jit_kernels_run);
        row("plans", buf);
        if (s->jit_fallbacks > 0)
            row_u64("interpreted", s->jit_fallbacks);
        if (s->cc_enabled) {
            snprintf(buf, sizeof(buf), "%llu running -O3 code, %llu built (%llu ms), %llu from disk",
                     (unsigned long long) s->cc_kernels, (unsigned long long) s->cc_compiles,
                     (unsigned long long) s->cc_compile_ms, (unsigned long long) s->cc_disk_hits);
            row("cc tier", buf);
        } else {
            row("cc tier", "off");
        }
        snprintf(buf, sizeof(buf), "%s, %llu run (%llu in the library)",
                 s->relay_library ? "oneDNN" : "reference loops",
                 (unsigned long long) s->relay_runs, (unsigned long long) s->relay_library_runs);
        row("relays", buf);
    } else {
        row("executor", "reference interpreter");
    }
    device_rows(s);
    row("draining", s->draining ? "yes" : "no");
}

static void json_u64(const char *key, uint64_t v, bool last)
{
    printf("  \"%s\": %llu%s\n", key, (unsigned long long) v, last ? "" : ",");
}

static void status_json(const kiln_conn *c, const struct kiln_status *s)
{
    printf("{\n  \"server\": ");
    cli_json_string(stdout, s->server);
    printf(",\n  \"address\": ");
    cli_json_string(stdout, kiln_conn_address(c));
    printf(",\n");
    json_u64("proto", kiln_conn_session(c)->proto, false);
    json_u64("proto_min", s->proto_min, false);
    json_u64("proto_max", s->proto_max, false);
    printf("  \"pid\": %lld,\n", (long long) s->pid);
    json_u64("uptime_ms", s->uptime_ms, false);
    json_u64("sessions", s->sessions, false);
    json_u64("sessions_total", s->sessions_total, false);
    json_u64("requests", s->requests, false);
    json_u64("workers", s->workers, false);
    printf("  \"errors\": {");
    for (int code = 1; code < KILN_ERR_WIRE_COUNT; code++)
        printf("%s\"%s\": %llu", code > 1 ? ", " : "", kiln_err_name(code),
               (unsigned long long) s->errors[code]);
    printf("},\n");
    printf("  \"memory\": {\"in_use\": %llu, \"budget\": %llu, \"rss\": %llu, \"tiers\": [",
           (unsigned long long) s->mem_in_use, (unsigned long long) s->mem_budget,
           (unsigned long long) s->mem_rss);
    for (uint32_t i = 0; i < s->ntiers && i < KILN_TIERS_MAX; i++) {
        const struct kiln_tier *t = &s->tiers[i];
        char name_raw[sizeof(t->name) + 1];
        memcpy(name_raw, t->name, sizeof(t->name));
        name_raw[sizeof(t->name)] = '\0';
        printf("%s{\"name\": ", i > 0 ? ", " : "");
        cli_json_string(stdout, name_raw);
        printf(", \"in_use\": %llu, \"limit\": %llu, \"moving\": %llu, \"spills\": %llu, "
               "\"spilled_bytes\": %llu, \"spill_ms\": %llu, \"restores\": %llu, "
               "\"restored_bytes\": %llu, \"restore_ms\": %llu, \"refused\": %llu}",
               (unsigned long long) t->in_use, (unsigned long long) t->limit,
               (unsigned long long) t->moving, (unsigned long long) t->spills,
               (unsigned long long) t->spilled_bytes, (unsigned long long) t->spill_ms,
               (unsigned long long) t->restores, (unsigned long long) t->restored_bytes,
               (unsigned long long) t->restore_ms, (unsigned long long) t->refused);
    }
    printf("]},\n");
    printf("  \"steps\": {\"done\": %llu, \"failed\": %llu, \"running\": %llu, \"queued\": %llu, "
           "\"run_ms\": %llu, \"merged\": %llu},\n",
           (unsigned long long) s->steps_done, (unsigned long long) s->steps_failed,
           (unsigned long long) s->steps_running, (unsigned long long) s->steps_queued,
           (unsigned long long) s->step_run_ms, (unsigned long long) s->steps_merged);
    printf("  \"jit\": {\"enabled\": %s, \"kernels_compiled\": %llu, \"kernel_hits\": %llu, "
           "\"compile_us\": %llu, \"plans\": %llu, \"plan_hits\": %llu, \"kernels_run\": %llu, "
           "\"kernels_cached\": %llu, \"fallbacks\": %llu, \"cc\": {\"enabled\": %s, "
           "\"kernels\": %llu, \"promoted\": %llu, \"compiles\": %llu, \"failures\": %llu, "
           "\"compile_ms\": %llu, \"disk_hits\": %llu}, \"relays\": {\"library\": %s, "
           "\"runs\": %llu, \"library_runs\": %llu}},\n",
           s->jit_enabled ? "true" : "false", (unsigned long long) s->jit_kernels_compiled,
           (unsigned long long) s->jit_kernel_hits, (unsigned long long) s->jit_compile_us,
           (unsigned long long) s->jit_plans, (unsigned long long) s->jit_plan_hits,
           (unsigned long long) s->jit_kernels_run, (unsigned long long) s->jit_kernels_cached,
           (unsigned long long) s->jit_fallbacks, s->cc_enabled ? "true" : "false",
           (unsigned long long) s->cc_kernels, (unsigned long long) s->cc_promoted,
           (unsigned long long) s->cc_compiles, (unsigned long long) s->cc_failures,
           (unsigned long long) s->cc_compile_ms, (unsigned long long) s->cc_disk_hits,
           s->relay_library ? "true" : "false", (unsigned long long) s->relay_runs,
           (unsigned long long) s->relay_library_runs);
    if (s->has_devices) {
        printf("  \"devices\": {\"cuda\": [");
        for (uint32_t i = 0; i < s->ndevices && i < KILN_DEVICES_MAX; i++) {
            const struct kiln_device *d = &s->devices[i];
            char name_raw[sizeof(d->name) + 1];
            memcpy(name_raw, d->name, sizeof(d->name));
            name_raw[sizeof(d->name)] = '\0';
            printf("%s{\"name\": ", i > 0 ? ", " : "");
            cli_json_string(stdout, name_raw);
            printf(", \"cc_major\": %u, \"cc_minor\": %u, \"memory\": %llu}",
                   (unsigned) d->cc_major, (unsigned) d->cc_minor, (unsigned long long) d->memory);
        }
        printf("], \"cuda_why\": ");
        cli_json_string(stdout, s->cuda_why);
        printf(", \"cuda_driver\": %llu, \"nvrtc\": ", (unsigned long long) s->cuda_driver);
        cli_json_string(stdout, s->nvrtc);
        printf(", \"nvrtc_why\": ");
        cli_json_string(stdout, s->nvrtc_why);
        printf("},\n");
    }
    printf("  \"draining\": %s\n}\n", s->draining ? "true" : "false");
}

int cli_cmd_status(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    int ch;
    optind = 0; /* glibc: restart getopt on the command's own arguments */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+j", longopts, NULL)) != -1) {
        if (ch != 'j') {
            fprintf(stderr, "kiln: usage: kiln status [--json]\n");
            return CLI_EXIT_USAGE;
        }
        json = true;
    }
    if (optind < argc) {
        fprintf(stderr, "kiln: status: unexpected argument \"%s\"\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    kiln_conn *c = cli_connect(o);
    if (c == NULL)
        return CLI_EXIT_FAIL;
    struct kiln_status s;
    struct kiln_error e;
    int rc = kiln_status(c, &s, &e);
    if (rc == KILN_OK) {
        if (json)
            status_json(c, &s);
        else
            status_table(c, &s);
    } else {
        cli_report("status", &e);
    }
    kiln_close(c);
    return rc == KILN_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
