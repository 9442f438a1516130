/* scan.c: the structural pass over a raw msgpack message.
 *
 * msgpack-c trusts length prefixes: a 5-byte array header makes it reserve
 * room for four billion objects, and it reports success when bytes follow
 * a complete object. This walker runs first, allocates nothing, and proves
 * that the bytes hold exactly one object within every limit of
 * kiln_limits.h. Afterwards msgpack-c's allocations are bounded by
 * KILN_LIMIT_OBJECTS objects of a few dozen bytes each.
 *
 * The walk is iterative with an explicit stack of "objects still to read"
 * per nesting level, so hostile nesting cannot exhaust the C stack. */
#include <string.h>

#include "proto.h"

/* Big-endian reads of 1, 2, 4 or 8 bytes; the caller checked the bounds. */
static uint64_t be_read(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

struct scan {
    const uint8_t *p;
    size_t len;
    size_t pos;
    struct proto_error *err;
};

static int truncated(struct scan *s, size_t at)
{
    return proto_error_set(s->err, KILN_EMALFORMED, "",
                           "message truncated: an object at byte %zu runs past the end (%zu bytes)",
                           at, s->len);
}

/* Consume `n` payload bytes. */
static int skip(struct scan *s, size_t at, uint64_t n)
{
    if (n > s->len - s->pos)
        return truncated(s, at);
    s->pos += (size_t) n;
    return KILN_OK;
}

/* Read an n-byte big-endian length that follows the type byte. */
static int read_len(struct scan *s, size_t at, unsigned n, uint64_t *out)
{
    if (n > s->len - s->pos)
        return truncated(s, at);
    *out = be_read(s->p + s->pos, n);
    s->pos += n;
    return KILN_OK;
}

/* Read one object header at s->pos. For containers, *children is set to
 * the number of objects they hold (two per map pair); otherwise 0. */
static int scan_header(struct scan *s, uint64_t *children)
{
    size_t at = s->pos;
    uint8_t b = s->p[s->pos++];
    uint64_t n = 0;
    int rc = KILN_OK;
    bool is_map = false, is_container = false;

    *children = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return KILN_OK; /* fixints, nil, booleans */
    if (b >= 0x80 && b <= 0x8f) {
        n = b & 0x0f;
        is_map = is_container = true;
    } else if (b >= 0x90 && b <= 0x9f) {
        n = b & 0x0f;
        is_container = true;
    } else if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1f;
        goto str;
    } else {
        switch (b) {
        case 0xc4: case 0xc5: case 0xc6: /* bin 8/16/32 */
            rc = read_len(s, at, 1u << (b - 0xc4), &n);
            return rc != KILN_OK ? rc : skip(s, at, n);
        case 0xca: return skip(s, at, 4); /* float32 */
        case 0xcb: return skip(s, at, 8); /* float64 */
        case 0xcc: case 0xcd: case 0xce: case 0xcf: /* uint 8..64 */
            return skip(s, at, 1u << (b - 0xcc));
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: /* int 8..64 */
            return skip(s, at, 1u << (b - 0xd0));
        case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
            rc = read_len(s, at, 1u << (b - 0xd9), &n);
            if (rc != KILN_OK)
                return rc;
            goto str;
        case 0xdc: case 0xdd: /* array 16/32 */
            rc = read_len(s, at, b == 0xdc ? 2 : 4, &n);
            is_container = true;
            break;
        case 0xde: case 0xdf: /* map 16/32 */
            rc = read_len(s, at, b == 0xde ? 2 : 4, &n);
            is_map = is_container = true;
            break;
        case 0xc1:
            return proto_error_set(s->err, KILN_EMALFORMED, "",
                                   "byte 0xc1 at byte %zu is never used in msgpack", at);
        default: /* 0xc7-0xc9, 0xd4-0xd8: ext types */
            return proto_error_set(s->err, KILN_ETYPE, "",
                                   "msgpack ext type 0x%02x at byte %zu is not used by the protocol",
                                   b, at);
        }
    }
    if (rc != KILN_OK)
        return rc;
    if (is_container) {
        if (n > KILN_LIMIT_CONTAINER_ITEMS)
            return proto_error_set(s->err, KILN_ELIMIT, "",
                                   "%s of %llu items at byte %zu exceeds the container_items "
                                   "limit %u",
                                   is_map ? "map" : "array", (unsigned long long) n, at,
                                   KILN_LIMIT_CONTAINER_ITEMS);
        *children = is_map ? 2 * n : n;
        /* Every object takes at least one byte: a count larger than the
         * bytes left is a lie, caught before anyone reserves room for it. */
        if (*children > s->len - s->pos)
            return truncated(s, at);
        return KILN_OK;
    }
str:
    if (n > KILN_LIMIT_STRING)
        return proto_error_set(s->err, KILN_ELIMIT, "",
                               "string of %llu bytes at byte %zu exceeds the string limit %u",
                               (unsigned long long) n, at, KILN_LIMIT_STRING);
    return skip(s, at, n);
}

int proto_scan(const void *buf, size_t len, struct proto_error *err)
{
    struct scan s = {.p = buf, .len = len, .pos = 0, .err = err};
    /* todo[d]: objects still to read at depth d+1 (the top level is depth 1). */
    uint64_t todo[KILN_LIMIT_DEPTH];
    int top = 0;
    uint64_t objects = 0;

    if (buf == NULL || len == 0)
        return proto_error_set(err, KILN_EMALFORMED, "", "empty message");
    if (len > KILN_LIMIT_MESSAGE_BYTES)
        return proto_error_set(err, KILN_ELIMIT, "",
                               "message of %zu bytes exceeds the message_bytes limit %u", len,
                               KILN_LIMIT_MESSAGE_BYTES);
    todo[0] = 1;
    while (top >= 0) {
        if (todo[top] == 0) {
            top--;
            continue;
        }
        if (s.pos >= s.len)
            return truncated(&s, s.pos);
        todo[top]--;
        if (++objects > KILN_LIMIT_OBJECTS)
            return proto_error_set(err, KILN_ELIMIT, "",
                                   "message holds more than the objects limit of %u objects "
                                   "(object %llu starts at byte %zu)",
                                   KILN_LIMIT_OBJECTS, (unsigned long long) objects, s.pos);
        size_t at = s.pos;
        uint64_t children;
        int rc = scan_header(&s, &children);
        if (rc != KILN_OK)
            return rc;
        if (children > 0) {
            /* The children sit at depth top+2. */
            if (top + 2 > KILN_LIMIT_DEPTH)
                return proto_error_set(err, KILN_ELIMIT, "",
                                       "container at byte %zu nests deeper than the depth "
                                       "limit %d",
                                       at, KILN_LIMIT_DEPTH);
            todo[++top] = children;
        }
    }
    if (s.pos != s.len)
        return proto_error_set(err, KILN_EMALFORMED, "",
                               "%zu trailing bytes after the message (which ends at byte %zu)",
                               s.len - s.pos, s.pos);
    return KILN_OK;
}
