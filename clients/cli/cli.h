/* cli.h: internals of the `kiln` command shared by its files.
 *
 * main.c parses the global options and dispatches; each cmd_*.c file owns
 * one command (its own options, its output); format.c renders sizes,
 * durations and JSON strings. Commands return the process exit status:
 * CLI_EXIT_OK, CLI_EXIT_FAIL (the daemon or the connection failed) or
 * CLI_EXIT_USAGE. Everything goes to stdout except diagnostics, which are
 * one line each on stderr prefixed with "kiln: ".
 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kiln.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* Global options, set before the command name. */
struct cli_opts {
    const char *address; /* NULL: $KILN_ADDRESS or the default ipc:// socket */
    int timeout_ms;      /* 0: the library default */
};

/* Connect as the `kiln` client. On failure prints one line on stderr
 * (naming the address and what to do) and returns NULL. */
kiln_conn *cli_connect(const struct cli_opts *o);

/* Print a failed call's error on stderr as
 * "kiln: WHAT: daemon error NAME (field): message" for a code the daemon
 * sent, or "kiln: WHAT: error NAME (field): message" for one that arose
 * here (and for KILN_ENOMEM, which may be either). Field and message are
 * passed through cli_text(). */
void cli_report(const char *what, const struct kiln_error *e);

int cli_cmd_ping(const struct cli_opts *o, int argc, char **argv);
int cli_cmd_status(const struct cli_opts *o, int argc, char **argv);

/* "512 B", "1.5 KiB", "12.3 MiB", ... */
void cli_format_bytes(char *buf, size_t n, uint64_t bytes);
/* "42 ms", "3 s", "5 min 02 s", "2 h 03 min", "4 d 05 h" */
void cli_format_duration(char *buf, size_t n, uint64_t ms);
/* Copy s into buf (n bytes) as text safe for a terminal: printable
 * UTF-8 is kept; a backslash becomes \\; control characters (C0, DEL,
 * C1) and bytes that are not valid UTF-8 become \xNN, one per byte.
 * Truncates between characters to fit. Returns buf. Use it on every
 * string a daemon supplied (and on the rest: it costs nothing). */
const char *cli_text(char *buf, size_t n, const char *s);
/* A buffer for cli_text() that holds any string of len bytes. */
#define CLI_TEXT_SIZE(len) (4 * (len) + 1)
/* Write s as a JSON string literal, quotes included, that is valid JSON
 * and valid UTF-8 whatever s holds: " and \ are escaped, control
 * characters (C0, DEL, C1) become \u00NN, and each byte that does not
 * start a valid UTF-8 sequence becomes \ufffd (U+FFFD). */
void cli_json_string(FILE *f, const char *s);
/* Parse a decimal integer in [min, max]; returns 0, or -1 if s is not one. */
int cli_parse_long(const char *s, long min, long max, long *out);

#endif
