/* format.c: how the `kiln` command renders numbers and text for people
 * and for JSON. Binary units (KiB, MiB) match what kilnd's --memory-budget
 * accepts; durations keep only the two largest units, which is all a
 * reader needs to see how long a daemon has been up.
 *
 * Text that came from a daemon (its name, its error messages) is
 * untrusted: printed raw, a hostile daemon could move the cursor, retitle
 * the window or worse through terminal escape sequences, and could make
 * `status --json` invalid with bytes that are not UTF-8. So every string
 * is checked as UTF-8 here, byte by byte, without the locale: valid
 * printable characters pass, control characters (C0, DEL and C1) are
 * escaped, and each byte that does not start a valid UTF-8 sequence
 * becomes \xNN in text and U+FFFD in JSON. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

/* The length (2..4) of the valid UTF-8 sequence of a non-ASCII character
 * at p, with its code point in *cp; 0 if p does not start one (a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate
 * or a value above U+10FFFF). */
static int utf8_seq(const unsigned char *p, uint32_t *cp)
{
    int len;
    uint32_t c, min;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, c = p[0] & 0x1f, min = 0x80;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, c = p[0] & 0x0f, min = 0x800;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, c = p[0] & 0x07, min = 0x10000;
    else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static bool is_control(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

const char *cli_text(char *buf, size_t n, const char *s)
{
    size_t out = 0;
    const unsigned char *p = (const unsigned char *) s;
    while (*p != '\0') {
        char piece[17];
        int step = 1;
        uint32_t c = *p;
        if (c >= 0x80 && (step = utf8_seq(p, &c)) == 0)
            step = 1, c = 0x80; /* not UTF-8: escaped below like a control byte */
        if (c == '\\') {
            snprintf(piece, sizeof(piece), "\\\\");
        } else if (is_control(c)) {
            piece[0] = '\0';
            for (int i = 0; i < step; i++)
                snprintf(piece + 4 * i, sizeof(piece) - 4 * (size_t) i, "\\x%02x", p[i]);
        } else {
            memcpy(piece, p, (size_t) step);
            piece[step] = '\0';
        }
        size_t len = strlen(piece);
        if (out + len >= n)
            break; /* truncate between characters, never inside an escape */
        memcpy(buf + out, piece, len);
        out += len;
        p += step;
    }
    if (n > 0)
        buf[out] = '\0';
    return buf;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    const unsigned char *p = (const unsigned char *) s;
    while (*p != '\0') {
        uint32_t c = *p;
        int step = 1;
        if (c >= 0x80 && (step = utf8_seq(p, &c)) == 0) {
            fputs("\\ufffd", f); /* one replacement character per bad byte */
            p++;
            continue;
        }
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", (int) c);
        else if (is_control(c))
            fprintf(f, "\\u%04x", (unsigned) c);
        else
            fwrite(p, 1, (size_t) step, f);
        p += step;
    }
    fputc('"', f);
}

void cli_format_double(char *buf, size_t n, double v, bool single)
{
    if (isnan(v) || isinf(v)) {
        snprintf(buf, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    /* The first precision that reads back exactly; %.9g and %.17g always do. */
    for (int prec = 1; prec <= (single ? 9 : 17); prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (single ? strtof(buf, NULL) == (float) v : strtod(buf, NULL) == v)
            break;
    }
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
