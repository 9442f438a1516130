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

#endif
