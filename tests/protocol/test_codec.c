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
        snprintf(out, n, "error %s %s", kiln_err_name(rc), err.field[0] ? err.field : "-");
    }
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
                             .mem_rss = 4 << 20, .draining = true};
    strcpy(s.server, "kilnd 9");
    s.errors[KILN_EMALFORMED] = 7;
    s.errors[KILN_ESESSION] = 1;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_reply_status(&sb, &s), KILN_OK);
    ck_assert_int_eq(proto_reply_decode(&rep, PROTO_STATUS, sb.data, sb.size, &err), KILN_OK);
    ck_assert_mem_eq(&rep.u.status, &s, sizeof(s));
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);

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
    struct proto_hello h = {.proto_min = 1, .proto_max = 2};
    strcpy(h.client, "storm");
    uint64_t ids[] = {1, 2, 3};
    msgpack_sbuffer seeds[3];
    for (int i = 0; i < 3; i++)
        msgpack_sbuffer_init(&seeds[i]);
    proto_encode_hello(&seeds[0], &h);
    proto_encode_release(&seeds[1], 5, ids, 3);
    proto_encode_simple(&seeds[2], PROTO_PING, 0);
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 100000; iter++) {
        const msgpack_sbuffer *seed = &seeds[iter % 3];
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
            proto_request_describe(&req, d, sizeof(d));
            proto_request_fini(&req);
            ok++;
        } else {
            ck_assert_int_eq(rc, err.code);
            ck_assert_int_lt(strlen(err.message), PROTO_MESSAGE_MAX);
            failed++;
        }
        struct proto_reply rep;
        if (proto_reply_decode(&rep, PROTO_STATUS, b, len, &err) == KILN_OK)
            proto_reply_fini(&rep);
        free(b);
    }
    ck_assert_int_gt(failed, 0);
    for (int i = 0; i < 3; i++)
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
