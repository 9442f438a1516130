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
    if (kind != PROTO_PING && kind != PROTO_STATUS && kind != PROTO_BYE)
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

/* ---- replies ----------------------------------------------------------- */

static int pack_reply_head(msgpack_packer *pk, int code, uint32_t pairs)
{
    return msgpack_pack_array(pk, 2) | msgpack_pack_uint32(pk, (uint32_t) code) |
           msgpack_pack_map(pk, pairs);
}

static int pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    return proto_pack_key(pk, key) | msgpack_pack_uint64(pk, v);
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
    rc |= proto_pack_key(&pk, "limits") | msgpack_pack_map(&pk, 12);
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
    return done(rc);
}

int proto_encode_reply_status(msgpack_sbuffer *sb, const struct proto_status *s)
{
    uint32_t nerr = 0;
    for (int c = 1; c < KILN_ERR_WIRE_COUNT; c++)
        nerr += s->errors[c] != 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_reply_head(&pk, KILN_OK, 12);
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
    rc |= proto_pack_key(&pk, "memory") | msgpack_pack_map(&pk, 3);
    rc |= pack_kv_u64(&pk, "in_use", s->mem_in_use);
    rc |= pack_kv_u64(&pk, "budget", s->mem_budget);
    rc |= pack_kv_u64(&pk, "rss", s->mem_rss);
    rc |= proto_pack_key(&pk, "draining") |
          (s->draining ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
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
