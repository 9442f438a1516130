/* auth.c: users and tokens (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "sha256.h"

void auth_init_open(struct auth *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->anonymous_user.name, sizeof a->anonymous_user.name, "anonymous");
    a->anonymous_user.weight = 1;
}

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One quota field: an integer, or for sizes a string with a K/M/G suffix;
 * 0 means no limit. */
static int quota_value(json_t *v, const char *at, const char *key, bool size, uint64_t max,
                       uint64_t *out, char *why, size_t n)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        (uint64_t) json_integer_value(v) <= max) {
        *out = (uint64_t) json_integer_value(v);
        return 0;
    }
    if (size && json_is_string(v) && cfg_parse_bytes(json_string_value(v), out) && *out <= max)
        return 0;
    return fail(why, n, "%s.%s must be %s in 0..%" PRIu64 " (0: no limit)", at, key,
                size ? "a size (bytes, or a string like \"512M\")" : "an integer", max);
}

/* A `quota` object at `at`, over the defaults already in *q. */
static int load_quota(json_t *o, const char *at, struct auth_quota *q, char *why, size_t n)
{
    if (!json_is_object(o))
        return fail(why, n, "%s must be an object", at);
    static const struct {
        const char *key;
        bool size;
        uint64_t max;
        size_t off;
    } fields[] = {
        {"host_memory", true, UINT64_C(1) << 50, offsetof(struct auth_quota, host_memory)},
        {"device_memory", true, UINT64_C(1) << 50, offsetof(struct auth_quota, device_memory)},
        {"queued_steps", false, AUTH_MAX_QUEUED_STEPS, offsetof(struct auth_quota, queued_steps)},
        {"kernels", false, AUTH_MAX_KERNELS, offsetof(struct auth_quota, kernels)},
        {"compile_ms_per_minute", false, AUTH_MAX_COMPILE_MS,
         offsetof(struct auth_quota, compile_ms_per_minute)},
    };
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        size_t k = 0;
        while (k < sizeof fields / sizeof fields[0] && strcmp(fields[k].key, key) != 0)
            k++;
        if (k == sizeof fields / sizeof fields[0])
            return fail(why, n,
                        "%s: unknown field \"%s\" (known: host_memory, device_memory, "
                        "queued_steps, kernels, compile_ms_per_minute)",
                        at, key);
        uint64_t *dst = (uint64_t *) ((char *) q + fields[k].off);
        if (quota_value(v, at, key, fields[k].size, fields[k].max, dst, why, n) < 0)
            return -1;
    }
    return 0;
}

static int load_user(json_t *u, size_t i, struct auth_user *out, const struct auth *a, char *why,
                     size_t n)
{
    char at[32];
    snprintf(at, sizeof at, "users[%zu]", i);
    if (!json_is_object(u))
        return fail(why, n, "%s must be an object", at);
    const char *key;
    json_t *v;
    json_object_foreach(u, key, v) {
        if (strcmp(key, "name") != 0 && strcmp(key, "token_sha256") != 0 &&
            strcmp(key, "weight") != 0 && strcmp(key, "quota") != 0)
            return fail(why, n, "%s: unknown field \"%s\"", at, key);
    }
    json_t *name = json_object_get(u, "name"), *tok = json_object_get(u, "token_sha256");
    json_t *w = json_object_get(u, "weight");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) > KILN_LIMIT_NAME ||
        strlen(json_string_value(name)) != json_string_length(name))
        return fail(why, n, "%s.name must be a string of 1..128 bytes", at);
    snprintf(out->name, sizeof out->name, "%s", json_string_value(name));
    for (size_t k = 0; k < i; k++)
        if (strcmp(a->users[k].name, out->name) == 0)
            return fail(why, n, "%s.name: \"%s\" is given twice", at, out->name);
    const char *hex = json_is_string(tok) ? json_string_value(tok) : NULL;
    if (hex == NULL || strlen(hex) != 64)
        return fail(why, n, "%s.token_sha256 must be 64 hex digits (kilnd --hash-token prints "
                            "them)", at);
    for (int k = 0; k < 32; k++) {
        int hi = hexval(hex[2 * k]), lo = hexval(hex[2 * k + 1]);
        if (hi < 0 || lo < 0)
            return fail(why, n, "%s.token_sha256 must be 64 hex digits", at);
        out->token_sha256[k] = (uint8_t) (hi << 4 | lo);
    }
    for (size_t k = 0; k < i; k++)
        if (memcmp(a->users[k].token_sha256, out->token_sha256, 32) == 0)
            return fail(why, n, "%s.token_sha256: the same token as user \"%s\"", at,
                        a->users[k].name);
    out->weight = 1;
    if (w != NULL) {
        if (!json_is_integer(w) || json_integer_value(w) < 1 ||
            json_integer_value(w) > AUTH_MAX_WEIGHT)
            return fail(why, n, "%s.weight must be an integer in 1..1000", at);
        out->weight = (uint32_t) json_integer_value(w);
    }
    out->quota = a->anonymous_user.quota; /* the file's default */
    json_t *q = json_object_get(u, "quota");
    if (q != NULL) {
        char qat[48];
        snprintf(qat, sizeof qat, "%s.quota", at);
        if (load_quota(q, qat, &out->quota, why, n) < 0)
            return -1;
    }
    return 0;
}

int auth_load(const char *path, struct auth *a, char *why, size_t n)
{
    auth_init_open(a);
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(why, n, "cannot read %s: %s", path, strerror(errno));
    if (st.st_size > AUTH_FILE_BYTES)
        return fail(why, n, "%s is larger than 1 MiB", path);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(why, n, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -1;
    }
    int rc = -1;
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
        fail(why, n, "%s: the top level must be an object", path);
        goto out;
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "users") != 0 && strcmp(key, "anonymous") != 0 &&
            strcmp(key, "quota") != 0) {
            fail(why, n, "unknown field \"%s\"", key);
            goto out;
        }
    }
    a->anonymous = AUTH_ANON_LOCAL;
    json_t *anon = json_object_get(root, "anonymous");
    if (anon != NULL) {
        const char *s = json_is_string(anon) ? json_string_value(anon) : "";
        if (strcmp(s, "none") == 0)
            a->anonymous = AUTH_ANON_NONE;
        else if (strcmp(s, "local") == 0)
            a->anonymous = AUTH_ANON_LOCAL;
        else if (strcmp(s, "all") == 0)
            a->anonymous = AUTH_ANON_ALL;
        else {
            fail(why, n, "anonymous must be \"none\", \"local\" or \"all\"");
            goto out;
        }
    }
    json_t *dq = json_object_get(root, "quota");
    if (dq != NULL && load_quota(dq, "quota", &a->anonymous_user.quota, why, n) < 0)
        goto out;
    json_t *users = json_object_get(root, "users");
    if (users != NULL && !json_is_array(users)) {
        fail(why, n, "users must be an array");
        goto out;
    }
    size_t nu = users ? json_array_size(users) : 0;
    if (nu > AUTH_MAX_USERS) {
        fail(why, n, "more than 4096 users");
        goto out;
    }
    if (nu > 0 && (a->users = calloc(nu, sizeof *a->users)) == NULL) {
        fail(why, n, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nu; i++) {
        if (load_user(json_array_get(users, i), i, &a->users[i], a, why, n) < 0)
            goto out;
        a->nusers = (uint32_t) i + 1;
    }
    a->configured = true;
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        auth_fini(a);
    return rc;
}

void auth_fini(struct auth *a)
{
    free(a->users);
    auth_init_open(a);
}

void auth_hash_hex(const char *token, size_t len, char hex[65])
{
    uint8_t d[JIT_SHA256_BYTES];
    jit_sha256(token, len, d);
    jit_sha256_hex(d, hex);
}

const struct auth_user *auth_check(const struct auth *a, bool allow_anonymous_remote,
                                   const char *token, size_t token_len, bool local,
                                   const char **why)
{
    bool has_token = token != NULL && token_len > 0;
    if (!a->configured) {
        /* No users: tokens mean nothing; anonymous clients are allowed
         * locally, remotely only when the operator said so at start. */
        if (local || allow_anonymous_remote)
            return &a->anonymous_user;
        *why = "this daemon has no users configured and does not allow anonymous remote clients";
        return NULL;
    }
    if (!has_token) {
        if (a->anonymous == AUTH_ANON_ALL || (a->anonymous == AUTH_ANON_LOCAL && local) ||
            (allow_anonymous_remote && a->anonymous != AUTH_ANON_NONE))
            return &a->anonymous_user;
        *why = "this daemon needs a token (HELLO's `token`)";
        return NULL;
    }
    uint8_t d[32];
    jit_sha256(token, token_len, d);
    const struct auth_user *found = NULL;
    for (uint32_t i = 0; i < a->nusers; i++) {
        uint8_t diff = 0;
        for (int k = 0; k < 32; k++)
            diff |= (uint8_t) (d[k] ^ a->users[i].token_sha256[k]);
        if (diff == 0)
            found = &a->users[i];
    }
    if (found == NULL)
        *why = "the token names no user of this daemon";
    return found;
}
