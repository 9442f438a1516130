/* stats.h: daemon-wide counters reported by STATUS.
 *
 * The loop thread owns the counters: it counts every reply it sends (and
 * every error reply by code) and fills the STATUS reply from them plus the
 * session table and the process's resident set size. */
#ifndef KILND_STATS_H
#define KILND_STATS_H

#include <stdint.h>

#include "proto.h"

struct stats {
    uint64_t start_ms;                    /* loop time at start-up */
    uint64_t requests;                    /* replies sent, errors included */
    uint64_t errors[KILN_ERR_WIRE_COUNT]; /* error replies by code */
};

void stats_init(struct stats *st, uint64_t now_ms);

/* Count one reply with `code` (KILN_OK or a wire error code). */
void stats_count_reply(struct stats *st, int code);

/* Resident set size of this process in bytes, from /proc/self/statm; 0 when
 * it cannot be read. Blocks only on procfs, which never waits on I/O. */
uint64_t stats_rss_bytes(void);

#endif
