/* reply.c: decoding replies on the client side.
 *
 * Replies are read leniently where that keeps old clients working: a daemon
 * may add fields to a reply within one protocol version, so unknown fields
 * are skipped. Everything a client relies on is still checked, and a reply
 * that breaks the protocol becomes KILN_EPROTO naming the field. The
 * structural scan and limits apply to replies exactly as to requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_impl.h"

#define P KILN_EPROTO /* the type-error code for replies */

static int get_u64(const msgpack_object *map, const char *key, const char *field, uint64_t *out,
                   struct proto_error *err)
{
    return proto_get_uint(proto_map_get(map, key), field, UINT64_MAX, out, P, err);
}

static int get_map(const msgpack_object *map, const char *key, const char *field,
                   const msgpack_object **out, struct proto_error *err)
{
    const msgpack_object *o = proto_map_get(map, key);
    if (o == NULL || o->type != MSGPACK_OBJECT_MAP)
        return proto_error_set(err, P, field, "%s must be a map", field);
    *out = o;
    return KILN_OK;
}

static int decode_error_body(struct proto_reply *rep, const msgpack_object *body,
                             struct proto_error *err)
{
    struct proto_error *e = &rep->error;
    int rc;
    if ((rc = proto_check_keys(body, NULL, 0, true, "body", err)) != KILN_OK)
        return rc;
    e->code = rep->code;
    e->node = -1;
    const msgpack_object *msg = proto_map_get(body, "message");
    const msgpack_object *field = proto_map_get(body, "field");
    const msgpack_object *node = proto_map_get(body, "node");
    if ((rc = proto_get_str_trunc(msg, "body.message", e->message, sizeof(e->message), P, err)) !=
        KILN_OK)
        return rc;
    if (field != NULL &&
        (rc = proto_get_str_trunc(field, "body.field", e->field, sizeof(e->field), P, err)) != KILN_OK)
        return rc;
    if (node != NULL && (rc = proto_get_int(node, "body.node", &e->node, P, err)) != KILN_OK)
        return rc;
    return KILN_OK;
}

static int decode_limits(const msgpack_object *m, struct proto_limits *l, struct proto_error *err)
{
    const struct {
        const char *key;
        uint64_t *dst;
    } f[] = {
        {"message_bytes", &l->message_bytes}, {"depth", &l->depth},
        {"container_items", &l->container_items}, {"objects", &l->objects},
        {"string", &l->string}, {"name", &l->name}, {"token", &l->token},
        {"nodes", &l->nodes}, {"rank", &l->rank}, {"dim", &l->dim},
        {"elements", &l->elements}, {"var_ids", &l->var_ids},
        {"node_inputs", &l->node_inputs}, {"expr_bytes", &l->expr_bytes},
        {"expr_nodes", &l->expr_nodes}, {"expr_depth", &l->expr_depth},
        {"conds", &l->conds},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        char field[PROTO_FIELD_MAX];
        strcpy(field, "body.limits.");
        strncat(field, f[i].key, sizeof(field) - strlen(field) - 1);
        int rc = get_u64(m, f[i].key, field, f[i].dst, err);
        if (rc != KILN_OK)
            return rc;
    }
    /* Added with gradients: optional, so older daemons still decode. */
    const msgpack_object *gp = proto_map_get(m, "grad_passes");
    if (gp != NULL)
        return get_u64(m, "grad_passes", "body.limits.grad_passes", &l->grad_passes, err);
    return KILN_OK;
}

static int decode_hello(struct proto_hello_reply *r, const msgpack_object *b,
                        struct proto_error *err)
{
    uint64_t proto = 0;
    const msgpack_object *limits = NULL;
    int rc;
    if ((rc = get_u64(b, "proto", "body.proto", &proto, err)) != KILN_OK ||
        (rc = get_u64(b, "session", "body.session", &r->session, err)) != KILN_OK ||
        (rc = proto_get_str_trunc(proto_map_get(b, "server"), "body.server", r->server,
                              sizeof(r->server), P, err)) != KILN_OK ||
        (rc = get_u64(b, "idle_timeout_ms", "body.idle_timeout_ms", &r->idle_timeout_ms, err)) !=
            KILN_OK ||
        (rc = get_map(b, "limits", "body.limits", &limits, err)) != KILN_OK ||
        (rc = decode_limits(limits, &r->limits, err)) != KILN_OK)
        return rc;
    if (proto == 0 || proto > UINT32_MAX)
        return proto_error_set(err, P, "body.proto", "HELLO reply names protocol version %llu",
                               (unsigned long long) proto);
    if (r->session == 0)
        return proto_error_set(err, P, "body.session", "HELLO reply carries session 0");
    r->proto = (uint32_t) proto;
    return KILN_OK;
}

/* STATUS's optional users and sessions lists. */
static int decode_status_lists(struct proto_status *s, const msgpack_object *b,
                               struct proto_error *err)
{
    const msgpack_object *us = proto_map_get(b, "users"), *ss = proto_map_get(b, "session_list");
    if (us == NULL && ss == NULL)
        return KILN_OK;
    if (us == NULL || ss == NULL || us->type != MSGPACK_OBJECT_ARRAY ||
        ss->type != MSGPACK_OBJECT_ARRAY || us->via.array.size > PROTO_STATUS_LIST_MAX ||
        ss->via.array.size > PROTO_STATUS_LIST_MAX)
        return proto_error_set(err, P, "body.users",
                               "body.users and body.session_list must be arrays of at most %d "
                               "entries, given together",
                               PROTO_STATUS_LIST_MAX);
    int rc = get_u64(b, "users_total", "body.users_total", &s->users_total, err);
    if (rc != KILN_OK)
        return rc;
    uint32_t nu = us->via.array.size, ns = ss->via.array.size;
    s->users = calloc(nu ? nu : 1, sizeof(*s->users));
    s->session_list = calloc(ns ? ns : 1, sizeof(*s->session_list));
    s->has_lists = true;
    if (s->users == NULL || s->session_list == NULL)
        return proto_error_set(err, KILN_ENOMEM, "body.users", "out of memory for the lists");
    char f[PROTO_FIELD_MAX];
    for (uint32_t i = 0; i < nu; i++) {
        const msgpack_object *m = &us->via.array.ptr[i];
        struct proto_status_user *u = &s->users[i];
        snprintf(f, sizeof f, "body.users[%u]", i);
        if (m->type != MSGPACK_OBJECT_MAP)
            return proto_error_set(err, P, f, "%s must be a map", f);
        if ((rc = proto_get_str_trunc(proto_map_get(m, "name"), f, u->name, sizeof u->name, P,
                                      err)) != KILN_OK ||
            (rc = get_u64(m, "weight", f, &u->weight, err)) != KILN_OK ||
            (rc = get_u64(m, "sessions", f, &u->sessions, err)) != KILN_OK ||
            (rc = get_u64(m, "queued", f, &u->queued, err)) != KILN_OK ||
            (rc = get_u64(m, "running", f, &u->running, err)) != KILN_OK ||
            (rc = get_u64(m, "steps", f, &u->steps, err)) != KILN_OK ||
            (rc = get_u64(m, "kernel_ms", f, &u->kernel_ms, err)) != KILN_OK ||
            (rc = get_u64(m, "memory", f, &u->mem, err)) != KILN_OK ||
            (rc = get_u64(m, "kernels", f, &u->kernels, err)) != KILN_OK ||
            (rc = get_u64(m, "compile_ms", f, &u->compile_ms, err)) != KILN_OK ||
            (rc = get_u64(m, "refused", f, &u->refused, err)) != KILN_OK)
            return rc;
        s->nusers = i + 1;
    }
    for (uint32_t i = 0; i < ns; i++) {
        const msgpack_object *m = &ss->via.array.ptr[i];
        struct proto_status_session *x = &s->session_list[i];
        snprintf(f, sizeof f, "body.session_list[%u]", i);
        if (m->type != MSGPACK_OBJECT_MAP)
            return proto_error_set(err, P, f, "%s must be a map", f);
        if ((rc = get_u64(m, "number", f, &x->number, err)) != KILN_OK ||
            (rc = proto_get_str_trunc(proto_map_get(m, "user"), f, x->user, sizeof x->user, P,
                                      err)) != KILN_OK ||
            (rc = proto_get_str_trunc(proto_map_get(m, "client"), f, x->client, sizeof x->client,
                                      P, err)) != KILN_OK ||
            (rc = get_u64(m, "queued", f, &x->queued, err)) != KILN_OK ||
            (rc = proto_get_bool(proto_map_get(m, "running"), f, &x->running, P, err)) !=
                KILN_OK ||
            (rc = get_u64(m, "steps", f, &x->steps, err)) != KILN_OK ||
            (rc = get_u64(m, "kernel_ms", f, &x->kernel_ms, err)) != KILN_OK ||
            (rc = get_u64(m, "memory", f, &x->mem, err)) != KILN_OK ||
            (rc = get_u64(m, "vars", f, &x->vars, err)) != KILN_OK ||
            (rc = get_u64(m, "idle_ms", f, &x->idle_ms, err)) != KILN_OK)
            return rc;
        s->nsessions = i + 1;
    }
    return KILN_OK;
}

/* memory.tiers (optional: daemons before spilling do not send it). */
static int decode_tiers(struct proto_status *s, const msgpack_object *mem, struct proto_error *err)
{
    const msgpack_object *a = proto_map_get(mem, "tiers");
    if (a == NULL)
        return KILN_OK;
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > PROTO_TIERS_MAX)
        return proto_error_set(err, P, "body.memory.tiers",
                               "body.memory.tiers must be an array of at most %d tiers",
                               PROTO_TIERS_MAX);
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *m = &a->via.array.ptr[i];
        struct proto_tier *t = &s->tiers[i];
        char f[PROTO_FIELD_MAX];
        if (m->type != MSGPACK_OBJECT_MAP) {
            snprintf(f, sizeof(f), "body.memory.tiers[%u]", i);
            return proto_error_set(err, P, f, "%s must be a map", f);
        }
        snprintf(f, sizeof(f), "body.memory.tiers[%u].name", i);
        int rc = proto_get_str_trunc(proto_map_get(m, "name"), f, t->name, sizeof(t->name), P, err);
        if (rc != KILN_OK)
            return rc;
        static const char *const keys[] = {"in_use", "limit", "moving", "spills",
                                           "spilled_bytes", "spill_ms", "restores",
                                           "restored_bytes", "restore_ms", "refused"};
        uint64_t *dst[] = {&t->in_use, &t->limit, &t->moving, &t->spills, &t->spilled_bytes,
                           &t->spill_ms, &t->restores, &t->restored_bytes, &t->restore_ms,
                           &t->refused};
        _Static_assert(sizeof(keys) / sizeof(keys[0]) == sizeof(dst) / sizeof(dst[0]),
                       "one destination per key");
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            snprintf(f, sizeof(f), "body.memory.tiers[%u].%s", i, keys[k]);
            if ((rc = get_u64(m, keys[k], f, dst[k], err)) != KILN_OK)
                return rc;
        }
    }
    s->ntiers = a->via.array.size;
    return KILN_OK;
}

/* devices (optional: daemons before GPU support do not send it). */
static int decode_devices(struct proto_status *s, const msgpack_object *b, struct proto_error *err)
{
    const msgpack_object *dv = proto_map_get(b, "devices");
    if (dv == NULL)
        return KILN_OK;
    int rc = get_map(b, "devices", "body.devices", &dv, err);
    if (rc != KILN_OK)
        return rc;
    const msgpack_object *a = proto_map_get(dv, "cuda");
    if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > PROTO_DEVICES_MAX)
        return proto_error_set(err, P, "body.devices.cuda",
                               "body.devices.cuda must be an array of at most %d devices",
                               PROTO_DEVICES_MAX);
    char f[PROTO_FIELD_MAX];
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *m = &a->via.array.ptr[i];
        struct proto_device *d = &s->devices[i];
        snprintf(f, sizeof f, "body.devices.cuda[%u]", i);
        if (m->type != MSGPACK_OBJECT_MAP)
            return proto_error_set(err, P, f, "%s must be a map", f);
        if ((rc = proto_get_str_trunc(proto_map_get(m, "name"), f, d->name, sizeof d->name, P,
                                      err)) != KILN_OK ||
            (rc = get_u64(m, "cc_major", f, &d->cc_major, err)) != KILN_OK ||
            (rc = get_u64(m, "cc_minor", f, &d->cc_minor, err)) != KILN_OK ||
            (rc = get_u64(m, "memory", f, &d->memory, err)) != KILN_OK)
            return rc;
    }
    s->ndevices = a->via.array.size;
    if ((rc = proto_get_str_trunc(proto_map_get(dv, "cuda_why"), "body.devices.cuda_why",
                                  s->cuda_why, sizeof s->cuda_why, P, err)) != KILN_OK ||
        (rc = get_u64(dv, "cuda_driver", "body.devices.cuda_driver", &s->cuda_driver, err)) !=
            KILN_OK ||
        (rc = proto_get_str_trunc(proto_map_get(dv, "nvrtc"), "body.devices.nvrtc", s->nvrtc,
                                  sizeof s->nvrtc, P, err)) != KILN_OK ||
        (rc = proto_get_str_trunc(proto_map_get(dv, "nvrtc_why"), "body.devices.nvrtc_why",
                                  s->nvrtc_why, sizeof s->nvrtc_why, P, err)) != KILN_OK)
        return rc;
    /* Newer fields: absent from older daemons. */
    if (proto_map_get(dv, "cuda_state") != NULL &&
        ((rc = proto_get_str_trunc(proto_map_get(dv, "cuda_state"), "body.devices.cuda_state",
                                   s->cuda_state, sizeof s->cuda_state, P, err)) != KILN_OK ||
         (rc = get_u64(dv, "cuda_steps", "body.devices.cuda_steps", &s->cuda_steps, err)) !=
             KILN_OK ||
         (rc = get_u64(dv, "cuda_fallbacks", "body.devices.cuda_fallbacks", &s->cuda_fallbacks,
                       err)) != KILN_OK))
        return rc;
    s->has_devices = true;
    return KILN_OK;
}

static int decode_status(struct proto_status *s, const msgpack_object *b, struct proto_error *err)
{
    uint64_t vmin = 0, vmax = 0;
    const msgpack_object *errors = NULL, *mem = NULL;
    int rc;
    if ((rc = proto_get_str_trunc(proto_map_get(b, "server"), "body.server", s->server, sizeof(s->server),
                              P, err)) != KILN_OK ||
        (rc = get_u64(b, "proto_min", "body.proto_min", &vmin, err)) != KILN_OK ||
        (rc = get_u64(b, "proto_max", "body.proto_max", &vmax, err)) != KILN_OK ||
        (rc = proto_get_int(proto_map_get(b, "pid"), "body.pid", &s->pid, P, err)) != KILN_OK ||
        (rc = get_u64(b, "uptime_ms", "body.uptime_ms", &s->uptime_ms, err)) != KILN_OK ||
        (rc = get_u64(b, "sessions", "body.sessions", &s->sessions, err)) != KILN_OK ||
        (rc = get_u64(b, "sessions_total", "body.sessions_total", &s->sessions_total, err)) !=
            KILN_OK ||
        (rc = get_u64(b, "requests", "body.requests", &s->requests, err)) != KILN_OK ||
        (rc = get_u64(b, "workers", "body.workers", &s->workers, err)) != KILN_OK ||
        (rc = get_map(b, "errors", "body.errors", &errors, err)) != KILN_OK ||
        (rc = get_map(b, "memory", "body.memory", &mem, err)) != KILN_OK ||
        (rc = get_u64(mem, "in_use", "body.memory.in_use", &s->mem_in_use, err)) != KILN_OK ||
        (rc = get_u64(mem, "budget", "body.memory.budget", &s->mem_budget, err)) != KILN_OK ||
        (rc = get_u64(mem, "rss", "body.memory.rss", &s->mem_rss, err)) != KILN_OK ||
        (rc = decode_tiers(s, mem, err)) != KILN_OK ||
        (rc = proto_get_bool(proto_map_get(b, "draining"), "body.draining", &s->draining, P, err)) !=
            KILN_OK)
        return rc;
    const msgpack_object *steps = proto_map_get(b, "steps");
    if (steps != NULL &&
        ((rc = get_map(b, "steps", "body.steps", &steps, err)) != KILN_OK ||
         (rc = get_u64(steps, "done", "body.steps.done", &s->steps_done, err)) != KILN_OK ||
         (rc = get_u64(steps, "failed", "body.steps.failed", &s->steps_failed, err)) != KILN_OK ||
         (rc = get_u64(steps, "running", "body.steps.running", &s->steps_running, err)) !=
             KILN_OK ||
         (rc = get_u64(steps, "queued", "body.steps.queued", &s->steps_queued, err)) != KILN_OK ||
         (rc = get_u64(steps, "run_ms", "body.steps.run_ms", &s->step_run_ms, err)) != KILN_OK))
        return rc;
    /* Newer than the map itself: absent from older daemons. */
    if (steps != NULL && proto_map_get(steps, "merged") != NULL &&
        (rc = get_u64(steps, "merged", "body.steps.merged", &s->steps_merged, err)) != KILN_OK)
        return rc;
    const msgpack_object *jit = proto_map_get(b, "jit");
    if (jit != NULL &&
        ((rc = get_map(b, "jit", "body.jit", &jit, err)) != KILN_OK ||
         (rc = proto_get_bool(proto_map_get(jit, "enabled"), "body.jit.enabled", &s->jit_enabled,
                              P, err)) != KILN_OK ||
         (rc = get_u64(jit, "kernels_compiled", "body.jit.kernels_compiled",
                       &s->jit_kernels_compiled, err)) != KILN_OK ||
         (rc = get_u64(jit, "kernel_hits", "body.jit.kernel_hits", &s->jit_kernel_hits, err)) !=
             KILN_OK ||
         (rc = get_u64(jit, "compile_us", "body.jit.compile_us", &s->jit_compile_us, err)) !=
             KILN_OK ||
         (rc = get_u64(jit, "plans", "body.jit.plans", &s->jit_plans, err)) != KILN_OK ||
         (rc = get_u64(jit, "plan_hits", "body.jit.plan_hits", &s->jit_plan_hits, err)) != KILN_OK ||
         (rc = get_u64(jit, "kernels_run", "body.jit.kernels_run", &s->jit_kernels_run, err)) !=
             KILN_OK ||
         (rc = get_u64(jit, "kernels_cached", "body.jit.kernels_cached", &s->jit_kernels_cached,
                       err)) != KILN_OK ||
         (rc = get_u64(jit, "fallbacks", "body.jit.fallbacks", &s->jit_fallbacks, err)) != KILN_OK))
        return rc;
    const msgpack_object *cc = jit != NULL ? proto_map_get(jit, "cc") : NULL;
    if (cc != NULL &&
        ((rc = get_map(jit, "cc", "body.jit.cc", &cc, err)) != KILN_OK ||
         (rc = proto_get_bool(proto_map_get(cc, "enabled"), "body.jit.cc.enabled", &s->cc_enabled,
                              P, err)) != KILN_OK ||
         (rc = get_u64(cc, "kernels", "body.jit.cc.kernels", &s->cc_kernels, err)) != KILN_OK ||
         (rc = get_u64(cc, "promoted", "body.jit.cc.promoted", &s->cc_promoted, err)) != KILN_OK ||
         (rc = get_u64(cc, "compiles", "body.jit.cc.compiles", &s->cc_compiles, err)) != KILN_OK ||
         (rc = get_u64(cc, "failures", "body.jit.cc.failures", &s->cc_failures, err)) != KILN_OK ||
         (rc = get_u64(cc, "compile_ms", "body.jit.cc.compile_ms", &s->cc_compile_ms, err)) !=
             KILN_OK ||
         (rc = get_u64(cc, "disk_hits", "body.jit.cc.disk_hits", &s->cc_disk_hits, err)) != KILN_OK))
        return rc;
    const msgpack_object *rl = jit != NULL ? proto_map_get(jit, "relays") : NULL;
    if (rl != NULL &&
        ((rc = get_map(jit, "relays", "body.jit.relays", &rl, err)) != KILN_OK ||
         (rc = proto_get_bool(proto_map_get(rl, "library"), "body.jit.relays.library",
                              &s->relay_library, P, err)) != KILN_OK ||
         (rc = get_u64(rl, "runs", "body.jit.relays.runs", &s->relay_runs, err)) != KILN_OK ||
         (rc = get_u64(rl, "library_runs", "body.jit.relays.library_runs",
                       &s->relay_library_runs, err)) != KILN_OK))
        return rc;
    if ((rc = decode_devices(s, b, err)) != KILN_OK)
        return rc;
    s->proto_min = vmin > UINT32_MAX ? UINT32_MAX : (uint32_t) vmin;
    s->proto_max = vmax > UINT32_MAX ? UINT32_MAX : (uint32_t) vmax;
    /* Error counts by name; names this client does not know are skipped. */
    for (uint32_t i = 0; i < errors->via.map.size; i++) {
        const msgpack_object *k = &errors->via.map.ptr[i].key;
        const msgpack_object *v = &errors->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return proto_error_set(err, P, "body.errors", "body.errors maps names to counts");
        for (int c = 1; c < KILN_ERR_WIRE_COUNT; c++) {
            const char *name = kiln_err_name(c);
            if (strlen(name) == k->via.str.size && memcmp(name, k->via.str.ptr, k->via.str.size) == 0)
                s->errors[c] = v->via.u64;
        }
    }
    return decode_status_lists(s, b, err);
}

static int decode_submit(struct proto_submit_reply *r, const msgpack_object *b,
                         struct proto_error *err)
{
    int rc = get_u64(b, "step", "body.step", &r->step, err);
    if (rc == KILN_OK && r->step == 0)
        return proto_error_set(err, P, "body.step", "SUBMIT reply names step 0");
    const msgpack_object *w = proto_map_get(b, "warnings");
    if (rc != KILN_OK || w == NULL)
        return rc; /* optional: absent when there is nothing to say */
    if (w->type != MSGPACK_OBJECT_ARRAY || w->via.array.size > PROTO_WARNINGS_MAX)
        return proto_error_set(err, P, "body.warnings",
                               "body.warnings must be an array of at most %d warnings",
                               PROTO_WARNINGS_MAX);
    uint32_t n = w->via.array.size;
    if (n > 0 && (r->warnings = calloc(n, sizeof(*r->warnings))) == NULL)
        return proto_error_set(err, KILN_ENOMEM, "body.warnings", "out of memory for warnings");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *m = &w->via.array.ptr[i];
        struct proto_warning *d = &r->warnings[i];
        char f[PROTO_FIELD_MAX];
        snprintf(f, sizeof(f), "body.warnings[%u]", i);
        if (m->type != MSGPACK_OBJECT_MAP)
            return proto_error_set(err, P, f, "%s must be a map", f);
        if ((rc = proto_check_keys(m, NULL, 0, true, f, err)) != KILN_OK)
            return rc;
        snprintf(f, sizeof(f), "body.warnings[%u].node", i);
        if ((rc = proto_get_int(proto_map_get(m, "node"), f, &d->node, P, err)) != KILN_OK)
            return rc;
        snprintf(f, sizeof(f), "body.warnings[%u].field", i);
        if ((rc = proto_get_str_trunc(proto_map_get(m, "field"), f, d->field, sizeof(d->field),
                                      P, err)) != KILN_OK)
            return rc;
        snprintf(f, sizeof(f), "body.warnings[%u].message", i);
        if ((rc = proto_get_str_trunc(proto_map_get(m, "message"), f, d->message,
                                      sizeof(d->message), P, err)) != KILN_OK)
            return rc;
        r->nwarnings = i + 1;
    }
    return KILN_OK;
}

/* One element of a FETCH reply's `vars`. */
static int decode_tensor(const msgpack_object *m, uint32_t i, struct proto_tensor *t,
                         struct proto_error *err)
{
    char path[PROTO_FIELD_MAX], f[PROTO_FIELD_MAX];
    uint64_t dtype = 0;
    int rc;

    snprintf(path, sizeof(path), "body.vars[%u]", i);
    if (m->type != MSGPACK_OBJECT_MAP)
        return proto_error_set(err, P, path, "%s must be a map", path);
    if ((rc = proto_check_keys(m, NULL, 0, true, path, err)) != KILN_OK)
        return rc;
    snprintf(f, sizeof(f), "body.vars[%u].id", i);
    if ((rc = get_u64(m, "id", f, &t->id, err)) != KILN_OK)
        return rc;
    snprintf(f, sizeof(f), "body.vars[%u].dtype", i);
    if ((rc = proto_get_uint(proto_map_get(m, "dtype"), f, UINT32_MAX, &dtype, P, err)) != KILN_OK)
        return rc;
    t->dtype = (uint32_t) dtype;
    snprintf(f, sizeof(f), "body.vars[%u].shape", i);
    const msgpack_object *shape = proto_map_get(m, "shape");
    if (shape == NULL || shape->type != MSGPACK_OBJECT_ARRAY ||
        shape->via.array.size > KILN_LIMIT_RANK)
        return proto_error_set(err, P, f, "%s must be an array of at most %d dims", f,
                               KILN_LIMIT_RANK);
    t->rank = shape->via.array.size;
    for (uint32_t j = 0; j < t->rank; j++) {
        uint64_t d = 0;
        if ((rc = proto_get_uint(&shape->via.array.ptr[j], f, (uint64_t) KILN_LIMIT_DIM, &d, P,
                                 err)) != KILN_OK)
            return rc;
        t->shape[j] = (int64_t) d;
    }
    snprintf(f, sizeof(f), "body.vars[%u].data", i);
    const msgpack_object *data = proto_map_get(m, "data");
    if (data == NULL || data->type != MSGPACK_OBJECT_BIN)
        return proto_error_set(err, P, f, "%s must be bin", f);
    t->data = data->via.bin.ptr;
    t->bytes = data->via.bin.size;
    /* A client reads shape-many elements from `data`: make sure they are
     * there. Dtypes this build does not know are left to the caller. */
    size_t size = proto_dtype_size(t->dtype);
    uint64_t elements = proto_elements(t->shape, t->rank);
    if (size != 0 && (elements > (uint64_t) KILN_LIMIT_ELEMENTS || elements * size != t->bytes))
        return proto_error_set(err, P, f, "%s holds %zu bytes, not the %llu elements of dtype %u",
                               f, t->bytes, (unsigned long long) elements, t->dtype);
    return KILN_OK;
}

static int decode_fetch(struct proto_fetch_reply *r, const msgpack_object *b,
                        struct proto_error *err)
{
    const msgpack_object *vars = proto_map_get(b, "vars");
    if (vars == NULL || vars->type != MSGPACK_OBJECT_ARRAY)
        return proto_error_set(err, P, "body.vars", "body.vars must be an array");
    uint32_t n = vars->via.array.size;
    if (n > KILN_LIMIT_VAR_IDS)
        return proto_error_set(err, P, "body.vars", "body.vars holds %u vars, above var_ids %d", n,
                               KILN_LIMIT_VAR_IDS);
    if (n > 0 && (r->vars = calloc(n, sizeof(*r->vars))) == NULL)
        return proto_error_set(err, KILN_ENOMEM, "body.vars", "out of memory for %u vars", n);
    for (uint32_t i = 0; i < n; i++) {
        int rc = decode_tensor(&vars->via.array.ptr[i], i, &r->vars[i], err);
        if (rc != KILN_OK)
            return rc;
    }
    r->count = n;
    return KILN_OK;
}

static int decode_ok_body(struct proto_reply *rep, const msgpack_object *b, struct proto_error *err)
{
    int rc = proto_check_keys(b, NULL, 0, true, "body", err);
    if (rc != KILN_OK)
        return rc;
    switch (rep->kind) {
    case PROTO_HELLO:
        return decode_hello(&rep->u.hello, b, err);
    case PROTO_STATUS:
        return decode_status(&rep->u.status, b, err);
    case PROTO_RELEASE:
        if ((rc = get_u64(b, "released", "body.released", &rep->u.release.released, err)) !=
            KILN_OK)
            return rc;
        return get_u64(b, "unknown", "body.unknown", &rep->u.release.unknown, err);
    case PROTO_CANCEL:
        return get_u64(b, "cancelled", "body.cancelled", &rep->u.cancel.cancelled, err);
    case PROTO_SUBMIT:
        return decode_submit(&rep->u.submit, b, err);
    case PROTO_FETCH:
        return decode_fetch(&rep->u.fetch, b, err);
    case PROTO_PING:
    case PROTO_BYE:
        return KILN_OK; /* empty */
    default:
        return proto_error_set(err, KILN_EARG, "kind", "unknown request kind %d", rep->kind);
    }
}

int proto_reply_decode(struct proto_reply *rep, int kind, const void *buf, size_t len,
                       struct proto_error *err)
{
    memset(rep, 0, sizeof(*rep));
    rep->kind = kind;
    struct proto_error scan_err;
    int rc = proto_unpack(&rep->unpacked, buf, len, &scan_err);
    if (rc != KILN_OK)
        /* Our own allocation failure is not the daemon's fault. */
        return proto_error_set(err, rc == KILN_ENOMEM ? KILN_ENOMEM : KILN_EPROTO,
                               scan_err.field, "bad reply: %s", scan_err.message);
    rep->has_unpacked = true;

    const msgpack_object *top = &rep->unpacked.data;
    uint64_t code = 0;
    if (top->type != MSGPACK_OBJECT_ARRAY || top->via.array.size != 2) {
        rc = proto_error_set(err, P, "", "a reply must be the array [code, body]");
        goto fail;
    }
    if ((rc = proto_get_uint(&top->via.array.ptr[0], "code", KILN_ECONNECT - 1, &code, P, err)) !=
        KILN_OK)
        goto fail;
    rep->body = &top->via.array.ptr[1];
    if (rep->body->type != MSGPACK_OBJECT_MAP) {
        rc = proto_error_set(err, P, "body", "the body of a reply must be a map");
        goto fail;
    }
    rep->code = (int) code;
    rc = code == KILN_OK ? decode_ok_body(rep, rep->body, err)
                         : decode_error_body(rep, rep->body, err);
    if (rc != KILN_OK)
        goto fail;
    return KILN_OK;
fail:
    proto_reply_fini(rep);
    return rc;
}

void proto_reply_fini(struct proto_reply *rep)
{
    if (rep == NULL)
        return;
    if (rep->kind == PROTO_FETCH && rep->code == KILN_OK)
        free(rep->u.fetch.vars);
    if (rep->kind == PROTO_SUBMIT && rep->code == KILN_OK)
        free(rep->u.submit.warnings);
    if (rep->kind == PROTO_STATUS && rep->code == KILN_OK) {
        free(rep->u.status.users);
        free(rep->u.status.session_list);
    }
    if (rep->has_unpacked)
        msgpack_unpacked_destroy(&rep->unpacked);
    memset(rep, 0, sizeof(*rep));
}
