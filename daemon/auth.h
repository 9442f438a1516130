/* auth.h: who a client is — users, their tokens and weights, read from the
 * daemon's configuration file (`kilnd --config FILE`).
 *
 * The file is JSON:
 *
 *     {
 *       "anonymous": "local",
 *       "users": [
 *         {"name": "alice", "token_sha256": "<64 hex digits>", "weight": 2},
 *         {"name": "bob",   "token_sha256": "<64 hex digits>",
 *          "quota": {"host_memory": "8G", "queued_steps": 32}}
 *       ],
 *       "quota": {"host_memory": "4G", "kernels": 20000, "compile_ms_per_minute": 30000}
 *     }
 *
 * A user is identified by the SHA-256 of its token (`kilnd --hash-token`
 * prints it), so the file never holds a usable secret. `weight` (default
 * 1, at most AUTH_MAX_WEIGHT) is the user's share of the machine.
 * `anonymous` says who may connect without a token: "none", "local"
 * (clients on an ipc:// socket, the default) or "all".
 *
 * Quotas bound what all sessions of one user hold or use together; the
 * top-level `quota` applies to every user (the anonymous one too) and a
 * user's own `quota` overrides it field by field. A missing field or 0
 * means no limit. Fields (sizes are integers or strings with a K, M or G
 * suffix, binary multiples):
 *   host_memory            bytes of tensors and queued uploads its
 *                          sessions hold in host memory (tensors spilled
 *                          to disk under the daemon's budget do not count
 *                          until they come back)
 *   device_memory          bytes of device memory its running steps hold
 *                          at once (inputs, intermediates and results on
 *                          the device; values the device keeps between
 *                          steps are its cache and do not count; no effect
 *                          on steps that run on the CPU)
 *   queued_steps           steps submitted and not yet finished
 *   kernels                kernel-cache misses its steps compiled since
 *                          kilnd started (kernels another user compiled
 *                          already cost nothing)
 *   compile_ms_per_minute  compile time its steps used over the last minute
 * Going over a quota is a QUOTA error to that user's request alone.
 *
 * Without a configuration file there are no users: every client is
 * anonymous, which is allowed on ipc:// (a private socket in a 0700
 * directory) and refused on tcp:// unless kilnd runs with
 * --allow-anonymous. HELLO carries the token (PROTOCOL.md); a token that
 * names no user is AUTH, as is a missing one where anonymous clients are
 * not allowed. Threads: loaded once at start, then read-only.
 */
#ifndef KILN_DAEMON_AUTH_H
#define KILN_DAEMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln_limits.h"

#define AUTH_MAX_USERS  4096
#define AUTH_MAX_WEIGHT 1000
#define AUTH_FILE_BYTES (1u << 20) /* a configuration file larger than this is refused */

enum auth_anonymous {
    AUTH_ANON_NONE = 0,
    AUTH_ANON_LOCAL = 1,
    AUTH_ANON_ALL = 2,
};

/* A user's limits; 0: none. */
struct auth_quota {
    uint64_t host_memory;
    uint64_t device_memory;
    uint64_t queued_steps;
    uint64_t kernels;
    uint64_t compile_ms_per_minute;
};

#define AUTH_MAX_QUEUED_STEPS (UINT64_C(1) << 20)
#define AUTH_MAX_KERNELS      (UINT64_C(1) << 32)
#define AUTH_MAX_COMPILE_MS   (UINT64_C(60) * 1000) /* a minute of compiling per minute */

struct auth_user {
    char name[KILN_LIMIT_NAME + 1];
    uint8_t token_sha256[32];
    uint32_t weight;
    struct auth_quota quota;
};

struct auth {
    bool configured; /* a file was loaded */
    int anonymous;   /* enum auth_anonymous */
    uint32_t nusers;
    struct auth_user *users;
    /* Tokenless clients: every client of a daemon without a
     * configuration, and those the configuration lets in without one.
     * Weight 1, the file's top-level quota. */
    struct auth_user anonymous_user;
};

/* No users, anonymous clients only, no quotas (kilnd without --config). */
void auth_init_open(struct auth *a);

/* Reads `path`. On failure returns -1 with `why` saying what is wrong
 * (and where: "users[2].token_sha256: ..."), and leaves *a empty. */
int auth_load(const char *path, struct auth *a, char *why, size_t whylen);
void auth_fini(struct auth *a);

/* Who the client presenting `token` (NULL or "": none) is, given whether
 * it came over a local (ipc://) connection: the user, or NULL when the
 * client is refused (then *why says why, for the AUTH reply). Every user's
 * hash is compared, in constant time, whichever matches. */
const struct auth_user *auth_check(const struct auth *a, bool allow_anonymous_remote,
                                   const char *token, size_t token_len, bool local,
                                   const char **why);

/* SHA-256 of `token` as 64 lower-case hex digits and a NUL. */
void auth_hash_hex(const char *token, size_t len, char hex[65]);

#endif
