/* test_cuda_disk.c: the PTX cache (jit/cuda_disk.h) on NVRTC, no GPU.
 *
 * Tiny CUDA sources (one kernel adding a constant) keep each compile near
 * NVRTC's 20 ms. Cases: a miss compiles and writes an entry, a second
 * cache on the same directory reads it back byte for byte, memory answers
 * repeats; flipped, truncated and foreign entries are discarded and
 * compiled again; another architecture or another NVRTC version misses;
 * the directory stays under its cap; four threads asking for one source
 * compile it once while four different sources compile in parallel; a
 * source NVRTC refuses gives its log and is not kept.
 *
 * Where NVRTC is absent the suite says so and exits 77 (meson: SKIP).
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codegen_cuda.h"
#include "cuda_disk.h"
#include "cuda_dl.h"
#include "kiln_err.h"
#include "nvrtc_main.h"

static struct jit_cuda *cu;
static char dir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void) st, (void) flag, (void) f;
    return remove(path);
}

static void setup(void)
{
    ck_assert_int_eq(jit_cuda_open(JIT_CUDA_NVRTC, &cu), KILN_OK);
    ck_assert_msg(jit_cuda_info(cu)->nvrtc, "NVRTC: %s", jit_cuda_info(cu)->nvrtc_why);
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/kiln-test-ptx-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    jit_cuda_close(cu);
    cu = NULL;
}

/* Source number k: one kernel adding k. */
static const char *source(unsigned k)
{
    static char buf[16][256];
    snprintf(buf[k % 16], sizeof buf[0],
             "extern \"C\" __global__ void kiln_main(float *x, long n)\n"
             "{\n"
             "    long i = (long) blockIdx.x * blockDim.x + threadIdx.x;\n"
             "    if (i < n)\n"
             "        x[i] += %u.0f;\n"
             "}\n",
             k);
    return buf[k % 16];
}

static struct jit_cuda_modcache *cache(const char *d, uint64_t cap)
{
    struct jit_cuda_modcache *m = NULL;
    ck_assert_int_eq(jit_cuda_modcache_new(cu, d, cap, &m), KILN_OK);
    return m;
}

enum { MEM, DISK, NVRTC };

/* Asks m for source k and checks where the answer came from. */
static char *get(struct jit_cuda_modcache *m, unsigned k, const char *arch, int want, size_t *len)
{
    char *ptx = NULL, *log = NULL;
    size_t n = 0;
    bool from_disk, compiled;
    int rc = jit_cuda_modcache_ptx(m, source(k), arch, &ptx, &n, &from_disk, &compiled, &log);
    ck_assert_msg(rc == KILN_OK, "source %u: rc %d: %s", k, rc, log ? log : "");
    ck_assert_ptr_null(log);
    ck_assert_uint_eq(strlen(ptx), n);
    ck_assert_ptr_nonnull(strstr(ptx, ".entry kiln_main("));
    ck_assert_int_eq(from_disk, want == DISK);
    ck_assert_int_eq(compiled, want == NVRTC);
    if (len != NULL)
        *len = n;
    return ptx;
}

static struct jit_cuda_modcache_stats stats(struct jit_cuda_modcache *m)
{
    struct jit_cuda_modcache_stats s;
    jit_cuda_modcache_stats(m, &s);
    return s;
}

/* The entries in dir: how many, and their bytes; the first's path. */
static unsigned entries(uint64_t *bytes, char *first, size_t n)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    unsigned count = 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".kptx") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        total += (uint64_t) st.st_size;
        if (count++ == 0 && first != NULL)
            snprintf(first, n, "%s", path);
    }
    closedir(d);
    if (bytes != NULL)
        *bytes = total;
    return count;
}

START_TEST(miss_write_then_disk_hit)
{
    struct jit_cuda_modcache *a = cache(dir, 0);
    size_t n1, n2;
    char *p1 = get(a, 1, JIT_CUDA_ARCH, NVRTC, &n1);
    ck_assert_ptr_nonnull(strstr(p1, ".target sm_80"));
    struct jit_cuda_modcache_stats s = stats(a);
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_gt(s.compile_ns, 0);
    ck_assert_uint_eq(s.disk_writes, 1);
    ck_assert_uint_eq(entries(NULL, NULL, 0), 1);
    free(get(a, 1, JIT_CUDA_ARCH, MEM, NULL));
    ck_assert_uint_eq(stats(a).mem_hits, 1);
    /* A new cache (a restarted daemon) reads the same bytes back. */
    struct jit_cuda_modcache *b = cache(dir, 0);
    char *p2 = get(b, 1, JIT_CUDA_ARCH, DISK, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(p1, p2, n1 + 1), 0);
    s = stats(b);
    ck_assert_uint_eq(s.disk_hits, 1);
    ck_assert_uint_eq(s.compiles, 0);
    free(get(b, 1, JIT_CUDA_ARCH, MEM, NULL));
    /* Memory only: no files. */
    struct jit_cuda_modcache *c = cache(NULL, 0);
    free(get(c, 2, JIT_CUDA_ARCH, NVRTC, NULL));
    free(get(c, 2, JIT_CUDA_ARCH, MEM, NULL));
    ck_assert_uint_eq(entries(NULL, NULL, 0), 1);
    free(p1);
    free(p2);
    jit_cuda_modcache_free(a);
    jit_cuda_modcache_free(b);
    jit_cuda_modcache_free(c);
}
END_TEST

/* Replaces the file at `path` by `n` bytes of `data`. */
static void put_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* A fresh cache must find the entry for source k bad, delete it, compile
 * and write it again; the next fresh cache reads it. */
static void expect_discarded(unsigned k, const char *what)
{
    struct jit_cuda_modcache *m = cache(dir, 0);
    free(get(m, k, JIT_CUDA_ARCH, NVRTC, NULL));
    struct jit_cuda_modcache_stats s = stats(m);
    ck_assert_msg(s.disk_discarded == 1, "%s: not discarded", what);
    ck_assert_uint_eq(s.disk_writes, 1);
    jit_cuda_modcache_free(m);
    m = cache(dir, 0);
    free(get(m, k, JIT_CUDA_ARCH, DISK, NULL));
    jit_cuda_modcache_free(m);
}

START_TEST(bad_entries_are_discarded)
{
    struct jit_cuda_modcache *m = cache(dir, 0);
    free(get(m, 3, JIT_CUDA_ARCH, NVRTC, NULL));
    jit_cuda_modcache_free(m);
    char path[512];
    size_t n;
    ck_assert_uint_eq(entries(NULL, path, sizeof path), 1);
    char *good = slurp(path, &n);
    ck_assert_uint_gt(n, 100);
    /* A flipped byte in the header, then in the PTX. */
    size_t at[] = {20, n / 2};
    for (unsigned i = 0; i < 2; i++) {
        good[at[i]] ^= 0x20;
        put_file(path, good, n);
        good[at[i]] ^= 0x20;
        expect_discarded(3, "a flipped byte");
    }
    /* Truncated. */
    put_file(path, good, n - 7);
    expect_discarded(3, "truncated");
    /* Foreign: source 3's entry under source 4's name. */
    m = cache(dir, 0);
    free(get(m, 4, JIT_CUDA_ARCH, NVRTC, NULL));
    jit_cuda_modcache_free(m);
    ck_assert_uint_eq(entries(NULL, NULL, 0), 2);
    DIR *d = opendir(dir);
    struct dirent *de;
    char other[512] = "";
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".kptx") != NULL && strstr(path, de->d_name) == NULL)
            snprintf(other, sizeof other, "%s/%s", dir, de->d_name);
    closedir(d);
    ck_assert(other[0] != '\0');
    put_file(other, good, n);
    expect_discarded(4, "foreign");
    free(good);
}
END_TEST

START_TEST(other_arch_or_nvrtc_misses)
{
    struct jit_cuda_modcache *m = cache(dir, 0);
    free(get(m, 5, JIT_CUDA_ARCH, NVRTC, NULL));
    char *p = get(m, 5, "compute_90", NVRTC, NULL);
    ck_assert_ptr_nonnull(strstr(p, ".target sm_90"));
    free(p);
    free(get(m, 5, "compute_90", MEM, NULL));
    jit_cuda_modcache_free(m);
    /* Another NVRTC: neither the disk nor (after the switch) memory serve. */
    m = cache(dir, 0);
    free(get(m, 5, JIT_CUDA_ARCH, DISK, NULL));
    jit_cuda_modcache_pretend_nvrtc(m, 99, 9);
    free(get(m, 5, JIT_CUDA_ARCH, NVRTC, NULL));
    free(get(m, 5, JIT_CUDA_ARCH, MEM, NULL));
    ck_assert_uint_eq(entries(NULL, NULL, 0), 3);
    /* A bad architecture name never reaches NVRTC. */
    char *ptx = (char *) 1;
    size_t len = 1;
    ck_assert_int_eq(
        jit_cuda_modcache_ptx(m, source(5), "compute 80; rm", &ptx, &len, NULL, NULL, NULL),
        KILN_EVALUE);
    ck_assert_ptr_null(ptx);
    ck_assert_int_eq(jit_cuda_modcache_ptx(m, source(5), "", &ptx, &len, NULL, NULL, NULL),
                     KILN_EVALUE);
    jit_cuda_modcache_free(m);
}
END_TEST

START_TEST(disk_stays_under_its_cap)
{
    /* One entry's size first, then a cap of about three. */
    struct jit_cuda_modcache *m = cache(dir, 0);
    free(get(m, 0, JIT_CUDA_ARCH, NVRTC, NULL));
    jit_cuda_modcache_free(m);
    uint64_t one;
    ck_assert_uint_eq(entries(&one, NULL, 0), 1);
    uint64_t cap = one * 7 / 2;
    m = cache(dir, cap);
    for (unsigned k = 1; k <= 6; k++) {
        free(get(m, k, JIT_CUDA_ARCH, NVRTC, NULL));
        uint64_t bytes;
        entries(&bytes, NULL, 0);
        ck_assert_uint_le(bytes, cap);
    }
    ck_assert_uint_gt(stats(m).disk_evicted, 0);
    jit_cuda_modcache_free(m);
    /* The newest survived, the oldest went. */
    m = cache(dir, cap);
    free(get(m, 6, JIT_CUDA_ARCH, DISK, NULL));
    free(get(m, 1, JIT_CUDA_ARCH, NVRTC, NULL));
    jit_cuda_modcache_free(m);
}
END_TEST

/* ---- threads ----------------------------------------------------------- */

struct asker {
    struct jit_cuda_modcache *m;
    pthread_barrier_t *go;
    const char *src; /* made before the threads start */
    char *ptx;
    int rc;
};

static void *ask(void *arg)
{
    struct asker *a = arg;
    size_t n;
    pthread_barrier_wait(a->go);
    a->rc = jit_cuda_modcache_ptx(a->m, a->src, JIT_CUDA_ARCH, &a->ptx, &n, NULL, NULL, NULL);
    return NULL;
}

/* Four threads at once, asking for sources k[0..4); returns wall ns. */
static uint64_t four(struct jit_cuda_modcache *m, const unsigned k[4], struct asker a[4])
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 4);
    pthread_t t[4];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < 4; i++) {
        a[i] = (struct asker){.m = m, .go = &go, .src = source(k[i])};
        ck_assert_int_eq(pthread_create(&t[i], NULL, ask, &a[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_barrier_destroy(&go);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_int_eq(a[i].rc, KILN_OK);
    return (uint64_t) (t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t) t1.tv_nsec -
           (uint64_t) t0.tv_nsec;
}

START_TEST(single_flight_and_parallel_compiles)
{
    struct jit_cuda_modcache *m = cache(dir, 0);
    struct asker a[4];
    /* One source: one compile, the others wait for it (or, arriving
     * late, find it in memory). */
    const unsigned same[4] = {7, 7, 7, 7};
    four(m, same, a);
    struct jit_cuda_modcache_stats s = stats(m);
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.waits + s.mem_hits, 3);
    ck_assert_uint_ge(s.waits, 1);
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_str_eq(a[i].ptx, a[0].ptx);
        if (i > 0)
            free(a[i].ptx);
    }
    free(a[0].ptx);
    /* Four sources: four compiles, no waits, and they overlap: the sum of
     * their times passes the wall time (with one compile at a time, it
     * could not). */
    const unsigned diff[4] = {8, 9, 10, 11};
    uint64_t wall = four(m, diff, a);
    struct jit_cuda_modcache_stats s2 = stats(m);
    ck_assert_uint_eq(s2.compiles, 5);
    ck_assert_uint_eq(s2.waits, s.waits);
    uint64_t sum = s2.compile_ns - s.compile_ns;
    fprintf(stderr, "test_cuda_disk: 4 different sources: wall %.1f ms, compiles %.1f ms\n",
            wall / 1e6, sum / 1e6);
    ck_assert_uint_gt(sum, wall + wall / 4);
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_ptr_nonnull(strstr(a[i].ptx, ".entry kiln_main("));
        free(a[i].ptx);
    }
    jit_cuda_modcache_free(m);
}
END_TEST

START_TEST(refused_source_gives_its_log)
{
    struct jit_cuda_modcache *m = cache(dir, 0);
    const char *bad = "extern \"C\" __global__ void kiln_main() { this is not cuda; }\n";
    for (int round = 0; round < 2; round++) {
        char *ptx = NULL, *log = NULL;
        size_t n;
        bool from_disk = true, compiled = false;
        ck_assert_int_eq(
            jit_cuda_modcache_ptx(m, bad, JIT_CUDA_ARCH, &ptx, &n, &from_disk, &compiled, &log),
            KILN_EINTERNAL);
        ck_assert_ptr_null(ptx);
        ck_assert(compiled && !from_disk);
        ck_assert_ptr_nonnull(log);
        ck_assert_ptr_nonnull(strstr(log, "error"));
        free(log);
    }
    struct jit_cuda_modcache_stats s = stats(m);
    ck_assert_uint_eq(s.compiles, 2); /* a failure is not kept */
    ck_assert_uint_eq(s.disk_writes, 0);
    ck_assert_uint_eq(entries(NULL, NULL, 0), 0);
    jit_cuda_modcache_free(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cuda_disk");
    TCase *tc = tcase_create("cuda_disk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, miss_write_then_disk_hit);
    tcase_add_test(tc, bad_entries_are_discarded);
    tcase_add_test(tc, other_arch_or_nvrtc_misses);
    tcase_add_test(tc, disk_stays_under_its_cap);
    tcase_add_test(tc, single_flight_and_parallel_compiles);
    tcase_add_test(tc, refused_source_gives_its_log);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nvrtc_suite_main(suite, "PTX cache test");
}
