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

/* Print a failed call's error as "kiln: WHAT: NAME: message". */
void cli_report(const char *what, const struct kiln_error *e);

int cli_cmd_ping(const struct cli_opts *o, int argc, char **argv);
int cli_cmd_status(const struct cli_opts *o, int argc, char **argv);

/* "512 B", "1.5 KiB", "12.3 MiB", ... */
void cli_format_bytes(char *buf, size_t n, uint64_t bytes);
/* "42 ms", "3 s", "5 min 02 s", "2 h 03 min", "4 d 05 h" */
void cli_format_duration(char *buf, size_t n, uint64_t ms);
/* Write s as a JSON string literal, quotes included. */
void cli_json_string(FILE *f, const char *s);
/* Parse a decimal integer in [min, max]; returns 0, or -1 if s is not one. */
int cli_parse_long(const char *s, long min, long max, long *out);

#endif
