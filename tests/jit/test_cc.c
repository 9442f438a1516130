/* test_cc.c: the cc tier (jit/cc.h, promote.h) and its disk cache.
 *
 * Bit-identical results on every op are test_run_cc's job (test_run.c on
 * the cc tier). Here: SHA-256 against FIPS 180-4's vectors; a missing
 * compiler turns the tier off; a batch with a broken kernel still builds
 * the others; entries survive a restart and are reused without a compile;
 * corrupted, truncated and foreign entries are found, deleted and rebuilt;
 * two processes writing the same entries at once, with a third reading,
 * never leave or see a bad one; hot kernels are swapped in while other
 * threads keep running them, every result still the interpreter's. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cc.h"
#include "codegen.h"
#include "fuse.h"
#include "interp.h"
#include "kiln_err.h"
#include "run.h"
#include "sha256.h"
#include "tgraph.h"

#define SEC ((uint64_t) 1000000000u)

static char dir[256];

static void make_dir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/kiln-test-cc-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void) st;
    (void) flag;
    (void) f;
    return remove(path);
}

static void remove_dir(void)
{
    if (dir[0] != '\0')
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    dir[0] = '\0';
}

static struct jit_cc *new_cc(const char *cache)
{
    struct jit_cc *cc;
    char why[512];
    struct jit_cc_opts o = {.cache_dir = cache};
    ck_assert_msg(jit_cc_new(&o, &cc, why, sizeof why) == KILN_OK, "%s", why);
    ck_assert_str_eq(why, "");
    return cc;
}

/* ---- sources ------------------------------------------------------------ */

/* The sources of random graph `seed`'s kernels (up to max), malloc'd. */
static size_t graph_sources(uint64_t seed, char **src, size_t max)
{
    struct tg t;
    tg_init(&t);
    random_graph(&t, seed * 0x9e3779b97f4a7c15ull, 4, 6, 30);
    ck_assert_int_eq(jit_fuse_plan(&t.g, t.out, &t.plan, &t.err), KILN_OK);
    size_t n = 0;
    for (uint32_t gi = 0; gi < t.plan.ngroups && n < max; gi++) {
        struct jit_buf b;
        jit_buf_init(&b);
        ck_assert_int_eq(jit_codegen_group(&t.g, &t.plan, gi, &b), KILN_OK);
        src[n++] = b.data;
    }
    tg_fini(&t);
    return n;
}

/* A kernel of its own: out[i] = in[i] * 3 + k over float32, with k a
 * distinct constant per `k` so that each makes its own key. */
static char *scale_source(int k)
{
    struct jit_buf b;
    jit_buf_init(&b);
    jit_codegen_prelude(&b);
    jit_buf_addf(&b,
                 "void k_main(void **bufs, const int64_t *P, int64_t begin, int64_t end)\n"
                 "{\n"
                 "    const float *x = (const float *) bufs[0];\n"
                 "    float *y = (float *) bufs[1];\n"
                 "    for (int64_t f = begin; f < end; f++)\n"
                 "        y[f] = x[f] * 3.0f + %d.0f;\n"
                 "}\n",
                 k);
    ck_assert(!b.bad);
    return b.data;
}

static void check_scale(const struct jit_cc_kernel *k, int c)
{
    float x[100], y[100];
    for (int i = 0; i < 100; i++)
        x[i] = (float) i * 0.5f;
    void *bufs[2] = {x, y};
    k->main(bufs, NULL, 0, 100);
    for (int i = 0; i < 100; i++)
        ck_assert(y[i] == x[i] * 3.0f + (float) c);
}

/* ---- SHA-256 ------------------------------------------------------------- */

static void hex(const uint8_t *b, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

START_TEST(sha256_vectors)
{
    static const struct {
        const char *msg, *want;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
         "nopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    uint8_t d[32];
    char h[65];
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        jit_sha256(v[k].msg, strlen(v[k].msg), d);
        hex(d, h);
        ck_assert_str_eq(h, v[k].want);
    }
    /* A million 'a', fed in uneven pieces. */
    struct jit_sha256 s;
    jit_sha256_init(&s);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    for (size_t piece = 1; left > 0; piece = piece % 997 + 1) {
        size_t n = piece < left ? piece : left;
        jit_sha256_add(&s, a, n);
        left -= n;
    }
    jit_sha256_final(&s, d);
    hex(d, h);
    ck_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

/* ---- the compiler ---------------------------------------------------------- */

START_TEST(no_compiler_turns_the_tier_off)
{
    struct jit_cc *cc = (struct jit_cc *) 1;
    char why[256];
    struct jit_cc_opts o = {.compiler = "kiln-no-such-compiler"};
    ck_assert_int_eq(jit_cc_new(&o, &cc, why, sizeof why), KILN_EUNSUPPORTED);
    ck_assert_ptr_null(cc);
    ck_assert_ptr_nonnull(strstr(why, "kiln-no-such-compiler"));
    o.compiler = "/bin/false"; /* runs, but answers nothing */
    ck_assert_int_eq(jit_cc_new(&o, &cc, why, sizeof why), KILN_EUNSUPPORTED);
    ck_assert_ptr_null(cc);
    /* A runtime without the tier runs (test_run covers what it computes). */
    struct jit_compiler comp;
    ck_assert_int_eq(jit_compiler_init(&comp), KILN_OK);
    struct jit_runtime *rt;
    struct jit_runtime_opts ro = {.compiler = &comp};
    ck_assert_int_eq(jit_runtime_new(&ro, &rt), KILN_OK);
    struct jit_runtime_stats st;
    jit_runtime_stats(rt, &st);
    ck_assert(!st.cc_enabled);
    ck_assert(jit_runtime_cc_drain(rt, 0));
    jit_runtime_free(rt);
    jit_compiler_fini(&comp);
}
END_TEST

START_TEST(unusable_cache_dir_is_refused)
{
    make_dir();
    char file[300], why[512];
    snprintf(file, sizeof file, "%s/file", dir);
    int fd = open(file, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct jit_cc *cc;
    struct jit_cc_opts o = {.cache_dir = file};
    ck_assert_int_eq(jit_cc_new(&o, &cc, why, sizeof why), KILN_OK); /* the tier works */
    ck_assert_ptr_null(jit_cc_cache_dir(cc));                        /* without a disk cache */
    ck_assert_ptr_nonnull(strstr(why, "not a directory"));
    jit_cc_free(cc);
    /* A new one is made 0700, an open one is tightened. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    cc = new_cc(sub);
    ck_assert_str_eq(jit_cc_cache_dir(cc), sub);
    jit_cc_free(cc);
    struct stat st;
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(chmod(sub, 0755), 0);
    cc = new_cc(sub);
    jit_cc_free(cc);
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    remove_dir();
}
END_TEST

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d != NULL && readdir(d) != NULL)
        n++;
    if (d != NULL)
        closedir(d);
    return n;
}

START_TEST(batch_with_a_broken_kernel)
{
    make_dir();
    int fds = count_fds();
    struct jit_cc *cc = new_cc(dir);
    enum { N = 6 };
    char *src[N];
    for (int k = 0; k < N; k++)
        src[k] = scale_source(k);
    /* Kernel 3 does not compile. */
    struct jit_buf bad;
    jit_buf_init(&bad);
    jit_codegen_prelude(&bad);
    jit_buf_add(&bad, "void k_main(void **bufs) { this is not C; }\n");
    free(src[3]);
    src[3] = bad.data;
    struct jit_cc_kernel out[N + 1];
    char diag[2048];
    const char *srcs[N + 1];
    for (int k = 0; k < N; k++)
        srcs[k] = src[k];
    srcs[N] = src[1]; /* a duplicate shares kernel 1 */
    ck_assert_int_eq(jit_cc_build(cc, N + 1, srcs, out, diag, sizeof diag), KILN_OK);
    ck_assert_ptr_null(out[3].lib);
    ck_assert_ptr_nonnull(strstr(diag, "error"));
    for (int k = 0; k <= N; k++) {
        if (k == 3)
            continue;
        ck_assert_msg(out[k].lib != NULL, "kernel %d not built: %s", k, diag);
        ck_assert_ptr_null(out[k].init);
        check_scale(&out[k], k == N ? 1 : k);
    }
    /* Loaded objects keep no descriptors (several are loaded now). */
    ck_assert_int_eq(count_fds(), fds);
    struct jit_cc_stats st;
    jit_cc_stats(cc, &st);
    ck_assert_uint_ge(st.libs_loaded, 2);
    ck_assert_uint_eq(st.compiles, N - 1);
    ck_assert_uint_eq(st.failures, 1);
    ck_assert_uint_eq(st.disk_writes, N - 1);
    ck_assert_uint_ge(st.batches, 2); /* the batch was split to isolate kernel 3 */
    /* While loaded, every kernel is found in memory. */
    struct jit_cc_key key;
    struct jit_cc_kernel again;
    jit_cc_key(cc, src[5], &key);
    ck_assert_int_eq(jit_cc_lookup(cc, &key, &again), KILN_OK);
    check_scale(&again, 5);
    jit_cc_kernel_release(cc, &again);
    for (int k = 0; k <= N; k++)
        jit_cc_kernel_release(cc, &out[k]);
    jit_cc_stats(cc, &st);
    ck_assert_uint_eq(st.libs_loaded, 0);
    ck_assert_uint_eq(st.mem_hits, 1);
    /* The broken kernel is not found; the others are, from disk. */
    jit_cc_key(cc, src[3], &key);
    ck_assert_int_eq(jit_cc_lookup(cc, &key, &again), KILN_ENOTFOUND);
    jit_cc_key(cc, src[0], &key);
    ck_assert_int_eq(jit_cc_lookup(cc, &key, &again), KILN_OK);
    check_scale(&again, 0);
    jit_cc_kernel_release(cc, &again);
    jit_cc_free(cc);
    for (int k = 0; k < N; k++)
        free(src[k]);
    remove_dir();
}
END_TEST

/* A compiler that answers --version but builds nothing: the first batch
 * fails, a probe finds the toolchain broken (no splitting into a
 * compile per kernel), and later builds fail at once. */
START_TEST(broken_toolchain_turns_the_tier_off)
{
    make_dir();
    char fake[300];
    snprintf(fake, sizeof fake, "%s/fakecc", dir);
    FILE *f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#!/bin/sh\nif [ \"$1\" = --version ]; then echo fakecc 1.0; exit 0; fi\n"
          "echo 'fakecc: cannot' >&2\nexit 1\n",
          f);
    fclose(f);
    ck_assert_int_eq(chmod(fake, 0700), 0);
    struct jit_cc *cc;
    struct jit_cc_opts o = {.compiler = fake};
    ck_assert_int_eq(jit_cc_new(&o, &cc, NULL, 0), KILN_OK);
    ck_assert_ptr_nonnull(strstr(jit_cc_compiler(cc), "fakecc 1.0"));
    enum { N = 8 };
    char *src[N];
    struct jit_cc_kernel out[N];
    for (int k = 0; k < N; k++)
        src[k] = scale_source(40 + k);
    char diag[512];
    ck_assert_int_eq(jit_cc_build(cc, N, (const char *const *) src, out, diag, sizeof diag),
                     KILN_EINTERNAL);
    ck_assert_ptr_nonnull(strstr(diag, "fakecc: cannot"));
    struct jit_cc_stats st;
    jit_cc_stats(cc, &st);
    ck_assert_uint_eq(st.failures, N);
    ck_assert_uint_eq(st.batches, 0);
    ck_assert_int_eq(jit_cc_build(cc, 1, (const char *const *) src, out, diag, sizeof diag),
                     KILN_EUNSUPPORTED);
    ck_assert_ptr_null(out[0].lib);
    jit_cc_free(cc);
    for (int k = 0; k < N; k++)
        free(src[k]);
    remove_dir();
}
END_TEST

START_TEST(cancel_stops_builds)
{
    struct jit_cc *cc = new_cc(NULL);
    char *src = scale_source(7);
    const char *srcs[1] = {src};
    struct jit_cc_kernel k;
    jit_cc_cancel(cc);
    ck_assert_int_eq(jit_cc_build(cc, 1, srcs, &k, NULL, 0), KILN_ESHUTDOWN);
    ck_assert_ptr_null(k.lib);
    jit_cc_free(cc);
    free(src);
}
END_TEST

/* ---- the disk cache -------------------------------------------------------- */

static void build_all(struct jit_cc *cc, char **src, size_t n)
{
    struct jit_cc_kernel out[64];
    ck_assert_int_eq(jit_cc_build(cc, n, (const char *const *) src, out, NULL, 0), KILN_OK);
    for (size_t k = 0; k < n; k++) {
        ck_assert_ptr_nonnull(out[k].lib);
        jit_cc_kernel_release(cc, &out[k]);
    }
}

static void flip_byte(const char *path, long at)
{
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    if (at < 0)
        at += st.st_size;
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* Looks src up on a fresh view of the disk: found or not, and whether a
 * bad entry was discarded on the way. */
static int lookup_fresh(struct jit_cc *cc, const char *src, bool *discarded)
{
    struct jit_cc_stats a, b;
    jit_cc_stats(cc, &a);
    struct jit_cc_key key;
    struct jit_cc_kernel k;
    jit_cc_key(cc, src, &key);
    int rc = jit_cc_lookup(cc, &key, &k);
    jit_cc_kernel_release(cc, &k);
    jit_cc_stats(cc, &b);
    *discarded = b.disk_discarded > a.disk_discarded;
    return rc;
}

START_TEST(corrupt_and_foreign_entries_are_rebuilt)
{
    make_dir();
    struct jit_cc *cc = new_cc(dir);
    char *src[3];
    for (int k = 0; k < 3; k++)
        src[k] = scale_source(10 + k);
    build_all(cc, src, 3);
    char path[3][512];
    struct jit_cc_key key[3];
    for (int k = 0; k < 3; k++) {
        jit_cc_key(cc, src[k], &key[k]);
        ck_assert(jit_cc_entry_path(cc, &key[k], path[k], sizeof path[k]));
        struct stat st;
        ck_assert_int_eq(stat(path[k], &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);
    }
    bool disc;
    build_all(cc, src, 1); /* kernel 0 gets a file of its own (not a link to the batch's) */
    /* A flipped byte in the object, in the header, in the key list; a
     * truncated file; an empty one. */
    static const long spots[] = {-100, 3, 20, 60};
    for (size_t s = 0; s < sizeof spots / sizeof spots[0]; s++) {
        ck_assert_int_eq(lookup_fresh(cc, src[0], &disc), KILN_OK);
        flip_byte(path[0], spots[s]);
        ck_assert_int_eq(lookup_fresh(cc, src[0], &disc), KILN_ENOTFOUND);
        ck_assert(disc);
        ck_assert_int_ne(access(path[0], F_OK), 0); /* deleted */
        ck_assert_int_eq(lookup_fresh(cc, src[0], &disc), KILN_ENOTFOUND);
        ck_assert(!disc);
        build_all(cc, src, 1); /* rebuilt */
    }
    ck_assert_int_eq(truncate(path[0], 1000), 0);
    ck_assert_int_eq(lookup_fresh(cc, src[0], &disc), KILN_ENOTFOUND);
    ck_assert(disc);
    build_all(cc, src, 1);
    ck_assert_int_eq(truncate(path[0], 0), 0);
    ck_assert_int_eq(lookup_fresh(cc, src[0], &disc), KILN_ENOTFOUND);
    ck_assert(disc);
    build_all(cc, src, 1);
    /* Foreign: kernel 0's (whole, valid) entry under kernel 1's name. */
    ck_assert_int_eq(unlink(path[1]), 0);
    ck_assert_int_eq(link(path[0], path[1]), 0);
    ck_assert_int_eq(lookup_fresh(cc, src[1], &disc), KILN_ENOTFOUND);
    ck_assert(disc);
    ck_assert_int_eq(lookup_fresh(cc, src[0], &disc), KILN_OK); /* the real one stays */
    ck_assert_int_eq(lookup_fresh(cc, src[2], &disc), KILN_OK); /* so does the batch's */
    build_all(cc, src + 1, 1);
    ck_assert_int_eq(lookup_fresh(cc, src[1], &disc), KILN_OK);
    /* What was rebuilt computes what it should. */
    struct jit_cc_kernel k;
    ck_assert_int_eq(jit_cc_lookup(cc, &key[1], &k), KILN_OK);
    check_scale(&k, 11);
    jit_cc_kernel_release(cc, &k);
    struct jit_cc_stats st;
    jit_cc_stats(cc, &st);
    ck_assert_uint_eq(st.disk_discarded, 7);
    jit_cc_free(cc);
    for (int k2 = 0; k2 < 3; k2++)
        free(src[k2]);
    remove_dir();
}
END_TEST

/* Two writer processes build the same kernels into one directory again
 * and again while a reader looks them up: no reader ever finds a bad
 * entry, and everything left at the end is whole. */
START_TEST(concurrent_writers)
{
    make_dir();
    enum { NK = 8, ROUNDS = 6 };
    char *src[NK];
    size_t n = graph_sources(3, src, 4);
    for (size_t k = n; k < NK; k++)
        src[k] = scale_source(20 + (int) k);
    struct jit_cc *keyer = new_cc(NULL);
    struct jit_cc_key keys[NK];
    int distinct = 0;
    for (int k = 0; k < NK; k++) {
        jit_cc_key(keyer, src[k], &keys[k]);
        bool dup = false;
        for (int j = 0; j < k; j++)
            dup = dup || memcmp(keys[j].b, keys[k].b, JIT_CC_KEY_BYTES) == 0;
        distinct += !dup;
    }
    jit_cc_free(keyer);
    pid_t kids[2];
    for (int w = 0; w < 2; w++) {
        kids[w] = fork();
        ck_assert_int_ge(kids[w], 0);
        if (kids[w] == 0) {
            struct jit_cc *cc;
            struct jit_cc_opts o = {.cache_dir = dir};
            if (jit_cc_new(&o, &cc, NULL, 0) != KILN_OK)
                _exit(3);
            for (int r = 0; r < ROUNDS; r++) {
                struct jit_cc_kernel out[NK];
                if (jit_cc_build(cc, NK, (const char *const *) src, out, NULL, 0) != KILN_OK)
                    _exit(4);
                for (int k = 0; k < NK; k++)
                    jit_cc_kernel_release(cc, &out[k]);
            }
            jit_cc_free(cc);
            _exit(0);
        }
    }
    struct jit_cc *cc = new_cc(dir);
    int done = 0, found = 0;
    while (done < 2) {
        for (int k = 0; k < NK; k++) {
            bool disc;
            found += lookup_fresh(cc, src[k], &disc) == KILN_OK;
            ck_assert_msg(!disc, "a reader saw a bad entry");
        }
        for (int w = 0; w < 2; w++) {
            int status;
            if (kids[w] > 0 && waitpid(kids[w], &status, WNOHANG) == kids[w]) {
                ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                kids[w] = 0;
                done++;
            }
        }
    }
    ck_assert_int_gt(found, 0);
    for (int k = 0; k < NK; k++) {
        bool disc;
        ck_assert_int_eq(lookup_fresh(cc, src[k], &disc), KILN_OK);
    }
    /* No temporary file is left behind, here or in the compiles' .work. */
    DIR *d = opendir(dir);
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, ".work") == 0)
            continue;
        ck_assert_msg(de->d_name[0] != '.', "left behind: %s", de->d_name);
        entries++;
    }
    closedir(d);
    ck_assert_int_eq(entries, distinct);
    char work[300];
    snprintf(work, sizeof work, "%s/.work", dir);
    d = opendir(work);
    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL)
        ck_assert_msg(de->d_name[0] == '.' && (de->d_name[1] == '\0' || de->d_name[1] == '.'),
                      "left behind in .work: %s", de->d_name);
    closedir(d);
    jit_cc_free(cc);
    for (int k = 0; k < NK; k++)
        free(src[k]);
    remove_dir();
}
END_TEST

/* ---- the executor ------------------------------------------------------------ */

static uint64_t seed_state = 0x9e3779b97f4a7c15ull;

static void **make_inputs(const struct ir_graph *g)
{
    void **ext = calloc(g->nextern + 1, sizeof(void *));
    for (uint32_t i = 0; i < g->count; i++) {
        const struct ir_node *nd = &g->nodes[i];
        if (nd->op != IR_OP_EXTERN)
            continue;
        float *p = malloc((size_t) nd->numel * sizeof(float) + 1);
        for (int64_t k = 0; k < nd->numel; k++)
            p[k] = (float) ((double) (rng(&seed_state) >> 11) / 9007199254740992.0 - 0.5) * 8;
        ext[nd->attr.ext.slot] = p;
    }
    return ext;
}

/* Runs t's graph on rt and compares its outputs with want's bytes. */
static struct jit_run_info run_and_compare(struct jit_runtime *rt, struct tg *t, void **ext,
                                           void **want)
{
    void **got;
    struct jit_run_info info;
    struct ir_error err;
    int rc =
        jit_run(rt, &t->g, t->out, (const void *const *) ext, NULL, SIZE_MAX, &got, &info, &err);
    ck_assert_msg(rc == KILN_OK, "%s", err.message);
    for (uint32_t i = 0; i < t->g.count; i++)
        if (t->out[i]) {
            size_t bytes = (size_t) t->g.nodes[i].numel * ir_dtype_size(t->g.nodes[i].dtype);
            ck_assert_msg(memcmp(want[i], got[i], bytes) == 0, "node %u differs", i);
        }
    jit_run_free(&t->g, got);
    return info;
}

struct runtime {
    struct jit_compiler comp;
    struct jit_cc *cc;
    struct jit_runtime *rt;
};

static void runtime_new(struct runtime *r, const char *cache, uint64_t threshold)
{
    ck_assert_int_eq(jit_compiler_init(&r->comp), KILN_OK);
    r->cc = new_cc(cache);
    struct jit_runtime_opts o = {
        .compiler = &r->comp, .threads = 1, .cc = r->cc, .cc_threshold_ns = threshold};
    ck_assert_int_eq(jit_runtime_new(&o, &r->rt), KILN_OK);
}

static void runtime_free(struct runtime *r)
{
    jit_cc_cancel(r->cc);
    jit_runtime_free(r->rt);
    jit_cc_free(r->cc);
    jit_compiler_fini(&r->comp);
}

/* A restarted runtime starts on the objects the first one compiled: no
 * compile, every kernel cc code from its first run. */
START_TEST(restart_reuses_the_disk_cache)
{
    make_dir();
    struct tg t;
    tg_init(&t);
    random_graph(&t, 77 * 0x9e3779b97f4a7c15ull, 5, 7, 40);
    void **ext = make_inputs(&t.g);
    void **want;
    struct ir_error err;
    ck_assert_int_eq(ir_interp_run(&t.g, (const void *const *) ext, &want, &err), KILN_OK);

    struct runtime r;
    runtime_new(&r, dir, 0);
    struct jit_run_info info = run_and_compare(r.rt, &t, ext, want);
    ck_assert_uint_gt(info.launched, 0);
    ck_assert_uint_eq(info.cc_groups, 0);
    ck_assert(jit_runtime_cc_drain(r.rt, 120 * SEC));
    info = run_and_compare(r.rt, &t, ext, want);
    ck_assert_uint_eq(info.cc_groups, info.launched);
    struct jit_runtime_stats st;
    jit_runtime_stats(r.rt, &st);
    ck_assert_uint_ge(st.kernels_promoted, 1);
    ck_assert_uint_eq(st.cc_swapped, st.kernels_promoted);
    ck_assert_uint_eq(st.cc_kernels, st.kernels_cached);
    ck_assert_uint_ge(st.cc_compiles, 1);
    ck_assert_uint_ge(st.cc_disk_writes, st.cc_compiles);
    ck_assert_uint_gt(st.cc_compile_ns, 0);
    runtime_free(&r);

    runtime_new(&r, dir, SEC * 3600);
    info = run_and_compare(r.rt, &t, ext, want);
    ck_assert_uint_eq(info.cc_groups, info.launched);
    jit_runtime_stats(r.rt, &st);
    ck_assert_uint_eq(st.cc_compiles, 0);
    ck_assert_uint_ge(st.cc_disk_hits, 1);
    ck_assert_uint_eq(st.cc_loaded, st.kernels_compiled);
    ck_assert_uint_eq(st.kernels_promoted, 0);
    runtime_free(&r);

    ir_interp_free(&t.g, want);
    for (uint32_t k = 0; k < t.g.nextern; k++)
        free(ext[k]);
    free(ext);
    tg_fini(&t);
    remove_dir();
}
END_TEST

struct hammer {
    struct jit_runtime *rt;
    struct tg *t;
    void **ext, **want;
    int cc_runs, runs;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Runs until 20 runs were all cc code (so it ran through the swaps), or
 * a minute passed. */
static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    uint64_t t0 = now_ms();
    while (h->cc_runs < 20 && now_ms() - t0 < 60000) {
        struct jit_run_info info = run_and_compare(h->rt, h->t, h->ext, h->want);
        h->cc_runs += info.launched > 0 && info.cc_groups == info.launched;
        h->runs++;
    }
    return NULL;
}

/* Threads keep running one graph while its kernels are promoted and
 * swapped: every run is right, and runs end up on cc code. */
START_TEST(swap_while_running)
{
    struct tg t;
    tg_init(&t);
    random_graph(&t, 5 * 0x9e3779b97f4a7c15ull, 6, 9, 45);
    void **ext = make_inputs(&t.g);
    void **want;
    struct ir_error err;
    ck_assert_int_eq(ir_interp_run(&t.g, (const void *const *) ext, &want, &err), KILN_OK);
    struct runtime r;
    runtime_new(&r, NULL, 1); /* every kernel is queued at its first launch */
    enum { NT = 3 };
    struct hammer h[NT];
    pthread_t th[NT];
    for (int k = 0; k < NT; k++) {
        h[k] = (struct hammer){.rt = r.rt, .t = &t, .ext = ext, .want = want};
        ck_assert_int_eq(pthread_create(&th[k], NULL, hammer_thread, &h[k]), 0);
    }
    for (int k = 0; k < NT; k++) {
        pthread_join(th[k], NULL);
        ck_assert_int_eq(h[k].cc_runs, 20);
        ck_assert_int_gt(h[k].runs, h[k].cc_runs); /* some ran before the swap */
    }
    ck_assert(jit_runtime_cc_drain(r.rt, 120 * SEC));
    struct jit_run_info info = run_and_compare(r.rt, &t, ext, want);
    ck_assert_uint_eq(info.cc_groups, info.launched);
    struct jit_runtime_stats st;
    jit_runtime_stats(r.rt, &st);
    ck_assert_uint_eq(st.cc_failures, 0);
    ck_assert_uint_eq(st.cc_swapped, st.kernels_promoted);
    runtime_free(&r);
    ir_interp_free(&t.g, want);
    for (uint32_t k = 0; k < t.g.nextern; k++)
        free(ext[k]);
    free(ext);
    tg_fini(&t);
}
END_TEST


/* Bytes of the .kcc entries in dir. */
static uint64_t dir_entry_bytes(int *count)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    uint64_t total = 0;
    *count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct stat st;
        if (len > 4 && strcmp(de->d_name + len - 4, ".kcc") == 0 &&
            fstatat(dirfd(d), de->d_name, &st, 0) == 0) {
            total += (uint64_t) st.st_size;
            (*count)++;
        }
    }
    closedir(d);
    return total;
}

static bool entry_exists(struct jit_cc *cc, const char *src)
{
    struct jit_cc_key key;
    char path[4096];
    jit_cc_key(cc, src, &key);
    ck_assert(jit_cc_entry_path(cc, &key, path, sizeof path));
    return access(path, F_OK) == 0;
}

START_TEST(cache_stays_under_its_size)
{
    make_dir();
    enum { NK = 8 };
    char *src[NK];
    for (int k = 0; k < NK; k++)
        src[k] = scale_source(100 + k);
    /* One entry's size, then a cap of three and a half entries. */
    struct jit_cc *cc = new_cc(dir);
    build_all(cc, &src[0], 1);
    int count;
    uint64_t one = dir_entry_bytes(&count);
    ck_assert_int_eq(count, 1);
    jit_cc_free(cc);
    struct jit_cc_opts o = {.cache_dir = dir, .cache_max_bytes = one * 7 / 2};
    ck_assert_int_eq(jit_cc_new(&o, &cc, NULL, 0), KILN_OK);
    for (int k = 1; k < NK; k++) {
        if (k == NK - 1) { /* entry 0 is the oldest: using it keeps it */
            struct timespec pause = {0, 20 * 1000 * 1000};
            nanosleep(&pause, NULL);
            struct jit_cc *fresh = new_cc(dir);
            bool discarded;
            if (entry_exists(fresh, src[NK - 4]))
                ck_assert_int_eq(lookup_fresh(fresh, src[NK - 4], &discarded), KILN_OK);
            jit_cc_free(fresh);
            nanosleep(&pause, NULL);
        }
        build_all(cc, &src[k], 1);
        ck_assert_uint_le(dir_entry_bytes(&count), o.cache_max_bytes);
        ck_assert_int_ge(count, 1);
    }
    struct jit_cc_stats st;
    jit_cc_stats(cc, &st);
    ck_assert_uint_gt(st.disk_evicted, 0);
    ck_assert(entry_exists(cc, src[NK - 1]));  /* the newest stays */
    ck_assert(entry_exists(cc, src[NK - 4]));  /* and the one just used */
    ck_assert(!entry_exists(cc, src[0]));      /* the oldest went */
    jit_cc_free(cc);
    for (int k = 0; k < NK; k++)
        free(src[k]);
}
END_TEST

static void teardown(void)
{
    remove_dir();
}

static Suite *suite(void)
{
    Suite *s = suite_create("cc");
    TCase *tc = tcase_create("cc");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, sha256_vectors);
    tcase_add_test(tc, no_compiler_turns_the_tier_off);
    tcase_add_test(tc, unusable_cache_dir_is_refused);
    tcase_add_test(tc, batch_with_a_broken_kernel);
    tcase_add_test(tc, broken_toolchain_turns_the_tier_off);
    tcase_add_test(tc, cancel_stops_builds);
    tcase_add_test(tc, corrupt_and_foreign_entries_are_rebuilt);
    tcase_add_test(tc, concurrent_writers);
    tcase_add_test(tc, restart_reuses_the_disk_cache);
    tcase_add_test(tc, swap_while_running);
    tcase_add_test(tc, cache_stays_under_its_size);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
