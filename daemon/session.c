/* session.c: the session table (see session.h).
 *
 * Ids come from getrandom(2): a session id is the only thing that ties a
 * request to a client's state, so it must not be guessable by another
 * client of the same daemon. Sessions sit in a doubly linked list in order
 * of last activity; a touch moves one to the end, so the idle sweep walks
 * from the front and stops at the first session that is still fresh. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "session.h"

void sess_table_init(struct sess_table *t, uint64_t mem_budget, const struct log *log)
{
    memset(t, 0, sizeof(*t));
    idmap_init(&t->by_id);
    t->mem_budget = mem_budget;
    t->log = log;
}

void sess_table_fini(struct sess_table *t)
{
    while (t->oldest != NULL)
        sess_close(t, t->oldest, "shutdown");
    idmap_fini(&t->by_id);
}

static bool random_u64(uint64_t *out)
{
    size_t got = 0;
    while (got < sizeof(*out)) {
        ssize_t n = getrandom((char *) out + got, sizeof(*out) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        got += (size_t) n;
    }
    return true;
}

static void list_unlink(struct sess_table *t, struct sess *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        t->oldest = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    else
        t->newest = s->prev;
    s->prev = s->next = NULL;
}

static void list_append(struct sess_table *t, struct sess *s)
{
    s->prev = t->newest;
    s->next = NULL;
    if (t->newest != NULL)
        t->newest->next = s;
    else
        t->oldest = s;
    t->newest = s;
}

int sess_open(struct sess_table *t, const char *client, uint64_t now_ms, struct sess **out,
              struct proto_error *err)
{
    if (sess_count(t) >= SESS_MAX_OPEN)
        return proto_error_set(err, KILN_EBUSY, "", "too many open sessions (%d)",
                               SESS_MAX_OPEN);
    uint64_t id;
    do {
        if (!random_u64(&id))
            return proto_error_set(err, KILN_EINTERNAL, "", "no randomness for a session id: %s",
                                   strerror(errno));
    } while (id == 0 || idmap_get(&t->by_id, id) != NULL);

    struct sess *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory opening a session");
    s->id = id;
    snprintf(s->client, sizeof(s->client), "%s", client);
    s->opened_ms = s->last_active_ms = now_ms;
    idmap_init(&s->vars);
    if (idmap_put(&t->by_id, id, s) != KILN_OK) {
        free(s);
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory opening a session");
    }
    list_append(t, s);
    t->opened_total++;

    struct log_line l;
    log_begin(&l, t->log, LOG_INFO, "session opened");
    log_hex(&l, "session", id);
    log_str(&l, "client", s->client);
    log_u64(&l, "sessions", sess_count(t));
    log_end(&l);
    *out = s;
    return KILN_OK;
}

struct sess *sess_find(const struct sess_table *t, uint64_t id)
{
    return id == 0 ? NULL : idmap_get(&t->by_id, id);
}

void sess_touch(struct sess_table *t, struct sess *s, uint64_t now_ms)
{
    s->last_active_ms = now_ms;
    if (t->newest != s) {
        list_unlink(t, s);
        list_append(t, s);
    }
}

void sess_close(struct sess_table *t, struct sess *s, const char *reason)
{
    size_t cursor = 0;
    uint64_t key;
    void *val;
    while (idmap_next(&s->vars, &cursor, &key, &val)) {
        struct sess_var *v = val;
        sess_mem_uncharge(t, s, v->bytes);
        free(v);
    }
    idmap_fini(&s->vars);

    struct log_line l;
    log_begin(&l, t->log, LOG_INFO, "session closed");
    log_hex(&l, "session", s->id);
    log_str(&l, "client", s->client);
    log_str(&l, "reason", reason);
    log_end(&l);

    /* Every charge belongs to a var, so all of it has been returned. */
    if (s->mem_in_use != 0) {
        struct log_line e;
        log_begin(&e, t->log, LOG_ERROR, "session memory accounting is off");
        log_hex(&e, "session", s->id);
        log_u64(&e, "bytes", s->mem_in_use);
        log_end(&e);
        sess_mem_uncharge(t, s, s->mem_in_use);
    }
    void *removed = idmap_remove(&t->by_id, s->id);
    assert(removed == s);
    (void) removed;
    list_unlink(t, s);
    free(s);
}

uint64_t sess_expire(struct sess_table *t, uint64_t now_ms, uint64_t idle_ms)
{
    uint64_t n = 0;
    /* The list is ordered by last activity, and loop time never goes back. */
    while (t->oldest != NULL && now_ms - t->oldest->last_active_ms >= idle_ms) {
        sess_close(t, t->oldest, "idle");
        n++;
    }
    return n;
}

int sess_mem_charge(struct sess_table *t, struct sess *s, uint64_t bytes, struct proto_error *err)
{
    /* Written as subtractions so that nothing can wrap. */
    if (bytes > UINT64_MAX - t->mem_in_use ||
        (t->mem_budget != 0 &&
         (t->mem_in_use > t->mem_budget || bytes > t->mem_budget - t->mem_in_use)))
        return proto_error_set(err, KILN_ENOMEM, "",
                               "%" PRIu64 " bytes would exceed the memory budget (%" PRIu64
                               " of %" PRIu64 " in use)",
                               bytes, t->mem_in_use, t->mem_budget);
    t->mem_in_use += bytes;
    s->mem_in_use += bytes;
    return KILN_OK;
}

void sess_mem_uncharge(struct sess_table *t, struct sess *s, uint64_t bytes)
{
    /* Uncharging more than was charged is our bug; clamp rather than wrap
     * so one bug cannot turn into a budget that refuses everything. */
    if (bytes > s->mem_in_use)
        bytes = s->mem_in_use;
    s->mem_in_use -= bytes;
    t->mem_in_use -= bytes <= t->mem_in_use ? bytes : t->mem_in_use;
}

bool sess_var_release(struct sess_table *t, struct sess *s, uint64_t id)
{
    struct sess_var *v = idmap_remove(&s->vars, id);
    if (v == NULL)
        return false;
    sess_mem_uncharge(t, s, v->bytes);
    free(v);
    return true;
}
