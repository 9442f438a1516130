/* stats.c: reply counters and the resident set size (see stats.h). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"

void stats_init(struct stats *st, uint64_t now_ms)
{
    memset(st, 0, sizeof(*st));
    st->start_ms = now_ms;
}

void stats_count_reply(struct stats *st, int code)
{
    st->requests++;
    /* A code outside the wire range would be our bug; count it as internal
     * rather than index out of bounds. */
    if (code != KILN_OK)
        st->errors[code > 0 && code < KILN_ERR_WIRE_COUNT ? code : KILN_EINTERNAL]++;
}

uint64_t stats_rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2 || page <= 0)
        return 0;
    if (resident > UINT64_MAX / (uint64_t) page)
        return UINT64_MAX;
    return resident * (uint64_t) page;
}
