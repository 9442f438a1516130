/* encode.c: building requests and replies.
 *
 * Each encoder appends one complete message to a caller-owned
 * msgpack_sbuffer. Request encoders refuse arguments that break a limit,
 * so a well-behaved client never sends something the daemon must refuse.
 * msgpack-c reports a failed buffer growth as -1 from each pack call; we
 * OR the results and report KILN_ENOMEM once at the end. */
#include <string.h>

#include "proto_impl.h"

static int done(int rc)
{
    return rc == 0 ? KILN_OK : KILN_ENOMEM;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    return proto_pack_key(pk, key) | msgpack_pack_uint64(pk, v);
}

/* [kind, session, {...: n pairs}] — the caller packs the pairs. */
static int pack_request_head(msgpack_packer *pk, int kind, uint64_t session, uint32_t pairs)
{
    return msgpack_pack_array(pk, 3) | msgpack_pack_uint32(pk, (uint32_t) kind) |
           msgpack_pack_uint64(pk, session) | msgpack_pack_map(pk, pairs);
}

int proto_encode_hello(msgpack_sbuffer *sb, const struct proto_hello *h)
{
    size_t nlen = strnlen(h->client, sizeof(h->client));
    if (nlen == 0 || nlen > KILN_LIMIT_NAME || h->proto_min == 0 || h->proto_max < h->proto_min)
        return KILN_EARG;
    if (h->has_token && strnlen(h->token, sizeof(h->token)) > KILN_LIMIT_TOKEN)
        return KILN_EARG;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_request_head(&pk, PROTO_HELLO, 0, h->has_token ? 4 : 3);
    rc |= proto_pack_key(&pk, "proto_min") | msgpack_pack_uint32(&pk, h->proto_min);
    rc |= proto_pack_key(&pk, "proto_max") | msgpack_pack_uint32(&pk, h->proto_max);
    rc |= proto_pack_key(&pk, "client") | pack_str(&pk, h->client);
    if (h->has_token)
        rc |= proto_pack_key(&pk, "token") | pack_str(&pk, h->token);
    return done(rc);
}

int proto_encode_simple(msgpack_sbuffer *sb, int kind, uint64_t session)
{
    if (kind != PROTO_PING && kind != PROTO_STATUS && kind != PROTO_BYE && kind != PROTO_CANCEL)
        return KILN_EARG;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    return done(pack_request_head(&pk, kind, session, 0));
}

int proto_encode_release(msgpack_sbuffer *sb, uint64_t session, const uint64_t *ids,
                         uint32_t count)
{
    if (count > KILN_LIMIT_VAR_IDS || (count > 0 && ids == NULL))
        return KILN_EARG;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_request_head(&pk, PROTO_RELEASE, session, 1);
    rc |= proto_pack_key(&pk, "vars") | msgpack_pack_array(&pk, count);
    for (uint32_t i = 0; i < count; i++)
        rc |= msgpack_pack_uint64(&pk, ids[i]);
    return done(rc);
}

/* Undo a partly written message: msgpack_sbuffer only ever appends. */
static int roll_back(msgpack_sbuffer *sb, size_t start, int rc)
{
    sb->size = start;
    return rc;
}

static bool ids_ok(const uint64_t *ids, uint32_t n)
{
    if (n > 0 && ids == NULL)
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == 0)
            return false;
    return true;
}

static bool strs_ok(const struct proto_str *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (s[i].len > KILN_LIMIT_EXPR_BYTES || (s[i].len > 0 && s[i].ptr == NULL))
            return false;
    return true;
}

/* starts, stops, steps, pads: when sent, within their bound and not NULL. */
static bool ints_ok(const struct proto_node *nd, uint32_t bit, const int64_t *v, uint32_t n,
                    uint32_t max)
{
    return !(nd->has & bit) || (n <= max && (n == 0 || v != NULL));
}

static bool node_ok(const struct proto_node *nd)
{
    if (nd->id == 0 || (nd->has & ~PROTO_NODE_ALL) != 0)
        return false;
    if ((nd->has & PROTO_NODE_IN) && (nd->nin > KILN_LIMIT_NODE_INPUTS || !ids_ok(nd->in, nd->nin)))
        return false;
    if (nd->has & PROTO_NODE_SHAPE) {
        if (nd->rank > KILN_LIMIT_RANK)
            return false;
        for (uint32_t j = 0; j < nd->rank; j++)
            if (nd->shape[j] < 0 || nd->shape[j] > KILN_LIMIT_DIM)
                return false;
    }
    if ((nd->has & PROTO_NODE_DATA) &&
        (nd->data_len > KILN_LIMIT_MESSAGE_BYTES || (nd->data_len > 0 && nd->data == NULL)))
        return false;
    if (nd->has & PROTO_NODE_DIMS) {
        if (nd->ndims > KILN_LIMIT_RANK)
            return false;
        for (uint32_t j = 0; j < nd->ndims; j++)
            if (nd->dims[j] >= KILN_LIMIT_RANK)
                return false;
    }
    if ((nd->has & PROTO_NODE_EXPRS) && (nd->nexprs > KILN_LIMIT_RANK || !strs_ok(nd->exprs, nd->nexprs)))
        return false;
    if ((nd->has & PROTO_NODE_CONDS) && (nd->nconds > KILN_LIMIT_CONDS || !strs_ok(nd->conds, nd->nconds)))
        return false;
    if (!ints_ok(nd, PROTO_NODE_STARTS, nd->starts, nd->nstarts, KILN_LIMIT_RANK) ||
        !ints_ok(nd, PROTO_NODE_STOPS, nd->stops, nd->nstops, KILN_LIMIT_RANK) ||
        !ints_ok(nd, PROTO_NODE_STEPS, nd->steps, nd->nsteps, KILN_LIMIT_RANK) ||
        !ints_ok(nd, PROTO_NODE_PADS, nd->pads, nd->npads, 2 * KILN_LIMIT_RANK) ||
        !ints_ok(nd, PROTO_NODE_STRIDE, nd->stride, nd->nstride, 2) ||
        !ints_ok(nd, PROTO_NODE_PADDING, nd->padding, nd->npadding, 2) ||
        !ints_ok(nd, PROTO_NODE_DILATION, nd->dilation, nd->ndilation, 2) ||
        !ints_ok(nd, PROTO_NODE_TRANS, nd->trans, nd->ntrans, 2))
        return false;
    return true;
}

static int pack_number(msgpack_packer *pk, const struct proto_number *v)
{
    return v->is_float ? msgpack_pack_double(pk, v->f) : msgpack_pack_int64(pk, v->i);
}

static int pack_u64s(msgpack_packer *pk, const uint64_t *v, uint32_t n)
{
    int rc = msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        rc |= msgpack_pack_uint64(pk, v[i]);
    return rc;
}

static int pack_i64s(msgpack_packer *pk, const int64_t *v, uint32_t n)
{
    int rc = msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        rc |= msgpack_pack_int64(pk, v[i]);
    return rc;
}

static int pack_strs(msgpack_packer *pk, const struct proto_str *s, uint32_t n)
{
    int rc = msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        rc |= msgpack_pack_str(pk, s[i].len) | msgpack_pack_str_body(pk, s[i].ptr, s[i].len);
    return rc;
}

static int pack_node(msgpack_packer *pk, const struct proto_node *nd)
{
    uint32_t has = nd->has;
    uint32_t pairs = 2;
    for (uint32_t b = has; b != 0; b &= b - 1)
        pairs++;
    int rc = msgpack_pack_map(pk, pairs);
    rc |= pack_kv_u64(pk, "id", nd->id) | pack_kv_u64(pk, "op", nd->op);
    if (has & PROTO_NODE_IN)
        rc |= proto_pack_key(pk, "in") | pack_u64s(pk, nd->in, nd->nin);
    if (has & PROTO_NODE_DTYPE)
        rc |= pack_kv_u64(pk, "dtype", nd->dtype);
    if (has & PROTO_NODE_SHAPE) {
        rc |= proto_pack_key(pk, "shape") | msgpack_pack_array(pk, nd->rank);
        for (uint32_t j = 0; j < nd->rank; j++)
            rc |= msgpack_pack_uint64(pk, (uint64_t) nd->shape[j]);
    }
    if (has & PROTO_NODE_DATA)
        rc |= proto_pack_key(pk, "data") | msgpack_pack_bin(pk, nd->data_len) |
              msgpack_pack_bin_body(pk, nd->data, nd->data_len);
    if (has & PROTO_NODE_VALUE)
        rc |= proto_pack_key(pk, "value") | pack_number(pk, &nd->value);
    if (has & PROTO_NODE_DIM)
        rc |= pack_kv_u64(pk, "dim", nd->dim);
    if (has & PROTO_NODE_DIST)
        rc |= pack_kv_u64(pk, "dist", nd->dist);
    if (has & PROTO_NODE_SEED)
        rc |= pack_kv_u64(pk, "seed", nd->seed);
    if (has & PROTO_NODE_OFFSET)
        rc |= pack_kv_u64(pk, "offset", nd->offset);
    if (has & PROTO_NODE_DIMS) {
        rc |= proto_pack_key(pk, "dims") | msgpack_pack_array(pk, nd->ndims);
        for (uint32_t j = 0; j < nd->ndims; j++)
            rc |= msgpack_pack_uint32(pk, nd->dims[j]);
    }
    if (has & PROTO_NODE_KEEPDIMS)
        rc |= proto_pack_key(pk, "keepdims") |
              (nd->keepdims ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    if (has & PROTO_NODE_REDUCE_OP)
        rc |= pack_kv_u64(pk, "reduce_op", nd->reduce_op);
    if (has & PROTO_NODE_EXPRS)
        rc |= proto_pack_key(pk, "exprs") | pack_strs(pk, nd->exprs, nd->nexprs);
    if (has & PROTO_NODE_CONDS)
        rc |= proto_pack_key(pk, "conds") | pack_strs(pk, nd->conds, nd->nconds);
    if (has & PROTO_NODE_OVERFLOW)
        rc |= proto_pack_key(pk, "overflow_value") | pack_number(pk, &nd->overflow);
    if (has & PROTO_NODE_STARTS)
        rc |= proto_pack_key(pk, "starts") | pack_i64s(pk, nd->starts, nd->nstarts);
    if (has & PROTO_NODE_STOPS)
        rc |= proto_pack_key(pk, "stops") | pack_i64s(pk, nd->stops, nd->nstops);
    if (has & PROTO_NODE_STEPS)
        rc |= proto_pack_key(pk, "steps") | pack_i64s(pk, nd->steps, nd->nsteps);
    if (has & PROTO_NODE_PADS)
        rc |= proto_pack_key(pk, "pads") | pack_i64s(pk, nd->pads, nd->npads);
    if (has & PROTO_NODE_STRIDE)
        rc |= proto_pack_key(pk, "stride") | pack_i64s(pk, nd->stride, nd->nstride);
    if (has & PROTO_NODE_PADDING)
        rc |= proto_pack_key(pk, "padding") | pack_i64s(pk, nd->padding, nd->npadding);
    if (has & PROTO_NODE_DILATION)
        rc |= proto_pack_key(pk, "dilation") | pack_i64s(pk, nd->dilation, nd->ndilation);
    if (has & PROTO_NODE_TRANS)
        rc |= proto_pack_key(pk, "trans") | pack_i64s(pk, nd->trans, nd->ntrans);
    if (has & PROTO_NODE_GROUPS)
        rc |= pack_kv_u64(pk, "groups", nd->groups);
    return rc;
}

int proto_encode_submit(msgpack_sbuffer *sb, uint64_t session, const struct proto_submit *s)
{
    if (session == 0 || s == NULL || s->nnodes == 0 || s->nnodes > KILN_LIMIT_NODES ||
        s->nodes == NULL || s->nkeep > KILN_LIMIT_VAR_IDS || !ids_ok(s->keep, s->nkeep))
        return KILN_EARG;
    uint64_t payload = 0; /* bin bytes: refuse a huge graph before packing it */
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (!node_ok(&s->nodes[i]))
            return KILN_EARG;
        if (s->nodes[i].has & PROTO_NODE_DATA)
            payload += s->nodes[i].data_len; /* each <= 2^28, at most 2^16 of them */
    }
    if (payload > KILN_LIMIT_MESSAGE_BYTES)
        return KILN_EARG;
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (s->device > PROTO_DEVICE_CUDA)
        return KILN_EARG;
    int rc = pack_request_head(&pk, PROTO_SUBMIT, session, 2 + (s->device != 0) + s->tf32);
    rc |= proto_pack_key(&pk, "nodes") | msgpack_pack_array(&pk, s->nnodes);
    for (uint32_t i = 0; i < s->nnodes && rc == 0; i++)
        rc |= pack_node(&pk, &s->nodes[i]);
    rc |= proto_pack_key(&pk, "keep") | pack_u64s(&pk, s->keep, s->nkeep);
    if (s->device == PROTO_DEVICE_CUDA)
        rc |= proto_pack_key(&pk, "device") | proto_pack_key(&pk, "cuda"); /* a string, as keys are */
    if (s->tf32)
        rc |= proto_pack_key(&pk, "tf32") | msgpack_pack_true(&pk);
    if (rc != 0)
        return roll_back(sb, start, KILN_ENOMEM);
    /* Each part was within its limit, but the whole may not be: many nodes
     * can add up to more objects or bytes than one message may hold. The
     * daemon would refuse that, so refuse it here. */
    if (proto_scan(sb->data + start, sb->size - start, NULL) != KILN_OK)
        return roll_back(sb, start, KILN_EARG);
    return KILN_OK;
}

int proto_encode_fetch(msgpack_sbuffer *sb, uint64_t session, const uint64_t *ids,
                       uint32_t count, uint64_t timeout_ms)
{
    if (session == 0 || count > KILN_LIMIT_VAR_IDS || !ids_ok(ids, count) ||
        timeout_ms > KILN_FETCH_TIMEOUT_MAX_MS)
        return KILN_EARG;
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_request_head(&pk, PROTO_FETCH, session, 2);
    rc |= proto_pack_key(&pk, "vars") | pack_u64s(&pk, ids, count);
    rc |= pack_kv_u64(&pk, "timeout_ms", timeout_ms);
    return rc == 0 ? KILN_OK : roll_back(sb, start, KILN_ENOMEM);
}

/* ---- replies ----------------------------------------------------------- */

static int pack_reply_head(msgpack_packer *pk, int code, uint32_t pairs)
{
    return msgpack_pack_array(pk, 2) | msgpack_pack_uint32(pk, (uint32_t) code) |
           msgpack_pack_map(pk, pairs);
}

int proto_encode_reply_error(msgpack_sbuffer *sb, const struct proto_error *e)
{
    if (e->code <= KILN_OK || e->code >= KILN_ERR_WIRE_COUNT)
        return KILN_EARG; /* client-side codes never go on the wire */
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_reply_head(&pk, e->code, 4);
    rc |= proto_pack_key(&pk, "name") | pack_str(&pk, kiln_err_name(e->code));
    rc |= proto_pack_key(&pk, "message") |
          pack_str(&pk, e->message[0] ? e->message : kiln_err_str(e->code));
    rc |= proto_pack_key(&pk, "field") | pack_str(&pk, e->field);
    rc |= proto_pack_key(&pk, "node") | msgpack_pack_int64(&pk, e->node);
    return done(rc);
}

int proto_encode_reply_empty(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    return done(pack_reply_head(&pk, KILN_OK, 0));
}

void proto_limits_default(struct proto_limits *l)
{
    *l = (struct proto_limits){
        .message_bytes = KILN_LIMIT_MESSAGE_BYTES,
        .depth = KILN_LIMIT_DEPTH,
        .container_items = KILN_LIMIT_CONTAINER_ITEMS,
        .objects = KILN_LIMIT_OBJECTS,
        .string = KILN_LIMIT_STRING,
        .name = KILN_LIMIT_NAME,
        .token = KILN_LIMIT_TOKEN,
        .nodes = KILN_LIMIT_NODES,
        .rank = KILN_LIMIT_RANK,
        .dim = (uint64_t) KILN_LIMIT_DIM,
        .elements = (uint64_t) KILN_LIMIT_ELEMENTS,
        .var_ids = KILN_LIMIT_VAR_IDS,
        .node_inputs = KILN_LIMIT_NODE_INPUTS,
        .expr_bytes = KILN_LIMIT_EXPR_BYTES,
        .expr_nodes = KILN_LIMIT_EXPR_NODES,
        .expr_depth = KILN_LIMIT_EXPR_DEPTH,
        .conds = KILN_LIMIT_CONDS,
        .grad_passes = KILN_LIMIT_GRAD_PASSES,
    };
}

int proto_encode_reply_hello(msgpack_sbuffer *sb, const struct proto_hello_reply *r)
{
    const struct proto_limits *l = &r->limits;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_reply_head(&pk, KILN_OK, 5);
    rc |= pack_kv_u64(&pk, "proto", r->proto);
    rc |= pack_kv_u64(&pk, "session", r->session);
    rc |= proto_pack_key(&pk, "server") | pack_str(&pk, r->server);
    rc |= pack_kv_u64(&pk, "idle_timeout_ms", r->idle_timeout_ms);
    rc |= proto_pack_key(&pk, "limits") | msgpack_pack_map(&pk, 18);
    rc |= pack_kv_u64(&pk, "message_bytes", l->message_bytes);
    rc |= pack_kv_u64(&pk, "depth", l->depth);
    rc |= pack_kv_u64(&pk, "container_items", l->container_items);
    rc |= pack_kv_u64(&pk, "objects", l->objects);
    rc |= pack_kv_u64(&pk, "string", l->string);
    rc |= pack_kv_u64(&pk, "name", l->name);
    rc |= pack_kv_u64(&pk, "token", l->token);
    rc |= pack_kv_u64(&pk, "nodes", l->nodes);
    rc |= pack_kv_u64(&pk, "rank", l->rank);
    rc |= pack_kv_u64(&pk, "dim", l->dim);
    rc |= pack_kv_u64(&pk, "elements", l->elements);
    rc |= pack_kv_u64(&pk, "var_ids", l->var_ids);
    rc |= pack_kv_u64(&pk, "node_inputs", l->node_inputs);
    rc |= pack_kv_u64(&pk, "expr_bytes", l->expr_bytes);
    rc |= pack_kv_u64(&pk, "expr_nodes", l->expr_nodes);
    rc |= pack_kv_u64(&pk, "expr_depth", l->expr_depth);
    rc |= pack_kv_u64(&pk, "conds", l->conds);
    rc |= pack_kv_u64(&pk, "grad_passes", l->grad_passes);
    return done(rc);
}

/* STATUS's users_total, users and sessions. */
static int pack_status_lists(msgpack_packer *pk, const struct proto_status *s)
{
    uint32_t nu = s->nusers < PROTO_STATUS_LIST_MAX ? s->nusers : PROTO_STATUS_LIST_MAX;
    uint32_t ns = s->nsessions < PROTO_STATUS_LIST_MAX ? s->nsessions : PROTO_STATUS_LIST_MAX;
    int rc = pack_kv_u64(pk, "users_total", s->users_total);
    rc |= proto_pack_key(pk, "users") | msgpack_pack_array(pk, nu);
    for (uint32_t i = 0; i < nu; i++) {
        const struct proto_status_user *u = &s->users[i];
        rc |= msgpack_pack_map(pk, 11);
        rc |= proto_pack_key(pk, "name") | pack_str(pk, u->name);
        rc |= pack_kv_u64(pk, "weight", u->weight);
        rc |= pack_kv_u64(pk, "sessions", u->sessions);
        rc |= pack_kv_u64(pk, "queued", u->queued);
        rc |= pack_kv_u64(pk, "running", u->running);
        rc |= pack_kv_u64(pk, "steps", u->steps);
        rc |= pack_kv_u64(pk, "kernel_ms", u->kernel_ms);
        rc |= pack_kv_u64(pk, "memory", u->mem);
        rc |= pack_kv_u64(pk, "kernels", u->kernels);
        rc |= pack_kv_u64(pk, "compile_ms", u->compile_ms);
        rc |= pack_kv_u64(pk, "refused", u->refused);
    }
    rc |= proto_pack_key(pk, "session_list") | msgpack_pack_array(pk, ns);
    for (uint32_t i = 0; i < ns; i++) {
        const struct proto_status_session *x = &s->session_list[i];
        rc |= msgpack_pack_map(pk, 10);
        rc |= pack_kv_u64(pk, "number", x->number);
        rc |= proto_pack_key(pk, "user") | pack_str(pk, x->user);
        rc |= proto_pack_key(pk, "client") | pack_str(pk, x->client);
        rc |= pack_kv_u64(pk, "queued", x->queued);
        rc |= proto_pack_key(pk, "running") |
              (x->running ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
        rc |= pack_kv_u64(pk, "steps", x->steps);
        rc |= pack_kv_u64(pk, "kernel_ms", x->kernel_ms);
        rc |= pack_kv_u64(pk, "memory", x->mem);
        rc |= pack_kv_u64(pk, "vars", x->vars);
        rc |= pack_kv_u64(pk, "idle_ms", x->idle_ms);
    }
    return rc;
}

/* memory.tiers: one map per tier, top first. */
static int pack_tiers(msgpack_packer *pk, const struct proto_status *s)
{
    uint32_t n = s->ntiers < PROTO_TIERS_MAX ? s->ntiers : PROTO_TIERS_MAX;
    int rc = proto_pack_key(pk, "tiers") | msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct proto_tier *t = &s->tiers[i];
        rc |= msgpack_pack_map(pk, 11);
        rc |= proto_pack_key(pk, "name") | pack_str(pk, t->name);
        rc |= pack_kv_u64(pk, "in_use", t->in_use);
        rc |= pack_kv_u64(pk, "limit", t->limit);
        rc |= pack_kv_u64(pk, "moving", t->moving);
        rc |= pack_kv_u64(pk, "spills", t->spills);
        rc |= pack_kv_u64(pk, "spilled_bytes", t->spilled_bytes);
        rc |= pack_kv_u64(pk, "spill_ms", t->spill_ms);
        rc |= pack_kv_u64(pk, "restores", t->restores);
        rc |= pack_kv_u64(pk, "restored_bytes", t->restored_bytes);
        rc |= pack_kv_u64(pk, "restore_ms", t->restore_ms);
        rc |= pack_kv_u64(pk, "refused", t->refused);
    }
    return rc;
}

/* devices: the CUDA devices, or why there are none, and NVRTC. */
static int pack_devices(msgpack_packer *pk, const struct proto_status *s)
{
    uint32_t n = s->ndevices < PROTO_DEVICES_MAX ? s->ndevices : PROTO_DEVICES_MAX;
    int rc = proto_pack_key(pk, "devices") | msgpack_pack_map(pk, 8);
    rc |= proto_pack_key(pk, "cuda") | msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct proto_device *d = &s->devices[i];
        rc |= msgpack_pack_map(pk, 4);
        rc |= proto_pack_key(pk, "name") | pack_str(pk, d->name);
        rc |= pack_kv_u64(pk, "cc_major", d->cc_major);
        rc |= pack_kv_u64(pk, "cc_minor", d->cc_minor);
        rc |= pack_kv_u64(pk, "memory", d->memory);
    }
    rc |= proto_pack_key(pk, "cuda_why") | pack_str(pk, s->cuda_why);
    rc |= pack_kv_u64(pk, "cuda_driver", s->cuda_driver);
    rc |= proto_pack_key(pk, "nvrtc") | pack_str(pk, s->nvrtc);
    rc |= proto_pack_key(pk, "nvrtc_why") | pack_str(pk, s->nvrtc_why);
    rc |= proto_pack_key(pk, "cuda_state") | pack_str(pk, s->cuda_state);
    rc |= pack_kv_u64(pk, "cuda_steps", s->cuda_steps);
    rc |= pack_kv_u64(pk, "cuda_fallbacks", s->cuda_fallbacks);
    return rc;
}

int proto_encode_reply_status(msgpack_sbuffer *sb, const struct proto_status *s)
{
    uint32_t nerr = 0;
    for (int c = 1; c < KILN_ERR_WIRE_COUNT; c++)
        nerr += s->errors[c] != 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_reply_head(&pk, KILN_OK, 14 + (s->has_lists ? 3 : 0) + (s->has_devices ? 1 : 0));
    rc |= proto_pack_key(&pk, "server") | pack_str(&pk, s->server);
    rc |= pack_kv_u64(&pk, "proto_min", s->proto_min);
    rc |= pack_kv_u64(&pk, "proto_max", s->proto_max);
    rc |= proto_pack_key(&pk, "pid") | msgpack_pack_int64(&pk, s->pid);
    rc |= pack_kv_u64(&pk, "uptime_ms", s->uptime_ms);
    rc |= pack_kv_u64(&pk, "sessions", s->sessions);
    rc |= pack_kv_u64(&pk, "sessions_total", s->sessions_total);
    rc |= pack_kv_u64(&pk, "requests", s->requests);
    rc |= pack_kv_u64(&pk, "workers", s->workers);
    rc |= proto_pack_key(&pk, "errors") | msgpack_pack_map(&pk, nerr);
    for (int c = 1; c < KILN_ERR_WIRE_COUNT; c++)
        if (s->errors[c] != 0)
            rc |= pack_kv_u64(&pk, kiln_err_name(c), s->errors[c]);
    rc |= proto_pack_key(&pk, "memory") | msgpack_pack_map(&pk, 4);
    rc |= pack_kv_u64(&pk, "in_use", s->mem_in_use);
    rc |= pack_kv_u64(&pk, "budget", s->mem_budget);
    rc |= pack_kv_u64(&pk, "rss", s->mem_rss);
    rc |= pack_tiers(&pk, s);
    rc |= proto_pack_key(&pk, "draining") |
          (s->draining ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    rc |= proto_pack_key(&pk, "steps") | msgpack_pack_map(&pk, 6);
    rc |= pack_kv_u64(&pk, "done", s->steps_done);
    rc |= pack_kv_u64(&pk, "failed", s->steps_failed);
    rc |= pack_kv_u64(&pk, "running", s->steps_running);
    rc |= pack_kv_u64(&pk, "queued", s->steps_queued);
    rc |= pack_kv_u64(&pk, "run_ms", s->step_run_ms);
    rc |= pack_kv_u64(&pk, "merged", s->steps_merged);
    rc |= proto_pack_key(&pk, "jit") | msgpack_pack_map(&pk, 11);
    rc |= proto_pack_key(&pk, "enabled") |
          (s->jit_enabled ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    rc |= pack_kv_u64(&pk, "kernels_compiled", s->jit_kernels_compiled);
    rc |= pack_kv_u64(&pk, "kernel_hits", s->jit_kernel_hits);
    rc |= pack_kv_u64(&pk, "compile_us", s->jit_compile_us);
    rc |= pack_kv_u64(&pk, "plans", s->jit_plans);
    rc |= pack_kv_u64(&pk, "plan_hits", s->jit_plan_hits);
    rc |= pack_kv_u64(&pk, "kernels_run", s->jit_kernels_run);
    rc |= pack_kv_u64(&pk, "kernels_cached", s->jit_kernels_cached);
    rc |= pack_kv_u64(&pk, "fallbacks", s->jit_fallbacks);
    rc |= proto_pack_key(&pk, "cc") | msgpack_pack_map(&pk, 7);
    rc |= proto_pack_key(&pk, "enabled") |
          (s->cc_enabled ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    rc |= pack_kv_u64(&pk, "kernels", s->cc_kernels);
    rc |= pack_kv_u64(&pk, "promoted", s->cc_promoted);
    rc |= pack_kv_u64(&pk, "compiles", s->cc_compiles);
    rc |= pack_kv_u64(&pk, "failures", s->cc_failures);
    rc |= pack_kv_u64(&pk, "compile_ms", s->cc_compile_ms);
    rc |= pack_kv_u64(&pk, "disk_hits", s->cc_disk_hits);
    rc |= proto_pack_key(&pk, "relays") | msgpack_pack_map(&pk, 3);
    rc |= proto_pack_key(&pk, "library") |
          (s->relay_library ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    rc |= pack_kv_u64(&pk, "runs", s->relay_runs);
    rc |= pack_kv_u64(&pk, "library_runs", s->relay_library_runs);
    if (s->has_devices)
        rc |= pack_devices(&pk, s);
    if (s->has_lists)
        rc |= pack_status_lists(&pk, s);
    return done(rc);
}

int proto_encode_reply_cancel(msgpack_sbuffer *sb, uint64_t cancelled)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_reply_head(&pk, KILN_OK, 1);
    rc |= pack_kv_u64(&pk, "cancelled", cancelled);
    return done(rc);
}

int proto_encode_reply_release(msgpack_sbuffer *sb, const struct proto_release_reply *r)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_reply_head(&pk, KILN_OK, 2);
    rc |= pack_kv_u64(&pk, "released", r->released);
    rc |= pack_kv_u64(&pk, "unknown", r->unknown);
    return done(rc);
}

int proto_encode_reply_submit(msgpack_sbuffer *sb, uint64_t step)
{
    if (step == 0)
        return KILN_EARG;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    return done(pack_reply_head(&pk, KILN_OK, 1) | pack_kv_u64(&pk, "step", step));
}

int proto_encode_reply_submit_warnings(msgpack_sbuffer *sb, uint64_t step,
                                       const struct proto_warning *w, uint32_t n)
{
    if (n == 0)
        return proto_encode_reply_submit(sb, step);
    if (step == 0 || n > PROTO_WARNINGS_MAX || w == NULL)
        return KILN_EARG;
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_reply_head(&pk, KILN_OK, 2) | pack_kv_u64(&pk, "step", step);
    rc |= proto_pack_key(&pk, "warnings") | msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        /* Fixed arrays: a missing NUL would read past them. */
        if (memchr(w[i].field, 0, sizeof(w[i].field)) == NULL ||
            memchr(w[i].message, 0, sizeof(w[i].message)) == NULL)
            return roll_back(sb, start, KILN_EARG);
        rc |= msgpack_pack_map(&pk, 3);
        rc |= proto_pack_key(&pk, "node") | msgpack_pack_int64(&pk, w[i].node);
        rc |= proto_pack_key(&pk, "field") | pack_str(&pk, w[i].field);
        rc |= proto_pack_key(&pk, "message") | pack_str(&pk, w[i].message);
    }
    return rc == 0 ? KILN_OK : roll_back(sb, start, KILN_ENOMEM);
}

static bool tensor_ok(const struct proto_tensor *t)
{
    if (t->rank > KILN_LIMIT_RANK || (t->bytes > 0 && t->data == NULL) ||
        t->bytes > KILN_LIMIT_MESSAGE_BYTES)
        return false;
    for (uint32_t j = 0; j < t->rank; j++)
        if (t->shape[j] < 0 || t->shape[j] > KILN_LIMIT_DIM)
            return false;
    uint64_t elements = proto_elements(t->shape, t->rank);
    size_t size = proto_dtype_size(t->dtype);
    return size == 0 || (elements <= (uint64_t) KILN_LIMIT_ELEMENTS && elements * size == t->bytes);
}

int proto_encode_reply_fetch(msgpack_sbuffer *sb, const struct proto_tensor *vars, uint32_t n)
{
    if (n > KILN_LIMIT_VAR_IDS || (n > 0 && vars == NULL))
        return KILN_EARG;
    for (uint32_t i = 0; i < n; i++)
        if (!tensor_ok(&vars[i]))
            return KILN_EARG;
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_reply_head(&pk, KILN_OK, 1);
    rc |= proto_pack_key(&pk, "vars") | msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const struct proto_tensor *t = &vars[i];
        rc |= msgpack_pack_map(&pk, 4) | pack_kv_u64(&pk, "id", t->id) |
              pack_kv_u64(&pk, "dtype", t->dtype);
        rc |= proto_pack_key(&pk, "shape") | msgpack_pack_array(&pk, t->rank);
        for (uint32_t j = 0; j < t->rank; j++)
            rc |= msgpack_pack_uint64(&pk, (uint64_t) t->shape[j]);
        rc |= proto_pack_key(&pk, "data") | msgpack_pack_bin(&pk, t->bytes) |
              msgpack_pack_bin_body(&pk, t->data, t->bytes);
        /* Stop before the buffer grows far past what may be sent. */
        if (sb->size - start > KILN_LIMIT_MESSAGE_BYTES)
            return roll_back(sb, start, KILN_EARG);
    }
    if (rc != 0)
        return roll_back(sb, start, KILN_ENOMEM);
    if (sb->size - start > KILN_LIMIT_MESSAGE_BYTES)
        return roll_back(sb, start, KILN_EARG);
    return KILN_OK;
}
