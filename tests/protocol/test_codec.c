/* test_codec.c: the protocol codec — shared vectors, round trips, every
 * limit one below and one above, malformed input, and a mutation storm
 * that must never crash (run under ASan in CI). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "vectors.h"

/* ---- helpers ----------------------------------------------------------- */

/* "ok <describe>" or "error NAME FIELD" for one request. */
static void request_outcome(const uint8_t *b, size_t len, char *out, size_t n)
{
    struct proto_request req;
    struct proto_error err;
    int rc = proto_request_decode(&req, b, len, &err);
    if (rc == KILN_OK) {
        int w = snprintf(out, n, "ok ");
        proto_request_describe(&req, out + w, n - (size_t) w);
        proto_request_fini(&req);
    } else {
        ck_assert_int_eq(rc, err.code);
        /* A node error names the node twice: in the field path and in
         * `node`; every other error has node -1. */
        unsigned pos;
        if (sscanf(err.field, "body.nodes[%u]", &pos) == 1)
            ck_assert_int_eq(err.node, pos);
        else
            ck_assert_int_eq(err.node, -1);
        snprintf(out, n, "error %s %s", kiln_err_name(rc), err.field[0] ? err.field : "-");
    }
}

/* " {id=.. dtype=.. shape=[..] data=0x..}" for one fetched var (PROTOCOL.md §7). */
static int describe_tensor(char *out, size_t n, const struct proto_tensor *t)
{
    int w = snprintf(out, n, " {id=%llu dtype=%u shape=[", (unsigned long long) t->id, t->dtype);
    for (uint32_t j = 0; j < t->rank; j++)
        w += snprintf(out + w, n - (size_t) w, "%s%lld", j ? "," : "", (long long) t->shape[j]);
    w += snprintf(out + w, n - (size_t) w, "] data=0x");
    for (size_t j = 0; j < t->bytes && (size_t) w + 3 < n; j++)
        w += snprintf(out + w, n - (size_t) w, "%02x", ((const uint8_t *) t->data)[j]);
    w += snprintf(out + w, n - (size_t) w, "}");
    return w;
}

static void quoted(char *out, size_t n, const char *s)
{
    size_t w = 0;
    w += (size_t) snprintf(out + w, n - w, "\"");
    for (; *s && w + 5 < n; s++) {
        if (*s == '"' || *s == '\\')
            w += (size_t) snprintf(out + w, n - w, "\\%c", *s);
        else
            w += (size_t) snprintf(out + w, n - w, "%c", *s);
    }
    snprintf(out + w, n - w, "\"");
}

static void reply_outcome(int kind, const uint8_t *b, size_t len, char *out, size_t n)
{
    struct proto_reply rep;
    struct proto_error err;
    int rc = proto_reply_decode(&rep, kind, b, len, &err);
    if (rc != KILN_OK) {
        snprintf(out, n, "error %s %s", kiln_err_name(rc), err.field[0] ? err.field : "-");
        return;
    }
    char q[512];
    int w = snprintf(out, n, "ok code=%s", kiln_err_name(rep.code));
    if (rep.code != KILN_OK) {
        quoted(q, sizeof(q), rep.error.field);
        w += snprintf(out + w, n - (size_t) w, " field=%s node=%lld", q,
                      (long long) rep.error.node);
        quoted(q, sizeof(q), rep.error.message);
        snprintf(out + w, n - (size_t) w, " message=%s", q);
    } else if (kind == PROTO_HELLO) {
        quoted(q, sizeof(q), rep.u.hello.server);
        snprintf(out + w, n - (size_t) w, " proto=%u session=%llu server=%s", rep.u.hello.proto,
                 (unsigned long long) rep.u.hello.session, q);
    } else if (kind == PROTO_RELEASE) {
        snprintf(out + w, n - (size_t) w, " released=%llu unknown=%llu",
                 (unsigned long long) rep.u.release.released,
                 (unsigned long long) rep.u.release.unknown);
    } else if (kind == PROTO_SUBMIT) {
        w += snprintf(out + w, n - (size_t) w, " step=%llu",
                      (unsigned long long) rep.u.submit.step);
        if (rep.u.submit.nwarnings > 0)
            snprintf(out + w, n - (size_t) w, " warnings=%u", rep.u.submit.nwarnings);
    } else if (kind == PROTO_FETCH) {
        w += snprintf(out + w, n - (size_t) w, " vars=%u", rep.u.fetch.count);
        for (uint32_t i = 0; i < rep.u.fetch.count; i++)
            w += describe_tensor(out + w, n - (size_t) w, &rep.u.fetch.vars[i]);
    }
    proto_reply_fini(&rep);
}

static int kind_from_name(const char *name)
{
    for (int k = 1; k < PROTO_KIND_END; k++)
        if (strcmp(proto_kind_name(k), name) == 0)
            return k;
    return atoi(name);
}

/* ---- shared vectors ---------------------------------------------------- */

START_TEST(request_vectors)
{
    char path[4096];
    struct vector_set set;
    vectors_path(path, sizeof(path), "requests.txt");
    ck_assert_int_eq(vectors_load(&set, path, 3), 0);
    ck_assert_uint_gt(set.n, 40);
    size_t cap = 1 << 20;
    char *got = malloc(cap);
    for (size_t i = 0; i < set.n; i++) {
        request_outcome(set.v[i].bytes, set.v[i].len, got, cap);
        ck_assert_msg(strcmp(got, set.v[i].expected) == 0, "vector %s: expected \"%.200s\", got \"%.200s\"",
                      set.v[i].name, set.v[i].expected, got);
    }
    free(got);
    vectors_free(&set);
}
END_TEST

START_TEST(reply_vectors)
{
    char path[4096];
    struct vector_set set;
    vectors_path(path, sizeof(path), "replies.txt");
    ck_assert_int_eq(vectors_load(&set, path, 4), 0);
    ck_assert_uint_gt(set.n, 5);
    for (size_t i = 0; i < set.n; i++) {
        char got[2048];
        reply_outcome(kind_from_name(set.v[i].kind), set.v[i].bytes, set.v[i].len, got,
                      sizeof(got));
        ck_assert_msg(strcmp(got, set.v[i].expected) == 0, "vector %s: expected \"%s\", got \"%s\"",
                      set.v[i].name, set.v[i].expected, got);
    }
    vectors_free(&set);
}
END_TEST

/* ---- round trips ------------------------------------------------------- */

START_TEST(roundtrip_hello)
{
    struct proto_hello h = {.proto_min = 1, .proto_max = 4, .has_token = true};
    strcpy(h.client, "round-trip");
    strcpy(h.token, "tok");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_hello(&sb, &h), KILN_OK);
    struct proto_request req;
    struct proto_error err;
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
    ck_assert_int_eq(req.kind, PROTO_HELLO);
    ck_assert_uint_eq(req.session, 0);
    ck_assert_uint_eq(req.u.hello.proto_min, 1);
    ck_assert_uint_eq(req.u.hello.proto_max, 4);
    ck_assert_str_eq(req.u.hello.client, "round-trip");
    ck_assert(req.u.hello.has_token);
    ck_assert_str_eq(req.u.hello.token, "tok");
    proto_request_fini(&req);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(roundtrip_simple_and_release)
{
    const int kinds[] = {PROTO_PING, PROTO_STATUS, PROTO_BYE};
    for (size_t i = 0; i < 3; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        ck_assert_int_eq(proto_encode_simple(&sb, kinds[i], 77), KILN_OK);
        struct proto_request req;
        struct proto_error err;
        ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
        ck_assert_int_eq(req.kind, kinds[i]);
        ck_assert_uint_eq(req.session, 77);
        proto_request_fini(&req);
        msgpack_sbuffer_destroy(&sb);
    }
    uint64_t ids[] = {1, 0, UINT64_MAX, 42};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_release(&sb, 9, ids, 4), KILN_OK);
    struct proto_request req;
    struct proto_error err;
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
    ck_assert_uint_eq(req.u.release.count, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(req.u.release.ids[i], ids[i]);
    proto_request_fini(&req);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(roundtrip_replies)
{
    msgpack_sbuffer sb;
    struct proto_reply rep;
    struct proto_error err;

    struct proto_hello_reply h = {.proto = 1, .session = 0xdeadbeefcafeULL, .idle_timeout_ms = 5};
    strcpy(h.server, "kilnd test");
    proto_limits_default(&h.limits);
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_reply_hello(&sb, &h), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_HELLO, sb.data, sb.size, &err), KILN_OK);
    ck_assert_int_eq(rep.code, KILN_OK);
    ck_assert_uint_eq(rep.u.hello.session, h.session);
    ck_assert_str_eq(rep.u.hello.server, "kilnd test");
    ck_assert_mem_eq(&rep.u.hello.limits, &h.limits, sizeof(h.limits));
    ck_assert_uint_eq(rep.u.hello.limits.rank, KILN_LIMIT_RANK);
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);

    struct proto_status s = {.proto_min = 1, .proto_max = 1, .pid = 1234, .uptime_ms = 99,
                             .sessions = 2, .sessions_total = 5, .requests = 1000,
                             .workers = 2, .mem_in_use = 10, .mem_budget = 1 << 30,
                             .mem_rss = 4 << 20, .draining = true, .steps_done = 9,
                             .steps_merged = 4};
    strcpy(s.server, "kilnd 9");
    s.errors[KILN_EMALFORMED] = 7;
    s.errors[KILN_ESESSION] = 1;
    s.ntiers = 2;
    s.tiers[0] = (struct proto_tier){.name = "host", .in_use = 10, .limit = 1 << 30,
                                     .moving = 3, .spills = 4, .spilled_bytes = 5,
                                     .spill_ms = 6, .restores = 7, .restored_bytes = 8,
                                     .restore_ms = 9, .refused = 11};
    s.tiers[1] = (struct proto_tier){.name = "disk", .in_use = 12, .limit = 13};
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_reply_status(&sb, &s), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_STATUS, sb.data, sb.size, &err), KILN_OK);
    ck_assert_mem_eq(&rep.u.status, &s, sizeof(s));
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
    /* devices: optional, so absent above; here two GPUs, then none and why. */
    s.has_devices = true;
    s.ndevices = 2;
    s.devices[0] = (struct proto_device){
        .name = "NVIDIA H100 80GB HBM3", .cc_major = 9, .memory = (uint64_t) 80 << 30};
    s.devices[1] = (struct proto_device){
        .name = "NVIDIA A100", .cc_major = 8, .cc_minor = 0, .memory = (uint64_t) 40 << 30};
    s.cuda_driver = 13000;
    strcpy(s.nvrtc, "13.0");
    strcpy(s.cuda_state, "ready");
    s.cuda_steps = 3;
    s.cuda_fallbacks = 1;
    for (int k = 0; k < 2; k++) {
        msgpack_sbuffer_init(&sb);
        ck_assert_int_eq(proto_encode_reply_status(&sb, &s), KILN_OK);
        ck_assert_int_eq(proto_reply_decode(&rep, PROTO_STATUS, sb.data, sb.size, &err), KILN_OK);
        ck_assert_mem_eq(&rep.u.status, &s, sizeof(s));
        proto_reply_fini(&rep);
        msgpack_sbuffer_destroy(&sb);
        s.ndevices = 0;
        memset(s.devices, 0, sizeof s.devices);
        s.cuda_driver = 0;
        strcpy(s.cuda_why, "no NVIDIA driver (libcuda.so.1: cannot open shared object file)");
        memset(s.nvrtc, 0, sizeof s.nvrtc);
        strcpy(s.nvrtc_why, "no NVRTC");
    }

    struct proto_error e;
    proto_error_set(&e, KILN_ELIMIT, "body.client", "client name is %d bytes", 300);
    e.node = 12;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_reply_error(&sb, &e), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_HELLO, sb.data, sb.size, &err), KILN_OK);
    ck_assert_int_eq(rep.code, KILN_ELIMIT);
    ck_assert_str_eq(rep.error.field, "body.client");
    ck_assert_str_eq(rep.error.message, "client name is 300 bytes");
    ck_assert_int_eq(rep.error.node, 12);
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);

    struct proto_release_reply rr = {.released = 3, .unknown = 4};
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_reply_release(&sb, &rr), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_RELEASE, sb.data, sb.size, &err), KILN_OK);
    ck_assert_uint_eq(rep.u.release.released, 3);
    ck_assert_uint_eq(rep.u.release.unknown, 4);
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_reply_empty(&sb), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_PING, sb.data, sb.size, &err), KILN_OK);
    ck_assert_int_eq(rep.code, KILN_OK);
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(encoders_refuse_bad_arguments)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    struct proto_hello h = {.proto_min = 1, .proto_max = 1};
    ck_assert_int_eq(proto_encode_hello(&sb, &h), KILN_EARG); /* empty client */
    strcpy(h.client, "x");
    h.proto_max = 0;
    ck_assert_int_eq(proto_encode_hello(&sb, &h), KILN_EARG);
    ck_assert_int_eq(proto_encode_simple(&sb, PROTO_HELLO, 0), KILN_EARG);
    ck_assert_int_eq(proto_encode_release(&sb, 1, NULL, 2), KILN_EARG);
    ck_assert_int_eq(proto_encode_release(&sb, 1, NULL, KILN_LIMIT_VAR_IDS + 1), KILN_EARG);
    struct proto_error e;
    proto_error_set(&e, KILN_ECONNECT, NULL, "client-side");
    ck_assert_int_eq(proto_encode_reply_error(&sb, &e), KILN_EARG);
    ck_assert_uint_eq(sb.size, 0); /* nothing half-written */
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- limits: one below passes, one above fails ------------------------- */

/* [PING, 0, {"k": <value>}] with `value` appended raw. */
static uint8_t *ping_with(const uint8_t *value, size_t vlen, size_t *len)
{
    static const uint8_t head[] = {0x93, 0x02, 0x00, 0x81, 0xa1, 'k'};
    uint8_t *b = malloc(sizeof(head) + vlen);
    memcpy(b, head, sizeof(head));
    memcpy(b + sizeof(head), value, vlen);
    *len = sizeof(head) + vlen;
    return b;
}

static int scan_bytes(const uint8_t *b, size_t len)
{
    struct proto_error err;
    return proto_scan(b, len, &err);
}

START_TEST(limit_string)
{
    for (uint32_t n = KILN_LIMIT_STRING - 1; n <= KILN_LIMIT_STRING + 1; n++) {
        uint8_t *v = malloc(3 + n);
        v[0] = 0xda;
        v[1] = (uint8_t) (n >> 8);
        v[2] = (uint8_t) n;
        memset(v + 3, 'a', n);
        size_t len;
        uint8_t *b = ping_with(v, 3 + n, &len);
        ck_assert_int_eq(scan_bytes(b, len), n <= KILN_LIMIT_STRING ? KILN_OK : KILN_ELIMIT);
        free(b);
        free(v);
    }
}
END_TEST

/* An array header of n items followed by n zero bytes. */
static uint8_t *array_of(uint32_t n, size_t *len)
{
    uint8_t *b = calloc(5 + (size_t) n, 1);
    b[0] = 0xdd;
    b[1] = (uint8_t) (n >> 24);
    b[2] = (uint8_t) (n >> 16);
    b[3] = (uint8_t) (n >> 8);
    b[4] = (uint8_t) n;
    *len = 5 + (size_t) n;
    return b;
}

START_TEST(limit_container_items)
{
    size_t len;
    /* one below: the array itself plus its items stays within the objects limit */
    uint8_t *b = array_of(KILN_LIMIT_CONTAINER_ITEMS - 1, &len);
    ck_assert_int_eq(scan_bytes(b, len), KILN_OK);
    free(b);
    b = array_of(KILN_LIMIT_CONTAINER_ITEMS + 1, &len);
    ck_assert_int_eq(scan_bytes(b, len), KILN_ELIMIT);
    free(b);
}
END_TEST

START_TEST(limit_objects)
{
    /* [a, b] where a and b are arrays of zeros: 3 + na + nb objects. */
    for (int over = 0; over <= 1; over++) {
        uint32_t total = KILN_LIMIT_OBJECTS + (uint32_t) over;
        uint32_t na = (total - 3) / 2, nb = total - 3 - na;
        size_t la, lb;
        uint8_t *a = array_of(na, &la), *c = array_of(nb, &lb);
        uint8_t *m = malloc(1 + la + lb);
        m[0] = 0x92;
        memcpy(m + 1, a, la);
        memcpy(m + 1 + la, c, lb);
        struct proto_error err;
        ck_assert_int_eq(proto_scan(m, 1 + la + lb, &err), over ? KILN_ELIMIT : KILN_OK);
        if (over)
            ck_assert_ptr_nonnull(strstr(err.message, "objects"));
        free(a);
        free(c);
        free(m);
    }
}
END_TEST

START_TEST(limit_depth)
{
    for (int depth = KILN_LIMIT_DEPTH - 1; depth <= KILN_LIMIT_DEPTH + 1; depth++) {
        uint8_t b[64];
        memset(b, 0x91, (size_t) depth - 1);
        b[depth - 1] = 0x00;
        ck_assert_int_eq(scan_bytes(b, (size_t) depth),
                         depth <= KILN_LIMIT_DEPTH ? KILN_OK : KILN_ELIMIT);
    }
    /* Hostile nesting far past the limit is refused without recursion. */
    size_t n = 1 << 20;
    uint8_t *deep = malloc(n);
    memset(deep, 0x91, n - 1);
    deep[n - 1] = 0;
    ck_assert_int_eq(scan_bytes(deep, n), KILN_ELIMIT);
    free(deep);
}
END_TEST

START_TEST(limit_message_bytes)
{
    /* A bin object filling exactly the limit scans; one byte more does not. */
    for (int over = 0; over <= 1; over++) {
        size_t len = (size_t) KILN_LIMIT_MESSAGE_BYTES + (size_t) over;
        uint8_t *b = calloc(len, 1);
        size_t payload = len - 5;
        b[0] = 0xc6;
        b[1] = (uint8_t) (payload >> 24);
        b[2] = (uint8_t) (payload >> 16);
        b[3] = (uint8_t) (payload >> 8);
        b[4] = (uint8_t) payload;
        ck_assert_int_eq(scan_bytes(b, len), over ? KILN_ELIMIT : KILN_OK);
        free(b);
    }
}
END_TEST

START_TEST(limit_name_token_var_ids)
{
    /* name and token one below / at / above, through the encoder and decoder */
    for (int n = KILN_LIMIT_NAME - 1; n <= KILN_LIMIT_NAME + 1; n++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        char name[KILN_LIMIT_NAME + 2];
        memset(name, 'n', (size_t) n);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint8(&pk, PROTO_HELLO);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "proto_min", 9);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_str_with_body(&pk, "proto_max", 9);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_str_with_body(&pk, "client", 6);
        msgpack_pack_str_with_body(&pk, name, (size_t) n);
        struct proto_request req;
        struct proto_error err;
        int rc = proto_request_decode(&req, sb.data, sb.size, &err);
        ck_assert_int_eq(rc, n <= KILN_LIMIT_NAME ? KILN_OK : KILN_ELIMIT);
        if (rc == KILN_OK) {
            ck_assert_uint_eq(strlen(req.u.hello.client), (size_t) n);
            proto_request_fini(&req);
        } else {
            ck_assert_str_eq(err.field, "body.client");
        }
        msgpack_sbuffer_destroy(&sb);
    }
    for (uint32_t n = KILN_LIMIT_VAR_IDS - 1; n <= KILN_LIMIT_VAR_IDS + 1; n++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint8(&pk, PROTO_RELEASE);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "vars", 4);
        msgpack_pack_array(&pk, n);
        for (uint32_t i = 0; i < n; i++)
            msgpack_pack_uint32(&pk, i);
        struct proto_request req;
        struct proto_error err;
        int rc = proto_request_decode(&req, sb.data, sb.size, &err);
        ck_assert_int_eq(rc, n <= KILN_LIMIT_VAR_IDS ? KILN_OK : KILN_ELIMIT);
        if (rc == KILN_OK) {
            ck_assert_uint_eq(req.u.release.count, n);
            ck_assert_uint_eq(req.u.release.ids[n - 1], n - 1);
            proto_request_fini(&req);
        }
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

/* ---- SUBMIT and FETCH -------------------------------------------------- */

static const uint8_t f32_data[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}; /* 1.0f, 2.0f */

/* Four nodes that between them use every node field. */
static void full_graph(struct proto_node nodes[4])
{
    /* Refreshed on every call: tests may scribble on it. */
    static struct proto_str conds[1];
    static const int64_t starts[] = {INT64_MIN, -1}, stops[] = {INT64_MAX};
    static const int64_t pads[2 * KILN_LIMIT_RANK] = {0, -3, 5, 7, [15] = 1};
    conds[0] = (struct proto_str){"i0 < 0", 6};
    memset(nodes, 0, 4 * sizeof(*nodes));
    nodes[0] = (struct proto_node){
        .id = 1, .op = 1,
        .has = PROTO_NODE_DTYPE | PROTO_NODE_SHAPE | PROTO_NODE_DATA | PROTO_NODE_STARTS |
               PROTO_NODE_STOPS | PROTO_NODE_STEPS | PROTO_NODE_PADS,
        .dtype = 6, .rank = 1, .shape = {2}, .data = f32_data, .data_len = sizeof(f32_data),
        .nstarts = 2, .starts = starts, .nstops = 1, .stops = stops, .nsteps = 0, .steps = NULL,
        .npads = 2 * KILN_LIMIT_RANK, .pads = pads};
    nodes[1] = (struct proto_node){
        .id = 2, .op = 4,
        .has = PROTO_NODE_DTYPE | PROTO_NODE_SHAPE | PROTO_NODE_DIST | PROTO_NODE_SEED |
               PROTO_NODE_OFFSET,
        .dtype = 7, .rank = 2, .shape = {KILN_LIMIT_DIM, 0}, .dist = 2, .seed = UINT64_MAX,
        .offset = 3};
    nodes[2] = (struct proto_node){.id = 3, .op = 2, .has = PROTO_NODE_VALUE | PROTO_NODE_DIM,
                                   .value = {.is_float = true, .f = -0.25}, .dim = 7};
    nodes[3] = (struct proto_node){
        .id = UINT64_MAX, .op = 97,
        .has = PROTO_NODE_IN | PROTO_NODE_SHAPE | PROTO_NODE_DIMS | PROTO_NODE_KEEPDIMS |
               PROTO_NODE_REDUCE_OP | PROTO_NODE_EXPRS | PROTO_NODE_CONDS | PROTO_NODE_OVERFLOW,
        .nin = 3, .in = {1, 2, 3}, .rank = 0, .ndims = 2, .dims = {7, 0}, .keepdims = true,
        .reduce_op = 5, .nexprs = 2, .exprs = {{"i0", 2}, {"@e1(i0)", 7}}, .nconds = 1,
        .conds = conds, .overflow = {.i = -7}};
}

static bool inside(const void *p, const msgpack_sbuffer *sb)
{
    const char *c = p;
    return c >= sb->data && c < sb->data + sb->size;
}

static void assert_node_eq(const struct proto_node *a, const struct proto_node *b)
{
    ck_assert_uint_eq(a->id, b->id);
    ck_assert_uint_eq(a->op, b->op);
    ck_assert_uint_eq(a->has, b->has);
    ck_assert_uint_eq(a->nin, b->nin);
    ck_assert_mem_eq(a->in, b->in, a->nin * sizeof(a->in[0]));
    ck_assert_uint_eq(a->dtype, b->dtype);
    ck_assert_uint_eq(a->rank, b->rank);
    ck_assert_mem_eq(a->shape, b->shape, a->rank * sizeof(a->shape[0]));
    ck_assert_uint_eq(a->data_len, b->data_len);
    if (a->data_len > 0)
        ck_assert_mem_eq(a->data, b->data, a->data_len);
    ck_assert_int_eq(a->value.is_float, b->value.is_float);
    ck_assert_int_eq(a->value.i, b->value.i);
    ck_assert(a->value.f == b->value.f);
    ck_assert_uint_eq(a->dim, b->dim);
    ck_assert_uint_eq(a->dist, b->dist);
    ck_assert_uint_eq(a->seed, b->seed);
    ck_assert_uint_eq(a->offset, b->offset);
    ck_assert_uint_eq(a->ndims, b->ndims);
    ck_assert_mem_eq(a->dims, b->dims, a->ndims * sizeof(a->dims[0]));
    ck_assert_int_eq(a->keepdims, b->keepdims);
    ck_assert_uint_eq(a->reduce_op, b->reduce_op);
    ck_assert_uint_eq(a->nexprs, b->nexprs);
    for (uint32_t j = 0; j < a->nexprs; j++) {
        ck_assert_uint_eq(a->exprs[j].len, b->exprs[j].len);
        ck_assert_mem_eq(a->exprs[j].ptr, b->exprs[j].ptr, a->exprs[j].len);
    }
    ck_assert_uint_eq(a->nconds, b->nconds);
    for (uint32_t j = 0; j < a->nconds; j++) {
        ck_assert_uint_eq(a->conds[j].len, b->conds[j].len);
        ck_assert_mem_eq(a->conds[j].ptr, b->conds[j].ptr, a->conds[j].len);
    }
    ck_assert_int_eq(a->overflow.is_float, b->overflow.is_float);
    ck_assert_int_eq(a->overflow.i, b->overflow.i);
    ck_assert_uint_eq(a->nstarts, b->nstarts);
    ck_assert_uint_eq(a->nstops, b->nstops);
    ck_assert_uint_eq(a->nsteps, b->nsteps);
    ck_assert_uint_eq(a->npads, b->npads);
    if (a->nstarts > 0)
        ck_assert_mem_eq(a->starts, b->starts, a->nstarts * sizeof(a->starts[0]));
    if (a->nstops > 0)
        ck_assert_mem_eq(a->stops, b->stops, a->nstops * sizeof(a->stops[0]));
    if (a->nsteps > 0)
        ck_assert_mem_eq(a->steps, b->steps, a->nsteps * sizeof(a->steps[0]));
    if (a->npads > 0)
        ck_assert_mem_eq(a->pads, b->pads, a->npads * sizeof(a->pads[0]));
}

/* SUBMIT's optional device: absent is the CPU, "cuda" arrives as such, any
 * other name is VALUE naming the field. */
START_TEST(submit_device)
{
    struct proto_node nodes[4];
    full_graph(nodes);
    uint64_t keep[] = {2};
    struct proto_submit sub = {.nnodes = 4, .nodes = nodes, .nkeep = 1, .keep = keep,
                               .device = PROTO_DEVICE_CUDA, .tf32 = true};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_submit(&sb, 5, &sub), KILN_OK);
    struct proto_request req;
    struct proto_error err;
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
    ck_assert_uint_eq(req.u.submit.device, PROTO_DEVICE_CUDA);
    ck_assert(req.u.submit.tf32);
    proto_request_fini(&req);
    char *at = memmem(sb.data, sb.size, "\xa4" "cuda", 5); /* the value: fixstr 4 */
    ck_assert_ptr_nonnull(at);
    at[4] = 'x';
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_EVALUE);
    ck_assert_str_eq(err.field, "body.device");
    proto_request_fini(&req);
    msgpack_sbuffer_clear(&sb);
    sub.device = PROTO_DEVICE_CPU;
    sub.tf32 = false;
    ck_assert_int_eq(proto_encode_submit(&sb, 5, &sub), KILN_OK);
    ck_assert_ptr_null(memmem(sb.data, sb.size, "device", 6)); /* the defaults are not sent */
    ck_assert_ptr_null(memmem(sb.data, sb.size, "tf32", 4));
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
    ck_assert_uint_eq(req.u.submit.device, PROTO_DEVICE_CPU);
    ck_assert(!req.u.submit.tf32);
    proto_request_fini(&req);
    msgpack_sbuffer_clear(&sb);
    sub.device = 7;
    ck_assert_int_eq(proto_encode_submit(&sb, 5, &sub), KILN_EARG);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(roundtrip_submit_fetch)
{
    struct proto_node nodes[4];
    full_graph(nodes);
    uint64_t keep[] = {2, UINT64_MAX};
    struct proto_submit sub = {.nnodes = 4, .nodes = nodes, .nkeep = 2, .keep = keep};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_submit(&sb, 99, &sub), KILN_OK);
    struct proto_request req;
    struct proto_error err;
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
    ck_assert_int_eq(req.kind, PROTO_SUBMIT);
    ck_assert_uint_eq(req.session, 99);
    ck_assert_uint_eq(req.u.submit.nnodes, 4);
    ck_assert_uint_eq(req.u.submit.nkeep, 2);
    ck_assert_mem_eq(req.u.submit.keep, keep, sizeof(keep));
    for (int i = 0; i < 4; i++)
        assert_node_eq(&nodes[i], &req.u.submit.nodes[i]);
    /* Zero-copy: data and expressions point into the message. */
    ck_assert(inside(req.u.submit.nodes[0].data, &sb));
    ck_assert(inside(req.u.submit.nodes[3].exprs[1].ptr, &sb));
    /* What was sent and what arrived describe alike. */
    struct proto_request sent = {.kind = PROTO_SUBMIT, .session = 99};
    sent.u.submit = sub;
    char a[2048], b[2048];
    ck_assert_int_lt(proto_request_describe(&sent, a, sizeof(a)), (int) sizeof(a));
    proto_request_describe(&req, b, sizeof(b));
    ck_assert_str_eq(a, b);
    ck_assert_ptr_nonnull(strstr(b, " data=0x0000803f00000040"
                                    " starts=[-9223372036854775808,-1] stops=[9223372036854775807]"
                                    " steps=[] pads=[0,-3,5,7,0,0,0,0,0,0,0,0,0,0,0,1]}"));
    ck_assert_ptr_nonnull(strstr(b, " value=float:-0.25 dim=7}"));
    ck_assert_ptr_nonnull(strstr(b, " exprs=[\"i0\",\"@e1(i0)\"] conds=[\"i0 < 0\"]"
                                    " overflow_value=-7}"));
    /* A description cut short is a prefix of the whole one, NUL-terminated. */
    for (size_t n = 1; n < 200; n += 7) {
        char c[200];
        int want = proto_request_describe(&req, c, n);
        ck_assert_int_eq(want, (int) strlen(b));
        ck_assert_uint_eq(strlen(c), n - 1);
        ck_assert(strncmp(c, b, n - 1) == 0);
    }
    proto_request_fini(&req);

    msgpack_sbuffer_clear(&sb);
    uint64_t ids[] = {5, 6, UINT64_MAX};
    ck_assert_int_eq(proto_encode_fetch(&sb, 3, ids, 3, 1234), KILN_OK);
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
    ck_assert_int_eq(req.kind, PROTO_FETCH);
    ck_assert_uint_eq(req.u.fetch.count, 3);
    ck_assert_mem_eq(req.u.fetch.ids, ids, sizeof(ids));
    ck_assert_uint_eq(req.u.fetch.timeout_ms, 1234);
    proto_request_describe(&req, b, sizeof(b));
    ck_assert_str_eq(b, "FETCH session=3 vars=[5,6,18446744073709551615] timeout_ms=1234");
    proto_request_fini(&req);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(roundtrip_graph_replies)
{
    msgpack_sbuffer sb;
    struct proto_reply rep;
    struct proto_error err;

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_reply_submit(&sb, 42), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_SUBMIT, sb.data, sb.size, &err), KILN_OK);
    ck_assert_int_eq(rep.code, KILN_OK);
    ck_assert_uint_eq(rep.u.submit.step, 42);
    ck_assert_uint_eq(rep.u.submit.nwarnings, 0);
    proto_reply_fini(&rep);

    /* Warnings: round trip, the limit, a missing NUL, and n 0 as plain. */
    static struct proto_warning w[PROTO_WARNINGS_MAX + 1];
    for (int i = 0; i <= PROTO_WARNINGS_MAX; i++) {
        w[i].node = i - 1;
        snprintf(w[i].field, sizeof(w[i].field), "body.nodes[%d].in[1]", i);
        snprintf(w[i].message, sizeof(w[i].message), "warning %d", i);
    }
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_encode_reply_submit_warnings(&sb, 7, w, PROTO_WARNINGS_MAX), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_SUBMIT, sb.data, sb.size, &err), KILN_OK);
    ck_assert_uint_eq(rep.u.submit.step, 7);
    ck_assert_uint_eq(rep.u.submit.nwarnings, PROTO_WARNINGS_MAX);
    for (int i = 0; i < PROTO_WARNINGS_MAX; i++) {
        ck_assert_int_eq(rep.u.submit.warnings[i].node, i - 1);
        ck_assert_str_eq(rep.u.submit.warnings[i].field, w[i].field);
        ck_assert_str_eq(rep.u.submit.warnings[i].message, w[i].message);
    }
    proto_reply_fini(&rep);
    size_t before = sb.size;
    ck_assert_int_eq(proto_encode_reply_submit_warnings(&sb, 7, w, PROTO_WARNINGS_MAX + 1),
                     KILN_EARG);
    ck_assert_int_eq(proto_encode_reply_submit_warnings(&sb, 0, w, 1), KILN_EARG);
    struct proto_warning bad = {0};
    memset(bad.message, 'x', sizeof(bad.message));
    ck_assert_int_eq(proto_encode_reply_submit_warnings(&sb, 7, &bad, 1), KILN_EARG);
    ck_assert_uint_eq(sb.size, before);
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_encode_reply_submit_warnings(&sb, 9, NULL, 0), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_SUBMIT, sb.data, sb.size, &err), KILN_OK);
    ck_assert_uint_eq(rep.u.submit.step, 9);
    ck_assert_uint_eq(rep.u.submit.nwarnings, 0);
    ck_assert_ptr_null(rep.u.submit.warnings);
    proto_reply_fini(&rep);

    struct proto_tensor t[4] = {
        {.id = 3, .dtype = 6, .rank = 1, .shape = {2}, .data = f32_data, .bytes = 8},
        {.id = 4, .dtype = 1, .rank = 0, .data = "\x01", .bytes = 1},
        {.id = 5, .dtype = 5, .rank = 2, .shape = {0, 3}, .data = NULL, .bytes = 0},
        {.id = UINT64_MAX, .dtype = 42, .rank = 1, .shape = {5}, .data = "abc", .bytes = 3},
    };
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_encode_reply_fetch(&sb, t, 4), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_FETCH, sb.data, sb.size, &err), KILN_OK);
    ck_assert_int_eq(rep.code, KILN_OK);
    ck_assert_uint_eq(rep.u.fetch.count, 4);
    for (int i = 0; i < 4; i++) {
        const struct proto_tensor *g = &rep.u.fetch.vars[i];
        ck_assert_uint_eq(g->id, t[i].id);
        ck_assert_uint_eq(g->dtype, t[i].dtype);
        ck_assert_uint_eq(g->rank, t[i].rank);
        ck_assert_mem_eq(g->shape, t[i].shape, t[i].rank * sizeof(t[i].shape[0]));
        ck_assert_uint_eq(g->bytes, t[i].bytes);
        if (g->bytes > 0) {
            ck_assert_mem_eq(g->data, t[i].data, g->bytes);
            ck_assert(inside(g->data, &sb)); /* zero-copy */
        }
    }
    proto_reply_fini(&rep);

    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_encode_reply_fetch(&sb, NULL, 0), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_FETCH, sb.data, sb.size, &err), KILN_OK);
    ck_assert_uint_eq(rep.u.fetch.count, 0);
    proto_reply_fini(&rep);

    /* The new HELLO limits travel too. */
    struct proto_hello_reply h = {.proto = 1, .session = 1};
    strcpy(h.server, "k");
    proto_limits_default(&h.limits);
    ck_assert_uint_eq(h.limits.node_inputs, KILN_LIMIT_NODE_INPUTS);
    ck_assert_uint_eq(h.limits.expr_bytes, KILN_LIMIT_EXPR_BYTES);
    ck_assert_uint_eq(h.limits.expr_nodes, KILN_LIMIT_EXPR_NODES);
    ck_assert_uint_eq(h.limits.expr_depth, KILN_LIMIT_EXPR_DEPTH);
    ck_assert_uint_eq(h.limits.conds, KILN_LIMIT_CONDS);
    ck_assert_uint_eq(h.limits.grad_passes, KILN_LIMIT_GRAD_PASSES);
    h.limits.conds = 5;
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_encode_reply_hello(&sb, &h), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_HELLO, sb.data, sb.size, &err), KILN_OK);
    ck_assert_mem_eq(&rep.u.hello.limits, &h.limits, sizeof(h.limits));
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(encoders_refuse_bad_graphs)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    struct proto_node nodes[4];
    uint64_t keep[] = {1, 0};
    struct proto_submit sub = {.nnodes = 4, .nodes = nodes, .nkeep = 1, .keep = keep};
    char long_expr[KILN_LIMIT_EXPR_BYTES + 1];
    memset(long_expr, '1', sizeof(long_expr));

    full_graph(nodes);
    ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), KILN_OK);
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_encode_submit(&sb, 0, &sub), KILN_EARG); /* no session */
    sub.nnodes = 0;
    ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), KILN_EARG);
    sub.nnodes = KILN_LIMIT_NODES + 1;
    ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), KILN_EARG);
    sub.nnodes = 4;
    sub.nkeep = 2; /* keep[1] is 0 */
    ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), KILN_EARG);
    sub.keep = NULL;
    ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), KILN_EARG);
    sub.keep = keep;
    sub.nkeep = KILN_LIMIT_VAR_IDS + 1;
    ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), KILN_EARG);
    sub.nkeep = 1;

    /* Each broken node field, one at a time. */
    for (int c = 0; c < 20; c++) {
        full_graph(nodes);
        struct proto_node *n = &nodes[3];
        switch (c) {
        case 0: n->id = 0; break;
        case 1: n->has |= PROTO_NODE_GROUPS << 1; break; /* the first bit past the fields */
        case 2: n->nin = KILN_LIMIT_NODE_INPUTS + 1; break;
        case 3: n->in[1] = 0; break;
        case 4: nodes[1].rank = KILN_LIMIT_RANK + 1; break;
        case 5: nodes[1].shape[1] = -1; break;
        case 6: nodes[1].shape[0] = KILN_LIMIT_DIM + 1; break;
        case 7: nodes[0].data = NULL; break;
        case 8: n->ndims = KILN_LIMIT_RANK + 1; break;
        case 9: n->dims[0] = KILN_LIMIT_RANK; break;
        case 10: n->nexprs = KILN_LIMIT_RANK + 1; break;
        case 11: n->exprs[0] = (struct proto_str){long_expr, KILN_LIMIT_EXPR_BYTES + 1}; break;
        case 12: n->nconds = KILN_LIMIT_CONDS + 1; break;
        case 13: n->conds[0] = (struct proto_str){NULL, 3}; break; /* full_graph refreshes it */
        case 14: nodes[0].nstarts = KILN_LIMIT_RANK + 1; break;
        case 15: nodes[0].npads = 2 * KILN_LIMIT_RANK + 1; break;
        case 16: nodes[0].stops = NULL; break;
        case 17: nodes[0].nsteps = 1; break; /* steps is NULL */
        case 18: n->has |= PROTO_NODE_STRIDE, n->nstride = 3, n->stride = nodes[0].pads; break;
        case 19: n->has |= PROTO_NODE_TRANS, n->ntrans = 1, n->trans = NULL; break;
        }
        ck_assert_msg(proto_encode_submit(&sb, 1, &sub) == KILN_EARG, "case %d", c);
    }

    /* Every part within its limit, but too many objects in all. */
    uint32_t many = KILN_LIMIT_NODES;
    struct proto_node *big = calloc(many, sizeof(*big));
    struct proto_str zeros[KILN_LIMIT_CONDS];
    for (int j = 0; j < KILN_LIMIT_CONDS; j++)
        zeros[j] = (struct proto_str){"0", 1};
    for (uint32_t i = 0; i < many; i++)
        big[i] = (struct proto_node){.id = i + 1, .op = 97, .has = PROTO_NODE_CONDS,
                                     .nconds = KILN_LIMIT_CONDS, .conds = zeros};
    struct proto_submit bigsub = {.nnodes = many, .nodes = big};
    ck_assert_int_eq(proto_encode_submit(&sb, 1, &bigsub), KILN_EARG);
    free(big);

    uint64_t ids[] = {1, 0};
    ck_assert_int_eq(proto_encode_fetch(&sb, 0, ids, 1, 0), KILN_EARG);
    ck_assert_int_eq(proto_encode_fetch(&sb, 1, ids, 2, 0), KILN_EARG); /* id 0 */
    ck_assert_int_eq(proto_encode_fetch(&sb, 1, NULL, 1, 0), KILN_EARG);
    ck_assert_int_eq(proto_encode_fetch(&sb, 1, NULL, KILN_LIMIT_VAR_IDS + 1, 0), KILN_EARG);
    ck_assert_int_eq(proto_encode_fetch(&sb, 1, ids, 1, KILN_FETCH_TIMEOUT_MAX_MS + 1),
                     KILN_EARG);

    ck_assert_int_eq(proto_encode_reply_submit(&sb, 0), KILN_EARG);
    struct proto_tensor t = {.id = 1, .dtype = 6, .rank = 1, .shape = {2}, .data = f32_data,
                             .bytes = 7};
    ck_assert_int_eq(proto_encode_reply_fetch(&sb, &t, 1), KILN_EARG); /* 7 != 2 x 4 */
    t.bytes = 8;
    t.rank = KILN_LIMIT_RANK + 1;
    ck_assert_int_eq(proto_encode_reply_fetch(&sb, &t, 1), KILN_EARG);
    t.rank = 1;
    t.data = NULL;
    ck_assert_int_eq(proto_encode_reply_fetch(&sb, &t, 1), KILN_EARG);
    ck_assert_int_eq(proto_encode_reply_fetch(&sb, NULL, 1), KILN_EARG);
    ck_assert_int_eq(proto_encode_reply_fetch(&sb, NULL, KILN_LIMIT_VAR_IDS + 1), KILN_EARG);
    ck_assert_uint_eq(sb.size, 0); /* nothing half-written */
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Graph limits, one below, at and one above, packed by hand so the
 * over-limit case reaches the decoder. */
enum graph_limit { GL_NODES, GL_IN, GL_CONDS, GL_EXPR, GL_KEEP, GL_RANK };

static void pack_graph_limit(msgpack_sbuffer *sb, enum graph_limit which, uint32_t n)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, PROTO_SUBMIT);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "nodes", 5);
    uint32_t nn = which == GL_NODES ? n : 1;
    msgpack_pack_array(&pk, nn);
    for (uint32_t i = 0; i < nn; i++) {
        bool plain = which == GL_NODES || which == GL_KEEP;
        msgpack_pack_map(&pk, plain ? 2 : 3);
        msgpack_pack_str_with_body(&pk, "id", 2);
        msgpack_pack_uint64(&pk, i + 1);
        msgpack_pack_str_with_body(&pk, "op", 2);
        msgpack_pack_uint8(&pk, 97);
        if (which == GL_IN || which == GL_RANK) {
            msgpack_pack_str_with_body(&pk, which == GL_IN ? "in" : "shape",
                                       which == GL_IN ? 2 : 5);
            msgpack_pack_array(&pk, n);
            for (uint32_t j = 0; j < n; j++)
                msgpack_pack_uint8(&pk, 1);
        } else if (which == GL_CONDS) {
            msgpack_pack_str_with_body(&pk, "conds", 5);
            msgpack_pack_array(&pk, n);
            for (uint32_t j = 0; j < n; j++)
                msgpack_pack_str_with_body(&pk, "0", 1);
        } else if (which == GL_EXPR) {
            char *e = malloc(n);
            memset(e, '1', n);
            msgpack_pack_str_with_body(&pk, "exprs", 5);
            msgpack_pack_array(&pk, 1);
            msgpack_pack_str_with_body(&pk, e, n);
            free(e);
        }
    }
    msgpack_pack_str_with_body(&pk, "keep", 4);
    uint32_t nk = which == GL_KEEP ? n : 0;
    msgpack_pack_array(&pk, nk);
    for (uint32_t i = 0; i < nk; i++)
        msgpack_pack_uint64(&pk, i + 1);
}

/* The count the decoder kept for `which`. */
static uint32_t graph_limit_count(const struct proto_submit *s, enum graph_limit which)
{
    switch (which) {
    case GL_NODES: return s->nnodes;
    case GL_IN: return s->nodes[0].nin;
    case GL_CONDS: return s->nodes[0].nconds;
    case GL_EXPR: return s->nodes[0].exprs[0].len;
    case GL_KEEP: return s->nkeep;
    case GL_RANK: return s->nodes[0].rank;
    }
    return 0;
}

START_TEST(limit_graph)
{
    static const struct {
        enum graph_limit which;
        uint32_t limit;
        const char *field;
        int node;
    } cases[] = {
        {GL_NODES, KILN_LIMIT_NODES, "body.nodes", -1},
        {GL_IN, KILN_LIMIT_NODE_INPUTS, "body.nodes[0].in", 0},
        {GL_CONDS, KILN_LIMIT_CONDS, "body.nodes[0].conds", 0},
        {GL_EXPR, KILN_LIMIT_EXPR_BYTES, "body.nodes[0].exprs[0]", 0},
        {GL_KEEP, KILN_LIMIT_VAR_IDS, "body.keep", -1},
        {GL_RANK, KILN_LIMIT_RANK, "body.nodes[0].shape", 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (uint32_t n = cases[c].limit - 1; n <= cases[c].limit + 1; n++) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            pack_graph_limit(&sb, cases[c].which, n);
            struct proto_request req;
            struct proto_error err;
            int rc = proto_request_decode(&req, sb.data, sb.size, &err);
            if (n <= cases[c].limit) {
                ck_assert_msg(rc == KILN_OK, "%s at %u: %s", cases[c].field, n, err.message);
                ck_assert_uint_eq(graph_limit_count(&req.u.submit, cases[c].which), n);
                proto_request_fini(&req);
            } else {
                ck_assert_int_eq(rc, KILN_ELIMIT);
                ck_assert_str_eq(err.field, cases[c].field);
                ck_assert_int_eq(err.node, cases[c].node);
            }
            msgpack_sbuffer_destroy(&sb);
        }
    }
    /* dim: 2^40 is the largest size of one dimension */
    for (int64_t d = KILN_LIMIT_DIM - 1; d <= KILN_LIMIT_DIM + 1; d++) {
        struct proto_node nd = {.id = 1, .op = 2, .has = PROTO_NODE_SHAPE, .rank = 2,
                                .shape = {1, d}};
        struct proto_submit sub = {.nnodes = 1, .nodes = &nd};
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        int rc = proto_encode_submit(&sb, 1, &sub);
        ck_assert_int_eq(rc, d <= KILN_LIMIT_DIM ? KILN_OK : KILN_EARG);
        if (rc == KILN_OK) {
            struct proto_request req;
            struct proto_error err;
            ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
            ck_assert_int_eq(req.u.submit.nodes[0].shape[1], d);
            proto_request_fini(&req);
        }
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

START_TEST(limit_graph_encoders)
{
    /* The encoders accept each graph limit and refuse one more. */
    uint32_t big = KILN_LIMIT_NODES + 1;
    struct proto_node *nodes = calloc(big, sizeof(*nodes));
    uint64_t *ids = malloc(big * sizeof(*ids));
    char *expr = malloc(KILN_LIMIT_EXPR_BYTES + 1);
    memset(expr, '1', KILN_LIMIT_EXPR_BYTES + 1);
    for (uint32_t i = 0; i < big; i++) {
        nodes[i] = (struct proto_node){.id = i + 1, .op = 2};
        ids[i] = i + 1;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (int over = 0; over <= 1; over++) {
        int want = over ? KILN_EARG : KILN_OK;
        struct proto_submit sub = {.nnodes = KILN_LIMIT_NODES + over, .nodes = nodes};
        ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), want);
        sub = (struct proto_submit){.nnodes = 1, .nodes = nodes, .keep = ids,
                                    .nkeep = KILN_LIMIT_VAR_IDS + over};
        ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), want);
        ck_assert_int_eq(proto_encode_fetch(&sb, 1, ids, KILN_LIMIT_VAR_IDS + over, 0), want);

        struct proto_node nd = {.id = 1, .op = 97};
        sub = (struct proto_submit){.nnodes = 1, .nodes = &nd};
        nd.has = PROTO_NODE_IN;
        nd.nin = KILN_LIMIT_NODE_INPUTS + over;
        for (int j = 0; j < KILN_LIMIT_NODE_INPUTS; j++)
            nd.in[j] = 1;
        ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), want);
        nd.has = PROTO_NODE_CONDS;
        nd.nconds = KILN_LIMIT_CONDS + over;
        struct proto_str cs[KILN_LIMIT_CONDS + 1];
        for (int j = 0; j < KILN_LIMIT_CONDS + 1; j++)
            cs[j] = (struct proto_str){"0", 1};
        nd.conds = cs;
        ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), want);
        nd.has = PROTO_NODE_EXPRS;
        nd.nexprs = 1;
        nd.exprs[0] = (struct proto_str){expr, KILN_LIMIT_EXPR_BYTES + (uint32_t) over};
        ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), want);
        nd.has = PROTO_NODE_SHAPE;
        nd.rank = KILN_LIMIT_RANK + (uint32_t) over;
        ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), want);
    }
    msgpack_sbuffer_destroy(&sb);
    free(nodes);
    free(ids);
    free(expr);
}
END_TEST

START_TEST(submit_error_paths_free_everything)
{
    /* A valid graph, then the same graph broken at its last node and at
     * its last keep id: the decoder has allocated by then and must free
     * it all (LeakSanitizer checks in the ASan build). */
    struct proto_node nodes[4];
    full_graph(nodes);
    uint64_t keep[] = {2, 3};
    struct proto_submit sub = {.nnodes = 4, .nodes = nodes, .nkeep = 2, .keep = keep};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_submit(&sb, 1, &sub), KILN_OK);
    /* The overflow value -7 is the last byte before "keep": make it a nil. */
    char *p = memmem(sb.data, sb.size, "overflow_value", 14);
    ck_assert_ptr_nonnull(p);
    p[14] = (char) 0xc0;
    struct proto_request req;
    struct proto_error err;
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_ETYPE);
    ck_assert_str_eq(err.field, "body.nodes[3].overflow_value");
    ck_assert_int_eq(err.node, 3);
    p[14] = (char) 0xf9; /* -7 again */
    sb.data[sb.size - 1] = (char) 0xff; /* keep[1] = -1 */
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_EVALUE);
    ck_assert_str_eq(err.field, "body.keep[1]");
    ck_assert_int_eq(err.node, -1);
    sb.data[sb.size - 1] = 3;
    ck_assert_int_eq(proto_request_decode(&req, sb.data, sb.size, &err), KILN_OK);
    proto_request_fini(&req);
    proto_request_fini(&req); /* safe twice: fini leaves a zeroed object */
    msgpack_sbuffer_destroy(&sb);

    /* A FETCH reply broken at its last var frees the vars decoded before. */
    struct proto_tensor t[2] = {
        {.id = 3, .dtype = 6, .rank = 1, .shape = {2}, .data = f32_data, .bytes = 8},
        {.id = 4, .dtype = 3, .rank = 1, .shape = {1}, .data = "x", .bytes = 1},
    };
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_reply_fetch(&sb, t, 2), KILN_OK);
    struct proto_reply rep;
    char *d = memmem(sb.data, sb.size, "dtype\x03", 6);
    ck_assert_ptr_nonnull(d);
    d[5] = 4; /* int32: one byte is not one element */
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_FETCH, sb.data, sb.size, &err), KILN_EPROTO);
    ck_assert_str_eq(err.field, "body.vars[1].data");
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- malformed input --------------------------------------------------- */

START_TEST(every_truncation_is_malformed)
{
    struct proto_hello h = {.proto_min = 1, .proto_max = 1, .has_token = true};
    strcpy(h.client, "truncate-me");
    strcpy(h.token, "token");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_hello(&sb, &h), KILN_OK);
    for (size_t len = 0; len < sb.size; len++) {
        struct proto_request req;
        struct proto_error err;
        /* A copy of exactly `len` bytes so ASan sees any read past the end. */
        uint8_t *b = malloc(len ? len : 1);
        memcpy(b, sb.data, len);
        ck_assert_int_eq(proto_request_decode(&req, b, len, &err), KILN_EMALFORMED);
        free(b);
    }
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(every_type_byte)
{
    /* Each first byte followed by plenty of zeros: never a crash, always a
     * defined code, and request errors only. */
    for (int b0 = 0; b0 < 256; b0++) {
        uint8_t b[64] = {0};
        b[0] = (uint8_t) b0;
        for (size_t len = 1; len <= sizeof(b); len *= 2) {
            struct proto_request req;
            struct proto_error err;
            int rc = proto_request_decode(&req, b, len, &err);
            ck_assert_int_ne(rc, KILN_OK); /* a lone scalar is never a request */
            ck_assert_int_lt(rc, KILN_ERR_WIRE_COUNT);
            ck_assert_int_ne(rc, KILN_EINTERNAL);
        }
    }
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic, seeded per test */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

START_TEST(mutation_storm)
{
    enum { NSEEDS = 6 };
    struct proto_hello h = {.proto_min = 1, .proto_max = 2};
    strcpy(h.client, "storm");
    uint64_t ids[] = {1, 2, 3};
    struct proto_node nodes[4];
    full_graph(nodes);
    struct proto_submit sub = {.nnodes = 4, .nodes = nodes, .nkeep = 3, .keep = ids};
    struct proto_tensor t[2] = {
        {.id = 3, .dtype = 6, .rank = 1, .shape = {2}, .data = f32_data, .bytes = 8},
        {.id = 4, .dtype = 1, .rank = 0, .data = "\x01", .bytes = 1},
    };
    msgpack_sbuffer seeds[NSEEDS];
    for (int i = 0; i < NSEEDS; i++)
        msgpack_sbuffer_init(&seeds[i]);
    ck_assert_int_eq(proto_encode_hello(&seeds[0], &h), KILN_OK);
    ck_assert_int_eq(proto_encode_release(&seeds[1], 5, ids, 3), KILN_OK);
    ck_assert_int_eq(proto_encode_simple(&seeds[2], PROTO_PING, 0), KILN_OK);
    ck_assert_int_eq(proto_encode_submit(&seeds[3], 5, &sub), KILN_OK);
    ck_assert_int_eq(proto_encode_fetch(&seeds[4], 5, ids, 3, 10), KILN_OK);
    ck_assert_int_eq(proto_encode_reply_fetch(&seeds[5], t, 2), KILN_OK);
    static const int reply_kinds[] = {PROTO_STATUS, PROTO_FETCH, PROTO_SUBMIT, PROTO_HELLO};
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 100000; iter++) {
        const msgpack_sbuffer *seed = &seeds[iter % NSEEDS];
        size_t len = seed->size + rng_next(&s) % 8;
        uint8_t *b = malloc(len);
        for (size_t i = 0; i < len; i++)
            b[i] = i < seed->size ? (uint8_t) seed->data[i] : (uint8_t) rng_next(&s);
        int flips = 1 + (int) (rng_next(&s) % 4);
        for (int f = 0; f < flips; f++)
            b[rng_next(&s) % len] ^= (uint8_t) (1u << (rng_next(&s) % 8));
        if (rng_next(&s) % 4 == 0)
            len = rng_next(&s) % len; /* truncate too */
        struct proto_request req;
        struct proto_error err;
        int rc = proto_request_decode(&req, b, len, &err);
        ck_assert_int_ne(rc, KILN_EINTERNAL);
        if (rc == KILN_OK) {
            char d[512];
            int want = proto_request_describe(&req, d, sizeof(d));
            ck_assert_uint_eq(strlen(d), (size_t) want < sizeof(d) ? (size_t) want : sizeof(d) - 1);
            proto_request_fini(&req);
            ok++;
        } else {
            ck_assert_int_eq(rc, err.code);
            ck_assert_int_lt(strlen(err.message), PROTO_MESSAGE_MAX);
            failed++;
        }
        struct proto_reply rep;
        if (proto_reply_decode(&rep, reply_kinds[(iter / NSEEDS) % 4], b, len, &err) == KILN_OK)
            proto_reply_fini(&rep);
        else
            ck_assert(err.code == KILN_EPROTO || err.code == KILN_ENOMEM);
        free(b);
    }
    ck_assert_int_gt(failed, 0);
    ck_assert_int_gt(ok, 0);
    for (int i = 0; i < NSEEDS; i++)
        msgpack_sbuffer_destroy(&seeds[i]);
}
END_TEST

/* ---- names and addresses ----------------------------------------------- */

START_TEST(error_names)
{
    ck_assert_str_eq(kiln_err_name(KILN_OK), "OK");
    ck_assert_str_eq(kiln_err_name(KILN_ELIMIT), "LIMIT");
    ck_assert_str_eq(kiln_err_name(KILN_ECONNECT), "CONNECT");
    ck_assert_str_eq(kiln_err_name(-3), "UNKNOWN");
    ck_assert_str_eq(kiln_err_name(KILN_ERR_WIRE_COUNT), "UNKNOWN");
    for (int c = 0; c < KILN_ERR_WIRE_COUNT; c++)
        ck_assert_str_ne(kiln_err_name(c), "UNKNOWN");
    for (int c = KILN_ECONNECT; c < KILN_ERR_CLIENT_END; c++)
        ck_assert_str_ne(kiln_err_name(c), "UNKNOWN");
    ck_assert_str_eq(proto_kind_name(PROTO_SUBMIT), "SUBMIT");
    ck_assert_str_eq(proto_kind_name(0), "UNKNOWN");
    ck_assert_str_eq(proto_kind_name(PROTO_KIND_END), "UNKNOWN");
}
END_TEST

START_TEST(default_addresses)
{
    char buf[256], want[256];
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    unsetenv("KILN_ADDRESS");
    ck_assert_int_eq(kiln_default_address(buf, sizeof(buf)), KILN_OK);
    ck_assert_str_eq(buf, "ipc:///run/user/4242/kiln/kilnd.sock");
    unsetenv("XDG_RUNTIME_DIR");
    ck_assert_int_eq(kiln_runtime_dir(buf, sizeof(buf)), KILN_OK);
    snprintf(want, sizeof(want), "/tmp/kiln-%u", (unsigned) getuid());
    ck_assert_str_eq(buf, want);
    setenv("KILN_ADDRESS", "tcp://127.0.0.1:7070", 1);
    ck_assert_int_eq(kiln_default_address(buf, sizeof(buf)), KILN_OK);
    ck_assert_str_eq(buf, "tcp://127.0.0.1:7070");
    ck_assert_int_eq(kiln_ipc_address(buf, sizeof(buf)), KILN_OK); /* ignores KILN_ADDRESS */
    ck_assert_ptr_nonnull(strstr(buf, "ipc://"));
    ck_assert_int_eq(kiln_default_address(buf, 8), KILN_ELIMIT);
    /* a runtime dir too long for a Unix socket path */
    char longdir[200];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    setenv("XDG_RUNTIME_DIR", longdir, 1);
    ck_assert_int_eq(kiln_ipc_address(buf, sizeof(buf)), KILN_ELIMIT);
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("KILN_ADDRESS");
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("protocol");
    TCase *t = tcase_create("codec");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, request_vectors);
    tcase_add_test(t, reply_vectors);
    tcase_add_test(t, roundtrip_hello);
    tcase_add_test(t, roundtrip_simple_and_release);
    tcase_add_test(t, roundtrip_replies);
    tcase_add_test(t, encoders_refuse_bad_arguments);
    tcase_add_test(t, limit_string);
    tcase_add_test(t, limit_container_items);
    tcase_add_test(t, limit_objects);
    tcase_add_test(t, limit_depth);
    tcase_add_test(t, limit_message_bytes);
    tcase_add_test(t, limit_name_token_var_ids);
    tcase_add_test(t, roundtrip_submit_fetch);
    tcase_add_test(t, submit_device);
    tcase_add_test(t, roundtrip_graph_replies);
    tcase_add_test(t, encoders_refuse_bad_graphs);
    tcase_add_test(t, limit_graph);
    tcase_add_test(t, limit_graph_encoders);
    tcase_add_test(t, submit_error_paths_free_everything);
    tcase_add_test(t, every_truncation_is_malformed);
    tcase_add_test(t, every_type_byte);
    tcase_add_test(t, mutation_storm);
    tcase_add_test(t, error_names);
    tcase_add_test(t, default_addresses);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
