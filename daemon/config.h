/* config.h: kilnd's settings, parsed from the command line.
 *
 * cfg_parse() fills a `struct cfg` from argv with getopt_long and checks
 * every value (ranges, overflow-safe size suffixes, listen schemes) so the
 * rest of the daemon can trust it. Messages for bad flags go to the given
 * stream; the caller turns the result into the exit status. The struct owns
 * the `listen` array (not the strings, which point into argv); free it with
 * cfg_fini(), which is safe on a zeroed struct.
 */
#ifndef KILND_CONFIG_H
#define KILND_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define CFG_IDLE_TIMEOUT_DEFAULT_S 600
#define CFG_IDLE_TIMEOUT_MAX_S     (7 * 24 * 3600) /* a week: longer is a leak, not a session */
#define CFG_WORKERS_MAX            1024
#define CFG_MAX_MESSAGE_MIN        1024 /* enough for any request of this issue */
#define CFG_CC_THRESHOLD_DEFAULT_MS 50
#define CFG_CC_THRESHOLD_MAX_MS     (24 * 3600 * 1000) /* a day of one kernel's run time */
#define CFG_SPILL_MAX_AUTO          UINT64_MAX /* --spill-max not given: spill.h's default */

struct cfg {
    const char **listen; /* addresses; none given: the default ipc:// socket */
    size_t nlisten;
    uint32_t workers;         /* threads that run steps (libuv's pool holds one more) */
    enum log_level log_level;
    uint64_t idle_timeout_ms; /* a session with no request this long is ended */
    uint64_t mem_budget;      /* bytes sessions may hold; 0: no budget */
    uint64_t max_message;     /* largest message accepted, <= KILN_LIMIT_MESSAGE_BYTES */
    bool interpret;           /* --executor interp: the reference interpreter, no JIT */
    bool no_cc;               /* --no-cc: kernels stay on libtcc (no system compiler tier) */
    const char *config_path;  /* --config: users and tokens (auth.h); NULL: none */
    bool allow_anonymous;     /* --allow-anonymous: tokenless clients on tcp:// too */
    bool hash_token;          /* --hash-token: print SHA-256 of stdin's token and exit */
    bool no_relays;           /* --relays off: matmul and conv2d run as meta-op kernels */
    const char *cache_dir;    /* --cache-dir: compiled kernels on disk; NULL: the default */
    uint64_t cache_max;       /* --cache-max: bytes the disk cache may take; 0: 1 GiB */
    uint64_t cc_threshold_ms; /* --cc-threshold: kernel run time before a cc recompile */
    const char *spill_dir;    /* --spill-dir: where tensors spill; NULL: the default */
    uint64_t spill_max;       /* --spill-max: bytes spilled at most; 0: off; CFG_SPILL_MAX_AUTO */
    bool no_cuda;             /* --cuda off: every step on the CPU */
    uint64_t device_memory;   /* --device-memory: the device pool's limit (0: 90% of free) */
    uint32_t look_ahead;      /* --look-ahead: queued steps merged into one (merge.h); 1: off */
};

enum cfg_result {
    CFG_RUN,   /* start the daemon */
    CFG_EXIT,  /* --help or --version was printed: exit 0 */
    CFG_ERROR, /* a bad flag was reported: exit 2 */
};

enum cfg_result cfg_parse(struct cfg *cfg, int argc, char **argv, FILE *out, FILE *err);
void cfg_fini(struct cfg *cfg);

/* "123", "64K", "512M", "2G" (binary multiples) -> bytes. Returns false on
 * anything else, including overflow. Exposed for tests. */
bool cfg_parse_bytes(const char *s, uint64_t *out);

#endif
