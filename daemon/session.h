/* session.h: client sessions, their var tables and memory accounting.
 *
 * A session is what HELLO opens: an unguessable random id (never 0), the
 * client's name, a table of vars (client-assigned ids -> entries; the
 * entries gain tensors with the core issue), and the bytes it holds. The
 * table keeps sessions in order of last activity so the idle sweep only
 * looks at the ones that may have expired.
 *
 * Memory accounting: every byte a session holds for a client is charged
 * here with sess_mem_charge() before it is allocated, against the daemon's
 * budget, and uncharged when freed; closing a session returns all of it.
 *
 * Ownership: the table owns its sessions and each session owns its vars.
 * Only the loop thread touches any of it. sess_table_fini() is safe on a
 * zeroed table and closes whatever is still open.
 */
#ifndef KILND_SESSION_H
#define KILND_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "idmap.h"
#include "log.h"
#include "proto.h"

/* HELLO beyond this many open sessions gets KILN_EBUSY: each session costs
 * memory, and a client must not be able to exhaust it by saying hello. */
#define SESS_MAX_OPEN 16384

/* One entry of a var table. Only its accounting exists so far. */
struct sess_var {
    uint64_t bytes; /* charged to the session while the var lives */
};

struct sess {
    uint64_t id;
    char client[KILN_LIMIT_NAME + 1];
    uint64_t opened_ms;      /* loop time of HELLO */
    uint64_t last_active_ms; /* loop time of the latest request */
    uint64_t mem_in_use;     /* bytes charged to this session */
    struct idmap vars;       /* var id -> struct sess_var * */
    struct sess *prev, *next; /* activity order, least recent first */
};

struct sess_table {
    struct idmap by_id; /* session id -> struct sess * */
    struct sess *oldest, *newest;
    uint64_t opened_total;
    uint64_t mem_in_use; /* bytes charged by all sessions */
    uint64_t mem_budget; /* 0: no budget */
    const struct log *log;
};

void sess_table_init(struct sess_table *t, uint64_t mem_budget, const struct log *log);
void sess_table_fini(struct sess_table *t);

static inline uint64_t sess_count(const struct sess_table *t)
{
    return idmap_count(&t->by_id);
}

/* Open a session for `client` (NUL-terminated, already validated by the
 * codec). Returns KILN_OK and the session, or KILN_EBUSY / KILN_ENOMEM /
 * KILN_EINTERNAL (no randomness) with `err` filled. */
int sess_open(struct sess_table *t, const char *client, uint64_t now_ms, struct sess **out,
              struct proto_error *err);

/* The live session with this id, or NULL (0 is never a session). */
struct sess *sess_find(const struct sess_table *t, uint64_t id);

/* Record a request: the session becomes the most recently active. */
void sess_touch(struct sess_table *t, struct sess *s, uint64_t now_ms);

/* End a session and free everything it holds; `reason` goes to the log
 * ("bye", "idle", "shutdown"). */
void sess_close(struct sess_table *t, struct sess *s, const char *reason);

/* End every session idle for at least `idle_ms` at `now_ms`; returns how
 * many were ended. */
uint64_t sess_expire(struct sess_table *t, uint64_t now_ms, uint64_t idle_ms);

/* Charge `bytes` to `s` within the budget: KILN_OK, or KILN_ENOMEM with
 * `err` filled and nothing charged. */
int sess_mem_charge(struct sess_table *t, struct sess *s, uint64_t bytes, struct proto_error *err);
/* Return bytes charged earlier. */
void sess_mem_uncharge(struct sess_table *t, struct sess *s, uint64_t bytes);

/* Drop var `id` from the session's table. Returns false when it names
 * nothing (RELEASE is idempotent: that is counted, not an error). */
bool sess_var_release(struct sess_table *t, struct sess *s, uint64_t id);

#endif
