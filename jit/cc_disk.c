/* cc_disk.c: the cc tier's on-disk entries (rules in cc.h).
 *
 * An entry is <cache_dir>/<hex key>.kcc in disk_cache.h's format with the
 * magic "KILNCC\x01\n" (the \x01 is the format version): the keys of
 * every kernel the object holds, then the object (an ELF shared object).
 * A batch's object is written once to a temporary file; its other names
 * are hard links to that file, each renamed in turn, and the last name
 * takes the temporary file itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_impl.h"
#include "kiln_err.h"
#include "sha256.h"

void cc_key_hex(const struct jit_cc_key *key, char *hex)
{
    _Static_assert(JIT_CC_KEY_BYTES == JIT_SHA256_BYTES, "a key is a SHA-256 digest");
    jit_sha256_hex(key->b, hex);
}

bool jit_cc_entry_path(const struct jit_cc *cc, const struct jit_cc_key *key, char *buf, size_t n)
{
    if (cc->cache_dir == NULL)
        return false;
    char hex[2 * JIT_CC_KEY_BYTES + 1];
    cc_key_hex(key, hex);
    int len = snprintf(buf, n, "%s/%s.kcc", cc->cache_dir, hex);
    return len > 0 && (size_t) len < n;
}

bool cc_temp_name(struct jit_cc *cc, const char *dir, const char *tag, char *buf, size_t n)
{
    pthread_mutex_lock(&cc->lock);
    uint64_t seq = ++cc->seq;
    pthread_mutex_unlock(&cc->lock);
    int len =
        snprintf(buf, n, "%s/.%s%ld-%llu", dir, tag, (long) getpid(), (unsigned long long) seq);
    return len > 0 && (size_t) len < n;
}

void cc_entry_fini(struct cc_entry *e)
{
    free(e->object);
    free(e->keys);
    memset(e, 0, sizeof *e);
}

static const struct jit_disk_format cc_format = {
    .magic = CC_MAGIC,
    .max_keys = CC_MAX_KEYS,
    .max_payload = CC_MAX_OBJECT,
};

int cc_disk_read(struct jit_cc *cc, const struct jit_cc_key *key, struct cc_entry *out,
                 bool *discarded)
{
    memset(out, 0, sizeof *out);
    *discarded = false;
    char path[4096];
    if (!jit_cc_entry_path(cc, key, path, sizeof path))
        return KILN_ENOTFOUND;
    struct jit_disk_entry e;
    int rc = jit_disk_read(&cc_format, path, key->b, &e, discarded);
    if (rc != KILN_OK)
        return rc;
    out->keys = e.keys;
    out->nkeys = e.nkeys;
    out->object = e.payload;
    out->object_bytes = e.payload_bytes;
    return KILN_OK;
}

/* Keeps the directory's entries under cc->cache_max bytes (disk_cache.h). */
static void trim(struct jit_cc *cc)
{
    uint64_t evicted = jit_disk_trim(cc->cache_dir, ".kcc", cc->cache_max);
    if (evicted > 0) {
        pthread_mutex_lock(&cc->lock);
        cc->st.disk_evicted += evicted;
        pthread_mutex_unlock(&cc->lock);
    }
}

int cc_disk_write(struct jit_cc *cc, const struct jit_cc_key *keys, uint32_t n,
                  const uint8_t *object, size_t object_bytes)
{
    if (cc->cache_dir == NULL)
        return KILN_OK;
    if (n == 0 || n > CC_MAX_KEYS || object_bytes == 0 || object_bytes > CC_MAX_OBJECT)
        return KILN_ELIMIT;
    char tmp[4096], tmp2[4200], path[4096];
    if (!cc_temp_name(cc, cc->cache_dir, "w", tmp, sizeof tmp))
        return KILN_ELIMIT;
    int rc = jit_disk_write_temp(&cc_format, tmp, keys, n, object, object_bytes);
    if (rc != KILN_OK)
        return rc;
    /* Every name but the last gets a hard link to the temporary file,
     * renamed into place; the last takes the temporary file itself. */
    for (uint32_t k = 0; k < n && rc == KILN_OK; k++) {
        if (!jit_cc_entry_path(cc, &keys[k], path, sizeof path)) {
            rc = KILN_ELIMIT;
            break;
        }
        if (k + 1 == n) {
            if (rename(tmp, path) != 0)
                rc = KILN_EINTERNAL;
            else
                tmp[0] = '\0';
            break;
        }
        snprintf(tmp2, sizeof tmp2, "%s.%u", tmp, k);
        if (link(tmp, tmp2) != 0) {
            /* No hard links on this file system: a copy of its own. */
            int rc2 = cc_disk_write(cc, &keys[k], 1, object, object_bytes);
            if (rc2 != KILN_OK)
                rc = rc2;
            continue;
        }
        if (rename(tmp2, path) != 0) {
            unlink(tmp2);
            rc = KILN_EINTERNAL;
        }
    }
    if (tmp[0] != '\0')
        unlink(tmp);
    if (rc == KILN_OK)
        trim(cc);
    return rc;
}
