/* format.c: how the `kiln` command renders numbers for people and for
 * JSON. Binary units (KiB, MiB) match what kilnd's --memory-budget
 * accepts; durations keep only the two largest units, which is all a
 * reader needs to see how long a daemon has been up. */
#include <errno.h>
#include <stdlib.h>

#include "cli.h"

void cli_format_bytes(char *buf, size_t n, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, n, "%llu B", (unsigned long long) bytes);
        return;
    }
    double v = (double) bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, n, "%.1f %s", v, units[u]);
}

void cli_format_duration(char *buf, size_t n, uint64_t ms)
{
    uint64_t s = ms / 1000, min = s / 60, h = min / 60, d = h / 24;
    if (s == 0)
        snprintf(buf, n, "%llu ms", (unsigned long long) ms);
    else if (min == 0)
        snprintf(buf, n, "%llu s", (unsigned long long) s);
    else if (h == 0)
        snprintf(buf, n, "%llu min %02llu s", (unsigned long long) min,
                 (unsigned long long) (s % 60));
    else if (d == 0)
        snprintf(buf, n, "%llu h %02llu min", (unsigned long long) h,
                 (unsigned long long) (min % 60));
    else
        snprintf(buf, n, "%llu d %02llu h", (unsigned long long) d, (unsigned long long) (h % 24));
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int cli_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
