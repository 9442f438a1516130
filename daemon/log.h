/* log.h: levelled, structured log lines (logfmt) on stderr.
 *
 * One line per event: `ts=... level=info msg="session opened" session=1a2b
 * client="demo"`. A line is built field by field in a fixed buffer and
 * written with one write(2), so lines from different threads never
 * interleave. Every string value is quoted and escaped (quote, backslash,
 * bytes outside printable ASCII as \xNN), so text that came from a client
 * can never start a new line or forge a field.
 *
 * A `struct log` is plain configuration; it may be shared by threads as
 * long as nobody changes the level meanwhile. A `struct log_line` belongs to
 * the thread that builds it. Nothing here can fail: text that does not fit
 * a line is cut and the line ends with `truncated=1`.
 */
#ifndef KILND_LOG_H
#define KILND_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct log {
    enum log_level level; /* lines below this level are dropped */
    int fd;               /* where lines go: 2 (stderr) normally */
};

#define LOG_LINE_MAX 1024

struct log_line {
    bool on;        /* false when the level is filtered out: calls are no-ops */
    bool truncated; /* something did not fit */
    size_t len;
    const struct log *log;
    char buf[LOG_LINE_MAX];
};

void log_init(struct log *lg, enum log_level level, int fd);

/* "debug", "info", "warn", "error" -> level; returns false for anything else. */
bool log_level_parse(const char *name, enum log_level *out);

/* True when a line at `level` would be written: lets callers skip work. */
bool log_enabled(const struct log *lg, enum log_level level);

/* Start a line with ts, level and msg (msg is ours, but quoted all the same). */
void log_begin(struct log_line *l, const struct log *lg, enum log_level level, const char *msg);
/* Append `key=value`. Keys are ours and written as given. */
void log_str(struct log_line *l, const char *key, const char *value); /* quoted, escaped */
void log_mem(struct log_line *l, const char *key, const void *value, size_t n); /* same, any bytes */
void log_u64(struct log_line *l, const char *key, uint64_t value);
void log_i64(struct log_line *l, const char *key, int64_t value);
void log_hex(struct log_line *l, const char *key, uint64_t value); /* 16 hex digits: ids */
/* Finish the line and write it. */
void log_end(struct log_line *l);

/* A line with just a message. */
void log_msg(const struct log *lg, enum log_level level, const char *msg);

#endif
