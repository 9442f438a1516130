/* dispatch.c: the per-kind request handlers (see dispatch.h).
 *
 * Every handler returns KILN_OK after encoding its reply, or an error code
 * with the proto_error filled; disp_request() turns the latter into the
 * error reply, so there is one place where errors are encoded, counted and
 * logged. While draining, kinds that start or continue work (HELLO, PING,
 * SUBMIT, FETCH) are refused with KILN_ESHUTDOWN; STATUS (which reports
 * draining), RELEASE and BYE (which only free) are still served so clients
 * can wind down cleanly. */
#include <inttypes.h>
#include <stdio.h>

#include "auth.h"
#include "cuda_dl.h"
#include "dispatch.h"
#include "server.h"
#include "step.h"

#define SERVER_NAME "kilnd " KILN_VERSION

static int encode_failed(struct proto_error *err)
{
    return proto_error_set(err, KILN_ENOMEM, "", "out of memory encoding the reply");
}

/* The session's connection is the one of its latest request (a reconnect
 * moves it), unless that connection has closed already: then the request
 * was the client's last, and the session is an orphan from now on. */
static void sess_attach(struct disp *d, struct sess *s)
{
    uint32_t pipe = d->srv != NULL ? srv_request_pipe(d->srv) : 0;
    if (d->srv != NULL && srv_pipe_gone(d->srv, pipe)) {
        if (s->orphaned_ms == 0 && (s->pipe == pipe || s->pipe == 0)) {
            uint64_t now = uv_now(d->loop);
            s->orphaned_ms = now ? now : 1;
        }
        s->pipe = s->pipe ? s->pipe : pipe;
        return;
    }
    s->pipe = pipe;
    s->orphaned_ms = 0;
}

static int on_hello(struct disp *d, const struct proto_request *req, msgpack_sbuffer *reply,
                    struct proto_error *err)
{
    const struct proto_hello *h = &req->u.hello;
    uint32_t lo = h->proto_min > KILN_PROTO_VERSION_MIN ? h->proto_min : KILN_PROTO_VERSION_MIN;
    uint32_t hi = h->proto_max < KILN_PROTO_VERSION_MAX ? h->proto_max : KILN_PROTO_VERSION_MAX;
    if (lo > hi)
        return proto_error_set(err, KILN_EVERSION, "body.proto_max",
                               "no common protocol version: the client speaks %" PRIu32
                               "..%" PRIu32 ", kilnd speaks %d..%d",
                               h->proto_min, h->proto_max, KILN_PROTO_VERSION_MIN,
                               KILN_PROTO_VERSION_MAX);

    const char *why = "";
    const struct auth_user *user =
        auth_check(d->auth, d->cfg->allow_anonymous, h->has_token ? h->token : NULL,
                   h->has_token ? strlen(h->token) : 0,
                   d->srv != NULL && srv_request_local(d->srv), &why);
    if (user == NULL)
        return proto_error_set(err, KILN_EAUTH, "body.token", "%s", why);
    struct sess *s;
    int rc = sess_open(d->sessions, h->client, user, uv_now(d->loop), &s, err);
    if (rc != KILN_OK)
        return rc;
    sess_attach(d, s);

    struct proto_hello_reply r = {
        .proto = hi,
        .session = s->id,
        .idle_timeout_ms = d->cfg->idle_timeout_ms,
    };
    snprintf(r.server, sizeof(r.server), "%s", SERVER_NAME);
    proto_limits_default(&r.limits);
    r.limits.message_bytes = d->cfg->max_message;
    if (proto_encode_reply_hello(reply, &r) != KILN_OK) {
        /* The client never learns the id: do not leave the session behind. */
        sess_close(d->sessions, s, "reply failed");
        return encode_failed(err);
    }
    return KILN_OK;
}

/* STATUS's lists: the busiest users and sessions, for operators. */
struct lists {
    struct proto_status_user users[PROTO_STATUS_LIST_MAX];
    struct proto_status_session sess[PROTO_STATUS_LIST_MAX];
    uint32_t nusers, nsess;
    uint64_t users_total;
};

static uint64_t user_rank(const struct proto_status_user *u)
{
    /* Busy users first, then by kernel time. */
    return (u->queued > 0 ? UINT64_C(1) << 62 : 0) + (u->kernel_ms < (UINT64_C(1) << 61) ? u->kernel_ms : 0);
}

static void add_user(void *arg, struct sess_user *u)
{
    struct lists *L = arg;
    L->users_total++;
    struct proto_status_user e = {
        .weight = u->user->weight,
        .sessions = u->sessions,
        .queued = u->queued,
        .running = u->running,
        .steps = u->steps_done,
        .kernel_ms = u->kernel_ns / 1000000,
        .mem = u->mem_in_use,
        .kernels = u->kernels,
        .compile_ms = u->compile_ns / 1000000,
        .refused = u->refused,
    };
    snprintf(e.name, sizeof e.name, "%s", u->user->name);
    /* Keep the top PROTO_STATUS_LIST_MAX by rank (insertion into a short
     * sorted array). */
    uint32_t at = L->nusers;
    while (at > 0 && user_rank(&L->users[at - 1]) < user_rank(&e))
        at--;
    if (at >= PROTO_STATUS_LIST_MAX)
        return;
    uint32_t n = L->nusers < PROTO_STATUS_LIST_MAX ? L->nusers : PROTO_STATUS_LIST_MAX - 1;
    memmove(&L->users[at + 1], &L->users[at], (n - at) * sizeof(e));
    L->users[at] = e;
    if (L->nusers < PROTO_STATUS_LIST_MAX)
        L->nusers++;
}

static void add_session(struct disp *d, struct lists *L, struct sess *s, uint64_t now)
{
    struct exec_sess_info xi;
    exec_session_info(s, &xi);
    struct proto_status_session *e = &L->sess[L->nsess++];
    e->number = s->number;
    snprintf(e->user, sizeof e->user, "%s", s->user->name);
    snprintf(e->client, sizeof e->client, "%s", s->client);
    e->queued = xi.queued;
    e->running = xi.running;
    e->steps = s->steps;
    e->kernel_ms = xi.kernel_ns / 1000000;
    e->mem = s->mem_in_use;
    e->vars = sess_var_count(s);
    e->idle_ms = now - s->last_active_ms;
    (void) d;
}

static void fill_lists(struct disp *d, struct lists *L, struct proto_status *st)
{
    sess_users_each(d->sessions, add_user, L);
    /* Sessions with work first, then the most recently active. */
    uint64_t now = uv_now(d->loop);
    for (int pass = 0; pass < 2; pass++)
        for (struct sess *s = d->sessions->newest; s != NULL && L->nsess < PROTO_STATUS_LIST_MAX;
             s = s->prev) {
            struct exec_sess_info xi;
            exec_session_info(s, &xi);
            bool busy = xi.running || xi.queued > 0;
            if (busy == (pass == 0))
                add_session(d, L, s, now);
        }
    st->has_lists = true;
    st->users_total = L->users_total;
    st->nusers = L->nusers;
    st->users = L->users;
    st->nsessions = L->nsess;
    st->session_list = L->sess;
}

/* STATUS devices from the start-up probe (cuda_dl.h). */
static void fill_devices(const struct jit_cuda_info *in, struct proto_status *s)
{
    _Static_assert(PROTO_DEVICES_MAX >= JIT_CUDA_MAX_DEVICES, "every probed device fits");
    s->has_devices = true;
    for (uint32_t k = 0; k < in->ndevices && k < PROTO_DEVICES_MAX; k++) {
        struct proto_device *o = &s->devices[k];
        snprintf(o->name, sizeof o->name, "%s", in->devices[k].name);
        o->cc_major = (uint64_t) in->devices[k].cc_major;
        o->cc_minor = (uint64_t) in->devices[k].cc_minor;
        o->memory = in->devices[k].mem_total;
        s->ndevices = k + 1;
    }
    snprintf(s->cuda_why, sizeof s->cuda_why, "%s", in->ndevices > 0 ? "" : in->why);
    s->cuda_driver = in->driver_version > 0 ? (uint64_t) in->driver_version : 0;
    if (in->nvrtc)
        snprintf(s->nvrtc, sizeof s->nvrtc, "%d.%d", in->nvrtc_major, in->nvrtc_minor);
    snprintf(s->nvrtc_why, sizeof s->nvrtc_why, "%s", in->nvrtc ? "" : in->nvrtc_why);
}

/* The device tier on top of memory.tiers: the device pool (its buffers
 * and the values kept on the device); "spills" are values dropped under
 * pressure (their host copy stays), "restores" uploads. */
static void device_tier(struct jit_gpu *gpu, struct proto_status *s)
{
    struct jit_gpu_stats gs;
    jit_gpu_stats(gpu, &gs);
    memmove(&s->tiers[1], &s->tiers[0], s->ntiers * sizeof s->tiers[0]);
    s->ntiers++;
    struct proto_tier *t = &s->tiers[0];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", gs.failed ? "cuda-failed" : "cuda");
    t->in_use = gs.pool_in_use;
    t->limit = gs.pool_limit;
    t->spills = gs.evictions;
    t->restores = gs.uploads;
    t->restored_bytes = gs.upload_bytes;
}

static int on_status(struct disp *d, msgpack_sbuffer *reply, struct proto_error *err)
{
    const struct stats *st = d->stats;
    struct proto_status s = {
        .proto_min = KILN_PROTO_VERSION_MIN,
        .proto_max = KILN_PROTO_VERSION_MAX,
        .pid = (int64_t) uv_os_getpid(),
        .uptime_ms = uv_now(d->loop) - st->start_ms,
        .sessions = sess_count(d->sessions),
        .sessions_total = d->sessions->opened_total,
        /* This reply counts too: a client polling STATUS sees its own. */
        .requests = st->requests + 1,
        .workers = d->cfg->workers,
        .mem_in_use = d->sessions->mem_in_use,
        .mem_budget = d->sessions->mem_budget,
        .mem_rss = stats_rss_bytes(),
        .draining = d->draining,
        .steps_done = d->exec->steps_done,
        .steps_failed = d->exec->steps_failed,
        .steps_running = d->exec->running,
        .steps_queued = d->exec->queued,
        .steps_merged = d->exec->steps_merged,
        .step_run_ms = d->exec->run_ns / 1000000,
        .jit_enabled = d->exec->jit != NULL,
        .jit_fallbacks = d->exec->fallbacks,
    };
    if (d->exec->jit != NULL) {
        struct jit_runtime_stats js;
        jit_runtime_stats(d->exec->jit, &js);
        s.jit_kernels_compiled = js.kernels_compiled;
        s.jit_kernel_hits = js.kernel_hits;
        s.jit_compile_us = js.compile_ns / 1000;
        s.jit_plans = js.plans_made;
        s.jit_plan_hits = js.plan_hits;
        s.jit_kernels_run = js.kernels_run;
        s.jit_kernels_cached = js.kernels_cached;
        s.cc_enabled = js.cc_enabled;
        s.cc_kernels = js.cc_kernels;
        s.cc_promoted = js.kernels_promoted;
        s.cc_compiles = js.cc_compiles;
        s.cc_failures = js.cc_failures;
        s.cc_compile_ms = js.cc_compile_ns / 1000000;
        s.cc_disk_hits = js.cc_disk_hits;
        s.relay_library = js.relay_library;
        s.relay_runs = js.relay_runs;
        s.relay_library_runs = js.relay_library_runs;
    }
    /* Memory tiers (spill.h); the table's spill is NULL while spilling is off. */
    static const struct spill off = {.host = {.name = "host"}};
    s.ntiers = spill_tiers(d->sessions->spill ? d->sessions->spill : &off, d->sessions, s.tiers,
                           PROTO_TIERS_MAX);
    if (d->exec->gpu != NULL && s.ntiers < PROTO_TIERS_MAX)
        device_tier(d->exec->gpu, &s);
    if (d->cuda != NULL)
        fill_devices(d->cuda, &s);
    snprintf(s.cuda_state, sizeof s.cuda_state, "off");
    if (d->exec->gpu != NULL) {
        char why[PROTO_DEVICE_WHY_MAX - 8];
        if (jit_gpu_failed(d->exec->gpu, why, sizeof why))
            snprintf(s.cuda_state, sizeof s.cuda_state, "failed: %s", why);
        else
            snprintf(s.cuda_state, sizeof s.cuda_state, "ready");
    }
    s.cuda_steps = d->exec->gpu_steps;
    s.cuda_fallbacks = d->exec->gpu_fallbacks;
    snprintf(s.server, sizeof(s.server), "%s", SERVER_NAME);
    _Static_assert(sizeof(s.errors) == sizeof(st->errors), "one error counter per wire code");
    for (size_t i = 0; i < KILN_ERR_WIRE_COUNT; i++)
        s.errors[i] = st->errors[i];
    /* Who uses the daemon is for its operators: clients on the local
     * socket (the machine's own users), not every remote peer. */
    struct lists *L = NULL;
    if (d->srv == NULL || srv_request_local(d->srv)) {
        L = calloc(1, sizeof *L);
        if (L != NULL)
            fill_lists(d, L, &s);
    }
    int rc = proto_encode_reply_status(reply, &s);
    free(L);
    return rc == KILN_OK ? KILN_OK : encode_failed(err);
}

static int on_release(struct disp *d, struct sess *s, const struct proto_request *req,
                      msgpack_sbuffer *reply, struct proto_error *err)
{
    struct proto_release_reply r = {0};
    for (uint32_t i = 0; i < req->u.release.count; i++) {
        if (sess_var_release(d->sessions, s, req->u.release.ids[i]))
            r.released++;
        else
            r.unknown++;
    }
    if (r.released > 0)
        exec_released(d->exec, s);
    return proto_encode_reply_release(reply, &r) == KILN_OK ? KILN_OK : encode_failed(err);
}

static int on_submit(struct disp *d, struct sess *s, const struct proto_request *req,
                     msgpack_sbuffer *reply, struct proto_error *err)
{
    struct step *st;
    int rc = exec_can_queue(d->exec, s, err);
    if (rc == KILN_OK)
        rc = ingest_submit(d->sessions, s, &req->u.submit, &st, err);
    if (rc != KILN_OK)
        return rc;
    /* Encode first: once queued, the step runs, so nothing may fail after. */
    if (proto_encode_reply_submit_warnings(reply, st->number, st->warnings, st->nwarnings) !=
        KILN_OK) {
        exec_discard(d->exec, s, st);
        return encode_failed(err);
    }
    exec_submit(d->exec, s, st); /* runs asynchronously; FETCH waits for it */
    return KILN_OK;
}

static bool refused_while_draining(int kind)
{
    return kind == PROTO_HELLO || kind == PROTO_PING || kind == PROTO_SUBMIT ||
           kind == PROTO_FETCH;
}

/* Run a decoded request; returns KILN_OK with the reply encoded, or an error. */
static int run(struct disp *d, const struct proto_request *req, msgpack_sbuffer *reply,
               struct proto_error *err)
{
    if (d->draining && refused_while_draining(req->kind))
        return proto_error_set(err, KILN_ESHUTDOWN, "", "kilnd is shutting down");

    struct sess *s = NULL;
    if (req->session != 0) {
        s = sess_find(d->sessions, req->session);
        if (s == NULL)
            return proto_error_set(err, KILN_ESESSION, "session",
                                   "session %016" PRIx64 " is unknown or has expired",
                                   req->session);
        sess_touch(d->sessions, s, uv_now(d->loop));
        sess_attach(d, s);
    }

    switch (req->kind) {
    case PROTO_HELLO:
        return on_hello(d, req, reply, err);
    case PROTO_PING:
        return proto_encode_reply_empty(reply) == KILN_OK ? KILN_OK : encode_failed(err);
    case PROTO_STATUS:
        return on_status(d, reply, err);
    case PROTO_SUBMIT:
        return on_submit(d, s, req, reply, err);
    case PROTO_FETCH:
        return exec_fetch(d->exec, s, &req->u.fetch, reply, err);
    case PROTO_RELEASE:
        return on_release(d, s, req, reply, err);
    case PROTO_CANCEL:
        return proto_encode_reply_cancel(reply, exec_cancel(d->exec, s)) == KILN_OK
                   ? KILN_OK
                   : encode_failed(err);
    case PROTO_BYE:
        sess_close(d->sessions, s, "bye");
        return proto_encode_reply_empty(reply) == KILN_OK ? KILN_OK : encode_failed(err);
    }
    /* The codec only returns kinds it knows: reaching here is our bug, but
     * it is reported to the client, not asserted on its input. */
    return proto_error_set(err, KILN_EINTERNAL, "", "no handler for kind %d", req->kind);
}

static void log_request(const struct disp *d, const struct proto_request *req, int kind,
                        const struct proto_error *err)
{
    enum log_level level = err->code == KILN_EINTERNAL ? LOG_ERROR : LOG_DEBUG;
    if (!log_enabled(d->log, level))
        return;
    struct log_line l;
    log_begin(&l, d->log, level, err->code == KILN_OK ? "request" : "request refused");
    log_str(&l, "kind", proto_kind_name(kind));
    if (req != NULL)
        log_hex(&l, "session", req->session);
    log_str(&l, "code", kiln_err_name(err->code));
    if (err->code != KILN_OK) {
        log_str(&l, "field", err->field);
        log_str(&l, "error", err->message);
    }
    log_end(&l);
}

void disp_request(void *arg, const void *buf, size_t len, msgpack_sbuffer *reply)
{
    struct disp *d = arg;
    struct proto_request req;
    struct proto_error err = {.code = KILN_OK, .node = -1};

    int rc = proto_request_decode(&req, buf, len, &err);
    bool decoded = rc == KILN_OK;
    int kind = decoded ? req.kind : 0;
    if (decoded) {
        rc = run(d, &req, reply, &err);
        if (rc != KILN_OK)
            msgpack_sbuffer_clear(reply); /* drop a partial reply */
    }
    err.code = rc;
    log_request(d, decoded ? &req : NULL, kind, &err);
    if (decoded)
        proto_request_fini(&req);

    if (rc != KILN_OK && proto_encode_reply_error(reply, &err) != KILN_OK) {
        /* Nothing left to say it with; the client times out. */
        msgpack_sbuffer_clear(reply);
        log_msg(d->log, LOG_ERROR, "cannot encode an error reply");
        return;
    }
    /* An empty success is a deferred FETCH: it is counted when answered. */
    if (rc != KILN_OK || reply->size > 0)
        stats_count_reply(d->stats, rc);
}
