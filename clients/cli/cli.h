/* cli.h: internals of the `kiln` command shared by its files.
 *
 * main.c parses the global options and dispatches; each cmd_*.c file owns
 * one command (its own options, its output); format.c renders sizes,
 * durations and JSON strings; graph_json.c reads the graph files of
 * `kiln submit` and names.c holds the op and dtype names they may use. Commands return the process
 * exit status: CLI_EXIT_OK, CLI_EXIT_FAIL (the daemon or the connection failed) or CLI_EXIT_USAGE.
 * Everything goes to stdout except diagnostics, which are one line each on stderr prefixed with
 * "kiln: ".
 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kiln.h"

/* Element data is little-endian on the wire and in kiln_tensor; the
 * command reads and writes it as native numbers. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kiln submit converts element data as native numbers: little-endian hosts only"
#endif

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
int cli_cmd_submit(const struct cli_opts *o, int argc, char **argv);
int cli_cmd_top(const struct cli_opts *o, int argc, char **argv);

/* ---- names (names.c) ---- */

/* A name for a wire number: `kiln submit` accepts both. */
struct cli_name {
    const char *name;
    uint32_t value;
};
struct cli_names {
    const struct cli_name *v;
    size_t n;
};
/* PROTOCOL.md §8's op names, dtype names (1..7), reduce_op names (add,
 * mul, max, min, mean) and random's dist names (uniform, normal). */
extern const struct cli_names cli_op_names, cli_dtype_names, cli_reduce_op_names, cli_dist_names;
/* The number called `name`: 0 with *out set, or -1 if there is none. */
int cli_name_find(const struct cli_names *t, const char *name, uint32_t *out);
/* The name of `value`, or NULL. */
const char *cli_name_of(const struct cli_names *t, uint32_t value);

/* ---- a graph read from JSON (graph_json.c) ---- */

/* A SUBMIT read from a JSON file, ready for kiln_submit(). The nodes'
 * strings point into the parsed document and their data into buffers the
 * graph owns; cli_graph_fini() frees all of it (safe on a zeroed one). */
struct cli_graph {
    struct json_t *root;
    struct kiln_node *nodes;
    size_t nnodes;
    void **bufs; /* data of node i, or NULL */
    uint64_t *keep;
    size_t nkeep;
    uint64_t *fetch; /* the file's "fetch", checked against keep */
    size_t nfetch;
};

/* Read `path` ("-": stdin) into g. Returns 0, or -1 after printing one
 * line on stderr that names the file and the culprit: the line and
 * column of a JSON syntax error, or the node (index and id) and field of
 * a schema error. */
int cli_graph_read(struct cli_graph *g, const char *path);
void cli_graph_fini(struct cli_graph *g);

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
/* v in the fewest significant digits that read back (strtof when single,
 * else strtod) as the same value, in %g form ("0.1", "1e+300", "-0");
 * "nan", "inf" or "-inf" for the special values. 32 bytes always do. */
void cli_format_double(char *buf, size_t n, double v, bool single);
/* Parse a decimal integer in [min, max]; returns 0, or -1 if s is not one. */
int cli_parse_long(const char *s, long min, long max, long *out);

#endif
