/* proto_impl.h: helpers shared by the decoders in codec.c and reply.c.
 * Internal to protocol/. */
#ifndef KILN_PROTO_IMPL_H
#define KILN_PROTO_IMPL_H

#include "proto.h"

/* Scan, then unpack `buf` into `up` (initialised here). On failure `up` is
 * already destroyed. */
int proto_unpack(msgpack_unpacked *up, const void *buf, size_t len, struct proto_error *err);

/* Body maps: every key a string, each at most once, each in `allowed`
 * (up to 32 names) unless `allow_unknown`. `path` prefixes error fields. */
int proto_check_keys(const msgpack_object *map, const char *const *allowed, size_t nallowed,
                     bool allow_unknown, const char *path, struct proto_error *err);

/* The value of `key` in a map, or NULL. */
const msgpack_object *proto_map_get(const msgpack_object *map, const char *key);

/* Typed field readers. `o` may be NULL (then MISSING). `field` names the
 * field in errors. `code_bad` is the code for type errors: KILN_ETYPE for
 * requests, KILN_EPROTO for replies. */
int proto_get_uint(const msgpack_object *o, const char *field, uint64_t max, uint64_t *out,
               int code_bad, struct proto_error *err);
int proto_get_int(const msgpack_object *o, const char *field, int64_t *out, int code_bad,
              struct proto_error *err);
int proto_get_bool(const msgpack_object *o, const char *field, bool *out, int code_bad,
               struct proto_error *err);
/* Copy a string of at most `max` bytes into dst (size max+1), NUL-terminated.
 * Embedded NUL bytes are refused. */
int proto_get_str(const msgpack_object *o, const char *field, size_t max, char *dst, int code_bad,
              struct proto_error *err);
/* Like proto_get_str, but a longer string is truncated instead of refused
 * (for free-text fields of replies, such as error messages). */
int proto_get_str_trunc(const msgpack_object *o, const char *field, char *dst, size_t size,
                    int code_bad, struct proto_error *err);

/* Append a msgpack string key. Returns 0 or -1 like msgpack_pack_*. */
int proto_pack_key(msgpack_packer *pk, const char *key);

/* Every PROTO_NODE_* bit. */
#define PROTO_NODE_ALL ((uint32_t) (PROTO_NODE_GROUPS << 1) - 1u)

/* Bytes of one element of wire dtype 1..7 (PROTOCOL.md §8), or 0 for any
 * other number. The protocol cannot use kernels/dtype.h (the arrows point
 * the other way); the numbers are stable, so the table is too. */
size_t proto_dtype_size(uint32_t dtype);

/* The product of `rank` dims, each 0..KILN_LIMIT_DIM, without overflow:
 * a product above KILN_LIMIT_ELEMENTS is reported as UINT64_MAX. */
uint64_t proto_elements(const int64_t *shape, uint32_t rank);

/* SUBMIT and FETCH bodies (graph.c), called by proto_request_decode after
 * the session check. What they allocate is stored in `req` at once, so
 * proto_request_fini frees it on failure as on success. */
int proto_decode_submit(struct proto_request *req, const msgpack_object *body,
                        struct proto_error *err);
int proto_decode_fetch(struct proto_request *req, const msgpack_object *body,
                       struct proto_error *err);

/* A growing description for proto_request_describe: snprintf semantics,
 * `len` counts what was wanted even past `n`. */
struct proto_out {
    char *buf;
    size_t n;
    int len;
};

void proto_out_add(struct proto_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `len` bytes in double quotes, with \" \\ and \xNN escapes (PROTOCOL.md §7). */
void proto_out_quoted(struct proto_out *o, const char *s, size_t len);
/* The SUBMIT and FETCH parts of a description (graph.c). */
void proto_describe_submit(struct proto_out *o, const struct proto_submit *s);
void proto_describe_fetch(struct proto_out *o, const struct proto_fetch *f);

#endif
