/* cuda_disk.c: the PTX cache (cuda_disk.h).
 *
 * One table maps keys to records. A record is either in flight (its first
 * caller is reading the disk or running NVRTC, without the mutex; later
 * callers wait on the condition variable) or done. A done record that
 * succeeded stays in the table and on the LRU list until evicted; a
 * failed one leaves the table at once, so the next caller tries again, and
 * is freed by the last of its waiters. Eviction passes over records that
 * still have waiters: they hold a pointer to it.
 */
#include "cuda_disk.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen_cuda.h"
#include "disk_cache.h"
#include "kiln_err.h"
#include "lru.h"
#include "sha256.h"

#define PTX_FORMAT  "kiln-ptx-1"
#define MC_BUCKETS  512
#define ARCH_OPTION "--gpu-architecture="

static const struct jit_disk_format ptx_format = {
    .magic = "KILNPTX\x01",
    .max_keys = 1,
    .max_payload = JIT_CUDA_MODCACHE_MAX_PTX,
};

struct mc_ent {
    uint8_t key[JIT_SHA256_BYTES];
    struct mc_ent *hnext;     /* the table's chain */
    struct jit_lru_link link; /* the LRU list (done and kept) */
    bool done, kept;          /* kept: in the table and on the list */
    int rc;                   /* done: the result */
    char *ptx;                /* done and KILN_OK: NUL-terminated */
    size_t len;
    char *log; /* done and failed, for waiters */
    unsigned waiters;
};

struct jit_cuda_modcache {
    struct jit_cuda *cuda;
    char *dir; /* NULL: memory only */
    uint64_t max_disk;
    int nv_major, nv_minor;
    uint8_t ident[JIT_SHA256_BYTES]; /* options (but the architecture) and headers */
    pthread_mutex_t lock;            /* everything below */
    pthread_cond_t finished;         /* a record became done */
    struct mc_ent *map[MC_BUCKETS];
    struct jit_lru lru;
    size_t nkept, kept_bytes;
    uint64_t seq; /* temporary file names */
    struct jit_cuda_modcache_stats st;
};

static bool is_arch_option(const char *o)
{
    return strncmp(o, ARCH_OPTION, strlen(ARCH_OPTION)) == 0 || strncmp(o, "-arch=", 6) == 0 ||
           strcmp(o, "-arch") == 0 || strcmp(o, "--gpu-architecture") == 0;
}

int jit_cuda_modcache_new(struct jit_cuda *cuda, const char *dir, uint64_t max_disk_bytes,
                          struct jit_cuda_modcache **out)
{
    struct jit_cuda_modcache *m = calloc(1, sizeof *m);
    if (m == NULL)
        return KILN_ENOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return KILN_ENOMEM;
    }
    if (pthread_cond_init(&m->finished, NULL) != 0) {
        pthread_mutex_destroy(&m->lock);
        free(m);
        return KILN_ENOMEM;
    }
    m->cuda = cuda;
    m->max_disk = max_disk_bytes ? max_disk_bytes : JIT_CUDA_MODCACHE_DISK_DEFAULT;
    const struct jit_cuda_info *in = jit_cuda_info(cuda);
    m->nv_major = in->nvrtc_major;
    m->nv_minor = in->nvrtc_minor;
    struct jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_add(&s, PTX_FORMAT, sizeof PTX_FORMAT);
    int nopt, nhdr;
    const char *const *opts = jit_codegen_cuda_options(&nopt);
    for (int k = 0; k < nopt; k++)
        if (!is_arch_option(opts[k]))
            jit_sha256_add(&s, opts[k], strlen(opts[k]) + 1);
    const char *const *names;
    const char *const *hdrs = jit_codegen_cuda_headers(&nhdr, &names);
    for (int k = 0; k < nhdr; k++) {
        jit_sha256_add(&s, names[k], strlen(names[k]) + 1);
        jit_sha256_add(&s, hdrs[k], strlen(hdrs[k]) + 1);
    }
    jit_sha256_final(&s, m->ident);
    if (dir != NULL && *dir != '\0') {
        char why[512];
        if (jit_disk_dir_prepare(dir, why, sizeof why) == 0 && (m->dir = strdup(dir)) == NULL) {
            jit_cuda_modcache_free(m);
            return KILN_ENOMEM;
        }
    }
    *out = m;
    return KILN_OK;
}

static void ent_free(struct mc_ent *e)
{
    free(e->ptx);
    free(e->log);
    free(e);
}

void jit_cuda_modcache_free(struct jit_cuda_modcache *m)
{
    if (m == NULL)
        return;
    for (size_t b = 0; b < MC_BUCKETS; b++)
        for (struct mc_ent *e = m->map[b], *next; e != NULL; e = next) {
            next = e->hnext;
            ent_free(e);
        }
    pthread_cond_destroy(&m->finished);
    pthread_mutex_destroy(&m->lock);
    free(m->dir);
    free(m);
}

void jit_cuda_modcache_pretend_nvrtc(struct jit_cuda_modcache *m, int major, int minor)
{
    pthread_mutex_lock(&m->lock);
    m->nv_major = major;
    m->nv_minor = minor;
    pthread_mutex_unlock(&m->lock);
}

void jit_cuda_modcache_stats(struct jit_cuda_modcache *m, struct jit_cuda_modcache_stats *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->st;
    pthread_mutex_unlock(&m->lock);
}

/* ---- the table and the LRU list (m->lock held) ---------------------------- */

static struct mc_ent **slot(struct jit_cuda_modcache *m, const uint8_t *key)
{
    size_t h = ((size_t) key[0] | (size_t) key[1] << 8) % MC_BUCKETS;
    return &m->map[h];
}

static struct mc_ent *find(struct jit_cuda_modcache *m, const uint8_t *key)
{
    for (struct mc_ent *e = *slot(m, key); e != NULL; e = e->hnext)
        if (memcmp(e->key, key, sizeof e->key) == 0)
            return e;
    return NULL;
}

static void unmap(struct jit_cuda_modcache *m, struct mc_ent *e)
{
    for (struct mc_ent **q = slot(m, e->key); *q != NULL; q = &(*q)->hnext)
        if (*q == e) {
            *q = e->hnext;
            e->hnext = NULL;
            return;
        }
}

/* Drops the least recently used records (but `keep` and those with
 * waiters) until the memory bounds hold. */
static void lru_trim(struct jit_cuda_modcache *m, const struct mc_ent *keep)
{
    for (struct jit_lru_link *l = m->lru.oldest, *next; l != NULL; l = next) {
        if (m->nkept <= JIT_CUDA_MODCACHE_MEM_ENTRIES &&
            m->kept_bytes <= JIT_CUDA_MODCACHE_MEM_BYTES)
            return;
        next = l->newer;
        struct mc_ent *e = JIT_LRU_OWNER(l, struct mc_ent, link);
        if (e == keep || e->waiters > 0)
            continue;
        jit_lru_unlink(&m->lru, l);
        unmap(m, e);
        m->nkept--;
        m->kept_bytes -= e->len;
        ent_free(e);
    }
}

/* A malloc'd copy of a done record's PTX for a caller. */
static int copy_out(const struct mc_ent *e, char **ptx, size_t *len)
{
    char *c = malloc(e->len + 1);
    if (c == NULL)
        return KILN_ENOMEM;
    memcpy(c, e->ptx, e->len + 1);
    *ptx = c;
    *len = e->len;
    return KILN_OK;
}

/* ---- disk ------------------------------------------------------------------ */

static bool entry_path(const struct jit_cuda_modcache *m, const uint8_t *key, char *buf, size_t n)
{
    char hex[2 * JIT_SHA256_BYTES + 1];
    jit_sha256_hex(key, hex);
    int len = snprintf(buf, n, "%s/%s.kptx", m->dir, hex);
    return len > 0 && (size_t) len < n;
}

/* The PTX of key's entry (malloc'd, NUL-terminated). KILN_OK,
 * KILN_ENOTFOUND (*discarded: a bad entry was deleted) or KILN_ENOMEM. */
static int disk_get(struct jit_cuda_modcache *m, const uint8_t *key, char **ptx, size_t *len,
                    bool *discarded)
{
    char path[4096];
    *discarded = false;
    if (!entry_path(m, key, path, sizeof path))
        return KILN_ENOTFOUND;
    struct jit_disk_entry e;
    int rc = jit_disk_read(&ptx_format, path, key, &e, discarded);
    if (rc != KILN_OK)
        return rc;
    char *text = realloc(e.payload, e.payload_bytes + 1);
    if (text == NULL) {
        jit_disk_entry_fini(&e);
        return KILN_ENOMEM;
    }
    text[e.payload_bytes] = '\0';
    *ptx = text;
    *len = e.payload_bytes;
    e.payload = NULL;
    jit_disk_entry_fini(&e);
    return KILN_OK;
}

/* Writes key's entry (a temporary file renamed into place) and keeps the
 * directory under its cap; counts what happened. */
static void disk_put(struct jit_cuda_modcache *m, const uint8_t *key, const char *ptx, size_t len)
{
    char tmp[4200], path[4096];
    pthread_mutex_lock(&m->lock);
    uint64_t seq = ++m->seq;
    pthread_mutex_unlock(&m->lock);
    int n = snprintf(tmp, sizeof tmp, "%s/.p%ld-%llu", m->dir, (long) getpid(),
                     (unsigned long long) seq);
    int rc = KILN_ELIMIT;
    if (n > 0 && (size_t) n < sizeof tmp && entry_path(m, key, path, sizeof path))
        rc = jit_disk_write_temp(&ptx_format, tmp, key, 1, (const uint8_t *) ptx, len);
    if (rc == KILN_OK && rename(tmp, path) != 0) {
        unlink(tmp);
        rc = KILN_EINTERNAL;
    }
    uint64_t evicted = rc == KILN_OK ? jit_disk_trim(m->dir, ".kptx", m->max_disk) : 0;
    pthread_mutex_lock(&m->lock);
    if (rc == KILN_OK)
        m->st.disk_writes++;
    else
        m->st.disk_errors++;
    m->st.disk_evicted += evicted;
    pthread_mutex_unlock(&m->lock);
}

/* ---- lookups --------------------------------------------------------------- */

static bool arch_ok(const char *arch)
{
    size_t n = 0;
    for (; arch[n] != '\0'; n++) {
        char c = arch[n];
        if (n == JIT_CUDA_MODCACHE_ARCH_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                                 (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return n > 0;
}

static void make_key(struct jit_cuda_modcache *m, const char *src, const char *arch,
                     uint8_t key[JIT_SHA256_BYTES])
{
    pthread_mutex_lock(&m->lock);
    char ver[32];
    snprintf(ver, sizeof ver, "nvrtc %d.%d", m->nv_major, m->nv_minor);
    pthread_mutex_unlock(&m->lock);
    struct jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_add(&s, m->ident, sizeof m->ident);
    jit_sha256_add(&s, ver, strlen(ver) + 1);
    jit_sha256_add(&s, arch, strlen(arch) + 1);
    jit_sha256_add(&s, src, strlen(src));
    jit_sha256_final(&s, key);
}

/* NVRTC with codegen_cuda.h's options, the architecture set to `arch`. */
static int compile(struct jit_cuda_modcache *m, const char *src, const char *arch, char **ptx,
                   size_t *len, char **log)
{
    int nopt, nhdr;
    const char *const *base = jit_codegen_cuda_options(&nopt);
    const char *const *names;
    const char *const *hdrs = jit_codegen_cuda_headers(&nhdr, &names);
    const char **opts = malloc(((size_t) nopt + 1) * sizeof *opts);
    char archopt[sizeof ARCH_OPTION + JIT_CUDA_MODCACHE_ARCH_MAX];
    if (opts == NULL)
        return KILN_ENOMEM;
    snprintf(archopt, sizeof archopt, "%s%s", ARCH_OPTION, arch);
    int n = 0;
    opts[n++] = archopt;
    for (int k = 0; k < nopt; k++)
        if (!is_arch_option(base[k]))
            opts[n++] = base[k];
    int rc = jit_cuda_compile_ptx(m->cuda, src, "kiln_group.cu", nhdr, hdrs, names, n, opts, ptx,
                                  len, log);
    free(opts);
    return rc;
}

int jit_cuda_modcache_ptx(struct jit_cuda_modcache *m, const char *src, const char *arch,
                          char **ptx, size_t *len, bool *from_disk, bool *compiled, char **log)
{
    *ptx = NULL;
    *len = 0;
    if (from_disk != NULL)
        *from_disk = false;
    if (compiled != NULL)
        *compiled = false;
    if (log != NULL)
        *log = NULL;
    if (!jit_cuda_info(m->cuda)->nvrtc)
        return KILN_EUNSUPPORTED;
    if (!arch_ok(arch))
        return KILN_EVALUE;
    uint8_t key[JIT_SHA256_BYTES];
    make_key(m, src, arch, key);
    pthread_mutex_lock(&m->lock);
    struct mc_ent *e = find(m, key);
    int rc;
    if (e != NULL && e->done) {
        rc = copy_out(e, ptx, len);
        if (rc == KILN_OK) {
            m->st.mem_hits++;
            jit_lru_unlink(&m->lru, &e->link);
            jit_lru_push(&m->lru, &e->link);
        }
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    if (e != NULL) {
        /* In flight: wait for it and share its answer. */
        m->st.waits++;
        e->waiters++;
        while (!e->done)
            pthread_cond_wait(&m->finished, &m->lock);
        e->waiters--;
        rc = e->rc;
        if (rc == KILN_OK)
            rc = copy_out(e, ptx, len);
        else if (log != NULL && e->log != NULL)
            *log = strdup(e->log);
        if (!e->kept && e->waiters == 0)
            ent_free(e);
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    e = calloc(1, sizeof *e);
    if (e == NULL) {
        pthread_mutex_unlock(&m->lock);
        return KILN_ENOMEM;
    }
    memcpy(e->key, key, sizeof key);
    struct mc_ent **q = slot(m, key);
    e->hnext = *q;
    *q = e;
    pthread_mutex_unlock(&m->lock);

    char *text = NULL, *nvlog = NULL;
    size_t n = 0;
    bool disk = false, discarded = false, ran = false;
    uint64_t ns = 0;
    rc = KILN_ENOTFOUND;
    if (m->dir != NULL)
        rc = disk_get(m, key, &text, &n, &discarded);
    disk = rc == KILN_OK;
    if (rc == KILN_ENOTFOUND) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = compile(m, src, arch, &text, &n, &nvlog);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns = (uint64_t) (t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t) t1.tv_nsec -
             (uint64_t) t0.tv_nsec;
        ran = true;
        if (rc == KILN_OK && m->dir != NULL && n > 0 && n <= JIT_CUDA_MODCACHE_MAX_PTX)
            disk_put(m, key, text, n);
    }
    if (from_disk != NULL)
        *from_disk = disk;
    if (compiled != NULL)
        *compiled = ran;
    int result = rc;

    pthread_mutex_lock(&m->lock);
    m->st.disk_hits += disk;
    m->st.disk_discarded += discarded;
    m->st.compiles += ran;
    m->st.compile_ns += ns;
    e->done = true;
    e->rc = result;
    if (result == KILN_OK) {
        e->ptx = text;
        e->len = n;
        rc = copy_out(e, ptx, len);
        if (n <= JIT_CUDA_MODCACHE_MAX_PTX) {
            e->kept = true;
            jit_lru_push(&m->lru, &e->link);
            m->nkept++;
            m->kept_bytes += n;
            lru_trim(m, e);
        } else {
            unmap(m, e);
        }
    } else {
        unmap(m, e);
        if (e->waiters > 0 && nvlog != NULL)
            e->log = strdup(nvlog);
    }
    pthread_cond_broadcast(&m->finished);
    if (!e->kept && e->waiters == 0)
        ent_free(e);
    pthread_mutex_unlock(&m->lock);
    if (result != KILN_OK && log != NULL)
        *log = nvlog;
    else
        free(nvlog);
    return rc;
}
