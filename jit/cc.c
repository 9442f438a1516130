/* cc.c: the system compiler tier (contract in cc.h; the disk format in
 * cc_disk.c).
 *
 * The compiler runs as a child process made with posix_spawn (no shell:
 * its arguments are ours, the source a file we wrote), with stdin from
 * /dev/null, its output and diagnostics to a memfd, no descriptors of
 * ours but those, default signal handling, and a small environment (PATH,
 * LC_ALL=C, TMPDIR) so that the key's "compiler and flags" are what decide
 * the object. It is polled, not waited for, so jit_cc_cancel can kill it
 * at shutdown. It inherits the nice value of the thread that builds
 * (promote.c lowers it).
 *
 * Every object is loaded from bytes in memory: written to a memfd and
 * dlopen()ed through /proc/self/fd (or, where that fails, a private
 * temporary file), RTLD_NOW | RTLD_LOCAL, so nothing it defines is seen
 * by anything else. Its `kiln__imports` table is filled before any of its
 * kernels is handed out.
 */
#include "cc.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cc_impl.h"
#include "codegen.h"
#include "kiln_err.h"
#include "sha256.h"

_Static_assert(sizeof(struct jit_cc_key) == JIT_CC_KEY_BYTES, "keys are packed bytes");

#define CC_FORMAT     "kiln-cc-1" /* bump when the TU layout or the import ABI changes */
#define CC_TIMEOUT_NS ((uint64_t) 600 * 1000000000u)

static const char *const cc_flags[] = {JIT_CC_FLAGS};
static const char *const cc_libs[] = {"-lm", "-lgcc"};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t n, const char *fmt, ...)
{
    if (why == NULL || n == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
}

/* ---- running the compiler ------------------------------------------------------ */

/* Runs argv[0] with argv, its stdout and stderr into `out` (a memfd).
 * Returns its exit status (0 success), -1 if it could not be run or was
 * killed (cancel, timeout). */
static int run_child(struct jit_cc *cc, char *const *argv, int out, const char *tmpdir)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -1;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, out, 2);
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    const char *path = getenv("PATH");
    char envpath[4096], envtmp[4200];
    snprintf(envpath, sizeof envpath, "PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
    snprintf(envtmp, sizeof envtmp, "TMPDIR=%s", tmpdir ? tmpdir : "/tmp");
    char *envp[] = {envpath, "LC_ALL=C", envtmp, NULL};
    /* Default signal dispositions (the daemon ignores SIGPIPE) and mask. */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, pipe;
    sigemptyset(&none);
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &pipe);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    uint64_t t0 = now_ns();
    struct timespec nap = {0, 200000}; /* 0.2 ms, growing to 10 ms */
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (w < 0 && errno != EINTR)
            return -1;
        if (__atomic_load_n(&cc->cancelled, __ATOMIC_ACQUIRE) || now_ns() - t0 > CC_TIMEOUT_NS) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        nanosleep(&nap, NULL);
        if (nap.tv_nsec < 10000000)
            nap.tv_nsec *= 2;
    }
}

/* A memfd for a child's output, or -1. */
static int output_fd(void)
{
    return memfd_create("kiln-cc-output", MFD_CLOEXEC);
}

/* The first `max` bytes a child wrote to the memfd, NUL-terminated
 * (malloc'd), or NULL. */
static char *output_text(int fd, size_t max)
{
    char *buf = malloc(max + 1);
    ssize_t n = buf ? pread(fd, buf, max, 0) : -1;
    if (n < 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* The whole of a small file, NUL-terminated (malloc'd), or NULL. */
static char *slurp(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        size_t n = (size_t) st.st_size < max ? (size_t) st.st_size : max;
        buf = malloc(n + 1);
        size_t got = 0;
        while (buf != NULL && got < n) {
            ssize_t r = read(fd, buf + got, n - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t) r;
        }
        if (buf != NULL) {
            buf[got] = '\0';
            if (len)
                *len = got;
        }
    }
    close(fd);
    return buf;
}

/* ---- finding the compiler and the machine -------------------------------------- */

static char *find_in_path(const char *name)
{
    char buf[PATH_MAX];
    if (strchr(name, '/') != NULL)
        return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t) (e - p) : strlen(p);
        if (n > 0 && snprintf(buf, sizeof buf, "%.*s/%s", (int) n, p, name) < (int) sizeof buf) {
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
                return realpath(buf, NULL);
        }
        p += n + (e != NULL);
    }
    return NULL;
}

/* The lines of the first processor in /proc/cpuinfo that say what code
 * -march=native makes (model and feature flags), into the hash. */
static void hash_cpu(struct jit_sha256 *s)
{
    static const char *const keys[] = {
        "vendor_id",   "cpu family", "model",           "model name",
        "stepping",    "flags",      "CPU implementer", "CPU architecture",
        "CPU variant", "CPU part",   "Features",        "isa",
        "uarch"};
    size_t len;
    char *text = slurp("/proc/cpuinfo", (size_t) 1 << 20, &len);
    if (text == NULL) {
        jit_sha256_add(s, "no cpuinfo", 10);
        return;
    }
    char *line = text;
    while (line && *line && *line != '\n') { /* the first block ends at a blank line */
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t) (end - line) : strlen(line);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t kl = strlen(keys[k]);
            if (n > kl && strncmp(line, keys[k], kl) == 0 &&
                (line[kl] == '\t' || line[kl] == ':')) {
                jit_sha256_add(s, line, n);
                jit_sha256_add(s, "\n", 1);
            }
        }
        line = end ? end + 1 : NULL;
    }
    free(text);
}

/* The directory compiles write their files in, made at the first build:
 * <cache_dir>/.work (shared by every daemon using the cache: temporary
 * names carry the pid) or else a private directory under $TMPDIR, removed
 * by jit_cc_free. A daemon that never compiles makes neither. */
static int ensure_work_dir(struct jit_cc *cc)
{
    pthread_mutex_lock(&cc->lock);
    int rc = KILN_OK;
    if (cc->work_dir == NULL) {
        char path[4200];
        struct stat st;
        if (cc->cache_dir != NULL) {
            snprintf(path, sizeof path, "%s/.work", cc->cache_dir);
            if ((mkdir(path, 0700) != 0 && errno != EEXIST) || lstat(path, &st) != 0 ||
                !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
                (cc->work_dir = strdup(path)) == NULL)
                rc = KILN_EINTERNAL;
        } else {
            const char *t = getenv("TMPDIR");
            snprintf(path, sizeof path, "%s/kiln-cc-XXXXXX", t && *t ? t : "/tmp");
            if (mkdtemp(path) == NULL || (cc->work_dir = strdup(path)) == NULL)
                rc = KILN_EINTERNAL;
            else
                cc->work_owned = true;
        }
    }
    pthread_mutex_unlock(&cc->lock);
    return rc;
}

int jit_cc_new(const struct jit_cc_opts *o, struct jit_cc **out, char *why, size_t whylen)
{
    *out = NULL;
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    const char *name = o && o->compiler ? o->compiler : "cc";
    struct jit_cc *cc = calloc(1, sizeof *cc);
    if (cc == NULL)
        return KILN_ENOMEM;
    pthread_mutex_init(&cc->lock, NULL);
    cc->path = find_in_path(name);
    if (cc->path == NULL) {
        say(why, whylen, "no C compiler \"%s\" found%s", name,
            strchr(name, '/') ? "" : " in $PATH");
        jit_cc_free(cc);
        return KILN_EUNSUPPORTED;
    }
    if (o && o->work_dir && *o->work_dir && (cc->work_dir = strdup(o->work_dir)) == NULL) {
        jit_cc_free(cc);
        return KILN_ENOMEM;
    }
    /* The version: the first line `cc --version` prints. */
    char *version = NULL;
    int fd = output_fd();
    if (fd >= 0) {
        char *argv[] = {cc->path, "--version", NULL};
        const char *t = getenv("TMPDIR");
        if (run_child(cc, argv, fd, t && *t ? t : "/tmp") == 0)
            version = output_text(fd, 4096);
        close(fd);
    }
    if (version == NULL || version[0] == '\0') {
        free(version);
        say(why, whylen, "the C compiler %s does not answer --version", cc->path);
        jit_cc_free(cc);
        return KILN_EUNSUPPORTED;
    }
    version[strcspn(version, "\r\n")] = '\0';
    size_t dl = strlen(cc->path) + strlen(version) + 4;
    cc->describe = malloc(dl);
    struct jit_buf pre;
    jit_buf_init(&pre);
    jit_codegen_prelude(&pre);
    if (cc->describe == NULL || pre.bad) {
        free(version);
        jit_buf_fini(&pre);
        jit_cc_free(cc);
        return KILN_ENOMEM;
    }
    cc->prelude = pre.data;
    cc->prelude_len = pre.len;
    snprintf(cc->describe, dl, "%s (%s)", cc->path, version);
    struct jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_add(&s, CC_FORMAT "\n", sizeof CC_FORMAT);
    jit_sha256_add(&s, cc->describe, strlen(cc->describe) + 1);
    for (size_t k = 0; k < sizeof cc_flags / sizeof cc_flags[0]; k++)
        jit_sha256_add(&s, cc_flags[k], strlen(cc_flags[k]) + 1);
    for (size_t k = 0; k < sizeof cc_libs / sizeof cc_libs[0]; k++)
        jit_sha256_add(&s, cc_libs[k], strlen(cc_libs[k]) + 1);
    hash_cpu(&s);
    jit_sha256_final(&s, cc->ident);
    free(version);
    /* Every source starts with the prelude (28 KB): hash it once. */
    jit_sha256_init(&cc->keyed_prelude);
    jit_sha256_add(&cc->keyed_prelude, cc->ident, sizeof cc->ident);
    jit_sha256_add(&cc->keyed_prelude, cc->prelude, cc->prelude_len);
    cc->cache_max = o && o->cache_max_bytes ? o->cache_max_bytes : JIT_CC_CACHE_MAX_DEFAULT;
    if (o && o->cache_dir && *o->cache_dir) {
        char reason[512];
        if (jit_disk_dir_prepare(o->cache_dir, reason, sizeof reason) != 0)
            say(why, whylen, "%s: compiled kernels are not kept on disk", reason);
        else if ((cc->cache_dir = strdup(o->cache_dir)) == NULL) {
            jit_cc_free(cc);
            return KILN_ENOMEM;
        }
    }
    *out = cc;
    return KILN_OK;
}

void jit_cc_cancel(struct jit_cc *cc)
{
    __atomic_store_n(&cc->cancelled, 1, __ATOMIC_RELEASE);
}

static void name_release(struct jit_cc *cc, int name);

/* Unloads and frees lib (cc->lock not held). */
static void lib_close(struct jit_cc *cc, struct jit_cc_lib *lib)
{
    if (lib->handle != NULL)
        dlclose(lib->handle);
    name_release(cc, lib->name);
    free(lib->keys);
    free(lib->mapped);
    free(lib);
}

void jit_cc_free(struct jit_cc *cc)
{
    if (cc == NULL)
        return;
    for (uint32_t b = 0; b < CC_MAP_BUCKETS; b++)
        for (struct cc_mapent *e = cc->map[b], *n; e != NULL; e = n) {
            n = e->next;
            free(e);
        }
    for (struct jit_cc_lib *l = cc->libs, *n; l != NULL; l = n) {
        n = l->next;
        lib_close(cc, l); /* a leak of the caller's: do not leave code mapped */
    }
    if (cc->work_owned)
        rmdir(cc->work_dir);
    pthread_mutex_destroy(&cc->lock);
    free(cc->names);
    free(cc->path);
    free(cc->describe);
    free(cc->cache_dir);
    free(cc->work_dir);
    free(cc->prelude);
    free(cc);
}

const char *jit_cc_compiler(const struct jit_cc *cc)
{
    return cc->describe;
}

const char *jit_cc_cache_dir(const struct jit_cc *cc)
{
    return cc->cache_dir;
}

void jit_cc_key(const struct jit_cc *cc, const char *source, struct jit_cc_key *key)
{
    struct jit_sha256 s;
    if (strncmp(source, cc->prelude, cc->prelude_len) == 0) {
        s = cc->keyed_prelude;
        source += cc->prelude_len;
    } else {
        jit_sha256_init(&s);
        jit_sha256_add(&s, cc->ident, sizeof cc->ident);
    }
    jit_sha256_add(&s, source, strlen(source));
    jit_sha256_final(&s, key->b);
}

void jit_cc_stats(struct jit_cc *cc, struct jit_cc_stats *out)
{
    pthread_mutex_lock(&cc->lock);
    *out = cc->st;
    pthread_mutex_unlock(&cc->lock);
}

/* ---- loaded objects and the key map (cc->lock held) ------------------------------- */

static uint32_t bucket(const struct jit_cc_key *k)
{
    return ((uint32_t) k->b[0] | (uint32_t) k->b[1] << 8) % CC_MAP_BUCKETS;
}

static struct cc_mapent *map_find(struct jit_cc *cc, const struct jit_cc_key *k)
{
    for (struct cc_mapent *e = cc->map[bucket(k)]; e != NULL; e = e->next)
        if (memcmp(e->key.b, k->b, JIT_CC_KEY_BYTES) == 0)
            return e;
    return NULL;
}

/* Makes the map point every key of lib not mapped yet at lib. */
static void map_add(struct jit_cc *cc, struct jit_cc_lib *lib)
{
    for (uint32_t i = 0; i < lib->nkeys; i++) {
        if (map_find(cc, &lib->keys[i]) != NULL)
            continue;
        struct cc_mapent *e = malloc(sizeof *e);
        if (e == NULL)
            continue; /* only a lost shortcut: the disk still has it */
        e->key = lib->keys[i];
        e->lib = lib;
        e->index = i;
        uint32_t b = bucket(&e->key);
        e->next = cc->map[b];
        cc->map[b] = e;
        lib->mapped[i] = 1;
    }
}

static void map_remove(struct jit_cc *cc, struct jit_cc_lib *lib)
{
    for (uint32_t i = 0; i < lib->nkeys; i++) {
        if (!lib->mapped[i])
            continue;
        for (struct cc_mapent **l = &cc->map[bucket(&lib->keys[i])]; *l != NULL; l = &(*l)->next)
            if ((*l)->lib == lib && (*l)->index == i) {
                struct cc_mapent *e = *l;
                *l = e->next;
                free(e);
                break;
            }
        lib->mapped[i] = 0;
    }
}

/* The entry points of `key` in lib; false if main is missing. */
static bool lib_kernel(struct jit_cc_lib *lib, const struct jit_cc_key *key,
                       struct jit_cc_kernel *k)
{
    char hex[2 * JIT_CC_KEY_BYTES + 1], name[64];
    cc_key_hex(key, hex);
    jit_kernel_fn *slots[3] = {&k->init, &k->main, &k->fini};
    static const char *const parts[3] = {"init", "main", "fini"};
    for (int p = 0; p < 3; p++) {
        snprintf(name, sizeof name, "kiln_%.32s_%s", hex, parts[p]);
        void *addr = dlsym(lib->handle, name);
        memcpy(slots[p], &addr, sizeof addr); /* POSIX: object and function pointers convert */
    }
    k->lib = lib;
    return k->main != NULL;
}

/* ---- loading an object --------------------------------------------------------- */

/* glibc knows loaded objects by the path they were opened as: a memfd
 * loaded as /proc/self/fd/N, then closed, leaves "/proc/self/fd/N" the
 * name of that object, and a later memfd given the same number would be
 * taken for it. So the numbers in use as names are kept, and a new memfd
 * whose number is taken is moved above them all. The descriptor itself is
 * closed once loaded: a daemon with many objects keeps no descriptors. */
static int name_reserve(struct jit_cc *cc, int fd)
{
    pthread_mutex_lock(&cc->lock);
    int top = -1;
    bool taken = false;
    for (size_t i = 0; i < cc->nnames; i++) {
        taken = taken || cc->names[i] == fd;
        top = cc->names[i] > top ? cc->names[i] : top;
    }
    if (taken) {
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, top + 1);
        close(fd);
        fd = moved;
    }
    if (fd >= 0 && cc->nnames == cc->capnames) {
        size_t cap = cc->capnames ? 2 * cc->capnames : 16;
        int *grown = realloc(cc->names, cap * sizeof *grown);
        if (grown == NULL) {
            close(fd);
            fd = -1;
        } else {
            cc->names = grown;
            cc->capnames = cap;
        }
    }
    if (fd >= 0)
        cc->names[cc->nnames++] = fd;
    pthread_mutex_unlock(&cc->lock);
    return fd;
}

static void name_release(struct jit_cc *cc, int name)
{
    if (name < 0)
        return;
    pthread_mutex_lock(&cc->lock);
    for (size_t i = 0; i < cc->nnames; i++)
        if (cc->names[i] == name) {
            cc->names[i] = cc->names[--cc->nnames];
            break;
        }
    pthread_mutex_unlock(&cc->lock);
}

/* dlopen()s the object bytes; *name gets the N it was loaded as (-1 when
 * it came from a temporary file instead). */
static void *dlopen_bytes(struct jit_cc *cc, const uint8_t *obj, size_t n, int *name, char *diag,
                          size_t dl)
{
    void *h = NULL;
    *name = -1;
    int fd = memfd_create("kiln-cc", MFD_CLOEXEC);
    if (fd >= 0 && (fd = name_reserve(cc, fd)) >= 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (jit_disk_write_all(fd, obj, n))
            h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        close(fd);
        if (h != NULL)
            *name = fd;
        else
            name_release(cc, fd);
    }
    if (h == NULL && ensure_work_dir(cc) == KILN_OK) {
        /* No memfd or no /proc: a private file with a name of its own,
         * gone once loaded. */
        char path[4200];
        if (cc_temp_name(cc, cc->work_dir, "l", path, sizeof path)) {
            int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0700);
            if (f >= 0) {
                bool ok = jit_disk_write_all(f, obj, n);
                ok = close(f) == 0 && ok;
                if (ok)
                    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                unlink(path);
            }
        }
    }
    if (h == NULL && diag != NULL && dl > 0) {
        const char *e = dlerror();
        snprintf(diag, dl, "dlopen: %s", e ? e : "failed");
    }
    return h;
}

/* Loads an object holding keys[0..nkeys) (taken over: freed on failure
 * too) and fills its import table. Returns the lib with no references,
 * not yet listed; NULL on failure. */
static struct jit_cc_lib *lib_load(struct jit_cc *cc, const uint8_t *obj, size_t n,
                                   struct jit_cc_key *keys, uint32_t nkeys, char *diag, size_t dl)
{
    struct jit_cc_lib *lib = calloc(1, sizeof *lib);
    uint8_t *mapped = calloc(nkeys ? nkeys : 1, 1);
    if (lib == NULL || mapped == NULL) {
        free(lib);
        free(mapped);
        free(keys);
        return NULL;
    }
    lib->keys = keys;
    lib->nkeys = nkeys;
    lib->mapped = mapped;
    lib->name = -1;
    lib->handle = dlopen_bytes(cc, obj, n, &lib->name, diag, dl);
    void *tab = lib->handle ? dlsym(lib->handle, "kiln__imports") : NULL;
    if (tab == NULL) {
        if (lib->handle != NULL && diag != NULL && dl > 0)
            snprintf(diag, dl, "the object has no kiln__imports table");
        lib_close(cc, lib);
        return NULL;
    }
    size_t ns;
    const struct jit_symbol *syms = jit_codegen_symbols(&ns);
    for (size_t k = 0; k < ns; k++)
        memcpy((char *) tab + k * sizeof(void *), &syms[k].addr, sizeof(void *));
    return lib;
}

/* ---- lookup and release ------------------------------------------------------- */

int jit_cc_lookup(struct jit_cc *cc, const struct jit_cc_key *key, struct jit_cc_kernel *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&cc->lock);
    struct cc_mapent *e = map_find(cc, key);
    if (e != NULL && lib_kernel(e->lib, key, out)) {
        e->lib->refs++;
        cc->st.mem_hits++;
        pthread_mutex_unlock(&cc->lock);
        return KILN_OK;
    }
    pthread_mutex_unlock(&cc->lock);
    memset(out, 0, sizeof *out);
    if (cc->cache_dir == NULL)
        return KILN_ENOTFOUND;
    struct cc_entry ent;
    bool discarded;
    int rc = cc_disk_read(cc, key, &ent, &discarded);
    if (rc != KILN_OK) {
        pthread_mutex_lock(&cc->lock);
        cc->st.disk_misses++;
        cc->st.disk_discarded += discarded;
        pthread_mutex_unlock(&cc->lock);
        return rc;
    }
    struct jit_cc_lib *lib =
        lib_load(cc, ent.object, ent.object_bytes, ent.keys, ent.nkeys, NULL, 0);
    ent.keys = NULL; /* lib_load took them */
    cc_entry_fini(&ent);
    pthread_mutex_lock(&cc->lock);
    if (lib == NULL || !lib_kernel(lib, key, out)) {
        cc->st.disk_misses++;
        pthread_mutex_unlock(&cc->lock);
        if (lib != NULL)
            lib_close(cc, lib);
        memset(out, 0, sizeof *out);
        return KILN_ENOTFOUND;
    }
    /* Another thread may have loaded the same kernel meanwhile: its
     * object stays the one the map names, ours serves this kernel. */
    lib->refs = 1;
    lib->next = cc->libs;
    cc->libs = lib;
    cc->st.libs_loaded++;
    cc->st.disk_hits++;
    map_add(cc, lib);
    pthread_mutex_unlock(&cc->lock);
    return KILN_OK;
}

void jit_cc_kernel_release(struct jit_cc *cc, struct jit_cc_kernel *k)
{
    struct jit_cc_lib *lib = k->lib;
    memset(k, 0, sizeof *k);
    if (lib == NULL)
        return;
    pthread_mutex_lock(&cc->lock);
    if (--lib->refs > 0) {
        pthread_mutex_unlock(&cc->lock);
        return;
    }
    map_remove(cc, lib);
    for (struct jit_cc_lib **l = &cc->libs; *l != NULL; l = &(*l)->next)
        if (*l == lib) {
            *l = lib->next;
            break;
        }
    cc->st.libs_loaded--;
    pthread_mutex_unlock(&cc->lock);
    lib_close(cc, lib);
}

/* ---- building ----------------------------------------------------------------- */

/* Appends kernel i's own text (its source past the prelude) with its
 * file-scope names renamed after its key. */
static void emit_kernel(struct jit_buf *tu, const char *body, const struct jit_cc_key *key)
{
    char hex[2 * JIT_CC_KEY_BYTES + 1];
    cc_key_hex(key, hex);
    static const char *const parts[3] = {"init", "main", "fini"};
    for (int p = 0; p < 3; p++)
        jit_buf_addf(tu,
                     "__attribute__((visibility(\"default\"))) void kiln_%.32s_%s(void **, const "
                     "int64_t *, int64_t, int64_t);\n#define k_%s kiln_%.32s_%s\n",
                     hex, parts[p], parts[p], hex, parts[p]);
    /* k_blk, a reduction's static helper (codegen.c gen_reduce). */
    jit_buf_addf(tu, "#define k_blk kiln_%.32s_blk\n", hex);
    /* kx<N> helpers and their KX<N> macros (codegen.c extra_reader). */
    uint64_t seen[4] = {0};
    for (const char *p = body; (p = strstr(p, "kx")) != NULL; p += 2) {
        if (p > body && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                         (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9')))
            continue;
        unsigned v = 0;
        const char *q = p + 2;
        while (*q >= '0' && *q <= '9' && v < 1000)
            v = v * 10 + (unsigned) (*q++ - '0');
        if (q == p + 2 || v >= 256 || seen[v / 64] >> (v % 64) & 1)
            continue;
        seen[v / 64] |= 1ull << (v % 64);
        jit_buf_addf(tu, "#define kx%u kiln_%.32s_kx%u\n", v, hex, v);
    }
    jit_buf_add(tu, body);
    jit_buf_add(tu, "\n#undef k_init\n#undef k_main\n#undef k_fini\n#undef k_blk\n");
    for (unsigned v = 0; v < 256; v++)
        if (seen[v / 64] >> (v % 64) & 1)
            jit_buf_addf(tu, "#undef kx%u\n#undef KX%u\n", v, v);
}

static void diag_add(char *diag, size_t dl, const char *text)
{
    if (diag == NULL || dl == 0)
        return;
    size_t used = strlen(diag);
    if (used + 1 < dl)
        snprintf(diag + used, dl - used, "%s%s", used ? "\n" : "", text);
}

/* The translation unit's head: the prelude, the import table and the
 * functions that call through it. */
static void tu_head(struct jit_cc *cc, struct jit_buf *tu)
{
    size_t ns;
    jit_codegen_symbols(&ns);
    jit_buf_add(tu, cc->prelude);
    jit_buf_addf(tu, "__attribute__((visibility(\"default\"))) void (*kiln__imports[%zu])(void);\n",
                 ns);
    jit_buf_add(tu, jit_codegen_imports_c());
}

/* Runs the compiler on the text of tu. Returns its exit status (0: *obj
 * holds the object, malloc'd, *objn bytes), -1 if it could not be run or
 * made nothing. *msg (if asked) gets its first KB of diagnostics. Adds
 * the time taken to the stats. */
static int compile_text(struct jit_cc *cc, const struct jit_buf *tu, uint8_t **obj, size_t *objn,
                        char **msg)
{
    *obj = NULL;
    *objn = 0;
    if (msg)
        *msg = NULL;
    char base[4200], src[4210], out[4210];
    if (tu->bad || !cc_temp_name(cc, cc->work_dir, "c", base, sizeof base))
        return -1;
    snprintf(src, sizeof src, "%s.c", base);
    snprintf(out, sizeof out, "%s.so", base);
    int log = output_fd();
    if (log < 0)
        return -1;
    uint64_t t0 = now_ns();
    int status = -1;
    int fd = open(src, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        bool ok = jit_disk_write_all(fd, tu->data, tu->len);
        ok = close(fd) == 0 && ok;
        enum { NF = sizeof cc_flags / sizeof cc_flags[0], NL = sizeof cc_libs / sizeof cc_libs[0] };
        char *argv[NF + NL + 8];
        int a = 0;
        argv[a++] = cc->path;
        for (int k = 0; k < NF; k++)
            argv[a++] = (char *) cc_flags[k];
        argv[a++] = "-o";
        argv[a++] = out;
        argv[a++] = src;
        for (int k = 0; k < NL; k++)
            argv[a++] = (char *) cc_libs[k];
        argv[a] = NULL;
        if (ok)
            status = run_child(cc, argv, log, cc->work_dir);
        unlink(src);
    }
    if (status == 0) {
        *obj = (uint8_t *) slurp(out, CC_MAX_OBJECT, objn);
        if (*obj == NULL || *objn == 0) {
            free(*obj);
            *obj = NULL;
            status = -1;
        }
    } else if (msg != NULL) {
        *msg = output_text(log, 1024);
    }
    unlink(out);
    close(log);
    uint64_t dt = now_ns() - t0;
    pthread_mutex_lock(&cc->lock);
    cc->st.compile_ns += dt;
    pthread_mutex_unlock(&cc->lock);
    return status;
}

/* Whether the compiler builds a trivial module: asked once, after the
 * first failed batch, to tell a broken kernel (split the batch to find
 * it) from a broken toolchain (stop asking it). */
static bool compiler_works(struct jit_cc *cc)
{
    int works = __atomic_load_n(&cc->works, __ATOMIC_ACQUIRE);
    if (works != 0)
        return works > 0;
    struct jit_buf tu;
    jit_buf_init(&tu);
    tu_head(cc, &tu);
    jit_buf_add(&tu, "__attribute__((visibility(\"default\"))) void kiln__probe(void) {}\n");
    uint8_t *obj;
    size_t objn;
    int status = compile_text(cc, &tu, &obj, &objn, NULL);
    jit_buf_fini(&tu);
    free(obj);
    if (__atomic_load_n(&cc->cancelled, __ATOMIC_ACQUIRE))
        return false; /* killed: no verdict */
    works = status == 0 ? 1 : -1;
    int unknown = 0;
    __atomic_compare_exchange_n(&cc->works, &unknown, works, false, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
    return __atomic_load_n(&cc->works, __ATOMIC_ACQUIRE) > 0;
}

/* Compiles kernels idx[0..n) (indices into keys/bodies) as one object and
 * loads it; on a compiler error splits the set in halves. */
static void build_set(struct jit_cc *cc, const uint32_t *idx, uint32_t n,
                      const struct jit_cc_key *keys, const char *const *bodies,
                      struct jit_cc_kernel *out, char *diag, size_t dl)
{
    if (__atomic_load_n(&cc->cancelled, __ATOMIC_ACQUIRE))
        return;
    struct jit_buf tu;
    jit_buf_init(&tu);
    tu_head(cc, &tu);
    for (uint32_t i = 0; i < n; i++)
        emit_kernel(&tu, bodies[idx[i]], &keys[idx[i]]);
    uint8_t *bytes;
    size_t objn;
    char *msg;
    int status = compile_text(cc, &tu, &bytes, &objn, &msg);
    jit_buf_fini(&tu);
    if (status != 0) {
        bool split = n > 1 && status > 0 && compiler_works(cc);
        if (!split)
            diag_add(diag, dl, msg && *msg ? msg : "the compiler could not be run");
        free(msg);
        if (split) { /* the compiler refused one of them: find it */
            build_set(cc, idx, n / 2, keys, bodies, out, diag, dl);
            build_set(cc, idx + n / 2, n - n / 2, keys, bodies, out, diag, dl);
            return;
        }
        pthread_mutex_lock(&cc->lock);
        cc->st.failures += n;
        pthread_mutex_unlock(&cc->lock);
        return;
    }
    __atomic_store_n(&cc->works, 1, __ATOMIC_RELEASE);
    struct jit_cc_key *lk = malloc((size_t) n * sizeof *lk);
    if (lk != NULL)
        for (uint32_t i = 0; i < n; i++)
            lk[i] = keys[idx[i]];
    struct jit_cc_lib *lib = lk ? lib_load(cc, bytes, objn, lk, n, diag, dl) : NULL;
    uint32_t built = 0;
    for (uint32_t i = 0; lib != NULL && i < n; i++)
        if (lib_kernel(lib, &keys[idx[i]], &out[idx[i]]))
            built++;
        else
            memset(&out[idx[i]], 0, sizeof out[idx[i]]);
    /* Only an object that loaded with all its kernels goes to disk. */
    int wrc = built == n ? cc_disk_write(cc, lib->keys, n, bytes, objn) : KILN_EINTERNAL;
    free(bytes);
    pthread_mutex_lock(&cc->lock);
    cc->st.batches++;
    if (cc->cache_dir != NULL) {
        if (wrc == KILN_OK)
            cc->st.disk_writes += n;
        else
            cc->st.disk_errors += n;
    }
    cc->st.compiles += built;
    cc->st.failures += n - built;
    if (built > 0) {
        lib->refs = built;
        lib->next = cc->libs;
        cc->libs = lib;
        cc->st.libs_loaded++;
        map_add(cc, lib);
    }
    pthread_mutex_unlock(&cc->lock);
    if (lib != NULL && built == 0)
        lib_close(cc, lib);
}

int jit_cc_build(struct jit_cc *cc, size_t n, const char *const *sources, struct jit_cc_kernel *out,
                 char *diag, size_t diaglen)
{
    if (diag != NULL && diaglen > 0)
        diag[0] = '\0';
    for (size_t i = 0; i < n; i++)
        memset(&out[i], 0, sizeof out[i]);
    if (n == 0 || n > JIT_CC_MAX_BATCH)
        return KILN_ELIMIT;
    if (__atomic_load_n(&cc->cancelled, __ATOMIC_ACQUIRE))
        return KILN_ESHUTDOWN;
    if (__atomic_load_n(&cc->works, __ATOMIC_ACQUIRE) < 0) {
        diag_add(diag, diaglen, "the compiler fails on a trivial module: the tier is off");
        return KILN_EUNSUPPORTED;
    }
    if (ensure_work_dir(cc) != KILN_OK) {
        diag_add(diag, diaglen, "no temporary directory for compiles");
        return KILN_EINTERNAL;
    }
    struct jit_cc_key *keys = malloc(n * sizeof *keys);
    const char **bodies = malloc(n * sizeof *bodies);
    uint32_t *idx = malloc(n * sizeof *idx), *first = malloc(n * sizeof *first);
    if (keys == NULL || bodies == NULL || idx == NULL || first == NULL) {
        free(keys);
        free(bodies);
        free(idx);
        free(first);
        return KILN_ENOMEM;
    }
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        jit_cc_key(cc, sources[i], &keys[i]);
        first[i] = (uint32_t) i;
        for (size_t j = 0; j < i; j++)
            if (memcmp(keys[j].b, keys[i].b, JIT_CC_KEY_BYTES) == 0) {
                first[i] = first[j];
                break;
            }
        if (strncmp(sources[i], cc->prelude, cc->prelude_len) != 0) {
            diag_add(diag, diaglen, "a source does not start with codegen's prelude");
            bodies[i] = NULL;
            if (first[i] == i) {
                pthread_mutex_lock(&cc->lock);
                cc->st.failures++;
                pthread_mutex_unlock(&cc->lock);
            }
            continue;
        }
        bodies[i] = sources[i] + cc->prelude_len;
        if (first[i] == i)
            idx[m++] = (uint32_t) i;
    }
    if (m > 0)
        build_set(cc, idx, m, keys, bodies, out, diag, diaglen);
    /* Duplicates share their first's object, with references of their own. */
    pthread_mutex_lock(&cc->lock);
    int built = 0;
    for (size_t i = 0; i < n; i++) {
        if (first[i] != i && out[first[i]].lib != NULL) {
            out[i] = out[first[i]];
            out[i].lib->refs++;
        }
        built += out[i].lib != NULL;
    }
    pthread_mutex_unlock(&cc->lock);
    free(keys);
    free(bodies);
    free(idx);
    free(first);
    if (built > 0)
        return KILN_OK;
    return __atomic_load_n(&cc->cancelled, __ATOMIC_ACQUIRE) ? KILN_ESHUTDOWN : KILN_EINTERNAL;
}
