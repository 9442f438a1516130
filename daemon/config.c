/* config.c: command-line flags of kilnd (see config.h and --help).
 *
 * Parsing is strict: a number with trailing junk, a negative count or a
 * size that overflows is an error, not a silent default, because a daemon
 * that quietly ignores a budget is worse than one that refuses to start. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kiln_limits.h"
#include "merge.h"

static const char usage[] =
    "usage: kilnd [options]\n"
    "\n"
    "kiln compute daemon: runs graphs of meta-operators for many clients.\n"
    "\n"
    "  --listen ADDR         listen on ADDR; may be repeated. Schemes: ipc://PATH,\n"
    "                        tcp://HOST:PORT (needs --config users or\n"
    "                        --allow-anonymous; tokens travel in clear).\n"
    "                        tls+tcp:// is not supported yet.\n"
    "                        Default: ipc://$XDG_RUNTIME_DIR/kiln/kilnd.sock, or\n"
    "                        ipc:///tmp/kiln-UID/kilnd.sock (directory made 0700).\n"
    "  --workers N           executor threads (default: online CPUs)\n"
    "  --log-level LEVEL     debug, info, warn or error (default: info)\n"
    "  --idle-timeout SECS   end sessions idle this long (default: 600)\n"
    "  --memory-budget BYTES bytes all sessions may hold; K, M, G suffixes;\n"
    "                        0 = no budget (default: 0)\n"
    "  --spill-dir DIR       with a memory budget, tensors used longest ago move to\n"
    "                        an unnamed file in DIR when the budget is full, and\n"
    "                        come back when used. Default: $TMPDIR/kiln-spill-UID,\n"
    "                        else /var/tmp/kiln-spill-UID (made 0700)\n"
    "  --spill-max BYTES     bytes the spill file may hold; 0 = no spilling (an\n"
    "                        over-budget request fails with ENOMEM). Default: 4\n"
    "                        times the budget, at most 64G and half the free disk\n"
    "  --max-message BYTES   largest message accepted; a peer sending more is\n"
    "                        disconnected (default and maximum: 256M)\n"
    "  --executor KIND       jit (fused kernels compiled with libtcc; default) or\n"
    "                        interp (the reference interpreter: slow, for checks)\n"
    "  --no-cc               keep every kernel on libtcc: no recompiles of hot\n"
    "                        kernels by the system C compiler (cc -O3 -march=native;\n"
    "                        the tier is off anyway when no cc is found)\n"
    "  --cc-threshold MS     a kernel's run time, in milliseconds, before it is\n"
    "                        recompiled by cc in the background (default: 50)\n"
    "  --relays on|off       on (default): matmul and conv2d nodes run in oneDNN\n"
    "                        (float32; the rest in kiln's reference loops); off:\n"
    "                        the daemon lowers them to meta-op kernels (reindex,\n"
    "                        multiply, reduce), as a build without oneDNN does\n"
    "  --cache-dir DIR       keep cc-compiled kernels in DIR (made 0700) for later\n"
    "                        runs. Default: $XDG_CACHE_HOME/kiln, else\n"
    "                        $HOME/.cache/kiln, else <runtime directory>/cache\n"
    "  --cache-max BYTES     size the cache directory may reach; the entries used\n"
    "                        longest ago are deleted past it (default: 1G)\n"
    "  --look-ahead N        run up to N queued steps of a session as one merged\n"
    "                        step, so kernels fuse across steps (1..8; 1 = off;\n"
    "                        default: 2)\n"
    "  --cuda on|off         on (default): steps that ask for the CUDA device\n"
    "                        (jt.flags.use_cuda) run on the first CUDA device when\n"
    "                        there is one; off: every step runs on the CPU\n"
    "  --device-memory BYTES device memory kilnd may hold (kernels' buffers and\n"
    "                        values kept on the device); K, M, G suffixes. Default:\n"
    "                        90% of the memory free on the device at start\n"
    "  --config FILE         users, their token hashes and weights (JSON; see\n"
    "                        deploy/kilnd.conf.example). Without it every client is\n"
    "                        anonymous, which tcp:// listeners refuse\n"
    "  --allow-anonymous     let clients without a token in over tcp:// too\n"
    "  --hash-token          read a token from stdin, print the token_sha256 to put\n"
    "                        in the configuration file, and exit\n"
    "  --help                print this and exit\n"
    "  --version             print the version and exit\n"
    "\n"
    "Logs are logfmt lines on stderr. The first SIGTERM or SIGINT drains: no new\n"
    "connections or sessions, requests in flight are answered, then kilnd exits 0.\n"
    "A second signal exits at once with status 1.\n"
    "\n"
    "Exit status: 0 after a clean shutdown, 1 on a runtime failure (e.g. the\n"
    "address is in use), 2 on bad flags, 3 when the CUDA device failed (a sticky\n"
    "CUDA error: restart kilnd; deploy/kilnd.service does).\n";

enum { OPT_LISTEN = 256, OPT_WORKERS, OPT_LOG_LEVEL, OPT_IDLE, OPT_BUDGET, OPT_MAX_MESSAGE,
       OPT_EXECUTOR, OPT_NO_CC, OPT_RELAYS, OPT_CC_THRESHOLD, OPT_CACHE_DIR, OPT_CACHE_MAX, OPT_SPILL_DIR, OPT_SPILL_MAX, OPT_CONFIG, OPT_ALLOW_ANON, OPT_HASH_TOKEN, OPT_LOOK_AHEAD, OPT_CUDA, OPT_DEVICE_MEMORY, OPT_HELP, OPT_VERSION };

static const struct option options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"memory-budget", required_argument, NULL, OPT_BUDGET},
    {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
    {"executor", required_argument, NULL, OPT_EXECUTOR},
    {"relays", required_argument, NULL, OPT_RELAYS},
    {"no-cc", no_argument, NULL, OPT_NO_CC},
    {"cc-threshold", required_argument, NULL, OPT_CC_THRESHOLD},
    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
    {"cache-max", required_argument, NULL, OPT_CACHE_MAX},
    {"spill-dir", required_argument, NULL, OPT_SPILL_DIR},
    {"spill-max", required_argument, NULL, OPT_SPILL_MAX},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"allow-anonymous", no_argument, NULL, OPT_ALLOW_ANON},
    {"hash-token", no_argument, NULL, OPT_HASH_TOKEN},
    {"look-ahead", required_argument, NULL, OPT_LOOK_AHEAD},
    {"cuda", required_argument, NULL, OPT_CUDA},
    {"device-memory", required_argument, NULL, OPT_DEVICE_MEMORY},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* A decimal number in [0, max] with nothing after it. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out, char **end)
{
    if (*s < '0' || *s > '9') /* strtoull would accept "-1" and " 1" */
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, end, 10);
    if (errno != 0 || v > max)
        return false;
    *out = v;
    return true;
}

bool cfg_parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    uint64_t v;
    if (!parse_u64(s, UINT64_MAX, &v, &end))
        return false;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'K': case 'k': shift = 10; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'G': case 'g': shift = 30; end++; break;
    default: return false;
    }
    if (*end != '\0' || v > (UINT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}

static bool parse_listen(struct cfg *cfg, const char *addr, FILE *err)
{
    if (strncmp(addr, "tls+tcp://", 10) == 0) {
        fprintf(err, "kilnd: --listen %s: tls+tcp:// is not supported yet\n", addr);
        return false;
    }
    bool ok = (strncmp(addr, "ipc://", 6) == 0 && addr[6] != '\0') ||
              (strncmp(addr, "tcp://", 6) == 0 && addr[6] != '\0');
    if (!ok) {
        fprintf(err, "kilnd: --listen %s: expected ipc://PATH or tcp://HOST:PORT\n", addr);
        return false;
    }
    const char **grown = NULL;
    if (cfg->nlisten < SIZE_MAX / sizeof(*cfg->listen) - 1)
        grown = realloc(cfg->listen, (cfg->nlisten + 1) * sizeof(*cfg->listen));
    if (grown == NULL) {
        fprintf(err, "kilnd: out of memory\n");
        return false;
    }
    cfg->listen = grown;
    cfg->listen[cfg->nlisten++] = addr;
    return true;
}

static void set_defaults(struct cfg *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *cfg = (struct cfg){
        .workers = cpus > 0 && cpus <= CFG_WORKERS_MAX ? (uint32_t) cpus : 1,
        .log_level = LOG_INFO,
        .idle_timeout_ms = CFG_IDLE_TIMEOUT_DEFAULT_S * UINT64_C(1000),
        .mem_budget = 0,
        .max_message = KILN_LIMIT_MESSAGE_BYTES,
        .cc_threshold_ms = CFG_CC_THRESHOLD_DEFAULT_MS,
        .spill_max = CFG_SPILL_MAX_AUTO,
        .look_ahead = MERGE_LOOK_AHEAD_DEFAULT,
    };
}

static bool bad_value(FILE *err, const char *flag, const char *arg, const char *expected)
{
    fprintf(err, "kilnd: %s %s: expected %s\n", flag, arg, expected);
    return false;
}

/* A whole number in [min, max]. */
static bool parse_range(const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    return parse_u64(arg, max, out, &end) && *end == '\0' && *out >= min;
}

_Static_assert(CFG_WORKERS_MAX == 1024 && CFG_IDLE_TIMEOUT_MAX_S == 604800 &&
                   CFG_MAX_MESSAGE_MIN == 1024 && KILN_LIMIT_MESSAGE_BYTES == (256u << 20) &&
                   CFG_CC_THRESHOLD_MAX_MS == 86400000 && MERGE_LOOK_AHEAD_MAX == 8 &&
                   MERGE_LOOK_AHEAD_DEFAULT == 2,
               "update the ranges in the messages below");

/* One option; returns false after reporting a bad value. */
static bool apply(struct cfg *cfg, int opt, const char *arg, FILE *err)
{
    uint64_t v;
    switch (opt) {
    case OPT_LISTEN:
        return parse_listen(cfg, arg, err);
    case OPT_WORKERS:
        if (!parse_range(arg, 1, CFG_WORKERS_MAX, &v))
            return bad_value(err, "--workers", arg, "an integer in 1..1024");
        cfg->workers = (uint32_t) v;
        return true;
    case OPT_LOG_LEVEL:
        if (!log_level_parse(arg, &cfg->log_level))
            return bad_value(err, "--log-level", arg, "debug, info, warn or error");
        return true;
    case OPT_IDLE:
        if (!parse_range(arg, 1, CFG_IDLE_TIMEOUT_MAX_S, &v))
            return bad_value(err, "--idle-timeout", arg, "whole seconds in 1..604800");
        cfg->idle_timeout_ms = v * 1000; /* v <= a week: no overflow */
        return true;
    case OPT_BUDGET:
        if (!cfg_parse_bytes(arg, &cfg->mem_budget))
            return bad_value(err, "--memory-budget", arg, "bytes (K, M, G suffixes allowed)");
        return true;
    case OPT_MAX_MESSAGE:
        if (!cfg_parse_bytes(arg, &v) || v < CFG_MAX_MESSAGE_MIN || v > KILN_LIMIT_MESSAGE_BYTES)
            return bad_value(err, "--max-message", arg, "bytes in 1K..256M");
        cfg->max_message = v;
        return true;
    case OPT_EXECUTOR:
        if (strcmp(arg, "jit") != 0 && strcmp(arg, "interp") != 0)
            return bad_value(err, "--executor", arg, "jit or interp");
        cfg->interpret = strcmp(arg, "interp") == 0;
        return true;
    case OPT_NO_CC:
        cfg->no_cc = true;
        return true;
    case OPT_RELAYS:
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
            return bad_value(err, "--relays", arg, "on or off");
        cfg->no_relays = strcmp(arg, "off") == 0;
        return true;
    case OPT_CC_THRESHOLD:
        if (!parse_range(arg, 0, CFG_CC_THRESHOLD_MAX_MS, &v))
            return bad_value(err, "--cc-threshold", arg, "milliseconds in 0..86400000");
        cfg->cc_threshold_ms = v;
        return true;
    case OPT_CONFIG:
        if (arg[0] == '\0')
            return bad_value(err, "--config", arg, "a file name");
        cfg->config_path = arg;
        return true;
    case OPT_ALLOW_ANON:
        cfg->allow_anonymous = true;
        return true;
    case OPT_HASH_TOKEN:
        cfg->hash_token = true;
        return true;
    case OPT_LOOK_AHEAD:
        if (!parse_range(arg, 1, MERGE_LOOK_AHEAD_MAX, &v))
            return bad_value(err, "--look-ahead", arg, "an integer in 1..8");
        cfg->look_ahead = (uint32_t) v;
        return true;
    case OPT_CUDA:
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
            return bad_value(err, "--cuda", arg, "on or off");
        cfg->no_cuda = strcmp(arg, "off") == 0;
        return true;
    case OPT_DEVICE_MEMORY:
        if (!cfg_parse_bytes(arg, &v) || v < (16u << 20))
            return bad_value(err, "--device-memory", arg,
                             "bytes, at least 16M (K, M, G suffixes)");
        cfg->device_memory = v;
        return true;
    case OPT_CACHE_MAX:
        if (!cfg_parse_bytes(arg, &v) || v < (1u << 20))
            return bad_value(err, "--cache-max", arg, "bytes, at least 1M (K, M, G suffixes)");
        cfg->cache_max = v;
        return true;
    case OPT_SPILL_MAX:
        /* 0 turns spilling off; otherwise at least one block. */
        if (!cfg_parse_bytes(arg, &v) || (v != 0 && v < 4096) || v == CFG_SPILL_MAX_AUTO)
            return bad_value(err, "--spill-max", arg, "0 (off) or bytes, at least 4K (K, M, G "
                                                      "suffixes)");
        cfg->spill_max = v;
        return true;
    case OPT_SPILL_DIR:
        if (arg[0] == '\0')
            return bad_value(err, "--spill-dir", "\"\"", "a directory");
        cfg->spill_dir = arg;
        return true;
    case OPT_CACHE_DIR:
        if (arg[0] == '\0')
            return bad_value(err, "--cache-dir", "\"\"", "a directory");
        cfg->cache_dir = arg;
        return true;
    }
    return false;
}

enum cfg_result cfg_parse(struct cfg *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    set_defaults(cfg);
    opterr = 0; /* we print our own messages */
    optind = 1;
    for (;;) {
        int opt = getopt_long(argc, argv, ":", options, NULL);
        if (opt == -1)
            break;
        switch (opt) {
        case OPT_HELP:
            fputs(usage, out);
            return CFG_EXIT;
        case OPT_VERSION:
            fprintf(out, "kilnd %s (protocol %d..%d)\n", KILN_VERSION, KILN_PROTO_VERSION_MIN,
                    KILN_PROTO_VERSION_MAX);
            return CFG_EXIT;
        case ':':
            fprintf(err, "kilnd: %s needs a value\n", argv[optind - 1]);
            goto bad;
        case '?':
            fprintf(err, "kilnd: unknown option %s\n", argv[optind - 1]);
            goto bad;
        default:
            if (!apply(cfg, opt, optarg, err))
                goto bad;
        }
    }
    if (optind < argc) {
        fprintf(err, "kilnd: unexpected argument %s\n", argv[optind]);
        goto bad;
    }
    return CFG_RUN;
bad:
    fputs("kilnd: see kilnd --help\n", err);
    return CFG_ERROR;
}

void cfg_fini(struct cfg *cfg)
{
    free(cfg->listen);
    cfg->listen = NULL;
    cfg->nlisten = 0;
}
