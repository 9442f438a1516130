/* disk_cache.c: the entry format, atomic writes, the size cap and the
 * directory checks of the on-disk caches (disk_cache.h). Moved here from
 * cc_disk.c when the PTX cache (cuda_disk.c) came to need the same. */
#include "disk_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kiln_err.h"
#include "sha256.h"

void jit_disk_entry_fini(struct jit_disk_entry *e)
{
    free(e->payload);
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

/* The checksum of an entry: its first 24 bytes, keys and payload. */
static void entry_sum(const uint8_t *head24, const void *keys, size_t nkeys, const uint8_t *payload,
                      size_t payload_bytes, uint8_t out[32])
{
    struct jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_add(&s, head24, 24);
    jit_sha256_add(&s, keys, nkeys * JIT_DISK_KEY);
    jit_sha256_add(&s, payload, payload_bytes);
    jit_sha256_final(&s, out);
}

/* Reads or writes all n bytes, through EINTR and short transfers. */
static bool io_all(int fd, uint8_t *p, size_t n, bool writing)
{
    while (n > 0) {
        ssize_t r = writing ? write(fd, p, n) : read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t) r;
    }
    return true;
}

static bool read_all(int fd, uint8_t *p, size_t n)
{
    return io_all(fd, p, n, false);
}

bool jit_disk_write_all(int fd, const void *p, size_t n)
{
    return io_all(fd, (uint8_t *) (uintptr_t) p, n, true); /* write() only reads it */
}

/* Deletes a bad entry, unless what is at `path` now is no longer the file
 * that was read (a writer replaced it meanwhile). */
static void discard(const char *path, const struct stat *read_st)
{
    struct stat now;
    if (lstat(path, &now) == 0 && now.st_dev == read_st->st_dev && now.st_ino == read_st->st_ino)
        unlink(path);
}

int jit_disk_read(const struct jit_disk_format *f, const char *path,
                  const uint8_t key[JIT_DISK_KEY], struct jit_disk_entry *out, bool *discarded)
{
    memset(out, 0, sizeof *out);
    *discarded = false;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? KILN_ENOMEM : KILN_ENOTFOUND;
    struct stat st;
    uint8_t head[JIT_DISK_HEADER];
    uint8_t *buf = NULL;
    int rc = KILN_ENOTFOUND;
    bool bad = true;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        bad = false; /* not ours to judge or delete: ignore it */
        goto out;
    }
    if ((uint64_t) st.st_size < JIT_DISK_HEADER || !read_all(fd, head, sizeof head) ||
        memcmp(head, f->magic, 8) != 0)
        goto out;
    uint32_t nkeys = get32(head + 8);
    uint64_t payn = get64(head + 16);
    if (nkeys == 0 || nkeys > f->max_keys || get32(head + 12) != 0 || payn == 0 ||
        payn > f->max_payload ||
        (uint64_t) st.st_size != JIT_DISK_HEADER + (uint64_t) nkeys * JIT_DISK_KEY + payn)
        goto out;
    size_t rest = (size_t) st.st_size - JIT_DISK_HEADER;
    buf = malloc(rest);
    if (buf == NULL) {
        rc = KILN_ENOMEM;
        bad = false;
        goto out;
    }
    if (!read_all(fd, buf, rest))
        goto out;
    uint8_t sum[32];
    size_t keybytes = (size_t) nkeys * JIT_DISK_KEY;
    entry_sum(head, buf, nkeys, buf + keybytes, (size_t) payn, sum);
    if (memcmp(sum, head + 24, 32) != 0)
        goto out;
    bool listed = false;
    for (uint32_t k = 0; k < nkeys && !listed; k++)
        listed = memcmp(buf + (size_t) k * JIT_DISK_KEY, key, JIT_DISK_KEY) == 0;
    if (!listed)
        goto out;
    out->keys = malloc(keybytes);
    out->payload = malloc((size_t) payn);
    if (out->keys == NULL || out->payload == NULL) {
        jit_disk_entry_fini(out);
        rc = KILN_ENOMEM;
        bad = false;
        goto out;
    }
    memcpy(out->keys, buf, keybytes);
    memcpy(out->payload, buf + keybytes, (size_t) payn);
    out->nkeys = nkeys;
    out->payload_bytes = (size_t) payn;
    rc = KILN_OK;
    bad = false;
    futimens(fd, NULL);
out:
    if (bad) {
        discard(path, &st);
        *discarded = true;
    }
    free(buf);
    close(fd);
    return rc;
}

int jit_disk_write_temp(const struct jit_disk_format *f, const char *tmp, const void *keys,
                        uint32_t n, const uint8_t *payload, size_t payload_bytes)
{
    if (n == 0 || n > f->max_keys || payload_bytes == 0 || payload_bytes > f->max_payload)
        return KILN_ELIMIT;
    uint8_t head[JIT_DISK_HEADER];
    memcpy(head, f->magic, 8);
    put32(head + 8, n);
    put32(head + 12, 0);
    put64(head + 16, payload_bytes);
    entry_sum(head, keys, n, payload, payload_bytes, head + 24);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return KILN_EINTERNAL;
    bool ok = jit_disk_write_all(fd, head, sizeof head) &&
              jit_disk_write_all(fd, keys, (size_t) n * JIT_DISK_KEY) &&
              jit_disk_write_all(fd, payload, payload_bytes);
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(tmp);
        return KILN_EINTERNAL;
    }
    return KILN_OK;
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

uint64_t jit_disk_trim(const char *dir, const char *suffix, uint64_t max)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct trim_ent *v = NULL;
    size_t n = 0, cap = 0, sl = strlen(suffix);
    uint64_t total = 0, evicted = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct stat st;
        if (len <= sl || len >= sizeof v->name || strcmp(de->d_name + len - sl, suffix) != 0 ||
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
    if (total > max && n > 0) {
        qsort(v, n, sizeof *v, cmp_used);
        uint64_t goal = max / 10 * 9;
        for (size_t k = 0; k < n && total > goal; k++)
            if (unlinkat(dirfd(d), v[k].name, 0) == 0) {
                total -= v[k].bytes;
                evicted++;
            }
    }
    free(v);
    closedir(d);
    return evicted;
}

/* ---- the directory ----------------------------------------------------- */

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

int jit_disk_dir_prepare(const char *dir, char *why, size_t whylen)
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
