/* auth.h: who a client is — users, their tokens and weights, read from the
 * daemon's configuration file (`kilnd --config FILE`).
 *
 * The file is JSON:
 *
 *     {
 *       "anonymous": "local",
 *       "users": [
 *         {"name": "alice", "token_sha256": "<64 hex digits>", "weight": 2},
 *         {"name": "bob",   "token_sha256": "<64 hex digits>"}
 *       ]
 *     }
 *
 * A user is identified by the SHA-256 of its token (`kilnd --hash-token`
 * prints it), so the file never holds a usable secret. `weight` (default
 * 1, at most AUTH_MAX_WEIGHT) is the user's share of the machine.
 * `anonymous` says who may connect without a token: "none", "local"
 * (clients on an ipc:// socket, the default) or "all".
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

struct auth_user {
    char name[KILN_LIMIT_NAME + 1];
    uint8_t token_sha256[32];
    uint32_t weight;
};

struct auth {
    bool configured; /* a file was loaded */
    int anonymous;   /* enum auth_anonymous */
    uint32_t nusers;
    struct auth_user *users;
};

/* The anonymous user: every client of a daemon without a configuration,
 * and tokenless clients where the configuration allows them. */
extern const struct auth_user auth_anonymous_user;

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
