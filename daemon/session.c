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
#include "auth.h"

void sess_table_init(struct sess_table *t, uint64_t mem_budget, const struct log *log)
{
    memset(t, 0, sizeof(*t));
    idmap_init(&t->by_id);
    idmap_init(&t->users);
    t->mem_budget = mem_budget;
    t->log = log;
}

void sess_table_fini(struct sess_table *t)
{
    while (t->oldest != NULL)
        sess_close(t, t->oldest, "shutdown");
    idmap_fini(&t->by_id);
    size_t cursor = 0;
    uint64_t key;
    void *val;
    while (idmap_next(&t->users, &cursor, &key, &val))
        free(val);
    idmap_fini(&t->users);
}

void sess_users_each(struct sess_table *t, void (*fn)(void *arg, struct sess_user *u), void *arg)
{
    size_t cursor = 0;
    uint64_t key;
    void *val;
    while (idmap_next(&t->users, &cursor, &key, &val))
        fn(arg, val);
}

/* The account of `user`, made on first use; NULL when out of memory. */
static struct sess_user *user_acct(struct sess_table *t, const struct auth_user *user)
{
    uint64_t key = (uint64_t) (uintptr_t) user;
    struct sess_user *u = idmap_get(&t->users, key);
    if (u != NULL)
        return u;
    if ((u = calloc(1, sizeof *u)) == NULL)
        return NULL;
    u->user = user;
    if (idmap_put(&t->users, key, u) != KILN_OK) {
        free(u);
        return NULL;
    }
    return u;
}

/* sess_open without a user (tests, embedded use): a plain anonymous user. */
static const struct auth_user default_user = {.name = "anonymous", .weight = 1};

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

int sess_open(struct sess_table *t, const char *client, const struct auth_user *user,
              uint64_t now_ms, struct sess **out,
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
    s->user = user ? user : &default_user;
    s->acct = user_acct(t, s->user);
    if (s->acct == NULL) {
        free(s);
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory opening a session");
    }
    s->opened_ms = s->last_active_ms = now_ms;
    idmap_init(&s->vars);
    if (idmap_put(&t->by_id, id, s) != KILN_OK) {
        free(s);
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory opening a session");
    }
    list_append(t, s);
    t->opened_total++;
    s->number = t->opened_total;
    s->acct->sessions++;
    s->acct->sessions_total++;

    struct log_line l;
    log_begin(&l, t->log, LOG_INFO, "session opened");
    log_hex(&l, "session", id);
    log_str(&l, "client", s->client);
    log_str(&l, "user", s->user->name);
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
    if (t->on_close != NULL)
        t->on_close(t->hook_arg, s);
    /* Remove the session first, so that vars freed below (and vars a
     * running step frees later) no longer find it and only return their
     * bytes to the daemon's total. */
    void *removed = idmap_remove(&t->by_id, s->id);
    assert(removed == s);
    (void) removed;
    list_unlink(t, s);
    s->acct->sessions--;

    size_t cursor = 0;
    uint64_t key;
    void *val;
    while (idmap_next(&s->vars, &cursor, &key, &val))
        sess_var_unref(t, val);
    idmap_fini(&s->vars);

    struct log_line l;
    log_begin(&l, t->log, LOG_INFO, "session closed");
    log_hex(&l, "session", s->id);
    log_str(&l, "client", s->client);
    log_str(&l, "reason", reason);
    log_end(&l);

    /* What is still charged belongs to vars a running step holds: they
     * stay in the daemon's total until the step drops them. */
    free(s);
}

uint64_t sess_expire(struct sess_table *t, uint64_t now_ms, uint64_t idle_ms)
{
    uint64_t n = 0;
    /* The list is ordered by last activity, and loop time never goes back. */
    while (t->oldest != NULL && now_ms - t->oldest->last_active_ms >= idle_ms) {
        if (t->is_busy != NULL && t->is_busy(t->hook_arg, t->oldest)) {
            /* Waiting on its own work is not idleness. */
            sess_touch(t, t->oldest, now_ms);
            continue;
        }
        sess_close(t, t->oldest, "idle");
        n++;
    }
    return n;
}

void sess_orphan(struct sess_table *t, uint32_t pipe, uint64_t now_ms)
{
    for (struct sess *s = t->oldest; s != NULL && pipe != 0; s = s->next)
        if (s->pipe == pipe && s->orphaned_ms == 0)
            s->orphaned_ms = now_ms ? now_ms : 1;
}

uint64_t sess_reap_orphans(struct sess_table *t, uint64_t now_ms, uint64_t grace_ms)
{
    uint64_t n = 0;
    for (struct sess *s = t->oldest, *next; s != NULL; s = next) {
        next = s->next;
        if (s->orphaned_ms != 0 && now_ms - s->orphaned_ms >= grace_ms) {
            sess_close(t, s, "disconnected");
            n++;
        }
    }
    return n;
}

int sess_mem_charge(struct sess_table *t, struct sess *s, uint64_t bytes, struct proto_error *err)
{
    /* Written as subtractions so that nothing can wrap. The user's quota
     * first: spilling cannot make room under it (spilled bytes leave the
     * user's count only when written), so a refused charge spills nothing. */
    struct sess_user *u = s->acct;
    uint64_t quota = u->user->quota.host_memory;
    if (quota != 0 && (u->mem_in_use > quota || bytes > quota - u->mem_in_use)) {
        u->refused++;
        return proto_error_set(err, KILN_EQUOTA, "",
                               "%" PRIu64 " bytes would exceed user \"%s\"'s host_memory quota (%" PRIu64
                               " of %" PRIu64 " in use by its sessions)",
                               bytes, u->user->name, u->mem_in_use, quota);
    }
    /* Over the budget, cold vars spill to disk first (spill.h rule 2). */
    if (t->spill != NULL && t->mem_budget != 0 && bytes <= UINT64_MAX - t->mem_in_use &&
        t->mem_in_use + bytes > t->mem_budget)
        spill_make_room(t->spill, t->mem_in_use + bytes - t->mem_budget);
    if (bytes > UINT64_MAX - t->mem_in_use ||
        (t->mem_budget != 0 &&
         (t->mem_in_use > t->mem_budget || bytes > t->mem_budget - t->mem_in_use))) {
        if (t->spill != NULL)
            spill_count_refused(t->spill);
        return proto_error_set(err, KILN_ENOMEM, "",
                               "%" PRIu64 " bytes would exceed the memory budget (%" PRIu64
                               " of %" PRIu64 " in use)",
                               bytes, t->mem_in_use, t->mem_budget);
    }
    t->mem_in_use += bytes;
    s->mem_in_use += bytes;
    u->mem_in_use += bytes;
    return KILN_OK;
}

void sess_mem_charge_over(struct sess_table *t, uint64_t id, struct sess_user *acct,
                          uint64_t bytes)
{
    struct sess *owner = sess_find(t, id);
    if (owner != NULL)
        owner->mem_in_use += bytes;
    if (acct != NULL)
        acct->mem_in_use += bytes;
    t->mem_in_use += bytes;
}

void sess_mem_uncharge(struct sess_table *t, struct sess *s, uint64_t bytes)
{
    /* Uncharging more than was charged is our bug; clamp rather than wrap
     * so one bug cannot turn into a budget that refuses everything. */
    if (bytes > s->mem_in_use)
        bytes = s->mem_in_use;
    s->mem_in_use -= bytes;
    sess_take(&s->acct->mem_in_use, bytes);
    sess_take(&t->mem_in_use, bytes);
}

bool sess_var_release(struct sess_table *t, struct sess *s, uint64_t id)
{
    struct sess_var *v = idmap_remove(&s->vars, id);
    if (v == NULL)
        return false;
    sess_var_unref(t, v);
    return true;
}

int sess_var_add(struct sess_table *t, struct sess *s, uint64_t id, uint8_t dtype, uint8_t rank,
                 const int64_t *shape, struct sess_var **out, const char *field,
                 struct proto_error *err)
{
    if (idmap_get(&s->vars, id) != NULL)
        return proto_error_set(err, KILN_EVALUE, field,
                               "var %" PRIu64 " is still kept by the session: release it first",
                               id);
    int rc = sess_mem_charge(t, s, SESS_VAR_OVERHEAD, err);
    if (rc != KILN_OK)
        return rc;
    struct sess_var *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        sess_mem_uncharge(t, s, SESS_VAR_OVERHEAD);
        return proto_error_set(err, KILN_ENOMEM, field, "out of memory for a var");
    }
    v->bytes = SESS_VAR_OVERHEAD;
    v->id = id;
    v->dtag = ++t->dtags;
    v->session = s->id;
    v->acct = s->acct;
    v->refs = 1;
    v->state = SESS_VAR_PENDING;
    v->dtype = dtype;
    v->rank = rank;
    if (rank > 0)
        memcpy(v->shape, shape, rank * sizeof(shape[0]));
    if (idmap_put(&s->vars, id, v) != KILN_OK) {
        free(v);
        sess_mem_uncharge(t, s, SESS_VAR_OVERHEAD);
        return proto_error_set(err, KILN_ENOMEM, field, "out of memory for a var");
    }
    *out = v;
    return KILN_OK;
}

struct sess_var *sess_var_get(const struct sess *s, uint64_t id)
{
    return idmap_get(&s->vars, id);
}

void sess_mem_uncharge_id(struct sess_table *t, uint64_t id, struct sess_user *acct,
                          uint64_t bytes)
{
    struct sess *owner = sess_find(t, id);
    if (owner != NULL) {
        sess_mem_uncharge(t, owner, bytes);
        return;
    }
    if (acct != NULL)
        sess_take(&acct->mem_in_use, bytes);
    sess_take(&t->mem_in_use, bytes);
}

void sess_var_unref(struct sess_table *t, struct sess_var *v)
{
    assert(v->refs > 0);
    if (--v->refs > 0)
        return;
    if (t->spill != NULL)
        spill_var_forget(t->spill, v);
    if (t->on_var_free != NULL)
        t->on_var_free(t->var_free_arg, v->dtag);
    sess_mem_uncharge_id(t, v->session, v->acct, v->bytes);
    jit_mem_free(v->mem, v->data, v->data_len);
    jit_mem_unref(v->mem);
    free(v);
}

int sess_var_set_ready(struct sess_table *t, struct sess_var *v, void *data, uint64_t bytes,
                       struct jit_mem *mem)
{
    struct proto_error err;
    struct sess *owner = sess_find(t, v->session);
    int rc = owner == NULL ? KILN_ESESSION : sess_mem_charge(t, owner, bytes, &err);
    if (rc != KILN_OK) {
        jit_mem_free(mem, data, bytes);
        if (owner == NULL)
            proto_error_set(&err, KILN_ESESSION, "", "the session ended");
        sess_var_set_failed(v, &err);
        return rc;
    }
    v->data = data;
    v->data_len = bytes;
    v->mem = mem;
    if (mem != NULL)
        jit_mem_ref(mem);
    v->bytes += bytes; /* on top of the record's overhead */
    v->state = SESS_VAR_READY;
    if (t->spill != NULL)
        spill_var_ready(t->spill, v);
    return KILN_OK;
}

void sess_var_set_failed(struct sess_var *v, const struct proto_error *e)
{
    v->state = SESS_VAR_FAILED;
    v->err_code = e->code;
    v->err_node = e->node;
    snprintf(v->err_msg, sizeof(v->err_msg), "%s", e->message);
}
