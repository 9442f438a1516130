/* log.c: logfmt lines with escaping; see log.h for the format and rules.
 *
 * Lines are assembled in a stack buffer with bounds checks on every append
 * (no snprintf return value is trusted to fit) and written with a single
 * write(2), retried on EINTR and short writes. Logging must never fail the
 * caller, so write errors are ignored. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Room kept at the end of a line for " truncated=1\n". */
#define LINE_RESERVE 16

void log_init(struct log *lg, enum log_level level, int fd)
{
    lg->level = level;
    lg->fd = fd;
}

bool log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level) i;
            return true;
        }
    }
    return false;
}

bool log_enabled(const struct log *lg, enum log_level level)
{
    return level >= lg->level;
}

static void put_bytes(struct log_line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - LINE_RESERVE - l->len;
    if (n > room) {
        n = room;
        l->truncated = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_str(struct log_line *l, const char *s)
{
    put_bytes(l, s, strlen(s));
}

/* A value in quotes. An escape sequence is written whole or not at all. */
static void put_quoted(struct log_line *l, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put_bytes(l, "\"", 1);
    for (size_t i = 0; i < n && !l->truncated; i++) {
        char esc[4];
        size_t k = 0;
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char) c;
        } else if (c < 0x20 || c >= 0x7f) {
            esc[k++] = '\\';
            esc[k++] = 'x';
            esc[k++] = hex[c >> 4];
            esc[k++] = hex[c & 15];
        } else {
            esc[k++] = (char) c;
        }
        if (sizeof(l->buf) - LINE_RESERVE - l->len < k + 1) { /* keep room for the closing quote */
            l->truncated = true;
            break;
        }
        put_bytes(l, esc, k);
    }
    /* The closing quote always fits: LINE_RESERVE holds it. */
    l->buf[l->len++] = '"';
}

static void put_key(struct log_line *l, const char *key)
{
    put_bytes(l, " ", 1);
    put_str(l, key);
    put_bytes(l, "=", 1);
}

void log_begin(struct log_line *l, const struct log *lg, enum log_level level, const char *msg)
{
    l->on = log_enabled(lg, level);
    l->truncated = false;
    l->len = 0;
    l->log = lg;
    if (!l->on)
        return;

    struct timespec ts;
    struct tm tm;
    char stamp[48];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    put_str(l, "ts=");
    put_str(l, stamp);
    put_str(l, " level=");
    put_str(l, level_names[level]);
    put_key(l, "msg");
    put_quoted(l, (const unsigned char *) msg, strlen(msg));
}

void log_str(struct log_line *l, const char *key, const char *value)
{
    log_mem(l, key, value, strlen(value));
}

void log_mem(struct log_line *l, const char *key, const void *value, size_t n)
{
    if (!l->on)
        return;
    put_key(l, key);
    put_quoted(l, value, n);
}

void log_u64(struct log_line *l, const char *key, uint64_t value)
{
    char num[24];
    if (!l->on)
        return;
    snprintf(num, sizeof(num), "%" PRIu64, value);
    put_key(l, key);
    put_str(l, num);
}

void log_i64(struct log_line *l, const char *key, int64_t value)
{
    char num[24];
    if (!l->on)
        return;
    snprintf(num, sizeof(num), "%" PRId64, value);
    put_key(l, key);
    put_str(l, num);
}

void log_hex(struct log_line *l, const char *key, uint64_t value)
{
    char num[24];
    if (!l->on)
        return;
    snprintf(num, sizeof(num), "%016" PRIx64, value);
    put_key(l, key);
    put_str(l, num);
}

void log_end(struct log_line *l)
{
    if (!l->on)
        return;
    /* LINE_RESERVE guarantees room for this tail. */
    if (l->truncated) {
        memcpy(l->buf + l->len, " truncated=1", 12);
        l->len += 12;
    }
    l->buf[l->len++] = '\n';

    size_t off = 0;
    while (off < l->len) {
        ssize_t w = write(l->log->fd, l->buf + off, l->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere to report it: drop the line */
        off += (size_t) w;
    }
    l->on = false;
}

void log_msg(const struct log *lg, enum log_level level, const char *msg)
{
    struct log_line l;
    log_begin(&l, lg, level, msg);
    log_end(&l);
}
