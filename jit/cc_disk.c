/* cc_disk.c: the cc tier's on-disk entries (format and rules in cc.h).
 *
 * Layout of <cache_dir>/<hex key>.kcc, integers little-endian:
 *     0  magic "KILNCC\x01\n" (the \x01 is the format version)
 *     8  u32 nkeys, u32 zero
 *    16  u64 object bytes
 *    24  SHA-256 of bytes [0, 24) ++ keys ++ object
 *    56  nkeys keys of 32 bytes: every kernel the object holds
 *        then the object (an ELF shared object)
 * The file must be exactly that long. Everything a reader uses is covered
 * by the checksum, so any flipped or missing byte is caught; a whole entry
 * stored under the wrong name (a foreign entry) is caught by the key list.
 *
 * Writers never modify a file in place: the entry is written to a unique
 * temporary file in the same directory and renamed over the entry's name
 * (atomic on POSIX file systems); a batch's other names are hard links to
 * that temporary file, each renamed in turn. No fsync: an entry torn by a
 * crash is a checksum failure, discarded and rebuilt like any other.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t) (v >> 8 * i);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> 8 * i);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The checksum of an entry: its first 24 bytes, keys and object. */
static void entry_sum(const uint8_t *head24, const uint8_t *keys, size_t nkeys,
                      const uint8_t *object, size_t object_bytes, uint8_t out[32])
{
    struct jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_add(&s, head24, 24);
    jit_sha256_add(&s, keys, nkeys * JIT_CC_KEY_BYTES);
    jit_sha256_add(&s, object, object_bytes);
    jit_sha256_final(&s, out);
}

static bool read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t) r;
    }
    return true;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t) r;
    }
    return true;
}

/* Deletes a bad entry, unless what is at `path` now is no longer the file
 * that was read (a writer replaced it meanwhile). */
static void discard(const char *path, const struct stat *read_st)
{
    struct stat now;
    if (lstat(path, &now) == 0 && now.st_dev == read_st->st_dev && now.st_ino == read_st->st_ino)
        unlink(path);
}

int cc_disk_read(struct jit_cc *cc, const struct jit_cc_key *key, struct cc_entry *out,
                 bool *discarded)
{
    memset(out, 0, sizeof *out);
    *discarded = false;
    char path[4096];
    if (!jit_cc_entry_path(cc, key, path, sizeof path))
        return KILN_ENOTFOUND;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? KILN_ENOMEM : KILN_ENOTFOUND;
    struct stat st;
    uint8_t head[CC_HEADER_FIXED];
    uint8_t *buf = NULL;
    int rc = KILN_ENOTFOUND;
    bool bad = true;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        bad = false; /* not ours to judge or delete: ignore it */
        goto out;
    }
    if ((uint64_t) st.st_size < CC_HEADER_FIXED || !read_all(fd, head, sizeof head) ||
        memcmp(head, CC_MAGIC, 8) != 0)
        goto out;
    uint32_t nkeys = get32(head + 8);
    uint64_t objn = get64(head + 16);
    if (nkeys == 0 || nkeys > CC_MAX_KEYS || get32(head + 12) != 0 || objn == 0 ||
        objn > CC_MAX_OBJECT ||
        (uint64_t) st.st_size != CC_HEADER_FIXED + (uint64_t) nkeys * JIT_CC_KEY_BYTES + objn)
        goto out;
    size_t rest = (size_t) st.st_size - CC_HEADER_FIXED;
    buf = malloc(rest);
    if (buf == NULL) {
        rc = KILN_ENOMEM;
        bad = false;
        goto out;
    }
    if (!read_all(fd, buf, rest))
        goto out;
    uint8_t sum[32];
    size_t keybytes = (size_t) nkeys * JIT_CC_KEY_BYTES;
    entry_sum(head, buf, nkeys, buf + keybytes, (size_t) objn, sum);
    if (memcmp(sum, head + 24, 32) != 0)
        goto out;
    bool listed = false;
    for (uint32_t k = 0; k < nkeys && !listed; k++)
        listed = memcmp(buf + (size_t) k * JIT_CC_KEY_BYTES, key->b, JIT_CC_KEY_BYTES) == 0;
    if (!listed)
        goto out;
    out->keys = malloc(keybytes);
    out->object = malloc((size_t) objn);
    if (out->keys == NULL || out->object == NULL) {
        cc_entry_fini(out);
        rc = KILN_ENOMEM;
        bad = false;
        goto out;
    }
    memcpy(out->keys, buf, keybytes);
    memcpy(out->object, buf + keybytes, (size_t) objn);
    out->nkeys = nkeys;
    out->object_bytes = (size_t) objn;
    rc = KILN_OK;
    bad = false;
    futimens(fd, NULL); /* its modification time says when it was last used */
out:
    if (bad) {
        discard(path, &st);
        *discarded = true;
    }
    free(buf);
    close(fd);
    return rc;
}

static void trim(struct jit_cc *cc);

int cc_disk_write(struct jit_cc *cc, const struct jit_cc_key *keys, uint32_t n,
                  const uint8_t *object, size_t object_bytes)
{
    if (cc->cache_dir == NULL)
        return KILN_OK;
    if (n == 0 || n > CC_MAX_KEYS || object_bytes == 0 || object_bytes > CC_MAX_OBJECT)
        return KILN_ELIMIT;
    uint8_t head[CC_HEADER_FIXED];
    memcpy(head, CC_MAGIC, 8);
    put32(head + 8, n);
    put32(head + 12, 0);
    put64(head + 16, object_bytes);
    entry_sum(head, (const uint8_t *) keys, n, object, object_bytes, head + 24);
    char tmp[4096], tmp2[4200], path[4096];
    if (!cc_temp_name(cc, cc->cache_dir, "w", tmp, sizeof tmp))
        return KILN_ELIMIT;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return KILN_EINTERNAL;
    bool ok = write_all(fd, head, sizeof head) &&
              write_all(fd, (const uint8_t *) keys, (size_t) n * JIT_CC_KEY_BYTES) &&
              write_all(fd, object, object_bytes);
    ok = close(fd) == 0 && ok;
    int rc = ok ? KILN_OK : KILN_EINTERNAL;
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

/* ---- size cap ---------------------------------------------------------- */

struct trim_ent {
    struct timespec used;
    uint64_t bytes;
    char name[80];
};

static int cmp_used(const void *a, const void *b)
{
    const struct trim_ent *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec)
        return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    return (x->used.tv_nsec > y->used.tv_nsec) - (x->used.tv_nsec < y->used.tv_nsec);
}

/* Keeps the directory's entries under cc->cache_max bytes: when they are
 * over it, the least recently used are deleted until they take 90 % of
 * it. Another daemon sharing the directory may be reading one of them:
 * it then finds no entry and compiles again, as after any other miss. */
static void trim(struct jit_cc *cc)
{
    DIR *d = opendir(cc->cache_dir);
    if (d == NULL)
        return;
    struct trim_ent *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct stat st;
        if (len < 5 || len >= sizeof v->name || strcmp(de->d_name + len - 4, ".kcc") != 0 ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 256;
            struct trim_ent *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL)
                break;
            v = nv, cap = nc;
        }
        v[n].used = st.st_mtim;
        v[n].bytes = (uint64_t) st.st_size;
        memcpy(v[n].name, de->d_name, len + 1);
        total += v[n].bytes;
        n++;
    }
    if (total > cc->cache_max && n > 0) {
        qsort(v, n, sizeof *v, cmp_used);
        uint64_t goal = cc->cache_max / 10 * 9, evicted = 0;
        for (size_t k = 0; k < n && total > goal; k++)
            if (unlinkat(dirfd(d), v[k].name, 0) == 0) {
                total -= v[k].bytes;
                evicted++;
            }
        pthread_mutex_lock(&cc->lock);
        cc->st.disk_evicted += evicted;
        pthread_mutex_unlock(&cc->lock);
    }
    free(v);
    closedir(d);
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p)
        return -1;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        p[i] = c;
    }
    return 0;
}

int cc_dir_prepare(const char *dir, char *why, size_t whylen)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT || make_dirs(dir) != 0 || lstat(dir, &st) != 0) {
            snprintf(why, whylen, "cannot create the cache directory %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "the cache directory %s is not a directory (symlinks are refused)",
                 dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, whylen, "the cache directory %s belongs to another user (uid %ld)", dir,
                 (long) st.st_uid);
        return -1;
    }
    if ((st.st_mode & 0777) != 0700 && chmod(dir, 0700) != 0) {
        snprintf(why, whylen, "cannot make the cache directory %s private (0700): %s", dir,
                 strerror(errno));
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(why, whylen, "cannot write to the cache directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}
