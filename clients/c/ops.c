/* ops.c: the requests of the public API that need no graph: PING and
 * STATUS. Each encodes into the connection's buffer, makes one round trip
 * and copies what the caller needs out of the decoded reply, so nothing
 * returned to the caller points into a message. */
#include <string.h>

#include "client_impl.h"

static int ops_simple(struct kiln_conn *c, int kind, struct client_reply *r, struct kiln_error *err)
{
    if (c == NULL)
        return client_error_set(err, KILN_EARG, "conn", "%s on a NULL connection",
                                proto_kind_name(kind));
    msgpack_sbuffer_clear(&c->sb);
    int rc = proto_encode_simple(&c->sb, kind, c->session.id);
    if (rc != KILN_OK)
        return client_error_set(err, rc, NULL, "cannot encode %s", proto_kind_name(kind));
    return client_call(c, kind, r, err);
}

int kiln_ping(kiln_conn *c, struct kiln_error *err)
{
    struct client_reply r;
    int rc = ops_simple(c, PROTO_PING, &r, err);
    if (rc == KILN_OK)
        client_reply_fini(&r);
    return rc;
}

int kiln_status(kiln_conn *c, struct kiln_status *st, struct kiln_error *err)
{
    if (st == NULL)
        return client_error_set(err, KILN_EARG, "status", "STATUS needs a struct to fill");
    struct client_reply r;
    int rc = ops_simple(c, PROTO_STATUS, &r, err);
    if (rc != KILN_OK)
        return rc;
    const struct proto_status *s = &r.rep.u.status;
    memset(st, 0, sizeof(*st));
    memcpy(st->server, s->server, sizeof(st->server));
    st->proto_min = s->proto_min;
    st->proto_max = s->proto_max;
    st->pid = s->pid;
    st->uptime_ms = s->uptime_ms;
    st->sessions = s->sessions;
    st->sessions_total = s->sessions_total;
    st->requests = s->requests;
    st->workers = s->workers;
    for (int code = 0; code < KILN_ERR_WIRE_COUNT; code++)
        st->errors[code] = s->errors[code];
    st->mem_in_use = s->mem_in_use;
    st->mem_budget = s->mem_budget;
    st->mem_rss = s->mem_rss;
    st->draining = s->draining;
    st->steps_done = s->steps_done;
    st->steps_failed = s->steps_failed;
    st->steps_running = s->steps_running;
    st->steps_queued = s->steps_queued;
    st->step_run_ms = s->step_run_ms;
    st->steps_merged = s->steps_merged;
    st->jit_enabled = s->jit_enabled;
    st->jit_kernels_compiled = s->jit_kernels_compiled;
    st->jit_kernel_hits = s->jit_kernel_hits;
    st->jit_compile_us = s->jit_compile_us;
    st->jit_plans = s->jit_plans;
    st->jit_plan_hits = s->jit_plan_hits;
    st->jit_kernels_run = s->jit_kernels_run;
    st->jit_kernels_cached = s->jit_kernels_cached;
    st->jit_fallbacks = s->jit_fallbacks;
    st->cc_enabled = s->cc_enabled;
    st->cc_kernels = s->cc_kernels;
    st->cc_promoted = s->cc_promoted;
    st->cc_compiles = s->cc_compiles;
    st->cc_failures = s->cc_failures;
    st->cc_compile_ms = s->cc_compile_ms;
    st->cc_disk_hits = s->cc_disk_hits;
    st->relay_library = s->relay_library;
    st->relay_runs = s->relay_runs;
    st->relay_library_runs = s->relay_library_runs;
    st->has_lists = s->has_lists;
    st->users_total = s->users_total;
    _Static_assert(KILN_STATUS_LIST_MAX == PROTO_STATUS_LIST_MAX, "one list size");
    st->nusers = s->nusers;
    for (uint32_t i = 0; i < s->nusers; i++) {
        const struct proto_status_user *u = &s->users[i];
        struct kiln_status_user *d = &st->users[i];
        memcpy(d->name, u->name, sizeof(d->name));
        d->weight = u->weight;
        d->sessions = u->sessions;
        d->queued = u->queued;
        d->running = u->running;
        d->steps = u->steps;
        d->kernel_ms = u->kernel_ms;
        d->memory = u->mem;
        d->kernels = u->kernels;
        d->compile_ms = u->compile_ms;
        d->refused = u->refused;
    }
    st->nsessions = s->nsessions;
    for (uint32_t i = 0; i < s->nsessions; i++) {
        const struct proto_status_session *x = &s->session_list[i];
        struct kiln_status_session *d = &st->session_list[i];
        d->number = x->number;
        memcpy(d->user, x->user, sizeof(d->user));
        memcpy(d->client, x->client, sizeof(d->client));
        d->queued = x->queued;
        d->running = x->running;
        d->steps = x->steps;
        d->kernel_ms = x->kernel_ms;
        d->memory = x->mem;
        d->vars = x->vars;
        d->idle_ms = x->idle_ms;
    }
    _Static_assert(KILN_TIERS_MAX == PROTO_TIERS_MAX &&
                       sizeof(st->tiers[0].name) == sizeof(s->tiers[0].name),
                   "libkiln reports every tier the codec decodes");
    st->ntiers = s->ntiers;
    for (uint32_t i = 0; i < s->ntiers; i++) {
        const struct proto_tier *t = &s->tiers[i];
        struct kiln_tier *o = &st->tiers[i];
        memcpy(o->name, t->name, sizeof(o->name));
        o->in_use = t->in_use;
        o->limit = t->limit;
        o->moving = t->moving;
        o->spills = t->spills;
        o->spilled_bytes = t->spilled_bytes;
        o->spill_ms = t->spill_ms;
        o->restores = t->restores;
        o->restored_bytes = t->restored_bytes;
        o->restore_ms = t->restore_ms;
        o->refused = t->refused;
    }
    _Static_assert(KILN_DEVICES_MAX == PROTO_DEVICES_MAX &&
                       sizeof(st->devices[0].name) == sizeof(s->devices[0].name) &&
                       sizeof(st->cuda_why) == sizeof(s->cuda_why) &&
                       sizeof(st->nvrtc) == sizeof(s->nvrtc) &&
                       sizeof(st->nvrtc_why) == sizeof(s->nvrtc_why) &&
                       sizeof(st->cuda_state) == sizeof(s->cuda_state),
                   "libkiln reports every device the codec decodes");
    st->has_devices = s->has_devices;
    st->ndevices = s->ndevices;
    for (uint32_t i = 0; i < s->ndevices; i++) {
        memcpy(st->devices[i].name, s->devices[i].name, sizeof(st->devices[i].name));
        st->devices[i].cc_major =
            s->devices[i].cc_major > UINT32_MAX ? UINT32_MAX : (uint32_t) s->devices[i].cc_major;
        st->devices[i].cc_minor =
            s->devices[i].cc_minor > UINT32_MAX ? UINT32_MAX : (uint32_t) s->devices[i].cc_minor;
        st->devices[i].memory = s->devices[i].memory;
    }
    memcpy(st->cuda_why, s->cuda_why, sizeof(st->cuda_why));
    st->cuda_driver = s->cuda_driver;
    memcpy(st->nvrtc, s->nvrtc, sizeof(st->nvrtc));
    memcpy(st->nvrtc_why, s->nvrtc_why, sizeof(st->nvrtc_why));
    memcpy(st->cuda_state, s->cuda_state, sizeof(st->cuda_state));
    st->cuda_steps = s->cuda_steps;
    st->cuda_fallbacks = s->cuda_fallbacks;
    client_reply_fini(&r);
    return KILN_OK;
}
